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
"""Pretrain a ViT with MACRL (masked contrastive representation learning) on your images.

    accelerate launch run_pretraining.py --output_dir runs/demo                 # built-in offline demo data
    accelerate launch run_pretraining.py --dataset_name uoft-cs/cifar10 --preset vit-tiny-patch4-32 --output_dir ...
    accelerate launch run_pretraining.py --train_dir my_images/ --output_dir ...
    python run_pretraining.py args.json                                         # the same arguments as a JSON file

Argument names follow transformers' examples/pytorch/image-pretraining/run_mae.py; every TrainingArguments flag
works. The output directory holds a MacrlForPreTraining checkpoint, its image processor, a model card, logs and
reconstruction images; it loads with `MacrlForPreTraining.from_pretrained` and the Auto classes.
"""

import logging
import math
from dataclasses import dataclass, field
from typing import Literal

from transformers import ViTImageProcessor, set_seed
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from macrl_hf import PRESETS, MacrlConfig, MacrlForPreTraining
from macrl_hf.callbacks import KNNMonitorCallback, ReconstructionImagesCallback
from macrl_hf.data import DEMO_NAME, ImageData, has_class_labels, load_image_data
from macrl_hf.scripts import (
    EpochTrainingArguments,
    ImageDataArguments,
    check_output_dir,
    given_arguments,
    parse_arguments,
    setup_logging,
)
from macrl_hf.sharding import check_distributed_setup
from macrl_hf.streaming import StreamingViews, first_examples, load_streaming, stream_columns
from macrl_hf.trainer import EpochCallback, MacrlTrainer, StreamResumeCallback
from macrl_hf.transforms import INDEX_COLUMN, collate_images, pretraining_transform

logger = logging.getLogger(__name__)
DEFAULT_BASE_LEARNING_RATE = 1.5e-4  # MAE's, for its long runs
# Warn above this share of the training images in the queue (MoCo: 65,536 keys for 1.28M ImageNet images, 5 %).
QUEUE_SHARE_LIMIT = 0.25


