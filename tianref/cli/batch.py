"""``python cli.py train-batch``: several train runs of one condition (differing only by seed and eta)
trained as one stacked array in this process (tianref/batch.py); what ``sweep --batch`` starts.

Each --member is the argument list of one ``train`` command (what follows ``train``). Every member is
parsed, checked, locked and given its config.json by train's own code, exactly as ``train`` would;
then the members that share a condition (up to seed and eta) and a starting epoch train together.
Each run keeps its own directory, metrics.jsonl, checkpoints, resume state and lock: summarize, plot,
thm6, edge and --resume see an ordinary run.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import time

import click
import numpy as np  # only for np.errstate around the run

from tianref import batch as engine_batch, memory, runs, threads as blas_threads
from tianref.stacks import same_stack
from tianref.cli.common import CHECK_FOLDER, RAISE_ERRORS, THREADS, GivenPath, other_name_hint, reports_errors
from tianref.cli.progress import RUN_KEY, RowProgress, interactive, say
from tianref.errors import InputError, Interrupted, RunFailure, RunInUse
from tianref.paths import check_output_dir, describe_oserror
from tianref.resources import program


def batch_label(outs) -> str:
    """The progress line's name of a stack: 'train-batch [a, b]', and for more than three runs its first and
    last run and the count, 'train-batch [a, ..., i; 9 runs]' (the log's first line, the command, names
    every member; a line that named them all would be as long as the command)."""
    names = [os.path.basename(o) for o in outs]
    shown = ", ".join(names) if len(names) <= 3 else f"{names[0]}, ..., {names[-1]}; {len(names)} runs"
    return f"train-batch [{shown}]"


def _member_log(log_dir, out):
    return None if log_dir is None or out is None else os.path.join(log_dir, os.path.basename(os.path.normpath(out))
                                                                     + ".log")


def _say(log_dir, out, msg, label=None, echo: bool = True, lead: str = ""):
    """A member's message: to stderr (unless not ``echo``; after ``lead``), and appended to its log in
    --log-dir (as a sweep names them; a member without --out has no log: ``label`` names it on stderr)."""
    if echo:
        say(f"{lead}{label or os.path.basename(out)}: {msg}")   # a stderr gone ends the lines, not the batch
    path = _member_log(log_dir, out)
    if path is not None:
        with open(path, "a", encoding="utf-8") as f:
            f.write(msg + "\n")


def _option_of(argv, name):
    """The value of option ``name`` in a member's arguments (``name X`` or ``name=X``), None without one;
    given twice, the last, the one click parses. Tokens after ``--`` are no options."""
    value, i = None, 0
    while i < len(argv):
        a = argv[i]
        if a == "--":                                  # what follows is no option
            break
        if a == name and i + 1 < len(argv):
            value, i = argv[i + 1], i + 2
            continue
        if a.startswith(name + "="):
            value = a[len(name) + 1:]
        i += 1
    return value


def _out_of(argv):
    """The --out of a member's arguments: the folder train writes (``_option_of``)."""
    return _option_of(argv, "--out")


HOST = ("numpy", "fake")                # backends whose stack is split into thread parts (--threads)


def blas_of(xp_name: str, threads: int) -> int:
    """The BLAS thread count a stack trains with: on the host backends 1 (--threads counts the thread
    parts, each with a one-thread BLAS; one part: 1 as well), with --xp cupy --threads (the host BLAS)."""
    return 1 if xp_name in HOST else threads


