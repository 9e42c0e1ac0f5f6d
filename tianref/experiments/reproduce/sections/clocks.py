"""Adapter (to be replaced by the clocks section's own module): the two-training-clocks seed's section as
today's code computes it (clocks_section.clocks_doc, seeds.figures), behind the Section protocol. Each
claim is shown with the rule 'info' (today's verdict text in the ours cell).
"""
from __future__ import annotations

import json

from tianref.analysis.summarize import to_json
import tianref.experiments.reproduce.clocks_section as cs
from tianref.experiments.reproduce.claims import Claim, Source
from tianref.experiments.reproduce.reporting import claims_block
from tianref.experiments.reproduce.section import Section
import tianref.experiments.reproduce.seeds as seeds

SEED = Source("seed", "Deciphering Two Training Clocks in Grokking via Deep Linear Network Theory with "
                      "Conditional ReLU Reduction")


class Clocks(Section):
    name, title, tests, needs_checkpoints = "clocks", "the two-training-clocks seed", "seed-clocks", True

    def measure(self, records, scale, ctx):
        return {"clocks": json.loads(to_json(cs.clocks_doc(records)))}

    def claims(self, doc, pub):
        return [Claim(a, SEED, f"{b} ({c})", "info", "info") for a, b, c in cs.claims_clocks(doc["clocks"])]

    def figures(self, doc, records, fig_dir, scale, ctx):
        return seeds.figures(self.name, doc, records, fig_dir)

    def report(self, doc, pub):
        return cs.report_clocks(doc) + "\n".join(claims_block(doc.get("claims", []))) + "\n"


SECTION = Clocks()
