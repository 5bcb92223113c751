"""The results files a run writes, imp_results.json, finetune_results.json and oneshot_results.json: one typed schema that the writers
(utils/core/imp.py, utils/core/finetune.py) and every reader (output-folder checks, summaries, studies) share.

Schema version 2 names each thing one way in both files: `metric` is the NAME of the headline metric (top level),
`headline` its VALUE (per IMP round; per fine-tuning run), `languages` the training languages. Files of version 1
(no `schema_version`: an IMP round's value under `metric`, fine-tuning's languages under `train_languages`) are
converted when read, so every run this project wrote still reads.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from utils.infra.errors import UserError
from utils.infra.io import read_json, write_json

SCHEMA_VERSION = 2


@dataclass(kw_only=True)
class ImpRound:
    """One IMP round: training at `sparsity`, its evaluation, and the mask pruned after it."""

    round: int
    sparsity: float
    headline: Optional[float] = None  # the metric on the training language(s); None without --do_eval
    eval: dict[str, dict[str, float]] = field(default_factory=dict)  # language -> metric -> value
    steps: int = 0
    train_loss: Optional[float] = None
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)  # --evaluate_during_training
    mask_checksum: Optional[str] = None  # of the mask the round trained under ('dense' for none)
    next_mask: Optional[str] = None  # the mask pruned after the round, relative to the run folder (not the last)
    prune_seconds: Optional[float] = None
    carried_weights: Optional[str] = None  # --rewind_scope body: the head the next round starts from


@dataclass(kw_only=True)
class ImpResults:
    """imp_results.json: rewritten after every round; `complete` once the last round is in."""

    script: str = ""
    task: str
    languages: list[str]
    model: str = ""
    seed: Any = None
    prune_scope: str = "global"
    prune_schedule: str = "linear"
    lr_schedule_span: str = "run"
    rewind_scope: str = "body"
    metric: str
    greater_is_better: bool = True
    schedule: list[float] = field(default_factory=list)
    steps_per_round: int = 0
    rewind_step: int = 0
    num_processes: int = 1
    fingerprint: Optional[dict[str, Any]] = None  # the settings that shape the masks (None: not recorded)
    config: dict[str, Any]
    rounds: list[ImpRound] = field(default_factory=list)
    complete: bool = False
    schema_version: int = SCHEMA_VERSION


@dataclass(kw_only=True)
class FinetuneResults:
    """finetune_results.json: written once, when the run is complete."""

    script: str = ""
    task: str
    languages: list[str]
    model: str = ""
    weight_init: str = "pre"
    pruning_type: str = "lth"
    mask: dict[str, Any] = field(default_factory=dict)  # lth: the mask's path and its metadata ('source')
    sparsity: float = 0.0
    weights_zero_fraction: Optional[float] = None
    seed: Any = None
    metric: str
    greater_is_better: bool = True
    headline: Optional[float] = None
    eval: dict[str, dict[str, float]] = field(default_factory=dict)
    steps: int = 0
    train_loss: Optional[float] = None
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    num_processes: int = 1
    config: dict[str, Any]
    fingerprint: Optional[dict[str, Any]] = None
    schema_version: int = SCHEMA_VERSION


@dataclass(kw_only=True)
class OneshotBlock:
    """One block of a one-shot pruning run: its matrices' sparsity, its time, and the peak memory while it ran."""

    block: str
    sparsity: float
    seconds: float
    peak_memory_mib: Optional[float] = None


@dataclass(kw_only=True)
class OneshotResults:
    """oneshot_results.json (prune_oneshot.py): written once, when the mask (and weights) are written."""

    script: str = "prune_oneshot.py"
    model: str
    method: str
    structure: str = "unstructured"
    sparsity: float
    languages: list[str]  # the calibration languages
    seed: Any = None
    calibration: dict[str, Any] = field(default_factory=dict)  # source, samples, seq_len, tokens_sha256
    perplexity_before: dict[str, float] = field(default_factory=dict)  # eval language -> dense perplexity
    perplexity_after: dict[str, float] = field(default_factory=dict)  # eval language -> pruned perplexity
    blocks: list[OneshotBlock] = field(default_factory=list)
    memory_kind: str = ""  # what peak_memory_mib measures: 'cuda_max_allocated' or 'process_max_rss'
    device: str = ""
    offload: bool = False
    seconds: float = 0.0
    mask: str = ""  # relative to the run folder
    weights: Optional[str] = None  # --save_weights: the pruned (SparseGPT: also updated) model's folder
    config: dict[str, Any]
    fingerprint: Optional[dict[str, Any]] = None
    complete: bool = True
    schema_version: int = SCHEMA_VERSION


