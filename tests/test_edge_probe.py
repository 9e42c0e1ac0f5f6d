"""tianref.edge_probe: the probed model is the run's model (output scale), the edge directions against
an SVD of explicitly stored updates, the removals, the controls and the ratio floor."""
import json
import math
import os

import numpy as np
import pytest
from click.testing import CliRunner

from tianref import edge_curvature, edge_probe, train
from tianref.analysis import edge_runs
from tianref.cli import main
from tianref.config import TrainConfig, validate

E = 16


@pytest.fixture(scope="module")
def scaled_run(tmp_path_factory):
    """M = 11, float64, trained with the output scale beta = 2."""
    out = str(tmp_path_factory.mktemp("edge_beta") / "run")
    r = CliRunner().invoke(main, ["train", "--M", "11", "--K", "32", "--epochs", str(E), "--lr", "1e-2",
                                  "--eta", "5e-3", "--windows", "4", "--dtype", "float64",
                                  "--output-scale", "2", "--out", out])
    assert r.exit_code == 0, r.output
    return out


def test_probe_evaluates_the_run_model_with_its_output_scale(scaled_run):
    """The unablated losses and accuracies of the probe equal what the run logged for the same weights
    (a float64 run replayed bit for bit: only the summation order of the loss could differ, 1e-12)."""
    rows = {json.loads(l)["epoch"]: json.loads(l) for l in open(os.path.join(scaled_run, "metrics.jsonl"))}
    recs = edge_runs.probe_run(scaled_run, [E], np, spaces=("W",), n_random=0)
    base = recs[0]["probe"]["base"]
    for k in ("test_loss", "train_loss"):
        assert base[k] == pytest.approx(rows[E][k], rel=1e-12), k
    for k in ("test_acc", "train_acc"):
        assert base[k] == rows[E][k], k


# --- the directions --------------------------------------------------------------------------

def test_edge_directions_are_the_svd_of_the_stored_updates():
    """Replay a float64 run by hand, keep every update of W and V in a list, and compare v1, v2 of each
    space with numpy's SVD of the window matrix stacked from that list (no ring, no Gram)."""
    cfg = validate(TrainConfig(M=11, K=32, n_train=48, epochs=12, windows=(5,), seed=3, eta=1e-2, lr=1e-2,
                               dtype="float64", metrics="core"))
    problem, state = train.setup(cfg, np)
    hist = []
    for _ in range(cfg.epochs):
        new = train.step(np, cfg, state, problem)
        hist.append({k: (new.params[k] - state.params[k]).ravel() for k in "WV"})
        state = new
    for names in (("W",), ("V",), ("W", "V")):
        D = np.array([np.concatenate([h[k] for k in names]) for h in hist[-5:]])    # (5, P)
        _, S, Vh = np.linalg.svd(D, full_matrices=False)
        Vk, sig = edge_probe.edge_directions(np, edge_probe.window_matrix(np, state, 5, names))
        assert Vk.shape == (2, D.shape[1])
        # sigma_k = S_k^2; float64 eigh of the 5 x 5 Gram against the SVD: 1e-10 relative
        assert sig == pytest.approx(list(S[:2] ** 2), rel=1e-10)
        assert S[1] / S[2] > 1.1                                        # v2 is well defined here
        for k in range(2):
            # unit and equal to the SVD's up to sign; the gap S2/S3 > 1.1 bounds the error by ~1e-13
            assert abs(Vk[k] @ Vh[k]) == pytest.approx(1.0, abs=1e-10), (names, k)
            assert np.linalg.norm(Vk[k]) == pytest.approx(1.0, abs=1e-12)
        assert abs(Vk[0] @ Vk[1]) < 1e-10                               # v1 perpendicular to v2


