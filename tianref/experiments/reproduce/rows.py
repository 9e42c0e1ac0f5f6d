"""The published numbers, the cells of a summary, and the claims built from them (pure: no I/O except
reading the published numbers).

References: ``docs/paper-protocol.md`` §1-2 (the published numbers, as data in
``reference_results/paper/published.json``, each table with its source) and §5 (its numbered caveats,
cited by each claim's source); docs/claims.md (the rules and the verdicts).

Each published table's source kind (:data:`TABLE_KINDS`) is read off its ``source`` in published.json:
"paper" where the paper's text prints it (T1, T3, T4, T5b, T1-seed0 from the early draft, and §2), "findings"
where only the repository's findings.md has it; the independent 3-seed measurement of the paper code's
protocol (``independent_measurement``) is "paper-code". A claim is measured with the source's own
definition unless our scale is not the paper's (:func:`scale_difference`), the quantity comes from the
update Gram (ours float64, the paper's float32: :data:`GRAM_DIFFERENCE`), or the section names another
difference.

Symbols
    pub           the published numbers (``load_published``)
    c             a condition of a summary view: {label, config, n, runs, stats, late_separation}
    s             an across-run statistic {n, n_fired, median, q25, q75, min, max}
"""
from __future__ import annotations

import json
from pathlib import Path

from tianref.analysis import event_flags as ef
from tianref.analysis.summarize import fmt
from tianref.errors import InputError
from tianref.experiments.reproduce.claims import Source, judged
from tianref.resources import PAPER_DIR, checkout_root, paper_file

REPO = checkout_root()                  # the source checkout; None in an installed copy (tianref.resources)
PUBLISHED_PATH = None if PAPER_DIR is None else PAPER_DIR / "published.json"   # None: an installed copy

TABLE_KINDS = {"T1": "paper", "T1-IQR": "findings", "T1-seed0": "paper", "T-ReLU": "findings",
               "T2": "findings", "T3": "paper", "T3b": "findings", "T4": "paper", "T5": "findings",
               "T5b": "paper", "T6": "findings", "T7": "findings", "T8": "findings", "§2": "paper"}
INDEPENDENT = Source("paper-code", "an independent 3-seed run of the paper's code (published.json "
                     "independent_measurement; not published)")
GRAM_DIFFERENCE = "float64 Gram, the paper's float32 (§5.12)"


def load_published(path=PUBLISHED_PATH) -> dict:
    """The published numbers; InputError (exit 2) in an installed copy (no reference_results/) or when missing."""
    path = Path(path) if path is not None else paper_file("published.json")
    if not path.is_file():
        raise InputError(f"{path}: the published numbers are missing")
    return json.loads(path.read_text(encoding="utf-8"))


def paper_source(ref: str, caveats=(), quote: str = "", kind: str | None = None) -> Source:
    """A published table or paragraph ('T3', 'T4 rank check', '§2 ...'), kind from TABLE_KINDS unless
    given, with the §5 caveats that bear on it. A ref that names several ('T-ReLU, §2') is the paper's when
    one of them is printed in the paper (docs/claims.md: a number printed in the paper and also in
    findings.md counts as the paper's)."""
    if kind is None:
        names = [part.split()[0] for part in ref.split(", ") if part.split()]
        kinds = [TABLE_KINDS[n] for n in names if n in TABLE_KINDS]
        kind = "paper" if "paper" in kinds else TABLE_KINDS[names[0]]
    return Source(kind, ref + "".join(f" §5.{c}" for c in caveats), quote)


def scale_difference(doc: dict) -> str:
    """'' at the full scale; otherwise why the setup is not the paper's."""
    sc = doc.get("scale", {})
    if sc.get("name", "full") == "full":
        return ""
    return f"{sc['name']} scale, not the paper's setup"


def find_condition(summary: dict, eta: float, act: str | None = None):
    for c in summary["conditions"]:
        cfg = c["config"]
        if float(cfg.get("eta", -1)) == eta and (act is None or cfg.get("act", "sqr") == act):
            return c
    return None


# --- cells ------------------------------------------------------------------------------------

def _cell(s) -> str:
    if s is None:
        return "n/a"
    if not s["n_fired"]:
        return f"never 0/{s['n']}"
    return f"{fmt(s['median'])} [{fmt(s['q25'])}, {fmt(s['q75'])}] {s['n_fired']}/{s['n']}"


def _stat(c, key, options=None):
    """A condition's across-run statistic; a lead or lag over the runs where it is defined (an operand that
    fired from the start leaves it undefined: event_flags), also for a summary stored before that rule."""
    if c is None:
        return None
    if key in ef.LEADS:
        return ef.lead_stats(c, key, options or {})
    return c["stats"].get(key)


