"""Rules of the verdicts, event flags, clocks and run identity that a mutation audit found unguarded: each test
pins a documented rule with a hand-built input whose answer is derived by hand from the module's docstring.
Every test is fast (no training, no I/O beyond tmp_path) and deterministic."""
import math

import numpy as np
import pytest

from tianref import identity
from tianref.analysis import event_flags as ef
from tianref.errors import InputError
from tianref.experiments.reproduce.rows import find_condition

F = "f" * 64                                   # a run's fingerprint (any 64 hex digits)


# --- rows.find_condition: the activation selects the condition ------------------------------------------

def _cond(label, eta, act=None):
    cfg = {"eta": eta, "M": 97}
    if act is not None:
        cfg["act"] = act
    return {"label": label, "config": cfg, "n": 1, "runs": [], "stats": {}}


def test_find_condition_picks_the_asked_activation_whatever_the_order():
    """A summary holding x² (no 'act' key: the default 'sqr') and ReLU runs at one eta: the relu section asks
    for act='relu' and must get the ReLU condition even when the x² one is listed first; act=None or 'sqr'
    gets the x² one; an activation with no run gives None."""
    sqr, relu, ctrl = _cond("x2", 2e-4), _cond("relu", 2e-4, "relu"), _cond("relu ctrl", 0.0, "relu")
    s = {"conditions": [sqr, relu, ctrl]}
    assert find_condition(s, 2e-4, "relu") is relu
    assert find_condition(s, 2e-4, "sqr") is sqr
    assert find_condition(s, 2e-4) is sqr
    assert find_condition(s, 0.0, "relu") is ctrl
    assert find_condition(s, 0.0, "sqr") is None
    assert find_condition(s, 1e-3, "relu") is None


# --- event_flags: a run whose grokking is unknown is never counted as firing without grokking ------------

def test_fired_without_grok_is_empty_when_grokking_is_unknown():
    """docs: 'The detectors that fired in a run that never reached test accuracy 0.5 ([] when it did or
    unknown)': grokked None (test accuracy not logged, or a stored summary crossed at halfmax) names none."""
    fired = {"fire": 120.0, "rho_fire": 30.0, "r12_ge100": 50.0}
    assert ef.fired_without_grok(fired, None) == []
    assert ef.fired_without_grok(fired, True) == []
    assert ef.fired_without_grok(fired, False) == ["fire", "rho_fire", "r12_ge100"]


@pytest.mark.parametrize("options, logged", [({"crossing": "halfmax"}, True), ({}, False)])
def test_a_stored_row_of_unknown_grokking_counts_no_fire_without_grok(options, logged):
    """A per-run row stored before the flags (no 'grokked', no 'fire_without_grok'), with no t05 and fired
    detectors: t05 None reads as 'never grokked' only when the summary crossed at 0.5 ('first') and logged
    test accuracy; at halfmax, or without test accuracy, grokking is unknown, so nothing is counted."""
    run = {"t05": None, "t099": None, "fire": 120.0, "rho_fire": 30.0}
    cond = {"runs": [run], "stats": {"t05": {"n": 1, "n_fired": 0} if logged else None}}
    assert ef.run_flags(run, options, logged)["grokked"] is None
    assert ef.run_flags(run, options, logged)["fire_without_grok"] == []
    counts = ef.condition_flags(cond, options)["fire_without_grok"]
    assert counts["fire"] == 0 and counts["rho_fire"] == 0
    # the same row in a summary that crossed at 0.5 and logged test accuracy: both detectors are counted
    cond1 = {"runs": [run], "stats": {"t05": {"n": 1, "n_fired": 0}}}
    counts1 = ef.condition_flags(cond1, {"crossing": "first"})["fire_without_grok"]
    assert counts1["fire"] == 1 and counts1["rho_fire"] == 1


# --- identity: seals and the identity block -------------------------------------------------------------

def _meta(**block):
    return {"config": {}, "identity": {"scheme": 1, "fingerprint": F, "init": "seed", "split": "s" * 64, **block}}