def test_removal_fraction_against_a_planted_theta():
    """theta = a v1 + b v2 + c z with z perpendicular to both: f and theta_S are known exactly."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((50, 3)))
    v1, v2, z = Q.T
    a, b, c = 3.0, -2.0, 0.5
    theta = a * v1 + b * v2 + c * z
    n2 = a * a + b * b + c * c
    th, f = edge_probe.remove(np, theta, np.array([v1, v2]))
    assert f == pytest.approx((a * a + b * b) / n2, rel=1e-14)        # float64 sums of 50 terms
    np.testing.assert_allclose(th, c * z, atol=1e-14)
    th, f = edge_probe.remove(np, theta, np.array([v1]))
    assert f == pytest.approx(a * a / n2, rel=1e-14)
    np.testing.assert_allclose(th, b * v2 + c * z, atol=1e-14)


def test_random_frames_are_orthonormal_and_reproducible():
    a = list(edge_probe.random_frames(5, 200, 2, 3))
    b = list(edge_probe.random_frames(5, 200, 2, 3))
    c = list(edge_probe.random_frames(6, 200, 2, 3))
    for Q in a:
        np.testing.assert_allclose(Q @ Q.T, np.eye(2), atol=1e-14)    # Householder QR: orthonormal to rounding
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not any(np.array_equal(x, y) for x, y in zip(a, c))
    assert not np.array_equal(a[1], a[0])                             # draws differ from each other
    Z = np.random.default_rng((5, 2)).standard_normal((200, 2))      # the documented recipe
    np.testing.assert_array_equal(a[0], np.linalg.qr(Z)[0].T)


def test_ratio_floor():
    r, fl = edge_probe.ratio_of(0.25, 0.0)
    assert fl is True and r == pytest.approx(0.25 / 1e-8, rel=1e-15)   # |dA| x 1e8 by construction
    r, fl = edge_probe.ratio_of(-0.25, -0.05)
    assert fl is False and r == pytest.approx(0.25 / (0.05 + 1e-8), rel=1e-15)
    assert edge_probe.ratio_of(0.1, 5e-9)[1] is True and edge_probe.ratio_of(0.1, 2e-8)[1] is False
    # the boundary itself: floored means |mean| < 1e-8 strictly (the docstring's rule); 1e-8 is not floored
    assert edge_probe.ratio_of(0.1, 1e-8)[1] is False and edge_probe.ratio_of(0.1, -1e-8)[1] is False


def test_edge_directions_do_not_depend_on_the_scale_of_the_updates():
    """v_k is defined while sigma_k > REL_EV_MIN sigma_1, a RELATIVE rule: the same updates times 1e-8
    (sigma ~ 1e-14, below any absolute 1e-12) give the same directions, sigma scaled by 1e-16; and a
    rank-1 window gives v_1 alone (its sigma_2 is rounding, ~1e-16 sigma_1), whatever its scale.
    Compared with numpy's SVD of D; the gap S_2/S_3 is O(1) for a Gaussian (4, 30) matrix, so 1e-10."""
    rng = np.random.default_rng(7)
    D = rng.standard_normal((4, 30))
    _, S, Vh = np.linalg.svd(D, full_matrices=False)
    for scale in (1.0, 1e-8, 1e6):
        Vk, sig = edge_probe.edge_directions(np, D * scale, 4)
        assert Vk.shape == (4, 30), scale
        assert sig == pytest.approx(list((S * scale) ** 2), rel=1e-10)
        for k in range(4):
            assert abs(Vk[k] @ Vh[k]) == pytest.approx(1.0, abs=1e-10), (scale, k)
        one = np.outer(rng.standard_normal(3), rng.standard_normal(30)) * scale     # rank 1
        Vk, sig = edge_probe.edge_directions(np, one, 4)
        assert Vk.shape == (1, 30) and len(sig) == 1, scale


def test_perturbation_sign_of_a_zero_projection_is_plus(monkeypatch):
    """sign(0) = +1 (the module docstring): theta with p_1 = <theta, v_1> = 0 exactly (v_1 = e_0, theta_0 = 0)
    is moved to theta + eps v_1. The spy's test loss is theta_0, so dtest_loss = +eps (-eps for sign -1)."""
    monkeypatch.setattr(edge_probe, "evaluate", lambda xp, p, problem, cfg: {
        "test_loss": float(p["W"].reshape(-1)[0]), "test_acc": 0.0, "train_loss": 0.0, "train_acc": 0.0})
    W = np.arange(1.0, 13.0).reshape(3, 4)
    W[0, 0] = 0.0
    params = {"W": W, "V": np.ones((4, 2))}
    Vk = np.eye(12)[:2]                                               # v_1 = e_0, v_2 = e_1: orthonormal
    out = edge_probe.probe(np, params, Vk, [2.0, 1.0], None, None, ("W",), n_random=0, eps_rel=0.01)
    q = out["perturb"]["v1"]
    assert q["p"] == 0.0 and q["sign"] == 1.0
    assert q["dtest_loss"] == pytest.approx(0.01 * np.linalg.norm(W), rel=1e-15)   # ||theta||: two routes' rounding
    assert out["perturb"]["v2"]["sign"] == 1.0                       # p_2 = W[0, 1] = 2 > 0


