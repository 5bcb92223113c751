"""Everything a study's runs would refuse, found while planning, before any run starts: one line naming the run and
the study-file key that set the bad value.

The strongest check runs each derived config through its script's own argument parsing and checks
(utils.infra.args.parse_args with the script's argument classes; nothing is loaded, no device set up, nothing
written). Then what parsing cannot see: each language's data (local files, the task's hub languages), local model
folders, retrieval TSVs, the study folder itself and the executor's numbers. Runs whose configs differ only in
what names the run (IDENTITY: output folder, seed, language, mask) share one parse, and those values are checked
per run by the validation table's rules, so hundreds of runs cost a handful of parses.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
from pathlib import Path
from typing import Optional

from utils.infra.args import (DataArguments, ExperimentTrainingArguments, InferenceModelArguments, ModelArguments,
                              parse_args)
from utils.infra.data import check_language_data
from utils.infra.errors import UserError
from utils.infra.models import check_local
from utils.infra.validation import above, check_value, whole
from . import schema
from .cost import GPU_PEAK_TFLOPS, SpeedFile, study_costs, study_packing
from .plan import TASK_KINDS, Run, Study

# The analysis scripts' argument classes, as each script parses them (module, class names).
ANALYSIS_ARGUMENTS = {
    "mask_ops.py": ("utils.analysis.mask_ops", ("MaskOpsArguments",)),
    "mask_similarity.py": ("utils.analysis.tools", ("SimilarityArguments",)),
    "language_neurons.py": ("utils.analysis.neuron_run", ("InferenceModelArguments", "NeuronArguments")),
    "sentence_retrieval.py": ("utils.analysis.retrieval", ("InferenceModelArguments", "RetrievalArguments")),
    "summarize_results.py": ("utils.analysis.tools", ("SummaryArguments",)),
    "prune_oneshot.py": ("utils.oneshot.run", ("InferenceModelArguments", "OneshotArguments")),
    "mask_perplexity.py": ("utils.oneshot.evaluate", ("InferenceModelArguments", "MaskPerplexityArguments")),
    "representation_similarity.py": ("utils.analysis.representation_similarity",
                                     ("InferenceModelArguments", "RepresentationArguments")),
}
IDENTITY = ("output_dir", "seed", "data_language", "mask_dir")
ANALYSIS_KEYS = {"consensus": "consensus", "similarity": "similarity", "retrieval": "retrieval",
                 "neurons": "neurons", "summary": "study_dir", "oneshot": "oneshot", "perplexity": "oneshot",
                 "representations": "oneshot"}
EXECUTOR_RULES = {
    "poll_seconds": above(0), "workers": whole(1), "gpus_per_run": whole(1), "time_min": whole(1),
    "gpus_per_node": whole(0), "cpus_per_task": whole(1), "mem_gb": above(0), "array_parallelism": whole(1),
    "analysis_gpus": whole(0), "runs_per_gpu": whole(1), "gpu_memory_gb": above(0),
}


def check_study(study: Study, defer_missing_inputs: bool = False) -> list[str]:
    """Raise one UserError line for the first problem any run would meet. With `defer_missing_inputs` (a dry run,
    which estimates a grid before its data is downloaded) missing data, models and TSVs are returned instead, one
    line per run, so the plan can still be shown."""
    _check_names(study)
    _check_executor(study)
    _check_costs(study)
    _check_study_dir(study)
    parsed = _parse_runs(study)
    missing = []
    for run in study.runs.values():
        try:
            _check_inputs(run, parsed.get(run.id))
        except UserError as error:
            if not defer_missing_inputs:
                raise _in_run(study, run, error) from None
            missing.append(str(_in_run(study, run, error)))
    return missing


def _check_names(study: Study) -> None:
    for key in ("name", "study_dir"):
        value = study.raw.get(key)
        if value is not None and not value.strip():
            raise UserError(f"{study.path}: '{key}' is empty")


def _check_executor(study: Study) -> None:
    for key, (allowed, text) in EXECUTOR_RULES.items():
        value = study.executor.get(key)
        if value is not None and not allowed(value):
            raise UserError(f"{study.path}: executor.{key} must be {text}, got {value!r}")
    gpus = study.executor.get("gpus", [])
    if any(g < 0 for g in gpus) or len(set(gpus)) != len(gpus):
        raise UserError(f"{study.path}: executor.gpus must list distinct GPU numbers >= 0, got {gpus}")


def _check_costs(study: Study) -> None:
    """The FLOP bound's GPU and utilization, the speeds file, and that runs_per_gpu runs (or at least one) fit the
    GPU's memory by the estimate (cost.study_packing raises when not even one does)."""
    bound = study.raw.get("flop_bound", {})
    schema.check(bound, schema.FLOP_BOUND, f"{study.path}: flop_bound")
    if "gpu" in bound and bound["gpu"] not in GPU_PEAK_TFLOPS:
        raise UserError(f"{study.path}: flop_bound.gpu '{bound['gpu']}' is not one of {', '.join(GPU_PEAK_TFLOPS)}")
    if "utilization" in bound and not 0 < bound["utilization"] <= 1:
        raise UserError(f"{study.path}: flop_bound.utilization must be in (0, 1], got {bound['utilization']}")
    if "speeds" in study.raw:
        SpeedFile.read(study.raw["speeds"])
    study_packing(study, study_costs(study))


