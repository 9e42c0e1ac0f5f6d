"""cli.common's input checks shared by several commands: check_interpreter (sweep and reproduce --python) and
GivenPath (an empty path is not the current folder), on their own and through sweep."""
import click
import pytest
from click.testing import CliRunner

from tianref.cli.common import GivenPath, check_interpreter
from tianref.cli.sweep import sweep_cmd
from tianref.errors import InputError

SMALL = ["--eta", "2e-3", "--seeds", "0", "--M", "7", "--K", "16", "--epochs", "4", "--windows", "3"]


def test_check_interpreter_takes_an_executable_file_by_path_or_by_name_on_PATH(tmp_path, monkeypatch):
    exe = tmp_path / "bin" / "py"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    plain = tmp_path / "plain"
    plain.write_text("")
    plain.chmod(0o644)                      # no execute bit: not executable, even for root
    check_interpreter(str(exe))
    monkeypatch.setenv("PATH", str(exe.parent))
    check_interpreter("py")                 # a name, looked up on PATH
    for bad in ("nopy", str(plain), str(exe.parent), str(tmp_path / "absent"), "", "   "):
        with pytest.raises(InputError, match="no such executable here") as ei:
            check_interpreter(bad, "--python")
        assert str(ei.value).startswith(f"--python {bad!r}: "), bad


def test_given_path_refuses_an_empty_or_blank_value():
    t = GivenPath(file_okay=False)
    for v in ("", "   "):
        with pytest.raises(click.BadParameter, match="the path is empty"):
            t.convert(v, None, None)
    assert t.convert("runs", None, None) == "runs"


def test_sweep_refuses_an_empty_root_and_a_missing_interpreter_before_writing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(sweep_cmd, ["", *SMALL, "--plan"])       # '' would be the current folder
    assert res.exit_code == 2 and "the path is empty" in res.output and res.stdout == ""
    res = CliRunner().invoke(sweep_cmd, [str(tmp_path / "r"), *SMALL, "--python", str(tmp_path / "absent")])
    assert res.exit_code == 2 and "no such executable here" in res.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [
    ["train", "--M", "7", "--K", "8", "--epochs", "2", "--out", "OUT", "--init-from", ""],
    ["train", "--M", "7", "--K", "8", "--epochs", "2", "--out", "OUT", "--init-from", "  "],
    ["sweep", "OUT", *SMALL, "--plan", "--python", ""],
    ["reproduce", "--scale", "smoke", "--section", "headline", "--root", "OUT", "--plan", "--python", " "],
])
def test_an_empty_init_from_or_interpreter_is_refused_not_ignored(tmp_path, monkeypatch, args):
    """train --init-from '' trained a fresh random run as if the option were absent; sweep and reproduce
    --plan printed commands starting with '' (--plan checks no interpreter: its commands may run
    elsewhere, but an empty one runs nowhere)."""
    from cli_checks import cli, refused
    monkeypatch.chdir(tmp_path)
    refused(cli([a.replace("OUT", str(tmp_path / "o")) for a in args]), "the path is empty")
    assert list(tmp_path.iterdir()) == []


def test_an_error_naming_a_path_with_a_newline_stays_one_line(tmp_path):
    """The message is one line whatever the input holds: a newline in a path given to summarize (or in a
    table: path) split 'Error: ...' over two lines."""
    import subprocess
    import sys
    from pathlib import Path
    cli = Path(__file__).resolve().parents[1] / "cli.py"
    for args in (["summarize", f"{tmp_path}/x\ny"], ["train", "--M", "7", "--K", "8", "--group", "table:/x\ny",
                                                      "--out", str(tmp_path / "r")],
                 ["thm6", f"{tmp_path}/nope\nx"]):                # click's own usage error, too
        r = subprocess.run([sys.executable, str(cli), *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "\\n" in r.stderr, r.stderr


def test_one_line_escapes_what_breaks_a_line_and_keeps_other_text():
    from tianref.errors import breaks_line, one_line
    assert one_line("a\nb\tc\x1b\x85\u2028d") == "a\\nb\\tc\\x1b\\x85\\u2028d"
    assert one_line("My\u00a0Runs é σ 日本 👩\u200d💻") == "My\u00a0Runs é σ 日本 👩\u200d💻"      # kept as given
    assert [c for c in "\n\x7f\x85\u2028\u2029 a\u00a0" if breaks_line(c)] == ["\n", "\x7f", "\x85", "\u2028", "\u2029"]
