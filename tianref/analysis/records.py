"""Read run directories back into arrays: the one door from run records to the analysis.

Reference: the run-record layout written by the training engine (``tianref/runs.py``) and the
logged fields of the paper's code (``docs/paper-protocol.md`` §3, "Loop and logging").

A run directory holds

    config.json     {"config": {M, K, n_train, eta, lr, epochs, seed, act, windows, ...},
                     "versions": {...}, "command": ...}
    metrics.jsonl   one JSON object per log row t = 0..E (row t = parameters after t steps)

Every scalar key becomes a float64 column of length E + 1 indexed by the ``epoch`` field, so
``col[t]`` is the value logged at row t. A key absent from a row and a JSON ``null`` read as
NaN. List-valued keys (``W_sigma``: up to 5 eigenvalues, descending) become (E + 1, k) arrays
padded with NaN. A log read from disk (``read_rows``, the one reader summarize, plot and the sweeps'
"done" test use) is checked row by row (``check_row``): line i holds epoch i - 1, an integer (no
gap, repeat or fraction), every value is a number, null or a list of them, and there are at most
E + 1 rows for the config's E; a log that breaks a rule is refused with its file and line, never
read around. A trailing line that does not parse (a crash in the middle of a write) is dropped and
flagged; a bad line anywhere else is an error. (``columns_from_rows`` itself, on rows in memory,
places rows by epoch: a missing row reads as NaN, a repeated one's last copy wins.)

Window suffixes: with several windows the unsuffixed keys (``W_gap23``, ``W_sigma``) belong
to the first window in ``config["windows"]`` and the others carry ``_w<W>`` (``W_gap23_w5``).
:func:`window_key` resolves a (name, W) pair to the key that holds it.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tianref.errors import InputError
from tianref.runs import divergence, divergence_why

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"


@dataclass(frozen=True)
class RunRecord:
    """One run directory, read back.

    path      the run directory
    config    the ``config`` object of config.json (settings only)
    meta      the whole config.json (versions, command, ...)
    columns   key -> float64 array (E + 1,) for scalars, (E + 1, k) for lists; NaN where absent
    n_rows    number of rows that parsed (a complete run of E epochs has E + 1)
    partial   True when a trailing partial line was dropped
    """
    path: Path
    config: dict
    meta: dict
    columns: dict = field(repr=False)
    n_rows: int = 0
    partial: bool = False

    @property
    def n_epochs(self) -> int:
        """Length of the column arrays (last logged epoch + 1)."""
        return len(self.columns["epoch"]) if "epoch" in self.columns else 0

    def has(self, key: str) -> bool:
        return key in self.columns

    def col(self, key: str) -> np.ndarray:
        """The column ``key``; an all-NaN column when the run never logged it."""
        if key in self.columns:
            return self.columns[key]
        return np.full(self.n_epochs, np.nan)


def _to_float(v) -> float:
    if v is None:                      # JSON null
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _is_number(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def check_row(row, expected: int, where: str) -> None:
    """The rules every whole row of a log obeys (``where`` = 'FILE:LINE' for the message): a JSON
    object whose ``epoch`` is the integer ``expected`` (rows are 0, 1, 2, ... in order: no gap, no
    repeat, no fraction), every other value a number, null, or a list of those. InputError otherwise."""
    if not isinstance(row, dict):
        raise InputError(f"{where}: not a JSON object row")
    e = row.get("epoch")
    if not (isinstance(e, int) and not isinstance(e, bool) and e == expected):
        held = "has no epoch" if "epoch" not in row else f"holds epoch {e!r}"
        raise InputError(f"{where} {held}, expected {expected} (rows must be 0, 1, 2, ... in order)")
    for k, v in row.items():
        if not (_is_number(v) or (isinstance(v, list) and all(_is_number(x) for x in v))):
            shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:30] + "..."
            raise InputError(f"{where}: {k} = {shown} is not a number")


def read_rows(path: Path, epochs: int | None = None):
    """Parse metrics.jsonl -> (list of dict rows, partial flag). Every whole row must pass
    ``check_row`` (line i holds epoch i - 1); only a last line that does not parse (a kill mid-write)
    is dropped and flagged. With ``epochs`` (the config's E), a log of more than E + 1 rows is refused:
    it does not belong to that config (mixed with another run, or edited)."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = f.read().split("\n")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    numbered = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip()]
    rows, partial = [], False
    for j, (lineno, ln) in enumerate(numbered):
        try:
            row = json.loads(ln)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            if j == len(numbered) - 1:      # crash mid-write: drop the trailing partial row
                partial = True
                break
            raise InputError(f"{path}:{lineno}: not a JSON object row ({exc})") from None
        check_row(row, len(rows), f"{path}:{lineno}")
        rows.append(row)
    if epochs is not None and len(rows) > epochs + 1:
        raise InputError(f"{path} holds rows 0..{len(rows) - 1}, but its config's epochs = {epochs} allows "
                         f"only rows 0..{epochs}; the log does not belong to this config")
    return rows, partial


def max_epoch(n_rows: int) -> int:
    """The largest epoch a log of ``n_rows`` rows may name (gaps are read as NaN rows, but a log
    is never mostly gaps: 4 n_rows + 1000 bounds the columns' size by the file's own)."""
    return 4 * n_rows + 1000


def columns_from_rows(rows) -> dict:
    """Rows -> {key: float64 column}; rows are placed by their ``epoch`` (row order if absent)."""
    idx = []
    for i, r in enumerate(rows):
        e = r.get("epoch", i)
        try:
            e = int(e)
        except (TypeError, ValueError):
            raise InputError(f"row {i}: epoch {e!r} is not an integer") from None
        if e < 0:
            raise InputError(f"row {i}: negative epoch {e}")
        if e > max_epoch(len(rows)):            # refuse rather than allocate a huge column
            raise InputError(f"row {i}: epoch {e} in a log of {len(rows)} rows; a run logs rows "
                             "0..E, so this log is corrupt")
        idx.append(e)
    n = (max(idx) + 1) if idx else 0
    list_len: dict[str, int] = {}
    scalar_keys: set[str] = set()
    for r in rows:
        for k, v in r.items():
            if isinstance(v, (list, tuple)):
                list_len[k] = max(list_len.get(k, 0), len(v))
            else:
                scalar_keys.add(k)
    scalar_keys -= set(list_len)       # a key that is a list anywhere is a list column
    cols: dict[str, np.ndarray] = {k: np.full(n, np.nan) for k in scalar_keys}
    cols.update({k: np.full((n, max(m, 1)), np.nan) for k, m in list_len.items()})
    for e, r in zip(idx, rows):        # a repeated epoch (e.g. after a resume): the last row wins
        for k, v in r.items():
            if k in list_len:
                vals = v if isinstance(v, (list, tuple)) else [v]
                cols[k][e, :] = np.nan
                cols[k][e, :len(vals)] = [_to_float(x) for x in vals]
            else:
                cols[k][e] = _to_float(v)
    cols["epoch"] = np.arange(n, dtype=float)     # (E + 1,) row index = epoch
    return cols


def read_run(run_dir) -> RunRecord:
    """Read one run directory (config.json + metrics.jsonl)."""
    d = Path(run_dir)
    if not d.is_dir():
        raise InputError(f"{d}: not a directory")
    cfg_path, met_path = d / CONFIG_FILE, d / METRICS_FILE
    if met_path.is_dir():
        raise InputError(f"{d}: its {METRICS_FILE} is a folder, not a file (a damaged run)")
    if not met_path.is_file():
        raise InputError(f"{d}: no {METRICS_FILE} (not a run directory)")
    meta: dict = {}
    if cfg_path.is_file():
        try:
            meta = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{cfg_path}: unreadable config ({exc})") from None
        if not isinstance(meta, dict):
            raise InputError(f"{cfg_path}: expected a JSON object")
    else:
        raise InputError(f"{d}: no {CONFIG_FILE}")
    config = meta.get("config", meta)
    if not isinstance(config, dict):
        raise InputError(f"{cfg_path}: 'config' is not an object")
    E = config.get("epochs")
    rows, partial = read_rows(met_path, E if isinstance(E, int) and not isinstance(E, bool) else None)
    from tianref.identity import check_log
    check_log(str(d), meta)                 # the log, config.json and the run's state are one run's
    return RunRecord(path=d, config=config, meta=meta, columns=columns_from_rows(rows),
                     n_rows=len(rows), partial=partial)


def run_status(rec: RunRecord) -> dict:
    """Where a run's log stands against its config's E: {"status", "last_epoch", "epochs", "why"}.

    status  'diverged'   config.json records that the run ended because its loss or its parameters
                         became non-finite at epoch t, or its ridge solve failed in the step to row t
                         (runs.record_divergence; a non-finite loss is logged as row t, non-finite
                         parameters and a failed solve end the run before row t); --resume
                         refuses it, as it would diverge again. For a run written before that record:
                         its last row has no finite train or test loss (row E too: all its rows logged)
            'complete'   rows 0..E are logged, and the run did not diverge
            'unfinished' incomplete otherwise: still running, stopped (SIGINT/SIGTERM: --resume continues
                         it) or crashed
    why     one phrase for the reports: 'diverged at epoch 2 (non-finite loss)', 'diverged at epoch 4
            (non-finite parameters)', 'diverged at epoch 21 (ridge solve failed)' (runs.divergence_why),
            'ends at epoch 25 of 60'
    """
    E = rec.config.get("epochs")
    E = int(E) if isinstance(E, (int, float)) and not isinstance(E, bool) else None
    last = rec.n_epochs - 1
    recorded = divergence(rec.meta)
    if recorded is not None:
        return {"status": "diverged", "last_epoch": last, "epochs": E,
                "why": divergence_why(*recorded)}
    losses = [rec.columns[k][-1] for k in ("train_loss", "test_loss") if k in rec.columns and last >= 0]
    if losses and not all(np.isfinite(x) for x in losses):      # train ends a run at such a row, even row E
        return {"status": "diverged", "last_epoch": last, "epochs": E,
                "why": f"diverged at epoch {last} (non-finite loss)"}
    if E is not None and rec.n_rows >= E + 1:
        return {"status": "complete", "last_epoch": last, "epochs": E, "why": "complete"}
    return {"status": "unfinished", "last_epoch": last, "epochs": E,
            "why": f"ends at epoch {last} of {'?' if E is None else E}"}


def list_run_dirs(root) -> list[Path]:
    """All run directories at or below ``root`` (directories holding metrics.jsonl), sorted. Links to
    folders are followed (a tree assembled from links to runs kept elsewhere), each folder visited once
    (a link loop ends there), but not a link to the root or to a folder above it."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a directory")
    found, seen, above = [], set(), set()
    p = os.path.realpath(root)          # the root and its ancestors: a link to one of them would walk the
    while p not in above:               # tree again, or all that lies above it (a link to '/': every run
        above.add(p)                    # on the machine)
        p = os.path.dirname(p)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen or (real in above and dirpath != os.fspath(root)):
            dirnames[:] = []            # reached again through a link, or a link up the tree: not walked
            continue
        seen.add(real)
        # hidden folders are not runs (e.g. .NAME.replaced-PID, a run kept aside during --overwrite)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if METRICS_FILE in filenames or METRICS_FILE in dirnames:     # a folder in its place: a damaged
            found.append(Path(dirpath))                             # run, refused by read_run, not skipped
            dirnames[:] = []            # a run directory does not nest further runs
    return sorted(found)


def read_tree(root) -> list[RunRecord]:
    """Every run under ``root``; an error when there is none."""
    dirs = list_run_dirs(root)
    if not dirs:
        raise InputError(f"{root}: no run directories (no {METRICS_FILE} found below it)")
    return [read_run(d) for d in dirs]


def windows_of(record: RunRecord) -> list[int]:
    """The rolling-Gram windows the run logged, first (unsuffixed) one first."""
    w = record.config.get("windows")
    if w is None:
        w = record.config.get("window")
    if w is None:
        return []
    return [int(x) for x in (w if isinstance(w, (list, tuple)) else [w])]


def window_key(record: RunRecord, name: str, window: int | None) -> str:
    """The column holding ``name`` (e.g. 'W_gap23') for rolling window ``window``.

    None means the first window (the unsuffixed key). Raises InputError when the run did not
    log that window.
    """
    if window is None:
        return name
    wins = windows_of(record)
    if wins and wins[0] == window:
        return name
    suffixed = f"{name}_w{window}"
    if suffixed in record.columns or window in wins:
        return suffixed
    if not wins and name in record.columns:
        raise InputError(f"{record.path}: config lists no windows, so window {window} "
                         f"cannot be told apart from the unsuffixed {name}")
    raise InputError(f"{record.path}: no window {window} logged (windows: {wins or 'none'})")


def is_complete(run_dir, epochs: int) -> bool:
    """True when the run's metrics hold every row 0..E and checkpoints/final.npz is the state at
    epoch E: a complete run (what a resumable sweep skips). A run that crashed after its last row
    but before final.npz is not complete."""
    d = Path(run_dir)
    p = d / METRICS_FILE
    if not p.is_file():
        return False
    try:
        rows, _ = read_rows(p, epochs)          # rows 0, 1, ... in order, at most epochs + 1 of them
    except InputError:
        return False
    if len(rows) != epochs + 1:
        return False
    final = d / "checkpoints" / "final.npz"
    if not final.is_file():
        return False
    try:
        with np.load(final, allow_pickle=False) as z:
            return int(z["epoch"]) == epochs
    except Exception:                 # unreadable or torn: not complete
        return False
