"""GELU (exact erf form), the output scale beta and the initial scale alpha; their CLI errors."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from tianref import data, loss as losses, model, train
from tianref.backend import to_host
from tianref.cli import main as cli_main
from tianref.config import TrainConfig, validate


def test_gelu_values_and_derivative():
    x = np.array([-1.0, 0.0, 1.0, 2.0])
    # x Phi(x): Phi(1) = 0.8413447460685429, Phi(-1) = 0.15865525393145707, Phi(2) = 0.9772498680518208
    np.testing.assert_allclose(model.sigma(np, x, "gelu"),
                               [-0.15865525393145707, 0.0, 0.8413447460685429, 1.9544997361036416],
                               rtol=1e-15, atol=1e-17)
    # sigma'(0) = 1/2; sigma'(1) = Phi(1) + phi(1) = 0.8413447460685429 + 0.24197072451914337
    np.testing.assert_allclose(model.sigma_prime(np, np.array([0.0, 1.0]), "gelu"),
                               [0.5, 1.0833154705876863], rtol=1e-15)


def test_gelu_is_not_the_tanh_approximation():
    x = np.array([1.5])
    tanh_form = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    assert abs(model.sigma(np, x, "gelu")[0] - tanh_form[0]) > 1e-4


@pytest.mark.parametrize("beta", [2.5, 0.4])          # above and below 1: the backward scales either way
@pytest.mark.parametrize("act", ["sqr", "gelu"])
def test_output_scale_gradient_matches_central_differences(xp, act, beta):
    M, K = 7, 12
    tr, _, W0, V0 = data.init_host(M, K, 30, 3)
    batch = data.make_batch(xp, M, tr)
    params = {"W": xp.asarray(3 * W0), "V": xp.asarray(5 * V0)}

    def L(p):
        Yhat, _ = model.forward(xp, p, batch, act, beta)
        return float(losses.loss_and_grad(xp, Yhat, batch.y, "tian")[0])
    Yhat, cache = model.forward(xp, params, batch, act, beta)
    _, G = losses.loss_and_grad(xp, Yhat, batch.y, "tian")
    grads = model.backward(xp, params, batch, cache, G, act, beta)
    rng = np.random.default_rng(0)
    for name in ("W", "V"):
        U = rng.standard_normal(params[name].shape)
        h = 1e-6
        fd = (L(dict(params, **{name: params[name] + h * xp.asarray(U)}))
              - L(dict(params, **{name: params[name] - h * xp.asarray(U)}))) / (2 * h)
        assert float((to_host(grads[name]) * U).sum()) == pytest.approx(fd, rel=1e-6), name


def test_init_scale_multiplies_the_initial_V_only():
    cfg = validate(TrainConfig(M=7, K=12, n_train=30, dtype="float64", init_scale=0.25))
    _, st = train.setup(cfg, np)
    _, _, W0, V0 = data.init_host(7, 12, 30, 0)
    np.testing.assert_array_equal(st.params["V"], 0.25 * V0)
    np.testing.assert_array_equal(st.params["W"], W0)


def test_default_knobs_leave_the_forward_bit_identical():
    tr, _, W0, V0 = data.init_host(7, 12, 30, 0)
    batch = data.make_batch(np, 7, tr)
    p = {"W": W0, "V": V0}
    a, _ = model.forward(np, p, batch, "sqr")
    b, _ = model.forward(np, p, batch, "sqr", 1.0)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, model.sigma(np, W0[batch.a] + W0[7 + batch.b], "sqr") @ V0)


@pytest.mark.parametrize("args,word", [
    (["--momentum", "1", "--optimizer", "sgd"], "--momentum must lie in [0, 1)"),
    (["--momentum", "0.5"], "--optimizer adam does not use it"),
    (["--output-scale", "0"], "--output-scale"),
    (["--init-scale", "-1"], "--init-scale"),
    (["--top-layer", "ridge", "--loss", "theory"], "--loss tian"),
    (["--optimizer", "lion"], "lion"),
])
def test_bad_knobs_are_usage_errors(tmp_path, args, word):
    out = tmp_path / "x"
    r = CliRunner().invoke(cli_main, ["train", "--M", "7", "--K", "12", "--epochs", "2", "--out", str(out)] + args)
    assert r.exit_code == 2 and word in r.stderr and "Traceback" not in r.output
    assert not (out / "config.json").exists() and not (out / "metrics.jsonl").exists()


def test_cli_records_the_knobs(tmp_path):
    out = tmp_path / "r"
    r = CliRunner().invoke(cli_main, ["train", "--M", "7", "--K", "12", "--epochs", "3", "--optimizer", "sgd",
                                      "--momentum", "0.5", "--act", "gelu", "--output-scale", "2",
                                      "--init-scale", "0.5", "--out", str(out)])
    assert r.exit_code == 0, r.output
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert (cfg["optimizer"], cfg["momentum"], cfg["act"], cfg["output_scale"], cfg["init_scale"]) == \
        ("sgd", 0.5, "gelu", 2.0, 0.5)
    r = CliRunner().invoke(cli_main, ["train", "--out", str(out), "--resume", "--epochs", "5"])
    assert r.exit_code == 0, r.output
