"""The training loop: explicit state in, state out, in the paper code's logging order.

Reference: paper-protocol.md §3 ("Loop and logging"). For t = 0..E: evaluate and log row t
(the parameters after t steps), then take step t+1 -- no step after row E. E epochs give
E + 1 rows and E steps. The forward pass of row t on the training set is reused by step t+1.

State (``TrainState``)
    params   {'W': (2M, K), 'V': (K, M)}  training dtype, on the device
    adam     optimizer state (optimizers.init; Adam's dict for adam/adamw, whence the name)
    spec     {'W': ..., 'V': ...}         rolling-update Gram states (spectra.init; gram_states)
    edge     {'W': ..., 'V': ...}         the ring of weight-decay parts and its cross-Grams C, H with the
                                          updates, slots as spec['W'/'V'] (edge.init)
    rng      numpy Generator for the independence-proxy pairs (host; persists across epochs)
    epoch    number of steps taken

The ridge top layer (docs/math.md §10), ``--ridge-eval``:
    held     Tian's loop. Each step first overwrites V by the ridge solution of the current W
             (ridge.ridge_V, outside the gradient), then the optimizer steps W and V from there, V by
             the gradient at the solved V (coupled decay included). The rows, every diagnostic and
             every checkpoint see the V held: the last solve plus one optimizer step (row 0: the
             initial V). V's update in the rolling Grams is V_held(t+1) - V_held(t).
    current  only W is trained: V = ridge(W) at setup and after every step, so every row sees the V
             of its W. W's trajectory is the same in both.
"""
from __future__ import annotations

import json
import signal
import threading
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np  # host-side bookkeeping only (split, rng, checkpoint scalars, finiteness of host rows, LinAlgError)

from tianref import data, edge as edges, group_rows, loss as losses, model, optimizers, ridge, rows, spectra
from tianref.config import eta_at
from tianref.backend import to_host
from tianref.errors import Diverged, InputError, Interrupted, RunFailure
from tianref.data import check_init, split_of  # noqa: F401  (the engine's entry points for an init dict)


@dataclass
class TrainState:
    params: dict
    adam: dict
    spec: dict
    rng: object
    epoch: int
    edge: dict = None


@dataclass(frozen=True)
class Problem:
    """The fixed data of a run: the split, the device batches (labels from the task table) and, for a
    --group run with full metrics, the irrep diagnostics' precomputed projectors (group_rows)."""
    train_idx: np.ndarray
    test_idx: np.ndarray
    train: data.Batch
    test: data.Batch
    group: object = None      # group_rows.GroupView or None (Z_M)


def dtype_of(xp, cfg):
    return {"float32": xp.float32, "float64": xp.float64}[cfg.dtype]


def gram_states(cfg) -> dict:
    """{spec key: (parameter, Gram mode)}: one rolling Gram per parameter in cfg.gram_dtype, and one
    per mode in cfg.log_grams ('W_f32', 'V_f32seq', ...; logged as W_sigma_f32, W_gap23_f32seq)."""
    out = {k: (k, cfg.gram_dtype) for k in ("W", "V")}
    for m in cfg.log_grams:
        out.update({k + spectra.GRAM_SUFFIX[m]: (k, m) for k in ("W", "V")})
    return out


def setup(cfg, xp, init=None):
    """(Problem, initial TrainState) from the config, or from an init dict (W, V, train_idx)."""
    train_idx, test_idx, W0, V0 = data.init_host(cfg.M, cfg.K, cfg.n_train, cfg.seed)
    if init is not None:
        train_idx, test_idx = data.init_split(cfg, init)
        # host, in C order: a file may hold them in Fortran order, and on some CPUs the BLAS rounds a
        # product of an F-ordered operand differently, so the same values must give the same run
        W0, V0 = np.ascontiguousarray(init["W"]), np.ascontiguousarray(init["V"])
    if cfg.init_scale != 1.0:
        V0 = cfg.init_scale * V0                                   # alpha: the initial V's scale
    dt = dtype_of(xp, cfg)
    params = {"W": xp.asarray(W0, dtype=dt), "V": xp.asarray(V0, dtype=dt)}
    table = group_rows.task_table(cfg)                             # None: Z_M's (a + b) mod M
    problem = Problem(train_idx, test_idx, data.make_batch(xp, cfg.M, train_idx, table),
                      data.make_batch(xp, cfg.M, test_idx, table),
                      group_rows.prepare(xp, cfg) if cfg.metrics == "full" else None)
    if ridge_current(cfg):
        params["V"] = ridge_top(xp, cfg, params["W"], problem.train)
    w_max = max(cfg.windows)
    state = TrainState(params=params, adam=optimizers.init(xp, cfg, trained(cfg, params)),
                       spec={s: spectra.init(xp, params[k].size, w_max, dt)
                             for s, (k, dt) in gram_states(cfg).items()},
                       rng=np.random.default_rng(cfg.seed), epoch=0,
                       edge={k: edges.init(xp, p.size, w_max, p.dtype) for k, p in params.items()})
    return problem, state


