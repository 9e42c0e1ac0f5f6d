"""The eta section's claims: the regression t_ρ = a·t0.5 + b and the leads, on runs with known answers."""
import math

from tianref.experiments.reproduce.reporting import claims_block
from tianref.experiments.reproduce.sections.eta import SECTION

from .conftest import FULL_SCALE, condition, find, stat


def test_eta_regression_and_leads(pub):
    # grokking runs with t_rho = 0.8 t05 - 75 exactly: slope 0.8, intercept -75, R^2 = 1
    conds = []
    for k, p in enumerate(pub["tables"]["T5"]["rows"]):
        runs = []
        for s in range(5):
            t05 = None if p["eta"] == 1e-5 else 100.0 + 40 * k + 10 * s
            runs.append({"t05": t05, "t099": None if t05 is None else t05 + 40,
                         "rho_fire": None if t05 is None else 0.8 * t05 - 75})
        conds.append(dict(condition(f"eta={p['eta']:g}", p["eta"], {
            "rho_fire": stat(1.0), "t05": stat(2.0), "fire": stat(3.0), "late": stat(4.0)}, runs=runs), n=5))
        conds[-1]["stats"]["lead_rho_of_medians"] = 10.0 * (k + 1)
    doc = {"section": "eta", "scale": dict(FULL_SCALE),
           "views": [{"name": "late 300-600", "summary": {"options": {"late_lo": 300, "late_hi": 600},
                                                           "conditions": conds}}]}
    claims = SECTION.claims(doc, pub)
    reg = {c.claim.split(": ")[1]: c for c in claims if c.claim.startswith("regression")}
    assert set(reg) == {"slope", "intercept", "R²"}
    assert math.isclose(float(reg["slope"].ours), 0.8) and math.isclose(float(reg["intercept"].ours), -75)
    assert math.isclose(float(reg["R²"].ours), 1.0) and reg["R²"].note == "n = 20 runs (paper: 20)"
    pos = find(claims, "lead t0.5 − t_ρ positive, runs: 20/20")
    assert (pos["ours"], pos["rule"], pos["verdict"]) == ("20/20", "same-count", "agrees")
    n1 = find(claims, "η=1e-05: groks (t0.5 and t0.99 reached), n/N, eta=1e-05: 0/5")
    assert (n1["ours"], n1["verdict"]) == ("0/5", "agrees")
    lag = find(claims, "η=0.0002: lag, median fire − median t0.5, eta=0.0002: 72")
    assert lag["ours"] == "1" and lag["rule"] == "info"                   # 3 - 2
    # T5 is findings.md's table; the 20/20 positive leads and their range 79-154 are also the paper's words
    # (its §6: "positive lead in 20/20 grokking runs ..., range 79-154 epochs"), so those rows are the paper's
    text = [c for c in claims if c.claim.startswith(("lead t0.5 − t_ρ positive", "range of the per-η leads"))]
    assert len(text) == 3 and all(c.source.kind == "paper" and "§6" in c.source.ref for c in text)
    assert all(c.source.kind == "findings" for c in claims if c not in text)
    lock = find(claims, "η=0.0005: lock-in, slope fire (epoch), eta=0.0005")
    # an info row says how far ours is from the paper's (the stored 225 vs 553 read 'info' with no word of it)
    assert lock["verdict"] == "info" and lock["note"].startswith("ours 3 = ×0.0054 of the paper's 553; T5 prints")
    lag5 = find(claims, "η=0.0005: lag, median fire − median t0.5")
    assert lag5["note"].startswith("ours − the paper's = -450 epochs")                # 3 - 2 = 1 vs 451
    # one epoch is singular (the stored η = 1e-4 row read "ours − the paper's = 1 epochs")
    from tianref.experiments.reproduce.sections.eta import lag_note
    assert lag_note(200 - 100, 99).startswith("ours − the paper's = 1 epoch;")
    assert lag_note(98, 99).startswith("ours − the paper's = -1 epoch;")
    assert lag_note(101, 99).startswith("ours − the paper's = 2 epochs;")
    assert lag_note(None, 99) == "" and lag_note(1, None) == ""
    assert any("×0.0054 of the paper's 553" in line for line in claims_block(claims))   # rendered
    assert lock["source_text"] == "paper repository findings.md: T5 §5.6"


def _doc(pub, edit=lambda k, s, run: run, fire=None, explain=None):
    """The runs of test_eta_regression_and_leads (t_rho = 0.8 t05 - 75), each passed through ``edit``."""
    conds = []
    for k, p in enumerate(pub["tables"]["T5"]["rows"]):
        runs = []
        for s in range(5):
            t05 = None if p["eta"] == 1e-5 else 100.0 + 40 * k + 10 * s
            runs.append(edit(k, s, {"t05": t05, "t099": None if t05 is None else t05 + 40,
                                    "rho_fire": None if t05 is None else 0.8 * t05 - 75}))
        conds.append(dict(condition(f"eta={p['eta']:g}", p["eta"], {
            "rho_fire": stat(1.0), "t05": stat(2.0), "fire": fire or stat(3.0), "late": stat(4.0)}, runs=runs), n=5))
    doc = {"section": "eta", "scale": dict(FULL_SCALE),
           "views": [{"name": "late 300-600", "summary": {"options": {"late_lo": 300, "late_hi": 600},
                                                           "conditions": conds}}]}
    if explain is not None:
        doc["explain"] = explain
    return doc


def test_eta_groks_ties_and_the_lead_range(pub):
    # per condition k = 1..4 the runs' medians are t05 = 120 + 40 k and t_rho = 0.8 t05 - 75, so the lead of the
    # medians is 99 + 8 k: 107 .. 131
    claims = SECTION.claims(_doc(pub), pub)
    assert find(claims, "range of the per-η leads (min)")["ours"] == "107"
    assert find(claims, "range of the per-η leads (max)")["ours"] == "131"

    def edit(k, s, run):
        if (k, s) == (1, 0):                  # reaches t0.5, never t0.99: not a grokking run
            return dict(run, t099=None)
        if (k, s) == (2, 0):                  # t_rho = t0.5: a lead of 0 is not positive
            return dict(run, rho_fire=run["t05"])
        return run
    claims = SECTION.claims(_doc(pub, edit), pub)
    assert find(claims, "η=5e-05: groks (t0.5 and t0.99 reached), n/N")["ours"] == "4/5"
    assert find(claims, "lead t0.5 − t_ρ positive, runs")["ours"] == "18/19"


def test_eta_lockin_note_gives_the_median_and_points_to_the_table_only_when_there_is_one(pub):
    fire = stat(3.0, 2.0, 5.0)                                   # median 3 inside a wider IQR
    lock = find(SECTION.claims(_doc(pub, fire=fire), pub), "η=0.0005: lock-in, slope fire (epoch)")
    assert lock["note"] == "ours 3 = ×0.0054 of the paper's 553; T5 prints no range, so the row is shown, not judged"
    lock = find(SECTION.claims(_doc(pub, fire=fire, explain={"etas": []}), pub), "η=0.0005: lock-in, slope fire")
    assert lock["note"].startswith("ours 3 = ×0.0054") and lock["note"].endswith("threshold' below")
