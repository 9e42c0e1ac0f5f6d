"""Per-unit Fourier view of W and Tian's Stage-II energy, logged every row.

References: Tian, "Provable Scaling Laws of Feature Emergence from Learning Dynamics of Grokking"
(arXiv:2509.21519), Stage II: each hidden unit w climbs E(w) = 1/2 ||Y~ Y~^T sigma(X w)||^2, whose
local maxima on modular addition are single Fourier frequencies of Z_M; Gromov (2023), "Grokking
modular arithmetic" (arXiv:2301.02679), for the analytic cosine solution. docs/math.md §12.

Symbols
    W        (2M, K)  first layer; column j = unit j = [w_a (M), w_b (M)]
    P        (k_max, K) P[k-1, j] = |DFT(w_a)(k)|^2 + |DFT(w_b)(k)|^2, k = 1..k_max = floor((M-1)/2)
             (k = 0, the mean, is excluded; for real w, |DFT(M-k)| = |DFT(k)|, so +-k are one frequency)
    k*_j     argmax_k P[k-1, j], the dominant frequency of unit j
    purity_j P[k*_j - 1, j] / sum_k P[k-1, j]            (1 for a pure cosine; 0 for a unit with no power
             at k = 1..k_max: sum_k P <= 1e-20 M ||w_j||^2, far above the DFT's rounding (~1e-26 M ||w||^2)
             and far below any real power; e.g. an all-zero unit, or the sign character (-1)^a of an even M)
    Y~       (n, M)  P_perp Y: the one-hot training labels centred over samples
    E(w)     1/2 ||Y~ Y~^T sigma(X w)||^2 = 1/2 a^T (Y~^T Y~) a,  a = Y~^T sigma(X w)   (M,)

Logged (``--metrics full``):
    freq_coverage    number of distinct k*_j among units with purity_j >= 0.9
    freq_purity_med  median over units of purity_j
    energy_med       median over units of E(w_j / ||w_j||) on the training set

Not logged; for checkpoints (``diversity``, Tian's claim that Muon gives more diverse weights in the
stage of feature learning): over the pure units (purity_j >= purity_min, inclusive)
    hist[k-1]     number of pure units with k*_j = k, k = 1..k_max
    coverage      number of k with hist[k-1] > 0 (= freq_coverage at purity_min = 0.9)
    entropy       -sum_k q_k ln q_k, q = hist / n_pure (nats; 0 with no pure unit)
    entropy_norm  entropy / ln k_max in [0, 1] (1: the pure units spread evenly over all frequencies)

Cost per row: one (2 k_max, M) x (M, 2K) product with the DFT rows (``unit_spectrum``; an FFT of
prime length M was slower), a segment sum of the row's training activations by label (an extra
hidden pass only for the non-homogeneous GELU and SiLU) and an (M, M) x (M, K) product --
bench/bench_fourier.py measures it against a training step.
"""
from __future__ import annotations

import math

import numpy as np  # host: the DFT rows, built once per M

from tianref import model, orderstats
from tianref.backend import to_host
from tianref.errors import InputError

PURITY_THRESHOLD = 0.9


_DFT_ROWS = {}           # (backend, M) -> its dft_rows, built once


