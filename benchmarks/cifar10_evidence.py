"""Does MACRL learn better features than MAE and MoCo, and at which budget? The paper's three claims on CIFAR-10.

One command per stage; each resumes after an interruption (finished runs are read back, an interrupted pretraining
continues from its last checkpoint; stopping an invocation stops its jobs) and runs its jobs `--jobs` at a time with
the CPU cores split between them; several invocations of a stage may run at once (one per core, `--jobs 1
--threads 1`): they share its jobs:

    python benchmarks/cifar10_evidence.py pretrain --budgets 1,2,4,8 --seeds 0     # budget curve (+ kNN, probes)
    python benchmarks/cifar10_evidence.py pretrain --budgets 4,8 --seeds 1         # second seed at the largest
    python benchmarks/cifar10_evidence.py pretrain --budgets 4.8 --variants macrl  # equal compute with MoCo's 4x
    python benchmarks/cifar10_evidence.py finetune --budget 8 --finetune_epochs 1,2,4,8
    python benchmarks/cifar10_evidence.py attention --budget 8
    python benchmarks/cifar10_evidence.py teacher                                  # the EMA encoders, evaluated too
    python benchmarks/cifar10_evidence.py readout                                  # mean-pooled features too
    python benchmarks/cifar10_evidence.py readout --readouts cls,mean,cls+mean     # all three, same weights
    python benchmarks/cifar10_evidence.py report                                   # tables and plots
    python benchmarks/cifar10_evidence.py pretrain ... --gpu                       # GPU sizing (see --gpu)

Budget 0 is the untrained encoder (the reference every curve starts from). Budget b means b x 50,000 images seen
(b epochs over all 50,000 CIFAR-10 training images; 195 steps of 256 each) at the CPU sizing, the unit of the earlier
comparison (benchmarks/cifar10_compare.py). Every variant shares the encoder, data, augmentations, heads, schedule
and seeds; only its loss differs (see VARIANTS). After pretraining, on the 10,000 test images: weighted kNN (k=20,
the 50,000 training images as memory bank), MAE's linear probe (BatchNorm + linear layer on frozen CLS features,
100 epochs) and few-shot logistic regression (scikit-learn) with
1 % and 10 % of the training labels (class-balanced, 5 seeded draws). Fine-tuning: run_classification.py from the
`--budget` checkpoints for 1, 2, 4, 8 epochs on 10,000 training images, each its own run with its own schedule.
Attention: the last layer's CLS attention of each variant on the same 8 test images, and two measured proxies over
the test set (see attention_proxies).

`--extra_overrides` (config fields) or `--extra_args` (run_pretraining.py flags) + `--tag` run a modified method
(e.g. `--extra_overrides predictor_hidden_size=512 --tag pred`, `--extra_args "--strong_view_branch momentum" --tag swap`);
its results sit beside the untagged ones. Per-run results land in OUTPUT_DIR/evals/*.json (small, committed);
checkpoints in OUTPUT_DIR/runs/ (not committed). A fractional budget gives a variant the training compute of another's
whole budget (4 x MoCo's FLOPs per image / MACRL's, from train_flops.py: 4.8x); the report pairs such runs in its
equal-compute table.
"""

import argparse
import contextlib
import ctypes
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cifar10_compare import CIFAR, CPU_MODEL, VARIANTS  # noqa: E402 - the same variants and CPU sizing
from cifar10_report import load_evals  # noqa: E402

