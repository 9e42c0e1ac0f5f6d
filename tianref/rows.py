"""The logged row: every diagnostic of S runs at one epoch, from their stacked arrays, as S host dicts.

Reference: tianref/train.py (the loop and its logging order); the keys' definitions are in the
modules named beside each part below (metrics, fourier / group_rows, spectra, edge, clocks).

The runs share a leading axis S (one run: S = 1):

    P        {'W': (S, 2M, K), 'V': (S, K, M)}   the parameters of row t
    Yhat     (S, n, M)    the training outputs (beta included);  F = cache[1] (S, n, K)
    train    the stacked training batch (data.stack_batches; a run's own batch: data.as_stack)
    runs     S per-run records with .spec, .edge, .rng, .problem (their rings, random streams, splits)

Every part is computed for all S runs by one call where the math allows (the feature Gram, the
clocks' norms, eigenvalues and SVDs, the Fourier view and energies, the independence proxy, the rolling
spectra's eigenvalues, the edge split's eigenvectors and w x w algebra on its cross-Grams, the margin),
and run by run only where a run has its own buffers (a group's irreps; on the host the feature Gram, for
the cache). Each run's values are those of the S = 1 call, bit for bit
on NumPy (tests/test_batch.py); bench/bench_ops.py counts the backend calls a stack costs.
One device -> host transfer serves all S rows.
"""
from __future__ import annotations

import numpy as np  # host-side row assembly only

from tianref import clocks, edge as edges, fourier, group_rows, metrics, spectra
from tianref.backend import to_host


GF_KEYS = ("gF_norm", "indep_cos_med", "indep_cos_p95")    # metrics.gradient_field_runs' values


def _per_run(xp, values):
    """[(v_1, ...), ...] of S runs -> (stack of v_1, ...): one (S, ...) array per value."""
    return [xp.stack(list(vs)) for vs in zip(*values)]


def rings_of(xp, runs, gram_states) -> dict:
    """The runs' rolling Grams and edge rings stacked: {"spec": {key: spectra state (S, ...)}, "edge":
    {"W"/"V": edge state (S, ...)}}; one run's as views with a leading axis of 1, several runs' copied
    (batch.py keeps a stack's rings stacked and passes them to rows_of as they are)."""
    if len(runs) == 1:
        return {"spec": {k: edges.stack_of_one(runs[0].spec[k]) for k in gram_states},
                "edge": {k: edges.stack_of_one(runs[0].edge[k]) for k in ("W", "V")}}
    return {"spec": {k: spectra.stacked(xp, [r.spec[k] for r in runs]) for k in gram_states},
            "edge": {k: edges.stacked(xp, [r.edge[k] for r in runs]) for k in ("W", "V")}}


def rows_of(xp, cfg, P, runs, epoch: int, head, Yhat, cache, train, gram_states, rings=None) -> list[dict]:
    """Row ``epoch`` of each of the S runs (module docstring); ``head``: [(key, (S,) array)] of
    train.head_of; ``gram_states``: train.gram_states(cfg); ``rings``: the runs' rings stacked
    (rings_of; built from ``runs`` when not given)."""
    S = Yhat.shape[0]
    rings = rings_of(xp, runs, gram_states) if rings is None else rings
    F = cache[1]                                                              # (S, n, K)
    beta = cfg.output_scale
    parts = list(head)
    if cfg.metrics == "full":
        F_sum = F.sum(axis=-2)                                                # (S, K) 1^T F, shared
        ftf, rho = metrics.feature_gram_runs(xp, F, F_sum)                    # (S,) each
        parts += [("ftf_ratio", ftf), ("rho_tian", rho)]
        view = runs[0].problem.group
        if view is None:                                                      # Z_M: all S at once
            parts += fourier.row_metrics(xp, P["W"], train, cfg.act, F, F_sum)
        else:                                                                 # a group: run by run
            per = [group_rows.row_metrics(xp, view, P["W"][s], r.problem.train, cfg.act, F[s])
                   for s, r in enumerate(runs)]
            parts += list(zip([k for k, _ in per[0]], _per_run(xp, [[v for _, v in p] for p in per])))
    pairs = [metrics.draw_pairs(r.rng, cfg.K, cfg.indep_pairs) for r in runs]  # each run's own stream
    drew = [s for s, (j, _) in enumerate(pairs) if len(j)]                    # a run without a pair j != j'
    if drew:                                                                  # logs none of GF_KEYS (as alone)
        V_eff = P["V"] if beta == 1.0 else beta * P["V"]                      # G_F = R (beta V)^T
        if len(drew) == S:
            gf = metrics.gradient_field_runs(xp, Yhat, train.y, V_eff, pairs)
        else:                                                                 # the runs that drew pairs, each
            at = xp.asarray(np.asarray(drew))                                 # slice its own run's numbers
            sub = metrics.gradient_field_runs(xp, Yhat[at], train.y[at], V_eff[at], [pairs[s] for s in drew])
            gf = []
            for v in sub:                                                     # (S,): NaN where no pair (dropped)
                full = xp.full(S, xp.nan, dtype=xp.float64)
                full[at] = v
                gf.append(full)
        parts += list(zip(GF_KEYS, gf))
    for key, (name, _) in gram_states.items():
        tag = key[len(name):]                           # '' or a --log-grams suffix ('_f32')
        for i, w in enumerate(cfg.windows):
            ev = spectra.top_eigenvalues(xp, rings["spec"][key], w)           # (S, <= 5)
            if ev is not None:
                parts.append((f"{name}_sigma{tag}" + ("" if i == 0 else f"_w{w}"), ev))
    for name in ("W", "V"):                             # the edge split of the first window, both views
        splits = edges.window_splits_runs(xp, rings["spec"][name], rings["edge"][name],
                                          cfg.windows[0], scale=True)         # one eigh for the S windows
        if splits is not None:
            parts += list(zip([f"{name}_edge_{k}" for k in edges.KEYS + edges.AUTHOR_KEYS], splits[:6]))
            parts.append((f"{name}{SCALE}", splits[6]))                     # not logged: _edge_ring_route
    parts += clocks.clock_stats(xp, P, cfg.tail_r)
    parts.append((clocks.MARGIN_KEY, clocks.margin_min(xp, Yhat, train.y)))  # on Yhat above
    rows = _host_rows(xp, parts, S, epoch)
    _edge_ring_route(xp, rows, rings, cfg.windows[0])
    if 0 < len(drew) < S:                                                     # the runs without a pair
        for s in sorted(set(range(S)) - set(drew)):
            for k in GF_KEYS:
                del rows[s][k]
    return rows


