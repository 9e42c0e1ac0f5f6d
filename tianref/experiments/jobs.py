"""The jobs of a sweep: conditions x seeds as run directories, their states and their command lines.

Reference: the paper's sweep drivers (``docs/paper-protocol.md`` §4: run_sweep.sh,
relu_sweep.sh, window_sweep.sh, eta_sweep.sh, scaling_sweep.sh), which run one training per
(condition, seed) and skip a run whose log already has >= E + 1 rows.

A *condition* is a dict of ``train`` options (``{"eta": 2e-4, "act": "sqr", ...}``); a *job* is
one (condition, seed) with its run directory ``ROOT/<key><value>_..._seed<s>`` and the
independent command line ``python cli.py train --out DIR ...`` that produces it. Each job is in
one of three states, decided from its directory alone:

    done       metrics.jsonl holds rows 0..E and checkpoints/final.npz is at epoch E -> skipped
    resumable  incomplete, checkpoints/resume.npz present  -> ``train --out DIR --resume --epochs E``
    fresh      anything else                               -> ``train ... --overwrite`` if DIR is non-empty

A directory that holds a run of another configuration is refused (``config_mismatch``). Jobs share
nothing, so ``plan_lines`` can hand them to any scheduler (a SLURM array, GNU parallel);
tianref.experiments.sweep runs them as local processes.
"""
from __future__ import annotations

import itertools
import re
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from tianref.config import TrainConfig
from tianref.errors import InputError
from tianref.analysis.records import is_complete
from tianref.rundir import is_empty


def cli_path() -> Path:
    """The repository's ``cli.py`` (the same entry point a user types)."""
    p = Path(__file__).resolve().parents[2] / "cli.py"
    if p.is_file():
        return p
    import importlib.util
    spec = importlib.util.find_spec("cli")
    if spec is None or spec.origin is None:
        raise InputError("cannot find cli.py (is tianref installed with its entry point?)")
    return Path(spec.origin)


MAX_SEEDS = 100_000          # seeds per sweep: each is one run per condition


def parse_seeds(text: str) -> tuple[int, ...]:
    """'0-14' -> 0..14; '0-2,5' -> 0, 1, 2, 5 (order kept, duplicates dropped)."""
    out: list[int] = []
    if any(not part.strip() for part in text.split(",")):
        raise InputError(f"seeds {text!r}: expected e.g. 0-14 or 0,1,5; an item is empty")
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                if b < a:
                    raise ValueError
                if len(out) + (b - a + 1) > MAX_SEEDS:      # refuse before building the list
                    raise InputError(f"seeds {text!r}: {len(out) + b - a + 1} seeds; at most {MAX_SEEDS} "
                                     "(each is a run)")
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
    except InputError:
        raise
    except ValueError:
        raise InputError(f"seeds {text!r}: expected e.g. 0-14 or 0,1,5") from None
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


# train options that config.json records under the same name (others, e.g. xp, are not compared)
_COMPARED = ("eta", "act", "M", "K", "lr", "loss", "optimizer", "dtype", "windows", "metrics",
             "n_train", "gram_dtype", "log_grams", "momentum", "top_layer", "ridge_reg", "init_scale",
             "output_scale", "group")
# what a config.json written before a key existed meant by it
_ABSENT = {"gram_dtype": "float64", "log_grams": [], "momentum": 0.9, "top_layer": "trained",
           "ridge_reg": 1e-3, "init_scale": 1.0, "output_scale": 1.0, "group": ""}


def config_mismatch(job: Job) -> str | None:
    """Why the existing run directory was made by a different command, or None."""
    p = job.out / "config.json"
    if not p.is_file():
        return None
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None                        # unreadable: the run is restarted, not trusted
    cfg = meta.get("config", {}) if isinstance(meta, dict) else {}
    want = dict(job.options, seed=job.seed)
    if "windows" in want and isinstance(want["windows"], str):
        want["windows"] = [int(x) for x in want["windows"].split(",") if x.strip()]
    if "log_grams" in want and isinstance(want["log_grams"], str):
        want["log_grams"] = [x.strip() for x in want["log_grams"].split(",") if x.strip()]
    cfg = {**_ABSENT, **cfg}
    for k in _COMPARED + ("seed",):
        if k in want and k in cfg and _norm(want[k]) != _norm(cfg[k]):
            return f"{k} = {cfg[k]!r} there, {want[k]!r} requested"
    if want.get("top_layer") == "ridge" and cfg.get("top_layer") == "ridge":
        # a ridge run stored before --ridge-eval logged 'current'; one asked for without it means 'held'
        there, asked = cfg.get("ridge_eval", "current"), want.get("ridge_eval", TrainConfig.ridge_eval)
        if there != asked:
            return f"ridge_eval = {there!r} there, {asked!r} requested"
    if "train_frac" in want and meta.get("train_frac") is not None \
            and float(meta["train_frac"]) != float(want["train_frac"]):
        return f"train_frac = {meta['train_frac']!r} there, {want['train_frac']!r} requested"
    return None


def _norm(v):
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return v


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
    """'done', 'resumable' or 'fresh' (see the module docstring).

    Raises InputError when the directory holds a run of a different configuration, so a
    sweep never counts (or overwrites) someone else's run as its own.
    """
    why = config_mismatch(job)
    if why:
        raise InputError(f"{job.out} holds a different run ({why}); use another ROOT")
    if is_complete(job.out, job.epochs):
        return "done"
    if (job.out / "checkpoints" / "resume.npz").is_file() and (job.out / "config.json").is_file():
        return "resumable"
    return "fresh"


def train_argv(job: Job, python: str = sys.executable, state: str | None = None) -> list[str]:
    """The independent command line that (re)produces ``job``'s run directory."""
    state = state or job_state(job)
    base = [python, str(cli_path()), "train", "--out", str(job.out)]
    if state == "resumable":            # the stored config defines the run; only E may change
        return base + ["--resume", "--epochs", str(job.epochs)]
    argv = base + ["--seed", str(job.seed), "--epochs", str(job.epochs)]
    for k, v in job.options:
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


def plan_lines(jobs: list[Job], python: str = sys.executable) -> list[str]:
    """One shell command per unfinished job."""
    return [shlex.join(train_argv(j, python)) for j in jobs if job_state(j) != "done"]
