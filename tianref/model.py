"""The two-layer network  Yhat = sigma(X W) V  with frozen one-hot inputs and no biases.

Reference: Tian (2025), the seed paper §2 (Li2 setup); docs/math.md §1-2.

Symbols (code name <-> paper)
    W       <-> W      (2M, K)  first layer
    V       <-> V      (K, M)   second layer
    H       <-> XW     (n, K)   pre-activation; row i is W[a_i] + W[M + b_i] (None in a forward's cache
                                taken with keep_H=False: only the backward needs it)
    F       <-> F = sigma(XW)   (n, K) hidden activations
    Yhat    <-> Yhat = beta F V (n, M)    beta = output scale (1 by default; Tian's slides)
    dL_d<X>  the gradient of the loss with respect to <X>

A leading run axis S is optional everywhere: W (S, 2M, K), V (S, K, M) with a stacked batch
(data.stack_batches) give H, F (S, n, K) and Yhat (S, n, M): S runs trained as one array
(tianref/batch.py). Every product is then a stack of the same products (NumPy's matmul multiplies
slice by slice, bit for bit as one run), so a single run is the S-less case of the same code.

Forward and backward sit side by side so the chain rule can be audited at a glance:

    H = X W              dL_dW = X^T dL_dH           (a segment sum: see data.segment_index)
    F = sigma(H)         dL_dH = dL_dF * sigma'(H)
    Yhat = F V           dL_dF = dL_dYhat V^T,   dL_dV = F^T dL_dYhat

With an output scale beta != 1, Yhat = beta F V and both dL_dF and dL_dV carry the factor beta
(the backward scales dL_dYhat by beta once). beta = 1 skips the multiplication, so the default
path is bit for bit the unscaled one.

GELU is the exact (erf) form  x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, with
sigma'(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi); erf comes from
scipy.special / cupyx.scipy.special through ``backend.special``.
"""
from __future__ import annotations

import math

from tianref import host_kernels as host
from tianref.backend import special, xp_name

ACTIVATIONS = ("sqr", "relu", "silu", "relusqr", "gelu")
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def sigma(xp, H, act: str):
    """sigma(H), elementwise."""
    if act == "sqr":                      # x^2 (Tian's power activation; the paper's default)
        return H * H
    if act == "relu":                     # max(x, 0)
        return xp.maximum(H, 0)
    if act == "silu":                     # x * s(x), s = logistic
        return H / (1 + xp.exp(-H))
    if act == "relusqr":                  # max(x, 0)^2
        R = xp.maximum(H, 0)
        return R * R
    if act == "gelu":                     # x Phi(x), exact erf form
        return 0.5 * H * (1 + special(xp).erf(H / _SQRT2))
    raise ValueError(f"unknown activation {act!r}; choose one of {', '.join(ACTIVATIONS)}")


def sigma_into(xp, H, act: str, out):
    """out[...] = sigma(H), elementwise, the bits of sigma(xp, H, act); x^2 without a temporary."""
    if act == "sqr":
        xp.multiply(H, H, out=out)
    else:
        out[...] = sigma(xp, H, act)


def sigma_prime(xp, H, act: str):
    """sigma'(H), elementwise (relu: 0 at x = 0, as autograd does)."""
    if act == "sqr":                      # 2x
        return 2 * H
    if act == "relu":                     # 1[x > 0]
        return (H > 0).astype(H.dtype)
    if act == "silu":                     # s(x) (1 + x (1 - s(x)))
        s = 1 / (1 + xp.exp(-H))
        return s * (1 + H * (1 - s))
    if act == "relusqr":                  # 2 max(x, 0)
        return 2 * xp.maximum(H, 0)
    if act == "gelu":                     # Phi(x) + x phi(x)
        return 0.5 * (1 + special(xp).erf(H / _SQRT2)) + H * (_INV_SQRT_2PI * xp.exp(-0.5 * H * H))
    raise ValueError(f"unknown activation {act!r}; choose one of {', '.join(ACTIVATIONS)}")


def hidden(xp, W, batch, act: str, keep_H: bool = True):
    """H = XW and F = sigma(H) for a batch, without materialising X.

    Returns (H, F), both (n, K) ((S, n, K) for W (S, 2M, K) and a stacked batch); H is None when
    ``keep_H`` is false (a forward pass whose backward is not taken: the host then never stores it).
    batch.ia / batch.ib index the rows W[a] and W[M + b] of W flattened to (S * 2M, K).
    On the host: tianref/host_kernels.py (the same operations in cache-sized blocks of rows).
    """
    Wf = W.reshape(-1, W.shape[-1])                       # (2M, K) or (S * 2M, K): the rows of every run
    if xp_name(xp) == "numpy":
        return host.hidden(xp, Wf, batch.ia, batch.ib, lambda h, out: sigma_into(xp, h, act, out), keep_H)
    H = xp.take(Wf, batch.ia, axis=0)                     # (n, K)  W[a]
    H += xp.take(Wf, batch.ib, axis=0)                    # (n, K)  + W[M + b] = X W, X = [onehot(a), onehot(b)]
    return (H if keep_H else None), sigma(xp, H, act)     # (n, K)


