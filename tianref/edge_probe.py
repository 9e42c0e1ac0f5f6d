"""Probing the spectral edge of a run: ablation and flatness against random directions.

Reference: *The Lifecycle of the Spectral Edge* (its protocol: the test-loss increase after removing
the edge direction from the parameters, against the mean over 100 random directions; the edge is
"flat under perturbation, yet critical when ablated"); docs/edge-and-clocks.md §3.

Symbols (one *space* at a time: "joint" = W and V flattened together, "W" = W alone, V fixed)
    theta   (P,)  the parameters of the space at the epoch, float64
    e       (P,)  the edge direction, e = D u_1 / ||D u_1||, u_1 the top eigenvector of the space's
                  update Gram on the first window (joint: G_W + G_V; tianref.edge.edge_vector)
    r_i     (P,)  random unit directions, i = 1..R: standard normal on the host (seeded), normalised
    L, A          the run's loss and accuracy on the TEST set, evaluated in float64

    ablation   theta_perp = theta - (theta . d) d             (d = e or r_i: remove d from theta)
               dL_abl(d) = L(theta_perp) - L(theta),  dA_abl(d) = A(theta_perp) - A(theta)
               ratio_abl = |dL_abl(e)| / mean_i |dL_abl(r_i)|  (how much more the edge matters; the
                           signed changes are reported too: removing a random direction can lower L)
               z_abl     = (dL_abl(e) - mean_i dL_abl(r_i)) / std_i   (std with ddof = 1)
    flatness   eps = eps_rel * ||theta||                      (the rule: one relative step size for
                                                                the edge and every random direction)
               dL_pm(d) = L(theta +- eps d) - L(theta)
               curv(d)  = (L(theta + eps d) + L(theta - eps d) - 2 L(theta)) / eps^2
                          (the directional second derivative d^T H d, to O(eps^2))
               ratio_flat = |curv(e)| / mean_i |curv(r_i)|   (< 1: flatter along the edge than at random)

A ratio_abl >> 1 says removing the edge hurts more than removing a random direction; a small
ratio_flat says the loss is flatter along the edge than along random directions. Both are
reported per epoch with the edge's gfrac and cos (the parameter-space view of tianref.edge) of the
same space.
"""
from __future__ import annotations

import math

import numpy as np  # host: the random directions and the summary statistics

from tianref import edge as edges, loss as losses, model
from tianref.backend import to_host


def _flat(xp, params, names):
    return xp.concatenate([params[k].astype(xp.float64).reshape(-1) for k in names])   # (P,)


def _unflat(xp, theta, params, names):
    out, k0 = dict(params), 0
    for k in names:
        n = params[k].size
        out[k] = theta[k0:k0 + n].reshape(params[k].shape)
        k0 += n
    return out


def eval_on(xp, params64, batch, act, loss):
    """(L, A) on a batch as host floats, float64 parameters."""
    Yhat, _ = model.forward(xp, params64, batch, act)
    L, _ = losses.loss_and_grad(xp, Yhat, batch.y, loss)
    return float(to_host(L)), float(to_host(losses.accuracy(xp, Yhat, batch.y)))


def space_edge(xp, state, w: int, names):
    """(e (P,), split dict) of the space ``names`` (('W', 'V') or ('W',)), or None with < 2 updates."""
    specs = [state.spec[k] for k in names]
    rings = [state.edge[k] for k in names]
    parts = edges.edge_parts(xp, specs, rings, w)
    if parts is None:
        return None
    g2, wd2, cross = (float(to_host(x)) for x in edges.split_of(xp, parts))
    a = xp.concatenate([a for a, _ in parts])            # (P,) D u_1 over the space
    sigma1 = float(to_host(a @ a))
    split = {"sigma1": sigma1, "g2": g2, "wd2": wd2, "cross": cross, **edges.derived(g2, wd2, cross)}
    return a / math.sqrt(sigma1), split


def replay_states(cfg, epochs, xp, init=None):
    """Yield (epoch, TrainState, Problem) at each wanted epoch (ascending), replaying the run
    deterministically from its config (the optimizer steps only; tianref.train.replay's route)."""
    from tianref import train
    wanted = sorted(set(int(e) for e in epochs))
    problem, state = train.setup(cfg, xp, init)
    for e in wanted:
        while state.epoch < e:
            state = train.step(xp, cfg, state, problem)
        yield e, state, problem


def _stats(x):
    x = np.asarray(x, dtype=float)
    return {"mean": float(x.mean()), "std": float(x.std(ddof=1)) if x.size > 1 else math.nan,
            "median": float(np.median(x)), "min": float(x.min()), "max": float(x.max())}


def _ratio(a, b):
    return a / b if b > 0 else math.nan


def probe(xp, params, e, batch, act, loss, names, *, n_random: int, seed: int, eps_rel: float,
          progress=None):
    """Ablation and flatness of direction e (P,) in the space ``names`` against n_random random
    unit directions (host rng ``seed``).  params: the run's {'W', 'V'}.  Returns a JSON-ready dict."""
    p64 = {k: v.astype(xp.float64) for k, v in params.items()}
    theta = _flat(xp, p64, names)                        # (P,)
    L0, A0 = eval_on(xp, p64, batch, act, loss)
    eps = eps_rel * float(to_host(xp.sqrt(theta @ theta)))

    def measure(d):
        c = theta @ d                                    # () component of theta along d
        La, Aa = eval_on(xp, _unflat(xp, theta - c * d, p64, names), batch, act, loss)
        Lp, _ = eval_on(xp, _unflat(xp, theta + eps * d, p64, names), batch, act, loss)
        Lm, _ = eval_on(xp, _unflat(xp, theta - eps * d, p64, names), batch, act, loss)
        if progress:
            progress()
        return {"dloss_abl": La - L0, "dacc_abl": Aa - A0, "proj": float(to_host(c)),
                "dloss_plus": Lp - L0, "dloss_minus": Lm - L0, "curv": (Lp + Lm - 2 * L0) / eps ** 2}

    me = measure(e)
    rng = np.random.default_rng(seed)
    P = int(theta.shape[0])
    rand = []
    for _ in range(n_random):
        r = rng.standard_normal(P)
        rand.append(measure(xp.asarray(r / np.linalg.norm(r))))
    R = {k: _stats([m[k] for m in rand]) for k in ("dloss_abl", "dacc_abl", "curv", "proj")} if rand else {}
    if rand:
        R["abs_dloss_abl"] = _stats([abs(m["dloss_abl"]) for m in rand])
        R["abs_curv"] = _stats([abs(m["curv"]) for m in rand])
    out = {"space": "+".join(names), "P": P, "test_loss": L0, "test_acc": A0, "eps": eps,
           "eps_rel": eps_rel, "n_random": n_random, "seed": seed, "edge": me, "random": R}
    if rand:
        s = R["dloss_abl"]
        out["ablation_ratio"] = _ratio(abs(me["dloss_abl"]), R["abs_dloss_abl"]["mean"])
        out["ablation_z"] = (me["dloss_abl"] - s["mean"]) / s["std"] if s["std"] > 0 else math.nan
        out["flatness_ratio"] = _ratio(abs(me["curv"]), R["abs_curv"]["mean"])
    return out
