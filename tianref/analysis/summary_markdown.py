"""The summary's Markdown: the per-condition tables of ``summarize`` and their notes.

Reference: ``docs/paper-protocol.md`` §3 (the detectors' tables), docs/edge-and-clocks.md §5 (the two
clocks). Reads only the JSON-ready dict of :func:`tianref.analysis.summarize.summarize` (or a stored
summary.json), so a stored summary renders without its runs. Cells: median [25th, 75th percentile]
fired/n; '—' = never fired or not a number; 'n/a' = not logged.
"""
from __future__ import annotations

import math

from tianref.analysis import diagnostics as dg
from tianref.analysis import event_flags as ef
from tianref.analysis.clock_events import OUTCOMES


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


def _with_why(name: str, why) -> str:
    """'odd/run: diverged at epoch 2 (non-finite loss)' (the name alone for a summary stored without it)."""
    return f"{name}: {why}" if why else name


def incomplete_line(summary: dict) -> str | None:
    """One line naming the incomplete runs, counted (by default) or left out (--complete-only), and why."""
    left = summary.get("left_out") or []
    if left:
        return (f"left out {len(left)} incomplete run(s) (--complete-only): "
                + "; ".join(_with_why(d["folder"], d.get("why")) for d in left))
    short = [r for c in summary["conditions"] for r in c["runs"] if not r["complete"]]
    if not short:
        return None
    return (f"warning: {len(short)} incomplete run(s) counted as they are (--complete-only leaves them out): "
            + "; ".join(_with_why(run_name(r), r.get("status_why")) for r in short))


def gram_missing_lines(summary: dict) -> list[str]:
    """One warning per condition with runs that did not log the --gram spectra summarised (their events
    from them are None, so its statistics cover the other runs only): how many of how many, and which."""
    gram = (summary.get("options") or {}).get("gram", "main")
    out = []
    for c in summary["conditions"]:
        missing = c.get("gram_missing") or []
        if missing:
            out.append(f"warning: {c['label']}: {len(missing)} of {c['n']} run(s) did not log the {gram} Gram "
                       f"spectra (train --log-grams {gram}); its {gram} statistics cover the other runs only: "
                       + ", ".join(missing))
    return out


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


def _ratio_cell(s: dict | None) -> str:
    """A ratio of two events (t_rep / t_cls): as an event cell, but '—' when no run has both events: the
    ratio is then not a number, not an event that never happened."""
    if s is not None and s["n_fired"] == 0:
        return "—"
    return _event_cell(s)


def _mark(flags: dict, event: str) -> str:
    """' ‡' when some run's event fired at the first row its detector can fire (event_flags)."""
    return " ‡" if flags["n_from_start"].get(event) else ""


def _lead_cell(c: dict, key: str, o: dict, flags: dict) -> str:
    """A lead or lag over the runs where it is defined; '— ‡' when it is undefined in every run that has
    it (an operand fired from the start), never a number taken from such an event."""
    cell = _event_cell(ef.lead_stats(c, key, o), signed=True)
    return cell + (" ‡" if flags["n_undefined"].get(key) else "")


def _without_grok_cell(c: dict, flags: dict, detectors) -> str:
    """'0 / 2': per detector, the runs in which it fired though test accuracy never reached 0.5."""
    if c["stats"].get("t05") is None:
        return "n/a"
    return " / ".join("n/a" if c["stats"].get(d) is None else str(flags["fire_without_grok"][d])
                      for d in detectors)


def _flags_note(summary: dict, flags: dict) -> list:
    """The footnote of ‡ (events from the start, undefined leads) and the 'fired, never t0.5' columns."""
    lines = ["", "fired, never t0.5: runs in which the detector fired though test accuracy never reached 0.5."]
    marked = []
    for c in summary["conditions"]:
        f = flags[id(c)]
        ev = [f"{NAMES[e]} {k}/{c['n']} ({ef.WHY[e]})" for e, k in f["n_from_start"].items() if k]
        if ev:
            marked.append(f"- {c['label']}: " + "; ".join(ev))
    if marked:
        lines += ["", "‡ fired at the first row its detector can fire: the series was beyond the threshold "
                  "from the start, so the epoch dates no onset, and every lead or lag taken from it is "
                  "undefined ('—'; cells count only the runs where it is defined):", *marked]
    return lines


