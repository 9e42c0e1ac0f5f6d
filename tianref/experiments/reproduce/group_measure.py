"""Measurements of the ``groups`` reproduce section: per-run events, purity, Theorem 7's count, Theorem 6.

References: Tian, arXiv:2509.21519 and his slides (group arithmetic: units converge to single irreps; once
some irreps are learned the remaining maxima sit on the missing ones, Theorem 7); his code
(yuandong-tian/understanding, ssl/real-dataset/cogo/modular_addition_simple2.py) for the critical train
fraction; docs/groups.md §7 for every definition below.

Symbols
    H, M, d_max      the group, |H|, its largest irrep degree
    n_comp, m_k      number of non-trivial real isotypic components, their real dimensions (sum M - 1)
    P[k, j]          ||Pi_k w_a||^2 + ||Pi_k w_b||^2 of unit j (group_fourier.component_power)
    pure_j           purity_j >= 0.9 (group_fourier.PURITY_THRESHOLD, inclusive); k*_j its component
    purity_w         sum_j max_k P[k, j] / sum_{j,k} P[k, j]: the share of W's non-trivial power that
                     sits in each unit's own dominant component (1: every unit inside one irrep)
    p(c)             (d_max / 2) c ln M / M, the train fraction of Tian's critical ratio at multiplier c
    C_t              the components covered at t (k*_j of the pure units)
    Theorem 7 count  over consecutive replayed epochs t -> t + s while 0 < |C_t| < n_comp: every unit that
                     is pure at t + s and was not at t is a *newly pure* unit; it *lands on a missing*
                     component when k*_j(t + s) is not in C_t. k = landings on missing, n = newly pure units.
    nulls            a newly pure unit that picked its component at random, with probability
                     q_dim = sum_{k not in C_t} m_k / (M - 1) (proportional to the component's dimension)
                     or q_unif = (n_comp - |C_t|) / n_comp (uniform over components); E_dim = sum of
                     q_dim over the newly pure units (the expected k), E_unif likewise.
"""
from __future__ import annotations

import math
import os

import numpy as np  # host analysis of logged rows and checkpoints

from tianref import group_fourier as gf, groups, irreps, runs
from tianref.analysis import detectors as det
from tianref.backend import to_host

THRESHOLD = gf.PURITY_THRESHOLD


def group_info(spec: str) -> dict:
    """Order, degrees, d_max and the component dimensions of a group spec."""
    G = groups.parse_group(spec)
    dec = irreps.decompose(G.table)
    dims = [c.real_dim for c in dec.components[1:]]
    return {"group": spec, "order": G.order, "abelian": bool((G.table == G.table.T).all()),
            "degrees": dec.degrees, "d_max": max(dec.degrees), "n_comp": len(dims), "comp_dims": dims}


def critical_frac(spec: str, c: float) -> float:
    """Tian's critical train fraction at multiplier c: (d_max / 2) c ln|H| / |H| (his code's scaling)."""
    info = group_info(spec)
    return info["d_max"] / 2 * c * math.log(info["order"]) / info["order"]


def power_purity(W, dec) -> float:
    """purity_w of W (2M, K) (module docstring)."""
    P = gf.component_power(np, np.asarray(W, dtype=np.float64), dec)   # (n_comp, K)
    tot = float(P.sum())
    return float(P.max(axis=0).sum() / tot) if tot > 0 else float("nan")


