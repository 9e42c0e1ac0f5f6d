"""What ``train --resume`` may change: every other option given with it must agree with the stored run.

An option ``--foo-bar`` is compared with the stored config's ``foo_bar`` (so options added later are
covered without edits here); one with no such field is refused outright, unless ``--resume`` accepts it
(RESUME_OPTIONS). --eta and --eta-schedule both name the weight-decay schedule and are compared by value;
--train-frac names n_train = round(p M^2) and is compared by that count, --group by the name train stores
(a table: path made absolute, 3x4 as Z3xZ4) and --init-from by the arrays of its file (their digest is the
one the run records), so a run's own command line with --resume added is accepted.
"""
from __future__ import annotations

import dataclasses

from tianref import resume as resume_mod, rundir
from tianref.config import INT_TUPLES, parse_eta_schedule, parse_list
from tianref.data import n_train_from_frac
from tianref.errors import InputError
from tianref.groups import stored_group_spec

# options --resume accepts; any other option given with it must agree with the stored config
RESUME_OPTIONS = ("xp_name", "epochs", "checkpoint_epochs", "out", "resume", "no_resume_state",
                  "check_only", "threads")


def refuse_changes_on_resume(ctx, given, out):
    """Every option given with --resume that would change the run is refused.

    An option ``--foo-bar`` is compared with the stored config's ``foo_bar`` (so options added
    later are covered without edits here); one with no such field is refused outright, unless it
    is one --resume accepts (RESUME_OPTIONS).
    """
    stored = None
    for p in ctx.command.params:
        if p.name not in given or p.name in RESUME_OPTIONS or not getattr(p, "opts", None):
            continue
        opt = max(p.opts, key=len)
        field = opt.lstrip("-").replace("-", "_")
        if stored is None:
            try:
                cfg = resume_mod.stored_config(out)[1]
            except InputError:          # a writer holding OUT (an --overwrite that moved its run aside)
                holder = rundir.lock_holder(out)        # is what to name, as train names it
                if holder is not None:
                    raise rundir.in_use(out, holder) from None
                raise
            # config.json leaves out fields that mean nothing for the run (ridge_eval without the ridge
            # top layer, group on Z_M): compared with their values in the run's config all the same
            stored = {**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}, **cfg.to_dict()}
        value = ctx.params[p.name]
        if p.name in ("eta", "eta_schedule"):          # both name the weight-decay schedule: by value
            if _schedule_of(p.name, value) == _schedule_of("stored", stored):
                continue
            raise InputError(f"--resume continues the stored configuration: {opt} {value} differs from the "
                             f"stored {_schedule_text(_schedule_of('stored', stored))}; drop {opt}")
        if p.name == "train_frac":                   # names n_train = round(p M^2): by that count
            n = n_train_from_frac(int(stored["M"]), float(value))
            if n == stored["n_train"]:
                continue
            raise InputError(f"--resume continues the stored configuration: {opt} {value} gives n_train = {n}, "
                             f"the stored n_train is {stored['n_train']}; drop {opt}")
        if p.name == "group" and isinstance(value, str):      # one group, however spelt (a run made before
            if stored_group_spec(value) == stored_group_spec(str(stored.get("group", ""))):   # train stored
                continue                                              # its one name may hold 3x4)
        if p.name == "init_from":                   # the run's own command line names its own file
            _check_same_init(value, out, opt)
            continue
        if field in stored:
            if _same(value, stored[field], opt):
                continue
            raise InputError(f"--resume continues the stored configuration: {opt} {value} differs from "
                             f"the stored {field} = {stored[field]!r}; drop {opt}")
        raise InputError(f"--resume continues the stored configuration; drop {opt}")


def _check_same_init(path, out, opt) -> None:
    """--init-from ``path`` with --resume must name the file the run in ``out`` started from: its arrays
    give the init digest config.json records (identity.init_digest), whatever the path's spelling.
    InputError saying which it is not: a run started from its seed, another file, one that cannot be read."""
    from tianref import identity, runs
    block = runs.read_config(out).get(identity.KEY)
    init = block.get("init") if isinstance(block, dict) else None
    if init is None:                       # a run written before identities: nothing to compare with
        raise InputError(f"--resume continues the stored run; drop {opt}")
    if init == identity.SEED_INIT:
        raise InputError(f"--resume continues the stored run, which started from its seed, not from an "
                         f"--init-from file; drop {opt}")
    if identity.init_digest(runs.load_npz(str(path))) != init:    # load_npz: one line if it cannot be read
        raise InputError(f"--resume continues the stored run: {opt} {path} is not the file it started from "
                         f"(its arrays differ); drop {opt}")


def _schedule_of(name, value) -> tuple:
    """The weight-decay schedule ((start, eta), ...) that --eta, --eta-schedule or a stored config
    (``name`` = 'stored') means; a one-entry schedule is the constant eta, as train reads it."""
    if name == "eta_schedule":
        sched = parse_eta_schedule(value)
    elif name == "eta":
        sched = ((0, float(value)),)
    else:
        sched = tuple((int(t), float(e)) for t, e in value.get("eta_schedule") or [[0, value["eta"]]])
    return sched


def _schedule_text(sched) -> str:
    if len(sched) == 1:
        return f"eta = {sched[0][1]:g}"
    return "eta_schedule = " + ",".join(f"{t}:{e:g}" for t, e in sched)


def _same(value, stored, opt) -> bool:
    if isinstance(stored, list):
        kind = int if opt.lstrip("-").replace("-", "_") in INT_TUPLES else str
        value = list(parse_list(value, opt, kind)) if isinstance(value, str) else list(value)
        return value == stored
    if isinstance(stored, float) or isinstance(value, float):
        return value is not None and float(value) == float(stored)
    return value == stored
