"""The edge-projected split of the spectral edge (the authors' view): each update of the window projected
on the edge direction v_1, split into its gradient and weight-decay parts.

Reference: *The Lifecycle of the Spectral Edge: From Gradient Learning to Weight-Decay Compression*; its
authors' code, github.com/skydancerosel/dyck_scan, folder ``spectral/``, ``grad_vs_wd_decomposition.py``
at commit e37417d (``project_decomposition``: grad_frac and the alignment below).
docs/edge-and-clocks.md §2-3. The edge itself (the rings, a = D u_1) and the parameter-space view are
tianref/edge.py, u_1 is spectra.top_pair; edge.window_splits_runs gives both views of a logged row (from
the cross-Grams; this module's functions are the ring route).

Symbols (as tianref/edge.py; per parameter matrix, flattened)
    D, D^g, D^wd  the window's last w updates and their gradient / weight-decay parts   (P, w)
    G = D^T D, u_1, sigma_1   the incremental Gram, its unit top eigenvector and eigenvalue
    a           = D u_1                                 (P,)  ||a||^2 = sigma_1
    v_1         = a / ||a||                             (P,)  the unit edge direction in parameter space
    p, p_g, p_wd  = D^T v_1, (D^g)^T v_1, (D^wd)^T v_1  (w,)  each update of the window projected on v_1

The split: p_g + p_wd = p = D^T v_1 = sqrt(sigma_1) u_1, hence, summing over the window's updates i,

    sigma_1 = sum p_i^2 = sum p_g,i^2 + sum p_wd,i^2 + 2 sum p_g,i p_wd,i
            =              pg2      +     pwd2      +  2 pcross
    pgfrac = pg2 / (pg2 + pwd2)      (their grad_frac, a ratio of means; undefined when pg2 + pwd2 = 0)
    palign = pcross / sqrt(pg2 pwd2) (their alignment mean(p_g p_wd), normalised to [-1, 1]: > 0 when
                                      the two parts push the same way along the edge; undefined when
                                      pg2 pwd2 = 0)

Several blocks as one space (W and V flattened together, the probe's joint space; space_author_split):
D is the blocks' updates side by side, so G = sum_b G_b, v_1 = D u_1 / ||D u_1|| over all blocks and
p = D^T v_1 = sum_b D_b^T v_1,b (likewise p_wd); the identity above holds with the joint sigma_1.

Evaluation. A logged row takes p = G u_1 / ||a|| and p_wd = (C u_1)_window / ||a|| from the incremental
Gram G and cross-Gram C = D^wd^T D (tianref/edge.py's window_splits_runs: w x w algebra, no pass over a ring;
||a||^2 = u_1^T G u_1), so pg2 + pwd2 + 2 pcross = ||p||^2 = ||G u_1||^2 / u_1^T G u_1 = sigma_1 for the unit
eigenvector u_1: a check of the eigh, not of C. The functions below form the same numbers from the rings'
contents (the ring route: p_wd by one (m, P) x (P,) pass over the window's rows of the Delta^wd ring, given
a = D u_1 from edge.edge_parts), as the edge probe reports them for every space and as the tests compare
them with the logged keys on every row (tests/test_edge.py).

Without weight decay (a clean Delta^wd ring) pwd2 = pcross = 0 exactly and pg2 = ||p||^2. In the ring
route each p_wd,i sums P terms in the ring's (training) dtype, as does each p_i with a float32 Gram mode,
everything else is float64; the logged route's C sums each block of its products in that dtype too: in
float32 either carries ~1e-6 relative error of a P-term p_wd,i against ||Delta^wd_i||.
"""
from __future__ import annotations

from tianref import spectra

AUTHOR_KEYS = ("pg2", "pwd2", "pcross")           # the edge-projected view (author_split)
AUTHOR_DERIVED = ("pgfrac", "palign")             # edge.derived(pg2, pwd2, pcross, names=AUTHOR_DERIVED)


