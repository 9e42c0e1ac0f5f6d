"""Per-run numbers of a training run (crossings, the rho fire, whether it fit, collapsed or diverged) and the
grid helpers built on them; shared by the section modules, holding no section's logic.

References: docs/detectors.md (the crossings and the rho detector); Tian, arXiv:2509.21519 (p_crit = log M / M).

Symbols (per run)
    t05, t099   first epoch with test accuracy >= 0.5 / >= 0.99 (None: never); "grokked" = t099 exists
    rho_fire    first epoch with rho_tian >= 0.075
    rho_from_start  rho_tian >= 0.075 at its first logged row: the fire dates no onset (docs/detectors.md §10)
    lead        t05 - rho_fire; None where rho_from_start (undefined)
    fit         final train accuracy >= FIT_ACC (the run memorised its training set)
    status      ok | collapsed (final train accuracy <= 2/M and train loss >= 0.98 (1 - 1/M): the outputs no
                longer depend on the input) | diverged (the loss or the parameters became non-finite, or the
                ridge solve failed; the run stopped)
    outcome     'generalises' (t099 exists) | 'memorises, does not generalise in E epochs' (fit, no t099) |
                'fits neither set in E epochs' (neither) -- the label of a group of runs
"""
from __future__ import annotations

import math
from pathlib import Path

from tianref.analysis import detectors as det, event_flags as ef
from tianref.experiments.reproduce.cells import fnum, med

FIT_ACC = 0.99
FINAL_KEYS = ("train_acc", "test_acc", "train_loss", "freq_coverage", "freq_purity_med", "ftf_ratio",
              "indep_cos_med", "energy_med")


def run_stats(rec, diverged: bool = False, p_crit=None) -> dict:
    """The per-run numbers of the module docstring, from a RunRecord."""
    cfg = rec.config
    M = int(cfg["M"])
    t05, t099 = det.test_crossings(rec.col("test_acc"))
    rho = det.rho_fire(rec.col("rho_tian")) if rec.has("rho_tian") else math.nan
    started = "rho_fire" in ef.from_start({"rho_fire": rho}, ef.first_rows(rho=rec.col("rho_tian"))) \
        if rec.has("rho_tian") else False
    last = {k: fnum(rec.col(k)[-1]) if rec.n_epochs else None for k in FINAL_KEYS}
    status = "ok"
    if diverged or (last["train_loss"] is None and rec.n_epochs):
        status = "diverged"
    elif last["train_acc"] is not None and last["train_acc"] <= 2.0 / M \
            and last["train_loss"] is not None and last["train_loss"] >= 0.98 * (1 - 1 / M):
        status = "collapsed"
    p = rec.meta.get("train_frac") or int(cfg["n_train"]) / (M * M)      # the nominal p of the grid
    out = {"run": rec.path.name, "M": M, "n_train": int(cfg["n_train"]), "p": float(p), "seed": int(cfg["seed"]),
           "optimizer": cfg.get("optimizer", "adam"), "top_layer": cfg.get("top_layer", "trained"),
           "loss": cfg.get("loss", "tian"), "epochs": int(cfg["epochs"]), "rows": rec.n_rows,
           "t05": fnum(t05), "t099": fnum(t099), "rho_fire": fnum(rho), "rho_from_start": started,
           "lead": None if started else fnum(t05 - rho),
           "grokked": bool(math.isfinite(t099)), "fit": bool(last["train_acc"] is not None
                                                             and last["train_acc"] >= FIT_ACC),
           "status": status, "final": last}
    if p_crit is not None:
        out["c"] = round(float(p) / p_crit(M), 4)
    return out


def rho_started(s: dict) -> bool:
    """The run's rho fire was at row 0 (a stored run without rho_from_start is judged by its fire epoch:
    rho_tian is logged from row 0)."""
    return bool(s.get("rho_from_start", s.get("rho_fire") == ef.stored_first_rows({})["rho_fire"]))


