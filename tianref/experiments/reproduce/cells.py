"""Small shared helpers of the section modules: numbers, across-seed statistics, table cells, the report
head and a run's rows for a figure. They hold no section's logic.

References: :func:`tianref.analysis.detectors.across_runs` (the across-seed statistics: median, IQR, range,
n_fired/n), :func:`tianref.analysis.summarize.fmt` (a number in a table).

Symbols
    stats(values)     {'n', 'n_fired', 'median', 'q25', 'q75', 'min', 'max'}; None and NaN = the event never
                      happened (counted in n, not in n_fired)
    cell(stats)       'median [min, max]' (+ ' (fired/n)' when some runs lack the event), '—' when none has it
    phase_median      the NaN-median of a column over the rows lo..hi (inclusive); NaN for an empty phase
"""
from __future__ import annotations

import math

import numpy as np

from tianref.analysis import detectors as det
from tianref.analysis.summarize import fmt
from tianref.config import TrainConfig

_DEFAULT = TrainConfig()        # the values the config loader gives a key a stored config lacks

__all__ = ["fnum", "med", "stats", "cell", "med_of", "lt", "first", "nanmed", "phase_median", "scaled",
           "condition_label", "rows_of", "report_head", "claims_block", "fmt", "quantile_series"]


def fnum(x):
    """A finite float, else None (JSON-ready)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def med(xs):
    """The median of the values that are not None (None if there are none)."""
    xs = [x for x in xs if x is not None]
    return float(np.median(xs)) if xs else None


def stats(vals) -> dict:
    return det.across_runs([math.nan if v is None else v for v in vals])


def cell(s) -> str:
    if s is None or s["n_fired"] == 0:
        return "—"
    if s["n"] == 1:
        return fmt(s["median"])
    c = f"{fmt(s['median'])} [{fmt(s['min'])}, {fmt(s['max'])}]"
    return c if s["n_fired"] == s["n"] else f"{c} ({s['n_fired']}/{s['n']})"


def med_of(s):
    """The median of a stats dict, None when no run has the value."""
    return None if s is None or s["n_fired"] == 0 else s["median"]


def lt(a, b) -> bool:
    return a is not None and b is not None and math.isfinite(a) and math.isfinite(b) and a < b


def first(col, thr) -> float:
    """First row index with col >= thr, else NaN."""
    hit = np.flatnonzero(np.asarray(col, dtype=float) >= thr)
    return float(hit[0]) if hit.size else math.nan


def nanmed(x) -> float:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else math.nan


def phase_median(col, lo, hi) -> float:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        return math.nan
    return nanmed(np.asarray(col, dtype=float)[int(lo):int(hi) + 1])


def scaled(epoch: int, scale) -> int:
    """An epoch position at a scale (the rounding protocols.py uses for checkpoints)."""
    factor = scale.get("epoch_factor", 1.0) if isinstance(scale, dict) else scale.epoch_factor
    return int(round(epoch * factor))


def condition_label(config: dict) -> str:
    """'eta=0.0002', or 'relu ce eta=0' when the activation or the loss is not the paper's x² and MSE. A
    stored config without "act" or "loss" has the default TrainConfig.from_dict gives it (x², tian)."""
    act, loss = config.get("act", _DEFAULT.act), config.get("loss", _DEFAULT.loss)
    name = f"eta={float(config['eta']):g}"
    if loss == "ce" or act != "sqr":
        name = f"{act} {loss} " + name
    return name


def rows_of(rec, keys) -> list:
    """[{'epoch', key: value}] of a RunRecord's finite values (a figure's input)."""
    cols = {k: rec.col(k) for k in keys}
    return [{"epoch": t, **{k: float(c[t]) for k, c in cols.items() if math.isfinite(c[t])}}
            for t in range(rec.n_epochs)]


def quantile_series(records, key, group_of) -> dict:
    """{group: {'epoch', 'q25', 'median', 'q75', 'n'}} of a logged column across the group's runs."""
    groups = {}
    for r in records:
        groups.setdefault(group_of(r), []).append(r.col(key))
    out = {}
    for g, cols in groups.items():
        n = min(len(c) for c in cols)
        A = np.array([c[:n] for c in cols])                                # (runs, E+1)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            q = np.nanpercentile(A, [25, 50, 75], axis=0) if A.size else np.zeros((3, 0))
        out[g] = {"epoch": list(range(n)), "q25": [fnum(x) for x in q[0]], "median": [fnum(x) for x in q[1]],
                  "q75": [fnum(x) for x in q[2]], "n": len(cols)}
    return out


def claims_block(claims) -> list:
    """The report's one claims table (claims.claims_markdown), then the claims' notes as a numbered list."""
    from tianref.experiments.reproduce.claims import claims_markdown
    L = claims_markdown(claims)
    notes = [(i, d["note"]) for i, d in enumerate((c if isinstance(c, dict) else c.to_dict() for c in claims), 1)
             if d.get("note")]
    if notes:
        L += ["", "Notes to the claims (row: note):", ""] + [f"{i}. {n}" for i, n in notes]
    return L + [""]


def report_head(doc: dict, title: str) -> list:
    """The first lines of every section's report: title, command, runs, setup, missing runs, notes."""
    setup = doc.get("setup", {})
    L = [f"# {doc['section']}: {title} ({doc['scale']['name']} scale)", ""]
    if doc.get("command"):
        L.append(f"Command: `{doc['command']}`  ")
    L += [f"Runs: {doc['n_runs']}, seeds {doc.get('seeds')}, epochs {doc.get('epochs')}; M = {setup.get('M')}, "
          f"K = {setup.get('K')}; dtype {setup.get('dtype')}, backend {setup.get('backend')}.", ""]
    sc = doc.get("scale") or {}
    if sc.get("name", "full") != "full":
        L += [f"> **{sc['name']} scale: not the sources' setup.** A smaller model and fewer seeds than the full "
              "scale (the runs above): no claim below can agree, only agree in kind, and neither a 'differs' nor a "
              "'disagrees' says anything about the source; a run at this scale checks the pipeline. Where the section sets its own "
              "options per scale (docs/reproduce.md), the runs' config.json records them.", ""]
    miss = doc.get("missing_runs") or []
    if miss:
        plan = doc.get("missing_plan") or f"python cli.py reproduce --section {doc['section']} --plan"
        L += [f"**Not all runs are here.** {len(miss)} of the section's {len(miss) + doc['n_runs']} runs are left "
              f"out of every number below: {', '.join(miss)}. `{plan}` lists their train commands.", ""]
    for n in doc.get("notes") or []:
        if miss and n.startswith("Not all runs are here"):           # said just above
            continue
        L += [f"*Note.* {n}", ""]
    return L
