"""Figures for ``thm6 --plot`` (host data only; matplotlib Figure without pyplot, Agg canvas).

Panels
    1. sign-match across checkpoints: exact r (eq. 2), the full projector with the correct B (eq. 3),
       the published eq. (4) path, and the fraction of B_jℓ < 0 among cos > 0 pairs; a rug on the epoch
       axis marks the checkpoints replayed from config.json (grey) or beyond the run's end (red). The paper's
       Table T1 (5-seed median with IQR, and seed-0 values) is overlaid only when the run's
       configuration is the paper's (``paper_matches``: M, K, n, σ, η and top-200 pairs), and the
       legend says which configuration those values belong to.
    2. top-N mode: B_jℓ against cos_jℓ for the listed pairs, one colour per checkpoint.
       all-pairs mode: the distribution of |cos_jℓ| over all pairs (its quantile function).
    3. top-N mode: B_jℓ against r_exact: by eq. (2) every point lies in the quadrants of opposite sign.
       all-pairs mode: the distribution of r_exact over all pairs (quantile function, symlog).
Only panels with data are drawn (``--pinv`` has no exact residuals: no panel 3).
Symlog axes take their linear range from the data (``_symlog_threshold``) so that at most
``SYMLOG_DECADES`` decades are drawn on each side of zero and the tick labels stay apart.
Reference values: reference_results/paper/thm6_T1.json (with their source and setup).
"""
from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tianref.resources import PAPER_DIR

PAPER_T1_PATH = None if PAPER_DIR is None else PAPER_DIR / "thm6_T1.json"   # None: an installed copy
SYMLOG_DECADES = 4          # decades drawn on each side of the linear range of a symlog axis

SERIES = (("sign_match_exact", r"exact $r$ (eq. 2)", "o-"),
          ("sign_match_approx", r"full projector, correct $B$", "s--"),
          ("sign_match_paper", "published eq. (4) path", "^-"),
          ("frac_B_neg_on_pos_cos", r"$B<0$ among $\cos>0$", "d:"))
# the exact and full-projector routes agree to ~1e-3 or better, so their markers coincide: the exact one
# is a large open ring around the other's small filled square, both visible where they are equal
MARKER_KW = {"sign_match_exact": {"markersize": 11, "markerfacecolor": "none", "markeredgewidth": 1.6},
             "sign_match_approx": {"markersize": 4.5}}
LABEL_COS = r"$\cos(\tilde f_j, \tilde f_\ell)$"
LABEL_B = r"$B_{j\ell}$"
LABEL_R = r"$r_{j\ell} = \tilde f_j^{\top} P_{\eta,-j\ell}\, \tilde f_\ell$"


