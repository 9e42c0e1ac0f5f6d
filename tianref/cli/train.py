"""``python cli.py train``: one training run into a run directory.

This module is the command line: the options, their checks (bad input: one line, exit 2, before
anything is written), and the run they prepare under the run directory's lock: a new run's config.json,
or a ``--resume``'s checked state (tianref/resume.py). Training the prepared run, its divergence record
and its JSON summary are tianref/cli/train_run.py (``launch``), which train-batch shares.

    train_cmd          the click command
    check_train_args   train's parsing and validation of an argument list, touching nothing (sweeps)
    CHECKED, COMMAND, BATCH_BLAS, BATCH
                       context set by check_train_args and train-batch (BATCH: train_run's)
"""
from __future__ import annotations

import contextvars
import os
import sys

import click
import numpy as np  # host: the length of an --init-from train_idx

from tianref import identity, memory, resume as resume_mod, rundir, runs
from tianref.backend import environment_info, get_xp, git_state
from tianref.paths import check_one_line, check_out_writable
from tianref.cli.common import CHECK_DEVICE, CHECK_FOLDER, RAISE_ERRORS, THREADS, Float, GivenPath, Int, reports_errors
from tianref.cli.resume_options import refuse_changes_on_resume
from tianref.cli.train_run import (  # noqa: F401  (BATCH, record_divergence, summary_of: cli/batch.py reads them here)
    BATCH, Prepared, launch, note as _note, record_divergence, summary_of)
from tianref import threads as blas_threads
from tianref.data import n_train_from_frac
from tianref.config import (DTYPES, GRAM_MODES, METRIC_SETS, OPTIMIZERS, RIDGE_EVALS, TOP_LAYERS,
                            TrainConfig, idle_settings,
                            parse_eta_schedule, parse_int_list, parse_list, validate)
from tianref.errors import InputError
from tianref.resources import program
from tianref.loss import LOSSES
from tianref.model import ACTIVATIONS

D = TrainConfig()
# set by check_train_args: a --check-only run appends (TrainConfig, init source) of the run it would start
CHECKED = contextvars.ContextVar("checked", default=None)
# the command line config.json records, when it is not this process's own (a member of train-batch)
COMMAND = contextvars.ContextVar("command", default=None)
# set by train-batch: xp_name -> the BLAS thread count the batch trains a member with, in place of the
# member's own --threads (config.json records the count the run's numbers come from)
BATCH_BLAS = contextvars.ContextVar("batch_blas", default=None)
DEFAULT_TRAIN_FRAC = 0.4    # round(0.4 * 71^2) = 2016, the paper's n


@click.command(help="Train sigma(XW)V on modular addition and log the paper's per-epoch diagnostics.\n\n"
               "Writes OUT/config.json, OUT/metrics.jsonl (rows 0..EPOCHS) and OUT/checkpoints/, "
               "shows progress on stderr and prints a one-line JSON summary on stdout.")
@click.option("--xp", "xp_name", type=click.Choice(["numpy", "cupy", "fake"]), default="numpy",
              show_default=True, help="Array backend: numpy (CPU) or cupy (GPU; needs the [gpu] extra). "
              "'fake' is the strict CI backend.")
@click.option("--M", "M", type=Int(), default=D.M, show_default=True,
              help="Modulus M (classes, operands). With --group: |H|, taken from the group (a different "
                   "--M is refused); expr: tables need it.")
@click.option("--group", "group", default="", show_default=True,
              help="Task table: empty = Z_M, (a + b) mod M. Else a finite group H whose Cayley table labels "
                   "the pairs, y = a.b: Z<n>, D<n>, S<n> (n <= 5), A<n> (3..5), Q8, products such as "
                   "Z3xZ5 or Q8xZ3, table:FILE (refused unless a group), or expr:EXPR (an expression in x, y "
                   "mod --M; trains without irrep keys). Rows add irrep_coverage, irrep_purity_med and "
                   "irrep_energy (docs/groups.md §6); `python cli.py group SPEC` shows the irreps.")
@click.option("--K", "K", type=Int(), default=D.K, show_default=True, help="Hidden width K.")
@click.option("--n-train", type=Int(), default=None,
              help="Training pairs (the first n_train of a seeded permutation of the M^2 pairs). "
                   "Default: round(0.4 M^2), which is the paper's 2016 at M = 71.")
