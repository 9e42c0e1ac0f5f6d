"""orderstats.median / quantile give numpy.median / numpy.quantile bit for bit, NaN included, on every backend
(the strict fake backend refuses xp.median / xp.quantile: CuPy's do not propagate NaN as NumPy's do)."""
import numpy as np
import pytest

from tianref import orderstats
from tianref.backend import to_host
from tianref.thm6.summary import QUANTILES


def _cases(rng):
    for n in (1, 2, 3, 8, 63, 64):
        x = rng.standard_normal(n)
        yield x
        yield np.round(x, 1)                                        # ties
        yield np.abs(x) * 1e-300                                    # tiny: a sum of two middles near underflow
    yield np.array([-0.0])                                          # the sign of a lone zero
    yield np.array([0.0, -0.0, 0.0])
    yield np.array([-0.0, -0.0])                                    # NumPy: +0.0 (a sum from +0.0)


def test_median_is_numpys_bit_for_bit(xp):
    rng = np.random.default_rng(0)
    for x in _cases(rng):
        got = to_host(orderstats.median(xp, xp.asarray(x)))
        want = np.median(x)
        assert got.tobytes() == np.float64(want).tobytes(), (x, got, want)   # exact, signs of zeros too


def test_median_of_a_stack_is_each_rows_median_and_nan_where_numpys_is(xp):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((4, 10))
    X[1, 3] = np.nan                                                # a diverged run's row
    X[2, 0] = -np.nan                                               # a NaN with its sign bit set (a 1-D radix sort puts it first)
    got = to_host(orderstats.median(xp, xp.asarray(X)))
    with np.errstate(invalid="ignore"):
        want = np.median(X, axis=-1)
    np.testing.assert_array_equal(got, want)                        # NaN at the same places, the rest exact


def test_quantiles_are_numpys_bit_for_bit(xp):
    rng = np.random.default_rng(2)
    for x in _cases(rng):
        got = to_host(orderstats.quantile(xp, xp.asarray(x), QUANTILES))
        want = np.quantile(x, QUANTILES)
        assert got.tobytes() == want.tobytes(), (x, got, want)


@pytest.mark.parametrize("where", [0, 5, 9])
def test_quantiles_are_nan_when_the_data_hold_a_nan(xp, where):
    x = np.linspace(0.0, 1.0, 10)
    x[where] = np.nan
    got = to_host(orderstats.quantile(xp, xp.asarray(x), QUANTILES))
    assert np.isnan(got).all() and np.isnan(np.quantile(x, QUANTILES)).all()
