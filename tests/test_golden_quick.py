"""The quick configuration (M = 23, K = 512, half the table, eta = 2e-3, 400 epochs) groks, and its
stored trajectory is re-derived here epoch by epoch; the ci reproduction's stored summaries report
its grokking; the README's "see it work" command is this configuration.

reference_results/golden/train_quick_float32.json was written by ``python scripts/regen_golden_quick.py``
(never by a test). The tolerances come from the file's own sensitivity record: the same run from
initial weights perturbed by one float32 ulp moved every loss by <= 1.1e-6 relative, rho_tian by
<= 1.5e-7, sigma2/sigma3 by <= 3.5e-5, no accuracy and no event epoch. Another BLAS build rounds
every step differently, so each tolerance sits ~100x above those numbers (events: one epoch) --
far below what a change of the numerics moves (a changed eta, lr or logging order shifts t0.5 by
tens of epochs and the losses by 1e-2 and more).
"""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tianref import data, runs, train
from tianref.analysis import detectors as det
from tianref.config import TrainConfig, validate
from tianref.experiments import protocols

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "reference_results" / "golden" / "train_quick_float32.json"
CI = REPO / "reference_results" / "reproduction" / "ci"
REGEN = "python scripts/regen_golden_quick.py"

RTOL = {"train_loss": 1e-4, "test_loss": 1e-4, "rho_tian": 2e-5, "W_gap23": 3e-3}
ACC_SAMPLES = 2          # an accuracy may differ by this many samples of its set
EVENT_TOL = 1            # epochs


def _load():
    if not GOLDEN.is_file():
        pytest.fail(f"missing golden file {GOLDEN}; regenerate it deliberately with `{REGEN}`")
    return json.loads(GOLDEN.read_text())


_CACHE = {}


def _derive():
    if "doc" not in _CACHE:
        doc = _load()
        cfg = validate(TrainConfig.from_dict(doc["config"]))
        cols = {k: [] for k in doc["keys"]}

        class Sink:
            def row(self, r):
                r = runs.clean_row(r)
                for k in cols:
                    cols[k].append(r.get(k))

            def checkpoint(self, *a, **k):
                pass
        final, _, _ = train.run(cfg, np, sink=Sink())
        norms = {f"{k}_fro": float(np.linalg.norm(final.params[k].astype(np.float64))) for k in ("W", "V")}
        _CACHE["doc"] = (doc, cols, norms)
    return _CACHE["doc"]


def _arr(values):
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def test_golden_quick_is_the_quick_configuration_and_groks():
    doc = _load()
    for key in ("command", "seed", "dtype", "backend", "versions", "date", "tianref_commit", "tree_dirty"):
        assert key in doc["provenance"], key
    cfg = doc["config"]
    q = protocols.QUICK
    assert (cfg["M"], cfg["K"], cfg["eta"], cfg["epochs"], cfg["dtype"]) == \
        (q["M"], q["K"], q["eta"], q["epochs"], "float32")
    assert cfg["n_train"] == data.n_train_from_frac(q["M"], q["train_frac"]) == 264
    ev = doc["events"]
    assert ev["t05"] is not None and ev["t099"] is not None and ev["fire"] is not None
    assert 150 <= ev["t05"] <= 220 and ev["t05"] < ev["t099"] <= cfg["epochs"]
    acc = doc["trajectory"]["test_acc"]
    assert len(acc) == cfg["epochs"] + 1 and acc[0] < 0.1 and acc[-1] > 0.99
    assert doc["sensitivity"]["events"] == ev            # one ulp moves no event


def test_golden_quick_trajectory_is_rederived():
    doc, ours, norms = _derive()
    n = {"train_acc": doc["config"]["n_train"],
         "test_acc": doc["config"]["M"] ** 2 - doc["config"]["n_train"]}
    for key, ref in doc["trajectory"].items():
        a, b = _arr(ours[key]), _arr(ref)
        assert a.shape == b.shape, key
        assert np.array_equal(np.isnan(a), np.isnan(b)), key       # the same rows define the key
        ok = ~np.isnan(b)
        if key in n:
            assert np.abs(a[ok] - b[ok]).max() <= ACC_SAMPLES / n[key] + 1e-12, key
        else:
            np.testing.assert_allclose(a[ok], b[ok], rtol=RTOL[key], err_msg=key)
    for key, ref in doc["final"].items():
        np.testing.assert_allclose(norms[key], ref, rtol=1e-4, err_msg=key)


def test_golden_quick_events_are_rederived():
    doc, ours, _ = _derive()
    t05, t099 = det.test_crossings(_arr(ours["test_acc"]))
    fire = det.slope_fire(_arr(ours["W_gap23"]))
    for name, got in (("t05", t05), ("t099", t099), ("fire", fire)):
        assert abs(got - doc["events"][name]) <= EVENT_TOL, (name, got, doc["events"][name])


def test_tolerances_sit_above_the_recorded_sensitivity():
    sens = _load()["sensitivity"]["max_deviation"]
    for key, rtol in RTOL.items():
        worst = max(v for v in sens[key].values() if v is not None)
        assert 10 * worst <= rtol, (key, worst, rtol)


@pytest.mark.parametrize("section", ["headline"])
def test_ci_summary_reports_real_grokking(section):
    """The stored ci reproduction: t0.5 reached in every grok run, never in a control; the slope
    detector fires in every grok run; grok/control late separation > 1."""
    doc = json.loads((CI / section / "summary.json").read_text())
    assert doc["scale"]["name"] == "ci" and doc["setup"]["M"] == protocols.QUICK["M"]
    conds = {c["config"]["eta"]: c for c in doc["views"][0]["summary"]["conditions"]}
    g, c = conds[protocols.QUICK["eta"]], conds[0.0]
    assert g["n"] >= 2 and c["n"] >= 2
    assert g["stats"]["t05"]["n_fired"] == g["n"] and g["stats"]["t099"]["n_fired"] == g["n"]
    assert g["stats"]["fire"]["n_fired"] == g["n"]
    assert c["stats"]["t05"]["n_fired"] == 0 and c["stats"]["fire"]["n_fired"] == 0
    assert all(r["t05"] is not None for r in g["runs"]) and all(r["t05"] is None for r in c["runs"])
    assert g["late_separation"]["ratio"] > 5
    report = (CI / section / "report.md").read_text()
    row = next(ln for ln in report.splitlines() if ln.startswith("| t(test ≥ 0.5), eta=0.002: 102"))
    assert f"{g['n']}/{g['n']}" in row                              # the report quotes the grok numbers


def test_readme_quick_command_is_the_quick_configuration():
    readme = (REPO / "README.md").read_text()
    m = re.search(r"python cli\.py train (--M \S+ --K \S+ --train-frac \S+ --eta \S+)[^\n]*", readme)
    assert m, "the README has no quick train command"
    words = m.group(0).split()
    opt = {words[i]: words[i + 1] for i in range(3, len(words) - 1) if words[i].startswith("--")}
    q = protocols.QUICK
    assert (int(opt["--M"]), int(opt["--K"]), float(opt["--train-frac"]), float(opt["--eta"])) == \
        (q["M"], q["K"], q["train_frac"], q["eta"])
    assert int(opt.get("--epochs", TrainConfig().epochs)) == q["epochs"]
