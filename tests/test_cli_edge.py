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


def _eval(W, V, M, idx):
    """(test loss, test accuracy) of the model on the rows idx, with the model and loss directly."""
    batch = data.make_batch(np, M, idx)
    Yhat, _ = model.forward(np, {"W": W, "V": V}, batch, "sqr")
    L, _ = losses.loss_and_grad(np, Yhat, batch.y, "tian")
    return float(L), float(losses.accuracy(np, Yhat, batch.y))


def test_numbers_match_a_hand_computation_from_the_resume_state(run_dir, tmp_path):
    """v1, v2 from the stored resume state (its ring, numpy's SVD of the window matrix); one random
    2-frame from default_rng((seed, 2)); every change recomputed with the model directly."""
    doc, r = _edge(run_dir, tmp_path, "--at-epochs", f"8,{E}", "--n-random", "1", "--seed", "7", "--space", "W")
    assert "ratio" in r.stdout and "perturbation" in r.stdout
    rec = [x for x in doc["records"] if x["epoch"] == E][0]
    ck = np.load(os.path.join(run_dir, "checkpoints", "resume.npz"))
    assert int(ck["epoch"]) == E
    W, V, test_idx = ck["W"], ck["V"], ck["test_idx"]
    count, buf = int(ck["spec_count"]), ck["spec_buf_W"]
    slots = [(count - 1 - i) % buf.shape[0] for i in range(4)]
    _, S, Vh = np.linalg.svd(buf[slots], full_matrices=False)   # rows of Vh: right singular vectors
    v1, v2 = Vh[0], Vh[1]
    w = W.ravel()
    L0, A0 = _eval(W, V, 11, test_idx)
    p = rec["probe"]
    assert p["base"]["test_loss"] == pytest.approx(L0, rel=1e-13)
    assert p["sigma"] == pytest.approx(list(S[:2] ** 2), rel=1e-10)     # eigh of D D^T vs SVD of D
    w2 = w - (w @ v1) * v1 - (w @ v2) * v2
    L2, A2 = _eval(w2.reshape(W.shape), V, 11, test_idx)
    rm = p["removal"]["v1v2"]
    assert rm["frac"] == pytest.approx(((w @ v1) ** 2 + (w @ v2) ** 2) / (w @ w), rel=1e-10)
    # L is smooth in theta; v_k agree with the SVD to ~1e-13 (relative), so 1e-9 is generous
    assert rm["edge"]["dtest_loss"] == pytest.approx(L2 - L0, rel=1e-9, abs=1e-14)
    assert rm["edge"]["dtest_acc"] == pytest.approx(A2 - A0, abs=1e-12)
    Q, _ = np.linalg.qr(np.random.default_rng((7, 2)).standard_normal((w.size, 2)))
    wr = w - Q @ (Q.T @ w)
    Lr, Ar = _eval(wr.reshape(W.shape), V, 11, test_idx)
    assert rm["random"]["dtest_loss"]["values"] == pytest.approx([Lr - L0], rel=1e-9, abs=1e-15)
    assert rm["ratio"] == pytest.approx(abs(A2 - A0) / (abs(Ar - A0) + 1e-8), rel=1e-9)
    Ln, _ = _eval((w * np.sqrt(1 - rm["frac"])).reshape(W.shape), V, 11, test_idx)
    assert rm["norm_matched"]["dtest_loss"] == pytest.approx(Ln - L0, rel=1e-9, abs=1e-14)
    eps = 0.005 * np.linalg.norm(w)
    for k, v in (("v1", v1), ("v2", v2)):
        Lp, _ = _eval((w + eps * np.sign(w @ v) * v).reshape(W.shape), V, 11, test_idx)
        assert p["perturb"][k]["dtest_loss"] == pytest.approx(Lp - L0, rel=1e-8, abs=1e-14)
    # the replay reproduced the run (its checkpoint at 8 and its logged split at both epochs)
    rows = {json.loads(l)["epoch"]: json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl"))}
    for x in doc["records"]:
        assert "reproduced" in x["replay_check"]
        assert x["split"]["gfrac"] == pytest.approx(rows[x["epoch"]]["W_edge_gfrac"], rel=1e-12)
        assert x["logged"]["W_edge_gfrac"] == rows[x["epoch"]]["W_edge_gfrac"]
        assert x["split"]["sigma1"] == pytest.approx(x["probe"]["sigma"][0], rel=1e-12)   # two routes to sigma_1


def test_the_removal_table_prints_the_accuracy_the_changes_start_from(run_dir, tmp_path):
    """A change of the test accuracy reads only beside the accuracy it changes (-0.004 from 0.004 is
    'every right answer lost'): each removal row prints the test accuracy before any removal, the
    model's own on the stored state at that epoch."""
    _, r = _edge(run_dir, tmp_path, "--at-epochs", str(E), "--n-random", "1", "--space", "W")
    ck = np.load(os.path.join(run_dir, "checkpoints", "resume.npz"))
    _, A0 = _eval(ck["W"], ck["V"], 11, ck["test_idx"])
    out = r.stdout.splitlines()
    first = next(i for i, ln in enumerate(out) if " remove " in ln) + 2      # below the header and its rule
    last = next(i for i, ln in enumerate(out) if ln.startswith("remove:"))    # the table's legend
    rows = [ln.replace("|", " ").split() for ln in out[first:last]]
    assert len(rows) == 2, r.stdout
    # columns: epoch, space, remove, f, f rand, A, dA edge, ...
    assert all(x[5] == format(A0, ".3g") for x in rows), rows
    assert "A = the test accuracy before any removal" in r.stdout
    assert "p = <theta, v_k>" in r.stdout


def test_joint_space_deterministic_and_fake_backend(run_dir, tmp_path):
    a, _ = _edge(run_dir, tmp_path, "--at-epochs", str(E), "--n-random", "5", "--space", "joint")
    b, _ = _edge(run_dir, tmp_path, "--at-epochs", str(E), "--n-random", "5", "--space", "joint", "--xp", "fake")
    c, _ = _edge(run_dir, tmp_path, "--at-epochs", str(E), "--n-random", "5", "--space", "joint", "--seed", "1")
    ra, rb, rc = (d["records"][0] for d in (a, b, c))
    assert ra["probe"] == rb["probe"] and ra["split"] == rb["split"]
    rma, rmc = ra["probe"]["removal"]["v1v2"], rc["probe"]["removal"]["v1v2"]
    assert rma["edge"] == rmc["edge"] and rma["random"] != rmc["random"]
    s = ra["split"]
    assert s["g2"] + s["wd2"] + 2 * s["cross"] == pytest.approx(s["sigma1"], rel=1e-12)
    assert ra["probe"]["P"] == 2 * 11 * 32 + 32 * 11


def test_plot_is_written(run_dir, tmp_path):
    png = tmp_path / "e.png"
    r = CliRunner().invoke(main, ["edge", "--run", run_dir, "--at-epochs", "8,16", "--n-random", "3", "--plot", str(png)])
    assert r.exit_code == 0, r.output
    assert png.stat().st_size > 10_000


def test_an_epoch_without_an_edge_beside_one_with_it_is_skipped_not_refused(run_dir, tmp_path):
    """--at-epochs 1,8: epoch 1 (one update) has no edge and is skipped with a note; the command is refused
    only when no epoch has one (0, 1 below), so epoch 8 is probed as alone."""
    doc, r = _edge(run_dir, tmp_path, "--at-epochs", "1,8", "--n-random", "0", "--space", "W")
    alone, _ = _edge(run_dir, tmp_path, "--at-epochs", "8", "--n-random", "0", "--space", "W")
    assert [x["epoch"] for x in doc["records"]] == [8]
    assert doc["records"][0]["probe"] == alone["records"][0]["probe"]
    assert "epoch 1: fewer than 2 updates, no edge; skipped" in r.stderr


@pytest.mark.parametrize("args, fragment", [
    (["--at-epochs", "99"], "past the run's last epoch 16 (its train --epochs)"),
    (["--at-epochs", "a"], "comma-separated integers"),
    (["--at-epochs", "-1"], ">= 0"),
    (["--at-epochs", "0,1"], "no edge at epoch(s) 0, 1"),               # fewer than 2 updates
    (["--at-epochs", "8", "--eps-rel", "nan"], "--eps-rel must be a finite number > 0"),
    (["--at-epochs", "8", "--eps-rel", "inf"], "--eps-rel must be a finite number > 0"),
    (["--at-epochs", "8", "--eps-rel", "0"], "--eps-rel must be a finite number > 0"),
    (["--at-epochs", "8", "--eps-rel", "-1e-3"], "--eps-rel must be a finite number > 0"),
    (["--at-epochs", "8", "--n-random", "-1"], "-1 is not in the range"),
    (["--at-epochs", "8", "--space", "U"], "'U' is not one of"),
])
def test_bad_input(run_dir, args, fragment):
    r = CliRunner().invoke(main, ["edge", "--run", run_dir] + args)
    assert r.exit_code == 2 and fragment in r.output and "Traceback" not in r.output, r.output
    assert len([l for l in r.output.splitlines() if l.startswith("Error")]) == 1


def test_missing_run_and_a_run_that_does_not_replay(run_dir, tmp_path):
    r = CliRunner().invoke(main, ["edge", "--run", str(tmp_path / "nope"), "--at-epochs", "1"])
    assert r.exit_code == 2 and "no such directory" in r.output
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    from tianref import identity
    ck = dict(np.load(bad / "checkpoints" / "epoch_00008.npz"))
    ck["W"] = ck["W"] + 1e-12
    np.savez(bad / "checkpoints" / "epoch_00008.npz", **ck)               # edited, its seal kept: refused
    r = CliRunner().invoke(main, ["edge", "--run", str(bad), "--at-epochs", "8", "--n-random", "0"])
    assert r.exit_code == 2 and "its arrays are not the ones its run wrote" in r.output
    ck["state_digest"] = np.str_(identity.state_digest(ck))               # sealed again: a genuine mismatch,
    np.savez(bad / "checkpoints" / "epoch_00008.npz", **ck)               # as another machine's replay gives
    r = CliRunner().invoke(main, ["edge", "--run", str(bad), "--at-epochs", "8", "--n-random", "0"])
    assert r.exit_code == 1 and "differ" in r.output
    # the reproduce section probes without stopping, and records what did not match
    from tianref.analysis.edge_runs import probe_run
    recs = probe_run(str(bad), [8], np, spaces=("W",), n_random=0, strict=False)
    assert "weights DIFFER" in recs[0]["replay_check"]
    rows = [json.loads(l) for l in open(bad / "metrics.jsonl")]
    rows[8]["W_edge_g2"] *= 1.001
    lines = [json.dumps(x) for x in rows]
    (bad / "metrics.jsonl").write_text("".join(x + "\n" for x in lines))
    (bad / "checkpoints" / "epoch_00008.npz").unlink()
    r = CliRunner().invoke(main, ["edge", "--run", str(bad), "--at-epochs", "8", "--n-random", "0"])
    assert r.exit_code == 2 and "metrics.jsonl is not the log this run wrote" in r.output   # an edited log
    for name in ("final.npz", "resume.npz"):                  # ... vouched for again, as if the run had logged
        p = bad / "checkpoints" / name                        # that value: a genuine replay mismatch
        if p.is_file():
            ck = dict(np.load(p))
            ck["rows_digest"] = np.str_(identity.rows_digest(str(ck["fingerprint"]), lines[:int(ck["epoch"]) + 1]))
            ck["state_digest"] = np.str_(identity.state_digest(ck))
            np.savez(p, **ck)
    r = CliRunner().invoke(main, ["edge", "--run", str(bad), "--at-epochs", "8", "--n-random", "0"])
    assert r.exit_code == 1 and "split differs from the logged one" in r.output
    recs = probe_run(str(bad), [8], np, spaces=("W",), n_random=0, strict=False)
    assert "split NOT reproduced" in recs[0]["replay_check"]


def test_random_statistics_and_the_authors_ratio_follow_from_the_draws(run_dir, tmp_path):
    """Per removal, the random control's mean and std are the plain mean and the population std (ddof = 0,
    the authors' np.std) of the per-draw values, and the authors' ratio divides |Δacc edge| by |mean of the
    signed Δacc of the draws| + 1e-8 (not by the mean of their absolute values)."""
    doc, _ = _edge(run_dir, tmp_path, "--epochs", str(E), "--n-random", "6", "--space", "W")
    seen = 0
    for r in doc["records"]:
        for rm in r["probe"]["removal"].values():
            if rm is None or rm["random"] is None:
                continue
            for key in ("dtest_acc", "dtest_loss", "dtrain_loss", "frac"):
                s = rm["random"][key]
                v = np.asarray(s["values"], dtype=float)
                assert len(v) == 6
                assert s["mean"] == pytest.approx(v.mean(), rel=1e-12, abs=1e-300)
                assert s["std"] == pytest.approx(np.sqrt(np.mean((v - v.mean()) ** 2)), rel=1e-9, abs=1e-300)
            v = np.asarray(rm["random"]["dtest_acc"]["values"], dtype=float)
            want = abs(rm["edge"]["dtest_acc"]) / (abs(v.mean()) + 1e-8)
            assert rm["ratio"] == pytest.approx(want, rel=1e-12)
            seen += 1
    assert seen >= 2


def test_split_of_every_space_both_views(run_dir, tmp_path):
    """The JSON's split per space: W and V alone, formed from the rings' contents (a = D u_1, b = D^wd u_1),
    equal the run's logged W_edge_* / V_edge_* numbers of both views (formed from its cross-Grams) to
    float64 rounding, and the joint space's edge-projected view equals an explicit
    construction from the stored resume state: D and D^wd the W and V rings side by side (float64),
    v_1 = numpy's first right singular vector of D, p = D v_1, p_wd = D^wd v_1, p_g = p - p_wd."""
    doc, r = _edge(run_dir, tmp_path, "--at-epochs", f"8,{E}", "--n-random", "0")
    assert "pgfrac" in r.stdout and "palign" in r.stdout
    rows = {json.loads(l)["epoch"]: json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl"))}
    seen = set()
    for x in doc["records"]:
        s = x["split"]
        assert s["pg2"] + s["pwd2"] + 2 * s["pcross"] == pytest.approx(s["sigma1"], rel=1e-12)
        if x["space"] == "joint":
            continue
        row = rows[x["epoch"]]
        for view in (("g2", "wd2", "cross"), ("pg2", "pwd2", "pcross")):
            scale = max(abs(s[k]) for k in view)
            for k in view:
                assert s[k] == pytest.approx(row[f"{x['space']}_edge_{k}"], rel=0, abs=1e-12 * scale), (
                    x["epoch"], x["space"], k)
        for k in ("gfrac", "cos", "pgfrac", "palign"):
            assert s[k] == pytest.approx(row[f"{x['space']}_edge_{k}"], rel=1e-9), (x["epoch"], x["space"], k)
        seen.add(x["space"])
    assert seen == {"W", "V"}
    ck = np.load(os.path.join(run_dir, "checkpoints", "resume.npz"))
    assert int(ck["epoch"]) == E and ck["spec_buf_W"].shape[0] == 4       # the ring is the window (w = 4)
    D = np.concatenate([ck["spec_buf_W"], ck["spec_buf_V"]], axis=1)       # (4, P) W first
    Dwd = np.concatenate([ck["spec_buf_wd_W"], ck["spec_buf_wd_V"]], axis=1)
    _, S, Vh = np.linalg.svd(D, full_matrices=False)
    p, p_wd = D @ Vh[0], Dwd @ Vh[0]
    p_g = p - p_wd
    s = [x for x in doc["records"] if x["epoch"] == E and x["space"] == "joint"][0]["split"]
    # float64; the 4 x 4 eigh against the SVD and sums of 4 products: 1e-10 of the largest term
    scale = max(p_g @ p_g, p_wd @ p_wd)
    for k, v in (("pg2", p_g @ p_g), ("pwd2", p_wd @ p_wd), ("pcross", p_g @ p_wd), ("sigma1", S[0] ** 2)):
        assert s[k] == pytest.approx(v, rel=0, abs=1e-10 * scale), k
    assert s["pgfrac"] == pytest.approx((p_g @ p_g) / (p_g @ p_g + p_wd @ p_wd), rel=1e-9)
    assert s["palign"] == pytest.approx((p_g @ p_wd) / np.sqrt((p_g @ p_g) * (p_wd @ p_wd)), rel=1e-9)


def test_curvature_against_the_model_directly(run_dir, tmp_path):
    """The curvature block at the stored resume state, v_1..v_4 from numpy's SVD of the W and V rings:
    W alone against the three test losses computed with the model directly at theta, theta +- eps v_k,
    eps = 0.001 ||W||; V alone against its closed form: Yhat = F V is linear in V and the loss quadratic
    in Yhat, so L(V + t v) is a parabola in t and the second difference is exactly its curvature
    (2/n) ||P_M (F v)||_F^2 (F = sigma(XW) on the test set, P_M the centring over classes)."""
    doc, r = _edge(run_dir, tmp_path, "--at-epochs", str(E), "--n-random", "0", "--space", "all")
    assert "curvature of the test loss" in r.stdout
    ck = np.load(os.path.join(run_dir, "checkpoints", "resume.npz"))
    W, V, test_idx = ck["W"], ck["V"], ck["test_idx"]
    rec = {x["space"]: x["probe"]["curvature"] for x in doc["records"]}
    assert set(rec) == {"joint", "W", "V"}
    # W: the three losses directly
    w = W.ravel()
    _, S, Vh = np.linalg.svd(ck["spec_buf_W"], full_matrices=False)       # the ring is the window (w = 4)
    eps = 0.001 * np.linalg.norm(w)
    c = rec["W"]
    assert c["eps"] == pytest.approx(eps, rel=1e-14)
    L0, _ = _eval(W, V, 11, test_idx)
    for k in range(4):
        q = c[f"v{k + 1}"]
        v = Vh[k] * np.sign(q["p"] * (w @ Vh[k]))                           # the probe's sign of v_k
        Lp, _ = _eval((w + eps * v).reshape(W.shape), V, 11, test_idx)
        Lm, _ = _eval((w - eps * v).reshape(W.shape), V, 11, test_idx)
        assert q["sigma"] == pytest.approx(S[k] ** 2, rel=1e-8)             # eigh of D D^T vs the SVD
        # v_k agree with the SVD to ~1e-10 (the smallest gap here), the losses to ~1e-16 relative:
        # the second difference (divided by eps^2 ~ 2e-5) to ~1e-10, the first to ~1e-14
        assert q["curvature"] == pytest.approx((Lp + Lm - 2 * L0) / eps ** 2, rel=1e-6), k
        assert q["func_change"] == pytest.approx(abs(Lp - L0), rel=1e-6, abs=1e-15), k
        assert q["dL_minus"] == pytest.approx(Lm - L0, rel=1e-6, abs=1e-15), k
    # V: the closed form of a parabola
    batch = data.make_batch(np, 11, test_idx)
    _, (_, F) = model.forward(np, {"W": W, "V": V}, batch, "sqr")             # (n, K) sigma(XW)
    _, _, Vh = np.linalg.svd(ck["spec_buf_V"], full_matrices=False)
    for k in range(4):
        dY = F @ Vh[k].reshape(V.shape)                                     # (n, M) d Yhat / dt
        dZ = dY - dY.mean(axis=1, keepdims=True)                            # P_M: centred over classes
        want = 2.0 / len(test_idx) * np.sum(dZ * dZ)
        # exact for a parabola up to the rounding of the losses (~1e-16) over eps^2 ~ 1e-5
        assert rec["V"][f"v{k + 1}"]["curvature"] == pytest.approx(want, rel=1e-6), k


def test_the_curvature_axis_follows_its_values():
    """Positive curvatures over decades get a log axis; with a negative one, a symlog axis whose linear range is
    the decade of the smallest nonzero |value| (a fixed 1e-3 showed ~5e-4..7e-3 with two ticks)."""
    from matplotlib.figure import Figure
    from tianref.analysis.edge_figures import _curvature_scale
    ax = Figure().subplots()
    _curvature_scale(ax, [5e-4, 2e-3, 0.25])
    assert ax.get_yscale() == "log"
    ax = Figure().subplots()
    _curvature_scale(ax, [-8e-5, 5e-4, 0.69])
    assert ax.get_yscale() == "symlog" and ax.yaxis.get_transform().linthresh == pytest.approx(1e-5)
    ax = Figure().subplots()
    _curvature_scale(ax, [])
    assert ax.get_yscale() == "symlog"


def test_n_random_above_its_bound_is_refused_at_parse_time(run_dir, monkeypatch):
    """--n-random is the number of random draws per removal, epoch and space (each a (P, k) Gaussian frame
    and one model evaluation, five numbers kept per draw): above N_RANDOM_MAX it is refused by the option
    parser (one line, exit 2) before any replay; the bound itself parses."""
    from tianref.edge_probe import N_RANDOM_MAX

    class Reached(Exception):
        pass

    def reached(*a, **k):
        raise Reached()
    monkeypatch.setattr("tianref.analysis.edge_runs.load_run", reached)
    for n in (str(N_RANDOM_MAX + 1), "100000000000000000000000"):
        r = CliRunner().invoke(main, ["edge", "--run", run_dir, "--at-epochs", "8", "--n-random", n])
        assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.output
        assert "--n-random" in r.stderr and f"0<=x<={N_RANDOM_MAX}" in r.stderr, r.stderr
    r = CliRunner().invoke(main, ["edge", "--run", run_dir, "--at-epochs", "8", "--n-random", str(N_RANDOM_MAX)])
    assert isinstance(r.exception, Reached)


@pytest.mark.parametrize("cmd", ["edge", "thm6"])
def test_plot_writes_the_format_its_extension_names_and_refuses_others(run_dir, tmp_path, monkeypatch, cmd):
    """--plot x.pdf writes a PDF, x.svg an SVG, x.PNG a PNG (the extension names the format, as plot's
    --format does; it wrote PNG bytes whatever the name); x.jpg or a name without an extension is refused
    before anything is computed (one line, exit 2), nothing written."""
    args = [cmd, "--run", run_dir, "--at-epochs", str(E)]
    args += ["--n-random", "0", "--space", "W"] if cmd == "edge" else []
    heads = {"f.pdf": b"%PDF", "f.svg": b"<?xml", "f.PNG": b"\x89PNG"}
    for name, head in heads.items():
        r = CliRunner().invoke(main, args + ["--plot", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
        assert (tmp_path / name).read_bytes()[:len(head)] == head, name

    def never(*a, **k):
        raise AssertionError("computed before the --plot name was checked")
    monkeypatch.setattr("tianref.analysis.edge_runs.load_run", never)
    monkeypatch.setattr("tianref.cli.thm6._sources", never)
    for name in ("f.jpg", "figure"):
        r = CliRunner().invoke(main, args + ["--plot", str(tmp_path / name)])
        assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.output
        assert "--plot" in r.stderr and ".png, .pdf or .svg" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(heads)


def test_the_json_records_the_thread_count_the_replay_ran_with(run_dir, tmp_path, monkeypatch):
    """The run trained with 1 BLAS thread, so edge replays it with 1 whatever the thread variables say; its
    JSON said 2 (read after the replay's limit was lifted), as thm6's says 1."""
    own = json.load(open(f"{run_dir}/config.json"))["versions"]["blas_threads"]
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=own + 1):
        doc, _ = _edge(run_dir, tmp_path, "--at-epochs", str(E))
    assert doc["versions"]["blas_threads"] == own
