"""Run under `accelerate launch` by test_pretraining: train, then dump each rank's queue and momentum branch."""

import sys

import torch
from helpers import run_pretraining

trainer = run_pretraining(sys.argv[1:])
model = trainer.accelerator.unwrap_model(trainer.model)
state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()
         if name.startswith(("queue", "momentum_"))}
torch.save(state, f"{trainer.args.output_dir}/rank{trainer.args.process_index}.pt")
