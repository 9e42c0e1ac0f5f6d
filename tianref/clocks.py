"""The two training clocks' per-row statistics: stable ranks, Frobenius norms, the nuclear norm of W V.

Reference: *Deciphering Two Training Clocks in Grokking via Deep Linear Network Theory with
Conditional ReLU Reduction* (the classifier clock T_cls and the representation clock T_rep; layerwise
weight decay on a two-layer linear map is a nuclear-norm penalty on the product); docs/edge-and-clocks.md §4.

Symbols
    W        (2M, K)  first layer;  V (K, M) second layer
    ||X||_F  Frobenius norm;  ||X||_2 spectral norm (largest singular value)
    srank(X) = ||X||_F^2 / ||X||_2^2          stable rank, 1 <= srank <= rank(X)
    WV       (2M, M)  the product of the two layers (the end-to-end map of the linear network
             that drops sigma); ||WV||_* = sum of its singular values (Schatten-1, nuclear norm)

Exact, no iteration: ||X||_2^2 is the largest eigenvalue of the Gram on X's small side
(W W^T, 2M x 2M; V^T V, M x M), from eigvalsh; ||X||_F^2 is the sum of squares. The singular
values of WV come from an SVD of the 2M x M matrix. All in float64 whatever the training dtype.
The cost per row is ~2MK(2M) + 2KM^2 + 2(2M)KM flops, a few percent of an epoch at M = 71,
K = 2048 (bench/bench_edge.py measures it).
"""
from __future__ import annotations

KEYS = ("W_srank", "V_srank", "W_fro", "V_fro", "WV_nuc")


def spectral_norm2(xp, X):
    """||X||_2^2 from the eigenvalues of the small-side Gram.  X (a, b) float64 -> 0-d."""
    a, b = X.shape
    S = X @ X.T if a <= b else X.T @ X                  # (min(a,b), min(a,b))
    return xp.linalg.eigvalsh(S)[-1]


def clock_stats(xp, params):
    """[(key, 0-d float64 array)] for the keys in KEYS."""
    W = params["W"].astype(xp.float64)                  # (2M, K)
    V = params["V"].astype(xp.float64)                  # (K, M)
    W_fro2 = xp.vdot(W, W)                              # ||W||_F^2
    V_fro2 = xp.vdot(V, V)                              # ||V||_F^2
    s = xp.linalg.svd(W @ V, compute_uv=False)          # (M,) singular values of WV (2M, M)
    return [("W_srank", W_fro2 / spectral_norm2(xp, W)),
            ("V_srank", V_fro2 / spectral_norm2(xp, V)),
            ("W_fro", xp.sqrt(W_fro2)),
            ("V_fro", xp.sqrt(V_fro2)),
            ("WV_nuc", s.sum())]
