"""Is the two-view data pipeline fast enough to feed the model? Prints both rates and their ratio.

    python benchmarks/data_speed.py [--preset vit-tiny-patch4-32] [--batch_size 128] [--workers 2]

Measures, in one run on the same images: (a) the two-view transform (decode + strong + weak view) in images per
second on one worker (one process, one thread, as a DataLoader worker runs); (b) the model's consumption, images per
second through a full MACRL training step (forward, backward, AdamW, EMA, enqueue). The goal: `workers x (a)` >= (b),
i.e. with 2 workers the data pipeline is not the bottleneck. Uses CIFAR-10 from ../shared/datasets/cifar10 when
present, else synthetic 32x32 PNG images.
"""

import argparse
import io
import os
import time

import numpy as np
import torch
from PIL import Image

from macrl_hf import MacrlConfig, MacrlForPreTraining
from macrl_hf.transforms import pretraining_transform

CIFAR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets", "cifar10")


def load_images(n: int) -> list[dict]:
    """Encoded images as datasets holds them undecoded ({"bytes", "path"}), so decoding is timed too."""
    if os.path.isdir(CIFAR):
        from datasets import Image as ImageFeature
        from datasets import load_dataset

        ds = load_dataset(CIFAR, split="test").cast_column("img", ImageFeature(decode=False))
        return [ds[i]["img"] for i in range(n)]
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, format="PNG")
        out.append({"bytes": buf.getvalue(), "path": f"synthetic-{i}.png"})
    return out


def transform_rate(images, size: int, batch_size: int) -> float:
    torch.set_num_threads(1)  # a DataLoader worker runs single-threaded
    transform = pretraining_transform("image", size)
    transform({"image": images[:batch_size]})  # warm up
    start = time.perf_counter()
    for i in range(0, len(images), batch_size):
        transform({"image": images[i : i + batch_size]})
    return len(images) / (time.perf_counter() - start)


def model_rate(config: MacrlConfig, batch_size: int, steps: int, threads: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = MacrlForPreTraining(config)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x1 = torch.randn(batch_size, 3, config.image_size, config.image_size)
    x2 = torch.randn_like(x1)

    def step():
        out = model(x1, x2)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        model.momentum_update(0.99)
        model.dequeue_and_enqueue(out.key_embeds)

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="vit-tiny-patch4-32")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    config = MacrlConfig.from_preset(args.preset)
    images = load_images(args.images)
    per_worker = transform_rate(images, config.image_size, args.batch_size)
    consumption = model_rate(config, args.batch_size, args.steps, args.threads)
    supply = per_worker * args.workers
    print(f"two-view transform : {per_worker:9.1f} images/s per worker (1 thread)")
    print(f"model training step: {consumption:9.1f} images/s ({args.preset}, batch {args.batch_size}, "
          f"{args.threads} threads)")
    print(f"ratio supply/consumption with {args.workers} workers: {supply / consumption:.2f} "
          f"({'data is not the bottleneck' if supply >= consumption else 'DATA IS THE BOTTLENECK'})")


if __name__ == "__main__":
    main()
