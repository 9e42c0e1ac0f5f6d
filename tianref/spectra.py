"""Rolling-window Gram spectra of parameter updates, for many windows in one pass.

Reference: the seed paper §4 (rolling eigengap sigma2/sigma3 of Delta W); paper-protocol.md §3
("Rolling Gram"). docs/math.md §6.

Symbols
    Delta_t   = theta_t - theta_{t-1}, flattened (P,)  the update made by step t
    D_w(t)    = [Delta_{t-w+1}, ..., Delta_t]  (P, w)  the last w updates (fewer while t < w)
    G_w(t)    = D_w(t)^T D_w(t)                (w, w)  their Gram matrix
    sigma_i   the i-th largest EIGENVALUE of G_w (a squared singular value of D_w, as in
              the paper's code), i = 1..5
    gap23     sigma_2 / sigma_3, defined when at least 3 updates exist and sigma_3 > 0
    u_1       the unit top eigenvector of G_w (``top_pair``; tianref/edge.py's spectral edge), on the
              ring's slots: (u_1)_slot weighs the update that slot holds

One pass for all windows: keep the last w_max = max(windows) updates in a ring buffer and the
full (w_max, w_max) Gram of the buffer. A new update costs one (w_max, P) x (P,) product;
G_w for any w <= w_max is the sub-block on the w most recent slots (eigenvalues do not depend
on the order of the slots, so the ring order is never unrolled).

Precision (the Gram *mode*, ``GRAM_MODES``). 'float64', the default: updates are formed as
float64(theta_t) - float64(theta_{t-1}), which is exact for float32 parameters, and all inner
products and eigenvalues are float64 whatever the training dtype. 'float32' is the paper code's
pipeline: Delta formed and stored in float32, G and its eigenvalues computed in float32 (the inner
products by the backend's BLAS). 'float32-seq' sums each inner product strictly in order in float32
(NumPy only: CuPy's cumsum is a parallel scan). The rounding of a float32 Gram entry depends on the
summation order (measured at P ~ 3e5: pairwise ~4e-8, OpenBLAS sgemv ~1e-7, sgemm ~4e-7, sequential
~5e-5 relative), so an eigenvalue below ~100 float32 epsilons times sigma_1 is not resolved in
float32, and what is logged there depends on the BLAS (docs/math.md §8).

State is an explicit dict; ``push`` returns the new state and reuses the buffer's storage
(the old state must not be used afterwards).
"""
from __future__ import annotations

N_TOP = 5
GRAM_MODES = ("float64", "float32", "float32-seq")
GRAM_SUFFIX = {"float64": "", "float32": "_f32", "float32-seq": "_f32seq"}   # logged-key suffixes
F32_EPS = 2.0 ** -23          # float32 machine epsilon (spacing of floats at 1)


def gram_dtype(xp, mode: str):
    """The array dtype of a Gram mode: float64, or float32 for both float32 modes."""
    return xp.float64 if mode == "float64" else xp.float32


def init(xp, P: int, w_max: int, mode: str = "float64"):
    """Empty state for updates of length P; buffer and Gram in the mode's dtype."""
    dt = gram_dtype(xp, mode)
    return {"buf": xp.zeros((w_max, P), dtype=dt),             # (w_max, P) ring buffer of updates
            "gram": xp.zeros((w_max, w_max), dtype=dt),          # (w_max, w_max) Gram of the buffer
            "count": 0}                                          # updates pushed so far


def push(xp, state, delta, mode: str = "float64"):
    """Add the update ``delta`` (P,), in the buffer's dtype.  Returns the new state.  A ring of S runs
    stepped together (buf (S, w_max, P), gram (S, w_max, w_max); batch.py) takes their updates (S, P) in
    one call; NumPy computes each slice's product with the BLAS call of one run (the same bits).

    mode 'float32-seq' sums each inner product strictly left to right in float32 (a running
    sum, NumPy's cumsum) instead of the BLAS product: the summation order with the largest
    rounding error, one end of what a float32 Gram can give.
    """
    buf, gram, count = state["buf"], state["gram"], state["count"]
    w_max = buf.shape[-2]
    slot = count % w_max
    buf[..., slot, :] = delta                           # overwrite the oldest update
    if mode == "float32-seq":
        g = xp.cumsum(buf * delta[..., None, :], axis=-1, dtype=buf.dtype)[..., -1]   # (w_max,) sequential sums
    else:
        g = (buf @ delta[..., None])[..., 0]            # (w_max,)  <Delta_s, Delta_t> for all slots s
    gram[..., slot, :] = g
    gram[..., :, slot] = g
    return {"buf": buf, "gram": gram, "count": count + 1}


