"""``sweep``: conditions x seeds into one tree (thin click layer over tianref.experiments.sweep)."""
from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
from pathlib import Path

import click

from tianref.groups import stored_group_spec
from tianref.cli.common import THREADS, CommaChoice, GivenPath, IntRange, check_interpreter, reports_errors
from tianref.config import parse_list
from tianref.cli.progress import RunsReporter
from tianref.errors import InputError, RunFailure, breaks_line, one_line
from tianref.model import ACTIVATIONS
from tianref.paths import check_not_in_run, check_one_line
from tianref.rundir import check_output_dir, check_output_file
from tianref.threads import DEFAULT_TEXT as THREADS_DEFAULT

THREADS_HELP = ("BLAS/OpenMP threads of each train process: passed as train --threads T and set in its "
                "OPENBLAS/MKL/OMP_NUM_THREADS, so --jobs N uses N x T threads. --plan and --slurm commands "
                "carry it only when given (--slurm then asks for T CPUs per task; otherwise the script "
                "sets the variables to the task's CPUs). With --xp cupy only the host BLAS is affected.")


# train options a sweep sets for each run itself, refused after `--` (a run would get two values): where
# to give them instead
OWN = {"--out": "the runs go to ROOT/<condition>_seed<s>", "--seed": "give --seeds before '--'",
       "--resume": "a sweep resumes its unfinished runs itself", "--overwrite": "a sweep restarts partial runs itself",
       **{o: "give it before '--'" for o in ("--epochs", "--threads", "--eta", "--act", "--M", "--group",
                                              "--train-frac", "--K", "--windows", "--metrics", "--xp", "--dtype",
                                              "--no-resume-state")}}
# train options that have no place in a sweep at all: why
NOT_IN_SWEEP = {"--check-only": "it validates a run without training it; sweep checks every run before any starts "
                                "(--plan prints their commands)",
                **{h: "it prints train's options instead of training (python cli.py train --help)"
                   for h in ("--help", "-h")},
                "--eta-schedule": "sweep gives every run its --eta from its own --eta list, and a run takes --eta "
                                  "or --eta-schedule, not both: train a schedule with train --eta-schedule"}


def pass_through(tokens) -> tuple:
    """The train options after `--` (``sweep ROOT ... -- --optimizer muon --lr 1e-3``), checked: no token
    may name an option the sweep sets itself (OWN); train's own parser checks the rest, run by run,
    before anything starts (check_jobs)."""
    for t in tokens:
        if any(breaks_line(c) for c in t):          # a value 1e-3\n would split its printed command in two
            raise InputError(f"'{one_line(t)}' after '--' holds a control character; give it without one")
        name = t.split("=", 1)[0]
        if name in OWN:
            raise InputError(f"{name} after '--' is set by sweep for every run ({OWN[name]})")
        if name in NOT_IN_SWEEP:
            raise InputError(f"{name} cannot be given to a sweep: {NOT_IN_SWEEP[name]}")
    return tuple(tokens)


def _one_name(specs: list) -> list:
    """One condition per group (6 and Z6 name one), named by the group's one name (3x4 -> Z3xZ4), so that a
    sweep given 3x4 and one given Z3xZ4 share their runs (:func:`_earlier_folders` finds a run an earlier
    sweep filed under the spelling it was given). A table: or expr: spec stays as given."""
    seen = {}
    for g in specs:
        one = stored_group_spec(g)
        seen.setdefault(one, g if g.strip().startswith(("table:", "expr:")) else one)
    return list(seen.values())


def _group_named(name: str) -> str:
    """A run folder's name with its group part (``group3x4``) spelt by the group's one name (``groupZ3xZ4``)."""
    return "_".join("group" + stored_group_spec(p[len("group"):])
                    if p.startswith("group") and not p.startswith(("grouptable", "groupexpr")) else p
                    for p in name.split("_"))


