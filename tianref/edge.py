"""The spectral edge split: the top direction of the update Gram, as gradient part plus weight-decay part.

Reference: *The Lifecycle of the Spectral Edge: From Gradient Learning to Weight-Decay Compression*
(the spectral edge = the top eigenvector of the Gram of recent updates, and its gradient /
weight-decay decomposition); its authors' code, github.com/skydancerosel/dyck_scan, folder
``spectral/``, ``grad_vs_wd_decomposition.py`` at commit e37417d (``project_decomposition``: the
edge-projected view below). docs/edge-and-clocks.md §1-3 derives both views and their cost.

Symbols (per parameter matrix W or V, flattened; ring slots as in tianref.spectra)
    Delta_t     = theta_t - theta_{t-1}                 (P,)  the update of step t (spectra's ring)
    Delta^wd_t  the weight-decay part of that step      (P,)  from the optimizer (optim, wd_part)
    Delta^g_t   = Delta_t - Delta^wd_t                  (P,)  the gradient part
    D, D^g, D^wd  the last w of each as columns         (P, w);  D = D^g + D^wd exactly
    G           = D^T D                                 (w, w)  spectra's incremental Gram
    u_1         the unit top eigenvector of G, sigma_1 its eigenvalue
    v_1         = D u_1 / sqrt(sigma_1)                 (P,)  the unit edge direction in parameter space
    p, p_g, p_wd  = D^T v_1, (D^g)^T v_1, (D^wd)^T v_1  (w,)  each update of the window projected on v_1

The parameter-space view (keys g2, wd2, cross; gfrac, cos): the top eigenvalue split over all
parameter directions, exact because D = D^g + D^wd column by column:

    sigma_1 = ||D u_1||^2 = ||D^g u_1||^2 + ||D^wd u_1||^2 + 2 <D^g u_1, D^wd u_1>
            =     g2      +      wd2       +  2 cross
    gfrac = g2 / (g2 + wd2)          (undefined when g2 + wd2 = 0)
    cos   = cross / sqrt(g2 wd2)     (the cosine between D^g u_1 and D^wd u_1; undefined when g2 wd2 = 0)

With coupled Adam the two parts largely cancel in parameter space: in the stored lifecycle runs
(reference_results/reproduction/full/lifecycle/report.md) the median W gfrac is 0.65, 0.47, 0.48 and
cos -0.90, -0.92, -0.98 in memorisation, grokking and after.

The edge-projected view (keys pg2, pwd2, pcross; pgfrac, palign), the authors' split: each update
of the window is projected on v_1 and the projections are split, p_g + p_wd = p = D^T v_1 =
sqrt(sigma_1) u_1, hence, summing over the window's updates i,

    sigma_1 = sum p_i^2 = sum p_g,i^2 + sum p_wd,i^2 + 2 sum p_g,i p_wd,i
            =              pg2      +     pwd2      +  2 pcross
    pgfrac = pg2 / (pg2 + pwd2)      (their grad_frac, a ratio of means; undefined when pg2 + pwd2 = 0)
    palign = pcross / sqrt(pg2 pwd2) (their alignment mean(p_g p_wd), normalised to [-1, 1]: > 0 when
                                      the two parts push the same way along the edge; undefined when
                                      pg2 pwd2 = 0)

Several blocks as one space (W and V flattened together, the probe's joint space; space_author_split):
D is the blocks' updates side by side, so G = sum_b G_b, v_1 = D u_1 / ||D u_1|| over all blocks and
p = D^T v_1 = sum_b D_b^T v_1,b (likewise p_wd); the identity above holds with the joint sigma_1.

Evaluation, per logged row, from one eigh of the window's Gram: a = D u_1 and b = D^wd u_1 (one
pass over each (w, P) ring, u_1 scattered into the ring's slots) give g2 = ||a - b||^2, wd2 = ||b||^2,
cross = <a - b, b>; then v_1 = a / ||a||, p = D^T v_1 = G u_1 / ||a|| from the incremental Gram (equal
by linearity: D^T D u_1 = G u_1), and one (m, P) x (P,) pass over the window's rows of the Delta^wd ring
gives p_wd, p_g = p - p_wd. This keeps one extra ring (Delta^wd) and costs three (w, P) passes per row
(bench/bench_edge.py times both views).

Deviation from the plan of three incremental cross-Grams (G_ww, C = D^g^T D^wd and its transpose,
updated like G): each update of those costs three (w, P) x (P,) passes per step, against two per
row here for the parameter-space view (measured on the 2-core machine at M = 71, K = 2048, w = 20:
6.0 ms per step for the three products against 3.9 ms per row here), and with G_gg formed as
G - G_ww - C - C^T their identity would hold by construction. Here sigma_1 comes from the
incremental Gram G and g2 + wd2 + 2 cross from the ring contents directly, so that identity, tested on
every row, checks the Gram's bookkeeping, the window's slots and u_1 through a second route; and
pg2 + pwd2 + 2 pcross = ||G u_1||^2 / ||D u_1||^2 equals sigma_1 only when ||D u_1||^2 (from the ring)
equals u_1^T G u_1 (from the Gram), so the second identity checks the ring against the Gram too. Neither identity checks
the Delta^wd ring itself (p_g = p - p_wd whatever p_wd is); tests/test_edge*.py compare it with
independent recomputations.

Without weight decay (Delta^wd = None from the optimizer, and nothing nonzero in the ring) nothing
is written or read: wd2 = cross = pwd2 = pcross = 0 exactly, g2 = ||D u_1||^2, pg2 = ||p||^2. The
Delta^wd ring is kept in the training dtype, in which the optimizer forms Delta^wd (half the memory
traffic in float32); D^wd u_1 sums w terms per entry and each p_wd,i P terms in that dtype (as does
each p_i with a float32 Gram mode), everything else is float64. The identities do not depend on that
precision (g = a - b, so ||g + b||^2 = ||a||^2 whatever b is; likewise p_g + p_wd = p); in float32 the
splits themselves carry float32's relative error (~1e-7 for D^wd u_1; ~1e-6 for a P-term p_wd,i
against ||Delta^wd_i||), in float64 float64's.
State is an explicit dict; ``push`` reuses its storage (as spectra.push).
"""
from __future__ import annotations

