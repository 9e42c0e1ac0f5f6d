"""Detector views at a scale (tianref.experiments.reproduce.views): epoch positions scale and round, rates do
not, and each summarised view carries its own options and section-relative run paths. Known answers by hand."""
import numpy as np

from tianref.analysis.records import read_tree
from tianref.analysis.summarize import Options
from tianref.experiments.protocols import Scale
from tianref.experiments.reproduce import views

from test_summarize import BASE_CONFIG, write_run

# epoch_factor 0.0237 (not a power of 2): 100 -> 2.37 -> 2, 200 -> 4.74 -> 5, 400 -> 9.48 -> 9 (rounded, not
# truncated); an eta_factor apart from it, so a factor read from the wrong field shows
ODD = Scale("odd", epoch_factor=0.0237, eta_factor=10.0)


def test_epoch_positions_round_and_use_the_epoch_factor():
    assert [views.scaled(e, ODD) for e in (100, 200, 400)] == [2, 5, 9]
    assert views.scaled(200, {"epoch_factor": 0.0237, "eta_factor": 10.0}) == 5     # a stored summary's scale
    assert views.eta_at(2e-4, ODD) == 2e-3 and views.eta_at(2e-4, {"eta_factor": 10.0, "epoch_factor": 0.5}) == 2e-3


def test_late_view_scales_positions_not_rates():
    """late range and slope t_min are positions (scaled); the slope lag and threshold are not."""
    v = views.late_view(ODD, min_valid=3)
    assert v.name == "late 5-9"
    o = v.options
    assert (o.late_lo, o.late_hi, o.slope_t_min, o.min_valid) == (5, 9, 2, 3)
    assert (o.slope_lag, o.slope_threshold) == (Options().slope_lag, Options().slope_threshold)
    assert views.late_view(ODD, lo=400, hi=1000).options.late_hi == 24                # 23.7 rounds up


def test_each_view_has_its_own_options_and_relative_paths(tmp_path):
    """Two views of one run, sigma2/sigma3 = 1 + t: each summary's late median is 1 + (lo + hi)/2 of its own
    range, each doc lists its own options, and run paths are relative to the section folder."""
    E = 40
    t = np.arange(E + 1, dtype=float)
    write_run(tmp_path / "sec" / "runs" / "r0", dict(BASE_CONFIG, epochs=E), {"test_acc": np.zeros(E + 1),
                                                                            "W_gap23": 1 + t})
    vs = [views.View("a", Options(late_lo=10, late_hi=20)), views.View("b", Options(late_lo=30, late_hi=40))]
    docs = views.summarise_views(read_tree(tmp_path / "sec"), vs, tmp_path / "sec")
    assert [(d["name"], d["options"]["late_lo"], d["options"]["late_hi"]) for d in docs] == [("a", 10, 20),
                                                                                               ("b", 30, 40)]
    assert [d["summary"]["conditions"][0]["runs"][0]["late"] for d in docs] == [16.0, 36.0]
    assert {d["summary"]["conditions"][0]["runs"][0]["path"] for d in docs} == {"runs/r0"}
