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

Every statement in a report is computed from these numbers (``_claims_*``); nothing is written by hand
about the outcome.
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

import numpy as np

from tianref.analysis import clock_events, detectors as det
from tianref.analysis.records import read_run
from tianref.analysis.summarize import fmt, to_json, write_atomic
from tianref.experiments.protocols import LIFECYCLE_SWITCH, scaled_eta
from tianref.experiments.reproduce.figures import _save_fig
from tianref.experiments.reproduce.sections import run_section, scaled, section_epochs, section_jobs
from tianref.experiments.reproduce.store import provenance, store_section

SEED_SECTIONS = ("lifecycle", "clocks")
PROBE_EPOCHS = (50, 100, 125, 175, 250, 400)     # memorisation, ~t0.5, grokking, ~lock-in, after
N_RANDOM = {"full": 100}                          # random directions per probe; 10 at smaller scales
ETA_GROK = 2e-4                                   # the weight-decay condition (scaled by Scale.eta_factor)
ABLATION_CLAIM = 4000.0                           # the seed's "> 4000x a random direction"
FALL_FACTOR = 0.95        # "falls further": final/max below 0.95x the no-weight-decay runs' value


# --- per run ------------------------------------------------------------------------------------

def _cond(rec) -> str:
    c = rec.config
    if c.get("eta_schedule"):
        return "switch"
    name = f"eta={float(c['eta']):g}"
    if c.get("loss", "tian") == "ce" or c.get("act") != "sqr":
        name = f"{c.get('act')} {c.get('loss', 'tian')} " + name
    return name


def _first(col, thr) -> float:
    hit = np.flatnonzero(np.asarray(col, dtype=float) >= thr)
    return float(hit[0]) if hit.size else math.nan


def _nanmed(x) -> float:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else math.nan


def _phase_median(col, lo, hi) -> float:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        return math.nan
    return _nanmed(np.asarray(col, dtype=float)[int(lo):int(hi) + 1])


def lifecycle_run(rec, scale) -> dict:
    E = rec.n_epochs - 1
    w = int(rec.config["windows"][0])
    v = {"tag": rec.path.name, "seed": rec.config["seed"], "condition": _cond(rec),
         "t_mem": _first(rec.col("train_acc"), 0.99)}
    v["t05"], v["t099"] = det.test_crossings(rec.col("test_acc"))
    v["fire"] = det.slope_fire(rec.col("W_gap23"), t_min=scaled(det.SLOPE_T_MIN, scale)) \
        if rec.has("W_gap23") else math.nan
    sched = rec.config.get("eta_schedule")
    Ts = float(sched[-1][0]) if sched else math.nan
    v["switch"] = Ts
    end_after = Ts - 1 if sched else E
    phases = {"memorisation": (v["t_mem"], (v["t05"] - 1) if math.isfinite(v["t05"]) else E),
              "grokking": (v["t05"], v["t099"]),
              "after": (v["t099"] + 1, end_after)}
    if sched:
        phases["after switch"] = (Ts + w, E)
    v["phases"] = {}
    for ph, (lo, hi) in phases.items():
        v["phases"][ph] = {f"{p}_{k}": _phase_median(rec.col(f"{p}_edge_{k}"), lo, hi)
                           for p in "WV" for k in ("gfrac", "cos")}
        v["phases"][ph]["range"] = [lo, hi]
    at = {}
    for t in ([Ts] if sched else []) + [float(scaled(LIFECYCLE_SWITCH, scale)), float(E)]:
        if math.isfinite(t) and 0 <= t <= E:
            at[str(int(t))] = {k: float(rec.col(k)[int(t)]) for k in ("W_fro", "W_srank", "WV_nuc", "test_acc")}
    v["at"] = at
    return v


def clocks_run(rec) -> dict:
    v = {"tag": rec.path.name, "seed": rec.config["seed"], "condition": _cond(rec)}
    v.update(clock_events.clock_events(rec.columns))
    v["t05"], v["t099"] = det.test_crossings(rec.col("test_acc"))
    L = rec.col("train_loss")
    v["loss_min_ratio"] = float(np.nanmin(L) / L[0])      # how close the run came to t_cls's level
    ev = [(k, v[k]) for k in ("t_cls", "t05", "t_rep") if v[k] is not None and math.isfinite(v[k])]
    v["order"] = " <= ".join(k for k, _ in sorted(ev, key=lambda kv: kv[1])) if ev else "none"
    for key in ("W_srank", "WV_nuc"):
        col = rec.col(key)
        v[key] = {"start": float(col[0]), "max": float(np.nanmax(col)), "final": float(col[-1]),
                  "final_over_max": float(col[-1] / np.nanmax(col))}
    return v


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

