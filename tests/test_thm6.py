"""Theorem 6 identities on seeded random matrices, on every backend (numpy, the strict fake, cupy).

Each tolerance says why it is what it is. For the sizes used here cond(A + ηI) ≤ ~1e5, so a
backward-stable route is accurate to about cond·u ≈ 1e-11 relative; 1e-9 leaves a margin of 100.
"""
import itertools

import numpy as np
import pytest

from tianref import thm6
from tianref.backend import to_host
from tianref.data import init_host
from tianref.errors import InputError

N_SAMPLES, K_UNITS = 14, 18          # n − 1 < K: rank-deficient like the paper's n = 2016 < K = 2048
ETAS = (1e-3, 1e-1, 1.0)

# an 8×8 Sylvester-Hadamard matrix: ±1 columns with exact integer dot products, so cos ties are exact
H8 = np.array([[1]])
for _ in range(3):
    H8 = np.block([[H8, H8], [H8, -H8]])


def features(xp, n=N_SAMPLES, K=K_UNITS, seed=0):
    """x²-like features: squares of Gaussians (correlated after centring, as in the model)."""
    F = np.random.default_rng(seed).standard_normal((n, K)) ** 2          # (n, K) host
    return thm6.centre(xp, xp.asarray(F))


def host(x):
    return to_host(x)


# --- F̃ and B -------------------------------------------------------------------------------------

def test_centre_is_float64_and_column_centred(xp):
    F = np.random.default_rng(1).standard_normal((9, 5)).astype(np.float32)
    Ft = host(thm6.centre(xp, xp.asarray(F)))
    assert Ft.dtype == np.float64 and Ft.shape == (9, 5)
    # mean of 9 float64 numbers of size O(1): rounding ≤ ~1e-16 · 9
    np.testing.assert_allclose(Ft.mean(axis=0), 0.0, atol=1e-15)
    np.testing.assert_allclose(Ft, F.astype(np.float64) - F.astype(np.float64).mean(axis=0), rtol=0, atol=1e-15)


def test_features_from_weights_match_the_model_by_hand(xp):
    M, K = 7, 16
    train_idx, _, W0, _ = init_host(M, K, 20, seed=3)
    Ft = host(thm6.features_from_weights(xp, W0, M, train_idx, "sqr"))
    a, b = train_idx // M, train_idx % M
    F = (W0[a] + W0[M + b]) ** 2                                           # (n, K) σ(XW), σ = x²
    np.testing.assert_allclose(Ft, F - F.mean(axis=0), rtol=0, atol=1e-15)   # same float64 ops up to order


@pytest.mark.parametrize("method", ["eigh", "cholesky"])
@pytest.mark.parametrize("eta", ETAS)
def test_B_is_symmetric_positive_definite_inverse(xp, method, eta):
    Ft = features(xp)
    B = host(thm6.B_inverse(xp, Ft, eta, method))
    A = host(Ft).T @ host(Ft)
    assert B.shape == (K_UNITS, K_UNITS) and B.dtype == np.float64
    np.testing.assert_array_equal(B, B.T)                                  # symmetrised exactly
    lam = np.linalg.eigvalsh(B)
    assert lam.min() > 0                                                   # positive definite
    assert lam.max() <= (1 / eta) * (1 + 1e-9)                             # λ(B) = 1/(λ(A)+η) ≤ 1/η, to cond·u
    # B(A + ηI) = I; the residual of an inverse is ≤ cond·u ≈ 1e-11 here
    np.testing.assert_allclose(B @ (A + eta * np.eye(K_UNITS)), np.eye(K_UNITS), atol=1e-9)


@pytest.mark.parametrize("eta", ETAS)
def test_B_routes_agree_eigh_cholesky_woodbury(xp, eta):
    Ft = features(xp)
    B_e = host(thm6.B_inverse(xp, Ft, eta, "eigh"))
    B_c = host(thm6.B_inverse(xp, Ft, eta, "cholesky"))
    B_w = host(thm6.B_woodbury(xp, Ft, eta))
    ref = np.linalg.inv(host(Ft).T @ host(Ft) + eta * np.eye(K_UNITS))   # independent: LU inverse
    for B in (B_c, B_w, ref):
        # all backward stable up to cond(C)·u ≈ 1e-11 relative (Woodbury's I − core cancels the same way)
        assert np.linalg.norm(B - B_e) / np.linalg.norm(B_e) < 1e-9


