"""From a study file to the runs it implies: script, JSON config, directory, dependencies and a step estimate.

Every training run is one of the top-level scripts with a config: the base config named by the study (a file in
configs/) merged with the study's overrides, and the settings the study derives (output_dir, data_language, seed,
mask). Run ids double as directories under the study directory:

    imp/<task>/<lang>/s<seed>                  IMP (lang may be a mixture: en+fa+fr+zh)
    transfer/<task>/<p>/<src>_on_<tgt>/s<seed> the <src> ticket at p% fine-tuned on <tgt>
    baseline/<task>/<kind>[_<p>]/<tgt>/s<seed> dense, random, oneshot, rand_init (own ticket, random weights)
    cross_task/<a>_to_<b>/<p>/<lang>/s<seed>   task a's ticket fine-tuned on task b, same language
    similarity/<task>/<p>/s<seed> | all_seeds, similarity/<a>+<b>/<p>/s<seed>, retrieval/..., summary
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from utils.core.budget import round_length, step_budget
from utils.infra.errors import UserError
from utils.infra.io import read_json
from utils.infra.outputs import FINETUNE_RESULTS, IMP_RESULTS, RunPaths
from utils.tasks.registry import task_spec
from . import paths, schema

if TYPE_CHECKING:
    from utils.tasks.base import TaskSpec


@dataclass(frozen=True)
class TaskKind:
    """A task of utils.tasks.registry (its scripts and argument classes) and the paper's sizes and compute."""

    task: str
    paper_train_size: int  # training examples per language (paper Table 7; PAWS-X: the hub's English train split)
    paper_imp: tuple[int, float]  # (optimizer steps, GPU-hours) per language (paper: compute, Quadro RTX 8000)
    paper_finetune: tuple[int, float]
    speed_note: str = ""  # where the compute figures are another task's

    @property
    def spec(self) -> TaskSpec:
        return task_spec(self.task)

    @property
    def imp_script(self) -> str:
        return self.spec.imp_script

    @property
    def finetune_script(self) -> str:
        return self.spec.finetune_script


# Steps behind the paper's GPU-hours: NER IMP 10 rounds x 1,875; XNLI 10 x 36,813; MLM 10 x 10,000;
# fine-tuning NER 3 epochs x 625; XNLI 3 x 12,270; MLM 20,000 (max_steps). The paper gives no mT5 or PAWS-X figure.
_XNLI_COMPUTE = ((368_130, 45.0), (36_810, 15.0))
TASK_KINDS = {
    "ner": TaskKind("ner", 20_000, (18_750, 4.5), (1_875, 0.5)),
    "xnli": TaskKind("xnli", 392_702, *_XNLI_COMPUTE),
    "mlm": TaskKind("mlm", 1_600_000, (100_000, 15.0), (20_000, 6.0)),
    "clm": TaskKind("clm", 1_600_000, (100_000, 15.0), (20_000, 6.0),
                    speed_note=" of mBERT MLM (no causal-LM figure; a decoder's size decides)"),
    "mt5_xnli": TaskKind("mt5_xnli", 392_702, *_XNLI_COMPUTE,
                         speed_note=" of mBERT XNLI (no mT5 figure; mT5-base is ~3x larger, so expect more)"),
    "pawsx": TaskKind("pawsx", 49_401, *_XNLI_COMPUTE,
                      speed_note=" of mBERT XNLI (no PAWS-X figure; the same model and pair lengths)"),
}
TRAINING_KINDS = ("imp", "transfer", "baseline", "cross_task")
ANALYSIS_KINDS = ("consensus", "similarity", "retrieval", "neurons", "perplexity", "representations", "summary")
# Settings the study derives for every run; a base config's values are dropped, overrides may not set them.
IMP_DERIVED = ("output_dir", "data_language", "seed", "overwrite_output_dir", "resume")
FINETUNE_DERIVED = IMP_DERIVED + ("mask_dir", "pruning_type", "sparsity", "weight_init")


