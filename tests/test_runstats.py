"""Per-run numbers of the sections (runstats): crossings, the collapsed and diverged flags, a diverged run read
from its sweep log, and the scaling cells beside the findings' T6."""
from tianref.analysis.records import RunRecord, columns_from_rows
from tianref.experiments.reproduce import runstats
from tianref.experiments.reproduce.sections import scaling
from tianref.experiments.reproduce.rows import load_published


def _record(rows, M=11, n_train=60, name="r", train_frac=None):
    from pathlib import Path
    cfg = {"M": M, "n_train": n_train, "seed": 0, "epochs": len(rows) - 1}
    return RunRecord(path=Path(name), config=cfg, meta={"config": cfg, "train_frac": train_frac},
                     columns=columns_from_rows(rows), n_rows=len(rows))


def test_run_flags_collapsed_diverged_and_crossings():
    M = 11
    base = [{"epoch": t, "train_acc": 0.5, "test_acc": min(1.0, 0.3 * t), "train_loss": 0.5,
             "rho_tian": 0.05 + 0.02 * t} for t in range(5)]
    s = runstats.run_stats(_record(base))
    assert (s["status"], s["t05"], s["t099"], s["rho_fire"], s["lead"], s["grokked"]) == ("ok", 2, 4, 2, 0, True)
    flat = [dict(r, train_acc=1 / M, train_loss=1 - 1 / M + 0.01, test_acc=0.0) for r in base]
    assert runstats.run_stats(_record(flat))["status"] == "collapsed"
    assert runstats.run_stats(_record(base), diverged=True)["status"] == "diverged"
    nan = base[:-1] + [dict(base[-1], train_loss=None)]
    assert runstats.run_stats(_record(nan))["status"] == "diverged"


def test_scaling_cells_sit_beside_T6_and_boundary():
    paper = scaling.paper_cells(load_published())
    stats = []
    for p, grok in ((0.3, False), (0.5, True)):
        for seed in range(5):
            stats.append({"M": 41, "p": p, "grokked": grok, "t099": 200.0 + seed if grok else None,
                          "rho_fire": 18.0, "lead": 100.0 if grok else None, "status": "ok"})
    r = {row["p"]: row for row in scaling.cell_table(stats)}
    assert r[0.5]["n_grok"] == 5 and r[0.5]["t099_med"] == 202.0 and paper[(41, 0.5)]["t099"] == 201
    assert r[0.3]["n_grok"] == 0 and paper[(41, 0.3)]["n_grok"] == 0
    b = runstats.boundary([{"M": 41, "x": row["p"], "frac": row["n_grok"] / row["n"]} for row in r.values()])
    assert b[41] == {"first_ge_half": 0.5, "last_below": 0.3}


def test_a_diverged_run_is_read_from_its_sweep_log(tmp_path):
    """A run whose loss became non-finite (train exit 1) is flagged from its log; other runs are not."""
    import sys
    from types import SimpleNamespace

    from tianref.analysis.records import read_run
    from tianref.experiments import sweep
    spec = SimpleNamespace(tag="boom", options={"M": 7, "K": 16, "optimizer": "sgd", "lr": 1e6, "seed": 0,
                                                "epochs": 30, "no_resume_state": True})
    (job,) = sweep.jobs_from_specs(tmp_path / "sec", [spec])
    res = sweep.run_jobs([job], 1, sys.executable)
    assert res["failed"] and res["failed"][0]["returncode"] == 1
    rec = read_run(job.out)
    assert runstats.diverged_runs([rec], tmp_path / "sec") == {"boom"}
    assert runstats.diverged_runs([rec], tmp_path / "elsewhere") == set()          # no log: not flagged
    stats = runstats.run_stats(rec, diverged=True)
    assert stats["status"] == "diverged" and stats["rows"] < 31