@dataclass
class DataTrainingArguments(ImageDataArguments):
    knn_bank_size: int = field(default=10000, metadata={"help": "Training images used as kNN memory bank."})
    streaming: bool = field(default=False, metadata={"help": "Stream the training data (a Hub dataset, or a folder of "
                                                     "parquet or webdataset .tar shards) instead of loading it; "
                                                     "needs --max_steps. Resumes exactly (README, Scaling out)."})
    shuffle_buffer_size: int = field(default=1000, metadata={"help": "With --streaming: examples in the seeded "
                                                             "shuffle buffer of each data loader worker."})
    strong_view_branch: Literal["main", "momentum"] = field(default="main", metadata={
        "help": "Which branch gets the strongly augmented view (colour jitter, grayscale, small crops): 'main', the "
                "masked online view, as in the paper; or 'momentum', the unmasked key view, as in CMAE and ConMIM "
                "(the main view then gets crop and flip only)."})


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(default=None, metadata={"help": "Continue from a MACRL checkpoint."})
    preset: str | None = field(default=None, metadata={"help": f"Config preset, one of {sorted(PRESETS)}. Default: "
                                                        "vit-base-patch16-224; on the demo data vit-tiny-patch4-32 "
                                                        "with 6 layers and a 256-key queue."})
    config_name: str | None = field(default=None, metadata={"help": "A MacrlConfig file or directory."})
    config_overrides: str | None = field(default=None, metadata={"help": "Override config fields, e.g. "
                                                                  "'mask_ratio=0.6,contrastive_weight=0.5'."})
    # run_mae.py's two model flags; unset, the preset's (or checkpoint's) values stay.
    mask_ratio: float | None = field(default=None, metadata={"help": "Share of patches hidden from the online "
                                                            "encoder (preset default 0.75)."})
    norm_pix_loss: bool | None = field(default=None, metadata={"help": "Reconstruct per-patch normalised pixels "
                                                                "(preset default true)."})
    image_processor_name: str | None = field(default=None, metadata={"help": "Take size/mean/std from this "
                                                                      "image processor; default ImageNet statistics."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where to cache downloaded datasets."})


@dataclass
class PretrainingArguments(EpochTrainingArguments):
    # Defaults suited to pretraining; every one can still be set on the command line.
    per_device_train_batch_size: int = field(default=64, metadata={"help": "Batch size per device for training."})
    per_device_eval_batch_size: int = field(default=128, metadata={"help": "Batch size per device for evaluation."})
    base_learning_rate: float | None = field(default=None, metadata={
        "help": f"lr = base_learning_rate * total batch / 256 (as run_mae.py). Default {DEFAULT_BASE_LEARNING_RATE} "
                "unless --learning_rate is given (then that lr is used as it is)."})
    dataloader_drop_last: bool = field(default=True, metadata={"help": "Equal batches on every process."})
    weight_decay: float = field(default=0.05, metadata={"help": "AdamW weight decay (MAE's 0.05)."})
    warmup_steps: float = field(default=0.05, metadata={"help": "Linear warmup: steps, or a fraction (< 1) of the run."})
    prediction_loss_only: bool = field(default=True, metadata={"help": "Evaluation keeps only the loss (the kNN "
                                                                "monitor computes its own features)."})
    ddp_broadcast_buffers: bool = field(default=False, metadata={"help": "Every process enqueues the same gathered "
                                                                  "keys: no need to re-send the queue each forward."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule."})
    eval_on_start: bool = field(default=True, metadata={"help": "Evaluate the untrained encoder before the first step "
                                                         "(the kNN baseline at step 0). Default: when evaluating, "
                                                         "and not again on resume."})


def build_config(model_args: ModelArguments, demo: bool) -> MacrlConfig:
    if model_args.model_name_or_path:
        config = MacrlConfig.from_pretrained(model_args.model_name_or_path)
    elif model_args.config_name:
        config = MacrlConfig.from_pretrained(model_args.config_name)
    else:
        if model_args.preset is None and demo:
            # Small enough to finish in minutes on 2 CPU cores; the queue holds 17 % of the 1,527 training digits (the
            # preset's 4,096 keys, 2.7x the data, made each image its own negative and the features shrink).
            config = MacrlConfig.from_preset("vit-tiny-patch4-32", num_hidden_layers=6, queue_size=256)
        else:
            config = MacrlConfig.from_preset(model_args.preset or "vit-base-patch16-224")
    if model_args.config_overrides:
        logger.info("Overriding config: %s", model_args.config_overrides)
        config.update_from_string(model_args.config_overrides)
    for name in ("mask_ratio", "norm_pix_loss"):
        if getattr(model_args, name) is not None:
            setattr(config, name, getattr(model_args, name))
    config.check()
    return config


def warn_if_queue_too_large(config: MacrlConfig, num_train: int) -> None:
    """A queue that holds a large share of the training set holds each image's own earlier keys as negatives."""
    if config.uses_contrastive and config.queue_size > num_train * QUEUE_SHARE_LIMIT:
        logger.warning(
            "queue_size=%d is %.0f%% of the %d training images: many queries meet their own image's earlier key as "
            "a negative. Keep it well below the data, e.g. --config_overrides queue_size=%d.",
            config.queue_size, 100 * config.queue_size / num_train, num_train,
            max(1, 2 ** int(math.log2(max(1, num_train * QUEUE_SHARE_LIMIT)))))


def map_style_datasets(data, data_args, training_args, config, mean, std):
    """(train, eval, train transform) for data loaded whole: the views built in `with_transform`."""
    # Index each sample so that its augmentation is seeded by (seed, epoch, index): exact resume.
    # Persistent workers keep their epoch-0 copy of the transform, so per-epoch seeding would repeat augmentations.
    seeded = not training_args.dataloader_persistent_workers
    if not seeded:
        logger.warning("--dataloader_persistent_workers: augmentations are not seeded per sample, so a resumed run "
                       "will not repeat an uninterrupted one exactly.")
    train_transform = pretraining_transform(data.image_column, config.image_size, mean, std,
                                            seed=training_args.seed if seeded else None,
                                            strong_view_branch=data_args.strong_view_branch)
    train_dataset = data.train.add_column(INDEX_COLUMN, range(len(data.train))).with_transform(train_transform)
    eval_dataset = None
    if data.validation is not None:
        eval_dataset = data.validation.with_transform(
            pretraining_transform(data.image_column, config.image_size, mean, std,
                                  strong_view_branch=data_args.strong_view_branch))
    return train_dataset, eval_dataset, train_transform


def streaming_datasets(data_args, training_args, model_args, config, mean, std):
    """(data, train, eval, train transform) for --streaming: this process's part of the stream, and the first
    --max_eval_samples validation images and --knn_bank_size training images held in memory for the monitors."""
    train_stream, validation_stream = load_streaming(data_args.dataset_name, data_args.dataset_config_name,
                                                     data_args.train_dir, data_args.validation_dir,
                                                     model_args.cache_dir)
    image_column, label_column = stream_columns(train_stream, data_args.image_column_name,
                                                data_args.label_column_name)
    train_transform = pretraining_transform(image_column, config.image_size, mean, std, seed=training_args.seed,
                                            strong_view_branch=data_args.strong_view_branch)
    train_dataset = StreamingViews(train_stream, train_transform, image_column,
                                   training_args.per_device_train_batch_size, training_args.seed,
                                   data_args.shuffle_buffer_size, training_args.process_index, training_args.world_size)
    bank = first_examples(train_stream, data_args.knn_bank_size, image_column, label_column)
    validation = eval_dataset = None
    if validation_stream is not None:
        validation = first_examples(validation_stream, data_args.max_eval_samples or 1000, image_column, label_column)
        eval_dataset = validation.with_transform(pretraining_transform(
            image_column, config.image_size, mean, std, strong_view_branch=data_args.strong_view_branch))
    name = data_args.dataset_name or data_args.train_dir
    data = ImageData(bank, validation, image_column, label_column, f"{name} (streamed)")
    return data, train_dataset, eval_dataset, train_transform


def set_learning_rate(training_args, given: dict) -> int:
    """lr = base x global batch / 256 (run_mae.py's rule), unless --learning_rate was given; returns the batch."""
    total_batch = (training_args.train_batch_size * training_args.gradient_accumulation_steps
                   * training_args.world_size)
    base_lr = training_args.base_learning_rate
    if "learning_rate" in given and base_lr is not None:
        raise ValueError("Give --learning_rate or --base_learning_rate (lr = base x total batch / 256), not both")
    if "learning_rate" not in given:
        training_args.learning_rate = (base_lr or DEFAULT_BASE_LEARNING_RATE) * total_batch / 256
    logger.info("Total batch %d, learning rate %.3g", total_batch, training_args.learning_rate)
    return total_batch


def main(argv=None):
    model_args, data_args, training_args = parse_arguments(
        (ModelArguments, DataTrainingArguments, PretrainingArguments), argv
    )
    given = given_arguments(argv)
    check_distributed_setup(training_args)  # before any data is read
    setup_logging(training_args, __name__)

    resume = check_output_dir(training_args, "macrl")  # before anything is loaded or written
    set_seed(training_args.seed)

    if data_args.streaming and training_args.max_steps <= 0:
        raise ValueError("--streaming reads a stream of unknown length: give --max_steps (optimizer steps to train)")
    if data_args.streaming and data_args.max_train_samples is not None:
        raise ValueError("--max_train_samples does not apply to --streaming: a stream is read pass after pass; "
                         "bound the run with --max_steps")
    if data_args.streaming:
        data = None  # the config (and so the image size) comes first
    else:
        data = load_image_data(
            data_args.dataset_name, data_args.dataset_config_name, data_args.train_dir, data_args.validation_dir,
            data_args.image_column_name, data_args.label_column_name, data_args.train_val_split,
            data_args.max_train_samples, data_args.max_eval_samples, model_args.cache_dir, training_args.seed,
        )
    demo = data is not None and data.name == DEMO_NAME
    config = build_config(model_args, demo)
    if model_args.image_processor_name:
        image_processor = ViTImageProcessor.from_pretrained(model_args.image_processor_name)
    else:
        image_processor = ViTImageProcessor(image_mean=IMAGENET_DEFAULT_MEAN, image_std=IMAGENET_DEFAULT_STD)
    image_processor.size = {"height": config.image_size, "width": config.image_size}
    mean, std = image_processor.image_mean, image_processor.image_std

    if model_args.model_name_or_path:
        model = MacrlForPreTraining.from_pretrained(model_args.model_name_or_path, config=config)
    else:
        model = MacrlForPreTraining(config)
    n_params = sum(p.numel() for p in model.vit.parameters())
    logger.info("MACRL encoder: %.1fM parameters, %d px, patch %d", n_params / 1e6, config.image_size, config.patch_size)

    if data_args.streaming:
        data, train_dataset, eval_dataset, train_transform = streaming_datasets(data_args, training_args, model_args,
                                                                                config, mean, std)
    else:
        train_dataset, eval_dataset, train_transform = map_style_datasets(data, data_args, training_args, config,
                                                                          mean, std)
    if eval_dataset is None:
        if training_args.do_eval:
            logger.warning("%s has no validation split: no evaluation and no kNN monitor (pass --validation_dir or "
                           "--train_val_split > 0)", data.name)
        training_args.do_eval = False
        training_args.eval_strategy = "no"

    total_batch = set_learning_rate(training_args, given)
    if not data_args.streaming and len(data.train) < total_batch and training_args.dataloader_drop_last:
        raise ValueError(f"The training set has {len(data.train)} images, fewer than one batch of {total_batch} "
                         "(with --dataloader_drop_last): lower --per_device_train_batch_size.")

    if "eval_on_start" not in given and (resume is not None or training_args.eval_strategy == "no"):
        training_args.eval_on_start = False  # the step-0 figures are in the checkpoint's log, or no curve is wanted
    if eval_dataset is None:
        training_args.eval_on_start = False
    if not data_args.streaming:
        warn_if_queue_too_large(config, len(data.train))
    # A resumed stream passes over what was trained on by itself, without decoding it (StreamResumeCallback);
    # Trainer's own skip would decode every skipped image. An explicit --ignore_data_skip true skips nothing.
    skip_in_stream = data_args.streaming and not ("ignore_data_skip" in given and training_args.ignore_data_skip)
    if data_args.streaming:
        training_args.ignore_data_skip = True

    trainer = MacrlTrainer(
        model=model, args=training_args, train_dataset=train_dataset if training_args.do_train else None,
        eval_dataset=eval_dataset if training_args.do_eval else None, processing_class=image_processor,
        data_collator=collate_images,
    )
    if skip_in_stream:
        trainer.add_callback(StreamResumeCallback(train_dataset))
    elif not data_args.streaming:
        trainer.add_callback(EpochCallback(train_transform))
    if eval_dataset is not None and training_args.do_eval:
        if data.label_column is not None and not has_class_labels(data.train, data.label_column):
            logger.warning("Label column %r does not hold integer class ids: no kNN monitor.", data.label_column)
        elif data.label_column is not None:
            trainer.add_callback(KNNMonitorCallback(trainer, data.train, data.validation, data.image_column,
                                                    data.label_column, mean, std, max_bank_size=data_args.knn_bank_size))
        trainer.add_callback(ReconstructionImagesCallback(trainer, data.validation, data.image_column, mean, std))

    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=resume)
        trainer.save_model()  # model, config, code files and image processor
        trainer.log_metrics("train", result.metrics)
        trainer.save_metrics("train", result.metrics)
        trainer.save_state()
    if training_args.do_eval and eval_dataset is not None:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)

    card = {"tasks": "masked-contrastive-pretraining", "tags": ["macrl", "vision", "self-supervised", "vit"],
            "dataset": data.name}
    if training_args.push_to_hub:
        trainer.push_to_hub(**card)
    elif trainer.is_world_process_zero():
        trainer.create_model_card(**card)
    if demo and trainer.is_world_process_zero():
        logger.warning("Trained on the built-in demo data. For real data: --dataset_name uoft-cs/cifar10, "
                       "--dataset_name path/to/local/dataset, or --train_dir path/to/images.")
    return trainer


if __name__ == "__main__":
    main()