# --- Fact 1: the Schur complement ------------------------------------------------------------------

PAIRS = ((0, 1), (3, 11), (K_UNITS - 2, K_UNITS - 1), (7, 2))


@pytest.mark.parametrize("eta", ETAS)
@pytest.mark.parametrize("route", ["push", "gram"])
def test_schur_closed_form_equals_the_definitional_route(xp, eta, route):
    Ft = features(xp)
    B = thm6.B_inverse(xp, Ft, eta)
    for j, l in PAIRS:
        S = host(thm6.S_direct(xp, Ft, eta, j, l, route))                 # (2, 2)
        direct = float(host(thm6.r_exact_direct(xp, Ft, eta, j, l, route)))
        closed = float(host(thm6.r_exact_closed(B, j, l)))
        # two independent backward-stable routes: relative agreement ~cond·u ≈ 1e-11
        assert abs(closed - direct) <= 1e-9 * abs(direct), (j, l, closed, direct)
        # B_TT = S⁻¹ entry by entry (same reasoning)
        B_TT = host(B)[np.ix_([j, l], [j, l])]
        np.testing.assert_allclose(np.linalg.inv(S), B_TT, rtol=1e-9)
        assert np.linalg.det(S) > 0                                        # S is SPD for η > 0


def test_closed_form_is_vectorised_over_index_arrays(xp):
    Ft = features(xp)
    B = thm6.B_inverse(xp, Ft, 0.1)
    j = xp.asarray(np.array([0, 3, 5]))
    l = xp.asarray(np.array([1, 4, 9]))
    r = host(thm6.r_exact_closed(B, j, l))
    assert r.shape == (3,)
    for i, (a, b) in enumerate(((0, 1), (3, 4), (5, 9))):
        assert r[i] == float(host(thm6.r_exact_closed(B, a, b)))          # same float ops: bitwise


def test_sign_rule_holds_for_every_pair_by_the_direct_route(xp):
    """sgn(B_jℓ) = −sgn(r_jℓ) with r from the definitional route, not from eq. (2) (which is circular)."""
    n, K, eta = 8, 10, 1e-2
    Ft = features(xp, n, K, seed=5)
    B = host(thm6.B_inverse(xp, Ft, eta))
    for j, l in itertools.combinations(range(K), 2):
        r = float(host(thm6.r_exact_direct(xp, Ft, eta, j, l)))
        assert np.sign(B[j, l]) == -np.sign(r) != 0, (j, l)


# --- Fact 2: the full projector ---------------------------------------------------------------------

@pytest.mark.parametrize("eta", ETAS)
def test_full_projector_residual_is_minus_eta_squared_B(xp, eta):
    Ft = features(xp)
    B = thm6.B_inverse(xp, Ft, eta)
    j = xp.asarray(np.array([p[0] for p in PAIRS]))
    l = xp.asarray(np.array([p[1] for p in PAIRS]))
    ident = host(thm6.r_approx_identity(B, eta, j, l))
    direct = host(thm6.r_approx(xp, Ft, B, j, l))
    # the literal f̃ᵀ(I − F̃BF̃ᵀ)f̃ subtracts terms of size ‖f̃‖² ≈ 1e1 to leave η²|B_jℓ|: lose ~cond digits
    np.testing.assert_allclose(direct, ident, rtol=0, atol=1e-6 * np.abs(ident).max() + 1e-12)
    # cancellation-free check: P_η = η(F̃F̃ᵀ + ηI)⁻¹ (push-through)
    F = host(Ft)
    P_eta = eta * np.linalg.inv(F @ F.T + eta * np.eye(F.shape[0]))
    push = np.array([F[:, a] @ P_eta @ F[:, b] for a, b in PAIRS])
    np.testing.assert_allclose(push, ident, rtol=1e-9)                     # no cancellation: cond·u


# --- Fact 3: the published formula --------------------------------------------------------------------

