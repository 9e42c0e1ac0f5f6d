"""Muon on the first layer W, in the arrangement of Tian's own code, as pure functions.

References: K. Jordan et al., "Muon: An optimizer for hidden layers in neural networks" (2024,
https://kellerjordan.github.io/posts/muon/) for the Newton-Schulz orthogonalisation; Tian's code
(github.com/yuandong-tian/understanding, ``muon_opt.py`` and ``modular_addition_simple2.py``) for
the arrangement used here: W by Muon, V by Adam with coupled L2 (``optim.adam_update``).
docs/math.md §9 gives the lines read: modular_addition_simple2.py @ 03b212ce, lines 471-485 (his settings);
muon_opt.py at the same path of facebookresearch/luckmatters @ 54c5c64, lines 5-63.

Symbols: W (2M, K) first layer, g = dL/dW, m momentum buffer (zero at start), lr, eta (decay),
beta = 0.99 the momentum EMA coefficient, O the orthogonalised step, (a, b, c) the Newton-Schulz
coefficient triples, S = X X^T.

One step, his settings (no Nesterov, no RMS or spectral compensation, no bf16):

    W <- W (1 - lr eta)                        decoupled decay, first
    m <- beta m + (1 - beta) g                 EMA momentum (beta1 plays no part without Nesterov)
    O  = NS(m)                                 five Newton-Schulz steps, coefficients below
    W <- W - lr O

NS(G): X = G (transposed first if it has more rows than columns); X <- X / (||X||_F + 1e-7);
then for each (a, b, c) in NS_COEFFS:  S = X X^T,  X <- a X + (b S + c S^2) X;  transpose back.
The iteration maps every singular value of X towards ~1 while keeping the singular vectors, so
O ~ U V^T for G = U Sigma V^T. It is transpose-invariant: NS(G^T) = NS(G)^T, which is why W
stored as (2M, K) here or as torch's (K, 2M) gives the same step.

The weight-decay part of a step (the split Delta = Delta^grad + Delta^wd of optim.py): the decay is
decoupled, so Delta^wd = -lr eta W (W before the decay) and the orthogonalised step is the gradient
part, Delta^grad = (1 - lr eta) W - lr O - W + lr eta W = -lr O. ``wd_part=True`` returns Delta^wd
third (None when eta = 0).

A leading run axis S (S runs stacked, tianref/batch.py): W, g and m (S, 2M, K). Each slice is
orthogonalised alone: the Frobenius norm is taken over the last two axes, the products are ``@`` on
them (NumPy multiplies a stack slice by slice with the BLAS call of one matrix), so each run's step is
its own run's bit for bit; eta may be per-run host values (S, 1, 1), as in optim.py.
"""
from __future__ import annotations

from tianref.optim import nonzero, per_run

# Tian's five (a, b, c) triples, in order
NS_COEFFS = ((4.01, -9.22, 5.80),
             (3.49, -6.38, 3.23),
             (3.34, -6.21, 3.20),
             (3.64, -7.48, 4.43),
             (3.46, -5.35, 2.85))
NS_EPS = 1e-7
MUON_BETA = 0.99


def newton_schulz(xp, G, coeffs=NS_COEFFS, eps=NS_EPS):
    """NS(G) for G (r, c), or each slice of a stack (S, r, c); returns an array of G's shape and dtype."""
    tall = G.shape[-2] > G.shape[-1]
    X = _T(G) if tall else G                               # (p, q), p <= q
    norm = xp.sqrt((X * X).sum(axis=(-2, -1), keepdims=True))   # (1, 1) ||X||_F (stack: (S, 1, 1))
    X = X / (norm + eps)                                   # ||X||_F <= 1: singular values in [0, 1]
    for a, b, c in coeffs:
        S = X @ _T(X)                                      # (p, p)
        X = a * X + (b * S + c * (S @ S)) @ X              # (p, q)
    return _T(X) if tall else X


def _T(X):
    """X^T of the last two axes (a stack: each slice's)."""
    return X.swapaxes(-1, -2)


def muon_init(xp, W):
    """Momentum buffer m = 0 and t = 0 for the matrix W."""
    return {"t": 0, "m": xp.zeros_like(W)}


def muon_update(xp, W, g, state, *, lr, eta=0.0, beta=MUON_BETA, wd_part=False):
    """One Muon step on W (2-d).  Returns (new W, new state), and Delta^wd (or None) third when
    ``wd_part``; inputs are not modified."""
    decay = nonzero(eta)
    d_wd = per_run(xp, -lr * eta, W) * W if (wd_part and decay) else None   # W before the decay
    if decay:
        W = W * per_run(xp, 1.0 - lr * eta, W)             # decoupled decay, before the update
    m = beta * state["m"] + (1.0 - beta) * g               # EMA momentum
    O = newton_schulz(xp, m)                               # (2M, K) orthogonalised step
    if wd_part:
        return W - lr * O, {"t": state["t"] + 1, "m": m}, d_wd
    return W - lr * O, {"t": state["t"] + 1, "m": m}
