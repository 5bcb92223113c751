"""STUDY_DIR/report.md (+ report.html, report.json, tables/*.csv, figures/*.png) from the analyses' JSON outputs.

Nothing here recomputes an analysis: the numbers come from summarize_results.py (results_summary.json),
mask_similarity.py (mask_similarity.json), sentence_retrieval.py (retrieval_*.json) and language_neurons.py
(neurons.json) runs of the study; this
module only arranges them paper-style, one reading guide per table, and copies their figures next to the report.
"""
from __future__ import annotations

import html
import math
import shutil
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import numpy as np

from utils.analysis.neuron_run import NEURONS_FILE, read_neurons
from utils.analysis.neurons import AblationResult
from utils.analysis.results import ImpSummary, Summary
from utils.analysis.similarity import PairComparison, SimilarityResult
from utils.analysis.similarity_writers import SIMILARITY_FILE, read_similarity
from utils.analysis.summary_writers import SUMMARY_FILE, read_summary, transfer_rows
from utils.analysis.writers import METRIC_DIGITS, csv_text, format_number, format_percent, text_table, write_text
from utils.infra.io import read_json, write_json
from .plan import Study

T = TypeVar("T")


def _table(name: str, title: str, guide: str, header: list[str], rows: list[list[Any]]) -> dict:
    return {"name": name, "title": title, "guide": guide, "header": header, "rows": rows}


def _section(title: str, text: str = "", tables: Optional[list] = None, figures: Optional[list] = None) -> dict:
    return {"title": title, "text": text, "tables": tables or [], "figures": figures or []}


def _read(path: Path, reader: Callable[[Path], T] = read_json) -> Optional[T]:
    """An analysis' JSON (typed by `reader`), or None when it is missing or unreadable."""
    try:
        return reader(path) if path.is_file() else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _figure(source: Path, out: Path, name: str, caption: str) -> Optional[tuple[str, str]]:
    """Copy an analysis' PNG next to the report: (relative path, caption)."""
    if not source.is_file():
        return None
    (out / "figures").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out / "figures" / name)
    return f"figures/{name}", caption


# ---------------------------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------------------------


def tickets_section(summary: Summary, out: Path) -> dict:
    """Table 2 style: the dense model, the winning ticket and a random mask at the transfer sparsities."""
    randoms: dict[tuple[str, str, float], float] = {}
    for m in summary.transfer:
        for cell in m.cells:
            if cell.source == "random":
                randoms[(cell.target, m.metric, m.sparsity)] = cell.value
    columns = sorted({sparsity for _, _, sparsity in randoms})
    rows = [_ticket_row(g, [randoms.get((g.target, g.metric, s)) for s in columns]) for g in summary.imp]
    table = _table("imp_tickets", "Winning tickets (paper Table 2 style)",
                   "full = dense model (IMP round 0, mean ± std over seeds); ticket = metric at the highest sparsity "
                   "whose mean is within epsilon (1 std of full) of full; random @p = a random mask at sparsity p "
                   "fine-tuned (the paper puts it at the ticket's sparsity); perplexity: lower is better, else higher.",
                   ["task/language", "metric", "seeds", "full", "epsilon", "ticket (sparsity)",
                    *(f"random @{format_percent(s)}" for s in columns)], rows)
    points = sorted({c.sparsity for g in summary.imp for c in g.curve})
    curve_rows = [[g.label, *(format_number(g.mean_at(s), METRIC_DIGITS) for s in points)] for g in summary.imp]
    curve_table = _table("imp_curves", "IMP curves (mean over seeds)",
                         "the metric after each IMP round's training, by the sparsity it trained at "
                         "(std per point: summary/imp_curves.csv).",
                         ["task/language", *(format_percent(s) for s in points)], curve_rows)
    figures = [_figure(p, out, p.name, f"IMP curves ({p.stem[len('imp_curves_'):]}); star: winning ticket")
               for p in sorted((out / "summary").glob("imp_curves_*.png"))]
    return _section("IMP and winning tickets", tables=[table, curve_table], figures=figures)


def _ticket_row(g: ImpSummary, randoms: list[Optional[float]]) -> list:
    ticket = g.winning_ticket
    full = format_number(g.dense_mean, METRIC_DIGITS)
    if g.dense_std is not None:
        full += f" ± {format_number(g.dense_std, METRIC_DIGITS)}"
    return [g.label, g.metric, len(g.runs), full, format_number(g.epsilon, METRIC_DIGITS),
            f"{format_number(ticket.metric, METRIC_DIGITS)} ({format_percent(ticket.sparsity)})" if ticket else "-",
            *(format_number(value, METRIC_DIGITS) for value in randoms)]


