#!/usr/bin/env python
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
"""Fine-tune or linear-probe a MACRL (or any ViT) checkpoint for image classification.

    python run_classification.py --model_name_or_path runs/demo --dataset_name uoft-cs/cifar10 --output_dir clf
    python run_classification.py --model_name_or_path runs/demo --train_dir imgs/train --validation_dir imgs/val \\
        --protocol linear_probe --learning_rate 1e-3 --output_dir probe
    python run_classification.py args.json                                   # the same arguments as a JSON file

Argument names follow transformers' examples/pytorch/image-classification/run_image_classification.py; every
TrainingArguments flag works. `--protocol finetune` trains every weight (optionally with MAE's layer-wise lr decay,
`--layer_decay 0.75`); `--protocol linear_probe` freezes the encoder and trains BatchNorm1d(affine=False) + Linear on
the CLS feature, folded into one linear layer when saved. Either way `--output_dir` holds a plain
`ViTForImageClassification` with its id2label, a `ViTImageProcessor` and a model card: it loads with stock
transformers (`pipeline("image-classification", model=output_dir)`), without this package. `--pooling mean`
fine-tunes from the mean of the patch tokens as MAE does, saved as the equivalent stock `BeitForImageClassification`.
"""

import logging
import os
from dataclasses import dataclass, field
from typing import Literal

from transformers import set_seed

