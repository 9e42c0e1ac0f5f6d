"""The clock events and the F.4 outcome on literal series, each rule against a hand-worked answer:
persistence, NaN rows, censoring, t_cls = 0 and the four outcomes (tianref/analysis/clock_events.py)."""
import math

import numpy as np
import pytest

from tianref.analysis import clock_events as ce

NAN = float("nan")


def test_t_cls_is_sustained_for_persist_rows():
    loss = [2.0, 1.5, 0.5, 0.03, 0.019, 0.05, 0.001, 0.002, 0.001]
    # level 0.02: rows 4, 6, 7, 8 are below; row 5 (0.05) breaks the first stretch
    assert ce.t_cls(loss, 1e-2, persist=1) == 4.0                   # the plain first crossing
    assert ce.t_cls(loss, 1e-2, persist=2) == 6.0                   # 4 alone is not sustained
    assert ce.t_cls(loss, 1e-2, persist=3) == 6.0                   # rows 6, 7, 8
    assert math.isnan(ce.t_cls(loss, 1e-2, persist=4))              # the run ends before 4 rows hold
    assert math.isnan(ce.t_cls(loss[:4], 1e-2, persist=1))
    assert ce.t_cls(loss + [NAN], 1e-2, persist=3) == 6.0           # a trailing unlogged row is cut
    assert math.isnan(ce.t_cls([NAN, 0.1, 0.0], 1e-2, persist=1))   # no row-0 loss, no level


def test_nan_rows_are_never_inside_a_level_or_a_band():
    loss = [1.0, 0.001, NAN, 0.001, 0.001, 0.001]
    assert ce.t_cls(loss, 1e-2, persist=3) == 3.0                   # the NaN row breaks [1, 4)
    assert ce.t_margin([-1.0, 0.5, NAN, 0.5, 0.5], persist=2) == 3.0
    x = [5.0, 5.0, NAN, 5.0, 5.0, 5.0]
    assert ce.t_rep(x, 0.05) == 3.0                                 # the NaN row counts as outside
    assert ce.t_rep_settled(x, 0.05, persist=2) == 3.0              # windows [1,3) and [2,4) hold a NaN
    assert ce.rep_censored([5.0] * 18 + [NAN, 5.0], 0.0, 0.05)      # a NaN in the last 10 %: moving
    # a NaN inside the last window (not at its start): that window moves, so never settled
    assert math.isnan(ce.t_rep_settled([5.0, 5.0, 5.0, 5.0, NAN, 5.0], 0.05, persist=3))


def test_t_cls_abs_and_t_margin():
    assert ce.t_cls_abs([4.2, 0.5, 0.009, 0.011, 0.009, 0.008], 1e-2, persist=2) == 4.0
    assert ce.t_cls_abs([4.2, 0.5, 0.009, 0.011, 0.009, 0.008], 1e-2, persist=1) == 2.0
    # margin exactly 0 is a tie, not every sample right
    assert ce.t_margin([-0.3, 0.0, 0.1, 0.2, -0.01, 0.1, 0.2, 0.3], persist=3) == 5.0
    assert math.isnan(ce.t_margin([-1.0, -0.5, 0.0], persist=1))


def test_t_rep_against_the_last_value():
    #        0    1    2    3     4     5     6     7
    srank = [9.0, 8.0, 6.0, 5.1, 4.8, 5.3, 5.02, 5.0]
    # final 5.0, delta 0.05 -> band [4.75, 5.25]: row 5 (5.3) is the last outside, so t_rep = 6
    assert ce.t_rep(srank, 0.05) == 6.0
    assert ce.t_rep(srank, 0.1) == 3.0                               # band [4.5, 5.5]
    assert ce.t_rep([3.0, 3.0], 0.0) == 0.0
    assert ce.t_rep(srank + [NAN], 0.05) == 6.0                      # a trailing unlogged row is skipped


