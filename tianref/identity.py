"""A run's identity: the fingerprint of what defines it, and the digest of the rows it has logged.

A run directory is only ever continued, skipped as done or replaced when it is provably the run asked
for. Three hashes (SHA-256, hex) make that checkable from the files alone:

    F    fingerprint = sha256 of the canonical JSON {"config": C, "init": I}, where
             C = the run's TrainConfig (validated, ``to_dict``) without the settings ``--resume`` may
                 change (epochs, checkpoint_epochs): every setting that defines the trajectory,
                 the eta schedule, the group, the seed included;
             I = "seed" when the split and the initial weights are drawn from C's seed
                 (data.init_host), else the digest of the --init-from arrays (``init_digest``)
    S    split digest = sha256 of train_idx and test_idx (int64, in their stored order)
    D_t  row digest after row t: D_{-1} = F, D_t = sha256(D_{t-1} + "\\n" + line_t), line_t the exact
         text of row t in metrics.jsonl (without its newline): a hash chain, so D_r pins rows 0..r

Where they are kept
    config.json                      "identity": {"scheme": 1, "fingerprint": F, "init": I, "split": S,
                                     "sealed_after": e (its states of epochs > e carry a seal: -1 for a run
                                     started with seals, r when a version with seals first resumed it from
                                     epoch r; absent in runs written before seals, and in runs of the
                                     versions that wrote seals before they recorded this)}
    every checkpoint and resume.npz  arrays "fingerprint" (F) and "rows_digest" (D_e, e = its epoch), and
                                     "state_digest": sha256 of the file's other arrays (name, dtype, shape,
                                     bytes): ``--resume`` (and sweep's check of a resumable run), thm6, edge
                                     and --init-from refuse a file whose arrays were edited or swapped after
                                     it was written (W of another epoch, say; check_state)

``--resume`` (tianref/resume.py) continues a directory only when config.json's settings hash to its
recorded F, the state carries the same F and a split hashing to S, and metrics.jsonl's rows 0..r chain
to the state's D_r. A sweep or ``reproduce`` counts a folder as done only when its F equals the F of the
run it would start (tianref/experiments/jobs.py). ``summarize``/``plot`` read a run's log only when its final
(else resume) state vouches for it (``check_log``); ``thm6``/``edge`` refuse another run's checkpoint
(``check_checkpoint``, the seal included) and replay only from a config.json that gives its F and, for an
--init-from run, from its unchanged init file (``replay_init``).

The backend (numpy, cupy) and the thread count are not settings of the run: they change rounding, not
the trajectory's definition, so F leaves them out and a run may be continued on another backend; config.json
records both for every session (versions, resumed[]).

A config.json written before identities existed has no "identity"; ``of_run`` then recomputes F from
its config when the run was drawn from its seed (the only case where F is a function of config.json).
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np  # host arrays only (split and init digests)

from tianref.errors import InputError

SCHEME = 1
MUTABLE = ("epochs", "checkpoint_epochs")       # what --resume may change: not part of F
SEED_INIT = "seed"
KEY = "identity"                                # config.json's block
STATE_KEY = "state_digest"                      # a checkpoint's seal over its own arrays (state_digest)
SEALED_AFTER = "sealed_after"                   # config.json's identity: its states of later epochs carry seals


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical(cfg) -> dict:
    """The settings F covers: ``cfg.to_dict()`` without MUTABLE."""
    return {k: v for k, v in cfg.to_dict().items() if k not in MUTABLE}


def fingerprint(cfg, init: str = SEED_INIT) -> str:
    """F of a validated TrainConfig and its init source ("seed" or an ``init_digest``)."""
    text = json.dumps({"config": canonical(cfg), "init": init}, sort_keys=True, separators=(",", ":"))
    return _sha(text.encode())


def _array_bytes(a) -> bytes:
    a = np.ascontiguousarray(a)
    return f"{a.dtype.str}{a.shape}".encode() + a.tobytes()


def state_digest(arrays: dict) -> str:
    """The seal of a checkpoint's arrays (STATE_KEY): sha256 over every array but the seal itself, by name,
    of its name, dtype, shape and bytes in C order, as ``runs.save_npz`` stores them and np.load returns
    them."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        if k != STATE_KEY:
            h.update(k.encode() + b"\0" + _array_bytes(np.asarray(arrays[k])))
    return h.hexdigest()


