"""The eta section: x², η ∈ {1e-5, 5e-5, 1e-4, 2e-4, 5e-4}, seeds 0-4, 600 epochs; per η the groks, ρ fire,
t0.5, lead, lock-in and lag against T5, the regression t_ρ = a·t0.5 + b and the leads; the lock-in of
η = 5e-4 explained as a slope peak on the threshold (docs/paper-protocol.md §6.2).

References: ``docs/paper-protocol.md`` §1 T5, §5.5-5.7, §6.2; the paper's analyze_eta_sweep.py (the late
range is rows [300:]). View: late 300-600.

Symbols
    t0.5, t_ρ   first epoch of test accuracy ≥ 0.5; the ρ_tian ≥ 0.075 fire epoch
    fire        the σ2/σ3 slope-detector fire epoch (the lock-in) at threshold 0.04; at 0.035 / 0.045 too
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tianref.analysis import diagnostics as dg, event_flags as ef
from tianref.analysis.summarize import fmt, run_values
import tianref.experiments.reproduce.measures as ms
from tianref.experiments.reproduce.figures import run_figures
from tianref.experiments.reproduce.jobs import epochs_of
from tianref.experiments.reproduce.paper_report import explained, paper_report
from tianref.experiments.reproduce.reporting import gram_name, num
from tianref.experiments.reproduce.rows import (ClaimList, _late, _stat, _view, find_condition, paper_source as src,
                                                shown_note)
from tianref.experiments.reproduce.section import Section
from tianref.experiments.reproduce.views import View, eta_at, late_view, scaled, summarise_views


def explain(records, opt, scale) -> dict:
    """Per η and run: the slope peak (overall and of the first rise above 0.035) and its epoch, the fire at
    0.035 / 0.04 / 0.045, and the fire with the float32 Grams."""
    grams = ms.logged_grams(records)
    keys = list(map(dg.fire_key, dg.FIRE_THRESHOLDS))
    out = {"grams": grams, "main": ms.main_gram_name(records), "thresholds": list(dg.FIRE_THRESHOLDS), "etas": []}
    for eta in sorted({float(r.config.get("eta", 0)) for r in records}):
        runs = []
        for r in ms.by_eta(records, eta):
            v = run_values(r, opt)
            ep, ept = dg.episode_peak(r.col("W_gap23"), dg.FIRE_THRESHOLDS[0], opt.slope_t_min, opt.slope_lag)
            runs.append({"seed": r.config.get("seed"), "slope_peak": ms.f_or_none(v["slope_peak"]),
                         "slope_peak_epoch": ms.f_or_none(v["slope_peak_epoch"]),
                         "first_peak": ms.f_or_none(ep), "first_peak_epoch": ms.f_or_none(ept),
                         "fires": {k: ms.f_or_none(v[k]) for k in keys},
                         "fire_by_gram": ms.fires_by_gram(r, opt, grams)})
        out["etas"].append({"eta": eta, "paper_eta": float(f"{eta / scale.eta_factor:.6g}"), "runs": runs,
                            "median_fire": {k: ms.median([x["fires"][k] for x in runs]) for k in keys},
                            "n_fired": {k: sum(x["fires"][k] is not None for x in runs) for k in keys}, "n": len(runs),
                            "median_fire_by_gram": {g: ms.median([x["fire_by_gram"][g] for x in runs])
                                                    for g in grams if g != "main"}})
    return out


def explain_markdown(ex: dict, pub: dict) -> list:
    T5 = {r["eta"]: r for r in pub["tables"]["T5"]["rows"]}
    keys = [dg.fire_key(c) for c in ex["thresholds"]]
    thr = " / ".join(fmt(c) for c in ex["thresholds"])
    grams = [g for g in ex["grams"] if g != "main"]
    out = ["### η sweep: how close each run's slope comes to the 0.04 threshold", "",
           f"Per run: the slope peak max s(t) at t ≥ t_min and its epoch; the peak of the first rise (the first "
           f"run of epochs with s > {fmt(ex['thresholds'][0])}); the fire epoch at thresholds {thr}"
           + (f"; the fire with the {', '.join(gram_name(g, ex) for g in grams)} Gram" if grams else "") + ".", "",
           f"| η | seed | slope peak (epoch) | first-rise peak (epoch) | fire at {thr} |"
           + "".join(f" fire, {gram_name(g, ex)} |" for g in grams), "|---|---|---|---|---|" + "---|" * len(grams)]
    for e in ex["etas"]:
        for r in e["runs"]:
            peak = num(r["slope_peak"], ".4f") + ("" if r["slope_peak"] is None else f" ({fmt(r['slope_peak_epoch'])})")
            first = num(r.get("first_peak"), ".4f") + ("" if r.get("first_peak") is None
                                                       else f" ({fmt(r['first_peak_epoch'])})")
            out.append(f"| {e.get('paper_eta', e['eta']):g} | {r['seed']} | {peak} | {first} | "
                       + " / ".join(fmt(r["fires"][k]) for k in keys)
                       + " |" + "".join(f" {fmt(r['fire_by_gram'].get(g))} |" for g in grams))
    out += ["", f"| η | median fire at {thr} (fired/n) | paper lock-in |"
            + "".join(f" median fire, {gram_name(g, ex)} |" for g in grams), "|---|---|---|" + "---|" * len(grams)]
    text = []
    for e in ex["etas"]:
        p = T5.get(e.get("paper_eta", e["eta"]))
        cells = " / ".join(f"{fmt(e['median_fire'][k])} ({e['n_fired'][k]}/{e['n']})" for k in keys)
        out.append(f"| {e.get('paper_eta', e['eta']):g} | {cells} | {fmt(None if p is None else p['lockin'])} |"
                   + "".join(f" {fmt(e['median_fire_by_gram'].get(g))} |" for g in grams))
        if p is None or p["lockin"] is None:
            continue
        meds = [e["median_fire"][k] for k in keys]
        m04 = e["median_fire"][dg.fire_key(0.04)]
        if m04 is None or abs(m04 - p["lockin"]) <= 25:
            continue                                            # no difference to explain
        near = [r for r in e["runs"] if r.get("first_peak") is not None and abs(r["first_peak"] - 0.04) <= 0.005]
        trained = "" if e.get("paper_eta", e["eta"]) == e["eta"] else f" (trained at η = {e['eta']:g})"
        s = (f"- **η = {e.get('paper_eta', e['eta']):g}**{trained}: our lock-in median is {fmt(m04)}, the paper's "
             f"{fmt(p['lockin'])}. "
             f"In {len(near)} of {e['n']} runs the first rise of the slope peaks within ±0.005 of the threshold"
             + (": " + ", ".join(f"seed {r['seed']} at {r['first_peak']:.4f} (epoch {fmt(r['first_peak_epoch'])})"
                                 for r in near) if near else "") + ". ")
        got = [x for x in meds if x is not None]
        lo, hi = (min(got), max(got)) if got else (None, None)
        per_run = [x for r in e["runs"] for x in (r["fires"][k] for k in keys) if x is not None]
        if lo is not None and lo <= p["lockin"] <= hi:
            s += (f"Moving the threshold by ±0.005 moves the median over [{fmt(lo)}, {fmt(hi)}], which contains "
                  "the paper's value: the difference is the detector's sensitivity to peaks that sit on "
                  "its threshold, not a different dynamics.")
        elif per_run and min(per_run) <= p["lockin"] <= max(per_run):
            s += (f"The medians at the three thresholds ({', '.join(fmt(x) for x in meds)}) do not reach it, "
                  f"but single runs' fires span [{fmt(min(per_run))}, {fmt(max(per_run))}]: a run whose peak "
                  "just misses the threshold fires at a later, second rise, so a median over few seeds "
                  "depends on how many of them just missed.")
        else:
            s += (f"Moving the threshold by ±0.005 (medians {', '.join(fmt(x) for x in meds)}) does not "
                  "reach the paper's value: the threshold sensitivity does not account for it.")
        for g in grams:
            mg = e["median_fire_by_gram"].get(g)
            if mg is not None:
                s += (f" With the {gram_name(g, ex)} Gram the median fire is {fmt(mg)}"
                      f"{' (the Gram precision does not move it)' if abs(mg - m04) <= 5 else ''}.")
        text.append(s)
    return out + [""] + (text or ["No η condition's lock-in median differs from the paper's by more than "
                                  "25 epochs."]) + [""]


def lag_note(ours, paper) -> str:
    """The note of a lag row: ours minus the paper's, in epochs ('' when either is missing)."""
    if ours is None or paper is None:
        return ""
    d = ours - paper
    return f"ours − the paper's = {fmt(d)} epoch{'' if abs(d) == 1 else 's'}; it moves with the lock-in row above"


