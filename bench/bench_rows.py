"""The cost of each per-row diagnostic alone, as a percentage of one full-metrics epoch, same process.

    python bench/bench_rows.py                     # M=71, K=2048, n=2016, float32, x^2, Adam, eta 2e-4, w 20
    python bench/bench_rows.py --rounds 30 --threads 1
    python bench/bench_rows.py --profile 15        # also cProfile 15 full and 15 core epochs (shares)

It trains --epochs-warm epochs (default 25: the window of 20 is full and the ring of weight-decay
parts holds nonzero parts), then, in --rounds interleaved rounds (the order rotated each round, so
that a shared machine's drift hits every item alike), times once per round:

    epoch_full      train.evaluate (--metrics full) + train.step: the reference (100 %)
    epoch_core      train.evaluate (--metrics core) + train.step (information)
and each diagnostic alone, called with the arguments evaluate passes it:
    edge_split      edge.window_splits for W and V (both views, as evaluate calls it: one eigh and
                    w x w algebra on the cross-Grams)
    edge_step       the edge's share of a step: edge.push (the update and its weight-decay part into
                    the rings, G's column and the cross-Grams' row and column: two ring passes) minus
                    gram_push; its median difference is printed as an item and counted in
                    the edge's total (edge_split + edge_step)
    gram_push       information, not a diagnostic: spectra.push alone (G's column: one pass over the ring
                    of Delta), what a step costs without the edge
    edge_reads      information: one pass over each ring (u_1 times the ring of Delta, float64, and
                    times the ring of Delta^wd, training dtype; W and V), with the rings' bytes and the
                    rate they give
    clocks          clocks.clock_stats(params, tail_r)
    margin_min      clocks.margin_min on the training Yhat
    fourier         Z_M: fourier.row_metrics (freq_* and energy_med) on F and its column sums 1^T F,
                    which the row computes once for the feature Gram and the energies; a group:
                    group_rows.row_metrics
    feature_gram    metrics.feature_gram_metrics(F): ftf_ratio and rho_tian (1^T F included)
    gradient_field  metrics.draw_pairs + metrics.gradient_field_metrics: gF_norm, indep_cos_*
    top_eig         spectra.top_eigenvalues of every Gram state and window
    transfer        the row's one device -> host transfer (concatenate as float64, backend.to_host)

Before timing, every diagnostic's output is compared with the row evaluate logs (bit for bit), so
the calls timed are the calls evaluate makes. step updates the rolling rings in place, so each
timed step gets a copy of them (made outside the timer) and the state stays that of row E.

It prints each item's median over rounds in ms, its % of the full-metrics epoch (flagged ABOVE
when > 2 %, the project's target) and, for information, its % of the core epoch; the last line is
the same as JSON. Timings on a shared machine are noisy; the ratios are what the script is for.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tianref import clocks, edge, fourier, group_rows, metrics, spectra, train  # noqa: E402
from provenance import emit, provenance  # noqa: E402  (bench/provenance.py)
from tianref.allocator import keep_freed_blocks  # noqa: E402
from tianref.backend import cpu_model  # noqa: E402
from tianref.backend import to_host  # noqa: E402
from tianref.config import TrainConfig, validate  # noqa: E402
from tianref.data import n_train_from_frac  # noqa: E402

TARGET_PCT = 2.0


def fresh_rings(state):
    """A TrainState whose rolling rings are copies (train.step writes them in place)."""
    spec = {k: dict(s, buf=s["buf"].copy(), gram=s["gram"].copy()) for k, s in state.spec.items()}
    edge_ = {k: dict(e, buf_wd=e["buf_wd"].copy(), C=e["C"].copy(), H=e["H"].copy())
             for k, e in state.edge.items()}
    return train.TrainState(params=state.params, adam=state.adam, spec=spec, rng=state.rng,
                            epoch=state.epoch, edge=edge_)


def diagnostics(xp, cfg, state, problem, fwd):
    """{name: thunk} of the per-row diagnostics, each called as train.evaluate calls it."""
    P = state.params
    Yhat, cache, _ = fwd
    F = cache[1]                                                   # (n, K) sigma(XW) of the row
    w = cfg.windows[0]
    beta = cfg.output_scale
    V_eff = P["V"] if beta == 1.0 else beta * P["V"]
    u = {k: spectra.top_of_run(xp, [state.spec[k]], w)[1] for k in ("W", "V")}                   # u_1 (w_max,)

    def gradient_field():
        j, jp = metrics.draw_pairs(state.rng, cfg.K, cfg.indep_pairs)
        return metrics.gradient_field_metrics(xp, Yhat, problem.train.y, V_eff, xp.asarray(j), xp.asarray(jp))

    F_sum = F.sum(axis=-2)                                         # (K,) 1^T F: the row computes it once for
    #                                           the feature Gram and the energies (charged to feature_gram)

    def fourier_row():
        if problem.group is None:                                  # Z_M: as rows_of calls it
            return fourier.row_metrics(xp, P["W"], problem.train, cfg.act, F, F_sum)
        return group_rows.row_metrics(xp, problem.group, P["W"], problem.train, cfg.act, F)

    def top_eig():
        return [spectra.top_eigenvalues(xp, state.spec[s], ww)
                for s in train.gram_states(cfg) for ww in cfg.windows]

    return {
        "edge_split": lambda: [edge.window_splits(xp, state.spec[k], state.edge[k], w) for k in ("W", "V")],
        "edge_reads": lambda: [(u[k] @ state.spec[k]["buf"], u[k].astype(state.edge[k]["buf_wd"].dtype)
                                @ state.edge[k]["buf_wd"]) for k in ("W", "V")],
        "clocks": lambda: clocks.clock_stats(xp, P, cfg.tail_r),
        "margin_min": lambda: clocks.margin_min(xp, Yhat, problem.train.y),
        "fourier": fourier_row,
        "feature_gram": lambda: metrics.feature_gram_metrics(xp, F),
        "gradient_field": gradient_field,
        "top_eig": top_eig,
    }


def check_against_row(xp, cfg, state, problem):
    """Every diagnostic's output equals the logged row's value bit for bit (the calls are evaluate's);
    returns the row's parts list for the transfer timing. The rng is restored afterwards."""
    rng_state = state.rng.bit_generator.state
    row, fwd = train.evaluate(xp, cfg, state, problem)
    state.rng.bit_generator.state = rng_state
    d = diagnostics(xp, cfg, state, problem, fwd)
    got = {}
    for name, split in zip(("W", "V"), d["edge_split"]()):
        for k, v in zip(edge.KEYS + edge.AUTHOR_KEYS, split):
            got[f"{name}_edge_{k}"] = v
    for (k, v) in d["clocks"]():
        got[k] = v
    got[clocks.MARGIN_KEY] = d["margin_min"]()
    for (k, v) in d["fourier"]():
        got[k] = v
    got["ftf_ratio"], got["rho_tian"] = d["feature_gram"]()
    got["gF_norm"], got["indep_cos_med"], got["indep_cos_p95"] = d["gradient_field"]()
    got["W_sigma"], got["V_sigma"] = d["top_eig"]()
    state.rng.bit_generator.state = rng_state
    bad = []
    for k, v in got.items():
        h = to_host(xp.asarray(v).astype(xp.float64)).reshape(-1)
        ref = np.asarray(row[k], dtype=np.float64).reshape(-1)
        if h.shape != ref.shape or not np.array_equal(h, ref):
            bad.append(f"{k}: {h} vs row {ref}")
    if bad:
        raise SystemExit("bench_rows: a diagnostic differs from the logged row:\n  " + "\n  ".join(bad))
    parts = [(k, xp.asarray(v)) for k, v in got.items()]
    return row, fwd, parts


def profile(xp, cfg, state, problem, epochs: int) -> dict:
    """cProfile of ``epochs`` full and core epochs from ``state``: {mode: [(function, seconds, share)]}."""
    out = {}
    for mode in ("full", "core"):
        c = cfg.replace(metrics=mode)
        st = fresh_rings(state)                         # the state of row E stays as it is
        pr = cProfile.Profile()
        t0 = time.perf_counter()
        pr.enable()
        for _ in range(epochs):
            _, fwd = train.evaluate(xp, c, st, problem)
            st = train.step(xp, c, st, problem, fwd)
        pr.disable()
        total = time.perf_counter() - t0
        stats = pstats.Stats(pr, stream=io.StringIO())
        rows = []
        for (fn, line, name), (_, _, tt, ct, _) in stats.stats.items():
            if "tianref" in fn or name.startswith("<method") or name.startswith("<built-in"):
                short = f"{os.path.basename(fn)}:{name}" if "tianref" in fn else name
                rows.append((short, ct, tt))
        rows.sort(key=lambda r: -r[1])
        out[mode] = {"seconds_per_epoch": total / epochs,
                     "cumulative": [(n, ct / epochs, ct / total) for n, ct, _ in rows[:25]]}
    return out


def size_args(ap, rounds: int):
    """The options of a headline-size state timed in rounds (this script and bench_edge_design.py)."""
    ap.add_argument("--M", type=int, default=71)
    ap.add_argument("--K", type=int, default=2048)
    ap.add_argument("--train-frac", type=float, default=0.4, help="n_train = round(frac M^2) (2016 at M = 71)")
    ap.add_argument("--eta", type=float, default=2e-4)
    ap.add_argument("--rounds", type=int, default=rounds, help="interleaved timing rounds (median taken)")
    ap.add_argument("--epochs-warm", type=int, default=25, help="training epochs before timing (>= window)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (threadpoolctl)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    size_args(ap, rounds=15)
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="also cProfile N full and N core epochs and print the main shares")
    ap.add_argument("--glibc-defaults", action="store_true",
                    help="leave glibc's malloc thresholds as they are (the CLI raises them at start: "
                         "tianref/allocator.py; by default this script does the same)")
    ap.add_argument("--json", default=None, help="also write the JSON here")
    a = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    kept = False if a.glibc_defaults else keep_freed_blocks()   # as the CLI does before training

    xp = np
    cfg = validate(TrainConfig(M=a.M, K=a.K, n_train=n_train_from_frac(a.M, a.train_frac), eta=a.eta,
                               dtype="float32", act="sqr", optimizer="adam", windows=(20,),
                               metrics="full", epochs=a.epochs_warm))
    core = cfg.replace(metrics="core")
    load0 = os.getloadavg()
    with threadpool_limits(limits=a.threads):
        problem, state = train.setup(cfg, xp)
        for _ in range(a.epochs_warm):                 # core rows: the trajectory does not depend on them
            _, fwd = train.evaluate(xp, core, state, problem)
            state = train.step(xp, core, state, problem, fwd)
        row, fwd, parts = check_against_row(xp, cfg, state, problem)
        diag = diagnostics(xp, cfg, state, problem, fwd)

        def epoch(c):
            def run():
                _, f = train.evaluate(xp, c, state, problem)
                train.step(xp, c, st_copy[0], problem, f)
            return run
        st_copy = [None]

        def transfer():
            flat = xp.concatenate([xp.reshape(v, (-1,)).astype(xp.float64) for _, v in parts])
            return to_host(flat)

        # the next step's update and weight-decay part (train.step on copies of the rings), for the pushes
        nxt = train.step(xp, cfg, fresh_rings(state), problem, fwd)
        slot = state.spec["W"]["count"] % state.spec["W"]["buf"].shape[0]
        upd = {k: (spectra.delta(xp, nxt.params[k], state.params[k]), nxt.edge[k]["buf_wd"][slot].copy())
               for k in ("W", "V")}

        def edge_push():
            for k in ("W", "V"):
                edge.push(xp, st_copy[0].edge[k], st_copy[0].spec[k], *upd[k])

        def gram_push():
            for k in ("W", "V"):
                spectra.push(xp, st_copy[0].spec[k], upd[k][0])

        items = {"epoch_full": epoch(cfg), "epoch_core": epoch(core), **diag, "edge_push": edge_push,
                 "gram_push": gram_push, "transfer": transfer}
        names = list(items)
        times = {k: [] for k in names}
        rng_state = state.rng.bit_generator.state
        for r in range(a.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for k in order:
                st_copy[0] = fresh_rings(state)          # outside the timer
                t0 = time.perf_counter()
                items[k]()
                times[k].append(time.perf_counter() - t0)
            state.rng.bit_generator.state = rng_state     # the same pairs every round
        prof = profile(xp, cfg, state, problem, a.profile) if a.profile else None
    load1 = os.getloadavg()

    med = {k: float(np.median(v)) for k, v in times.items()}
    med["edge_step"] = med.pop("edge_push") - med["gram_push"]       # the edge's share of a step
    med["edge_total"] = med["edge_split"] + med["edge_step"]
    names = [k for k in names if k != "edge_push"]
    names[names.index("edge_split") + 1:names.index("edge_split") + 1] = ["edge_step", "edge_total"]
    full, cor = med["epoch_full"], med["epoch_core"]
    pct = {k: 100.0 * med[k] / full for k in names}
    pct_core = {k: 100.0 * med[k] / cor for k in names}
    info = ("epoch_full", "epoch_core", "edge_reads", "gram_push", "edge_split", "edge_step")   # edge: its total
    above = [k for k in names if k not in info and pct[k] > TARGET_PCT]
    ring_bytes = sum(state.spec[k]["buf"].nbytes + state.edge[k]["buf_wd"].nbytes for k in ("W", "V"))
    print(f"M={a.M} K={a.K} n_train={cfg.n_train} float32 x^2 adam eta={a.eta:g} window 20, "
          f"{a.epochs_warm} warm epochs, {a.rounds} rounds, {a.threads} BLAS thread(s), "
          f"freed large blocks kept for reuse: {kept}")
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs; load average {load0[0]:.2f} before, "
          f"{load1[0]:.2f} after")
    print(f"{'item':16s} {'median ms':>10s} {'% full':>8s} {'% core':>8s}")
    for k in names:
        flag = "  ABOVE 2 %" if k in above else ""
        print(f"{k:16s} {med[k] * 1e3:10.2f} {pct[k]:7.2f}% {pct_core[k]:7.2f}%{flag}")
    print(f"above {TARGET_PCT:g} % of the full-metrics epoch: {', '.join(above) if above else 'none'}")
    print(f"edge_reads: one pass over each ring of W and V, {ring_bytes / 1e6:.1f} MB, at "
          f"{ring_bytes / med['edge_reads'] / 1e9:.1f} GB/s; a step's edge.push makes one pass over each "
          "(the ring of Delta's carries G's column too), a row none")
    if prof:
        for mode, p in prof.items():
            print(f"profile, {mode} metrics ({a.profile} epochs, {p['seconds_per_epoch'] * 1e3:.1f} ms/epoch "
                  "under cProfile): cumulative share per function")
            for n, s, share in p["cumulative"]:
                print(f"  {n:48s} {s * 1e3:8.2f} ms {100 * share:6.1f}%")
    doc = {"config": {"M": a.M, "K": a.K, "n_train": cfg.n_train, "eta": a.eta, "dtype": "float32",
                      "act": "sqr", "window": 20, "epochs_warm": a.epochs_warm, "rounds": a.rounds,
                      "threads": a.threads, "keep_freed_blocks": kept},
           "machine": cpu_model(), "loadavg": [load0[0], load1[0]],
           "median_ms": {k: 1e3 * v for k, v in med.items()},
           "percent_of_full": pct, "percent_of_core": pct_core, "above_target": above,
           "edge_ring_bytes": ring_bytes, "edge_reads_gbps": ring_bytes / med["edge_reads"] / 1e9,
           "profile": prof, "provenance": provenance(sys.argv)}
    emit(doc, a.json)


if __name__ == "__main__":
    main()