def check_state(ck: dict, path: str, meta=None) -> None:
    """A checkpoint's arrays are the ones its run wrote: their seal, where the file carries one (files
    written before seals carry none), equals state_digest of what was read (InputError otherwise). With
    the run's config.json ``meta``: a state of an epoch after its identity's SEALED_AFTER (-1 for a run
    this version started, r for one it resumed from epoch r: every state it wrote since) must carry a
    seal, so a seal removed is refused too."""
    block = meta.get(KEY) if isinstance(meta, dict) else None
    after = block.get(SEALED_AFTER) if isinstance(block, dict) else None
    if (STATE_KEY not in ck and _is_int(after) and "epoch" in ck
            and int(ck["epoch"]) > after):
        raise InputError(f"{path}: it carries no seal ('{STATE_KEY}'), though its run seals every state after "
                         f"epoch {after} (config.json's identity): the file was edited or assembled from other files")
    if STATE_KEY in ck and str(ck[STATE_KEY]) != state_digest(ck):
        raise InputError(f"{path}: its arrays are not the ones its run wrote (they no longer match the seal "
                         f"stored with them: the file was edited, or assembled from other files)")


def init_digest(init: dict) -> str:
    """Digest of an --init-from file's W, V, train_idx (and test_idx when given): dtype, shape, bytes."""
    h = hashlib.sha256()
    for k in ("W", "V", "train_idx", "test_idx"):
        if k in init:
            h.update(k.encode() + _array_bytes(np.asarray(init[k])))
    return h.hexdigest()


def split_digest(train_idx, test_idx) -> str:
    """S: the split as int64 arrays in their stored order (the order fixes float summation)."""
    return _sha(_array_bytes(np.asarray(train_idx, dtype=np.int64)) + b"|"
                + _array_bytes(np.asarray(test_idx, dtype=np.int64)))


def chain(digest: str, line: str) -> str:
    """D_t from D_{t-1} and row t's line (no newline)."""
    return _sha((digest + "\n" + line).encode())


def rows_digest(F: str, lines) -> str:
    """D of the given row lines (each without its newline), starting from F."""
    d = F
    for line in lines:
        d = chain(d, line)
    return d


def record(cfg, init: str, train_idx, test_idx) -> dict:
    """config.json's identity block of a new run."""
    return {"scheme": SCHEME, "fingerprint": fingerprint(cfg, init), "init": init,
            "split": split_digest(train_idx, test_idx), SEALED_AFTER: -1}


def first_difference(a: dict, b: dict):
    """The first setting whose value differs between two canonical dicts, as (key, a's, b's), or None.
    A key one side leaves out (an empty schedule, Z_M's group) shows as 'absent'."""
    for k in list(a) + [k for k in b if k not in a]:
        if a.get(k, _ABSENT) != b.get(k, _ABSENT):
            return k, _shown(a, k), _shown(b, k)
    return None


_ABSENT = object()


def _shown(d: dict, k: str) -> str:
    return repr(d[k]) if k in d else "absent"


def stored_block(meta: dict, path: str):
    """config.json's identity block, checked for shape; None when the run predates identities. Its
    "scheme" must be SCHEME (a block of another scheme is not read as this one) and its SEALED_AFTER,
    where present, an integer >= -1 (InputError otherwise: the file was edited)."""
    block = meta.get(KEY)
    if block is None:
        return None
    if not (isinstance(block, dict) and isinstance(block.get("fingerprint"), str)
            and isinstance(block.get("init"), str) and isinstance(block.get("split"), str)):
        raise InputError(f"{path}: its 'identity' is not a {{fingerprint, init, split}} object of strings")
    scheme = block.get("scheme", SCHEME)
    if not _is_int(scheme) or scheme != SCHEME:
        raise InputError(f"{path}: its identity's scheme is {scheme!r}; this version reads scheme {SCHEME} only")
    after = block.get(SEALED_AFTER, -1)
    if not _is_int(after) or after < -1:
        raise InputError(f"{path}: its identity's '{SEALED_AFTER}' is {after!r}, not an epoch >= -1 (the file "
                         "was edited)")
    return block


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def of_run(meta: dict, cfg, path: str):
    """F of a run from its config.json (``meta``) and validated config: the recorded F after checking
    that the settings still hash to it, or, for a run written before identities, F recomputed when its
    split and weights came from its seed. None when it cannot be known (an old --init-from run).
    InputError when config.json's settings no longer hash to the F it records (it was edited)."""
    block = stored_block(meta, path)
    if block is None:
        return fingerprint(cfg) if not meta.get("init_from") else None
    F = fingerprint(cfg, block["init"])
    if F != block["fingerprint"]:
        raise InputError(f"{path}: its settings do not give the fingerprint it records (the file was "
                         "edited after the run started, or mixed with another run's)")
    return F