def _check_study_dir(study: Study) -> None:
    """The study folder must be a folder, or creatable: its nearest existing ancestor a writable folder."""
    root = study.study_dir
    where = f"{study.path}: study_dir {root}"
    if root.exists() and not root.is_dir():
        raise UserError(f"{where} is a file, not a folder")
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{where} is under a file ({existing})")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{where}: {existing} is not writable")


# ---------------------------------------------------------------------------------------------------------------
# Each run's config through its script's parsing
# ---------------------------------------------------------------------------------------------------------------


def argument_classes(run: Run) -> tuple[type, ...]:
    """The dataclasses the run's script parses its config into."""
    if run.task_kind is not None:
        spec = TASK_KINDS[run.task_kind].spec
        third = spec.imp_arguments if run.is_imp else spec.mask_arguments
        return ModelArguments, spec.data_arguments, third, ExperimentTrainingArguments
    module, names = ANALYSIS_ARGUMENTS[run.script]
    loaded = importlib.import_module(module)
    return tuple(InferenceModelArguments if n == "InferenceModelArguments" else getattr(loaded, n) for n in names)


def _shape(run: Run) -> str:
    """What a training run's parse depends on: its config with the identity values reduced to their kind."""
    config = {k: (type(v).__name__, bool(v)) if k in IDENTITY else v for k, v in run.config.items()}
    return json.dumps([run.script, run.is_imp, config], sort_keys=True, default=str)


def _parse_runs(study: Study) -> dict[str, tuple]:
    """Run id -> the parsed argument instances (of its shape's first run, for training runs)."""
    shapes: dict[str, tuple] = {}
    parsed: dict[str, tuple] = {}
    for run in study.runs.values():
        try:
            if run.task_kind is None:
                parsed[run.id] = parse_args(argument_classes(run), [], config=run.config, check_only=True)
                continue
            shape = _shape(run)
            if shape not in shapes:
                shapes[shape] = parse_args(argument_classes(run), [], config=run.config, check_only=True)
            for key in IDENTITY:
                check_value(key, run.config.get(key))
            parsed[run.id] = shapes[shape]
        except UserError as error:
            raise _in_run(study, run, error) from None
    return parsed


class RunProblem(UserError):
    """A problem of one run's inputs, with the config key whose value causes it."""

    def __init__(self, message: str, key: str):
        super().__init__(message)
        self.key = key


def _in_run(study: Study, run: Run, error: UserError) -> UserError:
    """The error as one line naming the run and the study-file key behind the config key (or flag) it names."""
    flag = error.key if isinstance(error, RunProblem) else None
    match = re.search(r"--([A-Za-z0-9_]+)|key '([A-Za-z0-9_]+)'", str(error))
    if flag is None and match:
        flag = next(g for g in match.groups() if g)
    key = run.origins.get(flag) if flag else None
    if key is None and run.task_kind is None:
        key = ANALYSIS_KEYS.get(run.kind)
    return UserError(f"{study.path}: run {run.id}" + (f" ({key})" if key else "") + f": {error}")


# ---------------------------------------------------------------------------------------------------------------
# What parsing cannot see: data, models, TSVs
# ---------------------------------------------------------------------------------------------------------------


def _check_inputs(run: Run, parsed: Optional[tuple]) -> None:
    for key in ("model_name_or_path", "config_name", "tokenizer_name"):
        if run.config.get(key):
            try:
                _check_model(str(run.config[key]))
            except UserError as error:
                raise RunProblem(str(error), key) from None
    if run.config.get("tsv") and not Path(run.config["tsv"]).is_file():
        raise RunProblem(f"parallel file not found: {run.config['tsv']}", "tsv")
    _check_text(run)
    if run.task_kind is None or parsed is None:
        return
    data = next(p for p in parsed if isinstance(p, DataArguments))
    training = next(p for p in parsed if isinstance(p, ExperimentTrainingArguments))
    data = dataclasses.replace(data, data_language=run.config["data_language"])
    hub = TASK_KINDS[run.task_kind].spec.hub
    for split, languages, wanted in (("train", data.languages, training.do_train),
                                     ("validation", data.languages + data.extra_eval_languages, training.do_eval)):
        for lang in languages if wanted else []:
            try:
                check_language_data(data, lang, split, hub)
            except UserError as error:
                raise RunProblem(str(error), "data_language" if lang in data.languages else "eval_languages") \
                    from None


def _check_text(run: Run) -> None:
    """A one-shot run's calibration text, the perplexity run's held-out text, and language_neurons.py's text and
    held-out text, per language (its masks come from earlier runs)."""
    from utils.analysis.neuron_run import language_paths
    from utils.oneshot.calibration import check_text_file, parse_eval_files

    key = "calibration_file" if run.script == "prune_oneshot.py" else "eval_files"
    try:
        if run.script == "prune_oneshot.py" and run.config.get("calibration_file"):
            for lang in run.config["data_language"].split(","):
                check_text_file(run.config["calibration_file"], lang, "--calibration_file")
        if run.script == "mask_perplexity.py":
            parse_eval_files(run.config["eval_files"])
        if run.script == "language_neurons.py":
            for key in ("text_files", "eval_files"):
                if isinstance(run.config.get(key), str):
                    language_paths(run.config[key], run.config.get("languages"), key)
    except UserError as error:
        raise RunProblem(str(error), key) from None


def _check_model(name: str) -> None:
    """A local model folder must exist; a name that looks like a hub id ('org/name') cannot be checked offline."""
    check_local(name, "model")
    path = Path(name).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"model {name} is a file, not a model folder")
