"""Progress: on a pseudo-terminal ``train`` shows a bar with the epoch, train/test accuracy and loss and the
time left; off a terminal one heartbeat line per tenth of the epochs (and after minutes of silence)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tianref.cli.progress import RUN_KEY, row_text

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
    assert row_text(dict(row, **{RUN_KEY: "s1"})) == "s1: " + row_text(row)       # a batch's run, named
    assert row_text({"epoch": 0}).count("-") == 4 and row_text(None) == ""


HEARTBEAT = re.compile(r"^train r: epoch (\d+)/(\d+) \((\d+) %\), [\d.]+ (s|min) elapsed"
                       r"(, ~[\d.]+ (s|min) left)?, test_acc [01]\.\d{3}$")


def _beats(stderr: str) -> list[int]:
    """The heartbeat lines' epochs; every stderr line must be one."""
    lines = stderr.splitlines()
    assert all(HEARTBEAT.match(ln) for ln in lines), stderr
    return [int(HEARTBEAT.match(ln).group(1)) for ln in lines]


def test_train_off_a_terminal_prints_a_heartbeat_every_tenth(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "cli.py"), "train", *TINY, "--out", str(tmp_path / "r")],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 0
    assert _beats(res.stderr) == [3, 6, 9, 12, 15, 18, 21, 24, 27, 30]       # --epochs 30: one per 10 %
    assert "left" not in res.stderr.splitlines()[-1] and "(100 %)" in res.stderr.splitlines()[-1]
    assert res.stdout.count("\n") == 1                              # the one JSON line


def test_heartbeat_in_process_and_on_resume(tmp_path):
    from click.testing import CliRunner
    from tianref.cli import main
    out = str(tmp_path / "r")
    r = CliRunner().invoke(main, ["train", "--M", "7", "--K", "16", "--epochs", "20", "--out", out])
    assert r.exit_code == 0 and _beats(r.stderr) == list(range(2, 21, 2))
    r = CliRunner().invoke(main, ["train", "--out", out, "--resume", "--epochs", "40"])
    assert r.exit_code == 0 and _beats(r.stderr) == list(range(22, 41, 2))   # the run's epochs, of 40
    assert "epoch 22/40 (55 %)" in r.stderr


def test_heartbeat_clock_rule():
    """A fake clock: the tenths, the time left from the rate so far, and a line after HEARTBEAT_S of
    silence when a tenth takes longer than that."""
    from tianref.cli.progress import HEARTBEAT_S, Heartbeat
    now = [0.0]
    lines = []
    hb = Heartbeat(400, "train q", clock=lambda: now[0], echo=lines.append)
    for e in range(1, 401):
        now[0] += 0.1
        hb.update(1, {"epoch": e, "test_acc": 0.41})
    assert len(lines) == 10
    assert lines[2] == "train q: epoch 120/400 (30 %), 12.0 s elapsed, ~28.0 s left, test_acc 0.410"
    assert lines[-1] == "train q: epoch 400/400 (100 %), 40.0 s elapsed, test_acc 0.410"
    lines.clear()
    hb = Heartbeat(4, "b", clock=lambda: 0.0, echo=lines.append)
    hb.update(4, {"epoch": 4, "test_acc": 0.41, RUN_KEY: "s1"})   # whose accuracy, when the line follows one of many runs
    assert lines == ["b: epoch 4/4 (100 %), 0.0 s elapsed, test_acc 0.410 (run s1)"]
    lines.clear()
    now[0] = 0.0
    hb = Heartbeat(100, "train slow", clock=lambda: now[0], echo=lines.append)
    for e in range(1, 11):                  # 10 steps of 100 s: the first tenth ends at step 10
        now[0] += 100.0
        hb.update(1, {"epoch": e})
    assert [ln.split(", ")[1] for ln in lines] == ["3.3 min elapsed", "6.7 min elapsed", "10.0 min elapsed",
                                                   "13.3 min elapsed", "16.7 min elapsed"]
    assert HEARTBEAT_S == 180.0 and "epoch 10/100 (10 %)" in lines[-1]


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_train_on_a_terminal_shows_metrics_and_time_left(tmp_path):
    rc, out, err = _run_on_pty(["train", *TINY, "--out", str(tmp_path / "r")])
    assert rc == 0, err
    # the bar counts epochs: --epochs 30 ends at 30/30 (31 rows are logged: row 0 precedes the first step)
    assert "30/30" in err and "/31" not in err and "ep 30  train acc" in err and "test acc" in err and "loss" in err
    assert "t_test_0.5" in out and "t_test_0.5" not in err


SWEEP = ["--eta", "0", "--seeds", "0-1", "--M", "5", "--K", "8", "--epochs", "3", "--windows", "3"]


