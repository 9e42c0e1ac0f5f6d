"""The one protocol every reproduce section follows (one module per section, in ``reproduce/sections/``).

References: docs/reproduce.md (the ``reproduce`` command), docs/claims.md (claims, sources, rules).

A section is an object with

    name, title        its --section name and its report's heading
    tests              which document it tests: "paper" | "tian" | "seed-lifecycle" | "seed-clocks" | ...
    default            part of ``--section all``
    needs_checkpoints  True when its measurements replay runs or read checkpoints (``--no-train`` refused)
    runs(scale)                         -> [RunSpec]           its runs (tags and train options)
    measure(records, scale, ctx)        -> dict                its measurements (JSON-ready; summary.json)
    claims(doc, published)              -> [Claim]             pure: the claims beside our numbers
    figures(doc, records, fig_dir, scale, ctx) -> [str]        its figures (file names)
    report(doc, published)              -> str                 pure: report.md, with one claims table

``claims`` and ``report`` are pure functions of the stored summary document (and the published numbers),
so ``reproduce --rerender`` rebuilds them without the runs. The pipeline
(:mod:`tianref.experiments.reproduce.pipeline`) drives every section through this protocol and holds no
section's logic; shared helpers (rows, stats, figures' saving, store) hold none either.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Context:
    """What a section's measurement may use beyond its records (nothing section-specific)."""
    section_dir: Path
    xp: str = "numpy"                 # backend name for replays and probes
    n_jobs: int = 2
    n_top: int = 200                  # thm6: most similar pairs per checkpoint
    report: object = field(default=lambda m: None)      # report(message): one progress line


class Section:
    """Base class: override the methods; the defaults are what most sections need."""
    name: str = ""
    title: str = ""
    tests: str = "paper"
    default: bool = False
    needs_checkpoints: bool = False

    def runs(self, scale) -> list:
        raise NotImplementedError

    def measure(self, records, scale, ctx: Context) -> dict:
        raise NotImplementedError

    def claims(self, doc: dict, published: dict) -> list:
        raise NotImplementedError

    def figures(self, doc: dict, records, fig_dir: Path, scale, ctx: Context) -> list:
        return []

    def report(self, doc: dict, published: dict) -> str:
        raise NotImplementedError
