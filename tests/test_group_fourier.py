"""The irrep view of W and the Stage-II energy of group arithmetic (docs/groups.md §4).

Independent computations: the energy on a materialised X and Y (the definition, with the project's
P_perp convention), the same through tianref.fourier.unit_energies on Z_M, through the isotypic
projectors, and through matrix irreps (Plancherel); irrep_metrics against fourier.frequency_metrics.
Tolerance 1e-10 relative: each route is a handful of float64 sums of O(M^2) terms.
"""
import numpy as np
import pytest

from tianref import data, fourier
from tianref import group_fourier as gf
from tianref import irreps as ir
from tianref.groups import parse_group

RTOL = 1e-10


def _host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


@pytest.mark.parametrize("spec", ["Z7", "Z8", "S3", "S4", "A4", "Q8", "A5"])
def test_energy_routes_agree_on_random_units(spec):
    G = parse_group(spec)
    T, M = G.table, G.order
    dec = ir.decompose(T)
    rng = np.random.default_rng(3)
    for _ in range(2):
        wa, wb = rng.standard_normal(M), rng.standard_normal(M)
        E = gf.energy_direct(T, wa, wb)
        assert gf.energy_labels(T, wa, wb) == pytest.approx(E, rel=RTOL)
        assert gf.energy_components(dec, T, wa, wb).sum() == pytest.approx(E, rel=RTOL)
        assert gf.energy_plancherel(dec, T, wa, wb) == pytest.approx(E, rel=RTOL)
        # the w_a^2 and w_b^2 terms carry no energy: only the convolution does
        c = gf.convolve(T, wa, wb)
        assert 2 * M * ((c - c.mean()) ** 2).sum() == pytest.approx(E, rel=RTOL)


def test_energy_labels_holds_for_any_activation():
    T = parse_group("S4").table
    rng = np.random.default_rng(4)
    wa, wb = rng.standard_normal(24), rng.standard_normal(24)
    for act in ["relu", "gelu", "silu"]:
        assert gf.energy_labels(T, wa, wb, act) == pytest.approx(gf.energy_direct(T, wa, wb, act), rel=RTOL)


def test_energy_matches_the_projects_zm_energy_on_the_full_table():
    M = 11
    rng = np.random.default_rng(5)
    W = rng.standard_normal((2 * M, 3))
    batch = data.make_batch(np, M, np.arange(M * M))
    got = fourier.unit_energies(np, W, batch, "sqr")               # E(w / ||w||)
    for j in range(3):
        w = W[:, j] / np.linalg.norm(W[:, j])
        assert gf.energy_direct(parse_group(f"Z{M}").table, w[:M], w[M:]) == pytest.approx(got[j], rel=RTOL)


@pytest.mark.parametrize("spec", ["S4", "A5"])
def test_a_unit_in_one_component_has_energy_there_only(spec):
    G = parse_group(spec)
    T, M = G.table, G.order
    dec = ir.decompose(T)
    rng = np.random.default_rng(6)
    for k in range(1, len(dec.components)):
        P = dec.components[k].projector
        wa, wb = P @ rng.standard_normal(M), P @ rng.standard_normal(M)
        Ek = gf.energy_components(dec, T, wa, wb)
        assert Ek[k] > 0 and np.abs(np.delete(Ek, k)).max() <= 1e-10 * Ek[k]
        assert Ek.sum() == pytest.approx(gf.energy_direct(T, wa, wb), rel=RTOL)


def test_slide_form_is_exact_up_to_1_over_M_on_abelian_groups_only():
    rng = np.random.default_rng(7)
    for spec in ["Z9", "Z10", "3x4"]:
        G = parse_group(spec)
        dec = ir.decompose(G.table)
        wa, wb = rng.standard_normal(G.order), rng.standard_normal(G.order)
        E = gf.energy_direct(G.table, wa, wb)
        for reading in ["product", "tensor"]:
            assert gf.energy_slide(dec, G.table, wa, wb, reading=reading) == pytest.approx(E / G.order, rel=RTOL)
    G = parse_group("S4")                                           # d_k > 1: |tr|^2 is not ||.||_F^2
    dec = ir.decompose(G.table)
    ratios = []
    for _ in range(4):
        wa, wb = rng.standard_normal(24), rng.standard_normal(24)
        ratios.append(gf.energy_slide(dec, G.table, wa, wb) * 24 / gf.energy_direct(G.table, wa, wb))
    assert max(ratios) - min(ratios) > 0.1                          # not even proportional


