"""Per-run numbers of the sections (runstats): crossings, the collapsed and diverged flags, a diverged run read
from its sweep log, and the scaling cells beside the findings' T6."""
import pytest

from tianref.analysis.records import RunRecord, columns_from_rows
from tianref.errors import RunFailure
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
    """A run whose loss became non-finite (train exit 1) is flagged from its config.json's record, and a run
    written before that record from its log; other runs are not."""
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
    assert runstats.diverged_runs([rec], tmp_path / "elsewhere") == {"boom"}       # no log: its record
    rec.meta.pop("diverged")                                                        # a run from before the record
    assert runstats.diverged_runs([rec], tmp_path / "sec") == {"boom"}
    assert runstats.diverged_runs([rec], tmp_path / "elsewhere") == set()          # neither: not flagged
    stats = runstats.run_stats(rec, diverged=True)
    assert stats["status"] == "diverged" and stats["rows"] < 31


def _rows(n=5, **final):
    """n rows rising to test accuracy 0.9 (crosses 0.5, never 0.99), the last row overridden by ``final``."""
    rows = [{"epoch": t, "train_acc": 0.5, "test_acc": 0.9 * t / (n - 1), "train_loss": 0.5, "rho_tian": 0.05 + 0.02 * t}
            for t in range(n)]
    rows[-1].update(final)
    return rows


def test_the_thresholds_include_their_boundary_values():
    """collapsed: final train accuracy <= 2/M and train loss >= 0.98 (1 - 1/M), both at equality; fit: final
    train accuracy >= 0.99 at equality; grokked is t099 existing, not t05 (the runs here reach 0.9 only)."""
    M = 11
    edge = runstats.run_stats(_record(_rows(train_acc=2.0 / M, train_loss=0.98 * (1 - 1 / M)), M=M))
    assert edge["status"] == "collapsed"
    assert runstats.run_stats(_record(_rows(train_acc=2.0 / M, train_loss=0.8), M=M))["status"] == "ok"
    s = runstats.run_stats(_record(_rows(train_acc=0.99), M=M))
    assert s["fit"] is True and s["t05"] is not None and s["t099"] is None and s["grokked"] is False
    assert runstats.run_stats(_record(_rows(train_acc=0.98), M=M))["fit"] is False


def test_the_nominal_p_is_the_logged_train_fraction_when_there_is_one():
    """p = the run's train_frac (meta) when logged, else n_train / M²."""
    assert runstats.run_stats(_record(_rows(), M=11, n_train=60, train_frac=0.5))["p"] == 0.5
    assert runstats.run_stats(_record(_rows(), M=11, n_train=60))["p"] == 60 / 121


def test_outcome_labels_and_group_medians():
    """outcome by hand: all grokked (whatever fit) 'generalises (n/n)'; some; none but all fit; neither, with
    every run length named. group_summary's t05/t099 medians are over their own lists."""
    def run(g, fit, E=100, t05=None, t099=None):
        return {"grokked": g, "fit": fit, "epochs": E, "t05": t05, "t099": t099,
                "final": {k: None for k in runstats.FINAL_KEYS}, "k": "a"}
    assert runstats.outcome([run(True, False), run(True, True)]) == "generalises (2/2)"
    assert runstats.outcome([run(True, True), run(False, True)]) == "generalises in 1/2 runs"
    assert runstats.outcome([run(False, True, 200), run(False, True, 400)]) == \
        "memorises, does not generalise in 200/400 epochs (2/2 reach train accuracy ≥ 0.99)"
    assert runstats.outcome([run(False, True), run(False, False)]) == \
        "fits neither set in 100 epochs (1/2 reach train accuracy ≥ 0.99)"
    g = runstats.group_summary([run(True, True, t05=10.0, t099=40.0), run(True, True, t05=20.0, t099=60.0),
                                run(False, True, t05=30.0)], "k")["a"]
    assert (g["n"], g["n_grok"], g["t05_med"], g["t099_med"]) == (3, 2, 20.0, 50.0)