@click.option("--train-frac", type=Float(), default=None,
              help="Training fraction p instead of --n-train: n_train = round(p M^2) (Python rounding).")
@click.option("--eta", type=Float(), default=D.eta, show_default=True, help="L2 weight decay eta (0 = control).")
@click.option("--eta-schedule", default=None,
              help="Piecewise-constant weight decay START:ETA,... e.g. 0:2e-4,250:0: the step from row t "
                   "to t+1 uses the ETA of the last START <= t. Starts ascend from 0. Replaces --eta.")
@click.option("--lr", type=Float(), default=D.lr, show_default=True,
              help="Learning rate of every --optimizer (Adam, AdamW, SGD, Muon), one value for W and V; "
                   "SGD needs a far larger one (docs/math.md §9).")
@click.option("--epochs", type=Int(), default=D.epochs, show_default=True,
              help="Full-batch steps E; rows 0..E are logged.")
@click.option("--seed", type=Int(), default=D.seed, show_default=True,
              help="Seed of the split, init and pair draws (with --init-from, of the independence proxy's "
                   "pairs only).")
@click.option("--act", type=click.Choice(ACTIVATIONS), default=D.act, show_default=True, help="Activation sigma.")
@click.option("--loss", type=click.Choice(LOSSES), default=D.loss, show_default=True,
              help="tian: the class-centred MSE the paper's code trains; theory: 1/2||P_perp(Y - Yhat)||^2; "
                   "ce: softmax cross-entropy on the raw outputs (torch CrossEntropyLoss).")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default=D.optimizer, show_default=True,
              help="adam: coupled L2 (torch Adam(weight_decay)); adamw: decoupled decay; sgd: momentum "
                   "and coupled L2 (torch SGD(momentum, weight_decay)); muon: W by Muon (decoupled decay), "
                   "V by Adam (coupled L2), as Tian's code.")
@click.option("--momentum", type=Float(), default=D.momentum, show_default=True,
              help="SGD momentum (dampening 0, no Nesterov); used by --optimizer sgd only (refused with another optimizer).")
@click.option("--top-layer", type=click.Choice(TOP_LAYERS), default=D.top_layer, show_default=True,
              help="trained: V is learned; ridge: every training step first sets V = (F^T F + lam I)^-1 "
                   "F^T T on the training set (no gradient through the solve), as Tian's set_weight_reg "
                   "does (see --ridge-eval).")
@click.option("--ridge-reg", type=Float(), default=D.ridge_reg, show_default=True,
              help="lam of the ridge top layer (needs --top-layer ridge).")
@click.option("--ridge-eval", type=click.Choice(RIDGE_EVALS), default=D.ridge_eval, show_default=True,
              help="With --top-layer ridge: held = Tian's loop: the optimizer then steps W and V from the "
                   "solved V, and rows, diagnostics and checkpoints see the V held (last solve + one step; "
                   "row 0: the initial V); current = only W is trained and every row sees V = ridge(W). "
                   "W's trajectory is the same; a stored ridge run without the key is 'current'.")
@click.option("--init-scale", type=Float(), default=D.init_scale, show_default=True,
              help="alpha: multiplies the initial V (drawn or from --init-from).")
@click.option("--output-scale", type=Float(), default=D.output_scale, show_default=True,
              help="beta: Yhat = beta sigma(XW) V (the gradients follow).")
@click.option("--dtype", type=click.Choice(DTYPES), default=D.dtype, show_default=True,
              help="Training dtype (float64 for audits).")
@click.option("--windows", default="20", show_default=True,
              help="Rolling windows for the update spectra, e.g. 5,10,20,30 (one pass for all).")
@click.option("--gram-dtype", type=click.Choice(GRAM_MODES), default=D.gram_dtype, show_default=True,
              help="Precision of the rolling update Gram: float64 (exact float32 differences, float64 "
                   "Gram and eigenvalues); float32 (the paper's code: updates, Gram and eigenvalues in "
                   "float32, inner products by the BLAS); float32-seq (float32 with strictly sequential "
                   "sums, NumPy only). In float32, sigma3 below ~100 float32 epsilons of sigma1 is noise.")
