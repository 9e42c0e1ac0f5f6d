"""What ``thm6`` reports for one checkpoint: sign-match fractions over the most similar pairs, or
distributions over all pairs, with the routes to B cross-checked and a few pairs audited.

References
    Seed paper (arXiv 2605.08119), Theorem 6 and its Table T1 (sign-match of B against the residual
    over the top-200 pairs by |cos|), produced by ``theorem6_verify.py`` as described in
    docs/paper-protocol.md §3 "Thm 6"; docs/theorem6.md (§5: why the published route tracks
    'B < 0 on cos > 0'; §6: the sign error bound δ). The math (B, the residuals, the pairs, δ) is in
    tianref/thm6/theorem.py; this module only combines it and moves scalars to the host.

Symbols (code name <-> math; N listed pairs, P = K(K−1)/2 pairs in all)
    B_jl, B_u     B_jℓ for the listed pairs / the pairs of one row block       (N,) / (m,)
    det           B_jjB_ℓℓ − B_jℓ² = 1/det S                                    (N,)
    r_exact       r_jℓ by eq. (2) of theorem.py                                  (N,)
    r_approx      f̃_jᵀP_ηf̃_ℓ computed directly; r_approx_identity = −η²B_jℓ, eq. (3)
    r_paper       f̃_jᵀ(I − F̃B_paperF̃ᵀ)f̃_ℓ, the published eq. (4) route
    delta         δ, the bound on |B̂_jℓ − B_jℓ| (thm6.sign_error_bound); a sign is "certain" when
                  |B_jℓ| > δ and det > 0
    sign-match    fraction of pairs with sgn(B_jℓ) = −sgn(r_jℓ) (Theorem 6 says all of them)
    frac_B_neg_on_pos_cos   #{B_jℓ < 0 and cos_jℓ > 0} / #{cos_jℓ > 0}
    QUANTILES     the quantiles of r_exact and |cos| reported in the all-pairs mode
"""
from __future__ import annotations

import math

from tianref import orderstats
from tianref.backend import to_host
from tianref.errors import InputError
from tianref.thm6.theorem import (
    B_eigh,
    B_inverse,
    B_paper,
    B_pinv,
    B_woodbury,
    inverse_norms,
    r_approx,
    r_approx_identity,
    r_exact_closed,
    r_exact_direct,
    r_paper,
    sign_error_bound,
    top_pairs,
    woodbury_core,
)

QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)


# --- one checkpoint ------------------------------------------------------------------------------

APPROX_UNRESOLVED = 0.1   # approx_identity_max_rel_gap from which the approx route's signs are not reported
                          # (every stored run: <= 5e-6; at eta = 1e-14..1e-10 it reaches O(1))


def _sign_match(xp, B_jl, r_jl):
    """Count of sgn(B_jℓ) = −sgn(r_jℓ)."""
    return (xp.sign(B_jl) == -xp.sign(r_jl)).sum()


def _top_mode(xp, F_tilde, eta, B, Bp, j, l, cos, exact):
    """Per-pair arrays for the selected pairs (j, ℓ).  Bp is None where eq. (4) does not exist."""
    B_jl = B[j, l]                                                   # (N,)
    out = {"j": j, "l": l, "cos": cos, "B": B_jl,
           "r_approx": r_approx(xp, F_tilde, B, j, l)}               # (N,)  f̃_jᵀP_ηf̃_ℓ directly
    if exact:
        out["r_exact"] = r_exact_closed(B, j, l)                     # (N,)  eq. (2)
        out["det"] = B[j, j] * B[l, l] - B_jl * B_jl                 # (N,)  B_jjB_ℓℓ − B_jℓ² = 1/det S
        out["r_approx_identity"] = r_approx_identity(B, eta, j, l)   # (N,)  eq. (3)
    if Bp is not None:
        out["B_paper"] = Bp[j, l]                                    # (N,)
        out["r_paper"] = r_paper(xp, F_tilde, Bp, j, l)              # (N,)
    return out


def check_pinv(eta, pinv: bool) -> None:
    """--pinv is the eta = 0 variant only."""
    if pinv and eta != 0:
        raise InputError(f"--pinv is the eta = 0 variant, but eta = {eta:g}; drop --pinv or pass --eta 0")


