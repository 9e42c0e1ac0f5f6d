"""The ``critical`` section: does the memorisation-to-generalisation boundary sit at p = c·log M / M with one
constant c (Tian's Theorem 4)?

References: Tian, arXiv:2509.21519 and his slides (Theorem 4); his code (yuandong-tian/understanding,
ssl/real-dataset/cogo/modular_addition_simple2.py @ 03b212ce, lines 420-423: with use_critical_ratio the train
fraction is (critical_ratio_multiplier - critical_ratio_delta) log M / M, the multiplier 2.7482 by default in
config/dyn_madd.yaml; the one-constant claim's note says where it falls among our intervals). The runs:
:mod:`tianref.experiments.protocols_tian` (M ∈ {23, 41, 71} × c ∈ {0.5, 1, 1.5, 2, 3}, seeds 0-2; η = 5e-4 and
1500 epochs are our choice).

doc["critical"] (measure)
    per_run    runstats.run_stats of every run, with c = p / p_crit
    table      one row per (M, c): n, n_grok, fraction, median t099, median final test accuracy
    boundary   per M: the smallest grid c where >= half the seeds grok ('first_ge_half') and the largest below
               it ('last_below'); the boundary c lies in (last_below, first_ge_half]. An open end is None:
               first_ge_half when no grid c reaches half (last_below is then the grid's largest c: the
               boundary lies above the grid), last_below when the smallest c already does (runstats.boundary)
"""
from __future__ import annotations

from pathlib import Path

from tianref.experiments import protocols_tian as pt
from tianref.experiments.reproduce.cells import claims_block, fmt, med, report_head
from tianref.experiments.reproduce.claims import Source, judged
from tianref.experiments.reproduce.runstats import boundary, diverged_runs, run_stats
from tianref.experiments.reproduce.section import Section

THEOREM4 = Source("slides", "Theorem 4", quote="If %train = n/M² ≳ log M / M, then the local maxima stay.")
DIFFERENCE = "ours: test accuracy ≥ 0.99 within the run at our η and epochs; a finite c grid"
CAVEAT = ("η and the epochs are our choice (the claim names neither); a seed that would grok after the last epoch "
          "counts as not grokking, which moves the apparent boundary to larger c.")


def cell_table(stats) -> list:
    out = []
    for M in sorted({s["M"] for s in stats}):
        for c in sorted({round(s["c"], 2) for s in stats if s["M"] == M}):
            runs = [s for s in stats if s["M"] == M and round(s["c"], 2) == c]
            k = sum(s["grokked"] for s in runs)
            out.append({"M": M, "c": c, "p": runs[0]["p"], "n_train": runs[0]["n_train"], "n": len(runs),
                        "n_grok": k, "frac": k / len(runs), "t099_med": med([s["t099"] for s in runs if s["grokked"]]),
                        "final_test_med": med([s["final"]["test_acc"] for s in runs])})
    return out


def code_multiplier_note(b) -> str:
    """Where his code's default critical multiplier (pt.TIAN_CRITICAL_C) falls among the boundary intervals
    (last_below, first_ge_half] of every M, an open end read as 0 or infinity."""
    c = pt.TIAN_CRITICAL_C
    Ms = [M for M, _ in sorted(b.items(), key=lambda kv: int(kv[0]))]

    def holds(v) -> bool:
        lo = 0.0 if v["last_below"] is None else v["last_below"]
        hi = float("inf") if v["first_ge_half"] is None else v["first_ge_half"]
        return lo < c <= hi
    inside = [M for M in Ms if holds(b[M])]
    outside = [M for M in Ms if M not in inside]
    if not inside:
        where = "inside no M's interval"
    elif len(inside) == len(b):
        where = "inside the interval of every M"
    else:
        where = f"inside the interval of M = {', '.join(inside)}" + (
            f", outside that of M = {', '.join(outside)}" if outside else "")
    return (f"Tian's code places the critical fraction at c = {c:g} (its default critical_ratio_multiplier): "
            f"{where}")


