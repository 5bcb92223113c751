"""Every flag's allowed values, checked once at parse time (utils.infra.args.parse_args), with the range in the message.

Rules are keyed by field name, so a flag means the same everywhere it appears (--max_seq_length for NER, XNLI and
retrieval; --batch_size and --k for retrieval); cross-field rules follow. A value that is None means "not given"
and is only checked where the flag is required. Empty strings are refused for every text flag of this project.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Callable, Sequence

from utils.infra.errors import UserError

Rule = tuple[Callable[[Any], bool], str]  # (is the value allowed?, what is allowed)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def whole(minimum: int) -> Rule:
    return (lambda v: _number(v) and float(v).is_integer() and v >= minimum, f"a whole number >= {minimum}")


def above(minimum: float) -> Rule:
    return (lambda v: _number(v) and v > minimum, f"a finite number > {minimum:g}")


def at_least(minimum: float) -> Rule:
    return (lambda v: _number(v) and v >= minimum, f"a finite number >= {minimum:g}")


def fraction(low_open: bool) -> Rule:
    if low_open:
        return (lambda v: _number(v) and 0 < v < 1, "a fraction in (0, 1)")
    return (lambda v: _number(v) and 0 <= v < 1, "a fraction in [0, 1)")


LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}([_-][a-z0-9]+)*$|^simple$|^all_languages$", re.IGNORECASE)

FIELD_RULES: dict[str, Rule] = {
    # training (the TrainingArguments fields the scripts use)
    "per_device_train_batch_size": whole(1),
    "per_device_eval_batch_size": whole(1),
    "gradient_accumulation_steps": whole(1),
    "learning_rate": above(0),
    "weight_decay": at_least(0),
    "adam_beta1": fraction(low_open=False),
    "adam_beta2": fraction(low_open=False),
    "adam_epsilon": above(0),
    "max_grad_norm": (at_least(0)[0], "a finite number >= 0 (0: no clipping)"),
    "num_train_epochs": at_least(0),
    "max_steps": (whole(-1)[0], "-1 (use --num_train_epochs) or a whole number >= 1"),
    "warmup_steps": (at_least(0)[0], "a finite number >= 0 (below 1: a fraction of the steps)"),
    "logging_steps": whole(1),
    "save_steps": (lambda v: v == 0 or whole(1)[0](v), "0 (split the epoch budget over the rounds) or a whole number >= 1"),
    "seed": (lambda v: whole(0)[0](v) and v < 2**32, "a whole number in [0, 2^32)"),
    "dataloader_num_workers": (whole(-1)[0], "-1 (automatic) or a whole number >= 0"),
    # data
    "max_seq_length": whole(1),
    "max_train_samples": whole(1),
    "max_eval_samples": whole(1),
    "preprocessing_num_workers": whole(1),
    "mlm_probability": fraction(low_open=True),
    "val_data_ratio": fraction(low_open=True),
    "block_size": whole(1),
    "max_source_length": whole(1),
    "max_target_length": whole(1),
    "val_max_target_length": whole(1),
    "num_beams": whole(1),
    # IMP and masks
    "prune_rate": fraction(low_open=True),
    "target_sparsity": fraction(low_open=False),
    "rewind_step": whole(0),
    "sparsity": (lambda v: _number(v) and 0 <= v < 100, "a fraction in [0, 1) or a percentage in [0, 100)"),
    # one-shot pruning
    "calibration_samples": whole(1),
    "calibration_seq_len": whole(2),
    "seq_len": whole(2),
    "max_windows": whole(1),
    "sparsegpt_block_size": whole(1),
    "sparsegpt_damping": at_least(0),
    # analysis tools
    "k": whole(1),
    "batch_size": whole(1),
    "max_sentences": (whole(2)[0], "a whole number >= 2 (retrieval picks among the other sentences)"),
    "epsilon": at_least(0),
    "masks": (lambda v: isinstance(v, list) and len(v) >= 2, "two or more mask files"),
    "runs": (lambda v: isinstance(v, list) and len(v) >= 1, "one or more folders"),
    "max_lines": whole(1),
    "max_eval_lines": whole(1),
    "max_length": whole(2),
    "filter_rate": fraction(low_open=True),
    "top_rate": (lambda v: _number(v) and 0 < v <= 1, "a fraction in (0, 1]"),
    "activation_bar_ratio": fraction(low_open=True),
    "baseline_seed": whole(0),
    "permutations": whole(2),
    "name": (lambda v: "/" not in v and "\\" not in v and v not in (".", ".."), "a file stem without '/'"),
}
LANGUAGE_FIELDS = ("data_language", "eval_languages", "src_lang", "tgt_lang")


def validate_arguments(instances: Sequence[Any]) -> tuple:
    """Check every parsed dataclass; return them unchanged (as a tuple) or raise one UserError line."""
    for instance in instances:
        for name, value in vars(instance).items():
            _check_field(name, value, _own_text_field(type(instance), name))
    _check_combinations(instances)
    return tuple(instances)


def check_value(name: str, value: Any) -> None:
    """One value of one of this project's flags, by its rule (a study checks what differs between its runs)."""
    _check_field(name, value, own_text=True)


