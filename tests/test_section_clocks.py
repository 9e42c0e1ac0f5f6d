"""The clocks section module: the ordering claim follows each run's clock_outcome (the seed's §F.4 reading),
never t_cls < t_rep alone; censoring is reported; runs without the outcome are "not measurable"."""
from pathlib import Path

import numpy as np

from section_driver import PUBLISHED, no_agrees_without_the_definition, verdicts
from tianref.analysis import clock_events
from tianref.analysis.records import RunRecord
from tianref.experiments import protocols
from tianref.experiments.reproduce.sections import clocks

ORDER = "[eta=0.0002] two clocks: the classifier clock stabilises first, then the structural statistic and the " \
        "test curve move together"


def _run(seed, cond="eta=0.0002", outcome=None, censored=None, srank=(0.8, 1.0)):
    r = {"tag": f"r{seed}", "seed": seed, "condition": cond, "t_cls": 196.0, "t_rep": 351.0, "clock_ratio": 1.8,
         "t05": 102.0, "t099": 139.0, "loss_min_ratio": 0.002,
         "W_srank": {"start": 90.0, "max": 98.0, "final": 80.0, "final_over_max": srank[0]},
         "WV_nuc": {"start": 22.0, "max": 250.0, "final": 250.0, "final_over_max": srank[1]}}
    if outcome is not None:
        r["clock_outcome"] = outcome
    if censored is not None:
        r["t_rep_censored"] = censored
    return r


def _doc(runs):
    return {"section": "clocks", "scale": {"name": "full"}, "command": "", "n_runs": len(runs), "seeds": [0],
            "epochs": [400], "setup": {}, "clocks": {"runs": runs, "conditions": list(dict.fromkeys(r["condition"]
                                                                                                   for r in runs))}}


def test_run_counts():
    ce = [s for s in protocols.section_runs("clocks") if s.options["act"] == "relu"]
    assert len(protocols.section_runs("clocks")) == 20 and all(s.options["loss"] == "ce" for s in ce)


def test_t_cls_before_t_rep_alone_is_not_agreement():
    """The stored full-scale runs: t0.99 139 < t_cls 196 < t_rep 351, and no clock_outcome: not measurable."""
    claims = clocks.SECTION.claims(_doc([_run(s) for s in range(5)]), PUBLISHED)
    c = [c for c in claims if c.claim == ORDER][0]
    assert c.verdict == "not measurable" and "predate clock_outcome" in c.note
    assert "censoring of t_rep not evaluated" in c.ours
    no_agrees_without_the_definition(claims)


def test_the_verdict_follows_clock_outcome():
    def v(outcomes):
        runs = [_run(s, outcome=o, censored=(s == 0)) for s, o in enumerate(outcomes)]
        claims = clocks.SECTION.claims(_doc(runs), PUBLISHED)
        no_agrees_without_the_definition(claims)
        return [c for c in claims if c.claim == ORDER][0]
    two = v(["two-clocks"] * 5)
    assert two.verdict == "in kind (their model: MLP with token embeddings, CE, AdamW, 15,000 epochs)"
    assert two.source.kind == "seed" and two.source.ref == "Deciphering Two Training Clocks, §F.4"
    assert "t_rep censored in 1/5" in two.ours
    # §F.4: "These cases are not contradictions": no two-clocks run is a failed reading, not the opposite
    assert v(["test-before-structure"] * 5).verdict == "differs"
    assert v(["structure-without-test"] * 5).verdict == "differs"
    assert v(["two-clocks"] * 3 + ["undetermined"] * 2).verdict == "differs"       # 3/5 < most-runs' 0.8


def test_the_control_is_information_and_weight_decay_is_judged_against_it():
    runs = [_run(s, srank=(0.8, 1.0)) for s in range(3)] + [_run(s, "eta=0", srank=(1.0, 1.0)) for s in range(3)]
    claims = clocks.SECTION.claims(_doc(runs), PUBLISHED)
    # one ordering row per condition, and the two late-simplification rows of eta = 2e-4 against eta = 0 (never the
    # control against itself)
    assert len(claims) == 4 and sum("eta=0:" in c.ours and "eta=0.0002" in c.ours for c in claims) == 2
    v = verdicts(claims)
    assert v[ORDER.replace("eta=0.0002", "eta=0")] == "info"
    srank = [k for k in v if "W stable rank falls further" in k][0]
    nuc = [k for k in v if "‖WV‖_*" in k][0]
    assert v[srank].startswith("in kind (") and v[nuc] == "differs"       # 0.8 <= 0.95 x 1.0; 1.0 is not
    report = clocks.SECTION.report(_doc(runs), PUBLISHED)
    assert report.count("| claim | source | ours | rule | verdict |") == 1


def test_measure_takes_every_event_the_analysis_returns(monkeypatch, tmp_path):
    E = 60
    t = np.arange(E + 1, dtype=float)
    cols = {"epoch": t, "train_loss": np.exp(-t / 5), "test_acc": np.clip(t / 40, 0, 1),
            "W_srank": 10 - 5 * np.minimum(t, 30) / 30, "WV_nuc": 1 + t / 10}
    rec = RunRecord(path=Path(tmp_path / "r"), config={"seed": 0, "eta": 2e-4, "act": "sqr"}, meta={},
                    columns=cols, n_rows=E + 1)
    plain = clocks.clocks_run(rec)
    ev = clock_events.clock_events(cols, loss="tian")
    same = lambda a, b: a == b or (a is not None and b is not None and np.isnan(a) and np.isnan(b))
    assert all(same(plain[k], ev[k]) for k in ("t_cls", "t_rep", "t_rep_settled", "t_margin"))
    assert plain["clock_outcome"] == ev["clock_outcome"] and plain["t_cls_abs"] is None   # MSE: no absolute clock
    assert plain["t05"] == 20 and plain["W_srank"]["final_over_max"] == 0.5

    def richer(columns, **kw):
        return dict(ev, clock_outcome="test-before-structure", t_rep_censored=np.bool_(True))
    monkeypatch.setattr(clock_events, "clock_events", richer)
    got = clocks.clocks_run(rec)
    assert got["clock_outcome"] == "test-before-structure" and got["t_rep_censored"] is True
