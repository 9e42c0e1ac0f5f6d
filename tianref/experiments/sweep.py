"""Conditions x seeds into one directory tree, resumable, run as parallel local processes.

The jobs themselves (conditions x seeds, each run directory's state, the ``train`` command line that
produces it) are tianref.experiments.jobs; every name of it is importable from here too. This module
runs them: locally ``run_jobs`` keeps up to N ``train`` processes alive, each with ``threads``
BLAS/OpenMP threads (``train --threads T`` and the thread variables of its environment; by default
the caller's OPENBLAS/MKL/OMP_NUM_THREADS when set, else 1, so N processes use N cores).

Stopping: SIGINT or SIGTERM to the sweep is passed on to every running child as one signal of the same
kind (train then saves its resume state and exits, its log naming that signal; a sweep that stops
because a run failed sends SIGINT); the sweep waits for them and exits 130 (143 for SIGTERM; 1
if a run had failed before the stop). A sweep that is
killed outright (kill -9) takes its children with it: each child asks the kernel for SIGTERM when
its parent dies (Linux ``PR_SET_PDEATHSIG``). A run directory whose lock is held by a live process
(tianref/rundir.py) is never started a second time, and each job's state is taken again just before
it starts (another sweep on the same ROOT may have finished or stopped it since): a run finished
meanwhile is skipped, never restarted with ``--overwrite``.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time

from tianref import threads as blas_threads
from tianref.errors import InputError, Interrupted, RunFailure
from tianref.analysis.records import is_complete
from tianref.experiments.jobs import (  # noqa: F401  (re-exported: callers import them from here)
    FINISHED, TRAIN_ARGS, Job, config_mismatch, diverged, grid, job_state, jobs_from_specs, make_jobs,
    parse_seeds, plan_lines, train_argv)
from tianref.resources import cli_argv
from tianref.rundir import IN_USE_MARK, SWEEP_TAG, lock_holder

__all__ = ["batches", "batch_argv", "batch_plan_lines", "FINISHED", "TRAIN_ARGS", "Job", "cli_argv", "config_mismatch", "grid", "job_state", "jobs_from_specs", "make_jobs",
           "parse_seeds", "plan_lines", "train_argv", "THREAD_VARS", "LOG_DIR", "STOP_GRACE_S", "run_jobs"]

THREAD_VARS = blas_threads.VARS      # set to --threads in every child's environment
LOG_DIR = "_logs"          # per-job stdout/stderr, beside (not inside) the run directories
STOPPED_EXITS = (130, 143)  # a train stopped by SIGINT / SIGTERM after saving its resume state (errors.Interrupted)
STOP_GRACE_S = 60          # how long an interrupted child may take to save its resume state


def _child_env(threads: int) -> dict:
    return blas_threads.child_env(threads)


class _Stopped(Exception):
    """A stop signal reached the sweep."""


def _libc():
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    except OSError:
        return None


def _die_with(parent: int):
    """preexec_fn for a child: SIGTERM when ``parent`` dies (also if it already has)."""
    libc = _libc()

    def fn():
        if libc is not None:
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)         # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
    return fn


def _open_log(path, command: str):
    """A job's log, opened for appending, with its command line as the first line written; an
    OSError (a full disk) names the log's path."""
    try:
        log = open(path, "ab")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    try:
        log.write((command + "\n").encode())
        log.flush()
    except OSError as exc:
        try:
            log.close()
        except OSError:
            pass
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    return log


