"""``reproduce --rerender``: recompute a stored section's derived keys and rebuild its claims and report.md
from its summary.json.

References: ``docs/reproduce.md`` ("Re-rendering a stored section"). A section's ``claims`` and ``report``
(:mod:`tianref.experiments.reproduce.section`) are pure functions of the summary document and the
published numbers, so when their wording, a citation or a rule changes, the stored section can be brought
up to date without its runs. The leads and lags are differences of measured events by a rule
(docs/detectors.md §10): they are recomputed first from the stored events
(:mod:`tianref.experiments.reproduce.rederive`, which refuses to move any other key). Nothing measured is
touched: every key of summary.json other than the rendered ones (:data:`RENDERED_KEYS`) and the derived
ones (rederive.DERIVED_KEYS) is read and written back unchanged, and :func:`rerender_section` refuses to
write if one would differ.

Files
    STORE/<scale>/<section>/summary.json     derived keys recomputed; ``claims`` replaced (a former
                                             ``comparison`` dropped); the rest kept
    STORE/<scale>/<section>/report.md        re-rendered
    STORE/<scale>/<section>/provenance.json  gains ``rerendered`` = {command, date, git, note} when a file
                                             changed, and ``rederived`` = {command, date, git, rule, changed:
                                             [{at, old, new}]} when a derived key did; the rest kept
Each file is replaced atomically; figures are not touched.
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

from tianref.analysis.summarize import to_json, write_atomic
from tianref.errors import InputError
from tianref.experiments import protocols
from tianref.experiments.reproduce.pipeline import get_section, render
from tianref.experiments.reproduce.rederive import rederive_doc
from tianref.experiments.reproduce.rows import load_published

RENDERED_KEYS = ("claims", "comparison")     # what a re-render may change; every other key is measured


def measured_part(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in RENDERED_KEYS}


def stored_sections(store_root: Path, scale_name: str, sections: list[str] | None) -> list[str]:
    """The sections to re-render: the named ones (each must be stored), or every stored one."""
    base = Path(store_root) / scale_name
    if sections is None:
        found = [s for s in protocols.SECTIONS if (base / s / "summary.json").is_file()]
        if not found:
            raise InputError(f"{base}: no stored section to re-render")
        return found
    for s in sections:
        if not (base / s / "summary.json").is_file():
            raise InputError(f"{base / s / 'summary.json'} not found: nothing stored to re-render")
    return list(sections)


RULE = ("leads and lags recomputed from the stored event epochs by the current rule (docs/detectors.md §10: "
        "undefined, null, where an operand fired at the first row its detector can fire; a row stored without "
        "from_start is read with the engine's first rows), with their across-run statistics and "
        "lead_rho_of_medians, as a fresh summarize gives them; the boundary intervals of critical and scaling "
        "from the stored cell table (last_below: the largest grid value below the crossing, the grid's largest "
        "where no grid value reaches half); no measured key changed")


def rerender_doc(doc: dict, pub: dict, changes: list | None = None) -> tuple[dict, str]:
    """(the document with its derived keys recomputed and fresh claims, its report.md); pure but for
    ``changes``, which (when given) receives the derived keys that moved (rederive: [{at, old, new}])."""
    section = get_section(doc.get("section"))
    derived, moved = rederive_doc(doc, section)
    if changes is not None:
        changes.extend(moved)
    return render(section, derived, pub)


def _no_constant(name):
    """json's hook for NaN and ±Infinity, which no stored summary holds (to_json writes strict JSON)."""
    raise ValueError(f"{name} is not strict JSON")


def rerender_section(store_root: Path, scale_name: str, section: str, command: str = "",
                     git: dict | None = None) -> dict:
    """Re-render one stored section in place; returns what changed. ``git``: the checkout's state
    taken before anything was written (default: now), so that one command's earlier sections do not
    mark the tree dirty for its later ones."""
    return apply_rerender(plan_rerender(store_root, scale_name, section), command, git)


