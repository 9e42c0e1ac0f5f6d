"""A section's figures (PNG, written atomically into ROOT/<section>/figures/).

References: the paper's figures as drawn by :mod:`tianref.analysis.plots` (headline, x² vs ReLU, window
sweep, top-5 spectrum) and :mod:`tianref.thm6.figures` (one run's checkpoints); Tables T1, T1-IQR,
T1-seed0 and the T1 'ReLU' row (``docs/paper-protocol.md`` §1, §5.1) in the sign-match figure.

Symbols
    th            doc['thm6'] (:func:`tianref.experiments.reproduce.thm6_runs.thm6_section`)
    pub           the published numbers
    seed0         {act: the first seed's per-checkpoint records with their pair lists}
"""
from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path

import numpy as np

from tianref.experiments import sweep
from tianref.errors import InputError
from tianref.analysis.records import read_run
from tianref.experiments.reproduce.rows import load_published
from tianref.experiments.reproduce.sections import section_jobs
from tianref.experiments.reproduce.thm6_runs import _nan


def _save_fig(fig, path: Path, dpi: int = 110) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, format="png")
        os.chmod(tmp, 0o644)                                # mkstemp makes it private
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path.name


def _paper_check(doc: dict, act: str, as_act: str | None = None):
    """(whether the paper's T1 values describe the ``act`` runs, why not); ``as_act`` compares the
    setup as if the activation were that one (the paper's 'ReLU' row is its x² model, §5.1)."""
    from tianref.thm6.figures import load_paper_T1, paper_matches
    setup = doc.get("setup", {})
    a = doc["thm6"]["acts"][act]
    return paper_matches(load_paper_T1(), {"M": setup.get("M"), "K": setup.get("K"), "n": setup.get("n_train"),
                                           "act": as_act or act, "eta": a.get("eta")}, doc["thm6"]["n_top"])


def fig_thm6_seeds(th: dict, pub: dict, matches=None):
    """Sign-match across checkpoints: median over seeds with the IQR band, per activation, with
    the paper's T1 (median and IQR), its seed-0 values and its 'ReLU' row -- drawn only for the
    activations whose configuration is the paper's (``matches``: {act: (bool, why)}; None: all)."""
    from matplotlib.figure import Figure

    from tianref.analysis.plots import ACT_NAMES
    acts = list(th["acts"])
    fig = Figure(figsize=(6.2 * len(acts), 4.6), layout="constrained")
    axes = fig.subplots(1, len(acts), squeeze=False)[0]
    series = (("sign_match_exact", "exact r (Theorem 6)", "o-"),
              ("sign_match_approx", "full projector, correct B", "s--"),
              ("sign_match_paper", "published eq. (4) route", "^-"),
              ("frac_B_neg_on_pos_cos", "B<0 among cos>0", "d:"))
    iqr = {r["epoch"]: r for r in pub["tables"]["T1-IQR"]["rows"]}
    s0 = {r["epoch"]: r for r in pub["tables"]["T1-seed0"]["rows"]}
    for ax, act in zip(axes, acts):
        a = th["acts"][act]
        x = a["epochs"]
        for k, (q, label, style) in enumerate(series):
            st = [a["stats"][str(e)][q] for e in x]
            med = np.array([_nan(s["median"]) for s in st])
            ax.plot(x, med, style, color=f"C{k}", label=label)
            ax.fill_between(x, [_nan(s["q25"]) for s in st], [_nan(s["q75"]) for s in st],
                            color=f"C{k}", alpha=0.18, lw=0)
        pe = [a["paper_epochs"][str(e)] for e in x]
        ok, why = (matches or {}).get(act, (True, ""))
        if not ok:
            pass
        elif act == "sqr":
            med = np.array([iqr[p]["median"] for p in pe])
            err = [med - [iqr[p]["iqr"][0] for p in pe], [iqr[p]["iqr"][1] for p in pe] - med]
            ax.errorbar(x, med, yerr=err, fmt="kx", capsize=3, label="paper T1: 5-seed median [IQR]")
            ax.plot(x, [s0[p]["sign_match"] for p in pe], "k+", ms=10, label="paper T1: its seed 0")
        else:
            pts = [(e, pub["tables"]["T1"]["relu_seed0"].get(str(p))) for e, p in zip(x, pe)]
            pts = [(e, v) for e, v in pts if v is not None]
            if pts:
                ax.plot(*zip(*pts), "k*", ms=9, label="paper 'ReLU' seed 0 (x² model, §5.1)")
        ax.set_title(f"σ = {ACT_NAMES.get(act, act)}, η = {a['eta']:g}, {len(a['seeds'])} seeds, "
                     f"top-{th['n_top']} pairs", fontsize=10)
        ax.set_xlabel("epoch (checkpoint)")
        ax.set_ylabel("fraction of pairs")
        ax.grid(alpha=0.3)
        note = None if ok else "\n".join(textwrap.wrap(f"paper's values not shown: {why}", 36))
        leg = ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False,
                        title=note, title_fontsize=7, alignment="left")
        if note:
            leg.get_title().set_color("0.35")
    n_seeds = max(len(th["acts"][a]["seeds"]) for a in acts)
    spread = "median over seeds, band = IQR" if n_seeds > 1 else "one seed"
    fig.suptitle(r"Theorem 6 sign-match $\mathrm{sgn}\,B_{j\ell} = -\mathrm{sgn}\,r_{j\ell}$: " + spread)
    return fig


