"""What a batch pays each epoch to make its runs' rows durable: one after another, or together.

    python bench/bench_sync.py                     # S = 1, 8, 15 runs, 200 epochs, in a temp folder
    python bench/bench_sync.py --runs 15 --epochs 400 --dir /scratch

Each side logs the same rows (a real row of the quick run's size, ~1.3 KB) into S fresh metrics.jsonl
files through runs.RunWriter:

    one by one   RunWriter.row for each run: write, fdatasync, the next run (what a batch did before)
    together     RunWriter.write_row for each run, then runs.sync_rows: the S fdatasyncs at once, in
                 threads (what tianref/batch.py does)

The sides alternate --repeats times (best of each kept) so that the disk's drift hits both alike.
It prints ms per epoch for each side and their ratio (one by one / together). No training: the
training that surrounds these syncs is what bench_batch.py times. The disk is the folder's (--dir,
default the system's temp folder); the last line is JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tianref import runs  # noqa: E402

ROW = {"epoch": 0, **{f"key_{i:02d}": 0.123456789012345 * (i + 1) for i in range(60)}}


def log_epochs(root: str, S: int, epochs: int, together: bool) -> float:
    """Seconds to log ``epochs`` rows into each of S new run folders under ``root``."""
    writers = []
    for s in range(S):
        d = os.path.join(root, f"run{s}")
        os.makedirs(d)
        writers.append(runs.RunWriter(d, fingerprint="F"))
    try:
        t0 = time.perf_counter()
        for e in range(epochs):
            row = dict(ROW, epoch=e)
            if together:
                for w in writers:
                    w.write_row(row)
                errors = runs.sync_rows(writers)
                if any(errors):
                    raise next(x for x in errors if x)
            else:
                for w in writers:
                    w.row(row)
        return time.perf_counter() - t0
    finally:
        for w in writers:
            w.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", default="1,8,15", help="comma-separated S values (runs in a batch)")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where the files go (default: the temp folder)")
    a = ap.parse_args(argv)
    out = {"epochs": a.epochs, "repeats": a.repeats, "row_bytes": len(json.dumps(ROW)) + 1, "results": {}}
    print(f"rows of {out['row_bytes']} bytes, {a.epochs} epochs, best of {a.repeats}; folder "
          f"{a.dir or tempfile.gettempdir()}")
    for S in (int(x) for x in a.runs.split(",")):
        best = {"one_by_one": float("inf"), "together": float("inf")}
        for _ in range(a.repeats):
            for side in best:
                root = tempfile.mkdtemp(prefix="bench_sync-", dir=a.dir)
                try:
                    best[side] = min(best[side], log_epochs(root, S, a.epochs, side == "together"))
                finally:
                    shutil.rmtree(root, ignore_errors=True)
        ms = {k: 1e3 * v / a.epochs for k, v in best.items()}
        ratio = best["one_by_one"] / best["together"]
        out["results"][S] = {"ms_per_epoch": ms, "ratio": ratio}
        print(f"S = {S:3d}: one by one {ms['one_by_one']:7.3f} ms/epoch, together {ms['together']:7.3f} "
              f"ms/epoch; ratio {ratio:.2f}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
