# Copyright 2026 The macrl-hf Authors. All rights reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Sharded and distributed training: which setups MACRL supports, and FSDP2 helpers.

Supported: one process, DDP (`accelerate launch --multi_gpu`, CPU or GPU, one node or several) and FSDP2
(`accelerate launch --use_fsdp --fsdp_version 2`, GPUs). Under FSDP2 both branches are sharded with the same policy
(every `_no_split_modules` block, then the whole model), so the EMA runs shard by shard (`update_momentum`) with no
communication; the queue is a buffer, replicated, and every process enqueues the same gathered keys.

Refused at start, with a message naming what works: DeepSpeed (ZeRO partitions the parameters the EMA reads), FSDP
version 1 (flat parameters: the EMA cannot pair them), and a launch that asked for FSDP but got something else
(accelerate turns `--use_fsdp` on CPU into plain DDP without saying so).
"""

import os

import torch

SUPPORTED = ("one process", "DDP: accelerate launch --multi_gpu --num_processes N (CPU or GPU, one or several nodes)",
             "FSDP2 on GPUs: accelerate launch --use_fsdp --fsdp_version 2 (examples/accelerate_fsdp2.yaml)")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def check_distributed_setup(training_args) -> None:
    """Raise `ValueError` for a distributed setup MACRL cannot train correctly, before anything is trained."""
    from accelerate.utils import DistributedType

    supported = "; ".join(SUPPORTED)
    if training_args.deepspeed or _env_flag("ACCELERATE_USE_DEEPSPEED"):
        raise ValueError("DeepSpeed is not supported: ZeRO partitions the parameters that MACRL's momentum (EMA) "
                         f"update reads, and its engine owns the optimizer step. Supported: {supported}.")
    fsdp_requested = bool(training_args.fsdp) or _env_flag("ACCELERATE_USE_FSDP")
    if not fsdp_requested:
        return
    version = str((training_args.fsdp_config or {}).get("version", os.environ.get("FSDP_VERSION", "")) or
                  os.environ.get("ACCELERATE_FSDP_VERSION", ""))
    if version and version != "2":
        raise ValueError(f"FSDP version {version} is not supported: its flat parameters cannot be paired for the "
                         "momentum update. Use --fsdp_version 2.")
    got = training_args.distributed_state.distributed_type
    if got != DistributedType.FSDP:
        raise ValueError(f"FSDP was requested, but accelerate set up {got.value} instead (it does so without FSDP's "
                         "GPUs, e.g. with --cpu/--use_cpu): refusing to train unsharded in silence. FSDP needs GPUs; "
                         f"on CPUs use DDP. Supported: {supported}.")


def is_sharded(model: torch.nn.Module) -> bool:
    """True when the model's parameters are FSDP2 shards (DTensors)."""
    return any(hasattr(p, "placements") for p in model.parameters())


def shard_macrl(model: torch.nn.Module, mesh=None, **fsdp_kwargs) -> torch.nn.Module:
    """FSDP2 (`fully_shard`) with the policy `accelerate` applies to transformers models: each module whose class is
    in `model._no_split_modules` (embeddings, transformer blocks, decoder) becomes a unit, in the online and the
    momentum branch alike, then the root. For code that shards by hand; `accelerate launch --use_fsdp` does the same
    with its transformer-based wrap policy."""
    from torch.distributed.fsdp import fully_shard

    block_names = set(getattr(model, "_no_split_modules", None) or ())
    blocks = [m for m in model.modules() if type(m).__name__ in block_names and m is not model]
    # Innermost first: a unit nested in another (a decoder's layers) is sharded before its parent.
    for module in sorted(blocks, key=lambda m: sum(1 for _ in m.modules())):
        fully_shard(module, mesh=mesh, **fsdp_kwargs)
    fully_shard(model, mesh=mesh, **fsdp_kwargs)
    return model


def full_state_dict(model: torch.nn.Module, all_ranks: bool = False) -> dict:
    """The whole, unsharded state dict on CPU; every process must call it. A sharded model's is gathered onto
    process 0 only (the others get `{}`), unless `all_ranks`. An unsharded model's own, on every process."""
    if not is_sharded(model):
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=not all_ranks)
    return {k: v.detach().cpu() for k, v in get_model_state_dict(model, options=options).items()}
