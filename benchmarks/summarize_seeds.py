"""Mean and spread over seeds of cifar10_compare.py runs that differ only in --seed, one markdown table.

    python benchmarks/summarize_seeds.py benchmarks/results/cifar10 benchmarks/results/cifar10_seed1 \
        benchmarks/results/cifar10_seed2 > benchmarks/results/cifar10_seeds.md

Each cell: mean ± sample standard deviation over the seeds that have the figure, then the per-seed values.
"""

import json
import statistics
import sys
from pathlib import Path

METRICS = {"knn_top1": "kNN top-1 (k=20)", "linear_probe_top1": "linear probe top-1", "finetune_top1": "fine-tune top-1"}


def cell(values: list[float]) -> str:
    if not values:
        return "not run"
    mean = statistics.mean(values)
    spread = f" ± {statistics.stdev(values):.1%}" if len(values) > 1 else ""
    return f"{mean:.1%}{spread} ({', '.join(f'{v:.1%}' for v in values)})"


def main(folders: list[str]) -> None:
    runs = [json.loads((Path(f) / "results.json").read_text()) for f in folders]
    seeds = [r["settings"]["seed"] for r in runs]
    variants = list(dict.fromkeys(v for r in runs for v in r["results"]))
    print(f"Seeds {', '.join(map(str, seeds))} (values listed in that order; a seed without the figure is skipped).")
    print()
    print("| variant | " + " | ".join(METRICS.values()) + " |")
    print("| --- |" + " --- |" * len(METRICS))
    for variant in variants:
        cells = [cell([r["results"][variant][m] for r in runs if m in r["results"].get(variant, {})]) for m in METRICS]
        print(f"| {variant} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["benchmarks/results/cifar10", "benchmarks/results/cifar10_seed1",
                          "benchmarks/results/cifar10_seed2"])
