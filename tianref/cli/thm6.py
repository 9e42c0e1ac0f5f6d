"""``python cli.py thm6``: Theorem 6 exactly, for checkpoints of a run (the math is in tianref/thm6/theorem.py).

This layer only finds the weights (checkpoint files, or a deterministic replay of the run), reads
M, act and eta from the stored config (or --act / --eta), and prints or writes what
``thm6.summarize_checkpoint`` returns. Progress on stderr: on a terminal notes and a bar over the replay's
epochs; off one a heartbeat at every tenth of the replay's epochs and of the checkpoints computed (and
after minutes of silence), as train's.
"""
from __future__ import annotations

import math
import os
import re
import sys

import click
import numpy as np  # host checks of a checkpoint's arrays

from tianref import __version__, group_rows, identity, memory, runs, thm6, threads as blas_threads
from tianref.analysis.records import read_rows
from tianref.backend import environment_info, get_xp
from tianref.cli.common import (THREADS, FiniteFloat, GivenPath, IntRange, epoch_list_options, figure_format,
                                json_safe, reports_errors)
from tianref.cli.progress import CountProgress, Heartbeat, interactive
from tianref.config import INT64_MAX, eta_in_force, parse_int_list
from tianref.errors import InputError, RunFailure
from tianref.model import ACTIVATIONS
from tianref.paths import check_distinct_outputs
from tianref.rundir import check_output_file

# the paper's Theorem 6 checkpoints (Table T1 for x^2; its 'ReLU' row)
PAPER_EPOCHS = {"sqr": (50, 100, 175, 250, 300), "relu": (100, 300, 500)}
REPLAY_BEYOND = "replayed beyond the run (its last epoch is {last})"


def _note(msg: str) -> None:
    """Progress notes go to a terminal only (off one, stderr carries the heartbeat lines and errors)."""
    if interactive():
        click.echo(f"thm6: {msg}", err=True)


def _last_epoch(run_dir):
    """The last epoch the run reached: its last logged row, else its final checkpoint; None when it
    has neither (a directory of checkpoints alone does not say how far the run went)."""
    mpath = os.path.join(run_dir, "metrics.jsonl")
    if os.path.isfile(mpath):
        rows, _ = read_rows(mpath)              # the checked reader: rows 0, 1, ... with integer epochs
        if rows:
            return int(rows[-1]["epoch"])
    final_path = runs.checkpoint_path(run_dir, final=True)
    if os.path.isfile(final_path):
        final = runs.load_npz(final_path)
        if "epoch" in final:
            return int(final["epoch"])
    return None


def _named_checkpoints(run_dir) -> list:
    d = os.path.join(run_dir, "checkpoints")
    if not os.path.isdir(d):
        return []
    return sorted(int(m.group(1)) for f in os.listdir(d) if (m := re.fullmatch(r"epoch_(\d+)\.npz", f)))


def default_epochs(act: str | None, last: int | None) -> list:
    """The paper's checkpoint epochs for the activation that the run reached, plus its last epoch."""
    paper = PAPER_EPOCHS.get(act or "sqr", PAPER_EPOCHS["sqr"])
    return sorted({e for e in paper if e <= last} | {last})


