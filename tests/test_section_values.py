"""The reproduce sections' protocol values and small measurements, against their documented sources.

Sources: reference_results/paper/published.json (T3b's sigma1/sigma2 trajectory epochs, T8's eigenvalue epochs,
T5b's eta, the T4 rank check "at ep 200" of docs/paper-protocol.md §1), docs/groups.md §7 (the groups section's
runs), docs/reproduce.md (the lifecycle probes' epochs), the module docstrings' definitions (lifecycle phases
memorisation [t_mem, t05), grokking [t05, t099], after (t099, E], ending before a schedule's change at T;
c* = the smallest c where at least half the runs grok; Theorem 4's note only when every grid p exceeds p_crit;
"eta x0 from a T where test accuracy >= 0.99"), docs/math.md §10 (a ridge config.json without ridge_eval
reads as "current"), and direct computations on synthetic records (medians, sigma_i = column i - 1).
Each test fails on a single-point change of the value or comparison it names.
"""
import math
from pathlib import Path

import numpy as np
import pytest

from section_driver import PUBLISHED
from tianref.analysis.records import RunRecord
from tianref.experiments import protocols
from tianref.experiments.protocols_tian import p_crit
from tianref.experiments.reproduce import group_measure as gm
import tianref.experiments.reproduce.measures as ms
from tianref.experiments.reproduce.sections import REGISTRY
from tianref.experiments.reproduce.sections import critical, extended, headline, lifecycle, relu, ridge, scaling, window
from tianref.experiments.reproduce.sections import groups as gs
from tianref.experiments.reproduce.sections import lifecycle_probes as lp
from tianref.experiments.reproduce.sections import lifecycle_wd as wd

FULL = protocols.SCALES["full"]
T = PUBLISHED["tables"]


def record(name, config, **columns):
    n = len(next(iter(columns.values())))
    cols = {"epoch": np.arange(n, dtype=float), **{k: np.asarray(v, dtype=float) for k, v in columns.items()}}
    return RunRecord(path=Path(name), config=config, meta={}, columns=cols, n_rows=n)


def test_headline_reads_the_published_tables_epochs():
    assert headline.R12_EPOCHS == tuple(T["T3b"]["trajectory"]["epochs"])
    assert headline.SIGMA_EPOCHS == {g: tuple(r["epoch"] for r in T["T8"][g]) for g in ("grok", "control")}


def test_headline_control_late_test_accuracy_is_over_200_to_400():
    # the late range of T3 (epochs [200, 400], both ends included): rows 200-260 at 0.2, 261-400 at 0.6 give
    # 61 x 0.2 and 140 x 0.6, median 0.6 (over 200-300 it would be 0.2)
    acc = np.r_[np.zeros(200), np.full(61, 0.2), np.full(140, 0.6)]
    sig = np.ones((401, 5))
    recs = [record("c", {"eta": 0.0, "seed": 0, "windows": [20]}, test_acc=acc, W_sigma=sig)]
    assert headline.extras(recs, FULL)["control_test_acc_late"] == pytest.approx(0.6)


def test_extended_is_t5bs_eta():
    assert extended.ETA == T["T5b"]["setting"]["eta"]
    assert {s.options["eta"] for s in protocols.section_runs("extended")} == {extended.ETA}


def test_relu_ratio_names_are_their_sigma_indices():
    # "sA/sB" is sigma_A / sigma_B, and sigma_i is column i - 1 of W_sigma (measures.sigma)
    for name, (a, b) in relu.RATIOS.items():
        A, B = (int(x[1:]) for x in name.split("/"))
        assert (a, b) == (A - 1, B - 1), name


def test_window_rank_check_is_at_epoch_200():
    # T4's rank check reads sigma3, sigma4, sigma5 at ep 200 (docs/paper-protocol.md §1 T4)
    assert window.explain([], REGISTRY["window"].views(FULL), FULL)["epoch_q"] == 200


def test_scaling_cells_and_the_theorem4_note():
    s = {"M": 41, "p": 0.2, "grokked": False, "t099": None, "rho_fire": None, "lead": None, "status": "ok"}
    (row,) = scaling.cell_table([s])
    assert row["p_over_pcrit"] == pytest.approx(0.2 / (math.log(41) / 41), rel=1e-12)
    pc = p_crit(41)
    assert scaling.theorem4_note(41, [pc, 0.5]) == ""                      # p = p_crit is not above it
    assert scaling.theorem4_note(41, [pc * 1.01, 0.5]).startswith("every grid p of M = 41 exceeds p_crit")


