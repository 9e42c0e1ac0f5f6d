"""The lifecycle section's weight-decay schedules: which condition a run is, and the intervention (η = 2e-4
until T, then η × m for a fixed length) with its two claims. The one place the section reads the
intervention analysis (:mod:`tianref.analysis.wd_intervention`, used when present).

References: *The Lifecycle of the Spectral Edge* (review page, abstract: "removing weight decay post-grok
reverses compression while preserving the algorithm"); :func:`tianref.experiments.protocols.intervention_runs`
(T ∈ {60, 250}, m ∈ {0, 0.5, 2}, 200 epochs, seeds 0-2; m = 1 is the plain η = 2e-4 run; (250, 0) is the section's switch
run, to 600 epochs).

Conditions
    eta=<η>          no schedule
    switch           η -> 0 at LIFECYCLE_SWITCH (scaled), to the section's last epoch
    eta x<m> at <T>  any other schedule (the intervention runs)

doc["lifecycle"]["intervention"]
    length   L, the epochs after T (scaled)
    source   "tianref.analysis.wd_intervention" (its intervention_table: the values and the reversal rule)
    rows     per (T, m, seed) that reached T + L: {T, m, seed, tag, at_T: {X}, at_TL: {X}, ratio: {X(T+L)/X(T)},
             stays}
    reversal per (T, seed) with an m = 0 run: {T, seed, holds, m0: {ratios}, m1: {ratios}}
    rule     the thresholds of wd_intervention (REVERSE_MIN, COMPRESS_MAX, ACC_LEVEL, REVERSAL_KEYS)

Rules (most-runs over the seeds intervened on at a T where the run had generalised, test accuracy >= 0.99):
    reverses    the authors' quantity, the norm of all parameters (wd_intervention.py's param_norm):
                ||theta|| = sqrt(||W||_F^2 + ||V||_F^2) ends above its value at T with m = 0 while the m = 1
                run of the same seed ends below it (wd_intervention.REVERSE_MIN, COMPRESS_MAX). Their script
                sets no threshold (the curves are read), so the direction alone is tested, not the size;
                wd_intervention's own reversal (||W||_F and W srank, stored as 'reversal') is not judged
    stays       test accuracy at T+L >= 0.99 with m = 0 (its contrary: below 0.5, the algorithm lost; 0.98 is
                short of the claim, not its contrary)
    before grokking (test accuracy < 0.99 at T): shown for reading (info)
"""
from __future__ import annotations

import math

from tianref.experiments import protocols
from tianref.experiments.reproduce.cells import fmt, med, scaled
from tianref.experiments.reproduce.claims import Source, judged

KEYS = ("test_acc", "W_fro", "V_fro", "W_srank", "V_srank", "W_gap12", "W_gap23")
GROKKED = 0.99
LOST = 0.5          # "the algorithm is lost" (a claim's contrary): test accuracy back below one half, not 0.98
SEED = Source("seed", "The Lifecycle of the Spectral Edge (review page), abstract",
              quote="removing weight decay post-grok reverses compression while preserving the algorithm")
DIFFERENCE = "their model: transformer on Dyck-1/SCAN"
REVERSAL_DIFFERENCE = ("ours: η × 0 from T on, the optimizer's state carried on; theirs "
                       "(wd_intervention.py): a fresh AdamW from a post-grokking checkpoint, 3000 steps")


def theta_ratio(row):
    """||theta||(T + L) / ||theta||(T) of an intervention row, ||theta|| = sqrt(||W||_F^2 + ||V||_F^2) (theta =
    every parameter of the model, as the authors' param_norm); None where a norm is missing or not finite."""
    v = [row[w].get(k) for w in ("at_T", "at_TL") for k in ("W_fro", "V_fro")]
    if any(x is None or not math.isfinite(x) for x in v) or not (v[0] or v[1]):
        return None
    return math.hypot(v[2], v[3]) / math.hypot(v[0], v[1])


def schedule(config):
    """(T, m) of a two-step schedule eta_0 until T, then eta_0 * m (a run's config or a RunSpec's options);
    None without a schedule."""
    s = config.get("eta_schedule")
    if not s:
        return None
    if isinstance(s, str):                                   # as a RunSpec option: "0:0.0002,250:0"
        from tianref.config import parse_eta_schedule
        s = parse_eta_schedule(s)                            # the one parser of schedules
    (_, e0), (T, e1) = s[0], s[-1]
    return int(T), (float(e1) / float(e0) if e0 else float("nan"))


