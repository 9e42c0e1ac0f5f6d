"""The training loop: logging order, determinism, exact resume, and the strict fake backend."""
import os

import numpy as np
import pytest

from tianref import runs, train
from tianref.backend import get_xp
from tianref.config import TrainConfig, validate
from tianref.errors import RunFailure

SMALL = TrainConfig(M=11, K=32, n_train=48, epochs=12, windows=(4, 3), seed=1, eta=1e-3, lr=1e-2)


def _rows(cfg, xp_name="numpy", out=None):
    xp = get_xp(xp_name)
    sink = runs.MemorySink()
    final, problem, _ = train.run(validate(cfg), xp, sink=sink)
    return sink.rows, final


def test_logging_order_and_keys():
    rows, final = _rows(SMALL)
    assert [r["epoch"] for r in rows] == list(range(SMALL.epochs + 1))   # E + 1 rows
    assert final.epoch == SMALL.epochs and final.adam["t"] == SMALL.epochs  # E steps
    assert "W_sigma" not in rows[1]                                       # one update: no spectrum
    assert len(rows[2]["W_sigma"]) == 2 and "W_gap23" not in rows[2]      # two updates: sigma1, sigma2
    assert len(rows[3]["W_sigma"]) == 3 and "W_gap23" in rows[3]
    assert len(rows[12]["W_sigma"]) == 4 and len(rows[12]["W_sigma_w3"]) == 3  # window 4 and 3
    assert rows[12]["W_sigma"] == sorted(rows[12]["W_sigma"], reverse=True)
    for key in ("train_loss", "test_loss", "train_acc", "test_acc", "ftf_ratio", "rho_tian",
                "gF_norm", "indep_cos_med", "indep_cos_p95", "V_sigma"):
        assert key in rows[5], key


def test_same_seed_same_metrics_and_different_seed_differs():
    a, _ = _rows(SMALL)
    b, _ = _rows(SMALL)
    assert a == b
    c, _ = _rows(SMALL.replace(seed=2))
    assert a[5]["train_loss"] != c[5]["train_loss"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fake_backend_runs_whole_loop_identically(dtype):
    """The strict fake backend refuses host conversions; NumPy underneath gives the same bits."""
    cfg = SMALL.replace(dtype=dtype)
    a, fa = _rows(cfg, "numpy")
    b, fb = _rows(cfg, "fake")
    assert a == b
    np.testing.assert_array_equal(fa.params["W"], fb.params["W"].get())


def test_core_metrics_skip_gram_metrics_only():
    rows, _ = _rows(SMALL.replace(metrics="core"))
    assert "rho_tian" not in rows[3] and "ftf_ratio" not in rows[3]
    full, _ = _rows(SMALL)
    assert rows[3]["train_loss"] == full[3]["train_loss"] and rows[3]["W_sigma"] == full[3]["W_sigma"]


def test_resume_continues_exactly(tmp_path):
    """Run 20 epochs straight; run 8 with a checkpoint, then resume to 20: identical rows and weights."""
    cfg = validate(SMALL.replace(epochs=20))
    straight = tmp_path / "a"
    os.makedirs(straight / "checkpoints")
    w = runs.RunWriter(str(straight))
    fa, _, _ = train.run(cfg, np, sink=w)
    w.close()

    part = tmp_path / "b"
    os.makedirs(part / "checkpoints")
    w = runs.RunWriter(str(part))
    train.run(cfg.replace(epochs=8), np, sink=w)
    w.close()
    ck = runs.load_npz(runs.checkpoint_path(str(part)))
    state = train.state_from_arrays(np, cfg, ck)
    problem, _ = train.setup(cfg, np, init={k: ck[k] for k in ("W", "V", "train_idx", "test_idx")})
    w = runs.RunWriter(str(part))
    fb, _, _ = train.run(cfg, np, problem=problem, state=state, sink=w)
    w.close()
    ra = runs.read_metrics(str(straight / "metrics.jsonl"))
    rb = runs.read_metrics(str(part / "metrics.jsonl"))
    assert ra == rb
    np.testing.assert_array_equal(fa.params["W"], fb.params["W"])


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_non_finite_loss_stops_with_rows_kept(tmp_path):
    cfg = validate(SMALL.replace(lr=1e6, epochs=200))       # diverges quickly
    os.makedirs(tmp_path / "checkpoints")
    w = runs.RunWriter(str(tmp_path))
    with pytest.raises(RunFailure, match="non-finite"):
        train.run(cfg, np, sink=w)
    w.close()
    rows = runs.read_metrics(str(tmp_path / "metrics.jsonl"))
    assert rows and rows[0]["epoch"] == 0 and len(rows) < 201


def test_init_from_reproduces_a_run():
    """Starting from a run's own initial arrays is the same run (test set = complement, sorted)."""
    from tianref import data
    cfg = validate(SMALL)
    tr, _, W0, V0 = data.init_host(cfg.M, cfg.K, cfg.n_train, cfg.seed)
    a, fa = _rows(cfg)
    xp = np
    sink = runs.MemorySink()
    fb, _, _ = train.run(cfg, xp, init={"W": W0, "V": V0, "train_idx": tr}, sink=sink)
    rows = sink.rows
    np.testing.assert_array_equal(fa.params["W"], fb.params["W"])
    assert rows[-1]["train_loss"] == a[-1]["train_loss"]
    assert rows[-1]["test_acc"] == a[-1]["test_acc"]


def test_replay_matches_checkpoints():
    cfg = validate(SMALL)
    _, final = _rows(cfg)
    out = train.replay(cfg.to_dict(), [0, cfg.epochs], np)
    np.testing.assert_array_equal(out[cfg.epochs]["W"], final.params["W"])
