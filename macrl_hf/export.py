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
"""Export the online encoder of a MACRL checkpoint as a plain transformers `ViTModel` or `ViTForImageClassification`.

    python -m macrl_hf.export --model_name_or_path runs/demo --output_dir vit-out [--num_labels 10]

The output loads with stock transformers (no custom code), together with a `ViTImageProcessor` of the right size,
mean and std.
"""

import argparse
import logging
import os

from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor, ViTModel
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from .configuration_macrl import MacrlConfig
from .modeling_macrl import MacrlModel

logger = logging.getLogger(__name__)

# Fields that mean the same in MacrlConfig and ViTConfig.
VIT_FIELDS = (
    "image_size",
    "patch_size",
    "num_channels",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "initializer_range",
    "layer_norm_eps",
    "qkv_bias",
)

# ... and the decoder / masking fields that ViTMAEConfig shares with MacrlConfig.
MAE_FIELDS = (
    "decoder_hidden_size", "decoder_num_hidden_layers", "decoder_num_attention_heads", "decoder_intermediate_size",
    "mask_ratio", "norm_pix_loss",
)


def load_macrl_config(model_name_or_path: str | os.PathLike) -> MacrlConfig:
    """The checkpoint's MacrlConfig; a clear error when it holds another kind of model."""
    config_dict, _ = MacrlConfig.get_config_dict(model_name_or_path)
    model_type = config_dict.get("model_type")
    if model_type != MacrlConfig.model_type:
        raise ValueError(
            f"{model_name_or_path} holds a {model_type!r} model, not a MACRL checkpoint (model_type 'macrl')."
        )
    return MacrlConfig.from_pretrained(model_name_or_path)


def vit_config_from_macrl(config: MacrlConfig, **kwargs) -> ViTConfig:
    return ViTConfig(**{field: getattr(config, field) for field in VIT_FIELDS}, **kwargs)


def vitmae_config_from_macrl(config: MacrlConfig, **kwargs):
    """The transformers `ViTMAEConfig` of the same encoder, decoder and masking (MACRL's MAE half), for comparisons."""
    from transformers import ViTMAEConfig

    fields = VIT_FIELDS + MAE_FIELDS
    return ViTMAEConfig(**{field: getattr(config, field) for field in fields}, **kwargs)


def image_processor_for(model_name_or_path: str | os.PathLike, config: MacrlConfig) -> ViTImageProcessor:
    """The checkpoint's own processor when it has one (run_pretraining saves it; also on the Hub), else ImageNet's."""
    try:
        processor = ViTImageProcessor.from_pretrained(model_name_or_path)
    except OSError:
        processor = ViTImageProcessor(image_mean=IMAGENET_DEFAULT_MEAN, image_std=IMAGENET_DEFAULT_STD)
    processor.size = {"height": config.image_size, "width": config.image_size}
    return processor


def vit_from_macrl(encoder: MacrlModel, model_class: type, **config_kwargs):
    """`model_class` (ViTModel or a ViT*ForImageClassification) built from `encoder`'s config, holding its weights.

    The encoder has ViTModel's parameter names, so the load is checked key by key; only ViTModel's pooler, which
    MACRL never trains, may be missing.
    """
    model = model_class(vit_config_from_macrl(encoder.config, **config_kwargs))
    target = model if isinstance(model, ViTModel) else model.vit
    missing, unexpected = target.load_state_dict(encoder.state_dict(), strict=False)
    missing = [k for k in missing if not k.startswith("pooler.")]
    if missing or unexpected:
        raise RuntimeError(f"Encoder keys do not match ViTModel: missing {missing}, unexpected {unexpected}")
    return model


def export_to_vit(
    model_name_or_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    num_labels: int | None = None,
    id2label: dict[int, str] | None = None,
    encoder: MacrlModel | None = None,
) -> ViTModel | ViTForImageClassification:
    """Write MACRL's online encoder to `output_dir` as a `ViTModel` or, with labels, a `ViTForImageClassification`.

    `encoder` may be passed to skip loading it again from `model_name_or_path`. Returns the exported model.
    """
    if encoder is None:
        config = load_macrl_config(model_name_or_path)
        encoder = MacrlModel.from_pretrained(model_name_or_path, config=config)
    config = encoder.config
    if id2label is not None:
        num_labels = len(id2label)
    if num_labels is None:
        # The pooler is untrained (MACRL never uses it); ViTModel expects one, so the export loads without warnings.
        model = vit_from_macrl(encoder, ViTModel)
    else:
        if num_labels < 1:
            raise ValueError(f"num_labels must be >= 1, got {num_labels}")
        id2label = id2label or {i: f"LABEL_{i}" for i in range(num_labels)}
        label2id = {label: i for i, label in id2label.items()}
        model = vit_from_macrl(encoder, ViTForImageClassification, id2label=id2label, label2id=label2id)
    model.save_pretrained(output_dir)
    image_processor_for(model_name_or_path, config).save_pretrained(output_dir)
    logger.info("Exported %s to %s as %s", model_name_or_path, output_dir, type(model).__name__)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True, help="MACRL checkpoint directory or Hub id")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--num_labels", type=int, default=None, help="export a ViTForImageClassification head")
    parser.add_argument("--labels", default=None, help="comma-separated class names (implies --num_labels)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    id2label = dict(enumerate(args.labels.split(","))) if args.labels else None
    model = export_to_vit(args.model_name_or_path, args.output_dir, num_labels=args.num_labels, id2label=id2label)
    print(f"Wrote {type(model).__name__} to {args.output_dir}")


if __name__ == "__main__":
    main()
