"""The paper's figures, drawn from run directories.

References: the seed paper's figures as described in ``docs/paper-protocol.md`` §1-2
(the headline two-stage overlay, the rank-2 top-5 eigenvalue panels of T4, the x^2 vs ReLU
comparison of T-ReLU) and §3 for the plotted quantities. Medians over seeds with the
25th-75th percentile band (np.nanmedian / np.nanpercentile per epoch), as the notes plot them.

Figures (each a ``matplotlib.figure.Figure`` built without pyplot state; saved with savefig):

    headline     test accuracy, rho_tian and sigma2/sigma3 (log) vs epoch, one line per condition,
                 with the median sigma2/sigma3 slope-fire epoch (default detector) marked (the legend
                 says 'no σ₂/σ₃ fire (0/n)' for a condition where no run fired), and the
                 median collapse epoch (diagnostics.collapse_epoch) where sigma2/sigma3 collapses
    top5         sigma1..sigma5 of the rolling Delta-W Gram (log) at W = 5/20/30, per condition (titles
                 wrapped to their panel's width); more than TOP5_ROWS conditions are drawn TOP5_ROWS to a
                 figure: top5, top5_2, top5_3, ... (one row a condition would make 40 conditions a
                 16 000-pixel-tall image)
    activation   x^2 vs ReLU: test accuracy, rho_tian and sigma2/sigma3, grok vs control

A long legend (a mixed tree's conditions) goes below the axes in as many columns as fit the figure's
width, its labels wrapped when one column does not fit. Diverged runs (records.run_status: the loss or the
parameters became non-finite) are left out of every figure and named in a note: their last rows hold
values ~1e50 that would set the range of every shared axis.

Symbols: sigma_i = i-th eigenvalue of the rolling Gram D^T D (``W_sigma[i-1]``), gap = sigma2/sigma3
(``W_gap23``), rho = rho_tian. Window W selects the key (``W_gap23`` or ``W_gap23_w<W>``).
"""
from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")        # headless; harmless when already set
from matplotlib.figure import Figure  # noqa: E402
import numpy as np  # noqa: E402

from tianref.analysis import detectors as det  # noqa: E402
from tianref.analysis import diagnostics as dg  # noqa: E402
from tianref.analysis import figure_text as ft  # noqa: E402
from tianref.errors import InputError  # noqa: E402
from tianref.runs import atomic_write_bytes  # noqa: E402
from tianref.analysis.records import RunRecord, run_status, window_key, windows_of  # noqa: E402
from tianref.analysis.summarize import condition_labels, group_conditions  # noqa: E402

FIGURES = ("headline", "top5", "activation")
TOP5_ROWS = 8                # conditions (rows) of one top-5 figure; more go on top5_2, top5_3, ...
ACT_NAMES = {"sqr": "x²", "relu": "ReLU", "silu": "SiLU", "relusqr": "ReLU²"}


# --- data -------------------------------------------------------------------------------------

def stack(series: list[np.ndarray]) -> np.ndarray:
    """Runs of different lengths -> (n_runs, max_len) padded with NaN."""
    n = max((len(s) for s in series), default=0)
    out = np.full((len(series), n), np.nan)                         # (runs, E+1)
    for i, s in enumerate(series):
        out[i, :len(s)] = s
    return out


def band(series: list[np.ndarray]):
    """(t, median, q25, q75) across runs, per epoch; NaN where no run has a value."""
    A = stack(series)                                                # (runs, E+1)
    with warnings.catch_warnings():                                  # all-NaN epochs -> NaN quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(A, axis=0)
        q25, q75 = np.nanpercentile(A, [25, 75], axis=0)
    return np.arange(A.shape[1]), med, q25, q75


def _gap(r: RunRecord, window):
    return r.col(window_key(r, "W_gap23", window))


def _sigma(r: RunRecord, i: int, window) -> np.ndarray:
    """sigma_{i+1} of window W, (E+1,); NaN where not logged."""
    S = r.columns.get(window_key(r, "W_sigma", window))
    if S is None or S.ndim != 2 or S.shape[1] <= i:
        return np.full(r.n_epochs, np.nan)
    return S[:, i]