def check_members(argvs, threads: int | None = None) -> dict:
    """{member index: refusal} of the members whose arguments train refuses by itself (an unknown option,
    a bad value, --help, --check-only, a folder it cannot use, a resume that cannot go on, an --init-from
    file inside a folder another member's --overwrite replaces): each member's train command with
    --check-only and CHECK_FOLDER, which validate every input and the folder and touch nothing. A folder
    another process holds (RunInUse) is not a bad member: prepare_members refuses it alone."""
    from tianref.cli.train import BATCH_BLAS, train_cmd
    refused = {}
    threads = blas_threads.resolve(threads)
    replaced = [os.path.realpath(out) for out, a in ((_out_of(a), a) for a in argvs)
                if out is not None and "--overwrite" in a]
    tokens = BATCH_BLAS.set(lambda xp_name: blas_of(xp_name, threads)), CHECK_FOLDER.set(True)
    try:
        for i, argv in enumerate(argvs):
            if any(a in ("--help", "-h") for a in argv):
                refused[i] = "no run to train (its arguments only ask for help)"
                continue
            if "--check-only" in argv:
                refused[i] = "--check-only validates a run without training it; train-batch trains its members"
                continue
            init = _option_of(argv, "--init-from")
            if init is not None and any(os.path.realpath(init).startswith(r.rstrip(os.sep) + os.sep)
                                        for r in replaced):
                refused[i] = (f"--init-from {init} lies in the folder of a member whose --overwrite replaces "
                              "it; copy the file out first")
                continue
            raise_token = RAISE_ERRORS.set(True)
            try:
                train_cmd.main(args=["--check-only", *argv], prog_name="train", standalone_mode=False)
            except RunInUse:
                pass
            except (InputError, click.ClickException) as exc:
                refused[i] = (other_name_hint(exc, exc.format_message())
                              if isinstance(exc, click.ClickException) else str(exc))
            finally:
                RAISE_ERRORS.reset(raise_token)
    finally:
        BATCH_BLAS.reset(tokens[0])
        CHECK_FOLDER.reset(tokens[1])
    return refused


def prepare_members(argvs, log_dir, threads: int | None = None, failed: list | None = None):
    """(prepared runs, {out or 'member i': refusal}) from train's own parsing of each member, under the
    BLAS thread count the batch trains it with (blas_of; ``threads``: the batch's --threads, default
    threads.resolve's), which its config.json records. An unexpected error leaves no member prepared:
    the ones prepared before it are rolled back. A member whose preparation fails at run time (a full
    disk: RunFailure or OSError) fails alone, its session rolled back, when ``failed`` is a list (it
    receives the message); the others are prepared. The --resume members are prepared last: preparing
    one commits its resume (config.json, the rows after its state dropped), which only training makes
    whole again. The runs are returned in the members' order."""
    from tianref.cli.train import BATCH, BATCH_BLAS, COMMAND, train_cmd
    prepared, refused, at = [], {}, []
    prog = program()
    threads = blas_threads.resolve(threads)
    blas_token = BATCH_BLAS.set(lambda xp_name: blas_of(xp_name, threads))
    try:
        for i in sorted(range(len(argvs)), key=lambda i: "--resume" in argvs[i]):   # stable: resumes last
            argv = argvs[i]
            box, raise_token = BATCH.set([]), RAISE_ERRORS.set(True)
            cmd = COMMAND.set(f"{prog} train {shlex.join(argv)}  (trained in a batch by {prog} train-batch)")
            out = _out_of(argv)
            label = f"member {i + 1}" if out is None else None
            try:
                train_cmd.main(args=list(argv), prog_name="train", standalone_mode=False)
                if not BATCH.get():                         # --help: click printed and returned
                    raise InputError("no run to train (its arguments only asked for help)")
                prepared.extend(BATCH.get())
                at.extend([i] * len(BATCH.get()))
            except (RunFailure, OSError) as exc:
                if failed is None:
                    raise
                msg = describe_oserror(exc) if isinstance(exc, OSError) else str(exc)
                failed.append(f"{out if out is not None else label}: {msg}")
                _say(log_dir, out, f"Error: {msg}", label)         # on stderr too, as a diverging run's
            except (InputError, click.ClickException) as exc:
                msg = other_name_hint(exc, exc.format_message()) if isinstance(exc, click.ClickException) else str(exc)
                refused[(i, out if out is not None else label)] = msg
                _say(log_dir, out, f"Error: {msg}", label, echo=False)   # stderr: the one closing line
            finally:
                BATCH.reset(box)
                RAISE_ERRORS.reset(raise_token)
                COMMAND.reset(cmd)
    except BaseException as exc:
        for p in reversed(prepared):                        # as train would leave each: rolled back
            p.session.__exit__(type(exc), exc, exc.__traceback__)
        raise
    finally:
        BATCH_BLAS.reset(blas_token)
    prepared = [p for _, p in sorted(zip(at, prepared), key=lambda ip: ip[0])]
    return prepared, {k: refused[(i, k)] for i, k in sorted(refused)}


