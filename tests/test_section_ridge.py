"""The ridge section module: the G_F-limit row is an identity (not evidence for Stage I) when the ridge runs
evaluate V = ridge(current W), information when they log Tian's held V; the report says which the runs used."""
from section_driver import PUBLISHED, drive, no_agrees_without_the_definition, verdicts
from tianref.experiments import protocols
from tianref.experiments.reproduce.sections import ridge

IDENTITY = "ridge V = ridge(F) of the checkpoint's W: G_F equals the ridge-limit formula (push-through identity)"


def _doc(ridge_eval, rel):
    g = {"n": 3, "n_grok": 3, "outcome": "generalises (3/3)", "t05_med": 1.0, "t099_med": 2.0,
         **{f"final_{k}_med": 0.5 for k in ("test_acc", "freq_coverage", "freq_purity_med", "ftf_ratio",
                                            "indep_cos_med")}}
    return {"section": "ridge", "scale": {"name": "full"}, "command": "", "n_runs": 6, "seeds": [0, 1, 2],
            "epochs": [400], "setup": {}, "ridge": {"per_run": [], "groups": {"ridge": g, "trained": g}, "gf_check": {},
                                                    "gf_rel_dist_med": {"trained": {"0": 1.0, "400": 0.58},
                                                                        "ridge": {"0": rel, "400": rel}},
                                                    "ridge_eval": ridge_eval}}


def test_grid():
    ri = protocols.section_runs("ridge")
    assert sorted({s.options["top_layer"] for s in ri}) == ["ridge", "trained"] and len(ri) == 6


def test_current_semantics_make_the_limit_row_an_identity():
    claims = ridge.SECTION.claims(_doc(["current"], 3.7e-6), PUBLISHED)
    v = verdicts(claims)
    assert v[IDENTITY] == "identity"
    assert [c for c in claims if c.claim == IDENTITY][0].note.startswith("an algebraic identity")
    # the trained V's distance (0.58) is shown, not judged; nothing reads "agrees"
    assert v["trained V: G_F tends to its ridge-limit formula (λ = nη/2)"] == "info"
    no_agrees_without_the_definition(claims)
    assert "agrees" not in v.values()
    report = ridge.SECTION.report(_doc(["current"], 3.7e-6), PUBLISHED)
    assert "current: V = ridge(current W) at every evaluation" in report and "| ridge (current) |" in report
    # above float32 rounding the identity fails: a bug in the code, said as such
    assert verdicts(ridge.SECTION.claims(_doc(["current"], 1e-2), PUBLISHED))[IDENTITY] == "differs"


def test_held_semantics_are_named_and_not_judged_as_an_identity():
    doc = _doc(["held"], 2e-2)
    claims = ridge.SECTION.claims(doc, PUBLISHED)
    assert IDENTITY not in verdicts(claims)
    held = [c for c in claims if c.claim.startswith("ridge V held")][0]
    assert held.verdict == "info" and held.note == "ridge_eval: held"
    report = ridge.SECTION.report(doc, PUBLISHED)
    assert "held: V held = the last ridge solve plus one optimizer step" in report and "| ridge (held) |" in report


def test_tiny_runs_log_the_held_v_and_the_identity_holds_at_the_solved_v(tmp_path):
    doc, records = drive(ridge.SECTION, tmp_path)
    d = doc["ridge"]
    ridge_runs = [r for r in records if r.config.get("top_layer") == "ridge"]
    assert d["ridge_eval"] == ["held"] and all(r.config["ridge_eval"] == "held" for r in ridge_runs)
    # the identity at every checkpoint, at V = ridge(F) of the checkpoint's W: float32 weights, the two sides
    # in float64 (relative 1e-4 >> rounding); the held V (the solve plus one Adam step) is not the solve
    assert d["gf_rel_dist_solved_med"] and max(d["gf_rel_dist_solved_med"].values()) < 1e-4
    assert max(d["gf_rel_dist_med"]["ridge"].values()) > 1e-3
    v = verdicts(ridge.SECTION.claims(doc, PUBLISHED))
    assert v[IDENTITY] == "identity"
    assert [k for k in v if k.startswith("ridge V held")] and v[[k for k in v if k.startswith("ridge V held")][0]] == "info"
    assert (tmp_path / "ridge" / "figures" / "ridge.png").is_file()
