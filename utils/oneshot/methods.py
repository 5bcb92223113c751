"""The one-shot pruning methods, one weight matrix at a time: magnitude, Wanda and SparseGPT.

Every function takes the matrix as (outputs, inputs), i.e. nn.Linear's layout (callers transpose GPT-2's Conv1D),
and returns a bool mask of that shape (True = kept). Ties are broken by position (stable sorts), so counts are exact
and results deterministic.

- magnitude: |W| compared over the whole matrix (per layer, the Wanda paper's magnitude baseline).
- Wanda (Sun et al. 2023): |W_ij| * ||X_j||_2 over all calibration tokens, compared within each output row, so every
  row keeps the same count.
- SparseGPT (Frantar & Alistarh 2023): H = 2 X X^T / n + 1% of its mean diagonal; the upper Cholesky factor U of
  H^-1; columns in blocks of 128, the mask of each block chosen once (unstructured) from w^2 / U_jj^2, or at every
  group of M columns (N:M), and each pruned weight's error spread over the columns after it (the OBS update).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import torch

from utils.infra.errors import UserError


@dataclass(frozen=True)
class Structure:
    """unstructured, or N:M (N of every M consecutive input weights of a row are kept)."""

    kept: Optional[int] = None
    group: Optional[int] = None

    @classmethod
    def parse(cls, text: str) -> "Structure":
        if text == "unstructured":
            return cls()
        match = re.fullmatch(r"(\d+):(\d+)", text)
        if not match or not 0 < int(match.group(1)) < int(match.group(2)):
            raise UserError(f"--structure must be 'unstructured' or N:M with 0 < N < M (such as 2:4), got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def is_nm(self) -> bool:
        return self.group is not None

    @property
    def sparsity(self) -> Optional[float]:
        """The only sparsity an N:M pattern reaches (None: any)."""
        return None if self.group is None else 1 - self.kept / self.group

    def __str__(self) -> str:
        return "unstructured" if self.group is None else f"{self.kept}:{self.group}"

    def check(self, sparsity: float) -> None:
        if self.is_nm and abs(sparsity - self.sparsity) > 1e-9:
            raise UserError(f"--structure {self} keeps {self.kept} of every {self.group} weights, i.e. sparsity "
                            f"{self.sparsity:g}; --sparsity {sparsity:g} cannot be reached with it")

    def check_width(self, name: str, inputs: int) -> None:
        if self.is_nm and inputs % self.group:
            raise UserError(f"--structure {self}: {name} has {inputs} inputs, not a multiple of {self.group}")


def _prune_lowest(scores: torch.Tensor, count: int) -> torch.Tensor:
    """Keep-mask of a 2-D score tensor with the `count` lowest entries of each row removed (ties: first first)."""
    keep = torch.ones_like(scores, dtype=torch.bool)
    if count > 0:
        order = torch.sort(scores, dim=-1, stable=True).indices[..., :count]
        keep.scatter_(-1, order, False)
    return keep


def _nm_keep(scores: torch.Tensor, structure: Structure) -> torch.Tensor:
    """In every group of M consecutive columns of each row, keep the N highest scores."""
    rows, cols = scores.shape
    grouped = scores.reshape(rows * cols // structure.group, structure.group)
    return _prune_lowest(grouped, structure.group - structure.kept).reshape(rows, cols)


def keep_by_score(scores: torch.Tensor, sparsity: float, structure: Structure, per_row: bool) -> torch.Tensor:
    """Prune the lowest scores: round(sparsity * size) per row (per_row) or per matrix, or N:M per group."""
    if structure.is_nm:
        return _nm_keep(scores, structure)
    if per_row:
        return _prune_lowest(scores, round(sparsity * scores.shape[1]))
    return _prune_lowest(scores.reshape(1, -1), round(sparsity * scores.numel())).reshape(scores.shape)


def magnitude_mask(weight: torch.Tensor, sparsity: float, structure: Structure) -> torch.Tensor:
    return keep_by_score(weight.detach().float().abs(), sparsity, structure, per_row=False)


def wanda_mask(weight: torch.Tensor, input_sq_norms: torch.Tensor, sparsity: float,
               structure: Structure) -> torch.Tensor:
    """|W_ij| * ||X_j||_2, where input_sq_norms[j] = sum over calibration tokens of x_j^2; compared per row."""
    scores = weight.detach().double().abs() * input_sq_norms.to(weight.device, torch.float64).sqrt().unsqueeze(0)
    return keep_by_score(scores, sparsity, structure, per_row=True)


def hessian_inverse_factor(hessian: torch.Tensor, weight: torch.Tensor, damping: float) -> torch.Tensor:
    """The upper Cholesky factor of (H + damping * mean(diag H) * I)^-1. Inputs never seen (diag 0) get H_jj = 1
    and their weights are zeroed, as the reference implementation does. Changes `hessian` and `weight`."""
    dead = torch.diag(hessian) == 0
    hessian[dead, dead] = 1
    weight[:, dead] = 0
    hessian.diagonal().add_(damping * torch.mean(torch.diag(hessian)))
    try:
        inverse = torch.cholesky_inverse(torch.linalg.cholesky(hessian))
        return torch.linalg.cholesky(inverse, upper=True)
    except torch.linalg.LinAlgError:
        raise UserError("SparseGPT: the damped Hessian is not positive definite; raise --sparsegpt_damping "
                        "or use more calibration samples") from None


@torch.no_grad()
def sparsegpt_prune(weight: torch.Tensor, hessian: torch.Tensor, sparsity: float, structure: Structure,
                    block_size: int = 128, damping: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """(keep-mask, updated weight) of one matrix; computed in float32, the weight returned in its own dtype."""
    W = weight.detach().float().clone()
    U = hessian_inverse_factor(hessian.float().clone(), W, damping)
    rows, cols = W.shape
    keep = torch.ones_like(W, dtype=torch.bool)
    for start in range(0, cols, block_size):
        end = min(start + block_size, cols)
        W1, U1 = W[:, start:end].clone(), U[start:end, start:end]
        errors = torch.zeros_like(W1)
        keep1 = torch.ones_like(W1, dtype=torch.bool)
        if not structure.is_nm:
            keep1 = keep_by_score(W1 ** 2 / torch.diag(U1).reshape(1, -1) ** 2, sparsity, structure, per_row=False)
        for i in range(end - start):
            if structure.is_nm and i % structure.group == 0:
                group = slice(i, i + structure.group)
                scores = W1[:, group] ** 2 / torch.diag(U1)[group].reshape(1, -1) ** 2
                keep1[:, group] = _nm_keep(scores, structure)
            w, d = W1[:, i], U1[i, i]
            q = torch.where(keep1[:, i], w, torch.zeros_like(w))
            error = (w - q) / d
            W1[:, i:] -= error.unsqueeze(1) @ U1[i, i:].unsqueeze(0)
            W1[:, i] = q
            errors[:, i] = error
        W[:, start:end] = W1
        keep[:, start:end] = keep1
        W[:, end:] -= errors @ U[start:end, end:]
    return keep, W.to(weight.dtype)


# ---------------------------------------------------------------------------------------------------------------
# One matrix inside a block: the statistics its method gathers from the calibration inputs, then its mask
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    method: str
    sparsity: float
    structure: Structure
    block_size: int = 128  # SparseGPT's columns per block
    damping: float = 0.01  # SparseGPT's damping, a fraction of the Hessian's mean diagonal


METHODS = ("magnitude", "wanda", "sparsegpt")
NEEDS_CALIBRATION = {"magnitude": False, "wanda": True, "sparsegpt": True}


class LayerPruner:
    """Gathers one matrix's input statistics (`add`: a batch of its inputs, any leading shape) and prunes it.

    `weight` is (outputs, inputs); `transposed` says the parameter holds it as (inputs, outputs) (Conv1D).
    """

    def __init__(self, parameter: torch.nn.Parameter, transposed: bool, settings: Settings) -> None:
        self.parameter, self.transposed, self.settings = parameter, transposed, settings
        inputs = parameter.shape[0] if transposed else parameter.shape[1]
        device = parameter.device
        self.sq_norms = torch.zeros(inputs, dtype=torch.float64, device=device) \
            if settings.method == "wanda" else None
        self.hessian = torch.zeros(inputs, inputs, dtype=torch.float32, device=device) \
            if settings.method == "sparsegpt" else None
        self.samples = 0

    def add(self, inputs: torch.Tensor) -> None:
        x = inputs.detach().reshape(-1, inputs.shape[-1]).float()
        self.samples += inputs.shape[0] if inputs.dim() > 2 else 1
        if self.sq_norms is not None:
            self.sq_norms += x.pow(2).sum(0, dtype=torch.float64)
        if self.hessian is not None:
            self.hessian += x.t() @ x

    @torch.no_grad()
    def prune(self) -> torch.Tensor:
        """Zero the pruned weights (SparseGPT also updates the kept ones); returns the mask in the parameter's shape."""
        s = self.settings
        weight = self.parameter.t() if self.transposed else self.parameter
        if s.method == "magnitude":
            keep, new = magnitude_mask(weight, s.sparsity, s.structure), None
        elif s.method == "wanda":
            keep, new = wanda_mask(weight, self.sq_norms, s.sparsity, s.structure), None
        else:
            hessian = self.hessian * (2 / max(self.samples, 1))
            keep, new = sparsegpt_prune(weight, hessian, s.sparsity, s.structure, s.block_size, s.damping)
        if new is not None:
            weight.copy_(new)
        weight.mul_(keep.to(weight.dtype))
        return (keep.t() if self.transposed else keep).contiguous().cpu()
