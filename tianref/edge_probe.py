"""Probing the spectral edge of a run: the edge authors' ablation and perturbation, with fair controls.

Reference: *The Lifecycle of the Spectral Edge*; the authors' code, github.com/skydancerosel/dyck_scan,
folder spectral/, commit e37417d (edge_ablation.py, random_direction_controls.py); docs/edge-and-clocks.md §3.
Their protocol: the edge directions are the top right singular vectors of the window matrix of the last w
updates; remove {v1, v2} (and {v1}) from theta and measure the change of the TEST ACCURACY; compare with
20 draws of as many random orthonormal directions removed the same way (QR of a Gaussian P x k matrix, not
norm-matched) by |dA_edge| / (|mean_i dA_rand_i| + 1e-8). The perturbation theta + eps sign(p) v_k is ours at
their step eps = 0.005 ||theta|| (gram_edge_functional_modes.py's EPS_SCALE); their flatness measure, the
test loss's curvature along v_1..v_4 at eps = 0.001 ||theta|| (edge_ablation.py, hessian_curvature), is
tianref/edge_curvature.py, called here.

Symbols (one *space* at a time: "W" = W alone with V fixed, "V" = V alone with W fixed, "joint" = W and V
flattened together, W first; everything float64)
    theta   (P,)    the parameters of the space at the probed epoch
    D       (m, P)  the last m = min(w, updates) updates of the space as rows (the spectra ring, cast to
                    float64; joint: the W and V rings side by side), w = the run's first window
    G = D D^T (m, m) = the update Gram (joint: G_W + G_V); u_k its k-th unit eigenvector, sigma_k its eigenvalue
    v_k     (P,)    = D^T u_k / sqrt(sigma_k), k = 1, 2 (the edge; 3, 4 the bulk, for the curvature only):
                    the unit right singular vectors of D (defined while sigma_k > REL_EV_MIN sigma_1);
                    p_k = <theta, v_k>
    S               a set of orthonormal directions (rows of a (k, P) matrix): {v1, v2}, {v1}, or random
    remove    theta_S = theta - sum_{s in S} <theta, s> s;  f_S = sum_{s in S} <theta, s>^2 / ||theta||^2
    norm-matched  theta sqrt(1 - f_S): the same squared norm removed, along no direction (||.||^2 = (1 - f) ||theta||^2)
    random    Q = qr(Z), Z (P, k) standard normal from numpy default_rng((seed, k)) on the host: n_random
              draws per k, the same draws at every epoch of a space (reproducible from the seed)
    perturb   theta + eps sign(p_k) v_k, eps = eps_rel ||theta|| (sign(0) = +1)
    ratio     |dA(edge)| / (|mean_i dA(random_i)| + RATIO_FLOOR), dA = the change of the test accuracy;
              floored = |mean_i dA(random_i)| < RATIO_FLOOR: the ratio is then RATIO_FLOOR^-1 |dA(edge)| by
              construction and says nothing about the random directions
    deltas    the change from theta of the four numbers of the run's own model (model.forward with the run's
              activation and output scale beta, loss.loss_and_grad with its loss), keys DELTAS:
              dtest_acc, dtest_loss, dtrain_loss, dtrain_acc. Under --top-layer ridge, V is evaluated as
              stored (the ridge V of the epoch's W; beta = 1 there), not re-solved for an ablated W

Output of ``probe`` (JSON-ready; None where undefined; random stats over the draws, std with ddof = 0 as
the authors' np.std):
    {"space": "W" | "V" | "W+V", "P": int, "theta_norm": ||theta||, "sigma": [sigma_1, sigma_2],
     "proj": [p_1, p_2], "n_random": int, "seed": int,
     "base": {"test_loss", "test_acc", "train_loss", "train_acc"},
     "removal": {"v1v2" | "v1": None (v2 undefined) or
                 {"k": 2 | 1, "frac": f_S, "edge": deltas, "norm_matched": deltas,
                  "random": None (n_random = 0) or {"frac": stats, <each delta key>: stats},
                  "ratio": float or None, "floored": bool or None}},
     "perturb": {"eps_rel", "eps", "v1" | "v2": None or {"sign": +-1.0, "p": p_k, **deltas}},
     "curvature": edge_curvature.curvature's dict: {"eps_rel", "eps", "v1" .. "v4": None or
                  {"sigma", "p", "curvature", "func_change", "dL_plus", "dL_minus"}}}
    (sigma and proj: the edge's k = 1, 2 only)
    stats = {"mean", "std", "min", "max", "values": [one per draw]}
Output of ``space_edge`` (its split dict, both views for the space: tianref/edge.py's parameter-space
view, and the joint space's edge-projected view from edge_projected.space_author_split):
    {"sigma1", "g2", "wd2", "cross", "gfrac"?, "cos"?, "pg2", "pwd2", "pcross", "pgfrac"?, "palign"?}
"""
from __future__ import annotations

import math

import numpy as np  # host: the random directions and the summary statistics

from tianref import edge as edges, edge_curvature, edge_projected, loss as losses, model, spectra
from tianref.backend import to_host

