"""Which optimizer trains which parameter: one entry point over optim, optim_sgd and muon.

References: docs/math.md §5 (Adam, AdamW) and §9 (SGD, Muon); the optimizers Tian's own code offers
(github.com/yuandong-tian/understanding): sgd, adam, adamw and muon (W by Muon, V by Adam).

    adam   every parameter by Adam with coupled L2         optim.adam_update
    adamw  every parameter by AdamW (decoupled decay)      optim.adam_update(decoupled=True)
    sgd    every parameter by SGD, momentum, coupled L2    optim_sgd.sgd_update
    muon   W by Muon (decoupled decay), V by Adam (coupled L2)

``params`` holds the parameters that are trained: {'W', 'V'}, or {'W'} alone under the ridge
top layer. The state is a dict; ``to_arrays`` / ``from_arrays`` flatten it for checkpoints, and
Adam's arrays keep their original names (adam_t, adam_m_<k>, adam_v_<k>).
"""
from __future__ import annotations

import numpy as np  # host-side checkpoint scalars only

from tianref import muon, optim, optim_sgd
from tianref.backend import to_host

OPTIMIZERS = ("adam", "adamw", "sgd", "muon")


def init(xp, cfg, params):
    if cfg.optimizer in ("adam", "adamw"):
        return optim.adam_init(xp, params)
    if cfg.optimizer == "sgd":
        return optim_sgd.sgd_init(xp, params)
    if cfg.optimizer == "muon":
        rest = {k: p for k, p in params.items() if k != "W"}
        return {"muon": muon.muon_init(xp, params["W"]), "adam": optim.adam_init(xp, rest)}
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def update(xp, cfg, params, grads, state, *, eta=None, wd_part=False):
    """One step of the configured optimizer.  Returns (new params, new state), and with ``wd_part``
    the weight-decay part of the step {name: Delta^wd or None} third (the split optim.py defines).
    ``eta`` overrides cfg.eta (a schedule); wd_part is passed on only when asked for."""
    eta = cfg.eta if eta is None else eta
    kw = {"wd_part": True} if wd_part else {}
    if cfg.optimizer in ("adam", "adamw"):
        return optim.adam_update(xp, params, grads, state, lr=cfg.lr, beta1=cfg.beta1,
                                 beta2=cfg.beta2, eps=cfg.eps, eta=eta,
                                 decoupled=(cfg.optimizer == "adamw"), **kw)
    if cfg.optimizer == "sgd":
        return optim_sgd.sgd_update(xp, params, grads, state, lr=cfg.lr, momentum=cfg.momentum,
                                    eta=eta, **kw)
    if cfg.optimizer == "muon":
        outW = muon.muon_update(xp, params["W"], grads["W"], state["muon"], lr=cfg.lr, eta=eta, **kw)
        rest = {k: p for k, p in params.items() if k != "W"}
        outV = optim.adam_update(xp, rest, {k: grads[k] for k in rest}, state["adam"], lr=cfg.lr,
                                 beta1=cfg.beta1, beta2=cfg.beta2, eps=cfg.eps, eta=eta, **kw)
        new = dict(outV[0], W=outW[0])
        st = {"muon": outW[1], "adam": outV[1]}
        if wd_part:
            return new, st, dict(outV[2], W=outW[2])
        return new, st
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def _adam_arrays(st):
    out = {"adam_t": np.int64(st["t"]), "adam_m_wd_zero": np.bool_(st["m_wd_zero"])}
    for k in st["m"]:
        out[f"adam_m_{k}"] = to_host(st["m"][k])
        out[f"adam_v_{k}"] = to_host(st["v"][k])
    if "m_wd" in st:                                   # the weight-decay part of m (optim.py's split)
        out.update({f"adam_m_wd_{k}": to_host(v) for k, v in st["m_wd"].items()})
    return out


def _adam_from(xp, ck, names, dt):
    st = {"t": int(ck["adam_t"]),
          "m": {k: xp.asarray(ck[f"adam_m_{k}"], dtype=dt) for k in names},
          "v": {k: xp.asarray(ck[f"adam_v_{k}"], dtype=dt) for k in names}}
    if "adam_m_wd_zero" in ck:
        st["m_wd_zero"] = bool(ck["adam_m_wd_zero"])
        st["m_wd"] = {k: xp.asarray(ck[f"adam_m_wd_{k}"], dtype=dt) for k in names}
    return st


def to_arrays(cfg, state) -> dict:
    """Host arrays of the optimizer state, for a checkpoint."""
    if cfg.optimizer in ("adam", "adamw"):
        return _adam_arrays(state)
    if cfg.optimizer == "sgd":
        out = {"sgd_t": np.int64(state["t"])}
        out.update({f"sgd_buf_{k}": to_host(b) for k, b in state["buf"].items()})
        out.update({f"sgd_buf_wd_{k}": to_host(b) for k, b in state["buf_wd"].items()})
        return out
    if cfg.optimizer == "muon":
        out = _adam_arrays(state["adam"])
        out.update({"muon_t": np.int64(state["muon"]["t"]), "muon_m_W": to_host(state["muon"]["m"])})
        return out
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def from_arrays(xp, cfg, ck, names, dt):
    """Inverse of to_arrays; ``names`` are the trained parameters.  KeyError if an array is missing."""
    if cfg.optimizer in ("adam", "adamw"):
        return _adam_from(xp, ck, names, dt)
    if cfg.optimizer == "sgd":
        return {"t": int(ck["sgd_t"]), "buf": {k: xp.asarray(ck[f"sgd_buf_{k}"], dtype=dt) for k in names},
                "buf_wd": {k: xp.asarray(ck[f"sgd_buf_wd_{k}"], dtype=dt) for k in names},
                "buf_wd_zero": not any(np.any(ck[f"sgd_buf_wd_{k}"]) for k in names)}
    if cfg.optimizer == "muon":
        return {"muon": {"t": int(ck["muon_t"]), "m": xp.asarray(ck["muon_m_W"], dtype=dt)},
                "adam": _adam_from(xp, ck, [k for k in names if k != "W"], dt)}
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")
