"""Corner cases of batched training (tianref/batch.py, train-batch): each one is checked against the
same run trained alone by train's own loop, as tests/test_batch.py does for the ordinary cases."""
import json
import os

import numpy as np
import pytest

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

    def first_stack_stopped(group, log_dir, failed, threads, stop):        # stands for a SIGINT in it
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


MEMBER = ["--M", "11", "--K", "32", "--n-train", "60", "--epochs", "3"]


def test_a_member_without_out_refuses_the_batch_and_logs_nowhere(tmp_path):
    """Its refusal names it 'member 2' on stderr; it has no run folder, so no log (a log named after
    its arguments was a file name too long for these, which ended the whole batch with exit 1). A bad
    member's command line is bad input for the whole command: the other member is not trained, and the
    --log-dir this command created is gone again."""
    from cli_checks import cli
    long = " ".join(MEMBER + ["--windows", "5,10,20", "--checkpoint-epochs", "1,2", "--init-scale", "1.0",
                              "--output-scale", "1.0", "--gram-dtype", "float64", "--tail-rank", "M-1",
                              "--top-layer", "trained", "--metrics", "full", "--lr", "1e-3", "--eta", "2e-3",
                              "--act", "sqr", "--loss", "tian", "--optimizer", "adam", "--dtype", "float32"])
    assert len(long) > 255                                  # longer than a file name may be
    r = cli(["train-batch", "--log-dir", tmp_path / "_logs", "--member", f"--out={tmp_path / 'm0'} {long}",
             "--member", f"--seed 1 {long}"])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    lines = r.stderr.strip().splitlines()                     # one line: the refusal, naming the member
    assert "1 of 2 runs refused: member 2 (no --out): Missing option '--out'" in lines[-1]
    assert lines[-1].endswith("no run was trained")
    assert sum(ln.startswith("Error") or ": Error" in ln for ln in lines) == 1, r.stderr
    assert not list(tmp_path.iterdir())                       # neither m0 nor _logs


def test_a_member_with_a_bad_option_refuses_the_batch_before_any_run_trains(tmp_path):
    """A typo or a bad value in one member: nothing trained, every folder as before (an --overwrite'd old
    run put back), exit 2 naming it (the other members used to train first)."""
    from cli_checks import cli, refused, snapshot
    r = cli(["train-batch", "--member", f"--out {tmp_path / 'old'} " + " ".join(MEMBER)])
    assert r.exit_code == 0, r.output
    before = snapshot(tmp_path)
    for bad in ("--epoch 3", "--M 1", "--lr nan"):
        refused(cli(["train-batch", "--member", f"--out {tmp_path / 'new' / 'a'} " + " ".join(MEMBER),
                     "--member", f"--out {tmp_path / 'old'} --overwrite --seed 3 " + " ".join(MEMBER),
                     "--member", f"--out {tmp_path / 'b'} --seed 1 " + " ".join(MEMBER) + f" {bad}"]),
                "1 of 3 runs refused", str(tmp_path / "b"), "no run was trained")
        assert snapshot(tmp_path) == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]


def test_a_member_that_is_no_command_line_is_refused_before_anything_is_written(tmp_path):
    from cli_checks import cli, refused
    r = cli(["train-batch", "--member", f"--out {tmp_path / 'm0'} " + " ".join(MEMBER),
             "--member", f"--out '{tmp_path / 'm1'} " + " ".join(MEMBER)])
    refused(r, "--member", "No closing quotation")
    assert not list(tmp_path.iterdir())


def test_two_members_with_one_out_are_refused_before_anything_is_written(tmp_path):
    # the second member would be refused by the lock the first holds in this same process, after the
    # first had trained: a bad command line, so nothing may be written
    from cli_checks import cli, refused
    r = cli(["train-batch", "--member", f"--out {tmp_path / 'm0'} " + " ".join(MEMBER),
             "--member", f"--out={tmp_path / 'm0'}/ --seed 1 " + " ".join(MEMBER)])
    refused(r, "--member", "same --out")
    assert not list(tmp_path.iterdir())


