"""A SLURM job-array script for the unfinished runs of a sweep or a reproduction.

The runs of a sweep share nothing (``tianref.experiments.sweep``), so a cluster can run them as one
job array: task i executes exactly the i-th unfinished run's ``train`` command, the same command
``--plan`` prints on line i. The script is plain bash:

    #SBATCH --array=0-(N-1)                one task per unfinished run
    #SBATCH --output=ROOT/_logs/slurm-%A_%a.out   SLURM's own log of each task (the directory is
                                           made when the script is written)
    case $SLURM_ARRAY_TASK_ID in i) exec <train command i> >> ROOT/_logs/<run>.log 2>&1 ;; esac

Each run also appends to ROOT/_logs/<run>.log, the log a local sweep writes, and one BLAS/OpenMP
thread per CPU that SLURM gives the task is set (``--cpus-per-task``: ``--threads`` when given, else
1), which ``train`` follows unless the command carries ``--threads`` (given explicitly). Submit with
``sbatch FILE``; options given to sbatch on its command line (``--time``, ``--partition``) override
the ones in the file. Afterwards the local ``sweep``/``reproduce`` command finds the runs finished.
"""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from tianref.errors import InputError, one_line
from tianref.experiments import sweep

THREADS = sweep.THREAD_VARS


def unfinished(jobs, python: str = sys.executable, threads: int | None = None) -> list[tuple]:
    """[(job, argv)] for every job that is not done (or diverged), in the order of ``--plan``."""
    out = []
    for j in jobs:
        state = sweep.job_state(j)
        if state not in sweep.FINISHED:
            out.append((j, sweep.train_argv(j, python, state, threads=threads)))
    return out


def array_script(tasks: list[tuple], *, name: str, command: str = "", cpus: int = 1) -> str:
    """The job-array script for ``tasks`` = [(job, argv)] (at least one)."""
    if not tasks:
        raise InputError("no unfinished runs: nothing to put in a job array")
    log_dirs = sorted({str(j.out.parent / sweep.LOG_DIR) for j, _ in tasks})
    slurm_logs = Path(os.path.commonpath([str(j.out.parent) for j, _ in tasks])) / sweep.LOG_DIR
    if any(c.isspace() or not c.isprintable() or c == "%" for c in str(slurm_logs)):   # read as words, and %j
        raise InputError(f"--slurm: the runs' folder {str(slurm_logs.parent)!r} holds a space, a '%' or a "    # ... as
                         "control character, which the script's #SBATCH --output line cannot carry (SLURM "  # patterns
                         "splits it at a space and expands %j, %a, ...); choose a ROOT without them (or run "
                         "the commands of --plan)")
    gpu = any(dict(j.options).get("xp") == "cupy" for j, _ in tasks)
    n = len(tasks)
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={name}",
        f"#SBATCH --array=0-{n - 1}",
        f"#SBATCH --output={slurm_logs}/slurm-%A_%a.out",
        f"#SBATCH --cpus-per-task={cpus}",
    ]
    if gpu:
        lines.append("#SBATCH --gres=gpu:1")
    lines += [
        f"# {n} unfinished tianref run(s); task i runs the i-th command of --plan.",
        f"# Written by: {one_line(command)}" if command else "# Written by tianref.",
        "# Submit with: sbatch THIS_FILE (sbatch's own options, e.g. --time or --partition, override these).",
        "set -euo pipefail",
        f"mkdir -p {' '.join(shlex.quote(d) for d in log_dirs)}",
        *[f"export {v}=\"${{SLURM_CPUS_PER_TASK:-{cpus}}}\"" for v in THREADS],
        'task="${SLURM_ARRAY_TASK_ID:?SLURM_ARRAY_TASK_ID is not set: submit this file with sbatch}"',
        'case "$task" in',
    ]
    for i, (job, argv) in enumerate(tasks):
        log = job.out.parent / sweep.LOG_DIR / f"{job.name}.log"
        lines.append(f"  {i}) exec {shlex.join(argv)} >> {shlex.quote(str(log))} 2>&1 ;;")
    lines += [f'  *) echo "task $task is outside the array 0-{n - 1}" >&2; exit 2 ;;', "esac", ""]
    return "\n".join(lines)


def write_script(path, text: str) -> Path:
    """Write the script atomically (fsync'd, renamed over ``path``), executable by its owner under
    the user's umask; an OSError (a full disk) names ``path``."""
    from tianref.runs import atomic_write_bytes
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"--slurm {path}: directory {parent} does not exist")
    data = text.encode("utf-8")
    atomic_write_bytes(str(path), lambda f: f.write(data), mode=0o766)    # u+x as well as rw
    return path


def write_for_jobs(jobs, path, *, python: str = sys.executable, name: str = "tianref",
                   command: str = "", threads: int | None = None) -> dict:
    """Write the job-array script of the unfinished ``jobs`` to ``path`` (nothing when all are done).
    ``threads`` (--threads): every command carries it and each task asks for that many CPUs.

    Returns {"slurm": path or None, "runs": N unfinished, "submit": "sbatch PATH" or None}."""
    from tianref.paths import check_one_line
    from tianref.rundir import check_output_file
    check_one_line(path, "--slurm")
    check_output_file(path, "--slurm", make_parents=False)     # before any log directory is created
    tasks = unfinished(jobs, python, threads)
    if not tasks:
        return {"slurm": None, "runs": 0, "submit": None}
    text = array_script(tasks, name=name, command=command, cpus=threads or 1)    # refuses before anything is made
    # SLURM opens --output before the script runs: the log directories must exist now
    for d in {j.out.parent / sweep.LOG_DIR for j, _ in tasks} | \
            {Path(os.path.commonpath([str(j.out.parent) for j, _ in tasks])) / sweep.LOG_DIR}:
        d.mkdir(parents=True, exist_ok=True)
    path = write_script(path, text)
    return {"slurm": str(path), "runs": len(tasks), "submit": f"sbatch {shlex.quote(str(path))}"}