def transfer_section(summary: Summary, out: Path) -> dict:
    """Fig. 5/6 style: source mask x target language at each sparsity, the mean relative drop, cross-task rows."""
    tables, figures, drops, cross = [], [], [], {}
    for m in summary.transfer:
        percent = format_percent(m.sparsity)
        for s in m.sources:
            drop = m.mean_relative_drop[s]
            if drop.mean_relative_drop is not None:
                drops.append([m.label, percent, s, f"{100 * drop.mean_relative_drop:+.2f}%", drop.targets])
        better = "higher" if m.greater_is_better else "lower"
        tables.append(_table(f"transfer_{m.label}_{percent[:-1]}".replace("/", "_").replace(" ", "_"),
                             f"Transfer at {percent}: {m.label} {m.metric}",
                             f"row = whose mask (task/language), column = the language it was fine-tuned and "
                             f"evaluated on; {better} is better; mean rel. = mean over other targets t of "
                             "(a(s,t) - a(t,t)) / a(t,t), a(t,t) = the target's own ticket.",
                             ["mask \\ target", *m.targets, "mean rel."], transfer_rows(m)))
        for c in m.cells:
            source_task, target_task = c.source.split("/")[0], c.target.split("/")[0]
            if "/" in c.source and source_task != target_task and c.diff_vs_own is not None:
                cross.setdefault((f"{source_task} -> {target_task}", percent, m.metric), []).append(c.diff_vs_own)
    if drops:
        tables.append(_table("transfer_mean_relative_drop", "Mean relative drop per source mask (paper Fig. 6)",
                             "how much worse (negative) or better a language's ticket does on the other languages "
                             "than their own tickets, on average; compare across sparsities.",
                             ["task", "sparsity", "mask", "mean rel.", "targets"], drops))
    if cross:
        tables.append(_table("cross_task", "Cross-task transfer (paper Fig. 9)",
                             "a ticket of one task fine-tuned on another task in the same language, minus that "
                             "task's own ticket, averaged over languages (same sign reading as the metric).",
                             ["mask task -> target task", "sparsity", "metric", "mean difference", "languages"],
                             [[k[0], k[1], k[2], f"{np.mean(v):+.4f}", len(v)] for k, v in sorted(cross.items())]))
    for p in sorted((out / "summary").glob("transfer_*.png")):
        figures.append(_figure(p, out, p.name, f"transfer matrix {p.stem[len('transfer_'):]}"))
    return _section("Transfer of tickets across languages (and tasks)", tables=tables, figures=figures)


def _pair_kind(result: SimilarityResult, pair: PairComparison) -> str:
    a, b = result.metadata_of(pair.a), result.metadata_of(pair.b)
    if a.get("task") != b.get("task"):
        return "other task"
    seed = "same seed" if a.get("seed") == b.get("seed") else "other seed"
    return f"{'same' if a.get('languages') == b.get('languages') else 'other'} language, {seed}"


