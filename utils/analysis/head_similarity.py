"""Where do tickets differ? Jaccard per attention head and per FFN block, and each mask's language-specific weights
(mask_similarity.py --by head; the masks are loaded and packed once by utils/analysis/similarity.py).

- Head h of an attention block with H heads of size d = rows / H: rows h*d .. (h+1)*d - 1 of the query, key and
  value matrices (the head's own projections) and the same columns of the attention-output matrix (what it writes
  back to the residual stream): 4 * d * hidden weights. mT5: the q, k, v rows and o columns of each SelfAttention,
  and of each EncDecAttention (the block 'decoder.i cross').
- The FFN block of a layer: its whole feed-forward sublayer (BERT: intermediate and output; mT5: wi or wi_0/wi_1,
  and wo), one cell per layer beside the heads.
- Language-specific weights of mask i: kept by i and by no other mask, as a share of i's kept weights, per layer
  and per matrix type; for independent random masks it is prod over j != i of (1 - p_j), the densities p of the
  group, which every figure carries as its random baseline.

H comes from --num_heads, else from the config of --model_name_or_path or of the model the masks' metadata name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import combinations
from typing import Optional, Sequence

import numpy as np

from utils.infra.errors import UserError, first_line
from utils.core.masks import common_model, layer_of, layer_sort_key, matrix_type
from utils.analysis.similarity import PackedMask, PairStats, common_layout, pair_stats

FFN = "FFN"


def unit_of(name: str) -> Optional[tuple[str, str, int]]:
    """(block, 'attention' or 'ffn', the axis that indexes heads or neurons) of a prunable matrix; None (pooler)."""
    kind, layer = matrix_type(name), layer_of(name)
    bert = {"query": 0, "key": 0, "value": 0, "attention_output": 1}
    if kind in bert:
        return layer, "attention", bert[kind]
    if kind in ("intermediate", "output"):
        return layer, "ffn", 0 if kind == "intermediate" else 1
    t5 = re.match(r"^(encoder|decoder)\.(self_attn|cross_attn|ffn)\.(\w+)$", kind)
    if not t5:
        return None
    sublayer, weight = t5.group(2), t5.group(3)
    if sublayer == "ffn":
        return layer, "ffn", 1 if weight == "wo" else 0
    return (layer if sublayer == "self_attn" else f"{layer} cross"), "attention", 1 if weight == "o" else 0


def block_sort_key(block: str) -> tuple:
    layer, _, cross = block.partition(" ")
    return (*layer_sort_key(layer), cross)


def resolve_num_heads(masks: Sequence[PackedMask], num_heads: Optional[int], model: Optional[str]) -> tuple[int, str]:
    """(heads per attention block, where the number came from)."""
    if num_heads is not None:
        if num_heads < 1:
            raise UserError(f"--num_heads must be >= 1, got {num_heads}")
        return num_heads, "--num_heads"
    model = model or common_model(m.path for m in masks if m.path)
    if not model:
        raise UserError("--by head needs the number of attention heads: pass --num_heads or --model_name_or_path "
                        "(the masks' metadata name no model)")
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read the config of {model} for the number of heads ({first_line(error)}); "
                        "pass --num_heads") from None
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "num_heads", None)
    if not heads:
        raise UserError(f"the config of {model} names no number of attention heads; pass --num_heads")
    return int(heads), f"the config of {model}"


def per_unit(bits: np.ndarray, axis: int, units: int) -> np.ndarray:
    """Counts of True per head (split along `axis` into `units` equal slices) of a 2-d bool matrix."""
    if axis == 0:
        return bits.reshape(units, -1).sum(axis=1)
    return bits.reshape(bits.shape[0], units, -1).sum(axis=(0, 2))


@dataclass
class SpecificStats:
    """The share of a mask's kept weights in one group that no other mask keeps, beside the random baseline."""

    share: Optional[float]
    random_baseline: float
    ratio: Optional[float]
    specific: int
    kept: int
    weights: int


@dataclass
class LanguageSpecific:
    masks: list[str]
    overall: dict[str, SpecificStats]  # mask label -> its share over every weight compared
    per_layer: dict[str, dict[str, SpecificStats]]  # mask label -> layer -> share
    per_matrix_type: dict[str, dict[str, SpecificStats]]


@dataclass
class HeadPair:
    a: str
    b: str
    cells: dict[str, dict[str, PairStats]]  # block -> 'head h' or 'FFN' -> Jaccard


