"""tianref.analysis.wd_intervention on synthetic run records whose ratios are known by construction."""
import math
from pathlib import Path

import numpy as np
import pytest

from tianref.analysis import wd_intervention as wi
from tianref.analysis.records import RunRecord

N = 20                 # the length read after T in these tests
T1, T2 = 6, 25


def _record(name, config, E, W_fro, srank, acc):
    """A run of E epochs whose columns are the given functions of the epoch t."""
    t = np.arange(E + 1, dtype=float)
    cols = {"epoch": t, "W_fro": W_fro(t), "W_srank": srank(t), "test_acc": acc(t), "train_acc": np.ones_like(t),
            "V_fro": 2 + 0 * t, "V_srank": 3 + 0 * t, "W_gap23": 1 + t, "V_gap23": 1 + 0 * t, "WV_nuc": 5 + 0 * t}
    return RunRecord(path=Path(name), config=config, meta={}, columns=cols, n_rows=E + 1)


def _cfg(seed, sched=None, eta=2e-3):
    c = {"seed": seed, "M": 23, "K": 64, "act": "sqr", "eta": eta}
    if sched:
        c["eta_schedule"] = sched
    return c


def _after(T, rate_before, rate_after):
    """exp(rate_before t) up to T, then exp(rate_after (t - T)) times its value at T."""
    return lambda t: np.where(t <= T, np.exp(rate_before * t), np.exp(rate_before * T + rate_after * (t - T)))


grok = lambda t: np.where(t >= 10, 1.0, 0.02)           # noqa: E731  test accuracy: groks at epoch 10


def _records(seed1_m0_shrinks=False, seed0_plain_grows=False):
    recs = []
    for s in (0, 1):
        up = seed0_plain_grows and s == 0
        recs.append(_record(f"plain_s{s}", _cfg(s), 60, lambda t: np.exp(-0.01 * t),
                            (lambda t: 1 + 0.01 * t) if up else (lambda t: np.exp(-0.02 * t)), grok))
        for T, m, E in ((T1, 0.0, T1 + N), (T1, 0.5, T1 + N), (T1, 2.0, T1 + N), (T2, 0.0, 60)):
            sched = [[0, 2e-3], [T, float(f"{2e-3 * m:.6g}")]]
            shrink = s == 1 and seed1_m0_shrinks and m == 0.0 and T == T1
            rate = {0.0: 0.0 if shrink else 0.03, 0.5: -0.005, 2.0: -0.02}[m]
            recs.append(_record(f"x{m}at{T}_s{s}", _cfg(s, sched), E, _after(T, -0.01, rate - (shrink * 0.01)),
                                _after(T, -0.02, rate), grok))
    recs.append(_record("eta0_s0", _cfg(0, eta=0.0), 60, lambda t: 1 + t, lambda t: 1 + t, grok))   # ignored
    return recs


def test_classify():
    assert wi.classify(_cfg(0, [[0, 2e-4], [60, 1e-4]], eta=2e-4)) == (2e-4, 60, 0.5)
    assert wi.classify(_cfg(0, [[0, 2e-4], [250, 0.0]], eta=2e-4)) == (2e-4, 250, 0.0)
    assert wi.classify(_cfg(0, eta=2e-4)) == (2e-4, None, 1.0)
    assert wi.classify(_cfg(0, eta=0.0)) is None
    assert wi.classify(_cfg(0, [[0, 0.0], [60, 2e-4]])) is None


def test_values_ratios_and_rules():
    out = wi.intervention_table(_records(), N=N)
    assert out["N"] == N
    rows = {(x["T"], x["m"], x["seed"]): x for x in out["rows"]}
    assert len(rows) == 2 * (3 + 1 + 2)                       # per seed: 3 at T1, 1 at T2, the plain run at both
    x = rows[(T1, 0.0, 0)]
    assert x["at_T"]["W_fro"] == pytest.approx(math.exp(-0.01 * T1), rel=1e-15)
    assert x["at_end"]["W_fro"] == pytest.approx(math.exp(-0.01 * T1 + 0.03 * N), rel=1e-15)
    assert x["ratio"]["W_fro"] == pytest.approx(math.exp(0.03 * N), rel=1e-12)
    assert x["ratio"]["W_gap23"] == pytest.approx((1 + T1 + N) / (1 + T1), rel=1e-15)
    assert x["complete"] is True
    p = rows[(T2, 1.0, 0)]                                    # the plain run read at T2 for T2 + N
    assert p["ratio"]["W_srank"] == pytest.approx(math.exp(-0.02 * N), rel=1e-12)
    assert rows[(T2, 0.0, 1)]["at_end"]["W_fro"] == pytest.approx(math.exp(-0.01 * T2 + 0.03 * N), rel=1e-12)
    # the algorithm: test acc 0.02 at T1 (not applicable), 1.0 at T2 and at T2 + N (stays)
    assert rows[(T1, 0.0, 0)]["stays"] is None and rows[(T2, 0.0, 0)]["stays"] is True
    rev = {(v["T"], v["seed"]): v for v in out["reversal"]}
    assert set(rev) == {(T1, 0), (T1, 1), (T2, 0), (T2, 1)}
    assert all(v["holds"] is True for v in rev.values())
    assert rev[(T1, 0)]["m1"]["W_fro"] == pytest.approx(math.exp(-0.01 * N), rel=1e-12)
    summ = {s["T"]: s for s in out["summary"]}
    assert summ[T1]["reverses"] and summ[T1]["n"] == 2 and summ[T1]["n_holds"] == 2