from tianref import spectra
from tianref.backend import stacked_dot

KEYS = ("g2", "wd2", "cross")                     # the parameter-space view (split_of)
DERIVED = ("gfrac", "cos")
AUTHOR_KEYS = ("pg2", "pwd2", "pcross")           # the edge-projected view (author_split)
AUTHOR_DERIVED = ("pgfrac", "palign")


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


def _tops(xp, blocks, w: int):
    """(sigma_1 (S,), u_1 (S, w_max)) of S runs stepped together: ``blocks`` their stacked rolling Grams
    (spectra states with gram (S, w_max, w_max), one count), G = the sum of the blocks' Grams on the
    window w (one block: its own G; W and V together: the Gram of the joint update), u_1 scattered
    into the ring's slots (0 elsewhere); one stacked eigh (LAPACK solves each matrix as it would
    alone). None with < 2 updates."""
    sp0 = blocks[0]
    w_max = sp0["gram"].shape[-1]
    slots = spectra.window_slots(sp0["count"], w_max, w)
    if len(slots) < 2:                                  # as spectra: from 2 updates on
        return None
    G = spectra.window_gram(xp, sp0["gram"], slots)     # (S, m, m) D^T D
    for sp in blocks[1:]:                               # + D_V^T D_V: the joint update's Gram
        G = G + spectra.window_gram(xp, sp["gram"], slots)
    ev, U = xp.linalg.eigh(G)                           # ascending; (S, m), (S, m, m)
    u = xp.zeros((G.shape[0], w_max), dtype=xp.float64)
    u[:, xp.asarray(slots)] = U[..., -1]                              # (S, w_max) u_1 on the window's slots
    return ev[..., -1], u


def _top(xp, specs, w: int):
    """(sigma_1, u_1 (w_max,)) of one run's blocks (``_tops`` with S = 1), or None with < 2 updates."""
    top = _tops(xp, [stack_of_one(sp) for sp in specs], w)
    return None if top is None else (top[0][0], top[1][0])


