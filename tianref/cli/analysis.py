"""``summarize`` and ``plot``: thin click commands over tianref.analysis.summarize and tianref.analysis.plots."""
from __future__ import annotations

import re
from pathlib import Path

import click

from tianref.analysis import clock_events, detectors as det
from tianref.cli.common import FIGURE_FORMATS, FiniteFloat, GivenPath, IntRange, reports_errors
from tianref.config import parse_int_list
from tianref.errors import InputError
from tianref.paths import check_distinct_outputs
from tianref.rundir import check_output_dir, check_output_file
from tianref.analysis.records import METRICS_FILE, list_run_dirs, read_run
from tianref.cli.progress import CountProgress


def read_tree(root, label: str) -> list:
    """Every run under ``root`` (records.read_tree), with a bar over the runs on a terminal."""
    dirs = list_run_dirs(root)
    if not dirs:
        raise InputError(f"{root}: no run directories (no {METRICS_FILE} found below it)")
    out = []
    with CountProgress(len(dirs) if len(dirs) > 1 else 0, label) as bar:
        for d in dirs:
            out.append(read_run(d))
            bar.update(1, d.name if hasattr(d, "name") else str(d))
    return out


def _window_list(text):
    if text is None:                          # every window the runs logged
        return None
    out = parse_int_list(text, "--windows")
    if not out or any(w < 1 for w in out):
        raise InputError(f"--windows {text!r}: expected positive integers")
    return out


@click.command("summarize", context_settings={"show_default": True})
@click.argument("run_dir", type=GivenPath(path_type=Path))
@click.option("--window", type=IntRange(min=1), default=None,
              help="Rolling-Gram window W whose keys to analyse (W_gap23_w<W>); "
                   "default: the first window each run logged (the unsuffixed keys).")
@click.option("--late-lo", type=IntRange(min=0), default=det.LATE_RANGE[0],
              help="First epoch of the late sigma2/sigma3 range (inclusive).")
@click.option("--late-hi", type=IntRange(min=0), default=det.LATE_RANGE[1],
              help="Last epoch of the late sigma2/sigma3 range (inclusive).")
@click.option("--slope-threshold", type=FiniteFloat(0, low_open=True), default=det.SLOPE_THRESHOLD,
              help="Lock-in fires when d ln(sigma2/sigma3)/dt exceeds this (per epoch; > 0: a rise).")
@click.option("--slope-t-min", type=IntRange(min=0), default=det.SLOPE_T_MIN,
              help="Earliest epoch at which the slope detectors may fire.")
@click.option("--slope-lag", type=IntRange(min=1), default=det.SLOPE_LAG,
              help="Backward-difference lag of the slope, in epochs.")
@click.option("--min-valid", type=IntRange(min=0), default=0,
              help="Require this many non-NaN sigma2/sigma3 rows for a fire "
                   "(30 reproduces the window-sweep script; 0 = off).")
@click.option("--rho-threshold", type=FiniteFloat(0, low_open=True, high=1.0), default=det.RHO_THRESHOLD,
              help="rho_tian fire level, in (0, 1] (rho_tian lies in [0, 1]; searched from epoch 0).")
@click.option("--crossing", type=click.Choice(["first", "halfmax"]), default="first",
              help="t(test>=0.5): first epoch at 0.5, or analysis.py's half-max level.")
@click.option("--gram", type=click.Choice(["main", "float32", "float32-seq"]), default="main",
              help="Which logged spectra: the run's own (main), or a Gram mode it also logged with "
                   "train --log-grams (float32: W_gap23_f32, W_sigma_f32; float32-seq: ..._f32seq; a run whose own "
                   "Gram is that mode, train --gram-dtype, from its main keys); a condition where only some runs "
                   "have it: one line on stderr, the others under its gram_missing).")
@click.option("--precision-factor", type=FiniteFloat(0, low_open=True), default=100.0,
              help="precision_limited: the late median of sigma3/sigma1 is below this many float32 "
                   "epsilons (2^-23), so a float32 Gram cannot resolve sigma3.")
@click.option("--cls-eps", type=FiniteFloat(0, low_open=True), default=clock_events.CLS_EPS,
              help="Classifier clock t_cls: first epoch from which the train loss stays <= this x the "
                   "row-0 loss for --persist rows.")
@click.option("--cls-eps-abs", type=FiniteFloat(0, low_open=True), default=clock_events.CLS_EPS_ABS,
              help="Cross-entropy runs: t_cls_abs, the same with an absolute level (nats; 0.01 = mean "
                   "probability of the right class >= 0.99).")
@click.option("--rep-delta", type=FiniteFloat(0), default=clock_events.REP_DELTA,
              help="Representation clock: t_rep = first epoch from which W_srank (W_tail) stays within "
                   "this (relative) of its final value; t_rep_settled = first epoch from which it moves "
                   "by at most this in every --persist-row window.")
@click.option("--persist", type=IntRange(min=1), default=clock_events.PERSIST,
              help="Persistence window (rows = epochs) of the sustained clocks: t_cls, t_cls_abs, "
                   "t_margin hold their level, t_rep_settled its band, for this many rows.")
@click.option("--complete-only", is_flag=True,
              help="Leave out runs that are not complete: fewer than epochs + 1 rows (still running, "
                   "stopped or crashed) or diverged (even at their last row); "
                   "by default they are included and listed under the tables.")
@click.option("--json", "json_out", type=GivenPath(dir_okay=False, path_type=Path),
              default=None, help="Also write the full summary as JSON here (atomic write; missing folders are created).")
@click.option("--md", "md_out", type=GivenPath(dir_okay=False, path_type=Path), default=None,
              help="Write the Markdown tables here instead of stdout (missing folders are created).")