def test_boundary_counts_exactly_half_as_grokking():
    """first_ge_half: the smallest x with frac >= 0.5 (2 of 4 seeds here); last_below: the largest x below it."""
    cells = [{"M": 11, "x": 0.2, "frac": 0.0}, {"M": 11, "x": 0.3, "frac": 0.25}, {"M": 11, "x": 0.4, "frac": 0.5},
             {"M": 11, "x": 0.5, "frac": 1.0}]
    assert runstats.boundary(cells) == {11: {"first_ge_half": 0.4, "last_below": 0.3}}
    none = [dict(c, frac=0.0) for c in cells]                         # never half: above the grid's 0.5
    assert runstats.boundary(none) == {11: {"first_ge_half": None, "last_below": 0.5}}
    every = [dict(c, frac=1.0) for c in cells]                        # from the first x on: at or below 0.2
    assert runstats.boundary(every) == {11: {"first_ge_half": 0.2, "last_below": None}}


def test_lead_defined_needs_a_rho_fire_after_row_0_and_column_at_stays_inside_the_run():
    """A stored row whose lead was kept but whose rho fire was at row 0 (rho_from_start) has no defined lead;
    column_at is None for an epoch outside 0..E (a negative one included), not a value from the other end."""
    assert runstats.lead_defined({"lead": 82.0, "rho_fire": 17.0, "rho_from_start": False})
    assert not runstats.lead_defined({"lead": 99.0, "rho_fire": 0.0, "rho_from_start": True})
    assert not runstats.lead_defined({"lead": 99.0, "rho_fire": 0.0})            # stored before the flag: row 0
    rec = _record(_rows())
    assert runstats.column_at(rec, "train_loss", 0) == 0.5 and runstats.column_at(rec, "train_loss", 5) is None
    assert runstats.column_at(rec, "train_loss", -1) is None


def test_a_run_one_row_short_with_a_non_finite_log_is_diverged(tmp_path):
    """diverged_runs reads the log of every run short of its epochs + 1 rows (one short included), and of
    none that logged them all."""
    import json
    from tianref.analysis.records import read_run
    from tianref.experiments.sweep import LOG_DIR
    recs = []
    for name, n in (("short", 4), ("full", 5)):
        d = tmp_path / "sec" / name
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"config": {"M": 11, "n_train": 60, "seed": 0, "epochs": 4}}))
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows()[:n]))
        (tmp_path / "sec" / LOG_DIR).mkdir(exist_ok=True)
        (tmp_path / "sec" / LOG_DIR / f"{name}.log").write_text("error: non-finite loss at epoch 4\n")
        recs.append(read_run(d))
    assert runstats.diverged_runs(recs, tmp_path / "sec") == {"short"}


def test_a_run_whose_config_records_a_failed_ridge_solve_is_diverged(tmp_path):
    """A ridge run ended by a failed solve says so in its log without the word 'non-finite'; its config.json's
    divergence record is what makes it diverged for the sections that keep such runs (diverged_runs after
    the fact, diverged_in when the sweep reports it failed), not a fatal failure of the section."""
    import json
    from tianref.analysis.records import read_run
    from tianref.experiments import sweep
    from tianref.experiments.reproduce import jobs as rjobs
    from tianref.experiments.sweep import LOG_DIR
    d = tmp_path / "sec" / "ridge"
    d.mkdir(parents=True)
    meta = {"config": {"M": 11, "n_train": 60, "seed": 0, "epochs": 4}}
    (d / "config.json").write_text(json.dumps(dict(meta, diverged={"epoch": 3, "non_finite": "ridge solve"})))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows()[:3]))
    (tmp_path / "sec" / LOG_DIR).mkdir()
    log = tmp_path / "sec" / LOG_DIR / "ridge.log"
    log.write_text("Error: in the step to epoch 3, the ridge solve failed (Matrix is not positive definite)\n")
    assert runstats.diverged_runs([read_run(d)], tmp_path / "sec") == {"ridge"}
    failed = [{"name": "ridge", "returncode": 1, "log": str(log)}]
    job = sweep.Job(out=d, seed=0, epochs=4, options=())
    assert rjobs.diverged_in(failed, [job]) == {"ridge"}
    (d / "config.json").write_text(json.dumps(meta))                   # no record: a failure like any other
    with pytest.raises(RunFailure, match="run ridge failed"):
        rjobs.diverged_in(failed, [job])
    stopped = [dict(failed[0], returncode=130, stopped=True)]          # signalled itself: resumable, said so
    with pytest.raises(RunFailure, match=r"run ridge was stopped by a signal sent to it \(its resume state is "
                                         r"saved: run the same command again to continue it\) \(exit 130\)"):
        rjobs.diverged_in(stopped, [job])
