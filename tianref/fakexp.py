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

It forwards only what CuPy (13, the version ``pip install -e .[gpu]`` takes: cupy-cuda12x>=13) documents,
so a call that would pass on NumPy and fail or differ on a GPU fails in CI instead:

* Functions, array methods and attributes come from allow-lists (tianref/fakexp_cupy.py: ``FUNCTIONS``,
  ``LINALG``, ``SCIPY_LINALG``, ``SPECIAL``, ``FFT``, ``UFUNCS``, ``METHODS``, ``ATTRIBUTES``), each entry with the parameters of CuPy's
  own signature: another name raises AttributeError, a keyword (or one positional argument too many) CuPy's
  function does not take raises TypeError (``xp.take(..., mode="clip")``: CuPy's take has no ``mode``;
  ``xp.linalg.cholesky(a, upper=True)``: NumPy 2's keyword, not CuPy's). Before adding a name, check it in
  CuPy's documentation. ``LINALG`` and ``SCIPY_LINALG`` also say which functions take only one matrix
  (``linalg.qr``; ``solve_triangular``, whose batches CuPy 12 does not take).
* ``REFUSED`` names functions CuPy has but computes differently: ``median`` and ``quantile`` do not return
  NaN for a slice holding a NaN as NumPy's do (tianref.orderstats gives NumPy's numbers on every backend).
