"""The command line's promises: usage errors are one line (exit 2, nothing on stdout), fixed sets are
choices, and the top-level help lists every command with a whole sentence."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def cli(*args):
    return subprocess.run([sys.executable, str(REPO / "cli.py"), *args], capture_output=True, text=True,
                          cwd=REPO, timeout=60)


@pytest.mark.parametrize("args, needle", [
    (["train", "--act", "foo", "--out", "x"], "'foo' is not one of"),
    (["train"], "Missing option '--out'"),
    (["train", "--out", "x", "--nope"], "No such option '--nope'"),
    (["sweep", "ROOT", "--act", "sqr,foo"], "'foo' is not one of"),
    (["sweep"], "Missing argument 'ROOT'"),
    (["reproduce", "--section", "nope"], "'nope' is not one of"),
    (["reproduce", "--scale", "huge"], "'huge' is not one of"),
    (["summarize", "x", "--crossing", "mid"], "'mid' is not one of"),
    (["thm6", "--method", "qr"], "'qr' is not one of"),
    (["nope"], "No such command 'nope'"),
    (["edge", "--run", "x", "--eps-rel", "1e308"], "> 0 and <= 1"),          # overflowed to NaN, exit 0
])
def test_usage_errors_are_one_line_exit_2(args, needle, tmp_path):
    res = cli(*args)
    assert res.returncode == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], res.stderr
    assert "--help'." in lines[0]                                       # where to look next
    assert not (tmp_path / "x").exists()


def test_a_suggestion_keeps_its_question_mark_and_a_run_folder_given_as_an_argument_is_named(tmp_path):
    """'Did you mean 'train'?.' ended in two marks; 'thm6 RUN' (summarize and plot take RUN_DIR as an
    argument, thm6 and edge as --run) said only 'Got unexpected extra argument'."""
    res = cli("trian")
    assert res.returncode == 2 and "Did you mean 'train'? See 'cli.py --help'." in res.stderr, res.stderr
    res = cli("thm6", str(tmp_path))
    line = res.stderr.strip()
    assert res.returncode == 2 and len(line.splitlines()) == 1
    assert f"a run folder is given as --run {tmp_path}" in line, line


def test_help_is_not_an_error():
    res = cli("train", "--help")
    assert res.returncode == 0 and res.stdout.startswith("Usage:") and res.stderr == ""


def test_top_level_help_lists_whole_sentences():
    res = cli("--help")
    assert res.returncode == 0
    block = res.stdout.split("Commands:")[1].strip().splitlines()
    names = [ln.split()[0] for ln in block]
    assert sorted(names) == ["edge", "group", "plot", "reproduce", "summarize", "sweep", "thm6", "train", "train-batch"]
    for ln in block:
        text = ln.split(None, 1)[1]
        assert text.endswith(".") and not text.endswith("..."), ln


def test_sweep_act_is_a_choice_list(tmp_path):
    res = cli("sweep", str(tmp_path / "r"), "--act", "sqr,relu", "--eta", "2e-4", "--seeds", "0", "--epochs", "3", "--plan")
    assert res.returncode == 0, res.stderr
    assert [ln.split("--act ")[1].split()[0] for ln in res.stdout.splitlines()] == ["sqr", "relu"]


def test_the_program_alone_prints_its_help():
    r = cli()
    assert r.returncode == 0 and r.stdout.startswith("Usage:") and "reproduce" in r.stdout and not r.stderr


def test_reproduce_offers_the_fake_backend(tmp_path):
    """--xp fake (the strict CI backend) is a choice of reproduce as of train and sweep."""
    r = cli("reproduce", "--section", "headline", "--scale", "smoke", "--plan", "--xp", "fake",
            "--root", str(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines and all("--xp fake" in line for line in lines)


def test_plot_act_must_match_a_run_and_gelu_is_a_choice(tmp_path):
    """plot --act relu on a tree of x² runs used to draw the x² runs and exit 0; it is refused (exit 2, one
    line, nothing written). gelu is one of the choices, as in train."""
    r = cli("train", "--M", "7", "--K", "16", "--epochs", "4", "--windows", "3", "--out", str(tmp_path / "runs" / "a"))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "figs"
    for act in ("relu", "gelu"):
        r = cli("plot", str(tmp_path / "runs"), "--act", act, "--out", str(out))
        assert r.returncode == 2 and f"--act {act}: no run" in r.stderr and "found: sqr" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()
    r = cli("plot", str(tmp_path / "runs"), "--act", "sqr", "--figure", "headline", "--out", str(out))
    assert r.returncode == 0, r.stderr


def test_another_codes_name_for_an_option_is_answered_with_ours(tmp_path):
    """click guessed '--ridge-reg' for --learning-rate; the message names --lr (and --eta for
    --weight-decay); an option the command does not have keeps click's own message."""
    out = str(tmp_path / "x")
    for other, ours in (("--learning-rate", "--lr"), ("--weight-decay", "--eta"), ("--hidden", "--K")):
        r = cli("train", "--M", "7", other, "1", "--out", out)
        assert r.returncode == 2 and r.stdout == "", r.stderr
        assert r.stderr.strip().splitlines() == [
            f"Error: No such option '{other}': this command calls it {ours}. See 'cli.py train --help'."]
    r = cli("thm6", "--learning-rate", "1")                  # thm6 has no --lr
    assert "this command calls it" not in r.stderr and "No such option '--learning-rate'" in r.stderr
    assert not (tmp_path / "x").exists()
