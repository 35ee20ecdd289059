import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny test models gain nothing from threads, and oversubscribed cores make them far slower.
torch.set_num_threads(1)

TINY = dict(
    image_size=16,
    patch_size=4,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    decoder_hidden_size=32,
    decoder_num_hidden_layers=1,
    decoder_num_attention_heads=2,
    decoder_intermediate_size=64,
    projection_hidden_size=32,
    projection_dim=16,
    queue_size=64,
)


@pytest.fixture
def tiny_config():
    from macrl_hf import MacrlConfig

    def make(**overrides):
        return MacrlConfig(**{**TINY, **overrides})

    return make


@pytest.fixture
def images():
    torch.manual_seed(0)
    return torch.randn(8, 3, 16, 16)

# transformers_standins/ holds modules imported by transformers_common.py, not tests of their own.
collect_ignore = ["transformers_standins"]
