"""The two clocks per row: stable ranks, norms, the nuclear norm and the spectral tail (against an SVD
of the stored checkpoint weights), the smallest training margin (against a forward pass of them), the
tail rank option and an old run's config; summarize carrying the clock events (their rules:
tests/test_clock_events.py)."""
import json
import math
import os

import numpy as np
import pytest
from click.testing import CliRunner

from tianref import clocks
from tianref.analysis import clock_events
from tianref.backend import to_host
from tianref.cli import main
from tianref.config import TrainConfig, tail_rank_of, validate
from tianref.errors import InputError

from cli_checks import as_before_seals


def test_stable_rank_of_known_matrices(xp):
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((12, 5)))              # orthonormal columns
    u, v = rng.standard_normal(12), rng.standard_normal(8)
    # W (2M=12, K=8), V (K=8, M=6); params as clock_stats expects
    cases = {
        "rank1": np.outer(u, v),                                   # srank 1
        "iso": np.hstack([Q * 2.0, np.zeros((12, 3))]),            # 5 equal singular values: srank 5
    }
    V = rng.standard_normal((8, 6))
    for name, W in cases.items():
        P = {"W": xp.asarray(W), "V": xp.asarray(V)}
        stats = dict((k, float(to_host(x))) for k, x in clocks.clock_stats(xp, P, 2))
        assert stats["W_srank"] == pytest.approx({"rank1": 1.0, "iso": 5.0}[name], rel=1e-12)
        # outside the top 2 directions: nothing of a rank-1 W, 3 of 5 equal ones (eigvalsh rounding ~1e-15)
        assert stats["W_tail"] == pytest.approx({"rank1": 0.0, "iso": 0.6}[name], abs=1e-12)
        assert stats["W_fro"] == pytest.approx(np.linalg.norm(W), rel=1e-14)
        sv = np.linalg.svd(W @ V, compute_uv=False)
        assert stats["WV_nuc"] == pytest.approx(sv.sum(), rel=1e-12)
        svV = np.linalg.svd(V, compute_uv=False)
        assert stats["V_srank"] == pytest.approx((svV ** 2).sum() / svV[0] ** 2, rel=1e-12)


def test_squared_singular_values_of_a_rank_deficient_W_are_never_negative(xp):
    """A rank-2 W (22 x 40): the 20 zero eigenvalues of W W^T come out of eigvalsh as +-1e-13 noise; as
    squared singular values they are clipped at 0, so every one is >= 0 and the tail outside the top 2
    directions is a sum of non-negative terms (>= 0, ~0), and W_tail at r = 0 is exactly 1."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((22, 2)) @ rng.standard_normal((2, 40))
    raw = np.linalg.eigvalsh(W @ W.T)
    assert (raw < 0).any()                                          # the case exists (else nothing is tested)
    ev = to_host(clocks.gram_eigenvalues(xp, xp.asarray(W)))
    assert ev.shape == (22,) and ev.min() >= 0.0
    np.testing.assert_allclose(ev[-2:], np.linalg.svd(W, compute_uv=False)[1::-1] ** 2, rtol=1e-12)   # ascending
    tail = float(to_host(clocks.spectral_tail(xp.asarray(ev), 2)))
    assert 0.0 <= tail < 1e-12
    assert float(to_host(clocks.spectral_tail(xp.asarray(ev), 0))) == 1.0


def test_logged_clocks_equal_svd_of_stored_checkpoints(tmp_path):
    """Train, store checkpoints, and recompute every clock statistic from the stored W and V by
    numpy's SVD (a route that forms no Gram matrix): float32 training, float64 statistics."""
    out = str(tmp_path / "run")
    r = CliRunner().invoke(main, ["train", "--M", "11", "--K", "32", "--epochs", "12", "--lr", "1e-2",
                                  "--windows", "4", "--checkpoint-epochs", "0,5,12", "--out", out])
    assert r.exit_code == 0, r.output
    rows = {json.loads(l)["epoch"]: json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))}
    for e in (0, 5, 12):
        ck = np.load(os.path.join(out, "checkpoints", f"epoch_{e:05d}.npz"))
        W, V = ck["W"].astype(np.float64), ck["V"].astype(np.float64)
        sW = np.linalg.svd(W, compute_uv=False)                       # (2M,) descending
        r = 10                                                         # the default M - 1 at M = 11
        # a tail of ~0.2 from eigvalsh of W W^T vs an SVD: each eigenvalue to ~1e-15 of ||W||_2^2
        assert rows[e]["W_tail"] == pytest.approx((sW[r:] ** 2).sum() / (sW ** 2).sum(), rel=1e-11), e
        for name, X in (("W", W), ("V", V)):
            s = np.linalg.svd(X, compute_uv=False)
            # eigvalsh of the Gram vs an SVD: both backward stable, ~1e-15 of ||X||_2^2
            assert rows[e][f"{name}_srank"] == pytest.approx((s ** 2).sum() / s[0] ** 2, rel=1e-12), (e, name)
            assert rows[e][f"{name}_fro"] == pytest.approx(np.sqrt((s ** 2).sum()), rel=1e-13), (e, name)
        assert rows[e]["WV_nuc"] == pytest.approx(np.linalg.svd(W @ V, compute_uv=False).sum(), rel=1e-12)
    assert rows[12]["W_fro"] != rows[0]["W_fro"]                     # the weights moved