NAMES = {"t05": "t(test>=0.5)", "t099": "t(test>=0.99)", "fire": "s2/s3 slope fire", "rho_fire": "rho fire",
         "r12_ge25_x5": "s1/s2 >=25 for 5 ep", "r12_ge100": "s1/s2 >=100", "r12_ge200": "s1/s2 >=200",
         "r12_slope": "s1/s2 log-slope"}


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
             f"| condition | seed | run | slope peak (epoch) | fire at {thr} | collapse | late s2/s3 "
             f"[{o['late_lo']}, collapse) | late s2/s3 | s3/s1 (f32 eps) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in summary["conditions"]:
        for r in c["runs"]:
            dag = " †" if r.get("precision_limited") else ""
            peak = _num(r.get("slope_peak"), ".4f")
            if peak != "—":
                peak += f" ({fmt(r['slope_peak_epoch'])})"
            fires = " / ".join(fmt(r.get(dg.fire_key(c_))) for c_ in dg.FIRE_THRESHOLDS)
            lines.append(f"| {c['label']} | {r['seed']} | {run_name(r)} | {peak} | {fires} "
                         f"| {fmt(r.get('collapse_epoch'))} "
                         f"| {fmt(r.get('late_precollapse'))}{dag} | {fmt(r.get('late'))}{dag} "
                         f"| {_num(r.get('q_late_eps'), '.3g')}{dag} |")
    return lines


def run_name(r: dict) -> str:
    """A per-run row's folder (relative to the summarised tree); a summary stored before "folder"
    existed names its stored path."""
    return str(r.get("folder") or r["path"])


def duplicates_note(summary: dict) -> list:
    """Lines saying which run folders were the same run and counted once (none when there is none)."""
    dups = summary.get("duplicates") or []
    if not dups:
        return []
    return ["", "Duplicate runs (same condition, seed and init source; runs from one --init-from file "
                "whatever their seed), each counted once:", *[
        f"- {d['kept']} counted; left out: {', '.join(d['dropped'])} (same {d['match']})" for d in dups]]


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


OUTCOME_SHORT = {"two-clocks": "two clocks", "test-before-structure": "test first",
                 "structure-without-test": "structure only", "undetermined": "undetermined"}


def _outcome_cell(counts: dict | None) -> str:
    """'test first 4, undetermined 1' (the non-zero outcome counts); 'n/a' when not summarised."""
    if not counts:
        return "n/a"
    return ", ".join(f"{OUTCOME_SHORT[o]} {counts[o]}" for o in OUTCOMES if counts.get(o))