def stack_of_one(state):
    """A run's ring state as a stack of one (its arrays' views with a leading axis of 1)."""
    return {k: (v[None] if hasattr(v, "shape") else v) for k, v in state.items()}


def edge_parts(xp, specs, states, w: int):
    """[(a, b)] per block: a = D u_1, b = D^wd u_1 (P,) float64 (b None: exactly 0), with u_1 the top
    eigenvector of the blocks' summed Gram on the window w; None with fewer than 2 updates."""
    top = _top(xp, specs, w)
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


def _window_rows(ring, count: int, w: int):
    """The rows of a (w_max, P) ring that hold the last min(count, w) pushes, as views: the window
    is a contiguous run of slots modulo w_max (spectra.window_slots), so one or two slices."""
    w_max = ring.shape[-2]
    m = min(count, w)
    s0 = (count - m) % w_max
    if s0 + m <= w_max:
        return [ring[..., s0:s0 + m, :]]                # (m, P)
    return [ring[..., s0:, :], ring[..., :s0 + m - w_max, :]]   # (w_max - s0, P), (s0 + m - w_max, P)


def projections(xp, spec, state, a, w: int, u=None):
    """(p, p_wd): the window's updates projected on the unit edge direction v_1 = a / ||a||
    (a = D u_1 of ``edge_parts``), (m,) float64 each in the ring's order (p_wd None: exactly 0).

    p = D^T v_1 = D^T D u_1 / ||D u_1|| = G u_1 / ||a|| from the incremental Gram G (the same numbers
    by linearity, without a pass over the ring of Delta: the ring's largest read); p_wd = D^wd^T v_1
    from one pass over the ring of Delta^wd. ``u``: u_1 (w_max,) of ``a``, if known (else the same eigh
    again)."""
    n = xp.sqrt(a @ a)                                  # ||D u_1|| = sqrt(sigma_1), from the ring
    safe = xp.where(n > 0, n, 1.0)
    if u is None:
        _, u = _top(xp, [spec], w)                      # (w_max,) u_1 on the window's slots (edge_parts' own)
    idx = xp.asarray(_window_slots_ring_order(spec["count"], spec["gram"].shape[0], w))
    p = (xp.take(spec["gram"], idx, axis=0) @ u).astype(xp.float64) / safe  # (m,) (G u_1)_i / ||a|| = <Delta_i, v_1>
    if state["clean"]:
        return p, None
    v = a / safe                                        # (P,) v_1 (0 if every update is 0)
    return p, _project(xp, state["buf_wd"], spec["count"], w, v)            # (m,) D^wd^T v_1


def _window_slots_ring_order(count: int, w_max: int, w: int):
    """The slots of ``_window_rows`` in their order (the window's rows as they lie in the ring)."""
    m = min(count, w)
    s0 = (count - m) % w_max
    return [(s0 + i) % w_max for i in range(m)]


def _project(xp, ring, count: int, w: int, v):
    """(m,) float64: the window's rows of the ring times v, in the ring's dtype (P terms per entry).
    S stacked runs: ring (S, w_max, P), v (S, P) -> (S, m), each slice by the BLAS call of one run."""
    v = v if v.dtype == ring.dtype else v.astype(ring.dtype)
    return xp.concatenate([(R @ v[..., None])[..., 0].astype(xp.float64) for R in _window_rows(ring, count, w)],
                          axis=-1)


def author_split(xp, spec, state, a, w: int, u=None):
    """(pg2, pwd2, pcross) as 0-d float64 arrays: sum_i p_g,i^2, sum_i p_wd,i^2, sum_i p_g,i p_wd,i
    over the window's updates, p_g = p - p_wd (``projections``; ``u``: u_1 of ``a`` if known)."""
    p, p_wd = projections(xp, spec, state, a, w, u)
    if p_wd is None:                                    # no weight decay in the ring: exact zeros
        zero = xp.zeros((), dtype=xp.float64)
        return p @ p, zero, zero
    p_g = p - p_wd                                      # (m,) (D^g)^T v_1
    return p_g @ p_g, p_wd @ p_wd, p_g @ p_wd


