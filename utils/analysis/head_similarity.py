"""Where do tickets differ? Jaccard per attention head and per FFN block, and each mask's language-specific weights
(mask_similarity.py --by head; the masks are loaded and packed once by utils/analysis/similarity.py).

- Head h of an attention block with H heads of size d = rows / H: rows h*d .. (h+1)*d - 1 of the query, key and
  value matrices (the head's own projections) and the same columns of the attention-output matrix (what it writes
  back to the residual stream): 4 * d * hidden weights. mT5: the q, k, v rows and o columns of each SelfAttention,
  and of each EncDecAttention (the block 'decoder.i cross').
- Decoder LLMs (the families of utils/core/families.py): head h is its q_proj rows and o_proj columns plus the
  k_proj/v_proj rows of its key/value head. With grouped-query attention (num_key_value_heads KV < H), key/value
  head g serves query heads g*H/KV .. (g+1)*H/KV - 1, so its weights count in each head of that group. Fused
  matrices are split as the family stores them: GPT-2's c_attn (Conv1D, (in, out): columns q | k | v) and Phi-3's
  qkv_proj contiguously, BLOOM's and GPT-NeoX's query_key_value per head [q, k, v].
- The FFN block of a layer: its whole feed-forward sublayer (BERT: intermediate and output; mT5: wi or wi_0/wi_1,
  and wo; decoders: gate, up and down), one cell per layer beside the heads.
- Language-specific weights of mask i: kept by i and by no other mask, as a share of i's kept weights, per layer
  and per matrix type; for independent random masks it is prod over j != i of (1 - p_j), the densities p of the
  group, which every figure carries as its random baseline.

H comes from --num_heads, else from the config of --model_name_or_path or of the model the masks' metadata name;
KV from that config's num_key_value_heads when there is one, else KV = H.
"""
from __future__ import annotations

import re
from itertools import combinations
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from utils.infra.errors import UserError, first_line
from utils.infra.io import write_json
from utils.core.families import placement
from utils.core.masks import common_model, layer_of, layer_sort_key, matrix_type
from utils.analysis.similarity import PackedMask, common_layout, csv_text, format_number, pair_stats, write_text

FFN = "FFN"


def unit_of(name: str) -> Optional[tuple[str, str, int]]:
    """(block, 'attention' or 'ffn', the axis that indexes heads or neurons) of a prunable matrix; None (pooler)."""
    found = placement(name)
    if found:
        return layer_of(name), found.role.unit, found.role.head_axis
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


def head_layout(name: str) -> str:
    """How the head axis of a matrix splits: 'kv' (key/value heads), 'qkv' (fused q|k|v), 'qkv_interleaved' (fused
    per head [q, k, v]) or 'plain' (H equal slices: BERT, T5, q, o)."""
    found = placement(name)
    heads = found.role.heads if found else None
    return heads if heads in ("kv", "qkv", "qkv_interleaved") else "plain"


def head_counts(bits: np.ndarray, axis: int, layout: str, heads: int, kv_heads: int) -> np.ndarray:
    """Counts of True per query head (`heads` entries) of a 2-d bool attention matrix; a key/value head's count
    goes to every query head of its group. Raises ValueError when the axis does not split."""
    if heads % kv_heads:
        raise ValueError(f"{heads} query heads do not split into {kv_heads} key/value groups")
    group = heads // kv_heads
    if layout == "plain":
        return per_unit(bits, axis, heads)
    if layout == "kv":
        return np.repeat(per_unit(bits, axis, kv_heads), group)
    if layout == "qkv_interleaved":
        return per_unit(bits, axis, heads)
    slices = heads + 2 * kv_heads  # qkv: q | k | v, contiguous
    size = bits.shape[axis]
    if size % slices:
        raise ValueError(f"{size} cannot be split into {heads} query and 2 x {kv_heads} key/value heads")
    parts = per_unit(bits, axis, slices)
    q, k, v = parts[:heads], parts[heads:heads + kv_heads], parts[heads + kv_heads:]
    return q + np.repeat(k + v, group)


def resolve_kv_heads(masks: Sequence[PackedMask], heads: int, model: Optional[str]) -> int:
    """Key/value heads per attention block: num_key_value_heads of the model's config, else `heads`."""
    model = model or common_model(m.path for m in masks if m.path)
    if not model:
        return heads
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model)
    except (OSError, ValueError):
        return heads
    return int(getattr(config, "num_key_value_heads", None) or heads)


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


