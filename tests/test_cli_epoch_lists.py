"""thm6 and edge take an epoch list as --at-epochs (train and sweep's --epochs is a count); the former
name --epochs still works there with one deprecation line on stderr, and both at once is a usage error."""
import json

import pytest
from click.testing import CliRunner

from tianref.cli import main

TRAIN = ["--M", "7", "--K", "16", "--epochs", "12", "--eta", "1e-2", "--windows", "4", "--dtype", "float64"]
NOTE = "--epochs is deprecated here (it names an epoch list); use --at-epochs"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("lists") / "run")
    r = CliRunner().invoke(main, ["train", *TRAIN, "--out", out])
    assert r.exit_code == 0, r.output
    return out


def _cmd(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("cmd, extra", [("thm6", ["--top-pairs", "5", "--audit", "1"]),
                                        ("edge", ["--n-random", "1", "--space", "W"])])
def test_former_name_gives_the_same_answer_with_one_note(run_dir, tmp_path, cmd, extra):
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    a = _cmd(cmd, "--run", run_dir, "--at-epochs", "6,12", *extra, "--json", new)
    b = _cmd(cmd, "--run", run_dir, "--epochs", "6,12", *extra, "--json", old)
    assert a.exit_code == 0 and b.exit_code == 0, (a.output, b.output)
    assert NOTE not in a.stderr
    assert [ln for ln in b.stderr.splitlines() if "deprecated" in ln] == [f"{cmd}: {NOTE}"]
    assert a.stdout == b.stdout
    key = "checkpoints" if cmd == "thm6" else "records"
    assert [r["epoch"] for r in json.loads(new.read_text())[key]] == [6, 12]       # one space (W) for edge


@pytest.mark.parametrize("cmd", ["thm6", "edge"])
def test_both_names_at_once_is_a_usage_error(run_dir, cmd):
    for order in (["--at-epochs", "6", "--epochs", "12"], ["--epochs", "12", "--at-epochs", "6"]):
        r = _cmd(cmd, "--run", run_dir, *order)
        assert r.exit_code == 2 and "not both" in r.output


def test_edge_still_requires_an_epoch_list(run_dir):
    r = _cmd("edge", "--run", run_dir)
    assert r.exit_code == 2 and "--at-epochs" in r.output


def test_help_names_the_new_option():
    for cmd in ("thm6", "edge"):
        text = _cmd(cmd, "--help").output
        assert "--at-epochs" in text and "Former name of --at-epochs" in text


def _help_record(cmd, name):
    """The help lines of one option: from its name to the next option's."""
    lines, out = _cmd(cmd, "--help").output.splitlines(), []
    for line in lines:
        if line.lstrip().startswith("--"):
            if out:
                break
            if line.lstrip().startswith(name + " "):
                out.append(line)
        elif out:
            out.append(line)
    return " ".join(" ".join(out).split())


def test_edge_help_marks_at_epochs_required_as_click_marks_required_options(run_dir):
    """edge needs an epoch list (by either name, so click's own required check cannot be used): its help
    shows [required] as for --run, thm6's (optional there) does not; a missing list is one usage line, exit 2."""
    assert _help_record("edge", "--run").endswith("[required]")
    assert _help_record("edge", "--at-epochs").endswith("[required]")
    assert "required" not in _help_record("thm6", "--at-epochs").lower()
    r = _cmd("edge", "--run", run_dir)
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(err) == 1 and err[0].startswith("Error: missing option '--at-epochs'"), r.stderr
