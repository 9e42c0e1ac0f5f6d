"""The task table of a run and its irrep diagnostics, logged every row of a ``--group`` run.

References: Tian, arXiv:2509.21519 (the task on a finite group H; Stage II: a unit climbs
E(w) = 1/2 ||Y~ Y~^T sigma(X w)||^2, whose local maxima sit on single irreps); docs/groups.md §6 (the
keys), §3 (the decomposition) and §4 (the energy over components). The math is in
tianref/group_fourier.py; this module only prepares it once per run and names the row keys.

Symbols
    cfg.group     "" (Z_M, the default: no table, data.pairs computes (a + b) mod M) or a groups spec
    T             (M, M) task table, T[a, b] = label of the pair (a, b)
    Pi_k          real isotypic projector of the non-trivial component k = 1..n_comp
    Q^T, S        (M - 1, M) the components' orthonormal coordinates, (n_comp, M - 1) membership
    h2            (M, M) h2[h1, h] = h1^-1 h

Row keys of a ``--group`` run (``--metrics full``), beside every key of a Z_M run:
    irrep_coverage     distinct k*_j among units with purity_j >= 0.9 (int; out of n_comp)
    irrep_purity_med   median over units of purity_j (group_fourier.irrep_metrics)
    irrep_energy       list of n_comp floats, component order of tianref.irreps.decompose (the order
                       ``python cli.py group SPEC`` prints): sum over units of E_k(w_j / ||w_j||) on
                       the full table (group_fourier.component_energies); their sum is sum_j E(w_j/||w_j||)
    freq_coverage, freq_purity_med   only when T is Z_M's own table (a Z<M> spec, expr:x+y): the DFT view
                       of tianref.fourier, which on any other labelling means nothing. For odd M the
                       irrep_* keys equal them; for even M the irrep view also counts the sign
                       character (-1)^a as a component (k = M/2, last), the DFT view leaves it out.
    energy_med         as for Z_M (tianref.fourier.unit_energies, on the training set; any table)
A table that is not a group (an expr: table) has no irreps: no irrep_* keys. The default run (group "")
logs exactly what it logged before the option existed.
"""
from __future__ import annotations

from dataclasses import dataclass

from tianref import fourier, group_fourier, irreps, orderstats
from tianref.groups import is_addition_table, task_group

INT_KEYS = ("freq_coverage", "irrep_coverage")      # logged as integers
LIST_KEYS = ("irrep_energy",)                       # logged as lists


def task_table(cfg):
    """(M, M) host int64 table of the run's task, or None for Z_M's default (data.pairs' own labels)."""
    return task_group(cfg.group, cfg.M).table if cfg.group else None


def table_of_config(config: dict):
    """task_table of a stored config dict (config.json, a checkpoint): None without a 'group' key."""
    spec = (config or {}).get("group") or ""
    return task_group(spec, int(config["M"])).table if spec else None


@dataclass(frozen=True)
class GroupView:
    """What the irrep diagnostics of a run need, prepared once (tianref.train.setup).

    cyclic: T is Z_M's (a + b) mod M (freq_* are logged); is_group: irrep_* are logged."""
    name: str
    n_comp: int
    cyclic: bool
    is_group: bool
    dec: object = None          # tianref.irreps.Decomposition (host)
    basis: tuple = None         # (Q^T (M - 1, M), S (n_comp, M - 1)) device float64
    h2: object = None           # (M, M) device int64
    blocks: tuple = None        # group_fourier.plancherel_blocks on the device (sigma = x^2 only)


def prepare(xp, cfg):
    """GroupView of a --group run, or None for the default Z_M run."""
    if not cfg.group:
        return None
    G = task_group(cfg.group, cfg.M)
    cyclic = is_addition_table(G.table)
    if not G.is_group or G.order < 2:
        return GroupView(G.name, 0, cyclic, False)
    dec = irreps.decompose(G.table)
    if cfg.act == "sqr":                                            # the Plancherel route: no Q, no h2
        blocks = tuple(xp.asarray(x) for x in group_fourier.plancherel_blocks(dec, G.table))
        return GroupView(G.name, len(dec.components) - 1, cyclic, True, dec, blocks=blocks)
    Q, S = group_fourier.component_basis(dec)                       # (M, M - 1), (n_comp, M - 1)
    return GroupView(G.name, S.shape[0], cyclic, True, dec,
                     (xp.asarray(Q.T), xp.asarray(S)), xp.asarray(group_fourier.quotient_index(G.table)))


def row_metrics(xp, view, W, batch, act: str, F=None):
    """[(name, device array)] of one row's Fourier / irrep / energy keys (module docstring).
    view None (a Z_M run) gives tianref.fourier.row_metrics unchanged."""
    if view is None:
        return fourier.row_metrics(xp, W, batch, act, F)
    parts = []
    if view.cyclic:
        cov, pmed, _, _ = fourier.frequency_metrics(xp, W, batch.M)
        parts += [("freq_coverage", cov), ("freq_purity_med", pmed)]
    parts.append(("energy_med", orderstats.median(xp, fourier.unit_energies(xp, W, batch, act, F))))
    if view.is_group:
        parts += irrep_parts(xp, view, W, act)
    return parts


def irrep_parts(xp, view, W, act: str):
    """[(name, device array)] of the three irrep keys (module docstring)."""
    if view.blocks is not None:                                     # sigma = x^2: one transform for both
        P, E = group_fourier.plancherel_power_energies(xp, W, view.blocks)
    else:                                                           # any sigma: projectors, label sums
        P = group_fourier.component_power(xp, W, view.dec, view.basis)
        E = group_fourier.component_energies(xp, W, view.h2, view.basis, act)
    cov, pmed, _, _ = group_fourier.metrics_from_power(xp, P)     # (n_comp, K) -> coverage, median
    return [("irrep_coverage", cov), ("irrep_purity_med", pmed), ("irrep_energy", E)]
