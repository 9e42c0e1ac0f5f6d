"""Figures of the spectral edge and the two clocks (host data only; Agg canvas, no pyplot).

figure_edge(records)     ``cli.py edge`` records: per space (joint, W), across the probed epochs,
                         (1) test-loss change on ablation, edge vs random (mean and min-max band),
                         (2) the ablation and flatness ratios, (3) the edge's gfrac and cos (the
                         parameter-space view of the split).
figure_edge_run(rows)    one run's log: W/V edge gfrac and cos per epoch (the parameter-space view), and
                         where the rows have them pgfrac and palign (the edge-projected view) in a second
                         panel, each with test accuracy.
figure_lifecycle(by, probes)  the lifecycle section: per condition, the median over seeds of the W edge's
                         gfrac and cos (parameter-space view), ||W||_F, W_srank and test accuracy against epochs, and the
                         probe ratios (median, min-max band) at the probed epochs.
figure_clocks(runs)      per run, W_srank and the train loss against epochs with t_cls, t_rep and
                         t0.5 marked (one panel per condition).
docs/edge-and-clocks.md defines the quantities.
"""
from __future__ import annotations

import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SPACE_STYLE = {"joint": ("C0", "W and V"), "W": ("C3", "W alone")}


def _pos(v):
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v) and v > 0


