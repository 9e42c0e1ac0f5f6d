"""Benchmark, not a test: exact leave-two-out residuals for ALL pairs, and the closed form's speed-up.

Target (the project's speed requirement for thm6): at K = 2048, n = 2016, float64, on the 2-core CPU, all K(K-1)/2 ≈ 2.1M exact residuals
in ≤ 15 s including B. The baseline is the definitional route (drop two columns, solve, apply), timed on
a few pairs in the same run; the closed form r = -B_jl / (B_jj B_ll - B_jl^2) is timed on all pairs.

F~ comes from the model itself: data.init_host (M = 71, K = 2048, n = 2016, seed 0) and sigma = x^2 at
initialisation (the timings do not depend on training).

    python bench/bench_thm6.py                 # numpy
    python bench/bench_thm6.py --xp cupy       # the same code path on a GPU
Prints seconds and ratios; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # benchmark this checkout, not an installed copy

from tianref import thm6  # noqa: E402
from tianref.backend import get_xp, to_host  # noqa: E402
from tianref.data import init_host  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def closed_form_all_pairs(xp, F_tilde, eta, block):
    """B, then eq. (2) for every pair j < l in row blocks; returns a checksum (forces a device sync)."""
    B = thm6.B_inverse(xp, F_tilde, eta)                                  # (K, K)
    K = B.shape[0]
    d = xp.diagonal(B)                                                    # (K,)
    idx = xp.arange(K)
    total = xp.zeros((), dtype=xp.float64)
    for r0 in range(0, K, block):
        r1 = min(K, r0 + block)
        upper = idx[r0:r1, None] < idx[None, :]                           # (b, K)
        B_u = B[r0:r1][upper]                                             # (m,)
        r_u = -B_u / ((d[r0:r1, None] * d[None, :])[upper] - B_u * B_u)  # (m,)  eq. (2)
        total = total + xp.abs(r_u).sum()
    return float(to_host(total))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--xp", default="numpy", choices=["numpy", "cupy"])
    ap.add_argument("--M", type=int, default=71)
    ap.add_argument("--K", type=int, default=2048)
    ap.add_argument("--n", type=int, default=2016)
    ap.add_argument("--eta", type=float, default=2e-4)
    ap.add_argument("--direct-pairs", type=int, default=3, help="pairs timed by the definitional route")
    ap.add_argument("--block", type=int, default=256)
    args = ap.parse_args()
    xp = get_xp(args.xp)

    train_idx, _, W0, _ = init_host(args.M, args.K, args.n, seed=0)
    F_tilde, t_feat = timed(lambda: thm6.features_from_weights(xp, W0, args.M, train_idx, "sqr"))
    K = args.K
    P = K * (K - 1) // 2
    print(f"machine: {platform.machine()} {os.cpu_count()} CPU(s) visible; backend {args.xp}; "
          f"K={K} n={args.n} eta={args.eta:g} float64; pairs={P}")
    print(f"features F~ (x^2 at init)                : {t_feat:8.2f} s")

    _, t_B = timed(lambda: to_host(thm6.B_inverse(xp, F_tilde, args.eta)[0, 0]))
    print(f"B alone (Cholesky)                       : {t_B:8.2f} s")
    _, t_closed = timed(lambda: closed_form_all_pairs(xp, F_tilde, args.eta, args.block))
    print(f"B + eq. (2) for all pairs                : {t_closed:8.2f} s   (target <= 15 s on 2 CPU cores)")
    _, t_full = timed(lambda: thm6.summarize_checkpoint(xp, F_tilde, args.eta, all_pairs=True, n_audit=0,
                                                        block=args.block))
    print(f"thm6 --all-pairs summary (all routes)    : {t_full:8.2f} s   (+ Woodbury cross-check, eq. (4), "
          "f~^T P_eta f~ directly, quantiles)")

    j, l, _ = thm6.top_pairs(xp, F_tilde, args.direct_pairs)
    jh, lh = to_host(j), to_host(l)
    t0 = time.perf_counter()
    for a, b in zip(jh.tolist(), lh.tolist()):
        to_host(thm6.r_exact_direct(xp, F_tilde, args.eta, a, b))
    t_direct = (time.perf_counter() - t0) / max(len(jh), 1)
    per_pair_closed = t_closed / P
    print(f"definitional route, per pair ({len(jh)} pairs)  : {t_direct:8.3f} s")
    print(f"closed form, per pair (amortised, incl. B): {per_pair_closed * 1e6:8.3f} us")
    print(f"speed-up per pair, closed form over definitional : {t_direct / per_pair_closed:,.0f}x")
    print(f"all pairs by the definitional route would take   : {t_direct * P / 3600:,.1f} h")


if __name__ == "__main__":
    main()