def _own_text_field(cls: type, name: str) -> bool:
    """Text flags of this project (TrainingArguments' own text fields keep transformers' rules)."""
    from transformers import TrainingArguments

    base = {f.name for f in dataclasses.fields(TrainingArguments)} - {"output_dir"}
    return name not in base and any(f.name == name for f in dataclasses.fields(cls))


def _check_field(name: str, value: Any, own_text: bool) -> None:
    if value is None:
        return
    if own_text and isinstance(value, str) and not value.strip():
        raise UserError(f"--{name} is empty")
    if own_text and isinstance(value, list) and any(isinstance(v, str) and not v.strip() for v in value):
        raise UserError(f"--{name} holds an empty entry")
    if name in LANGUAGE_FIELDS:
        check_language_list(name, value)
    rule = FIELD_RULES.get(name)
    if rule is not None and not rule[0](value):
        raise UserError(f"--{name} must be {rule[1]}, got {value!r}")


def check_language_list(name: str, value: str) -> list[str]:
    """A comma list of language codes: no empty entry, no repeats, each code well-formed."""
    parts = [part.strip() for part in value.split(",")]
    for part in parts:
        if not part:
            raise UserError(f"--{name} {value!r} has an empty entry: give comma-separated codes such as en,fr")
        if not LANGUAGE_CODE.match(part):
            raise UserError(f"--{name}: {part!r} is not a language code (such as en, fr, zh, bat-smg)")
    repeated = sorted({p for p in parts if parts.count(p) > 1})
    if repeated:
        raise UserError(f"--{name} names {', '.join(repeated)} more than once")
    return parts


def language_file_map(name: str, value: str) -> dict[str, str]:
    """'en=PATH,fr=PATH' -> {'en': PATH, 'fr': PATH}: each entry LANG=PATH, the languages a valid comma list."""
    found: dict[str, str] = {}
    for part in value.split(","):
        lang, sep, path = part.partition("=")
        if not sep or not lang.strip() or not path.strip():
            raise UserError(f"--{name}: {part!r} is not LANG=PATH (such as en=data/en.valid.txt)")
        if lang.strip() in found:
            raise UserError(f"--{name} names {lang.strip()} more than once")
        found[lang.strip()] = path.strip()
    check_language_list(name, ",".join(found))
    return found


def _check_combinations(instances: Sequence[Any]) -> None:
    by_field = {name: value for instance in instances for name, value in vars(instance).items()}
    imp = "prune_rate" in by_field
    save_steps = by_field.get("save_steps") or 0
    if by_field.get("do_train") and (by_field.get("max_steps") or 0) <= 0 and by_field.get("num_train_epochs") == 0:
        if not (imp and save_steps >= 1):
            raise UserError("the training budget is zero: give --num_train_epochs above 0 or --max_steps >= 1"
                            + (" (or --save_steps, the steps per IMP round)" if imp else ""))
    if imp and save_steps >= 1 and by_field.get("rewind_step", 0) >= save_steps:
        raise UserError(f"--rewind_step {by_field['rewind_step']} must be below the round length --save_steps "
                        f"{save_steps:g}")
    kind = by_field.get("pruning_type")  # a fine-tuning script (MaskArguments)
    if kind is not None and by_field.get("resume"):
        raise UserError("--resume continues an IMP run; a fine-tuning run restarts from its mask: drop --resume "
                        "(--discard_unfinished_run clears an unfinished run's folder)")
    if kind == "lth" and not by_field.get("mask_dir"):
        raise UserError("--pruning_type lth needs --mask_dir (a mask .pt file)")
    if kind in ("random", "oneshot") and by_field.get("sparsity") is None:
        raise UserError(f"--pruning_type {kind} needs --sparsity (e.g. 0.5 or 50)")