def test_ridge_reads_a_config_without_ridge_eval_as_current():
    assert ridge.ridge_eval_of({}) == "current" and ridge.ridge_eval_of({"ridge_eval": "held"}) == "held"


def test_critical_code_multiplier_sits_in_half_open_intervals():
    c = critical.pt.TIAN_CRITICAL_C
    at_left = {"23": {"last_below": c, "first_ge_half": c + 1}}           # (c, c + 1] does not hold c
    assert critical.code_multiplier_note(at_left).endswith("inside no M's interval")
    at_right = {"23": {"last_below": c - 1, "first_ge_half": c}}          # (c - 1, c] holds it
    assert critical.code_multiplier_note(at_right).endswith("inside the interval of every M")
    above = dict(at_right, **{"25": {"last_below": c + 0.5, "first_ge_half": None}})   # (c + 0.5, inf): not c
    assert critical.code_multiplier_note(above).endswith("inside the interval of M = 23, outside that of M = 25")
    below = {"23": {"last_below": None, "first_ge_half": c}}             # (0, c] holds it
    assert critical.code_multiplier_note(below).endswith("inside the interval of every M")
    assert gs.C_TIAN == c                                                   # one constant of his code, twice


def test_c_star_is_where_at_least_half_grok():
    cells = [{"group": "S4", "c": 1.0, "n": 2, "n_grok": 0}, {"group": "S4", "c": 2.0, "n": 2, "n_grok": 1},
             {"group": "S4", "c": 3.0, "n": 2, "n_grok": 2}]
    assert gm.c_star(cells, "S4") == 2.0


def test_groups_runs_are_docs_groups_table():
    # docs/groups.md §7: K 512, lr 1e-3; main: train fraction 0.5 (S4 0.6), eta 2e-3 (A5 6e-4), 600 epochs
    # (S4 800, Q8xZ3 1200), seeds 0-2; critical: S4, Q8xZ3, p(c) = (d_max / 2) c ln|H| / |H|, c = 1..4 (capped
    # at 0.9), eta 2e-3, 1500 epochs, --metrics core, seeds 0-2
    runs = {s.tag: s.options for s in REGISTRY["groups"].runs(FULL)}
    E = {"Z23": 600, "Z4xZ6": 600, "D12": 600, "S4": 800, "Q8xZ3": 1200, "A5": 600}
    for g in ("Z23", "Z4xZ6", "D12", "S4", "Q8xZ3", "A5"):
        for s in range(3):
            o = runs.pop(f"{g}_seed{s}")
            assert (o["group"], o["K"], o["lr"], o["seed"], o["epochs"]) == (g, 512, 1e-3, s, E[g])
            assert (o["train_frac"], o["eta"]) == (0.6 if g == "S4" else 0.5, 6e-4 if g == "A5" else 2e-3), g
    d_max = {"S4": 3, "Q8xZ3": 2}
    for g in ("S4", "Q8xZ3"):
        for c in (1, 2, 3, 4):
            p = min(0.9, d_max[g] / 2 * c * math.log(24) / 24)
            for s in range(3):
                o = runs.pop(f"crit_{g}_c{c}_seed{s}")
                assert (o["eta"], o["epochs"], o["metrics"], o["K"], o["lr"]) == (2e-3, 1500, "core", 512, 1e-3)
                assert abs(o["train_frac"] - p) <= 5e-5, (g, c, o["train_frac"], p)   # rounded to 4 decimals
    assert runs == {}


def test_lifecycle_probe_epochs_are_docs_reproduce():
    assert lp.PROBE_EPOCHS == (50, 100, 125, 175, 250, 400)      # docs/reproduce.md, lifecycle row


def test_lifecycle_phases_end_where_the_docstring_says():
    # train accuracy >= 0.99 from 10, test accuracy >= 0.5 from 40 and >= 0.99 from 60, 100 epochs, eta -> 0 at 80
    t = np.arange(101)
    cfg = {"seed": 0, "eta": 2e-4, "windows": [20], "eta_schedule": [[0, 2e-4], [80, 0.0]]}
    test_acc = np.where(t >= 60, 1.0, np.where(t >= 40, 0.6, 0.1))
    rec = record("r", cfg, train_acc=np.where(t >= 10, 1.0, 0.5), test_acc=test_acc)
    ph = lifecycle.lifecycle_run(rec, FULL)["phases"]
    assert ph["memorisation"]["range"] == [10, 39]             # [t_mem, t05)
    assert ph["grokking"]["range"] == [40, 60]                 # [t05, t099]
    assert ph["after"]["range"] == [61, 79]                    # (t099, T): the change at T = 80 is not in it
    assert ph["after change"]["range"] == [100, 100]           # [T + w, E]


