"""How alike are sub-networks? Jaccard similarity of the weights that masks keep, against a random-mask baseline.

Jaccard(A, B) = |kept in both| / |kept in either|. Two independent random masks with kept fractions p and q have
expected Jaccard pq / (p + q - pq) (1/3 at 50% sparsity), so every figure is reported beside that baseline and
their ratio. The baseline uses the densities of the group being compared (a layer's own densities for per-layer
figures), so a layer that IMP pruned harder is judged against the right chance level.

Speed: each mask is loaded once and packed to bits (one uint64 buffer, each matrix padded to a 64-bit boundary);
a pair's intersection per matrix is one AND + popcount over ~10 MB for mBERT, summed per matrix with reduceat.
Union counts come from |A| + |B| - |A and B|, so only intersections are counted.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from utils.infra.errors import UserError
from utils.infra.io import atomic_write, write_json
from utils.core.masks import Mask, layer_of, layer_sort_key, matrix_type, read_mask_metadata, source_name
from utils.infra.outputs import ANALYSIS_OUTPUTS, prepare_analysis_dir, remove_unwritten
from utils.infra.progress import progress_bar

MAX_PRINTED_MISMATCHES = 20


@dataclass
class SimilarityArguments:
    """mask_similarity.py's flags."""

    masks: list[str] = field(metadata={"help": "Two or more mask .pt files (bool, packed or the original's format)."})
    output_dir: str = field(metadata={"help": "Where the JSON, CSV and PNG files go."})
    labels: Optional[list[str]] = field(
        default=None, metadata={"help": "One label per mask (default: task/language/sparsity from its metadata)."}
    )
    no_plots: bool = field(default=False, metadata={"help": "Skip the PNG figures."})
    by: str = field(
        default="layer", metadata={"help": "layer: overall, per layer and per matrix type; head: also per attention "
                                           "head and FFN block, and each mask's language-specific weights.",
                                   "choices": ["layer", "head"]}
    )
    num_heads: Optional[int] = field(
        default=None, metadata={"help": "--by head: attention heads per layer (default: from the model's config)."}
    )
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "--by head: the model whose config gives the heads (default: the masks' "
                                        "metadata)."}
    )
    clear_output_dir: bool = field(
        default=False, metadata={"help": "Delete another analysis' outputs found in --output_dir (else: refused)."}
    )


# ---------------------------------------------------------------------------------------------------------------
# Packed masks
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class PackedMask:
    """A mask as one uint64 bit buffer: matrix `names[i]` occupies words `starts[i]:starts[i+1]`."""

    label: str
    path: str
    names: list[str]
    shapes: list[tuple[int, ...]]
    words: np.ndarray  # uint64
    starts: np.ndarray  # int64, len(names) + 1
    kept: np.ndarray  # int64 per matrix
    numel: np.ndarray  # int64 per matrix
    metadata: dict = field(default_factory=dict)

    @property
    def layout(self) -> tuple:
        return tuple(zip(self.names, self.shapes))

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def matrix_words(self, i: int) -> np.ndarray:
        return self.words[self.starts[i]: self.starts[i + 1]]

    def matrix(self, i: int) -> np.ndarray:
        """Matrix i unpacked to a bool array of its shape."""
        bits = np.unpackbits(self.matrix_words(i).view(np.uint8), count=int(self.numel[i]))
        return bits.astype(bool).reshape(self.shapes[i])

    @property
    def sparsity(self) -> float:
        total = int(self.numel.sum())
        return 1.0 - int(self.kept.sum()) / total if total else 0.0


