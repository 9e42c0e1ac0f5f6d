"""Every section end to end through the one protocol: run, read, measure, figures, claims, report, store;
and ``--plan``. Generic over the registry (:data:`tianref.experiments.reproduce.sections.REGISTRY`): no
section is named here.

References: ``docs/reproduce.md`` (the ``reproduce`` command); :mod:`tianref.experiments.reproduce.section`
(the protocol and what ``doc`` holds).

Data flow of :func:`reproduce_section`
    section.preflight -> section_jobs -> run (sweep.run_jobs; finished runs skipped; --no-train: none,
    only the runs with all their rows are read) -> read_run -> header + section.measure
    -> section.figures -> section.claims -> section.report
    -> ROOT/<section>/summary.json, report.md -> store_section (with provenance) if asked
"""
from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from tianref.analysis.records import read_run
from tianref.analysis.summarize import condition_labels, group_conditions, to_json
from tianref.errors import InputError
from tianref.experiments import protocols, sweep
from tianref.experiments.reproduce.jobs import (
    all_rows,
    epochs_of,
    run_keeping_diverged,
    run_section,
    section_jobs,
)
from tianref.experiments.reproduce.rows import load_published
from tianref.experiments.reproduce.section import Context
from tianref.experiments.reproduce.sections import REGISTRY
from tianref.experiments.reproduce.signals import signals_held as _signals_held
from tianref.experiments.reproduce.store import provenance, store_section
from tianref.rundir import left_behind
from tianref.runs import _fsync_dir, current_umask

FLAGGED = ("differs", "disagrees")           # the verdicts the command's summary line counts


def get_section(name: str):
    try:
        return REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown section {name!r}; choose one of {', '.join(REGISTRY)} or all") from None


def parse_section(text: str) -> list[str]:
    """'all' -> the default sections; otherwise the one named section."""
    if text == "all":
        return [n for n, s in REGISTRY.items() if s.default]
    get_section(text)
    return [text]


def parse_scale(text: str) -> protocols.Scale:
    if text not in protocols.SCALES:
        raise InputError(f"unknown scale {text!r}; choose one of {', '.join(protocols.SCALES)}")
    return protocols.SCALES[text]


def _one_or_all(records, key):
    """The runs' common value of a config key, or the sorted list of their values when they differ
    (a section over several M or training sizes names them all, not its first run's)."""
    vals = sorted({r.config.get(key) for r in records}, key=lambda v: (v is None, v))
    return vals[0] if len(vals) == 1 else vals


def header(section, scale, records, command: str) -> dict:
    """The part of summary.json every section shares: what ran, on what, with which command."""
    doc = {"section": section.name, "scale": asdict(scale), "command": command, "n_runs": len(records),
           "runs": [r.path.name for r in records],
           "seeds": sorted({r.config["seed"] for r in records}),
           "epochs": epochs_of(section.runs(scale)),
           "setup": {**{k: _one_or_all(records, k) for k in ("M", "K", "n_train")},
                     "dtype": ",".join(sorted({str(r.config.get("dtype")) for r in records})),
                     "backend": ",".join(sorted({str(r.meta.get("versions", {}).get("backend"))
                                                 for r in records}))},
           "conditions": condition_labels([cc for cc, _ in group_conditions(records)]), "notes": []}
    backends = {}
    for r in records:
        backends.setdefault(str(r.meta.get("versions", {}).get("backend")), []).append(r.path.name)
    if len(backends) > 1:
        doc["notes"].append("Runs from more than one backend: " + "; ".join(
            f"{b}: {', '.join(sorted(n))}" for b, n in sorted(backends.items())) + ". Float32 runs of one "
            "configuration on two backends agree in their events to about an epoch but not bit for bit "
            "(bench/results/).")
    return doc


def render(section, doc: dict, pub: dict) -> tuple[dict, str]:
    """(doc with its claims, report.md): pure, the same for a fresh run and for --rerender."""
    doc = dict(doc)
    doc.pop("comparison", None)                                    # the former comparison rows
    claims = on_the_runs_here(section.claims(doc, pub), doc)
    doc["claims"] = json.loads(to_json([c.to_dict() for c in claims]))
    return doc, section.report(doc, pub)


def on_the_runs_here(claims: list, doc: dict) -> list:
    """The claims of a section some of whose runs are missing (``missing_runs``): each judged claim is
    measured on part of the protocol only, so it reads at most "in kind", its difference saying how many
    runs it rests on (a verdict "agrees" needs the source's own setup: docs/claims.md)."""
    miss = doc.get("missing_runs") or []
    if not miss:
        return claims
    part = f"{doc.get('n_runs')} of the section's {len(miss) + int(doc.get('n_runs') or 0)} runs ({len(miss)} not run)"
    out = []
    for c in claims:
        if c.rule not in ("info", "identity"):
            c = dataclasses.replace(c, same_definition=False,
                                    difference=part if c.same_definition else f"{c.difference}; {part}")
        out.append(c)
    return out