def ridge_current(cfg) -> bool:
    """--top-layer ridge --ridge-eval current: V = ridge(W) always, never stepped."""
    return cfg.top_layer == "ridge" and cfg.ridge_eval == "current"


def trained(cfg, params) -> dict:
    """The parameters the optimizer steps: W and V, or W alone under --ridge-eval current."""
    return {"W": params["W"]} if ridge_current(cfg) else params


def ridge_top(xp, cfg, W, train, F=None, failed=None):
    """The ridge V of W on the training batch ``train`` (ridge.ridge_V); F = sigma(XW) if already known.
    S stacked runs (batch.py): W (S, 2M, K), their stacked batch -> V (S, K, M), each run's own solve;
    ``failed`` takes the runs whose solve fails (ridge.ridge_V)."""
    if F is None:
        _, F = model.hidden(xp, W, train, cfg.act, keep_H=False)               # (n, K)
    return ridge.ridge_V(xp, F, train.y, cfg.M, cfg.ridge_reg, failed)         # (K, M)


def ridge_diverged(message: str, epoch: int) -> Diverged:
    """A ridge solve that failed (ridge.SolveFailed's ``message``) in the step to row ``epoch``, as the
    divergence it is: the steps are deterministic, so it would fail there again."""
    return Diverged(f"in the step to epoch {epoch}, {message}; the rows logged so far are kept", epoch,
                    "ridge solve")


def held_forward(xp, cfg, P, train, fwd, failed=None):
    """Tian's training forward under --ridge-eval held: V overwritten by ridge(W) (no gradient through
    the solve), then the forward and dL/dYhat at that V. Returns (params with the solved V, cache, dL).
    ``fwd``: the forward pass of P, if known (its sigma(XW) depends on W only). S stacked runs: as
    ridge_top (``failed`` too)."""
    if fwd is None:
        cache = model.hidden(xp, P["W"], train, cfg.act)                       # (H, F), (n, K) each
    else:
        cache = fwd[1]
    P = dict(P, V=ridge_top(xp, cfg, P["W"], train, cache[1], failed))
    Yhat = cache[1] @ P["V"]                                                   # (n, M) beta = 1 (validate)
    _, dL_dYhat = losses.loss_and_grad(xp, Yhat, train.y, cfg.loss)
    return P, cache, dL_dYhat


def step(xp, cfg, state, problem, fwd=None):
    """One full-batch optimizer step.  ``fwd`` = (Yhat, cache, dL_dYhat) of the current params, if known."""
    beta = cfg.output_scale
    P = state.params
    if cfg.top_layer == "ridge" and not ridge_current(cfg):
        P, cache, dL_dYhat = held_forward(xp, cfg, P, problem.train, fwd)     # V := ridge(W), then step
    elif fwd is None:
        Yhat, cache = model.forward(xp, P, problem.train, cfg.act, beta)
        _, dL_dYhat = losses.loss_and_grad(xp, Yhat, problem.train.y, cfg.loss)
    else:
        Yhat, cache, dL_dYhat = fwd
    grads = model.backward(xp, P, problem.train, cache, dL_dYhat, cfg.act, beta)
    params, adam, wd = optimizers.update(xp, cfg, trained(cfg, P), grads, state.adam,
                                         eta=eta_at(cfg, state.epoch), wd_part=True)
    if ridge_current(cfg):
        params = dict(params, V=ridge_top(xp, cfg, params["W"], problem.train))   # V of the new W
    spec, edge = record_update(xp, cfg, state.spec, state.edge, params, state.params, wd)
    return TrainState(params=params, adam=adam, spec=spec, rng=state.rng, epoch=state.epoch + 1,
                      edge=edge)