def forward(xp, params, batch, act: str, beta: float = 1.0, keep_H: bool = True):
    """Yhat = beta sigma(XW) V.  Returns (Yhat (n, M), cache=(H, F)); (S, n, M) for S stacked runs.
    keep_H=False: H in the cache is None (the backward needs it; the test set's forward does not)."""
    H, F = hidden(xp, params["W"], batch, act, keep_H)    # (n, K), (n, K)
    Yhat = F @ params["V"]                                # (n, M)
    if beta != 1.0:
        Yhat = beta * Yhat                                # output scale
    return Yhat, (H, F)


def segment_sum(xp, R, seg):
    """Rows of R summed by segment: out[j] = sum_{i in seg[j]} R[i].   R (n, K), seg (m, c) -> (m, K)
    for m segments of at most c rows, padded with n (S stacked runs: as segment_sum_padded).

    The sum is segment_sum_padded's on R with a zero row appended, bit for bit. On a device that is
    how it is computed; on the host R is not copied (host_kernels.segment_sum)."""
    if xp_name(xp) == "numpy":
        return host.segment_sum(xp, R, seg)
    Rp = xp.concatenate([R, xp.zeros(R.shape[:-2] + (1, R.shape[-1]), dtype=R.dtype)], axis=-2)   # (n+1, K): row n is the pad
    return segment_sum_padded(xp, Rp, seg)


def segment_sum_padded(xp, Rp, seg):
    """As segment_sum, for Rp (n+1, K) whose last row is already zero (the pad; backward's is -0.0, which
    adds nothing to any sum, a -0.0 included, so the extra pad slots of a stack's wider tables leave
    each run's sums its own, signs of zeros too). S stacked runs:
    Rp (S, n+1, K) and seg (S, M, c) holding rows of Rp flattened to (S (n+1), K) (each run's table
    offset by s (n+1), padded with its own zero row; data.stack_batches); out (S, M, K).

    The sum runs over the c slots in order; on a device as one gather and one reduction (two kernels;
    the summation order is the device's), on the host as c gathers added into one accumulator
    (host_kernels.segment_sum_padded: the same order as NumPy's sum over the gathered (m, c, K) array,
    so the same bits)."""
    Rp = Rp.reshape(-1, Rp.shape[-1])                                            # (S (n+1), K) for a stack
    if xp_name(xp) == "numpy":
        return host.segment_sum_padded(xp, Rp, seg)
    return Rp[seg].sum(axis=-2)                                                  # (.., M, c, K) -> (.., M, K)


def _times_sigma_prime(xp, G, H, act: str):
    """G *= sigma'(H) in place. For x^2, sigma'(H) = 2H is applied as G *= H, then G *= 2: a product
    by 2 is exact, so these are the bits of G * (2H), without an (n, K) temporary."""
    if act == "sqr":
        G *= H
        G *= 2
    else:
        G *= sigma_prime(xp, H, act)


def _T(A):
    """A^T on the last two axes (A.T for one matrix, the same view)."""
    return A.swapaxes(-1, -2)


def backward(xp, params, batch, cache, dL_dYhat, act: str, beta: float = 1.0):
    """Gradients of the loss given dL/dYhat (n, M).  Returns {'W': (2M, K), 'V': (K, M)}.
    S stacked runs: dL/dYhat (S, n, M) -> {'W': (S, 2M, K), 'V': (S, K, M)}."""
    H, F = cache
    if H is None:
        raise ValueError("backward needs H: take the forward pass with keep_H=True")
    if beta != 1.0:
        dL_dYhat = beta * dL_dYhat                        # (n, M) dL/d(FV) = beta dL/dYhat
    V = params["V"]
    n, M = dL_dYhat.shape[-2:]
    dL_dV = _T(F) @ dL_dYhat                              # (K, M)   = F^T dL/dYhat
    # one zero row appended to dL/dYhat makes the last row of dL/dF (and dL/dH) the pad row
    # of the segment tables, so the (n, K) gradient is never copied
    pad = xp.zeros(dL_dYhat.shape[:-2] + (1, M), dtype=dL_dYhat.dtype)
    G_pad = xp.concatenate([dL_dYhat, pad], axis=-2)      # (n+1, M)
    dL_dH = G_pad @ _T(V)                                  # (n+1, K) = dL/dYhat V^T = dL/dF (row n: 0)
    dL_dH[..., n, :] = -0.0                               # the pad: -0.0, x + (-0.0) = x for every x
    _times_sigma_prime(xp, dL_dH[..., :n, :], H, act)     # (n, K)   chain rule through sigma, in place
    dL_dW = xp.concatenate([segment_sum_padded(xp, dL_dH, batch.seg_a),    # (M, K)  rows W[a]
                            segment_sum_padded(xp, dL_dH, batch.seg_b)],   # (M, K)  rows W[M + b]
                           axis=-2)                                    # (2M, K) = X^T dL/dH
    return {"W": dL_dW, "V": dL_dV}