SCALE = "_edge_scale"     # a row's scale of g2's rounding (edge.cancels), dropped before the row is returned


def _edge_ring_route(xp, rows, rings, w: int) -> None:
    """Where a run's g2 cancels (edge.cancels: the gradient part far below the weight-decay part), its six
    edge keys are taken by the ring route (edge.ring_splits, from that run's rings) instead, and the ratios
    derived again; the scale key is dropped from every row. Rare (never in the stored runs), so the common
    row keeps its one transfer."""
    for s, row in enumerate(rows):
        for name in ("W", "V"):
            scale = row.pop(f"{name}{SCALE}", None)
            sp, st = rings["spec"][name], rings["edge"][name]
            if scale is None or not edges.cancels(row[f"{name}_edge_g2"], scale, sp, st):
                continue
            one = ({k: (v[s] if hasattr(v, "shape") else v) for k, v in sp.items()},
                   {k: (v[s] if hasattr(v, "shape") else v) for k, v in st.items()})
            vals = to_host(xp.stack(edges.ring_splits(xp, one[0], one[1], w)).astype(xp.float64))
            for k, v in zip(edges.KEYS + edges.AUTHOR_KEYS, vals):
                row[f"{name}_edge_{k}"] = float(v)
            for k in edges.DERIVED + edges.AUTHOR_DERIVED:
                row.pop(f"{name}_edge_{k}", None)
            _edge_derived(row, name)


def _edge_derived(row, name: str) -> None:
    """The edge ratios of parameter ``name`` from the row's six keys (edge.derived, both views)."""
    for kk, v in edges.derived(*(row[f"{name}_edge_{x}"] for x in edges.KEYS)).items():
        row[f"{name}_edge_{kk}"] = v
    for kk, v in edges.derived(*(row[f"{name}_edge_{x}"] for x in edges.AUTHOR_KEYS),
                               names=edges.AUTHOR_DERIVED).items():
        row[f"{name}_edge_{kk}"] = v


def _host_rows(xp, parts, S: int, epoch: int) -> list[dict]:
    """[(key, (S, ...) array)] -> S rows (one transfer), with the derived keys (gap23, edge ratios)."""
    flat = xp.concatenate([xp.reshape(v, (S, -1)) for _, v in parts], axis=1).astype(xp.float64)  # one cast:
    # concatenate promotes every part to the widest dtype (float64, or int64 -> float64), exactly
    host = to_host(flat)                                                      # (S, total)
    out = []
    for s in range(S):
        row, k = {"epoch": epoch}, 0
        for name, v in parts:
            size = int(np.prod(v.shape[1:])) if v.ndim > 1 else 1
            vals = host[s, k:k + size]
            k += size
            if name.startswith(("W_sigma", "V_sigma")):
                row[name] = vals.tolist()
                if len(vals) >= 3:
                    gap = vals[1] / vals[2] if vals[2] > 0 else float("nan")
                    row[name.replace("sigma", "gap23")] = gap
            elif name in group_rows.INT_KEYS:
                row[name] = int(vals[0])
            elif name in group_rows.LIST_KEYS:
                row[name] = vals.tolist()
            else:
                row[name] = float(vals[0])
        for name in ("W", "V"):
            if f"{name}_edge_g2" in row:
                _edge_derived(row, name)
        out.append(row)
    return out
