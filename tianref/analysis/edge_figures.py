"""Figures of the spectral edge and the two clocks (host data only; Agg canvas, no pyplot).

figure_edge(records)     ``cli.py edge`` records: per space (joint, W, V), across the probed epochs, the
                         SIGNED changes on removal of the edge directions against the random draws (mean
                         +- std) and the norm-matched control, the removed fraction, the perturbation, and
                         the test loss's curvature along v_1..v_4 (edge_curvature).
figure_edge_run(rows)    one run's log: W/V edge gfrac and cos per epoch (the parameter-space view), and
                         where the rows have them pgfrac and palign (the edge-projected view) in a second
                         panel, each with test accuracy.
figure_lifecycle(by, probes)  the lifecycle section: per condition, the median over seeds of the W edge's
                         authors' split (and the parameter-space gfrac), ||W||_F, W_srank and test accuracy
                         against epochs, and the signed probe changes (edge vs norm-matched) at the probed epochs.
figure_clocks(runs)      per run, W_srank and the train loss against epochs with the events the clock
                         outcome compares marked: t_cls, t_rep_settled (its T_rep) and t0.99 (its T_test),
                         and the raw t_rep faint (one panel per condition; a legend names each run's seed).
docs/edge-and-clocks.md defines the quantities.
"""
from __future__ import annotations

import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tianref.analysis.plots import condition_colours


def _pos(v):
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v) and v > 0


SPACE_TITLE = {"joint": "W and V jointly", "W": "W alone (V fixed)", "V": "V alone (W fixed)"}
REMOVAL_STYLE = {"v1v2": ("-", "o", "{v1, v2}"), "v1": ("--", "s", "{v1}")}
CONTROL_COLOUR = {"edge": "C0", "random": "C1", "norm_matched": "C2"}
CURVATURE_STYLE = (("v1", "-", "C0", "v1 (edge)"), ("v2", "--", "C0", "v2 (edge)"),
                   ("v3", "-", "C1", "v3 (bulk)"), ("v4", "--", "C1", "v4 (bulk)"))


def _series(recs, rm, what, delta):
    """(epochs, values, stds) of one removal's delta: the edge, the norm-matched control, or the random mean."""
    ep, val, sd = [], [], []
    for r in recs:
        x = r["probe"]["removal"].get(rm)
        if x is None or x.get(what) is None:
            continue
        ep.append(r["epoch"])
        if what == "random":
            val.append(x["random"][delta]["mean"])
            sd.append(x["random"][delta]["std"])
        else:
            val.append(x[what] if delta is None else x[what][delta])
            sd.append(0.0)
    return ep, val, sd


def _removal_panel(ax, recs, delta, legend):
    for rm, (ls, mk, name) in REMOVAL_STYLE.items():
        for what, label in (("edge", "edge"), ("random", "random, mean +- std"), ("norm_matched", "norm-matched")):
            ep, val, sd = _series(recs, rm, what, delta)
            if not ep:
                continue
            c = CONTROL_COLOUR[what]
            ax.plot(ep, val, ls=ls, marker=mk, ms=4, color=c, label=f"remove {name}: {label}" if legend else None)
            if what == "random":
                ax.fill_between(ep, [v - s for v, s in zip(val, sd)], [v + s for v, s in zip(val, sd)],
                                color=c, alpha=0.15, lw=0)
    ax.axhline(0.0, color="grey", lw=0.8)