@pytest.mark.parametrize("epoch, after, refused", [(5, 4, True), (5, 5, False), (0, -1, True), (3, 10, False)])
def test_check_state_needs_a_seal_on_every_state_after_sealed_after(epoch, after, refused):
    """identity.check_state: 'a state of an epoch after its identity's SEALED_AFTER must carry a seal': an
    unsealed state at epoch sealed_after + 1 (5 after 4; 0 after -1) is refused, one at sealed_after or
    before is read as a pre-seal state."""
    ck = {"epoch": np.array(epoch), "W": np.zeros((2, 2))}          # no state_digest: unsealed
    if refused:
        with pytest.raises(InputError, match="carries no seal"):
            identity.check_state(ck, "ck.npz", _meta(sealed_after=after))
    else:
        identity.check_state(ck, "ck.npz", _meta(sealed_after=after))


def test_check_checkpoint_refuses_a_fingerprinted_state_beside_a_config_without_identity():
    """identity.check_checkpoint: a checkpoint that records a fingerprint, read beside a config.json with no
    'identity' block, is an edit (InputError), even when no final or resume state exists for check_log to
    catch it; the same config.json beside an old checkpoint without a fingerprint is read."""
    ck = {"epoch": np.array(10), "W": np.zeros((2, 2)), "fingerprint": np.array(F), "rows_digest": np.array(F)}
    with pytest.raises(InputError, match="no 'identity' block"):
        identity.check_checkpoint({"config": {}}, ck, "epoch_00010.npz")
    identity.check_checkpoint({"config": {}}, {"epoch": np.array(10), "W": np.zeros((2, 2))}, "epoch_00010.npz")
    identity.check_checkpoint(_meta(sealed_after=20), ck, "epoch_00010.npz")       # unsealed, epoch <= 20


# --- claims: the identity rule's tolerance ---------------------------------------------------------------

@pytest.mark.parametrize("residual, outcome", [(0.0, "identity"), (1e-4, "identity"), (2e-4, "fail"),
                                               (5e-4, "fail"), (1e-3, "fail"), (float("nan"), "undefined")])
def test_identity_rule_holds_only_to_rel_tol(residual, outcome):
    """docs/claims.md: 'an algebraic identity holds to rel_tol' with rel_tol = 1e-4: a residual of 1e-4 is the
    identity, any larger one (2e-4, 5e-4, 1e-3) fails; NaN is undefined."""
    from tianref.experiments.reproduce.claims import RULES, verdict_of
    assert RULES["identity"].thresholds == {"rel_tol": 1e-4}
    assert RULES["identity"].judge(residual) == outcome
    assert verdict_of(outcome, True) == {"identity": "identity", "fail": "differs",
                                         "undefined": "not measurable"}[outcome]


# --- rows.ClaimList.value: a lead undefined in some runs keeps the others' number ------------------------

def _lead_doc(lead_rows):
    runs = []
    for i, (rho, started) in enumerate(lead_rows):
        runs.append({"seed": i, "t05": 100.0, "rho_fire": rho, "from_start": ["rho_fire"] if started else [],
                     "lead_rho": None if started else 100.0 - rho, "grokked": True, "fire_without_grok": []})
    c = {"label": "eta=0.0002", "config": {"eta": 2e-4}, "n": len(runs), "runs": runs,
         "stats": {"t05": {"n": len(runs), "n_fired": len(runs), "median": 100.0, "q25": 100.0, "q75": 100.0},
                   "lead_rho": {"n": 1, "n_fired": 1, "median": 0.0, "q25": 0.0, "q75": 0.0}}}
    return {"scale": {"name": "full"}, "views": [{"summary": {"conditions": [c], "options": {}}}]}, c


def test_a_lead_undefined_in_some_runs_still_shows_the_defined_runs_number():
    """rows.ClaimList.value: a lead (t05 - rho_fire) undefined in 1 of 2 runs (rho_tian >= its threshold
    from row 0) is shown as the other run's cell, 'median [IQR] fired/n' = '50 [50, 50] 1/2', followed by
    'undefined in 1/2 (...)'; only when no run has it defined is the number left out."""
    from tianref.experiments.reproduce.claims import Source
    from tianref.experiments.reproduce.rows import ClaimList
    doc, c = _lead_doc([(0.0, True), (50.0, False)])
    L = ClaimList(doc)
    L.value("lead", c, "lead_rho", 70.0, source=Source("paper", "T1"))
    assert L[0].ours == "50 [50, 50] 1/2; undefined in 1/2 (rho_tian >= its threshold from row 0)"
    assert L[0].rule == "info"
    doc, c = _lead_doc([(0.0, True), (0.0, True)])
    L = ClaimList(doc)
    L.value("lead", c, "lead_rho", 70.0, rng=(60.0, 80.0), source=Source("paper", "T1"))
    assert L[0].ours == "undefined in 2/2 (rho_tian >= its threshold from row 0)"
    assert L[0].verdict == "not measurable"


# --- clock_events: short runs, the persistence window, the outcome tolerance ----------------------------

def test_first_sustained_accepts_a_series_exactly_one_window_long():
    """first_sustained: 'first t with ok[s] true for every s in [t, t + persist) inside the series': a series
    of exactly persist rows, all true, holds from t = 0; one row shorter has no window (NaN)."""
    from tianref.analysis import clock_events as ce
    assert ce.first_sustained([True] * 5, 5) == 0.0
    assert math.isnan(ce.first_sustained([True] * 4, 5))
    assert ce.first_sustained([False] + [True] * 5, 5) == 1.0
    assert ce.t_margin(np.ones(50)) == 0.0                      # P = 50 rows of margin > 0, P = 50
    assert ce.t_cls(np.r_[1.0, np.full(50, 1e-3)]) == 1.0       # rows 1..50: 51 rows, the window [1, 51)


@pytest.mark.parametrize("x, censored", [
    ([1.0] * 8 + [2.0, 2.0], True),       # n = 10, k = max(ceil(1), 2) = 2: t_rep = 8 >= n - k = 8
    ([1.0] * 3 + [2.0, 2.0], True),       # n = 5, k = 2: t_rep = 3 >= 3
    ([1.0] * 2 + [2.0] * 3, False),       # n = 5: t_rep = 2 < 3 and the last 2 rows do not move
    ([1.0] * 10 + [2.0] * 10, False),     # n = 20, k = 2: t_rep = 10 < 18
])
def test_censoring_reads_at_least_the_last_two_rows(x, censored):
    """rep_censored: k = max(ceil(CENSOR_FRAC n), 2) rows, so a short run (n <= 10, ceil(0.1 n) = 1) is still
    read over its last 2 rows: a t_rep in them is censored (the run ended before the statistic was seen to
    settle). t_rep by hand: the first row from which x stays within 5 % of its last value."""
    from tianref.analysis import clock_events as ce
    ev = ce.structural_events(np.array(x))
    assert ev["t_rep"] == float(np.flatnonzero(np.array(x) != x[-1])[-1] + 1)
    assert ev["t_rep_censored"] is censored


def _clock_columns():
    n = 200
    t = np.arange(n)
    return {"train_loss": np.where(t < 20, 1.0, 1e-3),          # t_cls = 20 (<= 1e-2 x row 0 from 20 on)
            "test_acc": np.where(t < 60, 0.0, 1.0),              # t099 = 60
            "W_srank": np.where(t < 90, 10.0, 5.0)}              # settles at 90 (every window from 90 is flat)


def test_the_outcome_tolerance_uses_the_persistence_window_passed_in():
    """clock_events passes its P as TOL_ROWS (module docstring: 'TOL_ROWS = P ... clock_events passes its
    P'). With P = 10: T_cls = 20, T_rep = t_rep_settled = 90 (the jump at 90 is inside the windows starting at
    81..89), T_test = 60, tol = max(10, 0.25 x 60) = 15: T_test < T_rep - tol (60 < 75) reads
    test-before-structure. With the default P = 50, tol = 50 and |60 - 90| <= 50: two-clocks."""
    from tianref.analysis import clock_events as ce
    ev = ce.clock_events(_clock_columns(), persist=10)
    assert (ev["t_cls"], ev["t099"], ev["t_rep_settled"], ev["t_rep_censored"]) == (20.0, 60.0, 90.0, False)
    assert ev["clock_outcome"] == "test-before-structure"
    ev50 = ce.clock_events(_clock_columns())
    assert (ev50["t_cls"], ev50["t_rep_settled"]) == (20.0, 90.0)
    assert ev50["clock_outcome"] == "two-clocks"


@pytest.mark.parametrize("after, ok", [(-1, True), (0, True), (-2, False), (-5, False)])
def test_the_identity_block_refuses_a_seal_record_below_minus_one(after, ok):
    """identity.stored_block: SEALED_AFTER, where present, is 'an integer >= -1 (InputError otherwise: the
    file was edited)': -1 and 0 are read, -2 and -5 are refused."""
    meta = _meta(sealed_after=after)
    if ok:
        assert identity.stored_block(meta, "config.json")["sealed_after"] == after
    else:
        with pytest.raises(InputError, match="not an epoch >= -1"):
            identity.stored_block(meta, "config.json")
