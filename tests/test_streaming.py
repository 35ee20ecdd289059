"""--streaming: local parquet shards and webdataset tar files, split across processes and workers, with an exact
resume (same images, order and augmentations as an uninterrupted run)."""

import io
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features
from datasets import Image as ImageFeature
from helpers import ROOT, pretrain_args, read_json, run_pretraining, tiny_config_dir
from PIL import Image
from safetensors.torch import load_file

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]


def _image(rng, label: int, size: int = 12) -> Image.Image:
    pixels = np.clip(np.array(COLOURS[label]) + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def parquet_shards(folder, shards: int = 4, per_shard: int = 24, split: str = "train", seed: int = 0) -> str:
    """`folder/data/{split}-0000k.parquet`: a dataset folder as the Hub lays it out."""
    rng = np.random.default_rng(seed)
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=["red", "green", "blue"])})
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for k in range(shards):
        labels = [int(i % 3) for i in range(per_shard)]
        data = Dataset.from_dict({"image": [_image(rng, y) for y in labels], "label": labels}, features=features)
        data.to_parquet(str(folder / "data" / f"{split}-{k:05d}-of-{shards:05d}.parquet"))
    return str(folder)


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory):
    return tiny_config_dir(tmp_path_factory.mktemp("config"))


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream")
    parquet_shards(folder, split="train")
    parquet_shards(folder, shards=1, per_shard=30, split="validation", seed=1)
    return folder


def stream_args(out, config_dir, data_flag, data, *extra):
    base = pretrain_args(out, config_dir)
    at = base.index("--max_train_samples")  # not for streams
    return [*base[:at], *base[at + 2:], data_flag, data, "--streaming", "--shuffle_buffer_size", "16",
            "--knn_bank_size", "48", *extra]


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_resumed_stream_ends_like_an_uninterrupted_one(tmp_path, config_dir, shards, workers):
    # 5 steps of 8 per process read 40 of the 96 streamed images; the resume starts mid-pass at step 3 (with two
    # workers: an odd micro-batch, so the workers' roles rotate).
    common = ("--max_steps", "5", "--dataloader_num_workers", workers)
    straight = tmp_path / "straight"
    run_pretraining(stream_args(straight, config_dir, "--dataset_name", str(shards), *common, "--save_strategy", "steps",
                                "--save_steps", "3", "--save_total_limit", "3"))
    resumed = tmp_path / "resumed"
    run_pretraining(stream_args(resumed, config_dir, "--dataset_name", str(shards), *common, "--resume_from_checkpoint",
                                straight / "checkpoint-3"))
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert int(a["queue_ptr"]) == 5 * 8 % 256
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name
    mid = load_file(straight / "checkpoint-3" / "model.safetensors")
    assert not torch.equal(mid["queue"], a["queue"])  # not vacuous


def test_a_stream_runs_past_its_end_and_the_monitors_use_its_first_images(tmp_path, config_dir, shards):
    # 14 steps of 8 = 112 images from a 96-image stream: a second pass, reshuffled.
    trainer = run_pretraining(stream_args(tmp_path / "run", config_dir, "--dataset_name", str(shards), "--max_steps", "14",
                                          "--eval_strategy", "steps", "--eval_steps", "14"))
    assert trainer.state.global_step == 14
    knn = [e["eval_knn_top1_k20"] for e in trainer.state.log_history if "eval_knn_top1_k20" in e]
    assert knn and all(0.0 <= v <= 1.0 for v in knn)
    assert read_json(tmp_path / "run" / "all_results.json")["eval_knn_top1_k20"] >= 0.0


def test_streaming_needs_max_steps_and_no_max_train_samples(tmp_path, config_dir, shards):
    with pytest.raises(ValueError, match="give --max_steps"):
        run_pretraining(stream_args(tmp_path / "a", config_dir, "--dataset_name", str(shards), "--num_train_epochs", "1"))
    with pytest.raises(ValueError, match="--max_train_samples does not apply to --streaming"):
        run_pretraining(stream_args(tmp_path / "b", config_dir, "--dataset_name", str(shards), "--max_steps", "1",
                                    "--max_train_samples", "8"))
    with pytest.raises(ValueError, match="only 4 shard"):
        run_pretraining(stream_args(tmp_path / "c", config_dir, "--dataset_name", str(shards), "--max_steps", "1",
                                    "--dataloader_num_workers", "5"))


def test_a_webdataset_folder_streams_and_a_bad_member_is_skipped_by_name(tmp_path, config_dir, caplog):
    rng = np.random.default_rng(0)
    folder = tmp_path / "wds"
    folder.mkdir()
    for shard in range(2):
        with tarfile.open(folder / f"shard-{shard:04d}.tar", "w") as tar:
            for i in range(20):
                key = f"s{shard}_{i:03d}"
                buffer = io.BytesIO()
                _image(rng, i % 3).save(buffer, format="JPEG")
                payload = b"not a JPEG at all" if (shard, i) == (1, 5) else buffer.getvalue()
                for name, data in ((f"{key}.jpg", payload), (f"{key}.cls", str(i % 3).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    trainer = run_pretraining(stream_args(tmp_path / "run", config_dir, "--train_dir", str(folder), "--max_steps", "5"))
    assert trainer.state.global_step == 5
    assert "Skipping undecodable image" in caplog.text


def test_two_processes_stream_their_own_parts_and_share_one_queue(tmp_path, config_dir, shards):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29531",
           str(ROOT / "tests" / "ddp_pretrain.py"),
           *stream_args(out, config_dir, "--dataset_name", str(shards), "--max_steps", "3", "--per_device_train_batch_size", "4")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "tests")}
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    rank0, rank1 = (torch.load(out / f"rank{r}.pt") for r in (0, 1))
    assert torch.equal(rank0["queue"], rank1["queue"]) and int(rank0["queue_ptr"]) == 3 * 2 * 4
