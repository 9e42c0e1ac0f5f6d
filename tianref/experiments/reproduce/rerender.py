"""``reproduce --rerender``: rebuild a stored section's claims and report.md from its summary.json.

References: ``docs/reproduce.md`` ("Re-rendering a stored section"). A section's ``claims`` and ``report``
(:mod:`tianref.experiments.reproduce.section`) are pure functions of the summary document and the
published numbers, so when their wording, a citation or a rule changes, the stored section can be brought
up to date without its runs. Nothing measured is touched: every key of summary.json other than the
rendered ones (:data:`RENDERED_KEYS`) is read and written back unchanged, and :func:`rerender_section`
refuses to write if one would differ.

Files
    STORE/<scale>/<section>/summary.json     ``claims`` replaced (a former ``comparison`` dropped); the rest kept
    STORE/<scale>/<section>/report.md        re-rendered
    STORE/<scale>/<section>/provenance.json  gains ``rerendered`` = {command, date, git}; the rest kept
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


def rerender_doc(doc: dict, pub: dict) -> tuple[dict, str]:
    """(the document with fresh claims, its report.md); pure."""
    return render(get_section(doc.get("section")), doc, pub)


def rerender_section(store_root: Path, scale_name: str, section: str, command: str = "",
                     git: dict | None = None) -> dict:
    """Re-render one stored section in place; returns what changed. ``git``: the checkout's state
    taken before anything was written (default: now), so that one command's earlier sections do not
    mark the tree dirty for its later ones."""
    from tianref.backend import git_state
    git = git_state() if git is None else git
    d = Path(store_root) / scale_name / section
    try:
        doc = json.loads((d / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{d / 'summary.json'}: cannot read it ({exc})") from None
    if doc.get("section") != section or doc.get("scale", {}).get("name") != scale_name:
        raise InputError(f"{d / 'summary.json'} holds section {doc.get('section')!r} at scale "
                         f"{doc.get('scale', {}).get('name')!r}, not {section!r} at {scale_name!r}")
    stored = copy.deepcopy(doc)
    new, md = rerender_doc(doc, load_published())
    if measured_part(new) != measured_part(stored):                 # guard: only the claims move
        raise AssertionError("re-rendering changed a measured key")
    old_md = (d / "report.md").read_text(encoding="utf-8") if (d / "report.md").is_file() else None
    changed = {"summary.json": new != stored, "report.md": md != old_md}
    if changed["summary.json"]:
        write_atomic(d / "summary.json", to_json(new))
    if changed["report.md"]:
        write_atomic(d / "report.md", md)
    prov_path = d / "provenance.json"
    if any(changed.values()) and prov_path.is_file():
        prov = json.loads(prov_path.read_text(encoding="utf-8"))
        prov["rerendered"] = {"command": command,
                              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "git": git,
                              "note": "claims and report.md re-rendered from the stored summary.json; "
                                      "the runs and their statistics are those of the original command"}
        write_atomic(prov_path, to_json(prov))
    return {"dir": str(d), "changed": [k for k, v in changed.items() if v]}
