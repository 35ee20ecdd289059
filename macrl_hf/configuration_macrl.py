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
"""MACRL configuration: a ViT encoder, a light MAE-style decoder, a projector and a momentum branch.

This file imports only transformers (and the standard library) so that `save_pretrained` can copy it into a
model repository for `trust_remote_code` loading.
"""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

RECONSTRUCTION_LOSSES = ("l1", "mse")
POOLINGS = ("cls", "mean")
MOMENTUM_SCHEDULES = ("cosine", "constant")

# Named starting points; any field can be overridden: `MacrlConfig.from_preset("vit-tiny-patch4-32", mask_ratio=0.6)`.
PRESETS: dict[str, dict] = {
    # ViT-Base/16 at 224 px: the class defaults.
    "vit-base-patch16-224": {},
    "vit-small-patch16-224": dict(
        hidden_size=384,
        num_attention_heads=6,
        intermediate_size=1536,
        decoder_hidden_size=256,
        decoder_num_attention_heads=8,
        decoder_intermediate_size=1024,
        projection_hidden_size=1024,
    ),
    # ViT-Tiny-like encoder for CIFAR-sized images (32 px, 4 px patches: 64 patches per image).
    "vit-tiny-patch4-32": dict(
        image_size=32,
        patch_size=4,
        hidden_size=192,
        num_hidden_layers=12,
        num_attention_heads=3,
        intermediate_size=768,
        decoder_hidden_size=128,
        decoder_num_attention_heads=4,
        decoder_intermediate_size=512,
        projection_hidden_size=512,
        projection_dim=128,
        queue_size=4096,
        # 0.1 rather than MoCo v3's 0.2: on CIFAR-10 (with base LR 1e-3) MACRL's kNN went from 34.3/36.1% to
        # 37.3/40.2% (seeds 0/1); benchmarks/results/cifar10_sweep and README "Results".
        contrastive_temperature=0.1,
    ),
}