def test_curvature_uses_at_most_four_directions(monkeypatch):
    """curvature takes v_1..v_4 of however many rows it is given, and n_evaluations counts what it does:
    six directions cost eight evaluations (the spy counts them), not twelve."""
    calls = []

    def loss(th):
        calls.append(1)
        return float(th @ th)
    rng = np.random.default_rng(3)
    Vk = np.linalg.qr(rng.standard_normal((20, 6)))[0].T             # (6, 20) orthonormal rows
    theta = rng.standard_normal(20)
    out = edge_curvature.curvature(np, theta, Vk, list(range(6)), float(theta @ theta), loss,
                                   float(np.linalg.norm(theta)))
    assert len(calls) == edge_curvature.n_evaluations(6) == 8
    assert sorted(k for k in out if k.startswith("v")) == ["v1", "v2", "v3", "v4"]
    # L = ||theta||^2 has curvature 2 along every unit direction; the second difference of a quadratic
    # is exact up to the losses' rounding (~1e-15 of ~20) over eps^2 (~2e-5): 1e-9
    assert all(out[k]["curvature"] == pytest.approx(2.0, abs=1e-9) for k in ("v1", "v4"))


# --- the probe end to end, with a spy for the model ------------------------------------------------

def test_unflat_puts_each_block_in_its_place():
    params = {"W": np.zeros((4, 3)), "V": np.zeros((3, 2))}
    theta = np.arange(18.0)
    out = edge_probe.unflat(np, theta, params, ("W", "V"))
    np.testing.assert_array_equal(out["W"], np.arange(12.0).reshape(4, 3))
    np.testing.assert_array_equal(out["V"], np.arange(12.0, 18.0).reshape(3, 2))
    np.testing.assert_array_equal(edge_probe.flat(np, out, ("W", "V")), theta)
    out = edge_probe.unflat(np, np.arange(6.0), params, ("V",))
    np.testing.assert_array_equal(out["V"], np.arange(6.0).reshape(3, 2))
    assert out["W"] is params["W"]                                    # the other block is untouched


def test_probe_removes_what_it_says(monkeypatch):
    """A spy model whose 'losses' are ||W||^2 + ||V||^2 and sum(V): every removal must lower the first by
    f ||theta||^2 (Pythagoras), the norm-matched control by the same, and only the V part of a joint
    direction may change sum(V)."""
    rng = np.random.default_rng(1)
    params = {"W": rng.standard_normal((6, 4)), "V": rng.standard_normal((4, 3))}

    def spy(xp, p, problem, cfg):
        return {"test_loss": float((p["W"] ** 2).sum() + (p["V"] ** 2).sum()), "test_acc": 0.0,
                "train_loss": float(p["V"].sum()), "train_acc": 0.0}
    monkeypatch.setattr(edge_probe, "evaluate", spy)
    names = ("W", "V")
    theta = edge_probe.flat(np, params, names)
    n2 = float(theta @ theta)
    D = rng.standard_normal((4, theta.size))
    D[:, 24:] *= 10.0                                                 # the edge mostly in V
    Vk, sig = edge_probe.edge_directions(np, D)
    out = edge_probe.probe(np, params, Vk, sig, None, None, names, n_random=4, seed=2, eps_rel=0.01)
    for key in ("v1v2", "v1"):
        rm = out["removal"][key]
        for what in ("edge", "norm_matched"):
            assert rm[what]["dtest_loss"] == pytest.approx(-rm["frac"] * n2, rel=1e-12), (key, what)
        for f, d in zip(rm["random"]["frac"]["values"], rm["random"]["dtest_loss"]["values"]):
            assert d == pytest.approx(-f * n2, rel=1e-12)
        c = Vk[: rm["k"]] @ theta
        assert rm["edge"]["dtrain_loss"] == pytest.approx(-(c @ Vk[: rm["k"], 24:]).sum(), rel=1e-12)
    eps = 0.01 * math.sqrt(n2)
    for i, key in enumerate(("v1", "v2")):
        q = out["perturb"][key]
        assert q["sign"] == math.copysign(1.0, Vk[i] @ theta)
        assert q["dtrain_loss"] == pytest.approx(eps * q["sign"] * Vk[i, 24:].sum(), rel=1e-12)
        # ||theta + eps s v||^2 - ||theta||^2 = 2 eps |p| + eps^2
        assert q["dtest_loss"] == pytest.approx(2 * eps * abs(q["p"]) + eps ** 2, rel=1e-10)
    assert out["removal"]["v1v2"]["floored"] is True                  # the spy's accuracy never changes