STAGES = ("pretrain", "finetune", "attention", "teacher", "readout", "report")
TRAIN_IMAGES = 50000


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=STAGES + ("_pretrain_job", "_finetune_job"))
    p.add_argument("--output_dir", default=None,
                   help="default benchmarks/results/evidence, or evidence-gpu with --gpu (a run is found by its "
                        "name, so the two sizings must not share a directory)")
    p.add_argument("--dataset_name", default=str(CIFAR))
    p.add_argument("--variants", default="macrl,mae,moco", help=f"some of {sorted(VARIANTS)}")
    p.add_argument("--budgets", default="1,2,4,8", help="multiples of the unit budget (50,000 images seen on CPU)")
    p.add_argument("--seeds", default="0")
    p.add_argument("--jobs", type=int, default=2, help="jobs at a time; the CPU cores are split between them")
    p.add_argument("--threads", type=int, default=None,
                   help="threads per job (default: CPU cores / --jobs); e.g. 1 for each of two invocations at once")
    p.add_argument("--preset", default="vit-tiny-patch4-32")
    p.add_argument("--model_overrides", default=CPU_MODEL, help="config overrides shared by all variants")
    p.add_argument("--extra_overrides", default="", help="appended to every variant: a modified method")
    p.add_argument("--extra_args", default="", help="run_pretraining.py flags appended for every variant, e.g. "
                   "'--strong_view_branch momentum': a modified method")
    p.add_argument("--tag", default="", help="names the runs of --extra_overrides / --extra_args (required with them)")
    p.add_argument("--batch_size", type=int, default=256)
    p.add_argument("--base_learning_rate", type=float, default=None, help="default 1e-3 (CPU), 1.5e-4 (--gpu)")
    p.add_argument("--unit_epochs", type=float, default=1.0, help="epochs over the training set per budget unit")
    p.add_argument("--probe_epochs", type=int, default=100)
    p.add_argument("--fewshot_fractions", default="0.01,0.1")
    p.add_argument("--fewshot_draws", type=int, default=5)
    p.add_argument("--budget", type=float, default=None, help="finetune/attention: the budget to start from "
                   "(default: the largest with a run of every variant); teacher/readout: only this budget's runs")
    p.add_argument("--finetune_epochs", default="1,2,4,8")
    p.add_argument("--finetune_samples", type=int, default=10000)
    p.add_argument("--finetune_seeds", default="0")
    p.add_argument("--finetune_pooling", choices=("cls", "mean"), default="cls",
                   help="finetune: what the head reads (run_classification.py --pooling); mean is MAE's global-pool "
                        "fine-tuning, recorded as `finetune_mean_top1` in ftmean<epochs>-<run>.json")
    p.add_argument("--attention_images", type=int, default=8)
    p.add_argument("--readouts", default=None, help="readout: record these read-outs of each checkpoint on disk "
                   "(some of cls, mean, cls+mean; `readouts` in its evals file) instead of the other one of its "
                   "training's (`other_readout`)")
    p.add_argument("--gpu", action="store_true",
                   help="GPU sizing: the full preset, a unit of 20 epochs, batch 512, bf16, 8 loader workers, "
                        "base LR 1.5e-4, one job at a time, fine-tuning on all 50,000 images")
    p.add_argument("--job", default=None, help=argparse.SUPPRESS)  # internal: one job's JSON spec
    args = p.parse_args(argv)
    if args.gpu:
        args.model_overrides, args.unit_epochs, args.batch_size, args.jobs = "", 20.0, 512, 1
        args.finetune_samples = TRAIN_IMAGES
    if args.output_dir is None:
        args.output_dir = str(ROOT / "benchmarks" / "results" / ("evidence-gpu" if args.gpu else "evidence"))
    if args.base_learning_rate is None:
        args.base_learning_rate = 1.5e-4 if args.gpu else 1e-3
    if (args.extra_overrides or args.extra_args) and not args.tag:
        p.error("--extra_overrides / --extra_args need a --tag naming the modified method")
    for name in args.variants.split(","):
        if name not in VARIANTS:
            p.error(f"--variants: unknown variant {name!r}; choose from {sorted(VARIANTS)}")
    return args


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def budget_name(budget: float) -> str:
    return f"{budget:g}x"


def run_name(variant: str, budget: float, seed: int, tag: str = "") -> str:
    return f"{variant}{'+' + tag if tag else ''}-{budget_name(budget)}-s{seed}"


def overrides(args, variant: str) -> str:
    return ",".join(x for x in (args.model_overrides, VARIANTS[variant], args.extra_overrides) if x)