def _stats(vals) -> dict:
    return det.across_runs([math.nan if v is None else v for v in vals])


def _cell(s) -> str:
    if s is None or s["n_fired"] == 0:
        return "—"
    if s["n"] == 1:
        return fmt(s["median"])
    cell = f"{fmt(s['median'])} [{fmt(s['min'])}, {fmt(s['max'])}]"
    return cell if s["n_fired"] == s["n"] else f"{cell} ({s['n_fired']}/{s['n']})"


def grok_condition(scale) -> str:
    """The name of the weight-decay condition (eta = 2e-4 at the full scale)."""
    return f"eta={scaled_eta(ETA_GROK, scale.eta_factor):g}"


def lifecycle_doc(records, probes, scale) -> dict:
    runs = [lifecycle_run(r, scale) for r in records]
    G = grok_condition(scale)
    conds = sorted({r["condition"] for r in runs}, key=lambda c: {G: 0, "eta=0": 1}.get(c, 2))
    by = {c: [r for r in runs if r["condition"] == c] for c in conds}
    stats = {}
    for c, rs in by.items():
        st = {k: _stats([r[k] for r in rs]) for k in ("t_mem", "t05", "t099", "fire")}
        st["phases"] = {ph: {k: _stats([r["phases"].get(ph, {}).get(k) for r in rs])
                             for k in ("W_gfrac", "W_cos", "V_gfrac", "V_cos")}
                        for ph in ("memorisation", "grokking", "after", "after switch")}
        stats[c] = st
    # probes: per condition, epoch and space
    pstats = {}
    for c, rs in by.items():
        recs = [p for r in rs for p in probes.get(r["tag"], [])]
        for p in recs:
            key = (c, p["epoch"], p["space"])
            pstats.setdefault(key, []).append(p)
    probe_table = []
    for (c, e, sp), ps in sorted(pstats.items(), key=lambda kv: (kv[0][0] != G, kv[0][1], kv[0][2])):
        probe_table.append({"condition": c, "epoch": e, "space": sp, "n": len(ps),
                            "ablation_ratio": _stats([p["probe"].get("ablation_ratio") for p in ps]),
                            "flatness_ratio": _stats([p["probe"].get("flatness_ratio") for p in ps]),
                            "dloss_abl": _stats([p["probe"]["edge"]["dloss_abl"] for p in ps]),
                            "dacc_abl": _stats([p["probe"]["edge"]["dacc_abl"] for p in ps]),
                            "gfrac": _stats([p["split"].get("gfrac") for p in ps]),
                            "cos": _stats([p["split"].get("cos") for p in ps]),
                            "test_acc": _stats([p["probe"]["test_acc"] for p in ps])})
    # intervention: switch runs against eta = 2e-4 runs of the same seed
    inter = []
    base = {r["seed"]: r for r in by.get(G, [])}
    for r in by.get("switch", []):
        Ts, E = str(int(r["switch"])), max(r["at"], key=int)
        b = base.get(r["seed"])
        row = {"seed": r["seed"], "switch": int(r["switch"]), "E": int(E)}
        for k in ("W_fro", "W_srank", "WV_nuc"):
            row[f"{k}_growth"] = r["at"][E][k] / r["at"][Ts][k]
            row[f"{k}_growth_kept_eta"] = (b["at"][E][k] / b["at"][Ts][k]) if b and Ts in b["at"] else math.nan
        row["test_acc_at_switch"] = r["at"][Ts]["test_acc"]
        row["test_acc_end"] = r["at"][E]["test_acc"]
        row["test_acc_end_kept_eta"] = b["at"][E]["test_acc"] if b else math.nan
        inter.append(row)
    inter_stats = {k: _stats([x[k] for x in inter]) for k in (inter[0] if inter else {}) if k not in ("seed",)}
    issues = sorted({f"{tag} epoch {p['epoch']}: {p['replay_check']}" for tag, ps in probes.items() for p in ps
                     if "NOT" in p["replay_check"] or "DIFFER" in p["replay_check"]})
    return {"grok": G, "runs": runs, "conditions": conds, "stats": stats, "probes": probe_table,
            "replay_issues": issues,
            "intervention": inter, "intervention_stats": inter_stats}


