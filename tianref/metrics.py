"""Tian's Figure-3 diagnostics, computed at a fraction of the direct cost.

References: Tian (2025) Fig. 3 and the seed paper §6; the quantities as the paper's code logs
them (paper-protocol.md §3: ftf_ratio, fft_dist_from_ideal, G_F, the independence proxy).
docs/math.md §4 derives every shortcut used here.

Symbols (code <-> paper), all on the training set
    F        <-> F = sigma(XW)                    (n, K)
    mu       <-> F^T 1 / n, column means          (K,)
    F_tilde  <-> F~ = P_perp F                    (n, K)
    C        <-> F~^T F~                          (K, K)
    G        <-> F F^T, the RAW sample Gram       (n, n)   (never formed)
    R        <-> P_perp (Y_0 - Yhat),  Y_0 = E - 1/M           (n, M)
    G_F      <-> R V^T                            (n, K)   (never formed)
    Q        <-> R^T R                            (M, M)

ftf_ratio = mean_{j != l} |C_jl| / mean_j |C_jj|

rho_tian  = ||G - ((d - o) I + o 1 1^T)||_F / ||G||_F,  d = mean diag G, o = mean off-diag G.
    The paper's code uses the raw G = F F^T (its text writes P_perp F F^T; we follow the code).
    With tau = tr C and u = F~ mu, writing G = F~F~^T + u1^T + 1u^T + |mu|^2 11^T (all cross
    terms vanish because F~^T 1 = 0) gives, exactly,
        ||G||_F^2         = ||C||_F^2 + 2n mu^T C mu + n^2 |mu|^4
        ||G - ideal||_F^2 = ||C||_F^2 + 2n mu^T C mu - tau^2 / (n - 1)
    so one K x K product C serves both metrics, where the paper's code forms F F^T (n x n)
    and F~^T F~ (K x K) separately. tests/test_metrics.py checks this against the direct form.

gF_norm = ||G_F||_F with ||G_F||_F^2 = tr(V Q V^T), and column inner products
    g_j^T g_j' = (V Q V^T)_{j j'} -- so G_F (n x K) is never formed either.

Independence proxy: |cos(g_j, g_j')| over host-drawn random pairs j != j'; we log the lower
median (torch.median's convention) and the 95th percentile (linear interpolation).
"""
from __future__ import annotations

import math

import numpy as np  # host: the pairs' offsets and the percentile's indices

from tianref.backend import stacked_dot, to_host, xp_name


BLOCK_BYTES = 1 << 20      # float64 rows of C per block in _gram_sums: 1 MiB, about one core's L2


