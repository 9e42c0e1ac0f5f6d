"""Figures from synthetic run trees: the band statistics, the figure set, the files written."""
import json
import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.image import imread

from tianref.cli.analysis import plot_cmd
from tianref.errors import InputError
from tianref.analysis.plots import band, figures_from_runs, save
from tianref.analysis.records import read_tree
from test_summarize import BASE_CONFIG, synth_columns, write_run

WINDOWS = [20, 5, 30]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """x^2 grok/control (400 ep) and ReLU grok/control (600 ep), 3 seeds each, windows 20/5/30."""
    root = tmp_path_factory.mktemp("plots") / "runs"
    for act, E in (("sqr", 400), ("relu", 600)):
        for eta in (2e-4, 0.0):
            for s in range(3):
                cfg = dict(BASE_CONFIG, eta=eta, seed=s, act=act, epochs=E, windows=WINDOWS)
                cols = synth_columns(E, eta > 0, seed=100 * s + (act == "relu"),
                                     windows=WINDOWS, relu=act == "relu")
                write_run(root / f"{act}_eta{eta}_seed{s}", cfg, cols)
    return root


def test_band_median_and_iqr_with_ragged_runs():
    # three runs, the third shorter: at t = 0..1 values {1, 2, 4}; at t = 2 only {1, 2}
    t, med, q25, q75 = band([np.array([1.0, 1, 1]), np.array([2.0, 2, 2]), np.array([4.0, 4])])
    assert list(t) == [0, 1, 2]
    assert list(med) == [2.0, 2.0, 1.5]
    assert list(q25) == [1.5, 1.5, 1.25] and list(q75) == [3.0, 3.0, 1.75]   # linear percentiles
    _, med, _, _ = band([np.array([np.nan, 1.0]), np.array([np.nan, 3.0])])
    assert np.isnan(med[0]) and med[1] == 2.0


def _nontrivial_png(path):
    """Written, a real image, and with coloured data on it (empty axes are only black/white/grey)."""
    assert path.stat().st_size > 20_000            # empty 8x9-inch axes at 80 dpi are ~18 kB
    img = imread(path)[..., :3]                    # (h, w, 3) floats in [0, 1]
    assert img.shape[0] > 300 and img.shape[1] > 300
    saturated = (img.max(axis=-1) - img.min(axis=-1)) > 0.3
    assert saturated.sum() > 2000                  # lines and bands; 0 for empty axes


def test_all_figures_are_drawn_and_written(tree, tmp_path):
    figs, notes = figures_from_runs(read_tree(tree), windows=(5, 20, 30))
    assert set(figs) == {"headline", "top5", "activation"} and notes == []
    top5 = figs["top5"]
    assert len(top5.axes) == 2 * 3                 # rows: grok, control; columns: W = 5, 20, 30
    assert [ax.get_title() for ax in top5.axes[:3]] == [
        "eta=0.0002, W = 5", "eta=0.0002, W = 20", "eta=0.0002, W = 30"]
    head = figs["headline"]
    assert head.axes[2].get_yscale() == "log"
    assert len(head.axes[0].get_lines()) == 2 + 1  # two conditions + the 0.5 guide line
    assert len(figs["activation"].axes) == 3 * 2
    for name, fig in figs.items():
        _nontrivial_png(save(fig, tmp_path / f"{name}.png", dpi=80))   # low dpi: test speed


def test_missing_window_and_single_activation_are_noted(tmp_path):
    root = tmp_path / "one"
    for s in range(2):
        write_run(root / f"r{s}", dict(BASE_CONFIG, seed=s), synth_columns(300, True, s))
    figs, notes = figures_from_runs(read_tree(root), windows=(5, 20))
    assert set(figs) == {"headline", "top5"}
    assert any("[5]" in n for n in notes) and any("one activation" in n for n in notes)
    assert len(figs["top5"].axes) == 1
    with pytest.raises(InputError):
        figures_from_runs(read_tree(root), which=("bogus",))


