"""Summaries over many runs: IMP curves and winning tickets, the transfer matrix, and zero-shot evaluation.

Runs are found by their results files (imp_results.json, finetune_results.json anywhere under the given folders)
and identified only by what those files record (task, languages, model, seed, the mask's source metadata), never
by folder names, so runs can be laid out and renamed freely.

Winning ticket (the paper's criterion): the highest sparsity whose metric a' is within epsilon of the dense
model's a: a - a' <= eps when greater is better, a' - a <= eps when lower is better (perplexity). Epsilon is one
(sample) standard deviation of the dense (round 0) metric across seeds, or --epsilon.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from utils.infra.errors import UserError
from utils.infra.io import write_json
from utils.core.masks import source_name
from utils.infra.outputs import ANALYSIS_OUTPUTS, FINETUNE_RESULTS, IMP_RESULTS, prepare_analysis_dir, remove_unwritten
from utils.infra.results_schema import read_finetune_results, read_imp_results
from utils.analysis.similarity import csv_text, format_number, write_text



def format_metric(value: Optional[float], digits: int = 4) -> str:
    """A metric in a summary table: similarity.format_number with four decimals by default."""
    return format_number(value, digits)


_f = format_metric

TOLERANCE = 1e-12  # float noise must not decide whether a ticket is "within epsilon"


@dataclass
class SummaryArguments:
    """summarize_results.py's flags."""

    runs: list[str] = field(
        metadata={"help": "Folders searched recursively for imp_results.json and finetune_results.json."}
    )
    output_dir: str = field(metadata={"help": "Where the JSON, CSV and PNG files go."})
    epsilon: Optional[float] = field(
        default=None, metadata={"help": "Winning-ticket tolerance (default: 1 std of the dense metric across seeds)."}
    )
    no_plots: bool = field(default=False, metadata={"help": "Skip the PNG figures."})
    clear_output_dir: bool = field(
        default=False, metadata={"help": "Delete another analysis' outputs found in --output_dir (else: refused)."}
    )


# ---------------------------------------------------------------------------------------------------------------
# Reading runs
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class ImpRun:
    path: str
    task: str
    languages: list[str]
    model: str
    seed: Any
    metric: str
    greater_is_better: bool
    rounds: list[dict]  # round, sparsity, metric, eval
    complete: bool

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.task, "+".join(self.languages), self.model)

    @property
    def dense(self) -> Optional[float]:
        first = self.rounds[0] if self.rounds else None
        return first["metric"] if first and first["round"] == 0 else None


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
    data = read_imp_results(path)
    rounds = [{"round": int(entry.round), "sparsity": float(entry.sparsity), "metric": _number(entry.headline),
               "eval": entry.eval or {}} for entry in data.rounds]
    return ImpRun(str(path), data.task, _languages(data.languages), str(data.model or ""), data.seed, data.metric,
                  bool(data.greater_is_better), rounds, bool(data.complete))


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
# IMP curves and winning tickets
# ---------------------------------------------------------------------------------------------------------------


def within_epsilon(dense: float, value: float, epsilon: float, greater_is_better: bool) -> bool:
    """The paper's test: a - a' <= eps (greater is better) or a' - a <= eps (lower is better)."""
    drop = dense - value if greater_is_better else value - dense
    return drop <= epsilon + TOLERANCE


def winning_ticket(points: Sequence[tuple[float, Optional[float]]], dense: Optional[float], epsilon: float,
                   greater_is_better: bool) -> Optional[dict]:
    """The highest sparsity whose metric is within epsilon of `dense`; None without a dense metric."""
    if dense is None:
        return None
    best = None
    for sparsity, value in points:
        if value is not None and within_epsilon(dense, value, epsilon, greater_is_better):
            if best is None or sparsity > best["sparsity"]:
                best = {"sparsity": sparsity, "metric": value}
    return best