def window_rows(ring, count: int, w: int):
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
    (a = D u_1 of edge.edge_parts), (m,) float64 each in the ring's order (p_wd None: exactly 0).

    p = D^T v_1 = D^T D u_1 / ||D u_1|| = G u_1 / ||a|| from the incremental Gram G (the same numbers
    by linearity, without a pass over the ring of Delta: the ring's largest read); p_wd = D^wd^T v_1
    from one pass over the ring of Delta^wd. ``u``: u_1 (w_max,) of ``a``, if known (else the same eigh
    again)."""
    n = xp.sqrt(a @ a)                                  # ||D u_1|| = sqrt(sigma_1), from the ring
    safe = xp.where(n > 0, n, 1.0)
    if u is None:
        _, u = spectra.top_of_run(xp, [spec], w)        # (w_max,) u_1 on the window's slots (edge_parts' own)
    idx = xp.asarray(window_slots_ring_order(spec["count"], spec["gram"].shape[0], w))
    p = (xp.take(spec["gram"], idx, axis=0) @ u).astype(xp.float64) / safe  # (m,) (G u_1)_i / ||a|| = <Delta_i, v_1>
    if state["clean"]:
        return p, None
    v = a / safe                                        # (P,) v_1 (0 if every update is 0)
    return p, project(xp, state["buf_wd"], spec["count"], w, v)            # (m,) D^wd^T v_1


def window_slots_ring_order(count: int, w_max: int, w: int):
    """The slots of ``window_rows`` in their order (the window's rows as they lie in the ring)."""
    m = min(count, w)
    s0 = (count - m) % w_max
    return [(s0 + i) % w_max for i in range(m)]


def project(xp, ring, count: int, w: int, v):
    """(m,) float64: the window's rows of the ring times v, in the ring's dtype (P terms per entry).
    S stacked runs: ring (S, w_max, P), v (S, P) -> (S, m), each slice by the BLAS call of one run."""
    v = v if v.dtype == ring.dtype else v.astype(ring.dtype)
    return xp.concatenate([(R @ v[..., None])[..., 0].astype(xp.float64) for R in window_rows(ring, count, w)],
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
    bit (the ring route; the logged keys come from the cross-Grams and agree to rounding). None with < 2
    updates."""
    top = spectra.top_of_run(xp, specs, w)
    if top is None:
        return None
    u = top[1]                                          # (w_max,) u_1 on the window's slots
    A = [u @ sp["buf"] for sp in specs]                 # (P_b,) D_b u_1 per block
    n2 = A[0] @ A[0]
    for a in A[1:]:
        n2 = n2 + a @ a
    n = xp.sqrt(n2)                                     # ||D u_1|| over the space = sqrt(sigma_1)
    safe = xp.where(n > 0, n, 1.0)
    idx = xp.asarray(window_slots_ring_order(specs[0]["count"], specs[0]["gram"].shape[0], w))
    Gu = xp.take(specs[0]["gram"], idx, axis=0) @ u     # (m,) rows of G_b u_1, summed over the blocks
    for sp in specs[1:]:
        Gu = Gu + xp.take(sp["gram"], idx, axis=0) @ u
    p = Gu.astype(xp.float64) / safe                    # (m,) D^T v_1
    p_wd = None
    for sp, st, a in zip(specs, states, A):
        if not st["clean"]:                             # a block without decay adds exact zeros
            q = project(xp, st["buf_wd"], sp["count"], w, a / safe)    # (m,) (D^wd_b)^T v_1,b
            p_wd = q if p_wd is None else p_wd + q
    if p_wd is None:                                    # no weight decay in any ring: exact zeros
        zero = xp.zeros((), dtype=xp.float64)
        return p @ p, zero, zero
    p_g = p - p_wd                                      # (m,) (D^g)^T v_1
    return p_g @ p_g, p_wd @ p_wd, p_g @ p_wd
