"""The spectral edge split: the top direction of the update Gram, as gradient part plus weight-decay part.

Reference: *The Lifecycle of the Spectral Edge: From Gradient Learning to Weight-Decay Compression*
(the spectral edge = the top eigenvector of the Gram of recent updates, and its gradient /
weight-decay decomposition); its authors' code, github.com/skydancerosel/dyck_scan, folder
``spectral/``, ``grad_vs_wd_decomposition.py`` at commit e37417d (whose ``project_decomposition``, the
edge-projected view, is tianref/edge_projected.py). docs/edge-and-clocks.md §1-3 derives both views and
their cost. This module holds the edge itself (the Delta^wd ring, the top eigenvector u_1, D u_1 and
D^wd u_1) and the parameter-space view.

Symbols (per parameter matrix W or V, flattened; ring slots as in tianref.spectra)
    Delta_t     = theta_t - theta_{t-1}                 (P,)  the update of step t (spectra's ring)
    Delta^wd_t  the weight-decay part of that step      (P,)  from the optimizer (optim, wd_part)
    Delta^g_t   = Delta_t - Delta^wd_t                  (P,)  the gradient part
    D, D^g, D^wd  the last w of each as columns         (P, w);  D = D^g + D^wd exactly
    G           = D^T D                                 (w, w)  spectra's incremental Gram
    u_1         the unit top eigenvector of G, sigma_1 its eigenvalue
    v_1         = D u_1 / sqrt(sigma_1)                 (P,)  the unit edge direction in parameter space

The parameter-space view (keys g2, wd2, cross; gfrac, cos): the top eigenvalue split over all
parameter directions, exact because D = D^g + D^wd column by column:

    sigma_1 = ||D u_1||^2 = ||D^g u_1||^2 + ||D^wd u_1||^2 + 2 <D^g u_1, D^wd u_1>
            =     g2      +      wd2       +  2 cross
    gfrac = g2 / (g2 + wd2)          (undefined when g2 + wd2 = 0)
    cos   = cross / sqrt(g2 wd2)     (the cosine between D^g u_1 and D^wd u_1; undefined when g2 wd2 = 0)

With coupled Adam the two parts largely cancel in parameter space: in the stored lifecycle runs
(reference_results/reproduction/full/lifecycle/report.md) the median W gfrac is 0.65, 0.47, 0.48 and
cos -0.90, -0.92, -0.98 in memorisation, grokking and after.

Evaluation, per logged row, from one eigh of the window's Gram: a = D u_1 and b = D^wd u_1 (one
pass over each (w, P) ring, u_1 scattered into the ring's slots) give g2 = ||a - b||^2, wd2 = ||b||^2,
cross = <a - b, b> (the edge-projected view goes on from a and u_1: tianref/edge_projected.py). This
keeps one extra ring (Delta^wd) and costs three (w, P) passes per row for both views
(bench/bench_edge.py times them).

Deviation from the plan of three incremental cross-Grams (G_ww, C = D^g^T D^wd and its transpose,
updated like G): each update of those costs three (w, P) x (P,) passes per step, against two per
row here for the parameter-space view (measured on the 2-core machine at M = 71, K = 2048, w = 20:
6.0 ms per step for the three products against 3.9 ms per row here), and with G_gg formed as
G - G_ww - C - C^T their identity would hold by construction. Here sigma_1 comes from the
incremental Gram G and g2 + wd2 + 2 cross from the ring contents directly, so that identity, tested on
every row, checks the Gram's bookkeeping, the window's slots and u_1 through a second route (the
edge-projected identity checks the ring against the Gram too). Neither identity checks the Delta^wd
ring itself; tests/test_edge*.py compare it with independent recomputations.

Without weight decay (Delta^wd = None from the optimizer, and nothing nonzero in the ring) nothing
is written or read: wd2 = cross = 0 exactly, g2 = ||D u_1||^2. The Delta^wd ring is kept in the
training dtype, in which the optimizer forms Delta^wd (half the memory traffic in float32); D^wd u_1
sums w terms per entry in that dtype, everything else is float64. The identity does not depend on that
precision (g = a - b, so ||g + b||^2 = ||a||^2 whatever b is); in float32 the split itself carries
float32's relative error (~1e-7 for D^wd u_1), in float64 float64's.
State is an explicit dict; ``push`` reuses its storage (as spectra.push). The top eigenpair of the
window's Gram is spectra.top_pair; ``window_splits`` gives both views of a logged row (one eigh), and the
edge-projected view's names (AUTHOR_KEYS, author_split, ...) are read from here too.
"""
from __future__ import annotations

