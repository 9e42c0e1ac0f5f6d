"""A claim of a source beside our measurement, and the named rules that turn the two into a verdict.

References: docs/claims.md (the table of every rule and its thresholds; a test keeps the table and
:data:`RULES` equal). Every section's report has one claims table with the columns
claim | source | ours | rule | verdict, built from :class:`Claim` records.

A verdict is never written by hand: it comes from a rule in :data:`RULES`, applied to the numbers. The
vocabulary (:data:`VERDICTS`):

    agrees          the source's own quantity, measured with the source's own definition, passes the rule
    in kind         the rule passes, but our setup or definition differs from the source's; the verdict
                    names the difference ("in kind (their model: transformer on Dyck-1)")
    differs         the rule fails (the number is outside what the rule accepts)
    disagrees       the rule fails in direction: the opposite of the claim is measured
    not measurable  the quantity does not exist in these runs (an event that never happens, a run too short)
    identity        an algebraic identity checked at floating-point rounding: not evidence for the claim
    info            shown for reading, nothing to judge

"agrees" is only possible when the claim's :class:`Source` is tied to the definition we use
(``Claim.same_definition``); otherwise the same passing rule yields "in kind (<difference>)".

Symbols
    Source.kind   paper | paper-code | findings | seed | author-code | slides | rebuttal | ours
    Rule          name, statement, thresholds (a dict of named numbers), judge(ours, ref, **thr) -> outcome
    outcome       "pass" | "fail" | "opposite" | "undefined" | "identity" | "info"
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

VERDICTS = ("agrees", "in kind", "differs", "disagrees", "not measurable", "identity", "info")

SOURCE_KINDS = {
    "paper": "the paper's text or table",
    "paper-code": "the paper's code (its repository)",
    "findings": "the paper's repository, findings.md (not the paper's text)",
    "seed": "a seed document, quoted",
    "author-code": "the seed authors' public code (repository, file, commit)",
    "slides": "Tian's slides",
    "rebuttal": "simulated rebuttal on the review page (not the authors)",
    "ours": "a contrast or check of this project (no outside claim)",
}


@dataclass(frozen=True)
class Source:
    kind: str                 # a key of SOURCE_KINDS
    ref: str                  # e.g. "Table T2", "skydancerosel/dyck_scan spectral/edge_ablation.py @ e37417d"
    quote: str = ""           # the source's words, where there are words to quote

    def __post_init__(self):
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"unknown source kind {self.kind!r}")

    def text(self) -> str:
        head = {"rebuttal": "simulated rebuttal on the review page (not the authors)",
                "findings": "paper repository findings.md"}.get(self.kind, self.kind)
        s = f"{head}: {self.ref}" if self.ref else head
        return s + (f' — "{self.quote}"' if self.quote else "")


@dataclass(frozen=True)
class Rule:
    name: str
    statement: str            # what passes, in words, with the thresholds named
    thresholds: dict = field(default_factory=dict)

    def judge(self, ours, ref=None) -> str:
        return JUDGES[self.name](ours, ref, **self.thresholds)


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _within_range(ours, ref, **_):
    """ref = (lo, hi): pass when lo <= ours <= hi."""
    if not _finite(ours) or ref is None or None in ref:
        return "undefined"
    return "pass" if ref[0] <= ours <= ref[1] else "fail"


def _same_count(ours, ref, **_):
    """ours, ref = (k, n): pass when k/n are equal."""
    (k, n), (kp, np_) = ours, ref
    if not n or not np_:
        return "undefined"
    return "pass" if abs(k / n - kp / np_) < 1e-12 else "fail"


def _magnitude(ours, ref, *, max_log10):
    if not _finite(ours) or not _finite(ref) or ours <= 0 or ref <= 0:
        return "undefined"
    return "pass" if abs(math.log10(ours / ref)) <= max_log10 else "fail"


def _seedrange(ours, ref, **_):
    """ours = (min, max) over our seeds, ref = the published single run, or (lo, hi) the interval [lo, hi] a
    value the source rounds stands for: pass when the value, or that interval, meets [min, max]. Closed at
    both ends: the source does not say how it rounds a tie (Python prints the float 0.835 as 0.83, NumPy's
    round gives 0.84), so a value on an end may have printed as either."""
    if isinstance(ref, (tuple, list)):
        lo, hi = ref
        if ours is None or None in ours or not (_finite(lo) and _finite(hi)):
            return "undefined"
        return "pass" if lo <= ours[1] and ours[0] <= hi else "fail"
    if ours is None or None in ours or not _finite(ref):
        return "undefined"
    return "pass" if ours[0] <= ref <= ours[1] else "fail"


def _fraction_at_least(ours, ref, *, min_fraction):
    """ours = (k, k_contrary, n): k runs show the claimed event, k_contrary runs its contrary (as the claim's
    row defines it: the other side of a two-sided outcome, e.g. grad_frac above instead of below 1/2; for a
    threshold claim the outcome that contradicts it, not a run that merely falls short). Pass when
    k/n >= min_fraction; opposite when k_contrary/n >= min_fraction, the same evidence the other way; fail
    otherwise; undefined when n = 0."""
    k, k_contrary, n = ours
    if not n:
        return "undefined"
    if k / n >= min_fraction:
        return "pass"
    return "opposite" if k_contrary / n >= min_fraction else "fail"


def _fraction_no_opposite(ours, ref, *, min_fraction):
    """ours = (k, n): pass when k/n >= min_fraction; otherwise fail, never opposite (a source that counts no
    outcome as a contradiction of its claim: fewer runs showing it is no evidence of the contrary)."""
    k, n = ours
    return _fraction_at_least((k, 0, n), ref, min_fraction=min_fraction)


def _ratio_above(ours, ref, *, factor):
    """pass when ours >= factor * ref; opposite when ours <= ref / factor, the same margin the other way
    (ref > 0, factor > 1); fail in between, a tie included."""
    if not _finite(ours) or not _finite(ref) or ref <= 0:
        return "undefined"
    if ours >= factor * ref:
        return "pass"
    return "opposite" if ours * factor <= ref else "fail"


def _above(ours, ref, **_):
    """pass when ours > ref; the opposite when ours <= ref."""
    if not _finite(ours) or not _finite(ref):
        return "undefined"
    return "pass" if ours > ref else "opposite"


def _all_within(ours, ref, **_):
    """ours = a list of values, ref = (lo, hi): pass when every finite value lies in [lo, hi]."""
    vals = [v for v in (ours or []) if _finite(v)]
    if not vals or ref is None or None in ref:
        return "undefined"
    return "pass" if all(ref[0] <= v <= ref[1] for v in vals) else "fail"


def _ratio_below(ours, ref, *, factor):
    """pass when ours <= factor * ref; opposite when ours >= ref / factor, the same margin the other way
    (ref > 0, factor < 1); fail in between, a tie included."""
    if not _finite(ours) or not _finite(ref) or ref <= 0:
        return "undefined"
    if ours <= factor * ref:
        return "pass"
    return "opposite" if ours * factor >= ref else "fail"


def binomial_tail(k: int, n: int, q: float) -> float:
    """P[X >= k] for X ~ Binomial(n, q), summed in log space (exact to rounding for any n)."""
    if k <= 0:
        return 1.0
    if q <= 0:
        return 0.0
    if q >= 1:
        return 1.0
    lq, lr = math.log(q), math.log1p(-q)
    terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lq + (n - i) * lr
             for i in range(k, n + 1)]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def _binomial_above(ours, ref, *, alpha):
    """ours = (k, n) units that did the thing, ref = q its probability under the null: pass when the
    upper tail P[X >= k | Binomial(n, q)] <= alpha; opposite when the lower tail P[X <= k] <= alpha (as
    significant the other way: fewer than the null); fail otherwise, k near n q included; undefined when
    n = 0. P[X <= k] = P[n - X >= n - k] with n - X ~ Binomial(n, 1 - q)."""
    k, n = ours
    if not n or ref is None or not _finite(ref) or not 0 <= ref <= 1:
        return "undefined"
    k, n, q = int(k), int(n), float(ref)
    if binomial_tail(k, n, q) <= alpha:
        return "pass"
    return "opposite" if binomial_tail(n - k, n, 1.0 - q) <= alpha else "fail"


def _brackets(ours, ref, **_):
    """ours = (lo, hi), the measured transition interval (lo None: below the grid, 0; hi None: above it, inf),
    ref = the source's value: pass when lo < ref <= hi; otherwise fail (the grid locates the transition
    elsewhere). undefined when there is no interval or no finite ref."""
    if ours is None or not _finite(ref):
        return "undefined"
    lo, hi = ours
    lo = 0.0 if lo is None else lo
    hi = math.inf if hi is None else hi
    return "pass" if lo < ref <= hi else "fail"


def _most_pairs(ours, ref, *, min_fraction):
    """ours = (k_for, k_against, n) paired comparisons: pass when k_for/n >= min_fraction; opposite when
    k_against/n >= min_fraction, the same evidence the other way; fail otherwise. A tie counts for neither
    side (it is in n only), so pairs that tie do not make the opposite. undefined when n = 0. (The same
    judgement as most-runs, with the pairs for the runs and "the reference beats ours" for the contrary.)"""
    return _fraction_at_least(ours, ref, min_fraction=min_fraction)


def _info(ours, ref, **_):
    return "info"


def _identity(ours, ref, *, rel_tol):
    """ours = the relative residual of an algebraic identity: it holds at rounding when <= rel_tol."""
    if not _finite(ours):
        return "undefined"
    return "identity" if ours <= rel_tol else "fail"


JUDGES = {"within-range": _within_range, "same-count": _same_count, "magnitude": _magnitude,
          "seed-range": _seedrange, "most-runs": _fraction_at_least, "ratio-above": _ratio_above,
          "info": _info, "identity": _identity, "above": _above, "all-within": _all_within,
          "ratio-below": _ratio_below, "binomial-above": _binomial_above,
          "most-runs-no-opposite": _fraction_no_opposite, "brackets": _brackets, "most-pairs": _most_pairs}

# Every rule a verdict may use. Sections may add rules only here (docs/claims.md lists the same table).
RULES = {r.name: r for r in (
    Rule("within-range", "ours lies in the published range [lo, hi]"),
    Rule("same-count", "the same fired fraction k/n as published"),
    Rule("magnitude", "the same order of magnitude: |log10(ours/published)| <= max_log10", {"max_log10": 0.5}),
    Rule("seed-range", "the published single run lies inside our [min, max] over seeds (a value the source rounds: "
         "its rounding interval [v - h, v + h], h half a unit of its last digit, meets [min, max]; closed, as the "
         "source does not say how it rounds a tie)"),
    Rule("most-runs", "the claimed event holds in at least min_fraction of the runs (its contrary, as the row "
         "defines it, in at least min_fraction: the opposite)",
         {"min_fraction": 0.8}),
    Rule("ratio-above", "ours >= factor x the reference (ours <= the reference / factor: the opposite)", {"factor": 2.0}),
    Rule("identity", "an algebraic identity holds to rel_tol: a check of the code, not evidence for the claim",
         {"rel_tol": 1e-4}),
    Rule("above", "ours > the reference (ours <= the reference: the opposite)"),
    Rule("all-within", "every one of our values lies in the source's range [lo, hi]"),
    Rule("ratio-below", "ours <= factor x the reference (ours >= the reference / factor: the opposite)", {"factor": 0.95}),
    Rule("info", "shown for reading; nothing is judged"),
    Rule("binomial-above", "k of n units chose the claimed way more often than a null of probability q: "
         "P[Binomial(n, q) >= k] <= alpha (P[Binomial(n, q) <= k] <= alpha: the opposite)", {"alpha": 0.05}),
    Rule("brackets", "the source's value lies in our measured transition interval (lo, hi]: lo the largest tested "
         "value below the transition, hi the smallest at it (0 / inf when the transition is below / above the grid)"),
    Rule("most-runs-no-opposite", "the claimed event holds in at least min_fraction of the runs; fewer fails, "
         "never the opposite (the source names no outcome that contradicts the claim)", {"min_fraction": 0.8}),
    Rule("most-pairs", "ours beats the reference in at least min_fraction of the paired comparisons (the reference "
         "beats ours in at least min_fraction: the opposite; a tie counts for neither)", {"min_fraction": 0.8}),
)}


@dataclass(frozen=True)
class Claim:
    claim: str                       # the source's statement, in one line
    source: Source
    ours: str                        # our measurement, as shown (numbers with their cells)
    rule: str                        # a key of RULES
    outcome: str                     # the rule's outcome on the numbers (Rule.judge)
    same_definition: bool = True     # our quantity is the source's own definition, on the source's setup
    difference: str = ""             # how our setup or definition differs (required when not same_definition)
    note: str = ""

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}")
        if not self.same_definition and not self.difference:
            raise ValueError("a claim measured with another definition or setup must name the difference")
        if self.source.kind == "ours" and self.same_definition and self.rule not in ("info", "identity"):
            raise ValueError("a check of this project has no outside definition to share: it reads at most "
                             "'in kind', so give same_definition=False and the difference")

    @property
    def verdict(self) -> str:
        return verdict_of(self.outcome, self.same_definition, self.difference)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["source"] = asdict(self.source)
        d["source_text"] = self.source.text()
        d["verdict"] = self.verdict
        return d


def verdict_of(outcome: str, same_definition: bool, difference: str = "") -> str:
    """The verdict of a rule's outcome (module docstring)."""
    if outcome == "pass":
        return "agrees" if same_definition else f"in kind ({difference})"
    return {"fail": "differs", "opposite": "disagrees", "undefined": "not measurable",
            "identity": "identity", "info": "info"}[outcome]


def judged(claim: str, source: Source, ours_text: str, rule: str, ours, ref=None, **kw) -> Claim:
    """A Claim whose outcome is the named rule applied to (ours, ref)."""
    return Claim(claim, source, ours_text, rule, RULES[rule].judge(ours, ref), **kw)


def claims_markdown(claims) -> list[str]:
    """The one claims table of a report: claim | source | ours | rule | verdict (claims as dicts or Claims)."""
    def cell(x) -> str:
        return str(x).replace("|", "/").replace("\n", " ")
    out = ["| claim | source | ours | rule | verdict |", "|---|---|---|---|---|"]
    for c in claims:
        d = c.to_dict() if isinstance(c, Claim) else c
        out.append(f"| {cell(d['claim'])} | {cell(d['source_text'])} | {cell(d['ours'])} | {cell(d['rule'])} | "
                   f"{cell(d['verdict'])} |")
    return out
