"""MACRL against MAE and MoCo on CIFAR-10 at an equal budget: same encoder, data, augmentations, epochs, batch, seed.

    python benchmarks/cifar10_compare.py                       # CPU sizing (45-60 minutes on 2 cores)
    python benchmarks/cifar10_compare.py --gpu                 # longer settings for a GPU: full ViT-Tiny, 100 epochs

Variants (config overrides on one base config):
    macrl  the config defaults;
    mae    contrastive_weight=0 (no momentum branch at all);
    moco   mask_ratio=0, reconstruction_weight=0 (no decoder).
Each is pretrained with run_pretraining.py (its kNN monitor gives the learning curve: kNN top-1, k=20, after every
epoch), then evaluated on the test split with kNN (k=20, all training images of the run as memory bank), a linear
probe (BatchNorm without affine + linear layer on frozen CLS features, as MAE) and a short fine-tune
(run_classification.py). Writes `results.json`, `results.md` and plots into --output_dir (default
benchmarks/results/cifar10). Re-running resumes: finished stages are read back, an interrupted pretraining continues
from its last checkpoint.
"""

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10"
VARIANTS = {
    "macrl": "",
    "mae": "contrastive_weight=0",
    "moco": "mask_ratio=0,reconstruction_weight=0",
}
# CPU sizing: a 4-layer, 128-wide ViT on 32 px images with 4 px patches.
CPU_MODEL = "num_hidden_layers=4,hidden_size=128,num_attention_heads=4,intermediate_size=512,queue_size=4096"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset_name", default=str(CIFAR))
    p.add_argument("--image_column_name", default=None, help="default: found as run_pretraining.py finds it")
    p.add_argument("--label_column_name", default=None, help="default: found as run_pretraining.py finds it")
    p.add_argument("--output_dir", default=str(ROOT / "benchmarks" / "results" / "cifar10"))
    p.add_argument("--variants", default="macrl,mae,moco")
    p.add_argument("--preset", default="vit-tiny-patch4-32")
    p.add_argument("--model_overrides", default=CPU_MODEL, help="config overrides shared by all variants")
    p.add_argument("--extra_overrides", default="", help="appended to every variant, e.g. for a sweep")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--train_samples", type=int, default=10000)
    p.add_argument("--batch_size", type=int, default=256)
    p.add_argument("--base_learning_rate", type=float, default=None,
                   help="lr = this * batch / 256; default 1e-3 at the CPU sizing (200 steps: the best of the sweep, "
                        "benchmarks/results/cifar10_sweep) and MAE's 1.5e-4 with --gpu")
    p.add_argument("--monitor_eval_samples", type=int, default=2000, help="test images for the per-epoch kNN")
    p.add_argument("--monitor_bank", type=int, default=5000, help="training images as per-epoch kNN memory bank")
    p.add_argument("--probe_epochs", type=int, default=100)
    p.add_argument("--finetune_epochs", type=float, default=1.0)
    p.add_argument("--finetune_samples", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gpu", action="store_true", help="GPU settings: full preset, 100 epochs, all 50k images, bf16")
    p.add_argument("--stage", default=None, help=argparse.SUPPRESS)  # internal: one pretraining in a subprocess
    p.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.gpu:
        args.model_overrides, args.epochs, args.train_samples = "", 100, 50000
        args.monitor_eval_samples, args.monitor_bank, args.finetune_epochs = 10000, 50000, 20
        args.finetune_samples, args.batch_size = 50000, 512
    if args.base_learning_rate is None:
        args.base_learning_rate = 1.5e-4 if args.gpu else 1e-3
    return args


def overrides(args, variant: str) -> str:
    return ",".join(x for x in (args.model_overrides, VARIANTS[variant], args.extra_overrides) if x)


def pretrain_command(args, variant: str, run_dir: Path) -> list[str]:
    cmd = [
        "--dataset_name", args.dataset_name, "--preset", args.preset, "--config_overrides", overrides(args, variant),
        "--output_dir", str(run_dir), "--num_train_epochs", str(args.epochs), "--per_device_train_batch_size",
        str(args.batch_size), "--per_device_eval_batch_size", "512", "--base_learning_rate",
        str(args.base_learning_rate), "--max_train_samples", str(args.train_samples), "--max_eval_samples",
        str(args.monitor_eval_samples), "--knn_bank_size", str(args.monitor_bank), "--seed", str(args.seed),
        "--report_to", "none", "--logging_steps", "20", "--save_total_limit", "1", "--dataloader_num_workers", "0",
    ]
    for flag in ("image_column_name", "label_column_name"):
        if getattr(args, flag):
            cmd += [f"--{flag}", getattr(args, flag)]
    if args.gpu:
        cmd += ["--bf16", "true", "--dataloader_num_workers", "8"]
    else:
        cmd += ["--use_cpu", "true"]
    return cmd


def run_pretraining_stage(args) -> None:
    """Runs in a subprocess, so that its peak memory is its own."""
    sys.path.insert(0, str(ROOT))
    import run_pretraining

    run_dir = Path(args.output_dir) / "runs" / args.variant
    start = time.time()
    trainer = run_pretraining.main(pretrain_command(args, args.variant, run_dir))
    train = json.loads((run_dir / "train_results.json").read_text())
    peak = (torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available()
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    curve = [(e["epoch"], e[f"eval_knn_top1_k{20}"]) for e in trainer.state.log_history if "eval_knn_top1_k20" in e]
    summary = {"images_per_second": train["train_samples_per_second"], "peak_memory_mb": round(peak, 1),
               "pretrain_seconds": round(time.time() - start, 1), "knn_curve": curve,
               "device": "cuda" if torch.cuda.is_available() else "cpu"}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))


