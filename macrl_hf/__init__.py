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
"""MACRL (Masked Contrastive Representation Learning) as a Hugging Face transformers model."""

from transformers import AutoConfig, AutoModel, AutoModelForPreTraining

from .configuration_macrl import PRESETS, MacrlConfig
from .modeling_macrl import (
    MacrlForPreTraining,
    MacrlForPreTrainingOutput,
    MacrlModel,
    MacrlModelOutput,
    MacrlPreTrainedModel,
)
from .trainer import MacrlTrainer

__version__ = "0.1.0"

# `import macrl_hf` makes model_type "macrl" resolve through the Auto classes ...
AutoConfig.register("macrl", MacrlConfig, exist_ok=True)
AutoModel.register(MacrlConfig, MacrlModel, exist_ok=True)
AutoModelForPreTraining.register(MacrlConfig, MacrlForPreTraining, exist_ok=True)
# ... and a saved directory carries `auto_map` plus the two code files, for `trust_remote_code=True` users.
MacrlConfig.register_for_auto_class()
MacrlModel.register_for_auto_class("AutoModel")
MacrlForPreTraining.register_for_auto_class("AutoModelForPreTraining")

__all__ = [
    "PRESETS",
    "MacrlConfig",
    "MacrlForPreTraining",
    "MacrlForPreTrainingOutput",
    "MacrlModel",
    "MacrlModelOutput",
    "MacrlPreTrainedModel",
    "MacrlTrainer",
]