DELTAS = ("dtest_acc", "dtest_loss", "dtrain_loss", "dtrain_acc")
RATIO_FLOOR = 1e-8          # the authors' additive floor in |dA_edge| / (|mean dA_rand| + 1e-8)
REL_EV_MIN = 1e-12          # v_k is defined while sigma_k > REL_EV_MIN sigma_1 (its norm error ~1e-16 sqrt(sigma_1/sigma_k))
REMOVALS = (("v1v2", 2), ("v1", 1))
# random draws per removal, epoch and space: each is a (P, k) standard normal frame and its QR (host memory
# 8 P k bytes at a time, ~10 MB at P = 3 M K for M = 97, K = 2048), then one model evaluation; the record
# keeps five numbers per draw (frac and DELTAS). The authors draw 20; 10^4 keeps the standard error of a
# mean at 1 % of the spread, and ~10^5 numbers per epoch and space in the JSON
N_RANDOM_MAX = 10_000


def flat(xp, params, names):
    """theta (P,) float64: the blocks ``names`` of params flattened and concatenated in that order."""
    return xp.concatenate([params[k].astype(xp.float64).reshape(-1) for k in names])   # (P,)


def unflat(xp, theta, params, names):
    """params with the blocks ``names`` replaced by the consecutive pieces of theta (P,)."""
    out, k0 = dict(params), 0
    for k in names:
        n = params[k].size
        out[k] = theta[k0:k0 + n].reshape(params[k].shape)
        k0 += n
    return out


def evaluate(xp, params64, problem, cfg) -> dict:
    """{'test_loss', 'test_acc', 'train_loss', 'train_acc'} of the run's model (cfg's act, loss and
    output scale) at float64 parameters, as host floats (one transfer)."""
    vals = []
    for batch in (problem.test, problem.train):
        Yhat, _ = model.forward(xp, params64, batch, cfg.act, cfg.output_scale, keep_H=False)   # (n, M)
        L, _ = losses.loss_and_grad(xp, Yhat, batch.y, cfg.loss)
        vals += [xp.reshape(L, (1,)), xp.reshape(losses.accuracy(xp, Yhat, batch.y).astype(xp.float64), (1,))]
    h = [float(x) for x in to_host(xp.concatenate(vals))]
    return {"test_loss": h[0], "test_acc": h[1], "train_loss": h[2], "train_acc": h[3]}


def deltas(after: dict, base: dict) -> dict:
    return {f"d{k}": after[k] - base[k] for k in ("test_acc", "test_loss", "train_loss", "train_acc")}


def window_matrix(xp, state, w: int, names):
    """D (m, P) float64, the last min(w, updates) updates of the space as rows, or None with < 2 updates."""
    sp = state.spec[names[0]]
    slots = spectra.window_slots(sp["count"], sp["buf"].shape[0], w)
    if len(slots) < 2:
        return None
    idx = xp.asarray(slots)
    return xp.concatenate([state.spec[k]["buf"][idx].astype(xp.float64) for k in names], axis=1)   # (m, P)


def edge_directions(xp, D, k: int = 2):
    """(Vk (k', P) with the unit rows v_1..v_k', [sigma_1..sigma_k'] host floats), k' <= k the defined ones."""
    ev, U = xp.linalg.eigh(D @ D.T)                     # ascending; (m,), (m, m)
    sig = [float(x) for x in to_host(ev[::-1][:k])]
    n = sum(1 for s in sig if s > REL_EV_MIN * sig[0]) if sig and sig[0] > 0 else 0
    Uk = U[:, ::-1][:, :n]                              # (m, k') u_1..u_k'
    Vk = (Uk.T @ D) / xp.sqrt(xp.asarray(sig[:n]))[:, None]   # (k', P) = D^T u_k / sqrt(sigma_k)
    return Vk, sig[:n]


def remove(xp, theta, Vk):
    """(theta_S (P,), f_S host float) for the orthonormal rows Vk (k, P)."""
    c = Vk @ theta                                      # (k,) <theta, s>
    return theta - c @ Vk, float(to_host((c @ c) / (theta @ theta)))


def random_frames(seed: int, P: int, k: int, n: int):
    """n host (k, P) matrices with orthonormal rows: Q^T, Q from the QR of a standard normal (P, k)."""
    rng = np.random.default_rng((seed, k))
    for _ in range(n):
        Q, _ = np.linalg.qr(rng.standard_normal((P, k)))      # (P, k) orthonormal columns
        yield Q.T


def ratio_of(d_edge: float, d_rand_mean: float):
    """(the authors' ratio |d_edge| / (|d_rand_mean| + RATIO_FLOOR), floored)."""
    return abs(d_edge) / (abs(d_rand_mean) + RATIO_FLOOR), abs(d_rand_mean) < RATIO_FLOOR


def ratio_from_draws(d_edge: float, d_rand) -> tuple:
    """The authors' ratio from the per-draw changes: the mean of the SIGNED changes enters (random removals
    that raise and lower the accuracy cancel), not the mean of their absolute values."""
    return ratio_of(d_edge, float(np.mean(np.asarray(d_rand, dtype=float))))