def write_json(path: Path, data) -> None:
    """Atomic: an interruption never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


# ----------------------------------------------------------------------------------------------------------------------
# Jobs (each in its own process: its own threads, peak memory and log)


def pretrain_command(args, job: dict, run_dir: Path) -> list[str]:
    cmd = [
        "--dataset_name", args.dataset_name, "--preset", args.preset,
        "--config_overrides", overrides(args, job["variant"]), "--output_dir", str(run_dir),
        "--num_train_epochs", f"{job['budget'] * args.unit_epochs:g}",
        "--per_device_train_batch_size", str(args.batch_size), "--per_device_eval_batch_size", "512",
        "--base_learning_rate", str(args.base_learning_rate), "--seed", str(job["seed"]),
        "--max_eval_samples", "2000", "--knn_bank_size", "5000",  # the per-epoch monitor only
        "--eval_strategy", "epoch", "--save_strategy", "steps", "--save_steps", "100", "--save_total_limit", "1",
        "--logging_steps", "20", "--report_to", "none", "--disable_tqdm", "true",
    ]
    if args.gpu:
        cmd += ["--bf16", "true", "--dataloader_num_workers", "8"]
    else:
        cmd += ["--use_cpu", "true", "--dataloader_num_workers", "0"]
    return cmd + shlex.split(args.extra_args)


def frozen_features(args, run_dir: Path, branch: str = "online", pooling: str | None = None):
    """Features of all training and test images from a run's online (or momentum) encoder, pooled as its config says
    (the CLS token unless trained with `pooling=mean`) or as `pooling` asks, cached beside the checkpoint."""
    import torch

    if pooling == "cls+mean":  # from the two read-outs' caches
        from macrl_hf.evaluation import concat_readout

        cls_train, train_y, cls_test, test_y = frozen_features(args, run_dir, branch, "cls")
        mean_train, _, mean_test, _ = frozen_features(args, run_dir, branch, "mean")
        return concat_readout(cls_train, mean_train), train_y, concat_readout(cls_test, mean_test), test_y
    if pooling == json.loads((run_dir / "config.json").read_text()).get("pooling", "cls"):
        pooling = None  # the read-out it was trained with: the cache the pretrain stage wrote
    suffix = ("" if branch == "online" else f"_{branch}") + (f"_{pooling}" if pooling else "")
    cache = run_dir / f"features{suffix}.pt"
    if cache.exists():
        return torch.load(cache)
    from datasets import load_dataset

    from macrl_hf import MacrlModel
    from macrl_hf.data import IMAGE_COLUMN_CANDIDATES, LABEL_COLUMN_CANDIDATES
    from macrl_hf.evaluation import extract_features

    data = load_dataset(args.dataset_name)
    columns = data["train"].column_names
    image = next(c for c in IMAGE_COLUMN_CANDIDATES if c in columns)
    label = next(c for c in LABEL_COLUMN_CANDIDATES if c in columns)
    if branch == "online":
        encoder = MacrlModel.from_pretrained(run_dir)
    else:  # the EMA teacher, as DINO evaluates it
        from macrl_hf import MacrlForPreTraining

        encoder = MacrlForPreTraining.from_pretrained(run_dir).momentum_encoder
    encoder = encoder.to("cuda" if torch.cuda.is_available() else "cpu")
    processor = json.loads((run_dir / "preprocessor_config.json").read_text())
    common = dict(image_column=image, label_column=label, image_size=encoder.config.image_size,
                  mean=processor["image_mean"], std=processor["image_std"], batch_size=512,
                  pooling=pooling or encoder.config.pooling)
    features = (*extract_features(encoder, data["train"], **common), *extract_features(encoder, data["test"], **common))
    partial = cache.with_name(cache.name + ".partial")  # a stage stopped while saving leaves no half-written cache
    torch.save(features, partial)
    os.replace(partial, cache)
    return features


def save_untrained(args, job: dict, run_dir: Path) -> None:
    """Budget 0: the variant's model as `run_pretraining.py` would build it with this seed, saved untrained."""
    from transformers import ViTImageProcessor, set_seed
    from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    from macrl_hf import MacrlConfig, MacrlForPreTraining

    config = MacrlConfig.from_preset(args.preset)
    config.update_from_string(overrides(args, job["variant"]))
    set_seed(job["seed"])
    MacrlForPreTraining(config).save_pretrained(run_dir)
    processor = ViTImageProcessor(image_mean=IMAGENET_DEFAULT_MEAN, image_std=IMAGENET_DEFAULT_STD,
                                  size={"height": config.image_size, "width": config.image_size})
    processor.save_pretrained(run_dir)
    write_json(run_dir / "pretrain_summary.json", {"pretrain_seconds": 0.0, "steps": 0, "knn_curve_2000_test_images": [],
                                                   "last_log": {}})
    write_json(run_dir / "train_results.json", {"train_samples_per_second": None})


