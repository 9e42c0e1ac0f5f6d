"""``thm6`` command paths through click's CliRunner: errors exit 2 with one line, happy paths write
the documented JSON and PNG. Checkpoints are built here from data.init_host (M = 7, K = 32, n = 20)."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from tianref.cli import main
from tianref.cli.thm6 import thm6_cmd
from tianref.data import init_host

M, K, N_TRAIN = 7, 32, 20                      # n − 1 = 19 < K: B does not exist at η = 0
CONFIG = {"M": M, "K": K, "n_train": N_TRAIN, "eta": 1e-3, "act": "sqr", "seed": 0, "dtype": "float64",
          "epochs": 0, "loss": "tian", "optimizer": "adam", "lr": 1e-3}


def write_checkpoint(path, config=CONFIG, **override):
    train_idx, test_idx, W, V = init_host(M, K, N_TRAIN, seed=0)
    name = os.path.basename(str(path))             # epoch_00050.npz holds epoch 50, as train writes it
    epoch = int(name[6:11]) if name.startswith("epoch_") else 0
    arrays = {"W": W, "V": V, "train_idx": train_idx, "test_idx": test_idx, "epoch": np.int64(epoch)}
    if config is not None:
        arrays["config"] = np.str_(json.dumps(config))
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return str(path)


def run(args):
    return CliRunner().invoke(thm6_cmd, args)


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, (result.exit_code, result.output, result.stderr)
    lines = result.stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("Error")]
    assert len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in result.stderr, result.stderr
    for f in fragments:
        assert f in errors[0], (f, errors[0])


# --- bad input: exit 2, one line, no traceback ----------------------------------------------------

def test_bad_run_dir(tmp_path):
    assert_one_line_error(run(["--run", str(tmp_path / "nope")]), "no such directory")


def test_dir_that_is_not_a_run(tmp_path):
    assert_one_line_error(run(["--run", str(tmp_path)]), "not a run directory")


def test_missing_checkpoint_and_no_config_to_replay(tmp_path):
    os.makedirs(tmp_path / "checkpoints")
    write_checkpoint(tmp_path / "checkpoints" / "epoch_00050.npz")
    assert_one_line_error(run(["--run", str(tmp_path), "--at-epochs", "50,100"]), "100", "no config.json")


def test_missing_checkpoint_file(tmp_path):
    assert_one_line_error(run(["--checkpoint", str(tmp_path / "none.npz")]), "not found")


def test_neither_or_both_sources(tmp_path):
    assert_one_line_error(run([]), "exactly one of", "e.g. `thm6 --exact --run runs/headline`")
    assert_one_line_error(run(["--exact"]), "thm6 analyses a trained run")
    ck = write_checkpoint(tmp_path / "c.npz")
    assert_one_line_error(run(["--run", str(tmp_path), "--checkpoint", ck]), "exactly one of")


@pytest.mark.parametrize("override, fragment", [
    ({"W": np.zeros((2 * M + 1, K))}, "W has shape"),
    ({"W": np.zeros((2 * M, K + 1))}, "V (K, M)"),
    ({"V": None}, "missing array(s) V"),
    ({"train_idx": np.arange(3, dtype=np.int64) + M * M}, "train_idx"),
    ({"train_idx": np.linspace(0, 1, 5)}, "train_idx"),
])
def test_mis_shaped_checkpoint(tmp_path, override, fragment):
    ck = write_checkpoint(tmp_path / "bad.npz", **override)
    assert_one_line_error(run(["--checkpoint", ck]), "mis-shaped", fragment)


def test_not_an_npz(tmp_path):
    # np.load calls any file that is not a zip (text, a .npy array) pickled data and suggests
    # allow_pickle, which no command offers: the message says what the file is not instead
    p = tmp_path / "junk.npz"
    p.write_text("not a zip file")
    np.save(tmp_path / "one.npy", np.zeros(3))
    for f in (p, tmp_path / "one.npy"):
        r = run(["--checkpoint", str(f)])
        assert_one_line_error(r, "cannot read", "not an .npz archive")
        assert "pickle" not in r.stderr


def test_no_config_needs_act_and_eta(tmp_path):
    ck = write_checkpoint(tmp_path / "noconf.npz", config=None)
    assert_one_line_error(run(["--checkpoint", ck]), "--act")
    assert_one_line_error(run(["--checkpoint", ck, "--act", "sqr"]), "--eta")
    assert run(["--checkpoint", ck, "--act", "sqr", "--eta", "1e-3", "--top-pairs", "5"]).exit_code == 0


def test_eta_zero_says_B_does_not_exist_unless_pinv(tmp_path):
    ck = write_checkpoint(tmp_path / "c.npz")
    assert_one_line_error(run(["--checkpoint", ck, "--eta", "0"]), "does not exist", "--pinv")
    assert_one_line_error(run(["--checkpoint", ck, "--pinv"]), "eta = 0 variant")
    out, png = tmp_path / "p.json", tmp_path / "p.png"
    res = run(["--checkpoint", ck, "--eta", "0", "--pinv", "--top-pairs", "10", "--json", str(out),
               "--plot", str(png)])
    assert res.exit_code == 0, res.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    s = json.loads(out.read_text())["checkpoints"][0]["summary"]
    assert s["B_method"] == "pinv" and s["sign_match_exact"] is None and s["sign_match_paper"] is None
    assert s["sign_match_approx"] is None and "rounding" in s["approx_note"]    # the sign of a rounded zero


def test_eta_zero_with_a_nonsingular_gram_reports_no_approx_sign_match(tmp_path):
    """n - 1 >= K: B = A^-1 exists at eta = 0 and the exact route holds, but f~_j^T P_0 f~_l = 0 for every
    pair (P_0 removes range F~), so the approx column printed the sign of rounding noise (0.44-0.58)."""
    from tianref.data import init_host
    train_idx, test_idx, W, V = init_host(M, 8, N_TRAIN, seed=0)              # K = 8 < n - 1 = 19
    ck = tmp_path / "c.npz"
    np.savez(ck, W=W, V=V, train_idx=train_idx, test_idx=test_idx, epoch=np.int64(0),
             config=np.str_(json.dumps(dict(CONFIG, K=8, eta=0.0))))
    out = tmp_path / "s.json"
    res = run(["--checkpoint", str(ck), "--top-pairs", "5", "--json", str(out)])
    assert res.exit_code == 0, res.output
    s = json.loads(out.read_text())["checkpoints"][0]["summary"]
    assert s["sign_match_exact"] == 1.0 and s["sign_match_approx"] is None and "eta = 0" in s["approx_note"]
    row = [ln for ln in res.stdout.splitlines() if ln.split()[:1] == ["0"]][0]
    assert row.split()[5] == "-", row                                          # the approx column


def test_exact_is_the_default_and_refuses_pinv(tmp_path):
    """--exact changes no number (the exact residual is always computed); with --pinv, where no exact
    residual exists, asking for it is refused instead of silently ignored."""
    ck = write_checkpoint(tmp_path / "c.npz")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    ra = run(["--checkpoint", ck, "--top-pairs", "10", "--json", str(a)])
    rb = run(["--checkpoint", ck, "--top-pairs", "10", "--json", str(b), "--exact"])
    assert ra.exit_code == 0 and rb.exit_code == 0 and ra.stdout == rb.stdout
    sa, sb = (json.loads(p.read_text())["checkpoints"][0]["summary"] for p in (a, b))
    assert sa == sb and sa["sign_match_exact"] == 1.0
    assert_one_line_error(run(["--checkpoint", ck, "--eta", "0", "--pinv", "--exact"]), "--exact", "--pinv")
    assert "--exact is the default" in run(["--help"]).stdout


# --- happy paths ---------------------------------------------------------------------------------

@pytest.mark.parametrize("xp_name", ["numpy", "fake"])
def test_checkpoint_table_json_and_plot(tmp_path, xp_name):
    ck = write_checkpoint(tmp_path / "c.npz")
    out, png = tmp_path / "out" / "t.json", tmp_path / "t.png"
    res = run(["--checkpoint", ck, "--exact", "--top-pairs", "12", "--audit", "3", "--json", str(out),
               "--plot", str(png), "--xp", xp_name])
    assert res.exit_code == 0, res.stderr
    assert "exact" in res.stdout and "paper" in res.stdout
    doc = json.loads(out.read_text())
    (rec,) = doc["checkpoints"]
    assert rec["epoch"] == 0 and rec["eta"] == 1e-3 and rec["act"] == "sqr"
    s = rec["summary"]
    for k in ("sign_match_exact", "sign_match_approx", "sign_match_paper", "frac_B_neg_on_pos_cos",
              "median_abs_cos", "audit_max_rel_diff", "n_pairs"):
        assert k in s, k
    assert s["n_pairs"] == 12 and s["sign_match_exact"] == 1.0 and s["audit_max_rel_diff"] < 1e-9
    assert len(rec["pairs"]) == 12
    assert set(rec["pairs"][0]) >= {"j", "l", "cos", "B", "r_exact", "r_approx", "r_paper", "B_paper"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [f for f in os.listdir(out.parent) if f.startswith(".tmp")]   # atomic write left no temp


def test_all_pairs_lists_nothing(tmp_path):
    ck = write_checkpoint(tmp_path / "c.npz")
    out, png = tmp_path / "a.json", tmp_path / "a.png"
    res = run(["--checkpoint", ck, "--all-pairs", "--json", str(out), "--plot", str(png)])
    assert res.exit_code == 0, res.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    (rec,) = json.loads(out.read_text())["checkpoints"]
    assert "pairs" not in rec and rec["summary"]["n_pairs"] == K * (K - 1) // 2
    assert rec["summary"]["sign_match_exact"] == 1.0 and "r_exact_quantiles" in rec["summary"]


@pytest.mark.parametrize("extra, fragment", [
    (["--all-pairs", "--top-pairs", "5"], "drop --top-pairs"),
    (["--replay-beyond"], "a --checkpoint file has no run"),
])
def test_options_that_would_be_ignored_are_refused(tmp_path, extra, fragment):
    """--top-pairs with --all-pairs (which lists no pair) and --replay-beyond with a --checkpoint (no run
    to train on) were silently ignored, exit 0."""
    ck = write_checkpoint(tmp_path / "c.npz")
    out = tmp_path / "a.json"
    assert_one_line_error(run(["--checkpoint", ck, *extra, "--json", str(out)]), fragment)
    assert not out.exists()


@pytest.mark.parametrize("opt", ["--run", "--checkpoint"])
def test_an_empty_source_path_says_so(opt):
    assert_one_line_error(run([opt, ""]), "the path is empty")


def test_run_dir_with_replay_matches_the_checkpoint(tmp_path):
    """A tiny real run: epoch 3 from its checkpoint, and again replayed after the file is removed."""
    rd = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "--M", str(M), "--K", str(K), "--epochs", "4",
                                    "--checkpoint-epochs", "3", "--metrics", "core", "--out", str(rd)])
    assert res.exit_code == 0, res.output
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    res = run(["--run", str(rd), "--at-epochs", "3,4", "--top-pairs", "8", "--audit", "1", "--json", str(a)])
    assert res.exit_code == 0, res.stderr
    os.unlink(rd / "checkpoints" / "epoch_00003.npz")
    res = run(["--run", str(rd), "--at-epochs", "3", "--top-pairs", "8", "--audit", "1", "--json", str(b)])
    assert res.exit_code == 0, res.stderr
    # off a terminal no notes, only the heartbeat of the replay (to epoch 3) and of the checkpoint computed
    assert [ln.split(",")[0] for ln in res.stderr.splitlines()] == [
        "thm6 replay: epoch 1/3 (33 %)", "thm6 replay: epoch 2/3 (67 %)", "thm6 replay: epoch 3/3 (100 %)",
        "thm6: checkpoint 1/1 (100 %)"], res.stderr
    assert "epoch 3: replayed deterministically from config.json" in res.stdout
    ra, rb = json.loads(a.read_text())["checkpoints"], json.loads(b.read_text())["checkpoints"]
    assert [r["epoch"] for r in ra] == [3, 4] and rb[0]["source"] == "replay"
    assert ra[1]["source"].endswith("final.npz")
    # deterministic replay: bit-identical weights, so bit-identical pairs and B entries
    assert [(p["j"], p["l"], p["B"]) for p in ra[0]["pairs"]] == [(p["j"], p["l"], p["B"]) for p in rb[0]["pairs"]]


def test_registered_on_the_main_group():
    res = CliRunner().invoke(main, ["thm6", "--help"])
    assert res.exit_code == 0 and "--all-pairs" in res.output and "[default: 200" in res.output


def test_figure_marks_replayed_and_beyond_run_epochs():
    """The sign-match panel carries a rug at the replayed checkpoints (grey) and at those replayed beyond
    the run's end (red), each with its legend entry; stored checkpoints get no mark."""
    from tianref.thm6.figures import figure_thm6
    recs = [{"epoch": e, "source": src, "replayed_beyond_run": beyond,
             "summary": {"sign_match_exact": 1.0, "n_pairs": 10}}
            for e, src, beyond in ((50, "replay", False), (100, "checkpoints/epoch_00100.npz", False),
                                   (150, "replay", False), (250, "replayed beyond the run (its last epoch is 200)", True))]
    fig = figure_thm6(recs)
    ax = fig.axes[0]
    rug = {ln.get_label(): list(ln.get_xdata()) for ln in ax.get_lines() if ln.get_marker() == "|"}
    assert rug == {"replayed from config.json (no checkpoint stored)": [50, 150],
                   "replayed beyond the run's last epoch": [250]}
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "replayed from config.json (no checkpoint stored)" in labels