def similarity_section(study: Study, out: Path) -> dict:
    """Fig. 3/4 style: the Jaccard matrix of one seed's tickets, and per-layer Jaccard by kind of pair."""
    tables, figures = [], []
    for run in (r for r in study.runs.values() if r.kind == "similarity"):
        result = _read(run.run_dir / SIMILARITY_FILE, read_similarity)
        if result is None:
            continue
        slug = run.id.removeprefix("similarity/").replace("/", "_").replace("+", "-")
        if run.id.endswith(f"/s{study.seeds[0]}"):
            labels = result.labels
            rows = [[label, *(format_number(v) for v in row)] for label, row in zip(labels, result.jaccard_matrix)]
            baseline = result.random_baseline_matrix[0][1] if len(labels) > 1 else None
            tables.append(_table(f"jaccard_{slug}", f"Jaccard similarity of tickets: {run.id}",
                                 f"share of kept weights two tickets have in common (1 = identical); independent "
                                 f"random masks would give {format_number(baseline)}.", ["mask", *labels], rows))
        by_kind: dict[str, dict[str, list[float]]] = {}
        random: dict[str, list[float]] = {}
        for pair in result.pairs:
            for layer, stats in pair.per_layer.items():
                by_kind.setdefault(_pair_kind(result, pair), {}).setdefault(layer, []).append(stats.jaccard)
                random.setdefault(layer, []).append(stats.random_baseline)
        kinds = sorted(by_kind)
        layers = list(next(iter(by_kind.values())).keys()) if by_kind else []
        rows = [[layer, *(format_number(np.mean(by_kind[k][layer])) if layer in by_kind[k] else "-" for k in kinds),
                 format_number(np.mean(random[layer]))] for layer in layers]
        tables.append(_table(f"jaccard_per_layer_{slug}", f"Per-layer Jaccard: {run.id}",
                             "mean Jaccard per layer over the pairs of each kind, beside independent random masks; "
                             "the paper finds NER > XNLI > MLM and (NER, XNLI) rising with depth.",
                             ["layer", *kinds, "random"], rows))
        figures.append(_figure(run.run_dir / "jaccard_heatmap.png", out, f"jaccard_heatmap_{slug}.png",
                               f"Jaccard of every pair of tickets ({run.id})"))
        if layers:
            from utils.analysis import plots

            series = [(kind, [float(np.mean(by_kind[kind][layer])) if layer in by_kind[kind] else None
                              for layer in layers], [float(np.mean(random[layer])) for layer in layers])
                      for kind in kinds]
            path = plots.per_layer_lines(layers, series, out / "figures" / f"jaccard_per_layer_{slug}.png",
                                         f"Per-layer Jaccard by kind of pair, mean over pairs ({run.id})")
            figures.append((f"figures/{path.name}", f"per-layer Jaccard by kind of pair ({run.id})"))
    return _section("Similarity of the tickets (paper Fig. 3/4)", tables=tables, figures=figures)


def zero_shot_section(summary: Summary, out: Path) -> dict:
    tables = []
    for z in summary.zero_shot:
        rows = [[r.label, *(format_number(r.values.get(lang), METRIC_DIGITS) for lang in z.languages)] for r in z.rows]
        tables.append(_table(f"zero_shot_{z.task}", f"Zero-shot evaluation: {z.task} {z.metric}",
                             "row = mask -> the language it was fine-tuned on @ sparsity; columns = every evaluation "
                             "language (the training language included).",
                             ["mask -> trained on", *z.languages], rows))
    figures = [_figure(p, out, p.name, f"zero-shot {p.stem[len('zero_shot_'):]}")
               for p in sorted((out / "summary").glob("zero_shot_*.png"))]
    return _section("Zero-shot evaluation", tables=tables, figures=figures)


def retrieval_section(study: Study, out: Path) -> dict:
    """Fig. 7 style: accuracy per layer of each pair, one column per mask setting; one figure per pair."""
    from utils.analysis import plots

    by_pair: dict[str, list[tuple[str, dict]]] = {}
    for run in (r for r in study.runs.values() if r.kind == "retrieval"):
        result = _read(run.run_dir / run.outputs[0])
        if result is not None:
            parts = run.id.split("/")  # retrieval/<task>/<p>/<pair>/s<seed> or retrieval/dense/<pair>
            label = "dense" if parts[1] == "dense" else f"{parts[1]} tickets @{parts[2]}%"
            by_pair.setdefault(f"{result['src_lang']}-{result['tgt_lang']}", []).append((label, result))
    tables, figures = [], []
    for pair, entries in sorted(by_pair.items()):
        layers = [row["layer"] for row in entries[0][1]["layers"]]
        rows = [[layer, *(format_number(next((r["accuracy"] for r in result["layers"] if r["layer"] == layer), None))
                          for _, result in entries)] for layer in layers]
        src, tgt = pair.split("-")
        tables.append(_table(f"retrieval_{pair}", f"Sentence retrieval {src} -> {tgt} per layer (paper Fig. 7)",
                             f"fraction of {entries[0][1]['pairs']} {src} sentences whose nearest {tgt} sentence "
                             "(margin kNN) is their translation, per hidden layer (0 = embeddings).",
                             ["layer", *(label for label, _ in entries)], rows))
        lines = [{"label": label, "x": layers, "y": [r["accuracy"] for r in result["layers"]]}
                 for label, result in entries]
        (out / "figures").mkdir(parents=True, exist_ok=True)
        path = plots.curves(lines, out / "figures" / f"retrieval_{pair}.png",
                            f"Parallel sentence retrieval {src} -> {tgt} per layer", "layer (0 = embeddings)",
                            "accuracy (margin kNN)", xticks=layers, ylim=(0.0, 1.02))
        figures.append((f"figures/{path.name}", f"retrieval {src} -> {tgt} per layer"))
    return _section("Parallel sentence retrieval per layer", tables=tables, figures=figures)


