"""The paper's statistics over a tree of run directories: per run, per condition, grok vs control.

References: ``docs/paper-protocol.md`` §1 (T2, T3, T3b, T4, T5), §2, §3 (the detectors,
"Late-stage separation", "Test crossings") and §5.5-5.6 (the late window and the lag caveats).
The detectors themselves are in :mod:`tianref.analysis.detectors`; this module only groups and tabulates.

Conditions: runs are grouped by their config minus the seed and the keys in
``NON_CONDITION_KEYS`` (where the output went, which backend ran it, how often it printed), so
the same protocol run on NumPy and on CuPy lands in one condition. A condition with eta > 0 is
paired with the eta = 0 condition that matches it in every other key (its control); the late
sigma2/sigma3 separation is median_seeds(late_grok) / median_seeds(late_ctrl).

Per run (NaN = the event never happened; ``None`` in JSON = NaN or not logged):
    t05, t099        first t with test_acc >= 0.5 / 0.99   ('halfmax': analysis.py's level for t05)
    fire             sigma2/sigma3 slope detector (window ``window``)
    late             nanmedian of sigma2/sigma3 over [late_lo, late_hi]
    rho_fire         first t with rho_tian >= rho_threshold
    r12_*            the four sigma1/sigma2 detectors of the notes (T3b)
    lag_fire_t099    fire - t099 (the paper's "+35"), lag_fire_t05 = fire - t05 (~ +72)
    lead_rho         t05 - rho_fire, per run (plot_two_stage); the difference of medians
                     (analyze_eta_sweep) is reported per condition as lead_rho_of_medians.
    slope_peak, slope_peak_epoch, fire_0.035, fire_0.04, fire_0.045, collapse_epoch,
    late_precollapse, q_late_eps, precision_limited
                     the diagnostics of :mod:`tianref.analysis.diagnostics` (q = sigma3/sigma1)

``Options.gram = 'float32'`` (or 'float32-seq') reads the spectra a run also logged with
``train --log-grams`` (W_gap23_f32, W_sigma_f32; ..._f32seq) instead of its own.
    t_cls, t_rep     the classifier and representation clocks, clock_ratio = t_rep / t_cls
                     (tianref.analysis.clock_events; eps = cls_eps, delta = rep_delta)
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tianref.analysis import clock_events, detectors as det
from tianref.analysis import diagnostics as dg
from tianref.errors import InputError
from tianref.analysis.records import RunRecord, window_key

# Config keys that say where or how a run was executed, not what was computed.
NON_CONDITION_KEYS = frozenset({
    "seed", "out", "out_dir", "outdir", "run_dir", "dir", "tag", "name", "resume", "xp",
    "backend", "device", "print_every", "eval_every", "progress", "checkpoint_every",
    "checkpoints", "checkpoint_epochs", "quiet", "verbose", "log_grams",
})

PER_RUN_EVENTS = ("t05", "t099", "fire", "late", "rho_fire", "r12_ge25_x5", "r12_ge100",
                  "r12_ge200", "r12_slope", "lag_fire_t099", "lag_fire_t05", "lead_rho",
                  "lag_r12_ge100_t05", "lag_r12_slope_t05", "t_cls", "t_rep", "clock_ratio")
# per-run diagnostics (tianref.analysis.diagnostics), summarised across runs like the events
DIAGNOSTICS = ("slope_peak", "slope_peak_epoch", *(dg.fire_key(c) for c in dg.FIRE_THRESHOLDS),
               "collapse_epoch", "late_precollapse", "q_late_eps")
# which logged spectra: the run's own ('main'), or a Gram mode it also logged with train --log-grams
GRAM_KEYS = {"main": "", "float32": "_f32", "float32-seq": "_f32seq"}


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
    complete_only: bool = False          # drop runs with fewer than epochs + 1 rows
    gram: str = "main"                   # or a mode logged with train --log-grams (GRAM_KEYS)
    precision_factor: float = dg.PRECISION_FACTOR   # precision_limited: sigma3/sigma1 < factor 2^-23
    cls_eps: float = clock_events.CLS_EPS     # t_cls: train loss <= cls_eps * row-0 loss
    rep_delta: float = clock_events.REP_DELTA  # t_rep: W_srank within rep_delta of its final value

    def __post_init__(self):
        if self.late_lo < 0 or self.late_hi < self.late_lo:
            raise InputError(f"late range [{self.late_lo}, {self.late_hi}] is empty")
        if self.slope_lag < 1:
            raise InputError("slope lag must be >= 1")
        if self.gram not in GRAM_KEYS:
            raise InputError(f"unknown Gram {self.gram!r}; choose one of {', '.join(GRAM_KEYS)}")
        if not self.precision_factor > 0:
            raise InputError(f"precision factor must be > 0 (got {self.precision_factor})")
        if self.crossing not in ("first", "halfmax"):
            raise InputError(f"unknown crossing {self.crossing!r}; choose first or halfmax")


# --- per run ----------------------------------------------------------------------------------

def is_complete_record(rec: RunRecord) -> bool:
    """True when the run logged rows 0..epochs."""
    E = rec.config.get("epochs")
    return E is not None and rec.n_rows >= int(E) + 1


def run_values(rec: RunRecord, opt: Options) -> dict:
    """The per-run events of one run; None where the needed column was never logged."""
    v: dict = {"path": str(rec.path), "seed": rec.config.get("seed"), "n_rows": rec.n_rows,
               "partial": rec.partial}
    v["complete"] = is_complete_record(rec)
    if rec.has("test_acc"):
        v["t05"], v["t099"] = det.test_crossings(rec.col("test_acc"), opt.crossing)
    else:
        v["t05"] = v["t099"] = None
    sfx = GRAM_KEYS[opt.gram]
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

    def diff(a, b):
        return None if v[a] is None or v[b] is None else float(det.paired_diff(v[a], v[b]))
    v["lag_fire_t099"] = diff("fire", "t099")
    v["lag_fire_t05"] = diff("fire", "t05")
    v["lead_rho"] = diff("t05", "rho_fire")
    v["lag_r12_ge100_t05"] = diff("r12_ge100", "t05")
    v["lag_r12_slope_t05"] = diff("r12_slope", "t05")
    v.update(clock_events.clock_events(rec.columns, opt.cls_eps, opt.rep_delta))
    return v


def late_range_used(last_epoch: int, opt: Options):
    """[late_lo, min(late_hi, last_epoch)]: the part of the late range a run ending at ``last_epoch``
    covers; None when it ends before late_lo."""
    if last_epoch < opt.late_lo:
        return None
    return [opt.late_lo, min(opt.late_hi, last_epoch)]


def late_range_note(summary: dict) -> str | None:
    """One line saying which runs end before the late range does (None when every run covers it)."""
    o = summary["options"]
    short = [r for c in summary["conditions"] for r in c["runs"]
             if r.get("late_range_used", [o["late_lo"], o["late_hi"]]) != [o["late_lo"], o["late_hi"]]]
    if not short:
        return None
    used = summary.get("late_range_used")
    where = "no late range at all" if used is None else f"late sigma2/sigma3 over ep {used[0]}-{used[1]}"
    ends = sorted({r["n_rows"] - 1 for r in short})
    ends = str(ends[0]) if len(ends) == 1 else f"{ends[0]}-{ends[-1]}"
    return (f"{len(short)} of {summary['n_runs']} run(s) end before the late range "
            f"{o['late_lo']}-{o['late_hi']} does (last epoch {ends}): {where}")


# --- grouping ---------------------------------------------------------------------------------

def condition_config(config: dict) -> dict:
    return {k: config[k] for k in sorted(config) if k not in NON_CONDITION_KEYS}


def _key(d: dict) -> str:
    return json.dumps(d, sort_keys=True, default=str)


def group_conditions(records: list[RunRecord]) -> list[tuple[dict, list[RunRecord]]]:
    """[(condition config, runs sorted by seed)], in a stable order (eta descending, then key)."""
    groups: dict[str, tuple[dict, list]] = {}
    for r in records:
        cc = condition_config(r.config)
        groups.setdefault(_key(cc), (cc, []))[1].append(r)
    out = [(cc, sorted(rs, key=lambda r: (_seed_sort(r.config.get("seed")), str(r.path))))
           for cc, rs in groups.values()]
    out.sort(key=lambda g: (_key({k: v for k, v in g[0].items() if k != "eta"}),
                            -float(g[0].get("eta", 0) or 0)))
    return out


def _seed_sort(s):
    return (0, s) if isinstance(s, (int, float)) else (1, str(s))


def condition_labels(configs: list[dict]) -> list[str]:
    """Short labels from the keys that differ between conditions (eta alone if none differ)."""
    keys = sorted({k for c in configs for k in c})
    varying = [k for k in keys if len({_key({"v": c.get(k)}) for c in configs}) > 1]
    if "eta" in varying:
        varying.remove("eta")
    varying = ["eta"] + varying
    return [" ".join(f"{k}={_short(c.get(k))}" for k in varying) for c in configs]


def _short(v) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(_short(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def find_control(cc: dict, all_cc: list[dict]) -> int | None:
    """Index of the eta = 0 condition equal to ``cc`` in every other key, or None."""
    if not _positive(cc.get("eta")):
        return None
    rest = _key({k: v for k, v in cc.items() if k != "eta"})
    for i, other in enumerate(all_cc):
        eta = other.get("eta")
        if eta is not None and float(eta) == 0.0 and \
                _key({k: v for k, v in other.items() if k != "eta"}) == rest:
            return i
    return None


def _positive(x) -> bool:
    try:
        return float(x) > 0
    except (TypeError, ValueError):
        return False


# --- the summary ------------------------------------------------------------------------------

def summarize(records: list[RunRecord], opt: Options = Options()) -> dict:
    """JSON-ready summary: options, and per condition its runs, statistics and control pairing."""
    if opt.complete_only:
        records = [r for r in records if is_complete_record(r)]
    if not records:
        raise InputError("no runs to summarise" + (" (none is complete)" if opt.complete_only else ""))
    sfx = GRAM_KEYS[opt.gram]
    if sfx and not any(r.has("W_gap23" + sfx) for r in records):
        raise InputError(f"no run logged {opt.gram} Gram spectra (W_gap23{sfx}); "
                         f"train with --log-grams {opt.gram}")
    groups = group_conditions(records)
    configs = [g[0] for g in groups]
    labels = condition_labels(configs)
    conds = []
    for (cc, recs), label in zip(groups, labels):
        runs = [run_values(r, opt) for r in recs]
        stats = {}
        for k in PER_RUN_EVENTS + DIAGNOSTICS:
            vals = [r[k] for r in runs if r[k] is not None]
            stats[k] = det.across_runs(vals) if vals else None      # None: not logged at all
        flags = [r["precision_limited"] for r in runs if r["precision_limited"] is not None]
        stats["n_precision_limited"] = sum(flags) if flags else None
        t05 = [r["t05"] for r in runs if r["t05"] is not None and r["rho_fire"] is not None]
        rho = [r["rho_fire"] for r in runs if r["t05"] is not None and r["rho_fire"] is not None]
        stats["lead_rho_of_medians"] = det.median_diff(t05, rho) if t05 else None
        conds.append({"label": label, "config": cc, "n": len(runs),
                      "seeds": [r["seed"] for r in runs], "runs": runs, "stats": stats,
                      "control": None, "late_separation": None})
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
            "late_range_used": [opt.late_lo, max(u[1] for u in used)] if used else None}


# --- output -----------------------------------------------------------------------------------

def _json_safe(x):
    """NaN/inf -> None (strict JSON); numpy scalars -> Python."""
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, Path):
        return str(x)
    return x


def write_atomic(path, text: str) -> None:
    """Write text to ``path`` via a temporary file in the same directory and os.replace."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{path}: directory {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def to_json(summary: dict) -> str:
    return json.dumps(_json_safe(summary), indent=2, allow_nan=False) + "\n"