def pack_mask(mask: Mask, label: str = "", path: str = "", metadata: Optional[dict] = None) -> PackedMask:
    """Pack a Mask's bool tensors into bits (padding bits are zero, so they never count as kept)."""
    names = list(mask)
    shapes = [tuple(mask[n].shape) for n in names]
    numel = np.array([int(np.prod(s)) if s else 1 for s in shapes], dtype=np.int64)
    nwords = (numel + 63) // 64
    starts = np.zeros(len(names) + 1, dtype=np.int64)
    np.cumsum(nwords, out=starts[1:])
    words = np.zeros(int(starts[-1]), dtype=np.uint64)
    as_bytes = words.view(np.uint8)
    for i, name in enumerate(names):
        bits = np.packbits(mask[name].numpy().ravel())
        begin = int(starts[i]) * 8
        as_bytes[begin: begin + bits.size] = bits
    kept = _sum_per_matrix(np.bitwise_count(words), starts)
    return PackedMask(label, path, names, shapes, words, starts, kept, numel, dict(metadata or {}))


def _sum_per_matrix(counts: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum popcounts over each matrix's word range (empty ranges give 0)."""
    if counts.size == 0:
        return np.zeros(len(starts) - 1, dtype=np.int64)
    sums = np.add.reduceat(counts, np.minimum(starts[:-1], counts.size - 1), dtype=np.int64)
    sums[starts[1:] == starts[:-1]] = 0
    return sums


def load_packed(path: str | Path, label: str = "") -> PackedMask:
    """Load a mask file once and pack it; the bool tensors are dropped right away to keep memory low."""
    mask = Mask.load(path)
    if not mask:
        raise UserError(f"{path} holds an empty mask")
    return pack_mask(mask, label, str(path), read_mask_metadata(path))


# ---------------------------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------------------------


def default_label(path: str | Path, metadata: dict) -> str:
    """'ner/en/50%' from the mask's metadata; the file name when there is none."""
    sparsity = metadata.get("sparsity")
    label = source_name(metadata)
    if label:
        if isinstance(sparsity, (int, float)):
            label += f"/{format(round(100 * sparsity, 1), 'g')}%"
        return label
    return Path(path).stem


def unique_labels(paths: Sequence[str | Path], metadatas: Sequence[dict]) -> list[str]:
    """Default labels, made distinct: first by the seed (same ticket, other seeds), then by parent folders."""
    labels = [default_label(p, m) for p, m in zip(paths, metadatas)]
    for group in _duplicate_groups(labels):
        seeds = [metadatas[i].get("seed") for i in group]
        if None not in seeds and len(set(map(str, seeds))) == len(seeds):
            for i, seed in zip(group, seeds):
                labels[i] += f"/s{seed}"
    for group in _duplicate_groups(labels):  # then by the nearest folder that tells them apart
        parents = [Path(paths[i]).resolve().parents for i in group]
        for depth in range(min(len(p) for p in parents)):
            names = [p[depth].name for p in parents]
            if len(set(names)) == len(names):
                for i, name in zip(group, names):
                    labels[i] = f"{name}/{labels[i]}"
                break
    for group in _duplicate_groups(labels):
        for i in group:
            labels[i] += f"#{i + 1}"
    return labels


def _duplicate_groups(labels: Sequence[str]) -> list[list[int]]:
    seen: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        seen.setdefault(label, []).append(i)
    return [group for group in seen.values() if len(group) > 1]


# ---------------------------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------------------------


def random_jaccard(p: float, q: float) -> Optional[float]:
    """Expected Jaccard of two independent random masks keeping fractions p and q: pq / (p + q - pq)."""
    union = p + q - p * q
    return p * q / union if union > 0 else None


def random_overlap(densities: Sequence[float]) -> Optional[float]:
    """Expected |kept in all| / |kept in any| of independent random masks: prod p / (1 - prod (1 - p))."""
    any_kept = 1.0 - float(np.prod([1.0 - p for p in densities]))
    return float(np.prod(densities)) / any_kept if any_kept > 0 else None


def pair_stats(inter: int, kept_a: int, kept_b: int, weights: int) -> dict:
    union = kept_a + kept_b - inter
    jaccard = inter / union if union else None
    p = kept_a / weights if weights else 0.0
    q = kept_b / weights if weights else 0.0
    baseline = random_jaccard(p, q)
    return {
        "jaccard": jaccard,
        "random_baseline": baseline,
        "ratio": jaccard / baseline if jaccard is not None and baseline else None,
        "intersection": int(inter),
        "union": int(union),
        "kept_a": int(kept_a),
        "kept_b": int(kept_b),
        "weights": int(weights),
        "density_a": p,
        "density_b": q,
    }


def _grouped(names: Sequence[str], key) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(key(name), []).append(i)
    return groups


def _shared(a: PackedMask, b: PackedMask) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names both masks hold with the same shape, and their matrix indices in a and in b."""
    if a.layout == b.layout:
        idx = np.arange(len(a.names))
        return list(a.names), idx, idx
    b_index = b.index()
    names, ia, ib = [], [], []
    for i, name in enumerate(a.names):
        j = b_index.get(name)
        if j is not None and a.shapes[i] == b.shapes[j]:
            names.append(name)
            ia.append(i)
            ib.append(j)
    return names, np.array(ia, dtype=np.int64), np.array(ib, dtype=np.int64)


def pair_intersections(
    a: PackedMask, b: PackedMask
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(shared names, |A and B|, |A|, |B|, size) per shared matrix."""
    names, ia, ib = _shared(a, b)
    if a.layout == b.layout:
        inter = _sum_per_matrix(np.bitwise_count(np.bitwise_and(a.words, b.words)), a.starts)
    else:
        inter = np.array(
            [int(np.bitwise_count(a.matrix_words(i) & b.matrix_words(j)).sum(dtype=np.int64)) for i, j in zip(ia, ib)],
            dtype=np.int64,
        )
    return names, inter, a.kept[ia], b.kept[ib], a.numel[ia]


def compare_pair(a: PackedMask, b: PackedMask) -> dict:
    """Overall, per-layer and per-matrix-type Jaccard of two masks over the weights they share."""
    names, inter, ka, kb, size = pair_intersections(a, b)
    result = {"a": a.label, "b": b.label, "shared_matrices": len(names)}
    result["overall"] = pair_stats(int(inter.sum()), int(ka.sum()), int(kb.sum()), int(size.sum()))
    for scope, key, order in (("per_layer", layer_of, layer_sort_key), ("per_matrix_type", matrix_type, None)):
        groups = _grouped(names, key)
        keys = sorted(groups, key=order) if order else list(groups)
        result[scope] = {
            g: pair_stats(int(inter[groups[g]].sum()), int(ka[groups[g]].sum()), int(kb[groups[g]].sum()),
                           int(size[groups[g]].sum()))
            for g in keys
        }
    return result


def common_layout(masks: Sequence[PackedMask]) -> list[tuple[str, list[int]]]:
    """(name, index in each mask) for every matrix all masks hold with one shape."""
    return aligned_matrices([m.layout for m in masks])


def aligned_matrices(layouts: Sequence[Sequence[tuple[str, tuple[int, ...]]]]) -> list[tuple[str, list[int]]]:
    """(name, index in each layout) for every matrix that all layouts ((name, shape) lists) hold with one shape,
    in the first layout's order."""
    indexes = [{name: i for i, (name, _) in enumerate(layout)} for layout in layouts]
    common = []
    for name, shape in layouts[0]:
        where = [idx.get(name) for idx in indexes]
        if all(j is not None for j in where) and all(tuple(layout[j][1]) == tuple(shape)
                                                      for layout, j in zip(layouts, where)):
            common.append((name, where))
    return common


def nway_overlap(masks: Sequence[PackedMask]) -> dict:
    """|kept in all| / |kept in any| overall and per layer, over the matrices every mask holds."""
    common = common_layout(masks)
    names = [name for name, _ in common]
    all_kept = np.zeros(len(common), dtype=np.int64)
    any_kept = np.zeros(len(common), dtype=np.int64)
    size = np.zeros(len(common), dtype=np.int64)
    kept = np.zeros((len(masks), len(common)), dtype=np.int64)
    for c, (_, where) in enumerate(common):
        first = masks[0].matrix_words(where[0])
        both, either = first.copy(), first.copy()
        for m, j in zip(masks[1:], where[1:]):
            words = m.matrix_words(j)
            np.bitwise_and(both, words, out=both)
            np.bitwise_or(either, words, out=either)
        all_kept[c] = int(np.bitwise_count(both).sum(dtype=np.int64))
        any_kept[c] = int(np.bitwise_count(either).sum(dtype=np.int64))
        size[c] = masks[0].numel[where[0]]
        kept[:, c] = [m.kept[j] for m, j in zip(masks, where)]

    def stats(idx) -> dict:
        weights = int(size[idx].sum())
        densities = [int(k) / weights if weights else 0.0 for k in kept[:, idx].sum(axis=1)]
        a, e = int(all_kept[idx].sum()), int(any_kept[idx].sum())
        overlap = a / e if e else None
        baseline = random_overlap(densities)
        return {"overlap": overlap, "random_baseline": baseline,
                "ratio": overlap / baseline if overlap is not None and baseline else None,
                "kept_in_all": a, "kept_in_any": e, "weights": weights}

    groups = _grouped(names, layer_of)
    return {
        "masks": [m.label for m in masks],
        "matrices": len(names),
        "overall": stats(list(range(len(names)))) if names else None,
        "per_layer": {g: stats(groups[g]) for g in sorted(groups, key=layer_sort_key)},
    }


def mismatch_lines(masks: Sequence[PackedMask]) -> list[str]:
    """One line per matrix that not every mask holds with the same shape (those weights are compared pairwise
    only where both masks hold them)."""
    where: dict[str, list[tuple[int, tuple]]] = {}
    for k, m in enumerate(masks):
        for name, shape in zip(m.names, m.shapes):
            where.setdefault(name, []).append((k, shape))
    lines = []
    for name, holders in where.items():
        holder_ids = [k for k, _ in holders]
        shapes = {shape for _, shape in holders}
        if len(holders) < len(masks):
            missing = [masks[k].label for k in range(len(masks)) if k not in holder_ids]
            lines.append(f"{name}: only in {', '.join(masks[k].label for k in holder_ids)} "
                         f"(missing from {', '.join(missing)}); compared only where present")
        if len(shapes) > 1:
            by_shape = "; ".join(f"{masks[k].label} {tuple(shape)}" for k, shape in holders)
            lines.append(f"{name}: shapes differ ({by_shape}); not compared between masks of different shapes")
    return lines


# ---------------------------------------------------------------------------------------------------------------
# The whole comparison, its files and its summary
# ---------------------------------------------------------------------------------------------------------------


def compare_masks(masks: Sequence[PackedMask]) -> dict:
    """Every pair, the N-way overlap, and the mismatches, as one JSON-ready dict."""
    if len(masks) < 2:
        raise UserError(f"need at least 2 masks to compare, got {len(masks)}")
    pairs = [compare_pair(a, b) for a, b in progress_bar(list(combinations(masks, 2)), desc="mask pairs", unit="pair")]
    if all(p["shared_matrices"] == 0 for p in pairs):
        raise UserError("the masks share no weight matrix (same name and shape): are they masks of different models?")
    labels = [m.label for m in masks]
    matrix: list[list[Optional[float]]] = [[None] * len(masks) for _ in masks]
    baseline: list[list[Optional[float]]] = [[None] * len(masks) for _ in masks]
    for i, m in enumerate(masks):
        matrix[i][i] = 1.0 if m.kept.sum() else None
        density = 1.0 - m.sparsity
        baseline[i][i] = random_jaccard(density, density)
    for pair in pairs:
        i, j = labels.index(pair["a"]), labels.index(pair["b"])
        matrix[i][j] = matrix[j][i] = pair["overall"]["jaccard"]
        baseline[i][j] = baseline[j][i] = pair["overall"]["random_baseline"]
    return {
        "masks": [
            {"label": m.label, "path": m.path, "sparsity": m.sparsity, "weights": int(m.numel.sum()),
             "matrices": len(m.names), "metadata": {k: v for k, v in m.metadata.items() if k != "per_layer_sparsity"}}
            for m in masks
        ],
        "labels": labels,
        "jaccard_matrix": matrix,
        "random_baseline_matrix": baseline,
        "pairs": pairs,
        "overlap": nway_overlap(masks),
        "mismatches": mismatch_lines(masks),
    }


def load_and_compare(paths: Sequence[str | Path], labels: Optional[Sequence[str]] = None) -> dict:
    """Check the inputs, load each mask once, compare them all."""
    return compare_masks(load_all(paths, labels))


def load_all(paths: Sequence[str | Path], labels: Optional[Sequence[str]] = None) -> list[PackedMask]:
    """Check the paths and labels, then load and pack each mask once."""
    paths = [str(p) for p in paths]
    if len(paths) < 2:
        raise UserError(f"need at least 2 masks to compare, got {len(paths)}")
    if labels is not None:
        if len(labels) != len(paths):
            raise UserError(f"got {len(labels)} labels for {len(paths)} masks: give one label per mask")
        if len(set(labels)) != len(labels):
            raise UserError(f"labels must be distinct: {', '.join(sorted({l for l in labels if labels.count(l) > 1}))}")
    for path in paths:
        if not Path(path).is_file():
            raise UserError(f"mask file not found: {path}")
    if labels is None:
        labels = unique_labels(paths, [read_mask_metadata(p) for p in paths])
    named = progress_bar(list(zip(paths, labels)), desc="loading masks", unit="mask")
    return [load_packed(p, label) for p, label in named]


def csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in row])
    return buffer.getvalue()


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


