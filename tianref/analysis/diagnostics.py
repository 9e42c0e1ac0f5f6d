"""Per-run diagnostics that explain a detector's answer: how close the slope came to its threshold,
when sigma2/sigma3 collapsed after the lock-in, whether sigma3 is resolvable in float32, and the
training-loss rise behind a fire. Pure functions of logged series, like :mod:`detectors`.

References: docs/detectors.md §"Diagnostics" (the definitions below), docs/paper-protocol.md §6 (the
four differences from the paper these numbers account for), docs/math.md §8 (float32 vs float64
Gram). Conventions as in :mod:`tianref.analysis.detectors`: series indexed by log row t, NaN where
not logged, event epochs returned as floats with NaN = "never".

Symbols
    gap(t)        sigma2/sigma3 of the rolling Delta-W Gram
    s(t)          the detector's log-slope of gap (detectors.log_slope), lag 25
    t_fire        detectors.slope_fire (s > 0.04 at t >= t_min)
    eps32         2^-23, float32 machine epsilon
    q(t)          sigma3/sigma1 of the same Gram

Defining equations

    slope_peak        = max_{t >= t_min} s(t),  slope_peak_epoch = its first argmax
    episode_peak      = max s(t) over the first run of consecutive t >= t_min with s(t) > 0.035
    fire_c            = min{ t >= t_min : s(t) > c },  c in FIRE_THRESHOLDS   (sensitivity view)
    collapse_epoch    = min{ t > t_fire : gap(t) < f * max_{t_fire <= t' <= t} gap(t') },  f = 1/10
    late_precollapse  = nanmedian_{lo <= t < collapse_epoch} gap(t)   (the whole [lo, hi] without collapse)
    q_late            = nanmedian_{lo <= t <= hi} q(t),   q_late_eps = q_late / eps32
    precision_limited = q_late < factor * eps32,  factor = 100: a float32 Gram's rounding (about
                        1e-8..1e-5 of sigma1 per entry, by summation order) swamps sigma3
    loss_rise         the largest rise L(t2)/L(t1), t - lag <= t1 <= t2 <= t, of the training loss
                      before an epoch t (a control run's fire: is there a real loss bump?)
"""
from __future__ import annotations

import numpy as np

from tianref.analysis import detectors as det

F32_EPS = 2.0 ** -23                      # float32 machine epsilon
FIRE_THRESHOLDS = (0.035, 0.04, 0.045)    # the detector's 0.04 and +-0.005 around it
COLLAPSE_FRACTION = 0.1
PRECISION_FACTOR = 100.0


def fire_key(threshold: float) -> str:
    """The per-run key of the fire epoch at a threshold: 'fire_0.035'."""
    return f"fire_{threshold:g}"


def slope_peak(gap, t_min: int = det.SLOPE_T_MIN, lag: int = det.SLOPE_LAG,
               floor: float = det.LOG_FLOOR) -> tuple[float, float]:
    """(max_{t >= t_min} s(t), its first epoch); (NaN, NaN) when no slope exists there."""
    s = det.log_slope(gap, lag, floor)                               # (E+1,)
    s = np.where(np.arange(s.size) >= t_min, s, np.nan)
    if not np.isfinite(s).any():
        return np.nan, np.nan
    t = int(np.nanargmax(s))
    return float(s[t]), float(t)


def episode_peak(gap, level: float = FIRE_THRESHOLDS[0], t_min: int = det.SLOPE_T_MIN,
                 lag: int = det.SLOPE_LAG, floor: float = det.LOG_FLOOR) -> tuple[float, float]:
    """(max s(t), its epoch) over the first run of consecutive epochs t >= t_min with s(t) > level:
    how far the first rise clears (or misses) the threshold, even when a later rise is steeper.
    (NaN, NaN) when s never exceeds level."""
    s = det.log_slope(gap, lag, floor)                               # (E+1,)
    with np.errstate(invalid="ignore"):
        mask = (s > level) & (np.arange(s.size) >= t_min)            # NaN -> False
    hits = np.flatnonzero(mask)
    if not hits.size:
        return np.nan, np.nan
    start = int(hits[0])
    stop = start + int(np.argmin(mask[start:])) if not mask[start:].all() else s.size   # first False
    k = start + int(np.argmax(s[start:stop]))
    return float(s[k]), float(k)


