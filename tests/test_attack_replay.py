"""The attack replay (tests/attack/replay.py) keeps one case per variant of the failure list.

The replay itself runs the CLI in subprocesses for minutes and is run by hand (tests/attack/README.md);
this test only imports its case list, so a case cannot silently disappear or be renamed into a
duplicate, and checks the replay's judge on hand-made outcomes (no subprocess).
"""
import importlib.util
import os
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "attack" / "replay.py"


def _load():
    spec = importlib.util.spec_from_file_location("tianref_attack_replay", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod               # dataclasses look the module up while it executes
    spec.loader.exec_module(mod)
    return mod


replay = _load()

# one entry per variant of each bullet of the failure list
EXPECTED = {
    "Data loss": [
        "train --overwrite on a folder with no config.json (notes.txt and a complete run in sub/otherrun)",
        "train --overwrite --out .. run from the run's own checkpoints/ folder is refused, the run not split",
        "train --overwrite --out run/checkpoints/.. (a path through the run's own folder) is refused, the run not split",
    ],
    "Silent mixing on resume": [
        "resume: metrics.jsonl of s1 copied over plain's",
        "resume: resume.npz and config.json of s1 copied over plain's",
        "resume: train_idx/test_idx of s1 in plain's resume.npz",
        "resume: spec_count = -7 in resume.npz",
        "resume: W in resume.npz stored as float64 in a float32 run (another float dtype)",
        "resume: W in resume.npz scaled by 1 + 1e-6 (same dtype and shape: only the file's seal tells)",
        "resume: eta_schedule deleted from sched's config.json",
        "resume: eta_schedule deleted from sched's config.json and from the config in resume.npz",
        "resume: eta_schedule added to a plain run's config.json",
        "resume: eta_schedule added to a plain run's config.json and to the config in resume.npz",
        "summarize of a checkpoint-less run whose config.json was edited (eta) is refused",
        "summarize of a tree where a run's metrics.jsonl is a folder names that run (it was left out)",
    ],
    "Sweeps and reproduce count a foreign run as done": [
        "sweep: a folder whose name matches but whose run used --eta-schedule 0:2e-4,5:0 is refused",
        "sweep --plan: the same foreign run is refused, not left out of the plan",
        "reproduce --plan (lifecycle, smoke): a foreign run in sqr_eta0.002_seed0 is refused",
    ],
    "Tracebacks": [
        '"lr": 10**400 in config.json, then train --resume',
        '"lr": 10**400 in config.json, then edge',
        '"lr": 10**400 in config.json, then thm6 (epoch 10, replayed)',
        "adam_t = -1 in resume.npz, then train --resume (config.json untouched)",
        'row 5 of metrics.jsonl is {"epoch": [5]}, then edge',
        "row 20 (the last) of metrics.jsonl is {}, then thm6",
        "absurd size --windows 1000000000 is refused in one line",
        "absurd size --K 1e11 (100000000000) is refused in one line",
        "absurd size --M 3000000 is refused in one line",
        "absurd size train --group expr:x+y --M 5000 is refused in one line, at once",
        "absurd size group expr:x+y --M 5000 is refused in one line, at once",
    ],
    "Inputs the docs promise to refuse": [
        '--eta-schedule "0:1e-3,,10:0" (empty item) is refused',
        '--eta-schedule "0:1e-3,10:0," (trailing comma) is refused',
        "resume sched with its own --eta-schedule: accepted, rows 21..30 equal an uninterrupted run's",
        "sweep '' (an empty ROOT) is refused, nothing written in the current folder",
        "reproduce --root '' --plan is refused",
        "plot RUN --out '' is refused, no figure in the current folder",
        "train-batch --log-dir '' is refused before any run",
        "train --eta -0 is the control eta = 0 (the fingerprint of --eta 0, not a condition of its own)",
        "edge --at-epochs 0,1 (no edge before 2 updates) is refused in one line",
        "edge --eps-rel nan is refused",
        "edge --eps-rel inf is refused",
        "summarize: a log with a fractional epoch (5.5) is refused",
        "summarize: a log with a row missing its epoch is refused",
        'summarize: a log with a string-valued epoch ("5") is refused',
        "summarize: a log with a duplicated epoch (row 5 twice) is refused",
        "summarize: a 22-row log of a 20-epoch run is not marked complete",
        "sweep ROOT with a newline (it became a command of the --slurm script) is refused, nothing written",
        "sweep ... -- --check-only (every run 'FAILED (exit 0)') is refused, nothing written",
        "group table: on a FIFO (it waited for a writer) is refused in one line",
    ],
    "Checked too late, or the wrong code": [
        "summarize --md afile/x.md is refused before computing, in one line",
        "plot --out into a read-only folder is refused before computing, in one line",
        "edge --plot afile/x.png is refused before computing (exit 2)",
        "summarize --json into a read-only folder is exit 2",
        "edge --json into a read-only folder is exit 2",
        "thm6 --json into a read-only folder is exit 2",
        "metrics.jsonl read-only: train --resume is exit 2 and leaves config.json as it was",
        "sweep --slurm afile/x.sh is refused before any folder is created",
        "sweep with ROOT/_logs a regular file is refused before any run starts (exit 2)",
        "train-batch --log-dir in a read-only folder is refused before any run (exit 2)",
        "sweep --python /nonexistent is refused before ROOT is created (exit 2)",
        "reproduce --python naming a file that is not executable is refused before any folder",
        "reproduce --no-train on an empty root is refused without creating folders",
    ],
    "Durability": [
        "summarize --json fsyncs the summary before renaming it",
        "summarize --md fsyncs the summary before renaming it",
        "full disk from the first byte: train's message names the path",
        "full disk from the first byte: sweep's message names the path",
        "full disk: sweep --slurm FILE's message names FILE",
        "full disk: summarize --json's message names the path",
        "reproduce's figures and reports under umask 077 are 0600",
        "plot's figures under umask 077 are 0600",
        "a second train into a folder in use is refused naming the holder's pid",
        "a second train --overwrite into a folder in use is refused naming the holder's pid",
        "a second train --resume of a folder in use is refused naming the holder's pid",
    ],
    "Links, nested runs, renamed checkpoints and bad batch members": [
        "train --out run/inner (a run inside another run's folder) is refused",
        "summarize --json link/../config.json (link -> run/checkpoints) is refused, the run's config.json kept",
        "sweep ROOT that is a dangling symbolic link is refused, nothing written",
        "thm6 --json below a symbolic link loop is refused before computing",
        "thm6 on an epoch_00010.npz that is the final checkpoint (epoch 20) renamed is refused",
        "thm6 --eta 1e200 (eta^2 overflows) is refused in one line",
        "train-batch with one member's typo (--epoch) trains no member",
    ],
}


def test_every_variant_of_the_failure_list_is_a_case():
    have = {}
    for c in replay.CASES:
        have.setdefault(c.bullet, []).append(c.name)
    missing = [(b, n) for b, names in EXPECTED.items() for n in names if n not in have.get(b, [])]
    assert not missing, f"cases missing from the replay: {missing}"
    assert set(have) == set(EXPECTED), "a bullet of the failure list has no case, or an unknown bullet appeared"


def test_case_names_are_unique_and_callable():
    names = [c.name for c in replay.CASES]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"duplicated case names: {dupes}"
    assert len(names) == sum(map(len, EXPECTED.values()))
    assert all(callable(c.fn) for c in replay.CASES)


# --- the judge, on hand-made outcomes --------------------------------------------------------------

def _folder(tmp_path):
    d = tmp_path / "run"
    (d / "checkpoints").mkdir(parents=True)
    (d / "config.json").write_text("{}\n")
    (d / ".lock").write_text("123\n")
    return d


def test_snapshot_ignores_only_the_lock_content(tmp_path):
    d = _folder(tmp_path)
    before = replay.snapshot(d)
    (d / ".lock").write_text("456\n")                       # another writer's pid: not a change
    assert replay.diff(before, replay.snapshot(d)) is None
    os.chmod(d / "config.json", 0o600)
    assert "changed config.json" in replay.diff(before, replay.snapshot(d))
    (d / "checkpoints" / "x").write_text("")
    assert "created checkpoints/x" in replay.diff(before, replay.snapshot(d))


@pytest.mark.parametrize("rc, err, want", [
    (2, "Error: bad value\n", None),
    (0, "", "exit 0"),
    (1, "Error: bad value\n", "exit 1"),
    (2, "note: computing\nError: bad value\n", "2 stderr lines"),
    (1, "Traceback (most recent call last):\n  ...\nOverflowError: int too large\n", "traceback"),
], ids=["refused", "accepted", "exit-1", "two-lines", "traceback"])
def test_refused_judges_exit_code_lines_and_traceback(tmp_path, rc, err, want):
    d = _folder(tmp_path)
    snap = replay.snapshot(d)
    why = replay.refused(replay.Result(rc, "", err), snap, snap)
    assert why is None if want is None else want in why


def test_refused_needs_the_folder_unchanged_and_named(tmp_path):
    d = _folder(tmp_path)
    before = replay.snapshot(d)
    (d / "config.json").write_text('{"resumed": true}\n')
    why = replay.refused(replay.Result(2, "", "Error: mixed\n"), before, replay.snapshot(d), names="run7")
    assert "changed config.json" in why and "does not name run7" in why