_PAIR_COLUMNS = ("jaccard", "random_baseline", "ratio", "intersection", "union", "kept_a", "kept_b", "weights",
                 "density_a", "density_b")


def write_outputs(result: dict, output_dir: str | Path, plots: bool = True) -> list[Path]:
    """mask_similarity.json, three CSVs and (unless plots=False) the heatmap and per-layer PNGs."""
    out = Path(output_dir)
    written = [out / "mask_similarity.json"]
    write_json(written[0], result)
    rows = []
    for pair in result["pairs"]:
        rows.append([pair["a"], pair["b"], "overall", "all", *(pair["overall"][c] for c in _PAIR_COLUMNS)])
        for scope, name in (("per_layer", "layer"), ("per_matrix_type", "matrix_type")):
            for group, stats in pair[scope].items():
                rows.append([pair["a"], pair["b"], name, group, *(stats[c] for c in _PAIR_COLUMNS)])
    header = ("mask_a", "mask_b", "scope", "group", *_PAIR_COLUMNS)
    write_text(out / "mask_similarity_pairs.csv", csv_text(header, rows))
    overlap = result["overlap"]
    overlap_rows = []
    if overlap["overall"]:
        overlap_rows.append(["overall", "all", *(overlap["overall"][c] for c in _OVERLAP_COLUMNS)])
    overlap_rows += [["layer", g, *(s[c] for c in _OVERLAP_COLUMNS)] for g, s in overlap["per_layer"].items()]
    write_text(out / "mask_overlap.csv", csv_text(("scope", "group", *_OVERLAP_COLUMNS), overlap_rows))
    labels = result["labels"]
    write_text(out / "jaccard_matrix.csv",
               csv_text(("mask", *labels), ([label, *row] for label, row in zip(labels, result["jaccard_matrix"]))))
    written += [out / "mask_similarity_pairs.csv", out / "mask_overlap.csv", out / "jaccard_matrix.csv"]
    if plots:
        written += plot_similarity(result, out)
    return written