def test_a_help_member_is_refused_not_taken_for_a_finished_run(tmp_path):
    from cli_checks import cli
    r = cli(["train-batch", "--member", "--help"])
    assert r.exit_code == 2 and "no run to train" in r.stderr, r.output


def test_an_unexpected_error_while_preparing_rolls_back_the_members_prepared_before_it(tmp_path, monkeypatch):
    from tianref.cli import batch as cli_batch

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(cli_batch, "_say", disk_full)                 # member 2's refusal cannot be logged
    argvs = [MEMBER + ["--out", str(tmp_path / "m0")], MEMBER + ["--out", str(tmp_path / "m1"), "--K", "-3"]]
    try:
        cli_batch.prepare_members(argvs, str(tmp_path))
        raise AssertionError("the error was not raised")
    except OSError:
        pass
    assert not (tmp_path / "m0").exists() and lock_holder(str(tmp_path / "m0")) is None


def test_each_stopped_run_logs_the_epoch_its_own_resume_state_is_at(tmp_path):
    """With --threads 2 the stack is stepped in two parts (two runs, one run) that reach the stop at
    different epochs; each run's log names its own (was: the first part's, for every run)."""
    import re
    import signal
    import subprocess
    import sys
    import time
    from test_batch import REPO
    args = [sys.executable, str(REPO / "cli.py"), "train-batch", "--threads", "2", "--log-dir", str(tmp_path / "_logs")]
    for s in range(3):
        args += ["--member", " ".join(MEMBER[:-1] + ["100000", "--out", str(tmp_path / f"m{s}"), "--seed", str(s)])]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    t0 = time.time()
    while time.time() - t0 < 60 and not all(
            (tmp_path / f"m{s}" / "metrics.jsonl").is_file()
            and len((tmp_path / f"m{s}" / "metrics.jsonl").read_text().splitlines()) > 20 for s in range(3)):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    for s in range(3):
        rows = (tmp_path / f"m{s}" / "metrics.jsonl").read_text().splitlines()
        said = re.findall(r"stopped by SIGTERM at epoch (\d+)", (tmp_path / "_logs" / f"m{s}.log").read_text())
        assert said == [str(len(rows) - 1)], (s, said, len(rows))
        assert json.loads(rows[-1])["epoch"] == len(rows) - 1


def test_a_batch_too_large_for_the_memory_trains_as_stacks_that_fit(tmp_path, monkeypatch):
    """train checks that one run fits; S stacked runs hold S runs' arrays at once, and their rings
    twice while the stack forms (memory.stacked_bytes). With memory for 2.5 such runs
    (memory.available_bytes patched), three runs train as stacks of 2 and 1, each exact."""
    from tianref import batch as engine_batch, memory
    from tianref.config import TrainConfig, validate
    from cli_checks import cli
    one = memory.stacked_bytes(validate(TrainConfig(M=11, K=32, n_train=60, epochs=3)))
    assert one > memory.estimate_bytes(validate(TrainConfig(M=11, K=32, n_train=60, epochs=3)))
    monkeypatch.setattr(memory, "available_bytes", lambda: int(2.5 * one))
    sizes, real = [], engine_batch.run

    def spy(xp, members, **kw):
        sizes.append(len(members))
        return real(xp, members, **kw)
    monkeypatch.setattr(engine_batch, "run", spy)
    args = ["train-batch"]
    for s in range(3):
        args += ["--member", " ".join(MEMBER + ["--out", str(tmp_path / f"b{s}"), "--seed", str(s)])]
    r = cli(args)
    assert r.exit_code == 0, r.output
    assert sizes == [2, 1] and "stacks of 2" in r.stderr
    for s in range(3):
        assert cli(["train", *MEMBER, "--out", tmp_path / f"u{s}", "--seed", s]).exit_code == 0
        assert (tmp_path / f"b{s}" / "metrics.jsonl").read_bytes() == (tmp_path / f"u{s}" / "metrics.jsonl").read_bytes()


