"""``reproduce --rerender``: rebuild a stored section's comparison and report.md from its summary.json.

References: ``docs/reproduce.md`` ("Re-rendering a stored section"). The comparison
(:func:`tianref.experiments.reproduce.compare.compare`) and the report
(:func:`tianref.experiments.reproduce.report.report_markdown`) are pure functions of the summary document
and the published numbers, so when their wording, a citation or a rule changes, the stored section can be
brought up to date without its runs. Nothing measured is touched: the runs' statistics (``views``,
``extras``, ``thm6``) are read and written back unchanged, and :func:`rerender_section` refuses to write
if they would differ.

Files
    STORE/<scale>/<section>/summary.json     ``comparison`` replaced; every other key kept as stored
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
from tianref.experiments.reproduce.compare import compare
from tianref.experiments.reproduce.report import report_markdown
from tianref.experiments.reproduce.rows import load_published

MEASURED_KEYS = ("section", "scale", "n_runs", "runs", "seeds", "epochs", "setup", "conditions", "views",
                 "extras", "thm6", "notes", "figures", "command")


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


def predates_section_module(doc: dict) -> bool:
    """A stored summary of the layout before reproduce/sections/<name>.py: Tian's sections kept their claims
    in doc["analysis"], the seed sections as [claim, ours, verdict] lists; neither has doc[<section>] alone."""
    return "analysis" in doc or doc.get("section") not in doc or \
        any(isinstance(c, list) for c in doc.get("claims", []))


def rerender_doc(doc: dict, pub: dict) -> tuple[dict, str]:
    """(the document with a fresh comparison, its report.md); pure."""
    from tianref.experiments.reproduce.pipeline import MODULE_SECTIONS, section_module
    if doc.get("section") in MODULE_SECTIONS:               # claims and report: the section module's, pure
        S = section_module(doc["section"])
        if predates_section_module(doc):
            raise InputError(f"the stored {doc['section']} summary predates its section module; run the section "
                             "again")
        new = dict(doc, claims=[c.to_dict() for c in S.claims(doc, pub)])
        return new, S.report(new, pub)
    new = dict(doc)
    new["comparison"] = json.loads(to_json(compare(doc, pub)))
    return new, report_markdown(new, pub)


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
    from tianref.experiments.reproduce.pipeline import MODULE_SECTIONS
    if any(new.get(k) != stored.get(k) for k in MEASURED_KEYS + MODULE_SECTIONS):   # only the claims move
        raise AssertionError("re-rendering changed a measured key")
    old_md = (d / "report.md").read_text(encoding="utf-8") if (d / "report.md").is_file() else None
    changed = {"summary.json": any(new.get(k) != stored.get(k) for k in ("comparison", "claims")),
               "report.md": md != old_md}
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
                              "note": "comparison and report.md re-rendered from the stored summary.json; "
                                      "the runs and their statistics are those of the original command"}
        write_atomic(prov_path, to_json(prov))
    return {"dir": str(d), "changed": [k for k, v in changed.items() if v]}
