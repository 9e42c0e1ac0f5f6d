"""Figures of Tian's sections (scaling, critical, muon, ridge), drawn from the summary document only.

References: :mod:`.tian_report` (the document), docs/paper-protocol.md §1 T6 (the paper's numbers, drawn
beside ours); Tian's p_crit = log M / M is drawn on the scaling figure.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from tianref.experiments import protocols_tian as pt  # noqa: E402
from tianref.experiments.reproduce.figures import _save_fig  # noqa: E402

COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
SERIES = (("test_acc", "test accuracy"), ("freq_coverage", "freq_coverage (distinct pure k)"),
          ("freq_purity_med", "median purity"), ("ftf_ratio", "ftf_ratio"),
          ("indep_cos_med", "independence proxy: median |cos|"), ("gF_norm", "‖G_F‖"))


def _nn(v):
    return float("nan") if v is None else v


def fig_scaling(doc, pub) -> Figure:
    table = doc["analysis"]["table"]
    fig = Figure(figsize=(12, 4.6))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for i, M in enumerate(sorted({r["M"] for r in table})):
        rows = sorted((r for r in table if r["M"] == M), key=lambda r: r["p"])
        col = COLORS[i % len(COLORS)]
        ps = [r["p"] for r in rows]
        ax1.plot(ps, [r["n_grok"] / r["n"] for r in rows], "o-", color=col, label=f"M={M} ours")
        ax2.plot(ps, [_nn(r["t099_med"]) for r in rows], "o-", color=col, label=f"M={M} ours")
        pr = [r for r in rows if r["paper"]]
        if pr:
            ax1.plot([r["p"] for r in pr], [r["paper"]["n_grok"] / 5 for r in pr], "s--", color=col, alpha=0.6,
                     mfc="none", label=f"M={M} paper (T6)")
            ax2.plot([r["p"] for r in pr], [_nn(r["paper"]["t099"]) for r in pr], "s--", color=col, alpha=0.6,
                     mfc="none", label=f"M={M} paper (T6)")
        for ax in (ax1, ax2):
            ax.axvline(pt.p_crit(M), color=col, ls=":", lw=1)
        for r in rows:                                     # name the cells whose runs failed to train
            bad = [f"{r[k]} {w}" for k, w in (("n_collapsed", "collapsed"), ("n_diverged", "diverged")) if r[k]]
            if bad:
                ax1.annotate(", ".join(bad), (r["p"], r["n_grok"] / r["n"]), textcoords="offset points",
                             xytext=(4, 6 + 8 * i), fontsize=7, color=col)
    ax1.set(xlabel="training fraction p", ylabel="fraction of seeds with test acc ≥ 0.99",
            title="grokked (dotted: Tian's p_crit = log M / M)", ylim=(-0.05, 1.05))
    ax2.set(xlabel="training fraction p", ylabel="median t(test ≥ 0.99) over grokked runs",
            title="time to generalise")
    hi = max(r["p"] for r in table) * 1.08
    for ax in (ax1, ax2):
        ax.set_xlim(0, hi)                                 # p_crit (0.04-0.09 at the full scale) in view
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    fig.suptitle(f"scaling ({doc['scale']['name']} scale): ours (solid) vs the paper's T6 (dashed)")
    fig.tight_layout()
    return fig


def fig_critical(doc) -> Figure:
    table = doc["analysis"]["table"]
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for i, M in enumerate(sorted({r["M"] for r in table})):
        rows = sorted((r for r in table if r["M"] == M), key=lambda r: r["c"])
        ax.plot([r["c"] for r in rows], [r["frac"] for r in rows], "o-", color=COLORS[i % len(COLORS)],
                label=f"M={M}")
    ax.axvline(1.0, color="grey", ls=":", lw=1)
    ax.set(xlabel="c = p / (log M / M)", ylabel="fraction of seeds with test acc ≥ 0.99",
           title=f"critical ({doc['scale']['name']} scale): a constant-c boundary would align the curves",
           ylim=(-0.05, 1.05))
    ax.legend()
    fig.tight_layout()
    return fig


def fig_groups(doc) -> Figure:
    a = doc["analysis"]
    extra = doc["section"] == "ridge" and a.get("gf_rel_dist_med")
    n = len(SERIES) + (1 if extra else 0)
    cols = 4 if extra else 3
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows))
    for i, (key, label) in enumerate(SERIES):
        ax = fig.add_subplot(rows, cols, i + 1)
        for j, (g, s) in enumerate(sorted(a["series"][key].items())):
            col = COLORS[j % len(COLORS)]
            e = s["epoch"]
            ax.plot(e, [_nn(v) for v in s["median"]], color=col, label=f"{g} (n={s['n']})")
            ax.fill_between(e, [_nn(v) for v in s["q25"]], [_nn(v) for v in s["q75"]], color=col, alpha=0.2)
        ax.set(xlabel="epoch", title=label)
        if i == 0:
            ax.legend(fontsize=8)
    if extra:
        ax = fig.add_subplot(rows, cols, n)
        for j, (g, d) in enumerate(sorted(a["gf_rel_dist_med"].items())):
            es = sorted(int(e) for e in d)
            ax.semilogy(es, [max(_nn(d[str(e)]), 1e-17) for e in es], "o-", color=COLORS[j % len(COLORS)],
                        label=g)
        ax.set(xlabel="epoch", title="‖G_F − ridge limit‖ / ‖ridge limit‖")
        ax.legend(fontsize=8)
    fig.suptitle(f"{doc['section']} ({doc['scale']['name']} scale): median over seeds, band = IQR")
    fig.tight_layout()
    return fig


def make_tian_figures(section: str, doc: dict, pub: dict, fig_dir: Path) -> list:
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    if section == "scaling":
        fig = fig_scaling(doc, pub)
    elif section == "critical":
        fig = fig_critical(doc)
    else:
        fig = fig_groups(doc)
    return [_save_fig(fig, fig_dir / f"{section}.png")]