def clocks_doc(records) -> dict:
    runs = [clocks_run(r) for r in records]
    conds = list(dict.fromkeys(r["condition"] for r in runs))
    stats = {}
    for c in conds:
        rs = [r for r in runs if r["condition"] == c]
        st = {k: _stats([r[k] for r in rs]) for k in ("t_cls", "t_rep", "clock_ratio", "t05", "t099",
                                                      "loss_min_ratio")}
        for key in ("W_srank", "WV_nuc"):
            st[key] = {k: _stats([r[key][k] for r in rs]) for k in ("start", "max", "final", "final_over_max")}
        st["orders"] = sorted({r["order"] for r in rs})
        st["n_cls_before_rep"] = sum(1 for r in rs if _lt(r["t_cls"], r["t_rep"]))
        st["n_cls_before_t05"] = sum(1 for r in rs if _lt(r["t_cls"], r["t05"]))
        st["n_t05_before_rep"] = sum(1 for r in rs if _lt(r["t05"], r["t_rep"]))
        st["n"] = len(rs)
        stats[c] = st
    return {"runs": runs, "conditions": conds, "stats": stats,
            "options": {"cls_eps": clock_events.CLS_EPS, "rep_delta": clock_events.REP_DELTA}}


def _lt(a, b) -> bool:
    return a is not None and b is not None and math.isfinite(a) and math.isfinite(b) and a < b


# --- claims, computed -------------------------------------------------------------------------

def _med(s):
    return None if s is None or s["n_fired"] == 0 else s["median"]


def _drive(gfrac) -> str:
    """Which part wins along the edge: with cos near -1 the parts oppose, and the net motion
    sigma_1 = (sqrt(g2) - sqrt(wd2))^2 goes the way of the larger one (gfrac > 1/2: the gradient's)."""
    if gfrac is None:
        return "—"
    side = "the gradient part" if gfrac > 0.5 else "the weight-decay part"
    close = " (by a small margin: the parts nearly cancel)" if abs(gfrac - 0.5) < 0.05 else ""
    return side + close