@reports_errors
def summarize_cmd(run_dir, window, late_lo, late_hi, slope_threshold, slope_t_min, slope_lag,
                  min_valid, rho_threshold, crossing, gram, precision_factor, cls_eps, cls_eps_abs,
                  rep_delta, persist, complete_only, json_out, md_out):
    """Compute the paper's statistics over every run below RUN_DIR.

    Runs are grouped into conditions (config minus seed); each eta > 0 condition is paired
    with its eta = 0 control for the late sigma2/sigma3 separation.
    """
    from tianref.analysis.summarize import (Options, duplicates_line, gram_missing_lines, incomplete_line,
                                            late_range_note, summarize, to_json, to_markdown, write_atomic)
    for what, path in (("--json", json_out), ("--md", md_out)):     # before reading any run
        if path is not None:
            check_output_file(path, what)                # its missing folders are created when it is written
    check_distinct_outputs(("--json", json_out), ("--md", md_out))
    if not run_dir.exists():
        raise InputError(f"{run_dir}: no such directory")
    opt = Options(window=window, late_lo=late_lo, late_hi=late_hi,
                  slope_threshold=slope_threshold, slope_t_min=slope_t_min, slope_lag=slope_lag,
                  min_valid=min_valid, rho_threshold=rho_threshold, crossing=crossing,
                  complete_only=complete_only, gram=gram, precision_factor=precision_factor,
                  cls_eps=cls_eps, rep_delta=rep_delta, persist=persist, cls_eps_abs=cls_eps_abs)
    summary = summarize(read_tree(run_dir, "summarize: reading runs"), opt, root=run_dir)
    dup = duplicates_line(summary["duplicates"])
    if dup:
        click.echo(f"summarize: {dup}", err=True)
    for note in (incomplete_line(summary), late_range_note(summary), *gram_missing_lines(summary)):
        if note:
            click.echo(f"summarize: {note}", err=True)
    if json_out is not None:
        write_atomic(json_out, to_json(summary))
    md = to_markdown(summary)
    if md_out is not None:
        write_atomic(md_out, md)
    else:
        click.echo(md, nl=False)


@click.command("plot", context_settings={"show_default": True})
@click.argument("run_dir", type=GivenPath(path_type=Path))
@click.option("--out", "out_dir", type=GivenPath(file_okay=False, path_type=Path),
              default=Path("figures"), help="Directory for the figure files (created).")
@click.option("--figure", "which", type=click.Choice(["all", "headline", "top5", "activation"]),
              multiple=True, default=("all",), help="Which figure(s) to draw (repeatable).")
@click.option("--window", type=IntRange(min=1), default=None,
              help="Window W for the sigma2/sigma3 panels; default: the first logged window.")
@click.option("--windows", "windows_text", default=None, show_default="every window the runs logged",
              help="Windows for the top-5 eigenvalue panels (comma-separated), e.g. 5,20,30 for the "
                   "paper's figure (train --windows 5,20,30).")
@click.option("--act", type=click.Choice(["sqr", "relu", "silu", "relusqr", "gelu"]), default="sqr",
              help="Activation of the runs shown in the headline and top-5 figures (refused when no run has it).")
@click.option("--format", "fmt", type=click.Choice(FIGURE_FORMATS), default="png",
              help="File format.")
@click.option("--dpi", type=IntRange(min=30, max=600), default=120, help="Resolution.")
@reports_errors
def plot_cmd(run_dir, out_dir, which, window, windows_text, act, fmt, dpi):
    """Draw the paper's figures from the runs below RUN_DIR; prints the files written."""
    from tianref.analysis.plots import FIGURES, figures_from_runs, save
    check_output_dir(out_dir, "--out")                   # before reading any run
    if not run_dir.exists():
        raise InputError(f"{run_dir}: no such directory")
    names = FIGURES if "all" in which else tuple(dict.fromkeys(which))
    for name in names:                                   # each figure's file, too (a folder in its place)
        check_output_file(out_dir / f"{name}.{fmt}", "--out")
    _window_list(windows_text)                           # --windows, before the runs are read
    from tianref.analysis.conditions import drop_duplicates, duplicates_line
    records, dups = drop_duplicates(read_tree(run_dir, "plot: reading runs"), run_dir)
    if dups:
        click.echo(f"plot: {duplicates_line(dups)}", err=True)
    acts = sorted({str(r.config.get("act", "sqr")) for r in records})
    if records and act not in acts and any(n in ("headline", "top5") for n in names):
        raise InputError(f"--act {act}: no run below {run_dir} has that activation (found: {', '.join(acts)})")
    figs, notes = figures_from_runs(records, names, window, _window_list(windows_text), act)
    if not figs:                              # one line: why each was skipped, in the error itself
        raise InputError("no figure could be drawn from these runs" + (f" ({'; '.join(notes)})" if notes else ""))
    for name in figs:                         # top5_2, top5_3, ...: known only once the runs are read
        check_output_file(out_dir / f"{name}.{fmt}", "--out")
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if "top5" in figs:                        # pages of an earlier plot with more conditions stay: say so
        older = sorted((p for p in out_dir.glob(f"top5_*.{fmt}")
                        if re.fullmatch(r"top5_[0-9]+", p.stem) and p.stem not in figs),
                       key=lambda p: int(p.stem[5:])) if out_dir.is_dir() else []
        if older:
            click.echo(f"note: {', '.join(p.name for p in older)} in {out_dir} are from an earlier plot "
                       "(this one drew fewer top-5 figures); not rewritten", err=True)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out_dir}: cannot create it ({exc.strerror or exc})") from None
    written = [save(fig, out_dir / f"{name}.{fmt}", dpi) for name, fig in figs.items()]
    for path in written:                      # after every figure: a closed stdout loses none
        click.echo(str(path))