def record_update(xp, cfg, spec, edge, new, old, wd):
    """Push the update new - old of each parameter (one run's (2M, K) and (K, M) arrays) into the
    rolling Grams, and its weight-decay part wd {name: Delta^wd or None} into the edge rings and their
    cross-Grams (edge.push: W and V, whose pass over the ring of Delta serves G and C together).
    Returns (spec, edge); the rings are updated in place (spectra.push, edge.push). A batch pushes its stack's
    updates itself (batch._step), into its stacked rings."""
    spec, edge = dict(spec), dict(edge)
    for s, (k, m) in gram_states(cfg).items():
        d = spectra.delta(xp, new[k], old[k], m)
        if s in edge:                              # W, V: the Gram and the edge's cross-Grams in one push
            spec[s], edge[s] = edges.push(xp, edge[s], spec[s], d, wd.get(k), m)   # ridge current V: no wd
        else:                                      # a further Gram mode (--log-grams)
            spec[s] = spectra.push(xp, spec[s], d, m)
    return spec, edge


def evaluate(xp, cfg, state, problem):
    """Row ``state.epoch`` as a host dict, and the training forward pass for the next step."""
    head, fwd = head_of(xp, cfg, state.params, problem.train, problem.test)
    return row_of(xp, cfg, state, problem, head, fwd[0], fwd[1]), fwd


def head_of(xp, cfg, P, train, test):
    """The training and test forward passes and the row's first four keys.  Returns
    ([(key, value)], (Yhat, cache, dL_dYhat)); values 0-d, or (S,) for S stacked runs (batch.py)."""
    beta = cfg.output_scale
    Yhat, cache = model.forward(xp, P, train, cfg.act, beta)                   # (n, M)
    L, dL_dYhat = losses.loss_and_grad(xp, Yhat, train.y, cfg.loss)
    Yhat_te, _ = model.forward(xp, P, test, cfg.act, beta, keep_H=False)       # (n_test, M), no backward
    L_te, _ = losses.loss_and_grad(xp, Yhat_te, test.y, cfg.loss)
    head = [("train_loss", L), ("test_loss", L_te),
            ("train_acc", losses.accuracy(xp, Yhat, train.y)),
            ("test_acc", losses.accuracy(xp, Yhat_te, test.y))]
    return head, (Yhat, cache, dL_dYhat)


class RunView(NamedTuple):
    """What the logged row of one run reads beside the stacked arrays (tianref/rows.py)."""
    spec: dict
    edge: dict
    rng: object
    problem: Problem


def row_of(xp, cfg, state, problem, head, Yhat, cache):
    """Row ``state.epoch`` as a host dict: ``head`` (head_of's keys) and every diagnostic of one run,
    from its training forward pass (Yhat (n, M), cache (H, F)): tianref/rows.py with S = 1."""
    one = lambda v: v[None]                                                    # noqa: E731  (S = 1)
    return rows.rows_of(xp, cfg, {k: one(v) for k, v in state.params.items()},
                        [RunView(state.spec, state.edge, state.rng, problem)], state.epoch,
                        [(k, one(v)) for k, v in head], one(Yhat), (one(cache[0]), one(cache[1])),
                        data.as_stack(problem.train), gram_states(cfg))[0]


# --- state <-> arrays (checkpoints) ---------------------------------------------

