"""Which weights are prunable, and the pruning strategies (each a small function from weights to a Mask)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Mapping

import torch
from torch import nn

from utils.infra.errors import UserError
from utils.core.masks import Mask, stack_of


def projection_types() -> tuple[type, ...]:
    """The module classes that hold a 2-D projection matrix: nn.Linear (weight (out, in)) and transformers'
    Conv1D (GPT-2; weight (in, out), see utils.core.families.output_axis)."""
    from transformers.pytorch_utils import Conv1D

    return (nn.Linear, Conv1D)


def prunable_weights(model: nn.Module) -> "OrderedDict[str, nn.Parameter]":
    """Every 2-D projection weight inside the model's repeated transformer blocks, plus BERT's pooler dense.

    Found by walking the model, so any depth and any architecture works: BERT's 6 matrices per layer (query, key,
    value, attention output, intermediate, output), T5's q/k/v/o, cross-attention q/k/v/o and wi_0/wi_1/wo, a
    decoder's q/k/v/o (or a fused qkv) and gate/up/down, GPT-2's Conv1D c_attn/c_proj/c_fc. Embeddings (and an
    lm_head tied to them), biases, norms, T5's relative attention bias (an Embedding) and task or LM heads (outside
    the block stacks) never match.
    """
    model = getattr(model, "module", model)  # DDP / DataParallel wrappers
    projections = projection_types()
    chosen: set[int] = set()
    for name, module in model.named_modules():
        if _is_layer_stack(module, projections):
            chosen.update(id(sub.weight) for sub in module.modules() if isinstance(sub, projections))
        elif isinstance(module, nn.Linear) and name.split(".")[-2:] == ["pooler", "dense"]:
            chosen.add(id(module.weight))
    weights = OrderedDict((n, p) for n, p in model.named_parameters() if id(p) in chosen)
    if not weights:
        raise UserError(f"found no prunable weights in {type(model).__name__}: is this a transformer?")
    return weights


def _is_layer_stack(module: nn.Module, projections: tuple[type, ...]) -> bool:
    """A ModuleList of identical blocks (BERT's encoder.layer, T5's block, a decoder's layers or GPT-2's h), not a
    list of bare projections."""
    if not isinstance(module, nn.ModuleList) or len(module) == 0:
        return False
    kinds = {type(child) for child in module}
    return len(kinds) == 1 and not issubclass(next(iter(kinds)), projections) and any(
        isinstance(sub, projections) for sub in module[0].modules()
    )


def check_sparsity(value: float, what: str = "sparsity") -> float:
    """Accept a fraction in [0, 1); never the all-zero mask."""
    if not 0.0 <= value < 1.0:
        raise UserError(f"{what} must be in [0, 1), got {value}")
    return value


def sparsity_schedule(prune_rate: float, target_sparsity: float, kind: str = "linear") -> list[float]:
    """Sparsities of the IMP rounds, starting from the dense model: [0, 0.1, ..., 0.9] for linear 0.1 -> 0.9.

    linear: each round removes `prune_rate` of the ORIGINAL prunable weights (the paper's schedule);
    geometric: each round removes `prune_rate` of the weights still kept.
    """
    if not 0.0 < prune_rate < 1.0:
        raise UserError(f"prune_rate must be in (0, 1), got {prune_rate}")
    check_sparsity(target_sparsity, "target_sparsity")
    if kind not in ("linear", "geometric"):
        raise UserError(f"prune_schedule must be 'linear' or 'geometric', got {kind!r}")
    schedule = [0.0]
    while schedule[-1] < target_sparsity - 1e-9:
        k = len(schedule)
        next_value = k * prune_rate if kind == "linear" else 1.0 - (1.0 - prune_rate) ** k
        schedule.append(min(round(next_value, 10), target_sparsity))
    return schedule


def scope_groups(weights: Mapping[str, torch.Tensor], scope: str) -> list[list[str]]:
    """The names that are ranked together under --prune_scope: all of them, or one group per encoder/decoder stack."""
    if scope == "global":
        return [list(weights)]
    if scope == "per_stack":
        stacks: dict[str, list[str]] = {}
        for name in weights:
            stacks.setdefault(stack_of(name), []).append(name)
        return list(stacks.values())
    raise UserError(f"prune_scope must be 'global' or 'per_stack', got {scope!r}")


@torch.no_grad()
def magnitude_prune(
    weights: Mapping[str, torch.Tensor], mask: Mask, sparsity: float, scope: str = "global"
) -> Mask:
    """Unstructured magnitude pruning to exactly round(sparsity * N) removed weights in each `scope_groups` group.

    Within a group, one ranking by |w| over the weights the mask still keeps: the whole model with scope='global',
    each encoder/decoder stack with scope='per_stack'.
    Ties at the threshold are broken by position, so the count is exact and the result deterministic. The new mask
    is nested in the old one.
    """
    check_sparsity(sparsity)
    new = OrderedDict((n, t.clone()) for n, t in mask.items())
    for names in scope_groups(weights, scope):
        total = sum(mask[n].numel() for n in names)
        kept = sum(int(mask[n].sum()) for n in names)
        to_remove = round(sparsity * total) - (total - kept)
        if to_remove < 0:
            raise ValueError(f"mask is already sparser ({1 - kept / total:.4f}) than the target {sparsity:.4f}")
        if to_remove == 0:
            continue
        device = weights[names[0]].device
        kept_masks = {n: mask[n].to(device) for n in names}
        if kept == total:  # nothing pruned yet (first round, one-shot): skip the costly boolean indexing
            scores = torch.cat([weights[n].detach().abs().float().flatten() for n in names])
        else:
            scores = torch.cat([weights[n].detach().abs().float()[kept_masks[n]] for n in names])
        threshold = torch.kthvalue(scores.cpu() if scores.device.type == "mps" else scores, to_remove).values.to(device)
        ties_to_remove = to_remove - int((scores < threshold).sum())
        del scores
        for n in names:
            score = weights[n].detach().abs().float()
            keep = kept_masks[n] & (score > threshold)
            if ties_to_remove > 0:
                ties = (kept_masks[n] & (score == threshold)).flatten()
                tie_positions = ties.nonzero().flatten()
                # keep the ties after the first `ties_to_remove` ones (in flat order, across matrices in order)
                survivors = tie_positions[ties_to_remove:]
                ties_to_remove = max(0, ties_to_remove - tie_positions.numel())
                flat_keep = keep.flatten()
                flat_keep[survivors] = True
                keep = flat_keep.view_as(keep)
            else:
                keep = keep | (kept_masks[n] & (score == threshold))
            new[n] = keep.cpu()
    return Mask(new)


@torch.no_grad()
def random_prune(
    weights: Mapping[str, torch.Tensor], sparsity: float, seed: int, scope: str = "global"
) -> Mask:
    """Remove exactly round(sparsity * N) weights chosen uniformly at random (per group), reproducible by seed."""
    check_sparsity(sparsity)
    generator = torch.Generator().manual_seed(seed)
    new = OrderedDict((n, torch.ones(w.shape, dtype=torch.bool)) for n, w in weights.items())
    for names in scope_groups(weights, scope):
        sizes = [weights[n].numel() for n in names]
        total = sum(sizes)
        flat = torch.ones(total, dtype=torch.bool)
        flat[torch.randperm(total, generator=generator)[: round(sparsity * total)]] = False
        for n, part in zip(names, torch.split(flat, sizes)):
            new[n] = part.view(weights[n].shape).clone()
    return Mask(new)


def oneshot_prune(weights: Mapping[str, torch.Tensor], sparsity: float, scope: str = "global") -> Mask:
    """One-shot global magnitude pruning of the weights as loaded (no training before pruning)."""
    return magnitude_prune(weights, Mask.ones_like(weights), sparsity, scope)