@click.option("--log-grams", default="", show_default=True,
              help="Also log the spectra of these Gram modes beside the main one, e.g. "
                   "float32,float32-seq: keys W_sigma_f32, W_gap23_f32seq, V_... (window suffix last: "
                   "W_gap23_f32_w5).")
@click.option("--metrics", "metric_set", type=click.Choice(METRIC_SETS), default=D.metrics, show_default=True,
              help="core skips the K x K Gram metrics (ftf_ratio, rho_tian) and the Fourier/energy ones "
                   "(freq_coverage, freq_purity_med, energy_med).")
@click.option("--tail-rank", default=D.tail_rank, show_default=True,
              help="r of the logged spectral tail W_tail = sum_{i>r} s_i(W)^2 / ||W||_F^2: an integer, or "
                   "relative to M (M, M-c, M+c). M-1: the grokked x^2 solution puts W's energy in two "
                   "directions per frequency, (M-1)/2 frequencies (docs/edge-and-clocks.md §4).")
@click.option("--checkpoint-epochs", default="", show_default=True,
              help="Comma-separated epochs to save checkpoints/epoch_NNNNN.npz.")
@click.option("--init-from", type=GivenPath(dir_okay=False), default=None,
              help="Start from arrays W (2M x K), V (K x M), train_idx in an .npz; test = complement.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Run directory.")
@click.option("--resume", is_flag=True, help="Continue the run in OUT from its resume state, after checking that config.json, "
                   "the state and metrics.jsonl are one run (fingerprint, split and row digests); may "
                   "raise --epochs and change --checkpoint-epochs, other options must not change the run. A run "
                   "already complete is left untouched (exit 0); a run that diverged is refused.")
@click.option("--overwrite", is_flag=True, help="Replace the run in a non-empty OUT (refused unless OUT is a run "
              "directory: config.json, metrics.jsonl, checkpoints/, its .lock and nothing else).")
@click.option("--if-unfinished", is_flag=True,
              help="A start (fresh or --overwrite) that finds OUT, once it holds OUT's lock, already holding this "
                   "very run finished (its fingerprint, settings, state and row digests checked as --resume checks "
                   "them; rows 0..E and checkpoints/final.npz, or a divergence record) changes nothing and prints "
                   "the run's summary with \"already_complete\" (or \"already_diverged\"): true (exit 0). A sweep "
                   "starts its runs with it, so two sweeps on one tree never train a run twice.")
@click.option("--no-resume-state", is_flag=True,
              help="Delete checkpoints/resume.npz when the run finishes (it holds the update buffer, "
                   "(8 + 4) bytes x 3MK x max window with the default float64 Gram and float32 training: the "
                   "update ring and the weight-decay ring; ~110 MB at the headline size).")
@click.option("--threads", type=THREADS, default=None, show_default=blas_threads.DEFAULT_TEXT,
              help="BLAS/OpenMP threads of this process, set at run time (the BLAS is loaded before the "
                   "options are read). 1 by default: on a shared 2-core machine (load 4-7) the README's quick "
                   "run took 6-21 s with 1 thread and 10-125 s with 2 (oversubscribed threads spin); raise it "
                   "on an idle many-core machine. With --xp cupy only the host BLAS is affected. With --resume "
                   "and neither --threads nor a thread variable, the run's own count (config.json), with which "
                   "it continues bit for bit; another count is used with a note: a BLAS's sums depend on it.")
@click.option("--check-only", is_flag=True, hidden=True,
              help="Validate every input (as a sweep does before starting runs), touch nothing, exit 0.")