def state_arrays(cfg, state, problem, with_buffer: bool) -> dict:
    """Everything needed to continue the run exactly, as host arrays."""
    out = {"W": to_host(state.params["W"]), "V": to_host(state.params["V"]),
           "train_idx": problem.train_idx, "test_idx": problem.test_idx,
           "epoch": np.int64(state.epoch), "config": np.str_(json.dumps(cfg.to_dict())),
           "rng_state": np.str_(json.dumps(state.rng.bit_generator.state)),
           "spec_count": np.int64(state.spec["W"]["count"]),
           "edge_clean": np.bool_(all(state.edge[k]["clean"] for k in ("W", "V")))}
    out.update(optimizers.to_arrays(cfg, state.adam))
    if with_buffer:
        for k in ("W", "V"):
            out[f"spec_buf_wd_{k}"] = to_host(state.edge[k]["buf_wd"])
            out[f"edge_C_{k}"] = to_host(state.edge[k]["C"])
            out[f"edge_H_{k}"] = to_host(state.edge[k]["H"])
    for k in gram_states(cfg):
        out[f"spec_gram_{k}"] = to_host(state.spec[k]["gram"])
        if with_buffer:
            out[f"spec_buf_{k}"] = to_host(state.spec[k]["buf"])
    return out


def state_from_arrays(xp, cfg, ck: dict) -> TrainState:
    """Inverse of state_arrays(with_buffer=True)."""
    dt = dtype_of(xp, cfg)
    try:
        params = {k: xp.asarray(ck[k], dtype=dt) for k in ("W", "V")}
        adam = optimizers.from_arrays(xp, cfg, ck, list(trained(cfg, params)), dt)
        spec = {k: {"buf": xp.asarray(ck[f"spec_buf_{k}"]), "gram": xp.asarray(ck[f"spec_gram_{k}"]),
                    "count": int(ck["spec_count"])} for k in gram_states(cfg)}
        edge = {k: edge_state(xp, ck, k, spec[k], cfg.gram_dtype) for k in ("W", "V")}
        rng = np.random.default_rng()
        rng.bit_generator.state = json.loads(str(ck["rng_state"]))
    except KeyError as exc:
        raise InputError(f"resume state lacks {exc}; it was not written by this version") from None
    return TrainState(params=params, adam=adam, spec=spec, rng=rng, epoch=int(ck["epoch"]), edge=edge)


def edge_state(xp, ck: dict, k: str, spec: dict, mode: str) -> dict:
    """Parameter k's edge state from resume arrays: its Delta^wd ring and its cross-Grams C and H. A
    state written before the cross-Grams were kept has the rings only: C and H are then formed from
    the rings' contents slot by slot (edges.cross_grams: the values the pushes left, so it resumes
    exactly)."""
    st = {"buf_wd": xp.asarray(ck[f"spec_buf_wd_{k}"]), "clean": bool(ck["edge_clean"])}
    if f"edge_C_{k}" in ck:
        return dict(st, C=xp.asarray(ck[f"edge_C_{k}"]), H=xp.asarray(ck[f"edge_H_{k}"]))
    return dict(st, **edges.cross_grams(xp, spec, st["buf_wd"], st["clean"], mode))


