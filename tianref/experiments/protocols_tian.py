"""The sections of Tian's own setup as data: scaling (the paper's T6), critical, muon, ridge.

References: docs/paper-protocol.md §1 T6 (the M x p sweep of the paper's findings); Tian, "Provable
Scaling Laws of Feature Emergence from Learning Dynamics of Grokking" (arXiv:2509.21519): Theorem 4
(generalisation needs n/M^2 >~ log M / M), Stage I (V -> its ridge solution), the claim that Muon gives
more diverse features; his code's ridge top layer and Muon (docs/math.md §9-10).

| section  | grid                                                          | seeds | epochs            | metrics |
|----------|---------------------------------------------------------------|-------|-------------------|---------|
| scaling  | M in {41, 71, 127} x p in {0.1, 0.2, 0.3, 0.5}, eta = 2e-4      | 0-4   | 400 / 600 / 1000  | full    |
| critical | M in {23, 41, 71} x p = c log M / M, c in {0.5, 1, 1.5, 2, 3}  | 0-2   | 1500, eta = 5e-4  | core    |
| muon     | headline (M 71, K 2048, p 0.4, eta 2e-4), adam vs muon         | 0-4   | 400               | full    |
|          | Tian's defaults (M 127, K 512, p 0.3, lr 1e-3, eta 1e-4),       | 0-2   | 3000, checkpoints | full    |
|          | adam vs muon x {ce + trained V, class-centred MSE + ridge V}   |       |                   |         |
| ridge    | headline, top layer trained vs ridge (lam 1e-3)                | 0-2   | 400, checkpoints  | full    |

n = round(p M^2) with Python's rounding (``--train-frac``). Our choice for ``critical`` (the issue leaves it
open): eta = 5e-4, the largest weight decay of the paper's eta sweep, because grokking time scales like 1/eta
(Tian's slides) and the smallest c sit near the boundary, where grokking is slow; 1500 epochs.

A reduced scale (``ci``: the quick configuration M = 23, K = 512, eta x 10) keeps each grid's shape on a
small problem: M in {M_s, M_s + 2}, two seeds, fewer cells (scaling p in {0.2, 0.5}, critical c in {1, 3}),
its eta factor and train fraction (muon, ridge), and at most 400 epochs per run: a check of the whole
pipeline, not a measurement.

This module imports nothing from tianref: :mod:`tianref.experiments.protocols` wraps its (tag, options)
pairs into RunSpecs.
"""
from __future__ import annotations

import math

TIAN_SECTIONS = ("scaling", "critical", "muon", "ridge")

ETA_SCALING = 2e-4
SCALING_EPOCHS = {41: 400, 71: 600, 127: 1000}
SCALING_P = (0.1, 0.2, 0.3, 0.5)
CRITICAL_M = (23, 41, 71)
CRITICAL_C = (0.5, 1.0, 1.5, 2.0, 3.0)
CRITICAL_ETA = 5e-4
CRITICAL_EPOCHS = 1500
HEADLINE = dict(M=71, K=2048, train_frac=0.4, eta=2e-4, act="sqr")
HEADLINE_EPOCHS = 400
RIDGE_CHECKPOINTS = (0, 25, 50, 100, 150, 200, 300, 400)
RIDGE_REG = 1e-3
# Tian's own defaults (his dyn_madd config): M 127, hidden 512, train fraction 0.3, lr 1e-3, weight decay
# 1e-4, 3000 epochs, set_weight_reg 1e-3. His config names cross-entropy together with the ridge top
# layer, a combination his code refuses (ridge needs the MSE loss), so both halves are run:
# cross-entropy with a trained top layer, and the class-centred MSE with the ridge top layer. (Source:
# yuandong-tian/understanding, ssl/real-dataset/cogo/config/dyn_madd.yaml @ 03b212ce, and the assertion at
# modular_addition_simple2.py:452.) His split is sklearn's train_test_split(test_size=0.7), which keeps
# n = M^2 - ceil(0.7 M^2) = 4838 training pairs at M = 127; --train-frac 0.3 keeps round(0.3 M^2) = 4839 here.
TIAN_DEFAULT = dict(M=127, K=512, train_frac=0.3, lr=1e-3, eta=1e-4, act="sqr")
TIAN_DEFAULT_EPOCHS = 3000
TIAN_DEFAULT_CHECKPOINTS = (0, 250, 500, 1000, 2000, 3000)
TIAN_DEFAULT_VARIANTS = (("ce", dict(loss="ce", top_layer="trained")),
                         ("mse", dict(loss="tian", top_layer="ridge", ridge_reg=RIDGE_REG)))


# His code's critical train fraction is TIAN_CRITICAL_C log M / M (modular_addition_simple2.py, use_critical_ratio;
# critical_ratio_multiplier in his dyn_madd config, critical_ratio_delta = 0).
TIAN_CRITICAL_C = 2.7482