def of_arrays(ck: dict):
    """(F, D) stored in a checkpoint's arrays, or (None, None) for a state written before identities."""
    if "fingerprint" not in ck or "rows_digest" not in ck:
        return None, None
    return str(ck["fingerprint"]), str(ck["rows_digest"])


def check_epoch(ck: dict, path: str, epoch) -> None:
    """A checkpoint read as the state at ``epoch`` must record that epoch (InputError naming the file):
    a file renamed, or copied over another epoch's name, would otherwise be analysed as that epoch."""
    if "epoch" in ck and int(ck["epoch"]) != int(epoch):
        raise InputError(f"{path} holds the state at epoch {int(ck['epoch'])}, not at epoch {int(epoch)} "
                         "(a checkpoint renamed, or copied over another's name)")


def check_checkpoint(meta, ck: dict, path: str, epoch=None) -> None:
    """A checkpoint read as a state of the run whose config.json is ``meta`` must be as its run wrote it
    (its seal, ``check_state``), carry that run's fingerprint (checked when both record one) and, read as
    the state at ``epoch``, record that epoch (a checkpoint copied over another's name would otherwise be
    analysed under the wrong epoch); InputError naming the file otherwise."""
    check_state(ck, path, meta)
    if epoch is not None:
        check_epoch(ck, path, epoch)
    block = meta.get(KEY) if isinstance(meta, dict) else None
    F, _ = of_arrays(ck)
    if isinstance(meta, dict) and block is None and F is not None:
        raise InputError(f"{path} records a fingerprint but config.json has no 'identity' block: config.json "
                         "was edited (or replaced by a file written before run identities)")
    if isinstance(block, dict) and F is not None and F != block.get("fingerprint"):
        raise InputError(f"{path} belongs to another run: its fingerprint {F[:12]} is not config.json's "
                         f"{str(block.get('fingerprint'))[:12]} (a checkpoint copied from another run)")


def check_folder_states(run_dir: str, fingerprint: str) -> None:
    """Every checkpoint in ``run_dir``/checkpoints that records a fingerprint records ``fingerprint``, the
    run's: a state copied in from another run (an epoch checkpoint, final.npz) is named (InputError),
    before a resume carries it forward or an analysis trusts the folder. Reads only the fingerprint arrays.
    (Seals are checked where a state is read: check_state, check_checkpoint.)"""
    folder = os.path.join(run_dir, "checkpoints")
    names = sorted(n for n in os.listdir(folder) if n.endswith(".npz")) if os.path.isdir(folder) else []
    for name in names:
        path = os.path.join(folder, name)
        try:
            with np.load(path, allow_pickle=False) as z:
                F = str(z["fingerprint"]) if "fingerprint" in z.files else None
        except Exception as exc:
            raise InputError(f"cannot read {path} as .npz ({type(exc).__name__}: {exc})") from None
        if F is not None and F != fingerprint:
            raise InputError(f"{path} belongs to another run: its fingerprint {F[:12]} is not this run's "
                             f"{fingerprint[:12]} (a checkpoint copied from another run)")


def check_run_folder(run_dir: str, meta: dict, cfg) -> None:
    """A run directory read for analysis (thm6, edge) is one run: its log and final (or resume) state are
    config.json's (``check_log``), and so is every checkpoint in it (``check_folder_states``)."""
    check_log(run_dir, meta)
    F = of_run(meta, cfg, os.path.join(run_dir, "config.json"))
    if F is not None:
        check_folder_states(run_dir, F)


