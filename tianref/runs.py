"""Run directories: config.json, metrics.jsonl, checkpoints. Every file is written atomically.

Layout of a run directory
    config.json                    {"config": TrainConfig dict, "versions": ..., "command": ..., ...}
    metrics.jsonl                  one JSON object per logged row (epoch 0..E), append-only
    checkpoints/epoch_NNNNN.npz    state after NNNNN steps (W, V, split, Adam state, rng state, config)
    checkpoints/final.npz          the same at the last row
    checkpoints/resume.npz         the latest resumable state, including the rolling-update buffer

Whole files are written to a temporary name in the same folder and renamed over the target, so
a reader never sees a half-written file. Rows are appended one line at a time and flushed; a
reader ignores a torn last line and ``--resume`` truncates the log back to the resume point.

Sinks of ``train.run`` (``row(dict)``, ``checkpoint(arrays_fn, epoch, named, final)``): ``RunWriter``
writes a run directory; ``MemorySink`` keeps the rows in a list and writes nothing.
"""
from __future__ import annotations

import json
import math
import os
import tempfile

import numpy as np  # host I/O only

from tianref.errors import InputError

RESUME = "resume.npz"


def atomic_write_bytes(path: str, write) -> None:
    """Call write(fileobj) on a temp file beside ``path``, then rename it over ``path``."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)       # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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


class MetricsLog:
    """Append-only metrics.jsonl."""

    def __init__(self, path: str):
        self.path = path
        self._f = open(path, "a", encoding="utf-8")

    def append(self, row: dict) -> None:
        self._f.write(json.dumps(clean_row(row)) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_metrics(path: str) -> list:
    """Rows of metrics.jsonl; a torn final line (a crash mid-write) is ignored."""
    rows = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
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


def truncate_metrics(path: str, last_epoch: int) -> None:
    """Keep the rows with epoch <= last_epoch (atomic rewrite)."""
    rows = [r for r in read_metrics(path) if r["epoch"] <= last_epoch]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def checkpoint_path(run_dir: str, epoch=None, final=False) -> str:
    name = "final.npz" if final else (RESUME if epoch is None else f"epoch_{epoch:05d}.npz")
    return os.path.join(run_dir, "checkpoints", name)


def save_npz(path: str, arrays: dict) -> None:
    atomic_write_bytes(path, lambda f: np.savez(f, **arrays))


REQUIRED = {"W", "V", "train_idx"}


def load_npz(path: str) -> dict:
    """All arrays of an .npz as host arrays; a clear InputError if it cannot be read."""
    if not os.path.isfile(path):
        raise InputError(f"file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:
        raise InputError(f"cannot read {path} as .npz ({type(exc).__name__}: {exc})") from None


def checkpoint_config(ck: dict):
    """The config dict stored in a checkpoint, or None."""
    if "config" not in ck:
        return None
    return json.loads(str(ck["config"]))


def prepare_run_dir(out: str, resume: bool, overwrite: bool) -> None:
    """Refuse a non-empty ``out`` unless resuming or overwriting."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise InputError(f"--out {out} exists and is not a directory")
    non_empty = os.path.isdir(out) and bool(os.listdir(out))
    if resume:
        if not os.path.isfile(checkpoint_path(out)):
            raise InputError(f"--resume: no {os.path.join('checkpoints', RESUME)} in {out}")
        return
    if non_empty and not overwrite:
        raise InputError(f"--out {out} is not empty; pass --resume to continue it or --overwrite to replace it")
    if non_empty and overwrite:
        for name in ("metrics.jsonl", "config.json"):
            p = os.path.join(out, name)
            if os.path.exists(p):
                os.unlink(p)
        ck = os.path.join(out, "checkpoints")
        if os.path.isdir(ck):
            for name in os.listdir(ck):
                os.unlink(os.path.join(ck, name))
    os.makedirs(os.path.join(out, "checkpoints"), exist_ok=True)


def read_config(run_dir: str) -> dict:
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise InputError(f"{run_dir} is not a run directory (no config.json)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


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
    """The training loop's sink: rows to metrics.jsonl, states to checkpoints/."""

    def __init__(self, out: str, keep_resume_state: bool = True):
        self.out = out
        self.keep_resume_state = keep_resume_state
        self.log = MetricsLog(os.path.join(out, "metrics.jsonl"))

    def row(self, row: dict) -> None:
        self.log.append(row)

    def checkpoint(self, arrays_fn, epoch: int, named: bool, final: bool) -> None:
        """Write epoch_NNNNN.npz if ``named``, final.npz if ``final``, and always resume.npz."""
        full = arrays_fn(True)
        light = {k: v for k, v in full.items() if not k.startswith("spec_buf_")}
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
