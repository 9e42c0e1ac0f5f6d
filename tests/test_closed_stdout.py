"""A stdout closed by its reader (``cli.py edge ... | head``, a pager quit early): the command ends quietly
with exit 1, as click ends on a closed pipe and as Python's documentation advises (no 'Error: Broken pipe',
no traceback, no 'Exception ignored'), and every file the user asked for is written all the same.

Each command runs in a child process whose stdout is a pipe with no reader left, so its first write to
stdout fails with EPIPE, as it would behind a pager that has quit."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tianref.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A tree with one run that logged the windows of the top-5 figure: `plot` draws two figures from it."""
    root = tmp_path_factory.mktemp("closed") / "tree"
    r = CliRunner().invoke(main, ["train", "--M", "7", "--K", "16", "--epochs", "30", "--windows", "5,20,30",
                                  "--checkpoint-epochs", "10", "--out", str(root / "r")])
    assert r.exit_code == 0, r.output
    return root


def _closed_stdout(args, cwd):
    """(exit code, stderr) of cli.py ARGS with a stdout that nobody reads any more."""
    rd, wr = os.pipe()
    os.close(rd)                                  # the reader is gone before the first write
    try:
        res = subprocess.run([sys.executable, str(REPO / "cli.py"), *map(str, args)], stdout=wr,
                             stderr=subprocess.PIPE, text=True, cwd=cwd, timeout=300,
                             env=dict(os.environ, MPLBACKEND="Agg"))
    finally:
        os.close(wr)
    return res.returncode, res.stderr


def _quiet(rc, err):
    assert rc == 1, err
    assert "Error" not in err and "Traceback" not in err and "Exception ignored" not in err, err