def test_sweep_off_a_terminal_beats_and_on_one_shows_a_bar(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "cli.py"), "sweep", str(tmp_path / "a"), *SWEEP],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    lines = res.stderr.splitlines()
    assert res.returncode == 0 and lines[0] == "sweep: 0/2 runs finished", res.stderr   # a sign of life at once
    assert len(lines) == 3 and lines[1].startswith("sweep: 1/2 runs finished (last: ") and \
        lines[2].startswith("sweep: 2/2 runs finished (last: "), res.stderr           # no per-run start lines
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
    assert capsys.readouterr().err == ("sweep: 0/2 runs finished\nsweep: 1/2 runs finished (last: a)\n"
                                       "[2/2] FAILED b (exit 1, see _logs/b.log)\nsweep: 2/2 runs finished (last: b)\n")


def test_runs_reporter_beats_at_each_tenth_off_a_terminal(capsys):
    """Off a terminal (a sweep of the headline size runs ~30 min), one line at the start and each time another
    tenth of the runs has finished, as train's heartbeat: 25 runs -> every 3rd run, and the last."""
    from tianref.cli.progress import RunsReporter
    rep = RunsReporter("reproduce eta")
    for k in range(26):
        rep.progress(k, 25, None if k == 0 else f"r{k}")
    rep.close()
    said = [int(line.split(": ")[1].split("/")[0]) for line in capsys.readouterr().err.splitlines()]
    assert said == [0, 3, 6, 9, 12, 15, 18, 21, 24, 25]


def test_runs_reporter_says_off_a_terminal_that_a_run_diverged_earlier(capsys):
    """A sweep run again over a tree whose run diverged counts it as skipped in its JSON summary, as a
    finished one; off a terminal that note is the only place it is said, so it is kept there."""
    from tianref.cli.progress import RunsReporter
    rep = RunsReporter("sweep")
    msg = "skip a: it diverged earlier (its config.json records where); it would diverge again"
    rep.note(msg)
    rep.note("skip b: finished (or diverged) in another process since this sweep started")   # routine
    rep.close()
    assert capsys.readouterr().err == msg + "\n"


class Clock:
    """A settable monotonic clock (seconds)."""
    def __init__(self, t=100.0):
        self.t = t

    def __call__(self):
        return self.t


def test_time_left_rule():
    from tianref.cli.progress import left_text, time_left
    assert time_left(10.0, 0, 404) is None                  # no item done: no estimate (click would say 404 x 10 s)
    assert time_left(2.0, 1, 404) == 806.0                  # 2 s per item, 403 to go
    assert time_left(5.0, 10, 10) is None
    assert left_text(806.0) == "00:13:26 left" and left_text(None) == ""
    assert left_text(90000.0) == "1d 01:00:00 left"


def test_time_left_is_named_and_counts_only_completed_items(monkeypatch):
    from tianref.cli import progress
    clock = Clock()
    monkeypatch.setattr(progress, "interactive", lambda: True)
    monkeypatch.setattr(progress.time, "monotonic", clock)
    with progress.RowProgress(10, "train x") as bar:
        pb = bar._bar
        clock.t += 30.0
        assert pb.format_eta() == ""                       # 30 s and no row done yet: nothing to divide
        clock.t += 0.5
        pb.pos = 2                                          # 2 rows in 30.5 s, 8 to go
        assert pb.format_eta() == "00:02:02 left"


def test_edge_phases_time_each_phase_from_its_own_start(monkeypatch):
    """The probe bar starts when the probe phase starts (its n = 0 call), so the replay's time is not
    spread over the probes, and the first probe item is timed from the phase start."""
    from tianref.cli import edge, progress
    clock = Clock(0.0)
    monkeypatch.setattr(progress, "interactive", lambda: True)
    monkeypatch.setattr(progress.time, "monotonic", clock)
    bars = edge._Phases()
    bars("replay", 0, 100)
    for _ in range(100):
        clock.t += 0.5
        bars("replay", 1, 100)
    bars("probe", 0, 404)                                   # the probe phase starts at t = 50 s
    clock.t += 2.0
    bars("probe", 1, 404)
    assert bars.bar._bar.format_eta() == "00:13:26 left"    # 2 s for 1 of 404: 403 x 2 s, not 403 x 52 s
    bars.close()


def test_probe_run_announces_each_phase_before_its_first_item(tmp_path):
    from click.testing import CliRunner
    from tianref.analysis.edge_runs import probe_run
    from tianref.cli import main
    out = str(tmp_path / "r")
    r = CliRunner().invoke(main, ["train", "--M", "7", "--K", "16", "--epochs", "8", "--windows", "4",
                                  "--out", out])
    assert r.exit_code == 0, r.output
    calls = []
    probe_run(out, [8], np, spaces=("W",), n_random=1, progress=lambda *a: calls.append(a))
    starts = [i for i, (_, n, _) in enumerate(calls) if n == 0]
    assert [calls[i][0] for i in starts] == ["replay", "probe"]
    assert starts[0] == 0 and calls[starts[1] - 1][0] == "replay" and calls[starts[1] + 1][0] == "probe"
    assert sum(n for p, n, _ in calls if p == "replay") == 8


