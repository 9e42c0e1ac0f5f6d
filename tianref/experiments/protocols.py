"""The paper's experiment protocols as data: which runs each reproduction section needs.

Source: ``docs/paper-protocol.md`` §4 (the sweep drivers of the paper's code). Every run is
an ordinary ``train`` invocation; a section is a list of ``RunSpec`` (a tag and its train options).

| section  | act  | eta                          | seeds | epochs | windows        | note |
|----------|------|------------------------------|-------|--------|----------------|------|
| headline | sqr  | 2e-4, 0                      | 0-14  | 400    | 20             | run_sweep.sh |
| relu     | relu | 2e-4, 0                      | 0-14  | 800    | 20             | relu_sweep.sh |
| window   | sqr  | 2e-4, 0                      | 0-2   | 400    | 20,5,10,30     | one run serves all four windows |
| eta      | sqr  | 1e-5, 5e-5, 1e-4, 2e-4, 5e-4 | 0-4   | 600    | 20             | eta_sweep.sh |
| thm6     | sqr  | 2e-4                         | 0-4   | 300    | 20             | checkpoints 50,100,175,250,300 |
|          | relu | 2e-4                         | 0-4   | 500    | 20             | checkpoints 100,300,500 |
| extended | sqr  | 1e-5                         | 0     | 2000   | 20             | optional (the paper's seed is not given) |
| lifecycle| sqr  | 2e-4, 0, 2e-4 -> 0 at 250    | 0-4   | 600    | 20             | the spectral-edge seed; core metrics |
| clocks   | sqr  | 2e-4, 0 (the paper's loss)   | 0-4   | 400    | 20             | the two-clocks seed; core metrics |
|          | relu | 2e-4, 0 (--loss ce)          | 0-4   | 800    | 20             |      |

The last two sections test two of the project's other seed papers on this model (the spectral-edge
lifecycle and the two training clocks; tianref.experiments.reproduce.sections), not the main paper.

Deviation: the paper's window sweep trains one run per window (W = 5, 10, 30) and reuses the
headline runs for W = 20; we train one run per seed and condition and read all four windows from
it. The parameters do not depend on the window, so the spectra are the same ones.

``scale`` shrinks a section for CI and smoke tests (smaller M and K, half the table for training,
fewer seeds, every eta x 10); the full scale is the paper's.
"""
from __future__ import annotations

from dataclasses import dataclass, field

SECTIONS = ("headline", "relu", "window", "eta", "thm6", "extended",
            "scaling", "critical", "muon", "ridge",           # these four: protocols_tian
            "lifecycle", "clocks",                            # these two: other seed papers (reproduce.sections)
            "groups")                                         # Tian's group tasks (reproduce/sections/groups.py)
DEFAULT_SECTIONS = ("headline", "relu", "window", "eta", "thm6")   # what --section all runs


@dataclass(frozen=True)
class RunSpec:
    tag: str                  # the run directory's name inside the section folder
    options: dict = field(default_factory=dict)   # train options, e.g. {"eta": 2e-4, "seed": 3}

    def argv(self) -> list:
        """The ``train`` arguments for this run (without --out)."""
        out = []
        for k, v in self.options.items():
            flag = "--" + k.replace("_", "-")
            if k in ("M", "K"):
                flag = "--" + k
            if isinstance(v, (list, tuple)):
                v = ",".join(str(x) for x in v)
            out += [flag, str(v)]
        return out


@dataclass(frozen=True)
class Scale:
    name: str
    M: int | None = None          # None: the default (71)
    K: int | None = None          # None: the default (2048)
    seeds: int | None = None      # at most this many seeds per condition
    epoch_factor: float = 1.0     # multiply every epoch count (and checkpoint epoch)
    train_frac: float | None = None   # None: train's default n_train (round(0.4 M^2))
    eta_factor: float = 1.0       # multiply every weight decay (0 stays 0: the controls)


