"""Mask algebra: intersection, union, majority vote and difference of tickets, optionally re-pruned to an exact
sparsity by weight magnitude. The result is an ordinary mask file (with metadata naming its sources and the
operation), so every fine-tuning script trains under it: e.g. the consensus ("language-neutral") ticket.

- intersection: kept by every mask; union: kept by any; majority: kept by at least --min_count of the N masks
  (default: more than half); difference: kept by the first mask and by none of the others (its specific weights).
- --sparsity S re-prunes the result to exactly round(S x N) removed weights, ranking by |w| of --checkpoint's
  weights: a result denser than S keeps its largest weights (utils.core.pruning.magnitude_prune restricted to it, so the
  new mask is nested in it); a sparser one is kept whole and the largest weights outside it are added.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import torch

from utils.infra.errors import UserError
from utils.core.masks import Mask, common_model, empty_matrices_text, matrix_type, read_mask_metadata
from utils.core.pruning import check_sparsity, magnitude_prune, scope_groups
from utils.analysis.similarity import aligned_matrices

OPERATIONS = ("intersection", "union", "majority", "difference")


@dataclass
class MaskOpsArguments:
    """mask_ops.py's flags."""

    operation: str = field(metadata={"help": "intersection, union, majority or difference (first minus the rest).",
                                     "choices": list(OPERATIONS)})
    masks: list[str] = field(metadata={"help": "Two or more mask .pt files (any format the scripts read)."})
    output: str = field(metadata={"help": "The mask .pt to write (its metadata goes beside it as .json)."})
    min_count: Optional[int] = field(
        default=None, metadata={"help": "majority: kept by at least this many masks (default: more than half)."}
    )
    sparsity: Optional[float] = field(
        default=None, metadata={"help": "Re-prune the result to exactly this sparsity: a fraction (0.5) or a "
                                        "percentage (50)."}
    )
    checkpoint: Optional[str] = field(
        default=None, metadata={"help": "Model whose |weights| rank the re-pruning (default: the masks' model)."}
    )
    prune_scope: Optional[str] = field(
        default=None, metadata={"help": "Re-prune one ranking over all weights (global) or each encoder/decoder stack "
                                        "to the sparsity (per_stack); default: the sources' prune_scope, else global.",
                                "choices": ["global", "per_stack"]}
    )
    packed: bool = field(default=False, metadata={"help": "Write 1 bit per weight instead of bool."})
    overwrite: bool = field(default=False, metadata={"help": "Replace --output if it exists."})
    allow_empty_matrices: bool = field(
        default=False, metadata={"help": "Write the mask even if it removes every weight of some matrix (fine-tuning "
                                         "refuses such a mask; mask_similarity.py reads it)."}
    )


def load_aligned(paths: Sequence[str]) -> tuple[list[Mask], list[str]]:
    """The masks over the matrices they all hold, and notes. A pooler only some of them hold is dropped (the
    scripts keep a missing pooler dense); any other difference in names or shapes means different models."""
    masks = [Mask.load(path) for path in paths]
    common = aligned_matrices([[(n, tuple(t.shape)) for n, t in mask.items()] for mask in masks])
    names = [name for name, _ in common]
    held_by_all = set(names)
    notes: list[str] = []
    for path, mask in zip(paths, masks):
        extra = [n for n in mask if n not in held_by_all]
        odd = next((n for n in extra if matrix_type(n) != "pooler" or all(n in m for m in masks)), None)
        if odd is not None:
            raise UserError(_different_models(paths, masks, odd))
        if extra:
            notes.append(f"{path}: {', '.join(extra)} not in every mask; left out (a missing pooler stays dense)")
    return [Mask(OrderedDict((n, m[n]) for n in names)) for m in masks], notes


def _different_models(paths: Sequence[str], masks: Sequence[Mask], name: str) -> str:
    """The one line naming how two of the masks differ at matrix `name` (held by some, or of another shape)."""
    holder = next(p for p, m in zip(paths, masks) if name in m)
    lacking = next((p for p, m in zip(paths, masks) if name not in m), None)
    if lacking is not None:
        return f"the masks are of different models: {holder} has {name}, which {lacking} lacks"
    shape = tuple(masks[0][name].shape)
    path, other = next((p, tuple(m[name].shape)) for p, m in zip(paths, masks) if tuple(m[name].shape) != shape)
    return f"the masks are of different models: {name} is {other} in {path} but {shape} in {paths[0]}"