@pytest.mark.parametrize("eta", (1e-3, 2e-4))
def test_paper_B_has_the_signs_of_B_but_its_residual_is_not_r(xp, eta):
    Ft = features(xp)
    F = host(Ft)
    A = F.T @ F
    B = host(thm6.B_inverse(xp, Ft, eta))
    Bp = host(thm6.B_paper(xp, Ft, eta))
    off = ~np.eye(K_UNITS, dtype=bool)
    np.testing.assert_array_equal(np.sign(Bp[off]), np.sign(B[off]))
    # B_paper = B/η − ((1 − η)/η²) I; the two routes agree to cond·u relative to the 1/η² scale
    np.testing.assert_allclose(Bp, B / eta - (1 - eta) / eta ** 2 * np.eye(K_UNITS),
                               rtol=0, atol=1e-9 / eta ** 2)
    pairs = [(j, l) for j, l in itertools.combinations(range(K_UNITS), 2)]
    j = xp.asarray(np.array([p[0] for p in pairs]))
    l = xp.asarray(np.array([p[1] for p in pairs]))
    rp = host(thm6.r_paper(xp, Ft, thm6.B_paper(xp, Ft, eta), j, l))
    jh, lh = host(j), host(l)
    formula = (-eta * B[jh, lh] - (1 - eta) / eta * A[jh, lh] + (1 - eta) / eta ** 2 * (A @ A)[jh, lh])
    # both sides are O(‖A‖²/η²) sums; agreement to 1e-6 of that scale
    np.testing.assert_allclose(rp, formula, rtol=0, atol=1e-6 * np.abs(formula).max())
    r = host(thm6.r_exact_closed(thm6.B_inverse(xp, Ft, eta), j, l))
    assert np.median(np.abs(rp) / np.abs(r)) > 1e3                         # not the residual: far larger


# --- pairs ------------------------------------------------------------------------------------------

def test_top_pairs_breaks_exact_ties_by_j_then_l(xp):
    cols = [1, 2, 1, 3, 1, 2, 0, 4]                      # Hadamard columns; column 0 (all ones) centres to 0
    signs = [1, 1, -1, 1, 1, -1, 1, 1]
    F = (H8[:, cols] * np.array(signs)).astype(np.float64)                # (8, 8)
    Ft = thm6.centre(xp, xp.asarray(F))
    # brute force with exact integers: |cos| = 1 for equal or opposite columns, 0 otherwise; zero column: 0
    Fh = F - F.mean(axis=0)
    expected = []
    for j, l in itertools.combinations(range(8), 2):
        d = int(round(Fh[:, j] @ Fh[:, l]))
        nj, nl = int(round(Fh[:, j] @ Fh[:, j])), int(round(Fh[:, l] @ Fh[:, l]))
        expected.append((-(abs(d) / np.sqrt(nj * nl) if nj and nl else 0.0), j, l))
    expected.sort()
    for N in (1, 3, 4, 6, 28, 100):
        j, l, cos = thm6.top_pairs(xp, Ft, N)
        got = list(zip(host(j).tolist(), host(l).tolist()))
        assert got == [(a, b) for _, a, b in expected[:min(N, 28)]], N
    j, l, cos = thm6.top_pairs(xp, Ft, 4)
    np.testing.assert_allclose(host(cos), [-1.0, 1.0, -1.0, -1.0], rtol=1e-15)  # signed cos: (0,2) opposite, ...
    assert list(zip(host(j).tolist(), host(l).tolist())) == [(0, 2), (0, 4), (1, 5), (2, 4)]


def test_top_pairs_order_matches_a_brute_force_sort(xp):
    Ft = features(xp, 10, 12, seed=2)
    F = host(Ft)
    nrm = np.linalg.norm(F, axis=0)
    ref = sorted((-abs(F[:, a] @ F[:, b] / (nrm[a] * nrm[b])), a, b) for a, b in itertools.combinations(range(12), 2))
    j, l, cos = thm6.top_pairs(xp, Ft, 15)
    assert list(zip(host(j).tolist(), host(l).tolist())) == [(a, b) for _, a, b in ref[:15]]
    # cos from A = F̃ᵀF̃ there, from column norms here: a few ulp of values <= 1
    np.testing.assert_allclose(np.abs(host(cos)), [-c for c, _, _ in ref[:15]], rtol=1e-14)


# --- η = 0 ------------------------------------------------------------------------------------------

