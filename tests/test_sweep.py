"""sweep: job naming, the independent train commands, resumability, and a tiny real sweep."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tianref.experiments import sweep
from tianref.cli.sweep import sweep_cmd
from tianref.errors import InputError
from tianref.analysis.records import read_tree
from test_summarize import BASE_CONFIG, known_columns, write_run

COMMON = {"K": 2048, "windows": "20", "metrics": "full", "xp": "numpy", "dtype": "float32"}


def test_parse_seeds_and_grid():
    assert sweep.parse_seeds("0-2,5,1") == (0, 1, 2, 5)
    for bad in ("", "a", "3-1", "-1"):
        with pytest.raises(InputError):
            sweep.parse_seeds(bad)
    g = sweep.grid(eta=[2e-4, 0.0], act=["sqr", "relu"])
    assert g[0] == {"eta": 2e-4, "act": "sqr"} and g[3] == {"eta": 0.0, "act": "relu"} and len(g) == 4


def test_job_names_and_commands(tmp_path):
    jobs = sweep.make_jobs(tmp_path, sweep.grid(eta=[2e-4, 0.0], M=[71]), (0, 3), 400,
                           dict(COMMON, windows=[5, 20]))
    assert [j.name for j in jobs] == ["eta0.0002_M71_seed0", "eta0.0002_M71_seed3",
                                      "eta0_M71_seed0", "eta0_M71_seed3"]
    argv = sweep.train_argv(jobs[3], python="py")
    assert argv[:5] == ["py", str(Path(__file__).resolve().parents[1] / "cli.py"), "train", "--out",
                        str(tmp_path / "eta0_M71_seed3")]
    assert argv[5:] == ["--seed", "3", "--epochs", "400", "--eta", "0.0", "--M", "71", "--K", "2048",
                        "--windows", "5,20", "--metrics", "full", "--xp", "numpy",
                        "--dtype", "float32"]
    with pytest.raises(InputError):                     # two conditions mapping to one directory
        sweep.make_jobs(tmp_path, [{"eta": 0.0}, {"eta": 0.0}], (0,), 10)
    # a condition may carry its own length (the scaling sweep: 400 / 600 / 1000 epochs by M)
    (j,) = sweep.make_jobs(tmp_path, [{"M": 127, "epochs": 1000}], (0,), 400)
    assert j.epochs == 1000 and j.name == "M127_seed0"


def test_jobs_from_tagged_specs(tmp_path):
    from types import SimpleNamespace as Spec
    specs = [Spec(tag="eta0_seed1", options={"act": "sqr", "eta": 0.0, "seed": 1, "epochs": 400,
                                              "windows": [20, 5], "checkpoint_epochs": [50, 100]})]
    (j,) = sweep.jobs_from_specs(tmp_path, specs)
    assert (j.out, j.seed, j.epochs) == (tmp_path / "eta0_seed1", 1, 400)
    assert sweep.train_argv(j, python="py")[5:] == [
        "--seed", "1", "--epochs", "400", "--act", "sqr", "--eta", "0.0", "--windows", "20,5",
        "--checkpoint-epochs", "50,100"]
    with pytest.raises(InputError, match="epochs"):
        sweep.jobs_from_specs(tmp_path, [Spec(tag="x", options={"seed": 0})])


def test_states_done_fresh_resumable_and_mismatch(tmp_path):
    cond = {k: BASE_CONFIG[k] for k in ("eta", "act", "M")}
    jobs = sweep.make_jobs(tmp_path, [cond], (0, 1, 2, 3), 400, COMMON)
    done, partial, resumable, fresh = jobs
    write_run(done.out, dict(BASE_CONFIG, seed=0), known_columns(0, True))        # rows 0..400
    (done.out / "checkpoints").mkdir()                                             # and final.npz
    np.savez(done.out / "checkpoints" / "final.npz", epoch=np.int64(400))
    cols = {k: v[:100] for k, v in known_columns(0, True).items()}
    write_run(partial.out, dict(BASE_CONFIG, seed=1), cols)                        # crashed at 99
    write_run(resumable.out, dict(BASE_CONFIG, seed=2), cols)
    (resumable.out / "checkpoints").mkdir()
    (resumable.out / "checkpoints" / "resume.npz").write_bytes(b"")
    assert [sweep.job_state(j) for j in jobs] == ["done", "fresh", "resumable", "fresh"]
    assert sweep.train_argv(partial)[-1] == "--overwrite"
    assert "--overwrite" not in sweep.train_argv(fresh)
    assert sweep.train_argv(resumable)[-3:] == ["--resume", "--epochs", "400"]
    lines = sweep.plan_lines(jobs, python="python")
    assert len(lines) == 3 and all(ln.startswith("python ") for ln in lines)
    assert not any(str(done.out) in ln for ln in lines)
    # the same directory name holding another configuration is refused, never skipped
    other = sweep.make_jobs(tmp_path, [cond], (0,), 400, dict(COMMON, windows="5,20"))[0]
    with pytest.raises(InputError, match="windows"):
        sweep.job_state(other)


def test_a_resume_state_without_config_json_is_not_resumable(tmp_path):
    """--resume needs config.json: a folder holding only checkpoints/resume.npz is not resumed, and as it
    is no run, --overwrite would refuse it too, so the sweep refuses it before anything starts."""
    (job,) = sweep.make_jobs(tmp_path, [{"eta": 0.0}], (0,), 400, COMMON)
    (job.out / "checkpoints").mkdir(parents=True)
    (job.out / "checkpoints" / "resume.npz").write_bytes(b"")
    with pytest.raises(InputError, match="holds no run of this sweep"):
        sweep.job_state(job)


def test_a_ridge_run_stored_before_ridge_eval_is_not_taken_for_a_held_one(tmp_path):
    """A ridge config.json without ridge_eval logged 'current'; a job asking for the ridge top layer without
    the option means 'held' (the default), so the directory is refused, never counted as done."""
    cond = {"eta": BASE_CONFIG["eta"], "top_layer": "ridge"}
    cols = {k: v[:3] for k, v in known_columns(0, True).items()}
    held = sweep.make_jobs(tmp_path, [cond], (0,), 400, COMMON)[0]
    write_run(held.out, dict(BASE_CONFIG, seed=0, top_layer="ridge"), cols)
    with pytest.raises(InputError, match="ridge_eval = 'current' there, 'held' requested"):
        sweep.job_state(held)
    current = sweep.make_jobs(tmp_path, [dict(cond, ridge_eval="current")], (0,), 400, COMMON)[0]
    write_run(current.out, dict(BASE_CONFIG, seed=0, top_layer="ridge"), cols)
    assert sweep.job_state(current) == "fresh"


def test_plan_cli(tmp_path):
    res = CliRunner().invoke(sweep_cmd, [str(tmp_path / "t"), "--plan", "--seeds", "0-2",
                                         "--eta", "2e-4,0", "--act", "sqr,relu", "--python", "py"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert len(lines) == 2 * 2 * 3
    assert lines[0].startswith("py ") and "--act relu" in lines[-1] and "--seed 2" in lines[-1]
    assert not (tmp_path / "t").exists()                # a plan writes nothing
    res = CliRunner().invoke(sweep_cmd, [str(tmp_path / "t"), "--plan", "--seeds", "x"])
    assert res.exit_code == 2 and res.stderr.startswith("Error: ")


def test_tiny_real_sweep_runs_in_parallel_and_resumes(tmp_path):
    root = tmp_path / "sw"
    args = [str(root), "--seeds", "0-1", "--eta", "2e-4", "--M", "7", "--K", "16",
            "--epochs", "6", "--windows", "3", "--jobs", "2"]
    res = CliRunner().invoke(sweep_cmd, args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"runs": 2, "skipped": 0, "ran": 2, "resumed": 0, "failed": []}
    runs = read_tree(root)                               # _logs/ is not a run directory
    assert [r.n_rows for r in runs] == [7, 7] and [r.config["seed"] for r in runs] == [0, 1]
    assert np.isfinite(runs[0].col("W_gap23")[3:]).all()
    assert len(list((root / sweep.LOG_DIR).glob("*.log"))) == 2
    res = CliRunner().invoke(sweep_cmd, args[:-2] + ["--seeds", "0-2"])
    assert json.loads(res.stdout) == {"runs": 3, "skipped": 2, "ran": 1, "resumed": 0, "failed": []}
    more = [a if a != "6" else "8" for a in args[:-2]] + ["--seeds", "0-2"]     # --epochs 8: each continues
    res = CliRunner().invoke(sweep_cmd, more)
    assert json.loads(res.stdout) == {"runs": 3, "skipped": 0, "ran": 3, "resumed": 3, "failed": []}, res.output


def test_failed_runs_are_reported_exit_1(tmp_path):
    jobs = sweep.make_jobs(tmp_path, [{"M": 1}], (0,), 3, {"K": 4})    # train rejects M = 1 (exit 2)
    out = sweep.run_jobs(jobs, 1, sys.executable)
    assert out["ran"] == 0 and out["failed"][0]["returncode"] == 2
    # through the CLI a bad value is refused before anything starts (exit 2, nothing created) ...
    res = CliRunner().invoke(sweep_cmd, [str(tmp_path / "b"), "--M", "1", "--eta", "0",
                                         "--seeds", "0", "--epochs", "2", "--K", "4"])
    assert res.exit_code == 2 and "--M must be >= 2" in res.stderr and not (tmp_path / "b").exists()
    # ... and a run that cannot start (its folder is in use) is a failure: exit 1
    from tianref.rundir import RunLock
    (tmp_path / "c" / "eta0_actsqr_M7_seed0").mkdir(parents=True)
    with RunLock(str(tmp_path / "c" / "eta0_actsqr_M7_seed0")):
        res = CliRunner().invoke(sweep_cmd, [str(tmp_path / "c"), "--M", "7", "--eta", "0",
                                             "--seeds", "0", "--epochs", "2", "--K", "4", "--windows", "3"])
    assert res.exit_code == 1 and "1 of 1 runs failed" in res.stderr and "in use by process" in res.stderr


def test_no_resume_state_is_passed_to_every_run(tmp_path):
    """sweep --no-resume-state: each finished run drops its checkpoints/resume.npz (train's option), and the
    plan's commands carry the flag."""
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    small = ["--eta", "0", "--seeds", "0-1", "--M", "5", "--K", "8", "--epochs", "3", "--windows", "3"]
    run = lambda *a: subprocess.run([sys.executable, str(repo / "cli.py"), "sweep", str(tmp_path / "s"), *small, *a],
                                    capture_output=True, text=True, cwd=repo, timeout=120)
    r = run("--no-resume-state", "--plan")
    assert r.returncode == 0 and r.stdout.count("--no-resume-state") == 2, r.stdout
    r = run("--no-resume-state")
    assert r.returncode == 0, r.stderr
    dirs = [d for d in (tmp_path / "s").iterdir() if d.is_dir() and not d.name.startswith("_")]
    assert len(dirs) == 2 and all((d / "checkpoints" / "final.npz").is_file() for d in dirs)
    assert not any((d / "checkpoints" / "resume.npz").exists() for d in dirs)


def test_a_run_that_diverged_is_skipped_when_the_sweep_runs_again(tmp_path):
    """A run ended by a non-finite loss records it in config.json; the next sweep skips it as finished
    (deterministic steps: it would diverge again) instead of sending `train --resume` at its resume state,
    which train refuses (exit 2), or retraining it."""
    cond = {"optimizer": "adamw", "eta": 1e5, "lr": 1.0}
    common = {"M": 7, "K": 16, "windows": "3", "checkpoint_epochs": "1"}
    (job,) = sweep.make_jobs(tmp_path, [cond], (0,), 6, common)
    first = sweep.run_jobs([job], 1, sys.executable)
    assert first["ran"] == 0 and len(first["failed"]) == 1              # diverged at epoch 2: exit 1
    assert (job.out / "checkpoints" / "resume.npz").is_file()           # a valid resume state at epoch 1
    assert sweep.job_state(job) == "diverged"
    assert sweep.plan_lines([job]) == [] and sweep.batch_plan_lines([job]) == []
    said = []
    again = sweep.run_jobs([job], 1, sys.executable, report=said.append)
    assert again == {"runs": 1, "skipped": 1, "ran": 0, "resumed": 0, "failed": []}, again
    assert any("diverged" in m for m in said), said


def test_plan_of_a_finished_sweep_says_so_on_stderr(tmp_path):
    """--plan over a tree whose runs are all finished prints no command; an empty stdout alone does not
    tell a finished tree from a wrong ROOT or wrong options, so one line on stderr says which it is."""
    args = [str(tmp_path / "f"), "--seeds", "0", "--eta", "0", "--M", "5", "--K", "8", "--epochs", "3",
            "--windows", "3"]
    assert CliRunner().invoke(sweep_cmd, args).exit_code == 0
    res = CliRunner().invoke(sweep_cmd, args + ["--plan"])
    assert res.exit_code == 0 and res.stdout == "", res.output
    assert "all 1 run(s)" in res.stderr and "nothing to plan" in res.stderr
    res = CliRunner().invoke(sweep_cmd, args[:1] + ["--seeds", "1"] + args[3:] + ["--plan"])   # one to plan
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 1 and res.stderr == "", res.output


def test_train_options_after_the_double_dash_reach_every_run(tmp_path):
    """sweep ROOT ... -- --optimizer muon --lr 1e-3: each run's config.json holds them (train's own parser
    read them), batched and unbatched runs log the same rows, a later sweep without them is refused as
    another run, and an option the sweep sets itself (--seed, --eta=...) is refused after '--'."""
    small = ["--eta", "2e-3", "--seeds", "0-1", "--M", "7", "--K", "16", "--epochs", "6", "--windows", "3"]
    extra = ["--", "--optimizer", "muon", "--lr", "3e-3"]
    for root, flags in (("a", []), ("b", ["--batch"])):
        res = CliRunner().invoke(sweep_cmd, [str(tmp_path / root), *small, *flags, *extra])
        assert res.exit_code == 0, res.output
    runs = read_tree(tmp_path / "a")
    assert [(r.config["optimizer"], r.config["lr"]) for r in runs] == [("muon", 3e-3)] * 2
    for r in runs:                                       # the same runs, batched or not
        assert (tmp_path / "b" / r.path.name / "metrics.jsonl").read_bytes() == \
            (r.path / "metrics.jsonl").read_bytes()
    res = CliRunner().invoke(sweep_cmd, [str(tmp_path / "a"), *small, "--plan"])     # without them: Adam
    assert res.exit_code == 2 and "holds a different run" in res.stderr
    res = CliRunner().invoke(sweep_cmd, [str(tmp_path / "a"), *small, "--plan", *extra])
    assert res.exit_code == 0 and "finished" in res.stderr         # the same sweep: nothing left to run
    for own in (["--seed", "3"], ["--eta=0"], ["--out", "x"]):
        res = CliRunner().invoke(sweep_cmd, [str(tmp_path / "c"), *small, "--", *own])
        assert res.exit_code == 2 and "is set by sweep for every run" in res.stderr, res.output
        assert not (tmp_path / "c").exists()


def test_a_dangling_link_named_like_a_run_is_refused_before_anything_starts(tmp_path):
    """ROOT/<run> as a symbolic link to a missing folder: exit 2 with one line naming the link, before any
    run starts (it used to start the sweep and fail at that run's lock file, exit 1)."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "eta0.002_actsqr_M7_seed1").symlink_to(tmp_path / "gone")
    args = [str(root), "--eta", "2e-3", "--seeds", "0-1", "--M", "7", "--K", "16", "--epochs", "4", "--windows", "3"]
    for extra in ([], ["--plan"]):
        res = CliRunner().invoke(sweep_cmd, args + extra)
        assert res.exit_code == 2 and "leads nowhere" in res.stderr, res.output
        assert len(res.stderr.strip().splitlines()) == 1
        assert sorted(p.name for p in root.iterdir()) == ["eta0.002_actsqr_M7_seed1"]      # nothing started or written


def _edit_a_row(log):
    lines = log.read_text().splitlines(keepends=True)
    row = json.loads(lines[2])
    row["train_loss"] = row["train_loss"] * 1.5                   # another run's row, as far as the digest can tell
    lines[2] = json.dumps(row) + "\n"
    log.write_text("".join(lines))
    return "is not the log this run wrote"


def _remove_the_log(log):
    log.unlink()
    return "is missing"


def _a_folder_as_the_log(log):
    log.unlink()
    log.mkdir()
    return "is missing"


def _pre_identity_config(log):
    """config.json as a version before run identities wrote it (no "identity" block)."""
    path = log.parent / "config.json"
    meta = json.loads(path.read_text())
    del meta["identity"]
    path.write_text(json.dumps(meta))
    return "config.json carries no run fingerprint (written before run identities)"


def _pre_identity_state(log):
    """resume.npz as a version before run identities wrote it (no fingerprint, digests or seal)."""
    path = log.parent / "checkpoints" / "resume.npz"
    a = dict(np.load(path))
    for k in ("fingerprint", "rows_digest", "state_digest"):
        del a[k]
    np.savez(path, **a)
    return "resume.npz carries no run fingerprint (written before run identities)"


def _state_edited_after_it_was_written(log):
    """resume.npz with W scaled by 1 + 1e-6, its seal kept (train --resume refuses it)."""
    path = log.parent / "checkpoints" / "resume.npz"
    a = dict(np.load(path))
    a["W"] = a["W"] * a["W"].dtype.type(1 + 1e-6)
    np.savez(path, **a)
    return "its arrays are not the ones its run wrote"


@pytest.mark.parametrize("damage", [_edit_a_row, _remove_the_log, _a_folder_as_the_log, _pre_identity_config,
                                    _pre_identity_state, _state_edited_after_it_was_written],
                         ids=lambda f: f.__name__.strip("_"))
def test_a_resumable_run_whose_log_is_not_its_own_is_refused_before_anything_starts(tmp_path, damage):
    """ROOT holds a half-trained run (resume state at epoch 4) whose metrics.jsonl was edited, removed or
    replaced by a folder, or whose config.json or resume state was written before run identities, or whose
    resume state was edited after it was written: the sweep's validation checks a resumable run's log
    against its resume state's row digest, that both carry the identity train --resume requires, and the
    state's seal, so the sweep exits 2 with one line before any run starts
    (it started, and train --resume failed at that run: exit 1; a missing log was an OSError, exit 1); the
    other seed's folder is not created, and the half-trained run is untouched."""
    root = tmp_path / "root"
    small = ["--eta", "2e-3", "--M", "7", "--K", "16", "--windows", "3"]
    res = CliRunner().invoke(sweep_cmd, [str(root), *small, "--seeds", "0", "--epochs", "4"])
    assert res.exit_code == 0, res.output
    run = root / "eta0.002_actsqr_M7_seed0"
    fragment = damage(run / "metrics.jsonl")
    before = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}
    for extra in ([], ["--plan"]):
        res = CliRunner().invoke(sweep_cmd, [str(root), *small, "--seeds", "0-1", "--epochs", "8", *extra])
        assert res.exit_code == 2 and fragment in res.stderr, res.output
        assert len(res.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith("_")) == [run.name]
    assert {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()} == before


