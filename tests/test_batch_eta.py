"""Runs that differ by their weight decay eta (and seed) in one stack: each run's rows, checkpoints and
resume state are those of the run trained alone; what may and may not share a stack."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tianref import batch, runs, stacks, train
from tianref.backend import get_xp, to_host
from tianref.config import TrainConfig, validate
from tianref.errors import RunFailure
from tianref.experiments import sweep

from cli_checks import cli

from test_batch import SMALL

ETAS = (2e-3, 0.0, 5e-3)          # a run without decay between two with it


class StateSink(runs.MemorySink):
    """MemorySink that also keeps every checkpoint's arrays (with the rings), by epoch."""

    def __init__(self):
        super().__init__()
        self.states = {}

    def checkpoint(self, arrays_fn, epoch, named, final):
        self.states[(epoch, final)] = {k: np.array(v) for k, v in arrays_fn(True).items()}   # copies: the
        # host backend's arrays are views of rings that later steps update in place


def _cfgs(optimizer, dtype, etas=ETAS, **kw):
    extra = {"lr": 0.05} if optimizer == "sgd" else {"lr": 0.02} if optimizer == "muon" else {}
    return [validate(TrainConfig(**{**SMALL, "epochs": 24, "windows": (5,), "checkpoint_epochs": (9,),
                                    "optimizer": optimizer, "dtype": dtype, **extra, **kw, "eta": e, "seed": s}))
            for e in etas for s in (0, 1)]


def _alone(cfg, xp):
    sink = StateSink()
    train.run(cfg, xp, sink=sink)
    return sink


def _together(cfgs, xp, parts=1):
    members = []
    for c in cfgs:
        problem, state = train.setup(c, xp)
        members.append(batch.Member(c, problem, state, sink=StateSink()))
    batch.run(xp, members, parts=parts)
    return members


def _same_arrays(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        assert x.dtype == y.dtype and x.shape == y.shape, k
        assert np.array_equal(x, y), k
        if x.dtype.kind == "f":                          # and the sign of every zero: the same bytes
            assert np.array_equal(np.signbit(x), np.signbit(y)), k


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "muon"])
@pytest.mark.parametrize("xp_name,dtype", [("numpy", "float64"), ("numpy", "float32"), ("fake", "float64")])
def test_runs_stacked_by_eta_are_each_the_run_trained_alone(optimizer, xp_name, dtype):
    xp = get_xp(xp_name)
    cfgs = _cfgs(optimizer, dtype)
    members = _together(cfgs, xp)
    for c, m in zip(cfgs, members):
        alone = _alone(c, xp)
        assert m.failed is None
        assert [json.dumps(r, sort_keys=True) for r in m.sink.rows] == \
            [json.dumps(r, sort_keys=True) for r in alone.rows], (c.eta, c.seed)
        assert m.sink.states.keys() == alone.states.keys() == {(9, False), (24, True)}
        for key in alone.states:                         # checkpoints and resume state, flags included
            _same_arrays(m.sink.states[key], alone.states[key])
    if optimizer != "sgd":                               # the "no decay yet" flag is each run's own
        for c, m in zip(cfgs, members):                  # (Muon: V's Adam, coupled)
            assert bool(m.sink.states[(24, True)]["adam_m_wd_zero"]) == (c.eta == 0 or optimizer == "adamw")
    for c, m in zip(cfgs, members):
        assert bool(m.sink.states[(24, True)]["edge_clean"]) == (c.eta == 0)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_runs_whose_schedule_turns_decay_on_later_are_each_the_run_trained_alone(optimizer):
    """eta = 0 at the start and a schedule that turns decay on at row 6: such a run decays (its flags go
    false, its Delta^wd ring fills), so the stack must not treat it as a run that never decays (whose
    flags and zeros it resets to its own): its rows and checkpoints are the run trained alone."""
    cfgs = _cfgs(optimizer, "float64", etas=(0.0,), eta_schedule=((0, 0.0), (6, 5e-3)))
    for c, m in zip(cfgs, _together(cfgs, np)):
        alone = _alone(c, np)
        assert m.failed is None
        assert [json.dumps(r, sort_keys=True) for r in m.sink.rows] == \
            [json.dumps(r, sort_keys=True) for r in alone.rows], c.seed
        for key in alone.states:
            _same_arrays(m.sink.states[key], alone.states[key])
        assert alone.rows[-1]["W_edge_wd2"] > 0                      # decay did enter
        assert not bool(alone.states[(24, True)]["edge_clean"])


