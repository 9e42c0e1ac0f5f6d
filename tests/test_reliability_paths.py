"""Paths: `--overwrite` replaces only a run, a locked or read-only run is refused before anything
changes, every output path is checked before computing, and every writer names its file on a full
disk and follows the umask.

Each test is named after one attack case (docs/reliability.md maps the guarantees to them). A refused
command must exit 2 with one line and leave the folder byte-identical (``_snapshot`` also lists the
folders, so a folder created before the refusal is seen). The permission tests need permissions to be
enforced: they are skipped as root unless root runs without CAP_DAC_OVERRIDE, e.g.
``setpriv --bounding-set=-dac_override,-dac_read_search python -m pytest ...``.
"""
import errno
import json
import os
import shutil
import stat
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from tianref.cli import main
from tianref.rundir import RunLock

SMALL = ["--M", "7", "--K", "16", "--epochs", "6", "--windows", "3"]
TINY_SWEEP = ["--eta", "0", "--act", "sqr", "--M", "7", "--K", "16", "--windows", "3", "--seeds", "0",
              "--epochs", "6"]


def _cli(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _snapshot(d: Path) -> dict:
    """Every path below d (hidden ones and the lock file included): a file -> its bytes, a folder -> None."""
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None) for p in sorted(d.rglob("*"))}


def _refused(r, fragment=None):
    """Exit 2, exactly one 'Error:' line on stderr, no traceback; returns the line."""
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("Error: "), r.stderr
    if fragment:
        assert fragment in err[0], err[0]
    return err[0]


def _enforced() -> bool:
    """True when a 0555 folder refuses writes to this process (not root with CAP_DAC_OVERRIDE)."""
    import tempfile
    d = tempfile.mkdtemp()
    try:
        os.chmod(d, 0o555)
        return not os.access(d, os.W_OK)
    finally:
        os.chmod(d, 0o755)
        os.rmdir(d)


needs_permissions = pytest.mark.skipif(not _enforced(), reason="permissions are not enforced for this user (root)")


@contextmanager
def _read_only(p: Path):
    old = stat.S_IMODE(p.stat().st_mode)
    p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        yield p
    finally:
        p.chmod(old)


