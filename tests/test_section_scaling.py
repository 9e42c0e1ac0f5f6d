"""The scaling section module: Theorem 4 and the findings' T6 as Claim records, on the stored full-scale per-run
numbers (the claims' numbers must be the ones the stored report states) and on a tiny end-to-end pass."""
import json
from pathlib import Path

import pytest

from section_driver import PUBLISHED, drive, no_agrees_without_the_definition
from tianref.data import n_train_from_frac
from tianref.experiments import protocols
from tianref.experiments.reproduce.claims import RULES
from tianref.experiments.reproduce.runstats import boundary
from tianref.experiments.reproduce.sections import scaling

FULL = Path(__file__).resolve().parents[1] / "reference_results" / "reproduction" / "full" / "scaling"


def _thm4(claim):
    """A Theorem-4 row (the slide's p_crit boundary), whatever its rule."""
    return "generalisation needs p ≳ p_crit" in claim.claim


def _doc_from_stored():
    """doc["scaling"] rebuilt from the per-run numbers the full-scale section stored (44 of 60 runs)."""
    old = json.loads((FULL / "summary.json").read_text())
    per_run = old["scaling"]["per_run"]
    table = scaling.cell_table(per_run)
    b = boundary([{"M": r["M"], "x": r["p"], "frac": r["n_grok"] / r["n"]} for r in table])
    return {"section": "scaling", "scale": {"name": "full"}, "command": "", "n_runs": old["n_runs"],
            "seeds": old["seeds"], "epochs": old["epochs"], "setup": old["setup"],
            "scaling": {"per_run": per_run, "table": table, "boundary": {str(M): v for M, v in b.items()}}}


def test_grid_is_the_findings_T6():
    specs = protocols.section_runs("scaling")
    assert len(specs) == 3 * 4 * 5
    assert {(s.options["M"], s.options["epochs"]) for s in specs} == {(41, 400), (71, 600), (127, 1000)}
    # n = round(p M^2) as Python rounds (banker's rounding): 0.5 * 41^2 = 840.5 -> 840
    assert n_train_from_frac(41, 0.5) == 840 and n_train_from_frac(127, 0.3) == 4839


@pytest.mark.skipif(not (FULL / "summary.json").is_file(), reason="no stored full scaling section")
def test_claims_on_the_stored_numbers_carry_their_source_and_rule():
    claims = scaling.SECTION.claims(_doc_from_stored(), PUBLISHED)
    by = {c.claim: c for c in claims}
    # the numbers the stored report gives: M = 41 -> 0.5, M = 71 -> 0.2, 44/44 fired, cell medians 11-20
    t6_41 = by["M = 41: the smallest grid p where ≥ half the seeds grok is 0.5"]
    assert t6_41.ours == "0.5" and t6_41.verdict == "agrees"
    assert by["M = 71: the smallest grid p where ≥ half the seeds grok is 0.2"].verdict == "agrees"
    assert by["ρ_tian ≥ 0.075 fires in 60/60 runs"].ours == "44/44 runs"
    assert by["... at ep ~11–25 (cell medians)"].ours == "cell medians 11–20"
    assert all(c.rule in RULES for c in claims)
    # the grid rows are T6 cells (the paper repository's notes); the two ρ rows over the whole sweep are the
    # paper's own sentence in its §6 ("fires in 60/60 runs at near-constant epoch (~11-25)"), once cited to T6
    rho = {"ρ_tian ≥ 0.075 fires in 60/60 runs", "... at ep ~11–25 (cell medians)"}
    assert {(c.source.kind, c.source.ref) for c in claims if not _thm4(c) and c.claim not in rho} == \
        {("findings", "tian_eigengap/findings.md, T6")}
    assert {c.source.kind for c in claims if c.claim in rho} == {"paper"}
    assert all("§6" in by[c].source.ref and "60/60" in by[c].source.quote for c in rho)
    thm4 = by["M = 41: generalisation needs p ≳ p_crit = log M / M = 0.091"]
    # every stored grid p of M = 41 exceeds p_crit: the rule 'above' could only pass, so the row is not judged
    assert thm4.source.kind == "slides" and thm4.rule == "info" and thm4.verdict == "info"
    no_agrees_without_the_definition(claims)
    report = scaling.SECTION.report(_doc_from_stored(), PUBLISHED)
    assert "| claim | source | ours | rule | verdict |" in report and "tian_eigengap/findings.md" in report
    assert report.count("| claim | source | ours | rule | verdict |") == 1


