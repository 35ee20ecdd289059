import json
import subprocess
import sys
import textwrap

import torch
from transformers import AutoConfig, AutoModel, AutoModelForPreTraining

import macrl_hf  # noqa: F401  (registers model_type "macrl")
from macrl_hf import MacrlForPreTraining, MacrlModel


def _trained_model(tiny_config, images):
    model = MacrlForPreTraining(tiny_config())
    out = model(images, images.flip(-1))
    with torch.no_grad():
        for p in model.vit.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.momentum_update(0.5)
    model.dequeue_and_enqueue(out.key_embeds)
    return model


def test_roundtrip_is_exact_and_momentum_stays_frozen(tiny_config, images, tmp_path):
    model = _trained_model(tiny_config, images)
    assert int(model.queue_ptr) == 8
    model.save_pretrained(tmp_path)
    loaded = MacrlForPreTraining.from_pretrained(tmp_path)
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for name in original:
        assert torch.equal(original[name], restored[name]), name
    assert "queue" in restored and int(loaded.queue_ptr) == 8
    frozen = [n for n, p in loaded.named_parameters() if not p.requires_grad]
    assert all(not p.requires_grad for p in loaded.momentum_encoder.parameters())
    assert all(not p.requires_grad for p in loaded.momentum_projector.parameters())
    assert "vit.embeddings.position_embeddings" in frozen
    assert all(p.requires_grad for n, p in loaded.named_parameters() if n.startswith(("vit.layers", "projector")))


def test_auto_classes_resolve_macrl(tiny_config, images, tmp_path):
    _trained_model(tiny_config, images).save_pretrained(tmp_path)
    assert type(AutoConfig.from_pretrained(tmp_path)).__name__ == "MacrlConfig"
    assert isinstance(AutoModelForPreTraining.from_pretrained(tmp_path), MacrlForPreTraining)
    encoder, info = AutoModel.from_pretrained(tmp_path, output_loading_info=True)
    assert isinstance(encoder, MacrlModel) and not info["missing_keys"] and not info["unexpected_keys"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "macrl"
    assert config["auto_map"]["AutoModelForPreTraining"].endswith("MacrlForPreTraining")
    assert (tmp_path / "modeling_macrl.py").is_file() and (tmp_path / "configuration_macrl.py").is_file()


def test_trust_remote_code_in_a_process_without_macrl_hf(tiny_config, images, tmp_path):
    model = _trained_model(tiny_config, images).eval()
    model.save_pretrained(tmp_path / "ckpt")
    noise = torch.rand(2, 16)
    torch.save({"x": images[:2], "noise": noise}, tmp_path / "inputs.pt")
    with torch.no_grad():
        expected = model(images[:2], noise=noise).loss.item()
    script = textwrap.dedent(f"""
        import sys
        sys.modules["macrl_hf"] = None  # make `import macrl_hf` fail, as on a Hub user's machine
        import torch
        from transformers import AutoModelForPreTraining
        model = AutoModelForPreTraining.from_pretrained({str(tmp_path / "ckpt")!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        assert not any(p.requires_grad for p in model.momentum_encoder.parameters())
        inputs = torch.load({str(tmp_path / "inputs.pt")!r})
        with torch.no_grad():
            print(model(inputs["x"], noise=inputs["noise"]).loss.item())
    """)
    env = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert abs(float(result.stdout.strip().splitlines()[-1]) - expected) < 1e-5


def test_from_an_encoder_checkpoint_the_teacher_starts_as_a_copy_and_the_queue_empty(tiny_config, tmp_path):
    # Continuing from a bare encoder (a MacrlModel, or an exported ViT's weights): the online encoder loads, the
    # momentum encoder starts as its exact copy (not at random), the queue starts empty.
    encoder = MacrlModel(tiny_config())
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(torch.randn_like(p))
    encoder.save_pretrained(tmp_path)
    model = MacrlForPreTraining.from_pretrained(tmp_path)
    for name, p in encoder.named_parameters():
        assert torch.equal(model.vit.get_parameter(name), p), name
        assert torch.equal(model.momentum_encoder.get_parameter(name), p), name
    assert torch.equal(model.queue, torch.zeros_like(model.queue)) and int(model.queue_ptr) == 0
    assert type(model.momentum_encoder).__name__ == "MacrlMomentumEncoder"