def test_the_progress_lines_follow_a_live_run_after_the_first_one_diverges(tmp_path):
    """The heartbeat names part 0's epoch by the row of its first run still training: when the first
    member diverges (SGD at lr 2.4: seed 0 does, seeds 1-3 do not), the lines go on to epoch 38/38
    instead of repeating the dead run's last epoch over a shrinking total; the test_acc each line shows
    names its run, r0's until it diverges, then r1's."""
    from cli_checks import cli
    args = ["train-batch", "--log-dir", str(tmp_path / "_logs")]
    for s in range(4):
        args += ["--member", " ".join(["--M", "11", "--K", "32", "--train-frac", "0.5", "--epochs", "38",
                                       "--optimizer", "sgd", "--lr", "2.4", "--no-resume-state",
                                       "--out", str(tmp_path / f"r{s}"), "--seed", str(s)])]
    r = cli(args)
    assert r.exit_code == 1, r.output                  # a member diverged
    assert "non-finite" in (tmp_path / "_logs" / "r0.log").read_text()
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("train-batch [")]
    assert lines and "epoch 38/38 (100 %)" in lines[-1], lines[-3:]
    assert lines[0].endswith("(run r0)") and lines[-1].endswith("(run r1)"), lines
    assert all(ln.endswith(("(run r0)", "(run r1)")) for ln in lines), lines
    # a stack of more than three runs is named by its first and last run and its count, not by a list of
    # every member (thirty names would make each line as long as the command)
    assert all(ln.startswith("train-batch [r0, ..., r3; 4 runs]: epoch ") for ln in lines), lines


def _layout_cases(tmp_path):
    """Members whose own run holds an array in Fortran order where the stack's slice is in C order
    (or the reverse): the run trained alone writes the order its arrays have in memory."""
    from tianref import runs
    ck = {"W": np.random.default_rng(0).standard_normal((22, 32)).astype(np.float32),
          "V": np.random.default_rng(1).standard_normal((32, 11)).astype(np.float32),
          "train_idx": np.arange(0, 121, 2)}
    runs.save_npz(str(tmp_path / "c.npz"), ck)
    np.savez(tmp_path / "f.npz", **{k: np.asfortranarray(v) for k, v in ck.items()})    # as another tool may
    base = ["--K", "32", "--epochs", "4", "--checkpoint-epochs", "0,2"]
    return {
        # one run from an F-ordered --init-from (its W, V and buffers F at first) beside one from a C one;
        # the stack holds both in C order
        "init-from": [base + ["--seed", "0", "--init-from", str(tmp_path / "c.npz")],
                      base + ["--seed", "1", "--init-from", str(tmp_path / "f.npz")]],
        # SGD under the held ridge layer: b^wd of V = eta V_ridge takes the solve's F order in the stack,
        # where the run without decay keeps its C-ordered zeros
        "ridge-sgd": [base + ["--M", "11", "--seed", s, "--eta", e, "--optimizer", "sgd", "--lr", "0.05",
                              "--top-layer", "ridge"] for s, e in (("0", "2e-3"), ("1", "0"))],
    }


@pytest.mark.parametrize("name", ["init-from", "ridge-sgd"])
def test_each_stacked_run_writes_the_checkpoint_bytes_of_its_run_alone(tmp_path, name):
    """Every .npz a member writes is the same file, byte for byte, as its run trained alone, whatever
    the memory order of the arrays on either side: .npy records the order (its 'fortran_order' and
    the data in that order), so checkpoints are written in C order (runs.save_npz)."""
    from cli_checks import cli
    argvs = _layout_cases(tmp_path)[name]
    args = ["train-batch"]
    for i, argv in enumerate(argvs):
        args += ["--member", " ".join(argv + ["--out", str(tmp_path / f"b{i}")])]
    r = cli(args)
    assert r.exit_code == 0, r.output
    for i, argv in enumerate(argvs):
        assert cli(["train", *argv, "--out", tmp_path / f"u{i}"]).exit_code == 0
        b, u = tmp_path / f"b{i}", tmp_path / f"u{i}"
        assert (b / "metrics.jsonl").read_bytes() == (u / "metrics.jsonl").read_bytes()
        for ck in ("epoch_00000.npz", "epoch_00002.npz", "final.npz", "resume.npz"):
            assert (b / "checkpoints" / ck).read_bytes() == (u / "checkpoints" / ck).read_bytes(), (i, ck)