def head_analysis(masks: Sequence[PackedMask], heads: int, kv_heads: Optional[int] = None) -> dict:
    """Jaccard per (block, head or FFN) for every pair, and every mask's language-specific share per layer and
    matrix type, over the matrices all masks hold (see the module docstring)."""
    kv_heads = kv_heads or heads
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
        layout = head_layout(name) if kind == "attention" else "plain"
        group_heads = kv_heads if layout != "plain" else units
        split = {"plain": units, "kv": group_heads, "qkv_interleaved": units}.get(layout)
        if split and bits.shape[1 + axis] % split:
            raise UserError(f"{name}: {bits.shape[1 + axis]} {'rows' if axis == 0 else 'columns'} cannot be split "
                            f"into {split} heads; is --num_heads right?")

        def count(matrix: np.ndarray) -> np.ndarray:
            try:
                return head_counts(matrix, axis, layout, units, group_heads)
            except ValueError as error:
                raise UserError(f"{name}: {error}; is --num_heads right?") from None

        labels = [f"head {h}" for h in range(units)] if kind == "attention" else [FFN]
        counts = np.stack([count(b) for b in bits])  # [n, units]
        sizes = count(np.ones(bits.shape[1:], dtype=bool))
        for u, label in enumerate(labels):
            kept[(block, label)] = kept.get((block, label), np.zeros(n, np.int64)) + counts[:, u]
            size[(block, label)] = size.get((block, label), 0) + int(sizes[u])
        for i, j in combinations(range(n), 2):
            both = count(bits[i] & bits[j])
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
        pairs.append({"a": masks[i].label, "b": masks[j].label, "cells": cells})
    return {"num_heads": heads, "blocks": blocks, "units": units, "pairs": pairs,
            "language_specific": _specific_stats(masks, specific, group_kept, group_size)}


def _specific_stats(masks, specific, group_kept, group_size) -> dict:
    def stats(key, i) -> dict:
        densities = group_kept[key] / group_size[key]
        baseline = float(np.prod(np.delete(1.0 - densities, i)))
        kept = int(group_kept[key][i])
        share = int(specific[key][i]) / kept if kept else None
        return {"share": share, "random_baseline": baseline,
                "ratio": share / baseline if share is not None and baseline else None,
                "specific": int(specific[key][i]), "kept": kept, "weights": group_size[key]}

    result: dict = {"masks": [m.label for m in masks]}
    for scope, order in (("overall", None), ("layer", layer_sort_key), ("matrix_type", None)):
        groups = [g for s, g in specific if s == scope]
        groups = sorted(groups, key=order) if order else groups
        result["per_" + scope if scope != "overall" else scope] = {
            m.label: {g: stats((scope, g), i) for g in groups} for i, m in enumerate(masks)}
    result["overall"] = {label: groups["all"] for label, groups in result["overall"].items()}
    return result


# ---------------------------------------------------------------------------------------------------------------
# Files, figures and the printed summary
# ---------------------------------------------------------------------------------------------------------------


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", label.replace("%", "pct")).strip("_")


_STATS = ("jaccard", "random_baseline", "ratio", "intersection", "union", "kept_a", "kept_b", "weights")
_SPECIFIC = ("share", "random_baseline", "ratio", "specific", "kept", "weights")


def write_head_outputs(result: dict, out: Path, plots: bool = True) -> list[Path]:
    """head_similarity.json, head_jaccard.csv, language_specific.csv, and the PNGs."""
    written = [out / "head_similarity.json", out / "head_jaccard.csv", out / "language_specific.csv"]
    write_json(written[0], result)
    rows = [[p["a"], p["b"], block, unit, *(stats[c] for c in _STATS)]
            for p in result["pairs"] for block, cells in p["cells"].items() for unit, stats in cells.items()]
    write_text(written[1], csv_text(("mask_a", "mask_b", "block", "unit", *_STATS), rows))
    specific = result["language_specific"]
    rows = [[label, "overall", "all", *(s[c] for c in _SPECIFIC)] for label, s in specific["overall"].items()]
    for scope in ("per_layer", "per_matrix_type"):
        rows += [[label, scope.removeprefix("per_"), group, *(s[c] for c in _SPECIFIC)]
                 for label, groups in specific[scope].items() for group, s in groups.items()]
    write_text(written[2], csv_text(("mask", "scope", "group", *_SPECIFIC), rows))
    if plots:
        written += plot_heads(result, out)
    return written


