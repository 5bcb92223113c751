"""Argument dataclasses shared by the scripts, and parsing of `script.py [config.json] [--flag value ...]`.

A JSON config is read first and command-line flags override it; every value goes through argparse, so a wrong
type or an unknown key stops with one line that names it.
"""
from __future__ import annotations

import difflib
import functools
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional, Sequence

import torch
from transformers import HfArgumentParser, TrainingArguments

from utils.infra.errors import UserError
from utils.infra.flags import check_flags, hide_from_help, refused_fields
from utils.infra.validation import validate_arguments


@dataclass
class ExperimentTrainingArguments(TrainingArguments):
    """transformers' TrainingArguments plus the flags of the original scripts that v5 no longer has."""

    _argument_group_name = "training (only the flags these scripts honour; see utils/infra/flags.py)"

    # Fields that change only evaluation, not which masks IMP finds (a resumed run may change them), as DataArguments'.
    eval_only_fields: ClassVar[tuple[str, ...]] = ("do_eval", "per_device_eval_batch_size", "evaluate_during_training")

    evaluate_during_training: bool = field(
        default=True, metadata={"help": "Evaluate every --logging_steps optimizer steps (and always at the end)."}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Accepted as in the original; removes nothing (an unfinished run of the same "
                                         "settings resumes, a complete run is kept: see --discard_unfinished_run)."}
    )
    discard_unfinished_run: bool = field(
        default=False, metadata={"help": "Delete an UNFINISHED run with other settings in --output_dir (its results "
                                         "file, masks/, rewind weights) to start this one; complete runs are kept."}
    )
    resume: bool = field(
        default=False, metadata={"help": "Continue an interrupted IMP run in --output_dir; completed rounds are kept."}
    )
    save_steps: float = field(
        default=0,
        metadata={"help": "IMP: optimizer steps per round (the original's pruning interval); 0: split the epoch "
                          "budget over the rounds. Fine-tuning saves no checkpoints."},
    )
    dataloader_num_workers: int = field(
        default=-1,
        metadata={"help": "Processes that collate batches off the training thread; -1: 2 on a GPU, 0 on the CPU "
                          "(where they would compete with training for the cores)."},
    )
    group_by_length: bool = field(
        default=False, metadata={"help": "Batch examples of similar length together (less padding, faster)."}
    )
    warmup_ratio: float = field(
        default=0.0, metadata={"help": "Linear warmup over this fraction of the schedule's steps (or --warmup_steps)."}
    )
    logging_dir: Optional[str] = field(
        default=None, metadata={"help": "Where --report_to tensorboard writes (default: OUTPUT_DIR/runs)."}
    )
    report_to: None | str | list[str] = field(
        default="default",
        metadata={"help": "Trackers to log to: tensorboard, wandb, mlflow, ... (several: 'tensorboard wandb' or "
                          "'tensorboard,wandb'), all (every installed one) or none; default: tensorboard when it is "
                          "installed, else none.", "nargs": "+"},
    )

    def __post_init__(self) -> None:
        if self.output_dir is None:
            raise UserError("--output_dir is required")
        if self.warmup_ratio:  # transformers v5 reads a warmup_steps below 1 as a ratio
            if self.warmup_steps or not 0 < self.warmup_ratio < 1:
                raise UserError("--warmup_ratio must be in (0, 1) and not combined with --warmup_steps")
            self.warmup_steps = self.warmup_ratio
        self.report_to = tracker_list(self.report_to)
        if self.dataloader_num_workers < 0:  # (use_cpu first: a study's planner must not initialise CUDA)
            self.dataloader_num_workers = 2 if not self.use_cpu and torch.cuda.is_available() else 0
        if self.fp16 and (self.use_cpu or not torch.accelerator.is_available()):  # transformers refuses bf16 alike
            raise UserError("--fp16 needs a GPU: this run trains on the CPU, where float16 autocast changes the "
                            "results; drop --fp16 (--bf16 --use_cpu runs bfloat16 on the CPU)")
        super().__post_init__()
        if self.train_sampling_strategy == "group_by_length":
            self.group_by_length = True


