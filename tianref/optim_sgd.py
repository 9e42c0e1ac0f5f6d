"""SGD with heavy-ball momentum and coupled L2 (torch.optim.SGD semantics), as pure functions.

References: PyTorch's documented update rule of ``torch.optim.SGD(lr, momentum, weight_decay)``
with its defaults dampening = 0 and nesterov = False (the optimizer Tian's own code offers as
``sgd``, momentum 0.9: modular_addition_simple2.py @ 03b212ce, line 466); Polyak (1964) for the heavy
ball. docs/math.md §9.

Symbols: w parameter, g gradient, b momentum buffer, t step count (1 at the first step),
lr, mu (momentum), eta (L2 weight decay).

    g  <- g + eta w                 coupled L2: the decay enters the gradient, hence the buffer
    b  <- g                         at t = 1 (torch initialises the buffer with the first gradient)
    b  <- mu b + g                  at t > 1 (dampening 0)
    w  <- w - lr b

With mu = 0 this is plain gradient descent on L + (eta/2)||w||^2.

The weight-decay part of an update (the split Delta = Delta^grad + Delta^wd that optim.py defines for
Adam). The buffer is linear in g + eta w, so b = b^grad + b^wd with

    b^wd <- mu b^wd + eta w     (b^wd = eta w at the first step, as b = g there)
    Delta^wd = -lr b^wd,        Delta^grad = -lr b^grad = Delta - Delta^wd

``wd_part=True`` returns {name: Delta^wd} third (None where it is exactly zero: no decay has entered
the buffer yet). b^wd is kept in the state ("buf_wd", training dtype) whether or not it is asked for;
it never feeds back into the parameters, so the training path is bit-identical either way. After a
weight-decay schedule sets eta to 0, b^wd <- mu b^wd keeps decaying and Delta^wd stays nonzero: the
buffer still carries the decay of earlier steps. The host flag "buf_wd_zero" says b^wd is exactly 0.

Elementwise, so a leading run axis S (tianref/batch.py) passes through unchanged; eta may be a host
array of per-run values (S, 1, 1), as in optim.py (``optim.per_run``). A run of such a stack whose eta
is 0 steps with g itself, as its own run does, not with g + 0 w: where g holds -0.0 and w > 0 that sum
is +0.0, and the buffer b keeps g's zeros (b = g at the first step), so the run's checkpoints would
differ from its own run's in the sign of those zeros (``optim.runs_with``: one xp.where).
"""
from __future__ import annotations

from tianref.optim import nonzero, per_run, runs_with


def sgd_init(xp, params):
    """State with t = 0 and no buffer yet (the first step sets it).  params: {name: array}."""
    return {"t": 0, "buf": {k: xp.zeros_like(p) for k, p in params.items()},
            "buf_wd": {k: xp.zeros_like(p) for k, p in params.items()}, "buf_wd_zero": True}


def sgd_update(xp, params, grads, state, *, lr, momentum=0.9, eta=0.0, wd_part=False):
    """One step.  Returns (new_params, new_state), and {name: Delta^wd or None} third when
    ``wd_part``; inputs are not modified."""
    t = state["t"] + 1
    new_params, new_buf, new_wd, parts = {}, {}, {}, {}
    old_wd = state.get("buf_wd", {})
    decay = nonzero(eta)
    zero = state.get("buf_wd_zero", not old_wd) and not decay     # b^wd still exactly 0 after this step
    for k, w in params.items():
        carry = momentum and t > 1 and k in old_wd and not state.get("buf_wd_zero", False)
        if zero:
            bw = old_wd[k] if k in old_wd else xp.zeros_like(w)
        elif carry:                                        # b^wd <- mu b^wd + eta w
            bw = momentum * old_wd[k] + per_run(xp, eta, w) * w if decay else momentum * old_wd[k]
        else:                                              # b^wd = eta w (first step, or no momentum)
            bw = per_run(xp, eta, w) * w
        new_wd[k] = bw
        parts[k] = None if zero else (-lr) * bw
        g = grads[k]
        if decay:
            g = g + per_run(xp, eta, w) * w                # coupled L2: g + eta w
            if getattr(eta, "ndim", 0) and not eta.all():  # a stack's runs without decay: g itself (g + 0 w
                g = xp.where(runs_with(xp, eta), g, grads[k])   # turns g's -0.0 into +0.0 where w > 0)
        if momentum:
            b = g if t == 1 else momentum * state["buf"][k] + g   # torch: buf = g at the first step
        else:
            b = g
        new_params[k] = w - lr * b
        new_buf[k] = b
    new_state = {"t": t, "buf": new_buf, "buf_wd": new_wd, "buf_wd_zero": zero}
    if wd_part:
        return new_params, new_state, parts
    return new_params, new_state
