"""The host (NumPy) forms of model.py's gathers (with sigma applied block by block) and segment sums.

model.py states each operation once as whole-array code (what a GPU runs). On the host the same
operations on the same numbers are arranged for the CPU's caches, with bit for bit the same result
(tests/test_model.py and tests/test_host_kernels.py compare them):

    hidden               H = W[a] + W[M + b] and F = sigma(H), a block of HOST_BLOCK_BYTES of rows at a
                         time while it sits in cache (a third less memory traffic than whole arrays),
                         sigma written straight into F; without H for a forward pass whose backward
                         is not taken (the test set)
    segment_sum_padded   out = R[seg[:, 0]] + R[seg[:, 1]] + ...: c gathers of (m, K) rows added in slot
                         order into one accumulator (NumPy's own order for the sum over the gathered
                         (m, c, K) array, without that c-times larger temporary)
    segment_sum          the same for R without a pad row, copying only the rows of ragged slots

Shapes: a leading run axis S (S stacked runs, tianref/batch.py) is flattened into the rows.
"""
from __future__ import annotations

HOST_BLOCK_BYTES = 1 << 18  # bytes of H per block: 256 KiB (32 rows at K = 2048 in float32), with its
                            # block of F well inside one core's L2 (measured 7.6 -> 6.8 ms for the
                            # paper-size train and test passes against 64-row blocks and a copied sigma)


def block_rows(K: int, itemsize: int) -> int:
    """Rows of a (rows, K) block of HOST_BLOCK_BYTES."""
    return max(1, HOST_BLOCK_BYTES // (K * itemsize))


def hidden(xp, Wf, ia, ib, sigma_into, keep_H: bool = True):
    """(H, F) for the rows W[ia] + W[ib] of Wf (R, K); ia, ib (..., n) -> H, F (..., n, K).
    ``sigma_into``: (h, out) -> out[...] = sigma(h), elementwise. keep_H=False: H is not formed
    (returned as None)."""
    K = Wf.shape[-1]
    shape = ia.shape + (K,)
    ia, ib = ia.reshape(-1), ib.reshape(-1)                   # (S n,)
    N = ia.shape[0]
    B = block_rows(K, Wf.dtype.itemsize)
    F = xp.empty((N, K), dtype=Wf.dtype)                      # (S n, K)
    H = xp.empty((N, K), dtype=Wf.dtype) if keep_H else None  # (S n, K)
    scratch = None if keep_H else xp.empty((B, K), dtype=Wf.dtype)
    for lo in range(0, N, B):
        hi = min(lo + B, N)
        h = H[lo:hi] if keep_H else scratch[:hi - lo]         # (rows, K) this block of H
        # mode="clip" skips NumPy's bounds-check buffer; the indices come from data.make_batch, in range
        xp.take(Wf, ia[lo:hi], axis=0, out=h, mode="clip")    # W[a]
        h += xp.take(Wf, ib[lo:hi], axis=0)                   # + W[M + b] = X W
        sigma_into(h, F[lo:hi])                               # sigma(X W)
    return (H.reshape(shape) if keep_H else None), F.reshape(shape)


def segment_sum_padded(xp, Rp, seg):
    """Rp (R, K) with a zero pad row, seg (..., m, c) rows of Rp -> (..., m, K), in slot order."""
    out = xp.take(Rp, seg[..., 0], axis=0)                    # (.., m, K)
    for j in range(1, seg.shape[-1]):
        out += xp.take(Rp, seg[..., j], axis=0)               # slot j of every segment
    return out


def segment_sum(xp, R, seg):
    """segment_sum_padded's sum for R (..., n, K) without a pad row; seg (..., m, c) padded with n (run s's
    rows offset by s (n + 1), as data.stack_batches). The slots every segment fills (up to the smallest
    segment's length) gather from R itself; only the rows the remaining slots name are copied, behind
    one zero row for their pads (at the paper's size ~500 of 2016 rows)."""
    n, K = R.shape[-2:]
    c = seg.shape[-1]
    run, row = xp.divmod(seg, n + 1)                      # (.., m, c) run s, row in the run (n: a pad)
    real = row < n                                        # (.., m, c) a real row (a prefix of each segment)
    src = run * n + row                                   # (.., m, c) its row in R flattened to (S n, K)
    Rf = R.reshape(-1, K)                                 # (S n, K)
    filled = real.reshape(-1, c).all(axis=0)              # (c,) slots every segment fills
    j0 = c if filled.all() else int(xp.argmin(filled))    # the first slot with a pad
    tail = real[..., j0:]                                 # (.., m, c - j0)
    rows = src[..., j0:][tail]                            # (t,) the rows of the later slots
    T = xp.empty((len(rows) + 1, K), dtype=R.dtype)       # (t + 1, K): those rows, then a zero row
    xp.take(Rf, rows, axis=0, out=T[:-1], mode="clip")    # (indices in range: "clip" only skips a buffer)
    T[-1] = 0
    at = xp.full(tail.shape, len(rows))                   # (.., m, c - j0) row of T (t: the zero row)
    at[tail] = xp.arange(len(rows))
    out = None
    for j in range(c):                                    # slot order, as segment_sum_padded
        g = xp.take(Rf, src[..., j], axis=0) if j < j0 else xp.take(T, at[..., j - j0], axis=0)   # (.., m, K)
        if out is None:
            out = g
        else:
            out += g
    return out
