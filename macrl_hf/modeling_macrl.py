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
"""MACRL: masked contrastive representation learning (arXiv 2211.06012) as a transformers model.

Online branch: a ViT encoder sees the visible patches of a strongly augmented view; a light MAE decoder
reconstructs every patch and a projector maps the pooled encoding to a query `q`.
Momentum branch (no gradients): an EMA copy of encoder + projector embeds a weakly augmented, unmasked view into
a key `k`. Loss: `reconstruction_weight * L_rec + contrastive_weight * InfoNCE(q, k, queue)`.

The encoder reuses transformers' ViTMAE blocks and keeps `ViTModel`'s parameter names, so its weights load
straight into `ViTModel` / `ViTForImageClassification`. This file imports only torch, transformers and the
config (relatively), so `save_pretrained` can ship it for `trust_remote_code` loading.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.models.vit_mae.modeling_vit_mae import (
    ViTMAEAttention,
    ViTMAEDecoder,
    ViTMAEEmbeddings,
    ViTMAELayer,
    build_2d_sinusoidal_position_embedding,
)
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput, TransformersKwargs
from transformers.utils.generic import can_return_tuple
from transformers.utils.output_capturing import capture_outputs

from .configuration_macrl import MacrlConfig


@dataclass
class MacrlModelOutput(ModelOutput):
    """
    last_hidden_state: `(batch, 1 + visible patches, hidden_size)`, CLS first, layer-normed.
    pooler_output: `(batch, hidden_size)`, the CLS token or the mean of patch tokens (`config.pooling`).
    mask: `(batch, num_patches)`, 1 where a patch was hidden, 0 where visible (ViTMAE layout).
    ids_restore: `(batch, num_patches)`, the permutation that unshuffles the kept + masked tokens.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    mask: torch.LongTensor | None = None
    ids_restore: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class MacrlForPreTrainingOutput(ModelOutput):
    """
    loss: weighted total of the two losses below.
    reconstruction_loss: pixel loss on the masked patches of the main view (0 when disabled).
    contrastive_loss: InfoNCE of the queries against their keys and the queue (0 when disabled).
    logits: `(batch, num_patches, patch_size**2 * num_channels)`, the decoder's per-patch pixel predictions,
        laid out as `ViTMAEForPreTraining.logits` (use `model.unpatchify` to get images back).
    mask / ids_restore: the online branch's masking, as in ViTMAE.
    query_embeds: `(batch, projection_dim)` L2-normalised online projections.
    key_embeds: `(batch, projection_dim)` L2-normalised, detached momentum projections (enqueue these).
    hidden_states / attentions: of the online encoder, when requested.
    """

    loss: torch.FloatTensor | None = None
    reconstruction_loss: torch.FloatTensor | None = None
    contrastive_loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    mask: torch.LongTensor | None = None
    ids_restore: torch.LongTensor | None = None
    query_embeds: torch.FloatTensor | None = None
    key_embeds: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


# ----------------------------------------------------------------------------------------------------------------------
# Small functional helpers (in the spirit of lightly's): each does one thing and is tested on its own.


def random_masking(sequence: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None):
    """Keep a random `1 - mask_ratio` of the tokens of each sample, as ViTMAE does (same mask / ids_restore layout).

    With `mask_ratio == 0` and no `noise` the sequence is returned in its original order (nothing to shuffle).
    """
    batch_size, seq_length, dim = sequence.shape
    if mask_ratio == 0 and noise is None:
        ids_restore = torch.arange(seq_length, device=sequence.device).expand(batch_size, -1)
        return sequence, sequence.new_zeros(batch_size, seq_length), ids_restore
    len_keep = int(seq_length * (1 - mask_ratio))
    if noise is None:
        noise = torch.rand(batch_size, seq_length, device=sequence.device)
    ids_shuffle = torch.argsort(noise, dim=1).to(sequence.device)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    kept = torch.gather(sequence, 1, ids_keep.unsqueeze(-1).expand(-1, -1, dim))
    mask = sequence.new_ones(batch_size, seq_length)
    mask[:, :len_keep] = 0
    return kept, torch.gather(mask, 1, ids_restore), ids_restore