def pretrain_job(args, job: dict) -> None:
    import torch

    import run_pretraining

    run_dir = Path(args.output_dir) / "runs" / job["name"]
    if job["budget"] == 0 and not (run_dir / "train_results.json").exists():
        save_untrained(args, job, run_dir)  # the reference: what the encoder gives before any pretraining
    if not (run_dir / "train_results.json").exists():
        start = time.time()
        trainer = run_pretraining.main(pretrain_command(args, job, run_dir))
        history = trainer.state.log_history
        curve = sorted({e["epoch"]: e["eval_knn_top1_k20"] for e in history if "eval_knn_top1_k20" in e}.items())
        last = [e for e in history if "embedding_std" in e or "reconstruction_loss" in e]
        write_json(run_dir / "pretrain_summary.json", {
            "pretrain_seconds": round(time.time() - start, 1), "steps": trainer.state.global_step,
            "knn_curve_2000_test_images": curve, "last_log": last[-1] if last else {},
        })
    summary = json.loads((run_dir / "pretrain_summary.json").read_text())
    train = json.loads((run_dir / "train_results.json").read_text())
    result = {**{k: job[k] for k in ("variant", "tag", "budget", "seed")},
              "images_seen": summary["steps"] * args.batch_size, **summary,
              "train_samples_per_second": train.get("train_samples_per_second"),
              "overrides": overrides(args, job["variant"]), "extra_args": args.extra_args,
              "base_learning_rate": args.base_learning_rate,
              "threads": torch.get_num_threads(), **frozen_evaluations(args, run_dir, job["seed"])}
    write_json(Path(args.output_dir) / "evals" / f"{job['name']}.json", result)


def frozen_evaluations(args, run_dir: Path, seed: int, branch: str = "online", pooling: str | None = None) -> dict:
    """kNN (k=20), linear probe and few-shot probes of a run's frozen features on the test split."""
    from macrl_hf.evaluation import fewshot_accuracy, knn_accuracy, linear_probe_accuracy

    train_x, train_y, test_x, test_y = frozen_features(args, run_dir, branch, pooling)
    num_classes = int(train_y.max()) + 1
    return {"knn_top1": knn_accuracy(train_x, train_y, test_x, test_y, k=20, num_classes=num_classes),
            "linear_probe_top1": linear_probe_accuracy(train_x, train_y, test_x, test_y, args.probe_epochs,
                                                       num_classes, seed=seed),
            "fewshot": {f"{f:g}": fewshot_accuracy(train_x, train_y, test_x, test_y, f, args.fewshot_draws)
                        for f in floats(args.fewshot_fractions)}}


def runs_to_evaluate(args, key: str):
    """(name, evals, run directory) of every finished pretraining, not the untrained reference, whose checkpoint is
    still on disk and whose evals lack `key` yet (any, for `key=None`); only `--budget`'s if given; only
    `--variants`'."""
    out = Path(args.output_dir)
    variants = set(args.variants.split(","))
    for name, result in load_evals(out).items():
        run_dir = out / "runs" / name
        if ("linear_probe_top1" in result and key not in result and result.get("budget") != 0
                and (args.budget is None or result["budget"] == args.budget) and result.get("variant") in variants
                and (run_dir / "model.safetensors").exists()):
            yield name, result, run_dir


def teacher_stage(args) -> None:
    """The momentum (EMA) encoder of every finished run that has one, evaluated like the online encoder and
    recorded beside it (`momentum_encoder` in its evals file): which of the two encoders to export."""
    for name, result, run_dir in runs_to_evaluate(args, "momentum_encoder"):
        if result["variant"] == "mae":
            continue
        print(f"teacher: {name}", flush=True)
        result["momentum_encoder"] = frozen_evaluations(args, run_dir, result["seed"], branch="momentum")
        write_json(Path(args.output_dir) / "evals" / f"{name}.json", result)


def readout_stage(args) -> None:
    """The online encoder of every finished run read out the other way too (the mean of the patch tokens for a run
    trained on the CLS token, the CLS token for one trained on the mean), recorded beside it (`other_readout` in its
    evals file): is the CLS read-out unfair to a method? MAE puts no loss on its CLS token; MoCo and MACRL do.
    The unmodified methods' runs, or those of `--tag`; `--budget` for one budget only, `--variants` for some
    methods only. With `--readouts`, those read-outs instead (`readouts` in its evals file), every one from the
    checkpoint now on disk."""
    if args.readouts:
        return readouts_stage(args, args.readouts.split(","))
    for name, result, run_dir in runs_to_evaluate(args, "other_readout"):
        if result.get("tag", "") != args.tag:
            continue
        trained = json.loads((run_dir / "config.json").read_text()).get("pooling", "cls")
        pooling = "cls" if trained == "mean" else "mean"
        print(f"readout: {name} ({pooling})", flush=True)
        result["other_readout"] = {"pooling": pooling,
                                   **frozen_evaluations(args, run_dir, result["seed"], pooling=pooling)}
        write_json(Path(args.output_dir) / "evals" / f"{name}.json", result)