@pytest.mark.skipif(not (FULL / "summary.json").is_file(), reason="no stored full scaling section")
def test_a_reduced_scale_never_agrees_with_T6():
    """T6 is a table of M = 41..127 runs at eta = 2e-4: the same numbers at the ci or smoke scale (other M,
    eta x 10, two seeds) pass the same rules but can only read 'in kind (<scale> scale ...)'."""
    for name in ("ci", "smoke"):
        doc = dict(_doc_from_stored(), scale={"name": name})
        claims = scaling.SECTION.claims(doc, PUBLISHED)
        t6 = [c for c in claims if c.source.kind in ("findings", "paper")]
        assert len(t6) == 5 and all(not c.same_definition for c in t6)
        by = {c.claim: c for c in claims}
        assert by["ρ_tian ≥ 0.075 fires in 60/60 runs"].verdict == f"in kind ({name} scale, not the paper's setup)"
        assert by["M = 41: the smallest grid p where ≥ half the seeds grok is 0.5"].verdict.startswith("in kind (")
        assert all(c.verdict != "agrees" for c in claims)


@pytest.mark.skipif(not (FULL / "summary.json").is_file(), reason="no stored full scaling section")
def test_a_rho_from_row_0_fires_at_epoch_0_as_the_sources_detector_counts_it_and_is_marked():
    """The source's t_rho is the first epoch with rho_tian >= 0.075 searched from epoch 0, so a run above the
    threshold from row 0 fires at epoch 0 and counts (docs/detectors.md §10: the detector's answer, marked).
    Both rho claims say how many such runs they hold; the epoch claim then fails its range honestly."""
    doc = _doc_from_stored()
    per_run = doc["scaling"]["per_run"]
    first = min({(s["M"], s["p"]) for s in per_run})
    early = [dict(s, rho_fire=0.0, rho_from_start=True) if (s["M"], s["p"]) == first else s for s in per_run]
    n_early = sum(s.get("rho_from_start", False) for s in early)
    assert 0 < n_early < len(early)
    d = dict(doc, scaling=dict(doc["scaling"], per_run=early, table=scaling.cell_table(early)))
    by = {c.claim: c for c in scaling.SECTION.claims(d, PUBLISHED)}
    fires = by["ρ_tian ≥ 0.075 fires in 60/60 runs"]
    assert fires.ours == f"{len(early)}/{len(early)} runs ({n_early} of them at row 0: ρ_tian ≥ 0.075 from row 0)"
    assert fires.outcome == "pass" and "searched from epoch 0" in fires.note   # every run fired, as 60/60
    when = by["... at ep ~11–25 (cell medians)"]
    assert when.ours == "cell medians 0–20 (fires at row 0 included)" and when.outcome == "fail"
    report = scaling.SECTION.report(d, PUBLISHED)
    assert report.count(" † |") == 1 and "they fire at epoch 0" in report
    plain = {c.claim: c for c in scaling.SECTION.claims(doc, PUBLISHED)}        # none from row 0: no mark
    assert plain["ρ_tian ≥ 0.075 fires in 60/60 runs"].ours == "44/44 runs"
    assert "searched from epoch 0" not in plain["ρ_tian ≥ 0.075 fires in 60/60 runs"].note