# The quick configuration: M = 23, K = 512, half the table for training, eta = 2e-3, 400 epochs.
# It groks in about 2 s of one CPU core: over seeds 0-7, test accuracy 0.5 at epochs 180-190 and
# 0.99 at 235-266, the sigma2/sigma3 slope detector fires at 190-194 (1-11 epochs after t0.5, before
# t0.99), and the eta = 0 controls never pass test accuracy 0.06 (docs/reproduce.md, "The ci scale").
QUICK = {"M": 23, "K": 512, "train_frac": 0.5, "eta": 2e-3, "epochs": 400}

SCALES = {
    "full": Scale("full"),
    # CI: the whole pipeline at the quick configuration. The paper's eta = 2e-4 becomes 2e-3 (every
    # eta x 10) and the epochs are the paper's, so the detectors keep the paper's epoch positions.
    # It groks, but on a 23 x 23 table: compared only with its own stored summary.
    "ci": Scale("ci", M=QUICK["M"], K=QUICK["K"], seeds=2, epoch_factor=1.0,
                train_frac=QUICK["train_frac"], eta_factor=10.0),
    # smoke: every section's pipeline end to end in seconds (the conformance test): M = 11, K = 32, one
    # seed per condition, epochs x 0.02 (so every run has the 30-epoch floor, 40 for extended, 60 for
    # Tian's defaults); it checks the code, not the model, and need not grok.
    "smoke": Scale("smoke", M=11, K=32, seeds=1, epoch_factor=0.02, train_frac=0.5, eta_factor=10.0),
}


def scaled_eta(eta: float, eta_factor: float = 1.0) -> float:
    """A weight decay at a scale, rounded to 6 significant digits (2e-4 x 3 -> 0.0006, not 0.0006000000000000001)."""
    return float(f"{eta * eta_factor:.6g}")


def _eta_tag(eta: float) -> str:
    return "0" if eta == 0 else f"{eta:g}"


def section_runs(section: str, scale: Scale = SCALES["full"]) -> list:
    """The RunSpecs of one section at the given scale."""
    def grid(act, etas, seeds, epochs, windows=(20,), checkpoints=(), metrics="full"):
        specs = []
        n_seeds = len(seeds) if scale.seeds is None else min(len(seeds), scale.seeds)
        E = max(int(round(epochs * scale.epoch_factor)), 30)
        cks = sorted({min(E, int(round(c * scale.epoch_factor))) for c in checkpoints})
        for eta in etas:
            for s in seeds[:n_seeds]:
                opts = {"act": act, "eta": scaled_eta(eta, scale.eta_factor), "seed": s, "epochs": E,
                        "windows": list(windows)}
                if scale.M is not None:
                    opts["M"] = scale.M
                if scale.K is not None:
                    opts["K"] = scale.K
                if scale.train_frac is not None:
                    opts["train_frac"] = scale.train_frac
                if cks:
                    opts["checkpoint_epochs"] = cks
                if metrics != "full":
                    opts["metrics"] = metrics
                specs.append(RunSpec(f"{act}_eta{_eta_tag(opts['eta'])}_seed{s}", opts))
        return specs

    from tianref.experiments import protocols_tian
    if section in protocols_tian.TIAN_SECTIONS:                # Tian's own setup (its own table)
        return [RunSpec(tag, opts) for tag, opts in protocols_tian.section_runs(section, scale)]
    if section == "headline":
        return grid("sqr", (2e-4, 0.0), list(range(15)), 400)
    if section == "relu":
        return grid("relu", (2e-4, 0.0), list(range(15)), 800)
    if section == "window":
        return grid("sqr", (2e-4, 0.0), [0, 1, 2], 400, windows=(20, 5, 10, 30))
    if section == "eta":
        return grid("sqr", (1e-5, 5e-5, 1e-4, 2e-4, 5e-4), list(range(5)), 600)
    if section == "thm6":
        # only the checkpoints matter here, so the K x K Gram metrics are skipped
        return (grid("sqr", (2e-4,), list(range(5)), 300, checkpoints=(50, 100, 175, 250, 300),
                     metrics="core")
                + grid("relu", (2e-4,), list(range(5)), 500, checkpoints=(100, 300, 500),
                       metrics="core"))
    if section == "extended":
        return grid("sqr", (1e-5,), [0], 2000)
    if section == "lifecycle":
        specs = grid("sqr", (2e-4, 0.0), list(range(5)), 600, metrics="core")
        switch = int(round(LIFECYCLE_SWITCH * scale.epoch_factor))
        g = _eta_tag(scaled_eta(2e-4, scale.eta_factor))
        for s in grid("sqr", (2e-4,), list(range(5)), 600, metrics="core"):
            opts = {k: v for k, v in s.options.items() if k != "eta"}
            opts["eta_schedule"] = f"0:{g},{switch}:0"        # eta -> 0 after grokking
            specs.append(RunSpec(s.tag.replace(f"eta{g}", f"eta{g}to0at{switch}"), opts))
        return specs + intervention_runs(scale)
    if section == "clocks":
        relu = [RunSpec(s.tag.replace("relu_", "relu_ce_"), {**s.options, "loss": "ce"})
                for s in grid("relu", (2e-4, 0.0), list(range(5)), 800, metrics="core")]
        return grid("sqr", (2e-4, 0.0), list(range(5)), 400, metrics="core") + relu
    if section == "groups":
        raise ValueError("the groups section lists its runs itself (reproduce/sections/groups.py, SECTION.runs)")
    raise ValueError(f"unknown section {section!r}; choose one of {', '.join(SECTIONS)}")