def window_slots(count: int, w_max: int, w: int):
    """Ring slots holding the last min(count, w) updates (host ints)."""
    m = min(count, w)
    return [(count - 1 - i) % w_max for i in range(m)]


def top_eigenvalues(xp, state, w: int):
    """Top-5 eigenvalues (descending, (<=5,) array) of G_w, or None with fewer than 2 updates.
    A ``stacked`` state of S runs gives (S, <=5): one eigvalsh of the S windows' Grams."""
    slots = window_slots(state["count"], state["gram"].shape[-1], w)
    if len(slots) < 2:                                  # the paper's code logs sigma from 2 updates on
        return None
    G = window_gram(xp, state["gram"], slots)            # (m, m) = D_w^T D_w
    ev = xp.linalg.eigvalsh(G)                          # ascending
    return ev[..., ::-1][..., :N_TOP]                   # (min(m, 5),) descending


def top_pair(xp, blocks, w: int):
    """(sigma_1 (S,), u_1 (S, w_max)) of S runs stepped together: ``blocks`` their stacked rolling Grams
    (states with gram (S, w_max, w_max), one count), G = the sum of the blocks' Grams on the
    window w (one block: its own G; W and V together: the Gram of the joint update), u_1 scattered
    into the ring's slots (0 elsewhere); one stacked eigh (LAPACK solves each matrix as it would
    alone). None with < 2 updates."""
    sp0 = blocks[0]
    w_max = sp0["gram"].shape[-1]
    slots = window_slots(sp0["count"], w_max, w)
    if len(slots) < 2:                                  # as top_eigenvalues: from 2 updates on
        return None
    G = window_gram(xp, sp0["gram"], slots)             # (S, m, m) D^T D
    for sp in blocks[1:]:                               # + D_V^T D_V: the joint update's Gram
        G = G + window_gram(xp, sp["gram"], slots)
    ev, U = xp.linalg.eigh(G)                           # ascending; (S, m), (S, m, m)
    u = xp.zeros((G.shape[0], w_max), dtype=xp.float64)
    u[:, xp.asarray(slots)] = U[..., -1]                # (S, w_max) u_1 on the window's slots
    return ev[..., -1], u


def top_of_run(xp, specs, w: int):
    """(sigma_1, u_1 (w_max,)) of one run's blocks (``top_pair`` with S = 1), or None with < 2 updates."""
    top = top_pair(xp, [stack_of_one(sp) for sp in specs], w)
    return None if top is None else (top[0][0], top[1][0])


def stack_of_one(state):
    """A run's ring state as a stack of one (its arrays' views with a leading axis of 1)."""
    return {k: (v[None] if hasattr(v, "shape") else v) for k, v in state.items()}


def window_gram(xp, gram, slots):
    """The (m, m) block of a ring's Gram (..., w_max, w_max) on the window's slots = D_w^T D_w."""
    idx = xp.asarray(slots)
    return xp.take(xp.take(gram, idx, axis=-2), idx, axis=-1)


def stacked(xp, states):
    """S runs' states (one update count: runs stepped together) as one state: buf (S, w_max, P) and
    gram (S, w_max, w_max), copies (``push`` and ``top_eigenvalues`` take it as they take one run's)."""
    return {"buf": xp.stack([st["buf"] for st in states]), "gram": xp.stack([st["gram"] for st in states]),
            "count": states[0]["count"]}


def delta(xp, new, old, mode: str = "float64", runs: bool = False):
    """Delta = dt(new) - dt(old), flattened (P,), dt = the mode's dtype (float64: exact for float32 params).
    ``runs``: new and old are stacks of S runs' parameters; each run's update flattened, (S, P)."""
    dt = gram_dtype(xp, mode)
    d = xp.subtract(new, old, dtype=dt)                 # both cast to dt first, without two cast copies
    return d.reshape(d.shape[0], -1) if runs else d.reshape(-1)
