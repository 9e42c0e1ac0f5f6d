"""Words on the run figures, built from the runs they show (host data only, no drawing).

A figure must not claim what its data cannot show: "grok vs control" needs an eta > 0 and an eta = 0
condition; "median" and "band" need more than one run per condition; a panel needs its metric.

    title_of(groups)          'Grok (η = 0.0002) vs control (η = 0)', 'η sweep: η = 0.0005, ...',
                              or the one condition's label
    setup_of(records, W)      'σ = x², M = 71, K = 2048, n = 2016, W = 20' (the keys all runs share)
    spread_of(groups)         'median over seeds, band = 25th-75th percentile' | 'one run per condition'
    window_of(records, W)     the window shown: W, or the first window every run logged
    present(records, key)     whether any run logged a finite value of key
"""
from __future__ import annotations

import numpy as np

ACT_NAMES = {"sqr": "x²", "relu": "ReLU", "silu": "SiLU", "relusqr": "ReLU²"}


def present(records, key: str) -> bool:
    for r in records:
        if r.has(key) and np.isfinite(r.col(key)).any():
            return True
    return False


def window_of(records, window=None):
    """The window W the σ2/σ3 keys refer to: ``window``; else the runs' common first window; else the first
    window (in the first run's order) that every run logged; None when they share none."""
    if window is not None:
        return window
    wins = [list(r.config.get("windows") or (20,)) for r in records]
    if not wins:
        return None
    firsts = {w[0] for w in wins}
    if len(firsts) == 1:
        return firsts.pop()
    common = [W for W in wins[0] if all(W in w for w in wins)]
    return common[0] if common else None


def _eta(recs) -> float | None:
    etas = {r.config.get("eta") for r in recs}
    if len(etas) != 1:
        return None
    try:
        return float(etas.pop())
    except (TypeError, ValueError):
        return None


def title_of(groups) -> str:
    """groups: [(label, [RunRecord])]."""
    if len(groups) == 1:
        return groups[0][0]
    etas = [_eta(recs) for _, recs in groups]
    only_eta = all(lab.startswith("eta=") and " " not in lab for lab, _ in groups)
    if only_eta and None not in etas:
        grok = [e for e in etas if e > 0]
        if len(grok) == 1 and len(etas) == 2 and 0.0 in etas:
            return f"Grok (η = {grok[0]:g}) vs control (η = 0)"
        if len(etas) <= TITLE_VALUES:
            return "η sweep: η = " + ", ".join(f"{e:g}" for e in etas)
        return f"η sweep: {len(etas)} values of η from {min(etas):g} to {max(etas):g} (the legend lists them)"
    return f"{len(groups)} conditions"


TITLE_VALUES = 8        # a title lists at most this many η values (more ran off the figure's edges)


def setup_of(records, window=None, show_window: bool = True) -> str:
    """The settings every run shares, as one line (and the window W shown, if show_window)."""
    def common(key):
        vals = {str(r.config.get(key)) for r in records}
        return vals.pop() if len(vals) == 1 and "None" not in vals else None
    parts = []
    act = common("act")
    if act:
        parts.append(f"σ = {ACT_NAMES.get(act, act)}")
    group = common("group")
    if group:
        parts.append(f"H = {group}")                 # a --group run (config.json; absent = Z_M)
    for key, name in (("M", "M"), ("K", "K"), ("n_train", "n")):
        v = common(key)
        if v:
            parts.append(f"{name} = {v}")
    W = window_of(records, window) if show_window else None
    if W is not None:
        parts.append(f"window W = {W}")
    return ", ".join(parts)


def spread_of(groups) -> str:
    ns = {len(recs) for _, recs in groups}
    if ns == {1}:
        return "one run per condition"
    if 1 in ns:
        return "median over seeds where n > 1, band = 25th-75th percentile"
    return "median over seeds, band = 25th-75th percentile"


def event_text(name: str, stat: dict, say_never: bool = False) -> str | None:
    """'fire 173 (15/15)' over several runs ('median' implied by the legend's header), 'fire 173' for one.
    No run fired: None, or with ``say_never`` 'no fire (0/15)' ('no fire' for one run), so that a condition
    whose detector never fired is not read as one whose detector was not run."""
    if not stat["n_fired"]:
        if not say_never or not stat["n"]:
            return None
        return f"no {name}" if stat["n"] == 1 else f"no {name} (0/{stat['n']})"
    if stat["n"] == 1:
        return f"{name} {stat['median']:g}"
    return f"{name} {stat['median']:g} ({stat['n_fired']}/{stat['n']})"