def _sources(run_dir, epochs_text, checkpoint, xp, act=None, replay_beyond=False, precheck=None):
    """[(label, epoch, arrays dict, config dict or None, source)] for every requested state.
    precheck(config dict, validated TrainConfig, label, epochs): called with a run's config.json and the
    epochs asked for before any of its states is read or replayed (what the settings alone decide is
    refused before a long replay)."""
    if run_dir is None and checkpoint is None:
        raise InputError("thm6 analyses a trained run: give exactly one of --run DIR (a `train --out` folder) or "
                         "--checkpoint FILE.npz, e.g. `thm6 --exact --run runs/headline`")
    if run_dir is not None and checkpoint is not None:
        raise InputError("give exactly one of --run DIR or --checkpoint FILE.npz, not both")
    if checkpoint is not None:
        if epochs_text is not None:
            raise InputError("--at-epochs selects checkpoints of --run DIR; a --checkpoint file has one epoch")
        if replay_beyond:
            raise InputError("--replay-beyond trains a --run DIR on past its last epoch; a --checkpoint file "
                             "has no run to train on")
        ck = runs.load_npz(checkpoint)
        identity.check_state(ck, checkpoint)                 # a sealed file must be as its run wrote it
        epoch = int(ck["epoch"]) if "epoch" in ck else None
        return [(checkpoint, epoch, ck, runs.checkpoint_config(ck), checkpoint)]

    if not os.path.isdir(run_dir):
        raise InputError(f"--run {run_dir}: no such directory")
    cfg_path = os.path.join(run_dir, "config.json")
    has_cfg = os.path.isfile(cfg_path)
    if os.path.lexists(cfg_path) and not has_cfg:
        raise InputError(f"{cfg_path} is not a file")
    if not has_cfg and not os.path.isdir(os.path.join(run_dir, "checkpoints")):
        raise InputError(f"--run {run_dir} is not a run directory (no config.json, no checkpoints/)")
    meta = runs.read_config(run_dir) if has_cfg else None
    run_cfg = meta.get("config") if has_cfg else None
    valid = None                        # config.json's run, checked before any output: a damaged one is
    if run_cfg is not None:             # refused in one line, even where checkpoints carry their own config
        from tianref.config import TrainConfig, validate
        try:
            valid = validate(TrainConfig.from_dict(run_cfg))
        except InputError as exc:
            raise InputError(f"{cfg_path}: {exc}") from None
        identity.check_run_folder(run_dir, meta, valid)   # its log and states are config.json's run
    last = _last_epoch(run_dir)
    if last is not None and valid is not None and last > valid.epochs:
        raise InputError(f"{os.path.join(run_dir, 'metrics.jsonl')} holds rows up to epoch {last}, beyond the "
                         f"run's epochs = {valid.epochs} in {cfg_path} (a log from another run?)")
    said = None                                        # which epochs were chosen, said once they pass
    if epochs_text is None:
        if last is None:
            epochs = _named_checkpoints(run_dir)
            if not epochs:
                raise InputError(f"--run {run_dir} has no metrics.jsonl, final.npz or epoch checkpoints; "
                                 "give --at-epochs")
            said = f"epochs {', '.join(map(str, epochs))}: the run's checkpoints (it logged no rows)"
        else:
            epochs = default_epochs(act or (run_cfg or {}).get("act"), last)
            said = (f"epochs {', '.join(map(str, epochs))}: the paper's checkpoints that the run reached "
                    f"and its last epoch ({last})")
    else:
        epochs = list(dict.fromkeys(parse_int_list(epochs_text, "--at-epochs")))
        if not epochs or min(epochs) < 0:
            raise InputError(f"--at-epochs needs one or more epochs >= 0 (got {epochs_text!r})")
        if max(epochs) > INT64_MAX:                # (a replay's --epochs would be blamed for it)
            raise InputError(f"--at-epochs {max(epochs)} is too large (the limit is 2^63 - 1)")
    if run_cfg is not None and precheck is not None:
        precheck(run_cfg, valid, cfg_path, epochs)
    if said:
        _note(said)
    beyond = [e for e in epochs if last is not None and e > last]
    if beyond and not replay_beyond:
        raise InputError(f"epoch(s) {', '.join(map(str, beyond))} lie beyond the run's last epoch {last}; "
                         "pass --replay-beyond to train on to them deterministically")
    final_path = runs.checkpoint_path(run_dir, final=True)
    final = runs.load_npz(final_path) if os.path.isfile(final_path) else None
    out, missing = {}, []
    for e in epochs:
        path = runs.checkpoint_path(run_dir, e)
        if os.path.isfile(path):
            ck = runs.load_npz(path)
            identity.check_checkpoint(meta, ck, path, e)
            out[e] = (path, e, ck, runs.checkpoint_config(ck) or run_cfg, path)
        elif final is not None and "epoch" in final and int(final["epoch"]) == e:
            identity.check_checkpoint(meta, final, final_path, e)
            out[e] = (final_path, e, final, runs.checkpoint_config(final) or run_cfg, final_path)
        else:
            missing.append(e)
    if missing:
        if run_cfg is None:
            raise InputError(f"epoch(s) {', '.join(map(str, missing))}: no checkpoint in "
                             f"{os.path.join(run_dir, 'checkpoints')} and no config.json to replay from")
        # config.json still gives its fingerprint, and an --init-from run replays from its own init file
        init = identity.replay_init(meta, valid, cfg_path, runs.load_npz)
        memory.check_run(valid)                            # the replay's arrays fit (tianref.memory)
        _note(f"no checkpoint for epoch(s) {', '.join(map(str, missing))}: replaying the run "
              f"deterministically from {os.path.join(run_dir, 'config.json')}")
        from tianref.train import replay
        with CountProgress(max(missing), "thm6 replay", "epoch") as bar:
            states = replay(run_cfg, missing, xp, init=init, on_step=lambda e: bar.update(1, f"epoch {e}"))
        for e in missing:
            src = REPLAY_BEYOND.format(last=last) if e in beyond else "replay"
            out[e] = (f"{run_dir} ({src})", e, states[e], run_cfg, src)
    return [out[e] for e in epochs]