def test_summarize_reports_the_clocks(tmp_path):
    """summarize --json carries every clock event per run (computed from the run's own log) and the
    options used; the cross-entropy run also has t_cls_abs; the conditions count the outcomes."""
    runs = tmp_path / "runs"
    for tag, extra in (("a", []), ("ce", ["--loss", "ce", "--act", "relu"])):
        r = CliRunner().invoke(main, ["train", "--M", "11", "--K", "32", "--epochs", "40", "--lr", "1e-2",
                                      "--eta", "5e-3", "--windows", "4", "--metrics", "core",
                                      "--out", str(runs / tag), *extra])
        assert r.exit_code == 0, r.output
    js = tmp_path / "s.json"
    r = CliRunner().invoke(main, ["summarize", str(runs), "--cls-eps", "0.5", "--cls-eps-abs", "1.5",
                                  "--rep-delta", "0.1", "--persist", "5", "--json", str(js)])
    assert r.exit_code == 0, r.output
    assert "t_rep / t_cls" in r.output and "Structural clock W_tail" in r.output
    doc = json.loads(js.read_text())
    assert {k: doc["options"][k] for k in ("cls_eps", "cls_eps_abs", "rep_delta", "persist")} == \
        {"cls_eps": 0.5, "cls_eps_abs": 1.5, "rep_delta": 0.1, "persist": 5}
    seen = 0
    for c in doc["conditions"]:
        assert sum(c["stats"]["clock_outcomes"].values()) == c["n"] == 1
        run = c["runs"][0]
        rows = [json.loads(l) for l in open(os.path.join(run["path"], "metrics.jsonl"))]
        col = {k: [x[k] for x in rows] for k in ("train_loss", "W_srank", "W_tail", "margin_min", "test_acc")}
        ce = json.loads(open(os.path.join(run["path"], "config.json")).read())["config"]["loss"] == "ce"
        want = {"t_cls": clock_events.t_cls(col["train_loss"], 0.5, 5),
                "t_cls_abs": clock_events.t_cls_abs(col["train_loss"], 1.5, 5) if ce else None,
                "t_margin": clock_events.t_margin(col["margin_min"], 5)}
        for sfx, key in (("", "W_srank"), ("_tail", "W_tail")):
            want[f"t_rep{sfx}"] = clock_events.t_rep(col[key], 0.1)
            want[f"t_rep{sfx}_settled"] = clock_events.t_rep_settled(col[key], 0.1, 5)
            want[f"t_rep{sfx}_censored"] = clock_events.rep_censored(col[key], want[f"t_rep{sfx}"], 0.1)
        for k, v in want.items():
            assert k in run and (run[k] == v or (run[k] is None and isinstance(v, float) and math.isnan(v))), k
        assert run["clock_outcome"] in clock_events.OUTCOMES and run["clock_outcome_tail"] in clock_events.OUTCOMES
        assert (run["t_cls_abs"] is not None) == ce
        seen += 1
    assert seen == 2
    fired = {(c["runs"][0]["path"].endswith("ce"), k) for c in doc["conditions"] for k in
             ("t_cls", "t_cls_abs", "t_margin") if c["runs"][0][k] is not None}
    assert fired == {(False, "t_cls"), (False, "t_margin"), (True, "t_cls"), (True, "t_cls_abs")}