def _groups(prepared):
    """Members that can train as one stack: same condition up to seed and eta (stacks.same_stack), same
    backend, same starting epoch, same resume status."""
    groups = []
    for p in prepared:
        for g in groups:
            q = g[0]
            if (same_stack(p.cfg, q.cfg) and p.xp_name == q.xp_name
                    and (p.state is None) == (q.state is None)
                    and (p.state is None or p.state.epoch == q.state.epoch)):
                g.append(p)
                break
        else:
            groups.append([p])
    return groups


def _fitting(groups, available=None):
    """Each stack cut into stacks whose runs fit in the share of this machine's memory a command plans on
    (memory.HEADROOM; train checked each run alone, tianref/memory.py); ``available``: bytes, default
    memory.available_bytes()."""
    have = memory.available_bytes() if available is None else available
    out = []
    for g in groups:
        need = max(memory.stacked_bytes(g[0].cfg), 1)
        n = len(g) if have is None else max(1, min(len(g), int(memory.HEADROOM * have) // need))
        if n < len(g):
            say(f"train-batch: {len(g)} runs of {g[0].cfg.M} x {g[0].cfg.K} need about "
                f"{len(g) * need / 2**30:.1f} GiB together, {have / 2**30:.1f} GiB are available (a command "
                f"plans on {memory.HEADROOM:.0%}): trained as stacks of {n}")
        out += [g[i:i + n] for i in range(0, len(g), n)]
    return out


@click.command("train-batch", context_settings={"show_default": True})
@click.option("--member", "members", multiple=True, required=True,
              help="One run: the arguments of its train command (what follows `train`), shell-quoted. "
                   "Repeat for every run of the batch. A member's own --threads is ignored: the batch's "
                   "--threads applies to all.")
@click.option("--log-dir", type=GivenPath(file_okay=False), default=None,
              help="Append each run's messages (errors, its JSON summary) to LOG_DIR/<run folder>.log, "
                   "as sweep's _logs/ holds them.")
@click.option("--threads", type=THREADS, default=None, show_default=blas_threads.DEFAULT_TEXT,
              help="Threads of this process. With --xp numpy the stack is split into THREADS parts stepped "
                   "at the same time, each with a one-thread BLAS (the runs' numbers do not depend on the "
                   "split); with --xp cupy the host BLAS's threads.")
@reports_errors
def train_batch_cmd(members, log_dir, threads):
    """Train the --member runs (one condition, different seeds or etas) as one stacked array.

    Runs of different conditions, or that start from different epochs, train in separate stacks,
    one after another. A run that diverges ends alone (its message in its log); SIGINT/SIGTERM save every run's resume state. Prints one JSON summary line per run on
    stdout. A member whose arguments are refused (an unknown option, a bad value, a folder it cannot
    use) refuses the whole command before any run trains (exit 2); a member whose folder another
    process is training is refused alone and the others train (exit 2 at the end). Exit 0 when every run
    finished, 1 when one failed, 130 / 143 when SIGINT / SIGTERM stopped them (each saved its resume
    state; 1 if a run failed as well).
    """
    argvs = []
    for m in members:
        try:
            argvs.append(shlex.split(m))
        except ValueError as exc:                      # before any run is touched
            raise InputError(f"--member {m!r}: {exc}") from None
    seen = {}
    for argv in argvs:                                 # one run per folder: before any run is touched
        out = _out_of(argv)
        key = None if out is None else os.path.realpath(out)
        if key in seen:
            raise InputError(f"--member: two members write to the same --out {out}")
        if key is not None:
            for k, o in seen.items():                  # a run inside another member's run folder
                if key.startswith(k.rstrip(os.sep) + os.sep):
                    inner, outer = out, o
                elif k.startswith(key.rstrip(os.sep) + os.sep):
                    inner, outer = o, out
                else:
                    continue
                raise InputError(f"--member: --out {inner} lies inside the --out {outer} of another member, "
                                 "whose run folder only its own run writes")
            seen[key] = out
    made_logs = False
    if log_dir is not None:
        check_output_dir(log_dir, "--log-dir")         # a path that cannot be used: before any run
        _check_logs_apart(log_dir, seen.values())
        _check_log_names(log_dir, seen.values())
    bad = check_members(argvs, threads)               # every member's own checks: before anything is touched
    if bad:                                            # (a --log-dir that exists, a sweep's, records them)
        names = {i: _out_of(argvs[i]) or f"member {i + 1} (no --out)" for i in bad}
        if log_dir is not None and os.path.isdir(log_dir):
            for i, v in bad.items():
                _say(log_dir, _out_of(argvs[i]), f"Error: {v}", names[i], echo=False)
        raise InputError(f"{len(bad)} of {len(argvs)} runs refused: "
                         + "; ".join(f"{names[i]}: {v.rstrip('.')}" for i, v in bad.items()) + "; no run was trained")
    if log_dir is not None:
        made_logs = _first_missing(log_dir)            # the topmost folder makedirs creates (None: none)
        os.makedirs(log_dir, exist_ok=True)
    # A member refused here met its folder changed since the first pass (another process took or changed
    # it): it is refused alone, as a folder in use is, and the others train. (Rolling the others back
    # instead could not undo a --resume already committed: its dropped rows are recomputed only by training.)
    # A member whose preparation fails at run time (a full disk) fails alone, as a run that diverges does.
    not_started = []
    prepared, refused = prepare_members(argvs, log_dir, threads, not_started)
    if not prepared and made_logs and not not_started:  # every member refused: bad input leaves nothing behind
        shutil.rmtree(made_logs, ignore_errors=True)   # (the refusals are the one line on stderr)
    try:
        failed = not_started + _train_all(prepared, log_dir, blas_threads.resolve(threads))
    except RunFailure as exc:                          # a stop (130/143): 1 when a member also failed
        if not_started:
            raise RunFailure(f"{exc}; {len(not_started)} run(s) failed before training (first: "
                             f"{not_started[0]})") from None
        raise
    if refused:                                        # one line naming every refused member and why
        raise InputError(f"{len(refused)} of {len(argvs)} runs refused: "
                         + "; ".join(f"{k}: {v.rstrip('.')}" for k, v in refused.items()))
    if failed:
        raise RunFailure(f"{len(failed)} of {len(argvs)} runs failed (first: {failed[0]})")


def _first_missing(path):
    """The topmost folder of ``path`` that does not exist yet (what makedirs would create first), or None."""
    path, top = os.path.abspath(path), None
    while not os.path.exists(path):
        top, path = path, os.path.dirname(path)
    return top


def _check_log_names(log_dir, outs) -> None:
    """Refuse two members whose logs would be one file: a member's log in --log-dir is named after its
    folder's last name (as a sweep names them), so d1/run and d2/run would write into one run.log."""
    named = {}
    for out in outs:
        name = os.path.basename(os.path.normpath(out))
        if name in named:
            raise InputError(f"--log-dir {log_dir}: the members --out {named[name]} and --out {out} would share "
                             f"the log {name}.log; give their folders different names")
        named[name] = out


def _check_logs_apart(log_dir, outs) -> None:
    """Refuse a --log-dir at or inside a member's --out: its logs would be files of that run folder,
    which no run writes (a later --overwrite refuses such a folder), or a folder train refuses as not
    empty."""
    logs = os.path.realpath(log_dir)
    for out in outs:
        run = os.path.realpath(out)
        if logs == run or logs.startswith(run.rstrip(os.sep) + os.sep):
            raise InputError(f"--log-dir {log_dir} lies in the folder of the member --out {out}, where only "
                             "its run writes; give a folder outside every member's --out")


def _train_all(prepared, log_dir, threads: int) -> list:
    """Train every prepared run, stack by stack; exit each run's session with its own outcome. A run
    already complete (--resume of a finished run) is left untouched, as train leaves it: its summary only.
    Returns the failure messages."""
    from tianref import train
    from tianref.cli.train import summary_of
    failed = []
    for p in [p for p in prepared if p.complete]:
        p.session.__exit__(None, None, None)
        _print_summary(log_dir, p.out, summary_of(p.out, p.cfg, p.xp_name, 0.0, already=p.complete))
    prepared = [p for p in prepared if not p.complete]
    pending = list(prepared)
    stop_exc = None
    try:
        # one watch over every stack: a signal in a stack's last epoch (which then finishes its runs) or
        # between stacks stops the stacks after it from starting
        with train._Stop(lambda m: say(f"\n{m}")) as stop:
            for group in _fitting(_groups(prepared)):
                if stop.set:
                    stop_exc = _stopped_before_start(stop)
                    break
                stop_exc = _train_group(group, log_dir, failed, threads, stop)
                pending = [p for p in pending if p not in group]
                if stop_exc is not None:
                    break
    except BaseException as exc:                  # the runs not ended yet end with it (train's rollback)
        for p in pending:
            p.session.__exit__(type(exc), exc, exc.__traceback__)
        pending = []
        raise
    finally:
        _end_unstarted(pending, RunFailure(str(stop_exc)), log_dir)    # never started: a stop came first
    if stop_exc is not None:                      # exit 130/143; 1 if a run also failed (it needs a look)
        if failed:
            raise RunFailure(f"{stop_exc}; {len(failed)} run(s) failed (first: {failed[0]})")
        raise stop_exc
    return failed


def _stopped_before_start(stop) -> Interrupted:
    return Interrupted(f"stopped by {stop.name} before its stack started; continue by running it again", stop.name)


def _end_unstarted(prepared, exc, log_dir) -> None:
    """Runs stopped before their first row: each session ends as train's would (rolled back, an
    --overwrite'd old run put back), every one before any log is written (a log that fails cannot keep
    a later run from being put back); then each log says so."""
    for p in prepared:
        p.session.__exit__(RunFailure, exc, None)
    for p in prepared:
        _say(log_dir, p.out, f"Error: not started ({exc})")


def _train_group(group, log_dir, failed, threads: int, stop):
    """One stack. Returns the RunFailure of a stop signal (after every session is closed), or None.
    On the host backends ``threads`` > 1 splits the stack into that many parts stepped by as many
    threads, each with a single-threaded BLAS (tianref/batch.py: faster than a multi-threaded BLAS on
    the many small products of a row); on a GPU it is the host BLAS's thread count. ``stop``: the
    train._Stop watching the signals. A run that fails is closed (its divergence recorded, its lock
    released, its message logged) as soon as it leaves the stack, while the others train on."""
    from tianref import train
    xp = group[0].xp
    members, writers, started, ended = [], [], [], []
    for p in group:
        if p.state is None:
            try:                               # its BLAS as when it trains (the ridge solve of --ridge-eval
                with blas_threads.limits(blas_of(p.xp_name, threads)):      # current runs here)
                    problem, state = train.setup(p.cfg, xp, p.init)
            except RunFailure as exc:          # the ridge V of its initial W (--ridge-eval current): it ends
                ended.append((p, exc))         # alone before its first row, as train ends it
                continue
        else:
            problem, state = p.problem, p.state
        started.append(p)
        w = runs.RunWriter(p.out, keep_resume_state=not p.no_resume_state, on_first_row=p.session.started,
                           fingerprint=p.fingerprint, digest=p.digest)
        writers.append(w)
        members.append(engine_batch.Member(p.cfg, problem, state, resumed=p.state is not None, sink=w))
    for p, exc in ended:                       # (its session closed once every setup is done)
        p.session.__exit__(RunFailure, exc, None)
        failed.append(f"{os.path.basename(p.out)}: {exc}")
        _say(log_dir, p.out, f"Error: {exc}")
    if not members:
        return None
    group, p0 = started, started[0]
    if stop.set:                               # a signal while the runs were set up: none has a row yet
        for w in writers:
            w.close()
        exc = _stopped_before_start(stop)
        _end_unstarted(group, exc, log_dir)
        return exc
    closed = set()                             # members already ended (on_end), by id
    late = []                                  # an OSError met while ending one: raised after the stack
    of = {id(m): (p, w) for p, m, w in zip(group, members, writers)}

    def on_end(m):                             # a failed member, out of the stack: closed now; nothing it
        p, w = of[id(m)]                       # meets may stop the runs still training beside it
        closed.add(id(m))
        try:
            w.close()
            _end_failed(p, m, log_dir, lead="\n" if interactive() else "")
        except OSError as exc:
            late.append(exc)
    t0 = time.time()
    start, E = members[0].state.epoch, p0.cfg.epochs
    stopped = None
    parts = threads if p0.xp_name in HOST else 1
    try:
        with RowProgress(max(E - start, 0), batch_label(p.out for p in group)) as bar, \
                np.errstate(over="ignore", invalid="ignore"), blas_threads.limits(blas_of(p0.xp_name, threads)):
            last = {"e": start}

            def on_epoch(epoch):                    # part 0's epochs (batch.run), named by its first live run
                p, row = next(((p, m.row) for p, m in zip(group[::parts], members[::parts])
                               if m.failed is None and m.row), (None, None))
                if row and len(members) > 1:        # whose test_acc the line shows
                    row = dict(row, **{RUN_KEY: os.path.basename(p.out)})
                bar.update(1 if epoch > last["e"] else 0, row or {})
                last["e"] = epoch
            engine_batch.run(xp, members, parts=parts, on_epoch=on_epoch, on_end=on_end, stop=stop)
    except RunFailure as exc:                       # a stop signal: every running run saved its state
        stopped = exc
    finally:
        for w in writers:
            w.close()
    secs = round(time.time() - t0, 3)
    for p, m in zip(group, members):
        if m.failed:                                    # named in member order, whenever it ended
            failed.append(f"{os.path.basename(p.out)}: {m.failed}")
        if id(m) in closed:
            continue
        finished = m.failed is None and m.stopped is None and m.state.epoch >= p.cfg.epochs
        if m.failed:
            _end_failed(p, m, log_dir)
            continue
        if m.stopped or (stopped is not None and not finished):
            msg = m.stopped or f"not started ({stopped})"                    # each run's own stop epoch
            p.session.__exit__(RunFailure, RunFailure(msg), None)
            _say(log_dir, p.out, f"Error: {msg}")
            continue
        p.session.__exit__(None, None, None)
        _print_summary(log_dir, p.out, _summary(p, secs, len(group)))
    if late:                                            # (every other run is ended and reported first)
        raise late[0]
    return stopped


def _end_failed(p, m, log_dir, lead: str = "") -> None:
    """End member m's run, which failed: its divergence recorded in its config.json (as train records
    it), its session closed with the failure (lock released), its message on stderr (after ``lead``:
    a line break while a progress bar is drawn) and in its log."""
    from tianref.cli.train import record_divergence
    try:
        if m.diverged:
            record_divergence(p.out, p.session, *m.diverged)
    finally:
        p.session.__exit__(RunFailure, RunFailure(m.failed), None)
    _say(log_dir, p.out, f"Error: {m.failed}", lead=lead)


def _print_summary(log_dir, out, summary):
    """A run's JSON summary line: to stdout, and appended to its log in --log-dir."""
    click.echo(json.dumps(summary))
    path = _member_log(log_dir, out)
    if path is not None:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(summary) + "\n")


def _summary(p, secs, n_runs):
    """train's JSON summary of one run; ``seconds`` is its share of the stack's time (the stack's
    seconds over its runs, so the shares of a stack add up to its time), ``seconds_batch`` the whole."""
    from tianref.cli.train import summary_of
    return {**summary_of(p.out, p.cfg, p.xp_name, secs / n_runs), "seconds_batch": secs, "batch_runs": n_runs,
            "batched": True}
