"""The critical section module: the constant-c boundary of Theorem 4 as Claim records, on the stored full-scale
per-run numbers and on synthetic grids."""
import json
import math
from pathlib import Path

import pytest

from section_driver import PUBLISHED, no_agrees_without_the_definition, verdicts
from tianref.experiments import protocols, protocols_tian as pt
from tianref.experiments.reproduce.runstats import boundary
from tianref.experiments.reproduce.sections import critical

FULL = Path(__file__).resolve().parents[1] / "reference_results" / "reproduction" / "full" / "critical"


def _doc(per_run):
    table = critical.cell_table(per_run)
    b = boundary([{"M": r["M"], "x": r["c"], "frac": r["frac"]} for r in table])
    return {"section": "critical", "scale": {"name": "full"}, "command": "", "n_runs": len(per_run), "seeds": [0],
            "epochs": [1500], "setup": {}, "critical": {"per_run": per_run, "table": table, "eta": [5e-4],
                                                        "boundary": {str(M): v for M, v in b.items()}}}


def _run(M, c, grok):
    return {"M": M, "c": c, "p": c * pt.p_crit(M), "n_train": 1, "grokked": grok, "t099": 100.0 if grok else None,
            "final": {"test_acc": 1.0 if grok else 0.0}}


def test_grid():
    crit = protocols.section_runs("critical")
    assert len(crit) == 3 * 5 * 3
    for s in crit:
        M = s.options["M"]
        assert min(abs(s.options["train_frac"] / (math.log(M) / M) - x) for x in pt.CRITICAL_C) < 1e-4


@pytest.mark.skipif(not (FULL / "summary.json").is_file(), reason="no stored full critical section")
def test_stored_numbers_give_the_stored_intervals():
    old = json.loads((FULL / "summary.json").read_text())
    doc = _doc(old["critical"]["per_run"])
    assert doc["critical"]["boundary"] == old["critical"]["boundary"]         # (2, 3] for every M
    assert all((v["last_below"], v["first_ge_half"]) == (2.0, 3.0) for v in doc["critical"]["boundary"].values())
    claims = critical.SECTION.claims(doc, PUBLISHED)
    assert all("(2, 3]" in c.ours for c in claims if c.rule == "info")
    one = [c for c in claims if c.rule == "above"][0]
    assert one.source.kind == "slides" and one.verdict.startswith("in kind (")
    no_agrees_without_the_definition(claims)


def test_intervals_that_do_not_overlap_disagree_and_an_open_grid_is_not_measurable():
    runs = [_run(23, c, c >= 3) for c in (1, 2, 3)] + [_run(41, c, c >= 2) for c in (0.5, 1, 2)]
    # M = 23: (2, 3]; M = 41: (1, 2]: no common c
    v = verdicts(critical.SECTION.claims(_doc(runs), PUBLISHED))
    assert v["one constant c fits every M (the intervals overlap)"] == "disagrees"
    runs = [_run(23, c, True) for c in (1, 2)]                     # groks everywhere: no crossing in the grid
    v = verdicts(critical.SECTION.claims(_doc(runs), PUBLISHED))
    assert v["one constant c fits every M (the intervals overlap)"] == "not measurable"
    report = critical.SECTION.report(_doc(runs), PUBLISHED)
    assert report.count("| claim | source | ours | rule | verdict |") == 1 and "no crossing inside the grid" in report


def test_header_names_every_M_and_training_size_of_a_section():
    """summary.json's setup is the runs' common M, K and n_train, or all of their values: the critical
    section spans M = 23 and 25 and several training sizes, not its first run's."""
    from types import SimpleNamespace

    from tianref.experiments.reproduce import pipeline

    def rec(M, n, seed):
        cfg = {"M": M, "K": 512, "n_train": n, "seed": seed, "eta": 5e-3, "dtype": "float32"}
        return SimpleNamespace(config=cfg, meta={"versions": {"backend": "numpy"}},
                               path=Path(f"M{M}_n{n}_seed{seed}"))

    sec, scale = pipeline.get_section("critical"), protocols.SCALES["ci"]
    mixed = pipeline.header(sec, scale, [rec(23, 72, 0), rec(25, 80, 0), rec(23, 216, 1)], "")
    assert mixed["setup"]["M"] == [23, 25] and mixed["setup"]["n_train"] == [72, 80, 216]
    assert mixed["setup"]["K"] == 512
    one = pipeline.header(sec, scale, [rec(23, 72, 0), rec(23, 72, 1)], "")
    assert (one["setup"]["M"], one["setup"]["n_train"]) == (23, 72)


