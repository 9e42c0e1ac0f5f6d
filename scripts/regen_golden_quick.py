"""Regenerate the golden trajectory of the quick configuration -- a deliberate command, never run by tests.

    python scripts/regen_golden_quick.py      # writes reference_results/golden/train_quick_float32.json

The quick configuration is the README's "see it work" run and the ci scale of ``reproduce``:
M = 23, K = 512, n_train = round(0.5 * 23^2) = 264, sigma = x^2, Adam lr 1e-3 with coupled L2
eta = 2e-3, 400 epochs, seed 0, window 20, float32, full metrics. It groks: test accuracy passes 0.5
near epoch 183 and 0.99 near 244, and the sigma2/sigma3 slope detector fires near 191.

The file stores, for every epoch 0..400, the train/test loss and accuracy, rho_tian and W_gap23
(sigma2/sigma3 of the rolling Delta-W Gram); the events (t0.5, t0.99, slope fire); the Frobenius
norms of the final W and V; the config; and provenance (command, seed, dtype, backend, versions,
BLAS, threads, date, commit, clean/dirty tree).

It also stores how sensitive the trajectory is to rounding: the run is repeated from initial
weights perturbed by one float32 ulp (relative 2^-23, i.i.d. signs, rng seed 1) and the largest
deviation of each quantity, per epoch band, is recorded under "sensitivity". The tolerances of
tests/test_golden_quick.py are set from those numbers. Run this only when a change to the numerics
is intended, and say why in the commit.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tianref import data, runs, train  # noqa: E402
from tianref.analysis import detectors as det  # noqa: E402
from tianref.backend import environment_info, git_state  # noqa: E402
from tianref.config import TrainConfig, validate  # noqa: E402
from tianref.experiments.protocols import QUICK  # noqa: E402

OUT_DIR = os.path.join(ROOT, "reference_results", "golden")
CONFIG = TrainConfig(M=QUICK["M"], K=QUICK["K"], n_train=data.n_train_from_frac(QUICK["M"], QUICK["train_frac"]),
                     eta=QUICK["eta"], epochs=QUICK["epochs"], seed=0, dtype="float32")
KEYS = ("train_loss", "test_loss", "train_acc", "test_acc", "rho_tian", "W_gap23")
# epoch bands of the sensitivity record: before the transition, through it, after it
BANDS = {"early": (0, 150), "transition": (151, 260), "late": (261, 400)}


def trajectory(cfg, init=None) -> tuple[dict, dict]:
    """({key: [value or None per epoch]}, {'W_fro', 'V_fro'}) of one NumPy run."""
    cols = {k: [] for k in KEYS}

    class Sink:
        def row(self, r):
            r = runs.clean_row(r)
            for k in KEYS:
                cols[k].append(r.get(k))

        def checkpoint(self, *a, **k):
            pass
    final, _, _ = train.run(validate(cfg), np, sink=Sink(), init=init)
    norms = {f"{k}_fro": float(np.linalg.norm(final.params[k].astype(np.float64))) for k in ("W", "V")}
    return cols, norms


def events(cols) -> dict:
    gap = np.array([np.nan if v is None else v for v in cols["W_gap23"]])
    t05, t099 = det.test_crossings(np.asarray(cols["test_acc"], dtype=float))
    fire = det.slope_fire(gap)
    return {k: (None if v is None or not np.isfinite(v) else int(v))
            for k, v in (("t05", t05), ("t099", t099), ("fire", fire))}


def perturbed_init(cfg):
    train_idx, test_idx, W0, V0 = data.init_host(cfg.M, cfg.K, cfg.n_train, cfg.seed)
    rng = np.random.default_rng(1)
    ulp = 2.0 ** -23
    bump = lambda A: (A * (1 + ulp * rng.choice([-1.0, 1.0], size=A.shape))).astype(np.float32)
    return {"W": bump(W0.astype(np.float32)), "V": bump(V0.astype(np.float32)),
            "train_idx": train_idx, "test_idx": test_idx}


def sensitivity(ref: dict, other: dict) -> dict:
    """Largest |difference| (accuracies, in samples of the set) or relative difference, per key and band."""
    out = {}
    for k in KEYS:
        a = np.array([np.nan if v is None else v for v in ref[k]], dtype=float)
        b = np.array([np.nan if v is None else v for v in other[k]], dtype=float)
        out[k] = {}
        for band, (lo, hi) in BANDS.items():
            x, y = a[lo:hi + 1], b[lo:hi + 1]
            ok = np.isfinite(x) & np.isfinite(y)
            if not ok.any():
                out[k][band] = None
                continue
            d = np.abs(x[ok] - y[ok])
            out[k][band] = float(d.max() if k.endswith("_acc") else (d / np.abs(x[ok])).max())
    return out


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
    cfg = CONFIG
    cols, norms = trajectory(cfg)
    pert, pert_norms = trajectory(cfg, perturbed_init(cfg))
    git = git_state() or {}
    doc = {
        "provenance": {
            "command": " ".join(["python", os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:]),
            "seed": cfg.seed, "dtype": cfg.dtype, "backend": "numpy",
            "versions": environment_info(np), "blas": blas_info(),
            "threads": {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
            "tianref_commit": git.get("commit"), "tree_dirty": git.get("dirty"),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
        "config": cfg.to_dict(),
        "keys": list(KEYS),
        "trajectory": cols,
        "events": events(cols),
        "final": norms,
        "sensitivity": {"perturbation": "initial W and V x (1 +- 2^-23), signs from default_rng(1)",
                        "bands": BANDS, "max_deviation": sensitivity(cols, pert),
                        "events": events(pert)},
    }
    path = os.path.join(args.out_dir, f"train_quick_{cfg.dtype}.json")
    os.makedirs(args.out_dir, exist_ok=True)
    runs.atomic_write_json(path, doc)
    print(f"events {doc['events']} (perturbed: {doc['sensitivity']['events']}); final test_acc "
          f"{cols['test_acc'][-1]:.3f} -> {os.path.relpath(path, ROOT)}")
    for k, v in doc["sensitivity"]["max_deviation"].items():
        print(f"  {k:>10}: " + ", ".join(f"{b} {'-' if x is None else format(x, '.1e')}" for b, x in v.items()))


if __name__ == "__main__":
    main()
