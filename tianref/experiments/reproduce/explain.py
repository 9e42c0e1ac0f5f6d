"""The numbers that account for where a section differs from the paper (pure: runs in, dict out).

References: ``docs/paper-protocol.md`` §6 (the four differences: the window sweep at W <= 10 is a
float32-Gram artifact, the η = 5e-4 lock-in sits on the slope threshold, a control run fires on a
real loss bump, σ2/σ3 collapses after the lock-in), docs/math.md §8 (float32 vs float64 Gram) and
:mod:`tianref.analysis.diagnostics` (the per-run statistics used here). The text is written from
these numbers by :mod:`tianref.experiments.reproduce.explain_report`.

Per section (``section_explain``):
    window    per W and condition, float64 and float32-Gram fires, late σ2/σ3, and σ3/σ1 at epoch
              200 and over the late range in float32 epsilons, for every Gram mode the runs logged
              (float64, and with train --log-grams float32,float32-seq the paper's float32 Gram)
    eta       per η and run: slope peak (overall and of the first rise above 0.035) and its epoch,
              fire at 0.035 / 0.04 / 0.045, and the fire with the float32 Grams
    headline  every control run that fired: its training-loss rise and σ2, σ3, σ2/σ3 around the
              fire; every grok run's collapse epoch (W and V) and late σ2/σ3 before the collapse

Symbols
    f(e)      an epoch position at the scale (``sections.scaled``)
    q         σ3/σ1 of the rolling ΔW Gram;  eps32 = 2^-23
    gap       σ2/σ3;  V_gap the same for ΔV
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tianref.analysis import diagnostics as dg
from tianref.analysis.records import window_key
from tianref.errors import InputError
from tianref.analysis.summarize import GRAM_KEYS, run_values
from tianref.experiments.reproduce.sections import ETA_GROK, eta_at, scaled, section_views

WINDOWS = (5, 10, 20, 30)


def _f(x):
    """JSON-ready float: None for NaN/None."""
    return None if x is None or not np.isfinite(x) else float(x)


def _med(vals):
    v = [x for x in vals if x is not None and np.isfinite(x)]
    return float(np.median(v)) if v else None


def logged_grams(records) -> list:
    """The Gram modes every run logged: 'main' (the run's own, float64 by default) and the
    --log-grams modes."""
    extra = [m for m, sfx in GRAM_KEYS.items() if sfx and records and all(r.has("W_gap23" + sfx) for r in records)]
    return ["main"] + extra


def _main_name(records) -> str:
    return ",".join(sorted({str(r.config.get("gram_dtype", "float64")) for r in records})) or "float64"


def _fires_by_gram(r, opt, grams) -> dict:
    return {g: _f(run_values(r, dataclasses.replace(opt, gram=g))["fire"]) for g in grams if g != "main"}


def _by_eta(records, eta):
    return sorted((r for r in records if float(r.config.get("eta", -1)) == eta),
                  key=lambda r: r.config.get("seed", 0))


def _col(r, name, window=None, i=None):
    """A logged column (σ_i when i is given) for the window; all-NaN when absent."""
    try:
        key = window_key(r, name, window)
    except InputError:                                  # window not logged
        return np.full(r.n_epochs, np.nan)
    S = r.columns.get(key)
    if S is None:
        return np.full(r.n_epochs, np.nan)
    if i is None:
        return S
    return S[:, i] if S.ndim == 2 and S.shape[1] > i else np.full(r.n_epochs, np.nan)


def _at(x, t):
    return _f(x[t]) if 0 <= t < len(x) else None


# --- window ---------------------------------------------------------------------------------

def explain_window(records, scale) -> dict:
    views = {v.options.window: v.options for v in section_views("window", scale)}
    t200 = scaled(200, scale)
    grams = logged_grams(records)
    o0 = views[WINDOWS[0]]
    out = {"grams": grams, "main": _main_name(records), "epoch_q": t200, "late_lo": o0.late_lo,
           "late_hi": o0.late_hi, "windows": {}}
    for W in WINDOWS:
        opt = views[W]
        per = {}
        for cname, eta in (("grok", eta_at(ETA_GROK, scale)), ("control", 0.0)):
            recs = _by_eta(records, eta)
            row = {"seeds": [r.config.get("seed") for r in recs]}
            for gram in grams:
                sfx = GRAM_KEYS[gram]
                o = dataclasses.replace(opt, gram=gram)
                vals = [run_values(r, o) for r in recs]
                S = [(_col(r, "W_sigma" + sfx, W, 0), _col(r, "W_sigma" + sfx, W, 2)) for r in recs]
                q = [_at(dg.sigma_ratio(s3, s1), t200) for s1, s3 in S]
                row[gram] = {
                    "fires": [_f(v["fire"]) for v in vals],
                    "late": [_f(v["late"]) for v in vals], "late_median": _med([v["late"] for v in vals]),
                    "collapse": [_f(v["collapse_epoch"]) for v in vals],
                    "late_pre_median": _med([v["late_precollapse"] for v in vals]),
                    "sigma3_ep": _med([_at(s3, t200) for _, s3 in S]),
                    "q_eps_ep": _med([None if x is None else x / dg.F32_EPS for x in q]),
                    "q_late_eps": _med([v["q_late_eps"] for v in vals]),
                    "n_precision_limited": sum(bool(v["precision_limited"]) for v in vals),
                }
            per[cname] = row
        out["windows"][str(W)] = per
    return out


# --- eta ------------------------------------------------------------------------------------

def explain_eta(records, scale) -> dict:
    opt = section_views("eta", scale)[0].options
    grams = logged_grams(records)
    out = {"grams": grams, "main": _main_name(records), "thresholds": list(dg.FIRE_THRESHOLDS), "etas": []}
    for eta in sorted({float(r.config.get("eta", 0)) for r in records}):
        recs = _by_eta(records, eta)
        runs = []
        for r in recs:
            v = run_values(r, opt)
            ep, ept = dg.episode_peak(r.col("W_gap23"), dg.FIRE_THRESHOLDS[0], opt.slope_t_min, opt.slope_lag)
            d = {"seed": r.config.get("seed"), "slope_peak": _f(v["slope_peak"]),
                 "slope_peak_epoch": _f(v["slope_peak_epoch"]),
                 "first_peak": _f(ep), "first_peak_epoch": _f(ept),
                 "fires": {k: _f(v[k]) for k in map(dg.fire_key, dg.FIRE_THRESHOLDS)},
                 "fire_by_gram": _fires_by_gram(r, opt, grams)}
            runs.append(d)
        med = {k: _med([x["fires"][k] for x in runs]) for k in map(dg.fire_key, dg.FIRE_THRESHOLDS)}
        nf = {k: sum(x["fires"][k] is not None for x in runs) for k in map(dg.fire_key, dg.FIRE_THRESHOLDS)}
        paper_eta = float(f"{eta / scale.eta_factor:.6g}")            # the paper's η of this condition
        out["etas"].append({"eta": eta, "paper_eta": paper_eta, "runs": runs, "median_fire": med, "n_fired": nf, "n": len(runs),
                            "median_fire_by_gram": {g: _med([x["fire_by_gram"][g] for x in runs])
                                                    for g in grams if g != "main"}})
    return out


# --- headline -------------------------------------------------------------------------------

def explain_headline(records, scale) -> dict:
    opt = section_views("headline", scale)[0].options
    lag = opt.slope_lag
    grams = logged_grams(records)
    ctrl, grok = _by_eta(records, 0.0), _by_eta(records, eta_at(ETA_GROK, scale))
    fired = []
    for r in ctrl:
        v = run_values(r, opt)
        if v["fire"] is None or not np.isfinite(v["fire"]):
            continue
        t = int(v["fire"])
        gap, s2, s3 = r.col("W_gap23"), _col(r, "W_sigma", None, 1), _col(r, "W_sigma", None, 2)
        rise = dg.loss_rise(r.col("train_loss"), t, lag)
        t1 = int(rise["t1"]) if rise else max(0, t - lag)
        hi = min(len(gap), t + lag + 1)
        k = t + int(np.nanargmax(gap[t:hi])) if np.isfinite(gap[t:hi]).any() else t
        d = {"seed": r.config.get("seed"), "fire": float(t), "slope_peak": _f(v["slope_peak"]),
             "slope_peak_epoch": _f(v["slope_peak_epoch"]), "loss_rise": rise,
             "t_before": t1, "t_peak": k,
             "gap_before": _at(gap, t1), "gap_peak": _at(gap, k),
             "sigma2_before": _at(s2, t1), "sigma2_peak": _at(s2, k),
             "sigma3_before": _at(s3, t1), "sigma3_peak": _at(s3, k),
             "fire_by_gram": _fires_by_gram(r, opt, grams)}
        fired.append(d)
    grok_runs = []
    for r in grok:
        v = run_values(r, opt)
        vc = dg.collapse_epoch(r.col("V_gap23"), v["fire"]) if r.has("V_gap23") else np.nan
        grok_runs.append({"seed": r.config.get("seed"), "fire": _f(v["fire"]),
                          "collapse": _f(v["collapse_epoch"]), "collapse_V": _f(vc),
                          "late": _f(v["late"]), "late_precollapse": _f(v["late_precollapse"])})
    col = [g["collapse"] for g in grok_runs]
    colV = [(g["collapse_V"], g["collapse"]) for g in grok_runs
            if g["collapse_V"] is not None and g["collapse"] is not None]
    return {
        "grams": grams, "main": _main_name(records), "late_range": [opt.late_lo, opt.late_hi], "lag": lag,
        "control": {"n": len(ctrl), "fired": fired,
                    "p_none": dg.p_no_event(len(fired), len(ctrl)) if ctrl else None},
        "grok": {"n": len(grok), "runs": grok_runs,
                 "n_collapsed": sum(c is not None for c in col), "collapse_median": _med(col),
                 "collapse_min": min((c for c in col if c is not None), default=None),
                 "collapse_max": max((c for c in col if c is not None), default=None),
                 "collapse_V_median": _med([a for a, _ in colV]),
                 "n_V_first": sum(a <= b for a, b in colV), "n_both": len(colV),
                 "late_median": _med([g["late"] for g in grok_runs]),
                 "late_precollapse_median": _med([g["late_precollapse"] for g in grok_runs])},
    }


def section_explain(section: str, records, scale) -> dict | None:
    """The section's explanation numbers, or None for sections without a listed difference."""
    if not records:
        return None
    if section == "window":
        return explain_window(records, scale)
    if section == "eta":
        return explain_eta(records, scale)
    if section == "headline":
        return explain_headline(records, scale)
    return None

