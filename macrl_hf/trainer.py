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
"""MacrlTrainer: transformers' Trainer plus MACRL's per-optimizer-step work (EMA update, queue enqueue)."""

import logging

import torch
from transformers import Trainer, TrainerCallback

from .sharding import check_distributed_setup, full_state_dict
from .streaming import StreamingViews

logger = logging.getLogger(__name__)

COMPONENTS = ("reconstruction_loss", "contrastive_loss", "embedding_std")


def zero_loss_on_blank_batch(trainer: Trainer, model: torch.nn.Module) -> torch.Tensor:
    """A zero loss for a batch whose every image failed to decode, from a real forward of the (wrapped) model on
    two blank images: under DDP every process must take part in the forward and in the backward's gradient
    all-reduce, or the others wait forever. Run in eval mode, so BatchNorm statistics and dropout are untouched."""
    config = trainer.accelerator.unwrap_model(model).config
    blank = torch.zeros(2, config.num_channels, config.image_size, config.image_size, device=trainer.args.device)
    was_training = model.training
    model.eval()
    try:
        outputs = model(pixel_values=blank)
    finally:
        model.train(was_training)
    value = outputs.loss if getattr(outputs, "loss", None) is not None else outputs.logits
    return value.sum() * 0.0


class MomentumQueueCallback(TrainerCallback):
    """After each optimizer step (not each micro-batch): EMA of the momentum branch, then enqueue that step's keys
    gathered from every process. A step that the fp16 grad scaler skipped changes neither."""

    def __init__(self, trainer: "MacrlTrainer"):
        self.trainer = trainer

    def on_optimizer_step(self, args, state, control, **kwargs):
        trainer = self.trainer
        keys, trainer._pending_keys = trainer._pending_keys, []
        trainer._micro_batch = 0
        if trainer.accelerator.optimizer_step_was_skipped:
            return
        model = trainer.accelerator.unwrap_model(trainer.model)
        if model.momentum_encoder is None:
            return
        momentum = model.momentum_at(state.global_step, state.max_steps)
        model.momentum_update(momentum)
        trainer._last_momentum = momentum
        # Every process must join the gather, also one whose batches had no decodable image (no keys).
        local = torch.cat(keys) if keys else model.queue.new_zeros(0, model.queue.shape[1])
        model.dequeue_and_enqueue(trainer.gather_keys(local))


