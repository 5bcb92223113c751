"""mask_similarity.py's files, figures and printed tables, from the typed results of similarity.py and
head_similarity.py (which compute and write nothing)."""
from __future__ import annotations

import re
from pathlib import Path

from utils.core.masks import layer_sort_key
from utils.analysis.head_similarity import FFN, HeadResult
from utils.analysis.similarity import SimilarityResult
from utils.analysis.writers import format_number, from_json, to_json, write_csv
from utils.infra.io import read_json, write_json

MAX_PRINTED_MISMATCHES = 20
SIMILARITY_FILE = "mask_similarity.json"  # the completion file, written last
_PAIR_COLUMNS = ("jaccard", "random_baseline", "ratio", "intersection", "union", "kept_a", "kept_b", "weights",
                 "density_a", "density_b")
_OVERLAP_COLUMNS = ("overlap", "random_baseline", "ratio", "kept_in_all", "kept_in_any", "weights")


def write_similarity_tables(result: SimilarityResult, out: Path) -> list[Path]:
    """mask_similarity_pairs.csv, mask_overlap.csv and jaccard_matrix.csv."""
    rows = []
    for pair in result.pairs:
        rows.append([pair.a, pair.b, "overall", "all", *(getattr(pair.overall, c) for c in _PAIR_COLUMNS)])
        for scope, name in ((pair.per_layer, "layer"), (pair.per_matrix_type, "matrix_type")):
            rows += [[pair.a, pair.b, name, group, *(getattr(stats, c) for c in _PAIR_COLUMNS)]
                     for group, stats in scope.items()]
    overlap = result.overlap
    overlap_rows = [["overall", "all", *(getattr(overlap.overall, c) for c in _OVERLAP_COLUMNS)]] \
        if overlap.overall else []
    overlap_rows += [["layer", g, *(getattr(s, c) for c in _OVERLAP_COLUMNS)] for g, s in overlap.per_layer.items()]
    labels = result.labels
    return [
        write_csv(out / "mask_similarity_pairs.csv", ("mask_a", "mask_b", "scope", "group", *_PAIR_COLUMNS), rows),
        write_csv(out / "mask_overlap.csv", ("scope", "group", *_OVERLAP_COLUMNS), overlap_rows),
        write_csv(out / "jaccard_matrix.csv", ("mask", *labels),
                  ([label, *row] for label, row in zip(labels, result.jaccard_matrix))),
    ]


def write_similarity_json(result: SimilarityResult, path: Path) -> None:
    write_json(path, to_json(result))


def read_similarity(path: str | Path) -> SimilarityResult:
    return from_json(SimilarityResult, read_json(path))


def plot_similarity(result: SimilarityResult, out: Path) -> list[Path]:
    """jaccard_heatmap.png and jaccard_per_layer.png."""
    from utils.analysis import plots

    labels = result.labels
    subtext = [[None if b is None or i == j else f"rand {b:.2f}" for j, b in enumerate(row)]
               for i, row in enumerate(result.random_baseline_matrix)]
    heatmap = plots.heatmap(
        result.jaccard_matrix, labels, labels, out / "jaccard_heatmap.png",
        "Jaccard similarity of kept weights (overall)\nrand: expected for independent random masks of these sparsities",
        fmt="{:.3f}", subtext=subtext, cmap="viridis", colorbar_label="Jaccard",
    )
    layers: list[str] = sorted({g for p in result.pairs for g in p.per_layer}, key=layer_sort_key)
    series = []
    for pair in result.pairs:
        per = pair.per_layer
        series.append((f"{pair.a} vs {pair.b}", [per[g].jaccard if g in per else None for g in layers],
                       [per[g].random_baseline if g in per else None for g in layers]))
    lines = plots.per_layer_lines(layers, series, out / "jaccard_per_layer.png",
                                  "Jaccard similarity of kept weights per layer (dashed: random masks)")
    return [heatmap, lines]


