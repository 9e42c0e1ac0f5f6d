"""sweep.run_jobs and sweep.batches on the cases their docstrings promise and no other test reaches.

- batches: the runs of each stack (they differ only by seed and eta) are split into equal parts when
  there are fewer stacks than processes, so the batches fill them: ceil(n_jobs / stacks) parts per stack.
- run_jobs: --jobs must be >= 1 (zero processes would never start a queued job);
  a single train that exits nonzero is a failed run even when its log has all its rows (only a batch's
  exit code speaks for several runs, each then judged by its rows);
  a sweep stopped by a signal counts the jobs it never started as not started.
"""
import json
import os
import signal
import stat
import subprocess
import sys

import pytest

from tianref.errors import InputError
from tianref.experiments import sweep
from test_reliability_sweep import LONG, ROOT, _child_pid


def _jobs(root):
    # two stacks (act), each of 2 etas x 2 seeds: the etas of one stack train in one batch
    return sweep.make_jobs(root, sweep.grid(act=["sqr", "relu"], eta=[2e-3, 0.0]), (0, 1), 10,
                           {"M": 7, "K": 16, "windows": "3"})


@pytest.mark.parametrize("n_jobs, sizes", [(1, [4, 4]), (2, [4, 4]), (3, [2, 2, 2, 2]), (4, [2, 2, 2, 2]),
                                           (5, [2, 2, 2, 2]), (100, [1] * 8)])
def test_batches_split_each_stack_into_ceil_of_jobs_over_stacks_parts(tmp_path, n_jobs, sizes):
    # parts per stack = ceil(n_jobs / 2), at most the stack's 4 runs; part size = ceil(4 / parts)
    b = sweep.batches(_jobs(tmp_path), n_jobs)
    assert [len(x) for x in b] == sizes
    for x in b:                                                      # one stack per batch
        assert len({dict(j.options)["act"] for j in x}) == 1


def test_zero_processes_are_refused():
    # no jobs: were zero processes accepted, a queued job would wait forever (nothing is ever started)
    with pytest.raises(InputError, match="--jobs must be >= 1"):
        sweep.run_jobs([], n_jobs=0)