def _clocks_markdown(summary: dict) -> list:
    """The two clocks (F.4): classifier-side events, then one table per structural statistic."""
    conds = summary["conditions"]
    if not any(c["stats"].get("t_rep") is not None for c in conds):
        return []
    o = summary["options"]
    persist = o.get("persist")
    if persist is None:                      # a stored summary older than the sustained clocks
        return ["", f"The two clocks: t_cls = first train loss <= {fmt(o.get('cls_eps'))} x row 0; t_rep = "
                f"first epoch from which W_srank stays within {fmt(o.get('rep_delta'))} (relative) of its "
                "final value:", "", "| condition | t_cls | t_rep | t_rep / t_cls | t(test>=0.5) | t(test>=0.99) |",
                "|---|---|---|---|---|---|"] + [" | ".join([
                    f"| {c['label']}", _event_cell(c["stats"].get("t_cls")), _event_cell(c["stats"].get("t_rep")),
                    _ratio_cell(c["stats"].get("clock_ratio")), _event_cell(c["stats"]["t05"]),
                    _event_cell(c["stats"]["t099"])]) + " |" for c in conds]
    ce = any(c["stats"].get("t_cls_abs") is not None for c in conds)
    lines = ["", f"The two clocks (sustained for {persist} rows): t_cls = train loss <= {fmt(o['cls_eps'])} x "
             "row 0" + (f" (t_cls_abs: <= {fmt(o.get('cls_eps_abs'))} nats, cross-entropy runs)" if ce else "")
             + "; t_margin = every training sample classified with a positive logit gap; "
             f"t_rep = first epoch from which the statistic stays within {fmt(o['rep_delta'])} (relative) of "
             f"its final value; settled = first epoch from which it moves by at most {fmt(o['rep_delta'])} "
             f"(relative) in every {persist}-row window; censored = t_rep or a move > {fmt(o['rep_delta'])} "
             "in the last 10 % of the rows. Outcome (F.4; docs/edge-and-clocks.md §5): two clocks = the "
             "statistic settles with t0.99 after t_cls; test first = t0.99 before it settles; structure "
             "only = it settles, test never reaches 0.99; undetermined = none of these (no classifier "
             "clock, the classifier clock last, the statistic settled long before the test curve, nothing "
             "moving, or a column not logged).", "",
             "| condition | t_cls |" + (" t_cls_abs |" if ce else "") + " t_margin | t(test>=0.5) | t(test>=0.99) |",
             "|---|---|---|---|---|" + ("---|" if ce else "")]
    for c in conds:
        s = c["stats"]
        lines.append(" | ".join([f"| {c['label']}", _event_cell(s.get("t_cls")) + _floor_text(c, o)]
                                + ([_event_cell(s.get("t_cls_abs"))] if ce else [])
                                + [_event_cell(s.get("t_margin")), _event_cell(s["t05"]),
                                   _event_cell(s["t099"])]) + " |")
    for sfx, name in (("", "W_srank (stable rank of W)"),
                      ("_tail", "W_tail (fraction of ||W||_F^2 outside W's top tail_rank singular directions)")):
        if not any(c["stats"].get(f"t_rep{sfx}") is not None for c in conds):
            continue
        lines += ["", f"Structural clock {name}:", "",
                  "| condition | t_rep | settled | censored | t_rep / t_cls | outcome |",
                  "|---|---|---|---|---|---|"]
        for c in conds:
            s = c["stats"]
            k = s.get(f"n_rep{sfx}_censored")
            still = sum(r.get(f"t_rep{sfx}") == 0 for r in c.get("runs", []))
            lines.append(" | ".join([
                f"| {c['label']}", _event_cell(s.get(f"t_rep{sfx}")) + (f" §{still}/{c['n']}" if still else ""),
                _event_cell(s.get(f"t_rep{sfx}_settled")),
                "n/a" if k is None else f"{k}/{c['n']}", _ratio_cell(s.get(f"clock_ratio{sfx}")),
                _outcome_cell(s.get(f"clock_outcomes{sfx}"))]) + " |")
        if any(r.get(f"t_rep{sfx}") == 0 for c in conds for r in c.get("runs", [])):
            lines += ["", f"§ k/n: runs whose t_rep is row 0: the statistic stayed within {fmt(o['rep_delta'])} "
                      "(relative) of its final value over the whole run, so it did not move: nothing to time."]
    return lines


