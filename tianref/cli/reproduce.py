"""``reproduce``: the sections of the registry (tianref.experiments.reproduce.sections), each run, measured,
judged and reported through one protocol (thin click layer over tianref.experiments.reproduce.pipeline)."""
from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path

import click

from tianref import threads as blas_threads
from tianref.cli.common import THREADS, GivenPath, IntRange, check_interpreter, reports_errors
from tianref.cli.progress import RunsReporter
from tianref.cli.sweep import THREADS_DEFAULT, THREADS_HELP
from tianref.errors import InputError
from tianref.experiments.protocols import SCALES, SECTIONS
from tianref.paths import check_not_in_run, check_one_line
from tianref.resources import program, store_root
from tianref.rundir import check_output_dir, check_output_file


def _command_line() -> str:
    """This process's command line as the reports record it (``python cli.py ...`` when run as cli.py,
    ``python -m tianref ...`` when run by -m)."""
    if sys.argv[0].endswith("cli.py"):
        return shlex.join(["python", "cli.py"] + sys.argv[1:])
    if program() == "python -m tianref":
        return shlex.join(["python", "-m", "tianref"] + sys.argv[1:])
    return shlex.join(sys.argv)


def _check_store_apart(store_to, root, scale_name: str, sections) -> None:
    """--store replaces STORE_TO/<scale>/<section> as a whole: refuse it where that folder is, holds or
    lies inside a section's run folder ROOT/<section> (storing would delete its runs and logs)."""
    def inside(a: Path, b: Path) -> bool:
        return a == b or b in a.parents
    for s in sections:
        dest = (Path(store_to) / scale_name / s).resolve()
        runs_at = (Path(root) / s).resolve()
        if inside(runs_at, dest):
            raise InputError(f"--store-to {store_to}: the stored copy {dest} would replace the folder of the "
                             f"section's runs {runs_at} (or one holding it), deleting them; store elsewhere")
        if inside(dest, runs_at):
            raise InputError(f"--store-to {store_to}: the stored copy {dest} would lie inside the folder of the "
                             f"section's runs {runs_at}; store elsewhere")


def _check_not_a_section(root) -> None:
    """Refuse a --root that is itself one section's folder of a reproduce tree: named for a section and
    holding that section's summary.json, or a run folder or log of one of the section's runs (at any
    scale). The sections would go one level deeper, ROOT/<section>/<section>, and train every run anew."""
    root = Path(root).resolve()                  # '.', '..' or a link: the folder it names
    if root.name not in SECTIONS:
        return
    held = False
    summary = root / "summary.json"
    if summary.is_file():
        try:
            held = json.loads(summary.read_text()).get("section") == root.name
        except (OSError, ValueError, AttributeError):
            pass
    if not held and root.is_dir():
        from tianref.experiments.reproduce import get_section, parse_scale, section_jobs
        section = get_section(root.name)
        names = {j.out.name for sc in SCALES for j in section_jobs(root.parent, section, parse_scale(sc))}
        held = any((root / n / "config.json").is_file() or (root / "_logs" / f"{n}.log").is_file() for n in names)
    if held:
        raise InputError(f"--root {root} is the {root.name} section's folder of the reproduce tree "
                         f"{root.parent}; give --root {root.parent}")


def _store_dir(store_to):
    """--store-to, else the source checkout's reference_results/reproduction (exit 2 in an installed copy)."""
    return store_to if store_to is not None else store_root()


@click.command("reproduce", context_settings={"show_default": True})
@click.option("--section", "section_text", type=click.Choice(SECTIONS + ("all",)), default="all",
              help="One section, or all (= headline, relu, window, eta, thm6; extended, scaling, critical, "
                   "muon, ridge, lifecycle, clocks and groups only when asked; lifecycle and clocks test two other "
                   "seed papers, the spectral edge and the two training clocks, on this model; groups trains "
                   "Tian's task on finite groups beyond Z_M).")
@click.option("--root", type=GivenPath(file_okay=False, path_type=Path), default=None,
              help="Run tree; each section goes to ROOT/<section>/. Default: runs/reproduce at the "
                   "full scale, runs/reproduce-<scale> otherwise (so the scales never share runs).")
@click.option("--scale", "scale_text", type=click.Choice(tuple(SCALES)), default="full",
              help="full: the paper's protocol; ci: the quick configuration (M=23, K=512, train "
                   "fraction 0.5, every eta x 10, 2 seeds, the paper's epochs), which groks in seconds; "
                   "smoke: M=11, K=32, one seed, about 30 epochs per run, a check of the pipeline only. "
                   "The groups section has its own sizes (its orders are fixed): ci and smoke both run "
                   "K=64, 40 epochs, one seed.")
