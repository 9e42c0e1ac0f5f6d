"""Which runs can share a stack, and their states stacked along a leading run axis S and taken apart.

Reference: tianref/batch.py (the loop that trains a stack); docs/batch.md §1 and §1a.

    same_stack     two configs that differ at most by seed and eta share a stack
    etas_of        the step's eta: one float, or each run's value (S, 1, 1) (optim.per_run)
    stack_state    the runs' parameters and optimizer states as one (S, ...) tree
    take           run s's views of a stack (or a smaller stack)
    ZERO_FLAGS     the optimizers' host flags "no decay has entered yet": a stack's flag is true only
                   when every run's is (joint_flags); a run that never decayed gets its own back
                   (never_decayed, own_flags), and its zeros as +0.0 in its checkpoints (own_zeros)

Host bookkeeping only: the arrays are stacked and indexed by the backend's own calls.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np  # host: each run's eta as a host array

from tianref.config import eta_at


def same_stack(a, b) -> bool:
    """True when two configs can share a stack: they differ at most by their seed and eta (a schedule
    fixes eta as its first value, so runs with one schedule have one eta)."""
    return a.replace(seed=0, eta=0.0) == b.replace(seed=0, eta=0.0)


def etas_of(live, epoch):
    """The weight decay of the step from row ``epoch``: a float when the runs share it, else a host
    array of each run's value, (S, 1, 1) float64 (optim.per_run)."""
    etas = [eta_at(m.cfg, epoch) for m in live]
    if all(e == etas[0] for e in etas):
        return etas[0]
    return np.asarray(etas, dtype=np.float64).reshape(-1, 1, 1)


def never_decayed(cfg) -> bool:
    """A run whose every step has eta = 0 (no schedule, eta 0): its own run never lets decay into its
    optimizer's buffers or its rings, so its flags say so whatever its stack's say."""
    return cfg.eta == 0 and not cfg.eta_schedule


ZERO_FLAGS = ("m_wd_zero", "buf_wd_zero")      # the optimizers' host flags "no decay has entered yet"


def joint_flags(opts):
    """The runs' optimizer states (nested dicts: Muon's holds V's Adam) with their ZERO_FLAGS as the
    stack's: true only when true for all (a run whose buffer holds no decay keeps exact zeros in it
    when its stack's flag is false)."""
    out = [dict(o) for o in opts]
    for k, v in opts[0].items():
        if isinstance(v, dict):
            for o, j in zip(out, joint_flags([p[k] for p in opts])):
                o[k] = j
        elif k in ZERO_FLAGS:
            for o in out:
                o[k] = all(bool(p[k]) for p in opts)
    return out


WD_BUFFERS = ("m_wd", "buf_wd")              # the optimizers' weight-decay parts of their buffers


def own_zeros(state):
    """A TrainState of a run that never decayed, its weight-decay buffers (WD_BUFFERS, nested dicts
    included) and its rings of Delta^wd and their cross-Grams C and H with +0.0 for their zeros, as its own run creates them (zeros_like;
    a stack with decay may leave -0.0 there: -lr 0 w): the same bytes in its checkpoints. Those arrays
    hold only zeros, so abs changes nothing but the sign."""
    def opt(o):
        return {k: ({n: abs(a) for n, a in v.items()} if k in WD_BUFFERS else opt(v) if isinstance(v, dict)
                    else v) for k, v in o.items()}
    return replace(state, adam=opt(state.adam),
                   edge=state.edge and {k: dict(e, buf_wd=abs(e["buf_wd"]), C=abs(e["C"]), H=abs(e["H"]))
                                        for k, e in state.edge.items()})


def own_flags(opt):
    """A state's ZERO_FLAGS set true, nested dicts included (a run that never decayed)."""
    return {k: (own_flags(v) if isinstance(v, dict) else (True if k in ZERO_FLAGS else v))
            for k, v in opt.items()}


def map_leaves(fn, *trees):
    """fn applied leaf by leaf to dicts of the same structure; host scalars/flags pass through
    (they must agree across runs: one step count, one schedule)."""
    t0 = trees[0]
    if isinstance(t0, dict):
        return {k: map_leaves(fn, *(t[k] for t in trees)) for k in t0}
    if hasattr(t0, "shape") and getattr(t0, "ndim", 0) >= 1:
        return fn(*trees)
    if any(t != t0 for t in trees[1:]):
        raise ValueError(f"stacked runs disagree on a counter or flag ({[t for t in trees]})")
    return t0


def stack_state(xp, states):
    """(params, optimizer state) of S runs stacked along a new leading axis."""
    stack = lambda *xs: xp.stack(xs)                                      # noqa: E731
    return (map_leaves(stack, *(s.params for s in states)),
            map_leaves(stack, *joint_flags([s.adam for s in states])))


def take(tree, s):
    """Run s (an int: its (..)-shaped views) or the runs s (an index array: a smaller stack)."""
    return map_leaves(lambda x: x[s], tree)
