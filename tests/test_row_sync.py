"""Rows written first and synced together (runs.RunWriter.write_row / sync_row, runs.sync_rows): what a
batch does with its runs' rows each epoch. Each row must end exactly as RunWriter.row leaves it."""
import errno
import os
import threading

from tianref import runs

from cli_checks import cli
from test_batch import _member


def _writers(root, n):
    """n RunWriters, each with its folder and one fingerprint (so every row extends a digest)."""
    out = []
    for i in range(n):
        (root / f"w{i}").mkdir(parents=True)
        out.append(runs.RunWriter(str(root / f"w{i}"), fingerprint="F"))
    return out


def test_rows_synced_together_end_as_rows_logged_one_by_one(tmp_path):
    """Three writers: rows 0 and 1 written and synced together equal, byte for byte and digest for digest,
    three writers that logged the same rows by RunWriter.row; on_first_row fires once, after the sync."""
    together, alone = _writers(tmp_path / "t", 3), _writers(tmp_path / "a", 3)
    started = []
    together[1].on_first_row = lambda: started.append(1)
    try:
        for epoch in (0, 1):
            rows = [{"epoch": epoch, "x": 0.5 + i} for i in range(3)]
            for w, r in zip(together, rows):
                w.write_row(r)
            assert started == [] or epoch == 1                      # counted only once synced
            assert runs.sync_rows(together) == [None, None, None]
            for w, r in zip(alone, rows):
                w.row(r)
        assert started == [1]
        for t, a in zip(together, alone):
            assert open(t.log.path, "rb").read() == open(a.log.path, "rb").read()
            assert t.digest == a.digest
    finally:
        for w in together + alone:
            w.close()


def _fail_sync_of(monkeypatch, bad_fd, threads=None):
    """runs._sync fails with EIO for the file descriptor bad_fd and syncs the others; threads: a list that
    receives the name of each thread a sync runs in."""
    real = runs._sync

    def sync(fd):
        if threads is not None:
            threads.append(threading.current_thread().name)
        if fd == bad_fd:
            raise OSError(errno.EIO, "Input/output error")
        real(fd)
    monkeypatch.setattr(runs, "_sync", sync)


def test_each_writer_gets_the_outcome_of_its_own_sync(tmp_path, monkeypatch):
    """Two writers, the first one's fdatasync fails: the error is the first writer's, and its digest
    stays; the second counts its row. (With three writers and the middle one failing, an outcome
    handed to the writer at the mirrored place would still land right: this case tells them apart.)"""
    ws = _writers(tmp_path, 2)
    try:
        for w in ws:
            w.row({"epoch": 0})
        digests = [w.digest for w in ws]
        _fail_sync_of(monkeypatch, ws[0].log._fd)
        for w in ws:
            w.write_row({"epoch": 1})
        errors = runs.sync_rows(ws)
        assert errors[1] is None and isinstance(errors[0], OSError) and errors[0].filename == ws[0].log.path
        assert ws[0].digest == digests[0] and ws[1].digest != digests[1]
        assert open(ws[0].log.path, "rb").read() == b'{"epoch": 0}\n'                 # cut back off
        assert open(ws[1].log.path, "rb").read() == b'{"epoch": 0}\n{"epoch": 1}\n'
    finally:
        for w in ws:
            w.close()


def test_a_row_whose_sync_fails_is_cut_back_and_the_others_are_logged(tmp_path, monkeypatch):
    """fdatasync fails (EIO) for writer 1 only: its row is cut back off and not counted (its digest stays
    that of row 0), sync_rows returns its error naming the file, writers 0 and 2 log theirs; the next row
    of writer 1 is logged normally."""
    ws = _writers(tmp_path, 3)
    try:
        for w in ws:
            w.row({"epoch": 0})
        before = [open(w.log.path, "rb").read() for w in ws]
        digest1 = ws[1].digest
        real, threads = runs._sync, []
        _fail_sync_of(monkeypatch, ws[1].log._fd, threads)
        for w in ws:
            w.write_row({"epoch": 1})
        errors = runs.sync_rows(ws)
        assert errors[0] is None and errors[2] is None
        assert isinstance(errors[1], OSError) and errors[1].errno == errno.EIO
        assert errors[1].filename == ws[1].log.path
        assert all(name.startswith("row-sync") for name in threads)         # each in the pool
        assert open(ws[1].log.path, "rb").read() == before[1] and ws[1].digest == digest1
        for i in (0, 2):
            assert open(ws[i].log.path, "rb").read() == before[i] + b'{"epoch": 1}\n'
            assert ws[i].digest != ws[1].digest
        monkeypatch.setattr(runs, "_sync", real)
        ws[1].row({"epoch": 1})
        assert ws[1].digest == ws[0].digest                                # the same two rows, the same chain
    finally:
        for w in ws:
            w.close()


