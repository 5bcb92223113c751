"""Summaries over many runs: IMP curves and winning tickets, the transfer matrix, and zero-shot evaluation.

Runs are found by their results files (imp_results.json, finetune_results.json anywhere under the given folders)
and identified only by what those files record (task, languages, model, seed, the mask's source metadata), never
by folder names, so runs can be laid out and renamed freely.

Winning ticket (the paper's criterion): the highest sparsity whose metric a' is within epsilon of the dense
model's a: a - a' <= eps when greater is better, a' - a <= eps when lower is better (perplexity). Epsilon is one
(sample) standard deviation of the dense (round 0) metric across seeds, or --epsilon.

This module computes (typed rows, no files); summary_writers.py writes and prints them, tools.run_summary drives.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from utils.analysis.writers import JSON_NAME, format_percent
from utils.core.masks import source_name
from utils.infra.errors import UserError
from utils.infra.outputs import FINETUNE_RESULTS, IMP_RESULTS
from utils.infra.results_schema import ImpResults, read_finetune_results, read_imp_results

TOLERANCE = 1e-12  # float noise must not decide whether a ticket is "within epsilon"


# ---------------------------------------------------------------------------------------------------------------
# Reading runs
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class ImpRun:
    """An imp_results.json (typed by the results schema) and where it was found."""

    path: str
    results: ImpResults

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.results.task, "+".join(self.results.languages), self.results.model)

    @property
    def points(self) -> list[tuple[float, Optional[float]]]:
        """(sparsity, headline metric) per round; a missing or non-finite metric is None."""
        return [(_sparsity_key(float(r.sparsity)), _number(r.headline)) for r in self.results.rounds]

    @property
    def dense(self) -> Optional[float]:
        rounds = self.results.rounds
        return _number(rounds[0].headline) if rounds and rounds[0].round == 0 else None


@dataclass
class FinetuneRun:
    path: str
    task: str
    languages: list[str]
    model: str
    seed: Any
    pruning_type: str
    source: str  # 'ner/en' for a ticket, 'dense', 'random', 'oneshot'
    source_task: Optional[str]
    source_languages: list[str]
    sparsity: float  # the source mask's sparsity (the fitted model's for random/oneshot)
    metric: str
    greater_is_better: bool
    headline: Optional[float]
    eval: dict

    @property
    def target(self) -> str:
        return f"{self.task}/{'+'.join(self.languages)}"


def _languages(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part for part in value.split(",") if part]
    return [str(v) for v in value or []]


def _number(value: Any) -> Optional[float]:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def read_imp_run(path: Path) -> ImpRun:
    results = read_imp_results(path)
    results.languages, results.model = _languages(results.languages), str(results.model or "")
    results.greater_is_better, results.complete = bool(results.greater_is_better), bool(results.complete)
    return ImpRun(str(path), results)


def read_finetune_run(path: Path) -> FinetuneRun:
    data = read_finetune_results(path)
    kind = data.pruning_type
    mask = data.mask or {}
    meta = mask.get("source") or {}
    source_task, source_languages = meta.get("task"), _languages(meta.get("languages"))
    sparsity = _number(meta.get("sparsity")) if kind == "lth" else None
    if sparsity is None:
        sparsity = _number(data.sparsity) or 0.0
    if kind == "lth":
        if source_name(meta):
            source = source_name(meta)
        else:  # a mask without metadata (e.g. the original code's): all we know is its file
            source = f"mask:{mask.get('path', '?')}"
    else:
        source = {"none": "dense"}.get(kind, kind)
    if data.weight_init == "rand":  # BERT-Tickets' control: the same mask on randomly initialised weights
        source += " (random init)"
    return FinetuneRun(str(path), data.task, _languages(data.languages), str(data.model or ""), data.seed, kind,
                       source, source_task, source_languages, sparsity, data.metric, bool(data.greater_is_better),
                       _number(data.headline), data.eval or {})


def find_runs(dirs: Sequence[str | Path]) -> tuple[list[ImpRun], list[FinetuneRun]]:
    """Every results file under the folders (each file once, however the folders overlap)."""
    seen: set[Path] = set()
    imp_paths: list[Path] = []
    finetune_paths: list[Path] = []
    for folder in dirs:
        root = Path(folder)
        if not root.is_dir():
            raise UserError(f"runs folder not found: {folder}")
        for name, bucket in ((IMP_RESULTS, imp_paths), (FINETUNE_RESULTS, finetune_paths)):
            for path in sorted(root.rglob(name)):
                resolved = path.resolve()
                if resolved not in seen:
                    seen.add(resolved)
                    bucket.append(path)
    if not imp_paths and not finetune_paths:
        raise UserError(f"no {IMP_RESULTS} or {FINETUNE_RESULTS} under {', '.join(map(str, dirs))}")
    return [read_imp_run(p) for p in imp_paths], [read_finetune_run(p) for p in finetune_paths]


# ---------------------------------------------------------------------------------------------------------------
# The summary's typed rows (results_summary.json keeps these field names, so files written before still read)
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Ticket:
    sparsity: float
    metric: float


@dataclass
class CurvePoint:
    """The mean metric over seeds at one sparsity."""

    sparsity: float
    mean: float
    std: Optional[float]
    n: int


@dataclass
class RunPoint:
    sparsity: float
    metric: Optional[float]


@dataclass
class ImpRunSummary:
    path: str
    seed: Any
    dense: Optional[float]
    complete: bool
    rounds: int
    winning_ticket: Optional[Ticket]
    curve: list[RunPoint] = field(default_factory=list)


@dataclass
class ImpSummary:
    """One (task, languages, model): the mean/std curve over seeds, epsilon, the winning tickets."""

    label: str
    task: str
    languages: str  # joined by '+'
    model: str
    metric: str
    greater_is_better: bool
    seeds: list[Any]
    dense_mean: Optional[float]
    dense_std: Optional[float]
    epsilon: float
    epsilon_source: str
    curve: list[CurvePoint]
    winning_ticket: Optional[Ticket]
    runs: list[ImpRunSummary] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"{self.task}/{self.languages}"

    def mean_at(self, sparsity: float) -> Optional[float]:
        return next((c.mean for c in self.curve if c.sparsity == sparsity), None)


@dataclass
class TransferCell:
    """Source mask s fine-tuned on target t: its metric, beside t's own ticket and the dense model."""

    source: str
    target: str
    value: float
    std: Optional[float]
    n: int
    own_ticket: Optional[float] = None
    diff_vs_own: Optional[float] = None
    rel_vs_own: Optional[float] = None
    dense: Optional[float] = None
    diff_vs_dense: Optional[float] = None
    rel_vs_dense: Optional[float] = None


