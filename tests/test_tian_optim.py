"""SGD (torch semantics) and Muon (Tian's arrangement): first steps by hand, NS properties, wiring."""
import numpy as np
import pytest

from tianref import muon, optim_sgd, optimizers, runs, train
from tianref.config import TrainConfig, validate


def test_sgd_two_steps_by_hand():
    # lr 0.1, momentum 0.9, eta 0.1, w0 = (0.5, -0.25), g = (0.2, 0) at both steps.
    # step 1: g' = g + eta w0 = (0.25, -0.025); buf = g' (torch's first step); w1 = w0 - 0.1 buf
    #         = (0.475, -0.2475)
    # step 2: g' = (0.2 + 0.0475, -0.02475) = (0.2475, -0.02475);
    #         buf = 0.9 (0.25, -0.025) + g' = (0.4725, -0.04725);  w2 = w1 - 0.1 buf = (0.42775, -0.242775)
    p = {"w": np.array([0.5, -0.25])}
    g = {"w": np.array([0.2, 0.0])}
    st = optim_sgd.sgd_init(np, p)
    p1, st = optim_sgd.sgd_update(np, p, g, st, lr=0.1, momentum=0.9, eta=0.1)
    np.testing.assert_allclose(p1["w"], [0.475, -0.2475], rtol=0, atol=1e-15)
    np.testing.assert_allclose(st["buf"]["w"], [0.25, -0.025], rtol=0, atol=1e-15)
    p2, st = optim_sgd.sgd_update(np, p1, g, st, lr=0.1, momentum=0.9, eta=0.1)
    np.testing.assert_allclose(p2["w"], [0.42775, -0.242775], rtol=0, atol=1e-15)
    assert st["t"] == 2
    np.testing.assert_array_equal(p["w"], [0.5, -0.25])                  # inputs untouched


def test_sgd_steps_with_its_momentum_not_adams_beta1():
    # through optimizers.update: beta1 and momentum default to 0.9 both, so mu = 0.5 shows a crossed wire
    # lr 0.1, mu 0.5 (beta1 stays 0.9), eta 0.1, w0 = (0.5, -0.25), g = (0.2, 0) at both steps.
    # step 1: g' = g + eta w0 = (0.25, -0.025); buf = g'; w1 = w0 - 0.1 buf = (0.475, -0.2475)
    # step 2: g' = (0.2475, -0.02475); buf = 0.5 (0.25, -0.025) + g' = (0.3725, -0.03725);
    #         w2 = w1 - 0.1 buf = (0.43775, -0.243775)
    cfg = TrainConfig(optimizer="sgd", lr=0.1, momentum=0.5, beta1=0.9, eta=0.1)
    p = {"W": np.array([0.5, -0.25])}
    g = {"W": np.array([0.2, 0.0])}
    st = optimizers.init(np, cfg, p)
    p, st = optimizers.update(np, cfg, p, g, st)
    p, st = optimizers.update(np, cfg, p, g, st)
    np.testing.assert_allclose(p["W"], [0.43775, -0.243775], rtol=0, atol=1e-15)   # a few ulps of 0.5


def test_sgd_without_momentum_is_gradient_descent():
    p, g = {"w": np.array([1.0, 2.0])}, {"w": np.array([0.5, -1.0])}
    st = optim_sgd.sgd_init(np, p)
    for _ in range(3):
        p, st = optim_sgd.sgd_update(np, p, g, st, lr=0.1, momentum=0.0)
    np.testing.assert_allclose(p["w"], [1.0 - 0.15, 2.0 + 0.3], atol=1e-15)


def _f(x):
    """The five NS polynomials applied to one singular value (x <- a x + b x^3 + c x^5)."""
    for a, b, c in muon.NS_COEFFS:
        x = a * x + b * x ** 3 + c * x ** 5
    return x


def test_muon_first_step_by_hand():
    # W0 = [[1, 2]] (1 x 2), g = [[3, 4]], lr 0.1, eta 0.5.
    # decay first: W0 (1 - 0.05) = [[0.95, 1.9]];  m = 0.01 g = [[0.03, 0.04]], ||m||_F = 0.05.
    # NS of a 1 x q matrix acts on its one singular value s = 0.05 / (0.05 + 1e-7) = 0.999998000004:
    # O = f(s) [[0.6, 0.8]] with f(s) = 0.8989062899233131 (the five polynomials, evaluated by hand
    # in double precision; f(1) starts 4.01 - 9.22 + 5.80 = 0.59 ...), i.e. O = [[0.53934377395, 0.71912503194]].
    # W1 = [[0.95 - 0.053934377395, 1.9 - 0.071912503194]] = [[0.896065622605, 1.828087496806]]
    W, st = muon.muon_update(np, np.array([[1.0, 2.0]]), np.array([[3.0, 4.0]]),
                             muon.muon_init(np, np.zeros((1, 2))), lr=0.1, eta=0.5)
    np.testing.assert_allclose(W, [[0.896065622604605, 1.828087496806135]], rtol=0, atol=1e-14)
    np.testing.assert_allclose(st["m"], [[0.03, 0.04]], rtol=1e-15)
    assert st["t"] == 1
    assert _f(0.999998000004) == pytest.approx(0.8989062899233131, rel=1e-15)