def test_plot_cli(tree, tmp_path):
    out = tmp_path / "figs"
    res = CliRunner().invoke(plot_cmd, [str(tree), "--out", str(out), "--figure", "headline",
                                        "--figure", "activation", "--dpi", "80", "--format", "png"])
    assert res.exit_code == 0, res.output
    assert res.stdout.split() == [str(out / "headline.png"), str(out / "activation.png")]
    _nontrivial_png(out / "activation.png")
    res = CliRunner().invoke(plot_cmd, [str(tmp_path / "nope"), "--out", str(out)])
    assert res.exit_code == 2 and res.stderr.startswith("Error: ") and "Traceback" not in res.output
    res = CliRunner().invoke(plot_cmd, [str(tree), "--windows", "5,x"])
    assert res.exit_code == 2 and "--windows" in res.stderr


@pytest.mark.parametrize("figure", ["headline", "activation"])
def test_a_window_no_run_logged_is_refused_not_drawn_without_its_panel(tree, tmp_path, figure):
    """--window 7 (the runs logged 20, 5, 30) dropped the sigma2/sigma3 panel and still titled the figure
    'window W = 7', exit 0; summarize --window 7 refuses it. A logged window other than the first is drawn."""
    out = tmp_path / "figs"
    res = CliRunner().invoke(plot_cmd, [str(tree), "--out", str(out), "--figure", figure, "--window", "7"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert res.stderr.strip().splitlines() == [
        "Error: --window 7: no run shown logged that window (their windows: 5, 20, 30)"]
    assert not out.exists()
    figs, _ = figures_from_runs(read_tree(tree), which=("headline",), window=30)
    assert [ax.get_ylabel() for ax in figs["headline"].axes][-1].endswith("(W = 30)")


def test_a_condition_whose_detector_never_fired_says_so_in_the_legend(tree):
    """The headline legend gives each condition's median fire; a condition where no run fired says
    'no σ₂/σ₃ fire (0/n)' rather than nothing, which read as 'not computed'. The counts are the detector's own
    on each run's logged sigma2/sigma3."""
    from tianref.analysis import detectors as det
    records = [r for r in read_tree(tree) if r.config["act"] == "sqr"]
    fired = {}
    for r in records:
        fired.setdefault(r.config["eta"], []).append(bool(np.isfinite(det.slope_fire(r.col("W_gap23")))))
    assert fired[0.0] == [False] * 3 and all(fired[2e-4])      # the synthetic control never fires
    figs, _ = figures_from_runs(records, ("headline",))
    labels = [t.get_text() for t in figs["headline"].legends[0].get_texts()]
    ctrl = next(t for t in labels if t.startswith("eta=0 "))
    grok = next(t for t in labels if t.startswith("eta=0.0002 "))
    # the detector is named: ρ_tian has its own threshold crossing, which 'no fire' was read as
    assert ctrl.endswith(": no σ₂/σ₃ fire (0/3)") and ": σ₂/σ₃ fire " in grok
    assert grok.split(": σ₂/σ₃ fire ")[1].endswith("(3/3)")
    vlines = [ln for ln in figs["headline"].axes[2].get_lines() if len(set(ln.get_xdata())) == 1]
    assert len(vlines) == 1                        # the grok condition's fire only; none for "no fire"


def test_legend_swatches_axes_and_epoch_range_match_what_is_drawn(tree):
    """The slope-fire swatch is not the rho threshold's (colour and dash differ, and the threshold line
    drawn in its panel has the threshold swatch's style); the activation columns share one epoch range
    (400- and 600-epoch runs side by side); long legend labels go below the axes."""
    from matplotlib.colors import to_rgba
    figs, _ = figures_from_runs(read_tree(tree), windows=(5, 20, 30))
    head = figs["headline"]
    leg = head.legends[0]
    by_label = {t.get_text(): h for t, h in zip(leg.get_texts(), leg.legend_handles)}
    fire = next(h for k, h in by_label.items() if k.startswith("σ₂/σ₃ slope fire"))
    rho = next(h for k, h in by_label.items() if k.startswith("ρ_tian ="))
    assert (to_rgba(fire.get_color()), fire.get_linestyle()) != (to_rgba(rho.get_color()), rho.get_linestyle())
    drawn = [ln for ln in head.axes[1].get_lines() if len(set(ln.get_ydata())) == 1]   # the threshold line
    assert [(to_rgba(ln.get_color()), ln.get_linestyle()) for ln in drawn] == \
        [(to_rgba(rho.get_color()), rho.get_linestyle())]
    act = figs["activation"]
    xlims = {tuple(round(v) for v in ax.get_xlim()) for ax in act.axes}
    assert len(xlims) == 1 and max(xlims.pop()) >= 600
    labels = [t.get_text() for t in leg.get_texts()]
    assert max(map(len, labels)) > 45
    assert leg._loc in (8,) or "lower" in str(getattr(leg, "_outside_loc", ""))   # below the axes


def _legend_of(labels, width=10.5):
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from tianref.analysis.plots import _legend
    fig = Figure(figsize=(width, 6), layout="constrained")     # 10.5 in: the headline figure's width
    fig.subplots()
    _legend(fig, [Line2D([], [], label=lab) for lab in labels], [])
    return fig.legends[0]


def test_legend_goes_below_past_45_characters_in_two_columns_past_four_entries():
    """Matplotlib codes 'outside right center' as loc 7 and 'outside lower center' as loc 8."""
    assert _legend_of(["x" * 45])._loc == 7                    # at the limit: still beside the axes
    assert _legend_of(["x" * 46])._loc == 8
    assert _legend_of(["x" * 46] * 4)._ncols == 1
    assert _legend_of(["x" * 46] * 5)._ncols == 2


def _inside(fig, artist):
    """The artist's drawn box lies within the figure's (what savefig keeps), to a pixel."""
    from tianref.analysis.plots import _width                 # attaches the Agg canvas the boxes need
    _width(fig, artist)
    fig.canvas.draw()                                          # constrained layout places the legend
    box = artist.get_window_extent(fig.canvas.get_renderer())
    return box.x0 >= -1 and box.x1 <= fig.bbox.width + 1


def test_a_legend_too_wide_for_two_columns_takes_one_and_wraps_past_the_figure_width():
    """A mixed tree labels its conditions with every differing key (~110 characters): two such columns
    were wider than the 10.5-inch figure and savefig cut both sides off."""
    cond = "eta=0.002 K=64 M=13 epochs=60 group=None lr=0.001 metrics=full n_train=84 optimizer=adam windows=5,20"
    leg = _legend_of([f"{cond} (n={i})" for i in range(6)])
    assert leg._ncols == 1 and _inside(leg.figure, leg)
    assert _legend_of(["x" * 46] * 5, width=6.4)._ncols == 1   # two columns do not fit 6.4 in
    leg = _legend_of([cond * 3] * 2)                            # ~310 characters: wider than one column
    texts = [t.get_text() for t in leg.get_texts()]
    assert all("\n" in t for t in texts) and _inside(leg.figure, leg)
    assert all(" ".join(t.split()) == " ".join((cond * 3).split()) for t in texts)   # wrapped, not cut


def test_top5_titles_fit_their_panels(tmp_path):
    """A top-5 panel's title names its condition; a mixed tree's long label ran past the panel."""
    from tianref.analysis.plots import fig_top5
    long = "eta=0.002 K=64 M=13 epochs=60 group=None lr=0.001 metrics=full n_train=84 optimizer=adam"
    for s in range(2):
        write_run(tmp_path / f"r{s}", dict(BASE_CONFIG, seed=s, windows=[5, 20, 30]),
                  synth_columns(60, True, s, windows=(5, 20, 30)))
    fig = fig_top5([(long, read_tree(tmp_path))], windows=(5, 20, 30))
    for ax in fig.axes:
        assert "\n" in ax.get_title()
        from tianref.analysis.plots import _width
        _width(fig, ax)
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        assert ax.title.get_window_extent(r).width <= ax.get_window_extent(r).width + 1


def test_activation_rows_share_one_y_range_across_columns(tree):
    figs, _ = figures_from_runs(read_tree(tree), which=("activation",))
    axes = np.array(figs["activation"].axes).reshape(-1, 2)   # rows: metrics; columns: x², ReLU
    assert axes.shape[0] == 3
    for row in axes:
        assert len({tuple(ax.get_ylim()) for ax in row}) == 1, [ax.get_ylabel() for ax in row]


def _rho_groups(root, with_rho):
    from tianref.analysis.plots import _labelled
    from tianref.analysis.summarize import group_conditions
    for s in range(2):
        cols = synth_columns(200, True, s)
        if not with_rho:
            del cols["rho_tian"]
        write_run(root / f"r{s}", dict(BASE_CONFIG, seed=s, epochs=200), cols)
    return _labelled(group_conditions(read_tree(root)))


def test_rho_threshold_line_and_swatch_follow_the_threshold_and_the_panel(tmp_path):
    from tianref.analysis.plots import fig_headline
    fig = fig_headline(_rho_groups(tmp_path / "rho", True), rho_threshold=0.3)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert [lab for lab in labels if lab.startswith("ρ_tian")] == ["ρ_tian = 0.3 (in its panel)"]
    flat = [list(ln.get_ydata()) for ln in fig.axes[1].get_lines() if len(set(ln.get_ydata())) == 1]
    assert flat == [[0.3, 0.3]]                               # the threshold line, at the given threshold
    fig = fig_headline(_rho_groups(tmp_path / "norho", False), rho_threshold=0.3)
    assert not any(t.get_text().startswith("ρ_tian") for t in fig.legends[0].get_texts())


def test_a_diverged_run_is_left_out_and_named_not_drawn_on_the_shared_axes(tmp_path):
    """A run train stopped on a non-finite loss logs update eigenvalues ~1e50 in its last rows; drawn, it set
    the shared y range of every top-5 panel (1e-17..1e55) and left its own panel empty (one point)."""
    for s in range(2):
        write_run(tmp_path / f"ok{s}", dict(BASE_CONFIG, seed=s, epochs=60), synth_columns(60, True, s))
    cols = {k: v[:3].copy() for k, v in synth_columns(60, True, 7).items()}
    cols["W_sigma"][2] = [1.7e53, 6.6e8, 1.0, np.nan, np.nan][:cols["W_sigma"].shape[1]]
    cols["train_loss"] = np.array([0.9, 4.7e24, np.nan])           # row 2: the loss that stopped the run
    write_run(tmp_path / "blown", dict(BASE_CONFIG, seed=7, epochs=60, lr=1e6, optimizer="sgd"), cols)
    figs, notes = figures_from_runs(read_tree(tmp_path), which=("headline", "top5"), windows=(20,))
    assert "left out 1 diverged run(s): blown: diverged at epoch 2 (non-finite loss)" in notes
    assert len(figs["top5"].axes) == 1                              # one condition row: the blown one is gone
    assert figs["top5"].axes[0].get_ylim()[1] < 1e3
    assert all("lr=" not in t.get_text() for t in figs["headline"].legends[0].get_texts())
    with pytest.raises(InputError, match="no runs to plot .left out 1 diverged"):
        figures_from_runs(read_tree(tmp_path / "blown"))


def test_a_run_with_no_row_is_left_out_and_an_unfinished_one_is_named(tmp_path):
    """A condition whose only run has an empty metrics.jsonl (just started, or stopped while being set up)
    crashed plot with a traceback (np.nanpercentile of nothing); it is left out with a note. A run that
    ends before its epochs is drawn as far as it goes, and named (it was mixed in silently)."""
    for s in range(2):
        write_run(tmp_path / f"ok{s}", dict(BASE_CONFIG, seed=s, epochs=60), synth_columns(60, True, s))
    short = {k: v[:31].copy() for k, v in synth_columns(60, True, 5).items()}
    write_run(tmp_path / "short", dict(BASE_CONFIG, seed=5, epochs=60), short)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text(json.dumps({"config": dict(BASE_CONFIG, eta=0.0, epochs=60)}))
    (tmp_path / "empty" / "metrics.jsonl").write_text("")
    figs, notes = figures_from_runs(read_tree(tmp_path), which=("headline", "top5"), windows=(20,))
    assert "left out 1 run(s) with no logged row: empty" in notes
    assert any(n.startswith("1 unfinished run(s) drawn to their last row") and "short: ends at epoch 30 of 60" in n
               for n in notes), notes
    assert "headline" in figs and "top5" in figs
    cfg = {k: v for k, v in BASE_CONFIG.items() if k != "epochs"}        # E unknown: nothing to fall short of
    write_run(tmp_path / "noe" / "r", dict(cfg, seed=9), synth_columns(60, True, 9))
    _, notes = figures_from_runs(read_tree(tmp_path / "noe"), which=("headline",))
    assert not any("unfinished" in n for n in notes), notes


def test_every_condition_of_the_headline_figure_has_its_own_colour(tmp_path):
    """Matplotlib's "C{k}" wraps at 10: a twelfth condition was drawn in the second one's colour."""
    from matplotlib.colors import to_rgba
    from tianref.analysis.plots import _labelled, condition_colours, fig_headline
    from tianref.analysis.summarize import group_conditions
    for k in range(12):
        write_run(tmp_path / f"c{k}", dict(BASE_CONFIG, seed=0, epochs=60, eta=1e-4 * (k + 1)),
                  synth_columns(60, True, k))
    groups = _labelled(group_conditions(read_tree(tmp_path)))
    assert len(groups) == 12
    fig = fig_headline(groups)
    drawn = {to_rgba(ln.get_color()) for ln in fig.axes[0].get_lines() if len(set(ln.get_ydata())) > 1}
    assert len(drawn) == 12
    for n in (1, 10, 11, 20, 21, 40):
        assert len({to_rgba(c) for c in condition_colours(n)}) == n
    assert condition_colours(3) == ["C0", "C1", "C2"]          # up to 10: the cycle other figures use


def test_every_run_of_a_clocks_panel_has_its_own_colour():
    """figure_clocks colours a condition's runs by index: "C{i % 10}" gave an eleventh seed the first one's
    colour; each of eleven runs (curves and event marks) now has its own (plots.condition_colours)."""
    from matplotlib.colors import to_rgba
    from tianref.analysis.edge_figures import figure_clocks
    runs = [([{"epoch": t, "W_srank": 1.0 + i + t, "train_loss": 1.0 / (1 + i + t)} for t in range(3)],
             {"t_cls": 1.0, "t_rep": None, "t05": None}) for i in range(11)]
    fig = figure_clocks([("cond", runs)])
    for ax in fig.axes:
        curves = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 3]
        colours = [to_rgba(ln.get_color()) for ln in curves]
        assert len(colours) == 11 and len(set(colours)) == 11
        marks = [to_rgba(ln.get_color()) for ln in ax.get_lines() if ln not in curves]
        assert marks == colours                                  # each run's t_cls mark in its colour


def test_top5_default_windows_are_the_ones_the_runs_logged(tmp_path):
    """plot's default top-5 windows are those the runs logged: no note for runs of one window (the
    default train logs 20 only); a window that some runs lack is left out with a note."""
    for s in range(2):
        write_run(tmp_path / "one" / f"r{s}", dict(BASE_CONFIG, seed=s, windows=[20], epochs=60),
                  synth_columns(60, True, s, windows=(20,)))
    figs, notes = figures_from_runs(read_tree(tmp_path / "one"), ("top5",))
    assert "top5" in figs and notes == []
    assert len(figs["top5"].axes) >= 1
    r = CliRunner().invoke(plot_cmd, [str(tmp_path / "one"), "--out", str(tmp_path / "f"), "--figure", "top5"])
    assert r.exit_code == 0 and "note" not in r.stderr, r.output
    write_run(tmp_path / "one" / "r2", dict(BASE_CONFIG, seed=2, windows=[20, 5], epochs=60),
              synth_columns(60, True, 2, windows=(20, 5)))
    _, notes = figures_from_runs(read_tree(tmp_path / "one"), ("top5",))
    assert notes == ["top5: window(s) [5] not logged by every run, left out: the figure shows [20] only (a run logs "
                     "the windows of its train --windows)"]
    _, notes = figures_from_runs(read_tree(tmp_path / "one"), ("top5",), windows=(5, 20, 30))
    assert notes == ["top5: window(s) [5, 30] not logged by every run, left out: the figure shows [20] only "
                     "(a run logs the windows of its train --windows)"]
    _, notes = figures_from_runs(read_tree(tmp_path / "one"), ("top5",), windows=(5, 30))
    assert notes == ["top5: window(s) [5, 30] not logged by every run, left out: figure skipped (a run logs the "
                     "windows of its train --windows)"]


def test_a_display_backend_in_the_environment_does_not_matter(tmp_path):
    """MPLBACKEND naming a backend matplotlib does not know made `import matplotlib` raise (a traceback,
    exit 1); the figures are drawn on an Agg canvas into files, so the CLI ignores the variable."""
    import os
    import subprocess
    import sys
    root = tmp_path / "runs"
    write_run(root / "r0", dict(BASE_CONFIG, seed=0, windows=[20]), synth_columns(60, True, 0, windows=(20,)))
    env = dict(os.environ, MPLBACKEND="no-such-backend")
    cli = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cli.py")
    p = subprocess.run([sys.executable, cli, "plot", str(root), "--out", str(tmp_path / "f")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert (tmp_path / "f" / "headline.png").is_file()


def test_no_figure_drawn_is_one_line_with_its_reasons(tmp_path):
    """When no figure can be drawn the notes that say why are part of the one error line (they were
    printed as lines of their own before it)."""
    write_run(tmp_path / "r0", dict(BASE_CONFIG, seed=0, windows=[20]), synth_columns(60, True, 0, windows=(20,)))
    r = CliRunner().invoke(plot_cmd, [str(tmp_path), "--out", str(tmp_path / "f"), "--figure", "activation"])
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1, r.stderr
    assert "no figure could be drawn" in lines[0] and "one activation" in lines[0]
    assert not (tmp_path / "f").exists()


def test_top5_with_many_conditions_is_split_into_figures(tmp_path):
    """One row a condition: 10 conditions are drawn 8 and 2 (top5, top5_2), each figure's title says which,
    a note names the figures, and plot writes both, noting a page an earlier, larger plot left behind."""
    from tianref.analysis import plots
    root = tmp_path / "etas"
    etas = [k * 1e-4 for k in range(1, 11)]
    for i, eta in enumerate(etas):
        write_run(root / f"eta{i}", dict(BASE_CONFIG, eta=eta, epochs=60), synth_columns(60, True, seed=i))
    figs, notes = figures_from_runs(read_tree(root), which=("top5",))
    assert list(figs) == ["top5", "top5_2"] == plots.top5_names(10)
    assert len(figs["top5"].axes) == plots.TOP5_ROWS == 8 and len(figs["top5_2"].axes) == 2
    assert "conditions 1–8 of 10" in figs["top5"]._suptitle.get_text()
    assert "conditions 9–10 of 10" in figs["top5_2"]._suptitle.get_text()
    assert notes == ["top5: 10 conditions, drawn 8 to a figure: top5, top5_2"]
    assert plots.top5_names(8) == ["top5"] and plots.top5_names(17) == ["top5", "top5_2", "top5_3"]
    out = tmp_path / "figs"
    out.mkdir()
    (out / "top5_3.png").write_bytes(b"older")
    res = CliRunner().invoke(plot_cmd, [str(root), "--out", str(out), "--figure", "top5", "--dpi", "30"])
    assert res.exit_code == 0, res.output
    assert res.stdout.split() == [str(out / "top5.png"), str(out / "top5_2.png")]
    assert "top5_3.png" in res.stderr and "earlier plot" in res.stderr
    assert (out / "top5_3.png").read_bytes() == b"older"            # never removed
    (out / "top5_2.png").unlink()
    (out / "top5_2.png").mkdir()                                    # a folder where a page goes: refused
    res = CliRunner().invoke(plot_cmd, [str(root), "--out", str(out), "--figure", "top5", "--dpi", "30"])
    assert res.exit_code == 2 and "top5_2.png" in res.output


def test_the_clocks_marks_legend_fits_a_one_panel_figure():
    """The marks' key under the panels was one line of ~100 characters: wider than a one-condition figure
    (4.6 in), it ran off both sides; it now wraps to the figure's width."""
    from tianref.analysis.edge_figures import figure_clocks
    rows = [{"epoch": t, "W_srank": 1.0 + t, "train_loss": 1.0 / (1 + t)} for t in range(3)]
    fig = figure_clocks([("cond", [(rows, {"t_cls": 1.0, "seed": 0})])])
    fig.canvas.draw()
    box = fig._supxlabel.get_window_extent(fig.canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= fig.bbox.x1, (box, fig.bbox)
    assert fig._supxlabel.get_text().startswith("epoch\nmarks, in each run's colour:")