def neurons_section(study: Study, out: Path) -> dict:
    """language_neurons.py runs: LAPE neurons per language and layer, the ablation matrices, the overlap table with
    the masks the run read (a task's tickets, or the one-shot stage's masks)."""
    tables, texts = [], []
    for run in (r for r in study.runs.values() if r.kind == "neurons"):
        result = _read(run.run_dir / NEURONS_FILE, read_neurons)
        if result is None:
            continue
        slug = run.id.removeprefix("neurons/").replace("/", "_")
        masks = "one-shot mask" if any(study.runs[d].kind == "oneshot" for d in run.deps) else "ticket"
        texts.append(f"{run.id}: {result.selected} of {sum(result.neurons_per_layer):,} FFN neurons kept (filter "
                     f"p > {result.filter_threshold:.4f} in some language, bar p > {result.activation_bar:.4f}; "
                     f"tokens {', '.join(f'{k} {v:,}' for k, v in result.tokens.items())}).")
        tables.append(_table(f"neurons_{slug}", f"Language-specific neurons per layer: {run.id}",
                             "LAPE's neurons of each language in each FFN layer (a neuron may count for two "
                             "languages); docs/neurons.md.", ["language", *result.layers, "total"],
                             [[lang, *c, sum(c)] for lang, c in result.counts.items()]))
        tables += _ablation_tables(run.id, slug, result.ablation)
        if result.overlap:
            tables.append(_table(f"neurons_overlap_{slug}", f"Neurons in their language's sub-network: {run.id}",
                                 f"mean share of a neuron's down-projection weights that its language's {masks} "
                                 f"keeps and most other languages' {masks}s drop: LAPE neurons vs random neurons "
                                 "of the same layers (z, one-sided p).",
                                 ["language", "layer", "neurons", "LAPE", "random", "z", "p"],
                                 [[r.language, r.layer, r.neurons, f"{r.lape_mean:.4f}", f"{r.random_mean:.4f}",
                                   format_number(None if math.isnan(r.z) else r.z, 2), f"{r.p_high:.3f}"]
                                  for r in result.overlap]))
    return _section("Language-specific neurons (LAPE)", " ".join(texts), tables=tables)


def _ablation_tables(run_id: str, slug: str, ablation: Optional[AblationResult]) -> list[dict]:
    """One matrix per kind of deactivated set: deactivated language (rows) x eval language (columns)."""
    if ablation is None:
        return []
    evals = ablation.eval_languages
    dense = ", ".join(f"{e} {format_number(p, 2)}" for e, p in ablation.dense.items())
    return [_table(f"neurons_ablation_{slug}_{kind}", f"Perplexity change (%) with {kind} neurons deactivated: "
                   f"{run_id}", "rows: whose neurons (or a same-size baseline set per layer) are deactivated; "
                   f"columns: the held-out language; 100 x (ppl / dense ppl - 1); dense ppl {dense}.",
                   ["deactivated", *evals], [[row, *(f"{100 * cells[row][e]:+.2f}" for e in evals)] for row in cells])
            for kind, cells in ablation.relative.items()]


