"""Time a sweep batched (one stacked train-batch process) against the same sweep unbatched, side by side.

    python bench/bench_batch.py                         # the quick configuration, 8 seeds x 400 epochs
    python bench/bench_batch.py --epochs 100 --repeats 1
    python bench/bench_batch.py --xp cupy --M 71 --K 2048 --train-frac 0.4 --eta 2e-4,0 --seeds 0-14 \\
        --batch-jobs 1 --jobs 8                         # the headline sweep on a GPU (device_check.sh)

Both sides are the real command, ``python cli.py sweep ROOT ...`` into a fresh folder, timed from the
outside (process start-up, imports, every file written, included):

    batched    sweep --batch --jobs B  (B = --batch-jobs, default 1: the seeds of a condition in one
               process, one stacked array)
    unbatched  sweep --jobs J          (J = --jobs, default 2: one train process per run, J at a time)

The two alternate (batched, unbatched, batched, ...) --repeats times so that slow drift of a shared
machine hits both alike; the best of each side is compared. It prints the seconds, runs per second,
the ratio (unbatched seconds / batched seconds: the batched throughput as a multiple of the
unbatched one; the project's CPU target is >= 1.5 on the quick configuration with 8 seeds), and checks
that the two trees hold the same rows (metrics.jsonl byte for byte: expected on a CPU when both sides
use one BLAS thread per part; a GPU or another thread count rounds differently) and the same t0.5 and
t0.99 in every run. The last line is JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from provenance import provenance  # noqa: E402
CLI = os.path.join(os.path.dirname(HERE), "cli.py")
TARGET = 1.5


def sweep(root, args, extra):
    cmd = [sys.executable, CLI, "sweep", root, *args, *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"bench_batch: {' '.join(cmd)} failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    return secs


def same_rows(a, b) -> bool:
    names = sorted(n for n in os.listdir(a) if not n.startswith("_"))
    return bool(names) and all(
        open(os.path.join(a, n, "metrics.jsonl"), "rb").read() == open(os.path.join(b, n, "metrics.jsonl"), "rb").read()
        for n in names)


def events(root) -> dict:
    """{run: (t0.5, t0.99)}: the first epochs with test accuracy >= 0.5 and >= 0.99."""
    out = {}
    for n in sorted(x for x in os.listdir(root) if not x.startswith("_")):
        rows = [json.loads(line) for line in open(os.path.join(root, n, "metrics.jsonl"))]
        first = lambda thr: next((r["epoch"] for r in rows if r.get("test_acc", -1) >= thr), None)  # noqa: E731
        out[n] = (first(0.5), first(0.99))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--M", default="23")
    ap.add_argument("--K", default="512")
    ap.add_argument("--train-frac", default="0.5")
    ap.add_argument("--eta", default="2e-3")
    ap.add_argument("--seeds", default="0-7")
    ap.add_argument("--epochs", type=int, default=400)
    ap.add_argument("--metrics", default="full")
    ap.add_argument("--windows", default=None, help="sweep's --windows (default: train's, 20)")
    ap.add_argument("--xp", default="numpy")
    ap.add_argument("--jobs", type=int, default=2, help="processes of the unbatched sweep")
    ap.add_argument("--batch-jobs", type=int, default=1, help="processes of the batched sweep")
    ap.add_argument("--threads", type=int, default=None,
                    help="--threads of each batched process (default: the CPUs divided by --batch-jobs, so "
                         "both sides use the same cores: on a CPU that many parts of the stack stepped "
                         "by as many threads); the unbatched runs use 1 each")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the numbers to this file")
    a = ap.parse_args(argv)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = a.threads or max(1, cpus // a.batch_jobs)
    common = ["--M", a.M, "--K", a.K, "--train-frac", a.train_frac, "--eta", a.eta, "--seeds", a.seeds,
              "--epochs", str(a.epochs), "--metrics", a.metrics, "--xp", a.xp, "--no-resume-state"]
    if a.windows:
        common += ["--windows", a.windows]
    n_runs = len(a.eta.split(",")) * len(range(*[int(x) + i for i, x in enumerate(a.seeds.split("-"))])) \
        if "-" in a.seeds else len(a.eta.split(",")) * len(a.seeds.split(","))
    print(f"bench_batch: {n_runs} runs of M={a.M} K={a.K} train_frac={a.train_frac} eta={a.eta} x {a.epochs} "
          f"epochs, --metrics {a.metrics}, --xp {a.xp}; {platform.processor() or platform.machine()}, "
          f"{cpus} CPUs, load {os.getloadavg()[0]:.2f}")
    print(f"  batched:   sweep --batch --jobs {a.batch_jobs} --threads {threads}")
    print(f"  unbatched: sweep --jobs {a.jobs} --threads 1")
    work = tempfile.mkdtemp(prefix="bench_batch.")
    best = {"batched": float("inf"), "unbatched": float("inf")}
    same = same_events = True
    try:
        for i in range(a.repeats):
            for side in ("batched", "unbatched"):
                root = os.path.join(work, f"{side}{i}")
                extra = (["--batch", "--jobs", str(a.batch_jobs), "--threads", str(threads)]
                         if side == "batched" else ["--jobs", str(a.jobs), "--threads", "1"])
                s = sweep(root, common, extra)
                best[side] = min(best[side], s)
                print(f"  repeat {i + 1}: {side:9s} {s:7.2f} s  ({n_runs / s:.3f} runs/s)  load {os.getloadavg()[0]:.2f}")
            ra, rb = os.path.join(work, f"batched{i}"), os.path.join(work, f"unbatched{i}")
            same = same and same_rows(ra, rb)
            same_events = same_events and events(ra) == events(rb)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio = best["unbatched"] / best["batched"]
    print(f"best: batched {best['batched']:.2f} s, unbatched {best['unbatched']:.2f} s; "
          f"throughput ratio batched/unbatched = {ratio:.2f} (CPU target >= {TARGET}); "
          f"rows identical: {same}; same t0.5/t0.99 in every run: {same_events}")
    out = {"runs": n_runs, "epochs": a.epochs, "M": a.M, "K": a.K, "metrics": a.metrics, "xp": a.xp,
           "windows": a.windows,
           "batched_s": round(best["batched"], 3), "unbatched_s": round(best["unbatched"], 3),
           "ratio": round(ratio, 3), "rows_identical": same, "events_identical": same_events, "batch_jobs": a.batch_jobs,
           "batch_threads": threads, "unbatched_jobs": a.jobs, "cpus": cpus,
           "provenance": provenance(sys.argv)}
    print(json.dumps(out))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
