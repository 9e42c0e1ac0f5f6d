"""store: the provenance of a stored section on synthetic jobs (docs/reproduce.md: every stored result carries
its command, runs, what this command trained, the runs' source checkouts and the train time from the logs),
and the modes of the stored copy."""
import json
import os
import stat
from types import SimpleNamespace

import pytest

from tianref.experiments.reproduce.store import provenance, runs_source, store_section, train_seconds


def _job(root, name, log=None, source=None):
    out = root / name
    out.mkdir(parents=True)
    if source is not None:
        (out / "config.json").write_text(json.dumps({"config": {}, "source": source}))
    if log is not None:
        (root / "_logs").mkdir(exist_ok=True)
        (root / "_logs" / f"{name}.log").write_text(log)
    return SimpleNamespace(name=name, out=out)


def test_train_seconds_sums_the_printed_seconds_and_is_none_without_any(tmp_path):
    a = _job(tmp_path, "a", 'python cli.py train ...\n{"epochs": 3, "seconds": 1.5}\n')
    b = _job(tmp_path, "b", 'python cli.py train ...\n{"seconds": 2.25}\n{"seconds": 0.25}\n')   # resumed once
    c = _job(tmp_path, "c", "python cli.py train ...\nError: something\n")
    assert train_seconds([a, b, c]) == 4.0
    assert train_seconds([c]) is None and train_seconds([_job(tmp_path, "d")]) is None


def test_runs_source_names_a_dirty_checkout(tmp_path):
    jobs = [_job(tmp_path, "a", source={"commit": "abc", "dirty": True}),
            _job(tmp_path, "b", source={"commit": "abc", "dirty": False}),
            _job(tmp_path, "c", source={"commit": "abc", "dirty": False}), _job(tmp_path, "d")]
    assert runs_source(jobs) == {"abc (dirty)": 1, "abc": 2, "not recorded": 1}


def test_provenance_counts_what_this_command_trained(tmp_path):
    jobs = [_job(tmp_path, n) for n in ("a", "b", "c", "d")]
    doc = {"section": "headline", "scale": {"name": "ci"}, "seeds": [0, 1], "epochs": {"sqr": 400},
           "setup": {"dtype": "float32", "backend": "numpy"}}
    p = provenance(doc, [], jobs, {"ran": 3, "skipped": 1, "failed": []}, 12.34, "python cli.py reproduce")
    assert (p["runs_trained_by_this_command"], p["runs_found_finished"]) == (3, 1)
    assert p["runs"] == ["a", "b", "c", "d"] and p["wall_s"] == 12.3 and p["train_seconds_from_logs"] is None


@pytest.mark.parametrize("umask, d_mode, f_mode", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_a_stored_section_has_the_modes_of_a_plain_mkdir_and_open(tmp_path, umask, d_mode, f_mode):
    # the copy is built in a mkdtemp folder (always 0700) and renamed into place: its folders and files must
    # end with the modes the user's umask gives (docs: every file the tool writes follows the umask)
    src = tmp_path / "rep" / "headline"
    (src / "figures").mkdir(parents=True)
    for f in ("summary.json", "report.md", "figures/headline.png"):
        (src / f).write_text("x")
    old = os.umask(umask)
    try:
        dest = store_section(src, tmp_path / "store", "ci", "headline", {"command": "c"})
    finally:
        os.umask(old)
    assert {p.name for p in dest.iterdir()} == {"summary.json", "report.md", "figures", "provenance.json"}
    for p in [dest, *dest.rglob("*")]:
        assert stat.S_IMODE(p.stat().st_mode) == (d_mode if p.is_dir() else f_mode), p
