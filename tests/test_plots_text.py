"""Run figures say only what their runs show: panels for the metrics logged, titles from the
conditions present, no band or 'median' for one run, the window W in the title, and one legend
outside the axes."""
import numpy as np
import pytest

from tianref.analysis import figure_text as ft
from tianref.analysis.plots import fig_headline, figures_from_runs
from tianref.analysis.records import read_tree
from test_summarize import BASE_CONFIG, synth_columns, write_run


def _tree(root, etas=(2e-4, 0.0), seeds=(0, 1), core=False, windows=(20,)):
    for eta in etas:
        for s in seeds:
            cols = synth_columns(300, eta > 0, seed=s, windows=list(windows))
            if core:
                cols.pop("rho_tian", None)
            cfg = dict(BASE_CONFIG, eta=eta, seed=s, epochs=300, windows=list(windows),
                       metrics="core" if core else "full")
            write_run(root / f"eta{eta}_s{s}", cfg, cols)
    return read_tree(root)


def _headline(records):
    figs, _ = figures_from_runs(records, ("headline",))
    return figs["headline"]


def _texts(fig):
    legend = fig.legends[0]
    return fig._suptitle.get_text(), [t.get_text() for t in legend.get_texts()]


def test_grok_vs_control_title_window_and_spread(tmp_path):
    fig = _headline(_tree(tmp_path))
    title, legend = _texts(fig)
    assert title.startswith("Grok (η = 0.0002) vs control (η = 0)")
    assert "window W = 20" in title and "M = 71" in title and "median over seeds, band" in title
    assert [ax.get_ylabel() for ax in fig.axes] == ["test accuracy", "ρ_tian",
                                                    "σ₂/σ₃ of the rolling\nΔW Gram (W = 20)"]
    assert any(t.startswith("eta=0.0002 (n=2)") for t in legend)
    assert any("median epoch" in t for t in legend)
    assert not any(ax.get_legend() for ax in fig.axes)                 # one legend, outside the axes
    assert len(fig.legends) == 1


def test_core_metrics_have_no_rho_panel(tmp_path):
    fig = _headline(_tree(tmp_path, core=True))
    assert len(fig.axes) == 2 and "ρ_tian" not in [ax.get_ylabel() for ax in fig.axes]
    assert not any("ρ_tian" in t for t in _texts(fig)[1])


def test_one_run_has_no_band_and_no_median(tmp_path):
    fig = _headline(_tree(tmp_path, etas=(2e-4,), seeds=(0,)))
    title, legend = _texts(fig)
    assert "Grok" not in title and "control" not in title and title.startswith("eta=0.0002")
    assert "one run per condition" in title and "median" not in title and "band" not in title
    assert not any("median" in t for t in legend)
    assert all(len(ax.collections) == 0 for ax in fig.axes)           # no fill_between band


def test_eta_sweep_title_and_window_choice(tmp_path):
    records = _tree(tmp_path, etas=(5e-4, 2e-4, 1e-4), seeds=(0,), windows=(20, 5))
    figs, _ = figures_from_runs(records, ("headline",), window=5)
    title = figs["headline"]._suptitle.get_text()
    assert title.startswith("η sweep: η = 0.0005, 0.0002, 0.0001") and "window W = 5" in title


def test_a_long_eta_sweep_title_gives_the_range_not_every_value():
    """Forty conditions' etas ran off both edges of the figure; the title gives their count and range and
    leaves the values to the legend (up to TITLE_VALUES it still lists them)."""
    class R:
        def __init__(self, eta):
            self.config = {"eta": eta}
    many = [(f"eta={e:g}", [R(e)]) for e in (1e-4 * (i + 1) for i in range(40))]
    assert ft.title_of(many) == "η sweep: 40 values of η from 0.0001 to 0.004 (the legend lists them)"
    few = many[:ft.TITLE_VALUES]
    assert ft.title_of(few) == "η sweep: η = " + ", ".join(f"{1e-4 * (i + 1):g}" for i in range(ft.TITLE_VALUES))