def _std(values: Sequence[float]) -> Optional[float]:
    return float(np.std(values, ddof=1)) if len(values) >= 2 else None


def _sparsity_key(value: float) -> float:
    return round(value, 4)


def summarize_imp(runs: Sequence[ImpRun], epsilon: Optional[float], notes: list[str]) -> list[dict]:
    """One entry per (task, languages, model): the mean/std curve over seeds, epsilon, winning tickets."""
    groups: dict[tuple, list[ImpRun]] = {}
    for run in runs:
        groups.setdefault(run.key, []).append(run)
    multi_model = len({key[2] for key in groups}) > 1
    summaries = []
    for key in sorted(groups):
        members = groups[key]
        task, languages, model = key
        label = f"{task}/{languages}" + (f" ({Path(model).name})" if multi_model else "")
        metrics = {r.metric for r in members}
        directions = {r.greater_is_better for r in members}
        if len(metrics) > 1 or len(directions) > 1:
            raise UserError(f"IMP runs of {label} disagree on the metric ({', '.join(sorted(metrics))}): "
                            f"{', '.join(r.path for r in members)}")
        greater = directions.pop()
        seeds = [r.seed for r in members]
        if len(set(map(str, seeds))) < len(seeds):
            notes.append(f"{label}: several IMP runs share a seed ({', '.join(map(str, seeds))}); "
                         "each counts as one run")
        dense_values = [r.dense for r in members if r.dense is not None]
        if epsilon is not None:
            eps, eps_source = float(epsilon), "--epsilon"
        elif len(dense_values) >= 2:
            eps = float(np.std(dense_values, ddof=1))
            eps_source = f"std of the dense metric over {len(dense_values)} runs"
        else:
            eps, eps_source = 0.0, "0 (one seed only and no --epsilon)"
            notes.append(f"{label}: one seed only and no --epsilon: epsilon = 0 "
                         "(the ticket must match the dense model)")
        by_sparsity: dict[float, list[float]] = {}
        for run in members:
            for entry in run.rounds:
                if entry["metric"] is not None:
                    by_sparsity.setdefault(_sparsity_key(entry["sparsity"]), []).append(entry["metric"])
        curve = [{"sparsity": s, "mean": float(np.mean(v)), "std": _std(v), "n": len(v)}
                 for s, v in sorted(by_sparsity.items())]
        dense_mean = float(np.mean(dense_values)) if dense_values else None
        run_entries = []
        for run in members:
            points = [(_sparsity_key(e["sparsity"]), e["metric"]) for e in run.rounds]
            ticket = winning_ticket(points, run.dense, eps, greater)
            if run.dense is None:
                notes.append(f"{run.path}: no round-0 (dense) metric, so no winning ticket")
            run_entries.append({"path": run.path, "seed": run.seed, "dense": run.dense, "complete": run.complete,
                                "rounds": len(run.rounds), "winning_ticket": ticket,
                                "curve": [{"sparsity": s, "metric": m} for s, m in points]})
        summaries.append({
            "label": label, "task": task, "languages": languages, "model": model, "metric": members[0].metric,
            "greater_is_better": greater, "seeds": seeds, "dense_mean": dense_mean, "dense_std": _std(dense_values),
            "epsilon": eps, "epsilon_source": eps_source, "curve": curve,
            "winning_ticket": winning_ticket([(c["sparsity"], c["mean"]) for c in curve], dense_mean, eps, greater),
            "runs": run_entries,
        })
    return summaries


# ---------------------------------------------------------------------------------------------------------------
# Transfer matrix and zero-shot evaluation
# ---------------------------------------------------------------------------------------------------------------


def _mean(values: Sequence[float]) -> Optional[float]:
    return float(np.mean(values)) if values else None


def _diff(value: Optional[float], reference: Optional[float]) -> tuple[Optional[float], Optional[float]]:
    if value is None or reference is None:
        return None, None
    return value - reference, (value - reference) / reference if reference else None