def _size(path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


IN_USE_RETRIES = 3          # times a run another process held is taken up again once let go (a process that
                            # keeps taking it back, without finishing it, is then reported in use)
LOG_READ_MAX = 64 << 20     # bytes of a job's log read back for a refusal (logs are a few kB to MB)


def _log_since(log_path, start: int) -> list:
    """The lines of a job's log from byte ``start`` on (at most LOG_READ_MAX bytes; none when unreadable)."""
    try:
        with open(log_path, "rb") as f:
            f.seek(start)
            return f.read(LOG_READ_MAX).decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def _refused_in_use(log_path, start: int, out, own_pid: int) -> bool:
    """Whether the messages written to ``log_path`` from byte ``start`` on hold train's refusal of ``out``
    because a process other than ``own_pid`` (the child this sweep started: a train or a train-batch)
    holds it (rundir.in_use): two sweeps on one tree can both find a run free and start it, and the
    second's child is refused; that run is not a failure of its own. The log is shared: the other sweep's
    refused child may write its refusal, naming this sweep's child as the holder, into the log of a run
    this sweep trains, so a refusal naming ``own_pid`` is not this sweep's."""
    head = f"--out {out}{IN_USE_MARK}"
    for line in _log_since(log_path, start):
        at = line.find(head)
        if at < 0:
            continue
        holder = line[at + len(head):].split(" (", 1)[0]          # "process 1234" or "another process"
        if holder != f"process {own_pid}":
            return True
    return False


def _unless_done(argv: list) -> list:
    """A run's train command as this sweep starts it: a start (not a --resume) gets --if-unfinished, so
    that a run another sweep finished between this sweep's look at it and its train taking the folder's
    lock is left as it is (train decides under the lock), never trained again or --overwrite-n."""
    return argv if "--resume" in argv else argv + ["--if-unfinished"]


def _found_finished(log_path, start: int, out, tag):
    """"complete" or "diverged" when this sweep's child (its summary lines carry ``tag``: the log is shared
    with another sweep's children) said, since byte ``start`` of the log, that the run in ``out`` was already
    finished when it took the folder (train's "already_complete" / "already_diverged": another process
    finished it); None otherwise."""
    for line in _log_since(log_path, start):
        if line.startswith("{") and '"already_' in line:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if not isinstance(row, dict) or row.get("out") != str(out) or row.get("sweep_tag") != tag:
                continue
            if row.get("already_complete") is True:
                return "complete"
            if row.get("already_diverged") is True:
                return "diverged"
    return None


def stack_key(job: Job) -> tuple:
    """What the runs of one batch share: the options and epochs, all but eta unless the runs have an eta
    schedule (stacks.same_stack: a schedule fixes eta; runs with one are one condition per eta)."""
    by_eta = not dict(job.options).get("eta_schedule")
    return (repr(tuple((k, v) for k, v in job.options if not (by_eta and k == "eta"))), job.epochs)


def batches(jobs: list[Job], n_jobs: int = 1) -> list[list[Job]]:
    """The jobs of each condition (``stack_key``: they differ only by seed and eta) as batches for
    ``train-batch``: one per condition, each split into equal parts when there are fewer conditions
    than ``n_jobs`` processes, so the batches fill them."""
    by_cond: dict = {}
    for j in jobs:
        by_cond.setdefault(stack_key(j), []).append(j)
    parts = max(1, -(-n_jobs // max(len(by_cond), 1)))             # ceil(n_jobs / conditions)
    out = []
    for group in by_cond.values():
        k = min(parts, len(group))
        size = -(-len(group) // k)
        out += [group[i:i + size] for i in range(0, len(group), size)]
    return out


def batch_argv(members: list[Job], python: str = sys.executable, states=None,
               threads: int | None = None, started: bool = False) -> list[str]:
    """The ``train-batch`` command line of ``members`` (their train commands as --member), their
    messages to ROOT/_logs/<run>.log; ``states``: each member's job_state, if known; ``started``: as this
    sweep starts it (each member's command through _unless_done), not as a plan prints it."""
    states = states or [None] * len(members)
    argv = [*cli_argv(python), "train-batch", "--log-dir", str(members[0].out.parent / LOG_DIR)]
    if threads is not None:
        argv += ["--threads", str(int(threads))]
    for j, st in zip(members, states):
        a = train_argv(j, python, st)
        a = _unless_done(a) if started else a
        argv += ["--member", shlex.join(a[a.index("train") + 1:])]
    return argv


def batch_plan_lines(jobs: list[Job], n_jobs: int = 1, python: str = sys.executable,
                     threads: int | None = None) -> list[str]:
    """One shell command per batch of unfinished jobs (train-batch; a lone job: train)."""
    todo = [j for j in jobs if job_state(j) not in FINISHED]
    out = []
    for unit in batches(todo, n_jobs):
        argv = (train_argv(unit[0], python, threads=threads) if len(unit) == 1
                else batch_argv(unit, python, threads=threads))
        out.append(shlex.join(argv))
    return out


def _state_or_none(job: Job):
    """job_state, or None for a directory it refuses (reported when the sweep is run again)."""
    try:
        return job_state(job)
    except InputError:
        return None


class RowCount:
    """The rows logged so far by runs in progress, read incrementally: each call reads only the bytes a
    run's metrics.jsonl gained since the last one and counts its complete lines (a file that shrank, a
    run restarted or resumed past a torn row, is counted again from its start)."""

    def __init__(self):
        self._seen = {}                              # path -> (bytes read, complete lines in them)

    def __call__(self, job: Job) -> int:
        path = job.out / "metrics.jsonl"
        off, n = self._seen.get(path, (0, 0))
        try:
            size = path.stat().st_size
            if size < off:
                off, n = 0, 0
            if size > off:
                with open(path, "rb") as f:
                    f.seek(off)
                    chunk = f.read(size - off)
                end = chunk.rfind(b"\n") + 1           # up to the last complete line
                off, n = off + end, n + chunk.count(b"\n", 0, end)
        except OSError:
            return min(n, job.epochs + 1)
        self._seen[path] = (off, n)
        return min(n, job.epochs + 1)


def run_jobs(jobs: list[Job], n_jobs: int = 1, python: str = sys.executable, report=None,
             poll_s: float = 0.2, progress=None, threads: int | None = None, batch: bool = False,
             rows=None, rows_every_s: float = 2.0, label: str = "sweep") -> dict:
    """Run the unfinished jobs with up to ``n_jobs`` processes; returns a summary dict.

    ``batch``: the runs of each condition train as stacked arrays, one ``train-batch`` process per
    batch (``batches``; tianref/batch.py), each member's messages in its own log.

    Each child runs ``train ... --threads T`` with T = ``threads`` (None: the caller's thread
    variables when set, else 1; tianref.threads.resolve) and those variables set to T.

    ``label`` names the command in the message of a stop (sweep, reproduce).

    Each child's stdout/stderr go to ROOT/_logs/<name>.log. ``report(msg)`` receives one line per
    started/finished job; ``progress(finished, total, name)`` is called once with 0 before the
    first start and after each finished job (the CLI draws a bar from it on a terminal);
    ``rows(logged, total)`` at most every ``rows_every_s`` seconds while runs train, when the count
    changed: the rows the unfinished runs have logged (RowCount) out of their E + 1 each, so a batch,
    whose runs all finish at its end, and a long run show how far they are.
    """
    if n_jobs < 1:
        raise InputError(f"--jobs must be >= 1 (got {n_jobs})")
    report = report or (lambda msg: None)
    todo = [(j, job_state(j)) for j in jobs]
    skipped = [j.name for j, s in todo if s in FINISHED]
    for j, s in todo:
        if s == "diverged":
            report(f"skip {j.name}: it diverged earlier (its config.json records where); it would diverge again")
    queue = [(j, s) for j, s in todo if s not in FINISHED]
    state_of = dict((j.name, s) for j, s in queue)
    if batch:
        units = batches([j for j, _ in queue], n_jobs)
    else:
        units = [[j] for j, _ in queue]
    threads = blas_threads.resolve(threads)
    env = _child_env(threads)
    running: list[tuple[list, subprocess.Popen, float, object]] = []
    done, failed = [], []
    waiting = {}                               # job -> its failure entry: held by another process, tried again
                                               # when let go; at the end still held: IN USE, finished: skipped
    retries = {}                               # job name -> times taken up again after it was let go

    def _free_again(job) -> bool:
        return retries.get(job.name, 0) < IN_USE_RETRIES and lock_holder(job.out) is None

    def skip(job, why: str) -> None:           # a run another process finished: not this sweep's to count
        nonlocal total
        skipped.append(job.name)
        total -= 1
        report(f"skip {job.name}: {why}")
        progress(len(done) + len(failed), total, job.name)
    log_start = {}                             # job name -> its log's size when its child started
    child_tag = {}                             # job name -> the tag its child's summary lines carry
    total = len(queue)
    stop = {"sig": None}
    old_handlers = {}

    def on_signal(signum, frame):
        first = stop["sig"] is None
        stop["sig"] = signal.Signals(signum).name
        if first:
            raise _Stopped()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old_handlers[sig] = signal.getsignal(sig)
            signal.signal(sig, on_signal)
    progress = progress or (lambda finished, total, name: None)    # (runs finished, of total, last)
    progress(0, total, None)
    count, rows_total, rows_said = RowCount(), sum(j.epochs + 1 for j, _ in queue), [None, time.monotonic()]

    def tell_rows(force=False):
        now = time.monotonic()
        if rows is None or not (force or now - rows_said[1] >= rows_every_s):
            return
        logged = sum(count(j) for j, _ in queue)
        rows_said[1] = now
        if logged != rows_said[0]:
            rows_said[0] = logged
            rows(logged, rows_total)
    tell_rows(force=True)                      # the rows already logged (a resumed run's): the start line
    try:
        while units or running or any(_free_again(j) for j in waiting):
            for job in [j for j in waiting if _free_again(j)]:   # let go meanwhile: again, as any job (finished
                del waiting[job]                                 # there: skipped), at most IN_USE_RETRIES times
                retries[job.name] = retries.get(job.name, 0) + 1
                units.append([job])
            while units and len(running) < n_jobs:
                unit = []
                for job in units.pop(0):
                    holder = lock_holder(job.out)
                    if holder is not None:      # another process holds it: taken up again once it lets go
                        if job not in waiting:  # (while this sweep has other work; see the end)
                            report(f"later {job.name}: its directory is in use by process {holder}; this {label} "
                                   "takes it up again when that process lets it go")
                        waiting.setdefault(job, {"name": job.name, "returncode": None, "in_use": True,
                                                 "log": f"(not started: its directory is in use by process "
                                                        f"{holder})"})
                        continue
                    why = None                  # its state now: another process may have run it meanwhile
                    try:
                        state_of[job.name] = job_state(job)
                    except InputError as exc:
                        why = str(exc)
                    if why is None and state_of[job.name] in FINISHED:
                        skip(job, "finished (or diverged) in another process since this sweep started")
                        continue
                    if why is None:
                        unit.append(job)
                        continue
                    failed.append({"name": job.name, "returncode": None, "log": f"(not started: {why})"})
                    report(f"[{len(done) + len(failed)}/{total}] FAILED {job.name}: not started, {why}")
                    progress(len(done) + len(failed), total, job.name)
                if not unit:
                    continue
                log_dir = unit[0].out.parent / LOG_DIR
                log_dir.mkdir(parents=True, exist_ok=True)
                states = [state_of[j.name] for j in unit]
                for j in unit:                         # where this start's messages begin in each log
                    log_start[j.name] = _size(log_dir / f"{j.name}.log")
                if len(unit) == 1:
                    argv = _unless_done(train_argv(unit[0], python, states[0], threads=threads))
                    log = _open_log(log_dir / f"{unit[0].name}.log", shlex.join(argv))
                else:
                    argv = batch_argv(unit, python, states, threads=threads, started=True)
                    for j in unit:                     # each member's log starts with its own command
                        _open_log(log_dir / f"{j.name}.log", shlex.join(train_argv(j, python, state_of[j.name]))
                                  + "   # trained in the batch logged in " + f"batch_{unit[0].name}.log").close()
                    log = _open_log(log_dir / f"batch_{unit[0].name}.log", shlex.join(argv))
                # own session: a terminal Ctrl-C reaches only us, and we pass exactly one
                # signal on, which makes train save its resume state and exit
                tag = f"{os.getpid()}-{len(log_start)}-{time.monotonic_ns()}"     # this child's summary lines
                for j in unit:
                    child_tag[j.name] = tag
                proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**env, SWEEP_TAG: tag},
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=_die_with(os.getpid()))
                running.append((unit, proc, time.time(), log))
                what = unit[0].name if len(unit) == 1 else f"batch of {len(unit)} ({', '.join(j.name for j in unit)})"
                report(f"start {what} ({', '.join(sorted(set(states)))})")
            still = []
            for unit, proc, t0, log in running:
                rc = proc.poll()
                if rc is None:
                    still.append((unit, proc, t0, log))
                    continue
                log.close()
                secs = time.time() - t0
                for job in unit:
                    log_path = job.out.parent / LOG_DIR / f"{job.name}.log"
                    # refused because another process held its folder (a single run exits 2; a batch
                    # trains its other members): whatever the folder holds now is that process's work
                    held = ((len(unit) > 1 and rc != 0) or rc == 2) and \
                        _refused_in_use(log_path, log_start.get(job.name, 0), job.out, proc.pid)
                    ran = not held and (rc == 0 or len(unit) > 1)     # its train ended well (a batch: its own)
                    found = ran and _found_finished(log_path, log_start.get(job.name, 0), job.out,
                                                    child_tag.get(job.name))
                    if found and _state_or_none(job) in FINISHED:   # its train found it finished, under the
                        skip(job, f"finished in another process since this {label} started (its train "   # lock
                                  f"found it {found} and changed nothing)")
                        continue
                    if ran and is_complete(job.out, job.epochs):
                        done.append(job.name)
                        report(f"[{len(done) + len(failed)}/{total}] done {job.name} ({secs:.1f} s)")
                    else:
                        entry = {"name": job.name, "returncode": rc, "log": str(log_path)}
                        if held and _state_or_none(job) in FINISHED:      # the other process finished it
                            skip(job, f"another process held its directory when this {label} started it, and "
                                      "has finished it since")
                            continue
                        if held:                          # started here as the other process took it: again
                            entry["in_use"] = True        # once it lets go (finished there: skipped)
                            waiting[job] = entry
                            report(f"later {job.name}: another process (another sweep or train on this tree) "
                                   f"took its directory first; this {label} takes it up again when that "
                                   f"process lets it go (see {LOG_DIR}/{job.name}.log)")
                            continue
                        if rc in STOPPED_EXITS and _state_or_none(job) == "resumable":   # signalled itself
                            entry["stopped"] = True
                            report(f"[{len(done) + len(failed) + 1}/{total}] STOPPED {job.name} (exit {rc}: "
                                   "stopped by a signal sent to it; its resume state is saved, and running "
                                   f"the same {label} again continues it)")
                        else:
                            report(f"[{len(done) + len(failed) + 1}/{total}] FAILED {job.name} (exit {rc}, "
                                   f"see {LOG_DIR}/{job.name}.log)")
                        failed.append(entry)
                    progress(len(done) + len(failed), total, job.name)
            running = still
            tell_rows()
            if running:
                time.sleep(poll_s)
    except _Stopped:
        pass
    finally:                                   # stopped or failed: stop only the children we started
        stop["sig"] = stop["sig"] or "exit"    # from here on a signal only records itself
        passed = signal.SIGTERM if stop["sig"] == "SIGTERM" else signal.SIGINT     # the one the sweep got
        for unit, proc, _, log in running:
            if proc.poll() is None:
                proc.send_signal(passed)           # train saves resume.npz and exits
        for unit, proc, _, log in running:
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
        for sig, old in old_handlers.items():
            signal.signal(sig, old)
    if stop["sig"] not in (None, "exit"):
        # a batch process's runs: some may have finished, and the runs of its later stacks not started
        states = [_state_or_none(j) for u, *_ in running for j in u]
        n_fin, n_saved, n_div = states.count("done"), states.count("resumable"), states.count("diverged")
        n_new = len(states) - n_fin - n_saved - n_div + sum(len(u) for u in units) + len(waiting)
        msg = (f"{label} stopped by {stop['sig']}: {n_saved} running run(s) saved their resume state"
               + (f", {n_fin} of their batch(es) had finished" if n_fin else "")
               + (f", {n_div} of their batch(es) had diverged" if n_div else "") +
               f", {n_new} not started; run the same command again to continue")
        if failed or n_div:                        # exit 1, not 130/143: a run failed before the stop
            first = (f" (first: {failed[0]['name']}, log {failed[0]['log']})" if failed else "")
            raise RunFailure(f"{msg}; {len(failed) + n_div} run(s) failed{first}")
        raise Interrupted(msg, stop["sig"])
    for job, entry in waiting.items():         # nothing else to do here: a run another process finished is
        if _state_or_none(job) in FINISHED:    # skipped, one it still holds is reported in use
            skip(job, f"finished (or diverged) in another process, which held it while this {label} ran")
            continue
        holder = lock_holder(job.out)
        why = (f"its directory is in use by process {holder} (another sweep or train on this tree), which "
               "is training it" if holder is not None else
               f"other processes took its directory first {retries.get(job.name, 0) + 1} times and let it go "
               "unfinished; run the same command again")
        failed.append(entry)
        report(f"[{len(done) + len(failed)}/{total}] IN USE {job.name}: not trained here, {why}"
               + ("" if entry["returncode"] is None else f" (see {LOG_DIR}/{job.name}.log)"))
        progress(len(done) + len(failed), total, job.name)
    resumed = sum(state_of.get(name) == "resumable" for name in done)   # of "ran": continued, not started
    return {"runs": len(jobs), "skipped": len(skipped), "ran": len(done), "resumed": resumed, "failed": failed}
