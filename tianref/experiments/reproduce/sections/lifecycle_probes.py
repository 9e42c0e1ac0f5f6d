"""The lifecycle section's edge probes: which epochs, the cache, the one reader of the probe output
(:func:`probe_rows`), and the claim rows about ablation and flatness. Nothing else in the section reads
:func:`tianref.analysis.edge_runs.probe_run` output.

References: *The Lifecycle of the Spectral Edge* (review page: "flat under perturbations yet more than 4000
times more critical to performance than random directions when ablated"; the "> 4000x" protocol -- test-loss
increase against the mean over 100 random directions -- is stated only in the page's simulated author
response); the authors' own protocol in skydancerosel/dyck_scan @ e37417d, spectral/edge_ablation.py and
spectral/random_direction_controls.py (remove v1 + v2, and v1; score the change of test ACCURACY; 20 random
orthonormal draws; ratio |dacc_edge| / (|mean dacc_random| + 1e-8)); docs/edge-and-clocks.md §3.

Probe row (per run, epoch, space; :func:`probe_rows`)
    test_acc, dloss_abl, dacc_abl      test accuracy, and the change of test loss / accuracy when v1 is removed
    acc_removed                        test accuracy with v1 removed (test_acc + dacc_abl)
    ratio_loss                         |dL(v1)| / mean_i |dL(r_i)|          (the rebuttal's protocol)
    ratio_acc                          |dacc(v1)| / (|mean_i dacc(r_i)| + 1e-8)   (the authors' formula)
    flat_ratio                         |curv(v1)| / mean_i |curv(r_i)|, eps = eps_rel ||theta||
    f_edge, f_rand                     the fraction of ||theta||^2 the removal takes: (theta.v1)^2/||theta||^2,
                                       and E_i (theta.r_i)^2/||theta||^2 (mean^2 + var of the projections)
    P                                  parameters in the space
    dtrain_loss                        change of the TRAIN loss on removal (None: today's probe does not measure it)
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

PROBE_EPOCHS = (50, 100, 125, 175, 250, 400)      # memorisation, ~t0.5, grokking, ~lock-in, after
N_RANDOM = {"full": 100}                          # random directions per probe; 10 at smaller scales
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
DIFFERENCE = "their model: transformer on Dyck-1/SCAN"


def _probe_key(run_dir: Path, epochs, n_random) -> dict:
    from tianref import edge as edge_mod, edge_probe
    from tianref.analysis import edge_runs
    code = hashlib.sha1(b"".join(Path(m.__file__).read_bytes() for m in (edge_mod, edge_probe, edge_runs))).hexdigest()
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


def probe_rows(probes, runs) -> list:
    """The probe rows of the module docstring from today's probe output. runs: {tag: lifecycle run dict}.
    --- the rewritten probe (removals of {v1, v2} and {v1} per space, train loss and accuracy, the authors'
    random control, the norm-matched control, eps = 0.005 ||theta||) plugs in HERE: map its records to these
    keys (and add its new ones); the claims below read only these rows. ---"""
    out = []
    for tag, recs in probes.items():
        run = runs[tag]
        for p in recs:
            pr, R = p["probe"], p["probe"].get("random", {})
            norm2 = (pr["eps"] / pr["eps_rel"]) ** 2 if pr.get("eps_rel") else None      # ||theta||^2
            proj = R.get("proj", {})
            f_rand = ((proj.get("mean", 0.0) ** 2 + proj.get("std", 0.0) ** 2) / norm2
                      if norm2 and proj and math.isfinite(proj.get("std", math.nan)) else None)
            dacc_r = R.get("dacc_abl", {}).get("mean")
            after = run["t099"] is not None and math.isfinite(run["t099"]) and p["epoch"] > run["t099"]
            out.append({"tag": tag, "condition": run["condition"], "seed": run["seed"], "epoch": p["epoch"],
                        "space": p["space"], "P": pr.get("P"), "test_acc": pr["test_acc"],
                        "dloss_abl": pr["edge"]["dloss_abl"], "dacc_abl": pr["edge"]["dacc_abl"],
                        "acc_removed": pr["test_acc"] + pr["edge"]["dacc_abl"],
                        "ratio_loss": pr.get("ablation_ratio"), "flat_ratio": pr.get("flatness_ratio"),
                        "ratio_acc": (abs(pr["edge"]["dacc_abl"]) / (abs(dacc_r) + RATIO_FLOOR)
                                      if dacc_r is not None else None),
                        "f_edge": pr["edge"]["proj"] ** 2 / norm2 if norm2 else None, "f_rand": f_rand,
                        "dtrain_loss": None, "gfrac": p["split"].get("gfrac"), "cos": p["split"].get("cos"),
                        "after_grok": after,
                        "replay_check": p.get("replay_check", "")})
    return out


TABLE_KEYS = ("test_acc", "ratio_loss", "dloss_abl", "dacc_abl", "ratio_acc", "flat_ratio", "f_edge", "gfrac", "cos")


def probe_doc(probes, runs, n_random) -> dict:
    """doc["lifecycle"]["probes"]: the rows, their table per (condition, epoch, space), the replay issues."""
    rows = probe_rows(probes, {r["tag"]: r for r in runs})
    table = []
    for c, e, sp in sorted({(r["condition"], r["epoch"], r["space"]) for r in rows}):
        rs = [r for r in rows if (r["condition"], r["epoch"], r["space"]) == (c, e, sp)]
        table.append({"condition": c, "epoch": e, "space": sp, "n": len(rs),
                      **{k: stats([r[k] for r in rs]) for k in TABLE_KEYS},
                      "ablation_ratio": stats([r["ratio_loss"] for r in rs]),          # the figure's keys
                      "flatness_ratio": stats([r["flat_ratio"] for r in rs])})
    issues = sorted({f"{r['tag']} epoch {r['epoch']}: {r['replay_check']}" for r in rows
                     if "NOT" in r["replay_check"] or "DIFFER" in r["replay_check"]})
    return {"n_random": n_random, "rows": rows, "table": table, "replay_issues": issues}


def probe_claims(d, grok: str) -> list:
    """The claim rows about ablation and flatness, from the probe rows of the weight-decay runs after t0.99
    (joint space: W and V together)."""
    late = [r for r in d["rows"] if r["condition"] == grok and r["space"] == "joint" and r["after_grok"]]
    n, N = len(late), d["n_random"]
    up = sum(r["dloss_abl"] > 0 for r in late)
    big = sum(r["dloss_abl"] > 0 and (r["ratio_loss"] or 0) > ABLATION_CLAIM for r in late)
    ratio = fmt(med([r["ratio_loss"] for r in late]))
    out = [judged(f"After grokking, removing the edge raises the test loss > {ABLATION_CLAIM:g}× more than a random "
                  "direction", REBUTTAL, f"{big}/{n} probes (run × epoch after t0.99); the test loss rises in "
                  f"{up}/{n}; median ratio of the absolute changes {ratio} ({N} random directions)",
                  "most-runs", (big, n), same_definition=False,
                  difference=DIFFERENCE + "; ours: v1 of the joint (W, V) update Gram")]
    k = sum((r["ratio_acc"] or 0) > ABLATION_CLAIM for r in late)
    out.append(judged(f"After grokking the edge is ablation-critical (> {ABLATION_CLAIM:g}× random, test accuracy)",
                      AUTHORS, f"abs Δacc(v1) / (abs mean Δacc(random) + 1e-8) > {ABLATION_CLAIM:g} in {k}/{n} probes; "
                      f"median {fmt(med([r['ratio_acc'] for r in late]))}", "most-runs", (k, n), same_definition=False,
                      difference=DIFFERENCE + f"; today's probe removes v1 only, against {N} random unit directions "
                                              "(theirs: v1 + v2, 20 orthonormal draws)"))
    k = sum(r["acc_removed"] >= 0.99 for r in late)
    out.append(judged("After grokking, removing v1 leaves test accuracy at 1.0", Source("ours", "edge probe, joint"),
                      f"test accuracy ≥ 0.99 with v1 removed in {k}/{n} probes; Δacc in "
                      f"[{fmt(min((r['dacc_abl'] for r in late), default=None))}, "
                      f"{fmt(max((r['dacc_abl'] for r in late), default=None))}]", "most-runs", (k, n)))
    tl = [r for r in late if r["dtrain_loss"] is not None]
    out.append(judged("... while it raises the train loss", Source("ours", "edge probe, joint"),
                      f"train loss rises in {sum(r['dtrain_loss'] > 0 for r in tl)}/{len(tl)} probes", "most-runs",
                      (sum(r["dtrain_loss"] > 0 for r in tl), len(tl)),
                      note="" if tl else "the probe of these runs does not measure the train loss"))
    fe = [r["f_edge"] for r in late if r["f_edge"] is not None]
    inv_p = 1 / late[0]["P"] if late and late[0]["P"] else None
    out.append(judged("The removed fraction of ‖θ‖²: the edge against a random direction (~1/P)",
                      Source("ours", "edge probe, joint"),
                      f"edge f in [{fmt(min(fe, default=None))}, {fmt(max(fe, default=None))}]; random f median "
                      f"{fmt(med([r['f_rand'] for r in late]))}; 1/P {fmt(inv_p)}",
                      "info", None))
    k = sum((r["flat_ratio"] if r["flat_ratio"] is not None else math.inf) < 1 for r in late)
    out.append(judged("After grokking the edge is flat under perturbation", SEED,
                      f"curvature along v1 below the random mean (absolute values) in {k}/{n} probes; median ratio "
                      f"{fmt(med([r['flat_ratio'] for r in late]))}", "most-runs", (k, n), same_definition=False,
                      difference=DIFFERENCE + "; ours: central difference at eps = 1e-3 ‖θ‖"))
    return out


def probe_report(d) -> list:
    L = ["", "## The edge probes (v1 removed, against random unit directions)", "",
         "| condition | epoch | space | test acc | dL ratio | edge dL | edge Δacc | Δacc ratio | flatness ratio "
         "| f (‖θ‖² removed) | gfrac | cos |", "|" + "---|" * 12]
    for p in d["table"]:
        L.append(f"| {p['condition']} | {p['epoch']} | {p['space']} | "
                 + " | ".join(cell(p[k]) for k in TABLE_KEYS) + " |")
    if d.get("replay_issues"):
        L += ["", "**Replays that did not reproduce their run** (the probes then describe a state that differs "
              "from the logged one by rounding):", ""] + [f"- {x}" for x in d["replay_issues"]]
    L += ["", f"Ratios over {d['n_random']} random unit directions; dL ratio = |test-loss change with v1 removed| / "
          "mean over random directions (the review page's rebuttal protocol); Δacc ratio = |Δacc(v1)| / (|mean "
          "Δacc(random)| + 1e-8) (the authors' formula, here with v1 only); flatness = |curvature along v1| / mean "
          "|curvature| along random directions."]
    return L
