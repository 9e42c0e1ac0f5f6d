"""The ``ridge`` section: Tian's Stage I (V at its ridge solution; G_F then has a closed form) and his ridge top
layer, against a trained V, at the paper's headline configuration.

References: Tian's slides, Stage I ("Final stage G_F(+∞) = η(F̃F̃ᵀ + ηI)⁻¹ỸỸᵀF̃(F̃F̃ᵀ + ηI)⁻¹"); docs/math.md §10
(the ridge top layer, its G_F limit; λ = nη/2 for Adam's stationary V with coupled L2). The runs:
:mod:`tianref.experiments.protocols_tian` (M 71, K 2048, p 0.4, η 2e-4, 400 epochs, top layer trained vs ridge
λ = 1e-3, seeds 0-2, checkpoints 0, 25, 50, 100, 150, 200, 300, 400).

What a ridge run logs (config key ``ridge_eval``): "held" = V is the last ridge solve plus one optimizer step,
as Tian's loop logs; "current" (runs without the key) = V = ridge(current W) at every evaluation. At every
checkpoint of a ridge run G_F is also formed from V = ridge(F) of the checkpoint's own W (``rel_dist_solved``):
its distance from the ridge-limit formula is the push-through identity, at float64 rounding (rule "identity":
a check of the code, not evidence for Stage I). The distance of the V the run holds is shown as information
("held"), or is the same identity at the weights' rounding ("current", summaries from before the solved-V check).

doc["ridge"] (measure)
    per_run     runstats.run_stats of every run (+ 'ridge_eval' of ridge runs)
    groups      runstats.group_summary per top layer
    gf_check    {run: [{epoch, lam, gF_norm, gF_ridge_norm, rel_dist, cos}]} at the stored checkpoints
    gf_rel_dist_med   {top layer: {epoch: median rel_dist}}
    ridge_eval  the semantics of the ridge runs: sorted set of "held" / "current"
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tianref.experiments.reproduce.cells import claims_block, fmt, med, report_head
from tianref.experiments.reproduce.claims import Source, judged
from tianref.experiments.reproduce.runstats import diverged_runs, group_summary, run_stats
from tianref.experiments.reproduce.section import Section

STAGE1 = Source("slides", "Stage I: Lazy Learning",
                quote="Final stage G_F(+∞) = η(F̃F̃ᵀ + ηI)⁻¹ỸỸᵀF̃(F̃F̃ᵀ + ηI)⁻¹")
SEMANTICS = {"current": "V = ridge(current W) at every evaluation (runs without the config key ridge_eval)",
             "held": "V held = the last ridge solve plus one optimizer step, as Tian's loop logs"}


def ridge_eval_of(config) -> str:
    return config.get("ridge_eval", "current")


def ridge_gf_check(run_dir, config, epochs) -> list:
    """At each stored checkpoint: ||G_F|| of the run beside its ridge-limit formula (docs/math.md §10).

    lam = n eta / 2 for a trained V (the stationary V of Adam with coupled L2 on this loss), the run's
    --ridge-reg for the ridge top layer."""
    from tianref import data, group_rows, metrics, model, ridge, runs
    M, n = int(config["M"]), int(config["n_train"])
    lam = float(config.get("ridge_reg", 1e-3)) if config.get("top_layer") == "ridge" else n * float(config["eta"]) / 2
    out = []
    for e in epochs:
        path = runs.checkpoint_path(str(run_dir), e)
        if not Path(path).is_file():
            continue
        ck = runs.load_checkpoint(str(run_dir), e)
        W, V = ck["W"].astype(np.float64), ck["V"].astype(np.float64)
        batch = data.make_batch(np, M, np.asarray(ck["train_idx"]), group_rows.table_of_config(config))
        _, F = model.hidden(np, W, batch, config.get("act", "sqr"), keep_H=False)
        G = metrics.residual(np, F @ V, batch.y) @ V.T                      # (n, K) P_perp (T - F V) V^T
        Gr = ridge.ridge_limit_G_F(np, F, batch.y, M, lam)                   # (n, K)
        nG, nR = float(np.linalg.norm(G)), float(np.linalg.norm(Gr))
        row = {"epoch": int(e), "lam": lam, "gF_norm": nG, "gF_ridge_norm": nR,
               "rel_dist": float(np.linalg.norm(G - Gr)) / nR if nR > 0 else None,
               "cos": float((G * Gr).sum() / (nG * nR)) if nG > 0 and nR > 0 else None}
        if config.get("top_layer") == "ridge":                              # the identity: at V = ridge(F) itself
            Vs = ridge.ridge_V(np, F, batch.y, M, lam)                       # (K, M) the solve of this W
            Gs = metrics.residual(np, F @ Vs, batch.y) @ Vs.T                # (n, K)
            row["rel_dist_solved"] = float(np.linalg.norm(Gs - Gr)) / nR if nR > 0 else None
        out.append(row)
    return out


class Ridge(Section):
    name = "ridge"
    title = "Tian's Stage I and his ridge top layer beside this implementation"
    tests = "tian"
    keeps_diverged = True              # a run whose loss became non-finite is a result here (its status)

    def measure(self, records, scale, ctx):
        dv = diverged_runs(records, ctx.section_dir)
        per_run, checks = [], {}
        for r in records:
            s = run_stats(r, diverged=r.path.name in dv)
            if s["top_layer"] == "ridge":
                s["ridge_eval"] = ridge_eval_of(r.config)
            per_run.append(s)
            checks[r.path.name] = ridge_gf_check(r.path, r.config, r.config.get("checkpoint_epochs", []))
        top = {s["run"]: s["top_layer"] for s in per_run}
        meds = {}
        for t in sorted(set(top.values())):
            d = [c for name, cs in checks.items() if top[name] == t for c in cs]
            meds[t] = {str(e): med([c["rel_dist"] for c in d if c["epoch"] == e])
                       for e in sorted({c["epoch"] for c in d})}
        d = [c for name, cs in checks.items() if top[name] == "ridge" for c in cs]
        solved = {str(e): med([c.get("rel_dist_solved") for c in d if c["epoch"] == e])
                  for e in sorted({c["epoch"] for c in d})}
        return {"ridge": {"per_run": per_run, "groups": group_summary(per_run, "top_layer"), "gf_check": checks,
                          "gf_rel_dist_med": meds, "gf_rel_dist_solved_med": solved,
                          "ridge_eval": sorted({s["ridge_eval"] for s in per_run if "ridge_eval" in s})}}

    def claims(self, doc, published):
        d = doc["ridge"]
        out = []
        tr = d["gf_rel_dist_med"].get("trained", {})
        if tr:
            out.append(judged("trained V: G_F tends to its ridge-limit formula (λ = nη/2)", STAGE1,
                              "‖G_F − limit‖/‖limit‖: " + ", ".join(f"ep {e}: {fmt(v)}" for e, v in tr.items()),
                              "info", None, same_definition=False,
                              difference="λ = nη/2 is our map of Adam with coupled L2 onto his η; the limit is for "
                                         "fixed features, the run's features move",
                              note="the limit holds for a fixed F; it is shown over the whole run"))
        rg = d["gf_rel_dist_med"].get("ridge", {})
        sem = d.get("ridge_eval", [])
        solved = {k: v for k, v in d.get("gf_rel_dist_solved_med", {}).items() if v is not None}
        if sem == ["current"] and not solved:               # a summary from before the solved-V check
            solved = rg
        if solved:
            worst = max(solved.values(), default=None)
            out.append(judged("ridge V = ridge(F) of the checkpoint's W: G_F equals the ridge-limit formula "
                              "(push-through identity)", Source("ours", "docs/math.md §10"),
                              "max over checkpoints of the median ‖G_F − limit‖/‖limit‖: " + fmt(worst), "identity",
                              worst, note="an algebraic identity (G_F from the solved V, float64): a check of the code, not evidence for Stage I"))
        if rg and sem != ["current"]:
            worst = max((v for v in rg.values() if v is not None), default=None)
            out.append(judged("ridge V held (last solve plus one step): G_F beside the ridge-limit formula of "
                              "the current W", Source("ours", "docs/math.md §10"),
                              "max over checkpoints of the median ‖G_F − limit‖/‖limit‖: " + fmt(worst), "info", None,
                              note="ridge_eval: " + ", ".join(sem)))
        for t, g in sorted(d["groups"].items()):
            out.append(judged(f"{t} V: grokked/n, median t(test ≥ 0.99), final coverage",
                              Source("ours", "contrast of the top layers"),
                              f"{g['n_grok']}/{g['n']}, {fmt(g['t099_med'])}, {fmt(g['final_freq_coverage_med'])}",
                              "info", None))
        return out

    def figures(self, doc, records, fig_dir, scale, ctx):
        from tianref.experiments.reproduce.figures import _save_fig
        from tianref.experiments.reproduce.series_figure import series_figure
        meds = doc["ridge"]["gf_rel_dist_med"]
        evals = doc["ridge"].get("ridge_eval", [])
        names = {"trained": "trained V (against the λ = nη/2 limit)",            # what each curve measures: the
                 "ridge": "ridge top layer: the V its rows see"                 # held V is not the solve (no identity)
                          + (f" ({', '.join(evals)}: last solve + one step)" if evals == ["held"] else
                             f" ({', '.join(evals)})" if evals else "")}

        def extra(ax):
            for j, (g, dd) in enumerate(sorted(meds.items())):
                es = sorted(int(e) for e in dd if dd[e] is not None)
                ax.semilogy(es, [max(dd[str(e)], 1e-17) for e in es], "o-", color=f"C{j}", label=names.get(g, g))
            ax.set(xlabel="epoch", title="‖G_F − ridge limit‖ / ‖ridge limit‖")
            ax.legend(fontsize=8)
        keys = (("test_acc", "test accuracy"), ("freq_coverage", "freq_coverage (distinct pure k)"),
                ("freq_purity_med", "median purity"), ("ftf_ratio", "ftf_ratio"),
                ("indep_cos_med", "independence proxy: median |cos|"), ("gF_norm", "‖G_F‖"))
        fig = series_figure(records, lambda r: r.config.get("top_layer", "trained"), keys,
                            f"ridge ({doc['scale']['name']} scale)", extra if meds else None)
        Path(fig_dir).mkdir(parents=True, exist_ok=True)
        return [_save_fig(fig, Path(fig_dir) / "ridge.png")]

    def report(self, doc, published):
        d = doc["ridge"]
        L = report_head(doc, self.title)
        if d.get("ridge_eval"):
            said = "; ".join(f"{s}: {SEMANTICS[s]}" for s in d["ridge_eval"])
            L += [f"**What the ridge runs log.** {said}.", ""]
        L += claims_block(self.claims_of(doc, published))
        L += ["| top layer | n | outcome | median t0.5 | median t0.99 | final test acc | final coverage | final purity "
              "| final ftf_ratio | final indep abs cos |", "|" + "---|" * 10]
        for k, g in d["groups"].items():
            label = k if k != "ridge" else f"ridge ({', '.join(d.get('ridge_eval', []))})"
            L.append(f"| {label} | {g['n']} | {g['outcome']} | {fmt(g['t05_med'])} | {fmt(g['t099_med'])} | "
                     f"{fmt(g['final_test_acc_med'])} | {fmt(g['final_freq_coverage_med'])} | "
                     f"{fmt(g['final_freq_purity_med_med'])} | {fmt(g['final_ftf_ratio_med'])} | "
                     f"{fmt(g['final_indep_cos_med_med'])} |")
        L += ["", "Figures: " + ", ".join(f"`figures/{f}`" for f in doc.get("figures", [])), ""]
        return "\n".join(L) + "\n"


SECTION = Ridge()