def p_crit(M: int) -> float:
    """Tian's critical training fraction log M / M (natural log)."""
    return math.log(M) / M


def critical_p(M: int, c: float) -> float:
    return c * p_crit(M)


def _ftag(x: float) -> str:
    return f"{x:g}"


def _E(epochs: int, scale) -> int:
    E = max(int(round(epochs * scale.epoch_factor)), 30)
    return min(E, SMALL_MAX_EPOCHS) if _small(scale) else E


def _seeds(seeds, scale):
    return list(seeds)[: (len(seeds) if scale.seeds is None else min(len(seeds), scale.seeds))]


def _small(scale) -> bool:
    return scale.M is not None


def _eta(eta: float, scale) -> float:
    """A weight decay at the scale (protocols.scaled_eta, restated: this module imports nothing)."""
    return float(f"{eta * getattr(scale, 'eta_factor', 1.0):.6g}")


SMALL_MAX_EPOCHS = 400     # a reduced scale caps every run here (the ci scale keeps the paper's epochs)


def section_runs(section: str, scale) -> list:
    """[(tag, options)] of one of Tian's sections at the scale (protocols.Scale)."""
    out = []
    K = {} if scale.K is None else {"K": scale.K}
    if section == "scaling":
        Ms = {scale.M: 400, scale.M + 2: 600} if _small(scale) else SCALING_EPOCHS
        ps = (0.2, 0.5) if _small(scale) else SCALING_P
        for M, E in Ms.items():
            for p in ps:
                for s in _seeds(range(5), scale):
                    out.append((f"M{M}_p{_ftag(p)}_seed{s}",
                                dict(M=M, **K, train_frac=p, eta=_eta(ETA_SCALING, scale), act="sqr", seed=s,
                                     epochs=_E(E, scale))))
        return out
    if section == "critical":
        Ms = (scale.M, scale.M + 2) if _small(scale) else CRITICAL_M
        cs = (1.0, 3.0) if _small(scale) else CRITICAL_C
        for M in Ms:
            for c in cs:
                for s in _seeds(range(3), scale):
                    out.append((f"M{M}_c{_ftag(c)}_seed{s}",
                                dict(M=M, **K, train_frac=round(critical_p(M, c), 6), eta=_eta(CRITICAL_ETA, scale),
                                     act="sqr", seed=s, epochs=_E(CRITICAL_EPOCHS, scale), metrics="core")))
        return out
    base = dict(HEADLINE, **({"M": scale.M} if _small(scale) else {}), **K)
    base["eta"] = _eta(base["eta"], scale)
    if getattr(scale, "train_frac", None) is not None:
        base["train_frac"] = scale.train_frac
    E = _E(HEADLINE_EPOCHS, scale)
    if section == "muon":
        for opt in ("adam", "muon"):
            for s in _seeds(range(5), scale):
                out.append((f"{opt}_seed{s}", dict(base, optimizer=opt, seed=s, epochs=E)))
        return out + tian_default_runs(scale)
    if section == "ridge":
        cks = sorted({min(E, int(round(c * scale.epoch_factor))) for c in RIDGE_CHECKPOINTS})
        for top in ("trained", "ridge"):
            for s in _seeds(range(3), scale):
                opts = dict(base, top_layer=top, seed=s, epochs=E, checkpoint_epochs=cks)
                if top == "ridge":
                    opts["ridge_reg"] = RIDGE_REG
                out.append((f"{top}_seed{s}", opts))
        return out
    raise ValueError(f"unknown section {section!r}")


def tian_default_runs(scale) -> list:
    """[(tag, options)]: Adam against Muon at Tian's own defaults (TIAN_DEFAULT), both loss variants,
    seeds 0-2. A reduced scale keeps the grid on its small problem (M_s, its K, train fraction, eta
    factor and epoch cap)."""
    base = dict(TIAN_DEFAULT)
    if _small(scale):
        base.update(M=scale.M, **({} if scale.K is None else {"K": scale.K}))
        if getattr(scale, "train_frac", None) is not None:
            base["train_frac"] = scale.train_frac
    base["eta"] = _eta(base["eta"], scale)
    E = _E(TIAN_DEFAULT_EPOCHS, scale)
    cks = sorted({min(E, int(round(c * scale.epoch_factor))) for c in TIAN_DEFAULT_CHECKPOINTS})
    out = []
    for name, variant in TIAN_DEFAULT_VARIANTS:
        for opt in ("adam", "muon"):
            for s in _seeds(range(3), scale):
                out.append((f"tian_{name}_{opt}_seed{s}",
                            dict(base, **variant, optimizer=opt, seed=s, epochs=E, checkpoint_epochs=cks)))
    return out
