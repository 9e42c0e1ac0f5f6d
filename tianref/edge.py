"""The spectral edge split: the top direction of the update Gram, as gradient part plus weight-decay part.

Reference: *The Lifecycle of the Spectral Edge: From Gradient Learning to Weight-Decay Compression*
(the spectral edge = the top eigenvector of the Gram of recent updates, and its gradient /
weight-decay decomposition); its authors' code, github.com/skydancerosel/dyck_scan, folder
``spectral/``, ``grad_vs_wd_decomposition.py`` at commit e37417d (whose ``project_decomposition``, the
edge-projected view, is tianref/edge_projected.py). docs/edge-and-clocks.md §1-3 derives both views and
their cost. This module holds the edge itself (the Delta^wd ring and the cross-Grams C and H below, the
top eigenvector u_1, D u_1 and D^wd u_1) and the parameter-space view.

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

Evaluation: three w_max x w_max Grams of the ring's slots (C and H float64, G in its Gram mode's dtype),
updated by every step like G,

    G = D^T D          G_ij = <Delta_i, Delta_j>         (tianref.spectra's Gram)
    C = D^wd^T D       C_ij = <Delta^wd_i, Delta_j>
    H = D^wd^T D^wd    H_ij = <Delta^wd_i, Delta^wd_j>

give every key of a row from w x w algebra, without a pass over a (w, P) ring:

    ||a||^2 = u_1^T G u_1,   <a, b> = u_1^T C u_1,   ||b||^2 = u_1^T H u_1      (a = D u_1, b = D^wd u_1)
    g2 = ||a||^2 - 2 <a, b> + ||b||^2,   wd2 = ||b||^2,   cross = <a, b> - ||b||^2

(the edge-projected view's p = G u_1 / ||a|| and p_wd = (C u_1) / ||a|| on the window's slots:
tianref/edge_projected.py). A step writes its update Delta_t and its Delta^wd_t into their rings' slot t
and fills row and column t of the three Grams from two passes (backend.ring_products): the ring of Delta
against [Delta_t, Delta^wd_t] (G's column and C's row t) and the ring of Delta^wd against [Delta_t,
Delta^wd_t] (C's column and H's row and column t); G's own pass thus carries C's row at little extra
cost. Measured at M = 71, K = 2048, w = 20 (bench/bench_edge_design.py, 2-core Xeon, one thread): the
edge's own cost per epoch 4.87 ms (3.2 % of a full-metrics epoch), against 12.38 ms (8.0 %) for the
earlier design that kept the same rings and took a = D u_1, b = D^wd u_1 and the window's p_wd by three
passes per row.

Checks by a second route: g2 + wd2 + 2 cross = u_1^T G u_1 holds here by construction, so it checks
nothing. What checks C and H is the ring route kept below (``edge_parts``, ``split_of``: a = D u_1 and
b = D^wd u_1 formed from the rings' contents, used by the edge probe and ``edge_vector``):
tests/test_edge.py compares the logged keys with it on every row and with explicit (w, P) matrices,
tests/test_edge_author.py with an independent NumPy loop, tests/test_torch_reference_ce.py with PyTorch's
own Adam. In float32 training the ring of Delta^wd and its pass are in
float32 (on the host each block's products summed in float32 and the blocks added in float64; on a GPU one
float32 product over all P), so C's columns and H
carry float32's rounding: on the quick configuration's 400 epochs g2, wd2 and cross agree with an
all-float64 computation from the same rings to a median 1.5e-8 and at most 2.7e-6 relative (the ring route:
1.1e-8 and 6.9e-7). g2 is formed by a difference; when the gradient part is much smaller than the
weight-decay part (g2 << wd2) its relative error grows as wd2 / g2 times that, and where it would pass ~1e-3
(CANCEL, ``cancels``) the row takes that block's split from the ring route instead (``ring_splits``; rows.py):
g2 = ||a - b||^2 there cannot go negative. No stored run comes near it (their gfrac stays near 1/2).

Without weight decay (Delta^wd = None from the optimizer, and nothing nonzero in the ring) nothing is
written to the Delta^wd ring and nothing is read from it: C = H = 0, wd2 = cross = 0 exactly, g2 = ||a||^2.
With the default float64 Gram mode G's column is taken from the same two-vector pass with or without
decay (a zero Delta^wd_t), so a run's G has the same bits whether or not it decays, alone or in a stack
with runs that do; with a float32 Gram mode (--gram-dtype) G keeps spectra.push's own arithmetic and C's
row takes one more pass over the (float32) ring of Delta.

State is an explicit dict; ``push`` reuses its storage (as spectra.push) and pushes the update into the
spectra state too. The top eigenpair of the
window's Gram is spectra.top_pair; a logged row takes both views from ``window_splits_runs`` (one stacked
eigh; rows.py, whose _edge_ring_route applies ``cancels``), ``window_splits`` is the same for one run, and the
edge-projected view's names (AUTHOR_KEYS, author_split, ...) are read from here too.
"""
from __future__ import annotations

