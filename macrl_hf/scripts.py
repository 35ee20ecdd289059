"""What run_pretraining.py and run_classification.py share: argument parsing, logging, the output-dir check."""

import json
import logging
import os
import sys

import transformers
from transformers import HfArgumentParser
from transformers.trainer_utils import get_last_checkpoint

logger = logging.getLogger(__name__)


def parse_arguments(dataclass_types, argv=None) -> tuple:
    """Command-line flags, or a single JSON file of them (as transformers' example scripts accept)."""
    parser = HfArgumentParser(dataclass_types)
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


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
    last = get_last_checkpoint(out)
    if last is not None:
        logger.warning("Resuming from %s (found in --output_dir); pass another --output_dir to start afresh.", last)
    return last