def test_norm_matched_control_keeps_one_minus_f_of_the_squared_norm(monkeypatch):
    seen = []
    monkeypatch.setattr(edge_probe, "evaluate",
                        lambda xp, p, problem, cfg: seen.append(p["W"].copy()) or dict.fromkeys(
                            ("test_loss", "test_acc", "train_loss", "train_acc"), 0.0))
    rng = np.random.default_rng(4)
    params = {"W": rng.standard_normal((5, 4)), "V": rng.standard_normal((4, 2))}
    Vk, sig = edge_probe.edge_directions(np, rng.standard_normal((3, 20)))
    out = edge_probe.probe(np, params, Vk, sig, None, None, ("W",), n_random=0)
    # evaluation order: base, edge {v1, v2}, norm-matched {v1, v2}, edge {v1}, norm-matched {v1}, perturbations
    n2 = (params["W"] ** 2).sum()
    for i, key in ((2, "v1v2"), (4, "v1")):
        assert (seen[i] ** 2).sum() == pytest.approx((1 - out["removal"][key]["frac"]) * n2, rel=1e-13)
        np.testing.assert_allclose(seen[i] / params["W"], math.sqrt(1 - out["removal"][key]["frac"]), rtol=1e-13)
    assert len(seen) == edge_probe.n_evaluations(2, 0)


def test_the_authors_ratio_uses_the_signed_mean_of_the_draws():
    """Draws that raise and lower the test accuracy cancel in the authors' denominator |mean Δacc| + 1e-8:
    here the mean is 0, so the ratio is floored (1e8 x |Δacc edge|); a mean of |Δacc| would give 0.1."""
    r, fl = edge_probe.ratio_from_draws(0.02, [0.1, -0.1, 0.05, -0.05])
    assert fl is True and r == pytest.approx(0.02 / 1e-8, rel=1e-12)
    r, fl = edge_probe.ratio_from_draws(-0.02, [0.1, 0.3])
    assert fl is False and r == pytest.approx(0.02 / (0.2 + 1e-8), rel=1e-12)


# --- the split of each space, both views -----------------------------------------------------------

SPLIT_CASES = {
    "adam": dict(eta=1e-2),
    "adamw_wrap": dict(optimizer="adamw", eta=0.3, windows=(3, 5)),   # the window's slots wrap the ring
    "ridge": dict(eta=1e-2, top_layer="ridge", ridge_eval="current"),  # V re-solved: its Delta^wd ring stays clean
}


@pytest.mark.parametrize("case", sorted(SPLIT_CASES))
def test_space_split_against_explicit_window_matrices(case):
    """Replay a float64 run by hand, store every update of W and V (the difference of the parameters)
    and its weight-decay part (the ring slot the step just wrote) in lists, and compare both views of
    each space (W, V, and W and V flattened together, W first) with numpy's SVD of the window matrices
    stacked from those lists: v_1 = Vh[0], p = D v_1, p_wd = D^wd v_1, p_g = p - p_wd."""
    kw = dict(SPLIT_CASES[case])
    w = kw.get("windows", (5,))[0]
    kw.setdefault("windows", (5,))
    cfg = validate(TrainConfig(M=11, K=32, n_train=48, epochs=12, seed=3, lr=1e-2, dtype="float64",
                               metrics="core", **kw))
    problem, state = train.setup(cfg, np)
    hist = []
    for _ in range(cfg.epochs):
        new = train.step(np, cfg, state, problem)
        rec = {}
        for k in "WV":
            ring = new.edge[k]["buf_wd"]
            rec[k] = (new.params[k] - state.params[k]).ravel()
            rec[k + "wd"] = ring[(new.spec[k]["count"] - 1) % ring.shape[0]].copy()
        hist.append(rec)
        state = new
    if case == "ridge":
        assert state.edge["V"]["clean"] and not state.edge["W"]["clean"]
    for names in (("W",), ("V",), ("W", "V")):
        D = np.array([np.concatenate([h[k] for k in names]) for h in hist[-w:]])            # (w, P)
        Dwd = np.array([np.concatenate([h[k + "wd"] for k in names]) for h in hist[-w:]])   # (w, P)
        _, S, Vh = np.linalg.svd(D, full_matrices=False)
        v1 = Vh[0]
        p, p_wd = D @ v1, Dwd @ v1
        p_g = p - p_wd
        want = {"sigma1": S[0] ** 2, "pg2": p_g @ p_g, "pwd2": p_wd @ p_wd, "pcross": p_g @ p_wd}
        e, got = edge_probe.space_edge(np, state, w, names)
        # the edge direction itself: unit, and +-v_1 (the gap S_1/S_2 of these windows is >= 1.5, so the
        # eigh route agrees with the SVD to ~1e-14; 1e-10 leaves a margin)
        assert S[0] / S[1] > 1.5
        assert abs(e @ v1) == pytest.approx(1.0, abs=1e-10) and np.linalg.norm(e) == pytest.approx(1.0, abs=1e-12)
        # the probe's window matrix holds the same w updates (rows in the ring's order, so compare the
        # order-free D^T D; the ring's Delta and the parameters' difference agree to float64 rounding)
        Dw = edge_probe.window_matrix(np, state, w, names)
        assert Dw.shape == D.shape
        np.testing.assert_allclose(Dw.T @ Dw, D.T @ D, rtol=0, atol=1e-12 * S[0] ** 2)
        scale = max(want["pg2"], want["pwd2"], want["sigma1"])
        for k, v in want.items():
            # float64 throughout; the (w x w) eigh against the SVD and sums of w products: 1e-10 of the
            # largest term (the split's terms can exceed sigma_1: they cancel through pcross)
            assert got[k] == pytest.approx(v, rel=0, abs=1e-10 * scale), (case, names, k)
        assert got["pg2"] + got["pwd2"] + 2 * got["pcross"] == pytest.approx(got["sigma1"], abs=1e-12 * scale)
        assert got["pgfrac"] == pytest.approx(want["pg2"] / (want["pg2"] + want["pwd2"]), rel=1e-9)
        if want["pwd2"] > 0:
            assert got["palign"] == pytest.approx(want["pcross"] / np.sqrt(want["pg2"] * want["pwd2"]), rel=1e-8)
        else:
            assert got["pwd2"] == 0.0 and got["pcross"] == 0.0 and "palign" not in got


