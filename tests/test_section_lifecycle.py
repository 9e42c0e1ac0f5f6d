"""The lifecycle section module: the split claims are judged on the authors' projections when the runs logged
them ("not measurable" otherwise) and the parameter-space view is information only; the probe rows from
today's probe output; the schedules as their own conditions; the intervention table from the runs' rows."""
import math

import pytest

from section_driver import PUBLISHED, TINY, drive, no_agrees_without_the_definition, verdicts
from tianref.analysis.records import read_run
from tianref.experiments import protocols
from tianref.experiments.reproduce.cells import scaled, stats
from tianref.experiments.reproduce.sections import lifecycle, lifecycle_probes as lp, lifecycle_wd as wd

G = "eta=0.0002"
BEFORE = "Before grokking the edge is gradient-driven (W)"


def _run(seed, pgfrac=None, palign=None, gfrac=0.3, cond=G):
    """A weight-decay run whose parameter-space gfrac (0.3: 'weight-decay') contradicts the authors' grad_frac."""
    ph = {}
    for name in ("memorisation", "grokking", "after"):
        p = {k: None for k in lifecycle.PHASE_KEYS}
        p.update(W_gfrac=gfrac, W_cos=-0.9, V_gfrac=gfrac, V_cos=-0.8)
        if pgfrac is not None:
            p.update(W_pgfrac=pgfrac[name], V_pgfrac=pgfrac[name], W_palign=palign, V_palign=palign)
        ph[name] = p
    logged = [f"{s}_{k}" for s in "WV" for k in ("gfrac", "cos")] + \
        ([f"{s}_{k}" for s in "WV" for k in ("pgfrac", "palign")] if pgfrac is not None else [])
    return {"tag": f"r{seed}", "seed": seed, "condition": cond, "t_mem": 17.0, "t05": 100.0, "t099": 139.0,
            "fire": 173.0, "phases": ph, "logged": logged}


def _doc(runs):
    st = {G: {"phases": {ph: {k: stats([r["phases"][ph][k] for r in runs]) for k in lifecycle.PHASE_KEYS}
                         for ph in ("memorisation", "grokking", "after")},
              **{k: stats([r[k] for r in runs]) for k in ("t_mem", "t05", "t099", "fire")}}}
    return {"section": "lifecycle", "scale": {"name": "full"}, "command": "", "n_runs": len(runs), "seeds": [0],
            "epochs": [600], "setup": {}, "lifecycle": {
                "grok": G, "runs": runs, "conditions": [G], "stats": st,
                "probes": {"n_random": 100, "rows": [], "table": [], "replay_issues": []},
                "intervention": {"length": 200, "source": "local", "note": "", "rows": []}}}


def test_run_counts_and_conditions():
    specs = protocols.section_runs("lifecycle")
    assert len(specs) == 15 + 25
    conds = {wd.condition(s.options | {"eta": s.options.get("eta", 2e-4)}, protocols.SCALES["full"]) for s in specs}
    assert conds == {"eta=0.0002", "eta=0", "switch", "eta x0 at 60", "eta x0.5 at 60", "eta x2 at 60",
                     "eta x0.5 at 250", "eta x2 at 250"}


def test_the_split_claims_use_the_authors_keys():
    authors = {"memorisation": 0.7, "grokking": 0.4, "after": 0.45}
    claims = lifecycle.SECTION.claims(_doc([_run(s, authors, palign=0.2) for s in range(5)]), PUBLISHED)
    v = verdicts(claims)
    kind = "in kind (their model: transformer on Dyck-1/SCAN)"
    assert v[BEFORE] == kind                                   # grad_frac 0.7 > 0.5, although gfrac is 0.3
    assert v["At grokking the edge becomes a weight-decay (compression) axis (V)"] == kind
    assert v["At grokking the gradient and weight-decay parts align (W)"] == kind
    c = [c for c in claims if c.claim == BEFORE][0]
    assert c.source.kind == "author-code" and "grad_vs_wd_decomposition.py @ e37417d" in c.source.ref
    view = [c for c in claims if c.claim.startswith("Parameter-space view")][0]
    assert view.rule == "info" and view.verdict == "info" and "W gfrac 0.3" in view.ours
    no_agrees_without_the_definition(claims)
    opposite = {"memorisation": 0.3, "grokking": 0.6, "after": 0.6}
    v = verdicts(lifecycle.SECTION.claims(_doc([_run(s, opposite, palign=-0.5) for s in range(5)]), PUBLISHED))
    assert v[BEFORE] == "disagrees" and v["At grokking the gradient and weight-decay parts align (V)"] == "disagrees"


def test_without_the_authors_keys_the_split_is_not_measurable():
    claims = lifecycle.SECTION.claims(_doc([_run(s) for s in range(5)]), PUBLISHED)
    split = [c for c in claims if c.source.kind == "author-code" and "grad_vs_wd" in c.source.ref]
    assert len(split) == 6 and all(c.verdict == "not measurable" for c in split)
    assert all("predate the authors' split" in c.note for c in split)
    assert "agrees" not in verdicts(claims).values()
    report = lifecycle.SECTION.report(_doc([_run(s) for s in range(5)]), PUBLISHED)
    assert report.count("| claim | source | ours | rule | verdict |") == 1 and "Notes to the claims" in report


