"""Helpers shared by the seed-paper sections (reproduce.lifecycle, reproduce.clocks_section): the
condition of a run, first crossings, medians, across-seed statistics and their table cells.
"""
from __future__ import annotations

import math

import numpy as np

from tianref.analysis import detectors as det
from tianref.analysis.summarize import fmt


def _cond(rec) -> str:
    c = rec.config
    if c.get("eta_schedule"):
        return "switch"
    name = f"eta={float(c['eta']):g}"
    if c.get("loss", "tian") == "ce" or c.get("act") != "sqr":
        name = f"{c.get('act')} {c.get('loss', 'tian')} " + name
    return name


def _first(col, thr) -> float:
    hit = np.flatnonzero(np.asarray(col, dtype=float) >= thr)
    return float(hit[0]) if hit.size else math.nan


def _nanmed(x) -> float:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else math.nan


def _phase_median(col, lo, hi) -> float:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        return math.nan
    return _nanmed(np.asarray(col, dtype=float)[int(lo):int(hi) + 1])


def _stats(vals) -> dict:
    return det.across_runs([math.nan if v is None else v for v in vals])


def _cell(s) -> str:
    if s is None or s["n_fired"] == 0:
        return "—"
    if s["n"] == 1:
        return fmt(s["median"])
    cell = f"{fmt(s['median'])} [{fmt(s['min'])}, {fmt(s['max'])}]"
    return cell if s["n_fired"] == s["n"] else f"{cell} ({s['n_fired']}/{s['n']})"


def _med(s):
    return None if s is None or s["n_fired"] == 0 else s["median"]


def _lt(a, b) -> bool:
    return a is not None and b is not None and math.isfinite(a) and math.isfinite(b) and a < b


def _claims_md(claims) -> list:
    lines = ["| the seed says | this model shows | verdict |", "|---|---|---|"]
    return lines + [f"| {a} | {b} | {c} |" for a, b, c in claims]
