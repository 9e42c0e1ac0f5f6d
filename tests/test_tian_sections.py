"""Tian's reproduce sections (scaling, critical, muon, ridge): the run grids, the per-run flags, the T6
side-by-side table, and one tiny end-to-end pass of every section."""
import json
import math

import numpy as np
import pytest

from tianref.analysis.records import RunRecord, columns_from_rows
from tianref.data import n_train_from_frac
from tianref.experiments import protocols, protocols_tian as pt
from tianref.experiments.reproduce import tian_analysis as ta
from tianref.experiments.reproduce.rows import load_published


def test_scaling_grid_is_the_papers_T6():
    specs = protocols.section_runs("scaling")
    assert len(specs) == 3 * 4 * 5
    for s in specs:
        o = s.options
        assert o["eta"] == 2e-4 and o["epochs"] == {41: 400, 71: 600, 127: 1000}[o["M"]]
        assert o["train_frac"] in (0.1, 0.2, 0.3, 0.5) and o["seed"] in range(5)
        assert "--train-frac" in s.argv()
    # n = round(p M^2) as Python rounds (banker's rounding): 0.5 * 41^2 = 840.5 -> 840
    assert n_train_from_frac(41, 0.5) == 840 and n_train_from_frac(127, 0.3) == 4839


def test_critical_muon_ridge_grids():
    crit = protocols.section_runs("critical")
    assert len(crit) == 3 * 5 * 3
    for s in crit:
        M = s.options["M"]
        c = s.options["train_frac"] / (math.log(M) / M)
        assert min(abs(c - x) for x in pt.CRITICAL_C) < 1e-4 and s.options["metrics"] == "core"
    mu = protocols.section_runs("muon")
    assert sorted({s.options["optimizer"] for s in mu}) == ["adam", "muon"] and len(mu) == 10
    ri = protocols.section_runs("ridge")
    assert sorted({s.options["top_layer"] for s in ri}) == ["ridge", "trained"] and len(ri) == 6
    assert all(s.options["checkpoint_epochs"][-1] == 400 for s in ri)


def _record(rows, M=11, n_train=60, name="r", train_frac=None):
    from pathlib import Path
    cfg = {"M": M, "n_train": n_train, "seed": 0, "epochs": len(rows) - 1}
    return RunRecord(path=Path(name), config=cfg, meta={"config": cfg, "train_frac": train_frac},
                     columns=columns_from_rows(rows), n_rows=len(rows))


def test_run_flags_collapsed_diverged_and_crossings():
    M = 11
    base = [{"epoch": t, "train_acc": 0.5, "test_acc": min(1.0, 0.3 * t), "train_loss": 0.5,
             "rho_tian": 0.05 + 0.02 * t} for t in range(5)]
    s = ta.run_stats(_record(base))
    assert (s["status"], s["t05"], s["t099"], s["rho_fire"], s["lead"], s["grokked"]) == ("ok", 2, 4, 2, 0, True)
    flat = [dict(r, train_acc=1 / M, train_loss=1 - 1 / M + 0.01, test_acc=0.0) for r in base]
    assert ta.run_stats(_record(flat))["status"] == "collapsed"
    assert ta.run_stats(_record(base), diverged=True)["status"] == "diverged"
    nan = base[:-1] + [dict(base[-1], train_loss=None)]
    assert ta.run_stats(_record(nan))["status"] == "diverged"


def test_scaling_table_sits_beside_T6_and_boundary():
    T6 = load_published()["tables"]["T6"]
    stats = []
    for p, grok in ((0.3, False), (0.5, True)):
        for seed in range(5):
            stats.append({"M": 41, "p": p, "grokked": grok, "t099": 200.0 + seed if grok else None,
                          "rho_fire": 18.0, "lead": 100.0 if grok else None, "status": "ok"})
    table = ta.scaling_table(stats, T6)
    r = {row["p"]: row for row in table}
    assert r[0.5]["n_grok"] == 5 and r[0.5]["t099_med"] == 202.0 and r[0.5]["paper"]["t099"] == 201
    assert r[0.3]["n_grok"] == 0 and r[0.3]["paper"]["n_grok"] == 0
    b = ta.boundary([{"M": 41, "x": row["p"], "frac": row["n_grok"] / row["n"]} for row in table])
    assert b[41] == {"first_ge_half": 0.5, "last_below": 0.3}


@pytest.mark.parametrize("section", pt.TIAN_SECTIONS)
def test_section_end_to_end_at_a_tiny_scale(tmp_path, section):
    from tianref.experiments.reproduce import reproduce_section
    scale = protocols.Scale("tiny", M=7, K=16, seeds=1, epoch_factor=0.01)
    out = reproduce_section(section, tmp_path / "runs", scale, n_jobs=2, store_to=tmp_path / "store",
                            command="test")
    d = tmp_path / "runs" / section
    doc = json.loads((d / "summary.json").read_text())
    assert doc["n_runs"] == out["runs"] and doc["analysis"]["claims"]
    assert (d / "figures" / f"{section}.png").is_file()
    report = (d / "report.md").read_text()
    assert "| claim | paper / theory | ours | consistent? |" in report
    stored = tmp_path / "store" / "tiny" / section
    prov = json.loads((stored / "provenance.json").read_text())
    assert prov["section"] == section and prov["command"] == "test"
    if section == "ridge":       # the ridge runs carry the identity: G_F equals its closed form
        d_r = doc["analysis"]["gf_rel_dist_med"]["ridge"]
        assert d_r and max(d_r.values()) < 1e-4
    # a second call finds every run finished
    again = reproduce_section(section, tmp_path / "runs", scale, n_jobs=2, command="test")
    assert again["ran"] == 0 and again["skipped"] == out["runs"]
    assert np.isfinite(out["wall_s"])


def test_a_diverged_run_is_kept_as_diverged_and_not_rerun(tmp_path):
    """A run whose loss became non-finite (train exit 1) is flagged, not fatal, and not trained again."""
    import sys
    from types import SimpleNamespace

    from tianref.analysis.records import read_run
    from tianref.errors import RunFailure
    from tianref.experiments import sweep
    from tianref.experiments.reproduce import tian_report as tr
    spec = SimpleNamespace(tag="boom", options={"M": 7, "K": 16, "optimizer": "sgd", "lr": 1e6, "seed": 0,
                                                "epochs": 30, "no_resume_state": True})
    (job,) = sweep.jobs_from_specs(tmp_path / "sec", [spec])
    res = sweep.run_jobs([job], 1, sys.executable)
    assert res["failed"] and res["failed"][0]["returncode"] == 1
    assert tr._diverged(res["failed"]) == {"boom"}
    assert tr._diverged_before([job]) == {"boom"}
    stats = ta.run_stats(read_run(job.out), diverged=True)
    assert stats["status"] == "diverged" and stats["rows"] < 31
    with pytest.raises(RunFailure):                                   # any other failure stops the section
        tr._diverged([{"name": "x", "returncode": 2, "log": str(tmp_path / "missing.log")}])
