"""One figure of logged columns over epochs, median and IQR band per group of runs (shared by sections; no
section's logic)."""
from __future__ import annotations

from matplotlib.figure import Figure

from tianref.experiments.reproduce.cells import quantile_series


def _nn(v):
    return float("nan") if v is None else v


def series_figure(records, group_of, keys, title: str, extra=None) -> Figure:
    """keys: [(column, panel title)]; extra(ax) draws one more panel when given."""
    n = len(keys) + (1 if extra else 0)
    cols = 4 if n > 6 else 3
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows))
    for i, (key, label) in enumerate(keys):
        ax = fig.add_subplot(rows, cols, i + 1)
        for j, (g, s) in enumerate(sorted(quantile_series(records, key, group_of).items())):
            ax.plot(s["epoch"], [_nn(v) for v in s["median"]], color=f"C{j}", label=f"{g} (n={s['n']})")
            ax.fill_between(s["epoch"], [_nn(v) for v in s["q25"]], [_nn(v) for v in s["q75"]], color=f"C{j}",
                            alpha=0.2)
        ax.set(xlabel="epoch", title=label)
        if i == 0:
            ax.legend(fontsize=8)
    if extra:
        extra(fig.add_subplot(rows, cols, n))
    fig.suptitle(title + ": median over seeds, band = IQR")
    fig.tight_layout()
    return fig
