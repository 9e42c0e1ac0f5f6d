"""The edge split's two designs, same process: incremental w x w cross-Grams updated by every step (what
tianref/edge.py does) against per-row passes over the rings (the design before them, whose arithmetic is
kept as the ring route: edge.edge_parts, split_of, author_split).

    python bench/bench_edge_design.py                  # M=71, K=2048, n=2016, float32, x^2, Adam, eta 2e-4, w 20
    python bench/bench_edge_design.py --rounds 15 --threads 1

Per parameter W and V:
    cross-Grams   step: edge.push (the update and its weight-decay part into their rings; G's column and
                        the cross-Grams' row and column from two ring passes, by blocks);
                  row:  edge.window_splits (one eigh and w x w algebra)
    rings         step: spectra.push (G's column: one pass over the ring of Delta) and the Delta^wd ring
                        written;
                  row:  the same eigh, then a = D u_1 (a pass over the ring of Delta), b = D^wd u_1 (a pass
                        over the ring of Delta^wd) and p_wd = D^wd^T v_1 (a pass over the window's rows of it)
    gram_push     spectra.push alone: what a step costs without the edge

Timed once per round, each right after an untimed full-metrics epoch (so the caches hold what they hold in
training), the items in a rotated order; medians over rounds. The edge's own cost per epoch is
(step - gram_push) + row for each design, printed as a percentage of a full-metrics epoch timed in the same
rounds, with the ratio cross-Grams / rings. Before timing, the logged row's split (cross-Grams) is compared
with the ring route on the same rings (largest difference relative to each view's largest term).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tianref import edge, spectra, train  # noqa: E402
from provenance import emit, provenance  # noqa: E402  (bench/provenance.py)
from bench_rows import fresh_rings, size_args  # noqa: E402  (this folder)
from tianref.allocator import keep_freed_blocks  # noqa: E402
from tianref.backend import cpu_model  # noqa: E402
from tianref.config import TrainConfig, validate  # noqa: E402
from tianref.data import n_train_from_frac  # noqa: E402

def ring_route(state, w: int):
    """Both views of W and V from the rings' contents (the previous design's row)."""
    out = []
    for k in ("W", "V"):
        parts = edge.edge_parts(np, [state.spec[k]], [state.edge[k]], w)
        out.append(edge.split_of(np, parts) + edge.author_split(np, state.spec[k], state.edge[k], parts[0][0], w))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    size_args(ap, rounds=9)
    ap.add_argument("--json", default=None, help="also write the JSON here")
    a = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    keep_freed_blocks()                                  # as the CLI does before training
    cfg = validate(TrainConfig(M=a.M, K=a.K, n_train=n_train_from_frac(a.M, a.train_frac), eta=a.eta,
                               dtype="float32", act="sqr", optimizer="adam", windows=(20,),
                               metrics="full", epochs=a.epochs_warm))
    w = cfg.windows[0]
    core = cfg.replace(metrics="core")
    load0 = os.getloadavg()
    with threadpool_limits(limits=a.threads):
        problem, state = train.setup(cfg, np)
        for _ in range(a.epochs_warm):
            _, fwd = train.evaluate(np, core, state, problem)
            state = train.step(np, core, state, problem, fwd)
        row, fwd = train.evaluate(np, cfg, state, problem)
        # the next step's update and weight-decay part, as train.step forms them (for the timed pushes)
        nxt = train.step(np, cfg, fresh_rings(state), problem, fwd)
        delta = {k: spectra.delta(np, nxt.params[k], state.params[k]) for k in ("W", "V")}
        delta_wd = {k: nxt.edge[k]["buf_wd"][state.spec[k]["count"] % nxt.edge[k]["buf_wd"].shape[0]].copy()
                    for k in ("W", "V")}
        agree = {}
        for k, ring in zip(("W", "V"), ring_route(state, w)):
            for view in (edge.KEYS, edge.AUTHOR_KEYS):
                vals = ring[:3] if view is edge.KEYS else ring[3:]
                scale = max(abs(float(v)) for v in vals)
                for name, v in zip(view, vals):
                    agree[f"{k}_edge_{name}"] = abs(row[f"{k}_edge_{name}"] - float(v)) / scale

        def rings_step():
            spec, ed = work[0].spec, work[0].edge
            for k in ("W", "V"):
                ed[k]["buf_wd"][spec[k]["count"] % spec[k]["buf"].shape[0]] = delta_wd[k]   # the slot push fills
                spectra.push(np, spec[k], delta[k])

        def gram_push():
            spec = work[0].spec
            for k in ("W", "V"):
                spectra.push(np, spec[k], delta[k])

        def cross_step():
            spec, ed = work[0].spec, work[0].edge
            for k in ("W", "V"):
                edge.push(np, ed[k], spec[k], delta[k], delta_wd[k])

        items = {
            "epoch_full": lambda: train.step(np, cfg, work[0], problem, train.evaluate(np, cfg, state, problem)[1]),
            "cross_step": cross_step,
            "cross_row": lambda: [edge.window_splits(np, state.spec[k], state.edge[k], w) for k in ("W", "V")],
            "gram_push": gram_push,
            "rings_step": rings_step,
            "rings_row": lambda: ring_route(state, w),
        }
        names = list(items)
        times = {k: [] for k in names}
        rng_state = state.rng.bit_generator.state
        work = [None]
        for r in range(a.rounds):
            for k in names[r % len(names):] + names[:r % len(names)]:
                work[0] = fresh_rings(state)
                _, f = train.evaluate(np, cfg, state, problem)   # an untimed epoch first: the caches as in training
                train.step(np, cfg, fresh_rings(state), problem, f)
                state.rng.bit_generator.state = rng_state
                t0 = time.perf_counter()
                items[k]()
                times[k].append(time.perf_counter() - t0)
                state.rng.bit_generator.state = rng_state
    load1 = os.getloadavg()

    med = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
    full = med["epoch_full"]
    cur = med["cross_step"] - med["gram_push"] + med["cross_row"]
    old = med["rings_step"] - med["gram_push"] + med["rings_row"]
    print(f"M={a.M} K={a.K} n_train={cfg.n_train} float32 x^2 adam eta={a.eta:g} window {w}, "
          f"{a.epochs_warm} warm epochs, {a.rounds} rounds, {a.threads} BLAS thread(s)")
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs; load average {load0[0]:.2f} before, "
          f"{load1[0]:.2f} after")
    for k in names:
        print(f"  {k:16s} {med[k]:8.2f} ms")
    print(f"the edge's own cost per epoch: cross-Grams {cur:.2f} ms ({100 * cur / full:.2f} % of the full epoch), "
          f"rings {old:.2f} ms ({100 * old / full:.2f} %); ratio cross-Grams / rings {cur / old:.3f}")
    print(f"step + row, both parameters: cross-Grams {med['cross_step'] + med['cross_row']:.2f} ms, "
          f"rings {med['rings_step'] + med['rings_row']:.2f} ms")
    print("logged split (cross-Grams) against the ring route, largest difference relative to its view's "
          f"largest term: {max(agree.values()):.2g} ({max(agree, key=agree.get)})")
    doc = {"config": {"M": a.M, "K": a.K, "n_train": cfg.n_train, "eta": a.eta, "window": w,
                      "epochs_warm": a.epochs_warm, "rounds": a.rounds, "threads": a.threads},
           "median_ms": med, "edge_ms": {"cross_grams": cur, "rings": old},
           "edge_percent_of_full": {"cross_grams": 100 * cur / full, "rings": 100 * old / full},
           "ratio_cross_grams_rings": cur / old, "logged_vs_ring_route": agree,
           "loadavg": [load0[0], load1[0]], "provenance": provenance(sys.argv)}
    emit(doc, a.json)


if __name__ == "__main__":
    main()