def _plot_band(ax, series, color, label, log=False):
    """Median line; the 25th-75th percentile band only over more than one run."""
    t, med, lo, hi = band(series)
    if log:                                                          # log axes: keep positive values
        med, lo, hi = (np.where(a > 0, a, np.nan) for a in (med, lo, hi))
    line, = ax.plot(t, med, color=color, lw=1.6, label=label)
    if len(series) > 1:
        ax.fill_between(t, lo, hi, color=color, alpha=0.2, lw=0)
    return line


def _style(ax, ylabel, log=False):
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both" if log else "major")


def _panels(records, window):
    """The headline panels whose metric some run logged: [(key, y label, log)]."""
    W = ft.window_of(records, window)
    gap_label = "σ₂/σ₃ of the rolling\nΔW Gram" + ("" if W is None else f" (W = {W})")   # two lines: in its panel
    out = []
    if ft.present(records, "test_acc"):
        out.append(("test_acc", "test accuracy", False))
    if ft.present(records, "rho_tian"):
        out.append(("rho_tian", "ρ_tian", False))
    if any(_has_gap(r, window) for r in records):
        out.append(("gap", gap_label, True))
    if not out:
        raise InputError("the runs logged none of test_acc, rho_tian, W_gap23: nothing to plot")
    return out


def _has_gap(r, window):
    try:
        return r.has(window_key(r, "W_gap23", window))
    except InputError:
        return False


def _series(r, key, window):
    return _gap(r, window) if key == "gap" else r.col(key)


def _guides(ax, key, rho_threshold):
    if key == "test_acc":
        ax.set_ylim(-0.02, 1.05)
        ax.axhline(0.5, color="gray", lw=0.7, ls=":")
    elif key == "rho_tian":
        ax.axhline(rho_threshold, color=RHO_STYLE[0], lw=0.8, ls=RHO_STYLE[1])


def condition_colours(n: int) -> list:
    """n distinct colours for n conditions: Matplotlib's cycle C0..C9 while it suffices (the colours every
    other figure uses), else tab20 up to 20, else n points of the turbo colour map: "C{k}" wraps at 10,
    so an 11th condition would take the 1st one's colour."""
    if n <= 10:
        return [f"C{k}" for k in range(n)]
    cmap = matplotlib.colormaps["tab20" if n <= 20 else "turbo"]
    return [cmap(k) for k in range(n)] if n <= 20 else [cmap(k / (n - 1)) for k in range(n)]


RHO_STYLE = ("gray", "-.")      # the rho_tian threshold line: its own colour and dash, unlike an event mark
EVENT_COLOR = "black"           # legend swatch of an event mark; the marks themselves take their condition's colour
TITLE_PT_PER_CHAR = 6.5         # a top-5 panel title (10 pt) wraps at the characters its panel's width holds
WIDE_LABEL = 45                 # a legend label longer than this goes below the axes, not beside them
FIT_WIDTH = 0.98                # a legend below the axes may take this fraction of the figure's width


def _legend(fig, handles, extra):
    """One legend for the figure, outside the axes (it hides no data). ``extra``: (linestyle, label[,
    colour]) swatches for the guide lines. Short labels sit on the right; long ones (a mixed tree's
    conditions with their events) go below the axes, so the panels keep the figure's width."""
    from matplotlib.lines import Line2D
    hs = list(handles) + [Line2D([], [], color=(e[2] if len(e) > 2 else EVENT_COLOR), ls=e[0], lw=0.9,
                                 label=e[1]) for e in extra]
    wide = max((len(h.get_label()) for h in hs), default=0) > WIDE_LABEL
    if not wide:
        fig.legend(handles=hs, loc="outside right center", fontsize=8, frameon=False)
        return
    for ncols in ((2, 1) if len(hs) > 4 else (1,)):
        leg = fig.legend(handles=hs, loc="outside lower center", fontsize=8, frameon=False, ncols=ncols)
        over = _width(fig, leg) / fig.bbox.width
        if over <= FIT_WIDTH:
            return
        leg.remove()
    # one column is still wider than the figure: wrap every label to the width that fits
    chars = max(20, int(max(len(h.get_label()) for h in hs) * FIT_WIDTH / over) - 4)
    leg = fig.legend(handles=hs, loc="outside lower center", fontsize=8, frameon=False, ncols=1)
    for t in leg.get_texts():
        t.set_text(textwrap.fill(t.get_text(), chars, subsequent_indent="  "))