@pytest.mark.parametrize("ridge_eval", ["held", "current"])
def test_ridge_runs_stacked_by_eta_are_each_the_run_trained_alone(ridge_eval):
    """The ridge top layer: each run's V solved from its own F and labels inside the stack."""
    cfgs = _cfgs("adam", "float64", top_layer="ridge", ridge_eval=ridge_eval)
    for c, m in zip(cfgs, _together(cfgs, np)):
        alone = _alone(c, np)
        assert [json.dumps(r, sort_keys=True) for r in m.sink.rows] == \
            [json.dumps(r, sort_keys=True) for r in alone.rows], (c.eta, c.seed)
        for key in alone.states:
            _same_arrays(m.sink.states[key], alone.states[key])


@pytest.mark.parametrize("parts", [1, 2])
@pytest.mark.parametrize("ridge_eval", ["held", "current"])
def test_a_run_whose_ridge_solve_fails_ends_alone(ridge_eval, parts, monkeypatch):
    """A ridge run whose solve fails in a step ends alone, as its train.step raises: its rows so far and
    train's message; the others go on and are each the run trained alone. The failing run diverges
    (SGD with lr eta = 10: W grows tenfold a step); under current its activations overflow and the
    solve of its new W meets them (SciPy refuses non-finite input), under held its row's loss would
    overflow first, so there the Cholesky is refused past a scale its activations reach on the way
    (as a positive definite matrix rounded to an indefinite one would be)."""
    if ridge_eval == "held":
        cholesky = np.linalg.cholesky

        def refusing(A):
            if np.abs(A).max() > 1e12:
                raise np.linalg.LinAlgError("Matrix is not positive definite")
            return cholesky(A)
        monkeypatch.setattr(np.linalg, "cholesky", refusing)
    cfgs = _cfgs("sgd", "float32", etas=(2e-3, 100.0), top_layer="ridge", ridge_eval=ridge_eval,
                 momentum=0.0, lr=0.1)
    with np.errstate(over="ignore", invalid="ignore"):              # the diverging run's overflow
        members = _together(cfgs, np, parts=parts)
        for c, m in zip(cfgs, members):
            alone = StateSink()
            try:
                train.run(c, np, sink=alone)
                message = None
            except RunFailure as exc:
                message = str(exc)
            assert (m.failed, c.eta == 100.0) == (message, message is not None), (c.eta, c.seed)
            assert [json.dumps(r, sort_keys=True) for r in m.sink.rows] == \
                [json.dumps(r, sort_keys=True) for r in alone.rows], (c.eta, c.seed)
            assert m.sink.states.keys() == alone.states.keys()
            for key in alone.states:
                _same_arrays(m.sink.states[key], alone.states[key])
    assert all("the ridge solve failed" in m.failed for m in members if m.failed)
    assert all(1 < len(m.sink.rows) < 25 for m in members if m.failed)      # it failed mid-way


def test_a_stack_by_eta_in_thread_parts_gives_the_same_rows():
    cfgs = _cfgs("adam", "float32")
    together = _together(cfgs, np, parts=2)
    for c, m in zip(cfgs, together):
        assert m.sink.rows == _alone(c, np).rows


def _argv(out, eta, epochs):
    return ["--out", str(out), "--seed", "1", "--M", "11", "--K", "64", "--n-train", "60", "--eta", eta,
            "--epochs", str(epochs), "--checkpoint-epochs", "6"]


