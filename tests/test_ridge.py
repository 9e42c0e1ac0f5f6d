"""The ridge top layer: the solve against independent routes, its float64 stability, and the wiring."""
import numpy as np
import pytest

from tianref import model, ridge, runs, train
from tianref.config import TrainConfig, validate
from tianref.errors import InputError, RunFailure


def _F(n, K, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, K)) ** 2, rng.integers(0, 5, size=n)


@pytest.mark.parametrize("n,K", [(40, 12), (12, 40)])          # primal (K x K) and dual (n x n) branches
def test_ridge_matches_svd_and_augmented_least_squares(n, K):
    F, y = _F(n, K)
    lam, M = 1e-3, 5
    V = ridge.ridge_V(np, F, y, M, lam)
    T = np.eye(M)[y] - 1 / M
    U, s, Vh = np.linalg.svd(F, full_matrices=False)             # Tian's route
    V_svd = Vh.T @ ((s / (s * s + lam))[:, None] * (U.T @ T))
    np.testing.assert_allclose(V, V_svd, rtol=1e-9, atol=1e-12)
    A = np.vstack([F, np.sqrt(lam) * np.eye(K)])                  # min ||F V - T||^2 + lam ||V||^2
    V_ls = np.linalg.lstsq(A, np.vstack([T, np.zeros((K, M))]), rcond=None)[0]
    np.testing.assert_allclose(V, V_ls, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(V.sum(axis=1), 0, atol=1e-12)      # T 1 = 0  =>  V 1 = 0


def test_float32_activations_are_solved_in_float64():
    # an ill-conditioned F: cond(F^T F + lam I) ~ 1e8. The float64 solve of the float32 F is accurate;
    # the same normal equations solved in float32 are not (the reason the solve is always float64).
    rng = np.random.default_rng(1)
    Q1, _ = np.linalg.qr(rng.standard_normal((60, 20)))
    Q2, _ = np.linalg.qr(rng.standard_normal((20, 20)))
    F = ((Q1 * np.logspace(2, -3, 20)) @ Q2.T).astype(np.float32)  # singular values 1e2 .. 1e-3
    y = rng.integers(0, 4, size=60)
    V32 = ridge.ridge_V(np, F, y, 4, 1e-3)
    assert V32.dtype == np.float32
    exact = ridge.ridge_V(np, F.astype(np.float64), y, 4, 1e-3)
    assert np.abs(V32 - exact).max() <= 1e-6 * np.abs(exact).max()
    T = (np.eye(4)[y] - 0.25).astype(np.float32)
    naive = np.linalg.solve(F.T @ F + np.float32(1e-3) * np.eye(20, dtype=np.float32), F.T @ T)
    assert np.abs(naive - exact).max() > 1e-3 * np.abs(exact).max()


def test_ridge_limit_formula_is_the_gradient_at_the_ridge_V():
    F, y = _F(30, 8)
    lam, M = 0.05, 5
    V = ridge.ridge_V(np, F, y, M, lam)
    R = (np.eye(M)[y] - 1 / M) - F @ V
    G = (R - R.mean(axis=0)) @ V.T                                # P_perp (T - F V) V^T
    np.testing.assert_allclose(ridge.ridge_limit_G_F(np, F, y, M, lam), G, rtol=1e-9, atol=1e-13)


def test_current_keeps_V_the_ridge_solution_of_W_and_steps_only_W():
    cfg = validate(TrainConfig(M=7, K=12, n_train=30, epochs=5, top_layer="ridge", ridge_eval="current",
                               dtype="float64", lr=1e-2))
    sink = runs.MemorySink()
    final, problem, _ = train.run(cfg, np, sink=sink)
    _, F = model.hidden(np, final.params["W"], problem.train, "sqr")
    np.testing.assert_array_equal(final.params["V"], ridge.ridge_V(np, F, problem.train.y, 7, 1e-3))
    assert list(final.adam["m"]) == ["W"]                          # the optimizer never sees V
    # the gradient of W treats V as a constant: one step by hand
    _, s0 = train.setup(cfg, np)
    Yhat, cache = model.forward(np, s0.params, problem.train, "sqr")
    from tianref import loss as losses, optim
    _, G = losses.loss_and_grad(np, Yhat, problem.train.y, "tian")
    g = model.backward(np, s0.params, problem.train, cache, G, "sqr")["W"]
    W1, _ = optim.adam_update(np, {"W": s0.params["W"]}, {"W": g}, optim.adam_init(np, {"W": g}),
                              lr=1e-2, eta=cfg.eta)
    s1 = train.step(np, cfg, s0, problem)
    np.testing.assert_array_equal(s1.params["W"], W1["W"])


@pytest.mark.parametrize("ev", ["held", "current"])
@pytest.mark.parametrize("opt", ["adam", "sgd", "muon"])
def test_ridge_checkpoint_resume_is_exact(opt, ev):
    cfg = validate(TrainConfig(M=7, K=12, n_train=30, epochs=6, top_layer="ridge", dtype="float64", lr=1e-2,
                               optimizer=opt, ridge_eval=ev))
    full, _, _ = train.run(cfg, np)
    half = validate(cfg.replace(epochs=3))
    st, problem, _ = train.run(half, np)
    st2 = train.state_from_arrays(np, cfg, train.state_arrays(half, st, problem, with_buffer=True))
    end, _, _ = train.run(cfg, np, problem=problem, state=st2)
    for k in ("W", "V"):
        np.testing.assert_array_equal(end.params[k], full.params[k])


def test_ridge_needs_the_mse_loss_and_unit_output_scale():
    with pytest.raises(InputError, match="--loss tian"):
        validate(TrainConfig(top_layer="ridge", loss="theory"))
    with pytest.raises(InputError, match="output-scale"):
        validate(TrainConfig(top_layer="ridge", output_scale=2.0))
    with pytest.raises(InputError, match="ridge-reg"):
        validate(TrainConfig(top_layer="ridge", ridge_reg=0.0))


@pytest.mark.parametrize("K", [12, 40])                       # primal (K < n = 30) and dual solves
def test_ridge_on_every_backend_matches_numpy(xp, K):
    from tianref.backend import to_host
    cfg = validate(TrainConfig(M=7, K=K, n_train=30, epochs=3, top_layer="ridge", dtype="float64", lr=1e-2))
    a, _, _ = train.run(cfg, np)
    b, _, _ = train.run(cfg, xp)
    np.testing.assert_allclose(to_host(b.params["V"]), a.params["V"], rtol=1e-10)


def _held_cfg(**kw):
    return validate(TrainConfig(**dict(dict(M=7, K=12, n_train=30, epochs=5, top_layer="ridge", dtype="float64",
                                            lr=1e-2, eta=1e-2), **kw)))


def test_held_is_tians_loop_step_by_hand():
    """--ridge-eval held, one step written out: V := ridge(W0) outside the gradient, the gradients of W
    and V at (W0, V_solved), one coupled-L2 Adam step of both; row 0 sees the initial V, row 1 the V
    held after the step (not ridge(W1)). Same functions, same order: equality is exact."""
    from tianref import loss as losses, optim
    cfg = _held_cfg(epochs=1)
    problem, s0 = train.setup(cfg, np)
    V0 = s0.params["V"].copy()
    _, F0 = model.hidden(np, s0.params["W"], problem.train, "sqr")
    Vs = ridge.ridge_V(np, F0, problem.train.y, 7, cfg.ridge_reg)
    assert not np.allclose(V0, Vs)                                # setup leaves the initial V alone
    P = {"W": s0.params["W"], "V": Vs}
    Yhat, cache = model.forward(np, P, problem.train, "sqr")
    _, G = losses.loss_and_grad(np, Yhat, problem.train.y, "tian")
    g = model.backward(np, P, problem.train, cache, G, "sqr")
    want, _ = optim.adam_update(np, P, g, optim.adam_init(np, P), lr=cfg.lr, eta=cfg.eta)
    sink = runs.MemorySink()
    final, _, _ = train.run(cfg, np, sink=sink)
    assert sorted(final.adam["m"]) == ["V", "W"]                   # the optimizer steps V too
    for k in ("W", "V"):
        np.testing.assert_array_equal(final.params[k], want[k])
    _, F1 = model.hidden(np, want["W"], problem.train, "sqr")
    assert not np.allclose(want["V"], ridge.ridge_V(np, F1, problem.train.y, 7, cfg.ridge_reg))
    for row, V in ((sink.rows[0], V0), (sink.rows[1], want["V"])):  # each row: the loss at the V held
        W = s0.params["W"] if row["epoch"] == 0 else want["W"]
        Y, _ = model.forward(np, {"W": W, "V": V}, problem.train, "sqr")
        assert row["train_loss"] == losses.loss_and_grad(np, Y, problem.train.y, "tian")[0]


@pytest.mark.parametrize("opt", ["adam", "adamw", "sgd", "muon"])
def test_held_and_current_train_the_same_W(opt):
    """The training forward overwrites V before it is used, so W's trajectory does not depend on which V
    the rows see: bit for bit (the same operations on the same values); V and the rows differ."""
    a, b = runs.MemorySink(), runs.MemorySink()
    held, _, _ = train.run(_held_cfg(optimizer=opt), np, sink=a)
    cur, _, _ = train.run(_held_cfg(optimizer=opt, ridge_eval="current"), np, sink=b)
    np.testing.assert_array_equal(held.params["W"], cur.params["W"])
    assert not np.allclose(held.params["V"], cur.params["V"])
    assert a.rows[3]["train_loss"] != b.rows[3]["train_loss"]


def test_ridge_eval_is_stored_and_old_configs_read_as_current():
    held = validate(TrainConfig(top_layer="ridge"))
    assert held.ridge_eval == "held" and held.to_dict()["ridge_eval"] == "held"
    assert TrainConfig.from_dict(held.to_dict()) == held
    old = held.to_dict()
    del old["ridge_eval"]                                          # a config.json written before the option
    assert TrainConfig.from_dict(old).ridge_eval == "current"
    plain = TrainConfig()
    assert "ridge_eval" not in plain.to_dict()                     # a trained-V config.json is unchanged
    assert TrainConfig.from_dict(plain.to_dict()) == plain
    with pytest.raises(InputError, match="--ridge-eval needs --top-layer ridge"):
        validate(TrainConfig(ridge_eval="current"))
    with pytest.raises(InputError, match="unknown ridge evaluation"):
        validate(TrainConfig(top_layer="ridge", ridge_eval="next"))


def test_ridge_eval_given_without_the_ridge_top_layer_is_refused_at_either_value(tmp_path):
    """--ridge-eval current was refused without --top-layer ridge but --ridge-eval held (the default) was
    silently ignored: both do nothing there, and both are refused."""
    from click.testing import CliRunner
    from tianref.cli import main
    for value in ("held", "current"):
        r = CliRunner().invoke(main, ["train", "--M", "7", "--K", "16", "--epochs", "2", "--ridge-eval", value,
                                      "--out", str(tmp_path / value)])
        assert r.exit_code == 2 and "--ridge-eval needs --top-layer ridge" in r.output, r.output
        assert not (tmp_path / value).exists()


@pytest.mark.parametrize("extra, says", [
    (["--ridge-reg", "0.5"], "--ridge-reg needs --top-layer ridge"),
    (["--ridge-reg", "1e-3"], "--ridge-reg needs --top-layer ridge"),                    # even at its default
    (["--momentum", "0.5"], "--momentum is SGD's (--optimizer sgd); --optimizer adam does not use it"),
    (["--momentum", "0.5", "--optimizer", "muon"], "--optimizer muon does not use it"),
])
def test_an_option_that_would_do_nothing_is_refused(tmp_path, extra, says):
    """--momentum without SGD and --ridge-reg without the ridge top layer change no number of the run (its
    rows were byte-identical) but did change its identity, so summarize split one condition in three and a
    sweep given one would not pair with its siblings: refused, as --ridge-eval is."""
    from click.testing import CliRunner
    from tianref.cli import main
    r = CliRunner().invoke(main, ["train", "--M", "7", "--K", "16", "--epochs", "2", *extra,
                                  "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and says in r.output, r.output
    assert not (tmp_path / "r").exists()
    ok = {"--ridge-reg": ["--top-layer", "ridge"], "--momentum": ["--optimizer", "sgd", "--lr", "0.05"]}[extra[0]]
    r = CliRunner().invoke(main, ["train", "--M", "7", "--K", "16", "--epochs", "2", *extra[:2], *ok,
                                  "--out", str(tmp_path / "ok")])
    assert r.exit_code == 0, r.output


def test_a_ridge_run_stored_before_the_option_resumes_as_current(tmp_path):
    """A ridge run written before --ridge-eval (no key in config.json nor in the resume state) logged
    V = ridge(W); --resume must continue it as that, row for row, not switch it to 'held'."""
    import json
    import os
    from click.testing import CliRunner
    from tianref.cli import main

    base = ["train", "--M", "7", "--K", "12", "--n-train", "30", "--windows", "3", "--top-layer", "ridge",
            "--dtype", "float64", "--lr", "1e-2"]
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert CliRunner().invoke(main, base + ["--ridge-eval", "current", "--epochs", "6", "--out", a]).exit_code == 0
    assert CliRunner().invoke(main, base + ["--ridge-eval", "current", "--epochs", "3", "--out", b]).exit_code == 0
    meta = json.load(open(os.path.join(b, "config.json")))
    assert meta["config"].pop("ridge_eval") == "current"
    del meta["identity"]["sealed_after"]                                     # that version wrote no seals
    runs.atomic_write_json(os.path.join(b, "config.json"), meta)
    ck_path = runs.checkpoint_path(b)
    ck = runs.load_npz(ck_path)
    stored = json.loads(str(ck["config"]))
    del stored["ridge_eval"]
    ck["config"] = np.str_(json.dumps(stored))
    del ck["state_digest"]                  # a state of that version carries no seal either
    runs.save_npz(ck_path, ck)
    from cli_checks import as_before_seals
    as_before_seals(b)                      # nor do its other states
    r = CliRunner().invoke(main, ["train", "--resume", "--epochs", "6", "--out", b])
    assert r.exit_code == 0, r.output
    assert open(os.path.join(a, "metrics.jsonl")).read() == open(os.path.join(b, "metrics.jsonl")).read()
    assert json.load(open(os.path.join(b, "config.json")))["config"]["ridge_eval"] == "current"


def test_a_cholesky_that_returns_nan_fails_as_one_that_raises(monkeypatch):
    """CuPy's Cholesky of a matrix that is not positive definite returns NaN where NumPy's raises; the
    solve names that failure on the fake backend made to behave so, alone and for one run of a stack
    (whose V is then zeros, and which the stack ends)."""
    from tianref import fakexp
    rng = np.random.default_rng(0)
    F = fakexp.asarray(rng.standard_normal((2, 12, 20)))
    y = fakexp.asarray(rng.integers(0, 5, (2, 12)))
    good = ridge.ridge_V(fakexp, F, y, 5, 1e-3)
    real = fakexp.linalg.cholesky
    calls = []

    def nan_second(A):                                   # the second run's factor: NaN, as CuPy leaves it
        calls.append(1)
        L = real(A)
        return L * float("nan") if len(calls) == 2 else L
    monkeypatch.setattr(type(fakexp.linalg), "cholesky", staticmethod(nan_second), raising=False)

    def unchecked(a, b, **kw):                           # CuPy's triangular solve passes NaN on
        import scipy.linalg
        return fakexp.asarray(scipy.linalg.solve_triangular(a.get(), b.get(), check_finite=False, **kw))
    monkeypatch.setattr(fakexp.scipy_linalg, "solve_triangular", unchecked, raising=False)
    failed = {}
    V = ridge.ridge_V(fakexp, F, y, 5, 1e-3, failed)
    assert list(failed) == [1] and "not finite" in failed[1]
    assert np.array_equal(V.get()[0], good.get()[0]) and not V.get()[1].any()
    calls.clear()
    calls.append(1)                                      # the next call is the "second"
    with pytest.raises(RunFailure, match="the ridge solve failed"):
        ridge.ridge_V(fakexp, F[0], y[0], 5, 1e-3)


@pytest.mark.parametrize("option, value", [("momentum", "0.5"), ("ridge_reg", "0.5")])
def test_a_sweep_continues_a_run_made_with_an_option_train_refuses_now(tmp_path, monkeypatch, option, value):
    """Runs made before train refused --momentum without SGD or --ridge-reg without the ridge top layer
    record the value in their identity: a sweep of the tree (which can no longer pass the option) takes them
    as its runs and resumes them (it said 'holds a different run ... use another ROOT')."""
    import json
    import click
    from click.testing import CliRunner
    from tianref.cli import main
    from tianref.experiments import jobs as jobs_mod, sweep as sweep_engine
    real = click.core.Context.get_parameter_source
    monkeypatch.setattr(click.core.Context, "get_parameter_source",      # the earlier train: not refused
                        lambda self, name: None if name == option else real(self, name))
    root = tmp_path / "sw"
    (job,) = sweep_engine.make_jobs(root, sweep_engine.grid(eta=[0.0], act=["sqr"], M=[7]), (0,), 2, {"K": 8})
    r = CliRunner().invoke(main, ["train", "--out", str(job.out), "--seed", "0", "--eta", "0", "--M", "7", "--K",
                                  "8", "--epochs", "2", "--" + option.replace("_", "-"), value])
    assert r.exit_code == 0, r.output
    assert json.loads((job.out / "config.json").read_text())["config"][option] == float(value)
    monkeypatch.setattr(click.core.Context, "get_parameter_source", real)
    jobs_mod._WANTED.clear()
    r = CliRunner().invoke(main, ["sweep", str(root), "--eta", "0", "--M", "7", "--K", "8", "--seeds", "0",
                                  "--epochs", "3"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.strip().splitlines()[-1])["resumed"] == 1
    assert len((job.out / "metrics.jsonl").read_text().splitlines()) == 4
