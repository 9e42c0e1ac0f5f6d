"""The two clocks of a run as events: the classifier clock t_cls and the representation clock t_rep.

Reference: *Deciphering Two Training Clocks in Grokking via Deep Linear Network Theory with
Conditional ReLU Reduction* (T_cls(eps): the first time the training loss is below eps; T_rep(delta):
the first time a structural gap -- here the stable rank -- is below delta); docs/edge-and-clocks.md §5.

Per run, from the logged columns (NaN = the event never happened):

    t_cls   = min { t : train_loss_t <= eps * train_loss_0 }                       (eps = --cls-eps)
    t_rep   = min { t : |srank_s - srank_E| <= delta * srank_E  for every s >= t }  (delta = --rep-delta)
              srank = W_srank, E = the last logged row
    ratio   = t_rep / t_cls                                    (undefined when t_cls is NaN or 0)

The loss is relative to row 0 so that one eps serves the squared losses and cross-entropy. t_rep is
measured against the run's own final value, so it is censored by the run's length: a stable rank
still drifting at the end gives t_rep close to E (the reports say so).
"""
from __future__ import annotations

import math

import numpy as np

CLS_EPS = 1e-2
REP_DELTA = 0.05


def t_cls(train_loss, eps: float = CLS_EPS) -> float:
    """First epoch (index) with train_loss <= eps * train_loss[0], else NaN."""
    L = np.asarray(train_loss, dtype=float)
    if L.size == 0 or not math.isfinite(L[0]):
        return math.nan
    hit = np.flatnonzero(L <= eps * L[0])
    return float(hit[0]) if hit.size else math.nan


def t_rep(srank, delta: float = REP_DELTA) -> float:
    """First epoch from which srank stays within delta (relative) of its last finite value, else NaN."""
    s = np.asarray(srank, dtype=float)
    finite = np.flatnonzero(np.isfinite(s))
    if finite.size == 0:
        return math.nan
    s = s[:finite[-1] + 1]
    final = s[-1]
    outside = ~(np.abs(s - final) <= delta * abs(final))       # NaN rows count as outside
    bad = np.flatnonzero(outside)
    return float(bad[-1] + 1) if bad.size else 0.0


def clock_events(columns: dict, eps: float = CLS_EPS, delta: float = REP_DELTA) -> dict:
    """{'t_cls', 't_rep', 'clock_ratio'} from a run's columns (None where a column is missing)."""
    out = {"t_cls": None, "t_rep": None, "clock_ratio": None}
    if "train_loss" in columns:
        out["t_cls"] = t_cls(columns["train_loss"], eps)
    if "W_srank" in columns:
        out["t_rep"] = t_rep(columns["W_srank"], delta)
    a, b = out["t_rep"], out["t_cls"]
    if a is not None and b is not None and math.isfinite(a) and math.isfinite(b) and b > 0:
        out["clock_ratio"] = a / b
    elif a is not None and b is not None:
        out["clock_ratio"] = math.nan
    return out
