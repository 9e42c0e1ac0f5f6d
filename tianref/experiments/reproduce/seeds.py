"""Two sections that test other seed papers on this model: ``lifecycle`` (the spectral edge) and
``clocks`` (the two training clocks). Run, analyse, report point by point, draw, store.

References: *The Lifecycle of the Spectral Edge: From Gradient Learning to Weight-Decay
Compression* and *Deciphering Two Training Clocks in Grokking via Deep Linear Network Theory with
Conditional ReLU Reduction*; docs/edge-and-clocks.md (the statistics) and docs/reproduce.md.
The runs are protocols.section_runs('lifecycle' | 'clocks').

lifecycle (per run; phases from the run's own events)
    t_mem          first epoch with train_acc >= 0.99 (memorisation done)
    t05, t099      first epoch with test_acc >= 0.5 / 0.99;  fire: the sigma2/sigma3 lock-in detector
    phases         memorisation [t_mem, t05), grokking [t05, t099], after (t099, E] -- for the switch
                   runs "after" ends at the switch T_s and "after switch" is [T_s + w, E];
                   a run that never groks has only memorisation [t_mem, E]
    edge split     the median of W/V_edge_gfrac and W/V_edge_cos over each phase's rows
    probes         tianref.analysis.edge_runs.probe_run at PROBE_EPOCHS (scaled) for the eta = 2e-4
                   and eta = 0 runs: ablation and flatness ratios, joint and W spaces
    intervention   X(E) / X(T_s) for X = W_fro, W_srank, WV_nuc, and test_acc at T_s and E, for the
                   switch runs and the eta = 2e-4 runs of the same seeds
clocks (per run)
    t_cls, t_rep, clock_ratio (tianref.analysis.clock_events), t05, t099, their order
    W_srank and WV_nuc: value at row 0, its maximum, the final value, final / max

Every statement in a report is computed from these numbers (``claims_lifecycle`` in
reproduce/lifecycle.py, ``claims_clocks`` in reproduce/clocks_section.py); nothing is written by hand
about the outcome. This module runs a section end to end: the runs, the cached edge probes, the
figures, summary.json, report.md and --store.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

from tianref.analysis.records import read_run
from tianref.analysis.summarize import to_json, write_atomic
from tianref.experiments.reproduce.clocks_section import claims_clocks, clocks_doc, report_clocks
from tianref.experiments.reproduce.figures import _save_fig
from tianref.experiments.reproduce.lifecycle import claims_lifecycle, lifecycle_doc, report_lifecycle
from tianref.experiments.reproduce.jobs import run_section, section_epochs, section_jobs
from tianref.experiments.reproduce.views import scaled
from tianref.experiments.reproduce.seed_stats import _cond
from tianref.experiments.reproduce.store import provenance, store_section

__all__ = ["SEED_SECTIONS", "PROBE_EPOCHS", "N_RANDOM", "claims_clocks", "claims_lifecycle", "clocks_doc",
           "lifecycle_doc", "probe_runs", "reproduce_seed_section"]

SEED_SECTIONS = ("lifecycle", "clocks")
PROBE_EPOCHS = (50, 100, 125, 175, 250, 400)     # memorisation, ~t0.5, grokking, ~lock-in, after
N_RANDOM = {"full": 100}                          # random directions per probe; 10 at smaller scales


# --- per run ------------------------------------------------------------------------------------


# --- probes (cached per run) -------------------------------------------------------------------

def _probe_key(run_dir: Path, epochs, n_random) -> dict:
    from tianref import edge as edge_mod, edge_probe
    from tianref.analysis import edge_runs
    code = hashlib.sha1(b"".join(Path(m.__file__).read_bytes()
                                 for m in (edge_mod, edge_probe, edge_runs))).hexdigest()
    st = (run_dir / "metrics.jsonl").stat()
    return {"epochs": list(epochs), "n_random": n_random, "metrics": [st.st_size, st.st_mtime_ns], "code": code}


def _probe_one(args):
    run_dir, epochs, n_random, xp_name, cache = args
    from tianref.analysis.edge_runs import probe_run
    from tianref.backend import get_xp
    key = _probe_key(Path(run_dir), epochs, n_random)
    if os.path.isfile(cache):
        try:
            doc = json.loads(Path(cache).read_text(encoding="utf-8"))
            if doc.get("key") == key:
                return doc["records"]
        except (OSError, ValueError):
            pass
    recs = probe_run(run_dir, epochs, get_xp(xp_name), n_random=n_random, strict=False)
    doc = json.loads(to_json({"key": key, "records": recs}))
    write_atomic(cache, to_json(doc))
    return doc["records"]


def probe_runs(records, scale, xp, n_jobs, cache_dir: Path, report) -> dict:
    """{tag: probe records} for the eta = 2e-4 and eta = 0 lifecycle runs."""
    n_random = N_RANDOM.get(scale.name, 10)
    cache_dir.mkdir(parents=True, exist_ok=True)
    todo = []
    for r in records:
        if _cond(r) == "switch":
            continue
        E = r.n_epochs - 1
        epochs = sorted({min(E, scaled(e, scale)) for e in PROBE_EPOCHS if scaled(e, scale) >= 2})
        todo.append((str(r.path), epochs, n_random, xp, str(cache_dir / f"{r.path.name}.json")))
    report(f"lifecycle: edge probes for {len(todo)} runs ({n_random} random directions each)")
    if xp == "numpy" and n_jobs > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=n_jobs) as ex:
            out = list(ex.map(_probe_one, todo))
    else:
        out = [_probe_one(t) for t in todo]
    return {Path(t[0]).name: o for t, o in zip(todo, out)}


# --- across seeds -----------------------------------------------------------------------------


# --- claims, computed -------------------------------------------------------------------------


# --- report and figures -----------------------------------------------------------------------


def figures(section, doc, records, fig_dir: Path) -> list:
    from tianref.analysis.edge_figures import figure_clocks, figure_edge_run, figure_lifecycle
    fig_dir.mkdir(parents=True, exist_ok=True)
    files = []
    rows = {r.path.name: r for r in records}
    if section == "clocks":
        groups = []
        for c in doc["clocks"]["conditions"]:
            items = []
            for v in doc["clocks"]["runs"]:
                if v["condition"] == c:
                    rec = rows[v["tag"]]
                    items.append((_rows_of(rec, ("W_srank", "train_loss")), v))
            groups.append((c, items))
        files.append(_save_fig(figure_clocks(groups, "two clocks: W stable rank and train loss"),
                               fig_dir / "clocks.png"))
    else:
        d = doc["lifecycle"]
        by = {}
        for v in d["runs"]:
            by.setdefault(v["condition"], []).append(rows[v["tag"]])
        files.append(_save_fig(figure_lifecycle(by, d["probes"]), fig_dir / "lifecycle.png"))
        first = sorted(records, key=lambda r: (_cond(r) != doc["lifecycle"]["grok"], r.config["seed"]))[0]
        files.append(_save_fig(figure_edge_run(_rows_of(first, ("W_edge_gfrac", "W_edge_cos", "V_edge_gfrac",
                                                                "V_edge_cos", "test_acc")),
                                               f"edge split, {first.path.name}"), fig_dir / "edge_seed.png"))
    return files


def _rows_of(rec, keys) -> list:
    cols = {k: rec.col(k) for k in keys}
    return [{"epoch": t, **{k: float(c[t]) for k, c in cols.items() if math.isfinite(c[t])}}
            for t in range(rec.n_epochs)]


# --- the section end to end -------------------------------------------------------------------

def reproduce_seed_section(section: str, root, scale, *, n_jobs: int = 2, python: str = "python",
                           xp: str = "numpy", store_to=None, command: str = "", report=lambda m: None) -> dict:
    t0 = time.time()
    root = Path(os.path.abspath(root))
    section_dir = root / section
    jobs = section_jobs(root, section, scale, xp)
    section_dir.mkdir(parents=True, exist_ok=True)
    report(f"{section}: {len(jobs)} runs in {section_dir}")
    res = run_section(jobs, n_jobs, python, lambda m: report(f"{section}: {m}"))
    records = [read_run(j.out) for j in jobs]
    cfg0 = records[0].config
    doc = {"section": section, "scale": asdict(scale), "command": command, "n_runs": len(records),
           "runs": [r.path.name for r in records], "seeds": sorted({r.config["seed"] for r in records}),
           "epochs": section_epochs(section, scale),
           "setup": {"M": cfg0.get("M"), "K": cfg0.get("K"), "n_train": cfg0.get("n_train"),
                     "dtype": ",".join(sorted({str(r.config.get("dtype")) for r in records})),
                     "backend": ",".join(sorted({str(r.meta.get("versions", {}).get("backend"))
                                                 for r in records}))}}
    if section == "lifecycle":
        probes = probe_runs(records, scale, xp, n_jobs, section_dir / "_probes", report)
        doc["lifecycle"] = json.loads(to_json(lifecycle_doc(records, probes, scale)))
        doc["claims"] = claims_lifecycle(doc["lifecycle"])
    else:
        doc["clocks"] = json.loads(to_json(clocks_doc(records)))
        doc["claims"] = claims_clocks(doc["clocks"])
    doc["figures"] = figures(section, doc, records, section_dir / "figures")
    write_atomic(section_dir / "summary.json", to_json(doc))
    write_atomic(section_dir / "report.md", (report_lifecycle if section == "lifecycle" else report_clocks)(doc))
    out = {"runs": len(jobs), "ran": res["ran"], "skipped": res["skipped"], "dir": str(section_dir),
           "figures": len(doc["figures"]), "stored": None}
    if store_to is not None:
        prov = provenance(doc, records, jobs, res, time.time() - t0, command)
        out["stored"] = str(store_section(section_dir, Path(store_to), scale.name, section, prov))
        report(f"{section}: stored in {out['stored']}")
    out["wall_s"] = round(time.time() - t0, 1)
    return out
