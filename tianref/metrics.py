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

from tianref.backend import xp_name


BLOCK_BYTES = 1 << 20      # float64 rows of C per block in _gram_sums: 1 MiB, about one core's L2


def _gram_sums(xp, C, mu):
    """(sum_jl |C_jl|, ||C||_F^2, C mu) in float64 from C (K, K) in the training dtype and mu (K,)
    float64, a block of rows at a time: each block is cast to float64 while it sits in cache, so C is
    read once and no (K, K) float64 copy or |C| temporary is made (about 4x faster than on a float64
    copy at K = 2048, float32; bench/bench_rows.py). The same values as on a float64 copy of C up to
    the order of the float64 sums (the casts are exact)."""
    K = C.shape[0]
    # rows per block; on a GPU one block (no cache to fit, and every block costs kernel launches)
    b = K if xp_name(xp) == "cupy" else max(1, BLOCK_BYTES // (8 * K))
    abs_sum = fro2 = xp.zeros((), dtype=xp.float64)
    C_mu = []
    for r in range(0, K, b):
        Cb = C[r:r + b].astype(xp.float64)               # (b, K) float64, in cache
        abs_sum = abs_sum + xp.abs(Cb).sum()
        fro2 = fro2 + xp.vdot(Cb, Cb)
        C_mu.append(Cb @ mu)                             # (b,)
    return abs_sum, fro2, xp.concatenate(C_mu)           # 0-d, 0-d, (K,)


def feature_gram_metrics(xp, F, F_sum=None):
    """(ftf_ratio, rho_tian) as 0-d float64 arrays, from one K x K product.  F (n, K); F_sum its
    column sums F^T 1 if known (mu = F_sum / n is F.mean(axis=0) bit for bit)."""
    n, K = F.shape
    mu = F.mean(axis=0) if F_sum is None else F_sum / n  # (K,)   column means
    F_tilde = F - mu                                     # (n, K) P_perp F
    C = F_tilde.T @ F_tilde                              # (K, K) F~^T F~ (training dtype; SYRK on NumPy)
    mu = mu.astype(xp.float64)                           # reductions below in float64
    abs_sum, C_fro2, C_mu = _gram_sums(xp, C, mu)        # sum |C_jl|, ||C||_F^2 = ||F~ F~^T||_F^2, C mu (K,)
    diag = xp.diagonal(C).astype(xp.float64)             # (K,) C_jj
    diag_abs = xp.abs(diag).sum()
    ftf_ratio = ((abs_sum - diag_abs) / (K * (K - 1))) / (diag_abs / K)

    uu = mu @ C_mu                                       # mu^T C mu = ||F~ mu||^2
    tau = diag.sum()                                     # tr C
    mu2 = mu @ mu                                        # |mu|^2
    G_fro2 = C_fro2 + 2 * n * uu + n * n * mu2 * mu2     # ||G||_F^2
    E_fro2 = C_fro2 + 2 * n * uu - tau * tau / (n - 1)   # ||G - ideal||_F^2
    rho = xp.sqrt(xp.maximum(E_fro2, 0.0) / G_fro2)
    return ftf_ratio, rho


def residual(xp, Yhat, y):
    """R = P_perp (Y_0 - Yhat) in float64, (n, M); Y_0 = onehot(y) - 1/M.  S stacked runs: (S, n, M)."""
    n, M = Yhat.shape[-2:]
    Y0 = xp.eye(M, dtype=xp.float64)[y] - 1.0 / M        # (n, M)
    R = Y0 - Yhat.astype(xp.float64)                     # (n, M)
    return R - R.mean(axis=-2, keepdims=True)            # (n, M)  centred over samples


def gradient_field_metrics(xp, Yhat, y, V, j, jp):
    """(gF_norm, indep_cos_med, indep_cos_p95) as 0-d float64 arrays.

    j, jp : (m,) device int arrays of column pairs with j != jp (drawn on the host).
    """
    [(gF_norm, med, p95)] = gradient_field_runs(xp, Yhat[None], y[None], V[None], [(j, jp)])
    return gF_norm, med, p95


def gradient_field_runs(xp, Yhat, y, V, pairs):
    """gradient_field_metrics of S stacked runs: Yhat (S, n, M), y (S, n), V (S, K, M) and each run's
    own pairs [(j, jp)]; R, Q, V Q and the column norms for all S at once, the pairs run by run.
    Returns [(gF_norm, indep_cos_med, indep_cos_p95)] per run."""
    R = residual(xp, Yhat, y)                            # (S, n, M)
    Q = xp.stack([R[s].T @ R[s] for s in range(R.shape[0])])   # (S, M, M)  R^T R (a SYRK per run)
    V64 = V.astype(xp.float64)                           # (S, K, M)
    VQ = V64 @ Q                                         # (S, K, M)
    col_norm2 = (VQ * V64).sum(axis=-1)                  # (S, K)  ||g_j||^2 = (V Q V^T)_jj
    gF_norm = xp.sqrt(col_norm2.sum(axis=-1))            # (S,)    ||G_F||_F
    out = []
    for s, (j, jp) in enumerate(pairs):
        dots = (VQ[s][j] * V64[s][jp]).sum(axis=1)       # (m,)    g_j^T g_j'
        cos = xp.abs(dots) / xp.sqrt(col_norm2[s][j] * col_norm2[s][jp])   # (m,)
        srt = xp.sort(cos)
        med = srt[(srt.shape[0] - 1) // 2]               # lower median
        out.append((gF_norm[s], med, xp.percentile(cos, 95.0)))
    return out


def draw_pairs(rng, K: int, m: int = 500):
    """Host: m pairs uniform on [0, K) with replacement, pairs with j == j' dropped."""
    j = rng.integers(0, K, size=m)
    jp = rng.integers(0, K, size=m)
    keep = j != jp
    return j[keep], jp[keep]
