"""Events that fired at the first row their detector can fire make every lead taken from them undefined
(never a number), and detectors that fired in runs that never grokked are counted (fire_without_grok).

Known answers by construction: the synthetic columns of test_summarize.known_columns with ρ_tian put at
0.1 (above the 0.075 threshold) from row 0, σ1/σ2 = 150 at its first logged row (row 2), and a control
whose σ2/σ3 jumps (the slope detector fires) while its test accuracy stays at 0.03.
"""
import json

import numpy as np
import pytest

from tianref.analysis import event_flags as ef
from tianref.analysis.records import read_run, read_tree
from tianref.analysis.summarize import summarize, to_json, to_markdown
from tianref.experiments.reproduce.rows import ClaimList, paper_source
from tianref.experiments.reproduce.runstats import run_stats

from test_summarize import BASE_CONFIG, FIRE, T05, known_columns, write_run


def _started_tree(root):
    """Grok runs: ρ >= threshold from row 0 and σ1/σ2 >= 100 from row 2; controls: a lock-in fire, no grok."""
    for s in range(3):
        cols = known_columns(s, True)
        cols["rho_tian"] = np.full(401, 0.1)
        cols["W_sigma"][:, 1] = cols["W_sigma"][:, 0] / 150.0               # r12 = 150 wherever logged
        cols["W_sigma"][:, 2] = cols["W_sigma"][:, 1] / cols["W_gap23"]
        write_run(root / f"grok{s}", dict(BASE_CONFIG, seed=s), cols)
        ctrl = known_columns(s, False)
        t = np.arange(401)
        ctrl["W_gap23"] = np.where(t < FIRE[s], 1.3, 1.3 * np.exp(1.5))
        ctrl["W_gap23"][:3] = np.nan
        write_run(root / f"ctrl{s}", dict(BASE_CONFIG, eta=0.0, seed=s), ctrl)
    return root


def _cond(summary, eta):
    (c,) = [c for c in summary["conditions"] if c["config"]["eta"] == eta]
    return c


def _row(md, label, table=0):
    return [ln for ln in md.splitlines() if ln.startswith(f"| {label} |")][table].split(" | ")


def test_a_lead_from_an_event_at_its_first_row_is_undefined(tmp_path):
    s = summarize(read_tree(_started_tree(tmp_path / "t")))
    g = _cond(s, 2e-4)
    for r, t05 in zip(g["runs"], T05):
        assert r["rho_fire"] == 0.0 and r["r12_ge100"] == 2.0 and r["t05"] == t05
        assert r["from_start"] == ["rho_fire", "r12_ge25_x5", "r12_ge100"]          # 150 < 200: no >=200 fire
        assert r["lead_rho"] is None and r["lag_r12_ge100_t05"] is None
        assert set(r["undefined"]) == {"lead_rho", "lag_r12_ge100_t05"}
        assert r["lag_fire_t099"] is not None                    # fire and t0.99 are real onsets
    st = g["stats"]
    assert (st["lead_rho"]["n"], st["lead_rho"]["n_fired"]) == (3, 0) and st["lead_rho_of_medians"] is None
    assert st["n_undefined"]["lead_rho"] == 3 and st["n_from_start"]["rho_fire"] == 3
    md = to_markdown(s)
    row = _row(md, "eta=0.0002")
    assert row[8] == "0 [0, 0] 3/3 ‡" and row[9] == "— ‡"      # the event marked, the lead not a number
    assert _row(md, "eta=0.0002", 1)[5] == "— ‡"
    assert "rho fire 3/3 (rho_tian >= its threshold from row 0)" in md


def test_fires_without_grokking_are_counted(tmp_path):
    s = summarize(read_tree(_started_tree(tmp_path / "t")))
    c, g = _cond(s, 0.0), _cond(s, 2e-4)
    assert [r["fire"] for r in c["runs"]] == [float(f) for f in FIRE]   # the step fires at the jump
    assert all(r["grokked"] is False and r["fire_without_grok"] == ["fire"] for r in c["runs"])
    assert c["stats"]["fire_without_grok"] == {"fire": 3, "rho_fire": 0, "r12_ge25_x5": 0, "r12_ge100": 0,
                                               "r12_ge200": 0, "r12_slope": 0}
    assert sum(g["stats"]["fire_without_grok"].values()) == 0
    md = to_markdown(s)
    assert _row(md, "eta=0")[10] == "3 / 0 |"
    data = json.loads(to_json(s))
    assert data["conditions"][1]["stats"]["fire_without_grok"]["fire"] == 3


def _stored(summary):
    """The summary as stored before the flags existed: no flag keys, the raw leads in every row."""
    old = json.loads(to_json(summary))
    for c in old["conditions"]:
        for k in ("fire_without_grok", "n_from_start", "n_undefined"):
            del c["stats"][k]
        for r in c["runs"]:
            for k in ("from_start", "undefined", "grokked", "fire_without_grok", "folder"):
                del r[k]
            if r["t05"] is not None:
                r["lead_rho"] = r["t05"] - r["rho_fire"]
        if c["config"]["eta"]:
            c["stats"]["lead_rho"] = {"n": 3, "n_fired": 3, "median": 100.0, "q25": 99.5, "q75": 104.0,
                                      "min": 99.0, "max": 108.0}
    return old