def readouts_stage(args, poolings: list[str]) -> None:
    """`readout --readouts`: each read-out of `poolings` a run lacks, from the weights on disk (so that the read-outs
    of one run compare the same weights, also where its checkpoint was re-created after its figures were taken)."""
    from macrl_hf.evaluation import READOUTS

    unknown = [p for p in poolings if p not in READOUTS]
    if unknown:
        sys.exit(f"--readouts: unknown read-out(s) {', '.join(unknown)}; choose from {', '.join(READOUTS)}")
    for name, result, run_dir in runs_to_evaluate(args, key=None):
        missing = [p for p in poolings if p not in result.get("readouts", {})]
        if result.get("tag", "") != args.tag or not missing:
            continue
        for pooling in missing:
            print(f"readout: {name} ({pooling})", flush=True)
            figures = frozen_evaluations(args, run_dir, result["seed"], pooling=pooling)
            result.setdefault("readouts", {})[pooling] = figures
            write_json(Path(args.output_dir) / "evals" / f"{name}.json", result)  # each as it lands


def finetune_command(args, job: dict, out: Path) -> list[str]:
    cmd = ["--model_name_or_path", job["source"],
           "--dataset_name", args.dataset_name, "--output_dir", str(out), "--protocol", "finetune",
           "--num_train_epochs", f"{job['epochs']:g}", "--max_train_samples", str(args.finetune_samples),
           "--per_device_train_batch_size", "128", "--per_device_eval_batch_size", "512",
           "--learning_rate", "1e-3", "--layer_decay", "0.75", "--weight_decay", "0.05",
           "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none", "--seed", str(job["seed"]),
           "--disable_tqdm", "true", "--pooling", job.get("pooling", "cls")]
    return cmd + (["--bf16", "true", "--dataloader_num_workers", "8"] if args.gpu else ["--use_cpu", "true"])


def finetune_job(args, job: dict) -> None:
    out = Path(args.output_dir) / "finetune" / job["name"]
    if not (out / "all_results.json").exists():
        cmd = [sys.executable, str(ROOT / "run_classification.py"), *finetune_command(args, job, out)]
        subprocess.run(cmd, check=True, cwd=ROOT)
    results = json.loads((out / "all_results.json").read_text())
    key = "finetune_top1" if job.get("pooling", "cls") == "cls" else f"finetune_{job['pooling']}_top1"
    write_json(Path(args.output_dir) / "evals" / f"{job['name']}.json", {
        **{k: job[k] for k in ("variant", "tag", "budget", "seed", "epochs")}, key: results["eval_accuracy"],
        "finetune_samples": args.finetune_samples, "train_runtime": results.get("train_runtime")})


# ----------------------------------------------------------------------------------------------------------------------
# Scheduling


def run_jobs(args, stage: str, jobs: list[dict]) -> None:
    """Run the jobs whose result is missing, `args.jobs` at a time, each with its share of the CPU threads.

    Each job is claimed with a lock file of its own, so that several invocations of the same stage (one per core,
    say) share one list: each takes the next job no other live invocation holds, and leaves when the rest are held.
    """
    out = Path(args.output_dir)
    done = lambda j: (out / "evals" / f"{j['name']}.json").exists()  # noqa: E731
    todo = [j for j in jobs if not done(j)]
    print(f"{stage}: {len(jobs) - len(todo)} of {len(jobs)} jobs already done; running {len(todo)}, "
          f"{args.jobs} at a time", flush=True)
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    running, failed = {}, []
    for name in ("SIGTERM", "SIGHUP"):  # `kill` or a closed terminal: stop the jobs too (see stop_jobs) ...
        if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) is not signal.SIG_IGN:  # ... not nohup's
            signal.signal(getattr(signal, name), _exit_on_signal)
    try:
        _schedule(args, stage, todo, done, env, running, failed)
    finally:
        stop_jobs(out, running)
    held = [j["name"] for j in todo if not done(j)]
    if held:
        print(f"{stage}: {len(held)} job(s) left to the other invocation(s) running them: {', '.join(held)}",
              flush=True)
    if failed:
        sys.exit(f"{stage}: {len(failed)} job(s) failed: {', '.join(failed)}; rerun the same command to retry them")