def evaluation_splits(args):
    """(train, test, image column, label column) of --dataset_name, found as run_pretraining.py finds them: the
    same column detection (or --image_column_name / --label_column_name) and the same validation split."""
    from macrl_hf.data import load_image_data

    data = load_image_data(args.dataset_name, image_column_name=args.image_column_name,
                           label_column_name=args.label_column_name, seed=args.seed)
    if data.validation is None or data.label_column is None:
        sys.exit(f"{args.dataset_name}: the evaluation needs a labelled validation split "
                 f"(label column: {data.label_column}, validation split: {data.validation is not None})")
    return data.train, data.validation, data.image_column, data.label_column


def frozen_evaluations(args, variant: str, run_dir: Path) -> dict:
    """kNN (k=20) and linear probe fitted on the first --train_samples training images (not the seeded subset the run
    pretrained on), evaluated on the whole test split."""
    from macrl_hf import MacrlModel
    from macrl_hf.evaluation import extract_features, knn_accuracy, linear_probe_accuracy

    train, test, image_column, label_column = evaluation_splits(args)
    train = train.select(range(min(args.train_samples, len(train))))
    encoder = MacrlModel.from_pretrained(run_dir)
    processor = json.loads((run_dir / "preprocessor_config.json").read_text())
    common = dict(image_column=image_column, label_column=label_column, image_size=encoder.config.image_size,
                  mean=processor["image_mean"], std=processor["image_std"], batch_size=512,
                  pooling=encoder.config.pooling)
    train_x, train_y = extract_features(encoder, train, **common)
    test_x, test_y = extract_features(encoder, test, **common)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    return {
        "knn_top1": knn_accuracy(train_x, train_y, test_x, test_y, k=20, num_classes=num_classes),
        "linear_probe_top1": linear_probe_accuracy(train_x, train_y, test_x, test_y, args.probe_epochs,
                                                   num_classes, args.seed),
    }