@pytest.mark.parametrize("cmd", ["edge", "thm6"])
def test_edge_and_thm6_write_their_files_when_stdout_is_closed(tree, tmp_path, cmd):
    extra = ["--n-random", "1", "--space", "W"] if cmd == "edge" else []
    rc, err = _closed_stdout([cmd, "--run", tree / "r", "--at-epochs", "10,30", *extra,
                              "--json", "o.json", "--plot", "o.png"], tmp_path)
    _quiet(rc, err)
    assert (tmp_path / "o.json").stat().st_size > 0
    assert (tmp_path / "o.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_writes_every_figure_when_stdout_is_closed(tree, tmp_path):
    """plot prints each figure's path: the figures are all written before the first path is printed."""
    rc, err = _closed_stdout(["plot", tree, "--out", "figs", "--figure", "headline", "--figure", "top5"], tmp_path)
    _quiet(rc, err)
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["headline.png", "top5.png"]


def test_summarize_writes_its_json_when_stdout_is_closed(tree, tmp_path):
    rc, err = _closed_stdout(["summarize", tree, "--json", "s.json"], tmp_path)
    _quiet(rc, err)
    assert (tmp_path / "s.json").stat().st_size > 0


@pytest.mark.parametrize("args", [["group", "S4"],
                                  ["sweep", "ROOT", "--eta", "0,1e-3", "--seeds", "0-9", "--M", "5", "--K", "8",
                                   "--epochs", "3", "--plan"],
                                  ["reproduce", "--plan", "--scale", "smoke", "--section", "headline",
                                   "--root", "ROOT"]])
def test_printing_commands_end_quietly_when_stdout_is_closed(tmp_path, args):
    rc, err = _closed_stdout([str(tmp_path / "root") if a == "ROOT" else a for a in args], tmp_path)
    _quiet(rc, err)
    assert not (tmp_path / "root").exists()                  # a plan writes nothing


def test_a_closed_stderr_ends_the_progress_lines_not_the_run(tmp_path):
    """`train ... 2>&1 | head`: once the reader is gone the heartbeat lines stop, the run goes on to its last
    epoch and writes its final checkpoint and resume state (it stopped at its next heartbeat with exit 1 and
    no resume state, losing every epoch since the start), and its summary reaches stdout."""
    rd, wr = os.pipe()
    os.close(rd)                                  # stderr's reader is gone before the first heartbeat
    out = tmp_path / "r"
    try:
        res = subprocess.run([sys.executable, str(REPO / "cli.py"), "train", "--M", "7", "--K", "16", "--epochs", "30",
                              "--windows", "5", "--out", str(out)], stdout=subprocess.PIPE, stderr=wr, text=True,
                             cwd=tmp_path, timeout=300)
    finally:
        os.close(wr)
    assert res.returncode == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 31
    assert (out / "checkpoints" / "final.npz").is_file() and (out / "checkpoints" / "resume.npz").is_file()
    assert '"epochs": 30' in res.stdout.splitlines()[-1]


@pytest.mark.parametrize("cmd", ["train", "train-batch"])
def test_a_stop_signal_with_stderr_gone_still_saves_the_resume_state(tmp_path, cmd):
    """A stop signal once stderr's reader has gone (`train ... 2>&1 | head`, then kill or Ctrl-C): the run
    stops at the next row and saves its resume state, as with a live stderr. The signal's notice went to
    stderr unguarded: its EPIPE was raised inside the signal handler, out of the training loop, and the run
    ended with exit 1 and no resume state (every epoch lost)."""
    out = tmp_path / "r"
    size = ["--M", "7", "--K", "16", "--epochs", "100000", "--windows", "5"]
    args = (["train", *size, "--out", str(out)] if cmd == "train" else
            ["train-batch", "--member", " ".join([*size, "--out", str(out)])])
    rd, wr = os.pipe()
    os.close(rd)                                  # stderr's reader is gone before the signal's notice
    try:
        p = subprocess.Popen([sys.executable, str(REPO / "cli.py"), *args], stdout=subprocess.PIPE, stderr=wr,
                             text=True, cwd=tmp_path, env=dict(os.environ, MPLBACKEND="Agg"))
    finally:
        os.close(wr)
    try:
        deadline = time.monotonic() + 120
        while not ((out / "metrics.jsonl").is_file() and len((out / "metrics.jsonl").read_bytes().splitlines()) > 2):
            assert p.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 128 + signal.SIGTERM   # stopped, as with a live stderr
    rows = len((out / "metrics.jsonl").read_text().splitlines())
    assert (out / "checkpoints" / "resume.npz").is_file() and 2 < rows < 100001


@pytest.mark.parametrize("bad", [["--eta", "-1"], ["--M", "x"]])      # the engine's check, click's usage error
def test_bad_input_keeps_exit_2_when_stderr_is_gone(tmp_path, bad):
    """The one-line refusal goes to a stderr nobody reads any more: the line is lost, the exit code is not
    (the echo raised BrokenPipeError inside the handler, ending with exit 1 as a runtime failure)."""
    rd, wr = os.pipe()
    os.close(rd)
    try:
        res = subprocess.run([sys.executable, str(REPO / "cli.py"), "train", "--K", "16", *bad,
                              "--out", str(tmp_path / "r")], stdout=subprocess.DEVNULL, stderr=wr, cwd=tmp_path,
                             timeout=120)
    finally:
        os.close(wr)
    assert res.returncode == 2 and not (tmp_path / "r").exists()


@pytest.mark.parametrize("args", [["group", "Z5"], ["summarize", "{tree}"]], ids=["group", "summarize"])
def test_a_stdout_closed_from_the_start_is_exit_1_with_a_line(tree, args):
    """A command started with its stdout closed (`>&-`: Python then has no sys.stdout and click prints
    nothing) exited 0 having printed nothing; it now says so on stderr and exits 1."""
    p = subprocess.run([sys.executable, str(REPO / "cli.py"), *[a.format(tree=tree) for a in args]],
                       stderr=subprocess.PIPE, text=True, timeout=120, preexec_fn=lambda: os.close(1))
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1 and lines and "standard output is closed" in lines[-1], p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("entry", ["cli.py", "tianref/__main__.py"])
def test_ctrl_c_while_the_program_loads_is_aborted_not_a_traceback(entry):
    """A Ctrl-C in the first tenth of a second (the imports of numpy and scipy) printed a traceback and
    exit 1; it is 'Aborted!' and 130, as a Ctrl-C a moment later. Simulated: importing tianref.cli raises
    KeyboardInterrupt."""
    code = ("import runpy, sys\n"
            "class Stop:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'tianref.cli':\n"
            "            raise KeyboardInterrupt\n"
            "sys.meta_path.insert(0, Stop())\n"
            f"sys.argv = [{entry!r}, 'train']\n"
            f"runpy.run_path({entry!r}, run_name='__main__')\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert (r.returncode, r.stderr, r.stdout) == (130, "Aborted!\n", "")
