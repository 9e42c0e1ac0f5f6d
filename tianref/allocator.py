"""The host allocator: keep freed large arrays for reuse instead of returning them to the kernel.

A training epoch allocates and frees the same large host arrays every step (H, F and dL/dH are n x K
float32, 16.5 MB at the paper's size). glibc's malloc serves blocks above its mmap threshold (128 KiB at
start, raised dynamically) with a fresh mmap and unmaps them on free, so every epoch pays the page faults
of first-touching them again. ``keep_freed_blocks`` raises the mmap threshold to glibc's maximum (32 MiB
on 64-bit) and the trim threshold to 1 GiB: such blocks then come from the heap and are reused, the way
PyTorch's caching allocator reuses its buffers. The peak memory of a run is unchanged; freed memory is
returned to the kernel later (above 1 GiB of free heap, or at exit).

Measured with ``bench/bench_train.py --no-torch`` (M = 71, K = 2048, core metrics, one BLAS thread, the
shared 2-core VM, three alternating pairs): 0.127-0.134 s per core epoch with glibc's defaults against
0.098-0.111 s with these settings (the same as MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ in the
environment). Only the speed changes: the arrays and every number computed from them are the same.

A no-op where the C library is not glibc (``mallopt`` absent); the CLI calls it once at start.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1           # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20       # glibc's largest allowed mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD = 1 << 30


def keep_freed_blocks() -> bool:
    """Set the two glibc thresholds; True when both were accepted, False where there is no glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
