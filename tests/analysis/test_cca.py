"""SVCCA, PWCCA and linear CKA against cases with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from utils.analysis.cca import canonical_correlations, check_cca_samples, linear_cka, principal_basis, pwcca, svcca
from utils.infra.errors import UserError


def _data(n: int = 500, d: int = 12, seed: int = 0) -> np.ndarray:
    """Anisotropic data with an offset, so an implementation that forgot to centre or to whiten would show it."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) * np.linspace(0.2, 5.0, d) + 7.0


def test_a_representation_against_itself_scores_one():
    x = _data()
    assert svcca(x, x)["value"] == pytest.approx(1.0, abs=1e-10)
    assert pwcca(x, x) == pytest.approx(1.0, abs=1e-10)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_cca_is_invariant_to_invertible_linear_maps_and_cka_is_not():
    x = _data()
    rng = np.random.default_rng(1)
    a = rng.standard_normal((12, 12)) + 3 * np.eye(12)  # invertible, far from orthogonal
    assert np.linalg.cond(a) < 100
    y = x @ a - 4.0
    rho = canonical_correlations(principal_basis(x), principal_basis(y)).correlations
    np.testing.assert_allclose(rho, np.ones(12), atol=1e-10)
    assert pwcca(x, y) == pytest.approx(1.0, abs=1e-10)
    assert svcca(x, y, variance=1.0)["value"] == pytest.approx(1.0, abs=1e-10)
    # SVCCA at 99% keeps each side's own top directions, which a general linear map changes: below 1
    assert svcca(x, y)["value"] < 0.999
    assert linear_cka(x, y) < 0.95  # CKA is not invariant to general linear maps ...
    q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    assert linear_cka(x, 3.5 * x @ q + 2.0) == pytest.approx(1.0, abs=1e-10)  # ... only to rotations and scale
    assert linear_cka(x, x * np.linspace(10, 0.1, 12)) < 0.6  # anisotropic scaling changes it (0.50 here)


def test_independent_noise_scores_its_finite_sample_bias():
    """Independent Gaussian X [n, p], Y [n, q], p <= q: E[sum rho_i^2] = pq / (n-1) (two independent random
    projections in the centred (n-1)-dimensional space), so mean rho^2 = q/(n-1) = 30/999 = 0.030, and mean rho lies
    in [q/(n-1), sqrt(q/(n-1))] = [0.030, 0.173] (simulated: 0.15). The largest rho^2 sits near Wachter's upper
    edge (sqrt(a(1-b)) + sqrt(b(1-a)))^2 = 0.070 (a = p/(n-1), b = q/(n-1)). Not 0: an estimator returning 0, the
    raw correlations of uncentred data, or more correlations than min(p, q) fails one of these."""
    rng = np.random.default_rng(2)
    n, p, q = 1000, 10, 30
    squares, means, tops = [], [], []
    for _ in range(5):
        x = rng.standard_normal((n, p)) + 3.0
        y = rng.standard_normal((n, q)) - 2.0
        rho = canonical_correlations(principal_basis(x), principal_basis(y)).correlations
        assert rho.shape == (p,)
        squares.append(float(np.mean(rho ** 2)))
        means.append(svcca(x, y, variance=1.0)["value"])
        tops.append(float(rho[0] ** 2))
    expected = q / (n - 1)
    assert np.mean(squares) == pytest.approx(expected, rel=0.1)
    assert expected < np.mean(means) < math.sqrt(expected)
    a, b = p / (n - 1), q / (n - 1)
    edge = (math.sqrt(a * (1 - b)) + math.sqrt(b * (1 - a))) ** 2
    assert 0.6 * edge < np.mean(tops) < 1.2 * edge
    x, y = rng.standard_normal((n, 20)), rng.standard_normal((n, 20))
    assert 0.0 < linear_cka(x, y) < 0.05  # simulated about 0.02 for 1000 x 20


def test_pwcca_weights_correlations_by_the_share_of_the_representation():
    """x = [10 s, e1], y = [s, e2] with s shared and e1, e2 independent noise: the canonical correlations are about
    1 and 0, so their plain mean (SVCCA over all directions) is about 0.5; the first canonical variate carries
    x's neuron of norm 10|s|, the second e1's of norm |s|, so PWCCA is about 10/11 = 0.91."""
    rng = np.random.default_rng(3)
    s, e1, e2 = (rng.standard_normal(2000) for _ in range(3))
    x = np.stack([10 * s, e1], axis=1)
    y = np.stack([s, e2], axis=1)
    assert svcca(x, y, variance=1.0)["value"] == pytest.approx(0.5, abs=0.03)
    assert pwcca(x, y) == pytest.approx(10 / 11, abs=0.02)


def test_svcca_keeps_the_directions_explaining_99_percent():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((400, 6)) * np.array([10.0, 10.0, 10.0, 0.1, 0.1, 0.1])
    basis = principal_basis(x, variance=0.99)
    assert basis.u.shape[1] == 3 and basis.rank == 6
    assert principal_basis(x, dims=2).u.shape[1] == 2
    rotation, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    result = svcca(x, x[:, :3] @ rotation)  # x's top 3 directions (the small ones tilt them by ~1e-3)
    assert (result["dims_x"], result["dims_y"]) == (3, 3) and result["value"] == pytest.approx(1.0, abs=1e-4)
    assert svcca(x, x[:, 3:])["value"] < 0.2  # the directions SVCCA drops are the ones y holds


def test_rank_deficient_constant_and_too_small_inputs():
    x = _data(n=200, d=5)
    doubled = np.concatenate([x, x[:, :2] * 2.0], axis=1)  # 7 columns, rank 5
    assert principal_basis(doubled).rank == 5
    assert pwcca(doubled, x) == pytest.approx(1.0, abs=1e-10)
    constant = np.ones((200, 4), dtype=np.float32) * np.float32(0.1)  # e.g. [CLS] at the embedding layer
    assert principal_basis(constant).rank == 0
    assert math.isnan(svcca(constant, x)["value"]) and math.isnan(pwcca(x, constant))
    assert math.isnan(linear_cka(constant, x))
    with pytest.raises(UserError, match="too few samples for CCA: 10, but 5 \\+ 5 directions"):
        pwcca(_data(n=10, d=5), _data(n=10, d=5, seed=1))
    check_cca_samples(11, 5, 5)
    with pytest.raises(UserError, match="too few sentence pairs"):
        check_cca_samples(10, 5, 5, "sentence pairs")


def test_a_permuted_basis_equals_the_basis_of_permuted_rows():
    """The shuffled-pairs baseline reuses each side's SVD: reordering samples only reorders U's rows."""
    from utils.analysis.cca import full_basis, permuted, pwcca_of, svcca_of

    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 12))
    y = x @ rng.normal(size=(12, 9)) + 0.5 * rng.normal(size=(200, 9))
    order = rng.permutation(200)
    bx, by = full_basis(x), full_basis(y)
    fresh, reused = full_basis(y[order]), permuted(by, order)
    assert svcca_of(bx, reused)["value"] == pytest.approx(svcca_of(bx, fresh)["value"], abs=1e-12)
    assert pwcca_of(bx, reused) == pytest.approx(pwcca_of(bx, fresh), abs=1e-12)
    assert svcca_of(bx, by)["value"] == pytest.approx(svcca(x, y)["value"], abs=1e-12)
    assert svcca(x, y)["value"] > 0.9
    assert pwcca_of(bx, reused) < 0.5  # shuffled pairs lose the relation
