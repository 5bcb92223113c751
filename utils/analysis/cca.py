"""How alike are two sets of representations of the same inputs? SVCCA, PWCCA and linear CKA.

X is [n, d1] and Y is [n, d2]: row i of both describes input i (one sentence in two languages, or under two
models). Every measure first centres each feature, so constant offsets never count.

- CCA (Hotelling 1936), computed as Bjorck & Golub (1973) do: orthonormal bases Ux, Uy of the centred column
  spaces (thin SVD, directions below the rank tolerance dropped); the canonical correlations rho_1 >= rho_2 >= ...
  are the singular values of Ux^T Uy (cosines of the principal angles between the two spaces), and the canonical
  variates are Ux P and Uy Q for its singular vectors P, Q. Nothing is inverted, so collinear or constant features
  cost no accuracy; min(rank X, rank Y) correlations.
- SVCCA (Raghu et al. 2017, "SVCCA: Singular Vector Canonical Correlation Analysis..."): keep each side's top
  singular directions explaining 99% of its variance (or a fixed number), run CCA between the reduced
  representations, report the mean canonical correlation.
- PWCCA (Morcos et al. 2018, "Insights on representational similarity in neural networks with canonical
  correlation"): CCA on the whole representations, the mean canonical correlation weighted by how much of the
  representation each canonical variate accounts for: alpha_i = sum_j |<h_i, x_j>| over the (centred) neurons
  x_j of the side with fewer directions, h_i its unit-norm canonical variates, normalised to sum to 1;
  PWCCA = sum_i alpha_i rho_i.
- Linear CKA (Kornblith et al. 2019, "Similarity of Neural Network Representations Revisited"):
  ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on centred X, Y. Invariant to orthogonal transforms and isotropic
  scaling of either side, not to general invertible linear maps (CCA is).

Finite-sample bias: CCA finds the best-aligned directions, so unrelated data do not score 0. For independent
Gaussian X [n, p] and Y [n, q] (p <= q) the squared canonical correlations are the eigenvalues of the product of
two independent random projections in the (n-1)-dimensional centred space: E[sum_i rho_i^2] = pq / (n-1), so the
mean rho^2 is q / (n-1), spread over Wachter's law whose top edge is (sqrt(a(1-b)) + sqrt(b(1-a)))^2 with
a = p/(n-1), b = q/(n-1); mean rho lies between q/(n-1) and sqrt(q/(n-1)). Simulated (20 draws): 734 samples and
64 dimensions a side (the tiny model on the bundled pairs) give mean rho 0.252 (PWCCA 0.252, linear CKA 0.080);
3,003 samples and 768 dimensions (mBERT on WMT14) give 0.442 (CKA 0.204). The scripts therefore report every
measure beside its value on shuffled pairs (the same data, the rows of one side permuted).
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