def _weights(label, ck, cfg):
    """W, M, train_idx from a checkpoint's arrays, checked against its config; one-line errors."""
    absent = [k for k in ("W", "V", "train_idx") if k not in ck]
    if absent:
        raise InputError(f"{label}: mis-shaped checkpoint: missing array(s) {', '.join(absent)}")
    W, V, idx = ck["W"], ck["V"], ck["train_idx"]
    if W.ndim != 2 or W.shape[0] % 2:
        raise InputError(f"{label}: mis-shaped checkpoint: W has shape {W.shape}, expected (2M, K)")
    M = int(cfg["M"]) if cfg and "M" in cfg else W.shape[0] // 2
    K = W.shape[1]
    if W.shape != (2 * M, K) or V.shape != (K, M):
        raise InputError(f"{label}: mis-shaped checkpoint: W {W.shape}, V {V.shape}; expected "
                         f"W (2M, K) = ({2 * M}, {K}) and V (K, M) = ({K}, {M})")
    if cfg and "K" in cfg and int(cfg["K"]) != K:
        raise InputError(f"{label}: mis-shaped checkpoint: W has K = {K} columns but its config says K = {cfg['K']}")
    if idx.ndim != 1 or idx.dtype.kind not in "iu" or idx.size < 2 or idx.min() < 0 or idx.max() >= M * M:
        raise InputError(f"{label}: mis-shaped checkpoint: train_idx must be >= 2 integers in [0, M^2 = {M * M})")
    if len(np.unique(idx)) != idx.size:
        raise InputError(f"{label}: corrupt checkpoint: train_idx has repeated entries")
    if W.dtype.kind != "f" or not np.all(np.isfinite(W)):
        raise InputError(f"{label}: corrupt checkpoint: W must hold finite real numbers (dtype {W.dtype})")
    return W, M, idx


def _setting(name, override, cfg, label):
    if override is not None:
        return override
    if cfg and name in cfg:
        return cfg[name]
    raise InputError(f"{label}: no config with '{name}' (neither in the file nor a config.json); pass --{name}")


def _eta_setting(override, cfg, epoch, label):
    """eta of Theorem 6 at row ``epoch``: --eta if given, else the run's: under an eta schedule the eta in
    force from that row on (config.eta_in_force, as eta_at: the step epoch -> epoch + 1), else its
    constant eta."""
    if override is None and cfg and cfg.get("eta_schedule") and epoch is None:
        raise InputError(f"{label}: the run trained with an eta schedule and the file records no epoch to "
                         "read its eta at; pass --eta")
    if override is None and cfg and cfg.get("eta_schedule"):
        try:
            schedule = [(int(start), value) for start, value in cfg["eta_schedule"]]
        except (TypeError, ValueError):
            raise InputError(f"{label}: eta_schedule = {cfg['eta_schedule']!r} in the config is not a list of "
                             "[start, eta] pairs") from None
        return eta_in_force(_setting("eta", None, cfg, label), schedule, int(epoch))
    return _setting("eta", override, cfg, label)


def _finite(name, v, label) -> float:
    """A stored setting as a finite float >= 0, or InputError naming it (10**400, NaN, a string)."""
    try:
        x = float(v)
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if isinstance(v, bool) or not (math.isfinite(x) and x >= 0):
        raise InputError(f"{label}: {name} = {v!r} in the config is not a finite number >= 0")
    return x


