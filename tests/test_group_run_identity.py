"""A group run's identity: what names the task of a ``train --group`` run, so that resume, sweep and the
readers never take one task for another.

- a ``table:FILE`` run records its table's digest (config group_digest, in the fingerprint): a file changed
  afterwards is refused by --resume, edge, thm6 and sweep; summarize and plot read the run without the
  file; a run made before the digest is compared without it;
- a named group is stored under its one name (3x4 as Z3xZ4), and runs stored under an earlier spelling stay
  their sweep's and resume with either spelling.
"""
import json
import os

from tianref import groups, runs
from test_train_groups import SMALL, _table_file, cli, rows_of


def test_a_table_file_changed_after_the_run_started_is_refused_not_mixed_in(tmp_path):
    """The run records its table's digest (config group_digest, in the fingerprint): the file replaced by
    another group of the same order is refused by --resume and by edge (it resumed on the new labels, and
    row 11 trained on Z4xZ6 after rows 0..10 of S4), while summarize still reads the run's log."""
    tab = tmp_path / "tab.json"
    tab.write_text(json.dumps({"name": "s4", "table": groups.parse_group("S4").table.tolist()}))
    out = str(tmp_path / "run")
    code, _, err = cli(["train", "--group", f"table:{tab}", *SMALL, "--epochs", "10", "--out", out])
    assert code == 0, err
    stored = runs.read_config(out)["config"]
    assert stored["group_digest"] == groups.table_digest(groups.parse_group("S4").table)
    before = {p: open(os.path.join(out, p), "rb").read() for p in ("metrics.jsonl", "config.json")}
    tab.write_text(json.dumps({"name": "z", "table": groups.parse_group("Z4xZ6").table.tolist()}))
    for args in (["train", "--out", out, "--resume", "--epochs", "20"], ["edge", "--run", out, "--at-epochs", "10"]):
        code, _, err = cli(args)
        assert code == 2 and "the file's table is not the one this run was made with" in err, (args, err)
    assert {p: open(os.path.join(out, p), "rb").read() for p in before} == before
    code, _, err = cli(["summarize", out])
    assert code == 0, err


def test_a_run_whose_table_file_is_gone_is_still_read_by_summarize_and_plot(tmp_path):
    """Reading a run's log needs no table file (the run is named by its settings and the table's digest);
    training on it does, and says so in one line."""
    tab = _table_file(tmp_path, "s3", groups.parse_group("S3").table)
    out = str(tmp_path / "run")
    assert cli(["train", "--group", f"table:{tab}", *SMALL, "--epochs", "6", "--out", out])[0] == 0
    os.unlink(tab)
    assert cli(["summarize", out])[0] == 0
    assert cli(["plot", out, "--out", str(tmp_path / "fig")])[0] == 0
    code, _, err = cli(["train", "--out", out, "--resume", "--epochs", "8"])
    assert code == 2 and err.count(f"table:{tab}") == 1 and "cannot read" in err, err


def test_resume_with_the_runs_own_relative_table_path_is_accepted(tmp_path, monkeypatch):
    """train stores table: paths absolute; --resume with the run's own command line (a relative path) is
    the same group, not a change (it was refused as one)."""
    monkeypatch.chdir(tmp_path)
    _table_file(tmp_path, "s3", groups.parse_group("S3").table)
    args = ["train", "--group", "table:s3.json", *SMALL, "--out", "run"]
    assert cli(args + ["--epochs", "4"])[0] == 0
    code, _, err = cli(args + ["--epochs", "6", "--resume"])
    assert code == 0, err
    assert len(rows_of("run")) == 7


def test_a_group_has_one_stored_spelling(tmp_path):
    """3x4 and Z3xZ4, 6 and Z6 are one group: train stores its one name (so fingerprints, summarize's
    conditions and --resume agree), and a sweep given both spellings plans one run (it planned two)."""
    out = str(tmp_path / "run")
    assert cli(["train", "--group", "3x4", *SMALL, "--epochs", "3", "--out", out])[0] == 0
    assert runs.read_config(out)["config"]["group"] == "Z3xZ4"
    code, _, err = cli(["train", "--group", "3x4", *SMALL, "--epochs", "4", "--out", out, "--resume"])
    assert code == 0, err
    code, stdout, err = cli(["sweep", str(tmp_path / "sw"), "--group", "Z6,6,3x4", "--seeds", "0", "--eta", "0",
                             "--K", "32", "--epochs", "3", "--plan"])
    assert code == 0, err
    assert [line.split("--group ")[1].split()[0] for line in stdout.splitlines()] == ["Z6", "Z3xZ4"]  # one name
    # a sweep given 3x4 and one given Z3xZ4 share their run (the folder carried the typed spelling: a sweep of
    # the other spelling trained the same run again into a second folder)
    small = ["--seeds", "0", "--eta", "0", "--K", "32", "--epochs", "2"]
    assert cli(["sweep", str(tmp_path / "sw2"), "--group", "3x4", *small])[0] == 0
    code, stdout, err = cli(["sweep", str(tmp_path / "sw2"), "--group", "Z3xZ4", *small])
    assert code == 0 and json.loads(stdout)["skipped"] == 1, err
    assert sorted(p.name for p in (tmp_path / "sw2").iterdir()) == ["_logs", "eta0_actsqr_groupZ3xZ4_seed0"]
    # a folder that holds no run, whatever its name, does not redirect the sweep's runs (a stray
    # figs_group3x4 made every run be planned again into ..._group3x4_... folders)
    (tmp_path / "sw2" / "figs_group3x4").mkdir()
    code, stdout, err = cli(["sweep", str(tmp_path / "sw2"), "--group", "3x4", *small, "--plan"])
    assert code == 0 and stdout == "" and "finished" in err, (stdout, err)


