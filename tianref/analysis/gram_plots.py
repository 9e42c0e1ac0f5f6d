"""Float64 vs float32 Gram, per rolling window: the picture behind the window sweep's differences.

References: docs/math.md §8 (float32 vs float64 Gram), docs/paper-protocol.md §6 (the window sweep
at W <= 10), :mod:`tianref.analysis.plots` (the band style: median over seeds, 25th-75th percentile).

Figure ``fig_gram_precision`` (rows x columns = quantity x window W):
    row 1   sigma2/sigma3 of the grok runs, one line per logged Gram mode (log scale)
    row 2   the same for the control runs
    row 3   sigma3/sigma1 of the grok runs in float32 epsilons (2^-23), with the 1 and
            PRECISION_FACTOR (100) epsilon levels: below 100 a float32 Gram cannot resolve sigma3
Optional ``paper_late`` {W: (grok, control)} draws the paper's late sigma2/sigma3 over the late range.

Symbols: gap = sigma2/sigma3 (``W_gap23`` + mode suffix + window suffix), q = sigma3/sigma1.
"""
from __future__ import annotations

from tianref.analysis import diagnostics as dg
from tianref.analysis.plots import Figure, _plot_band, _style
from tianref.analysis.records import window_key
from tianref.analysis.summarize import GRAM_KEYS

LABELS = {"main": "float64", "float32": "float32 (BLAS)", "float32-seq": "float32, sequential sums"}


def _series(r, name, sfx, W):
    return r.columns.get(window_key(r, name + sfx, W))


def fig_gram_precision(grok, control, windows, grams=("main",), late=None, paper_late=None) -> Figure:
    """grok, control: lists of RunRecord; grams: modes logged by every run (GRAM_KEYS)."""
    ncol = len(windows)
    fig = Figure(figsize=(3.6 * ncol + 0.6, 9.4), layout="constrained")
    axes = fig.subplots(3, ncol, sharex=True, squeeze=False)
    for j, W in enumerate(windows):
        for k, g in reversed(list(enumerate(grams))):             # float64 drawn last, on top
            sfx, c = GRAM_KEYS[g], f"C{k}"
            for i, recs in enumerate((grok, control)):
                gaps = [_series(r, "W_gap23", sfx, W) for r in recs]
                gaps = [x for x in gaps if x is not None]
                if gaps:
                    _plot_band(axes[i, j], gaps, c, LABELS.get(g, g), log=True)
            qs = []
            for r in grok:
                S = _series(r, "W_sigma", sfx, W)
                if S is not None and S.ndim == 2 and S.shape[1] >= 3:
                    qs.append(dg.sigma_ratio(S[:, 2], S[:, 0]) / dg.F32_EPS)
            if qs:
                _plot_band(axes[2, j], qs, c, LABELS.get(g, g), log=True)
        for i in range(2):
            if paper_late and W in paper_late and late:
                axes[i, j].hlines(paper_late[W][i], late[0], late[1], colors="k", linestyles=":",
                                  label=f"paper late {paper_late[W][i]:g}")
        for lvl, ls in ((1.0, ":"), (dg.PRECISION_FACTOR, "--")):
            axes[2, j].axhline(lvl, color="gray", lw=0.9, ls=ls,
                               label=f"{lvl:g} float32 eps" if j == 0 else None)
        axes[0, j].set_title(f"W = {W}", fontsize=10)
        for i, lab in enumerate(("grok σ2/σ3", "control σ2/σ3", "grok σ3/σ1 (float32 eps)")):
            _style(axes[i, j], lab if j == 0 else "", log=True)
        axes[2, j].set_xlabel("epoch")
    names = list(LABELS.values())
    for i in range(3):                                              # legend in LABELS order
        h, lab = axes[i, 0].get_legend_handles_labels()
        order = sorted(range(len(lab)), key=lambda k: names.index(lab[k]) if lab[k] in names else len(names))
        axes[i, 0].legend([h[k] for k in order], [lab[k] for k in order], fontsize=7, loc="best")
    fig.suptitle("Rolling ΔW Gram in float64 and float32, per window (median over seeds, "
                 "band = 25th-75th percentile)")
    return fig
