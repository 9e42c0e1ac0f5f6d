"""Rolling Gram spectra: the incremental multi-window Gram against eigenvalues of D^T D formed directly."""
import numpy as np

from tianref import spectra
from tianref.backend import to_host


def test_incremental_windows_match_direct_eigenvalues(xp):
    rng = np.random.default_rng(0)
    P, windows, T = 50, (3, 5, 8), 13
    st = spectra.init(xp, P, max(windows))
    deltas = []
    for t in range(1, T + 1):
        d = rng.standard_normal(P) * rng.uniform(0.1, 2)
        deltas.append(d)
        st = spectra.push(xp, st, xp.asarray(d))
        for w in windows:
            ev = spectra.top_eigenvalues(xp, st, w)
            m = min(t, w)
            if m < 2:
                assert ev is None
                continue
            D = np.stack(deltas[-m:], axis=1)                     # (P, m)
            direct = np.sort(np.linalg.eigvalsh(D.T @ D))[::-1][:5]
            # the same symmetric matrix up to a permutation and rounding of the dot products
            np.testing.assert_allclose(to_host(ev), direct, rtol=1e-10, atol=1e-12)


def test_window_slots_are_the_most_recent():
    assert spectra.window_slots(count=2, w_max=5, w=3) == [1, 0]
    assert sorted(spectra.window_slots(count=12, w_max=5, w=3)) == sorted([11 % 5, 10 % 5, 9 % 5])


def test_delta_is_exact_for_float32_parameters():
    a = np.array([1.0000001, 3.0], dtype=np.float32)
    b = np.array([-2.5e-8, 1e-30], dtype=np.float32)
    d = spectra.delta(np, a, b)
    assert d.dtype == np.float64
    # float64 holds the difference of two float32 values exactly
    np.testing.assert_array_equal(d, a.astype(np.float64) - b.astype(np.float64))


def test_rank_two_updates_give_large_gap():
    """Updates spanning 2 directions: sigma3 ~ 0, so sigma2/sigma3 is huge; 3 directions: moderate."""
    rng = np.random.default_rng(1)
    P = 40
    u, v, z = rng.standard_normal((3, P))
    st = spectra.init(np, P, 20)
    for t in range(20):
        st = spectra.push(np, st, np.cos(t) * u + np.sin(t) * v + 1e-6 * rng.standard_normal(P))
    ev = spectra.top_eigenvalues(np, st, 20)
    assert ev[1] / ev[2] > 1e6
