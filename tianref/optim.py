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

Every operation is elementwise, so parameters, gradients and moments may carry a leading run axis S
(S runs stacked, tianref/batch.py) with no change: each run's entries are updated as if alone.
A stack whose runs differ by eta passes eta as a host array of per-run values, shape (S, 1, 1),
float64 (``per_run``); each coefficient below is then formed in float64, as Python forms it from a
float, and cast once to the parameters' dtype, as NumPy casts a Python float: each run's numbers
are those of its own run (a run with eta = 0 adds exact zeros where its own run adds nothing; g + 0 w
may turn a -0.0 of g into +0.0, which Adam never shows: m and v start at +0.0 and a sum of zeros is
-0.0 only when both are, so they never hold -0.0; SGD's buffer keeps g's zeros: optim_sgd, runs_with).

The weight-decay part of an update (docs/edge-and-clocks.md §1). Every update splits exactly
into a gradient part and a weight-decay part, Delta = Delta^grad + Delta^wd:

    Adam (coupled)  m is linear in g = dL/dw + eta w, so m = m^grad + m^wd with
                    m^wd <- beta1 m^wd + (1 - beta1) eta w   (same beta1, zero start); the
                    denominator sqrt(v_hat) + eps is shared, so
                    Delta^wd = -(lr / c1) m^wd / denom,   Delta^grad = -(lr / c1) m^grad / denom
    AdamW           Delta^wd = -lr eta w,   Delta^grad = the Adam step on dL/dw

``wd_part=True`` makes an update also return {name: Delta^wd} (the training dtype, the parameter's
shape; None where it is exactly zero, i.e. no decay has entered the state yet). The gradient part is
the rest, Delta^grad = Delta - Delta^wd, formed in float64 from the parameters actually stored
(tianref.edge), so D = D^grad + D^wd holds to float64 rounding in any training dtype (the rounding
of storing w goes to the gradient part). m^wd is kept in the training dtype under the state key
"m_wd"; it never feeds back into the parameters, so the training path is bit-identical with or
without it.

How to give another optimizer its split (the same contract): accept ``wd_part``; carry any
momentum of the decay term in the state in float64 (linear buffers split like m above); return
Delta^wd as the third value. SGD with momentum (torch.optim.SGD, coupled L2): the buffer
b <- mu b + (g + eta w) is linear, so keep b^wd <- mu b^wd + eta w and Delta^wd = -lr b^wd.
Muon with decoupled decay: Delta^wd = -lr eta w (the orthogonalised step is the gradient part);
its Adam-driven V splits as Adam above. Resume must restore the extra state (train.state_arrays).
"""
from __future__ import annotations

import math


def adam_init(xp, params):
    """State with zero moments and t = 0.  params: {name: array}.

    m_wd is the weight-decay part of m; m_wd_zero (host bool) says it is still exactly 0.
    """
    return {"t": 0,
            "m": {k: xp.zeros_like(p) for k, p in params.items()},
            "v": {k: xp.zeros_like(p) for k, p in params.items()},
            "m_wd": {k: xp.zeros_like(p) for k, p in params.items()},
            "m_wd_zero": True}


def adam_update(xp, params, grads, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                eta=0.0, decoupled=False, wd_part=False):
    """One step.  Returns (new_params, new_state), and {name: Delta^wd or None} third when
    ``wd_part``; inputs are not modified."""
    t = state["t"] + 1
    c1 = 1.0 - beta1 ** t                              # bias correction of m
    c2 = 1.0 - beta2 ** t                              # bias correction of v
    new_params, new_m, new_v = {}, {}, {}
    m_wd_old = state.get("m_wd")
    decay = nonzero(eta)                               # any run's eta nonzero (host)
    coupled_wd = decay and not decoupled
    m_wd_zero = state.get("m_wd_zero", True) and not coupled_wd
    new_m_wd, parts = {}, {}
    for k, w in params.items():
        if m_wd_old is not None:
            if m_wd_zero:                              # no decay has entered m yet: m^wd = 0 exactly
                new_m_wd[k] = m_wd_old[k]
            else:                                      # m^wd <- beta1 m^wd + (1 - beta1) eta w
                mw = beta1 * m_wd_old[k]               # a new array: updated in place below
                if coupled_wd:
                    mw += per_run(xp, (1.0 - beta1) * eta, w) * w
                new_m_wd[k] = mw
        g = grads[k]
        if coupled_wd:
            g = g + per_run(xp, eta, w) * w            # coupled L2: g + eta w
        if decay and decoupled:
            w = w * per_run(xp, 1.0 - lr * eta, w)     # AdamW: w (1 - lr eta)
        m = beta1 * state["m"][k] + (1.0 - beta1) * g  # first moment
        v = beta2 * state["v"][k] + (1.0 - beta2) * (g * g)   # second moment
        # w - lr m_hat / (sqrt(v_hat) + eps), arranged as torch does:
        # denom = sqrt(v)/sqrt(c2) + eps, step = (lr / c1) m / denom
        denom = xp.sqrt(v) / math.sqrt(c2) + eps
        new_params[k] = w - (lr / c1) * (m / denom)
        new_m[k], new_v[k] = m, v
        if wd_part:
            if decay and decoupled:                    # Delta^wd = -lr eta w (w before the decay)
                parts[k] = per_run(xp, -lr * eta, w) * params[k]
            elif m_wd_old is not None and not m_wd_zero:   # Delta^wd = -(lr/c1) m^wd / denom
                d_wd = new_m_wd[k] / denom             # a new array: scaled in place
                d_wd *= -lr / c1
                parts[k] = d_wd
            else:
                parts[k] = None
    new_state = {"t": t, "m": new_m, "v": new_v}
    if m_wd_old is not None:
        new_state["m_wd"], new_state["m_wd_zero"] = new_m_wd, m_wd_zero
    if wd_part:
        return new_params, new_state, parts
    return new_params, new_state


# A stack whose runs differ by eta (tianref/batch.py): its per-run coefficients.

_PER_RUN = {}          # (backend, dtype, the values' bytes) -> the coefficient on the backend


def per_run(xp, c, like):
    """A step coefficient for ``like``: c itself when it is a Python float; a host array of per-run
    values (S, 1, 1) as ``like``'s dtype on the backend. Kept per value: a stack's coefficients are
    the same every step, and a host -> device copy would wait for the device each time."""
    if not getattr(c, "ndim", 0):
        return c
    return _on_device(xp, c.astype(like.dtype))


def runs_with(xp, eta):
    """The runs of a stack whose eta is not 0: a bool (S, 1, 1) on the backend, from per-run etas
    (S, 1, 1) (kept per value, as per_run's coefficients)."""
    return _on_device(xp, eta != 0)


def _on_device(xp, host):
    """A host array on the backend, kept per value (_PER_RUN)."""
    key = (id(xp), host.dtype.str, host.shape, host.tobytes())
    out = _PER_RUN.get(key)
    if out is None:                                    # (a stack's thread parts may race here: harmless)
        out = xp.asarray(host)
        if len(_PER_RUN) >= 64:                        # a few stacks' worth; never grows without bound
            _PER_RUN.clear()
        _PER_RUN[key] = out
    return out


def nonzero(eta) -> bool:
    """Whether any run's eta is nonzero (eta a float or a host array of per-run values)."""
    return bool(eta.any()) if hasattr(eta, "any") else bool(eta)
