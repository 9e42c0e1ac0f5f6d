"""Detectors on synthetic series whose answers are known by construction (paper-protocol.md §3).

Event epochs are exact integers, so they are compared with ==; the few float comparisons say
why their tolerance is what it is.
"""
import json
import math

import numpy as np
import pytest

from tianref.analysis import detectors as det
from tianref.analysis.records import columns_from_rows, read_rows, read_run, window_key
from tianref.errors import InputError

E = 400                       # rows 0..400, the headline protocol's length
T = np.arange(E + 1)


def step_gap(jumps, base=1.3, E=E):
    """sigma2/sigma3 that is ``base`` and multiplies by exp(a) at each (epoch, a) in jumps.

    rows 0-2 are NaN, as the engine logs them (sigma2/sigma3 is first defined at row 3).
    """
    x = np.full(E + 1, np.log(base))
    for t0, a in jumps:
        x[t0:] += a
    g = np.exp(x)
    g[:3] = np.nan
    return g


# --- crossings -------------------------------------------------------------------------------

def test_first_crossing_is_inclusive_and_nan_when_never():
    acc = np.where(T < 101, 0.03, np.where(T < 139, 0.5, 0.995))   # exactly 0.5 at 101
    acc[50] = np.nan                                                 # NaN never counts as a crossing
    assert det.test_crossings(acc) == (101.0, 139.0)
    assert math.isnan(det.first_crossing(np.full(10, 0.3), 0.5))
    assert math.isnan(det.first_crossing(np.full(10, np.nan), 0.5))
    assert det.first_crossing(acc, 0.5, t_min=120) == 120.0


def test_half_max_crossing_uses_early_median_baseline():
    # baseline median(y[0:5]) = 0.02, peak 0.9 -> level 0.02 + 0.44 = 0.46: crosses at 80, not 90.
    y = np.full(201, 0.02)
    y[80:90] = 0.47
    y[90:] = 0.9
    assert det.half_max_threshold(y) == pytest.approx(0.46, abs=1e-12)   # 3 float operations
    y[2] = 0.3                        # one early outlier: the median of rows 0-4 ignores it
    assert det.half_max_threshold(y) == pytest.approx(0.46, abs=1e-12)   # (a mean would not)
    assert det.half_max_crossing(y) == 80.0
    assert det.test_crossings(y, "halfmax")[0] == 80.0
    assert det.test_crossings(y, "first")[0] == 90.0
    # the baseline is rows 0..4 only: row 5 lies outside it. With rows 0-4 = 0.02, 0.02, 0.3,
    # 0.3, 0.3 the median is 0.3 (level 0.6); were row 5 = 0.02 included the median of six would
    # be 0.16 (level 0.53). Both levels are a few float operations from exact: abs 1e-12.
    z = y.copy()
    z[2:5] = 0.3
    assert det.half_max_threshold(z) == pytest.approx(0.3 + 0.5 * (0.9 - 0.3), abs=1e-12)
    with pytest.raises(ValueError):
        det.test_crossings(y, "bogus")


# --- sigma2/sigma3 slope detector --------------------------------------------------------------

def test_slope_fires_exactly_at_designed_epoch():
    # a 1.5-fold rise of ln(gap) at t = 137: s(t) = 1.5/25 = 0.06 > 0.04 for t in [137, 161].
    g = step_gap([(137, 1.5)])
    s = det.log_slope(g)
    assert np.isnan(s[:28]).all()                # t < 25, or gap(t - 25) NaN (rows 0-2)
    assert s[136] == 0.0 and s[137] == pytest.approx(0.06, rel=1e-12, abs=0)   # exact logs, 1 rounding
    assert det.slope_fire(g) == 137.0


def test_slope_threshold_is_strict():
    # exactly an e-fold rise: s = 1/25 == 0.04 in floating point, which does NOT exceed 0.04.
    assert det.log_slope(step_gap([(150, 1.0)], base=1.0))[150] == 0.04
    assert math.isnan(det.slope_fire(step_gap([(150, 1.0)], base=1.0)))
    assert det.slope_fire(step_gap([(150, 1.0)], base=1.0), strict=False) == 150.0


def test_slope_t_min_rule():
    # a jump at 60 rises s over t = 60..84, all before 100: no fire.
    assert math.isnan(det.slope_fire(step_gap([(60, 1.5)])))
    # a jump at 90 keeps s = 0.06 over t = 90..114: the first allowed row, 100, fires.
    assert det.slope_fire(step_gap([(90, 1.5)])) == 100.0
    # a jump at 60 plus one at 137: only the second counts.
    assert det.slope_fire(step_gap([(60, 1.5), (137, 1.5)])) == 137.0
    assert det.slope_fire(step_gap([(60, 1.5)]), t_min=0) == 60.0


