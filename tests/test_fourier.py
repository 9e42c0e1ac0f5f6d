"""Fourier view and Stage-II energy: exact on analytic (Gromov-style) weights, and a direct route.

The analytic network (Gromov 2023, for sigma = x^2): for each chosen frequency k and each phase pair
(phi_r, psi_s) on a 5 x 5 grid of multiples of 2 pi / 5, one unit with
    w_a(a) = cos(2 pi k a / M + phi),  w_b(b) = cos(2 pi k b / M + psi),  V_c = cos(2 pi k c / M + phi + psi).
Then (w_a + w_b)^2 V_c summed over the phase grid is exactly (25/2) cos(2 pi k (a + b - c) / M): every
other product carries a factor sum_r exp(i m phi_r) with m in {1, 2, 3} (zero on a 5-point grid), so the
output peaks at c = a + b mod M and the network is a perfect modular adder for prime M.
"""
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from tianref import data, fourier, model, runs
from tianref.cli import main as cli_main

M = 23
FREQS = (1, 3, 7)
R = 5


def analytic(M=M, freqs=FREQS):
    a = np.arange(M)
    W_cols, V_rows = [], []
    for k in freqs:
        th = 2 * np.pi * k / M
        for r in range(R):
            for s in range(R):
                phi, psi = 2 * np.pi * r / R, 2 * np.pi * s / R
                W_cols.append(np.concatenate([np.cos(th * a + phi), np.cos(th * a + psi)]))
                V_rows.append(np.cos(th * a + phi + psi))
    return np.array(W_cols).T, np.array(V_rows)                     # (2M, K), (K, M)


def test_pure_cosines_give_exact_coverage_and_purity(xp):
    W, _ = analytic()
    cov, pmed, kstar, purity = fourier.frequency_metrics(xp, xp.asarray(W), M)
    assert int(cov) == len(FREQS)
    np.testing.assert_allclose(np.asarray(purity.get() if hasattr(purity, "get") else purity), 1.0, atol=1e-12)
    ks = kstar.get() if hasattr(kstar, "get") else kstar
    assert sorted(set(ks.tolist())) == list(FREQS) and float(pmed) == pytest.approx(1.0, abs=1e-12)


def test_mixed_units_lower_purity_and_do_not_count():
    W, _ = analytic()
    a = np.arange(M)
    mix = np.concatenate([np.cos(2 * np.pi * 9 * a / M) + np.cos(2 * np.pi * 10 * a / M + 1.0),
                          np.cos(2 * np.pi * 9 * a / M + 2.0) + np.cos(2 * np.pi * 10 * a / M)])
    W2 = np.concatenate([W, np.repeat(mix[:, None], 100, axis=1)], axis=1)     # 75 pure, 100 mixed
    cov, pmed, kstar, purity = fourier.frequency_metrics(np, W2, M)
    np.testing.assert_allclose(purity[75:], 0.5, atol=1e-12)       # two frequencies of equal power
    assert int(cov) == len(FREQS)                                   # 9 and 10 are not pure: not counted
    assert float(pmed) == pytest.approx(0.5, abs=1e-12)             # the median unit is mixed
    # coverage counts distinct frequencies, not units: duplicating units changes nothing
    assert int(fourier.frequency_metrics(np, np.concatenate([W, W], axis=1), M)[0]) == len(FREQS)


