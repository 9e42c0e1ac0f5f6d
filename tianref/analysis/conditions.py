"""Conditions: runs grouped by their config minus the seed, their labels, and each one's eta = 0 control.

Reference: ``docs/paper-protocol.md`` §2 (grok vs control) and §5.5 (the late separation).

Conditions: runs are grouped by their config minus the seed and the keys in ``NON_CONDITION_KEYS``
(where the output went, which backend ran it, how often it printed, what was logged beside the
training), with a setting that plays no part in the run (``config.idle_settings``) at train's default, so the same
protocol run on NumPy and on CuPy lands in one condition; a run from an
--init-from file is a condition of its own (``run_condition``). A condition with
eta > 0 is paired with the eta = 0 condition that matches it in every other key (its control).

Duplicates: two folders hold the same run when they have the same condition, the same seed and the same
init source (config.json's ``identity.init``: "seed" or the digest of the --init-from arrays; before
identities, the ``init_from`` path); for runs from an --init-from file the seed is left out (it draws only
the independence proxy's pairs: same_run_key). Runs with identical fingerprints (``identity.fingerprint``,
tianref/identity.py) are always such a pair; settings the fingerprint covers but the condition leaves out
(``log_grams``, ``tail_rank``) only change what was logged, not the trajectory. A statistic over seeds
counts each run once: :func:`drop_duplicates` keeps the copy with the most rows (then the first folder).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from tianref.analysis.records import RunRecord

# Config keys that say where or how a run was executed, or what it logged, not what was computed.
NON_CONDITION_KEYS = frozenset({
    "seed", "out", "out_dir", "outdir", "run_dir", "dir", "tag", "name", "resume", "xp",
    "backend", "device", "print_every", "eval_every", "progress", "checkpoint_every",
    "checkpoints", "checkpoint_epochs", "quiet", "verbose", "log_grams", "tail_rank",
})


def condition_config(config: dict) -> dict:
    """The settings that define a run's condition: its config minus NON_CONDITION_KEYS, a setting that
    plays no part in it (config.idle_settings: momentum without SGD, ridge_reg without the ridge top layer)
    at train's default, so that such runs share their condition whatever value they hold."""
    from tianref.config import TrainConfig, idle_settings
    out = {k: config[k] for k in sorted(config) if k not in NON_CONDITION_KEYS}
    for k in idle_settings(config) & set(out):
        out[k] = getattr(TrainConfig, k)
    return out


def _key(d: dict) -> str:
    return json.dumps(d, sort_keys=True, default=str)


def run_condition(rec: RunRecord) -> dict:
    """The condition of a run: condition_config of its settings, and for a run that started from an
    --init-from file, "init": that source (config.json's identity.init, the digest of the file's arrays;
    before identities, its ``init_from`` path). Such a run is not a seed replicate of the runs drawn from
    their seeds (its weights and split are the file's), so it forms a condition of its own."""
    cc = condition_config(rec.config)
    init = _init_source(rec)
    if init != "seed":
        cc["init"] = init
    return cc


def _init_source(rec: RunRecord) -> str:
    return _identity(rec).get("init") or (rec.meta.get("init_from") if isinstance(rec.meta, dict) else None) \
        or "seed"


def group_conditions(records: list[RunRecord]) -> list[tuple[dict, list[RunRecord]]]:
    """[(condition config, runs sorted by seed)], in a stable order (eta descending, then key); a run from
    an --init-from file is in a condition of its own (run_condition)."""
    groups: dict[str, tuple[dict, list]] = {}
    for r in records:
        cc = run_condition(r)
        groups.setdefault(_key(cc), (cc, []))[1].append(r)
    out = [(cc, sorted(rs, key=lambda r: (_seed_sort(r.config.get("seed")), str(r.path))))
           for cc, rs in groups.values()]
    out.sort(key=lambda g: (_key({k: v for k, v in g[0].items() if k != "eta"}),
                            -float(g[0].get("eta", 0) or 0)))
    return out


def _seed_sort(s):
    return (0, s) if isinstance(s, (int, float)) else (1, str(s))


def condition_labels(configs: list[dict]) -> list[str]:
    """Short labels from the keys that differ between conditions (eta alone if none differ)."""
    keys = sorted({k for c in configs for k in c})
    varying = [k for k in keys if len({_key({"v": c.get(k)}) for c in configs}) > 1]
    if "eta" in varying:
        varying.remove("eta")
    varying = ["eta"] + varying
    if "group" in varying and "group_digest" in varying and all(
            len({c.get("group_digest") for c in configs if c.get("group") == g}) == 1
            for g in {c.get("group") for c in configs}):
        varying.remove("group_digest")            # each table file has one digest: its name tells them apart
    return [" ".join(f"{k}={_label_value(c, k, configs)}" for k in varying) for c in configs]


