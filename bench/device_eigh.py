"""The device's symmetric eigensolvers against NumPy's, at the shapes a run uses, alone and stacked.

    python bench/device_eigh.py [--xp cupy] [--json PATH]

Why: a single run calls ``xp.linalg.eigh``/``eigvalsh`` on 2-D Grams, a batch (``sweep --batch``) on
stacks (S, n, n). CuPy sends a 2-D matrix to cuSOLVER's ``syevd`` and any stack, whatever n, to the
Jacobi solver ``syevjBatched``, whose documentation once limited n to 32; the run's Grams go up to
2M = 142 (the clocks' W W^T at M = 71). Whether a stack of those gives NumPy's numbers on a given
device is measured here, not assumed.

For each n in --sizes (the update Grams' w = 20, 32, 33 just past the old limit, the clocks' M = 71 and
2M = 142) and each layout (2-D, a stack of 1, a stack of --stack), Grams G = X X^T of float64 random X
(n x 4n, scaled rows so that the spectrum spans ~6 decades like a trained W's, plus one exactly rank-
deficient case) are solved on the device and with numpy.linalg on the host. Reported per case:

    ev_rel    max |lambda_dev - lambda_np| / lambda_max(np)           (eigvalsh and eigh's values)
    res_rel   max ||G u - lambda u|| / lambda_max over the device's eigenvectors (eigh)
    orth      max |U^T U - I| of the device's eigenvectors
    top_cos   min |<u_1,dev, u_1,np>| over the stack (the top eigenvector, up to sign)

A backward-stable solver gives ev_rel, res_rel, orth ~ 1e-15 .. 1e-13; the verdict line flags any case
above 1e-10 (the project's float64 agreement for batched against unbatched rows). Exit 0 always: the
numbers are the result. With --xp fake (the strict fake backend) the script checks itself on a CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tianref.backend import get_xp, to_host  # noqa: E402

LIMIT = 1e-10


def grams(rng, n: int, S: int, rank_deficient: bool):
    """(S, n, n) float64 Grams X X^T, rows of X scaled over ~3 decades (eigenvalues over ~6)."""
    X = rng.standard_normal((S, n, 4 * n)) * np.logspace(0, -3, n)[None, :, None]
    if rank_deficient:
        X[:, n // 2:, :] = X[:, :1, :] * np.linspace(1, 2, n - n // 2)[None, :, None]   # rank n // 2 + 1
    return X @ X.swapaxes(-1, -2)


def check(xp, G, layout: str) -> dict:
    """Solve G (S, n, n) on the device in ``layout`` ('2d': one call per matrix; 'stack': one call)."""
    Gd = xp.asarray(G)
    if layout == "2d":
        vals = [xp.linalg.eigvalsh(Gd[s]) for s in range(G.shape[0])]
        pairs = [xp.linalg.eigh(Gd[s]) for s in range(G.shape[0])]
        ev_only = np.stack([to_host(v) for v in vals])
        ev = np.stack([to_host(p[0]) for p in pairs])
        U = np.stack([to_host(p[1]) for p in pairs])
    else:
        ev_only = to_host(xp.linalg.eigvalsh(Gd))
        e, u = xp.linalg.eigh(Gd)
        ev, U = to_host(e), to_host(u)
    ref_ev, ref_U = np.linalg.eigh(G)
    top = ref_ev[:, -1:]                                              # (S, 1) lambda_max
    ev_rel = max(float(np.max(np.abs(ev_only - ref_ev) / top)), float(np.max(np.abs(ev - ref_ev) / top)))
    res = np.linalg.norm(G @ U - U * ev[:, None, :], axis=-2)         # (S, n) ||G u_i - lambda_i u_i||
    eye = np.eye(G.shape[-1])
    orth = float(np.max(np.abs(U.swapaxes(-1, -2) @ U - eye)))
    cos = np.abs(np.einsum("si,si->s", U[:, :, -1], ref_U[:, :, -1]))
    return {"ev_rel": ev_rel, "res_rel": float(np.max(res / top)), "orth": orth, "top_cos": float(cos.min())}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--xp", default="cupy", help="the device backend (cupy; fake checks the script on a CPU)")
    ap.add_argument("--sizes", default="20,32,33,71,142")
    ap.add_argument("--stack", type=int, default=30, help="S of the larger stack (the headline sweep's 30 runs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    xp = get_xp(a.xp)
    rng = np.random.default_rng(a.seed)
    rows = []
    for n in (int(s) for s in a.sizes.split(",")):
        for deficient in (False, True):
            for layout, S in (("2d", 1), ("stack", 1), ("stack", a.stack)):
                G = grams(rng, n, S, deficient)
                r = check(xp, G, layout)
                rows.append({"n": n, "rank_deficient": deficient, "layout": layout, "S": S, **r})
    print(f"{'n':>4s} {'rank-def':>8s} {'layout':>6s} {'S':>3s} {'ev_rel':>9s} {'res_rel':>9s} {'orth':>9s} "
          f"{'top_cos':>9s}")
    bad = []
    for r in rows:
        worst = max(r["ev_rel"], r["res_rel"], r["orth"])
        flag = "  ABOVE 1e-10" if not worst <= LIMIT else ""
        if flag:
            bad.append(f"n={r['n']} {r['layout']} S={r['S']}{' rank-deficient' if r['rank_deficient'] else ''}")
        print(f"{r['n']:4d} {str(r['rank_deficient']):>8s} {r['layout']:>6s} {r['S']:3d} {r['ev_rel']:9.1e} "
              f"{r['res_rel']:9.1e} {r['orth']:9.1e} {r['top_cos']:9.6f}{flag}")
    verdict = "every case within 1e-10" if not bad else "ABOVE 1e-10: " + "; ".join(bad)
    print(f"verdict ({a.xp}): {verdict}")
    doc = {"xp": a.xp, "limit": LIMIT, "rows": rows, "bad": bad}
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
    print(json.dumps({"xp": a.xp, "bad": bad}))


if __name__ == "__main__":
    main()
