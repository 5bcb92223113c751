"""summarize_results.py's files, figures and printed tables, from the typed Summary of results.py."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from utils.analysis.results import Summary, TransferMatrix
from utils.analysis.writers import METRIC_DIGITS, format_number, format_percent, from_json, text_table, write_csv
from utils.infra.io import read_json

SUMMARY_FILE = "results_summary.json"  # the completion file, written last


def read_summary(path: str | Path) -> Summary:
    """results_summary.json as a typed Summary (files of earlier versions have the same field names)."""
    return from_json(Summary, read_json(path))


def _slug(*parts: Any) -> str:
    text = "_".join(str(p) for p in parts)
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text)


def summary_tables(summary: Summary) -> dict[str, tuple[tuple[str, ...], list[list]]]:
    """CSV name -> (header, rows); a table without rows is not written."""
    curve_rows, ticket_rows = [], []
    for g in summary.imp:
        curve_rows += [[g.task, g.languages, g.model, g.metric, c.sparsity, c.mean, c.std, c.n] for c in g.curve]
        t = g.winning_ticket
        ticket_rows.append([g.task, g.languages, g.model, "mean", g.metric, g.dense_mean, g.epsilon,
                            t.sparsity if t else None, t.metric if t else None])
        for r in g.runs:
            t = r.winning_ticket
            ticket_rows.append([g.task, g.languages, g.model, r.seed, g.metric, r.dense, g.epsilon,
                                t.sparsity if t else None, t.metric if t else None])
    transfer_rows = [[m.task, m.metric, m.sparsity, e.source, e.target, e.value, e.std, e.n, e.own_ticket,
                      e.diff_vs_own, e.rel_vs_own, e.dense, e.diff_vs_dense, e.rel_vs_dense]
                     for m in summary.transfer for e in m.cells]
    drop_rows = [[m.task, m.metric, m.sparsity, s, d.mean_relative_drop, d.targets]
                 for m in summary.transfer for s, d in m.mean_relative_drop.items()]
    zero_rows = [[z.task, z.metric, r.source, r.trained_on, r.sparsity, lang, value, r.n]
                 for z in summary.zero_shot for r in z.rows for lang, value in r.values.items()]
    return {
        "imp_curves.csv": (("task", "languages", "model", "metric", "sparsity", "mean", "std", "n"), curve_rows),
        "imp_tickets.csv": (("task", "languages", "model", "seed", "metric", "dense", "epsilon", "ticket_sparsity",
                             "ticket_metric"), ticket_rows),
        "transfer.csv": (("task", "metric", "sparsity", "source", "target", "value", "std", "n", "own_ticket",
                          "diff_vs_own", "rel_vs_own", "dense", "diff_vs_dense", "rel_vs_dense"), transfer_rows),
        "transfer_mean_relative_drop.csv": (("task", "metric", "sparsity", "source", "mean_relative_drop",
                                             "targets"), drop_rows if transfer_rows else []),
        "zero_shot.csv": (("task", "metric", "source", "trained_on", "sparsity", "eval_language", "value", "n"),
                          zero_rows),
    }


def write_summary_tables(summary: Summary, out: Path) -> list[Path]:
    return [write_csv(out / name, header, rows) for name, (header, rows) in summary_tables(summary).items() if rows]


def _transfer_grid(m: TransferMatrix, field_name: str) -> list[list[Optional[float]]]:
    index = {(c.source, c.target): c for c in m.cells}
    return [[getattr(index[(s, t)], field_name) if (s, t) in index else None for t in m.targets] for s in m.sources]


def plot_summary(summary: Summary, out: Path) -> list[Path]:
    """imp_curves_<task>.png, transfer_<task>_<sparsity>.png, zero_shot_<task>.png."""
    from utils.analysis import plots

    written = []
    by_task: dict[tuple[str, str], list] = {}
    for g in summary.imp:
        by_task.setdefault((g.task, g.metric), []).append(g)
    for (task, metric), groups in by_task.items():
        lines = [{"label": f"{g.label} (n={len(g.runs)})", "x": [c.sparsity for c in g.curve],
                  "y": [c.mean for c in g.curve], "std": [c.std for c in g.curve] if len(g.runs) > 1 else None,
                  "marker_x": g.winning_ticket.sparsity if g.winning_ticket else None,
                  "marker_y": g.winning_ticket.metric if g.winning_ticket else None} for g in groups]
        ticks = sorted({round(100 * c.sparsity, 4) for g in groups for c in g.curve})
        written.append(plots.curves(lines, out / f"imp_curves_{_slug(task)}.png",
                                    f"IMP: {metric} vs sparsity ({task}; mean ± std over seeds)",
                                    "sparsity (%)", metric, percent_x=True,
                                    marker_label="winning ticket (within epsilon of dense)",
                                    xticks=ticks if len(ticks) <= 12 else None))
    for m in summary.transfer:
        better = "higher" if m.greater_is_better else "lower"
        cmap = "RdYlGn" if m.greater_is_better else "RdYlGn_r"
        panels = [(_transfer_grid(m, "value"), f"{m.metric} ({better} is better)", "{:.3f}", None, "viridis", None,
                   m.metric),
                  (_transfer_grid(m, "diff_vs_own"), "minus the target's own ticket", "{:+.3f}", None, cmap, 0.0,
                   "difference")]
        vs_dense = _transfer_grid(m, "diff_vs_dense")
        if any(v is not None for row in vs_dense for v in row):
            panels.append((vs_dense, "minus the dense model", "{:+.3f}", None, cmap, 0.0, "difference"))
        percent = format_percent(m.sparsity)
        written.append(plots.heatmaps(
            panels, m.sources, m.targets,
            out / f"transfer_{_slug(m.label.replace(' (', '_').rstrip(')'))}_{_slug(percent[:-1])}.png",
            xlabel="target (task/training language)", ylabel="source mask",
            suptitle=f"Transfer of {percent} masks: {m.label}"))
    for z in summary.zero_shot:
        values = [[row.values.get(lang) for lang in z.languages] for row in z.rows]
        written.append(plots.heatmap(values, [row.label for row in z.rows], z.languages,
                                     out / f"zero_shot_{_slug(z.task)}.png",
                                     f"{z.task}: {z.metric} per evaluation language",
                                     xlabel="evaluation language", ylabel="mask -> training language @ sparsity",
                                     colorbar_label=z.metric))
    return written


def transfer_rows(m: TransferMatrix) -> list[list[str]]:
    """The printed/reported transfer matrix: one row per source mask (+ mean rel.), then the dense model's row."""
    rows = []
    for s in m.sources:
        drop = m.mean_relative_drop[s].mean_relative_drop
        cells = (m.cell(s, t) for t in m.targets)
        rows.append([s, *(format_number(c.value, METRIC_DIGITS) if c else "-" for c in cells),
                     "-" if drop is None else f"{100 * drop:+.2f}%"])
    if m.dense:
        rows.append(["dense", *(format_number(m.dense[t].value, METRIC_DIGITS) if t in m.dense else "-"
                                for t in m.targets), ""])
    return rows


