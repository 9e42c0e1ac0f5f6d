"""``reproduce --no-train``: summarise the runs that have all their rows (a tree copied back without
checkpoints), list the missing ones, train nothing; refused where it cannot be honoured."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tianref.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args):
    return CliRunner().invoke(main, list(args))


def test_no_train_on_an_empty_root_is_exit_2(tmp_path):
    for section in ("ridge", "headline"):
        r = _cli("reproduce", "--section", section, "--scale", "ci", "--no-train", "--root", str(tmp_path))
        assert r.exit_code == 2 and "no run with all its rows" in r.output and "Traceback" not in r.output


def test_no_train_refuses_a_section_that_needs_checkpoints(tmp_path):
    r = _cli("reproduce", "--section", "thm6", "--scale", "ci", "--no-train", "--root", str(tmp_path))
    assert r.exit_code == 2 and "needs its runs' checkpoints" in r.output
    assert not (tmp_path / "thm6").exists()                  # nothing written before the refusal


def test_no_train_with_section_all_skips_thm6_with_a_note_and_summarises_the_rest(tmp_path):
    """--section all names thm6, whose measurements replay its runs: --no-train summarises headline, relu,
    window and eta from one finished run each and says on stderr that thm6 was skipped (it refused the
    whole command, so --no-train could never be given --section all)."""
    plan = subprocess.run([sys.executable, "cli.py", "reproduce", "--section", "all", "--scale", "smoke",
                           "--plan", "--root", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert plan.returncode == 0, plan.stderr
    first = {}
    for line in plan.stdout.strip().splitlines():
        out = Path(line.split()[line.split().index("--out") + 1])
        first.setdefault(out.parent.name, line)
    assert set(first) == {"headline", "relu", "window", "eta", "thm6"}
    for name in ("headline", "relu", "window", "eta"):
        done = subprocess.run(first[name].split(), capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr
    r = CliRunner().invoke(main, ["reproduce", "--section", "all", "--scale", "smoke",
                                 "--no-train", "--root", str(tmp_path)])
    assert r.exit_code == 0, r.output + r.stderr
    assert "thm6 skipped" in r.stderr and "checkpoints or replays" in r.stderr
    line = json.loads(r.stdout.strip().splitlines()[-1])
    assert list(line["sections"]) == ["headline", "relu", "window", "eta"]
    assert all(line["sections"][s]["ran"] == 0 for s in line["sections"])
    assert not (tmp_path / "thm6").exists()
    for name in ("headline", "relu", "window", "eta"):
        assert json.loads((tmp_path / name / "summary.json").read_text())["n_runs"] == 1


def test_no_train_with_plan_is_exit_2(tmp_path):
    r = _cli("reproduce", "--section", "ridge", "--scale", "ci", "--no-train", "--plan", "--root", str(tmp_path))
    assert r.exit_code == 2 and "cannot be combined" in r.output


def test_no_train_summarises_the_finished_run_and_lists_the_rest(tmp_path):
    """One of the ci ridge section's four runs is trained (by its own --plan command), its checkpoints
    removed as after a copy without them; --no-train summarises that one run and names the other three."""
    plan = subprocess.run([sys.executable, "cli.py", "reproduce", "--section", "ridge", "--scale", "ci",
                           "--plan", "--root", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    lines = plan.stdout.strip().splitlines()
    assert plan.returncode == 0 and len(lines) == 4
    first = lines[0].split() + ["--epochs", "400"]
    done = subprocess.run(first, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    run_dir = Path(first[first.index("--out") + 1])
    shutil.rmtree(run_dir / "checkpoints")
    r = _cli("reproduce", "--section", "ridge", "--scale", "ci", "--no-train", "--root", str(tmp_path))
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "ridge" / "summary.json").read_text())
    assert doc["n_runs"] == 1 and doc["runs"] == [run_dir.name]
    assert len(doc["missing_runs"]) == 3 and run_dir.name not in doc["missing_runs"]
    report = (tmp_path / "ridge" / "report.md").read_text()
    assert "Not all runs are here" in report and "3 of the section's 4 runs" in report
    assert not any((tmp_path / "ridge" / m).exists() for m in doc["missing_runs"])   # nothing trained


def test_no_train_refuses_a_run_of_another_configuration(tmp_path):
    """A folder named as the smoke headline's run but holding a run of another M (all its rows logged): a
    training call refuses it, and so must --no-train, instead of summarising M = 13 runs as the smoke
    scale's M = 11 (exit 2, nothing written)."""
    plan = subprocess.run([sys.executable, "cli.py", "reproduce", "--section", "headline", "--scale", "smoke",
                           "--plan", "--root", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    argv = plan.stdout.strip().splitlines()[0].split()
    assert plan.returncode == 0 and argv[argv.index("--M") + 1] == "11"
    argv[argv.index("--M") + 1] = "13"                               # the same folder, another run
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    r = _cli("reproduce", "--section", "headline", "--scale", "smoke", "--no-train", "--root", str(tmp_path))
    assert r.exit_code == 2 and "holds a different run (M = 13 there, 11 requested)" in r.output, r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "headline" / "summary.json").exists()


def test_no_train_names_the_missing_runs_and_a_plan_command_that_lists_them(tmp_path):
    """The smoke headline has two runs; one is trained, then --no-train names the other in its JSON line,
    and the --plan command its report gives (same --scale and --root) lists exactly that run's train
    command, not the full scale's runs under the default root."""
    root = tmp_path / "rep"
    plan = subprocess.run([sys.executable, "cli.py", "reproduce", "--section", "headline", "--scale", "smoke",
                           "--plan", "--root", str(root)], capture_output=True, text=True, cwd=ROOT)
    first, second = plan.stdout.strip().splitlines()
    done = subprocess.run(first.split(), capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    r = _cli("reproduce", "--section", "headline", "--scale", "smoke", "--no-train", "--root", str(root))
    assert r.exit_code == 0, r.output
    missing = Path(second.split()[second.split().index("--out") + 1]).name
    line = json.loads([s for s in r.stdout.splitlines() if s.startswith("{")][-1])
    assert line["sections"]["headline"]["missing"] == [missing]
    report = (root / "headline" / "report.md").read_text()
    hint = [s for s in report.splitlines() if "Not all runs are here" in s][0].split("`")[1]
    argv = hint.split()
    assert argv[:2] == ["python", "cli.py"] and "--scale" in argv and "--root" in argv
    again = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0 and again.stdout.strip().splitlines() == [second], again.stdout


def test_a_stop_while_figures_are_drawn_leaves_the_previous_outputs_whole(tmp_path, monkeypatch):
    """A Ctrl-C while a section's figures are drawn left the new figures beside the previous invocation's
    summary.json and report.md (one folder, two invocations). The figures are staged and swapped in with
    the texts: the stop leaves the previous set as it was, and no staging folder."""
    from tianref.experiments.reproduce.sections import headline
    root = tmp_path / "r"
    r = _cli("reproduce", "--section", "headline", "--scale", "smoke", "--root", str(root))
    assert r.exit_code == 0, r.output
    sec = root / "headline"
    before = {p.relative_to(sec): p.read_bytes() for p in sec.rglob("*")
              if p.is_file() and p.suffix in (".json", ".md", ".png")}
    real = type(headline.SECTION).figures

    def stopped(self, doc, records, fig_dir, scale, ctx):
        real(self, doc, records, fig_dir, scale, ctx)                 # the new figures are written (the
        (Path(fig_dir) / "headline.png").write_bytes(b"new")          # same runs draw the same bytes: marked)
        raise KeyboardInterrupt                                       # ...then the user stops it
    monkeypatch.setattr(type(headline.SECTION), "figures", stopped)
    r = _cli("reproduce", "--section", "headline", "--scale", "smoke", "--root", str(root), "--no-train")
    assert r.exit_code != 0
    after = {p.relative_to(sec): p.read_bytes() for p in sec.rglob("*")
             if p.is_file() and p.suffix in (".json", ".md", ".png")}
    assert after == before
    assert not list(sec.glob(".figures.*"))


def test_a_signal_during_the_swap_acts_after_it_and_a_failed_rename_puts_the_figures_back(tmp_path, monkeypatch):
    """_swap_in with a SIGINT sent to the process in its middle (right after summary.json is renamed): the
    swap completes (figures, summary.json and report.md all new, nothing staged left), then the stop acts
    (KeyboardInterrupt). Holding the signal by the main thread's mask did not hold it: a BLAS thread took it
    and the stop came mid-swap (new figures and summary, old report). A rename that fails puts the
    previous figures back."""
    import os
    import signal
    from tianref.experiments.reproduce import pipeline
    sec = tmp_path / "sec"
    (sec / "figures").mkdir(parents=True)
    (sec / "figures" / "a.png").write_bytes(b"old")
    for name in ("summary.json", "report.md"):
        (sec / name).write_text("old")

    def staged():
        d = sec / ".figures.new-1-x"
        d.mkdir()
        (d / "a.png").write_bytes(b"new")
        return d
    real = os.replace

    def replace_then_stop(a, b):
        real(a, b)
        if Path(b).name == "summary.json":
            os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.setattr(pipeline.os, "replace", replace_then_stop)
    with pytest.raises(KeyboardInterrupt):
        pipeline._swap_in(sec, staged(), {"summary.json": "new", "report.md": "new"})
    assert (sec / "figures" / "a.png").read_bytes() == b"new"
    assert [(sec / n).read_text() for n in ("summary.json", "report.md")] == ["new", "new"]
    assert sorted(p.name for p in sec.iterdir()) == ["figures", "report.md", "summary.json"]

    failed = []

    def failing(a, b):                                                   # the new report.md's rename fails
        if Path(b).name == "report.md" and ".new-" in Path(a).name and not failed:
            failed.append(b)
            raise OSError(28, "No space left on device")
        real(a, b)
    monkeypatch.setattr(pipeline.os, "replace", failing)
    (sec / "figures" / "a.png").write_bytes(b"before")
    with pytest.raises(OSError):
        pipeline._swap_in(sec, staged(), {"summary.json": "later", "report.md": "later"})
    assert (sec / "figures" / "a.png").read_bytes() == b"before"
    assert [(sec / n).read_text() for n in ("summary.json", "report.md")] == ["new", "new"]   # the previous set
    assert not [p for p in sec.iterdir() if p.name.startswith(".")]


def test_a_failed_move_aside_reports_its_own_error_and_keeps_the_previous_outputs(tmp_path, monkeypatch):
    """Moving the previous report.md aside fails (EACCES): the swap raises that error (it raised a
    FileNotFoundError of a restore of a file never moved) and every previous output is where it was."""
    import os
    from tianref.experiments.reproduce import pipeline
    sec = tmp_path / "sec"
    (sec / "figures").mkdir(parents=True)
    (sec / "figures" / "a.png").write_bytes(b"old")
    for name in ("summary.json", "report.md"):
        (sec / name).write_text("old")
    staged = sec / ".figures.new-1-x"
    staged.mkdir()
    (staged / "a.png").write_bytes(b"new")
    real = os.replace

    def failing(a, b):
        if Path(a).name == "report.md" and ".old-" in Path(b).name:
            raise PermissionError(13, "Permission denied")
        real(a, b)
    monkeypatch.setattr(pipeline.os, "replace", failing)
    with pytest.raises(PermissionError):
        pipeline._swap_in(sec, staged, {"summary.json": "new", "report.md": "new"})
    assert (sec / "figures" / "a.png").read_bytes() == b"old"
    assert [(sec / n).read_text() for n in ("summary.json", "report.md")] == ["old", "old"]
    assert not [p for p in sec.iterdir() if p.name.startswith(".") and p != staged]


def test_signals_held_restores_both_handlers_and_leftovers_of_the_gone_are_removed(tmp_path):
    """_signals_held puts both previous handlers back and the held SIGINT then acts (the race it also
    guards, a signal acted on between two restores, is not reproduced here), and _remove_leftovers removes
    the staging names of dead processes and of this one (a container's runs all have pid 1; they were
    kept), keeping a live other process's."""
    import os
    import signal
    import subprocess
    import sys
    from tianref.experiments.reproduce import pipeline
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(KeyboardInterrupt):
        with pipeline._signals_held():
            os.kill(os.getpid(), signal.SIGINT)
    assert {s: signal.getsignal(s) for s in before} == before
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout.strip()
        names = [f".figures.old-{dead}-1", f".figures.new-{os.getpid()}-2", f".summary.json.new-{dead}-3",
                 f".figures.new-{live.pid}-4", "keep.txt"]
        for n in names:
            (tmp_path / n).mkdir() if n.startswith(".figures") else (tmp_path / n).write_text("x")
        pipeline._remove_leftovers(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f".figures.new-{live.pid}-4", "keep.txt"])
    finally:
        live.kill()
        live.wait()
