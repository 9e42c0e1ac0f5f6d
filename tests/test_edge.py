"""The spectral-edge split: the optimizers' weight-decay parts, the logged keys against the ring route
(a = D u_1, b = D^wd u_1 from the rings' contents) on every row, the identity, and a non-incremental
recomputation from explicit update matrices.

tests/test_torch_reference_ce.py checks the same statistics against PyTorch (its own optimizer
state and an explicit deque), for coupled Adam with a schedule and for AdamW.
"""
import numpy as np
import pytest

from tianref import edge, loss as losses, model, optim, runs, spectra, train
from tianref.backend import get_xp
from tianref.config import TrainConfig, eta_at, validate

SMALL = TrainConfig(M=11, K=32, n_train=48, epochs=14, windows=(4, 3), seed=1, eta=1e-2, lr=1e-2,
                    dtype="float64")


def _rows(cfg, xp_name="numpy"):
    sink = runs.MemorySink()
    final, _, _ = train.run(validate(cfg), get_xp(xp_name), sink=sink)
    return sink.rows, final


# --- the optimizers' split: Delta = Delta^grad + Delta^wd, each part from its own route ---------

@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_update_splits_exactly_into_gradient_and_decay_parts(decoupled):
    """Delta^grad is computed here from a moment of the raw gradients alone (coupled: m^grad, the
    EMA of dL/dw with the shared denominator; AdamW: the plain Adam step on dL/dw), independently
    of the optimizer's m^wd. Their sum must be the actual update to float64 rounding."""
    rng = np.random.default_rng(0)
    w = {"w": rng.standard_normal(50)}
    st = optim.adam_init(np, w)
    m_g = np.zeros(50)
    lr, b1, b2, eps = 1e-2, 0.9, 0.999, 1e-8
    etas = [0.0, 0.0, 0.3, 0.3, 0.1, 0.0, 0.0, 0.2]           # a schedule, including switches to 0
    for t, eta in enumerate(etas, start=1):
        g = rng.standard_normal(50)
        new, st, parts = optim.adam_update(np, w, {"w": g}, st, lr=lr, eta=eta, decoupled=decoupled,
                                           wd_part=True)
        delta = new["w"] - w["w"]
        m_g = b1 * m_g + (1 - b1) * g                        # the EMA of the raw gradients
        denom = np.sqrt(st["v"]["w"] / (1 - b2 ** t)) + eps
        d_grad = -(lr / (1 - b1 ** t)) * m_g / denom
        d_wd = np.zeros(50) if parts["w"] is None else parts["w"]
        if parts["w"] is None:                               # None only while no decay has acted
            assert all(e == 0 for e in etas[:t]) or (decoupled and eta == 0)
        np.testing.assert_allclose(d_grad + d_wd, delta, rtol=0, atol=1e-15)
        w = new
    assert st["m_wd_zero"] is (decoupled or all(e == 0 for e in etas))


def test_no_weight_decay_gives_no_parts_and_bit_identical_steps():
    rng = np.random.default_rng(1)
    p = {"w": rng.standard_normal(5)}
    g = {"w": rng.standard_normal(5)}
    a = optim.adam_update(np, p, g, optim.adam_init(np, p), lr=1e-2)
    b = optim.adam_update(np, p, g, optim.adam_init(np, p), lr=1e-2, wd_part=True)
    np.testing.assert_array_equal(a[0]["w"], b[0]["w"])
    assert b[2] == {"w": None}


# --- the logged split ---------------------------------------------------------------------