def summarize_transfer(runs: Sequence[FinetuneRun], imp: Sequence[dict], notes: list[str]) -> list[dict]:
    """Source mask x target (task, language) -> metric, one matrix per target task, metric and sparsity.

    The target's own ticket is the run whose mask came from the same task and language at the same sparsity; the
    dense reference is a fine-tune run without a mask, else the IMP round-0 mean of that task and language.
    """
    dense_runs: dict[tuple, list[float]] = {}
    for run in runs:
        if run.source == "dense" and run.headline is not None:
            dense_runs.setdefault((run.target, run.metric, run.model), []).append(run.headline)
    imp_dense = {(f"{g['task']}/{g['languages']}", g["metric"], g["model"]): g["dense_mean"]
                 for g in imp if g["dense_mean"] is not None}
    multi_model = len({run.model for run in runs}) > 1
    masked = [r for r in runs if r.source != "dense"]
    for run in masked:
        if run.headline is None:
            notes.append(f"{run.path}: no headline metric (run without --do_eval?); left out of the transfer matrix")
    tables: dict[tuple, dict[tuple[str, str], list[float]]] = {}
    directions: dict[tuple, bool] = {}
    for run in masked:
        if run.headline is None:
            continue
        key = (run.task, run.metric, round(run.sparsity, 3), run.model)
        tables.setdefault(key, {}).setdefault((run.source, run.target), []).append(run.headline)
        directions[key] = run.greater_is_better
    matrices = []
    for key in sorted(tables):
        task, metric, sparsity, model = key
        cells = tables[key]
        sources = sorted({s for s, _ in cells}, key=lambda s: (s in ("random", "oneshot"), s))
        targets = sorted({t for _, t in cells})
        dense = {}
        for t in targets:
            if dense_runs.get((t, metric, model)):
                dense[t] = {"value": _mean(dense_runs[(t, metric, model)]), "from": "fine-tune without a mask"}
            elif imp_dense.get((t, metric, model)) is not None:
                dense[t] = {"value": imp_dense[(t, metric, model)], "from": "IMP round 0"}
        own = {t: _mean(cells.get((t, t), [])) for t in targets}
        entries = []
        for s in sources:
            for t in targets:
                values = cells.get((s, t))
                if not values:
                    continue
                value = _mean(values)
                diff_own, rel_own = _diff(value, own[t])
                diff_dense, rel_dense = _diff(value, dense.get(t, {}).get("value"))
                entries.append({"source": s, "target": t, "value": value, "std": _std(values), "n": len(values),
                                "own_ticket": own[t], "diff_vs_own": diff_own, "rel_vs_own": rel_own,
                                "dense": dense.get(t, {}).get("value"), "diff_vs_dense": diff_dense,
                                "rel_vs_dense": rel_dense})
        mean_drop = {}
        for s in sources:
            rel = [e["rel_vs_own"] for e in entries
                   if e["source"] == s and e["target"] != s and e["rel_vs_own"] is not None]
            mean_drop[s] = {"mean_relative_drop": _mean(rel), "targets": len(rel)}
        missing_own = [t for t in targets if own[t] is None]
        if missing_own:
            notes.append(f"transfer {task} at {pct(sparsity)}: no own-ticket run for {', '.join(missing_own)} "
                         "(a run whose mask comes from the same task and language), so no relative figures there")
        matrices.append({"task": task, "metric": metric, "sparsity": sparsity, "model": model,
                         "label": task + (f" ({Path(model).name})" if multi_model else ""),
                         "greater_is_better": directions[key],
                         "sources": sources, "targets": targets, "dense": dense, "cells": entries,
                         "mean_relative_drop": mean_drop})
    return matrices


