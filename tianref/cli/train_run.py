"""Training a prepared ``train`` run into its run directory: the lock held to the end, the loop, the
divergence record, the JSON summary (the second half of ``python cli.py train``).

``tianref/cli/train.py`` parses and checks the command line and prepares the run (its config.json, or
its checked resume state) under the run directory's lock (tianref/rundir.py); ``launch`` then trains
it here, or, under ``train-batch`` (BATCH set), hands it to tianref/cli/batch.py, which trains many in
one stack and uses ``summary_of`` and ``record_divergence`` as train does.

    Prepared           a run checked, locked and ready to train (``train_prepared``'s arguments)
    launch             lock OUT, prepare under the lock, train (or hand to the batch)
    train_prepared     the loop into OUT (tianref/train.py run), then the one-line JSON summary
    summary_of         train's JSON summary of a run directory, from its metrics.jsonl
    record_divergence  a diverged run's record in its config.json (runs.record_divergence)
"""
from __future__ import annotations

import contextvars
import json
import os
import signal
import sys
import time
from typing import NamedTuple

import click
import numpy as np  # only for np.errstate around the run

from tianref import runs
from tianref.rundir import SWEEP_TAG
from tianref.cli.progress import RowProgress, say
from tianref.errors import Diverged
from tianref.train import SignalHandlers
from tianref.paths import describe_oserror

# set by train-batch (tianref/cli/batch.py): a list that receives each run prepared (Prepared) in place
# of training it
BATCH = contextvars.ContextVar("batch", default=None)


class Prepared(NamedTuple):
    """A run checked, locked and ready to train (the arguments of train_prepared)."""
    engine: object
    cfg: object
    xp: object
    xp_name: str
    out: str
    state: object
    problem: object
    init: object
    no_resume_state: bool
    session: object
    fingerprint: str
    digest: object
    complete: object = False    # nothing to train: True, a --resume of a run already complete (resume.
                                # already_complete) or a start that found this run complete; "diverged", a
                                # start that found this run diverged (train --if-unfinished)


def launch(session, prepare):
    """Lock OUT (``session``), call ``prepare`` under the lock and train the run it returns, the lock
    held to the end. Under train-batch (BATCH set) the session stays entered and the prepared run is
    handed to the batch instead (tianref/cli/batch.py exits the session when the run ends)."""
    box = BATCH.get()
    if box is None:
        with session:                                   # the lock is held from here to the end
            train_prepared(*prepare())
        return
    session.__enter__()
    try:
        box.append(prepare())
    except BaseException:
        session.__exit__(*sys.exc_info())
        raise


def train_prepared(engine, cfg, xp, xp_name, out, state, problem, init, no_resume_state, session, fingerprint,
                   digest, complete=False):
    """Run the loop into OUT (locked by ``session``), then print the JSON summary. ``fingerprint`` and
    ``digest``: the run's identity and the digest of the rows already logged (tianref/identity.py).
    ``complete``: the run is already complete; only its summary is printed."""
    t0 = time.time()
    if complete:
        click.echo(json.dumps(summary_of(out, cfg, xp_name, 0.0, already=complete)))
        return
    writer = runs.RunWriter(out, keep_resume_state=not no_resume_state, on_first_row=session.started,
                            fingerprint=fingerprint, digest=digest)
    start = state.epoch if state is not None else 0            # the bar counts epochs (steps), not rows:
    with _AfterTheLoop() as after:
        with RowProgress(max(cfg.epochs - start, 0), f"train {os.path.basename(out)}") as bar:    # 0/E .. E/E
            def on_row(row):
                bar.update(1 if row["epoch"] > start else 0, row)  # row 0 is logged before the first step
            try:
                # a diverging run is reported once, as a non-finite loss (exit 1), not as a
                # stream of NumPy overflow warnings
                with np.errstate(over="ignore", invalid="ignore"):
                    engine.run(cfg, xp, problem=problem, state=state, init=init, sink=writer,
                               on_row=on_row, on_stop=lambda m: say(f"\n{m}"))
                after.finished = True
            except Diverged as exc:
                record_divergence(out, session, exc.epoch, exc.what)
                raise
            finally:
                writer.close()
        click.echo(json.dumps(summary_of(out, cfg, xp_name, time.time() - t0)))    # after the bar's last line


class _AfterTheLoop(SignalHandlers):
    """SIGINT / SIGTERM between the end of a finished run's loop and its printed summary: the run is complete
    (final.npz written), so the signal is noted and the summary still printed (it ended the command with
    'Aborted!', the summary lost). Until ``finished`` is set a signal does what it did before (the loop's own
    handler, installed over this one, stops a run at a row boundary; its exit restores this one)."""

    def __init__(self):
        self.finished, self._old = False, {}

    def _handler(self, signum, frame):
        if self.finished:
            say(f"{signal.Signals(signum).name} after the run had finished: nothing to stop")
            return
        old = self._old.get(signum)
        if callable(old):
            return old(signum, frame)
        if old != signal.SIG_IGN:                # the default action, as if this handler were not there
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)


def summary_of(out, cfg, xp_name, seconds, already=None) -> dict:
    """train's one-line JSON summary of the run in OUT, from its metrics.jsonl; ``already`` (a Prepared's
    ``complete``): the run was finished when this command took the folder, complete (True) or "diverged"
    (it trained nothing; a sweep counts it as skipped)."""
    rows = runs.read_metrics(os.path.join(out, "metrics.jsonl"))
    return {"out": out, "epochs": cfg.epochs, "seconds": round(seconds, 3),
            "backend": xp_name, "dtype": cfg.dtype,
            "final": {k: rows[-1].get(k) for k in ("train_loss", "test_loss", "train_acc", "test_acc")},
            "t_test_0.5": _first(rows, "test_acc", 0.5), "t_test_0.99": _first(rows, "test_acc", 0.99),
            **({"already_diverged": True} if already == "diverged" else {"already_complete": True} if already
               else {}),
            **({"sweep_tag": os.environ[SWEEP_TAG]} if os.environ.get(SWEEP_TAG) else {})}



def record_divergence(out, session, epoch: int, what: str) -> None:
    """Record a run's divergence in its config.json (runs.record_divergence) while ``session`` holds it;
    nothing for a run that logged no row (its session rolls it back). A failed write is a note: the
    run's own error is the one reported."""
    if not session.is_started:
        return
    try:
        runs.record_divergence(out, epoch, what)
    except OSError as exc:
        note(f"could not record the divergence in {os.path.join(out, 'config.json')} ({describe_oserror(exc)})")


def note(msg: str) -> None:
    """One line on stderr, as train says it."""
    click.echo(f"train: {msg}", err=True)


def _first(rows, key, thr):
    """The first epoch whose ``key`` is >= thr, or None."""
    for r in rows:
        if r.get(key, -1) >= thr:
            return r["epoch"]
    return None