def _linfit(x, y):
    if len(x) < 3 or len(set(x)) < 2:
        return None
    x, y = np.asarray(x, float), np.asarray(y, float)
    a, b = np.polyfit(x, y, 1)
    ss_res, ss_tot = float(((y - (a * x + b)) ** 2).sum()), float(((y - y.mean()) ** 2).sum())
    return {"slope": float(a), "intercept": float(b), "r2": 1 - ss_res / ss_tot if ss_tot else None}


class Eta(Section):
    name, title, default = "eta", "the weight-decay sweep", True
    log_grams = ("float32", "float32-seq")
    caveats = (5, 6, 7)

    def views(self, scale):
        E = epochs_of(self.runs(scale))["sqr"]
        opt = dataclasses.replace(late_view(scale).options, late_lo=scaled(300, scale), late_hi=E)
        return [View(f"late {opt.late_lo}-{E}", opt)]

    def measure(self, records, scale, ctx):
        views = self.views(scale)
        return {"views": summarise_views(records, views, ctx.section_dir), "extras": {}, "thm6": None,
                "explain": explain(records, views[0].options, scale) if records else None}

    def claims(self, doc, pub):
        T5, s = pub["tables"]["T5"], _view(doc)
        L = ClaimList(doc)
        reg_x, reg_y, leads = [], [], []
        for p in T5["rows"]:
            c = find_condition(s, eta_at(p["eta"], doc["scale"]))
            e = f"η={p['eta']:g}"
            if c is None:
                L.add(f"{e}: runs", f"{T5['n']} runs", "missing", "info", None, source=src("T5"))
                continue
            grok = [r for r in c["runs"] if r["t05"] is not None and r["t099"] is not None]
            o = s["options"]
            for r in grok:                       # a ρ fire from row 0 dates no onset: no lead, no point
                if r["rho_fire"] is not None and "lead_rho" not in ef.run_flags(r, o)["undefined"]:
                    reg_x.append(r["t05"])
                    reg_y.append(r["rho_fire"])
            L.add(f"{e}: groks (t0.5 and t0.99 reached), n/N", f"{p['n_grok']}/{T5['n']}", f"{len(grok)}/{c['n']}",
                  "same-count", (len(grok), c["n"]), (p["n_grok"], T5["n"]), condition=c["label"], source=src("T5"))
            L.value(f"{e}: ρ fire (epoch)", c, "rho_fire", p["rho_fire"],
                    source=src("T5", [7] if p["eta"] == 1e-5 else []))
            if p["eta"] == 1e-5:
                L.count(f"{e}: ρ fire, fired/n", c, "rho_fire", (2, 5), source=src("T5 text", [7]),
                        note="the table says '1 of 5 barely'")
            L.value(f"{e}: t(test ≥ 0.5)", c, "t05", p["test_0.5"], source=src("T5"))
            lead = ef.lead_of_medians(c, o)
            L.add(f"{e}: lead, median t0.5 − median t_ρ", fmt(p["lead"]), fmt(lead), "info", lead,
                  condition=c["label"], source=src("T5"))
            if lead is not None and p["lead"] is not None:
                leads.append(lead)
            f, t = _stat(c, "fire"), _stat(c, "t05")
            where = ("each run's slope peak and its fires at 0.035 / 0.04 / 0.045 are in 'η sweep: how close each "
                     "run's slope comes to the 0.04 threshold' below") if doc.get("explain") else ""
            L.value(f"{e}: lock-in, slope fire (epoch)", c, "fire", p["lockin"], source=src("T5", [6]), gram=True,
                    note=shown_note(f["median"] if f and f["n_fired"] else None, p["lockin"], "T5", where))
            lag = None if not (f and t and f["n_fired"] and t["n_fired"]) else f["median"] - t["median"]
            L.add(f"{e}: lag, median fire − median t0.5", fmt(p["lag"]), fmt(lag), "info", lag, condition=c["label"],
                  source=src("T5 (only −32 and +451 stated)", [6]), gram=True,
                  note=lag_note(lag, p["lag"]))
            L.value(f"{e}: {_late(s)}", c, "late", p["late_gap23_300_600"], source=src("T5", [5]), gram=True)
        reg, fit = T5["regression"], _linfit(reg_x, reg_y)
        for k, name in (("slope", "slope"), ("intercept", "intercept"), ("r2", "R²")):
            ours = None if fit is None else fit[k]
            L.add(f"regression t_ρ = a·t0.5 + b over grokking runs: {name}", fmt(reg[k]), fmt(ours), "info", ours,
                  source=src("T5"), note=f"n = {len(reg_x)} runs (paper: {reg['n_runs']})")
        pos = sum(1 for x, y in zip(reg_x, reg_y) if x - y > 0)
        L.add("lead t0.5 − t_ρ positive, runs", "{}/{}".format(*T5["lead_positive"]), f"{pos}/{len(reg_x)}",
              "same-count", (pos, len(reg_x)), tuple(T5["lead_positive"]), source=src("T5, §2 (the paper's §6 text)"))
        for i, end in ((0, "min"), (1, "max")):
            ours = (min(leads) if i == 0 else max(leads)) if leads else None
            L.add(f"range of the per-η leads ({end})", fmt(T5["lead_range"][i]), fmt(ours), "info", ours,
                  source=src("T5, §2 (the paper's §6 text)"),
                  note="79 and 154 are the extremes of the T5 lead column" if i == 0 else "")
        return L

    def figures(self, doc, records, fig_dir, scale, ctx):
        return run_figures(records, ("headline",), {"headline": "headline.png"}, fig_dir, doc["notes"], act="sqr")

    def report(self, doc, pub):
        return paper_report(doc, pub, self.caveats, explained(doc, pub, explain_markdown))


SECTION = Eta()
