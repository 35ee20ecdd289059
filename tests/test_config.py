import pytest

from macrl_hf import PRESETS, MacrlConfig


def test_defaults_are_vit_base_224_with_two_block_decoder():
    config = MacrlConfig()
    assert (config.image_size, config.patch_size, config.hidden_size) == (224, 16, 768)
    assert (config.num_hidden_layers, config.num_attention_heads, config.intermediate_size) == (12, 12, 3072)
    assert config.decoder_num_hidden_layers == 2
    assert config.mask_ratio == 0.75 and config.momentum_mask_ratio == 0.0
    assert config.reconstruction_loss == "l1" and config.pooling == "cls"


def test_presets_by_name_with_overrides():
    assert {"vit-base-patch16-224", "vit-small-patch16-224", "vit-tiny-patch4-32"} <= set(PRESETS)
    tiny = MacrlConfig.from_preset("vit-tiny-patch4-32", mask_ratio=0.6)
    assert (tiny.image_size, tiny.patch_size, tiny.hidden_size, tiny.mask_ratio) == (32, 4, 192, 0.6)
    small = MacrlConfig.from_preset("vit-small-patch16-224")
    assert (small.hidden_size, small.num_attention_heads, small.image_size) == (384, 6, 224)
    with pytest.raises(ValueError, match="Unknown MACRL preset 'nope'"):
        MacrlConfig.from_preset("nope")


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(mask_ratio=1.0), "mask_ratio"),
        (dict(mask_ratio=-0.1), "mask_ratio"),
        (dict(momentum_mask_ratio=1.5), "momentum_mask_ratio"),
        (dict(image_size=8, patch_size=4, mask_ratio=0.9), "mask_ratio"),
        (dict(hidden_size=100, num_attention_heads=12), "hidden_size"),
        (dict(decoder_hidden_size=100, decoder_num_attention_heads=16), "decoder_hidden_size"),
        (dict(image_size=30, patch_size=4), "image_size"),
        (dict(contrastive_temperature=0.0), "contrastive_temperature"),
        (dict(contrastive_temperature=-1.0), "contrastive_temperature"),
        (dict(queue_size=0), "queue_size"),
        (dict(reconstruction_loss="huber"), "reconstruction_loss"),
        (dict(pooling="max"), "pooling"),
        (dict(momentum_schedule="linear"), "momentum_schedule"),
        (dict(reconstruction_weight=0.0, contrastive_weight=0.0), "contrastive_weight"),
        (dict(momentum=1.5), "momentum"),
        (dict(predictor_hidden_size=-1), "predictor_hidden_size"),
        (dict(contrastive_warmup=1.5), "contrastive_warmup"),
    ],
)
def test_invalid_values_raise_naming_field_and_value(overrides, field):
    with pytest.raises(ValueError) as err:
        MacrlConfig(**overrides)
    message = str(err.value)
    assert field in message and repr(overrides[field]) in message


def test_contrastive_settings_ignored_when_contrastive_is_off():
    config = MacrlConfig(contrastive_weight=0.0, queue_size=0, contrastive_temperature=0.0)
    assert not config.uses_contrastive


def test_roundtrip_json(tmp_path):
    config = MacrlConfig.from_preset("vit-tiny-patch4-32", reconstruction_loss="mse", pooling="mean")
    config.save_pretrained(tmp_path)
    loaded = MacrlConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()


def test_save_rechecks_an_edited_config(tmp_path):
    config = MacrlConfig()
    config.pooling = "max"
    # huggingface_hub wraps the ValueError in its own validation error; the message still names field and value.
    with pytest.raises(Exception, match="pooling='max'"):
        config.save_pretrained(tmp_path)


def test_model_rechecks_an_edited_config():
    # update_from_string skips the config's own validation; the model must not build something that cannot learn.
    from macrl_hf import MacrlForPreTraining

    config = MacrlConfig.from_preset("vit-tiny-patch4-32", contrastive_weight=0.0)
    config.update_from_string("reconstruction_weight=0")
    with pytest.raises(ValueError, match="contrastive_weight=0.0: and reconstruction_weight are both 0"):
        MacrlForPreTraining(config)
