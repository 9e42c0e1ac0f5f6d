"""A section's runs as sweep jobs: build them, run the unfinished ones, find the runs that have all their
rows (``--no-train``) and the runs whose loss became non-finite (sections that keep them).

References: ``docs/reproduce.md`` (the ``reproduce`` command; "Running on a cluster"); the runs of a
section are ``Section.runs(scale)`` (:mod:`tianref.experiments.reproduce.section`), each an ordinary
``train`` invocation (:mod:`tianref.experiments.sweep`).
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from tianref.errors import InputError, RunFailure
from tianref.experiments import protocols, sweep


def section_jobs(root, section, scale, xp: str = "numpy") -> list:
    """The sweep jobs under ROOT/<name>/ of ``section`` (a Section, or a section's name: its
    ``protocols.section_runs`` without extra Grams); the resume state is deleted when a run finishes."""
    if isinstance(section, str):
        name, specs, grams = section, protocols.section_runs(section, scale), ()
    else:
        name, specs, grams = section.name, section.runs(scale), section.log_grams
    extra = {"no_resume_state": True}
    grams = [g for g in grams if xp != "cupy" or g != "float32-seq"]   # float32-seq needs NumPy
    if grams:
        extra["log_grams"] = grams
    if xp != "numpy":
        extra["xp"] = xp
    specs = [SimpleNamespace(tag=s.tag, options={**s.options, **extra}) for s in specs]
    return sweep.jobs_from_specs(Path(root) / name, specs)


def epochs_of(specs) -> dict:
    """{act: E} of a list of RunSpecs; {act: [E1, E2, ...]} (ascending) where the runs of one activation
    have several lengths (e.g. the lifecycle intervention runs beside the 600-epoch runs)."""
    by = {}
    for s in specs:
        by.setdefault(s.options.get("act", "sqr"), set()).add(int(s.options["epochs"]))
    return {a: (next(iter(e)) if len(e) == 1 else sorted(e)) for a, e in by.items()}


def section_epochs(section: str, scale) -> dict:
    """{act: E} of a section's runs (by name)."""
    return epochs_of(protocols.section_runs(section, scale))


def run_section(jobs, n_jobs: int, python: str, report, progress=None, threads: int | None = None,
                batch: bool = False, rows=None) -> dict:
    """Run the unfinished jobs (``batch``: as stacked batches); RunFailure naming the first failed run
    and its log."""
    res = sweep.run_jobs(jobs, n_jobs, python, report=report, progress=progress, threads=threads, batch=batch,
                         rows=rows, label="reproduce")
    if res["failed"]:
        f = res["failed"][0]
        more = len(res["failed"]) - 1
        raise RunFailure(_failed(f) + (f" ({more} more failed, logs beside it)" if more else ""))
    return res


def _failed(f: dict) -> str:
    """What a failed run of run_jobs' result is, in one line: stopped by a signal sent to it (resumable),
    or failed; its exit code and log."""
    what = ("was stopped by a signal sent to it (its resume state is saved: run the same command again to "
            "continue it)" if f.get("stopped") else
            "is in use by another process training it (run the same command again when it ends)"
            if f.get("in_use") else "failed")
    return f"run {f['name']} {what} (exit {f['returncode']}); log: {f['log']}"


def diverged_in(failed, jobs=()) -> set:
    """The failed runs whose loss or parameters became non-finite (their log says so), or, of ``jobs``, whose
    config.json records a divergence (a failed ridge solve too: runs.record_divergence); RunFailure for any
    other failure."""
    recorded = {j.name for j in jobs if sweep.diverged(j) is not None}
    out = set()
    for f in failed:
        if f["name"] in recorded:
            out.add(f["name"])
            continue
        try:
            text = Path(f["log"]).read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        if "non-finite" in text:
            out.add(f["name"])
        else:
            raise RunFailure(_failed(f))
    return out


def diverged_before(jobs) -> set:
    """Runs whose config.json records a divergence (sweep.job_state 'diverged'), or, for runs written
    before that record, whose log ends with a non-finite loss or parameters failure, rows on disk."""
    out = set()
    for j in jobs:
        if (j.out / "config.json").is_file() and sweep.job_state(j) == "diverged":
            out.add(j.name)
            continue
        log = j.out.parent / sweep.LOG_DIR / f"{j.name}.log"
        if not (log.is_file() and (j.out / "metrics.jsonl").is_file()):
            continue
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
        if "non-finite" in tail and sweep.job_state(j) != "done":
            out.add(j.name)
    return out


def run_keeping_diverged(jobs, n_jobs: int, python: str, report, progress=None,
                         threads: int | None = None, batch: bool = False, rows=None) -> tuple[dict, set]:
    """Run the unfinished jobs except those that diverged before (deterministic: they would diverge
    again); (run result, names of the diverged runs). Any other failure raises RunFailure."""
    before = diverged_before(jobs)
    if before:
        report(f"{len(before)} run(s) diverged in an earlier call; kept as diverged, not rerun")
    res = sweep.run_jobs([j for j in jobs if j.name not in before], n_jobs, python, report=report,
                         progress=progress, threads=threads, batch=batch, rows=rows, label="reproduce")
    return res, diverged_in(res["failed"], jobs) | before


def all_rows(job) -> bool:
    """Every row 0..E is logged (the run finished training; its checkpoints may not have travelled)."""
    from tianref.analysis.records import METRICS_FILE, read_rows
    try:
        rows, _ = read_rows(Path(job.out) / METRICS_FILE)
    except (InputError, OSError):
        return False
    return set(range(job.epochs + 1)) <= {r.get("epoch") for r in rows}
