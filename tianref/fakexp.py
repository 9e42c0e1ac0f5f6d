"""A strict fake GPU backend for CI: NumPy underneath, CuPy's rules on top.

There is no GPU in CI, yet the one code path must run on CuPy. CuPy refuses
implicit device->host conversion (``np.asarray(cupy_array)`` raises
``TypeError: Implicit conversion to a NumPy array is not allowed``) and refuses
to mix host ``numpy.ndarray`` operands into device arithmetic. This module
mimics both rules:

* ``FakeArray`` wraps an ``ndarray``. Its ``__array__`` raises CuPy's
  TypeError, so ``np.asarray(x)``/``np.mean(x)`` on a device array fails.
* Arithmetic between a ``FakeArray`` and a non-scalar host ``ndarray`` raises.
* ``x.get()``, ``fakexp.asnumpy(x)``, ``float(x)`` and ``x.item()`` are the
  explicit transfers CuPy allows.
* Every ``fakexp.<name>`` (and ``fakexp.linalg.<name>``, ``fakexp.fft.<name>``,
  ``fakexp.special.<name>``, ``fakexp.scipy_linalg.<name>``: the last two are what
  ``backend.special`` and ``backend.scipy_linalg`` return for it) is the NumPy
  (SciPy) function with arguments unwrapped and results wrapped, so device arrays
  stay device arrays. ``fakexp.asarray(host)`` is the explicit host->device transfer.
* ``ops_count()`` counts the device arrays made so far, a proxy for a GPU's
  kernel launches (bench/bench_ops.py).

Use it with ``--xp fake`` (a choice of every command's --xp) or ``tianref.backend.get_xp('fake')``.
"""
from __future__ import annotations

import numbers

import numpy as _np
from numpy.lib.mixins import NDArrayOperatorsMixin

_MSG = ("Implicit conversion to a NumPy array is not allowed. "
        "Please use `.get()` to construct a NumPy array explicitly.")


_OPS = [0]          # device arrays made so far: one per operation a CuPy call would launch (or view)


class FakeArray(NDArrayOperatorsMixin):
    """A device array that NumPy cannot silently read."""

    __slots__ = ("_a",)

    def __init__(self, a):
        self._a = a
        _OPS[0] += 1

    # --- the refusals -----------------------------------------------------
    def __array__(self, *args, **kwargs):
        raise TypeError(_MSG)

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} called on a device array; use xp.{func.__name__}")

    def __iter__(self):
        raise TypeError("iterating over a device array transfers it element by element; use .get()")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        args = [_unwrap_strict(x) for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(_unwrap_strict(o) for o in kwargs["out"])
        return _wrap(getattr(ufunc, method)(*args, **kwargs))

    # --- the explicit transfers CuPy allows --------------------------------
    def get(self):
        return _np.array(self._a, copy=True)

    def item(self):
        return self._a.item()

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __bool__(self):
        return bool(self._a)

    def __index__(self):
        return self._a.__index__()

    # --- array behaviour ---------------------------------------------------
    def __len__(self):
        return len(self._a)

    def __getitem__(self, key):
        return _wrap(self._a[_unwrap_key(key)])

    def __setitem__(self, key, value):
        self._a[_unwrap_key(key)] = _unwrap_strict(value)

    def __repr__(self):
        return f"FakeArray({self._a!r})"

    @property
    def T(self):
        return FakeArray(self._a.T)

    def __getattr__(self, name):
        if name.startswith("__array"):       # __array_interface__/__array_struct__ would let NumPy
            raise AttributeError(name)       # read the host buffer behind __array__'s back
        attr = getattr(self._a, name)
        if callable(attr):
            def method(*args, **kwargs):
                return _wrap(attr(*[_unwrap_strict(a) for a in args],
                                  **{k: _unwrap_strict(v) for k, v in kwargs.items()}))
            return method
        return _wrap(attr)


def ops_count() -> int:
    """How many device arrays this backend has made (results of functions, operators, methods and
    indexing, and host -> device transfers): a count of backend operations, the proxy
    bench/bench_ops.py uses for a GPU's kernel launches and the Python overhead each one costs."""
    return _OPS[0]


def _wrap(x):
    if isinstance(x, _np.ndarray):
        return FakeArray(x)
    if isinstance(x, tuple):
        return tuple(_wrap(e) for e in x)
    if isinstance(x, list):
        return [_wrap(e) for e in x]
    if isinstance(x, _np.generic):        # numpy scalar from a reduction: a 0-d device array in CuPy
        return FakeArray(_np.asarray(x))
    return x


def _unwrap_strict(x):
    """Operand of device math: device arrays and Python scalars only."""
    if isinstance(x, FakeArray):
        return x._a
    if isinstance(x, _np.ndarray) and x.ndim > 0:
        raise TypeError("Unsupported type <class 'numpy.ndarray'>: a host array was mixed "
                        "into device math (move it with xp.asarray first)")
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap_strict(e) for e in x)
    return x