def _floor_text(c: dict, o: dict) -> str:
    """Beside a t_cls that some runs never reach: the median final train loss over row 0's (weight decay
    holds the loss above a floor; a --cls-eps below it never fires)."""
    s = c["stats"].get("t_cls")
    r = sorted(x["loss_final_ratio"] for x in c.get("runs", [])
               if _never(x.get("t_cls")) and x.get("loss_final_ratio") is not None)
    if not s or s["n_fired"] == s["n"] or not r:
        return ""
    med = (r[(len(r) - 1) // 2] + r[len(r) // 2]) / 2
    return f"; final loss {fmt(med)} x row 0 (eps {fmt(o['cls_eps'])})"


def _never(t) -> bool:
    return t is None or (isinstance(t, float) and math.isnan(t))


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
        f"# Summary of {summary['n_runs']} run{'' if summary['n_runs'] == 1 else 's'}"
        + ("" if used == asked else f"; late range {late}"),
        "",
        f"Window W = {win}; slope detector s > {fmt(o['slope_threshold'])} at t >= "
        f"{o['slope_t_min']} (lag {o['slope_lag']}); late sigma2/sigma3 over ep "
        f"{late}; rho_tian >= {fmt(o['rho_threshold'])}; "
        f"t0.5 by '{o['crossing']}'. Cells: median [25th, 75th percentile] fired/n.",
        "",
        "| condition | n | t(test>=0.5) | t(test>=0.99) | s2/s3 slope fire | fire - t0.99 "
        f"| late s2/s3 ({short_late}) | grok/ctrl | rho fire | lead t0.5 - t_rho "
        "| fired, never t0.5 (s2/s3 / rho) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    flags = {id(c): ef.condition_flags(c, o) for c in summary["conditions"]}
    for c in summary["conditions"]:
        s, f = c["stats"], flags[id(c)]
        ev, lead = (lambda k: _event_cell(s[k]) + _mark(f, k)), (lambda k: _lead_cell(c, k, o, f))
        sep = c["late_separation"]
        ratio = "—" if sep is None or sep["ratio"] is None or not math.isfinite(sep["ratio"]) \
            else f"{fmt(sep['ratio'])}x"
        lines.append(" | ".join([
            f"| {c['label']}", str(c["n"]), ev("t05"), ev("t099"), ev("fire"), lead("lag_fire_t099"),
            _level_cell(s["late"]) + _dagger(s), ratio, ev("rho_fire"), lead("lead_rho"),
            _without_grok_cell(c, f, ("fire", "rho_fire"))]) + " |")
    daggered = [c for c in summary["conditions"] if _dagger(c["stats"])]
    if daggered:
        shown = summary["options"].get("gram", "main")    # whose spectra the table shows (summarize --gram)
        f32 = {c["label"] for c in daggered                 # a float32 Gram, its own or the one asked for
               if shown != "main" or c.get("config", {}).get("gram_dtype", "float64") != "float64"}
        lines += ["", "† k/n: runs whose late sigma3 a float32 Gram (the paper's code) cannot resolve (sigma3/sigma1 "
                  f"below {fmt(summary['options'].get('precision_factor', dg.PRECISION_FACTOR))} float32 epsilons; "
                  "the per-run diagnostics below name them): "
                  + ("with this float64 Gram their late s2/s3 is resolved, where the paper's float32 one would be "
                     "set by rounding." if not f32 else
                     f"in {', '.join(sorted(f32))} (a float32 Gram: --gram-dtype, or summarize --gram) it is set by "
                     "float32 rounding"
                     + ("; the others' float64 Gram resolves it." if len(f32) < len(daggered) else "."))]
    lines += [
        "",
        "sigma1/sigma2 of the rolling Delta-W Gram (findings T3b):",
        "",
        "| condition | >=25 for 5 ep | >=100 | >=200 | log-slope >= "
        f"{fmt(o['slope_threshold'])} at t >= {o['slope_t_min']} | >=100 - t0.5 "
        "| fired, never t0.5 (>=25 / >=100 / >=200 / slope) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in summary["conditions"]:
        s, f = c["stats"], flags[id(c)]
        ev = (lambda k: _event_cell(s[k]) + _mark(f, k))
        lines.append(" | ".join([
            f"| {c['label']}", ev("r12_ge25_x5"), ev("r12_ge100"), ev("r12_ge200"), ev("r12_slope"),
            _lead_cell(c, "lag_r12_ge100_t05", o, f),
            _without_grok_cell(c, f, ("r12_ge25_x5", "r12_ge100", "r12_ge200", "r12_slope"))]) + " |")
    lines += _flags_note(summary, flags)
    lines += _clocks_markdown(summary)
    lines += _diagnostics_markdown(summary)
    notes = []
    for c in summary["conditions"]:
        short = [r for r in c["runs"] if not r["complete"]]
        if short:
            notes.append(f"- {c['label']}: {len(short)} run(s) incomplete "
                         f"({', '.join(_with_why(run_name(r), r.get('status_why')) for r in short[:5])}"
                         f"{', ...' if len(short) > 5 else ''})")
    if notes:
        lines += ["", "Incomplete runs (fewer than epochs + 1 rows, or diverged), counted as they are "
                  "(--complete-only leaves them out):", *notes]
    left = summary.get("left_out") or []
    if left:
        lines += ["", f"Left out by --complete-only ({len(left)} incomplete run(s)):",
                  *[f"- {_with_why(d['folder'], d.get('why'))}" for d in left]]
    lines += duplicates_note(summary)
    return "\n".join(lines) + "\n"