def test_eta_zero_raises_when_B_does_not_exist(xp):
    Ft = features(xp)                                                      # n − 1 = 13 < K = 18
    for fn in (lambda: thm6.B_inverse(xp, Ft, 0.0, "eigh"), lambda: thm6.B_inverse(xp, Ft, 0.0, "cholesky"),
               lambda: thm6.B_woodbury(xp, Ft, 0.0), lambda: thm6.B_paper(xp, Ft, 0.0),
               lambda: thm6.summarize_checkpoint(xp, Ft, 0.0, n_top=5)):
        with pytest.raises(InputError, match="does not exist"):
            fn()
    with pytest.raises(InputError, match=">= 0"):
        thm6.B_inverse(xp, Ft, -1e-3)


def test_eta_zero_with_full_column_rank(xp):
    """n − 1 ≥ K: B = A⁻¹ exists; eq. (2) still matches the definitional route (the K−2 system)."""
    Ft = features(xp, 30, 6, seed=4)
    B = thm6.B_inverse(xp, Ft, 0.0)
    np.testing.assert_allclose(host(B), np.linalg.inv(host(Ft).T @ host(Ft)), rtol=1e-10)
    for j, l in ((0, 1), (2, 5)):
        direct = float(host(thm6.r_exact_direct(xp, Ft, 0.0, j, l)))
        assert abs(float(host(thm6.r_exact_closed(B, j, l))) - direct) <= 1e-9 * abs(direct)
    with pytest.raises(InputError, match="divides by eta"):
        thm6.B_woodbury(xp, Ft, 0.0)
    singular = thm6.centre(xp, xp.asarray(np.repeat(host(Ft)[:, :3], 2, axis=1)))  # duplicated columns
    with pytest.raises(InputError, match="singular"):
        thm6.B_inverse(xp, singular, 0.0)


def test_pinv_variant_is_the_pseudo_inverse_and_has_no_exact_route(xp):
    Ft = features(xp)
    F = host(Ft)
    # numpy's pinv uses an SVD of A: independent of our eigh; rcond-level agreement
    np.testing.assert_allclose(host(thm6.B_pinv(xp, Ft)), np.linalg.pinv(F.T @ F, rcond=1e-12, hermitian=True),
                               rtol=1e-8, atol=1e-8 * np.abs(np.linalg.pinv(F.T @ F)).max())
    out = thm6.summarize_checkpoint(xp, Ft, 0.0, n_top=10, pinv=True)["summary"]
    assert out["sign_match_exact"] is None and out["sign_match_paper"] is None
    assert out["median_abs_r_approx"] < 1e-10                              # (I − F̃A⁺F̃ᵀ)f̃ = 0 up to rounding
    with pytest.raises(InputError, match="--pinv"):
        thm6.summarize_checkpoint(xp, Ft, 1e-3, pinv=True)


def test_eta_zero_refuses_a_lambda_min_below_K_u_lambda_max(xp):
    """At eta = 0, B exists only while lambda_min(A) > K u lambda_max(A): F̃ = Q diag(s) V^T (n = 20,
    K = 10) with s^2 = (1, ..., 1, 5u) is singular to that rule (5u < 10u), by construction, and refused by
    both methods; s_min^2 = 40u is accepted. Forming A and eigh move the computed lambda_min by up to ~5u
    (seen over seeds), so 5u stays below the cut 10u and 40u above it whatever the rounding; this seed's
    computed value (~5.7u) also lies above u, which a cut at u lambda_max (no factor K) would accept."""
    u = 2.0 ** -53
    rng = np.random.default_rng(6)
    Q = np.linalg.qr(rng.standard_normal((20, 10)))[0]                      # (n, K) orthonormal columns
    V = np.linalg.qr(rng.standard_normal((10, 10)))[0]                      # (K, K) orthogonal
    for lam_min, ok in ((5 * u, False), (40 * u, True)):
        s = np.sqrt(np.r_[np.ones(9), lam_min])
        F = xp.asarray(Q @ np.diag(s) @ V.T)                                # (n, K), A = V diag(s^2) V^T
        for method in ("eigh", "cholesky"):
            if ok:
                assert np.isfinite(host(thm6.B_inverse(xp, F, 0.0, method))).all()
            else:
                with pytest.raises(InputError, match="singular"):
                    thm6.B_inverse(xp, F, 0.0, method)


def test_pinv_drops_eigenvalues_below_its_tolerance(xp):
    """B_pinv's cut is tol = max(n, K) u lambda_max: F̃ = s_1 q_1 v_1^T + s_2 q_2 v_2^T (n = 4, K = 40,
    orthonormal q, v) with s_1^2 = 1 and s_2^2 = 20u, between min(n, K) u = 4u and max(n, K) u = 40u. The
    second direction is rounding-size and must be cut, so B_pinv = v_1 v_1^T / s_1^2 by construction.
    The computed eigenvalue 20u carries an error of a few u (eigh's backward error ~ u ||A||), well inside
    the factor 2 to either cut; kept, it would add 1/(20u) ~ 5e14 to B. Tolerance 1e-12: the v_1 v_1^T
    part is accurate to ~1e-15."""
    u = 2.0 ** -53
    rng = np.random.default_rng(4)
    q = np.linalg.qr(rng.standard_normal((4, 2)))[0]                       # (n, 2) orthonormal
    v = np.linalg.qr(rng.standard_normal((40, 2)))[0]                      # (K, 2) orthonormal
    F = q @ np.diag([1.0, np.sqrt(20 * u)]) @ v.T                          # (n, K)
    B = host(thm6.B_pinv(xp, xp.asarray(F)))
    np.testing.assert_allclose(B, np.outer(v[:, 0], v[:, 0]), rtol=0, atol=1e-12)


# --- floating-point certainty -------------------------------------------------------------------------

def test_sign_certainty_refuses_signs_of_rounding_noise(xp):
    """Orthogonal columns: B is diagonal in exact arithmetic, so no off-diagonal sign is certain."""
    F = np.hstack([H8[:, 1:], H8[:, 1:] * 2.0])[:, [0, 1, 2, 3, 4, 5, 6]]  # 7 mutually orthogonal columns
    F = np.hstack([F, np.zeros((8, 3))])                                   # K = 10 > n: rank-deficient
    Ft = thm6.centre(xp, xp.asarray(F))
    out = thm6.summarize_checkpoint(xp, Ft, 1e-2, n_top=20, method="eigh")["summary"]
    assert out["n_sign_certain_exact"] == 0
    # and on generic data every listed sign is certain, with the bound above the routes' disagreement
    Ft = features(xp)
    s = thm6.summarize_checkpoint(xp, Ft, 1e-2, n_top=30, method="eigh")["summary"]
    assert s["n_sign_certain_exact"] == 30
    assert s["B_route_max_abs_diff"] <= s["sign_error_bound"]


# --- the per-checkpoint summary ----------------------------------------------------------------------

REQUIRED = ("sign_match_exact", "sign_match_approx", "sign_match_paper", "frac_B_neg_on_pos_cos",
            "median_abs_cos", "audit_max_rel_diff", "n_pairs", "n_sign_certain_exact", "B_route_rel_diff",
            "approx_identity_max_rel_gap", "median_abs_r_exact", "median_abs_r_approx")


def test_summary_top_mode(xp):
    Ft = features(xp)
    res = thm6.summarize_checkpoint(xp, Ft, 1e-2, n_top=25, n_audit=4)
    s, pairs = res["summary"], res["pairs"]
    assert set(REQUIRED) <= set(s) and s["n_pairs"] == 25 and len(pairs) == 25
    assert s["sign_match_exact"] == 1.0 and s["sign_match_approx"] == 1.0
    assert s["n_audit"] == 4 and s["audit_max_rel_diff"] < 1e-9          # cond·u, see module docstring
    assert s["B_route_rel_diff"] < 1e-9
    assert s["approx_identity_max_rel_gap"] < 1e-6                        # the literal route cancels
    B = host(thm6.B_inverse(xp, Ft, 1e-2))
    cos = np.array([p["cos"] for p in pairs])
    Bjl = np.array([p["B"] for p in pairs])
    # the same B recomputed (same route, same input): equal up to run-to-run BLAS rounding
    np.testing.assert_allclose(Bjl, [B[p["j"], p["l"]] for p in pairs], rtol=1e-12)
    assert s["frac_B_neg_on_pos_cos"] == np.mean(Bjl[cos > 0] < 0)
    assert s["median_abs_cos"] == np.median(np.abs(cos))
    sm_paper = np.mean(np.sign([p["B_paper"] for p in pairs]) == -np.sign([p["r_paper"] for p in pairs]))
    assert s["sign_match_paper"] == sm_paper


