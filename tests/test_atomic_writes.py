"""Every file the tool writes arrives whole, by one rename, or not at all (the old file stays intact).

Checked on each writer: at the moment of the rename the target still holds its old bytes (so nothing
was written into it directly), the new bytes come from a file in the same directory (a rename across
file systems would not be atomic), and a failure before the rename leaves the old file and no
temporary file behind.
"""
import os

import pytest

from tianref import runs
from tianref.analysis.summarize import write_atomic

OLD = b"old contents\n"


def _writers():
    return {
        "runs.atomic_write_bytes": lambda p: runs.atomic_write_bytes(str(p), lambda f: f.write(b"new bytes")),
        "runs.atomic_write_text": lambda p: runs.atomic_write_text(str(p), "new text"),
        "runs.atomic_write_json": lambda p: runs.atomic_write_json(str(p), {"new": 1}),
        "summarize.write_atomic": lambda p: write_atomic(p, "new text"),
        "reproduce.figures._save_fig": _save_fig,
    }


def _save_fig(p):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tianref.experiments.reproduce.figures import _save_fig as save
    fig = plt.figure(figsize=(1, 1))
    try:
        save(fig, p)
    finally:
        plt.close(fig)


@pytest.mark.parametrize("name", list(_writers()))
def test_the_target_changes_only_by_one_rename(tmp_path, monkeypatch, name):
    target = tmp_path / "out.file"
    target.write_bytes(OLD)
    real_replace = os.replace
    seen = []

    def replace(src, dst):
        seen.append((os.path.abspath(src), os.path.abspath(dst), target.read_bytes()))
        return real_replace(src, dst)
    monkeypatch.setattr(os, "replace", replace)
    _writers()[name](target)
    assert [s[1] for s in seen] == [str(target)], "the target must be written by exactly one rename"
    src, _, at_rename = seen[0]
    assert at_rename == OLD, "the target was written directly before the rename"
    assert os.path.dirname(src) == str(tmp_path)
    assert target.read_bytes() != OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.file"]


@pytest.mark.parametrize("name", list(_writers()))
def test_a_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, name):
    target = tmp_path / "out.file"
    target.write_bytes(OLD)

    def replace(src, dst):
        raise OSError("disk full (simulated)")
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="simulated"):
        _writers()[name](target)
    assert target.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.file"]


def test_a_writer_failing_midway_leaves_the_old_file(tmp_path):
    target = tmp_path / "state.npz"
    target.write_bytes(OLD)

    def half(f):
        f.write(b"half of the new")
        raise RuntimeError("interrupted")
    with pytest.raises(RuntimeError):
        runs.atomic_write_bytes(str(target), half)
    assert target.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.npz"]