def format_similarity(result: SimilarityResult) -> str:
    """A compact text table: one row per pair (overall Jaccard, random baseline, ratio), then the N-way overlap."""
    width = max([len("pair")] + [len(f"{p.a} vs {p.b}") for p in result.pairs])
    lines = [f"{'pair':<{width}}  {'jaccard':>7}  {'random':>6}  {'ratio':>5}  {'weights compared':>16}"]
    for pair in result.pairs:
        o = pair.overall
        lines.append(f"{pair.a + ' vs ' + pair.b:<{width}}  {format_number(o.jaccard):>7}  "
                     f"{format_number(o.random_baseline):>6}  {format_number(o.ratio, 2):>5}  {o.weights:>16,}")
    overlap = result.overlap
    if overlap.overall:
        o = overlap.overall
        lines.append(f"kept in all {len(overlap.masks)} / kept in any: {format_number(o.overlap)} "
                     f"(random {format_number(o.random_baseline)}, ratio {format_number(o.ratio, 2)})")
        cells = [f"{g} {format_number(s.overlap, 2)}" for g, s in overlap.per_layer.items()]
        if len(cells) > 1:  # six layers a line
            for start in range(0, len(cells), 6):
                lines.append(("  per layer: " if start == 0 else " " * 13) + "  ".join(cells[start: start + 6]))
    mismatches = result.mismatches
    if mismatches:
        lines.append(f"{len(mismatches)} mismatch(es) between the masks:")
        lines += [f"  {line}" for line in mismatches[:MAX_PRINTED_MISMATCHES]]
        if len(mismatches) > MAX_PRINTED_MISMATCHES:
            lines.append(f"  ... {len(mismatches) - MAX_PRINTED_MISMATCHES} more in {SIMILARITY_FILE}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# --by head
# ---------------------------------------------------------------------------------------------------------------


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", label.replace("%", "pct")).strip("_")


_STATS = ("jaccard", "random_baseline", "ratio", "intersection", "union", "kept_a", "kept_b", "weights")
_SPECIFIC = ("share", "random_baseline", "ratio", "specific", "kept", "weights")


def write_head_outputs(result: HeadResult, out: Path, plots: bool = True) -> list[Path]:
    """head_similarity.json, head_jaccard.csv, language_specific.csv, and the PNGs."""
    write_json(out / "head_similarity.json", to_json(result))
    rows = [[p.a, p.b, block, unit, *(getattr(stats, c) for c in _STATS)]
            for p in result.pairs for block, cells in p.cells.items() for unit, stats in cells.items()]
    written = [out / "head_similarity.json",
               write_csv(out / "head_jaccard.csv", ("mask_a", "mask_b", "block", "unit", *_STATS), rows)]
    specific = result.language_specific
    rows = [[label, "overall", "all", *(getattr(s, c) for c in _SPECIFIC)] for label, s in specific.overall.items()]
    for scope, per_mask in (("layer", specific.per_layer), ("matrix_type", specific.per_matrix_type)):
        rows += [[label, scope, group, *(getattr(s, c) for c in _SPECIFIC)]
                 for label, groups in per_mask.items() for group, s in groups.items()]
    written.append(write_csv(out / "language_specific.csv", ("mask", "scope", "group", *_SPECIFIC), rows))
    if plots:
        written += plot_heads(result, out)
    return written


def plot_heads(result: HeadResult, out: Path) -> list[Path]:
    from utils.analysis import plots

    written = []
    blocks, units = result.blocks, result.units
    for pair in result.pairs:
        cells = pair.cells
        values = [[cells[b][u].jaccard if u in cells[b] else None for u in units] for b in blocks]
        bases = [cells[b][u].random_baseline for b in blocks for u in units if u in cells[b]]
        small = len(blocks) * len(units) <= 100
        subtext = [[f"rand {cells[b][u].random_baseline:.2f}" if u in cells[b] else None
                    for u in units] for b in blocks] if small else None
        title = (f"Jaccard of kept weights per attention head (Q, K, V rows + attention-output columns) and FFN\n"
                 f"{pair.a} vs {pair.b}; independent random masks: "
                 f"{min(bases):.2f}-{max(bases):.2f}" + (" (small text)" if small else ""))
        path = out / f"head_jaccard_{_slug(pair.a)}_vs_{_slug(pair.b)}.png"
        written.append(plots.heatmap(values, blocks, units, path, title, fmt="{:.2f}", subtext=subtext,
                                     colorbar_label="Jaccard", xlabel="attention head / FFN block",
                                     ylabel="layer"))
    specific = result.language_specific
    layers = sorted({g for groups in specific.per_layer.values() for g in groups}, key=layer_sort_key)
    series = [(label, [groups[g].share for g in layers], [groups[g].random_baseline for g in layers])
              for label, groups in specific.per_layer.items()]
    written.append(plots.per_layer_lines(
        layers, series, out / "language_specific_per_layer.png",
        "Share of each mask's kept weights that no other mask keeps, per layer",
        ylabel="language-specific share of kept weights"))
    types = list(next(iter(specific.per_matrix_type.values())))
    values = [[groups[t].share for t in types] for groups in specific.per_matrix_type.values()]
    subtext = [[f"rand {groups[t].random_baseline:.2f}" for t in types]
               for groups in specific.per_matrix_type.values()]
    written.append(plots.heatmap(
        values, specific.masks, types, out / "language_specific_per_matrix_type.png",
        "Share of each mask's kept weights that no other mask keeps\n(small: independent random masks)",
        fmt="{:.3f}", subtext=subtext, cmap="magma", colorbar_label="language-specific share",
        xlabel="matrix type", ylabel="mask"))
    return written


def format_head_summary(result: HeadResult) -> str:
    lines = [f"\nper attention head ({result.num_heads} a block, from {result.heads_from}) and FFN block: Jaccard"]
    for pair in result.pairs:
        cells = [(b, u, s) for b, units in pair.cells.items() for u, s in units.items() if s.jaccard is not None]
        head_cells = [c for c in cells if c[1] != FFN]
        ffn = [s.jaccard for _, u, s in cells if u == FFN]
        bases = [s.random_baseline for _, _, s in cells]
        low, high = min(head_cells, key=lambda c: c[2].jaccard), max(head_cells, key=lambda c: c[2].jaccard)
        lines.append(f"{pair.a} vs {pair.b}: heads {format_number(low[2].jaccard)} ({low[0]} {low[1]}) to "
                     f"{format_number(high[2].jaccard)} ({high[0]} {high[1]})"
                     + (f", FFN {format_number(min(ffn))} to {format_number(max(ffn))}" if ffn else "")
                     + f"; random {format_number(min(bases))} to {format_number(max(bases))}")
    specific = result.language_specific
    layers = list(next(iter(specific.per_layer.values())))
    width = max(len("mask"), *(len(label) for label in specific.masks))
    lines.append("language-specific weights: share of a mask's kept weights no other mask keeps [random]")
    lines.append(f"{'mask':<{width}}  {'overall':>15}" + "".join(f"  {g:>15}" for g in layers))
    for label in specific.masks:
        cells = [specific.overall[label]] + [specific.per_layer[label][g] for g in layers]
        lines.append(f"{label:<{width}}" + "".join(
            f"  {format_number(c.share) + ' [' + format_number(c.random_baseline) + ']':>15}" for c in cells))
    return "\n".join(lines)