* ``sort``/``argsort`` take ``kind`` None or 'stable' only (CuPy's only sort).
* A 0-d host ``ndarray`` is refused in device math as any host array is (CuPy accepts Python and NumPy
  scalars, not ``numpy.ndarray``).
* Integer-array indices that write one place twice are refused (CuPy's ``__setitem__`` then stores an
  undefined one of the values, NumPy the last).
* A ufunc (operator) or ``where`` whose result dtype depends on the promotion rules is refused: an array of
  one dtype with a 0-d array or NumPy scalar of a wider dtype of the same or a lower kind (float32 array
  times a float64 0-d array) is widened by NumPy 2 (NEP 50) and kept by CuPy 13 (NumPy 1's value-based
  rule); cast one side explicitly. Python scalars are weak under both rules and pass.

Use it with ``--xp fake`` (a choice of every command's --xp) or ``tianref.backend.get_xp('fake')``.
"""
from __future__ import annotations

import importlib
import numbers

import numpy as _np
from numpy.lib.mixins import NDArrayOperatorsMixin

from tianref.fakexp_cupy import (ATTRIBUTES, FFT, FUNCTIONS, LINALG, METHODS, REFUSED, SCIPY_LINALG,  # noqa: F401
                                 SORT_KINDS, SPECIAL, UFUNC_KEYWORDS, UFUNCS)

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
        if method != "__call__":
            raise TypeError(f"{ufunc.__name__}.{method} on a device array: not among the ufunc calls "
                            "fakexp admits (check CuPy supports it first)")
        _check_keywords(ufunc.__name__, UFUNC_KEYWORDS, len(args), kwargs, n_positional=None)
        _check_promotion(ufunc.__name__, args)
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
        key = _unwrap_key(key)
        _check_unique_targets(self._a, key)
        self._a[key] = _unwrap_strict(value)

    def __repr__(self):
        return f"FakeArray({self._a!r})"

    @property
    def T(self):
        return FakeArray(self._a.T)

    def __getattr__(self, name):
        if name.startswith("__array"):       # __array_interface__/__array_struct__ would let NumPy
            raise AttributeError(name)       # read the host buffer behind __array__'s back
        if name in ATTRIBUTES or (name.startswith("__") and name.endswith("__")):
            return _wrap(getattr(self._a, name))
        if name not in METHODS:
            raise AttributeError(f"device array .{name}: not among the cupy.ndarray methods and attributes "
                                 "fakexp admits (tianref/fakexp_cupy.py METHODS, ATTRIBUTES; check CuPy has it first)")
        attr = getattr(self._a, name)
        params = METHODS[name]

        def method(*args, **kwargs):
            _check_keywords(f".{name}", params, len(args), kwargs)
            if name in ("sort", "argsort"):
                _check_sort_kind(name, args[1] if len(args) > 1 else kwargs.get("kind"))
            return _wrap(attr(*[_unwrap_strict(a) for a in args],
                              **{k: _unwrap_strict(v) for k, v in kwargs.items()}))
        return method


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
    """Operand of device math: device arrays and Python or NumPy scalars only (CuPy refuses any
    numpy.ndarray, a 0-d one included: it is not among the scalar types CuPy converts)."""
    if isinstance(x, FakeArray):
        return x._a
    if isinstance(x, _np.ndarray):
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


# --- CuPy's rules that NumPy does not enforce ----------------------------------------------------------------
def _check_keywords(name, params, n_args, kwargs, n_positional=-1):
    """A call of CuPy's ``name`` with parameters ``params``: refuse a keyword it does not take or one positional
    argument too many (n_positional None: any number of positionals, as a ufunc or einsum)."""
    if params and params[0] is None:                    # (None, "**", keywords...): *args then those keywords
        allowed = params[2:] if len(params) > 1 and params[1] == "**" else ()
        n_positional = None
    else:
        allowed = params
        if n_positional == -1:
            n_positional = len(params)
    if n_positional is not None and n_args > n_positional:
        raise TypeError(f"{name}: {n_args} positional arguments; CuPy's takes at most {n_positional} "
                        f"({', '.join(params)})")
    bad = [k for k in kwargs if k not in allowed]
    if bad:
        raise TypeError(f"{name}: CuPy's takes no keyword {', '.join(map(repr, bad))} "
                        f"(its parameters: {', '.join(p for p in params if p not in (None, '**')) or 'none'})")


def _check_sort_kind(name, kind):
    if kind not in SORT_KINDS:
        raise TypeError(f"{name}(kind={kind!r}): CuPy sorts with its one stable algorithm (kind None or 'stable')")


_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def _check_promotion(name, args):
    """Refuse an operation whose result dtype NumPy 2 (NEP 50: 0-d arrays and NumPy scalars are strong) and
    CuPy 13 (NumPy 1's value-based rule: they count by value when their kind is not above the arrays') give
    differently: a 0-d array or NumPy scalar that would widen the arrays' own dtype without being of a higher
    kind. Python scalars are weak under both rules."""
    arrays = [a for a in args if isinstance(a, _np.ndarray) and a.ndim > 0]
    scalars = [a for a in args if isinstance(a, _np.generic) or (isinstance(a, _np.ndarray) and a.ndim == 0)]
    if not arrays or not scalars:
        return
    own = _np.result_type(*[a.dtype for a in arrays])
    for sc in scalars:
        dt = sc.dtype
        if _KIND_RANK.get(dt.kind, 9) <= _KIND_RANK.get(own.kind, 9) and _np.result_type(own, dt) != own:
            raise TypeError(f"{name}: a {dt} 0-d array or NumPy scalar with {own} arrays gives {_np.result_type(own, dt)} "
                            f"on NumPy 2 but {own} on CuPy 13 (value-based promotion): cast one side explicitly")


def _check_unique_targets(a, key):
    """CuPy's __setitem__ stores an undefined one of the values written to one place by integer-array indices
    ("Differences between CuPy and NumPy: duplicate values in indices"); NumPy the last. Refuse such a write."""
    parts = key if isinstance(key, tuple) else (key,)
    if not any(isinstance(k, _np.ndarray) and k.ndim > 0 and k.dtype.kind in "iu" for k in parts):
        return
    places = _np.arange(a.size).reshape(a.shape)[key]
    if _np.unique(places).size != places.size:
        raise TypeError("an integer-array index writes one place twice: CuPy then stores an undefined one "
                        "of the values (NumPy the last); write each place once")


def _wrap_function(fn, name, params=None, max_ndim=None):
    def wrapped(*args, **kwargs):
        if params is not None:
            _check_keywords(name, params, len(args), kwargs)
        if max_ndim is not None and args and getattr(args[0], "ndim", 0) > max_ndim:
            raise TypeError(f"{name}: CuPy's takes one matrix ({max_ndim}-d), not a stack of shape "
                            f"{tuple(args[0].shape)}; loop over the stack")
        if name.rsplit(".", 1)[-1] in ("sort", "argsort"):
            _check_sort_kind(name, args[2] if len(args) > 2 else kwargs.get("kind"))
        raw = [_unwrap_strict(a) for a in args]
        if name == "xp.where" and len(raw) == 3:
            _check_promotion(name, raw[1:])
        return _wrap(fn(*raw, **{k: _unwrap_strict(v) for k, v in kwargs.items()}))
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

    def __init__(self, uf, name):
        self._uf = uf
        self._name = name                    # as the messages show it: xp.exp, special.erf

    def __call__(self, *args, **kwargs):
        _check_keywords(self._name, UFUNC_KEYWORDS, len(args), kwargs, n_positional=None)
        raw = [_unwrap_strict(a) for a in args]
        _check_promotion(self._name, raw)
        return _wrap(self._uf(*raw, **{k: _unwrap_strict(v) for k, v in kwargs.items()}))

    def __getattr__(self, name):             # .reduce, .accumulate: refused until checked against CuPy
        raise AttributeError(f"{self._name}.{name}: not among the ufunc methods fakexp admits "
                             "(check CuPy supports it first)")


class _Table:
    """A host module whose admitted functions take and return device arrays: numpy.linalg and numpy.fft for
    cupy.linalg and cupy.fft, scipy.special and scipy.linalg for cupyx.scipy's (backend.special/scipy_linalg).
    ``table``: name -> (CuPy's parameters, the most dimensions of the first argument or None); ufuncs: name -> None."""

    def __init__(self, modname, prefix, table):
        self._modname, self._prefix, self._table = modname, prefix, table

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in self._table:
            raise AttributeError(f"{self._prefix}{name}: not among the CuPy functions fakexp admits "
                                 "(tianref/fakexp_cupy.py; check CuPy has it first)")
        fn = getattr(importlib.import_module(self._modname), name)
        if self._table[name] is None:
            return _StrictUfunc(fn, self._prefix + name)
        params, max_ndim = self._table[name]
        return _wrap_function(fn, self._prefix + name, params, max_ndim)


class _Linalg(_Table):
    LinAlgError = _np.linalg.LinAlgError


linalg = _Linalg("numpy.linalg", "xp.linalg.", LINALG)
fft = _Table("numpy.fft", "xp.fft.", {k: (v, None) for k, v in FFT.items()})
special = _Table("scipy.special", "special.", {k: None for k in SPECIAL})
scipy_linalg = _Table("scipy.linalg", "scipy_linalg.", SCIPY_LINALG)
ndarray = FakeArray


def __getattr__(name):
    if name in REFUSED:
        raise AttributeError(f"xp.{name} is refused: {REFUSED[name]}")
    obj = getattr(_np, name)
    if isinstance(obj, type) or isinstance(obj, numbers.Number) or isinstance(obj, _np.dtype) or obj is None:
        return obj                           # dtypes (xp.float32), constants (xp.pi, xp.newaxis), classes
    if isinstance(obj, _np.ufunc) and name in UFUNCS:
        return _StrictUfunc(obj, f"xp.{name}")
    if name in FUNCTIONS:
        return _wrap_function(obj, f"xp.{name}", FUNCTIONS[name])
    raise AttributeError(f"xp.{name}: not among the CuPy functions fakexp admits (tianref/fakexp_cupy.py "
                         "FUNCTIONS, UFUNCS; check CuPy's documentation has it, with NumPy's meaning, first)")
