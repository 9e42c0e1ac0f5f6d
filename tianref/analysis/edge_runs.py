"""Probe the spectral edge of a stored run: replay it to chosen epochs, check the replay against
the run's own record, and run tianref.edge_probe on each space. Shared by ``cli.py edge`` and the
lifecycle reproduce section; docs/edge-and-clocks.md §3.

Two phases, each reported to ``progress(phase, n, total)`` (n more of total items done; n = 0 once when the
phase starts, before its first item):
    "replay"  the optimizer steps up to the last epoch; at each probed epoch the replay check and the
              edge directions of every space (kept: the weights and v_1..v_4 per space, nothing else)
    "probe"   the model evaluations of tianref.edge_probe.probe (edge_probe.n_evaluations per record)

probe_run returns one record per probed epoch (ascending) and space (in the order asked):
    {"epoch": int, "space": "joint" | "W" | "V", "replay_check": str,
     "split": {"sigma1", "g2", "wd2", "cross", "gfrac"?, "cos"?,   the edge split of e = D u_1 (tianref.edge),
               "pg2", "pwd2", "pcross", "pgfrac"?, "palign"?}     both views (edge_probe.space_edge, from
                                                                 the rings; W, V: the logged W_edge_* /
                                                                 V_edge_* numbers to the training dtype's
                                                                 rounding)
     "logged": {every "W_edge_*" / "V_edge_*" key of the run's row at the epoch (gfrac, cos, and the
                authors' pgfrac / palign where the run logged them)},
     "probe": edge_probe.probe's dict (its module docstring)}
"""
from __future__ import annotations

import os

import numpy as np  # host comparisons of replayed and stored weights

from tianref import edge as edges, edge_curvature, edge_probe, identity, runs
from tianref.backend import to_host
from tianref.analysis.records import read_rows
from tianref.config import TrainConfig, validate
from tianref.errors import InputError, RunFailure

SPACES = {"joint": ("W", "V"), "W": ("W",), "V": ("V",)}
REPLAY_RTOL = 1e-9      # logged vs replayed edge statistics (same arithmetic: equal unless the run changed)


def load_run(run_dir, epochs=()):
    """(validated TrainConfig, init arrays or None, {epoch: logged row}); the stored checkpoints of
    ``epochs`` must be this run's (their fingerprint, tianref/identity.py)."""
    if not os.path.isdir(run_dir):
        raise InputError(f"--run {run_dir}: no such directory")
    stored = runs.read_config(run_dir)
    try:
        cfg = validate(TrainConfig.from_dict(stored["config"]))
    except InputError as exc:
        raise InputError(f"{os.path.join(run_dir, 'config.json')}: {exc}") from None
    for e in epochs:
        p = runs.checkpoint_path(run_dir, int(e))
        if os.path.isfile(p):
            identity.check_checkpoint(stored, runs.load_npz(p), p, int(e))
    identity.check_run_folder(run_dir, stored, cfg)     # its log and states are config.json's run
    init = identity.replay_init(stored, cfg, os.path.join(run_dir, "config.json"), runs.load_npz)
    path = os.path.join(run_dir, "metrics.jsonl")
    logged = {r["epoch"]: r for r in read_rows(path)[0]} if os.path.isfile(path) else {}
    return cfg, init, logged


def check_epochs(cfg, epochs) -> None:
    """InputError unless every epoch lies within the run and at least one has an edge (>= 2)."""
    if max(epochs) > cfg.epochs:
        raise InputError(f"epoch {max(epochs)} is past the run's last epoch {cfg.epochs} (its train --epochs)")
    if max(epochs) < 2:                                   # row e follows e updates; the edge needs 2
        raise InputError(f"no edge at epoch(s) {', '.join(str(int(e)) for e in sorted(epochs))}: the edge is "
                         "the top direction of at least 2 updates, so ask for epochs >= 2")