def state_of(run_dir: str, names=("final.npz", "resume.npz")):
    """(path, F, D, epoch) of the state that vouches for a run's log: the first of ``names`` that exists
    (final.npz, else resume.npz); None when none exists or it predates identities. Reads only those arrays."""
    for name in names:
        path = os.path.join(run_dir, "checkpoints", name)
        if not os.path.isfile(path):
            continue
        try:
            with np.load(path, allow_pickle=False) as z:
                if "fingerprint" not in z.files or "rows_digest" not in z.files:
                    return None
                return path, str(z["fingerprint"]), str(z["rows_digest"]), int(z["epoch"])
        except Exception as exc:
            raise InputError(f"cannot read {path} as .npz ({type(exc).__name__}: {exc})") from None
    return None


def check_log(run_dir: str, meta: dict, states=("final.npz", "resume.npz")) -> None:
    """A run directory read for analysis is one run: config.json's settings give the fingerprint it
    records, its final state (else its resume state; ``states``: the checkpoint names tried, in order)
    carries that fingerprint, and metrics.jsonl's rows 0..e chain to the state's row digest (e = its
    epoch). Nothing is checked for a run written before identities; for one with neither state (no file to
    vouch for the log, e.g. a tree copied without checkpoints) config.json alone: its settings must still be
    valid and give the fingerprint it records (an edited config.json would file the run under a condition
    it never ran). InputError naming the file otherwise (a missing metrics.jsonl included)."""
    from tianref.config import TrainConfig, validate
    cfg_path = os.path.join(run_dir, "config.json")
    if stored_block(meta, cfg_path) is None:
        state = state_of(run_dir, states)          # a run written before identities has no fingerprint there
        if state is not None:
            raise InputError(f"{state[0]} records a fingerprint but {cfg_path} has no 'identity' block: "
                             "config.json was edited (or replaced by a file written before run identities)")
        return
    state = state_of(run_dir, states)
    if not isinstance(meta.get("config"), dict):
        raise InputError(f"{cfg_path}: its 'config' is missing or not an object (the file was edited)")
    try:
        cfg = validate(TrainConfig.from_dict(meta["config"]), read_files=False)   # the log needs no table file
    except InputError as exc:
        raise InputError(f"{cfg_path}: {exc}") from None
    F = of_run(meta, cfg, cfg_path)
    if state is None:
        return
    path, F_ck, D_ck, e = state
    if F_ck != F:
        raise InputError(f"{path} belongs to another run: its fingerprint {F_ck[:12]} is not config.json's "
                         f"{F[:12]} (files mixed from two runs)")
    log = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(log):                                         # the state vouches for rows 0..e
        raise InputError(f"{log} is missing; {path} is at epoch {e}, so rows 0..{e} must be there")
    with open(log, "rb") as f:
        data = f.read()
    try:
        lines = data.decode("utf-8").split("\n")[:-1]                     # whole lines only
    except UnicodeDecodeError as exc:
        raise InputError(f"{log}: not UTF-8 text (bad byte at offset {exc.start})") from None
    if len(lines) < e + 1 or rows_digest(F, lines[:e + 1]) != D_ck:
        raise InputError(f"{log} is not the log this run wrote: its rows 0..{e} do not match the digest in "
                         f"{path} (replaced, cut or mixed with another run's)")


def replay_init(meta: dict, cfg, path: str, load):
    """The init arrays a replay of the run whose config.json (at ``path``) is ``meta`` must start from:
    None for a run drawn from its seed, else its --init-from file read with ``load`` and checked against
    the digest recorded when the run started. Also checks that config.json's settings still give its
    fingerprint (``of_run``). InputError when the file is gone, changed, or config.json was edited."""
    of_run(meta, cfg, path)
    block = stored_block(meta, path)
    src = meta.get("init_from")
    if block is None or block["init"] == SEED_INIT:
        return load(src) if (block is None and src) else None
    if not isinstance(src, str) or not src:
        raise InputError(f"{path}: the run started from an --init-from file but config.json names none; "
                         "it cannot be replayed")
    init = load(src)
    if init_digest(init) != block["init"]:
        raise InputError(f"--init-from file {src} has changed since the run started (its digest is not "
                         f"{path}'s identity.init); the run cannot be replayed from it")
    return init
