"""`sweep` and `reproduce` under bad values, stops, kill -9 and half-finished runs.

Each test is named after one attack case (docs/reliability.md maps the guarantees to them).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tianref.cli import main
from tianref.experiments import sweep
from tianref.rundir import RunLock, lock_holder

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--eta", "0", "--act", "sqr", "--M", "7", "--K", "16", "--windows", "3", "--seeds", "0",
        "--epochs", "6"]
LONG = ["--eta", "0", "--act", "sqr", "--M", "11", "--K", "64", "--windows", "3", "--seeds", "0",
        "--epochs", "200"]
RUN = "eta0_actsqr_M11_seed0"


def _cupy_usable():
    try:
        import cupy
        cupy.zeros(1)
        return True
    except Exception:
        return False


def _cli(args):
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize("plan", [False, True], ids=["run", "plan"])
@pytest.mark.parametrize("bad, fragment", [
    (["--eta", "-1"], "--eta must be >= 0"),
    (["--act", "tanh"], "tanh"),
    (["--M", "1"], "--M must be >= 2"),
    (["--train-frac", "2"], "--train-frac must be in (0, 1)"),
    (["--xp", "cupy"], "cupy"),
], ids=["eta-1", "act-tanh", "M1", "train-frac-2", "cupy-without-gpu"])
def test_sweep_bad_value_is_refused_before_anything_starts(tmp_path, bad, fragment, plan):
    if "cupy" in bad and _cupy_usable():
        pytest.skip("a usable GPU exists here")
    if "cupy" in bad and plan:
        pytest.skip("a plan runs elsewhere: the device is not checked (test_a_plan_for_gpu_nodes_...)")
    root = tmp_path / "root"
    r = _cli(["sweep", str(root), *TINY, *bad] + (["--plan"] if plan else []))
    assert r.exit_code == 2, r.output
    assert fragment in r.stderr and "Traceback" not in r.output and r.stdout == ""
    assert not root.exists()


@pytest.mark.skipif(_cupy_usable(), reason="a usable GPU exists here")
def test_reproduce_checks_xp_cupy_before_anything_starts(tmp_path):
    root = tmp_path / "root"
    r = _cli(["reproduce", "--section", "headline", "--scale", "ci", "--root", str(root), "--xp", "cupy"])
    assert r.exit_code == 2 and "cupy" in r.stderr and "Traceback" not in r.output
    assert not root.exists()


@pytest.mark.skipif(_cupy_usable(), reason="a usable GPU exists here")
@pytest.mark.parametrize("cmd", ["sweep", "reproduce"])
def test_a_plan_for_gpu_nodes_is_printed_without_opening_the_gpu_here(tmp_path, cmd):
    """--plan, like --slurm, prints commands that run elsewhere: the values are checked, the device is not
    (it was refused for want of CuPy here while --slurm was accepted)."""
    root = tmp_path / "root"
    args = ([cmd, str(root), *TINY] if cmd == "sweep" else
            [cmd, "--section", "headline", "--scale", "ci", "--root", str(root)])
    r = _cli(args + ["--xp", "cupy", "--plan"])
    assert r.exit_code == 0 and r.stdout.count("--xp cupy") >= 1, r.output
    assert not root.exists()


def test_crash_after_the_last_row_before_final_npz_is_not_done(tmp_path):
    root = tmp_path / "root"
    assert _cli(["sweep", str(root), *TINY]).exit_code == 0
    run = root / "eta0_actsqr_M7_seed0"
    rows = (run / "metrics.jsonl").read_bytes()
    (run / "checkpoints" / "final.npz").unlink()          # crashed between the last row and final.npz
    (job,) = sweep.make_jobs(root, [{"eta": 0.0, "act": "sqr", "M": 7}], (0,), 6,
                             {"K": 16, "windows": "3"})
    assert sweep.job_state(job) == "resumable"
    r = _cli(["sweep", str(root), *TINY])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ran"] == 1
    assert (run / "checkpoints" / "final.npz").is_file() and (run / "metrics.jsonl").read_bytes() == rows
    (run / "checkpoints" / "final.npz").unlink()          # ... and without resume state: rerun
    (run / "checkpoints" / "resume.npz").unlink()
    assert sweep.job_state(job) == "fresh"
    assert json.loads(_cli(["sweep", str(root), *TINY]).stdout)["ran"] == 1
    assert (run / "checkpoints" / "final.npz").is_file() and (run / "metrics.jsonl").read_bytes() == rows


def test_sweep_rerun_never_overwrites_a_folder_in_use(tmp_path):
    root = tmp_path / "root"
    run = root / "eta0_actsqr_M7_seed0"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text('{"epoch": 0}\n')     # a partial run, being written by someone
    with RunLock(str(run)):
        r = _cli(["sweep", str(root), *TINY])
    assert r.exit_code == 1 and f"in use by process {os.getpid()}" in r.stderr
    assert (run / "metrics.jsonl").read_text() == '{"epoch": 0}\n'



def _tree(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name != ".lock"}


@pytest.mark.parametrize("keep", [False, True], ids=["no-resume-state", "resume-state"])
def test_sweep_rerun_with_fewer_epochs_never_drops_rows(tmp_path, keep):
    """A finished 6-epoch run (with or without its resume state) met by the same sweep with --epochs 4:
    restarting (--overwrite) or resuming it would drop rows 5, 6 (with --epochs 5, row 6). Refused before
    anything starts, with and without --plan; the tree byte-identical."""
    root = tmp_path / "root"
    extra = [] if keep else ["--no-resume-state"]
    assert _cli(["sweep", str(root), *TINY, *extra]).exit_code == 0
    before = _tree(root)
    for plan, lowered in (([], 4), (["--plan"], 4), ([], 5)):     # 5: one row past E, the edge of the rule
        r = _cli(["sweep", str(root), *TINY[:-1], str(lowered), *extra, *plan])
        assert r.exit_code == 2, r.output
        assert f"holds this run's rows 0..6, past the --epochs {lowered}" in r.stderr and r.stdout == ""
        assert _tree(root) == before



def test_a_run_finished_by_another_sweep_meanwhile_is_skipped_not_overwritten(tmp_path):
    """Two sweeps on one ROOT: this one found seed 0 half-written by the other (no resume state: to be
    restarted with --overwrite) and trains seed 1 first; by the time seed 0's turn comes the other sweep
    has finished it. It is skipped, its files untouched, never restarted with --overwrite."""
    root = tmp_path / "root"
    jobs = sweep.make_jobs(root, [{"eta": 0.0, "act": "sqr", "M": 7}], (1, 0), 6, {"K": 16, "windows": "3"})
    later, first = jobs[1], jobs[0]
    assert sweep.run_jobs([later])["ran"] == 1                     # the other sweep's finished run ...
    finished = tmp_path / "finished"
    later.out.rename(finished)
    (root / sweep.LOG_DIR / f"{later.name}.log").unlink()
    shutil.copytree(finished, later.out)                           # ... half-written when we start
    (later.out / "metrics.jsonl").write_bytes(b"".join((finished / "metrics.jsonl").read_bytes()
                                                       .splitlines(True)[:3]))
    shutil.rmtree(later.out / "checkpoints")
    assert sweep.job_state(later) == "fresh" and sweep.train_argv(later)[-1] == "--overwrite"

    def report(msg):                                               # the other sweep finishes it now
        if msg.startswith(f"start {first.name}"):
            shutil.rmtree(later.out)
            shutil.copytree(finished, later.out)
    res = sweep.run_jobs([first, later], report=report)
    assert res["ran"] == 1 and res["skipped"] == 1 and not res["failed"], res
    assert _tree(later.out) == _tree(finished)
    assert not (root / sweep.LOG_DIR / f"{later.name}.log").exists()


def test_a_folder_that_holds_another_run_by_its_turn_is_a_failed_run_never_started(tmp_path):
    """This sweep found seed 0's folder empty; by its turn another process wrote a run of another
    configuration there. Its state, taken again, refuses the folder: the job is failed and not started (no
    process, no log, returncode None), the other run untouched."""
    root = tmp_path / "root"
    jobs = sweep.make_jobs(root, [{"eta": 0.0, "act": "sqr", "M": 7}], (1, 0), 6, {"K": 16, "windows": "3"})
    later, first = jobs[1], jobs[0]
    (foreign,) = sweep.make_jobs(tmp_path / "other", [{"eta": 0.0, "act": "sqr", "M": 9}], (0,), 6,
                                 {"K": 16, "windows": "3"})
    assert sweep.run_jobs([foreign])["ran"] == 1
    assert sweep.job_state(later) == "fresh"                      # nothing there when the sweep starts

    def report(msg):                                              # the other process writes it now
        if msg.startswith(f"start {first.name}"):
            shutil.copytree(foreign.out, later.out)
    res = sweep.run_jobs([first, later], report=report)
    assert res["ran"] == 1 and res["skipped"] == 0, res
    (f,) = res["failed"]
    assert f["name"] == later.name and f["returncode"] is None, f
    assert f["log"].startswith("(not started: ") and "holds a different run" in f["log"], f
    assert _tree(later.out) == _tree(foreign.out)
    assert not (root / sweep.LOG_DIR / f"{later.name}.log").exists()


# --- stopping a sweep ----------------------------------------------------------------------------

def _start_sweep(root):
    return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "sweep", str(root), *LONG], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _child_pid(root, sweep_proc, rows=20, timeout=60):
    """The running train's pid (from its lock), once it has logged ``rows`` rows."""
    run, t0 = root / RUN, time.time()
    while time.time() - t0 < timeout:
        m = run / "metrics.jsonl"
        if m.is_file() and m.read_text().count("\n") >= rows:
            pid = lock_holder(str(run))
            if pid:
                return pid
        assert sweep_proc.poll() is None, sweep_proc.communicate()
        time.sleep(0.01)
    raise AssertionError("the sweep's child never got going")