from tianref import spectra
from tianref.backend import stacked_dot
from tianref.edge_projected import (  # noqa: F401  (the edge-projected view; its names are read from here too)
    AUTHOR_DERIVED, AUTHOR_KEYS, author_split, project, projections, space_author_split,
    window_rows as _window_rows, window_slots_ring_order)
from tianref.spectra import stack_of_one  # noqa: F401  (a run's rings as a stack of one: rows.py)

KEYS = ("g2", "wd2", "cross")                     # the parameter-space view (split_of)
DERIVED = ("gfrac", "cos")


def init(xp, P: int, w_max: int, dtype=None):
    """Empty state for updates of length P (slots as in spectra.init); the ring holds Delta^wd in
    ``dtype`` (the training dtype: the optimizer forms Delta^wd in it, so nothing is lost)."""
    return {"buf_wd": xp.zeros((w_max, P), dtype=dtype or xp.float64),  # (w_max, P) ring of Delta^wd
            "clean": True}                                       # host: the ring holds only zeros


def push(xp, state, spec, delta_wd):
    """Record the weight-decay part of the step just pushed to ``spec``: delta_wd (any shape with
    P entries, any float dtype), or None for an exact zero.  Returns the new state.  S runs stepped
    together (rings (S, w_max, P), as spectra.push): delta_wd (S, ...) with P entries a run."""
    buf_wd = state["buf_wd"]
    slot = (spec["count"] - 1) % buf_wd.shape[-2]
    if delta_wd is None:
        if not state["clean"]:
            buf_wd[..., slot, :] = 0.0
        return state
    buf_wd[..., slot, :] = delta_wd.reshape(buf_wd.shape[:-2] + (-1,))   # (P,); S stacked runs: (S, P)
    return {"buf_wd": buf_wd, "clean": False}


def edge_parts(xp, specs, states, w: int):
    """[(a, b)] per block: a = D u_1, b = D^wd u_1 (P,) float64 (b None: exactly 0), with u_1 the top
    eigenvector of the blocks' summed Gram on the window w; None with fewer than 2 updates."""
    top = spectra.top_of_run(xp, specs, w)
    if top is None:
        return None
    return _parts(xp, specs, states, top[1])


def _parts(xp, specs, states, u):
    """edge_parts given u_1 (w_max,): one pass over each block's ring (and its Delta^wd ring)."""
    out = []
    for sp, st in zip(specs, states):
        a = u @ sp["buf"]                               # (P,) D u_1
        if st["clean"]:
            out.append((a, None))
            continue
        B = st["buf_wd"]
        b = (u.astype(B.dtype) @ B).astype(xp.float64)  # (P,) D^wd u_1 (w terms per entry, ring dtype)
        out.append((a, b))
    return out


def split_of(xp, parts):
    """(g2, wd2, cross) as 0-d float64 arrays, summed over the blocks of ``edge_parts``."""
    g2 = wd2 = cross = xp.zeros((), dtype=xp.float64)
    for a, b in parts:
        if b is None:                                   # no weight decay in the ring: exact zeros
            g2 = g2 + a @ a
            continue
        g = a - b                                       # (P,) D^g u_1
        g2, wd2, cross = g2 + g @ g, wd2 + b @ b, cross + g @ b
    return g2, wd2, cross


def window_split(xp, spec, state, w: int):
    """(g2, wd2, cross) as 0-d float64 arrays for one block and the window w, or None (< 2 updates)."""
    parts = edge_parts(xp, [spec], [state], w)
    return None if parts is None else split_of(xp, parts)


def derived(g2: float, wd2: float, cross: float, names=DERIVED) -> dict:
    """Host: gfrac and cos where defined (an absent key = undefined); with names=AUTHOR_DERIVED
    and (pg2, pwd2, pcross), pgfrac and palign."""
    out = {}
    if g2 + wd2 > 0:
        out[names[0]] = g2 / (g2 + wd2)
    if g2 > 0 and wd2 > 0:
        out[names[1]] = cross / (g2 * wd2) ** 0.5
    return out


