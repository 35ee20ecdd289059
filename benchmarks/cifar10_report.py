"""Tables and plots of benchmarks/cifar10_evidence.py from its per-run results (OUTPUT_DIR/evals/*.json).

    python benchmarks/cifar10_evidence.py report      # or: python benchmarks/cifar10_report.py [OUTPUT_DIR]

Writes OUTPUT_DIR/results.md (every table), budget_curve.png, fewshot_curve.png, finetune_curve.png and,
with train_flops.json beside them, compute_curve.png and finetune_curve.png's equal-compute panel. Each figure is the mean over
seeds with the sample standard deviation (one seed: no spread shown); the raw values are in evals/.
"""

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ORDER = ("macrl", "mae", "moco")
EQUAL_COMPUTE_TOLERANCE = 0.02  # two runs within 2 % of each other's training FLOPs count as equal compute


def load_evals(out: Path) -> dict:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "evals").glob("*.json"))}


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def cell(values: list[float]) -> str:
    if not values:
        return "not run"
    m, s = mean_std(values)
    if len(values) == 1:
        return f"{100 * m:.1f}"
    return f"{100 * m:.1f} ± {100 * s:.1f} ({', '.join(f'{100 * v:.1f}' for v in values)})"


def method(r: dict) -> str:
    return r["variant"] + (f"+{r['tag']}" if r.get("tag") else "")


def method_key(name: str):
    base, _, tag = name.partition("+")
    return (ORDER.index(base) if base in ORDER else len(ORDER), tag)


