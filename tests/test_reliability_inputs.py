"""`--resume` verifies instead of guessing, and every corrupt file or bad value is one line, exit 2.

Each test is named after one attack case (docs/reliability.md maps the guarantees to them).
"""
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tianref.cli import main

SMALL = ["--M", "7", "--K", "16", "--epochs", "6", "--windows", "3"]


def _cli(args):
    return CliRunner().invoke(main, args)


def _snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def _refused(r, fragment=None):
    """Exit 2, one 'Error:' line, no traceback; returns the line."""
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("Error: "), r.stderr
    if fragment:
        assert fragment in err[0], err[0]
    return err[0]


@pytest.fixture
def run_dir(tmp_path):
    """A tiny run stopped at epoch 3 as if interrupted: rows 0..3, resume.npz at 3, --epochs 6."""
    d = tmp_path / "run"
    assert _cli(["train"] + SMALL[:-4] + ["--epochs", "3", "--windows", "3", "--out", str(d)]).exit_code == 0
    cfg = json.loads((d / "config.json").read_text())
    cfg["config"]["epochs"] = 6
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "checkpoints" / "final.npz").unlink()
    return d


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref") / "run"
    assert _cli(["train"] + SMALL + ["--out", str(d)]).exit_code == 0
    return (d / "metrics.jsonl").read_bytes()


def _resume(d, *extra):
    return _cli(["train", "--resume", "--out", str(d), *extra])


def _edit_ck(d, **changes):
    p = d / "checkpoints" / "resume.npz"
    ck = dict(np.load(p))
    ck.update(changes)
    np.savez(p, **ck)


def test_resume_of_an_intact_run_continues_exactly(run_dir, reference):
    r = _resume(run_dir)
    assert r.exit_code == 0, r.output
    assert (run_dir / "metrics.jsonl").read_bytes() == reference


# --- metrics.jsonl against the resume state ---------------------------------------------------

@pytest.mark.parametrize("case, edit, fragment", [
    ("emptied", lambda t: "", "holds no rows"),
    ("truncated", lambda t: "".join(t.splitlines(True)[:2]), "rows 2..3 are missing"),
    ("last-row-missing", lambda t: "".join(t.splitlines(True)[:3]), "rows 3..3 are missing"),
    ("row-missing-in-the-middle", lambda t: "".join(l for i, l in enumerate(t.splitlines(True)) if i != 1),
     "line 2 holds epoch 2, expected 1"),
    ("row-repeated", lambda t: t.splitlines(True)[0] + t, "line 2 holds epoch 0, expected 1"),
    ("garbage-line-before-the-end", lambda t: "{oops\n" + t, "line 1 is not a JSON object row"),
    ("json-but-not-an-object", lambda t: "[0]\n" + t, "line 1 is not a JSON object row"),
    ("epoch-a-boolean", lambda t: t.replace('{"epoch": 0,', '{"epoch": false,', 1), "line 1 holds epoch False, expected 0"),
])
def test_resume_refuses_a_log_that_does_not_hold_rows_0_to_r(run_dir, case, edit, fragment):
    p = run_dir / "metrics.jsonl"
    p.write_text(edit(p.read_text()))
    before = _snapshot(run_dir)
    _refused(_resume(run_dir), fragment)
    assert _snapshot(run_dir) == before


def test_resume_drops_a_torn_last_row(run_dir, reference):
    p = run_dir / "metrics.jsonl"
    p.write_text(p.read_text() + '{"epoch": 4, "train_lo')
    r = _resume(run_dir)
    assert r.exit_code == 0, r.output
    assert p.read_bytes() == reference


def test_resume_of_a_finished_run_drops_a_torn_last_row(tmp_path, reference):
    """A finished run (resume state and final.npz at E) whose log ends in a torn line is not 'already
    complete': --resume at its own epochs cuts the log back to rows 0..E (exit 0), as for a run stopped
    earlier; the rows are those the run logged."""
    d = tmp_path / "run"
    assert _cli(["train"] + SMALL + ["--out", str(d)]).exit_code == 0
    p = d / "metrics.jsonl"
    assert p.read_bytes() == reference
    p.write_text(p.read_text() + '{"epoch": 7, "train_lo')
    r = _resume(d)
    assert r.exit_code == 0 and "already complete" not in r.stderr, r.output
    assert p.read_bytes() == reference