@click.option("--jobs", "n_jobs", type=IntRange(min=1), default=2,
              help="Parallel local train processes (each with --threads BLAS threads).")
@click.option("--threads", type=THREADS, default=None, show_default=THREADS_DEFAULT,
              help=THREADS_HELP + " This process's own replays (thm6, lifecycle) use T threads too, so that "
                   "they equal the runs bit for bit.")
@click.option("--batch/--no-batch", default=None,
              help="Train the seeds (and eta values) of each condition as stacked arrays (train-batch; the same runs, "
                   "each in its own folder). Default: on with --xp cupy (a GPU is filled by one stack, "
                   "not by many small processes), off on a CPU.  [default: auto]")
@click.option("--plan", is_flag=True,
              help="Print one independent train command per unfinished run and exit (for a cluster); "
                   "afterwards run reproduce again without --plan to summarise.")
@click.option("--store", is_flag=True,
              help="Copy summary.json, report.md and figures with provenance.json to "
                   "STORE_TO/<scale>/<section>/.")
@click.option("--store-to", type=GivenPath(file_okay=False, path_type=Path), default=None,
              help="Where --store writes (and --rerender reads); default: the source checkout's "
                   "reference_results/reproduction (an installed copy has none: give it).")
@click.option("--top-pairs", type=IntRange(min=1), default=200,
              help="thm6 section: most similar pairs per checkpoint.")
@click.option("--xp", "xp_name", type=click.Choice(["numpy", "cupy", "fake"]), default="numpy",
              help="Backend passed to train for new runs.")
@click.option("--slurm", "slurm_file", type=GivenPath(dir_okay=False, path_type=Path), default=None,
              help="Write a SLURM job-array script for the unfinished runs of the section(s) to this file "
                   "(task i runs the i-th --plan command) and exit; afterwards run reproduce again to summarise.")
@click.option("--python", type=GivenPath(), default=sys.executable, help="Interpreter in the train commands.")
@click.option("--rerender", is_flag=True,
              help="Trains nothing: rebuild the claims and report.md of the stored section(s) in "
                   "STORE_TO/<scale>/ from their summary.json (e.g. after a citation or rule changed), after "
                   "recomputing its derived leads and lags from the stored event epochs by the current rule "
                   "(recorded in provenance.json); the measured statistics are kept as stored. With "
                   "--section all: every stored section.")
@click.option("--no-train", is_flag=True,
              help="Trains nothing: summarise the runs under ROOT that have all their rows (not thm6, lifecycle, "
                   "groups, which replay runs: --section all skips thm6 with a note), e.g. a tree copied back from another "
                   "machine without checkpoints; the report lists the missing runs and how to finish them.")