def test_fft_matches_a_direct_dft():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((2 * M, 9))
    k = np.arange(1, (M - 1) // 2 + 1)
    E = np.exp(-2j * np.pi * np.outer(k, np.arange(M)) / M)          # (k_max, M)
    P = np.abs(E @ W[:M]) ** 2 + np.abs(E @ W[M:]) ** 2
    np.testing.assert_allclose(fourier.unit_spectrum(np, W, M), P, rtol=1e-12)


@pytest.mark.parametrize("m", [5, 8, 71])
def test_the_dft_product_matches_numpys_fft_and_takes_a_run_axis(m):
    rng = np.random.default_rng(m)
    W = rng.standard_normal((3, 2 * m, 17))                           # three stacked runs
    Fh = np.fft.rfft(W.reshape(3, 2, m, 17), axis=2)
    P = (np.abs(Fh) ** 2).sum(axis=1)[:, 1:(m - 1) // 2 + 1]          # (3, k_max, K)
    got = fourier.unit_spectrum(np, W, m)
    np.testing.assert_allclose(got, P, rtol=1e-12, atol=1e-12 * P.max())
    for s in range(3):
        assert np.array_equal(fourier.unit_spectrum(np, W[s], m), got[s])


def test_energy_matches_the_definition_with_materialised_X():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((2 * M, 6))
    tr, _, _, _ = data.init_host(M, 6, 200, 0)
    batch = data.make_batch(np, M, tr)
    X = np.zeros((200, 2 * M))
    X[np.arange(200), batch.a] = 1
    X[np.arange(200), M + batch.b] = 1
    Y = np.eye(M)[batch.y]
    Yt = Y - Y.mean(axis=0)
    want = []
    for j in range(6):
        w = W[:, j] / np.linalg.norm(W[:, j])
        want.append(0.5 * np.sum((Yt @ Yt.T @ (X @ w) ** 2) ** 2))
    np.testing.assert_allclose(fourier.unit_energies(np, W, batch, "sqr"), want, rtol=1e-11)
    # the shortcut through the row's own activations (homogeneous sigma) gives the same numbers
    _, F = model.hidden(np, W, batch, "sqr")
    np.testing.assert_allclose(fourier.unit_energies(np, W, batch, "sqr", F), want, rtol=1e-11)
    _, F32 = model.hidden(np, W.astype(np.float32), batch, "sqr")
    np.testing.assert_allclose(fourier.unit_energies(np, W.astype(np.float32), batch, "sqr", F32), want,
                               rtol=1e-5)
    for act in ("relu", "gelu"):
        want = [0.5 * np.sum((Yt @ Yt.T @ model.sigma(np, X @ (W[:, j] / np.linalg.norm(W[:, j])), act)) ** 2)
                for j in range(6)]
        _, F = model.hidden(np, W, batch, act)
        np.testing.assert_allclose(fourier.unit_energies(np, W, batch, act, F), want, rtol=1e-11)


def test_a_pure_frequency_is_a_local_maximum_of_the_energy():
    """Tian's Stage II on the full table: perturbing a pure-cosine unit lowers E(w/||w||)."""
    W, _ = analytic(freqs=(3,))
    w = W[:, :1]
    batch = data.make_batch(np, M, np.arange(M * M))
    E0 = fourier.unit_energies(np, w, batch, "sqr")[0]
    rng = np.random.default_rng(2)
    D = rng.standard_normal((2 * M, 20)) * 1e-3
    E = fourier.unit_energies(np, w + D, batch, "sqr")
    assert np.all(E < E0)


def test_analytic_network_adds_perfectly_at_row_0(tmp_path):
    W, V = analytic()
    tr, _, _, _ = data.init_host(M, W.shape[1], 150, 0)
    init = tmp_path / "analytic.npz"
    runs.save_npz(str(init), {"W": W, "V": V, "train_idx": tr})
    out = tmp_path / "run"
    r = CliRunner().invoke(cli_main, ["train", "--init-from", str(init), "--epochs", "0", "--dtype", "float64",
                                      "--out", str(out)])
    assert r.exit_code == 0, r.output
    row = runs.read_metrics(str(out / "metrics.jsonl"))[0]
    assert row["test_acc"] == 1.0 and row["train_acc"] == 1.0
    assert row["freq_coverage"] == 3 and row["freq_purity_med"] == pytest.approx(1.0, abs=1e-12)
    # the output is exactly (25/2) sum_k cos(2 pi k (a + b - c) / M)
    batch = data.make_batch(np, M, np.arange(M * M))
    Yhat, _ = model.forward(np, {"W": W, "V": V}, batch, "sqr")
    c = np.arange(M)
    want = sum(12.5 * np.cos(2 * np.pi * k * ((batch.a + batch.b)[:, None] - c[None, :]) / M) for k in FREQS)
    np.testing.assert_allclose(Yhat, want, atol=1e-11)
    assert json.loads((out / "config.json").read_text())["config"]["K"] == 75


def test_M_2_has_no_frequency_and_trains_with_full_metrics(tmp_path):
    """M = 2 (the smallest --M, and --group Z2): k_max = floor(1/2) = 0, so no unit has power at
    k = 1..k_max and, by the docstring's rule, every purity is 0, no k* exists and the coverage is 0.
    The only non-constant function on Z_2 is (-1)^a, which the DFT view leaves out (k = M/2)."""
    W = np.array([[1.0, 0.0, 2.0], [-1.0, 0.0, 0.5], [3.0, 0.0, -1.0], [3.0, 0.0, 0.0]])   # (2M, K) = (4, 3)
    assert fourier.unit_spectrum(np, W, 2).shape == (0, 3)
    cov, pmed, kstar, purity = fourier.frequency_metrics(np, W, 2)
    assert int(cov) == 0 and float(pmed) == 0.0                     # exact: nothing is computed
    np.testing.assert_array_equal(purity, np.zeros(3))
    np.testing.assert_array_equal(kstar, np.zeros(3, dtype=int))
    cov_s, _, _, purity_s = fourier.frequency_metrics(np, np.stack([W, W]), 2)   # a run axis
    assert cov_s.shape == (2,) and purity_s.shape == (2, 3)
    out = tmp_path / "m2"
    r = CliRunner().invoke(cli_main, ["train", "--M", "2", "--K", "8", "--epochs", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = runs.read_metrics(str(out / "metrics.jsonl"))
    assert all(row["freq_coverage"] == 0 and row["freq_purity_med"] == 0.0 for row in rows)


# --- diversity: the spread of the pure units over the frequencies ---------------------------------

def _unit(M, A, k1, B=0.0, k2=1):
    """One unit [A cos(2 pi k1 a / M), B cos(2 pi k2 b / M)]: P(k1) : P(k2) = A^2 : B^2."""
    a = np.arange(M)
    return np.concatenate([A * np.cos(2 * np.pi * k1 * a / M), B * np.cos(2 * np.pi * k2 * a / M)])


def test_diversity_of_planted_cosines(xp):
    W, _ = analytic()                                                # 25 pure units at each of k = 1, 3, 7
    d = fourier.diversity(xp, xp.asarray(W), M)
    k_max = (M - 1) // 2
    assert d["n_units"] == d["n_pure"] == 75 and d["coverage"] == 3
    assert d["hist"] == [25 if k in FREQS else 0 for k in range(1, k_max + 1)]
    # float64 sums of three equal terms: a few ulps
    assert d["entropy"] == pytest.approx(np.log(3), rel=1e-14)
    assert d["entropy_norm"] == pytest.approx(np.log(3) / np.log(k_max), rel=1e-14)


def test_diversity_of_a_uniform_histogram_is_ln_of_the_frequencies():
    Mu = 13
    k_max = (Mu - 1) // 2
    pure = [_unit(Mu, 1.0, k) for k in range(1, k_max + 1)]          # one pure unit per frequency
    mixed = _unit(Mu, 1.0, 2, 1.0, 5)                               # purity 1/2: not counted
    W = np.stack(pure + [mixed], axis=1)                            # (2M, k_max + 1)
    d = fourier.diversity(np, W, Mu)
    assert d["n_units"] == k_max + 1 and d["n_pure"] == k_max and d["hist"] == [1] * k_max
    assert d["entropy"] == pytest.approx(np.log(k_max), rel=1e-14)   # a sum of k_max equal terms
    assert d["entropy_norm"] == pytest.approx(1.0, rel=1e-14)
    one = fourier.diversity(np, W[:, :1], Mu)                       # a single pure unit: no spread
    assert one["entropy"] == 0.0 and one["entropy_norm"] == 0.0 and one["coverage"] == 1
    assert math.copysign(1, one["entropy"]) == math.copysign(1, one["entropy_norm"]) == 1   # 0.0, never -0.0
    none = fourier.diversity(np, W[:, -1:], Mu)                     # no pure unit at all
    assert none["n_pure"] == 0 and none["entropy"] == 0.0 and none["hist"] == [0] * k_max


def test_diversity_threshold_is_inclusive_at_exactly_0_9():
    Mu = 13
    W = np.stack([_unit(Mu, 3.0, 1, 1.0, 2), _unit(Mu, 1.0, 4)], axis=1)   # P(1) : P(2) = 9 : 1, and pure k = 4
    _, _, _, purity = fourier.frequency_metrics(np, W, Mu)
    assert purity[0] == 0.9                                         # exactly, in float64 (the premise)
    d = fourier.diversity(np, W, Mu, purity_min=0.9)
    assert d["n_pure"] == 2 and d["hist"] == [1, 0, 0, 1, 0, 0] and d["coverage"] == 2
    assert d["entropy"] == pytest.approx(np.log(2), rel=1e-15)
    above = fourier.diversity(np, W, Mu, purity_min=np.nextafter(0.9, 1.0))
    assert above["n_pure"] == 1 and above["hist"] == [0, 0, 0, 1, 0, 0]


def test_diversity_coverage_equals_the_logged_freq_coverage():
    """Planted pure units (k = 1, 3), units at purity exactly 0.9 (k = 5) and random units, trained a few
    steps: at every row the logged freq_coverage equals diversity's coverage on that row's W."""
    from tianref import train
    from tianref.config import TrainConfig, validate
    Mu, K = 13, 40
    rng = np.random.default_rng(3)
    cols = [_unit(Mu, 1.0, 1)] * 4 + [_unit(Mu, 1.0, 3)] * 4 + [_unit(Mu, 3.0, 5, 1.0, 2)] * 2
    W = np.concatenate([np.stack(cols, axis=1), rng.standard_normal((2 * Mu, K - len(cols)))], axis=1)
    tr, _, _, V = data.init_host(Mu, K, 60, 0)
    cfg = validate(TrainConfig(M=Mu, K=K, n_train=60, epochs=4, dtype="float64", lr=1e-2, windows=(3,)))
    init = {"W": W, "V": V, "train_idx": tr}
    sink = runs.MemorySink()
    train.run(cfg, np, init=init, sink=sink)
    Ws = train.replay(cfg.to_dict(), range(5), np, init=init)
    assert sink.rows[0]["freq_coverage"] == 3                       # 1, 3 and 5 (inclusive)
    for row in sink.rows:
        assert fourier.diversity(np, Ws[row["epoch"]]["W"], Mu)["coverage"] == row["freq_coverage"]


def test_diversity_refuses_bad_shapes():
    from tianref.errors import InputError
    with pytest.raises(InputError, match="expected"):
        fourier.diversity(np, np.zeros((10, 4)), 7)
    with pytest.raises(InputError, match="M >= 3"):
        fourier.diversity(np, np.zeros((4, 4)), 2)
