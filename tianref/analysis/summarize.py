"""The paper's statistics over a tree of run directories: per run, per condition, grok vs control.

References: ``docs/paper-protocol.md`` §1 (T2, T3, T3b, T4, T5), §2, §3 (the detectors,
"Late-stage separation", "Test crossings") and §5.5-5.6 (the late window and the lag caveats).
The detectors themselves are in :mod:`tianref.analysis.detectors`; this module only groups and tabulates.

Conditions and controls (:mod:`tianref.analysis.conditions`): runs are grouped by their config minus
the seed and what was only logged; a condition with eta > 0 is paired with its eta = 0 control, and the
late sigma2/sigma3 separation is median_seeds(late_grok) / median_seeds(late_ctrl). The Markdown is
:mod:`tianref.analysis.summary_markdown`, the JSON and the atomic write :mod:`tianref.analysis.summary_io`;
every name they define is importable from here too.

Per run (NaN = the event never happened; ``None`` in JSON = NaN or not logged):
    t05, t099        first t with test_acc >= 0.5 / 0.99   ('halfmax': analysis.py's level for t05)
    fire             sigma2/sigma3 slope detector (window ``window``)
    late             nanmedian of sigma2/sigma3 over [late_lo, late_hi]
    rho_fire         first t with rho_tian >= rho_threshold
    r12_*            the four sigma1/sigma2 detectors of the notes (T3b)
    lag_fire_t099    fire - t099 (the paper's "+35"), lag_fire_t05 = fire - t05 (~ +72)
    lead_rho         t05 - rho_fire, per run (plot_two_stage); the difference of medians
                     (analyze_eta_sweep) is reported per condition as lead_rho_of_medians.
                     A lead or lag with an operand in from_start is undefined (None).
    slope_peak, slope_peak_epoch, fire_0.035, fire_0.04, fire_0.045, collapse_epoch,
    late_precollapse, q_late_eps, precision_limited
                     the diagnostics of :mod:`tianref.analysis.diagnostics` (q = sigma3/sigma1)

    t_cls, t_cls_abs, t_margin, t_rep, t_rep_settled, t_rep_censored, clock_ratio, clock_outcome
                     the two clocks and the F.4 outcome (tianref.analysis.clock_events; eps = cls_eps,
                     eps_abs = cls_eps_abs, delta = rep_delta, persist); the same with suffix _tail
                     for W_tail (t_rep_tail, t_rep_tail_settled, ..., clock_outcome_tail). Per
                     condition: median [IQR] of the times, n_rep_censored, and clock_outcomes (counts).

    folder           the run's folder relative to the summarised directory (conditions.run_folder)
    status, status_why
                     'complete' | 'diverged' | 'unfinished' and one phrase saying why
                     (records.run_status: 'diverged at epoch 2 (non-finite loss)', 'ends at epoch 25 of 60')
    from_start, undefined, grokked, fire_without_grok
                     events at the first row their detector can fire; the leads and lags they leave
                     undefined (None above, reason here); test accuracy >= 0.5 at some row; the
                     detectors that fired in a run that never did (tianref.analysis.event_flags).
                     Per condition: fire_without_grok, n_from_start, n_undefined (counts).

Each run is counted once: folders holding the same run (same condition, seed and init source, the seed left
out for runs from one --init-from file; identical identity fingerprints always are) are reduced to one by
conditions.drop_duplicates and listed under the summary's "duplicates" (docs/detectors.md §9). With ``Options.complete_only`` the incomplete runs are left out
and listed under "left_out" ([{"folder", "status", "why", "last_epoch", "epochs"}]); without it they are
counted as they are and their rows say so ("complete", "status", "status_why").

``Options.gram = 'float32'`` (or 'float32-seq') reads the spectra a run also logged with
``train --log-grams`` (W_gap23_f32, W_sigma_f32; ..._f32seq) instead of its own; a run whose own Gram is
that mode (``--gram-dtype float32``) is read from its main keys (gram_suffix). A run of a condition
that did not log them has no events from them (None); a condition with such runs lists their folders under
"gram_missing" (absent when there are none; summary_markdown.gram_missing_lines: one warning line per condition).
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

import numpy as np

from tianref.analysis import clock_events, detectors as det
from tianref.analysis import diagnostics as dg
from tianref.analysis import event_flags as ef
from tianref.analysis.conditions import (NON_CONDITION_KEYS, condition_config, condition_labels,  # noqa: F401
                                         drop_duplicates, duplicates_line, find_control, group_conditions,
                                         run_folder)
from tianref.analysis.records import RunRecord, run_status, window_key
from tianref.analysis.summary_io import to_json, write_atomic  # noqa: F401
from tianref.analysis.summary_markdown import (fmt, gram_missing_lines, incomplete_line,  # noqa: F401
                                               late_range_note, to_markdown)
from tianref.errors import InputError

__all__ = ["NON_CONDITION_KEYS", "PER_RUN_EVENTS", "DIAGNOSTICS", "GRAM_KEYS", "Options", "is_complete_record",
           "run_values", "late_range_used", "late_range_note", "incomplete_line", "gram_missing_lines",
           "condition_config", "group_conditions", "condition_labels", "find_control", "summarize", "to_json",
           "write_atomic", "fmt", "to_markdown"]

PER_RUN_EVENTS = ("t05", "t099", "fire", "late", "rho_fire", "r12_ge25_x5", "r12_ge100",
                  "r12_ge200", "r12_slope", "lag_fire_t099", "lag_fire_t05", "lead_rho",
                  "lag_r12_ge100_t05", "lag_r12_slope_t05", "t_cls", "t_rep", "clock_ratio",
                  "t_cls_abs", "t_margin", "t_rep_settled", "t_rep_tail", "t_rep_tail_settled",
                  "clock_ratio_tail")
# per-run flags and labels of the clocks, counted per condition (not medians)
CLOCK_FLAGS = ("t_rep_censored", "t_rep_tail_censored")
CLOCK_OUTCOMES = ("clock_outcome", "clock_outcome_tail")
# per-run diagnostics (tianref.analysis.diagnostics), summarised across runs like the events
DIAGNOSTICS = ("slope_peak", "slope_peak_epoch", *(dg.fire_key(c) for c in dg.FIRE_THRESHOLDS),
               "collapse_epoch", "late_precollapse", "q_late_eps")
# which logged spectra: the run's own ('main'), or a Gram mode it also logged with train --log-grams
GRAM_KEYS = {"main": "", "float32": "_f32", "float32-seq": "_f32seq"}


def gram_suffix(rec, gram: str) -> str:
    """The key suffix of the ``gram`` spectra in a run: a run whose own Gram is that mode (train
    --gram-dtype float32) holds them under its main keys (--log-grams refuses to repeat it)."""
    if gram != "main" and rec.config.get("gram_dtype", "float64") == gram:
        return ""
    return GRAM_KEYS[gram]


@dataclass(frozen=True)
class Options:
    """Detector settings (defaults = the paper's code, paper-protocol.md §3)."""
    window: int | None = None            # None: the first logged window (unsuffixed keys)
    late_lo: int = det.LATE_RANGE[0]
    late_hi: int = det.LATE_RANGE[1]
    slope_threshold: float = det.SLOPE_THRESHOLD
    slope_t_min: int = det.SLOPE_T_MIN
    slope_lag: int = det.SLOPE_LAG
    min_valid: int = 0                   # 30 reproduces the window-sweep script
    rho_threshold: float = det.RHO_THRESHOLD
    crossing: str = "first"              # or 'halfmax' (analysis.py)
    complete_only: bool = False          # drop runs that are not complete (run_status: fewer than epochs + 1
                                         # rows, or diverged)
    gram: str = "main"                   # or a mode logged with train --log-grams (GRAM_KEYS)
    precision_factor: float = dg.PRECISION_FACTOR   # precision_limited: sigma3/sigma1 < factor 2^-23
    cls_eps: float = clock_events.CLS_EPS     # t_cls: train loss <= cls_eps * row-0 loss
    rep_delta: float = clock_events.REP_DELTA  # t_rep: W_srank within rep_delta of its final value
    persist: int = clock_events.PERSIST       # rows a clock's level must hold (sustained events)
    cls_eps_abs: float = clock_events.CLS_EPS_ABS   # t_cls_abs (cross-entropy): train loss <= this (nats)

    def __post_init__(self):
        if self.late_lo < 0 or self.late_hi < self.late_lo:
            raise InputError(f"late range [{self.late_lo}, {self.late_hi}] is empty")
        if self.slope_lag < 1:
            raise InputError("slope lag must be >= 1")
        if self.gram not in GRAM_KEYS:
            raise InputError(f"unknown Gram {self.gram!r}; choose one of {', '.join(GRAM_KEYS)}")
        if not self.precision_factor > 0:
            raise InputError(f"precision factor must be > 0 (got {self.precision_factor})")
        if self.persist < 1:
            raise InputError(f"persist must be >= 1 row (got {self.persist})")
        if self.crossing not in ("first", "halfmax"):
            raise InputError(f"unknown crossing {self.crossing!r}; choose first or halfmax")


# --- per run ----------------------------------------------------------------------------------

def is_complete_record(rec: RunRecord) -> bool:
    """True when the run logged rows 0..epochs and did not diverge (records.run_status 'complete'): a run
    whose loss became non-finite at its last row E has all E + 1 rows and is diverged."""
    return run_status(rec)["status"] == "complete"


def run_values(rec: RunRecord, opt: Options) -> dict:
    """The per-run events of one run; None where the needed column was never logged."""
    v: dict = {"path": str(rec.path), "seed": rec.config.get("seed"), "n_rows": rec.n_rows,
               "partial": rec.partial}
    v["complete"] = is_complete_record(rec)
    st = run_status(rec)
    v["status"], v["status_why"] = st["status"], st["why"]
    if rec.has("test_acc"):
        v["t05"], v["t099"] = det.test_crossings(rec.col("test_acc"), opt.crossing)
    else:
        v["t05"] = v["t099"] = None
    sfx = gram_suffix(rec, opt.gram)
    gap_key = window_key(rec, "W_gap23" + sfx, opt.window)
    if rec.has(gap_key):
        gap = rec.col(gap_key)                                        # (E+1,)
        v["fire"] = det.slope_fire(gap, opt.slope_threshold, opt.slope_t_min, opt.slope_lag,
                                   min_valid=opt.min_valid)
        v["late"] = det.late_median(gap, opt.late_lo, opt.late_hi)
        v["slope_peak"], v["slope_peak_epoch"] = dg.slope_peak(gap, opt.slope_t_min, opt.slope_lag)
        v.update(dg.fires_at(gap, dg.FIRE_THRESHOLDS, opt.slope_t_min, opt.slope_lag, opt.min_valid))
        v["collapse_epoch"] = dg.collapse_epoch(gap, v["fire"])
        v["late_precollapse"] = dg.late_precollapse(gap, opt.late_lo, opt.late_hi, v["collapse_epoch"])
    else:
        v["fire"] = v["late"] = None
        v.update({k: None for k in DIAGNOSTICS if k != "q_late_eps"})
    v["late_range_used"] = late_range_used(rec.n_epochs - 1, opt)
    v["rho_fire"] = det.rho_fire(rec.col("rho_tian"), opt.rho_threshold) \
        if rec.has("rho_tian") else None
    sig_key = window_key(rec, "W_sigma" + sfx, opt.window)
    if rec.has(sig_key) and rec.columns[sig_key].ndim == 2 and rec.columns[sig_key].shape[1] >= 2:
        S = rec.columns[sig_key]                                     # (E+1, k) eigenvalues, descending
        v.update(det.sigma12_detectors(S[:, 0], S[:, 1], opt.slope_threshold,
                                       opt.slope_t_min, opt.slope_lag))
    else:
        v.update(r12_ge25_x5=None, r12_ge100=None, r12_ge200=None, r12_slope=None)
    if rec.has(sig_key) and rec.columns[sig_key].ndim == 2 and rec.columns[sig_key].shape[1] >= 3:
        q = dg.sigma_ratio(rec.columns[sig_key][:, 2], rec.columns[sig_key][:, 0])   # sigma3/sigma1
        p = dg.precision(q, opt.late_lo, opt.late_hi, opt.precision_factor)
        v["q_late_eps"], v["precision_limited"] = p["q_late_eps"], p["precision_limited"]
    else:
        v["q_late_eps"] = v["precision_limited"] = None

    S = rec.columns.get(sig_key)
    first = ef.first_rows(
        rec.col("test_acc") if rec.has("test_acc") else None, rec.col("rho_tian") if rec.has("rho_tian") else None,
        rec.col(gap_key) if rec.has(gap_key) else None,
        det.sigma12_ratio(S[:, 0], S[:, 1]) if S is not None and S.ndim == 2 and S.shape[1] >= 2 else None,
        opt.slope_t_min, opt.slope_lag)
    v["from_start"] = ef.from_start(v, first)
    v["undefined"] = ef.undefined_leads(v["from_start"])
    v["grokked"] = bool(np.nanmax(rec.col("test_acc")) >= 0.5) \
        if rec.has("test_acc") and np.isfinite(rec.col("test_acc")).any() else None
    v["fire_without_grok"] = ef.fired_without_grok(v, v["grokked"])

    def diff(lead):                                  # None where an operand is missing or fired from the start
        a, b = ef.LEADS[lead]
        if v[a] is None or v[b] is None or lead in v["undefined"]:
            return None
        return float(det.paired_diff(v[a], v[b]))
    for lead in ef.LEADS:
        v[lead] = diff(lead)
    ev = clock_events.clock_events(rec.columns, opt.cls_eps, opt.rep_delta, opt.persist, opt.cls_eps_abs,
                                   loss=rec.config.get("loss"))
    ev.pop("t099")                                   # the same first crossing as v["t099"] above
    v.update(ev)
    L = np.asarray(rec.columns.get("train_loss", []), dtype=float)
    L = L[np.isfinite(L)]                            # the classifier clock's floor: where t_cls never comes,
    v["loss_final_ratio"] = float(L[-1] / L[0]) if L.size and L[0] > 0 else None   # this says how far it got
    return v


def late_range_used(last_epoch: int, opt: Options):
    """[late_lo, min(late_hi, last_epoch)]: the part of the late range a run ending at ``last_epoch``
    covers; None when it ends before late_lo."""
    if last_epoch < opt.late_lo:
        return None
    return [opt.late_lo, min(opt.late_hi, last_epoch)]


# --- the summary ------------------------------------------------------------------------------

def summarize(records: list[RunRecord], opt: Options = Options(), root=None) -> dict:
    """JSON-ready summary: options, and per condition its runs, statistics and control pairing.

    Each run is counted once (conditions.drop_duplicates; the copies left out are listed under
    "duplicates"); every per-run row names its "folder", relative to ``root`` (default: the folder
    that holds all the runs)."""
    if root is None and records:
        root = os.path.commonpath([os.path.abspath(r.path.parent) for r in records])
    sfx = GRAM_KEYS[opt.gram]
    has_gram = (lambda r: r.has("W_gap23" + gram_suffix(r, opt.gram))) if sfx else None
    records, dups = drop_duplicates(records, root, prefer=has_gram)     # a copy with the spectra asked for
    left_out = []
    if opt.complete_only:
        left_out = [{"folder": run_folder(r.path, root), **run_status(r)} for r in records
                    if not is_complete_record(r)]
        records = [r for r in records if is_complete_record(r)]
    if not records:
        named = "; ".join(f"{d['folder']}: {d['why']}" for d in left_out[:3]) + ("; ..." if len(left_out) > 3 else "")
        raise InputError("no runs to summarise" + (f" (none is complete: {named})" if opt.complete_only else ""))
    if sfx and not any(has_gram(r) for r in records):
        raise InputError(f"no run logged {opt.gram} Gram spectra (W_gap23{sfx}); "
                         f"train with --log-grams {opt.gram}")
    groups = group_conditions(records)
    configs = [g[0] for g in groups]
    labels = condition_labels(configs)
    conds = []
    for (cc, recs), label in zip(groups, labels):
        runs = [{**run_values(r, opt), "folder": run_folder(r.path, root)} for r in recs]
        stats = {}
        for k in PER_RUN_EVENTS + DIAGNOSTICS:
            vals = [math.nan if k in r["undefined"] else r[k] for r in runs
                    if r[k] is not None or k in r["undefined"]]     # an undefined lead: n, not n_fired
            stats[k] = det.across_runs(vals) if vals else None      # None: not logged at all
        flags = [r["precision_limited"] for r in runs if r["precision_limited"] is not None]
        stats["n_precision_limited"] = sum(flags) if flags else None
        for k in CLOCK_FLAGS:                                   # n_rep_censored, n_rep_tail_censored
            flags = [r[k] for r in runs if r[k] is not None]
            stats["n_" + k[2:]] = sum(flags) if flags else None
        for k in CLOCK_OUTCOMES:                                # clock_outcomes{,_tail}: counts
            stats[k.replace("outcome", "outcomes")] = {o: sum(r[k] == o for r in runs)
                                                       for o in clock_events.OUTCOMES}
        both = [r for r in runs if r["t05"] is not None and r["rho_fire"] is not None
                and "lead_rho" not in r["undefined"]]
        t05, rho = [r["t05"] for r in both], [r["rho_fire"] for r in both]
        stats["lead_rho_of_medians"] = det.median_diff(t05, rho) if t05 else None
        cond = {"runs": runs, "stats": stats}
        stats.update(ef.condition_flags(cond, asdict(opt)))  # fire_without_grok, n_from_start, n_undefined
        missing = [r["folder"] for r, rec in zip(runs, recs)
                   if sfx and not rec.has(window_key(rec, "W_gap23" + gram_suffix(rec, opt.gram), opt.window))]
        conds.append({"label": label, "config": cc, "n": len(runs),
                      "seeds": [r["seed"] for r in runs], "runs": runs, "stats": stats,
                      "control": None, "late_separation": None,
                      **({"gram_missing": missing} if missing else {})})   # the key only when runs lack them
    for i, c in enumerate(conds):
        j = find_control(c["config"], configs)
        if j is None or j == i:
            continue
        c["control"] = conds[j]["label"]
        lg = [r["late"] for r in c["runs"] if r["late"] is not None]
        lc = [r["late"] for r in conds[j]["runs"] if r["late"] is not None]
        if lg and lc:
            c["late_separation"] = det.late_separation(lg, lc)
    used = [r["late_range_used"] for c in conds for r in c["runs"] if r.get("late_range_used")]
    return {"options": asdict(opt), "n_runs": len(records), "conditions": conds,
            "late_range_used": [opt.late_lo, max(u[1] for u in used)] if used else None,
            "duplicates": dups, "left_out": left_out}
