"""tianref.optimizers: which setting reaches which optimizer, and its checkpoint arrays.

Independent references: SGD's two steps computed by hand (torch semantics, docs/math.md §9: buf = g' at the
first step, then buf <- mu buf + g', g' = g + eta w) with a momentum unlike Adam's beta1, so a crossed wire
shows; the eta override (a schedule's value) must give the step of a config whose eta is that value, for
every parameter and optimizer; a state written to checkpoint arrays and read back must continue with the
very steps (parameters and weight-decay parts) of the state that was never written, across a schedule's
switch to eta = 0 (the case where the decay's part of the momentum is nonzero but no new decay enters).
"""
import numpy as np
import pytest

from tianref import optimizers
from tianref.config import TrainConfig

OPTS = ("adam", "adamw", "sgd", "muon")


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    params = {"W": rng.standard_normal((6, 4)), "V": rng.standard_normal((4, 3))}
    grads = [{k: rng.standard_normal(p.shape) for k, p in params.items()} for _ in range(8)]
    return params, grads


def test_sgd_steps_with_its_momentum_not_adams_beta1():
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


@pytest.mark.parametrize("opt", OPTS)
def test_the_eta_override_is_the_step_of_that_eta_for_every_parameter(opt):
    params, grads = _problem()
    base = TrainConfig(optimizer=opt, lr=0.01)

    def steps(cfg, eta=None):
        p, st = params, optimizers.init(np, cfg, params)
        for g in grads[:3]:
            p, st = optimizers.update(np, cfg, p, g, st, eta=eta)
        return p

    over = steps(base.replace(eta=0.3), eta=0.05)
    same = steps(base.replace(eta=0.05))
    other = steps(base.replace(eta=0.3))
    for k in ("W", "V"):
        np.testing.assert_array_equal(over[k], same[k])               # the same operations on the same values
        assert not np.array_equal(over[k], other[k]), k               # eta matters to this parameter


@pytest.mark.parametrize("opt", OPTS)
def test_a_state_read_back_from_its_arrays_continues_the_same_steps(opt):
    params, grads = _problem(1)
    cfg = TrainConfig(optimizer=opt, lr=0.01, eta=0.1)
    etas = [0.1, 0.1, 0.1, 0.0, 0.0]                                   # a schedule switching to 0 at step 4
    p, st = params, optimizers.init(np, cfg, params)
    for g, eta in zip(grads, etas):
        p, st = optimizers.update(np, cfg, p, g, st, eta=eta)
    arrays = {k: np.array(v, copy=True) for k, v in optimizers.to_arrays(cfg, st).items()}
    back = optimizers.from_arrays(np, cfg, arrays, ["W", "V"], np.float64)
    a, b = (p, st), (p, back)
    for g in grads[len(etas):]:
        pa, sa, wa = optimizers.update(np, cfg, a[0], g, a[1], eta=0.0, wd_part=True)
        pb, sb, wb = optimizers.update(np, cfg, b[0], g, b[1], eta=0.0, wd_part=True)
        for k in ("W", "V"):
            np.testing.assert_array_equal(pa[k], pb[k])
            assert (wa[k] is None) == (wb[k] is None), (k, wa[k], wb[k])
            if wa[k] is not None:
                np.testing.assert_array_equal(wa[k], wb[k])
        a, b = (pa, sa), (pb, sb)