class MacrlTrainer(Trainer):
    """A `Trainer` for `MacrlForPreTraining`.

    Adds, after every optimizer step, the momentum update (following `config.momentum_schedule` over the run's total
    steps) and the enqueue of the step's keys from all processes; logs `reconstruction_loss`, `contrastive_loss`,
    `embedding_std` (a collapse monitor: per-dimension std of the L2-normalised queries times sqrt(dim), about 1 when
    healthy and 0 when collapsed) and `momentum`. Batches may carry `skipped_images` (undecodable files dropped by
    the collator): they are counted and summarised at the end of training.

    Masks are re-seeded from (seed, optimizer step, micro-batch, process) before each forward, and augmentations
    from (seed, epoch, sample index) when the transform is seeded (`EpochCallback`): a resumed run then reproduces an
    uninterrupted one exactly, although the dataloader prefetches batches before transformers restores its RNG state.
    """

    def __init__(self, *args, **kwargs):
        training_args = kwargs.get("args") if "args" in kwargs else (args[1] if len(args) > 1 else None)
        if training_args is not None:
            check_distributed_setup(training_args)  # DeepSpeed, FSDP1, FSDP that silently became DDP: refused
        super().__init__(*args, **kwargs)
        self._pending_keys: list[torch.Tensor] = []
        # Running sums and counts per component, kept on the training device: adding to them needs no host sync.
        self._component_sums = torch.zeros(len(COMPONENTS), device=self.args.device)
        self._component_counts = torch.zeros(len(COMPONENTS), device=self.args.device)
        self._last_momentum: float | None = None
        self._last_contrastive_scale: float | None = None
        self.skipped_images: list[str] = []
        self._micro_batch = 0
        self.add_callback(MomentumQueueCallback(self))

    def gather_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """All processes' keys, in rank order. Batches can differ in size (dropped images): pad, gather, unpad."""
        if self.accelerator.num_processes == 1:
            return keys
        padded = self.accelerator.pad_across_processes(keys, dim=0, pad_index=float("nan"))
        gathered = self.accelerator.gather(padded)
        return gathered[~gathered.isnan().any(dim=1)]

    def _reseed(self, salt: int) -> None:
        seed = (self.args.seed, self.state.global_step, self._micro_batch, salt, self.args.process_index)
        torch.manual_seed(hash(seed) % (2**63))

    def training_step(self, model, inputs, num_items_in_batch=None):
        self._reseed(salt=1)  # masking noise and dropout of this micro-batch
        self._micro_batch += 1
        return super().training_step(model, inputs, num_items_in_batch)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        skipped = inputs.pop("skipped_images", None) or []
        if model.training:
            self.skipped_images.extend(skipped)
        if "pixel_values" not in inputs:  # every image of this batch failed to decode
            loss = zero_loss_on_blank_batch(self, model)  # its key is not queued
            return (loss, None) if return_outputs else loss
        scale = self.accelerator.unwrap_model(model).contrastive_scale_at(self.state.global_step, self.state.max_steps)
        if scale is not None:  # a 0-d tensor: a compiled model is not recompiled for each new value
            inputs = {**inputs, "contrastive_scale": torch.tensor(scale, device=self.args.device)}
            self._last_contrastive_scale = scale
        outputs = model(**inputs)
        if model.training:
            if outputs.key_embeds is not None:
                self._pending_keys.append(outputs.key_embeds.detach())
            self._accumulate(outputs)
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    @torch.no_grad()
    def _accumulate(self, outputs) -> None:
        values = [outputs.reconstruction_loss, outputs.contrastive_loss, None]
        q = outputs.query_embeds
        if q is not None and q.shape[0] > 1:
            q = q.detach().float()
            values[2] = q.std(dim=0).mean() * q.shape[1] ** 0.5
        for i, value in enumerate(values):
            if value is not None:
                self._component_sums[i] += value.detach().float()
                self._component_counts[i] += 1

    def log(self, logs: dict, *args, **kwargs) -> None:
        # Training logs (they carry "loss"): add the loss components averaged since the last log over micro-batches
        # and processes. Every process joins the reduce, also one that had no decodable image since the last log.
        if "loss" in logs:
            totals = self.accelerator.reduce(torch.stack([self._component_sums, self._component_counts]), reduction="sum")
            for name, total, count in zip(COMPONENTS, *totals.cpu()):
                if count > 0:  # embedding_std has no count without a contrastive branch
                    logs[name] = round(float(total / count), 4)
            if self._last_momentum is not None:
                logs["momentum"] = round(self._last_momentum, 6)
            if self._last_contrastive_scale is not None:
                logs["contrastive_scale"] = round(self._last_contrastive_scale, 4)
            self._component_sums.zero_()
            self._component_counts.zero_()
        super().log(logs, *args, **kwargs)

    def get_train_dataloader(self):
        if not isinstance(self.train_dataset, StreamingViews):
            return super().get_train_dataloader()
        # Each process streams its own part, cut for an exact resume (StreamingViews): accelerate must neither
        # dispatch it from process 0 nor cut it again, so this loader is not passed through `prepare`.
        from torch.utils.data import DataLoader

        workers = self.args.dataloader_num_workers
        return DataLoader(self.train_dataset, batch_size=self._train_batch_size, collate_fn=self.data_collator,
                          num_workers=workers, pin_memory=self.args.dataloader_pin_memory,
                          persistent_workers=self.args.dataloader_persistent_workers and workers > 0,
                          prefetch_factor=self.args.dataloader_prefetch_factor if workers > 0 else None)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        # transformers writes no model file at the end of an FSDP run whose state dict type is sharded (its
        # checkpoints hold the shards): write the full model, so the output dir loads like any other.
        sharded_type = self.is_fsdp_enabled and "FULL_STATE_DICT" not in str(
            self.accelerator.state.fsdp_plugin.state_dict_type)
        if _internal_call or not sharded_type:
            return super().save_model(output_dir, _internal_call)
        state_dict = full_state_dict(self.model)  # every process takes part; process 0 gets the tensors
        self._save(output_dir or self.args.output_dir, state_dict=state_dict)

    def train(self, *args, **kwargs):
        result = super().train(*args, **kwargs)
        if self.skipped_images:
            distinct = sorted(set(self.skipped_images))
            logger.warning(
                "Skipped %d undecodable image(s) during training (%d distinct): %s%s",
                len(self.skipped_images), len(distinct), ", ".join(distinct[:10]), " ..." if len(distinct) > 10 else "",
            )
            result.metrics["skipped_images"] = len(self.skipped_images)
        return result


class StreamResumeCallback(TrainerCallback):
    """Tells a `StreamingViews` where a resumed run starts (in micro-batches of this process), before the data loader
    starts iterating; Trainer's own data skip is off (it would decode every skipped image)."""

    def __init__(self, dataset: StreamingViews):
        self.dataset = dataset

    def on_train_begin(self, args, state, control, **kwargs):
        self.dataset.start_at(state.global_step * args.gradient_accumulation_steps)


class EpochCallback(TrainerCallback):
    """Tells a seeded `ImageTransform` the epoch, so each (epoch, sample) gets its own fixed augmentation."""

    def __init__(self, transform):
        self.transform = transform

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.transform.epoch = int(state.epoch or 0)
