import subprocess
import sys

import pytest
import torch
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor, ViTModel

from macrl_hf import MacrlForPreTraining
from macrl_hf.export import export_to_vit


@pytest.fixture
def checkpoint(tiny_config, tmp_path):
    model = MacrlForPreTraining(tiny_config(layer_norm_eps=1e-6)).eval()
    with torch.no_grad():  # make the encoder differ from its initialisation
        for p in model.vit.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "macrl")
    return model, tmp_path / "macrl"


def test_exported_vit_equals_unmasked_macrl_encoder(checkpoint, images, tmp_path):
    model, path = checkpoint
    export_to_vit(path, tmp_path / "vit")
    vit, info = ViTModel.from_pretrained(tmp_path / "vit", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert vit.config.model_type == "vit" and vit.config.layer_norm_eps == 1e-6
    with torch.no_grad():
        expected = model.vit(images).last_hidden_state  # mask_ratio defaults to 0: the whole image
        assert torch.allclose(vit.eval()(images).last_hidden_state, expected, atol=1e-5)
    processor = ViTImageProcessor.from_pretrained(tmp_path / "vit")
    assert processor.size == {"height": 16, "width": 16}
    assert processor.image_mean == pytest.approx([0.485, 0.456, 0.406])


def test_cli_exports_classifier(checkpoint, images, tmp_path):
    model, path = checkpoint
    out = tmp_path / "clf"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "macrl_hf.export",
            "--model_name_or_path",
            str(path),
            "--output_dir",
            str(out),
            "--num_labels",
            "3",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    clf, info = ViTForImageClassification.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert clf.config.num_labels == 3 and clf.config.id2label[2] == "LABEL_2"
    with torch.no_grad():
        hidden = clf.eval().vit(images).last_hidden_state
        assert torch.allclose(hidden, model.vit(images).last_hidden_state, atol=1e-5)
        assert clf(images).logits.shape == (8, 3)


def test_export_rejects_a_non_macrl_checkpoint(tmp_path):
    config = ViTConfig(
        image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    ViTModel(config).save_pretrained(tmp_path / "vit")
    with pytest.raises(ValueError, match="holds a 'vit' model, not a MACRL checkpoint"):
        export_to_vit(tmp_path / "vit", tmp_path / "out")