def test_figure_keeps_both_routes_visible_where_they_coincide():
    """The exact and full-projector sign-match fractions agree to ~1e-3 or better, so their markers sit on
    each other: the exact one is an open ring larger than the other's filled square, so neither hides the
    other (with equal filled markers the one drawn last covered the first)."""
    from tianref.thm6.figures import figure_thm6
    recs = [{"epoch": e, "summary": {"sign_match_exact": 1.0, "sign_match_approx": 1.0, "n_pairs": 10}}
            for e in (100, 200)]
    lines = {ln.get_label(): ln for ln in figure_thm6(recs).axes[0].get_lines()}
    exact, approx = lines[r"exact $r$ (eq. 2)"], lines[r"full projector, correct $B$"]
    assert list(exact.get_ydata()) == list(approx.get_ydata()) == [1.0, 1.0]
    assert exact.get_markerfacecolor() == "none" and approx.get_markerfacecolor() != "none"
    assert exact.get_markersize() > 2 * approx.get_markersize()     # the ring encloses the square


@pytest.mark.parametrize("damage", ["K=-64", "unknown key", "a folder"])
def test_a_damaged_config_json_is_refused_even_with_a_stored_checkpoint(tmp_path, damage):
    """thm6 --run reads a stored checkpoint's own config, but a run whose config.json is damaged is refused
    (one line, exit 2), as edge and --resume refuse it; it was read past when the checkpoint existed."""
    import json
    run = tmp_path / "run"
    assert CliRunner().invoke(main, ["train", "--M", "7", "--K", "16", "--epochs", "6", "--windows", "3",
                                     "--checkpoint-epochs", "4", "--out", str(run)]).exit_code == 0
    assert CliRunner().invoke(main, ["thm6", "--run", str(run), "--at-epochs", "4"]).exit_code == 0
    p = run / "config.json"
    meta = json.loads(p.read_text())
    if damage == "a folder":
        p.unlink()
        p.mkdir()
    else:
        meta["config"].update({"K": -64} if damage == "K=-64" else {"not_a_setting": 1})
        p.write_text(json.dumps(meta))
    res = CliRunner().invoke(main, ["thm6", "--run", str(run), "--at-epochs", "4"])
    assert res.exit_code == 2 and "config.json" in res.stderr and len(res.stderr.strip().splitlines()) == 1, \
        res.output


