"""One section end to end: run, summarise, compare, report, draw, store; and ``--plan``.

References: ``docs/reproduce.md`` (the ``reproduce`` command); ``docs/paper-protocol.md`` §3-4 (the
protocols) and §5 (the deviations each section's document notes).

Data flow of :func:`reproduce_section`
    section_jobs -> run_section (sweep.run_jobs; finished runs skipped) -> read_run
    -> build_doc (summarize per view, section_extras, thm6_section) -> compare -> make_figures
    -> ROOT/<section>/summary.json, report.md -> store_section (with provenance) if asked
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tianref.errors import InputError
from tianref.experiments import sweep
from tianref.analysis.records import read_run
from tianref.experiments.reproduce.compare import compare
from tianref.experiments.reproduce.explain import section_explain
from tianref.experiments.reproduce.extras import section_extras
from tianref.experiments.reproduce.figures import make_figures
from tianref.experiments.reproduce.report import report_markdown
from tianref.experiments.reproduce.rows import load_published
from tianref.experiments.reproduce.sections import (
    run_section,
    section_epochs,
    section_jobs,
    section_views,
)
from tianref.experiments.reproduce.store import provenance, store_section
from tianref.experiments.reproduce.thm6_runs import import_thm6, thm6_section
from tianref.analysis.summarize import (
    condition_labels,
    group_conditions,
    summarize,
    to_json,
    write_atomic,
)


def _relative_paths(summary: dict, base: Path) -> dict:
    for c in summary["conditions"]:
        for r in c["runs"]:
            try:
                r["path"] = str(Path(r["path"]).relative_to(base))
            except ValueError:
                pass
    return summary


def build_doc(section: str, scale, records, section_dir: Path, n_top: int, report, command: str):
    """The JSON-ready summary document of a section (without comparison and figures) and the
    seed-0 thm6 records with pair lists (for the per-checkpoint figure)."""
    cfg0 = records[0].config
    doc = {"section": section, "scale": asdict(scale), "command": command, "n_runs": len(records),
           "runs": [r.path.name for r in records],
           "seeds": sorted({r.config["seed"] for r in records}),
           "epochs": section_epochs(section, scale),
           "setup": {"M": cfg0.get("M"), "K": cfg0.get("K"), "n_train": cfg0.get("n_train"),
                     "dtype": ",".join(sorted({str(r.config.get("dtype")) for r in records})),
                     "backend": ",".join(sorted({str(r.meta.get("versions", {}).get("backend"))
                                                 for r in records}))},
           "views": [], "extras": {}, "thm6": None, "notes": []}
    backends = {}
    for r in records:
        backends.setdefault(str(r.meta.get("versions", {}).get("backend")), []).append(r.path.name)
    if len(backends) > 1:
        doc["notes"].append("Runs from more than one backend: " + "; ".join(
            f"{b}: {', '.join(sorted(n))}" for b, n in sorted(backends.items())) + ". Float32 runs of one "
            "configuration on two backends agree in their events to about an epoch but not bit for bit "
            "(bench/results/).")
    doc["conditions"] = condition_labels([cc for cc, _ in group_conditions(records)])
    for v in section_views(section, scale):
        s = _relative_paths(summarize(records, v.options), section_dir)
        doc["views"].append({"name": v.name, "note": v.note, "options": asdict(v.options), "summary": s})
    doc["extras"] = section_extras(section, records, scale)
    doc["explain"] = section_explain(section, records, scale)
    seed0 = None
    if section == "window":
        doc["notes"].append("Deviation: one run per seed and condition logs all four windows; the paper "
                            "trained one run per window and reused the headline seeds 0-2 for W = 20. "
                            "The parameters do not depend on the window, so the spectra are the same.")
    if section == "extended":
        doc["notes"].append("The paper does not say which seed its extended η = 1e-5 run used "
                            "(paper-protocol.md §1 T5b); we run seed 0, which is not its seed 0 either.")
    if section == "thm6":
        doc["thm6"], seed0 = thm6_section(records, scale, n_top, section_dir / "_thm6", report)
    return json.loads(to_json(doc)), seed0


def reproduce_section(section: str, root, scale, *, n_jobs: int = 2, python: str = sys.executable,
                      xp: str = "numpy", n_top: int = 200, store_to=None, command: str = "",
                      report=lambda m: None, progress=None, no_train: bool = False) -> dict:
    """Run, summarise, compare, draw and (optionally) store one section; returns what it did.
    ``progress(finished, total, name)`` follows the runs (sweep.run_jobs). ``no_train``: train
    nothing; summarise the runs that have all their rows (a tree copied back without checkpoints) and
    list the others as missing (not for thm6 and lifecycle, which need checkpoints or replays)."""
    if section in MODULE_SECTIONS:                          # one module each: sections/<name>.py
        return reproduce_module_section(section_module(section), root, scale, n_jobs=n_jobs, python=python,
                                        xp=xp, store_to=store_to, command=command, report=report,
                                        progress=progress, no_train=no_train)
    if no_train and section == "thm6":
        raise InputError(f"--no-train cannot summarise the {section} section: it needs its runs' "
                         "checkpoints or replays")
    t0 = time.time()
    if section == "thm6":
        import_thm6()                                       # fail before training, not after
    root = Path(os.path.abspath(root))
    section_dir = root / section
    all_jobs = section_jobs(root, section, scale, xp)
    section_dir.mkdir(parents=True, exist_ok=True)
    report(f"{section}: {len(all_jobs)} runs in {section_dir}")
    if no_train:                                            # summarise what is there, train nothing
        jobs = [j for j in all_jobs if _all_rows(j)]
        if not jobs:
            raise InputError(f"{section}: --no-train found no run with all its rows under {section_dir}")
        res = {"ran": 0, "skipped": len(jobs), "failed": []}
    else:
        jobs = all_jobs
        res = run_section(jobs, n_jobs, python, lambda m: report(f"{section}: {m}"), progress)
    records = [read_run(j.out) for j in jobs]
    report(f"{section}: summarising")
    doc, seed0 = build_doc(section, scale, records, section_dir, n_top, report, command)
    doc["missing_runs"] = [j.name for j in all_jobs if j not in jobs]
    if doc["missing_runs"]:
        doc["notes"].append(f"Not all runs are here: {len(doc['missing_runs'])} of the section's "
                            f"{len(all_jobs)} runs are left out of every number ({', '.join(doc['missing_runs'])}); "
                            f"`python cli.py reproduce --section {section} --plan` lists their commands.")
    pub = load_published()
    doc["comparison"] = json.loads(to_json(compare(doc, pub)))
    figs, notes = make_figures(section, doc, records, root, scale, section_dir / "figures", seed0)
    doc["figures"], doc["notes"] = figs, doc["notes"] + notes
    write_atomic(section_dir / "summary.json", to_json(doc))
    write_atomic(section_dir / "report.md", report_markdown(doc, pub))
    out = {"runs": len(jobs), "ran": res["ran"], "skipped": res["skipped"], "dir": str(section_dir),
           "figures": len(figs), "flagged": sum(1 for r in doc["comparison"] if r["within"] is False),
           "stored": None}
    wall = time.time() - t0
    if store_to is not None:
        prov = provenance(doc, records, jobs, res, wall, command)
        out["stored"] = str(store_section(section_dir, Path(store_to), scale.name, section, prov))
        report(f"{section}: stored in {out['stored']}")
    out["wall_s"] = round(time.time() - t0, 1)
    return out


def plan(sections, root, scale, xp: str = "numpy", python: str = sys.executable) -> list[str]:
    """One independent train command per unfinished run of the sections."""
    root = Path(os.path.abspath(root))
    return [line for s in sections for line in sweep.plan_lines(section_jobs(root, s, scale, xp), python)]


# --- the sections with one module each (reproduce/sections/<name>.py, the Section protocol) ------------

MODULE_SECTIONS = ("scaling", "critical", "muon", "ridge", "lifecycle", "clocks")


def section_module(name: str):
    """The SECTION object of reproduce/sections/<name>.py."""
    import importlib
    return importlib.import_module(f"tianref.experiments.reproduce.sections.{name}").SECTION


def _all_rows(job) -> bool:
    """Every row 0..E is logged (the run finished training; its checkpoints may not have travelled)."""
    from tianref.analysis.records import METRICS_FILE, read_rows
    try:
        rows, _ = read_rows(Path(job.out) / METRICS_FILE)
    except (InputError, OSError):
        return False
    return set(range(job.epochs + 1)) <= {r.get("epoch") for r in rows}


def _non_finite(job) -> bool:
    """The run's log ends with a non-finite-loss failure (it diverged; running it again diverges again)."""
    log = job.out.parent / sweep.LOG_DIR / f"{job.name}.log"
    return log.is_file() and "non-finite" in log.read_text(encoding="utf-8", errors="replace")[-2000:]