from tianref import spectra
from tianref.backend import ring_products, stacked_dot, to_host
from tianref.edge_projected import (  # noqa: F401  (the edge-projected view; its names are read from here too)
    AUTHOR_DERIVED, AUTHOR_KEYS, author_split, project, projections, space_author_split,
    window_rows as _window_rows, window_slots_ring_order)
from tianref.spectra import stack_of_one  # noqa: F401  (a run's rings as a stack of one: rows.py)

KEYS = ("g2", "wd2", "cross")                     # the parameter-space view (split_of)
DERIVED = ("gfrac", "cos")
# g2 = ||a||^2 - 2<a, b> + ||b||^2 cancels when the gradient part is small against the weight-decay part: its
# rounding is ~RHO (the relative rounding of the entries of G, C and H: float32 rings or Gram 2e-6, float64
# 1e-14) times ||a||^2 + 2|<a, b>| + ||b||^2. Below CANCEL RHO of that (a relative error of g2 above ~1e-3),
# the row is taken by the ring route instead (ring_splits; rows.py), whose g = a - b cannot go negative.
RHO = {"float32": 2e-6, "float64": 1e-14}
CANCEL = 1e3


def init(xp, P: int, w_max: int, dtype=None):
    """Empty state for updates of length P (slots as in spectra.init); the ring holds Delta^wd in
    ``dtype`` (the training dtype: the optimizer forms Delta^wd in it, so nothing is lost)."""
    return {"buf_wd": xp.zeros((w_max, P), dtype=dtype or xp.float64),  # (w_max, P) ring of Delta^wd
            "C": xp.zeros((w_max, w_max), dtype=xp.float64),             # (w_max, w_max) D^wd^T D
            "H": xp.zeros((w_max, w_max), dtype=xp.float64),             # (w_max, w_max) D^wd^T D^wd
            "clean": True}                                       # host: the ring holds only zeros


def push(xp, state, spec, delta, delta_wd, mode: str = "float64"):
    """Record one step: its update ``delta`` (P,) into the spectra state ``spec`` (ring and Gram, as
    spectra.push) and its weight-decay part ``delta_wd`` (any shape with P entries; taken in the ring's
    dtype, the training dtype in which the optimizer forms it; None for an exact zero) into this state's
    ring and cross-Grams (module docstring). Returns (spec, state); both reuse their storage. S runs
    stepped together (rings (S, w_max, P), Grams (S, w_max, w_max)): delta (S, P), delta_wd (S, ...) with
    P entries a run; each slice is computed by the calls of one run."""
    buf, ring = spec["buf"], state["buf_wd"]
    slot = spec["count"] % buf.shape[-2]
    decayed = delta_wd is not None
    if decayed:                                                           # (P,); S stacked runs: (S, P), as stored
        delta_wd = delta_wd.reshape(ring.shape[:-2] + (-1,)).astype(ring.dtype, copy=False)
    if mode == "float64":                                                 # G's column and C's row t: one pass
        wd_t = delta_wd.astype(buf.dtype) if decayed else xp.zeros_like(delta)
        buf[..., slot, :] = delta
        g = ring_products(xp, buf, xp.stack([delta, wd_t], axis=-2))      # (w_max, 2)
        gram = spec["gram"]
        gram[..., slot, :] = g[..., 0]
        gram[..., :, slot] = g[..., 0]
        spec = {"buf": buf, "gram": gram, "count": spec["count"] + 1}
        c_row = g[..., 1]                                                 # <Delta^wd_t, Delta_j>
    else:                                                                 # a float32 Gram mode: G as its own
        spec = spectra.push(xp, spec, delta, mode)
        c_row = ring_products(xp, buf, delta_wd.astype(buf.dtype)[..., None, :])[..., 0] if decayed else None
    if state["clean"] and not decayed:                                    # no decay yet: C = H = 0, no pass
        return spec, state
    if decayed:
        ring[..., slot, :] = delta_wd
    else:
        ring[..., slot, :] = 0.0
    h = ring_products(xp, ring, xp.stack([delta.astype(ring.dtype), ring[..., slot, :]], axis=-2))   # (w_max, 2)
    C, H = state["C"], state["H"]
    C[..., :, slot] = h[..., 0]                                           # <Delta^wd_i, Delta_t>
    C[..., slot, :] = 0.0 if c_row is None else c_row                     # <Delta^wd_t, Delta_j> (j = t too)
    H[..., slot, :] = h[..., 1]
    H[..., :, slot] = h[..., 1]
    return spec, {"buf_wd": ring, "C": C, "H": H, "clean": False}


