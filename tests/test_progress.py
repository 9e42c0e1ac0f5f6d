"""Progress goes to a terminal only: on a pseudo-terminal ``train`` shows the epoch, train/test accuracy
and loss and the time left; off a terminal its stderr is empty (errors alone would appear there)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tianref.cli.progress import row_text

REPO = Path(__file__).resolve().parents[1]
TINY = ["--M", "7", "--K", "16", "--epochs", "30"]


def _run_on_pty(argv):
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(REPO / "cli.py"), *argv], stderr=slave,
                            stdout=subprocess.PIPE, cwd=REPO)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:                          # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    out = proc.stdout.read()
    proc.wait(timeout=60)
    os.close(master)
    return proc.returncode, out.decode(), b"".join(chunks).decode(errors="replace")


def test_row_text():
    row = {"epoch": 12, "train_acc": 1.0, "train_loss": 0.0123, "test_acc": 0.5, "test_loss": 0.25}
    assert row_text(row) == "ep 12  train acc 1.000 loss 1.23e-02  test acc 0.500 loss 2.50e-01"
    assert row_text({"epoch": 0}).count("-") == 4 and row_text(None) == ""


def test_train_off_a_terminal_writes_nothing_on_stderr(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "cli.py"), "train", *TINY, "--out", str(tmp_path / "r")],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 0 and res.stderr == ""
    assert res.stdout.count("\n") == 1                              # the one JSON line


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_train_on_a_terminal_shows_metrics_and_time_left(tmp_path):
    rc, out, err = _run_on_pty(["train", *TINY, "--out", str(tmp_path / "r")])
    assert rc == 0, err
    assert "31/31" in err and "ep 30  train acc" in err and "test acc" in err and "loss" in err
    assert "t_test_0.5" in out and "t_test_0.5" not in err