@click.pass_context
@reports_errors
def train_cmd(ctx, xp_name, M, K, n_train, train_frac, eta, eta_schedule, lr, epochs, seed, act, loss, optimizer,
              momentum, top_layer, ridge_reg, ridge_eval, init_scale, output_scale, dtype, windows, metric_set,
              checkpoint_epochs, init_from, out, resume, overwrite, if_unfinished, no_resume_state, gram_dtype,
              log_grams, tail_rank, check_only, group, threads):
    from tianref import train as engine

    given = {p for p in ctx.params if ctx.get_parameter_source(p) == click.core.ParameterSource.COMMANDLINE}
    rundir.check_out_path(out)
    # a new run about to start here (a check may be for a run elsewhere; a resume's Session checks the
    # files it rewrites)
    if not check_only and not resume:
        check_out_writable(out, overwrite and not rundir.is_empty(out))
    if resume and overwrite:
        raise InputError("give --resume or --overwrite, not both")
    if resume and if_unfinished:
        raise InputError("--if-unfinished is for a start (fresh or --overwrite); --resume leaves a complete run "
                         "untouched by itself")
    batch_blas = BATCH_BLAS.get()
    threads_note = None                         # said once the run really continues (prepare)
    if resume and os.path.isdir(out):
        threads, threads_note = _resume_threads(out, threads, batch_blas, xp_name)
    if not check_only:                          # for the whole command; restored when it ends
        ctx.with_resource(blas_threads.limits(threads if batch_blas is None else batch_blas(xp_name)))

    if resume:
        refuse_changes_on_resume(ctx, given, out)
        changes = {}
        if "epochs" in given:
            changes["epochs"] = epochs
        if "checkpoint_epochs" in given:
            changes["checkpoint_epochs"] = parse_int_list(checkpoint_epochs, "--checkpoint-epochs")
        try:
            stored = resume_mod.stored_config(out)[1]
        except InputError:                  # a writer holding OUT (an --overwrite that moved its run aside)
            holder = rundir.lock_holder(out)                 # is what to name, not the folder it left
            if holder is not None:
                raise rundir.in_use(out, holder) from None
            raise
        _check_memory(stored)
        if check_only:
            if CHECK_FOLDER.get():                      # as prepare() will find it (reads only)
                rundir.Session(out, resume=True, note=_note)
                rundir.check_writable(out)
                if resume_mod.complete_without_state(out, changes) is None:
                    plan = resume_mod.check(out, changes)
                    _check_gram_backend(plan.cfg, xp_name)
            if CHECK_DEVICE.get():
                get_xp(xp_name)
            return
        xp = get_xp(xp_name)
        session = rundir.Session(out, resume=True, note=_note)

        def complete(cfg, fingerprint, digest):         # nothing to train: no file is touched
            session.nothing_changed()                   # not even the lock file
            _note(f"{out} is already complete (rows 0..{cfg.epochs} and checkpoints/final.npz); "
                  "nothing to continue, nothing was changed")
            return Prepared(engine, cfg, xp, xp_name, out, None, None, None, no_resume_state, session,
                            fingerprint, digest, complete=True)

        def prepare():                                  # under the lock
            cfg = resume_mod.complete_without_state(out, changes)    # trained with --no-resume-state
            if cfg is not None:
                _check_gram_backend(cfg, xp_name)
                return complete(cfg, None, None)
            plan = resume_mod.check(out, changes)
            cfg = plan.cfg
            _check_gram_backend(cfg, xp_name)
            if resume_mod.already_complete(out, plan):
                return complete(cfg, plan.fingerprint, plan.digest)
            state = engine.state_from_arrays(xp, cfg, plan.ck)
            problem, _ = engine.setup(cfg, xp, init={k: plan.ck[k] for k in ("W", "V", "train_idx", "test_idx")})
            if plan.dropped:
                _note(f"dropping {plan.dropped} line(s) of metrics.jsonl after the resume epoch "
                      f"{plan.epoch} (they are recomputed)")
            resume_mod.commit(out, plan, _command_line())
            if threads_note:
                _note(threads_note)
            session.started()
            return Prepared(engine, cfg, xp, xp_name, out, state, problem, None, no_resume_state, session,
                            plan.fingerprint, plan.digest)
        launch(session, prepare)
    else:
        if init_from:                                   # recorded, and printed in a sweep's commands
            check_one_line(init_from, "--init-from")
        init = runs.load_npz(init_from) if init_from else None
        if init is not None:
            identity.check_state(init, init_from)            # a checkpoint must be as its run wrote it
            if "n_train" in given or "train_frac" in given:
                raise InputError("--init-from fixes the split (its train_idx); drop --n-train/--train-frac")
            # M and K follow the file unless given explicitly; given, they must be the file's
            _check_init_sizes(init_from, init, {"M": M, "K": K}, given)
            if "V" in init and init["V"].ndim == 2:
                if "M" not in given:
                    M = int(init["V"].shape[1])
                if "K" not in given:
                    K = int(init["V"].shape[0])
            if "train_idx" not in init:
                raise InputError(f"--init-from {init_from}: no array 'train_idx' (needs W, V, train_idx)")
            idx = np.asarray(init["train_idx"])           # said of the file, before n_train is read off it
            if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
                raise InputError(f"--init-from {init_from}: its train_idx must be a 1-d integer array "
                                 f"(got dtype {idx.dtype}, shape {idx.shape})")
            n_train = int(len(idx))
            if not 2 <= n_train < M * M:
                raise InputError(f"--init-from {init_from}: its train_idx holds {n_train} pairs; it must hold "
                                 f"between 2 and M^2 - 1 = {M * M - 1}")
        group, M, group_digest = _resolve_group(group, M, "M" in given or init is not None)
        if group and M < 2:                             # (before the split, whose range would be empty)
            raise InputError(f"--group {group}: a group of order {M} has no pair to hold out; the task needs "
                             "order >= 2")
        if init is None and train_frac is not None:
            if n_train is not None:
                raise InputError("give --n-train or --train-frac, not both")
            if not 0 < train_frac < 1:
                raise InputError(f"--train-frac must be in (0, 1) (got {train_frac})")
            n_train = n_train_from_frac(M, train_frac)
            if not 2 <= n_train < M * M:                # said in the option given, not as --n-train
                raise InputError(f"--train-frac {train_frac:g} gives n_train = round({train_frac:g} M^2) = {n_train} "
                                 f"at M = {M}; it must give 2..{M * M - 1} (M^2 - 1)")
        elif init is None and n_train is None:
            n_train = n_train_from_frac(M, DEFAULT_TRAIN_FRAC)
        if "ridge_eval" in given and top_layer != "ridge":   # given, even at its default: it would do nothing
            raise InputError("--ridge-eval needs --top-layer ridge")
        chosen = {"optimizer": optimizer, "top_layer": top_layer}
        idle = idle_settings(chosen)                    # likewise: they would change the run's identity only
        for k in ("ridge_reg", "momentum"):
            if k in idle and k in given:
                raise InputError(IDLE_REFUSED[k].format(**chosen))
        schedule = ()
        if eta_schedule is not None:                    # checked before anything is written
            if "eta" in given:
                raise InputError("give --eta or --eta-schedule, not both")
            schedule = parse_eta_schedule(eta_schedule)
            eta = schedule[0][1]
            if len(schedule) == 1:                      # the one-entry schedule is plain --eta
                schedule = ()
        cfg = validate(TrainConfig(
            M=M, K=K, n_train=n_train, eta=eta, lr=lr, epochs=epochs, seed=seed, act=act, loss=loss,
            optimizer=optimizer, momentum=momentum, top_layer=top_layer, ridge_reg=ridge_reg,
            ridge_eval=ridge_eval,
            init_scale=init_scale, output_scale=output_scale, dtype=dtype,
            windows=parse_int_list(windows, "--windows"),
            gram_dtype=gram_dtype, log_grams=parse_list(log_grams, "--log-grams", str),
            metrics=metric_set, checkpoint_epochs=parse_int_list(checkpoint_epochs, "--checkpoint-epochs"),
            eta_schedule=schedule, tail_rank=tail_rank, group=group, group_digest=group_digest))
        _check_gram_backend(cfg, xp_name)
        _check_memory(cfg)
        if init is not None:
            engine.check_init(cfg, init)
        if not check_only:
            _note_idle_settings(cfg)
        ident = None                                    # the run's identity, once (config.json records it)
        keep_if = None
        if if_unfinished:                               # this very run, finished: found under the lock
            ident = _identity(engine, cfg, init)
            keep_if = lambda o: _holds_this_run(o, cfg, ident["fingerprint"])     # noqa: E731
        if check_only:
            if CHECK_FOLDER.get():                      # in use, not empty, not a run to replace, not
                check_out_writable(out, overwrite and not rundir.is_empty(out))   # writable here: refused
                rundir.Session(out, overwrite=overwrite, note=_note, keep_if=keep_if)
            if CHECK_DEVICE.get():
                get_xp(xp_name)
            checked = CHECKED.get()
            if checked is not None:                     # the caller wants the run's identity
                checked.append((cfg, identity.init_digest(init) if init is not None else identity.SEED_INIT))
            return
        xp = get_xp(xp_name)
        session = rundir.Session(out, overwrite=overwrite, note=_note, keep_if=keep_if)
        ident = ident or _identity(engine, cfg, init)

        def prepare():                                  # under the lock
            if session.kept:                            # another process finished this very run
                _note(f"{out} already holds this run, "
                      + ("diverged (config.json records where); " if session.kept == "diverged" else
                         f"complete (rows 0..{cfg.epochs} and checkpoints/final.npz); ")
                      + "nothing to train, nothing was changed")
                return Prepared(engine, cfg, xp, xp_name, out, None, None, None, no_resume_state, session,
                                ident["fingerprint"], None,
                                complete="diverged" if session.kept == "diverged" else True)
            runs.atomic_write_json(os.path.join(out, "config.json"), {
                "config": cfg.to_dict(), "identity": ident, "versions": environment_info(xp),
                "source": git_state(),                  # the checkout that trains it (None outside git)
                "command": _command_line(), "init_from": os.path.abspath(init_from) if init_from else None,
                "train_frac": train_frac})
            return Prepared(engine, cfg, xp, xp_name, out, None, None, init, no_resume_state, session,
                            ident["fingerprint"], None)
        launch(session, prepare)


