"""Two flags on a run's detector events: an event that fired at the first row its detector can fire, and
a detector that fired in a run that never grokked.

Reference: docs/detectors.md §10. Pure functions of a run's logged columns (``first_rows``) or of the
per-run rows of a summary (``run_flags``, ``lead_values``, ``condition_flags``), so a summary stored before
these flags existed renders with them too (its first rows are then the engine's, ``STORED_FIRST_ROW``).

From the start: an event at the first row its detector can fire says only that the series was beyond its
threshold when the detector began to look (ρ_tian ≥ 0.075 at row 0, σ1/σ2 ≥ 100 from its first logged
row): it dates no onset, so every lead or lag taken from it is undefined (None in JSON, '—' in tables).
The event itself is still reported as the detector's answer, marked.

Fired without grokking: a detector (the σ2/σ3 lock-in, ρ_tian, the σ1/σ2 detectors) fired in a run whose
test accuracy never reached 0.5, whatever ``--crossing`` defines t05 to be.

Symbols
    first row      the first row at which a detector can fire
                   crossings t05, t099, rho_fire: the first row where the series is logged (finite)
                   levels r12_ge25_x5, r12_ge100, r12_ge200: the first row where σ1/σ2 is finite
                   slopes fire, r12_slope: max(t_min, the first row where the slope s(t) is finite)
    from_start     the events equal to their first row
    undefined      {lead: why} for each lead or lag with an operand in from_start
    grokked        max_t test_acc(t) >= 0.5 (None when test accuracy was not logged)
"""
from __future__ import annotations

import math

import numpy as np

from tianref.analysis import detectors as det

# lead or lag key -> (event, event): per run the first minus the second (tianref.analysis.summarize)
LEADS = {"lag_fire_t099": ("fire", "t099"), "lag_fire_t05": ("fire", "t05"), "lead_rho": ("t05", "rho_fire"),
         "lag_r12_ge100_t05": ("r12_ge100", "t05"), "lag_r12_slope_t05": ("r12_slope", "t05")}
DETECTORS = ("fire", "rho_fire", "r12_ge25_x5", "r12_ge100", "r12_ge200", "r12_slope")
EVENTS = ("t05", "t099") + DETECTORS
LEVELS = ("r12_ge25_x5", "r12_ge100", "r12_ge200")
WHY = {"t05": "test accuracy >= 0.5 from row 0", "t099": "test accuracy >= 0.99 from row 0",
       "rho_fire": "rho_tian >= its threshold from row 0",
       "fire": "the s2/s3 slope above its threshold at the detector's first row",
       "r12_slope": "the s1/s2 slope above its threshold at the detector's first row",
       "r12_ge25_x5": "s1/s2 >= 25 from its first logged row", "r12_ge100": "s1/s2 >= 100 from its first logged row",
       "r12_ge200": "s1/s2 >= 200 from its first logged row"}
GAP_FIRST_ROW, R12_FIRST_ROW = 3, 2     # the engine logs sigma2/sigma3 from 3 updates, sigma1/sigma2 from 2


def _first_finite(y) -> float:
    y = np.asarray(y, dtype=float)
    hit = np.flatnonzero(np.isfinite(y))
    return float(hit[0]) if hit.size else math.nan


def first_rows(test_acc=None, rho=None, gap=None, r12=None, t_min: int = det.SLOPE_T_MIN,
               lag: int = det.SLOPE_LAG) -> dict:
    """{event: the first row its detector can fire} from a run's columns (None = not logged)."""
    out = {}
    if test_acc is not None:
        out["t05"] = out["t099"] = _first_finite(test_acc)
    if rho is not None:
        out["rho_fire"] = _first_finite(rho)
    if gap is not None:
        out["fire"] = max(float(t_min), _first_finite(det.log_slope(gap, lag)))
    if r12 is not None:
        out.update({k: _first_finite(r12) for k in LEVELS})
        out["r12_slope"] = max(float(t_min), _first_finite(det.log_slope(r12, lag)))
    return out