def pretrain_table(evals: dict) -> list[str]:
    groups = defaultdict(list)  # (budget, method) -> runs, seed order
    for r in evals.values():
        if "linear_probe_top1" in r and (not r.get("tag") or r["budget"] == 0):  # modified methods: their own table
            groups[(r["budget"], method(r))].append(r)
    lines = ["| budget (images seen) | method | seeds | kNN top-1 (k=20) | linear probe top-1 | 1 % labels "
             "(few-shot) | 10 % labels (few-shot) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for (budget, name) in sorted(groups, key=lambda k: (k[0], method_key(k[1]))):
        runs = sorted(groups[(budget, name)], key=lambda r: r["seed"])
        seen = runs[0]["images_seen"]

        def fewshot(fraction, runs=runs):  # the mean over draws of each seed, then over seeds
            return [statistics.fmean(r["fewshot"][fraction]) for r in runs if fraction in r.get("fewshot", {})]

        when = f"{budget:g}x ({seen:,})" if budget else "0 (untrained)"
        shown = name if budget else "the encoder before pretraining (the same for every variant)"
        lines.append(f"| {when} | {shown} | {','.join(str(r['seed']) for r in runs)} | "
                     f"{cell([r['knn_top1'] for r in runs])} | {cell([r['linear_probe_top1'] for r in runs])} | "
                     f"{cell(fewshot('0.01'))} | {cell(fewshot('0.1'))} |")
    return lines


METRICS = (("kNN top-1", lambda r: r["knn_top1"]), ("linear probe top-1", lambda r: r["linear_probe_top1"]),
           ("1 % labels", lambda r: statistics.fmean(r["fewshot"]["0.01"])),
           ("10 % labels", lambda r: statistics.fmean(r["fewshot"]["0.1"])))


def compare(candidate: list[float], base: list[float]) -> str:
    """Candidate against base on the seeds both ran. Beyond the seed spread means the seeds' ranges do not overlap."""
    delta = round(100 * (statistics.fmean(candidate) - statistics.fmean(base)), 1) + 0.0  # no "-0.0"
    if len(candidate) < 2:
        verdict = "one seed"
    elif min(candidate) > max(base):
        verdict = "better"
    elif max(candidate) < min(base):
        verdict = "worse"
    else:
        verdict = "within spread"
    return f"{cell(candidate)} vs {cell(base)}: {delta:+.1f}, {verdict}"


def change(candidate: dict, base: dict) -> str:
    """The config overrides and script flags the modified run adds to its unmodified one; empty for a tag that adds
    none: a rerun of the same method (with the code of its own time: the evals say nothing of the code)."""
    before = set(base.get("overrides", "").split(","))
    added = [x for x in candidate.get("overrides", "").split(",") if x not in before]
    return " ".join(filter(None, [",".join(added), candidate.get("extra_args", "")]))


def changed(candidate: dict, base: dict) -> str:
    text = change(candidate, base)
    return f"`{text}`" if text else "no change: a rerun"


def candidates_table(evals: dict) -> list[str]:
    """Each modified method (a tag) against its unmodified variant at the same budget, on the seeds both ran."""
    runs = {(r["variant"], r.get("tag", ""), r["budget"], r["seed"]): r for r in evals.values()
            if "linear_probe_top1" in r and r["budget"] > 0 and "stands_in" not in r}  # the same weights: no pair
    groups = defaultdict(list)
    for (variant, tag, budget, seed), r in runs.items():
        if tag and (variant, "", budget, seed) in runs:
            groups[(budget, variant, tag)].append((r, runs[(variant, "", budget, seed)]))
    if not groups:
        return []
    lines = ["| modified method | budget | seeds | " + " | ".join(name for name, _ in METRICS) + " |",
             "| --- | --- | --- |" + " --- |" * len(METRICS)]
    for budget, variant, tag in sorted(groups, key=lambda k: (k[2], k[0], method_key(k[1]))):
        pairs = sorted(groups[(budget, variant, tag)], key=lambda pair: pair[0]["seed"])
        cells = [compare([get(c) for c, _ in pairs], [get(b) for _, b in pairs]) for _, get in METRICS]
        seeds = ",".join(str(c["seed"]) for c, _ in pairs)
        lines.append(f"| {variant}+{tag} ({changed(*pairs[0])}) | {budget:g}x | {seeds} | " + " | ".join(cells) + " |")
    return lines


def comparison_row(budget: float, label: str, seeds: list[int], candidates: list[dict], bases: list[dict]) -> str:
    """One seed-paired row: candidate runs against base runs, metric by metric (see compare)."""
    cells = [compare([get(c) for c in candidates], [get(b) for b in bases]) for _, get in METRICS]
    return f"| {budget:g}x | {label} | {','.join(map(str, seeds))} | " + " | ".join(cells) + " |"


def comparison_table(rows: list[str], first: str = "budget") -> list[str]:
    if not rows:
        return []
    return [f"| {first} | comparison | seeds | " + " | ".join(name for name, _ in METRICS) + " |",
            "| --- | --- | --- |" + " --- |" * len(METRICS)] + rows


def gaps_table(evals: dict, variant: str = "macrl") -> list[str]:
    """`variant` against each other variant at every budget, on the seeds both ran: the order and whether it holds
    beyond the seed spread, budget by budget (where the curves cross, if they do)."""
    runs = {(r["variant"], r["budget"], r["seed"]): r for r in evals.values()
            if "linear_probe_top1" in r and not r.get("tag") and r["budget"] > 0}
    rows = []
    for budget in sorted({b for _, b, _ in runs}):
        for other in sorted({v for v, b, _ in runs if b == budget and v != variant}, key=method_key):
            seeds = sorted(s for v, b, s in runs if v == variant and b == budget and (other, b, s) in runs)
            if seeds:
                rows.append(comparison_row(budget, f"{variant} vs {other}", seeds,
                                           [runs[(variant, budget, s)] for s in seeds],
                                           [runs[(other, budget, s)] for s in seeds]))
    return comparison_table(rows)


POOLING_BLIND = {"mae"}  # no contrastive branch: `pooling` changes its read-out only, not its training


def pooled_sibling(evals: dict, r: dict) -> dict | None:
    """For a modified run of a POOLING_BLIND variant: an unmodified run at its budget (any seed) if `pooling=mean`
    is all that tells the two apart (overrides both ways, script flags, learning rate, images seen), so that it
    trained exactly as that variant does (else None)."""
    if r.get("variant") not in POOLING_BLIND or not r.get("tag") or "linear_probe_top1" not in r:
        return None
    same = ("budget", "images_seen", "base_learning_rate", "extra_args")
    for s in evals.values():
        if (s.get("variant") == r["variant"] and not s.get("tag") and "linear_probe_top1" in s
                and "stands_in" not in s and all(s.get(k) == r.get(k) for k in same)
                and set(r["overrides"].split(",")) ^ set(s["overrides"].split(",")) == {"pooling=mean"}):
            return s
    return None


def with_stand_ins(evals: dict) -> dict:
    """The evals with MAE completed where it ran at a seed only with `pooling=mean` (which its loss never reads: the
    same training; its logged losses match the plain runs' within 3e-4 at 2x-8x): that run, read out from its CLS token (`readout`
    stage), is MAE at that seed, its own mean read-out the other read-out, and its fine-tunes (which read the CLS
    token whatever the pretraining pooled) are MAE's. A plain run at the same seed always wins."""
    plain = {(r["variant"], r["budget"], r["seed"]) for r in evals.values() if "linear_probe_top1" in r and not r.get("tag")}
    figures = ("knn_top1", "linear_probe_top1", "fewshot")
    completed, tags = dict(evals), {}
    for name, r in evals.items():
        key = (r.get("variant"), r.get("budget"), r.get("seed"))
        sibling = pooled_sibling(evals, r) if key not in plain else None
        if sibling is None or r.get("other_readout", {}).get("pooling") != "cls" or key in tags:
            continue
        target = name.replace(f"+{r['tag']}-", "-", 1)
        if target in evals:  # a record of that name exists (e.g. a plain run's without figures): never overwrite it
            continue
        tags[key] = r["tag"]
        completed[target] = {
            **r, "tag": "", "overrides": sibling["overrides"], "stands_in": name,
            **{k: r["other_readout"][k] for k in figures}, "other_readout": {"pooling": "mean", **{k: r[k] for k in figures}}}
    for name, r in evals.items():
        if "finetune_top1" in r and r.get("tag") and tags.get((r["variant"], r["budget"], r["seed"])) == r["tag"]:
            del completed[name]
            completed[name.replace(f"+{r['tag']}-", "-", 1)] = {**r, "tag": "", "stands_in": name}
    return completed


def read_out_otherwise(evals: dict, variants: set) -> dict:
    """The evals with the runs of `variants` read out the other way (`readout` stage), those not yet measured so
    left out; the other runs as they are. For MAE a run of its own trained with `pooling=mean` and nothing else
    changed stands in where its run was not read out otherwise (no checkpoint left), or was not run at that seed at
    all: its training is the same."""
    figures = ("knn_top1", "linear_probe_top1", "fewshot")
    stand_ins = defaultdict(list)  # (variant, budget, seed) -> its modified runs
    for r in evals.values():
        if r.get("variant") in POOLING_BLIND and r.get("tag") and "linear_probe_top1" in r:
            stand_ins[(r["variant"], r["budget"], r["seed"])].append(r)
    swapped = {}
    for name, r in evals.items():
        if r.get("variant") not in variants:
            swapped[name] = r
        elif "other_readout" in r:
            swapped[name] = {**r, **{k: r["other_readout"][k] for k in figures}}
        elif not r.get("tag") and "pooling=" not in r.get("overrides", ""):
            key = (r.get("variant"), r.get("budget"), r.get("seed"))
            stand_in = next((s for s in stand_ins.get(key, []) if pooled_sibling(evals, s)), None)
            if stand_in:
                swapped[name] = {**r, **{k: stand_in[k] for k in figures}}
    # ... and where only that run exists at a seed: it is the method there, read out from the mean
    plain = {(r["variant"], r["budget"], r["seed"]) for r in evals.values() if not r.get("tag") and "linear_probe_top1" in r}
    for (variant, budget, seed), candidates in stand_ins.items():
        if variant not in variants or (variant, budget, seed) in plain:
            continue
        stand_in = next((c for c in candidates if pooled_sibling(evals, c)), None)
        if stand_in:
            swapped[f"{variant}-{budget:g}x-s{seed}"] = {**stand_in, "tag": ""}
    return swapped


def readout_gaps_table(evals: dict, variants: set, variant: str = "macrl") -> list[str]:
    """`variant` against the baselines with `variants` read out the other way (the mean of the patch tokens for the
    unmodified methods), on the seeds where that was measured; only the rows it changes."""
    rows = [row for row in gaps_table(read_out_otherwise(evals, variants), variant)[2:]
            if variant in variants or any(f" vs {other} |" in row for other in variants)]
    return comparison_table(rows)


def candidate_gaps_table(evals: dict, variant: str = "macrl") -> list[str]:
    """Each modified `variant` against the baselines at its budget, on the seeds both ran: against the baseline with
    the same modification where that ran (a change to both, e.g. a predictor), else against the unmodified baseline
    (a change that is a no-op for it, e.g. unmasked_query for MoCo; the row says which)."""
    runs = {(r["variant"], r.get("tag", ""), r["budget"], r["seed"]): r for r in evals.values()
            if "linear_probe_top1" in r and r["budget"] > 0}
    reruns = {(v, t, b) for (v, t, b, s), r in runs.items() if t and (v, "", b, s) in runs
              and not change(r, runs[(v, "", b, s)])}  # a rerun is the method itself: the tables above have it
    rows = []
    for tag, budget in sorted({(t, b) for v, t, b, _ in runs if v == variant and t and (v, t, b) not in reruns}):
        for other in sorted({v for v, _, b, _ in runs if b == budget and v != variant}, key=method_key):
            other_tag = tag if any(k[:3] == (other, tag, budget) for k in runs) else ""
            seeds = sorted(s for v, t, b, s in runs if (v, t, b) == (variant, tag, budget)
                           and (other, other_tag, budget, s) in runs)
            if seeds:
                against = f"{other}+{other_tag}" if other_tag else f"{other} (unmodified)"
                rows.append(comparison_row(budget, f"{variant}+{tag} vs {against}", seeds,
                                           [runs[(variant, tag, budget, s)] for s in seeds],
                                           [runs[(other, other_tag, budget, s)] for s in seeds]))
    return comparison_table(rows)


def equal_compute_pairs(compute: dict, variant: str, tolerance: float):
    """(candidate, baseline) keys of `compute` ({(method, budget, ...): training TFLOP}) whose compute matches within
    `tolerance`: `variant` (plain or modified) against each unmodified baseline at another budget, and a modified
    `variant` also against plain `variant` (does the change pay for what it costs or saves?), against each
    baseline with the same modification (a change to both, e.g. a smaller decoder for MAE too) and against each
    other modified method (which change is the better use of the compute; a pair of modified `variant`s once)."""
    for key, tflop in sorted(compute.items(), key=lambda kv: (kv[0][1], method_key(kv[0][0]))):
        base, _, tag = key[0].partition("+")
        if base != variant:
            continue
        for other, other_tflop in sorted(compute.items(), key=lambda kv: (method_key(kv[0][0]), kv[0][1])):
            other_base, _, other_tag = other[0].partition("+")
            if other_tag:  # a modified method: only against a modified `variant`, and two of those once
                paired = bool(tag) and (other_base != variant or tag < other_tag)
            else:  # an unmodified one: plain `variant` only against a modified `variant`
                paired = other_base != variant or bool(tag)
            if not paired or other[1] == key[1]:
                continue
            if abs(tflop - other_tflop) <= tolerance * other_tflop:
                yield key, other


def equal_compute_table(evals: dict, flops: dict, variant: str = "macrl", tolerance: float = EQUAL_COMPUTE_TOLERANCE) -> list[str]:
    """`variant` (and each modified `variant` with a FLOP count) against each baseline at another budget that cost
    the same training compute (within `tolerance`), on the seeds both ran: the comparison a user with a fixed
    compute budget makes, where a cheaper image buys more of them. `flops`: MFLOP per training image per method."""
    runs = {(method(r), r["budget"], r["seed"]): r for r in evals.values()
            if "linear_probe_top1" in r and r["budget"] > 0 and method(r) in flops}
    compute = {(m, b): runs[(m, b, s)]["images_seen"] * flops[m] / 1e6 for m, b, s in runs}  # TFLOP
    rows = []
    for (name, budget), (other, other_budget) in equal_compute_pairs(compute, variant, tolerance):
        seeds = sorted(s for m, b, s in runs if (m, b) == (name, budget) and (other, other_budget, s) in runs)
        if seeds:
            cells = [compare([get(runs[(name, budget, s)]) for s in seeds],
                             [get(runs[(other, other_budget, s)]) for s in seeds]) for _, get in METRICS]
            rows.append(f"| {compute[(name, budget)]:.0f} vs {compute[(other, other_budget)]:.0f} | {name} {budget:g}x "
                        f"vs {other} {other_budget:g}x | {','.join(map(str, seeds))} | " + " | ".join(cells) + " |")
    return comparison_table(rows, first="training TFLOP")


def readout_equal_compute_table(evals: dict, flops: dict, variants: set, variant: str = "macrl") -> list[str]:
    """equal_compute_table with the baselines in `variants` read out the other way (read_out_otherwise): `variant`
    against each of them at the budget that cost the same training FLOPs, where that read-out was measured."""
    rows = [row for row in equal_compute_table(read_out_otherwise(evals, variants), flops, variant)[2:]
            if any(f" vs {other} " in row for other in variants)]
    return comparison_table(rows, first="training TFLOP")


def compute_method(evals: dict, pretrained: dict) -> str:
    """The method a pretraining ran, for its FLOP count: a tag that changes nothing (a rerun) is its variant."""
    if pretrained.get("tag") and not pretrained.get("extra_args"):
        plain = [r for r in evals.values() if "linear_probe_top1" in r and r["variant"] == pretrained["variant"]
                 and not r.get("tag") and r["budget"] > 0]
        if plain and not change(pretrained, plain[0]):
            return pretrained["variant"]
    return method(pretrained)


def finetune_groups(evals: dict, flops: dict) -> tuple[dict, dict]:
    """The fine-tunes of pretrained checkpoints with a FLOP count, grouped by checkpoint: {(method, budget):
    {(epochs, seed): top1}} and each group's pretraining TFLOP. `method` counts a rerun as its variant (it changes
    nothing), so a rerun's seeds pool with the method's own. A fine-tune finds its pretraining by name
    (`ft<epochs>-<run>`)."""
    groups = defaultdict(dict)
    compute = {}
    for name, r in evals.items():
        pretrained = evals.get(name.partition("-")[2]) if "finetune_top1" in r else None
        if pretrained is None or r["budget"] == 0:
            continue
        m = compute_method(evals, pretrained)
        if m not in flops:
            continue
        key = (m, r["budget"])
        groups[key][(r["epochs"], r["seed"])] = r["finetune_top1"]
        compute[key] = pretrained["images_seen"] * flops[m] / 1e6  # TFLOP
    return groups, compute


def largest_equal_compute_set(compute: dict, tolerance: float = EQUAL_COMPUTE_TOLERANCE) -> list:
    """Keys of `compute` ({(method, budget, ...): TFLOP}), one per unmodified method, at the largest compute every
    unmodified method was run at (each within `tolerance` of the first): the fairest comparison of the three at
    the most a run here spent. [] when fewer than two methods or no such compute."""
    plain = {k: v for k, v in compute.items() if "+" not in k[0]}
    methods = sorted({k[0] for k in plain}, key=method_key)
    if len(methods) < 2:
        return []
    for tflop in sorted(plain.values(), reverse=True):
        chosen = [min((k for k in plain if k[0] == m and abs(plain[k] - tflop) <= tolerance * tflop),
                      key=lambda k: abs(plain[k] - tflop), default=None) for m in methods]
        if all(chosen):
            return chosen
    return []


def modified_at_equal_compute(compute: dict, chosen: list, tolerance: float = EQUAL_COMPUTE_TOLERANCE) -> list:
    """Keys of `compute` for modified methods (`macrl+rec0`, ...; a rerun counts as its method, so not these) whose
    compute is within `tolerance` of every key in `chosen` (largest_equal_compute_set): drawn beside the three so
    that the figure shows what a change buys at the same compute."""
    if not chosen:
        return []
    return sorted((k for k in compute if "+" in k[0]
                   and all(abs(compute[k] - compute[c]) <= tolerance * compute[c] for c in chosen)),
                  key=lambda k: (method_key(k[0]), k[0], k[1]))


def finetune_equal_compute_table(evals: dict, flops: dict, variant: str = "macrl", tolerance: float = EQUAL_COMPUTE_TOLERANCE) -> list[str]:
    """Fine-tuning from `variant`'s checkpoints against a baseline's that cost the same pretraining FLOPs (see
    equal_compute_table), epoch count by epoch count, on the seeds both ran."""
    groups, compute = finetune_groups(evals, flops)
    epochs = sorted({e for runs in groups.values() for e, _ in runs})
    rows = [finetune_pair_row(f"{compute[key]:.0f} vs {compute[other]:.0f}",
                              f"{key[0]} {key[1]:g}x vs {other[0]} {other[1]:g}x", groups[key], groups[other], epochs)
            for key, other in equal_compute_pairs(compute, variant, tolerance)]
    return finetune_comparison_table("pretraining TFLOP", [row for row in rows if row], epochs)


def finetune_gaps_table(evals: dict, variant: str = "macrl") -> list[str]:
    """Fine-tuning from `variant`'s checkpoints against each baseline's pretrained on as many images (the same
    budget, no tag), epoch count by epoch count, on the seeds both ran: gaps_table for fine-tuning."""
    groups = defaultdict(dict)  # (variant, budget) -> {(epochs, seed): top1}
    for r in evals.values():
        if "finetune_top1" in r and not r.get("tag") and r["budget"] > 0:
            groups[(r["variant"], r["budget"])][(r["epochs"], r["seed"])] = r["finetune_top1"]
    epochs = sorted({e for runs in groups.values() for e, _ in runs})
    rows = [finetune_pair_row(f"{budget:g}x", f"{variant} vs {other}", groups[(variant, budget)],
                              groups[(other, budget)], epochs)
            for budget in sorted({b for v, b in groups if v == variant})
            for other in sorted({v for v, b in groups if b == budget and v != variant}, key=method_key)]
    return finetune_comparison_table("budget", [row for row in rows if row], epochs)


def finetune_candidate_gaps_table(evals: dict, variant: str = "macrl") -> list[str]:
    """Fine-tuning from each modified `variant`'s checkpoints against the baselines' pretrained on as many images,
    epoch count by epoch count, on the seeds both ran: candidate_gaps_table for fine-tuning (the baseline with the
    same modification where it was fine-tuned, else the unmodified one; a rerun is left to the tables above)."""
    groups = defaultdict(dict)  # (variant, tag, budget) -> {(epochs, seed): top1}
    reruns = set()
    for name, r in evals.items():
        if "finetune_top1" in r and r["budget"] > 0:
            key = (r["variant"], r.get("tag", ""), r["budget"])
            groups[key][(r["epochs"], r["seed"])] = r["finetune_top1"]
            pretrained = evals.get(name.partition("-")[2])
            if key[1] and pretrained and compute_method(evals, pretrained) == r["variant"]:
                reruns.add(key)
    epochs = sorted({e for runs in groups.values() for e, _ in runs})
    rows = []
    for tag, budget in sorted({(t, b) for v, t, b in groups if v == variant and t and (v, t, b) not in reruns}):
        for other in sorted({v for v, _, b in groups if b == budget and v != variant}, key=method_key):
            other_tag = tag if (other, tag, budget) in groups else ""
            if (other, other_tag, budget) in groups:
                against = f"{other}+{other_tag}" if other_tag else f"{other} (unmodified)"
                rows.append(finetune_pair_row(f"{budget:g}x", f"{variant}+{tag} vs {against}",
                                              groups[(variant, tag, budget)], groups[(other, other_tag, budget)],
                                              epochs))
    return finetune_comparison_table("budget", [row for row in rows if row], epochs)


def finetune_pooling_groups(evals: dict) -> tuple[dict, dict, list]:
    """The unmodified methods' fine-tunes by head: ({(variant, budget): {(epochs, seed): top1}} from the CLS token,
    the same from the mean of the patch tokens (`finetune --finetune_pooling mean`), and the mean-pooled fine-tunes
    that came from a POOLING_BLIND method's `pooling=mean` run, which stand in where its plain run was not fine-tuned
    so (the same training, see pooled_sibling)). A plain run's fine-tune always wins."""
    heads = {"finetune_top1": defaultdict(dict), "finetune_mean_top1": defaultdict(dict)}
    stand_ins = {}  # (variant, budget, epochs, seed) -> the stand-in's name, while no plain run's replaces it
    for plain in (False, True):  # plain runs last, so that they overwrite a stand-in
        for name, r in sorted(evals.items()):
            for key, groups in heads.items():
                if key not in r or r["budget"] <= 0 or bool(r.get("tag")) == plain:
                    continue
                at = (r["variant"], r["budget"], r["epochs"], r["seed"])
                if r.get("tag"):
                    pretrained = evals.get(name.partition("-")[2])
                    if key != "finetune_mean_top1" or not pretrained or pooled_sibling(evals, pretrained) is None:
                        continue
                    stand_ins[at] = name
                elif key == "finetune_mean_top1":
                    stand_ins.pop(at, None)
                groups[at[:2]][at[2:]] = r[key]
    return heads["finetune_top1"], heads["finetune_mean_top1"], sorted(stand_ins.values())


def finetune_pooling_table(evals: dict, variant: str = "macrl") -> list[str]:
    """Fine-tuned from the mean of the patch tokens (MAE's global-pool head) against the CLS token, from the same
    checkpoints, and `variant` against each baseline with both heads on the mean, and with its own CLS head against
    MAE's mean head (each at the head its paper fine-tunes with)."""
    cls_head, mean_head, _ = finetune_pooling_groups(evals)
    if not mean_head:
        return []
    epochs = sorted({e for runs in mean_head.values() for e, _ in runs})
    rows = [finetune_pair_row(f"{budget:g}x", f"{name}: mean vs CLS head", mean_head[(name, budget)],
                              cls_head.get((name, budget), {}), epochs)
            for name, budget in sorted(mean_head, key=lambda k: (k[1], method_key(k[0])))]
    for budget in sorted({b for _, b in mean_head}):
        for other in sorted({v for v, b in mean_head if b == budget and v != variant}, key=method_key):
            rows.append(finetune_pair_row(f"{budget:g}x", f"{variant} vs {other}, both mean heads",
                                          mean_head.get((variant, budget), {}), mean_head[(other, budget)], epochs))
            if other in POOLING_BLIND:  # MAE fine-tunes from the mean in its paper; MoCo v3 from the CLS token
                rows.append(finetune_pair_row(f"{budget:g}x", f"{variant} CLS head vs {other} mean head",
                                              cls_head.get((variant, budget), {}), mean_head[(other, budget)], epochs))
    return finetune_comparison_table("budget", [row for row in rows if row], epochs)


def finetune_pair_row(first: str, label: str, candidate: dict, base: dict, epochs: list) -> str | None:
    """One row of fine-tuned top-1, {(epochs, seed): top1} against the same, epoch count by epoch count on the
    seeds both ran at it (see compare); None when they share no seed."""
    seeds = sorted({s for _, s in candidate} & {s for _, s in base})
    if not seeds:
        return None
    cells = []
    for e in epochs:
        both = [s for s in seeds if (e, s) in candidate and (e, s) in base]
        cells.append(compare([candidate[(e, s)] for s in both], [base[(e, s)] for s in both]) if both else "not run")
    return f"| {first} | {label} | {','.join(map(str, seeds))} | " + " | ".join(cells) + " |"


def finetune_comparison_table(first: str, rows: list[str], epochs: list) -> list[str]:
    if not rows:
        return []
    return [f"| {first} | comparison | seeds | " + " | ".join(f"{e:g} epoch{'s' if e != 1 else ''}" for e in epochs)
            + " |", "| --- | --- | --- |" + " --- |" * len(epochs)] + rows


POOLINGS = {"cls": "CLS token", "mean": "mean of patch tokens"}


def teacher_table(evals: dict) -> list[str]:
    """Online against momentum (EMA) encoder, per run that has both evaluated."""
    return two_evaluations_table(evals, "momentum_encoder", "encoder", lambda r: ("online", "momentum (EMA)"))


def readout_table(evals: dict) -> list[str]:
    """The read-out a run was trained with against the other one, on the same weights."""
    def labels(r):
        other = r["other_readout"]["pooling"]
        trained = "cls" if other == "mean" else "mean"
        return f"{POOLINGS[trained]} (trained)", POOLINGS[other]
    return two_evaluations_table(evals, "other_readout", "read-out", labels)


READOUTS = ("cls", "mean", "cls+mean")  # macrl_hf.evaluation.READOUTS in table order (the report needs no torch)


def readout_sources(evals: dict) -> dict:
    """(variant, budget, seed) -> name of the run read out several ways from the same weights (`readout
    --readouts`): the unmodified run; for MAE, where its own checkpoint is gone, the run that differs from it only by
    `pooling=mean` (the same training, see `with_stand_ins`): read out every way, its weights are MAE's."""
    sources = {(r["variant"], r["budget"], r["seed"]): name for name, r in evals.items()
               if "readouts" in r and not r.get("tag") and "stands_in" not in r}
    for name, r in evals.items():
        if "readouts" in r and r.get("variant") in POOLING_BLIND and r.get("tag") and pooled_sibling(evals, r):
            sources.setdefault((r["variant"], r["budget"], r["seed"]), name)
    return sources


def readouts_of(evals: dict) -> dict:
    """(variant, budget, seed) -> {read-out: figures}, from `readout_sources`."""
    return {key: evals[name]["readouts"] for key, name in readout_sources(evals).items()}


def readouts_table(evals: dict) -> list[str]:
    """Each method read out every way measured, over its seeds: which read-out suits which method."""
    runs = readouts_of(evals)
    groups = defaultdict(lambda: defaultdict(list))  # (budget, variant) -> read-out -> figures per seed
    for (variant, budget, seed), readouts in sorted(runs.items(), key=lambda kv: kv[0][2]):
        for pooling, figures in readouts.items():
            groups[(budget, variant)][pooling].append((seed, figures))
    if not groups:
        return []
    lines = ["| budget | method | read-out | seeds | " + " | ".join(name for name, _ in METRICS) + " |",
             "| --- | --- | --- | --- |" + " --- |" * len(METRICS)]
    for budget, variant in sorted(groups, key=lambda k: (k[0], method_key(k[1]))):
        for pooling in sorted(groups[(budget, variant)], key=READOUTS.index):
            seeded = groups[(budget, variant)][pooling]
            cells = [cell([get(f) for _, f in seeded]) for _, get in METRICS]
            lines.append(f"| {budget:g}x | {variant} | {pooling} | {','.join(str(s) for s, _ in seeded)} | "
                         + " | ".join(cells) + " |")
    return lines


def readouts_gaps_table(evals: dict, variant: str = "macrl") -> list[str]:
    """`variant` against each baseline, both read out the same way, on the seeds where both were measured from the
    weights on disk. Like against like only: `cls+mean` gives the probes twice the features and lifts every method
    (each method's better single read-out is compared in the read-out tables above)."""
    runs = readouts_of(evals)
    rows = []
    for budget in sorted({b for _, b, _ in runs}):
        for other in sorted({v for v, b, _ in runs if b == budget and v != variant}, key=method_key):
            for pooling in READOUTS:
                seeds = sorted(s for v, b, s in runs if v == variant and b == budget and (other, b, s) in runs
                               and pooling in runs[(v, b, s)] and pooling in runs[(other, b, s)])
                if seeds:
                    rows.append(comparison_row(budget, f"{variant} ({pooling}) vs {other} ({pooling})", seeds,
                                               [runs[(variant, budget, s)][pooling] for s in seeds],
                                               [runs[(other, budget, s)][pooling] for s in seeds]))
    return comparison_table(rows)


def modified_readouts_table(evals: dict, variant: str = "macrl") -> list[str]:
    """A modified method (a tag) read out every way measured, against its unmodified method read out the same way
    and, for a modified baseline, `variant` unmodified against it (also each at its own read-out where the baseline
    is POOLING_BLIND): does a change help at the read-out that suits the method, and does `variant` keep its place
    against the stronger baseline? Seeds where both were measured."""
    plain = readouts_of(evals)
    modified = defaultdict(dict)  # (method, its variant, budget) -> seed -> read-outs
    for r in evals.values():  # not MAE's `pooling=mean` runs: the same training as MAE's (see pooled_sibling)
        if "readouts" in r and r.get("tag") and pooled_sibling(evals, r) is None:
            modified[(method(r), r["variant"], r["budget"])][r["seed"]] = r["readouts"]
    rows = []
    for name, base, budget in sorted(modified, key=lambda k: (k[2], method_key(k[0]))):
        ours = modified[(name, base, budget)]
        for other in [base] + ([variant] if base != variant else []):
            for pooling in READOUTS:
                seeds = sorted(s for s in ours if pooling in ours[s] and pooling in plain.get((other, budget, s), {}))
                if not seeds:
                    continue
                mine = [ours[s][pooling] for s in seeds]
                theirs = [plain[(other, budget, s)][pooling] for s in seeds]
                if other == base:  # the change's effect
                    rows.append(comparison_row(budget, f"{name} ({pooling}) vs {other} ({pooling})", seeds, mine,
                                               theirs))
                else:  # `variant` against the modified baseline
                    rows.append(comparison_row(budget, f"{other} ({pooling}) vs {name} ({pooling})", seeds, theirs,
                                               mine))
            if other != base and base in POOLING_BLIND:  # each at its own read-out: MACRL's CLS, MAE's mean
                seeds = sorted(s for s in ours if "mean" in ours[s] and "cls" in plain.get((other, budget, s), {}))
                if seeds:
                    rows.append(comparison_row(budget, f"{other} (cls) vs {name} (mean)", seeds,
                                               [plain[(other, budget, s)]["cls"] for s in seeds],
                                               [ours[s]["mean"] for s in seeds]))
    return comparison_table(rows)


def two_evaluations_table(evals: dict, key: str, column: str, labels) -> list[str]:
    rows = [r for r in evals.values() if key in r and "stands_in" not in r]  # each measurement once
    if not rows:
        return []
    lines = [f"| run | {column} | kNN top-1 | linear probe top-1 | 1 % labels | 10 % labels |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in sorted(rows, key=lambda r: (r["budget"], method_key(method(r)), r["seed"])):
        for label, values in zip(labels(r), (r, r[key])):
            shots = [statistics.fmean(values["fewshot"][f]) for f in ("0.01", "0.1")]
            lines.append(f"| {method(r)} {r['budget']:g}x seed {r['seed']} | {label} | {100 * values['knn_top1']:.1f} | "
                         f"{100 * values['linear_probe_top1']:.1f} | {100 * shots[0]:.1f} | {100 * shots[1]:.1f} |")
    return lines


def finetune_table(evals: dict) -> list[str]:
    groups = defaultdict(list)  # (method, budget) -> {epochs: [top1 per seed]}
    for r in evals.values():
        if "finetune_top1" in r:
            groups[(method(r), r["budget"])].append(r)
    if not groups:
        return []
    epochs = sorted({r["epochs"] for runs in groups.values() for r in runs})
    lines = ["| method (pretrained at) | " + " | ".join(f"{e:g} epoch{'s' if e != 1 else ''}" for e in epochs) + " |",
             "| --- |" + " --- |" * len(epochs)]
    for (name, budget) in sorted(groups, key=lambda k: (k[1] > 0, method_key(k[0]), k[1])):
        runs = groups[(name, budget)]
        cells = [cell([r["finetune_top1"] for r in sorted(runs, key=lambda r: r["seed"]) if r["epochs"] == e])
                 for e in epochs]
        label = "untrained encoder (no pretraining)" if budget == 0 else f"{name} ({budget:g}x)"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def fewshot_mean(r: dict, fraction: str) -> float | None:
    """A run's few-shot top-1 at `fraction` of the labels: the mean over its draws (None if not evaluated)."""
    draws = r.get("fewshot", {}).get(fraction)
    return statistics.fmean(draws) if draws else None


def _plot_against_budget(evals: dict, metrics, path: Path, flops: dict | None = None) -> None:
    """One panel per (title, value-of-run) metric: mean ± seed std against images seen, a line per variant; with
    `flops` (MFLOP per training image per variant, from train_flops.py) against training compute instead."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8))
    for ax, (title, value) in zip(axes, metrics):
        series = defaultdict(lambda: defaultdict(list))
        # ticks: whole budgets and those two methods share (equal images); a lone equal-compute run is a point only
        ticks, methods_at = set(), defaultdict(set)
        for r in evals.values():
            if "linear_probe_top1" not in r or value(r) is None:
                continue
            # against compute, a modified method with a FLOP count of its own is a line too (uq, say)
            name = method(r) if flops and r["budget"] > 0 else r["variant"]
            keep = name in flops if flops else (not r.get("tag") or r["budget"] == 0)
            if not keep:
                continue
            x = r["images_seen"] * (flops[name] / 1e6 if flops else 1)  # MFLOP -> TFLOP with `flops`
            series[name][x].append(100 * value(r))  # budget 0: the untrained reference
            methods_at[x].add(name)
            if r["budget"] == int(r["budget"]):
                ticks.add(x)
        ticks |= {x for x, names in methods_at.items() if len(names) > 1}
        untrained = [v for name in series for v in series[name].pop(0, [])]
        tags = sorted({name.partition("+")[2] for name in series} - {""})
        for name in sorted(series, key=method_key):
            xs = sorted(series[name])
            stats = [mean_std(series[name][x]) for x in xs]
            tag = name.partition("+")[2]  # a modified method: its variant's colour, dashed, a marker of its own
            ax.errorbar(xs, [m for m, _ in stats], yerr=[s for _, s in stats], capsize=3, label=name,
                        marker="sD^v<>"[tags.index(tag) % 6] if tag else "o", color=f"C{method_key(name)[0]}",
                        linestyle="--" if tag else "-")
        if untrained:
            ax.axhline(statistics.fmean(untrained), color="gray", linestyle="--", label="untrained encoder")
        ax.set_xscale("log", base=2)
        if flops:
            from matplotlib.ticker import FormatStrFormatter

            ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.set_xlabel("training compute (TFLOP, train_flops.py)")
        else:
            seen = sorted(ticks - {0})
            ax.set_xticks(seen, [f"{x / 1000:.0f}k" for x in seen])
            ax.minorticks_off()
            ax.set_xlabel("images seen in pretraining (1x = 50k)")
        ax.set_ylabel(f"{title} (%)")
        ax.set_title(f"CIFAR-10 test: {title}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small", framealpha=0.6)  # seven lines with modified methods: keep the points visible
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_budget_curve(evals: dict, path: Path) -> None:
    _plot_against_budget(evals, (("kNN top-1 (k=20)", lambda r: r["knn_top1"]),
                                 ("linear probe top-1", lambda r: r["linear_probe_top1"])), path)


def plot_compute_curve(evals: dict, path: Path, flops: dict) -> None:
    """The budget curve against training FLOPs: the same runs, each image weighted by what it costs its variant."""
    _plot_against_budget(evals, (("kNN top-1 (k=20)", lambda r: r["knn_top1"]),
                                 ("linear probe top-1", lambda r: r["linear_probe_top1"])), path, flops=flops)


def plot_fewshot_curve(evals: dict, path: Path) -> None:
    _plot_against_budget(evals, (("few-shot top-1, 1 % of labels", lambda r: fewshot_mean(r, "0.01")),
                                 ("few-shot top-1, 10 % of labels", lambda r: fewshot_mean(r, "0.1"))), path)


def mean_head_curves(evals: dict, budget: float) -> dict:
    """{"<variant> (<budget>x, mean head)": {epochs: [top1 % per seed]}}: the fine-tunes from the mean of the patch
    tokens at `budget` (stand-ins included, see finetune_pooling_groups), a line beside each CLS-head line."""
    _, mean_head, _ = finetune_pooling_groups(evals)
    curves = {}
    for variant, b in sorted(mean_head, key=lambda k: method_key(k[0])):
        if b == budget:
            by_epochs = defaultdict(list)
            for (epochs, _), top1 in sorted(mean_head[(variant, b)].items()):
                by_epochs[epochs].append(100 * top1)
            curves[f"{variant} ({b:g}x, mean head)"] = dict(by_epochs)
    return curves


def plot_finetune_curve(evals: dict, path: Path, flops: dict | None = None) -> None:
    """Top-1 against fine-tuning epochs for every checkpoint fine-tuned (left; at the largest budget all variants
    share, also with the mean-pooled head where fine-tuned so, dashed) and, with FLOP counts, the three
    methods' checkpoints at the largest equal pretraining compute (right; modified methods given the same compute
    dashed): equal images and equal compute side by side, since the order of the methods differs between the two."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = defaultdict(lambda: defaultdict(list))
    plotted = [r for r in evals.values() if "finetune_top1" in r and (not r.get("tag") or r["budget"] == 0)]
    for r in plotted:  # modified methods and reruns stay out; budget 0: from scratch
        name = "untrained encoder" if r["budget"] == 0 else f"{r['variant']} ({r['budget']:g}x)"
        series[name][r["epochs"]].append(100 * r["finetune_top1"])
    if not series:
        return
    groups, compute = finetune_groups(evals, flops) if flops else ({}, {})
    equal = largest_equal_compute_set(compute)
    fig, axes = plt.subplots(1, 2 if equal else 1, figsize=(13, 4.2) if equal else (7.5, 4), squeeze=False)
    ax = axes[0][0]
    # solid: the largest budget every variant drawn was fine-tuned at (the equal-images comparison); others dotted
    per_variant = defaultdict(set)
    for r in plotted:
        if r["budget"] > 0:
            per_variant[r["variant"]].add(r["budget"])
    shared = set.intersection(*per_variant.values()) if per_variant else set()
    solid = max(shared or {b for budgets in per_variant.values() for b in budgets} or {0})
    colours = {v: f"C{i}" for i, v in enumerate(ORDER)}
    untrained = {"color": "gray", "linestyle": "--"}

    def budget_of(name: str) -> float:
        return float(name.split("(")[1].rstrip("x)")) if "(" in name else 0.0

    def draw(axis, name: str, by_epochs: dict, style: dict) -> None:
        xs = sorted(by_epochs)
        stats = [mean_std(by_epochs[x]) for x in xs]
        axis.errorbar(xs, [m for m, _ in stats], yerr=[s for _, s in stats], capsize=3, label=name,
                      **{"marker": "o", **style})

    def by_epochs_of(key) -> dict:
        by_epochs = defaultdict(list)
        for (e, _), top1 in sorted(groups[key].items()):
            by_epochs[e].append(100 * top1)
        return by_epochs

    for name in sorted(series, key=lambda n: (method_key(n.split(" ")[0]), budget_of(n))):  # mae 2x before 11.6x
        if name == "untrained encoder":
            style = untrained
        else:  # one colour per variant; the largest budget solid, smaller ones dotted and paler
            variant, budget = name.split(" ")[0], budget_of(name)
            largest = budget == solid
            style = {"color": colours.get(variant), "linestyle": "-" if largest else ":",
                     "alpha": 1.0 if largest else 0.5}
        draw(ax, name, series[name], style)
    mean_heads = mean_head_curves(evals, solid)
    for name, by_epochs in mean_heads.items():  # the same checkpoints with MAE's global-pool head: dashed, squares
        draw(ax, name, by_epochs, {"color": colours.get(name.split(" ")[0]), "linestyle": "--", "marker": "s"})
    dashed = ", dashed: mean head" if mean_heads else ""
    ax.set_title(f"CIFAR-10 fine-tuning (solid: equal images, {solid:g}x{dashed})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")  # outside: a dozen lines cover the data
    if equal:
        right = axes[0][1]
        for key in equal:
            draw(right, f"{key[0]} ({key[1]:g}x)", by_epochs_of(key), {"color": colours.get(key[0])})
        for i, key in enumerate(modified_at_equal_compute(compute, equal)):  # dashed, a marker each
            draw(right, f"{key[0]} ({key[1]:g}x)", by_epochs_of(key),
                 {"color": colours.get(key[0].partition("+")[0]), "linestyle": "--", "marker": "sD^v<>"[i % 6]})
        if "untrained encoder" in series:
            draw(right, "untrained encoder", series["untrained encoder"], untrained)
        low, high = (f"{f(compute[k] for k in equal):.0f}" for f in (min, max))
        right.set_title(f"at equal pretraining compute ({low if low == high else f'{low}-{high}'} TFLOP)")
        right.legend(loc="lower right", fontsize="small")
    epochs = sorted({x for name in series for x in series[name]})
    for axis in axes[0]:
        axis.set_xscale("log", base=2)
        axis.set_xticks(epochs, [f"{x:g}" for x in epochs])
        axis.minorticks_off()
        axis.set_xlabel("fine-tuning epochs")
        axis.set_ylabel("test top-1 (%)")
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(out: Path) -> str:
    if not (out / "evals").is_dir():
        sys.exit(f"{out}: no evals/ folder; run `cifar10_evidence.py pretrain --output_dir {out}` first")
    evals = with_stand_ins(load_evals(out))
    flops = None
    if (out / "train_flops.json").exists():  # written by benchmarks/train_flops.py --json
        flops = {k: v["mflops_per_image"] for k, v in json.loads((out / "train_flops.json").read_text()).items()}
    lines = ["# CIFAR-10 evidence (benchmarks/cifar10_evidence.py)", "",
             "Mean ± sample std over seeds (the seeds' values in brackets); few-shot: each seed's mean over its "
             "draws, then over seeds. Raw figures: `evals/*.json`.", "", "## Pretraining budget", ""]
    lines += pretrain_table(evals)
    stand_ins = sorted(name for name, r in evals.items() if "stands_in" in r and "linear_probe_top1" in r)
    readout_stand_ins = sorted(name for name in readout_sources(evals).values() if evals[name].get("tag"))
    finetune_stand_ins = finetune_pooling_groups(evals)[2]
    if stand_ins:
        lines += ["", "Stand-ins (MAE trained with `pooling=mean`, which its loss never reads, read out from its CLS "
                  "token; its fine-tunes are MAE's too): " + ", ".join(f"{n} = {evals[n]['stands_in']}" for n in stand_ins)
                  + "."]
    paired = ("mean ± std over the seeds both ran (values in brackets), the difference of the means in points, and "
              "`better` / `worse` only where the seeds' ranges do not overlap (beyond the seed spread); otherwise "
              "`within spread`.")
    sections = (
        ("MACRL against each baseline, budget by budget", f"Each cell: MACRL vs the baseline, {paired}",
         gaps_table(evals)),
        ("Modified methods against the unmodified ones (part 5)", f"Each cell: modified vs unmodified, {paired}",
         candidates_table(evals)),
        ("Modified MACRL against the baselines", "As above, each modified MACRL against MAE and MoCo run with the "
         "same modification where they were, else against the unmodified baseline (a fair pair only where the "
         "modification leaves that baseline's loss unchanged, e.g. unmasked_query for MoCo).",
         candidate_gaps_table(evals)),
        ("MACRL against each baseline at equal training compute", "Each cell: MACRL (or a modified MACRL) at one "
         "budget vs a baseline (or, for a modified MACRL, plain MACRL and the other modified methods too) at the budget that cost the same training "
         "FLOPs (`train_flops.json`), " + paired,
         equal_compute_table(evals, flops) if flops else []),
        ("Online or momentum (EMA) encoder", None, teacher_table(evals)),
        ("Read-out: CLS token or mean of patch tokens (same weights)", "Each run's online encoder read out as it "
         "was trained (the CLS token unless `pooling=mean`) and the other way (`cifar10_evidence.py readout`).",
         readout_table(evals)),
        ("MACRL against MAE read out from the mean of its patch tokens", "As MACRL against each baseline, budget by "
         "budget, with MAE's features the mean of its patch tokens (MAE puts no loss on its CLS token), MACRL's its "
         "CLS token; only the seeds where that was measured. " + paired,
         readout_gaps_table(evals, {"mae"})),
        ("MACRL against MAE read out from the mean of its patch tokens, at equal training compute", "As MACRL "
         "against each baseline at equal training compute, with MAE's features the mean of its patch tokens. " + paired,
         readout_equal_compute_table(evals, flops, {"mae"}) if flops else []),
        ("MACRL against each baseline, all read out from the mean of the patch tokens", "As above, every method's "
         "features the mean of its patch tokens. " + paired,
         readout_gaps_table(evals, {"macrl", "mae", "moco"})),
        ("Every method read out three ways (same weights)", "The CLS token, the mean of the patch tokens, and the "
         "two concatenated (`cls+mean`, each half L2-normalised: DINOv2's linear-evaluation read-out), each from the "
         "checkpoint on disk (`cifar10_evidence.py readout --readouts cls,mean,cls+mean`; re-created with the "
         "pretrain stage's command where it had been deleted, so its CLS figures may differ from the tables above "
         "by up to 0.8)." + (" MAE's run trained with `pooling=mean` only, where its plain checkpoint is gone (the "
         "same training): " + ", ".join(readout_stand_ins) + "." if readout_stand_ins else ""),
         readouts_table(evals)),
        ("MACRL against each baseline, each read out one way", "From the same measurements; " + paired,
         readouts_gaps_table(evals)),
        ("Modified methods read out three ways", "A modified method's run read out as above (`readout --tag TAG "
         "--readouts cls,mean,cls+mean`) against its unmodified method read out the same way and, for a modified "
         "baseline, unmodified MACRL against it; " + paired, modified_readouts_table(evals)),
        ("Fine-tuning efficiency (test top-1 after N epochs, each its own run)", None, finetune_table(evals)),
        ("Fine-tuning at equal images, budget by budget", "Each cell: test top-1 after N fine-tuning epochs from "
         "MACRL's checkpoint vs from a baseline's pretrained on as many images, " + paired, finetune_gaps_table(evals)),
        ("Modified MACRL fine-tuned against the baselines", "As above, from each modified MACRL's checkpoint "
         "against MAE's and MoCo's fine-tuned with the same modification where they were, else the unmodified ones.",
         finetune_candidate_gaps_table(evals)),
        ("Fine-tuning at equal pretraining compute", "Each cell: test top-1 after N fine-tuning epochs from MACRL's "
         "checkpoint vs from a baseline's that cost the same training FLOPs, " + paired,
         finetune_equal_compute_table(evals, flops) if flops else []),
        ("Fine-tuning from the mean of the patch tokens (MAE's global-pool head)", "The same checkpoints fine-tuned "
         "with a head on the CLS token (`ViTForImageClassification`, the tables above) and on a LayerNorm of the mean "
         "of the patch tokens, as MAE fine-tunes (`cifar10_evidence.py finetune --finetune_pooling mean`, "
         "`run_classification.py --pooling mean`). " + paired + (" From MAE's `pooling=mean` runs where its plain "
         "checkpoint is gone (the same training): " + ", ".join(finetune_stand_ins) + "." if finetune_stand_ins else ""),
         finetune_pooling_table(evals)),
    )
    for title, intro, rows in sections:
        if rows:
            lines += ["", f"## {title}", ""] + ([intro, ""] if intro else []) + rows
    for attention in sorted(out.glob("attention-*.md"), key=lambda f: (float(f.stem.split("-")[1][:-1]), f.stem)):
        lines += ["", attention.read_text().strip()]
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    if evals:
        plot_budget_curve(evals, out / "budget_curve.png")
        plot_fewshot_curve(evals, out / "fewshot_curve.png")
        if flops:
            plot_compute_curve(evals, out / "compute_curve.png", flops)
        plot_finetune_curve(evals, out / "finetune_curve.png", flops)
    print(text)
    return text


if __name__ == "__main__":
    write_report(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results" / "evidence")