def test_resume_recomputes_rows_logged_after_the_resume_state(run_dir, reference):
    """kill -9 after rows past the last resume state: those rows are dropped and recomputed."""
    p = run_dir / "metrics.jsonl"
    p.write_text(p.read_text() + "".join(reference.decode().splitlines(True)[4:6]))   # rows 4, 5
    assert _resume(run_dir).exit_code == 0
    assert p.read_bytes() == reference


def test_non_utf8_metrics_is_refused_by_resume_and_summarize(run_dir):
    p = run_dir / "metrics.jsonl"
    p.write_bytes(p.read_bytes()[:-20] + b"\xff\xfe\n")
    _refused(_resume(run_dir), "not UTF-8")
    _refused(_cli(["summarize", str(run_dir)]), "not UTF-8")


# --- config.json and the checkpoint's config -----------------------------------------------------

@pytest.mark.parametrize("key, value", [("lr", 0.01), ("eta", 0.0), ("seed", 3), ("act", "relu"),
                                        ("dtype", "float64"), ("optimizer", "adamw"), ("loss", "theory"),
                                        ("windows", [4]), ("top_layer", "ridge"), ("momentum", 0.5),
                                        ("gram_dtype", "float32"), ("log_grams", ["float32"]),
                                        ("init_scale", 2.0), ("output_scale", 2.0), ("ridge_reg", 0.1)])
def test_resume_refuses_an_edited_config_json(run_dir, key, value):
    p = run_dir / "config.json"
    cfg = json.loads(p.read_text())
    cfg["config"][key] = value
    p.write_text(json.dumps(cfg))
    before = _snapshot(run_dir)
    _refused(_resume(run_dir), f"config.json does not match the resume state: {key}")
    assert _snapshot(run_dir) == before


@pytest.mark.parametrize("case, text, fragment", [
    ("garbage", "\x00\x01 not json", "not valid JSON"),
    ("not-an-object", "[1, 2]", "expected a JSON object"),
    ("config-null", '{"config": null}', "expected a JSON object"),
    ("M-a-string", None, "M = '7' is not an integer"),
    ("windows-a-string", None, "windows = '3' is not a list of integers"),
    ("lr-a-list", None, "lr = [0.001] is not a finite number"),
    ("unknown-key", None, "unknown config keys: bogus"),
])
def test_corrupt_config_json_is_one_line_exit_2(run_dir, case, text, fragment):
    p = run_dir / "config.json"
    if text is None:
        cfg = json.loads(p.read_text())
        cfg["config"].update({"M-a-string": {"M": "7"}, "windows-a-string": {"windows": "3"},
                              "lr-a-list": {"lr": [0.001]}, "unknown-key": {"bogus": 1}}[case])
        text = json.dumps(cfg)
    p.write_text(text)
    _refused(_resume(run_dir), fragment)
    _refused(_cli(["thm6", "--run", str(run_dir), "--at-epochs", "2"]))


def test_corrupt_config_json_is_refused_by_summarize(run_dir):
    (run_dir / "config.json").write_text("\x00garbage")
    _refused(_cli(["summarize", str(run_dir)]), "unreadable config")


# --- options under --resume ------------------------------------------------------------------------

@pytest.mark.parametrize("opt", [["--metrics", "core"], ["--lr", "0.01"], ["--seed", "1"], ["--M", "9"],
                                 ["--windows", "4"], ["--train-frac", "0.5"], ["--act", "relu"],
                                 ["--init-from", "x.npz"], ["--overwrite"], ["--momentum", "0.5"],
                                 ["--top-layer", "ridge"], ["--ridge-reg", "0.1"], ["--gram-dtype", "float32"],
                                 ["--log-grams", "float32"], ["--init-scale", "2"], ["--output-scale", "2"],
                                 ["--optimizer", "sgd"], ["--group", "S3"], ["--ridge-eval", "current"]])
def test_resume_refuses_an_option_that_would_change_the_run(run_dir, opt):
    before = _snapshot(run_dir)
    line = _refused(_resume(run_dir, *opt))
    assert opt[0] in line
    assert _snapshot(run_dir) == before


