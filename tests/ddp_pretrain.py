"""Run under `accelerate launch` by test_pretraining: train, then dump each rank's queue and momentum branch, and
which of its micro-batches had no decodable image."""

import sys

import torch
from helpers import run_pretraining

from macrl_hf import MacrlTrainer

empty_batches = []
compute_loss = MacrlTrainer.compute_loss


def recording_compute_loss(self, model, inputs, *args, **kwargs):
    if model.training:
        empty_batches.append("pixel_values" not in inputs)
    return compute_loss(self, model, inputs, *args, **kwargs)


MacrlTrainer.compute_loss = recording_compute_loss
trainer = run_pretraining(sys.argv[1:])
model = trainer.accelerator.unwrap_model(trainer.model)
state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()
         if name.startswith(("queue", "momentum_"))}
state["empty_batches"] = torch.tensor(empty_batches)
state["learning_rate"] = torch.tensor(trainer.args.learning_rate, dtype=torch.float64)
torch.save(state, f"{trainer.args.output_dir}/rank{trainer.args.process_index}.pt")