def test_new_rules_judge_as_stated():
    """The rules added for these sections, against direct cases (each threshold on both sides)."""
    assert RULES["above"].judge(0.5, 0.091) == "pass" and RULES["above"].judge(0.05, 0.091) == "opposite"
    assert RULES["above"].judge(None, 0.091) == "undefined"
    assert RULES["all-within"].judge([11, 20], (11, 25)) == "pass"
    assert RULES["all-within"].judge([11, 26], (11, 25)) == "fail"
    assert RULES["all-within"].judge([], (1, 2)) == "undefined"
    assert RULES["ratio-below"].judge(0.8, 1.0) == "pass" and RULES["ratio-below"].judge(0.96, 1.0) == "fail"
    assert RULES["ratio-below"].judge(1.01, 1.0) == "fail"           # above, within the margin 1/0.95
    assert RULES["ratio-below"].judge(1.06, 1.0) == "opposite"


def test_section_end_to_end_at_a_tiny_scale(tmp_path):
    doc, _ = drive(scaling.SECTION, tmp_path)
    d = doc["scaling"]
    assert set(doc) >= {"scaling", "figures"} and len(d["per_run"]) == doc["n_runs"] == 4
    assert (tmp_path / "scaling" / "figures" / "scaling.png").is_file()
    report = scaling.SECTION.report(doc, PUBLISHED)                  # pure: from the JSON document alone
    assert report == scaling.SECTION.report(json.loads(json.dumps(doc)), PUBLISHED)
    assert "| claim | source | ours | rule | verdict |" in report


