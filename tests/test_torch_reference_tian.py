"""SGD, Muon, the ridge top layer and the knobs (GELU, alpha, beta) against independent PyTorch runs.

reference_results/torch/tian_{sgd,muon,ridge,knobs}.{json,npz} were written by
``scripts/torch_reference_tian.py``: autograd on a materialised float64 one-hot X;
torch.optim.SGD(momentum 0.9, weight_decay); a Muon written from its description and applied to
W in torch's (K, 2M) layout, with V by torch.optim.Adam(weight_decay); the ridge V through
torch.linalg.svd, detached; torch's exact GELU. torch is not imported here. Each test replays the
stored initial state through ``tianref.train.run`` in float64 and compares every row's losses and
accuracies and the final W and V after 50 steps.

Tolerances as in tests/test_torch_reference.py (1e-10 relative; measured agreement ~1e-13 or
better, see below), far below what a modelling difference moves: a wrong momentum initialisation,
decay after instead of before the Muon update, a wrong Newton-Schulz triple, gradient through the
ridge solve, beta applied to the forward but not the backward -- each moves these by >= 1e-6.
A missing file is a failure: regenerate deliberately with
``pip install torch==2.13.0 && python scripts/torch_reference_tian.py``.
"""
import numpy as np
import pytest
from torch_refs import load_reference

from tianref import runs, train
from tianref.config import TrainConfig, validate

NAMES = ["tian_sgd", "tian_muon", "tian_ridge", "tian_knobs"]
REGEN = "pip install torch==2.13.0 && python scripts/torch_reference_tian.py"
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
    assert doc["provenance"]["versions"]["torch"].startswith("2.13.0")
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