def test_a_tiny_eta_reports_no_approx_sign_match(tmp_path):
    """At eta = 1e-14 the exact value of f~_j^T P_eta f~_l, -eta^2 B_jl (eq. 3), lies below the direct route's
    rounding: the approx column printed 0.42-0.80 as a result. Past APPROX_UNRESOLVED of relative gap to the
    identity it is null, with approx_note; the exact route still stands."""
    from tianref.thm6.summary import APPROX_UNRESOLVED
    ck = write_checkpoint(tmp_path / "c.npz")
    out = tmp_path / "s.json"
    res = run(["--checkpoint", ck, "--eta", "1e-14", "--top-pairs", "10", "--json", str(out)])
    assert res.exit_code == 0, res.output
    s = json.loads(out.read_text())["checkpoints"][0]["summary"]
    assert s["approx_identity_max_rel_gap"] >= APPROX_UNRESOLVED
    assert s["sign_match_approx"] is None and "rounding sets its signs" in s["approx_note"]
    assert s["sign_match_exact"] == 1.0
    res = run(["--checkpoint", ck, "--eta", "1e-3", "--top-pairs", "10", "--json", str(out)])
    s = json.loads(out.read_text())["checkpoints"][0]["summary"]
    assert s["approx_identity_max_rel_gap"] < APPROX_UNRESOLVED and s["sign_match_approx"] is not None