def _earlier_folders(jobs: list, root) -> list:
    """The jobs, each one whose folder does not exist moved to the run folder under ROOT that an earlier
    sweep named by another spelling of its group (``..._group3x4_seed0`` for ``..._groupZ3xZ4_seed0``), so
    that tree is continued rather than trained again; only folders that hold a run (config.json) count."""
    try:
        there = {_group_named(d.name): Path(d.path) for d in os.scandir(root)
                 if d.is_dir() and "_group" in d.name and os.path.isfile(os.path.join(d.path, "config.json"))}
    except OSError:                             # no ROOT yet (or not a folder: refused later, with its reason)
        return jobs
    out = []
    for job in jobs:
        other = there.get(_group_named(job.name)) if "_group" in job.name else None
        if other is not None and other.name != job.name and not job.out.exists():
            job = dataclasses.replace(job, out=job.out.parent / other.name)
        out.append(job)
    return out


def _numbers(text: str, what: str, kind=float) -> list:
    """'2e-4,0' -> [0.0002, 0.0]; the one list parser (config.parse_list); an empty list is refused."""
    out = list(parse_list(text, what, kind))
    if not out:
        raise InputError(f"{what}: empty list")
    return out


def resumable_identity(out: Path, meta: dict) -> None:
    """A resumable run must carry its identity in config.json and in its resume state, which train --resume
    requires (tianref/resume.py); a run written before identities is refused here, before anything starts,
    rather than by its own train --resume once the sweep is under way."""
    from tianref import identity
    cfg_path = out / "config.json"
    if identity.stored_block(meta, str(cfg_path)) is None:
        where = cfg_path
    elif identity.state_of(str(out), ("resume.npz",)) is None:
        where = out / "checkpoints" / "resume.npz"
    else:
        return
    raise InputError(f"{where} carries no run fingerprint (written before run identities), so its train "
                     "--resume cannot check it and refuses it; remove the run's folder (it is then trained "
                     "again) or choose another root folder")


def check_jobs(jobs, xp_name: str, device: bool = True) -> None:
    """Validate every job's train command with train's own checks, and the backend once, before
    anything starts (an InputError names the first bad run); a resumable job's log is checked against
    the row digest of its resume state, and its resume state against its seal (train --resume checks
    the rest of the state). ``device=False`` (a SLURM script, written on a login node for GPU nodes) checks everything
    but opening the backend."""
    from tianref import identity, runs
    from tianref.backend import get_xp
    from tianref.cli.train import check_train_args
    from tianref.experiments import sweep
    if device:
        get_xp(xp_name)
    for job in jobs:
        argv = sweep.train_argv(job, state="fresh")
        try:
            check_train_args(argv[argv.index("train") + 1:], device=device)
            if sweep.job_state(job) == "resumable":  # its log must be the one its resume state vouches for
                meta = runs.read_config(str(job.out))
                resumable_identity(job.out, meta)
                identity.check_log(str(job.out), meta, states=("resume.npz",))
                ck_path = str(job.out / "checkpoints" / "resume.npz")      # and its arrays as the run wrote them
                identity.check_state(runs.load_npz(ck_path), ck_path, meta)
        except InputError as exc:
            raise InputError(f"run {job.name}: {exc}") from None


def write_slurm(jobs, slurm_file: Path, python: str, name: str, threads) -> None:
    """--slurm: write the job-array script of the unfinished ``jobs`` (job name ``name``) and print
    what was written as one JSON line; a note on stderr when every run is finished."""
    from tianref.experiments import slurm
    out = slurm.write_for_jobs(jobs, slurm_file, python=python, name=name, command=shlex.join(sys.argv),
                               threads=threads)
    if out["slurm"] is None:
        click.echo(f"--slurm: every run is finished; nothing to submit, {slurm_file} not written", err=True)
    click.echo(json.dumps(out))


RESUME_STATE_NOTE_BYTES = 1 << 30     # finished runs' resume.npz in all, from which sweep says so at its end


def _resume_state_bytes(jobs) -> int:
    """Bytes of checkpoints/resume.npz in the finished runs among ``jobs``."""
    total = 0
    for j in jobs:
        try:
            if (j.out / "checkpoints" / "final.npz").is_file():
                total += (j.out / "checkpoints" / "resume.npz").stat().st_size
        except OSError:
            pass
    return total


@click.command("sweep", context_settings={"show_default": True})
@click.argument("root", type=GivenPath(file_okay=False, path_type=Path))
@click.argument("train_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- TRAIN_OPTIONS...]")
@click.option("--eta", "eta_text", default="2e-4,0",
              help="Weight decays, comma-separated (one condition each; 0 = control).")
@click.option("--act", "act_list", type=CommaChoice(ACTIVATIONS), default="sqr",
              help="Activations, comma-separated.")