def figure_edge(records, title: str = "") -> Figure:
    fig = Figure(figsize=(15, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax_abl, ax_ratio, ax_split = fig.subplots(1, 3)
    for space, (colour, label) in SPACE_STYLE.items():
        recs = sorted((r for r in records if r["space"] == space), key=lambda r: r["epoch"])
        if not recs:
            continue
        ep = [r["epoch"] for r in recs]
        edge = [r["probe"]["edge"]["dloss_abl"] for r in recs]
        ax_abl.plot(ep, [abs(v) for v in edge], "o-", color=colour, label=f"edge, {label}")
        R = [r["probe"].get("random", {}).get("abs_dloss_abl") for r in recs]
        if all(R):
            ax_abl.plot(ep, [s["mean"] for s in R], "x--", color=colour, label=f"random, mean |dL|, {label}")
            ax_abl.fill_between(ep, [max(s["min"], 1e-300) for s in R], [s["max"] for s in R],
                                color=colour, alpha=0.12)
        for key, style, name in (("ablation_ratio", "o-", "ablation"), ("flatness_ratio", "s:", "flatness")):
            pts = [(e, r["probe"].get(key)) for e, r in zip(ep, recs) if _pos(r["probe"].get(key))]
            if pts:
                ax_ratio.plot(*zip(*pts), style, color=colour, label=f"{name}, {label}")
        for key, style in (("gfrac", "o-"), ("cos", "s:")):
            pts = [(e, r["split"].get(key)) for e, r in zip(ep, recs) if r["split"].get(key) is not None]
            if pts:
                ax_split.plot(*zip(*pts), style, color=colour, label=f"{key}, {label}")
    ax_abl.set_yscale("log")
    ax_abl.set_title("|test-loss change| when the direction is projected out")
    ax_ratio.set_yscale("log")
    ax_ratio.axhline(1.0, color="grey", lw=0.8)
    ax_ratio.set_title("edge / mean random: ablation (dL) and flatness (curvature)")
    ax_split.axhline(0.0, color="grey", lw=0.8)
    ax_split.set_ylim(-1.05, 1.05)
    ax_split.set_title("parameter-space view: gfrac = g2/(g2+wd2), cos(D^g u1, D^wd u1)")
    for ax in (ax_abl, ax_ratio, ax_split):
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def figure_edge_run(rows, title: str = "") -> Figure:
    """gfrac and cos of the W and V edges (parameter-space view), and test accuracy, from one run's
    metrics rows; a second panel with pgfrac and palign (edge-projected view) when the rows have them."""
    views = [(("gfrac", "cos"), "parameter-space view: gfrac = g2/(g2+wd2), cos(D^g u1, D^wd u1)")]
    if any("W_edge_pgfrac" in r or "V_edge_pgfrac" in r for r in rows):
        views.append((("pgfrac", "palign"), "edge-projected view: pgfrac = pg2/(pg2+pwd2), "
                                            "palign = pcross/sqrt(pg2 pwd2)"))
    fig = Figure(figsize=(8 * len(views), 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(views), squeeze=False)[0]
    ep = [r["epoch"] for r in rows]
    for ax, (keys, name) in zip(axes, views):
        for p, colour in (("W", "C0"), ("V", "C2")):
            for key, style in zip(keys, ("-", ":")):
                pts = [(r["epoch"], r[f"{p}_edge_{key}"]) for r in rows if f"{p}_edge_{key}" in r]
                if pts:
                    ax.plot(*zip(*pts), style, color=colour, label=f"{p} {key}")
        ax.plot(ep, [r.get("test_acc", math.nan) for r in rows], "-", color="k", lw=0.8, label="test acc")
        ax.axhline(0.0, color="grey", lw=0.6)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7, ncol=3)
        ax.set_title(name, fontsize=9)
    fig.suptitle(title or "spectral edge split")
    return fig


def figure_clocks(groups, title: str = "") -> Figure:
    """groups: [(label, [(rows, events)])] with events {'t_cls', 't_rep', 't05'} per run."""
    n = max(len(groups), 1)
    fig = Figure(figsize=(4.6 * n, 6.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, n, squeeze=False)
    for j, (label, items) in enumerate(groups):
        ax_s, ax_l = axes[0][j], axes[1][j]
        for i, (rows, ev) in enumerate(items):
            c = f"C{i % 10}"
            ep = [r["epoch"] for r in rows]
            ax_s.plot(ep, [r.get("W_srank", math.nan) for r in rows], color=c, lw=1)
            ax_l.plot(ep, [r.get("train_loss", math.nan) for r in rows], color=c, lw=1)
            for key, style in (("t_cls", "--"), ("t_rep", "-"), ("t05", ":")):
                t = ev.get(key)
                if t is not None and math.isfinite(t):
                    for ax in (ax_s, ax_l):
                        ax.axvline(t, color=c, ls=style, lw=0.8)
        ax_s.set_title(label, fontsize=9)
        ax_s.set_ylabel("W stable rank")
        ax_l.set_yscale("log")
        ax_l.set_ylabel("train loss")
        ax_l.set_xlabel("epoch   (-- t_cls, — t_rep, : t0.5)")
    if title:
        fig.suptitle(title)
    return fig


def _median_curve(recs, key):
    import numpy as np
    cols = [r.col(key) for r in recs]
    n = min(len(c) for c in cols)
    A = np.array([c[:n] for c in cols])                       # (runs, epochs)
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return list(range(n)), np.nanmedian(A, axis=0)


def figure_lifecycle(by: dict, probes: list, title: str = "") -> Figure:
    """by: {condition: [RunRecord]}; probes: the lifecycle document's probe table."""
    fig = Figure(figsize=(15, 8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    panels = ((axes[0][0], "W_edge_gfrac", "W edge gfrac = g2/(g2+wd2) (parameter-space view)"),
              (axes[0][1], "W_edge_cos", "W edge cos(D^g u1, D^wd u1) (parameter-space view)"),
              (axes[1][0], "W_fro", "||W||_F"), (axes[1][1], "W_srank", "W stable rank"),
              (axes[1][2], "test_acc", "test accuracy"))
    for i, (cond, recs) in enumerate(by.items()):
        c = f"C{i}"
        ls = "--" if recs[0].config.get("eta_schedule") else "-"      # drawn over the runs it equals until the switch
        for ax, key, name in panels:
            x, y = _median_curve(recs, key)
            ax.plot(x, y, color=c, lw=1.2, ls=ls, label=f"{cond} (median of {len(recs)})")
            ax.set_title(name, fontsize=10)
        sw = recs[0].config.get("eta_schedule")
        if sw:
            for ax, _, _ in panels:
                ax.axvline(sw[-1][0], color=c, ls=":", lw=0.8)
    ax = axes[0][2]
    for i, cond in enumerate(by):
        for key, style in (("ablation_ratio", "o-"), ("flatness_ratio", "s:")):
            pts = [(p["epoch"], p[key]) for p in probes if p["condition"] == cond and p["space"] == "joint"
                   and p[key]["n_fired"]]
            if pts:
                ax.plot([e for e, _ in pts], [s["median"] for _, s in pts], style, color=f"C{i}",
                        label=f"{key.split('_')[0]}, {cond}")
                ax.fill_between([e for e, _ in pts], [s["min"] for _, s in pts], [s["max"] for _, s in pts],
                                color=f"C{i}", alpha=0.12)
    ax.set_yscale("log")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_title("edge / random (W and V jointly): ablation, flatness", fontsize=10)
    axes[0][1].set_ylim(-1.05, 1.05)
    axes[0][0].set_ylim(-0.05, 1.05)
    for row in axes:
        for a in row:
            a.set_xlabel("epoch")
            a.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig
