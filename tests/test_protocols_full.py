"""Every section's full-scale runs against the documented protocol, written out here as literals.

Sources: docs/paper-protocol.md §3-4 (the paper's sweep drivers: run_sweep.sh, relu_sweep.sh, window_sweep.sh,
eta_sweep.sh, scaling_sweep.sh, the eta = 1e-5 run continued to 2000 epochs; Theorem 6 at checkpoints
50/100/175/250/300) and docs/reproduce.md's section tables (the run counts, the lifecycle, clocks, critical,
muon and ridge grids, which are this project's design). The ci and smoke scales are checked end to end
elsewhere (tests/reproduce/test_golden_ci.py, test_conformance.py), but they keep at most two seeds and
shrink the epochs, so a wrong seed count, epoch count or full-scale grid value would pass there.

Each run is reduced to its train options with the eta schedule parsed to numbers; a section's runs must be
exactly the documented set, so a missing, extra or changed run fails.
"""
import math

from tianref.config import parse_eta_schedule
from tianref.data import n_train_from_frac
from tianref.experiments import protocols
from tianref.experiments.protocols_tian import p_crit

FULL = protocols.SCALES["full"]


def runs(section):
    """{tag: options} of a section at the full scale, the schedule as ((start, eta), ...)."""
    out = {}
    for s in protocols.section_runs(section, FULL):
        o = dict(s.options)
        if "eta_schedule" in o:
            o["eta_schedule"] = parse_eta_schedule(o["eta_schedule"])
        for k in ("windows", "checkpoint_epochs"):
            if k in o:
                o[k] = tuple(o[k])
        out[s.tag] = o
    return out


def as_set(opts):
    return sorted(tuple(sorted(o.items())) for o in opts)


def paper_grid(act, etas, seeds, epochs, **extra):
    """Runs with train's defaults for M, K, n_train (71, 2048, 2016: paper-protocol.md §3)."""
    return [dict(act=act, eta=eta, seed=s, epochs=epochs, windows=(20,), **extra) for eta in etas for s in seeds]


def test_the_paper_drivers():
    # run_sweep.sh: x^2, eta 2e-4 and 0, seeds 0-14, 400 epochs, W = 20 (30 runs)
    assert as_set(runs("headline").values()) == as_set(paper_grid("sqr", (2e-4, 0.0), range(15), 400))
    # relu_sweep.sh: relu, the same etas and seeds, 800 epochs (30 runs)
    assert as_set(runs("relu").values()) == as_set(paper_grid("relu", (2e-4, 0.0), range(15), 800))
    # window_sweep.sh: seeds 0-2, 400 epochs, W in {5, 10, 30} (and 20 from the headline), here in one run (6 runs)
    got = runs("window")
    assert {o["windows"][0] for o in got.values()} == {20}             # the default window stays the first
    assert as_set(got.values()) == as_set(
        [dict(o, windows=(20, 5, 10, 30)) for o in paper_grid("sqr", (2e-4, 0.0), range(3), 400)])
    # eta_sweep.sh: five etas, seeds 0-4, 600 epochs (25 runs)
    assert as_set(runs("eta").values()) == as_set(
        paper_grid("sqr", (1e-5, 5e-5, 1e-4, 2e-4, 5e-4), range(5), 600))
    # the eta = 1e-5 run continued: one seed, 2000 epochs
    assert as_set(runs("extended").values()) == as_set(paper_grid("sqr", (1e-5,), (0,), 2000))


def test_thm6_checkpoints():
    # x^2 checkpoints 50/100/175/250/300 (paper-protocol.md §3 "Theorem 6"), ReLU 100/300/500 (§5.1),
    # seeds 0-4 of the grok condition, --metrics core (docs/reproduce.md: 10 runs)
    want = (paper_grid("sqr", (2e-4,), range(5), 300, checkpoint_epochs=(50, 100, 175, 250, 300), metrics="core")
            + paper_grid("relu", (2e-4,), range(5), 500, checkpoint_epochs=(100, 300, 500), metrics="core"))
    assert as_set(runs("thm6").values()) == as_set(want)
    assert protocols.thm6_epochs("sqr") == [50, 100, 175, 250, 300]
    assert protocols.thm6_epochs("relu") == [100, 300, 500]


def test_lifecycle_and_its_intervention():
    # eta = 2e-4, eta = 0 and eta = 2e-4 -> 0 at epoch 250, seeds 0-4, 600 epochs; the intervention: eta = 2e-4
    # until T in {60, 250}, then eta x m, m in {0, 0.5, 2}, seeds 0-2, for 200 epochs; (250, 0) is the switch
    # run itself; every run --metrics core (docs/reproduce.md: 30 runs)
    want = paper_grid("sqr", (2e-4, 0.0), range(5), 600, metrics="core")
    want += [dict(act="sqr", seed=s, epochs=600, windows=(20,), metrics="core",
                  eta_schedule=((0, 2e-4), (250, 0.0))) for s in range(5)]
    want += [dict(act="sqr", seed=s, epochs=T + 200, windows=(20,), metrics="core",
                  eta_schedule=((0, 2e-4), (T, 2e-4 * m)))
             for T in (60, 250) for m in (0.0, 0.5, 2.0) if (T, m) != (250, 0.0) for s in range(3)]
    got = runs("lifecycle")
    assert len(got) == 30 and as_set(got.values()) == as_set(want)


