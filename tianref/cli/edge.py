"""``python cli.py edge``: ablate and perturb the spectral edge of a run at chosen epochs.

This layer parses the options and prints or writes what tianref.analysis.edge_runs.probe_run
returns (a deterministic replay to each epoch, checked against the run's checkpoints and log, then
tianref.edge_probe.probe per space). The math is in tianref/edge_probe.py and
tianref/edge.py; docs/edge-and-clocks.md §3 defines every number.
"""
from __future__ import annotations

import math
import os
import sys

import click

from tianref import __version__, runs
from tianref.backend import environment_info, get_xp
from tianref.cli.common import reports_errors
from tianref.cli.progress import CountProgress
from tianref.config import parse_int_list
from tianref.errors import InputError

def _note(msg: str) -> None:
    click.echo(f"edge: {msg}", err=True)


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _fmt(v, spec=".3g"):
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def _table(records) -> str:
    head = (f"{'epoch':>6} {'space':>6} {'test_acc':>8} {'gfrac':>7} {'cos':>7} {'dL abl edge':>12} "
            f"{'|dL| rand':>12} {'abl ratio':>10} {'dA abl edge':>11} {'curv edge':>10} "
            f"{'|curv| rand':>10} {'flat ratio':>10}")
    lines = [head, "-" * len(head)]
    for r in records:
        p, s = r["probe"], r["split"]
        R = p.get("random", {})
        lines.append(
            f"{r['epoch']:>6} {r['space']:>6} {p['test_acc']:>8.3f} {_fmt(s.get('gfrac')):>7} "
            f"{_fmt(s.get('cos')):>7} {_fmt(p['edge']['dloss_abl']):>12} "
            f"{_fmt(R.get('abs_dloss_abl', {}).get('mean')):>12} {_fmt(p.get('ablation_ratio')):>10} "
            f"{_fmt(p['edge']['dacc_abl']):>11} {_fmt(p['edge']['curv']):>10} "
            f"{_fmt(R.get('abs_curv', {}).get('mean')):>10} {_fmt(p.get('flatness_ratio')):>10}")
    lines.append("dL/dA abl = change of the test loss/accuracy when the direction is projected out of the "
                 "parameters; curv = (L(+eps) + L(-eps) - 2 L) / eps^2; random: mean of |.| over the random "
                 "directions; ratios = |edge| / that mean; gfrac, cos: the edge split's parameter-space view "
                 "(docs/edge-and-clocks.md §2)")
    return "\n".join(lines)


@click.command(help="Ablate and perturb the spectral edge of a run: replay it to each epoch, form the edge "
               "direction e = D u_1 / ||D u_1|| of the first window's update Gram (W and V jointly, and W "
               "alone), and compare the test-loss change when e is projected out of the parameters, and the "
               "curvature along e, with random unit directions. Prints a table; --json and --plot write "
               "files. See docs/edge-and-clocks.md.")
@click.option("--run", "run_dir", type=click.Path(file_okay=False), required=True,
              help="Run directory written by `train` (its config.json is replayed deterministically).")
@click.option("--epochs", "epochs_text", required=True, help="Comma-separated epochs, e.g. 100,200,400.")
@click.option("--random", "n_random", type=click.IntRange(min=0), default=100, show_default=True,
              help="Random unit directions per epoch and space (0: the edge only).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the host rng for the random directions (numpy default_rng).")
@click.option("--eps-rel", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Flatness step eps = EPS_REL x ||theta|| of the space, the same for e and every random direction.")
@click.option("--space", "space_names", type=click.Choice(["both", "joint", "W"]), default="both",
              show_default=True, help="Parameter space: W and V jointly, W alone, or both.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write every number to this JSON file (atomically).")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG: ablation and flatness against random directions, and gfrac/cos (the "
                   "parameter-space view of the edge split), per epoch.")
@click.option("--xp", "xp_name", type=click.Choice(["numpy", "cupy", "fake"]), default="numpy",
              show_default=True, help="Array backend: numpy (CPU) or cupy (GPU). 'fake' is the strict CI backend.")
@reports_errors
def edge_cmd(run_dir, epochs_text, n_random, seed, eps_rel, space_names, json_out, plot_out, xp_name):
    from tianref.analysis.edge_runs import load_run, probe_run
    epochs = parse_int_list(epochs_text, "--epochs")
    if not epochs or min(epochs) < 0:
        raise InputError(f"--epochs needs one or more epochs >= 0 (got {epochs_text!r})")
    cfg, _, _ = load_run(run_dir)
    if max(epochs) > cfg.epochs:
        raise InputError(f"epoch {max(epochs)} is past the run's --epochs {cfg.epochs}")
    spaces = ["joint", "W"] if space_names == "both" else [space_names]
    xp = get_xp(xp_name)
    w = cfg.windows[0]
    total = len(set(epochs)) * len(spaces) * (n_random + 1)
    _note(f"replaying {run_dir} to epoch(s) {', '.join(map(str, sorted(set(epochs))))}; "
          f"{n_random} random directions per epoch and space")
    with CountProgress(total, "edge probes") as bar:              # on a terminal only
        records = probe_run(run_dir, epochs, xp, spaces=spaces, n_random=n_random, seed=seed,
                            eps_rel=eps_rel, progress=bar.update, note=_note)
    click.echo(_table(records))
    if json_out:
        doc = {"tool": "tianref edge", "version": __version__, "command": " ".join(sys.argv),
               "run": os.path.abspath(run_dir), "window": w,
               "options": {"random": n_random, "seed": seed, "eps_rel": eps_rel, "space": space_names},
               "versions": environment_info(xp), "records": records}
        runs.atomic_write_json(json_out, _json_safe(doc))
        _note(f"wrote {json_out}")
    if plot_out:
        from tianref.analysis.edge_figures import figure_edge
        fig = figure_edge(records, title=os.path.basename(os.path.normpath(run_dir)))
        runs.atomic_write_bytes(plot_out, lambda f: fig.savefig(f, format="png", dpi=110))
        _note(f"wrote {plot_out}")
