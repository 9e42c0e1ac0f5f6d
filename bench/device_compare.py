"""Compare two runs of one configuration row by row (the device check's CuPy-vs-NumPy step).

Usage: python bench/device_compare.py RUN_A RUN_B [--json PATH]

Prints, for every logged scalar key the runs share, the largest relative difference over the rows
(|a − b| / max(|a|, |b|, tiny)), plus each run's t(test ≥ 0.5), t(test ≥ 0.99) and σ₂/σ₃ slope
fire epoch (tianref.analysis.detectors with the paper's defaults). Exit 0 always: the numbers are
the result; the device check's report says how to read them.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout, not an installed copy
from tianref.analysis import detectors as det  # noqa: E402
from tianref.analysis.records import read_run  # noqa: E402


def events(rec) -> dict:
    c = rec.columns
    t05, t099 = det.test_crossings(c["test_acc"])
    fire = det.slope_fire(c["W_gap23"]) if "W_gap23" in c else math.nan
    return {"rows": int(len(c["epoch"])), "t05": t05, "t099": t099, "slope_fire": fire,
            "final_test_acc": float(c["test_acc"][-1]), "final_train_loss": float(c["train_loss"][-1])}


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    a, b = np.asarray(a[:n], float), np.asarray(b[:n], float)
    both = np.isfinite(a) & np.isfinite(b)
    if not both.any():
        return math.nan
    d = np.abs(a[both] - b[both]) / np.maximum(np.maximum(np.abs(a[both]), np.abs(b[both])), 1e-300)
    return float(d.max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    ra, rb = read_run(args.a), read_run(args.b)
    keys = sorted(k for k in ra.columns if k in rb.columns and k != "epoch"
                  and np.asarray(ra.columns[k]).ndim == 1)
    diffs = {k: max_rel(ra.columns[k], rb.columns[k]) for k in keys}
    out = {"a": args.a, "b": args.b, "events_a": events(ra), "events_b": events(rb), "max_rel_diff": diffs}
    for k in keys:
        print(f"{k:>16}: max rel diff {diffs[k]:.3e}")
    print("events a:", json.dumps(out["events_a"]))
    print("events b:", json.dumps(out["events_b"]))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