def test_a_batch_writes_every_row_of_an_epoch_before_it_syncs_them(tmp_path, monkeypatch):
    """train-batch with three runs: each epoch's three rows are written, then synced (on the pool's
    threads), then the next epoch's; every run gets all its rows."""
    events, write, sync = [], runs._os_write, runs._sync
    lock = threading.Lock()

    def w(fd, data):
        with lock:
            events.append("write")
        return write(fd, data)

    def s(fd):
        with lock:
            events.append("sync")
        return sync(fd)
    monkeypatch.setattr(runs, "_os_write", w)
    monkeypatch.setattr(runs, "_sync", s)
    args = ["train-batch"]
    for i in range(3):
        args += _member(tmp_path / f"b{i}", i, epochs=4)
    r = cli(args)
    assert r.exit_code == 0, r.output
    assert events == (["write"] * 3 + ["sync"] * 3) * 5                   # rows 0..4 of three runs
    for i in range(3):
        assert len((tmp_path / f"b{i}" / "metrics.jsonl").read_text().splitlines()) == 5


def test_a_batch_whose_row_cannot_be_synced_exits_1_with_the_other_rows_logged(tmp_path, monkeypatch):
    """The sync of run b1's row 2 fails: train-batch exits 1 with a one-line error naming the file;
    runs b0 and b2 hold rows 0..2, b1 rows 0..1 (nothing torn)."""
    real = runs._sync
    calls = {"n": 0}

    def sync(fd):
        path = os.readlink(f"/proc/self/fd/{fd}")
        if path.endswith(os.path.join("b1", "metrics.jsonl")):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(errno.EIO, "Input/output error")
        real(fd)
    monkeypatch.setattr(runs, "_sync", sync)
    args = ["train-batch", "--log-dir", tmp_path / "_logs"]
    for i in range(3):
        args += _member(tmp_path / f"b{i}", i, epochs=6)
    r = cli(args)
    assert r.exit_code == 1
    assert len(r.output.strip().splitlines()) >= 1 and "Traceback" not in r.output
    n_rows = [len((tmp_path / f"b{i}" / "metrics.jsonl").read_text().splitlines()) for i in range(3)]
    assert n_rows == [3, 2, 3]


def test_a_forked_child_syncs_rows_with_its_own_threads(tmp_path):
    """The pool's threads do not survive a fork: a child that syncs rows after its parent did gets a pool
    of its own instead of waiting forever on the parent's (reproduce forks worker processes)."""
    import time
    ws = _writers(tmp_path / "parent", 2)
    for w in ws:
        w.write_row({"epoch": 0})
    assert runs.sync_rows(ws) == [None, None]                       # the parent's pool now has threads
    pid = os.fork()
    if pid == 0:                                                     # the child: exit 0 once its rows are logged
        try:
            kids = _writers(tmp_path / "child", 2)
            for w in kids:
                w.write_row({"epoch": 0})
            os._exit(0 if runs.sync_rows(kids) == [None, None] else 1)
        finally:
            os._exit(2)
    for _ in range(200):                                             # up to 10 s
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise AssertionError("the forked child hung in sync_rows")
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    for w in ws:
        w.close()


def test_the_runs_whose_last_row_is_logged_keep_their_final_state_when_another_rows_sync_fails(tmp_path,
                                                                                                 monkeypatch):
    """The sync of run b1's last row (epoch 4) fails: train-batch exits 1, b1 keeps rows 0..3 and no
    checkpoint of epoch 4; b0 and b2, whose row 4 is logged, are complete runs as train leaves them
    (final.npz and resume.npz at epoch 4, whose digest is that of their five rows, computed here from
    the log), so a sweep counts them done instead of training them again."""
    from tianref import identity
    from tianref.analysis.records import is_complete
    real, calls = runs._sync, {"n": 0}

    def sync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(os.path.join("b1", "metrics.jsonl")):
            calls["n"] += 1
            if calls["n"] == 5:
                raise OSError(errno.EIO, "Input/output error")
        real(fd)
    monkeypatch.setattr(runs, "_sync", sync)
    args = ["train-batch"]
    for i in range(3):
        args += _member(tmp_path / f"b{i}", i, epochs=4)
    r = cli(args)
    assert r.exit_code == 1 and "b1" in r.output and "Input/output error" in r.output
    assert len((tmp_path / "b1" / "metrics.jsonl").read_text().splitlines()) == 4
    assert not is_complete(tmp_path / "b1", 4) and not (tmp_path / "b1" / "checkpoints" / "final.npz").exists()
    for i in (0, 2):
        d = tmp_path / f"b{i}"
        assert is_complete(d, 4)
        lines = (d / "metrics.jsonl").read_text().splitlines()
        for name in ("final.npz", "resume.npz"):
            ck = runs.load_npz(str(d / "checkpoints" / name))
            assert int(ck["epoch"]) == 4
            assert str(ck["rows_digest"]) == identity.rows_digest(str(ck["fingerprint"]), lines)


def test_sync_rows_returns_only_once_every_sync_is_over_even_when_one_raises(tmp_path, monkeypatch):
    """One writer's sync raises an unexpected error (not OSError) at once, the other's takes 0.2 s:
    sync_rows raises it only after the slow sync has returned, so the caller closing the files (the CLI
    does in a finally) never closes an fd that a pool thread still syncs (it would sync a closed or reused fd)."""
    import pytest
    import time
    ws = _writers(tmp_path, 2)
    real, done = runs._sync, []

    def sync(fd):
        if fd == ws[0].log._fd:
            raise RuntimeError("unexpected")
        time.sleep(0.2)                     # long beside the immediate failure: without the wait it is still running
        real(fd)
        done.append(fd)
    monkeypatch.setattr(runs, "_sync", sync)
    try:
        for w in ws:
            w.write_row({"epoch": 0})
        with pytest.raises(RuntimeError):
            runs.sync_rows(ws)
        assert done == [ws[1].log._fd]
    finally:
        for w in ws:
            w.close()


def test_a_part_that_fails_while_another_is_stopped_names_its_error(tmp_path, monkeypatch):
    """train-batch --threads 2 (parts b0, b2 and b1): b1's row 2 cannot be synced, and SIGINT arrives
    at that moment (sent from the failing sync). The stop is raised (exit 1, not 130: a run failed; b0 and b2 stopped at their
    next row with their resume state saved), and b1 is reported with its own error in its log, not as a
    run that never started."""
    import signal
    real, calls = runs._sync, {"n": 0}

    def sync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(os.path.join("b1", "metrics.jsonl")):
            calls["n"] += 1
            if calls["n"] == 3:
                os.kill(os.getpid(), signal.SIGINT)           # to the main thread's handler
                raise OSError(errno.EIO, "Input/output error")
        real(fd)
    monkeypatch.setattr(runs, "_sync", sync)
    args = ["train-batch", "--threads", "2", "--log-dir", tmp_path / "_logs"]
    for i in range(3):
        args += _member(tmp_path / f"b{i}", i, epochs=60)
    r = cli(args)
    assert r.exit_code == 1
    log1 = (tmp_path / "_logs" / "b1.log").read_text()
    assert "Input/output error" in log1 and "not started" not in log1
    assert len((tmp_path / "b1" / "metrics.jsonl").read_text().splitlines()) == 2
    for i in (0, 2):
        assert "stopped by SIGINT" in (tmp_path / "_logs" / f"b{i}.log").read_text()
        assert (tmp_path / f"b{i}" / "checkpoints" / "resume.npz").is_file()


def _batch_whose_final_states_fail(tmp_path, monkeypatch, errors: dict):
    """train-batch of runs b0, b1, b2 (4 epochs) in which writing run NAME's final.npz raises
    OSError(*errors[NAME]); returns the CLI result."""
    real = runs.save_npz

    def save(path, arrays):
        for name, (code, text) in errors.items():
            if path.endswith(os.path.join(name, "checkpoints", "final.npz")):
                raise OSError(code, text, path)
        real(path, arrays)
    monkeypatch.setattr(runs, "save_npz", save)
    args = ["train-batch"]
    for i in range(3):
        args += _member(tmp_path / f"b{i}", i, epochs=4)
    return cli(args)


def test_the_other_runs_keep_their_final_state_when_one_runs_checkpoint_cannot_be_written(tmp_path,
                                                                                          monkeypatch):
    """Run b0's final.npz cannot be written (its folder made read-only, say): train-batch exits 1 naming
    that file, and b1 and b2, whose rows 0..4 are all logged, still get their final.npz and resume.npz of
    epoch 4 (the checkpoints of the runs after b0 were skipped, so a sweep would train them again)."""
    from tianref.analysis.records import is_complete
    r = _batch_whose_final_states_fail(tmp_path, monkeypatch, {"b0": (errno.EACCES, "Permission denied")})
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert os.path.join("b0", "checkpoints", "final.npz") in r.output and "Permission denied" in r.output
    assert not (tmp_path / "b0" / "checkpoints" / "final.npz").exists()
    for i in (1, 2):
        d = tmp_path / f"b{i}"
        assert is_complete(d, 4), i
        assert int(runs.load_npz(str(d / "checkpoints" / "resume.npz"))["epoch"]) == 4


def test_when_two_runs_checkpoints_cannot_be_written_the_first_error_is_reported(tmp_path, monkeypatch):
    """b0's and b2's final.npz both fail (different errors): train-batch reports the first run's error, as
    it reports the first of several failed rows, and b1 still gets its final state."""
    from tianref.analysis.records import is_complete
    r = _batch_whose_final_states_fail(tmp_path, monkeypatch, {"b0": (errno.EACCES, "Permission denied"),
                                                               "b2": (errno.ENOSPC, "No space left on device")})
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert "Permission denied" in r.output and "No space left" not in r.output, r.output
    assert is_complete(tmp_path / "b1", 4)
