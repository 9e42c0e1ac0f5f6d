"""The cost of the spectral-edge split and of the clock statistics, against a core epoch.

    python bench/bench_edge.py                     # M=71, K=2048, n=2016, float32, eta 2e-4, 40 epochs
    python bench/bench_edge.py --epochs 100 --xp cupy

Four timed runs of ``tianref.train.run`` with ``--metrics core``, each after its own warm-up run,
interleaved and repeated (--repeats) so that drift on a shared machine hits all alike:

    base    no split (the optimizer keeps no m^wd, edge.push pushes G only and the rows' split is skipped)
            and no clock statistics (clocks.clock_stats returns nothing)
    split   base + the edge split (m^wd in the optimizer, the ring of Delta^wd, the two cross-Grams,
            the per-row eigh and quadratic forms)
    clocks  base + the clock statistics (W W^T, V^T V, the SVD of W V, per row)
    all     what ``train`` runs

It prints seconds per epoch (the minimum over repeats) and the extra cost of each against base, as
a percentage of a core epoch (target for the split: <= 5%). With eta > 0 the split does all its work
(with eta = 0 it does none: the control runs pay nothing).

On a shared machine the differences of whole runs are noisy (a few percent of an epoch is the
noise itself), so the script also times the pieces directly on the state of a real run after E
epochs: in each of --reps rounds one core epoch (evaluate + step) and then each piece, and divides
the minimum of each piece by the minimum epoch:

    split/step  the optimizer's m^wd and Delta^wd (adam_update with minus without), and edge.push
                for W and V (since the cross-Grams: the rings written, G's column and C's and H's
                row and column; G's own pass included, which bench_edge_design.py separates)
    split/row   edge.window_split for W and V: the ring route (eigh of a w x w Gram, D u_1 and D^wd u_1:
                two passes over (w, P) rings), which the rows took before the cross-Grams and the edge
                probe still takes; a row now costs edge.window_splits (bench_rows.py's edge_split)
    author/row  edge.author_split for W and V alone, given D u_1 (v_1, then D^T v_1 and D^wd^T v_1:
                two more passes over the window's rows of the rings): the ring route's edge-projected view, as a
                percentage of a full-metrics epoch (evaluate with --metrics full + step, timed in the
                same rounds; target <= 2%)
    clocks/row  clocks.clock_stats

--pieces-only skips the whole-run timings (the slow part on a shared machine).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tianref import clocks, edge, spectra, train  # noqa: E402
from tianref.backend import get_xp  # noqa: E402
from tianref.config import TrainConfig, validate  # noqa: E402


def timed(cfg, xp, split: bool, clock: bool, sync) -> float:
    """Seconds for cfg.epochs epochs (rows 0..E) with the split and the clocks on or off."""
    patches = []
    if not split:
        patches += [mock.patch.object(edge, "push", lambda xp, state, spec, d, wd, mode="float64":
                                      (spectra.push(xp, spec, d, mode), state)),   # G only: no cross-Grams
                    mock.patch.object(edge, "window_splits_runs", lambda *a, **k: None)]
    if not clock:
        patches += [mock.patch.object(clocks, "clock_stats", lambda *a, **k: [])]
    for p in patches:
        p.start()
    try:
        problem, state = train.setup(cfg, xp)
        if not split:
            state.adam.pop("m_wd")                 # the optimizer then keeps no m^wd
        sync()
        t0 = time.perf_counter()
        train.run(cfg, xp, problem=problem, state=state)
        sync()
        return time.perf_counter() - t0
    finally:
        for p in patches:
            p.stop()


def time_pieces(cfg, xp, sync, reps) -> dict:
    """Seconds per call of each piece (module docstring) and of one core epoch: each the minimum
    over ``reps`` rounds, the pieces timed right after each epoch so drift hits them alike."""
    from tianref import loss as losses, model, optim
    problem, state = train.setup(cfg, xp)
    for _ in range(cfg.epochs):                        # a trajectory with a full window of updates
        row, fwd = train.evaluate(xp, cfg, state, problem)
        state = train.step(xp, cfg, state, problem, fwd)
    kw = dict(lr=cfg.lr, eta=cfg.eta)
    w = cfg.windows[0]
    full = cfg.replace(metrics="full")
    a = {k: edge.edge_parts(xp, [state.spec[k]], [state.edge[k]], w)[0][0] for k in ("W", "V")}  # D u_1
    best = {"epoch": float("inf"), "epoch_full": float("inf"), "opt": float("inf"), "opt0": float("inf"),
            "push": float("inf"), "row": float("inf"), "author": float("inf"), "clk": float("inf")}

    def once(key, f):
        sync()
        t0 = time.perf_counter()
        out = f()
        sync()
        best[key] = min(best[key], time.perf_counter() - t0)
        return out
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        row, fwd = train.evaluate(xp, cfg, state, problem)       # one core epoch: row t, then step t+1
        st2 = train.step(xp, cfg, state, problem, fwd)
        sync()
        best["epoch"] = min(best["epoch"], time.perf_counter() - t0)
        sync()
        t0 = time.perf_counter()
        row, fwd = train.evaluate(xp, full, state, problem)      # one full-metrics epoch
        st2 = train.step(xp, full, state, problem, fwd)
        sync()
        best["epoch_full"] = min(best["epoch_full"], time.perf_counter() - t0)
        Yhat, cache = model.forward(xp, state.params, problem.train, cfg.act)
        _, dY = losses.loss_and_grad(xp, Yhat, problem.train.y, cfg.loss)
        grads = model.backward(xp, state.params, problem.train, cache, dY, cfg.act)
        no_wd = {k: v for k, v in state.adam.items() if k not in ("m_wd", "m_wd_zero")}
        new, _, wd = once("opt", lambda: optim.adam_update(xp, state.params, grads, state.adam,
                                                          wd_part=True, **kw))
        once("opt0", lambda: optim.adam_update(xp, state.params, grads, no_wd, **kw))
        once("push", lambda: [edge.push(xp, state.edge[k], state.spec[k],
                                        spectra.delta(xp, new[k], state.params[k]), wd[k]) for k in new])
        once("row", lambda: [edge.window_split(xp, state.spec[k], state.edge[k], w) for k in new])
        once("author", lambda: [edge.author_split(xp, state.spec[k], state.edge[k], a[k], w) for k in new])
        once("clk", lambda: clocks.clock_stats(xp, state.params))
        del st2
    return {"epoch": best["epoch"], "epoch_full": best["epoch_full"],
            "split_step": max(best["opt"] - best["opt0"], 0.0) + best["push"],
            "split_row": best["row"], "author_row": best["author"], "clocks_row": best["clk"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--M", type=int, default=71)
    ap.add_argument("--K", type=int, default=2048)
    ap.add_argument("--n-train", type=int, default=2016)
    ap.add_argument("--eta", type=float, default=2e-4)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reps", type=int, default=20, help="calls per piece (minimum taken)")
    ap.add_argument("--xp", default="numpy", choices=["numpy", "cupy"])
    ap.add_argument("--json", default=None, help="also write the numbers here")
    ap.add_argument("--pieces-only", action="store_true", help="time the pieces only, not whole runs")
    a = ap.parse_args(argv)
    xp = get_xp(a.xp)
    sync = (lambda: xp.cuda.Device().synchronize()) if a.xp == "cupy" else (lambda: None)
    cfg = validate(TrainConfig(M=a.M, K=a.K, n_train=a.n_train, eta=a.eta, epochs=a.epochs, metrics="core"))
    warm = validate(cfg.replace(epochs=a.warmup))
    modes = {"base": (False, False), "split": (True, False), "clocks": (False, True), "all": (True, True)}
    best = {m: float("inf") for m in modes}
    for r in range(0 if a.pieces_only else a.repeats):
        for m, (split, clock) in modes.items():
            timed(warm, xp, split, clock, sync)
            best[m] = min(best[m], timed(cfg, xp, split, clock, sync))
            print(f"repeat {r + 1}/{a.repeats} {m:6s} {best[m] / (a.epochs + 1):.4f} s/epoch (best so far)",
                  file=sys.stderr)
    pieces = time_pieces(cfg, xp, sync, a.reps)
    print(f"M={a.M} K={a.K} n={a.n_train} eta={a.eta:g} float32 core, {a.epochs} epochs, {a.xp}")
    per, extra = {}, {}
    if not a.pieces_only:
        per = {m: best[m] / (a.epochs + 1) for m in modes}
        extra = {m: 100.0 * (per[m] - per["base"]) / per["base"] for m in modes if m != "base"}
        print(f"whole runs, best of {a.repeats}:")
        for m in modes:
            tail = "" if m == "base" else f"   {extra[m]:+.1f}% of a core epoch"
            print(f"  {m:6s} {per[m]:.4f} s/epoch{tail}")
    print("pieces (min over calls), as % of the fastest core epoch "
          f"({pieces['epoch'] * 1e3:.1f} ms):")
    for k in ("split_step", "split_row", "clocks_row"):
        print(f"  {k:10s} {pieces[k] * 1e3:7.2f} ms   {100 * pieces[k] / pieces['epoch']:5.1f}%")
    split_pct = 100 * (pieces["split_step"] + pieces["split_row"]) / pieces["epoch"]
    print(f"  split total {split_pct:.1f}% of a core epoch (target <= 5%: {'met' if split_pct <= 5 else 'missed'})")
    author_pct = 100 * pieces["author_row"] / pieces["epoch_full"]
    print(f"  author_row {pieces['author_row'] * 1e3:7.2f} ms   {author_pct:5.1f}% of the fastest full-metrics "
          f"epoch ({pieces['epoch_full'] * 1e3:.1f} ms; target <= 2%: {'met' if author_pct <= 2 else 'missed'})")
    doc = {"config": cfg.to_dict(), "s_per_epoch": per, "extra_percent": extra, "xp": a.xp,
           "pieces_s": pieces, "split_percent": split_pct, "author_percent_of_full": author_pct}
    print(json.dumps(doc))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=2)


if __name__ == "__main__":
    main()