def fires_at(gap, thresholds=FIRE_THRESHOLDS, t_min: int = det.SLOPE_T_MIN,
             lag: int = det.SLOPE_LAG, min_valid: int = 0) -> dict:
    """{fire_key(c): the slope detector's epoch at threshold c} (NaN = no fire)."""
    return {fire_key(c): det.slope_fire(gap, c, t_min, lag, min_valid=min_valid) for c in thresholds}


def collapse_epoch(gap, fire: float, fraction: float = COLLAPSE_FRACTION) -> float:
    """First t > fire with gap(t) < fraction * (running max of gap since the fire); NaN if none
    or if fire is NaN. NaN gaps neither set the maximum nor count as a drop."""
    gap = np.asarray(gap, dtype=float)                               # (E+1,)
    if fire is None or not np.isfinite(fire) or int(fire) >= gap.size:
        return np.nan
    f = int(fire)
    seg = gap[f:]                                                    # (E+1-f,) from the fire on
    runmax = np.fmax.accumulate(np.where(np.isnan(seg), -np.inf, seg))
    with np.errstate(invalid="ignore"):
        drop = seg < fraction * runmax                               # NaN -> False
    drop[0] = False                                                  # strictly after the fire
    hits = np.flatnonzero(drop)
    return float(f + hits[0]) if hits.size else np.nan


def late_precollapse(gap, lo: int, hi: int, collapse: float) -> float:
    """nanmedian of gap over lo <= t < collapse (t <= hi); the plain late median without collapse."""
    if collapse is None or not np.isfinite(collapse):
        return det.late_median(gap, lo, hi)
    return det.late_median(gap, lo, min(hi, int(collapse) - 1)) if collapse > lo else np.nan


def sigma_ratio(sigma_i, sigma_j) -> np.ndarray:
    """sigma_i / sigma_j per row (e.g. q = sigma3/sigma1); NaN where either is missing or sigma_j <= 0."""
    a = np.asarray(sigma_i, dtype=float)
    b = np.asarray(sigma_j, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def precision(q, lo: int, hi: int, factor: float = PRECISION_FACTOR) -> dict:
    """q_late = median sigma3/sigma1 over [lo, hi], in float32 epsilons, and whether it is below
    factor epsilons (None when q was never finite there)."""
    m = det.late_median(q, lo, hi)
    if not np.isfinite(m):
        return {"q_late": np.nan, "q_late_eps": np.nan, "precision_limited": None}
    return {"q_late": m, "q_late_eps": m / F32_EPS, "precision_limited": bool(m < factor * F32_EPS)}


def loss_rise(loss, t: float, lag: int = det.SLOPE_LAG) -> dict | None:
    """The largest rise of the loss in [t - lag, t]: {t1, L1, t2, L2, ratio} with t1 <= t2 and
    L2 / L1 maximal (ratio 1 and t1 = t2 when the loss only falls); None without a usable window."""
    L = np.asarray(loss, dtype=float)
    if t is None or not np.isfinite(t) or int(t) >= L.size:
        return None
    hi = int(t)
    lo = max(0, hi - lag)
    seg = L[lo:hi + 1]                                               # (<= lag+1,)
    if not np.isfinite(seg).all() or (seg <= 0).any():
        return None
    argmin = np.array([np.argmin(seg[:k + 1]) for k in range(seg.size)])   # running argmin
    ratio = seg / seg[argmin]
    k2 = int(np.argmax(ratio))
    k1 = int(argmin[k2])
    return {"t1": float(lo + k1), "L1": float(seg[k1]), "t2": float(lo + k2), "L2": float(seg[k2]),
            "ratio": float(ratio[k2])}


def p_no_event(k: int, n: int, m: int | None = None) -> float:
    """(1 - k/n)^m: the chance that m runs (default n) show no event at the per-run rate k/n."""
    if n <= 0:
        return np.nan
    return float((1.0 - k / n) ** (n if m is None else m))