_REQUIRED = {ImpResults: ("task", "languages", "metric", "rounds", "config"),
             FinetuneResults: ("task", "languages", "metric", "eval", "config"),
             OneshotResults: ("model", "method", "sparsity", "languages", "config")}


def to_dict(results: ImpResults | FinetuneResults | OneshotResults) -> dict[str, Any]:
    """The JSON object written to disk (a round's unset optional entries are left out)."""
    data = dataclasses.asdict(results)
    if isinstance(results, ImpResults):
        optional = ("next_mask", "prune_seconds", "carried_weights")
        data["rounds"] = [{k: v for k, v in entry.items() if v is not None or k not in optional}
                          for entry in data["rounds"]]
    return data


def write_results(path: str | Path, results: ImpResults | FinetuneResults | OneshotResults) -> None:
    write_json(path, to_dict(results))


def read_results(path: str | Path) -> dict[str, Any]:
    """A results file of either kind as a dict in the current layout (older layouts converted); one UserError
    line when it is unreadable or not a results file of this project."""
    try:
        data = read_json(path)
    except (ValueError, OSError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict) or "config" not in data:
        raise UserError(f"{path} is not a results file of this project")
    return upgrade(data, path)


def upgrade(data: dict[str, Any], path: str | Path = "results") -> dict[str, Any]:
    """Convert a results object of an earlier schema version to the current one (a copy; `data` is kept)."""
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise UserError(f"{path} has results schema version {version!r}; this code reads versions up to "
                        f"{SCHEMA_VERSION}: update the code")
    data = dict(data)
    if version == 1:
        if "train_languages" in data and "languages" not in data:  # fine-tuning
            data["languages"] = data.pop("train_languages")
        if isinstance(data.get("rounds"), list):  # IMP: a round's value was under 'metric'
            data["rounds"] = [_upgrade_round(entry) for entry in data["rounds"]]
    if isinstance(data.get("languages"), str):
        data["languages"] = [part for part in data["languages"].split(",") if part]
    data["schema_version"] = SCHEMA_VERSION
    return data


def _upgrade_round(entry: Any) -> Any:
    if not isinstance(entry, dict) or "metric" not in entry or "headline" in entry:
        return entry
    entry = dict(entry)
    entry["headline"] = entry.pop("metric")
    return entry


def read_imp_results(path: str | Path) -> ImpResults:
    return imp_results_from(read_results(path), path)


def read_finetune_results(path: str | Path) -> FinetuneResults:
    return finetune_results_from(read_results(path), path)


def read_oneshot_results(path: str | Path) -> OneshotResults:
    return oneshot_results_from(read_results(path), path)


def oneshot_results_from(data: dict[str, Any], path: str | Path = "results") -> OneshotResults:
    """A one-shot results dict as typed results (its blocks typed too)."""
    results = _build(OneshotResults, data, path)
    if not isinstance(results.blocks, list) or not all(isinstance(b, dict) and "block" in b for b in results.blocks):
        raise UserError(f"{path}: 'blocks' is not a list of block entries")
    results.blocks = [_build(OneshotBlock, entry, path) for entry in results.blocks]
    return results


def finetune_results_from(data: dict[str, Any], path: str | Path = "results") -> FinetuneResults:
    """An (upgraded) fine-tuning results dict as typed results."""
    return _build(FinetuneResults, data, path)


def imp_results_from(data: dict[str, Any], path: str | Path = "results") -> ImpResults:
    """An (upgraded) IMP results dict as typed results."""
    results = _build(ImpResults, data, path)
    if not isinstance(results.rounds, list):
        raise UserError(f"{path}: 'rounds' is not a list")
    results.rounds = [entry if isinstance(entry, ImpRound) else _build(ImpRound, _round_dict(entry, path), path)
                      for entry in results.rounds]
    return results


def _round_dict(entry: Any, path: str | Path) -> dict:
    if not isinstance(entry, dict) or "round" not in entry or "sparsity" not in entry:
        raise UserError(f"{path}: an IMP round entry lacks 'round' or 'sparsity'")
    return entry


def _build(cls, data: dict[str, Any], path: str | Path):
    missing = [k for k in _REQUIRED.get(cls, ()) if k not in data]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}: is it a results file of this project?")
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})