_OVERLAP_COLUMNS = ("overlap", "random_baseline", "ratio", "kept_in_all", "kept_in_any", "weights")


def plot_similarity(result: dict, out: Path) -> list[Path]:
    from utils.analysis import plots

    labels = result["labels"]
    subtext = [[None if b is None or i == j else f"rand {b:.2f}" for j, b in enumerate(row)]
               for i, row in enumerate(result["random_baseline_matrix"])]
    heatmap = plots.heatmap(
        result["jaccard_matrix"], labels, labels, out / "jaccard_heatmap.png",
        "Jaccard similarity of kept weights (overall)\nrand: expected for independent random masks of these sparsities",
        fmt="{:.3f}", subtext=subtext, cmap="viridis", colorbar_label="Jaccard",
    )
    layers: list[str] = sorted({g for p in result["pairs"] for g in p["per_layer"]}, key=layer_sort_key)
    series = []
    for pair in result["pairs"]:
        per = pair["per_layer"]
        series.append((f"{pair['a']} vs {pair['b']}",
                       [per[g]["jaccard"] if g in per else None for g in layers],
                       [per[g]["random_baseline"] if g in per else None for g in layers]))
    lines = plots.per_layer_lines(layers, series, out / "jaccard_per_layer.png",
                                  "Jaccard similarity of kept weights per layer (dashed: random masks)")
    return [heatmap, lines]