def test_slope_nan_end_point_blocks_that_row():
    g = step_gap([(137, 1.5)])
    g[137 - 25] = np.nan                 # s(137) needs gap(112): NaN -> s(137) NaN
    assert np.isnan(det.log_slope(g)[137])
    assert det.slope_fire(g) == 138.0    # s(138) = (x(138) - x(113)) / 25 = 0.06
    g2 = step_gap([(137, 1.5)])
    g2[137] = np.nan                     # the jump row itself missing
    assert det.slope_fire(g2) == 138.0


def test_slope_clips_at_1e6_before_the_log():
    # 1e-12 -> 2e-6: unclipped ln ratio 14.5 fires, clipped it is ln 2 = 0.69 < 1: no fire.
    g = np.where(T < 150, 1e-12, 2e-6).astype(float)
    assert math.isnan(det.slope_fire(g))
    assert det.slope_fire(g, floor=1e-300) == 150.0
    s = det.log_slope(g)
    assert s[150] == pytest.approx(np.log(2) / 25, rel=1e-12, abs=0)   # one log, one division
    # zero and negative ratios are clipped too (no -inf, no NaN from log of a negative)
    g0 = np.where(T < 150, 0.0, 1e-6 * np.exp(1.5))
    g0[10] = -5.0
    assert np.isfinite(det.log_slope(g0)[25:]).all()
    assert det.slope_fire(g0) == 150.0


def test_slope_min_valid_rows():
    g = np.full(E + 1, np.nan)
    g[120:149] = 1.0                     # 29 rows, jump inside them
    g[140:149] = np.exp(1.5)
    assert det.slope_fire(g) == 145.0    # s(145) = (x(145) - x(120)) / 25 = 0.06
    assert math.isnan(det.slope_fire(g, min_valid=30))
    g[149] = np.exp(1.5)                 # 30 rows now
    assert det.slope_fire(g, min_valid=30) == 145.0


def test_slope_lag_must_be_positive():
    with pytest.raises(ValueError):
        det.log_slope(np.ones(10), lag=0)


# --- late stage --------------------------------------------------------------------------------

def test_late_median_inclusive_bounds_and_nan():
    g = T.astype(float)                          # gap(t) = t
    assert det.late_median(g) == 300.0           # median of 200..400; an exclusive hi gives 299.5
    assert det.late_median(g, 200, 399) == 299.5
    g2 = g.copy()
    g2[300:401] = np.nan                         # nanmedian over 200..299
    assert det.late_median(g2) == 249.5
    assert math.isnan(det.late_median(g[:150]))  # run too short for the window


def test_late_separation_ratio():
    sep = det.late_separation([300.0, 168.0, 320.0, np.nan], [1.31, 1.25, 1.37])
    assert sep["grok"] == 300.0 and sep["control"] == 1.31
    assert sep["ratio"] == pytest.approx(300 / 1.31, rel=1e-15, abs=0)   # a single division
    assert math.isnan(det.late_separation([1.0], [np.nan])["ratio"])
    # a control median of 0 (or below) has no ratio: NaN, not a ZeroDivisionError or a negative ratio
    assert math.isnan(det.late_separation([2.0], [0.0])["ratio"])
    assert math.isnan(det.late_separation([2.0], [-1.0, -1.0])["ratio"])


# --- rho and sigma1/sigma2 --------------------------------------------------------------------

def test_rho_fire_inclusive_from_epoch_0():
    rho = np.linspace(0.058, 0.145, E + 1)
    rho[:17] = 0.06
    rho[17] = 0.075                              # exactly at the threshold counts
    assert det.rho_fire(rho) == 17.0
    assert det.rho_fire(np.full(10, 0.2)) == 0.0 # ReLU: fires at ep 0
    assert math.isnan(det.rho_fire(np.full(10, 0.06)))


def test_sustained_fire():
    r = np.zeros(50)
    r[2:4] = 30.0                                # only 2 rows above 25
    r[10:15] = 30.0                              # 5 consecutive rows: fires at 10
    r[12] = np.nan
    assert math.isnan(det.sustained_fire(r, 25.0, 5))    # the NaN breaks the run
    r[12] = 26.0
    assert det.sustained_fire(r, 25.0, 5) == 10.0
    assert det.sustained_fire(r, 25.0, 1) == 2.0
    assert math.isnan(det.sustained_fire(r, 25.0, 5, t_min=11))
    assert math.isnan(det.sustained_fire(np.ones(3), 0.5, 5))   # shorter than the run length


