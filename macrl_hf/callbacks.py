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
"""Monitoring callbacks for MacrlTrainer: online kNN accuracy and reconstruction images at each evaluation."""

import logging
import os

import torch
from transformers import TrainerCallback
from transformers.integrations import TensorBoardCallback

from .evaluation import extract_features, knn_accuracy
from .transforms import ImageTransform, collate_images, eval_view

logger = logging.getLogger(__name__)


class _TrainerCallback(TrainerCallback):
    """A callback that reports through `trainer.log`, so every `report_to` integration receives its figures."""

    def __init__(self, trainer=None):
        self.trainer = trainer

    def report(self, metrics: dict, values: dict) -> None:
        metrics.update(values)
        if self.trainer is not None:
            self.trainer.log(dict(values))


class KNNMonitorCallback(_TrainerCallback):
    """kNN top-1 (k=20, cosine, temperature-weighted votes) of the online encoder's features on a labelled validation
    split, with a labelled subset of the training split as memory bank; also the std of the normalised features."""

    def __init__(self, trainer, train_dataset, eval_dataset, image_column, label_column, mean, std,
                 k: int = 20, temperature: float = 0.07, max_bank_size: int = 10000):
        super().__init__(trainer)
        labelled = [d.filter(lambda y: y >= 0, input_columns=label_column) for d in (train_dataset, eval_dataset)]
        bank = labelled[0].shuffle(seed=0)  # a random bank, not the first classes of a sorted folder
        self.bank = bank.select(range(min(max_bank_size, len(bank))))
        self.eval_dataset, self.image_column, self.label_column = labelled[1], image_column, label_column
        self.mean, self.std, self.k, self.temperature = mean, std, k, temperature

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
        if model is None or metrics is None:
            return
        # Rank 0 computes; every rank gets the figures, so metric_for_best_model works on all of them.
        values = [self.compute(args, model) if state.is_world_process_zero else None]
        if args.world_size > 1:
            from accelerate.utils import broadcast_object_list

            broadcast_object_list(values, from_process=0)
        if state.is_world_process_zero:
            self.report(metrics, values[0])
        else:
            metrics.update(values[0])

    def compute(self, args, model) -> dict:
        config = model.config
        common = dict(image_column=self.image_column, label_column=self.label_column, image_size=config.image_size,
                      mean=self.mean, std=self.std, batch_size=args.per_device_eval_batch_size,
                      pooling=config.pooling)
        bank_x, bank_y = extract_features(model.vit, self.bank, **common)
        test_x, test_y = extract_features(model.vit, self.eval_dataset, **common)
        accuracy = knn_accuracy(bank_x, bank_y, test_x, test_y, self.k, self.temperature,
                                num_classes=int(max(bank_y.max(), test_y.max())) + 1)
        feature_std = test_x.std(dim=0).mean().item() * test_x.shape[1] ** 0.5
        return {f"eval_knn_top1_k{self.k}": round(accuracy, 4), "eval_feature_std": round(feature_std, 4)}


def reconstruction_grid(model, pixel_values: torch.Tensor, mean, std, seed: int = 0) -> torch.Tensor:
    """Rows of (original, masked, reconstruction, reconstruction with visible patches pasted), `(3, H, W)` in [0, 1].

    With `norm_pix_loss` the predictions are de-normalised with each patch's own mean and std, as MAE's demo does.
    """
    from torchvision.utils import make_grid

    config = model.config
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(pixel_values.shape[0], config.num_patches, generator=generator).to(pixel_values.device)
    with torch.no_grad():
        out = model(pixel_values, noise=noise)
    target = model.patchify(pixel_values)
    pred = out.logits.float()
    if config.norm_pix_loss:
        patch_mean, patch_var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
        pred = pred * (patch_var + 1e-6) ** 0.5 + patch_mean
    mask = out.mask.unsqueeze(-1)
    masked = model.unpatchify(target * (1 - mask))
    recon = model.unpatchify(pred)
    pasted = model.unpatchify(target * (1 - mask) + pred * mask)
    m = torch.tensor(mean, device=pixel_values.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=pixel_values.device).view(1, 3, 1, 1)

    def show(x):
        return (x * s + m).clamp(0, 1)

    masked_show = show(masked) * (1 - model.unpatchify(mask.expand_as(target)))  # masked patches black
    rows = torch.stack([show(pixel_values), masked_show, show(recon), show(pasted)], dim=1)
    return make_grid(rows.flatten(0, 1).cpu(), nrow=4, padding=1, pad_value=1.0)


class ReconstructionImagesCallback(_TrainerCallback):
    """At each evaluation, write a reconstruction grid of fixed validation images (fixed masks) as a PNG in
    `output_dir/reconstructions/` and to TensorBoard when it is a `report_to` target."""

    def __init__(self, trainer, eval_dataset, image_column, mean, std, num_images: int = 8):
        super().__init__(trainer)
        self.dataset = eval_dataset.select(range(min(num_images, len(eval_dataset))))
        self.image_column, self.mean, self.std = image_column, mean, std

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        if model is None or model.decoder is None or not state.is_world_process_zero:
            return  # nothing to show for a model without a decoder (the MoCo baseline)
        from torchvision.utils import save_image

        view = ImageTransform(self.image_column, {"pixel_values": eval_view(model.config.image_size, self.mean, self.std)})
        batch = collate_images([row for row in self.dataset.with_transform(view)])
        if "pixel_values" not in batch:
            return
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        grid = reconstruction_grid(model, batch["pixel_values"].to(device), self.mean, self.std)
        model.train(was_training)
        folder = os.path.join(args.output_dir, "reconstructions")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"step-{state.global_step:07d}.png")
        save_image(grid, path)
        logger.info("Wrote reconstructions to %s", path)
        for callback in self.trainer.callback_handler.callbacks if self.trainer else []:
            if isinstance(callback, TensorBoardCallback) and getattr(callback, "tb_writer", None) is not None:
                callback.tb_writer.add_image("reconstructions", grid, state.global_step)
