"""The ``clocks`` section: the two-training-clocks seed paper's claims on this model (per run, across
seeds, the claims computed from the numbers, report.md).

Reference: *Deciphering Two Training Clocks in Grokking via Deep Linear Network Theory with Conditional
ReLU Reduction*; docs/edge-and-clocks.md §5 and §8.
"""
from __future__ import annotations

import math

import numpy as np

from tianref.analysis import clock_events, detectors as det
from tianref.analysis.summarize import fmt
from tianref.experiments.reproduce.seed_stats import _cell, _claims_md, _cond, _lt, _med, _stats

FALL_FACTOR = 0.95        # "falls further": final/max below 0.95x the no-weight-decay runs' value


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
                         ("‖WV‖_* falls further with weight decay" if dn else "‖WV‖_* does not fall further")]
                verdict = ("agrees: " if ds and dn else ("partly: " if ds or dn else "disagrees: ")) + "; ".join(parts)
            out.append((f"[{head or 'x²'}] Weight decay simplifies the representation late: the stable rank "
                        "and the nuclear norm of WV (the two-layer Schatten-1 penalty) fall.",
                        f"median final/max, eta={eta:g} vs eta=0: W srank {fmt(fs)} vs {fmt(fs0)}, "
                        f"‖WV‖_* {fmt(fn)} vs {fmt(fn0)}", verdict))
    return out


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
