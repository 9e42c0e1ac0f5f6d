"""Tian's sections end to end: run, measure, put each claim beside our number, draw, store.

References: :mod:`tianref.experiments.protocols_tian` (the runs), :mod:`.tian_analysis` (the numbers);
docs/paper-protocol.md §1 T6; Tian, arXiv:2509.21519 and his slides (the claims quoted in CLAIMS).

Data flow of :func:`reproduce_tian_section`
    section_jobs -> sweep.run_jobs (a run whose loss became non-finite is kept as 'diverged'; any other
    failure stops the section) -> read_run -> run_stats -> the section's tables -> claims
    -> figures -> ROOT/<section>/summary.json, report.md -> store_section (with provenance) if asked
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from tianref.analysis.records import read_run
from tianref.analysis.summarize import fmt, to_json, write_atomic
from tianref.errors import InputError, RunFailure
from tianref.experiments import protocols_tian as pt, sweep
import tianref.experiments.reproduce.tian_analysis as ta
from tianref.experiments.reproduce.rows import load_published
from tianref.experiments.reproduce.jobs import section_jobs
from tianref.experiments.reproduce.store import provenance, store_section

CLAIMS = {
    "scaling": "Theorem 4 (Tian): generalisation needs n/M² ≳ log M / M, i.e. p ≳ p_crit = log M / M. "
               "The paper's T6: the M × p sweep, with 'ρ ≥ 0.075 fires in 60/60 runs, at ep ~11–25'.",
    "critical": "Theorem 4 (Tian): the memorisation-to-generalisation boundary sits at p = c·log M / M with a "
                "constant c (his code's default multiplier is 2.7482).",
    "muon": "Tian's slides: 'Muon can lead to more diverse weights in the stage of interactive feature learning' "
            "(more distinct Fourier features, less redundant hidden units).",
    "ridge": "Tian's Stage I: with V at its ridge solution, G_F = η(F̃F̃ᵀ + ηI)⁻¹ỸỸᵀF̃(F̃F̃ᵀ + ηI)⁻¹, and the "
             "features then emerge as Fourier frequencies (Stage II); his code offers the ridge top layer.",
}


CAVEATS = {
    "muon": "Tian's arrangement shares one learning rate between Muon (W) and Adam (V). A Muon step changes W by "
            "lr·O with every singular value of O near 1, ‖ΔW‖_F ≈ lr·√(2M), against ≈ lr·√(2MK) for Adam's "
            "sign-like step (about 45× more at M = 71, K = 2048), so at equal lr this compares step sizes as "
            "much as update directions.",
    "critical": "η and the epochs are our choice (the claim names neither); a seed that would grok after the "
                "last epoch counts as not grokking, which moves the apparent boundary to larger c.",
}


def _diverged(failed) -> set:
    out = set()
    for f in failed:
        try:
            text = Path(f["log"]).read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        if "non-finite" in text:
            out.add(f["name"])
        else:
            raise RunFailure(f"run {f['name']} failed (exit {f['returncode']}); log: {f['log']}")
    return out


def _diverged_before(jobs) -> set:
    """Runs whose log ends with a non-finite-loss failure and whose rows are on disk."""
    out = set()
    for j in jobs:
        log = j.out.parent / sweep.LOG_DIR / f"{j.name}.log"
        if not (log.is_file() and (j.out / "metrics.jsonl").is_file()):
            continue
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
        if "non-finite" in tail and sweep.job_state(j) != "done":
            out.add(j.name)
    return out


def analyse(section: str, records, stats, pub, scale) -> dict:
    """The section's tables and claim rows (a JSON-ready dict)."""
    out = {"claim": CLAIMS[section], "claims": []}
    C = out["claims"]
    if section == "scaling":
        T6 = pub["tables"]["T6"]
        table = ta.scaling_table(stats, T6)
        out["table"] = table
        b = ta.boundary([{"M": r["M"], "x": r["p"], "frac": r["n_grok"] / r["n"]} for r in table])
        pb = ta.boundary([{"M": r["M"], "x": r["p"], "frac": (r["paper"] or {}).get("n_grok", 0) / 5}
                          for r in table if r["paper"]])
        for M, v in b.items():
            lo = v["first_ge_half"]
            C.append({"claim": f"M = {M}: smallest grid p where ≥ half the seeds grok, vs p_crit = {pt.p_crit(M):.3f}",
                      "paper": None if M not in pb else pb[M]["first_ge_half"],
                      "ours": lo, "ours_over_pcrit": None if lo is None else lo / pt.p_crit(M),
                      "consistent": None if lo is None else lo > pt.p_crit(M)})
        fired = sum(s["rho_fire"] is not None for s in stats)
        meds = [r["rho_fire_med"] for r in table if r["rho_fire_med"] is not None]
        C.append({"claim": "ρ_tian ≥ 0.075 fires in every run, at ep ~11–25 (cell medians)",
                  "paper": "60/60 (contradicted by its own diverged cell), medians 11–22",
                  "ours": f"{fired}/{len(stats)}, medians {fmt(min(meds)) if meds else '—'}–{fmt(max(meds)) if meds else '—'}",
                  "consistent": fired == len(stats) and bool(meds) and max(meds) <= 25})
        big = [r for r in table if r["M"] == 127 and r["p"] == 0.5]
        if big:
            r = big[0]
            C.append({"claim": "M = 127, p = 0.5: the paper's run diverged (train acc 0.027 → 0.008, ρ → NaN)",
                      "paper": "0/5 grok, diverged", "ours": f"{r['n_grok']}/{r['n']} grok, {r['n_collapsed']} "
                      f"collapsed, {r['n_diverged']} diverged", "consistent": None})
    elif section == "critical":
        table = ta.critical_table(stats)
        out["table"] = table
        b = ta.boundary([{"M": r["M"], "x": r["c"], "frac": r["frac"]} for r in table])
        out["boundary"] = {str(k): v for k, v in b.items()}
        ivals = []
        for M, v in b.items():
            lo, hi = v["last_below"], v["first_ge_half"]
            ivals.append((lo if lo is not None else 0.0, hi if hi is not None else float("inf")))
            C.append({"claim": f"M = {M}: the boundary c (grok fraction crosses 1/2) lies in",
                      "paper": "a constant c (Theorem 4)", "ours": f"({fmt(lo) if lo is not None else '< grid'}, "
                      f"{fmt(hi) if hi is not None else '> grid'}]", "consistent": None})
        lo_all, hi_all = max(i[0] for i in ivals), min(i[1] for i in ivals)
        located = any(v["first_ge_half"] is not None and v["last_below"] is not None for v in b.values())
        open_M = [M for M, v in b.items() if v["first_ge_half"] is None or v["last_below"] is None]
        note = f" (no crossing inside the grid for M = {', '.join(map(str, open_M))})" if open_M else ""
        C.append({"claim": "one constant c fits every M (the intervals overlap)", "paper": "yes (Theorem 4)",
                  "ours": (("yes" if lo_all < hi_all else "no") + note) if located else
                  "undecided: no M has its boundary inside the grid",
                  "consistent": (lo_all < hi_all) if located else None})
    else:
        key = "optimizer" if section == "muon" else "top_layer"
        out["groups"] = ta.group_summary(stats, key)
        out["series"] = {k: ta.series(records, k, lambda r: r.config.get(key, "adam" if key == "optimizer"
                                                                          else "trained"))
                         for k in ("test_acc", "freq_coverage", "freq_purity_med", "ftf_ratio", "indep_cos_med",
                                   "gF_norm")}
        g = out["groups"]
        if section == "muon":
            a, m = g.get("adam", {}), g.get("muon", {})
            for k, better, what in (
                    ("final_freq_coverage_med", "higher", "final freq_coverage (distinct pure frequencies)"),
                    ("final_freq_purity_med_med", "higher", "final median purity"),
                    ("final_ftf_ratio_med", "lower", "final ftf_ratio (feature overlap)"),
                    ("final_indep_cos_med_med", "lower", "final independence proxy (median |cos| of G_F columns)"),
                    ("t05_med", "lower", "t(test ≥ 0.5) (not claimed; for context)")):
                va, vm = a.get(k), m.get(k)
                ok = None if va is None or vm is None else (vm > va if better == "higher" else vm < va)
                C.append({"claim": f"{what}: Muon {better} than Adam",
                          "paper": "Muon more diverse" if k != "t05_med" else "—",
                          "ours": f"Adam {fmt(va)}, Muon {fmt(vm)} (medians over seeds)",
                          "consistent": ok if k != "t05_med" else None})
        else:
            checks = {}
            for r in records:
                checks[r.path.name] = ta.ridge_gf_check(r.path, r.config, r.config.get("checkpoint_epochs", []))
            out["gf_check"] = checks
            for top in ("trained", "ridge"):
                d = [c for name, cs in checks.items() if name.startswith(top) for c in cs]
                eps = sorted({c["epoch"] for c in d})
                med = {e: ta._med([c["rel_dist"] for c in d if c["epoch"] == e]) for e in eps}
                out.setdefault("gf_rel_dist_med", {})[top] = {str(e): v for e, v in med.items()}
                if eps:
                    C.append({"claim": f"{top} V: ‖G_F − G_F(ridge limit)‖/‖G_F(ridge limit)‖ "
                                       f"(λ = {'nη/2' if top == 'trained' else '--ridge-reg'})",
                              "paper": "→ 0 (Stage I)" if top == "trained" else "0 (identity)",
                              "ours": ", ".join(f"ep {e}: {fmt(med[e])}" for e in eps), "consistent": None})
            for top in ("trained", "ridge"):
                if top in g:
                    C.append({"claim": f"{top} V: grokked/n, median t(test ≥ 0.99), final coverage",
                              "paper": "ridge V is his code's option", "ours": f"{g[top]['n_grok']}/{g[top]['n']}, "
                              f"{fmt(g[top]['t099_med'])}, {fmt(g[top]['final_freq_coverage_med'])}",
                              "consistent": None})
    return out


