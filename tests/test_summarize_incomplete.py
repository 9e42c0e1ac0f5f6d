"""summarize names every incomplete run and why: a diverged run (its last row has no finite loss, as train
leaves it) apart from an unfinished one (stopped, running or crashed), in the per-run rows, the Markdown
and on stderr; ``--complete-only`` lists the runs it leaves out under "left_out" instead of dropping them
silently."""
import json

import numpy as np
from click.testing import CliRunner

from tianref.analysis.records import read_run, run_status
from tianref.cli.analysis import summarize_cmd
from tests.test_summarize import BASE_CONFIG, write_run

E = 60


def _cols(n, diverge=False):
    """n rows of a run; with diverge, the last row lacks both losses (train drops a non-finite value from
    the row it logs, then stops)."""
    loss = np.linspace(1.0, 0.5, n)
    if diverge:
        loss[-1] = np.nan                       # write_run omits NaN entries, as the engine's rows do
    return {"test_acc": np.zeros(n), "train_loss": loss, "test_loss": loss.copy(), "W_gap23": 1.0 + np.arange(n)}


def _tree(root):
    write_run(root / "done", dict(BASE_CONFIG, seed=0, epochs=E), _cols(E + 1))
    write_run(root / "blown", dict(BASE_CONFIG, seed=1, epochs=E), _cols(3, diverge=True))
    write_run(root / "stopped", dict(BASE_CONFIG, seed=2, epochs=E), _cols(26))
    return root


def test_run_status_tells_diverged_from_unfinished(tmp_path):
    root = _tree(tmp_path / "t")
    st = {d: run_status(read_run(root / d)) for d in ("done", "blown", "stopped")}
    assert st["done"]["status"] == "complete"
    assert st["blown"] == {"status": "diverged", "last_epoch": 2, "epochs": E,
                           "why": "diverged at epoch 2 (non-finite loss)"}
    assert st["stopped"] == {"status": "unfinished", "last_epoch": 25, "epochs": E,
                             "why": f"ends at epoch 25 of {E}"}


def test_complete_only_lists_what_it_left_out_and_why(tmp_path):
    root = _tree(tmp_path / "t")
    out = tmp_path / "s.json"
    res = CliRunner().invoke(summarize_cmd, [str(root), "--complete-only", "--late-lo", "0", "--late-hi", "60",
                                             "--json", str(out)])
    assert res.exit_code == 0, res.output
    s = json.loads(out.read_text())
    assert s["n_runs"] == 1
    assert [(d["folder"], d["status"], d["last_epoch"]) for d in s["left_out"]] == [
        ("blown", "diverged", 2), ("stopped", "unfinished", 25)]
    line = [ln for ln in res.stderr.splitlines() if "left out" in ln]
    assert line == ["summarize: left out 2 incomplete run(s) (--complete-only): blown: diverged at epoch 2 "
                    "(non-finite loss); stopped: ends at epoch 25 of 60"]
    assert "- blown: diverged at epoch 2 (non-finite loss)" in res.stdout
    assert "- stopped: ends at epoch 25 of 60" in res.stdout


def test_incomplete_runs_counted_by_default_are_named_with_why(tmp_path):
    root = _tree(tmp_path / "t")
    out = tmp_path / "s.json"
    res = CliRunner().invoke(summarize_cmd, [str(root), "--late-lo", "0", "--late-hi", "60", "--json", str(out)])
    assert res.exit_code == 0, res.output
    s = json.loads(out.read_text())
    assert s["n_runs"] == 3 and s["left_out"] == []
    runs = {r["folder"]: r for r in s["conditions"][0]["runs"]}
    assert {k: (r["status"], r["complete"]) for k, r in runs.items()} == {
        "done": ("complete", True), "blown": ("diverged", False), "stopped": ("unfinished", False)}
    assert ("summarize: warning: 2 incomplete run(s) counted as they are (--complete-only leaves them out): "
            "blown: diverged at epoch 2 (non-finite loss); stopped: ends at epoch 25 of 60") in res.stderr
    assert "(blown: diverged at epoch 2 (non-finite loss), stopped: ends at epoch 25 of 60)" in res.stdout


def test_complete_only_with_nothing_complete_names_the_runs(tmp_path):
    root = tmp_path / "t"
    write_run(root / "blown", dict(BASE_CONFIG, epochs=E), _cols(3, diverge=True))
    res = CliRunner().invoke(summarize_cmd, [str(root), "--complete-only"])
    assert res.exit_code == 2
    assert res.stderr == ("Error: no runs to summarise (none is complete: blown: diverged at epoch 2 "
                          "(non-finite loss))\n")


def test_a_run_whose_last_test_loss_alone_is_not_finite_diverged(tmp_path):
    """train stops when either loss is non-finite (tianref/train.py), so a last row with a finite train loss
    and no test loss is a diverged run, not an unfinished one."""
    cols = _cols(3)
    cols["test_loss"][-1] = np.nan                         # write_run omits it from row 2
    write_run(tmp_path / "half", dict(BASE_CONFIG, epochs=E), cols)
    rec = read_run(tmp_path / "half")
    assert np.isfinite(rec.columns["train_loss"][-1])
    assert run_status(rec) == {"status": "diverged", "last_epoch": 2, "epochs": E,
                               "why": "diverged at epoch 2 (non-finite loss)"}