def plan_rerender(store_root: Path, scale_name: str, section: str) -> dict:
    """Everything a re-render of one stored section would write, read and checked but not written (every
    section of a command is planned before any is written, so bad input anywhere writes nothing)."""
    d = Path(store_root) / scale_name / section
    try:
        doc = json.loads((d / "summary.json").read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (OSError, ValueError) as exc:
        raise InputError(f"{d / 'summary.json'}: cannot read it ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("scale"), dict):
        raise InputError(f"{d / 'summary.json'}: not a stored section summary (a JSON object with a 'scale' "
                         "object)")
    if doc.get("section") != section or doc["scale"].get("name") != scale_name:
        raise InputError(f"{d / 'summary.json'} holds section {doc.get('section')!r} at scale "
                         f"{doc.get('scale', {}).get('name')!r}, not {section!r} at {scale_name!r}")
    stored = copy.deepcopy(doc)
    derived = []
    published = load_published()                                    # its own errors name its own files
    try:
        new, md = rerender_doc(doc, published, derived)
    except InputError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:   # a hand-edited document
        raise InputError(f"{d / 'summary.json'}: not a stored summary of section {section} that can be "
                         f"re-rendered ({type(exc).__name__}: {exc})") from None
    if doc != stored:                                               # guard: the input is not modified
        raise AssertionError("re-rendering modified the stored document it read")
    expected = measured_part(rederive_doc(stored, get_section(section))[0])
    if measured_part(new) != expected:                              # guard: only the claims move (and the
        raise AssertionError("re-rendering changed a measured key")   # derived keys, checked by rederive)
    old_md = (d / "report.md").read_text(encoding="utf-8") if (d / "report.md").is_file() else None
    changed = {"summary.json": new != stored, "report.md": md != old_md}
    prov_path = d / "provenance.json"
    prov = None
    if any(changed.values()):                     # every file it writes, checked before the first is written
        for f in ("summary.json", "report.md", "provenance.json"):
            p = d / f
            if p.is_symlink() or (p.exists() and not p.is_file()):
                raise InputError(f"{p}: not a regular file; nothing was re-rendered")
        if not prov_path.is_file():
            raise InputError(f"{prov_path}: missing: a stored section is re-rendered only with the record of "
                             "the command that stored it; nothing was re-rendered")
    if any(changed.values()):                                        # read before anything is written
        try:
            prov = json.loads(prov_path.read_text(encoding="utf-8"), parse_constant=_no_constant)
        except (OSError, ValueError) as exc:
            raise InputError(f"{prov_path}: cannot read it ({exc}); nothing was re-rendered") from None
        if not isinstance(prov, dict):
            raise InputError(f"{prov_path}: not a provenance record (a JSON object); nothing was re-rendered")
    return {"dir": d, "new": new, "md": md, "changed": changed, "prov": prov, "derived": derived}


def apply_rerender(plan: dict, command: str = "", git: dict | None = None) -> dict:
    """Write a planned re-render (plan_rerender); returns what changed."""
    from tianref.backend import git_state
    git = git_state() if git is None else git
    d, new, md, changed, prov, derived = (plan[k] for k in ("dir", "new", "md", "changed", "prov", "derived"))
    prov_path = d / "provenance.json"
    if changed["summary.json"]:
        write_atomic(d / "summary.json", to_json(new))
    if changed["report.md"]:
        write_atomic(d / "report.md", md)
    if prov is not None:
        date = datetime.now(timezone.utc).isoformat(timespec="seconds")
        prov["rerendered"] = {"command": command, "date": date, "git": git,
                              "note": "claims and report.md re-rendered from the stored summary.json; "
                                      "the runs and their measured statistics are those of the original "
                                      "command" + ("; derived keys recomputed (rederived)" if derived else "")
                                      + ("; the store lies outside the source checkout, so git's state does "
                                         "not cover the summary.json it read" if (git or {}).get(
                                             "store_outside_checkout") else "")}
        if derived:
            prov["rederived"] = {"command": command, "date": date, "git": git, "rule": RULE,
                                 "changed": derived}
        write_atomic(prov_path, to_json(prov))
    return {"dir": str(d), "changed": [k for k, v in changed.items() if v],
            "derived": [c["at"] for c in derived]}