@strict(accept_kwargs=True)
class MacrlConfig(PreTrainedConfig):
    r"""
    Configuration of [`MacrlForPreTraining`]. Defaults give a ViT-Base/16 encoder at 224 px with a 2-block decoder.

    Encoder fields carry the names of [`ViTConfig`], so the online encoder exports to a plain `ViTModel`.

    Args:
        mask_ratio (`float`, defaults to 0.75): share of patches hidden from the online encoder.
        momentum_mask_ratio (`float`, defaults to 0.0): share hidden from the momentum encoder (0: full image).
        norm_pix_loss (`bool`, defaults to `True`): reconstruct per-patch normalised pixels (MAE).
        reconstruction_loss (`str`, defaults to `"l1"`): `"l1"` (the paper's) or `"mse"` (MAE's).
        reconstruction_weight / contrastive_weight (`float`): weights of the two losses in the total.
            `reconstruction_weight=0` drops the decoder (a masked-query MoCo): in this project's CIFAR-10 runs it
            learned better features per training FLOP than the full method (benchmarks/README.md, part 5).
            `contrastive_weight=0` skips the momentum branch entirely (an MAE baseline).
        contrastive_temperature (`float`, defaults to 0.2): InfoNCE temperature.
        projection_hidden_size / projection_dim (`int`): projector MLP widths.
        queue_size (`int`, defaults to 65536): number of negative keys kept.
        momentum (`float`, defaults to 0.99): EMA coefficient at the start of training.
        momentum_schedule (`str`, defaults to `"cosine"`): `"cosine"` (from `momentum` to 1.0) or `"constant"`.
        pooling (`str`, defaults to `"cls"`): `"cls"` token or `"mean"` of patch tokens fed to the projector.
        decode_momentum_branch (`bool`, defaults to `False`): also reconstruct the momentum view with the online
            decoder (the paper draws both branches as encoder-decoders; off by default, which is cheaper).
        predictor_hidden_size (`int`, defaults to 0): with a width > 0, a predictor MLP (Linear-BatchNorm-ReLU-
            Linear, MoCo v3 / BYOL) maps the online projection to the query; the momentum branch has none.
        contrastive_warmup (`float`, defaults to 0.0): share of training over which the contrastive weight rises
            linearly from 0 to `contrastive_weight` (while reconstruction converges); 0 keeps it constant.
        unmasked_query (`bool`, defaults to `False`): take the contrastive query from a second online pass over the
            whole main view instead of from the masked reconstruction pass, so that the query sees every patch as
            MoCo's does (iBOT's unmasked views, RePre). Costs one more encoder forward and backward of the full view;
            nothing changes when `mask_ratio` is 0 (MoCo) or there is no reconstruction.
    """

    model_type = "macrl"

    # Encoder (ViTConfig names).
    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.0
    attention_probs_dropout_prob: float | int = 0.0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    qkv_bias: bool = True
    # Decoder.
    decoder_hidden_size: int = 512
    decoder_num_hidden_layers: int = 2
    decoder_num_attention_heads: int = 16
    decoder_intermediate_size: int = 2048
    # Masked reconstruction.
    mask_ratio: float | int = 0.75
    momentum_mask_ratio: float | int = 0.0
    norm_pix_loss: bool = True
    reconstruction_loss: str = "l1"
    reconstruction_weight: float | int = 1.0
    # Contrastive.
    contrastive_weight: float | int = 1.0
    contrastive_temperature: float | int = 0.2
    projection_hidden_size: int = 2048
    projection_dim: int = 256
    queue_size: int = 65536
    momentum: float | int = 0.99
    momentum_schedule: str = "cosine"
    pooling: str = "cls"
    decode_momentum_branch: bool = False
    predictor_hidden_size: int = 0
    contrastive_warmup: float | int = 0.0
    unmasked_query: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.check()

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def uses_contrastive(self) -> bool:
        return self.contrastive_weight > 0

    @property
    def uses_reconstruction(self) -> bool:
        return self.reconstruction_weight > 0

    def check(self) -> None:
        """Raise `ValueError` naming the first invalid field and its value."""

        def bad(field, why):
            raise ValueError(f"MacrlConfig: invalid {field}={getattr(self, field)!r}: {why}")

        for field in ("mask_ratio", "momentum_mask_ratio"):
            if not 0.0 <= getattr(self, field) < 1.0:
                bad(field, "must be in [0, 1)")
        if self.patch_size > 0 and int(self.num_patches * (1 - self.mask_ratio)) < 1:
            bad("mask_ratio", f"leaves no visible patch of the {self.num_patches}")
        if self.hidden_size % self.num_attention_heads:
            bad("hidden_size", f"must be divisible by num_attention_heads={self.num_attention_heads}")
        if self.decoder_hidden_size % self.decoder_num_attention_heads:
            bad(
                "decoder_hidden_size",
                f"must be divisible by decoder_num_attention_heads={self.decoder_num_attention_heads}",
            )
        if self.patch_size <= 0 or self.image_size % self.patch_size:
            bad("image_size", f"must be divisible by patch_size={self.patch_size}")
        if self.reconstruction_loss not in RECONSTRUCTION_LOSSES:
            bad("reconstruction_loss", f"must be one of {RECONSTRUCTION_LOSSES}")
        if self.pooling not in POOLINGS:
            bad("pooling", f"must be one of {POOLINGS}")
        if self.momentum_schedule not in MOMENTUM_SCHEDULES:
            bad("momentum_schedule", f"must be one of {MOMENTUM_SCHEDULES}")
        for field in ("reconstruction_weight", "contrastive_weight"):
            if getattr(self, field) < 0:
                bad(field, "must be >= 0")
        if not (self.uses_reconstruction or self.uses_contrastive):
            bad("contrastive_weight", "and reconstruction_weight are both 0: nothing to learn")
        if self.uses_contrastive:
            if self.contrastive_temperature <= 0:
                bad("contrastive_temperature", "must be > 0 while contrastive_weight > 0")
            if self.queue_size <= 0:
                bad("queue_size", "must be > 0 while contrastive_weight > 0")
        if not 0.0 <= self.momentum <= 1.0:
            bad("momentum", "must be in [0, 1]")
        for field in ("projection_dim", "projection_hidden_size"):
            if getattr(self, field) <= 0:
                bad(field, "must be > 0")
        if self.predictor_hidden_size < 0:
            bad("predictor_hidden_size", "must be >= 0 (0: no predictor)")
        if not 0.0 <= self.contrastive_warmup <= 1.0:
            bad("contrastive_warmup", "must be a share of training in [0, 1]")

    def validate_macrl(self) -> None:
        # Picked up by `@strict`: `save_pretrained` re-checks a config that was edited after construction.
        self.check()

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "MacrlConfig":
        """Build a config from a named preset (see `PRESETS`), overriding any field by keyword."""
        if name not in PRESETS:
            raise ValueError(f"Unknown MACRL preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


__all__ = ["MacrlConfig", "PRESETS"]