def _never(what):
    def fail(*a, **k):
        raise AssertionError(f"{what} ran before the output path was checked")
    return fail


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run with a checkpoint at epoch 3 (copied by each test that changes it)."""
    d = tmp_path_factory.mktemp("finished") / "run"
    r = _cli(["train", *SMALL, "--checkpoint-epochs", "3", "--out", d])
    assert r.exit_code == 0, r.output
    return d


@pytest.fixture
def run_dir(finished, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(finished, d)
    return d


# --- --overwrite replaces only a run ------------------------------------------------------------------

def _notes_and_a_run_below(tmp_path, finished):
    d = tmp_path / "DIR"
    (d / "sub").mkdir(parents=True)
    shutil.copytree(finished, d / "sub" / "otherrun")
    (d / "notes.txt").write_text("my notes\n")
    return d, "it has no config.json"


def _a_run_plus_a_foreign_file(tmp_path, finished):
    d = tmp_path / "DIR"
    shutil.copytree(finished, d)
    (d / "notes.txt").write_text("my notes\n")
    return d, "notes.txt, which no run writes"


def _a_foreign_file_in_checkpoints(tmp_path, finished):
    d = tmp_path / "DIR"
    shutil.copytree(finished, d)
    (d / "checkpoints" / "best_model.pt").write_bytes(b"weights")
    return d, "best_model.pt, which no run writes"


def _a_config_json_that_is_not_a_run(tmp_path, finished):
    d = tmp_path / "DIR"
    d.mkdir()
    (d / "config.json").write_text('{"name": "my project"}\n')
    (d / "data.csv").write_text("1,2\n")
    return d, "expected a JSON object with a 'config' object"


def _a_checkpoint_backup_in_checkpoints(tmp_path, finished):
    d = tmp_path / "DIR"
    shutil.copytree(finished, d)
    shutil.copy(d / "checkpoints" / "final.npz", d / "checkpoints" / "final.npz.bak")   # starts like one
    return d, "final.npz.bak, which no run writes"


def _a_folder_named_like_a_checkpoint(tmp_path, finished):
    d = tmp_path / "DIR"
    shutil.copytree(finished, d)
    (d / "checkpoints" / "epoch_00099.npz").mkdir()
    (d / "checkpoints" / "epoch_00099.npz" / "notes.txt").write_text("mine\n")
    return d, "epoch_00099.npz, which no run writes"


def _checkpoints_as_a_link_to_another_folder(tmp_path, finished):
    d = tmp_path / "DIR"
    shutil.copytree(finished, d)
    shutil.move(str(d / "checkpoints"), str(tmp_path / "elsewhere"))
    (d / "checkpoints").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    return d, "checkpoints, which no run writes"


def _a_folder_named_like_a_temp_file(tmp_path, finished):
    d = tmp_path / "DIR"
    shutil.copytree(finished, d)
    (d / ".tmp-drafts").mkdir()                       # atomic writes leave temp files, never folders
    (d / ".tmp-drafts" / "notes.txt").write_text("mine\n")
    return d, ".tmp-drafts, which no run writes"


def _a_folder_named_like_a_temp_file_in_checkpoints(tmp_path, finished):
    d = tmp_path / "DIR"
    shutil.copytree(finished, d)
    (d / "checkpoints" / ".tmp-old").mkdir()
    (d / "checkpoints" / ".tmp-old" / "w.npz").write_bytes(b"mine")
    return d, ".tmp-old, which no run writes"


@pytest.mark.parametrize("make", [_notes_and_a_run_below, _a_run_plus_a_foreign_file,
                                  _a_foreign_file_in_checkpoints, _a_config_json_that_is_not_a_run,
                                  _a_checkpoint_backup_in_checkpoints, _a_folder_named_like_a_checkpoint,
                                  _checkpoints_as_a_link_to_another_folder, _a_folder_named_like_a_temp_file,
                                  _a_folder_named_like_a_temp_file_in_checkpoints],
                         ids=lambda f: f.__name__.strip("_"))
def test_overwrite_refuses_folder_that_is_not_a_run(tmp_path, finished, make):
    d, fragment = make(tmp_path, finished)
    before = _snapshot(tmp_path)
    _refused(_cli(["train", *SMALL, "--overwrite", "--out", d]), fragment)
    assert _snapshot(tmp_path) == before              # nothing moved aside, created or deleted


def test_overwrite_replaces_a_run_with_its_leftovers(run_dir):
    """What a run itself leaves (the lock, temp files, named checkpoints) does not make it foreign."""
    (run_dir / ".tmp-abcconfig.json").write_bytes(b"half")
    (run_dir / "checkpoints" / ".tmp-xyzresume.npz").write_bytes(b"half")
    r = _cli(["train", *SMALL, "--seed", "4", "--overwrite", "--out", run_dir])
    assert r.exit_code == 0, r.output
    assert json.loads((run_dir / "config.json").read_text())["config"]["seed"] == 4
    assert not (run_dir / "checkpoints" / "epoch_00003.npz").exists()


@pytest.mark.parametrize("where, out", [("run/checkpoints", ".."), (".", "run/checkpoints/..")],
                         ids=["from-checkpoints", "through-checkpoints"])
def test_overwrite_through_a_folder_inside_the_run_is_refused(run_dir, monkeypatch, where, out):
    """`train --overwrite --out ..` run from OUT/checkpoints, or `--out run/checkpoints/..`: moving the old
    run aside moves checkpoints/ with it, so the path then names the aside folder, or nothing. It split
    the run (metrics.jsonl and checkpoints/ aside, config.json in OUT) and exited 1; it must be refused
    before anything moves."""
    monkeypatch.chdir(run_dir.parent / where)
    before = _snapshot(run_dir.parent)
    _refused(_cli(["train", *SMALL, "--seed", "4", "--overwrite", "--out", out]), "lies inside")
    assert _snapshot(run_dir.parent) == before


def test_overwrite_of_the_current_folder_replaces_it(run_dir, monkeypatch):
    """`--out .` from inside the run names OUT itself, which stays in place: the run is replaced."""
    monkeypatch.chdir(run_dir)
    r = _cli(["train", *SMALL, "--seed", "4", "--overwrite", "--out", "."])
    assert r.exit_code == 0, r.output
    assert json.loads((run_dir / "config.json").read_text())["config"]["seed"] == 4
    assert sorted(p.name for p in run_dir.parent.iterdir()) == [run_dir.name]     # nothing left aside


# --- one writer: the holder's pid first ---------------------------------------------------------------

@pytest.mark.parametrize("mode", [[], ["--overwrite"], ["--resume", "--epochs", "8"]],
                         ids=["plain", "overwrite", "resume"])
def test_second_writer_names_holder_pid(run_dir, mode):
    """A run folder in use: every kind of start is refused naming the holder, not 'not empty'."""
    before = _snapshot(run_dir.parent)
    with RunLock(str(run_dir)):
        r = _cli(["train", *([] if "--resume" in mode else SMALL), *mode, "--out", run_dir])
        before[str(Path(run_dir.name) / ".lock")] = (run_dir / ".lock").read_bytes()   # holds our pid now
        _refused(r, f"in use by process {os.getpid()}")
        assert _snapshot(run_dir.parent) == before


def test_second_writer_on_a_locked_folder_that_is_not_a_run_names_holder_pid(tmp_path):
    d = tmp_path / "DIR"
    d.mkdir()
    (d / "notes.txt").write_text("x")
    with RunLock(str(d)):
        _refused(_cli(["train", *SMALL, "--overwrite", "--out", d]), f"in use by process {os.getpid()}")
    assert (d / "notes.txt").read_text() == "x"


def _hold_lock_without_pid(d: Path):
    """A writer that holds OUT/.lock but has not written its pid yet (the moment after flock)."""
    import fcntl
    fd = os.open(d / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


@pytest.mark.parametrize("mode", [[], ["--overwrite"]], ids=["plain", "overwrite"])
def test_second_writer_on_a_locked_folder_without_a_pid_is_told_it_is_in_use(run_dir, mode):
    """The holder is unknown (an empty lock file): 'in use by another process', not 'not empty' or a
    refusal of the folder, and no made-up pid."""
    fd = _hold_lock_without_pid(run_dir)
    try:
        before = _snapshot(run_dir.parent)
        line = _refused(_cli(["train", *SMALL, *mode, "--out", run_dir]), "is in use by another process")
        assert _snapshot(run_dir.parent) == before
    finally:
        os.close(fd)
    assert "unknown" not in line


def test_a_stale_longer_pid_in_the_lock_file_is_replaced_whole(run_dir):
    """kill -9 leaves the old holder's pid in OUT/.lock; the next holder's pid replaces it entirely, so a
    second writer is told the live pid (not a mix of both, which reads as no pid at all)."""
    (run_dir / ".lock").write_text("987654321\n")
    with RunLock(str(run_dir)):
        assert (run_dir / ".lock").read_text() == f"{os.getpid()}\n"
        _refused(_cli(["train", "--resume", "--epochs", "8", "--out", run_dir]), f"in use by process {os.getpid()}")


def test_a_start_that_loses_the_race_for_the_folder_it_created_leaves_the_winners_lock(tmp_path, monkeypatch):
    """OUT did not exist; this start created it, but another writer locked it first (simulated: it takes
    the lock just before ours). The refusal must not delete the winner's lock file or folder."""
    from tianref import rundir
    out = tmp_path / "run"
    real, held = rundir.RunLock.acquire, []

    def acquire(self):
        held.append(_hold_lock_without_pid(Path(self.out)))        # the other writer wins the flock
        return real(self)
    monkeypatch.setattr(rundir.RunLock, "acquire", acquire)
    try:
        _refused(_cli(["train", *SMALL, "--out", out]), "in use by another process")
        assert (out / ".lock").is_file()
    finally:
        for fd in held:
            os.close(fd)


