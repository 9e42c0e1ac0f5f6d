"""Properties of the engine (data, spectra, muon, host_kernels) that a mutation audit found untested: each
test pins one that a surviving mutant broke without any other test failing (a second route: a direct
construction, the documented iteration written out, the shapes an operation asks for)."""
import numpy as np

from tianref import data, model, muon, spectra


def test_segment_index_lists_each_segments_rows_ascending():
    """Row s of the table is np.flatnonzero(keys == s), ascending, then the pad n (a direct construction).
    The order fixes the summation order of X^T dL/dH (the gradient's bits); an unstable argsort or a
    reversed segment keeps every sum equal only up to rounding, which no tolerance-based test sees."""
    rng = np.random.default_rng(0)
    for n, m in ((60, 13), (300, 5), (7, 4)):
        keys = rng.integers(0, m, n)
        table = data.segment_index(keys, m)
        counts = np.bincount(keys, minlength=m)
        assert table.shape == (m, max(int(counts.max()), 1))
        for s in range(m):
            np.testing.assert_array_equal(table[s, :counts[s]], np.flatnonzero(keys == s))
            assert np.all(table[s, counts[s]:] == n)
    # the paper-size training batch: its tables too
    M = 71
    train_idx, _, _, _ = data.init_host(M, 8, 2016, 0)
    batch = data.make_batch(np, M, train_idx)
    for keys, seg in ((batch.a, batch.seg_a), (batch.b, batch.seg_b), (batch.y, batch.seg_y)):
        for s in range(M):
            rows = np.flatnonzero(keys == s)
            np.testing.assert_array_equal(seg[s, :len(rows)], rows)


def test_top_pair_sigma_1_is_the_top_eigenvalue_of_the_windows_gram():
    """top_pair / top_of_run return (sigma_1, u_1): sigma_1 the LARGEST eigenvalue of D_w^T D_w built
    directly from the last w updates, u_1 its unit eigenvector on the window's ring slots."""
    rng = np.random.default_rng(4)
    P, w_max, w = 30, 6, 4
    st = spectra.init(np, P, w_max)
    updates = []
    for t in range(9):                                   # the ring wraps
        d = rng.standard_normal(P) * (1.0 + t)
        updates.append(d)
        st = spectra.push(np, st, d.copy())
    D = np.stack(updates[-w:], axis=1)                   # (P, w) the window's updates, oldest first
    ev = np.linalg.eigvalsh(D.T @ D)                     # ascending
    sigma_1, u = spectra.top_of_run(np, [st], w)
    np.testing.assert_allclose(sigma_1, ev[-1], rtol=1e-12)
    assert sigma_1 > ev[-2] * (1 + 1e-6)                 # a top eigenvalue apart from the next one
    slots = spectra.window_slots(st["count"], w_max, w)  # newest first
    others = [s for s in range(w_max) if s not in slots]
    assert np.all(u[others] == 0)
    a = D @ u[slots[::-1]]                               # D u_1 with u_1 in the window's order
    np.testing.assert_allclose(a @ a, ev[-1], rtol=1e-10)   # ||D u_1||^2 = sigma_1 for the unit top vector
    np.testing.assert_allclose(np.linalg.norm(u), 1.0, rtol=1e-12)
    top = spectra.top_pair(np, [spectra.stack_of_one(st)], w)
    np.testing.assert_allclose(top[0], [ev[-1]], rtol=1e-12)
    np.testing.assert_allclose(top[0][0], spectra.top_eigenvalues(np, st, w)[0], rtol=1e-12)


class _MatmulSpy(np.ndarray):
    """An ndarray that records the shapes of the results of every matmul it takes part in."""
    shapes = []

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        args = [np.asarray(x) if isinstance(x, _MatmulSpy) else x for x in inputs]
        out = getattr(ufunc, method)(*args, **kwargs)
        if ufunc is np.matmul:
            _MatmulSpy.shapes.append(out.shape)
        return out.view(_MatmulSpy) if isinstance(out, np.ndarray) else out


def test_newton_schulz_iterates_on_the_smaller_gram():
    """NS(G) forms S = X X^T on the smaller side of G (p x p, p = min(rows, cols)), as Tian's muon_opt.py
    does (transpose when rows > cols). The other side gives the same matrix only up to rounding and costs
    (q/p)^2 more: W (2M, K) with K = 2048 would make a 2048 x 2048 Gram five times a step. The result is
    bit for bit the documented iteration written out here."""
    rng = np.random.default_rng(5)
    for shape in ((6, 20), (20, 6)):
        G = rng.standard_normal(shape)
        _MatmulSpy.shapes = []
        out = np.asarray(muon.newton_schulz(np, G.view(_MatmulSpy)))
        p = min(shape)
        grams = [s for s in _MatmulSpy.shapes if s[0] == s[1]]
        assert grams and all(s == (p, p) for s in grams), _MatmulSpy.shapes
        X = G.T if shape[0] > shape[1] else G            # the documented route, written out
        X = X / (np.sqrt((X * X).sum()) + muon.NS_EPS)
        for a, b, c in muon.NS_COEFFS:
            S = X @ X.T
            X = a * X + (b * S + c * (S @ S)) @ X
        want = X.T if shape[0] > shape[1] else X
        assert out.shape == shape
        np.testing.assert_array_equal(out, want)


class _EmptySpy:
    """numpy, recording the shapes that ``empty`` is asked for."""

    def __init__(self):
        self.empties = []

    def __getattr__(self, name):
        return getattr(np, name)

    def empty(self, shape, *args, **kwargs):
        self.empties.append(tuple(shape))
        return np.empty(shape, *args, **kwargs)


def test_host_segment_sum_copies_only_the_rows_of_ragged_slots():
    """host_kernels.segment_sum copies only the rows named by slots past the first slot with a pad (sum over
    segments of count_s - min count), behind one zero row; equal segments copy none. The sums are the
    same either way: this pins the memory traffic the module exists for (~500 of 2016 rows at the
    paper's size, not every row)."""
    from tianref import host_kernels
    rng = np.random.default_rng(6)
    K = 8
    for keys in (rng.integers(0, 13, 60), np.arange(60) % 5):
        m = int(keys.max()) + 1
        seg = data.segment_index(keys, m)
        counts = np.bincount(keys, minlength=m)
        R = rng.standard_normal((len(keys), K))
        spy = _EmptySpy()
        got = host_kernels.segment_sum(spy, R, seg)
        want = model.segment_sum_padded(np, np.concatenate([R, np.zeros((1, K))]), seg)
        assert np.array_equal(got, want)
        copied = int((counts - counts.min()).sum())
        assert spy.empties == [(copied + 1, K)], (spy.empties, copied)