def test_a_thread_part_that_raises_names_its_error_on_its_own_runs_only():
    """--threads 2 steps the stack as two parts (runs 0, 2 and run 1). Run 1's sink fails at row 3 with
    an OSError (a full disk): batch.run re-raises it, and the runs of that part carry its message in
    ``failed`` (what train-batch reports for them when a stop arrives in the same batch); the other
    part's runs finished and carry none. A check that marked only stop signals (RunFailure) would leave
    run 1 unmarked."""
    from tianref import batch, runs, train

    class FullDisk(runs.MemorySink):
        def row(self, row):
            if row["epoch"] == 3:
                raise OSError(28, "No space left on device")
            super().row(row)
    cfgs = _cfgs(epochs=6)
    members = []
    for s, c in enumerate(cfgs):
        problem, state = train.setup(c, np)
        members.append(batch.Member(c, problem, state, sink=FullDisk() if s == 1 else runs.MemorySink()))
    with pytest.raises(OSError, match="No space left"):
        batch.run(np, members, parts=2)
    assert "No space left on device" in members[1].failed
    assert [len(members[s].sink.rows) for s in range(3)] == [7, 3, 7]      # rows 0..6; run 1: rows 0..2
    assert members[0].failed is None and members[2].failed is None


def test_a_run_resumed_at_its_last_row_writes_the_checkpoints_train_writes():
    """A run stopped after its last row was logged but before final.npz (a crash) is resumed at
    epoch E; when E is a --checkpoint-epochs epoch its named checkpoint is written with final.npz, as
    train.run writes it (train.py: resumed at the end). The stack must make the same sink calls:
    a resumed stack that wrote final.npz only would leave epoch_E.npz missing."""
    from tianref import batch, runs, train

    class Calls(runs.MemorySink):
        def __init__(self):
            super().__init__()
            self.calls = []

        def checkpoint(self, arrays_fn, epoch, named, final):
            self.calls.append((epoch, named, final))
    cfgs = _cfgs(n=2, epochs=0, checkpoint_epochs=(0,))
    alone = Calls()
    problem, state = train.setup(cfgs[0], np)
    train.run(cfgs[0], np, problem=problem, state=state, sink=alone)       # resumed: row 0 is logged
    members = []
    for c in cfgs:
        problem, state = train.setup(c, np)
        members.append(batch.Member(c, problem, state, resumed=True, sink=Calls()))
    batch.run(np, members)
    assert alone.calls == [(0, True, True)]
    assert [m.sink.calls for m in members] == [alone.calls] * 2
    assert [m.sink.rows for m in members] == [[], []]                         # no row logged again


def test_a_part_that_raises_keeps_the_message_of_its_run_that_diverged_before():
    """Parts of --threads 2: runs 0, 2 and runs 1, 3. Run 1 (W x 20, SGD at lr 1) becomes non-finite
    and ends alone; later run 3's sink fails (a full disk) and its part raises. Run 3 carries the
    disk's error; run 1 keeps its own divergence message (the one its log names), not the error
    raised after it had ended."""
    from tianref import batch, runs, train

    class FullDisk(runs.MemorySink):
        def row(self, row):
            if row["epoch"] == 5:
                raise OSError(28, "No space left on device")
            super().row(row)
    cfgs = _cfgs(n=4, dtype="float64", optimizer="sgd", lr=1.0, epochs=6)
    members = []
    for s, c in enumerate(cfgs):
        problem, state = train.setup(c, np)
        members.append(batch.Member(c, problem, state, sink=FullDisk() if s == 3 else runs.MemorySink()))
    members[1].state.params["W"] = members[1].state.params["W"] * 20.0
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(OSError, match="No space left"):
        batch.run(np, members, parts=2)
    assert "non-finite" in members[1].failed and members[1].diverged is not None
    assert len(members[1].sink.rows) < 5                                   # it ended before the error
    assert "No space left on device" in members[3].failed
    assert members[0].failed is None and members[2].failed is None


