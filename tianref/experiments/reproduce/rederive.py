"""The derived keys of a stored section, recomputed by the current rule from its stored measured keys.

References: ``docs/reproduce.md`` ("Re-rendering a stored section"); docs/detectors.md §10 (a lead or lag
with an operand that fired at the first row its detector can fire is undefined); the rule itself is
:mod:`tianref.analysis.event_flags` (summaries) and :mod:`tianref.experiments.reproduce.runstats` (per-run rows).

A lead or lag is a difference of two measured event epochs; which ones are defined is a rule, and the rule
may change after a section was stored. ``reproduce --rerender`` then recomputes them from the stored events
and first-row information, as a fresh ``summarize`` (or ``run_stats``) gives them for the same runs, so that
summary.json says what report.md renders. Nothing measured moves: :func:`rederive_doc` checks that every
difference from the stored document lies under a key of :data:`DERIVED_KEYS`.

Recomputed, where the stored document has the key (none is added)
    summarize documents    (a dict with ``options`` and ``conditions`` [{runs, stats}], e.g. views[i].summary)
        runs[j][lead]                 first - second event (event_flags.LEADS); None where an operand is
                                      missing or the lead is undefined (event_flags.run_flags: the row's
                                      ``from_start``, or for a row stored before it the engine's first rows)
        stats[lead]                   event_flags.lead_stats (undefined runs in n, not in n_fired)
        stats[lead_rho_of_medians]    event_flags.lead_of_medians
    per-run rows of run_stats  (a dict with run, t05, rho_fire, lead; e.g. scaling.per_run)
        lead                          runstats.stored_lead
    and what the section's own ``rederive`` recomputes from them (e.g. scaling's table: lead_med; the
    boundary intervals of critical and scaling: last_below, whose open end above the grid was once None)

Symbols
    change    {"at": "views[0].summary.conditions[0].runs[3].lead_rho", "old": 361.0, "new": None}
"""
from __future__ import annotations

import copy
import json
import math

from tianref.analysis import detectors as det
from tianref.analysis import event_flags as ef
from tianref.analysis.summary_io import to_json
from tianref.experiments.reproduce.runstats import stored_lead

DERIVED_KEYS = frozenset(ef.LEADS) | {"lead_rho_of_medians", "lead", "lead_med", "n_lead_undefined", "last_below"}
RUN_ROW_KEYS = ("run", "t05", "rho_fire", "lead")


def _is_summary(x) -> bool:
    conds = x.get("conditions")
    return isinstance(x.get("options"), dict) and isinstance(conds, list) and bool(conds) and \
        all(isinstance(c, dict) and "runs" in c and "stats" in c for c in conds)


def run_leads(run: dict, undefined: dict) -> dict:
    """{lead: value} for the leads a stored row has: as summarize.run_values computes them from the events."""
    out = {}
    for lead, (a, b) in ef.LEADS.items():
        if lead not in run:
            continue
        if run.get(a) is None or run.get(b) is None or lead in undefined:
            out[lead] = None
        else:
            x = float(det.paired_diff(run[a], run[b]))
            out[lead] = x if math.isfinite(x) else None
    return out


def rederive_summary(summary: dict) -> None:
    """Recompute, in place, the leads and lags of a summarize document (module docstring)."""
    o = summary["options"]
    for c in summary["conditions"]:
        logged = c["stats"].get("t05") is not None
        for r in c["runs"]:
            r.update(run_leads(r, ef.run_flags(r, o, logged)["undefined"]))
        stats = {k: ef.lead_stats(c, k, o) for k in ef.LEADS if k in c["stats"]}   # stored where none undefined
        if "lead_rho_of_medians" in c["stats"]:
            stats["lead_rho_of_medians"] = ef.lead_of_medians(c, o)
        c["stats"].update(stats)


def _walk(x) -> None:
    if isinstance(x, dict):
        if _is_summary(x):
            rederive_summary(x)
        elif all(k in x for k in RUN_ROW_KEYS):
            x["lead"] = stored_lead(x)
        for v in x.values():
            _walk(v)
    elif isinstance(x, list):
        for v in x:
            _walk(v)


def differences(old, new, at: str = "") -> list:
    """[change] from ``old`` to ``new``, one per differing derived key (its whole value); a difference
    outside a derived key is a change with ``"derived": False``."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in list(old) + [k for k in new if k not in old]:
            here = f"{at}.{k}" if at else str(k)
            if k not in old or k not in new:
                out.append({"at": here, "old": old.get(k), "new": new.get(k), "derived": False})
            elif old[k] != new[k]:
                if k in DERIVED_KEYS:
                    out.append({"at": here, "old": old[k], "new": new[k], "derived": True})
                else:
                    out += differences(old[k], new[k], here)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [c for i, (a, b) in enumerate(zip(old, new)) for c in differences(a, b, f"{at}[{i}]")]
    return [] if old == new else [{"at": at, "old": old, "new": new, "derived": False}]


def rederive_doc(doc: dict, section=None) -> tuple[dict, list]:
    """(a copy of ``doc`` with its derived keys recomputed, [change]); pure. ``section``: the section object
    whose ``rederive`` recomputes its own derived keys afterwards (None: none)."""
    new = copy.deepcopy(doc)
    _walk(new)
    if section is not None:
        new = section.rederive(new)
    new = json.loads(to_json(new))                              # NaN -> null, as stored
    changes = differences(doc, new)
    moved = [c["at"] for c in changes if not c.pop("derived")]
    if moved:                                                   # guard: only the derived keys move
        raise AssertionError(f"recomputing the derived keys changed a measured key: {', '.join(moved[:5])}")
    return new, changes