def _imp_lines(summary: Summary) -> list[str]:
    imp = summary.imp
    lines = ["IMP winning tickets (highest sparsity within epsilon of the dense model)"]
    rows = []
    for g in imp:
        ticket = g.winning_ticket
        dense = format_number(g.dense_mean, METRIC_DIGITS)
        if g.dense_std is not None:
            dense += f"±{format_number(g.dense_std, METRIC_DIGITS)}"
        per_run = " ".join(f"s{r.seed}:{format_percent(r.winning_ticket.sparsity) if r.winning_ticket else '-'}"
                           for r in g.runs)
        rows.append([g.label, g.metric, str(len(g.runs)), dense, format_number(g.epsilon, METRIC_DIGITS),
                     f"{format_percent(ticket.sparsity)} ({format_number(ticket.metric, METRIC_DIGITS)})" if ticket
                     else "-", per_run])
    lines.append(text_table(["task/lang", "metric", "runs", "dense", "epsilon", "ticket (mean curve)", "per run"],
                            rows))
    sparsities = sorted({c.sparsity for g in imp for c in g.curve})
    lines += ["", "IMP mean curves (metric by sparsity)"]
    rows = [[g.label, *(format_number(g.mean_at(s), 3) for s in sparsities)] for g in imp]
    return lines + [text_table(["task/lang", *(format_percent(s) for s in sparsities)], rows)]


def format_summary(summary: Summary) -> str:
    """Compact text tables: IMP tickets and mean curves, transfer matrices with mean relative drop, zero-shot."""
    lines: list[str] = _imp_lines(summary) if summary.imp else []
    for m in summary.transfer:
        direction = "higher" if m.greater_is_better else "lower"
        lines += ["", f"transfer at {format_percent(m.sparsity)}: {m.label} {m.metric} ({direction} is better), "
                      "rows = source mask, columns = target;",
                  "  mean rel.: mean over targets t != source of (a(s,t) - a(t,t)) / a(t,t), "
                  "a(t,t) = the target's own ticket"]
        lines.append(text_table(["source \\ target", *m.targets, "mean rel."], transfer_rows(m)))
    for z in summary.zero_shot:
        lines += ["", f"zero-shot evaluation: {z.task} {z.metric} per evaluation language"]
        rows = [[r.label, *(format_number(r.values.get(lang), METRIC_DIGITS) for lang in z.languages)]
                for r in z.rows]
        lines.append(text_table(["mask -> trained on", *z.languages], rows))
    if summary.notes:
        lines.append("")
        lines += [f"note: {n}" for n in summary.notes]
    return "\n".join(lines)