@click.option("--M", "M_text", default=None, help="Moduli, comma-separated.  [default: 71; with --group: |H|]")
@click.option("--group", "group_text", default=None,
              help="Task groups, comma-separated (one condition each), as train --group: e.g. S4,D5,Q8xZ3. "
                   "M follows each group unless --M is given.")
@click.option("--train-frac", "frac_text", default=None,
              help="Training fractions p, comma-separated (n_train = round(p M^2)); "
                   "default: train's own default n_train.")
@click.option("--seeds", "seeds_text", default="0-14", help="Seeds, e.g. 0-14 or 0,1,5.")
@click.option("--epochs", type=IntRange(min=0), default=400, help="Epochs E per run.")
@click.option("--K", "K", type=IntRange(min=2), default=2048, help="Hidden width K.")
@click.option("--windows", default="20",
              help="Rolling windows logged by every run (one pass), e.g. 5,10,20,30.")
@click.option("--metrics", "metric_set", type=click.Choice(["full", "core"]), default="full",
              help="Metric set passed to train.")
@click.option("--xp", "xp_name", type=click.Choice(["numpy", "cupy", "fake"]), default="numpy",
              help="Backend passed to train ('fake': the strict CI backend, for dry runs of GPU scripts).")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
              help="Training dtype passed to train.")
@click.option("--jobs", "n_jobs", type=IntRange(min=1), default=1,
              help="Parallel local train processes (each with --threads BLAS threads).")
@click.option("--threads", type=THREADS, default=None, show_default=THREADS_DEFAULT,
              help=THREADS_HELP)
@click.option("--batch", is_flag=True,
              help="Train the seeds of each condition, and its --eta values, as one stacked array (one "
                   "train-batch process per batch; tianref/batch.py): the same runs, each in its own folder with its own log, "
                   "at a fraction of the per-run overhead. With --jobs N a condition is split into N "
                   "batches when there are fewer conditions than N; --threads T then steps each batch in T "
                   "parts, by T threads with a one-thread BLAS each (on a CPU processes overlap better: "
                   "give --jobs the cores; docs/batch.md §4).")
@click.option("--plan", is_flag=True,
              help="Print the unfinished runs' independent train commands, one per line, and exit.")
@click.option("--slurm", "slurm_file", type=GivenPath(dir_okay=False, path_type=Path), default=None,
              help="Write a SLURM job-array script for the unfinished runs to this file (task i runs "
                   "the i-th --plan command) and exit; submit it with sbatch.")
@click.option("--python", type=GivenPath(), default=sys.executable, help="Interpreter for the train commands.")
@click.option("--no-resume-state", is_flag=True,
              help="Passed to train: delete each run's checkpoints/resume.npz when it finishes (it holds the "
                   "rolling-update buffer, ~110 MB at the headline size).")
