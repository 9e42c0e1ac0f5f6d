"""The ``muon`` section: Tian's slide "Muon can lead to more diverse weights in the stage of interaction feature
learning", at his own defaults, and Adam against Muon at the paper's headline configuration.

References: Tian's slides ("Muon optimizers. L_2 shows that Muon can lead to more diverse weights in the stage
of interaction feature learning."); docs/math.md §9 (Muon, his arrangement: Muon on W, Adam on V, one lr);
:func:`tianref.fourier.diversity` (the diversity of W). The runs (:mod:`tianref.experiments.protocols_tian`):

    headline   M 71, K 2048, p 0.4, η 2e-4, 400 epochs, adam vs muon, seeds 0-4 (tags adam_seed*, muon_seed*)
    tian       his defaults M 127, K 512, p 0.3, lr 1e-3, η 1e-4, 3000 epochs, seeds 0-2, checkpoints 0, 250, 500,
               1000, 2000, 3000; variant ce (cross-entropy, trained V) and mse (class-centred MSE, ridge V,
               λ = 1e-3); tags tian_{ce,mse}_{adam,muon}_seed*

doc["muon"] (measure)
    per_run      runstats.run_stats of every run, plus 'group' (adam | muon | ce adam | ...), 'variant'
                 (headline | ce | mse) and, for the tian runs, 'diversity' = {epoch: {n_units, n_pure, coverage,
                 entropy, entropy_norm}} from the checkpoints' W (None where tianref.fourier.diversity is absent)
    groups       runstats.group_summary per group (its outcome label: generalises / memorises ...)
    diversity_available   whether the diversity was measured

The stage of the claim. Tian's slides place Muon's effect "in the stage of interaction feature learning", i.e.
his Stage III (slide "Stage III (Interactive Feature Learning)": repulsion, Theorem 6, and top-down modulation,
Theorem 7; the paper's abstract: "when hidden nodes start to interact in the later stage of learning"), which
comes after the features have emerged in Stage II. Neither the slides nor his code
(yuandong-tian/understanding, ssl/real-dataset/cogo/modular_addition_simple2.py, which trains and saves
checkpoints with no notion of a stage) give it an epoch. Our proxy: a run is in that stage at a checkpoint
once it has generalised (its t0.99 <= the checkpoint), as the Theorem-6 seed paper places Stage III at and
after grokking. Muon groks much later than Adam at his defaults, so equal epochs would mostly compare Muon still
memorising with Adam already generalised: the claim compares the two only where both are in the stage.

Rule of the diversity claim (per variant, for coverage and for entropy): a (seed, checkpoint) pair counts when
both runs of the seed have generalised by the checkpoint; "most-pairs" judges Muon > Adam against Adam > Muon
(a tie counts for neither; a run with no pure unit has entropy 0). No such pair (Muon never generalises): not
measurable. The report's table shows, for reading, every seed's pair at each checkpoint > 0 where some run has
a pure unit (a pair without one at 0).
"""
from __future__ import annotations

from pathlib import Path

from tianref.experiments.reproduce.cells import claims_block, fmt, med, report_head
from tianref.experiments.reproduce.claims import Source, judged
from tianref.experiments.reproduce.runstats import diverged_runs, group_summary, run_stats
from tianref.experiments.reproduce.section import Section

SLIDES = Source("slides", "Muon optimizers", quote="L_2 shows that Muon can lead to more diverse weights in the "
                                                   "stage of interaction feature learning.")
DIFFERENCE = ("the slides give no measure of diversity; ours: distinct dominant frequencies (coverage) and their "
              "entropy over units with purity ≥ 0.9, seed by seed at matching checkpoints")
PURITY_MIN = 0.9
STAGE_NOTE = ("tested: Muon against Adam seed by seed at the checkpoints where both runs have generalised "
              "(t0.99 at or before it), our proxy for the slides' 'stage of interaction feature learning' (Stage "
              "III, which the slides and his code give no epoch); not tested: equal epochs across stages, other "
              "K, M or learning rates")