def reproduce_section(name: str, root, scale, *, n_jobs: int = 2, python: str = sys.executable,
                      xp: str = "numpy", n_top: int = 200, store_to=None, command: str = "",
                      report=lambda m: None, progress=None, no_train: bool = False,
                      threads: int | None = None, batch: bool = False, rows=None) -> dict:
    """Run, measure, draw, judge, report and (optionally) store one section; returns what it did.
    ``progress(finished, total, name)`` and ``rows(logged, total)`` follow the runs and their rows
    (sweep.run_jobs); ``threads``: BLAS threads
    of each train process (sweep.run_jobs; None: the thread variables when set, else 1); ``batch``: the
    seeds of each condition train as stacked arrays (train-batch, sweep.run_jobs). ``no_train``: train
    nothing; summarise the runs that have all their rows (a tree copied back without checkpoints) and
    list the others as missing (refused for sections that need checkpoints or replays)."""
    section = get_section(name)
    if no_train:                                               # refused before anything is created
        all_jobs, jobs = no_train_jobs(name, root, scale, xp)
    section.preflight()                                        # fail before training, not after
    t0 = time.time()
    root = Path(os.path.abspath(root))
    section_dir = root / name
    if not no_train:
        all_jobs = section_jobs(root, section, scale, xp)
    section_dir.mkdir(parents=True, exist_ok=True)
    report(f"{name}: {len(all_jobs)} runs in {section_dir}")
    say = lambda m: report(f"{name}: {m}")                    # noqa: E731
    diverged = set()
    if no_train:                                               # summarise what is there, train nothing
        res = {"ran": 0, "skipped": len(jobs), "failed": []}
    elif section.keeps_diverged:
        jobs = all_jobs
        res, diverged = run_keeping_diverged(jobs, n_jobs, python, say, progress, threads, batch, rows)
    else:
        jobs = all_jobs
        res = run_section(jobs, n_jobs, python, say, progress, threads, batch, rows)
    records = [read_run(j.out) for j in jobs]
    ctx = Context(section_dir=section_dir, xp=xp, n_jobs=n_jobs, n_top=n_top, report=report,
                  diverged=frozenset(diverged))
    say("measuring")
    doc = header(section, scale, records, command)
    measured = section.measure(records, scale, ctx)
    notes = doc["notes"] + list(measured.pop("notes", []))
    doc.update(measured)
    doc["notes"] = notes
    doc["missing_runs"] = [j.name for j in all_jobs if j not in jobs]
    if doc["missing_runs"]:
        doc["missing_plan"] = plan_command(name, root, scale, xp)
        doc["notes"].append(f"Not all runs are here: {len(doc['missing_runs'])} of the section's "
                            f"{len(all_jobs)} runs are left out of every number ({', '.join(doc['missing_runs'])}); "
                            f"`{doc['missing_plan']}` lists their commands.")
    doc = json.loads(to_json(doc))
    _remove_leftovers(section_dir)                            # of an earlier invocation that was stopped
    staged = Path(tempfile.mkdtemp(prefix=f".figures.new-{os.getpid()}-", dir=section_dir))
    try:
        doc["figures"] = section.figures(doc, records, staged, scale, ctx)
        pub = load_published()
        doc, md = render(section, doc, pub)
        _swap_in(section_dir, staged, {"summary.json": to_json(doc), "report.md": md})
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    out = {"runs": len(jobs), "ran": res["ran"], "skipped": res["skipped"], "dir": str(section_dir),
           "figures": len(doc["figures"]),
           "flagged": sum(c["verdict"] in FLAGGED for c in doc["claims"]), "stored": None}
    if doc["missing_runs"]:                                   # --no-train: named here too, not only in report.md
        out["missing"] = doc["missing_runs"]
    if section.keeps_diverged:
        out["diverged"] = len(diverged)
    if store_to is not None:
        prov = provenance(doc, records, jobs, res, time.time() - t0, command)
        out["stored"] = str(store_section(section_dir, Path(store_to), scale.name, name, prov))
        say(f"stored in {out['stored']}")
    out["wall_s"] = round(time.time() - t0, 1)
    return out