def test_overwrite_checks_the_folder_again_once_it_holds_the_lock(run_dir, monkeypatch):
    """A file put into OUT after the first check, before the lock is taken (simulated: written just
    before the flock), is seen by the second check: refused, and the file is not moved or deleted."""
    from tianref import rundir
    real = rundir.RunLock.acquire

    def acquire(self):
        (Path(self.out) / "notes.txt").write_text("written meanwhile\n")
        return real(self)
    monkeypatch.setattr(rundir.RunLock, "acquire", acquire)
    before = _snapshot(run_dir.parent)
    _refused(_cli(["train", *SMALL, "--seed", "3", "--overwrite", "--out", run_dir]), "notes.txt, which no run writes")
    before[str(Path(run_dir.name) / "notes.txt")] = b"written meanwhile\n"
    assert _snapshot(run_dir.parent) == before


@pytest.mark.parametrize("before", ["", "987654321\n"], ids=["empty", "a-dead-holder"])
def test_a_holder_that_writes_its_pid_a_moment_after_locking_is_named(run_dir, before):
    """Two starts a few ms apart: the winner has the flock but has not yet written its pid (the file is
    empty, or still names an earlier holder that is gone). The loser waits for the pid and names the live
    holder, not 'another process' (11 of 100 such races did) nor the dead one."""
    import threading
    fd = _hold_lock_without_pid(run_dir)
    os.pwrite(fd, before.encode(), 0)
    t = threading.Timer(0.05, lambda: (os.ftruncate(fd, 0), os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)))
    t.start()
    try:
        _refused(_cli(["train", *SMALL, "--out", run_dir]), f"is in use by process {os.getpid()} ")
    finally:
        t.join()
        os.close(fd)


def test_a_resume_racing_an_overwrite_names_the_holder_not_the_emptied_folder(run_dir):
    """An --overwrite holding OUT has moved the old run aside (no config.json yet): a --resume started
    then is told who holds OUT (it said 'is not a run directory (no config.json)'), folder untouched."""
    fd = _hold_lock_without_pid(run_dir)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    try:
        for name in os.listdir(run_dir):
            if name != ".lock":
                p = run_dir / name
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        before = _snapshot(run_dir.parent)
        _refused(_cli(["train", "--resume", "--out", run_dir]), f"is in use by process {os.getpid()} ")
        assert _snapshot(run_dir.parent) == before
    finally:
        os.close(fd)
    _refused(_cli(["train", "--resume", "--out", run_dir]), "is not a run directory (no config.json)")


def test_in_use_names_a_pid_only_when_it_is_one():
    from tianref.rundir import in_use
    assert "in use by process 4321 " in str(in_use("o", 4321))
    for pid in (None, 0, "unknown"):
        assert "in use by another process " in str(in_use("o", pid)), pid


def test_a_folder_holding_checkpoints_only_is_not_empty(tmp_path, finished):
    """A start without --overwrite into a folder whose checkpoints/ holds a state is refused."""
    from tianref.rundir import is_empty
    d = tmp_path / "run"
    (d / "checkpoints").mkdir(parents=True)
    (d / "checkpoints" / ".tmp-x").write_bytes(b"half")
    (d / ".lock").write_text("")
    assert is_empty(str(d))                              # leftovers only: empty
    shutil.copy(finished / "checkpoints" / "final.npz", d / "checkpoints" / "final.npz")
    assert not is_empty(str(d))
    before = _snapshot(tmp_path)
    _refused(_cli(["train", *SMALL, "--out", d]), "is not empty")
    assert _snapshot(tmp_path) == before


# --- --resume of a read-only run ------------------------------------------------------------------------