def test_newton_schulz_of_a_diagonal_acts_on_each_singular_value():
    # diag(3, 4): ||.||_F = 5, so the singular values enter as 3/(5 + 1e-7) and 4/(5 + 1e-7)
    O = muon.newton_schulz(np, np.diag([3.0, 4.0]))
    np.testing.assert_allclose(O, np.diag([1.1502072324162258, 0.9131303990793707]), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(np.diag(O), [_f(3 / (5 + 1e-7)), _f(4 / (5 + 1e-7))], rtol=1e-14)


def test_newton_schulz_is_transpose_invariant_and_nearly_orthogonal():
    rng = np.random.default_rng(0)
    G = rng.standard_normal((22, 64))
    O = muon.newton_schulz(np, G)
    np.testing.assert_allclose(muon.newton_schulz(np, G.T), O.T, rtol=0, atol=1e-14)
    s = np.linalg.svd(O, compute_uv=False)
    assert 0.85 < s.min() and s.max() < 1.2                 # singular values pushed to ~1
    U, _, Vt = np.linalg.svd(G, full_matrices=False)         # ... and G's singular vectors:
    D = U.T @ O @ Vt.T                                       # U^T O V is diagonal
    np.testing.assert_allclose(D, np.diag(np.diag(D)), atol=1e-10)


def test_muon_trains_W_by_muon_and_V_by_adam():
    cfg = validate(TrainConfig(M=7, K=12, n_train=30, epochs=3, optimizer="muon", dtype="float64"))
    final, _, _ = train.run(cfg, np)
    st = final.adam
    assert st["muon"]["t"] == 3 and st["adam"]["t"] == 3 and list(st["adam"]["m"]) == ["V"]


@pytest.mark.parametrize("opt", ["sgd", "muon"])
def test_every_backend_matches_numpy(xp, opt):
    from tianref.backend import to_host
    cfg = validate(TrainConfig(M=7, K=12, n_train=30, epochs=4, optimizer=opt, dtype="float64", lr=0.05,
                               act="gelu", output_scale=1.5, init_scale=0.5))
    a, _, ra = train.run(cfg, np)
    b, _, rb = train.run(cfg, xp)
    for k in ("W", "V"):
        np.testing.assert_allclose(to_host(b.params[k]), a.params[k], rtol=1e-12)
    assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-12)


@pytest.mark.parametrize("opt", ["sgd", "muon"])
def test_checkpoint_round_trip_continues_exactly(opt):
    cfg = validate(TrainConfig(M=7, K=12, n_train=30, epochs=6, optimizer=opt, dtype="float64", lr=0.05))
    full, problem, _ = train.run(cfg, np)
    half = validate(cfg.replace(epochs=3))
    st, problem, _ = train.run(half, np)
    arrays = train.state_arrays(half, st, problem, with_buffer=True)
    st2 = train.state_from_arrays(np, cfg, arrays)
    end, _, _ = train.run(cfg, np, problem=problem, state=st2, sink=runs.MemorySink())
    for k in ("W", "V"):
        np.testing.assert_array_equal(end.params[k], full.params[k])


