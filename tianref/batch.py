"""S runs that differ only by their seed (and their weight decay eta), trained as one array with a
leading run axis.

Reference: tianref/train.py (the loop, its logging order and its checkpoints); docs/batch.md.

The runs of a batch share every setting but the seed and eta: the same shapes, the same optimizer, the
same epochs (runs with an eta schedule share it, hence their eta; ``same_stack``). Their parameters
and optimizer moments are stacked along a leading axis S,

    W (S, 2M, K)   V (S, K, M)   Adam's m, v, m^wd like them      (run s = index s)

and the same math modules that train one run (model, loss, optim) train all S: the forward pass is a
stack of S gathers and S matrix products, the loss reduces each run's (n, M) block, the optimizer is
elementwise. NumPy multiplies a stack slice by slice with the same BLAS call as one matrix, so run
s's numbers are bit for bit those of its unbatched run (tests/test_batch.py holds that, float32 and
float64, on the numpy and fake backends). What stays per run:

    its split and labels  (data.stack_batches: run s's rows of the stacked gathers and segment sums)
    its rolling Grams and edge rings: slice s of the stack's rings (S, w_max, P), pushed for all S by
                          one call (stack_rings; its state names the views of its slice)
    its random stream (the independence-proxy pairs; numpy Generator of its own seed)
    its eta               one host value per run, (S, 1, 1), when the runs' etas differ (optim.per_run:
                          each run's coefficients as its own run forms them; a run with eta = 0 adds
                          exact zeros where its own run skips the decay, and its "no decay yet" flags
                          are its own again in its checkpoints: member_state, its zeros +0.0: own_zeros)
    its row: tianref/rows.py computes the S rows from the stacked arrays (S = 1 for one run)
    its sink: metrics.jsonl, checkpoints, resume state (runs.RunWriter), its lock (the CLI's)

A run whose loss or parameters become non-finite, or whose ridge solve fails in a step, is ended
alone: its rows are kept, ``failed`` gets its message (``diverged`` the epoch and what became non-finite
or failed, as train.run's errors.Diverged names them), and the stack continues without it.
SIGINT/SIGTERM stop every run at the next row boundary after writing each run's resume state (as
train.run does for one).
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field

import numpy as np  # host-side only: finiteness of host rows, run indices, NumPy's error state, LinAlgError

from tianref import (data, edge as edges, group_rows, loss as losses, model, optimizers, rows as rows_mod, runs,
                     spectra, train)
from tianref.errors import Interrupted, RunFailure
from tianref.stacks import etas_of, never_decayed, own_flags, own_zeros, same_stack, stack_state, take


@dataclass
class Member:
    """One run of a batch: its config (seed), fixed data, per-run state and sink.

    state : train.TrainState of the run when it joins (setup or a resume state); while the batch
            trains, its params/adam live in the stack and only spec, edge, rng and epoch here are used
    """
    cfg: object
    problem: train.Problem
    state: train.TrainState
    resumed: bool = False          # its row state.epoch is already logged (a resume state)
    sink: object = None
    on_row: object = None
    failed: str | None = None
    diverged: tuple | None = None  # (epoch, errors.Diverged.KINDS): its failure was a divergence (errors.Diverged)
    stopped: str | None = None     # a stop signal's message, with the epoch its resume state is at
    row: dict | None = field(default=None, repr=False)
    views: tuple | None = field(default=None, repr=False)   # its slices of the stack's rings (stack_rings)


def _stacked_problem(xp, members):
    M = members[0].cfg.M
    tables = [group_rows.task_table(m.cfg) for m in members]
    return (data.stack_batches(xp, M, [m.problem.train_idx for m in members], tables),
            data.stack_batches(xp, M, [m.problem.test_idx for m in members], tables))


def member_state(P, opt, m, s, epoch):
    """Run s's full TrainState (views into the stack), for its row and its checkpoints; a run that never
    decayed (never_decayed) gets its own flags back, as its unbatched run has them."""
    own = take(opt, s)
    if never_decayed(m.cfg):
        own = own_flags(own)
    return train.TrainState(params=take(P, s), adam=own, spec=m.state.spec,
                            rng=m.state.rng, epoch=epoch, edge=m.state.edge)


def _fail(m, msg, diverged=None):
    m.failed, m.diverged = msg, diverged


def run(xp, members, *, parts: int = 1, on_epoch=None, on_stop=None, on_end=None, stop=None):
    """Train every member to row cfg.epochs as one stack.  All members must share the condition up to
    seed and eta (same_stack), the epoch they start from and whether that row is logged. Returns the members
    (``failed`` set on the ones that diverged). Raises RunFailure on SIGINT/SIGTERM after saving every
    running member's resume state. on_epoch(epoch): after each logged row of the batch (of the first
    part); on_stop(message): a stop signal; on_end(member): a member that failed, as soon as it has
    left the stack (its rows and checkpoints written: the caller may close its run while the others
    train; from a part's thread when ``parts`` > 1). ``stop``: a train._Stop already watching the
    signals (the caller's, over several stacks), else one is installed for this stack.

    ``parts`` > 1 splits the members into that many stacks, stepped at the same time by as many
    threads (NumPy releases the interpreter lock inside its array operations, so the parts overlap
    on a multi-core CPU; give each a single-threaded BLAS). Which part a run is in changes none of
    its numbers: each run's slice of a stack is computed as it would be alone."""
    cfg0 = members[0].cfg
    epoch, resumed = members[0].state.epoch, members[0].resumed
    for m in members[1:]:
        if not same_stack(m.cfg, cfg0) or (m.state.epoch, m.resumed) != (epoch, resumed):
            raise ValueError("a batch holds runs of one condition (up to seed and eta) starting from one epoch")
    parts = max(1, min(int(parts), len(members)))
    with (train._Stop(on_stop) if stop is None else contextlib.nullcontext(stop)) as stop:
        if parts == 1:
            _loop(xp, members, epoch, resumed, stop, on_epoch, on_end)
            return members
        split = [members[i::parts] for i in range(parts)]                     # round robin
        errors = [None] * parts
        errs = {k: v for k, v in np.geterr().items() if k != "under"}

        def work(i):
            try:
                with np.errstate(**errs):                # NumPy's error state is per thread
                    _loop(xp, split[i], epoch, resumed, stop, on_epoch if i == 0 else None, on_end)
            except BaseException as exc:                                       # re-raised by the caller
                errors[i] = exc
        threads = [threading.Thread(target=work, args=(i,), name=f"batch-part-{i}") for i in range(parts)]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)                      # short waits: a signal reaches the main thread's handler
        for i, exc in enumerate(errors):         # a part that failed: its runs end with its error,
            if exc is not None and not isinstance(exc, RunFailure):   # named even when a stop is raised below
                for m in split[i]:
                    if m.failed is None and m.stopped is None:
                        m.failed = str(exc) or type(exc).__name__
        for exc in errors:
            if isinstance(exc, RunFailure):      # a stop: every part saved its runs first
                raise exc
        for exc in errors:
            if exc is not None:
                raise exc
    return members


def _loop(xp, live, epoch, resumed, stop, on_epoch, on_end=None):
    """The training loop of one stack (train.run's order): rows, checkpoints, stop, step. A member that
    fails leaves the stack at once and is handed to on_end (run's docstring)."""
    cfg0 = live[0].cfg
    live = list(live)
    P, opt = stack_state(xp, [m.state for m in live])
    rings = stack_rings(xp, live)
    train_b, test_b = _stacked_problem(xp, live)
    checkpoints = set(cfg0.checkpoint_epochs)
    fwd = None
    while live:
        if not resumed:
            head, fwd = train.head_of(xp, cfg0, P, train_b, test_b)          # (S,) values
            ended = []
            logged, error = _write_rows(_rows(xp, cfg0, live, P, epoch, head, fwd, train_b, rings))
            for s, m in enumerate(live):
                if s in logged:                     # its row is logged: its checks and checkpoints follow
                    try:
                        _log(m, P, opt, s, epoch, checkpoints)
                    except OSError as exc:          # the others' checkpoints are still written; the first
                        error = error or exc        # error (a row's, else this one) is the one reported
                if m.failed:
                    ended.append(s)
            if error is not None:
                raise error
            if ended:                                                         # drop them from the stack
                gone = [live[s] for s in ended]
                live, P, opt, rings, fwd, train_b, test_b = _drop(xp, live, ended, P, opt, fwd)
                _ended(gone, on_end)
                if not live:
                    break
            if on_epoch:
                on_epoch(epoch)
        else:
            for s, m in enumerate(live):
                if epoch == cfg0.epochs:                                      # make sure of final.npz
                    _save(m, P, opt, s, epoch, named=epoch in checkpoints, final=True)
        resumed = False
        if epoch >= cfg0.epochs:
            break
        if stop.set:
            for s, m in enumerate(live):
                _save(m, P, opt, s, epoch, named=False, final=False)
                m.stopped = (f"stopped by {stop.name} at epoch {epoch}; the resume state is saved: "
                             "continue with --resume")
            raise Interrupted(f"stopped by {stop.name} at epoch {epoch}; every run's resume state "
                              "is saved: continue with --resume", stop.name)
        P, opt, solve_failed = _step(xp, cfg0, live, P, opt, train_b, epoch, fwd, rings)
        fwd = None
        epoch += 1
        if solve_failed:                    # a run whose ridge solve failed ends alone, diverged as train.run ends it
            for s, msg in solve_failed.items():
                d = train.ridge_diverged(msg, epoch)
                _fail(live[s], str(d), (d.epoch, d.what))
            gone = [live[s] for s in sorted(solve_failed)]
            live, P, opt, rings, fwd, train_b, test_b = _drop(xp, live, sorted(solve_failed), P, opt, None)
            _ended(gone, on_end)


def _ended(gone, on_end) -> None:
    """Hand the members that left the stack to on_end (none: the caller ends them after the stack)."""
    if on_end is not None:
        for m in gone:
            on_end(m)


def _drop(xp, live, ended, P, opt, fwd):
    """The stack without the runs ``ended`` (indices s): (live, P, opt, rings, fwd, train_b, test_b) of
    the survivors (None for the arrays when none is left)."""
    keep = [s for s in range(len(live)) if s not in ended]
    live = [live[s] for s in keep]
    if not live:
        return live, None, None, None, None, None, None
    idx = xp.asarray(np.asarray(keep, dtype=np.int64))
    P, opt = take(P, idx), take(opt, idx)
    rings = stack_rings(xp, live)                                             # the survivors' rings, restacked
    if fwd is not None:
        fwd = (fwd[0][idx], (fwd[1][0][idx], fwd[1][1][idx]), fwd[2][idx])
    train_b, test_b = _stacked_problem(xp, live)
    return live, P, opt, rings, fwd, train_b, test_b


def _rows(xp, cfg, live, P, epoch, head, fwd, train_b, rings):
    """Row ``epoch`` of every live run (tianref/rows.py, one call for the stack); a run whose update
    spectra cannot be computed (non-finite parameters) is marked failed, the others' rows computed
    again without it (each from its own rings, the views of its slice). Returns the live members,
    each with its row (None when it failed)."""
    views = [train.RunView(m.state.spec, m.state.edge, m.state.rng, m.problem) for m in live]
    Yhat, cache, _ = fwd
    streams = [v.rng.bit_generator.state for v in views]     # the pairs are drawn before the spectra
    try:
        rows = rows_mod.rows_of(xp, cfg, P, views, epoch, head, Yhat, cache, train_b, train.gram_states(cfg),
                                rings=rings)
    except np.linalg.LinAlgError:
        if len(live) == 1:
            rows = [None]
        else:                       # find the run(s) at fault: each alone (its own views and stream state)
            rows = []
            for s, (m, v) in enumerate(zip(live, views)):
                v.rng.bit_generator.state = streams[s]           # draw this row's pairs again, not new ones
                one = lambda x, s=s: x[s:s + 1]                                # noqa: E731
                try:
                    rows += rows_mod.rows_of(xp, cfg, {k: one(x) for k, x in P.items()}, [v], epoch,
                                             [(k, one(x)) for k, x in head], one(Yhat),
                                             (one(cache[0]), one(cache[1])), _one_batch(train_b, s),
                                             train.gram_states(cfg))
                except np.linalg.LinAlgError:
                    rows.append(None)
    for m, row in zip(live, rows):
        m.row = row
        if row is None:
            _fail(m, train.nonfinite_parameters(epoch), (epoch, "parameters"))
    return live


def _one_batch(b, s):
    """Run s of a stacked batch as a stack of one (its rows keep their offsets into the full stack's
    arrays, so only the per-run row values it indexes are used: the diagnostics read y and seg_y)."""
    return data.Batch(a=b.a[s:s + 1], b=b.b[s:s + 1], y=b.y[s:s + 1], seg_a=None, seg_b=None, n=b.n, M=b.M,
                      seg_y=b.seg_y[s:s + 1] - s * (b.n + 1), ia=b.ia[s:s + 1] - s * 2 * b.M,
                      ib=b.ib[s:s + 1] - s * 2 * b.M)


def _write_rows(live) -> tuple:
    """Every live run's row to its sink: each written, then synced together (runs.sync_rows: one
    wait for the disk instead of one per run); a sink without the two halves (runs.MemorySink) takes
    its row whole. Returns (the indices s of the runs whose row is logged, the first OSError or None):
    a row that could not be written or synced (a full disk) is not logged, every other one is."""
    errors, written, logged = [], [], set()
    for s, m in enumerate(live):
        if m.row is None:
            continue
        try:
            if not m.sink:
                logged.add(s)
            elif hasattr(m.sink, "write_row"):
                m.sink.write_row(m.row)
                written.append(s)
            else:
                m.sink.row(m.row)
                logged.add(s)
        except OSError as exc:
            errors.append(exc)
    for s, exc in zip(written, runs.sync_rows([live[s].sink for s in written]) if written else []):
        if exc is None:
            logged.add(s)
        else:
            errors.append(exc)
    return logged, (errors[0] if errors else None)


def _log(m, P, opt, s, epoch, checkpoints):
    """After its row is logged (_write_rows): check run s's row and write its checkpoints (train.run's
    order)."""
    row = m.row
    if row is None:
        return
    if m.on_row:
        m.on_row(row)
    if not (np.isfinite(row.get("train_loss", np.nan)) and np.isfinite(row.get("test_loss", np.nan))):
        return _fail(m, f"the loss became non-finite at epoch {epoch}; the rows logged so far are kept",
                     (epoch, "loss"))
    final = epoch == m.cfg.epochs
    if epoch in checkpoints or final:
        _save(m, P, opt, s, epoch, named=epoch in checkpoints, final=final)


def _save(m, P, opt, s, epoch, named: bool, final: bool):
    """Run s's checkpoint at ``epoch`` through its sink (runs.RunWriter: named, final and resume state)."""
    if m.sink:
        st = member_state(P, opt, m, s, epoch)
        if never_decayed(m.cfg):                    # +0.0 where the stack may hold -0.0 (own_zeros)
            st = own_zeros(st)
        m.sink.checkpoint(lambda buf: train.state_arrays(m.cfg, st, m.problem, buf), epoch, named=named, final=final)


def _step(xp, cfg, live, P, opt, train_b, epoch, fwd, rings):
    """One optimizer step of every run in the stack; the updates go to the stacked rings (one push for
    the stack: each run's slice as its own push would leave it), then each member's state names its
    slices with the new count. Returns (params, optimizer state, {s: message} of the runs whose ridge
    solve failed: the caller ends them)."""
    P_step = P                                                             # the params the step starts from
    failed = {}
    if cfg.top_layer == "ridge" and not train.ridge_current(cfg):
        P_step, cache, dL_dYhat = train.held_forward(xp, cfg, P, train_b, fwd, failed)   # V := each run's ridge(W)
    elif fwd is None:
        Yhat, cache = model.forward(xp, P, train_b, cfg.act, cfg.output_scale)
        _, dL_dYhat = losses.loss_and_grad(xp, Yhat, train_b.y, cfg.loss)
    else:
        Yhat, cache, dL_dYhat = fwd
    grads = model.backward(xp, P_step, train_b, cache, dL_dYhat, cfg.act, cfg.output_scale)
    new, opt, wd = optimizers.update(xp, cfg, train.trained(cfg, P_step), grads, opt, eta=etas_of(live, epoch),
                                     wd_part=True)
    if train.ridge_current(cfg):
        new = dict(new, V=train.ridge_top(xp, cfg, new["W"], train_b, failed=failed))   # each run's V of its new W
    for key, (k, mode) in train.gram_states(cfg).items():
        d = spectra.delta(xp, new[k], P[k], mode, runs=True)              # (S, P) updates, one push
        if key in rings["edge"]:                                           # W, V: with the edge's cross-Grams
            rings["spec"][key], rings["edge"][key] = edges.push(xp, rings["edge"][key], rings["spec"][key], d,
                                                                wd.get(k), mode)
        else:
            rings["spec"][key] = spectra.push(xp, rings["spec"][key], d, mode)
    _name_slices(live, rings, epoch + 1)
    return new, opt, failed


def stack_rings(xp, live) -> dict:
    """The members' rolling Grams and edge rings as one stack (rows.rings_of: copies; one member: views
    of its own arrays), and each member's state rebound to the views of its slice (so its checkpoints
    read the stack); the members' own arrays are then free."""
    rings = rows_mod.rings_of(xp, [train.RunView(m.state.spec, m.state.edge, None, None) for m in live],
                              train.gram_states(live[0].cfg))
    for s, m in enumerate(live):
        m.views = ({k: (st["buf"][s], st["gram"][s]) for k, st in rings["spec"].items()},
                   {k: (st["buf_wd"][s], st["C"][s], st["H"][s]) for k, st in rings["edge"].items()})
    _name_slices(live, rings, live[0].state.epoch)
    return rings


def _name_slices(live, rings, epoch: int) -> None:
    """Each member's spec and edge: the views of its slice of the stacked rings, with the stack's
    update count and weight-decay flag (host bookkeeping, no backend call)."""
    for m in live:
        spec_v, edge_v = m.views
        spec = {k: {"buf": b, "gram": g, "count": rings["spec"][k]["count"]} for k, (b, g) in spec_v.items()}
        edge = {k: {"buf_wd": b, "C": c, "H": h,
                    "clean": rings["edge"][k]["clean"] or never_decayed(m.cfg)}   # as its own run's
                for k, (b, c, h) in edge_v.items()}
        m.state = train.TrainState(params=None, adam=None, spec=spec, rng=m.state.rng, epoch=epoch, edge=edge)
