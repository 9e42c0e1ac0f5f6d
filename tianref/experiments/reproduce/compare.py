"""The comparison of one section with the published numbers (pure: summary document + published
numbers -> rows; the rules of a row are in :mod:`tianref.experiments.reproduce.rows`).

References: ``docs/paper-protocol.md`` §1-2, per section: headline T2, T3, T3b, T7, T8 and
an independent 3-seed measurement of the paper code's protocol (``independent_measurement`` in
published.json, ``docs/reproduce.md``); relu T-ReLU and §2; window T4 (and its rank check); eta T5
(the per-η table, the regression t_ρ = a·t0.5 + b, the leads); extended T5b; thm6 T1, T1-IQR,
T1-seed0 and the T1 'ReLU' row (§5.1).

Symbols
    doc           a section's summary document (``pipeline.build_doc``); views[i]["summary"] are
                  :func:`tianref.analysis.summarize.summarize` outputs
    pub           the published numbers (``rows.load_published``)
    g, c          the grokking (η = 2e-4) and control (η = 0) conditions of a view
    t05, t099     first epoch of test accuracy ≥ 0.5 / ≥ 0.99; t_ρ: the ρ_tian ≥ 0.075 fire epoch
    fire, late    the σ2/σ3 slope-detector fire epoch; the late median of σ2/σ3
"""
from __future__ import annotations

import numpy as np

from tianref.experiments.reproduce.rows import (
    _cnt,
    _ep,
    _ev,
    _late,
    _sep,
    _stat,
    _thm6_cell,
    _view,
    find_condition,
    row,
)
from tianref.experiments.reproduce.sections import ETA_GROK, eta_at
from tianref.analysis.summarize import fmt


