"""sweep --slurm / reproduce --slurm: a valid bash job-array script whose task i runs exactly the i-th
--plan command (checked by running the script with SLURM_ARRAY_TASK_ID set and a stub interpreter
that records its arguments), with per-task logs; nothing to write when every run is finished."""
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash")


def cli(*args):
    return subprocess.run([sys.executable, str(REPO / "cli.py"), *map(str, args)], capture_output=True,
                          text=True, cwd=REPO, timeout=60)


@pytest.fixture
def stub(tmp_path):
    """An 'interpreter' that appends its argv (one JSON line) to $STUB_LOG."""
    p = tmp_path / "stub.sh"
    p.write_text('#!/bin/bash\n'
                 'python3 -c \'import json, os, sys; os.write(1, (json.dumps(sys.argv[1:]) + "\\n").encode())\' '
                 '"$@" >> "$STUB_LOG"\n')   # one write: a line is never split (print makes two when unbuffered)
    p.chmod(0o755)
    return p


def run_task(script, i, stub_log):
    env = dict(os.environ, SLURM_ARRAY_TASK_ID=str(i), STUB_LOG=str(stub_log))
    env.pop("SLURM_CPUS_PER_TASK", None)
    return subprocess.run([BASH, str(script)], capture_output=True, text=True, env=env, timeout=30)


SWEEP = ["--eta", "2e-4,0", "--seeds", "0-2", "--M", "7", "--K", "16", "--epochs", "5"]


