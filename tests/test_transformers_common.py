"""transformers' own model tests (ModelTesterMixin, ConfigTester) on MacrlModel and MacrlForPreTraining, set up as
a model contributed to transformers would set them up (after tests/models/vit_mae/test_modeling_vit_mae.py).

The common test modules come from transformers' source distribution: `python tests/fetch_transformers_tests.py`
fetches them into a cache outside the repository (`.ci/run` does). Without them these tests skip, saying so.
"""

import math
import unittest

import pytest
import torch
from transformers import set_seed
from transformers.models.auto import modeling_auto
from transformers_common import import_common

from macrl_hf import MacrlConfig, MacrlForPreTraining, MacrlModel

modeling_common = import_common("test_modeling_common")
configuration_common = import_common("test_configuration_common")


@pytest.fixture(autouse=True, scope="module")
def registered_like_an_in_tree_model():
    """A model contributed to transformers is listed in the Auto name mappings, which several common tests read
    (e.g. which child is the base model); list MACRL there for the duration of these tests."""
    mappings = [(modeling_auto.MODEL_MAPPING_NAMES, "MacrlModel"),
                (modeling_auto.MODEL_FOR_PRETRAINING_MAPPING_NAMES, "MacrlForPreTraining")]
    for mapping, name in mappings:
        mapping["macrl"] = name
    yield
    for mapping, _ in mappings:
        mapping.pop("macrl", None)


class MacrlModelTester:
    def __init__(self, parent, batch_size=13, image_size=30, patch_size=2, num_channels=3, is_training=True,
                 hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, hidden_act="gelu",
                 hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02, mask_ratio=0.6):
        self.parent = parent
        self.batch_size = batch_size
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_channels = num_channels
        self.is_training = is_training
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range
        self.mask_ratio = mask_ratio
        # As in ViTMAE: the encoder sees the CLS token plus the visible share of the patches.
        self.num_patches = (image_size // patch_size) ** 2
        self.seq_length = int(math.ceil((1 - mask_ratio) * (self.num_patches + 1)))

    def get_config(self):
        return MacrlConfig(
            image_size=self.image_size, patch_size=self.patch_size, num_channels=self.num_channels,
            hidden_size=self.hidden_size, num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads, intermediate_size=self.intermediate_size,
            hidden_act=self.hidden_act, hidden_dropout_prob=self.hidden_dropout_prob,
            attention_probs_dropout_prob=self.attention_probs_dropout_prob,
            initializer_range=self.initializer_range, mask_ratio=self.mask_ratio, decoder_hidden_size=self.hidden_size,
            decoder_num_hidden_layers=self.num_hidden_layers, decoder_num_attention_heads=self.num_attention_heads,
            decoder_intermediate_size=self.intermediate_size, projection_hidden_size=self.hidden_size,
            projection_dim=16, queue_size=32,
        )

    def prepare_config_and_inputs(self):
        pixel_values = modeling_common.floats_tensor(
            [self.batch_size, self.num_channels, self.image_size, self.image_size])
        return self.get_config(), pixel_values

    def prepare_config_and_inputs_for_common(self):
        config, pixel_values = self.prepare_config_and_inputs()
        return config, {"pixel_values": pixel_values}

    def create_and_check_model(self, config, pixel_values):
        model = MacrlModel(config).eval()
        with torch.no_grad():
            result = model(pixel_values, mask_ratio=self.mask_ratio)
        self.parent.assertEqual(result.last_hidden_state.shape, (self.batch_size, self.seq_length, self.hidden_size))
        with torch.no_grad():
            full = model(pixel_values)  # no mask_ratio: the whole image, as for feature extraction
        self.parent.assertEqual(full.last_hidden_state.shape, (self.batch_size, self.num_patches + 1, self.hidden_size))

    def create_and_check_for_pretraining(self, config, pixel_values):
        model = MacrlForPreTraining(config).eval()
        with torch.no_grad():
            result = model(pixel_values)
        self.parent.assertEqual(result.logits.shape,
                                (self.batch_size, self.num_patches, self.patch_size**2 * self.num_channels))
        self.parent.assertTrue(torch.isfinite(result.loss))


class MacrlModelTest(modeling_common.ModelTesterMixin, unittest.TestCase):
    all_model_classes = (MacrlModel, MacrlForPreTraining)
    pipeline_model_mapping = {"image-feature-extraction": MacrlModel}
    test_resize_embeddings = False
    has_attentions = True

    def setUp(self):
        self.model_tester = MacrlModelTester(self)
        self.config_tester = configuration_common.ConfigTester(self, config_class=MacrlConfig,
                                                               has_text_modality=False, hidden_size=48)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        # Masking is random: fix it with `noise`, as the mixin does for Hiera. MacrlModel encodes whole images unless
        # given a mask ratio; give it the pretraining one, so that both classes see the same masked sequence.
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels)
        if "noise" not in inputs_dict:  # some common tests bring their own, for their own batch size
            set_seed(42)
            batch_size = inputs_dict["pixel_values"].shape[0]
            inputs_dict["noise"] = torch.rand(batch_size, self.model_tester.num_patches)
        if model_class is MacrlModel:
            inputs_dict["mask_ratio"] = self.model_tester.mask_ratio
        return inputs_dict

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_model(self):
        self.model_tester.create_and_check_model(*self.model_tester.prepare_config_and_inputs())

    def test_for_pretraining(self):
        self.model_tester.create_and_check_for_pretraining(*self.model_tester.prepare_config_and_inputs())

    def test_model_get_set_embeddings(self):
        # A vision model's input embedding is its patch projection, not an nn.Embedding (as in ViT's own tests).
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            model = model_class(config)
            self.assertIsInstance(model.get_input_embeddings(), torch.nn.Module)
            output = model.get_output_embeddings()
            self.assertTrue(output is None or isinstance(output, torch.nn.Linear))

    @unittest.skip(reason="MACRL, like ViTMAE, takes pixel values only: no inputs_embeds")
    def test_inputs_embeds(self):
        pass
