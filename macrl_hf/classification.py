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
"""Image classification on top of a MACRL (or any ViT) encoder: model building, data pieces, metrics, Trainer.

Used by `run_classification.py`; the output is a plain `ViTForImageClassification` (the CLS token), or with
`pooling="mean"` a plain `BeitForImageClassification` (MAE's global-pool head, see `global_pool.py`).
"""

import dataclasses
import logging
import os
from pathlib import Path

import evaluate
import torch
from huggingface_hub import ModelCard
from torchvision.transforms import v2
from transformers import Trainer, ViTConfig, ViTForImageClassification, ViTModel
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from .checkpoints import vit_image_processor
from .export import image_processor_for, load_macrl_config, vit_from_macrl
from .global_pool import POOLINGS, mean_pooled_classifier
from .labels import Labels
from .linear_probe import ViTLinearProbeForImageClassification
from .modeling_macrl import MacrlModel
from .trainer import zero_loss_on_blank_batch
from .transforms import collate_images

logger = logging.getLogger(__name__)

PROTOCOLS = ("finetune", "linear_probe")
# `evaluate` metric scripts shipped with the package: `evaluate.load("accuracy")` would need the network.
METRICS_DIR = Path(__file__).parent / "metrics"


def check_head_size(model_name_or_path, config_dict: dict, labels: Labels, ignore_mismatched_sizes: bool) -> None:
    """A ViT checkpoint that already has a classification head must have one of the dataset's size."""
    architectures = config_dict.get("architectures") or []
    if not any(name.endswith("ForImageClassification") for name in architectures):
        return
    head_labels = ViTConfig.from_dict(config_dict).id2label  # config.json leaves out the default (2 labels)
    head_size = len(head_labels)
    if head_size != len(labels.names):
        if not ignore_mismatched_sizes:
            raise ValueError(
                f"--model_name_or_path {model_name_or_path} already has a classification head for {head_size} labels, "
                f"but the dataset has {len(labels.names)} classes; pass --ignore_mismatched_sizes to replace the head "
                "with a new, untrained one"
            )
        logger.warning("Replacing the %d-label head of %s with a new %d-label one", head_size, model_name_or_path,
                       len(labels.names))
    elif sorted(head_labels.values()) != sorted(labels.names):
        logger.warning("Reusing the head of %s: its labels %s are renamed to the dataset's %s", model_name_or_path,
                       list(head_labels.values()), labels.names)


def load_classifier(model_name_or_path, model_type: str, labels: Labels, protocol: str = "finetune",
                    ignore_mismatched_sizes: bool = False, cache_dir: str | None = None, pooling: str = "cls"):
    """(model, image processor): a `ViTForImageClassification` (finetune), a `BeitForImageClassification` reading
    the mean of the patch tokens (finetune, `pooling="mean"`) or a `ViTLinearProbeForImageClassification`
    (linear_probe) whose encoder holds the checkpoint's weights. A MACRL checkpoint's online encoder loads by its ViT
    parameter names."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"--protocol {protocol!r}: must be one of {PROTOCOLS}")
    if pooling not in POOLINGS:
        raise ValueError(f"--pooling {pooling!r}: must be one of {POOLINGS}")
    if pooling == "mean" and protocol != "finetune":
        raise ValueError("--pooling mean applies to --protocol finetune only (the linear probe reads the CLS token)")
    label_kwargs = {"id2label": labels.id2label, "label2id": labels.label2id}
    model_class = ViTLinearProbeForImageClassification if protocol == "linear_probe" else ViTForImageClassification
    if model_type == "macrl":
        config = load_macrl_config(model_name_or_path)
        if protocol == "linear_probe" and config.pooling == "mean":
            logger.warning("%s was pretrained with mean pooling; the linear probe reads the CLS token, as "
                           "ViTForImageClassification does", model_name_or_path)
        encoder = MacrlModel.from_pretrained(model_name_or_path, config=config)
        if pooling == "mean":
            model = mean_pooled_classifier(vit_from_macrl(encoder, ViTModel), **label_kwargs)
        else:
            model = vit_from_macrl(encoder, model_class, **label_kwargs)
        return model, image_processor_for(model_name_or_path, config)
    if pooling == "mean":
        vit = ViTModel.from_pretrained(model_name_or_path, add_pooling_layer=False, cache_dir=cache_dir)
        model = mean_pooled_classifier(vit, **label_kwargs)
    else:
        model = model_class.from_pretrained(
            model_name_or_path, num_labels=len(labels.names), ignore_mismatched_sizes=ignore_mismatched_sizes,
            cache_dir=cache_dir, **label_kwargs,
        )
    return model, vit_image_processor(model_name_or_path, model.config.image_size, cache_dir)


def train_view(size: int, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, scale=(0.08, 1.0)) -> v2.Compose:
    """RandomResizedCrop + flip: the crop of MAE's fine-tuning and linear probing (without RandAugment or mixup)."""
    return v2.Compose([
        v2.RandomResizedCrop(size, scale=scale, antialias=True),
        v2.RandomHorizontalFlip(),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(mean), std=list(std)),
    ])