def test_a_train_that_exits_nonzero_is_failed_even_with_all_its_rows(tmp_path):
    wrapper = tmp_path / "python-then-fail"
    wrapper.write_text(f'#!/bin/sh\n"{sys.executable}" "$@"\nexit 3\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    (job,) = sweep.make_jobs(tmp_path / "root", [{"eta": 0.0}], (0,), 3, {"M": 7, "K": 16, "windows": "3"})
    res = sweep.run_jobs([job], n_jobs=1, python=str(wrapper))
    assert (job.out / "metrics.jsonl").read_text().count("\n") == 4       # rows 0..3: the run itself finished
    assert res["ran"] == 0 and [f["returncode"] for f in res["failed"]] == [3], res


def test_a_stopped_sweep_counts_its_queued_jobs_as_not_started(tmp_path):
    """One process, three seeds: stopped while seed 0 trains, seed 0 saves its resume state and seeds 1, 2
    were never started."""
    root = tmp_path / "root"
    argv = [sys.executable, str(ROOT / "cli.py"), "sweep", str(root), "--jobs", "1", *LONG[:-4],
            "--seeds", "0-2", "--epochs", "5000"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    _child_pid(root, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "1 running run(s) saved their resume state, 2 not started" in err, err


def test_every_option_a_sweep_writes_itself_is_refused_after_the_double_dash(tmp_path):
    """pass_through refuses each option the sweep's own train commands carry (a run would get two values), read
    off the command lines it writes for a job with every condition key and common option the sweep sets, in
    the fresh, restarted (--overwrite) and resumed (--resume) states, as '--opt v' and as '--opt=v'; train's
    other options pass unchanged."""
    from tianref.cli.sweep import pass_through
    conds = sweep.grid(eta=[2e-3], act=["sqr"], M=[8], group=["Z8"], train_frac=[0.5])
    common = {"K": 16, "windows": [3], "metrics": "core", "xp": "numpy", "dtype": "float64", "no_resume_state": True}
    (job,) = sweep.make_jobs(tmp_path, conds, (0,), 10, common)
    job.out.mkdir()
    (job.out / "metrics.jsonl").write_text("")           # not empty: the fresh command restarts it (--overwrite)
    argv = sweep.train_argv(job, state="fresh", threads=2) + sweep.train_argv(job, state="resumable")
    own = {t for t in argv if t.startswith("--")}
    assert {"--out", "--seed", "--epochs", "--threads", "--eta", "--group", "--train-frac", "--no-resume-state",
            "--overwrite", "--resume"} <= own
    for opt in sorted(own):
        for tokens in ([opt, "1"], [f"{opt}=1"]):
            with pytest.raises(InputError, match="is set by sweep for every run"):
                pass_through(["--lr", "1e-3", *tokens])
    assert pass_through(["--optimizer", "muon", "--lr=1e-3"]) == ("--optimizer", "muon", "--lr=1e-3")
    # a validation flag and a schedule have no place in a sweep: --check-only made every run 'FAILED (exit 0)'
    # and --eta-schedule said "give --eta or --eta-schedule, not both" of an --eta the user never typed
    for tokens in (["--check-only"], ["--eta-schedule", "0:1e-3"], ["--eta-schedule=0:1e-3"], ["--help"], ["-h"]):
        with pytest.raises(InputError, match="cannot be given to a sweep"):
            pass_through(["--lr", "1e-3", *tokens])
    for value in ("1e-3\n", "1e-3\u2028"):        # accepted by train's float parser; it split the printed command
        with pytest.raises(InputError, match="holds a control character"):
            pass_through(["--lr", value])


def test_passed_through_options_reach_a_fresh_run_and_a_resumed_one(tmp_path):
    # a resumable job's command is 'train --out DIR --resume --epochs E' and train's own tokens: the stored config
    # defines the run, --resume refuses a token that would change it and records a session setting it may change
    # (a --checkpoint-epochs given on a re-run was dropped for the resumed runs)
    (job,) = sweep.make_jobs(tmp_path, sweep.grid(eta=[2e-3]), (0,), 10,
                             {"M": 7, sweep.TRAIN_ARGS: ("--optimizer", "muon", "--lr", "3e-3")})
    fresh = sweep.train_argv(job, state="fresh")
    assert fresh[fresh.index("train"):] == ["train", "--out", str(job.out), "--seed", "0", "--epochs", "10",
                                            "--eta", "0.002", "--M", "7", "--optimizer", "muon", "--lr", "3e-3"]
    resumed = sweep.train_argv(job, state="resumable")
    assert resumed[resumed.index("train"):] == ["train", "--out", str(job.out), "--resume", "--epochs", "10",
                                                "--optimizer", "muon", "--lr", "3e-3"]


def test_a_sweep_stopped_after_a_run_failed_exits_1(tmp_path):
    """Two processes: seed 1's train fails at once (exit 3), seed 0 trains; a stop then ends the sweep with
    exit 1, not 130, and says that a run failed: there is more to look at than a rerun."""
    root = tmp_path / "root"
    wrapper = tmp_path / "python-seed1-fails"
    wrapper.write_text(f'#!/bin/sh\ncase "$*" in *"--seed 1 "*) exit 3;; esac\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    argv = [sys.executable, str(ROOT / "cli.py"), "sweep", str(root), "--jobs", "2", *LONG[:-4],
            "--seeds", "0-1", "--epochs", "5000", "--python", str(wrapper)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    _child_pid(root, proc, rows=40)                                  # seed 0 well under way: seed 1 long failed
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert "sweep stopped by SIGINT" in last and "1 run(s) failed" in last and "Traceback" not in err, err


def test_a_batch_stopped_after_some_of_its_runs_diverged_exits_1(tmp_path):
    """sweep --batch, one process: the eta = 1e7 runs of the stack diverge at once, the others train; a stop
    then exits 1 (a run failed), not 130, and counts the diverged runs as such, not as 'not started'."""
    import time
    root = tmp_path / "root"
    argv = [sys.executable, str(ROOT / "cli.py"), "sweep", str(root), "--eta", "1e7,2e-4", "--seeds", "0-1",
            "--epochs", "5000", "--M", "11", "--K", "64", "--windows", "3", "--batch", "--jobs", "1",
            "--", "--optimizer", "sgd"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    logs = [root / f"eta0.0002_actsqr_M11_seed{s}" / "metrics.jsonl" for s in (0, 1)]
    t0 = time.time()
    while not all(m.is_file() and m.read_text().count("\n") >= 30 for m in logs):
        assert proc.poll() is None and time.time() - t0 < 60, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    last = err.strip().splitlines()[-1]
    assert proc.returncode == 1, err
    assert "2 of their batch(es) had diverged" in last and "0 not started" in last, last
    assert "2 run(s) failed" in last and "Traceback" not in err, err


@pytest.mark.parametrize("batch", [False, True])
def test_a_resumed_run_of_a_no_resume_state_sweep_drops_its_resume_state(tmp_path, batch):
    """sweep --no-resume-state deletes each run's resume.npz when it finishes, a run it resumes included
    (its command is train --resume ... --no-resume-state; a batch member's likewise): runs trained to
    epoch 4 with their resume state, then continued to 8 by such a sweep, keep final.npz only."""
    root = tmp_path / "root"
    base = [sys.executable, str(ROOT / "cli.py"), "sweep", str(root), "--M", "7", "--K", "16", "--eta", "2e-3",
            "--seeds", "0-1", *(["--batch"] if batch else [])]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    subprocess.run(base + ["--epochs", "4"], check=True, capture_output=True, cwd=ROOT, env=env)
    assert sorted(p.name for p in root.glob("*/checkpoints/resume.npz")) == ["resume.npz"] * 2
    r = subprocess.run(base + ["--epochs", "8", "--no-resume-state"], capture_output=True, text=True, cwd=ROOT,
                       env=env)
    assert r.returncode == 0, r.stderr
    assert '"resumed": 2' in r.stdout
    assert not list(root.glob("*/checkpoints/resume.npz"))
    assert len(list(root.glob("*/checkpoints/final.npz"))) == 2


def test_a_run_stopped_by_a_signal_sent_to_it_is_reported_as_stopped_and_resumable(tmp_path):
    """Someone signals the train process itself (not the sweep): the run saves its resume state and exits
    130; the sweep (exit 1: a run did not finish) says STOPPED, not FAILED, and that running the same
    command again continues it, which it then does (resumed, not restarted)."""
    root = tmp_path / "root"
    argv = [sys.executable, str(ROOT / "cli.py"), "sweep", str(root), *LONG[:-2], "--epochs", "5000"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    os.kill(_child_pid(root, proc, rows=20), signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "STOPPED eta0_actsqr_M11_seed0 (exit 130" in err and "FAILED" not in err, err
    assert "1 of 1 runs failed (1 of them stopped by a signal sent to the run" in err, err
    assert json.loads(out.splitlines()[-1])["failed"][0]["stopped"] is True
    assert (root / "eta0_actsqr_M11_seed0" / "checkpoints" / "resume.npz").is_file()
    r = subprocess.run(argv + ["--plan"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "--resume --epochs 5000" in r.stdout, r.stderr     # continued, not restarted


def test_a_stop_names_the_command_that_was_stopped(tmp_path):
    """run_jobs' stop message names its caller: reproduce's runs said 'sweep stopped by SIGINT'."""
    root = tmp_path / "root"
    code = ("import sys; from pathlib import Path; from tianref.experiments import sweep; "
            "jobs = sweep.make_jobs(Path(sys.argv[1]), sweep.grid(eta=[0.0], act=['sqr'], M=[11]), (0,), 100000, "
            "{'K': 64, 'windows': '3'}); "
            "sweep.run_jobs(jobs, 1, sys.executable, label='reproduce')")
    proc = subprocess.Popen([sys.executable, "-c", code, str(root)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    _child_pid(root, proc, rows=10)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert "reproduce stopped by SIGINT: 1 running run(s) saved their resume state" in err, err
    assert "sweep stopped" not in err
