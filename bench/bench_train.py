"""Time tianref's training loop against the paper code's loop in PyTorch, in the same process.

    python bench/bench_train.py                  # M=71, K=2048, n=2016, 100 epochs, float32
    python bench/bench_train.py --epochs 200 --no-torch

Four timed runs, each after its own short warm-up run (first-call costs: BLAS thread start-up,
allocator growth, torch's lazy initialisation), interleaved so that slow drift of a shared
machine hits both sides alike:

    ours  --metrics full   vs  torch paper loop, full metrics (K x K F~^T F~, n x n F F^T, ...)
    ours  --metrics core   vs  torch paper loop without those two Gram metrics

Both sides compute every per-epoch quantity the paper's code logs (bench/torch_paper_loop.py lists
them), start from the same initial state and write no files. torch uses as many threads as NumPy's
BLAS (torch.set_num_threads), so the comparison is between implementations, not thread counts.

It prints seconds, seconds per epoch, the ratios ours/torch (the project's targets: full <= 0.4,
core <= 0.5), the GFLOP/s of a float32 GEMM at an epoch's own shapes (target: the core epoch reaches
at least half of it), and our time against the FLOP floor of training plus test evaluation,
2 K M (3 n_train + n_test) ~ 2.64 GFLOP per epoch at the paper's size (forward, the two backward
products, test forward; the one-hot products are gathers and cost no FLOPs). If torch is not
importable it says so and times tianref only.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from tianref import train  # noqa: E402
from tianref.config import TrainConfig, validate  # noqa: E402

TARGETS = {"full": 0.4, "core": 0.5}


def numpy_threads():
    """The thread count NumPy's BLAS uses, and how we know it."""
    try:
        from threadpoolctl import threadpool_info
        n = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
        if n:
            return max(n), "threadpoolctl"
    except ImportError:
        pass
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var]), var
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return n, "usable CPUs (OpenBLAS's default)"


def floor_gflop(M, K, n_train):
    """FLOPs per epoch that no implementation can avoid: train forward + 2 backward products + test forward."""
    n_test = M * M - n_train
    return 2.0 * K * M * (3 * n_train + n_test) / 1e9


def gemm_gflops(M, K, n_train, reps=7):
    """The float32 GEMM rate of this machine at an epoch's own shapes, best of ``reps``: the training
    forward F V ((n, K) x (K, M)), the backward products F^T dY ((K, n) x (n, M)) and dY V^T
    ((n, M) x (M, K)), and the test forward, timed together (the same 2 K M (3 n_train + n_test) FLOPs
    as the floor)."""
    rng = np.random.default_rng(0)
    n_test = M * M - n_train
    F, Ft = (rng.standard_normal((m, K), dtype=np.float32) for m in (n_train, n_test))
    V = rng.standard_normal((K, M), dtype=np.float32)
    dY = rng.standard_normal((n_train, M), dtype=np.float32)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        F @ V
        F.T @ dY
        dY @ V.T
        Ft @ V
        best = min(best, time.perf_counter() - t0)
    return floor_gflop(M, K, n_train) / best


def time_ours(cfg, warmup):
    train.run(validate(cfg.replace(epochs=warmup)), np)
    t0 = time.perf_counter()
    _, _, last = train.run(validate(cfg), np)
    return time.perf_counter() - t0, last