def test_train_options_after_the_separator_reach_the_runs_a_sweep_resumes(tmp_path):
    """A sweep stopped, then re-run with `-- --checkpoint-epochs 8`: the fresh runs got the checkpoint, the
    resumed ones not, though epoch 8 lies after their resume point (train --resume records a changed
    --checkpoint-epochs as a session setting; the sweep dropped train's tokens on --resume). An epoch before
    the resume point is refused by train --resume in the run's log, never dropped without a word."""
    import subprocess
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    small = ["--eta", "0", "--seeds", "0-1", "--M", "5", "--K", "8", "--windows", "3"]
    run = lambda *a: subprocess.run([sys.executable, str(repo / "cli.py"), "sweep", str(tmp_path / "s"), *small, *a],
                                    capture_output=True, text=True, cwd=repo, timeout=120)
    r = run("--epochs", "5")                              # finished at 5, resume state kept: resumable to 10
    assert r.returncode == 0, r.stderr
    plan = run("--epochs", "10", "--plan", "--", "--checkpoint-epochs", "8")
    assert plan.returncode == 0 and plan.stdout.count("--resume") == 2, plan.stdout
    assert plan.stdout.count("--checkpoint-epochs 8") == 2, plan.stdout
    r = run("--epochs", "10", "--", "--checkpoint-epochs", "4,8")
    assert r.returncode == 1 and "2 of 2 runs failed" in r.stderr, r.stderr             # 4: already passed
    assert "this run has already passed that epoch" in (tmp_path / "s" / "_logs" / "eta0_actsqr_M5_seed0.log").read_text()
    r = run("--epochs", "10", "--", "--checkpoint-epochs", "8")
    assert r.returncode == 0, r.stderr
    dirs = [d for d in (tmp_path / "s").iterdir() if d.is_dir() and not d.name.startswith("_")]
    assert len(dirs) == 2
    for d in dirs:
        assert (d / "checkpoints" / "epoch_00008.npz").is_file()          # after the resume point
        assert len((d / "metrics.jsonl").read_text().splitlines()) == 11