def test_sigma12_detectors_known_epochs():
    s1 = np.ones(E + 1)
    r12 = np.full(E + 1, 7.0)
    r12[2:10] = 30.0                             # >= 25 for 8 rows from row 2
    r12[160:] = 120.0
    r12[191:] = 210.0
    s2 = s1 / r12
    s1[:2] = s2[:2] = np.nan                     # rows 0-1 have no sigma
    d = det.sigma12_detectors(s1, s2)
    assert d["r12_ge25_x5"] == 2.0
    assert d["r12_ge100"] == 160.0
    assert d["r12_ge200"] == 191.0
    assert d["r12_slope"] == 160.0               # ln(120/7)/25 = 0.11 >= 0.04


def test_sigma12_slope_is_non_strict():
    s1 = np.ones(E + 1)
    r12 = np.where(T < 150, 1.0, np.e)           # slope exactly 0.04
    d = det.sigma12_detectors(s1, s1 / r12)
    assert d["r12_slope"] == 150.0
    assert math.isnan(det.slope_fire(r12))       # the sigma2/sigma3 detector is strict


def test_sigma12_ratio_floor_and_nan():
    r = det.sigma12_ratio([1.0, np.nan, 2.0], [0.0, 1.0, np.nan])
    assert r[0] == pytest.approx(1e30, rel=1e-15, abs=0)    # 1 / 1e-30 rounds once
    assert np.isnan(r[1]) and np.isnan(r[2])


# --- across runs -------------------------------------------------------------------------------

def test_across_runs_median_iqr_and_counts():
    s = det.across_runs([173, 173, 174, np.nan])
    # numpy's linear percentiles on [173, 173, 174]: 25% at position 0.5, 75% at 1.5
    assert (s["n"], s["n_fired"]) == (4, 3)
    assert (s["median"], s["q25"], s["q75"]) == (173.0, 173.0, 173.5)
    assert (s["min"], s["max"]) == (173.0, 174.0)
    none = det.across_runs([np.nan, np.nan])
    assert none["n_fired"] == 0 and math.isnan(none["median"])


def test_leads_per_run_and_of_medians_differ():
    t05 = [100.0, 120.0, 101.0]
    trho = [10.0, 30.0, 25.0]
    assert list(det.paired_diff(t05, trho)) == [90.0, 90.0, 76.0]
    assert np.median(det.paired_diff(t05, trho)) == 90.0                # per run, then the median
    assert det.median_diff(t05, trho) == 101.0 - 25.0 == 76.0            # the medians, then the difference


# --- reading logs --------------------------------------------------------------------------------

def test_rows_place_by_epoch_and_missing_reads_nan():
    rows = [{"epoch": 0, "test_acc": 0.1}, {"epoch": 2, "test_acc": 0.3, "W_sigma": [3.0, 1.0]},
            {"epoch": 3, "W_sigma": [3.0, 1.0, 0.5], "W_gap23": 2.0, "rho_tian": None}]
    c = columns_from_rows(rows)
    assert list(c["epoch"]) == [0, 1, 2, 3]
    assert np.isnan(c["test_acc"][[1, 3]]).all() and c["test_acc"][2] == 0.3
    assert c["W_sigma"].shape == (4, 3) and np.isnan(c["W_sigma"][2, 2])
    assert np.isnan(c["rho_tian"]).all()


def test_partial_trailing_line_is_dropped(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"config": {"epochs": 3, "seed": 0,
                                                          "windows": [20, 5]}}))
    lines = [json.dumps({"epoch": t, "test_acc": t / 10, "W_gap23_w5": 2.0 + t}) for t in range(3)]
    (d / "metrics.jsonl").write_text("\n".join(lines) + '\n{"epoch": 3, "test_a')
    r = read_run(d)
    assert r.partial and r.n_rows == 3 and r.n_epochs == 3
    assert list(r.col("test_acc")) == [0.0, 0.1, 0.2]
    assert window_key(r, "W_gap23", 5) == "W_gap23_w5"
    assert window_key(r, "W_gap23", 20) == "W_gap23"
    with pytest.raises(InputError):
        window_key(r, "W_gap23", 30)
    # a bad line that is not the last one is an error, not silently skipped
    (d / "metrics.jsonl").write_text(lines[0] + "\n{oops\n" + lines[1] + "\n")
    with pytest.raises(InputError):
        read_rows(d / "metrics.jsonl")