def report_markdown(doc: dict) -> str:
    s, a = doc["section"], doc["analysis"]
    L = [f"# {s}: Tian's claim beside this implementation ({doc['scale']['name']} scale)", "",
         f"Command: `{doc['command']}`  ", f"Runs: {doc['n_runs']}, seeds {doc['seeds']}, "
         f"epochs {doc['epochs']}; dtype {doc['setup']['dtype']}, backend {doc['setup']['backend']}.", "",
         f"**Claim.** {a['claim']}", ""]
    if s in CAVEATS:
        L += [f"**Caveat.** {CAVEATS[s]}", ""]
    if doc.get("missing_runs"):
        miss = doc["missing_runs"]
        L += [f"**Not all runs are here.** {len(miss)} of the section's {len(miss) + doc['n_runs']} runs did not "
              f"finish in the time this reproduction had and are left out of every number below: "
              f"{', '.join(miss)}. `python cli.py reproduce --section {s} --plan` (or `--slurm FILE`) lists "
              "their train commands; run them, then this section again, to complete it.", ""]
    L += ["| claim | paper / theory | ours | consistent? |", "|---|---|---|---|"]
    for c in a["claims"]:
        ok = {True: "yes", False: "no", None: "—"}[c["consistent"]]
        L.append(f"| {c['claim']} | {c['paper'] if c['paper'] is not None else '—'} | {c['ours'] if c['ours'] is not None else '—'} | {ok} |")
    L.append("")
    if s == "scaling":
        L += ["| M | p | p/p_crit | grok ours | grok paper | t0.99 ours | t0.99 paper | ρ fire ours | ρ fire paper "
              "| lead ours | lead paper | collapsed | diverged |", "|" + "---|" * 13]
        for r in a["table"]:
            p = r["paper"] or {}
            L.append(f"| {r['M']} | {r['p']} | {r['p_over_pcrit']:.2f} | {r['n_grok']}/{r['n']} | "
                     f"{p.get('n_grok', '—')}/5 | {fmt(r['t099_med'])} | {fmt(p.get('t099'))} | "
                     f"{fmt(r['rho_fire_med'])} | {fmt(p.get('rho_fire'))} | {fmt(r['lead_med'])} | "
                     f"{fmt(p.get('lead'))} | {r['n_collapsed']} | {r['n_diverged']} |")
        L += ["", "t0.99 and lead are medians over the runs that grokked; ρ fire over all runs; lead = t(test ≥ 0.5) "
              "− ρ fire. A run is *collapsed* when at its last row train accuracy ≤ 2/M and the train loss ≥ "
              "0.98 (1 − 1/M) (constant outputs), *diverged* when its loss became non-finite."]
    elif s == "critical":
        L += ["| M | c | p | n_train | grok | median t0.99 | median final test acc |", "|---|---|---|---|---|---|---|"]
        for r in a["table"]:
            L.append(f"| {r['M']} | {r['c']} | {r['p']:.4f} | {r['n_train']} | {r['n_grok']}/{r['n']} | "
                     f"{fmt(r['t099_med'])} | {fmt(r['final_test_med'])} |")
        L += ["", f"η = {pt.CRITICAL_ETA:g} and {pt.CRITICAL_EPOCHS} epochs at the full scale (our choice, "
              "protocols_tian.py); 'grok' = test accuracy ≥ 0.99 within the run."]
    else:
        L += ["| group | n | grokked | median t0.5 | median t0.99 | final test acc | final coverage | final purity "
              "| final ftf_ratio | final indep |cos| |", "|" + "---|" * 10]
        for k, g in a["groups"].items():
            L.append(f"| {k} | {g['n']} | {g['n_grok']} | {fmt(g['t05_med'])} | {fmt(g['t099_med'])} | "
                     f"{fmt(g['final_test_acc_med'])} | {fmt(g['final_freq_coverage_med'])} | "
                     f"{fmt(g['final_freq_purity_med_med'])} | {fmt(g['final_ftf_ratio_med'])} | "
                     f"{fmt(g['final_indep_cos_med_med'])} |")
    L += ["", "Figures: " + ", ".join(f"`figures/{f}`" for f in doc.get("figures", [])), ""]
    return "\n".join(L) + "\n"


