"""``python cli.py edge``: ablate and perturb the spectral edge of a run at chosen epochs.

This layer parses the options and prints or writes what tianref.analysis.edge_runs.probe_run
returns (a deterministic replay to each epoch, checked against the run's checkpoints and log, then
tianref.edge_probe.probe per space: the edge authors' protocol with random and norm-matched controls, and
their curvature). The math is in tianref/edge_probe.py, tianref/edge_curvature.py and tianref/edge.py;
docs/edge-and-clocks.md §3 defines every number.
Progress on stderr: one bar per phase on a terminal, the replay's optimizer steps, then the probe's model
evaluations, each started when its phase starts and with its own time left: the phase's elapsed time per
completed item times the items left, none before its first item completes (tianref.cli.progress.time_left).
Off a terminal each phase says a heartbeat line at every tenth of its items and after minutes of silence,
as train does ('edge 2/2 probe: evaluation 121/1212 (10 %), 3.1 s elapsed, ~28 s left').
"""
from __future__ import annotations

import math
import os
import sys

import click

from tianref import __version__, edge_curvature, edge_probe, memory, runs, threads as blas_threads
from tianref.backend import environment_info, get_xp
from tianref.cli.common import (THREADS, FiniteFloat, GivenPath, IntRange, epoch_list_options, figure_format,
                                json_safe, reports_errors)
from tianref.cli.progress import CountProgress
from tianref.config import parse_int_list
from tianref.errors import InputError
from tianref.paths import check_distinct_outputs
from tianref.rundir import check_output_file

def _note(msg: str) -> None:
    click.echo(f"edge: {msg}", err=True)


def _fmt(v, spec=".3g"):
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def _table(records) -> str:
    head = (f"{'epoch':>6} {'space':>5} {'remove':>6} {'f':>8} {'f rand':>8} | {'A':>6} {'dA edge':>8} {'dA rand':>9} "
            f"{'dA norm':>8} {'ratio':>9} | {'dLtr edge':>9} {'dLtr rand':>9} {'dLtr norm':>9}")
    lines = [head, "-" * len(head)]
    floored = False
    for r in records:
        p = r["probe"]
        for key, rm in p["removal"].items():
            if rm is None:
                continue
            R = rm["random"] or {}
            ratio = _fmt(rm["ratio"]) + ("*" if rm["floored"] else "")
            floored |= bool(rm["floored"])
            lines.append(
                f"{r['epoch']:>6} {r['space']:>5} {key:>6} {_fmt(rm['frac']):>8} "
                f"{_fmt(R.get('frac', {}).get('mean')):>8} | {_fmt(p['base']['test_acc']):>6} "
                f"{_fmt(rm['edge']['dtest_acc']):>8} "
                f"{_fmt(R.get('dtest_acc', {}).get('mean')):>9} {_fmt(rm['norm_matched']['dtest_acc']):>8} "
                f"{ratio:>9} | {_fmt(rm['edge']['dtrain_loss']):>9} "
                f"{_fmt(R.get('dtrain_loss', {}).get('mean')):>9} {_fmt(rm['norm_matched']['dtrain_loss']):>9}")
    lines.append("remove: the edge directions projected out of theta; f = removed fraction of ||theta||^2; "
                 "A = the test accuracy before any removal; dA = change of the test accuracy (after - before), "
                 "dLtr = change of the train loss; rand = mean over the random "
                 "orthonormal draws; norm = theta scaled by sqrt(1 - f); ratio = |dA edge| / (|dA rand| + 1e-8)")
    if floored:
        lines.append("* floored: the random removals changed the test accuracy by < 1e-8 on average, so the "
                     "ratio is 1e8 x |dA edge| by construction")
    head2 = f"{'epoch':>6} {'space':>5} {'dir':>4} {'sign':>5} {'dA test':>9} {'dL test':>9} {'dL train':>9}"
    lines += ["", "perturbation theta + eps sign(p) v_k, p = <theta, v_k> (the step moves theta away from the "
              "removal), eps = eps_rel ||theta||; dA, dL = change (after - before) of the accuracy, loss:",
              head2, "-" * len(head2)]
    for r in records:
        for key, q in r["probe"]["perturb"].items():
            if key in ("v1", "v2") and q is not None:
                lines.append(f"{r['epoch']:>6} {r['space']:>5} {key:>4} {q['sign']:>+5.0f} "
                             f"{_fmt(q['dtest_acc']):>9} {_fmt(q['dtest_loss']):>9} {_fmt(q['dtrain_loss']):>9}")
    head3 = f"{'epoch':>6} {'space':>5} {'dir':>4} {'sigma':>9} {'curvature':>10} {'func change':>11} {'dL -eps':>9}"
    lines += ["", "curvature of the test loss along v_k (the authors' flatness; v1, v2 the edge, v3, v4 the bulk):",
              head3, "-" * len(head3)]
    for r in records:
        c = r["probe"]["curvature"]
        for key, q in c.items():
            if key.startswith("v") and q is not None:
                lines.append(f"{r['epoch']:>6} {r['space']:>5} {key:>4} {_fmt(q['sigma']):>9} "
                             f"{_fmt(q['curvature']):>10} {_fmt(q['func_change']):>11} {_fmt(q['dL_minus']):>9}")
    lines.append("curvature = (L(theta + eps v) + L(theta - eps v) - 2 L(theta)) / eps^2, L the test loss, eps = "
                 f"{edge_curvature.EPS_REL:g} ||theta||; func change = |L(theta + eps v) - L(theta)|; dL -eps = L(theta - eps v) - L(theta)")
    return "\n".join(lines)