def summarize_checkpoint(xp, F_tilde, eta: float, *, n_top: int = 200, all_pairs: bool = False,
                         n_audit: int = 5, pinv: bool = False, method: str = "cholesky", block: int = 256):
    """Everything ``thm6`` reports for one F̃.  Returns {"summary": dict, "pairs": list | None}.

    Mode "top" (default): the n_top most similar pairs, listed. Mode "all": all K(K−1)/2 pairs in
    row blocks of ``block`` rows (memory O(block·K) per quantity plus the O(K²/2) values whose
    quantiles are reported), not listed. The audit pairs are the n_audit most similar pairs.
    pinv=True (only with η = 0): B = B_pinv; the exact and paper routes do not exist there (None).
    η = 0 without pinv works only when A is nonsingular (n − 1 ≥ K); eq. (4) is then None.
    A key whose quantity does not exist for this input is None.
    """
    n, K = F_tilde.shape
    check_pinv(eta, pinv)
    exact = not pinv
    summ = {"eta": float(eta), "n": int(n), "K": int(K), "mode": "all" if all_pairs else "top",
            "B_method": "pinv" if pinv else ("eigh" if eta == 0 else method),
            "B_route_rel_diff": None, "B_route_max_abs_diff": None, "sign_error_bound": None,
            "cond_C": None}
    Bp, delta = None, math.inf
    if pinv:
        B = B_pinv(xp, F_tilde, 0.0)                                 # (K, K)
    else:
        lam_max = lam_min = None
        if summ["B_method"] == "eigh":
            B, lam = B_eigh(xp, F_tilde, eta)                        # (K, K), (K,)
            lam_min, lam_max = (float(v) for v in to_host(xp.stack([lam.min(), lam.max()])))
            summ["cond_C"] = (lam_max + eta) / (lam_min + eta)
        else:
            B = B_inverse(xp, F_tilde, eta, method)                  # (K, K)
        if eta > 0:
            core = woodbury_core(xp, F_tilde, eta)                   # (K, K)
            Bw = B_woodbury(xp, F_tilde, eta, core)                  # (K, K)  eq. (4), correct
            Bp = B_paper(xp, F_tilde, eta, core)                     # (K, K)  published eq. (4)
            diff = to_host(xp.stack([xp.sqrt(((B - Bw) ** 2).sum()), xp.sqrt((B * B).sum()),
                                     xp.abs(B - Bw).max()]))
            summ.update(B_route_rel_diff=float(diff[0] / diff[1]), B_route_max_abs_diff=float(diff[2]))
        delta = sign_error_bound(xp, F_tilde, eta, lam_max, lam_min)
        summ["sign_error_bound"] = delta

    n_aud = int(n_audit) if exact else 0
    n_sel = n_aud if all_pairs else max(n_aud, int(n_top))
    j, l, cos = top_pairs(xp, F_tilde, n_sel) if n_sel > 0 else (None, None, None)
    pairs = None
    if all_pairs:
        summ.update(all_pairs_summary(xp, F_tilde, eta, B, Bp, delta, block, exact))
    else:
        arr = _top_mode(xp, F_tilde, eta, B, Bp, j[:n_top], l[:n_top], cos[:n_top], exact)
        summ.update(_top_summary(xp, arr, delta))
        pairs = _pair_rows(arr, delta)
    gap = summ.get("approx_identity_max_rel_gap")
    if eta == 0:       # P_0 projects out range F~, where every f~_l lies: f~_j^T P_0 f~_l = 0 up to rounding
        summ["sign_match_approx"] = None
        summ["approx_note"] = ("eta = 0: f~_j^T P_0 f~_l is 0 for every pair (P_0 removes the span of F~'s "
                               "columns), so its sign would be rounding's")
    elif gap is not None and gap >= APPROX_UNRESOLVED:     # a tiny eta: -eta^2 B_jl below the rounding
        summ["sign_match_approx"] = None
        summ["approx_note"] = (f"the direct f~_j^T P_eta f~_l differs from its exact value -eta^2 B_jl (eq. 3) by "
                               f"{gap:.2g} of the largest |value|: at this eta rounding sets its signs")

    # audit: the definitional route on the n_aud most similar pairs
    rel = []
    for a in range(min(n_aud, 0 if j is None else int(j.shape[0]))):
        ja, la = (int(v) for v in to_host(xp.stack([j[a], l[a]])))
        pair = to_host(xp.stack([r_exact_direct(xp, F_tilde, eta, ja, la), r_exact_closed(B, ja, la)]))
        scale = float(abs(pair).max())
        rel.append(0.0 if scale == 0 else float(abs(pair[1] - pair[0])) / scale)
    summ["n_audit"] = len(rel)
    summ["audit_max_rel_diff"] = max(rel) if rel else None
    return {"summary": summ, "pairs": pairs}


