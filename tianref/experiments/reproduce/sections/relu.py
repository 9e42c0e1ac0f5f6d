"""The relu section: ReLU, η ∈ {2e-4, 0}, seeds 0-14, 800 epochs; the paper's "no lock-in for ReLU"
(T-ReLU, §2): late σ2/σ3 and its grok/control ratio, slope and ρ fires, t0.99, and the rank-1 spectrum.

References: ``docs/paper-protocol.md`` §1 T-ReLU, §2 (ReLU), §5.1, §5.5 (the 'end of training' window, which
no stored script defines). Two views: late 200-400 (analysis.py), and the last 200 epochs (our reading of
'end of training'); neither is known to be the paper's window, so the late claims name the difference.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tianref.analysis import detectors as det
from tianref.analysis.records import read_run
from tianref.analysis.summarize import fmt
from tianref.errors import InputError
from tianref.experiments import sweep
import tianref.experiments.reproduce.measures as ms
from tianref.experiments.reproduce.figures import run_figures
from tianref.experiments.reproduce.jobs import epochs_of, section_jobs
from tianref.experiments.reproduce.paper_report import paper_report
from tianref.experiments.reproduce.rows import ClaimList, find_condition, paper_source as src
from tianref.experiments.reproduce.claims import Source
from tianref.experiments.reproduce.section import Section
from tianref.experiments.reproduce.views import ETA_GROK, View, eta_at, late_view, scaled, summarise_views

WINDOW_DIFFERENCE = "the paper's 'end of training' window is defined by no stored script (§5.5); ours: {}"
FOR_CONTEXT = Source("ours", "for context: the paper gives no value")
RATIOS = {"s1/s2": (0, 1), "s2/s5": (1, 4)}


class Relu(Section):
    name, title, default = "relu", "x² against ReLU (15 + 15 seeds, 800 epochs)", True
    caveats = (1, 5)

    def views(self, scale):
        E, f = epochs_of(self.runs(scale))["relu"], (lambda e: scaled(e, scale))
        late = late_view(scale)
        last = dataclasses.replace(late.options, late_lo=E - f(200), late_hi=E)
        return [late, View(f"last {f(200)} epochs ({E - f(200)}-{E})", last,
                           note="the paper's 'end of training' (T-ReLU) is computed by no stored script "
                                "(paper-protocol.md §5.5); this is our reading of it")]

    def measure(self, records, scale, ctx):
        lo, hi = scaled(200, scale), scaled(400, scale)

        def late_ratio(r, a, b):
            with np.errstate(divide="ignore", invalid="ignore"):
                return det.late_median(ms.sigma(r, a) / ms.sigma(r, b), lo, hi)
        groups = {"grok": ms.by_eta(records, eta_at(ETA_GROK, scale)), "control": ms.by_eta(records, 0.0)}
        spectrum = {g: {k: ms.median([late_ratio(r, a, b) for r in rs]) for k, (a, b) in RATIOS.items()}
                    for g, rs in groups.items()}
        return {"views": summarise_views(records, self.views(scale), ctx.section_dir),
                "extras": {"late_spectrum": spectrum}, "thm6": None, "explain": None}

    def claims(self, doc, pub):
        T = pub["tables"]["T-ReLU"]["relu"]
        L = ClaimList(doc)
        for i, v in enumerate(doc["views"]):
            s, o = v["summary"], v["summary"]["options"]
            g, c = find_condition(s, eta_at(ETA_GROK, doc["scale"]), "relu"), find_condition(s, 0.0, "relu")
            diff = WINDOW_DIFFERENCE.format(f"ep {o['late_lo']}-{o['late_hi']}")
            L.value(f"σ2/σ3, {v['name']}", g, "late", T["late_gap23_grok_median"], gram=True, diff=diff,
                    source=src("T-ReLU ('end of training')", [5]))
            L.value(f"σ2/σ3, {v['name']}", c, "late", None, paper_text="not given", source=src("T-ReLU"),
                    gram=True, diff=diff)
            sep = None if g is None else g.get("late_separation")
            ratio = None if not sep else sep.get("ratio")
            L.add(f"σ2/σ3 grok/control, {v['name']}", fmt(T["late_gap23_ratio_grok_over_ctrl"]),
                  "n/a" if ratio is None else f"{fmt(ratio)}x", "info", ratio, condition=g["label"] if g else "missing",
                  source=src("T-ReLU, §2", [5]), gram=True, diff=diff)
            if i == 0:
                L.count("σ2/σ3 slope fire, fired/n", g, "fire", (0, 15), source=src("T-ReLU, §2"), gram=True)
                L.value("ρ_tian ≥ 0.075 fire (epoch)", g, "rho_fire", T["rho_fire_epoch"], source=src("T-ReLU, §2"))
                L.value("t(test ≥ 0.99)", g, "t099", T["t_test_0.99"], source=src("T-ReLU ('~530')"))
                L.value("t(test ≥ 0.5)", g, "t05", None, paper_text="not given", source=FOR_CONTEXT)
        for gname, sp in doc.get("extras", {}).get("late_spectrum", {}).items():
            for k, val in sp.items():
                L.add(f"median {k.replace('s', 'σ')}, {doc['views'][0]['name']}", "σ1 ≫ σ2 ≈ σ3 ≈ σ4 ≈ σ5",
                      fmt(val), "info", val, condition=gname, source=src("§2 (rank-1 dominated)"), gram=True)
        return L

    def figures(self, doc, records, fig_dir, scale, ctx):
        notes = doc["notes"]
        files = run_figures(records, ("headline",), {"headline": "headline.png"}, fig_dir, notes, act="relu")
        from tianref.experiments.reproduce.sections.headline import SECTION as headline
        head = section_jobs(ctx.root, headline, scale)
        try:
            head_done = all(sweep.job_state(j) == "done" for j in head)
        except InputError:                                  # someone else's runs there
            head_done = False
        if head_done:
            files += run_figures([read_run(j.out) for j in head] + list(records), ("activation",),
                                 {"activation": "activation.png"}, fig_dir, notes)
        else:
            notes.append("x² vs ReLU figure not drawn: the headline section is not complete under "
                         f"{ctx.root / 'headline'} (run --section headline, then --section relu again)")
        return files

    def report(self, doc, pub):
        return paper_report(doc, pub, self.caveats)


SECTION = Relu()