@needs_permissions
@pytest.mark.parametrize("target", ["metrics.jsonl", "config.json", "checkpoints", "."],
                         ids=["metrics", "config", "checkpoints", "out"])
def test_resume_with_read_only_metrics_changes_nothing(run_dir, target):
    p = run_dir / target
    before = _snapshot(run_dir)
    with _read_only(p):
        _refused(_cli(["train", "--resume", "--epochs", "8", "--out", run_dir]), "is a read-only")
    assert _snapshot(run_dir) == before              # config.json not rewritten, no row dropped


@pytest.mark.parametrize("target", ["metrics.jsonl", "config.json", "checkpoints", "."],
                         ids=["metrics", "config", "checkpoints", "out"])
def test_resume_with_a_path_denied_to_writers_changes_nothing_and_unlocks(run_dir, target, monkeypatch):
    """The read-only case above, for any user (root included): os.access denies write access to one
    path, as the kernel would for a read-only file or folder. The refusal names it, changes nothing and
    releases the lock (a later start in this process is not told the folder is in use)."""
    from tianref import rundir
    deny = os.path.normpath(run_dir / target)
    real = os.access

    def access(path, mode, *a, **k):
        if os.path.normpath(path) == deny and mode & os.W_OK:
            return False
        return real(path, mode, *a, **k)
    monkeypatch.setattr(rundir.os, "access", access)
    before = _snapshot(run_dir)
    line = _refused(_cli(["train", "--resume", "--epochs", "8", "--out", run_dir]), "is a read-only")
    assert f"--resume: {deny} is a read-only" in line.replace(f"{run_dir}{os.sep}.", str(run_dir))
    assert _snapshot(run_dir) == before
    assert rundir.lock_holder(str(run_dir)) is None


def test_output_file_checks(tmp_path):
    """check_output_file: a folder is refused; a missing folder is created by a writer that makes its
    parents, and refused (naming it) for one that does not."""
    from tianref.errors import InputError
    from tianref.rundir import check_output_file
    with pytest.raises(InputError, match="is a directory"):
        check_output_file(tmp_path, "--plot")
    new = tmp_path / "new" / "deeper" / "e.png"
    assert check_output_file(new, "--plot") == str(new)
    with pytest.raises(InputError, match="directory .*new/deeper does not exist"):
        check_output_file(new, "--json", make_parents=False)
    assert not (tmp_path / "new").exists()                     # a check creates nothing


# --- output paths checked before computing ---------------------------------------------------------------

@pytest.fixture
def afile(tmp_path):
    f = tmp_path / "afile"
    f.write_text("a regular file\n")
    return f


def test_summarize_md_below_a_file_refused_before_computing(run_dir, afile, monkeypatch):
    monkeypatch.setattr("tianref.cli.analysis.read_tree", _never("summarize"))
    for opt in ("--md", "--json"):
        _refused(_cli(["summarize", run_dir, opt, afile / "x.md"]), "is not a directory")


