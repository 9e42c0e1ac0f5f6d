"""Reproduce the papers section by section: run, measure, put each claim beside our number, report, store.

References: ``docs/reproduce.md`` (the ``reproduce`` command; "A section is one module"), ``docs/claims.md``
(claims, sources, the named rules and the verdicts), ``docs/paper-protocol.md`` §1-2 (the published
numbers, as data in ``reference_results/paper/published.json``), §3-4 (the protocols, as RunSpecs in
:mod:`tianref.experiments.protocols`) and §5 (where the paper contradicts itself; we follow its code).

A section is one module in ``sections/`` defining ``SECTION``, an object of the one protocol
(:mod:`.section`: runs, measure, claims, figures, report); ``sections.REGISTRY`` lists them in the order
of ``protocols.SECTIONS``. For each section :mod:`.pipeline`

1. builds the section's runs as sweep jobs under ROOT/<section>/ and runs the unfinished ones
   (:func:`tianref.experiments.sweep.run_jobs`; finished runs are skipped),
2. measures them (``SECTION.measure``), draws the figures, builds the claims (each with its source and
   a named rule of :data:`.claims.RULES`) and the report,
3. writes ROOT/<section>/summary.json, report.md and figures/, and with ``store`` copies them with a
   provenance.json to reference_results/reproduction/<scale>/<section>/.

Modules (data flows down the list; nothing reaches back up)
    claims.py        Source, Rule, RULES, Claim, the verdict vocabulary, the claims table
    section.py       the Section protocol and its Context
    views.py         detector views at a scale, summarise per view (the paper's sections)
    measures.py      per-run and per-condition helpers of the paper's sections
    thm6_runs.py     checkpoints through thm6.summarize_checkpoint, cached, statistics over seeds
    rows.py          the published numbers, summary cells, sources, claims built from cells (ClaimList)
    reporting.py     Markdown pieces of every report (the claims block)
    paper_report.py  the report.md of a paper section around its own blocks
    figures.py       saving figures; the run figures under a section's names
    jobs.py          a section's sweep jobs, running them, --no-train, diverged runs
    signals.py       SIGINT and SIGTERM held over renames that must happen together
    store.py         provenance.json and --store
    sections/        one module per section and REGISTRY
    pipeline.py      one section end to end (reproduce_section) and --plan, generic over REGISTRY
    rerender.py      --rerender: claims and report.md again from a stored summary.json
Today's code of Tian's and the seed sections (tian_report, tian_analysis, tian_figures, seeds, lifecycle,
clocks_section, seed_stats) is wrapped by the adapter modules sections/{scaling, critical, muon, ridge,
lifecycle, clocks}.py.
"""
from tianref.experiments.reproduce.claims import RULES, SOURCE_KINDS, VERDICTS, Claim, Source
from tianref.experiments.reproduce.jobs import section_epochs, section_jobs
from tianref.experiments.reproduce.pipeline import (
    all_section_jobs,
    get_section,
    no_train_jobs,
    parse_scale,
    parse_section,
    plan,
    reproduce_section,
)
from tianref.experiments.reproduce.rows import PUBLISHED_PATH, REPO, find_condition, load_published
from tianref.experiments.reproduce.sections import REGISTRY
from tianref.experiments.reproduce.store import STORE_ROOT, git_state, provenance, store_section, train_seconds
from tianref.experiments.reproduce.thm6_runs import THM6_QTY, import_thm6, thm6_epoch_map
from tianref.experiments.reproduce.views import ETA_GROK, View, eta_at, scaled

__all__ = [
    "all_section_jobs", "Claim", "ETA_GROK", "PUBLISHED_PATH", "REGISTRY", "REPO", "RULES", "SOURCE_KINDS", "STORE_ROOT",
    "Source", "THM6_QTY", "VERDICTS", "View", "eta_at", "find_condition", "get_section", "git_state",
    "import_thm6", "load_published", "no_train_jobs", "parse_scale", "parse_section", "plan", "provenance",
    "reproduce_section", "scaled", "section_epochs", "section_jobs", "store_section", "thm6_epoch_map",
    "train_seconds",
]
