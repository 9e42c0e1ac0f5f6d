"""The host forms of model.py's gathers and activations (tianref/host_kernels.py): bit for bit the
whole-array forms that a device runs (the fake device backend computes those with NumPy), for every
activation, one run and a stack of runs, with and without H, on a row count that spans several blocks
and is not a multiple of the block."""
import numpy as np
import pytest

from tianref import data, fakexp, host_kernels, model

M, K = 13, 1024                             # K: float32 blocks of 64 rows, float64 of 32
N = 2 * host_kernels.block_rows(K, 4) + 22    # two whole float32 blocks and a partial one


def _batch(xp, S):
    """A training batch of N pairs and W, float32: one run (S None) or a stack of S runs' batches."""
    runs = [data.init_host(M, K, N, s) for s in range(S or 1)]
    W = np.stack([(r[2] * 3).astype(np.float32) for r in runs])   # |h| ~ 1: no activation near linear
    if S is None:
        return data.make_batch(xp, M, runs[0][0]), W[0]
    return data.stack_batches(xp, M, [r[0] for r in runs], [None] * S), W


@pytest.mark.parametrize("act", model.ACTIVATIONS)
@pytest.mark.parametrize("stack", [None, 3])
def test_hidden_has_the_bits_of_the_whole_array_form(act, stack):
    batch, W = _batch(np, stack)
    dev_batch, _ = _batch(fakexp, stack)
    H_dev, F_dev = model.hidden(fakexp, fakexp.asarray(W), dev_batch, act)
    H_dev, F_dev = fakexp.asnumpy(H_dev), fakexp.asnumpy(F_dev)
    H, F = model.hidden(np, W, batch, act)
    none, F2 = model.hidden(np, W, batch, act, keep_H=False)
    assert H.shape == F.shape == H_dev.shape == ((stack,) if stack else ()) + (N, K)
    assert H.dtype == F.dtype == F2.dtype == F_dev.dtype == np.float32    # array_equal ignores dtypes
    assert np.array_equal(H, H_dev) and np.array_equal(F, F_dev)
    assert none is None and np.array_equal(F2, F_dev)
    none_dev, F2_dev = model.hidden(fakexp, fakexp.asarray(W), dev_batch, act, keep_H=False)
    assert none_dev is None and np.array_equal(fakexp.asnumpy(F2_dev), F_dev)


def test_forward_without_H_gives_the_same_outputs():
    """The test set's forward keeps no H (train.head_of): the outputs are those of the full forward."""
    batch, W = _batch(np, None)
    V = np.random.default_rng(0).standard_normal((K, M)).astype(np.float32)
    Y, (H, F) = model.forward(np, {"W": W, "V": V}, batch, "sqr", beta=2.0)
    Y2, (H2, F2) = model.forward(np, {"W": W, "V": V}, batch, "sqr", beta=2.0, keep_H=False)
    assert H2 is None and np.array_equal(F2, F) and np.array_equal(Y2, Y)
    with pytest.raises(ValueError, match="keep_H=True"):                # a clear error, not a TypeError
        model.backward(np, {"W": W, "V": V}, batch, (H2, F2), np.ones_like(Y), "sqr")


@pytest.mark.parametrize("keep_H", [True, False])
def test_hidden_fills_every_row_at_each_block_boundary(keep_H):
    """Row counts around the block size B (1, B - 1, B, B + 1, 2B + 1): every row of F (and H) is
    W[a] + W[M + b] through sigma, against NumPy's whole-array gather. host_kernels.hidden fills
    np.empty arrays block by block, so a block the loop skips would leave arbitrary memory in its rows;
    the sum of two gathered rows and sigma = x^2 are the same float operations here: equal bits."""
    rng = np.random.default_rng(2)
    W = rng.standard_normal((2 * M, K))
    B = host_kernels.block_rows(K, W.dtype.itemsize)
    for n in (1, B - 1, B, B + 1, 2 * B + 1):
        a, b = rng.integers(0, M, n), rng.integers(0, M, n)
        H, F = host_kernels.hidden(np, W, a, M + b, lambda h, out: np.multiply(h, h, out=out), keep_H)
        want = W[a] + W[M + b]                                        # (n, K)
        assert F.shape == (n, K) and np.array_equal(F, want * want), n
        assert np.array_equal(H, want) if keep_H else H is None