def test_a_stored_summary_renders_by_the_same_rule(tmp_path):
    s = summarize(read_tree(_started_tree(tmp_path / "t")))
    old = _stored(s)
    md_new, md_old = to_markdown(s), to_markdown(old)
    for label in ("eta=0.0002", "eta=0"):
        assert _row(md_old, label)[1:] == _row(md_new, label)[1:]    # the same cells, the same footnote
    doc = {"scale": {"name": "full"}, "views": [{"name": "v", "summary": old}]}
    L = ClaimList(doc)
    L.value("lead", _cond(old, 2e-4), "lead_rho", 84, source=paper_source("T2"))
    L.count("fire", _cond(old, 0.0), "fire", (0, 3), source=paper_source("T3"))
    assert L[0].ours.startswith("undefined in 3/3 (rho_tian >= its threshold from row 0)")
    assert L[1].ours == "3/3; 3 fired, never t0.5"
    L.count("rho fire", _cond(old, 2e-4), "rho_fire", (3, 3), source=paper_source("T2"))
    assert L[2].ours == "3/3; at its first row in 3/3 (rho_tian >= its threshold from row 0)"   # counted, marked
    assert L[2].outcome == "pass"


def test_run_stats_leaves_the_lead_undefined(tmp_path):
    cols = known_columns(0, True)
    cols["rho_tian"] = np.full(401, 0.1)
    rec = read_run(write_run(tmp_path / "r", dict(BASE_CONFIG), cols))
    st = run_stats(rec)
    assert st["rho_fire"] == 0.0 and st["rho_from_start"] and st["lead"] is None
    cols["rho_tian"][:17] = 0.06
    st = run_stats(read_run(write_run(tmp_path / "r2", dict(BASE_CONFIG), cols)))
    assert st["rho_fire"] == 17.0 and st["lead"] == T05[0] - 17


@pytest.mark.parametrize("first, event, expected", [
    ({"rho_fire": 0.0}, {"rho_fire": 0.0}, ["rho_fire"]),
    ({"rho_fire": 0.0}, {"rho_fire": 1.0}, []),
    ({"fire": 100.0}, {"fire": 100.0}, ["fire"]),             # slope already above at t_min
    ({"fire": 100.0}, {"fire": float("nan")}, []),           # never fired
])
def test_from_start(first, event, expected):
    assert ef.from_start(event, first) == expected


def test_first_rows_of_the_slope_detector():
    gap = np.full(60, 2.0)
    gap[:3] = np.nan                                          # sigma3 from 3 updates
    rows = ef.first_rows(gap=gap, t_min=10, lag=25)
    assert rows["fire"] == 28.0                               # s(t) needs gap(t - 25): first at 3 + 25
    assert ef.first_rows(gap=gap, t_min=100, lag=25)["fire"] == 100.0


def test_stored_first_rows_match_the_engine_log():
    # A summary stored before from_start existed takes its first rows from stored_first_rows; they must be
    # the rows at which a real engine log first lets each detector fire (first_rows on its columns).
    # t_min = 0 and lag = 3 so that the logging rows (sigma1/sigma2 from 2 updates, sigma2/sigma3 from 3)
    # are not hidden behind t_min = 100. Row indices: exact.
    from tianref import runs, train
    from tianref.analysis import detectors as det
    from tianref.analysis.records import columns_from_rows
    from tianref.backend import get_xp
    from tianref.config import TrainConfig, validate
    cfg = TrainConfig(M=11, K=32, n_train=48, epochs=12, windows=(4,), seed=1, eta=1e-3, lr=1e-2)
    sink = runs.MemorySink()
    train.run(validate(cfg), get_xp("numpy"), sink=sink)
    cols = columns_from_rows(sink.rows)
    r12 = det.sigma12_ratio(cols["W_sigma"][:, 0], cols["W_sigma"][:, 1])
    engine = ef.first_rows(cols["test_acc"], cols["rho_tian"], cols["W_gap23"], r12, t_min=0, lag=3)
    assert ef.stored_first_rows({"slope_t_min": 0, "slope_lag": 3}) == engine
    assert engine["r12_ge100"] == 2.0 and engine["fire"] == 6.0     # 2 and 3 + 3, by hand


def test_lead_values_count_a_lead_that_never_happened():
    # a condition that logged the lag: a run whose lag is None (its detector never fired) reads NaN, counted in
    # n; a run with the lag undefined (t099 from row 0) reads NaN too; a condition that never logged it: nothing
    stats = {"t05": {"n": 3}, "lag_fire_t099": {"n": 3}}
    runs_ = [{"t05": 150.0, "t099": 170.0, "fire": 180.0, "lag_fire_t099": 10.0, "from_start": []},
             {"t05": 150.0, "t099": 170.0, "fire": None, "lag_fire_t099": None, "from_start": []},
             {"t05": 0.0, "t099": 0.0, "fire": 180.0, "lag_fire_t099": 180.0, "from_start": ["t05", "t099"]}]
    vals = ef.lead_values({"stats": stats, "runs": runs_}, "lag_fire_t099", {})
    assert vals[0] == 10.0 and len(vals) == 3 and np.isnan(vals[1]) and np.isnan(vals[2])
    st = ef.lead_stats({"stats": stats, "runs": runs_}, "lag_fire_t099", {})
    assert (st["n"], st["n_fired"], st["median"]) == (3, 1, 10.0)
    assert ef.lead_values({"stats": {"t05": {"n": 1}}, "runs": runs_[1:2]}, "lag_fire_t099", {}) == []


def test_paper_reports_list_fires_without_grokking(tmp_path):
    from tianref.experiments.reproduce.paper_report import without_grok_block
    s = summarize(read_tree(_started_tree(tmp_path / "t")))
    doc = {"views": [{"name": "late 200-400", "summary": json.loads(to_json(s))}]}
    block = without_grok_block(doc)
    assert block[0] == "## Detector fires without grokking"
    assert "- late 200-400, eta=0: σ2/σ3 lock-in (slope fire) in 3/3 (epochs 173, 173, 174)." in block
    assert not any("eta=0.0002" in ln for ln in block)                 # the grok runs fired and grokked
    assert without_grok_block({"views": []}) == []