def _schedule(args, stage, todo, done, env, running, failed) -> None:
    """Keep `args.jobs` jobs running until none is left to claim, then wait for the last ones."""
    out = Path(args.output_dir)
    while True:
        while len(running) < args.jobs:
            job = next((j for j in todo if claim_job(out, j)), None)
            if job is None:
                break
            todo.remove(job)
            if done(job):  # finished by another invocation since this one started
                release_job(out, job)
                continue
            log = out / "logs" / f"{job['name']}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, __file__, f"_{stage}_job", "--job", json.dumps(job)] + _shared_argv(args)
            handle = open(log, "a")  # noqa: SIM115 - closed when the job ends
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=_DIE_WITH_PARENT)  # see stop_jobs
            running[job["name"]] = (proc, handle, time.time(), job)
            print(f"  started {job['name']} (log: {log})", flush=True)
        if not running:
            break
        time.sleep(5)
        for name, (proc, handle, started, job) in list(running.items()):
            if proc.poll() is None:
                continue
            handle.close()
            release_job(out, job)
            del running[name]
            minutes = (time.time() - started) / 60
            if proc.returncode == 0:
                print(f"  finished {name} in {minutes:.1f} min", flush=True)
            else:
                failed.append(name)
                print(f"  FAILED {name} (exit {proc.returncode}) after {minutes:.1f} min; see its log", flush=True)


def stop_jobs(out: Path, running: dict) -> None:
    """Stop the jobs still running when this invocation ends early (Ctrl-C, `kill`, an error).

    Each job runs in a process group of its own, so its own children (run_classification.py) stop with it. A job
    left running would hold no live lock once this invocation is gone: the next invocation would start the same run
    in the same directory beside it. A stopped job resumes from its last checkpoint when the command is rerun.
    """
    for name, (proc, handle, _, job) in list(running.items()):
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                _signal_group(proc, getattr(signal, "SIGKILL", signal.SIGTERM))
                proc.wait()
            print(f"  stopped {name}; rerun the same command to continue it from its last checkpoint", flush=True)
        handle.close()
        release_job(out, job)
        del running[name]


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through `finally`, unlike the default action


STOP_GRACE_SECONDS = 30.0  # how long a stopped job may take to unwind before its process group is killed
_stopping = False


def _stop_job_on_signal(signum, frame):
    """In a job process: unwind, so that `finally` blocks run and run_classification.py (a child) is stopped, and
    make sure the job ends even when a dependency swallows the SystemExit: datasets' fingerprinting, where a job
    spends much of a kNN evaluation, hashes a transform inside a bare `except:`. A job that has not ended after
    STOP_GRACE_SECONDS is killed with its process group (checkpoints are written atomically)."""
    global _stopping
    print(f"job: received signal {signum}; stopping (rerun the command to continue from the last checkpoint)",
          file=sys.stderr, flush=True)
    if not _stopping:
        _stopping = True
        threading.Thread(target=_kill_own_group_after, args=(STOP_GRACE_SECONDS, 128 + signum), daemon=True).start()
    raise SystemExit(128 + signum)


def _kill_own_group_after(seconds: float, status: int) -> None:
    time.sleep(seconds)
    print(f"job: still running {seconds:g} s after the stop signal; killing its process group", file=sys.stderr,
          flush=True)
    if hasattr(os, "killpg") and os.getpgid(0) == os.getpid():  # a job leads its own group (start_new_session)
        os.killpg(0, signal.SIGKILL)
    os._exit(status)


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may end by itself meanwhile
        os.killpg(proc.pid, signum) if hasattr(os, "killpg") else proc.terminate()


def _die_with_parent() -> None:
    """In a job process, before it starts: be sent SIGTERM if the invocation that started it dies, even by SIGKILL,
    which cannot be caught (Linux only; elsewhere the signals caught in run_jobs still stop the jobs)."""
    _LIBC.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


# loaded here, not between fork and exec, where only async-signal-safe work belongs
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_DIE_WITH_PARENT = _die_with_parent if _LIBC is not None else None


