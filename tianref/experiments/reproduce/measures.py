"""Per-run and per-condition helpers the paper's sections measure with (no section's logic).

References: :mod:`tianref.analysis.diagnostics` and :mod:`tianref.analysis.summarize` (the per-run
statistics), docs/math.md §8 (the Gram modes a run may log beside its float64 one).

Symbols
    σ_i           ``sigma(r, i - 1, W)``: the i-th singular value of the rolling update Gram of W
                  (window W; the run's default window when None), one value per epoch
    main          the run's own Gram (float64 by default); the others are ``train --log-grams`` modes
Every median leaves NaN and None out and is None when nothing is left.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tianref.analysis.records import window_key
from tianref.analysis.summarize import GRAM_KEYS, run_values
from tianref.errors import InputError


def f_or_none(x):
    """JSON-ready float: None for NaN/None."""
    return None if x is None or not np.isfinite(x) else float(x)


def median(vals):
    v = [x for x in vals if x is not None and np.isfinite(x)]
    return float(np.median(v)) if v else None


def by_eta(records, eta: float, act: str | None = None):
    """The runs of one condition, by seed."""
    return sorted((r for r in records if float(r.config.get("eta", -1)) == eta
                   and (act is None or r.config.get("act", "sqr") == act)),
                  key=lambda r: r.config.get("seed", 0))


def column(r, name, window=None, i=None):
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


def sigma(r, i: int, window=None):
    """σ_{i+1} of the W update Gram per epoch (NaN where not logged)."""
    return column(r, "W_sigma", window, i)


def at(x, t):
    return f_or_none(x[t]) if 0 <= t < len(x) else None


def median_at(records, fn, t: int):
    """Median over runs of fn(run)[t]."""
    return median([fn(r)[t] for r in records if t < r.n_epochs])


def logged_grams(records) -> list:
    """The Gram modes every run logged: 'main' (the run's own, float64 by default) and the
    --log-grams modes."""
    extra = [m for m, sfx in GRAM_KEYS.items()
             if sfx and records and all(r.has("W_gap23" + sfx) for r in records)]
    return ["main"] + extra


def main_gram_name(records) -> str:
    return ",".join(sorted({str(r.config.get("gram_dtype", "float64")) for r in records})) or "float64"


def fires_by_gram(r, opt, grams) -> dict:
    """{gram: the slope fire epoch with that Gram's spectra} for the logged non-main Grams."""
    return {g: f_or_none(run_values(r, dataclasses.replace(opt, gram=g))["fire"]) for g in grams if g != "main"}
