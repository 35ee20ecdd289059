"""Training-step speed of MACRL against the MAE step plus the no-grad forward MACRL adds to it.

Times, side by side in one run and on the same random inputs:

  (a) one full MACRL training step, as a trainer does it: `MacrlForPreTraining` forward on two views,
      `loss.backward()`, AdamW `step()`, `zero_grad()`, `momentum_update(0.99)`, `dequeue_and_enqueue(keys)`;
  (b) one transformers `ViTMAEForPreTraining` training step (forward, backward, AdamW step, zero_grad) with an
      encoder/decoder of the same size as the preset's;
  (c) one no-grad, unmasked forward of an encoder of the same size (`MacrlModel` under `torch.no_grad()`): the
      momentum-branch work that MACRL adds to MAE.

The goal is `(a) <= 1.05 * ((b) + (c))`. The three steps are run round-robin (a, b, c per repeat) after a
warm-up, so that machine load affects all of them alike, and the median over repeats is reported.

With `--compile`, two more steps join the round-robin: (d) the MACRL step of (a) with the model under
`torch.compile` (default inductor backend; same weights and inputs) and (e) the ViTMAE step of (b) compiled; the
report adds compiled / eager ratios, and the one-off compile time of the warm-up.

Run it from the repository root, e.g.:

    python benchmarks/step_speed.py                               # CPU, vit-tiny-patch4-32, batch 128
    python benchmarks/step_speed.py --repeats 5 --threads 2 --json step_speed.json
    python benchmarks/step_speed.py --device cuda --batch_size 256
    python benchmarks/step_speed.py --compile --threads 1          # compiled against eager
"""

import argparse
import json
import statistics
import time

import torch
from transformers import ViTMAEForPreTraining

from macrl_hf import MacrlConfig, MacrlForPreTraining, MacrlModel
from macrl_hf.export import vitmae_config_from_macrl

GOAL = 1.05


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--preset", default="vit-tiny-patch4-32")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the figures to this JSON file")
    parser.add_argument("--compile", action="store_true", help="also time the MACRL and MAE steps under torch.compile")
    parser.add_argument("--compile_mode", default=None, help="torch.compile mode, e.g. max-autotune")
    return parser.parse_args(argv)


def training_step(model, optimizer, v1, v2=None):
    """One training step as a trainer does it; MACRL's EMA and enqueue after the optimizer step."""
    out = model(pixel_values=v1) if v2 is None else model(pixel_values=v1, momentum_pixel_values=v2)
    out.loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    unwrapped = getattr(model, "_orig_mod", model)
    if hasattr(unwrapped, "momentum_update"):
        unwrapped.momentum_update(0.99)
        unwrapped.dequeue_and_enqueue(out.key_embeds)


def build_steps(config: MacrlConfig, v1: torch.Tensor, v2: torch.Tensor, device: torch.device,
                compile_mode: str | bool | None = False) -> dict:
    """The step functions (a), (b), (c) and, with `compile_mode` not False, (d) and (e): zero-argument callables on
    fixed inputs."""

    def trainable(model):
        return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    macrl = MacrlForPreTraining(config).to(device).train()
    mae = ViTMAEForPreTraining(vitmae_config_from_macrl(config)).to(device).train()
    encoder = MacrlModel(config).to(device).eval()
    macrl_opt, mae_opt = trainable(macrl), trainable(mae)

    @torch.no_grad()
    def encoder_forward():
        encoder(v2)

    steps = {
        "macrl_step": lambda: training_step(macrl, macrl_opt, v1, v2),
        "mae_step": lambda: training_step(mae, mae_opt, v1),
        "nograd_forward": encoder_forward,
    }
    if compile_mode is not False:
        # Separate copies (same weights): compiling must not change what the eager steps run.
        macrl_c = MacrlForPreTraining(config).to(device).train()
        macrl_c.load_state_dict(macrl.state_dict())
        mae_c = ViTMAEForPreTraining(vitmae_config_from_macrl(config)).to(device).train()
        mae_c.load_state_dict(mae.state_dict())
        macrl_copt, mae_copt = trainable(macrl_c), trainable(mae_c)
        macrl_compiled = torch.compile(macrl_c, mode=compile_mode)
        mae_compiled = torch.compile(mae_c, mode=compile_mode)
        steps["macrl_step_compiled"] = lambda: training_step(macrl_compiled, macrl_copt, v1, v2)
        steps["mae_step_compiled"] = lambda: training_step(mae_compiled, mae_copt, v1)
    return steps


def timed(fn, device: torch.device) -> float:
    """Wall time of one call of `fn` in milliseconds (synchronising the GPU around it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) * 1e3


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)

    config = MacrlConfig.from_preset(args.preset)
    shape = (args.batch_size, config.num_channels, config.image_size, config.image_size)
    v1 = torch.rand(shape, device=device)
    v2 = torch.rand(shape, device=device)
    steps = build_steps(config, v1, v2, device, args.compile_mode if args.compile else False)

    print(
        f"preset={args.preset} batch={args.batch_size} device={device} threads={torch.get_num_threads()} "
        f"warmup={args.warmup} repeats={args.repeats} torch={torch.__version__}",
        flush=True,
    )
    warmup_s = {name: 0.0 for name in steps}
    for _ in range(args.warmup):
        for name, fn in steps.items():
            warmup_s[name] += timed(fn, device) / 1e3
    times = {name: [] for name in steps}
    for i in range(args.repeats):
        for name, fn in steps.items():  # round-robin: load drifts hit every step alike
            times[name].append(timed(fn, device))
        print(
            f"  repeat {i + 1}/{args.repeats}: " + "  ".join(f"{n}={t[-1]:.1f}ms" for n, t in times.items()), flush=True
        )

    median = {name: statistics.median(t) for name, t in times.items()}
    baseline = median["mae_step"] + median["nograd_forward"]
    ratio = median["macrl_step"] / baseline
    print()
    for name, ms in median.items():
        print(f"{name:>16}: {ms:9.1f} ms  {args.batch_size / ms * 1e3:9.1f} images/s")
    print(f"{'mae + nograd':>16}: {baseline:9.1f} ms  {args.batch_size / baseline * 1e3:9.1f} images/s")
    print(f"ratio macrl / (mae + nograd) = {ratio:.3f}  goal <= {GOAL}: {'MET' if ratio <= GOAL else 'NOT MET'}")
    compiled = {}
    if args.compile:
        for name in ("macrl_step", "mae_step"):
            compiled[name] = median[f"{name}_compiled"] / median[name]
            print(f"compiled / eager {name:>10} = {compiled[name]:.3f}  ({median[name]:.1f} ms eager, "
                  f"{median[name + '_compiled']:.1f} ms compiled; warm-up incl. compiling "
                  f"{warmup_s[name + '_compiled']:.1f} s)")

    result = {
        "preset": args.preset,
        "batch_size": args.batch_size,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "warmup": args.warmup,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "median_ms": median,
        "images_per_s": {name: args.batch_size / ms * 1e3 for name, ms in median.items()},
        "mae_plus_nograd_ms": baseline,
        "ratio": ratio,
        "goal": GOAL,
        "goal_met": ratio <= GOAL,
        "compiled_over_eager": compiled,
        "warmup_s": warmup_s,
        "times_ms": times,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