@dataclass
class DenseReference:
    value: float
    origin: str = field(metadata={JSON_NAME: "from"})  # 'fine-tune without a mask' or 'IMP round 0'


@dataclass
class RelativeDrop:
    mean_relative_drop: Optional[float]
    targets: int


@dataclass
class TransferMatrix:
    """Source mask x target (task/languages) at one task, metric, sparsity and model."""

    task: str
    metric: str
    sparsity: float
    model: str
    label: str
    greater_is_better: bool
    sources: list[str]
    targets: list[str]
    dense: dict[str, DenseReference]
    cells: list[TransferCell]
    mean_relative_drop: dict[str, RelativeDrop]

    def cell(self, source: str, target: str) -> Optional[TransferCell]:
        return next((c for c in self.cells if c.source == source and c.target == target), None)


@dataclass
class ZeroShotRow:
    source: str
    trained_on: str
    sparsity: float
    label: str
    values: dict[str, Optional[float]]  # evaluation language -> metric
    n: int


@dataclass
class ZeroShotTable:
    task: str
    metric: str
    languages: list[str]
    rows: list[ZeroShotRow]


@dataclass
class SummaryInputs:
    imp: list[str]
    finetune: list[str]


@dataclass
class Summary:
    """results_summary.json."""

    inputs: SummaryInputs
    epsilon: Optional[float]
    imp: list[ImpSummary]
    transfer: list[TransferMatrix]
    zero_shot: list[ZeroShotTable]
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------
# IMP curves and winning tickets
# ---------------------------------------------------------------------------------------------------------------


