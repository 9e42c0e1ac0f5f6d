"""Adam (coupled L2) and AdamW: a first step checked by hand, and later steps against the formula."""
import numpy as np

from tianref import optim


def _step(decoupled, eta=0.1):
    params = {"w": np.array([0.5, -0.25])}
    grads = {"w": np.array([0.2, 0.0])}
    st = optim.adam_init(np, params)
    return optim.adam_update(np, params, grads, st, lr=1e-3, eta=eta, decoupled=decoupled)


def test_first_adam_step_by_hand():
    # t = 1: m_hat = g', v_hat = g'^2, so w1 = w0 - lr g'/(|g'| + eps), with g' = g + eta w0.
    # w = 0.5:   g' = 0.2 + 0.05 = 0.25   -> 0.5 - 1e-3 * 0.25/(0.25 + 1e-8) = 0.49900000004
    # w = -0.25: g' = 0 - 0.025 = -0.025  -> -0.25 + 1e-3 * 0.025/(0.025 + 1e-8) = -0.2490000004
    new, st = _step(decoupled=False)
    np.testing.assert_allclose(new["w"], [0.49900000004, -0.2490000004], rtol=0, atol=1e-15)
    assert st["t"] == 1
    np.testing.assert_allclose(st["m"]["w"], [0.025, -0.0025], rtol=1e-15)       # (1 - beta1) g'
    np.testing.assert_allclose(st["v"]["w"], [0.0000625, 0.000000625], rtol=1e-12)  # (1 - beta2) g'^2


def test_first_adamw_step_by_hand():
    # decay first: w (1 - lr eta) = 0.49995 and -0.249975; then the plain Adam step on g:
    # 0.49995 - 1e-3 * 0.2/(0.2 + 1e-8) = 0.49895000005;  g = 0 leaves the second entry alone.
    new, _ = _step(decoupled=True)
    np.testing.assert_allclose(new["w"], [0.49895000005, -0.249975], rtol=0, atol=1e-15)


def test_inputs_not_mutated_and_bias_correction_later_steps():
    rng = np.random.default_rng(0)
    p = {"w": rng.standard_normal(4)}
    orig = p["w"]                       # the caller's array object
    p0 = orig.copy()
    st = optim.adam_init(np, p)
    m = np.zeros(4)
    v = np.zeros(4)
    w = p0.copy()
    for t in range(1, 6):
        g = rng.standard_normal(4)
        p, st = optim.adam_update(np, p, {"w": g}, st, lr=1e-2, eta=1e-3)
        gg = g + 1e-3 * w
        m = 0.9 * m + 0.1 * gg
        v = 0.999 * v + 0.001 * gg ** 2
        w = w - 1e-2 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        np.testing.assert_allclose(p["w"], w, rtol=1e-13)   # same formula, rounding-order differences only
    assert st["t"] == 5
    np.testing.assert_array_equal(orig, p0)   # the caller's array was never written in place
    assert not np.allclose(p["w"], p0)        # ... although the parameters did move
