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
"""Which encoders the downstream tools accept (a MACRL checkpoint or any ViT checkpoint), and how they load."""

import logging
import os

from transformers import PreTrainedConfig, ViTImageProcessor, ViTModel

from .export import image_processor_for, load_macrl_config
from .modeling_macrl import MacrlModel

logger = logging.getLogger(__name__)

SUPPORTED_MODEL_TYPES = ("macrl", "vit")


def read_model_type(model_name_or_path: str | os.PathLike, cache_dir: str | None = None) -> tuple[str, dict]:
    """`config.json`'s model_type and contents; a `ValueError` for anything but a MACRL or ViT checkpoint."""
    try:
        config_dict, _ = PreTrainedConfig.get_config_dict(model_name_or_path, cache_dir=cache_dir)
    except OSError as err:
        raise ValueError(f"--model_name_or_path {model_name_or_path}: no model config found ({err})") from err
    model_type = config_dict.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"--model_name_or_path {model_name_or_path} holds a {model_type!r} model (config.json model_type); "
            "expected a MACRL checkpoint (model_type 'macrl') or a ViT checkpoint (model_type 'vit')"
        )
    return model_type, config_dict


def vit_image_processor(model_name_or_path: str | os.PathLike, image_size: int,
                        cache_dir: str | None = None) -> ViTImageProcessor:
    """A ViT checkpoint's own processor, else ViTImageProcessor's defaults; resizing to the model's input size."""
    try:
        processor = ViTImageProcessor.from_pretrained(model_name_or_path, cache_dir=cache_dir)
    except OSError:
        logger.warning("%s has no image processor: using ViTImageProcessor's defaults (mean = std = 0.5)",
                       model_name_or_path)
        processor = ViTImageProcessor()
    processor.size = {"height": image_size, "width": image_size}
    return processor


def load_encoder(model_name_or_path: str | os.PathLike, attn_implementation: str | None = None,
                 cache_dir: str | None = None):
    """(encoder, image processor, pooling) for feature extraction: a `MacrlModel` pooled as its config says, or a
    `ViTModel` (also from a ViTForImageClassification checkpoint) pooled on its CLS token."""
    model_type, _ = read_model_type(model_name_or_path, cache_dir)
    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    if model_type == "macrl":
        config = load_macrl_config(model_name_or_path)
        encoder = MacrlModel.from_pretrained(model_name_or_path, config=config, **kwargs)
        return encoder, image_processor_for(model_name_or_path, config), config.pooling
    encoder = ViTModel.from_pretrained(model_name_or_path, add_pooling_layer=False, cache_dir=cache_dir, **kwargs)
    return encoder, vit_image_processor(model_name_or_path, encoder.config.image_size, cache_dir), "cls"