@dataclass
class Run:
    id: str
    kind: str  # imp, transfer, baseline, cross_task, similarity, retrieval, summary
    script: str
    config: dict[str, Any]
    run_dir: Path
    deps: list[str] = field(default_factory=list)
    soft_deps: bool = False  # run once the dependencies have finished, whatever their outcome (the summary)
    outputs: list[str] = field(default_factory=list)  # files that mark the run complete
    task_kind: Optional[str] = None
    steps: Optional[int] = None
    origins: dict[str, str] = field(default_factory=dict)  # config key -> the study-file key that set it

    @property
    def is_imp(self) -> bool:
        return self.kind == "imp"

    @property
    def launch(self) -> dict[str, Any]:
        """What a run is launched with (script and config); study_run.json records it (utils/study/state.py)."""
        return {"script": self.script, "config": self.config}


@dataclass
class Task:
    name: str
    profile: TaskKind  # the task kind's scripts, argument classes and the paper's sizes and compute
    kind_name: str
    languages: list[str]
    imp_base: dict
    finetune_base: Optional[dict]
    model: str
    eval_languages: Optional[list[str]]
    multilingual: list[list[str]] = field(default_factory=list)
    model_key: str = "model"  # the study-file key the model comes from

    @property
    def sources(self) -> list[str]:
        return self.languages + ["+".join(group) for group in self.multilingual]


@dataclass
class Study:
    name: str
    path: str
    study_dir: Path
    seeds: list[int]
    tasks: dict[str, Task]
    sparsities: list[float]  # percentages
    raw: dict
    runs: dict[str, Run] = field(default_factory=dict)

    def add(self, run: Run) -> Run:
        paths.check_run_id(run.id)
        paths.check_inside(run.run_dir, self.study_dir, f"run {run.id}: its folder")
        if run.id in self.runs:
            raise UserError(f"the study derives run {run.id} twice: check languages and multilingual groups")
        missing = [d for d in run.deps if d not in self.runs]
        if missing:
            raise UserError(f"run {run.id} needs {missing[0]}, which the study does not plan")
        self.runs[run.id] = run
        return run

    @property
    def executor(self) -> dict:
        return self.raw.get("executor", {})


def percent_id(value: float) -> str:
    """A sparsity in percent as it appears in run ids: 50 -> '50', 12.5 -> '12.5' (writers.format_percent labels
    fractions for tables)."""
    return format(round(value, 4), "g")


