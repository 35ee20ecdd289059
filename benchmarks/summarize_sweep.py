"""Collect the runs of a cifar10_compare.py sweep (one sub-folder per setting) into one markdown table.

    python benchmarks/summarize_sweep.py benchmarks/results/cifar10_sweep > benchmarks/results/cifar10_sweep/summary.md

A setting is described by what differs from the sweep's `base` run (or, without one, from cifar10_compare.py's
defaults): config overrides, learning rate, seed.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from cifar10_compare import parse_args  # noqa: E402

DESCRIBED = ("base_learning_rate", "seed", "epochs", "train_samples", "batch_size", "model_overrides")


def describe(settings: dict, defaults: dict) -> str:
    parts = [settings["extra_overrides"]] if settings.get("extra_overrides") else []
    parts += [f"{k}={settings[k]}" for k in DESCRIBED if k in settings and settings[k] != defaults[k]]
    return ", ".join(parts) or "none"


def main(folder: str) -> None:
    base = Path(folder) / "base" / "results.json"
    defaults = json.loads(base.read_text())["settings"] if base.exists() else vars(parse_args([]))
    print("| setting (changes from the base run) | variant | kNN top-1 (k=20) | linear probe top-1 |")
    print("| --- | --- | --- | --- |")
    for results_file in sorted(Path(folder).glob("*/results.json")):
        data = json.loads(results_file.read_text())
        setting = describe(data["settings"], defaults)
        for variant, r in data["results"].items():
            knn, probe = r.get("knn_top1"), r.get("linear_probe_top1")
            cells = [f"{x:.1%}" if x is not None else "not run" for x in (knn, probe)]
            print(f"| `{setting}` ({results_file.parent.name}) | {variant} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/cifar10_sweep")