def test_each_run_of_a_stack_by_eta_resumes_alone_exactly(tmp_path):
    """train-batch stacks a run with decay and one without (one stack: the log says 2 runs), to epoch 12;
    then train --resume takes each alone to epoch 24: the same files as its run trained alone from the
    start (rows byte for byte; checkpoints, the "no decay yet" flags included)."""
    etas = ("2e-3", "0")
    args = ["train-batch", "--log-dir", tmp_path / "_logs"]
    for e in etas:
        args += ["--member", " ".join(_argv(tmp_path / f"b{e}", e, 12))]
    r = cli(args)
    assert r.exit_code == 0, r.output
    for e in etas:
        b, u = tmp_path / f"b{e}", tmp_path / f"u{e}"
        summary = json.loads((tmp_path / "_logs" / f"b{e}.log").read_text().splitlines()[-1])
        assert summary["batched"] and summary["batch_runs"] == 2
        assert cli(["train", "--out", b, "--resume", "--epochs", 24]).exit_code == 0
        assert cli(["train", *_argv(u, e, 24)]).exit_code == 0
        assert (b / "metrics.jsonl").read_bytes() == (u / "metrics.jsonl").read_bytes()
        _same_arrays(*(runs.load_npz(str(d / "checkpoints" / "final.npz")) for d in (b, u)))
        x, y = (runs.load_npz(str(d / "checkpoints" / "epoch_00006.npz")) for d in (b, u))
        assert json.loads(str(x.pop("config")))["epochs"] == 12                # written while E was 12
        y.pop("config")
        x.pop("state_digest"), y.pop("state_digest")                        # the seal covers the config
        _same_arrays(x, y)


@pytest.mark.parametrize("optimizer", ["adam", "muon", "sgd"])
def test_a_stack_by_eta_resumed_as_a_stack_continues_each_run_exactly(tmp_path, optimizer):
    """Resumed, the runs' "no decay yet" flags differ (the run without decay keeps its own; Muon's sit in
    V's Adam state): the stack joins them and each run still ends as its run trained alone. SGD is the
    case where the joined flag is read before decay resets it (whether b^wd is carried with momentum):
    a stack flag "no decay yet" taken from the run without decay would restart the other run's b^wd."""
    etas, opt = ("2e-3", "0"), ["--optimizer", optimizer, "--lr", "0.02"]

    def batch_of(epochs, resume):
        args = ["train-batch"]
        for e in etas:
            argv = ["--out", str(tmp_path / f"b{e}"), "--resume", "--epochs", str(epochs)] if resume \
                else _argv(tmp_path / f"b{e}", e, epochs) + opt
            args += ["--member", " ".join(argv)]
        r = cli(args)
        assert r.exit_code == 0, r.output

    batch_of(12, resume=False)
    batch_of(24, resume=True)
    for e in etas:
        assert cli(["train", *_argv(tmp_path / f"u{e}", e, 24), *opt]).exit_code == 0
        b, u = tmp_path / f"b{e}", tmp_path / f"u{e}"
        assert (b / "metrics.jsonl").read_bytes() == (u / "metrics.jsonl").read_bytes()
        for name in ("final.npz", "resume.npz"):             # written by the stack: the same bytes
            assert (b / "checkpoints" / name).read_bytes() == (u / "checkpoints" / name).read_bytes(), name


def test_a_per_run_coefficient_is_sent_to_the_device_once():
    """optim.per_run keeps each stack coefficient on the backend: the same values give the same device
    array (no copy per step, each of which would wait for a GPU), cast to the parameters' dtype."""
    from tianref import fakexp, optim
    w = fakexp.asarray(np.ones((3, 2, 2), dtype=np.float32))
    c = np.asarray([2e-3, 0.0, 5e-3]).reshape(-1, 1, 1)
    a = optim.per_run(fakexp, (1.0 - 0.9) * c, w)
    assert a is optim.per_run(fakexp, (1.0 - 0.9) * c.copy(), w)      # recomputed on the host: same bits
    assert a.dtype == np.float32 and np.array_equal(a.get(), ((1.0 - 0.9) * c).astype(np.float32))
    assert optim.per_run(fakexp, 2 * c, w) is not a
    assert optim.per_run(fakexp, 0.5, w) == 0.5                         # a float passes as it is


def test_same_stack_takes_seed_and_eta_only():
    a = _cfgs("adam", "float64")[0]
    assert stacks.same_stack(a, a.replace(eta=0.0, seed=5))
    assert not stacks.same_stack(a, a.replace(lr=2e-3))
    sched = a.replace(eta=2e-3, eta_schedule=((0, 2e-3), (10, 0.0)))
    assert stacks.same_stack(sched, sched.replace(seed=3))
    assert not stacks.same_stack(sched, sched.replace(eta=1e-3, eta_schedule=((0, 1e-3), (10, 0.0))))