def cross_grams(xp, spec, ring, clean: bool, mode: str = "float64") -> dict:
    """{"C", "H"} (w_max, w_max) float64 formed from the contents of the rings (spectra state ``spec``,
    Delta^wd ring ``ring``), slot by slot in the order they were pushed, each with the products ``push``
    takes: the values ``push`` left, for a state that kept only the rings."""
    buf = spec["buf"]
    w_max = buf.shape[-2]
    C = xp.zeros(buf.shape[:-2] + (w_max, w_max), dtype=xp.float64)
    H = xp.zeros(buf.shape[:-2] + (w_max, w_max), dtype=xp.float64)
    count = spec["count"]
    if clean or count == 0:
        return {"C": C, "H": H}
    for t in range(max(0, count - w_max), count):                     # pushes still in the ring, oldest first
        s = t % w_max
        d, wd = buf[..., s, :], ring[..., s, :]
        if mode == "float64":
            c_row = ring_products(xp, buf, xp.stack([d, wd.astype(buf.dtype)], axis=-2))[..., 1]
        else:
            c_row = ring_products(xp, buf, wd.astype(buf.dtype)[..., None, :])[..., 0]
        h = ring_products(xp, ring, xp.stack([d.astype(ring.dtype), wd], axis=-2))
        C[..., :, s] = h[..., 0]
        C[..., s, :] = c_row
        H[..., s, :] = h[..., 1]
        H[..., :, s] = h[..., 1]
    return {"C": C, "H": H}


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
    """Both views for one block and the window w, as a row logs them: (g2, wd2, cross, pg2, pwd2, pcross)
    as 0-d float64 arrays (KEYS + AUTHOR_KEYS), or None (< 2 updates). One eigh serves both; where g2
    cancels (``cancels``) the ring route's numbers (``ring_splits``)."""
    out = window_splits_runs(xp, stack_of_one(spec), stack_of_one(state), w, scale=True)
    if out is None:
        return None
    if cancels(float(to_host(out[0][0])), float(to_host(out[6][0])), spec, state):
        return ring_splits(xp, spec, state, w)
    return tuple(x[0] for x in out[:6])


def cancels(g2: float, scale: float, spec, state) -> bool:
    """Host: whether a row's g2 (from the cross-Grams) is below CANCEL RHO of its terms' scale
    ||a||^2 + 2|<a, b>| + ||b||^2 (window_splits_runs(scale=True)): its relative error may then pass
    ~1e-3, and the row takes the ring route."""
    low = "float32" if "float32" in (str(spec["buf"].dtype), str(state["buf_wd"].dtype)) else "float64"
    return g2 < CANCEL * RHO[low] * scale


def ring_splits(xp, spec, state, w: int):
    """Both views of one run from the rings' contents (the ring route: a = D u_1 and b = D^wd u_1 by passes
    over the rings, then split_of and author_split), each ring copied first so that a run's slice of a
    stack is read from a fresh allocation as its own run's ring is (the same bits). None with < 2 updates."""
    sp = dict(spec, buf=xp.array(spec["buf"]), gram=xp.array(spec["gram"]))
    st = dict(state, buf_wd=xp.array(state["buf_wd"]))
    top = spectra.top_of_run(xp, [sp], w)
    if top is None:
        return None
    a, b = _parts(xp, [sp], [st], top[1])[0]
    return tuple(split_of(xp, [(a, b)])) + tuple(author_split(xp, sp, st, a, w, top[1]))


