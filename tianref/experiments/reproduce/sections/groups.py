"""The ``groups`` section: Tian's group tasks (train on a finite group's Cayley table) and his claims on them.

References: Tian, arXiv:2509.21519 and his slides (seed 003): Stage II over irreps, Theorem 7 (top-down
modulation); his code yuandong-tian/understanding, ssl/real-dataset/cogo/modular_addition_simple2.py (the
critical train fraction (d_max/2) c ln|H|/|H|, c = 2.7482); the paper Feature Repulsion and Spectral
Lock-in (the sigma2/sigma3 detector, Theorem 6). docs/groups.md §7 describes the section and every measure;
tianref/experiments/reproduce/group_measure.py computes them.

Runs (``train --group``, x^2, the class-centred MSE, Adam with coupled L2):
    main      every group of GROUPS x seeds: Z_23 (the reference), Z4xZ6 (a product of cyclic groups, not
              cyclic), D12 (dihedral), S4, Q8xZ3 (a quaternionic irrep) and A5, at the scale's K, train
              fraction, eta, lr and the group's epochs
    critical  two non-abelian groups (S4, d_max = 3; Q8xZ3, d_max = 2) at train fractions
              p(c) = (d_max/2) c ln|H|/|H| for a few multipliers c, metrics core (only test accuracy is read)

Claims (rules of tianref.experiments.reproduce.claims.RULES):
    (1) units converge to single irreps        purity_w >= 0.9 at the end            most-runs
    (2) every non-trivial irrep gets covered   final irrep_coverage = n_comp          most-runs
        (for (1) and (2) no contrary is counted: a run short of the threshold falls short of the claim, it
        does not contradict it, so these rows read "differs" at worst, never "disagrees")
    (3) critical fraction, per group           the grid's transition (lo, c*]: c* the  brackets 2.7482
                                               smallest c where >= half grok
    (4) Theorem 7, top-down modulation         newly pure units landing on missing    binomial-above,
                                               components, k of n                     q = max(q_dim, q_unif)
    (5) sigma2/sigma3 lock-in fires in the grokking non-abelian runs                  most-runs
        (its contrary: the detector stays silent in a grokking run)
        Theorem 6's exact sign rule on a non-abelian checkpoint                       identity
"""
from __future__ import annotations

from dataclasses import dataclass

from tianref.errors import InputError
from tianref.experiments.protocols import RunSpec
import tianref.experiments.reproduce.group_measure as gm
from tianref.experiments.reproduce.claims import Source, claims_markdown, judged
from tianref.experiments.reproduce.section import Context, Section

GROUPS = ("Z23", "Z4xZ6", "D12", "S4", "Q8xZ3", "A5")
CRITICAL_GROUPS = ("S4", "Q8xZ3")
C_TIAN = 2.7482                      # his default multiplier (use_critical_ratio)
MAX_FRAC = 0.9                       # a train fraction above this leaves too few test pairs


@dataclass(frozen=True)
class Plan:
    K: int
    train_frac: float
    eta: float
    lr: float
    seeds: int
    epochs: dict                     # group -> E
    crit_c: tuple
    crit_epochs: int
    crit_seeds: int
    stride: int                      # Theorem 7: epochs between two reads of the replayed W
    eta_of: dict = None              # group -> eta where it differs
    frac_of: dict = None             # group -> main-run train fraction where it differs


