"""Run by test_sharding.py under `torchrun --nproc_per_node 2` (gloo, CPU): the same MACRL steps under DDP and
under FSDP2 (`shard_macrl`), a resume from a sharded (DCP) checkpoint, and the final full save; writes what it
found to OUTPUT_DIR/rank{r}.json for the test to judge."""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from conftest import TINY
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.nn.parallel import DistributedDataParallel

from macrl_hf import MacrlConfig, MacrlForPreTraining
from macrl_hf.sharding import full_state_dict, is_sharded, shard_macrl

STEPS, RESUME_AT, PER_RANK = 4, 2, 4
out = Path(sys.argv[1])
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
config = MacrlConfig(**{**TINY, "queue_size": 24, "momentum": 0.9})
data = torch.Generator().manual_seed(0)
global_batch = PER_RANK * world
views = torch.randn(STEPS, 2, global_batch, 3, 16, 16, generator=data)
noise = torch.rand(STEPS, global_batch, config.num_patches, generator=data)
mine = slice(rank * PER_RANK, (rank + 1) * PER_RANK)


def build(kind: str):
    torch.manual_seed(0)
    model = MacrlForPreTraining(config)
    model = DistributedDataParallel(model, broadcast_buffers=False) if kind == "ddp" else shard_macrl(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    return model, optimizer


def train(model, optimizer, steps):
    inner = model.module if isinstance(model, DistributedDataParallel) else model
    for step in steps:
        out_ = model(views[step, 0, mine], views[step, 1, mine], noise=noise[step, mine])
        out_.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        inner.momentum_update(inner.momentum_at(step, STEPS))
        keys = [torch.empty_like(out_.key_embeds) for _ in range(world)]
        dist.all_gather(keys, out_.key_embeds.contiguous())
        inner.dequeue_and_enqueue(torch.cat(keys))
    return inner


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys(), (sorted(a)[:3], sorted(b)[:3])
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


ddp = train(*build("ddp"), range(STEPS))
fsdp_model, fsdp_opt = build("fsdp")
fsdp = train(fsdp_model, fsdp_opt, range(STEPS))
reference, sharded = full_state_dict(ddp), full_state_dict(fsdp, all_ranks=True)

# Resume: train to RESUME_AT, save model + optimizer as sharded DCP checkpoint, load into fresh ones, finish.
first, first_opt = build("fsdp")
train(first, first_opt, range(RESUME_AT))
model_sd, optim_sd = get_state_dict(first, first_opt)
dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(out / "checkpoint"))
second, second_opt = build("fsdp")
model_sd, optim_sd = get_state_dict(second, second_opt)
state = {"model": model_sd, "optim": optim_sd}
dcp.load(state, checkpoint_id=str(out / "checkpoint"))
set_state_dict(second, second_opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
resumed = full_state_dict(train(second, second_opt, range(RESUME_AT, STEPS)), all_ranks=True)

queues = [torch.empty_like(fsdp.queue) for _ in range(world)]
dist.all_gather(queues, fsdp.queue)
gathered = full_state_dict(fsdp)  # onto process 0, as a final save does
gathered_keys = len(gathered)  # (save_pretrained empties the dict it is given)
if rank == 0:
    MacrlForPreTraining(config).save_pretrained(out / "final", state_dict=gathered)
report = {
    "sharded": is_sharded(fsdp), "queue_is_plain_tensor": not hasattr(fsdp.queue, "placements"),
    "fsdp_vs_ddp": max_diff(reference, sharded), "resumed_vs_straight": max_diff(sharded, resumed),
    "queue_same_on_all_ranks": all(torch.equal(q, queues[0]) for q in queues),
    "rank": rank, "gathered_keys": gathered_keys, "queue_ptr": int(fsdp.queue_ptr),
    "momentum_moved": max_diff(*({k: v for k, v in sd.items() if k.startswith("momentum_encoder.layers")}
                                 for sd in (sharded, full_state_dict(build("ddp")[0].module)))),
}
(out / f"rank{rank}.json").write_text(json.dumps(report))
dist.barrier()
dist.destroy_process_group()