def test_margin_min_by_hand(xp):
    Y = np.array([[3.0, 1.0, 2.5],                 # right, gap 0.5
                  [0.0, 2.0, 2.0],                 # label 1 tied with class 2: gap 0
                  [1.0, 4.0, -1.0]])               # label 0 but class 1 is larger: gap -3 (wrong)
    y = np.array([0, 1, 0])
    assert float(to_host(clocks.margin_min(xp, xp.asarray(Y), xp.asarray(y)))) == -3.0
    assert float(to_host(clocks.margin_min(xp, xp.asarray(Y[:2]), xp.asarray(y[:2])))) == 0.0
    assert float(to_host(clocks.margin_min(xp, xp.asarray(Y[:1]), xp.asarray(y[:1])))) == 0.5


def _forward64(M, W, V, idx, beta):
    """Yhat = beta (W[a] + W[M + b])^2 V, labels y = (a + b) mod M, from a stored state (float64)."""
    a, b = idx // M, idx % M
    return beta * ((W[a] + W[M + b]) ** 2) @ V, (a + b) % M


def test_logged_margin_equals_a_forward_pass_of_stored_checkpoints(tmp_path):
    """margin_min (beta = 2.5, float64 training) against the outputs recomputed from the stored W, V and
    train_idx: the model's outputs with the output scale, a negative value while samples are wrong."""
    out = str(tmp_path / "run")
    r = CliRunner().invoke(main, ["train", "--M", "11", "--K", "32", "--epochs", "30", "--lr", "1e-2",
                                  "--dtype", "float64", "--output-scale", "2.5", "--windows", "4",
                                  "--metrics", "core", "--checkpoint-epochs", "0,30", "--out", out])
    assert r.exit_code == 0, r.output
    rows = {json.loads(l)["epoch"]: json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))}
    for e in (0, 30):
        ck = np.load(os.path.join(out, "checkpoints", f"epoch_{e:05d}.npz"))
        Y, y = _forward64(11, ck["W"], ck["V"], ck["train_idx"], 2.5)
        n = len(y)
        own = Y[np.arange(n), y]
        Y[np.arange(n), y] = -np.inf
        gap = own - Y.max(axis=1)                                      # (n,)
        # the same float64 products in another summation order: ~1e-15 of |Yhat| ~ 1
        assert rows[e]["margin_min"] == pytest.approx(gap.min(), rel=1e-12, abs=1e-13), e
        assert (rows[e]["margin_min"] > 0) == (rows[e]["train_acc"] == 1.0), e
    assert rows[0]["margin_min"] < 0 < rows[30]["margin_min"]         # misclassified at start, not at end
    # beta scales the outputs, so it scales the margin: the same run at beta = 1 has 1/2.5 of it at row 0
    r = CliRunner().invoke(main, ["train", "--M", "11", "--K", "32", "--epochs", "0", "--dtype", "float64",
                                  "--windows", "4", "--metrics", "core", "--out", str(tmp_path / "b1")])
    assert r.exit_code == 0, r.output
    row0 = json.loads(open(tmp_path / "b1" / "metrics.jsonl").readline())
    assert row0["margin_min"] == pytest.approx(rows[0]["margin_min"] / 2.5, rel=1e-12)


