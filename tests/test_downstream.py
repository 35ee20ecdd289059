"""Downstream tools on tiny data: run_classification.py (fine-tune, linear probe, bad input), kNN, attention maps."""

import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from datasets import Image as ImageFeature
from PIL import Image
from transformers import BeitForImageClassification, ViTConfig, ViTForImageClassification, ViTModel

from macrl_hf import MacrlConfig, MacrlForPreTraining, MacrlModel
from macrl_hf.classification import layer_decay_param_groups
from macrl_hf.evaluation import main as evaluation_main
from macrl_hf.global_pool import mean_pooled_classifier
from macrl_hf.labels import resolve_labels
from macrl_hf.linear_probe import ViTLinearProbeForImageClassification
from macrl_hf.visualize import main as visualize_main

ROOT = Path(__file__).resolve().parents[1]
# Five classes, told apart by colour alone; five so that top-5 accuracy is reported.
COLOURS = {"black": (20, 20, 20), "blue": (30, 40, 220), "green": (30, 200, 40), "red": (220, 30, 30),
           "white": (235, 235, 235)}
COMMON = ["--use_cpu", "--report_to", "none", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size",
          "16", "--logging_steps", "1", "--dataloader_num_workers", "0"]


def _load_run_classification():
    spec = importlib.util.spec_from_file_location("run_classification", ROOT / "run_classification.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its TrainingArguments subclass must pickle (Trainer saves training_args.bin)
    spec.loader.exec_module(module)
    return module


run_classification = _load_run_classification()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny models gain nothing from two threads, and on shared cores OpenMP's spinning makes a step ~100x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _noisy(rgb, rng) -> Image.Image:
    pixels = np.asarray(rgb, dtype=np.float64)[None, None] + rng.normal(0, 15, (16, 16, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _disk_dataset(path, columns: dict, features: Features | None = None, split_sizes=(("train", 6), ("test", 3))):
    """A DatasetDict saved to `path`, its columns built by `columns[name](rng, n)`."""
    rng = np.random.default_rng(1)
    splits = {split: Dataset.from_dict({name: make(rng, n) for name, make in columns.items()}, features=features)
              for split, n in split_sizes}
    DatasetDict(splits).save_to_disk(str(path))
    return str(path)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    for split, per_class in (("train", 8), ("val", 3)):
        for name, rgb in COLOURS.items():
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                _noisy(rgb, rng).save(root / split / name / f"{i}.png")
    MacrlForPreTraining(MacrlConfig(**TINY)).save_pretrained(root / "macrl")
    # String labels (not a ClassLabel) in a `datasets` directory: mapped to ids in sorted order.
    names = ["red", "blue", "green"]
    strings = _disk_dataset(root / "strings", {
        "image": lambda r, n: [_noisy(COLOURS[names[i % 3]], r) for i in range(n)],
        "label": lambda r, n: [names[i % 3] for i in range(n)],
    })
    return {"root": root, "train": str(root / "train"), "val": str(root / "val"), "macrl": str(root / "macrl"),
            "strings": strings, "cache": str(root / "cache")}


def _run(args, toy, output_dir):
    return run_classification.main([*args, "--output_dir", str(output_dir), "--cache_dir", toy["cache"], *COMMON])


@pytest.fixture(scope="module")
def finetuned(toy):
    out = toy["root"] / "finetuned"
    trainer = _run(["--model_name_or_path", toy["macrl"], "--train_dir", toy["train"], "--validation_dir", toy["val"],
                    "--max_steps", "3", "--learning_rate", "1e-3", "--layer_decay", "0.75", "--save_strategy", "no"],
                   toy, out)
    return out, trainer


@pytest.fixture(scope="module")
def mean_finetuned(toy):
    out = toy["root"] / "mean_finetuned"
    trainer = _run(["--model_name_or_path", toy["macrl"], "--train_dir", toy["train"], "--validation_dir", toy["val"],
                    "--pooling", "mean", "--max_steps", "3", "--learning_rate", "1e-3", "--layer_decay", "0.75",
                    "--save_strategy", "no"], toy, out)
    return out, trainer


@pytest.fixture(scope="module")
def probed(toy):
    out = toy["root"] / "probe"
    recorded = {}
    original = run_classification.load_classifier

    def recording(*args, **kwargs):  # keep the head as it was before training
        model, processor = original(*args, **kwargs)
        recorded.update({k: v.clone() for k, v in model.classifier.state_dict().items()})
        return model, processor

    run_classification.load_classifier = recording
    try:
        trainer = _run(["--model_name_or_path", toy["macrl"], "--dataset_name", toy["strings"], "--protocol",
                        "linear_probe", "--max_steps", "4", "--learning_rate", "1e-2"], toy, out)
    finally:
        run_classification.load_classifier = original
    return out, trainer, recorded


def _pretrained_encoder(toy) -> dict:
    return MacrlModel.from_pretrained(toy["macrl"]).state_dict()


def test_finetune_writes_a_plain_classifier_with_metrics_and_card(toy, finetuned):
    out, trainer = finetuned
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "vit" and config["architectures"] == ["ViTForImageClassification"]
    assert config["id2label"] == {str(i): name for i, name in enumerate(sorted(COLOURS))}
    assert (out / "preprocessor_config.json").is_file()
    results = json.loads((out / "all_results.json").read_text())
    assert 0 <= results["eval_accuracy"] <= 1 and 0 <= results["eval_top5_accuracy"] <= 1
    card = (out / "README.md").read_text()
    assert "type: image-classification" in card and "type: accuracy" in card and "type: top5_accuracy" in card
    assert f"base_model: {toy['macrl']}" in card
    # Every weight trains, the encoder included.
    tuned = ViTForImageClassification.from_pretrained(out).vit.state_dict()
    assert not torch.equal(tuned["layers.0.mlp.fc1.weight"], _pretrained_encoder(toy)["layers.0.mlp.fc1.weight"])
    # Layer decay: one optimizer group per (layer, decay?) pair, the head at the full rate.
    lrs = sorted({group["initial_lr"] for group in trainer.optimizer.param_groups})
    assert lrs == pytest.approx([1e-3 * 0.75**i for i in (3, 2, 1, 0)])


def test_mean_pooling_finetunes_maes_global_pool_head_saved_as_stock_beit(toy, mean_finetuned):
    out, trainer = mean_finetuned
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "beit" and config["architectures"] == ["BeitForImageClassification"]
    assert config["use_mean_pooling"] and not config["use_relative_position_bias"]
    assert config["id2label"] == {str(i): name for i, name in enumerate(sorted(COLOURS))}
    assert "mean-pooling" in (out / "README.md").read_text()
    tuned = BeitForImageClassification.from_pretrained(out).beit.state_dict()
    assert not torch.equal(tuned["layers.0.mlp.fc1.weight"], _pretrained_encoder(toy)["layers.0.mlp.fc1.weight"])
    # The new fc_norm and the head train at the full rate, the blocks below at the decayed ones.
    lrs = sorted({group["initial_lr"] for group in trainer.optimizer.param_groups})
    assert lrs == pytest.approx([1e-3 * 0.75**i for i in (3, 2, 1, 0)])
    by_param = {id(p): g for g in trainer.optimizer.param_groups for p in g["params"]}
    assert by_param[id(trainer.model.beit.pooler.layernorm.weight)]["initial_lr"] == pytest.approx(1e-3)


def test_mean_pooled_classifier_keeps_the_encoder_exactly():
    torch.manual_seed(0)
    vit = ViTModel(ViTConfig(image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=64), add_pooling_layer=False).eval()
    with torch.no_grad():  # a key bias BEiT lacks: it must not matter (softmax is shift-invariant per query)
        for name, param in vit.named_parameters():
            if name.endswith("k_proj.bias"):
                param.normal_(0, 1)
    model = mean_pooled_classifier(vit, num_labels=3).eval()
    images = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        before_norm = vit(images, output_hidden_states=True).hidden_states[-1]
        features = model.beit(images)
        expected = model.beit.pooler.layernorm(before_norm[:, 1:].mean(1))
        assert torch.allclose(features.last_hidden_state, before_norm, atol=1e-5)
        assert torch.allclose(features.pooler_output, expected, atol=1e-5)
        assert torch.allclose(model(images).logits, model.classifier(expected), atol=1e-5)
    no_bias = ViTModel(ViTConfig(image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=64, qkv_bias=False))
    with pytest.raises(ValueError, match="qkv_bias=False"):
        mean_pooled_classifier(no_bias, num_labels=3)


def test_layer_decay_groups_follow_mae():
    model = ViTForImageClassification(ViTConfig(image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=2,
                                                 num_attention_heads=2, intermediate_size=64, num_labels=3))
    groups = layer_decay_param_groups(model, learning_rate=1.0, weight_decay=0.05, layer_decay=0.5)
    by_param = {id(p): g for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert by_param[id(named["classifier.weight"])]["lr"] == 1.0
    assert by_param[id(named["vit.layers.1.mlp.fc1.weight"])]["lr"] == 0.5
    assert by_param[id(named["vit.layers.0.mlp.fc1.weight"])]["lr"] == 0.25
    assert by_param[id(named["vit.embeddings.patch_embeddings.projection.weight"])]["lr"] == 0.125
    assert by_param[id(named["vit.layers.0.mlp.fc1.weight"])]["weight_decay"] == 0.05
    for name in ("vit.embeddings.cls_token", "vit.embeddings.position_embeddings", "vit.layers.0.mlp.fc1.bias",
                 "vit.layernorm.weight"):
        assert by_param[id(named[name])]["weight_decay"] == 0.0


def test_linear_probe_keeps_the_encoder_and_trains_the_head(toy, probed):
    out, trainer, initial_head = probed
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["ViTForImageClassification"]
    assert config["id2label"] == {"0": "blue", "1": "green", "2": "red"}  # string labels, sorted
    plain, info = ViTForImageClassification.from_pretrained(out, output_loading_info=True)
    assert not any(info.values())  # nothing missing, unexpected or mismatched: a plain classifier
    saved, pretrained = plain.vit.state_dict(), _pretrained_encoder(toy)
    assert saved.keys() == pretrained.keys()
    for key, value in pretrained.items():
        assert torch.equal(saved[key], value), key
    probe = trainer.model
    assert not torch.equal(probe.classifier[1].weight, initial_head["1.weight"])
    assert not torch.equal(probe.classifier[0].running_mean, initial_head["0.running_mean"])
    # The saved plain classifier computes what the trained probe computes.
    images = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(plain.eval()(images).logits, probe.eval()(images).logits, atol=1e-4)
    # checkpoint-* dirs keep the probe itself, for resuming.
    checkpoint = next(out.glob("checkpoint-*"))
    assert json.loads((checkpoint / "config.json").read_text())["architectures"] == [
        "ViTLinearProbeForImageClassification"]


def test_fold_merges_batchnorm_into_the_linear_layer():
    config = ViTConfig(image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=64, num_labels=4)
    probe = ViTLinearProbeForImageClassification(config)
    assert not any(p.requires_grad for p in probe.vit.parameters())
    probe.train()
    assert not probe.vit.training and probe.classifier.training  # the frozen encoder never runs in train mode
    norm = probe.classifier[0]
    norm.running_mean.normal_()
    norm.running_var.uniform_(0.5, 2.0)
    probe(torch.randn(1, 3, 16, 16))  # a training batch of one has no variance: the running statistics serve
    probe.eval()
    images = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(probe.fold()(images).logits, probe(images).logits, atol=1e-5)


def test_outputs_load_with_pipeline_without_macrl_hf(toy, finetuned, probed, mean_finetuned):
    image = next(Path(toy["val"]).glob("red/*.png"))
    script = (
        "import json, sys\n"
        "sys.modules['macrl_hf'] = None  # importing it would fail: the outputs must not need it\n"
        "from transformers import pipeline\n"
        "labels = [pipeline('image-classification', model=d)(sys.argv[1])[0]['label'] for d in sys.argv[2:]]\n"
        "print(json.dumps(labels))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    outputs = [str(finetuned[0]), str(probed[0]), str(mean_finetuned[0])]
    result = subprocess.run([sys.executable, "-c", script, str(image), *outputs],
                            capture_output=True, text=True, env=env, cwd=toy["root"])
    assert result.returncode == 0, result.stderr[-3000:]
    finetuned_label, probe_label, mean_label = json.loads(result.stdout.strip().splitlines()[-1])
    assert finetuned_label in COLOURS and probe_label in ("blue", "green", "red") and mean_label in COLOURS


def test_any_vit_checkpoint_loads_and_a_mismatched_head_is_replaced_on_request(toy, tmp_path):
    vit = tmp_path / "vit"
    ViTForImageClassification(ViTConfig(image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, intermediate_size=64, num_labels=2)).save_pretrained(vit)
    args = ["--model_name_or_path", str(vit), "--train_dir", toy["train"], "--validation_dir", toy["val"],
            "--max_steps", "1", "--save_strategy", "no"]
    with pytest.raises(ValueError, match="already has a classification head for 2 labels, but the dataset has 5"):
        _run(args, toy, tmp_path / "refused")
    assert not (tmp_path / "refused" / "config.json").exists()
    _run([*args, "--ignore_mismatched_sizes"], toy, tmp_path / "out")
    assert len(json.loads((tmp_path / "out" / "config.json").read_text())["id2label"]) == 5
    _run([*args, "--pooling", "mean"], toy, tmp_path / "mean")  # the CLS head is never used: a new one, any size
    config = json.loads((tmp_path / "mean" / "config.json").read_text())
    assert config["architectures"] == ["BeitForImageClassification"] and len(config["id2label"]) == 5


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if a Trainer is ever built: every input error must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("a Trainer was built despite bad input")

    monkeypatch.setattr(run_classification, "ClassificationTrainer", refuse)


def _images(r, n):
    return [_noisy((200, 20, 20), r) for _ in range(n)]


BAD_DATASETS = {
    "no_label_column": ({"image": _images}, None, "no label column found"),
    "single_class": ({"image": _images, "label": lambda r, n: ["cat"] * n}, None, "single class"),
    "float_labels": ({"image": _images, "label": lambda r, n: [0.5 * i for i in range(n)]}, None,
                     "not class labels"),
    "single_class_label": ({"image": _images, "label": lambda r, n: [0] * n},
                           Features({"image": ImageFeature(), "label": ClassLabel(names=["a", "b"])}), "single class"),
    "no_image_column": ({"picture": lambda r, n: list(range(n)), "label": lambda r, n: [i % 2 for i in range(n)]},
                        Features({"picture": Value("int64"), "label": Value("int64")}), "No image column found"),
}


@pytest.mark.parametrize("case", sorted(BAD_DATASETS))
def test_bad_datasets_fail_before_training(case, toy, tmp_path, no_training):
    columns, features, message = BAD_DATASETS[case]
    dataset = _disk_dataset(tmp_path / case, columns, features)
    with pytest.raises(ValueError, match=message):
        _run(["--model_name_or_path", toy["macrl"], "--dataset_name", dataset], toy, tmp_path / "out")
    assert not (tmp_path / "out" / "config.json").exists()


@pytest.mark.parametrize("flag, value, message", [
    ("--image_column_name", "pixels", "--image_column_name='pixels' is not a column of the dataset"),
    ("--label_column_name", "species", "--label_column_name='species' is not a column of the dataset"),
])
def test_named_columns_must_exist(flag, value, message, toy, tmp_path, no_training):
    with pytest.raises(ValueError, match=message):
        _run(["--model_name_or_path", toy["macrl"], "--dataset_name", toy["strings"], flag, value], toy,
             tmp_path / "out")


def test_other_checkpoints_are_refused(toy, tmp_path, no_training):
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="holds a 'bert' model .*expected a MACRL checkpoint"):
        _run(["--model_name_or_path", str(tmp_path / "bert"), "--train_dir", toy["train"]], toy, tmp_path / "out")


def test_layer_decay_is_for_finetuning_only(toy, tmp_path, no_training):
    with pytest.raises(ValueError, match="--layer_decay applies to --protocol finetune only"):
        _run(["--model_name_or_path", toy["macrl"], "--train_dir", toy["train"], "--protocol", "linear_probe",
              "--layer_decay", "0.75"], toy, tmp_path / "out")


def test_output_dir_must_hold_the_kind_of_model_the_pooling_writes(toy, mean_finetuned, no_training):
    args = ["--model_name_or_path", toy["macrl"], "--train_dir", toy["train"], "--max_steps", "1"]
    with pytest.raises(ValueError, match="holds a 'beit' model"):
        _run(args, toy, mean_finetuned[0])
    with pytest.raises(AssertionError, match="a Trainer was built"):  # past every check: the kind it writes
        _run([*args, "--pooling", "mean"], toy, mean_finetuned[0])


def test_mean_pooling_is_for_finetuning_only(toy, tmp_path, no_training):
    with pytest.raises(ValueError, match="--pooling mean applies to --protocol finetune only"):
        _run(["--model_name_or_path", toy["macrl"], "--train_dir", toy["train"], "--protocol", "linear_probe",
              "--pooling", "mean"], toy, tmp_path / "out")


def test_integer_labels_sort_numerically():
    data = Dataset.from_dict({"label": [10, 2, 3, 2]})
    labels = resolve_labels(data, None, "label", "toy")
    assert labels.names == ["2", "3", "10"]
    assert labels.encode(data)["label"] == [2, 0, 1, 0]


def test_unlabelled_ids_are_refused():
    features = Features({"label": ClassLabel(names=["a", "b"])})
    train = Dataset.from_dict({"label": [0, 1]}, features=features)
    unlabelled = Dataset.from_dict({"label": [-1, -1]}, features=features)
    with pytest.raises(ValueError, match=r"the validation split has label ids \[-1\] outside the classes"):
        resolve_labels(train, unlabelled, "label", "toy")


def test_knn_separates_colours(toy, finetuned, capsys):
    for model in (toy["macrl"], str(finetuned[0])):  # a MACRL checkpoint and a plain ViT
        accuracies = evaluation_main(["knn", "--model_name_or_path", model, "--train_dir", toy["train"],
                                      "--validation_dir", toy["val"], "--cache_dir", toy["cache"]])
        assert set(accuracies) == {10, 20, 200}
        assert min(accuracies.values()) >= 0.9, accuracies
    printed = capsys.readouterr().out
    assert "k=10 " in printed and "k=200" in printed and "top-1" in printed


def test_readouts_pool_the_cls_token_the_patch_tokens_or_both(toy, capsys, monkeypatch):
    from macrl_hf import evaluation
    from macrl_hf.evaluation import pool_features

    hidden = torch.randn(4, 1 + 16, 8)
    cls, mean, both = (pool_features(hidden, p) for p in ("cls", "mean", "cls+mean"))
    assert torch.allclose(cls, torch.nn.functional.normalize(hidden[:, 0], dim=1))
    assert torch.allclose(mean, torch.nn.functional.normalize(hidden[:, 1:].mean(1), dim=1))
    assert both.shape == (4, 16) and torch.allclose(both.norm(dim=1), torch.ones(4))
    assert torch.allclose(both @ both.T, (cls @ cls.T + mean @ mean.T) / 2, atol=1e-6)  # the two halves weigh alike
    with pytest.raises(ValueError, match=r"pooling='max': must be one of \('cls', 'mean', 'cls\+mean'\)"):
        pool_features(hidden, "max")
    common = ["--model_name_or_path", toy["macrl"], "--train_dir", toy["train"], "--validation_dir", toy["val"],
              "--cache_dir", toy["cache"], "--k", "10"]
    asked = []
    monkeypatch.setattr(evaluation, "pool_features", lambda h, p: asked.append(p) or pool_features(h, p))
    assert evaluation_main(["knn", *common, "--pooling", "cls+mean"])[10] >= 0.9
    assert asked[0] == "cls+mean"  # the flag reaches the features (colours separate whatever the read-out)
    with pytest.raises(SystemExit):
        evaluation_main(["knn", *common, "--pooling", "max"])
    assert "invalid choice: 'max'" in capsys.readouterr().err


def test_attention_maps_are_written(toy, finetuned, tmp_path):
    image = next(Path(toy["val"]).glob("blue/*.png"))
    for name, model in (("macrl", toy["macrl"]), ("vit", str(finetuned[0]))):
        output = tmp_path / f"{name}.png"
        visualize_main(["attention", "--model_name_or_path", model, "--image", str(image), "--output", str(output),
                        "--panel_size", "64", "--columns", "3"])
        # image + mean + 2 heads = 4 panels: 3 columns x 2 rows of 64 px.
        with Image.open(output) as written:
            assert written.format == "PNG" and written.size == (192, 128)


def test_fewshot_probe_learns_from_a_few_labels_and_draws_balanced_subsets(toy, capsys):
    from macrl_hf.evaluation import balanced_subset

    results = evaluation_main(["fewshot", "--model_name_or_path", toy["macrl"], "--train_dir", toy["train"],
                               "--validation_dir", toy["val"], "--cache_dir", toy["cache"], "--label_fractions",
                               "0.25", "0.5", "--draws", "3"])
    assert set(results) == {0.25, 0.5} and len(results[0.25]["draws"]) == 3
    assert results[0.5]["mean"] >= 0.9, results  # colours separate even with an untrained encoder
    assert "25 % of labels" in capsys.readouterr().out
    labels = torch.tensor([0] * 40 + [1] * 20 + [2] * 10)
    subset = balanced_subset(labels, 0.1, seed=3)
    assert torch.bincount(labels[subset]).tolist() == [4, 2, 1]
    assert torch.equal(subset, balanced_subset(labels, 0.1, seed=3))
    assert not torch.equal(subset, balanced_subset(labels, 0.1, seed=4))
    with pytest.raises(SystemExit):
        evaluation_main(["fewshot", "--model_name_or_path", toy["macrl"], "--train_dir", toy["train"],
                         "--label_fractions", "1.5"])


def test_fewshot_accuracy_is_chance_on_shuffled_labels():
    from macrl_hf.evaluation import fewshot_accuracy

    generator = torch.Generator().manual_seed(0)
    train_x, test_x = torch.randn(600, 8, generator=generator), torch.randn(300, 8, generator=generator)
    train_y, test_y = torch.arange(600) % 3, torch.arange(300) % 3
    assert max(fewshot_accuracy(train_x, train_y, test_x, test_y, 0.1, draws=2)) < 0.5
    separable = torch.nn.functional.one_hot(train_y, 8).float() + 0.1 * train_x
    separable_test = torch.nn.functional.one_hot(test_y, 8).float() + 0.1 * test_x
    with warnings.catch_warnings():  # quiet: scikit-learn's announced default changes are spelled out, not warned
        warnings.simplefilter("error", FutureWarning)
        assert min(fewshot_accuracy(separable, train_y, separable_test, test_y, 0.1, draws=2)) == 1.0


def test_compare_benchmark_evaluates_any_dataset_with_the_scripts_column_detection(toy, tmp_path):
    # cifar10_compare.py's evaluation once hard-coded CIFAR's `img` column; a CIFAR-100-like layout must work.
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import cifar10_compare
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    names = list(COLOURS)
    dataset = _disk_dataset(tmp_path / "data", {
        "image": lambda r, n: [_noisy(COLOURS[names[i % 3]], r) for i in range(n)],
        "fine_label": lambda r, n: [i % 3 for i in range(n)],
    }, split_sizes=(("train", 12), ("test", 6)))
    run_dir = tmp_path / "run"
    MacrlForPreTraining(MacrlConfig(**TINY)).save_pretrained(run_dir)
    from transformers import ViTImageProcessor
    ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(run_dir)
    args = cifar10_compare.parse_args(["--dataset_name", dataset, "--train_samples", "12", "--probe_epochs", "5"])
    results = cifar10_compare.frozen_evaluations(args, "macrl", run_dir)
    assert results["knn_top1"] >= 0.8 and 0.0 <= results["linear_probe_top1"] <= 1.0