def finetune(args, variant: str, run_dir: Path, out: Path) -> dict:
    cmd = [sys.executable, str(ROOT / "run_classification.py"), "--model_name_or_path", str(run_dir),
           "--dataset_name", args.dataset_name, "--output_dir", str(out), "--protocol", "finetune",
           "--num_train_epochs", str(args.finetune_epochs), "--max_train_samples", str(args.finetune_samples),
           "--per_device_train_batch_size", "128", "--per_device_eval_batch_size", "512", "--learning_rate", "1e-3",
           "--layer_decay", "0.75", "--weight_decay", "0.05", "--eval_strategy", "no", "--save_strategy", "no",
           "--report_to", "none", "--seed", str(args.seed), "--disable_tqdm", "true"]
    cmd += ["--bf16", "true"] if args.gpu else ["--use_cpu", "true"]
    for flag in ("image_column_name", "label_column_name"):
        if getattr(args, flag):
            cmd += [f"--{flag}", getattr(args, flag)]
    subprocess.run(cmd, check=True, cwd=ROOT)
    results = json.loads((out / "all_results.json").read_text())
    return {"finetune_top1": results["eval_accuracy"]}


def write_report(args, results: dict) -> None:
    out = Path(args.output_dir)
    results_file = out / "results.json"
    # Merge with what is on disk: invocations for different --variants may share an output dir and run at once.
    on_disk = json.loads(results_file.read_text())["results"] if results_file.exists() else {}
    mine = args.variants.split(",")
    merged = {**{k: v for k, v in on_disk.items() if k not in mine}, **{k: results[k] for k in mine if k in results}}
    results = {k: merged[k] for k in VARIANTS if k in merged}
    tmp = results_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"settings": vars(args), "results": results}, indent=2))
    tmp.replace(results_file)  # atomic: an interruption never leaves a half-written results.json
    extra = f" plus `{args.extra_overrides}`" if args.extra_overrides else ""
    lines = [
        f"CIFAR-10 (JPEG copy), {args.preset} with `{args.model_overrides or 'no overrides'}`{extra}, {args.epochs} "
        f"epochs on {args.train_samples} training images, batch {args.batch_size}, base learning rate "
        f"{args.base_learning_rate:g}, seed {args.seed}.",
        "",
        "| variant | kNN top-1 (k=20) | linear probe top-1 | fine-tune top-1 | pretrain images/s | peak memory (MB) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():

        def cell(key, fmt="{:.1%}", r=r):
            return fmt.format(r[key]) if key in r else "not run"

        lines.append(f"| {name} | {cell('knn_top1')} | {cell('linear_probe_top1')} | {cell('finetune_top1')} | "
                     f"{cell('images_per_second', '{:.0f}')} | {cell('peak_memory_mb', '{:.0f}')} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        for name, r in results.items():
            if r.get("knn_curve"):
                ax.plot(*zip(*r["knn_curve"]), marker="o", label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("kNN top-1 (k=20)")
        ax.set_title("CIFAR-10 learning curve")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "knn_curve.png", dpi=120)
    except ImportError:
        pass


def main(argv=None):
    args = parse_args(argv)
    if args.stage == "pretrain":
        return run_pretraining_stage(args)
    if args.dataset_name == str(CIFAR) and not CIFAR.exists():
        sys.exit(f"CIFAR-10 not found at {CIFAR}; pass --dataset_name (a local copy, or a Hub id: uoft-cs/cifar10)")
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "results.json"
    results = json.loads(results_file.read_text())["results"] if results_file.exists() else {}
    for variant in args.variants.split(","):
        r = results.setdefault(variant, {})
        run_dir = out / "runs" / variant
        if not (run_dir / "summary.json").exists():
            base = [sys.executable, __file__, "--stage", "pretrain", "--variant", variant]
            subprocess.run(base + (argv if argv is not None else sys.argv[1:]), check=True, cwd=ROOT)
        r.update(json.loads((run_dir / "summary.json").read_text()))
        if "linear_probe_top1" not in r:
            r.update(frozen_evaluations(args, variant, run_dir))
            write_report(args, results)
        if "finetune_top1" not in r and args.finetune_epochs > 0:
            r.update(finetune(args, variant, run_dir, out / "finetune" / variant))
        grids = sorted((run_dir / "reconstructions").glob("step-*.png"))
        if grids:
            shutil.copy(grids[-1], out / f"reconstructions_{variant}.png")
        write_report(args, results)


if __name__ == "__main__":
    main()