def _width(fig, artist) -> float:
    """Drawn width of ``artist`` in pixels (an Agg renderer measures the text as savefig will draw it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    return artist.get_window_extent(canvas.get_renderer()).width


# --- figures ----------------------------------------------------------------------------------

def fig_headline(groups, window=None, rho_threshold=det.RHO_THRESHOLD, title=None) -> Figure:
    """groups: [(label, [RunRecord])]. One panel per logged metric (test accuracy, ρ_tian,
    σ2/σ3 of window W), sharing the epoch axis; the title and legend come from the conditions."""
    records = [r for _, rs in groups for r in rs]
    panels = _panels(records, window)
    fig = Figure(figsize=(10.5, 2.7 * len(panels) + 0.9), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    several = any(len(rs) > 1 for _, rs in groups)
    handles, marks = [], set()
    colours = condition_colours(len(groups))
    for k, (label, recs) in enumerate(groups):
        c = colours[k]
        events = []
        line = None
        for ax, (key, _, log) in zip(axes, panels):
            ln = _plot_band(ax, [_series(r, key, window) for r in recs], c, None, log=log)
            line = line or ln
            if key != "gap":
                continue
            gaps = [_gap(r, window) for r in recs]
            fires = [det.slope_fire(g) for g in gaps]
            for name, stat, ls in (
                    ("fire", det.across_runs(fires), "--"),
                    ("collapse", det.across_runs([dg.collapse_epoch(g, f) for g, f in zip(gaps, fires)]), ":")):
                text = ft.event_text("σ₂/σ₃ " + name, stat, say_never=name == "fire")   # not ρ's fire
                if text:
                    events.append(text)
                if stat["n_fired"]:
                    ax.axvline(stat["median"], color=c, lw=0.9, ls=ls)
                    marks.add((ls, name))
        line.set_label(f"{label} (n={len(recs)})" + (": " + ", ".join(events) if events else ""))
        handles.append(line)
    for ax, (key, ylabel, log) in zip(axes, panels):
        _style(ax, ylabel, log)
        _guides(ax, key, rho_threshold)
    axes[-1].set_xlabel("epoch")
    med = "median " if several else ""
    extra = [(ls, {"fire": f"σ₂/σ₃ slope fire ({med}epoch; vertical, in its condition's colour)",
                   "collapse": f"σ₂/σ₃ collapse, < 1/10 of its max since fire ({med}epoch)"}[n])
             for ls, n in sorted(marks, key=lambda m: m[1] != "fire")]
    if any(k == "rho_tian" for k, _, _ in panels):
        extra.append((RHO_STYLE[1], f"ρ_tian = {rho_threshold:g} (in its panel)", RHO_STYLE[0]))
    _legend(fig, handles, extra)
    fig.suptitle(f"{title or ft.title_of(groups)}\n{ft.setup_of(records, window)}; {ft.spread_of(groups)}",
                 fontsize=10)
    return fig


def top5_names(n_conditions: int) -> list[str]:
    """The top-5 figures' names for n conditions: top5, then top5_2, top5_3, ... (TOP5_ROWS to a figure)."""
    pages = max(1, -(-n_conditions // TOP5_ROWS))
    return ["top5"] + [f"top5_{k}" for k in range(2, pages + 1)]


def fig_top5(groups, windows=(5, 20, 30), part: str = "") -> Figure:
    """Rows = groups, columns = windows; sigma1..sigma5 (medians over seeds where n > 1), log scale.
    part: what the title adds when the conditions are split over several figures ("conditions 9-16 of 40")."""
    ncol, nrow = len(windows), len(groups)
    fig = Figure(figsize=(max(4.2 * ncol, 6.0) + 1.0, 3.4 * nrow + 0.6), layout="constrained")
    axes = np.atleast_2d(fig.subplots(nrow, ncol, sharex=True, sharey=True, squeeze=False))
    title_chars = max(30, int((fig.get_figwidth() - 1.0) / ncol * 72 / TITLE_PT_PER_CHAR))
    handles = []
    for i, (label, recs) in enumerate(groups):
        for j, W in enumerate(windows):
            ax = axes[i, j]
            for s in range(5):
                ln = _plot_band(ax, [_sigma(r, s, W) for r in recs], f"C{s}", f"σ{s + 1}", log=True)
                if i == 0 and j == 0:
                    handles.append(ln)
            ax.set_title(textwrap.fill(f"{label}, W = {W}", title_chars), fontsize=10)
            _style(ax, "eigenvalue of DᵀD" if j == 0 else "", log=True)
            if i == nrow - 1:
                ax.set_xlabel("epoch")
    _legend(fig, handles, [])
    records = [r for _, rs in groups for r in rs]
    fig.suptitle(f"Top-5 eigenvalues of the rolling ΔW Gram{f' ({part})' if part else ''}\n"
                 f"{ft.setup_of(records, show_window=False)}; {ft.spread_of(groups)}",
                 fontsize=10)
    return fig


def fig_activation(by_act, window=None, rho_threshold=det.RHO_THRESHOLD) -> Figure:
    """by_act: [(activation name, [(label, [RunRecord])])]; columns = activations, rows = the
    metrics some run logged."""
    ncol = len(by_act)
    records = [r for _, groups in by_act for _, rs in groups for r in rs]
    panels = _panels(records, window)
    fig = Figure(figsize=(5.2 * ncol + 1.8, 2.7 * len(panels) + 0.9), layout="constrained")
    axes = fig.subplots(len(panels), ncol, sharex=True, squeeze=False)    # one epoch range for all columns
    handles = {}
    colours = condition_colours(max((len(groups) for _, groups in by_act), default=0))   # k-th of every column alike
    for j, (act, groups) in enumerate(by_act):
        for k, (label, recs) in enumerate(groups):
            c = colours[k]
            for i, (key, _, log) in enumerate(panels):
                ln = _plot_band(axes[i, j], [_series(r, key, window) for r in recs], c,
                                f"{label} (n={len(recs)})", log=log)
                handles.setdefault(label, ln)
        ns = sorted({len(recs) for _, recs in groups})
        axes[0, j].set_title(f"σ = {ACT_NAMES.get(act, act)} (n = {', '.join(map(str, ns))} per condition)")
        axes[-1, j].set_xlabel("epoch")
        for i, (key, ylab, log) in enumerate(panels):
            _style(axes[i, j], ylab if j == 0 else "", log)
            _guides(axes[i, j], key, rho_threshold)
    for i, (key, _, _) in enumerate(panels):                         # same y range across activations
        if key == "test_acc":
            continue
        lo = min(ax.get_ylim()[0] for ax in axes[i])
        hi = max(ax.get_ylim()[1] for ax in axes[i])
        for ax in axes[i]:
            ax.set_ylim(lo, hi)
    for ln in handles.values():                                      # n may differ by activation
        ln.set_label(ln.get_label().split(" (n=")[0])
    _legend(fig, list(handles.values()), [])
    all_groups = [g for _, gs in by_act for g in gs]
    fig.suptitle(f"Activation comparison: {', '.join(ACT_NAMES.get(a, a) for a, _ in by_act)}\n"
                 f"{ft.setup_of(records, window)}; {ft.spread_of(all_groups)}", fontsize=10)
    return fig


# --- from a tree of runs ----------------------------------------------------------------------

def _labelled(groups):
    labels = condition_labels([cc for cc, _ in groups])
    return [(lab, recs) for lab, (_, recs) in zip(labels, groups)]


def figures_from_runs(records: list[RunRecord], which=FIGURES, window=None,
                      windows=None, act: str = "sqr") -> tuple[dict, list[str]]:
    """Build the requested figures from runs: ({name: Figure}, [notes on what was skipped]). Diverged runs
    (records.run_status) are left out, and named in a note. windows: the top-5 panels' rolling windows;
    None: every window the runs shown logged (a window some of them lack is left out, with a note)."""
    unknown = set(which) - set(FIGURES)
    if unknown:
        raise InputError(f"unknown figure(s) {sorted(unknown)}; choose from {', '.join(FIGURES)}")
    notes = []
    status = [run_status(r) for r in records]
    blown = [(r, s) for r, s in zip(records, status) if s["status"] == "diverged"]
    if blown:                   # their last rows hold values ~1e50 that would set every shared axis's range
        notes.append(f"left out {len(blown)} diverged run(s): "
                     + "; ".join(f"{r.path.name}: {s['why']}" for r, s in blown))
    kept = [(r, s) for r, s in zip(records, status) if s["status"] != "diverged"]
    empty = [r for r, _ in kept if r.n_rows == 0]
    if empty:                   # nothing to draw (a run just started, or stopped while it was set up)
        notes.append(f"left out {len(empty)} run(s) with no logged row: " + ", ".join(r.path.name for r in empty))
    kept = [(r, s) for r, s in kept if r.n_rows > 0]
    records = [r for r, _ in kept]
    short = [(r, s) for r, s in kept
             if s["status"] == "unfinished" and s["epochs"] is not None]        # E unknown: nothing to fall short of
    if short:                   # drawn as far as they go: a median over fewer runs after their last row
        notes.append(f"{len(short)} unfinished run(s) drawn to their last row (medians over fewer runs "
                     "after it; a detector that had not fired by then counts as not fired): "
                     + "; ".join(f"{r.path.name}: {s['why']}" for r, s in short))
    groups = group_conditions(records)
    if not groups:
        raise InputError("no runs to plot" + (f" ({notes[0]})" if notes else ""))
    acts = sorted({cc.get("act", "sqr") for cc, _ in groups})
    main = [g for g in groups if g[0].get("act", "sqr") == act] or groups
    figs = {}
    if window is not None and any(n in which for n in ("headline", "activation")):
        shown = [r for _, rs in (groups if "activation" in which else main) for r in rs]
        if not any(_has_gap(r, window) for r in shown):   # its panel would vanish, the title still naming W
            logged = sorted({W for r in shown for W in windows_of(r)})
            raise InputError(f"--window {window}: no run shown logged that window (their windows: "
                             f"{', '.join(map(str, logged)) or 'none'})")
    if window is None and any(n in which for n in ("headline", "activation")):
        shown = [r for _, rs in (groups if "activation" in which else main) for r in rs]
        window = ft.window_of(shown)        # one window for every run: a run's own first one may differ
        if window is None and len({tuple(r.config.get("windows") or (20,))[0] for r in shown}) > 1:
            notes.append("the runs share no rolling window: each sigma2/sigma3 curve is its run's first "
                         "window (give --window to choose one)")
    if "headline" in which:
        figs["headline"] = fig_headline(_labelled(main), window)
    if "top5" in which:
        if windows is None:
            windows = sorted({W for _, rs in main for r in rs for W in windows_of(r)})
        have = [W for W in windows if all(_has_window(r, W) for _, rs in main for r in rs)]
        missing = [W for W in windows if W not in have]
        if missing:
            shows = f"the figure shows {have} only" if have else "figure skipped"
            notes.append(f"top5: window(s) {missing} not logged by every run, left out: {shows} (a run logs "
                         "the windows of its train --windows)")
        if have:
            labelled = _labelled(main)
            names = top5_names(len(labelled))
            for k, name in enumerate(names):
                rows = labelled[k * TOP5_ROWS:(k + 1) * TOP5_ROWS]
                part = (f"conditions {k * TOP5_ROWS + 1}–{k * TOP5_ROWS + len(rows)} of {len(labelled)}"
                        if len(names) > 1 else "")
                figs[name] = fig_top5(rows, tuple(have), part)
            if len(names) > 1:
                notes.append(f"top5: {len(labelled)} conditions, drawn {TOP5_ROWS} to a figure: "
                             + ", ".join(names))
        elif not windows:
            notes.append("top5: the runs name no rolling window in their config; figure skipped")
    if "activation" in which:
        if len(acts) < 2:
            notes.append(f"activation: runs use one activation ({acts[0]}); figure skipped")
        else:
            order = sorted(acts, key=lambda a: (a != "sqr", a != "relu", a))
            by_act = []
            for a in order:
                sub = [g for g in groups if g[0].get("act", "sqr") == a]
                by_act.append((a, _labelled(sub)))
            figs["activation"] = fig_activation(by_act, window)
    return figs, notes


def _has_window(r: RunRecord, W: int) -> bool:
    try:
        return r.has(window_key(r, "W_sigma", W))
    except InputError:
        return False


def save(fig: Figure, path, dpi: int = 120) -> Path:
    """savefig to ``path`` (format from the suffix), atomically: a temp file beside it is renamed
    over it, so a kill never leaves a truncated or empty figure. Returns the path."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    atomic_write_bytes(str(path), lambda f: fig.savefig(f, format=fmt, dpi=dpi))
    return path
