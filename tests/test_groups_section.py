"""The ``groups`` reproduce section: its runs, its measurements on tiny real runs, its claims on synthetic
documents, and the rule it adds (binomial-above).

The module is reached through the section registry (it is registered like every other section).
"""
import math
import os
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from tianref.analysis.records import read_run
from tianref.cli import main as cli_main
from tianref.cli.train import check_train_args
from tianref.experiments.reproduce import group_measure as gm
from tianref.experiments.reproduce.claims import RULES, binomial_tail
from tianref.experiments.reproduce.section import Context, Section

import tianref.experiments.reproduce.sections.groups as mod  # noqa: E402
from tianref.experiments.reproduce.sections import REGISTRY  # noqa: E402


def test_section_is_a_registered_section():
    assert isinstance(mod.SECTION, Section) and REGISTRY["groups"] is mod.SECTION
    s = mod.SECTION
    assert s.name == "groups" and s.needs_checkpoints and not s.default


def test_runs_are_valid_train_commands_with_the_critical_fractions(tmp_path):
    specs = mod.SECTION.runs("ci")
    tags = [r.tag for r in specs]
    assert len(tags) == len(set(tags))
    assert {r.options["group"] for r in specs} == set(mod.GROUPS)
    for r in specs:
        check_train_args(r.argv() + ["--out", str(tmp_path / r.tag)], device=False)   # train's own checks
        assert "M" not in r.options                                 # M = |H|, from the group
    crit = [r for r in specs if r.tag.startswith("crit_S4_c3_")]
    # (d_max / 2) c ln|H| / |H| by hand: S4 has d_max = 3, |H| = 24
    assert crit and crit[0].options["train_frac"] == pytest.approx(1.5 * 3 * math.log(24) / 24, abs=1e-4)
    full = mod.SECTION.runs("full")
    assert all(r.options["train_frac"] <= mod.MAX_FRAC for r in full)
    with pytest.raises(Exception, match="no 'huge' scale"):
        mod.SECTION.runs("huge")


def test_group_info_degrees():
    assert gm.group_info("S4")["degrees"] == [1, 1, 2, 3, 3] and gm.group_info("S4")["n_comp"] == 4
    q = gm.group_info("Q8xZ3")
    assert q["d_max"] == 2 and sum(q["comp_dims"]) == 23 and not q["abelian"]


def test_newly_pure_step_by_hand():
    dims = [1, 4, 9, 9]                                             # S4's non-trivial components
    prev = (np.array([3, 3, 2, 4, 1]), np.array([True, False, False, False, False]))   # C_t = {3}
    now = (np.array([3, 3, 2, 4, 3]), np.array([True, True, True, False, True]))      # units 1, 2, 4 new
    out = gm.newly_pure_step(prev, now, dims)
    assert out["n"] == 3 and out["k"] == 1                          # only unit 2 (on component 2) is missing
    assert out["e_dim"] == pytest.approx(3 * (1 + 4 + 9) / 23) and out["e_unif"] == pytest.approx(3 * 3 / 4)
    assert gm.newly_pure_step((prev[0], np.zeros(5, bool)), now, dims) is None       # nothing covered yet
    assert gm.newly_pure_step((np.array([1, 2, 3, 4, 4]), np.ones(5, bool)), now, dims) is None   # all covered
    # C_t = {4}, the last component: missing 1, 2, 3 (real dimensions 1 + 4 + 9 of 23), three of four components
    prev4 = (np.array([4, 1, 1, 1, 1]), np.array([True, False, False, False, False]))
    out = gm.newly_pure_step(prev4, now, dims)
    assert out["n"] == 3 and out["k"] == 3                          # units 1, 2, 4 on components 3, 2, 3
    assert out["e_dim"] == pytest.approx(3 * 14 / 23) and out["e_unif"] == pytest.approx(3 * 3 / 4)


