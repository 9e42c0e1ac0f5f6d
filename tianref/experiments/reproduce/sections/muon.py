"""Adapter (to be replaced by the muon section's own module): Tian's muon section as today's code
computes it (tian_report.analyse, tian_analysis.run_stats, tian_figures), behind the Section protocol.
Each of its claim rows is shown with the rule 'info' (its own consistency flag in the ours cell).
"""
from __future__ import annotations

from tianref.analysis.summarize import fmt
from tianref.experiments.reproduce.claims import Claim, Source
from tianref.experiments.reproduce.reporting import claims_block
from tianref.experiments.reproduce.rows import load_published
from tianref.experiments.reproduce.section import Section
import tianref.experiments.reproduce.tian_analysis as ta
import tianref.experiments.reproduce.tian_report as tr
from tianref.experiments.reproduce.tian_figures import make_tian_figures


class Muon(Section):
    name, title, tests, keeps_diverged = "muon", "Tian's muon section", "tian", True

    def measure(self, records, scale, ctx):
        stats = [ta.run_stats(r, diverged=r.path.name in ctx.diverged) for r in records]
        setup = {"M": sorted({s["M"] for s in stats}), "K": records[0].config.get("K"),
                 "dtype": ",".join(sorted({str(r.config.get("dtype")) for r in records})),
                 "backend": ",".join(sorted({str(r.meta.get("versions", {}).get("backend")) for r in records}))}
        return {"setup": setup, "epochs": sorted({s["epochs"] for s in stats}), "per_run": stats,
                "analysis": tr.analyse(self.name, records, stats, load_published(), scale)}

    def claims(self, doc, pub):
        yes = {True: "consistent", False: "not consistent", None: "not judged"}
        return [Claim(f"{c['claim']}: {'—' if c['paper'] is None else c['paper']}", Source("slides", "Tian's slides (Muon and diverse features)"),
                      f"{c['ours'] if isinstance(c['ours'], str) else fmt(c['ours'])} ({yes[c.get('consistent')]})", "info", "info")
                for c in doc["analysis"]["claims"]]

    def figures(self, doc, records, fig_dir, scale, ctx):
        return make_tian_figures(self.name, doc, load_published(), fig_dir)

    def report(self, doc, pub):
        return tr.report_markdown(doc) + "\n".join(claims_block(doc.get("claims", []))) + "\n"


SECTION = Muon()