def _top_summary(xp, arr, delta):
    """Scalar summary of the top-mode arrays, moved to the host in one transfer."""
    N = int(arr["j"].shape[0])
    B_jl, cos = arr["B"], arr["cos"]
    pos = cos > 0
    vals = {"sm_approx": _sign_match(xp, B_jl, arr["r_approx"]), "pos": pos.sum(),
            "neg_pos": (pos & (B_jl < 0)).sum(), "med_cos": orderstats.median(xp, xp.abs(cos)),
            "med_ra": orderstats.median(xp, xp.abs(arr["r_approx"]))}
    if "r_exact" in arr:
        ident = arr["r_approx_identity"]
        vals.update(sm_exact=_sign_match(xp, B_jl, arr["r_exact"]),
                    certain=((xp.abs(B_jl) > delta) & (arr["det"] > 0)).sum(),
                    med_re=orderstats.median(xp, xp.abs(arr["r_exact"])),
                    gap=xp.abs(arr["r_approx"] - ident).max(), ident=xp.abs(ident).max())
    if "r_paper" in arr:
        vals["sm_paper"] = _sign_match(xp, arr["B_paper"], arr["r_paper"])
    names = list(vals)
    host = to_host(xp.stack([xp.asarray(vals[k], dtype=xp.float64) for k in names]))
    h = dict(zip(names, (float(v) for v in host)))
    return {"n_pairs": N,
            "sign_match_exact": h["sm_exact"] / N if "sm_exact" in h else None,
            "sign_match_approx": h["sm_approx"] / N,
            "sign_match_paper": h["sm_paper"] / N if "sm_paper" in h else None,
            "frac_B_neg_on_pos_cos": h["neg_pos"] / h["pos"] if h["pos"] else None,
            "n_pos_cos": int(h["pos"]),
            "median_abs_cos": h["med_cos"],
            "n_sign_certain_exact": int(h["certain"]) if "certain" in h else None,
            "median_abs_r_exact": h.get("med_re"),
            "median_abs_r_approx": h["med_ra"],
            "approx_identity_max_rel_gap": h["gap"] / h["ident"] if h.get("ident") else None}


def _pair_rows(arr, delta):
    """The listed pairs as plain Python rows (host); absent quantities are None."""
    keys = ["j", "l", "cos", "B", "r_exact", "r_approx", "r_approx_identity", "r_paper", "B_paper"]
    host = {k: to_host(arr[k]) for k in keys + ["det"] if k in arr}
    rows = []
    for i in range(len(host["j"])):
        row = {k: (int(host[k][i]) if k in ("j", "l") else float(host[k][i])) if k in host else None
               for k in keys}
        row["sign_certain"] = "det" in host and abs(row["B"]) > delta and float(host["det"][i]) > 0
        rows.append(row)
    return rows


