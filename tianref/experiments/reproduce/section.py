"""The one protocol every reproduce section follows (one module per section, in ``reproduce/sections/``).

References: docs/reproduce.md (the ``reproduce`` command, "Adding a section"), docs/claims.md (claims,
sources, rules).

A section is an object with

    name, title        its --section name and its report's heading
    tests              which document it tests: "paper" | "tian" | "seed-lifecycle" | "seed-clocks" | ...
    default            part of ``--section all``
    needs_checkpoints  True when its measurements replay runs or read checkpoints (``--no-train`` refused)
    log_grams          Gram modes its runs also log (``train --log-grams``; float32-seq is dropped with CuPy)
    keeps_diverged     True: a run whose loss or parameters became non-finite is kept (named in
                       ``ctx.diverged``), not fatal
    runs(scale)                         -> [RunSpec]           its runs (default: protocols.section_runs)
    preflight()                         -> None                raise InputError before any run starts
    measure(records, scale, ctx)        -> dict                its measurements (JSON-ready; summary.json)
    rederive(doc)                       -> dict                pure: its own derived keys recomputed from the
                                                               stored per-run rows (default: none; --rerender)
    claims(doc, published)              -> [Claim]             pure: the claims beside our numbers
    figures(doc, records, fig_dir, scale, ctx) -> [str]        its figures (file names)
    report(doc, published)              -> str                 pure: report.md, with one claims table

The pipeline (:mod:`tianref.experiments.reproduce.pipeline`) builds ``doc``: the common header (section,
scale, command, n_runs, runs, seeds, epochs, setup, conditions, notes), updated with ``measure``'s dict
(its ``notes`` are appended to the header's, any other key may replace a header key), then
``missing_runs``, ``figures`` (``figures`` may append lines to ``doc["notes"]``: what it did not draw) and
``claims`` (a list of ``Claim.to_dict()``), in this order; ``report`` reads ``doc["claims"]``.

``claims`` and ``report`` are pure functions of the stored summary document (and the published numbers),
so ``reproduce --rerender`` rebuilds them without the runs; before that it recomputes the derived keys
(leads and lags by the current rule: :mod:`tianref.experiments.reproduce.rederive`, then ``rederive``). The pipeline drives every section through
this protocol and holds no section's logic; shared helpers (rows, views, figures' saving, store) hold
none either.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Context:
    """What a section's measurement may use beyond its records (nothing section-specific)."""
    section_dir: Path                 # ROOT/<section>/ (caches go below it, e.g. _thm6/, _probes/)
    xp: str = "numpy"                 # backend name for replays and probes
    n_jobs: int = 2
    n_top: int = 200                  # thm6: most similar pairs per checkpoint
    report: object = field(default=lambda m: None)      # report(message): one progress line
    diverged: frozenset = frozenset()                   # names of the runs kept as diverged (keeps_diverged)

    @property
    def root(self) -> Path:
        """The run tree ROOT (other sections' runs live beside this one's)."""
        return Path(self.section_dir).parent


class Section:
    """Base class: override the methods; the defaults are what most sections need."""
    name: str = ""
    title: str = ""
    tests: str = "paper"
    default: bool = False
    needs_checkpoints: bool = False
    log_grams: tuple = ()
    keeps_diverged: bool = False

    def runs(self, scale) -> list:
        from tianref.experiments import protocols
        return protocols.section_runs(self.name, scale)

    def preflight(self) -> None:
        return None

    def measure(self, records, scale, ctx: Context) -> dict:
        raise NotImplementedError

    def rederive(self, doc: dict) -> dict:
        return doc

    def claims(self, doc: dict, published: dict) -> list:
        raise NotImplementedError

    def figures(self, doc: dict, records, fig_dir: Path, scale, ctx: Context) -> list:
        return []

    def report(self, doc: dict, published: dict) -> str:
        raise NotImplementedError

    def claims_of(self, doc: dict, published: dict) -> list:
        """The claims a report shows: the document's own (pipeline.render sets them, with what it adds
        to every section's: on_the_runs_here), else this section's claims of it."""
        return doc["claims"] if "claims" in doc else self.claims(doc, published)