PLANS = {
    # seconds: the pipeline end to end; too short and too narrow for the claims to be judged
    "ci": Plan(K=64, train_frac=0.5, eta=2e-3, lr=1e-2, seeds=1, epochs={g: 40 for g in GROUPS},
               crit_c=(1.0, 3.0), crit_epochs=40, crit_seeds=1, stride=2),
    "smoke": None,                    # the conformance test's scale: the ci plan (set below)
    # measured at K = 512, eta = 2e-3, one seed, one CPU core (docs/groups.md §7): at train fraction 0.5,
    # t0.5 / t0.99 = 183 / 244 (Z23), 140 / 209 (Z4xZ6), 116 / 207 (D12), 237 / 697 (Q8xZ3); S4 needs 0.6
    # (129 / 314; at 0.5 test accuracy 0.986 after 1000 epochs); A5 learns nothing at eta = 2e-3 (train
    # accuracy ~ 0.02 after 600 epochs) and groks at 6e-4 (128 / 182) and 2e-4 (185 / 380)
    "full": Plan(K=512, train_frac=0.5, eta=2e-3, lr=1e-3, seeds=3,
                 epochs={"Z23": 600, "Z4xZ6": 600, "D12": 600, "S4": 800, "Q8xZ3": 1200, "A5": 600},
                 crit_c=(1.0, 2.0, 3.0, 4.0), crit_epochs=1500, crit_seeds=3, stride=2,
                 eta_of={"A5": 6e-4}, frac_of={"S4": 0.6}),
}

SLIDES = Source("slides", "Tian, talk on arXiv 2509.21519 (seed 003): group arithmetic, Stage II over irreps")
THEOREM7 = Source("slides", "Tian, talk on arXiv 2509.21519 (seed 003): Theorem 7, top-down modulation")
CODE = Source("author-code", "yuandong-tian/understanding ssl/real-dataset/cogo/modular_addition_simple2.py")
LOCKIN = Source("paper", "Feature Repulsion and Spectral Lock-in (arXiv 2605.08119): the sigma2/sigma3 slope detector")
THM6 = Source("paper", "Feature Repulsion and Spectral Lock-in (arXiv 2605.08119): Theorem 6, the sign rule")


def scale_name(scale) -> str:
    """A scale's name from a Scale, its dict form (a summary's), or the name itself."""
    return scale if isinstance(scale, str) else (scale.get("name") if isinstance(scale, dict) else scale.name)


PLANS["smoke"] = PLANS["ci"]


def plan_of(scale) -> Plan:
    name = scale_name(scale)
    if name not in PLANS:
        raise InputError(f"the groups section has no {name!r} scale; choose one of {', '.join(PLANS)}")
    return PLANS[name]


def _base(plan: Plan, g: str) -> dict:
    eta = (plan.eta_of or {}).get(g, plan.eta)
    return {"group": g, "K": plan.K, "eta": eta, "lr": plan.lr}