def compare_headline(doc, pub) -> list:
    s = _view(doc)
    g, c = find_condition(s, eta_at(ETA_GROK, doc["scale"])), find_condition(s, 0.0)
    T3, T2, T3b = pub["tables"]["T3"], pub["tables"]["T2"], pub["tables"]["T3b"]
    rho = next(r for r in T2["rows"] if r["threshold"] == 0.075)
    t099_paper = pub["tables"]["T-ReLU"]["sqr"]["t_test_0.99"]
    iss = pub["independent_measurement"]
    rows = [
        _ev("σ2/σ3 slope fire (epoch)", g, "fire", 174, rng=T3["slope_fire"]["grok"]["iqr"],
            source="T3", caveats=[12]),
        _cnt("σ2/σ3 slope fire, fired/n", g, "fire", (15, 15), source="T3"),
        _cnt("σ2/σ3 slope fire, fired/n", c, "fire", (0, 15), source="T3"),
        _ev("t(test ≥ 0.5)", g, "t05", 102, rng=T3["test_0.5"]["grok"]["iqr"], source="T3"),
        _cnt("t(test ≥ 0.5), reached/n", c, "t05", (0, 15), source="T3",
             note="control plateaus near 0.03"),
        _ev("t(test ≥ 0.99)", g, "t099", t099_paper, source="T-ReLU (x² column, '~150')"),
        _ev(_late(s), g, "late", 300, rng=T3["late_gap23"]["grok"]["bracket"],
            source="T3", caveats=[5], note="the bracket is an IQR or the min-max range"),
        _ev(_late(s), c, "late", 1.31, rng=T3["late_gap23"]["control"]["bracket"],
            source="T3", caveats=[5]),
        _sep("late σ2/σ3 grok/control", g, 229, source="T3, §2", caveats=[5]),
        _ev("slope fire − t(test ≥ 0.99)", g, "lag_fire_t099", 35, rng=[34, 36],
            source="§2 (6-seed pilot IQR)", caveats=[6]),
        _ev("slope fire − t(test ≥ 0.5)", g, "lag_fire_t05", 72, source="§5.6 ('~72'); T5 η=2e-4",
            caveats=[6]),
        _ev("ρ_tian ≥ 0.075 fire (epoch)", g, "rho_fire", rho["grok_median"], rng=rho["grok_iqr"],
            source="T2"),
        _cnt("ρ_tian ≥ 0.075 fire, fired/n", c, "rho_fire", tuple(rho["ctrl_fired"]), source="T2"),
        _ev("lead t(test ≥ 0.5) − t_ρ (per run)", g, "lead_rho", -rho["lead_vs_test_0.5"],
            source="T2, §2", note="T2 prints it as ρ fire − test = −84"),
    ]
    keys = {">= 25 for 5 consecutive epochs": "r12_ge25_x5", ">= 100": "r12_ge100",
            ">= 200": "r12_ge200", "slope of ln(sigma1/sigma2) >= 0.04 at ep >= 100": "r12_slope"}
    for d in T3b["detectors"]:
        k = keys[d["detector"]]
        q = f"σ1/σ2 {d['detector'].replace('sigma1/sigma2', 'σ1/σ2')}"
        rows.append(_ev(q + " (epoch)", g, k, d["grok"]["median"], source="T3b", group="sigma12"))
        rows.append(_cnt(q + ", fired/n", g, k, (d["grok"]["n_fired"], d["grok"]["n"]),
                         source="T3b", group="sigma12"))
        if d["control"]["n_fired"]:
            rows.append(_ev(q + " (epoch)", c, k, d["control"]["median"], source="T3b",
                            group="sigma12"))
        rows.append(_cnt(q + ", fired/n", c, k, (d["control"]["n_fired"], d["control"]["n"]),
                         source="T3b", group="sigma12"))
    rows.append(_ev("σ1/σ2 ≥ 100 − t(test ≥ 0.5)", g, "lag_r12_ge100_t05", 58, source="T3b",
                    group="sigma12"))
    rows.append(_ev("σ1/σ2 slope fire − t(test ≥ 0.5)", g, "lag_r12_slope_t05", 37, source="T3b",
                    group="sigma12"))
    ex = doc.get("extras", {})
    traj = T3b["trajectory"]
    for gname, label in (("grok", "grok"), ("control", "control")):
        for e, pv in zip(traj["epochs"], traj[gname]):
            ours = ex.get("r12_median", {}).get(gname, {}).get(str(e))
            rows.append(row(f"median σ1/σ2 at {_ep(doc, e)}", ours, pv, condition=label,
                            source="T3b", group="spectra"))
    for gname, key in (("grok", "grok"), ("control", "control")):
        for r in pub["tables"]["T8"][key]:
            ours = ex.get("sigma_median", {}).get(gname, {}).get(str(r["epoch"]))
            for i in range(3):
                rows.append(row(f"σ{i + 1} at {_ep(doc, r['epoch'])}", None if ours is None else ours[i],
                                r[f"sigma{i + 1}"], kind="magnitude", condition=gname,
                                source="T8 (the paper's seed 0; ours: median over seeds)",
                                caveats=[11, 12], group="spectra"))
    rows.append(row(f"control test accuracy, median over {_late(s)[12:]}", ex.get("control_test_acc_late"),
                    pub["tables"]["T7"]["ctrl_test_plateau"], condition="control",
                    source="T3 ('~0.03')", group="spectra"))
    src = "independent measurement (3 seeds, the code's protocol)"
    rows += [
        _ev("σ2/σ3 slope fire (epoch)", g, "fire", None, rng=[min(iss["grok"]["slope_fire"]),
            max(iss["grok"]["slope_fire"])], source=src, group="independent"),
        _ev("t(test ≥ 0.5)", g, "t05", None, rng=[min(iss["grok"]["test_0.5"]),
            max(iss["grok"]["test_0.5"])], source=src, group="independent"),
        _ev(_late(s), g, "late", None, rng=iss["grok"]["late_gap23_range"],
            source=src, group="independent"),
        _ev(_late(s), c, "late", None, rng=iss["control"]["late_gap23_range"],
            source=src, group="independent"),
        _cnt("σ2/σ3 slope fire, fired/n", c, "fire", (0, 3), source=src, group="independent"),
    ]
    for r in rows:                                   # independent rows: a range without a point value
        if r["group"] == "independent" and r["kind"] == "value":
            r.update(paper_text=f"[{fmt(r['range'][0])}, {fmt(r['range'][1])}]",
                     within=r["ours"] is not None and bool(r["range"][0] <= r["ours"] <= r["range"][1]),
                     rule="ours in the stated range", delta=None, rel=None)
    return rows


