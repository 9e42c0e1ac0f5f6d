"""Adapter (to be replaced by the lifecycle section's own module): the spectral-edge seed's section as
today's code computes it (seeds.probe_runs, lifecycle.lifecycle_doc, seeds.figures), behind the Section
protocol, on the section's first 15 runs (today's code does not read the weight-decay intervention runs).
Each claim is shown with the rule 'info' (today's verdict text in the ours cell).
"""
from __future__ import annotations

import json

from tianref.analysis.summarize import to_json
from tianref.experiments import protocols
from tianref.experiments.reproduce.claims import Claim, Source
import tianref.experiments.reproduce.lifecycle as lc
from tianref.experiments.reproduce.reporting import claims_block
from tianref.experiments.reproduce.section import Section
import tianref.experiments.reproduce.seeds as seeds

SEED = Source("seed", "The Lifecycle of the Spectral Edge: From Gradient Learning to Weight-Decay Compression")


class Lifecycle(Section):
    name, title, tests, needs_checkpoints = "lifecycle", "the spectral-edge seed", "seed-lifecycle", True

    def runs(self, scale):
        extra = {s.tag for s in protocols.intervention_runs(scale)}
        return [s for s in protocols.section_runs(self.name, scale) if s.tag not in extra]

    def measure(self, records, scale, ctx):
        probes = seeds.probe_runs(records, scale, ctx.xp, ctx.n_jobs, ctx.section_dir / "_probes", ctx.report)
        return {"lifecycle": json.loads(to_json(lc.lifecycle_doc(records, probes, scale)))}

    def claims(self, doc, pub):
        return [Claim(a, SEED, f"{b} ({c})", "info", "info") for a, b, c in lc.claims_lifecycle(doc["lifecycle"])]

    def figures(self, doc, records, fig_dir, scale, ctx):
        return seeds.figures(self.name, doc, records, fig_dir)

    def report(self, doc, pub):
        return lc.report_lifecycle(doc) + "\n".join(claims_block(doc.get("claims", []))) + "\n"


SECTION = Lifecycle()