def _all_rows(job) -> bool:
    """Every row 0..E is logged (the run finished training; its checkpoints may not have travelled)."""
    from tianref.analysis.records import METRICS_FILE, read_rows
    try:
        rows, _ = read_rows(Path(job.out) / METRICS_FILE)
    except (InputError, OSError):
        return False
    return set(range(job.epochs + 1)) <= {r.get("epoch") for r in rows}


def reproduce_tian_section(section: str, root, scale, *, n_jobs: int = 2, python: str = sys.executable,
                           xp: str = "numpy", store_to=None, command: str = "", report=lambda m: None,
                           no_train: bool = False) -> dict:
    """Run (unless ``no_train``), measure, report and optionally store one of Tian's sections.

    ``no_train``: train nothing; summarise the runs whose rows 0..E are all logged (e.g. a tree copied
    back from another machine without its checkpoints) and list the others as missing, with the
    commands that finish them (``--plan`` / ``--slurm``)."""
    t0 = time.time()
    root = Path(os.path.abspath(root))
    section_dir = root / section
    all_jobs = section_jobs(root, section, scale, xp)
    section_dir.mkdir(parents=True, exist_ok=True)
    report(f"{section}: {len(all_jobs)} runs in {section_dir}")
    missing = []
    if no_train:
        jobs = [j for j in all_jobs if _all_rows(j)]
        missing = [j.name for j in all_jobs if j not in jobs]
        if not jobs:
            raise InputError(f"{section}: --no-train found no run with all its rows under {section_dir}")
        report(f"{section}: --no-train: {len(jobs)} runs with all rows, {len(missing)} missing")
        res, before = {"ran": 0, "skipped": len(jobs), "failed": []}, set()
    else:
        jobs = all_jobs
        before = _diverged_before(jobs)              # deterministic: running them again would diverge again
        if before:
            report(f"{section}: {len(before)} run(s) diverged in an earlier call; kept as diverged, not rerun")
        res = sweep.run_jobs([j for j in jobs if j.name not in before], n_jobs, python,
                             report=lambda m: report(f"{section}: {m}"))
    diverged = _diverged(res["failed"]) | before
    records = [read_run(j.out) for j in jobs]
    stats = [ta.run_stats(r, diverged=r.path.name in diverged) for r in records]
    cfg0 = records[0].config
    doc = {"section": section, "scale": {"name": scale.name}, "command": command, "n_runs": len(records),
           "runs": [r.path.name for r in records], "seeds": sorted({s["seed"] for s in stats}),
           "epochs": sorted({s["epochs"] for s in stats}),
           "setup": {"M": sorted({s["M"] for s in stats}), "K": cfg0.get("K"),
                     "dtype": ",".join(sorted({str(r.config.get("dtype")) for r in records})),
                     "backend": ",".join(sorted({str(r.meta.get("versions", {}).get("backend")) for r in records}))},
           "per_run": stats, "comparison": [], "missing_runs": missing}   # the claims: doc["analysis"]
    report(f"{section}: measuring")
    doc["analysis"] = analyse(section, records, stats, load_published(), scale)
    from tianref.experiments.reproduce.tian_figures import make_tian_figures
    doc["figures"] = make_tian_figures(section, doc, load_published(), section_dir / "figures")
    doc = json.loads(to_json(doc))
    write_atomic(section_dir / "summary.json", to_json(doc))
    write_atomic(section_dir / "report.md", report_markdown(doc))
    out = {"runs": len(jobs), "ran": res["ran"], "skipped": res["skipped"], "diverged": len(diverged),
           "dir": str(section_dir), "figures": len(doc["figures"]), "stored": None}
    if store_to is not None:
        doc_p = dict(doc, scale={"name": scale.name})
        prov = provenance(doc_p, records, jobs, res, time.time() - t0, command)
        out["stored"] = str(store_section(section_dir, Path(store_to), scale.name, section, prov))
        report(f"{section}: stored in {out['stored']}")
    out["wall_s"] = round(time.time() - t0, 1)
    return out