def compare_relu(doc, pub) -> list:
    T = pub["tables"]["T-ReLU"]["relu"]
    rows = []
    for i, v in enumerate(doc["views"]):
        s = v["summary"]
        g, c = find_condition(s, eta_at(ETA_GROK, doc["scale"]), "relu"), find_condition(s, 0.0, "relu")
        rows += [
            _ev(f"σ2/σ3, {v['name']}", g, "late", T["late_gap23_grok_median"],
                source="T-ReLU ('end of training')", caveats=[5]),
            _ev(f"σ2/σ3, {v['name']}", c, "late", None, kind="info", paper_text="not given",
                source="T-ReLU"),
            _sep(f"σ2/σ3 grok/control, {v['name']}", g, T["late_gap23_ratio_grok_over_ctrl"],
                 source="T-ReLU, §2", caveats=[5]),
        ]
        if i == 0:
            rows += [
                _cnt("σ2/σ3 slope fire, fired/n", g, "fire", (0, 15), source="T-ReLU, §2"),
                _ev("ρ_tian ≥ 0.075 fire (epoch)", g, "rho_fire", T["rho_fire_epoch"],
                    source="T-ReLU, §2"),
                _ev("t(test ≥ 0.99)", g, "t099", T["t_test_0.99"], source="T-ReLU ('~530')"),
                _ev("t(test ≥ 0.5)", g, "t05", None, kind="info", paper_text="not given",
                    source="—"),
            ]
    for gname, sp in doc.get("extras", {}).get("late_spectrum", {}).items():
        for k, v in sp.items():
            rows.append(row(f"median {k.replace('s', 'σ')}, {doc['views'][0]['name']}", v, None,
                            kind="info",
                            condition=gname, paper_text="σ1 ≫ σ2 ≈ σ3 ≈ σ4 ≈ σ5",
                            source="§2 (rank-1 dominated)", group="spectra"))
    return rows


def compare_window(doc, pub) -> list:
    T4 = {r["W"]: r for r in pub["tables"]["T4"]["rows"]}
    rank = pub["tables"]["T4"]["rank_check_ep200_grok_median"]
    rows = []
    for v in doc["views"]:
        W = v["summary"]["options"]["window"]
        s, p = v["summary"], T4[W]
        for cname, eta, key in (("grok", ETA_GROK, "grok_fire"), ("control", 0.0, "ctrl_fire")):
            c = find_condition(s, eta_at(eta, doc["scale"]))
            fired = [x for x in p[key] if x is not None]
            ptxt = "[" + ", ".join("—" if x is None else str(x) for x in p[key]) + "]"
            rows.append(_cnt(f"W={W}: slope fire, fired/n", c, "fire", (len(fired), len(p[key])),
                             source="T4", caveats=[9], paper_text=f"{len(fired)}/{len(p[key])} {ptxt}"))
            rows.append(_ev(f"W={W}: slope fire (epoch)", c, "fire",
                            float(np.median(fired)) if fired else None,
                            rng=[min(fired), max(fired)] if fired else None, source="T4",
                            paper_text=ptxt))
            rows.append(_ev(f"W={W}: {_late(s)}", c, "late",
                            p["late_grok" if cname == "grok" else "late_ctrl"], source="T4",
                            caveats=[5]))
        ours = doc.get("extras", {}).get("rank_check_ep200", {}).get(str(W))
        for src_name, src in (("paper", rank["paper"]), ("findings", rank["findings"])):
            claim = src.get(f"W={W}") or (src.get("W<=10") if W <= 10 else None)
            if claim is None:
                continue
            for i, name in enumerate(("sigma3", "sigma4", "sigma5")):
                rows.append(row(f"W={W}: σ{i + 3} at {_ep(doc, 200)}", None if ours is None else ours[i],
                                claim[name], kind="magnitude", condition="grok",
                                source=f"T4 rank check ({src_name})", caveats=[9], group="spectra"))
    return rows


