"""Theorem 6 details that test_thm6.py's identities cannot see: the sign-certainty rule, the size of
the floating-point bound δ, and the float64 forward pass. Each test names its independent source.

The rules are in docs/theorem6.md §6 (δ and "sign_certain") and §8 (F from a float64 copy of the weights).
"""
from fractions import Fraction

import numpy as np
import pytest

from tianref import thm6
from tianref.backend import to_host
from tianref.data import init_host
from tianref.thm6 import summary as S
from tianref.thm6.theorem import U64

# --- sign certainty: |B_jl| > δ AND B_jjB_ll − B_jl² > 0 --------------------------------------------

DELTA = 0.01
# (B_jl, det) per pair and whether its sign is certain; det ≤ 0 cannot occur for an exact positive
# definite B (it is a 2×2 principal minor), only through rounding, so these are hand-made inputs
CASES = [(-1.0, 2.0, True),      # far from 0, det > 0
         (-1.0, -0.5, False),    # far from 0 but det < 0
         (-1.0, 0.0, False),     # det exactly 0
         (1e-3, 2.0, False),     # det > 0 but |B_jl| < δ
         (-DELTA, 2.0, False),   # |B_jl| = δ: not strictly above the bound
         (0.5, 1.0, True)]       # positive B_jl, det > 0


def _arr(xp):
    B = np.array([c[0] for c in CASES])
    n = len(CASES)
    return {"j": xp.asarray(np.arange(n)), "l": xp.asarray(np.arange(n) + 1),
            "cos": xp.asarray(np.full(n, 0.5)), "B": xp.asarray(B),
            "r_approx": xp.asarray(-B), "r_exact": xp.asarray(-B),
            "r_approx_identity": xp.asarray(-B), "det": xp.asarray(np.array([c[1] for c in CASES]))}


def test_sign_certain_needs_both_the_bound_and_a_positive_determinant(xp):
    want = [c[2] for c in CASES]
    rows = S._pair_rows(_arr(xp), DELTA)
    assert [r["sign_certain"] for r in rows] == want
    assert S._top_summary(xp, _arr(xp), DELTA)["n_sign_certain_exact"] == sum(want) == 2


def test_all_pairs_sign_certain_needs_a_positive_determinant(xp):
    """The all-pairs route on a hand-made symmetric 'B' with one non-positive 2×2 minor."""
    B = np.array([[1.0, -2.0, 1e-3],
                  [-2.0, 1.0, 0.5],
                  [1e-3, 0.5, 1.0]])
    # pair (0,1): |B| = 2 > δ but det = 1 − 4 < 0 -> not certain; (0,2): |B| < δ -> not certain;
    # (1,2): |B| = 0.5 > δ and det = 1 − 0.25 > 0 -> certain
    Ft = xp.asarray(np.random.default_rng(0).standard_normal((5, 3)))
    out = S.all_pairs_summary(xp, Ft, 0.1, xp.asarray(B), None, DELTA, block=2, exact=True)
    assert out["n_sign_certain_exact"] == 1


# --- the size of δ ---------------------------------------------------------------------------------

def test_sign_error_bound_literal_values():
    """δ by hand from docs/theorem6.md §6 on F̃ with orthogonal columns: A = F̃ᵀF̃ = 4I, n = 4, K = 2, η = 1.

    Without eigenvalues: λ_max(C) ≤ tr(A) + η = 9, λ_min(C) ≥ η = 1, ‖B‖₂ ≤ 1,
        e_C = γ_8·8 + γ_2·9 ≈ 82u,  δ ≈ 1²·82u + γ_4·1 = 86u.
    With eigh's λ = 4 (widened by γ_2·4): λ_max(C) ≈ λ_min(C) ≈ 5, ‖B‖₂ ≈ 1/5,
        e_C = γ_8·8 + γ_2·5 ≈ 74u,  δ ≈ 74u/25 + 4u/5 = 3.76u.
    The terms left out are O(u²) relative, so rel = 1e-12 (γ_m = mu/(1 − mu) differs from mu by m²u²).
    """
    Ft = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert (Ft.T @ Ft == 4 * np.eye(2)).all()
    assert thm6.sign_error_bound(np, Ft, 1.0) == pytest.approx(86 * U64, rel=1e-12, abs=0)
    assert thm6.sign_error_bound(np, Ft, 1.0, 4.0, 4.0) == pytest.approx(3.76 * U64, rel=1e-12, abs=0)
    assert U64 == 2.0 ** -53                                   # LAPACK dlamch('E') in double precision
    # eigh's lambda_min(A) is widened DOWN by the same slack gamma_2 lambda_max = 8u and clamped at 0: a
    # lambda_min of 8u gives lambda_min(C) = eta (not eta + 8u). With eta = 200u: ||B||_2 = 1/(200u),
    # e_C = gamma_8 8 + gamma_2 (4 + eta) ~ 72u, delta = ||B||^2 e_C / (1 - ||B|| e_C) + gamma_4 ||B||; the
    # terms left out are O(100 u) relative (eta and the slack inside lambda_max(C)), so rel = 1e-9, while an
    # unwidened lambda_min (eta + 8u) would move delta by ~8%
    eta, e_C = 200 * U64, 72 * U64
    want = e_C / eta ** 2 / (1 - e_C / eta) + 4 * U64 / eta
    assert thm6.sign_error_bound(np, Ft, eta, 4.0, 8 * U64) == pytest.approx(want, rel=1e-9, abs=0)


