import os
import signal
import subprocess
import sys

import pytest
import torch
from helpers import ROOT, image_folder, pretrain_args, read_json, run_pretraining, tiny_config_dir
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForPreTraining

from macrl_hf import MacrlForPreTraining, MacrlModel


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory):
    return tiny_config_dir(tmp_path_factory.mktemp("config"))


def test_demo_run_leaves_a_self_contained_checkpoint(tmp_path, config_dir, caplog):
    out = tmp_path / "run"
    trainer = run_pretraining(pretrain_args(out, config_dir, "--max_steps", "3", "--eval_strategy", "steps",
                                            "--eval_steps", "3", "--report_to", "tensorboard"))
    assert "BUILT-IN DEMO DATA" in caplog.text
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "README.md", "modeling_macrl.py",
                 "all_results.json"):
        assert (out / name).is_file(), name
    model = MacrlForPreTraining.from_pretrained(out)
    assert isinstance(AutoModelForPreTraining.from_pretrained(out), MacrlForPreTraining)
    assert isinstance(AutoModel.from_pretrained(out), MacrlModel)
    assert int(model.queue_ptr) == 3 * 8  # three optimizer steps of 8 keys
    results = read_json(out / "all_results.json")
    assert 0.0 <= results["eval_knn_top1_k20"] <= 1.0 and results["eval_loss"] > 0
    knn = [(e["step"], e["eval_knn_top1_k20"]) for e in trainer.state.log_history if "eval_knn_top1_k20" in e]
    assert [step for step, _ in knn][:2] == [0, 3]  # the untrained baseline, then the first evaluation
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert {"reconstruction_loss", "contrastive_loss", "embedding_std", "momentum"} <= set(logged[0])
    assert logged[0]["momentum"] < logged[-1]["momentum"] <= 1.0  # the cosine schedule rises
    assert list((out / "reconstructions").glob("step-*.png"))
    assert list((out / "runs").rglob("events.out.tfevents.*"))
    assert "macrl" in (out / "README.md").read_text()


def test_mae_variant_logs_no_contrastive_monitors(tmp_path, config_dir):
    trainer = run_pretraining(pretrain_args(tmp_path / "mae", config_dir, "--max_steps", "2", "--config_overrides",
                                            "contrastive_weight=0"))
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 2 and all(entry["reconstruction_loss"] > 0 for entry in logged)
    assert not {"embedding_std", "momentum"} & set(logged[0])


def test_warmup_is_a_share_of_the_run_and_eval_keeps_only_the_loss(tmp_path):
    import run_pretraining as script

    args = script.PretrainingArguments(output_dir=str(tmp_path))
    assert args.get_warmup_steps(1000) == 50
    assert args.prediction_loss_only and args.ddp_broadcast_buffers is False


def test_subsets_are_drawn_from_every_class(tmp_path):
    from macrl_hf.data import load_image_data

    folder = image_folder(tmp_path / "sorted", per_class=8)
    data = load_image_data(train_dir=folder, max_train_samples=6, train_val_split=0)
    assert len(data.train) == 6 and len(set(data.train["label"])) > 1


def test_learning_rate_scales_with_total_batch(tmp_path, config_dir):
    trainer = run_pretraining(pretrain_args(tmp_path / "lr", config_dir, "--max_steps", "1", "--base_learning_rate",
                                            "1e-3", "--gradient_accumulation_steps", "2"))
    assert trainer.args.learning_rate == pytest.approx(1e-3 * 16 / 256)


def test_gradient_accumulation_updates_once_per_optimizer_step(tmp_path, config_dir):
    trainer = run_pretraining(pretrain_args(tmp_path / "acc", config_dir, "--max_steps", "2",
                                            "--gradient_accumulation_steps", "2", "--per_device_train_batch_size", "4"))
    model = trainer.model
    assert int(model.queue_ptr) == 2 * 2 * 4  # every micro-batch's keys, enqueued after its optimizer step
    assert trainer._pending_keys == []


def test_a_skipped_fp16_step_changes_neither_momentum_nor_queue(tmp_path, config_dir, monkeypatch):
    from accelerate import Accelerator

    monkeypatch.setattr(Accelerator, "optimizer_step_was_skipped", property(lambda self: True))
    from macrl_hf import MacrlConfig

    start = MacrlForPreTraining(MacrlConfig.from_pretrained(config_dir))
    start.save_pretrained(tmp_path / "start")
    trainer = run_pretraining(pretrain_args(tmp_path / "skip", config_dir, "--max_steps", "2", "--model_name_or_path",
                                            tmp_path / "start"))
    model = trainer.model
    assert int(model.queue_ptr) == 0
    assert torch.equal(model.queue, start.queue)
    for before, after in zip(start.momentum_encoder.parameters(), model.momentum_encoder.parameters()):
        assert torch.equal(before, after)