def test_reversal_fails_when_a_seed_keeps_shrinking_and_the_algorithm_can_be_lost():
    out = wi.intervention_table(_records(seed1_m0_shrinks=True), N=N)
    rev = {(v["T"], v["seed"]): v for v in out["reversal"]}
    assert rev[(T1, 1)]["holds"] is False and rev[(T1, 0)]["holds"] is True
    summ = {s["T"]: s for s in out["summary"]}
    assert summ[T1]["reverses"] is False and summ[T1]["n_holds"] == 1 and summ[T2]["reverses"] is True
    # the m = 1 run must compress: a plain run whose stable rank grows gives no reversal for its seed
    rev = {(v["T"], v["seed"]): v for v in wi.intervention_table(_records(seed0_plain_grows=True), N=N)["reversal"]}
    assert rev[(T1, 0)]["holds"] is False and rev[(T2, 0)]["holds"] is False and rev[(T1, 1)]["holds"] is True
    # at T = 25 the grokked runs stay; a run whose accuracy drops below ACC_LEVEL does not
    recs = _records()
    recs.append(_record("drop_s2", _cfg(2, [[0, 2e-3], [T2, 0.0]]), 60, _after(T2, -0.01, 0.03),
                        _after(T2, -0.02, 0.03), lambda t: np.where(t > T2 + 5, 0.9, 1.0)))
    rows = {(x["T"], x["m"], x["seed"]): x for x in wi.intervention_table(recs, N=N)["rows"]}
    assert rows[(T2, 0.0, 2)]["stays"] is False
    rev = {(v["T"], v["seed"]): v for v in wi.intervention_table(recs, N=N)["reversal"]}
    assert rev[(T2, 2)]["holds"] is None                      # no m = 1 run of seed 2: no verdict


def test_a_run_shorter_than_T_plus_N_is_incomplete():
    recs = [_record("short", _cfg(0, [[0, 2e-3], [T1, 0.0]]), T1 + N - 1, lambda t: 1 + t, lambda t: 1 + t, grok),
            _record("plain", _cfg(0), 60, lambda t: 1 / (1 + t), lambda t: 1 / (1 + t), grok)]
    out = wi.intervention_table(recs, N=N)
    x = [r for r in out["rows"] if r["m"] == 0.0][0]
    assert x["complete"] is False and math.isnan(x["ratio"]["W_fro"]) and x["stays"] is None
    assert out["reversal"][0]["holds"] is None and out["summary"][0]["reverses"] is False


def test_reversal_needs_growth_and_pairs_runs_of_the_same_eta0():
    # m = 0 run flat after T: both ratios exactly 1 (exp of the same exponent), which is not "end above".
    sched = [[0, 2e-3], [T1, 0.0]]
    shrink = lambda t: np.exp(-0.01 * t)                 # noqa: E731
    flat = _record("m0_flat", _cfg(0, sched), T1 + N, _after(T1, -0.01, 0.0), _after(T1, -0.02, 0.0), grok)
    plain = _record("plain", _cfg(0), 60, shrink, shrink, grok)
    (v,) = wi.intervention_table([flat, plain], N)["reversal"]
    assert v["m0"] == {"W_fro": 1.0, "W_srank": 1.0} and v["holds"] is False
    # the m = 1 partner has the same eta_0: a plain run at another eta (listed last, growing) is not it
    grows = _record("m0_grows", _cfg(0, sched), T1 + N, _after(T1, -0.01, 0.03), _after(T1, -0.02, 0.03), grok)
    other = _record("plain_other_eta", _cfg(0, eta=1e-3), 60, lambda t: 1 + t, lambda t: 1 + t, grok)
    (v,) = wi.intervention_table([grows, plain, other], N)["reversal"]
    assert v["holds"] is True and v["m1"]["W_fro"] == pytest.approx(math.exp(-0.01 * N), rel=1e-12)  # exp rounding
