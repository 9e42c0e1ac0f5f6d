"""The weight-decay intervention of the lifecycle section, read from its runs' logs (pure host analysis).

Reference: *The Lifecycle of the Spectral Edge* (removing weight decay after grokking reverses the
compression while the algorithm stays); the authors' protocol in github.com/skydancerosel/dyck_scan,
spectral/wd_intervention.py (commit e37417d): continue a pre-grokking and a post-grokking checkpoint with
the weight decay times m in {1, 0, 0.5, 2} (a new AdamW on the checkpoint's weights, 3000 steps; compression
read as the norm of all parameters). Here (tianref.experiments.protocols.intervention_runs):
eta = eta_0 until epoch T, then eta_0 x m for N epochs, the optimizer's state carried on; m = 1 is the
plain eta_0 run (one run serves every T), and (T, m) = (LIFECYCLE_SWITCH, 0) is the section's switch run,
read at T + N although it runs longer.

Symbols (per run and intervention)
    T, m, N     the switch epoch, the factor, the length read (rows T and T + N of metrics.jsonl)
    X(t)        a logged column at row t, X in COLUMNS (W_fro = ||W||_F, W_srank = stable rank, ...)
    ratio_X     X(T + N) / X(T)      (NaN where X(T) is 0 or either value is missing)

Rules (thresholds are the module constants below):
    compression reversed, per (T, seed): the m = 0 run has ratio_W_fro > REVERSE_MIN and
        ratio_W_srank > REVERSE_MIN, while the m = 1 run of the same seed (and eta_0, M, K, act) has
        ratio_W_fro < COMPRESS_MAX and ratio_W_srank < COMPRESS_MAX: without decay the weights and the
        stable rank grow back, with it they keep shrinking. None (no verdict) when either run or any of
        the four ratios is missing. Per T: ``reverses`` = at least one verdict and every verdict true.
    the algorithm stays, per run: applicable when test_acc(T) >= ACC_LEVEL; then stays = test_acc(T + N)
        >= ACC_LEVEL (None when not applicable).

Runs read: a two-entry schedule ((0, eta_0), (T, eta_1)) with eta_0 > 0 is (T, m = eta_1 / eta_0); a run
without a schedule and eta > 0 is m = 1 for every T found; anything else (the eta = 0 control) is ignored.
"""
from __future__ import annotations

import math

from tianref.experiments.protocols import INTERVENTION_LENGTH

COLUMNS = ("test_acc", "train_acc", "W_fro", "V_fro", "W_srank", "V_srank", "W_gap23", "V_gap23", "WV_nuc")
REVERSE_MIN = 1.0       # m = 0: ||W||_F and the stable rank end above their value at T
COMPRESS_MAX = 1.0      # m = 1: both end below their value at T (the compression goes on)
ACC_LEVEL = 0.99        # "the algorithm" = test accuracy at least this
REVERSAL_KEYS = ("W_fro", "W_srank")


def classify(config: dict):
    """(eta_0, T, m) of a run's config: T None for a plain eta_0 run (m = 1); None for other runs."""
    sched = config.get("eta_schedule") or []
    if len(sched) == 2 and sched[0][0] == 0 and sched[0][1] > 0:
        eta0, (T, eta1) = float(sched[0][1]), sched[1]
        return eta0, int(T), float(f"{eta1 / eta0:.6g}")
    eta = float(sched[0][1]) if len(sched) == 1 else float(config.get("eta", 0.0))
    return (eta, None, 1.0) if eta > 0 and len(sched) <= 1 else None


def _at(record, key: str, t: int) -> float:
    col = record.col(key)
    return float(col[t]) if 0 <= t < len(col) else math.nan


def _ratio(a: float, b: float) -> float:
    return b / a if math.isfinite(a) and math.isfinite(b) and a != 0 else math.nan


def _identity(config: dict, eta0: float):
    return (eta0, config.get("seed"), config.get("M"), config.get("K"), config.get("act"))


def intervention_table(records, N: int = INTERVENTION_LENGTH) -> dict:
    """{'N', 'rows', 'reversal', 'summary'} from RunRecords (tianref.analysis.records.read_run):
        rows      [{'T', 'm', 'seed', 'eta0', 'run', 'complete', 'at_T', 'at_end', 'ratio', 'stays'}] with
                  at_T / at_end / ratio = {column: value} over COLUMNS; complete = the run reached T + N
        reversal  [{'T', 'seed', 'holds', 'm0': {key: ratio}, 'm1': {key: ratio}}], keys REVERSAL_KEYS
        summary   [{'T', 'n', 'n_holds', 'reverses', 'stays': [{'m', 'n_applicable', 'n_stays'}]}]"""
    kinds = [(r, classify(r.config)) for r in records]
    kinds = [(r, k) for r, k in kinds if k is not None]
    Ts = sorted({k[1] for _, k in kinds if k[1] is not None})
    rows = []
    for r, (eta0, T, m) in kinds:
        for t in ([T] if T is not None else Ts):
            at_T = {c: _at(r, c, t) for c in COLUMNS}
            at_end = {c: _at(r, c, t + N) for c in COLUMNS}
            a0, a1 = at_T["test_acc"], at_end["test_acc"]
            rows.append({"T": t, "m": m, "seed": r.config.get("seed"), "eta0": eta0, "run": r.path.name,
                         "complete": r.n_epochs > t + N, "at_T": at_T, "at_end": at_end,
                         "ratio": {c: _ratio(at_T[c], at_end[c]) for c in COLUMNS},
                         "stays": (a1 >= ACC_LEVEL) if a0 >= ACC_LEVEL and math.isfinite(a1) else None,
                         "_id": _identity(r.config, eta0)})
    by = {(x["T"], x["m"], x["_id"]): x for x in rows}
    reversal = []
    for x in rows:
        if x["m"] != 0.0:
            continue
        y = by.get((x["T"], 1.0, x["_id"]))
        m0 = {k: x["ratio"][k] for k in REVERSAL_KEYS}
        m1 = {k: (y["ratio"][k] if y else math.nan) for k in REVERSAL_KEYS}
        vals = list(m0.values()) + list(m1.values())
        holds = None if not all(math.isfinite(v) for v in vals) else (
            all(v > REVERSE_MIN for v in m0.values()) and all(v < COMPRESS_MAX for v in m1.values()))
        reversal.append({"T": x["T"], "seed": x["seed"], "holds": holds, "m0": m0, "m1": m1})
    summary = []
    for t in Ts:
        verdicts = [v["holds"] for v in reversal if v["T"] == t and v["holds"] is not None]
        stays = []
        for m in sorted({x["m"] for x in rows if x["T"] == t}):
            app = [x["stays"] for x in rows if x["T"] == t and x["m"] == m and x["stays"] is not None]
            stays.append({"m": m, "n_applicable": len(app), "n_stays": sum(app)})
        summary.append({"T": t, "n": len(verdicts), "n_holds": sum(verdicts),
                        "reverses": bool(verdicts) and all(verdicts), "stays": stays})
    for x in rows:
        del x["_id"]
    rows.sort(key=lambda x: (x["T"], x["m"], str(x["seed"])))
    return {"N": N, "rows": rows, "reversal": reversal, "summary": summary}