class ClassificationCollator:
    """`collate_images` (drops undecodable images) with the label column renamed to the model's `labels`."""

    def __init__(self, label_column: str):
        self.label_column = label_column

    def __call__(self, rows: list[dict]) -> dict:
        batch = collate_images(rows)
        if self.label_column in batch:
            batch["labels"] = batch.pop(self.label_column)
        return batch


def build_compute_metrics(num_labels: int):
    """Accuracy, plus top-5 accuracy when there are at least 5 classes (below that it is always 1)."""
    accuracy = evaluate.load(str(METRICS_DIR / "accuracy.py"))
    top5 = evaluate.load(str(METRICS_DIR / "top5_accuracy.py")) if num_labels >= 5 else None

    def compute_metrics(eval_pred) -> dict:
        logits, references = eval_pred.predictions, eval_pred.label_ids
        logits = logits[0] if isinstance(logits, tuple) else logits
        metrics = accuracy.compute(predictions=logits.argmax(-1), references=references)
        if top5 is not None:
            metrics.update(top5.compute(predictions=logits, references=references))
        return metrics

    return compute_metrics


def layer_id(name: str, num_layers: int) -> int:
    """0 for the embeddings, i + 1 for block i, num_layers + 1 for the final norm, the pooler's norm and the head
    (MAE's numbering)."""
    name = name.removeprefix("vit.").removeprefix("beit.")
    if name.startswith("embeddings."):
        return 0
    if name.startswith("layers."):
        return int(name.split(".")[1]) + 1
    return num_layers + 1


def layer_decay_param_groups(model, learning_rate: float, weight_decay: float, layer_decay: float) -> list[dict]:
    """Optimizer groups with lr = learning_rate * layer_decay ** (num_layers + 1 - layer): the head trains at the full
    rate, each block below at a `layer_decay` fraction of the one above. As in MAE, biases, norms, the CLS token and
    the position embeddings get no weight decay."""
    num_layers = model.config.num_hidden_layers
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        layer = layer_id(name, num_layers)
        decay = param.ndim > 1 and not name.endswith(("cls_token", "position_embeddings", "mask_token"))
        group = groups.setdefault((layer, decay), {
            "params": [],
            "weight_decay": weight_decay if decay else 0.0,
            "lr": learning_rate * layer_decay ** (num_layers + 1 - layer),
        })
        group["params"].append(param)
    return list(groups.values())


def add_top5_to_model_card(readme: str | os.PathLike, log_history: list[dict]) -> None:
    """The Trainer's card puts only metrics it knows (accuracy, f1, ...) in its model-index: add the latest top-5
    accuracy beside each accuracy result, so the Hub shows it too."""
    top5 = next((logs["eval_top5_accuracy"] for logs in reversed(log_history) if "eval_top5_accuracy" in logs), None)
    if top5 is None or not os.path.isfile(readme):
        return
    card = ModelCard.load(readme)
    results = card.data.eval_results or []
    extra = [dataclasses.replace(r, metric_type="top5_accuracy", metric_name="Top-5 Accuracy", metric_value=top5)
             for r in results if r.metric_type == "accuracy"]
    if extra:
        card.data.eval_results = results + extra
        card.save(readme)


class ClassificationTrainer(Trainer):
    """`Trainer` plus: layer-wise lr decay (`layer_decay`), batches whose images all failed to decode, and a linear
    probe saved as a plain `ViTForImageClassification` in `output_dir` (checkpoint-* dirs keep the probe itself, so
    training can resume from them)."""

    def __init__(self, *args, layer_decay: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.layer_decay = layer_decay

    def create_optimizer(self, model=None):
        if self.layer_decay is None or self.optimizer is not None:
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        if {"params", "model", "optimizer_dict"} & set(optimizer_kwargs):
            raise ValueError(f"--layer_decay needs an optimizer that takes parameter groups, not --optim "
                             f"{self.args.optim}")
        groups = layer_decay_param_groups(opt_model, self.args.learning_rate, self.args.weight_decay, self.layer_decay)
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs.pop("skipped_images", None)
        if "pixel_values" not in inputs:  # every image of this batch failed to decode: a zero loss, no update
            loss = zero_loss_on_blank_batch(self, model)
            return (loss, None) if return_outputs else loss
        return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs.pop("skipped_images", None)
        if "pixel_values" not in inputs:
            return None, None, None
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)

    def create_model_card(self, *args, **kwargs) -> None:
        super().create_model_card(*args, **kwargs)
        if self.is_world_process_zero():
            add_top5_to_model_card(os.path.join(self.args.output_dir, "README.md"), self.state.log_history)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        final = os.path.abspath(output_dir) == os.path.abspath(self.args.output_dir)
        if not (isinstance(model, ViTLinearProbeForImageClassification) and final):
            return super()._save(output_dir, state_dict)
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        logger.info("Saving the linear probe, its BatchNorm folded into the head, to %s", output_dir)
        model.fold().save_pretrained(output_dir)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, "training_args.bin"))