def test_resume_accepts_an_option_equal_to_the_stored_one(run_dir, reference):
    # --train-frac 0.4 gives the stored n_train = round(0.4 * 49) = 20 (train's own default)
    r = _resume(run_dir, "--metrics", "full", "--lr", "1e-3", "--windows", "3", "--M", "7",
                "--train-frac", "0.4", "--top-layer", "trained", "--log-grams", "", "--gram-dtype", "float64",
                "--momentum", "0.9", "--ridge-eval", "held", "--group", "")   # the last two: fields that
    assert r.exit_code == 0, r.output            # config.json leaves out for this run (defaults, Z_M)
    assert (run_dir / "metrics.jsonl").read_bytes() == reference


# --- resume.npz -----------------------------------------------------------------------------------

@pytest.mark.parametrize("epoch, fragment", [(-5, "resume epoch -5 is outside"), (9, "resume epoch 9 is outside")])
def test_resume_refuses_an_epoch_out_of_range(run_dir, epoch, fragment):
    _edit_ck(run_dir, epoch=np.int64(epoch))
    before = _snapshot(run_dir)
    _refused(_resume(run_dir), fragment)
    assert _snapshot(run_dir) == before


@pytest.mark.parametrize("key, value, fragment", [
    ("adam_m_W", np.zeros((3, 3), np.float32), "adam_m_W has shape (3, 3)"),
    ("adam_v_V", np.zeros(5, np.float32), "adam_v_V has shape (5,)"),
    ("spec_buf_W", np.zeros((2, 7)), "spec_buf_W has shape (2, 7)"),
    ("spec_gram_V", np.zeros((1, 1)), "spec_gram_V has shape (1, 1)"),
    ("rng_state", np.str_("garbage"), "rng_state is not a valid generator state"),
    ("rng_state", np.str_('{"bit_generator": "Nope"}'), "rng_state is not a valid generator state"),
    ("W", np.zeros((14, 16), np.int64), "W has shape (14, 16) and dtype int64"),   # right shape, wrong kind
    # right shape and kind, another float dtype (a state written by another version): its values are
    # another run's (float32 W in a float64 run: rounded), so it was resumed into other rows
    ("W", np.zeros((14, 16), np.float64), "W has shape (14, 16) and dtype float64"),
    ("adam_v_V", np.zeros((16, 7), np.float16), "adam_v_V has shape (16, 7) and dtype float16"),
    ("W", np.full((14, 16), np.nan, np.float32), "W has non-finite entries"),
    # a NaN Adam moment: accepted, the resumed run would fail a few epochs later with exit 1
    ("adam_m_W", np.full((14, 16), np.nan, np.float32), "adam_m_W has non-finite entries"),
    ("adam_v_V", np.full((16, 7), np.inf, np.float32), "adam_v_V has non-finite entries"),
    ("config", np.str_("{not json"), "stored 'config' is not a JSON object"),
    ("config", np.str_(json.dumps({"M": 7, "K": 16, "n_train": 20, "lr": 0.5, "windows": [3],
                                   "epochs": 6})), "does not match the resume state: lr"),
])
def test_corrupt_resume_state_is_one_line_exit_2(run_dir, key, value, fragment):
    _edit_ck(run_dir, **{key: value})
    before = _snapshot(run_dir)
    _refused(_resume(run_dir), fragment)
    assert _snapshot(run_dir) == before


def test_missing_resume_state_is_refused(run_dir):
    (run_dir / "checkpoints" / "resume.npz").unlink()
    _refused(_resume(run_dir), "no checkpoints/resume.npz")


# --- --init-from ------------------------------------------------------------------------------------

def _init_file(tmp_path, **arrays):
    p = tmp_path / "init.npz"
    np.savez(p, **arrays)
    return str(p)


def _good_init():
    rng = np.random.default_rng(0)
    return {"W": rng.standard_normal((14, 16)).astype(np.float32),
            "V": rng.standard_normal((16, 7)).astype(np.float32),
            "train_idx": np.arange(20)}