class SignalHandlers:
    """A context that handles SIGINT and SIGTERM by ``self._handler`` (main thread only; elsewhere a no-op)
    and restores the handlers it found on exit (``self._old``)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self._old = {}
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handler)
        return self

    def _handler(self, signum, frame):
        raise NotImplementedError

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class _Stop(SignalHandlers):
    """SIGINT and SIGTERM during a run (main thread only): ask the loop to stop at the next row
    boundary, where it writes the resume state and raises Interrupted (a RunFailure).

    A repeated signal does not abort: the rolling-Gram buffer is updated in place by a step, so
    the state of the last logged row cannot be saved once the next step has begun; the loop
    always finishes the row in progress (one epoch) and saves that. kill -9 stops at once; the
    run then resumes from its last checkpoint.
    """

    def __init__(self, notify=None):
        self.set = False
        self.name = None
        self.notify = notify
        self._old = {}

    def _handler(self, signum, frame):
        name = signal.Signals(signum).name
        if not self.set:
            self.set, self.name = True, name
            msg = "stop pending: finishing the current epoch, then saving the resume state"
        else:
            msg = "already stopping: the resume state is saved after the current epoch"
        if self.notify:
            self.notify(f"{name}: {msg}")



def nonfinite_parameters(epoch: int) -> str:
    """The message of a row that cannot be computed because the parameters are not finite; at epoch 0
    (a fresh run: no row logged yet) it is the initial weights that are."""
    if epoch == 0:
        return ("the initial parameters are not finite, or too large for the row's diagnostics (check "
                "--init-scale or the --init-from file); no row was logged")
    return (f"the parameters became non-finite at epoch {epoch} (the update spectra cannot be computed); "
            "the rows logged so far are kept")


def run(cfg, xp, *, problem=None, state=None, init=None, sink=None, on_row=None, on_stop=None):
    """Train from ``state`` (or from scratch) to row ``cfg.epochs``.

    sink    : object with ``row(dict)`` and ``checkpoint(arrays_fn, epoch, named, final)``
              (runs.RunWriter), or None
    on_row  : progress callback(row)
    on_stop : callback(message) when a stop signal arrives (the CLI prints it)
    Returns (final TrainState, Problem, last row). Raises Diverged (a RunFailure naming the epoch and
    'loss', 'parameters' or 'ridge solve') on a non-finite loss or parameters or a failed ridge solve
    in a step (ridge_diverged), and Interrupted (a RunFailure) on SIGINT/SIGTERM after saving the resume state (see
    ``_Stop``); a ridge solve that fails at setup (--ridge-eval current, before row 0) is a RunFailure.
    """
    if state is None:
        problem, state = setup(cfg, xp, init)
        resumed = False
    else:
        resumed = True                      # row state.epoch is already logged
    checkpoints = set(cfg.checkpoint_epochs)
    row, fwd = None, None
    with _Stop(on_stop) as stop:
        while True:
            if not resumed:
                try:
                    row, fwd = evaluate(xp, cfg, state, problem)
                except np.linalg.LinAlgError:
                    raise Diverged(nonfinite_parameters(state.epoch), state.epoch, "parameters") from None
                if sink:
                    sink.row(row)
                if on_row:
                    on_row(row)
                if not (np.isfinite(row.get("train_loss", np.nan))
                        and np.isfinite(row.get("test_loss", np.nan))):
                    raise Diverged(f"the loss became non-finite at epoch {state.epoch}; "
                                   "the rows logged so far are kept", state.epoch, "loss")
                final = state.epoch == cfg.epochs
                if sink and (state.epoch in checkpoints or final):
                    sink.checkpoint(lambda buf, s=state: state_arrays(cfg, s, problem, buf),
                                    state.epoch, named=state.epoch in checkpoints, final=final)
            elif sink and state.epoch == cfg.epochs:    # resumed at the end: make sure of final.npz
                sink.checkpoint(lambda buf, s=state: state_arrays(cfg, s, problem, buf),
                                state.epoch, named=state.epoch in checkpoints, final=True)
            resumed = False
            if state.epoch >= cfg.epochs:
                break
            if stop.set:
                if sink:
                    sink.checkpoint(lambda buf, s=state: state_arrays(cfg, s, problem, buf),
                                    state.epoch, named=False, final=False)
                raise Interrupted(f"stopped by {stop.name} at epoch {state.epoch}; the resume state "
                                  "is saved: continue with --resume", stop.name)
            try:
                state = step(xp, cfg, state, problem, fwd)
            except ridge.SolveFailed as exc:
                raise ridge_diverged(str(exc), state.epoch + 1) from None
            fwd = None
    return state, problem, row


def replay(cfg_dict: dict, epochs, xp, init=None, on_step=None) -> dict:
    """Re-run a configuration deterministically and return {epoch: {'W','V' host arrays}}.

    Only the optimizer steps are taken (no metrics): the parameters do not depend on them.
    on_step: progress callback(epoch) after each step, or None.
    """
    from tianref.config import TrainConfig, validate
    wanted = sorted(set(int(e) for e in epochs))
    cfg = validate(TrainConfig.from_dict(cfg_dict).replace(checkpoint_epochs=(),
                                                          epochs=max(wanted) if wanted else 0))
    problem, state = setup(cfg, xp, init)
    out = {}
    while True:
        if state.epoch in wanted:
            out[state.epoch] = {"W": to_host(state.params["W"]), "V": to_host(state.params["V"]),
                                "train_idx": problem.train_idx, "test_idx": problem.test_idx}
        if state.epoch >= cfg.epochs:
            return out
        state = step(xp, cfg, state, problem)
        if on_step:
            on_step(state.epoch)
