"""The lifecycle and clocks reproduce sections end to end on a tiny scale: runs, numbers against the
runs' own logs, the generated claims, figures, the probe cache and --store."""
import json
import math

import pytest

from tianref.analysis import clock_events
from tianref.analysis.records import read_run
from tianref.experiments import protocols
from tianref.experiments.reproduce import seeds

TINY = protocols.Scale("tiny", M=7, K=16, seeds=1, epoch_factor=0.06)    # 30-48 epochs per run


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    root = tmp_path_factory.mktemp("seedsec")
    store = root / "store"
    out = {s: seeds.reproduce_seed_section(s, root, TINY, n_jobs=2, store_to=store)
           for s in seeds.SEED_SECTIONS}
    return root, store, out


def test_run_counts_and_protocol():
    assert len(protocols.section_runs("lifecycle")) == 15 and len(protocols.section_runs("clocks")) == 20
    tags = [s.tag for s in protocols.section_runs("lifecycle")]
    assert "sqr_eta0.0002to0at250_seed4" in tags
    sw = [s for s in protocols.section_runs("lifecycle") if "to0" in s.tag][0]
    assert sw.options["eta_schedule"] == "0:0.0002,250:0" and "eta" not in sw.options
    ce = [s for s in protocols.section_runs("clocks") if s.options["act"] == "relu"]
    assert len(ce) == 10 and all(s.options["loss"] == "ce" and s.options["epochs"] == 800 for s in ce)


def test_clocks_section_numbers_come_from_the_runs(done):
    root, store, out = done
    assert out["clocks"]["runs"] == 4 and out["clocks"]["figures"] == 1
    doc = json.loads((root / "clocks" / "summary.json").read_text())
    for v in doc["clocks"]["runs"]:
        rec = read_run(root / "clocks" / v["tag"])
        ev = clock_events.clock_events(rec.columns)
        for k in ("t_cls", "t_rep"):
            assert (v[k] is None and math.isnan(ev[k])) or v[k] == ev[k], (v["tag"], k)
        assert v["W_srank"]["final"] == rec.col("W_srank")[-1]
    report = (root / "clocks" / "report.md").read_text()
    assert "## Point by point" in report and "T_cls < T_rep" in report
    assert [c[0] for c in doc["claims"]] == [c[0] for c in seeds.claims_clocks(doc["clocks"])]
    assert (store / "tiny" / "clocks" / "provenance.json").is_file()
    assert (store / "tiny" / "clocks" / "figures" / "clocks.png").is_file()


def test_lifecycle_section_numbers_come_from_the_runs(done):
    root, store, out = done
    assert out["lifecycle"]["runs"] == 3 and out["lifecycle"]["figures"] == 2
    doc = json.loads((root / "lifecycle" / "summary.json").read_text())
    d = doc["lifecycle"]
    assert sorted(d["conditions"]) == ["eta=0", "eta=0.0002", "switch"]
    [x] = d["intervention"]
    sw = read_run(root / "lifecycle" / f"sqr_eta0.0002to0at{x['switch']}_seed0")
    kept = read_run(root / "lifecycle" / "sqr_eta0.0002_seed0")
    E = x["E"]
    assert x["W_fro_growth"] == pytest.approx(sw.col("W_fro")[E] / sw.col("W_fro")[x["switch"]], rel=1e-12)
    assert x["W_fro_growth_kept_eta"] == pytest.approx(kept.col("W_fro")[E] / kept.col("W_fro")[x["switch"]],
                                                       rel=1e-12)
    # identical runs up to the switch (the schedule changes nothing before it)
    assert sw.col("train_loss")[x["switch"]] == kept.col("train_loss")[x["switch"]]
    assert sw.col("train_loss")[E] != kept.col("train_loss")[E]
    # probes for the eta = 2e-4 and eta = 0 runs, both spaces, at the scaled probe epochs
    eps = sorted({p["epoch"] for p in d["probes"]})
    assert eps == sorted({min(E, round(e * TINY.epoch_factor)) for e in seeds.PROBE_EPOCHS
                          if round(e * TINY.epoch_factor) >= 2})
    assert {(p["condition"], p["space"]) for p in d["probes"]} == \
        {(c, s) for c in ("eta=0.0002", "eta=0") for s in ("joint", "W")}
    # without weight decay the edge has no weight-decay part: gfrac = 1 exactly
    assert all(p["gfrac"]["median"] == 1.0 for p in d["probes"] if p["condition"] == "eta=0")
    report = (root / "lifecycle" / "report.md").read_text()
    for text in ("## Point by point", "gradient-driven", "Intervention", "ablation ratio"):
        assert text in report
    assert (store / "tiny" / "lifecycle" / "figures" / "lifecycle.png").is_file()


def test_probe_cache_is_reused(done):
    root, _, _ = done
    cache = sorted((root / "lifecycle" / "_probes").glob("*.json"))
    assert len(cache) == 2
    before = [p.stat().st_mtime_ns for p in cache]
    out = seeds.reproduce_seed_section("lifecycle", root, TINY, n_jobs=1)
    assert out["ran"] == 0 and out["skipped"] == 3
    assert [p.stat().st_mtime_ns for p in cache] == before
