"""The BLAS/OpenMP thread pools of this process: how many threads a training process uses.

    VARS       the environment variables that set a BLAS's thread count when it loads
    DEFAULT    1: the thread count when neither --threads nor a variable says otherwise
    resolve    --threads N, else from_env, else DEFAULT
    MAX        2^31 - 1: the largest count, the C int the BLAS and OpenMP calls take (--threads' bound)
    from_env   the first of VARS set to an integer in [1, MAX] (OpenBLAS's order), or None
    limits     a context manager that sets every loaded BLAS and OpenMP pool to that many threads
    current    the largest thread count among the loaded BLAS pools (recorded in config.json)
    child_env  the environment of a child process that should use N threads
    REPLAY_HELP  --threads of edge and thm6, which replay a run: by default the run's own count (of_run,
               for_replay), so that the replay is bit for bit (a BLAS's sums depend on its thread count)

Why in-process: NumPy's BLAS is loaded (and has read the variables) before the command line is
parsed, so setting ``OPENBLAS_NUM_THREADS`` from inside ``train`` would be too late. threadpoolctl
(the library scikit-learn uses for this) finds every loaded pool by its exported symbols and sets it
at run time: NumPy's bundled OpenBLAS and SciPy's separate copy (two pools in a pip install), MKL,
OpenMP. It only sees libraries that are already loaded, so ``limits`` loads ``scipy.linalg`` (the
ridge solve's Cholesky) first. With ``--xp cupy`` only the host's BLAS is affected; the GPU is not.

Why DEFAULT is 1: the quick run of the README on the shared 2-core development VM (AMD EPYC, load
average 4-7 from other work) took 6-21 s with one BLAS thread and 10-125 s with two, in six pairs
interleaved in one session, never faster and up to 11x slower (OpenBLAS's threads spin-wait when the
cores are oversubscribed); a second thread can at best halve a run on an idle machine. Raise it with
``--threads`` on an idle many-core machine.
"""
from __future__ import annotations

import json
import os

from tianref.errors import InputError
from tianref.numtext import parse_int

VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
DEFAULT = 1
# openblas_set_num_threads, omp_set_num_threads and MKL's take a C int: a larger count made ctypes raise
# (a traceback, exit 1) or wrapped around (2^32 reached OpenBLAS as 0, its own default)
MAX = 2 ** 31 - 1
DEFAULT_TEXT = f"{DEFAULT}, or OPENBLAS/MKL/OMP_NUM_THREADS when set"
REPLAY_DEFAULT_TEXT = f"the run's own; else {DEFAULT_TEXT}"
# --threads of the commands that replay a run (edge, thm6): a float32 GEMM's sums depend on the BLAS's
# thread count, so a replay equals the run bit for bit only at the count the run was trained with
REPLAY_HELP = ("BLAS/OpenMP threads of this process. A replayed run equals the trained one bit for bit "
               "only with the thread count train used, so the default is the run's own (config.json "
               "versions.blas_threads, when every session of the run used one count).")


def of_run(run_dir) -> int | None:
    """The BLAS thread count a run was trained with (config.json: versions.blas_threads and each resume's
    blas_threads), when every session used the same one; None otherwise or when it is not recorded."""
    try:
        with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as f:
            meta = json.load(f)
        counts = {meta["versions"]["blas_threads"]} | {r.get("blas_threads") for r in meta.get("resumed") or []}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    n = counts.pop() if len(counts) == 1 else None
    return n if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX else None


def for_replay(threads: int | None, run_dir) -> int | None:
    """--threads of a command that replays the run in ``run_dir``: as given, else the run's own (of_run),
    else None (resolve's default)."""
    return threads if threads is not None else (of_run(run_dir) if run_dir is not None else None)


def from_env(env=None) -> int | None:
    """The first of VARS set to an integer in [1, MAX] (ASCII digits, tianref/numtext.py), or None."""
    env = os.environ if env is None else env
    for var in VARS:
        try:
            n = parse_int(env.get(var, ""))
        except ValueError:
            continue
        if 1 <= n <= MAX:
            return n
    return None


def resolve(threads: int | None, env=None) -> int:
    """The thread count a process uses: ``threads`` if given, else the environment's, else DEFAULT."""
    if threads is not None:
        return int(threads)
    n = from_env(env)
    return DEFAULT if n is None else n


def _threadpoolctl():
    try:
        import threadpoolctl
    except ImportError:
        raise InputError("setting the BLAS thread count needs threadpoolctl, a dependency of tianref: "
                         "pip install threadpoolctl (or pip install -e . again)") from None
    return threadpoolctl


def limits(threads: int | None):
    """Context manager: every loaded BLAS and OpenMP pool at ``resolve(threads)`` threads while it is
    open (the previous counts are restored on exit)."""
    tp = _threadpoolctl()
    import numpy  # noqa: F401  (its BLAS)
    import scipy.linalg  # noqa: F401  (SciPy's own BLAS: load it now so that it is limited too)
    return tp.threadpool_limits(limits=resolve(threads))


def kernels() -> list[str]:
    """The loaded BLAS libraries and the kernel set each uses, as 'openblas 0.3.31 SkylakeX' (threadpoolctl's
    internal_api, version and architecture): the float32 rounding of a product depends on the kernel set,
    so a stored number records it ([] without threadpoolctl)."""
    try:
        import threadpoolctl
    except ImportError:
        return []
    return sorted({" ".join(str(i[k]) for k in ("internal_api", "version", "architecture") if i.get(k))
                   for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"})


def current() -> int | None:
    """The largest thread count among the loaded BLAS pools (None without threadpoolctl or a BLAS)."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    n = [int(i["num_threads"]) for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    return max(n) if n else None


def child_env(threads: int, env=None) -> dict:
    """A copy of the environment in which every variable of VARS is ``threads``."""
    out = dict(os.environ if env is None else env)
    for var in VARS:
        out[var] = str(int(threads))
    return out