def check_replay(run_dir, epoch, state, logged, strict=True, xp=None, w=None) -> str:
    """Compare the replayed state with what the run stored: its checkpoint's weights at ``epoch`` (bit
    for bit) and its logged W edge split, the parameter-space view (to REPLAY_RTOL). RunFailure on a
    difference when ``strict``; returns what was compared."""
    ck_path = runs.checkpoint_path(run_dir, epoch)
    said = []
    if os.path.isfile(ck_path):
        ck = runs.load_npz(ck_path)
        identity.check_checkpoint(runs.read_config(run_dir), ck, ck_path, epoch)
        same = all(np.array_equal(to_host(state.params[k]), ck[k]) for k in ("W", "V"))
        if strict and not same:
            raise RunFailure(f"replayed weights at epoch {epoch} differ from {ck_path}; the run cannot be "
                             "replayed on this backend/machine bit for bit (a replay is exact only on the run's "
                               "backend and BLAS thread count: edge --threads, config.json versions.blas_threads)")
        said.append("weights equal the checkpoint" if same else "weights DIFFER from the checkpoint")
    row = logged.get(epoch, {})
    if "W_edge_g2" in row:
        # the row's own arithmetic (the cross-Grams, tianref/edge.py), and the ring route a version before
        # them logged (a = D u_1, b = D^wd u_1 from the rings): a run of either version replays
        logged_route = dict(zip(edges.KEYS, (float(to_host(x)) for x in edges.window_splits(
            xp, state.spec["W"], state.edge["W"], w)[:3])))
        ring_route = edge_probe.space_edge(xp, state, w, ("W",))[1]
        worst, closest = min((_check_logged_split(epoch, split, row, strict=False), i)
                             for i, split in enumerate((logged_route, ring_route)))
        if strict:                                          # raises with the closer route's difference
            _check_logged_split(epoch, (logged_route, ring_route)[closest], row, strict)
        what = "reproduced" if worst <= REPLAY_RTOL else "NOT reproduced"
        said.append(f"logged W edge split {what} (parameter-space view; max relative difference {worst:.1e})")
    return "; ".join(said) or "nothing stored to compare"


def _check_logged_split(epoch, split, row, strict=True) -> float:
    """The largest difference of the replayed W split from the logged one, relative to max(g2, wd2);
    RunFailure above REPLAY_RTOL when ``strict``."""
    scale = max(abs(row["W_edge_g2"]), abs(row["W_edge_wd2"]), 1e-300)
    worst = max(abs(row[f"W_edge_{k}"] - split[k]) / scale for k in ("g2", "wd2", "cross"))
    if strict and worst > REPLAY_RTOL:
        raise RunFailure(f"epoch {epoch}: the replayed W edge split differs from the logged one by {worst:.1e} "
                         "(relative, parameter-space view); the replay does not reproduce the run (a replay is "
                         "exact only on the run's backend and BLAS thread count: edge --threads, config.json "
                         "versions.blas_threads)")
    return worst


def replay_states(cfg, epochs, xp, init=None, on_step=None):
    """Yield (epoch, TrainState, Problem) at each wanted epoch (ascending), replaying the run
    deterministically from its config (the optimizer steps only; tianref.train.replay's route).
    on_step(): called after every optimizer step."""
    from tianref import train
    wanted = sorted(set(int(e) for e in epochs))
    problem, state = train.setup(cfg, xp, init)
    for e in wanted:
        while state.epoch < e:
            state = train.step(xp, cfg, state, problem)
            if on_step:
                on_step()
        yield e, state, problem


def probe_run(run_dir, epochs, xp, *, spaces=("joint", "W", "V"), n_random=20, seed=0, eps_rel=0.005,
              progress=None, note=lambda m: None, strict=True) -> list:
    """The records of the module docstring for each epoch (ascending) and space.

    strict: a replay whose W split differs from the logged one by more than REPLAY_RTOL raises
    RunFailure; otherwise the difference is recorded in 'replay_check' (the reproduce section, where
    a GPU's reduction order may differ between the training process and the replay)."""
    cfg, init, logged = load_run(run_dir, epochs)
    check_epochs(cfg, epochs)
    bad = [sp for sp in spaces if sp not in SPACES]
    if bad:
        raise InputError(f"unknown space {bad[0]!r}; choose from {', '.join(SPACES)}")
    tell = progress or (lambda phase, n, total: None)
    w = cfg.windows[0]
    last = max(int(e) for e in epochs)
    kept = []
    tell("replay", 0, last)
    for e, state, problem in replay_states(cfg, epochs, xp, init, on_step=lambda: tell("replay", 1, last)):
        said = check_replay(run_dir, e, state, logged, strict, xp, w)
        row = logged.get(e, {})
        for sp in spaces:
            D = edge_probe.window_matrix(xp, state, w, SPACES[sp])
            if D is None:                                 # the same count of updates in every space
                note(f"epoch {e}: fewer than 2 updates, no edge; skipped")
                break
            Vk, sigma = edge_probe.edge_directions(xp, D, edge_curvature.N_DIRS)   # v_1, v_2 edge; v_3, v_4 bulk
            kept.append(({"epoch": e, "space": sp, "replay_check": said,
                          "split": edge_probe.space_edge(xp, state, w, SPACES[sp])[1],
                          "logged": {k: v for k, v in row.items() if k.startswith(("W_edge_", "V_edge_"))}},
                         {k: v.copy() for k, v in state.params.items()}, Vk, sigma))
    total = sum(edge_probe.n_evaluations(len(sigma), n_random) for *_, sigma in kept)
    records = []
    tell("probe", 0, total)
    for rec, params, Vk, sigma in kept:
        rec["probe"] = edge_probe.probe(xp, params, Vk, sigma, problem, cfg, SPACES[rec["space"]],
                                        n_random=n_random, seed=seed, eps_rel=eps_rel,
                                        progress=lambda: tell("probe", 1, total))
        records.append(rec)
    return records
