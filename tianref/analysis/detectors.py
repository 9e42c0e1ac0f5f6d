"""The paper's event detectors and across-run statistics, as pure functions of logged series.

References: ``docs/paper-protocol.md`` §3 ("Slope detector", "Late-stage separation",
"Test crossings", "rho fire"), §1 T2/T3/T3b (the published values) and §5 (where the paper,
its notes and its code disagree; we follow the code). docs/detectors.md has the math.

Every series is a float64 array indexed by log row t = 0..E (row t = parameters after t
steps), NaN where a value was not logged. An event "epoch" is a row index returned as a
float, NaN when the event never happens, so that NaN means "did not fire" throughout.

Symbols (code name <-> paper / notes)
    test_acc      test accuracy per row
    gap           sigma2/sigma3 of the rolling Delta-W Gram (``W_gap23``)
    r12           sigma1/sigma2 of the same Gram (``W_sigma[0] / W_sigma[1]``)
    rho           rho_tian = ||G - ideal||_F / ||G||_F (``rho_tian``; the code's fft_dist_from_ideal)
    x(t)          ln max(gap(t), floor),  floor = 1e-6
    s(t)          (x(t) - x(t - lag)) / lag,  lag = 25;  NaN for t < lag or a NaN end point
    t_0.5, t_0.99 first t with test_acc >= 0.5 / 0.99
    t_fire        first t >= t_min = 100 with s(t) > 0.04        (the lock-in detector)
    t_rho         first t >= 0 with rho(t) >= 0.075
    late          nanmedian of gap(t) over lo <= t <= hi (200..400), per run

Defining equations (each once):

    t_c      = min{ t : y(t) >= c }                                       (crossings, rho fire)
    s(t)     = [ln max(gap(t), 1e-6) - ln max(gap(t-25), 1e-6)] / 25      (slope)
    t_fire   = min{ t >= 100 : s(t) > 0.04 }                              (strict >, as coded)
    r12-slope fire = min{ t >= 100 : s_12(t) >= 0.04 }                    (non-strict >=, as coded)
    half-max = min{ t : y(t) >= b + f (max_t y - b) },  b = nanmedian(y[0:5]), f = 1/2
    late     = nanmedian_{lo <= t <= hi} gap(t);  separation = median_seeds(late_grok) / median_seeds(late_ctrl)
"""
from __future__ import annotations

import numpy as np

# Defaults of the paper's code (paper-protocol.md §3).
SLOPE_LAG = 25            # epochs in the backward difference of ln(sigma2/sigma3)
SLOPE_THRESHOLD = 0.04    # per epoch, i.e. more than an e-fold rise over 25 epochs
SLOPE_T_MIN = 100         # the detector ignores the Stage-I transients before epoch 100
LOG_FLOOR = 1e-6          # gap is clipped here before the log
WINDOW_SWEEP_MIN_VALID = 30   # analyze_window_sweep requires >= 30 non-NaN gap rows
RHO_THRESHOLD = 0.075
LATE_RANGE = (200, 400)   # inclusive
R12_FLOOR = 1e-30         # sigma2 floor in sigma1/sigma2 (the notes' script)


def _first(mask: np.ndarray) -> float:
    """First True index as a float; NaN when there is none."""
    hits = np.flatnonzero(mask)
    return float(hits[0]) if hits.size else np.nan


def _nanmedian(x) -> float:
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    return float(np.median(x)) if x.size else np.nan


def _ge(x: np.ndarray, thr: float) -> np.ndarray:
    """x >= thr with NaN -> False (no RuntimeWarning)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(x, dtype=float) >= thr


# --- crossings -------------------------------------------------------------------------------

def first_crossing(y, threshold: float, t_min: int = 0) -> float:
    """min{ t >= t_min : y(t) >= threshold }, NaN if never."""
    y = np.asarray(y, dtype=float)                                   # (E+1,)
    return _first(_ge(y, threshold) & (np.arange(y.size) >= t_min))


def half_max_threshold(y, base_rows: int = 5, fraction: float = 0.5) -> float:
    """analysis.py's adaptive level b + f (max y - b), b = nanmedian(y[0:base_rows])."""
    y = np.asarray(y, dtype=float)
    b = _nanmedian(y[:base_rows])
    if np.isnan(b):
        b = 0.0                                                      # as coded: no baseline -> 0
    finite = y[~np.isnan(y)]
    if not finite.size:
        return np.nan
    return b + fraction * (float(finite.max()) - b)


def half_max_crossing(y, base_rows: int = 5, fraction: float = 0.5) -> float:
    """First t with y(t) >= half_max_threshold(y) (analysis.py's variant of t_0.5)."""
    thr = half_max_threshold(y, base_rows, fraction)
    return np.nan if np.isnan(thr) else first_crossing(y, thr)


def test_crossings(test_acc, method: str = "first") -> tuple[float, float]:
    """(t_0.5, t_0.99). method 'first': absolute levels; 'halfmax': t_0.5 from the half-max level."""
    if method == "first":
        t05 = first_crossing(test_acc, 0.5)
    elif method == "halfmax":
        t05 = half_max_crossing(test_acc)
    else:
        raise ValueError(f"unknown crossing method {method!r}; choose first or halfmax")
    return t05, first_crossing(test_acc, 0.99)


# --- sigma2/sigma3 lock-in ---------------------------------------------------------------------