def test_resume_reproduces_an_uninterrupted_run(tmp_path, config_dir):
    straight = tmp_path / "straight"
    run_pretraining(pretrain_args(straight, config_dir, "--max_steps", "6", "--save_strategy", "steps",
                                  "--save_steps", "3", "--save_total_limit", "3"))
    resumed = tmp_path / "resumed"
    run_pretraining(pretrain_args(resumed, config_dir, "--max_steps", "6", "--resume_from_checkpoint",
                                  straight / "checkpoint-3"))
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and int(a["queue_ptr"]) == 48
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name
    mid = load_file(straight / "checkpoint-3" / "model.safetensors")
    assert not torch.equal(mid["queue"], a["queue"])  # the comparison is not vacuous


def test_last_checkpoint_in_output_dir_is_found(tmp_path, config_dir, caplog):
    out = tmp_path / "auto"
    run_pretraining(pretrain_args(out, config_dir, "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "2"))
    trainer = run_pretraining(pretrain_args(out, config_dir, "--max_steps", "3"))
    assert "Resuming from" in caplog.text and "checkpoint-2" in caplog.text
    assert trainer.state.global_step == 3


def test_a_checkpoint_whose_writing_was_interrupted_is_skipped(tmp_path, config_dir, caplog):
    """Killed while writing checkpoint-4 (its weights cut short, no trainer_state.json yet): resume from checkpoint-2
    instead of failing on the newest directory, as transformers' get_last_checkpoint would."""
    out = tmp_path / "auto"
    run_pretraining(pretrain_args(out, config_dir, "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "2"))
    partial = out / "checkpoint-4"
    partial.mkdir()
    weights = (out / "checkpoint-2" / "model.safetensors").read_bytes()
    (partial / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    trainer = run_pretraining(pretrain_args(out, config_dir, "--max_steps", "3"))
    assert f"Skipping {partial}" in caplog.text and f"Resuming from {out / 'checkpoint-2'}" in caplog.text
    assert trainer.state.global_step == 3


def test_the_step_0_baseline_is_logged_once_across_a_resume(tmp_path, config_dir):
    out = tmp_path / "run"
    every_2 = ("--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps", "--save_steps", "2")
    run_pretraining(pretrain_args(out, config_dir, "--max_steps", "2", *every_2))
    trainer = run_pretraining(pretrain_args(out, config_dir, "--max_steps", "4", *every_2))
    evaluated = [e["step"] for e in trainer.state.log_history if "eval_knn_top1_k20" in e]
    assert evaluated == [0, 2, 4, 4]  # step 0 once; the last evaluation is the final one after training
    assert read_json(out / "trainer_state.json")["log_history"][0]["step"] == 0


def test_undecodable_files_are_skipped_and_summarised(tmp_path, config_dir, caplog):
    folder = image_folder(tmp_path / "images", per_class=8)
    (tmp_path / "images" / "red" / "empty.png").write_bytes(b"")
    (tmp_path / "images" / "red" / "text.jpg").write_bytes(b"hello, not a JPEG")
    good = (tmp_path / "images" / "red" / "0.png").read_bytes()
    (tmp_path / "images" / "red" / "truncated.png").write_bytes(good[: len(good) // 3])
    trainer = run_pretraining(pretrain_args(tmp_path / "bad", config_dir, "--train_dir", folder, "--num_train_epochs",
                                            "2", "--per_device_train_batch_size", "9", "--train_val_split", "0"))
    assert trainer.state.global_step == 2 * (27 // 9)
    for name in ("empty.png", "text.jpg", "truncated.png"):
        assert name in caplog.text
    assert "Skipped 6 undecodable image(s) during training (3 distinct)" in caplog.text


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dataset_name", "./no/such/dataset"], "no such directory"),
        (["--train_dir", "/no/such/folder"], "--train_dir '/no/such/folder': no such directory"),
        (["--image_column_name", "picture"], "--image_column_name='picture' is not a column"),
        (["--max_train_samples", "0"], "the train split is empty|fewer than one batch"),
    ],
)
def test_bad_data_arguments_fail_before_training(tmp_path, config_dir, extra, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        run_pretraining(pretrain_args(tmp_path / "out", config_dir, "--max_steps", "1", *extra))
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_empty_dataset_is_an_error(tmp_path, config_dir):
    from datasets import Dataset, Features, Image

    empty = Dataset.from_dict({"image": []}, features=Features({"image": Image()}))
    os.makedirs(tmp_path / "parquet")
    empty.to_parquet(tmp_path / "parquet" / "train.parquet")
    with pytest.raises(ValueError, match="is the dataset empty"):
        run_pretraining(pretrain_args(tmp_path / "out", config_dir, "--dataset_name", tmp_path / "parquet"))
    empty.save_to_disk(tmp_path / "saved")
    with pytest.raises(ValueError, match="is it empty"):
        run_pretraining(pretrain_args(tmp_path / "out", config_dir, "--dataset_name", tmp_path / "saved"))


def test_output_dir_with_another_model_is_not_touched(tmp_path, config_dir):
    from transformers import ViTConfig, ViTModel

    other = tmp_path / "vit"
    ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)).save_pretrained(other)
    before = {p.name: p.stat().st_mtime_ns for p in other.iterdir()}
    with pytest.raises(ValueError, match="holds a 'vit' model"):
        run_pretraining(pretrain_args(other, config_dir, "--max_steps", "1"))
    assert {p.name: p.stat().st_mtime_ns for p in other.iterdir()} == before


def launch_two_processes(tmp_path, args, timeout=600):
    """Run tests/ddp_pretrain.py under `accelerate launch` with 2 CPU processes; return each rank's dumped state."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(ROOT / "tests" / "ddp_pretrain.py"), *args]
    # A session of its own, so that a hang kills the ranks too, not only the launcher.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               cwd=tmp_path, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"the 2-process run hung for {timeout} s: {stderr[-3000:]}")
    assert process.returncode == 0, stdout[-2000:] + stderr[-4000:]
    out = args[args.index("--output_dir") + 1]
    return torch.load(f"{out}/rank0.pt"), torch.load(f"{out}/rank1.pt")


def test_two_processes_hold_identical_queue_and_momentum(tmp_path, config_dir):
    rank0, rank1 = launch_two_processes(
        tmp_path, pretrain_args(tmp_path / "ddp", config_dir, "--max_steps", "3", "--per_device_train_batch_size", "4"))
    assert int(rank0["queue_ptr"]) == 3 * 2 * 4  # steps x global batch: every process enqueues the gathered keys
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    assert not torch.equal(rank0["queue"][:24], rank0["queue"][24:48])  # keys were written, not left empty
    # The learning rate scales with the global batch: base x 4 per device x 2 processes / 256 (as on several nodes).
    assert float(rank0["learning_rate"]) == pytest.approx(1.5e-4 * 4 * 2 / 256)


def test_a_process_whose_whole_batch_failed_to_decode_does_not_hang_the_others(tmp_path, config_dir):
    # Batches of one image per process, half of the files undecodable: in some step one process has no image while
    # the other trains; both must still meet in the gradient all-reduce and the key gather.
    folder = image_folder(tmp_path / "images", per_class=2)
    for i in range(6):
        (tmp_path / "images" / "red" / f"bad{i}.png").write_bytes(b"not a PNG")
    args = pretrain_args(tmp_path / "ddp", config_dir, "--train_dir", folder, "--train_val_split", "0", "--max_steps",
                         "12", "--per_device_train_batch_size", "1")
    rank0, rank1 = launch_two_processes(tmp_path, args, timeout=300)
    empty0, empty1 = rank0.pop("empty_batches"), rank1.pop("empty_batches")
    rank0.pop("learning_rate"), rank1.pop("learning_rate")
    assert len(empty0) == len(empty1) == 12
    assert (empty0 != empty1).any()  # a step where one process had no image while the other trained
    assert int(rank0["queue_ptr"]) == 12 * 2 - int(empty0.sum() + empty1.sum())  # blank batches enqueue nothing
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name


def test_contrastive_warmup_is_applied_and_logged_by_the_trainer(tmp_path, config_dir):
    trainer = run_pretraining(pretrain_args(tmp_path / "ramp", config_dir, "--max_steps", "4", "--config_overrides",
                                            "contrastive_warmup=0.5,predictor_hidden_size=16"))
    scales = [e["contrastive_scale"] for e in trainer.state.log_history if "contrastive_scale" in e]
    assert scales == [0.0, 0.5, 1.0, 1.0]  # step / (0.5 x 4 steps), at each step's forward