def _fmt(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


ROUTES_AGREE = 1e-6     # B-route and audit stay <= ~1e-9 in every stored run (reference_results/); far above
                        # that, B's two routes disagree: eta is below F~^T F~'s float64 resolution


def _table(records) -> str:
    head = (f"{'epoch':>6} {'act':>7} {'eta':>8} {'pairs':>8} {'exact':>6} {'approx':>6} {'paper':>6} "
            f"{'B<0|c>0':>8} {'med|cos|':>8} {'certain':>8} {'audit':>8} {'B-route':>8}")
    lines = ["Theorem 6 sign-match sgn(B_jl) = -sgn(r_jl): exact = leave-two-out r (closed form); "
             "approx = full projector with the correct B; paper = published eq. (4) path",
             head, "-" * len(head)]
    for r in records:
        s = r["summary"]
        lines.append(
            f"{_fmt(r['epoch'], 'd'):>6} {r['act']:>7} {s['eta']:>8.2g} "
            f"{s['n_pairs']:>8d} {_fmt(s['sign_match_exact']):>6} {_fmt(s['sign_match_approx']):>6} "
            f"{_fmt(s['sign_match_paper']):>6} {_fmt(s['frac_B_neg_on_pos_cos']):>8} "
            f"{_fmt(s['median_abs_cos']):>8} {_fmt(s['n_sign_certain_exact'], 'd'):>8} "
            f"{_fmt(s['audit_max_rel_diff'], '.1e'):>8} {_fmt(s['B_route_rel_diff'], '.1e'):>8}")
    lines.append("certain = pairs whose sign survives the floating-point bound; audit = max relative "
                 "difference, closed form vs the definitional solve; B-route = ||B - B_woodbury||_F / ||B||_F")
    for r in records:                            # two routes to one number that disagree: B is not determined
        s = r["summary"]
        off = [(k, s.get(k)) for k in ("B_route_rel_diff", "audit_max_rel_diff")]
        off = [(k, v) for k, v in off if v is not None and not v <= ROUTES_AGREE]      # NaN counts as off
        if off:
            lines.append(f"epoch {r['epoch']}: warning: B is not determined to float64 accuracy at eta = "
                         f"{s['eta']:g} (" + ", ".join(f"{'B-route' if k.startswith('B') else 'audit'} {v:.1e}"
                                                       for k, v in off)
                         + f" > {ROUTES_AGREE:g}): its signs, and the sign-match columns, mean nothing here")
    for kind in sorted({r["source"] for r in records if r["source"].startswith("replay")}):
        eps = ", ".join(str(r["epoch"]) for r in records if r["source"] == kind)
        what = "replayed deterministically from config.json (no checkpoint)" if kind == "replay" else \
            kind + ", by --replay-beyond: the run itself never reached it"
        lines.append(f"epoch {eps}: {what}")
    return "\n".join(lines)


@click.command(help="Theorem 6 exactly: B = (F~^T F~ + eta I)^-1, exact leave-two-out residuals for the "
               "most similar pairs (or all pairs), the full-projector identity, and the paper's published "
               "eq. (4) path, per checkpoint. Prints a table; --json and --plot write files. "
               "See docs/theorem6.md.")
@click.option("--run", "run_dir", type=GivenPath(file_okay=False), default=None,
              help="Run directory written by `train`; its checkpoints/epoch_NNNNN.npz are used, and "
                   "missing epochs are replayed deterministically from its config.json.")
@epoch_list_options("thm6", "Comma-separated epochs to analyse with --run, e.g. 50,100,300. Default: the "
                    "paper's checkpoints (50,100,175,250,300 for x^2; 100,300,500 for ReLU) that the run "
                    "reached, plus its last epoch. An epoch beyond the run's last is an error unless "
                    "--replay-beyond.")
@click.option("--replay-beyond", is_flag=True, default=False,
              help="Allow --at-epochs beyond the run's last epoch: the run's config is replayed on to them "
                   "(the table, the JSON and the figure say so).")
@click.option("--checkpoint", type=GivenPath(dir_okay=False), default=None,
              help="A single checkpoint .npz (W, V, train_idx, config) instead of --run.")
@click.option("--act", type=click.Choice(ACTIVATIONS), default=None, show_default=True,
              help="Activation used to compute F = sigma(XW); default: the stored config's.")
@click.option("--eta", type=FiniteFloat(0), default=None, show_default=True,
              help="eta of B = (F~^T F~ + eta I)^-1; default: the stored config's (the training eta; under an "
                   "--eta-schedule the eta in force at each epoch, that of the step from it to the next).")
@click.option("--top-pairs", type=IntRange(min=1), default=200, show_default=True,
              help="Number N of most similar pairs j < l (largest |cos|, ties by (j, l)) to evaluate and list "
                   "(not with --all-pairs, which lists none).")
@click.option("--all-pairs", is_flag=True, default=False, show_default=True,
              help="Evaluate the exact residual for all K(K-1)/2 pairs and report distributions (no list).")
@click.option("--audit", type=IntRange(min=0), default=5, show_default=True,
              help="Pairs (the most similar) whose exact residual is also computed by the definitional route.")
@click.option("--exact", is_flag=True, default=False, show_default=True,
              help="--exact is the default and kept for the documented command `thm6 --exact`: the exact "
                   "leave-two-out residual (closed form from B, audited by the definitional solve) is always "
                   "computed, with or without it. With --pinv, where no exact residual exists, it is refused.")
@click.option("--pinv", is_flag=True, default=False, show_default=True,
              help="eta = 0 only: use the pseudo-inverse (F~^T F~)^+ in place of B, which does not exist; "
                   "the exact and paper routes are then undefined (see docs/theorem6.md). On a run trained "
                   "with an --eta-schedule it applies to the epochs whose eta is 0.")
@click.option("--method", type=click.Choice(["cholesky", "eigh"]), default="cholesky", show_default=True,
              help="Factorisation for B (eigh also reports cond(F~^T F~ + eta I)).")
@click.option("--block", type=IntRange(min=1), default=256, show_default=True,
              help="Rows per block in --all-pairs (bounds the memory).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, show_default=True,
              help="Write the per-checkpoint summaries and pair lists to this JSON file (atomically).")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False), default=None, show_default=True,
              help="Write a figure, PNG, PDF or SVG as the extension says (.png, .pdf, .svg): sign-match across checkpoints with the paper's T1 values, B vs cos, B vs r.")