def tracker_list(report_to: None | str | Sequence[str]) -> str | list[str]:
    """--report_to as the Hugging Face scripts take it: names as separate words ('tensorboard wandb'), a comma list
    ('tensorboard,wandb') or both; 'all' or 'none' alone (transformers expands them); 'default' picks tensorboard
    when it is installed, else none."""
    words = [report_to] if report_to is None or isinstance(report_to, str) else list(report_to)
    names = [part.strip() for word in words for part in str(word).split(",") if part.strip()]
    if names == ["default"]:
        return "tensorboard" if importlib.util.find_spec("tensorboard") else "none"
    if not names or names == ["None"]:
        return "none"
    for single in ("all", "none"):
        if single in names and len(names) > 1:
            raise UserError(f"--report_to {single} stands alone, not with {', '.join(n for n in names if n != single)}")
    return names[0] if names[0] in ("all", "none") else list(dict.fromkeys(names))


@dataclass
class ModelArguments:
    _argument_group_name = "model"

    model_name_or_path: str = field(metadata={"help": "Hub id (bert-base-multilingual-cased) or local folder."})
    model_type: Optional[str] = field(
        default=None, metadata={"help": "Informational (the original's --model_type mbert); the checkpoint decides."}
    )
    config_name: Optional[str] = field(default=None, metadata={"help": "Config to use instead of the model's."})
    tokenizer_name: Optional[str] = field(default=None, metadata={"help": "Tokenizer to use instead of the model's."})
    cache_dir: Optional[str] = field(default=None, metadata={"help": "Where hub downloads are stored."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow checkpoints that run their own code (off: a checkpoint can run code)."}
    )
    gguf_file: Optional[str] = field(
        default=None,
        metadata={"help": "A GGUF checkpoint (file name inside --model_name_or_path, or a path): dequantized on load; "
                          "scripts/convert_gguf.py converts it once into a folder that loads in seconds."},
    )


DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class InferenceModelArguments(ModelArguments):
    """The model flags of the scripts that only run a model (one-shot pruning and the analyses): also --dtype.
    Training scripts have none: they keep float32 weights and take --bf16 / --fp16 (mixed precision)."""

    dtype: Optional[str] = field(
        default=None,
        metadata={"help": "Run the model in this dtype (float32, bfloat16, float16; default: the checkpoint's). "
                          "bfloat16 halves the time on CPUs with AVX512-BF16 or AMX and on GPUs; statistics, "
                          "masks and losses are still computed in float32 or float64.", "choices": list(DTYPES)},
    )


@dataclass
class DataArguments:
    """Data options common to all tasks; each task adds its own in a subclass."""

    _argument_group_name = "data"

    data_language: str = field(
        default="en", metadata={"help": "Language code, or a comma list (en,fa,fr,zh) for an equal-share mixture."}
    )
    task_name: Optional[str] = field(default=None, metadata={"help": "Informational (the original's --task_name)."})
    dataset_name: Optional[str] = field(default=None, metadata={"help": "Hub dataset; local files take precedence."})
    train_file: Optional[str] = field(
        default=None, metadata={"help": "JSON-lines training file; '{lang}' is replaced by each language code."}
    )
    validation_file: Optional[str] = field(default=None, metadata={"help": "JSON-lines validation file ('{lang}' ok)."})
    test_file: Optional[str] = field(default=None, metadata={"help": "JSON-lines test file ('{lang}' ok)."})
    eval_languages: Optional[str] = field(
        default=None, metadata={"help": "Comma list of extra languages to evaluate on (zero-shot transfer)."}
    )
    max_seq_length: int = field(default=128, metadata={"help": "Longer inputs are truncated."})
    pad_to_max_length: bool = field(
        default=False, metadata={"help": "Pad every batch to --max_seq_length (default: pad each batch dynamically)."}
    )
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Use at most this many training examples."})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "Use at most this many eval examples."})
    preprocessing_num_workers: Optional[int] = field(default=None, metadata={"help": "Processes for tokenisation."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Re-tokenise even if a cached result exists."})

    # Fields that change only evaluation, not which masks IMP finds (a resumed run may change them).
    eval_only_fields: ClassVar[tuple[str, ...]] = (
        "validation_file", "test_file", "eval_languages", "max_eval_samples", "preprocessing_num_workers",
        "overwrite_cache", "task_name",
    )

    @property
    def languages(self) -> list[str]:
        return split_languages(self.data_language)

    @property
    def extra_eval_languages(self) -> list[str]:
        return [lang for lang in split_languages(self.eval_languages or "") if lang not in self.languages]


@dataclass
class IMPArguments:
    """How iterative magnitude pruning proceeds (LT_*.py)."""

    _argument_group_name = "pruning (IMP)"

    prune_rate: float = field(default=0.1, metadata={"help": "Fraction pruned per round (of the original weights)."})
    target_sparsity: float = field(default=0.9, metadata={"help": "Stop once this sparsity has been trained."})
    prune_schedule: str = field(
        default="linear", metadata={"help": "linear: 10%%, 20%%, ...; geometric: prune_rate of the remaining weights.",
                                    "choices": ["linear", "geometric"]}
    )
    rewind_step: int = field(default=0, metadata={"help": "Rewind to the weights after this many steps (0: initial)."})
    prune_scope: str = field(
        default="global", metadata={"help": "global ranking, or per_stack (encoder and decoder each to the sparsity; "
                                            "the default for mT5, as the original).",
                                    "choices": ["global", "per_stack"]}
    )
    mask_format: str = field(
        default="bool", metadata={"help": "bool (as the original), or packed (1 bit per weight).",
                                  "choices": ["bool", "packed"]}
    )
    lr_schedule_span: str = field(
        default="run",
        metadata={"help": "run: every round follows the first steps of one schedule over the whole IMP budget, "
                          "restarted at the peak each round (the original); round: a schedule that ends each round.",
                  "choices": ["run", "round"]},
    )
    rewind_scope: str = field(
        default="body",
        metadata={"help": "body: rewind the pre-trained body, the task head keeps training across rounds (the "
                          "original, for encoder models); all: rewind every parameter (the default for mT5, as the "
                          "original).",
                  "choices": ["body", "all"]},
    )


@dataclass
class MaskArguments:
    """Which fixed mask a fine-tuning script trains under, and from which weights."""

    _argument_group_name = "mask (fine-tuning under a fixed mask)"

    mask_dir: Optional[str] = field(default=None, metadata={"help": "Mask .pt file (for --pruning_type lth)."})
    pruning_type: str = field(
        default="lth", metadata={"help": "lth: the --mask_dir mask; random / oneshot: made at --sparsity.",
                                 "choices": ["lth", "random", "oneshot", "none"]}
    )
    sparsity: Optional[float] = field(
        default=None, metadata={"help": "For random/oneshot: a fraction (0.5) or a percentage (50)."}
    )
    weight_init: str = field(
        default="pre", metadata={"help": "pre: pre-trained weights; rand: same architecture, random weights.",
                                 "choices": ["pre", "rand"]}
    )
    prune_scope: str = field(
        default="global", metadata={"help": "For random/oneshot masks: global or per_stack (the default for mT5).",
                                    "choices": ["global", "per_stack"]}
    )
    save_model: bool = field(default=False, metadata={"help": "Save the trained masked model to output_dir/model."})

    @property
    def sparsity_fraction(self) -> Optional[float]:
        """The original took an integer percentage; accept both 50 and 0.5."""
        if self.sparsity is None:
            return None
        if self.sparsity < 0 or self.sparsity >= 100:
            raise UserError(f"--sparsity must be a fraction in [0, 1) or a percentage in [0, 100), got {self.sparsity}")
        return self.sparsity / 100.0 if self.sparsity >= 1 else self.sparsity


def split_languages(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class _Parser(HfArgumentParser):
    def error(self, message: str):  # argparse would print the whole usage; one line is enough
        raise UserError(message)


def parse_args(dataclass_types: Sequence[type], argv: Optional[Sequence[str]] = None, *,
               config: Optional[dict[str, Any]] = None, check_only: bool = False) -> tuple:
    """Parse `[config.json] [--flag value ...]` into instances of `dataclass_types` (flags override the JSON).

    `config` stands for the JSON file's object (a study checks its runs' configs without writing them).
    `check_only`: every check a script makes while parsing, on whatever machine asks (a study's planner, maybe a
    login node): no device is set up, and the settings whose check depends on the machine's GPUs (use_cpu, fp16,
    bf16, tf32, torch_compile) are checked for their type only; the script checks them again where it runs."""
    argv = list(sys.argv[1:] if argv is None else argv)
    types = [_checking(t) if check_only else t for t in dataclass_types]
    parser = _Parser(types, allow_abbrev=False, usage="%(prog)s [config.json] [--flag value ...]")
    if config is not None:
        argv = config_to_argv(parser, config, "config") + argv
    elif argv and argv[0].endswith(".json"):
        argv = json_to_argv(parser, argv[0]) + argv[1:]
    if ExperimentTrainingArguments in dataclass_types:
        hide_from_help(parser, refused_fields())
        check_flags(parser, argv, refused_fields())
    try:
        return validate_arguments(parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False))
    except ValueError as error:  # unknown CLI flags, TrainingArguments' own checks
        message = str(error)
        if "not used by the HfArgumentParser" in message:
            message = "unknown argument(s): " + message.split(":", 1)[1].strip()
        raise UserError(message) from None
    except OverflowError as error:  # transformers' own int() of an infinite step count
        raise UserError(f"a numeric flag is infinite or too large ({error})") from None


def json_to_argv(parser: HfArgumentParser, path: str) -> list[str]:
    """Turn a JSON config into command-line tokens, so argparse checks every key and type."""
    config_path = Path(path)
    if not config_path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UserError(f"config {path} is not valid JSON: {error}") from None
    except UnicodeDecodeError as error:
        raise UserError(f"config {path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not isinstance(config, dict):
        raise UserError(f"config {path} must hold a JSON object of argument names and values")
    return config_to_argv(parser, config, f"config {path}")


def config_to_argv(parser: HfArgumentParser, config: dict[str, Any], where: str) -> list[str]:
    """A config's keys and values as command-line tokens (None: not given)."""
    options = {action.dest: action for action in parser._actions if action.option_strings}
    argv: list[str] = []
    for key, value in config.items():
        if key not in options:
            close = difflib.get_close_matches(key, list(options), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UserError(f"{where}: unknown key '{key}'{hint}")
        if value is None:
            continue
        flag = f"--{key}"
        if isinstance(value, list):
            argv += [flag, *(_token(v) for v in value)]
        elif isinstance(value, dict):
            argv += [flag, json.dumps(value)]
        else:
            argv += [flag, _token(value)]
    return argv


_MACHINE_SETTINGS = {"use_cpu": True, "fp16": False, "bf16": False, "tf32": None, "torch_compile": False}


@functools.cache
def _checking(cls: type) -> type:
    """`cls` for parse_args(check_only=True): a TrainingArguments that sets up no device and leaves the
    machine-dependent settings out of its own checks (their parsed values are kept)."""
    if not (isinstance(cls, type) and issubclass(cls, TrainingArguments)):
        return cls

    def __post_init__(self) -> None:
        given = {name: getattr(self, name) for name in _MACHINE_SETTINGS}
        if given["fp16"] and given["bf16"]:
            raise UserError("--fp16 and --bf16 cannot both be set")
        for name, value in _MACHINE_SETTINGS.items():
            setattr(self, name, value)
        cls.__post_init__(self)
        for name, value in given.items():
            setattr(self, name, value)

    device = property(lambda self: torch.device("cpu"))
    return type(cls.__name__, (cls,), {"__post_init__": __post_init__, "device": device,
                                       "__module__": cls.__module__, "__doc__": cls.__doc__})


def _token(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def config_dict(*dataclass_instances: Any) -> dict[str, Any]:
    """All arguments as one JSON-friendly dict, for results files and resume checks."""
    merged: dict[str, Any] = {}
    for instance in dataclass_instances:
        data = instance.to_dict() if hasattr(instance, "to_dict") else dict(vars(instance))
        for key, value in data.items():
            if not key.startswith("_"):
                merged[key] = value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else str(value)
    return merged
