"""`train` under misuse, crashes, signals and full disks: nothing lost, mixed or silently continued.

Each test is named after one attack case (docs/reliability.md maps the guarantees to them).
Subprocess tests are used only where a real signal or a second process is the point.
"""
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tianref import runs
from tianref.cli import main
from tianref.rundir import RunLock

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--M", "7", "--K", "16", "--epochs", "6", "--windows", "3"]


def _train(args):
    return CliRunner().invoke(main, ["train"] + args)


def _snapshot(d: Path) -> dict:
    """Every file below d (hidden ones included, the lock file excluded) -> its bytes."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def _rows(d: Path) -> list:
    return [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def run_dir(tmp_path):
    """A finished tiny run with checkpoints at 3 (and final/resume at 6)."""
    d = tmp_path / "run"
    r = _train(SMALL + ["--checkpoint-epochs", "3", "--out", str(d)])
    assert r.exit_code == 0, r.output
    return d


def _one_line_error(r, code):
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    err = r.stderr.strip().splitlines()
    assert len(err) >= 1 and err[-1].startswith("Error: "), r.stderr
    return err[-1]


# --- --overwrite -----------------------------------------------------------------------------

SIGTERM_IN_SETUP = """
import os, signal, sys
from tianref import train
real = train.setup
def setup(*a, **k):                        # SIGTERM while the new run is being set up
    os.kill(os.getpid(), signal.SIGTERM)
    return real(*a, **k)