def format_number(value: Optional[float], digits: int = 3) -> str:
    """A table cell: the value to `digits` decimals, or '-' when there is none."""
    return "-" if value is None else f"{value:.{digits}f}"


def format_summary(result: dict) -> str:
    """A compact text table: one row per pair (overall Jaccard, random baseline, ratio), then the N-way overlap."""
    width = max([len("pair")] + [len(f"{p['a']} vs {p['b']}") for p in result["pairs"]])
    lines = [f"{'pair':<{width}}  {'jaccard':>7}  {'random':>6}  {'ratio':>5}  {'weights compared':>16}"]
    for pair in result["pairs"]:
        o = pair["overall"]
        lines.append(f"{pair['a'] + ' vs ' + pair['b']:<{width}}  {format_number(o['jaccard']):>7}  "
                     f"{format_number(o['random_baseline']):>6}  {format_number(o['ratio'], 2):>5}  {o['weights']:>16,}")
    overlap = result["overlap"]
    if overlap["overall"]:
        o = overlap["overall"]
        lines.append(f"kept in all {len(overlap['masks'])} / kept in any: {format_number(o['overlap'])} "
                     f"(random {format_number(o['random_baseline'])}, ratio {format_number(o['ratio'], 2)})")
        per = overlap["per_layer"]
        cells = [f"{g} {format_number(s['overlap'], 2)}" for g, s in per.items()]
        if len(cells) > 1:  # six layers a line
            for start in range(0, len(cells), 6):
                lines.append(("  per layer: " if start == 0 else " " * 13) + "  ".join(cells[start: start + 6]))
    mismatches = result["mismatches"]
    if mismatches:
        lines.append(f"{len(mismatches)} mismatch(es) between the masks:")
        lines += [f"  {line}" for line in mismatches[:MAX_PRINTED_MISMATCHES]]
        if len(mismatches) > MAX_PRINTED_MISMATCHES:
            lines.append(f"  ... {len(mismatches) - MAX_PRINTED_MISMATCHES} more in mask_similarity.json")
    return "\n".join(lines)


def print_similarity_summary(mask_paths: Sequence[str | Path], labels: Optional[Sequence[str]] = None,
                             output_dir: Optional[str | Path] = None, plots: bool = True,
                             args: Optional[SimilarityArguments] = None, clear_output_dir: bool = False) -> dict:
    """Compare the masks, print the summary table, write files if asked; with `args.by == 'head'` also the
    per-head analysis (utils/analysis/head_similarity.py) under result['by_head']."""
    root = prepare_analysis_dir(output_dir, "mask_similarity", clear_output_dir) if output_dir is not None else None
    masks = load_all(mask_paths, labels)
    result = compare_masks(masks)
    print(f"\nmask similarity ({len(result['labels'])} masks)")
    print(format_summary(result))
    written = write_outputs(result, root, plots=plots) if root is not None else []
    if args is not None and args.by == "head":
        from utils.analysis.head_similarity import run_head_analysis

        result["by_head"], head_files = run_head_analysis(masks, args, root, plots)
        written += head_files
    if root is not None:
        remove_unwritten(root, ANALYSIS_OUTPUTS["mask_similarity"], written)
        print(f"written to {output_dir}")
    return result