@pytest.mark.parametrize("case", ["adam", "adamw", "schedule", "float32"])
def test_identity_sigma1_on_every_row(case):
    """g2 + wd2 + 2 cross = sigma_1 and the derived gfrac, cos. The logged route forms g2, wd2, cross from
    u_1^T G u_1, u_1^T C u_1 and u_1^T H u_1, for which the identity holds by construction: it checks that
    algebra (a sign, a factor 2) against the eigh's sigma_1; the numbers themselves are checked against
    the rings' contents by test_logged_split_equals_the_ring_route_on_every_row."""
    cfg = {"adam": SMALL, "adamw": SMALL.replace(optimizer="adamw", eta=0.3),
           "schedule": SMALL.replace(eta_schedule=((0, 1e-2), (6, 0.0))),
           "float32": SMALL.replace(dtype="float32")}[case]
    rows, _ = _rows(cfg)
    n = 0
    for r in rows:
        for p in ("W", "V"):
            if f"{p}_sigma" not in r:
                assert f"{p}_edge_g2" not in r
                continue
            g2, wd2, cross = (r[f"{p}_edge_{k}"] for k in ("g2", "wd2", "cross"))
            s1 = r[f"{p}_sigma"][0]
            # float64 sums of terms up to ~30x sigma_1 (they cancel): 1e-12 of the largest term
            assert g2 + wd2 + 2 * cross == pytest.approx(s1, abs=1e-12 * max(g2, wd2, s1)), (case, r["epoch"])
            assert wd2 > 0 and g2 > 0
            assert r[f"{p}_edge_gfrac"] == pytest.approx(g2 / (g2 + wd2), rel=1e-15)
            assert r[f"{p}_edge_cos"] == pytest.approx(cross / np.sqrt(g2 * wd2), rel=1e-15)
            assert -1 - 1e-12 <= r[f"{p}_edge_cos"] <= 1 + 1e-12           # Cauchy-Schwarz
            n += 1
    assert n == 2 * (len(rows) - 2)


RING_CASES = {
    "adam": SMALL, "adamw": SMALL.replace(optimizer="adamw", eta=0.3),
    "adam_schedule": SMALL.replace(eta_schedule=((0, 1e-2), (6, 0.0))),
    # decay off after 6 steps: AdamW's Delta^wd is None at once while the ring still holds decay parts
    "adamw_schedule": SMALL.replace(optimizer="adamw", eta=0.3, eta_schedule=((0, 0.3), (6, 0.0))),
    "float32": SMALL.replace(dtype="float32"),
    "sgd": SMALL.replace(optimizer="sgd", lr=0.05), "muon": SMALL.replace(optimizer="muon", eta=0.05),
    "sgd_schedule": SMALL.replace(optimizer="sgd", lr=0.05, eta_schedule=((0, 1e-2), (6, 0.0))),
    "ridge_held": SMALL.replace(top_layer="ridge"),
    "wrap": SMALL.replace(windows=(3, 5), epochs=16),
    "gram_f32": SMALL.replace(gram_dtype="float32"),
}


@pytest.mark.parametrize("case", sorted(RING_CASES))
def test_logged_split_equals_the_ring_route_on_every_row(case):
    """The logged keys of both views come from the cross-Grams G, C, H (w x w algebra, tianref/edge.py);
    here every row is recomputed by the second route, from the rings' contents: a = D u_1, b = D^wd u_1
    (edge_parts, split_of) and the window's p_wd = D^wd^T v_1 (author_split). An error in C's or H's
    bookkeeping (a slot, a row for a column, a stale entry after the ring wraps, a step without decay)
    shows here. Tolerance: 1e-12 of the view's largest term in float64, 1e-5 with a float32 ring or Gram."""
    cfg = validate(RING_CASES[case])
    tol = 1e-12 if cfg.dtype == "float64" and cfg.gram_dtype == "float64" else 1e-5
    w = cfg.windows[0]
    problem, state = train.setup(cfg, np)
    n = 0
    for _ in range(cfg.epochs + 1):
        row, fwd = train.evaluate(np, cfg, state, problem)
        for p in ("W", "V"):
            parts = edge.edge_parts(np, [state.spec[p]], [state.edge[p]], w)
            if parts is None:
                assert f"{p}_edge_g2" not in row
                continue
            ring = [float(x) for x in edge.split_of(np, parts)
                    + edge.author_split(np, state.spec[p], state.edge[p], parts[0][0], w)]
            for view, vals in ((edge.KEYS, ring[:3]), (edge.AUTHOR_KEYS, ring[3:])):
                scale = max(abs(v) for v in vals)
                got = [row[f"{p}_edge_{k}"] for k in view]
                np.testing.assert_allclose(got, vals, rtol=0, atol=tol * scale, err_msg=f"{case} {p} {row['epoch']}")
            n += 1
        state = train.step(np, cfg, state, problem, fwd)
    assert n == 2 * (cfg.epochs - 1)