def stored_first_rows(options: dict) -> dict:
    """The first rows of a run logged by this engine, for summaries stored before ``from_start``."""
    t_min, lag = options.get("slope_t_min", det.SLOPE_T_MIN), options.get("slope_lag", det.SLOPE_LAG)
    return {"t05": 0.0, "t099": 0.0, "rho_fire": 0.0, "fire": float(max(t_min, GAP_FIRST_ROW + lag)),
            **{k: float(R12_FIRST_ROW) for k in LEVELS}, "r12_slope": float(max(t_min, R12_FIRST_ROW + lag))}


def from_start(values: dict, first: dict) -> list:
    """The events of ``values`` that fired at their first row."""
    return [e for e in EVENTS if values.get(e) is not None and math.isfinite(values[e])
            and e in first and math.isfinite(first[e]) and values[e] <= first[e]]


def undefined_leads(started: list) -> dict:
    """{lead: why} for the leads and lags with an operand in ``started``."""
    out = {}
    for lead, (a, b) in LEADS.items():
        bad = [e for e in (a, b) if e in started]
        if bad:
            out[lead] = "; ".join(WHY[e] for e in bad)
    return out


def fired_without_grok(values: dict, grokked) -> list:
    """The detectors that fired in a run that never reached test accuracy 0.5 ([] when it did or unknown)."""
    if grokked is None or grokked:
        return []
    return [d for d in DETECTORS if values.get(d) is not None and math.isfinite(values[d])]


# --- from the per-run rows of a summary (stored or new) -----------------------------------------

def run_flags(run: dict, options: dict, test_logged: bool = True) -> dict:
    """{'from_start', 'undefined', 'grokked', 'fire_without_grok'} of a per-run row; a row stored before
    these keys gets them from its events and the engine's first rows (t05 read as 'grokked' only when
    the summary crossed at 0.5)."""
    started = run.get("from_start")
    if started is None:
        started = from_start(run, stored_first_rows(options))
    grokked = run.get("grokked", _stored_grokked(run, options, test_logged))
    return {"from_start": list(started), "undefined": undefined_leads(started), "grokked": grokked,
            "fire_without_grok": run.get("fire_without_grok", fired_without_grok(run, grokked))}


def _stored_grokked(run, options, test_logged):
    if not test_logged or options.get("crossing", "first") != "first":
        return None
    return run.get("t05") is not None


def lead_values(cond: dict, key: str, options: dict) -> list:
    """The per-run values of a lead or lag: NaN where it is undefined (an operand fired from the start) or
    never happened (None in a stored row of a condition that logged it); runs that did not log it are left out."""
    logged = cond["stats"].get("t05") is not None
    has = cond["stats"].get(key) is not None
    out = []
    for r in cond["runs"]:
        if key in run_flags(r, options, logged)["undefined"]:
            out.append(math.nan)
        elif r.get(key) is not None:
            out.append(float(r[key]))
        elif has:
            out.append(math.nan)
    return out


def lead_stats(cond: dict, key: str, options: dict):
    """A lead's across-run statistic by the rule above: the summary's own when no run has it undefined
    (the same numbers), else recomputed with the undefined runs counted in n but not n_fired."""
    if not condition_flags(cond, options)["n_undefined"][key]:
        return cond["stats"].get(key)
    vals = lead_values(cond, key, options)
    return det.across_runs(vals) if vals else None


def lead_of_medians(cond: dict, options: dict):
    """median(t05) - median(rho_fire) over the runs where both fired and the lead is defined (None if none)."""
    logged = cond["stats"].get("t05") is not None
    both = [r for r in cond["runs"] if r.get("t05") is not None and r.get("rho_fire") is not None
            and "lead_rho" not in run_flags(r, options, logged)["undefined"]]
    if not both:
        return None
    x = det.median_diff([r["t05"] for r in both], [r["rho_fire"] for r in both])
    return x if math.isfinite(x) else None


def condition_flags(cond: dict, options: dict) -> dict:
    """{'fire_without_grok': {detector: runs}, 'n_from_start': {event: runs}, 'n_undefined': {lead: runs}}."""
    logged = cond["stats"].get("t05") is not None
    flags = [run_flags(r, options, logged) for r in cond["runs"]]
    return {"fire_without_grok": {d: sum(d in f["fire_without_grok"] for f in flags) for d in DETECTORS},
            "n_from_start": {e: sum(e in f["from_start"] for f in flags) for e in EVENTS},
            "n_undefined": {k: sum(k in f["undefined"] for f in flags) for k in LEADS}}
