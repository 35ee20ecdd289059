"""benchmarks/cifar10_evidence.py end to end on a tiny local dataset (never CIFAR-10 itself): every stage runs,
writes its results, and a second invocation finds the finished jobs instead of redoing them."""

import importlib.util
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, Features
from datasets import Image as ImageFeature
from helpers import ROOT
from PIL import Image

TINY_MODEL = ("num_hidden_layers=1,hidden_size=32,num_attention_heads=2,intermediate_size=64,queue_size=32,"
              "decoder_hidden_size=32,decoder_num_attention_heads=2,decoder_intermediate_size=64,"
              "projection_hidden_size=32,projection_dim=16")
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]


def tiny_dataset(folder) -> str:
    rng = np.random.default_rng(0)
    features = Features({"img": ImageFeature(), "label": ClassLabel(names=["red", "green", "blue"])})
    (folder / "data").mkdir(parents=True)
    for split, n in (("train", 48), ("test", 24)):
        labels = [i % 3 for i in range(n)]
        images = [Image.fromarray(np.clip(np.array(COLOURS[y]) + rng.normal(0, 25, (32, 32, 3)), 0, 255)
                                  .astype(np.uint8)) for y in labels]
        Dataset.from_dict({"img": images, "label": labels}, features=features).to_parquet(
            str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    return str(folder)


def load_evidence_module():
    spec = importlib.util.spec_from_file_location("cifar10_evidence", ROOT / "benchmarks" / "cifar10_evidence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def evidence(*args):
    cmd = [sys.executable, str(ROOT / "benchmarks" / "cifar10_evidence.py"), *args]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_every_stage_runs_and_finished_jobs_are_not_redone(tmp_path):
    common = ["--dataset_name", tiny_dataset(tmp_path / "data"), "--output_dir", str(tmp_path / "out"),
              "--model_overrides", TINY_MODEL, "--batch_size", "16", "--probe_epochs", "3", "--fewshot_draws", "2",
              "--jobs", "1", "--threads", "1"]
    printed = evidence("pretrain", "--budgets", "0,1", "--variants", "macrl", *common)
    assert "running 2" in printed
    assert "2 of 2 jobs already done" in evidence("pretrain", "--budgets", "0,1", "--variants", "macrl", *common)
    run = json.loads((tmp_path / "out" / "evals" / "macrl-1x-s0.json").read_text())
    assert run["images_seen"] == 3 * 16 and 0 <= run["knn_top1"] <= 1 and len(run["fewshot"]["0.1"]) == 2
    evidence("teacher", *common)
    assert "momentum_encoder" in json.loads((tmp_path / "out" / "evals" / "macrl-1x-s0.json").read_text())
    assert "readout:" not in evidence("readout", "--variants", "mae,moco", *common)  # only --variants' runs
    evidence("readout", *common)
    readout = json.loads((tmp_path / "out" / "evals" / "macrl-1x-s0.json").read_text())["other_readout"]
    assert readout["pooling"] == "mean" and 0 <= readout["linear_probe_top1"] <= 1
    assert (tmp_path / "out" / "runs" / "macrl-1x-s0" / "features_mean.pt").exists()
    evidence("readout", "--readouts", "cls,mean,cls+mean", *common)
    run = json.loads((tmp_path / "out" / "evals" / "macrl-1x-s0.json").read_text())
    assert set(run["readouts"]) == {"cls", "mean", "cls+mean"}
    # the same weights read out as trained give the pretrain stage's figures; the other way, the readout stage's
    assert {k: run["readouts"]["cls"][k] for k in ("knn_top1", "linear_probe_top1")} == {
        k: run[k] for k in ("knn_top1", "linear_probe_top1")}
    assert run["readouts"]["mean"]["knn_top1"] == readout["knn_top1"]
    assert not (tmp_path / "out" / "runs" / "macrl-1x-s0" / "features_cls.pt").exists()  # its features.pt is that
    assert "readout:" not in evidence("readout", "--readouts", "cls+mean", *common)  # measured: not redone
    evidence("finetune", "--budget", "1", "--variants", "macrl", "--finetune_epochs", "1", "--finetune_samples",
             "24", *common)
    evidence("finetune", "--budget", "0", "--variants", "macrl", "--finetune_epochs", "1",
             "--finetune_samples", "24", *common)  # the from-scratch reference
    evidence("finetune", "--budget", "1", "--variants", "macrl", "--finetune_epochs", "1", "--finetune_samples",
             "24", "--finetune_pooling", "mean", *common)  # MAE's global-pool head, beside the CLS head's result
    mean_head = json.loads((tmp_path / "out" / "evals" / "ftmean1-macrl-1x-s0.json").read_text())
    assert 0 <= mean_head["finetune_mean_top1"] <= 1 and "finetune_top1" not in mean_head
    assert "finetune_top1" in json.loads((tmp_path / "out" / "evals" / "ft1-macrl-1x-s0.json").read_text())
    model = json.loads((tmp_path / "out" / "finetune" / "ftmean1-macrl-1x-s0" / "config.json").read_text())
    assert model["architectures"] == ["BeitForImageClassification"] and model["use_mean_pooling"]
    evidence("attention", "--budget", "1", "--variants", "macrl", "--attention_images", "3", *common)
    unmodified = (tmp_path / "out" / "attention-1x.md").read_text()
    # a modified method's attention goes beside the unmodified set, its runs standing in for the variant's
    shutil.copytree(tmp_path / "out" / "runs" / "macrl-1x-s0", tmp_path / "out" / "runs" / "macrl+t-1x-s0")
    evidence("attention", "--budget", "1", "--tag", "t", "--attention_images", "3", *common)
    assert (tmp_path / "out" / "attention-1x.md").read_text() == unmodified
    modified = (tmp_path / "out" / "attention-1x-t.md").read_text()
    assert "| macrl+t | 0 |" in modified and "| macrl | 0 |" not in modified
    # a rerun after checkpoints were deleted keeps those seeds' measured rows, and the figure while a variant
    # has no checkpoint left to draw (a copy of the MACRL run stands in for a MoCo one here)
    runs, out = tmp_path / "out" / "runs", tmp_path / "out"
    shutil.copytree(runs / "macrl-1x-s0", runs / "macrl-1x-s1")
    shutil.copytree(runs / "macrl-1x-s0", runs / "moco-1x-s0")
    evidence("attention", "--budget", "1", "--attention_images", "3", *common)
    figure = (out / "attention-1x.png").read_bytes()
    for run in ("macrl-1x-s0", "moco-1x-s0"):
        (runs / run / "model.safetensors").rename(runs / run / "gone")
    printed = evidence("attention", "--budget", "1", "--attention_images", "3", *common)
    assert "kept from attention-1x.json" in printed and "macrl-s0, moco-s0" in printed
    assert "attention-1x.png kept as it was: no checkpoint of moco" in printed
    assert (out / "attention-1x.png").read_bytes() == figure
    unmodified = (out / "attention-1x.md").read_text()
    assert (unmodified.index("| macrl | 0 |") < unmodified.index("| macrl | 1 |") < unmodified.index("| moco | 0 |")
            < unmodified.index("| untrained |"))
    report = (tmp_path / "out" / "results.md").read_text()
    assert unmodified.strip() in report and modified.strip() in report
    for expected in ("| 1x (48) | macrl |", "0 (untrained)", "Fine-tuning efficiency", "centre share",
                     "momentum (EMA)", "| macrl 1x seed 0 | mean of patch tokens |",
                     "| untrained encoder (no pretraining) |", "| 1x | macrl | cls+mean | 0 |",
                     "| 1x | macrl: mean vs CLS head | 0 |"):
        assert expected in report, expected
    for figure in ("budget_curve.png", "fewshot_curve.png", "finetune_curve.png", "attention-1x.png",
                   "attention-1x-t.png"):
        assert (tmp_path / "out" / figure).stat().st_size > 0, figure


def test_gpu_sizing_builds_commands_the_scripts_accept(tmp_path, monkeypatch):
    """`--gpu` cannot run here; what can be checked is that its commands (full preset, batch 512, 20 epochs a unit,
    bf16, loader workers, base LR 1.5e-4) are what it promises and that both scripts' own parsers accept them."""
    import transformers.training_args

    import run_classification
    import run_pretraining
    from macrl_hf.scripts import parse_arguments

    evidence_module = load_evidence_module()
    args = evidence_module.parse_args(["pretrain", "--gpu"])
    assert (args.batch_size, args.unit_epochs, args.base_learning_rate, args.finetune_samples) == (512, 20.0, 1.5e-4,
                                                                                                 50000)
    # runs are found by name: GPU results must not be read back as (or written over) the CPU ones
    assert Path(args.output_dir).name == "evidence-gpu"
    assert Path(evidence_module.parse_args(["pretrain"]).output_dir).name == "evidence"
    assert evidence_module.parse_args(["pretrain", "--gpu", "--output_dir", str(tmp_path)]).output_dir == str(tmp_path)
    job = {"variant": "macrl", "budget": 2.0, "seed": 1, "epochs": 4.0, "source": str(tmp_path / "run")}
    # bf16 is refused at parse time on a machine without a bf16 GPU; this machine stands in for one
    monkeypatch.setattr(transformers.training_args, "is_torch_bf16_gpu_available", lambda: True)
    model_args, _, pretraining = parse_arguments(
        (run_pretraining.ModelArguments, run_pretraining.DataTrainingArguments, run_pretraining.PretrainingArguments),
        evidence_module.pretrain_command(args, job, tmp_path / "run"))
    assert pretraining.bf16 and not pretraining.use_cpu and pretraining.dataloader_num_workers == 8
    assert (pretraining.num_train_epochs, pretraining.per_device_train_batch_size, pretraining.seed) == (40, 512, 1)
    assert pretraining.base_learning_rate == 1.5e-4 and "hidden_size=128" not in (model_args.config_overrides or "")
    model_args, _, finetune = parse_arguments(
        (run_classification.ModelArguments, run_classification.ImageDataArguments,
         run_classification.ClassificationTrainingArguments),
        evidence_module.finetune_command(args, job, tmp_path / "ft"))
    assert finetune.bf16 and not finetune.use_cpu and finetune.num_train_epochs == 4
    assert model_args.model_name_or_path == job["source"]


def test_extra_args_reach_run_pretraining_and_need_a_tag(tmp_path):
    import run_pretraining
    from macrl_hf.scripts import parse_arguments

    evidence_module = load_evidence_module()
    args = evidence_module.parse_args(["pretrain", "--extra_args=--strong_view_branch momentum", "--tag", "swap"])
    job = {"variant": "macrl", "budget": 1.0, "seed": 0}
    _, data_args, _ = parse_arguments(
        (run_pretraining.ModelArguments, run_pretraining.DataTrainingArguments, run_pretraining.PretrainingArguments),
        evidence_module.pretrain_command(args, job, tmp_path / "run"))
    assert data_args.strong_view_branch == "momentum"
    with pytest.raises(SystemExit):  # an untagged modified method would mix with the unmodified runs
        evidence_module.parse_args(["pretrain", "--extra_args=--strong_view_branch momentum"])


def test_train_flops_count_what_each_variant_computes():
    """MAE encodes a quarter of the patches and has no momentum branch; MoCo trains the encoder on every patch;
    MACRL lies between when, as in the CPU sizing, the encoder outweighs the decoder (a 4-block encoder, a 1-block
    decoder here). The counts come from torch, on a real forward and backward."""
    spec = importlib.util.spec_from_file_location("train_flops", ROOT / "benchmarks" / "train_flops.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--model_overrides", TINY_MODEL.replace("num_hidden_layers=1", "num_hidden_layers=4")
                          + ",decoder_num_hidden_layers=1", "--extra_overrides", "unmasked_query=true", "--tag", "uq",
                          "--extra_overrides", "mask_ratio=0.5", "--tag", "m50",
                          "--extra_overrides", "reconstruction_weight=0", "--tag", "rec0"])
    flops = {name: r["mflops_per_image"] for name, r in result.items()}
    assert 0 < flops["mae"] < flops["macrl"] < flops["moco"]
    assert result["moco"]["ratio_to_moco"] == 1.0
    # the modified method is counted beside them: a second, unmasked online pass costs MACRL more than MoCo's one
    assert flops["macrl+uq"] > flops["moco"] and flops["moco+uq"] == flops["moco"]
    # a second modified method in the same command: more visible patches cost the masked encoders more
    assert flops["macrl"] < flops["macrl+m50"] < flops["macrl+uq"] and flops["mae"] < flops["mae+m50"]
    # without the reconstruction MACRL drops its decoder; MAE would have nothing to learn: skipped, not counted
    assert flops["macrl+rec0"] < flops["macrl"] and "mae+rec0" not in flops
    with pytest.raises(SystemExit):
        module.main(["--extra_overrides", "unmasked_query=true"])  # untagged
    with pytest.raises(SystemExit):
        module.main(["--extra_overrides", "a=1", "--tag", "a", "--extra_overrides", "b=1"])  # the second untagged


def test_a_job_is_claimed_once_and_a_dead_owner_s_lock_is_taken_over(tmp_path):
    module = load_evidence_module()
    job = {"name": "macrl-1x-s0"}
    assert module.claim_job(tmp_path, job)
    assert not module.claim_job(tmp_path, job)  # held by a live invocation (this one)
    module.release_job(tmp_path, job)
    assert module.claim_job(tmp_path, job)
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    (tmp_path / "locks" / "macrl-1x-s0.lock").write_text(str(finished.pid))  # its owner died
    assert module.claim_job(tmp_path, job)


def test_two_invocations_of_one_stage_share_its_jobs(tmp_path):
    """Two lanes, one job list: every job runs once, in one of the two invocations."""
    common = ["pretrain", "--budgets", "0", "--seeds", "0", "--variants", "macrl,mae,moco", "--dataset_name",
              tiny_dataset(tmp_path / "data"), "--output_dir", str(tmp_path / "out"), "--model_overrides", TINY_MODEL,
              "--probe_epochs", "2", "--fewshot_draws", "1", "--jobs", "1", "--threads", "1"]
    cmd = [sys.executable, str(ROOT / "benchmarks" / "cifar10_evidence.py"), *common]
    lanes = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    printed = "".join(lane.communicate(timeout=900)[0] for lane in lanes)
    assert all(lane.returncode == 0 for lane in lanes), printed[-3000:]
    names = [f"{v}-0x-s0" for v in ("macrl", "mae", "moco")]
    for name in names:
        assert printed.count(f"started {name} ") == 1, printed
        assert (tmp_path / "out" / "evals" / f"{name}.json").exists()
    assert not list((tmp_path / "out" / "locks").iterdir())  # every claim released


def _processes_naming(text: str) -> list[int]:
    """Pids of live processes whose command line contains `text` (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                zombie = ") Z " in (entry / "stat").read_text()
            except OSError:
                continue
            if text in cmdline and not zombie:
                pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_a_stopped_job_ends_even_where_a_dependency_swallows_the_stop(tmp_path):
    """datasets' fingerprinting runs inside a bare `except:`, which swallows the SystemExit a stop signal raises
    there; the job (and its children) must still end, after the grace period, rather than train on unowned."""
    marker = f"child-of-a-stopped-job-{tmp_path.name}"
    code = f"""
import signal, subprocess, sys, time
sys.path.insert(0, {str(ROOT / "benchmarks")!r})
import cifar10_evidence as evidence
evidence.STOP_GRACE_SECONDS = 1
signal.signal(signal.SIGTERM, evidence._stop_job_on_signal)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", {marker!r}])
print("ready", flush=True)
while True:
    try:
        time.sleep(0.05)
    except:  # noqa: E722 - what datasets.fingerprint.update_fingerprint does
        pass
"""
    job = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)  # as run_jobs starts a job: a process group of its own
    try:
        assert job.stdout.readline().strip() == "ready", job.stdout.read()
        deadline = time.time() + 60
        while not _processes_naming(marker) and time.time() < deadline:
            time.sleep(0.1)
        job.send_signal(signal.SIGTERM)
        printed = job.communicate(timeout=60)[0]
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == -signal.SIGKILL, printed
    assert "received signal 15; stopping" in printed and "killing its process group" in printed, printed
    deadline = time.time() + 30
    while _processes_naming(marker) and time.time() < deadline:
        time.sleep(0.1)
    assert not _processes_naming(marker)  # the job's child went with it


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_invocation_stops_its_jobs_and_releases_them(tmp_path, signum):
    """`kill` (or the OOM killer) on the invocation must not leave its job training on: with its lock stale, the
    next invocation would start the same run in the same directory beside it."""
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "cifar10_evidence.py"), "pretrain", "--budgets", "5000",
           "--seeds", "0", "--variants", "mae", "--dataset_name", tiny_dataset(tmp_path / "data"), "--output_dir",
           str(out), "--model_overrides", TINY_MODEL, "--batch_size", "16", "--jobs", "1", "--threads", "1"]
    lane = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = out / "logs" / "mae-5000x-s0.log"
    deadline = time.time() + 300
    while "'loss'" not in (log.read_text() if log.exists() else ""):  # the job is training
        assert time.time() < deadline and lane.poll() is None, lane.communicate()[0]
        time.sleep(0.5)
    assert _processes_naming("_pretrain_job --job {\"name\": \"mae-5000x-s0\"") and _processes_naming(str(out))
    lane.send_signal(signum)
    printed = lane.communicate(timeout=120)[0]
    stop_deadline = time.time() + 120  # its own allowance, whatever the start-up took on a loaded machine
    while _processes_naming(str(out)) and time.time() < stop_deadline:
        time.sleep(0.5)
    left = [(pid, (Path("/proc") / str(pid) / "cmdline").read_bytes()[:200]) for pid in _processes_naming(str(out))]
    assert not left, (left, printed, log.read_text()[-2000:])
    if signum == signal.SIGTERM:  # handled: the lock is released and the user told how to go on
        assert "stopped mae-5000x-s0; rerun the same command" in printed
        assert not list((out / "locks").iterdir())
    assert not (out / "evals" / "mae-5000x-s0.json").exists()