def window_splits(xp, spec, state, w: int):
    """Both views for one block and the window w: (g2, wd2, cross, pg2, pwd2, pcross) as 0-d float64
    arrays (KEYS + AUTHOR_KEYS), or None (< 2 updates). One eigh and one D u_1 serve both."""
    out = window_splits_runs(xp, stack_of_one(spec), stack_of_one(state), w)
    return None if out is None else tuple(x[0] for x in out)


def window_splits_runs(xp, spec, state, w: int):
    """``window_splits`` of one block in S runs stepped together, as six (S,) float64 arrays (KEYS +
    AUTHOR_KEYS), or None (< 2 updates). ``spec``, ``state``: the S runs' rings stacked (spectra and
    edge states with buf, gram, buf_wd (S, ...), one count, one clean flag: runs stepped together share
    their weight-decay schedule). One stacked eigh, one stacked pass over the rings for D u_1, D^wd u_1
    and the window's D^wd rows, and the algebra on the (S, P) and (S, m) stacks: a few backend calls
    for the stack, none per run (bench/bench_ops.py). The numbers are those of edge_parts, split_of and
    author_split run by run (tests/test_edge_author.py holds that bit for bit)."""
    top = spectra.top_pair(xp, [spec], w)
    if top is None:
        return None
    U = top[1]                                                         # (S, w_max) u_1 on the window's slots
    zero = xp.zeros(U.shape[0], dtype=xp.float64)
    A = (U[:, None, :] @ spec["buf"])[:, 0, :]                         # (S, P) a = D u_1
    if state["clean"]:                                                 # no weight decay in the rings: exact zeros
        B = None
        g2, wd2, cross = zero + stacked_dot(xp, A, A), zero, zero
    else:
        ring = state["buf_wd"]                                         # (S, w_max, P) in the training dtype
        B = (U.astype(ring.dtype)[:, None, :] @ ring)[:, 0, :].astype(xp.float64)   # (S, P) b = D^wd u_1
        Gm = A - B                                                     # (S, P) D^g u_1
        g2, wd2, cross = (zero + stacked_dot(xp, Gm, Gm), zero + stacked_dot(xp, B, B),
                          zero + stacked_dot(xp, Gm, B))
    n = xp.sqrt(stacked_dot(xp, A, A))                                 # (S,) ||D u_1||
    safe = xp.where(n > 0, n, 1.0)[:, None]                            # (S, 1)
    count, w_max = spec["count"], spec["gram"].shape[-1]
    idx = xp.asarray(window_slots_ring_order(count, w_max, w))
    p = (xp.take(spec["gram"], idx, axis=-2) @ U[..., None])[..., 0].astype(xp.float64) / safe   # (S, m) G u_1 / ||a||
    if B is None:
        return g2, wd2, cross, zero + stacked_dot(xp, p, p), zero, zero
    p_wd = project(xp, state["buf_wd"], count, w, A / safe)            # (S, m) D^wd^T v_1
    p_g = p - p_wd                                                     # (S, m) (D^g)^T v_1
    return (g2, wd2, cross, zero + stacked_dot(xp, p_g, p_g), zero + stacked_dot(xp, p_wd, p_wd),
            zero + stacked_dot(xp, p_g, p_wd))


def stacked(xp, states):
    """S runs' edge states (runs stepped together) as one: buf_wd (S, w_max, P), a copy, clean only when
    every run's ring is (runs with different eta: a run without decay then has exact zeros in its slice,
    and the splits of a zero ring are exact zeros either way; ``spectra.stacked`` stacks their Grams)."""
    return {"buf_wd": xp.stack([st["buf_wd"] for st in states]), "clean": all(st["clean"] for st in states)}


def edge_vector(xp, specs, states, w: int):
    """[(e, e_wd)] per block: the edge direction e = D u_1 / ||D u_1|| (the norm over all blocks)
    and its weight-decay part D^wd u_1 / ||D u_1||, each (P,) float64; None with < 2 updates."""
    parts = edge_parts(xp, specs, states, w)
    if parts is None:
        return None
    n = xp.sqrt(sum(a @ a for a, _ in parts))
    return [(a / n, xp.zeros_like(a) if b is None else b / n) for a, b in parts]