def make_figures(section: str, doc: dict, records, root: Path, scale, fig_dir: Path,
                 seed0=None) -> tuple[list, list]:
    """Draw the section's figures into fig_dir: (file names, notes on what was skipped)."""
    from tianref.analysis.plots import figures_from_runs
    fig_dir.mkdir(parents=True, exist_ok=True)
    files, notes = [], []

    def put(figs, names):
        for key, name in names.items():
            if key in figs:
                files.append(_save_fig(figs[key], fig_dir / name))
    if section in ("headline", "eta", "extended"):
        figs, n = figures_from_runs(records, ("headline",), act="sqr")
        put(figs, {"headline": "headline.png"})
        notes += n
    elif section == "relu":
        figs, n = figures_from_runs(records, ("headline",), act="relu")
        put(figs, {"headline": "headline.png"})
        notes += n
        head = section_jobs(root, "headline", scale)
        try:
            head_done = all(sweep.job_state(j) == "done" for j in head)
        except InputError:                                  # someone else's runs there
            head_done = False
        if head_done:
            figs, n = figures_from_runs([read_run(j.out) for j in head] + list(records), ("activation",))
            put(figs, {"activation": "activation.png"})
            notes += n
        else:
            notes.append("x² vs ReLU figure not drawn: the headline section is not complete under "
                         f"{root / 'headline'} (run --section headline, then --section relu again)")
    elif section == "window":
        for W in (5, 10, 20, 30):
            figs, n = figures_from_runs(records, ("headline",), window=W)
            put(figs, {"headline": f"headline_W{W}.png"})
            notes += n
        figs, n = figures_from_runs(records, ("top5",), windows=(5, 20, 30))
        put(figs, {"top5": "top5.png"})
        notes += n
        files.append(_save_fig(_fig_window_precision(doc, records, scale), fig_dir / "gram_precision.png"))
    elif section == "thm6" and doc.get("thm6"):
        pub = load_published()
        # the seeds figure: T1 beside x², the 'ReLU' row beside ReLU, each where the rest of the setup
        # is the paper's; the one-run figure overlays T1 (an x² table) only on the paper's x² setup
        matches = {act: _paper_check(doc, act, as_act="sqr") for act in doc["thm6"]["acts"]}
        files.append(_save_fig(fig_thm6_seeds(doc["thm6"], pub, matches), fig_dir / "thm6_seeds.png"))
        from tianref.thm6.figures import figure_thm6, load_paper_T1
        for act, recs in (seed0 or {}).items():
            ok, why = _paper_check(doc, act)
            fig = figure_thm6(recs, load_paper_T1() if ok else None, paper_note=None if ok else why)
            seed = _seed_of(doc, act)
            fig.suptitle(f"Theorem 6, one run: σ = {'x²' if act == 'sqr' else act}, seed {seed}, "
                         f"top-{doc['thm6']['n_top']} pairs per checkpoint")
            files.append(_save_fig(fig, fig_dir / f"thm6_seed{seed}_{act}.png"))
    return files, notes


def _fig_window_precision(doc, records, scale):
    """float64 vs the logged float32 Grams at each W (the paper's late values at the full scale)."""
    from tianref.analysis.gram_plots import fig_gram_precision
    from tianref.experiments.reproduce.explain import WINDOWS, logged_grams
    from tianref.experiments.reproduce.sections import ETA_GROK, eta_at
    grok = [r for r in records if float(r.config.get("eta", -1)) == eta_at(ETA_GROK, scale)]
    ctrl = [r for r in records if float(r.config.get("eta", -1)) == 0.0]
    o = doc["views"][0]["options"]
    paper = None
    if scale.name == "full":
        paper = {r["W"]: (r["late_grok"], r["late_ctrl"]) for r in load_published()["tables"]["T4"]["rows"]}
    return fig_gram_precision(grok, ctrl, WINDOWS, logged_grams(records), (o["late_lo"], o["late_hi"]), paper)


def _seed_of(doc, act):
    return doc["thm6"]["acts"][act]["seeds"][0]