@needs_permissions
def test_summarize_json_into_a_read_only_folder_is_exit_2_before_computing(run_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("tianref.cli.analysis.read_tree", _never("summarize"))
    ro = tmp_path / "ro"
    ro.mkdir()
    with _read_only(ro):
        for opt in ("--json", "--md"):
            _refused(_cli(["summarize", run_dir, opt, ro / "s.out"]), "cannot write in")
            _refused(_cli(["summarize", run_dir, opt, ro / "absent" / "s.out"]), "cannot write in")
    assert list(ro.iterdir()) == []


@needs_permissions
@pytest.mark.parametrize("sub", ["figs", ""], ids=["new-folder-in-it", "the-folder-itself"])
def test_plot_out_into_a_read_only_folder_refused_before_computing(run_dir, tmp_path, monkeypatch, sub):
    monkeypatch.setattr("tianref.cli.analysis.read_tree", _never("plot"))
    ro = tmp_path / "ro"
    ro.mkdir()
    with _read_only(ro):
        _refused(_cli(["plot", run_dir, "--out", ro / sub if sub else ro]), "cannot write in")
    assert list(ro.iterdir()) == []


def test_plot_out_below_a_file_refused_before_computing(run_dir, afile, monkeypatch):
    monkeypatch.setattr("tianref.cli.analysis.read_tree", _never("plot"))
    _refused(_cli(["plot", run_dir, "--out", afile / "figs"]), "is not a directory")
    _refused(_cli(["plot", run_dir, "--out", afile]), "is a file")        # click's own check


def test_plot_with_a_folder_where_a_figure_goes_is_refused_before_drawing(run_dir, tmp_path, monkeypatch):
    """out/top5.png a folder: plot read the runs, wrote headline.png, then failed on top5.png (exit 1, a
    partial output). Each figure's file is checked with --out first; --windows too."""
    monkeypatch.setattr("tianref.cli.analysis.read_tree", _never("plot"))
    (tmp_path / "figs" / "top5.png").mkdir(parents=True)
    before = _snapshot(tmp_path)
    _refused(_cli(["plot", run_dir, "--out", tmp_path / "figs"]), "top5.png is a directory")
    _refused(_cli(["plot", run_dir, "--out", tmp_path / "other", "--windows", "0"]), "--windows")
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("opt", ["--plot", "--json"])
def test_edge_plot_below_a_file_refused_before_computing(run_dir, afile, monkeypatch, opt):
    monkeypatch.setattr("tianref.analysis.edge_runs.load_run", _never("edge"))
    monkeypatch.setattr("tianref.analysis.edge_runs.probe_run", _never("edge"))
    _refused(_cli(["edge", "--run", run_dir, "--at-epochs", "3", "--n-random", "0", opt, afile / "x.png"]),
             "is not a directory")


@pytest.mark.parametrize("name, why", [("new/", "ends with '/'"), ("sub/metrics.jsonl", "marks its folder as a run")])
def test_an_output_file_named_as_a_folder_or_as_a_runs_log_is_refused_before_computing(run_dir, tmp_path, name, why):
    """--json new/ passed the checks (abspath drops the slash): thm6 and edge computed, then failed with exit 1,
    and summarize wrote a *file* named new. An output named metrics.jsonl made its folder a run for summarize
    and plot, so the tree no longer read ('no config.json'). Both refused up front, nothing written."""
    out = tmp_path / "o"
    out.mkdir()
    target = str(out / name) + ("/" if name.endswith("/") else "")
    before = _snapshot(tmp_path)
    for args in (["summarize", run_dir, "--json", target], ["summarize", run_dir, "--md", target],
                 ["thm6", "--run", run_dir, "--at-epochs", "3", "--json", target],
                 ["edge", "--run", run_dir, "--at-epochs", "3", "--n-random", "0", "--json", target]):
        _refused(_cli(args), why)
    assert _snapshot(tmp_path) == before


@needs_permissions
@pytest.mark.parametrize("cmd, opt", [("edge", "--json"), ("edge", "--plot"), ("thm6", "--json"),
                                      ("thm6", "--plot")])
def test_json_into_a_read_only_folder_is_exit_2_before_computing(run_dir, tmp_path, monkeypatch, cmd, opt):
    monkeypatch.setattr("tianref.analysis.edge_runs.load_run", _never("edge"))
    monkeypatch.setattr("tianref.cli.thm6._sources", _never("thm6"))
    ro = tmp_path / "ro"
    ro.mkdir()
    with _read_only(ro):
        _refused(_cli([cmd, "--run", run_dir, "--at-epochs", "3", opt, ro / "x.out"]), "cannot write in")
    assert list(ro.iterdir()) == []


@pytest.mark.parametrize("cmd, first, second", [("summarize", "--json", "--md"), ("thm6", "--json", "--plot"),
                                                 ("edge", "--json", "--plot")])
def test_two_outputs_naming_one_file_are_refused_before_computing(run_dir, tmp_path, monkeypatch, cmd, first,
                                                                  second):
    """The second write replaced the first, and the command reported both as written (exit 0)."""
    monkeypatch.setattr("tianref.cli.analysis.read_tree", _never("summarize"))
    monkeypatch.setattr("tianref.analysis.edge_runs.load_run", _never("edge"))
    monkeypatch.setattr("tianref.cli.thm6._sources", _never("thm6"))
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    args = [cmd, run_dir] if cmd == "summarize" else [cmd, "--run", run_dir, "--at-epochs", "3"]
    before = _snapshot(tmp_path)
    for a, b in (("same.x", "same.x"), ("same.x", "./sub/../same.x"), ("same.x", out / "same.x")):
        _refused(_cli([*args, first, a, second, b]), f"{first} and {second} name the same file")
    assert _snapshot(tmp_path) == before


def test_sweep_slurm_below_a_file_creates_nothing(tmp_path, afile, monkeypatch):
    monkeypatch.setattr("tianref.cli.sweep.check_jobs", _never("sweep validation"))
    before = _snapshot(tmp_path)
    _refused(_cli(["sweep", tmp_path / "root", *TINY_SWEEP, "--slurm", afile / "x.sh"]), "is not a directory")
    _refused(_cli(["reproduce", "--section", "ridge", "--scale", "smoke", "--root", tmp_path / "rr",
                   "--slurm", afile / "x.sh"]), "is not a directory")
    assert _snapshot(tmp_path) == before


@needs_permissions
def test_sweep_and_reproduce_into_a_read_only_folder_create_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr("tianref.cli.sweep.check_jobs", _never("sweep validation"))
    ro = tmp_path / "ro"
    ro.mkdir()
    with _read_only(ro):
        _refused(_cli(["sweep", ro / "root", *TINY_SWEEP]), "cannot write in")
        _refused(_cli(["sweep", tmp_path / "root", *TINY_SWEEP, "--slurm", ro / "x.sh"]), "cannot write in")
        _refused(_cli(["reproduce", "--section", "ridge", "--scale", "smoke", "--root", ro / "rr"]),
                 "cannot write in")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ro"] and list(ro.iterdir()) == []


@pytest.mark.parametrize("below", ["", "checkpoints", "new/deeper"])
def test_sweep_and_reproduce_root_in_a_run_directory_is_refused(run_dir, below):
    # runs below a run would be written into it and never found by summarize (a run does not nest runs)
    before = _snapshot(run_dir)
    root = run_dir / below if below else run_dir
    for plan in ([], ["--plan"]):
        _refused(_cli(["sweep", root, *TINY_SWEEP, *plan]), "a run directory")
        _refused(_cli(["reproduce", "--section", "ridge", "--scale", "smoke", "--root", root, *plan]),
                 "a run directory")
    assert _snapshot(run_dir) == before


@pytest.mark.parametrize("mark", ["summary", "logs"])
def test_reproduce_root_at_a_section_folder_is_refused_naming_the_tree(tmp_path, mark):
    """--root TREE/ridge (the folder of a section already run: its summary.json or a run's log) would put the
    section one level deeper, TREE/ridge/ridge, training every run anew beside the old ones: refused."""
    sec = tmp_path / "tree" / "ridge"
    sec.mkdir(parents=True)
    if mark == "summary":
        (sec / "summary.json").write_text(json.dumps({"section": "ridge", "scale": {"name": "smoke"}}))
    else:                                                   # a run's log (a section's folder before its summary)
        (sec / "_logs").mkdir()
        (sec / "_logs" / "ridge_seed0.log").write_text("")
    before = _snapshot(tmp_path)
    for plan in ([], ["--plan"]):
        line = _refused(_cli(["reproduce", "--section", "ridge", "--scale", "smoke", "--root", sec, *plan]),
                        "section's folder")
        assert f"--root {tmp_path / 'tree'}" in line
    assert _snapshot(tmp_path) == before
    link = tmp_path / "mine"
    link.symlink_to(sec)
    cwd = os.getcwd()
    try:
        os.chdir(sec)                                      # '.' or a link to it: the same folder
        for root in (".", link):
            _refused(_cli(["reproduce", "--section", "ridge", "--scale", "smoke", "--root", root, "--plan"]),
                     "section's folder")
    finally:
        os.chdir(cwd)
    link.unlink()
    (sec / "summary.json").unlink(missing_ok=True)         # a folder merely named for a section is a root,
    if mark == "logs":                                     # a sweep's _logs/ in it too
        (sec / "_logs" / "ridge_seed0.log").unlink()
        (sec / "_logs" / "mine_eta0_seed0.log").write_text("")
    assert _cli(["reproduce", "--section", "ridge", "--scale", "smoke", "--root", sec, "--plan"]).exit_code == 0


@pytest.mark.parametrize("root_of", [lambda st: st / "smoke",                       # ROOT/<section> IS the copy
                                     lambda st: st / "smoke" / "ridge" / "tree",     # inside the copy
                                     lambda st: st])                                  # holds ... /smoke/ridge
def test_reproduce_store_over_its_own_run_folders_is_refused(tmp_path, monkeypatch, root_of):
    """--store replaces STORE_TO/<scale>/<section> whole: where that is (or holds, or lies in) the section's
    run folder ROOT/<section>, storing deleted every run and log of the section, exit 0. Refused first."""
    monkeypatch.setattr("tianref.cli.sweep.check_jobs", _never("reproduce validation"))
    st = tmp_path / "st"
    root = root_of(st)
    if root == st:
        root = st / "smoke" / "ridge"                        # its ridge/ section folder: st/smoke/ridge/ridge
    (root / "ridge" / "run").mkdir(parents=True)
    (root / "ridge" / "run" / "metrics.jsonl").write_text("{}\n")
    before = _snapshot(tmp_path)
    _refused(_cli(["reproduce", "--section", "ridge", "--scale", "smoke", "--root", root, "--store",
                   "--store-to", st]), "would replace the folder of the section's runs")
    assert _snapshot(tmp_path) == before


def test_reproduce_store_inside_a_sections_run_folder_is_refused_saying_so(tmp_path, monkeypatch):
    """--store-to ROOT/ridge/st puts the stored copy inside the section's run folder (no run deleted):
    refused, saying where it would lie (it said the runs would be deleted), nothing written."""
    monkeypatch.setattr("tianref.cli.sweep.check_jobs", _never("reproduce validation"))
    root = tmp_path / "r"
    (root / "ridge").mkdir(parents=True)
    before = _snapshot(tmp_path)
    line = _refused(_cli(["reproduce", "--section", "ridge", "--scale", "smoke", "--root", root, "--store",
                          "--store-to", root / "ridge" / "st"]), "would lie inside the folder of the section's runs")
    assert "deleting" not in line
    assert _snapshot(tmp_path) == before


def test_reproduce_store_to_below_a_file_refused_before_computing(tmp_path, afile, monkeypatch):
    monkeypatch.setattr("tianref.cli.sweep.check_jobs", _never("reproduce validation"))
    before = _snapshot(tmp_path)
    _refused(_cli(["reproduce", "--section", "ridge", "--scale", "smoke", "--root", tmp_path / "rr",
                   "--store", "--store-to", afile / "store"]), "is not a directory")
    _refused(_cli(["reproduce", "--section", "ridge", "--scale", "smoke", "--rerender",
                   "--store-to", afile / "store"]), "is not a directory")
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("section", ["ridge", "all"])
def test_reproduce_no_train_on_an_empty_root_creates_nothing(tmp_path, section):
    root = tmp_path / "root"
    root.mkdir()
    _refused(_cli(["reproduce", "--section", section, "--scale", "smoke", "--no-train", "--root", root]))
    assert list(root.iterdir()) == []


# --- durability: fsync, full disks, umask ---------------------------------------------------------------

def _fd_path(fd) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_summarize_output_is_fsynced_before_it_is_renamed(run_dir, tmp_path, monkeypatch):
    """--json and --md: the temp file's bytes are fsync'd before it is renamed over the target, and the
    folder is fsync'd after (the rename itself is durable)."""
    events, real_fsync, real_replace = [], os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", _fd_path(fd)))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.fspath(src), os.fspath(dst)))
        return real_replace(src, dst)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "o"
    out.mkdir()
    r = _cli(["summarize", run_dir, "--json", out / "s.json", "--md", out / "s.md"])
    assert r.exit_code == 0, r.output
    for name in ("s.json", "s.md"):
        i = next(k for k, e in enumerate(events) if e[0] == "replace" and e[2] == str(out / name))
        tmp = events[i][1]
        assert os.path.basename(tmp).startswith(".tmp-") and os.path.dirname(tmp) == str(out)
        assert ("fsync", tmp) in events[:i]                      # the data, before the rename
        assert ("fsync", str(out)) in events[i + 1:]             # the folder entry, after it
    assert json.loads((out / "s.json").read_text())


@pytest.fixture
def disk_full_at(monkeypatch):
    """disk_full_at(name): the fsync of any file whose name ends with ``name`` fails with ENOSPC and
    no file name (as the kernel reports it), so the message must add the path itself."""
    real = os.fsync

    def arm(name):
        def fsync(fd):
            if _fd_path(fd).endswith(name):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(fd)
        monkeypatch.setattr(os, "fsync", fsync)
    return arm


def _one_line_exit_1(r):
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and isinstance(r.exception, SystemExit)
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("Error: ")]
    assert len(err) == 1, r.stderr
    return err[0]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
