"""Forward/backward of sigma(XW)V and both losses: finite differences in float64.

Central differences along a random direction U: (L(theta + hU) - L(theta - hU)) / 2h must equal
<grad, U>. With h = 1e-6 in float64 the truncation error is O(h^2 * |L'''|) ~ 1e-12 and the
rounding error ~ eps * |L| / h ~ 1e-10 relative, so rtol = 1e-6 leaves a wide margin while a
wrong factor (2, 1/n, a missing sigma') fails by orders of magnitude.
"""
import math
import re

import numpy as np
import pytest

from tianref import data, loss as losses, model
from tianref.backend import to_host

M, K, SEED = 7, 12, 3


def _problem(xp, act_scale=1.0):
    train_idx, _, W0, V0 = data.init_host(M, K, 30, SEED)
    batch = data.make_batch(xp, M, train_idx)
    params = {"W": xp.asarray(W0 * act_scale), "V": xp.asarray(V0 * 5)}
    return batch, params


def _loss(xp, params, batch, act, which):
    Yhat, _ = model.forward(xp, params, batch, act)
    L, _ = losses.loss_and_grad(xp, Yhat, batch.y, which)
    return float(L)


@pytest.mark.parametrize("act", model.ACTIVATIONS)
@pytest.mark.parametrize("which", losses.LOSSES)
def test_gradient_matches_central_differences(xp, act, which):
    batch, params = _problem(xp, act_scale=3.0)
    Yhat, cache = model.forward(xp, params, batch, act)
    _, dL_dYhat = losses.loss_and_grad(xp, Yhat, batch.y, which)
    grads = model.backward(xp, params, batch, cache, dL_dYhat, act)
    rng = np.random.default_rng(0)
    for name in ("W", "V"):
        U = rng.standard_normal(params[name].shape)
        h = 1e-6
        plus = dict(params, **{name: params[name] + h * xp.asarray(U)})
        minus = dict(params, **{name: params[name] - h * xp.asarray(U)})
        fd = (_loss(xp, plus, batch, act, which) - _loss(xp, minus, batch, act, which)) / (2 * h)
        analytic = float((to_host(grads[name]) * U).sum())
        assert analytic == pytest.approx(fd, rel=1e-6, abs=1e-12), (name, act, which)


def test_forward_matches_materialised_onehot_input():
    """XW via gathers equals the explicit one-hot X @ W."""
    batch, params = _problem(np)
    a, b, _ = data.pairs(M)
    X = np.zeros((batch.n, 2 * M))
    X[np.arange(batch.n), batch.a] = 1
    X[np.arange(batch.n), M + batch.b] = 1
    H, F = model.hidden(np, params["W"], batch, "sqr")
    np.testing.assert_array_equal(H, X @ params["W"])       # one-hot products are exact
    np.testing.assert_array_equal(F, (X @ params["W"]) ** 2)


def test_segment_sum_is_onehot_transpose_product():
    """dL/dW = X^T dL/dH: segment sums equal the explicit product (float64, rtol 1e-14: reordering only)."""
    batch, _ = _problem(np)
    R = np.random.default_rng(1).standard_normal((batch.n, K))
    X = np.zeros((batch.n, 2 * M))
    X[np.arange(batch.n), batch.a] = 1
    X[np.arange(batch.n), M + batch.b] = 1
    got = np.concatenate([model.segment_sum(np, R, batch.seg_a), model.segment_sum(np, R, batch.seg_b)])
    np.testing.assert_allclose(got, X.T @ R, rtol=1e-14, atol=1e-14)


def test_tian_loss_value_by_hand():
    """One sample, M = 3: z = yhat - mean, t = e_y - 1/3, L = |z - t|^2 (no 1/2)."""
    Yhat = np.array([[1.0, 2.0, 6.0]])
    L, g = losses.loss_tian(np, Yhat, np.array([0]))
    z = np.array([-2.0, -1.0, 3.0])
    t = np.array([2 / 3, -1 / 3, -1 / 3])
    assert float(L) == pytest.approx(((z - t) ** 2).sum(), rel=1e-15, abs=0)   # 3 terms: ~1 ulp
    np.testing.assert_allclose(g[0], 2 * (z - t), rtol=1e-15)


