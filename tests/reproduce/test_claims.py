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
