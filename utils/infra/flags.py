"""Which TrainingArguments flags these scripts honour; every other one given a non-default value is refused.

transformers' TrainingArguments has over a hundred fields written for its Trainer. These scripts train with their
own loop (utils.core.training.MaskedTrainer), so a flag that loop does not read must not be accepted silently: the user
would believe a setting took effect. The policy lives here, once; utils.infra.args applies it while parsing and hides the
refused flags from --help.
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Iterable

from transformers import TrainingArguments

from utils.infra.errors import UserError

# TrainingArguments fields that utils/ reads (or that transformers itself applies while parsing, e.g. tf32).
HONOURED = frozenset({
    # run and data
    "output_dir", "do_train", "do_eval", "seed", "data_seed", "use_cpu", "local_rank",
    "per_device_train_batch_size", "per_device_eval_batch_size", "num_train_epochs", "max_steps", "save_steps",
    "train_sampling_strategy",
    # optimisation
    "learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm", "optim",
    "optim_args", "lr_scheduler_type", "lr_scheduler_kwargs", "warmup_steps", "gradient_accumulation_steps",
    # speed and memory
    "fp16", "bf16", "tf32", "activation_checkpointing", "activation_checkpointing_kwargs", "gradient_checkpointing",
    "gradient_checkpointing_kwargs", "torch_compile",
    "torch_compile_backend", "torch_compile_mode", "dataloader_num_workers", "dataloader_pin_memory",
    "dataloader_persistent_workers", "dataloader_drop_last", "dataloader_prefetch_factor",
    # logging, progress and tracking
    "logging_steps", "logging_first_step", "log_level", "log_level_replica", "disable_tqdm", "report_to", "run_name",
})

# What to use instead, for the refused flags a user of the Hugging Face scripts is most likely to reach for.
ALTERNATIVES = {
    "eval_strategy": "use --evaluate_during_training / --logging_steps",
    "eval_steps": "use --evaluate_during_training / --logging_steps",
    "eval_on_start": "use --evaluate_during_training / --logging_steps",
    "logging_strategy": "use --logging_steps",
    "save_strategy": "IMP saves a mask every round (--save_steps sets the round length); fine-tuning: --save_model",
    "save_total_limit": "IMP keeps every round's mask; fine-tuning: --save_model",
    "save_only_model": "fine-tuning: --save_model",
    "resume_from_checkpoint": "use --resume (IMP)",
    "load_best_model_at_end": "every round's metrics are in imp_results.json; pick a ticket with summarize_results.py",
    "metric_for_best_model": "each task has its headline metric; see summarize_results.py",
    "do_predict": "evaluate other languages with --eval_languages",
    "project": "use --run_name (it also names the wandb / mlflow project)",
    "deepspeed": "use torchrun or accelerate launch (DDP)",
    "fsdp": "use torchrun or accelerate launch (DDP)",
    "push_to_hub": "upload the output directory yourself",
    "full_determinism": "use --seed (runs are reproducible on the same hardware)",
}


def refused_fields() -> set[str]:
    """TrainingArguments fields the scripts do not read (fields added by our subclass are always honoured)."""
    return {f.name for f in dataclasses.fields(TrainingArguments) if f.init} - HONOURED


def refusal(name: str) -> str:
    """The one line that refuses `--name`."""
    hint = ALTERNATIVES.get(name)
    return f"--{name} is not used by these scripts" + (f": {hint}" if hint else "")


def check_flags(parser: argparse.ArgumentParser, argv: list[str], names: Iterable[str]) -> None:
    """Refuse the first of `names` given a value other than its default (on the command line or in the config)."""
    namespace, _ = parser.parse_known_args(argv)
    given = vars(namespace)
    defaults: dict[str, Any] = {}
    for action in parser._actions:  # the first action of a dest holds its default (not its --no_ twin)
        defaults.setdefault(action.dest, _parsed_default(action))
    for name in sorted(names):
        if name in given and not _same(given[name], defaults.get(name)):
            raise UserError(refusal(name))
    if given.get("train_sampling_strategy") not in (None, "random", "group_by_length"):
        raise UserError("--train_sampling_strategy: only random and group_by_length are used by these scripts")


def hide_from_help(parser: argparse.ArgumentParser, names: Iterable[str]) -> None:
    """Keep refused flags parseable (so they can be refused by name) but out of --help."""
    hidden = set(names)
    for action in parser._actions:
        if action.dest in hidden:
            action.help = argparse.SUPPRESS


def _parsed_default(action: argparse.Action) -> Any:
    """The default as argparse leaves it in the namespace (it runs a string default through the flag's type)."""
    if isinstance(action.default, str) and action.type is not None:
        return action.type(action.default)
    return action.default


def _same(value: Any, default: Any) -> bool:
    if value == default:
        return True
    return str(value).lower() in ("none", "") and default in (None, "")  # "--debug ''" or "--x None"
