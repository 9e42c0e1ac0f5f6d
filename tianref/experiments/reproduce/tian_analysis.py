"""Tian's sections, measured: per-run numbers, per-cell tables and the claim rows (pure functions).

References: docs/paper-protocol.md §1 T6 (the published M x p sweep, as data in
reference_results/paper/published.json); Tian, arXiv:2509.21519 (Theorem 4, Stage I, the Muon claim);
docs/math.md §9-12 (the optimizers, the ridge top layer and its G_F limit, the Fourier diagnostics).
The runs are listed in :mod:`tianref.experiments.protocols_tian`.

Symbols (per run)
    t05, t099   first epoch with test accuracy >= 0.5 / >= 0.99 (NaN: never); "grokked" = t099 exists
    rho_fire    first epoch with rho_tian >= 0.075 (the paper's T6 column)
    lead        t05 - rho_fire (T6's "lead vs test 0.5")
    status      ok | collapsed (final train accuracy <= 2/M and train loss >= 0.98 (1 - 1/M): the
                outputs no longer depend on the input, the loss of a constant class-centred output
                being >= 1 - 1/M) | diverged (the loss became non-finite; the run stopped with exit 1)
    p_crit      log M / M (Tian's Theorem 4 scale), c = p / p_crit
"""
from __future__ import annotations

import math

import numpy as np

from tianref.analysis import detectors as det
from tianref.experiments import protocols_tian as pt


def _f(x):
    x = float(x)
    return None if not math.isfinite(x) else x


def _med(xs):
    xs = [x for x in xs if x is not None]
    return float(np.median(xs)) if xs else None


def _col(rec, key):
    return rec.columns.get(key, np.full(rec.n_epochs, np.nan))


def run_stats(rec, diverged: bool = False) -> dict:
    """The per-run numbers of the module docstring, from a RunRecord."""
    cfg = rec.config
    M = int(cfg["M"])
    test = _col(rec, "test_acc")
    t05, t099 = det.test_crossings(test)
    rho = det.rho_fire(_col(rec, "rho_tian")) if "rho_tian" in rec.columns else np.nan
    last = {k: _f(_col(rec, k)[-1]) if rec.n_epochs else None
            for k in ("train_acc", "test_acc", "train_loss", "freq_coverage", "freq_purity_med",
                      "ftf_ratio", "indep_cos_med", "energy_med")}
    status = "ok"
    if diverged or (last["train_loss"] is None and rec.n_epochs):
        status = "diverged"
    elif last["train_acc"] is not None and last["train_acc"] <= 2.0 / M \
            and last["train_loss"] is not None and last["train_loss"] >= 0.98 * (1 - 1 / M):
        status = "collapsed"
    p = rec.meta.get("train_frac") or int(cfg["n_train"]) / (M * M)   # the nominal p of the grid
    return {"run": rec.path.name, "M": M, "n_train": int(cfg["n_train"]), "p": float(p),
            "c": round(float(p) / pt.p_crit(M), 4), "seed": int(cfg["seed"]), "optimizer": cfg.get("optimizer", "adam"),
            "top_layer": cfg.get("top_layer", "trained"), "epochs": int(cfg["epochs"]),
            "rows": rec.n_rows, "t05": _f(t05), "t099": _f(t099), "rho_fire": _f(rho),
            "lead": _f(t05 - rho), "grokked": bool(math.isfinite(t099)), "status": status,
            "final": last}


def scaling_table(stats, published_T6) -> list:
    """One row per (M, p): ours beside the paper's T6."""
    paper = {(r["M"], r["p"]): r for r in published_T6["rows"]}
    cells = sorted({(s["M"], round(s["p"], 2)) for s in stats})
    out = []
    for M, p in cells:
        runs = [s for s in stats if s["M"] == M and round(s["p"], 2) == p]
        g = [s for s in runs if s["grokked"]]
        pp = paper.get((M, p))
        out.append({"M": M, "p": p, "n": len(runs), "n_grok": len(g),
                    "t099_med": _med([s["t099"] for s in g]), "rho_fire_med": _med([s["rho_fire"] for s in runs]),
                    "lead_med": _med([s["lead"] for s in g]),
                    "n_collapsed": sum(s["status"] == "collapsed" for s in runs),
                    "n_diverged": sum(s["status"] == "diverged" for s in runs),
                    "n_rho_fired": sum(s["rho_fire"] is not None for s in runs),
                    "p_over_pcrit": p / pt.p_crit(M),
                    "paper": None if pp is None else {k: pp.get(k) for k in ("n_grok", "t099", "rho_fire", "lead",
                                                                              "note")}})
    return out