@reports_errors
def reproduce_cmd(section_text, root, scale_text, n_jobs, threads, batch, plan, store, store_to, top_pairs,
                  xp_name, slurm_file, python, rerender, no_train):
    """Run the paper's protocols, summarise them beside the published numbers, draw the figures.

    Finished runs of the same configuration (fingerprint) are skipped, unfinished ones resumed; a
    folder holding another run is refused. Writes ROOT/<section>/summary.json, report.md and figures/;
    on a terminal a progress bar goes to stderr (off one, a heartbeat at each tenth of the runs finished
    and, while runs train, at each further tenth of the epochs logged, at most every 30 s; failures;
    each run's own heartbeat is in ROOT/<section>/_logs/), one JSON line to stdout. Exit 2: bad input; exit 1: a run failed (the
    message names it and its log). Needs a source checkout: the published numbers are read from its
    reference_results/paper, so an installed copy (pip install .) exits 2 before anything runs (--plan
    and --slurm still print their commands).
    """
    from tianref.experiments import reproduce as rp
    sections = rp.parse_section(section_text)
    scale = rp.parse_scale(scale_text)
    if rerender and root is not None:
        raise InputError("--rerender re-renders the stored sections in STORE_TO (--store-to), from their "
                         "summary.json; it reads no run tree: drop --root")
    if root is None:
        root = Path("runs/reproduce" if scale.name == "full" else f"runs/reproduce-{scale.name}")
    if no_train and (plan or slurm_file is not None or rerender):
        raise InputError("--no-train summarises runs already there; it cannot be combined with --plan, "
                         "--slurm or --rerender")
    replayed = []                                 # --section all --no-train: the sections it cannot summarise
    if no_train and section_text == "all":
        replayed = [s for s in sections if rp.get_section(s).needs_checkpoints]
        sections = [s for s in sections if s not in replayed]
    if not plan and slurm_file is None:
        rp.load_published()          # an installed copy has none: exit 2 here, not after training every run
    if rerender:
        if plan or store:
            raise InputError("--rerender re-renders stored sections; it cannot be combined with --plan or --store")
        from tianref.backend import REPO, git_state_apart_from
        from tianref.experiments.reproduce.rerender import apply_rerender, plan_rerender, stored_sections
        base = _store_dir(store_to)
        check_output_dir(base, "--store-to")
        names = stored_sections(base, scale.name, None if section_text == "all" else sections)
        command = _command_line()
        others = [d for d in (Path(base).iterdir() if Path(base).is_dir() else ())
                  if d.is_dir() and d.name != scale.name]
        git = git_state_apart_from(others)                    # before the first write; the other scales'
                                                              # sections changed in base are outputs, not inputs
        try:
            Path(base).resolve().relative_to(REPO.resolve())
        except ValueError:                                    # a store outside the checkout: git's state says
            if git is not None:                               # nothing of the summary.json files it reads
                git = dict(git, store_outside_checkout=True)
        plans = {s: plan_rerender(base, scale.name, s) for s in names}    # every section read and checked
        done = {s: apply_rerender(p, command, git) for s, p in plans.items()}   # before any is written
        click.echo(json.dumps({"scale": scale.name, "rerendered": done}))
        return
    if plan and slurm_file is not None:
        raise InputError("give --plan or --slurm, not both")
    if store and (plan or slurm_file is not None):
        raise InputError("--store copies the sections this command computes; --plan and --slurm compute none "
                         "(store them with the command that runs them)")
    check_one_line(root, "--root")
    check_one_line(python, "--python")               # it heads every printed command and script line
    check_not_in_run(root, "--root")             # also for --plan: its commands would write there
    _check_not_a_section(root)
    if not plan:                                 # every output path before anything is computed or created
        check_output_dir(root, "--root")
    if slurm_file is not None:
        check_output_file(slurm_file, "--slurm", make_parents=False)
    if store:
        check_output_dir(_store_dir(store_to), "--store-to")
        _check_store_apart(_store_dir(store_to), root, scale.name, sections)
    if no_train:                                 # every section has runs to summarise, before any is
        for s in sections:
            rp.no_train_jobs(s, root, scale, xp_name)
        if replayed:                              # said once the command is known to go ahead
            click.echo(f"reproduce --no-train: {', '.join(replayed)} skipped (its measurements need its runs' "
                       "checkpoints or replays; run that section without --no-train)", err=True)
    from tianref.cli.sweep import check_jobs, write_slurm
    jobs = rp.all_section_jobs(sections, root, scale, xp_name)
    # every run, before any starts (a script, or a plan for GPU nodes, runs elsewhere: the device is not
    # opened here)
    check_jobs(jobs, xp_name, device=slurm_file is None and not (plan and xp_name == "cupy"))
    if plan:
        lines = rp.plan(sections, root, scale, xp_name, python, threads=threads)
        for line in lines:
            click.echo(line)
        if not lines:                            # an empty stdout alone would not say why
            click.echo(f"reproduce: all {len(jobs)} run(s) of {', '.join(sections)} under {Path(root).resolve()} "
                       "are finished (or diverged); nothing to plan", err=True)
        return
    if slurm_file is not None:
        write_slurm(jobs, slurm_file, python, "tianref-reproduce", threads)
        return
    if not no_train:
        check_interpreter(python)
    command = _command_line()
    target = None
    if store:
        target = _store_dir(store_to)
    if not no_train:                             # what this command is about to do, before it starts
        from tianref.experiments.jobs import job_state
        todo = [j for j in jobs if job_state(j) in ("fresh", "resumable")]
        epochs = sum(j.epochs for j in todo)
        click.echo(f"reproduce: {len(todo)} of the {len(jobs)} runs of {', '.join(sections)} (scale {scale.name}) "
                   f"to train under {os.path.abspath(root)}, {epochs} epochs in all, {n_jobs} at a time; "
                   f"`--plan` lists them, and Ctrl-C stops it (the same command continues)", err=True)
    t0 = time.time()
    done = {}
    for s in sections:
        reporter = RunsReporter(f"reproduce {s}")
        try:                                    # replays here (thm6, lifecycle) at the children's count
            with blas_threads.limits(threads):
                done[s] = rp.reproduce_section(s, root, scale, n_jobs=n_jobs, python=python, xp=xp_name,
                                               n_top=top_pairs, store_to=target, command=command,
                                               report=reporter.note, progress=reporter.progress,
                                               no_train=no_train, threads=threads,
                                               batch=(xp_name == "cupy") if batch is None else batch,
                                               rows=reporter.rows)
        finally:
            reporter.close()
    click.echo(json.dumps({"scale": scale.name, "root": str(Path(root).resolve()),
                           "sections": done, "wall_s": round(time.time() - t0, 1)}))
