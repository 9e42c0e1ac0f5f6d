"""Choose the array backend once, at the edge, and move results to the host.

The core math in ``tianref`` receives an array module ``xp`` and calls only
``xp.<function>`` and array methods, so the same lines run on

* ``numpy``  (CPU, the default),
* ``cupy``   (GPU, imported lazily, only when asked for),
* ``tianref.fakexp`` (CI only: NumPy underneath, but it refuses implicit host
  conversion exactly as CuPy does, so a stray ``np.asarray`` in the math fails
  a test instead of silently working on CPU and breaking on GPU).

Data reaches the host through :func:`to_host` alone. :func:`environment_info` and
:func:`git_state` record what ran, for config.json and every stored reference's provenance.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np


class BackendError(RuntimeError):
    """The requested backend cannot be used (message is shown to the user)."""


def get_xp(name: str):
    """Return the array module called ``name`` ('numpy', 'cupy' or 'fake')."""
    if name == "numpy":
        return np
    if name == "fake":
        from tianref import fakexp
        return fakexp
    if name == "cupy":
        try:
            import cupy  # lazy: never imported unless requested
        except Exception as exc:  # ImportError, or a broken CUDA install
            raise BackendError(
                "--xp cupy needs CuPy and a CUDA GPU: install the extra with "
                "`pip install -e .[gpu]` (cupy-cuda12x) on a machine with a GPU "
                f"({type(exc).__name__}: {exc})") from None
        try:
            n = cupy.cuda.runtime.getDeviceCount()
            if n < 1:
                raise RuntimeError("no CUDA device found")
            cupy.zeros(1).sum().item()  # first allocation fails without a working device
        except Exception as exc:
            raise BackendError(
                "--xp cupy: CuPy is installed but no usable GPU was found "
                f"({type(exc).__name__}: {exc}); use --xp numpy") from None
        return cupy
    raise BackendError(f"unknown backend {name!r}; choose numpy or cupy")


def special(xp):
    """scipy.special for the backend (erf for GELU): scipy, cupyx.scipy or the fake's wrapper."""
    name = xp_name(xp)
    if name == "cupy":
        import cupyx.scipy.special as sp
        return sp
    if name == "fake":
        return xp.special
    import scipy.special as sp
    return sp


def scipy_linalg(xp):
    """scipy.linalg for the backend (solve_triangular for the ridge solve)."""
    name = xp_name(xp)
    if name == "cupy":
        import cupyx.scipy.linalg as la
        return la
    if name == "fake":
        return xp.scipy_linalg
    import scipy.linalg as la
    return la


ROW_ALIGN = 64    # bytes between the rows stacked_dot hands to BLAS: a multiple of every SIMD width (AVX-512: 64)


def stacked_dot(xp, x, y):
    """Inner products of two stacks of vectors along their last axis, (..., N) x (..., N) -> (...):
    a stacked (1, N) by (N, 1) product, one call on any backend; NumPy computes it slice by slice with
    the BLAS dot that one run's 1-D x @ y calls, so each value has the bits of the S = 1 call.

    Row s of a packed (S, N) stack starts s N itemsize bytes after the first, so with N odd (float64)
    every other row sits 8 bytes off the 16-byte alignment a fresh array has; OpenBLAS's SSE2 ddot
    (the Prescott kernels of a DYNAMIC_ARCH build: OPENBLAS_CORETYPE=Prescott, or a CPU it does not
    recognise) sums such a row in another order, and that run's value differed from its unbatched
    run's in the last bits (the edge split's pwd2 and pcross, N = the window's rows). The rows are
    therefore handed over ROW_ALIGN bytes apart (``_aligned_rows``), each starting as aligned as the
    stack's first: the same address class as one run's vector on every kernel whose sum depends on
    alignment only up to the allocator's 16 bytes (all five kernel sets of NumPy's OpenBLAS)."""
    xa = _aligned_rows(xp, x)
    return (xa[..., None, :] @ (xa if y is x else _aligned_rows(xp, y))[..., :, None])[..., 0, 0]