def figure_edge(records, title: str = "") -> Figure:
    """``cli.py edge`` records: one column per space, rows = signed changes (linear axes) of the test
    accuracy and the train loss on removal (edge vs random mean +- std vs norm-matched, {v1, v2} solid,
    {v1} dashed), the removed fraction f of ||theta||^2 (log axis: a fraction, not a change), and the
    signed changes under the perturbation theta + eps sign(p) v_k, and the curvature of the test loss along
    v_1, v_2 (the edge) and v_3, v_4 (the bulk) (symlog axis)."""
    spaces = [s for s in SPACE_TITLE if any(r["space"] == s for r in records)]
    n = max(len(spaces), 1)
    fig = Figure(figsize=(4.8 * n + 2.6, 15), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(5, n, squeeze=False)
    for j, space in enumerate(spaces):
        recs = sorted((r for r in records if r["space"] == space), key=lambda r: r["epoch"])
        first = j == 0
        _removal_panel(axes[0][j], recs, "dtest_acc", first)
        _removal_panel(axes[1][j], recs, "dtrain_loss", False)
        ax = axes[2][j]
        for rm, (ls, mk, name) in REMOVAL_STYLE.items():
            for what, label in (("edge", "edge"), ("random", "random, mean")):
                pts = [(r["epoch"], x["frac"] if what == "edge" else x["random"]["frac"]["mean"])
                       for r in recs for x in [r["probe"]["removal"].get(rm)]
                       if x is not None and (what == "edge" or x["random"] is not None)]
                pts = [(e, v) for e, v in pts if _pos(v)]
                if pts:
                    ax.plot(*zip(*pts), ls=ls, marker=mk, ms=4, color=CONTROL_COLOUR[what],
                            label=f"remove {name}: {label}" if first else None)
        ax.set_yscale("log")
        ax = axes[3][j]
        for k, ls in (("v1", "-"), ("v2", "--")):
            for delta, c, name in (("dtest_loss", "C3", "test loss"), ("dtrain_loss", "C4", "train loss"),
                                   ("dtest_acc", "C5", "test acc")):
                pts = [(r["epoch"], r["probe"]["perturb"][k][delta]) for r in recs if r["probe"]["perturb"].get(k)]
                if pts:
                    ax.plot(*zip(*pts), ls=ls, marker="o", ms=3, color=c,
                            label=f"{k}: {name}" if first else None)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax = axes[4][j]
        drawn = []
        for k, ls, c, name in CURVATURE_STYLE:
            pts = [(r["epoch"], r["probe"]["curvature"][k]["curvature"]) for r in recs
                   if (r["probe"].get("curvature") or {}).get(k)]
            if pts:
                ax.plot(*zip(*pts), ls=ls, marker="o", ms=3, color=c, label=name if first else None)
                drawn += [v for _, v in pts if math.isfinite(v)]
        _curvature_scale(ax, drawn)
        ax.axhline(0.0, color="grey", lw=0.8)
        axes[0][j].set_title(SPACE_TITLE[space], fontsize=11)
        for ax in axes[:, j]:
            ax.set_xlabel("epoch", fontsize=8)
            ax.tick_params(labelsize=8)
    row_names = ("change of test accuracy\n(direction(s) removed)", "change of train loss\n(direction(s) removed)",
                 "removed fraction f of ||theta||^2", "change under theta + eps sign(p) v_k",
                 "curvature of the test loss along v_k\n(L(+) + L(-) - 2 L) / eps^2")
    for i, name in enumerate(row_names):
        axes[i][0].set_ylabel(name, fontsize=9)
        handles, labels = axes[i][0].get_legend_handles_labels()
        if handles:                                          # one legend per row, right of the last column
            axes[i][-1].legend(handles, labels, fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
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


def _curvature_scale(ax, vals) -> None:
    """A log axis when every curvature drawn is positive (they span decades: the edge's ~1e-4, the bulk's ~1e-1),
    else symlog whose linear range is the decade of the smallest nonzero |curvature| (a fixed 1e-3 left
    curvatures of ~5e-4..7e-3 with two ticks)."""
    if vals and min(vals) > 0:
        ax.set_yscale("log")
        return
    nonzero = [abs(v) for v in vals if v != 0]
    ax.set_yscale("symlog", linthresh=10.0 ** math.floor(math.log10(min(nonzero))) if nonzero else 1e-3)


CLOCK_MARKS = (("t_cls", "--", 0.9, "t_cls"), ("t_rep_settled", "-", 0.9, "t_rep settled (T_rep)"),
               ("t099", "-.", 0.9, "t0.99 (T_test)"), ("t_rep", ":", 0.45, "t_rep (raw)"))


def figure_clocks(groups, title: str = "") -> Figure:
    """groups: [(label, [(rows, events)])], events per run with any of 't_cls', 't_rep_settled', 't099', 't_rep'
    (the marks drawn, CLOCK_MARKS) and 'seed' (its legend label)."""
    n = max(len(groups), 1)
    fig = Figure(figsize=(4.6 * n, 6.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, n, squeeze=False)
    colours = condition_colours(max((len(items) for _, items in groups), default=0))   # run k alike in every panel
    for j, (label, items) in enumerate(groups):
        ax_s, ax_l = axes[0][j], axes[1][j]
        for i, (rows, ev) in enumerate(items):
            c = colours[i]
            ep = [r["epoch"] for r in rows]
            name = f"seed {ev['seed']}" if ev.get("seed") is not None else f"run {i + 1}"
            ax_s.plot(ep, [r.get("W_srank", math.nan) for r in rows], color=c, lw=1, label=name)
            ax_l.plot(ep, [r.get("train_loss", math.nan) for r in rows], color=c, lw=1)
            for key, style, alpha, _ in CLOCK_MARKS:
                t = ev.get(key)
                if t is not None and math.isfinite(t):
                    for ax in (ax_s, ax_l):
                        ax.axvline(t, color=c, ls=style, lw=0.8, alpha=alpha)
        ax_s.set_title(label, fontsize=9)
        ax_s.set_ylabel("W stable rank")
        if items:
            ax_s.legend(fontsize=7, frameon=False)
        ax_l.set_yscale("log")
        ax_l.set_ylabel("train loss")
    width, lines = int(15 * 4.6 * n), ["marks, in each run's colour:"]     # characters a line; a mark and
    for item in (f"{'—' if st == '-' else st} {what}" for _, st, _, what in CLOCK_MARKS):   # its label together
        if len(lines[-1]) + 3 + len(item) > width:
            lines.append(item)
        else:
            lines[-1] += ("  " if lines[-1].endswith(":") else ",  ") + item
    fig.supxlabel("epoch\n" + "\n".join(lines), fontsize=8)
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
    """by: {condition: [RunRecord]}; probes: the lifecycle document's probe table (medians per condition, epoch,
    space and removal). Top: the authors' split (pgfrac, palign) and the parameter-space gfrac per epoch; the
    signed changes of test accuracy and train loss when v1 + v2 are removed (joint space), edge against the
    norm-matched control. Bottom: ||W||_F, the W stable rank and test accuracy."""
    fig = Figure(figsize=(15, 8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    panels = ((axes[0][0], "W_edge_pgfrac", "W edge: authors' grad_frac (solid), parameter-space gfrac (dotted)"),
              (axes[1][0], "W_fro", "||W||_F"), (axes[1][1], "W_srank", "W stable rank"),
              (axes[1][2], "test_acc", "test accuracy"))
    for i, (cond, recs) in enumerate(by.items()):
        c = f"C{i}"
        ls = "--" if recs[0].config.get("eta_schedule") else "-"      # drawn over the runs it equals until the switch
        for ax, key, name in panels:
            if any(key in r.columns for r in recs):
                x, y = _median_curve(recs, key)
                ax.plot(x, y, color=c, lw=1.2, ls=ls, label=f"{cond} (median of {len(recs)})")
            ax.set_title(name, fontsize=10)
        x, y = _median_curve(recs, "W_edge_gfrac")
        axes[0][0].plot(x, y, color=c, lw=0.8, ls=":")
        if any("W_edge_palign" in r.columns for r in recs):
            x, y = _median_curve(recs, "W_edge_palign")
            axes[0][1].plot(x, y, color=c, lw=1.2, ls=ls, label=cond)
        sw = recs[0].config.get("eta_schedule")
        if sw:
            for ax, _, _ in panels:
                ax.axvline(sw[-1][0], color=c, ls=":", lw=0.8)
    axes[0][1].set_title("W edge: authors' alignment Σp_g p_wd / √(Σp_g² Σp_wd²)", fontsize=10)
    axes[0][1].axhline(0.0, color="grey", lw=0.8)
    ax = axes[0][2]
    for i, cond in enumerate(by):
        for key, style, name in (("dtest_acc_edge", "o-", "Δ test acc, edge"),
                                 ("dtest_acc_norm", "o:", "Δ test acc, norm-matched"),
                                 ("dtrain_loss_edge", "s-", "Δ train loss, edge"),
                                 ("dtrain_loss_norm", "s:", "Δ train loss, norm-matched")):
            pts = [(p["epoch"], p[key]) for p in probes if p["condition"] == cond and p["space"] == "joint"
                   and p.get("removal") == "v1v2" and p.get(key) and p[key]["n_fired"]]
            if pts:
                ax.plot([e for e, _ in pts], [s["median"] for _, s in pts], style, color=f"C{i}",
                        label=f"{name}, {cond}")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_title("v1 + v2 removed (W and V jointly): signed changes", fontsize=10)
    axes[0][0].set_ylim(-0.05, 1.05)
    axes[0][1].set_ylim(-1.05, 1.05)
    for row in axes:
        for a in row:
            a.set_xlabel("epoch")
            if a.get_legend_handles_labels()[0]:
                a.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig
