"""Run directories: config.json, metrics.jsonl, checkpoints. Every file is written atomically.

Layout of a run directory
    config.json                    {"config": TrainConfig dict, "versions": ..., "command": ..., ...};
                                   "diverged": {"epoch": t, "non_finite": "loss" | "parameters" |
                                   "ridge solve"} once the run ended because that became non-finite (or,
                                   for the ridge solve, failed) at epoch t (record_divergence)
    metrics.jsonl                  one JSON object per logged row (epoch 0..E), append-only
    checkpoints/epoch_NNNNN.npz    state after NNNNN steps (W, V, split, Adam state, rng state, config,
                                   the run's fingerprint and the digest of rows 0..NNNNN)
    checkpoints/final.npz          the same at the last row
    checkpoints/resume.npz         the latest resumable state, including the rolling-update buffer

Whole files are written to a temporary name in the same folder, fsynced and renamed over the
target, so a reader never sees a half-written file. Rows are appended one line per write(2) and
fsynced before the row counts as logged (a batch writes its runs' rows, then syncs them together:
``sync_rows``); a write or sync that fails part-way (a full disk) is cut back to the last whole row.
A reader ignores a torn last line (a kill -9 mid-write), and ``--resume`` (tianref/resume.py) checks
the log against the resume state. Who may write a run directory and how one is replaced:
tianref/rundir.py.

Sinks of ``train.run`` (``row(dict)``, ``checkpoint(arrays_fn, epoch, named, final)``): ``RunWriter``
writes a run directory; ``MemorySink`` keeps the rows in a list and writes nothing.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np  # host I/O only

from tianref import identity
from tianref.errors import Diverged, InputError

RESUME = "resume.npz"
DIVERGED = "diverged"       # config.json's record of a run ended by a non-finite loss or parameters, or a
                            # failed ridge solve (errors.Diverged.KINDS)


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back): the bits a plain open() or mkdir
    clears, which files made private by mkstemp/mkdtemp are given back by chmod."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_write_bytes(path: str, write, mode: int = 0o666) -> None:
    """Call write(fileobj) on a temp file beside ``path``, fsync it, then rename it over ``path``.

    The file gets ``mode`` less the user's umask (what a plain open() gives for 0o666). An OSError
    names ``path`` (not the temp file); the temp file is removed.
    """
    d = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(d, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=os.path.basename(path))
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode & ~current_umask())   # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(d)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), path) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _fsync_dir(d: str) -> None:
    """Make a rename durable (best effort: some filesystems refuse fsync on a directory)."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