def test_without_weight_decay_wd2_is_exactly_zero():
    rows, _ = _rows(SMALL.replace(eta=0.0))
    for r in rows[2:]:
        for p in ("W", "V"):
            assert r[f"{p}_edge_wd2"] == 0.0 and r[f"{p}_edge_cross"] == 0.0
            assert r[f"{p}_edge_gfrac"] == 1.0 and f"{p}_edge_cos" not in r
            assert r[f"{p}_edge_g2"] == pytest.approx(r[f"{p}_sigma"][0], rel=1e-12)


def test_split_matches_explicit_recomputation():
    """Replay the run step by step, keep every Delta and Delta^wd in lists, and recompute the split
    of each row from the explicit (w, P) matrices and numpy's eigh: no ring, no incremental Gram."""
    cfg = validate(SMALL.replace(eta_schedule=((0, 1e-2), (8, 0.0))))
    rows, _ = _rows(cfg)
    problem, state = train.setup(cfg, np)
    P, hist = state.params, {"W": [], "V": []}
    opt = optim.adam_init(np, P)
    w = cfg.windows[0]
    for t in range(cfg.epochs + 1):
        for p in ("W", "V"):
            if len(hist[p]) >= 2:
                D = np.array([d for d, _ in hist[p][-w:]])                  # (m, P)
                Dwd = np.array([d for _, d in hist[p][-w:]])                # (m, P)
                ev, U = np.linalg.eigh(D @ D.T)
                a, b = (D - Dwd).T @ U[:, -1], Dwd.T @ U[:, -1]              # D^g u_1, D^wd u_1
                scale = max(a @ a, b @ b)
                for key, ref in (("g2", a @ a), ("wd2", b @ b), ("cross", a @ b)):
                    assert rows[t][f"{p}_edge_{key}"] == pytest.approx(ref, abs=1e-12 * scale), (t, p, key)
        if t == cfg.epochs:
            break
        Yhat, cache = model.forward(np, P, problem.train, cfg.act)
        _, dY = losses.loss_and_grad(np, Yhat, problem.train.y, cfg.loss)
        grads = model.backward(np, P, problem.train, cache, dY, cfg.act)
        new, opt, wd = optim.adam_update(np, P, grads, opt, lr=cfg.lr, eta=eta_at(cfg, t), wd_part=True)
        for p in ("W", "V"):
            hist[p].append(((new[p] - P[p]).ravel(), np.zeros(P[p].size) if wd[p] is None else wd[p].ravel()))
        P = new
    # the schedule switched the decay off after 8 steps; m^wd decays, so wd2 shrinks but stays > 0
    assert 0 < rows[-1]["W_edge_wd2"] < rows[8]["W_edge_wd2"]


def test_edge_vector_parts_sum_and_norm():
    cfg = validate(SMALL)
    _, final = _rows(cfg)
    w = cfg.windows[0]
    [(e, e_wd)] = edge.edge_vector(np, [final.spec["W"]], [final.edge["W"]], w)
    assert np.linalg.norm(e) == pytest.approx(1.0, rel=1e-14)
    g2, wd2, cross = edge.window_split(np, final.spec["W"], final.edge["W"], w)
    s1 = g2 + wd2 + 2 * cross
    assert float(e_wd @ e_wd) == pytest.approx(wd2 / s1, rel=1e-12)             # ||D^wd u_1||^2 / sigma_1
    # the joint edge: u_1 of G_W + G_V; its parts over W and V have unit norm together, and its
    # sigma_1 is the top eigenvalue of the summed Gram (>= each block's own sigma_1)
    joint = edge.edge_vector(np, [final.spec["W"], final.spec["V"]], [final.edge["W"], final.edge["V"]], w)
    assert sum(float(e @ e) for e, _ in joint) == pytest.approx(1.0, rel=1e-14)
    parts = edge.edge_parts(np, [final.spec["W"], final.spec["V"]], [final.edge["W"], final.edge["V"]], w)
    sj = sum(float(a @ a) for a, _ in parts)
    idx = spectra.window_slots(final.spec["W"]["count"], final.spec["W"]["buf"].shape[0], w)
    Gj = sum(final.spec[k]["gram"][np.ix_(idx, idx)] for k in "WV")
    assert sj == pytest.approx(np.linalg.eigvalsh(Gj)[-1], rel=1e-12) and sj >= s1