def test_theory_loss_is_sample_centred_half_squared_norm():
    rng = np.random.default_rng(2)
    Yhat = rng.standard_normal((5, 4))
    y = np.array([0, 1, 2, 3, 1])
    E = np.eye(4)[y]
    P = np.eye(5) - np.ones((5, 5)) / 5
    J, g = losses.loss_theory(np, Yhat, y)
    # a 5×4 problem: both routes round ~20 times, ~1e-15 relative; 1e-13 leaves a margin of 100
    assert float(J) == pytest.approx(0.5 * np.linalg.norm(P @ (E - Yhat)) ** 2, rel=1e-13, abs=0)
    np.testing.assert_allclose(g, -P @ (E - Yhat), rtol=1e-13, atol=1e-15)


def test_activation_values():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(model.sigma(np, x, "sqr"), x ** 2)
    np.testing.assert_allclose(model.sigma(np, x, "relu"), [0, 0, 0, 0.5, 2])
    np.testing.assert_allclose(model.sigma(np, x, "relusqr"), [0, 0, 0, 0.25, 4])
    # silu by another identity: x s(x) with s(x) = (1 + tanh(x/2)) / 2, in Python floats; the two
    # routes round differently, by a few ulp of values of size <= 2
    silu_tanh = [v * (1 + math.tanh(v / 2)) / 2 for v in x]
    np.testing.assert_allclose(model.sigma(np, x, "silu"), silu_tanh, rtol=1e-15, atol=1e-16)
    assert model.sigma(np, np.array([0.0]), "silu")[0] == 0.0
    with pytest.raises(ValueError):
        model.sigma(np, x, "tanh")