def space_author_split(xp, specs, states, w: int):
    """(pg2, pwd2, pcross) as 0-d float64 arrays for the blocks ``specs`` taken as ONE space (W and V
    flattened together, W first): u_1 the top eigenvector of their summed Gram on the window w,
    a = D u_1 over all blocks, v_1 = a / ||a||, p = D^T v_1 = (sum_b G_b) u_1 / ||a|| and p_wd =
    sum_b (D^wd_b)^T v_1,b over the blocks' Delta^wd rings. One block: author_split's numbers, bit for
    bit (the logged keys). None with < 2 updates."""
    top = _top(xp, specs, w)
    if top is None:
        return None
    u = top[1]                                          # (w_max,) u_1 on the window's slots
    A = [u @ sp["buf"] for sp in specs]                 # (P_b,) D_b u_1 per block
    n2 = A[0] @ A[0]
    for a in A[1:]:
        n2 = n2 + a @ a
    n = xp.sqrt(n2)                                     # ||D u_1|| over the space = sqrt(sigma_1)
    safe = xp.where(n > 0, n, 1.0)
    idx = xp.asarray(_window_slots_ring_order(specs[0]["count"], specs[0]["gram"].shape[0], w))
    Gu = xp.take(specs[0]["gram"], idx, axis=0) @ u     # (m,) rows of G_b u_1, summed over the blocks
    for sp in specs[1:]:
        Gu = Gu + xp.take(sp["gram"], idx, axis=0) @ u
    p = Gu.astype(xp.float64) / safe                    # (m,) D^T v_1
    p_wd = None
    for sp, st, a in zip(specs, states, A):
        if not st["clean"]:                             # a block without decay adds exact zeros
            q = _project(xp, st["buf_wd"], sp["count"], w, a / safe)    # (m,) (D^wd_b)^T v_1,b
            p_wd = q if p_wd is None else p_wd + q
    if p_wd is None:                                    # no weight decay in any ring: exact zeros
        zero = xp.zeros((), dtype=xp.float64)
        return p @ p, zero, zero
    p_g = p - p_wd                                      # (m,) (D^g)^T v_1
    return p_g @ p_g, p_wd @ p_wd, p_g @ p_wd


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
    top = _tops(xp, [spec], w)
    if top is None:
        return None
    U = top[1]                                                         # (S, w_max) u_1 on the window's slots
    zero = xp.zeros(U.shape[0], dtype=xp.float64)
    A = (U[:, None, :] @ spec["buf"])[:, 0, :]                         # (S, P) a = D u_1
    if state["clean"]:                                                 # no weight decay in the rings: exact zeros
        B = None
        g2, wd2, cross = zero + stacked_dot(A, A), zero, zero
    else:
        ring = state["buf_wd"]                                         # (S, w_max, P) in the training dtype
        B = (U.astype(ring.dtype)[:, None, :] @ ring)[:, 0, :].astype(xp.float64)   # (S, P) b = D^wd u_1
        Gm = A - B                                                     # (S, P) D^g u_1
        g2, wd2, cross = (zero + stacked_dot(Gm, Gm), zero + stacked_dot(B, B),
                          zero + stacked_dot(Gm, B))
    n = xp.sqrt(stacked_dot(A, A))                                     # (S,) ||D u_1||
    safe = xp.where(n > 0, n, 1.0)[:, None]                            # (S, 1)
    count, w_max = spec["count"], spec["gram"].shape[-1]
    idx = xp.asarray(_window_slots_ring_order(count, w_max, w))
    p = (xp.take(spec["gram"], idx, axis=-2) @ U[..., None])[..., 0].astype(xp.float64) / safe   # (S, m) G u_1 / ||a||
    if B is None:
        return g2, wd2, cross, zero + stacked_dot(p, p), zero, zero
    p_wd = _project(xp, state["buf_wd"], count, w, A / safe)           # (S, m) D^wd^T v_1
    p_g = p - p_wd                                                     # (S, m) (D^g)^T v_1
    return (g2, wd2, cross, zero + stacked_dot(p_g, p_g), zero + stacked_dot(p_wd, p_wd),
            zero + stacked_dot(p_g, p_wd))


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