# --- the curvature along v_1..v_4 (the authors' flatness measure) ----------------------------------

def test_curvature_of_a_quadratic_loss_is_its_quadratic_form(monkeypatch):
    """A spy model whose test loss is L(theta) = 1/2 theta^T A theta + b^T theta over W and V flattened:
    the second difference is exact for a quadratic, so curvature = v^T A v, and L(theta +- eps v) - L(theta)
    = +- eps <A theta + b, v> + eps^2/2 v^T A v, with eps = 0.001 ||theta||; two evaluations per direction."""
    rng = np.random.default_rng(5)
    params = {"W": rng.standard_normal((6, 4)), "V": rng.standard_normal((4, 3))}
    names = ("W", "V")
    theta = edge_probe.flat(np, params, names)
    B = rng.standard_normal((theta.size, theta.size))
    A, b = B + B.T, rng.standard_normal(theta.size)
    calls = []

    def spy(xp, p, problem, cfg):
        th = edge_probe.flat(np, p, names)
        calls.append(1)
        return {"test_loss": float(0.5 * th @ A @ th + b @ th), "test_acc": 0.0, "train_loss": 0.0, "train_acc": 0.0}
    monkeypatch.setattr(edge_probe, "evaluate", spy)
    for n_rows, n_dirs in ((6, 4), (3, 3)):                          # 3 updates: v_4 undefined
        calls.clear()
        Vk, sig = edge_probe.edge_directions(np, rng.standard_normal((n_rows, theta.size)), 4)
        assert Vk.shape[0] == n_dirs
        out = edge_probe.probe(np, params, Vk, sig, None, None, names, n_random=3, seed=1)
        assert len(calls) == edge_probe.n_evaluations(n_dirs, 3)
        cv = out["curvature"]
        eps = 0.001 * np.linalg.norm(theta)
        assert cv["eps_rel"] == 0.001 and cv["eps"] == pytest.approx(eps, rel=1e-15)
        g = A @ theta + b
        for i in range(4):
            q = cv[f"v{i + 1}"]
            if i >= n_dirs:
                assert q is None
                continue
            v = Vk[i]
            vAv, gv = v @ A @ v, g @ v
            # the losses (~50) carry ~1e-14 of rounding, divided by eps^2 ~ 4e-5: ~1e-9 absolute
            assert q["curvature"] == pytest.approx(vAv, rel=1e-7, abs=1e-8), i
            assert q["dL_plus"] == pytest.approx(eps * gv + eps ** 2 / 2 * vAv, rel=1e-9, abs=1e-13)
            assert q["dL_minus"] == pytest.approx(-eps * gv + eps ** 2 / 2 * vAv, rel=1e-9, abs=1e-13)
            assert q["func_change"] == abs(q["dL_plus"])
            assert q["sigma"] == sig[i] and q["p"] == pytest.approx(v @ theta, rel=1e-12)
        assert out["sigma"] == sig[:2] and len(out["proj"]) == 2      # the ablation's edge: v_1, v_2
