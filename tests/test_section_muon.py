"""The muon section module: the outcome labels of the runs, the diversity claim's rule at matching checkpoints,
and the one place the diversity of W enters (checkpoint_diversity, with tianref.fourier.diversity stubbed)."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from section_driver import PUBLISHED, no_agrees_without_the_definition, verdicts
from tianref import fourier, runs
from tianref.experiments import protocols
from tianref.experiments.reproduce.runstats import group_summary, outcome
from tianref.experiments.reproduce.sections import muon


def _run(opt, seed, variant="headline", grok=False, fit=True, div=None, E=400):
    g = opt if variant == "headline" else f"{variant} {opt}"
    return {"run": f"{opt}_seed{seed}", "optimizer": opt, "seed": seed, "variant": variant, "group": g,
            "grokked": grok, "fit": fit, "epochs": E, "t05": None, "t099": 100.0 if grok else None,
            "final": {k: (1.0 if fit else 0.5) if k == "train_acc" else 0.0 for k in
                      ("train_acc", "test_acc", "train_loss", "freq_coverage", "freq_purity_med", "ftf_ratio",
                       "indep_cos_med", "energy_med")}, "diversity": div}


def _div(cov, ent, n_pure=10):
    return {str(e): {"n_units": 16, "n_pure": n_pure, "coverage": c, "entropy": h, "entropy_norm": None}
            for e, c, h in zip((0, 250, 500), cov, ent)}


def _doc(per_run):
    return {"section": "muon", "scale": {"name": "full"}, "command": "", "n_runs": len(per_run), "seeds": [0, 1, 2],
            "epochs": [400], "setup": {}, "muon": {"per_run": per_run, "groups": group_summary(per_run, "group"),
                                                  "diversity_available": True, "purity_min": 0.9}}


def test_run_counts():
    mu = protocols.section_runs("muon")
    assert len(mu) == 10 + 12 and sum(s.tag.startswith("tian_") for s in mu) == 12
    assert {muon.variant_of(SimpleNamespace(path=Path(s.tag))) for s in mu} == {"headline", "ce", "mse"}


def test_the_headline_muon_runs_are_labelled_memorising_never_not_learning():
    per_run = [_run("adam", s, grok=True) for s in range(5)] + [_run("muon", s) for s in range(5)]
    g = group_summary(per_run, "group")
    assert g["muon"]["outcome"] == "memorises, does not generalise in 400 epochs (5/5 reach train accuracy ≥ 0.99)"
    assert g["adam"]["outcome"] == "generalises (5/5)"
    doc = _doc(per_run)
    report = muon.SECTION.report(doc, PUBLISHED)
    assert "memorises, does not generalise in 400 epochs" in report and "does not learn" not in report
    assert outcome([_run("muon", 0, fit=False)]).startswith("fits neither set")


def test_diversity_claim_compares_the_two_only_where_both_have_generalised():
    # Tian's claim is about the interactive stage (Stage III); our proxy: both runs have generalised by the
    # checkpoint. Adam groks at 100 (before 250), Muon at t099_muon: only later checkpoints are compared.
    def claims(muon_cov, muon_ent, t099_muon=400.0, n_pure=10, M=None):
        per_run = [_run("adam", s, "mse", grok=True, div=_div([1, 3, 4], [0.1, 1.0, 1.2])) for s in range(3)] + \
                  [_run("muon", s, "mse", grok=t099_muon is not None,
                        div=_div([9, *muon_cov[s]], [9.0, *muon_ent[s]], n_pure)) for s in range(3)]
        for r in per_run:
            r["M"] = M
            if r["optimizer"] == "muon":
                r["t099"] = t099_muon
        cs = muon.SECTION.claims(_doc(per_run), PUBLISHED)
        no_agrees_without_the_definition(cs)
        return {c.claim.split(": ")[1].split()[0]: c for c in cs if c.claim.startswith("[mse]")}
    # Muon still memorising at 250 (nothing pure), ahead at 500 where both have generalised: the claim holds;
    # counting the epoch-250 pairs (different stages) made it 3/6, 'differs'
    late = claims([(0, 5)] * 3, [(0.0, 2.0)] * 3)
    assert late["coverage"].verdict.startswith("in kind (") and late["entropy"].verdict.startswith("in kind (")
    assert late["coverage"].ours.startswith("Muon > Adam in 3/3, Adam > Muon in 0/3 (seed, checkpoint) pairs where "
                                            "both have generalised (epochs [500])")
    # a tie in every in-stage pair is no evidence either way: 'differs', not 'disagrees' (most-runs read 0/3 as
    # the opposite)
    tie = claims([(0, 4)] * 3, [(0.0, 1.2)] * 3)
    assert tie["coverage"].verdict == "differs" and tie["entropy"].verdict == "differs"
    # Adam ahead in every in-stage pair: the opposite
    fewer = claims([(0, 2)] * 3, [(0.0, 0.5)] * 3)
    assert fewer["coverage"].verdict == "disagrees" and fewer["entropy"].verdict == "disagrees"
    # Muon generalising at 250 brings the epoch-250 pairs in
    both = claims([(5, 5)] * 3, [(2.0, 2.0)] * 3, t099_muon=250.0)
    assert "Muon > Adam in 6/6" in both["coverage"].ours and "epochs [250, 500]" in both["coverage"].ours
    # Muon never generalises: the stage is never reached, nothing to compare
    never = claims([(5, 6)] * 3, [(2.0, 2.0)] * 3, t099_muon=None)
    assert never["coverage"].verdict == "not measurable" and "does not reach the interactive stage" in \
        never["coverage"].note
    # Adam never generalises (Muon does): the note names Adam, not Muon
    per_run = [_run("adam", s, "mse", grok=False, div=_div([1, 3, 4], [0.1, 1.0, 1.2])) for s in range(3)] + \
              [_run("muon", s, "mse", grok=True, div=_div([1, 5, 5], [0.1, 2.0, 2.0])) for s in range(3)]
    rows = [c for c in muon.SECTION.claims(_doc(per_run), PUBLISHED) if c.claim.startswith("[mse]")]
    assert all(c.verdict == "not measurable" and "Adam does not reach the interactive stage" in c.note
               and "Muon does not" not in c.note for c in rows)
    # Adam at the coverage ceiling floor((M - 1)/2) = 4 (M = 9) in every in-stage pair: the note says so
    capped = claims([(0, 4)] * 3, [(0.0, 1.2)] * 3, M=9)
    assert "at its ceiling 4" in capped["coverage"].note and "ceiling" not in capped["entropy"].note
    assert "ceiling" not in claims([(0, 4)] * 3, [(0.0, 1.2)] * 3, M=11)["coverage"].note


def test_without_diversity_the_claim_is_not_measurable():
    per_run = [_run("adam", 0, "ce"), _run("muon", 0, "ce")]
    doc = _doc(per_run)
    doc["muon"]["diversity_available"] = False
    v = verdicts(muon.SECTION.claims(doc, PUBLISHED))
    assert all(x == "not measurable" for k, x in v.items() if k.startswith("[ce]"))
    assert "not measured: tianref.fourier.diversity is not available" in muon.SECTION.report(doc, PUBLISHED)


def test_checkpoint_diversity_reads_each_checkpoints_W(tmp_path, monkeypatch):
    M, K = 5, 6
    rng = np.random.default_rng(0)
    Ws = {e: rng.standard_normal((2 * M, K)).astype(np.float32) for e in (0, 7)}
    for e, W in Ws.items():
        path = Path(runs.checkpoint_path(str(tmp_path), e))
        path.parent.mkdir(parents=True, exist_ok=True)
        runs.save_npz(str(path), {"W": W, "V": np.zeros((K, M), np.float32)})
    rec = SimpleNamespace(path=tmp_path, config={"M": M, "checkpoint_epochs": [0, 7, 9]})     # 9: not stored
    seen = []

    def fake(xp, W, M_, purity_min=0.9):
        seen.append((W.copy(), M_, purity_min))
        return {"n_units": W.shape[1], "n_pure": 2, "coverage": float(W[0, 0] > 0), "entropy": float(abs(W[0, 0])),
                "entropy_norm": 0.5, "hist": [1, 1]}
    monkeypatch.setattr(fourier, "diversity", fake, raising=False)
    out = muon.checkpoint_diversity(rec)
    assert sorted(out) == ["0", "7"] and all(m == M and p == 0.9 for _, m, p in seen)
    for e, W in Ws.items():
        assert out[str(e)]["entropy"] == float(abs(W[0, 0])) and out[str(e)]["n_units"] == K
    monkeypatch.delattr(fourier, "diversity", raising=False)
    assert muon.checkpoint_diversity(rec) is None


def test_the_reading_table_takes_every_seeds_pair_at_an_epoch_it_shows():
    """A checkpoint is shown where some run has a pure unit; its medians and counts are over every seed, a pair
    without a pure unit at 0 (the pair was left out, so a row read '0/1' of two seeds and its 'median over
    seeds' was the one other seed's value)."""
    per_run = [_run("adam", 0, "ce", div=_div((0, 0, 0), (0, 0, 0), n_pure=0)),
               _run("muon", 0, "ce", div=_div((0, 0, 0), (0, 0, 0), n_pure=0)),
               _run("adam", 1, "ce", div=_div((0, 1, 3), (0, 0.5, 1.0))),
               _run("muon", 1, "ce", div=_div((0, 0, 2), (0, 0, 0.7), n_pure=0))]
    pairs = muon.diversity_pairs(per_run, "ce", "coverage")
    assert sorted(pairs) == ["250", "500"]                       # epoch 0 is never shown
    assert pairs["250"] == [(0, 0.0, 0.0), (1, 1, 0.0)]          # seed 0's pair counts, at 0
    none = [_run(o, s, "ce", div=_div((0, 0, 0), (0, 0, 0), n_pure=0)) for o in ("adam", "muon") for s in (0, 1)]
    assert muon.diversity_pairs(none, "ce", "coverage") == {}    # no pure unit anywhere: no row
