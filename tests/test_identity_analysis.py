"""summarize, plot, thm6 and edge read a run folder only when its files are one run's (tianref/identity.py):
a log or config.json from another run, a config.json edited after the run, and an --init-from file changed
after the run started are refused (exit 2, one line, nothing written); an --init-from run is replayed from
its own init file. Each test is named after the case it repeats.

The replay of an --init-from run is checked against the run's own stored checkpoint (a second route: the
weights the training wrote, not a second replay)."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_checks import cli, refused, snapshot

T = ["--M", "13", "--K", "64", "--epochs", "20"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """plain (seed 0), s1 (seed 1), and init: a run started from s1's epoch-5 state (checkpoints 7, 10)."""
    root = tmp_path_factory.mktemp("ident_analysis")
    for name, extra in (("plain", []), ("s1", ["--seed", "1", "--checkpoint-epochs", "5"])):
        assert cli(["train"] + T + extra + ["--out", str(root / name)]).exit_code == 0
    shutil.copy(root / "s1" / "checkpoints" / "epoch_00005.npz", root / "init.npz")
    r = cli(["train"] + T + ["--init-from", str(root / "init.npz"), "--checkpoint-epochs", "7,10",
                              "--out", str(root / "init")])
    assert r.exit_code == 0, r.output
    return root


def _tree(base, tmp_path, name="plain") -> Path:
    shutil.copytree(base / name, tmp_path / "tree" / name)
    return tmp_path / "tree"


@pytest.mark.parametrize("command", ["summarize", "plot"])
def test_summarize_and_plot_refuse_a_log_of_another_seed_copied_over(base, tmp_path, command):
    tree = _tree(base, tmp_path)
    shutil.copy(base / "s1" / "metrics.jsonl", tree / "plain" / "metrics.jsonl")
    before = snapshot(tree)
    args = [command, str(tree)] + (["--out", str(tmp_path / "figs")] if command == "plot" else [])
    refused(cli(args), "metrics.jsonl", "not the log this run wrote")
    assert snapshot(tree) == before and not (tmp_path / "figs").exists()


def test_summarize_refuses_a_config_json_of_another_seed_copied_over(base, tmp_path):
    tree = _tree(base, tmp_path)
    shutil.copy(base / "s1" / "config.json", tree / "plain" / "config.json")
    refused(cli(["summarize", str(tree)]), "final.npz belongs to another run")


def test_summarize_refuses_a_log_cut_below_its_final_state(base, tmp_path):
    tree = _tree(base, tmp_path)
    log = tree / "plain" / "metrics.jsonl"
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:11]))
    refused(cli(["summarize", str(tree)]), "rows 0..20 do not match")


def test_summarize_refuses_a_log_whose_last_row_lacks_its_newline(base, tmp_path):
    """Only whole lines count (a row without its newline is a torn write, as --resume reads it): rows
    0..19 and a row 20 cut before its newline do not hold the rows 0..20 final.npz vouches for."""
    tree = _tree(base, tmp_path)
    log = tree / "plain" / "metrics.jsonl"
    text = log.read_text()
    assert text.endswith("\n") and text.count("\n") == 21
    log.write_text(text[:-1])
    refused(cli(["summarize", str(tree)]), "rows 0..20 do not match")


def test_summarize_reads_its_own_run_and_a_run_in_progress(base, tmp_path):
    tree = _tree(base, tmp_path)
    (tree / "plain" / "checkpoints" / "final.npz").unlink()        # resume.npz (epoch 20) vouches
    assert cli(["summarize", str(tree)]).exit_code == 0


@pytest.mark.parametrize("command", ["thm6", "edge"])
def test_replay_refuses_a_config_json_edited_after_the_run(base, tmp_path, command):
    run = tmp_path / "plain"
    shutil.copytree(base / "plain", run)
    meta = json.loads((run / "config.json").read_text())
    meta["config"]["lr"] = 0.5
    (run / "config.json").write_text(json.dumps(meta))
    refused(cli([command, "--run", str(run), "--at-epochs", "7"]), "do not give the fingerprint")


def test_thm6_replays_an_init_from_run_from_its_own_init_file(base):
    """Epoch 7 replayed (its checkpoint hidden) equals the table row of the stored epoch-7 checkpoint."""
    run = base / "init"
    stored = cli(["thm6", "--run", str(run), "--at-epochs", "7"])
    assert stored.exit_code == 0, stored.output
    ck = run / "checkpoints" / "epoch_00007.npz"
    hidden = run / "epoch_00007.npz.hidden"
    ck.rename(hidden)
    try:
        replayed = cli(["thm6", "--run", str(run), "--at-epochs", "7"])
    finally:
        hidden.rename(ck)
    assert replayed.exit_code == 0, replayed.output
    row = [ln for ln in stored.stdout.splitlines() if ln.split()[:1] == ["7"]]
    assert row and row[0] in replayed.stdout, (stored.stdout, replayed.stdout)


@pytest.mark.parametrize("command", ["thm6", "edge"])
def test_replay_refuses_an_init_from_file_changed_after_the_run_started(base, tmp_path, command):
    root = tmp_path / "r"
    shutil.copytree(base, root, ignore=shutil.ignore_patterns("plain", "s1"))
    meta = json.loads((root / "init" / "config.json").read_text())
    meta["init_from"] = str(root / "init.npz")
    (root / "init" / "config.json").write_text(json.dumps(meta))
    a = dict(np.load(root / "init.npz"))
    a["W"] = a["W"] * 1.5
    np.savez(root / "init.npz", **a)
    before = snapshot(root)
    refused(cli([command, "--run", str(root / "init"), "--at-epochs", "8"]), "has changed since the run started")
    assert snapshot(root) == before


@pytest.mark.parametrize("command", ["summarize", "plot"])
@pytest.mark.parametrize("edit, says", [
    (lambda c: c.update(eta=0.5), "do not give the fingerprint it records"),
    (lambda c: c.update(act="tanh"), "unknown activation 'tanh'"),
    (lambda c: c.update(M=0), "config.json"),
])
def test_a_config_json_edited_in_a_tree_without_checkpoints_is_refused(base, tmp_path, command, edit, says):
    """A tree copied without checkpoints (as reproduce --no-train reads one): config.json alone still carries
    the run's fingerprint, so an edit that would file the run under a condition it never ran is refused (it
    was accepted, the run summarised as 'eta=0.5', because only a state file was checked)."""
    tree = _tree(base, tmp_path)
    shutil.rmtree(tree / "plain" / "checkpoints")
    args = [command, str(tree)] + (["--out", str(tmp_path / "figs")] if command == "plot" else [])
    assert cli(args).exit_code == 0                                  # untouched: read as it is
    meta = json.loads((tree / "plain" / "config.json").read_text())
    edit(meta["config"])
    (tree / "plain" / "config.json").write_text(json.dumps(meta))
    refused(cli(args), says)
