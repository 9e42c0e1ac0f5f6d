"""How far the logged edge split is from an all-float64 computation on the same rings, and how far the ring
route is -- a measurement, run by hand (docs/edge-and-clocks.md §2 quotes it).

    python scripts/edge_precision.py                     # the quick configuration, float32, 400 epochs
    python scripts/edge_precision.py --M 11 --K 64 --epochs 100 --dtype float64

At every row where the window holds weight-decay parts, for W and V: the reference a = D u_1 and
b = D^wd u_1 in float64 from the rings' contents (the Delta^wd ring cast to float64, exact), then g2, wd2,
cross; against it the logged keys (the cross-Grams, tianref/edge.py) and the ring route as it was logged
before them (b summed in the ring's dtype). Prints the median and largest relative difference of each.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tianref import spectra, train  # noqa: E402
from tianref.config import TrainConfig, validate  # noqa: E402
from tianref.data import n_train_from_frac  # noqa: E402

KEYS = ("g2", "wd2", "cross")


def split(a, b):
    g = a - b
    return np.array([g @ g, b @ b, g @ b])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--M", type=int, default=23)
    ap.add_argument("--K", type=int, default=512)
    ap.add_argument("--train-frac", type=float, default=0.5)
    ap.add_argument("--eta", type=float, default=2e-3)
    ap.add_argument("--epochs", type=int, default=400)
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    a = ap.parse_args(argv)
    cfg = validate(TrainConfig(M=a.M, K=a.K, n_train=n_train_from_frac(a.M, a.train_frac), eta=a.eta,
                               epochs=a.epochs, dtype=a.dtype))
    w = cfg.windows[0]
    problem, state = train.setup(cfg, np)
    logged, ring, gfrac = [], [], []
    for _ in range(cfg.epochs + 1):
        row, fwd = train.evaluate(np, cfg, state, problem)
        for p in ("W", "V"):
            sp, ed = state.spec[p], state.edge[p]
            top = spectra.top_of_run(np, [sp], w)
            if top is None or ed["clean"]:
                continue
            u = top[1]
            A = u @ sp["buf"]                                                   # (P,) D u_1, float64
            ref = split(A, u @ ed["buf_wd"].astype(np.float64))                 # all float64
            old = split(A, (u.astype(ed["buf_wd"].dtype) @ ed["buf_wd"]).astype(np.float64))
            got = np.array([row[f"{p}_edge_{k}"] for k in KEYS])
            logged.append(np.abs(got - ref) / np.abs(ref))
            ring.append(np.abs(old - ref) / np.abs(ref))
            gfrac.append(ref[0] / (ref[0] + ref[1]))
        state = train.step(np, cfg, state, problem, fwd)
    logged, ring = np.array(logged), np.array(ring)
    print(f"M={a.M} K={a.K} n_train={cfg.n_train} eta={a.eta:g} {a.dtype}, {a.epochs} epochs: {len(logged)} "
          f"rows of W and V with weight decay in the window; gfrac {min(gfrac):.3f}..{max(gfrac):.3f}")
    print("relative difference from all-float64   logged (cross-Grams)     ring route")
    for i, k in enumerate(KEYS):
        print(f"  {k:6s} median / max                     {np.median(logged[:, i]):.2g} / {logged[:, i].max():.2g}"
              f"            {np.median(ring[:, i]):.2g} / {ring[:, i].max():.2g}")


if __name__ == "__main__":
    main()