def compare_eta(doc, pub) -> list:
    T5 = pub["tables"]["T5"]
    s = _view(doc)
    rows, reg_x, reg_y, leads = [], [], [], []
    for p in T5["rows"]:
        c = find_condition(s, eta_at(p["eta"], doc["scale"]))
        e = f"η={p['eta']:g}"
        if c is None:
            rows.append(row(f"{e}: runs", None, None, kind="info", ours_text="missing", source="T5"))
            continue
        grok = [r for r in c["runs"] if r["t05"] is not None and r["t099"] is not None]
        for r in grok:
            if r["rho_fire"] is not None:
                reg_x.append(r["t05"])
                reg_y.append(r["rho_fire"])
        rows.append(row(f"{e}: groks (t0.5 and t0.99 reached), n/N", (len(grok), c["n"]),
                        (p["n_grok"], T5["n"]), kind="count", condition=c["label"], source="T5"))
        rows.append(_ev(f"{e}: ρ fire (epoch)", c, "rho_fire", p["rho_fire"], source="T5",
                        caveats=[7] if p["eta"] == 1e-5 else []))
        if p["eta"] == 1e-5:
            rows.append(_cnt(f"{e}: ρ fire, fired/n", c, "rho_fire", (2, 5), source="T5 text",
                             caveats=[7], note="the table says '1 of 5 barely'"))
        rows.append(_ev(f"{e}: t(test ≥ 0.5)", c, "t05", p["test_0.5"], source="T5"))
        lead = c["stats"].get("lead_rho_of_medians")
        rows.append(row(f"{e}: lead, median t0.5 − median t_ρ", lead, p["lead"], condition=c["label"],
                        source="T5"))
        if lead is not None and p["lead"] is not None:
            leads.append(lead)
        rows.append(_ev(f"{e}: lock-in, slope fire (epoch)", c, "fire", p["lockin"], source="T5",
                        caveats=[6]))
        f, t = _stat(c, "fire"), _stat(c, "t05")
        lag = None if not (f and t and f["n_fired"] and t["n_fired"]) else f["median"] - t["median"]
        rows.append(row(f"{e}: lag, median fire − median t0.5", lag, p["lag"], condition=c["label"],
                        source="T5 (only −32 and +451 stated)", caveats=[6]))
        rows.append(_ev(f"{e}: {_late(s)}", c, "late", p["late_gap23_300_600"],
                        source="T5", caveats=[5]))
    reg = T5["regression"]
    fit = _linfit(reg_x, reg_y)
    for k, name in (("slope", "slope"), ("intercept", "intercept"), ("r2", "R²")):
        rows.append(row(f"regression t_ρ = a·t0.5 + b over grokking runs: {name}",
                        None if fit is None else fit[k], reg[k], source="T5", group="regression",
                        note=f"n = {len(reg_x)} runs (paper: {reg['n_runs']})"))
    pos = sum(1 for x, y in zip(reg_x, reg_y) if x - y > 0)
    rows.append(row("lead t0.5 − t_ρ positive, runs", (pos, len(reg_x)),
                    tuple(T5["lead_positive"]), kind="count", source="T5", group="regression"))
    rows.append(row("range of the per-η leads (min)", min(leads) if leads else None,
                    T5["lead_range"][0], source="T5", group="regression",
                    note="79 and 154 are the extremes of the T5 lead column"))
    rows.append(row("range of the per-η leads (max)", max(leads) if leads else None,
                    T5["lead_range"][1], source="T5", group="regression"))
    return rows


