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
    # the bar counts epochs: --epochs 30 ends at 30/30 (31 rows are logged: row 0 precedes the first step)
    assert "30/30" in err and "/31" not in err and "ep 30  train acc" in err and "test acc" in err and "loss" in err
    assert "t_test_0.5" in out and "t_test_0.5" not in err


SWEEP = ["--eta", "0", "--seeds", "0-1", "--M", "5", "--K", "8", "--epochs", "3", "--windows", "3"]


def test_sweep_off_a_terminal_is_quiet_and_on_one_shows_a_bar(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "cli.py"), "sweep", str(tmp_path / "a"), *SWEEP],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    rc, out, err = _run_on_pty(["sweep", str(tmp_path / "b"), *SWEEP])
    assert rc == 0, err
    assert "sweep" in err and "2/2" in err and "start " not in err
    assert '"ran": 2' in out


def test_runs_reporter_keeps_failures_off_a_terminal(capsys):
    from tianref.cli.progress import RunsReporter
    rep = RunsReporter("sweep")
    rep.progress(0, 2, None)
    rep.note("start a (fresh)")
    rep.note("[1/2] done a (1.0 s)")
    rep.progress(1, 2, "a")
    rep.note("[2/2] FAILED b (exit 1, see _logs/b.log)")
    rep.progress(2, 2, "b")
    rep.close()
    assert capsys.readouterr().err == "[2/2] FAILED b (exit 1, see _logs/b.log)\n"


def test_time_left_is_named(monkeypatch):
    from tianref.cli import progress
    monkeypatch.setattr(progress, "interactive", lambda: True)
    with progress.RowProgress(10, "train x") as bar:
        pb = bar._bar
        assert pb.format_eta() == ""                       # unknown until click has timed a step
        pb.avg, pb.pos, pb.eta_known = [0.5], 2, True      # 0.5 s per row, 8 rows to go
        assert pb.format_eta() == "00:00:04 left"