def _gone(pid, timeout=30):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            state = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return True
        if "\nState:\tZ" in state:                            # exited, not yet reaped
            return True
        time.sleep(0.02)
    return False


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("ref")
    assert _cli(["sweep", str(root), *LONG]).exit_code == 0
    return (root / RUN / "metrics.jsonl").read_bytes()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_stopped_sweep_stops_its_children_which_save_resume_state(tmp_path, reference, sig):
    root = tmp_path / "root"
    proc = _start_sweep(root)
    child = _child_pid(root, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig and "sweep stopped by" in err and "Traceback" not in err, err
    assert _gone(child)
    assert (root / RUN / "checkpoints" / "resume.npz").is_file()
    assert not (root / RUN / "checkpoints" / "final.npz").exists()     # stopped, not finished
    log = (root / "_logs" / f"{RUN}.log").read_text()         # the child got the sweep's own signal (a SIGTERM
    assert f"stopped by {signal.Signals(sig).name} at epoch" in log, log        # was passed on as SIGINT)
    r = _cli(["sweep", str(root), *LONG])                  # the rerun resumes and ends identical
    assert r.exit_code == 0, r.output
    assert (root / RUN / "metrics.jsonl").read_bytes() == reference


def test_a_stopped_batch_counts_its_runs_not_started_as_not_started(tmp_path):
    """One train-batch process holding two stacks: seed 0 resumed from its resume state (trained first)
    and seeds 1, 2 fresh. Stopped during the first stack, the message counts one run that saved its
    resume state and two not started (rolled back), not three saved."""
    root = tmp_path / "root"
    argv = [sys.executable, str(ROOT / "cli.py"), "sweep", str(root), "--batch", *LONG[:-1], "5000"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _child_pid(root, proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert (root / RUN / "checkpoints" / "resume.npz").is_file()
    seeds = argv.index("--seeds") + 1
    argv[seeds] = "0-2"
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _child_pid(root, proc, rows=int(json.loads((root / RUN / "metrics.jsonl").read_text()
                                               .splitlines()[-1])["epoch"]) + 20)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "1 running run(s) saved their resume state, 2 not started" in err, err
    for s in (1, 2):
        assert not (root / RUN.replace("seed0", f"seed{s}") / "metrics.jsonl").exists()


def test_kill_9_of_the_sweep_takes_its_children_with_it(tmp_path):
    """A child that would run for ~10 s more is gone within 5 s of kill -9 to its sweep, and it
    saved its resume state on the way out (SIGTERM from the kernel when its parent died)."""
    root = tmp_path / "root"
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "sweep", str(root),
                             *LONG[:-1], "5000"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child = _child_pid(root, proc)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert _gone(child, timeout=5), "the sweep's child outlived it"
    finally:
        try:
            os.kill(child, signal.SIGKILL)
        except OSError:
            pass
    ck = root / RUN / "checkpoints"
    assert (ck / "resume.npz").is_file() and not (ck / "final.npz").exists()


@pytest.mark.skipif(_cupy_usable(), reason="a usable GPU exists here")
def test_slurm_script_for_gpu_nodes_is_validated_without_opening_the_gpu_here(tmp_path):
    """--slurm is written on a login node for GPU nodes: the values are checked, the device is not."""
    root, script = tmp_path / "root", tmp_path / "job.sh"
    r = _cli(["sweep", str(root), *TINY, "--xp", "cupy", "--slurm", str(script)])
    assert r.exit_code == 0, r.output
    assert script.is_file()
    r = _cli(["sweep", str(root), *TINY, "--xp", "cupy", "--eta", "-1", "--slurm", str(tmp_path / "bad.sh")])
    assert r.exit_code == 2 and "--eta must be >= 0" in r.stderr and not (tmp_path / "bad.sh").exists()


def _racing_python(tmp_path, finished_run=None):
    """An interpreter for run_jobs that plays a second sweep winning the race for the run: before train
    starts, another process takes the run's lock (and, given ``finished_run``, writes that finished run
    into the folder, as the other sweep's train would), and keeps it until train has been refused."""
    script = tmp_path / "racing_python"
    script.write_text(f"""#!{sys.executable}
import os, subprocess, sys, time
out = sys.argv[sys.argv.index("--out") + 1]
holder = subprocess.Popen([{sys.executable!r}, "-c", '''
import os, shutil, sys, time
from tianref.rundir import RunLock
out, src = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
lock = RunLock(out)
lock.acquire()
if src:
    shutil.copytree(src, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".lock"))
print("held", flush=True)
time.sleep(2)
''', out, {str(finished_run or "")!r}], stdout=subprocess.PIPE, text=True)
assert holder.stdout.readline() == "held\\n"
rc = subprocess.call([{sys.executable!r}, *sys.argv[1:]])
holder.wait()
sys.exit(rc)
""")
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize("other_finishes", [False, True], ids=["still-training", "finished-there"])
def test_a_child_refused_because_another_sweep_took_its_run_is_in_use_not_failed(tmp_path, other_finishes):
    """Two sweeps on one tree can both find a run free; the second's train is refused (in use). The sweep
    reports that run as in use (still a failure, exit 1, but named so), or as skipped when the other
    process has finished it by the time the refusal is seen; never as a failure of its own."""
    finished = None
    if other_finishes:
        ref = sweep.make_jobs(tmp_path / "ref", [{"M": 7}], (0,), 3, {"K": 4, "windows": "3"})
        assert sweep.run_jobs(ref, 1, sys.executable)["ran"] == 1
        finished = ref[0].out
    jobs = sweep.make_jobs(tmp_path / "root", [{"M": 7}], (0,), 3, {"K": 4, "windows": "3"})
    said = []
    out = sweep.run_jobs(jobs, 1, _racing_python(tmp_path, finished), report=said.append)
    log = (tmp_path / "root" / sweep.LOG_DIR / f"{jobs[0].name}.log").read_text()
    assert "is in use by" in log
    if other_finishes:
        assert out["failed"] == [] and out["skipped"] == 1 and out["ran"] == 0, out
        assert any(m.startswith(f"skip {jobs[0].name}: another process held") for m in said), said
        assert sweep.job_state(jobs[0]) == "done"
    else:
        assert [f.get("in_use") for f in out["failed"]] == [True] and out["failed"][0]["returncode"] == 2
        assert any(f"IN USE {jobs[0].name}: not trained here" in m for m in said), said
        assert not any("FAILED" in m for m in said), said


def _scripted_python(tmp_path, body: str) -> str:
    """An interpreter for run_jobs running ``body`` (Python; ARGV = the argv run_jobs gave it, REAL = this
    interpreter) in place of the command."""
    script = tmp_path / "scripted_python"
    script.write_text(f"#!{sys.executable}\nimport os, shlex, shutil, subprocess, sys\nARGV = sys.argv[1:]\n"
                      f"REAL = {sys.executable!r}\n" + body)
    script.chmod(0o755)
    return str(script)


def test_a_refusal_naming_this_sweeps_own_child_is_not_read_as_in_use(tmp_path):
    """The log is shared: when another sweep's child is refused because this sweep's child holds the run, the
    refusal (naming this child's pid) lands in this run's log. If this child then fails, that is this run's
    failure, not 'IN USE'."""
    jobs = sweep.make_jobs(tmp_path / "root", [{"M": 7}], (0,), 3, {"K": 4, "windows": "3"})
    body = ("out = ARGV[ARGV.index('--out') + 1]\n"
            "print(f'Error: --out {out} is in use by process {os.getpid()} (it holds {out}/.lock); wait', "
            "flush=True)\n"
            "sys.exit(1)\n")
    said = []
    out = sweep.run_jobs(jobs, 1, _scripted_python(tmp_path, body), report=said.append)
    assert out["failed"][0]["returncode"] == 1 and not out["failed"][0].get("in_use"), out
    assert any(m.startswith("[1/1] FAILED") for m in said) and not any("IN USE" in m for m in said), said


def test_a_batch_member_refused_in_use_and_finished_elsewhere_is_skipped_not_done(tmp_path):
    """A batch whose first member was refused (another process held it, and finished it) and whose second
    trained: the first is skipped as the other process's, never counted as ran by this sweep, and the
    refusal is found however much the other process wrote to the shared log after it (heartbeats)."""
    ref = sweep.make_jobs(tmp_path / "ref", [{"M": 7}], (0,), 3, {"K": 4, "windows": "3"})
    assert sweep.run_jobs(ref, 1, sys.executable)["ran"] == 1
    jobs = sweep.make_jobs(tmp_path / "root", [{"M": 7}], (0, 1), 3, {"K": 4, "windows": "3"})
    body = (f"members = [shlex.split(ARGV[i + 1]) for i, a in enumerate(ARGV) if a == '--member']\n"
            "logs = ARGV[ARGV.index('--log-dir') + 1]\n"
            "first = members[0][members[0].index('--out') + 1]\n"
            f"shutil.copytree({str(ref[0].out)!r}, first, dirs_exist_ok=True)\n"
            "with open(os.path.join(logs, os.path.basename(first) + '.log'), 'a') as f:\n"
            "    f.write(f'Error: --out {first} is in use by process 1 (it holds {first}/.lock); wait\\n')\n"
            "    f.write('train: heartbeat of the other process\\n' * 2000)\n"
            "rc = subprocess.call([REAL, ARGV[0], 'train', *members[1]])\n"
            "sys.exit(2 if rc == 0 else rc)\n")
    said = []
    out = sweep.run_jobs(jobs, 1, _scripted_python(tmp_path, body), batch=True, report=said.append)
    assert out["failed"] == [] and out["ran"] == 1 and out["skipped"] == 1, (out, said)
    assert any(m.startswith(f"skip {jobs[0].name}: another process held") for m in said), said
    assert sweep.job_state(jobs[1]) == "done"


@pytest.mark.parametrize("partial", [False, True], ids=["fresh", "overwrite"])
def test_a_run_another_sweep_finished_before_this_childs_lock_is_skipped_not_trained_again(tmp_path, partial):
    """Between a sweep's look at a run (fresh, or partial: --overwrite planned) and its train taking the
    folder's lock, another sweep can finish the run. The child then got 'holds a finished run' (FAILED,
    exit 2) or, with --overwrite, replaced the finished run and trained it again. The sweep's trains carry
    --if-unfinished: under the lock they find this very run complete, change nothing, and the sweep counts
    the run as skipped."""
    args = {"K": 4, "windows": "3"}
    ref = sweep.make_jobs(tmp_path / "ref", [{"M": 7}], (0,), 3, args)
    assert sweep.run_jobs(ref, 1, sys.executable)["ran"] == 1
    jobs = sweep.make_jobs(tmp_path / "root", [{"M": 7}], (0,), 3, args)
    if partial:                                  # a shorter run without resume state: --overwrite is planned
        short = sweep.make_jobs(tmp_path / "root", [{"M": 7}], (0,), 2, dict(args, no_resume_state=True))
        assert sweep.run_jobs(short, 1, sys.executable)["ran"] == 1
        assert "--overwrite" in sweep.train_argv(jobs[0], sys.executable)
    body = (f"shutil.rmtree({str(jobs[0].out)!r}, ignore_errors=True)\n"      # the other sweep's finished run
            f"shutil.copytree({str(ref[0].out)!r}, {str(jobs[0].out)!r})\n"
            "sys.exit(subprocess.call([REAL, *ARGV]))\n")
    before = {p.name: p.read_bytes() for p in ref[0].out.rglob("*") if p.is_file() and p.name != ".lock"}
    said = []
    out = sweep.run_jobs(jobs, 1, _scripted_python(tmp_path, body), report=said.append)
    assert out["failed"] == [] and out["ran"] == 0 and out["skipped"] == 1, (out, said)
    assert any(m.startswith(f"skip {jobs[0].name}: finished in another process") for m in said), said
    after = {p.name: p.read_bytes() for p in jobs[0].out.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before                       # the other process's run, untouched: trained once
    log = (tmp_path / "root" / sweep.LOG_DIR / f"{jobs[0].name}.log").read_text()
    assert "--if-unfinished" in log.splitlines()[0] and '"already_complete": true' in log


def test_if_unfinished_leaves_this_very_run_complete_and_nothing_else(tmp_path):
    """train --if-unfinished: a folder holding this run complete is left as it is (exit 0, its summary with
    "already_complete": true); another run there is refused as without it (or replaced with --overwrite);
    with --resume it is refused, as --resume leaves a complete run untouched by itself."""
    small = ["--M", "7", "--K", "8", "--epochs", "3", "--windows", "3"]
    run = tmp_path / "run"
    assert _cli(["train", *small, "--out", str(run)]).exit_code == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    r = _cli(["train", *small, "--out", str(run), "--if-unfinished"])
    assert r.exit_code == 0 and json.loads(r.stdout.splitlines()[-1])["already_complete"] is True, r.output
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    r = _cli(["train", *small, "--out", str(run), "--overwrite", "--if-unfinished"])
    assert r.exit_code == 0 and '"already_complete": true' in r.stdout
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    r = _cli(["train", *small, "--seed", "1", "--out", str(run), "--if-unfinished"])     # another run
    assert r.exit_code == 2 and "holds a finished run" in r.stderr
    r = _cli(["train", *small, "--seed", "1", "--out", str(run), "--overwrite", "--if-unfinished"])
    assert r.exit_code == 0 and "already_complete" not in r.stdout
    assert json.loads((run / "config.json").read_text())["config"]["seed"] == 1
    r = _cli(["train", "--out", str(run), "--resume", "--if-unfinished"])
    assert r.exit_code == 2 and "--if-unfinished is for a start" in r.stderr
    # checked as --resume checks a run: a config.json edited since (its settings no longer give its
    # fingerprint) is not "this run", so --overwrite replaces it
    cfg = json.loads((run / "config.json").read_text())
    cfg["config"]["lr"] = 0.5
    (run / "config.json").write_text(json.dumps(cfg))
    r = _cli(["train", *small, "--seed", "1", "--out", str(run), "--overwrite", "--if-unfinished"])
    assert r.exit_code == 0 and "already_complete" not in r.stdout
    assert json.loads((run / "config.json").read_text())["config"]["lr"] != 0.5
    # a run that diverged is finished too: left as it is, said so
    div = tmp_path / "div"
    diverging = ["--M", "7", "--K", "8", "--epochs", "5", "--windows", "3", "--lr", "1e6", "--out", str(div)]
    assert _cli(["train", *diverging]).exit_code == 1
    before = {p: p.read_bytes() for p in div.rglob("*") if p.is_file()}
    r = _cli(["train", *diverging, "--if-unfinished"])
    assert r.exit_code == 0 and json.loads(r.stdout.splitlines()[-1])["already_diverged"] is True, r.output
    assert {p: p.read_bytes() for p in div.rglob("*") if p.is_file()} == before


def test_a_run_held_by_another_process_is_taken_up_again_when_it_lets_go(tmp_path):
    """A run another process holds when this sweep reaches it is tried again once that process lets it go:
    here a process holds seed 0's folder until seed 1 (which this sweep trains meanwhile) has started, and
    seed 0 is then trained by this sweep; nothing is reported in use or failed. (It was reported IN USE at
    once, exit 1, though the other process let it go long before this sweep ended.)"""
    import subprocess as sp
    jobs = sweep.make_jobs(tmp_path / "root", [{"M": 7}], (0, 1), 40, {"K": 16, "windows": "3"})
    jobs[0].out.mkdir(parents=True)
    started = jobs[1].out / "config.json"
    holder = sp.Popen([sys.executable, "-c", "import os, time\nfrom tianref.rundir import RunLock\n"
                       f"RunLock({str(jobs[0].out)!r}).acquire(); print('held', flush=True)\n"
                       f"while not os.path.exists({str(started)!r}): time.sleep(0.02)"],
                      stdout=sp.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    said = []
    order = [jobs[0], jobs[1]]
    out = sweep.run_jobs(order, 1, sys.executable, report=said.append)
    holder.wait()
    assert out["failed"] == [] and out["ran"] == 2, (out, said)
    assert any(m.startswith(f"later {jobs[0].name}: its directory is in use by process {holder.pid}") for m in said)
    assert all(sweep.job_state(j) == "done" for j in jobs)


def test_a_sweep_reads_only_its_own_childs_already_finished_line(tmp_path):
    """The log of a run is shared by the sweeps on a tree: another sweep's child may write "already_complete"
    for the run this sweep's child trained. Only a line carrying this child's tag counts (without the tag, a
    race counted one run as skipped by both sweeps, and no sweep as its trainer)."""
    log, out = tmp_path / "r.log", tmp_path / "run"
    line = lambda tag, **kw: json.dumps({"out": str(out), "epochs": 3, "sweep_tag": tag, **kw})   # noqa: E731
    log.write_text("old line\n" + line("other", already_complete=True) + "\n" + line("mine") + "\n")
    assert sweep._found_finished(log, 0, out, "mine") is None
    assert sweep._found_finished(log, 0, out, "other") == "complete"
    with open(log, "a") as f:
        f.write(line("mine", already_diverged=True) + "\n")
    assert sweep._found_finished(log, 0, out, "mine") == "diverged"
    assert sweep._found_finished(log, log.stat().st_size, out, "mine") is None      # only since the child's start
    assert sweep._found_finished(log, 0, tmp_path / "another", "other") is None