def _swap_in(section_dir: Path, staged: Path, texts: dict) -> None:
    """Put one invocation's outputs in place together: the texts written to temporary files first; then,
    with SIGINT and SIGTERM held (_signals_held), the previous figures/, summary.json and report.md moved
    aside, the new ones renamed into place and the previous ones removed. A failed rename puts the previous
    set back. A section folder thus never holds the figures of one invocation beside the summary of
    another, and a stop arrives once the swap is done."""
    tmps = {}
    try:
        for name, text in texts.items():
            try:                                                      # a full disk names the file meant
                fd, tmp = tempfile.mkstemp(dir=section_dir, prefix=f".{name}.new-{os.getpid()}-", suffix=f"-{name}")
                tmps[name] = Path(tmp)
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(tmp, 0o666 & ~current_umask())                      # mkstemp makes it private
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror or str(exc), str(section_dir / name)) from None
        if any(staged.iterdir()):
            os.chmod(staged, 0o777 & ~current_umask())                       # mkdtemp makes it private
        new = {"figures": staged if any(staged.iterdir()) else None, **tmps}
        with _signals_held():
            aside, placed = {}, []                                # the previous outputs; the new ones in
            try:
                for name in new:
                    if (section_dir / name).exists():
                        old = section_dir / f".{name}.old-{os.getpid()}-{time.time_ns()}"
                        os.replace(section_dir / name, old)
                        aside[name] = old                         # recorded once it is there
                for name, src in new.items():
                    if src is not None:
                        os.replace(src, section_dir / name)
                        placed.append(name)
            except BaseException:
                _put_back(section_dir, aside, placed)
                raise
            for old in aside.values():
                _remove(old)
        _fsync_dir(str(section_dir))                                  # the renames on disk too
    finally:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)


def _put_back(section_dir: Path, aside: dict, placed: list) -> None:
    """After a failed swap: each new output placed is moved out of the way (renamed, then removed) and each
    previous one renamed back; every step is tried whatever an earlier one did (the caller re-raises the
    swap's own error)."""
    for name in placed:
        try:
            gone = section_dir / f".{name}.new-{os.getpid()}-{time.time_ns()}"
            os.replace(section_dir / name, gone)
            _remove(gone)
        except OSError:
            pass
    for name, old in aside.items():
        try:
            os.replace(old, section_dir / name)
        except OSError:
            pass


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def _remove_leftovers(section_dir: Path) -> None:
    """The staging folders and files (.figures.new-PID-*, .figures.old-PID-*, .summary.json.new-PID-*, ...)
    of invocations that are gone (their PID no longer runs); a live one's are its own."""
    for prefix in (".figures.new-", ".figures.old-", ".summary.json.new-", ".summary.json.old-", ".report.md.new-",
                   ".report.md.old-"):
        for p in section_dir.glob(prefix + "*"):
            if left_behind(p.name, prefix):
                _remove(p)


def plan_command(name: str, root, scale, xp: str = "numpy") -> str:
    """The ``reproduce --plan`` command that lists this section's unfinished runs: the same --scale,
    --root and --xp (without them --plan would list the full scale's runs under the default root)."""
    argv = ["python", "cli.py", "reproduce", "--section", name]
    if scale.name != "full":
        argv += ["--scale", scale.name]
    argv += ["--root", str(root)]
    if xp != "numpy":
        argv += ["--xp", xp]
    return shlex.join(argv + ["--plan"])


def no_train_jobs(name: str, root, scale, xp: str = "numpy") -> tuple[list, list]:
    """(all jobs, the jobs with all their rows) of a section for ``--no-train``; InputError (nothing
    created) when the section needs checkpoints or replays, when a run folder holds another configuration's
    run (its config.json: another scale, backend's Gram modes or M), or when no run has all its rows."""
    section = get_section(name)
    if section.needs_checkpoints:
        raise InputError(f"--no-train cannot summarise the {name} section: it needs its runs' "
                         "checkpoints or replays")
    root = Path(os.path.abspath(root))
    all_jobs = section_jobs(root, section, scale, xp)
    for j in all_jobs:                          # as when training: another configuration's run is not ours
        why = sweep.config_mismatch(j)
        if why:
            raise InputError(f"{j.out} holds a different run ({why}); use another ROOT, or the --scale "
                             "and --xp the runs were made with")
    jobs = [j for j in all_jobs if all_rows(j)]
    if not jobs:
        raise InputError(f"{name}: --no-train found no run with all its rows under {root / name}")
    return all_jobs, jobs


def all_section_jobs(sections, root, scale, xp: str = "numpy") -> list:
    """The sweep jobs of every named section, in order."""
    root = Path(os.path.abspath(root))
    return [j for s in sections for j in section_jobs(root, get_section(s), scale, xp)]


def plan(sections, root, scale, xp: str = "numpy", python: str = sys.executable,
         threads: int | None = None) -> list[str]:
    """One independent train command per unfinished run of the sections (``--threads T`` if given)."""
    return sweep.plan_lines(all_section_jobs(sections, root, scale, xp), python, threads=threads)