def test_a_batch_with_a_refused_and_a_failed_run_exits_2_naming_the_refusal(tmp_path):
    """Bad input outranks a runtime failure: one member refused (its folder held by another process: the
    others train) and one that diverges (SGD at lr 2.4, seed 0) exit 2 with the refusal's count, after
    the other run was trained and its divergence logged (a failure reported over the refusal would exit
    1 and hide the bad input)."""
    from cli_checks import cli
    from tianref.rundir import RunLock
    os.makedirs(tmp_path / "busy")
    args = ["train-batch", "--log-dir", str(tmp_path / "_logs"),
            "--member", f"--out {tmp_path / 'busy'} --M 11 --K 32 --epochs 4",
            "--member", " ".join(["--M", "11", "--K", "32", "--train-frac", "0.5", "--epochs", "38",
                                  "--optimizer", "sgd", "--lr", "2.4", "--no-resume-state",
                                  "--out", str(tmp_path / "r0"), "--seed", "0"])]
    lock = RunLock(str(tmp_path / "busy")).acquire()          # another writer holds it
    try:
        r = cli(args)
    finally:
        lock.release()
    assert r.exit_code == 2, r.output
    assert "1 of 2 runs refused" in r.stderr and "in use by" in r.stderr
    assert "non-finite" in (tmp_path / "_logs" / "r0.log").read_text()          # it did train, and failed
    assert not (tmp_path / "busy" / "metrics.jsonl").exists()


