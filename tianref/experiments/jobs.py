"""The jobs of a sweep: conditions x seeds as run directories, their states and their command lines.

Reference: the paper's sweep drivers (``docs/paper-protocol.md`` §4: run_sweep.sh,
relu_sweep.sh, window_sweep.sh, eta_sweep.sh, scaling_sweep.sh), which run one training per
(condition, seed) and skip a run whose log already has >= E + 1 rows.

A *condition* is a dict of ``train`` options (``{"eta": 2e-4, "act": "sqr", ...}``); a *job* is
one (condition, seed) with its run directory ``ROOT/<key><value>_..._seed<s>`` and the
independent command line ``python cli.py train --out DIR ...`` that produces it (``python -m tianref
train ...`` in an installed copy: tianref.resources.cli_argv). Each job is in
one of four states, decided from its directory alone:

    done       metrics.jsonl holds rows 0..E and checkpoints/final.npz, at epoch E, vouches for them
               (its fingerprint and row digest)             -> skipped
    diverged   config.json records that the run ended on a non-finite loss, non-finite parameters or
               a failed ridge solve (runs.record_divergence; its steps are deterministic, so it would
               diverge again)
                                                           -> skipped, like done (FINISHED)
    resumable  incomplete, checkpoints/resume.npz present  -> ``train --out DIR --resume --epochs E``
               (and ``--no-resume-state`` when the sweep has it: the resume state goes when it ends)
    fresh      empty, or this job's run without all its rows or a resume state
                                                           -> ``train ... --overwrite`` if DIR holds that run

A directory that holds another run, or is not empty and holds no run, or this job's run with rows past
its E (a longer run: resuming or restarting it would drop them), is refused before anything
starts (``--overwrite`` would refuse it too): its fingerprint
(tianref/identity.py) must equal the one train would give the job (``config_mismatch``, naming the
first differing setting), and a complete run's final state must vouch for its log (``log_mismatch``). Jobs share
nothing, so ``plan_lines`` can hand them to any scheduler (a SLURM array, GNU parallel);
tianref.experiments.sweep runs them as local processes.
"""
from __future__ import annotations

import dataclasses

import itertools
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from tianref import identity, runs
from tianref.groups import stored_group_spec
from tianref.config import TrainConfig, idle_settings, validate
from tianref.errors import InputError
from tianref.numtext import parse_int
from tianref.resources import cli_argv
from tianref.analysis.records import is_complete
from tianref.rundir import check_replaceable, is_empty, lock_holder


MAX_SEEDS = 100_000          # seeds per sweep: each is one run per condition
FINISHED = ("done", "diverged")   # the states a sweep does not run again


def parse_seeds(text: str) -> tuple[int, ...]:
    """'0-14' -> 0..14; '0-2,5' -> 0, 1, 2, 5 (order kept, duplicates dropped)."""
    out: list[int] = []
    if any(not part.strip() for part in text.split(",")):
        raise InputError(f"seeds {text!r}: expected e.g. 0-14 or 0,1,5; an item is empty")
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                a, b = (parse_int(x) for x in part.split("-", 1))     # ASCII digits (numtext)
                if b < a:
                    raise ValueError
                if len(out) + (b - a + 1) > MAX_SEEDS:      # refuse before building the list
                    raise InputError(f"seeds {text!r}: {len(out) + b - a + 1} seeds; at most {MAX_SEEDS} "
                                     "(each is a run)")
                out.extend(range(a, b + 1))
            else:
                out.append(parse_int(part))
    except InputError:
        raise
    except ValueError:
        ascii_only = "" if text.isascii() and "_" not in text else " in ASCII digits 0-9, without '_'"
        raise InputError(f"seeds {text!r}: expected e.g. 0-14 or 0,1,5{ascii_only}") from None
    if not out or min(out) < 0:
        raise InputError(f"seeds {text!r}: expected non-negative integers")
    return tuple(dict.fromkeys(out))


def grid(**lists) -> list[dict]:
    """Cartesian product of option lists, in the order given: grid(eta=[2e-4, 0], act=['sqr'])."""
    keys = list(lists)
    for k, v in lists.items():
        if not v:
            raise InputError(f"--{k.replace('_', '-')}: empty list")
    return [dict(zip(keys, vals)) for vals in itertools.product(*(lists[k] for k in keys))]


