"""The two training clocks' per-row statistics: stable ranks, Frobenius norms, the nuclear norm of W V,
the spectral tail of W, and the smallest training margin.

Reference: *Deciphering Two Training Clocks in Grokking via Deep Linear Network Theory with
Conditional ReLU Reduction* (the classifier clock T_cls and the representation clock T_rep; layerwise
weight decay on a two-layer linear map is a nuclear-norm penalty on the product; its appendix F.4 asks
for a classifier-side margin beside the loss and a spectral-tail statistic beside the stable rank);
docs/edge-and-clocks.md §4.

Symbols
    W        (2M, K)  first layer;  V (K, M) second layer
    ||X||_F  Frobenius norm;  ||X||_2 spectral norm (largest singular value)
    srank(X) = ||X||_F^2 / ||X||_2^2          stable rank, 1 <= srank <= rank(X)
    WV       (2M, M)  the product of the two layers (the end-to-end map of the linear network
             that drops sigma); ||WV||_* = sum of its singular values (Schatten-1, nuclear norm)
    s_i      singular values of W, descending; r the tail rank (config.tail_rank, default M - 1)
    tail_r(W) = sum_{i > r} s_i^2 / sum_i s_i^2   the fraction of ||W||_F^2 outside the top r directions
    Yhat     (n, M)  the model's training outputs, beta sigma(XW) V (the output scale included)
    margin_min = min_i [ Yhat_{i, y_i} - max_{c != y_i} Yhat_{i, c} ]   (< 0: a misclassified sample)

Exact, no iteration: the squared singular values of W are the eigenvalues of the Gram on W's small
side (W W^T, 2M x 2M when K >= 2M), from one eigvalsh that gives ||W||_2^2 and the tail; ||X||_F^2 is
the sum of squares. The singular values of WV come from an SVD of the 2M x M matrix. All in float64
whatever the training dtype. The cost per row is ~2MK(2M) + 2KM^2 + 2(2M)KM flops, a few percent of an
epoch at M = 71, K = 2048 (bench/bench_edge.py measures it); the margin reuses the training forward.
"""
from __future__ import annotations

from tianref.backend import stacked_dot

KEYS = ("W_srank", "V_srank", "W_fro", "V_fro", "WV_nuc", "W_tail")
MARGIN_KEY = "margin_min"


def gram_eigenvalues(xp, X):
    """Eigenvalues (ascending) of the Gram on X's small side = the squared singular values of X,
    clipped at 0 (rounding can leave the smallest a hair below).  X (a, b) float64 -> (min(a, b),).
    Every function here takes an optional leading run axis S (X (S, a, b) -> (S, min(a, b)))."""
    a, b = X.shape[-2:]
    Xt = X.swapaxes(-1, -2)
    S = X @ Xt if a <= b else Xt @ X                    # (min(a,b), min(a,b))
    return xp.maximum(xp.linalg.eigvalsh(S), 0.0)


def spectral_norm2(xp, X):
    """||X||_2^2 from the eigenvalues of the small-side Gram.  X (a, b) float64 -> 0-d."""
    return gram_eigenvalues(xp, X)[..., -1]


def spectral_tail(ev, r: int):
    """sum_{i > r} s_i^2 / sum_i s_i^2 from the ascending eigenvalues ev = s^2 (n,), r >= 0; 0 when
    r >= n (no direction outside the top r). Summed from the small end (no cancellation when tiny)."""
    n = ev.shape[-1]
    return ev[..., :max(n - r, 0)].sum(axis=-1) / ev.sum(axis=-1)


def clock_stats(xp, params, tail_rank: int | None = None):
    """[(key, 0-d float64 array)] for the keys in KEYS (W_tail only when ``tail_rank`` is given)."""
    W = params["W"].astype(xp.float64)                  # (2M, K)
    V = params["V"].astype(xp.float64)                  # (K, M)
    W_fro2 = _fro2(xp, W)                               # ||W||_F^2
    V_fro2 = _fro2(xp, V)                               # ||V||_F^2
    evW = gram_eigenvalues(xp, W)                       # (min(2M, K),) s_i(W)^2 ascending
    s = xp.linalg.svd(W @ V, compute_uv=False)          # (M,) singular values of WV (2M, M)
    out = [("W_srank", W_fro2 / evW[..., -1]),
           ("V_srank", V_fro2 / spectral_norm2(xp, V)),
           ("W_fro", xp.sqrt(W_fro2)),
           ("V_fro", xp.sqrt(V_fro2)),
           ("WV_nuc", s.sum(axis=-1))]
    if tail_rank is not None:
        out.append(("W_tail", spectral_tail(evW, tail_rank)))
    return out


def _fro2(xp, X):
    """||X||_F^2: a BLAS dot; for a stack (S,), one stacked (1, N) by (N, 1) product (NumPy: the same
    dot slice by slice, the same bits)."""
    if X.ndim == 2:
        return xp.vdot(X, X)
    flat = X.reshape(X.shape[0], -1)
    return stacked_dot(xp, flat, flat)


def margin_min(xp, Yhat, y):
    """min_i [Yhat_{i,y_i} - max_{c != y_i} Yhat_{i,c}] in float64.  Yhat (n, M), y (n,) -> 0-d
    (S stacked runs: (S, n, M), (S, n) -> (S,))."""
    Z = Yhat.astype(xp.float64)                         # (n, M)
    M = Z.shape[-1]
    is_y = xp.arange(M) == y[..., None]                 # (n, M) one-hot mask of the labels
    own = xp.where(is_y, Z, -xp.inf).max(axis=-1)       # (n,)  Yhat_{i, y_i}
    other = xp.where(is_y, -xp.inf, Z).max(axis=-1)     # (n,)  max over the other classes (M >= 2)
    return (own - other).min(axis=-1)
