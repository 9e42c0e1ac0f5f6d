"""Corner cases of batched training (tianref/batch.py, train-batch): each one is checked against the
same run trained alone by train's own loop, as tests/test_batch.py does for the ordinary cases."""
import json

import numpy as np

from tianref.rundir import lock_holder

from test_batch import _alone, _cfgs, _stacked


def _lines(rows):
    return [json.dumps(r, sort_keys=True) for r in rows]


def test_a_run_whose_parameters_become_non_finite_leaves_the_others_rows_unchanged():
    """Run 1 (W x 20, SGD at lr 1 in float64) steps to non-finite parameters while its loss was finite:
    the stack's spectra fail (LinAlgError) and every run's row is computed again alone. The
    independence-proxy pairs of that row were already drawn from each run's stream by the failed
    attempt; they must be drawn again from the same state, not the next one."""
    cfgs = _cfgs(dtype="float64", optimizer="sgd", lr=1.0)

    def spoil(members):
        st = members[1].state
        st.params["W"] = st.params["W"] * 20.0

    members = _stacked(cfgs, np, spoil)
    assert members[1].failed and "parameters became non-finite" in members[1].failed   # the path under test
    for s in (0, 2):
        assert members[s].failed is None
        assert _lines(members[s].sink.rows) == _lines(_alone(cfgs[s], np))


def test_members_on_different_backends_train_in_different_stacks(tmp_path):
    """A member given --xp fake beside --xp numpy ones is trained by the backend it names (one
    stack per backend), not by the first member's."""
    from tianref.cli.batch import _groups, prepare_members
    base = ["--M", "11", "--K", "32", "--n-train", "60", "--epochs", "3"]
    argvs = [base + ["--out", str(tmp_path / f"m{s}"), "--seed", str(s)] + (["--xp", "fake"] if s == 1 else [])
             for s in range(3)]
    prepared, refused = prepare_members(argvs, None)
    try:
        assert not refused
        groups = _groups(prepared)
        assert sorted(len(g) for g in groups) == [1, 2]
        for g in groups:
            assert len({p.xp_name for p in g}) == 1 and all(p.xp is g[0].xp for p in g)
    finally:
        for p in prepared:
            p.session.__exit__(None, None, None)


def test_runs_a_stop_kept_from_starting_are_rolled_back_as_train_rolls_back(tmp_path, monkeypatch):
    """A stop during the first stack leaves the later stacks' runs unstarted: like a train stopped
    before its first row, a new run's folder is removed and an --overwrite'd run is put back."""
    from tianref.cli import batch as cli_batch
    from tianref.errors import RunFailure
    from cli_checks import cli
    base = ["--M", "11", "--K", "32", "--n-train", "60"]
    assert cli(["train", "--out", tmp_path / "old", "--seed", "5", *base, "--epochs", "4"]).exit_code == 0
    before = (tmp_path / "old" / "metrics.jsonl").read_bytes()

    def first_stack_stopped(group, log_dir, failed, threads):              # stands for a SIGINT in it
        for p in group:
            p.session.__exit__(RunFailure, RunFailure("stopped"), None)
        return RunFailure("stopped by SIGINT at epoch 7")
    monkeypatch.setattr(cli_batch, "_train_group", first_stack_stopped)
    argvs = [base + ["--out", str(tmp_path / "m0"), "--seed", "0", "--epochs", "30"],
             base + ["--out", str(tmp_path / "old"), "--seed", "1", "--epochs", "20", "--overwrite"],
             base + ["--out", str(tmp_path / "m2"), "--seed", "2", "--epochs", "20"]]
    (tmp_path / "_logs").mkdir()
    prepared, refused = cli_batch.prepare_members(argvs, str(tmp_path / "_logs"))
    assert not refused and len(cli_batch._groups(prepared)) == 2
    try:
        cli_batch._train_all(prepared, str(tmp_path / "_logs"), 1)
        raise AssertionError("the stop was not raised")
    except RunFailure as exc:
        assert "stopped by SIGINT" in str(exc)
    assert (tmp_path / "old" / "metrics.jsonl").read_bytes() == before            # the old run is back
    assert json.loads((tmp_path / "old" / "config.json").read_text())["config"]["seed"] == 5
    assert not (tmp_path / "m2").exists()                                          # as if never begun
    assert not list(tmp_path.glob(".old.replaced-*"))
    assert "not started" in (tmp_path / "_logs" / "m2.log").read_text()
    assert all(lock_holder(str(tmp_path / d)) is None for d in ("m0", "old"))
