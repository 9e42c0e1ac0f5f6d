"""What the float32 Gram costs: the training loop with --gram-dtype float64 (the default), with
--log-grams float32 (float64 and the paper's float32 Gram side by side), with --log-grams
float32,float32-seq (what ``reproduce`` logs) and with --gram-dtype float32, timed in the same
process and interleaved.

    python bench/bench_gram.py                          # M=71, K=2048, 30 epochs, windows 20
    python bench/bench_gram.py --windows 20,5,10,30     # the window section's runs
    python bench/bench_gram.py --epochs 10 --M 31 --K 512   # a quick look

Each mode is timed ``--repeats`` times (after one untimed warm-up run of each), in the order
default, shadow, float32, default, shadow, ...; it prints the median seconds per epoch and the
ratios against the default measured in the same run. Each logged mode adds one float32
(w_max x P) @ (P,) product (float32-seq: a running sum over the same products) per parameter and
step, and one float32 eigvalsh per window and row.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tianref import train  # noqa: E402
from tianref.config import TrainConfig, parse_int_list, validate  # noqa: E402

MODES = {"float64 (default)": {}, "float64 + float32": {"log_grams": ("float32",)},
         "float64 + float32 + float32-seq": {"log_grams": ("float32", "float32-seq")},
         "float32": {"gram_dtype": "float32"}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--M", type=int, default=71)
    ap.add_argument("--K", type=int, default=2048)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--windows", default="20")
    ap.add_argument("--metrics", default="full", choices=["full", "core"])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    base = validate(TrainConfig(M=args.M, K=args.K, n_train=round(0.4 * args.M ** 2), epochs=args.epochs,
                                windows=parse_int_list(args.windows, "--windows"), metrics=args.metrics))
    print(f"M={args.M} K={args.K} epochs={args.epochs} windows={args.windows} metrics={args.metrics}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, numpy {np.__version__}", flush=True)
    for kw in MODES.values():                                         # warm-up, untimed
        train.run(validate(base.replace(epochs=2, **kw)), np)
    times = {m: [] for m in MODES}
    for _ in range(args.repeats):
        for m, kw in MODES.items():
            t0 = time.perf_counter()
            train.run(validate(base.replace(**kw)), np)
            times[m].append((time.perf_counter() - t0) / args.epochs)
    ref = float(np.median(times["float64 (default)"]))
    ref_min = float(np.min(times["float64 (default)"]))
    res = {}
    for m, ts in times.items():
        med, lo = float(np.median(ts)), float(np.min(ts))
        res[m] = {"s_per_epoch": med, "ratio": med / ref, "min_s_per_epoch": lo, "ratio_min": lo / ref_min,
                  "all": ts}
        print(f"{m:32s} median {med:7.4f} s/epoch, ratio {med / ref:.3f};  fastest {lo:7.4f}, ratio "
              f"{lo / ref_min:.3f}  (runs: {', '.join(f'{t:.4f}' for t in ts)})", flush=True)
    print("On a shared machine trust the fastest-run ratio more (it is the least disturbed).", flush=True)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
