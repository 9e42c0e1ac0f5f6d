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

One pass for all windows: keep the last w_max = max(windows) updates in a ring buffer and the
full (w_max, w_max) Gram of the buffer. A new update costs one (w_max, P) x (P,) product;
G_w for any w <= w_max is the sub-block on the w most recent slots (eigenvalues do not depend
on the order of the slots, so the ring order is never unrolled).

Precision (``gram_dtype``): by default updates are formed as float64(theta_t) - float64(theta_{t-1}),
which is exact for float32 parameters, and all inner products are float64 whatever the training
dtype. ``gram_dtype='float32'`` is the paper code's pipeline: Delta formed and stored in float32,
G and its eigenvalues computed in float32. The rounding of each Gram entry then depends on the
BLAS summation order (pairwise sums ~1e-8, blocked sgemm ~1e-7, sequential ~1e-5 relative at
P ~ 3e5), so an eigenvalue below ~100 float32 epsilons times sigma_1 is not resolved (docs/math.md §8).

State is an explicit dict; ``push`` returns the new state and reuses the buffer's storage
(the old state must not be used afterwards).
"""
from __future__ import annotations

N_TOP = 5
GRAM_DTYPES = ("float64", "float32")
F32_EPS = 2.0 ** -23          # float32 machine epsilon (spacing of floats at 1)


def init(xp, P: int, w_max: int, gram_dtype: str = "float64"):
    """Empty state for updates of length P; buffer and Gram in ``gram_dtype``."""
    dt = getattr(xp, gram_dtype)
    return {"buf": xp.zeros((w_max, P), dtype=dt),             # (w_max, P) ring buffer of updates
            "gram": xp.zeros((w_max, w_max), dtype=dt),          # (w_max, w_max) Gram of the buffer
            "count": 0}                                          # updates pushed so far


def push(xp, state, delta):
    """Add the update ``delta`` (P,), in the buffer's dtype.  Returns the new state."""
    buf, gram, count = state["buf"], state["gram"], state["count"]
    w_max = buf.shape[0]
    slot = count % w_max
    buf[slot] = delta                                   # overwrite the oldest update
    g = buf @ delta                                     # (w_max,)  <Delta_s, Delta_t> for all slots s
    gram[slot, :] = g
    gram[:, slot] = g
    return {"buf": buf, "gram": gram, "count": count + 1}


def window_slots(count: int, w_max: int, w: int):
    """Ring slots holding the last min(count, w) updates (host ints)."""
    m = min(count, w)
    return [(count - 1 - i) % w_max for i in range(m)]


def top_eigenvalues(xp, state, w: int):
    """Top-5 eigenvalues (descending, (<=5,) array) of G_w, or None with fewer than 2 updates."""
    slots = window_slots(state["count"], state["buf"].shape[0], w)
    if len(slots) < 2:                                  # the paper's code logs sigma from 2 updates on
        return None
    idx = xp.asarray(slots)
    G = state["gram"][idx][:, idx]                      # (m, m) = D_w^T D_w
    ev = xp.linalg.eigvalsh(G)                          # ascending
    return ev[::-1][:N_TOP]                             # (min(m, 5),) descending


def delta(xp, new, old, gram_dtype: str = "float64"):
    """Delta = dt(new) - dt(old), flattened (P,), dt = gram_dtype (float64: exact for float32 params)."""
    dt = getattr(xp, gram_dtype)
    return (new.astype(dt) - old.astype(dt)).reshape(-1)