@pytest.mark.parametrize("M", [11, 13])
def test_irrep_metrics_equal_frequency_metrics_on_odd_cyclic_groups(xp, M):
    rng = np.random.default_rng(M)
    W = rng.standard_normal((2 * M, 40))
    a = np.arange(M)
    for j in range(0, 40, 4):                                      # some pure units, so coverage > 0
        k = 1 + j % ((M - 1) // 2)
        W[:, j] = np.concatenate([np.cos(2 * np.pi * k * a / M + j), np.cos(2 * np.pi * k * a / M + 2 * j)])
    G = parse_group(f"Z{M}")
    cov, med, ks, pur = gf.irrep_metrics(xp, xp.asarray(W), G)
    fcov, fmed, fks, fpur = fourier.frequency_metrics(np, W, M)
    assert int(cov) == int(fcov) > 0
    assert float(med) == pytest.approx(float(fmed), abs=1e-12)
    np.testing.assert_array_equal(_host(ks), fks)
    np.testing.assert_allclose(_host(pur), fpur, atol=1e-12)
    # the component power is the DFT power times 2/M (the real cos/sin pair, unit-normalised)
    want = 2 / M * fourier.unit_spectrum(np, W, M)                  # zeros of a pure unit: atol
    np.testing.assert_allclose(_host(gf.component_power(xp, xp.asarray(W), G)), want, rtol=1e-10,
                               atol=1e-12 * want.max())


def test_even_cyclic_groups_count_the_sign_character():
    M = 12
    rng = np.random.default_rng(1)
    G = parse_group(f"Z{M}")
    dec = ir.decompose(G.table)
    sign = dec.components[-1].projector                            # (-1)^a, 1-dim, listed last
    W = rng.standard_normal((2 * M, 8))
    W[:M] -= sign @ W[:M]
    W[M:] -= sign @ W[M:]                                           # no weight on (-1)^a: the views agree
    _, med, ks, pur = gf.irrep_metrics(np, W, G)
    _, fmed, fks, fpur = fourier.frequency_metrics(np, W, M)
    np.testing.assert_array_equal(ks, fks)
    np.testing.assert_allclose(pur, fpur, atol=1e-12)
    alt = np.cos(np.pi * np.arange(M))
    Ws = np.concatenate([alt, alt])[:, None]                        # a pure sign unit
    cov, _, ks, pur = gf.irrep_metrics(np, Ws, G)
    assert int(ks[0]) == len(dec.components) - 1 and pur[0] == pytest.approx(1.0) and int(cov) == 1
    assert float(fourier.frequency_metrics(np, Ws, M)[3][0]) == 0.0   # invisible to the DFT view


@pytest.mark.parametrize("spec", ["S4", "A4", "Q8"])
def test_planted_units_have_purity_one_and_coverage_counts_components(spec):
    G = parse_group(spec)
    dec = ir.decompose(G.table)
    M, n = G.order, len(dec.components) - 1
    rng = np.random.default_rng(2)
    cols = []
    for k in range(1, n + 1):
        P = dec.components[k].projector
        cols.append(np.concatenate([P @ rng.standard_normal(M), P @ rng.standard_normal(M)]))
    W = np.stack(cols, 1)                                           # (2M, n): unit k-1 lives in component k
    cov, med, ks, pur = gf.irrep_metrics(np, W, G)
    np.testing.assert_array_equal(ks, np.arange(1, n + 1))
    np.testing.assert_allclose(pur, 1.0, atol=1e-12)
    assert int(cov) == n and float(med) == pytest.approx(1.0)
    mixed = W[:, :1] + W[:, 1:2] * (np.linalg.norm(W[:, 0]) / np.linalg.norm(W[:, 1]))   # equal power in two
    cov2, _, _, pur2 = gf.irrep_metrics(np, np.concatenate([W, mixed], 1), G)
    assert pur2[-1] == pytest.approx(0.5) and int(cov2) == n
    # the threshold is inclusive: a unit whose purity equals it counts (the purity of the same call: among
    # other units the product may round differently, e.g. on an Intel Xeon's OpenBLAS)
    alone = float(gf.irrep_metrics(np, mixed, G)[3][0])
    assert alone == pytest.approx(0.5)
    assert int(gf.irrep_metrics(np, mixed, G, threshold=alone)[0]) == 1
    assert int(gf.irrep_metrics(np, mixed, G, threshold=np.nextafter(alone, 1.0))[0]) == 0
    cov0, _, _, pur0 = gf.irrep_metrics(np, np.zeros((2 * M, 1)), G)          # an all-zero unit
    assert int(cov0) == 0 and float(pur0[0]) == 0.0


def test_metrics_from_power_equal_their_definitions_on_random_power():
    """coverage (one bincount of the pure units' k*) and the median (one sort) against a direct construction:
    the set of k*_j over units with purity >= threshold, and np.median of the purities (both exact)."""
    rng = np.random.default_rng(5)
    for n, K in [(1, 7), (3, 8), (5, 64), (9, 511)]:
        P = rng.random((n, K)) ** 6                                  # skewed: many units above the threshold
        P[:, 0] = 0.0                                               # an all-zero unit: purity 0
        P[:, 1] = P[:, 2]                                           # ties in the median
        for threshold in (0.3, 0.6, 0.9):
            cov, med, ks, pur = gf.metrics_from_power(np, P, threshold)
            want_pur = [P[:, j].max() / P[:, j].sum() if P[:, j].sum() > 0 else 0.0 for j in range(K)]
            np.testing.assert_allclose(pur, want_pur, rtol=1e-15)     # column sums in another order
            np.testing.assert_array_equal(ks, [int(np.argmax(P[:, j])) + 1 for j in range(K)])
            assert int(cov) == len({int(ks[j]) for j in range(K) if pur[j] >= threshold})
            assert float(med) == float(np.median(pur))


@pytest.mark.parametrize("K", [1, 2, 5, 512])
def test_median_equals_numpy_median_with_nan(K):
    rng = np.random.default_rng(K)
    x = rng.random(K)
    assert gf.median(np, x) == np.median(x)
    x = np.round(x, 1)                                              # ties
    assert gf.median(np, x) == np.median(x)
    x[rng.integers(K)] = np.nan                                     # a diverged unit: NaN, as np.median
    assert np.isnan(gf.median(np, x)) and np.isnan(np.median(x))


def test_the_trivial_group_is_refused_by_irrep_metrics():
    from tianref.errors import InputError
    with pytest.raises(InputError, match="no non-trivial irrep"):
        gf.irrep_metrics(np, np.ones((2, 3)), parse_group("Z1"))


@pytest.mark.parametrize("spec", ["Z7", "Z12", "3x4", "D2", "D5", "D10", "S3", "S4", "S5", "A4", "A5", "Q8",
                                  "Q8xZ3", "S3xZ2"])
def test_the_logged_fourier_transform_is_an_isometry(spec):
    """Plancherel for the transform behind irrep_coverage, irrep_purity_med and irrep_energy
    (plancherel_blocks, one member per complex pair with weight m = 2): for every f on H,
        ||f||^2 = (1/M) (sum_g f(g))^2 + (1/M) sum_{rho kept} m_rho d_rho ||f^(rho)||_F^2,
    checked as an identity of M x M matrices (the Gram form of the right side is the identity, so it
    holds for every f, cross terms included), and the per-unit power P it gives sums with the trivial
    part to ||w_a||^2 + ||w_b||^2 on random units. Tolerance: float64 sums of M d^2 <= 4320 products."""
    G = parse_group(spec)
    M = G.order
    dec = ir.decompose(G.table)
    Phi, wP, wE = gf.plancherel_blocks(dec, G.table)                # (2, n, D, D, M), (n_comp - 1, n)
    w = wP.sum(axis=0)                                              # (n,) m d / M: each irrep in one component
    assert ((wP > 0).sum(axis=0) == 1).all()
    rows = Phi.reshape(2, Phi.shape[1], -1, M) * np.sqrt(w)[None, :, None, None]
    rows = rows.reshape(-1, M)                                      # (2 n D^2, M) weighted Re / Im entries
    np.testing.assert_allclose(rows.T @ rows + np.full((M, M), 1.0 / M), np.eye(M), atol=1e-12)
    W = np.random.default_rng(8).standard_normal((2 * M, 6))
    P, _ = gf.plancherel_power_energies(np, W, (Phi, wP, wE))
    triv = (W[:M].sum(axis=0) ** 2 + W[M:].sum(axis=0) ** 2) / M
    np.testing.assert_allclose(P.sum(axis=0) + triv, (W * W).sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(gf.component_power(np, W, dec).sum(axis=0) + triv, (W * W).sum(axis=0),
                               rtol=1e-12)                          # the projector route (any sigma)