def _stats(x):
    x = np.asarray(x, dtype=float)
    return {"mean": float(x.mean()), "std": float(x.std()), "min": float(x.min()), "max": float(x.max()),
            "values": x.tolist()}


def n_evaluations(n_dirs: int, n_random: int) -> int:
    """Model evaluations of one ``probe`` with n_dirs defined directions (for progress): the base, each
    removal's edge, norm-matched and random draws, the perturbation of v_1, v_2, the curvature's two per
    direction (v_1..v_4)."""
    n_edge = min(n_dirs, 2)
    return (1 + sum(2 + n_random for _, k in REMOVALS if k <= n_edge) + n_edge
            + edge_curvature.n_evaluations(n_dirs))


def probe(xp, params, Vk, sigma, problem, cfg, names, *, n_random: int = 20, seed: int = 0,
          eps_rel: float = 0.005, curv_eps_rel: float = edge_curvature.EPS_REL, progress=None) -> dict:
    """Ablation and perturbation of the edge directions Vk (k', P) (edge_directions; k' <= 4: v_1, v_2
    are ablated and perturbed, all k' enter the curvature) of the space ``names`` at params {'W', 'V'},
    with the random and norm-matched controls; the module docstring gives the output.  progress():
    called once per model evaluation."""
    p64 = {k: v.astype(xp.float64) for k, v in params.items()}
    theta = flat(xp, p64, names)                        # (P,)
    P = int(theta.shape[0])

    def ev(th):
        out = evaluate(xp, unflat(xp, th, p64, names), problem, cfg)
        if progress:
            progress()
        return out

    base = ev(theta)
    tnorm = math.sqrt(float(to_host(theta @ theta)))
    proj = [float(x) for x in to_host(Vk[:2] @ theta)]
    out = {"space": "+".join(names), "P": P, "theta_norm": tnorm, "sigma": list(sigma[:2]), "proj": proj,
           "n_random": n_random, "seed": seed, "base": base, "removal": {}, "perturb": {}}
    for key, k in REMOVALS:
        if Vk.shape[0] < k:
            out["removal"][key] = None
            continue
        th, f = remove(xp, theta, Vk[:k])
        rec = {"k": k, "frac": f, "edge": deltas(ev(th), base),
               "norm_matched": deltas(ev(theta * math.sqrt(max(1.0 - f, 0.0))), base),
               "random": None, "ratio": None, "floored": None}
        rand, fr = [], []
        for Q in random_frames(seed, P, k, n_random):
            thr, f_r = remove(xp, theta, xp.asarray(Q))
            rand.append(deltas(ev(thr), base))
            fr.append(f_r)
        if rand:
            rec["random"] = {"frac": _stats(fr), **{d: _stats([r[d] for r in rand]) for d in DELTAS}}
            rec["ratio"], rec["floored"] = ratio_from_draws(rec["edge"]["dtest_acc"], rec["random"]["dtest_acc"]["values"])
        out["removal"][key] = rec
    eps = eps_rel * tnorm
    out["perturb"] = {"eps_rel": eps_rel, "eps": eps}
    for i, key in enumerate(("v1", "v2")):
        if Vk.shape[0] <= i:
            out["perturb"][key] = None
            continue
        s = 1.0 if proj[i] >= 0 else -1.0
        out["perturb"][key] = {"sign": s, "p": proj[i], **deltas(ev(theta + (eps * s) * Vk[i]), base)}
    out["curvature"] = edge_curvature.curvature(xp, theta, Vk, sigma, base["test_loss"],
                                                lambda th: ev(th)["test_loss"], tnorm, curv_eps_rel)
    return out


def space_edge(xp, state, w: int, names):
    """(e (P,), split dict) of the space ``names``: e = D u_1 / ||D u_1|| of tianref.edge and its
    gradient / weight-decay split in both views (the module docstring's keys), formed from the rings'
    contents (for W or V alone the numbers the run logs as W_edge_* / V_edge_* from its cross-Grams, to
    the rounding of the training dtype: tianref/edge.py), or None with < 2 updates."""
    specs = [state.spec[k] for k in names]
    rings = [state.edge[k] for k in names]
    parts = edges.edge_parts(xp, specs, rings, w)
    if parts is None:
        return None
    g2, wd2, cross = (float(to_host(x)) for x in edges.split_of(xp, parts))
    a = xp.concatenate([a for a, _ in parts])            # (P,) D u_1 over the space
    sigma1 = float(to_host(a @ a))
    split = {"sigma1": sigma1, "g2": g2, "wd2": wd2, "cross": cross, **edges.derived(g2, wd2, cross)}
    pg2, pwd2, pcross = (float(to_host(x)) for x in edge_projected.space_author_split(xp, specs, rings, w))
    split.update({"pg2": pg2, "pwd2": pwd2, "pcross": pcross,
                  **edges.derived(pg2, pwd2, pcross, names=edge_projected.AUTHOR_DERIVED)})
    return a / math.sqrt(sigma1), split