def oneshot_section(study: Study, out: Path) -> dict:
    """One-shot masks of a language model: the perplexity transfer matrix (utils.analysis.oneshot_transfer), each
    column's own-language advantage and leave-one-out majority, Jaccard per matrix type by kind of pair, each
    language's specific weights per layer and CKA between languages per layer, dense and under the masks."""
    from utils.analysis.oneshot_transfer import share_better, transfer_matrix

    tables = []
    for run in (r for r in study.runs.values() if r.kind == "perplexity"):
        result = _read(run.run_dir / run.outputs[0])
        if result is None:
            continue
        m = transfer_matrix(result)
        slug = run.id.replace("/", "_")
        rows = [[r.label, *(f"{format_number(r.perplexity[t], METRIC_DIGITS)} ({100 * r.increase[t]:+.0f}%)" if r.label != "dense"
                            else format_number(r.perplexity[t], METRIC_DIGITS) for t in m.languages)] for r in m.rows]
        tables.append(_table(slug, f"Perplexity transfer matrix ({run.id})",
                             "row = mask (method/calibration language; magnitude needs no text; method/majority_no_x "
                             "= majority of every other language's mask, re-pruned by |w|), column = held-out text "
                             "of that language; perplexity on the original weights under the mask, (relative "
                             f"increase over dense); {', '.join(f'{k} {v}' for k, v in result['windows'].items())} "
                             f"windows of {result['seq_len']} tokens.", ["mask \\ eval", *m.languages], rows))
        methods = list(dict.fromkeys(o.method for o in m.own))
        tables.append(_table(f"{slug}_own_language", f"Own-language advantage ({run.id})",
                             "per column t: increase under t's own mask, mean increase under the other languages' "
                             "masks, advantage = others - own (positive: calibrating on t helps t); leave-one-out = "
                             "increase on t under the majority of every other language's mask. Own no worse in "
                             + ", ".join(f"{100 * share_better([o for o in m.own if o.method == k]):.0f}% of columns "
                                         f"({k})" for k in methods) + ".",
                             ["method", "eval language", "own", "others (mean)", "advantage", "leave-one-out"],
                             [[o.method, o.language, f"{100 * o.own:+.1f}%", f"{100 * o.others:+.1f}%",
                               f"{100 * o.advantage:+.1f} pts",
                               "-" if o.leave_one_out is None else f"{100 * o.leave_one_out:+.1f}%"] for o in m.own]))
    for run in (r for r in study.runs.values() if r.kind == "similarity" and r.id.startswith("similarity/oneshot_")):
        result = _read(run.run_dir / SIMILARITY_FILE, read_similarity)
        if result is None:
            continue
        by_kind: dict[str, dict[str, list[float]]] = {}
        for pair in result.pairs:
            for group, stats in pair.per_matrix_type.items():
                by_kind.setdefault(group, {}).setdefault(_pair_kind(result, pair), []).append(stats.jaccard)
                by_kind[group].setdefault("random", []).append(stats.random_baseline)
        kinds = sorted({k for v in by_kind.values() for k in v if k != "random"}) + ["random"]
        slug = run.id.removeprefix("similarity/").replace("/", "_")
        tables.append(_table(f"jaccard_per_matrix_type_{slug}", f"Jaccard per matrix type: {run.id}",
                             "mean Jaccard of each kind of pair per matrix type, beside independent random masks.",
                             ["matrix type", *kinds], [[g, *(format_number(float(np.mean(v[k]))) if k in v else "-" for k in kinds)]
                                                       for g, v in by_kind.items()]))
        head = _read(run.run_dir / "head_similarity.json")
        if head is not None:
            specific = head["language_specific"]["per_layer"]
            layers = list(next(iter(specific.values())))
            tables.append(_table(f"language_specific_{slug}", f"Language-specific weights per layer: {run.id}",
                                 "share of a mask's kept weights that no other language's mask keeps, per layer "
                                 "(random: the same share for independent random masks of these densities).",
                                 ["layer", *specific, "random (first)"],
                                 [[layer, *(format_number(specific[k][layer]["share"]) for k in specific),
                                   format_number(next(iter(specific.values()))[layer]["random_baseline"])]
                                  for layer in layers]))
    cka: dict[str, list[tuple[str, dict]]] = {}
    for run in (r for r in study.runs.values() if r.kind == "representations"):
        result = _read(run.run_dir / run.outputs[0])
        if result is not None:
            label = "dense" if run.id.split("/")[1] == "dense" else "under masks"
            cka.setdefault(f"{result['src_lang']}-{result['tgt_lang']}", []).append((label, result))
    for pair, entries in sorted(cka.items()):
        layers = [row["layer"] for row in entries[0][1]["comparisons"][0]["layers"]]
        cell = lambda res, i, key: format_number(res["comparisons"][0]["layers"][i][key])  # noqa: E731
        tables.append(_table(f"cka_{pair}", f"Linear CKA per layer {pair}",
                             "linear CKA between the two languages' held-out aligned sentences (mean pooling), each "
                             "side under its own language's mask or dense; [shuffled pairs] = unrelated sentences.",
                             ["layer", *(label for label, _ in entries)],
                             [[layer, *(f"{cell(r, i, 'cka')} [{cell(r, i, 'cka_shuffled')}]" for _, r in entries)]
                              for i, layer in enumerate(layers)]))
    return _section("One-shot masks of a language model", tables=tables)


