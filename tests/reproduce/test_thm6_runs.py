"""thm6_runs: what each checkpoint is evaluated with, the cache key, and the first seed's pairs.

The Theorem 6 functions are replaced by recorders, so the test sees the arguments the section passes: each
run's own activation and eta (its config.json), the --top-pairs n_top; a cached result is reused only for the
same n_top; the per-checkpoint figure's pairs are the lowest seed's; the ReLU checkpoints stand for the paper's
'ReLU' row at 100/300/500 (docs/paper-protocol.md §5.1).
"""
from pathlib import Path

import numpy as np
import pytest

import tianref.thm6 as thm6
from tianref import runs
from tianref.analysis.records import RunRecord
from tianref.experiments import protocols
from tianref.experiments.reproduce import thm6_runs

FULL = protocols.SCALES["full"]


@pytest.fixture
def calls(monkeypatch):
    seen = {"features": [], "summarize": []}

    def features(xp, W, M, train_idx, act, *rest):
        seen["features"].append(act)
        return np.asarray(W, dtype=float)[: len(train_idx)]                  # (n, K): a stand-in F~

    def summarize(xp, F, eta, n_top=200, **kw):
        seed = int(F[0, 0])
        seen["summarize"].append((seed, eta, n_top))
        return {"summary": {q: float(seed) for q in thm6_runs.THM6_QTY}, "pairs": [[seed, seed]]}

    monkeypatch.setattr(thm6, "features_from_weights", features)
    monkeypatch.setattr(thm6, "summarize_checkpoint", summarize)
    return seen


def _records(root, act, seeds, epochs):
    out = []
    for s in seeds:
        d = Path(root) / f"{act}_seed{s}"
        (d / "checkpoints").mkdir(parents=True)
        for e in epochs:
            W = np.full((6, 4), float(s))                                   # the seed, readable in F~
            runs.save_npz(runs.checkpoint_path(str(d), e), {"W": W, "train_idx": np.arange(3)})
        cfg = {"act": act, "eta": 3e-4, "M": 3, "seed": s}
        out.append(RunRecord(path=d, config=cfg, meta={}, columns={}))
    return out


def test_each_checkpoint_is_evaluated_with_its_runs_settings_and_the_first_seeds_pairs_are_kept(tmp_path, calls):
    recs = _records(tmp_path, "relu", (2, 0, 1), (100, 300, 500))
    out, seed0 = thm6_runs.thm6_section(recs, FULL, 7, tmp_path / "_thm6", lambda m: None)
    a = out["acts"]["relu"]
    assert a["paper_epochs"] == {"100": 100, "300": 300, "500": 500} and a["seeds"] == [0, 1, 2]
    assert set(calls["features"]) == {"relu"}
    assert {(eta, n) for _, eta, n in calls["summarize"]} == {(3e-4, 7)}
    assert [r["pairs"] for r in seed0["relu"]] == [[[0, 0]]] * 3           # seed 0's, not the last seed's
    assert a["stats"]["300"]["sign_match_exact"]["median"] == 1.0            # over seeds 0, 1, 2


def test_a_cached_result_is_reused_only_for_the_same_n_top(tmp_path, calls):
    (r,) = _records(tmp_path, "sqr", (0,), (50,))
    cache = tmp_path / "_thm6"
    thm6_runs.thm6_run(r.path, r.config, [50], 7, cache, False)
    thm6_runs.thm6_run(r.path, r.config, [50], 7, cache, False)             # cached: not evaluated again
    thm6_runs.thm6_run(r.path, r.config, [50], 9, cache, False)             # another n_top: evaluated
    assert [n for _, _, n in calls["summarize"]] == [7, 9]
