"""The two clocks of a run as events, and the reading of a run as one of the two-clocks paper's outcomes.

Reference: *Deciphering Two Training Clocks in Grokking via Deep Linear Network Theory with
Conditional ReLU Reduction*: T_cls(eps), the time the training loss is below eps; T_rep(delta), the
time a structural statistic has settled to within delta; its appendix F.4 ("empirical estimation") asks
for sustained times (a persistence window), a margin beside the loss, a spectral tail beside the stable
rank, and a reading of each run as one of three outcomes. docs/edge-and-clocks.md §5.

Rows are epochs (row t = the parameters after t steps); NaN = the event never happened. A series is
cut after its last finite value (rows not logged yet); a NaN row before that counts as outside every
band and breaks every window (it is never evidence that a level was held). P = persist (rows),
delta relative, x a structural statistic (W_srank, or W_tail = the fraction of ||W||_F^2 outside the top
r singular directions, tianref/clocks.py), n = its number of rows.

    t_cls         = min { t : L_s <= eps * L_0 for every s in [t, t + P) }            (eps = --cls-eps)
    t_cls_abs     = min { t : L_s <= eps_abs for every s in [t, t + P) }   cross-entropy only (nats)
    t_margin      = min { t : margin_min_s > 0 for every s in [t, t + P) }  every training sample right
    t_rep         = min { t : |x_s - x_E| <= delta |x_E| for every s >= t }   E = the last row
    t_rep_settled = min { t : spread(s) <= delta |x_s| for every window start s in [t, n - P] },
                    spread(s) = max - min of x over [s, s + P); NaN when the last window moves more
    t_rep_censored = t_rep >= n - k  or  x moves by more than delta |x_E| over its last k rows,
                    k = max(ceil(CENSOR_FRAC n), 2) (the run ended before the statistic was seen to settle)
    clock_ratio   = t_rep / t_cls     (NaN when either is NaN or t_cls = 0)
    t099          = first t with test_acc >= 0.99

A window must lie inside the logged rows: an event in the last P - 1 rows is not yet sustained (NaN).
t_rep is measured against the run's own last value, so it is censored by the run's length (a statistic
still drifting gives t_rep near E); t_rep_settled does not use the last value: it reads a rate (at most
delta of relative motion per P rows), so a slow drift below that rate counts as settled -- and the
censoring flag then says whether the drift is still more than delta over the last 10 % of the run.

The outcome (F.4), with T_cls = t_cls_abs for cross-entropy runs (the paper's absolute eps) and t_cls
otherwise, T_rep = t_rep_settled, T_test = t099, tol = max(TOL_ROWS, TOL_FRAC * T_test):

    two-clocks              T_cls, T_rep, T_test all finite, not censored, T_cls <= T_rep,
                            T_cls <= T_test and |T_test - T_rep| <= tol: the structural clock and the test
                            curve move together after the classifier clock -- supports two clocks;
    test-before-structure   T_test finite and (T_rep NaN, or censored, or T_test < T_rep - tol): the
                            test curve improves before the statistic settles -- the statistic is not the
                            task's representation variable;
    structure-without-test  T_test NaN, T_rep finite, not censored and > 0 (the statistic moved, then
                            settled) -- the simplification is not aligned with the task;
    undetermined            anything else (no T_cls, the classifier clock after the others, the
                            statistic settling more than tol before the test curve, nothing moving, or
                            a column not logged).

Defaults and why: eps = 1e-2 (relative: one level for the squared losses and cross-entropy); eps_abs =
1e-2 nats (mean CE <= 0.01 puts the mean probability of the right class above e^-0.01 = 0.990, by Jensen,
the level of t099); delta = 0.05; P = 50 rows (long against Adam's one-epoch loss spikes, short against
the 400-800-epoch runs; with delta = 0.05 it reads "settled" as moving less than 0.1 % per epoch, slow
enough to see the post-grokking fall of W_tail in the quick configuration, docs/edge-and-clocks.md §5);
CENSOR_FRAC = 0.1; TOL_ROWS = P (an event's own resolution; clock_events passes its P) and
TOL_FRAC = 0.25 (the test curve's rise from 0.5 to 0.99 takes about a quarter of t099 at the full and
the quick scale: events inside it move "together").
"""
from __future__ import annotations

