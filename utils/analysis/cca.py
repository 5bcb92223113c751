"""How alike are two sets of representations of the same inputs? SVCCA, PWCCA and linear CKA.

X is [n, d1] and Y is [n, d2]: row i of both describes input i (one sentence in two languages, or under two
models). Every measure centres each feature first. CCA comes from orthonormal bases of the centred column spaces
(Bjorck & Golub 1973: the canonical correlations are the singular values of Ux^T Uy), so nothing is inverted and
collinear or constant features cost no accuracy. Unrelated data do not score 0 (CCA picks the best-aligned
directions), which is why the scripts report every measure beside its value on shuffled pairs. Definitions,
references and the finite-sample bias with simulated figures: docs/analysis.md, "Representation similarity".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from utils.infra.errors import UserError


def centered(x: np.ndarray) -> np.ndarray:
    """float64 copy with every column's mean removed."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"representations must be [samples, features], got shape {x.shape}")
    return x - x.mean(axis=0, keepdims=True)


def _eps(x: np.ndarray) -> float:
    return float(np.finfo(x.dtype).eps if np.issubdtype(x.dtype, np.floating) else np.finfo(np.float64).eps)


def _tolerance(x: np.ndarray) -> float:
    """A scale below which a side counts as constant: max(n, d) * eps of the input's precision * ||X||_F."""
    return max(x.shape) * _eps(x) * float(np.linalg.norm(np.asarray(x, dtype=np.float64)))


def _rank_tolerance(x: np.ndarray, singular_values: np.ndarray) -> float:
    """Centred singular values below this are rounding noise: numpy's matrix_rank rule on the centred data
    (max(n, d) * eps * s_max), and never below the noise that centring values of size max|x| leaves
    (sqrt(n d) * eps * max|x|). Not ||X||_F of the uncentred data: a large mean (mBERT's outlier dimensions)
    would then hide real directions of small variance."""
    top = float(singular_values[0]) if singular_values.size else 0.0
    magnitude = float(np.max(np.abs(x))) if x.size else 0.0
    return max(max(x.shape) * _eps(x) * top, math.sqrt(x.shape[0] * x.shape[1]) * _eps(x) * magnitude)


@dataclass
class Basis:
    """An orthonormal basis of a representation's top centred directions."""

    xc: np.ndarray  # [n, d] centred data
    u: np.ndarray  # [n, k] orthonormal columns
    singular_values: np.ndarray  # [k]
    rank: int  # numerical rank of the centred data (k <= rank)


def principal_basis(x: np.ndarray, variance: Optional[float] = None, dims: Optional[int] = None) -> Basis:
    """Top singular directions of centred x: all above the rank tolerance, or the fewest explaining `variance`
    of the total (SVCCA's 0.99), or the top `dims`; both limits apply when both are given."""
    return truncated(full_basis(x), variance, dims)


def full_basis(x: np.ndarray) -> Basis:
    """Every singular direction of centred x above the rank tolerance (one SVD; `truncated` cuts it down)."""
    xc = centered(x)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    rank = int((s > _rank_tolerance(np.asarray(x), s)).sum())
    return Basis(xc, u[:, :rank], s[:rank], rank)


def truncated(basis: Basis, variance: Optional[float] = None, dims: Optional[int] = None) -> Basis:
    """The leading directions of `basis` explaining `variance` of its total, and at most `dims` of them."""
    keep, s = basis.rank, basis.singular_values
    if variance is not None and keep:
        if not 0.0 < variance <= 1.0:
            raise UserError(f"the variance to keep must be in (0, 1], got {variance}")
        energy = np.cumsum(s ** 2) / float(np.sum(s ** 2))
        keep = min(keep, int(np.searchsorted(energy, variance - 1e-12)) + 1)
    if dims is not None:
        if dims < 1:
            raise UserError(f"the number of directions to keep must be >= 1, got {dims}")
        keep = min(keep, dims)
    return Basis(basis.xc, basis.u[:, :keep], s[:keep], basis.rank)


def permuted(basis: Basis, order: np.ndarray) -> Basis:
    """The basis of the same data with its samples (rows) reordered: no new SVD needed."""
    return Basis(basis.xc[order], basis.u[order], basis.singular_values, basis.rank)