def boundary(cells, key="frac") -> dict:
    """Per M: the smallest grid value x at which at least half of the seeds grok, and the largest below it
    at which fewer do (the boundary lies in between).  cells: [{'M', 'x', 'frac'}]."""
    out = {}
    for M in sorted({c["M"] for c in cells}):
        row = sorted((c["x"], c[key]) for c in cells if c["M"] == M)
        hit = [x for x, f in row if f >= 0.5]
        lo = hit[0] if hit else None
        below = [x for x, f in row if lo is not None and x < lo]
        out[M] = {"first_ge_half": lo, "last_below": below[-1] if below else None}
    return out


def critical_table(stats) -> list:
    out = []
    for M in sorted({s["M"] for s in stats}):
        for c in sorted({round(s["c"], 2) for s in stats if s["M"] == M}):
            runs = [s for s in stats if s["M"] == M and round(s["c"], 2) == c]
            out.append({"M": M, "c": c, "p": runs[0]["p"], "n_train": runs[0]["n_train"], "n": len(runs),
                        "n_grok": sum(s["grokked"] for s in runs), "frac": sum(s["grokked"] for s in runs) / len(runs),
                        "t099_med": _med([s["t099"] for s in runs if s["grokked"]]),
                        "final_test_med": _med([s["final"]["test_acc"] for s in runs])})
    return out


def series(records, key, group_of) -> dict:
    """{group: {'epoch': [...], 'median': [...], 'q25': [...], 'q75': [...]}} of a logged column across seeds."""
    groups = {}
    for r in records:
        groups.setdefault(group_of(r), []).append(_col(r, key))
    out = {}
    for g, cols in groups.items():
        n = min(len(c) for c in cols)
        A = np.array([c[:n] for c in cols])                                # (seeds, E+1)
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                q = np.nanpercentile(A, [25, 50, 75], axis=0) if A.size else np.zeros((3, 0))
        out[g] = {"epoch": list(range(n)), "q25": [_f(x) for x in q[0]], "median": [_f(x) for x in q[1]],
                  "q75": [_f(x) for x in q[2]], "n": len(cols)}
    return out


def group_summary(stats, key) -> dict:
    """Medians of the scalar per-run numbers per group (optimizer or top layer)."""
    out = {}
    for g in sorted({s[key] for s in stats}):
        runs = [s for s in stats if s[key] == g]
        out[g] = {"n": len(runs), "n_grok": sum(s["grokked"] for s in runs),
                  "t05_med": _med([s["t05"] for s in runs]), "t099_med": _med([s["t099"] for s in runs]),
                  **{f"final_{k}_med": _med([s["final"][k] for s in runs])
                     for k in ("test_acc", "freq_coverage", "freq_purity_med", "ftf_ratio", "indep_cos_med",
                               "energy_med")}}
    return out


def ridge_gf_check(run_dir, config, epochs) -> list:
    """At each checkpoint: ||G_F|| of the run beside its ridge-limit formula (docs/math.md §10).

    lam = nu eta / 2 for a trained V (the stationary V of Adam with coupled L2 on this loss), the run's
    --ridge-reg for the ridge top layer (where the two must agree to rounding).
    """
    from tianref import data, group_rows, metrics, model, ridge, runs
    M, n = int(config["M"]), int(config["n_train"])
    lam = float(config.get("ridge_reg", 1e-3)) if config.get("top_layer") == "ridge" else n * float(config["eta"]) / 2
    out = []
    for e in epochs:
        path = runs.checkpoint_path(str(run_dir), e)
        try:
            ck = runs.load_npz(path)
        except Exception:
            continue
        W, V = ck["W"].astype(np.float64), ck["V"].astype(np.float64)
        batch = data.make_batch(np, M, np.asarray(ck["train_idx"]), group_rows.table_of_config(config))
        _, F = model.hidden(np, W, batch, config.get("act", "sqr"))
        G = metrics.residual(np, F @ V, batch.y) @ V.T                      # (n, K) P_perp (T - F V) V^T
        Gr = ridge.ridge_limit_G_F(np, F, batch.y, M, lam)                   # (n, K)
        nG, nR = float(np.linalg.norm(G)), float(np.linalg.norm(Gr))
        cos = float((G * Gr).sum() / (nG * nR)) if nG > 0 and nR > 0 else None
        out.append({"epoch": int(e), "lam": lam, "gF_norm": nG, "gF_ridge_norm": nR,
                    "rel_dist": float(np.linalg.norm(G - Gr)) / nR if nR > 0 else None, "cos": cos})
    return out
