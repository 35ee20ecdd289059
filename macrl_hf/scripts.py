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
"""What run_pretraining.py and run_classification.py share: argument parsing, logging, the output-dir check."""

import json
import logging
import os
import sys
from dataclasses import dataclass, field

import transformers
from transformers import HfArgumentParser, TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import sort_checkpoints

logger = logging.getLogger(__name__)


@dataclass
class ImageDataArguments:
    """Where the images come from; names as in transformers' image examples (run_mae.py and friends)."""

    dataset_name: str | None = field(default=None, metadata={"help": "A Hub dataset id or a local dataset directory. "
                                                             "Without any data argument: the built-in digits demo."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "The dataset configuration name."})
    train_dir: str | None = field(default=None, metadata={"help": "A folder of training images; sub-folders are "
                                                          "classes (imagefolder)."})
    validation_dir: str | None = field(default=None, metadata={"help": "A folder of validation images."})
    image_column_name: str | None = field(default=None, metadata={"help": "Image column; default: 'image' or 'img'."})
    label_column_name: str | None = field(default=None, metadata={"help": "Label column; default: 'label', 'labels' "
                                                                  "or 'fine_label' when present."})
    train_val_split: float | None = field(default=0.15, metadata={"help": "Share of train held out for validation "
                                                                   "when the dataset has no validation split."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Train on a seeded random subset."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Evaluate on a seeded random subset."})


@dataclass
class EpochTrainingArguments(TrainingArguments):
    """TrainingArguments defaults both scripts want; every one can still be set on the command line."""

    do_train: bool = field(default=True, metadata={"help": "Train (default True)."})
    do_eval: bool = field(default=True, metadata={"help": "Evaluate when there is a validation split."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to save checkpoints."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept in output_dir."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N optimizer steps."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Must stay False (set_transform)."})

    def __post_init__(self):
        if self.remove_unused_columns:
            raise ValueError("--remove_unused_columns must stay False: the image transforms read the dataset's raw "
                             "columns, which Trainer would otherwise drop before they run")
        super().__post_init__()


# TrainingArguments that mean something only under a strategy these scripts default to "epoch": given alone, each
# switches its strategy to "steps" (a run_mae.py user's `--save_steps 3` keeps checkpoint-3), instead of being
# silently ignored.
STEP_FLAGS = {"save_steps": "save_strategy", "eval_steps": "eval_strategy"}


def given_arguments(argv=None) -> dict:
    """The arguments a user gave, by name (`--name value`, `--name=value`, a bare `--flag`, or a JSON file's keys),
    each with its raw value (`None` for a bare flag)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        with open(argv[0]) as f:
            return json.load(f)
    given = {}
    for i, arg in enumerate(argv):
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if not eq:
                value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else None
            given[name.replace("-", "_")] = value
    return given


def _imply_step_strategies(given: dict) -> dict:
    """`{strategy: "steps"}` for each of STEP_FLAGS given without its strategy; warns where a given strategy makes a
    given interval meaningless."""
    implied = {}
    for steps, strategy in STEP_FLAGS.items():
        if steps not in given:
            continue
        if strategy not in given:
            implied[strategy] = "steps"
            logger.info("--%s given without --%s: using --%s steps", steps, strategy, strategy)
        elif str(given[strategy]).lower() != "steps":
            logger.warning("--%s %s has no effect with --%s %s", steps, given[steps], strategy, given[strategy])
    return implied


def parse_arguments(dataclass_types, argv=None) -> tuple:
    """Command-line flags, or a single JSON file of them (as transformers' example scripts accept)."""
    parser = HfArgumentParser(dataclass_types)
    argv = sys.argv[1:] if argv is None else list(argv)
    implied = _imply_step_strategies(given_arguments(argv))
    if len(argv) == 1 and argv[0].endswith(".json"):
        with open(argv[0]) as f:
            return parser.parse_dict({**json.load(f), **implied})
    extra = [item for name, value in implied.items() for item in (f"--{name}", value)]
    return parser.parse_args_into_dataclasses(args=argv + extra)


def setup_logging(training_args, *names: str) -> None:
    """The example scripts' logging: process-dependent level for transformers, `names` and macrl_hf."""
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%m/%d/%Y %H:%M:%S",
                        handlers=[logging.StreamHandler(sys.stdout)])
    log_level = training_args.get_process_log_level()
    for name in (*names, "macrl_hf"):
        logging.getLogger(name).setLevel(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    logger.warning(f"Process rank: {training_args.process_index}, device: {training_args.device}, "
                   f"n_gpu: {training_args.n_gpu}, distributed: {training_args.parallel_mode.value}")


def check_output_dir(training_args, expected_model_type: str) -> str | None:
    """Refuse an output dir that holds another kind of model; find the checkpoint to resume from."""
    out = training_args.output_dir
    config_file = os.path.join(out, "config.json")
    if os.path.isfile(config_file):
        with open(config_file) as f:
            model_type = json.load(f).get("model_type")
        if model_type != expected_model_type:
            raise ValueError(f"--output_dir {out} holds a {model_type!r} model ({config_file}); choose another "
                             "directory: nothing was written.")
    if training_args.resume_from_checkpoint is not None or not os.path.isdir(out) or not training_args.do_train:
        return training_args.resume_from_checkpoint
    last = last_complete_checkpoint(out)
    if last is not None:
        logger.warning("Resuming from %s (found in --output_dir); pass another --output_dir to start afresh.", last)
    return last


def last_complete_checkpoint(folder: str) -> str | None:
    """The newest `checkpoint-N` in `folder` that the Trainer finished writing, else None.

    transformers' `get_last_checkpoint` takes the highest N even when the process was killed while writing it, and
    resuming from it then fails. The Trainer writes `trainer_state.json` last, so a checkpoint without it is
    incomplete: it is skipped (and named) in favour of the one before, which is only rotated away once the next
    is complete.
    """
    for checkpoint in reversed(sort_checkpoints(folder)):  # by step, newest last
        if os.path.isfile(os.path.join(checkpoint, TRAINER_STATE_NAME)):
            return checkpoint
        logger.warning("Skipping %s: it holds no %s, so writing it was interrupted; resuming from the checkpoint "
                       "before it, if any.", checkpoint, TRAINER_STATE_NAME)
    return None
