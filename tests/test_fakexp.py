"""The strict fake backend must refuse what CuPy refuses; otherwise a test that runs the code on it
only compares NumPy with NumPy.

CuPy's rules (its documentation, "Differences between CuPy and NumPy"): no implicit conversion of a
device array to a host array (``np.asarray(x)`` raises TypeError), no host ``ndarray`` operands in
device arithmetic; the explicit transfers are ``x.get()``, ``cupy.asnumpy(x)`` and scalars by
``float(x)``/``x.item()``. Beyond those, what CuPy does not take or computes differently (tianref/fakexp.py's
allow-lists and refusals, below).
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


def _dev(a):
    return fx.asarray(np.asarray(a))


@pytest.mark.parametrize("call, match", [
    (lambda a, i: fx.take(a, i, axis=0, mode="clip"), "no keyword 'mode'"),       # CuPy's take has no mode
    (lambda a, i: fx.take(a, i, 0, None, "clip"), "positional"),
    (lambda a, i: fx.linalg.cholesky(a[:, :2].T @ a[:, :2], upper=False), "no keyword 'upper'"),   # NumPy 2's
    (lambda a, i: fx.linalg.svd(a, hermitian=False), "no keyword 'hermitian'"),
    (lambda a, i: fx.linalg.qr(fx.stack([a, a])), "one matrix"),                  # CuPy's qr: rank 2 only
    (lambda a, i: fx.scipy_linalg.solve_triangular(fx.stack([a[:, :2]] * 2), a[:, :2]), "one matrix"),
    (lambda a, i: fx.sort(a, kind="quicksort"), "stable"),
    (lambda a, i: fx.argsort(a, -1, "quicksort"), "stable"),                     # kind given by position
    (lambda a, i: a.sort(-1, "heapsort"), "stable"),
    (lambda a, i: a.max(axis=0, initial=0.0), "no keyword 'initial'"),           # NumPy's, not CuPy's
    (lambda a, i: fx.exp(a, where=a > 0), "no keyword 'where'"),
    (lambda a, i: np.maximum.reduce(a), "ufunc calls"),    # a NumPy ufunc method on a device array: none admitted
])
def test_arguments_cupy_does_not_take_are_refused(call, match):
    a, i = _dev(np.arange(6.0).reshape(3, 2)), _dev(np.array([0, 2]))
    with pytest.raises(TypeError, match=match):
        call(a, i)


def test_functions_cupy_lacks_or_computes_differently_are_refused():
    a = _dev(np.arange(6.0))
    for name in ("median", "quantile", "percentile", "nanmedian"):   # NaN: CuPy's return no NaN where NumPy's do
        with pytest.raises(AttributeError, match="orderstats"):
            getattr(fx, name)
    with pytest.raises(AttributeError, match="not among the CuPy functions"):
        fx.nanargmax(a)                                              # a name nobody checked against CuPy's docs
    with pytest.raises(AttributeError, match="not among the cupy.ndarray methods"):
        a.ptp()
    with pytest.raises(AttributeError, match="ufunc methods"):
        fx.add.at(a, _dev(np.array([0])), 1.0)
    with pytest.raises(AttributeError, match="not among the CuPy functions"):
        fx.linalg.matrix_rank(a.reshape(2, 3))


def test_every_admitted_name_exists_in_numpy_and_scipy():
    """An allow-list entry with a typo would refuse a call CuPy takes: every name resolves underneath."""
    import scipy.linalg
    import scipy.special
    for name in (*fx.FUNCTIONS, *fx.UFUNCS):
        assert callable(getattr(np, name)), name
    for name in fx.METHODS:
        assert callable(getattr(np.ndarray, name)), name
    for name in fx.ATTRIBUTES:
        assert hasattr(np.zeros(1), name), name
    assert all(hasattr(np.linalg, k) for k in fx.LINALG) and all(hasattr(np.fft, k) for k in fx.FFT)
    assert all(hasattr(scipy.linalg, k) for k in fx.SCIPY_LINALG)
    assert all(isinstance(getattr(scipy.special, k), np.ufunc) for k in fx.SPECIAL)


def test_a_zero_dimensional_host_array_is_refused_in_device_math():
    """CuPy converts Python and NumPy scalars, not numpy.ndarray of any shape (TypeError: Unsupported type)."""
    x = _dev(np.arange(3.0))
    with pytest.raises(TypeError, match="host array"):
        x + np.array(2.0)
    with pytest.raises(TypeError, match="host array"):
        fx.maximum(x, np.array(0.0))
    assert float((x + np.float64(2.0)).sum()) == 9.0                 # a NumPy scalar is fine


def test_an_index_that_writes_one_place_twice_is_refused():
    """CuPy's __setitem__ then stores an undefined one of the values; NumPy the last."""
    x = fx.zeros((2, 3))
    with pytest.raises(TypeError, match="writes one place twice"):
        x[_dev(np.array([1, 1]))] = _dev(np.array([[1.0] * 3, [2.0] * 3]))
    with pytest.raises(TypeError, match="writes one place twice"):
        x[:, _dev(np.array([0, 2, 0]))] = 1.0
    x[_dev(np.array([1, 0])), _dev(np.array([2, 2]))] = _dev(np.array([5.0, 6.0]))   # two places: fine
    x[_dev(np.array([True, False]))] = 7.0                          # a mask never repeats a place
    np.testing.assert_array_equal(x.get(), [[7.0, 7.0, 7.0], [0.0, 0.0, 5.0]])


def test_a_result_dtype_that_depends_on_the_promotion_rule_is_refused():
    """float32 arrays with a float64 (or int64) 0-d array or NumPy scalar: float64 under NumPy 2 (NEP 50),
    float32 under CuPy 13's value-based rule. Python scalars are weak under both, a wider array decides both."""
    x32 = _dev(np.arange(3.0, dtype=np.float32))
    for other in (_dev(np.float64(2.0)), np.float64(2.0), _dev(np.int64(2))):
        with pytest.raises(TypeError, match="cast one side explicitly"):
            x32 * other
    with pytest.raises(TypeError, match="cast one side explicitly"):
        fx.where(x32 > 0, x32, np.float64(0.0))
    assert (x32 * 2.0).dtype == np.float32 and (x32 * _dev(np.float32(2.0))).dtype == np.float32
    assert (_dev(np.arange(3.0)) * _dev(np.float32(2.0))).dtype == np.float64
    assert (x32 * _dev(np.arange(3.0))).dtype == np.float64        # two arrays: the same rule everywhere