def slope_t_min(epochs: int) -> int:
    """The lock-in detector's earliest epoch: the paper's 100, or a quarter of a shorter run."""
    return min(det.SLOPE_T_MIN, max(epochs // 4, det.SLOPE_LAG))


def run_events(rec) -> dict:
    """One run's logged events and final irrep state (rows only)."""
    E = rec.n_epochs - 1
    acc = rec.col("test_acc")
    cov, pur = rec.col("irrep_coverage"), rec.col("irrep_purity_med")
    return {"run": rec.path.name, "seed": rec.config.get("seed"), "epochs": E,
            "t05": _num(det.first_crossing(acc, 0.5)), "t099": _num(det.first_crossing(acc, 0.99)),
            "fire": _num(det.slope_fire(rec.col("W_gap23"), t_min=slope_t_min(E))),
            "final_test_acc": _num(acc[-1]), "coverage": _num(cov[-1]), "purity_med": _num(pur[-1])}


def final_purity(run_dir, dec) -> float | None:
    """purity_w at the run's final checkpoint, or None without one."""
    path = os.path.join(str(run_dir), "checkpoints", "final.npz")
    if not os.path.isfile(path):
        return None
    return power_purity(runs.load_npz(path)["W"], dec)


def newly_pure_step(prev, now, dims) -> dict | None:
    """One interval t -> t + s of the Theorem 7 count. prev, now = (k* (K,), pure (K,)) host arrays at t and
    t + s; dims = m_k of components 1..n_comp. None when C_t is empty or complete (nothing is missing, or
    nothing has been learned yet); else {k, n, e_dim, e_unif} of the interval (module docstring)."""
    (pks, ppure), (ks, pure) = prev, now
    m = np.asarray(dims, dtype=float)
    n_comp = len(m)
    C = set(np.asarray(pks)[np.asarray(ppure)].tolist())                # covered at t
    if not 0 < len(C) < n_comp:
        return None
    new = np.asarray(pure) & ~np.asarray(ppure)                         # (K,) newly pure units
    missing = [k for k in range(1, n_comp + 1) if k not in C]
    q_dim, q_unif = m[[k - 1 for k in missing]].sum() / m.sum(), len(missing) / n_comp
    n = int(new.sum())
    return {"k": int(sum(k not in C for k in np.asarray(ks)[new].tolist())), "n": n,
            "e_dim": float(n * q_dim), "e_unif": float(n * q_unif)}


def theorem7_counts(cfg, xp=np, stride: int = 2) -> dict:
    """The Theorem 7 count of a run (module docstring), by replaying its optimizer steps from config
    (tianref.train.setup and step: the run's own trajectory) and reading W every ``stride`` epochs,
    until every component is covered or the run ends. t_first / t_full: the first read epochs with one /
    every component covered (None if never)."""
    from tianref import train
    dec = irreps.decompose(groups.task_group(cfg.group, cfg.M).table)
    dims = [c.real_dim for c in dec.components[1:]]
    problem, state = train.setup(cfg.replace(metrics="core"), xp)
    prev, out = None, {"k": 0, "n": 0, "e_dim": 0.0, "e_unif": 0.0, "t_first": None, "t_full": None}
    while True:
        if state.epoch % stride == 0 or state.epoch == cfg.epochs:
            _, _, ks, pur = gf.irrep_metrics(xp, state.params["W"], dec)
            now = (to_host(ks), to_host(pur) >= THRESHOLD)                 # (K,), (K,) host
            covered = set(now[0][now[1]].tolist())
            if covered and out["t_first"] is None:
                out["t_first"] = state.epoch
            step = newly_pure_step(prev, now, dims) if prev is not None else None
            for key in ("k", "n", "e_dim", "e_unif"):
                out[key] += step[key] if step else 0
            prev = now
            if len(covered) == len(dims):
                out["t_full"] = state.epoch
                break
        if state.epoch >= cfg.epochs:
            break
        state = train.step(xp, cfg, state, problem)
    return out


def theorem6_final(run_dir, cfg, n_top: int = 200) -> dict | None:
    """Theorem 6 on the final checkpoint (tianref.thm6, the `thm6` command's route): the exact sign rule,
    the paper's eq. (4) route and the fraction B_jl < 0 among positively correlated pairs."""
    from tianref import group_rows, thm6
    path = os.path.join(str(run_dir), "checkpoints", "final.npz")
    if not os.path.isfile(path) or cfg.eta <= 0:
        return None
    ck = runs.load_npz(path)
    F = thm6.features_from_weights(np, ck["W"], cfg.M, ck["train_idx"], cfg.act, group_rows.task_table(cfg))
    s = thm6.summarize_checkpoint(np, F, cfg.eta, n_top=min(n_top, cfg.K * (cfg.K - 1) // 2), n_audit=2)["summary"]
    return {"epoch": int(ck["epoch"]), "n_pairs": s["n_pairs"], "sign_match_exact": s["sign_match_exact"],
            "sign_match_paper": s["sign_match_paper"], "frac_B_neg_on_pos_cos": s["frac_B_neg_on_pos_cos"]}


def critical_cells(entries) -> list:
    """[(group, c, p, grokked?)] -> per (group, c): {group, c, p, n, n_grok} sorted by group, c."""
    cells = {}
    for g, c, p, ok in entries:
        cell = cells.setdefault((g, round(c, 6)), {"group": g, "c": c, "p": p, "n": 0, "n_grok": 0})
        cell["n"] += 1
        cell["n_grok"] += int(bool(ok))
    return [cells[k] for k in sorted(cells)]


def c_star(cells, group: str):
    """The smallest tested c at which at least half of the group's runs grok (t0.99 reached), or None."""
    ok = [c["c"] for c in cells if c["group"] == group and c["n"] and c["n_grok"] * 2 >= c["n"]]
    return min(ok) if ok else None


def c_bracket(cells, group: str):
    """(lo, hi): hi = c_star (None: no tested c reaches half), lo = the largest tested c below hi (all of them
    when hi is None) at which fewer than half grok (None: none). The transition lies in (lo, hi]."""
    hi = c_star(cells, group)
    below = [c["c"] for c in cells if c["group"] == group and c["n"] and (hi is None or c["c"] < hi)
             and c["n_grok"] * 2 < c["n"]]
    return (max(below) if below else None), hi


def _num(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)
