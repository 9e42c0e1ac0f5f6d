"""`cli.py edge`: the numbers against a hand computation from stored state, determinism, the
strict fake backend, and the error paths."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from tianref import data, loss as losses, model
from tianref.cli import main

E = 16
TRAIN = ["--M", "11", "--K", "32", "--epochs", str(E), "--lr", "1e-2", "--eta", "5e-3", "--windows", "4",
         "--dtype", "float64", "--checkpoint-epochs", "8"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("edge") / "run")
    r = CliRunner().invoke(main, ["train"] + TRAIN + ["--out", out])
    assert r.exit_code == 0, r.output
    return out


def _edge(run_dir, tmp, *args):
    js = str(tmp / "e.json")
    r = CliRunner().invoke(main, ["edge", "--run", run_dir, "--json", js] + list(args))
    assert r.exit_code == 0, r.output
    return json.load(open(js)), r


def _test_loss(W, V, M, test_idx, loss="tian"):
    batch = data.make_batch(np, M, test_idx)
    Yhat, _ = model.forward(np, {"W": W, "V": V}, batch, "sqr")
    L, _ = losses.loss_and_grad(np, Yhat, batch.y, loss)
    return float(L)


def test_numbers_match_a_hand_computation_from_the_resume_state(run_dir, tmp_path):
    """Edge from the stored resume state (its ring and Gram, numpy eigh); one random direction from
    default_rng(seed); the ablations recomputed with the model directly."""
    doc, r = _edge(run_dir, tmp_path, "--epochs", f"8,{E}", "--random", "1", "--seed", "7", "--space", "W")
    assert "abl ratio" in r.stdout
    rec = [x for x in doc["records"] if x["epoch"] == E][0]
    ck = np.load(os.path.join(run_dir, "checkpoints", "resume.npz"))
    assert int(ck["epoch"]) == E
    W, V, test_idx = ck["W"], ck["V"], ck["test_idx"]
    count, buf, gram = int(ck["spec_count"]), ck["spec_buf_W"], ck["spec_gram_W"]
    slots = [(count - 1 - i) % buf.shape[0] for i in range(4)]
    ev, U = np.linalg.eigh(gram[np.ix_(slots, slots)])
    a = U[:, -1] @ buf[slots]                                   # D u_1 (P,)
    e = a / np.linalg.norm(a)
    w = W.ravel()
    L0 = _test_loss(W, V, 11, test_idx)
    assert rec["probe"]["test_loss"] == pytest.approx(L0, rel=1e-13)
    L_abl = _test_loss((w - (w @ e) * e).reshape(W.shape), V, 11, test_idx)
    assert rec["probe"]["edge"]["dloss_abl"] == pytest.approx(L_abl - L0, rel=1e-9, abs=1e-14)
    assert rec["split"]["sigma1"] == pytest.approx(ev[-1], rel=1e-12)
    rnd = np.random.default_rng(7).standard_normal(w.size)
    rnd /= np.linalg.norm(rnd)
    L_r = _test_loss((w - (w @ rnd) * rnd).reshape(W.shape), V, 11, test_idx)
    assert rec["probe"]["random"]["dloss_abl"]["mean"] == pytest.approx(L_r - L0, rel=1e-9, abs=1e-15)
    eps = 1e-3 * np.linalg.norm(w)
    Lp = _test_loss((w + eps * e).reshape(W.shape), V, 11, test_idx)
    Lm = _test_loss((w - eps * e).reshape(W.shape), V, 11, test_idx)
    assert rec["probe"]["edge"]["curv"] == pytest.approx((Lp + Lm - 2 * L0) / eps ** 2, rel=1e-6)
    assert rec["probe"]["ablation_ratio"] == pytest.approx(abs(L_abl - L0) / abs(L_r - L0), rel=1e-9)
    # the replay reproduced the run (its checkpoint at 8 and its logged split at both epochs)
    rows = {json.loads(l)["epoch"]: json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl"))}
    for x in doc["records"]:
        assert "reproduced" in x["replay_check"]
        assert x["split"]["gfrac"] == pytest.approx(rows[x["epoch"]]["W_edge_gfrac"], rel=1e-12)


def test_joint_space_deterministic_and_fake_backend(run_dir, tmp_path):
    a, _ = _edge(run_dir, tmp_path, "--epochs", str(E), "--random", "5", "--space", "joint")
    b, _ = _edge(run_dir, tmp_path, "--epochs", str(E), "--random", "5", "--space", "joint", "--xp", "fake")
    c, _ = _edge(run_dir, tmp_path, "--epochs", str(E), "--random", "5", "--space", "joint", "--seed", "1")
    ra, rb, rc = (d["records"][0] for d in (a, b, c))
    assert ra["probe"] == rb["probe"] and ra["split"] == rb["split"]
    assert ra["probe"]["edge"] == rc["probe"]["edge"] and ra["probe"]["random"] != rc["probe"]["random"]
    s = ra["split"]
    assert s["g2"] + s["wd2"] + 2 * s["cross"] == pytest.approx(s["sigma1"], rel=1e-12)
    assert ra["probe"]["P"] == 2 * 11 * 32 + 32 * 11


def test_plot_is_written(run_dir, tmp_path):
    png = tmp_path / "e.png"
    r = CliRunner().invoke(main, ["edge", "--run", run_dir, "--epochs", "8,16", "--random", "3", "--plot", str(png)])
    assert r.exit_code == 0, r.output
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize("args, fragment", [
    (["--epochs", "99"], "past the run's --epochs"),
    (["--epochs", "a"], "comma-separated integers"),
    (["--epochs", "-1"], ">= 0"),
])
def test_bad_input(run_dir, args, fragment):
    r = CliRunner().invoke(main, ["edge", "--run", run_dir] + args)
    assert r.exit_code == 2 and fragment in r.output and "Traceback" not in r.output


def test_missing_run_and_a_run_that_does_not_replay(run_dir, tmp_path):
    r = CliRunner().invoke(main, ["edge", "--run", str(tmp_path / "nope"), "--epochs", "1"])
    assert r.exit_code == 2 and "no such directory" in r.output
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    ck = dict(np.load(bad / "checkpoints" / "epoch_00008.npz"))
    ck["W"] = ck["W"] + 1e-12
    np.savez(bad / "checkpoints" / "epoch_00008.npz", **ck)
    r = CliRunner().invoke(main, ["edge", "--run", str(bad), "--epochs", "8", "--random", "0"])
    assert r.exit_code == 1 and "differ" in r.output
    # the reproduce section probes without stopping, and records what did not match
    from tianref.analysis.edge_runs import probe_run
    recs = probe_run(str(bad), [8], np, spaces=("W",), n_random=0, strict=False)
    assert "weights DIFFER" in recs[0]["replay_check"]
    rows = [json.loads(l) for l in open(bad / "metrics.jsonl")]
    rows[8]["W_edge_g2"] *= 1.001
    (bad / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    (bad / "checkpoints" / "epoch_00008.npz").unlink()
    r = CliRunner().invoke(main, ["edge", "--run", str(bad), "--epochs", "8", "--random", "0"])
    assert r.exit_code == 1 and "split differs from the logged one" in r.output
    recs = probe_run(str(bad), [8], np, spaces=("W",), n_random=0, strict=False)
    assert "split NOT reproduced" in recs[0]["replay_check"]
