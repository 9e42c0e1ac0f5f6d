"""The per-run diagnostics (slope peak, fires at three thresholds, collapse, float32 precision, loss
rise) on synthetic logs whose answers are known by construction, and their keys in summarize."""
import json
import math

import numpy as np
import pytest

from tianref.analysis import detectors as det
from tianref.analysis import diagnostics as dg

E = 400


def test_slope_peak_on_a_log_ramp():
    # ln gap rises at 0.05/epoch over [150, 175], then at 0.02: s(t) peaks at t = 175 with 0.05
    t = np.arange(E + 1, dtype=float)
    gap = 1.2 * np.exp(0.05 * np.clip(t - 150, 0, 25) + 0.02 * np.clip(t - 175, 0, 55))
    peak, at = dg.slope_peak(gap)
    assert math.isclose(peak, 0.05, rel_tol=1e-12)
    assert at == 175.0
    assert math.isclose(dg.slope_peak(gap, t_min=200)[0], 0.02, rel_tol=1e-9)
    # before t_min nothing counts: a huge early jump is ignored
    gap2 = gap.copy()
    gap2[30:60] = 1e6
    assert dg.slope_peak(gap2)[1] >= det.SLOPE_T_MIN
    assert math.isnan(dg.slope_peak(np.full(E + 1, np.nan))[0])
    # t_min itself counts: one step of e^1 at row 100 gives s = 1/25 on rows 100..124, first argmax 100
    # (s is one log difference over 25: 1e-12 relative covers its rounding)
    gap3 = np.where(t < 100, 1.5, 1.5 * math.e)
    assert dg.slope_peak(gap3)[1] == 100.0 and math.isclose(dg.slope_peak(gap3)[0], 0.04, rel_tol=1e-12)


def test_fire_at_three_thresholds_around_a_marginal_peak():
    # a ramp at 0.042/epoch: fires at 0.035 and 0.04, not at 0.045;
    # a second, steeper ramp later fires all three
    t = np.arange(E + 1, dtype=float)
    lg = 0.042 * np.clip(t - 150, 0, 80) + 0.06 * np.clip(t - 300, 0, 60)
    gap = np.exp(lg)
    f = dg.fires_at(gap)
    assert set(f) == {"fire_0.035", "fire_0.04", "fire_0.045"}
    # s(t) = 0.042 * (t - 150) / 25 climbs from t = 151: > 0.035 from t = 171, > 0.04 from t = 174
    assert f["fire_0.035"] == 171.0 and f["fire_0.04"] == 174.0
    assert f["fire_0.04"] == det.slope_fire(gap)               # the same detector at 0.04
    assert f["fire_0.045"] > 300                               # only the second ramp passes 0.045
    assert dg.slope_peak(gap)[0] == pytest.approx(0.06)
    # the first rise's own peak: s = 0.042 on t in [175, 230], first reached at t = 175
    peak, at = dg.episode_peak(gap)
    assert peak == pytest.approx(0.042) and 175 <= at <= 230
    assert dg.episode_peak(gap, level=0.05)[0] == pytest.approx(0.06)   # only the second clears 0.05
    assert np.isnan(dg.episode_peak(np.ones(E + 1))[0])


def test_collapse_epoch_known_answer():
    gap = np.full(E + 1, 1.3)
    gap[174:] = 300.0                 # lock-in at the fire
    gap[250] = 500.0                  # the running max since the fire becomes 500
    gap[251:] = 400.0
    gap[312:] = 45.0                  # 45 < 50 = 500 / 10: collapse at 312
    gap[300] = np.nan                 # NaN neither resets the max nor counts
    assert dg.collapse_epoch(gap, 174.0) == 312.0
    gap[312:] = 55.0                  # above a tenth of the max: no collapse
    assert math.isnan(dg.collapse_epoch(gap, 174.0))
    assert math.isnan(dg.collapse_epoch(gap, np.nan))          # no fire, no collapse
    # the drop is measured from the fire on: an earlier, larger value does not count
    gap2 = np.full(E + 1, 2.0)
    gap2[50] = 1e4
    gap2[200:] = 100.0
    gap2[220:] = 5.0
    assert dg.collapse_epoch(gap2, 200.0) == 220.0
    assert dg.collapse_epoch(gap2, 150.0) == 220.0             # max since 150 is 100


