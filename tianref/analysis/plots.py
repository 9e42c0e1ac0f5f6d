"""The paper's figures, drawn from run directories.

References: the seed paper's figures as described in ``docs/paper-protocol.md`` §1-2
(the headline two-stage overlay, the rank-2 top-5 eigenvalue panels of T4, the x^2 vs ReLU
comparison of T-ReLU) and §3 for the plotted quantities. Medians over seeds with the
25th-75th percentile band (np.nanmedian / np.nanpercentile per epoch), as the notes plot them.

Figures (each a ``matplotlib.figure.Figure`` built without pyplot state; saved with savefig):

    headline     test accuracy, rho_tian and sigma2/sigma3 (log) vs epoch, one line per condition,
                 with the median sigma2/sigma3 slope-fire epoch (default detector) marked, and the
                 median collapse epoch (diagnostics.collapse_epoch) where sigma2/sigma3 collapses
    top5         sigma1..sigma5 of the rolling Delta-W Gram (log) at W = 5/20/30, per condition
    activation   x^2 vs ReLU: test accuracy, rho_tian and sigma2/sigma3, grok vs control

Symbols: sigma_i = i-th eigenvalue of the rolling Gram D^T D (``W_sigma[i-1]``), gap = sigma2/sigma3
(``W_gap23``), rho = rho_tian. Window W selects the key (``W_gap23`` or ``W_gap23_w<W>``).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")        # headless; harmless when already set
from matplotlib.figure import Figure  # noqa: E402
import numpy as np  # noqa: E402

from tianref.analysis import detectors as det  # noqa: E402
from tianref.analysis import diagnostics as dg  # noqa: E402
from tianref.errors import InputError  # noqa: E402
from tianref.analysis.records import RunRecord, window_key  # noqa: E402
from tianref.analysis.summarize import condition_labels, group_conditions  # noqa: E402

FIGURES = ("headline", "top5", "activation")
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
    t, med, lo, hi = band(series)
    if log:                                                          # log axes: keep positive values
        med, lo, hi = (np.where(a > 0, a, np.nan) for a in (med, lo, hi))
    ax.plot(t, med, color=color, lw=1.6, label=label)
    ax.fill_between(t, lo, hi, color=color, alpha=0.2, lw=0)


def _style(ax, ylabel, log=False):
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both" if log else "major")


# --- figures ----------------------------------------------------------------------------------

def fig_headline(groups, window=None, rho_threshold=det.RHO_THRESHOLD,
                 title="Grok vs control") -> Figure:
    """groups: [(label, [RunRecord])]. Three panels sharing the epoch axis."""
    fig = Figure(figsize=(8, 9), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    for k, (label, recs) in enumerate(groups):
        c = f"C{k % 10}"
        lab = f"{label} (n={len(recs)})"
        _plot_band(axes[0], [r.col("test_acc") for r in recs], c, lab)
        _plot_band(axes[1], [r.col("rho_tian") for r in recs], c, lab)
        gaps = [_gap(r, window) for r in recs]
        _plot_band(axes[2], gaps, c, lab, log=True)
        fires = [det.slope_fire(g) for g in gaps]
        fire = det.across_runs(fires)                              # lock-in marker, if it fired
        if fire["n_fired"]:
            axes[2].axvline(fire["median"], color=c, lw=0.9, ls="--",
                            label=f"slope fire, median {fire['median']:g} "
                                  f"({fire['n_fired']}/{fire['n']})")
        col = det.across_runs([dg.collapse_epoch(g, f) for g, f in zip(gaps, fires)])
        if col["n_fired"]:                                          # sigma2/sigma3 collapse marker
            axes[2].axvline(col["median"], color=c, lw=0.9, ls=":",
                            label=f"σ2/σ3 collapse (< 1/10 of max since fire), median {col['median']:g} "
                                  f"({col['n_fired']}/{col['n']})")
    _style(axes[0], "test accuracy")
    axes[0].set_ylim(-0.02, 1.05)
    axes[0].axhline(0.5, color="gray", lw=0.7, ls=":")
    _style(axes[1], "ρ_tian")
    axes[1].axhline(rho_threshold, color="gray", lw=0.8, ls="--", label=f"ρ = {rho_threshold:g}")
    _style(axes[2], "σ2/σ3 of rolling ΔW Gram" + ("" if window is None else f" (W={window})"),
           log=True)
    axes[2].set_xlabel("epoch")
    for ax in axes:
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"{title}: median over seeds, band = 25th-75th percentile")
    return fig


def fig_top5(groups, windows=(5, 20, 30)) -> Figure:
    """Rows = groups, columns = windows; sigma1..sigma5 medians over seeds, log scale."""
    ncol, nrow = len(windows), len(groups)
    fig = Figure(figsize=(max(4.2 * ncol, 6.0), 3.4 * nrow + 0.4), layout="constrained")
    axes = np.atleast_2d(fig.subplots(nrow, ncol, sharex=True, sharey=True, squeeze=False))
    for i, (label, recs) in enumerate(groups):
        for j, W in enumerate(windows):
            ax = axes[i, j]
            for s in range(5):
                _plot_band(ax, [_sigma(r, s, W) for r in recs], f"C{s}", f"σ{s + 1}", log=True)
            ax.set_title(f"{label}, W = {W}", fontsize=10)
            _style(ax, "eigenvalue of DᵀD" if j == 0 else "", log=True)
            if i == nrow - 1:
                ax.set_xlabel("epoch")
    axes[0, 0].legend(fontsize=8, ncol=2, loc="lower left")
    fig.suptitle("Top-5 eigenvalues of the rolling ΔW Gram\n(median over seeds, band = 25th-75th percentile)")
    return fig


def fig_activation(by_act, window=None, rho_threshold=det.RHO_THRESHOLD) -> Figure:
    """by_act: [(activation name, [(label, [RunRecord])])]; columns = activations."""
    ncol = len(by_act)
    fig = Figure(figsize=(5.2 * ncol, 9), layout="constrained")
    axes = fig.subplots(3, ncol, sharex="col", squeeze=False)
    for j, (act, groups) in enumerate(by_act):
        for k, (label, recs) in enumerate(groups):
            c = f"C{k % 10}"
            lab = f"{label} (n={len(recs)})"
            _plot_band(axes[0, j], [r.col("test_acc") for r in recs], c, lab)
            _plot_band(axes[1, j], [r.col("rho_tian") for r in recs], c, lab)
            _plot_band(axes[2, j], [_gap(r, window) for r in recs], c, lab, log=True)
        axes[0, j].set_title(f"σ = {ACT_NAMES.get(act, act)}")
        axes[1, j].axhline(rho_threshold, color="gray", lw=0.8, ls="--")
        axes[2, j].set_xlabel("epoch")
        for i, (ylab, log) in enumerate([("test accuracy", False), ("ρ_tian", False),
                                         ("σ2/σ3 (rolling ΔW)", True)]):
            _style(axes[i, j], ylab if j == 0 else "", log)
        axes[0, j].set_ylim(-0.02, 1.05)
        axes[0, j].legend(fontsize=8, loc="best")
    for i in (1, 2):                                                 # same y range across activations
        lo = min(ax.get_ylim()[0] for ax in axes[i])
        hi = max(ax.get_ylim()[1] for ax in axes[i])
        for ax in axes[i]:
            ax.set_ylim(lo, hi)
    fig.suptitle("Activation comparison: median over seeds, band = 25th-75th percentile")
    return fig


# --- from a tree of runs ----------------------------------------------------------------------

def _labelled(groups):
    labels = condition_labels([cc for cc, _ in groups])
    return [(lab, recs) for lab, (_, recs) in zip(labels, groups)]


def figures_from_runs(records: list[RunRecord], which=FIGURES, window=None,
                      windows=(5, 20, 30), act: str = "sqr") -> tuple[dict, list[str]]:
    """Build the requested figures from runs: ({name: Figure}, [notes on what was skipped])."""
    unknown = set(which) - set(FIGURES)
    if unknown:
        raise InputError(f"unknown figure(s) {sorted(unknown)}; choose from {', '.join(FIGURES)}")
    groups = group_conditions(records)
    if not groups:
        raise InputError("no runs to plot")
    acts = sorted({cc.get("act", "sqr") for cc, _ in groups})
    main = [g for g in groups if g[0].get("act", "sqr") == act] or groups
    figs, notes = {}, []
    if "headline" in which:
        figs["headline"] = fig_headline(_labelled(main), window)
    if "top5" in which:
        have = [W for W in windows if all(_has_window(r, W) for _, rs in main for r in rs)]
        missing = [W for W in windows if W not in have]
        if missing:
            notes.append(f"top5: window(s) {missing} not logged by every run; left out")
        if have:
            figs["top5"] = fig_top5(_labelled(main), tuple(have))
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
    """savefig to ``path`` (format from the suffix); returns the path."""
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path