def _exact_inverse(C):
    """Gauss-Jordan in exact rationals (K is tiny)."""
    K = len(C)
    M = [[Fraction(C[i][j]) for j in range(K)] + [Fraction(int(i == j)) for j in range(K)] for i in range(K)]
    for c in range(K):
        p = max(range(c, K), key=lambda r: abs(M[r][c]))
        M[c], M[p] = M[p], M[c]
        piv = M[c][c]
        M[c] = [x / piv for x in M[c]]
        for r in range(K):
            if r != c and M[r][c] != 0:
                f = M[r][c]
                M[r] = [a - f * b for a, b in zip(M[r], M[c])]
    return [[M[i][K + j] for j in range(K)] for i in range(K)]


@pytest.mark.parametrize("noise", [1e-2, 1e-4, 1e-6])
def test_sign_error_bound_covers_the_true_error_of_B(noise):
    """δ ≥ max |B̂_jl − B_jl|, B exact in rationals from the same float64 F̃ (an independent route).

    Nearly collinear columns and η = 1e-9 make C ill-conditioned, so the true error of the float64
    B̂ is large; measured, δ exceeds it by a factor of ~100-260 (see the assertion message), so a bound
    missing a factor such as ‖B‖₂ or the γ_K term falls below the true error.
    """
    rng = np.random.default_rng(0)
    n, K, eta = 10, 6, 1e-9
    F = rng.standard_normal((n, 2)) @ rng.standard_normal((2, K)) + noise * rng.standard_normal((n, K))
    Ft = F - F.mean(axis=0)
    B, lam = thm6.B_eigh(np, Ft, eta)
    delta = thm6.sign_error_bound(np, Ft, eta, float(lam.max()), float(lam.min()))
    Fx = [[Fraction(float(v)) for v in row] for row in Ft]
    C = [[sum(Fx[s][i] * Fx[s][j] for s in range(n)) + (Fraction(eta) if i == j else 0) for j in range(K)]
         for i in range(K)]
    Bx = _exact_inverse(C)
    err = max(abs(float(Fraction(float(B[i, j])) - Bx[i][j])) for i in range(K) for j in range(K))
    assert err > 0 and delta >= err, (delta, err)
    assert delta < 1e4 * err, (delta, err)                   # and not vacuous: within 4 decades


# --- F̃ from float32 weights is computed in float64 ---------------------------------------------------

def test_features_from_float32_weights_use_a_float64_forward_pass(xp):
    """The product and square are done on float64(W): compare with the explicit float64 construction.

    A float32 forward pass rounds σ(XW) to ~6e-8 relative, ~1e-9 absolute here, far above the
    float64 agreement (a few ulp of values ~1e-2, so atol 1e-16) required below.
    """
    M, K = 7, 16
    train_idx, _, W0, _ = init_host(M, K, 20, seed=3)
    W32 = (W0 * 3).astype(np.float32)
    Ft = to_host(thm6.features_from_weights(xp, xp.asarray(W32), M, train_idx, "sqr"))
    a, b = train_idx // M, train_idx % M
    W64 = W32.astype(np.float64)
    F = (W64[a] + W64[M + b]) ** 2                                         # (n, K) in float64
    assert Ft.dtype == np.float64
    np.testing.assert_allclose(Ft, F - F.mean(axis=0), rtol=0, atol=1e-16)
    F32 = (W32[a] + W32[M + b]) ** 2                                       # the float32 route differs
    assert np.abs((F32 - F32.mean(axis=0)) - (F - F.mean(axis=0))).max() > 1e-12