@reports_errors
def sweep_cmd(root, train_args, eta_text, act_list, M_text, group_text, frac_text, seeds_text, epochs, K, windows,
              metric_set, xp_name, dtype, n_jobs, threads, batch, plan, slurm_file, python, no_resume_state):
    """Train every condition x seed into ROOT; finished runs (E + 1 rows) are skipped.

    Conditions are the product of --eta, --act, --M (or --group) and --train-frac. Train options
    after `--` go to every run as they are (sweep ROOT --eta 2e-3,0 -- --optimizer muon --lr 1e-3;
    not the options sweep sets itself, such as --eta or --seed). Each run goes to
    ROOT/<condition>_seed<s>; its log to ROOT/_logs/. A run counts as finished only when its
    fingerprint is this sweep's (same settings and seed) and its final state vouches for its rows; an
    unfinished one is resumed from its resume state, or restarted without one. A folder holding
    another run, or files that are no run, is refused before anything starts (exit 2). On a terminal
    a progress bar goes to stderr (off one, a heartbeat at each tenth of the runs finished and, while
    runs train, at each further tenth of the epochs logged, at most every 30 s; failures and the runs
    skipped because they diverged earlier); prints a JSON summary on stdout: runs, skipped (finished
    or diverged before), ran (trained to the end now), resumed (of those, continued from a resume
    state), failed.
    """
    from tianref.experiments import sweep
    lists = {"eta": _numbers(eta_text, "--eta"), "act": act_list}
    if group_text is not None:
        lists["group"] = _one_name(_numbers(group_text, "--group", str))
    if M_text is not None or group_text is None:
        lists["M"] = _numbers("71" if M_text is None else M_text, "--M", int)
    if frac_text is not None:
        lists["train_frac"] = _numbers(frac_text, "--train-frac")
    common = {"K": K, "windows": windows, "metrics": metric_set, "xp": xp_name, "dtype": dtype}
    if no_resume_state:
        common["no_resume_state"] = True
    if train_args:
        common[sweep.TRAIN_ARGS] = pass_through(train_args)
    check_one_line(root, "ROOT")
    check_one_line(python, "--python")               # it heads every printed command and script line
    root = Path(os.path.abspath(root))           # commands must not depend on the cwd
    seeds = sweep.parse_seeds(seeds_text)
    jobs = sweep.make_jobs(root, sweep.grid(**lists), seeds, epochs, common)
    if group_text is not None:
        jobs = _earlier_folders(jobs, root)
    if plan and slurm_file is not None:
        raise InputError("give --plan or --slurm, not both")
    check_not_in_run(root, "ROOT")               # also for --plan: its commands would write there
    if not plan:                                 # the paths, before anything is validated or created
        check_output_dir(root, "ROOT")
        check_output_dir(root / sweep.LOG_DIR, "ROOT's log folder")      # train and --slurm write there
    if slurm_file is not None:
        check_output_file(slurm_file, "--slurm", make_parents=False)
    # a script, or a plan for GPU nodes, runs elsewhere: every value checked, the device not opened here
    check_jobs(jobs, xp_name, device=slurm_file is None and not (plan and xp_name == "cupy"))
    if len(seeds) > 1 and any(t == "--init-from" or t.startswith("--init-from=") for t in train_args or ()):
        click.echo(f"sweep: warning: with --init-from the seed draws only the independence proxy's pairs (the "
                   f"weights and split are the file's): the {len(seeds)} seeds of each condition train one "
                   "trajectory, which summarize and plot count once", err=True)
    if plan:
        lines = (sweep.batch_plan_lines(jobs, n_jobs, python, threads=threads) if batch
                 else sweep.plan_lines(jobs, python, threads=threads))
        for line in lines:
            click.echo(line)
        if not lines:                            # an empty stdout alone would not say why
            click.echo(f"sweep: all {len(jobs)} run(s) under {root} are finished (or diverged); nothing to plan",
                       err=True)
        return
    if slurm_file is not None and batch:
        raise InputError("--slurm writes one task per run; drop --batch (or use --plan --batch)")
    if slurm_file is not None:
        write_slurm(jobs, slurm_file, python, "tianref-sweep", threads)
        return
    check_interpreter(python)
    root.mkdir(parents=True, exist_ok=True)
    reporter = RunsReporter("sweep")
    try:
        result = sweep.run_jobs(jobs, n_jobs, python, report=reporter.note, progress=reporter.progress,
                                rows=reporter.rows,
                                threads=threads, batch=batch)
    finally:
        reporter.close()
    click.echo(json.dumps(result))
    kept = _resume_state_bytes(jobs) if not no_resume_state else 0
    if kept >= RESUME_STATE_NOTE_BYTES:
        click.echo(f"sweep: the finished runs keep {kept / 2**20:.0f} MiB of resume state (checkpoints/resume.npz: "
                   "what train --resume --epochs N needs to go on); --no-resume-state drops it as each run "
                   "finishes", err=True)
    if result["failed"]:
        n_stopped = sum(bool(f.get("stopped")) for f in result["failed"])
        n_held = sum(bool(f.get("in_use")) for f in result["failed"])
        stopped = (f" ({n_stopped} of them stopped by a signal sent to the run, with their resume state "
                   "saved: run the same command again to continue them)" if n_stopped else "")
        stopped += (f" ({n_held} of them in use by another process training them: run the same command "
                    "again when it ends to check them)" if n_held else "")
        raise RunFailure(f"{len(result['failed'])} of {result['runs']} runs failed{stopped}; "
                         f"see {root / sweep.LOG_DIR}")


sweep_cmd.refused_after_dashes = frozenset(OWN) | frozenset(NOT_IN_SWEEP)   # the unknown-option hint skips them