def log_slope(ratio, lag: int = SLOPE_LAG, floor: float = LOG_FLOOR) -> np.ndarray:
    """s(t) = [ln max(r(t), floor) - ln max(r(t-lag), floor)] / lag; NaN for t < lag or NaN r."""
    r = np.asarray(ratio, dtype=float)                               # (E+1,)
    x = np.log(np.maximum(r, floor))                                 # NaN stays NaN
    s = np.full_like(x, np.nan)                                      # (E+1,)
    if lag < 1:
        raise ValueError("lag must be >= 1")
    s[lag:] = (x[lag:] - x[:-lag]) / lag
    return s


def slope_fire(gap, threshold: float = SLOPE_THRESHOLD, t_min: int = SLOPE_T_MIN,
               lag: int = SLOPE_LAG, floor: float = LOG_FLOOR, min_valid: int = 0,
               strict: bool = True) -> float:
    """The sigma2/sigma3 lock-in epoch: min{ t >= t_min : s(t) > threshold }, NaN if none.

    min_valid > 0 also requires that many non-NaN gap rows (the window sweep uses 30).
    strict=False uses s(t) >= threshold (how the notes' sigma1/sigma2 slope detector compares).
    """
    gap = np.asarray(gap, dtype=float)
    if min_valid and np.count_nonzero(~np.isnan(gap)) < min_valid:
        return np.nan
    s = log_slope(gap, lag, floor)
    with np.errstate(invalid="ignore"):
        hit = (s > threshold) if strict else (s >= threshold)       # NaN -> False
    return _first(hit & (np.arange(s.size) >= t_min))


def late_median(gap, lo: int = LATE_RANGE[0], hi: int = LATE_RANGE[1]) -> float:
    """nanmedian of gap(t) over lo <= t <= hi (both inclusive); NaN if no finite value there."""
    gap = np.asarray(gap, dtype=float)
    return _nanmedian(gap[lo:hi + 1])


def late_separation(late_grok, late_ctrl) -> dict:
    """Median over seeds of each condition's per-run late values, and their ratio."""
    g, c = _nanmedian(late_grok), _nanmedian(late_ctrl)
    ratio = g / c if (c > 0 and not np.isnan(g)) else np.nan
    return {"grok": g, "control": c, "ratio": ratio}


# --- rho_tian and sigma1/sigma2 (the notes' detectors) -----------------------------------------

def rho_fire(rho, threshold: float = RHO_THRESHOLD) -> float:
    """t_rho = min{ t >= 0 : rho(t) >= threshold }."""
    return first_crossing(rho, threshold)


def sigma12_ratio(sigma1, sigma2, floor: float = R12_FLOOR) -> np.ndarray:
    """r12 = sigma1 / max(sigma2, floor); NaN where either eigenvalue was not logged."""
    s1 = np.asarray(sigma1, dtype=float)
    s2 = np.asarray(sigma2, dtype=float)
    return s1 / np.maximum(s2, floor)                                # NaN propagates


def sustained_fire(y, threshold: float, sustained: int = 1, t_min: int = 0) -> float:
    """First t >= t_min with y(t'), t <= t' < t + sustained, all >= threshold; NaN if none."""
    y = np.asarray(y, dtype=float)
    if sustained < 1:
        raise ValueError("sustained must be >= 1")
    n = y.size - sustained + 1
    if n <= 0:
        return np.nan
    c = np.concatenate([[0], np.cumsum(_ge(y, threshold))])        # (E+2,) running count above
    run_ok = (c[sustained:] - c[:n]) == sustained                    # (n,) window fully above
    return _first(run_ok & (np.arange(n) >= t_min))


def sigma12_detectors(sigma1, sigma2, slope_threshold: float = SLOPE_THRESHOLD,
                      t_min: int = SLOPE_T_MIN, lag: int = SLOPE_LAG) -> dict:
    """The four sigma1/sigma2 detectors of findings.md (T3b), as sigma12_analysis.py codes them."""
    r12 = sigma12_ratio(sigma1, sigma2)
    return {
        "r12_ge25_x5": sustained_fire(r12, 25.0, sustained=5),
        "r12_ge100": sustained_fire(r12, 100.0),
        "r12_ge200": sustained_fire(r12, 200.0),
        "r12_slope": slope_fire(r12, slope_threshold, t_min, lag, strict=False),
    }


# --- across runs ------------------------------------------------------------------------------

def across_runs(values) -> dict:
    """Median, IQR (25th/75th percentiles, numpy's linear interpolation), range, n_fired/n.

    NaN entries are runs where the event never happened: they count in n, not in n_fired,
    and are left out of the median and percentiles (np.nanmedian / np.nanpercentile, as coded).
    """
    v = np.asarray(values, dtype=float).ravel()
    ok = v[~np.isnan(v)]
    out = {"n": int(v.size), "n_fired": int(ok.size)}
    if ok.size:
        q25, med, q75 = np.percentile(ok, [25, 50, 75])
        out.update(median=float(med), q25=float(q25), q75=float(q75),
                   min=float(ok.min()), max=float(ok.max()))
    else:
        out.update(median=np.nan, q25=np.nan, q75=np.nan, min=np.nan, max=np.nan)
    return out


def paired_diff(a, b) -> np.ndarray:
    """Per-run a - b (e.g. lead = t_0.5 - t_rho per seed, then its median: plot_two_stage)."""
    return np.asarray(a, dtype=float) - np.asarray(b, dtype=float)


def median_diff(a, b) -> float:
    """median(a) - median(b) over the runs where each is defined (analyze_eta_sweep's lead)."""
    return _nanmedian(a) - _nanmedian(b)