def fmt(x) -> str:
    """A number for the tables: '—' for NaN/None, integers plainly, else 4 significant digits
    (so half-epoch medians and percentiles such as 173.5 survive)."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    x = float(x)
    if x.is_integer() and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.4g}" if abs(x) < 1000 else f"{x:.0f}"


def _event_cell(s: dict | None, signed: bool = False) -> str:
    """'174 [173, 174] 15/15' (median [IQR] fired/n); 'n/a' when never logged.

    signed=True marks a difference of two events (a lag or lead): '+35 [34, 36] 15/15', and
    '—' when no run has both events.
    """
    if s is None:
        return "n/a"
    if s["n_fired"] == 0:
        return "—" if signed else f"never 0/{s['n']}"
    m = fmt(s["median"])
    if signed and s["median"] > 0:
        m = "+" + m
    return f"{m} [{fmt(s['q25'])}, {fmt(s['q75'])}] {s['n_fired']}/{s['n']}"


def _dagger(stats: dict) -> str:
    k = stats.get("n_precision_limited")
    return f" †{k}/{stats['late']['n']}" if k and stats.get("late") else ""


def _diagnostics_markdown(summary: dict) -> list:
    """The per-run diagnostics table; † marks runs whose sigma3 a float32 Gram cannot resolve."""
    o = summary["options"]
    runs = [r for c in summary["conditions"] for r in c["runs"]]
    if runs and not any("slope_peak" in r for r in runs):    # a stored summary older than these keys
        return ["", "Per-run diagnostics (slope peak, fires at three thresholds, collapse, σ3/σ1 in float32 "
                "epsilons): not in this stored summary, which predates them; rerun the section to fill them."]
    factor = o.get("precision_factor", dg.PRECISION_FACTOR)
    thr = " / ".join(fmt(c) for c in dg.FIRE_THRESHOLDS)
    lines = ["", f"Per-run diagnostics: slope peak = max s(t) at t >= {o['slope_t_min']} (epoch); fire at "
             f"{thr}; collapse = first epoch after the fire with s2/s3 < 1/10 of its maximum since the "
             f"fire; late s2/s3 over [{o['late_lo']}, collapse); s3/s1 = late median of s3/s1 in float32 "
             f"epsilons (2^-23), † = below {fmt(factor)}: a float32 Gram cannot resolve s3 "
             "(docs/math.md §8).", "",
             f"| condition | seed | slope peak (epoch) | fire at {thr} | collapse | late s2/s3 "
             f"[{o['late_lo']}, collapse) | late s2/s3 | s3/s1 (f32 eps) |",
             "|---|---|---|---|---|---|---|---|"]
    for c in summary["conditions"]:
        for r in c["runs"]:
            dag = " †" if r.get("precision_limited") else ""
            peak = _num(r.get("slope_peak"), ".4f")
            if peak != "—":
                peak += f" ({fmt(r['slope_peak_epoch'])})"
            fires = " / ".join(fmt(r.get(dg.fire_key(c_))) for c_ in dg.FIRE_THRESHOLDS)
            lines.append(f"| {c['label']} | {r['seed']} | {peak} | {fires} | {fmt(r.get('collapse_epoch'))} "
                         f"| {fmt(r.get('late_precollapse'))}{dag} | {fmt(r.get('late'))}{dag} "
                         f"| {_num(r.get('q_late_eps'), '.3g')}{dag} |")
    return lines


def _num(x, spec) -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def _level_cell(s: dict | None) -> str:
    """Late sigma2/sigma3: 'median [IQR]' (and the n with a finite value when short)."""
    if s is None:
        return "n/a"
    if s["n_fired"] == 0:
        return "—"
    cell = f"{fmt(s['median'])} [{fmt(s['q25'])}, {fmt(s['q75'])}]"
    return cell if s["n_fired"] == s["n"] else f"{cell} ({s['n_fired']}/{s['n']})"


def to_markdown(summary: dict) -> str:
    o = summary["options"]
    win = "first logged" if o["window"] is None else str(o["window"])
    asked = [o["late_lo"], o["late_hi"]]
    used = summary.get("late_range_used", asked)
    late = short_late = f"{asked[0]}-{asked[1]}"
    if used is None:
        late = f"{late} (not reached: every run ends before epoch {asked[0]})"
        short_late = "not reached"
    elif used != asked:
        short_late = f"{used[0]}-{used[1]}"
        late = f"{short_late} (shortened from {asked[0]}-{asked[1]}: the runs end at epoch {used[1]})"
    lines = [
        f"# Summary of {summary['n_runs']} runs"
        + ("" if used == asked else f"; late range {late}"),
        "",
        f"Window W = {win}; slope detector s > {fmt(o['slope_threshold'])} at t >= "
        f"{o['slope_t_min']} (lag {o['slope_lag']}); late sigma2/sigma3 over ep "
        f"{late}; rho_tian >= {fmt(o['rho_threshold'])}; "
        f"t0.5 by '{o['crossing']}'. Cells: median [25th, 75th percentile] fired/n.",
        "",
        "| condition | n | t(test>=0.5) | t(test>=0.99) | s2/s3 slope fire | fire - t0.99 "
        f"| late s2/s3 ({short_late}) | grok/ctrl | rho fire | lead t0.5 - t_rho |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in summary["conditions"]:
        s = c["stats"]
        sep = c["late_separation"]
        ratio = "—" if sep is None or sep["ratio"] is None or not math.isfinite(sep["ratio"]) \
            else f"{fmt(sep['ratio'])}x"
        lines.append(" | ".join([
            f"| {c['label']}", str(c["n"]), _event_cell(s["t05"]), _event_cell(s["t099"]),
            _event_cell(s["fire"]), _event_cell(s["lag_fire_t099"], signed=True),
            _level_cell(s["late"]) + _dagger(s), ratio, _event_cell(s["rho_fire"]),
            _event_cell(s["lead_rho"], signed=True)]) + " |")
    lines += [
        "",
        "sigma1/sigma2 of the rolling Delta-W Gram (findings T3b):",
        "",
        "| condition | >=25 for 5 ep | >=100 | >=200 | log-slope >= "
        f"{fmt(o['slope_threshold'])} at t >= {o['slope_t_min']} | >=100 - t0.5 |",
        "|---|---|---|---|---|---|",
    ]
    for c in summary["conditions"]:
        s = c["stats"]
        lines.append(" | ".join([
            f"| {c['label']}", _event_cell(s["r12_ge25_x5"]), _event_cell(s["r12_ge100"]),
            _event_cell(s["r12_ge200"]), _event_cell(s["r12_slope"]),
            _event_cell(s["lag_r12_ge100_t05"], signed=True)]) + " |")
    if any(c["stats"].get("t_rep") is not None for c in summary["conditions"]):
        lines += [
            "",
            f"The two clocks: t_cls = first train loss <= {fmt(o.get('cls_eps'))} x row 0; t_rep = first "
            f"epoch from which W_srank stays within {fmt(o.get('rep_delta'))} (relative) of its final value:",
            "",
            "| condition | t_cls | t_rep | t_rep / t_cls | t(test>=0.5) | t(test>=0.99) |",
            "|---|---|---|---|---|---|",
        ]
        for c in summary["conditions"]:
            s = c["stats"]
            lines.append(" | ".join([
                f"| {c['label']}", _event_cell(s.get("t_cls")), _event_cell(s.get("t_rep")),
                _event_cell(s.get("clock_ratio")), _event_cell(s["t05"]), _event_cell(s["t099"])]) + " |")
    lines += _diagnostics_markdown(summary)
    notes = []
    for c in summary["conditions"]:
        short = [r for r in c["runs"] if not r["complete"]]
        if short:
            notes.append(f"- {c['label']}: {len(short)} run(s) incomplete "
                         f"({', '.join(Path(r['path']).name for r in short[:5])}"
                         f"{', ...' if len(short) > 5 else ''})")
    if notes:
        lines += ["", "Incomplete runs (fewer than epochs + 1 rows):", *notes]
    return "\n".join(lines) + "\n"
