"""Training FLOPs per image of each evidence variant, counted by torch on a real step, and the ratio to MoCo.

    python benchmarks/train_flops.py [--json benchmarks/results/evidence/train_flops.json]
    python benchmarks/train_flops.py --extra_overrides unmasked_query=true --tag uq   # a modified method too
    python benchmarks/train_flops.py --extra_overrides unmasked_query=true --tag uq --extra_overrides mask_ratio=0.5 --tag m50

The evidence budget is images seen; this says what an image costs. One forward (both branches) and backward of
the CPU sizing of benchmarks/cifar10_evidence.py (same model, same variants), counted by
`torch.utils.flop_counter.FlopCounterMode` (matmuls and attention: what dominates a ViT step; the EMA update and the
enqueue are not counted, nor is data loading). At equal compute a variant whose image is cheaper sees more images.
"""

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cifar10_compare import CPU_MODEL, VARIANTS  # noqa: E402

from macrl_hf import MacrlConfig, MacrlForPreTraining  # noqa: E402


def train_flops_per_image(overrides: str, preset: str = "vit-tiny-patch4-32", batch: int = 8) -> float:
    config = MacrlConfig.from_preset(preset)
    if overrides:
        config.update_from_string(overrides)
    model = MacrlForPreTraining(config)
    images = torch.randn(batch, config.num_channels, config.image_size, config.image_size)
    with FlopCounterMode(display=False) as counter:
        model(pixel_values=images, momentum_pixel_values=images).loss.backward()
    return counter.get_total_flops() / batch


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_overrides", default=CPU_MODEL, help="shared by all variants (default: the CPU sizing)")
    p.add_argument("--preset", default="vit-tiny-patch4-32")
    p.add_argument("--baseline", default="moco", choices=sorted(VARIANTS))
    p.add_argument("--extra_overrides", action="append", default=[], help="a modified method (as in "
                   "cifar10_evidence.py), counted beside the unmodified variants as VARIANT+TAG; repeat for several")
    p.add_argument("--tag", action="append", default=[], help="names the --extra_overrides at its position (one each)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if len(args.extra_overrides) != len(args.tag) or not all(args.tag):
        p.error("each --extra_overrides needs its own --tag (got "
                f"{len(args.extra_overrides)} --extra_overrides and tags {args.tag})")
    runs = {name: (name, "") for name in VARIANTS}
    for extra, tag in zip(args.extra_overrides, args.tag):
        runs.update({f"{name}+{tag}": (name, extra) for name in VARIANTS})
    flops = {}
    for name, (v, extra) in runs.items():
        try:
            flops[name] = train_flops_per_image(
                ",".join(x for x in (args.model_overrides, VARIANTS[v], extra) if x), args.preset)
        except ValueError as err:
            if not extra:
                raise
            # e.g. reconstruction_weight=0 on MAE leaves it nothing to learn: that pair is not a method, say so
            print(f"  {name}: skipped, not a valid model ({err})")
    result = {name: {"mflops_per_image": round(f / 1e6, 1), f"ratio_to_{args.baseline}": round(f / flops[args.baseline], 3)}
              for name, f in flops.items()}
    print(f"training FLOPs per image ({args.preset} + {args.model_overrides or 'no overrides'}):")
    for name, r in result.items():
        print(f"  {name:10s} {r['mflops_per_image']:8.1f} MFLOP   {r[f'ratio_to_{args.baseline}']:.3f}x {args.baseline}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