def claims_lifecycle(d) -> list:
    """[(the seed's claim, what this model shows, verdict)] from the lifecycle document."""
    out = []
    G = d["grok"]
    g = d["stats"].get(G)
    if g is None:
        return out
    ph = g["phases"]
    mem, grok, after = (_med(ph[p]["W_gfrac"]) for p in ("memorisation", "grokking", "after"))
    out.append(("Before grokking the edge is gradient-driven.",
                f"median W gfrac = g2/(g2+wd2) in memorisation {fmt(mem)} (larger: {_drive(mem)})",
                "—" if mem is None else ("agrees" if mem > 0.5 else "disagrees")))
    late = [x for x in (grok, after) if x is not None]
    out.append(("At grokking the edge becomes a weight-decay (compression) axis.",
                f"median W gfrac during grokking {fmt(grok)} (larger: {_drive(grok)}), after {fmt(after)} "
                f"(larger: {_drive(after)})",
                "—" if not late else ("agrees" if max(late) < 0.5 else
                                      ("partly" if min(late) < 0.5 else "disagrees"))))
    cm, cg, ca = (_med(ph[p]["W_cos"]) for p in ("memorisation", "grokking", "after"))
    verdict = "—"
    if cm is not None and cg is not None:
        verdict = ("agrees: |cos| grows" if abs(cg) > abs(cm) else "disagrees: |cos| does not grow") + \
            ("; the parts are anti-parallel (they oppose each other along the edge)" if cg < 0 else "")
    out.append(("At grokking the gradient and weight-decay parts align.",
                f"median W cos(D^g u1, D^wd u1): memorisation {fmt(cm)}, grokking {fmt(cg)}, after {fmt(ca)}",
                verdict))
    joint = [p for p in d["probes"] if p["space"] == "joint"]
    t099 = _med(g["t099"])
    late_rows = [p for p in joint if p["condition"] == G and t099 is not None and p["epoch"] > t099] \
        or [p for p in joint if p["condition"] == G][-1:]
    ctrl = {p["epoch"]: _med(p["ablation_ratio"]) for p in joint if p["condition"] == "eta=0"}
    if late_rows:
        abl = [_med(p["ablation_ratio"]) for p in late_rows]
        dl = [_med(p["dloss_abl"]) for p in late_rows]
        flat = [_med(p["flatness_ratio"]) for p in late_rows]
        abl_txt = ", ".join(f"ep {p['epoch']}: {fmt(a)}x, edge dL {fmt(x)} (eta = 0: {fmt(ctrl.get(p['epoch']))}x)"
                            for p, a, x in zip(late_rows, abl, dl))
        good = [a for a in abl if a is not None]
        signs = [x for x in dl if x is not None]
        if not good:
            verdict = "—"
        elif min(good) <= 10:
            verdict = "disagrees (comparable to random directions)"
        elif signs and max(signs) < 0:
            verdict = ("disagrees in sign: removing the edge changes the test loss far more than a random "
                       "direction, but lowers it (the seed's ablation raises it)")
        elif signs and min(signs) > 0:
            verdict = (f"agrees (> {ABLATION_CLAIM:g}x)" if min(good) > ABLATION_CLAIM
                       else "agrees in kind (>> 1, loss rises) but below the seed's size")
        else:
            verdict = "mixed: the sign of the change differs between epochs"
        out.append((f"After grokking the edge is ablation-critical: removing it raises the test loss > "
                    f"{ABLATION_CLAIM:g}x more than removing a random direction.",
                    f"median |dL| ratio, edge / random (W and V jointly): {abl_txt}", verdict))
        flat_txt = ", ".join(f"ep {p['epoch']}: {fmt(f)}" for p, f in zip(late_rows, flat))
        goodf = [f for f in flat if f is not None]
        out.append(("After grokking the edge is flat under perturbation.",
                    f"median |curvature| along the edge / random (jointly): {flat_txt}",
                    "—" if not goodf else ("agrees (flatter than random)" if max(goodf) < 1 else
                                           ("partly" if min(goodf) < 1 else
                                            "disagrees (not flatter than random directions)"))))
    ist = d["intervention_stats"]
    if ist:
        gw, gk = _med(ist["W_fro_growth"]), _med(ist["W_fro_growth_kept_eta"])
        sw, sk = _med(ist["W_srank_growth"]), _med(ist["W_srank_growth_kept_eta"])
        out.append(("Removing weight decay after grokking reverses the compression.",
                    f"median ||W||_F(E)/||W||_F(T_s): eta -> 0: {fmt(gw)}, eta kept: {fmt(gk)}; "
                    f"W srank(E)/srank(T_s): eta -> 0: {fmt(sw)}, eta kept: {fmt(sk)}",
                    "—" if gw is None else ("agrees (||W|| grows back)" if gw > 1 and (gk is None or gw > gk)
                                            else "disagrees (||W|| does not grow back)")
                    + ("" if sw is None else ("; srank grows" if sw > 1 else "; srank does not grow"))))
        a0, a1 = _med(ist["test_acc_at_switch"]), _med(ist["test_acc_end"])
        out.append(("... while the algorithm stays.",
                    f"median test accuracy at the switch {fmt(a0)}, at the end {fmt(a1)}",
                    "—" if a1 is None else ("agrees (test accuracy stays >= 0.99)" if a1 >= 0.99 and a0 >= 0.99
                                            else ("not testable: the runs had not grokked at the switch"
                                                  if a0 < 0.99 else "disagrees (test accuracy falls)"))))
    return out