def _with_record(d, record):
    meta = json.loads((d / "config.json").read_text())
    meta["diverged"] = record
    (d / "config.json").write_text(json.dumps(meta))
    return d


def test_the_recorded_divergence_decides_the_status(tmp_path):
    """config.json's "diverged" record (train writes it when the loss or the parameters became non-finite)
    is what the status reads: a run whose last row is finite (non-finite parameters end the run before
    their row) and one whose non-finite loss was its last row E (all E + 1 rows logged) are diverged. A
    run without a usable record falls back to the rule on its last row."""
    stopped = _with_record(write_run(tmp_path / "p", dict(BASE_CONFIG, epochs=E), _cols(26)),
                           {"epoch": 26, "non_finite": "parameters"})
    assert run_status(read_run(stopped)) == {"status": "diverged", "last_epoch": 25, "epochs": E,
                                             "why": "diverged at epoch 26 (non-finite parameters)"}
    at_end = _with_record(write_run(tmp_path / "l", dict(BASE_CONFIG, epochs=E), _cols(E + 1, diverge=True)),
                          {"epoch": E, "non_finite": "loss"})
    assert run_status(read_run(at_end))["why"] == f"diverged at epoch {E} (non-finite loss)"
    odd = _with_record(write_run(tmp_path / "o", dict(BASE_CONFIG, epochs=E), _cols(26)),
                       {"epoch": "26", "non_finite": "parameters"})
    assert run_status(read_run(odd))["status"] == "unfinished"


def test_a_run_one_row_short_is_unfinished_and_not_complete(tmp_path):
    """Rows 0..E are E + 1 rows: a log of rows 0..E-1 is one short, whatever final.npz says; and a full log
    is complete only beside a final.npz at epoch E (not one at E - 1)."""
    from tianref.analysis.records import is_complete
    short = write_run(tmp_path / "short", dict(BASE_CONFIG, seed=0, epochs=E), _cols(E))
    st = run_status(read_run(short))
    assert st["status"] == "unfinished" and st["last_epoch"] == E - 1
    (short / "checkpoints").mkdir()
    np.savez(short / "checkpoints" / "final.npz", epoch=np.array(E))
    assert not is_complete(short, E)
    full = write_run(tmp_path / "full", dict(BASE_CONFIG, seed=0, epochs=E), _cols(E + 1))
    (full / "checkpoints").mkdir()
    np.savez(full / "checkpoints" / "final.npz", epoch=np.array(E - 1))
    assert not is_complete(full, E)                     # the state of another epoch
    np.savez(full / "checkpoints" / "final.npz", epoch=np.array(E))
    assert is_complete(full, E)


def test_summarize_leaves_out_a_run_one_row_short(tmp_path):
    """Rows 0..E-1 are E rows, one short of E + 1: the run's row says complete = False and --complete-only
    leaves it out (listed with its last epoch), keeping the full run of the same condition."""
    from tianref.analysis.records import read_tree
    from tianref.analysis.summarize import Options, summarize
    write_run(tmp_path / "full", dict(BASE_CONFIG, seed=0, epochs=E), _cols(E + 1))
    write_run(tmp_path / "short", dict(BASE_CONFIG, seed=1, epochs=E), _cols(E))
    rows = {r["folder"]: r for r in summarize(read_tree(tmp_path))["conditions"][0]["runs"]}
    assert rows["full"]["complete"] is True and rows["short"]["complete"] is False
    s = summarize(read_tree(tmp_path), Options(complete_only=True))
    assert s["n_runs"] == 1 and [r["folder"] for r in s["conditions"][0]["runs"]] == ["full"]
    assert [(d["folder"], d["last_epoch"]) for d in s["left_out"]] == [("short", E - 1)]


def test_a_run_that_diverged_at_its_last_row_is_not_counted_complete(tmp_path):
    """A non-finite loss at row E leaves all E + 1 rows logged, and train ends the run there (no final.npz):
    it is diverged, in run_status and in summarize's rows and --complete-only alike, with config.json's record
    and, for a run written before that record, from its last row; the full finite run beside it is complete."""
    from tianref.analysis.records import read_tree
    from tianref.analysis.summarize import Options, summarize
    write_run(tmp_path / "done", dict(BASE_CONFIG, seed=0, epochs=E), _cols(E + 1))
    _with_record(write_run(tmp_path / "rec", dict(BASE_CONFIG, seed=1, epochs=E), _cols(E + 1, diverge=True)),
                 {"epoch": E, "non_finite": "loss"})
    write_run(tmp_path / "old", dict(BASE_CONFIG, seed=2, epochs=E), _cols(E + 1, diverge=True))
    why = f"diverged at epoch {E} (non-finite loss)"
    for d in ("rec", "old"):
        assert run_status(read_run(tmp_path / d)) == {"status": "diverged", "last_epoch": E, "epochs": E,
                                                      "why": why}
    rows = {r["folder"]: r for r in summarize(read_tree(tmp_path))["conditions"][0]["runs"]}
    assert {k: (r["status"], r["complete"]) for k, r in rows.items()} == {
        "done": ("complete", True), "rec": ("diverged", False), "old": ("diverged", False)}
    s = summarize(read_tree(tmp_path), Options(complete_only=True))
    assert s["n_runs"] == 1 and [r["folder"] for r in s["conditions"][0]["runs"]] == ["done"]
    assert [(d["folder"], d["status"], d["why"]) for d in s["left_out"]] == [
        ("old", "diverged", why), ("rec", "diverged", why)]