def test_figure_text_helpers(tmp_path):
    records = _tree(tmp_path, etas=(2e-4,), seeds=(0, 1))
    assert ft.present(records, "test_acc") and not ft.present(records, "nope")
    assert ft.window_of(records) == 20 and ft.window_of(records, 5) == 5
    assert ft.spread_of([("a", [1]), ("b", [1, 2])]).startswith("median over seeds where n > 1")
    assert ft.event_text("fire", {"n": 1, "n_fired": 1, "median": 173.0}) == "fire 173"
    assert ft.event_text("fire", {"n": 3, "n_fired": 2, "median": 173.5}) == "fire 173.5 (2/3)"
    assert ft.event_text("fire", {"n": 3, "n_fired": 0, "median": None}) is None
    assert ft.event_text("fire", {"n": 3, "n_fired": 0, "median": None}, say_never=True) == "no fire (0/3)"
    assert ft.event_text("fire", {"n": 1, "n_fired": 0, "median": None}, say_never=True) == "no fire"
    assert ft.title_of([("eta=0.0002 act=sqr", records), ("eta=0.0002 act=relu", records)]) == "2 conditions"


def test_nothing_to_plot_is_an_input_error(tmp_path):
    from tianref.errors import InputError
    write_run(tmp_path / "r", dict(BASE_CONFIG), {"train_loss": np.ones(5)})
    with pytest.raises(InputError, match="nothing to plot"):
        fig_headline([("eta=0.0002", read_tree(tmp_path))])


def test_runs_with_different_first_windows_are_drawn_at_one_common_window(tmp_path):
    """A run logged with --windows 5,20 beside runs with 20: its unsuffixed keys are window 5, and the
    headline drew that curve among the W = 20 ones with no W anywhere on the figure."""
    a = _tree(tmp_path / "a", etas=(2e-4,), seeds=(0,), windows=(20,))
    b = _tree(tmp_path / "b", etas=(2e-4,), seeds=(1,), windows=(5, 20))
    b[0].columns["W_gap23"][:] = 1e6                      # window 5: must not be drawn
    figs, notes = figures_from_runs(a + b, ("headline",))
    fig = figs["headline"]
    assert "window W = 20" in fig._suptitle.get_text()
    gap_ax = fig.axes[-1]
    assert gap_ax.get_ylabel().endswith("(W = 20)")
    drawn = [ln.get_ydata() for ln in gap_ax.get_lines() if len(ln.get_ydata()) > 2]
    assert drawn and all(np.nanmax(y) < 1e6 for y in drawn)
    assert ft.window_of(a + b) == 20 and ft.window_of(b) == 5
    c = _tree(tmp_path / "c", etas=(0.0,), seeds=(2,), windows=(30,))
    assert ft.window_of(a + c) is None
    _, notes = figures_from_runs(a + c, ("headline",))
    assert any("share no rolling window" in n for n in notes)


def test_the_activation_figure_draws_every_activation_at_one_window_they_all_logged(tmp_path):
    """x^2 runs logged with --windows 5,20 (first window 5) beside ReLU runs with 20: the headline and the
    activation figure use W = 20, which every run logged; the x^2 runs' own W = 5 is not logged by ReLU."""
    for s in (0, 1):
        write_run(tmp_path / f"sqr{s}", dict(BASE_CONFIG, seed=s, epochs=300, windows=[5, 20]),
                  synth_columns(300, True, s, windows=[5, 20]))
        write_run(tmp_path / f"relu{s}", dict(BASE_CONFIG, seed=s, epochs=300, act="relu", windows=[20]),
                  synth_columns(300, True, s, windows=[20], relu=True))
    figs, _ = figures_from_runs(read_tree(tmp_path), ("headline", "activation"))
    act = figs["activation"]
    assert act.axes[-2].get_ylabel().endswith("(W = 20)")             # the gap row, first column
    for ax in act.axes[-2:]:                                            # x^2 and ReLU: both drawn
        assert [ln for ln in ax.get_lines() if np.isfinite(ln.get_ydata()).sum() > 2]
    assert figs["headline"].axes[-1].get_ylabel().endswith("(W = 20)")
