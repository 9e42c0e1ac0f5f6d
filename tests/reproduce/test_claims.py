"""Claims: the rules table of docs/claims.md is RULES, each published table's source kind is the one its
published.json source names, and a summary cell becomes the claim its rule decides (known answers)."""
import re

import pytest

from tianref.experiments.reproduce.claims import RULES, SOURCE_KINDS
from tianref.experiments.reproduce.reporting import claims_block, verdict_counts
from tianref.experiments.reproduce.rows import GRAM_DIFFERENCE, TABLE_KINDS, ClaimList, paper_source

from .conftest import FULL_SCALE, REPO, condition, stat

FULL = {"scale": FULL_SCALE}
CI = {"scale": dict(FULL_SCALE, name="ci", M=23, K=512)}
SRC = paper_source("T3")


def _doc_rules():
    """{name: (statement, thresholds)} from the table under '## The rules' in docs/claims.md."""
    text = (REPO / "docs" / "claims.md").read_text(encoding="utf-8").split("## The rules", 1)[1]
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\| `([^`]+)` \| (.+) \| (.+) \|$", line)
        if m:
            name, statement, thr = m.groups()
            thresholds = {} if thr.strip() == "—" else {k: float(v) for k, v in
                                                         (p.split(" = ") for p in thr.split(", "))}
            out[name] = (statement.replace("\\|", "|"), thresholds)
    return out


def test_the_rules_table_of_docs_claims_is_RULES():
    doc = _doc_rules()
    assert list(doc) == list(RULES)
    for name, rule in RULES.items():
        assert doc[name] == (rule.statement, {k: float(v) for k, v in rule.thresholds.items()}), name


def test_table_kinds_follow_the_published_sources(pub):
    for table, kind in TABLE_KINDS.items():
        if table == "§2":
            continue
        src = pub["tables"][table]["source"]
        in_paper = src.startswith(("paper", "old tex")) or "+ paper" in src
        assert kind == ("paper" if in_paper else "findings"), (table, src)
        assert kind in SOURCE_KINDS
    assert set(pub["tables"]) <= set(TABLE_KINDS)


def test_a_source_naming_a_table_and_the_papers_text_is_the_papers():
    # docs/claims.md: a number printed in the paper and also in findings.md counts as the paper's; "T-ReLU, §2"
    # (the ReLU 0/15 and 1.4x, stated in the paper's abstract) was cited as findings.md from its first name
    assert paper_source("T-ReLU, §2").kind == "paper" and paper_source("T2, §2").kind == "paper"
    assert paper_source("T-ReLU").kind == "findings" and paper_source("T3b").kind == "findings"
    assert paper_source("T5 (η = 2e-4 lag; §2 '~70')").kind == "findings"    # '~70' is a script's, in brackets
    assert paper_source("T4 rank check (findings)", kind="findings").kind == "findings"


def _one(doc, build):
    L = ClaimList(doc)
    build(L)
    (c,) = L
    return c.to_dict()


def test_a_value_with_a_published_range_is_judged_within_range():
    g = condition("eta=0.0002", 2e-4, {"t05": stat(101, 99, 103), "fire": stat(176, 175, 177),
                                        "lag": stat(None, n_fired=0)})
    c = _one(FULL, lambda L: L.value("t(test ≥ 0.5)", g, "t05", 102, rng=[99, 102], source=SRC))
    assert (c["rule"], c["outcome"], c["verdict"]) == ("within-range", "pass", "agrees")
    assert c["claim"] == "t(test ≥ 0.5), eta=0.0002: 102 [99, 102]" and c["ours"] == "101 [99, 103] 15/15"
    c = _one(FULL, lambda L: L.value("fire", g, "fire", 174, rng=[173, 174], source=SRC))
    assert (c["outcome"], c["verdict"]) == ("fail", "differs")
    c = _one(FULL, lambda L: L.value("lag", g, "lag", 35, rng=[34, 36], source=SRC))      # never fired
    assert (c["outcome"], c["verdict"], c["ours"]) == ("undefined", "not measurable", "never 0/15")
    c = _one(FULL, lambda L: L.value("t0.99", g, "t05", 150, source=SRC))                   # no range: shown
    assert (c["rule"], c["verdict"]) == ("info", "info")
    c = _one(FULL, lambda L: L.value("t05", None, "t05", 102, rng=[99, 102], source=SRC))   # no condition
    assert "missing" in c["claim"] and c["verdict"] == "not measurable"


def test_counts_and_differences_of_definition():
    g = condition("eta=0.0002", 2e-4, {"fire": stat(174, n_fired=2, n=2)})
    c = _one(FULL, lambda L: L.count("fire, fired/n", g, "fire", (15, 15), source=SRC))
    assert (c["rule"], c["ours"], c["verdict"]) == ("same-count", "2/2", "agrees")      # the same fraction
    c = _one(FULL, lambda L: L.count("fire, fired/n", g, "fire", (14, 15), source=SRC))
    assert c["verdict"] == "differs"
    # a condition not run (e.g. --no-train over a partial tree) has nothing to count: not measurable, as a
    # missing value is (docs/claims.md), not shown as if there were nothing to judge
    c = _one(FULL, lambda L: L.count("fire, fired/n", None, "fire", (0, 15), source=SRC))
    assert "missing" in c["claim"] and (c["rule"], c["ours"], c["verdict"]) == ("same-count", "n/a", "not measurable")
    # the Gram precision and a reduced scale are differences of definition: at most "in kind"
    c = _one(FULL, lambda L: L.count("fire, fired/n", g, "fire", (15, 15), source=SRC, gram=True))
    assert c["verdict"] == f"in kind ({GRAM_DIFFERENCE})" and not c["same_definition"]
    c = _one(CI, lambda L: L.count("fire, fired/n", g, "fire", (15, 15), source=SRC))
    assert c["verdict"] == "in kind (ci scale, not the paper's setup)"
    c = _one(CI, lambda L: L.count("fire, fired/n", g, "fire", (14, 15), source=SRC))
    assert c["verdict"] == "differs"                                                   # a failing rule stays


@pytest.mark.parametrize("ours, verdict", [(3e-5, "agrees"), (4e-5, "differs"), (None, "not measurable")])
def test_magnitude_is_half_a_decade(ours, verdict):
    c = _one(FULL, lambda L: L.add("σ3 at ep 200", "~1e-05", "x", "magnitude", ours, 1e-5, source=SRC))
    assert c["verdict"] == verdict                                     # log10 3 = 0.48 <= 0.5 < log10 4


def test_seed_range_and_the_claims_block():
    L = ClaimList(FULL)
    L.add("a", "0.91", "x", "seed-range", (0.88, 0.92), 0.91, source=SRC)
    L.add("b", "0.95", "x", "seed-range", (0.88, 0.92), 0.95, source=SRC)
    L.add("c", "0.95", "x", "seed-range", (0.88, 0.92), 0.95, source=SRC, diff="another model")
    assert [c.verdict for c in L] == ["agrees", "differs", "differs"]
    assert verdict_counts(L) == {"agrees": 1, "differs": 2}
    block = claims_block(L)
    assert "3 claims: 1 agrees, 2 differs" in block[2] and "| claim | source | ours | rule | verdict |" in block


def test_the_claims_block_of_a_paper_section_shows_the_notes():
    # a note says what the table cannot (e.g. the extended run's "one run, of another seed"); the paper
    # sections' reports used to drop them, so summary.json had them and report.md did not
    L = ClaimList(FULL)
    L.add("a", "0.91", "x", "seed-range", (0.88, 0.92), 0.91, source=SRC)
    L.add("b", "0.95", "x", "info", None, source=SRC, note="one run, of another seed")
    block = claims_block(L)
    assert "Notes to the claims (row: note):" in block and "2. one run, of another seed" in block
    assert "Notes to the claims (row: note):" not in claims_block(L[:1])         # no notes: no list
    assert claims_block([c.to_dict() for c in L]) == block                       # stored dicts render alike


# Each rule at its thresholds, from the statement in docs/claims.md (restated here, not read from the code):
# every boundary value is exact in binary, so the comparisons below are exact.
@pytest.mark.parametrize("rule, ours, ref, outcome", [
    ("within-range", 2.0, (2.0, 3.0), "pass"),             # lo <= ours <= hi: both ends inside
    ("within-range", 3.0, (2.0, 3.0), "pass"),
    ("ratio-above", 4.0, 2.0, "pass"),                     # ours >= 2 x ref
    ("ratio-above", 3.0, 2.0, "fail"),
    ("ratio-above", 2.0, 2.0, "fail"),                     # a tie: no evidence either way
    ("ratio-above", 1.0, 2.0, "opposite"),                 # ours <= ref / 2, equality included
    ("ratio-below", 1.5, 2.0, "pass"),                     # ours <= 0.95 x ref
    ("ratio-below", 1.96, 2.0, "fail"),
    ("ratio-below", 2.0, 2.0, "fail"),                     # a tie: no evidence either way
    ("ratio-below", 2.1, 2.0, "fail"),                     # above, but by less than the margin 1/0.95
    ("ratio-below", 2.5, 2.0, "opposite"),                 # ours >= ref / 0.95
    ("above", 2.0, 2.0, "opposite"),                       # ours > ref; equality is the opposite
    ("above", 2.5, 2.0, "pass"),
    ("magnitude", 1e-5, -1.0, "undefined"),                # no order of magnitude of a non-positive value
    ("magnitude", -1e-5, 1e-5, "undefined"),
    ("all-within", [2.0, 2.5, 4.0], (2.0, 3.0), "fail"),   # every value, not any
    ("all-within", [2.0, float("nan"), 3.0], (2.0, 3.0), "pass"),
    ("identity", 1e-4, None, "identity"),                  # residual <= rel_tol
    ("binomial-above", (1, 2), 0.5, "fail"),               # k = n q: no evidence either way
    ("binomial-above", (0, 5), 0.5, "opposite"),           # P[X <= 0] = 1/32 <= 0.05
    ("binomial-above", (1, 5), 0.5, "fail"),               # P[X <= 1] = 6/32 > 0.05: below q, not significant
    ("binomial-above", (5, 5), 0.5, "pass"),               # P[X >= 5] = 1/32 <= 0.05
    ("binomial-above", (4, 5), 0.5, "fail"),               # P[X >= 4] = 6/32 > 0.05
    ("most-runs", (8, 0, 10), None, "pass"),               # k/n >= 0.8
    ("most-runs", (8, 2, 10), None, "pass"),
    ("most-runs", (7, 3, 10), None, "fail"),
    ("most-runs", (0, 10, 10), None, "opposite"),          # the contrary in every run
    ("most-runs", (2, 8, 10), None, "opposite"),           # the contrary in k_contrary/n >= 0.8
    ("most-runs", (0, 7, 10), None, "fail"),               # the contrary in 0.7 < 0.8: short of the opposite
    ("most-runs", (0, 0, 10), None, "fail"),               # none shows the event, none its contrary (all fall
                                                           # short of a threshold): no evidence of the contrary
    ("most-runs", (0, 0, 0), None, "undefined"),
    ("most-runs-no-opposite", (8, 10), None, "pass"),      # k/n >= 0.8, as most-runs
    ("most-runs-no-opposite", (7, 10), None, "fail"),
    ("most-runs-no-opposite", (0, 10), None, "fail"),      # none: still only a failure, never the opposite
    ("most-runs-no-opposite", (0, 0), None, "undefined"),
    ("most-pairs", (8, 0, 10), None, "pass"),              # ours ahead in k_for/n >= 0.8 of the pairs
    ("most-pairs", (7, 3, 10), None, "fail"),
    ("most-pairs", (0, 0, 10), None, "fail"),              # every pair a tie: no evidence either way
    ("most-pairs", (0, 7, 10), None, "fail"),              # behind in 0.7 < 0.8: short of the opposite
    ("most-pairs", (0, 8, 10), None, "opposite"),          # behind in k_against/n >= 0.8
    ("most-pairs", (2, 8, 10), None, "opposite"),
    ("most-pairs", (0, 0, 0), None, "undefined"),
    ("same-count", (29, 30), (30, 30), "fail"),            # the same fraction, not a fraction within 0.05
    ("same-count", (2, 4), (1, 2), "pass"),                # 2/4 = 1/2: the fraction, not the count
    ("seed-range", (0.5, 0.75), 0.5, "pass"),              # min <= published <= max: both ends inside
    ("seed-range", (0.5, 0.75), 0.75, "pass"),
    ("seed-range", (None, None), 0.9, "undefined"),        # no seed has the quantity
    ("seed-range", (0.547, 0.5882), 0.59, "fail"),         # a value printed exactly: 0.59 is above our max
    ("seed-range", (0.547, 0.5882), (0.585, 0.595), "pass"),   # printed to two decimals: [0.585, 0.595) meets it
    ("seed-range", (0.547, 0.5849), (0.585, 0.595), "fail"),
    ("seed-range", (0.596, 0.6), (0.585, 0.595), "fail"),
    ("seed-range", (0.595, 0.6), (0.585, 0.595), "pass"),      # on an end: a tie may print either way (Python
    ("seed-range", (0.5, 0.585), (0.585, 0.595), "pass"),      # prints the float 0.585 as 0.58, NumPy rounds 0.59)
    ("seed-range", (0.5951, 0.6), (0.585, 0.595), "fail"),
    ("seed-range", (0.5, 0.6), (0.585, None), "undefined"),
    ("most-runs", (1, 6, 10), None, "fail"),               # as much evidence the other way as a pass needs
    ("ratio-above", 1.0, 0.0, "undefined"),                # no ratio to a reference of 0
    ("ratio-below", 0.0, 0.0, "undefined"),
    # 0.95 x 20 rounds to exactly 19.0 (0.95 is 0.94999999999999995559..., the product is within half an ulp of
    # 19), so these two sit on the boundaries: ours <= 0.95 ref passes, ours x 0.95 >= ref is the opposite
    ("ratio-below", 19.0, 20.0, "pass"),
    ("ratio-below", 20.0, 19.0, "opposite"),
    ("binomial-above", (1, 5), 0.0, "pass"),               # P[X >= 1 | q = 0] = 0: never under the null
    ("binomial-above", (1, 5), 1.5, "undefined"),          # q is a probability
    ("brackets", (2.0, None), 2.7482, "pass"),             # (2, inf): no tested c groks, 2.7482 above the grid's top
    ("brackets", (3.0, None), 2.7482, "fail"),
])
def test_each_rule_at_its_boundaries(rule, ours, ref, outcome):
    assert RULES[rule].judge(ours, ref) == outcome


def test_magnitude_boundary_and_binomial_tail_by_hand():
    from tianref.experiments.reproduce.claims import JUDGES, binomial_tail
    # log10(100) = 2 exactly: |log10(ours/ref)| <= max_log10 includes the boundary
    assert JUDGES["magnitude"](100.0, 1.0, max_log10=2.0) == "pass"
    assert JUDGES["magnitude"](1.0, 100.0, max_log10=2.0) == "pass"
    # P[X >= 2], X ~ Binomial(3, 1/2) = (3 + 1)/8; summed in log space: 1e-12 relative for the exp/lgamma rounding
    assert binomial_tail(2, 3, 0.5) == pytest.approx(0.5, rel=1e-12)
    assert binomial_tail(3, 3, 0.5) == pytest.approx(0.125, rel=1e-12)
    assert binomial_tail(0, 3, 0.5) == 1.0
    # a probability: P[X >= 1] = 1 - 2^-160, whose log-space sum rounds to 1 + 3e-15 before the cap
    assert binomial_tail(1, 160, 0.5) <= 1.0 and binomial_tail(1, 160, 0.5) == pytest.approx(1.0, rel=1e-12)
    assert binomial_tail(1, 5, 0.0) == 0.0 and binomial_tail(1, 5, 1.0) == 1.0


def test_binomial_above_includes_alpha_in_both_tails():
    """P <= alpha passes (and P[X <= k] <= alpha is the opposite), equality included: alpha is set to the tail
    itself, P[X >= 1 | Binomial(1, 1/2)] = P[X <= 0] = 1/2, so the comparison is exact."""
    from tianref.experiments.reproduce.claims import JUDGES, binomial_tail
    a = binomial_tail(1, 1, 0.5)
    assert a == pytest.approx(0.5, rel=1e-12)
    assert JUDGES["binomial-above"]((1, 1), 0.5, alpha=a) == "pass"
    assert JUDGES["binomial-above"]((0, 1), 0.5, alpha=a) == "opposite"       # P[X >= 0] = 1; P[X <= 0] = 1/2


def test_claim_and_source_refuse_what_the_table_cannot_show():
    from tianref.experiments.reproduce.claims import Claim, Source
    with pytest.raises(ValueError, match="unknown source kind"):
        Source("blog", "somewhere")
    with pytest.raises(ValueError, match="unknown rule"):
        Claim("c", SRC, "1", "roughly", "pass")
    with pytest.raises(ValueError, match="must name the difference"):             # would read "in kind ()"
        Claim("c", SRC, "1", "info", "info", same_definition=False)
    ours = Source("ours", "a check")                   # no outside definition: a judged one is at most "in kind"
    with pytest.raises(ValueError, match="at most 'in kind'"):
        Claim("c", ours, "1", "most-runs", "pass")
    assert Claim("c", ours, "1", "most-runs", "pass", same_definition=False, difference="d").verdict == "in kind (d)"
    assert Claim("c", ours, "1", "info", "info").verdict == "info"
    assert Source("findings", "T5", quote="q").text() == 'paper repository findings.md: T5 — "q"'
    assert Source("rebuttal", "").text() == "simulated rebuttal on the review page (not the authors)"


def test_a_cell_with_a_bar_or_a_newline_stays_one_row_of_five_cells():
    from tianref.experiments.reproduce.claims import claims_markdown, judged
    c = judged("B<0 | cos>0\nat ep 300", SRC, "0.9 | 0.8", "info", None)
    (row,) = claims_markdown([c])[2:]
    assert row.count("|") == 6 and "\n" not in row                                # 5 cells, one line
    assert row.startswith("| B<0 / cos>0 at ep 300 | ")


def test_verdict_counts_name_in_kind_once_in_the_order_of_the_verdicts():
    # docs/claims.md: the verdicts' order; "in kind (<difference>)" counts as "in kind"
    L = ClaimList(FULL)
    L.add("a", "0.95", "x", "seed-range", (0.88, 0.92), 0.95, source=SRC)                    # differs
    L.add("b", "0.91", "x", "seed-range", (0.88, 0.92), 0.91, source=SRC, diff="another model")
    L.add("c", "0.91", "x", "seed-range", (0.88, 0.92), 0.91, source=SRC, diff="another seed")
    assert list(verdict_counts(L).items()) == [("in kind", 2), ("differs", 1)]
    assert "3 claims: 2 in kind, 1 differs." in claims_block(L)[2]


def test_shown_note_by_hand():
    from tianref.experiments.reproduce.rows import shown_note
    # 225 / 553 = 0.4069 -> two significant digits
    assert shown_note(225, 553, "T5") == "ours 225 = ×0.41 of the paper's 553; T5 prints no range, so the row is " \
                                          "shown, not judged"
    assert shown_note(1143.0, 64.0, "T4", "see below").endswith("×18 of the paper's 64; T4 prints no range, so the "
                                                                 "row is shown, not judged; see below")
    for ours, paper in ((None, 553), (225, None), (0, 553), (225, 0), (-3, 553), (225, -1)):
        assert shown_note(ours, paper, "T5") == "", (ours, paper)                     # no factor to give


def test_a_section_with_missing_runs_judges_at_most_in_kind():
    """Claims measured on part of a section's runs are not the source's protocol: a passing claim reads
    'in kind (N of the section's M runs ...)', one already 'in kind' keeps its difference and adds that,
    info stays info; a section with every run is untouched (full scaling's 44 of 60 read 'agrees')."""
    from tianref.experiments.reproduce.claims import Claim, Source
    from tianref.experiments.reproduce.pipeline import on_the_runs_here
    src = Source("paper", "T6")
    claims = [Claim("a", src, "1", "most-runs", "pass"),
              Claim("b", src, "1", "most-runs", "pass", same_definition=False, difference="small M"),
              Claim("c", src, "1", "info", "info")]
    doc = {"n_runs": 44, "missing_runs": [f"r{i}" for i in range(16)]}
    got = [c.verdict for c in on_the_runs_here(claims, doc)]
    assert got == ["in kind (44 of the section's 60 runs (16 not run))",
                   "in kind (small M; 44 of the section's 60 runs (16 not run))", "info"]
    assert on_the_runs_here(claims, {"n_runs": 60, "missing_runs": []}) == claims


def test_a_verdict_judged_on_a_bracket_only_findings_prints_is_a_findings_claim(pub):
    """The paper prints T3's 174 [173, 174], 15/15, 0/15, 229x and the medians ≈ 300, ≈ 1.31 and 102, but the
    brackets [168, 320], [1.25, 1.37] and [99, 102], the 6-seed pilot's lag 35 [34, 36] and the control's
    ~0.03 are findings.md's only; T1's IQR is printed in the paper's text at epochs 50 and 300 only. A claim
    judged against such a bracket names findings.md as its source, not the paper (both were 'paper')."""
    import json
    from tianref.experiments.reproduce.sections.headline import Headline
    from tianref.experiments.reproduce.sections.thm6 import Thm6

    def kinds(section, build):
        doc = json.loads((REPO / f"reference_results/reproduction/full/{section}/summary.json").read_text())
        return {c.claim: c.source.kind for c in build().claims(doc, pub)}
    head = kinds("headline", Headline)
    assert head["σ2/σ3 slope fire (epoch), eta=0.0002: 174 [173, 174]"] == "paper"     # the IQR is in the paper
    assert head["σ2/σ3 slope fire, fired/n, eta=0.0002: 15/15"] == "paper"
    assert head["σ2/σ3 slope fire, fired/n, eta=0: 0/15"] == "paper"
    assert head["late σ2/σ3 grok/control, eta=0.0002: 229"] == "paper"
    assert head["t(test ≥ 0.5), eta=0.0002: 102 [99, 102]"] == "findings"
    assert head["late σ2/σ3, ep 200-400, eta=0.0002: 300 [168, 320]"] == "findings"
    assert head["late σ2/σ3, ep 200-400, eta=0: 1.31 [1.25, 1.37]"] == "findings"
    assert head["slope fire − t(test ≥ 0.99), eta=0.0002: 35 [34, 36]"] == "findings"       # the 6-seed pilot
    assert head["control test accuracy, median over ep 200-400, control: ~0.03"] == "findings"
    printed = pub["tables"]["T1"]["sqr_iqr_in_text"]
    rows = {r["epoch"]: r["iqr"] for r in pub["tables"]["T1-IQR"]["rows"]}
    assert {k: v for k, v in printed.items() if k != "source"} == {"50": rows[50], "300": rows[300]}
    t1 = {k.split(":")[0]: v for k, v in kinds("thm6", Thm6).items() if k.startswith("sign-match, paper route, x²")}
    assert t1 == {"sign-match, paper route, x², ep 50": "paper", "sign-match, paper route, x², ep 100": "findings",
                  "sign-match, paper route, x², ep 175": "findings", "sign-match, paper route, x², ep 250": "findings",
                  "sign-match, paper route, x², ep 300": "paper"}


def test_a_rounded_seed0_value_is_compared_at_its_printed_precision(pub):
    """The paper's seed-0 median |cos| 0.59 at epoch 250 is printed to two decimals; our seeds' largest is 0.5882,
    which rounds to it: 'differs' by the bare value, in by its rounding interval. The sign-match, k/200 of the
    top-200 pairs, is printed exactly and compared as it is."""
    import json
    from tianref.experiments.reproduce.sections.thm6 import Thm6
    doc = json.loads((REPO / "reference_results/reproduction/full/thm6/summary.json").read_text())
    got = {c.claim: c for c in Thm6().claims(doc, pub)}
    c = got["median_abs_cos vs the paper's seed 0, x², ep 250: 0.59"]
    assert c.outcome == "pass" and "rounding interval [0.585, 0.595]" in c.note
    c = got["sign_match_paper vs the paper's seed 0, x², ep 50: 0.83"]
    assert c.outcome == "fail" and "printed exactly" in c.note      # 0.83 = 166/200, below our seeds' 0.835
    assert c.source.kind == "paper"
    # the two rounded columns are findings.md's; the early draft prints the sign-match column only
    for q in ("median_abs_cos", "frac_B_neg_on_pos_cos"):
        k = [c for name, c in got.items() if name.startswith(f"{q} vs the paper's seed 0")]
        assert len(k) == 5 and {c.source.kind for c in k} == {"findings"}, q
