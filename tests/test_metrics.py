"""Figure-3 metrics against their direct definitions (n x n and n x K matrices formed explicitly)."""
import numpy as np
import pytest

from tianref import data, metrics, model
from tianref.backend import to_host


def _features(n=40, K=24, seed=0):
    rng = np.random.default_rng(seed)
    H = rng.standard_normal((n, K))
    return H ** 2 + 0.1 * rng.standard_normal((n, K))      # x^2-like: positive mean, as in training


def _direct(F):
    n, K = F.shape
    Ft = F - F.mean(axis=0)
    C = Ft.T @ Ft
    off = ~np.eye(K, dtype=bool)
    ftf = np.abs(C[off]).mean() / np.abs(np.diag(C)).mean()
    G = F @ F.T                                            # raw Gram, as the paper's code
    d = np.diag(G).mean()
    o = G[~np.eye(n, dtype=bool)].mean()
    ideal = (d - o) * np.eye(n) + o * np.ones((n, n))
    rho = np.linalg.norm(G - ideal) / np.linalg.norm(G)
    return ftf, rho


def test_ftf_and_rho_match_direct_definitions(xp):
    F = _features()
    ftf, rho = metrics.feature_gram_metrics(xp, xp.asarray(F))
    ftf_d, rho_d = _direct(F)
    # float64 throughout; the closed form for rho subtracts tau^2/(n-1) from ||C||^2, which loses
    # at most a few digits here: rtol 1e-10
    assert float(ftf) == pytest.approx(ftf_d, rel=1e-12, abs=0)
    assert float(rho) == pytest.approx(rho_d, rel=1e-10, abs=0)


@pytest.mark.parametrize("rows", [1, 5, 24])
def test_gram_sums_by_blocks_match_direct_definitions(monkeypatch, rows):
    """_gram_sums reads C a block of rows at a time; at the real K = 2048 a block is 64 rows, at the
    tests' K one block holds everything. Blocks of 1 and 5 rows (24 = 4 x 5 + 4: a short last block)
    must give the same ftf_ratio and rho_tian as one block, here and against the direct forms."""
    F = _features()
    monkeypatch.setattr(metrics, "BLOCK_BYTES", 8 * F.shape[1] * rows)
    ftf, rho = metrics.feature_gram_metrics(np, F)
    ftf_d, rho_d = _direct(F)
    # as test_ftf_and_rho_match_direct_definitions: only the order of the float64 sums differs
    assert float(ftf) == pytest.approx(ftf_d, rel=1e-12, abs=0)
    assert float(rho) == pytest.approx(rho_d, rel=1e-10, abs=0)


def test_rho_float32_training_features_close_to_float64_direct():
    """In float32 (the training default) the K x K product carries ~1e-7 relative error; rho
    must stay within 1e-4 relative of the exact value -- far below the 0.075 threshold's scale."""
    F = _features(n=300, K=200, seed=1)
    _, rho32 = metrics.feature_gram_metrics(np, F.astype(np.float32))
    _, rho_d = _direct(F.astype(np.float32).astype(np.float64))
    assert float(rho32) == pytest.approx(rho_d, rel=1e-4)


