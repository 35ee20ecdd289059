"""FSDP2 and the distributed setups MACRL refuses. accelerate runs FSDP on GPUs only (on CPU it silently sets up
DDP), so the sharded logic is tested under torch's `fully_shard` directly, on 2 CPU processes with gloo."""

import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import ROOT, pretrain_args, run_pretraining, tiny_config_dir
from torch import nn

from macrl_hf import MacrlForPreTraining
from macrl_hf.modeling_macrl import update_momentum


def test_fsdp2_matches_ddp_resumes_exactly_and_saves_a_loadable_model(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "tests")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(ROOT / "tests" / "fsdp_check.py"), str(tmp_path)]
    result = subprocess.run(cmd, cwd=ROOT / "tests", env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for report in reports:
        assert report["sharded"] and report["queue_is_plain_tensor"]  # parameters sharded; the queue replicated
        assert report["fsdp_vs_ddp"] < 1e-5, report  # 4 steps of FSDP2 = 4 steps of DDP
        assert report["resumed_vs_straight"] < 1e-6, report  # DCP checkpoint at step 2, then 2 more steps
        assert report["queue_same_on_all_ranks"] and report["queue_ptr"] == (4 * 8) % 24
        assert report["momentum_moved"] > 1e-5  # the EMA acted (shard by shard): not vacuous, and equal to DDP's
    assert [r["gathered_keys"] > 0 for r in sorted(reports, key=lambda r: r["rank"])] == [True, False]
    model = MacrlForPreTraining.from_pretrained(tmp_path / "final")  # the full model, gathered onto process 0
    assert int(model.queue_ptr) == 8
    export = subprocess.run([sys.executable, "-m", "macrl_hf.export", "--model_name_or_path", str(tmp_path / "final"),
                             "--output_dir", str(tmp_path / "vit")], cwd=ROOT, capture_output=True, text=True)
    assert export.returncode == 0, export.stderr[-2000:]
    from transformers import ViTModel

    _, info = ViTModel.from_pretrained(tmp_path / "vit", output_loading_info=True)
    assert not info["missing_keys"] or info["missing_keys"] <= {"pooler.dense.weight", "pooler.dense.bias"}


def test_momentum_update_refuses_branches_that_differ():
    online, target = nn.Linear(4, 4), nn.Linear(4, 4)
    update_momentum(online, target, 0.5)  # same shapes: fine
    with pytest.raises(RuntimeError, match="sharded differently"):
        update_momentum(online, nn.Linear(4, 2), 0.5)


def test_fsdp_that_accelerate_silently_turned_into_ddp_is_refused(tmp_path, monkeypatch):
    # What `accelerate launch --use_fsdp` sets; on CPU accelerate then sets up no FSDP at all.
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    config_dir = tiny_config_dir(tmp_path / "config")
    with pytest.raises(ValueError, match="FSDP was requested, but accelerate set up"):
        run_pretraining(pretrain_args(tmp_path / "run", config_dir, "--max_steps", "1"))
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_deepspeed_is_refused_naming_the_supported_setups():
    # transformers itself stops a DeepSpeed launch when deepspeed is not installed; with it installed, we refuse.
    from types import SimpleNamespace

    from macrl_hf.sharding import check_distributed_setup

    args = SimpleNamespace(deepspeed="ds_config.json", fsdp="", fsdp_config={})
    with pytest.raises(ValueError, match="DeepSpeed is not supported.*DDP.*FSDP2"):
        check_distributed_setup(args)


def test_fsdp_version_1_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "1")
    with pytest.raises(ValueError, match="--fsdp_version 2"):
        run_pretraining(pretrain_args(tmp_path / "run", tiny_config_dir(tmp_path / "config"), "--max_steps", "1"))


def test_shard_macrl_units_are_the_blocks_of_both_branches(tiny_config):
    # Without a process group, check the policy only: which modules would become FSDP units.
    model = MacrlForPreTraining(tiny_config())
    names = set(model._no_split_modules)
    units = [n for n, m in model.named_modules() if type(m).__name__ in names]
    assert "vit.embeddings" in units and "momentum_encoder.embeddings" in units
    assert {f"vit.layers.{i}" for i in range(2)} | {f"momentum_encoder.layers.{i}" for i in range(2)} <= set(units)
    assert torch.nn.Module  # noqa: B015 - keep torch imported for the collector