@pytest.mark.parametrize("case, change, extra, fragment", [
    ("without-train-idx", {"train_idx": None}, [], "no array 'train_idx'"),
    ("string-W", {"W": np.full((14, 16), "a")}, [], "init W has dtype <U1"),
    ("complex-W", {"W": np.ones((14, 16), np.complex64)}, [], "init W has dtype complex64"),
    ("with-n-train", {}, ["--n-train", "30"], "--init-from fixes the split"),
    ("with-train-frac", {}, ["--train-frac", "0.5"], "--init-from fixes the split"),
    ("duplicated-train-idx", {"train_idx": np.array([0, 1, 1, 2])}, [], "repeated entries"),
    ("nan-in-W", {"W": np.where(np.eye(14, 16, dtype=bool), np.nan, 1).astype(np.float32)}, [],
     "init W has non-finite entries"),
    ("inf-in-V", {"V": np.where(np.eye(16, 7, dtype=bool), np.inf, 1).astype(np.float32)}, [],
     "init V has non-finite entries"),
    ("all-pairs-train-idx", {"train_idx": np.arange(49)}, [],            # said --n-train, which was not given
     "its train_idx holds 49 pairs; it must hold between 2 and M^2 - 1 = 48"),
    ("mask-train-idx", {"train_idx": np.ones(49, bool)}, [], "its train_idx must be a 1-d integer array"),
])
def test_bad_init_from_is_one_line_exit_2(tmp_path, case, change, extra, fragment):
    arrays = {k: v for k, v in {**_good_init(), **change}.items() if v is not None}
    out = tmp_path / "run"
    _refused(_cli(["train", "--epochs", "2", "--windows", "3", "--init-from", _init_file(tmp_path, **arrays),
                   *extra, "--out", str(out)]), fragment)
    assert not out.exists()


def test_resume_with_the_runs_own_init_from_continues_and_another_file_is_refused(tmp_path):
    """A run's own command line with --resume added, --init-from included, continues it (the file's arrays
    give the init digest config.json records); another file is refused naming it."""
    path = _init_file(tmp_path, **_good_init())
    out = str(tmp_path / "run")
    args = ["train", "--epochs", "2", "--windows", "3", "--init-from", path, "--out", out]
    assert _cli(args).exit_code == 0
    r = _cli(args[:2] + ["4"] + args[3:] + ["--resume"])
    assert r.exit_code == 0, r.output
    other = dict(_good_init(), W=_good_init()["W"] * 2)
    np.savez(tmp_path / "other.npz", **other)
    _refused(_cli(["train", "--out", out, "--resume", "--epochs", "5", "--init-from", str(tmp_path / "other.npz")]),
             "is not the file it started from (its arrays differ)")
    _refused(_cli(["train", "--out", out, "--resume", "--epochs", "5", "--init-from", str(tmp_path / "gone.npz")]),
             "file not found")                                  # said as it is, not as 'arrays differ'
    seeded = str(tmp_path / "seeded")
    assert _cli(["train", "--M", "7", "--K", "16", "--epochs", "2", "--windows", "3", "--out", seeded]).exit_code == 0
    _refused(_cli(["train", "--out", seeded, "--resume", "--epochs", "3", "--init-from", path]),
             "which started from its seed, not from an --init-from file")


def test_thm6_refuses_a_checkpoint_with_duplicated_train_idx(tmp_path):
    arrays = _good_init()
    arrays["train_idx"] = np.array([0, 1, 2, 2, 3])
    _refused(_cli(["thm6", "--checkpoint", _init_file(tmp_path, **arrays), "--act", "sqr", "--eta", "1e-4"]),
             "repeated entries")


def test_thm6_refuses_a_complex_W(tmp_path):
    arrays = _good_init()
    arrays["W"] = arrays["W"].astype(np.complex64)
    _refused(_cli(["thm6", "--checkpoint", _init_file(tmp_path, **arrays), "--act", "sqr", "--eta", "1e-4"]),
             "finite real numbers")


# --- list options and non-finite values ------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["train", *SMALL[:-2], "--windows", "3,,5"],
    ["train", *SMALL, "--checkpoint-epochs", "2,,4"],
    ["train", *SMALL, "--checkpoint-epochs", "2,"],
    ["sweep", "ROOT", "--eta", "5,,10"],
    ["sweep", "ROOT", "--M", "5,,10"],
    ["sweep", "ROOT", "--train-frac", "0.2,,0.4"],
    ["sweep", "ROOT", "--act", "sqr,,relu"],
    ["sweep", "ROOT", "--seeds", "0,,2"],
    ["sweep", "ROOT", "--windows", "5,,10"],
    ["thm6", "--run", "ROOT", "--at-epochs", "5,,10"],
    ["plot", "ROOT", "--windows", "5,,10"],
], ids=lambda a: f"{a[0]}-{a[-2]}")
def test_empty_list_item_is_refused(tmp_path, args):
    (tmp_path / "root").mkdir()
    args = [str(tmp_path / "root") if a == "ROOT" else a for a in args]
    if args[0] == "train":
        args += ["--out", str(tmp_path / "out")]
    line = _refused(_cli(args))
    assert "empty" in line
    assert not (tmp_path / "out").exists() and list((tmp_path / "root").iterdir()) == []