class GroupsSection(Section):
    name = "groups"
    title = "Group arithmetic beyond Z_M: Tian's group tasks"
    tests = "tian"
    default = False
    needs_checkpoints = True            # final.npz (purity_w, Theorem 6) and replays (Theorem 7)

    def runs(self, scale) -> list:
        plan = plan_of(scale)
        out = []
        for g in GROUPS:
            for s in range(plan.seeds):
                frac = (plan.frac_of or {}).get(g, plan.train_frac)
                out.append(RunSpec(f"{g}_seed{s}", dict(_base(plan, g), train_frac=frac, seed=s,
                                                        epochs=plan.epochs[g])))
        for g in CRITICAL_GROUPS:
            for c in plan.crit_c:
                p = min(MAX_FRAC, round(gm.critical_frac(g, c), 4))
                for s in range(plan.crit_seeds):
                    out.append(RunSpec(f"crit_{g}_c{c:g}_seed{s}", dict(_base(plan, g), train_frac=p, seed=s,
                                                                       epochs=plan.crit_epochs, metrics="core")))
        return out

    def measure(self, records, scale, ctx: Context) -> dict:
        from tianref import irreps
        from tianref.backend import get_xp
        from tianref.groups import parse_group
        from tianref.config import TrainConfig, validate
        plan = plan_of(scale)
        xp = get_xp(ctx.xp)
        by_tag = {r.path.name: r for r in records}
        groups_out, crit = [], []
        for g in GROUPS:
            info = gm.group_info(g)
            dec = irreps.decompose(parse_group(g).table)
            rows = []
            for s in range(plan.seeds):
                rec = by_tag.get(f"{g}_seed{s}")
                if rec is None:
                    continue
                ctx.report(f"groups: {rec.path.name}")
                cfg = validate(TrainConfig.from_dict(rec.config))
                ev = gm.run_events(rec)
                ev["purity_w"] = gm.final_purity(rec.path, dec)
                ev["thm7"] = gm.theorem7_counts(cfg, xp, plan.stride)
                ev["thm6"] = gm.theorem6_final(rec.path, cfg) if (s == 0 and not info["abelian"]) else None
                rows.append(ev)
            groups_out.append(dict(info, runs=rows))
        for g in CRITICAL_GROUPS:
            unit = gm.critical_frac(g, 1.0)
            for rec in records:
                if rec.path.name.startswith(f"crit_{g}_c"):
                    frac = rec.meta.get("train_frac") or rec.config["n_train"] / rec.config["M"] ** 2
                    ev = gm.run_events(rec)
                    crit.append((g, round(float(frac) / unit, 3), float(frac), ev["t099"] is not None))
        cells = gm.critical_cells(crit)
        return {"plan": {"K": plan.K, "train_frac": plan.train_frac, "eta": plan.eta, "lr": plan.lr,
                         "seeds": plan.seeds, "epochs": plan.epochs, "eta_of": plan.eta_of or {},
                         "frac_of": plan.frac_of or {},
                         "crit_c": list(plan.crit_c), "crit_epochs": plan.crit_epochs, "stride": plan.stride},
                "groups": groups_out,
                "critical": {"cells": cells, "c_star": {g: gm.c_star(cells, g) for g in CRITICAL_GROUPS},
                             "d_max": {g: gm.group_info(g)["d_max"] for g in CRITICAL_GROUPS}}}

    def figures(self, doc, records, fig_dir, scale, ctx) -> list:
        """groups.png: test accuracy, the irrep coverage, W's sigma2/sigma3 and the train loss per group
        (the main runs; median and IQR over seeds)."""
        from pathlib import Path
        from tianref.experiments.reproduce.figures import _save_fig
        from tianref.experiments.reproduce.series_figure import series_figure
        Path(fig_dir).mkdir(parents=True, exist_ok=True)
        main = [r for r in records if not r.path.name.startswith("crit_")]
        keys = [(k, t) for k, t in (("test_acc", "test accuracy"), ("irrep_coverage", "irrep coverage"),
                                    ("irrep_purity_med", "median irrep purity"), ("W_gap23", "W sigma2/sigma3"),
                                    ("train_loss", "train loss")) if any(r.has(k) for r in main)]
        if not main or not keys:
            return []
        fig = series_figure(main, lambda r: r.config.get("group") or f"Z{r.config['M']}", keys,
                            f"groups ({scale_name(doc.get('scale', 'unknown'))} scale)")
        return [_save_fig(fig, Path(fig_dir) / "groups.png")]

    # ------------------------------------------------------------------ pure: claims and report

    def claims(self, doc: dict, published: dict) -> list:
        runs = [(grp, r) for grp in doc["groups"] for r in grp["runs"]]
        p = doc["plan"]
        over = lambda d: f" ({', '.join(f'{g}: {v:g}' for g, v in d.items())})" if d else ""
        setup = (f"K = {p['K']}, train fraction {p['train_frac']:g}{over(p.get('frac_of'))}, "
                 f"eta = {p['eta']:g}{over(p.get('eta_of'))}")
        out = []
        pw = [r["purity_w"] for _, r in runs if r["purity_w"] is not None]
        k = sum(x >= gm.THRESHOLD for x in pw)
        out.append(judged("units converge to single irreps", SLIDES,
                          f"purity_w >= {gm.THRESHOLD} at the end in {k}/{len(pw)} runs "
                          f"(min {min(pw, default=float('nan')):.3f})", "most-runs", (k, 0, len(pw)),
                          same_definition=False, difference=setup + "; purity_w is this project's measure"))
        full = [r["coverage"] == grp["n_comp"] for grp, r in runs if r["coverage"] is not None]
        out.append(judged("every non-trivial irrep is covered once K is large enough", SLIDES,
                          f"final irrep_coverage = n_comp in {sum(full)}/{len(full)} runs (K = {doc['plan']['K']})",
                          "most-runs", (sum(full), 0, len(full)), same_definition=False, difference=setup))
        crit = doc["critical"]
        for g, cs in crit["c_star"].items():
            cells = [c for c in crit["cells"] if c["group"] == g]
            grid = ", ".join(f"c={c['c']:g}: {c['n_grok']}/{c['n']}" for c in cells)
            lo, hi = gm.c_bracket(cells, g)
            where = (f"in ({fmt_c(lo)}, {fmt_c(hi)}]" if hi is not None else f"above the grid (> {fmt_c(lo)})")
            out.append(judged(f"critical train fraction (d_max/2)·c·ln M/M (M the order) with c = {C_TIAN} "
                              f"({g}, d_max = {crit['d_max'][g]})", CODE,
                              f"c* = {cs if cs is not None else 'none'}, transition {where} (grokked: {grid})",
                              "brackets", (lo, hi) if cells else None, C_TIAN, same_definition=False,
                              difference=f"grokked = t0.99 within {p['crit_epochs']} epochs; {setup}"))
        t7 = [r["thm7"] for _, r in runs if r.get("thm7")]
        k7, n7 = sum(t["k"] for t in t7), sum(t["n"] for t in t7)
        e_dim, e_unif = sum(t["e_dim"] for t in t7), sum(t["e_unif"] for t in t7)
        q = max(e_dim, e_unif) / n7 if n7 else None
        out.append(judged("Theorem 7: units that purify after the first irreps are covered go to the missing "
                          "ones", THEOREM7,
                          f"{k7}/{n7} newly pure units landed on missing components; expected "
                          f"{e_dim:.1f} (by dimension), {e_unif:.1f} (uniform)", "binomial-above", (k7, n7), q,
                          same_definition=False,
                          difference="covered by a pure unit (not learned by the output); replay read every "
                                     f"{doc['plan']['stride']} epochs"))
        grok = [r for grp, r in runs if not grp["abelian"] and r["t099"] is not None]
        fired = [r for r in grok if r["fire"] is not None]
        ab = [r for grp, r in runs if grp["abelian"] and r["t099"] is not None]    # beside it, not judged
        out.append(judged("the sigma2/sigma3 lock-in detector fires in grokking runs of non-abelian groups (the "
                          "paper's runs are on Z_71)", LOCKIN,
                          f"fired in {len(fired)}/{len(grok)} grokking non-abelian runs, silent in "
                          f"{len(grok) - len(fired)}/{len(grok)} (abelian groups, not judged: fired in "
                          f"{sum(r['fire'] is not None for r in ab)}/{len(ab)})", "most-runs",
                          (len(fired), len(grok) - len(fired), len(grok)), same_definition=False, difference="non-abelian groups, not Z_71"))
        t6 = [r["thm6"] for _, r in runs if r.get("thm6")]
        worst = max((1 - t["sign_match_exact"] for t in t6 if t["sign_match_exact"] is not None), default=None)
        out.append(judged("Theorem 6: the exact leave-two-out sign rule", THM6,
                          f"sign match {1 - worst if worst is not None else 'n/a'} (worst of {len(t6)} "
                          "non-abelian checkpoints)", "identity", worst, same_definition=False,
                          difference="non-abelian groups, not Z_71"))
        neg = [t["frac_B_neg_on_pos_cos"] for t in t6 if t["frac_B_neg_on_pos_cos"] is not None]
        out.append(judged("similar features repel: B_jl < 0 among positively correlated pairs", THM6,
                          ", ".join(f"{x:.3f}" for x in neg) or "n/a", "info", None,
                          same_definition=False, difference="non-abelian groups, not Z_71"))
        return out

    def report(self, doc: dict, published: dict) -> str:
        p = doc["plan"]
        lines = [f"# {self.title}", "",
                 f"Scale `{scale_name(doc.get('scale', 'unknown'))}`: K = {p['K']}, train fraction {p['train_frac']}, eta = {p['eta']:g}"
                 + (f" ({', '.join(f'{g}: {e:g}' for g, e in p['eta_of'].items())})" if p["eta_of"] else "")
                 + (f" (train fraction {', '.join(f'{g}: {e:g}' for g, e in p.get('frac_of', {}).items())})"
                    if p.get("frac_of") else "")
                 + f", lr = {p['lr']:g}, {p['seeds']} seed(s); x^2, class-centred MSE, Adam with coupled L2.", "",
                 "## Claims", ""] + claims_markdown(self.claims_of(doc, published))
        lines += ["", "## Per group", "",
                  "| group | \\|H\\| | degrees | runs | t0.5 | t0.99 | lock-in fire | coverage / n_comp | "
                  "purity_med | purity_w |", "|---|---|---|---|---|---|---|---|---|---|"]
        for grp in doc["groups"]:
            rs = grp["runs"]
            lines.append(f"| {grp['group']} | {grp['order']} | {_degrees(grp['degrees'])} | {len(rs)} | "
                         f"{_vals(rs, 't05')} | {_vals(rs, 't099')} | {_vals(rs, 'fire')} | "
                         f"{_vals(rs, 'coverage')} / {grp['n_comp']} | {_vals(rs, 'purity_med', 3)} | "
                         f"{_vals(rs, 'purity_w', 3)} |")
        lines += ["", "## Critical train fraction", "",
                  "| group | d_max | c | train fraction | grokked (t0.99) |", "|---|---|---|---|---|"]
        for c in doc["critical"]["cells"]:
            lines.append(f"| {c['group']} | {doc['critical']['d_max'][c['group']]} | {c['c']:g} | {c['p']:.3f} | "
                         f"{c['n_grok']}/{c['n']} |")
        lines += ["", "## Theorem 7 (newly pure units while some components are missing)", "",
                  "| group | run | first covered | all covered | newly pure | on missing | expected (dim) | "
                  "expected (uniform) |", "|---|---|---|---|---|---|---|---|"]
        for grp in doc["groups"]:
            for r in grp["runs"]:
                t = r.get("thm7") or {}
                cell = lambda k: "—" if t.get(k) is None else t.get(k)                          # noqa: E731
                lines.append(f"| {grp['group']} | {r['run']} | {cell('t_first')} | {cell('t_full')} | "
                             f"{cell('n')} | {cell('k')} | {t.get('e_dim', 0):.1f} | {t.get('e_unif', 0):.1f} |")
        lines += ["", "## Theorem 6 (final checkpoint, seed 0 of each non-abelian group)", "",
                  "| group | epoch | pairs | sign match (exact) | sign match (paper eq. 4) | B<0 among cos>0 |",
                  "|---|---|---|---|---|---|"]
        for grp in doc["groups"]:
            for r in grp["runs"]:
                t = r.get("thm6")
                if t:
                    lines.append(f"| {grp['group']} | {t['epoch']} | {t['n_pairs']} | {_f(t['sign_match_exact'])} | "
                                 f"{_f(t['sign_match_paper'])} | {_f(t['frac_B_neg_on_pos_cos'])} |")
        return "\n".join(lines) + "\n"


def _degrees(degs) -> str:
    """[1, 1, 2, 3, 3] -> '1×2, 2, 3×2'."""
    out = []
    for d in sorted(set(degs)):
        n = degs.count(d)
        out.append(f"{d}×{n}" if n > 1 else f"{d}")
    return ", ".join(out)


def fmt_c(c) -> str:
    """A multiplier c of the critical grid; None (no tested c below the transition) is its lower end 0."""
    return "0" if c is None else f"{c:g}"


def _f(x, nd=3):
    return "n/a" if x is None else f"{x:.{nd}f}"


def _vals(rows, key, nd=None) -> str:
    """Per-seed values joined by ', ' (— for an event that did not happen)."""
    out = []
    for r in rows:
        v = r.get(key)
        out.append("—" if v is None else (f"{v:.{nd}f}" if nd else f"{v:g}"))
    return ", ".join(out) or "—"


SECTION = GroupsSection()