def test_c_star_and_c_bracket_read_only_their_group():
    # the section asks both of the cells of every critical group at once (S4 and Q8xZ3)
    cells = [{"group": "Q8xZ3", "c": c, "n": 3, "n_grok": k} for c, k in ((1.0, 3), (2.0, 3), (3.0, 3), (4.0, 3))]
    cells += [{"group": "S4", "c": c, "n": 3, "n_grok": k} for c, k in ((1.0, 0), (2.0, 1), (3.0, 2), (4.0, 3))]
    assert gm.c_star(cells, "S4") == 3.0 and gm.c_star(cells, "Q8xZ3") == 1.0
    assert gm.c_bracket(cells, "S4") == (2.0, 3.0) and gm.c_bracket(cells, "Q8xZ3") == (None, 1.0)
    s4 = [c if c["group"] == "S4" else dict(c, n_grok=0) for c in cells]     # Q8xZ3 never groks
    assert gm.c_bracket(s4, "Q8xZ3") == (4.0, None) and gm.c_bracket(s4, "S4") == (2.0, 3.0)
    # another group's grid (a capped train fraction): its failing c = 2.5 is not S4's lo
    other = cells + [{"group": "A5", "c": 2.5, "n": 3, "n_grok": 0}]
    assert gm.c_bracket(other, "S4") == (2.0, 3.0) and gm.c_star(other, "A5") is None


def test_power_purity_of_planted_units():
    from tianref import groups, irreps
    G = groups.parse_group("S3")
    dec = irreps.decompose(G.table)
    B = dec.components[2].basis                                     # the 2-dim irrep's 4-dim component
    W = np.concatenate([B[:, :2], B[:, 1:3]])                        # (12, 2): units inside one component
    assert gm.power_purity(W, dec) == pytest.approx(1.0)
    W2 = np.concatenate([B[:, :1] + dec.components[1].basis, B[:, :1]])   # half its power elsewhere
    assert gm.power_purity(W2, dec) == pytest.approx(2 / 3)         # (1 + 1) of (1 + 1 + 1)


@pytest.fixture(scope="module")
def tiny_doc(tmp_path_factory):
    """measure() on real tiny runs of a reduced plan: two groups, one critical group."""
    root = tmp_path_factory.mktemp("groups")
    saved = mod.GROUPS, mod.CRITICAL_GROUPS
    mod.GROUPS = ("D5", "S3")
    mod.CRITICAL_GROUPS = ("S3",)
    mod.PLANS["tiny"] = mod.Plan(K=16, train_frac=0.5, eta=2e-3, lr=1e-2, seeds=1, epochs={"D5": 12, "S3": 12},
                                 crit_c=(2.0,), crit_epochs=6, crit_seeds=1, stride=2)
    s = mod.SECTION
    for r in s.runs("tiny"):
        res = CliRunner().invoke(cli_main, ["train"] + r.argv() + ["--out", str(root / r.tag)],
                                 catch_exceptions=False)
        assert res.exit_code == 0, res.stderr
    records = [read_run(root / r.tag) for r in s.runs("tiny")]
    doc = s.measure(records, "tiny", Context(section_dir=root))
    yield s, doc
    del mod.PLANS["tiny"]
    mod.GROUPS, mod.CRITICAL_GROUPS = saved


def test_measure_on_tiny_runs(tiny_doc):
    s, doc = tiny_doc
    assert [g["group"] for g in doc["groups"]] == ["D5", "S3"]
    for g in doc["groups"]:
        (r,) = g["runs"]
        assert 0 < r["purity_w"] <= 1 and r["epochs"] == 12
        assert 0 <= r["thm7"]["k"] <= r["thm7"]["n"]
        t6 = r["thm6"]
        assert t6 is not None and t6["sign_match_exact"] == 1.0     # the exact rule is an identity
    (cell,) = doc["critical"]["cells"]
    assert cell["group"] == "S3" and cell["c"] == pytest.approx(2.0, abs=2e-3) and cell["n"] == 1
    text = s.report(doc, {})
    assert text.startswith("# Group arithmetic") and "| claim | source | ours | rule | verdict |" in text
    assert "| D5 | 10 |" in text and "## Theorem 7" in text
    t7 = text.split("## Theorem 7")[1].split("##")[0]
    assert "None" not in t7                  # an epoch that never came (12 epochs: no full coverage) reads —
    assert any(r["thm7"].get("t_full") is None for g in doc["groups"] for r in g["runs"]) == ("—" in t7)