def ceiling_note(per_run, variant, key, pairs) -> str:
    """'; Adam's coverage is at its ceiling ...' where every in-stage Adam checkpoint covers all floor((M-1)/2)
    frequencies (Muon can then only tie or fall short); '' otherwise. ``pairs``: the in-stage (seed, adam,
    muon) pairs of ``key`` (diversity_pairs with stage=True)."""
    if key != "coverage":
        return ""
    Ms = {int(s["M"]) for s in per_run if s["variant"] == variant and s.get("M")}
    adam = [a for _, a, _ in pairs]
    if len(Ms) != 1 or not adam:
        return ""
    top = (Ms.pop() - 1) // 2
    return (f"; Adam's coverage is at its ceiling {top} (every frequency) in every such pair, so at this M and K "
            "Muon can only tie or fall short: the coverage cannot show Muon ahead" if min(adam) >= top else "")


CAVEAT = ("Tian's arrangement shares one learning rate between Muon (W) and Adam (V). A Muon step changes W by "
          "lr·O with every singular value of O near 1, ‖ΔW‖_F ≈ lr·√(2M), against ≈ lr·√(2MK) for Adam's sign-like "
          "step, so at equal lr this compares step sizes as much as update directions.")


def variant_of(rec) -> str:
    tag = rec.path.name
    return tag.split("_")[1] if tag.startswith("tian_") else "headline"


def checkpoint_diversity(rec) -> dict | None:
    """{epoch: diversity of the checkpoint's W} for every stored checkpoint; None when
    :func:`tianref.fourier.diversity` does not exist. The one place the diversity enters this section."""
    import numpy as np
    from tianref import fourier, runs
    if not hasattr(fourier, "diversity"):
        return None
    out = {}
    for e in rec.config.get("checkpoint_epochs", []):
        path = runs.checkpoint_path(str(rec.path), e)
        if not Path(path).is_file():
            continue
        W = np.asarray(runs.load_checkpoint(str(rec.path), e)["W"])                    # (2M, K)
        d = fourier.diversity(np, W, int(rec.config["M"]), purity_min=PURITY_MIN)
        out[str(int(e))] = {k: (None if d.get(k) is None else float(d[k]))
                            for k in ("n_units", "n_pure", "coverage", "entropy", "entropy_norm")}
    return out


def in_stage(run, epoch) -> bool:
    """Whether the run is in the interactive stage at the checkpoint: it has generalised by then (t0.99 <= epoch;
    the module docstring says why this proxy)."""
    return run.get("t099") is not None and float(run["t099"]) <= int(epoch)


def diversity_pairs(per_run, variant, key, stage=False) -> dict:
    """{epoch: [(seed, adam value, muon value)]}: every seed's pair at each checkpoint > 0 where some run of the
    variant has a pure unit (a pair without one counts with 0: a row's medians are over every seed), or with
    stage=True only the pairs whose two runs are in the interactive stage at the checkpoint (:func:`in_stage`)."""
    runs = {(s["optimizer"], s["seed"]): s for s in per_run if s["variant"] == variant}
    by = {k: s.get("diversity") or {} for k, s in runs.items()}
    out, pure = {}, set()
    for (opt, seed), da in sorted(by.items()):
        dm = by.get(("muon", seed))
        if opt != "adam" or dm is None:
            continue
        for e in sorted(set(da) & set(dm), key=int):
            a, m = da[e], dm[e]
            if stage:
                if not (in_stage(runs[("adam", seed)], e) and in_stage(runs[("muon", seed)], e)):
                    continue
            elif int(e) == 0:
                continue
            if (a["n_pure"] or 0) + (m["n_pure"] or 0):
                pure.add(e)
            val = lambda d: (d[key] or 0.0) if d["n_pure"] else 0.0                  # noqa: E731
            out.setdefault(e, []).append((seed, val(a), val(m)))
    return out if stage else {e: v for e, v in out.items() if e in pure}


