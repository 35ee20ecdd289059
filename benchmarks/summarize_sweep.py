"""Collect the runs of a cifar10_compare.py sweep (one sub-folder per setting) into one markdown table.

    python benchmarks/summarize_sweep.py benchmarks/results/cifar10_sweep > benchmarks/results/cifar10_sweep/summary.md
"""

import json
import sys
from pathlib import Path


def main(folder: str) -> None:
    print("| setting (overrides on the defaults) | variant | kNN top-1 (k=20) | linear probe top-1 |")
    print("| --- | --- | --- | --- |")
    for results_file in sorted(Path(folder).glob("*/results.json")):
        data = json.loads(results_file.read_text())
        setting = data["settings"]["extra_overrides"] or "defaults"
        for variant, r in data["results"].items():
            knn, probe = r.get("knn_top1"), r.get("linear_probe_top1")
            cells = [f"{x:.1%}" if x is not None else "not run" for x in (knn, probe)]
            print(f"| `{setting}` ({results_file.parent.name}) | {variant} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/cifar10_sweep")
