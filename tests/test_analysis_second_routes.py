"""Numbers and verdicts of thm6/summary.py, analysis/diagnostics.py, analysis/edge_runs.py and groups_expr.py
that a mutation audit found unguarded. Each test checks a reported number or verdict against a second,
independent route (a brute-force definition, an exact scaling identity, a hand-made input)."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from tianref import thm6
from tianref.analysis import diagnostics as diag
from tianref.analysis import edge_runs
from tianref.cli import main
from tianref.errors import InputError, RunFailure
from tianref.groups_expr import MAX_LEN, expr_table
from tianref.thm6 import summary as S

N, K = 14, 18


def _features(seed=0):
    F = np.random.default_rng(seed).standard_normal((N, K)) ** 2
    return thm6.centre(np, F)


# --- thm6 summary -------------------------------------------------------------------------------

def test_cond_C_is_the_condition_number_of_A_plus_eta_I():
    """cond_C = (lambda_max + eta) / (lambda_min + eta) for C = A + eta I; numpy's cond of C directly.
    eta = 1 is comparable to lambda_max, so dropping eta from either end moves it by far more than 1e-9."""
    Ft = _features()
    eta = 1.0
    s = thm6.summarize_checkpoint(np, Ft, eta, n_top=5, method="eigh")["summary"]
    C = Ft.T @ Ft + eta * np.eye(K)
    lam = np.linalg.eigvalsh(C)
    assert s["cond_C"] == pytest.approx(lam[-1] / lam[0], rel=1e-9)
    assert s["cond_C"] == pytest.approx(np.linalg.cond(C), rel=1e-9)


def test_B_route_rel_diff_is_relative_and_scale_free():
    """B_route_rel_diff = ||B - B_woodbury||_F / ||B||_F (by hand from the two routes), and scaling F by
    2^k and eta by 4^k scales every float operation of both routes exactly (B -> B / 4^k bit for bit),
    so the relative difference is unchanged while the absolute one shrinks by 4^k."""
    Ft, eta = _features(), 1e-2
    s = thm6.summarize_checkpoint(np, Ft, eta, n_top=5)["summary"]
    B = thm6.B_inverse(np, Ft, eta)
    Bw = thm6.B_woodbury(np, Ft, eta)
    want = np.linalg.norm(B - Bw) / np.linalg.norm(B)
    assert want > 0
    assert s["B_route_rel_diff"] == pytest.approx(want, rel=1e-6)
    k = 4
    s2 = thm6.summarize_checkpoint(np, Ft * 2.0 ** k, eta * 4.0 ** k, n_top=5)["summary"]
    assert s2["B_route_rel_diff"] == pytest.approx(s["B_route_rel_diff"], rel=1e-12)
    assert s2["B_route_max_abs_diff"] == pytest.approx(s["B_route_max_abs_diff"] / 4.0 ** k, rel=1e-12)


def test_audit_rel_diff_is_relative_to_the_larger_value(monkeypatch):
    """A definitional route that returns 3 r (planted): |r - 3r| / max(|r|, |3r|) = 2/3 on every pair."""
    orig = S.r_exact_direct
    monkeypatch.setattr(S, "r_exact_direct", lambda xp, F, eta, j, l: 3.0 * orig(xp, F, eta, j, l))
    s = thm6.summarize_checkpoint(np, _features(), 1e-2, n_top=5, n_audit=3)["summary"]
    assert s["n_audit"] == 3
    assert s["audit_max_rel_diff"] == pytest.approx(2.0 / 3.0, rel=1e-9)


def test_all_pairs_identity_gap_uses_eta_squared():
    """r_approx = -eta^2 B_jl (eq. 3) holds to rounding for every pair, so the all-pairs
    approx_identity_max_rel_gap is tiny (as the top mode's, tested < 1e-6); a brute force of the same
    definition over all j < l on the host agrees in scale."""
    Ft, eta = _features(), 1e-2
    s = thm6.summarize_checkpoint(np, Ft, eta, all_pairs=True, block=5)["summary"]
    A = Ft.T @ Ft
    B = thm6.B_inverse(np, Ft, eta)
    ju, lu = np.triu_indices(K, 1)
    ra = (A - A @ B @ A)[ju, lu]
    ident = -(eta ** 2) * B[ju, lu]
    brute = np.abs(ra - ident).max() / np.abs(ident).max()
    assert brute < 1e-6
    assert s["approx_identity_max_rel_gap"] < 1e-6


def test_all_pairs_frac_r_exact_neg_by_brute_force():
    """frac_r_exact_neg = #{r_jl < 0} / P over all pairs, r = -B_jl / (B_jj B_ll - B_jl^2) by hand."""
    Ft, eta = _features(), 1e-2
    s = thm6.summarize_checkpoint(np, Ft, eta, all_pairs=True, block=4)["summary"]
    B = thm6.B_inverse(np, Ft, eta)
    ju, lu = np.triu_indices(K, 1)
    r = -B[ju, lu] / (B[ju, ju] * B[lu, lu] - B[ju, lu] ** 2)
    want = float(np.mean(r < 0))
    assert 0.0 < want < 1.0 and want != 0.5
    assert s["frac_r_exact_neg"] == want


def test_top_mode_determinant_guard_matches_the_all_pairs_route():
    """The hand-made symmetric 'B' of test_thm6_guards (pair (0,1) has a negative 2x2 minor): the top
    mode's own det (B_jj B_ll - B_jl^2) must refuse that pair's sign as the all-pairs route does."""
    B = np.array([[1.0, -2.0, 1e-3],
                  [-2.0, 1.0, 0.5],
                  [1e-3, 0.5, 1.0]])
    Ft = np.random.default_rng(0).standard_normal((5, 3))
    delta = 0.01
    j, l = np.array([0, 0, 1]), np.array([1, 2, 2])
    arr = S._top_mode(np, Ft, 0.1, B, None, j, l, np.full(3, 0.5), True)
    np.testing.assert_allclose(arr["det"], [1.0 - 4.0, 1.0 - 1e-6, 1.0 - 0.25], rtol=1e-15)
    top = S._top_summary(np, arr, delta)["n_sign_certain_exact"]
    allp = S.all_pairs_summary(np, Ft, 0.1, B, None, delta, block=2, exact=True)["n_sign_certain_exact"]
    assert top == allp == 1
    assert [r["sign_certain"] for r in S._pair_rows(arr, delta)] == [False, False, True]


# --- diagnostics ----------------------------------------------------------------------------------

def _collapse_brute(gap, fire, fraction=0.1):
    gap = [float(g) for g in gap]
    f = int(fire)
    best = -np.inf
    for t in range(f, len(gap)):
        if not np.isnan(gap[t]):
            best = max(best, gap[t])
        if t > f and not np.isnan(gap[t]) and gap[t] < fraction * best:
            return float(t)
    return np.nan


def test_collapse_is_strictly_below_the_fraction():
    """A gap exactly at fraction x running max (0.1 * 10 = 1.0 in binary floating point) is not a collapse;
    the brute-force definition on random series drawn from a grid with such ties agrees."""
    assert diag.collapse_epoch([5.0, 10.0, 1.0, 0.5], 0) == 3.0
    rng = np.random.default_rng(0)
    grid = np.array([0.5, 1.0, 2.0, 5.0, 10.0, 20.0, np.nan])
    for _ in range(300):
        g = rng.choice(grid, size=8)
        fire = int(rng.integers(0, 8))
        got, want = diag.collapse_epoch(g, fire), _collapse_brute(g, fire)
        assert (np.isnan(got) and np.isnan(want)) or got == want, (g, fire)


# --- edge runs: the replay check ------------------------------------------------------------------

def test_replay_check_scale_is_the_larger_of_g2_and_wd2_and_covers_cross():
    """The relative difference is over max(|g2|, |wd2|), and every one of g2, wd2, cross counts."""
    row = {"W_edge_g2": 1.0, "W_edge_wd2": 100.0, "W_edge_cross": -5.0}
    base = {"g2": 1.0, "wd2": 100.0, "cross": -5.0}
    # wd2 off by 1e-8: 1e-10 relative to max(g2, wd2) = 100: within REPLAY_RTOL = 1e-9
    worst = edge_runs._check_logged_split(3, dict(base, wd2=100.0 + 1e-8), row, strict=True)
    assert worst == pytest.approx(1e-10, rel=1e-3)
    # cross alone off by 1e-6 (1e-8 relative): must fail
    with pytest.raises(RunFailure):
        edge_runs._check_logged_split(3, dict(base, cross=-5.0 + 1e-6), row, strict=True)
    assert edge_runs._check_logged_split(3, dict(base, cross=-5.0 + 1e-6), row, strict=False) == \
        pytest.approx(1e-8, rel=1e-3)


def test_probe_run_uses_the_first_window_of_a_multi_window_run(tmp_path):
    """A run with --windows 3,5 logs its W edge split on the first window (3): the strict replay check
    against the logged row passes, and the probe's W split equals the logged W_edge_* numbers."""
    out = str(tmp_path / "run")
    r = CliRunner().invoke(main, ["train", "--M", "11", "--K", "32", "--epochs", "8", "--lr", "1e-2",
                                  "--eta", "5e-3", "--windows", "3,5", "--dtype", "float64", "--out", out])
    assert r.exit_code == 0, r.output
    rows = {json.loads(x)["epoch"]: json.loads(x) for x in open(os.path.join(out, "metrics.jsonl"))}
    recs = edge_runs.probe_run(out, [8], np, spaces=("W",), n_random=0)
    rec = recs[0]
    assert "NOT" not in rec["replay_check"] and "reproduced" in rec["replay_check"]
    for k in ("g2", "wd2", "cross"):
        assert rec["split"][k] == pytest.approx(rows[8][f"W_edge_{k}"], rel=1e-9,
                                                abs=1e-9 * abs(rows[8]["W_edge_g2"])), k


# --- groups_expr ----------------------------------------------------------------------------------

def test_expr_length_limit_is_inclusive():
    """'1..MAX_LEN characters': exactly MAX_LEN is accepted (and evaluates), MAX_LEN + 1 is refused."""
    M = 7
    text = "x*11" + "+0" * ((MAX_LEN - 4) // 2)
    assert len(text) == MAX_LEN
    a = np.arange(M)
    np.testing.assert_array_equal(expr_table(text, M), np.broadcast_to((11 * a[:, None]) % M, (M, M)))
    with pytest.raises(InputError):
        expr_table(text + "0", M)