class Muon(Section):
    name = "muon"
    title = "Tian's Muon claim beside this implementation"
    tests = "tian"
    keeps_diverged = True              # a run whose loss became non-finite is a result here (its status)

    def measure(self, records, scale, ctx):
        dv = diverged_runs(records, ctx.section_dir)
        per_run = []
        for r in records:
            s = run_stats(r, diverged=r.path.name in dv)
            s["variant"] = variant_of(r)
            s["group"] = s["optimizer"] if s["variant"] == "headline" else f"{s['variant']} {s['optimizer']}"
            s["diversity"] = checkpoint_diversity(r) if s["variant"] != "headline" else None
            per_run.append(s)
        avail = any(s["diversity"] is not None for s in per_run if s["variant"] != "headline")
        cfgs = [r.config for r in records]
        setup = {"M": sorted({int(c["M"]) for c in cfgs}), "K": sorted({int(c["K"]) for c in cfgs}),
                 "dtype": ",".join(sorted({str(c.get("dtype")) for c in cfgs})),
                 "backend": ",".join(sorted({str(r.meta.get("versions", {}).get("backend")) for r in records}))}
        epochs = {v: sorted({int(s["epochs"]) for s in per_run if s["variant"] == v})
                  for v in dict.fromkeys(s["variant"] for s in per_run)}
        return {"setup": setup, "epochs": epochs,            # two configurations: the header names both
                "muon": {"per_run": per_run, "groups": group_summary(per_run, "group"), "diversity_available": avail,
                         "purity_min": PURITY_MIN}}

    def claims(self, doc, published):
        d = doc["muon"]
        g = d["groups"]
        out = []
        for v in sorted({s["variant"] for s in d["per_run"]} - {"headline"}):
            ga, gm = g.get(f"{v} adam", {}), g.get(f"{v} muon", {})
            seen = f"Adam: {ga.get('outcome', '—')}; Muon: {gm.get('outcome', '—')}"
            neither = bool(ga) and bool(gm) and not ga["n_grok"] and not gm["n_grok"]
            for key, what in (("coverage", "coverage (distinct dominant frequencies of pure units)"),
                              ("entropy", "entropy of the dominant-frequency histogram (nats)")):
                by_e = diversity_pairs(d["per_run"], v, key, stage=True)
                pairs = [p for ps in by_e.values() for p in ps]
                k, k_against = sum(m > a for _, a, m in pairs), sum(a > m for _, a, m in pairs)
                ours = (f"Muon > Adam in {k}/{len(pairs)}, Adam > Muon in {k_against}/{len(pairs)} (seed, checkpoint) "
                        f"pairs where both have generalised (epochs {sorted(map(int, by_e))}). {seen}")
                notes = [] if d["diversity_available"] else ["tianref.fourier.diversity is not available: not measured"]
                if neither:
                    notes.append("neither optimizer generalises: the interactive stage is reached by neither run")
                elif d["diversity_available"] and not pairs:
                    late = [name for name, gr in (("Adam", ga), ("Muon", gm)) if gr and not gr["n_grok"]]
                    who = (f"{late[0]} does not reach the interactive stage in these runs" if late else
                           "no seed has both runs generalised at a common checkpoint")
                    notes.append(f"no checkpoint where both runs have generalised: {who}, so the claim's comparison "
                                 "does not exist")
                notes.append(STAGE_NOTE + ceiling_note(d["per_run"], v, key, pairs))
                out.append(judged(f"[{v}] Muon gives more diverse W than Adam in the interactive stage: {what}", SLIDES,
                                  ours, "most-pairs", (k, k_against, len(pairs)), same_definition=False,
                                  difference=DIFFERENCE, note="; ".join(notes)))
        head = {k: g[k] for k in ("adam", "muon") if k in g}
        if head:
            out.append(judged("Adam against Muon at the headline configuration (K = 2048), one shared lr",
                              Source("ours", "the headline configuration, 400 epochs"),
                              "; ".join(f"{k}: {x['outcome']}" for k, x in head.items()), "info", None))
        return out

    def figures(self, doc, records, fig_dir, scale, ctx):
        from tianref.experiments.reproduce.figures import _save_fig
        from tianref.experiments.reproduce.series_figure import series_figure
        Path(fig_dir).mkdir(parents=True, exist_ok=True)
        files = []
        keys = (("test_acc", "test accuracy"), ("train_acc", "train accuracy"),
                ("freq_coverage", "freq_coverage (distinct pure k)"), ("freq_purity_med", "median purity"),
                ("ftf_ratio", "ftf_ratio"), ("indep_cos_med", "independence proxy: median |cos|"))
        for name, sel in (("muon.png", lambda r: variant_of(r) == "headline"),
                          ("muon_tian.png", lambda r: variant_of(r) != "headline")):
            recs = [r for r in records if sel(r)]
            if recs:
                grp = lambda r: (r.config.get("optimizer", "adam") if variant_of(r) == "headline"   # noqa: E731
                                 else f"{variant_of(r)} {r.config.get('optimizer', 'adam')}")
                files.append(_save_fig(series_figure(recs, grp, keys, f"muon ({doc['scale']['name']} scale)"),
                                       Path(fig_dir) / name))
        return files

    def report(self, doc, published):
        d = doc["muon"]
        L = report_head(doc, self.title) + [f"**Caveat.** {CAVEAT}", ""]
        L += claims_block(self.claims_of(doc, published))
        g = d["groups"]
        tian = [k for k in g if " " in k]
        if tian:
            L += ["## Tian's defaults (at the full scale M 127, K 512, p 0.3, lr 1e-3, η 1e-4, 3000 epochs; "
                  f"this is the {doc['scale']['name']} scale)", "",
                  "| variant, optimizer | n | outcome | median t0.5 | median t0.99 | final train acc "
                  "| final test acc |",
                  "|---|---|---|---|---|---|---|"]
            L += [f"| {k} | {g[k]['n']} | {g[k]['outcome']} | {fmt(g[k]['t05_med'])} | {fmt(g[k]['t099_med'])} | "
                  f"{fmt(g[k]['final_train_acc_med'])} | {fmt(g[k]['final_test_acc_med'])} |" for k in tian]
            L += ["", f"Diversity of W at the checkpoints (units with purity ≥ {d['purity_min']:g}; medians over "
                  "seeds; Muon > Adam counts the seeds; 'both generalised' counts the seeds whose Adam and Muon runs "
                  "have both reached test accuracy 0.99 by the epoch: only those pairs enter the claims, the "
                  "interactive stage of the slides; the other rows compare different stages and are shown for "
                  "reading):", "",
                  "| variant | epoch | both generalised | Adam coverage | Muon coverage | Muon > Adam | Adam entropy "
                  "| Muon entropy | Muon > Adam |", "|---|---|---|---|---|---|---|---|---|"]
            for v in sorted({k.split()[0] for k in tian}):
                cov, ent = diversity_pairs(d["per_run"], v, "coverage"), diversity_pairs(d["per_run"], v, "entropy")
                both = diversity_pairs(d["per_run"], v, "coverage", stage=True)
                for e in sorted(set(cov) | set(ent), key=int):
                    c, h = cov.get(e, []), ent.get(e, [])
                    L.append(f"| {v} | {e} | {len(both.get(e, []))}/{len(c)} | {fmt(med([a for _, a, _ in c]))} | "
                             f"{fmt(med([m for _, _, m in c]))} | {sum(m > a for _, a, m in c)}/{len(c)} | "
                             f"{fmt(med([a for _, a, _ in h]))} | {fmt(med([m for _, _, m in h]))} | "
                             f"{sum(m > a for _, a, m in h)}/{len(h)} |")
            if not d["diversity_available"]:
                L.append("| — | — | — | not measured: tianref.fourier.diversity is not available | | | | | |")
            L.append("")
        head = [k for k in ("adam", "muon") if k in g]
        if head:
            L += ["## The headline configuration (at the full scale M 71, K 2048, p 0.4, η 2e-4, 400 epochs; "
                  f"this is the {doc['scale']['name']} scale)", "",
                  "| optimizer | n | outcome | median t0.5 | median t0.99 | final train acc | final test acc | final "
                  "coverage | final purity | final ftf_ratio | final indep abs cos |", "|" + "---|" * 11]
            L += [f"| {k} | {g[k]['n']} | {g[k]['outcome']} | {fmt(g[k]['t05_med'])} | {fmt(g[k]['t099_med'])} | "
                  f"{fmt(g[k]['final_train_acc_med'])} | {fmt(g[k]['final_test_acc_med'])} | "
                  f"{fmt(g[k]['final_freq_coverage_med'])} | {fmt(g[k]['final_freq_purity_med_med'])} | "
                  f"{fmt(g[k]['final_ftf_ratio_med'])} | {fmt(g[k]['final_indep_cos_med_med'])} |" for k in head]
            L.append("")
        L += ["Figures: " + ", ".join(f"`figures/{f}`" for f in doc.get("figures", [])), ""]
        return "\n".join(L) + "\n"


SECTION = Muon()
