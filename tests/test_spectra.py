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
    # ring of w_max = 5 slots; update number u (0-based) sits in slot u % 5; most recent first
    assert spectra.window_slots(count=2, w_max=5, w=3) == [1, 0]
    assert spectra.window_slots(count=12, w_max=5, w=3) == [1, 0, 4]      # updates 11, 10, 9
    assert spectra.window_slots(count=7, w_max=5, w=5) == [1, 0, 4, 3, 2]  # updates 6, 5, 4, 3, 2


def test_windows_hold_the_latest_updates_literal_eigenvalues():
    """Update t (t = 1..7) is t·e_t: orthogonal, so G_w is diagonal with the squares of the last w
    indices. After 7 updates in a ring of 5: W = 3 -> 49, 36, 25; W = 5 -> 49, 36, 25, 16, 9 (the
    oldest two, 1 and 4, have left the ring). Exact: integer dot products in float64."""
    P = 8
    st = spectra.init(np, P, 5)
    for t in range(1, 8):
        d = np.zeros(P)
        d[t] = t
        st = spectra.push(np, st, d)
    np.testing.assert_array_equal(spectra.top_eigenvalues(np, st, 3), [49, 36, 25])
    np.testing.assert_array_equal(spectra.top_eigenvalues(np, st, 5), [49, 36, 25, 16, 9])


def test_two_updates_give_the_golden_ratio_eigenvalues():
    """Updates (1, 0) then (1, 1): G = [[1, 1], [1, 2]], eigenvalues (3 ± √5)/2 = φ² and 1/φ²."""
    st = spectra.init(np, 2, 4)
    st = spectra.push(np, st, np.array([1.0, 0.0]))
    assert spectra.top_eigenvalues(np, st, 4) is None                      # one update: no spectrum
    st = spectra.push(np, st, np.array([1.0, 1.0]))
    phi = (1 + 5 ** 0.5) / 2
    # a 2×2 eigvalsh is accurate to a few ulp of the largest eigenvalue (~2.6)
    np.testing.assert_allclose(spectra.top_eigenvalues(np, st, 4), [phi ** 2, phi ** -2], rtol=0, atol=1e-15)


def test_delta_is_new_minus_old_exactly_in_float64():
    """Literal float32 inputs whose float64 difference needs more than float32's 24 bits:
    (1 + 2⁻²³) − (−2⁻³⁰) = 1 + 2⁻²³ + 2⁻³⁰ (31 significant bits: exact in float64, not in float32),
    3 − 2⁻²⁰ (exact), and a 2-D input comes out flattened in C order."""
    new = np.array([[1 + 2.0 ** -23, 3.0], [0.5, -1.0]], dtype=np.float32)
    old = np.array([[-(2.0 ** -30), 2.0 ** -20], [0.5, 1.0]], dtype=np.float32)
    d = spectra.delta(np, new, old)
    assert d.dtype == np.float64 and d.shape == (4,)
    assert list(d) == [1 + 2.0 ** -23 + 2.0 ** -30, 3 - 2.0 ** -20, 0.0, -2.0]


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
