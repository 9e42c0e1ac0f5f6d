"""Paths that lead elsewhere: symbolic links into a run, links that lead nowhere, a run inside a run, and a
checkpoint read under another epoch's name. Each is bad input (exit 2, one line) and leaves every
folder byte-identical; docs/reliability.md lists them with the other path guarantees."""
import os
import shutil
from pathlib import Path

import pytest

from cli_checks import cli, refused, snapshot
from tianref import runs
from tianref.errors import InputError

SMALL = ["--M", "7", "--K", "16", "--epochs", "6", "--windows", "3"]


def listing(d: Path) -> dict:
    """snapshot's files and every folder below d (a folder made before a refusal is seen too); links are
    listed, not followed."""
    folders = {}
    for top, dirs, _ in os.walk(d):
        for n in dirs:
            folders[os.path.relpath(os.path.join(top, n), d)] = None
    return {**folders, **snapshot(d)}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A finished run with epoch checkpoints 2 and 4 (read-only use: tests copy it)."""
    d = tmp_path_factory.mktemp("links") / "base"
    r = cli(["train", *SMALL, "--checkpoint-epochs", "2,4", "--out", d])
    assert r.exit_code == 0, r.output
    return d


@pytest.fixture
def tree(tmp_path, base):
    """tmp/run (a copy of base), tmp/ck -> run/checkpoints, tmp/dang -> nowhere, tmp/loop -> itself."""
    shutil.copytree(base, tmp_path / "run")
    os.symlink(tmp_path / "run" / "checkpoints", tmp_path / "ck")
    os.symlink(tmp_path / "nowhere", tmp_path / "dang")
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    return tmp_path


def test_train_out_inside_another_run_is_refused(tree):
    before = listing(tree)
    for out in (tree / "run" / "inner", tree / "run" / "checkpoints" / "sub", tree / "ck" / ".." / "inner"):
        refused(cli(["train", *SMALL, "--out", out]), "lies inside the run directory", str(tree / "run"))
    refused(cli(["train-batch", "--member", f"{' '.join(SMALL)} --out {tree / 'run' / 'inner'}"]),
            "lies inside the run directory")
    assert listing(tree) == before


def test_an_output_reached_through_a_link_into_a_run_is_refused(tree):
    """'ck/..' is the run itself to the OS, though not to the path's text: summarize would replace the run's
    config.json, a sweep would train a tree inside it."""
    before = listing(tree)
    refused(cli(["summarize", tree / "run", "--json", tree / "ck" / ".." / "config.json"]), "inside the run directory")
    refused(cli(["summarize", tree / "run", "--json", tree / "ck" / "summary.json"]), "inside the run directory")
    refused(cli(["plot", tree / "run", "--out", tree / "ck" / "figs"]), "inside the run directory")
    refused(cli(["sweep", tree / "ck" / "tree", "--eta", "0", *SMALL, "--seeds", "0"]), "run directory")
    assert listing(tree) == before


@pytest.mark.parametrize("link", ["dang", "loop"])
def test_a_link_that_leads_nowhere_is_refused_before_anything(tree, link):
    before = listing(tree)
    at = tree / link
    refused(cli(["train", *SMALL, "--out", at]), "leads nowhere")
    refused(cli(["train", *SMALL, "--out", at / "r"]), "leads nowhere")
    refused(cli(["sweep", at, "--eta", "0", *SMALL, "--seeds", "0"]), "leads nowhere")
    refused(cli(["sweep", at, "--eta", "0", *SMALL, "--seeds", "0", "--plan"]), "leads nowhere")
    refused(cli(["summarize", tree / "run", "--md", at / "s.md"]), "leads nowhere")
    refused(cli(["thm6", "--run", tree / "run", "--at-epochs", "4", "--json", at / "t.json"]), "leads nowhere")
    refused(cli(["reproduce", "--root", at, "--section", "lifecycle", "--scale", "smoke", "--plan"]), "leads nowhere")
    refused(cli(["train-batch", "--member", f"{' '.join(SMALL)} --out {tree / 'r'}", "--log-dir", at]),
            "leads nowhere")
    assert listing(tree) == before


def test_a_checkpoint_under_another_epochs_name_is_refused_by_every_reader(tree):
    ck = tree / "run" / "checkpoints"
    shutil.copy(ck / "epoch_00004.npz", ck / "epoch_00002.npz")
    before = listing(tree)
    refused(cli(["thm6", "--run", tree / "run", "--at-epochs", "2"]), "holds the state at epoch 4, not at epoch 2")
    refused(cli(["edge", "--run", tree / "run", "--at-epochs", "2"]), "holds the state at epoch 4, not at epoch 2")
    with pytest.raises(InputError, match="epoch 4, not at epoch 2"):
        runs.load_checkpoint(str(tree / "run"), 2)                # the reproduce sections' reader
    assert int(runs.load_checkpoint(str(tree / "run"), 4)["epoch"]) == 4
    assert listing(tree) == before
    shutil.copy(ck / "final.npz", ck / "epoch_00004.npz")
    before = listing(tree)
    refused(cli(["thm6", "--run", tree / "run", "--at-epochs", "4"]), "holds the state at epoch 6, not at epoch 4")
    assert listing(tree) == before


def test_thm6_eta_whose_square_overflows_is_refused(base):
    refused(cli(["thm6", "--run", base, "--at-epochs", "4", "--eta", "1e200"]), "too large")
    r = cli(["thm6", "--run", base, "--at-epochs", "4", "--eta", "1e150"])
    assert r.exit_code == 0, r.output


def test_a_run_rolled_back_removes_the_empty_folders_it_created_and_no_other(tmp_path):
    """A run that fails before its first row (initial weights too large: exit 1) is rolled back; the
    folders its makedirs created above OUT go too (new/deep was left behind), a folder that existed
    before stays, even empty, and so does one that holds something else."""
    (tmp_path / "pre").mkdir()
    (tmp_path / "kept").mkdir()
    for out in (tmp_path / "new" / "deep" / "run", tmp_path / "pre" / "a" / "run", tmp_path / "kept" / "run"):
        r = cli(["train", *SMALL, "--init-scale", "1e300", "--out", out])
        assert r.exit_code == 1 and "initial parameters" in r.stderr, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "pre"]
    assert list((tmp_path / "pre").iterdir()) == [] and list((tmp_path / "kept").iterdir()) == []
    (tmp_path / "kept" / "notes.txt").write_text("mine\n")
    (tmp_path / "kept" / "sub").mkdir()
    r = cli(["train", *SMALL, "--init-scale", "1e300", "--out", tmp_path / "kept" / "sub" / "x" / "run"])
    assert r.exit_code == 1
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["notes.txt", "sub"]


def test_overwrite_of_an_empty_folder_needs_only_that_folder_writable(tmp_path, monkeypatch):
    """An --overwrite of an existing empty --out moves nothing aside, so a parent this process cannot write
    (a mount point, a link from a read-only folder) is no reason to refuse it; a non-empty one is moved
    aside in its parent, which must then be writable."""
    from tianref import paths
    (tmp_path / "ro" / "empty").mkdir(parents=True)
    deny = os.path.normpath(tmp_path / "ro")
    real = os.access
    monkeypatch.setattr(paths.os, "access",
                        lambda p, mode, *a, **k: False if os.path.normpath(p) == deny and mode & os.W_OK
                        else real(p, mode, *a, **k))
    (tmp_path / "ro" / "empty" / ".lock").write_text("")          # what a run that crashed at its start
    (tmp_path / "ro" / "empty" / "checkpoints").mkdir()           # leaves: empty to train as well
    r = cli(["train", *SMALL, "--overwrite", "--out", tmp_path / "ro" / "empty"])
    assert r.exit_code == 0, r.output
    refused(cli(["train", *SMALL, "--overwrite", "--seed", "1", "--out", tmp_path / "ro" / "empty"]),
            f"cannot write in {deny}")


def test_a_full_disk_making_the_lock_file_is_exit_1_and_leaves_no_folder(tmp_path, monkeypatch):
    import errno
    from tianref import rundir
    real = os.open

    def full(path, flags, *a, **k):
        if str(path).endswith(".lock") and flags & os.O_CREAT:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, flags, *a, **k)
    monkeypatch.setattr(rundir.os, "open", full)
    r = cli(["train", *SMALL, "--out", tmp_path / "new" / "run"])
    assert r.exit_code == 1 and "cannot create its lock file" in r.stderr and "No space left" in r.stderr, r.output
    assert list(tmp_path.iterdir()) == []


def test_a_rolled_back_out_spelled_with_dotdot_removes_what_makedirs_made(tmp_path, monkeypatch):
    """--out x/../y/z: makedirs makes x as well as y and z; a rollback removes all three, and keeps a y
    that existed before (empty or not)."""
    monkeypatch.chdir(tmp_path)
    r = cli(["train", *SMALL, "--init-scale", "1e300", "--out", "x/../y/z"])
    assert r.exit_code == 1, r.output
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "y").mkdir()
    r = cli(["train", *SMALL, "--init-scale", "1e300", "--out", "x/../y/z"])
    assert r.exit_code == 1, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["y"] and list((tmp_path / "y").iterdir()) == []