def test_all_pairs_blocks_ending_on_the_last_row_alone(xp):
    """K % block == 1 leaves a last block holding only row K−1, which has no pair ℓ > j."""
    Ft = thm6.centre(xp, xp.asarray(np.random.default_rng(2).standard_normal((12, 17)) ** 2))
    one = S.all_pairs_summary(xp, Ft, 1e-2, thm6.B_inverse(xp, Ft, 1e-2), None, 1e-9, block=17)
    split = S.all_pairs_summary(xp, Ft, 1e-2, thm6.B_inverse(xp, Ft, 1e-2), None, 1e-9, block=4)
    assert split["n_pairs"] == one["n_pairs"] == 17 * 16 // 2
    for k in ("sign_match_exact", "n_sign_certain_exact", "n_pos_cos", "frac_B_neg_on_pos_cos"):
        assert split[k] == one[k], k


def test_numpy_summary_matches_a_brute_force_construction():
    """The anchor of the cross-backend test (every backend must give the NumPy numbers): the NumPy
    numbers themselves against a construction that shares no code with tianref.thm6 — B by
    np.linalg.inv, cos by normalising columns, the top pairs by sorting all of them, and r by solving
    the leave-two-out system of the definition for each pair."""
    rng = np.random.default_rng(7)
    F = rng.standard_normal((14, 18)) ** 2
    Ft = F - F.mean(axis=0)
    eta, N = 1e-2, 12
    out = thm6.summarize_checkpoint(np, Ft, eta, n_top=N)
    s, pairs = out["summary"], out["pairs"]
    A = Ft.T @ Ft
    B = np.linalg.inv(A + eta * np.eye(18))
    U = Ft / np.linalg.norm(Ft, axis=0)
    cos = U.T @ U
    allp = sorted(((abs(cos[j, l]), j, l) for j in range(18) for l in range(j + 1, 18)), reverse=True)
    top = [(j, l) for _, j, l in allp[:N]]
    assert [(p["j"], p["l"]) for p in pairs] == top                      # no near-ties among these
    c = np.array([cos[j, l] for j, l in top])
    b = np.array([B[j, l] for j, l in top])
    r = []
    for j, l in top:                                                      # r_jl = f_jᵀ P_{η,−jl} f_l
        rest = [k for k in range(18) if k not in (j, l)]
        Fm = Ft[:, rest]
        P = np.eye(14) - Fm @ np.linalg.solve(Fm.T @ Fm + eta * np.eye(16), Fm.T)
        r.append(Ft[:, j] @ P @ Ft[:, l])
    assert s["sign_match_exact"] == np.mean(np.sign(b) == -np.sign(r)) == 1.0   # Theorem 6
    assert s["frac_B_neg_on_pos_cos"] == np.mean(b[c > 0] < 0)
    # |cos| by two routes (A-based there, column-normalised here): rounding of values <= 1
    assert s["median_abs_cos"] == pytest.approx(np.median(np.abs(c)), rel=0, abs=1e-14)
    # r by two routes (closed form there, per-pair solve here): cond(C) ~ 1e3..1e5 times u
    np.testing.assert_allclose([p["r_exact"] for p in pairs], r, rtol=1e-8)


def test_thm6_on_a_run_near_divergence_fails_in_one_line_naming_the_epoch(tmp_path):
    """SGD at lr 1e4 makes the weights of step 3 huge but finite; F~^T F~ + eta I is then not positive
    definite in float64 and the Cholesky factorisation raised NumPy's LinAlgError: a traceback, exit 1.
    Now one 'Error:' line naming the epoch and why, exit 1, and no file written."""
    from click.testing import CliRunner
    from tianref.cli import main
    run = tmp_path / "div"
    r = CliRunner().invoke(main, ["train", "--out", str(run), "--M", "11", "--K", "64", "--n-train", "60",
                                  "--epochs", "40", "--optimizer", "sgd", "--lr", "1e4", "--dtype", "float64"])
    assert r.exit_code == 1 and "non-finite at epoch 3" in r.stderr, r.output
    out = tmp_path / "t6.json"
    r = CliRunner().invoke(main, ["thm6", "--run", str(run), "--at-epochs", "3", "--json", str(out)])
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("Error")]
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output      # not an uncaught error
    assert len(err) == 1 and err[0].startswith("Error: epoch 3 (") and "Cholesky" in err[0], r.stderr
    assert not out.exists()
    # the eigh route gets through, with numbers that mean nothing (exit 0, 'certain 0'): now said in a line
    import warnings
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        r = CliRunner().invoke(main, ["thm6", "--run", str(run), "--at-epochs", "0,3", "--method", "eigh"])
    assert r.exit_code == 0, r.output
    assert not [w for w in seen if issubclass(w.category, RuntimeWarning)]   # NumPy's overflow: not printed
    warn = [ln for ln in r.stdout.splitlines() if "warning: B is not determined" in ln]
    assert len(warn) == 1 and warn[0].startswith("epoch 3: "), r.stdout     # the initial state is sound
