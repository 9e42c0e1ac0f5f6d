"""A small driver of one Section module for the tests: train its runs at a tiny scale, then call the protocol
exactly as the reproduce pipeline does (runs, measure, figures, claims, report), independent of the pipeline."""
from __future__ import annotations

import json
import sys
from types import SimpleNamespace

from tianref.analysis.records import read_run
from tianref.analysis.summarize import to_json
from tianref.experiments import protocols, sweep
from tianref.experiments.reproduce.rows import load_published
from tianref.experiments.reproduce.section import Context

TINY = protocols.Scale("tiny", M=7, K=16, seeds=1, epoch_factor=0.06)


def drive(S, root, scale=TINY, select=lambda spec: True):
    """(doc, records): the summary document of the section's (selected) runs under ROOT/<name>/."""
    section_dir = root / S.name
    specs = [SimpleNamespace(tag=s.tag, options={**s.options, "no_resume_state": True})
             for s in S.runs(scale) if select(s)]
    jobs = sweep.jobs_from_specs(section_dir, specs)
    res = sweep.run_jobs(jobs, 2, sys.executable)
    assert not res["failed"], res["failed"]
    records = [read_run(j.out) for j in jobs]
    doc = {"section": S.name, "scale": {"name": scale.name, "epoch_factor": scale.epoch_factor}, "command": "test",
           "n_runs": len(records), "runs": [r.path.name for r in records],
           "seeds": sorted({r.config["seed"] for r in records}),
           "epochs": sorted({r.config["epochs"] for r in records}),
           "setup": {"M": [7], "K": 16, "dtype": "float32", "backend": "numpy"}, "notes": []}
    ctx = Context(section_dir=section_dir, n_jobs=1)
    doc.update(S.measure(records, scale, ctx))
    doc = json.loads(to_json(doc))
    doc["figures"] = S.figures(doc, records, section_dir / "figures", scale, ctx)
    return doc, records


def verdicts(claims) -> dict:
    return {c.claim: c.verdict for c in claims}


def no_agrees_without_the_definition(claims):
    """A claim measured with another definition or setup never reads 'agrees'."""
    for c in claims:
        if not c.same_definition:
            assert c.verdict != "agrees", c


PUBLISHED = load_published()