def _read_config(path: str, where: str) -> dict:
    if not Path(path).is_file():
        raise UserError(f"{where}: config file not found: {path}")
    try:
        data = read_json(path)
    except ValueError as error:
        raise UserError(f"{where}: {path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise UserError(f"{where}: {path} must hold a JSON object")
    return data


def script_options(profile: TaskKind, phase: str) -> dict[str, Any]:
    """Every key a script's config accepts, with its default (the scripts' own dataclasses decide)."""
    from utils.infra.args import ExperimentTrainingArguments, ModelArguments

    spec = profile.spec
    third = spec.imp_arguments if phase == "imp" else spec.mask_arguments
    options: dict[str, Any] = {}
    for cls in (ModelArguments, spec.data_arguments, third, ExperimentTrainingArguments):
        for f in dataclasses.fields(cls):
            if f.init:
                options[f.name] = f.default if f.default is not dataclasses.MISSING else None
    return options


def merge_config(base: dict, derived_keys: tuple, layers: list[tuple[str, dict]], derived: dict,
                 options: dict[str, Any], where: str) -> dict:
    """base < each (name, overrides) layer < derived; every key must be one the script accepts."""
    config = {k: v for k, v in base.items() if k not in derived_keys}
    for name, overrides in layers:
        for key in overrides:
            if key in derived_keys:
                raise UserError(f"{where}: '{name}' may not set '{key}': the study derives it for every run")
        config.update(overrides)
    config.update(derived)
    for key in config:
        if key not in options:
            raise schema.unknown_key(where, key, options)
    return config


def load_study(path: str) -> Study:
    """Read and check a study file, then derive all its runs."""
    raw = _read_config(path, "study file")
    schema.check(raw, schema.TOP_LEVEL, f"study file {path}", schema.REQUIRED_TOP_LEVEL)
    paths.check_study_names(raw, path)
    for key, sub in (("executor", schema.EXECUTOR), ("retrieval", schema.RETRIEVAL), ("neurons", schema.NEURONS)):
        if key in raw:
            schema.check(raw[key], sub, f"{path}: {key}")
    if not raw["seeds"] or len(set(raw["seeds"])) != len(raw["seeds"]):
        raise UserError(f"{path}: 'seeds' must be a non-empty list of distinct integers")
    for value in raw.get("transfer_sparsities", []):
        if not 0 < value < 100:
            raise UserError(f"{path}: transfer sparsities are percentages in (0, 100), got {value}")
    schema.check_distinct((percent_id(v) for v in raw.get("transfer_sparsities", [])), f"{path}: 'transfer_sparsities'")
    for name in raw.get("baselines", []):
        if name not in schema.BASELINES:
            raise UserError(f"{path}: unknown baseline '{name}' (known: {', '.join(schema.BASELINES)})")
    for key, value in raw.get("steps_per_second", {}).items():
        phase, _, kind = key.partition("/")
        if phase not in ("imp", "finetune") or kind not in TASK_KINDS:
            raise schema.unknown_key(f"{path}: steps_per_second", key,
                                     [f"{p}/{k}" for p in ("imp", "finetune") for k in TASK_KINDS])
        if not schema.is_type(value, "number") or value <= 0:
            raise UserError(f"{path}: steps_per_second '{key}' must be a positive number, got {value!r}")
    if "tasks" not in raw and "oneshot" not in raw:
        raise UserError(f"study file {path}: missing required key 'tasks' (or 'oneshot')")
    study = Study(raw["name"], path, Path(raw.get("study_dir", f"runs/studies/{raw['name']}")), list(raw["seeds"]),
                  {}, [float(v) for v in raw.get("transfer_sparsities", [])], raw)
    for name, entry in raw.get("tasks", {}).items():
        study.tasks[name] = _load_task(name, entry, raw, path)
    for i, entry in enumerate(raw.get("multilingual", [])):
        schema.check(entry, schema.MULTILINGUAL, f"{path}: multilingual[{i}]", ("task", "languages"))
        task = _task(study, entry["task"], f"multilingual[{i}]")
        if len(entry["languages"]) < 2:
            raise UserError(f"{path}: multilingual[{i}] needs at least 2 languages")
        schema.check_distinct(entry["languages"], f"{path}: multilingual[{i}].languages")
        task.multilingual.append(list(entry["languages"]))
    derive_runs(study)
    return study


def _task(study: Study, name: str, where: str) -> Task:
    if name not in study.tasks:
        raise schema.unknown_key(f"{study.path}: {where}", name, study.tasks)
    return study.tasks[name]


def _load_task(name: str, entry: Any, raw: dict, path: str) -> Task:
    where = f"{path}: tasks.{name}"
    schema.check(entry, schema.TASK, where, schema.REQUIRED_TASK)
    kind_name = entry.get("kind", name)
    if kind_name not in TASK_KINDS:
        raise UserError(f"{where}: no 'kind' and '{name}' is not a task kind ({', '.join(TASK_KINDS)})")
    if not entry["languages"]:
        raise UserError(f"{where}: 'languages' is empty")
    for key in ("languages", "eval_languages"):
        schema.check_distinct(entry.get(key, []), f"{where}.{key}")
    needs_finetune = raw.get("transfer", "all") != "none" and raw.get("transfer_sparsities") or raw.get("baselines")
    if needs_finetune and "finetune_config" not in entry:
        raise UserError(f"{where}: missing 'finetune_config' (the study fine-tunes masks)")
    imp_base = _read_config(entry["imp_config"], f"{where}.imp_config")
    finetune_base = _read_config(entry["finetune_config"], f"{where}.finetune_config") \
        if "finetune_config" in entry else None
    model = entry.get("model") or raw.get("model") or imp_base.get("model_name_or_path")
    if not model:
        raise UserError(f"{where}: no model (set 'model' or model_name_or_path in {entry['imp_config']})")
    model_key = f"tasks.{name}.model" if entry.get("model") else "model" if raw.get("model") else \
        f"tasks.{name}.imp_config ({entry['imp_config']})"
    return Task(name, TASK_KINDS[kind_name], kind_name, list(entry["languages"]), imp_base, finetune_base, model,
                entry.get("eval_languages"), model_key=model_key)


def derive_runs(study: Study) -> None:
    """IMP runs, then fine-tuning runs (transfer, baselines, cross-task), then the analyses."""
    imp_options = {name: script_options(t.profile, "imp") for name, t in study.tasks.items()}
    for name, task in study.tasks.items():
        for source in task.sources:
            for seed in study.seeds:
                _add_imp(study, task, source, seed, imp_options[name])
    ft_options = {name: script_options(t.profile, "finetune") for name, t in study.tasks.items()
                  if t.finetune_base is not None}
    _add_transfers(study, ft_options)
    _add_consensus(study, ft_options)
    _add_baselines(study, ft_options)
    _add_cross_task(study, ft_options)
    _add_similarity(study)
    _add_retrieval(study)
    _add_neurons(study)
    from .oneshot import add_oneshot

    add_oneshot(study)
    _add_summary(study)


def _imp_id(task: str, source: str, seed: int) -> str:
    return f"imp/{task}/{source}/s{seed}"


def _add_imp(study: Study, task: Task, source: str, seed: int, options: dict) -> None:
    run_id = _imp_id(task.name, source, seed)
    run_dir = study.study_dir / run_id
    derived = {"output_dir": str(run_dir), "data_language": source.replace("+", ","), "seed": seed,
               "overwrite_output_dir": False}
    layers = [("overrides", study.raw.get("overrides", {})),
              (f"tasks.{task.name}.imp_overrides", study.raw["tasks"][task.name].get("imp_overrides", {}))]
    config = merge_config({**task.imp_base, "model_name_or_path": task.model}, IMP_DERIVED, layers, derived,
                          options, f"{study.path}: run {run_id}")
    languages = "multilingual" if "+" in source else f"tasks.{task.name}.languages"
    origins = _origins(f"tasks.{task.name}.imp_config ({study.raw['tasks'][task.name]['imp_config']})", task,
                       config, layers, {"data_language": languages})
    schedule = _schedule(config, options, f"{study.path}: run {run_id}")
    for p in study.sparsities if schedule is not None else []:
        if not any(abs(s - p / 100) < 1e-6 for s in schedule):
            raise UserError(f"{study.path}: transfer sparsity {percent_id(p)}% is not a round of task {task.name}'s IMP "
                            f"schedule ({', '.join(percent_id(100 * s) + '%' for s in schedule)})")
    _check_language_files(config, task, f"{study.path}: run {run_id}")
    steps = _estimate(lambda: len(schedule) * _steps_per_round(config, options, len(schedule), task))
    study.add(Run(run_id, "imp", task.profile.imp_script, config, run_dir, outputs=[IMP_RESULTS],
                  task_kind=task.kind_name, steps=steps, origins=origins))


def _origins(base: str, task: Task, config: dict, layers: list[tuple[str, dict]], own: dict[str, str]) -> dict:
    """Which study-file key set each config key (for one-line messages): the base config < the overrides < what
    the study derives (seeds, languages, model, study_dir)."""
    origins = {key: base for key in config}
    for name, overrides in layers:
        origins.update({key: name for key in overrides})
    origins.update({"output_dir": "study_dir", "seed": "seeds", "model_name_or_path": task.model_key, **own})
    if task.eval_languages is not None:
        origins["eval_languages"] = f"tasks.{task.name}.eval_languages"
    return {key: origins[key] for key in config}


def _check_language_files(config: dict, task: Task, where: str) -> None:
    """A data file without '{lang}' would silently serve every language of the task the same text."""
    several = len(set(task.languages) | {config["data_language"]}) > 1
    for key in ("train_file", "validation_file", "test_file"):
        value = config.get(key)  # not a string: checks.py names it
        if isinstance(value, str) and "{lang}" not in value and several:
            raise UserError(f"{where}: {key} {value} has no '{{lang}}', so every language would read it; "
                            f"set a '{{lang}}' template in the task's overrides")


def _schedule(config: dict, options: dict, where: str) -> Optional[list[float]]:
    """The IMP run's sparsities; None when a value has the wrong type (utils.study.checks names it)."""
    from utils.core.pruning import sparsity_schedule

    value = lambda key: config.get(key, options[key])  # noqa: E731
    try:
        return sparsity_schedule(value("prune_rate"), value("target_sparsity"), value("prune_schedule"))
    except UserError as error:
        raise UserError(f"{where}: {error}") from None
    except (TypeError, ValueError):
        return None


def _estimate(steps: Callable[[], int]) -> Optional[int]:
    """A step count for the dry run; None when the config's values cannot give one (checks.py says why)."""
    try:
        return steps()
    except (TypeError, ValueError, AttributeError, ArithmeticError):
        return None


def _mask(study: Study, task: str, source: str, seed: int, p: float) -> tuple[str, str]:
    imp = study.runs[_imp_id(task, source, seed)]
    return imp.id, str(RunPaths(imp.run_dir).mask_file(p / 100))


def _add_finetune(study: Study, run_id: str, kind: str, task: Task, target: str, seed: int, mask: dict,
                  deps: list[str], options: dict, target_key: str = "") -> None:
    run_dir = study.study_dir / run_id
    derived = {"output_dir": str(run_dir), "data_language": target, "seed": seed, "overwrite_output_dir": False,
               "pruning_type": "lth", "weight_init": "pre", **mask}
    if task.eval_languages is not None:
        derived["eval_languages"] = ",".join(task.eval_languages)
    layers = [("overrides", study.raw.get("overrides", {})),
              (f"tasks.{task.name}.finetune_overrides", study.raw["tasks"][task.name].get("finetune_overrides", {}))]
    config = merge_config({**task.finetune_base, "model_name_or_path": task.model}, FINETUNE_DERIVED, layers,
                          derived, options, f"{study.path}: run {run_id}")
    _check_language_files(config, task, f"{study.path}: run {run_id}")
    steps = _estimate(lambda: _total_steps(config, options, task))
    own = {"data_language": target_key or f"tasks.{task.name}.languages", "mask_dir": "transfer_sparsities",
           "sparsity": "transfer_sparsities", "pruning_type": "baselines", "weight_init": "baselines"}
    origins = _origins(f"tasks.{task.name}.finetune_config ({study.raw['tasks'][task.name]['finetune_config']})",
                       task, config, layers, own)
    study.add(Run(run_id, kind, task.profile.finetune_script, config, run_dir, deps, outputs=[FINETUNE_RESULTS],
                  task_kind=task.kind_name, steps=steps, origins=origins))


def _add_transfers(study: Study, options: dict) -> None:
    mode = study.raw.get("transfer", "all")
    if mode == "none":
        return
    for name, task in study.tasks.items():
        for p in study.sparsities:
            for source in task.sources:
                targets = task.languages if mode == "all" or "+" in source else [source]
                for target in targets:
                    for seed in study.seeds:
                        dep, mask = _mask(study, name, source, seed, p)
                        _add_finetune(study, f"transfer/{name}/{percent_id(p)}/{source}_on_{target}/s{seed}", "transfer",
                                      task, target, seed, {"mask_dir": mask}, [dep], options[name])


def _add_consensus(study: Study, options: dict) -> None:
    """The consensus ("language-neutral") ticket: the languages' tickets of one seed combined by mask_ops.py and
    re-pruned to the transfer sparsity, then fine-tuned on every target; a row of the transfer matrix."""
    for i, entry in enumerate(study.raw.get("consensus", [])):
        where = f"consensus[{i}]"
        schema.check(entry, schema.CONSENSUS, f"{study.path}: {where}", ("task", "operation"))
        task = _task(study, entry["task"], where)
        languages = entry.get("languages", task.languages)
        unknown = [lang for lang in languages if lang not in task.languages]
        if unknown or len(languages) < 2:
            raise UserError(f"{study.path}: {where}: needs 2 or more of the task's languages "
                            f"({', '.join(task.languages)}), got {', '.join(languages)}")
        for key in ("languages", "targets"):
            schema.check_distinct(entry.get(key, []), f"{study.path}: {where}.{key}")
        if task.finetune_base is None:
            raise UserError(f"{study.path}: {where}: task {task.name} has no 'finetune_config'")
        operation = entry["operation"]
        for p in study.sparsities:
            for seed in study.seeds:
                run_id = f"consensus/{task.name}/{operation}/{percent_id(p)}/s{seed}"
                masks = [_mask(study, task.name, lang, seed, p) for lang in languages]
                run_dir = study.study_dir / run_id
                config = {"operation": operation, "masks": [m for _, m in masks], "output": str(run_dir / "mask.pt"),
                          "sparsity": p}
                study.add(Run(run_id, "consensus", "mask_ops.py", config, run_dir, [d for d, _ in masks],
                              outputs=["mask.pt"]))
                for target in entry.get("targets", task.languages):
                    _add_finetune(study, f"transfer/{task.name}/{percent_id(p)}/{operation}_on_{target}/s{seed}",
                                  "transfer", task, target, seed, {"mask_dir": str(run_dir / "mask.pt")}, [run_id],
                                  options[task.name], f"{where}.targets" if "targets" in entry else "")


def _add_baselines(study: Study, options: dict) -> None:
    for baseline in study.raw.get("baselines", []):
        for name, task in study.tasks.items():
            for target in task.languages:
                for seed in study.seeds:
                    if baseline == "dense":
                        _add_finetune(study, f"baseline/{name}/dense/{target}/s{seed}", "baseline", task, target,
                                      seed, {"pruning_type": "none"}, [], options[name])
                        continue
                    for p in study.sparsities:
                        run_id = f"baseline/{name}/{baseline}_{percent_id(p)}/{target}/s{seed}"
                        if baseline == "rand_init":
                            dep, mask = _mask(study, name, target, seed, p)
                            _add_finetune(study, run_id, "baseline", task, target, seed,
                                          {"mask_dir": mask, "weight_init": "rand"}, [dep], options[name])
                        else:
                            _add_finetune(study, run_id, "baseline", task, target, seed,
                                          {"pruning_type": baseline, "sparsity": p}, [], options[name])


def _add_cross_task(study: Study, options: dict) -> None:
    for i, entry in enumerate(study.raw.get("cross_task", [])):
        where = f"cross_task[{i}]"
        schema.check(entry, schema.CROSS_TASK, f"{study.path}: {where}", ("source", "target"))
        source, target = _task(study, entry["source"], where), _task(study, entry["target"], where)
        if source.model != target.model:
            raise UserError(f"{study.path}: {where}: tasks {source.name} and {target.name} use different models "
                            f"({source.model}, {target.model}); a mask only transfers within one model")
        if target.finetune_base is None:
            raise UserError(f"{study.path}: {where}: task {target.name} has no 'finetune_config'")
        languages = [lang for lang in target.languages if lang in source.languages]
        if not languages:
            raise UserError(f"{study.path}: {where}: {source.name} and {target.name} share no language")
        for p in study.sparsities:
            for lang in languages:
                for seed in study.seeds:
                    dep, mask = _mask(study, source.name, lang, seed, p)
                    _add_finetune(study, f"cross_task/{source.name}_to_{target.name}/{percent_id(p)}/{lang}/s{seed}",
                                  "cross_task", target, lang, seed, {"mask_dir": mask}, [dep], options[target.name])


def add_similarity_run(study: Study, run_id: str, masks: list[tuple[str, str]]) -> None:
    if len(masks) < 2:
        return
    run_dir = study.study_dir / run_id
    config = {"masks": [m for _, m in masks], "output_dir": str(run_dir)}
    study.add(Run(run_id, "similarity", "mask_similarity.py", config, run_dir, [d for d, _ in masks],
                  outputs=["mask_similarity.json"]))


def _add_similarity(study: Study) -> None:
    """Per task and sparsity: the tickets of one seed, and all seeds together; then the tasks of one model."""
    if not study.raw.get("similarity", True):
        return
    for p in study.sparsities:
        for name, task in study.tasks.items():
            for seed in study.seeds:
                add_similarity_run(study, f"similarity/{name}/{percent_id(p)}/s{seed}",
                                    [_mask(study, name, s, seed, p) for s in task.sources])
            if len(study.seeds) > 1:
                add_similarity_run(study, f"similarity/{name}/{percent_id(p)}/all_seeds",
                                    [_mask(study, name, s, seed, p) for s in task.sources for seed in study.seeds])
        by_model: dict[str, list[Task]] = {}
        for task in study.tasks.values():
            by_model.setdefault(task.model, []).append(task)
        for tasks in by_model.values():
            if len(tasks) > 1:
                for seed in study.seeds:
                    add_similarity_run(study, f"similarity/{'+'.join(t.name for t in tasks)}/{percent_id(p)}/s{seed}",
                                        [_mask(study, t.name, lang, seed, p) for t in tasks for lang in t.languages])


def _add_retrieval(study: Study) -> None:
    """Per layer retrieval of each pair under the tickets of both languages (first seed), and the dense model."""
    spec = study.raw.get("retrieval")
    if not spec:
        return
    where = f"{study.path}: retrieval"
    if ("tsv" in spec) == ("dataset_name" in spec):
        raise UserError(f"{where}: give either 'tsv' (a path, '{{src}}'/'{{tgt}}' filled in) or 'dataset_name'")
    pairs = spec.get("pairs") or []
    if not pairs or any(len(pair.split("-")) != 2 for pair in pairs):
        raise UserError(f"{where}: 'pairs' must list language pairs like 'en-fr'")
    tasks = [_task(study, name, "retrieval.tasks") for name in spec.get("tasks", [])] or \
        [t for t in study.tasks.values() if t.profile.spec.in_default_retrieval]
    seed = study.seeds[0]
    for pair in pairs:
        src, tgt = pair.split("-")
        data = retrieval_data(spec, pair)
        for task in tasks:
            missing = [lang for lang in (src, tgt) if lang not in task.languages]
            if missing:
                raise UserError(f"{where}: pair {pair} needs tickets of task {task.name} in {', '.join(missing)}")
            for p in study.sparsities:
                (dep_a, mask_a), (dep_b, mask_b) = (_mask(study, task.name, lang, seed, p) for lang in (src, tgt))
                add_retrieval_run(study, f"retrieval/{task.name}/{percent_id(p)}/{pair}/s{seed}", task.model,
                                   {**data, "src_mask": mask_a, "tgt_mask": mask_b}, sorted({dep_a, dep_b}))
        if spec.get("dense", True) and tasks:
            add_retrieval_run(study, f"retrieval/dense/{pair}", tasks[0].model, data, [])


def retrieval_data(spec: dict, pair: str) -> dict:
    """A retrieval run's data settings for one pair 'src-tgt' of the study's 'retrieval' object."""
    src, tgt = pair.split("-")
    data = {"src_lang": src, "tgt_lang": tgt, "name": pair}
    if "tsv" in spec:
        data["tsv"] = spec["tsv"].replace("{src}", src).replace("{tgt}", tgt).replace("{pair}", pair)
    else:
        data.update({k: spec[k] for k in ("dataset_name", "dataset_config") if k in spec})
    data.update({k: spec[k] for k in ("split", "max_sentences", "pooling") if k in spec})
    return data


def add_retrieval_run(study: Study, run_id: str, model: str, data: dict, deps: list[str]) -> None:
    run_dir = study.study_dir / run_id
    config = {"model_name_or_path": model, **data, "output_dir": str(run_dir)}
    study.add(Run(run_id, "retrieval", "sentence_retrieval.py", config, run_dir, deps,
                  outputs=[f"retrieval_{data['name']}.json"]))


def _add_neurons(study: Study) -> None:
    """neurons/<task>: LAPE's language-specific neurons of the task's model over the study's text per language, the
    ablation matrix (with 'eval_files'), and their overlap with the task's first-seed tickets at the first transfer
    sparsity (language_neurons.py; docs/neurons.md)."""
    spec = study.raw.get("neurons")
    if not spec:
        return
    where = f"{study.path}: neurons"
    if "{lang}" not in spec.get("text_files", ""):
        raise UserError(f"{where}: 'text_files' must be a path with {{lang}}")
    tasks = [_task(study, name, "neurons.tasks") for name in spec.get("tasks", [])] or list(study.tasks.values())
    for task in tasks:
        languages = spec.get("languages") or task.languages
        if len(languages) < 2:
            raise UserError(f"{where}: LAPE compares languages: give two or more (task {task.name} has one)")
        options = {k: v for k, v in spec.items() if k not in ("tasks", "languages")}
        run_id, deps = f"neurons/{task.name}", []
        config = {"model_name_or_path": task.model, **options, "languages": ",".join(languages),
                  "output_dir": str(study.study_dir / run_id)}
        with_tickets = [lang for lang in languages if lang in task.languages]
        if study.sparsities and len(with_tickets) >= 2:
            masks = [_mask(study, task.name, lang, study.seeds[0], study.sparsities[0]) for lang in with_tickets]
            config["mask_dir"] = ",".join(f"{lang}={mask}" for lang, (_, mask) in zip(with_tickets, masks))
            deps = sorted({dep for dep, _ in masks})
        study.add(Run(run_id, "neurons", "language_neurons.py", config, study.study_dir / run_id, deps,
                      outputs=["neurons.json"]))


def _add_summary(study: Study) -> None:
    """The summary reads exactly the planned training folders (not every result under study_dir), so a change of
    the plan is a change of its config, and it runs again."""
    training = [r.id for r in study.runs.values() if r.kind in TRAINING_KINDS]
    if not training:  # a one-shot study trains nothing
        return
    run_dir = study.study_dir / "summary"
    config = {"runs": [str(study.runs[rid].run_dir) for rid in training], "output_dir": str(run_dir)}
    study.add(Run("summary", "summary", "summarize_results.py", config, run_dir, training, soft_deps=True,
                  outputs=["results_summary.json"]))


# ---------------------------------------------------------------------------------------------------------------
# Step counts (for the dry run's GPU-hour estimate)
# ---------------------------------------------------------------------------------------------------------------


def _train_size(config: dict, task: Task) -> int:
    """Training examples per run: lines of a local train file when it is here, else the paper's Table 7 size."""
    size = task.profile.paper_train_size
    template = config.get("train_file")
    if template:
        path = Path(template.replace("{lang}", config["data_language"].split(",")[0]))
        if path.is_file():
            with open(path, encoding="utf-8") as handle:
                size = sum(1 for line in handle if line.strip())
    limit = config.get("max_train_samples")
    return min(size, limit) if limit else size


def _total_steps(config: dict, options: dict, task: Task) -> int:
    value = lambda key: config.get(key, options[key])  # noqa: E731
    max_steps = value("max_steps")
    batch = value("per_device_train_batch_size") * (value("gradient_accumulation_steps") or 1)
    per_epoch = math.ceil(_train_size(config, task) / batch) if not (max_steps and max_steps > 0) else 0
    return step_budget(max_steps, value("num_train_epochs"), per_epoch)


def _steps_per_round(config: dict, options: dict, rounds: int, task: Task) -> int:
    return round_length(config.get("save_steps", options["save_steps"]), _total_steps(config, options, task), rounds)


def steps_per_second(study: Study, run: Run) -> tuple[Optional[float], str]:
    """Assumed GPU speed for a training run and where it comes from (the study's own figure wins)."""
    if run.task_kind is None:
        return None, "analysis (CPU, not estimated)"
    phase = "imp" if run.is_imp else "finetune"
    key = f"{phase}/{run.task_kind}"
    own = study.raw.get("steps_per_second", {})
    if key in own:
        return float(own[key]), "study file"
    kind = TASK_KINDS[run.task_kind]
    steps, hours = kind.paper_imp if run.is_imp else kind.paper_finetune
    source = f"paper: {hours:g} GPU-h per language for {steps:,} steps" + kind.speed_note
    return steps / (hours * 3600), source
