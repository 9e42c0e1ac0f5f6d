"""The stored reproductions (reference_results/reproduction/<scale>/<section>/summary.json) describe the runs
the sections list now: the same run tags (seeds, etas, grid cells) and, where the header's epochs are stored,
the same lengths. A change of a protocol value at the ci or full scale makes the stored numbers belong to
other runs; this fails until they are regenerated with the command their provenance.json records.

Also the smoke scale's documented floor (protocols.py, SCALES["smoke"]): epochs x 0.02, so every run has at
least 30 epochs.
"""
import json
from pathlib import Path

import pytest

from tianref.experiments import protocols
from tianref.experiments.reproduce.jobs import epochs_of
from tianref.experiments.reproduce.sections import REGISTRY

STORE = Path(__file__).resolve().parents[2] / "reference_results" / "reproduction"
STORED = sorted(p.parent for p in STORE.glob("*/*/summary.json")) if STORE.is_dir() else []


@pytest.mark.skipif(not STORED, reason="no stored reproduction")
@pytest.mark.parametrize("d", STORED or [None], ids=lambda d: f"{d.parent.name}-{d.name}" if d else "none")
def test_a_stored_summary_lists_the_runs_of_its_section_now(d):
    doc = json.loads((d / "summary.json").read_text())
    scale, section = protocols.SCALES[d.parent.name], REGISTRY[d.name]
    specs = section.runs(scale)
    assert set(doc["runs"]) | set(doc.get("missing_runs") or []) == {s.tag for s in specs}
    if isinstance(doc["epochs"], dict) and all(isinstance(v, int) for v in doc["epochs"].values()):
        assert doc["epochs"] == epochs_of(specs)          # the header's {act: E}


def test_every_smoke_run_has_at_least_30_epochs():
    for name, section in REGISTRY.items():
        if name == "groups":                               # its own plans (the ci plan: 40 epochs)
            continue
        E = [s.options["epochs"] for s in section.runs(protocols.SCALES["smoke"])]
        assert min(E) >= 30, (name, sorted(set(E)))