def condition(config, scale) -> str:
    sm = schedule(config)
    if sm is None:
        return f"eta={float(config['eta']):g}"
    T, m = sm
    if m == 0 and T == scaled(protocols.LIFECYCLE_SWITCH, scale):
        return "switch"
    return f"eta x{m:g} at {T}"


def schedule_of_label(label: str) -> tuple:
    """(T, m) of an 'eta x<m> at <T>' condition (for ordering)."""
    m, T = label.removeprefix("eta x").split(" at ")
    return int(T), float(m)


def measure_intervention(records, scale, grok_eta) -> dict:
    """The intervention table (module docstring), from :func:`tianref.analysis.wd_intervention.intervention_table`
    (the one place the section reads it): rows per (T, m, seed) with the values at T and T + L, the reversal
    verdict per (T, seed) and its summary. Only runs at grok_eta (and its schedules) are read."""
    from tianref.analysis import wd_intervention
    L = max(int(round(protocols.INTERVENTION_LENGTH * scale.epoch_factor)), 30)
    mine = [r for r in records if (wd_intervention.classify(r.config) or (None,))[0] == grok_eta]
    t = wd_intervention.intervention_table(mine, N=L)
    rows = [{"T": x["T"], "m": x["m"], "seed": x["seed"], "tag": x["run"], "at_T": x["at_T"],
             "at_TL": x["at_end"], "ratio": x["ratio"], "stays": x["stays"]} for x in t["rows"] if x["complete"]]
    return {"length": L, "source": "tianref.analysis.wd_intervention", "note": "", "rows": rows,
            "reversal": t["reversal"], "summary": t["summary"],
            "rule": {"reverse_min": wd_intervention.REVERSE_MIN, "compress_max": wd_intervention.COMPRESS_MAX,
                     "acc_level": wd_intervention.ACC_LEVEL, "keys": list(wd_intervention.REVERSAL_KEYS)}}


def _after_grok(rows, m):
    return [r for r in rows if r["m"] == m and (r["at_T"].get("test_acc") or 0) >= GROKKED]


