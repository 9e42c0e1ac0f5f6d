"""The lifecycle section's edge probes: which epochs, the cache, the one reader of the probe output
(:func:`probe_rows`), and the claim rows about ablation and flatness. Nothing else in the section reads
:func:`tianref.analysis.edge_runs.probe_run` output.

References: *The Lifecycle of the Spectral Edge* (review page: "flat under perturbations yet more than 4000
times more critical to performance than random directions when ablated"; the "> 4000x" protocol -- test-loss
increase against the mean over 100 random directions -- is stated only in the page's simulated author
response); the authors' own protocol in skydancerosel/dyck_scan @ e37417d, spectral/edge_ablation.py and
spectral/random_direction_controls.py (remove v1 + v2, and v1; score the change of test ACCURACY; 20 random
orthonormal draws; ratio |dacc_edge| / (|mean dacc_random| + 1e-8)); the perturbation theta + eps sign(p) v_k is
ours at their step eps = 0.005 ||theta|| (gram_edge_functional_modes.py), not their flatness measure (the test
loss's curvature along v_k, edge_ablation.py hessian_curvature); docs/edge-and-clocks.md §3.

Probe row (per run, epoch, space in {joint, W, V}, removal S in {v1v2, v1}; :func:`probe_rows`)
    test_acc, train_loss               the unablated state
    f_edge, f_rand, f_norm             the fraction of ||theta||^2 removed: by S, by the random draws (mean); the
                                       norm-matched control theta sqrt(1 - f_edge) removes f_edge with no direction
    <d>_edge, <d>_rand, <d>_norm       d in dtest_acc, dtest_loss, dtrain_loss, dtrain_acc: the change with S
                                       removed, the random draws' mean, the norm-matched control's change
    abs_dtest_loss_rand                mean over the draws of |dtest_loss| (the rebuttal's denominator)
    ratio_acc, floored                 the authors' |dacc_edge| / (|mean dacc_random| + 1e-8) and whether the
                                       random mean was below the 1e-8 floor (then the ratio is 1e8 |dacc_edge|)
    pert_dtest_acc, pert_dtest_loss, pert_dtrain_loss   theta + eps sign(p) v1, eps = eps_rel ||theta||
    pgfrac, palign, gfrac, cos         the run's logged split at the epoch (W, or W for the joint space)
    curv_v1 .. curv_v4                 the test loss's curvature along v_k, (L(theta + eps v) + L(theta - eps v)
                                       - 2 L(theta)) / eps^2, eps = 0.001 ||theta|| (the authors' flatness
                                       measure, edge_ablation.py hessian_curvature; tianref/edge_curvature.py);
                                       v1, v2 the edge, v3, v4 the bulk; None where v_k is undefined or the probe
                                       predates it
    curv_edge, curv_bulk               the mean of curv_v1, curv_v2 and of curv_v3, curv_v4
    after_grok                         epoch > the run's t0.99
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tianref.analysis.summarize import to_json, write_atomic
from tianref.experiments.reproduce.cells import cell, fmt, med, scaled, stats
from tianref.experiments.reproduce.claims import Source, judged
from tianref.experiments.reproduce.sections.lifecycle_wd import LOST

PROBE_EPOCHS = (50, 100, 125, 175, 250, 400)      # memorisation, ~t0.5, grokking, ~lock-in, after
N_RANDOM = {"full": 20}                           # the authors' 20 random draws; 10 at smaller scales
ABLATION_CLAIM = 4000.0                           # "more than 4000 times more critical"
RATIO_FLOOR = 1e-8                                # the authors' floor in |mean dacc_random| + 1e-8
REBUTTAL = Source("rebuttal", "review page, simulated author response",
                  quote="the ratio of test-loss increase after ablating the spectral-edge direction versus the "
                        "mean increase over 100 random directions")
AUTHORS = Source("author-code", "skydancerosel/dyck_scan spectral/edge_ablation.py, "
                                "spectral/random_direction_controls.py @ e37417d")
SEED = Source("seed", "The Lifecycle of the Spectral Edge (review page), abstract",
              quote="flat under perturbations yet more than 4000 times more critical to performance than random "
                    "directions when ablated")
AUTHORS_FLATNESS = Source("author-code", "skydancerosel/dyck_scan spectral/edge_ablation.py @ e37417d, "
                                         "hessian_curvature and main (v1, v2 edge; v3, v4 bulk)")
DIFFERENCE = "their model: transformer on Dyck-1/SCAN"
OURS = "a check of this project, no outside claim; on our x² model, beside the seed's transformer on Dyck-1/SCAN"
PERTURBATION = ("ours: one signed step at the authors' ε (gram_edge_functional_modes.py); their flatness measure is "
                "the test loss's curvature along v1 at ε = 0.001‖θ‖ (edge_ablation.py hessian_curvature)")


def _probe_key(run_dir: Path, epochs, n_random) -> dict:
    from tianref import edge as edge_mod, edge_curvature, edge_probe
    from tianref.analysis import edge_runs
    mods = (edge_mod, edge_probe, edge_curvature, edge_runs)
    code = hashlib.sha1(b"".join(Path(m.__file__).read_bytes() for m in mods)).hexdigest()
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


def probe_runs(records, scale, ctx) -> dict:
    """{tag: probe records} for the runs without a weight-decay schedule, cached in SECTION_DIR/_probes/."""
    n_random = N_RANDOM.get(scale.name, 10)
    cache_dir = Path(ctx.section_dir) / "_probes"
    cache_dir.mkdir(parents=True, exist_ok=True)
    todo = []
    for r in records:
        if r.config.get("eta_schedule"):
            continue
        E = r.n_epochs - 1
        epochs = sorted({min(E, scaled(e, scale)) for e in PROBE_EPOCHS if scaled(e, scale) >= 2})
        todo.append((str(r.path), epochs, n_random, ctx.xp, str(cache_dir / f"{r.path.name}.json")))
    ctx.report(f"lifecycle: edge probes for {len(todo)} runs ({n_random} random directions each)")
    if ctx.xp == "numpy" and ctx.n_jobs > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=ctx.n_jobs) as ex:
            out = list(ex.map(_probe_one, todo))
    else:
        out = [_probe_one(t) for t in todo]
    return {Path(t[0]).name: o for t, o in zip(todo, out)}


def _delta(x, key):
    return None if x is None else x.get(key)


def _curvatures(pr) -> dict:
    """curv_v1..curv_v4, curv_edge and curv_bulk of one probe (None where undefined or not computed)."""
    cv = pr.get("curvature") or {}
    out = {f"curv_v{k}": (cv.get(f"v{k}") or {}).get("curvature") for k in range(1, 5)}
    for name, ks in (("curv_edge", (1, 2)), ("curv_bulk", (3, 4))):
        vals = [out[f"curv_v{k}"] for k in ks]
        out[name] = None if any(v is None for v in vals) else sum(vals) / len(vals)
    return out


def probe_rows(probes, runs) -> list:
    """The probe rows of the module docstring. runs: {tag: lifecycle run dict}."""
    out = []
    for tag, recs in probes.items():
        run = runs[tag]
        for p in recs:
            pr = p["probe"]
            base, lg = pr["base"], p.get("logged", {})
            mat = "V" if p["space"] == "V" else "W"
            pert = pr["perturb"].get("v1") or {}
            after = run["t099"] is not None and math.isfinite(run["t099"]) and p["epoch"] > run["t099"]
            for S, rm in pr["removal"].items():
                if rm is None:
                    continue
                R = rm.get("random") or {}
                row = {"tag": tag, "condition": run["condition"], "seed": run["seed"], "epoch": p["epoch"],
                       "space": p["space"], "removal": S, "P": pr.get("P"), "test_acc": base["test_acc"],
                       "train_loss": base["train_loss"], "f_edge": rm["frac"],
                       "f_rand": _delta(R.get("frac"), "mean"), "f_norm": rm["frac"],
                       "ratio_acc": rm.get("ratio"), "floored": rm.get("floored"),
                       "abs_dtest_loss_rand": (sum(abs(v) for v in R["dtest_loss"]["values"]) / len(R["dtest_loss"]["values"])
                                               if R.get("dtest_loss", {}).get("values") else None),
                       "pert_dtest_acc": pert.get("dtest_acc"), "pert_dtest_loss": pert.get("dtest_loss"),
                       "pert_dtrain_loss": pert.get("dtrain_loss"),
                       "pgfrac": lg.get(f"{mat}_edge_pgfrac"), "palign": lg.get(f"{mat}_edge_palign"),
                       "gfrac": p["split"].get("gfrac"), "cos": p["split"].get("cos"),
                       "after_grok": after, "replay_check": p.get("replay_check", ""), **_curvatures(pr)}
                for d in DELTAS:
                    row[f"{d}_edge"] = rm["edge"][d]
                    row[f"{d}_norm"] = rm["norm_matched"][d]
                    row[f"{d}_rand"] = _delta(R.get(d), "mean")
                out.append(row)
    return out


DELTAS = ("dtest_acc", "dtest_loss", "dtrain_loss", "dtrain_acc")
TABLE_KEYS = ("test_acc", "f_edge", "f_rand", "dtest_acc_edge", "dtest_acc_rand", "dtest_acc_norm", "ratio_acc",
              "dtrain_loss_edge", "dtrain_loss_rand", "dtrain_loss_norm", "dtest_loss_edge", "pert_dtest_acc",
              "pert_dtrain_loss", "pgfrac", "curv_v1", "curv_v2", "curv_bulk")


def probe_doc(probes, runs, n_random) -> dict:
    """doc["lifecycle"]["probes"]: the rows, their table per (condition, epoch, space, removal), the replay issues."""
    rows = probe_rows(probes, {r["tag"]: r for r in runs})
    table = []
    for c, e, sp, S in sorted({(r["condition"], r["epoch"], r["space"], r["removal"]) for r in rows}):
        rs = [r for r in rows if (r["condition"], r["epoch"], r["space"], r["removal"]) == (c, e, sp, S)]
        table.append({"condition": c, "epoch": e, "space": sp, "removal": S, "n": len(rs),
                      "n_floored": sum(bool(r["floored"]) for r in rs),
                      **{k: stats([r.get(k) for r in rs]) for k in TABLE_KEYS}})
    issues = sorted({f"{r['tag']} epoch {r['epoch']}: {r['replay_check']}" for r in rows
                     if "NOT" in r["replay_check"] or "DIFFER" in r["replay_check"]})
    return {"n_random": n_random, "rows": rows, "table": table, "replay_issues": issues}


def probe_claims(d, grok: str) -> list:
    """The claim rows about ablation and flatness, from the probe rows of the weight-decay runs after t0.99."""
    late = [r for r in d["rows"] if r["condition"] == grok and r["after_grok"]]
    j1 = [r for r in late if r["space"] == "joint" and r["removal"] == "v1"]
    j12 = [r for r in late if r["space"] == "joint" and r["removal"] == "v1v2"]
    N = d["n_random"]
    n = len(j1)
    up = sum(r["dtest_loss_edge"] > 0 for r in j1)
    rr = [abs(r["dtest_loss_edge"]) / r["abs_dtest_loss_rand"] if r["abs_dtest_loss_rand"] else None for r in j1]
    big = sum(r["dtest_loss_edge"] > 0 and (x or 0) > ABLATION_CLAIM for r, x in zip(j1, rr))
    down = sum(r["dtest_loss_edge"] < 0 for r in j1)          # the contrary: removing the edge lowers the test loss
    out = [judged(f"After grokking, removing the edge raises the test loss > {ABLATION_CLAIM:g}× more than a random "
                  "direction", REBUTTAL, f"{big}/{n} probes (run × epoch after t0.99, joint space, v1 removed); the "
                  f"test loss rises in {up}/{n}, falls in {down}/{n}; median |ΔL(v1)| / mean |ΔL(random)| {fmt(med(rr))} "
                  f"({N} random orthonormal draws)", "most-runs", (big, down, n), same_definition=False,
                  difference=DIFFERENCE + f"; ours: v1 of the joint (W, V) update Gram, {N} draws (theirs: 100)")]
    k = sum((r["ratio_acc"] or 0) > ABLATION_CLAIM for r in j12)
    no_more = sum(r["ratio_acc"] is not None and r["ratio_acc"] <= 1 for r in j12)   # the contrary: not above random
    fl = sum(bool(r["floored"]) for r in j12)
    unchanged = sum(r["ratio_acc"] is not None and r["ratio_acc"] <= 1 and r["dtest_acc_edge"] == 0 for r in j12)
    out.append(judged(f"After grokking the edge is ablation-critical: removing v1 + v2 changes the test accuracy > "
                      f"{ABLATION_CLAIM:g}× more than random directions", AUTHORS,
                      f"|Δacc(v1+v2)| / (|mean Δacc(random)| + 1e-8) > {ABLATION_CLAIM:g} in {k}/{len(j12)} probes "
                      f"(joint; {fl} with the random mean under the 1e-8 floor, where the ratio is 1e8·|Δacc|), ≤ 1 (no "
                      f"more than random) in {no_more}/{len(j12)}, {unchanged} of them with Δacc(v1+v2) = 0 (removing "
                      f"the edge changes no test prediction: not ablation-critical); median Δacc(v1+v2) "
                      f"{fmt(med([r['dtest_acc_edge'] for r in j12]))}", "most-runs", (k, no_more, len(j12)),
                      same_definition=False, difference=DIFFERENCE))
    k = sum(r["test_acc"] + r["dtest_acc_edge"] >= 0.99 for r in j12)
    lost = sum(r["test_acc"] + r["dtest_acc_edge"] < LOST for r in j12)  # the contrary: below 0.5, lost
    out.append(judged("After grokking, removing v1 + v2 leaves test accuracy at 1.0 (≥ 0.99)",
                      Source("ours", "edge probe, joint"),
                      f"test accuracy ≥ 0.99 with v1 + v2 removed in {k}/{len(j12)} probes, < {LOST:g} in {lost}/{len(j12)}; Δacc in "
                      f"[{fmt(min((r['dtest_acc_edge'] for r in j12), default=None))}, "
                      f"{fmt(max((r['dtest_acc_edge'] for r in j12), default=None))}]", "most-runs", (k, lost, len(j12)),
                      same_definition=False, difference=OURS))
    k, k_contrary = sum(r["dtrain_loss_edge"] > 0 for r in j12), sum(r["dtrain_loss_edge"] < 0 for r in j12)
    out.append(judged("... while it raises the train loss", Source("ours", "edge probe, joint"),
                      f"train loss rises in {k}/{len(j12)} probes, falls in {k_contrary}/{len(j12)}; median ΔL_train {fmt(med([r['dtrain_loss_edge'] for r in j12]))}",
                      "most-runs", (k, k_contrary, len(j12)), same_definition=False, difference=OURS))
    k = sum(r["dtrain_loss_edge"] > r["dtrain_loss_norm"] for r in j12)
    k_contrary = sum(r["dtrain_loss_edge"] < r["dtrain_loss_norm"] for r in j12)
    out.append(judged("The edge matters beyond its norm: removing v1 + v2 raises the train loss more than removing "
                      "the same norm with no direction (θ·√(1 − f))", Source("ours", "edge probe, joint, norm-matched"),
                      f"edge > norm-matched in {k}/{len(j12)} probes, < in {k_contrary}/{len(j12)}; median ΔL_train edge "
                      f"{fmt(med([r['dtrain_loss_edge'] for r in j12]))}, norm-matched "
                      f"{fmt(med([r['dtrain_loss_norm'] for r in j12]))}", "most-runs", (k, k_contrary, len(j12)),
                      same_definition=False, difference=OURS))
    fe = [r["f_edge"] for r in late if r["space"] == "joint" and r["removal"] == "v1"]
    inv_p = 1 / j1[0]["P"] if j1 and j1[0]["P"] else None
    out.append(judged("The removed fraction of ‖θ‖²: the edge v1 against a random direction (~1/P)",
                      Source("ours", "edge probe, joint"),
                      f"edge f in [{fmt(min(fe, default=None))}, {fmt(max(fe, default=None))}]; random f median "
                      f"{fmt(med([r['f_rand'] for r in j1]))}; 1/P {fmt(inv_p)}", "info", None))
    k = sum(r["pert_dtest_acc"] is not None and abs(r["pert_dtest_acc"]) <= FLAT_ACC for r in j1)
    k_contrary = sum(r["pert_dtest_acc"] is not None and abs(r["pert_dtest_acc"]) > FLAT_ACC for r in j1)
    out.append(judged(f"After grokking the edge is flat under perturbation: θ + ε·sign(p)·v1, ε = 0.005‖θ‖, changes "
                      f"the test accuracy by at most {FLAT_ACC:g}", SEED,
                      f"|Δacc| ≤ {FLAT_ACC:g} in {k}/{n} probes, > {FLAT_ACC:g} in {k_contrary}/{n}; median Δacc {fmt(med([r['pert_dtest_acc'] for r in j1]))}, "
                      f"median ΔL_test {fmt(med([r['pert_dtest_loss'] for r in j1]))}", "most-runs", (k, k_contrary, n),
                      same_definition=False, difference=DIFFERENCE + "; " + PERTURBATION, note=FLAT_NOTE))
    out.append(curvature_claim(j1))
    return out


def curvature_claim(j1):
    """The authors' flatness measure on the joint-space probes after t0.99 (one row per run and epoch): the
    edge (v1, v2) is flatter than the bulk (v3, v4) when the mean curvature of the test loss along v1, v2 is
    below the mean along v3, v4 (edge_ablation.py compares exactly these four, edge against bulk)."""
    have = [r for r in j1 if r.get("curv_edge") is not None and r.get("curv_bulk") is not None]
    k = sum(r["curv_edge"] < r["curv_bulk"] for r in have)
    k1 = sum(r["curv_v1"] < r["curv_bulk"] for r in have)
    k_contrary = sum(r["curv_edge"] > r["curv_bulk"] for r in have)      # the edge curves more than the bulk
    ours = (f"mean curvature along v1, v2 below v3, v4 in {k}/{len(have)} probes, above in {k_contrary}/{len(have)} "
            f"(v1 alone below the bulk in "
            f"{k1}/{len(have)}); median curvature v1 {fmt(med([r['curv_v1'] for r in have]))}, v2 "
            f"{fmt(med([r['curv_v2'] for r in have]))}, bulk {fmt(med([r['curv_bulk'] for r in have]))}"
            if have else "not measured: these probes predate the curvature (edge_curvature.py)")
    return judged("After grokking the edge is flat by the authors' measure: the test loss curves less along the "
                  "edge (v1, v2) than along the bulk (v3, v4), (L(θ + εv) + L(θ − εv) − 2L(θ))/ε², ε = 0.001‖θ‖",
                  AUTHORS_FLATNESS, ours, "most-runs", (k, k_contrary, len(have)), same_definition=False,
                  difference=DIFFERENCE + "; θ: W and V jointly (theirs: the attention matrices); the same formula, "
                  "ε rule and directions (v1..v4 of the window's updates)")


FLAT_ACC = 0.01                                   # "flat": the perturbation moves test accuracy by at most this
FLAT_NOTE = ("tested: an absolute bound of ours (|Δacc| ≤ 0.01; the source gives no threshold) for one step along v1, "
             "with no comparison direction, on networks at test accuracy ≥ 0.99. Not tested here: the authors' flatness is "
             "always relative, the edge (v1, v2) against the bulk (v3, v4) of the same window: the test loss's "
             "curvature at ε = 0.001‖θ‖ (edge_ablation.py), loss and KL curves over an ε sweep "
             "(perturbation_curves.py), the hidden-state response at ε = 0.005‖θ‖ (gram_edge_functional_modes.py); "
             "their random directions serve only the ablation control (random_direction_controls.py). The next row "
             "makes the edge-against-bulk comparison")


def probe_report(d) -> list:
    L = ["", f"## The edge probes (the authors' protocol: v1 + v2 and v1 removed; {d['n_random']} random orthonormal "
         "draws; a norm-matched control)", "",
         "| condition | epoch | space | removed | test acc | f edge | f random | Δacc edge | Δacc random | "
         "Δacc norm-matched | authors' ratio | ΔL_train edge | ΔL_train random | ΔL_train norm-matched | ΔL_test edge "
         "| perturbation Δacc | perturbation ΔL_train | pgfrac | curvature v1 | curvature v2 | curvature bulk |",
         "|" + "---|" * 21]
    for p in d["table"]:
        L.append(f"| {p['condition']} | {p['epoch']} | {p['space']} | {p['removal']} | "
                 + " | ".join(cell(p.get(k)) for k in TABLE_KEYS)
                 + (f" (floored in {p['n_floored']}/{p['n']})" if p["n_floored"] else "") + " |")
    if d.get("replay_issues"):
        L += ["", "**Replays that did not reproduce their run** (the probes then describe a state that differs "
              "from the logged one by rounding):", ""] + [f"- {x}" for x in d["replay_issues"]]
    L += ["", "Signed changes (Δ = with the direction(s) removed − without); medians over seeds with their "
          "range. f = the removed fraction of ‖θ‖²; norm-matched = θ·√(1 − f_edge), the same norm removed with no "
          "direction; authors' ratio = |Δacc edge| / (|mean Δacc random| + 1e-8), 1e8·|Δacc edge| when the random "
          "draws change nothing (floored); perturbation = θ + ε·sign(⟨θ, v1⟩)·v1, ε = 0.005‖θ‖; pgfrac = the run's "
          "logged authors' split at that epoch (W; V for the V space); curvature = the authors' flatness measure, "
          "(L(θ + εv) + L(θ − εv) − 2L(θ))/ε² of the test loss, ε = 0.001‖θ‖, along v1, v2 and the mean over the "
          "bulk v3, v4."]
    return L