def test_t_rep_settled_reads_windows_not_the_last_value():
    # falls 10 -> 8 by 1/row, then flat at 8 from row 2, then drifts 2 % per row from row 8
    x = [10.0, 9.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0 * 0.98, 8.0 * 0.98 ** 2, 8.0 * 0.98 ** 3]
    # persist 3, delta 0.05: windows from s = 0, 1 move (>= 1 of ~9); from s = 2 .. 8 the spread is
    # at most 8 - 8 0.98^2 = 0.317 <= 0.05 x 8 = 0.4 -> settled at 2, whatever the end does
    assert ce.t_rep_settled(x, 0.05, persist=3) == 2.0
    # anchored at the last value (7.53), the flat part at 8 is outside the 5 % band: t_rep is late
    assert ce.t_rep(x, 0.05) == 8.0
    # delta 0.03: the last window [8, 11) moves by 8 0.98 (1 - 0.98^2) = 0.31 > 0.03 x 7.84 -> never
    assert math.isnan(ce.t_rep_settled(x, 0.03, persist=3))
    assert math.isnan(ce.t_rep_settled(x[:2], 0.05, persist=3))      # shorter than one window
    assert ce.t_rep_settled([4.0] * 5, 0.0, persist=5) == 0.0


def test_censoring_by_the_run_end():
    settled = [10.0 - i for i in range(10)] + [1.0] * 30             # 40 rows, flat from row 9
    tr = ce.t_rep(settled, 0.05)
    assert tr == 9.0 and not ce.rep_censored(settled, tr, 0.05)
    late = [10.0] * 37 + [9.0, 8.0, 7.0]                             # moves in the last 4 rows (10 %)
    assert ce.t_rep(late, 0.05) == 39.0 and ce.rep_censored(late, ce.t_rep(late, 0.05), 0.05)
    # t_rep early (row 0 is inside the final band), but still drifting 1 % per row: 4 % over the last
    # 4 rows > delta = 0.03 -> censored; with delta = 0.05 it is not
    drift = [100.0 * (1 - 0.01 * min(i, 40)) for i in range(40)]
    drift = [v * 0.7 / drift[-1] for v in drift]
    assert ce.rep_censored(drift, 0.0, 0.03) and not ce.rep_censored(drift, 0.0, 0.05)
    assert ce.rep_censored([1.0, 2.0], NAN, 0.05)                     # no t_rep: censored
    # the tail is k = ceil(0.1 n) rows and t_rep = n - k is inside it: n = 45 -> k = 5 (not 4), so a
    # step that ends at row 40 (t_rep = 40 = 45 - 5) is censored, one that ends at row 39 is not
    # (both tails are flat, so only the t_rep clause decides). Integers: no tolerance.
    at_edge = [10.0] * 40 + [1.0] * 5
    assert ce.t_rep(at_edge, 0.05) == 40.0 and ce.rep_censored(at_edge, 40.0, 0.05)
    inside = [10.0] * 39 + [1.0] * 6
    assert ce.t_rep(inside, 0.05) == 39.0 and not ce.rep_censored(inside, 39.0, 0.05)


def test_clock_ratio_is_nan_not_inf_at_t_cls_zero():
    assert math.isnan(ce.clock_ratio(30.0, 0.0))
    assert math.isnan(ce.clock_ratio(30.0, NAN)) and math.isnan(ce.clock_ratio(NAN, 10.0))
    assert ce.clock_ratio(30.0, 10.0) == 3.0
    # a loss at its level from row 0 (0 <= eps x 0: a run started at an exact solution)
    cols = {"train_loss": np.zeros(4), "W_srank": np.array([5.0, 4.0, 4.0, 4.0])}
    ev = ce.clock_events(cols, persist=2)
    assert ev["t_cls"] == 0.0 and ev["t_rep"] == 1.0 and math.isnan(ev["clock_ratio"])


