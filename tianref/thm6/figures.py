"""Figures for ``thm6 --plot`` (host data only; matplotlib Figure without pyplot, Agg canvas).

Panels
    1. sign-match across checkpoints: exact r (eq. 2), the full projector with the correct B (eq. 3),
       the published eq. (4) path, and the fraction of B_jℓ < 0 among cos > 0 pairs; the paper's
       Table T1 (5-seed median with IQR, and seed-0 values) overlaid.
    2. B_jℓ against cos_jℓ for the listed pairs, one colour per checkpoint.
    3. B_jℓ against r_exact: by eq. (2) every point lies in the quadrants of opposite sign.
Reference values: reference_results/paper/thm6_T1.json (with their source).
"""
from __future__ import annotations

import json
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PAPER_T1_PATH = Path(__file__).resolve().parents[2] / "reference_results" / "paper" / "thm6_T1.json"

SERIES = (("sign_match_exact", "exact r (eq. 2)", "o-"),
          ("sign_match_approx", "full projector, correct B", "s--"),
          ("sign_match_paper", "published eq. (4) path", "^-"),
          ("frac_B_neg_on_pos_cos", "B<0 among cos>0", "d:"))


def load_paper_T1(path=PAPER_T1_PATH):
    """The stored published values, or None when the file is absent (e.g. a non-editable install)."""
    path = Path(path)
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _symlog_threshold(values) -> float:
    """Linear range of a symlog axis: the smallest nonzero magnitude (at least 1e-300)."""
    mags = [abs(v) for v in values if v]
    return max(min(mags), 1e-300) if mags else 1.0


def figure_thm6(records, paper=None) -> Figure:
    """records: the ``checkpoints`` list of ``thm6 --json``; paper: load_paper_T1() or None."""
    fig = Figure(figsize=(16, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax_sm, ax_cos, ax_r = fig.subplots(1, 3)

    recs = [r for r in records if r.get("epoch") is not None] or list(records)
    xs = [r["epoch"] if r.get("epoch") is not None else i for i, r in enumerate(recs)]
    for key, label, style in SERIES:
        pts = [(x, r["summary"].get(key)) for x, r in zip(xs, recs) if r["summary"].get(key) is not None]
        if pts:
            ax_sm.plot(*zip(*pts), style, label=label)
    if paper:
        t1 = paper["T1"]["sqr_5seed_median"]
        iqr = paper["T1_IQR"]
        ep = [int(e) for e in t1]
        med = [t1[str(e)] for e in ep]
        lo = [med[i] - iqr[str(e)]["iqr"][0] for i, e in enumerate(ep)]
        hi = [iqr[str(e)]["iqr"][1] - med[i] for i, e in enumerate(ep)]
        ax_sm.errorbar(ep, med, yerr=[lo, hi], fmt="kx", capsize=3, label="paper T1: 5-seed median, IQR")
        s0 = paper["T1_seed0"]["sign_match"]
        ax_sm.plot([int(e) for e in s0], list(s0.values()), "k+", markersize=10, label="paper T1: seed 0")
    ax_sm.set_xlabel("epoch")
    ax_sm.set_ylabel("fraction of pairs")
    ax_sm.set_title("Theorem 6 sign-match")
    ax_sm.legend(fontsize=7, loc="lower right")

    listed = [r for r in records if r.get("pairs")]
    if not listed:
        for ax in (ax_cos, ax_r):
            ax.text(0.5, 0.5, "no pair list (--all-pairs)", ha="center", va="center", transform=ax.transAxes)
    all_B, all_r = [], []
    for r in listed:
        ps = r["pairs"]
        lab = f"epoch {r['epoch']}" if r.get("epoch") is not None else r.get("source", "")
        B = [p["B"] for p in ps]
        ax_cos.scatter([p["cos"] for p in ps], B, s=6, label=lab)
        with_r = [p for p in ps if p["r_exact"] is not None]
        if with_r:
            ax_r.scatter([p["r_exact"] for p in with_r], [p["B"] for p in with_r], s=6, label=lab)
            all_r += [p["r_exact"] for p in with_r]
        all_B += B
    if listed:
        ax_cos.set_yscale("symlog", linthresh=_symlog_threshold(all_B))
        ax_r.set_yscale("symlog", linthresh=_symlog_threshold(all_B))
        if all_r:
            ax_r.set_xscale("symlog", linthresh=_symlog_threshold(all_r))
        ax_cos.legend(fontsize=7)
        if all_r:
            ax_r.legend(fontsize=7)
        else:
            ax_r.text(0.5, 0.5, "no exact residuals (--pinv)", ha="center", va="center", transform=ax_r.transAxes)
        for ax in (ax_cos, ax_r):
            ax.axhline(0, color="grey", lw=0.5)
        ax_r.axvline(0, color="grey", lw=0.5)
    ax_cos.set_xlabel("cos(f~_j, f~_l)")
    ax_cos.set_ylabel("B_jl")
    ax_cos.set_title("similar features repel: B_jl < 0 where cos > 0")
    ax_r.set_xlabel("r_exact = f~_j^T P_{eta,-jl} f~_l")
    ax_r.set_ylabel("B_jl")
    ax_r.set_title("eq. (2): sgn B_jl = -sgn r_jl")
    return fig
