"""TrainingArguments the scripts give other defaults than transformers does: none may be silently ignored."""

import json

import pytest
from helpers import run_pretraining, tiny_config_dir

from macrl_hf.scripts import given_arguments


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory):
    return tiny_config_dir(tmp_path_factory.mktemp("config"))


def base_args(out, config_dir, *extra):
    # Unlike helpers.pretrain_args: no --save_strategy / --eval_strategy, so the scripts' defaults apply.
    return ["--output_dir", str(out), "--config_name", str(config_dir), "--use_cpu", "--report_to", "none",
            "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16", "--max_train_samples", "64",
            "--max_eval_samples", "32", "--logging_steps", "1", "--disable_tqdm", "true", "--seed", "0", *extra]


def test_save_steps_alone_saves_every_n_steps(tmp_path, config_dir):
    out = tmp_path / "run"
    run_pretraining(base_args(out, config_dir, "--max_steps", "6", "--save_steps", "3", "--save_total_limit", "5",
                              "--eval_strategy", "no"))
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]


def test_eval_steps_alone_evaluates_every_n_steps(tmp_path, config_dir):
    trainer = run_pretraining(base_args(tmp_path / "run", config_dir, "--max_steps", "4", "--eval_steps", "2",
                                        "--save_strategy", "no"))
    evaluated = [e["step"] for e in trainer.state.log_history if "eval_knn_top1_k20" in e]
    assert evaluated[:3] == [0, 2, 4]  # the step-0 baseline, then every 2 steps


def test_a_json_file_of_arguments_follows_the_same_rule(tmp_path, config_dir):
    spec = dict(output_dir=str(tmp_path / "run"), config_name=str(config_dir), use_cpu=True, report_to="none",
                per_device_train_batch_size=8, max_train_samples=64, max_eval_samples=32, disable_tqdm=True,
                max_steps=4, save_steps=2, save_total_limit=5, eval_strategy="no")
    (tmp_path / "args.json").write_text(json.dumps(spec))
    run_pretraining([str(tmp_path / "args.json")])
    assert sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]


def test_learning_rate_given_alone_is_used_as_it_is(tmp_path, config_dir):
    common = ("--max_steps", "1", "--eval_strategy", "no", "--save_strategy", "no")
    trainer = run_pretraining(base_args(tmp_path / "a", config_dir, *common, "--learning_rate", "0.01"))
    assert trainer.args.learning_rate == 0.01
    trainer = run_pretraining(base_args(tmp_path / "b", config_dir, *common))
    assert trainer.args.learning_rate == pytest.approx(1.5e-4 * 8 / 256)  # the default base lr, scaled
    trainer = run_pretraining(base_args(tmp_path / "c", config_dir, *common, "--base_learning_rate", "1e-3"))
    assert trainer.args.learning_rate == pytest.approx(1e-3 * 8 / 256)
    with pytest.raises(ValueError, match="not both"):
        run_pretraining(base_args(tmp_path / "d", config_dir, *common, "--learning_rate", "0.01",
                                  "--base_learning_rate", "1e-3"))


def test_remove_unused_columns_true_is_refused(tmp_path, config_dir):
    with pytest.raises(ValueError, match="remove_unused_columns must stay False"):
        run_pretraining(base_args(tmp_path / "run", config_dir, "--remove_unused_columns", "true"))


def test_given_arguments_reads_every_spelling():
    given = given_arguments(["--save_steps", "3", "--eval-steps=4", "--use_cpu", "--seed", "1"])
    assert given == {"save_steps": "3", "eval_steps": "4", "use_cpu": None, "seed": "1"}


def test_run_mae_model_flags_override_the_preset():
    """`--mask_ratio` / `--norm_pix_loss` as in run_mae.py: applied over the preset, checked like any config field."""
    import run_pretraining

    def config(*argv):
        model_args = run_pretraining.parse_arguments((run_pretraining.ModelArguments,), ["--preset",
                                                                                           "vit-tiny-patch4-32", *argv])[0]
        return run_pretraining.build_config(model_args, demo=False)

    assert (config().mask_ratio, config().norm_pix_loss) == (0.75, True)
    chosen = config("--mask_ratio", "0.6", "--norm_pix_loss", "false")
    assert (chosen.mask_ratio, chosen.norm_pix_loss) == (0.6, False)
    with pytest.raises(ValueError, match="mask_ratio=1.0"):
        config("--mask_ratio", "1.0")


def test_strong_view_branch_is_a_choice():
    import run_pretraining

    def data_args(*argv):
        return run_pretraining.parse_arguments((run_pretraining.DataTrainingArguments,), list(argv))[0]

    assert data_args().strong_view_branch == "main"
    assert data_args("--strong_view_branch", "momentum").strong_view_branch == "momentum"
    with pytest.raises(SystemExit):  # argparse names the flag and the allowed values
        data_args("--strong_view_branch", "teacher")