def test_row_count_reads_each_run_log_incrementally(tmp_path):
    """sweep.RowCount: complete lines only (a torn last row waits for its newline), capped at E + 1, and a
    log that shrank (a run restarted) is counted again from its start."""
    from tianref.experiments.sweep import Job, RowCount
    job = Job(out=tmp_path, seed=0, epochs=4, options=())
    log = tmp_path / "metrics.jsonl"
    count = RowCount()
    assert count(job) == 0                               # no log yet
    log.write_bytes(b'{"epoch": 0}\n{"epoch": 1}\n{"epo')
    assert count(job) == 2
    with open(log, "ab") as f:
        f.write(b'ch": 2}\n{"epoch": 3}\n')
    assert count(job) == 4
    log.write_bytes(b'{"epoch": 0}\n')                   # restarted
    assert count(job) == 1
    log.write_bytes(b"".join(b'{"epoch": %d}\n' % e for e in range(7)))   # more rows than E + 1
    assert count(job) == 5
    log.unlink()                                         # gone between two reads: the last count, still capped
    assert count(job) == 5


def test_runs_reporter_says_the_rows_off_a_terminal_at_tenths_and_not_too_often(capsys):
    """A batch's runs all finish at its end: the rows show how far it is. Off a terminal one line when
    another tenth of the rows is logged, but at most one every ROWS_EVERY_S seconds, never for the last row."""
    from tianref.cli.progress import RunsReporter
    t = [0.0]
    rep = RunsReporter("sweep", clock=lambda: t[0])
    for logged, secs in ((5, 10), (15, 40), (18, 80), (25, 90), (34, 130), (100, 200)):
        t[0] = secs
        rep.rows(logged, 100)
    said = capsys.readouterr().err.splitlines()
    assert said == ["sweep: 15 % of the epochs logged (15/100 rows of the unfinished runs)",
                    "sweep: 25 % of the epochs logged (25/100 rows of the unfinished runs)",
                    "sweep: 34 % of the epochs logged (34/100 rows of the unfinished runs)"]


def test_a_batched_sweep_reports_its_rows_while_it_trains(tmp_path):
    """run_jobs' rows(logged, total): a batch's rows grow while its runs are unfinished, and reach every
    run's E + 1 rows at the end."""
    from tianref.experiments import sweep
    jobs = sweep.make_jobs(tmp_path, sweep.grid(eta=[2e-3]), (0, 1), 200,
                           {"M": 7, "K": 16, "windows": [3], "metrics": "core"})
    seen = []
    out = sweep.run_jobs(jobs, 1, sys.executable, batch=True, rows=lambda n, total: seen.append((n, total)),
                         rows_every_s=0.0, poll_s=0.02)
    assert out["ran"] == 2 and not out["failed"]
    assert seen[-1] == (402, 402) and all(total == 402 for _, total in seen)
    assert [n for n, _ in seen] == sorted({n for n, _ in seen})     # said only when it grew
    assert any(0 < n < 402 for n, _ in seen), seen                  # while the batch trained


@pytest.mark.parametrize("command", ["sweep", "reproduce"])
def test_help_says_what_is_printed_off_a_terminal(command):
    """The reporter of sweep and reproduce (RunsReporter, tested above) prints off a terminal a heartbeat of
    the runs finished and of the epochs logged; each command's --help must say so, not 'only failures'."""
    res = subprocess.run([sys.executable, str(REPO / "cli.py"), command, "--help"], capture_output=True,
                         text=True, cwd=REPO, timeout=60)
    text = " ".join(res.stdout.split())                         # click wraps the text: compare words
    assert res.returncode == 0, res.stderr
    assert "only failures" not in text and "(off one, a heartbeat at each tenth of the runs finished" in text
    assert "of the epochs logged" in text, text


ITEM_BEAT = r"^{label}: {unit} (\d+)/{total} \((\d+) %\), [\d.]+ (s|min) elapsed(, ~[\d.]+ (s|min) left)?$"


def _item_beats(stderr: str, label: str, unit: str, total) -> list[int]:
    """The counts of the heartbeat lines 'LABEL: UNIT n/TOTAL (p %), ... elapsed[, ~... left]' in stderr."""
    pat = re.compile(ITEM_BEAT.format(label=re.escape(label), unit=unit, total=total))
    return [int(m.group(1)) for m in map(pat.match, stderr.splitlines()) if m]


