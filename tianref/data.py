"""Modular addition (or any task table) data, the train/test split, and the initial weights.

Reference: the seed paper §2 and its code's protocol (``docs/paper-protocol.md`` §3); Tian,
arXiv:2509.21519, for the task on a finite group H (docs/groups.md §6).

Symbols
    M            modulus (|H| for a group task); classes 0..M-1
    (a, b)       operand pair, table index i = a*M + b, label y_i = (a + b) mod M, or table[a, b] for a
                 task table (tianref.groups; None = Z_M's addition, computed as before)
    X            n x 2M input, row i = [onehot(a_i), onehot(b_i)]   (never materialised)
    W            2M x K first layer   (paper orientation: XW)
    V            K x M  second layer  (Yhat = sigma(XW) V)

All randomness is drawn on the host from ``numpy.random.default_rng(seed)`` in a
fixed order -- the permutation of the M^2 pairs, then W, then V -- so NumPy,
CuPy and the fake backend start from bit-identical numbers.

Deviation from the paper's code: it draws the permutation from a
``torch.Generator`` and the weights from ``torch.manual_seed``; we draw them from
NumPy's PCG64. The distributions are identical (a uniform permutation,
U(+-1/sqrt(fan_in)) weights) but seed s here is not the paper's seed s.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np  # host-side construction only; device arrays are made by xp.asarray (make_batch, stack_batches)

from tianref.errors import InputError


def pairs(M: int, table=None):
    """All M^2 pairs: a, b, y as host int64 arrays of length M^2 (index i = a*M + b);
    y = (a + b) mod M, or table[a, b] when a (M, M) task table is given."""
    i = np.arange(M * M, dtype=np.int64)
    a, b = i // M, i % M
    if table is None:
        return a, b, (a + b) % M
    T = np.asarray(table, dtype=np.int64)
    if T.shape != (M, M):
        raise ValueError(f"task table has shape {T.shape}, expected (M, M) = {(M, M)}")
    return a, b, T[a, b]


def n_train_from_frac(M: int, frac: float) -> int:
    """Python's round (banker's rounding), as the paper's scaling sweep uses."""
    return int(round(frac * M * M))


