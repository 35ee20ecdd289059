"""Shared helpers for the pipeline tests: tiny configs on disk, tiny image folders, running the scripts."""

import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from conftest import TINY  # noqa: E402


def tiny_config_dir(path: Path, **overrides) -> str:
    from macrl_hf import MacrlConfig

    MacrlConfig(**{**TINY, "queue_size": 256, **overrides}).save_pretrained(path)
    return str(path)


def image_folder(path: Path, per_class: int = 6, classes=("red", "green", "blue"), size: int = 12) -> str:
    """A folder of class sub-folders of small, colour-separable PNG images."""
    colours = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
    rng = np.random.default_rng(0)
    for name in classes:
        os.makedirs(path / name, exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colours[name]) + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(path / name / f"{i}.png")
    return str(path)


def pretrain_args(output_dir, config_dir, *extra) -> list[str]:
    return [
        "--output_dir", str(output_dir), "--config_name", str(config_dir), "--use_cpu", "--report_to", "none",
        "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16", "--max_train_samples", "64",
        "--max_eval_samples", "32", "--eval_strategy", "no", "--save_strategy", "no", "--logging_steps", "1",
        "--disable_tqdm", "true", "--seed", "0", *extra,
    ]


def run_pretraining(args):
    import run_pretraining as script

    return script.main([str(a) for a in args])


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())