def status_section(outcomes: dict) -> dict:
    rows = [[o.id, o.status, o.detail, o.log or ""] for o in outcomes.values() if o.status in ("failed", "skipped")]
    counts = {s: sum(o.status == s for o in outcomes.values()) for s in ("ok", "complete", "failed", "skipped")}
    text = (f"{len(outcomes)} runs: {counts['ok'] + counts['complete']} complete, {counts['failed']} failed, "
            f"{counts['skipped']} skipped because an input failed.")
    tables = [_table("runs_not_complete", "Runs that failed or were skipped",
                     "the last line of a failed run's log, and where the log is; re-run the study to retry them.",
                     ["run", "status", "why", "log"], rows)] if rows else []
    return _section("Runs", text=text, tables=tables)


# ---------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------


def _md_table(table: dict) -> list[str]:
    cell = lambda v: str(v).replace("|", "\\|")  # noqa: E731
    lines = [f"**{table['title']}.** {table['guide']}", "", "| " + " | ".join(map(cell, table["header"])) + " |",
             "|" + "|".join("---" for _ in table["header"]) + "|"]
    return lines + ["| " + " | ".join(map(cell, row)) + " |" for row in table["rows"]] + [""]


def to_markdown(title: str, sections: list[dict]) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section['title']}", ""]
        if section["text"]:
            lines += [section["text"], ""]
        for table in section["tables"]:
            lines += _md_table(table)
        lines += [f"![{caption}]({path})" for path, caption in section["figures"]] + [""]
    return "\n".join(lines)


def to_html(title: str, sections: list[dict]) -> str:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>"
             "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;margin:6px 0}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child{text-align:left}"
             "img{max-width:100%}</style></head><body>", f"<h1>{e(title)}</h1>"]
    for section in sections:
        parts.append(f"<h2>{e(section['title'])}</h2>")
        if section["text"]:
            parts.append(f"<p>{e(section['text'])}</p>")
        for t in section["tables"]:
            parts.append(f"<p><b>{e(t['title'])}.</b> {e(t['guide'])}</p><table><tr>"
                         + "".join(f"<th>{e(str(h))}</th>" for h in t["header"]) + "</tr>"
                         + "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>"
                                   for row in t["rows"]) + "</table>")
        parts += [f"<figure><img src='{e(path)}'><figcaption>{e(caption)}</figcaption></figure>"
                  for path, caption in section["figures"]]
    return "\n".join(parts + ["</body></html>"])


KEY_TABLES = ("imp_tickets", "transfer_", "cross_task", "jaccard_", "perplexity_")


def key_tables(sections: list[dict]) -> str:
    """The tables a study prints at its end: tickets, transfer matrices, cross-task, the first seed's Jaccard."""
    blocks = []
    for section in sections:
        for table in section["tables"]:
            name = table["name"]
            if name.startswith(KEY_TABLES) and "per_layer" not in name and "mean_relative" not in name:
                blocks.append(f"{table['title']}\n{text_table(table['header'], table['rows'])}")
    return "\n\n".join(blocks)


def _remove_stale(out: Path, written: set[str]) -> None:
    """Tables and figures of an earlier report that this one did not write (runs no longer planned) go."""
    for folder, pattern in (("tables", "*.csv"), ("figures", "*.png")):
        for path in (out / folder).glob(pattern):
            if f"{folder}/{path.name}" not in written:
                path.unlink()


def write_report(study: Study, outcomes: dict) -> list[dict]:
    """Write the report from whatever analyses completed; returns its sections."""
    out = study.study_dir
    summary = _read(out / "summary" / SUMMARY_FILE, read_summary)
    sections = [status_section(outcomes)]
    if summary is not None:
        sections += [tickets_section(summary, out), transfer_section(summary, out), zero_shot_section(summary, out)]
    elif "summary" in study.runs:
        sections.append(_section("Results", "no summary: the summarize_results.py run did not complete."))
    sections += [similarity_section(study, out), retrieval_section(study, out), neurons_section(study, out),
                 oneshot_section(study, out)]
    for section in sections:
        section["figures"] = [f for f in section["figures"] if f is not None]
    sections = [s for s in sections if s["text"] or s["tables"] or s["figures"]]
    title = f"Study {study.name}"
    written = {f"figures/{Path(path).name}" for section in sections for path, _ in section["figures"]}
    for section in sections:
        for table in section["tables"]:
            write_text(out / "tables" / f"{table['name']}.csv", csv_text(table["header"], table["rows"]))
            written.add(f"tables/{table['name']}.csv")
    _remove_stale(out, written)
    write_json(out / "report.json", {"title": title, "study": study.path, "sections": sections})
    write_text(out / "report.md", to_markdown(title, sections))
    write_text(out / "report.html", to_html(title, sections))
    return sections
