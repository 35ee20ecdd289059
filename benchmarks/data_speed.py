"""Is the two-view data pipeline fast enough to feed the model? Prints both rates and their ratio.

    python benchmarks/data_speed.py                            # CIFAR-10 JPEGs (32 px) against the CPU model
    python benchmarks/data_speed.py --image_size 224            # 500x375 JPEGs, 224 px views, against a GPU estimate

Measures, on the same images, (a) the two-view transform (decode + strong + weak view) in images per second on one
worker (one process, one thread, as a DataLoader worker runs it). At 224 px it times, side by side and interleaved,
the pipeline as it was before (torchvision's 23-tap GaussianBlur convolution, full-size JPEG decoding) and as it is
now (PIL's Gaussian blur, as MoCo v2 / BYOL; JPEGs decoded at a reduced scale where the crops allow).

(b) The consumption: at 32 px, images per second through a full MACRL training step on this CPU (forward, backward,
AdamW, EMA, enqueue). At 224 px this CPU says nothing about a GPU, so the consumption is the ViT-B/16 MACRL
throughput that gpu_throughput.py's FLOP count gives at an assumed utilisation (--gpu_peak_tflops, --gpu_mfu): an
estimate, not a measurement. Then: workers needed per GPU = consumption / (a).

The 224 px images are generated (smooth colour fields with noise, JPEG quality 90, 500x375 like an average
ImageNet photo), so that nothing is downloaded.
"""

import argparse
import io
import math
import os
import time

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from macrl_hf import MacrlConfig, MacrlForPreTraining
from macrl_hf.transforms import ImageTransform, _finish, pretraining_transform, weak_view

CIFAR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets", "cifar10")


def cifar_images(n: int) -> list[dict]:
    """Encoded images as datasets holds them undecoded ({"bytes", "path"}), so decoding is timed too."""
    if os.path.isdir(CIFAR):
        from datasets import Image as ImageFeature
        from datasets import load_dataset

        ds = load_dataset(CIFAR, split="test").cast_column("img", ImageFeature(decode=False))
        return [ds[i]["img"] for i in range(n)]
    return photo_like_images(n, (32, 32))


def photo_like_images(n: int, size: tuple[int, int], seed: int = 0) -> list[dict]:
    """`n` JPEGs of `size` (width, height): smooth colour fields plus noise, about as compressible as photos."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    out = []
    for i in range(n):
        fields = [np.sin(x / rng.uniform(8, 80) + rng.uniform(0, 6)) * np.cos(y / rng.uniform(8, 80)) for _ in range(3)]
        pixels = np.clip((np.stack(fields, -1) * 0.5 + 0.5) * 220 + rng.normal(0, 12, (height, width, 3)), 0, 255)
        buffer = io.BytesIO()
        Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="JPEG", quality=90)
        out.append({"bytes": buffer.getvalue(), "path": f"generated-{i}.jpg"})
    return out


def before_transform(size: int) -> ImageTransform:
    """The pipeline before this benchmark's changes: a 23-tap torchvision blur, JPEGs decoded at full size."""
    strong = v2.Compose([
        v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True), v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8), v2.RandomGrayscale(p=0.2),
        v2.RandomApply([v2.GaussianBlur(2 * (size // 20) + 1, sigma=(0.1, 2.0))], p=0.5),
        v2.RandomSolarize(128, p=0.2), *_finish((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    return ImageTransform("image", {"pixel_values": strong, "momentum_pixel_values": weak_view(size)})


def rates(transforms: dict, images: list[dict], batch_size: int, rounds: int) -> dict:
    """Images per second of each transform, one thread, timed round-robin over `rounds` (median)."""
    torch.set_num_threads(1)  # a DataLoader worker runs single-threaded
    times = {name: [] for name in transforms}
    for transform in transforms.values():
        transform({"image": images[:batch_size]})  # warm up
    for _ in range(rounds):
        for name, transform in transforms.items():
            torch.manual_seed(0)
            start = time.perf_counter()
            for i in range(0, len(images), batch_size):
                transform({"image": images[i : i + batch_size]})
            times[name].append(time.perf_counter() - start)
    return {name: len(images) / sorted(t)[len(t) // 2] for name, t in times.items()}


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image_size", type=int, default=32, help="32: CIFAR-10 against this CPU; 224: see above")
    parser.add_argument("--source_size", default="500x375", help="generated JPEG size at 224 px, WIDTHxHEIGHT")
    parser.add_argument("--preset", default=None, help="default vit-tiny-patch4-32 (32 px), vit-base-patch16-224")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--images", type=int, default=None, help="default 2048 (32 px), 256 (224 px)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="32 px: the workers whose supply is compared")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--gpu_peak_tflops", type=float, default=989.0, help="H100/H200 SXM dense bf16")
    parser.add_argument("--gpu_mfu", type=float, default=0.4, help="assumed model-FLOPs utilisation of a GPU step")
    args = parser.parse_args(argv)
    big = args.image_size >= 64
    preset = args.preset or ("vit-base-patch16-224" if big else "vit-tiny-patch4-32")
    config = MacrlConfig.from_preset(preset, image_size=args.image_size)
    if big:
        width, height = (int(v) for v in args.source_size.split("x"))
        images = photo_like_images(args.images or 256, (width, height))
        kb = sum(len(i["bytes"]) for i in images) / len(images) / 1024
        print(f"{len(images)} generated {width}x{height} JPEGs ({kb:.0f} KB on average), {args.image_size} px views")
        measured = rates({"before": before_transform(args.image_size),
                          "now": pretraining_transform("image", args.image_size)}, images, args.batch_size, args.rounds)
        from gpu_throughput import flops_per_image

        flops = flops_per_image(config, macrl=True)
        gpu = args.gpu_peak_tflops * 1e12 * args.gpu_mfu / flops
        print(f"two-view transform before: {measured['before']:7.1f} images/s per worker (1 thread)")
        print(f"two-view transform now   : {measured['now']:7.1f} images/s per worker (1 thread), "
              f"{measured['now'] / measured['before']:.2f}x")
        print(f"GPU consumption (ESTIMATE, not measured): {gpu:7.0f} images/s = {args.gpu_peak_tflops:g} TFLOP/s x MFU "
              f"{args.gpu_mfu:g} / {flops / 1e9:.1f} GFLOP per image ({preset}, MACRL training step)")
        for name in ("before", "now"):
            print(f"workers needed per GPU ({name}): {math.ceil(gpu / measured[name])}")
        return {"per_worker": measured, "gpu_estimate": gpu, "workers": {k: math.ceil(gpu / v) for k, v in
                                                                           measured.items()}}
    images = cifar_images(args.images or 2048)
    per_worker = rates({"now": pretraining_transform("image", config.image_size)}, images, args.batch_size,
                       args.rounds)["now"]
    consumption = model_rate(config, args.batch_size, args.steps, args.threads)
    supply = per_worker * args.workers
    print(f"two-view transform : {per_worker:9.1f} images/s per worker (1 thread)")
    print(f"model training step: {consumption:9.1f} images/s ({preset}, batch {args.batch_size}, "
          f"{args.threads} threads)")
    print(f"ratio supply/consumption with {args.workers} workers: {supply / consumption:.2f} "
          f"({'data is not the bottleneck' if supply >= consumption else 'DATA IS THE BOTTLENECK'})")
    return {"per_worker": per_worker, "consumption": consumption}


if __name__ == "__main__":
    main()