def lead_defined(s: dict) -> bool:
    """A run's lead exists and its rho fire was not at row 0."""
    return s.get("lead") is not None and not rho_started(s)


def stored_lead(s: dict):
    """A stored per-run row's lead by the current rule, from its stored t05 and rho_fire: what run_stats
    gives for the run (None where either is missing or the rho fire was at row 0)."""
    if rho_started(s) or s.get("t05") is None or s.get("rho_fire") is None:
        return None
    return fnum(s["t05"] - s["rho_fire"])


def diverged_runs(records, section_dir) -> set:
    """Names of the runs whose config.json records a divergence (runs.record_divergence: a non-finite loss
    or parameters, or a failed ridge solve), or whose sweep log (SECTION_DIR/_logs/<run>.log) ends with a
    non-finite loss or parameters failure and that did not log all their rows."""
    from tianref.experiments.sweep import LOG_DIR
    from tianref.runs import divergence
    out = set()
    for r in records:
        if divergence(r.meta) is not None:
            out.add(r.path.name)
            continue
        log = Path(section_dir) / LOG_DIR / f"{r.path.name}.log"
        if not log.is_file() or r.n_rows >= int(r.config["epochs"]) + 1:
            continue
        if "non-finite" in log.read_text(encoding="utf-8", errors="replace")[-2000:]:
            out.add(r.path.name)
    return out


def outcome(runs) -> str:
    """The label of a group of runs (module docstring), with its counts."""
    n = len(runs)
    g = sum(s["grokked"] for s in runs)
    fit = sum(s["fit"] for s in runs)
    E = "/".join(str(e) for e in sorted({s["epochs"] for s in runs}))
    if g == n:
        return f"generalises ({g}/{n})"
    if g:
        return f"generalises in {g}/{n} runs"
    if fit == n:
        return f"memorises, does not generalise in {E} epochs ({fit}/{n} reach train accuracy ≥ {FIT_ACC:g})"
    return f"fits neither set in {E} epochs ({fit}/{n} reach train accuracy ≥ {FIT_ACC:g})"


def group_summary(stats, key) -> dict:
    """Medians of the per-run numbers per group (by the per-run field ``key``), with the group's outcome."""
    out = {}
    for g in sorted({s[key] for s in stats}):
        runs = [s for s in stats if s[key] == g]
        out[g] = {"n": len(runs), "n_grok": sum(s["grokked"] for s in runs), "n_fit": sum(s["fit"] for s in runs),
                  "outcome": outcome(runs), "epochs": sorted({s["epochs"] for s in runs}),
                  "t05_med": med([s["t05"] for s in runs]), "t099_med": med([s["t099"] for s in runs]),
                  **{f"final_{k}_med": med([s["final"][k] for s in runs]) for k in FINAL_KEYS}}
    return out


def boundary(cells) -> dict:
    """Per M: the smallest grid value x at which at least half of the seeds grok ('first_ge_half') and the
    largest below it at which fewer do ('last_below'); the boundary lies in (last_below, first_ge_half].
    None marks an open end: first_ge_half None when no grid value reaches half (the boundary lies above the
    whole grid: last_below is then the largest grid value), last_below None when the smallest already does.
    cells: [{'M', 'x', 'frac'}]."""
    out = {}
    for M in sorted({c["M"] for c in cells}):
        row = sorted((c["x"], c["frac"]) for c in cells if c["M"] == M)
        hit = [x for x, f in row if f >= 0.5]
        lo = hit[0] if hit else None
        below = [x for x, f in row if lo is None or x < lo]
        out[M] = {"first_ge_half": lo, "last_below": below[-1] if below else None}
    return out


def column_at(rec, key, epoch):
    """The logged value of ``key`` at row ``epoch`` (None when absent or outside the run)."""
    col = rec.col(key)
    return fnum(col[int(epoch)]) if 0 <= int(epoch) < len(col) else None


__all__ = ["FIT_ACC", "run_stats", "rho_started", "lead_defined", "stored_lead", "diverged_runs", "outcome",
           "group_summary", "boundary", "column_at"]
