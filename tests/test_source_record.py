"""backend.git_state: the commit recorded as a run's "source" (config.json) and in stored provenance.

The commit is the code's own only when the package directory is the top of a git checkout. An installed
copy (pip install ., no -e) lives in site-packages, which may sit inside some other repository (a
project's .venv); git would answer with that repository's HEAD, so the record must be None there.
Checked against the commits made here by git itself.
"""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tianref.backend import REPO, git_state

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(cwd, *args):
    env_args = ["-c", "user.email=t@example.org", "-c", "user.name=t", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *env_args, *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def _repo_with_a_commit(path):
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q")
    (path / "f.txt").write_text("x\n")
    _git(path, "add", "f.txt")
    _git(path, "commit", "-q", "-m", "c")
    return _git(path, "rev-parse", "HEAD")


def test_the_top_of_a_checkout_records_its_head_and_dirtiness(tmp_path):
    head = _repo_with_a_commit(tmp_path / "src")
    assert git_state(tmp_path / "src") == {"commit": head, "dirty": False}
    (tmp_path / "src" / "f.txt").write_text("y\n")
    assert git_state(tmp_path / "src") == {"commit": head, "dirty": True}


def test_changes_inside_the_outputs_folder_alone_leave_a_rerender_clean(tmp_path):
    """reproduce --rerender --scale ci right after --scale full found the full sections just rewritten and
    recorded 'dirty': those are outputs, not the code; any change elsewhere still makes the state dirty."""
    from tianref.backend import git_state_apart_from
    src = tmp_path / "src"
    head = _repo_with_a_commit(src)
    for scale in ("full", "ci"):
        (src / "out" / scale).mkdir(parents=True)
        (src / "out" / scale / "r.md").write_text("a\n")
        _git(src, "add", f"out/{scale}/r.md")
    _git(src, "commit", "-q", "-m", "o")
    head = _git(src, "rev-parse", "HEAD")
    assert git_state_apart_from([src / "out" / "full"], src) == {"commit": head, "dirty": False}
    (src / "out" / "full" / "r.md").write_text("b\n")                # the other scale, just re-rendered
    assert git_state(src)["dirty"] is True
    assert git_state_apart_from([src / "out" / "full"], src) == {"commit": head, "dirty": False,
                                                                 "outputs_modified": "out/full"}
    (src / "out" / "ci" / "r.md").write_text("b\n")                  # what this rerender reads: dirty
    assert git_state_apart_from([src / "out" / "full"], src) == {"commit": head, "dirty": True}
    _git(src, "checkout", "out/ci/r.md")
    (src / "f.txt").write_text("y\n")                               # the code changed too: dirty
    assert git_state_apart_from([src / "out" / "full"], src) == {"commit": head, "dirty": True}


def test_an_installed_copy_inside_another_repository_records_no_commit(tmp_path):
    _repo_with_a_commit(tmp_path / "project")
    site = tmp_path / "project" / ".venv" / "lib" / "site-packages"   # where pip install . puts tianref
    site.mkdir(parents=True)
    assert git_state(site) is None


def test_outside_any_repository_records_no_commit(tmp_path):
    assert git_state(tmp_path) is None


def test_this_checkout_records_its_own_head():
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=REPO, capture_output=True, text=True)
    if top.returncode:
        pytest.skip("the package is not in a git checkout here")
    assert git_state()["commit"] == _git(REPO, "rev-parse", "HEAD")
