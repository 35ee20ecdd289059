"""Interpretability stage of benchmarks/cifar10_evidence.py: where the CLS token of each variant looks.

    python benchmarks/cifar10_evidence.py attention [--budget 4] [--tag uq]

For the runs of every variant at the budget (every seed found), the last layer's CLS-to-patch attention,
averaged over heads, on the 10,000 test images. Two measured proxies, per image, then mean and std over images:

- centre share: the attention mass on the central 4 x 4 of the 8 x 8 patches (a quarter of the image, where
  CIFAR-10 objects mostly sit); uniform attention gives 0.25, higher means more on the centre;
- normalised entropy: entropy of the 64 weights / log(64); 1 is uniform, lower is more concentrated.

Neither is a segmentation score (CIFAR-10 has no object masks): they say whether attention concentrates, and
whether on the centre. Writes OUTPUT_DIR/attention-<budget>x.png (8 test images, one of each of the first 8 classes;
a row per variant, its lowest seed found), attention-<budget>x.md and evals/attention-<budget>x.json: one set per budget, so the
figures of several budgets sit side by side. With `--tag T` a variant's runs of the modified method T stand in for
its unmodified ones where they exist (the other variants stay as they are), and the files are named
attention-<budget>x-T.*, beside the unmodified set rather than over it. A rerun keeps the figures of the seeds whose
checkpoints have been deleted since (from the previous evals file), and keeps the old picture rather than draw one
that lacks a variant.
"""

import json
import math
from pathlib import Path

import torch

VARIANT_ORDER = ("macrl", "mae", "moco")