def patchify(pixel_values: torch.Tensor, patch_size: int) -> torch.Tensor:
    """`(B, C, H, W)` -> `(B, num_patches, patch_size**2 * C)`, the layout of `ViTMAEForPreTraining.patchify`."""
    b, c, h, w = pixel_values.shape
    x = pixel_values.reshape(b, c, h // patch_size, patch_size, w // patch_size, patch_size)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch_size) * (w // patch_size), patch_size**2 * c)


def unpatchify(patches: torch.Tensor, patch_size: int, num_channels: int, height: int, width: int) -> torch.Tensor:
    """Inverse of `patchify`."""
    b = patches.shape[0]
    gh, gw = height // patch_size, width // patch_size
    x = patches.reshape(b, gh, gw, patch_size, patch_size, num_channels)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(b, num_channels, gh * patch_size, gw * patch_size)


def normalize_patches(patches: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-patch zero-mean unit-variance pixels: MAE's `norm_pix_loss` target."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + eps) ** 0.5


def reconstruction_loss(pred, target, mask, kind: str = "l1") -> torch.Tensor:
    """Per-patch L1 or MSE averaged over the masked patches (over all patches when none is masked)."""
    err = (pred - target).abs() if kind == "l1" else (pred - target) ** 2
    per_patch = err.mean(dim=-1)
    mask = mask.to(per_patch.dtype)
    masked = mask.sum()
    # Branch-free (no host sync on GPU): the masked mean, or the plain mean when nothing is masked.
    return torch.where(masked > 0, (per_patch * mask).sum() / masked.clamp_min(1), per_patch.mean())


def info_nce(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    """MoCo's InfoNCE: each query's positive is its own key; the queue rows are the negatives.

    `query`, `key`: `(B, D)` L2-normalised; `queue`: `(K, D)` L2-normalised.
    """
    query, key, queue = query.float(), key.float(), queue.float()  # bf16 logits / 0.2 lose the ranking
    positive = (query * key).sum(dim=-1, keepdim=True)
    negatives = query @ queue.T
    logits = torch.cat([positive, negatives], dim=1) / temperature
    labels = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
    return F.cross_entropy(logits, labels)


def cosine_momentum(base: float, step: int, total_steps: int) -> float:
    """MoCo v3 / BYOL schedule: from `base` at step 0 to 1.0 at `total_steps`."""
    if total_steps <= 0:
        return base
    progress = min(max(step / total_steps, 0.0), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


def _local_shard(tensor: torch.Tensor) -> torch.Tensor:
    """This process's shard of a DTensor (FSDP2 parameters), or the tensor itself."""
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor


@torch.no_grad()
def update_momentum(online: nn.Module, target: nn.Module, momentum: float) -> None:
    """EMA step `target = m * target + (1 - m) * online` over the parameters of two same-shaped modules.

    Sharded parameters (FSDP2 DTensors) are updated shard by shard, with no communication; the two modules must then
    be sharded alike (the same policy), which is checked: a mismatch would average unrelated slices silently.
    """
    online_params = [_local_shard(p.detach()) for p in online.parameters()]
    target_params = [_local_shard(p.detach()) for p in target.parameters()]
    for (name, a), b, sa, sb in zip(online.named_parameters(), target.parameters(), online_params, target_params):
        if sa.shape != sb.shape or getattr(a, "placements", None) != getattr(b, "placements", None):
            raise RuntimeError(
                f"momentum update: online parameter {name} and its momentum copy are sharded differently (local "
                f"shapes {tuple(sa.shape)} and {tuple(sb.shape)}): shard both branches with the same policy"
            )
    torch._foreach_mul_(target_params, momentum)
    torch._foreach_add_(target_params, online_params, alpha=1.0 - momentum)


# ----------------------------------------------------------------------------------------------------------------------


class MacrlEmbeddings(ViTMAEEmbeddings):
    """ViTMAE's embeddings (same parameters) with the mask ratio as an argument: patch projection, fixed 2-D sin-cos
    positions, masking, CLS token. One module call, so that hooks on it (FSDP2's all-gather) see every use."""

    def forward(self, pixel_values: torch.Tensor, mask_ratio: float = 0.0, noise: torch.Tensor | None = None,
                interpolate_pos_encoding: bool = False):
        height, width = pixel_values.shape[-2:]
        patches = self.patch_embeddings(pixel_values.to(self.patch_embeddings.projection.weight.dtype))
        if interpolate_pos_encoding:
            shape_only = patches.new_empty(1, patches.shape[1] + 1, patches.shape[2])
            position = self.interpolate_pos_encoding(shape_only, height, width)
        elif (height, width) != tuple(self.image_size):
            raise ValueError(
                f"Input image size ({height}*{width}) doesn't match model ({self.image_size[0]}*"
                f"{self.image_size[1]}); pass interpolate_pos_encoding=True to encode other sizes."
            )
        else:
            position = self.position_embeddings
        tokens, mask, ids_restore = random_masking(patches + position[:, 1:], mask_ratio, noise)
        cls = (self.cls_token + position[:, :1]).expand(tokens.shape[0], -1, -1)
        return torch.cat([cls, tokens], dim=1), mask, ids_restore


class MacrlPreTrainedModel(PreTrainedModel):
    config: MacrlConfig
    config_class = MacrlConfig
    base_model_prefix = "vit"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["MacrlEmbeddings", "ViTMAELayer", "ViTMAEDecoder"]
    _supports_sdpa = True
    # transformers' standard output capture (as ViTMAE): `output_hidden_states` / `output_attentions` record these
    # modules' outputs through hooks. Attention weights exist only with `attn_implementation="eager"`.
    _can_record_outputs = {"hidden_states": ViTMAELayer, "attentions": ViTMAEAttention}

    def _init_weights(self, module):
        # The MAE recipe: xavier-uniform linears, fixed 2-D sin-cos position embeddings, N(0, 0.02) tokens.
        if isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, ViTMAEEmbeddings):
            grid = module.patch_embeddings.image_size[0] // module.patch_embeddings.patch_size[0]
            pos = build_2d_sinusoidal_position_embedding(
                grid, grid, module.position_embeddings.shape[-1], cls_token=True
            )
            init.copy_(module.position_embeddings, pos.unsqueeze(0))
            weight = module.patch_embeddings.projection.weight
            init.xavier_uniform_(weight.view(weight.shape[0], -1))
            init.zeros_(module.patch_embeddings.projection.bias)
            init.normal_(module.cls_token, std=self.config.initializer_range)
        elif isinstance(module, ViTMAEDecoder):
            grid = int(module.decoder_pos_embed.shape[1] - 1) ** 0.5
            pos = build_2d_sinusoidal_position_embedding(
                int(grid), int(grid), module.decoder_pos_embed.shape[-1], cls_token=True
            )
            init.copy_(module.decoder_pos_embed, pos.unsqueeze(0))
            init.normal_(module.mask_token, std=self.config.initializer_range)
        elif isinstance(module, nn.Conv2d):
            pass  # the patch projection is initialised with its ViTMAEEmbeddings parent
        else:
            super()._init_weights(module)

    def _freeze_constant_parameters(self) -> None:
        """Fixed position embeddings never train; `MacrlForPreTraining` adds its momentum branch."""
        for name, param in self.named_parameters():
            if name.endswith("position_embeddings") or name.endswith("decoder_pos_embed"):
                param.requires_grad_(False)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        # transformers re-creates loaded parameters with requires_grad=True: freeze again what must not train.
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        model._freeze_constant_parameters()
        return loaded


class MacrlModel(MacrlPreTrainedModel):
    """The ViT encoder of MACRL (online or momentum). Without `mask_ratio` it encodes the whole image.

    Its parameters have `ViTModel`'s names (`embeddings.*`, `layers.*`, `layernorm.*`).
    """

    # Loaded from a full MACRL checkpoint (AutoModel / export), the pretraining-only parts are simply not used.
    _keys_to_ignore_on_load_unexpected = [r"^decoder\.", r"^projector\.", r"^predictor\.", r"^momentum_", r"^queue"]

    def __init__(self, config: MacrlConfig):
        super().__init__(config)
        self.embeddings = MacrlEmbeddings(config)
        self.layers = nn.ModuleList([ViTMAELayer(config) for _ in range(config.num_hidden_layers)])
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()
        self._freeze_constant_parameters()

    def get_input_embeddings(self):
        return self.embeddings.patch_embeddings

    def pool(self, last_hidden_state: torch.Tensor) -> torch.Tensor:
        if self.config.pooling == "mean":
            return last_hidden_state[:, 1:].mean(dim=1)
        return last_hidden_state[:, 0]

    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self,
        pixel_values: torch.Tensor,
        mask_ratio: float = 0.0,
        noise: torch.Tensor | None = None,
        interpolate_pos_encoding: bool = False,
        **kwargs: Unpack[TransformersKwargs],
    ) -> MacrlModelOutput:
        r"""
        pixel_values: `(batch, channels, height, width)`.
        mask_ratio: share of patches to hide (0: encode the whole image, as for feature extraction).
        noise: `(batch, num_patches)`, makes the masking deterministic (as in ViTMAE).
        interpolate_pos_encoding: interpolate the position embeddings to encode another image size.
        `output_hidden_states`, `output_attentions` and `return_dict` work as in every transformers model.
        """
        hidden, mask, ids_restore = self.embeddings(pixel_values, mask_ratio, noise, interpolate_pos_encoding)
        for layer in self.layers:
            hidden = layer(hidden, None, **kwargs)
        hidden = self.layernorm(hidden)
        return MacrlModelOutput(last_hidden_state=hidden, pooler_output=self.pool(hidden), mask=mask,
                                ids_restore=ids_restore)


class MacrlMomentumEncoder(MacrlModel):
    """The momentum (EMA teacher) encoder of `MacrlForPreTraining`: a `MacrlModel` that gradients never train and
    that is never the base model (that is the online encoder, `MacrlForPreTraining.vit`). Its own class says so to
    transformers' loader, which finds a head's base model by class."""


class MacrlProjector(nn.Module):
    """MoCo v2 projection head: Linear -> ReLU -> Linear."""

    def __init__(self, config: MacrlConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.projection_hidden_size)
        self.activation = nn.ReLU()
        self.out_proj = nn.Linear(config.projection_hidden_size, config.projection_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.activation(self.dense(features)))


class MacrlPredictor(nn.Module):
    """MoCo v3 / BYOL predictor on the online branch only: Linear -> BatchNorm -> ReLU -> Linear."""

    def __init__(self, config: MacrlConfig):
        super().__init__()
        self.dense = nn.Linear(config.projection_dim, config.predictor_hidden_size)
        self.norm = nn.BatchNorm1d(config.predictor_hidden_size)
        self.activation = nn.ReLU()
        self.out_proj = nn.Linear(config.predictor_hidden_size, config.projection_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.activation(self.norm(self.dense(features))))


class MacrlForPreTraining(MacrlPreTrainedModel):
    """MACRL pretraining model: masked online encoder + decoder + projector, EMA momentum encoder + projector, queue.

    Call `momentum_update(m)` and `dequeue_and_enqueue(outputs.key_embeds)` after each optimizer step (the
    `MacrlTrainer` does both). With `contrastive_weight=0` there is no momentum branch at all (MAE); with
    `reconstruction_weight=0` there is no decoder (MoCo).
    """

    # The loss is a per-batch mean; Trainer must not pass `num_items_in_batch` nor rescale it.
    accepts_loss_kwargs = False

    def __init__(self, config: MacrlConfig):
        # A config edited after construction (`update_from_string`, setattr) skipped its validation: check it here, so
        # that a model with nothing to learn fails now, naming the field, rather than at its first backward.
        config.check()
        super().__init__(config)
        self.vit = MacrlModel(config)
        if config.uses_reconstruction:
            self.decoder = ViTMAEDecoder(config, num_patches=config.num_patches)
        else:
            self.decoder = None
        if config.uses_contrastive:
            self.projector = MacrlProjector(config)
            self.predictor = MacrlPredictor(config) if config.predictor_hidden_size else None
            self.momentum_encoder = MacrlMomentumEncoder(config)
            self.momentum_projector = MacrlProjector(config)
            # The queue starts empty: zero rows have similarity 0 to every query, so until real keys replace them
            # (after queue_size / batch steps) they only add a constant to the InfoNCE denominator.
            self.register_buffer("queue", torch.zeros(config.queue_size, config.projection_dim))
            self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        else:
            self.projector = self.predictor = self.momentum_encoder = self.momentum_projector = None
        self.post_init()
        self._freeze_constant_parameters()

    def _init_weights(self, module):
        super()._init_weights(module)
        if module is self and self.config.uses_contrastive:
            # Children are initialised first: start the momentum branch as an exact copy of the online one.
            for online, target in self.momentum_pairs():
                for p_online, p_target in zip(online.parameters(), target.parameters()):
                    init.copy_(p_target, p_online)
            init.zeros_(self.queue)
            init.zeros_(self.queue_ptr)

    def _freeze_constant_parameters(self) -> None:
        super()._freeze_constant_parameters()
        for _, target in self.momentum_pairs():
            target.requires_grad_(False)

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(online, momentum) module pairs that the EMA couples."""
        if self.momentum_encoder is None:
            return []
        return [(self.vit, self.momentum_encoder), (self.projector, self.momentum_projector)]

    def contrastive_scale_at(self, step: int, total_steps: int) -> float | None:
        """The `contrastive_warmup` ramp at `step` of `total_steps` (None when there is no ramp)."""
        warmup = self.config.contrastive_warmup
        if not warmup or not self.config.uses_contrastive:
            return None
        return min(1.0, step / max(1.0, warmup * total_steps))

    def momentum_at(self, step: int, total_steps: int) -> float:
        """The EMA coefficient that `config.momentum_schedule` gives at `step` of `total_steps`."""
        if self.config.momentum_schedule == "constant":
            return self.config.momentum
        return cosine_momentum(self.config.momentum, step, total_steps)

    @torch.no_grad()
    def momentum_update(self, momentum: float) -> None:
        """One EMA step of the momentum encoder and projector: `m * momentum + (1 - m) * online`."""
        for online, target in self.momentum_pairs():
            update_momentum(online, target, momentum)

    @torch.no_grad()
    def dequeue_and_enqueue(self, keys: torch.Tensor) -> None:
        """Write `keys` `(n, projection_dim)` into the queue at the pointer, first in first out, wrapping around."""
        if self.momentum_encoder is None:
            return
        size = self.queue.shape[0]
        n = keys.shape[0]
        start = int(self.queue_ptr)
        keys = keys.detach().to(self.queue.dtype)
        if n > size:  # only the newest `size` keys survive
            start, keys = (start + n - size) % size, keys[-size:]
        index = (start + torch.arange(keys.shape[0], device=self.queue.device)) % size
        self.queue.index_copy_(0, index, keys)
        self.queue_ptr.fill_((int(self.queue_ptr) + n) % size)

    def patchify(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return patchify(pixel_values, self.config.patch_size)

    def unpatchify(self, patches: torch.Tensor, original_image_size: tuple[int, int] | None = None) -> torch.Tensor:
        height, width = original_image_size or (self.config.image_size, self.config.image_size)
        return unpatchify(patches, self.config.patch_size, self.config.num_channels, height, width)

    def _reconstruct(self, encoded: MacrlModelOutput, pixel_values: torch.Tensor):
        logits = self.decoder(encoded.last_hidden_state, encoded.ids_restore).logits
        target = self.patchify(pixel_values)
        if self.config.norm_pix_loss:
            target = normalize_patches(target)
        loss = reconstruction_loss(logits, target, encoded.mask, self.config.reconstruction_loss)
        return logits, loss

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        momentum_pixel_values: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        momentum_noise: torch.Tensor | None = None,
        return_loss: bool = True,
        contrastive_scale: torch.Tensor | float | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> MacrlForPreTrainingOutput | tuple:
        r"""
        pixel_values: the main (strong) view, `(batch, channels, image_size, image_size)`.
        momentum_pixel_values: the momentum (weak) view; defaults to `pixel_values`.
        noise / momentum_noise: `(batch, num_patches)` to make each branch's masking deterministic (as ViTMAE).
        contrastive_scale: multiplies `contrastive_weight` (the trainer passes the `contrastive_warmup` ramp, as a
            0-d tensor so that a compiled model is not recompiled each step).
        `output_hidden_states` / `output_attentions` return the online encoder's, as in every transformers model.
        """
        config = self.config
        zero = pixel_values.new_zeros(())
        momentum_view = pixel_values if momentum_pixel_values is None else momentum_pixel_values
        key = momentum_encoded = None
        if config.uses_contrastive:
            # The momentum branch runs first: its no-grad temporaries are freed before the online graph holds its
            # activations, which on CPU saves ~100k page faults a step (benchmarks/step_speed.py).
            with torch.no_grad():
                momentum_encoded = self.momentum_encoder(
                    momentum_view, mask_ratio=config.momentum_mask_ratio, noise=momentum_noise,
                    output_hidden_states=False, output_attentions=False,  # the teacher's are never returned
                )
                key = F.normalize(self.momentum_projector(momentum_encoded.pooler_output), dim=1)
            if not (config.decode_momentum_branch and config.uses_reconstruction):
                momentum_encoded = None

        encoded = self.vit(pixel_values, mask_ratio=config.mask_ratio, noise=noise, **kwargs)
        logits, rec_loss = None, zero
        if config.uses_reconstruction:
            logits, rec_loss = self._reconstruct(encoded, pixel_values)

        query, con_loss = None, zero
        if config.uses_contrastive:
            pooled = encoded.pooler_output
            if config.unmasked_query and config.uses_reconstruction and config.mask_ratio > 0:
                # The query from the whole main view, the masked pass kept for reconstruction only.
                pooled = self.vit(pixel_values, output_hidden_states=False, output_attentions=False).pooler_output
            projection = self.projector(pooled)
            if self.predictor is not None:
                projection = self.predictor(projection)
            query = F.normalize(projection, dim=1)
            con_loss = info_nce(query, key, self.queue, config.contrastive_temperature)
        if momentum_encoded is not None:
            # The momentum branch is an encoder-decoder too: the online decoder also reconstructs the weak view
            # from the (detached) momentum features.
            _, momentum_rec = self._reconstruct(momentum_encoded, momentum_view)
            rec_loss = (rec_loss + momentum_rec) / 2

        contrastive_weight = config.contrastive_weight
        if contrastive_scale is not None:
            contrastive_weight = contrastive_weight * contrastive_scale
        loss = config.reconstruction_weight * rec_loss + contrastive_weight * con_loss
        out = MacrlForPreTrainingOutput(
            loss=loss if return_loss else None,
            reconstruction_loss=rec_loss.detach(),
            contrastive_loss=con_loss.detach(),
            logits=logits,
            mask=encoded.mask,
            ids_restore=encoded.ids_restore,
            query_embeds=query,
            key_embeds=key,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )
        return out


__all__ = [
    "MacrlModel",
    "MacrlMomentumEncoder",
    "MacrlForPreTraining",
    "MacrlPreTrainedModel",
    "MacrlModelOutput",
    "MacrlForPreTrainingOutput",
]
