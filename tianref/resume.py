"""``train --resume``: check a run directory against its resume state before continuing it.

Nothing is guessed. The resume state (checkpoints/resume.npz) is the source of truth, and a run is
continued only when every part of the directory agrees with it, and it did not diverge (config.json's
"diverged" record, runs.record_divergence: the steps are deterministic, so it would diverge again):

* config.json parses, every value has its field's type, and its ``config`` equals the config
  stored inside resume.npz (apart from ``epochs`` and ``checkpoint_epochs``, the two settings
  ``--resume`` may change);
* every array of the resume state is present with the shape and kind a fresh state of that
  config has (a float array: its dtype) (W, V, Adam moments, the rolling-Gram buffer and Gram, the split), the parameters
  and moments are finite, and the rng state is a valid generator state;
* the resume epoch lies in [0, --epochs], and a lowered --epochs keeps the stored --checkpoint-epochs
  (refused in plain words otherwise: ``check_new_end``) (a run already complete, r = E with final.npz, no row or setting
  to change, is left as it is: ``already_complete``; so is one without a resume state, trained with
  --no-resume-state, whose final.npz vouches for its rows 0..E: ``complete_without_state``);
* metrics.jsonl is UTF-8 and holds exactly the rows 0, 1, ..., r (r = the resume epoch), in order,
  possibly followed by rows r + 1, r + 2, ..., at most up to E (a run killed after its last checkpoint: they
  are dropped and recomputed identically; rows past E would not be, so they are refused) and by one torn
  last line (a kill mid-write: dropped). Anything else
  (a missing, repeated or out-of-order row, a bad line before the end) is refused with a message
  naming the line.

Symbols
    r       epoch of the resume state (steps taken); rows 0..r are logged
    E       --epochs of the continued run
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np  # host arrays of the resume file

from tianref import identity, runs
from tianref.config import TrainConfig, validate
from tianref.errors import InputError

MUTABLE = identity.MUTABLE                       # what --resume may change
_ABSENT = object()                              # a key one side leaves out (e.g. no schedule)


def _shown(d: dict, k: str) -> str:
    return repr(d[k]) if k in d else "absent"


@dataclass
class Plan:
    """A checked resume: what to write (``commit``) and what to continue from."""
    cfg: object             # TrainConfig of the continued run
    meta: dict              # config.json, to be rewritten with the new epochs
    ck: dict                # the resume state's host arrays
    epoch: int              # r
    keep_text: str          # metrics.jsonl rows 0..r
    dropped: int            # later rows and torn lines dropped
    fingerprint: str = None  # F of the run (tianref/identity.py)
    digest: str = None       # D_r, the digest of rows 0..r


def check_new_end(changes: dict, cfg, trained, resumable: bool = True) -> None:
    """InputError, said plainly, when ``--resume --epochs E`` (``changes``) would end the run before what it
    already trained (``trained`` = r, or None when unknown), or, with its stored --checkpoint-epochs
    kept, before one of them (validate would otherwise name only 'checkpoint epoch ... is outside').
    ``resumable``: False for a run without a resume state, which no --epochs continues."""
    E = changes.get("epochs")
    if E is None:
        return
    if trained is not None and E < trained:
        todo = (f"give --epochs {trained} or more to continue it (its earlier epochs stay in its metrics.jsonl "
                "and checkpoints)" if resumable else
                "this run kept no resume state (--no-resume-state), so it cannot be continued")
        raise InputError(f"--epochs {E} is below the {trained} epochs this run has already trained: --epochs is "
                         f"the run's total, not the epochs to add; {todo}")
    late = [e for e in cfg.checkpoint_epochs if e > E] if "checkpoint_epochs" not in changes else []
    if late:
        raise InputError(f"--epochs {E} ends the run before its checkpoint epoch {', '.join(map(str, late))} "
                         f"(--checkpoint-epochs as stored): give --checkpoint-epochs as well, with epochs <= {E}")


def check_past_checkpoints(out: str, changes: dict, trained, cfg) -> None:
    """InputError when ``--resume --checkpoint-epochs`` (``changes``) adds an epoch the run has already
    passed (<= ``trained`` = r, its resume state's epoch) and holds no checkpoint of: the resumed loop
    writes only epochs after r (and r itself only where r is the run's last epoch, its final state), so
    config.json would list a checkpoint that never exists. An epoch of the stored list (``cfg``) stays
    accepted whether or not its file is still there: listing it again claims nothing new."""
    wanted = changes.get("checkpoint_epochs")
    if wanted is None or trained is None:
        return
    E = changes.get("epochs", cfg.epochs)
    missing = [e for e in wanted if e <= trained and not (e == trained == E) and e not in cfg.checkpoint_epochs
               and not os.path.isfile(runs.checkpoint_path(out, e))]
    if missing:
        raise InputError(f"--checkpoint-epochs {', '.join(map(str, missing))}: this run has already passed "
                         f"{'that epoch' if len(missing) == 1 else 'those epochs'} (it resumes from epoch "
                         f"{trained}) and holds no checkpoint of {'it' if len(missing) == 1 else 'them'}; ask "
                         f"for epochs after {trained}, besides those it wrote (replay one with thm6 or edge)")


def _state_epoch(ck):
    """The resume state's epoch r as an int, or None when it has none readable (refused later)."""
    try:
        return int(ck["epoch"]) if "epoch" in ck else None
    except (TypeError, ValueError, OverflowError):
        return None


def stored_config(out: str) -> tuple:
    """(config.json dict, TrainConfig) of a run directory, type-checked."""
    meta = runs.read_config(out)
    path = os.path.join(out, "config.json")
    try:
        cfg = validate(TrainConfig.from_dict(meta["config"]))
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    return meta, cfg


def check(out: str, changes: dict) -> Plan:
    """Check OUT against its resume state (module docstring); ``changes`` = {epochs, checkpoint_epochs}
    given on the command line. Reads only; raises InputError naming what is wrong."""
    from tianref import train as engine            # the engine defines what a state holds
    meta, cfg = stored_config(out)
    gone = runs.divergence(meta)
    if gone is not None:
        raise InputError(f"--resume: {out} {runs.divergence_why(*gone)}; its steps are "
                         "deterministic, so it would diverge there again: nothing to continue (nothing was "
                         "changed; change a setting and start it with --overwrite to train it otherwise)")
    ck_path = runs.checkpoint_path(out)
    if not os.path.isfile(ck_path):
        raise InputError(f"--resume: no {os.path.join('checkpoints', runs.RESUME)} in {out}")
    ck = runs.load_npz(ck_path)
    try:
        ck_cfg = runs.checkpoint_config(ck)
        if ck_cfg is None:
            raise InputError("it stores no config")
        ck_cfg = TrainConfig.from_dict(ck_cfg)
    except InputError as exc:
        raise InputError(f"{ck_path}: {exc}") from None
    a, b = cfg.to_dict(), ck_cfg.to_dict()
    # both sides' keys: to_dict() leaves some keys out (an empty schedule, ridge_eval without ridge), so a key on one side only is a difference
    keys = list(a) + [k for k in b if k not in a]
    differ = [k for k in keys if k not in MUTABLE and a.get(k, _ABSENT) != b.get(k, _ABSENT)]
    if differ:
        k = differ[0]
        raise InputError(f"config.json does not match the resume state: {k} = {_shown(a, k)} in config.json, "
                         f"{_shown(b, k)} in {ck_path} (config.json was edited, or mixed with another run)")
    check_new_end(changes, cfg, _state_epoch(ck))
    check_past_checkpoints(out, changes, _state_epoch(ck), cfg)
    cfg = validate(cfg.replace(**changes))

    template = _template(engine, cfg)
    for k, want in template.items():
        if k not in ck and k.startswith(FORMED_AGAIN):
            continue                             # an earlier version's state: formed from the rings on load
        if k not in ck:
            raise InputError(f"{ck_path}: no array {k!r}; it was not written by this version")
        got = ck[k]
        if got.shape != want.shape or not _same_kind(got, want):
            raise InputError(f"{ck_path}: {k} has shape {got.shape} and dtype {got.dtype}, expected "
                             f"{want.shape} {want.dtype} for this config")
        if got.dtype.kind == "f" and not np.all(np.isfinite(got)):
            raise InputError(f"{ck_path}: {k} has non-finite entries")
    r = int(ck["epoch"])
    if not 0 <= r <= cfg.epochs:
        raise InputError(f"{ck_path}: the resume epoch {r} is outside [0, --epochs = {cfg.epochs}]"
                         + (" (raise --epochs to continue further)" if r > cfg.epochs else ""))
    try:
        rng = np.random.default_rng()
        rng.bit_generator.state = json.loads(str(ck["rng_state"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{ck_path}: rng_state is not a valid generator state ({exc})") from None
    try:
        engine.check_init(cfg, ck)
    except InputError as exc:
        raise InputError(f"{ck_path}: {exc}") from None
    _check_counters(ck, cfg, r, ck_path)
    F, split = _check_identity(meta, cfg, ck, out, ck_path)
    log = os.path.join(out, "metrics.jsonl")
    keep, dropped = check_rows(log, r, cfg.epochs)
    D = identity.rows_digest(F, keep.split("\n")[:-1])
    if D != str(ck["rows_digest"]):
        raise InputError(f"{log} does not hold the rows this run logged: rows 0..{r} do not match the "
                         f"digest in {ck_path} (the log was replaced or mixed with another run's)")
    identity.check_state(ck, ck_path, meta)    # last: a file that fails a check above is named by that check
    identity.check_folder_states(out, F)       # the run's other states too: none carried on from another run
    return Plan(cfg=cfg, meta=meta, ck=ck, epoch=r, keep_text=keep, dropped=dropped, fingerprint=F, digest=D)


def already_complete(out: str, plan: Plan) -> bool:
    """The checked run is finished as it stands: its resume state is at E, no row would be dropped, the
    config would not change (--epochs and --checkpoint-epochs as stored) and checkpoints/final.npz is
    the state at E. Continuing it would only rewrite its files (and record a session): --resume leaves
    it untouched instead."""
    from tianref.analysis.records import is_complete
    return (plan.epoch == plan.cfg.epochs and not plan.dropped and plan.meta.get("config") == plan.cfg.to_dict()
            and is_complete(out, plan.cfg.epochs))


def complete_without_state(out: str, changes: dict):
    """The TrainConfig of a run with no resume state (trained with --no-resume-state) that is finished as it
    stands, as ``already_complete`` reads a run with one: it did not diverge, ``changes`` leave its config
    as stored, rows 0..E are logged and checkpoints/final.npz is the state at E, carrying the run's
    fingerprint and the digest of those rows (InputError naming the file when it carries another run's).
    None otherwise: there is then nothing to continue from (``check`` refuses the missing state)."""
    from tianref.analysis.records import is_complete
    if os.path.isfile(runs.checkpoint_path(out)):
        return None
    meta, cfg = stored_config(out)
    path = os.path.join(out, "config.json")
    if runs.divergence(meta) is not None or identity.stored_block(meta, path) is None:
        return None
    check_new_end(changes, cfg, cfg.epochs if is_complete(out, cfg.epochs) else None, resumable=False)
    cfg = validate(cfg.replace(**changes))
    if meta.get("config") != cfg.to_dict() or not is_complete(out, cfg.epochs):
        return None
    final = runs.checkpoint_path(out, final=True)
    with np.load(final, allow_pickle=False) as z:                # is_complete has read it
        if "fingerprint" not in z.files or "rows_digest" not in z.files:
            return None
    try:
        identity.check_log(out, meta)                            # final.npz vouches for rows 0..E
    except InputError as exc:
        raise InputError(f"--resume: {exc}") from None
    return cfg


def _check_identity(meta, cfg, ck, out, ck_path) -> tuple:
    """(F, S) once config.json's identity, the state's fingerprint and its split agree."""
    path = os.path.join(out, "config.json")
    block = identity.stored_block(meta, path)
    F_ck, D_ck = identity.of_arrays(ck)
    if block is None or F_ck is None:
        where = path if block is None else ck_path
        raise InputError(f"{where} carries no run fingerprint (written before run identities), so the run "
                         "cannot be checked and is not resumed; start it again with --overwrite")
    F = identity.of_run(meta, cfg, path)
    if F_ck != F:
        raise InputError(f"{ck_path} belongs to another run: its fingerprint {F_ck[:12]} is not "
                         f"config.json's {F[:12]} (files mixed from two runs)")
    S = identity.split_digest(ck["train_idx"], ck["test_idx"])
    if S != block["split"]:
        raise InputError(f"{ck_path}: train_idx/test_idx are not this run's split (their digest "
                         f"{S[:12]} is not config.json's {block['split'][:12]})")
    return F, S


def _check_counters(ck, cfg, r, ck_path) -> None:
    """Every step counter of the state equals the resume epoch r (each step advances each by one)."""
    names = ["spec_count"] + [k for k in ("adam_t", "sgd_t", "muon_t") if k in ck]
    for k in names:
        v = ck[k]
        if v.shape != () or v.dtype.kind not in "iu" or int(v) != r:
            shown = v.item() if v.shape == () else f"an array of shape {v.shape}"
            raise InputError(f"{ck_path}: {k} = {shown} but the state is at epoch {r}; every step counter "
                             "must equal it (the state was edited or mixed)")


# arrays a state written before the edge's cross-Grams were kept lacks; train.edge_state forms them from
# the rings (the values the pushes left), so such a state resumes exactly
FORMED_AGAIN = ("edge_C_", "edge_H_")


def _template(engine, cfg) -> dict:
    """The arrays a resume state of ``cfg`` has (a fresh numpy state; a tiny run for the shapes
    of everything that does not scale with the config)."""
    problem, state = engine.setup(cfg, np)
    return {k: np.asarray(v) for k, v in engine.state_arrays(cfg, state, problem, True).items()}


def _same_kind(got, want) -> bool:
    """A float array must have the fresh state's dtype (a float32 W in a float64 run's state holds
    rounded values: another run); integers and strings only their kind (their width carries no value)."""
    if want.dtype.kind == "f":
        return got.dtype == want.dtype
    kinds = {"i": "iu", "u": "iu", "U": "U", "S": "U"}
    return got.dtype.kind in kinds.get(want.dtype.kind, want.dtype.kind)


def check_rows(path: str, r: int, epochs: int | None = None) -> tuple:
    """(text of rows 0..r, number of later or torn lines dropped). Every whole line must be the
    row of its own epoch (line i holds epoch i - 1) and rows 0..r must all be there; only a torn
    last line (no newline) is not checked. With ``epochs`` (E of the continued run) no whole row may
    lie past E: the rows after r are recomputed only up to E, so rows past it would be lost.
    InputError otherwise."""
    if not os.path.isfile(path):
        raise InputError(f"{path} is missing; the resume state is at epoch {r}, so rows 0..{r} must be there")
    lines = runs.read_text(path).split("\n")
    torn = 1 if lines[-1] != "" else 0          # no newline at the end: a kill mid-write
    lines = lines[:-1]
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            raise InputError(f"{path}: line {i + 1} is not a JSON object row; cannot resume") from None
        e = row.get("epoch")
        if not isinstance(e, int) or isinstance(e, bool) or e != i:
            raise InputError(f"{path}: line {i + 1} holds epoch {e!r}, expected {i} (rows must be "
                             f"0, 1, 2, ... in order); cannot resume")
    n = len(lines)
    if n <= r:
        held = "no rows" if n == 0 else f"rows 0..{n - 1}"
        raise InputError(f"{path} holds {held} but the resume state is at epoch {r}: rows {n}..{r} are "
                         "missing (the log was truncated or emptied); cannot resume")
    if epochs is not None and n - 1 > epochs:
        raise InputError(f"{path} holds rows 0..{n - 1}, past --epochs {epochs}: continuing would drop rows "
                         f"{epochs + 1}..{n - 1} and never recompute them; give --epochs {n - 1} or more "
                         "(nothing was changed)")
    return "".join(x + "\n" for x in lines[:r + 1]), n - (r + 1) + torn


def commit(out: str, plan: Plan, command: str) -> None:
    """Cut metrics.jsonl back to rows 0..r and record the resume in config.json (atomic writes)."""
    if plan.dropped:
        runs.atomic_write_text(os.path.join(out, "metrics.jsonl"), plan.keep_text)
    meta = dict(plan.meta)
    meta["config"] = plan.cfg.to_dict()
    block = dict(meta[identity.KEY])
    block.setdefault(identity.SEALED_AFTER, plan.epoch)          # the states it writes from now on are sealed
    meta[identity.KEY] = block
    before = meta.get("resumed")
    from tianref import threads
    from tianref import backend
    meta["resumed"] = (before if isinstance(before, list) else []) + [
        {"from_epoch": plan.epoch, "command": command, "source": backend.git_state(),
         "blas_threads": threads.current(),                      # this session's (train --threads)
         "blas": threads.kernels(), "cpu": backend.cpu_model()}]  # and kernel set: its epochs round by them
    runs.atomic_write_json(os.path.join(out, "config.json"), meta)
