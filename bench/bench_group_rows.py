"""Cost of the per-row irrep diagnostics of a --group run, as a ratio to one full-metrics epoch, same process.

    python bench/bench_group_rows.py                       # S5 (|H| = 120), K = 512, half the table
    python bench/bench_group_rows.py --group A5 --K 256

Times, interleaved over --repeats rounds (median of each):
    epoch    train.step + train.evaluate with --metrics full (one logged epoch, the irrep keys included)
    irrep    the irrep part alone (group_rows.irrep_parts: irrep_coverage, irrep_purity_med, irrep_energy)
             with the run's precomputed matrix irreps (x^2: the Plancherel route) or projectors
    setup    group_rows.prepare once (the decomposition and the projectors; not per row)
and prints irrep/epoch (the target: <= 0.05 at |H| <= 120).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tianref import group_rows, train  # noqa: E402
from tianref.config import TrainConfig, validate  # noqa: E402
from tianref.data import n_train_from_frac  # noqa: E402
from tianref.groups import task_group  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--group", default="S5")
    ap.add_argument("--K", type=int, default=512)
    ap.add_argument("--train-frac", type=float, default=0.5)
    ap.add_argument("--act", default="sqr")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    M = task_group(args.group).order
    cfg = validate(TrainConfig(M=M, K=args.K, n_train=n_train_from_frac(M, args.train_frac), act=args.act,
                               epochs=1, group=args.group))
    t = time.perf_counter()
    group_rows.prepare(np, cfg)
    t_setup = time.perf_counter() - t
    problem, state = train.setup(cfg, np)
    state = train.step(np, cfg, state, problem)                  # warm-up, and a non-trivial W
    view = problem.group
    times = {"epoch": [], "irrep": []}
    for _ in range(args.repeats):
        t = time.perf_counter()
        train.step(np, cfg, state, problem)
        train.evaluate(np, cfg, state, problem)
        times["epoch"].append(time.perf_counter() - t)
        t = time.perf_counter()
        group_rows.irrep_parts(np, view, state.params["W"], cfg.act)
        times["irrep"].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) for k, v in times.items()}
    out = {"group": args.group, "M": M, "K": args.K, "n_train": cfg.n_train, "act": args.act,
           "repeats": args.repeats, "seconds_median": med, "setup_seconds": t_setup,
           "irrep_over_epoch": med["irrep"] / med["epoch"],
           "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    print(f"epoch {med['epoch'] * 1e3:.1f} ms   irrep {med['irrep'] * 1e3:.1f} ms   setup {t_setup * 1e3:.0f} ms"
          f"   irrep/epoch {out['irrep_over_epoch']:.3f}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