def _unwrap_key(key):
    if isinstance(key, tuple):
        return tuple(_unwrap_key(k) for k in key)
    if isinstance(key, FakeArray):
        return key._a
    if isinstance(key, _np.ndarray) and key.ndim > 0:
        raise TypeError("indexing a device array with a host array; move the index with xp.asarray")
    return key


def _wrap_function(fn):
    def wrapped(*args, **kwargs):
        return _wrap(fn(*[_unwrap_strict(a) for a in args],
                        **{k: _unwrap_strict(v) for k, v in kwargs.items()}))
    wrapped.__name__ = getattr(fn, "__name__", "fn")
    return wrapped


# --- host -> device: the only functions that accept host arrays ---------------
def asarray(a, dtype=None):
    if isinstance(a, FakeArray):
        return FakeArray(a._a.astype(dtype, copy=False)) if dtype is not None else a
    return FakeArray(_np.array(a, dtype=dtype, copy=True))


def array(a, dtype=None, copy=True):
    return asarray(a, dtype=dtype) if not isinstance(a, FakeArray) else FakeArray(_np.array(a._a, dtype=dtype, copy=True))


def asnumpy(a):
    return a.get() if isinstance(a, FakeArray) else _np.asarray(a)


class _StrictUfunc:
    """xp.exp(host_array) raises in CuPy; so does this."""

    def __init__(self, uf):
        self._uf = uf

    def __call__(self, *args, **kwargs):
        return _wrap(self._uf(*[_unwrap_strict(a) for a in args],
                              **{k: _unwrap_strict(v) for k, v in kwargs.items()}))

    def __getattr__(self, name):             # .reduce, .accumulate, ...
        return _wrap_function(getattr(self._uf, name))


class _Linalg:
    def __getattr__(self, name):
        return _wrap_function(getattr(_np.linalg, name))

    LinAlgError = _np.linalg.LinAlgError


class _Wrapped:
    """A host module whose functions take and return device arrays (scipy.special, scipy.linalg)."""

    def __init__(self, modname):
        self._modname = modname

    def __getattr__(self, name):
        import importlib
        return _wrap_function(getattr(importlib.import_module(self._modname), name))


class _Fft:
    def __getattr__(self, name):
        return _wrap_function(getattr(_np.fft, name))


linalg = _Linalg()
fft = _Fft()
special = _Wrapped("scipy.special")
scipy_linalg = _Wrapped("scipy.linalg")
ndarray = FakeArray


def __getattr__(name):
    obj = getattr(_np, name)
    if isinstance(obj, type) or isinstance(obj, numbers.Number) or isinstance(obj, _np.dtype):
        return obj                           # dtypes (xp.float32), constants (xp.pi), classes
    if isinstance(obj, _np.ufunc):
        return _StrictUfunc(obj)
    if callable(obj):
        return _wrap_function(obj)
    return obj
