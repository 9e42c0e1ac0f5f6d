"""Shared fixtures: the backends every core test runs on.

``numpy`` and the strict fake backend always run; ``cupy`` runs only where a real CuPy with a
usable GPU exists (marked ``cupy``; skipped in CI).
"""
import numpy as np
import pytest

from tianref.backend import BackendError, get_xp


def _cupy_or_skip():
    try:
        return get_xp("cupy")
    except BackendError as exc:
        pytest.skip(f"no usable CuPy/GPU: {exc}")


@pytest.fixture(params=["numpy", "fake", pytest.param("cupy", marks=pytest.mark.cupy)])
def xp(request):
    if request.param == "cupy":
        return _cupy_or_skip()
    return get_xp(request.param)


@pytest.fixture
def np_xp():
    return np