@pytest.mark.parametrize("args, fragment", [
    (["train", *SMALL, "--lr", "inf"], "--lr must be a finite number"),
    (["train", *SMALL, "--eta", "inf"], "--eta must be a finite number"),
    (["train", *SMALL, "--lr", "nan"], "--lr must be a finite number"),
    (["sweep", "ROOT", "--eta", "inf"], "is not finite"),
    (["sweep", "ROOT", "--train-frac", "nan"], "is not finite"),
    (["summarize", "ROOT", "--slope-threshold", "nan"], "--slope-threshold must be a finite number"),
    (["summarize", "ROOT", "--rho-threshold", "inf"], "--rho-threshold must be a finite number"),
], ids=lambda a: "-".join(a[-2:]) if isinstance(a, list) else None)
def test_non_finite_value_is_refused_at_parse_time(tmp_path, args, fragment):
    (tmp_path / "root").mkdir()
    args = [str(tmp_path / "root") if a == "ROOT" else a for a in args]
    if args[0] == "train":
        args += ["--out", str(tmp_path / "out")]
    _refused(_cli(args), fragment)
    assert not (tmp_path / "out").exists() and list((tmp_path / "root").iterdir()) == []


# --- logs read by the analysis ---------------------------------------------------------------------

def test_absurd_epoch_in_a_log_is_refused_not_allocated(run_dir):
    p = run_dir / "metrics.jsonl"
    p.write_text(p.read_text() + json.dumps({"epoch": 1e9, "test_acc": 0.5}) + "\n")
    _refused(_cli(["summarize", str(run_dir)]), "metrics.jsonl:5 holds epoch 1000000000.0, expected 4")


# --- figures ------------------------------------------------------------------------------------------

def test_plot_killed_mid_write_leaves_the_old_figure_not_an_empty_one(tmp_path, monkeypatch):
    """savefig dies half-way (a kill, a full disk): the figure file keeps its old bytes, no temp
    file is left, and plot reports one line."""
    from matplotlib.figure import Figure
    from test_summarize import BASE_CONFIG, synth_columns, write_run
    root = tmp_path / "runs"
    for eta in (2e-4, 0.0):
        write_run(root / f"eta{eta}", dict(BASE_CONFIG, eta=eta, windows=[20]), synth_columns(400, eta > 0, seed=0, windows=[20]))
    out = tmp_path / "figs"
    out.mkdir()
    (out / "headline.png").write_bytes(b"old figure")

    def dies(self, f, **kw):
        if isinstance(f, (str, os.PathLike)):
            f = open(f, "wb")
        f.write(b"\x89PNG half")
        f.flush()
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Figure, "savefig", dies)
    r = _cli(["plot", str(root), "--out", str(out), "--figure", "headline"])
    assert r.exit_code == 1 and "No space left on device" in r.stderr and "Traceback" not in r.output
    assert (out / "headline.png").read_bytes() == b"old figure"
    assert sorted(p.name for p in out.iterdir()) == ["headline.png"]


@pytest.mark.parametrize("opt", ["--json", "--plot"])
def test_thm6_output_below_a_file_is_refused_before_computing(run_dir, tmp_path, opt):
    (tmp_path / "file").write_text("x")
    r = _cli(["thm6", "--run", str(run_dir), "--at-epochs", "3", opt, str(tmp_path / "file" / "x")])
    line = _refused(r, "is not a directory")
    assert "thm6: epoch" not in r.stderr                   # refused before any checkpoint was evaluated
    assert line


def test_resume_refuses_epochs_below_the_resume_state(run_dir):
    """The resume state at r = 3 with --epochs 2 (one below r, the edge of the rule): refused saying that
    --epochs is below what the run already trained and what to give, the folder byte-identical; --epochs 3
    = r is in range."""
    before = _snapshot(run_dir)
    _refused(_resume(run_dir, "--epochs", "2"),
             "--epochs 2 is below the 3 epochs this run has already trained: --epochs is the run's total, not "
             "the epochs to add; give --epochs 3 or more to continue it")
    assert _snapshot(run_dir) == before
    r = _resume(run_dir, "--epochs", "3")
    assert r.exit_code == 0, r.output