def test_activation_derivatives_literals():
    """sigma' at literal points, including exactly 0.

    Convention: relu'(0) = 0, as in PyTorch's autograd (the backward of relu passes the gradient
    only where x > 0): a unit sitting exactly at 0 gets no gradient, as in the paper's code.
    """
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(model.sigma_prime(np, x, "relu"), [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(model.sigma_prime(np, x, "relusqr"), [0, 0, 0, 1, 4])
    np.testing.assert_array_equal(model.sigma_prime(np, x, "sqr"), [-4, -1, 0, 1, 4])
    # silu'(0) = s(0) (1 + 0 (1 - s(0))) = 1/2 exactly
    assert model.sigma_prime(np, np.array([0.0]), "silu")[0] == 0.5

    # silu' against central differences of x / (1 + e^-x) in Python floats: h = 1e-5 gives a
    # truncation error h^2 |f'''| / 6 < 1e-10 and a rounding error ~ 1e-16 / h ~ 1e-11
    def silu(v):
        return v / (1 + math.exp(-v))
    fd = [(silu(v + 1e-5) - silu(v - 1e-5)) / 2e-5 for v in x]
    np.testing.assert_allclose(model.sigma_prime(np, x, "silu"), fd, rtol=0, atol=1e-9)


def test_init_bounds_and_determinism():
    tr, te, W, V = data.init_host(71, 2048, 2016, 0)
    assert len(tr) == 2016 and len(te) == 71 * 71 - 2016
    assert np.intersect1d(tr, te).size == 0
    assert np.abs(W).max() <= 1 / np.sqrt(142) and np.abs(V).max() <= 1 / np.sqrt(2048)
    # U(-b, b) has std b/sqrt(3): a loose 2% check that the bound is used, not e.g. 1/fan_in
    assert W.std() == pytest.approx(1 / np.sqrt(142) / np.sqrt(3), rel=0.02)
    tr2, _, W2, _ = data.init_host(71, 2048, 2016, 0)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(W, W2)


def test_init_checks_refuse_each_edge_of_the_split():
    """check_init's ranges at their edges (M = 5, M^2 = 25 pairs): index 24 is a pair, 25 is not; 24
    training pairs leave one to test, 25 leave none (a run without a test set); init_split refuses a
    test_idx of the right length that is not the complement, and keeps the order of one that is."""
    from types import SimpleNamespace
    from tianref.errors import InputError
    cfg = SimpleNamespace(M=5, K=3)
    rng = np.random.default_rng(0)

    def init(idx, **extra):
        return {"W": rng.standard_normal((10, 3)), "V": rng.standard_normal((3, 5)),
                "train_idx": np.asarray(idx, dtype=np.int64), **extra}
    data.check_init(cfg, init([0, 24]))                                  # the last pair is in range
    data.check_init(cfg, init(np.arange(24)))                            # M^2 - 1 pairs: one left to test
    for idx, fragment in (([0, 25], "outside [0, M^2)"), ([-1, 3], "outside [0, M^2)"),
                          (np.arange(25), "between 2 and M^2 - 1"), ([7], "between 2 and M^2 - 1")):
        with pytest.raises(InputError, match=re.escape(fragment)):
            data.check_init(cfg, init(idx))
    train = np.arange(0, 25, 2)                                           # 13 pairs; the complement: 12 odd ones
    odd = np.arange(1, 25, 2)
    tr, te = data.init_split(cfg, init(train))
    np.testing.assert_array_equal(te, odd)                                # the complement, ascending
    tr, te = data.init_split(cfg, init(train, test_idx=odd[::-1].copy()))
    np.testing.assert_array_equal(te, odd[::-1])                          # a given order is kept
    wrong = odd.copy()
    wrong[0] = 0                                                          # right length, one training pair in it
    with pytest.raises(InputError, match="not the complement"):
        data.init_split(cfg, init(train, test_idx=wrong))


def test_segment_sum_host_loop_has_the_bits_of_the_gathered_sum():
    """The host path of segment_sum_padded (c gathers added in slot order) equals the one-gather sum over
    axis 1 bit for bit (the same sequential order), at the paper's segment shape; the fake device path
    takes the one-gather route and equals it too."""
    import numpy as np
    from tianref import data, fakexp, model
    M, K, n = 71, 256, 2016
    train_idx, _, _, _ = data.init_host(M, K, n, 0)
    batch = data.make_batch(np, M, train_idx)
    rng = np.random.default_rng(1)
    Rp = np.concatenate([rng.standard_normal((n, K)).astype(np.float32), np.zeros((1, K), np.float32)])
    for seg in (batch.seg_a, batch.seg_b, batch.seg_y):
        want = Rp[seg].sum(axis=1)                                  # (S, c, K) -> (S, K)
        got = model.segment_sum_padded(np, Rp, seg)
        assert got.dtype == want.dtype and np.array_equal(got, want)
        dev = model.segment_sum_padded(fakexp, fakexp.asarray(Rp), fakexp.asarray(seg))
        assert np.array_equal(fakexp.asnumpy(dev), want)


def test_segment_sum_host_copies_no_rows_and_keeps_the_bits():
    """segment_sum on the host (slots every segment fills gather from R itself, the later ones from a
    copy of their rows behind a zero row) equals segment_sum_padded on R with a zero row appended, bit for
    bit: one run and a stack of three (run offsets s (n+1)), an empty segment (every slot ragged), equal
    segments (no slot ragged), and -0.0 entries (a pad adds +0.0 to them, as the appended row does)."""
    import numpy as np
    from tianref import data, fakexp, model
    M, K, n = 13, 24, 60
    rng = np.random.default_rng(3)
    cases = [rng.integers(0, M, n),                               # ragged segments
             np.concatenate([rng.integers(1, M, n - 1), [1]]),    # segment 0 empty: every slot ragged
             np.arange(n) % 5]                                    # 5 equal segments: no slot ragged
    cases = [(keys, data.segment_index(keys, int(keys.max()) + 1)) for keys in cases]
    for keys, seg in cases:
        m = seg.shape[0]
        R = rng.standard_normal((len(keys), K)).astype(np.float32)
        R[rng.random(R.shape) < 0.2] = -0.0
        want = model.segment_sum_padded(np, np.concatenate([R, np.zeros((1, K), np.float32)]), seg)
        got = model.segment_sum(np, R, seg)
        assert got.shape == (m, K) and np.array_equal(got, want)
        assert np.array_equal(np.signbit(got), np.signbit(want))
        dev = fakexp.asnumpy(model.segment_sum(fakexp, fakexp.asarray(R), fakexp.asarray(seg)))
        assert np.array_equal(dev, want) and np.array_equal(np.signbit(dev), np.signbit(want))
    # a stack of three runs: seg (S, m, c) holds rows of the runs flattened to (S (n+1), K)
    nn = len(cases[0][0])
    segs = [data.segment_index(rng.integers(0, M, nn), M) for _ in range(3)]
    c = max(s.shape[1] for s in segs)
    seg = np.stack([np.pad(s, ((0, 0), (0, c - s.shape[1])), constant_values=nn) + i * (nn + 1)
                    for i, s in enumerate(segs)])
    R = rng.standard_normal((3, nn, K))
    Rp = np.concatenate([R, np.zeros((3, 1, K))], axis=1)
    want = model.segment_sum_padded(np, Rp, seg)
    got = model.segment_sum(np, R, seg)
    assert got.shape == (3, M, K) and np.array_equal(got, want)
    for i in range(3):                                           # each run its own one-run sum
        assert np.array_equal(got[i], model.segment_sum(np, R[i], segs[i]))
