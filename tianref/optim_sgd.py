"""SGD with heavy-ball momentum and coupled L2 (torch.optim.SGD semantics), as pure functions.

References: PyTorch's documented update rule of ``torch.optim.SGD(lr, momentum, weight_decay)``
with its defaults dampening = 0 and nesterov = False (the optimizer Tian's own code offers as
``sgd``); Polyak (1964) for the heavy ball. docs/math.md §9.

Symbols: w parameter, g gradient, b momentum buffer, t step count (1 at the first step),
lr, mu (momentum), eta (L2 weight decay).

    g  <- g + eta w                 coupled L2: the decay enters the gradient, hence the buffer
    b  <- g                         at t = 1 (torch initialises the buffer with the first gradient)
    b  <- mu b + g                  at t > 1 (dampening 0)
    w  <- w - lr b

With mu = 0 this is plain gradient descent on L + (eta/2)||w||^2.
"""
from __future__ import annotations


def sgd_init(xp, params):
    """State with t = 0 and no buffer yet (the first step sets it).  params: {name: array}."""
    return {"t": 0, "buf": {k: xp.zeros_like(p) for k, p in params.items()}}


def sgd_update(xp, params, grads, state, *, lr, momentum=0.9, eta=0.0):
    """One step.  Returns (new_params, new_state); inputs are not modified."""
    t = state["t"] + 1
    new_params, new_buf = {}, {}
    for k, w in params.items():
        g = grads[k]
        if eta:
            g = g + eta * w                                # coupled L2: g + eta w
        if momentum:
            b = g if t == 1 else momentum * state["buf"][k] + g   # torch: buf = g at the first step
        else:
            b = g
        new_params[k] = w - lr * b
        new_buf[k] = b
    return new_params, {"t": t, "buf": new_buf}