def test_late_precollapse():
    gap = np.full(E + 1, 10.0)
    gap[200:320] = 300.0
    gap[320:] = 20.0
    assert dg.late_precollapse(gap, 200, 400, 320.0) == 300.0
    assert dg.late_precollapse(gap, 200, 400, np.nan) == det.late_median(gap, 200, 400)
    assert math.isnan(dg.late_precollapse(gap, 200, 400, 150.0))
    # the collapse row itself is left out: gap(t) = t, collapse at 250 -> median of 200..249 = 224.5
    # (with row 250 it would be 225); an exact half-integer, so ==
    assert dg.late_precollapse(np.arange(E + 1, dtype=float), 200, 400, 250.0) == 224.5


def test_precision_limited_threshold():
    q = np.full(E + 1, 50 * dg.F32_EPS)
    p = dg.precision(q, 200, 400)
    assert p["precision_limited"] is True and p["q_late_eps"] == pytest.approx(50)
    q[200:] = 150 * dg.F32_EPS
    assert dg.precision(q, 200, 400)["precision_limited"] is False
    assert dg.precision(q, 200, 400, factor=200)["precision_limited"] is True
    assert dg.precision(np.full(E + 1, np.nan), 200, 400)["precision_limited"] is None
    # at exactly factor epsilons sigma3 is no longer below the float32 noise level: not limited
    q[:] = dg.PRECISION_FACTOR * dg.F32_EPS
    assert dg.precision(q, 200, 400)["precision_limited"] is False
    s1, s3 = np.array([2.0, 0.0, 4.0, np.nan]), np.array([1.0, 1.0, 1.0, 1.0])
    r = dg.sigma_ratio(s3, s1)
    assert r[0] == 0.5 and math.isnan(r[1]) and r[2] == 0.25 and math.isnan(r[3])


def test_loss_rise():
    t = np.arange(E + 1, dtype=float)
    L = np.where(t < 194, 1.78e-4 * np.exp(-(t - 194) / 50), 2.0e-4 * np.exp(-(t - 202) / 50))  # falling
    L[194:202] = np.linspace(1.78e-4, 2.67e-4, 8)              # a bump 194 -> 201
    r = dg.loss_rise(L, 202.0)
    assert (r["t1"], r["t2"]) == (194.0, 201.0)
    assert r["ratio"] == pytest.approx(2.67 / 1.78)
    r = dg.loss_rise(np.geomspace(1, 1e-3, E + 1), 300.0)      # monotone: no rise
    assert r["ratio"] == 1.0 and r["t1"] == r["t2"]
    assert dg.loss_rise(L, np.nan) is None
    assert dg.p_no_event(1, 15) == pytest.approx((14 / 15) ** 15)
    assert dg.p_no_event(1, 4, 2) == 0.5625                    # (3/4)^2, exact in binary
    # the window is [t - lag, t], lag + 1 rows: a minimum exactly at t - 25 = 175 still counts.
    # 0.5 -> 2.0 is a ratio of 4 (exact in binary); without row 175 it would be 2.
    flat = np.ones(E + 1)
    flat[175], flat[200] = 0.5, 2.0
    r = dg.loss_rise(flat, 200.0)
    assert (r["t1"], r["t2"], r["ratio"]) == (175.0, 200.0, 4.0)


# --- in summarize ---------------------------------------------------------------------------

def _write_run(d, seed, gap, eta=2e-4, s1=1.0, s3=None, loss=None):
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"config": {"M": 11, "K": 8, "eta": eta, "seed": seed,
                                                          "epochs": E, "windows": [20]}}))
    s3 = np.full(E + 1, 1e-3) if s3 is None else s3
    with open(d / "metrics.jsonl", "w") as f:
        for t in range(E + 1):
            row = {"epoch": t, "test_acc": min(1.0, t / 200), "W_gap23": gap[t],
                   "W_sigma": [s1, s1 * 1e-2, s3[t]], "train_loss": 1.0 if loss is None else loss[t]}
            f.write(json.dumps(row) + "\n")