@pytest.mark.parametrize("writer", ["config", "checkpoint", "summary-json", "summary-md", "plot", "edge-plot",
                                    "edge-json", "thm6-plot", "slurm"])
def test_disk_full_message_names_the_path(run_dir, tmp_path, disk_full_at, writer):
    o = tmp_path / "o"
    o.mkdir()
    args, target = {
        "config": (["train", *SMALL, "--out", o / "new"], o / "new" / "config.json"),
        "checkpoint": (["train", *SMALL, "--out", o / "new"], o / "new" / "checkpoints" / "resume.npz"),
        "summary-json": (["summarize", run_dir, "--json", o / "s.json"], o / "s.json"),
        "summary-md": (["summarize", run_dir, "--md", o / "s.md"], o / "s.md"),
        "plot": (["plot", run_dir, "--out", o, "--figure", "headline", "--act", "sqr"], o / "headline.png"),
        "edge-plot": (["edge", "--run", run_dir, "--at-epochs", "3", "--n-random", "0", "--plot", o / "e.png"],
                      o / "e.png"),
        "edge-json": (["edge", "--run", run_dir, "--at-epochs", "3", "--n-random", "0", "--json", o / "e.json"],
                      o / "e.json"),
        "thm6-plot": (["thm6", "--run", run_dir, "--at-epochs", "3", "--plot", o / "t.png"], o / "t.png"),
        "slurm": (["sweep", tmp_path / "root", *TINY_SWEEP, "--slurm", o / "job.sh"], o / "job.sh"),
    }[writer]
    disk_full_at(target.name)
    line = _one_line_exit_1(_cli(args))
    assert line == f"Error: {target}: No space left on device"
    assert not list(o.rglob(".tmp-*"))                          # no temp file left behind


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_disk_full_in_a_reproduce_report_names_the_path(tmp_path, disk_full_at):
    disk_full_at("report.md")
    root = tmp_path / "rep"
    line = _one_line_exit_1(_cli(["reproduce", "--section", "ridge", "--scale", "smoke", "--root", root,
                                  "--jobs", "1"]))
    assert line == f"Error: {root / 'ridge' / 'report.md'}: No space left on device"