def test_sweep_batches_put_the_etas_of_a_condition_together(tmp_path):
    jobs = sweep.make_jobs(tmp_path, sweep.grid(eta=[2e-4, 0.0], act=["sqr"], M=[11]), [0, 1, 2], 10, {"K": 64})
    assert [len(b) for b in sweep.batches(jobs, 1)] == [6]
    assert [len(b) for b in sweep.batches(jobs, 2)] == [3, 3]
    muon = sweep.make_jobs(tmp_path / "m", [dict(eta=e, optimizer="muon") for e in (2e-4, 0.0)], [0, 1], 10)
    assert [len(b) for b in sweep.batches(muon, 1)] == [4]
    ridge = sweep.make_jobs(tmp_path / "r", [dict(eta=e, top_layer="ridge") for e in (2e-4, 0.0)], [0, 1], 10)
    assert [len(b) for b in sweep.batches(ridge, 1)] == [4]
    sched = sweep.make_jobs(tmp_path / "s", [dict(eta=e, eta_schedule=f"0:{e},5:0") for e in (2e-4, 1e-4)],
                            [0], 10)
    assert [len(b) for b in sweep.batches(sched, 1)] == [1, 1]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("xp_name", ["numpy", "fake"])
def test_a_run_without_decay_keeps_its_gradients_negative_zeros_in_a_stack_with_decay(optimizer, xp_name):
    """g + 0 w is not g: a -0.0 of the gradient plus 0 w = +0.0 (w > 0) is +0.0. A run with eta = 0 in a
    stack with decay steps with g itself, as its own run does; SGD's buffer keeps g's zeros, so its
    checkpoints showed the flipped signs. Checked against the single-run update (a float eta 0.0)."""
    from tianref import optim, optim_sgd
    xp = get_xp(xp_name)
    rng = np.random.default_rng(0)
    w = np.abs(rng.standard_normal((3, 4, 5))) + 0.5               # (S, 4, 5), w > 0: 0 w = +0.0
    g = rng.standard_normal((3, 4, 5))
    g[:, 1, :] = -0.0                                               # a row of the gradient is -0.0
    etas = np.asarray([2e-3, 0.0, -0.0]).reshape(-1, 1, 1)          # runs 1 and 2 without decay
    params, grads = {"W": xp.asarray(w)}, {"W": xp.asarray(g)}

    def update(p, gr, eta):
        if optimizer == "sgd":
            return optim_sgd.sgd_update(xp, p, gr, optim_sgd.sgd_init(xp, p), lr=0.05, eta=eta)
        return optim.adam_update(xp, p, gr, optim.adam_init(xp, p), lr=1e-3, eta=eta)
    new, state = update(params, grads, etas)
    for s in (1, 2):
        one, one_state = update({"W": xp.asarray(w[s])}, {"W": xp.asarray(g[s])}, 0.0)
        for a, b in [(new["W"][s], one["W"])] + ([(state["buf"]["W"][s], one_state["buf"]["W"])]
                                                 if optimizer == "sgd" else
                                                 [(state["m"]["W"][s], one_state["m"]["W"]),
                                                  (state["v"]["W"][s], one_state["v"]["W"])]):
            a, b = to_host(a), to_host(b)
            assert a.tobytes() == b.tobytes()                       # the same values and signs of zeros
    if optimizer == "sgd":
        assert np.signbit(to_host(state["buf"]["W"][1][1])).all()   # the -0.0 row kept (the case seen)


@pytest.mark.parametrize("xp_name", ["numpy", "fake"])
def test_runs_with_segments_of_other_widths_keep_their_gradients_zero_signs(xp_name):
    """The stack pads every run's segment tables to the widest run's (data.stack_batches), so a segment
    of a run gets more pad slots than in its own run. A pad of +0.0 turns a segment sum of -0.0 (ReLU's
    0 x a negative dL/dF, few training pairs) into +0.0; SGD's buffer keeps the gradient's zeros, so the
    run's checkpoints differed from its own run's in their sign. The pad row is -0.0: x + (-0.0) = x."""
    xp = get_xp(xp_name)
    cfgs = [validate(TrainConfig(M=13, K=32, n_train=12, act="relu", optimizer="sgd", lr=0.05, eta=0.0,
                                 epochs=6, windows=(3,), checkpoint_epochs=(2, 3), seed=s)) for s in range(4)]
    for c, m in zip(cfgs, _together(cfgs, xp)):
        alone = _alone(c, xp)
        assert m.sink.states.keys() == alone.states.keys()
        for key in alone.states:
            _same_arrays(m.sink.states[key], alone.states[key])     # the sign of every zero included