def _synthetic(purity=0.95, cover=True, k7=30, n7=40, fire=True, c_star=3.0):
    run = {"run": "S4_seed0", "seed": 0, "epochs": 100, "t05": 50.0, "t099": 80.0, "fire": 70.0 if fire else None,
           "final_test_acc": 1.0, "coverage": 4.0 if cover else 2.0, "purity_med": 0.5, "purity_w": purity,
           "thm7": {"k": k7, "n": n7, "e_dim": 0.4 * n7, "e_unif": 0.5 * n7, "t_first": 10, "t_full": 60},
           "thm6": {"epoch": 100, "n_pairs": 200, "sign_match_exact": 1.0, "sign_match_paper": 0.9,
                    "frac_B_neg_on_pos_cos": 0.95}}
    grp = dict(gm.group_info("S4"), runs=[run, dict(run, run="S4_seed1", thm6=None)])
    cells = [{"group": "S4", "c": c, "p": 0.2 * c, "n": 2, "n_grok": 2 if c_star and c >= c_star else 0}
             for c in (1.0, 2.0, 3.0, 4.0)]
    return {"section": "groups", "scale": "full",
            "plan": {"K": 512, "train_frac": 0.5, "eta": 2e-3, "lr": 1e-3, "seeds": 2, "epochs": {}, "eta_of": {},
                     "crit_c": [1, 2, 3, 4], "crit_epochs": 100, "stride": 2},
            "groups": [grp], "critical": {"cells": cells, "c_star": {"S4": gm.c_star(cells, "S4")},
                                          "d_max": {"S4": 3}}}


def _verdicts(doc):
    return [c.verdict.split(" (")[0] for c in mod.SECTION.claims(doc, {})]


def test_claims_on_a_document_where_every_claim_holds():
    v = _verdicts(_synthetic())
    assert v == ["in kind", "in kind", "in kind", "in kind", "in kind", "identity", "info"]


def test_claims_on_a_document_where_they_fail():
    # impure units, coverage short, no c groks, newly pure units avoid the missing components, no fire
    v = _verdicts(_synthetic(purity=0.5, cover=False, k7=5, n7=40, fire=False, c_star=None))
    # no tested c groks: the transition lies above the grid (> 4), not at Tian's 2.7482. Purity and coverage
    # short of their thresholds fall short of the claims without contradicting them (no contrary is counted):
    # "differs"; a detector silent in every grokking run is the contrary of "it fires": "disagrees"
    assert v == ["differs", "differs", "differs", "disagrees", "disagrees", "identity", "info"]
    # the grid's transition interval (lo, c*] must hold 2.7482: (2, 3] does, (3, 4] and (1, 2] do not
    for c_star, verdict in ((3.0, "in kind"), (4.0, "differs"), (2.0, "differs"), (1.0, "differs")):
        assert _verdicts(_synthetic(c_star=c_star))[2] == verdict, c_star


def test_claims_at_their_thresholds_and_on_what_they_leave_out():
    # purity_w >= 0.9 counts (inclusive, docs/groups.md §7); coverage must be n_comp itself (4 for S4), not 3
    assert _verdicts(_synthetic(purity=0.9))[0] == "in kind"
    assert _verdicts(_synthetic(cover=False))[1] == "differs"
    doc = _synthetic()
    doc["groups"][0]["runs"] = [dict(r, coverage=3.0) for r in doc["groups"][0]["runs"]]
    assert _verdicts(doc)[1] == "differs"
    # a critical group without a single cell (no run of it read): nothing to bracket, not "0 < 2.7482 <= inf"
    doc = _synthetic()
    doc["critical"]["cells"] = []
    assert _verdicts(doc)[2] == "not measurable"
    # the row's text states the interval it judged: (lo, c*]
    c = mod.SECTION.claims(_synthetic(), {})[2]
    assert c.ours == "c* = 3.0, transition in (2, 3] (grokked: c=1: 0/2, c=2: 0/2, c=3: 2/2, c=4: 2/2)"
    c = mod.SECTION.claims(_synthetic(c_star=None), {})[2]
    assert "transition above the grid (> 4)" in c.ours


