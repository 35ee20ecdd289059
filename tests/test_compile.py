"""torch.compile: one graph for the training forward, a compiled run that equals an eager one (EMA and enqueue on
the real parameters and buffers), and checkpoints / exports without `_orig_mod.` keys."""

import pytest
import torch
from helpers import pretrain_args, run_pretraining, tiny_config_dir
from safetensors.torch import load_file

from macrl_hf import MacrlForPreTraining


@pytest.fixture
def same_random_numbers_as_eager():
    # Inductor draws its own random numbers (the masking noise) unless told to fall back to eager's generator.
    import torch._inductor.config as inductor_config

    previous, inductor_config.fallback_random = inductor_config.fallback_random, True
    yield
    inductor_config.fallback_random = previous
    torch._dynamo.reset()


@pytest.mark.parametrize("overrides", [{}, {"decode_momentum_branch": True, "momentum_mask_ratio": 0.5},
                                       {"mask_ratio": 0.0, "reconstruction_weight": 0.0}])
def test_training_forward_and_backward_compile_to_one_graph(tiny_config, images, overrides):
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    counter = CompileCounter()
    model = MacrlForPreTraining(tiny_config(**overrides)).train()
    compiled = torch.compile(model, backend=counter)
    compiled(pixel_values=images, momentum_pixel_values=images.flip(-1)).loss.backward()
    assert counter.frame_count == 1, f"{counter.frame_count} graphs: the forward has graph breaks"
    torch._dynamo.reset()


def test_compiled_pretraining_equals_eager_and_saves_plain_keys(tmp_path, same_random_numbers_as_eager):
    config_dir = tiny_config_dir(tmp_path / "config")
    common = ("--max_steps", "3", "--save_strategy", "steps", "--save_steps", "3")
    eager = run_pretraining(pretrain_args(tmp_path / "eager", config_dir, *common))
    compiled = run_pretraining(pretrain_args(tmp_path / "compiled", config_dir, *common, "--torch_compile", "true"))
    assert type(compiled.model_wrapped).__name__ == "OptimizedModule"  # it did compile
    losses = [[e["loss"] for e in t.state.log_history if "loss" in e] for t in (eager, compiled)]
    assert losses[0] == pytest.approx(losses[1], abs=1e-4)
    for name in ("model.safetensors", "checkpoint-3/model.safetensors"):
        a, b = load_file(tmp_path / "eager" / name), load_file(tmp_path / "compiled" / name)
        assert a.keys() == b.keys() and not [k for k in b if "_orig_mod" in k]
        for key in a:  # weights, the EMA momentum branch, the queue and its pointer
            assert torch.allclose(a[key].float(), b[key].float(), atol=1e-4), key
    assert int(b["queue_ptr"]) == 3 * 8


def test_compiled_fine_tuning_exports_a_plain_vit(tmp_path, tiny_config, same_random_numbers_as_eager):
    import sys

    from helpers import ROOT, image_folder
    from transformers import ViTForImageClassification

    sys.path.insert(0, str(ROOT))
    import run_classification

    MacrlForPreTraining(tiny_config()).save_pretrained(tmp_path / "macrl")
    folder = image_folder(tmp_path / "images", per_class=4, size=16)
    run_classification.main(["--model_name_or_path", str(tmp_path / "macrl"), "--train_dir", folder,
                             "--output_dir", str(tmp_path / "out"), "--use_cpu", "--report_to", "none",
                             "--max_steps", "2", "--per_device_train_batch_size", "4", "--save_strategy", "no",
                             "--eval_strategy", "no", "--torch_compile", "true", "--disable_tqdm", "true"])
    weights = load_file(tmp_path / "out" / "model.safetensors")
    assert weights and not [k for k in weights if "_orig_mod" in k]
    _, info = ViTForImageClassification.from_pretrained(tmp_path / "out", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