def claims_clocks(d) -> list:
    out = []
    for c in d["conditions"]:
        st = d["stats"][c]
        n = st["n"]
        tc, tr, t05 = _med(st["t_cls"]), _med(st["t_rep"]), _med(st["t05"])
        both = min(st["t_cls"]["n_fired"], st["t_rep"]["n_fired"])
        if both == 0:
            verdict = "not measurable: " + (f"the train loss never fell to eps x its row-0 value (lowest: "
                                            f"{fmt(_med(st['loss_min_ratio']))} x)"
                                            if st["t_cls"]["n_fired"] == 0 else "no t_rep")
        else:
            k = st["n_cls_before_rep"]
            verdict = "agrees" if k == n else (f"mixed ({k}/{n})" if k else "disagrees (t_rep <= t_cls)")
        if c.endswith("eta=0"):
            verdict = "for contrast (the seed's slow clock is driven by weight decay): " + verdict
        out.append((f"[{c}] The classifier clock runs first: T_cls < T_rep.",
                    f"median t_cls {fmt(tc)}, t_rep {fmt(tr)}, t0.5 {fmt(t05)}; t_cls < t_rep in "
                    f"{st['n_cls_before_rep']}/{n} runs, t_cls < t0.5 in {st['n_cls_before_t05']}/{n}, "
                    f"t0.5 < t_rep in {st['n_t05_before_rep']}/{n}", verdict))
    # weight decay: the same activation and loss with and without it
    pairs = {}
    for c in d["conditions"]:
        head, _, eta = c.rpartition("eta=")
        pairs.setdefault(head.strip(), {})[float(eta)] = c
    for head, by_eta in pairs.items():
        if 0.0 not in by_eta or len(by_eta) < 2:
            continue
        c0 = by_eta[0.0]
        for eta, c in sorted(by_eta.items()):
            if eta == 0:
                continue
            a, b = d["stats"][c], d["stats"][c0]
            fs, fs0 = _med(a["W_srank"]["final_over_max"]), _med(b["W_srank"]["final_over_max"])
            fn, fn0 = _med(a["WV_nuc"]["final_over_max"]), _med(b["WV_nuc"]["final_over_max"])
            verdict = "—"
            if None not in (fs, fs0, fn, fn0):
                ds, dn = fs < FALL_FACTOR * fs0, fn < FALL_FACTOR * fn0
                parts = [("srank falls further with weight decay" if ds else "srank does not fall further"),
                         ("||WV||_* falls further with weight decay" if dn else "||WV||_* does not fall further")]
                verdict = ("agrees: " if ds and dn else ("partly: " if ds or dn else "disagrees: ")) + "; ".join(parts)
            out.append((f"[{head or 'x²'}] Weight decay simplifies the representation late: the stable rank "
                        "and the nuclear norm of WV (the two-layer Schatten-1 penalty) fall.",
                        f"median final/max, eta={eta:g} vs eta=0: W srank {fmt(fs)} vs {fmt(fs0)}, "
                        f"||WV||_* {fmt(fn)} vs {fmt(fn0)}", verdict))
    return out


# --- report and figures -----------------------------------------------------------------------

def _claims_md(claims) -> list:
    lines = ["| the seed says | this model shows | verdict |", "|---|---|---|"]
    return lines + [f"| {a} | {b} | {c} |" for a, b, c in claims]