@pytest.mark.parametrize("umask, want", [(0o022, 0o644), (0o077, 0o600)])
def test_every_figure_follows_the_umask(run_dir, tmp_path, umask, want):
    """plot, edge --plot/--json, thm6 --plot/--json and the SLURM script (owner-executable) get the
    mode a plain open() gives under the umask; reproduce's figures: tests/test_file_modes.py."""
    o = tmp_path / "o"
    old = os.umask(umask)
    try:
        for args in (["plot", run_dir, "--out", o / "figs", "--figure", "headline"],
                     ["edge", "--run", run_dir, "--at-epochs", "3", "--n-random", "0", "--plot", o / "e.png",
                      "--json", o / "e.json"],
                     ["thm6", "--run", run_dir, "--at-epochs", "3", "--plot", o / "t.png", "--json", o / "t.json"],
                     ["sweep", tmp_path / "root", *TINY_SWEEP, "--slurm", o / "job.sh"]):
            r = _cli(args)
            assert r.exit_code == 0, r.output
    finally:
        os.umask(old)
    modes = {str(p.relative_to(o)): stat.S_IMODE(p.stat().st_mode) for p in o.rglob("*") if p.is_file()}
    assert {"figs/headline.png", "e.png", "e.json", "t.png", "t.json", "job.sh"} <= set(modes)
    want_of = {"job.sh": want | stat.S_IXUSR}
    assert {k: oct(v) for k, v in modes.items() if v != want_of.get(k, want)} == {}