def dft_rows(xp, M: int):
    """(2 k_max, M) float64 on the backend: cos(2 pi k a / M) (rows 0..k_max-1), then sin(2 pi k a / M),
    k = 1..k_max, a = 0..M-1; the angle's integer k a is reduced mod M first (exact)."""
    key = (id(xp), M)
    if key not in _DFT_ROWS:
        k = np.arange(1, (M - 1) // 2 + 1)[:, None]
        ang = 2.0 * np.pi * ((k * np.arange(M)[None, :]) % M) / M          # (k_max, M)
        _DFT_ROWS[key] = xp.asarray(np.concatenate([np.cos(ang), np.sin(ang)]))
    return _DFT_ROWS[key]


def unit_spectrum(xp, W, M: int):
    """P (k_max, K) float64, as in the module docstring.  W (2M, K); S stacked runs: (S, 2M, K) ->
    (S, k_max, K) (every function below takes the same optional leading axis).

    The DFT at k = 1..k_max by one product with dft_rows (real and imaginary parts, up to sign) rather
    than an FFT: M is often prime (71), where an FFT of length M is several times slower than this
    (2 k_max) x M times M x 2K product; the two agree to ~1e-15 relative (tests/test_fourier.py)."""
    K = W.shape[-1]
    Wr = xp.reshape(W.astype(xp.float64, copy=False), W.shape[:-2] + (2, M, K))   # (2, M, K): w_a, w_b
    Z = dft_rows(xp, M) @ Wr                                        # (2, 2 k_max, K): Re, -Im at k = 1..k_max
    Z = Z * Z
    k_max = Z.shape[-2] // 2
    return (Z[..., :k_max, :] + Z[..., k_max:, :]).sum(axis=-3)     # (k_max, K) |DFT w_a|^2 + |DFT w_b|^2


def frequency_metrics(xp, W, M: int, threshold: float = PURITY_THRESHOLD, sq=None, median: bool = True):
    """(freq_coverage, freq_purity_med, kstar (K,), purity (K,)) as device arrays; kstar is 1-based
    (M = 2 has no frequency k = 1..k_max: every purity and kstar 0, coverage 0).
    sq: the units' squared norms ||w_j||^2 (K,) float64, if known (``row_metrics`` shares them);
    median=False: freq_purity_med is None (the caller takes it with others in one call)."""
    P = unit_spectrum(xp, W, M)                                     # (k_max, K)
    k_max = P.shape[-2]
    if k_max == 0:                                                  # M = 2: no frequency k = 1..k_max, so
        purity = xp.zeros(P.shape[:-2] + P.shape[-1:], dtype=xp.float64)   # no unit has power there:
        kstar = xp.zeros(purity.shape, dtype=xp.int64)              # purity 0, no dominant k, coverage 0
        coverage = kstar.sum(axis=-1)
        return coverage, (orderstats.median(xp, purity) if median else None), kstar, purity
    tot = P.sum(axis=-2)                                            # (K,)
    top = P.max(axis=-2)                                            # (K,)
    if sq is None:
        W64 = W.astype(xp.float64, copy=False)
        sq = (W64 * W64).sum(axis=-2)                               # (K,)  ||w_j||^2
    floor = (1e-20 * M) * sq                                        # (K,)  no power above rounding
    purity = xp.where(tot > floor, top / xp.where(tot > 0, tot, 1.0), 0.0)   # (K,)
    kstar = P.argmax(axis=-2) + 1                                   # (K,)
    pure = purity >= threshold                                      # (K,)
    hit = (kstar[..., None, :] == xp.arange(1, k_max + 1)[:, None]) & pure[..., None, :]   # (k_max, K)
    coverage = hit.any(axis=-1).sum(axis=-1)
    return coverage, (orderstats.median(xp, purity) if median else None), kstar, purity


def diversity(xp, W, M: int, purity_min: float = PURITY_THRESHOLD) -> dict:
    """How the pure units of W (2M, K) spread over the frequencies, as host numbers (module docstring):
    {n_units, n_pure, coverage, entropy, entropy_norm, hist (list of k_max counts, k = 1..k_max)}.
    entropy_norm is 0 when k_max = 1 (one frequency: nothing to spread over)."""
    if M < 3:
        raise InputError(f"diversity needs M >= 3 (M = {M} has no frequency k = 1..floor((M-1)/2))")
    if W.ndim != 2 or W.shape[0] != 2 * M:
        raise InputError(f"diversity: W has shape {tuple(W.shape)}, expected (2M, K) = ({2 * M}, K)")
    _, _, kstar, purity = frequency_metrics(xp, W, M, purity_min, median=False)   # (K,), (K,)
    k_max = (M - 1) // 2
    pure = purity >= purity_min                                     # (K,) inclusive
    hit = (kstar[None, :] == xp.arange(1, k_max + 1)[:, None]) & pure[None, :]   # (k_max, K)
    hist = [int(c) for c in to_host(hit.sum(axis=1))]               # (k_max,) host
    n_pure = sum(hist)
    entropy = -sum(c / n_pure * math.log(c / n_pure) for c in hist if c > 0) if n_pure else 0.0
    entropy = float(entropy) + 0.0                                  # + 0.0: no -0.0 for one frequency
    return {"n_units": int(W.shape[1]), "n_pure": n_pure, "coverage": sum(c > 0 for c in hist),
            "entropy": entropy,
            "entropy_norm": entropy / math.log(k_max) if k_max > 1 else 0.0, "hist": hist}


# sigma(x / c) = sigma(x) / c^d for c > 0: the energy of w/||w|| follows from the row's own F
HOMOGENEOUS = {"sqr": 2, "relusqr": 2, "relu": 1}


def unit_energies(xp, W, batch, act: str, F=None, F_sum=None, sq=None):
    """E(w_j / ||w_j||) for every unit on the batch, float64 (K,).

    F (n, K) = sigma(X W) of this batch, if known: for a homogeneous sigma (x^2, relu, relu^2) the
    normalised activations are F / ||w_j||^d and no extra hidden pass is needed; sq: ||w_j||^2 (K,)
    float64, if known. The class sums
    Y^T F are a segment sum (batch.seg_y); with c the class counts,
        Y~^T F = Y^T F - (c / n) 1^T F,    Y~^T Y~ = diag(c) - c c^T / n.
    """
    n, M = batch.n, batch.M
    W64 = W.astype(xp.float64, copy=False)
    norms = xp.sqrt((W64 * W64).sum(axis=-2) if sq is None else sq)   # (K,)
    safe = xp.where(norms > 0, norms, 1.0)
    d = HOMOGENEOUS.get(act)
    if F is None or d is None:
        _, Fn = model.hidden(xp, W64 / safe[..., None, :], batch, act, keep_H=False)   # (n, K) sigma(X w_j/||w_j||)
        scale = None
    else:
        Fn, scale = F, safe ** (-d)                                 # (n, K), (K,)
    YF = model.segment_sum(xp, Fn, batch.seg_y).astype(xp.float64)  # (M, K)  Y^T F
    c = ((batch.seg_y % (n + 1)) < n).sum(axis=-1).astype(xp.float64)   # (M,) class counts (pads: n mod n+1)
    if F_sum is None or scale is None:
        F_sum = Fn.sum(axis=-2)                                     # (K,)  1^T F (given: the row's F)
    A = YF - (c / n)[..., :, None] * F_sum.astype(xp.float64)[..., None, :]   # (M, K) Y~^T F
    if scale is not None:
        A = A * scale[..., None, :]                                 # (M, K)
    G = xp.eye(M) * c[..., None, :] - c[..., :, None] * c[..., None, :] / n   # (M, M) Y~^T Y~ = diag(c) - cc^T/n
    return 0.5 * ((G @ A) * A).sum(axis=-2)                         # (K,)  1/2 ||Y~ a_j||^2


def row_metrics(xp, W, batch, act: str, F=None, F_sum=None):
    """[(name, 0-d array)] for a training row: coverage, median purity, median energy.  F_sum: the
    column sums of F, if known (the feature Gram metrics need them too)."""
    W64 = W.astype(xp.float64)                                      # (2M, K) one cast for both views
    sq = (W64 * W64).sum(axis=-2)                                   # (K,)  ||w_j||^2, shared
    cov, _, _, purity = frequency_metrics(xp, W64, batch.M, sq=sq, median=False)
    energy = unit_energies(xp, W64, batch, act, F, F_sum, sq)       # (K,)
    med = orderstats.median(xp, xp.stack([purity, energy]))        # (2,): both medians in one call
    return [("freq_coverage", cov), ("freq_purity_med", med[0]), ("energy_med", med[1])]