def test_runs_that_reached_their_last_epoch_before_a_stop_are_finished(tmp_path, monkeypatch):
    """With --threads parts, one part may train to its last epoch E while a stop signal ends another:
    batch.run then raises the stop after every run of the first part is at E. Those runs are finished
    (state at epoch E): their JSON summaries are printed and their logs say no error; the command
    still exits 1 for the stop. Here the stop is raised after the whole stack finished."""
    from cli_checks import cli
    from tianref import batch
    from tianref.errors import RunFailure
    real = batch.run

    def run_then_stop(xp, members, **kw):
        real(xp, members, **kw)
        raise RunFailure("stopped by SIGTERM at epoch 3; every run's resume state is saved: "
                         "continue with --resume")
    monkeypatch.setattr(batch, "run", run_then_stop)
    args = ["train-batch", "--log-dir", str(tmp_path / "_logs")]
    for s in range(2):
        args += ["--member", f"--out {tmp_path / f'm{s}'} --seed {s} --M 11 --K 32 --epochs 5"]
    r = cli(args)
    assert r.exit_code == 1, r.output
    outs = [json.loads(ln)["out"] for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert outs == [str(tmp_path / "m0"), str(tmp_path / "m1")]
    for s in range(2):
        assert "Error" not in (tmp_path / "_logs" / f"m{s}.log").read_text()
        assert (tmp_path / f"m{s}" / "checkpoints" / "final.npz").is_file()


def test_states_at_different_steps_are_not_stacked():
    """A stack holds one host step count t (Adam's bias corrections use it for every run): stacking
    two states whose t differ is refused, never stacked with the first run's t for both. batch.run
    only stacks runs at one epoch, so this guards stack_state itself."""
    from tianref import stacks, train
    states = [train.setup(c, np)[1] for c in _cfgs(n=2)]
    stacks.stack_state(np, states)                                          # same t: stacked
    states[1].adam["t"] = states[0].adam["t"] + 1
    with pytest.raises(ValueError, match="disagree on a counter or flag"):
        stacks.stack_state(np, states)


def test_a_stop_in_setup_with_an_unwritable_log_keeps_every_overwritten_run(tmp_path, monkeypatch):
    """A signal while the members are set up ends them before their first row (each --overwrite'd old run put
    back); if writing a member's log then fails, the error path ended the sessions a second time, and the
    second rollback emptied the folders again: both old runs were lost. Session.__exit__ now acts once."""
    import os
    import signal
    from cli_checks import cli
    from tianref import train
    base = ["--M", "11", "--K", "32", "--n-train", "60", "--epochs", "5"]
    for r in ("r1", "r2"):
        assert cli(["train", *base, "--out", tmp_path / r]).exit_code == 0
    before = {r: (tmp_path / r / "metrics.jsonl").read_bytes() for r in ("r1", "r2")}
    (tmp_path / "logs" / "r2.log").mkdir(parents=True)              # r2's log cannot be appended to
    real = train.setup
    calls = []

    def setup(*a, **k):                                             # SIGINT after the first member's setup
        out = real(*a, **k)
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return out
    monkeypatch.setattr(train, "setup", setup)
    r = cli(["train-batch", "--log-dir", tmp_path / "logs",
             "--member", " ".join(["--out", str(tmp_path / "r1"), "--seed", "0", *base, "--overwrite"]),
             "--member", " ".join(["--out", str(tmp_path / "r2"), "--seed", "1", *base, "--overwrite"])])
    assert r.exit_code == 1 and "r2.log" in r.stderr, r.output
    for name in ("r1", "r2"):
        assert (tmp_path / name / "metrics.jsonl").read_bytes() == before[name]
        assert json.loads((tmp_path / name / "config.json").read_text())["config"]["seed"] == 0
    assert not list(tmp_path.glob(".r*.replaced-*"))


def test_bad_members_found_at_their_folder_refuse_the_batch_before_anything_moves(tmp_path):
    """A member whose folder train would refuse (not empty without --resume/--overwrite), a --help member,
    or one --out inside another's: the whole command is refused in one line before any member is
    prepared, so an --overwrite'd run is never moved aside and a --resume'd run's config.json is not
    committed (both happened before the batch got to the refused member)."""
    from cli_checks import cli, refused, snapshot
    for name in ("old", "rs", "full"):
        assert cli(["train-batch", "--member", f"--out {tmp_path / name} " + " ".join(MEMBER)]).exit_code == 0
    before = snapshot(tmp_path)
    first = [f"--out {tmp_path / 'old'} --overwrite --seed 3 " + " ".join(MEMBER),
             f"--out {tmp_path / 'rs'} --resume --epochs 6"]
    refused(cli(["train-batch", *sum((["--member", m] for m in first), []),
                 "--member", f"--out {tmp_path / 'full'} " + " ".join(MEMBER)]), "full", "holds a finished run")
    refused(cli(["train-batch", *sum((["--member", m] for m in first), []), "--member", "--help"]),
            "member 3", "only ask for help")
    refused(cli(["train-batch", "--member", f"--out {tmp_path / 'nest'} " + " ".join(MEMBER),
                 "--member", f"--out {tmp_path / 'nest' / 'inner'} --seed 1 " + " ".join(MEMBER)]),
            "lies inside the --out")
    assert snapshot(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["full", "old", "rs"]


@pytest.mark.parametrize("extra", ["", "--dtype float32"])
def test_a_resumed_member_whose_folder_another_process_holds_is_refused_alone(tmp_path, extra):
    """Another process holds the folder and has moved its files aside (an --overwrite midway): the member's
    check cannot read its config.json, which is the other process's doing, not a bad member (also when an
    option given with --resume is compared with the stored run). It is refused alone (exit 2 at the end)
    and the other member trains."""
    import shutil
    from cli_checks import cli
    from tianref.rundir import RunLock
    for name in ("busy", "other"):
        assert cli(["train-batch", "--member", f"--out {tmp_path / name} " + " ".join(MEMBER)]).exit_code == 0
    lock = RunLock(str(tmp_path / "busy")).acquire()
    try:
        shutil.move(str(tmp_path / "busy" / "config.json"), str(tmp_path / "aside.json"))
        r = cli(["train-batch", "--member", f"--out {tmp_path / 'busy'} --resume --epochs 6 {extra}",
                 "--member", f"--out {tmp_path / 'other'} --resume --epochs 6"])
    finally:
        shutil.move(str(tmp_path / "aside.json"), str(tmp_path / "busy" / "config.json"))
        lock.release()
    assert r.exit_code == 2 and "1 of 2 runs refused" in r.stderr and "in use by" in r.stderr, r.output
    assert "no run was trained" not in r.stderr
    assert len((tmp_path / "other" / "metrics.jsonl").read_text().splitlines()) == 7      # rows 0..6


def test_members_the_first_pass_refuses_on_sight(tmp_path):
    """--check-only in a member (it trains nothing: its message said it only asked for help), an --init-from
    file inside a folder another member's --overwrite replaces (refused as 'file not found' after that
    run was moved aside, or trained, by member order), and a member without --out next to one whose --out
    is literally 'member 1' (their refusals were merged under one name)."""
    from cli_checks import cli, refused, snapshot
    assert cli(["train-batch", "--member", f"--out {tmp_path / 'A'} " + " ".join(MEMBER)]).exit_code == 0
    before = snapshot(tmp_path)
    refused(cli(["train-batch", "--member", f"--out {tmp_path / 'B'} " + " ".join(MEMBER) + " --check-only"]),
            "--check-only validates a run without training it")
    init = tmp_path / "A" / "checkpoints" / "final.npz"
    for order in (1, -1):
        members = [f"--out {tmp_path / 'A'} --overwrite --seed 3 " + " ".join(MEMBER),
                   f"--out {tmp_path / 'C'} --init-from {init} --epochs 3"][::order]
        refused(cli(["train-batch", *sum((["--member", m] for m in members), [])]),
                "--overwrite replaces it", "no run was trained")
    r = cli(["train-batch", "--member", " ".join(MEMBER), "--member", "--out 'member 1' " + " ".join(MEMBER)
             + " --lr nan"])
    line = refused(r, "2 of 2 runs refused")
    assert "member 1 (no --out): Missing option '--out'" in line and "member 1: --lr must be" in line
    assert snapshot(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["A"]


def test_a_member_whose_folder_changes_after_the_first_pass_is_refused_alone(tmp_path, monkeypatch):
    """The first pass found every member good; one is then refused when prepared (its folder changed
    meanwhile: here a lock file that cannot be opened). A --resume member prepared before it has committed
    (its rows after the resume epoch dropped): it is trained, not rolled back with its rows lost, and the
    command exits 2 naming the refused member."""
    from cli_checks import cli
    from tianref.cli import batch as cli_batch
    assert cli(["train-batch", "--member", f"--out {tmp_path / 'K'} " + " ".join(MEMBER)]).exit_code == 0
    monkeypatch.setattr(cli_batch, "check_members", lambda argvs, threads=None: {})
    (tmp_path / "K2" / ".lock").mkdir(parents=True)
    r = cli(["train-batch", "--member", f"--out {tmp_path / 'K'} --resume --epochs 5",
             "--member", f"--out {tmp_path / 'K2'} " + " ".join(MEMBER)])
    assert r.exit_code == 2 and "1 of 2 runs refused" in r.stderr and "K2" in r.stderr, r.output
    assert len((tmp_path / "K" / "metrics.jsonl").read_text().splitlines()) == 6          # rows 0..5


def test_a_member_whose_folder_cannot_be_made_here_refuses_the_batch(tmp_path):
    """A folder name longer than the file system allows (as a read-only or unwritable place): the first
    pass refuses it (the others used to train, and an --overwrite'd run was replaced, under exit 2)."""
    from cli_checks import cli, refused, snapshot
    assert cli(["train-batch", "--member", f"--out {tmp_path / 'old'} " + " ".join(MEMBER)]).exit_code == 0
    before = snapshot(tmp_path)
    refused(cli(["train-batch", "--member", f"--out {tmp_path / 'old'} --overwrite --seed 9 " + " ".join(MEMBER),
                 "--member", f"--out {tmp_path / 'sub' / ('x' * 300)} " + " ".join(MEMBER)]),
            "300 bytes long", "no run was trained")
    assert snapshot(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["old"]


def test_two_members_whose_logs_would_be_one_file_are_refused(tmp_path):
    from cli_checks import cli, refused
    refused(cli(["train-batch", "--log-dir", tmp_path / "L",
                 "--member", f"--out {tmp_path / 'd1' / 'run'} " + " ".join(MEMBER),
                 "--member", f"--out {tmp_path / 'd2' / 'run'}/ --seed 2 " + " ".join(MEMBER)]),
            "share the log run.log")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_preparing_fails_that_member_alone(tmp_path, monkeypatch):
    """A folder that cannot be made for a full disk is a runtime failure (exit 1, it was reported as bad
    input) of that member alone, as a run that diverges is: the others are prepared and trained. The
    --resume members are prepared after the fresh ones, and one listed first is trained to its end (a
    rollback would have left its resume committed, the rows after its state dropped, untrained)."""
    import errno
    from cli_checks import cli
    from tianref import rundir
    assert cli(["train-batch", "--member", f"--out {tmp_path / 'K'} " + " ".join(MEMBER)]).exit_code == 0
    real = os.makedirs

    def full(path, *a, **k):
        if "new" in str(path):
            real(tmp_path / "new", exist_ok=True)             # one level made, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *a, **k)
    monkeypatch.setattr(rundir.os, "makedirs", full)
    r = cli(["train-batch", "--member", f"--out {tmp_path / 'K'} --resume --epochs 6",
             "--member", f"--out {tmp_path / 'new' / 'deep' / 'run'} --seed 1 " + " ".join(MEMBER)])
    assert r.exit_code == 1 and "No space left on device" in r.stderr and "1 of 2 runs failed" in r.stderr, r.output
    assert len((tmp_path / "K" / "metrics.jsonl").read_text().splitlines()) == 7          # rows 0..6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["K"]                              # new/ made, removed


def test_a_stop_after_a_member_failed_to_prepare_exits_1_naming_it(tmp_path, monkeypatch):
    """A member whose folder could not be made (a full disk) fails alone; a stop signal while the others
    train then exits 1, not 130, and says that a run failed (it said every run's state was saved). The
    failure is also on stderr at once, not only in the member's log."""
    import errno
    from cli_checks import cli
    from tianref import batch, rundir
    from tianref.errors import Interrupted
    real_run, real_makedirs = batch.run, os.makedirs

    def run_then_stop(xp, members, **kw):
        real_run(xp, members, **kw)
        raise Interrupted("stopped by SIGINT at epoch 3; every run's resume state is saved: continue with "
                          "--resume", "SIGINT")

    def full(path, *a, **k):
        if "full" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_makedirs(path, *a, **k)
    monkeypatch.setattr(batch, "run", run_then_stop)
    monkeypatch.setattr(rundir.os, "makedirs", full)
    r = cli(["train-batch", "--member", f"--out {tmp_path / 'a'} " + " ".join(MEMBER),
             "--member", f"--out {tmp_path / 'full'} --seed 1 " + " ".join(MEMBER)])
    assert r.exit_code == 1, r.output
    lines = r.stderr.strip().splitlines()
    assert any("full: Error:" in ln and "No space left" in ln for ln in lines[:-1]), r.stderr
    assert "stopped by SIGINT" in lines[-1] and "1 run(s) failed before training" in lines[-1], r.stderr


def test_overwrite_whose_old_run_cannot_be_moved_aside_on_a_full_disk_is_exit_1(tmp_path, monkeypatch):
    import errno
    from cli_checks import cli, snapshot
    from tianref import rundir
    assert cli(["train-batch", "--member", f"--out {tmp_path / 'O'} " + " ".join(MEMBER)]).exit_code == 0
    before = snapshot(tmp_path)
    real = os.makedirs

    def full(path, *a, **k):
        if ".replaced-" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *a, **k)
    monkeypatch.setattr(rundir.os, "makedirs", full)
    r = cli(["train", "--out", tmp_path / "O", "--overwrite", "--seed", "4", *MEMBER])
    assert r.exit_code == 1 and "No space left on device" in r.stderr, r.output
    assert snapshot(tmp_path) == before


def test_stacks_are_sized_by_the_share_of_memory_a_command_plans_on():
    """train-batch cut stacks by all of MemAvailable while every check_fits plans on memory.HEADROOM of it:
    with room for exactly two runs, two were stacked, their peak at the edge of what was available."""
    from types import SimpleNamespace
    from tianref import memory
    from tianref.cli.batch import _fitting
    from tianref.config import TrainConfig, validate
    r = SimpleNamespace(cfg=validate(TrainConfig(M=7, K=8, n_train=20, epochs=2)))
    need = memory.stacked_bytes(r.cfg)
    assert [len(g) for g in _fitting([[r] * 3], available=2 * need)] == [1, 1, 1]
    assert [len(g) for g in _fitting([[r] * 3], available=int(2 * need / memory.HEADROOM) + 1)] == [2, 1]
