"""Order statistics on any backend with NumPy's numbers: the median and linear quantiles.

References: NumPy's ``median`` and ``quantile`` (method 'linear', the default; numpy/lib/_function_base_impl.py:
``_median``, ``_quantile``, ``_lerp``); CuPy's ``median`` (cupy/_core/_routines_statistics.pyx, ``_median``) and
``quantile`` (cupy/_statistics/order.py, ``_quantile_unchecked``); docs/math.md §4 (the independence proxy's
percentile, computed the same way in tianref.metrics).

Why not ``xp.median`` / ``xp.quantile``. On finite data CuPy's two give NumPy's numbers, but NumPy returns NaN
for a slice holding a NaN and CuPy does not look for NaN: its median is the mean of the middle entries after a
partition and its quantiles are read from a sort (NaN last), so a slice with a few NaNs (a diverged run's unit
energies, a degenerate B_jj B_ll - B_jl^2 = 0) gets a finite number on the GPU and NaN on the CPU. Both are
written here with the backend's sort and elementwise operations only, so every backend gives NumPy's bits
(tests/test_orderstats.py holds them against numpy.median / numpy.quantile), and the strict fake backend
refuses xp.median and xp.quantile (tianref/fakexp.py).

Symbols (x of length n along the last axis, s = x sorted ascending)
    median      s[(n - 1) / 2] for odd n; (s[n/2 - 1] + s[n/2]) / 2 for even n (NumPy: the mean of those two,
                a sum started at +0.0, so a median of zeros is +0.0)
    quantile q  h = (n - 1) q, lo = floor(h), hi = min(lo + 1, n - 1), t = h - lo, a = s[lo], b = s[hi], d = b - a:
                a + d t for t < 1/2, b - d (1 - t) for t >= 1/2 (NumPy's two-sided lerp); for h >= n - 1 NumPy
                takes lo = hi = n - 1 (index -1) and t = h + 1, so s[n - 1] with its own sign of zero
    NaN         either statistic is NaN on a slice holding a NaN (whatever its sign bit, which a GPU's radix sort
                of a 1-D array orders by)
"""
from __future__ import annotations

import math

import numpy as np  # host: the quantiles' indices and weights


def median(xp, x):
    """NumPy's median of x (..., n) along its last axis (n >= 1): (...,) float, NaN where a slice holds NaN."""
    n = x.shape[-1]
    s = xp.sort(x, axis=-1)                                         # (..., n)
    # NumPy takes the mean of the middle entry (entries): (a + b) / 2 with the sum started at +0.0, so the median
    # of zeros is +0.0; a device's mean may start from a and keep -0.0: + 0.0 makes it +0.0 and changes nothing else
    k = n // 2
    m = (s[..., k] if n % 2 else s[..., k - 1:k + 1].mean(axis=-1)) + 0.0   # (...,)
    return xp.where(xp.isnan(x).any(axis=-1), xp.nan, m)


def quantile(xp, x, qs):
    """NumPy's linear quantiles of a 1-D x (n,) at the host levels ``qs`` (each in [0, 1]): (len(qs),) float,
    all NaN when x holds a NaN."""
    n = x.shape[0]
    s = xp.sort(x)                                                  # (n,)
    h = [(n - 1) * float(q) for q in qs]                            # host: NumPy's virtual indices
    top = [v >= n - 1 for v in h]                                   # NumPy: both indices -1 (the last entry)
    lo = [n - 1 if e else math.floor(v) for v, e in zip(h, top)]
    hi = [n - 1 if e else f + 1 for f, e in zip(lo, top)]
    t = xp.asarray(np.array([v + 1 if e else v - f for v, f, e in zip(h, lo, top)]))   # (k,) gamma = h - index
    a = xp.take(s, xp.asarray(np.array(lo, dtype=np.int64)))       # (k,)
    b = xp.take(s, xp.asarray(np.array(hi, dtype=np.int64)))       # (k,)
    d = b - a
    p = xp.where(t >= 0.5, b - d * (1 - t), a + d * t)              # (k,) NumPy's lerp
    return xp.where(xp.isnan(x).any(), xp.nan, p)