def within_epsilon(dense: float, value: float, epsilon: float, greater_is_better: bool) -> bool:
    """The paper's test: a - a' <= eps (greater is better) or a' - a <= eps (lower is better)."""
    drop = dense - value if greater_is_better else value - dense
    return drop <= epsilon + TOLERANCE


def winning_ticket(points: Sequence[tuple[float, Optional[float]]], dense: Optional[float], epsilon: float,
                   greater_is_better: bool) -> Optional[Ticket]:
    """The highest sparsity whose metric is within epsilon of `dense`; None without a dense metric."""
    if dense is None:
        return None
    best = None
    for sparsity, value in points:
        if value is not None and within_epsilon(dense, value, epsilon, greater_is_better):
            if best is None or sparsity > best.sparsity:
                best = Ticket(sparsity, value)
    return best


def _std(values: Sequence[float]) -> Optional[float]:
    return float(np.std(values, ddof=1)) if len(values) >= 2 else None


def _sparsity_key(value: float) -> float:
    return round(value, 4)


def _epsilon(label: str, given: Optional[float], dense_values: Sequence[float], notes: list[str]) -> tuple[float, str]:
    """--epsilon, else one std of the dense metric over the seeds, else 0 (said in a note)."""
    if given is not None:
        return float(given), "--epsilon"
    if len(dense_values) >= 2:
        return float(np.std(dense_values, ddof=1)), f"std of the dense metric over {len(dense_values)} runs"
    notes.append(f"{label}: one seed only and no --epsilon: epsilon = 0 (the ticket must match the dense model)")
    return 0.0, "0 (one seed only and no --epsilon)"


def _mean_curve(members: Sequence[ImpRun]) -> list[CurvePoint]:
    by_sparsity: dict[float, list[float]] = {}
    for run in members:
        for sparsity, metric in run.points:
            if metric is not None:
                by_sparsity.setdefault(sparsity, []).append(metric)
    return [CurvePoint(s, float(np.mean(v)), _std(v), len(v)) for s, v in sorted(by_sparsity.items())]


def _run_summary(run: ImpRun, epsilon: float, notes: list[str]) -> ImpRunSummary:
    points = run.points
    if run.dense is None:
        notes.append(f"{run.path}: no round-0 (dense) metric, so no winning ticket")
    return ImpRunSummary(run.path, run.results.seed, run.dense, run.results.complete, len(run.results.rounds),
                         winning_ticket(points, run.dense, epsilon, run.results.greater_is_better),
                         [RunPoint(s, m) for s, m in points])


def _imp_group(label: str, key: tuple[str, str, str], members: Sequence[ImpRun], epsilon: Optional[float],
               notes: list[str]) -> ImpSummary:
    task, languages, model = key
    metrics = {r.results.metric for r in members}
    directions = {r.results.greater_is_better for r in members}
    if len(metrics) > 1 or len(directions) > 1:
        raise UserError(f"IMP runs of {label} disagree on the metric ({', '.join(sorted(metrics))}): "
                        f"{', '.join(r.path for r in members)}")
    greater = directions.pop()
    seeds = [r.results.seed for r in members]
    if len(set(map(str, seeds))) < len(seeds):
        notes.append(f"{label}: several IMP runs share a seed ({', '.join(map(str, seeds))}); each counts as one run")
    dense_values = [r.dense for r in members if r.dense is not None]
    eps, eps_source = _epsilon(label, epsilon, dense_values, notes)
    curve = _mean_curve(members)
    dense_mean = float(np.mean(dense_values)) if dense_values else None
    runs = [_run_summary(run, eps, notes) for run in members]
    return ImpSummary(label, task, languages, model, members[0].results.metric, greater, seeds, dense_mean,
                      _std(dense_values), eps, eps_source, curve,
                      winning_ticket([(c.sparsity, c.mean) for c in curve], dense_mean, eps, greater), runs)