def time_torch(torch, loop, cfg, metrics, warmup):
    kw = dict(M=cfg.M, K=cfg.K, n_train=cfg.n_train, seed=cfg.seed, eta=cfg.eta, lr=cfg.lr, act=cfg.act,
              window=cfg.windows[0], metrics=metrics)
    loop.run(torch, epochs=warmup, **kw)
    t0 = time.perf_counter()
    rows = loop.run(torch, epochs=cfg.epochs, **kw)
    return time.perf_counter() - t0, rows[-1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--M", type=int, default=71)
    ap.add_argument("--K", type=int, default=2048)
    ap.add_argument("--n-train", type=int, default=2016)
    ap.add_argument("--epochs", type=int, default=100, help="timed epochs per run (>= 100 for the report)")
    ap.add_argument("--warmup", type=int, default=3, help="epochs of the untimed warm-up run before each timing")
    ap.add_argument("--act", default="sqr", choices=["sqr", "relu"])
    ap.add_argument("--no-torch", action="store_true", help="time tianref only")
    ap.add_argument("--json", metavar="PATH", help="also write the results to PATH")
    ap.add_argument("--default-malloc", action="store_true",
                    help="keep glibc's default malloc thresholds (the CLI raises them; tianref/allocator.py)")
    args = ap.parse_args(argv)
    if not 0 < args.n_train < args.M * args.M:
        ap.error(f"--n-train {args.n_train} must lie in [1, M^2 - 1] = [1, {args.M * args.M - 1}] (M = {args.M})")
    if not args.default_malloc:             # as the CLI does at start (both sides of the comparison benefit)
        from tianref.allocator import keep_freed_blocks
        print(f"allocator: freed large blocks kept for reuse: {keep_freed_blocks()}", flush=True)

    base = TrainConfig(M=args.M, K=args.K, n_train=args.n_train, epochs=args.epochs, act=args.act,
                       dtype="float32", windows=(20,))
    threads, source = numpy_threads()
    torch = loop = None
    if not args.no_torch:
        try:
            import torch
            import torch_paper_loop as loop
            torch.set_num_threads(threads)
        except ImportError as exc:
            print(f"torch is not importable ({exc}); timing tianref only. "
                  "Install the baseline with: pip install torch==2.13.0", flush=True)
            torch = None
    floor = floor_gflop(args.M, args.K, args.n_train)
    print(f"M={args.M} K={args.K} n_train={args.n_train} epochs={args.epochs} (+{args.warmup} warm-up) "
          f"float32 act={args.act}", flush=True)
    print(f"threads: numpy {threads} ({source})"
          + (f", torch.set_num_threads({threads}) -> {torch.get_num_threads()}" if torch else ""), flush=True)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible; "
          f"numpy {np.__version__}" + (f", torch {torch.__version__}" if torch else ""), flush=True)

    res = {"config": {"M": args.M, "K": args.K, "n_train": args.n_train, "epochs": args.epochs,
                      "warmup": args.warmup, "act": args.act, "dtype": "float32", "threads": threads},
           "floor_gflop_per_epoch": floor}
    gemm = gemm_gflops(args.M, args.K, args.n_train)
    res["gemm_gflops"] = gemm
    print(f"float32 GEMM at an epoch's shapes: {gemm:.1f} GFLOP/s (best of 7; target: the core epoch "
          f">= half of it)", flush=True)
    for metrics in ("full", "core"):
        cfg = base.replace(metrics=metrics)
        t, last = time_ours(cfg, args.warmup)
        res[f"ours_{metrics}_s"] = t
        rate = floor / (t / args.epochs)
        res[f"ours_{metrics}_gflops"] = rate
        print(f"ours  {metrics:4s}: {t:8.2f} s  {t / args.epochs:7.4f} s/epoch  "
              f"{rate:6.1f} GFLOP/s against the {floor:.2f} GFLOP/epoch floor = {rate / gemm:.2f} of the GEMM",
              flush=True)
        if torch:
            tt, tlast = time_torch(torch, loop, cfg, metrics, args.warmup)
            res[f"torch_{metrics}_s"] = tt
            res[f"ratio_{metrics}"] = t / tt
            print(f"torch {metrics:4s}: {tt:8.2f} s  {tt / args.epochs:7.4f} s/epoch", flush=True)
            ok = "meets" if t / tt <= TARGETS[metrics] else "MISSES"
            print(f"ratio {metrics:4s}: ours/torch = {t / tt:.3f}  ({ok} the target <= {TARGETS[metrics]})",
                  flush=True)
            # both sides did the same work: the final rows agree to float32 trajectory precision
            for key in ("train_loss", "test_acc", "rho_tian", "W_gap23"):
                if key in last and key in tlast:
                    print(f"    final {key}: ours {last[key]:.6g}  torch {tlast[key]:.6g}", flush=True)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from provenance import emit, provenance                              # bench/provenance.py
    res["provenance"] = provenance(sys.argv)
    emit(res, args.json)


if __name__ == "__main__":
    main()