def summarize_zero_shot(runs: Sequence[FinetuneRun]) -> list[dict]:
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
    tables: dict[tuple[str, str], list[dict]] = {}
    for (task, metric, source, trained, sparsity), per_lang in sorted(rows.items()):
        tables.setdefault((task, metric), []).append({
            "source": source, "trained_on": trained, "sparsity": sparsity,
            "label": f"{source} -> {trained} @{pct(sparsity)}" if source not in ("dense",) else f"dense -> {trained}",
            "values": {lang: _mean(v) for lang, v in sorted(per_lang.items())},
            "n": max(len(v) for v in per_lang.values()),
        })
    return [{"task": task, "metric": metric,
             "languages": sorted({lang for row in table for lang in row["values"]}), "rows": table}
            for (task, metric), table in sorted(tables.items())]


# ---------------------------------------------------------------------------------------------------------------
# Everything, files and text
# ---------------------------------------------------------------------------------------------------------------


def summarize(dirs: Sequence[str | Path], epsilon: Optional[float] = None) -> dict:
    imp_runs, finetune_runs = find_runs(dirs)
    notes: list[str] = []
    imp = summarize_imp(imp_runs, epsilon, notes)
    return {
        "inputs": {"imp": [r.path for r in imp_runs], "finetune": [r.path for r in finetune_runs]},
        "epsilon": epsilon,
        "imp": imp,
        "transfer": summarize_transfer(finetune_runs, imp, notes),
        "zero_shot": summarize_zero_shot(finetune_runs),
        "notes": notes,
    }


def pct(sparsity: float) -> str:
    return f"{format(round(100 * sparsity, 1), 'g')}%"


def _slug(*parts: Any) -> str:
    text = "_".join(str(p) for p in parts)
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text)


def write_outputs(summary: dict, output_dir: str | Path, plots: bool = True) -> list[Path]:
    out = Path(output_dir)
    written = [out / "results_summary.json"]
    write_json(written[0], summary)
    curve_rows, ticket_rows = [], []
    for g in summary["imp"]:
        for c in g["curve"]:
            curve_rows.append([g["task"], g["languages"], g["model"], g["metric"], c["sparsity"], c["mean"], c["std"],
                               c["n"]])
        t = g["winning_ticket"] or {}
        ticket_rows.append([g["task"], g["languages"], g["model"], "mean", g["metric"], g["dense_mean"], g["epsilon"],
                            t.get("sparsity"), t.get("metric")])
        for r in g["runs"]:
            t = r["winning_ticket"] or {}
            ticket_rows.append([g["task"], g["languages"], g["model"], r["seed"], g["metric"], r["dense"], g["epsilon"],
                                t.get("sparsity"), t.get("metric")])
    files = {
        "imp_curves.csv": (("task", "languages", "model", "metric", "sparsity", "mean", "std", "n"), curve_rows),
        "imp_tickets.csv": (("task", "languages", "model", "seed", "metric", "dense", "epsilon", "ticket_sparsity",
                             "ticket_metric"), ticket_rows),
    }
    transfer_rows, drop_rows = [], []
    for m in summary["transfer"]:
        for e in m["cells"]:
            transfer_rows.append([m["task"], m["metric"], m["sparsity"], e["source"], e["target"], e["value"], e["std"],
                                  e["n"], e["own_ticket"], e["diff_vs_own"], e["rel_vs_own"], e["dense"],
                                  e["diff_vs_dense"], e["rel_vs_dense"]])
        for s, d in m["mean_relative_drop"].items():
            drop_rows.append([m["task"], m["metric"], m["sparsity"], s, d["mean_relative_drop"], d["targets"]])
    if transfer_rows:
        files["transfer.csv"] = (("task", "metric", "sparsity", "source", "target", "value", "std", "n", "own_ticket",
                                  "diff_vs_own", "rel_vs_own", "dense", "diff_vs_dense", "rel_vs_dense"), transfer_rows)
        files["transfer_mean_relative_drop.csv"] = (("task", "metric", "sparsity", "source", "mean_relative_drop",
                                                     "targets"), drop_rows)
    zero_rows = [[z["task"], z["metric"], r["source"], r["trained_on"], r["sparsity"], lang, value, r["n"]]
                 for z in summary["zero_shot"] for r in z["rows"] for lang, value in r["values"].items()]
    if zero_rows:
        files["zero_shot.csv"] = (("task", "metric", "source", "trained_on", "sparsity", "eval_language", "value", "n"),
                                  zero_rows)
    for name, (header, rows) in files.items():
        if rows:
            write_text(out / name, csv_text(header, rows))
            written.append(out / name)
    if plots:
        written += plot_summary(summary, out)
    return written