def check_cca_samples(n: int, dims_x: int, dims_y: int, what: str = "samples") -> None:
    """CCA of dx and dy directions needs n > dx + dy: the centred data live in n-1 dimensions, where two spaces of
    dx and dy dimensions share dx + dy - (n-1) directions whatever the data, each a canonical correlation of 1."""
    if n <= dims_x + dims_y:
        raise UserError(f"too few {what} for CCA: {n}, but {dims_x} + {dims_y} directions need more than "
                        f"{dims_x + dims_y} (else canonical correlations of 1 arise whatever the data)")


@dataclass
class CCAResult:
    correlations: np.ndarray  # [k] descending, in [0, 1]
    variates_x: np.ndarray  # [n, k] unit-norm canonical variates of x
    variates_y: np.ndarray  # [n, k]


def canonical_correlations(bx: Basis, by: Basis) -> CCAResult:
    """CCA between two bases of the same n samples (see the module docstring)."""
    n = bx.u.shape[0]
    if by.u.shape[0] != n:
        raise ValueError(f"x has {n} samples but y has {by.u.shape[0]}")
    check_cca_samples(n, bx.u.shape[1], by.u.shape[1])
    p, s, qt = np.linalg.svd(bx.u.T @ by.u, full_matrices=False)
    return CCAResult(np.clip(s, 0.0, 1.0), bx.u @ p, by.u @ qt.T)


def svcca(x: np.ndarray, y: np.ndarray, variance: float = 0.99, dims: Optional[int] = None) -> dict:
    """Mean canonical correlation of the top directions explaining `variance` (or the top `dims`) of each side.

    Returns {'value', 'dims_x', 'dims_y'}; value is NaN when a side is constant (e.g. [CLS] at the embeddings).
    """
    return svcca_of(full_basis(x), full_basis(y), variance, dims)


def svcca_of(bx: Basis, by: Basis, variance: float = 0.99, dims: Optional[int] = None) -> dict:
    """`svcca` on full bases (`full_basis`)."""
    bx, by = truncated(bx, None if dims else variance, dims), truncated(by, None if dims else variance, dims)
    if not bx.u.shape[1] or not by.u.shape[1]:
        return {"value": math.nan, "dims_x": bx.u.shape[1], "dims_y": by.u.shape[1]}
    result = canonical_correlations(bx, by)
    return {"value": float(result.correlations.mean()), "dims_x": bx.u.shape[1], "dims_y": by.u.shape[1]}


def pwcca(x: np.ndarray, y: np.ndarray, dims: Optional[int] = None) -> float:
    """Projection-weighted mean canonical correlation (Morcos et al. 2018); all directions, or the top `dims`."""
    return pwcca_of(full_basis(x), full_basis(y), dims)


def pwcca_of(bx: Basis, by: Basis, dims: Optional[int] = None) -> float:
    """`pwcca` on full bases (`full_basis`)."""
    bx, by = truncated(bx, dims=dims), truncated(by, dims=dims)
    if not bx.u.shape[1] or not by.u.shape[1]:
        return math.nan
    result = canonical_correlations(bx, by)
    variates, neurons = ((result.variates_x, bx.xc) if bx.u.shape[1] <= by.u.shape[1]
                         else (result.variates_y, by.xc))
    weights = np.abs(variates.T @ neurons).sum(axis=1)
    return float(np.sum(weights * result.correlations) / np.sum(weights))


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019); NaN when a side is constant."""
    xc, yc = centered(x), centered(y)
    if xc.shape[0] != yc.shape[0]:
        raise ValueError(f"x has {xc.shape[0]} samples but y has {yc.shape[0]}")
    norm_x = np.linalg.norm(xc.T @ xc)
    norm_y = np.linalg.norm(yc.T @ yc)
    if norm_x <= _tolerance(np.asarray(x)) ** 2 or norm_y <= _tolerance(np.asarray(y)) ** 2:
        return math.nan
    return float(np.linalg.norm(yc.T @ xc) ** 2 / (norm_x * norm_y))
