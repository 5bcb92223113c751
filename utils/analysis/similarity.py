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

from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from utils.infra.errors import UserError
from utils.core.masks import Mask, layer_of, layer_sort_key, matrix_type, read_mask_metadata, source_name
from utils.infra.progress import progress_bar


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


@dataclass
class PairStats:
    """Jaccard of two masks over one group of weights, beside the random-mask baseline."""

    jaccard: Optional[float]
    random_baseline: Optional[float]
    ratio: Optional[float]
    intersection: int
    union: int
    kept_a: int
    kept_b: int
    weights: int
    density_a: float
    density_b: float


def pair_stats(inter: int, kept_a: int, kept_b: int, weights: int) -> PairStats:
    union = kept_a + kept_b - inter
    jaccard = inter / union if union else None
    p = kept_a / weights if weights else 0.0
    q = kept_b / weights if weights else 0.0
    baseline = random_jaccard(p, q)
    return PairStats(jaccard, baseline, jaccard / baseline if jaccard is not None and baseline else None,
                     int(inter), int(union), int(kept_a), int(kept_b), int(weights), p, q)


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


@dataclass
class PairComparison:
    """Two masks compared over the matrices both hold: overall, per layer and per matrix type."""

    a: str
    b: str
    shared_matrices: int
    overall: PairStats
    per_layer: dict[str, PairStats] = field(default_factory=dict)
    per_matrix_type: dict[str, PairStats] = field(default_factory=dict)


def compare_pair(a: PackedMask, b: PackedMask) -> PairComparison:
    """Overall, per-layer and per-matrix-type Jaccard of two masks over the weights they share."""
    names, inter, ka, kb, size = pair_intersections(a, b)

    def stats(idx) -> PairStats:
        return pair_stats(int(inter[idx].sum()), int(ka[idx].sum()), int(kb[idx].sum()), int(size[idx].sum()))

    layers, types = _grouped(names, layer_of), _grouped(names, matrix_type)
    return PairComparison(a.label, b.label, len(names), stats(slice(None)),
                          {g: stats(layers[g]) for g in sorted(layers, key=layer_sort_key)},
                          {g: stats(types[g]) for g in types})


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


@dataclass
class OverlapStats:
    """|kept in all| / |kept in any| of N masks over one group of weights, beside the random-mask baseline."""

    overlap: Optional[float]
    random_baseline: Optional[float]
    ratio: Optional[float]
    kept_in_all: int
    kept_in_any: int
    weights: int


@dataclass
class Overlap:
    masks: list[str]
    matrices: int
    overall: Optional[OverlapStats]  # None when the masks share no matrix
    per_layer: dict[str, OverlapStats] = field(default_factory=dict)


def nway_overlap(masks: Sequence[PackedMask]) -> Overlap:
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

    def stats(idx) -> OverlapStats:
        weights = int(size[idx].sum())
        densities = [int(k) / weights if weights else 0.0 for k in kept[:, idx].sum(axis=1)]
        a, e = int(all_kept[idx].sum()), int(any_kept[idx].sum())
        overlap = a / e if e else None
        baseline = random_overlap(densities)
        return OverlapStats(overlap, baseline, overlap / baseline if overlap is not None and baseline else None,
                            a, e, weights)

    groups = _grouped(names, layer_of)
    return Overlap([m.label for m in masks], len(names), stats(list(range(len(names)))) if names else None,
                   {g: stats(groups[g]) for g in sorted(groups, key=layer_sort_key)})


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
# The whole comparison
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class MaskInfo:
    label: str
    path: str
    sparsity: float
    weights: int
    matrices: int
    metadata: dict[str, Any] = field(default_factory=dict)  # the mask's metadata without its per-layer sparsity


@dataclass
class SimilarityResult:
    """Every pair, the N-way overlap and the mismatches of two or more masks (mask_similarity.json)."""

    masks: list[MaskInfo]
    labels: list[str]
    jaccard_matrix: list[list[Optional[float]]]
    random_baseline_matrix: list[list[Optional[float]]]
    pairs: list[PairComparison]
    overlap: Overlap
    mismatches: list[str] = field(default_factory=list)

    def metadata_of(self, label: str) -> dict[str, Any]:
        return next((m.metadata for m in self.masks if m.label == label), {})


def compare_masks(masks: Sequence[PackedMask]) -> SimilarityResult:
    """Every pair, the N-way overlap, and the mismatches."""
    if len(masks) < 2:
        raise UserError(f"need at least 2 masks to compare, got {len(masks)}")
    pairs = [compare_pair(a, b) for a, b in progress_bar(list(combinations(masks, 2)), desc="mask pairs", unit="pair")]
    if all(p.shared_matrices == 0 for p in pairs):
        raise UserError("the masks share no weight matrix (same name and shape): are they masks of different models?")
    labels = [m.label for m in masks]
    matrix: list[list[Optional[float]]] = [[None] * len(masks) for _ in masks]
    baseline: list[list[Optional[float]]] = [[None] * len(masks) for _ in masks]
    for i, m in enumerate(masks):
        matrix[i][i] = 1.0 if m.kept.sum() else None
        density = 1.0 - m.sparsity
        baseline[i][i] = random_jaccard(density, density)
    for pair in pairs:
        i, j = labels.index(pair.a), labels.index(pair.b)
        matrix[i][j] = matrix[j][i] = pair.overall.jaccard
        baseline[i][j] = baseline[j][i] = pair.overall.random_baseline
    infos = [MaskInfo(m.label, m.path, m.sparsity, int(m.numel.sum()), len(m.names),
                      {k: v for k, v in m.metadata.items() if k != "per_layer_sparsity"}) for m in masks]
    return SimilarityResult(infos, labels, matrix, baseline, pairs, nway_overlap(masks), mismatch_lines(masks))


def load_and_compare(paths: Sequence[str | Path], labels: Optional[Sequence[str]] = None) -> SimilarityResult:
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
