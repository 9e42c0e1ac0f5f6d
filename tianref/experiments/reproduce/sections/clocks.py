"""The ``clocks`` section: the two-training-clocks seed paper on this model, judged by its own reading of a
finite run (§F.4): two clocks only when the classifier clock has stabilised and the structural statistic and
the test curve move together after it.

References: *Deciphering Two Training Clocks in Grokking via Deep Linear Network Theory with Conditional ReLU
Reduction* (§F.4 "Empirical Estimation of the Clocks"; §1 and §2.4, weight decay as a Schatten penalty that
biases towards low effective rank); :mod:`tianref.analysis.clock_events` (the per-run events);
docs/edge-and-clocks.md §5 and §8. The runs: protocols.section_runs('clocks') (x² with the paper's loss, 400
epochs; ReLU with cross-entropy, 800 epochs; η ∈ {2e-4, 0}; seeds 0-4).

doc["clocks"] (measure)
    runs        per run: tag, seed, condition, every key clock_events returns (t_cls, t_rep, clock_ratio and,
                where the analysis provides them, t_cls_abs, t_rep_settled, t_rep_censored, t_margin, t_rep_tail,
                clock_outcome), t05, t099, loss_min_ratio, W_srank / WV_nuc {start, max, final, final_over_max}
    conditions  the conditions in order

Rules: the ordering claim counts the runs whose clock_outcome is "two-clocks" (most-runs-no-opposite: §F.4 says
the other outcomes "are not contradictions", so too few two-clocks runs read "differs", never "disagrees"; the
runs without a clock_outcome are not counted, and none with it is "not measurable"); the weight-decay claim
compares final/max of W_srank and ‖WV‖_* with weight decay against the η = 0 runs (ratio-below).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tianref.analysis import detectors as det
from tianref.experiments import protocols
from tianref.experiments.reproduce.cells import (cell, claims_block, condition_label, fmt, med_of, report_head,
                                                 rows_of, stats)
from tianref.experiments.reproduce.claims import Source, judged
from tianref.experiments.reproduce.section import Section

F4 = Source("seed", "Deciphering Two Training Clocks, §F.4",
            quote="If the structural clock and the test curve move together while the classifier clock has already "
                  "stabilized, the run supports the two-clock interpretation. If the test curve improves before the "
                  "chosen structural statistic changes, the statistic is probably not the right representation "
                  "variable for that task.")
SCHATTEN = Source("seed", "Deciphering Two Training Clocks, §1",
                  quote="this penalty applies stronger shrinkage to small singular values and therefore biases the "
                        "representation toward low effective rank")
DIFFERENCE = "their model: MLP with token embeddings, CE, AdamW, 15,000 epochs"
OUTCOMES = ("two-clocks", "test-before-structure", "structure-without-test", "undetermined")
EVENTS = ("t_cls", "t_cls_abs", "t_rep", "t_rep_settled", "t_margin", "t_rep_tail", "clock_ratio")


def clock_inputs(rec) -> dict:
    """The run's clock events: the one place this section reads tianref.analysis.clock_events."""
    from tianref.analysis import clock_events
    ev = clock_events.clock_events(rec.columns, loss=rec.config.get("loss", "tian"))   # ce: the absolute clock
    return {k: (bool(v) if isinstance(v, (bool, np.bool_)) else v) for k, v in ev.items()}


def clocks_run(rec) -> dict:
    v = {"tag": rec.path.name, "seed": rec.config["seed"], "condition": condition_label(rec.config)}
    v.update(clock_inputs(rec))
    t05, t099 = det.test_crossings(rec.col("test_acc"))
    v["t05"], v["t099"] = float(t05), float(t099)
    L = rec.col("train_loss")
    v["loss_min_ratio"] = float(np.nanmin(L) / L[0])
    for key in ("W_srank", "WV_nuc"):
        col = rec.col(key)
        v[key] = {"start": float(col[0]), "max": float(np.nanmax(col)), "final": float(col[-1]),
                  "final_over_max": float(col[-1] / np.nanmax(col))}
    return v


def censored(rs) -> str:
    """'t_rep censored in k/n' (t_rep in the run's last rows or the statistic still moving), or that the runs
    do not say."""
    if not any("t_rep_censored" in r for r in rs):
        return "censoring of t_rep not evaluated"
    return f"t_rep censored in {sum(bool(r.get('t_rep_censored')) for r in rs)}/{len(rs)}"


def outcome_counts(rs) -> tuple:
    """({outcome: count}, number of runs that have a clock_outcome)."""
    have = [r["clock_outcome"] for r in rs if r.get("clock_outcome") is not None]
    return {o: have.count(o) for o in OUTCOMES if have.count(o)}, len(have)