@pytest.mark.parametrize("T_cls, T_rep, censored, T_test, want", [
    # tol = max(20, 0.25 T_test)
    (100.0, 300.0, False, 290.0, "two-clocks"),             # |290 - 300| <= 72.5, t_cls first
    (100.0, 300.0, False, 240.0, "two-clocks"),             # 60 <= tol 60
    (100.0, 300.0, False, 239.0, "test-before-structure"),  # 61 > tol 59.75
    (196.0, 351.0, False, 139.0, "test-before-structure"),  # the audited full-scale medians
    (100.0, NAN, False, 150.0, "test-before-structure"),    # never settles while the test curve rose
    (100.0, 160.0, True, 150.0, "test-before-structure"),   # together, but the statistic still moves
    (100.0, 200.0, False, NAN, "structure-without-test"),
    (NAN, 200.0, False, NAN, "structure-without-test"),     # no classifier clock needed for (3)
    (100.0, 200.0, True, NAN, "undetermined"),              # censored: not seen to settle
    (100.0, 0.0, False, NAN, "undetermined"),               # settled from row 0: it never changed
    (NAN, 300.0, False, 290.0, "undetermined"),             # together, but no classifier clock
    (320.0, 300.0, False, 290.0, "undetermined"),           # the classifier clock runs last
    (295.0, 300.0, False, 290.0, "undetermined"),           # before T_rep but after the test curve
    (100.0, 100.0, False, 400.0, "undetermined"),           # structure long before the test curve
    (100.0, NAN, False, NAN, "undetermined"),               # nothing happened
    (100.0, 300.0, False, None, "undetermined"),            # test accuracy not logged
    (100.0, None, None, 290.0, "undetermined"),             # the statistic not logged
])
def test_the_four_outcomes(T_cls, T_rep, censored, T_test, want):
    assert ce.clock_outcome(T_cls, T_rep, censored, T_test, tol_rows=20, tol_frac=0.25) == want


def test_clock_events_from_columns_reaches_each_outcome():
    """The rule applied to whole columns: a run whose W_srank settles as the test curve rises after the
    loss fell (two clocks), one whose test curve rises first, and a control that never generalises."""
    E = 200
    t = np.arange(E + 1, dtype=float)
    loss = np.where(t < 50, 1.0 - t / 60, 1e-3)                       # t_cls = 50 at eps = 1e-2
    step = lambda at: np.where(t < at, 0.0, 1.0)                       # noqa: E731
    srank = 90.0 - 30.0 * np.clip((t - 60) / 60, 0, 1)                 # falls over [60, 120], flat after
    cols = {"train_loss": loss, "W_srank": srank, "W_tail": srank / 200, "test_acc": step(125),
            "margin_min": np.where(t < 30, -0.1, 0.2)}
    ev = ce.clock_events(cols, persist=10)
    assert ev["t_cls"] == 50.0 and ev["t_margin"] == 30.0 and ev["t099"] == 125.0
    # the window [s, s + 10) in the fall moves 0.5 (120 - s) against 0.05 x_s = 0.05 (120 - s / 2):
    # 3.0 <= 3.15 at s = 114, 3.5 > 3.175 at s = 113
    assert ev["t_rep_settled"] == 114.0 and not ev["t_rep_censored"]
    assert ev["clock_outcome"] == ev["clock_outcome_tail"] == "two-clocks"
    assert ce.clock_events(dict(cols, test_acc=step(40)), persist=10)["clock_outcome"] == "test-before-structure"
    assert ce.clock_events(dict(cols, test_acc=0 * t), persist=10)["clock_outcome"] == "structure-without-test"
    assert ev["t_cls_abs"] is None                                    # not a cross-entropy run
    assert ce.clock_events(cols, persist=10, eps_abs=1e-2, loss="ce")["t_cls_abs"] == 50.0
    # cross-entropy: the outcome's classifier clock is the absolute one; never reached -> no two clocks
    never = ce.clock_events(cols, persist=10, eps_abs=1e-4, loss="ce")
    assert never["t_cls"] == 50.0 and math.isnan(never["t_cls_abs"]) and never["clock_outcome"] == "undetermined"
    old = ce.clock_events({"train_loss": loss, "test_acc": step(125)})  # a log from before the clocks
    assert old["t_rep"] is None and old["t_rep_tail"] is None and old["t_margin"] is None
    assert old["clock_outcome"] == old["clock_outcome_tail"] == "undetermined"


def test_a_huge_rep_delta_is_an_infinite_band_without_overflow_warnings():
    """summarize --rep-delta 1e308 printed NumPy's overflow warnings (delta x |x| overflowed): the band is
    infinite, every row inside it, and nothing is said."""
    import warnings
    x = [3.0, 5.0, 4.0, 4.5, 4.2, 4.1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ce.t_rep(x, 1e308) == 0.0
        assert not ce.window_moves(x, 1e308, 2).any()
        assert ce.rep_censored(x, 0.0, 1e308) is False
