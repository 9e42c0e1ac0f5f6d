"""Quantities read from a section's runs beyond :func:`tianref.analysis.summarize.summarize`.

References: ``docs/paper-protocol.md`` §1-2, the tables these numbers are compared with:
T3b and T8 (headline: median σ1/σ2 and σ1..σ3 at given epochs, control test accuracy over the late
range), T4 (window: the rank check σ3..σ5 at epoch 200), T-ReLU / §2 (relu: late σ1/σ2 and σ2/σ5) and
T5b (extended: the peak of σ2/σ3).

Symbols
    σ_i           ``_sigma(r, i - 1, W)``: the i-th singular value of the rolling update Gram of W
                  (window W; the run's default window when None), one value per epoch
    r12           σ1/σ2 with σ2 floored at ``detectors.R12_FLOOR``
    W_gap23       σ2/σ3 as logged by the run
Every quantity is a median over the seeds of a condition (NaN values left out; None if none is left).
"""
from __future__ import annotations

import numpy as np

from tianref.analysis import detectors as det
from tianref.experiments import protocols
from tianref.analysis.records import window_key
from tianref.experiments.reproduce.sections import ETA_GROK, eta_at, scaled


def _cond_records(records, eta: float, act: str | None = None):
    return [r for r in records if float(r.config.get("eta", -1)) == eta
            and (act is None or r.config.get("act", "sqr") == act)]


def _median_at(records, fn, t: int):
    vals = [fn(r)[t] for r in records if t < r.n_epochs]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.median(vals)) if vals else None


def _sigma(r, i: int, window=None):
    S = r.columns.get(window_key(r, "W_sigma", window))
    if S is None or S.ndim != 2 or S.shape[1] <= i:
        return np.full(r.n_epochs, np.nan)
    return S[:, i]


def section_extras(section: str, records, scale: protocols.Scale) -> dict:
    """Per-epoch medians over seeds that the published tables quote (T3b, T8, T4 rank check, ...)."""
    f = lambda e: scaled(e, scale)
    out: dict = {}
    groups = {"grok": _cond_records(records, eta_at(ETA_GROK, scale)), "control": _cond_records(records, 0.0)}
    if section == "headline":
        r12 = lambda r: _sigma(r, 0) / np.maximum(_sigma(r, 1), det.R12_FLOOR)
        out["r12_median"] = {g: {str(e): _median_at(rs, r12, f(e))
                                 for e in (30, 50, 75, 100, 125, 150, 170, 200)}
                             for g, rs in groups.items()}
        out["sigma_median"] = {g: {str(e): [_median_at(rs, lambda r, i=i: _sigma(r, i), f(e))
                                            for i in range(3)] for e in eps}
                               for g, rs, eps in (("grok", groups["grok"], (25, 100, 150, 200, 300)),
                                                  ("control", groups["control"], (100, 200, 400)))}
        lo, hi = f(200), f(400)
        plate = [det.late_median(r.col("test_acc"), lo, hi) for r in groups["control"]]
        plate = [v for v in plate if np.isfinite(v)]
        out["control_test_acc_late"] = float(np.median(plate)) if plate else None
    elif section == "window":
        out["rank_check_ep200"] = {str(W): [_median_at(groups["grok"], lambda r, i=i, W=W: _sigma(r, i, W),
                                                       f(200)) for i in (2, 3, 4)]
                                   for W in (5, 10, 20, 30)}
    elif section == "relu":
        lo, hi = f(200), f(400)
        def late_ratio(r, a, b):
            with np.errstate(divide="ignore", invalid="ignore"):
                return det.late_median(_sigma(r, a) / _sigma(r, b), lo, hi)
        out["late_spectrum"] = {g: {k: _nanmed([late_ratio(r, a, b) for r in rs])
                                    for k, (a, b) in {"s1/s2": (0, 1), "s2/s5": (1, 4)}.items()}
                                for g, rs in groups.items()}
    elif section == "extended":
        peaks = [float(np.nanmax(r.col("W_gap23"))) for r in records
                 if np.isfinite(r.col("W_gap23")).any()]
        out["peak_gap23"] = _nanmed(peaks)
    return out


def _nanmed(vals):
    v = [x for x in vals if x is not None and np.isfinite(x)]
    return float(np.median(v)) if v else None
