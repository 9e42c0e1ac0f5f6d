"""How much memory a run needs, against how much the machine has: refuse before allocating.

A run's arrays are fixed by its config (tianref/train.py ``setup``, ``step``, ``evaluate``), so their
size is known before anything is allocated. ``estimate_bytes`` adds them up; ``check_fits`` compares
the sum with the memory this machine has available and raises InputError ("needs about X GiB, this
machine has Y GiB available") instead of a MemoryError traceback minutes into the run.

Symbols
    M, K     modulus, hidden width;  N = M^2 pairs, n = n_train, n_te = N - n
    P        = 2MK + KM = 3MK        parameters (W and V), flattened
    w        = max(windows)          slots of the rolling-update rings
    b        bytes of the training dtype (4 float32, 8 float64)
    g_m      bytes of Gram mode m (8 float64, 4 float32 / float32-seq)

What is counted (each term is a named entry of ``breakdown``):
    params      W, V and the next step's copies               2 P b
    optimizer   Adam m, v, m^wd, their next values and the     7 P b (an upper bound for sgd, muon)
                step's live temporaries (g, m / denom, ...)
    rings       per Gram mode m: the (w, P) update ring and    sum_m (w P g_m + 2 w^2 g_m)
                two (w, w) Grams; the Delta^wd ring and the    + w P b + 4 w^2 8
                cross-Grams C, H of W and V (edge.py)
                (float32-seq: its (w, P) product and sum)      (+ 2 w P 4)
    deltas      the update of the widest mode (spectra.delta)  2 P g_max
                and its cast
    data        host split and weights (data.init_host: the    16 N + 8 P
                permutation, float64 W0, V0), the pairs table  + 32 N
                (data.pairs) and both device batches with      + 48 N
                their segment tables (a, b, y, seg_a/b/y)
    activations the forward of both sets, H and F (n, K) and   (2 N + n) K b
                (n_te, K), the backward's dL/dH, sigma'(H)     max with 5 n K b
                and its segment gather; Yhat of both sets,     + N M b
                the targets and the residual (n, M) float64    + 4 n M 8
    gram_KxK    --metrics full: C = F~^T F~ (K, K) in b and    16 K^2 (two float64 K x K at most:
                the float64 blocks its sums pass over;         b K^2 plus the blocks, metrics._gram_sums)
                the clocks' small-side Gram of W and the       + 8 (min(2M, K)^2 + 4 M K)
                float64 copy of W

tests/test_reliability_numbers.py measures the peak traced allocation (tracemalloc, which NumPy reports its
buffers to) of small runs in which each term dominates in turn and checks the estimate is within a
factor of 2 of it, never below 0.8 of it.
"""
from __future__ import annotations

import os

from tianref.errors import InputError

GIB = 2.0 ** 30
LABELS = {"params": "W and V", "optimizer": "the optimizer state", "rings": "the rolling-update rings (windows)",
          "deltas": "the updates", "data": "the data", "activations": "the forward activations",
          "gram_KxK": "the K x K feature Gram (--metrics full)"}


def breakdown(cfg) -> dict:
    """{term: bytes} of a run of ``cfg`` (module docstring); plain Python ints, no allocation."""
    M, K, n = int(cfg.M), int(cfg.K), int(cfg.n_train)
    N = M * M
    P = 3 * M * K
    w = max(int(x) for x in cfg.windows)
    b = 8 if cfg.dtype == "float64" else 4
    modes = (cfg.gram_dtype, *cfg.log_grams)
    g = [8 if m == "float64" else 4 for m in modes]
    act = max((2 * N + n) * K * b, 5 * n * K * b) + N * M * b + 4 * n * M * 8
    seq = 2 * w * P * 4 if "float32-seq" in modes else 0      # its (w, P) product and running sum
    out = {
        "params": 2 * P * b,
        "optimizer": 7 * P * b,
        "rings": sum(w * P * gm + 2 * w * w * gm for gm in g) + w * P * b + 4 * w * w * 8 + seq,
        "deltas": 2 * P * max(g),
        "data": 16 * N + 8 * P + 32 * N + 48 * N,
        "activations": act,
        "gram_KxK": (16 * K * K if cfg.metrics == "full" else 0) + 8 * (min(2 * M, K) ** 2 + 4 * M * K),
    }
    return out


def estimate_bytes(cfg) -> int:
    """Bytes a training run of ``cfg`` allocates at its peak, about (module docstring)."""
    return int(sum(breakdown(cfg).values()))


def stacked_bytes(cfg) -> int:
    """Bytes one run of a batch (tianref/batch.py) needs: ``estimate_bytes`` and its rings once more,
    since a stack forms by copying its runs' rings into one array each while their own still exist."""
    return estimate_bytes(cfg) + breakdown(cfg)["rings"]


def available_bytes() -> int | None:
    """Memory this machine can give a new process without swapping: MemAvailable of /proc/meminfo,
    else the free physical pages (os.sysconf); None when neither is known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024          # the kernel reports kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


HEADROOM = 0.8     # the share of the available memory a command plans on: an estimate is 0.89-1.5 x the peak
                   # it was measured against, so at 80 % a peak stays under ~90 %, the rest for the interpreter
                   # and other work


def check_fits(need: int, what: str, available: int | None = None) -> None:
    """InputError when ``need`` bytes exceed HEADROOM of the machine's available memory (``available``,
    default ``available_bytes()``; nothing is checked when it is unknown). Without the headroom an
    estimate just below what was available (the order-1024 cyclic group's decomposition, 21.5 of 22.8 GiB)
    passed and the process was killed by the kernel, without a message."""
    have = available_bytes() if available is None else available
    if have is not None and need > HEADROOM * have:
        raise InputError(f"{what} needs about {_gib(need)} GiB of memory; this machine has {_gib(have)} GiB "
                         f"available, of which a command plans on {HEADROOM:.0%} (the rest is left for the "
                         "interpreter and other work)")


def check_run(cfg, available: int | None = None) -> None:
    """check_fits for a training run (or a replay) of ``cfg``, naming its largest term."""
    parts = breakdown(cfg)
    top = max(parts, key=parts.get)
    check_fits(sum(parts.values()), f"a run of M = {cfg.M}, K = {cfg.K}, windows up to {max(cfg.windows)} "
                                    f"(mostly {LABELS[top]})", available)


def thm6_bytes(n: int, K: int, all_pairs: bool = False, n_top: int = 200) -> int:
    """Bytes Theorem 6 (tianref.thm6.summarize_checkpoint) needs for F~ (n, K), about: its (n, K)
    float64 quantities, the (K, K) ones (B by two routes, the paper's, their differences), the
    (n, pairs) residual routes of the n_top listed pairs, and with ``all_pairs`` the K(K - 1)/2 values
    of each distribution. Measured (tracemalloc, 2-core CPU machine) at K = 60..1200, n = 67..1000, top
    and all pairs: this is 0.95-1.5 x the peak."""
    pairs = min(n_top, K * (K - 1) // 2)
    return int(8 * (5 * n * K + 7.5 * K * K + 8 * n * pairs + (5 * K * K if all_pairs else 0)))


def _gib(x: int) -> str:
    v = x / GIB
    return f"{v:.3g}" if v < 1e6 else f"{v:.2e}"