def without_grok_text(c, key, options=None) -> str:
    """'; 2 fired, never t0.5' when the detector ``key`` fired in runs that never reached test accuracy 0.5
    ('' otherwise or for a key that is not a detector)."""
    if c is None or key not in ef.DETECTORS:
        return ""
    k = ef.condition_flags(c, options or {})["fire_without_grok"][key]
    return f"; {k} fired, never t0.5" if k else ""


def _from_start_text(c, key, options=None) -> str:
    """'; at row 0 in 2/2 (rho_tian >= its threshold from row 0)' for an event that fired at the first row
    its detector can fire in some runs ('' otherwise)."""
    if c is None or key not in ef.EVENTS:
        return ""
    k = ef.condition_flags(c, options or {})["n_from_start"][key]
    return f"; at its first row in {k}/{c['n']} ({ef.WHY[key]})" if k else ""


def _undefined_text(c, key, options=None) -> str:
    """'undefined in 2/2 (rho_tian >= its threshold from row 0)' for a lead with undefined runs ('' without)."""
    if c is None or key not in ef.LEADS:
        return ""
    k = ef.condition_flags(c, options or {})["n_undefined"][key]
    if not k:
        return ""
    logged = c["stats"].get("t05") is not None
    why = sorted({ef.run_flags(r, options or {}, logged)["undefined"].get(key) for r in c["runs"]} - {None})
    return f"undefined in {k}/{c['n']} ({'; '.join(why)})"


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


def shown_note(ours, paper, table: str, where: str = "") -> str:
    """The note of an info row that sets a number beside a published one that has no range to judge it by:
    how far ours is ('ours 225 = ×0.41 of the paper's 553') and where the report accounts for it ('' when
    either number is missing or not positive)."""
    if ours is None or paper is None or ours <= 0 or paper <= 0:
        return ""
    return (f"ours {fmt(ours)} = ×{ours / paper:.2g} of the paper's {fmt(paper)}; {table} prints no range, so the "
            "row is shown, not judged" + (f"; {where}" if where else ""))


def range_text(paper, rng) -> str:
    """'174 [173, 174]', '[99, 108]' (a range alone) or '174'."""
    if rng is None:
        return fmt(paper)
    r = f"[{fmt(rng[0])}, {fmt(rng[1])}]"
    return r if paper is None else f"{fmt(paper)} {r}"


# --- claims -----------------------------------------------------------------------------------

class ClaimList(list):
    """The claims of one summary document, each judged by its named rule; the scale's difference from
    the paper's setup (and with ``gram=True`` the Gram precision) is applied to every claim."""

    def __init__(self, doc: dict):
        super().__init__()
        self.base = scale_difference(doc)
        self.doc = doc

    def options_of(self, c) -> dict:
        """The detector options of the view that holds condition ``c`` ({} when none does)."""
        for v in self.doc.get("views", []):
            if any(x is c for x in v["summary"]["conditions"]):
                return v["summary"]["options"]
        return {}

    def add(self, quantity, paper_text, ours_text, rule, ours, ref=None, *, source: Source, condition="",
            gram=False, diff="", note=""):
        diffs = [d for d in (self.base, GRAM_DIFFERENCE if gram else "", diff) if d]
        claim = f"{quantity}, {condition}: {paper_text}" if condition else f"{quantity}: {paper_text}"
        self.append(judged(claim, source, ours_text, rule, ours, ref, same_definition=not diffs,
                           difference="; ".join(diffs), note=note))

    def value(self, quantity, c, key, paper, *, rng=None, paper_text=None, **kw):
        """A condition's median against a published value: within-range where a range is published,
        otherwise shown for reading (info)."""
        o = self.options_of(c)
        s = _stat(c, key, o)
        undefined = _undefined_text(c, key, o)
        if undefined and s is not None and not s["n_fired"]:
            ours = undefined                                    # no run has it defined: no number
        else:
            ours = _cell(s) + (f"; {undefined}" if undefined else "")
        ours += _from_start_text(c, key, o) + without_grok_text(c, key, o)
        self.add(quantity, paper_text if paper_text is not None else range_text(paper, rng), ours,
                 "info" if rng is None else "within-range", None if s is None else s["median"],
                 None if rng is None else tuple(rng), condition=c["label"] if c else "missing", **kw)

    def count(self, quantity, c, key, paper, *, paper_text=None, **kw):
        """A condition's fired/n against the published fired/n (same-count)."""
        o = self.options_of(c)
        s = _stat(c, key, o)
        ptxt = paper_text or f"{paper[0]}/{paper[1]}"
        if s is None:                                   # a condition not run: nothing to count
            self.add(quantity, ptxt, "n/a", "same-count", (0, 0), tuple(paper), condition="missing", **kw)
        else:
            self.add(quantity, ptxt, f"{s['n_fired']}/{s['n']}" + without_grok_text(c, key, o)
                     + _from_start_text(c, key, o),
                     "same-count", (s["n_fired"], s["n"]),
                     tuple(paper), condition=c["label"], **kw)