def summarize_imp(runs: Sequence[ImpRun], epsilon: Optional[float], notes: list[str]) -> list[ImpSummary]:
    """One entry per (task, languages, model): the mean/std curve over seeds, epsilon, winning tickets."""
    groups: dict[tuple, list[ImpRun]] = {}
    for run in runs:
        groups.setdefault(run.key, []).append(run)
    multi_model = len({key[2] for key in groups}) > 1
    return [_imp_group(f"{key[0]}/{key[1]}" + (f" ({Path(key[2]).name})" if multi_model else ""), key, groups[key],
                       epsilon, notes) for key in sorted(groups)]


# ---------------------------------------------------------------------------------------------------------------
# Transfer matrix and zero-shot evaluation
# ---------------------------------------------------------------------------------------------------------------


def _mean(values: Sequence[float]) -> Optional[float]:
    return float(np.mean(values)) if values else None


def _diff(value: Optional[float], reference: Optional[float]) -> tuple[Optional[float], Optional[float]]:
    if value is None or reference is None:
        return None, None
    return value - reference, (value - reference) / reference if reference else None


@dataclass(frozen=True, order=True)
class MatrixKey:
    """What one transfer matrix holds: fine-tuning runs of one target task and metric, at one sparsity and model."""

    task: str
    metric: str
    sparsity: float
    model: str


def _dense_references(runs: Sequence[FinetuneRun], imp: Sequence[ImpSummary]) -> dict[tuple, DenseReference]:
    """(target, metric, model) -> the dense model's metric: a fine-tune run without a mask (mean over runs), else
    the IMP round-0 mean of that task and language."""
    unmasked: dict[tuple, list[float]] = {}
    for run in runs:
        if run.source == "dense" and run.headline is not None:
            unmasked.setdefault((run.target, run.metric, run.model), []).append(run.headline)
    references = {(g.target, g.metric, g.model): DenseReference(g.dense_mean, "IMP round 0")
                  for g in imp if g.dense_mean is not None}
    references.update({key: DenseReference(_mean(values), "fine-tune without a mask")
                       for key, values in unmasked.items()})
    return references


def _masked_values(runs: Sequence[FinetuneRun], notes: list[str]
                   ) -> tuple[dict[MatrixKey, dict[tuple[str, str], list[float]]], dict[MatrixKey, bool]]:
    """The masked runs' headline metrics per matrix and (source, target); runs without one get a note."""
    tables: dict[MatrixKey, dict[tuple[str, str], list[float]]] = {}
    directions: dict[MatrixKey, bool] = {}
    for run in (r for r in runs if r.source != "dense"):
        if run.headline is None:
            notes.append(f"{run.path}: no headline metric (run without --do_eval?); left out of the transfer matrix")
            continue
        key = MatrixKey(run.task, run.metric, round(run.sparsity, 3), run.model)
        tables.setdefault(key, {}).setdefault((run.source, run.target), []).append(run.headline)
        directions[key] = run.greater_is_better
    return tables, directions


def _cell(source: str, target: str, values: Sequence[float], own: Optional[float],
          dense: Optional[DenseReference]) -> TransferCell:
    value = _mean(values)
    reference = dense.value if dense else None
    return TransferCell(source, target, value, _std(values), len(values), own, *_diff(value, own), reference,
                        *_diff(value, reference))


def _relative_drops(sources: Sequence[str], cells: Sequence[TransferCell]) -> dict[str, RelativeDrop]:
    """Per source: the mean over other targets of (a(s,t) - a(t,t)) / a(t,t)."""
    drops = {}
    for s in sources:
        rel = [c.rel_vs_own for c in cells if c.source == s and c.target != s and c.rel_vs_own is not None]
        drops[s] = RelativeDrop(_mean(rel), len(rel))
    return drops


