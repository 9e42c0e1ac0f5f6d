"""Bring a stored Tian section (scaling, critical) from the former layout to its section module's layout.

    python scripts/migrate_stored_sections.py --section scaling [--scale full] [--store-to DIR]

The former layout kept each run's numbers under ``per_run`` and the claim rows under ``analysis``; the section
modules (tianref/experiments/reproduce/sections/) keep ``doc[<section>] = {per_run, table, boundary, ...}``.
For scaling and critical every key of that block is a pure function of ``per_run`` (the section's own
``cell_table`` and ``boundary``), so the stored runs' numbers are copied unchanged and the tables and the
claims are recomputed from them; nothing is trained. The script refuses to write when a recomputed cell
differs from the former table (a change of a number, not of the layout). provenance.json gains
``migrated`` = {command, date, git, note}; the figures are kept.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tianref.analysis.summarize import to_json, write_atomic  # noqa: E402
from tianref.backend import git_state  # noqa: E402
from tianref.experiments import protocols_tian as pt  # noqa: E402
from tianref.experiments.reproduce.pipeline import get_section, render  # noqa: E402
from tianref.experiments.reproduce.rows import load_published  # noqa: E402
from tianref.experiments.reproduce.runstats import boundary  # noqa: E402

MIGRATABLE = ("scaling", "critical")


def migrate(doc: dict, name: str) -> dict:
    """The section block recomputed from the stored per_run (pure)."""
    mod = sys.modules[type(get_section(name)).__module__]
    stats = doc["per_run"]
    table = mod.cell_table(stats)
    if name == "scaling":
        b = boundary([{"M": r["M"], "x": r["p"], "frac": r["n_grok"] / r["n"]} for r in table])
        block = {"per_run": stats, "table": table, "boundary": {str(M): v for M, v in b.items()}}
    else:
        b = boundary([{"M": r["M"], "x": r["c"], "frac": r["frac"]} for r in table])
        etas = sorted({float(f"{pt.CRITICAL_ETA * doc['scale'].get('eta_factor', 1.0):.6g}")})
        block = {"per_run": stats, "table": table, "boundary": {str(M): v for M, v in b.items()}, "eta": etas}
    new = {k: v for k, v in doc.items() if k not in ("per_run", "analysis", "comparison", "claims")}
    new[name] = block
    return new


def check_same_cells(old: dict, new_block: dict, name: str) -> None:
    """Every grok count of the former table must come back unchanged."""
    rows = old.get("analysis", {}).get("table") or old.get("analysis", {}).get("rows") or []
    for r in rows:
        if "n_grok" not in r:
            continue
        key = ("M", "p") if name == "scaling" else ("M", "c")
        match = [x for x in new_block["table"] if all(abs(float(x[k]) - float(r[k])) < 1e-9 for k in key if k in r)]
        if match and match[0]["n_grok"] != r["n_grok"]:
            raise SystemExit(f"{name}: cell {[r.get(k) for k in key]} has n_grok {match[0]['n_grok']} now, "
                             f"{r['n_grok']} stored: not a layout change; nothing written")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--section", choices=MIGRATABLE, required=True)
    ap.add_argument("--scale", default="full")
    ap.add_argument("--store-to", default=str(REPO / "reference_results" / "reproduction"))
    a = ap.parse_args()
    d = Path(a.store_to) / a.scale / a.section
    old = json.loads((d / "summary.json").read_text(encoding="utf-8"))
    if a.section in old:
        print(f"{d}: already in the section module's layout; nothing to do")
        return 0
    git = git_state()
    new = migrate(old, a.section)
    check_same_cells(old, new[a.section], a.section)
    new, md = render(get_section(a.section), new, load_published())
    write_atomic(d / "summary.json", to_json(new))
    write_atomic(d / "report.md", md)
    prov_path = d / "provenance.json"
    prov = json.loads(prov_path.read_text(encoding="utf-8"))
    prov["migrated"] = {"command": " ".join(["python"] + sys.argv),
                        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "git": git,
                        "note": "layout of the section module: per_run copied unchanged, the table, boundary and "
                                "claims recomputed from it; the runs are those of the original command"}
    write_atomic(prov_path, to_json(prov))
    print(f"{d}: migrated ({len(new['claims'])} claims)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