def init_host(M: int, K: int, n_train: int, seed: int):
    """The split and the initial weights, drawn on the host in a fixed order.

    Returns train_idx (n_train,), test_idx (M^2 - n_train,), W0 (2M, K), V0 (K, M);
    weights are float64 (cast to the training dtype by the caller).
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(M * M)                                   # uniform split of the table
    bound_W = 1.0 / np.sqrt(2 * M)                                  # fan_in of W is 2M
    bound_V = 1.0 / np.sqrt(K)                                      # fan_in of V is K
    W0 = rng.uniform(-bound_W, bound_W, size=(2 * M, K))            # (2M, K)
    V0 = rng.uniform(-bound_V, bound_V, size=(K, M))                # (K, M)
    return perm[:n_train].copy(), perm[n_train:].copy(), W0, V0


def check_init(cfg, init: dict) -> None:
    """Shapes and ranges of an --init-from file or a checkpoint (host arrays) for ``cfg`` (its M, K)."""
    M, K = cfg.M, cfg.K
    for key in ("W", "V", "train_idx"):
        if key not in init:
            raise InputError(f"init file lacks array {key!r} (needs W, V, train_idx)")
    for key in ("W", "V"):
        if init[key].dtype.kind not in "fiu":
            raise InputError(f"init {key} has dtype {init[key].dtype}; it must hold real numbers")
    if init["W"].shape != (2 * M, K):
        raise InputError(f"init W has shape {init['W'].shape}, expected (2M, K) = {(2 * M, K)}")
    if init["V"].shape != (K, M):
        raise InputError(f"init V has shape {init['V'].shape}, expected (K, M) = {(K, M)}")
    idx = np.asarray(init["train_idx"])
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise InputError("init train_idx must be a 1-d integer array")
    if idx.size and (idx.min() < 0 or idx.max() >= M * M):
        raise InputError(f"init train_idx has entries outside [0, M^2) = [0, {M * M})")
    if len(np.unique(idx)) != len(idx):
        raise InputError("init train_idx has repeated entries")
    if not 2 <= len(idx) < M * M:
        raise InputError(f"init train_idx must hold between 2 and M^2 - 1 pairs (has {len(idx)})")
    for key in ("W", "V"):
        if not np.all(np.isfinite(init[key])):
            raise InputError(f"init {key} has non-finite entries")


def init_split(cfg, init: dict):
    """(train_idx, test_idx) of an init dict (checked): its train_idx, and its test_idx when given (a
    checkpoint keeps its order, which fixes the float summation order), else the complement, ascending."""
    check_init(cfg, init)
    train_idx = np.asarray(init["train_idx"], dtype=np.int64)
    test_idx = np.setdiff1d(np.arange(cfg.M * cfg.M), train_idx)
    if "test_idx" in init:
        given = np.asarray(init["test_idx"], dtype=np.int64)
        if not np.array_equal(np.sort(given), test_idx):
            raise InputError("init test_idx is not the complement of train_idx")
        test_idx = given
    return train_idx, test_idx


def split_of(cfg, init=None):
    """(train_idx, test_idx) the run of ``cfg`` (from its seed, or from an init dict) trains on."""
    if init is not None:
        return init_split(cfg, init)
    return init_host(cfg.M, cfg.K, cfg.n_train, cfg.seed)[:2]


@dataclass(frozen=True)
class Batch:
    """One fixed set of pairs on the device (the full train or test set).

    a, b, y : (n,) int64     operands and labels
    seg_a   : (M, c_a) int64 rows of dL/dH that add into W[a]; padded with n (a zero row)
    seg_b   : (M, c_b) int64 the same for W[M + b]
    seg_y   : (M, c_y) int64 the rows with label c (the class sums Y^T F of the energy diagnostic)
    ia, ib  : (n,) int64     the rows a and M + b of W (model.hidden gathers W[ia] + W[ib])

    A stacked batch (``stack_batches``) holds S runs' sets of one size n: a, b, y (S, n), and ia, ib,
    seg_a, seg_b index W and dL/dH flattened over the run axis (run s's rows offset by s 2M and
    s (n + 1); seg_y likewise, its pads s (n + 1) + n, so a pad is the index = n mod n + 1).
    """
    a: object
    b: object
    y: object
    seg_a: object
    seg_b: object
    n: int
    M: int
    seg_y: object = None
    ia: object = None
    ib: object = None


def segment_index(keys: np.ndarray, n_segments: int) -> np.ndarray:
    """Host: (n_segments, max_count) table of the rows whose key is s, padded with len(keys).

    Summing ``dH_padded[table]`` over axis 1 is the scatter-add X^T dH for one half of the
    one-hot input, done as a gather plus a fixed-order reduction: deterministic on every
    backend (unlike atomics-based ``add.at`` on a GPU).
    """
    n = len(keys)
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=n_segments)
    width = max(int(counts.max()) if n else 0, 1)
    table = np.full((n_segments, width), n, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for s in range(n_segments):
        table[s, :counts[s]] = order[starts[s]:starts[s] + counts[s]]
    return table


def make_batch(xp, M: int, idx: np.ndarray, table=None) -> Batch:
    """Device batch for the table rows ``idx`` (host int array); labels from ``table`` (pairs)."""
    a, b, y = pairs(M, table)
    a, b, y = a[idx], b[idx], y[idx]
    return Batch(a=xp.asarray(a), b=xp.asarray(b), y=xp.asarray(y),
                 seg_a=xp.asarray(segment_index(a, M)), seg_b=xp.asarray(segment_index(b, M)),
                 n=len(idx), M=M, seg_y=xp.asarray(segment_index(y, M)),
                 ia=xp.asarray(a), ib=xp.asarray(M + b))


def stack_batches(xp, M: int, idxs, tables) -> Batch:
    """One stacked batch of S runs' row sets ``idxs`` (host int arrays of one length n; labels from
    each run's table, None = Z_M), for S runs trained as one array (tianref/batch.py).

    Run s's gathers read rows s 2M + a and s 2M + M + b of W (S, 2M, K) flattened to (S 2M, K); its
    segment tables read rows s (n + 1) + i of dL/dH (S, n + 1, K) flattened, padded with its own
    zero row s (n + 1) + n, all to the widest table of the S runs (a pad adds an exact 0; model.backward's
    pad row is -0.0, so not even a -0.0 sum changes sign)."""
    n = len(idxs[0])
    if any(len(i) != n for i in idxs):
        raise ValueError("stacked runs need row sets of one size")
    cols = [pairs(M, t) for t in tables]
    a = np.stack([c[0][i] for c, i in zip(cols, idxs)])                       # (S, n)
    b = np.stack([c[1][i] for c, i in zip(cols, idxs)])
    y = np.stack([c[2][i] for c, i in zip(cols, idxs)])
    S = len(idxs)
    row0 = (2 * M * np.arange(S, dtype=np.int64))[:, None]                     # (S, 1) first W row of run s

    def segs(keys):
        tabs = [segment_index(k, M) for k in keys]                             # (M, c_s), padded with n
        c = max(t.shape[1] for t in tabs)
        out = np.full((S, M, c), n, dtype=np.int64)
        for s, t in enumerate(tabs):
            out[s, :, :t.shape[1]] = t
        return out + ((n + 1) * np.arange(S, dtype=np.int64))[:, None, None]  # (S, M, c) flat rows
    return Batch(a=xp.asarray(a), b=xp.asarray(b), y=xp.asarray(y), seg_a=xp.asarray(segs(a)),
                 seg_b=xp.asarray(segs(b)), n=n, M=M, seg_y=xp.asarray(segs(y)),
                 ia=xp.asarray(row0 + a), ib=xp.asarray(row0 + M + b))


def as_stack(batch: Batch) -> Batch:
    """One run's batch as a stack of S = 1 (views with a leading axis; the offsets of run 0 are 0)."""
    return Batch(a=batch.a[None], b=batch.b[None], y=batch.y[None], seg_a=batch.seg_a[None],
                 seg_b=batch.seg_b[None], n=batch.n, M=batch.M,
                 seg_y=None if batch.seg_y is None else batch.seg_y[None], ia=batch.ia[None], ib=batch.ib[None])