def _gram_sums(xp, C, mu):
    """(sum_jl |C_jl|, ||C||_F^2, C mu) in float64 from C (S, K, K) in the training dtype and mu (S, K)
    float64, a block of rows at a time: each block is cast to float64 while it sits in cache, so C is
    read once and no (K, K) float64 copy or |C| temporary is made (about 4x faster than on a float64
    copy at K = 2048, float32; bench/bench_rows.py). The same values as on a float64 copy of C up to
    the order of the float64 sums (the casts are exact). Returns (S,), (S,), (S, K)."""
    S, K = C.shape[0], C.shape[-1]
    # rows per block; on a GPU one block (no cache to fit, and every block costs kernel launches)
    b = K if xp_name(xp) == "cupy" else max(1, BLOCK_BYTES // (8 * K))
    abs_sum = fro2 = xp.zeros(S, dtype=xp.float64)
    C_mu = []
    for r in range(0, K, b):
        Cb = C[:, r:r + b].astype(xp.float64)            # (S, b, K) float64, in cache
        abs_sum = abs_sum + xp.abs(Cb).sum(axis=(-2, -1))
        flat = Cb.reshape(S, -1)
        fro2 = fro2 + stacked_dot(xp, flat, flat)
        C_mu.append((Cb @ mu[:, :, None])[..., 0])      # (S, b)
    return abs_sum, fro2, xp.concatenate(C_mu, axis=-1)


def feature_gram_metrics(xp, F, F_sum=None):
    """(ftf_ratio, rho_tian) as 0-d float64 arrays, from one K x K product.  F (n, K); F_sum its
    column sums F^T 1 if known (mu = F_sum / n is F.mean(axis=0) bit for bit)."""
    F_sum = F.sum(axis=0) if F_sum is None else F_sum
    ftf, rho = feature_gram_runs(xp, F[None], F_sum[None])
    return ftf[0], rho[0]


def feature_gram_runs(xp, F, F_sum):
    """(ftf_ratio (S,), rho_tian (S,)) of S stacked runs: F (S, n, K), F_sum (S, K) its column sums.

    One stacked product F~^T F~ (S, K, K): NumPy computes it slice by slice with a SYRK each, the bits
    of one run, and a device in one batched call. On the host a stack is taken one run at a time (each
    run's C then stays in cache while its blocks are summed); on a device all S at once."""
    S, n, K = F.shape
    if xp_name(xp) == "numpy" and S > 1:
        out = [feature_gram_runs(xp, F[s:s + 1], F_sum[s:s + 1]) for s in range(S)]
        return xp.concatenate([o[0] for o in out]), xp.concatenate([o[1] for o in out])
    mu = F_sum / n                                       # (S, K)   column means
    F_tilde = F - mu[:, None, :]                         # (S, n, K) P_perp F
    C = F_tilde.swapaxes(-1, -2) @ F_tilde               # (S, K, K) F~^T F~ (training dtype; NumPy: a SYRK a slice)
    mu = mu.astype(xp.float64)                           # reductions below in float64
    abs_sum, C_fro2, C_mu = _gram_sums(xp, C, mu)        # sum |C_jl|, ||C||_F^2 = ||F~ F~^T||_F^2, C mu (S, K)
    diag = xp.diagonal(C, axis1=-2, axis2=-1).astype(xp.float64)      # (S, K) C_jj
    diag_abs = xp.abs(diag).sum(axis=-1)
    ftf_ratio = ((abs_sum - diag_abs) / (K * (K - 1))) / (diag_abs / K)

    uu = stacked_dot(xp, mu, C_mu)                       # mu^T C mu = ||F~ mu||^2
    tau = diag.sum(axis=-1)                              # tr C
    mu2 = stacked_dot(xp, mu, mu)                        # |mu|^2
    G_fro2 = C_fro2 + 2 * n * uu + n * n * mu2 * mu2     # ||G||_F^2
    E_fro2 = C_fro2 + 2 * n * uu - tau * tau / (n - 1)   # ||G - ideal||_F^2
    rho = xp.sqrt(xp.maximum(E_fro2, 0.0) / G_fro2)
    return ftf_ratio, rho


def residual(xp, Yhat, y):
    """R = P_perp (Y_0 - Yhat) in float64, (n, M); Y_0 = onehot(y) - 1/M.  S stacked runs: (S, n, M).

    Formed in one (n, M) float64 buffer: every entry first gets -1/M - yhat, the label's entry of each
    row then (1 - 1/M) - yhat, and the column means are subtracted in place. Each entry is the same
    float64 operation as Y_0 - Yhat on an explicit Y_0 (whose entries are -1/M and the rounded 1 - 1/M),
    so R has the bits of that direct form (tests/test_metrics.py) with three passes fewer."""
    n, M = Yhat.shape[-2:]
    R = Yhat.astype(xp.float64)                          # (..., n, M)  yhat in float64 (exact)
    at_label = xp.take_along_axis(R, y[..., None], axis=-1)[..., 0]     # (..., n)  yhat at the label
    xp.subtract(-1.0 / M, R, out=R)                      # -1/M - yhat everywhere
    lead = tuple(xp.arange(k).reshape((k,) + (1,) * (y.ndim - 1 - i)) for i, k in enumerate(y.shape))
    R[lead + (y,)] = (1.0 - 1.0 / M) - at_label          # (1 - 1/M) - yhat at the label
    R -= R.mean(axis=-2, keepdims=True)                  # centred over samples
    return R


def gradient_field_metrics(xp, Yhat, y, V, j, jp):
    """(gF_norm, indep_cos_med, indep_cos_p95) as 0-d float64 arrays.

    j, jp : (m,) int arrays of column pairs with j != jp (drawn on the host; device arrays are read back).
    """
    out = gradient_field_runs(xp, Yhat[None], y[None], V[None], [(to_host(j), to_host(jp))])
    return tuple(x[0] for x in out)


def gradient_field_runs(xp, Yhat, y, V, pairs, q: float = 95.0):
    """gradient_field_metrics of S stacked runs: Yhat (S, n, M), y (S, n), V (S, K, M) and each run's
    own host pairs [(j, jp)] (m_s >= 1 each). Returns (gF_norm, indep_cos_med, indep_cos_p95), each (S,).

    Everything for all S at once: R, Q (NumPy: a SYRK per slice), V Q, the column norms, the pairs'
    cosines (one gather of every run's pairs, offset by s K), and each run's lower median and q-th
    percentile from one sort of the (S, max m_s) table of cosines padded with NaN (NaN sorts last, so a
    run's m_s values come first, in NumPy's order). The percentile is NumPy's default ('linear'):
    virtual index h = (m - 1) q / 100, its floor and the next order statistic, and NumPy's two-sided lerp,
    computed with the same float64 operations, so the numbers are np.percentile's bit for bit."""
    S, K, M = V.shape
    R = residual(xp, Yhat, y)                            # (S, n, M)
    Q = R.swapaxes(-1, -2) @ R                           # (S, M, M)  R^T R (NumPy: a SYRK per slice)
    V64 = V.astype(xp.float64)                           # (S, K, M)
    VQ = V64 @ Q                                         # (S, K, M)
    col_norm2 = (VQ * V64).sum(axis=-1)                  # (S, K)  ||g_j||^2 = (V Q V^T)_jj
    gF_norm = xp.sqrt(col_norm2.sum(axis=-1))            # (S,)    ||G_F||_F
    # host: the pairs of every run as rows of the (S K, M) stacks, and each cosine's place in the table
    m = [len(j) for j, _ in pairs]
    J = xp.asarray(np.concatenate([np.asarray(j) + s * K for s, (j, _) in enumerate(pairs)]))
    JP = xp.asarray(np.concatenate([np.asarray(jp) + s * K for s, (_, jp) in enumerate(pairs)]))
    at = (xp.asarray(np.repeat(np.arange(S), m)), xp.asarray(np.concatenate([np.arange(k) for k in m])))
    dots = (xp.take(VQ.reshape(S * K, M), J, axis=0) * xp.take(V64.reshape(S * K, M), JP, axis=0)).sum(axis=1)
    cn = col_norm2.reshape(S * K)
    cos = xp.abs(dots) / xp.sqrt(xp.take(cn, J) * xp.take(cn, JP))   # (sum m_s,)  |g_j^T g_j'| / norms
    table = xp.full((S, max(m)), xp.nan, dtype=xp.float64)
    table[at] = cos
    srt = xp.sort(table, axis=-1)                        # (S, max m_s)  each run's m_s cosines first, as NumPy
    # sorts them (NaN last), then the padding: a positive NaN, last in NumPy's order and in a radix sort's
    # (a GPU's), which orders floats by their bits
    runs = xp.asarray(np.arange(S))
    med = srt[runs, xp.asarray(np.array([(k - 1) // 2 for k in m]))]  # (S,)  lower median
    h = [(k - 1) * (q / 100) for k in m]                 # host: NumPy's virtual index of the percentile
    lo = [min(math.floor(v), k - 1) for v, k in zip(h, m)]
    hi = [min(f + 1, k - 1) for f, k in zip(lo, m)]
    t = xp.asarray(np.array([v - f for v, f in zip(h, lo)]))          # (S,) gamma
    a, b = srt[runs, xp.asarray(np.array(lo))], srt[runs, xp.asarray(np.array(hi))]
    d = b - a
    p = xp.where(t >= 0.5, b - d * (1 - t), a + d * t)   # (S,)  NumPy's lerp
    pads = xp.asarray(np.array([max(m) - k for k in m]))
    p = xp.where(xp.isnan(srt).sum(axis=-1) > pads, xp.nan, p)   # a NaN cosine (a zero column): NaN, as NumPy
    return gF_norm, med, p


def draw_pairs(rng, K: int, m: int = 500):
    """Host: m pairs uniform on [0, K) with replacement, pairs with j == j' dropped."""
    j = rng.integers(0, K, size=m)
    jp = rng.integers(0, K, size=m)
    keep = j != jp
    return j[keep], jp[keep]