def test_resume_of_a_finished_run_with_fewer_epochs_says_what_it_trained(tmp_path):
    """A run trained to 20 with checkpoints at 10 and 20, resumed with --epochs 10: the refusal names the 20
    epochs trained (it named the checkpoint epoch 20 as 'outside [0, --epochs = 10]'), the folder unchanged."""
    d = tmp_path / "r20"
    assert _cli(["train", *SMALL[:4], "--epochs", "20", "--checkpoint-epochs", "10,20", "--out", str(d)]).exit_code == 0
    before = _snapshot(d)
    for lowered in ("10", "19"):
        line = _refused(_resume(d, "--epochs", lowered))
        assert f"--epochs {lowered} is below the 20 epochs this run has already trained" in line, line
        assert "give --epochs 20 or more" in line and "outside" not in line, line
    assert _snapshot(d) == before
    d = tmp_path / "kept-no-state"                         # nothing continues it: said so, not 'give more'
    assert _cli(["train", *SMALL[:4], "--epochs", "20", "--checkpoint-epochs", "10,20", "--no-resume-state",
                 "--out", str(d)]).exit_code == 0
    line = _refused(_resume(d, "--epochs", "10"))
    assert "--epochs 10 is below the 20 epochs this run has already trained" in line, line
    assert "no resume state (--no-resume-state), so it cannot be continued" in line, line


def test_resume_with_epochs_before_a_stored_checkpoint_epoch_says_to_change_them(run_dir):
    """The run (resume state at 3) asked for a checkpoint at 5; --resume --epochs 4 would end before it:
    refused naming --checkpoint-epochs; giving them with --epochs 4 continues the run."""
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["config"]["checkpoint_epochs"] = [5]                # mutable on --resume: no part of the identity
    (run_dir / "config.json").write_text(json.dumps(cfg))
    before = _snapshot(run_dir)
    line = _refused(_resume(run_dir, "--epochs", "4"))
    assert "--epochs 4 ends the run before its checkpoint epoch 5" in line and "--checkpoint-epochs" in line, line
    assert _snapshot(run_dir) == before
    r = _resume(run_dir, "--epochs", "4", "--checkpoint-epochs", "4")
    assert r.exit_code == 0, r.output


def test_resume_refuses_to_drop_rows_past_a_lowered_epochs(run_dir, reference):
    """kill -9 after rows 4..6, past the resume state at 3: --resume --epochs 4 would drop rows 5, 6 and
    never recompute them, --epochs 5 row 6. Refused, the folder byte-identical; --epochs 6 recomputes them."""
    p = run_dir / "metrics.jsonl"
    p.write_text(p.read_text() + "".join(reference.decode().splitlines(True)[4:7]))   # rows 4, 5, 6
    before = _snapshot(run_dir)
    for lowered in (4, 5):                       # 5: one row past E, the edge of the rule
        _refused(_resume(run_dir, "--epochs", str(lowered)), f"holds rows 0..6, past --epochs {lowered}")
        assert _snapshot(run_dir) == before
    assert _resume(run_dir, "--epochs", "6").exit_code == 0
    assert p.read_bytes() == reference


@pytest.mark.parametrize("option, values", [("--windows", "3,3"), ("--checkpoint-epochs", "2,4,2")])
def test_a_repeated_list_value_is_refused(tmp_path, option, values):
    """A repeated window or checkpoint epoch is refused (one line, exit 2, nothing written): stored as given,
    a repeated checkpoint epoch would give the run another fingerprint than the same run without it."""
    args = ["train", *[a for a in SMALL if a not in ("--windows", "3")], option, values, "--out", str(tmp_path / "out")]
    if option != "--windows":
        args += ["--windows", "3"]
    assert "repeated value" in _refused(_cli(args))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option, extra", [("--momentum", ["--optimizer", "sgd"]), ("--eta", []),
                                           ("--init-scale", [])])
def test_minus_zero_is_stored_as_zero(tmp_path, option, extra):
    """A float setting given as -0 is 0.0 in config.json (sign included): -0.0 would give the same run
    another fingerprint, so a sweep or --resume would take it for another run."""
    import math
    out = tmp_path / "out"
    r = _cli(["train", *SMALL, option, "-0", *extra, "--out", str(out)])
    assert r.exit_code == 0, r.output
    v = json.loads((out / "config.json").read_text())["config"][option[2:].replace("-", "_")]
    assert v == 0.0 and math.copysign(1.0, v) == 1.0