train.setup = setup
from tianref.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("cmd", ["train", "train-batch"])
def test_sigterm_while_an_overwrite_is_set_up_puts_the_old_run_back(run_dir, cmd):
    """SIGTERM outside the training loop unwinds as Ctrl-C: the run replaced by --overwrite is back in
    OUT, byte for byte, nothing is left aside, exit 1 (the default handler ended the process at once,
    exit -15, the old run left in .run.replaced-PID)."""
    before = _snapshot(run_dir)
    argv = SMALL + ["--seed", "1", "--overwrite", "--out", str(run_dir)]
    args = ["train", *argv] if cmd == "train" else ["train-batch", "--member", " ".join(argv)]
    proc = subprocess.run([sys.executable, "-c", SIGTERM_IN_SETUP, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, (proc.returncode, proc.stderr)   # 143: the shell's code
    assert "Traceback" not in proc.stderr, proc.stderr
    assert _snapshot(run_dir) == before
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["run"]


SIGTERM_IN_MOVE = """
import os, signal, sys
from tianref import rundir
where = sys.argv.pop(1)
real_move, real_rename = rundir.Session._move_aside, os.rename
def move(self):                            # SIGTERM just after the old run is moved aside, before OUT is owned
    real_move(self)
    if where == "after":
        os.kill(os.getpid(), signal.SIGTERM)
calls = []
def rename(a, b):                          # SIGTERM after the second entry has moved
    real_rename(a, b)
    calls.append(a)
    if where == "during" and ".replaced-" in b and len(calls) == 2:
        os.kill(os.getpid(), signal.SIGTERM)
rundir.Session._move_aside = move
os.rename = rename
from tianref.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("where", ["during", "after"])
def test_sigterm_while_the_old_run_moves_aside_puts_it_back(run_dir, where):
    """A signal while --overwrite moves the old run aside, or just after (before the session owns OUT), left
    OUT holding only its lock and the old run in .run.replaced-PID for good (a later sweep trained OUT anew)."""
    before = _snapshot(run_dir)
    argv = SMALL + ["--seed", "1", "--overwrite", "--out", str(run_dir)]
    proc = subprocess.run([sys.executable, "-c", SIGTERM_IN_MOVE, where, "train", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert _snapshot(run_dir) == before
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["run"]


def test_the_sigterm_handler_lasts_the_command_and_replaces_only_the_default(monkeypatch):
    """In-process callers (CliRunner, a notebook) keep their own SIGTERM handling: a command installs its
    handler over the default only, and puts the default back when it ends (a handler left behind would turn
    a later SIGTERM to the caller into a KeyboardInterrupt)."""
    import click
    from tianref.cli import Terminated
    during = []

    @click.command()
    def probe():
        during.append(signal.getsignal(signal.SIGTERM))
    monkeypatch.setitem(main.commands, "probe-sigterm", probe)
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("this process does not start with the default SIGTERM handler")
    assert CliRunner().invoke(main, ["probe-sigterm"]).exit_code == 0
    assert callable(during[0])                                       # the command's own while it runs
    with pytest.raises(Terminated):
        during[0](signal.SIGTERM, None)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL        # the default again afterwards

    def mine(signum, frame):
        pass
    signal.signal(signal.SIGTERM, mine)
    try:
        assert CliRunner().invoke(main, ["probe-sigterm"]).exit_code == 0
        assert during[1] is mine and signal.getsignal(signal.SIGTERM) is mine    # never replaced
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _cupy_usable():
    try:
        import cupy
        cupy.zeros(1)
        return True
    except Exception:
        return False


@pytest.mark.parametrize("bad", [["--M", "1"], ["--init-from", "/nonexistent/init.npz"],
                                 ["--lr", "inf"], ["--windows", "3,,5"], ["--xp", "cupy"]],
                         ids=["M1", "missing-init-from", "lr-inf", "empty-list-item", "cupy-without-gpu"])
def test_refused_overwrite_keeps_old_run_intact(run_dir, bad):
    if "cupy" in bad and _cupy_usable():
        pytest.skip("a usable GPU exists here")
    before = _snapshot(run_dir)
    r = _train(SMALL + bad + ["--overwrite", "--out", str(run_dir)])
    _one_line_error(r, 2)
    assert _snapshot(run_dir) == before
    assert not list(run_dir.parent.glob(".run.replaced-*"))


def test_overwrite_failing_before_start_restores_old_run(run_dir, monkeypatch):
    """A disk error while the new run writes config.json: exit 1, the old run is back, no leftovers."""
    before = _snapshot(run_dir)

    def full(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device", path)
    monkeypatch.setattr(runs, "atomic_write_json", full)
    r = _train(SMALL + ["--seed", "5", "--overwrite", "--out", str(run_dir)])
    line = _one_line_error(r, 1)
    assert "config.json" in line and "No space left on device" in line
    assert _snapshot(run_dir) == before
    assert not list(run_dir.parent.glob(".run.replaced-*"))


def test_overwrite_replaces_only_after_start_and_leaves_nothing_aside(run_dir):
    r = _train(SMALL + ["--seed", "5", "--overwrite", "--out", str(run_dir)])
    assert r.exit_code == 0, r.output
    assert json.loads((run_dir / "config.json").read_text())["config"]["seed"] == 5
    assert [row["epoch"] for row in _rows(run_dir)] == list(range(7))
    assert not (run_dir / "checkpoints" / "epoch_00003.npz").exists()      # nothing of the old run
    assert not list(run_dir.parent.glob(".run.replaced-*"))


# --- one writer --------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", [[], ["--overwrite"], ["--resume"]], ids=["plain", "overwrite", "resume"])
def test_two_writers_second_is_refused_naming_the_pid(run_dir, mode):
    if not mode:                                 # a plain start needs an empty folder
        run_dir = run_dir.parent / "empty"
        run_dir.mkdir()
    before = _snapshot(run_dir)
    args = (SMALL if mode != ["--resume"] else []) + mode + ["--out", str(run_dir)]
    with RunLock(str(run_dir)):                  # the first writer (this process)
        r = _train(args)
    line = _one_line_error(r, 2)
    assert f"in use by process {os.getpid()}" in line
    assert _snapshot(run_dir) == before
    assert not list(run_dir.parent.glob(f".{run_dir.name}.replaced-*"))


def test_two_train_processes_on_one_folder(tmp_path):
    """A real second `train` process while the first runs: refused with the first one's pid; the
    first run goes on undisturbed, one row per epoch, until it is stopped (SIGINT: its resume state).
    The first run is far longer than the test, so it is still running however slowly the second starts
    (a 300-epoch first run could finish first on a loaded machine, and --overwrite then replaced it)."""
    out = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "cli.py"), "train", "--M", "11", "--K", "64", "--epochs", "100000",
           "--windows", "3", "--out", str(out)]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_rows(out, 2, first)
        second = subprocess.run(cmd + ["--overwrite"], cwd=ROOT, capture_output=True, text=True)
        assert second.returncode == 2
        assert f"in use by process {first.pid}" in second.stderr and "Traceback" not in second.stderr
        logged = (out / "metrics.jsonl").read_text().count("\n")     # complete rows (one may be torn)
        _wait_rows(out, logged + 20, first)             # it goes on after the refusal
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=120) == 130            # stopped by SIGINT: its resume state saved
    finally:
        first.kill()
        first.wait()
    epochs = [row["epoch"] for row in _rows(out)]
    assert epochs == list(range(len(epochs))) and len(epochs) > 22
    assert (out / "checkpoints" / "resume.npz").is_file()


def test_empty_out_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = _one_line_error(_train(SMALL + ["--out", ""]), 2)
    assert "--out is empty" in line
    assert list(tmp_path.iterdir()) == []


def test_out_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    assert "is a file" in _one_line_error(_train(SMALL + ["--out", str(f)]), 2)
    assert "is not a directory" in _one_line_error(_train(SMALL + ["--out", str(f / "run")]), 2)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_parent_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        line = _one_line_error(_train(SMALL + ["--out", str(ro / "run")]), 2)
        assert "cannot create" in line
    finally:
        ro.chmod(0o755)


# --- disk errors ---------------------------------------------------------------------------------

def test_disk_full_during_a_metrics_row_leaves_no_torn_row(tmp_path, monkeypatch):
    """The 4th row's write stores half its bytes, then the disk is full: exit 1 naming the file,
    rows 0..2 intact and the log ends at a whole row."""
    out = tmp_path / "run"
    real, calls = os.write, {"n": 0}

    def write(fd, data):
        calls["n"] += 1
        if calls["n"] == 4:
            real(fd, bytes(data[:len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)
    monkeypatch.setattr(runs, "_os_write", write)
    line = _one_line_error(_train(SMALL + ["--out", str(out)]), 1)
    assert "metrics.jsonl" in line and "No space left on device" in line
    text = (out / "metrics.jsonl").read_text()
    assert text.endswith("\n")
    assert [row["epoch"] for row in _rows(out)] == [0, 1, 2]


def test_a_short_write_of_a_row_is_continued_not_torn(tmp_path, monkeypatch):
    """write(2) may store fewer bytes than asked without an error (here 7 at a time): the row is
    completed by further writes, so every row is whole."""
    out = tmp_path / "run"
    real = os.write
    monkeypatch.setattr(runs, "_os_write", lambda fd, data: real(fd, bytes(data[:7])))
    r = _train(SMALL + ["--out", str(out)])
    assert r.exit_code == 0, r.output
    assert [row["epoch"] for row in _rows(out)] == list(range(7))


def test_every_row_is_synced_before_the_next_is_written(tmp_path, monkeypatch):
    out = tmp_path / "run"
    events, write, sync = [], runs._os_write, runs._sync
    monkeypatch.setattr(runs, "_os_write", lambda fd, data: (events.append("write"), write(fd, data))[1])
    monkeypatch.setattr(runs, "_sync", lambda fd: (events.append("sync"), sync(fd))[1])
    assert _train(SMALL + ["--out", str(out)]).exit_code == 0
    assert events == ["write", "sync"] * 7                 # rows 0..6, each one write then one sync


def test_without_kept_resume_state_only_the_final_checkpoint_drops_it(tmp_path):
    """--no-resume-state: a checkpoint before the end (a named epoch, a stop signal) still writes
    resume.npz with the rolling buffer, so the run can be continued; the final one removes it. Named
    and final checkpoints leave the buffer out."""
    w = runs.RunWriter(str(tmp_path), keep_resume_state=False)
    arrays = lambda full: {"W": np.zeros(2), "spec_buf_W": np.ones(3)}
    try:
        w.row({"epoch": 0})
        w.checkpoint(arrays, 0, named=True, final=False)
        resume = tmp_path / "checkpoints" / "resume.npz"
        assert set(np.load(resume).files) == {"W", "spec_buf_W"}
        assert set(np.load(tmp_path / "checkpoints" / "epoch_00000.npz").files) == {"W"}
        w.row({"epoch": 1})
        w.checkpoint(arrays, 1, named=False, final=True)
        assert not resume.exists() and (tmp_path / "checkpoints" / "final.npz").is_file()
    finally:
        w.close()


def test_the_final_checkpoint_leaves_the_rolling_buffer_to_the_resume_state(tmp_path):
    """With the resume state kept, the last checkpoint writes final.npz and resume.npz from one set of
    arrays: only resume.npz carries the rolling buffer (spec_buf_*, what a continuation needs), final.npz
    is the light state as every named checkpoint is (a final.npz written from the full set would carry
    the w_max x P buffer into every finished run)."""
    w = runs.RunWriter(str(tmp_path), keep_resume_state=True)
    arrays = lambda full: {"W": np.zeros(2), "spec_buf_W": np.ones(3)}
    try:
        w.row({"epoch": 0})
        w.checkpoint(arrays, 0, named=True, final=True)
        ck = tmp_path / "checkpoints"
        assert set(np.load(ck / "final.npz").files) == {"W"}
        assert set(np.load(ck / "epoch_00000.npz").files) == {"W"}
        assert set(np.load(ck / "resume.npz").files) == {"W", "spec_buf_W"}
    finally:
        w.close()


def test_failed_config_write_leaves_a_folder_the_retry_accepts(tmp_path, monkeypatch):
    out = tmp_path / "run"

    def full(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device", path)
    with monkeypatch.context() as m:
        m.setattr(runs, "atomic_write_json", full)
        _one_line_error(_train(SMALL + ["--out", str(out)]), 1)
    assert not out.exists()                                 # created by the failed run: removed
    out.mkdir()
    with monkeypatch.context() as m:
        m.setattr(runs, "atomic_write_json", full)
        _one_line_error(_train(SMALL + ["--out", str(out)]), 1)
    assert _snapshot(out) == {}                             # the user's folder stays, empty
    assert _train(SMALL + ["--out", str(out)]).exit_code == 0


def test_stale_tmp_files_are_removed_on_the_next_start(run_dir):
    for p in (run_dir / ".tmp-xyzconfig.json", run_dir / "checkpoints" / ".tmp-abcresume.npz"):
        p.write_bytes(b"\0" * 1000)
    r = _train(["--resume", "--epochs", "8", "--out", str(run_dir)])
    assert r.exit_code == 0, r.output
    assert not list(run_dir.rglob(".tmp-*"))


# --- signals and kill -9 ---------------------------------------------------------------------------

LONG = ["--M", "11", "--K", "64", "--epochs", "160", "--windows", "3,5", "--checkpoint-epochs",
        ",".join(str(e) for e in range(20, 160, 20))]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted LONG run."""
    d = tmp_path_factory.mktemp("ref") / "run"
    r = _train(LONG + ["--out", str(d)])
    assert r.exit_code == 0, r.output
    return d


def _start(out):
    return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "train"] + LONG + ["--out", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_rows(out, n, proc, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        p = out / "metrics.jsonl"
        if p.is_file() and p.read_text().count("\n") >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"train ended early: {proc.communicate()}")
        time.sleep(0.005)
    raise AssertionError("no rows appeared")


def _same_run(a, b):
    assert (a / "metrics.jsonl").read_bytes() == (b / "metrics.jsonl").read_bytes()
    fa, fb = np.load(a / "checkpoints" / "final.npz"), np.load(b / "checkpoints" / "final.npz")
    for k in ("W", "V", "adam_m_W", "adam_v_V", "spec_gram_W"):
        assert np.array_equal(fa[k], fb[k]), k


def test_kill_9_then_resume_is_bitwise_identical(tmp_path, reference):
    out = tmp_path / "run"
    proc = _start(out)
    _wait_rows(out, 45, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = _train(["--resume", "--out", str(out)])
    assert r.exit_code == 0, r.output
    _same_run(out, reference)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_stop_signal_writes_resume_state_then_resume_is_bitwise(tmp_path, reference, sig):
    out = tmp_path / "run"
    proc = _start(out)
    _wait_rows(out, 25, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err                  # 130 / 143: a stop, not a failure (exit 1)
    assert "stop pending" in err                              # the first signal is acknowledged
    assert "continue with --resume" in err and "Traceback" not in err
    ck = np.load(out / "checkpoints" / "resume.npz")
    assert int(ck["epoch"]) == _rows(out)[-1]["epoch"]        # saved at the last logged row
    r = _train(["--resume", "--out", str(out)])
    assert r.exit_code == 0, r.output
    _same_run(out, reference)


def test_second_ctrl_c_within_the_row_still_writes_resume_state(tmp_path):
    """Rows of ~50 ms: the second SIGINT is sent as soon as the first is acknowledged, so it lands
    inside the same row; the run still saves the state of its last logged row."""
    out, log = tmp_path / "run", tmp_path / "stderr"
    with open(log, "w") as err_f:
        proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "train", "--M", "41", "--K", "1536",
                                 "--epochs", "400", "--windows", "3", "--out", str(out)],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err_f)
        try:
            _wait_rows(out, 2, proc)
            proc.send_signal(signal.SIGINT)
            t0 = time.time()
            while "stop pending" not in log.read_text() and time.time() - t0 < 30:
                time.sleep(0.001)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 128 + signal.SIGINT
        finally:
            proc.kill()
            proc.wait()
    err = log.read_text()
    assert "already stopping" in err and "continue with --resume" in err and "Traceback" not in err, err
    ck = np.load(out / "checkpoints" / "resume.npz")
    assert int(ck["epoch"]) == _rows(out)[-1]["epoch"] < 400


# --- divergence --------------------------------------------------------------------------------------

def test_non_finite_loss_mid_run_is_one_line_exit_1_rows_kept(tmp_path):
    out = tmp_path / "run"
    line = _one_line_error(_train(SMALL + ["--optimizer", "adamw", "--eta", "1e5", "--lr", "1",
                                           "--checkpoint-epochs", "1", "--out", str(out)]), 1)
    assert "non-finite" in line
    assert [row["epoch"] for row in _rows(out)] == [0, 1, 2]
    meta = json.loads((out / "config.json").read_text())
    assert meta["diverged"] == {"epoch": 2, "non_finite": "loss"}


def test_only_a_well_formed_divergence_record_counts():
    """runs.divergence reads config.json's record only when it is what record_divergence writes: an
    int epoch (a JSON true is a bool, which Python also counts as an int: 'diverged at epoch True'
    would be shown) and 'loss' or 'parameters'; anything else is no record."""
    ok = {"diverged": {"epoch": 2, "non_finite": "loss"}}
    assert runs.divergence(ok) == (2, "loss")
    for bad in ({"epoch": True, "non_finite": "loss"}, {"epoch": 2.0, "non_finite": "loss"},
                {"epoch": 2, "non_finite": "nan"}, {"epoch": "2", "non_finite": "parameters"}, [2, "loss"]):
        assert runs.divergence({"diverged": bad}) is None, bad


def test_resume_of_a_diverged_run_is_refused_not_retrained(tmp_path):
    """Its resume state (at the checkpoint, epoch 1) is valid, and continuing from it would take the same
    steps to the same non-finite loss at epoch 2: refused, naming the divergence, nothing changed."""
    out = tmp_path / "run"
    _one_line_error(_train(SMALL + ["--optimizer", "adamw", "--eta", "1e5", "--lr", "1",
                                    "--checkpoint-epochs", "1", "--out", str(out)]), 1)
    assert (out / "checkpoints" / "resume.npz").is_file()
    before = _snapshot(out)
    line = _one_line_error(_train(["--out", str(out), "--resume"]), 2)
    assert "diverged at epoch 2 (non-finite loss)" in line and "nothing was changed" in line
    assert _snapshot(out) == before


def test_eigensolver_failure_on_non_finite_parameters_is_the_divergence_message(tmp_path, monkeypatch):
    """LAPACK may fail to converge on a non-finite update Gram (the LinAlgError of the report):
    simulated here at the 4th row; the run ends with the one-line message, rows kept."""
    from tianref import spectra
    real, calls = spectra.top_eigenvalues, {"n": 0}

    def eig(xp, state, w):
        calls["n"] += 1
        if calls["n"] > 4:
            raise np.linalg.LinAlgError("Eigenvalues did not converge")
        return real(xp, state, w)
    monkeypatch.setattr(spectra, "top_eigenvalues", eig)
    out = tmp_path / "run"
    line = _one_line_error(_train(SMALL + ["--out", str(out)]), 1)
    assert "non-finite" in line and "rows logged so far are kept" in line
    assert _rows(out)


def test_a_run_ended_by_non_finite_parameters_is_diverged_not_unfinished(tmp_path, monkeypatch):
    """The parameters' failure ends the run before its row is written, so the last row logged has finite
    losses: only config.json's record tells summarize and plot that the run diverged (and will not go on)."""
    from tianref import spectra
    from tianref.analysis.records import read_run, run_status
    real = spectra.top_eigenvalues

    def eig(xp, state, w):                              # the update spectra of row 3 fail (a non-finite Gram)
        if state["count"] == 3:
            raise np.linalg.LinAlgError("Eigenvalues did not converge")
        return real(xp, state, w)
    monkeypatch.setattr(spectra, "top_eigenvalues", eig)
    out = tmp_path / "run"
    line = _one_line_error(_train(SMALL + ["--out", str(out)]), 1)
    assert "parameters became non-finite at epoch 3" in line
    rec = read_run(out)
    assert rec.n_rows == 3 and np.isfinite(rec.columns["train_loss"][-1])   # the old rule: 'unfinished'
    assert json.loads((out / "config.json").read_text())["diverged"] == {"epoch": 3, "non_finite": "parameters"}
    assert run_status(rec) == {"status": "diverged", "last_epoch": 2, "epochs": 6,
                               "why": "diverged at epoch 3 (non-finite parameters)"}


def test_interrupted_overwrite_keeps_the_replaced_run_and_says_where(run_dir):
    """kill -9 between moving the old run aside and the new run's first row: the old run survives
    in the hidden sibling, and the next start in OUT names it."""
    aside = run_dir.parent / ".run.replaced-12345"
    aside.mkdir()
    for p in list(run_dir.iterdir()):
        if p.name != ".lock":
            p.rename(aside / p.name)
    r = _train(SMALL + ["--out", str(run_dir)])
    assert r.exit_code == 0, r.output
    assert "was interrupted" in r.stderr and str(aside) in r.stderr
    assert (aside / "metrics.jsonl").is_file()


def test_a_run_kept_aside_is_not_read_as_a_run(run_dir):
    from tianref.analysis.records import list_run_dirs
    aside = run_dir.parent / ".run.replaced-12345"
    aside.mkdir()
    (aside / "metrics.jsonl").write_text((run_dir / "metrics.jsonl").read_text())
    assert list_run_dirs(run_dir.parent) == [run_dir]


# --- the lock during --overwrite and its rollback -------------------------------------------------

def test_overwrite_keeps_the_held_lock_file_in_place(run_dir):
    """Moving the old run aside must leave OUT/.lock where it is: the lock belongs to that open file,
    so a lock file moved aside would let a second writer lock a fresh OUT/.lock while this one runs."""
    from tianref.rundir import LOCK, Session
    with Session(str(run_dir), overwrite=True) as s:
        held = os.fstat(s.lock.fd)
        here = os.stat(run_dir / LOCK)
        assert (held.st_dev, held.st_ino) == (here.st_dev, here.st_ino)
        assert not (Path(s.aside) / LOCK).exists()
        with pytest.raises(Exception, match=f"in use by process {os.getpid()}"):
            RunLock(str(run_dir)).acquire()        # a second writer is refused while the first runs
        s.started()


def test_rollback_runs_while_the_lock_is_still_held(run_dir, monkeypatch):
    """A failed start undoes its changes before it releases the lock: a second writer must not be
    able to start in OUT while the old run is being moved back."""
    from tianref import rundir
    seen = []
    original = rundir.Session._rollback

    def watched(self):
        try:
            RunLock(str(run_dir)).acquire()
            seen.append("free")                    # another writer got in during the rollback
        except Exception:
            seen.append("held")
        original(self)
    monkeypatch.setattr(rundir.Session, "_rollback", watched)
    before = _snapshot(run_dir)
    with pytest.raises(RuntimeError):
        with rundir.Session(str(run_dir), overwrite=True):
            raise RuntimeError("the new run failed before it started")
    assert seen == ["held"]
    assert _snapshot(run_dir) == before            # the old run is back, byte for byte


def _lock_state(d: Path):
    """(exists, bytes, mtime_ns) of d/.lock."""
    p = d / ".lock"
    return (p.exists(), p.read_bytes(), p.stat().st_mtime_ns) if p.exists() else (False, None, None)


@pytest.mark.parametrize("lock", ["absent", "present"])
def test_a_refused_resume_leaves_the_lock_file_as_it_was(run_dir, lock):
    """A --resume refused once the folder is locked (here: a state of another epoch count) leaves .lock
    as it found it: not created where there was none, not rewritten where there was one."""
    if lock == "absent":
        (run_dir / ".lock").unlink()
    else:
        (run_dir / ".lock").write_bytes(b"12345\n")           # a stale pid, e.g. of a process killed -9
        os.utime(run_dir / ".lock", ns=(1_000_000_000, 1_000_000_000))
    before, files = _lock_state(run_dir), _snapshot(run_dir)
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["config"]["eta"] = 0.5                                 # config.json no longer the state's run
    (run_dir / "config.json").write_text(json.dumps(cfg))
    files = _snapshot(run_dir)
    r = _train(SMALL[:-4] + ["--epochs", "9", "--windows", "3", "--out", str(run_dir), "--resume"])
    _one_line_error(r, 2)
    assert _lock_state(run_dir) == before and _snapshot(run_dir) == files


def test_a_lock_file_removed_while_opened_is_not_locked_twice(tmp_path, monkeypatch):
    """RunLock keeps a lock only on the file the path still names: a holder that removes its lock file
    (a rollback) cannot leave a second process locked on the old inode beside a third on a new one."""
    d = tmp_path / "out"
    d.mkdir()
    first = RunLock(str(d)).acquire()
    real_open, calls = os.open, {"n": 0}

    def racing_open(path, flags, *a):
        fd = real_open(path, flags, *a)
        calls["n"] += 1
        if calls["n"] == 1:                                    # the holder rolls back right after our open
            first.release(restore=True)                       # it made the file: removed
        return fd
    monkeypatch.setattr(os, "open", racing_open)
    second = RunLock(str(d)).acquire()
    monkeypatch.undo()
    st, own = os.stat(d / ".lock"), os.fstat(second.fd)
    assert (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino) and calls["n"] >= 2
    with pytest.raises(Exception, match="in use"):
        RunLock(str(d)).acquire()                             # a third is refused: one lock, one file
    second.release()


def test_a_rollback_never_removes_a_lock_file_another_process_made(tmp_path):
    """A rollback that removed its lock file (and OUT) may meet another process's new .lock at the same
    path before it unlocks: release(restore=True) must not remove that one (a third process could then lock
    a new file beside the second)."""
    d = tmp_path / "out"
    d.mkdir()
    first = RunLock(str(d)).acquire()                         # made the file: a rollback removes it
    os.unlink(d / ".lock")                                    # as Session._remove_created does
    second = RunLock(str(d)).acquire()                        # another process, a new file
    first.release(restore=True)
    assert (d / ".lock").exists()
    with pytest.raises(Exception, match="in use"):
        RunLock(str(d)).acquire()
    second.release()


def test_a_lock_file_that_links_to_nothing_is_refused_in_one_line(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    os.symlink(tmp_path / "nowhere", d / ".lock")
    with pytest.raises(Exception, match="symbolic link"):
        RunLock(str(d)).acquire()


@pytest.mark.parametrize("lock", ["absent", "present"])
def test_a_resume_of_a_complete_run_leaves_the_lock_file_as_it_was(run_dir, lock):
    """'nothing to continue, nothing was changed': the lock file included (it was emptied and re-dated,
    or created where there was none)."""
    if lock == "absent":
        (run_dir / ".lock").unlink()
    else:
        (run_dir / ".lock").write_bytes(b"4242\n")
        os.utime(run_dir / ".lock", ns=(1_000_000_000, 1_000_000_000))
    before, files = _lock_state(run_dir), _snapshot(run_dir)
    r = _train(SMALL + ["--out", str(run_dir), "--resume"])
    assert r.exit_code == 0 and "already complete" in r.stderr, r.output
    assert _lock_state(run_dir) == before and _snapshot(run_dir) == files