def atomic_write_json(path: str, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def clean_row(row: dict) -> dict:
    """JSON-safe row: Python floats, lists; undefined (NaN/None) values dropped."""
    out = {}
    for k, v in row.items():
        if v is None:
            continue
        if isinstance(v, (list, tuple, np.ndarray)):
            out[k] = [float(x) for x in v]
        elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            out[k] = int(v)
        else:
            v = float(v)
            if math.isfinite(v):
                out[k] = v
    return out


_os_write = os.write        # the one call that writes a row (tests replace it to fill the disk)
_sync = getattr(os, "fdatasync", os.fsync)    # the row's bytes and the file size; not its mtime
_SYNC_POOL = {}             # pid -> sync_rows' thread pool (a forked child makes its own: threads do not fork)


class MetricsLog:
    """Append-only metrics.jsonl: one write per row, then fsync; never a torn row on an error.
    ``append`` does both; ``write`` and ``sync`` apart let a batch sync its runs' rows together."""

    def __init__(self, path: str):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        self._start = None                      # the file's size before the row written, not yet synced

    def append(self, row: dict) -> str:
        """Append one row and make it durable; returns its line as written (without the newline)."""
        line = self.write(row)
        self.sync()
        return line

    def write(self, row: dict) -> str:
        """Write one row, not yet durable (``sync``); returns its line.  A failed write is cut back off."""
        line = json.dumps(clean_row(row))
        data = (line + "\n").encode()
        start = os.fstat(self._fd).st_size
        try:
            done = 0
            while done < len(data):
                done += _os_write(self._fd, data[done:])
        except OSError as exc:
            self._cut(start)
            raise OSError(exc.errno, exc.strerror or str(exc), self.path) from None
        self._start = start
        return line

    def sync(self) -> None:
        """Make the row written last durable; if that fails it is cut back off and OSError raised."""
        start, self._start = self._start, None
        try:
            _sync(self._fd)
        except OSError as exc:
            if start is not None:
                self._cut(start)
            raise OSError(exc.errno, exc.strerror or str(exc), self.path) from None

    def _cut(self, start: int) -> None:
        try:
            os.ftruncate(self._fd, start)       # cut the partial row back off
        except OSError:
            pass                                # a reader still drops a torn last line

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_metrics(path: str) -> list:
    """Rows of metrics.jsonl; a torn final line (a crash mid-write) is ignored."""
    rows = []
    lines = read_text(path).split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i >= len(lines) - 2:     # the last non-empty line may be torn
                break
            raise InputError(f"{path}: line {i + 1} is not valid JSON") from None
    return rows


def read_text(path: str) -> str:
    """A UTF-8 text file; InputError (one line) if it is not text."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None


def checkpoint_path(run_dir: str, epoch=None, final=False) -> str:
    name = "final.npz" if final else (RESUME if epoch is None else f"epoch_{epoch:05d}.npz")
    return os.path.join(run_dir, "checkpoints", name)


def load_checkpoint(run_dir: str, epoch) -> dict:
    """The arrays of run_dir's checkpoint at ``epoch`` (load_npz), checked to hold that epoch
    (identity.check_epoch)."""
    path = checkpoint_path(run_dir, epoch)
    ck = load_npz(path)
    identity.check_epoch(ck, path, epoch)
    return ck


def save_npz(path: str, arrays: dict) -> None:
    """The arrays as an .npz, each in C order: a .npy records its array's memory order (the data in
    that order, 'fortran_order' in its header), so the same values give the same bytes whether they
    lay in C or Fortran order (a stacked run's slice and its run alone can differ; docs/batch.md §2)."""
    atomic_write_bytes(path, lambda f: np.savez(f, **{k: np.asarray(v, order="C") for k, v in arrays.items()}))


def load_npz(path: str) -> dict:
    """All arrays of an .npz as host arrays in C order (a file re-saved in Fortran order by another tool
    holds the same values, but some CPUs' BLAS round a product of an F-ordered operand differently, so a
    run resumed from it would not continue exactly); a clear InputError if it cannot be read."""
    if not os.path.isfile(path):
        raise InputError(f"file not found: {path}")
    if not zipfile.is_zipfile(path):        # np.load would call any other file pickled data
        raise InputError(f"cannot read {path} as .npz: it is not an .npz archive (numpy.savez's zip of arrays)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: np.asarray(z[k], order="C") for k in z.files}
    except Exception as exc:
        raise InputError(f"cannot read {path} as .npz ({type(exc).__name__}: {exc})") from None


def checkpoint_config(ck: dict):
    """The config dict stored in a checkpoint, or None."""
    if "config" not in ck:
        return None
    try:
        cfg = json.loads(str(ck["config"]))
    except ValueError:
        cfg = None
    if not isinstance(cfg, dict):
        raise InputError("the checkpoint's stored 'config' is not a JSON object")
    return cfg


def read_config(run_dir: str) -> dict:
    """config.json of a run directory as a dict with a 'config' object; InputError otherwise."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise InputError(f"{run_dir} is not a run directory (no config.json)")
    try:
        meta = json.loads(read_text(path))
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise InputError(f"{path}: expected a JSON object with a 'config' object")
    return meta


def record_divergence(run_dir: str, epoch: int, what: str) -> None:
    """Record in config.json (atomically) that the run ended because its ``what`` ('loss' or
    'parameters') became non-finite at ``epoch``, or ('ridge solve') the ridge solve of the step to row
    ``epoch`` failed (errors.Diverged): its status is then 'diverged' (analysis.records.run_status) and
    --resume refuses it (tianref/resume.py)."""
    meta = read_config(run_dir)
    meta[DIVERGED] = {"epoch": int(epoch), "non_finite": what}
    atomic_write_json(os.path.join(run_dir, "config.json"), meta)


def divergence(meta: dict):
    """(epoch, 'loss', 'parameters' or 'ridge solve') of config.json's divergence record (``meta``), or None."""
    d = meta.get(DIVERGED)
    if not (isinstance(d, dict) and isinstance(d.get("epoch"), int) and not isinstance(d["epoch"], bool)
            and d.get("non_finite") in Diverged.KINDS):
        return None
    return d["epoch"], d["non_finite"]


def divergence_why(epoch: int, what: str) -> str:
    """The phrase of the reports for a divergence (``divergence``'s pair): 'diverged at epoch 2
    (non-finite loss)', '... (non-finite parameters)', 'diverged at epoch 21 (ridge solve failed)'."""
    return f"diverged at epoch {epoch} ({'ridge solve failed' if what == 'ridge solve' else 'non-finite ' + what})"


class MemorySink:
    """An in-memory sink for ``train.run``: each logged row is appended to ``self.rows`` (the dict
    itself, not a JSON-cleaned copy); ``checkpoint()`` does nothing, so no state is written."""

    def __init__(self):
        self.rows = []

    def row(self, row: dict) -> None:
        self.rows.append(row)

    def checkpoint(self, arrays_fn, epoch: int, named: bool, final: bool) -> None:
        pass


class RunWriter:
    """The training loop's sink: rows to metrics.jsonl, states to checkpoints/.

    With a ``fingerprint`` (tianref/identity.py) every row extends the row digest, and every
    checkpoint carries the fingerprint and the digest of the rows logged up to its epoch. ``digest``
    is the digest of the rows already in metrics.jsonl (a resumed run); a new run starts from F."""

    def __init__(self, out: str, keep_resume_state: bool = True, on_first_row=None,
                 fingerprint=None, digest=None):
        self.out = out
        self.keep_resume_state = keep_resume_state
        self.on_first_row = on_first_row
        self.fingerprint = fingerprint
        self.digest = digest if digest is not None else fingerprint
        self.log = MetricsLog(os.path.join(out, "metrics.jsonl"))
        self._line = None                       # the row written and not yet synced (write_row)

    def row(self, row: dict) -> None:
        """Log one row: written, synced, then counted (the digest, on_first_row)."""
        self.write_row(row)
        self.sync_row()

    def write_row(self, row: dict) -> None:
        """The first half of ``row``: the row written, not yet durable nor counted (``sync_row``;
        ``sync_rows`` syncs many runs' rows at once)."""
        self._line = self.log.write(row)

    def sync_row(self, synced=None) -> None:
        """The second half of ``row``: the row written last made durable, then counted (not counted,
        and forgotten, when the sync fails: the log has cut it back off). ``synced``: a function that
        waits for this log's sync already under way (sync_rows), in place of syncing here."""
        line, self._line = self._line, None
        (synced or self.log.sync)()
        if self.fingerprint is not None:
            self.digest = identity.chain(self.digest, line)
        if self.on_first_row is not None:       # the run has started cleanly
            cb, self.on_first_row = self.on_first_row, None
            cb()

    def checkpoint(self, arrays_fn, epoch: int, named: bool, final: bool) -> None:
        """Write epoch_NNNNN.npz if ``named``, final.npz if ``final``, and always resume.npz
        (the state after the last row logged, so its digest covers rows 0..epoch)."""
        full = arrays_fn(True)
        if self.fingerprint is not None:
            full = dict(full, fingerprint=np.str_(self.fingerprint), rows_digest=np.str_(self.digest))
        light = {k: v for k, v in full.items() if not k.startswith(("spec_buf_", "edge_C_", "edge_H_"))}
        if self.fingerprint is not None:                    # each file sealed over its own arrays
            full, light = (dict(d, **{identity.STATE_KEY: np.str_(identity.state_digest(d))})
                           for d in (full, light))
        if named:
            save_npz(checkpoint_path(self.out, epoch), light)
        if final:
            save_npz(checkpoint_path(self.out, final=True), light)
        if self.keep_resume_state or not final:
            save_npz(checkpoint_path(self.out), full)
        elif os.path.exists(checkpoint_path(self.out)):
            os.unlink(checkpoint_path(self.out))

    def close(self) -> None:
        self.log.close()


def sync_rows(writers) -> list:
    """``sync_row`` of every RunWriter in ``writers`` (each with a row written), at once: the fdatasyncs
    run in threads (each releases the interpreter lock), so the filesystem can commit them together
    where one after another each waits for its own commit; each row is then counted in the calling
    thread. Returns [None or the OSError] per writer: a row whose sync failed is cut back off and
    not counted, the others are logged whatever happened to it."""
    writers = list(writers)
    waits = [None] * len(writers)               # one writer: it syncs itself
    if len(writers) > 1:
        pid = os.getpid()                       # threads start on first use; they only wait on the disk
        pool = _SYNC_POOL.get(pid) or _SYNC_POOL.setdefault(
            pid, ThreadPoolExecutor(max_workers=16, thread_name_prefix="row-sync"))   # setdefault: one wins a race
        futures = [pool.submit(w.log.sync) for w in writers]
        wait(futures)           # every sync over before any error leaves: the caller may then close the files
        waits = [f.result for f in futures]
    errors = []
    for w, synced in zip(writers, waits):
        try:
            w.sync_row(synced)
            errors.append(None)
        except OSError as exc:
            errors.append(exc)
    return errors