def test_a_run_stored_under_another_spelling_is_still_its_sweeps_and_resumes(tmp_path, monkeypatch):
    """Runs made before train stored one name per group hold the spec as typed (3x4): the sweep that made
    them finds them (not 'a different run'), and --resume with that spelling or the name continues them."""
    from tianref.cli import train as train_cli
    from tianref.experiments import jobs as jobs_mod, sweep as sweep_engine
    real = train_cli._resolve_group
    monkeypatch.setattr(train_cli, "_resolve_group",                 # the earlier train: the spec as typed
                        lambda spec, *a: (spec.strip(),) + real(spec, *a)[1:])
    root, common = tmp_path / "sw", ["--K", "16", "--windows", "3", "--eta", "2e-3"]
    (job,) = sweep_engine.make_jobs(root, sweep_engine.grid(eta=[2e-3], act=["sqr"], group=["3x4"]), (0,), 4,
                                    {"K": 16, "windows": "3"})
    assert cli(["train", "--out", str(job.out), "--seed", "0", "--group", "3x4", *common, "--epochs", "4"])[0] == 0
    assert runs.read_config(str(job.out))["config"]["group"] == "3x4"
    monkeypatch.setattr(train_cli, "_resolve_group", real)
    jobs_mod._WANTED.clear()
    code, stdout, err = cli(["sweep", str(root), "--group", "3x4", "--seeds", "0", *common, "--epochs", "4", "--plan"])
    assert code == 0 and stdout == "" and "finished" in err, err
    for other in ("Z3xZ4", "Z3xZ4,3x4"):                 # another spelling finds the run too (it planned a new one)
        code, stdout, err = cli(["sweep", str(root), "--group", other, "--seeds", "0", *common, "--epochs", "4",
                                 "--plan"])
        assert code == 0 and stdout == "" and "finished" in err, (other, stdout, err)
    for spelling in ("3x4", "Z3xZ4"):
        code, _, err = cli(["train", "--out", str(job.out), "--resume", "--group", spelling, "--epochs", "5"])
        assert code == 0, err


def test_a_sweep_takes_a_table_run_made_before_digests_as_its_own(tmp_path, monkeypatch):
    """A table: run written before runs recorded group_digest (simulated: train without the digest) is
    the sweep's finished run, not 'a different run (group_digest = absent there)'; it still resumes."""
    from tianref.cli import train as train_cli
    from tianref.experiments import sweep as sweep_engine
    tab = _table_file(tmp_path, "s3", groups.parse_group("S3").table)
    root = tmp_path / "sw"
    real = train_cli._resolve_group
    monkeypatch.setattr(train_cli, "_resolve_group", lambda *a: real(*a)[:2] + ("",))
    common = ["--K", "16", "--windows", "3", "--eta", "2e-3", "--epochs", "4"]
    (job,) = sweep_engine.make_jobs(root, sweep_engine.grid(eta=[2e-3], act=["sqr"], group=[f"table:{tab}"]), (0,), 4,
                                    {"K": 16, "windows": "3"})
    assert cli(["train", "--out", str(job.out), "--seed", "0", "--group", f"table:{tab}", *common])[0] == 0
    assert "group_digest" not in runs.read_config(str(job.out))["config"]
    monkeypatch.setattr(train_cli, "_resolve_group", real)
    from tianref.experiments import jobs as jobs_mod
    jobs_mod._WANTED.clear()
    code, stdout, err = cli(["sweep", str(root), "--group", f"table:{tab}", "--seeds", "0", *common, "--plan"])
    assert code == 0 and stdout == "" and "finished" in err, err
    code, _, err = cli(["sweep", str(root), "--group", f"table:{tab}", "--seeds", "0", *common[:-1], "8", "--plan"])
    assert code == 0, err