def _split_table(records) -> str:
    head = (f"{'epoch':>6} {'space':>5} {'sigma1':>9} | {'gfrac':>6} {'cos':>6} | {'pgfrac':>6} {'palign':>6}")
    lines = ["gradient / weight-decay split of the edge (sigma1 = g2 + wd2 + 2 cross = pg2 + pwd2 + 2 pcross):",
             head, "-" * len(head)]
    for r in records:
        s = r["split"]
        lines.append(f"{r['epoch']:>6} {r['space']:>5} {_fmt(s['sigma1']):>9} | {_fmt(s.get('gfrac')):>6} "
                     f"{_fmt(s.get('cos')):>6} | {_fmt(s.get('pgfrac')):>6} {_fmt(s.get('palign')):>6}")
    lines.append("gfrac, cos: the parameter-space view (D^g u1 against D^wd u1); pgfrac, palign: the authors' "
                 "edge-projected view (each update's parts projected on v1); '-': undefined")
    return "\n".join(lines)


class _Phases:
    """One terminal bar per phase of probe_run (its progress(phase, n, total) calls), a heartbeat off a
    terminal: a phase's bar starts when the phase does (its n = 0 call), so its time left counts only that
    phase's own completed items."""
    LABELS = {"replay": ("edge 1/2 replay", "step"), "probe": ("edge 2/2 probe", "evaluation")}

    def __init__(self):
        self.phase, self.bar = None, None

    def __call__(self, phase, n, total):
        if phase != self.phase:
            self.close()
            label, unit = self.LABELS.get(phase, (phase, "item"))
            self.phase, self.bar = phase, CountProgress(total, label, unit).__enter__()
        if n:
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


SPACE_CHOICES = {"all": ["joint", "W", "V"], "joint": ["joint"], "W": ["W"], "V": ["V"]}


@click.command(help="Ablate and perturb the spectral edge of a run, on the edge authors' protocol: replay the "
               "run to each epoch, take the top two right singular vectors v1, v2 of the window matrix of the "
               "last w updates (w = the run's first window) in each space (W alone, V alone, W and V jointly), "
               "project {v1, v2} and {v1} out of the parameters and report the change of the test accuracy, test "
               "loss, train loss and train accuracy, against random orthonormal directions removed the same way "
               "and against the same norm removed along no direction; then perturb theta + eps sign(p) v_k, and "
               "take the test loss's curvature along v1..v4 (the authors' flatness measure, eps = 0.001 ||theta||). "
               "Also reports each space's gradient / weight-decay split of the edge in both views (parameter space "
               "and the authors' edge projection). Prints tables; --json and --plot write files. See "
               "docs/edge-and-clocks.md.")
@click.option("--run", "run_dir", type=GivenPath(file_okay=False), required=True,
              help="Run directory written by `train` (its config.json is replayed deterministically).")
@epoch_list_options("edge", "Comma-separated epochs to probe, e.g. 100,200,400 (each <= the run's last epoch).",
                    required=True)
@click.option("--n-random", "--random", "n_random", type=IntRange(min=0, max=edge_probe.N_RANDOM_MAX), default=20,
              show_default=True, help="Random draws of 2 (and of 1) orthonormal directions per epoch and space "
              f"(0: the edge only; at most {edge_probe.N_RANDOM_MAX}: each is a model evaluation).")