def test_gradient_field_metrics_match_explicit_G_F(xp):
    rng = np.random.default_rng(3)
    n, M, K = 50, 7, 30
    Yhat = rng.standard_normal((n, M))
    y = rng.integers(0, M, n)
    V = rng.standard_normal((K, M))
    j, jp = metrics.draw_pairs(np.random.default_rng(0), K, 200)
    gF, med, p95 = metrics.gradient_field_metrics(xp, xp.asarray(Yhat), xp.asarray(y), xp.asarray(V),
                                                  xp.asarray(j), xp.asarray(jp))
    Y0 = np.eye(M)[y] - 1 / M
    R = (Y0 - Y0.mean(0)) - (Yhat - Yhat.mean(0))
    GF = R @ V.T                                            # (n, K), formed explicitly here
    # float64; ‖G_F‖ via the M×M Gram RᵀR instead of the n×K product: a few ulp per sum of ~n terms
    assert float(gF) == pytest.approx(np.linalg.norm(GF), rel=1e-12, abs=0)
    g = GF / np.linalg.norm(GF, axis=0)
    cos = np.abs((g[:, j] * g[:, jp]).sum(0))
    s = np.sort(cos)
    # cos by two float64 routes, values ~0.1: rounding only; the even-count rule has its own test below
    assert float(med) == pytest.approx(s[(len(s) - 1) // 2], rel=1e-12, abs=0)   # lower median
    assert float(p95) == pytest.approx(np.percentile(cos, 95), rel=1e-12, abs=0)


@pytest.mark.parametrize("shape, dtype", [((37, 7), np.float32), ((37, 7), np.float64), ((3, 29, 5), np.float32)])
def test_residual_has_the_bits_of_the_direct_form(xp, shape, dtype):
    """R = P_perp (onehot(y) - 1/M - Yhat), formed here with an explicit Y_0 and fresh arrays; the module
    fills one buffer in place and must give the same float64 bits, one run or a stack of runs."""
    rng = np.random.default_rng(3)
    Yhat = rng.standard_normal(shape).astype(dtype)
    y = rng.integers(0, shape[-1], shape[:-1])
    Y0 = np.eye(shape[-1])[y] - 1.0 / shape[-1]
    R = Y0 - Yhat.astype(np.float64)
    direct = R - R.mean(axis=-2, keepdims=True)
    got = to_host(metrics.residual(xp, xp.asarray(Yhat), xp.asarray(y)))
    assert got.dtype == np.float64 and got.shape == shape
    assert np.array_equal(got, direct)


def test_draw_pairs_drops_equal_indices_and_is_seeded():
    j, jp = metrics.draw_pairs(np.random.default_rng(5), 4, 500)
    assert len(j) < 500 and np.all(j != jp)
    j2, jp2 = metrics.draw_pairs(np.random.default_rng(5), 4, 500)
    np.testing.assert_array_equal(j, j2)
    np.testing.assert_array_equal(jp, jp2)


def test_rho_on_model_features_matches_direct():
    tr, _, W, _ = data.init_host(11, 64, 48, 0)
    batch = data.make_batch(np, 11, tr)
    _, F = model.hidden(np, W, batch, "sqr")
    # the same closed form as test_ftf_and_rho_match_direct_definitions: rtol 1e-10
    assert float(metrics.feature_gram_metrics(np, F)[1]) == pytest.approx(_direct(F)[1], rel=1e-10, abs=0)


def test_independence_median_is_the_lower_median_for_an_even_count():
    """torch.median returns the lower of the two middle values for an even count (the PyTorch
    documentation of torch.median says so in its note on inputs with an even number of elements);
    the paper's code logs that median.
    Four pairs with distinct |cos|: the answer is the 2nd smallest, neither the 3rd nor their mean."""
    rng = np.random.default_rng(4)
    n, M, K = 40, 5, 6
    Yhat = rng.standard_normal((n, M))
    y = rng.integers(0, M, n)
    V = rng.standard_normal((K, M))
    j, jp = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 4])
    _, med, _ = metrics.gradient_field_metrics(np, Yhat, y, V, j, jp)
    Y0 = np.eye(M)[y] - 1 / M
    GF = ((Y0 - Y0.mean(0)) - (Yhat - Yhat.mean(0))) @ V.T                 # (n, K), explicitly
    g = GF / np.linalg.norm(GF, axis=0)
    s = np.sort(np.abs((g[:, j] * g[:, jp]).sum(0)))
    assert s[2] - s[1] > 1e-3                                               # the two middles differ
    # the explicit and the code's route differ only by rounding (~1e-16 on |cos| <= 1)
    assert float(med) == pytest.approx(s[1], rel=0, abs=1e-13)


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")   # the 0/0 cosines
@pytest.mark.parametrize("lens", [(200, 37, 1, 60), (2, 3, 4, 60), (5, 5, 5, 5)] + [tuple(range(1, 41))])
def test_stacked_gradient_field_is_numpys_median_and_percentile_per_run(xp, lens):
    """gradient_field_runs (one sort of the padded (S, max m) table) against each run's own |cos|
    values, NumPy's sort for the lower median and np.percentile(., 95) for the p95: the same bits, for
    runs with different numbers of pairs (1 to 200; 40 runs of 1..40 exercise both sides of NumPy's
    two-sided lerp); the last run has a zero column of V (unit 4) and one pair on it, a NaN cosine that
    sorts last: its p95 is NaN, as np.percentile gives, and the other runs keep their values."""
    rng = np.random.default_rng(11)
    S, n, M, K = len(lens), 40, 6, 9
    Yhat, y = rng.standard_normal((S, n, M)), rng.integers(0, M, (S, n))
    V = rng.standard_normal((S, K, M))
    V[-1, 4] = 0.0                                       # the last run: unit 4 has no output weights
    pairs = []
    for s, m in enumerate(lens):
        units = np.array([u for u in range(K) if u != 4]) if s == S - 1 else np.arange(K)
        j, jp = rng.choice(units, m), rng.choice(units, m)
        jp = np.where(jp == j, units[(np.searchsorted(units, j) + 1) % len(units)], jp)   # j != jp
        pairs.append((j, jp))
    pairs[-1] = (np.concatenate([pairs[-1][0], [4]]), np.concatenate([pairs[-1][1], [0]]))
    gF, med, p95 = (to_host(x) for x in metrics.gradient_field_runs(
        xp, xp.asarray(Yhat), xp.asarray(y), xp.asarray(V), pairs))
    for s, (j, jp) in enumerate(pairs):
        Y0 = np.eye(M)[y[s]] - 1 / M
        R = Y0 - (Yhat[s])
        R = R - R.mean(0)
        VQ = V[s] @ (R.T @ R)
        cn = (VQ * V[s]).sum(1)
        with np.errstate(invalid="ignore"):
            cos = np.abs((VQ[j] * V[s][jp]).sum(1)) / np.sqrt(cn[j] * cn[jp])
        want_med, want = np.sort(cos)[(len(cos) - 1) // 2], np.percentile(cos, 95)
        assert med[s] == want_med or (np.isnan(med[s]) and np.isnan(want_med)), s
        assert p95[s] == want or (np.isnan(p95[s]) and np.isnan(want)), (s, p95[s], want)
        assert gF[s] == pytest.approx(np.sqrt(cn.sum()), rel=1e-14)
    assert np.isnan(p95[-1]) and np.isfinite(p95[:-1]).all()


def test_stacked_feature_gram_matches_the_definitions_run_by_run(xp):
    """feature_gram_runs on S stacked runs (the host's per-run SYRK, a device's one batched product)
    against the direct definitions of ftf_ratio and rho_tian (the n x n Gram formed) for each run; on
    the host also bit for bit the one-run function."""
    Fs = np.stack([_features(n=30, K=20, seed=s) for s in range(3)])          # (3, 30, 20)
    ftf, rho = (to_host(x) for x in metrics.feature_gram_runs(xp, xp.asarray(Fs), xp.asarray(Fs.sum(axis=1))))
    for s in range(3):
        want_ftf, want_rho = _direct(Fs[s])
        assert ftf[s] == pytest.approx(want_ftf, rel=1e-12) and rho[s] == pytest.approx(want_rho, rel=1e-10)
        if xp is np:
            one = metrics.feature_gram_metrics(np, Fs[s], Fs[s].sum(axis=0))
            assert (ftf[s], rho[s]) == (float(one[0]), float(one[1]))