def test_the_intervention_after_grokking_needs_test_accuracy_099_at_T():
    rows = [{"m": 0.0, "at_T": {"test_acc": a}} for a in (0.99, 0.985, 1.0)]
    assert [r["at_T"]["test_acc"] for r in wd._after_grok(rows, 0.0)] == [0.99, 1.0]


def test_measures_helpers_by_direct_computation():
    assert ms.f_or_none(float("nan")) is None and ms.f_or_none(None) is None and ms.f_or_none(2) == 2.0
    assert ms.median([1.0, float("nan"), None, 3.0, 8.0]) == 3.0
    S = np.arange(30.0).reshape(6, 5)                                   # W_sigma: sigma_i in column i - 1
    r = record("r", {"eta": 0.0, "seed": 1, "windows": [20]}, W_sigma=S, V_sigma=-S)
    np.testing.assert_array_equal(ms.sigma(r, 1), S[:, 1])
    x = np.array([4.0, 5.0, 6.0])
    assert (ms.at(x, 0), ms.at(x, 2), ms.at(x, 3), ms.at(x, -1)) == (4.0, 6.0, None, None)
    old = record("o", {"eta": 0.0, "seed": 0}, W_sigma=S)                # a config written without "act"
    assert ms.by_eta([old], 0.0, "sqr") == [old] and ms.by_eta([old], 0.0, "relu") == []
    a = record("a", {"seed": 0}, W_gap23=np.ones(3), W_gap23_f32=np.ones(3))
    b = record("b", {"seed": 1}, W_gap23=np.ones(3))
    assert ms.logged_grams([a, b]) == ["main"] and "float32" in ms.logged_grams([a])


def test_the_command_flags_differs_and_disagrees():
    # docs/reproduce.md: the command's summary counts the claims judged "differs" or "disagrees" (flagged)
    from tianref.experiments.reproduce.claims import VERDICTS
    from tianref.experiments.reproduce.pipeline import FLAGGED
    assert sorted(FLAGGED) == ["differs", "disagrees"] and set(FLAGGED) <= set(VERDICTS)


def _checkpoint(path, M, K, n, rng):
    from tianref import runs
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    runs.save_npz(str(path), {"W": rng.standard_normal((2 * M, K)), "V": rng.standard_normal((K, M)),
                              "train_idx": rng.permutation(M * M)[:n], "epoch": np.int64(5)})


def test_ridge_limit_of_a_trained_v_uses_lambda_n_eta_over_2(tmp_path):
    # docs/math.md §10: lambda = n eta / 2 for a trained V (Adam's stationary V under coupled L2), the run's
    # --ridge-reg for the ridge top layer
    from tianref import runs
    _checkpoint(runs.checkpoint_path(str(tmp_path), 5), 5, 8, 12, np.random.default_rng(0))
    (row,) = ridge.ridge_gf_check(tmp_path, {"M": 5, "n_train": 12, "eta": 2e-3, "act": "sqr"}, [5])
    assert row["lam"] == pytest.approx(12 * 2e-3 / 2, rel=1e-15)
    (row,) = ridge.ridge_gf_check(tmp_path, {"M": 5, "n_train": 12, "eta": 2e-3, "act": "sqr",
                                             "top_layer": "ridge", "ridge_reg": 0.25}, [5])
    assert row["lam"] == 0.25


def test_theorem6_of_a_run_without_weight_decay_is_not_computed(tmp_path):
    # Theorem 6's B = (1/eta) I - ... needs eta > 0 (docs/theorem6.md); a final checkpoint exists
    from tianref import runs
    from tianref.config import TrainConfig
    _checkpoint(runs.checkpoint_path(str(tmp_path), final=True), 5, 8, 12, np.random.default_rng(1))
    cfg = TrainConfig(M=5, K=8, n_train=12, eta=0.0)
    assert gm.theorem6_final(tmp_path, cfg) is None
    assert gm.theorem6_final(tmp_path, cfg.replace(eta=2e-3)) is not None