from macrl_hf.checkpoints import read_model_type
from macrl_hf.classification import (
    ClassificationCollator,
    ClassificationTrainer,
    build_compute_metrics,
    check_head_size,
    load_classifier,
    train_view,
)
from macrl_hf.data import load_image_data
from macrl_hf.labels import resolve_labels
from macrl_hf.scripts import (
    EpochTrainingArguments,
    ImageDataArguments,
    check_output_dir,
    parse_arguments,
    setup_logging,
)
from macrl_hf.transforms import ImageTransform, eval_view

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "A MACRL checkpoint (model_type 'macrl') or any ViT checkpoint "
                                                      "(model_type 'vit'), local directory or Hub id."})
    protocol: Literal["finetune", "linear_probe"] = field(default="finetune", metadata={
        "help": "finetune: train every weight; linear_probe: freeze the encoder, train a linear head on CLS."})
    pooling: Literal["cls", "mean"] = field(default="cls", metadata={
        "help": "What the fine-tuned head reads. cls: the CLS token, saved as a ViTForImageClassification; mean: the "
                "mean of the patch tokens through a new LayerNorm, MAE's global-pool fine-tuning, saved as a "
                "BeitForImageClassification (stock transformers: the same blocks). --protocol finetune only."})
    ignore_mismatched_sizes: bool = field(default=False, metadata={"help": "Replace a checkpoint's classification "
                                                                   "head that has another number of labels."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where to cache downloaded models and datasets."})


@dataclass
class ClassificationTrainingArguments(EpochTrainingArguments):
    layer_decay: float | None = field(default=None, metadata={"help": "Layer-wise lr decay for --protocol finetune "
                                                              "(MAE: 0.65 for ViT-B, 0.75 for ViT-L); lr of block i "
                                                              "= learning_rate * layer_decay ** (depth + 1 - i)."})


def check_arguments(model_args: ModelArguments, training_args: ClassificationTrainingArguments) -> None:
    if model_args.pooling != "cls" and model_args.protocol != "finetune":
        raise ValueError(f"--pooling {model_args.pooling} applies to --protocol finetune only (the linear probe reads "
                         "the CLS token)")
    decay = training_args.layer_decay
    if decay is not None:
        if model_args.protocol != "finetune":
            raise ValueError("--layer_decay applies to --protocol finetune only (the linear probe trains one layer)")
        if not 0 < decay <= 1:
            raise ValueError(f"--layer_decay {decay}: must be in (0, 1]")


def card_dataset_tag(name: str) -> str:
    """The dataset as the model card's metadata names it: a Hub id, or a local directory's name (its parent's for
    a `train` folder)."""
    if not os.path.isdir(name):
        return name
    path = os.path.abspath(name)
    if os.path.basename(path) in ("train", "training") and os.path.basename(os.path.dirname(path)):
        path = os.path.dirname(path)
    return os.path.basename(path)


def main(argv=None):
    model_args, data_args, training_args = parse_arguments(
        (ModelArguments, ImageDataArguments, ClassificationTrainingArguments), argv
    )
    setup_logging(training_args, __name__)

    # Every check runs before anything is trained or written.
    check_arguments(model_args, training_args)
    resume = check_output_dir(training_args, "beit" if model_args.pooling == "mean" else "vit")
    model_type, checkpoint_config = read_model_type(model_args.model_name_or_path, model_args.cache_dir)
    set_seed(training_args.seed)
    data = load_image_data(
        data_args.dataset_name, data_args.dataset_config_name, data_args.train_dir, data_args.validation_dir,
        data_args.image_column_name, data_args.label_column_name, data_args.train_val_split,
        data_args.max_train_samples, data_args.max_eval_samples, model_args.cache_dir, training_args.seed,
    )
    from_folders = data_args.dataset_name is None and (data_args.train_dir or data_args.validation_dir) is not None
    labels = resolve_labels(data.train, data.validation, data.label_column, data.name, from_folders)
    logger.info("%d classes: %s", len(labels.names), labels.id2label)
    if model_type == "vit" and model_args.pooling == "cls":  # --pooling mean always trains a new head
        check_head_size(model_args.model_name_or_path, checkpoint_config, labels, model_args.ignore_mismatched_sizes)

    model, image_processor = load_classifier(
        model_args.model_name_or_path, model_type, labels, model_args.protocol, model_args.ignore_mismatched_sizes,
        model_args.cache_dir, model_args.pooling,
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info("%s of %s (%s) as %s: %.2fM trainable parameters", model_args.protocol,
                model_args.model_name_or_path, model_type, type(model).__name__, trainable / 1e6)

    size, mean, std = model.config.image_size, image_processor.image_mean, image_processor.image_std
    train_dataset = eval_dataset = None
    if training_args.do_train:
        train_transform = ImageTransform(data.image_column, {"pixel_values": train_view(size, mean, std)},
                                         keep_columns=[labels.column])
        train_dataset = labels.encode(data.train).with_transform(train_transform)
    if data.validation is not None:
        eval_transform = ImageTransform(data.image_column, {"pixel_values": eval_view(size, mean, std)},
                                        keep_columns=[labels.column])
        eval_dataset = labels.encode(data.validation).with_transform(eval_transform)
    if eval_dataset is None:
        training_args.do_eval = False
        training_args.eval_strategy = "no"

    trainer = ClassificationTrainer(
        model=model, args=training_args, train_dataset=train_dataset,
        eval_dataset=eval_dataset if training_args.do_eval else None, processing_class=image_processor,
        data_collator=ClassificationCollator(labels.column), compute_metrics=build_compute_metrics(len(labels.names)),
        layer_decay=training_args.layer_decay,
    )

    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=resume)
        trainer.save_model()  # plain ViT (a linear probe's BatchNorm folded in) or, --pooling mean, BEiT
        trainer.log_metrics("train", result.metrics)
        trainer.save_metrics("train", result.metrics)
        trainer.save_state()
    if training_args.do_eval:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)

    card = {
        "finetuned_from": model_args.model_name_or_path,
        "tasks": "image-classification",
        "dataset": data.name,
        "dataset_tags": card_dataset_tag(data.name),
        "tags": ["image-classification", "vision", "vit", "macrl", model_args.protocol.replace("_", "-")]
        + (["mean-pooling"] if model_args.pooling == "mean" else []),
    }
    if training_args.push_to_hub:
        trainer.push_to_hub(**card)
    elif trainer.is_world_process_zero():
        trainer.create_model_card(**card)
    return trainer


if __name__ == "__main__":
    main()