def _probe(epoch, test_acc, dacc, dloss, proj, eps, eps_rel=1e-3, P=100):
    rnd = {"dloss_abl": {"mean": 1e-6}, "dacc_abl": {"mean": 0.0}, "proj": {"mean": 0.0, "std": 0.1}}
    return {"epoch": epoch, "space": "joint", "split": {"gfrac": 0.5, "cos": -0.9}, "replay_check": "",
            "probe": {"P": P, "test_acc": test_acc, "eps": eps, "eps_rel": eps_rel, "random": rnd,
                      "edge": {"dloss_abl": dloss, "dacc_abl": dacc, "proj": proj}, "ablation_ratio": abs(dloss) / 1e-6,
                      "flatness_ratio": 0.5}}


def test_probe_rows_and_claims_from_todays_probe_output():
    runs = [{"tag": "a", "condition": G, "seed": 0, "t099": 139.0}]
    # ||theta|| = eps / eps_rel = 2: f = proj^2 / 4; the random directions' E(proj^2) = 0.1^2
    probes = {"a": [_probe(100, 0.5, -0.3, 0.1, 1.0, 2e-3), _probe(175, 1.0, 0.0, -0.3, 1.2, 2e-3),
                    _probe(400, 1.0, 0.0, 0.01, 0.6, 2e-3)]}
    d = lp.probe_doc(probes, runs, 100)
    r = {x["epoch"]: x for x in d["rows"]}
    assert r[175]["f_edge"] == pytest.approx(1.2 ** 2 / 4) and r[175]["f_rand"] == pytest.approx(0.01 / 4)
    assert not r[100]["after_grok"] and r[175]["after_grok"] and r[400]["acc_removed"] == 1.0
    assert r[175]["ratio_acc"] == 0.0 and r[100]["ratio_acc"] == pytest.approx(0.3 / 1e-8)
    v = {c.claim: c for c in lp.probe_claims(d, G)}
    loss = v["After grokking, removing the edge raises the test loss > 4000× more than a random direction"]
    assert loss.ours.startswith("1/2 probes") and loss.source.kind == "rebuttal" and loss.verdict == "differs"
    assert v["After grokking, removing v1 leaves test accuracy at 1.0"].verdict == "agrees"
    assert v["... while it raises the train loss"].verdict == "not measurable"      # today's probe: no train loss
    acc = v["After grokking the edge is ablation-critical (> 4000× random, test accuracy)"]
    assert acc.source.kind == "author-code" and acc.verdict == "disagrees"          # Δacc = 0 after grokking
    no_agrees_without_the_definition(v.values())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("lifecycle")
    return root, *drive(lifecycle.SECTION, root)


def test_tiny_section_conditions_intervention_and_probes(tiny):
    root, doc, records = tiny
    d = doc["lifecycle"]
    switch = scaled(protocols.LIFECYCLE_SWITCH, TINY)
    assert "switch" in d["conditions"] and f"eta x0.5 at {scaled(60, TINY)}" in d["conditions"]
    assert sum(r["condition"] == "switch" for r in d["runs"]) == 1
    iv = d["intervention"]
    L = iv["length"]
    T0 = scaled(60, TINY)
    # at this scale the plain and switch runs end at 36 < switch + L: at T = switch only the intervention runs
    # (which run to T + L) have their T + L
    assert L == 30 and {(x["T"], x["m"]) for x in iv["rows"]} == \
        {(T0, m) for m in (0.0, 0.5, 1.0, 2.0)} | {(switch, 0.5), (switch, 2.0)}
    assert switch + L > max(r.n_epochs - 1 for r in records if not r.config.get("eta_schedule"))
    for x in iv["rows"]:                                       # the values are the runs' own rows at T and T + L
        rec = read_run(root / "lifecycle" / x["tag"])
        assert x["at_T"]["W_fro"] == rec.col("W_fro")[x["T"]] and x["at_TL"]["W_fro"] == rec.col("W_fro")[x["T"] + L]
        want = rec.col("W_fro")[x["T"] + L] / rec.col("W_fro")[x["T"]]
        assert x["ratio"]["W_fro"] == pytest.approx(want, rel=1e-15)            # the same float64 division
    probed = {r["tag"] for r in d["probes"]["rows"]}
    assert probed == {r.path.name for r in records if not r.config.get("eta_schedule")}
    assert all(r["gfrac"] == 1.0 for r in d["probes"]["rows"] if r["condition"] == "eta=0")   # no wd part
    assert len(list((root / "lifecycle" / "_probes").glob("*.json"))) == 2
    assert all(math.isfinite(r["f_edge"]) and 0 <= r["f_edge"] <= 1 for r in d["probes"]["rows"])
    report = lifecycle.SECTION.report(doc, PUBLISHED)
    assert "Weight-decay intervention" in report and "The edge probes" in report
    assert (root / "lifecycle" / "figures" / "lifecycle.png").is_file()


def test_intervention_module_plugs_in_when_present(tiny, monkeypatch):
    import sys
    import types
    root, _, records = tiny
    fake = types.ModuleType("tianref.analysis.wd_intervention")
    fake.intervention_table = lambda entries, length: [{"T": e["T"], "m": e["m"], "seed": e["seed"], "n": length}
                                                       for e in entries]
    monkeypatch.setitem(sys.modules, "tianref.analysis.wd_intervention", fake)
    out = wd.measure_intervention(records, TINY, protocols.scaled_eta(2e-4, TINY.eta_factor))
    assert out["source"] == "tianref.analysis.wd_intervention" and all(r["n"] == 30 for r in out["rows"])