import math

import numpy as np

from tianref.analysis.detectors import first_crossing

CLS_EPS = 1e-2
CLS_EPS_ABS = 1e-2
REP_DELTA = 0.05
PERSIST = 50
CENSOR_FRAC = 0.1
TEST_LEVEL = 0.99
TOL_ROWS = PERSIST
TOL_FRAC = 0.25
OUTCOMES = ("two-clocks", "test-before-structure", "structure-without-test", "undetermined")
STRUCTURES = {"": "W_srank", "_tail": "W_tail"}     # event-key suffix -> the structural column


def _logged(x) -> np.ndarray:
    """The series as float64, cut after its last finite value (empty when none is finite)."""
    x = np.asarray(x, dtype=float)
    finite = np.flatnonzero(np.isfinite(x))
    return x[:finite[-1] + 1] if finite.size else x[:0]


def first_sustained(ok, persist: int = PERSIST) -> float:
    """First t with ok[s] true for every s in [t, t + persist) inside the series, else NaN."""
    ok = np.asarray(ok, dtype=bool)
    p = max(int(persist), 1)
    if ok.size < p:
        return math.nan
    bad = np.concatenate([[0], np.cumsum(~ok)])                # (n+1,) bad rows before each index
    held = np.flatnonzero(bad[p:] - bad[:-p] == 0)             # window starts with no bad row
    return float(held[0]) if held.size else math.nan


def t_cls(train_loss, eps: float = CLS_EPS, persist: int = PERSIST) -> float:
    """First epoch from which train_loss <= eps * train_loss[0] for ``persist`` rows, else NaN."""
    L = _logged(train_loss)
    if L.size == 0 or not math.isfinite(L[0]):
        return math.nan
    return first_sustained(L <= eps * L[0], persist)           # NaN <= c is False: outside


def t_cls_abs(train_loss, eps_abs: float = CLS_EPS_ABS, persist: int = PERSIST) -> float:
    """First epoch from which train_loss <= eps_abs (absolute) for ``persist`` rows, else NaN."""
    return first_sustained(_logged(train_loss) <= eps_abs, persist)


def t_margin(margin, persist: int = PERSIST) -> float:
    """First epoch from which margin_min > 0 (every training sample right) for ``persist`` rows."""
    return first_sustained(_logged(margin) > 0, persist)


def t_rep(x, delta: float = REP_DELTA) -> float:
    """First epoch from which x stays within delta (relative) of its last finite value, else NaN."""
    s = _logged(x)
    if s.size == 0:
        return math.nan
    final = s[-1]
    outside = ~(np.abs(s - final) <= delta * abs(float(final)))   # NaN rows count as outside (Python floats:
                                                                   # a huge delta gives inf, no overflow warning)
    bad = np.flatnonzero(outside)
    return float(bad[-1] + 1) if bad.size else 0.0


def window_moves(x, delta: float, persist: int) -> np.ndarray:
    """(n - P + 1,) bool: window [s, s + P) moves by more than delta |x_s| (or holds a NaN row)."""
    s = _logged(x)
    p = max(int(persist), 1)
    if s.size < p:
        return np.zeros(0, dtype=bool)
    win = np.lib.stride_tricks.sliding_window_view(s, p)        # (n-p+1, p)
    spread = win.max(axis=1) - win.min(axis=1)                  # NaN when a row is NaN
    with np.errstate(over="ignore"):                            # a huge delta: an infinite band, as meant
        return ~(spread <= delta * np.abs(s[:win.shape[0]]))


def t_rep_settled(x, delta: float = REP_DELTA, persist: int = PERSIST) -> float:
    """First epoch from which every window of ``persist`` rows moves by at most delta (relative),
    else NaN (the last window moves, or the series is shorter than one window)."""
    moves = window_moves(x, delta, persist)
    if moves.size == 0 or moves[-1]:
        return math.nan
    bad = np.flatnonzero(moves)
    return float(bad[-1] + 1) if bad.size else 0.0