def test_theorem7_is_judged_against_the_larger_null():
    # two runs of k = 12 of n = 20, pooled 24 of 40, with E_dim = 0.4 n and E_unif = 0.5 n: q = 0.5 (docs/groups.md
    # §7); P[X >= 24 | 40, 0.5]
    # = 0.134 > 0.05 and P[X <= 24] = 0.923: differs. Against the smaller null (0.4) it would pass (0.0083).
    up = sum(math.comb(40, i) for i in range(24, 41)) / 2 ** 40
    assert 0.05 < up < 0.2
    assert sum(math.comb(40, i) * 0.4 ** i * 0.6 ** (40 - i) for i in range(24, 41)) < 0.05
    assert _verdicts(_synthetic(k7=12, n7=20))[3] == "differs"


def test_lockin_counts_grokking_non_abelian_runs_and_theorem6_its_worst_checkpoint():
    doc = _synthetic()
    run = doc["groups"][0]["runs"][0]
    # an abelian group's grokking run without a fire and a non-abelian run that reaches t0.5 but not t0.99 are
    # both outside the count: still 2/2 fired
    z = dict(gm.group_info("Z23"), runs=[dict(run, run="Z23_seed0", fire=None, thm6=None)])
    doc["groups"][0]["runs"].append(dict(run, run="S4_seed2", t099=None, fire=None, thm6=None))
    doc["groups"].append(z)
    c = mod.SECTION.claims(doc, {})[4]
    assert c.ours == ("fired in 2/2 grokking non-abelian runs, silent in 0/2 (abelian groups, not judged: fired "
                      "in 0/1)") and c.verdict.startswith("in kind")
    assert c.claim.startswith("the sigma2/sigma3 lock-in detector fires in grokking runs of non-abelian groups")
    # the identity is checked on the worst checkpoint: one at 0.98 fails it
    doc["groups"][0]["runs"][1]["thm6"] = dict(run["thm6"], sign_match_exact=0.98)
    c = mod.SECTION.claims(doc, {})[5]
    assert (c.outcome, c.verdict) == ("fail", "differs") and "worst of 2" in c.ours


def test_c_bracket_by_hand():
    cells = [{"group": "S4", "c": c, "n": 3, "n_grok": k} for c, k in ((1.0, 0), (2.0, 1), (3.0, 2), (4.0, 3))]
    assert gm.c_bracket(cells, "S4") == (2.0, 3.0)                 # 1/3 at c = 2 is below half; 2/3 at 3 is not
    assert gm.c_bracket(cells[:2], "S4") == (2.0, None)           # nothing reaches half: above the grid
    assert gm.c_bracket(cells[2:], "S4") == (None, 3.0)           # the first tested c already groks
    assert RULES["brackets"].judge((2.0, 3.0), 2.7482) == "pass"
    assert RULES["brackets"].judge((2.0, 3.0), 3.0) == "pass"      # (lo, hi]: the upper end included
    assert RULES["brackets"].judge((2.0, 3.0), 2.0) == "fail"      # the lower end excluded
    assert RULES["brackets"].judge((4.0, None), 2.7482) == "fail"
    assert RULES["brackets"].judge((None, 3.0), 0.5) == "pass"
    assert RULES["brackets"].judge(None, 2.7482) == "undefined"


def test_binomial_rule_against_a_direct_sum():
    for k, n, q in ((3, 10, 0.2), (7, 12, 0.5), (0, 5, 0.3), (40, 111, 0.41)):
        direct = sum(math.comb(n, i) * q ** i * (1 - q) ** (n - i) for i in range(k, n + 1))
        assert binomial_tail(k, n, q) == pytest.approx(direct, rel=1e-12)
    r = RULES["binomial-above"]
    assert r.judge((60, 100), 0.4) == "pass"                        # tail ~ 4e-5
    assert r.judge((45, 100), 0.4) == "fail"                        # above the null, not significant
    assert r.judge((30, 100), 0.4) == "opposite" and r.judge((0, 0), 0.4) == "undefined"
