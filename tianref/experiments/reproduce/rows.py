"""One line of the comparison with the published numbers, and the helpers that make lines from a
summary (pure: no I/O except reading the published numbers).

References: ``docs/paper-protocol.md`` §1-2 (the published numbers, as data in
``reference_results/paper/published.json``) and §5 (its numbered caveats, cited by each row).

Comparison rules (``kind`` of a row):
    value      Δ = ours − paper; within = lo <= ours <= hi for a published range [lo, hi], else none.
               Both "never" (None): within; exactly one "never": not within.
    count      fired/n: Δ = ours_fired/ours_n − paper_fired/paper_n; within = (Δ == 0).
    magnitude  a '~1e-5'-style claim: Δ shown as the ratio ours/paper; within = |log10 ratio| <= 0.5.
    seedrange  a single published run (seed 0 of the paper's torch RNG, not ours): within = the
               paper's value lies in our [min, max] over seeds.
    info       shown for reading, nothing to compare (a qualitative claim).

Symbols (keys of a row)
    ours, paper   the two values; ``*_text`` how they are shown
    delta, rel    Δ = ours − paper and Δ/|paper| (``kind`` magnitude: rel = ours/paper)
    within        True / False / None (nothing to judge); ``rule`` says which rule decided
    range         the published range [lo, hi] (or our [min, max] for seedrange)
    caveats       numbers n of paper-protocol.md §5.n that bear on the row
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from tianref.errors import InputError
from tianref.analysis.summarize import fmt

REPO = Path(__file__).resolve().parents[3]
PUBLISHED_PATH = REPO / "reference_results" / "paper" / "published.json"


def load_published(path=PUBLISHED_PATH) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: the published numbers are missing")
    return json.loads(path.read_text(encoding="utf-8"))


def row(quantity, ours, paper, *, condition="", kind="value", rng=None, ours_text=None,
        paper_text=None, source="", caveats=(), note="", group="main") -> dict:
    """One comparison line with its Δ and within-range flag (rules in the module docstring)."""
    delta = rel = within = None
    rule = ""
    if kind == "value":
        if ours is None and paper is None:
            within, rule = True, "both never"
        elif ours is None or paper is None:
            within, rule = False, "one of the two never happened"
        else:
            delta = ours - paper
            rel = delta / abs(paper) if paper else None
            if rng is not None:
                within, rule = bool(rng[0] <= ours <= rng[1]), "ours in the published range"
            else:
                rule = "no published range"
    elif kind == "count":
        (k, n), (kp, np_) = ours, paper
        if n:
            delta = k / n - kp / np_
            within, rule = bool(abs(delta) < 1e-12), "same fired fraction"
        else:
            within, rule = False, "no runs to count"
        ours_text = ours_text or f"{k}/{n}"
        paper_text = paper_text or f"{kp}/{np_}"
    elif kind == "magnitude":
        rule = "same order of magnitude (|log10 ratio| <= 0.5)"
        if ours is not None and ours > 0 and paper:
            rel = ours / paper
            within = bool(abs(math.log10(rel)) <= 0.5)
        else:
            within = False
    elif kind == "seedrange":
        rule = "paper's single run inside our seed range"
        if rng is not None and paper is not None and None not in rng:
            within = bool(rng[0] <= paper <= rng[1])
            if ours is not None:
                delta = ours - paper
    elif kind == "info":
        rule = "qualitative claim"
    else:
        raise ValueError(f"unknown row kind {kind!r}")
    return {"group": group, "quantity": quantity, "condition": condition, "kind": kind,
            "ours": ours, "ours_text": ours_text if ours_text is not None else fmt(ours),
            "paper": paper, "paper_text": paper_text if paper_text is not None else fmt(paper),
            "range": list(rng) if rng is not None else None, "delta": delta, "rel": rel,
            "within": within, "rule": rule, "source": source, "caveats": list(caveats), "note": note}


def find_condition(summary: dict, eta: float, act: str | None = None):
    for c in summary["conditions"]:
        cfg = c["config"]
        if float(cfg.get("eta", -1)) == eta and (act is None or cfg.get("act", "sqr") == act):
            return c
    return None


def _cell(s) -> str:
    if s is None:
        return "n/a"
    if not s["n_fired"]:
        return f"never 0/{s['n']}"
    return f"{fmt(s['median'])} [{fmt(s['q25'])}, {fmt(s['q75'])}] {s['n_fired']}/{s['n']}"


def _stat(c, key):
    return None if c is None else c["stats"].get(key)


def _ev(quantity, c, key, paper, **kw):
    """A value row from a condition's across-run statistic (median, with its cell as text)."""
    s = _stat(c, key)
    ours = None if s is None else s["median"]
    return row(quantity, ours, paper, condition=c["label"] if c else "missing",
               ours_text=_cell(s), **kw)


def _cnt(quantity, c, key, paper, **kw):
    s = _stat(c, key)
    if s is None:
        return row(quantity, None, None, condition="missing", kind="info", ours_text="n/a",
                   paper_text=f"{paper[0]}/{paper[1]}", **kw)
    return row(quantity, (s["n_fired"], s["n"]), paper, kind="count", condition=c["label"], **kw)


def _sep(quantity, c, paper, **kw):
    sep = None if c is None else c.get("late_separation")
    ours = None if not sep else sep.get("ratio")
    return row(quantity, ours, paper, condition=c["label"] if c else "missing",
               ours_text=None if ours is None else f"{fmt(ours)}x", **kw)


def _view(doc, i=0):
    return doc["views"][i]["summary"]


def _ep(doc, e: int) -> str:
    """'ep 200', or 'ep 30 (paper 200)' at a reduced scale."""
    s = int(round(e * doc["scale"]["epoch_factor"]))
    return f"ep {e}" if s == e else f"ep {s} (paper {e})"


def _late(summary) -> str:
    o = summary["options"]
    return f"late σ2/σ3, ep {o['late_lo']}-{o['late_hi']}"


def _thm6_cell(s) -> str:
    if s is None or not s["n_fired"]:
        return "—"
    return (f"{s['median']:.3f} [{s['q25']:.3f}, {s['q75']:.3f}] "
            f"({s['min']:.3f}–{s['max']:.3f})")
