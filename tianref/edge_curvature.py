"""The curvature of the test loss along the edge and bulk directions: the edge authors' flatness measure.

Reference: *The Lifecycle of the Spectral Edge* (the edge is "flat under perturbation"); its authors' code,
github.com/skydancerosel/dyck_scan, spectral/edge_ablation.py at commit e37417d: ``hessian_curvature`` (a
central second difference of their model's masked cross-entropy on the first 300 test sequences, in eval
mode; only the perturbed parameters move, by a step of 0.001 times THEIR norm, the rest of the model
fixed) and ``main`` (it is taken along the top four right singular vectors of the window matrix, v_1, v_2
labelled the edge and v_3, v_4 the bulk, which is their only comparison: no random direction; beside it
the "function change", the absolute change of the same loss under the + step alone).
docs/edge-and-clocks.md §3.

Symbols (one space of tianref.edge_probe: W, V or both flattened, W first; everything float64)
    theta   (P,)  the parameters of the space at the probed epoch
    v_k     (P,)  = D^T u_k / sqrt(sigma_k), k = 1..N_DIRS (edge_probe.edge_directions), unit
    L(.)          the run's own loss on the test set (edge_probe.evaluate's test_loss: the run's model,
                  activation, output scale and loss), the other block fixed
    eps           = eps_rel ||theta||, eps_rel = EPS_REL = 0.001 (theirs)
    L0, L+, L-    L(theta), L(theta + eps v_k), L(theta - eps v_k)
    curvature     (L+ + L- - 2 L0) / eps^2 = v_k^T H v_k + O(eps^2), H the Hessian of L in the space
                  (exact for a loss quadratic along v_k; independent of the sign of v_k)
    func_change   |L+ - L0| (theirs; it depends on the arbitrary sign of v_k, so both signed changes
                  dL_plus = L+ - L0 and dL_minus = L- - L0 are kept: the other sign's is |dL_minus|)

Output of ``curvature`` (JSON-ready):
    {"eps_rel", "eps", "v1" .. "v4": None (v_k undefined: sigma_k <= REL_EV_MIN sigma_1, or fewer than k
     updates in the window) or {"sigma": sigma_k, "p": <theta, v_k>, "curvature", "func_change",
     "dL_plus", "dL_minus"}}
Cost: two model evaluations per defined direction (L0 is the probe's base).
"""
from __future__ import annotations

from tianref.backend import to_host

EPS_REL = 0.001             # edge_ablation.py, hessian_curvature's default eps (times ||theta||)
N_DIRS = 4                  # v_1, v_2 (the edge) and v_3, v_4 (the bulk), as edge_ablation.py's main
KEYS = tuple(f"v{k + 1}" for k in range(N_DIRS))


def second_difference(L0: float, Lp: float, Lm: float, eps: float) -> dict:
    """The curvature and the function change from the three losses (host floats)."""
    return {"curvature": (Lp + Lm - 2.0 * L0) / (eps * eps), "func_change": abs(Lp - L0),
            "dL_plus": Lp - L0, "dL_minus": Lm - L0}


def curvature(xp, theta, Vk, sigma, L0: float, test_loss, theta_norm: float, eps_rel: float = EPS_REL) -> dict:
    """The module docstring's dict for the directions Vk (k', P) (k' <= N_DIRS used) with eigenvalues
    sigma, at theta (P,) whose test loss is L0; test_loss(theta') -> the test loss (host float), one
    model evaluation per call."""
    eps = eps_rel * theta_norm
    n = min(int(Vk.shape[0]), N_DIRS)
    proj = [float(x) for x in to_host(Vk[:n] @ theta)] if n else []
    out = {"eps_rel": eps_rel, "eps": eps}
    for i, key in enumerate(KEYS):
        if i >= n:
            out[key] = None
            continue
        step = eps * Vk[i]                                  # (P,)
        Lp, Lm = test_loss(theta + step), test_loss(theta - step)
        out[key] = {"sigma": sigma[i], "p": proj[i], **second_difference(L0, Lp, Lm, eps)}
    return out


def n_evaluations(n_dirs: int) -> int:
    """Model evaluations of ``curvature`` with n_dirs defined directions."""
    return 2 * min(n_dirs, N_DIRS)
