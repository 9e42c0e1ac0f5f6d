"""Reproduce the paper section by section: run, summarise, compare with the published numbers, store.

References: ``docs/reproduce.md`` (the ``reproduce`` command), ``docs/paper-protocol.md`` §1-2 (the published
numbers, as data in ``reference_results/paper/published.json``), §3-4 (the protocols, as RunSpecs in
:mod:`tianref.experiments.protocols`) and §5 (where the paper contradicts itself; we follow its code).

A section is one protocol of the paper (``protocols.SECTIONS``). For each section this package

1. builds the section's runs (``protocols.section_runs``) as sweep jobs under ROOT/<section>/ and runs
   the unfinished ones (:func:`tianref.experiments.sweep.run_jobs`; finished runs are skipped),
2. summarises them under one or more *views* (detector settings; the table is in ``sections``),
3. compares ours with the published numbers (:func:`compare`, a pure function of the summary
   document; each row carries ours, the paper's value, Δ = ours − paper and a within-range flag),
4. writes ROOT/<section>/summary.json, report.md and figures/, and with ``store`` copies them with a
   provenance.json to reference_results/reproduction/<scale>/<section>/.

Modules (data flows down the list; nothing reaches back up)
    sections.py   sections, scales, views (detector settings per section), sweep jobs
    extras.py     per-epoch medians the published tables quote beyond summarize (T3b, T8, T4, ...)
    thm6_runs.py  the Theorem 6 section: checkpoints through thm6.summarize_checkpoint, cached
    rows.py       one comparison row and its rules (value, count, magnitude, seedrange, info)
    compare.py    the comparison of each section with the published numbers (pure)
    report.py     report.md (pure)
    figures.py    the section's figures
    store.py      provenance.json and --store
    pipeline.py   one section end to end (reproduce_section) and --plan

Everything a caller used from the former single module is re-exported here, e.g.
``from tianref.experiments import reproduce; reproduce.reproduce_section(...)``.
"""
from tianref.experiments.reproduce.compare import (
    COMPARE,
    compare,
    compare_eta,
    compare_extended,
    compare_headline,
    compare_relu,
    compare_thm6,
    compare_window,
)
from tianref.experiments.reproduce.extras import section_extras
from tianref.experiments.reproduce.figures import fig_thm6_seeds, make_figures
from tianref.experiments.reproduce.pipeline import build_doc, plan, reproduce_section
from tianref.experiments.reproduce.report import (
    GENERAL_NOTES,
    GROUP_TITLES,
    SECTION_CAVEATS,
    WE_FOLLOW,
    comparison_markdown,
    report_markdown,
    thm6_markdown,
)
from tianref.experiments.reproduce.rows import (
    PUBLISHED_PATH,
    REPO,
    find_condition,
    load_published,
    row,
)
from tianref.experiments.reproduce.sections import (
    ETA_GROK,
    View,
    eta_at,
    parse_scale,
    parse_section,
    run_section,
    scaled,
    section_epochs,
    section_jobs,
    section_views,
)
from tianref.experiments.reproduce.store import (
    STORE_ROOT,
    git_state,
    provenance,
    store_section,
    train_seconds,
)
from tianref.experiments.reproduce.thm6_runs import (
    THM6_BASE_EPOCHS,
    THM6_QTY,
    import_thm6,
    thm6_epoch_map,
    thm6_run,
    thm6_section,
)

__all__ = [
    "COMPARE", "ETA_GROK", "eta_at", "GENERAL_NOTES", "GROUP_TITLES", "PUBLISHED_PATH", "REPO", "SECTION_CAVEATS",
    "STORE_ROOT", "THM6_BASE_EPOCHS", "THM6_QTY", "WE_FOLLOW", "View", "build_doc", "compare",
    "compare_eta", "compare_extended", "compare_headline", "compare_relu", "compare_thm6",
    "compare_window", "comparison_markdown", "fig_thm6_seeds", "find_condition", "git_state",
    "import_thm6", "load_published", "make_figures", "parse_scale", "parse_section", "plan",
    "provenance", "report_markdown", "reproduce_section", "row", "run_section", "scaled",
    "section_epochs", "section_extras", "section_jobs", "section_views", "store_section",
    "thm6_epoch_map", "thm6_markdown", "thm6_run", "thm6_section", "train_seconds",
]
