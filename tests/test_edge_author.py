"""The edge-projected view of the split (the spectral-edge authors' grad_frac and alignment).

Each update of the window is projected on the unit edge direction v_1 = D u_1 / sqrt(sigma_1):
p_g,i = <Delta^g_i, v_1>, p_wd,i = <Delta^wd_i, v_1>, and sigma_1 = pg2 + pwd2 + 2 pcross exactly
(docs/edge-and-clocks.md). Checked here: that identity on every row for every optimizer (the logged
route's algebra; the numbers against the ring route: tests/test_edge.py), equality
with a plain NumPy training loop (its own Adam / AdamW, its own split, an SVD of the explicit window
matrix), the exact zeros without weight decay, and the ring's window rows.
"""
import numpy as np
import pytest

from tianref import edge, loss as losses, model, runs, spectra, train
from tianref.config import TrainConfig, eta_at, validate

SMALL = TrainConfig(M=11, K=32, n_train=48, epochs=14, windows=(4, 3), seed=1, eta=1e-2, lr=1e-2,
                    dtype="float64")
AUTHOR = ("pg2", "pwd2", "pcross")


def _rows(cfg):
    sink = runs.MemorySink()
    train.run(validate(cfg), np, sink=sink)
    return sink.rows


CASES = {
    "adam": SMALL,
    "adamw": SMALL.replace(optimizer="adamw", eta=0.3),
    "sgd": SMALL.replace(optimizer="sgd", lr=0.05),
    "muon": SMALL.replace(optimizer="muon", eta=0.05),
    # decay off after 6 steps: AdamW's ring becomes partly, then wholly zero (no moment carries it)
    "adamw_schedule": SMALL.replace(optimizer="adamw", eta=0.3, eta_schedule=((0, 0.3), (6, 0.0))),
    "adam_schedule": SMALL.replace(eta_schedule=((0, 1e-2), (6, 0.0))),
    # the first window (3) inside a larger ring (5): the window's slots wrap around the ring
    "adam_wrap": SMALL.replace(windows=(3, 5)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_identity_and_derived_keys_on_every_row(case):
    """sigma_1 from the eigh against pg2 + pwd2 + 2 pcross: the logged route (p = G u_1 / ||a||, p_wd =
    C u_1 / ||a||) satisfies it for a unit eigenvector, so it checks that algebra (a sign, a factor, the
    window's slots), not C; the numbers are compared with the rings' own in tests/test_edge.py
    (test_logged_split_equals_the_ring_route_on_every_row). Also: pgfrac and palign from their
    definitions, and exact zeros once no decay step is left in the window."""
    rows = _rows(CASES[case])
    n = n_zero = 0
    for r in rows:
        for p in ("W", "V"):
            if f"{p}_sigma" not in r:                    # rows 0 and 1: neither view
                assert not any(k.startswith(f"{p}_edge_") for k in r), r["epoch"]
                continue
            pg2, pwd2, pcross = (r[f"{p}_edge_{k}"] for k in AUTHOR)
            s1 = r[f"{p}_sigma"][0]
            # float64: sigma_1 is an eigenvalue of a Gram with entries ~sigma_1 (rounding ~1e-16
            # sigma_1 w); pg2 + pwd2 + 2 pcross = sum p_i^2 carries ~1e-16 of its largest term
            assert pg2 + pwd2 + 2 * pcross == pytest.approx(s1, rel=0, abs=1e-12 * max(pg2, pwd2, s1)), \
                (case, p, r["epoch"])
            assert r[f"{p}_edge_pgfrac"] == pytest.approx(pg2 / (pg2 + pwd2), rel=1e-15)
            if pwd2 > 0:
                assert r[f"{p}_edge_palign"] == pytest.approx(pcross / np.sqrt(pg2 * pwd2), rel=1e-15)
                assert -1 - 1e-12 <= r[f"{p}_edge_palign"] <= 1 + 1e-12             # Cauchy-Schwarz
            else:                                          # a ring of zeros in the window
                assert pcross == 0.0 and f"{p}_edge_palign" not in r and r[f"{p}_edge_pgfrac"] == 1.0
                n_zero += 1
            n += 1
    assert n == 2 * (len(rows) - 2)
    if case == "adamw_schedule":                            # rows >= 6 + w: no decay step left in the window
        assert n_zero == 2 * (len(rows) - (6 + CASES[case].windows[0]))
    else:
        assert n_zero == 0


def test_without_weight_decay_the_projections_are_exact_zeros():
    rows = _rows(SMALL.replace(eta=0.0))
    for r in rows[2:]:
        for p in ("W", "V"):
            assert r[f"{p}_edge_pwd2"] == 0.0 and r[f"{p}_edge_pcross"] == 0.0
            assert r[f"{p}_edge_pgfrac"] == 1.0 and f"{p}_edge_palign" not in r
            # sum p_i^2 = ||D^T v_1||^2 = sigma_1 (float64 rounding of a (w, P) product)
            assert r[f"{p}_edge_pg2"] == pytest.approx(r[f"{p}_sigma"][0], rel=1e-12)
    assert edge.derived(0.0, 0.0, 0.0, names=edge.AUTHOR_DERIVED) == {}
    assert edge.derived(1.0, 0.0, 0.0, names=edge.AUTHOR_DERIVED) == {"pgfrac": 1.0}


def test_all_zero_updates_give_zeros_not_nan():
    """sigma_1 = 0 (every update 0): v_1 is undefined; the projections are 0 and the ratios absent."""
    sp, st = spectra.init(np, 6, 4), edge.init(np, 6, 4)
    for _ in range(3):
        sp, st = edge.push(np, st, sp, np.zeros(6), np.zeros(6))
    out = edge.window_splits(np, sp, st, 4)
    assert [float(x) for x in out] == [0.0] * 6


def _pushed(rng, P, w_max, no_wd, n):
    """A spectra state and an edge state (float32 ring) after n pushes of random updates (Delta^wd
    None where ``no_wd``)."""
    sp, st = spectra.init(np, P, w_max), edge.init(np, P, w_max, np.float32)
    for _ in range(n):
        sp, st = edge.push(np, st, sp, rng.standard_normal(P),
                           None if no_wd else rng.standard_normal(P).astype(np.float32))
    return sp, st


@pytest.mark.parametrize("clean", ["none", "all", "mixed"])
@pytest.mark.parametrize("w_max,w", [(5, 3), (4, 4)])
def test_stacked_split_is_the_per_run_split_bit_for_bit(clean, w_max, w):
    """window_splits_runs on S runs' stacked rings (one stacked eigh and w x w algebra) against
    window_splits run by run: the same bits, the sign of a zero included; and against the ring route
    (edge_parts, split_of and author_split: a = D u_1, b = D^wd u_1 from the rings' contents) to the
    float32 ring's rounding. "mixed": a run without weight decay in a stack of runs with it (runs
    stacked by eta), whose slices of the stack's ring and cross-Grams hold the -0.0 a stack writes for
    it (-(lr/c1) 0 / denom, and the products with it): its splits are its own run's, exact zeros where
    its own run skips the ring."""
    rng = np.random.default_rng(7)
    S, P = 3, 9
    runs_ = [_pushed(rng, P, w_max, clean == "all" or (clean == "mixed" and s == 1), w_max + 2)
             for s in range(S)]                         # the ring wraps once
    specs, states = [r[0] for r in runs_], [r[1] for r in runs_]
    stack = edge.stacked(np, states)
    assert stack["clean"] == (clean == "all")
    if clean == "mixed":
        stack["buf_wd"][1] = stack["C"][1] = stack["H"][1] = -0.0
    got = edge.window_splits_runs(np, spectra.stacked(np, specs), stack, w)
    for s in range(S):
        want = edge.window_splits(np, specs[s], states[s], w)
        assert [np.float64(x[s]).tobytes() for x in got] == [np.float64(x).tobytes() for x in want], (clean, s)
        parts = edge.edge_parts(np, [specs[s]], [states[s]], w)
        ring = edge.split_of(np, parts) + edge.author_split(np, specs[s], states[s], parts[0][0], w)
        scale = max(abs(float(x)) for x in ring)
        np.testing.assert_allclose([float(x[s]) for x in got], [float(x) for x in ring], rtol=0, atol=1e-6 * scale)
        if clean == "all":                               # wd2, cross, pwd2, pcross: exact zeros
            assert [float(got[i][s]) for i in (1, 2, 4, 5)] == [0.0] * 4


def test_stacked_push_is_each_runs_push():
    """edge.push on S runs' stacked rings (one call, batch.py) leaves each run's slice as its own pushes
    leave its rings and Grams: the same bits, through a wrap of the ring and a step without decay."""
    rng = np.random.default_rng(3)
    S, P, w_max = 3, 11, 4
    sp_s, st_s = spectra.init(np, P, w_max), edge.init(np, P, w_max, np.float32)
    sp_s = dict(sp_s, buf=np.zeros((S, w_max, P)), gram=np.zeros((S, w_max, w_max)))
    st_s = dict(st_s, buf_wd=np.zeros((S, w_max, P), dtype=np.float32), C=np.zeros((S, w_max, w_max)),
                H=np.zeros((S, w_max, w_max)))
    ones = [(spectra.init(np, P, w_max), edge.init(np, P, w_max, np.float32)) for _ in range(S)]
    for t in range(w_max + 3):
        d = rng.standard_normal((S, P))
        wd = None if t == 2 else rng.standard_normal((S, P)).astype(np.float32)
        sp_s, st_s = edge.push(np, st_s, sp_s, d, wd)
        for s in range(S):
            ones[s] = edge.push(np, ones[s][1], ones[s][0], d[s], None if wd is None else wd[s])
    for s in range(S):
        np.testing.assert_array_equal(sp_s["buf"][s], ones[s][0]["buf"])
        np.testing.assert_array_equal(sp_s["gram"][s], ones[s][0]["gram"])
        for k in ("buf_wd", "C", "H"):
            np.testing.assert_array_equal(st_s[k][s], ones[s][1][k])


@pytest.mark.parametrize("w_max,w", [(5, 3), (4, 4), (6, 2)])
def test_window_rows_are_the_window_slots(w_max, w):
    """The one or two slices of the ring hold exactly the slots spectra.window_slots names."""
    ring = np.arange(w_max, dtype=float)[:, None] * np.ones((1, 2))      # row s holds s
    for count in range(1, 3 * w_max):
        got = np.concatenate(edge._window_rows(ring, count, w))[:, 0]
        want = spectra.window_slots(count, w_max, w)
        assert sorted(got.tolist()) == sorted(want), (count, got, want)


# --- an independent float64 computation from the same initial state ---------------------------

def _numpy_loop(cfg):
    """Train with a plain Adam (coupled L2) or AdamW written here, and record every update Delta,
    its gradient part and its weight-decay part, each flattened per matrix: {p: [(d, d_g, d_wd)]}.

    Coupled: m is linear in g = dL/dw + eta w, so m = m^grad + m^eta with m^grad the EMA of dL/dw
    alone and m^eta that of eta w, and Delta^eta = -(lr/c1) m^eta / (sqrt(v_hat) + eps) exactly;
    Delta^grad uses m^grad with the same denominator. AdamW: Delta^wd = -lr eta w (w before the
    decay), Delta^grad the Adam step on dL/dw. Delta is new - old of the parameters this loop keeps.
    """
    problem, state = train.setup(cfg, np)
    params = {k: np.array(v, dtype=np.float64) for k, v in state.params.items()}
    b1, b2, eps, lr = cfg.beta1, cfg.beta2, cfg.eps, cfg.lr
    m = {k: np.zeros_like(v) for k, v in params.items()}
    m_grad = {k: np.zeros_like(v) for k, v in params.items()}      # EMA of dL/dw alone
    m_eta = {k: np.zeros_like(v) for k, v in params.items()}       # EMA of eta w alone (coupled)
    v2 = {k: np.zeros_like(v) for k, v in params.items()}
    hist = {k: [] for k in params}
    for t in range(1, cfg.epochs + 1):
        eta = eta_at(cfg, t - 1)
        Yhat, cache = model.forward(np, params, problem.train, cfg.act)
        _, dY = losses.loss_and_grad(np, Yhat, problem.train.y, cfg.loss)
        grads = model.backward(np, params, problem.train, cache, dY, cfg.act)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        new = {}
        for k, w in params.items():
            dL = grads[k]
            g = dL + eta * w if cfg.optimizer == "adam" else dL
            m[k] = b1 * m[k] + (1 - b1) * g
            m_grad[k] = b1 * m_grad[k] + (1 - b1) * dL
            m_eta[k] = b1 * m_eta[k] + (1 - b1) * (eta * w)
            v2[k] = b2 * v2[k] + (1 - b2) * g ** 2
            denom = np.sqrt(v2[k] / c2) + eps
            w_dec = w * (1 - lr * eta) if cfg.optimizer == "adamw" else w
            new[k] = w_dec - lr * (m[k] / c1) / denom
            d_g = -lr * (m_grad[k] / c1) / denom
            if cfg.optimizer == "adam":
                d_wd = -lr * (m_eta[k] / c1) / denom                 # Delta^eta = -(lr/c1) m^eta / denom
            else:
                d_wd = -lr * eta * w
            hist[k].append(((new[k] - w).ravel(), d_g.ravel(), d_wd.ravel()))
        params = new
    return hist


def _author_reference(hist, t, w):
    """pg2, pwd2, pcross, pgfrac, palign and sigma_1 of row t from the explicit window matrices:
    X (m, P) of the last min(t, w) updates, v_1 its top right singular vector (numpy's SVD)."""
    win = hist[max(0, t - w):t]
    X = np.array([d for d, _, _ in win])                 # (m, P)
    Xg = np.array([g for _, g, _ in win])                # (m, P) gradient parts
    Xwd = np.array([b for _, _, b in win])               # (m, P) weight-decay parts
    U, S, Vh = np.linalg.svd(X, full_matrices=False)
    v1 = Vh[0]                                           # (P,) unit
    pg, pwd = Xg @ v1, Xwd @ v1                          # (m,) each
    pg2, pwd2, pcross = pg @ pg, pwd @ pwd, pg @ pwd
    # the parameter-space view: D^g u_1 and D^wd u_1 with u_1 = U[:, 0] the unit top eigenvector of
    # X X^T (its sign cancels in every product below)
    a, b = Xg.T @ U[:, 0], Xwd.T @ U[:, 0]               # (P,) each
    g2, wd2, cross = a @ a, b @ b, a @ b
    return {"pg2": pg2, "pwd2": pwd2, "pcross": pcross, "pgfrac": pg2 / (pg2 + pwd2),
            "palign": pcross / np.sqrt(pg2 * pwd2), "sigma1": S[0] ** 2,
            "g2": g2, "wd2": wd2, "cross": cross, "gfrac": g2 / (g2 + wd2), "cos": cross / np.sqrt(g2 * wd2)}


@pytest.mark.parametrize("optimizer,eta,windows,schedule", [
    ("adam", 1e-2, (4, 3), ()),
    ("adam", 1e-2, (3, 5), ((0, 1e-2), (7, 0.0))),       # window wraps in a larger ring; decay off
    ("adamw", 0.3, (4, 3), ()),
])
def test_matches_an_independent_numpy_loop(optimizer, eta, windows, schedule):
    """Row by row against a plain float64 training loop and an SVD of the explicit window: both views
    (pg2, pwd2, pcross, pgfrac, palign and g2, wd2, cross, gfrac, cos) and sigma_1.

    Tolerance 1e-9 relative to the largest of pg2, pwd2 (and 1e-9 on pgfrac, palign): both sides
    are float64 and differ only by rounding (their own operation orders in the optimizer and the
    split, eigh of an incremental Gram against an SVD of the explicit matrix), ~1e-16 per operation;
    training amplifies it over the steps and v_1 over the window's relative eigengap. Measured
    here: at most 2e-15; 1e-9 leaves room for other BLAS builds while any error in the slots, the
    pairing of p_g with p_wd or the normalisation of v_1 is O(1).
    """
    cfg = validate(SMALL.replace(optimizer=optimizer, eta=eta, windows=windows, eta_schedule=schedule))
    rows = _rows(cfg)
    hist = _numpy_loop(cfg)
    w = cfg.windows[0]
    worst = 0.0
    for t in range(2, cfg.epochs + 1):
        r = rows[t]
        for p in ("W", "V"):
            ref = _author_reference(hist[p], t, w)
            assert r[f"{p}_sigma"][0] == pytest.approx(ref["sigma1"], rel=1e-9), (t, p)
            scale = max(ref["pg2"], ref["pwd2"])
            for k in AUTHOR:
                err = abs(r[f"{p}_edge_{k}"] - ref[k]) / scale
                worst = max(worst, err)
                assert err <= 1e-9, (t, p, k, r[f"{p}_edge_{k}"], ref[k])
            for k in ("pgfrac", "palign"):
                assert r[f"{p}_edge_{k}"] == pytest.approx(ref[k], rel=1e-9, abs=1e-9), (t, p, k)
            scale = max(ref["g2"], ref["wd2"])           # the parameter-space view, same tolerance
            for k in ("g2", "wd2", "cross"):
                err = abs(r[f"{p}_edge_{k}"] - ref[k]) / scale
                worst = max(worst, err)
                assert err <= 1e-9, (t, p, k, r[f"{p}_edge_{k}"], ref[k])
            for k in ("gfrac", "cos"):
                assert r[f"{p}_edge_{k}"] == pytest.approx(ref[k], rel=1e-9, abs=1e-9), (t, p, k)
    assert worst < 1e-9


def test_a_cancelling_g2_is_taken_by_the_ring_route():
    """Delta = Delta^wd + eps noise (the gradient part ~1e-4 of the decay part), float32 ring of Delta^wd,
    P = 290816: g2 = ||a||^2 - 2<a, b> + ||b||^2 from the cross-Grams cancels to rounding (here below 0),
    so window_splits returns the ring route's numbers (g2 = ||a - b||^2 >= 0) for that block."""
    rng = np.random.default_rng(0)
    P, w_max = 290816, 4
    sp, st = spectra.init(np, P, w_max), edge.init(np, P, w_max, np.float32)
    for _ in range(w_max):
        wd = rng.standard_normal(P).astype(np.float32)
        sp, st = edge.push(np, st, sp, wd.astype(np.float64) + 1e-4 * rng.standard_normal(P), wd)
    raw = edge.window_splits_runs(np, edge.stack_of_one(sp), edge.stack_of_one(st), w_max, scale=True)
    assert edge.cancels(float(raw[0][0]), float(raw[6][0]), sp, st)        # the case under test
    got = [float(x) for x in edge.window_splits(np, sp, st, w_max)]
    want = [float(x) for x in edge.ring_splits(np, sp, st, w_max)]
    assert got == want and got[0] > 0
    parts = edge.edge_parts(np, [sp], [st], w_max)
    g = parts[0][0] - parts[0][1]
    assert got[0] == pytest.approx(float(g @ g), rel=1e-12)


def test_rows_take_the_ring_route_where_g2_cancels_and_a_stack_does_the_same(monkeypatch):
    """With the cancellation threshold forced up (every row 'cancels'), each logged edge key is the ring
    route's (edge.ring_splits on the run's rings) and the scale key is never logged; a stack of runs with
    and without decay logs each run's row as it logs alone (bit for bit)."""
    import json
    from test_batch import _alone, _stacked
    monkeypatch.setattr(edge, "CANCEL", 1e30)
    cfg = validate(SMALL.replace(dtype="float32", epochs=7))
    problem, state = train.setup(cfg, np)
    for _ in range(cfg.epochs + 1):
        row, fwd = train.evaluate(np, cfg, state, problem)
        assert not any(k.endswith("_edge_scale") for k in row)
        for p in ("W", "V"):
            want = edge.ring_splits(np, state.spec[p], state.edge[p], cfg.windows[0])
            if want is None:
                continue
            assert [row[f"{p}_edge_{k}"] for k in edge.KEYS + edge.AUTHOR_KEYS] == [float(x) for x in want]
            assert f"{p}_edge_gfrac" in row
        state = train.step(np, cfg, state, problem, fwd)
    cfgs = [validate(SMALL.replace(dtype="float32", epochs=7, seed=seed, eta=eta))
            for seed, eta in ((0, 1e-2), (1, 0.0), (2, 3e-2))]
    for m, c in zip(_stacked(cfgs, np), cfgs):
        assert m.failed is None
        assert [json.dumps(r, sort_keys=True) for r in m.sink.rows] == \
            [json.dumps(r, sort_keys=True) for r in _alone(c, np)]