def combine(masks: Sequence[Mask], operation: str, min_count: Optional[int] = None) -> Mask:
    """One of OPERATIONS over masks that hold the same matrices (see the module docstring)."""
    if len(masks) < 2:
        raise UserError(f"{operation} needs at least 2 masks, got {len(masks)}")
    if min_count is not None and operation != "majority":
        raise UserError("--min_count applies to the majority operation only")
    needed = len(masks) // 2 + 1 if min_count is None else min_count
    if operation == "majority" and not 1 <= needed <= len(masks):
        raise UserError(f"--min_count must be between 1 and {len(masks)}, got {needed}")
    result = OrderedDict()
    for name in masks[0]:
        stack = torch.stack([m[name] for m in masks])
        if operation == "intersection":
            result[name] = stack.all(dim=0)
        elif operation == "union":
            result[name] = stack.any(dim=0)
        elif operation == "majority":
            result[name] = stack.sum(dim=0, dtype=torch.int32) >= needed
        elif operation == "difference":
            result[name] = stack[0] & ~stack[1:].any(dim=0)
        else:
            raise UserError(f"unknown operation {operation!r}; choose from {', '.join(OPERATIONS)}")
    return Mask(result)


def checkpoint_weights(checkpoint: str, names: Sequence[str]) -> "OrderedDict[str, torch.Tensor]":
    """The checkpoint's weights under the masks' names (a task model's 'bert.' prefix is matched to AutoModel's)."""
    from transformers import AutoModel

    from utils.infra.args import ModelArguments
    from utils.infra.models import load_model

    model = load_model(AutoModel, ModelArguments(model_name_or_path=checkpoint))
    params = dict(model.named_parameters())
    prefix = f"{getattr(model, 'base_model_prefix', '')}."
    weights: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for name in names:
        weight = params.get(name, params.get(name.removeprefix(prefix)))
        if weight is None:
            raise UserError(f"{checkpoint} has no weight {name}: the masks are of another model")
        weights[name] = weight.detach()
    return weights


def reprune(mask: Mask, weights, sparsity: float, scope: str = "global") -> tuple[Mask, dict]:
    """Exactly round(sparsity x N) weights removed, by |w|, in every group of `scope` (--prune_scope): within the
    mask where it is denser, else the mask plus the largest weights outside it. Returns the new mask and
    {'added', 'removed'} (summed over the groups)."""
    check_sparsity(sparsity)
    for name, tensor in mask.items():
        if tuple(weights[name].shape) != tuple(tensor.shape):
            raise UserError(f"the checkpoint's {name} is {tuple(weights[name].shape)}, the masks' "
                            f"{tuple(tensor.shape)}: the masks are of another model")
    merged: dict[str, torch.Tensor] = {}
    change = {"added": 0, "removed": 0}
    for names in scope_groups(mask, scope):
        part, part_change = _reprune_group(Mask(OrderedDict((n, mask[n]) for n in names)), weights, sparsity)
        merged.update(part)
        change = {k: change[k] + part_change[k] for k in change}
    return Mask(OrderedDict((n, merged[n]) for n in mask)), change


def _reprune_group(mask: Mask, weights, sparsity: float) -> tuple[Mask, dict]:
    weights = OrderedDict((n, weights[n]) for n in mask)  # the group's own: magnitude_prune ranks all it is given
    total, kept = mask.num_weights, mask.num_kept
    target = total - round(sparsity * total)
    if kept >= target:
        new = magnitude_prune(weights, mask, sparsity)
        return new, {"added": 0, "removed": kept - target}
    outside = Mask(OrderedDict((n, ~t) for n, t in mask.items()))
    need = target - kept
    chosen = magnitude_prune(weights, outside, (total - need) / total)  # keeps the `need` largest outside the mask
    new = Mask(OrderedDict((n, t | chosen[n]) for n, t in mask.items()))
    return new, {"added": need, "removed": 0}


