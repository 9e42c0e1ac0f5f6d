"""`cli.py train`: the happy path, resume through the CLI, and every documented error path."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from tianref.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--M", "7", "--K", "16", "--epochs", "6", "--windows", "3"]


def _run(args):
    return CliRunner().invoke(main, ["train"] + args)


def test_happy_path_writes_run_directory(tmp_path):
    out = str(tmp_path / "run")
    r = _run(SMALL + ["--checkpoint-epochs", "3", "--out", out])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["epochs"] == 6
    rows = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
    assert [r["epoch"] for r in rows] == list(range(7))
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert cfg["config"]["M"] == 7 and cfg["config"]["n_train"] == round(0.4 * 49)
    assert "numpy" in cfg["versions"] and "command" in cfg
    ck = np.load(os.path.join(out, "checkpoints", "epoch_00003.npz"))
    assert ck["W"].shape == (14, 16) and int(ck["epoch"]) == 3
    assert json.loads(str(ck["config"]))["K"] == 16
    assert os.path.exists(os.path.join(out, "checkpoints", "final.npz"))


def test_resume_extends_run_exactly(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert _run(SMALL[:-4] + ["--epochs", "10", "--windows", "3", "--out", a]).exit_code == 0
    assert _run(SMALL + ["--out", b]).exit_code == 0
    r = _run(["--resume", "--epochs", "10", "--out", b])
    assert r.exit_code == 0, r.output
    assert open(os.path.join(a, "metrics.jsonl")).read() == open(os.path.join(b, "metrics.jsonl")).read()


@pytest.mark.parametrize("extra", [[], ["--optimizer", "adamw", "--eta-schedule", "0:0.3,4:0"]])
def test_resume_of_a_state_without_cross_grams_continues_exactly(tmp_path, extra):
    """A resume state written before the edge's cross-Grams were kept (rings only, no edge_C_* / edge_H_*
    arrays) resumes, its C and H formed again from the rings slot by slot as the pushes formed them
    (edge.cross_grams): the rows equal an uninterrupted run's, byte for byte, across a wrapped ring and
    (AdamW's schedule) a ring that holds decay parts while the steps have none."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert _run(SMALL[:-4] + ["--epochs", "10", "--windows", "3", "--out", a] + extra).exit_code == 0
    assert _run(SMALL[:-4] + ["--epochs", "7", "--windows", "3", "--out", b] + extra).exit_code == 0   # oldest slot 1
    path = os.path.join(b, "checkpoints", "resume.npz")
    old = dict(np.load(path))
    assert {"edge_C_W", "edge_H_V"} <= set(old)
    np.savez(path, **{k: v for k, v in old.items()                  # nor the seal of later versions
                      if not k.startswith(("edge_C_", "edge_H_", "state_digest"))})
    from cli_checks import as_before_seals
    as_before_seals(b)                       # nor its other states, nor config.json's record of seals
    r = _run(["--resume", "--epochs", "10", "--out", b])
    assert r.exit_code == 0, r.output
    assert open(os.path.join(a, "metrics.jsonl")).read() == open(os.path.join(b, "metrics.jsonl")).read()


def test_init_from_checkpoint(tmp_path):
    a = str(tmp_path / "a")
    assert _run(SMALL + ["--out", a]).exit_code == 0
    b = str(tmp_path / "b")
    r = _run(["--init-from", os.path.join(a, "checkpoints", "final.npz"), "--epochs", "2", "--out", b])
    assert r.exit_code == 0, r.output
    assert json.load(open(os.path.join(b, "config.json")))["config"]["M"] == 7   # taken from the file


def test_init_from_gives_the_same_run_whatever_the_memory_order_of_the_file(tmp_path):
    """The same W, V and split give the same run, row for row, from a file in C order and one in Fortran
    order (as another tool may write): the engine takes them in C order. On some CPUs (seen on an Intel
    Xeon's OpenBLAS kernels, not on an AMD EPYC's) a product with an F-ordered operand rounds differently."""
    rng = np.random.default_rng(0)
    ck = {"W": rng.standard_normal((22, 64)).astype(np.float32), "V": rng.standard_normal((64, 11)).astype(np.float32),
          "train_idx": np.arange(0, 121, 2)}
    np.savez(tmp_path / "c.npz", **ck)
    np.savez(tmp_path / "f.npz", **{k: np.asfortranarray(v) for k, v in ck.items()})
    assert not np.load(tmp_path / "f.npz")["W"].flags.c_contiguous         # the file is F-ordered indeed
    for name in ("c", "f"):
        r = _run(["--K", "64", "--epochs", "8", "--init-from", str(tmp_path / f"{name}.npz"), "--out",
                  str(tmp_path / name)])
        assert r.exit_code == 0, r.output
    assert (tmp_path / "c" / "metrics.jsonl").read_bytes() == (tmp_path / "f" / "metrics.jsonl").read_bytes()


@pytest.mark.parametrize("args, fragment", [
    (["--M", "1"], "--M must be >= 2"),
    (["--K", "0"], "--K must be >= 2"),
    (["--M", "7", "--n-train", "49"], "--n-train must be in"),
    (["--M", "6", "--train-frac", "0.01"], "--train-frac 0.01 gives n_train = round(0.01 M^2) = 0 at M = 6"),
    (["--eta", "-1"], "--eta must be >= 0"),
    (["--lr", "0"], "--lr must be > 0"),
    (["--windows", "2"], "window must be >= 3"),
    (["--windows", "a,b"], "comma-separated integers"),
    (["--epochs", "5", "--checkpoint-epochs", "9"], "outside"),
    (["--init-from", "/nonexistent/file.npz"], "file not found"),
    (["--train-frac", "1.5"], "--train-frac must be in"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, fragment):
    r = _run(args + ["--out", str(tmp_path / "x")])
    assert r.exit_code == 2, r.output
    assert fragment in r.stderr
    assert "Traceback" not in r.output


def test_unknown_activation_is_a_usage_error(tmp_path):
    r = _run(["--act", "tanh", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "tanh" in r.stderr


def test_init_file_of_another_m_or_k_names_the_mismatch(tmp_path):
    """An --init-from file made for M = 7, K = 16 (W (14, 16), V (16, 7)) with --M 11 or --K 32: the refusal
    names the file's M (from its W's rows) or K against the option given, not only array shapes; nothing
    is written."""
    src = str(tmp_path / "src")
    assert _run(SMALL + ["--out", src]).exit_code == 0
    init = os.path.join(src, "checkpoints", "final.npz")
    for opt, given, has in (("--M", "11", "M = 7"), ("--K", "32", "K = 16")):
        out = tmp_path / f"x{opt}"
        r = _run(["--init-from", init, opt, given, "--epochs", "2", "--out", str(out)])
        assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.output
        assert f"the file's W has shape (14, 16), so its {has}" in r.stderr, r.stderr
        assert f"but {opt} {given} was given" in r.stderr and f"drop {opt}" in r.stderr, r.stderr
        assert not out.exists()


def test_misshaped_init_file(tmp_path):
    f = str(tmp_path / "bad.npz")
    np.savez(f, W=np.zeros((3, 3)), V=np.zeros((16, 7)), train_idx=np.arange(10))
    r = _run(["--init-from", f, "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "expected (2M, K)" in r.stderr
    g = tmp_path / "garbage.npz"
    g.write_bytes(b"not a zip")
    r = _run(["--init-from", str(g), "--out", str(tmp_path / "y")])
    assert r.exit_code == 2 and "cannot read" in r.stderr


def test_non_empty_out_refused_unless_overwrite_of_a_run(tmp_path):
    """A non-empty OUT is refused; --overwrite replaces a run folder, never a folder that is not one."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "something").write_text("x")
    r = _run(SMALL + ["--out", str(out)])
    assert r.exit_code == 2 and "not empty" in r.stderr
    r = _run(SMALL + ["--out", str(out), "--overwrite"])
    assert r.exit_code == 2 and "not one" in r.stderr and (out / "something").read_text() == "x"
    run = tmp_path / "real"
    assert _run(SMALL + ["--out", str(run)]).exit_code == 0
    r = _run(SMALL + ["--out", str(run)])
    # a finished run has nothing to 'continue' at its own --epochs: the message says how to train it further
    assert r.exit_code == 2 and "holds a finished run" in r.stderr and "--resume with a larger --epochs" in r.stderr
    # extended by --resume --epochs 9 and stopped at its row 6 (config.json asks for 9 epochs; the final.npz of
    # epoch 6 stays): not finished, so the message is the one that says to --resume it
    cfg = json.loads((run / "config.json").read_text())
    cfg["config"]["epochs"] = 9
    (run / "config.json").write_text(json.dumps(cfg))
    r = _run(SMALL + ["--out", str(run)])
    assert r.exit_code == 2 and "is not empty; pass --resume to continue it" in r.stderr, r.stderr
    r = _run(SMALL + ["--out", str(run), "--overwrite"])
    assert r.exit_code == 0, r.output


def test_cupy_without_gpu_names_the_extra(tmp_path):
    try:
        import cupy
    except ImportError:
        cupy = None
    if cupy is not None:
        try:
            cupy.zeros(1)
            pytest.skip("a usable CuPy exists here")
        except Exception:
            pass
    r = _run(SMALL + ["--xp", "cupy", "--out", str(tmp_path / "x")])
    # without CuPy the message names the extra to install; with CuPy but no GPU it says so
    want = ".[gpu]" if cupy is None else "no usable GPU"
    assert r.exit_code == 2 and want in r.stderr and "Traceback" not in r.output


def test_non_finite_loss_exits_1_and_keeps_rows(tmp_path):
    """A real process (pytest would swallow Python warnings inside CliRunner): exit 1, one message."""
    out = str(tmp_path / "run")
    p = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "train", "--M", "7", "--K", "16",
                        "--epochs", "300", "--lr", "1e6", "--out", out], capture_output=True, text=True)
    assert p.returncode == 1 and "non-finite" in p.stderr
    assert "RuntimeWarning" not in p.stderr and "Traceback" not in p.stderr
    assert len(open(os.path.join(out, "metrics.jsonl")).read().splitlines()) >= 1


def test_script_entry_point_runs_as_subprocess(tmp_path):
    """`python cli.py` itself (not just the click object): stdout is one JSON line."""
    p = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "train", *SMALL,
                        "--out", str(tmp_path / "run")], capture_output=True, text=True, check=True)
    json.loads(p.stdout.strip())


@pytest.mark.parametrize("last", ["--optimizer", "--lr", "--group"])
def test_an_option_missing_its_value_is_named_by_every_validating_path(tmp_path, last):
    """The validating first passes (a sweep's check of its runs, train-batch's of its members) add a flag of
    their own; added after the run's arguments, it was taken as the value of a last option missing one
    ("'--check-only' is not one of 'adam', ..."). Every path now says the option needs a value."""
    from tianref.cli.train import check_train_args
    from tianref.errors import InputError
    args = ["--out", str(tmp_path / "r"), "--M", "11", "--K", "32", "--epochs", "2", last]
    with pytest.raises(InputError, match=f"Option '{last}' requires an argument"):
        check_train_args(args, device=False)
    res = CliRunner().invoke(main, ["train-batch", "--member", " ".join(args)])
    assert res.exit_code == 2 and f"Option '{last}' requires an argument" in res.output, res.output
    assert "check-only" not in res.output and not (tmp_path / "r").exists()


def test_a_signal_after_the_run_finished_still_prints_its_summary(tmp_path, monkeypatch):
    """SIGINT between the end of the loop and the printed summary (here: while the log is closed) ended the
    command with 'Aborted!' and no summary, though the run was complete. It is noted; the summary is
    printed, exit 0, and the run is the complete one."""
    import signal
    from tianref import runs
    real = runs.RunWriter.close

    def close_and_signal(self):
        os.kill(os.getpid(), signal.SIGINT)
        real(self)
    monkeypatch.setattr(runs.RunWriter, "close", close_and_signal)
    out = tmp_path / "r"
    r = CliRunner().invoke(main, ["train", "--M", "7", "--K", "8", "--epochs", "3", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.strip().splitlines()[-1])["epochs"] == 3
    assert "SIGINT after the run had finished: nothing to stop" in r.stderr
    assert (out / "checkpoints" / "final.npz").is_file()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler     # restored


@pytest.mark.parametrize("extra, says", [
    (["--tail-rank", "100"], "W_tail is 0 on every row"),
    (["--eta-schedule", "0:1e-3,10:0"], "switches at epoch(s) 10, after the last epoch 3"),
])
def test_a_setting_that_can_have_no_effect_is_noted(tmp_path, extra, says):
    """Valid but idle: a tail rank at or above W's largest rank, a weight-decay switch after the last epoch.
    The run trains as asked, with one note on stderr (there was none); an ordinary run has no such note."""
    r = CliRunner().invoke(main, ["train", "--M", "7", "--K", "8", "--epochs", "3", *extra,
                                  "--out", str(tmp_path / "r")])
    assert r.exit_code == 0 and says in r.stderr, r.stderr
    r = CliRunner().invoke(main, ["train", "--M", "7", "--K", "8", "--epochs", "3", "--out", str(tmp_path / "q")])
    assert r.exit_code == 0 and "W_tail is 0" not in r.stderr and "never reaches" not in r.stderr