def test_sweep_slurm_script_runs_command_i_for_task_i(tmp_path, stub):
    root, script = tmp_path / "runs", tmp_path / "array.sh"
    plan = cli("sweep", root, *SWEEP, "--python", stub, "--plan")
    assert plan.returncode == 0, plan.stderr
    commands = [shlex.split(ln) for ln in plan.stdout.splitlines()]
    assert len(commands) == 6
    res = cli("sweep", root, *SWEEP, "--python", stub, "--slurm", script)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out == {"slurm": str(script), "runs": 6, "submit": f"sbatch {script}"}
    text = script.read_text()
    assert subprocess.run([BASH, "-n", str(script)]).returncode == 0          # valid bash
    assert "#SBATCH --array=0-5\n" in text and f"#SBATCH --output={root}/_logs/slurm-%A_%a.out" in text
    assert (root / "_logs").is_dir()                                          # exists before sbatch opens it
    assert os.access(script, os.X_OK)
    for i, argv in enumerate(commands):
        log = tmp_path / f"task{i}.jsonl"
        r = run_task(script, i, log)
        assert r.returncode == 0, r.stderr
        assert json.loads(log.read_text().strip()) == argv[1:]               # exactly command i
        name = Path(argv[argv.index("--out") + 1]).name
        assert (root / "_logs" / f"{name}.log").is_file()                    # the task's own log
    r = run_task(script, 6, tmp_path / "none.jsonl")
    assert r.returncode == 2 and "outside the array 0-5" in r.stderr
    env = {k: v for k, v in os.environ.items() if k != "SLURM_ARRAY_TASK_ID"}
    r = subprocess.run([BASH, str(script)], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "sbatch" in r.stderr


def test_slurm_threads_follow_cpus_per_task(tmp_path):
    script = tmp_path / "a.sh"
    probe = tmp_path / "probe.sh"
    probe.write_text('#!/bin/bash\necho "$OMP_NUM_THREADS $OPENBLAS_NUM_THREADS" >> "$STUB_LOG"\n')
    probe.chmod(0o755)
    assert cli("sweep", tmp_path / "r", *SWEEP, "--python", probe, "--slurm", script).returncode == 0
    env = dict(os.environ, SLURM_ARRAY_TASK_ID="0", SLURM_CPUS_PER_TASK="4", STUB_LOG=str(tmp_path / "t"))
    assert subprocess.run([BASH, str(script)], env=env).returncode == 0
    assert (tmp_path / "t").read_text().split() == ["4", "4"]


def test_reproduce_slurm_matches_its_plan(tmp_path, stub):
    root, script = tmp_path / "runs", tmp_path / "r.sh"
    args = ["reproduce", "--scale", "ci", "--section", "headline", "--root", root, "--python", stub]
    commands = [shlex.split(ln) for ln in cli(*args, "--plan").stdout.splitlines()]
    res = cli(*args, "--slurm", script)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["runs"] == len(commands) == 4
    assert subprocess.run([BASH, "-n", str(script)]).returncode == 0
    for i in (0, 3):
        log = tmp_path / f"t{i}.jsonl"
        assert run_task(script, i, log).returncode == 0
        assert json.loads(log.read_text()) == commands[i][1:]


def test_nothing_unfinished_writes_nothing(tmp_path):
    root, script = tmp_path / "runs", tmp_path / "a.sh"
    small = ["--eta", "0", "--seeds", "0", "--M", "5", "--K", "8", "--epochs", "3", "--windows", "3"]
    assert cli("sweep", root, *small).returncode == 0
    res = cli("sweep", root, *small, "--slurm", script)
    assert res.returncode == 0 and json.loads(res.stdout) == {"slurm": None, "runs": 0, "submit": None}
    assert "nothing to submit" in res.stderr and str(script) in res.stderr        # said, not only {"slurm": null}
    assert not script.exists()


def test_plan_and_slurm_together_is_exit_2(tmp_path):
    res = cli("sweep", tmp_path / "r", *SWEEP, "--plan", "--slurm", tmp_path / "a.sh")
    assert res.returncode == 2 and res.stderr.startswith("Error:") and len(res.stderr.splitlines()) == 1


def test_a_path_that_would_break_a_script_line_is_refused_before_anything_is_made(tmp_path):
    """A newline in ROOT ended the #SBATCH --output line and the '# Written by' comment of the script, so the
    rest of the path ran as a command when the script ran (an attacker's 'touch PWNED'); --plan printed
    such a command over two lines. A control character in ROOT, --root, --out or --slurm is refused, and a
    ROOT with a space (an #SBATCH line is read as words) is refused for --slurm; nothing is created."""
    evil = f"{tmp_path}/r\ntouch {tmp_path}/PWNED #"
    small = ["--eta", "0", "--M", "11", "--K", "16", "--seeds", "0", "--epochs", "2"]
    for args, says in ((["sweep", evil, *small, "--slurm", tmp_path / "s.sh"], "ROOT"),
                       (["sweep", evil, *small, "--plan"], "ROOT"),
                       (["reproduce", "--section", "headline", "--scale", "smoke", "--root", evil, "--slurm",
                         tmp_path / "s.sh"], "--root"),
                       (["train", "--M", "7", "--K", "8", "--epochs", "1", "--out", f"{tmp_path}/a\tb"], "--out"),
                       (["sweep", tmp_path / "ok", *small, "--slurm", f"{tmp_path}/s\n.sh"], "--slurm"),
                       (["sweep", tmp_path / "my runs", *small, "--slurm", tmp_path / "s.sh"], "space"),
                       (["sweep", tmp_path / "r%j", *small, "--slurm", tmp_path / "s.sh"], "'%'"),
                       (["sweep", tmp_path / "ok", *small, "--plan", "--python", "/usr/bin/python3\ntouch X"],
                        "--python"),
                       (["sweep", tmp_path / "ok", *small, "--group", f"table:{tmp_path}/a\nb.json", "--plan"],
                        "table:"),
                       (["train", "--M", "7", "--K", "8", "--out", tmp_path / "x", "--init-from",
                         f"{tmp_path}/a\nb.npz"], "--init-from")):
        r = cli(*args)
        assert r.returncode == 2 and says in r.stderr, r.stderr
        assert "control character" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr                  # shown escaped: one line
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_written_by_comment_escapes_what_would_end_it():
    from tianref.errors import one_line
    assert one_line("sweep a\nrm -rf x\t#\x1b") == "sweep a\\nrm -rf x\\t#\\x1b"
    assert one_line("plain é ü") == "plain é ü"