def plot_summary(summary: dict, out: Path) -> list[Path]:
    from utils.analysis import plots

    written = []
    by_task: dict[tuple[str, str], list[dict]] = {}
    for g in summary["imp"]:
        by_task.setdefault((g["task"], g["metric"]), []).append(g)
    for (task, metric), groups in by_task.items():
        lines = []
        for g in groups:
            ticket = g["winning_ticket"]
            lines.append({"label": f"{g['label']} (n={len(g['runs'])})", "x": [c["sparsity"] for c in g["curve"]],
                          "y": [c["mean"] for c in g["curve"]],
                          "std": [c["std"] for c in g["curve"]] if len(g["runs"]) > 1 else None,
                          "marker_x": ticket["sparsity"] if ticket else None,
                          "marker_y": ticket["metric"] if ticket else None})
        ticks = sorted({round(100 * c["sparsity"], 4) for g in groups for c in g["curve"]})
        written.append(plots.curves(lines, out / f"imp_curves_{_slug(task)}.png",
                                    f"IMP: {metric} vs sparsity ({task}; mean ± std over seeds)",
                                    "sparsity (%)", metric, percent_x=True,
                                    marker_label="winning ticket (within epsilon of dense)",
                                    xticks=ticks if len(ticks) <= 12 else None))
    for m in summary["transfer"]:
        index = {(e["source"], e["target"]): e for e in m["cells"]}

        def grid(field_name: str) -> list[list[Optional[float]]]:
            return [[index.get((s, t), {}).get(field_name) for t in m["targets"]] for s in m["sources"]]

        better = "higher" if m["greater_is_better"] else "lower"
        cmap = "RdYlGn" if m["greater_is_better"] else "RdYlGn_r"
        panels = [(grid("value"), f"{m['metric']} ({better} is better)", "{:.3f}", None, "viridis", None, m["metric"]),
                  (grid("diff_vs_own"), "minus the target's own ticket", "{:+.3f}", None, cmap, 0.0, "difference")]
        if any(v is not None for row in grid("diff_vs_dense") for v in row):
            panels.append((grid("diff_vs_dense"), "minus the dense model", "{:+.3f}", None, cmap, 0.0, "difference"))
        written.append(plots.heatmaps(
            panels, m["sources"], m["targets"],
            out / f"transfer_{_slug(m['label'].replace(' (', '_').rstrip(')'))}_{_slug(pct(m['sparsity'])[:-1])}.png",
            xlabel="target (task/training language)", ylabel="source mask",
            suptitle=f"Transfer of {pct(m['sparsity'])} masks: {m['label']}"))
    for z in summary["zero_shot"]:
        values = [[row["values"].get(lang) for lang in z["languages"]] for row in z["rows"]]
        written.append(plots.heatmap(values, [row["label"] for row in z["rows"]], z["languages"],
                                     out / f"zero_shot_{_slug(z['task'])}.png",
                                     f"{z['task']}: {z['metric']} per evaluation language",
                                     xlabel="evaluation language", ylabel="mask -> training language @ sparsity",
                                     colorbar_label=z["metric"]))
    return written