def _label_value(c: dict, k: str, configs=()) -> str:
    """A condition's value of key k in its label: a run without a group is Z_M's task (said so where a
    --group Z_M run is beside it: the two log different keys), a key its config.json leaves out (it
    means nothing for that run) is —, a table's digest its first 12 digits."""
    if k == "group" and not c.get("group"):
        z = f"Z{c.get('M')}"
        return f"{z} (no --group)" if any(o.get("group") == z for o in configs) else z
    if k == "init":                               # the --init-from source (run_condition); "seed" for the others
        v = str(c.get(k, "seed"))
        return v if v == "seed" or not all(ch in "0123456789abcdef" for ch in v) else f"file {v[:12]}"
    if k not in c:
        return "—"
    if k == "group_digest":
        return str(c[k])[:12]
    if k == "eta_schedule":                       # as --eta-schedule takes it: START:ETA,...
        return ",".join(f"{int(t)}:{float(e):g}" for t, e in c[k])
    if k == "eta" and c.get("eta_schedule"):      # its first value alone would read as a constant eta
        return "scheduled"
    return _short(c[k])


def _short(v) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(_short(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def find_control(cc: dict, all_cc: list[dict]) -> int | None:
    """Index of the eta = 0 condition equal to ``cc`` in every other key, or None."""
    if not _positive(cc.get("eta")):
        return None
    rest = _key({k: v for k, v in cc.items() if k != "eta"})
    for i, other in enumerate(all_cc):
        eta = other.get("eta")
        if eta is not None and float(eta) == 0.0 and \
                _key({k: v for k, v in other.items() if k != "eta"}) == rest:
            return i
    return None


def _positive(x) -> bool:
    try:
        return float(x) > 0
    except (TypeError, ValueError):
        return False


# --- duplicates -------------------------------------------------------------------------------

def run_folder(path, root=None) -> str:
    """The run's folder relative to ``root`` ('.'-free: the folder's own name when it is ``root``)."""
    path = Path(path)
    if root is not None:
        rel = os.path.relpath(path, root)
        if rel != "." and not rel.startswith(".."):
            return rel
    return path.name or str(path)


def _identity(rec: RunRecord) -> dict:
    ident = rec.meta.get("identity") if isinstance(rec.meta, dict) else None
    return ident if isinstance(ident, dict) else {}


def same_run_key(rec: RunRecord) -> str:
    """Condition, seed and init source: equal keys = the same run (module docstring). A run from an
    --init-from file takes its weights and split from the file and trains full-batch, so its seed draws
    only the independence proxy's column pairs: runs from one file that differ only by seed are one
    trajectory (the seed is left out of their key)."""
    init = _init_source(rec)
    seed = rec.config.get("seed") if init == "seed" else None
    return _key({"condition": condition_config(rec.config), "seed": seed, "init": init})


def drop_duplicates(records: list[RunRecord], root=None, prefer=None) -> tuple[list[RunRecord], list[dict]]:
    """(records with each run once, in their order; [{"kept", "dropped", "match"}] per duplicated run).

    The copy kept: one that ``prefer(record)`` accepts, if any (e.g. the copy that logged the Gram
    spectra asked for), then the one with the most rows, then the first folder by name.
    kept / dropped are folders (run_folder relative to ``root``); match = "fingerprint" when every copy
    carries the same identity fingerprint, else "condition and seed" ("condition and init file" for runs
    from one --init-from file that differ only by seed: same_run_key)."""
    groups: dict[str, list[RunRecord]] = {}
    for r in records:
        groups.setdefault(same_run_key(r), []).append(r)
    keep, dups = set(), []
    for rs in groups.values():
        best = min(rs, key=lambda r: (prefer is not None and not prefer(r), -r.n_rows, str(r.path)))
        keep.add(id(best))
        if len(rs) > 1:
            fps = {_identity(r).get("fingerprint") for r in rs}
            match = ("fingerprint" if len(fps) == 1 and None not in fps else
                     "condition and seed" if _init_source(best) == "seed" else "condition and init file")
            dups.append({"kept": run_folder(best.path, root),
                         "dropped": sorted(run_folder(r.path, root) for r in rs if r is not best), "match": match})
    dups.sort(key=lambda d: d["kept"])
    return [r for r in records if id(r) in keep], dups


DUPLICATES_SHOWN = 3     # duplicated runs named in the warning line; the rest counted (a tree copied into
                         # itself repeats every run: one line naming each ran to kilobytes)


def duplicates_line(dups: list[dict]) -> str | None:
    """One line naming the first DUPLICATES_SHOWN duplicated runs' folders and counting the rest (None when
    there is none); summarize --json lists every one."""
    if not dups:
        return None
    n = sum(len(d["dropped"]) for d in dups)
    parts = [f"{d['kept']} = {', '.join(d['dropped'])} (same {d['match']})" for d in dups[:DUPLICATES_SHOWN]]
    more = len(dups) - DUPLICATES_SHOWN
    return (f"warning: {n} duplicate run folder(s) counted once: " + "; ".join(parts)
            + (f"; and {more} more run(s) (summarize --json lists every one under 'duplicates')" if more > 0 else ""))