def test_fake_backend_and_resume_keep_the_split(tmp_path):
    cfg = SMALL.replace(eta_schedule=((0, 1e-2), (5, 0.0)))
    a, _ = _rows(cfg)
    b, _ = _rows(cfg, "fake")
    assert a == b
    # resume at epoch 7 (inside the window, after the switch): the split continues exactly
    short = validate(cfg.replace(epochs=7))
    writer = runs.RunWriter(str(tmp_path))
    import os
    os.makedirs(tmp_path / "checkpoints", exist_ok=True)
    train.run(short, np, sink=writer)
    writer.close()
    ck = runs.load_npz(runs.checkpoint_path(str(tmp_path)))
    state = train.state_from_arrays(np, validate(cfg), ck)
    problem, _ = train.setup(validate(cfg), np, init={k: ck[k] for k in ("W", "V", "train_idx", "test_idx")})
    sink = runs.MemorySink()
    train.run(validate(cfg), np, problem=problem, state=state, sink=sink)
    assert sink.rows == a[8:]


# --- the other optimizers: SGD (coupled, momentum) and Muon (decoupled on W, Adam on V) ---------

def test_sgd_update_splits_exactly_through_a_schedule():
    """Delta^grad from an independent momentum buffer of the raw gradients (torch's rule: b = g at
    the first step, then mu b + g) plus the optimizer's Delta^wd equals the actual update; the decay
    carried in the buffer after eta -> 0 is kept (Delta^wd != 0 while b^wd decays)."""
    from tianref import optim_sgd
    rng = np.random.default_rng(2)
    w = {"w": rng.standard_normal(30)}
    st = optim_sgd.sgd_init(np, w)
    b_g = None
    lr, mu = 1e-2, 0.9
    etas = [0.0, 0.2, 0.2, 0.0, 0.0, 0.1, 0.0]
    for t, eta in enumerate(etas, start=1):
        g = rng.standard_normal(30)
        new, st, parts = optim_sgd.sgd_update(np, w, {"w": g}, st, lr=lr, momentum=mu, eta=eta, wd_part=True)
        b_g = g if b_g is None else mu * b_g + g
        d_wd = np.zeros(30) if parts["w"] is None else parts["w"]
        assert (parts["w"] is None) == all(e == 0 for e in etas[:t])
        np.testing.assert_allclose(-lr * b_g + d_wd, new["w"] - w["w"], rtol=0, atol=1e-15)
        w = new


@pytest.mark.parametrize("case", ["sgd", "muon", "sgd_schedule"])
def test_identity_on_every_row_other_optimizers(case):
    cfg = {"sgd": SMALL.replace(optimizer="sgd", lr=0.05, eta=1e-2),
           "muon": SMALL.replace(optimizer="muon", eta=0.05),
           "sgd_schedule": SMALL.replace(optimizer="sgd", lr=0.05, eta_schedule=((0, 1e-2), (6, 0.0)))}[case]
    rows, _ = _rows(cfg)
    for r in rows[2:]:
        for p in ("W", "V"):
            g2, wd2, cross = (r[f"{p}_edge_{k}"] for k in ("g2", "wd2", "cross"))
            assert g2 + wd2 + 2 * cross == pytest.approx(r[f"{p}_sigma"][0], abs=1e-12 * max(g2, wd2)), (case, r["epoch"])
            assert wd2 > 0, (case, p, r["epoch"])           # momentum carries the decay after the switch too


def test_ridge_current_v_has_no_weight_decay_part():
    rows, _ = _rows(SMALL.replace(top_layer="ridge", ridge_eval="current"))
    for r in rows[2:]:
        assert r["V_edge_wd2"] == 0.0 and r["W_edge_wd2"] > 0


