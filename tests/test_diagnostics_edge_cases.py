"""Edge cases of the diagnostics (metrics, fourier, group_fourier, edge, rows) that a mutation audit found untested.

Each test takes a second route (a direct construction, an identity, brute force on a tiny case) to a number
or verdict the tool reports; each fails on the mutant named in its docstring and passes on the code as is.
All NumPy, float64, deterministic, well under a second each.
"""
import math

import numpy as np
import pytest

from tianref import edge, fourier, group_fourier as gf, groups, irreps as ir, metrics, rows, spectra


# --- metrics: the independence proxy's p95 at gamma = 1/2 exactly -------------------------------------

@pytest.mark.parametrize("seed", [2340, 2877, 4672])
def test_p95_at_gamma_one_half_is_numpys_bit_for_bit(seed):
    """m = 11 pairs: NumPy's virtual index (m - 1) 0.95 is 9.5 exactly, gamma = 1/2, where NumPy's
    two-sided lerp takes b - d (1 - t) (t >= 0.5). These seeds are cases where a + d/2 and b - d/2
    round differently, so the p95 must be np.percentile's own branch, bit for bit (the |cos| values by the
    explicit route, G_F's column products through V Q V^T as docs/math.md §4).
    Mutant: metrics.py ``t >= 0.5`` -> ``t > 0.5`` in gradient_field_runs."""
    n, M, K, m = 40, 6, 9, 11
    rng = np.random.default_rng(seed)
    Yhat, y = rng.standard_normal((n, M)), rng.integers(0, M, n)
    V = rng.standard_normal((K, M))
    j = rng.integers(0, K, m)
    jp = (j + 1 + rng.integers(0, K - 1, m)) % K                    # j != jp
    R = np.eye(M)[y] - 1 / M - Yhat
    R = R - R.mean(0)
    VQ = V @ (R.T @ R)
    cn = (VQ * V).sum(1)
    cos = np.abs((VQ[j] * V[jp]).sum(1)) / np.sqrt(cn[j] * cn[jp])
    srt = np.sort(cos)
    assert srt[9] + (srt[10] - srt[9]) * 0.5 != srt[10] - (srt[10] - srt[9]) * 0.5   # the case under test
    _, med, p95 = metrics.gradient_field_metrics(np, Yhat, y, V, j, jp)
    assert float(med) == srt[(m - 1) // 2]
    assert float(p95) == np.percentile(cos, 95)                     # bit for bit


# --- fourier: the no-power floor is far below any real power --------------------------------------------

@pytest.mark.parametrize("M", [11, 12])
def test_a_unit_with_tiny_but_real_power_at_one_frequency_is_pure(M):
    """A unit that is mostly constant (the mean, k = 0, excluded) plus a cosine at k = 2 of relative power
    ~1e-12: all its power at k = 1..k_max is at k = 2, so purity ~1 and k* = 2 (the module docstring: the
    floor 1e-20 M ||w||^2 sits far below any real power). A unit of pure constants has no power: purity 0.
    Mutant: fourier.py floor ``(1e-20 * M)`` -> ``(1e-10 * M)``."""
    a = np.arange(M)
    eps, k = 1e-6, 2
    w = np.ones(M) + eps * np.cos(2 * np.pi * k * a / M)
    W = np.stack([np.concatenate([w, w]), np.ones(2 * M)], axis=1)  # (2M, 2): the tiny cosine, a constant
    P = fourier.unit_spectrum(np, W, M)
    assert P[k - 1, 0] / (W[:, 0] @ W[:, 0]) == pytest.approx(eps ** 2 * M / 4, rel=1e-6, abs=0)   # 2 (eps M/2)^2 / 2M
    cov, _, kstar, purity = fourier.frequency_metrics(np, W, M)
    assert purity[0] > 0.999999 and kstar[0] == k
    assert purity[1] == 0.0
    assert int(cov) == 1


# --- group_fourier: the slide's energy weighs each irrep by 1/d_k ----------------------------------------

@pytest.mark.parametrize("spec", ["S3", "S4"])
@pytest.mark.parametrize("reading", ["product", "tensor"])
def test_energy_slide_on_a_non_abelian_group_by_matrix_irreps(spec, reading):
    """energy_slide = (M/2) sum_{k != 0} (1/d_k) |(d_k/M) t_k|^2 (docs/groups.md §4), with t_k computed here
    from the matrix irreps' traces (irreps.matrix_irrep, not the stored characters): "product"
    t_k = sum S(h1, h2) tr rho_k(h1 h2), "tensor" t_k = sum S(h1, h2) tr rho_k(h1) tr rho_k(h2).
    S3 and S4 have d_k = 2, 3, where a wrong power of d_k shows.
    Mutant: group_fourier.py energy_slide ``0.5 * M / irr.degree`` -> ``0.5 * M * irr.degree``."""
    G = groups.parse_group(spec)
    T, M = G.table, G.order
    dec = ir.decompose(T)
    rng = np.random.default_rng(3)
    wa, wb = rng.standard_normal(M), rng.standard_normal(M)
    S = (wa[:, None] + wb[None, :]) ** 2                             # sigma = x^2
    want = 0.0
    for k, irr in enumerate(dec.irreps):
        if irr.component == 0:
            continue
        chi = np.trace(ir.matrix_irrep(T, dec, k), axis1=1, axis2=2)  # (M,) tr rho_k(g)
        t = (S * chi[T]).sum() if reading == "product" else chi @ S @ chi
        d = irr.degree
        want += 0.5 * M / d * abs(d / M * t) ** 2
    assert max(irr.degree for irr in dec.irreps) > 1
    assert gf.energy_slide(dec, T, wa, wb, reading=reading) == pytest.approx(want, rel=1e-10)


# --- edge: the rounding scale of g2 uses |<a, b>| -------------------------------------------------------

def _edge_state(P=40, w_max=4, pushes=6, seed=0):
    """A ring whose weight-decay parts point against the updates (<a, b> < 0, as coupled Adam's do)."""
    rng = np.random.default_rng(seed)
    spec, st = spectra.init(np, P, w_max), edge.init(np, P, w_max)
    for _ in range(pushes):
        d = rng.standard_normal(P)
        wd = -0.4 * d + 0.05 * rng.standard_normal(P)
        spec, st = edge.push(np, st, spec, d, wd)
    return spec, st


def test_edge_scale_is_a2_plus_twice_abs_ab_plus_b2_by_the_ring_route():
    """window_splits_runs(scale=True)'s seventh value, the scale of g2's rounding that decides the ring
    route (edge.cancels), is ||a||^2 + 2 |<a, b>| + ||b||^2 with a = D u_1, b = D^wd u_1 formed from the
    rings (edge_parts); here <a, b> < 0, so the absolute value matters.
    Mutant: edge.py ``2.0 * xp.abs(ab)`` -> ``2.0 * ab`` in window_splits_runs."""
    spec, st = _edge_state()
    w = 4
    out = edge.window_splits_runs(np, spectra.stack_of_one(spec), edge.stack_of_one(st), w, scale=True)
    (a, b), = edge.edge_parts(np, [spec], [st], w)
    ab = a @ b
    assert ab < 0                                                   # the case under test
    want = a @ a + 2 * abs(ab) + b @ b
    assert float(out[6][0]) == pytest.approx(want, rel=1e-12)
    assert float(out[0][0]) == pytest.approx((a - b) @ (a - b), rel=1e-10)   # g2 by the same route


def test_edge_cos_is_undefined_when_the_gradient_part_is_zero():
    """derived: gfrac = g2 / (g2 + wd2) where g2 + wd2 > 0; cos = cross / sqrt(g2 wd2) only where g2 wd2 > 0
    (module docstring: undefined, an absent key, when g2 wd2 = 0). g2 = 0 exactly (no gradient part): gfrac
    0, no cos, and no ZeroDivisionError.
    Mutant: edge.py derived ``if g2 > 0 and wd2 > 0`` -> ``if g2 >= 0 and wd2 > 0``."""
    assert edge.derived(0.0, 2.0, 0.0) == {"gfrac": 0.0}
    assert edge.derived(2.0, 0.0, 0.0) == {"gfrac": 1.0}
    out = edge.derived(1.0, 4.0, -1.0)
    assert out == {"gfrac": 0.2, "cos": -0.5}


def test_cross_grams_rebuilt_from_a_wrapped_ring_equal_the_pushed_ones():
    """cross_grams (a resume state without C and H) forms them from the rings slot by slot: the values push
    left, every slot of a wrapped ring included (the oldest one too), bit for bit.
    Mutant: edge.py cross_grams ``range(max(0, count - w_max), count)`` -> ``... count - w_max + 1 ...``
    (latent in the training flow, where a push overwrites the oldest slot before it is read)."""
    spec, st = _edge_state(w_max=4, pushes=7)                       # wrapped: oldest slot 3
    got = edge.cross_grams(np, spec, st["buf_wd"], st["clean"])
    np.testing.assert_array_equal(got["C"], st["C"])
    np.testing.assert_array_equal(got["H"], st["H"])


# --- rows: gap23 where sigma3 is exactly 0 --------------------------------------------------------------

@pytest.mark.parametrize("s3", [0.0, -0.0, -1e-18])
def test_gap23_is_nan_when_sigma3_is_not_positive(s3):
    """The row's gap23 = sigma2 / sigma3 only where sigma3 > 0; NaN otherwise (a rank-2 window, e.g. zero
    updates after an eta schedule's drop to 0, whose third eigenvalue is 0 or a rounding hair below).
    Mutant: rows.py ``if vals[2] > 0`` -> ``if vals[2] >= 0`` (sigma2 / 0 = inf)."""
    parts = [("W_sigma", np.array([[3.0, 2.0, s3]])), ("V_sigma", np.array([[5.0, 4.0, 2.0]]))]
    with np.errstate(divide="ignore"):
        row, = rows._host_rows(np, parts, 1, 7)
    assert row["epoch"] == 7 and row["W_sigma"][:2] == [3.0, 2.0]
    assert math.isnan(row["W_gap23"])
    assert row["V_gap23"] == 2.0