def test_tail_rank_option_and_its_validation():
    assert [tail_rank_of(t, 71) for t in ("M-1", "M", "M+3", "22", " M - 2 ")] == [70, 71, 74, 22, 69]
    for bad in ("M*2", "-3", "r", "", "2M"):
        with pytest.raises(InputError):
            tail_rank_of(bad, 71)
    assert validate(TrainConfig(M=11, K=32, n_train=48)).tail_r == 10
    for bad in ("0", "M-11", "M-20"):              # r must be >= 1
        with pytest.raises(InputError, match="tail-rank"):
            validate(TrainConfig(M=11, K=32, n_train=48, tail_rank=bad))
    # K = 4 < M - 1: the default is allowed, and W (rank <= 4) has nothing outside its top 6 or 10
    validate(TrainConfig(M=11, K=4, n_train=48))
    W = np.random.default_rng(1).standard_normal((22, 4))
    for r in (6, 10):
        assert dict(clocks.clock_stats(np, {"W": W, "V": np.ones((4, 11))}, r))["W_tail"] == 0.0
    stats = dict(clocks.clock_stats(np, {"W": W, "V": np.ones((4, 11))}, 3))
    s = np.linalg.svd(W, compute_uv=False)
    assert stats["W_tail"] == pytest.approx(s[3] ** 2 / (s ** 2).sum(), rel=1e-12)   # K the small side
    assert TrainConfig.from_dict({"M": 11, "tail_rank": 7}).tail_rank == "7"   # a hand-written integer


def test_a_run_without_tail_rank_in_its_config_still_resumes(tmp_path):
    """A run written before tail_rank existed: config.json and the resume state hold no tail_rank; it
    resumes with the default, and the continued rows carry W_tail at r = M - 1."""
    out = tmp_path / "old"
    r = CliRunner().invoke(main, ["train", "--M", "11", "--K", "32", "--epochs", "6", "--lr", "1e-2",
                                  "--windows", "4", "--metrics", "core", "--out", str(out)])
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "config.json").read_text())
    del meta["config"]["tail_rank"]
    del meta["identity"]["sealed_after"]        # that version wrote no seals
    (out / "config.json").write_text(json.dumps(meta))
    ck_path = out / "checkpoints" / "resume.npz"
    ck = dict(np.load(ck_path))
    cfg = json.loads(str(ck["config"]))
    del cfg["tail_rank"]
    ck["config"] = np.str_(json.dumps(cfg))
    del ck["state_digest"]                  # a state of that version carries no seal either
    np.savez(ck_path, **ck)
    as_before_seals(out)                    # nor do its other states
    r = CliRunner().invoke(main, ["train", "--out", str(out), "--resume", "--epochs", "9"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(l) for l in open(out / "metrics.jsonl")]
    assert [x["epoch"] for x in rows] == list(range(10)) and "W_tail" in rows[-1]
    assert json.loads((out / "config.json").read_text())["config"]["tail_rank"] == "M-1"


def test_summarize_says_where_a_clock_could_not_fire(tmp_path):
    """A t_cls that never comes is shown with the run's final train loss over row 0 (weight decay holds the
    loss above a floor; an eps below it never fires), and a t_rep at row 0 is marked §: the statistic never
    left its final value's band, so there was nothing to time (it read as an event at epoch 0)."""
    run = tmp_path / "runs" / "a"
    r = CliRunner().invoke(main, ["train", "--M", "11", "--K", "32", "--epochs", "40", "--lr", "1e-2",
                                  "--eta", "5e-3", "--windows", "4", "--metrics", "core", "--out", str(run)])
    assert r.exit_code == 0, r.output
    L = [json.loads(l)["train_loss"] for l in open(run / "metrics.jsonl")]
    js = tmp_path / "s.json"
    r = CliRunner().invoke(main, ["summarize", str(tmp_path / "runs"), "--cls-eps", "1e-9", "--rep-delta", "10",
                                  "--persist", "5", "--json", str(js)])
    assert r.exit_code == 0, r.output
    from tianref.analysis.summarize import fmt
    run_doc = json.loads(js.read_text())["conditions"][0]["runs"][0]
    assert run_doc["t_cls"] is None and run_doc["t_rep"] == 0
    assert run_doc["loss_final_ratio"] == pytest.approx(L[-1] / L[0], rel=1e-15)
    assert f"never 0/1; final loss {fmt(L[-1] / L[0])} x row 0 (eps 1e-09)" in r.output
    assert "| 0 [0, 0] 1/1 §1/1 |" in r.output and "§ k/n: runs whose t_rep is row 0" in r.output