def test_theorem4_rows_say_when_the_grid_cannot_disagree():
    """The slide's Theorem 4 is a sufficient condition; a Theorem-4 row reads it as a boundary, and with every
    grid p above p_crit (0.091 at M = 41) its rule 'above' could only pass or be unmeasurable: the row is then
    'info' and its note says why, and only then (a grid reaching below p_crit is judged by 'above')."""
    assert scaling.theorem4_note(41, [0.1, 0.2, 0.3, 0.5]).startswith("every grid p of M = 41 exceeds p_crit")
    assert scaling.theorem4_note(41, [0.05, 0.1]) == "" and scaling.theorem4_note(41, []) == ""
    grid = [{"M": 41, "c": 0, "p": p, "n_train": 1, "seed": s, "grokked": p >= 0.3, "t099": 100.0 if p >= 0.3
             else None, "rho_fire": 12, "lead": None, "status": "fit", "final": {"test_acc": 1.0}}
            for p in (0.05, 0.3) for s in (0, 1)]
    doc = {"section": "scaling", "scale": {"name": "smoke"}, "command": "", "n_runs": 4, "seeds": [0, 1],
           "epochs": [30], "setup": {}}
    for ps, noted in (((0.05, 0.3), False), ((0.1, 0.3), True)):
        runs = [dict(r, p=ps[i // 2]) for i, r in enumerate(grid)]
        table = scaling.cell_table(runs)
        b = boundary([{"M": r["M"], "x": r["p"], "frac": r["n_grok"] / r["n"]} for r in table])
        d = dict(doc, scaling={"per_run": runs, "table": table, "boundary": {str(M): v for M, v in b.items()}})
        thm4 = [c for c in scaling.SECTION.claims(d, PUBLISHED) if _thm4(c)]
        assert len(thm4) == 1 and bool(thm4[0].note) == noted, (ps, thm4[0].note)
        assert thm4[0].rule == ("info" if noted else "above"), (ps, thm4[0].rule)


@pytest.mark.skipif(not (FULL / "summary.json").is_file(), reason="no stored full scaling section")
def test_stored_theorem4_rows_carry_the_note():
    claims = scaling.SECTION.claims(_doc_from_stored(), PUBLISHED)
    thm4 = [c for c in claims if _thm4(c)]
    assert len(thm4) == 3 and all("cannot test" in c.note and c.rule == "info" for c in thm4)   # M = 41, 71, 127


def test_each_theorem4_row_reads_its_own_grid():
    """M = 23 (p_crit = 0.136) with a grid from 0.05 and M = 41 (p_crit = 0.091) with a grid from 0.1: only
    M = 41's row carries the 'cannot test' note (and is not judged); the grid of another M says nothing about it."""
    runs = [{"M": M, "c": 0, "p": p, "n_train": 1, "seed": s, "grokked": p >= 0.3, "t099": 100.0 if p >= 0.3
             else None, "rho_fire": 12, "lead": None, "status": "fit", "final": {"test_acc": 1.0}}
            for M, ps in ((23, (0.05, 0.3)), (41, (0.1, 0.3))) for p in ps for s in (0, 1)]
    table = scaling.cell_table(runs)
    b = boundary([{"M": r["M"], "x": r["p"], "frac": r["n_grok"] / r["n"]} for r in table])
    d = {"section": "scaling", "scale": {"name": "smoke"}, "command": "", "n_runs": 8, "seeds": [0, 1],
         "epochs": [30], "setup": {}, "scaling": {"per_run": runs, "table": table,
                                                 "boundary": {str(M): v for M, v in b.items()}}}
    rows = {c.claim.split(":")[0]: c for c in scaling.SECTION.claims(d, PUBLISHED) if _thm4(c)}
    assert rows["M = 23"].note == "" and rows["M = 23"].rule == "above"
    assert rows["M = 41"].note.startswith("every grid p of M = 41 exceeds p_crit") and rows["M = 41"].rule == "info"


def _grid_doc(M, grok_at):
    """A two-seed smoke doc of M over the grid {p: both seeds grok?}."""
    runs = [{"M": M, "c": 0, "p": p, "n_train": 1, "seed": s, "grokked": ok, "t099": 100.0 if ok else None,
             "rho_fire": 12, "lead": None, "status": "fit", "final": {"test_acc": 1.0}}
            for p, ok in grok_at.items() for s in (0, 1)]
    table = scaling.cell_table(runs)
    b = boundary([{"M": r["M"], "x": r["p"], "frac": r["n_grok"] / r["n"]} for r in table])
    return {"section": "scaling", "scale": {"name": "smoke"}, "command": "", "n_runs": len(runs), "seeds": [0, 1],
            "epochs": [30], "setup": {}, "scaling": {"per_run": runs, "table": table,
                                                     "boundary": {str(M): v for M, v in b.items()}}}


def test_a_judged_theorem4_row_compares_the_smallest_grokking_p_with_p_crit():
    """M = 41, p_crit = log 41 / 41 = 0.0906: a grid whose p = 0.05 already groks shows generalisation below
    p_crit, the opposite of the boundary ('disagrees'); one that first groks at 0.3 passes ('in kind')."""
    for grok_at, verdict in (({0.05: True, 0.3: True}, "disagrees"), ({0.05: False, 0.3: True}, "in kind")):
        (row,) = [c for c in scaling.SECTION.claims(_grid_doc(41, grok_at), PUBLISHED) if _thm4(c)]
        assert row.rule == "above" and row.verdict.split(" (")[0] == verdict, (grok_at, row.verdict)


def test_the_T6_boundary_row_needs_the_same_grid_p():
    """T6 (M = 41) first groks in half the seeds at p = 0.5; ours first at 0.3, one grid step below: differs,
    although T6's boundary lies somewhere in (0.3, 0.5]."""
    doc = _grid_doc(41, {0.1: False, 0.2: False, 0.3: True, 0.5: True})
    by = {c.claim: c for c in scaling.SECTION.claims(doc, PUBLISHED)}
    row = by["M = 41: the smallest grid p where ≥ half the seeds grok is 0.5"]
    assert (row.ours, row.rule, row.verdict) == ("0.3", "within-range", "differs")
    doc = _grid_doc(41, {0.1: False, 0.2: False, 0.3: False, 0.5: True})
    by = {c.claim: c for c in scaling.SECTION.claims(doc, PUBLISHED)}
    assert by["M = 41: the smallest grid p where ≥ half the seeds grok is 0.5"].verdict.startswith("in kind (")