def report_lifecycle(doc) -> str:
    d = doc["lifecycle"]
    L = [f"# lifecycle: the spectral-edge seed on this model ({doc['scale']['name']} scale)", "",
         f"{doc['n_runs']} runs: {', '.join(d['conditions'])}; seeds {doc['seeds']}; M = {doc['setup']['M']}, "
         f"K = {doc['setup']['K']}, {doc['setup']['dtype']}, epochs {doc['epochs']}. The edge is the top "
         "eigenvector u1 of the first window's update Gram; g2 = ||D^g u1||^2, wd2 = ||D^wd u1||^2, "
         "gfrac = g2/(g2 + wd2), cos = cos(D^g u1, D^wd u1) (docs/edge-and-clocks.md). Cells: median "
         "[min, max] over seeds (fired/n when some runs lack the event).", "",
         "## Point by point", ""] + _claims_md(claims_lifecycle(d)) + ["", "## Events", "",
         "| condition | t_mem (train ≥ 0.99) | t0.5 | t0.99 | σ2/σ3 lock-in |", "|---|---|---|---|---|"]
    for c in d["conditions"]:
        s = d["stats"][c]
        L.append(f"| {c} | {_cell(s['t_mem'])} | {_cell(s['t05'])} | {_cell(s['t099'])} | {_cell(s['fire'])} |")
    L += ["", "## Edge split by phase (W; V in summary.json)", "",
          "| condition | phase | W gfrac | W cos | V gfrac | V cos |", "|---|---|---|---|---|---|"]
    for c in d["conditions"]:
        for ph, s in d["stats"][c]["phases"].items():
            if s["W_gfrac"]["n_fired"]:
                L.append(f"| {c} | {ph} | {_cell(s['W_gfrac'])} | {_cell(s['W_cos'])} | "
                         f"{_cell(s['V_gfrac'])} | {_cell(s['V_cos'])} |")
    L += ["", "## Ablation and flatness of the edge against random directions", "",
          "| condition | epoch | space | test acc | ablation ratio | edge dL | edge dacc | flatness ratio | gfrac | cos |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for p in d["probes"]:
        L.append(f"| {p['condition']} | {p['epoch']} | {p['space']} | {_cell(p['test_acc'])} | "
                 f"{_cell(p['ablation_ratio'])} | {_cell(p['dloss_abl'])} | {_cell(p['dacc_abl'])} | "
                 f"{_cell(p['flatness_ratio'])} | {_cell(p['gfrac'])} | {_cell(p['cos'])} |")
    if d["intervention"]:
        L += ["", "## Intervention: eta -> 0 at T_s (same seeds with eta kept, for reference)", "",
              "| seed | T_s | E | ‖W‖ E/T_s (η→0 / kept) | srank E/T_s (η→0 / kept) | ‖WV‖* E/T_s (η→0 / kept) "
              "| test acc T_s → E (kept: E) |", "|---|---|---|---|---|---|---|"]
        for x in d["intervention"]:
            L.append(f"| {x['seed']} | {x['switch']} | {x['E']} | {fmt(x['W_fro_growth'])} / "
                     f"{fmt(x['W_fro_growth_kept_eta'])} | {fmt(x['W_srank_growth'])} / "
                     f"{fmt(x['W_srank_growth_kept_eta'])} | {fmt(x['WV_nuc_growth'])} / "
                     f"{fmt(x['WV_nuc_growth_kept_eta'])} | {fmt(x['test_acc_at_switch'])} → "
                     f"{fmt(x['test_acc_end'])} ({fmt(x['test_acc_end_kept_eta'])}) |")
    if d.get("replay_issues"):
        L += ["", "**Replays that did not reproduce their run** (the probes then describe a state that differs "
              "from the logged one by rounding):", ""] + [f"- {x}" for x in d["replay_issues"]]
    L += ["", "Ratios: ablation = |test-loss change when e is projected out| / mean over random unit "
          "directions of the same; flatness = |curvature along e| / mean |curvature| along random "
          "directions, step eps = 1e-3 ||theta||. The seed's numbers come from transformers on Dyck-1 "
          "and SCAN; this is a two-layer network on modular addition.", ""]
    if doc["scale"]["name"] != "full":
        L += [f"Scale {doc['scale']['name']}: a reduced configuration (M = {doc['setup']['M']}); it checks the "
              "pipeline. Read the full scale for what this model says about the seed.", ""]
    L += [f"Figures: {', '.join(doc.get('figures', []))}", ""]
    return "\n".join(L)


def report_clocks(doc) -> str:
    d = doc["clocks"]
    o = d["options"]
    L = [f"# clocks: the two-training-clocks seed on this model ({doc['scale']['name']} scale)", "",
         f"{doc['n_runs']} runs; seeds {doc['seeds']}; M = {doc['setup']['M']}, K = {doc['setup']['K']}, "
         f"{doc['setup']['dtype']}, epochs {doc['epochs']}. t_cls = first epoch with train loss <= "
         f"{fmt(o['cls_eps'])} x its row-0 value; t_rep = first epoch from which W_srank stays within "
         f"{fmt(o['rep_delta'])} (relative) of its final value -- measured against the run's own end, so it "
         "is censored by the run length. Cells: median [min, max] over seeds.", "",
         "## Point by point", ""] + _claims_md(claims_clocks(d)) + ["", "## Clocks", "",
         "| condition | t_cls | t_rep | t_rep/t_cls | t0.5 | t0.99 | lowest train loss / row 0 | orders seen |",
         "|---|---|---|---|---|---|---|---|"]
    for c in d["conditions"]:
        s = d["stats"][c]
        L.append(f"| {c} | {_cell(s['t_cls'])} | {_cell(s['t_rep'])} | {_cell(s['clock_ratio'])} | "
                 f"{_cell(s['t05'])} | {_cell(s['t099'])} | {_cell(s['loss_min_ratio'])} | {'; '.join(s['orders'])} |")
    L += ["", "## Stable rank of W and nuclear norm of WV", "",
          "| condition | W srank start | max | final | final/max | ‖WV‖* start | max | final | final/max |",
          "|---|---|---|---|---|---|---|---|---|"]
    for c in d["conditions"]:
        a, b = d["stats"][c]["W_srank"], d["stats"][c]["WV_nuc"]
        L.append(f"| {c} | {_cell(a['start'])} | {_cell(a['max'])} | {_cell(a['final'])} | "
                 f"{_cell(a['final_over_max'])} | {_cell(b['start'])} | {_cell(b['max'])} | {_cell(b['final'])} | "
                 f"{_cell(b['final_over_max'])} |")
    L += ["", "The seed's theory is for deep linear networks with cross-entropy; x² runs here use the "
          "paper's class-centred MSE, ReLU runs use cross-entropy (--loss ce).", ""]
    if doc["scale"]["name"] != "full":
        L += [f"Scale {doc['scale']['name']}: a reduced configuration (M = {doc['setup']['M']}); it checks the "
              "pipeline. Read the full scale for what this model says about the seed.", ""]
    L += [f"Figures: {', '.join(doc.get('figures', []))}", ""]
    return "\n".join(L)


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
