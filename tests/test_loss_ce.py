"""Softmax cross-entropy: the formula, its stability, and its hand-written gradient in float64.

The gradient through the network is also checked by tests/test_model.py (every loss, every
activation); the whole training trajectory against PyTorch's CrossEntropyLoss by
tests/test_torch_reference.py (reference 'ce_relu').
"""
import math

import numpy as np
import pytest

from tianref import loss as losses
from tianref.backend import to_host

# A small literal case worked by hand: Yhat = [[0, ln 3], [ln 2, 0]], y = [0, 0].
#   row 0: lse = ln(1 + 3) = ln 4, yhat_y = 0       -> ln 4
#   row 1: lse = ln(2 + 1) = ln 3, yhat_y = ln 2    -> ln 3 - ln 2
#   L = (ln 4 + ln 3 - ln 2) / 2 = ln(6) / 2
#   softmax rows: [1/4, 3/4] and [2/3, 1/3];  dL/dYhat = (softmax - E)/2
HAND_YHAT = [[0.0, math.log(3.0)], [math.log(2.0), 0.0]]
HAND_Y = [0, 0]
HAND_L = math.log(6.0) / 2
HAND_GRAD = [[(0.25 - 1) / 2, 0.75 / 2], [(2 / 3 - 1) / 2, (1 / 3) / 2]]


def test_hand_worked_case(xp):
    L, g = losses.loss_ce(xp, xp.asarray(np.array(HAND_YHAT)), xp.asarray(np.array(HAND_Y)))
    assert float(L) == pytest.approx(HAND_L, rel=1e-15)
    np.testing.assert_allclose(to_host(g), HAND_GRAD, rtol=1e-15, atol=1e-16)


def _problem(scale=3.0, n=17, M=6, seed=0):
    rng = np.random.default_rng(seed)
    return scale * rng.standard_normal((n, M)), rng.integers(0, M, n)


def test_matches_direct_log_softmax():
    Yhat, y = _problem()
    direct = -np.mean(np.log(np.exp(Yhat)[np.arange(len(y)), y] / np.exp(Yhat).sum(axis=1)))
    L, _ = losses.loss_ce(np, Yhat, y)
    assert float(L) == pytest.approx(direct, rel=1e-13)      # the two orders of rounding differ


def test_gradient_central_differences_random_direction():
    """<dL/dYhat, U> equals (L(Yhat + hU) - L(Yhat - hU)) / 2h; h = 1e-6 in float64 gives
    truncation ~1e-12 and rounding ~1e-10 relative, so rtol 1e-7 fails any wrong factor."""
    Yhat, y = _problem()
    _, g = losses.loss_ce(np, Yhat, y)
    U = np.random.default_rng(1).standard_normal(Yhat.shape)
    h = 1e-6
    fd = (float(losses.loss_ce(np, Yhat + h * U, y)[0]) - float(losses.loss_ce(np, Yhat - h * U, y)[0])) / (2 * h)
    assert float((g * U).sum()) == pytest.approx(fd, rel=1e-7)


def test_stable_for_huge_outputs():
    """Outputs of 1e4 would overflow exp in a naive form; the shifted form is exact: shifting every
    row by a constant leaves softmax and the loss unchanged."""
    Yhat, y = _problem(scale=1.0)
    L0, g0 = losses.loss_ce(np, Yhat, y)
    L1, g1 = losses.loss_ce(np, Yhat + 1e4, y)
    assert np.isfinite(L1) and np.all(np.isfinite(g1))
    assert float(L1) == pytest.approx(float(L0), rel=1e-9)       # 1e4 * eps ~ 2e-12 absolute
    np.testing.assert_allclose(g1, g0, atol=1e-12)
    big = np.zeros((2, 3))
    big[0, 1] = 1e4                                              # a confident correct row: L ~ 0
    big[1, 0] = 1e4                                              # a confident wrong row: L ~ 1e4
    L, g = losses.loss_ce(np, big, np.array([1, 2]))
    assert float(L) == pytest.approx(1e4 / 2, rel=1e-12)
    np.testing.assert_allclose(g, [[0, 0, 0], [0.5, 0, -0.5]], atol=1e-15)


def test_gradient_rows_sum_to_zero_and_dtype_kept(xp):
    Yhat, y = _problem()
    for dt in (np.float32, np.float64):
        L, g = losses.loss_and_grad(xp, xp.asarray(Yhat.astype(dt)), xp.asarray(y), "ce")
        assert g.dtype == dt and g.shape == Yhat.shape
        np.testing.assert_allclose(to_host(g).sum(axis=1), 0, atol=1e-6 if dt == np.float32 else 1e-16)