def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    fmt = lambda row: "  ".join(  # noqa: E731
        (str(c).ljust(w) if i == 0 else str(c).rjust(w)) for i, (c, w) in enumerate(zip(row, widths)))
    return [fmt(header), *(fmt(r) for r in rows)]


def format_summary(summary: dict) -> str:
    """Compact text tables: IMP tickets and mean curves, transfer matrices with mean relative drop, zero-shot."""
    lines: list[str] = []
    imp = summary["imp"]
    if imp:
        lines.append("IMP winning tickets (highest sparsity within epsilon of the dense model)")
        rows = []
        for g in imp:
            ticket = g["winning_ticket"]
            dense = _f(g["dense_mean"]) + (f"±{_f(g['dense_std'])}" if g["dense_std"] is not None else "")
            per_run = " ".join(f"s{r['seed']}:{pct(r['winning_ticket']['sparsity']) if r['winning_ticket'] else '-'}"
                               for r in g["runs"])
            rows.append([g["label"], g["metric"], str(len(g["runs"])), dense, _f(g["epsilon"]),
                         f"{pct(ticket['sparsity'])} ({_f(ticket['metric'])})" if ticket else "-", per_run])
        lines += _table(["task/lang", "metric", "runs", "dense", "epsilon", "ticket (mean curve)", "per run"], rows)
        sparsities = sorted({c["sparsity"] for g in imp for c in g["curve"]})
        lines.append("")
        lines.append("IMP mean curves (metric by sparsity)")
        rows = [[g["label"], *(_f(next((c["mean"] for c in g["curve"] if c["sparsity"] == s), None), 3)
                               for s in sparsities)] for g in imp]
        lines += _table(["task/lang", *(pct(s) for s in sparsities)], rows)
    for m in summary["transfer"]:
        index = {(e["source"], e["target"]): e for e in m["cells"]}
        direction = "higher" if m["greater_is_better"] else "lower"
        lines.append("")
        lines.append(f"transfer at {pct(m['sparsity'])}: {m['label']} {m['metric']} ({direction} is better), "
                     "rows = source mask, columns = target;")
        lines.append("  mean rel.: mean over targets t != source of (a(s,t) - a(t,t)) / a(t,t), "
                     "a(t,t) = the target's own ticket")
        rows = []
        for s in m["sources"]:
            drop = m["mean_relative_drop"][s]["mean_relative_drop"]
            rows.append([s, *(_f(index[(s, t)]["value"]) if (s, t) in index else "-" for t in m["targets"]),
                         "-" if drop is None else f"{100 * drop:+.2f}%"])
        if m["dense"]:
            rows.append(["dense", *(_f(m["dense"][t]["value"]) if t in m["dense"] else "-" for t in m["targets"]), ""])
        lines += _table(["source \\ target", *m["targets"], "mean rel."], rows)
    for z in summary["zero_shot"]:
        lines.append("")
        lines.append(f"zero-shot evaluation: {z['task']} {z['metric']} per evaluation language")
        rows = [[r["label"], *(_f(r["values"].get(lang)) for lang in z["languages"])] for r in z["rows"]]
        lines += _table(["mask -> trained on", *z["languages"]], rows)
    if summary["notes"]:
        lines.append("")
        lines += [f"note: {n}" for n in summary["notes"]]
    return "\n".join(lines)


def run_summary(dirs: Sequence[str | Path], output_dir: str | Path, epsilon: Optional[float] = None,
                plots: bool = True, clear_output_dir: bool = False) -> dict:
    root = prepare_analysis_dir(output_dir, "summary", clear_output_dir)
    summary = summarize(dirs, epsilon)
    print(f"found {len(summary['inputs']['imp'])} IMP run(s) and {len(summary['inputs']['finetune'])} fine-tune run(s)")
    print(format_summary(summary))
    written = write_outputs(summary, root, plots=plots)
    remove_unwritten(root, ANALYSIS_OUTPUTS["summary"], written)
    print(f"written to {output_dir}")
    return summary