def load_paper_T1(path=PAPER_T1_PATH):
    """The stored published values, or None when the file is absent (an installed copy has none)."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def paper_matches(paper, setup: dict, top_pairs: int | None) -> tuple[bool, str]:
    """(whether the paper's T1 values describe this configuration, why not).

    setup: {'M', 'K', 'n', 'act', 'eta'} of the analysed run (any may be None: unknown, no match);
    top_pairs: the number of listed pairs, None in the all-pairs mode.
    """
    if not paper:
        return False, "the paper's values are not available (reference_results/paper/thm6_T1.json)"
    ps = paper.get("setup", {})
    want = {"M": ps.get("M", 71), "K": ps.get("K", 2048), "n": ps.get("n_train", 2016),
            "act": ps.get("act", "sqr"), "eta": ps.get("eta", 2e-4), "top-pairs": 200}
    have = dict(setup, **{"top-pairs": top_pairs})
    diffs = []
    for k, w in want.items():
        h = have.get(k)
        same = h is not None and (math.isclose(float(h), float(w), rel_tol=1e-9) if k == "eta" else h == w)
        if not same:
            shown = {"top-pairs": "all", "eta": "one per checkpoint (an eta schedule)"}.get(k) if h is None else h
            diffs.append(f"{k} = {shown} (paper {w})")
    return (not diffs), "; ".join(diffs)


def paper_setup_text(paper) -> str:
    ps = (paper or {}).get("setup", {})
    return (f"M={ps.get('M', 71)}, K={ps.get('K', 2048)}, n={ps.get('n_train', 2016)}, "
            f"$x^2$, η={ps.get('eta', 2e-4):g}, top-200")


def _symlog_threshold(values) -> float:
    """Linear range of a symlog axis: the smallest nonzero magnitude, but no more than
    SYMLOG_DECADES decades below the largest (so near-zero tick labels do not pile up)."""
    mags = [abs(v) for v in values if v and math.isfinite(v)]
    if not mags:
        return 1.0
    return max(min(mags), max(mags) * 10.0 ** -SYMLOG_DECADES, 1e-300)


def _symlog(ax, which: str, values) -> None:
    """A symlog axis whose ticks are 0 and the decades from 10x the linear range outwards, at most
    4 per side on y and 2 on x (so the labels do not collide); minor ticks off."""
    from matplotlib.ticker import FixedLocator, NullLocator
    lt = _symlog_threshold(values)
    (ax.set_yscale if which == "y" else ax.set_xscale)("symlog", linthresh=lt)
    mags = [abs(v) for v in values if v and math.isfinite(v)]
    top = max(mags) if mags else 1.0
    lo_k, hi_k = math.ceil(math.log10(10 * lt) - 1e-9), math.floor(math.log10(top) + 1e-9)
    per_side = 4 if which == "y" else 2                   # x labels are wider: fewer of them
    step = max(1, -(-(hi_k - lo_k + 1) // per_side))
    decades = [10.0 ** k for k in range(hi_k, lo_k - 1, -step)]
    if not decades and 10.0 ** hi_k >= lt:                 # less than a decade beyond the linear range
        decades = [10.0 ** hi_k]
    has_neg, has_pos = any(v < 0 for v in values), any(v > 0 for v in values)
    ticks = sorted([-d for d in decades if has_neg] + [0.0] + [d for d in decades if has_pos])
    axis = ax.yaxis if which == "y" else ax.xaxis
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_minor_locator(NullLocator())


def _epoch_label(r) -> str:
    return f"epoch {r['epoch']}" if r.get("epoch") is not None else str(r.get("source", ""))


def figure_thm6(records, paper=None, paper_note: str | None = None) -> Figure:
    """records: the ``checkpoints`` list of ``thm6 --json``; paper: load_paper_T1() when the
    configuration matches the paper's (else None); paper_note: why it is not overlaid (shown)."""
    listed = [r for r in records if r.get("pairs")]
    dists = [] if listed else [r for r in records if r["summary"].get("abs_cos_quantiles")]
    if listed:
        has_r = any(p["r_exact"] is not None for r in listed for p in r["pairs"])
    else:
        has_r = any(r["summary"].get("r_exact_quantiles") for r in dists)
    n_panels = 1 + bool(listed or dists) + bool((listed or dists) and has_r)   # only panels with data
    fig = Figure(figsize=(5.6 * n_panels, 5.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(1, n_panels, squeeze=False)[0]) + [None, None]
    ax_sm, ax_cos, ax_r = axes[0], axes[1], axes[2]

    recs = [r for r in records if r.get("epoch") is not None] or list(records)
    xs = [r["epoch"] if r.get("epoch") is not None else i for i, r in enumerate(recs)]
    for key, label, style in SERIES:
        pts = [(x, r["summary"].get(key)) for x, r in zip(xs, recs) if r["summary"].get(key) is not None]
        if pts:
            ax_sm.plot(*zip(*pts), style, label=label, **MARKER_KW.get(key, {}))
    if paper:
        t1 = paper["T1"]["sqr_5seed_median"]
        iqr = paper["T1_IQR"]
        ep = [int(e) for e in t1]
        med = [t1[str(e)] for e in ep]
        lo = [med[i] - iqr[str(e)]["iqr"][0] for i, e in enumerate(ep)]
        hi = [iqr[str(e)]["iqr"][1] - med[i] for i, e in enumerate(ep)]
        where = paper_setup_text(paper)
        ax_sm.errorbar(ep, med, yerr=[lo, hi], fmt="kx", capsize=3, label=f"paper T1 ({where}): 5-seed median, IQR")
        s0 = paper["T1_seed0"]["sign_match"]
        ax_sm.plot([int(e) for e in s0], list(s0.values()), "k+", markersize=10, label="paper T1: its seed 0")
    ax_sm.set_xlabel("epoch")
    ax_sm.set_ylabel("fraction of pairs")
    mode = "all pairs" if any(r["summary"].get("mode") == "all" for r in records) else \
        f"top-{max((r['summary'].get('n_pairs') or 0) for r in records)} pairs"
    beyond = [str(r["epoch"]) for r in records if r.get("replayed_beyond_run")]
    ax_sm.set_title(f"Theorem 6 sign-match ({mode})"
                    + (f"\nepoch {', '.join(beyond)} replayed beyond the end of the run" if beyond else ""))
    vals = [r["summary"].get(k) for r in recs for k, _, _ in SERIES if r["summary"].get(k) is not None]
    y_lo = min([0.95] + [v - 0.02 for v in vals])
    ax_sm.set_ylim(y_lo, 1.01)
    _mark_replayed(ax_sm, recs, xs, y_lo)
    ax_sm.grid(alpha=0.3)
    note = None
    if not paper and paper_note:
        note = "\n".join(textwrap.wrap(f"paper's T1 values not shown: {paper_note}", 70))
    leg = ax_sm.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.14), ncol=2, frameon=False,
                       title=note, title_fontsize=7, alignment="left")
    if note:
        leg.get_title().set_color("0.35")

    if listed:
        _pairs_panels(ax_cos, ax_r, listed)
    elif dists:
        _distribution_panels(ax_cos, ax_r, dists)
    return fig