def _aligned_rows(xp, x):
    """x (..., N) with its rows a multiple of ROW_ALIGN bytes apart: x itself when they are (or when x
    is 1-D; a (1, N) stack is copied like any other), else views (..., :N) of a zero-padded copy; the
    values are x's."""
    n, step = x.shape[-1], ROW_ALIGN // x.itemsize
    if x.ndim < 2 or (n % step == 0 and x.flags.c_contiguous):
        return x
    buf = xp.zeros(x.shape[:-1] + (-(-n // step) * step,), dtype=x.dtype)   # (..., N rounded up to step)
    buf[..., :n] = x
    return buf[..., :n]


RING_BLOCK_BYTES = 1 << 20    # bytes of a ring per block in ring_products: 1 MiB, in a core's L2


def ring_products(xp, ring, vecs):
    """ring (..., w, P) times c vectors vecs (..., c, P): (..., w, c) float64, every row of the ring
    against every vector, from one pass over the ring.

    On the host the pass goes by blocks of columns of about RING_BLOCK_BYTES of the ring, each a
    (w, b) x (b, c) product in the ring's dtype added to a float64 sum: a (w, P) x (P, c) product in one
    call packs the whole ring first and reads it about twice (measured at w = 20, P = 290816, c = 2, float64:
    3.5 ms against 1.7 ms for one (w, P) x (P,) pass; by blocks 1.9 ms). The block width depends only
    on w and the dtype, so every run of a configuration (and each run of a stack, slice by slice) sums
    in the same order. A device takes the product in one call."""
    if xp_name(xp) == "cupy":
        return (ring @ vecs.swapaxes(-1, -2)).astype(xp.float64)
    w, P = ring.shape[-2:]
    b = max(64, RING_BLOCK_BYTES // (w * ring.itemsize) // 64 * 64)
    acc = xp.zeros(ring.shape[:-1] + vecs.shape[-2:-1], dtype=xp.float64)   # (..., w, c)
    for s in range(0, P, b):
        acc += ring[..., s:s + b] @ vecs[..., s:s + b].swapaxes(-1, -2)
    return acc


def xp_name(xp) -> str:
    return {"numpy": "numpy", "cupy": "cupy", "tianref.fakexp": "fake"}.get(xp.__name__, xp.__name__)


def to_host(x):
    """The one door from device to host: array (or 0-d array) -> numpy.ndarray."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get"):           # cupy.ndarray and fakexp.FakeArray
        return x.get()
    return np.asarray(x)            # Python scalars, lists of floats


def cpu_model() -> str:
    """The host CPU's model name (Linux: /proc/cpuinfo's first 'model name'; else platform.processor())."""
    import platform
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_info(xp) -> dict:
    """Versions and settings recorded in every run's config.json."""
    import platform
    import sys

    import scipy

    from tianref import threads
    info = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
        "backend": xp_name(xp),
        "blas_threads": threads.current(),        # of this process's host BLAS (train --threads)
        "blas": threads.kernels(),                # e.g. ['openblas 0.3.31 SkylakeX']: the kernel set rounds
        "cpu": cpu_model(),
    }
    from importlib import metadata
    for pkg in ("click", "tianref"):
        try:
            info[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # pragma: no cover
            info[pkg] = None
    if xp_name(xp) == "cupy":
        info["cupy"] = xp.__version__
        try:
            props = xp.cuda.runtime.getDeviceProperties(0)
            info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        except Exception:  # pragma: no cover
            pass
        for var in ("CUPY_TF32", "NVIDIA_TF32_OVERRIDE"):
            info[var] = os.environ.get(var)
    return info


REPO = Path(__file__).resolve().parents[1]


def git_state(root=REPO):
    """{'commit', 'dirty'} of the source checkout, read-only; None where git is unavailable or
    ``root`` is not the top of a checkout (an installed copy in site-packages, which may lie inside
    some other repository whose commit is not this code's).

    Recorded in config.json and in the provenance of every stored reference file.
    """
    try:
        kw = {"cwd": root, "capture_output": True, "text": True, "timeout": 10, "check": False}
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], **kw)
        if top.returncode or Path(top.stdout.strip()).resolve() != Path(root).resolve():
            return None
        head = subprocess.run(["git", "rev-parse", "HEAD"], **kw)
        st = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **kw)
        if head.returncode or st.returncode:
            return None
        return {"commit": head.stdout.strip(), "dirty": bool(st.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def git_state_apart_from(folders, root=REPO):
    """git_state, where changes inside ``folders`` (outputs this command neither reads nor writes: the other
    scale's stored sections, re-rendered a moment ago) do not make the checkout dirty; such a state says so
    (``outputs_modified``, the folders that differ). Any other change (code, published.json, the stored
    sections this command reads) keeps it dirty."""
    state = git_state(root)
    if not state or not state["dirty"]:
        return state
    try:
        top = Path(root).resolve()
        rels = [Path(f).resolve().relative_to(top).as_posix().rstrip("/") + "/" for f in folders]
        st = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "-z"], cwd=root,
                            capture_output=True, text=True, timeout=10, check=False)
    except (ValueError, OSError, subprocess.SubprocessError):
        return state
    if st.returncode:
        return state
    paths = [e[3:] for e in st.stdout.split("\0") if len(e) > 3]
    hit = sorted({r.rstrip("/") for p in paths for r in rels if p.startswith(r)})
    if paths and all(any(p.startswith(r) for r in rels) for p in paths):
        return {"commit": state["commit"], "dirty": False, "outputs_modified": ", ".join(hit)}
    return state
