"""Adam with coupled L2 weight decay (torch.optim.Adam semantics) and AdamW, as pure functions.

References: Kingma & Ba (2015), Algorithm 1; Loshchilov & Hutter (2019) for AdamW;
PyTorch's documented update rules for ``torch.optim.Adam(weight_decay=eta)`` and
``torch.optim.AdamW``. docs/math.md §5.

Symbols: w parameter, g gradient, m / v first and second moments, m_hat / v_hat their
bias-corrected values, t step count (1 at the first step), lr, beta1, beta2, eps, eta.

Adam, coupled L2 (the paper's optimizer; ``decoupled=False``):

    g  <- g + eta w                       weight decay enters the gradient, hence the moments
    m  <- beta1 m + (1 - beta1) g
    v  <- beta2 v + (1 - beta2) g^2
    m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)
    w  <- w - lr m_hat / (sqrt(v_hat) + eps)

AdamW, decoupled (``decoupled=True``):

    w  <- w (1 - lr eta)                  decay acts on w directly, outside the moments
    then the Adam step above with eta = 0.

With coupled L2 the decay is rescaled per coordinate by 1/sqrt(v_hat), so coordinates
with small gradients are decayed hardest; AdamW decays every coordinate at rate lr*eta.
"""
from __future__ import annotations

import math


def adam_init(xp, params):
    """State with zero moments and t = 0.  params: {name: array}."""
    return {"t": 0,
            "m": {k: xp.zeros_like(p) for k, p in params.items()},
            "v": {k: xp.zeros_like(p) for k, p in params.items()}}


def adam_update(xp, params, grads, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                eta=0.0, decoupled=False):
    """One step.  Returns (new_params, new_state); inputs are not modified."""
    t = state["t"] + 1
    c1 = 1.0 - beta1 ** t                              # bias correction of m
    c2 = 1.0 - beta2 ** t                              # bias correction of v
    new_params, new_m, new_v = {}, {}, {}
    for k, w in params.items():
        g = grads[k]
        if eta and not decoupled:
            g = g + eta * w                            # coupled L2: g + eta w
        if eta and decoupled:
            w = w * (1.0 - lr * eta)                   # AdamW: w (1 - lr eta)
        m = beta1 * state["m"][k] + (1.0 - beta1) * g  # first moment
        v = beta2 * state["v"][k] + (1.0 - beta2) * (g * g)   # second moment
        # w - lr m_hat / (sqrt(v_hat) + eps), arranged as torch does:
        # denom = sqrt(v)/sqrt(c2) + eps, step = (lr / c1) m / denom
        denom = xp.sqrt(v) / math.sqrt(c2) + eps
        new_params[k] = w - (lr / c1) * (m / denom)
        new_m[k], new_v[k] = m, v
    return new_params, {"t": t, "m": new_m, "v": new_v}