def _check_init_sizes(path, init: dict, sizes: dict, given) -> None:
    """InputError when --M or --K, given, differs from the M or K of the --init-from file's W (2M, K): the
    message names both sizes (check_init would name only the array shapes)."""
    W = init.get("W")
    if getattr(W, "ndim", 0) != 2 or W.shape[0] % 2:
        return                                          # misshaped: check_init says how
    for name, have in (("M", W.shape[0] // 2), ("K", W.shape[1])):
        if name in given and sizes[name] != have:
            raise InputError(f"--init-from {path}: the file's W has shape {tuple(W.shape)}, so its {name} = {have} "
                             f"(W is (2M, K)), but --{name} {sizes[name]} was given; drop --{name} ({name} follows "
                             f"the file) or give an init file made for {name} = {sizes[name]}")


def _resume_threads(out, threads, batch_blas, xp_name) -> tuple:
    """(--threads to use, note or None) for --resume of the run in ``out``. Neither --threads nor a thread
    variable given: the run's own count (threads.of_run), with which it continues bit for bit, unless this
    machine has fewer CPUs. Otherwise as given (a batch: its count); the note says when that differs from
    the run's own: a BLAS's sums depend on its thread count, so the rows that follow may differ in their
    last bits from the run continued at its own."""
    own = blas_threads.of_run(out)
    if batch_blas is None and threads is None and blas_threads.from_env() is None and own is not None \
            and own <= (os.cpu_count() or 1):
        return own, None
    use = batch_blas(xp_name) if batch_blas is not None else blas_threads.resolve(threads)
    if own is None or own == use:
        return threads, None
    return threads, (f"{out} was trained with {own} BLAS thread(s) and continues with {use}: its rows from here "
                     f"on may differ in their last bits from the run continued with {own} (a BLAS's sums depend "
                     "on its thread count; config.json records each session's)")


def _resolve_group(spec, M, M_fixed: bool):
    """(stored spec, M, digest) of --group: M = |H| unless --M (or an --init-from file) fixes it, when a
    different order is refused; an expr: table takes M as given. table: paths are made absolute, and the
    file's table is recorded by its digest (groups.table_digest; "" for every other spec)."""
    from tianref.groups import table_digest, task_group
    spec = (spec or "").strip()
    if not spec:
        return "", M, ""
    if spec.startswith("table:"):
        spec = "table:" + os.path.abspath(spec[len("table:"):])
    if spec.startswith("expr:") and not M_fixed:      # as the group command: no default modulus for it
        raise InputError(f"--group {spec}: an expression needs the modulus M (--M)")
    G = task_group(spec, M if (M_fixed or spec.startswith("expr:")) else None)
    if not G.is_group:
        _note(f"{G.name} is a task table, not a group: no irreps, so no irrep_* keys are logged")
    if not spec.startswith(("table:", "expr:")):
        spec = G.name                       # one spelling per group: 3x4 and 6 are stored as Z3xZ4 and Z6
    return spec, G.order, (table_digest(G.table) if spec.startswith("table:") else "")


IDLE_REFUSED = {"ridge_reg": "--ridge-reg needs --top-layer ridge",      # config.USED_ONLY_WITH, given alone
                "momentum": "--momentum is SGD's (--optimizer sgd); --optimizer {optimizer} does not use it"}


def _identity(engine, cfg, init) -> dict:
    """The identity block a new run records in config.json (tianref/identity.py)."""
    return identity.record(cfg, identity.init_digest(init) if init is not None else identity.SEED_INIT,
                           *engine.split_of(cfg, init))


def _holds_this_run(out: str, cfg, fingerprint: str):
    """"complete" or "diverged" when OUT holds the run of ``fingerprint`` finished (--if-unfinished), checked
    as --resume and a sweep check a run: config.json's settings give the fingerprint it records, its state
    carries it and metrics.jsonl's rows chain to the state's digest (identity.check_log); complete = rows
    0..E and final.npz at E, diverged = config.json's record of it. None otherwise."""
    from tianref.analysis.records import is_complete
    path = os.path.join(out, "config.json")
    try:
        meta = runs.read_config(out)
        block = identity.stored_block(meta, path)
        if block is None or block["fingerprint"] != fingerprint:
            return None
        identity.check_log(out, meta)                   # the settings hash to it, its state carries it and
                                                        # the rows chain to the state's digest
    except (InputError, OSError, ValueError, KeyError, TypeError):
        return None
    if runs.divergence(meta) is not None:
        return "diverged"
    return "complete" if is_complete(out, cfg.epochs) else None


def _note_idle_settings(cfg) -> None:
    """Say when a valid setting can have no effect in this run: a tail rank at or above W's rank (W_tail is 0
    on every row), a weight-decay switch after the last epoch (the run never reaches it)."""
    rank = min(2 * cfg.M, cfg.K)
    if cfg.tail_r >= rank:
        _note(f"--tail-rank {cfg.tail_rank} gives r = {cfg.tail_r}, at least min(2M, K) = {rank}, the largest rank "
              "W can have: W_tail is 0 on every row")
    late = [e for e, _ in cfg.eta_schedule if e > cfg.epochs]
    if late:
        _note(f"--eta-schedule switches at epoch(s) {', '.join(map(str, late))}, after the last epoch "
              f"{cfg.epochs}: the run never reaches them")


def check_train_args(args, device: bool = True):
    """Run train's own option parsing and validation on ``args`` (what follows ``train`` on a
    command line) without touching the filesystem; InputError with train's message if bad.
    ``device=False`` skips opening the backend (--xp cupy on a machine without the GPU).
    Returns (TrainConfig, init source) of a new run (tianref/identity.py), None for --resume."""
    token, dev, box = RAISE_ERRORS.set(True), CHECK_DEVICE.set(device), CHECKED.set([])
    try:
        train_cmd.main(args=["--check-only", *args], prog_name="train", standalone_mode=False)
        got = CHECKED.get()
        return got[0] if got else None
    except click.ClickException as exc:
        raise InputError(exc.format_message()) from None
    finally:
        RAISE_ERRORS.reset(token)
        CHECK_DEVICE.reset(dev)
        CHECKED.reset(box)


def _check_memory(cfg):
    """Refuse a run whose arrays would not fit in this machine's memory (tianref.memory), before
    anything is allocated; not for a command checked here to run elsewhere (a SLURM script)."""
    if CHECK_DEVICE.get():
        memory.check_run(cfg)


def _check_gram_backend(cfg, xp_name):
    if xp_name == "cupy" and "float32-seq" in (cfg.gram_dtype, *cfg.log_grams):
        raise InputError("the float32-seq Gram needs a strictly sequential sum, which CuPy's cumsum "
                         "(a parallel scan) is not; use --xp numpy or drop float32-seq")


def _command_line() -> str:
    if COMMAND.get() is not None:
        return COMMAND.get()
    return " ".join([program()] + sys.argv[1:])