def _no_bytes_allowed():
    """preexec_fn: every write past 0 bytes fails with EFBIG (a disk full from the first byte)."""
    import resource
    import signal as _signal
    _signal.signal(_signal.SIGXFSZ, _signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_disk_full_from_the_first_byte_names_the_path(tmp_path, command):
    """The first byte a command writes is train's pid into OUT/.lock, or sweep's command line into its
    job log: with no room even for that, the one-line message (exit 1) names the file."""
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "x"
    if command == "train":
        args = ["train", "--M", "7", "--K", "16", "--epochs", "2", "--out", str(out)]
        want = out / ".lock"
    else:
        args = ["sweep", str(out), "--M", "7", "--K", "16", "--epochs", "2", "--seeds", "0", "--eta", "0"]
        want = out / "_logs"
    r = subprocess.run([sys.executable, str(root / "cli.py")] + args, cwd=root, capture_output=True,
                       text=True, preexec_fn=_no_bytes_allowed, timeout=120)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and str(want) in lines[-1], r.stderr


@pytest.mark.parametrize("back_fails", [False, True], ids=["put-back", "put-back-fails"])
def test_overwrite_that_cannot_move_the_run_aside_changes_nothing_or_says_where_it_is(run_dir, monkeypatch,
                                                                                    back_fails):
    """The second rename of the move aside fails (simulated EXDEV): every moved entry goes back and the
    refusal says nothing changed (exit 2). If putting back fails too, the old run is split between OUT and
    the aside folder: one line, exit 1, naming the aside folder and what lies there (it was a bare OSError)."""
    real = os.rename
    calls = []

    def rename(src, dst):
        calls.append((src, dst))
        aside = ".replaced-" in str(dst)
        if aside and sum(".replaced-" in str(d) for _, d in calls) == 2:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        if back_fails and ".replaced-" in str(src):
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)
    monkeypatch.setattr(os, "rename", rename)
    before = _snapshot(run_dir.parent)
    r = _cli(["train", *SMALL, "--seed", "4", "--overwrite", "--out", run_dir])
    monkeypatch.setattr(os, "rename", real)
    if not back_fails:
        _refused(r, "nothing was changed")
        assert _snapshot(run_dir.parent) == before
        return
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    aside = [p for p in run_dir.parent.iterdir() if ".replaced-" in p.name]
    assert len(err) == 1 and len(aside) == 1 and str(aside[0]) in err[0] and "by hand" in err[0], r.stderr
    moved = sorted(p.name for p in aside[0].iterdir())
    assert moved and all(name in err[0] for name in moved)
    whole = {str(Path(k).relative_to(run_dir.name)) if k.startswith(run_dir.name + os.sep) else k: v
             for k, v in before.items() if k != run_dir.name}
    now = {}                                          # the old run's files, wherever they are: all there
    for base in (run_dir, aside[0]):
        now.update({str(p.relative_to(base)): (p.read_bytes() if p.is_file() else None)
                    for p in sorted(base.rglob("*"))})
    assert {k: v for k, v in whole.items() if not k.startswith(".lock")} == \
        {k: v for k, v in now.items() if not k.startswith(".lock")}


def test_overwrite_that_puts_the_whole_run_back_says_nothing_changed_even_if_its_empty_aside_folder_stays(
        run_dir, monkeypatch):
    """The move aside fails (simulated EXDEV at the second entry) and every entry goes back, but the now
    empty aside folder cannot be removed (simulated EBUSY): the old run is whole in OUT, so the refusal
    is the plain one (exit 2, 'nothing was changed'), not a claim that the run is split (it said so,
    exit 1, with an empty list of entries 'of it' in the aside folder)."""
    real_rename, real_rmdir = os.rename, os.rmdir
    calls = []

    def rename(src, dst):
        calls.append(dst)
        if ".replaced-" in str(dst) and sum(".replaced-" in str(d) for d in calls) == 2:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(src, dst)

    def rmdir(path, *a, **k):
        if ".replaced-" in str(path):
            raise OSError(errno.EBUSY, "Device or resource busy")
        return real_rmdir(path, *a, **k)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "rmdir", rmdir)
    before = _snapshot(run_dir)
    r = _cli(["train", *SMALL, "--seed", "4", "--overwrite", "--out", run_dir])
    monkeypatch.setattr(os, "rename", real_rename)
    monkeypatch.setattr(os, "rmdir", real_rmdir)
    _refused(r, "nothing was changed")
    assert _snapshot(run_dir) == before                                   # the old run, whole, in OUT


def test_reproduce_store_with_plan_or_slurm_is_refused(tmp_path):
    """--store copies what the command computes; with --plan or --slurm it computed nothing and --store
    was silently ignored (exit 0)."""
    from click.testing import CliRunner
    from tianref.cli import main
    for extra in (["--plan"], ["--slurm", str(tmp_path / "job.sh")]):
        r = CliRunner().invoke(main, ["reproduce", "--scale", "smoke", "--section", "headline", "--store",
                                      "--store-to", str(tmp_path / "st"), "--root", str(tmp_path / "rp"), *extra])
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and "--store" in lines[0], r.output
        assert not any(tmp_path.iterdir())