def intervention_claims(d) -> list:
    """Removing the decay after grokking (m = 0 from a T where test accuracy >= 0.99): the compression reverses
    (the authors' quantity: with m = 0 ||theta|| = sqrt(||W||_F^2 + ||V||_F^2) grows over L epochs while the m = 1
    run of the same seed keeps shrinking it; wd_intervention's own ||W||_F and W srank rule is shown in the note,
    not judged) and the algorithm stays. Before grokking (test accuracy < 0.99 at T): shown for reading."""
    from tianref.analysis.wd_intervention import COMPRESS_MAX, REVERSE_MIN
    rows, L = d["rows"], d["length"]
    zero = _after_grok(rows, 0.0)
    kept = {(r["T"], r["seed"]): r for r in _after_grok(rows, 1.0)}
    grow = [theta_ratio(r) for r in zero]
    keep = [theta_ratio(kept[r["T"], r["seed"]]) if (r["T"], r["seed"]) in kept else None for r in zero]
    verdicts = [g > REVERSE_MIN and c < COMPRESS_MAX for g, c in zip(grow, keep) if g is not None and c is not None]
    k = sum(verdicts)
    # the contrary: with eta -> 0 the norm still shrinks (the compression goes on without weight decay)
    k_contrary = sum(g < REVERSE_MIN for g, c in zip(grow, keep) if g is not None and c is not None)
    Ts = sorted({r["T"] for r in zero})
    pct = lambda x: "—" if x is None else f"{100 * (x - 1):+.1f} %"                    # noqa: E731
    none = "" if zero else "no run had generalised (test accuracy ≥ 0.99) at a T where η was set to 0"
    old = [v["holds"] for v in d.get("reversal", []) if v["T"] in Ts]       # wd_intervention's W rule, shown
    note = (none or
            f"the authors' quantity is the norm of all parameters (wd_intervention.py, param_norm), read off its "
            f"curves with no threshold. Tested: its direction only, growing with η → 0 while the η-kept run's "
            f"shrinks. Not tested: how far the compression reverses: ‖θ‖ changes by {pct(med(grow))} in {L} "
            f"epochs with η → 0 against {pct(med(keep))} with η kept (medians). ‖W‖_F and W srank, shown, are not "
            f"judged (both grow while the η-kept run's shrink in {sum(bool(h) for h in old)} of "
            f"{sum(h is not None for h in old)} seeds)")
    out = [judged("Removing weight decay after grokking reverses the compression", SEED,
                  f"with η → 0 ‖θ‖ = √(‖W‖_F² + ‖V‖_F²) grows over {L} epochs while the η-kept run's shrinks, in "
                  f"{k}/{len(verdicts)} seeds, shrinks with η → 0 in {k_contrary}/{len(verdicts)} (T = {Ts}); median ‖θ‖(T+{L})/‖θ‖(T) {fmt(med(grow))} with η → 0, "
                  f"{fmt(med(keep))} with η kept; ‖W‖_F ratio {fmt(med([r['ratio'].get('W_fro') for r in zero]))}, "
                  f"W srank ratio {fmt(med([r['ratio'].get('W_srank') for r in zero]))} with η → 0",
                  "most-runs", (k, k_contrary, len(verdicts)), same_definition=False,
                  difference=DIFFERENCE + "; " + REVERSAL_DIFFERENCE, note=note)]
    acc = [r["at_TL"].get("test_acc") for r in zero]
    k2 = sum(a is not None and a >= GROKKED for a in acc)
    lost = sum(a is not None and a < LOST for a in acc)                     # the contrary: the algorithm is lost
    out.append(judged("... while the algorithm stays", SEED,
                      f"test accuracy ≥ {GROKKED:g} at T+{L} in {k2}/{len(zero)} seeds, < {LOST:g} in {lost}/{len(zero)} "
                      f"(median {fmt(med(acc))})",
                      "most-runs", (k2, lost, len(zero)), same_definition=False, difference=DIFFERENCE, note=none))
    for m in sorted({r["m"] for r in rows if r["m"] != 1.0}):
        pre = [r for r in rows if r["m"] == m and (r["at_T"].get("test_acc") or 0) < GROKKED]
        if not pre:
            continue
        base = {(r["T"], r["seed"]): r for r in rows if r["m"] == 1.0}
        a1 = [r["at_TL"].get("test_acc") for r in pre]
        a0 = [base.get((r["T"], r["seed"]), {}).get("at_TL", {}).get("test_acc") for r in pre]
        out.append(judged(f"Before grokking (test accuracy < {GROKKED:g} at T), weight decay × {m:g} from T",
                          Source("ours", "lifecycle intervention runs"),
                          f"median test accuracy at T+{L}: {fmt(med(a1))} (η kept: {fmt(med(a0))}); median "
                          f"‖W‖_F ratio {fmt(med([r['ratio'].get('W_fro') for r in pre]))}; T = "
                          f"{sorted({r['T'] for r in pre})}, {len(pre)} runs", "info", None))
    return out


def intervention_report(d) -> list:
    if not d["rows"]:
        return []
    L = ["", f"## Weight-decay intervention: η × m from T for {d['length']} epochs ({d['source']})", "",
         "| T | m | n | test acc T → T+L | ‖W‖_F ratio | ‖V‖_F ratio | W srank ratio | V srank ratio |",
         "|---|---|---|---|---|---|---|---|"]
    for T, m in sorted({(r["T"], r["m"]) for r in d["rows"]}):
        rs = [r for r in d["rows"] if r["T"] == T and r["m"] == m]
        at = lambda w, k: fmt(med([r[w].get(k) for r in rs]))                             # noqa: E731
        rt = lambda k: fmt(med([r["ratio"].get(k) for r in rs]))                           # noqa: E731
        L.append(f"| {T} | {m:g} | {len(rs)} | {at('at_T', 'test_acc')} → {at('at_TL', 'test_acc')} | {rt('W_fro')} | "
                 f"{rt('V_fro')} | {rt('W_srank')} | {rt('V_srank')} |")
    L += ["", "Ratios X(T+L)/X(T), medians over seeds; m = 1 is the plain run read at the same epochs."
          + (f" {d['note']}." if d.get("note") else "")]
    return L
