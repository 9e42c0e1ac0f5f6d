"""The two clocks: stable ranks, norms and the nuclear norm per row (against an SVD of the stored
checkpoint weights), and the events t_cls, t_rep on hand-made columns."""
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
        stats = dict((k, float(to_host(x))) for k, x in clocks.clock_stats(xp, {"W": xp.asarray(W), "V": xp.asarray(V)}))
        assert stats["W_srank"] == pytest.approx({"rank1": 1.0, "iso": 5.0}[name], rel=1e-12)
        assert stats["W_fro"] == pytest.approx(np.linalg.norm(W), rel=1e-14)
        sv = np.linalg.svd(W @ V, compute_uv=False)
        assert stats["WV_nuc"] == pytest.approx(sv.sum(), rel=1e-12)
        svV = np.linalg.svd(V, compute_uv=False)
        assert stats["V_srank"] == pytest.approx((svV ** 2).sum() / svV[0] ** 2, rel=1e-12)


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
        for name, X in (("W", W), ("V", V)):
            s = np.linalg.svd(X, compute_uv=False)
            # eigvalsh of the Gram vs an SVD: both backward stable, ~1e-15 of ||X||_2^2
            assert rows[e][f"{name}_srank"] == pytest.approx((s ** 2).sum() / s[0] ** 2, rel=1e-12), (e, name)
            assert rows[e][f"{name}_fro"] == pytest.approx(np.sqrt((s ** 2).sum()), rel=1e-13), (e, name)
        assert rows[e]["WV_nuc"] == pytest.approx(np.linalg.svd(W @ V, compute_uv=False).sum(), rel=1e-12)
    assert rows[12]["W_fro"] != rows[0]["W_fro"]                     # the weights moved


def test_t_cls_and_t_rep_by_hand():
    loss = [2.0, 1.5, 0.5, 0.03, 0.019, 0.05, 0.001]
    assert clock_events.t_cls(loss, 1e-2) == 4.0                    # 0.019 <= 0.02 (a later rise is ignored)
    assert math.isnan(clock_events.t_cls(loss[:4], 1e-2))
    #        0    1    2    3     4     5     6     7
    srank = [9.0, 8.0, 6.0, 5.1, 4.8, 5.3, 5.02, 5.0]
    # final 5.0, delta 0.05 -> band [4.75, 5.25]: row 5 (5.3) is the last outside, so t_rep = 6
    assert clock_events.t_rep(srank, 0.05) == 6.0
    assert clock_events.t_rep(srank, 0.1) == 3.0                     # band [4.5, 5.5]
    assert clock_events.t_rep([3.0, 3.0], 0.0) == 0.0
    assert clock_events.t_rep(srank + [float("nan")], 0.05) == 6.0   # a trailing unlogged row is skipped
    ev = clock_events.clock_events({"train_loss": np.array(loss), "W_srank": np.array(srank[:7])}, 1e-2, 0.05)
    assert ev == {"t_cls": 4.0, "t_rep": 6.0, "clock_ratio": 1.5}


def test_summarize_reports_the_clocks(tmp_path):
    out = str(tmp_path / "runs" / "a")
    r = CliRunner().invoke(main, ["train", "--M", "11", "--K", "32", "--epochs", "40", "--lr", "1e-2",
                                  "--eta", "5e-3", "--windows", "4", "--metrics", "core", "--out", out])
    assert r.exit_code == 0, r.output
    js = tmp_path / "s.json"
    r = CliRunner().invoke(main, ["summarize", str(tmp_path / "runs"), "--cls-eps", "0.05",
                                  "--rep-delta", "0.1", "--json", str(js)])
    assert r.exit_code == 0, r.output
    assert "t_rep / t_cls" in r.output
    run = json.loads(js.read_text())["conditions"][0]["runs"][0]
    rows = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
    assert run["t_cls"] == clock_events.t_cls([x["train_loss"] for x in rows], 0.05)
    assert run["t_rep"] == clock_events.t_rep([x["W_srank"] for x in rows], 0.1)
    assert run["t_cls"] is not None and run["t_rep"] is not None