def test_sgd_weight_decay_part_by_hand_and_exact_split():
    # lr 0.1, mu 0.9, eta 0.1, w0 = (0.5, -0.25), g = (0.2, 0) twice (as test_sgd_two_steps_by_hand):
    # step 1: b^wd = eta w0 = (0.05, -0.025), Delta^wd = -0.1 b^wd = (-0.005, 0.0025)
    # step 2: b^wd = 0.9 (0.05, -0.025) + 0.1 w1 = (0.045 + 0.0475, -0.0225 - 0.02475) = (0.0925, -0.04725),
    #         Delta^wd = (-0.00925, 0.004725)
    p = {"w": np.array([0.5, -0.25])}
    g = {"w": np.array([0.2, 0.0])}
    st = optim_sgd.sgd_init(np, p)
    p1, st, wd1 = optim_sgd.sgd_update(np, p, g, st, lr=0.1, momentum=0.9, eta=0.1, wd_part=True)
    np.testing.assert_allclose(wd1["w"], [-0.005, 0.0025], rtol=0, atol=1e-16)
    p2, st, wd2 = optim_sgd.sgd_update(np, p1, g, st, lr=0.1, momentum=0.9, eta=0.1, wd_part=True)
    np.testing.assert_allclose(wd2["w"], [-0.00925, 0.004725], rtol=0, atol=1e-16)
    np.testing.assert_array_equal(p2["w"], optim_sgd.sgd_update(np, p1, g, {"t": 1, "buf": {"w": np.array(
        [0.25, -0.025])}}, lr=0.1, momentum=0.9, eta=0.1)[0]["w"])          # the path is unchanged
    # random steps: Delta - Delta^wd = -lr b^grad with b^grad <- mu b^grad + g (the split is exact)
    rng = np.random.default_rng(0)
    p, st, bg = {"w": rng.standard_normal(5)}, None, np.zeros(5)
    st = optim_sgd.sgd_init(np, p)
    for t in range(6):
        gg = rng.standard_normal(5)
        new, st, wd = optim_sgd.sgd_update(np, p, {"w": gg}, st, lr=0.05, momentum=0.9, eta=0.3, wd_part=True)
        bg = gg if t == 0 else 0.9 * bg + gg
        np.testing.assert_allclose(new["w"] - p["w"] - wd["w"], -0.05 * bg, rtol=1e-12, atol=1e-15)
        p = new
    # eta -> 0 after decay: the buffer still carries it, Delta^wd = -lr mu b^wd (a schedule's switch)
    np.testing.assert_allclose(optim_sgd.sgd_update(np, p, {"w": gg}, st, lr=0.1, eta=0.0, wd_part=True)[2]["w"],
                               -0.1 * 0.9 * st["buf_wd"]["w"], rtol=1e-15)
    fresh = optim_sgd.sgd_init(np, p)                  # no decay ever: exactly zero, reported as None
    assert optim_sgd.sgd_update(np, p, {"w": gg}, fresh, lr=0.1, eta=0.0, wd_part=True)[2]["w"] is None


def test_muon_weight_decay_part_is_minus_lr_eta_W():
    W0 = np.array([[1.0, 2.0]])
    W1, _, wd = muon.muon_update(np, W0, np.array([[3.0, 4.0]]), muon.muon_init(np, W0), lr=0.1, eta=0.5,
                                 wd_part=True)
    np.testing.assert_allclose(wd, [[-0.05, -0.1]], rtol=0, atol=1e-16)
    O = muon.newton_schulz(np, np.array([[0.03, 0.04]]))
    np.testing.assert_allclose(W1 - W0 - wd, -0.1 * O, rtol=0, atol=1e-15)   # the rest is -lr O


@pytest.mark.parametrize("opt", ["sgd", "muon"])
def test_optimizers_update_returns_the_split_without_changing_the_step(opt):
    if opt == "muon" and not _adam_has_wd_part():
        pytest.skip("Muon's V is stepped by Adam, whose split is not in optim.adam_update here")
    cfg = validate(TrainConfig(M=7, K=12, n_train=30, optimizer=opt, dtype="float64", eta=0.01))
    _, s = train.setup(cfg, np)
    g = {k: np.ones_like(v) for k, v in s.params.items()}
    plain, _ = optimizers.update(np, cfg, s.params, g, s.adam)
    new, _, parts = optimizers.update(np, cfg, s.params, g, s.adam, wd_part=True)
    for k in ("W", "V"):
        np.testing.assert_array_equal(new[k], plain[k])
    np.testing.assert_allclose(parts["W"], -cfg.lr * cfg.eta * s.params["W"], rtol=1e-15)


def _adam_has_wd_part():
    import inspect
    from tianref import optim
    return "wd_part" in inspect.signature(optim.adam_update).parameters


def test_optimizer_state_arrays_round_trip_with_the_decay_parts():
    """Checkpoint arrays carry every buffer of every optimizer (the weight-decay ones included)."""
    rng = np.random.default_rng(3)
    for opt in ("adam", "adamw", "sgd", "muon"):
        cfg = validate(TrainConfig(M=7, K=12, n_train=30, optimizer=opt, dtype="float64", eta=0.01))
        _, s = train.setup(cfg, np)
        p, st = s.params, s.adam
        for _ in range(2):                                   # real states after two steps
            g = {k: rng.standard_normal(v.shape) for k, v in p.items()}
            p, st = optimizers.update(np, cfg, p, g, st)
        back = optimizers.from_arrays(np, cfg, optimizers.to_arrays(cfg, st), ["W", "V"], np.float64)
        _assert_same(back, st, opt)


def _assert_same(a, b, where):
    if isinstance(b, dict):
        assert isinstance(a, dict) and sorted(a) == sorted(b), (where, sorted(a), sorted(b))
        for k in b:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(b, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, where