LIFECYCLE_SWITCH = 250     # the epoch at which the lifecycle section's intervention sets eta to 0
# The weight-decay intervention after the spectral-edge authors' design (spectral/wd_intervention.py): from
# one epoch before grokking (memorised, test accuracy still low: t_mem ~ 17, t0.5 ~ 100 at the full scale)
# and one after it, continue with eta x m for a fixed number of epochs (seeds 0-2). Unlike theirs (a new
# AdamW from the checkpoint's weights), the optimizer's state carries on through the change of eta.
# m = 1 is the eta = 2e-4 run itself and (LIFECYCLE_SWITCH, 0) the switch run above; the other pairs are
# the runs below.
INTERVENTION_EPOCHS = (60, LIFECYCLE_SWITCH)
INTERVENTION_FACTORS = (0.0, 0.5, 2.0)
INTERVENTION_LENGTH = 200
INTERVENTION_SEEDS = 3     # seeds 0-2 (the plain and switch runs that serve m = 1 and (250, 0) have 0-4)


def intervention_runs(scale: Scale) -> list:
    """RunSpecs of the weight-decay intervention: eta = 2e-4 until T, then eta x m, for T + length epochs."""
    g = scaled_eta(2e-4, scale.eta_factor)
    n_seeds = INTERVENTION_SEEDS if scale.seeds is None else min(INTERVENTION_SEEDS, scale.seeds)
    specs = []
    for T0 in INTERVENTION_EPOCHS:
        T = int(round(T0 * scale.epoch_factor))
        E = T + max(int(round(INTERVENTION_LENGTH * scale.epoch_factor)), 30)
        for m in INTERVENTION_FACTORS:
            if T0 == LIFECYCLE_SWITCH and m == 0.0:
                continue                                   # the switch run of the section
            for s in range(n_seeds):
                opts = {"act": "sqr", "eta_schedule": f"0:{_eta_tag(g)},{T}:{_eta_tag(scaled_eta(g * m))}",
                        "seed": s, "epochs": E, "windows": [20], "metrics": "core"}
                for k in ("M", "K", "train_frac"):
                    if getattr(scale, k) is not None:
                        opts[k] = getattr(scale, k)
                specs.append(RunSpec(f"sqr_eta{_eta_tag(g)}x{m:g}at{T}_seed{s}", opts))
    return specs


def thm6_epochs(act: str, scale: Scale = SCALES["full"]) -> list:
    """The checkpoint epochs the thm6 section evaluates for an activation."""
    base = (50, 100, 175, 250, 300) if act == "sqr" else (100, 300, 500)
    E = {"sqr": 300, "relu": 500}[act]
    E = max(int(round(E * scale.epoch_factor)), 30)
    return sorted({min(E, int(round(c * scale.epoch_factor))) for c in base})
