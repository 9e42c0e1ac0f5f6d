"""Regenerate the golden training values -- a deliberate command, never run by the tests.

    python scripts/regen_golden.py            # writes reference_results/golden/train_small_{float32,float64}.json

The config is small and eventful: M = 11, K = 64, n_train = 96 (of 121 pairs), sigma = x^2,
Adam lr = 1e-2 with coupled L2 eta = 5e-3, 100 epochs, seed 0, windows 20 and 5, full metrics.
Train accuracy reaches 1.0 by epoch 25 and test accuracy climbs from ~0.04 to 1.0 by epoch 75, so
the stored rows cover memorisation and the grokking transition. (The default eta = 2e-4, lr = 1e-3
barely moves in 100 epochs at this size.)

Each file stores the rows at epochs 0, 1, 2, 5, 10, 25, 50, 75, 100 with every key the engine logs,
the Frobenius norms of the final W and V, the config, and provenance (command, seed, dtype, backend,
versions, BLAS, date, and the git state: commit and whether the tree was dirty, i.e. had
uncommitted changes to tracked files, so the values may not be those of the commit). Run this only when a change to the numerics is intended, and say
why in the commit; tests/test_golden_train.py re-derives the values and compares them.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tianref import runs, train  # noqa: E402
from tianref.backend import environment_info, git_state  # noqa: E402
from tianref.config import TrainConfig, validate  # noqa: E402

OUT_DIR = os.path.join(ROOT, "reference_results", "golden")
CONFIG = TrainConfig(M=11, K=64, n_train=96, eta=5e-3, lr=1e-2, epochs=100, seed=0, act="sqr",
                     loss="tian", optimizer="adam", windows=(20, 5), metrics="full")
EPOCHS = (0, 1, 2, 5, 10, 25, 50, 75, 100)
DTYPES = ("float32", "float64")


def derive(cfg):
    """Run ``cfg`` on NumPy; return (rows at EPOCHS, {'W_fro', 'V_fro'} of the final parameters)."""
    rows = []

    class Sink:
        def row(self, r):
            if r["epoch"] in EPOCHS:
                rows.append(runs.clean_row(r))

        def checkpoint(self, *a, **k):
            pass
    final, _, _ = train.run(validate(cfg), np, sink=Sink())
    norms = {f"{k}_fro": float(np.linalg.norm(final.params[k].astype(np.float64))) for k in ("W", "V")}
    return rows, norms


def blas_info():
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except Exception:
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=OUT_DIR)
    args = ap.parse_args(argv)
    git = git_state()                 # taken before anything is written: {'commit', 'dirty'} or None
    if git is None or git["dirty"]:
        print("warning: the source tree is " + ("not a git checkout" if git is None else "dirty")
              + "; the provenance records it", file=sys.stderr)
    for dtype in DTYPES:
        cfg = CONFIG.replace(dtype=dtype)
        rows, norms = derive(cfg)
        versions = environment_info(np)
        doc = {
            "provenance": {
                "command": " ".join(["python", os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:]),
                "seed": cfg.seed, "dtype": dtype, "backend": "numpy",
                "versions": versions, "blas": blas_info(),
                "threads": {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
                "git": git,
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            },
            "config": cfg.to_dict(),
            "epochs": list(EPOCHS),
            "rows": rows,
            "final": norms,
        }
        path = os.path.join(args.out_dir, f"train_small_{dtype}.json")
        os.makedirs(args.out_dir, exist_ok=True)
        runs.atomic_write_json(path, doc)
        last = rows[-1]
        print(f"{dtype}: epoch {last['epoch']} train_acc {last['train_acc']:.3f} test_acc {last['test_acc']:.3f} "
              f"-> {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
