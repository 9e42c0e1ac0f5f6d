"""Cost of the per-row Fourier and energy diagnostics, as a ratio to one training step, same process.

    python bench/bench_fourier.py                 # M=71, K=2048, n=2016, float32 (the paper's size)
    python bench/bench_fourier.py --act gelu      # a non-homogeneous sigma: one extra hidden pass

Times, interleaved over --repeats rounds (median of each):
    step     train.step: forward reuse off, i.e. forward + backward + Adam + the spectra update
    row      train.evaluate with --metrics full (everything a row logs, the Fourier part included)
    fourier  fourier.row_metrics alone (FFT of W, coverage, purity, energies from the row's F)
and prints fourier/step and fourier/row.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tianref import fourier, model, train  # noqa: E402
from tianref.config import TrainConfig, validate  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--M", type=int, default=71)
    ap.add_argument("--K", type=int, default=2048)
    ap.add_argument("--n-train", type=int, default=2016)
    ap.add_argument("--act", default="sqr")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    cfg = validate(TrainConfig(M=args.M, K=args.K, n_train=args.n_train, act=args.act, epochs=1))
    problem, state = train.setup(cfg, np)
    state = train.step(np, cfg, state, problem)                  # warm-up, and a non-trivial W
    _, cache = model.forward(np, state.params, problem.train, cfg.act)
    times = {"step": [], "row": [], "fourier": []}
    for _ in range(args.repeats):
        t = time.perf_counter()
        train.step(np, cfg, state, problem)
        times["step"].append(time.perf_counter() - t)
        t = time.perf_counter()
        train.evaluate(np, cfg, state, problem)
        times["row"].append(time.perf_counter() - t)
        t = time.perf_counter()
        fourier.row_metrics(np, state.params["W"], problem.train, cfg.act, cache[1])
        times["fourier"].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) for k, v in times.items()}
    out = {"M": args.M, "K": args.K, "n_train": args.n_train, "act": args.act, "repeats": args.repeats,
           "seconds_median": med, "fourier_over_step": med["fourier"] / med["step"],
           "fourier_over_row": med["fourier"] / med["row"],
           "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    print(f"step {med['step'] * 1e3:.1f} ms   row {med['row'] * 1e3:.1f} ms   fourier {med['fourier'] * 1e3:.1f} ms"
          f"   fourier/step {out['fourier_over_step']:.3f}   fourier/row {out['fourier_over_row']:.3f}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