def plot_heads(result: dict, out: Path) -> list[Path]:
    from utils.analysis import plots

    written = []
    blocks, units = result["blocks"], result["units"]
    for pair in result["pairs"]:
        values = [[pair["cells"][b][u]["jaccard"] if u in pair["cells"][b] else None for u in units] for b in blocks]
        bases = [pair["cells"][b][u]["random_baseline"] for b in blocks for u in units if u in pair["cells"][b]]
        small = len(blocks) * len(units) <= 100
        subtext = [[f"rand {pair['cells'][b][u]['random_baseline']:.2f}" if u in pair["cells"][b] else None
                    for u in units] for b in blocks] if small else None
        title = (f"Jaccard of kept weights per attention head (Q, K, V rows + attention-output columns) and FFN\n"
                 f"{pair['a']} vs {pair['b']}; independent random masks: "
                 f"{min(bases):.2f}-{max(bases):.2f}" + (" (small text)" if small else ""))
        path = out / f"head_jaccard_{_slug(pair['a'])}_vs_{_slug(pair['b'])}.png"
        written.append(plots.heatmap(values, blocks, units, path, title, fmt="{:.2f}", subtext=subtext,
                                     colorbar_label="Jaccard", xlabel="attention head / FFN block",
                                     ylabel="layer"))
    specific = result["language_specific"]
    layers = sorted({g for groups in specific["per_layer"].values() for g in groups}, key=layer_sort_key)
    series = [(label, [groups[g]["share"] for g in layers], [groups[g]["random_baseline"] for g in layers])
              for label, groups in specific["per_layer"].items()]
    written.append(plots.per_layer_lines(
        layers, series, out / "language_specific_per_layer.png",
        "Share of each mask's kept weights that no other mask keeps, per layer",
        ylabel="language-specific share of kept weights"))
    types = list(next(iter(specific["per_matrix_type"].values())))
    values = [[groups[t]["share"] for t in types] for groups in specific["per_matrix_type"].values()]
    subtext = [[f"rand {groups[t]['random_baseline']:.2f}" for t in types]
               for groups in specific["per_matrix_type"].values()]
    written.append(plots.heatmap(
        values, specific["masks"], types, out / "language_specific_per_matrix_type.png",
        "Share of each mask's kept weights that no other mask keeps\n(small: independent random masks)",
        fmt="{:.3f}", subtext=subtext, cmap="magma", colorbar_label="language-specific share",
        xlabel="matrix type", ylabel="mask"))
    return written



def format_head_summary(result: dict, heads_from: str) -> str:
    lines = [f"\nper attention head ({result['num_heads']} a block, from {heads_from}) and FFN block: Jaccard"]
    for pair in result["pairs"]:
        cells = [(b, u, s) for b, units in pair["cells"].items() for u, s in units.items() if s["jaccard"] is not None]
        head_cells = [c for c in cells if c[1] != FFN]
        ffn = [s["jaccard"] for _, u, s in cells if u == FFN]
        bases = [s["random_baseline"] for _, _, s in cells]
        low, high = min(head_cells, key=lambda c: c[2]["jaccard"]), max(head_cells, key=lambda c: c[2]["jaccard"])
        lines.append(f"{pair['a']} vs {pair['b']}: heads {format_number(low[2]['jaccard'])} ({low[0]} {low[1]}) to "
                     f"{format_number(high[2]['jaccard'])} ({high[0]} {high[1]})"
                     + (f", FFN {format_number(min(ffn))} to {format_number(max(ffn))}" if ffn else "")
                     + f"; random {format_number(min(bases))} to {format_number(max(bases))}")
    specific = result["language_specific"]
    layers = list(next(iter(specific["per_layer"].values())))
    width = max(len("mask"), *(len(label) for label in specific["masks"]))
    lines.append("language-specific weights: share of a mask's kept weights no other mask keeps [random]")
    lines.append(f"{'mask':<{width}}  {'overall':>15}" + "".join(f"  {g:>15}" for g in layers))
    for label in specific["masks"]:
        cells = [specific["overall"][label]] + [specific["per_layer"][label][g] for g in layers]
        lines.append(f"{label:<{width}}" + "".join(f"  {format_number(c['share']) + ' [' + format_number(c['random_baseline']) + ']':>15}"
                                                   for c in cells))
    return "\n".join(lines)


def run_head_analysis(masks: Sequence[PackedMask], args, output_dir: Optional[str | Path],
                      plots: bool) -> tuple[dict, list[Path]]:
    """mask_similarity.py --by head: compute, print, write; returns the result and the files written."""
    heads, heads_from = resolve_num_heads(masks, args.num_heads, args.model_name_or_path)
    kv_heads = resolve_kv_heads(masks, heads, args.model_name_or_path)
    result = {"heads_from": heads_from, "num_key_value_heads": kv_heads, **head_analysis(masks, heads, kv_heads)}
    print(format_head_summary(result, heads_from))
    written = write_head_outputs(result, Path(output_dir), plots) if output_dir is not None else []
    return result, written
