"""The lifecycle section's weight-decay schedules: which condition a run is, and the intervention (η = 2e-4
until T, then η × m for a fixed length) with its two claims. The one place the section reads the
intervention analysis (:mod:`tianref.analysis.wd_intervention`, used when present).

References: *The Lifecycle of the Spectral Edge* (review page, abstract: "removing weight decay post-grok
reverses compression while preserving the algorithm"); :func:`tianref.experiments.protocols.intervention_runs`
(T ∈ {60, 250}, m ∈ {0, 0.5, 2}, 200 epochs; m = 1 is the plain η = 2e-4 run; (250, 0) is the section's switch
run, to 600 epochs).

Conditions
    eta=<η>          no schedule
    switch           η -> 0 at LIFECYCLE_SWITCH (scaled), to the section's last epoch
    eta x<m> at <T>  any other schedule (the intervention runs)

doc["lifecycle"]["intervention"]
    length   L, the epochs after T (scaled)
    source   "tianref.analysis.wd_intervention" or "local" (values read here, from the rows)
    rows     per (T, m, seed): {T, m, seed, tag, at_T: {X}, at_TL: {X}, ratio: {X(T+L)/X(T)}} for X in KEYS
    note     what was used, when the analysis module is absent or has another interface

Rules (most-runs over the seeds intervened on at a T where the run had generalised, test accuracy >= 0.99):
    reverses    ||W||_F(T+L) / ||W||_F(T) > 1 with m = 0 (the norm weight decay compressed grows back)
    stays       test accuracy at T+L >= 0.99 with m = 0
"""
from __future__ import annotations

from tianref.experiments import protocols
from tianref.experiments.reproduce.cells import fmt, med, scaled
from tianref.experiments.reproduce.claims import Source, judged
from tianref.experiments.reproduce.runstats import column_at

KEYS = ("test_acc", "W_fro", "V_fro", "W_srank", "V_srank", "W_gap12", "W_gap23")
GROKKED = 0.99
SEED = Source("seed", "The Lifecycle of the Spectral Edge (review page), abstract",
              quote="removing weight decay post-grok reverses compression while preserving the algorithm")
DIFFERENCE = "their model: transformer on Dyck-1/SCAN"


def schedule(config):
    """(T, m) of a two-step schedule eta_0 until T, then eta_0 * m (a run's config or a RunSpec's options);
    None without a schedule."""
    s = config.get("eta_schedule")
    if not s:
        return None
    if isinstance(s, str):                                   # as a RunSpec option: "0:0.0002,250:0"
        s = [item.split(":") for item in s.split(",")]
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


def _local_rows(entries, L) -> list:
    out = []
    for T, m, seed, rec in entries:
        a = {k: column_at(rec, k, T) for k in KEYS if rec.has(k)}
        b = {k: column_at(rec, k, T + L) for k in KEYS if rec.has(k)}
        out.append({"T": T, "m": m, "seed": seed, "tag": rec.path.name, "at_T": a, "at_TL": b,
                    "ratio": {k: (b[k] / a[k] if a.get(k) and b.get(k) is not None else None) for k in a}})
    return out


def measure_intervention(records, scale, grok_eta) -> dict:
    """The intervention table (module docstring). The plain runs at grok_eta stand for m = 1 at every T."""
    L = max(int(round(protocols.INTERVENTION_LENGTH * scale.epoch_factor)), 30)
    Ts = [scaled(T, scale) for T in protocols.INTERVENTION_EPOCHS]
    entries = []
    for r in records:
        sm, seed = schedule(r.config), int(r.config["seed"])
        if sm is not None:
            entries.append((sm[0], sm[1], seed, r))
        elif float(r.config["eta"]) == grok_eta:
            entries += [(T, 1.0, seed, r) for T in Ts]
    entries = [e for e in entries if e[0] + L < e[3].n_epochs]
    try:
        from tianref.analysis import wd_intervention
    except ImportError:
        wd_intervention = None
    # --- the intervention analysis plugs in here: its per-(T, m, seed) table replaces _local_rows ---------
    if wd_intervention is not None and hasattr(wd_intervention, "intervention_table"):
        return {"length": L, "source": "tianref.analysis.wd_intervention", "note": "",
                "rows": wd_intervention.intervention_table(
                    [{"T": T, "m": m, "seed": s, "record": rec} for T, m, s, rec in entries], length=L)}
    note = ("Values read from the rows here" if wd_intervention is None else
            "tianref.analysis.wd_intervention has no intervention_table: the values are read from the rows here")
    return {"length": L, "source": "local", "note": note, "rows": _local_rows(entries, L)}


def _after_grok(rows, m):
    return [r for r in rows if r["m"] == m and (r["at_T"].get("test_acc") or 0) >= GROKKED]


def intervention_claims(d) -> list:
    rows, L = d["rows"], d["length"]
    zero = _after_grok(rows, 0.0)
    kept = {(r["T"], r["seed"]): r for r in _after_grok(rows, 1.0)}
    grow = [r["ratio"].get("W_fro") for r in zero]
    k = sum(g is not None and g > 1 for g in grow)
    keep = [kept.get((r["T"], r["seed"]), {}).get("ratio", {}).get("W_fro") for r in zero]
    Ts = sorted({r["T"] for r in zero})
    note = "" if zero else "no run had generalised (test accuracy ≥ 0.99) at a T where η was set to 0"
    out = [judged("Removing weight decay after grokking reverses the compression", SEED,
                  f"‖W‖_F(T+{L})/‖W‖_F(T) > 1 in {k}/{len(zero)} seeds (T = {Ts}); median {fmt(med(grow))} with η → 0, "
                  f"{fmt(med(keep))} with η kept; W srank ratio {fmt(med([r['ratio'].get('W_srank') for r in zero]))}",
                  "most-runs", (k, len(zero)), same_definition=False, difference=DIFFERENCE, note=note)]
    acc = [r["at_TL"].get("test_acc") for r in zero]
    k2 = sum(a is not None and a >= GROKKED for a in acc)
    out.append(judged("... while the algorithm stays", SEED,
                      f"test accuracy ≥ {GROKKED:g} at T+{L} in {k2}/{len(zero)} seeds (median {fmt(med(acc))})",
                      "most-runs", (k2, len(zero)), same_definition=False, difference=DIFFERENCE, note=note))
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