@torch.no_grad()
def cls_attention_maps(encoder, pixel_values: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """`(n, patches)`: the last layer's CLS attention over the patches, head-averaged, renormalised to sum to 1."""
    maps = []
    for start in range(0, len(pixel_values), batch_size):
        attentions = encoder(pixel_values=pixel_values[start:start + batch_size], output_attentions=True).attentions
        weights = attentions[-1][:, :, 0, 1:].mean(dim=1).float()
        maps.append(weights / weights.sum(dim=1, keepdim=True))
    return torch.cat(maps)


def attention_proxies(maps: torch.Tensor) -> dict:
    """Centre share and normalised entropy of `(n, grid*grid)` attention maps: per-image values summarised."""
    grid = int(math.isqrt(maps.shape[1]))
    low, high = grid // 4, grid - grid // 4
    centre = maps.view(-1, grid, grid)[:, low:high, low:high].flatten(1).sum(dim=1)
    entropy = -(maps * maps.clamp_min(1e-12).log()).sum(dim=1) / math.log(maps.shape[1])
    return {"centre_share": [centre.mean().item(), centre.std().item()],
            "normalised_entropy": [entropy.mean().item(), entropy.std().item()],
            "uniform_centre_share": ((high - low) / grid) ** 2}


def _test_images(args):
    """The test split, its image column, and the indices of the figure's images (the first of each class)."""
    from datasets import load_dataset

    from macrl_hf.data import IMAGE_COLUMN_CANDIDATES, LABEL_COLUMN_CANDIDATES

    test = load_dataset(args.dataset_name)["test"]
    image = next(c for c in IMAGE_COLUMN_CANDIDATES if c in test.column_names)
    label = next(c for c in LABEL_COLUMN_CANDIDATES if c in test.column_names)
    labels = test[label]
    shown = [labels.index(c) for c in range(args.attention_images)]
    return test, image, shown


def attention_stage(args, budget: float, run_name) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from macrl_hf.checkpoints import load_encoder
    from macrl_hf.transforms import ImageTransform, collate_images, eval_view
    from macrl_hf.visualize import upsample

    out = Path(args.output_dir)
    tag = args.tag
    test, image_column, shown = _test_images(args)
    results, figure_maps, mean, std = {}, {}, None, None

    def finished(base: str, run_tag: str) -> list[int]:  # the seeds with a finished pretraining
        return [s for s in range(10) if (out / "runs" / run_name(base, budget, s, run_tag) / "model.safetensors").exists()]

    modified = {base for base in VARIANT_ORDER if tag and finished(base, tag)}
    if tag and not modified:
        raise SystemExit(f"attention: no finished {tag} runs at budget {budget:g}x in {out / 'runs'}")
    for base in VARIANT_ORDER:
        run_tag = tag if base in modified else ""  # the modified method where it ran, else the unmodified one
        variant = base + (f"+{run_tag}" if run_tag else "")
        for seed in finished(base, run_tag):
            run_dir = out / "runs" / run_name(base, budget, seed, run_tag)
            encoder, processor, _ = load_encoder(run_dir, attn_implementation="eager")
            encoder.eval()
            if mean is None:
                mean, std = processor.image_mean, processor.image_std
                view = ImageTransform(image_column, {"pixel_values": eval_view(encoder.config.image_size, mean, std)})
                pixels = collate_images(list(test.with_transform(view)))["pixel_values"]
            maps = cls_attention_maps(encoder, pixels)
            results[f"{variant}-s{seed}"] = {"variant": variant, "seed": seed, **attention_proxies(maps)}
            if variant not in figure_maps:  # the figure shows each variant's lowest seed found
                figure_maps[variant] = (seed, maps[shown])
            print(f"attention {variant} seed {seed}: {results[f'{variant}-s{seed}']}", flush=True)
    if not results:
        raise SystemExit(f"attention: no finished runs at budget {budget:g}x in {out / 'runs'}")
    stem = f"attention-{budget:g}x" + (f"-{tag}" if tag else "")
    previous = out / "evals" / f"{stem}.json"
    if previous.exists():  # seeds measured before their checkpoints were deleted keep their (measured) figures
        kept = {k: r for k, r in json.loads(previous.read_text()).items()
                if k not in results and r["variant"] != "untrained"}
        if kept:
            print(f"attention: kept from {previous.name} (checkpoints no longer in runs/): {', '.join(kept)}")
        results.update(kept)
    results = dict(sorted(results.items(), key=lambda kv: (VARIANT_ORDER.index(kv[1]["variant"].partition("+")[0]),
                                                           kv[1]["seed"])))
    # Reference: the same encoder untrained (seed 0), for what the proxies give before any learning.
    from macrl_hf import MacrlModel

    torch.manual_seed(0)
    untrained = MacrlModel(encoder.config).eval()
    untrained.set_attn_implementation("eager")
    results["untrained-s0"] = {"variant": "untrained", "seed": 0, **attention_proxies(cls_attention_maps(untrained,
                                                                                                        pixels))}
    (out / "evals").mkdir(exist_ok=True)
    (out / "evals" / f"{stem}.json").write_text(json.dumps(results, indent=2))
    write_attention_table(out / f"{stem}.md", budget, results, len(pixels), tag)
    missing = sorted({r["variant"] for r in results.values()} - set(figure_maps) - {"untrained"})
    if missing and (out / f"{stem}.png").exists():  # a figure without a variant's row would hide it: keep the old
        print(f"attention: {stem}.png kept as it was: no checkpoint of {', '.join(missing)} at {budget:g}x to draw")
        return

    # Figure: a row of the 8 images, then a row per variant with its head-averaged map over each image.
    images = [np.asarray(test[i][image_column].convert("RGB")) for i in shown]
    rows = ["image"] + [f"{v} s{seed}" for v, (seed, _) in figure_maps.items()]
    row_maps = [None] + [m for _, m in figure_maps.values()]
    fig, axes = plt.subplots(len(rows), len(images), figsize=(1.6 * len(images), 1.7 * len(rows)))
    for col, picture in enumerate(images):
        for row, name in enumerate(rows):
            ax = axes[row, col]
            ax.set_axis_off()
            ax.imshow(picture)
            if row_maps[row] is not None:
                grid = int(math.isqrt(row_maps[row].shape[1]))
                heat = upsample(row_maps[row][col].view(1, grid, grid), picture.shape[:2])[0]
                ax.imshow(heat, cmap="jet", alpha=0.55, vmin=0, vmax=1)
            if col == 0:
                ax.text(-0.1, 0.5, name, transform=ax.transAxes, ha="right", va="center", fontsize=10)
    fig.suptitle(f"Last-layer CLS attention (head mean), CIFAR-10 test, pretrained at {budget:g}x", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / f"{stem}.png", dpi=110)
    plt.close(fig)


def write_attention_table(path: Path, budget: float, results: dict, images: int, tag: str = "") -> None:
    modified = f", {tag} runs where they exist" if tag else ""
    lines = [f"## Attention (last layer, CLS, head mean; {images:,} test images; pretrained at {budget:g}x{modified})",
             "",
             "Centre share: attention mass on the central 4 x 4 of 8 x 8 patches (uniform: 0.25). Normalised "
             "entropy: 1 = uniform. Mean ± std over images, per seed; `untrained` is the same encoder before "
             "pretraining.", "",
             "| variant | seed | centre share | normalised entropy |", "| --- | --- | --- | --- |"]
    for r in results.values():
        c, e = r["centre_share"], r["normalised_entropy"]
        lines.append(f"| {r['variant']} | {r['seed']} | {c[0]:.3f} ± {c[1]:.3f} | {e[0]:.3f} ± {e[1]:.3f} |")
    path.write_text("\n".join(lines) + "\n")
