"""Backend operations per epoch of a stack of S runs: what a GPU pays in kernel launches and Python.

    python bench/bench_ops.py                      # quick configuration, full metrics, S = 1, 2, 4, 8
    python bench/bench_ops.py --metrics core --stacks 1,4,15

On a GPU each backend call costs a kernel launch and its Python overhead (several microseconds)
whatever the array size, so a stacked epoch whose call count grows with S loses what stacking gains.
This counts the calls on the strict fake backend (tianref.fakexp: NumPy underneath, CuPy's rules
on top; ``fakexp.ops_count`` counts every device array it makes, views and transfers included), so it
runs on any machine and needs no GPU; the count is the code path's, not the machine's.

For each S it trains S seeds of one condition with ``train-batch --xp fake`` in this process, twice
(--short and --long epochs), and takes the difference per epoch, so set-up, the first rows and the
final checkpoints cancel. It prints the calls per stacked epoch, the calls per run-epoch and their
ratio to S = 1 (the share of one run's calls that stacking saves), and the calls each extra run adds;
``--by-module`` also breaks one stacked epoch down by the tianref function that made the call. The
last line is JSON.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import io
import itertools
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_batch import provenance  # noqa: E402  (this folder: command, date, machine, versions, commit)
from tianref import fakexp  # noqa: E402
from tianref.cli import main as cli_main  # noqa: E402


_CALL = itertools.count()


def train_batch(root: str, S: int, epochs: int, a) -> None:
    """train-batch of S seeds into a fresh folder under root, its output swallowed."""
    members, sub = [], f"{root}/call{next(_CALL)}"
    for s in range(S):
        members += ["--member", f"--out {sub}/seed{s} --seed {s} --epochs {epochs} --eta {a.eta} "
                                f"--M {a.M} --K {a.K} --train-frac {a.train_frac} --metrics {a.metrics} "
                                f"--xp fake --dtype float32 --no-resume-state"]
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            cli_main.main(["train-batch", "--log-dir", f"{sub}/_logs", *members], standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            sys.exit(f"bench_ops: train-batch exited {exc.code}:\n{sink.getvalue()[-2000:]}")


def per_epoch(root: str, S: int, a) -> float:
    counts = []
    for e in (a.short, a.long):
        before = fakexp.ops_count()
        train_batch(root, S, e, a)
        counts.append(fakexp.ops_count() - before)
    return (counts[1] - counts[0]) / (a.long - a.short)


def by_module(root: str, S: int, a) -> list:
    """[(count per epoch, 'file:function')] of the tianref frames that made the device arrays."""
    seen = collections.Counter()
    init = fakexp.FakeArray.__init__

    def counting(self, x):
        f = sys._getframe(1)
        while f is not None and ("fakexp" in f.f_code.co_filename or "numpy" in f.f_code.co_filename):
            f = f.f_back
        if f is not None:
            seen[f"{os.path.basename(f.f_code.co_filename)}:{f.f_code.co_name}"] += 1
        init(self, x)

    out = {}
    for e in (a.short, a.long):
        seen.clear()
        fakexp.FakeArray.__init__ = counting
        try:
            train_batch(root, S, e, a)
        finally:
            fakexp.FakeArray.__init__ = init
        out[e] = collections.Counter(seen)
    diff = {k: (out[a.long][k] - out[a.short][k]) / (a.long - a.short) for k in out[a.long]}
    return sorted(((v, k) for k, v in diff.items() if v > 0), reverse=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--M", default="23")
    ap.add_argument("--K", default="64", help="small is fast; up to K = 362 the feature Gram's sums take one block, as on a GPU (larger K on the "
                    "fake backend adds a block of calls per 1 MiB of rows: 553 instead of 539 an epoch at K = 512)")
    ap.add_argument("--train-frac", default="0.5")
    ap.add_argument("--eta", default="2e-3")
    ap.add_argument("--metrics", default="full", choices=["full", "core"])
    ap.add_argument("--stacks", default="1,2,4,8", help="the stack sizes S, comma-separated")
    ap.add_argument("--short", type=int, default=25, help="epochs of the first run (>= the window of 20)")
    ap.add_argument("--long", type=int, default=35)
    ap.add_argument("--by-module", type=int, default=4, metavar="S",
                    help="also break down one epoch of a stack of S by the function that made each call "
                         "(0: no breakdown)")
    ap.add_argument("--json", default=None, help="also write the numbers to this file")
    a = ap.parse_args(argv)
    stacks = [int(x) for x in a.stacks.split(",")]
    print(f"bench_ops: backend calls per epoch on the fake backend; M={a.M} K={a.K} train_frac={a.train_frac} "
          f"eta={a.eta} --metrics {a.metrics}; epochs {a.short} and {a.long}, their difference per epoch")
    res = {}
    with tempfile.TemporaryDirectory(prefix="bench_ops.") as root:
        for S in stacks:
            res[S] = per_epoch(root, S, a)
        base = res[stacks[0]] / stacks[0]
        print(f"{'S':>4} {'calls/epoch':>12} {'calls/run-epoch':>16} {'ratio to S=' + str(stacks[0]):>14}")
        for S in stacks:
            print(f"{S:>4} {res[S]:12.1f} {res[S] / S:16.1f} {res[S] / S / base:14.3f}")
        slope = ((res[stacks[-1]] - res[stacks[0]]) / (stacks[-1] - stacks[0])) if len(stacks) > 1 else None
        if slope is not None:
            print(f"each extra run adds {slope:.1f} calls per epoch (S = {stacks[0]}: {res[stacks[0]]:.1f})")
        breakdown = []
        if a.by_module:
            breakdown = by_module(root, a.by_module, a)
            print(f"one epoch of a stack of {a.by_module}, by the function that made the call (top 15):")
            for v, k in breakdown[:15]:
                print(f"  {v:8.1f}  {k}")
    out = {"config": {"M": a.M, "K": a.K, "train_frac": a.train_frac, "eta": a.eta, "metrics": a.metrics,
                      "epochs": [a.short, a.long]},
           "calls_per_epoch": {str(S): res[S] for S in stacks}, "calls_per_extra_run": slope,
           "by_module": {k: v for v, k in breakdown},
           "provenance": provenance(" ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]))}
    print(json.dumps({k: v for k, v in out.items() if k != "by_module"}))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