def rep_censored(x, t_rep_value: float, delta: float = REP_DELTA, frac: float = CENSOR_FRAC) -> bool:
    """True when t_rep is NaN or in the last ``frac`` of the rows, or x moves by more than delta
    (relative to its last value) over those rows (a NaN row there counts as moving)."""
    s = _logged(x)
    if s.size == 0 or not math.isfinite(t_rep_value):
        return True
    k = max(math.ceil(frac * s.size), 2)
    tail = s[-k:]                                               # (k,)
    spread = tail.max() - tail.min()                            # NaN when a row is NaN
    return bool(t_rep_value >= s.size - k or not spread <= delta * abs(float(s[-1])))


def clock_ratio(t_rep_value, t_cls_value) -> float:
    """t_rep / t_cls; NaN when either is missing or NaN, or t_cls = 0 (no ratio to a clock at 0)."""
    a, b = t_rep_value, t_cls_value
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return math.nan
    return a / b


def outcome_tolerance(t099: float, tol_rows: float = TOL_ROWS, tol_frac: float = TOL_FRAC) -> float:
    return max(tol_rows, tol_frac * t099)


def clock_outcome(T_cls, T_rep, censored, T_test, tol_rows: float = TOL_ROWS,
                  tol_frac: float = TOL_FRAC) -> str:
    """One of OUTCOMES by the rule of the module docstring (NaN = the event never happened; None =
    not logged: T_test None, or T_rep and censored both None, is undetermined)."""
    def fin(t):
        return t is not None and math.isfinite(t)
    if T_test is None or (T_rep is None and censored is None):   # test or statistic never logged
        return "undetermined"
    if fin(T_test):
        tol = outcome_tolerance(T_test, tol_rows, tol_frac)
        if not fin(T_rep) or censored or T_test < T_rep - tol:
            return "test-before-structure"
        if fin(T_cls) and T_cls <= T_rep and T_cls <= T_test and abs(T_test - T_rep) <= tol:
            return "two-clocks"
        return "undetermined"
    if fin(T_rep) and not censored and T_rep > 0:
        return "structure-without-test"
    return "undetermined"


def structural_events(x, delta: float = REP_DELTA, persist: int = PERSIST) -> dict:
    """{'t_rep', 't_rep_settled', 't_rep_censored'} of one structural series."""
    tr = t_rep(x, delta)
    return {"t_rep": tr, "t_rep_settled": t_rep_settled(x, delta, persist),
            "t_rep_censored": rep_censored(x, tr, delta)}


def clock_events(columns: dict, eps: float = CLS_EPS, delta: float = REP_DELTA,
                 persist: int = PERSIST, eps_abs: float = CLS_EPS_ABS, loss: str | None = None) -> dict:
    """The events of one run from its columns (None where a column is missing; t_cls_abs only when
    ``loss`` is 'ce'): t_cls, t_cls_abs, t_margin, t099 and, for W_srank (no suffix) and W_tail
    (suffix _tail), t_rep, t_rep_settled, t_rep_censored, clock_ratio, clock_outcome."""
    has = columns.__contains__
    out = {"t_cls": t_cls(columns["train_loss"], eps, persist) if has("train_loss") else None,
           "t_cls_abs": None,
           "t_margin": t_margin(columns["margin_min"], persist) if has("margin_min") else None,
           "t099": first_crossing(columns["test_acc"], TEST_LEVEL) if has("test_acc") else None}
    if loss == "ce" and has("train_loss"):
        out["t_cls_abs"] = t_cls_abs(columns["train_loss"], eps_abs, persist)
    T_cls = out["t_cls_abs"] if loss == "ce" else out["t_cls"]
    for sfx, key in STRUCTURES.items():
        ev = structural_events(columns[key], delta, persist) if has(key) else \
            dict.fromkeys(("t_rep", "t_rep_settled", "t_rep_censored"))
        out.update({f"t_rep{sfx}": ev["t_rep"], f"t_rep{sfx}_settled": ev["t_rep_settled"],
                    f"t_rep{sfx}_censored": ev["t_rep_censored"]})
        out[f"clock_ratio{sfx}"] = None if ev["t_rep"] is None or out["t_cls"] is None else \
            clock_ratio(ev["t_rep"], out["t_cls"])
        out[f"clock_outcome{sfx}"] = clock_outcome(T_cls, ev["t_rep_settled"], ev["t_rep_censored"],
                                                   out["t099"], tol_rows=persist)
    return out