@click.option("--seed", type=IntRange(min=0), default=0, show_default=True,
              help="Seed of the host rng for the random directions (numpy default_rng((seed, k))).")
@click.option("--eps-rel", type=FiniteFloat(0, low_open=True, high=1.0), default=0.005, show_default=True,
              help="Perturbation step eps = EPS_REL x ||theta|| of the space (finite, in (0, 1]; the authors' 0.005).")
@click.option("--space", "space_names", type=click.Choice(list(SPACE_CHOICES)), default="all",
              show_default=True, help="Parameter space: W alone, V alone, W and V jointly, or all three.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write every number to this JSON file (atomically).")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False), default=None,
              help="Write a figure, PNG, PDF or SVG as the extension says (.png, .pdf, .svg): signed changes of "
              "test accuracy, train loss and perturbation per epoch and space, edge against random (mean +- std) "
              "and norm-matched, and the curvature along v1..v4.")
@click.option("--xp", "xp_name", type=click.Choice(["numpy", "cupy", "fake"]), default="numpy",
              show_default=True, help="Array backend: numpy (CPU) or cupy (GPU). 'fake' is the strict CI backend.")
@click.option("--threads", type=THREADS, default=None, show_default=blas_threads.REPLAY_DEFAULT_TEXT,
              help=blas_threads.REPLAY_HELP)
@reports_errors
def edge_cmd(run_dir, epochs_text, n_random, seed, eps_rel, space_names, json_out, plot_out, xp_name, threads):
    from tianref.analysis.edge_runs import check_epochs, load_run, probe_run
    for what, path in (("--json", json_out), ("--plot", plot_out)):     # before any replay
        if path is not None:
            check_output_file(path, what)
    check_distinct_outputs(("--json", json_out), ("--plot", plot_out))
    fmt = figure_format(plot_out, "--plot") if plot_out is not None else None
    epochs = parse_int_list(epochs_text, "--at-epochs")
    if not epochs or min(epochs) < 0:
        raise InputError(f"--at-epochs needs one or more epochs >= 0 (got {epochs_text!r})")
    cfg, _, _ = load_run(run_dir, epochs)
    check_epochs(cfg, epochs)                    # before the note: a refusal is one line
    spaces = SPACE_CHOICES[space_names]
    # the replay is a run; each probed epoch and space then keeps theta, v_1..v_4 (float64, P <= 3 M K each)
    memory.check_fits(memory.estimate_bytes(cfg) + len(set(epochs)) * len(spaces) * 5 * 8 * 3 * cfg.M * cfg.K,
                      f"edge on {run_dir} (M = {cfg.M}, K = {cfg.K}, windows up to {max(cfg.windows)})")
    xp = get_xp(xp_name)
    _note(f"replaying {run_dir} to epoch(s) {', '.join(map(str, sorted(set(epochs))))}; then per space "
          f"({', '.join(spaces)}) the edge and {n_random} random draws of 2 and of 1 directions")
    bars = _Phases()
    try:
        with blas_threads.limits(blas_threads.for_replay(threads, run_dir)):   # train's count: a bitwise replay
            records = probe_run(run_dir, epochs, xp, spaces=spaces, n_random=n_random, seed=seed,
                                eps_rel=eps_rel, progress=bars, note=_note)
            versions = environment_info(xp)             # the count the replay ran with, read while it holds
    finally:
        bars.close()
    if json_out:
        doc = {"tool": "tianref edge", "version": __version__, "command": " ".join(sys.argv),
               "run": os.path.abspath(run_dir), "window": cfg.windows[0],
               "options": {"n_random": n_random, "seed": seed, "eps_rel": eps_rel, "space": space_names},
               "versions": versions, "records": records}
        runs.atomic_write_json(json_out, json_safe(doc))
        _note(f"wrote {json_out}")
    if plot_out:
        from tianref.analysis.edge_figures import figure_edge
        fig = figure_edge(records, title=os.path.basename(os.path.normpath(run_dir)))
        runs.atomic_write_bytes(plot_out, lambda f: fig.savefig(f, format=fmt, dpi=110))
        _note(f"wrote {plot_out}")
    click.echo(_split_table(records) + "\n\n" + _table(records))   # after the files: a closed stdout loses none