def _transfer_matrix(key: MatrixKey, values: dict[tuple[str, str], list[float]], greater_is_better: bool,
                     references: dict[tuple, DenseReference], label: str, notes: list[str]) -> TransferMatrix:
    sources = sorted({s for s, _ in values}, key=lambda s: (s in ("random", "oneshot"), s))
    targets = sorted({t for _, t in values})
    dense = {t: references[(t, key.metric, key.model)] for t in targets if (t, key.metric, key.model) in references}
    own = {t: _mean(values.get((t, t), [])) for t in targets}
    cells = [_cell(s, t, values[(s, t)], own[t], dense.get(t)) for s in sources for t in targets if values.get((s, t))]
    missing_own = [t for t in targets if own[t] is None]
    if missing_own:
        notes.append(f"transfer {key.task} at {format_percent(key.sparsity)}: no own-ticket run for "
                     f"{', '.join(missing_own)} (a run whose mask comes from the same task and language), so no "
                     "relative figures there")
    return TransferMatrix(key.task, key.metric, key.sparsity, key.model, label, greater_is_better, sources, targets,
                          dense, cells, _relative_drops(sources, cells))


def summarize_transfer(runs: Sequence[FinetuneRun], imp: Sequence[ImpSummary], notes: list[str]
                       ) -> list[TransferMatrix]:
    """Source mask x target (task, language) -> metric, one matrix per target task, metric and sparsity.

    The target's own ticket is the run whose mask came from the same task and language at the same sparsity; the
    dense reference is a fine-tune run without a mask, else the IMP round-0 mean of that task and language.
    """
    references = _dense_references(runs, imp)
    multi_model = len({run.model for run in runs}) > 1
    tables, directions = _masked_values(runs, notes)
    return [_transfer_matrix(key, tables[key], directions[key], references,
                             key.task + (f" ({Path(key.model).name})" if multi_model else ""), notes)
            for key in sorted(tables)]


def summarize_zero_shot(runs: Sequence[FinetuneRun]) -> list[ZeroShotTable]:
    """Per task: each (mask source, training language, sparsity) row's metric on every evaluated language."""
    rows: dict[tuple, dict[str, list[float]]] = {}
    for run in runs:
        languages = [lang for lang in run.eval if lang != "average" and isinstance(run.eval[lang], dict)]
        if not any(lang not in run.languages for lang in languages):
            continue  # in-language only: already in the transfer matrix
        key = (run.task, run.metric, run.source, "+".join(run.languages), round(run.sparsity, 3))
        for lang in languages:
            value = _number(run.eval[lang].get(run.metric))
            if value is not None:
                rows.setdefault(key, {}).setdefault(lang, []).append(value)
    tables: dict[tuple[str, str], list[ZeroShotRow]] = {}
    for (task, metric, source, trained, sparsity), per_lang in sorted(rows.items()):
        label = f"dense -> {trained}" if source == "dense" else f"{source} -> {trained} @{format_percent(sparsity)}"
        tables.setdefault((task, metric), []).append(ZeroShotRow(
            source, trained, sparsity, label, {lang: _mean(v) for lang, v in sorted(per_lang.items())},
            max(len(v) for v in per_lang.values())))
    return [ZeroShotTable(task, metric, sorted({lang for row in table for lang in row.values}), table)
            for (task, metric), table in sorted(tables.items())]


def summarize(dirs: Sequence[str | Path], epsilon: Optional[float] = None) -> Summary:
    """Find the runs under the folders and summarise them (no files written)."""
    imp_runs, finetune_runs = find_runs(dirs)
    notes: list[str] = []
    imp = summarize_imp(imp_runs, epsilon, notes)
    return Summary(SummaryInputs([r.path for r in imp_runs], [r.path for r in finetune_runs]), epsilon, imp,
                   summarize_transfer(finetune_runs, imp, notes), summarize_zero_shot(finetune_runs), notes)