def test_heartbeat_counts_items_in_the_unit_it_is_given():
    from tianref.cli.progress import Heartbeat
    now = [0.0]
    lines = []
    hb = Heartbeat(20, "edge 2/2 probe", clock=lambda: now[0], echo=lines.append, unit="evaluation")
    for _ in range(20):
        now[0] += 0.5
        hb.update(1, None)
    assert len(lines) == 10
    assert lines[1] == "edge 2/2 probe: evaluation 4/20 (20 %), 2.0 s elapsed, ~8.0 s left"
    assert lines[-1] == "edge 2/2 probe: evaluation 20/20 (100 %), 10.0 s elapsed"


def test_edge_off_a_terminal_beats_through_the_replay_and_the_probe(tmp_path):
    """Off a terminal (a log, a pipe) edge's two long loops, the replay's optimizer steps and the probe's
    model evaluations, each say a heartbeat line at every tenth as train's; stdout keeps only the tables."""
    from click.testing import CliRunner
    from tianref import edge_probe
    from tianref.cli import main
    out = str(tmp_path / "r")
    r = CliRunner().invoke(main, ["train", "--M", "7", "--K", "16", "--epochs", "20", "--windows", "4",
                                  "--out", out])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["edge", "--run", out, "--at-epochs", "10,20", "--n-random", "2", "--space", "W"])
    assert r.exit_code == 0, r.output
    assert _item_beats(r.stderr, "edge 1/2 replay", "step", 20) == list(range(2, 21, 2)), r.stderr
    total = 2 * edge_probe.n_evaluations(4, 2)                  # two epochs, v1..v4 defined at both
    said = _item_beats(r.stderr, "edge 2/2 probe", "evaluation", total)
    assert len(said) == 10 and said[-1] == total, r.stderr
    assert r.stdout.startswith("gradient / weight-decay split") and "edge 1/2" not in r.stdout


def test_thm6_off_a_terminal_beats_through_the_replay_and_the_checkpoints(tmp_path):
    """thm6 off a terminal: the replay to epochs without a checkpoint and the Theorem 6 computation per
    checkpoint each say a heartbeat line at every tenth; stdout keeps only the table."""
    from click.testing import CliRunner
    from tianref.cli import main
    out = str(tmp_path / "r")
    r = CliRunner().invoke(main, ["train", "--M", "7", "--K", "16", "--epochs", "20", "--out", out])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["thm6", "--run", out, "--at-epochs", "5,10,20"])
    assert r.exit_code == 0, r.output
    assert _item_beats(r.stderr, "thm6 replay", "epoch", 10) == list(range(1, 11)), r.stderr   # to epoch 10
    assert _item_beats(r.stderr, "thm6", "checkpoint", 3) == [1, 2, 3], r.stderr
    assert r.stdout.startswith("Theorem 6 sign-match") and "thm6" not in r.stdout


def test_the_runs_bar_draws_the_rows_share_and_takes_its_time_left_from_it(monkeypatch):
    """A sweep's rows line (update(0, '40 % of the epochs')) was never drawn (click renders nothing for 0
    steps), and a batch's bar, whose runs all finish at its end, had no time left until the first run ended,
    then one from the runs alone."""
    from tianref.cli import progress
    clock, drawn = Clock(), []
    monkeypatch.setattr(progress, "interactive", lambda: True)
    monkeypatch.setattr(progress.time, "monotonic", clock)
    rep = progress.RunsReporter("sweep")
    rep.progress(0, 6, None)                                   # the bar over 6 runs
    pb = rep._bar._bar
    monkeypatch.setattr(pb, "render_progress", lambda: drawn.append(pb.current_item))
    assert pb.format_eta() == ""
    rep.rows(0, 600)                                           # run_jobs' first call, at its start
    clock.t += 20.0
    rep.rows(240, 600)                                         # 40 % of the rows in 20 s, no run finished
    assert drawn == ["0 % of the epochs", "40 % of the epochs"]
    assert pb.format_eta() == "00:00:30 left"                  # 20 s / 0.4 x 0.6
    rep.close()


def test_a_resumed_sweeps_time_left_counts_only_the_rows_of_this_command(monkeypatch):
    """run_jobs says the rows already logged at its start (a resumed run's); the time left divides this
    command's time by this command's rows: 10 of the 100 left in 20 s leaves 180 s, not 3 s."""
    from tianref.cli import progress
    clock = Clock()
    monkeypatch.setattr(progress, "interactive", lambda: True)
    monkeypatch.setattr(progress.time, "monotonic", clock)
    rep = progress.RunsReporter("sweep")
    rep.progress(0, 1, None)
    pb = rep._bar._bar
    monkeypatch.setattr(pb, "render_progress", lambda: None)
    rep.rows(500, 600)                                         # at the start: the run resumed at row 500
    clock.t += 20.0
    rep.rows(510, 600)
    assert pb.format_eta() == "00:03:00 left"
    rep.close()
