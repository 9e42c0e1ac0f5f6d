"""An output path inside a run directory is refused (exit 2, one line, nothing written): only train writes
in a run. A summary written over its config.json or metrics.jsonl, or a JSON over a checkpoint, used to
exit 0 and leave the run unreadable; a figure beside its files made a later --overwrite refuse it."""
import hashlib
import os

import pytest
from click.testing import CliRunner

from tianref.cli import main

TINY = ["--M", "7", "--K", "16", "--epochs", "6", "--windows", "3", "--checkpoint-epochs", "5"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("outs") / "r"
    res = CliRunner().invoke(main, ["train", *TINY, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def _tree(root):
    """{relative path: sha256} of every file below root (what must not change)."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


@pytest.mark.parametrize("args", [
    ["summarize", "{r}", "--json", "{r}/metrics.jsonl"],
    ["summarize", "{r}", "--md", "{r}/config.json"],
    ["summarize", "{r}", "--md", "{r}/checkpoints/new.md"],
    ["thm6", "--run", "{r}", "--at-epochs", "5", "--top-pairs", "3", "--json", "{r}/config.json"],
    ["thm6", "--checkpoint", "{r}/checkpoints/epoch_00005.npz", "--top-pairs", "3",
     "--json", "{r}/checkpoints/epoch_00005.npz"],
    ["thm6", "--run", "{r}", "--at-epochs", "5", "--top-pairs", "3", "--plot", "{r}/checkpoints/x.png"],
    ["edge", "--run", "{r}", "--at-epochs", "5", "--json", "{r}/checkpoints/resume.npz"],
    ["edge", "--run", "{r}", "--at-epochs", "5", "--plot", "{r}/x.png"],
    ["plot", "{r}", "--out", "{r}"],
    ["plot", "{r}", "--out", "{r}/figures"],
    ["sweep", "{r}/../root", "--M", "7", "--K", "16", "--epochs", "6", "--slurm", "{r}/config.json"],
], ids=lambda a: " ".join(a[:1] + [x for x in a if x.startswith("--") and x not in ("--run", "--at-epochs")]))
def test_an_output_inside_a_run_is_refused(run, args):
    before = _tree(run)
    res = CliRunner().invoke(main, [a.format(r=run) for a in args])
    assert res.exit_code == 2, (res.exit_code, res.output)
    lines = res.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error:") and "inside the run directory" in lines[-1], res.stderr
    assert "Traceback" not in res.stderr and len([ln for ln in lines if ln.startswith("Error")]) == 1
    assert _tree(run) == before                                        # nothing written or replaced
    assert not (run.parent / "root").exists()


def test_thm6_output_over_its_own_input_checkpoint_is_refused(run, tmp_path):
    ck = tmp_path / "ck.npz"
    ck.write_bytes((run / "checkpoints" / "epoch_00005.npz").read_bytes())
    before = ck.read_bytes()
    res = CliRunner().invoke(main, ["thm6", "--checkpoint", str(ck), "--top-pairs", "3", "--json", str(ck)])
    assert res.exit_code == 2 and "same file" in res.stderr.strip().splitlines()[-1], res.output
    assert ck.read_bytes() == before


def test_an_output_beside_the_runs_is_written(run, tmp_path):
    """The same commands with their outputs outside the run are accepted (the rule is the run, not the tree)."""
    res = CliRunner().invoke(main, ["summarize", str(run.parent), "--json", str(run.parent / "s.json")])
    assert res.exit_code == 0, res.output
    assert (run.parent / "s.json").is_file()