def _job_lock(out: Path, job: dict) -> Path:
    return out / "locks" / f"{job['name']}.lock"


def claim_job(out: Path, job: dict) -> bool:
    """Take `job` unless another live invocation holds it (its pid in the job's lock file, created atomically). A
    lock left by an invocation that died is taken over."""
    lock = _job_lock(out, job)
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            text = lock.read_text().strip() if lock.exists() else ""
            if not text or (text.isdigit() and _alive(int(text))):  # empty: its owner is writing its pid now
                return False
            lock.unlink(missing_ok=True)  # stale
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(str(os.getpid()))
        return True
    return False


def release_job(out: Path, job: dict) -> None:
    _job_lock(out, job).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return pid > 0


def _shared_argv(args) -> list[str]:
    """The options of this invocation, to pass on to a job process."""
    keep = ("output_dir", "dataset_name", "preset", "model_overrides", "extra_overrides", "extra_args", "batch_size",
            "base_learning_rate", "unit_epochs", "probe_epochs", "fewshot_fractions", "fewshot_draws",
            "finetune_samples", "tag")
    argv = [f"--{k}={getattr(args, k)}" for k in keep]
    return argv + (["--gpu"] if args.gpu else [])


def pretrain_jobs(args) -> list[dict]:
    jobs = [{"name": run_name(v, b, s, args.tag), "variant": v, "tag": args.tag, "budget": b, "seed": s}
            for b in floats(args.budgets) for s in map(int, floats(args.seeds)) for v in args.variants.split(",")]
    return sorted(jobs, key=lambda j: (j["budget"], j["seed"]))  # small budgets first: a curve exists early


def default_budget(args) -> float:
    if args.budget is not None:
        return args.budget
    evals = load_evals(Path(args.output_dir))
    done = {}
    for r in evals.values():
        if "linear_probe_top1" in r and not r.get("tag"):
            done.setdefault(r["budget"], set()).add(r["variant"])
    full = [b for b, v in done.items() if set(args.variants.split(",")) <= v]
    if not full:
        sys.exit("no budget has a finished pretraining of every variant yet: run the pretrain stage first")
    return max(full)


def finetune_jobs(args) -> list[dict]:
    budget = default_budget(args)
    jobs = []
    for seed in map(int, floats(args.finetune_seeds)):
        for variant in args.variants.split(","):
            source = Path(args.output_dir) / "runs" / run_name(variant, budget, seed, args.tag)
            if not (source / "model.safetensors").exists():
                sys.exit(f"finetune: {source} holds no finished pretraining; run the pretrain stage first")
            prefix = "ft" if args.finetune_pooling == "cls" else f"ft{args.finetune_pooling}"
            for epochs in floats(args.finetune_epochs):
                name = f"{prefix}{epochs:g}-{run_name(variant, budget, seed, args.tag)}"
                jobs.append({"name": name, "variant": variant, "tag": args.tag, "budget": budget, "seed": seed,
                             "epochs": epochs, "source": str(source), "pooling": args.finetune_pooling})
    return sorted(jobs, key=lambda j: -j["epochs"])  # longest first: the two lanes end together


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.output_dir)
    if args.stage.startswith("_"):  # inside a job process
        signal.signal(signal.SIGTERM, _stop_job_on_signal)  # so that run_classification.py, a child, is stopped too
        job = json.loads(args.job)
        return pretrain_job(args, job) if args.stage == "_pretrain_job" else finetune_job(args, job)
    local = args.dataset_name.startswith((".", "/", "~")) or args.dataset_name.count("/") != 1  # else a Hub id
    if args.stage in ("pretrain", "finetune") and local and not Path(args.dataset_name).exists():
        sys.exit(f"CIFAR-10 not found at {args.dataset_name}; pass --dataset_name (a local copy or uoft-cs/cifar10)")
    out.mkdir(parents=True, exist_ok=True)
    if args.stage == "pretrain":
        run_jobs(args, "pretrain", pretrain_jobs(args))
    elif args.stage == "finetune":
        run_jobs(args, "finetune", finetune_jobs(args))
    elif args.stage == "teacher":
        teacher_stage(args)
    elif args.stage == "readout":
        readout_stage(args)
    elif args.stage == "attention":
        from cifar10_attention import attention_stage

        attention_stage(args, default_budget(args), run_name)
    from cifar10_report import write_report

    write_report(out)


if __name__ == "__main__":
    main()
