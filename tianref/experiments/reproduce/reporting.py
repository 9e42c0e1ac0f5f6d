"""Markdown pieces every section's report.md may use (no section's logic): the claims block with its
verdict counts, the seed list.

References: docs/claims.md (the columns and the verdicts of the one claims table per report).
"""
from __future__ import annotations

import math

from tianref.experiments.reproduce.claims import VERDICTS, Claim, claims_markdown


def verdict_counts(claims) -> dict:
    """{verdict word: how many claims}, in the order of VERDICTS ('in kind (...)' counts as 'in kind')."""
    words = [(c.to_dict() if isinstance(c, Claim) else c)["verdict"].split(" (")[0] for c in claims]
    return {v: words.count(v) for v in VERDICTS if words.count(v)}


def claims_block(claims, title: str = "## Claims") -> list:
    """The report's claims section: a heading, the verdict counts, the one claims table (docs/claims.md),
    then the claims' notes as a numbered list (row: note), as every other section's report has them."""
    counts = ", ".join(f"{n} {v}" for v, n in verdict_counts(claims).items())
    ds = [c.to_dict() if isinstance(c, Claim) else c for c in claims]
    notes = [f"{i}. {d['note']}" for i, d in enumerate(ds, 1) if d.get("note")]
    return [title, "", f"{len(claims)} claims: {counts or 'none'}. The rules and verdicts are defined in "
            "docs/claims.md; \"agrees\" only where our quantity is the source's own, on its setup.", ""] \
        + claims_markdown(claims) + [""] + (["Notes to the claims (row: note):", ""] + notes + [""] if notes else [])


def seed_text(seeds) -> str:
    s = sorted(set(seeds))
    if s and s == list(range(s[0], s[-1] + 1)) and len(s) > 2:
        return f"{s[0]}-{s[-1]}"
    return ", ".join(map(str, s))


# --- the words of the "differences explained" blocks ------------------------------------------

GRAM_NAMES = {"main": "float64", "float32": "float32 (BLAS)", "float32-seq": "float32 (sequential sums)"}


def gram_name(g, ex) -> str:
    """A Gram mode's name in a report; 'main' is the runs' own (``ex['main']``, float64 by default)."""
    return ex.get("main", "float64") if g == "main" else GRAM_NAMES.get(g, g)


def num(x, spec=".3g") -> str:
    """x formatted, '—' when missing or not finite."""
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)