def _tag(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "-".join(_tag(x) for x in v)
    return re.sub(r"[^A-Za-z0-9._+-]", "-", str(v))       # a --group spec: no '/', ':' or '*' in a name


def _opt(k: str) -> str:
    return "--" + k.replace("_", "-")


TRAIN_ARGS = "train_args"    # Job.options key: train tokens passed through as given (sweep ROOT ... -- ARGS)


@dataclass(frozen=True)
class Job:
    """One training run: its directory, its seed, and the condition/common train options."""
    out: Path
    seed: int
    epochs: int
    options: tuple          # ((key, value), ...) condition first, then the common options

    @property
    def name(self) -> str:
        return self.out.name


def make_jobs(root, conditions: list[dict], seeds, epochs: int, common: dict | None = None) -> list[Job]:
    """Jobs for every condition x seed. Directory names use the condition's keys and values."""
    root = Path(root)
    common = dict(common or {})
    if epochs < 0:
        raise InputError(f"--epochs must be >= 0 (got {epochs})")
    jobs, names = [], set()
    for cond in conditions:
        cond = dict(cond)
        E = int(cond.pop("epochs", epochs))                # a condition may carry its own length
        for s in seeds:
            name = "_".join([f"{k}{_tag(v)}" for k, v in cond.items()] + [f"seed{s}"])
            if name in names:
                raise InputError(f"two jobs would share the directory {name}")
            names.add(name)
            opts = tuple(cond.items()) + tuple((k, v) for k, v in common.items() if k not in cond)
            jobs.append(Job(out=root / name, seed=int(s), epochs=E, options=opts))
    return jobs


_WANTED = {}            # (out, seed, epochs, options) -> (canonical config, fingerprint) of a job


def wanted(job: Job, there=None) -> tuple:
    """(canonical config, fingerprint F) of the run ``job`` would start, from train's own option
    parsing (tianref/identity.py): the one definition of what a command line means. ``there``: the
    config of the run found in the job's folder, when it was made before train stored a group by its one
    name (6 for Z6) or a table: run's digest (group_digest), or with a --momentum without SGD or a
    --ridge-reg without the ridge top layer (which train refuses now: they change no number of the run):
    the job's run as that train stored it."""
    key = (str(job.out), job.seed, job.epochs, repr(job.options))
    if key not in _WANTED:
        from tianref.cli.train import check_train_args
        argv = train_argv(job, state="fresh")
        _WANTED[key] = check_train_args(argv[argv.index("train") + 1:], device=False)
    cfg, init = _WANTED[key]
    if there is not None and there.group != cfg.group and stored_group_spec(there.group) == cfg.group:
        cfg = dataclasses.replace(cfg, group=there.group)            # the same group, spelt as it was
    if there is not None and cfg.group.startswith("table:") and not there.group_digest:
        cfg = dataclasses.replace(cfg, group_digest="")             # made before digests were recorded
    if there is not None:                   # idle in both (given before train refused them): no number depends
        idle = idle_settings(cfg) & idle_settings(there)            # on them, so the run there is the job's
        cfg = dataclasses.replace(cfg, **{k: getattr(there, k) for k in idle})
    return identity.canonical(cfg), identity.fingerprint(cfg, init)


def config_mismatch(job: Job) -> str | None:
    """Why the existing run directory does not hold the run ``job`` would start, or None (no
    config.json: nothing there to compare). The folder's fingerprint (recorded, or recomputed for a
    run written before identities) must equal the job's; the message names the first differing setting."""
    p = job.out / "config.json"
    if not p.exists():
        return None
    try:
        meta = runs.read_config(str(job.out))
        there = validate(TrainConfig.from_dict(meta["config"]))
        F_there = identity.of_run(meta, there, str(p))
    except InputError as exc:
        return f"its config.json cannot be read as a run's ({exc})"
    want, F_want = wanted(job, there)
    if F_there == F_want:
        return None
    diff = identity.first_difference(identity.canonical(there), want)
    if diff is None:
        return "its split or initial weights come from another source (an --init-from file)"
    k, a, b = diff
    return f"{k} = {a} there, {b} requested"


def log_mismatch(job: Job) -> str | None:
    """Why a complete-looking folder's final state does not vouch for its metrics.jsonl, or None: the
    state's fingerprint must be config.json's and its row digest must chain from rows 0..E."""
    final = job.out / "checkpoints" / "final.npz"
    try:
        ck = runs.load_npz(str(final))
    except InputError as exc:
        return str(exc)
    F, D = identity.of_arrays(ck)
    if F is None:
        return None                                 # written before identities: config.json decides
    try:                                            # a run stored as an earlier train stored it
        there = TrainConfig.from_dict(runs.read_config(str(job.out))["config"])
    except InputError:
        there = None
    if F != wanted(job, there)[1]:
        return f"{final} belongs to another run (another fingerprint)"
    text = runs.read_text(str(job.out / "metrics.jsonl"))
    lines = text.split("\n")[:job.epochs + 1]
    if identity.rows_digest(F, lines) != D:
        return f"its metrics.jsonl is not the log {final} was written with (mixed with another run's)"
    return None


def jobs_from_specs(root, specs) -> list[Job]:
    """Jobs from tagged option sets (anything with ``.tag`` and ``.options``, e.g. a
    protocols.RunSpec): the run goes to ROOT/<tag>; options must hold ``seed`` and ``epochs``."""
    root = Path(root)
    jobs, names = [], set()
    for spec in specs:
        opts = dict(spec.options)
        try:
            seed, E = int(opts.pop("seed")), int(opts.pop("epochs"))
        except KeyError as exc:
            raise InputError(f"run {spec.tag!r} has no {exc.args[0]!r} option") from None
        if spec.tag in names:
            raise InputError(f"two runs share the tag {spec.tag!r}")
        names.add(spec.tag)
        jobs.append(Job(out=root / spec.tag, seed=seed, epochs=E, options=tuple(opts.items())))
    return jobs


def job_state(job: Job) -> str:
    """'done', 'diverged', 'resumable' or 'fresh' (see the module docstring).

    Raises InputError when the directory holds a run of a different configuration, so a
    sweep never counts (or overwrites) someone else's run as its own.
    """
    if job.out.is_symlink() and not job.out.exists():     # a link to nothing: no run can be made there
        raise InputError(f"{job.out} is a symbolic link to {os.readlink(job.out)}, which does not exist; "
                         "remove the link or create its target")
    why = config_mismatch(job)
    if why:
        raise InputError(f"{job.out} holds a different run ({why}); use another ROOT")
    if diverged(job) is not None:
        return "diverged"
    if is_complete(job.out, job.epochs):
        why = log_mismatch(job)
        if why:
            raise InputError(f"{job.out}: {why}; use another ROOT or remove it")
        return "done"
    rows = _whole_rows(job.out / "metrics.jsonl") if (job.out / "config.json").is_file() else 0
    if rows > job.epochs + 1:                      # resumed or restarted, rows past E would be lost
        raise InputError(f"{job.out} holds this run's rows 0..{rows - 1}, past the --epochs {job.epochs} "
                         f"asked (continuing or restarting it would drop rows {job.epochs + 1}..{rows - 1}); "
                         f"ask for --epochs {rows - 1} or more, or use another ROOT")
    if (job.out / "checkpoints" / "resume.npz").is_file() and (job.out / "config.json").is_file():
        return "resumable"
    if not is_empty(str(job.out)) and lock_holder(str(job.out)) is None:   # restarted with --overwrite:
        try:                                       # it must be a run (one in use is run_jobs' to skip)
            check_replaceable(str(job.out))
        except InputError:
            raise InputError(f"{job.out} is not empty and holds no run of this sweep (no valid config.json, "
                             "or files no run writes); use another ROOT or move it away") from None
    return "fresh"


def diverged(job: Job):
    """(epoch, 'loss', 'parameters' or 'ridge solve') when the job's config.json records that the run
    diverged, else None."""
    try:
        return runs.divergence(runs.read_config(str(job.out)))
    except (InputError, OSError, ValueError):
        return None


def _whole_rows(path: Path) -> int:
    """The number of whole lines (rows) of a metrics.jsonl; 0 when it is absent or unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except OSError:
        return 0


def train_argv(job: Job, python: str = sys.executable, state: str | None = None,
               threads: int | None = None) -> list[str]:
    """The independent command line that (re)produces ``job``'s run directory; ``threads``: add
    ``--threads T`` (None: train's default, the thread variables when set, else 1)."""
    state = state or job_state(job)
    base = [*cli_argv(python), "train", "--out", str(job.out)]
    if threads is not None:             # a setting of the process, not of the run: also on --resume
        base += ["--threads", str(int(threads))]
    if state == "resumable":            # the stored config defines the run; only E may change, and
        drop = ["--no-resume-state"] if ("no_resume_state", True) in job.options else []   # whether the
        passed = [t for k, v in job.options if k == TRAIN_ARGS for t in v]   # resume state is kept at the
        # end; train's own tokens go along: --resume refuses one that changes the run and records a session
        # setting it may change (--checkpoint-epochs: they were dropped without a word)
        return base + ["--resume", "--epochs", str(job.epochs)] + drop + passed
    argv = base + ["--seed", str(job.seed), "--epochs", str(job.epochs)]
    for k, v in job.options:
        if k == TRAIN_ARGS:                             # sweep's pass-through: train's own tokens, as given
            argv += list(v)
            continue
        if isinstance(v, bool):
            if v:
                argv.append(_opt(k))
            continue
        if isinstance(v, (list, tuple)):
            v = ",".join(str(x) for x in v)           # e.g. --windows 5,10,20,30
        argv += [_opt(k), repr(v) if isinstance(v, float) else str(v)]
    if not is_empty(str(job.out)):
        argv.append("--overwrite")      # a partial run without resume state: start it again
    return argv


def plan_lines(jobs: list[Job], python: str = sys.executable, threads: int | None = None) -> list[str]:
    """One shell command per unfinished job (with ``--threads T`` when ``threads`` is given)."""
    return [shlex.join(train_argv(j, python, threads=threads)) for j in jobs if job_state(j) not in FINISHED]
