"""The strict fake backend must refuse what CuPy refuses; otherwise a test that runs the code on it
only compares NumPy with NumPy.

CuPy's rules (its documentation, "Differences between CuPy and NumPy"): no implicit conversion of a
device array to a host array (``np.asarray(x)`` raises TypeError), no host ``ndarray`` operands in
device arithmetic; the explicit transfers are ``x.get()``, ``cupy.asnumpy(x)`` and scalars by
``float(x)``/``x.item()``.
"""
import numpy as np
import pytest

from tianref import fakexp as fx
from tianref.backend import to_host


def test_implicit_host_conversions_are_refused():
    x = fx.asarray(np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(x)
    with pytest.raises(TypeError):
        np.mean(x)                                   # a NumPy function on a device array
    with pytest.raises(TypeError):
        list(x)                                      # element-by-element transfer
    with pytest.raises(TypeError):
        x + np.ones(3)                               # a host array mixed into device math
    with pytest.raises(TypeError):
        fx.exp(np.ones(3))                           # a device ufunc on a host array
    with pytest.raises(TypeError):
        x[np.array([0, 1])]                          # indexing with a host array


def test_explicit_transfers_are_allowed_and_exact():
    h = np.arange(6.0).reshape(2, 3)
    x = fx.asarray(h)
    assert isinstance(x, fx.FakeArray) and isinstance(x + 1, fx.FakeArray)
    np.testing.assert_array_equal(x.get(), h)
    np.testing.assert_array_equal(to_host(x * 2), 2 * h)
    assert float(x.sum()) == 15.0 and x[1, 2].item() == 5.0
    assert isinstance(fx.linalg.eigvalsh(x[:, :2].T @ x[:, :2]), fx.FakeArray)


def test_ops_count_counts_every_device_array_made():
    """bench/bench_ops.py's proxy for kernel launches: one per device array a call, operator, method,
    index or transfer makes; host-side work and scalar reads count nothing."""
    from tianref import fakexp
    a = fakexp.asarray(np.arange(6.0).reshape(2, 3))
    n0 = fakexp.ops_count()
    b = a * 2                       # an operator
    c = fakexp.exp(b)               # a function
    d = c.sum(axis=1)               # a method
    e = d[0]                        # an index (a view on a GPU, still a call)
    float(e)                        # a read back: no device array
    assert fakexp.ops_count() - n0 == 4
