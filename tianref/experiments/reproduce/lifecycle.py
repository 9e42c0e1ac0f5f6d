"""The ``lifecycle`` section: the spectral-edge seed paper's claims on this model (per run, across
seeds, the claims computed from the numbers, report.md).

Reference: *The Lifecycle of the Spectral Edge: From Gradient Learning to Weight-Decay Compression*;
docs/edge-and-clocks.md §8. Definitions: see tianref.experiments.reproduce.seeds (module docstring).
"""
from __future__ import annotations

import math

from tianref.analysis import detectors as det
from tianref.analysis.summarize import fmt
from tianref.experiments.protocols import LIFECYCLE_SWITCH, scaled_eta
from tianref.experiments.reproduce.views import scaled
from tianref.experiments.reproduce.seed_stats import (_cell, _claims_md, _cond, _first, _med,
                                                      _phase_median, _stats)

ETA_GROK = 2e-4                                   # the weight-decay condition (scaled by Scale.eta_factor)
ABLATION_CLAIM = 4000.0                           # the seed's "> 4000x a random direction"


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
        verdict = ("agrees: abs(cos) grows" if abs(cg) > abs(cm) else "disagrees: abs(cos) does not grow") + \
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
                    f"median abs(dL) ratio, edge / random (W and V jointly): {abl_txt}", verdict))
        flat_txt = ", ".join(f"ep {p['epoch']}: {fmt(f)}" for p, f in zip(late_rows, flat))
        goodf = [f for f in flat if f is not None]
        out.append(("After grokking the edge is flat under perturbation.",
                    f"median abs(curvature) along the edge / random (jointly): {flat_txt}",
                    "—" if not goodf else ("agrees (flatter than random)" if max(goodf) < 1 else
                                           ("partly" if min(goodf) < 1 else
                                            "disagrees (not flatter than random directions)"))))
    ist = d["intervention_stats"]
    if ist:
        gw, gk = _med(ist["W_fro_growth"]), _med(ist["W_fro_growth_kept_eta"])
        sw, sk = _med(ist["W_srank_growth"]), _med(ist["W_srank_growth_kept_eta"])
        out.append(("Removing weight decay after grokking reverses the compression.",
                    f"median ‖W‖_F(E)/‖W‖_F(T_s): eta -> 0: {fmt(gw)}, eta kept: {fmt(gk)}; "
                    f"W srank(E)/srank(T_s): eta -> 0: {fmt(sw)}, eta kept: {fmt(sk)}",
                    "—" if gw is None else ("agrees (‖W‖ grows back)" if gw > 1 and (gk is None or gw > gk)
                                            else "disagrees (‖W‖ does not grow back)")
                    + ("" if sw is None else ("; srank grows" if sw > 1 else "; srank does not grow"))))
        a0, a1 = _med(ist["test_acc_at_switch"]), _med(ist["test_acc_end"])
        out.append(("... while the algorithm stays.",
                    f"median test accuracy at the switch {fmt(a0)}, at the end {fmt(a1)}",
                    "—" if a1 is None else ("agrees (test accuracy stays >= 0.99)" if a1 >= 0.99 and a0 >= 0.99
                                            else ("not testable: the runs had not grokked at the switch"
                                                  if a0 < 0.99 else "disagrees (test accuracy falls)"))))
    return out


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
    L += ["", "Ratios: ablation = abs(test-loss change when e is projected out) / mean over random unit "
          "directions of the same; flatness = abs(curvature along e) / mean abs(curvature) along random "
          "directions, step eps = 1e-3 ||theta||. The seed's numbers come from transformers on Dyck-1 "
          "and SCAN; this is a two-layer network on modular addition.", ""]
    if doc["scale"]["name"] != "full":
        L += [f"Scale {doc['scale']['name']}: a reduced configuration (M = {doc['setup']['M']}); it checks the "
              "pipeline. Read the full scale for what this model says about the seed.", ""]
    L += [f"Figures: {', '.join(doc.get('figures', []))}", ""]
    return "\n".join(L)
