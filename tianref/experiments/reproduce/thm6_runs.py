"""The Theorem 6 section: every seed's checkpoints through ``thm6.summarize_checkpoint``, cached,
and the statistics over seeds per checkpoint.

References: seed paper Theorem 6 and its Tables T1, T1-IQR, T1-seed0 (``docs/paper-protocol.md``
§1 and §3 "Thm 6": top-200 pairs at checkpoints 50/100/175/250/300 of the x² runs; the 'ReLU' row at
100/300/500, §5.1); docs/theorem6.md; the math is in tianref/thm6/theorem.py and tianref/thm6/summary.py.

Symbols
    THM6_BASE_EPOCHS   the paper's checkpoint epochs per activation
    thm6_epoch_map     {our checkpoint epoch: the paper epoch it stands for} (scaled at ``--scale ci``)
    THM6_QTY           the per-checkpoint quantities summarised over seeds (median, IQR, range)
    F_tilde            F̃ = P₁⊥σ(XW), (n, K), from a checkpoint's W in float64
    n_top              the number of most similar pairs per checkpoint (``--top-pairs``)

The cache (ROOT/thm6/_thm6/<run>.json) is keyed by the epochs, n_top, each checkpoint's size and
mtime and a hash of the thm6 code, so only changed checkpoints are recomputed.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from tianref.analysis import detectors as det
from tianref.experiments import protocols
from tianref.errors import InputError
from tianref.experiments.reproduce.views import scaled
from tianref.analysis.summarize import to_json, write_atomic

THM6_QTY = ("sign_match_exact", "sign_match_approx", "sign_match_paper", "frac_B_neg_on_pos_cos",
            "median_abs_cos")
THM6_BASE_EPOCHS = {"sqr": (50, 100, 175, 250, 300), "relu": (100, 300, 500)}


def import_thm6():
    """The Theorem 6 module, or InputError saying why the thm6 section cannot run."""
    import importlib
    try:
        thm6 = importlib.import_module("tianref.thm6")
        thm6.summarize_checkpoint, thm6.features_from_weights                # noqa: B018
    except (ImportError, AttributeError) as exc:
        raise InputError("the thm6 section needs tianref.thm6 (summarize_checkpoint, "
                         f"features_from_weights), which is not importable yet: {exc}") from None
    return thm6


def thm6_epoch_map(act: str, scale: protocols.Scale) -> dict:
    """{our checkpoint epoch: the paper's epoch it stands for}."""
    ours = protocols.thm6_epochs(act, scale)
    E = max(ours)
    m = {min(E, scaled(c, scale)): c for c in THM6_BASE_EPOCHS[act]}
    return {e: m[e] for e in ours}


def _thm6_cache_key(run_dir: Path, epochs, n_top: int, thm6) -> dict:
    """What a cached thm6 result depends on: the checkpoints, n_top and the thm6 code itself
    (tianref/thm6/theorem.py and tianref/thm6/summary.py)."""
    import hashlib

    from tianref.runs import checkpoint_path
    from tianref.thm6 import summary as thm6_summary, theorem as thm6_theorem
    code = hashlib.sha1(b"".join(Path(m.__file__).read_bytes()
                                 for m in (thm6_theorem, thm6_summary))).hexdigest()
    stamp = {}
    for e in epochs:
        p = Path(checkpoint_path(str(run_dir), e))
        st = p.stat() if p.is_file() else None
        stamp[str(e)] = None if st is None else [st.st_size, st.st_mtime_ns]
    return {"epochs": list(epochs), "n_top": n_top, "checkpoints": stamp, "thm6_sha1": code}


def thm6_run(run_dir: Path, config: dict, epochs, n_top: int, cache_dir: Path, keep_pairs: bool):
    """{epoch: summary dict} for one run's checkpoints and, with keep_pairs, their pair lists.

    Cached in cache_dir/<run>.json, keyed by the epochs, n_top, each checkpoint's size and mtime
    and a hash of tianref/thm6/theorem.py and tianref/thm6/summary.py, so a rerun does not recompute
    unchanged checkpoints."""
    from tianref.runs import checkpoint_path, load_checkpoint
    thm6 = import_thm6()
    key = _thm6_cache_key(run_dir, epochs, n_top, thm6)
    cache = cache_dir / f"{run_dir.name}.json"
    if cache.is_file():
        try:
            doc = json.loads(cache.read_text(encoding="utf-8"))
            if doc.get("key") == key:
                return doc["summaries"], (doc["pairs"] if keep_pairs else None)
        except (OSError, ValueError, KeyError):
            pass
    act, eta, M = config.get("act", "sqr"), float(config["eta"]), int(config["M"])
    summaries, pairs = {}, {}
    for e in epochs:
        path = checkpoint_path(str(run_dir), e)
        if not os.path.isfile(path):
            raise InputError(f"{path}: checkpoint missing (retrain {run_dir.name}: delete it and rerun)")
        ck = load_checkpoint(str(run_dir), e)
        F_tilde = thm6.features_from_weights(np, ck["W"], M, ck["train_idx"], act)   # (n, K)
        res = thm6.summarize_checkpoint(np, F_tilde, eta, n_top=n_top)
        summaries[str(e)] = res["summary"]
        pairs[str(e)] = res["pairs"]
    cache_dir.mkdir(parents=True, exist_ok=True)
    doc = json.loads(to_json({"key": key, "summaries": summaries, "pairs": pairs}))
    write_atomic(cache, to_json(doc))
    return doc["summaries"], (doc["pairs"] if keep_pairs else None)


def thm6_section(records, scale: protocols.Scale, n_top: int, cache_dir: Path, report):
    """doc['thm6'] (per act: per-run values, across-seed stats per epoch) and seed-0 records with
    their pair lists for the per-checkpoint figure."""
    out = {"n_top": n_top, "acts": {}}
    seed0 = {}
    for act in ("sqr", "relu"):
        recs = sorted([r for r in records if r.config.get("act", "sqr") == act],
                      key=lambda r: r.config["seed"])
        if not recs:
            continue
        emap = thm6_epoch_map(act, scale)
        per_run = []
        for r in recs:
            report(f"thm6: {r.path.name}: {len(emap)} checkpoints")
            keep = r.config["seed"] == recs[0].config["seed"]
            summ, pairs = thm6_run(r.path, r.config, list(emap), n_top, cache_dir, keep)
            per_run.append({"tag": r.path.name, "seed": r.config["seed"], "epochs": summ})
            if keep:
                seed0[act] = [{"epoch": e, "act": act, "eta": float(r.config["eta"]),
                               "summary": summ[str(e)], "pairs": pairs[str(e)]} for e in emap]
        stats = {str(e): {q: det.across_runs([_nan(p["epochs"][str(e)].get(q)) for p in per_run])
                          for q in THM6_QTY} for e in emap}
        out["acts"][act] = {"eta": float(recs[0].config["eta"]), "epochs": list(emap),
                            "paper_epochs": {str(e): pe for e, pe in emap.items()},
                            "seeds": [p["seed"] for p in per_run], "per_run": per_run, "stats": stats}
    return out, seed0


def first_seed_pairs(records, scale: protocols.Scale, n_top: int, cache_dir: Path) -> dict:
    """{act: the first seed's per-checkpoint records with their pair lists} (from the cache that
    :func:`thm6_section` filled; computed again only where it is stale)."""
    out = {}
    for act in ("sqr", "relu"):
        recs = sorted([r for r in records if r.config.get("act", "sqr") == act], key=lambda r: r.config["seed"])
        if not recs:
            continue
        r, emap = recs[0], thm6_epoch_map(act, scale)
        summ, pairs = thm6_run(r.path, r.config, list(emap), n_top, cache_dir, True)
        out[act] = [{"epoch": e, "act": act, "eta": float(r.config["eta"]), "summary": summ[str(e)],
                     "pairs": pairs[str(e)]} for e in emap]
    return out


def _nan(x):
    return math.nan if x is None else float(x)