def test_the_one_constant_row_places_his_code_multiplier():
    """His code's default critical multiplier 2.7482 (pt.TIAN_CRITICAL_C) against each M's interval: inside
    (2, 3] for every M in the stored numbers; inside none when the intervals are (1, 2] and (1.5, 2]; an M
    without a crossing in the grid has an open interval, here (0, 1], which does not hold it (it was left
    out of the note)."""
    assert pt.TIAN_CRITICAL_C == 2.7482
    runs = [_run(23, c, c >= 2) for c in (1, 2, 3)] + [_run(41, c, c >= 2) for c in (0.5, 1.5, 2)]
    one = [c for c in critical.SECTION.claims(_doc(runs), PUBLISHED) if c.rule == "above"][0]
    assert "c = 2.7482" in one.note and "inside no M's interval" in one.note
    runs = [_run(23, c, c >= 3) for c in (1, 2, 3)] + [_run(41, c, c >= 2) for c in (0.5, 1.5, 2)]
    one = [c for c in critical.SECTION.claims(_doc(runs), PUBLISHED) if c.rule == "above"][0]
    assert one.note.endswith("inside the interval of M = 23, outside that of M = 41")
    runs = [_run(23, c, c >= 3) for c in (1, 2, 3)] + [_run(41, c, True) for c in (1, 2)]   # M = 41: open
    one = [c for c in critical.SECTION.claims(_doc(runs), PUBLISHED) if c.rule == "above"][0]
    assert one.note.endswith("no crossing inside the grid for M = 41; Tian's code places the critical fraction "
                             "at c = 2.7482 (its default critical_ratio_multiplier): inside the interval of M = 23, "
                             "outside that of M = 41")


@pytest.mark.skipif(not (FULL / "summary.json").is_file(), reason="no stored full critical section")
def test_stored_intervals_hold_his_code_multiplier():
    old = json.loads((FULL / "summary.json").read_text())
    one = [c for c in critical.SECTION.claims(_doc(old["critical"]["per_run"]), PUBLISHED) if c.rule == "above"][0]
    assert one.note.endswith("inside the interval of every M")


def test_an_M_that_never_groks_has_its_boundary_above_the_grid_and_can_break_the_overlap():
    """M = 25 groks at no c of the grid: its boundary lies in (3, inf), not anywhere, so with M = 23's (2, 3]
    no constant c fits both (a tie of the ends reads as the opposite of 'above'): disagrees. It was read
    as (0, inf] and the verdict said 'in kind'."""
    runs = [_run(23, c, c >= 3) for c in (1, 2, 3)] + [_run(25, c, False) for c in (1, 2, 3)]
    b = _doc(runs)["critical"]["boundary"]
    assert b["25"] == {"first_ge_half": None, "last_below": 3.0} and b["23"] == {"first_ge_half": 3.0, "last_below": 2.0}
    claims = critical.SECTION.claims(_doc(runs), PUBLISHED)
    assert verdicts(claims)["one constant c fits every M (the intervals overlap)"] == "disagrees"
    assert any("(3, > grid]" in c.ours for c in claims if c.rule == "info")
    runs = [_run(23, c, c >= 3) for c in (1, 2, 3)] + [_run(25, c, False) for c in (1, 2)]   # (2, inf) overlaps
    assert verdicts(critical.SECTION.claims(_doc(runs), PUBLISHED))[
        "one constant c fits every M (the intervals overlap)"].startswith("in kind")