def _linfit(x, y):
    if len(x) < 3 or len(set(x)) < 2:
        return None
    x, y = np.asarray(x, float), np.asarray(y, float)
    a, b = np.polyfit(x, y, 1)
    ss_res = float(((y - (a * x + b)) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {"slope": float(a), "intercept": float(b), "r2": 1 - ss_res / ss_tot if ss_tot else None}


def compare_extended(doc, pub) -> list:
    T = pub["tables"]["T5b"]
    c = find_condition(_view(doc), eta_at(1e-5, doc["scale"]))
    peak = doc.get("extras", {}).get("peak_gap23")
    kw = dict(source="T5b", caveats=[6, 7])
    return [_ev("t(test ≥ 0.5)", c, "t05", T["test_0.5"], **kw),
            _ev("t(test ≥ 0.99)", c, "t099", T["test_0.99"], **kw),
            _ev("ρ fire (epoch)", c, "rho_fire", T["rho_fire"], **kw),
            _ev("σ2/σ3 slope fire (epoch)", c, "fire", T["slope_fire"], **kw),
            _ev("lead t0.5 − t_ρ", c, "lead_rho", T["lead"], **kw),
            row("peak σ2/σ3", peak, T["peak_gap23"], kind="magnitude", condition=c["label"] if c else "",
                **kw)]


def compare_thm6(doc, pub) -> list:
    rows = []
    T1 = pub["tables"]["T1"]
    iqr = {r["epoch"]: r for r in pub["tables"]["T1-IQR"]["rows"]}
    seed0 = {r["epoch"]: r for r in pub["tables"]["T1-seed0"]["rows"]}
    th = doc.get("thm6") or {"acts": {}}
    sq = th["acts"].get("sqr")
    if sq:
        for e in sq["epochs"]:
            pe = sq["paper_epochs"][str(e)]
            st = sq["stats"][str(e)]
            lab = f"x², ep {e}" + ("" if e == pe else f" (paper ep {pe})")
            p = iqr[pe]
            for q, note in (("sign_match_paper", "the script's route (published eq. 4)"),
                            ("sign_match_exact", "Theorem 6 with the exact leave-two-out r")):
                rows.append(row(f"sign-match, {q.split('_')[-1]} route", st[q]["median"], p["median"],
                                condition=lab, rng=p["iqr"], ours_text=_thm6_cell(st[q]),
                                paper_text=f"{fmt(p['median'])} [{fmt(p['iqr'][0])}, {fmt(p['iqr'][1])}]",
                                source="T1, T1-IQR", caveats=[2], note=note))
            s0 = seed0[pe]
            for q, pk in (("sign_match_paper", "sign_match"),
                          ("frac_B_neg_on_pos_cos", "frac_B_neg_among_pos_sim"),
                          ("median_abs_cos", "median_abs_sim")):
                rows.append(row(f"{q} vs the paper's seed 0", st[q]["median"], s0[pk], kind="seedrange",
                                rng=[st[q]["min"], st[q]["max"]], condition=lab,
                                ours_text=_thm6_cell(st[q]), source="T1-seed0", caveats=[10],
                                group="seed0"))
    rl = th["acts"].get("relu")
    if rl:
        for e in rl["epochs"]:
            pe = rl["paper_epochs"][str(e)]
            pv = T1["relu_seed0"].get(str(pe))
            if pv is None:
                continue
            st = rl["stats"][str(e)]
            lab = f"ReLU, ep {e}" + ("" if e == pe else f" (paper ep {pe})")
            for q in ("sign_match_paper", "sign_match_exact"):
                rows.append(row(f"sign-match, {q.split('_')[-1]} route vs the paper's 'ReLU' seed 0",
                                st[q]["median"], pv, kind="seedrange", rng=[st[q]["min"], st[q]["max"]],
                                condition=lab, ours_text=_thm6_cell(st[q]), source="T1 (ReLU row)",
                                caveats=[1], group="relu",
                                note="the paper's ReLU values were computed on the x² model"))
    return rows


COMPARE = {"headline": compare_headline, "relu": compare_relu, "window": compare_window,
           "eta": compare_eta, "extended": compare_extended, "thm6": compare_thm6}


def compare(doc: dict, pub: dict) -> list:
    """The comparison rows of one section's summary document."""
    return COMPARE[doc["section"]](doc, pub)
