"""GPU training throughput, peak memory and model-FLOPs utilisation: MACRL against transformers' ViTMAEForPreTraining.

    python benchmarks/gpu_throughput.py                       # ViT-B/16 at 224 px, bf16 autocast, batch 128
    python benchmarks/gpu_throughput.py --batch_size 256 --peak_tflops 989 --json gpu.json

Both models get the same encoder and decoder (from the MACRL preset) and the same random inputs; each is timed for
`--steps` full training steps (forward, backward, AdamW step; for MACRL also the EMA update and the enqueue) after a
warm-up. Model FLOPs are counted analytically (matmuls only, 2 FLOPs per multiply-add, backward = 2x forward for
trained parts, the momentum forward once): MFU = achieved FLOP/s / `--peak_tflops` (989 = H100/H200 SXM dense bf16).
"""

import argparse
import json
import time

import torch
from transformers import ViTMAEForPreTraining

from macrl_hf import MacrlConfig, MacrlForPreTraining
from macrl_hf.export import vitmae_config_from_macrl


def encoder_flops(tokens: int, hidden: int, mlp: int, layers: int) -> float:
    """Forward matmul FLOPs of `layers` ViT blocks on `tokens` tokens: QKV+out (4d^2), MLP (2dm), attention (2n d)."""
    return layers * 2 * tokens * (4 * hidden**2 + 2 * hidden * mlp + 2 * tokens * hidden)


def flops_per_image(c: MacrlConfig, macrl: bool) -> float:
    n = c.num_patches + 1
    visible = int(c.num_patches * (1 - c.mask_ratio)) + 1
    patch = 2 * c.num_patches * c.hidden_size * c.patch_size**2 * c.num_channels
    online = encoder_flops(visible, c.hidden_size, c.intermediate_size, c.num_hidden_layers) + patch
    decoder = encoder_flops(n, c.decoder_hidden_size, c.decoder_intermediate_size, c.decoder_num_hidden_layers)
    decoder += 2 * n * (c.hidden_size * c.decoder_hidden_size + c.decoder_hidden_size * c.patch_size**2 * 3)
    total = 3 * (online + decoder)
    if macrl:
        momentum = encoder_flops(n, c.hidden_size, c.intermediate_size, c.num_hidden_layers) + patch
        projector = 2 * (c.hidden_size * c.projection_hidden_size + c.projection_hidden_size * c.projection_dim)
        total += momentum + projector + 3 * projector + 3 * 2 * c.projection_dim * c.queue_size
    return total


def time_steps(step, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="vit-base-patch16-224")
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--peak_tflops", type=float, default=989.0)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("gpu_throughput.py needs a CUDA GPU; for CPU figures use benchmarks/step_speed.py")
    torch.backends.cuda.matmul.allow_tf32 = True
    config = MacrlConfig.from_preset(args.preset)
    device = torch.device("cuda")
    torch.manual_seed(0)
    v1 = torch.randn(args.batch_size, 3, config.image_size, config.image_size, device=device)
    v2 = torch.randn_like(v1)
    results = {"device": torch.cuda.get_device_name(), "preset": args.preset, "batch_size": args.batch_size}
    for name in ("mae", "macrl"):
        if name == "macrl":
            model = MacrlForPreTraining(config).to(device)
        else:
            model = ViTMAEForPreTraining(vitmae_config_from_macrl(config)).to(device)
        optimizer = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4, fused=True)

        def step(model=model, optimizer=optimizer, name=name):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = model(v1, v2) if name == "macrl" else model(v1)
            out.loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if name == "macrl":
                model.momentum_update(0.99)
                model.dequeue_and_enqueue(out.key_embeds)

        seconds = time_steps(step, args.steps, args.warmup)
        images = args.batch_size / seconds
        achieved = images * flops_per_image(config, macrl=name == "macrl")
        results[name] = {"images_per_second": round(images, 1), "step_ms": round(seconds * 1000, 1),
                         "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                         "model_tflops": round(achieved / 1e12, 1), "mfu": round(achieved / (args.peak_tflops * 1e12), 3)}
        print(name, results[name])
        del model, optimizer
        torch.cuda.empty_cache()
    results["macrl_over_mae_time"] = round(results["mae"]["images_per_second"] / results["macrl"]["images_per_second"], 3)
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