def test_summarize_carries_the_new_keys(tmp_path):
    from tianref.analysis.records import read_run
    from tianref.analysis.summarize import Options, summarize, to_markdown
    t = np.arange(E + 1, dtype=float)
    gap = 1.3 * np.exp(0.06 * np.clip(t - 150, 0, 25) + 0.02 * np.clip(t - 175, 0, 55))  # s peaks: 0.06 at 175
    gap[330:] = gap[329] / 20                                                 # collapse at 330
    _write_run(tmp_path / "a", 0, gap, s3=np.full(E + 1, 10 * dg.F32_EPS))   # precision-limited
    _write_run(tmp_path / "b", 1, gap)
    recs = [read_run(tmp_path / n) for n in "ab"]
    s = summarize(recs, Options())
    runs = s["conditions"][0]["runs"]
    for r in runs:
        assert r["slope_peak"] == pytest.approx(0.06) and r["slope_peak_epoch"] == 175.0
        assert r["collapse_epoch"] == 330.0
        assert r["fire_0.04"] == r["fire"]
        assert r["late_precollapse"] == pytest.approx(det.late_median(gap, 200, 329))
    assert [r["precision_limited"] for r in runs] == [True, False]
    assert runs[0]["q_late_eps"] == pytest.approx(10)
    st = s["conditions"][0]["stats"]
    assert st["collapse_epoch"]["median"] == 330.0 and st["n_precision_limited"] == 1
    md = to_markdown(s)
    assert "slope peak" in md and "collapse" in md and "†" in md
    # the footnote says what the mark means for the Gram these runs used: the default float64 one resolves
    # sigma3 (it said "set by float32 rounding" of every run); a float32 Gram (--gram-dtype) does not
    assert "with this float64 Gram their late s2/s3 is resolved" in md and "set by float32 rounding" not in md
    for n in "ab":
        cfg = json.loads((tmp_path / n / "config.json").read_text())
        cfg["config"]["gram_dtype"] = "float32"
        (tmp_path / n / "config.json").write_text(json.dumps(cfg))
    md = to_markdown(summarize([read_run(tmp_path / n) for n in "ab"], Options()))
    assert "(a float32 Gram: --gram-dtype, or summarize --gram) it is set by float32 rounding." in md
    assert "is resolved" not in md
    for gram_dtype in ("float32-seq", "float64"):             # float32-seq is float32 too; a float64 run's
        for n in "ab":                                        # table read with --gram float32 shows that Gram
            cfg = json.loads((tmp_path / n / "config.json").read_text())
            cfg["config"]["gram_dtype"] = gram_dtype
            (tmp_path / n / "config.json").write_text(json.dumps(cfg))
        s = summarize([read_run(tmp_path / n) for n in "ab"], Options())
        if gram_dtype == "float64":
            s["options"]["gram"] = "float32"
        md = to_markdown(s)
        assert "it is set by float32 rounding." in md and "is resolved" not in md, gram_dtype


def test_summarize_cli_gram_and_factor_errors(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    _write_run(tmp_path / "runs" / "a", 0, np.full(E + 1, 1.3))
    cli = str(Path(__file__).resolve().parents[1] / "cli.py")
    for extra, msg in ((["--gram", "float32"], "--log-grams float32"), (["--precision-factor", "0"], "> 0")):
        res = subprocess.run([sys.executable, cli, "summarize", str(tmp_path / "runs"), *extra],
                             capture_output=True, text=True, check=False, timeout=60)
        assert res.returncode == 2 and msg in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run([sys.executable, cli, "summarize", str(tmp_path / "runs"),
                          "--json", str(tmp_path / "s.json")],
                         capture_output=True, text=True, check=False, timeout=60)
    assert res.returncode == 0, res.stderr
    run = json.loads((tmp_path / "s.json").read_text())["conditions"][0]["runs"][0]
    assert {"slope_peak", "slope_peak_epoch", "collapse_epoch", "precision_limited"} <= set(run)
    assert run["collapse_epoch"] is None                                 # no fire, no collapse
