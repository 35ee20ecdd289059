"""benchmarks/cifar10_report.py on hand-made per-run results: a modified method (a tag) is compared with its
unmodified variant on the seeds both ran, and called better or worse only beyond the seed spread."""

import importlib.util
import json

import pytest
from helpers import ROOT

spec = importlib.util.spec_from_file_location("cifar10_report", ROOT / "benchmarks" / "cifar10_report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


FLOPS = {"macrl": 345.4, "mae": 239.2, "moco": 414.4}  # MFLOP per training image, as train_flops.py counts them


def write_results(out, runs: dict, flops: dict | None = None) -> None:
    """What cifar10_evidence.py leaves for the report: evals/<run>.json and, given FLOP counts, train_flops.json."""
    (out / "evals").mkdir()
    for name, r in runs.items():
        (out / "evals" / f"{name}.json").write_text(json.dumps(r))
    if flops:
        (out / "train_flops.json").write_text(json.dumps({m: {"mflops_per_image": f} for m, f in flops.items()}))


def run(variant, seed, knn, linear, tag="", extra=""):
    return {"variant": variant, "tag": tag, "budget": 2.0, "seed": seed, "images_seen": 99840, "knn_top1": knn,
            "linear_probe_top1": linear, "fewshot": {"0.01": [0.30, 0.32], "0.1": [0.40, 0.42]},
            "overrides": "hidden_size=128,mask_ratio=0.75" + extra}


def test_modified_methods_are_compared_beyond_the_seed_spread(tmp_path):
    runs = {"macrl-2x-s0": run("macrl", 0, 0.44, 0.470), "macrl-2x-s1": run("macrl", 1, 0.46, 0.480),
            "macrl+m50-2x-s0": run("macrl", 0, 0.47, 0.475, "m50", ",mask_ratio=0.5"),
            "macrl+m50-2x-s1": run("macrl", 1, 0.48, 0.478, "m50", ",mask_ratio=0.5"),
            "moco-2x-s0": run("moco", 0, 0.46, 0.48), "moco+swap-2x-s0": run("moco", 0, 0.40, 0.47, "swap"),
            "macrl+swap-2x-s0": run("macrl", 0, 0.43, 0.47, "swap"), "macrl+rerun-2x-s0": run("macrl", 0, 0.45, 0.47, "rerun")}
    for name in ("moco+swap-2x-s0", "macrl+swap-2x-s0"):
        runs[name]["extra_args"] = "--strong_view_branch momentum"
    write_results(tmp_path, runs, FLOPS)
    text = report.write_report(tmp_path)
    budget_table, candidates = text.split("## Modified methods")
    candidates, against_baselines = candidates.split("## Modified MACRL against the baselines")
    gap = next(line for line in budget_table.splitlines() if line.startswith("| 2x | macrl vs moco"))
    assert "| 0 |" in gap and "44.0 vs 46.0: -2.0, one seed" in gap  # paired on the one seed moco ran
    assert (tmp_path / "fewshot_curve.png").stat().st_size > 0 and (tmp_path / "compute_curve.png").stat().st_size > 0
    assert "+m50" not in budget_table and "+swap" not in budget_table  # modified methods stay out of the curve
    m50 = next(line for line in candidates.splitlines() if line.startswith("| macrl+m50"))
    assert "`mask_ratio=0.5`" in m50 and "| 0,1 |" in m50
    knn, linear = m50.split(" | ")[3:5]
    assert knn.endswith("+2.5, better")  # 47, 48 against 44, 46: the ranges do not overlap
    assert linear.endswith("+0.2, within spread")  # 47.5, 47.8 against 47.0, 48.0
    rerun = next(line for line in candidates.splitlines() if line.startswith("| macrl+rerun"))
    assert "(no change: a rerun)" in rerun and "45.0 vs 44.0: +1.0, one seed" in rerun
    swap = next(line for line in candidates.splitlines() if line.startswith("| moco+swap"))
    assert "`--strong_view_branch momentum`" in swap and "-6.0, one seed" in swap  # one seed decides nothing
    # a modified MACRL against each baseline: the baseline modified alike where it ran so, else unmodified
    rows = {line.split(" | ")[1]: line for line in against_baselines.splitlines() if line.startswith("| 2x |")}
    assert "47.0 vs 46.0: +1.0, one seed" in rows["macrl+m50 vs moco (unmodified)"]
    assert "43.0 vs 40.0: +3.0, one seed" in rows["macrl+swap vs moco+swap"]
    assert "macrl+swap vs moco (unmodified)" not in rows
    assert not any(name.startswith("macrl+rerun") for name in rows)  # a rerun is no modified method


def test_read_outs_are_compared_on_the_same_weights_and_against_the_baselines():
    """The `readout` stage's figures: each run's two read-outs side by side, then MACRL against MAE read out from
    its patch tokens (and every method so) on the seeds where that was measured, the other runs untouched."""
    def mean_readout(r, knn, linear):
        return {**r, "other_readout": {"pooling": "mean", "knn_top1": knn, "linear_probe_top1": linear,
                                       "fewshot": {"0.01": [0.31], "0.1": [0.45]}}}
    evals = {"macrl-2x-s0": run("macrl", 0, 0.44, 0.47), "macrl-2x-s2": mean_readout(run("macrl", 2, 0.45, 0.48), 0.43, 0.47),
             "mae-2x-s0": run("mae", 0, 0.40, 0.46), "mae-2x-s2": mean_readout(run("mae", 2, 0.41, 0.46), 0.38, 0.49),
             "moco-2x-s2": run("moco", 2, 0.46, 0.48), "macrl+t-2x-s0": run("macrl", 0, 0.44, 0.47, "t")}
    table = report.readout_table(evals)
    assert table[2:] == ["| macrl 2x seed 2 | CLS token (trained) | 45.0 | 48.0 | 31.0 | 41.0 |",
                         "| macrl 2x seed 2 | mean of patch tokens | 43.0 | 47.0 | 31.0 | 45.0 |",
                         "| mae 2x seed 2 | CLS token (trained) | 41.0 | 46.0 | 31.0 | 41.0 |",
                         "| mae 2x seed 2 | mean of patch tokens | 38.0 | 49.0 | 31.0 | 45.0 |"]
    rows = report.readout_gaps_table(evals, {"mae"})[2:]
    assert len(rows) == 1 and "| macrl vs mae | 2 |" in rows[0]  # seed 0 of MAE was never read out otherwise
    assert "45.0 vs 38.0: +7.0, one seed" in rows[0] and "48.0 vs 49.0: -1.0, one seed" in rows[0]
    every = {row.split(" | ")[1]: row for row in report.readout_gaps_table(evals, {"macrl", "mae", "moco"})[2:]}
    assert set(every) == {"macrl vs mae"}  # MoCo's run has no mean read-out yet: no row rather than a mixed one
    assert "43.0 vs 38.0: +5.0, one seed" in every["macrl vs mae"]
    assert evals["mae-2x-s2"]["knn_top1"] == 0.41  # the evals themselves are left as measured
    # MAE's seed 0 retrained with pooling=mean (its loss ignores the pooling) stands in for its mean read-out
    evals["mae+mean-2x-s0"] = run("mae", 0, 0.37, 0.50, "mean", ",pooling=mean")
    evals["mae+zz-2x-s0"] = run("mae", 0, 0.10, 0.10, "zz", ",mask_ratio=0.5")  # another change: no stand-in
    evals["moco+mean-2x-s2"] = run("moco", 2, 0.30, 0.30, "mean", ",pooling=mean")  # MoCo's loss reads it: no stand-in
    rows = report.readout_gaps_table(evals, {"mae"})[2:]
    assert len(rows) == 1 and "| macrl vs mae | 0,2 |" in rows[0] and "vs 43.5 ± 0.7 (37.0, 50.0)" not in rows[0]
    assert "vs 37.5 ± 0.7 (37.0, 38.0): +7.0, better" in rows[0]
    every = {row.split(" | ")[1]: row for row in report.readout_gaps_table(evals, {"macrl", "mae", "moco"})[2:]}
    assert set(every) == {"macrl vs mae"} and "| 2 |" in every["macrl vs mae"]
    # ... and where MAE ran only so at a seed (MACRL's seed 1 has no plain MAE run beside it)
    evals["macrl-2x-s1"] = run("macrl", 1, 0.46, 0.49)
    evals["mae+mean-2x-s1"] = run("mae", 1, 0.39, 0.52, "mean", ",pooling=mean")
    evals = {"ft1-mae-2x-s0": {"variant": "mae", "tag": "", "budget": 2.0, "seed": 0, "epochs": 1.0,
                               "finetune_top1": 0.5}, **evals}  # a fine-tune's record says nothing of the overrides
    rows = report.readout_gaps_table(evals, {"mae"})[2:]
    assert len(rows) == 1 and "| macrl vs mae | 0,1,2 |" in rows[0] and "vs 38.0 ± 1.0 (37.0, 39.0, 38.0)" in rows[0]
    assert "| macrl vs mae | 0,2 |" in report.gaps_table(evals)[2]  # the CLS-read tables keep the plain runs only


def test_mae_trained_with_mean_pooling_stands_in_for_mae_at_a_seed_with_no_plain_run(tmp_path):
    """MAE's loss never reads `pooling`: its `pooling=mean` run, read out from the CLS token, is MAE at a seed where
    no plain run exists, in every CLS-read table, with its mean read-out as the other read-out and its fine-tunes as
    MAE's; a plain run at that seed wins, another change or a missing CLS read-out stands in for nothing."""
    def mean_run(seed, knn, linear, cls_knn, cls_linear, tag="mean", extra=",pooling=mean"):
        return {**run("mae", seed, knn, linear, tag, extra),
                "other_readout": {"pooling": "cls", "knn_top1": cls_knn, "linear_probe_top1": cls_linear,
                                  "fewshot": {"0.01": [0.20], "0.1": [0.30]}}}

    def ft(variant, seed, top1, tag=""):
        return {"variant": variant, "tag": tag, "budget": 2.0, "seed": seed, "epochs": 1.0, "finetune_top1": top1}
    runs = {**{f"macrl-2x-s{s}": run("macrl", s, 0.50 + s / 100, 0.50) for s in range(4)},
            "mae-2x-s0": run("mae", 0, 0.40, 0.45), "mae-2x-s1": run("mae", 1, 0.41, 0.46),
            "mae+mean-2x-s1": mean_run(1, 0.10, 0.10, 0.11, 0.11),  # a plain run at seed 1: it wins
            "mae+mean-2x-s2": mean_run(2, 0.38, 0.49, 0.42, 0.47),
            "mae+zz-2x-s3": mean_run(3, 0.1, 0.1, 0.1, 0.1, "zz", ",pooling=mean,mask_ratio=0.5"),  # another change
            "mae+mean-2x-s3": {**run("mae", 3, 0.1, 0.1, "mean", ",pooling=mean")},  # not read out from its CLS
            **{f"ft1-macrl-2x-s{s}": ft("macrl", s, 0.44 + s / 100) for s in range(3)},
            "ft1-mae-2x-s0": ft("mae", 0, 0.40), "ft1-mae-2x-s1": ft("mae", 1, 0.41),
            "ft1-mae+mean-2x-s2": ft("mae", 2, 0.42, "mean")}
    write_results(tmp_path, runs)
    text = report.write_report(tmp_path)
    budget_table = text.split("## MACRL against each baseline")[0]
    mae = next(line for line in budget_table.splitlines() if line.startswith("| 2x (99,840) | mae |"))
    assert "| 0,1,2 |" in mae and "41.0 ± 1.0 (40.0, 41.0, 42.0)" in mae and "(45.0, 46.0, 47.0)" in mae
    gaps = next(line for line in text.split("## MACRL against each baseline, budget by budget")[1].splitlines()
                if line.startswith("| 2x | macrl vs mae"))
    assert "| 0,1,2 |" in gaps and "vs 41.0 ± 1.0 (40.0, 41.0, 42.0)" in gaps
    # its mean read-out is MAE's other read-out at seed 2; the read-out table lists each measurement once
    mean_gaps = text.split("## MACRL against MAE read out from the mean of its patch tokens")[1].split("\n## ")[0]
    assert "| macrl vs mae | 1,2,3 |" in mean_gaps and "vs 19.3 ± 16.2 (10.0, 38.0, 10.0)" in mean_gaps
    readouts = text.split("## Read-out: CLS token")[1].split("\n## ")[0]
    assert sum(line.startswith("| mae+mean 2x seed 2 |") for line in readouts.splitlines()) == 2
    assert "| mae 2x seed 2 |" not in readouts
    fine = next(line for line in text.split("## Fine-tuning at equal images")[1].splitlines()
                if line.startswith("| 2x | macrl vs mae"))
    assert "| 0,1,2 |" in fine and "(40.0, 41.0, 42.0)" in fine
    assert "mae+mean (2x)" not in text.split("## Fine-tuning efficiency")[1]  # its fine-tunes are MAE's
    assert json.loads((tmp_path / "evals" / "mae+mean-2x-s2.json").read_text())["knn_top1"] == 0.38  # as measured
    assert "mae-2x-s2 = mae+mean-2x-s2" in budget_table  # results.md says which run stands in
    # the modified-methods table pairs separate runs only, not a run with itself read out otherwise
    modified = text.split("## Modified methods against the unmodified ones")[1].split("\n## ")[0]
    assert "| mae+mean (`pooling=mean`) | 2x | 1 |" in modified


def test_mae_read_out_from_the_mean_is_compared_at_equal_compute_where_measured(tmp_path):
    """MACRL 15.1x against MAE 21.8x (the same training FLOPs) with MAE read out from the mean of its patch tokens:
    only at the seed whose mean read-out was measured (here by its `pooling=mean` run)."""
    def at(variant, budget, seed, knn, linear, tag="", extra=""):
        return {**run(variant, seed, knn, linear, tag, extra), "budget": budget, "images_seen": round(budget * 195) * 256}
    runs = {"macrl-15.1x-s0": at("macrl", 15.1, 0, 0.53, 0.53), "macrl-15.1x-s2": at("macrl", 15.1, 2, 0.52, 0.53),
            "mae-21.8x-s0": at("mae", 21.8, 0, 0.47, 0.53),
            "mae+mean-21.8x-s2": {**at("mae", 21.8, 2, 0.45, 0.55, "mean", ",pooling=mean"),
                                  "other_readout": {"pooling": "cls", "knn_top1": 0.47, "linear_probe_top1": 0.52,
                                                    "fewshot": {"0.01": [0.3], "0.1": [0.4]}}}}
    write_results(tmp_path, runs, FLOPS)
    text = report.write_report(tmp_path)
    cls = text.split("## MACRL against each baseline at equal training compute")[1].split("\n## ")[0]
    assert "| macrl 15.1x vs mae 21.8x | 0,2 |" in cls  # read from the CLS token: both seeds
    mean = text.split("## MACRL against MAE read out from the mean of its patch tokens, at equal training compute")[1]
    rows = [line for line in mean.split("\n## ")[0].splitlines() if line.startswith("| 26")]
    assert len(rows) == 1 and "| macrl 15.1x vs mae 21.8x | 2 |" in rows[0]
    assert "52.0 vs 45.0: +7.0, one seed" in rows[0] and "53.0 vs 55.0: -2.0, one seed" in rows[0]


def test_report_without_results_names_the_folder(tmp_path):
    with pytest.raises(SystemExit, match="no evals/ folder"):
        report.write_report(tmp_path)


def test_equal_compute_pairs_runs_whose_training_flops_match(tmp_path):
    """A cheaper image buys more of them: MACRL at 4.8x against MoCo at 4x (same TFLOP), a costlier modified MACRL
    at 4x against MoCo at 6.3x, a cheaper modified MACRL at 7.35x against plain MACRL at 4x (the change pays or not),
    modified methods against each other (two modified MACRLs once); budgets whose compute differs are not paired."""
    def at(variant, budget, seed, knn, tag=""):
        steps = round(budget * 195)
        return {**run(variant, seed, knn, 0.5, tag, ",unmasked_query=true" if tag else ""), "budget": budget,
                "images_seen": steps * 256}
    runs = {"macrl-4.8x-s0": at("macrl", 4.8, 0, 0.49), "macrl-4.8x-s1": at("macrl", 4.8, 1, 0.50),
            "moco-4x-s0": at("moco", 4.0, 0, 0.46), "moco-4x-s1": at("moco", 4.0, 1, 0.47),
            "macrl-4x-s0": at("macrl", 4.0, 0, 0.45), "mae-8x-s0": at("mae", 8.0, 0, 0.40),
            "macrl+uq-4x-s0": at("macrl", 4.0, 0, 0.48, "uq"), "moco-6.3x-s0": at("moco", 6.3, 0, 0.49),
            "macrl+rec0-7.35x-s0": at("macrl", 7.35, 0, 0.47, "rec0"),
            "macrl+ldec-7.92x-s0": at("macrl", 7.92, 0, 0.50, "ldec"), "mae+ldec-16.1x-s0": at("mae", 16.1, 0, 0.44, "ldec"),
            "mae+ldec-25.4x-s0": at("mae", 25.4, 0, 0.45, "ldec"),  # MACRL+uq 4x's compute, another modification
            "macrl+rec0-8.82x-s0": at("macrl", 8.82, 0, 0.52, "rec0")}  # MACRL+ldec 7.92x's compute
    write_results(tmp_path, runs, {**FLOPS, "macrl+uq": 653.7, "macrl+rec0": 188.0, "macrl+ldec": 209.2, "mae+ldec": 103.0})
    text = report.write_report(tmp_path).split("## MACRL against each baseline at equal training compute")[1]
    rows = {line.split(" | ")[1]: line for line in text.split("\n## ")[0].splitlines() if line.startswith("| ")}
    plain = rows["macrl 4.8x vs moco 4x"]
    assert plain.startswith("| 83 vs 83 |") and "| 0,1 |" in plain and "+3.0, better" in plain  # 49, 50 vs 46, 47
    assert "48.0 vs 49.0: -1.0, one seed" in rows["macrl+uq 4x vs moco 6.3x"]
    assert "47.0 vs 45.0: +2.0, one seed" in rows["macrl+rec0 7.35x vs macrl 4x"]
    assert "50.0 vs 44.0: +6.0, one seed" in rows["macrl+ldec 7.92x vs mae+ldec 16.1x"]  # modified alike
    assert "48.0 vs 45.0: +3.0, one seed" in rows["macrl+uq 4x vs mae+ldec 25.4x"]  # another modification
    assert "50.0 vs 52.0: -2.0, one seed" in rows["macrl+ldec 7.92x vs macrl+rec0 8.82x"]  # two modified MACRLs
    assert set(rows) - {"comparison", "---"} == {"macrl 4.8x vs moco 4x", "macrl+uq 4x vs moco 6.3x",
                                                 "macrl+uq 4x vs mae+ldec 25.4x",
                                                 "macrl+rec0 7.35x vs macrl 4x", "macrl+ldec 7.92x vs macrl 4.8x",
                                                 "macrl+ldec 7.92x vs moco 4x", "macrl+ldec 7.92x vs mae+ldec 16.1x",
                                                 "macrl+ldec 7.92x vs macrl+rec0 8.82x", "macrl+rec0 8.82x vs macrl 4.8x",
                                                 "macrl+rec0 8.82x vs moco 4x", "macrl+rec0 8.82x vs mae+ldec 16.1x"}
    # 4x vs 8x MAE: no pair; the two modified MACRLs once (not rec0 vs ldec as well)
    assert "| 4.8x (" in report.write_report(tmp_path)  # an equal-compute run is a row of the budget table too


def test_finetunes_are_paired_at_equal_pretraining_compute(tmp_path):
    """Fine-tunes from MACRL at 9.6x (a rerun's and a plain run's seeds together: the method itself) against those from MoCo at 8x, which cost the same
    pretraining FLOPs, epoch count by epoch count; MACRL's 8x fine-tunes cost less and are not paired."""
    def at(variant, budget, seed, tag=""):
        return {**run(variant, seed, 0.5, 0.5, tag), "budget": budget, "images_seen": round(budget * 195) * 256}

    def ft(variant, budget, seed, epochs, top1, tag=""):
        return {"variant": variant, "tag": tag, "budget": budget, "seed": seed, "epochs": epochs, "finetune_top1": top1}
    runs = {"macrl-9.6x-s0": at("macrl", 9.6, 0), "macrl+rerun-9.6x-s0": at("macrl", 9.6, 0, "rerun"),
            "macrl+rerun-9.6x-s1": at("macrl", 9.6, 1, "rerun"), "moco-8x-s0": at("moco", 8.0, 0),
            "moco-8x-s1": at("moco", 8.0, 1), "macrl-8x-s0": at("macrl", 8.0, 0),
            "ft8-macrl+rerun-9.6x-s0": ft("macrl", 9.6, 0, 8.0, 0.55, "rerun"),
            "ft8-macrl+rerun-9.6x-s1": ft("macrl", 9.6, 1, 8.0, 0.56, "rerun"),
            "ft1-macrl+rerun-9.6x-s0": ft("macrl", 9.6, 0, 1.0, 0.44, "rerun"),
            "ft8-moco-8x-s0": ft("moco", 8.0, 0, 8.0, 0.52), "ft8-moco-8x-s1": ft("moco", 8.0, 1, 8.0, 0.53),
            "ft1-moco-8x-s0": ft("moco", 8.0, 0, 1.0, 0.45), "ft8-macrl-8x-s0": ft("macrl", 8.0, 0, 8.0, 0.50),
            # a third seed run without the tag: the same method, so it pools with the rerun's seeds
            "macrl-9.6x-s2": at("macrl", 9.6, 2), "ft8-macrl-9.6x-s2": ft("macrl", 9.6, 2, 8.0, 0.57),
            "moco-8x-s2": at("moco", 8.0, 2), "ft8-moco-8x-s2": ft("moco", 8.0, 2, 8.0, 0.54)}
    write_results(tmp_path, runs, FLOPS)
    text = report.write_report(tmp_path).split("## Fine-tuning at equal pretraining compute")[1]
    rows = [line for line in text.split("\n## ")[0].splitlines() if line.startswith("| 166")]
    assert len(rows) == 1 and "| macrl 9.6x vs moco 8x | 0,1,2 |" in rows[0], rows
    one, eight = rows[0].split(" | ")[3:5]
    assert one.endswith("44.0 vs 45.0: -1.0, one seed")
    assert "(55.0, 56.0, 57.0)" in eight and eight.rstrip(" |").endswith("+3.0, better")  # against 52, 53, 54


def test_the_fine_tuning_figure_compares_the_methods_at_the_largest_compute_all_reached():
    """The equal-compute panel takes one unmodified checkpoint per method at the largest pretraining compute all of
    them reached (a rerun counts as its method; a modified method and a compute only some reached do not), and
    draws beside them the modified methods within the tolerance of each of the three."""
    compute = {("macrl", 8.0): 138.0, ("mae", 11.6): 139.0, ("moco", 8.0): 165.0,
               ("macrl", 9.6): 166.0, ("macrl", 15.1): 260.0, ("moco", 12.6): 261.0,
               ("macrl+uq", 8.0): 261.0, ("mae", 21.8): 262.0, ("mae", 40.0): 480.0}
    chosen = report.largest_equal_compute_set(compute)
    assert chosen == [("macrl", 15.1), ("mae", 21.8), ("moco", 12.6)]
    assert report.modified_at_equal_compute(compute, chosen) == [("macrl+uq", 8.0)]  # modified methods only
    compute[("macrl+rec0", 27.7)] = 270.0  # 3.5 % above MACRL 15.1x's: not the same compute
    assert report.modified_at_equal_compute(compute, chosen) == [("macrl+uq", 8.0)]
    assert report.modified_at_equal_compute(compute, []) == []
    del compute[("mae", 21.8)]  # no MAE at 261: MoCo never met MAE, so no set of all three exists
    assert report.largest_equal_compute_set(compute) == []
    assert report.largest_equal_compute_set({("macrl", 8.0): 138.0}) == []  # one method: nothing to compare


def test_finetunes_are_paired_at_equal_images_budget_by_budget(tmp_path):
    """Fine-tunes from MACRL at 8x against MoCo's at 8x on the seeds and epochs both ran; a tagged (modified) MACRL
    fine-tune and a budget only one method reached are left out."""
    def ft(variant, budget, seed, epochs, top1, tag=""):
        return {"variant": variant, "tag": tag, "budget": budget, "seed": seed, "epochs": epochs, "finetune_top1": top1}
    runs = {"ft8-macrl-8x-s0": ft("macrl", 8.0, 0, 8.0, 0.55), "ft8-macrl-8x-s1": ft("macrl", 8.0, 1, 8.0, 0.56),
            "ft8-moco-8x-s0": ft("moco", 8.0, 0, 8.0, 0.52), "ft8-moco-8x-s1": ft("moco", 8.0, 1, 8.0, 0.53),
            "ft1-macrl-8x-s0": ft("macrl", 8.0, 0, 1.0, 0.40), "ft1-moco-8x-s0": ft("moco", 8.0, 0, 1.0, 0.41),
            "ft1-macrl-8x-s1": ft("macrl", 8.0, 1, 1.0, 0.42),  # MoCo's seed 1 has no 1-epoch run: one seed
            "ft8-macrl+uq-8x-s0": ft("macrl", 8.0, 0, 8.0, 0.10, "uq"),
            "ft8-macrl-15.1x-s0": ft("macrl", 15.1, 0, 8.0, 0.57)}
    write_results(tmp_path, runs)
    text = report.write_report(tmp_path).split("## Fine-tuning at equal images, budget by budget")[1]
    rows = [line for line in text.split("\n## ")[0].splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[:3] for row in rows[1:]] == [["| 8x", "macrl vs moco", "0,1"]]
    one, eight = rows[1].split(" | ")[3:5]
    assert one == "40.0 vs 41.0: -1.0, one seed"
    assert eight.rstrip(" |").endswith("+3.0, better")  # 55, 56 against 52, 53


def test_modified_finetunes_are_paired_with_the_baseline_modified_alike(tmp_path):
    """Fine-tunes from a modified MACRL against the baseline's with the same modification where it was fine-tuned
    (MAE with the same small decoder, not plain MAE), else the unmodified baseline's; a rerun is no modified method."""
    def ft(variant, budget, seed, epochs, top1, tag=""):
        return {"variant": variant, "tag": tag, "budget": budget, "seed": seed, "epochs": epochs, "finetune_top1": top1}
    runs = {"ft8-macrl+ldec-7.92x-s0": ft("macrl", 7.92, 0, 8.0, 0.53, "ldec"),
            "ft8-macrl+ldec-7.92x-s1": ft("macrl", 7.92, 1, 8.0, 0.54, "ldec"),
            "ft8-mae+ldec-7.92x-s0": ft("mae", 7.92, 0, 8.0, 0.50, "ldec"),
            "ft8-mae+ldec-7.92x-s1": ft("mae", 7.92, 1, 8.0, 0.51, "ldec"),
            "ft8-mae-7.92x-s0": ft("mae", 7.92, 0, 8.0, 0.60), "ft8-moco-8x-s0": ft("moco", 8.0, 0, 8.0, 0.52),
            "ft8-macrl+uq-8x-s0": ft("macrl", 8.0, 0, 8.0, 0.49, "uq"),
            "ft8-macrl+rerun-8x-s0": ft("macrl", 8.0, 0, 8.0, 0.55, "rerun"),
            "macrl-8x-s0": {**run("macrl", 0, 0.5, 0.5), "budget": 8.0},
            "macrl+rerun-8x-s0": {**run("macrl", 0, 0.5, 0.5, "rerun"), "budget": 8.0}}
    write_results(tmp_path, runs)
    text = report.write_report(tmp_path).split("## Modified MACRL fine-tuned against the baselines")[1]
    rows = {line.split(" | ")[1]: line for line in text.split("\n## ")[0].splitlines() if line.startswith("| ")}
    assert set(rows) - {"comparison", "---"} == {"macrl+ldec vs mae+ldec", "macrl+uq vs moco (unmodified)"}
    assert rows["macrl+ldec vs mae+ldec"].startswith("| 7.92x |") and "| 0,1 |" in rows["macrl+ldec vs mae+ldec"]
    assert rows["macrl+ldec vs mae+ldec"].rstrip(" |").endswith("+3.0, better")  # 53, 54 against 50, 51
    assert "49.0 vs 52.0: -3.0, one seed" in rows["macrl+uq vs moco (unmodified)"]


def test_every_read_out_is_tabled_and_macrl_compared_one_read_out_against_another():
    def readouts(r, **figures):
        return {**r, "readouts": {p: {"knn_top1": knn, "linear_probe_top1": linear,
                                      "fewshot": {"0.01": [0.30], "0.1": [0.40]}}
                                  for p, (knn, linear) in figures.items()}}
    both = "cls+mean"
    evals = {"macrl-2x-s0": readouts(run("macrl", 0, 0.44, 0.47), cls=(0.44, 0.47), mean=(0.42, 0.46),
                                     **{both: (0.45, 0.50)}),
             "macrl-2x-s1": readouts(run("macrl", 1, 0.46, 0.48), cls=(0.46, 0.48), **{both: (0.46, 0.51)}),
             "mae-2x-s0": readouts(run("mae", 0, 0.40, 0.46), cls=(0.40, 0.46), mean=(0.38, 0.49), **{both: (0.40, 0.49)}),
             "mae-2x-s1": readouts(run("mae", 1, 0.41, 0.45), cls=(0.41, 0.45), mean=(0.39, 0.48)),
             "macrl+t-2x-s0": readouts(run("macrl", 0, 0.1, 0.1, "t"), cls=(0.1, 0.1)),  # a modified method: not here
             "moco-2x-s0": run("moco", 0, 0.46, 0.48)}  # never read out several ways: no row
    table = report.readouts_table(evals)[2:]
    assert [line.split(" | ")[1:4] for line in table] == [
        ["macrl", "cls", "0,1"], ["macrl", "mean", "0"], ["macrl", both, "0,1"],
        ["mae", "cls", "0,1"], ["mae", "mean", "0,1"], ["mae", both, "0"]]
    assert "| 50.5 ± 0.7 (50.0, 51.0) |" in table[2]
    rows = {line.split(" | ")[1]: line for line in report.readouts_gaps_table(evals)[2:]}
    assert set(rows) == {f"macrl ({p}) vs mae ({p})" for p in ("cls", "mean", both)}
    assert "| 0,1 |" in rows["macrl (cls) vs mae (cls)"]  # the seeds where both read-outs were measured
    assert "45.0 ± 1.4 (44.0, 46.0) vs 40.5 ± 0.7 (40.0, 41.0): +4.5, better" in rows["macrl (cls) vs mae (cls)"]
    assert "| 0 |" in rows["macrl (cls+mean) vs mae (cls+mean)"] and "+1.0, one seed" in rows["macrl (cls+mean) vs mae (cls+mean)"]
    assert "| 0 |" in rows["macrl (mean) vs mae (mean)"]
    # modified methods: against their unmodified method read out the same way; a modified MAE also against MACRL,
    # both read out the same way and each its own way (MACRL's CLS, MAE's mean)
    evals["mae+l2-2x-s0"] = readouts(run("mae", 0, 0.42, 0.47, "l2", ",reconstruction_loss=mse"), cls=(0.42, 0.47),
                                     mean=(0.40, 0.50))
    evals["mae+l2-2x-s1"] = readouts(run("mae", 1, 0.43, 0.46, "l2", ",reconstruction_loss=mse"), cls=(0.43, 0.46),
                                     mean=(0.41, 0.51))
    modified = {line.split(" | ")[1]: line for line in report.modified_readouts_table(evals)[2:]}
    assert list(modified) == ["macrl+t (cls) vs macrl (cls)", "mae+l2 (cls) vs mae (cls)", "mae+l2 (mean) vs mae (mean)",
                              "macrl (cls) vs mae+l2 (cls)", "macrl (mean) vs mae+l2 (mean)",
                              "macrl (cls) vs mae+l2 (mean)"]
    assert "10.0 vs 47.0: -37.0, one seed" in modified["macrl+t (cls) vs macrl (cls)"]
    assert "50.5 ± 0.7 (50.0, 51.0) vs 48.5 ± 0.7 (49.0, 48.0): +2.0, better" in modified["mae+l2 (mean) vs mae (mean)"]
    assert "| 0 |" in modified["macrl (mean) vs mae+l2 (mean)"]  # MACRL's mean read-out: seed 0 only
    assert ("47.5 ± 0.7 (47.0, 48.0) vs 50.5 ± 0.7 (50.0, 51.0): -3.0, worse"
            in modified["macrl (cls) vs mae+l2 (mean)"])


def test_mae_read_out_three_ways_from_its_mean_pooled_run_where_its_plain_checkpoint_is_gone(tmp_path):
    """MAE's `pooling=mean` run (the same training) gives MAE's read-outs at a seed whose plain run has none; a plain
    run's own read-outs win, a run with another change gives none, and the report names the stand-in."""
    def readouts(r, linear):
        return {**r, "readouts": {p: {"knn_top1": 0.4, "linear_probe_top1": linear,
                                      "fewshot": {"0.01": [0.30], "0.1": [0.40]}} for p in ("cls", "cls+mean")}}
    runs = {"macrl-2x-s0": readouts(run("macrl", 0, 0.4, 0.5), 0.50),
            "macrl-2x-s1": readouts(run("macrl", 1, 0.4, 0.5), 0.52),
            "mae-2x-s0": run("mae", 0, 0.4, 0.4), "mae-2x-s1": readouts(run("mae", 1, 0.4, 0.4), 0.47),
            "mae+mean-2x-s0": readouts(run("mae", 0, 0.4, 0.4, "mean", ",pooling=mean"), 0.45),
            "mae+mean-2x-s1": readouts(run("mae", 1, 0.4, 0.4, "mean", ",pooling=mean"), 0.10),  # plain s1 wins
            "mae+zz-2x-s0": readouts(run("mae", 0, 0.4, 0.4, "zz", ",pooling=mean,mask_ratio=0.5"), 0.10)}
    write_results(tmp_path, runs)
    text = report.write_report(tmp_path).split("## Every method read out three ways")[1].split("\n## ")[0]
    assert "MAE's run trained with `pooling=mean` only" in text and ": mae+mean-2x-s0." in text
    mae = [line for line in text.splitlines() if line.startswith("| 2x | mae |")]
    assert [line.split(" | ")[2:4] for line in mae] == [["cls", "0,1"], ["cls+mean", "0,1"]]
    assert all("| 46.0 ± 1.4 (45.0, 47.0) |" in line for line in mae)
    modified = [line.split(" | ")[1] for line in report.modified_readouts_table(report.load_evals(tmp_path))[2:]]
    assert modified and all(label.startswith(("mae+zz", "macrl (")) for label in modified)  # no `pooling=mean` run


def test_mean_head_finetunes_are_paired_with_the_cls_head_and_across_methods(tmp_path):
    """Fine-tunes with MAE's global-pool head (`finetune_mean_top1`) against the CLS head from the same checkpoints,
    and MACRL against MAE both ways; MAE's `pooling=mean` run stands in where its plain run was not fine-tuned so, a
    plain run's wins, and a run with another change gives none. No other fine-tuning table reads them."""
    def ft(variant, seed, top1, key="finetune_top1", tag=""):
        return {"variant": variant, "tag": tag, "budget": 2.0, "seed": seed, "epochs": 8.0, key: top1}
    mean = "finetune_mean_top1"
    runs = {"macrl-2x-s0": run("macrl", 0, 0.5, 0.5), "macrl-2x-s1": run("macrl", 1, 0.5, 0.5),
            "mae-2x-s0": run("mae", 0, 0.4, 0.4), "mae-2x-s1": run("mae", 1, 0.4, 0.4),
            "mae+mean-2x-s0": run("mae", 0, 0.4, 0.4, "mean", ",pooling=mean"),
            "mae+mean-2x-s1": run("mae", 1, 0.4, 0.4, "mean", ",pooling=mean"),
            "mae+zz-2x-s1": run("mae", 1, 0.4, 0.4, "zz", ",pooling=mean,mask_ratio=0.5"),
            "ft8-macrl-2x-s0": ft("macrl", 0, 0.55), "ft8-macrl-2x-s1": ft("macrl", 1, 0.56),
            "ftmean8-macrl-2x-s0": ft("macrl", 0, 0.54, mean), "ftmean8-macrl-2x-s1": ft("macrl", 1, 0.55, mean),
            "ft8-mae-2x-s0": ft("mae", 0, 0.50), "ft8-mae-2x-s1": ft("mae", 1, 0.51),
            "ftmean8-mae+mean-2x-s0": ft("mae", 0, 0.58, mean, "mean"),
            "ftmean8-mae+mean-2x-s1": ft("mae", 1, 0.10, mean, "mean"),  # the plain run's below wins
            "ftmean8-mae-2x-s1": ft("mae", 1, 0.59, mean),
            "ftmean8-mae+zz-2x-s1": ft("mae", 1, 0.10, mean, "zz")}
    write_results(tmp_path, runs)
    full = report.write_report(tmp_path)
    text = full.split("## Fine-tuning from the mean of the patch tokens")[1].split("\n## ")[0]
    assert "the same training): ftmean8-mae+mean-2x-s0." in text
    rows = {line.split(" | ")[1]: line for line in text.splitlines() if line.startswith("| 2x")}
    assert set(rows) == {"macrl: mean vs CLS head", "mae: mean vs CLS head", "macrl vs mae, both mean heads",
                         "macrl CLS head vs mae mean head"}
    assert rows["mae: mean vs CLS head"].rstrip(" |").endswith("+8.0, better")  # 58, 59 against 50, 51
    assert rows["macrl vs mae, both mean heads"].rstrip(" |").endswith("-4.0, worse")  # 54, 55 against 58, 59
    assert rows["macrl CLS head vs mae mean head"].rstrip(" |").endswith("-3.0, worse")  # 55, 56 against 58, 59
    # the CLS-head tables are untouched by the mean-head fine-tunes
    gaps = full.split("## Fine-tuning at equal images, budget by budget")[1].split("\n## ")[0]
    assert gaps.count("| 2x |") == 1 and gaps.rstrip().endswith("+5.0, better |")
    # finetune_curve.png draws the mean heads beside the CLS heads, from the same runs (stand-in included)
    evals = report.with_stand_ins(report.load_evals(tmp_path))
    curves = report.mean_head_curves(evals, 2.0)
    assert list(curves) == ["macrl (2x, mean head)", "mae (2x, mean head)"]
    assert curves["macrl (2x, mean head)"] == {8.0: pytest.approx([54.0, 55.0])}
    assert curves["mae (2x, mean head)"] == {8.0: pytest.approx([58.0, 59.0])}  # s0 the stand-in, s1 the plain run
    assert report.mean_head_curves(evals, 4.0) == {}
