"""Conditions: runs grouped by their config minus the seed, their labels, and each one's eta = 0 control.

Reference: ``docs/paper-protocol.md`` §2 (grok vs control) and §5.5 (the late separation).

Conditions: runs are grouped by their config minus the seed and the keys in ``NON_CONDITION_KEYS``
(where the output went, which backend ran it, how often it printed, what was logged beside the
training), so the same protocol run on NumPy and on CuPy lands in one condition. A condition with
eta > 0 is paired with the eta = 0 condition that matches it in every other key (its control).
"""
from __future__ import annotations

import json

from tianref.analysis.records import RunRecord

# Config keys that say where or how a run was executed, or what it logged, not what was computed.
NON_CONDITION_KEYS = frozenset({
    "seed", "out", "out_dir", "outdir", "run_dir", "dir", "tag", "name", "resume", "xp",
    "backend", "device", "print_every", "eval_every", "progress", "checkpoint_every",
    "checkpoints", "checkpoint_epochs", "quiet", "verbose", "log_grams", "tail_rank",
})


def condition_config(config: dict) -> dict:
    return {k: config[k] for k in sorted(config) if k not in NON_CONDITION_KEYS}


def _key(d: dict) -> str:
    return json.dumps(d, sort_keys=True, default=str)


def group_conditions(records: list[RunRecord]) -> list[tuple[dict, list[RunRecord]]]:
    """[(condition config, runs sorted by seed)], in a stable order (eta descending, then key)."""
    groups: dict[str, tuple[dict, list]] = {}
    for r in records:
        cc = condition_config(r.config)
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
    return [" ".join(f"{k}={_short(c.get(k))}" for k in varying) for c in configs]


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
