"""Every file the tool writes gets the mode a plain open() gives under the user's umask (0644 under 022,
0600 under 077): run files, summaries (summarize --json/--md), reproduce's summary.json, report.md and
figures, and a stored section. mkstemp alone would make them 0600 whatever the umask."""
import os
import stat

import pytest
from click.testing import CliRunner

from tianref.cli import main


def _modes(root):
    return {os.path.relpath(os.path.join(d, f), root): stat.S_IMODE(os.stat(os.path.join(d, f)).st_mode)
            for d, _, fs in os.walk(root) for f in fs if f != ".lock"}


@pytest.mark.parametrize("umask, want", [(0o022, 0o644), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, want):
    old = os.umask(umask)
    try:
        run = tmp_path / "run"
        r = CliRunner().invoke(main, ["train", "--M", "7", "--K", "16", "--epochs", "4", "--windows", "3",
                                      "--out", str(run)])
        assert r.exit_code == 0, r.output
        r = CliRunner().invoke(main, ["summarize", str(tmp_path), "--json", str(tmp_path / "s.json"),
                                      "--md", str(tmp_path / "s.md")])
        assert r.exit_code == 0, r.output
        r = CliRunner().invoke(main, ["reproduce", "--section", "ridge", "--scale", "smoke", "--root",
                                      str(tmp_path / "rep"), "--jobs", "1", "--store", "--store-to",
                                      str(tmp_path / "store")])
        assert r.exit_code == 0, r.output
    finally:
        os.umask(old)
    files = {**_modes(run), **{k: v for k, v in _modes(tmp_path).items() if k.startswith(("s.", "rep/ridge/"))},
             **{"store/" + k: v for k, v in _modes(tmp_path / "store").items()}}
    assert "s.json" in files and "s.md" in files and "rep/ridge/summary.json" in files
    assert any(k.endswith(".png") for k in files) and any(k.startswith("store/") for k in files)
    bad = {k: oct(v) for k, v in files.items() if v != want and not k.startswith("rep/ridge/_logs")}
    assert not bad
