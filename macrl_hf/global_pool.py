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
"""MAE's global-pool fine-tuning head on a ViT encoder, as a stock transformers `BeitForImageClassification`.

MAE fine-tunes from the mean of the patch tokens: the encoder's final LayerNorm is dropped and a new one (`fc_norm`)
normalises the mean before the linear head. `ViTForImageClassification` only reads the CLS token, but BEiT with
`use_mean_pooling=True`, absolute position embeddings, no relative position bias and no layer scale is exactly that
model: the same blocks (pre-norm attention and MLP), the pooler's LayerNorm as `fc_norm`. The one difference, BEiT's
key projection has no bias, changes nothing: a key bias adds `q . b` to every logit of a query's softmax alike, so the
attention weights are the same (and that bias never receives a gradient). The output loads with stock transformers,
`pipeline("image-classification")` included.
"""

from transformers import BeitConfig, BeitForImageClassification, ViTModel

POOLINGS = ("cls", "mean")

# ViTConfig fields that mean the same in BeitConfig.
SHARED_FIELDS = ("image_size", "patch_size", "num_channels", "hidden_size", "num_hidden_layers", "num_attention_heads",
                 "intermediate_size", "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
                 "initializer_range", "layer_norm_eps")


def mean_pooled_config(vit_config, **kwargs) -> BeitConfig:
    """The BeitConfig of `vit_config`'s encoder with MAE's global-pool head (no drop path: as the CLS fine-tune)."""
    return BeitConfig(**{field: getattr(vit_config, field) for field in SHARED_FIELDS}, use_mean_pooling=True,
                      use_absolute_position_embeddings=True, use_relative_position_bias=False,
                      use_shared_relative_position_bias=False, use_mask_token=False, layer_scale_init_value=0.0,
                      drop_path_rate=0.0, **kwargs)


def mean_pooled_classifier(vit: ViTModel, **config_kwargs) -> BeitForImageClassification:
    """A `BeitForImageClassification` holding `vit`'s encoder weights, read from the mean of its patch tokens.

    Its `fc_norm` (the pooler's LayerNorm) and head are new, as in MAE; `vit`'s final LayerNorm and pooler are left
    out. Every other weight is copied, checked key by key."""
    if not getattr(vit.config, "qkv_bias", True):
        raise ValueError("mean pooling: BEiT's query and value projections have biases; this encoder has none "
                         "(qkv_bias=False)")
    model = BeitForImageClassification(mean_pooled_config(vit.config, **config_kwargs))
    state = {name: tensor for name, tensor in vit.state_dict().items()
             if not name.startswith(("layernorm.", "pooler.")) and not name.endswith("attention.k_proj.bias")}
    missing, unexpected = model.beit.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("pooler.")]
    if missing or unexpected:
        raise RuntimeError(f"ViT encoder keys do not match BEiT's: missing {missing}, unexpected {unexpected}")
    return model