def prune_scope_of(sources: Sequence[dict], given: Optional[str]) -> str:
    """--prune_scope, else the one the source masks were pruned with (their metadata), else global."""
    if given is not None:
        return given
    scopes = {s["prune_scope"] for s in sources if s.get("prune_scope")}
    if len(scopes) > 1:
        raise UserError(f"the source masks were pruned with different scopes ({', '.join(sorted(scopes))}): "
                        "pass --prune_scope")
    return next(iter(scopes), "global")


def source_entry(path: str) -> dict:
    meta = read_mask_metadata(path)
    keys = ("task", "languages", "model", "seed", "sparsity", "sha256", "operation", "prune_scope")
    return {"path": path, **{k: meta[k] for k in keys if k in meta}}


def _languages(sources: Sequence[dict]) -> list[str]:
    languages: list[str] = []
    for source in sources:
        value = source.get("languages") or []
        for lang in [value] if isinstance(value, str) else value:
            if lang not in languages:
                languages.append(lang)
    return languages


def run_mask_ops(args: MaskOpsArguments) -> dict:
    """Combine the masks, re-prune if asked, write the mask and its metadata; returns the metadata."""
    from utils.infra.args import MaskArguments

    output = Path(args.output)
    if output.suffix != ".pt":
        raise UserError(f"--output must be a .pt file, got {args.output}")
    if output.exists() and not args.overwrite:
        raise UserError(f"{output} exists; pass --overwrite to replace it")
    sparsity = MaskArguments(sparsity=args.sparsity).sparsity_fraction
    if len(args.masks) < 2:
        raise UserError(f"{args.operation} needs at least 2 masks, got {len(args.masks)}")
    model = common_model(args.masks)
    masks, notes = load_aligned(args.masks)
    result = combine(masks, args.operation, args.min_count)
    sources = [source_entry(path) for path in args.masks]
    tasks = {s.get("task") for s in sources}
    combined_sparsity = result.sparsity
    what = f"{args.operation} of {len(masks)} masks"
    if args.operation == "majority":
        what += f" (kept by >= {args.min_count or len(masks) // 2 + 1})"
    print(f"{what}: {result.num_kept:,} of {result.num_weights:,} weights kept (sparsity {combined_sparsity:.1%})")
    repruned = None
    if sparsity is not None:
        checkpoint = args.checkpoint or model
        if not checkpoint:
            raise UserError("--sparsity needs --checkpoint (the model whose weight magnitudes rank the candidates): "
                            "the masks' metadata name none")
        scope = prune_scope_of(sources, args.prune_scope)
        result, change = reprune(result, checkpoint_weights(checkpoint, list(result)), sparsity, scope)
        repruned = {"sparsity": sparsity, "checkpoint": checkpoint, "prune_scope": scope, **change}
        how = ", ".join(part for part in (f"{change['removed']:,} smallest removed" if change["removed"] else "",
                                          f"{change['added']:,} largest outside it added" if change["added"] else "")
                        if part) or "nothing to change"
        print(f"re-pruned to {sparsity:.1%} ({scope}) by |w| of {checkpoint}: {how}")
    elif args.checkpoint or args.prune_scope:
        raise UserError(f"--{'checkpoint' if args.checkpoint else 'prune_scope'} is used only with --sparsity")
    empty = result.empty_matrices()
    if empty and not args.allow_empty_matrices:
        lower = "re-prune to a lower --sparsity" if sparsity is not None else "combine other masks"
        raise UserError(f"the result removes every weight of {empty_matrices_text(empty)}, so fine-tuning under it "
                        f"is refused: {lower}, or pass --allow_empty_matrices to write it anyway")
    metadata = {
        "task": next(iter(tasks)) if len(tasks) == 1 else None,
        "languages": _languages(sources),
        "model": model or args.checkpoint,
        "script": "mask_ops.py",
        "operation": args.operation,
        "min_count": (args.min_count or len(masks) // 2 + 1) if args.operation == "majority" else None,
        "sources": sources,
        "combined_sparsity": combined_sparsity,
        "repruned": repruned,
        **({"prune_scope": repruned["prune_scope"]} if repruned else {}),  # what a later re-pruning of it follows
        "notes": notes,
        "per_layer_sparsity": result.per_layer(),
    }
    result.save(output, metadata, packed=args.packed)
    for note in notes:
        print(note)
    print(f"written to {output} (sparsity {result.sparsity:.1%}) and {output.with_suffix('.json')}")
    return {**metadata, "sparsity": result.sparsity}