@dataclass
class HeadResult:
    """head_similarity.json."""

    heads_from: str
    num_heads: int
    blocks: list[str]
    units: list[str]
    pairs: list[HeadPair] = field(default_factory=list)
    language_specific: Optional[LanguageSpecific] = None


def head_analysis(masks: Sequence[PackedMask], heads: int, heads_from: str = "") -> HeadResult:
    """Jaccard per (block, head or FFN) for every pair, and every mask's language-specific share per layer and
    matrix type, over the matrices all masks hold (see the module docstring)."""
    n = len(masks)
    kept: dict[tuple[str, str], np.ndarray] = {}  # (block, unit) -> [n] kept counts
    size: dict[tuple[str, str], int] = {}
    inter: dict[tuple[int, int, str, str], int] = {}
    specific: dict[tuple[str, str], np.ndarray] = {}  # (scope, group) -> [n] weights kept by that mask only
    group_kept: dict[tuple[str, str], np.ndarray] = {}
    group_size: dict[tuple[str, str], int] = {}
    for name, where in common_layout(masks):
        bits = np.stack([m.matrix(j) for m, j in zip(masks, where)])  # [n, rows, cols]
        only = bits & (bits.sum(axis=0, dtype=np.int32) == 1)
        for key in (("overall", "all"), ("layer", layer_of(name)), ("matrix_type", matrix_type(name))):
            specific[key] = specific.get(key, np.zeros(n, np.int64)) + only.reshape(n, -1).sum(axis=1)
            group_kept[key] = group_kept.get(key, np.zeros(n, np.int64)) + bits.reshape(n, -1).sum(axis=1)
            group_size[key] = group_size.get(key, 0) + bits[0].size
        unit = unit_of(name)
        if unit is None or bits.ndim != 3:
            continue
        block, kind, axis = unit
        units = heads if kind == "attention" else 1
        if bits.shape[1 + axis] % units:
            raise UserError(f"{name}: {bits.shape[1 + axis]} {'rows' if axis == 0 else 'columns'} cannot be split "
                            f"into {units} heads; is --num_heads right?")
        labels = [f"head {h}" for h in range(units)] if kind == "attention" else [FFN]
        counts = np.stack([per_unit(b, axis, units) for b in bits])  # [n, units]
        for u, label in enumerate(labels):
            kept[(block, label)] = kept.get((block, label), np.zeros(n, np.int64)) + counts[:, u]
            size[(block, label)] = size.get((block, label), 0) + bits[0].size // units
        for i, j in combinations(range(n), 2):
            both = per_unit(bits[i] & bits[j], axis, units)
            for u, label in enumerate(labels):
                inter[(i, j, block, label)] = inter.get((i, j, block, label), 0) + int(both[u])
    if not kept:
        raise UserError("the masks hold no attention or FFN matrix in common: nothing to compare per head")
    blocks = sorted({b for b, _ in kept}, key=block_sort_key)
    units = [f"head {h}" for h in range(heads)] + [FFN]
    pairs = []
    for i, j in combinations(range(n), 2):
        cells = {b: {u: pair_stats(inter[(i, j, b, u)], int(kept[(b, u)][i]), int(kept[(b, u)][j]), size[(b, u)])
                     for u in units if (b, u) in kept} for b in blocks}
        pairs.append(HeadPair(masks[i].label, masks[j].label, cells))
    return HeadResult(heads_from, heads, blocks, units, pairs, _specific_stats(masks, specific, group_kept, group_size))


def _specific_stats(masks, specific, group_kept, group_size) -> LanguageSpecific:
    def stats(key, i) -> SpecificStats:
        densities = group_kept[key] / group_size[key]
        baseline = float(np.prod(np.delete(1.0 - densities, i)))
        kept = int(group_kept[key][i])
        share = int(specific[key][i]) / kept if kept else None
        return SpecificStats(share, baseline, share / baseline if share is not None and baseline else None,
                             int(specific[key][i]), kept, group_size[key])

    def per_mask(scope: str, order=None) -> dict[str, dict[str, SpecificStats]]:
        groups = [g for s, g in specific if s == scope]
        groups = sorted(groups, key=order) if order else groups
        return {m.label: {g: stats((scope, g), i) for g in groups} for i, m in enumerate(masks)}

    overall = {label: groups["all"] for label, groups in per_mask("overall").items()}
    return LanguageSpecific([m.label for m in masks], overall, per_mask("layer", layer_sort_key),
                            per_mask("matrix_type"))