def reproduce_module_section(S, root, scale, *, n_jobs: int = 2, python: str = sys.executable, xp: str = "numpy",
                             store_to=None, command: str = "", report=lambda m: None, progress=None,
                             no_train: bool = False) -> dict:
    """Drive one Section (tianref.experiments.reproduce.section) end to end: its runs (a run that diverged
    is kept, not rerun), measure, figures, claims and report, summary.json, --store."""
    from types import SimpleNamespace

    from tianref.errors import RunFailure
    from tianref.experiments.reproduce.section import Context
    t0 = time.time()
    if no_train and S.needs_checkpoints:
        raise InputError(f"--no-train cannot summarise the {S.name} section: it needs its runs' "
                         "checkpoints or replays")
    root = Path(os.path.abspath(root))
    section_dir = root / S.name
    extra = {"no_resume_state": True, **({"xp": xp} if xp != "numpy" else {})}
    all_jobs = sweep.jobs_from_specs(section_dir, [SimpleNamespace(tag=s.tag, options={**s.options, **extra})
                                                   for s in S.runs(scale)])
    section_dir.mkdir(parents=True, exist_ok=True)
    report(f"{S.name}: {len(all_jobs)} runs in {section_dir}")
    if no_train:
        jobs = [j for j in all_jobs if _all_rows(j)]
        if not jobs:
            raise InputError(f"{S.name}: --no-train found no run with all its rows under {section_dir}")
        res = {"ran": 0, "skipped": len(jobs), "failed": []}
    else:
        jobs = all_jobs
        todo = [j for j in jobs if not (_non_finite(j) and sweep.job_state(j) != "done"
                                        and (j.out / "metrics.jsonl").is_file())]
        res = sweep.run_jobs(todo, n_jobs, python, report=lambda m: report(f"{S.name}: {m}"), progress=progress)
        for f in res["failed"]:
            job = next(j for j in jobs if j.name == f["name"])
            if not _non_finite(job):
                raise RunFailure(f"run {f['name']} failed (exit {f['returncode']}); log: {f['log']}")
    records = [read_run(j.out) for j in jobs]
    cfg0 = records[0].config
    doc = {"section": S.name, "scale": asdict(scale), "command": command, "n_runs": len(records),
           "runs": [r.path.name for r in records], "seeds": sorted({r.config["seed"] for r in records}),
           "epochs": sorted({int(r.config["epochs"]) for r in records}),
           "setup": {"M": sorted({r.config.get("M") for r in records}), "K": cfg0.get("K"),
                     "dtype": ",".join(sorted({str(r.config.get("dtype")) for r in records})),
                     "backend": ",".join(sorted({str(r.meta.get("versions", {}).get("backend")) for r in records}))},
           "notes": [], "missing_runs": [j.name for j in all_jobs if j not in jobs]}
    ctx = Context(section_dir=section_dir, xp=xp, n_jobs=n_jobs, report=report)
    report(f"{S.name}: measuring")
    doc.update(S.measure(records, scale, ctx))
    doc = json.loads(to_json(doc))
    doc["figures"] = S.figures(doc, records, section_dir / "figures", scale, ctx)
    pub = load_published()
    doc["claims"] = [c.to_dict() for c in S.claims(doc, pub)]
    write_atomic(section_dir / "summary.json", to_json(doc))
    write_atomic(section_dir / "report.md", S.report(doc, pub))
    out = {"runs": len(jobs), "ran": res["ran"], "skipped": res["skipped"], "dir": str(section_dir),
           "figures": len(doc["figures"]), "stored": None}
    if store_to is not None:
        prov = provenance(doc, records, jobs, res, time.time() - t0, command)
        out["stored"] = str(store_section(section_dir, Path(store_to), scale.name, S.name, prov))
        report(f"{S.name}: stored in {out['stored']}")
    out["wall_s"] = round(time.time() - t0, 1)
    return out
