"""Checking a study file: every key known, every value of the right type, one line naming the first problem."""
from __future__ import annotations

import difflib
from typing import Any, Iterable

from utils.infra.errors import UserError
from utils.tasks.registry import TASK_MODULES

# A type name per key: str, int, number, bool, dict, list[str], list[int], list[number], list[dict], or a tuple of
# allowed string values.
TOP_LEVEL = {
    "name": "str", "description": "str", "study_dir": "str", "model": "str", "seeds": "list[int]", "tasks": "dict",
    "overrides": "dict", "transfer_sparsities": "list[number]", "transfer": ("all", "own", "none"),
    "baselines": "list[str]", "multilingual": "list[dict]", "consensus": "list[dict]", "cross_task": "list[dict]",
    "similarity": "bool", "oneshot": "dict",
    "retrieval": "dict", "executor": "dict", "steps_per_second": "dict", "neurons": "dict", "speeds": "str",
    "flop_bound": "dict",
}
REQUIRED_TOP_LEVEL = ("name", "seeds")  # and 'tasks', or 'oneshot', or both
TASK = {
    "kind": tuple(TASK_MODULES), "imp_config": "str", "finetune_config": "str",
    "languages": "list[str]", "model": "str", "imp_overrides": "dict", "finetune_overrides": "dict",
    "eval_languages": "list[str]",
}
REQUIRED_TASK = ("imp_config", "languages")
MULTILINGUAL = {"task": "str", "languages": "list[str]"}
CONSENSUS = {"task": "str", "operation": ("majority", "intersection", "union"), "languages": "list[str]",
             "targets": "list[str]"}
CROSS_TASK = {"source": "str", "target": "str"}
RETRIEVAL = {
    "pairs": "list[str]", "tasks": "list[str]", "tsv": "str", "dataset_name": "str", "dataset_config": "str",
    "split": "str", "max_sentences": "int", "pooling": ("mean", "cls"), "dense": "bool",
}
NEURONS = {  # language_neurons.py: one run per task's model (its tickets at the first transfer sparsity as masks)
    "text_files": "str", "eval_files": "str", "languages": "list[str]", "tasks": "list[str]", "max_lines": "int",
    "max_eval_lines": "int", "max_length": "int", "filter_rate": "number", "top_rate": "number",
    "activation_bar_ratio": "number", "permutations": "int",
}
EXECUTOR = {
    "kind": ("local", "slurm", "submitit_local"), "cluster": ("slurm", "local"), "gpus": "list[int]",
    "workers": "int", "launcher": ("auto", "fork", "subprocess"), "partition": "str", "time_min": "int",
    "gpus_per_node": "int", "cpus_per_task": "int", "mem_gb": "number", "account": "str", "sbatch": "dict",
    "array_parallelism": "int", "folder": "str", "poll_seconds": "number", "analysis_gpus": "int",
    "gpus_per_run": "int", "runs_per_gpu": "int", "gpu_memory_gb": "number", "threads_per_run": "int",
}
FLOP_BOUND = {"gpu": "str", "utilization": "number"}
# One-shot masks per language and seed (utils/study/oneshot.py); '{lang}' in the file templates.
ONESHOT = {
    "model": "str", "languages": "list[str]", "methods": "list[str]", "structures": "list[str]",
    "sparsity": "number", "calibration_file": "str", "calibration_samples": "int", "calibration_batch_size": "int", "calibration_seq_len": "int",
    "eval_files": "str", "eval_languages": "list[str]", "eval_seq_len": "int", "max_eval_windows": "int",
    "consensus": "bool", "random": "bool", "cka_dims": "int", "overrides": "dict", "seconds_per_run": "dict",
    "dtype": ("float32", "bfloat16", "float16"),
    "neurons": "dict",
}
# oneshot.neurons: one language_neurons.py run over every one-shot language (LAPE selects jointly over them); its
# flags (text_files: default oneshot.calibration_file; languages, eval_files and masks come from the stage).
ONESHOT_NEURONS = {
    "text_files": "str", "max_lines": "int", "max_eval_lines": "int", "max_length": "int", "batch_size": "int",
    "permutations": "int", "filter_rate": "number", "top_rate": "number", "activation_bar_ratio": "number",
}
BASELINES = ("dense", "random", "oneshot", "rand_init")


def unknown_key(where: str, key: str, options: Iterable[str]) -> UserError:
    close = difflib.get_close_matches(key, list(options), n=2)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    return UserError(f"{where}: unknown key '{key}'{hint}")


def is_type(value: Any, kind: str) -> bool:
    if kind.startswith("list["):
        return isinstance(value, list) and all(is_type(v, kind[5:-1]) for v in value)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {"str": str, "bool": bool, "dict": dict}[kind])


def check(obj: Any, schema: dict, where: str, required: Iterable[str] = ()) -> dict:
    """Return obj after checking it is an object with only known keys, each of its type; else one UserError line."""
    if not isinstance(obj, dict):
        raise UserError(f"{where} must be a JSON object, got {type(obj).__name__}")
    for key, value in obj.items():
        if key not in schema:
            raise unknown_key(where, key, schema)
        kind = schema[key]
        if isinstance(kind, tuple):
            if value not in kind:
                raise UserError(f"{where}: '{key}' must be one of {', '.join(map(repr, kind))}, got {value!r}")
        elif not is_type(value, kind):
            raise UserError(f"{where}: '{key}' must be {kind.replace('list[', 'a list of ').rstrip(']')}, "
                            f"got {value!r}")
    for key in required:
        if key not in obj:
            raise UserError(f"{where}: missing required key '{key}'")
    return obj


def check_distinct(values: Iterable[Any], where: str) -> None:
    """One line naming the first value given twice (after normalisation by the caller: 50 and 50.0 are one)."""
    seen: set = set()
    for value in values:
        if value in seen:
            raise UserError(f"{where} names {value} twice")
        seen.add(value)