def test_clocks():
    # x^2 with the paper's loss for 400 epochs; ReLU with --loss ce for 800; eta in {2e-4, 0}, seeds 0-4, core (20)
    want = (paper_grid("sqr", (2e-4, 0.0), range(5), 400, metrics="core")
            + paper_grid("relu", (2e-4, 0.0), range(5), 800, metrics="core", loss="ce"))
    assert as_set(runs("clocks").values()) == as_set(want)


def test_scaling_is_scaling_sweep_sh():
    # M in {41, 71, 127} x p in {0.1, 0.2, 0.3, 0.5}, seeds 0-4, eta 2e-4, 400/600/1000 epochs (60 runs)
    want = [dict(M=M, train_frac=p, eta=2e-4, act="sqr", seed=s, epochs=E)
            for M, E in ((41, 400), (71, 600), (127, 1000)) for p in (0.1, 0.2, 0.3, 0.5) for s in range(5)]
    got = runs("scaling")
    assert as_set(got.values()) == as_set(want)
    # the training sizes the paper's driver used (paper-protocol.md §3, "Split")
    n = {(o["M"], n_train_from_frac(o["M"], o["train_frac"])) for o in got.values()}
    assert n == {(41, 168), (41, 336), (41, 504), (41, 840), (71, 504), (71, 1008), (71, 1512), (71, 2520),
                 (127, 1613), (127, 3226), (127, 4839), (127, 8064)}


def test_critical():
    # M in {23, 41, 71} x p = c ln M / M, c in {0.5, 1, 1.5, 2, 3}, seeds 0-2, eta 5e-4, 1500 epochs, core (45)
    got = list(runs("critical").values())
    assert len(got) == 45
    assert {(o["M"], o["seed"]) for o in got} == {(M, s) for M in (23, 41, 71) for s in range(3)}
    assert all((o["eta"], o["epochs"], o["act"], o["metrics"]) == (5e-4, 1500, "sqr", "core") for o in got)
    for M in (23, 41, 71):
        cs = sorted(o["train_frac"] / (math.log(M) / M) for o in got if o["M"] == M and o["seed"] == 0)
        # train_frac is stored to 6 decimals: c to within 1e-6 / p_crit(M) <= 1e-5
        assert all(abs(c - want) < 1e-5 for c, want in zip(cs, (0.5, 1.0, 1.5, 2.0, 3.0))) and len(cs) == 5, (M, cs)
    assert abs(p_crit(71) - math.log(71) / 71) < 1e-15                  # the natural logarithm


HEADLINE = dict(M=71, K=2048, train_frac=0.4, eta=2e-4, act="sqr", epochs=400)


def test_muon():
    # the headline configuration, adam vs muon, seeds 0-4 (10); Tian's defaults (M 127, K 512, p 0.3, lr 1e-3,
    # eta 1e-4, 3000 epochs, checkpoints 0/250/500/1000/2000/3000), adam vs muon x {ce with a trained V, the
    # class-centred MSE with the ridge V (lambda 1e-3)}, seeds 0-2 (12)
    want = [dict(HEADLINE, optimizer=o, seed=s) for o in ("adam", "muon") for s in range(5)]
    tian = dict(M=127, K=512, train_frac=0.3, lr=1e-3, eta=1e-4, act="sqr", epochs=3000,
                checkpoint_epochs=(0, 250, 500, 1000, 2000, 3000))
    variants = (dict(loss="ce", top_layer="trained"), dict(loss="tian", top_layer="ridge", ridge_reg=1e-3))
    want += [dict(tian, **v, optimizer=o, seed=s) for v in variants for o in ("adam", "muon") for s in range(3)]
    assert as_set(runs("muon").values()) == as_set(want)


def test_ridge():
    # the headline configuration, top layer trained vs ridge (lambda 1e-3), seeds 0-2, checkpoints
    # 0/25/50/100/150/200/300/400 (6 runs)
    cks = (0, 25, 50, 100, 150, 200, 300, 400)
    want = [dict(HEADLINE, top_layer="trained", seed=s, checkpoint_epochs=cks) for s in range(3)]
    want += [dict(HEADLINE, top_layer="ridge", ridge_reg=1e-3, seed=s, checkpoint_epochs=cks) for s in range(3)]
    assert as_set(runs("ridge").values()) == as_set(want)