class Clocks(Section):
    name = "clocks"
    title = "the two-training-clocks seed on this model"
    tests = "seed-clocks"
    needs_checkpoints = False

    def measure(self, records, scale, ctx):
        runs = [clocks_run(r) for r in records]
        return {"clocks": {"runs": runs, "conditions": list(dict.fromkeys(r["condition"] for r in runs))}}

    def claims(self, doc, published):
        d = doc["clocks"]
        out = []
        for c in d["conditions"]:
            rs = [r for r in d["runs"] if r["condition"] == c]
            counts, n = outcome_counts(rs)
            medians = [f"median {k} {fmt(med_of(stats([r.get(k) for r in rs])))}" for k in ("t_cls", "t_rep", "t05", "t099")]
            seen = ", ".join(f"{o} {k}" for o, k in counts.items()) + f" (of {n})" if n else "no clock_outcome"
            ours = "; ".join([seen, censored(rs)] + medians)
            note = "" if n else "the runs predate clock_outcome (tianref.analysis.clock_events): not measurable"
            control = c.endswith("eta=0")
            out.append(judged(f"[{c}] two clocks: the classifier clock stabilises first, then the structural "
                              "statistic and the test curve move together", F4, ours,
                              "info" if control else "most-runs-no-opposite", (counts.get("two-clocks", 0), n),
                              same_definition=False, difference=DIFFERENCE,
                              note=("no weight decay: shown for contrast" if control else note)))
        pairs = {}
        for c in d["conditions"]:
            head, _, eta = c.rpartition("eta=")
            pairs.setdefault(head.strip(), {})[float(eta)] = c
        for head, by_eta in pairs.items():
            if 0.0 not in by_eta:
                continue
            for eta, c in sorted(by_eta.items()):
                if eta == 0:
                    continue
                for key, what in (("W_srank", "W stable rank"), ("WV_nuc", "‖WV‖_* (the two-layer Schatten-1 norm)")):
                    a = med_of(stats([r[key]["final_over_max"] for r in d["runs"] if r["condition"] == c]))
                    b = med_of(stats([r[key]["final_over_max"] for r in d["runs"] if r["condition"] == by_eta[0.0]]))
                    out.append(judged(f"[{head or 'x²'}] weight decay simplifies the representation late: {what} "
                                      "falls further", SCHATTEN,
                                      f"median final/max, eta={eta:g}: {fmt(a)}, eta=0: {fmt(b)}",
                                      "ratio-below", a, b, same_definition=False, difference=DIFFERENCE))
        return out

    def figures(self, doc, records, fig_dir, scale, ctx):
        from tianref.analysis.edge_figures import figure_clocks
        from tianref.experiments.reproduce.figures import _save_fig
        d, rows = doc["clocks"], {r.path.name: r for r in records}
        groups = [(c, [(rows_of(rows[v["tag"]], ("W_srank", "train_loss")), v) for v in d["runs"]
                       if v["condition"] == c]) for c in d["conditions"]]
        Path(fig_dir).mkdir(parents=True, exist_ok=True)
        fig = figure_clocks(groups, "two clocks: W stable rank and train loss")
        return [_save_fig(fig, Path(fig_dir) / "clocks.png")]

    def report(self, doc, published):
        d = doc["clocks"]
        L = report_head(doc, self.title) + claims_block(self.claims_of(doc, published))
        L += ["", "## Clocks", "", "| condition | " + " | ".join(EVENTS) + " | t0.5 | t0.99 | t_rep censored | "
              "lowest train loss / row 0 | outcomes |", "|" + "---|" * (len(EVENTS) + 6)]
        for c in d["conditions"]:
            rs = [r for r in d["runs"] if r["condition"] == c]
            counts, n = outcome_counts(rs)
            cens = censored(rs).replace("t_rep censored in ", "") if any("t_rep_censored" in r for r in rs) else "—"
            L.append(f"| {c} | " + " | ".join(cell(stats([r.get(k) for r in rs])) if any(k in r for r in rs) else "—"
                                               for k in EVENTS)
                     + f" | {cell(stats([r['t05'] for r in rs]))} | {cell(stats([r['t099'] for r in rs]))} | {cens} | "
                     f"{cell(stats([r['loss_min_ratio'] for r in rs]))} | "
                     + ("; ".join(f"{o} {k}/{n}" for o, k in counts.items()) if n else "—") + " |")
        L += ["", "## Stable rank of W and nuclear norm of WV", "",
              "| condition | W srank start | max | final | final/max | ‖WV‖* start | max | final | final/max |",
              "|---|---|---|---|---|---|---|---|---|"]
        for c in d["conditions"]:
            rs = [r for r in d["runs"] if r["condition"] == c]
            L.append(f"| {c} | " + " | ".join(cell(stats([r[key][k] for r in rs])) for key in ("W_srank", "WV_nuc")
                                               for k in ("start", "max", "final", "final_over_max")) + " |")
        L += ["", "Definitions: tianref.analysis.clock_events (docs/edge-and-clocks.md §5). An outcome other than "
              "two-clocks is not a contradiction of the seed (§F.4): test-before-structure says the structural "
              "statistic (here W's stable rank) is not the representation variable of this task; "
              "structure-without-test that the simplification is not aligned with the task. The seed's theory is for "
              "deep linear networks with cross-entropy; x² runs here use the paper's class-centred MSE, ReLU runs "
              "use cross-entropy (--loss ce). Cells: median [min, max] over seeds.", "",
              f"Figures: {', '.join(doc.get('figures', []))}", ""]
        return "\n".join(L) + "\n"


SECTION = Clocks()