def all_pairs_summary(xp, F_tilde, eta: float, B, Bp, delta: float, block: int = 256, exact: bool = True):
    """Distributions over all K(K−1)/2 pairs j < ℓ, in row blocks; nothing is listed.

    Per block of rows j ∈ [r0, r1) and all ℓ > j: eq. (2) from B, f̃_jᵀP_ηf̃_ℓ directly as
    A_jℓ − (ABA)_jℓ, the paper's A_jℓ − (AB_paperA)_jℓ, cos. Bp is None where eq. (4) does not exist
    (η = 0); exact is False in the pinv variant, where eq. (2) does not hold.
    """
    A = F_tilde.T @ F_tilde                                          # (K, K)
    K = A.shape[0]
    P = K * (K - 1) // 2
    inv = inverse_norms(xp, A)                                       # (K,)
    d = xp.diagonal(B)                                               # (K,)  B_jj
    AB = A @ B                                                       # (K, K)
    ABp = None if Bp is None else A @ Bp                             # (K, K)
    idx = xp.arange(K)                                               # (K,)
    r_all = xp.empty(P, dtype=xp.float64)                            # (P,)  r_exact, (j, ℓ) ascending
    abs_cos_all = xp.empty(P, dtype=xp.float64)                      # (P,)
    abs_ra_all = xp.empty(P, dtype=xp.float64)                       # (P,)
    acc = {k: [] for k in ("exact", "approx", "paper", "pos", "neg_pos", "certain", "gap", "ident")}
    off = 0
    for r0 in range(0, K, block):
        r1 = min(K, r0 + block)
        m = sum(K - 1 - jr for jr in range(r0, r1))                  # pairs in this block (host int)
        if m == 0:                                                   # the last row alone has no ℓ > j
            continue
        upper = idx[r0:r1, None] < idx[None, :]                      # (b, K)  ℓ > j
        B_u = B[r0:r1][upper]                                        # (m,)  B_jℓ
        det_u = (d[r0:r1, None] * d[None, :])[upper] - B_u * B_u     # (m,)  B_jjB_ℓℓ − B_jℓ²
        r_u = -B_u / det_u if exact else B_u * math.nan              # (m,)  eq. (2)
        cos_u = (A[r0:r1] * inv[r0:r1, None] * inv[None, :])[upper]  # (m,)
        ra_u = (A[r0:r1] - AB[r0:r1] @ A)[upper]                     # (m,)  f̃_jᵀP_ηf̃_ℓ, directly
        ident_u = -(eta ** 2) * B_u                                  # (m,)  eq. (3)
        r_all[off:off + m] = r_u
        abs_cos_all[off:off + m] = xp.abs(cos_u)
        abs_ra_all[off:off + m] = xp.abs(ra_u)
        off += m
        pos = cos_u > 0
        acc["exact"].append(_sign_match(xp, B_u, r_u))
        acc["approx"].append(_sign_match(xp, B_u, ra_u))
        if ABp is not None:
            rp_u = (A[r0:r1] - ABp[r0:r1] @ A)[upper]                # (m,)  the script's residual
            acc["paper"].append(_sign_match(xp, Bp[r0:r1][upper], rp_u))
        acc["pos"].append(pos.sum())
        acc["neg_pos"].append((pos & (B_u < 0)).sum())
        acc["certain"].append(((xp.abs(B_u) > delta) & (det_u > 0)).sum())
        acc["gap"].append(xp.abs(ra_u - ident_u).max())
        acc["ident"].append(xp.abs(ident_u).max())
    red = {k: (xp.stack(v).max() if k in ("gap", "ident") else xp.stack(v).sum())
           for k, v in acc.items() if v}
    names = list(red)
    host = to_host(xp.concatenate([xp.stack([xp.asarray(red[k], dtype=xp.float64) for k in names]),
                                   orderstats.quantile(xp, r_all, QUANTILES),        # (9,) NumPy's, NaN included
                                   orderstats.quantile(xp, abs_cos_all, QUANTILES),
                                   xp.stack([orderstats.median(xp, xp.abs(r_all)), orderstats.median(xp, abs_ra_all),
                                             (r_all < 0).mean()])]))
    h = dict(zip(names, (float(v) for v in host[:len(names)])))
    nq = len(QUANTILES)
    rq, cq = host[len(names):len(names) + nq], host[len(names) + nq:len(names) + 2 * nq]
    med_r, med_ra, frac_r_neg = (float(v) for v in host[len(names) + 2 * nq:])
    return {"n_pairs": P,
            "sign_match_exact": h["exact"] / P if exact else None,
            "sign_match_approx": h["approx"] / P,
            "sign_match_paper": h["paper"] / P if "paper" in h else None,
            "frac_B_neg_on_pos_cos": h["neg_pos"] / h["pos"] if h["pos"] else None,
            "n_pos_cos": int(h["pos"]),
            "median_abs_cos": float(cq[nq // 2]),
            "n_sign_certain_exact": int(h["certain"]) if exact else None,
            "median_abs_r_exact": med_r if exact else None,
            "median_abs_r_approx": med_ra,
            "approx_identity_max_rel_gap": (h["gap"] / h["ident"]) if exact and h["ident"] else None,
            "frac_r_exact_neg": frac_r_neg if exact else None,
            "r_exact_quantiles": {f"{p:g}": float(v) for p, v in zip(QUANTILES, rq)} if exact else None,
            "abs_cos_quantiles": {f"{p:g}": float(v) for p, v in zip(QUANTILES, cq)}}