def test_ridge_held_v_carries_the_optimizers_decay_part():
    """--ridge-eval held: V's update V_held(t+1) - V_held(t) = (the solve's jump) + (Adam's step from the
    solved V); the decay part is Adam's coupled one, the rest (jump included) the gradient part, and the
    split still sums to sigma_1."""
    rows, _ = _rows(SMALL.replace(top_layer="ridge"))
    for r in rows[2:]:
        assert r["V_edge_wd2"] > 0 and r["W_edge_wd2"] > 0
        g2, wd2, cross = (r[f"V_edge_{k}"] for k in ("g2", "wd2", "cross"))
        assert g2 + wd2 + 2 * cross == pytest.approx(r["V_sigma"][0], rel=1e-9)   # float64 rounding


def test_every_backend_logs_the_same_split_and_clocks(xp):
    """NumPy, the strict fake backend and (where a GPU exists) CuPy, float64: the edge split and the
    clock statistics agree to 1e-9 (CuPy's reductions round in another order; the fake backend is
    NumPy underneath and agrees exactly)."""
    cfg = validate(SMALL.replace(epochs=8, eta_schedule=((0, 1e-2), (5, 0.0))))
    ref = runs.MemorySink()
    train.run(cfg, np, sink=ref)
    got = runs.MemorySink()
    train.run(cfg, xp, sink=got)
    keys = [f"{p}_edge_{k}" for p in "WV" for k in ("g2", "wd2", "cross", "gfrac", "cos",
                                                    "pg2", "pwd2", "pcross", "pgfrac", "palign")] + \
        ["W_srank", "V_srank", "W_fro", "V_fro", "WV_nuc", "W_tail", "margin_min"]
    n = 0
    for a, b in zip(ref.rows, got.rows):
        for k in keys:
            assert (k in a) == (k in b), (k, a["epoch"])
            if k in a:
                scale = max(abs(a[k]), abs(a.get(k.rsplit("_", 1)[0] + "_g2", 0.0)), 1e-300)
                assert abs(a[k] - b[k]) <= 1e-9 * scale, (k, a["epoch"], a[k], b[k])
                n += 1
    assert n > 100


def test_replay_check_accepts_either_routes_logged_split(tmp_path):
    """edge's replay check (analysis/edge_runs.check_replay) compares the replayed W split with the logged
    one: a run logged by this version (the cross-Grams) and one logged by a version before them (the ring
    route: a = D u_1, b = D^wd u_1 from the rings) both reproduce; a logged value off by 1e-6 does not.
    float32, where the two routes differ by ~1e-8 of the view, far above the check's 1e-9."""
    from tianref.analysis import edge_runs
    from tianref.errors import RunFailure
    cfg = validate(SMALL.replace(dtype="float32", epochs=9))
    problem, state = train.setup(cfg, np)
    for _ in range(cfg.epochs):
        _, fwd = train.evaluate(np, cfg, state, problem)
        state = train.step(np, cfg, state, problem, fwd)
    row, _ = train.evaluate(np, cfg, state, problem)
    w = cfg.windows[0]
    ring = [float(x) for x in edge.split_of(np, edge.edge_parts(np, [state.spec["W"]], [state.edge["W"]], w))]
    old = dict(row, **{f"W_edge_{k}": v for k, v in zip(edge.KEYS, ring)})
    scale = max(abs(row["W_edge_g2"]), abs(row["W_edge_wd2"]))
    assert max(abs(row[f"W_edge_{k}"] - v) for k, v in zip(edge.KEYS, ring)) > 1e-9 * scale   # two routes
    for logged in (row, old):
        said = edge_runs.check_replay(str(tmp_path), cfg.epochs, state, {cfg.epochs: logged}, xp=np, w=w)
        assert "split reproduced" in said
    bad = dict(row, W_edge_wd2=row["W_edge_wd2"] * (1 + 1e-6))
    with pytest.raises(RunFailure, match="differs from the logged one"):
        edge_runs.check_replay(str(tmp_path), cfg.epochs, state, {cfg.epochs: bad}, xp=np, w=w)
