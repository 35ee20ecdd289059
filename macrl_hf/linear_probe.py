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
"""Linear probing (the MAE recipe): a frozen encoder, and BatchNorm1d(affine=False) + Linear on its CLS feature.

The normalisation is a fixed affine map once trained, so `fold` merges it into the linear layer and hands back a
plain `ViTForImageClassification` with the very same outputs and the untouched pretrained encoder.
"""

import copy

import torch
import torch.nn.functional as F
from torch import nn
from transformers import ViTForImageClassification, ViTModel
from transformers.models.vit.modeling_vit import ViTPreTrainedModel


class ProbeBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d that falls back to its running statistics for a training batch of one (it has no variance)."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.training and features.shape[0] == 1:
            return F.batch_norm(features, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0,
                                self.eps)
        return super().forward(features)


class ViTLinearProbeForImageClassification(ViTForImageClassification):
    """`ViTForImageClassification` whose encoder is frozen (and kept in eval mode, so dropout never touches the
    features) and whose `classifier` is `Sequential(BatchNorm1d(affine=False), Linear)`. Only the head trains."""

    def __init__(self, config):
        ViTPreTrainedModel.__init__(self, config)  # the parent's layout, with another head
        self.num_labels = config.num_labels
        self.vit = ViTModel(config, add_pooling_layer=False)
        self.classifier = nn.Sequential(
            ProbeBatchNorm(config.hidden_size, affine=False, eps=1e-6), nn.Linear(config.hidden_size, config.num_labels)
        )
        self.post_init()
        self.freeze_encoder()

    def freeze_encoder(self) -> None:
        self.vit.requires_grad_(False)
        self.vit.eval()

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        # transformers re-creates loaded parameters with requires_grad=True: freeze the encoder again.
        loaded = super().from_pretrained(*args, **kwargs)
        (loaded[0] if isinstance(loaded, tuple) else loaded).freeze_encoder()
        return loaded

    def train(self, mode: bool = True):
        super().train(mode)
        self.vit.eval()
        return self

    @torch.no_grad()
    def fold(self) -> ViTForImageClassification:
        """The same classifier as a plain `ViTForImageClassification`: W' = W / sqrt(var + eps), b' = b - W' @ mean."""
        norm, linear = self.classifier
        scale = (norm.running_var.double() + norm.eps).rsqrt()
        weight = linear.weight.double() * scale
        bias = linear.bias.double() - weight @ norm.running_mean.double()
        plain = ViTForImageClassification(copy.deepcopy(self.config))
        plain.vit.load_state_dict(self.vit.state_dict())
        plain.classifier.weight.copy_(weight.to(linear.weight.dtype))
        plain.classifier.bias.copy_(bias.to(linear.bias.dtype))
        return plain.to(linear.weight.device).eval()