def test_all_pairs_mode_agrees_with_listing_every_pair(xp):
    Ft = features(xp)
    P = K_UNITS * (K_UNITS - 1) // 2
    top = thm6.summarize_checkpoint(xp, Ft, 1e-2, n_top=P, n_audit=2)
    allp = thm6.summarize_checkpoint(xp, Ft, 1e-2, all_pairs=True, n_audit=2, block=5)["summary"]
    t = top["summary"]
    assert allp["n_pairs"] == t["n_pairs"] == P and allp["n_pos_cos"] == t["n_pos_cos"]
    for k in ("sign_match_exact", "sign_match_approx", "sign_match_paper", "frac_B_neg_on_pos_cos",
              "n_sign_certain_exact"):
        assert allp[k] == t[k], k
    for k in ("median_abs_cos", "median_abs_r_exact"):
        # the same values gathered in another order: equal up to a few ulp; abs=0 because pytest's
        # implicit abs=1e-12 would exceed values this small (|r| ~ 1e-2 here)
        assert allp[k] == pytest.approx(t[k], rel=1e-12, abs=0), k
    # the audit is the same route on the same pairs in both modes: identical (it is ~1e-13, so a
    # tolerance with pytest's implicit abs=1e-12 would accept any value)
    assert allp["audit_max_rel_diff"] == t["audit_max_rel_diff"]
    r = np.array([p["r_exact"] for p in top["pairs"]])
    np.testing.assert_allclose([allp["r_exact_quantiles"][k] for k in ("0", "0.5", "1")],
                               np.quantile(r, [0, 0.5, 1]), rtol=1e-12)


def test_all_pairs_max_rel_gap_does_not_depend_on_the_row_blocks(xp):
    """approx_identity_max_rel_gap is max|r_approx − (−η²B)| / max|η²B| over all pairs: a max over the
    row blocks, so the block size cannot change it. The residuals are rounding noise (~1e-9 relative here),
    so another row partition may round them differently but not change their scale: rel=0.25. Summing the
    per-block maxima of either operand instead would move it by a factor of about the number of blocks (6)."""
    Ft = features(xp)
    one = thm6.summarize_checkpoint(xp, Ft, 1e-2, all_pairs=True, block=K_UNITS)["summary"]
    many = thm6.summarize_checkpoint(xp, Ft, 1e-2, all_pairs=True, block=3)["summary"]
    assert many["approx_identity_max_rel_gap"] == pytest.approx(one["approx_identity_max_rel_gap"], rel=0.25)


def test_more_audited_than_listed_pairs_lists_n_top(xp):
    """n_audit > n_top: the audit covers the n_audit most similar pairs, the listing only the n_top first."""
    Ft = features(xp)
    res = thm6.summarize_checkpoint(xp, Ft, 1e-2, n_top=2, n_audit=5)
    s, pairs = res["summary"], res["pairs"]
    assert s["n_pairs"] == 2 and len(pairs) == 2 and s["n_audit"] == 5
    j, l, _ = thm6.top_pairs(np, host(Ft), 2)                     # the two most similar pairs on the host
    assert [(p["j"], p["l"]) for p in pairs] == list(zip(host(j).tolist(), host(l).tolist()))

def test_every_backend_gives_the_numpy_numbers(xp):
    """The fake backend refuses implicit host transfers; reaching here proves the discipline."""
    Ft_np, Ft = features(np), features(xp)
    for kw in ({"n_top": 12}, {"all_pairs": True, "block": 4}):
        a = thm6.summarize_checkpoint(np, Ft_np, 1e-2, **kw)
        b = thm6.summarize_checkpoint(xp, Ft, 1e-2, **kw)
        for k, v in a["summary"].items():
            if k.endswith("_rel_diff"):
                # a rounding-error diagnostic (two routes to B, or the audit), ~1e-13 on any backend:
                # its value depends on the BLAS's summation order (cuBLAS gave 2.4e-13 where OpenBLAS
                # gave 1.9e-13 on the H200 device check), so both must only be at rounding level
                assert v < 1e-10 and b["summary"][k] < 1e-10, k
            elif isinstance(v, float):
                assert b["summary"][k] == pytest.approx(v, rel=1e-9, abs=1e-300), k   # cupy: other BLAS
            elif not isinstance(v, dict):
                assert b["summary"][k] == v, k