def _mark_replayed(ax, recs, xs, y_lo) -> None:
    """A rug on the epoch axis for the checkpoints that were not stored but replayed from config.json
    (grey), and for those replayed beyond the run's last epoch (red), each with its legend entry."""
    for beyond, colour, label in ((False, "0.45", "replayed from config.json (no checkpoint stored)"),
                                  (True, "tab:red", "replayed beyond the run's last epoch")):
        at = [x for x, r in zip(xs, recs) if str(r.get("source", "")).startswith("replay")
              and bool(r.get("replayed_beyond_run")) == beyond]
        if at:
            ax.plot(at, [y_lo] * len(at), linestyle="none", marker="|", markersize=14, markeredgewidth=2,
                    color=colour, label=label, clip_on=False, zorder=5)


def _pairs_panels(ax_cos, ax_r, listed):
    all_B, all_r = [], []
    for r in listed:
        ps = r["pairs"]
        B = [p["B"] for p in ps]
        ax_cos.scatter([p["cos"] for p in ps], B, s=6, label=_epoch_label(r))
        with_r = [p for p in ps if p["r_exact"] is not None]
        if with_r and ax_r is not None:
            ax_r.scatter([p["r_exact"] for p in with_r], [p["B"] for p in with_r], s=6, label=_epoch_label(r))
            all_r += [p["r_exact"] for p in with_r]
        all_B += B
    _symlog(ax_cos, "y", all_B)
    ax_cos.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax_cos.axhline(0, color="grey", lw=0.5)
    ax_cos.grid(alpha=0.3)
    ax_cos.set_xlabel(LABEL_COS)
    ax_cos.set_ylabel(LABEL_B)
    ax_cos.set_title(r"similar features repel: $B_{j\ell} < 0$ where $\cos > 0$")
    if ax_r is None:
        return
    _symlog(ax_r, "y", all_B)
    _symlog(ax_r, "x", all_r)
    ax_r.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax_r.axhline(0, color="grey", lw=0.5)
    ax_r.axvline(0, color="grey", lw=0.5)
    ax_r.grid(alpha=0.3)
    ax_r.set_xlabel(LABEL_R)
    ax_r.set_ylabel(LABEL_B)
    ax_r.set_title(r"eq. (2): $\mathrm{sgn}\, B_{j\ell} = -\mathrm{sgn}\, r_{j\ell}$")


def _distribution_panels(ax_cos, ax_r, dists):
    """All-pairs mode: the quantile functions of |cos| and of r_exact, one line per checkpoint."""
    all_r = []
    for r in dists:
        s = r["summary"]
        q = sorted(s["abs_cos_quantiles"].items(), key=lambda kv: float(kv[0]))
        ax_cos.plot([float(k) for k, _ in q], [v for _, v in q], "o-", ms=3, label=_epoch_label(r))
        rq = s.get("r_exact_quantiles")
        if rq and ax_r is not None:
            q = sorted(rq.items(), key=lambda kv: float(kv[0]))
            neg = s.get("frac_r_exact_neg")
            lab = _epoch_label(r) + ("" if neg is None else f" ({neg:.3f} of pairs have r < 0)")
            ax_r.plot([float(k) for k, _ in q], [v for _, v in q], "o-", ms=3, label=lab)
            all_r += [v for _, v in q]
    n = dists[0]["summary"].get("n_pairs")
    ax_cos.set_xlabel("quantile level")
    ax_cos.set_ylabel(r"$|\cos(\tilde f_j, \tilde f_\ell)|$")
    ax_cos.set_title(f"|cos| over all {n} pairs (quantiles)")
    ax_cos.grid(alpha=0.3)
    ax_cos.legend(fontsize=7, loc="upper left")
    if ax_r is not None:
        _symlog(ax_r, "y", all_r)
        ax_r.axhline(0, color="grey", lw=0.5)
        ax_r.legend(fontsize=7, loc="upper left")
        ax_r.set_xlabel("quantile level")
        ax_r.set_ylabel(LABEL_R)
        ax_r.set_title(f"exact residual over all {n} pairs (quantiles)")
        ax_r.grid(alpha=0.3)
