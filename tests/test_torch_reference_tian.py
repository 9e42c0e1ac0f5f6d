"""SGD, Muon, the ridge top layer and the knobs (GELU, alpha, beta) against independent PyTorch runs.

reference_results/torch/tian_{sgd,muon,ridge,ridge_held,knobs}.{json,npz} were written by
``scripts/torch_reference_tian.py``: autograd on a materialised float64 one-hot X;
torch.optim.SGD(momentum 0.9, weight_decay); a Muon written from its description and applied to
W in torch's (K, 2M) layout, with V by torch.optim.Adam(weight_decay); the ridge V through
torch.linalg.svd, detached (tian_ridge: --ridge-eval current, stored before the option existed, so
its config has no ridge_eval and is read as 'current'); Tian's loop literally (tian_ridge_held: V an
nn.Parameter overwritten under no_grad in the training forward, Adam on [W, V], rows at the top of
each epoch); torch's exact GELU. torch is not imported here. Each test replays the
stored initial state through ``tianref.train.run`` in float64 and compares every row's losses and
accuracies and the final W and V after 50 steps.

Tolerances as in tests/test_torch_reference.py (1e-10 relative; measured agreement ~1e-13 or
better, see below), far below what a modelling difference moves: a wrong momentum initialisation,
decay after instead of before the Muon update, a wrong Newton-Schulz triple, gradient through the
ridge solve, beta applied to the forward but not the backward -- each moves these by >= 1e-6.
A missing file is a failure: regenerate deliberately with
``pip install torch && python scripts/torch_reference_tian.py [--only NAME]``.
"""
import numpy as np
import pytest
from torch_refs import load_reference

from tianref import runs, train
from tianref.config import TrainConfig, validate

NAMES = ["tian_sgd", "tian_muon", "tian_ridge", "tian_ridge_held", "tian_knobs"]
REGEN = "pip install torch && python scripts/torch_reference_tian.py"
TORCH = {"tian_ridge_held": "2.14."}            # the torch that wrote each file (the others: 2.13.0)
RTOL = 1e-10
ATOL_PARAM_REL = 1e-12


def _load(name):
    return load_reference(name, REGEN)


_CACHE = {}


def _replay(name):
    if name not in _CACHE:
        doc, arrays = _load(name)
        cfg = validate(TrainConfig.from_dict(doc["config"]))
        sink = runs.MemorySink()
        init = {k: arrays[k] for k in ("W", "V", "train_idx", "test_idx")}
        final, _, _ = train.run(cfg, np, init=init, sink=sink)
        _CACHE[name] = (doc, arrays, sink.rows, final)
    return _CACHE[name]


@pytest.mark.parametrize("name", NAMES)
def test_reference_has_provenance(name):
    doc, _ = _load(name)
    for key in ("command", "seed", "dtype", "backend", "versions", "date"):
        assert key in doc["provenance"], key
    assert doc["provenance"]["versions"]["torch"].startswith(TORCH.get(name, "2.13.0"))
    assert doc["config"]["dtype"] == "float64" and len(doc["rows"]) == doc["config"]["epochs"] + 1


@pytest.mark.parametrize("name", NAMES)
def test_losses_and_accuracies_match_torch(name):
    doc, _, rows, _ = _replay(name)
    ref = doc["rows"]
    assert [r["epoch"] for r in rows] == [r["epoch"] for r in ref]
    for key in ("train_loss", "test_loss"):
        np.testing.assert_allclose([r[key] for r in rows], [r[key] for r in ref], rtol=RTOL, atol=0,
                                   err_msg=key)
    for key in ("train_acc", "test_acc"):
        assert [r[key] for r in rows] == [r[key] for r in ref], key
    assert ref[-1]["train_loss"] < 0.3 * ref[0]["train_loss"]          # the run moved
    assert ref[-1]["train_acc"] == 1.0


@pytest.mark.parametrize("name", NAMES)
def test_final_weights_match_torch(name):
    _, arrays, _, final = _replay(name)
    for k in ("W", "V"):
        ref = arrays[k + "_final"]
        ours = final.params[k]
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=ATOL_PARAM_REL * np.abs(ref).max(), err_msg=k)
    assert np.linalg.norm(arrays["W_final"] - arrays["W"]) > 0.05 * np.linalg.norm(arrays["W"])


def test_ridge_eval_of_the_stored_ridge_references():
    """tian_ridge predates --ridge-eval and is replayed as 'current'; tian_ridge_held as 'held'."""
    assert validate(TrainConfig.from_dict(_load("tian_ridge")[0]["config"])).ridge_eval == "current"
    assert validate(TrainConfig.from_dict(_load("tian_ridge_held")[0]["config"])).ridge_eval == "held"


def test_held_and_current_torch_runs_share_W_and_differ_in_the_rows():
    """Two independent torch runs of the two readings of Tian's loop: the same W after 50 steps (his
    training forward overwrites V before W's gradient reads it; same torch ops in the same order, so
    bit for bit), rows that differ (row 0: the initial V against ridge(W0))."""
    (d_c, a_c), (d_h, a_h) = _load("tian_ridge"), _load("tian_ridge_held")
    np.testing.assert_array_equal(a_h["W_final"], a_c["W_final"])
    assert abs(d_h["rows"][0]["train_loss"] - d_c["rows"][0]["train_loss"]) > 0.1
    assert not np.allclose(a_h["V_final"], a_c["V_final"])