class Critical(Section):
    name = "critical"
    title = "Tian's Theorem 4 as a constant-c boundary beside this implementation"
    tests = "tian"
    keeps_diverged = True              # a run whose loss became non-finite is a result here (its status)

    def measure(self, records, scale, ctx):
        dv = diverged_runs(records, ctx.section_dir)
        stats = [run_stats(r, diverged=r.path.name in dv, p_crit=pt.p_crit) for r in records]
        table = cell_table(stats)
        b = boundary([{"M": r["M"], "x": r["c"], "frac": r["frac"]} for r in table])
        return {"critical": {"per_run": stats, "table": table, "boundary": {str(M): v for M, v in b.items()},
                             "eta": sorted({r.config.get("eta") for r in records})}}

    def rederive(self, doc):
        """The boundary intervals from the stored table (runstats.boundary's rule for the open ends)."""
        d = doc["critical"]
        if "boundary" in d:
            b = boundary([{"M": r["M"], "x": r["c"], "frac": r["frac"]} for r in d["table"]])
            d["boundary"] = {str(M): v for M, v in b.items()}
        return doc

    def claims(self, doc, published):
        b = doc["critical"]["boundary"]
        out, ivals = [], []
        for M, v in sorted(b.items(), key=lambda kv: int(kv[0])):
            lo, hi = v["last_below"], v["first_ge_half"]
            ivals.append((lo if lo is not None else 0.0, hi if hi is not None else float("inf")))
            lo_t, hi_t = fmt(lo) if lo is not None else "< grid", fmt(hi) if hi is not None else "> grid"
            out.append(judged(f"M = {M}: the boundary sits at p = c·log M / M", THEOREM4,
                              f"the boundary c (grok fraction crosses 1/2) lies in ({lo_t}, {hi_t}]", "info", None))
        located = any(v["first_ge_half"] is not None and v["last_below"] is not None for v in b.values())
        open_M = [M for M, v in b.items() if v["first_ge_half"] is None or v["last_below"] is None]
        lo_all = max(i[0] for i in ivals) if ivals else None
        hi_all = min(i[1] for i in ivals) if ivals else None
        notes = [f"no crossing inside the grid for M = {', '.join(open_M)}"] if open_M else []
        if located:
            notes.append(code_multiplier_note(b))
        note = "; ".join(notes)
        ours = (f"largest lower end {fmt(lo_all)}, smallest upper end {fmt(hi_all)}" if located
                else "undecided: no M has its boundary inside the grid")
        out.append(judged("one constant c fits every M (the intervals overlap)", THEOREM4, ours, "above",
                          hi_all if located else None, lo_all, same_definition=False, difference=DIFFERENCE,
                          note=note))
        return out

    def figures(self, doc, records, fig_dir, scale, ctx):
        from matplotlib.figure import Figure
        from tianref.experiments.reproduce.figures import _save_fig
        table = doc["critical"]["table"]
        fig = Figure(figsize=(6.5, 4.5))
        ax = fig.add_subplot(1, 1, 1)
        for i, M in enumerate(sorted({r["M"] for r in table})):
            rows = sorted((r for r in table if r["M"] == M), key=lambda r: r["c"])
            ax.plot([r["c"] for r in rows], [r["frac"] for r in rows], "o-", color=f"C{i}", label=f"M={M}")
        ax.axvline(1.0, color="grey", ls=":", lw=1)
        ax.set(xlabel="c = p / (log M / M)", ylabel="fraction of seeds with test acc ≥ 0.99",
               title=f"critical ({doc['scale']['name']} scale): a constant-c boundary would align the curves",
               ylim=(-0.05, 1.05))
        ax.legend()
        fig.tight_layout()
        Path(fig_dir).mkdir(parents=True, exist_ok=True)
        return [_save_fig(fig, Path(fig_dir) / "critical.png")]

    def report(self, doc, published):
        d = doc["critical"]
        L = report_head(doc, self.title) + [f"**Caveat.** {CAVEAT}", ""]
        L += claims_block(self.claims_of(doc, published))
        L += ["| M | c | p | n_train | grok | median t0.99 | median final test acc |", "|---|---|---|---|---|---|---|"]
        for r in d["table"]:
            L.append(f"| {r['M']} | {r['c']} | {r['p']:.4f} | {r['n_train']} | {r['n_grok']}/{r['n']} | "
                     f"{fmt(r['t099_med'])} | {fmt(r['final_test_med'])} |")
        L += ["", f"η = {', '.join(fmt(e) for e in d.get('eta', []))} (full scale: {pt.CRITICAL_ETA:g}, "
              f"{pt.CRITICAL_EPOCHS} epochs; our choice, protocols_tian.py); 'grok' = test accuracy ≥ 0.99 within "
              "the run. The interval overlap is judged by the rule 'above': the smallest upper end must lie above "
              "the largest lower end.", "",
              "Figures: " + ", ".join(f"`figures/{f}`" for f in doc.get("figures", [])), ""]
        return "\n".join(L) + "\n"


SECTION = Critical()