def window_splits_runs(xp, spec, state, w: int, scale: bool = False):
    """``window_splits`` of one block in S runs stepped together, as six (S,) float64 arrays (KEYS +
    AUTHOR_KEYS), or None (< 2 updates). ``spec``, ``state``: the S runs' rings stacked (spectra and
    edge states with gram, C, H (S, w_max, w_max), one count, one clean flag: runs stepped together share
    their weight-decay schedule). One stacked eigh and w x w algebra (module docstring): no pass over a
    ring, a few backend calls for the stack, none per run; each run's numbers are those of its S = 1
    call (tests/test_batch.py). ``scale``: a seventh (S,) array, ||a||^2 + 2|<a, b>| + ||b||^2, the
    scale of g2's rounding (``cancels``)."""
    top = spectra.top_pair(xp, [spec], w)
    if top is None:
        return None
    U = top[1][..., None]                                              # (S, w_max, 1) u_1 on the window's slots
    zero = xp.zeros(U.shape[0], dtype=xp.float64)
    Gu = (spec["gram"].astype(xp.float64) @ U)[..., 0]                 # (S, w_max) G u_1 = D^T a
    u = U[..., 0]
    a2 = stacked_dot(xp, u, Gu)                                        # (S,) ||a||^2 = u_1^T G u_1
    n = xp.sqrt(a2)                                                    # (S,) ||D u_1||
    safe = xp.where(n > 0, n, 1.0)[:, None]                            # (S, 1)
    count, w_max = spec["count"], spec["gram"].shape[-1]
    idx = xp.asarray(window_slots_ring_order(count, w_max, w))
    p = xp.take(Gu, idx, axis=-1) / safe                               # (S, m) D^T v_1
    if state["clean"]:                                                 # no weight decay in the rings: exact zeros
        out = (zero + a2, zero, zero, zero + stacked_dot(xp, p, p), zero, zero)
        return out + (a2,) if scale else out
    Cu = (state["C"] @ U)[..., 0]                                      # (S, w_max) C u_1 = D^wd^T a
    ab = zero + stacked_dot(xp, u, Cu)                                 # (S,) <a, b>
    b2 = zero + stacked_dot(xp, u, (state["H"] @ U)[..., 0])           # (S,) ||b||^2
    p_wd = xp.take(Cu, idx, axis=-1) / safe                            # (S, m) D^wd^T v_1
    p_g = p - p_wd                                                     # (S, m) (D^g)^T v_1
    out = (a2 - 2.0 * ab + b2, b2, ab - b2, zero + stacked_dot(xp, p_g, p_g),
           zero + stacked_dot(xp, p_wd, p_wd), zero + stacked_dot(xp, p_g, p_wd))
    return out + (a2 + 2.0 * xp.abs(ab) + b2,) if scale else out


def stacked(xp, states):
    """S runs' edge states (runs stepped together) as one: buf_wd (S, w_max, P), C and H (S, w_max, w_max),
    copies, clean only when every run's ring is (runs with different eta: a run without decay then has
    exact zeros in its slices, and the splits of zero rings are exact zeros either way; ``spectra.stacked``
    stacks their Grams)."""
    return {"buf_wd": xp.stack([st["buf_wd"] for st in states]), "C": xp.stack([st["C"] for st in states]),
            "H": xp.stack([st["H"] for st in states]), "clean": all(st["clean"] for st in states)}


def edge_vector(xp, specs, states, w: int):
    """[(e, e_wd)] per block: the edge direction e = D u_1 / ||D u_1|| (the norm over all blocks)
    and its weight-decay part D^wd u_1 / ||D u_1||, each (P,) float64; None with < 2 updates."""
    parts = edge_parts(xp, specs, states, w)
    if parts is None:
        return None
    n = xp.sqrt(sum(a @ a for a, _ in parts))
    return [(a / n, xp.zeros_like(a) if b is None else b / n) for a, b in parts]