@click.option("--xp", "xp_name", type=click.Choice(["numpy", "cupy", "fake"]), default="numpy",
              show_default=True, help="Array backend: numpy (CPU) or cupy (GPU). 'fake' is the strict CI backend.")
@click.option("--threads", type=THREADS, default=None, show_default=blas_threads.REPLAY_DEFAULT_TEXT,
              help=blas_threads.REPLAY_HELP)
@click.pass_context
@reports_errors
def thm6_cmd(ctx, run_dir, epochs_text, replay_beyond, checkpoint, act, eta, top_pairs, all_pairs, audit, exact,
             pinv, method, block, json_out, plot_out, xp_name, threads):
    for what, path in (("--json", json_out), ("--plot", plot_out)):
        if path is not None:
            check_output_file(path, what)
    check_distinct_outputs(("--checkpoint", checkpoint), ("--json", json_out), ("--plot", plot_out))   # no input replaced
    fmt = figure_format(plot_out, "--plot") if plot_out is not None else None
    xp = get_xp(xp_name)
    ctx.with_resource(blas_threads.limits(blas_threads.for_replay(threads, run_dir)))  # train's count: bitwise
    if all_pairs and ctx.get_parameter_source("top_pairs") == click.core.ParameterSource.COMMANDLINE:
        raise InputError("--all-pairs evaluates every pair and lists none; drop --top-pairs")
    if exact and pinv:
        raise InputError("--exact asks for the exact leave-two-out residual, which does not exist with --pinv "
                         "(eta = 0: B is the pseudo-inverse); drop one of them")

    def scheduled(cfg) -> bool:                      # each epoch at its own eta (--eta not given)
        return eta is None and bool(cfg and cfg.get("eta_schedule"))

    def pinv_at(cfg, e) -> bool:                     # --pinv: under a schedule, for its eta = 0 epochs only
        return pinv and (e == 0 or not scheduled(cfg))

    def check_at(cfg, t, e, n, K, label) -> None:    # eta and --pinv at one epoch
        try:
            thm6.check_pinv(e, pinv_at(cfg, e))
            if not pinv_at(cfg, e):                  # eta = 0 without --pinv: B exists only if n - 1 >= K
                thm6.check_eta_shape(e, n, K)
        except InputError as exc:
            if not scheduled(cfg):
                raise
            raise InputError(f"epoch {t} (eta = {e:g} under the run's eta schedule): {exc}") from None

    def precheck(cfg, valid, label, epochs):         # eta and --pinv, from config.json before any replay
        etas = [_finite("eta", _eta_setting(eta, cfg, t, label), label) for t in epochs]
        for t, e in zip(epochs, etas):               # each epoch's eta (an eta schedule changes it)
            check_at(cfg, t, e, valid.n_train, valid.K, label)
        if pinv and scheduled(cfg) and 0 not in etas:
            raise InputError(f"--pinv is the eta = 0 variant, but no requested epoch of the run's eta schedule "
                             f"has eta = 0 (epochs {', '.join(map(str, epochs))}); drop --pinv")

    jobs = []                                        # read and check every input before computing
    for label, epoch, ck, cfg, source in _sources(run_dir, epochs_text, checkpoint, xp, act, replay_beyond,
                                                  precheck):
        W, M, train_idx = _weights(label, ck, cfg)
        a = _setting("act", act, cfg, label)
        e = _finite("eta", _eta_setting(eta, cfg, epoch, label), label)
        memory.check_fits(memory.thm6_bytes(len(train_idx), int(W.shape[1]), all_pairs, top_pairs),
                          f"{label}: Theorem 6 at K = {W.shape[1]}, n = {len(train_idx)}"
                          + (" (--all-pairs)" if all_pairs else ""))
        if a not in ACTIVATIONS:
            raise InputError(f"{label}: unknown activation {a!r} in the config")
        check_at(cfg, epoch, e, len(train_idx), int(W.shape[1]), label)     # --checkpoint too (no precheck)
        jobs.append((epoch, source, W, M, train_idx, a, e, group_rows.table_of_config(cfg), pinv_at(cfg, e)))
    if pinv and jobs and not any(j[8] for j in jobs):                # a schedule none of whose epochs is at 0
        raise InputError("--pinv is the eta = 0 variant, but no requested epoch of the run's eta schedule has "
                         f"eta = 0 (epochs {', '.join(str(j[0]) for j in jobs)}); drop --pinv")
    records = []
    setup = None
    beat = None if interactive() else Heartbeat(len(jobs), "thm6", unit="checkpoint")   # a note each, on a terminal
    for epoch, source, W, M, train_idx, a, e, table, pinv_e in jobs:
        setup = setup or {"M": M, "K": int(W.shape[1]), "n": int(len(train_idx)), "act": a,
                          "eta": e if len({j[6] for j in jobs}) == 1 else None}   # None: etas differ (a schedule)
        try:                                         # NumPy's overflow warnings of an undetermined B are not
            F_tilde = thm6.features_from_weights(xp, W, M, train_idx, a, table)   # printed: the table says it
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):   # once (ROUTES_AGREE)
                res = thm6.summarize_checkpoint(xp, F_tilde, e, n_top=top_pairs, all_pairs=all_pairs,
                                                n_audit=audit, pinv=pinv_e, method=method, block=block)
        except RunFailure as exc:                    # which epoch of which run, for a failed factorisation
            raise RunFailure(f"epoch {epoch} ({source}): {exc}") from None
        rec = {"epoch": epoch, "eta": e, "act": a, "source": source,
               "replayed_beyond_run": source.startswith(REPLAY_BEYOND.split("{")[0]), "summary": res["summary"]}
        if res["pairs"] is not None:
            rec["pairs"] = res["pairs"]
        records.append(rec)
        _note(f"epoch {epoch}: {source}, act={a}, eta={e:g}, K={W.shape[1]}, n={len(train_idx)}: done")
        if beat is not None:
            beat.update(1, None)

    if json_out:
        doc = {"tool": "tianref thm6", "version": __version__, "command": " ".join(sys.argv),
               "options": {"top_pairs": None if all_pairs else top_pairs, "all_pairs": all_pairs,
                           "audit": audit, "pinv": pinv, "method": method, "act": act, "eta": eta},
               "versions": environment_info(xp), "checkpoints": records}
        runs.atomic_write_json(json_out, json_safe(doc))
        _note(f"wrote {json_out}")
    if plot_out:
        from tianref.thm6.figures import figure_thm6, load_paper_T1, paper_matches
        paper = load_paper_T1()
        match, why = paper_matches(paper, setup or {}, None if all_pairs else top_pairs)
        if not match:
            _note(f"the paper's T1 values are not overlaid: {why}")
        fig = figure_thm6(records, paper if match else None, paper_note=None if match else why)
        runs.atomic_write_bytes(plot_out, lambda f: fig.savefig(f, format=fmt, dpi=110))
        _note(f"wrote {plot_out}")
    click.echo(_table(records))              # after the files: a closed stdout loses none