@pytest.mark.parametrize("option", ["--lr", "--optimizer"])
def test_a_train_option_given_to_sweep_is_told_to_go_after_the_double_dash(tmp_path, option):
    """click suggested '--help', '--plan' or '--slurm' for sweep --lr; train's options reach every run after
    '--', which the message now says (an option neither takes keeps click's suggestion)."""
    from tianref.cli import main
    res = CliRunner().invoke(main, ["sweep", str(tmp_path / "r"), option, "1"])
    assert res.exit_code == 2 and f"No such option '{option}': it is train's; give train's options after '--'" \
        in res.stderr and "Did you mean" not in res.stderr, res.stderr
    res = CliRunner().invoke(main, ["sweep", str(tmp_path / "r"), "--bogus", "1"])
    assert res.exit_code == 2 and "it is train's" not in res.stderr
    # train's options that a sweep sets itself or refuses after '--' keep click's own suggestion
    res = CliRunner().invoke(main, ["sweep", str(tmp_path / "r"), "--seed", "1"])
    assert res.exit_code == 2 and "it is train's" not in res.stderr and "--seeds" in res.stderr, res.stderr
    assert not (tmp_path / "r").exists()


def test_sweep_says_at_its_end_how_much_resume_state_the_finished_runs_keep(tmp_path, monkeypatch):
    """Finished runs keep checkpoints/resume.npz (~110 MB at the headline size; a 30-run sweep ~3.3 GB) and
    nothing said so: past RESUME_STATE_NOTE_BYTES the sweep names the total and --no-resume-state."""
    from tianref.cli import sweep as sweep_cli
    monkeypatch.setattr(sweep_cli, "RESUME_STATE_NOTE_BYTES", 1)
    args = [str(tmp_path / "sw"), "--seeds", "0-1", "--eta", "2e-4", "--M", "7", "--K", "16", "--epochs", "3",
            "--windows", "3"]
    res = CliRunner().invoke(sweep_cmd, args)
    assert res.exit_code == 0, res.output
    kept = sum(p.stat().st_size for p in (tmp_path / "sw").rglob("resume.npz"))
    assert kept > 0 and f"the finished runs keep {kept / 2**20:.0f} MiB of resume state" in res.stderr
    res = CliRunner().invoke(sweep_cmd, [str(tmp_path / "sw2"), *args[1:], "--no-resume-state"])
    assert res.exit_code == 0 and "resume state" not in res.stderr
    assert not list((tmp_path / "sw2").rglob("resume.npz"))
