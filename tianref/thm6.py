"""Theorem 6 exactly: B, the exact leave-two-out residuals, and the published eq. (4).

References
    Seed paper (arXiv 2605.08119), Theorem 6 and its eq. (4); the script that produced its Table T1
    (``theorem6_verify.py``), as described in shared/spec/paper-protocol.md §3 "Thm 6";
    shared/spec/theorem6.md (Facts 1-3); docs/theorem6.md derives every identity used here.

Symbols (code name <-> math; n training samples, K hidden units)
    F_tilde       F̃ = P₁⊥F                         (n, K)   hidden activations, column-centred over samples
    f_j           f̃_j, column j of F̃               (n,)
    A             A = F̃ᵀF̃                          (K, K)
    C             C = A + ηI                        (K, K)
    B             B = C⁻¹                           (K, K)   eq. (1)
    core          F̃ᵀ(F̃F̃ᵀ + ηI)⁻¹F̃ = I − ηB          (K, K)   the n×n (Woodbury) route
    B_paper       (1/η)I − (1/η²)·core              (K, K)   the PUBLISHED eq. (4); erroneous (Fact 3)
    F_minus       F̃₋ⱼₗ, F̃ without columns j, ℓ     (n, K−2)
    P_eta_minus   P_{η,−jℓ} = I − F̃₋(F̃₋ᵀF̃₋ + ηI)⁻¹F̃₋ᵀ = η(F̃₋F̃₋ᵀ + ηI)⁻¹   (push-through)
    P_eta         P_η = I − F̃BF̃ᵀ
    S             F̃_TᵀP_{η,−jℓ}F̃_T + ηI₂, T = {j, ℓ}   (2, 2)
    r_exact       r_jℓ = f̃_jᵀP_{η,−jℓ}f̃_ℓ
    r_approx      f̃_jᵀP_ηf̃_ℓ
    r_paper       f̃_jᵀ(I − F̃B_paperF̃ᵀ)f̃_ℓ
    cos           cos_jℓ = A_jℓ / sqrt(A_jj A_ℓℓ)

Defining equations (each appears once; docs/theorem6.md derives them)
    (1) B = (F̃ᵀF̃ + ηI)⁻¹
    (2) r_jℓ = −B_jℓ / (B_jj B_ℓℓ − B_jℓ²)          Schur complement: B_TT = S⁻¹ (Fact 1)
    (3) f̃_jᵀP_ηf̃_ℓ = −η² B_jℓ,  j ≠ ℓ               (Fact 2)
    (4) B = (1/η)[I − F̃ᵀ(F̃F̃ᵀ + ηI)⁻¹F̃]              Woodbury; the paper prints 1/η² on the 2nd term

Deviations from the paper's script, each deliberate
    * B is computed by Cholesky (default; or eigh) of A + ηI and cross-checked against the correct
      Woodbury route (4); the paper's eq. (4) is kept as ``B_paper`` and its path is labelled "paper".
    * The residual is the exact leave-two-out r_jℓ, not the full-projector r_approx.
    * cos is computed in float64 from A (the script normalised F̃ in float32). Pairs whose |cos| differ
      by less than float32 rounding may therefore enter the top-N in a different order.
    * F is computed from a float64 copy of the weights (the script's replay ran the float32 forward).
    * η = 0: B does not exist (rank F̃ ≤ n − 1 < K); we raise ``InputError`` instead of silently
      switching to a pseudo-inverse. ``B_pinv`` is the explicit, documented alternative.
    * A zero column of F̃ (a dead unit) has cos := 0 with every other column.
"""
from __future__ import annotations

import math

import numpy as np  # host bookkeeping only (tie-breaking of a few candidates, scalar summaries)

from tianref.backend import to_host
from tianref.data import make_batch
from tianref.errors import InputError, RunFailure
from tianref.model import hidden

U64 = 2.0 ** -53          # unit roundoff of float64 (LAPACK's dlamch('E'))
QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)


# --- F̃ ------------------------------------------------------------------------------------------

def centre(xp, F):
    """F̃ = P₁⊥F: each column centred over the n samples, in float64.  (n, K) -> (n, K)."""
    F64 = xp.asarray(F, dtype=xp.float64)                            # (n, K)
    return F64 - F64.mean(axis=0, keepdims=True)                     # (n, K)  P₁⊥F


def features_from_weights(xp, W, M: int, train_idx, act: str):
    """F̃ on the training set for first-layer weights W (2M, K), computed in float64."""
    batch = make_batch(xp, M, np.asarray(train_idx, dtype=np.int64))
    W64 = xp.asarray(W, dtype=xp.float64)                            # (2M, K)
    _, F = hidden(xp, W64, batch, act)                               # (n, K)  σ(XW)
    F_tilde = centre(xp, F)                                          # (n, K)
    if not bool(to_host(xp.isfinite(F_tilde).all())):
        raise InputError("the hidden activations contain NaN/inf (a diverged checkpoint?)")
    return F_tilde


# --- B -------------------------------------------------------------------------------------------

def _check_eta(eta, F_tilde, route: str, zero_ok: bool = False) -> None:
    """η must be finite and > 0 for ``route`` to exist; η = 0 only where zero_ok and rank F̃ = K is possible."""
    n, K = F_tilde.shape
    try:
        eta = float(eta)
    except (TypeError, ValueError):
        raise InputError(f"eta must be a finite number >= 0 (got {eta!r})") from None
    if not math.isfinite(eta) or eta < 0:
        raise InputError(f"eta must be a finite number >= 0 (got {eta!r})")
    if eta == 0 and n - 1 < K:
        raise InputError(
            f"eta = 0: B = (F~^T F~ + eta I)^-1 does not exist because rank F~ <= n-1 = {n - 1} < K = {K} "
            "(F~ is column-centred); pass --pinv to use the pseudo-inverse variant explicitly")
    if eta == 0 and not zero_ok:
        raise InputError(f"eta = 0: {route} divides by eta and does not exist; it needs eta > 0")


def _check_nonsingular(xp, lam, K: int) -> None:
    """At η = 0 B exists only if A is nonsingular: require λ_min(A) > K·u·λ_max(A)."""
    ext = to_host(xp.stack([lam.min(), xp.abs(lam).max()]))
    if not ext[0] > K * U64 * ext[1]:
        raise InputError(f"eta = 0 and F~^T F~ is singular (lambda_min/lambda_max = {ext[0] / ext[1]:.1e}): "
                         "B does not exist; pass --pinv to use the pseudo-inverse variant explicitly")


def _check_finite(xp, X, what: str) -> None:
    """cupy.linalg does not raise on failure; check the result instead."""
    if not bool(to_host(xp.isfinite(X).all())):
        raise RunFailure(f"{what} produced non-finite values (the factorisation failed)")


def B_eigh(xp, F_tilde, eta: float):
    """B by eigendecomposition of A.  Returns (B (K, K), lam (K,) eigenvalues of A, clipped at 0)."""
    _check_eta(eta, F_tilde, "B", zero_ok=True)
    A = F_tilde.T @ F_tilde                                          # (K, K)  A = F̃ᵀF̃
    lam, Q = xp.linalg.eigh(A)                                       # (K,), (K, K)  A = Q diag(lam) Qᵀ
    if eta == 0:
        _check_nonsingular(xp, lam, A.shape[0])
    lam = xp.maximum(lam, 0.0)                                       # (K,)  A ⪰ 0; rounding gives −O(u‖A‖)
    B = (Q / (lam + eta)) @ Q.T                                      # (K, K)  eq. (1)
    B = (B + B.T) / 2                                                # (K, K)  exactly symmetric
    _check_finite(xp, B, "eigh of F~^T F~")
    return B, lam


def B_cholesky(xp, F_tilde, eta: float):
    """B = L⁻ᵀL⁻¹ with C = LLᵀ (Cholesky).  (K, K)."""
    _check_eta(eta, F_tilde, "B", zero_ok=True)
    K = F_tilde.shape[1]
    C = F_tilde.T @ F_tilde + eta * xp.eye(K)                        # (K, K)  C = A + ηI
    if eta == 0:
        _check_nonsingular(xp, xp.linalg.eigvalsh(C), K)
    L = xp.linalg.cholesky(C)                                        # (K, K)  C = L Lᵀ
    L_inv = xp.linalg.solve(L, xp.eye(K))                            # (K, K)  L⁻¹
    B = L_inv.T @ L_inv                                              # (K, K)  C⁻¹ = L⁻ᵀL⁻¹
    B = (B + B.T) / 2                                                # (K, K)
    _check_finite(xp, B, "Cholesky of F~^T F~ + eta I")
    return B


def B_inverse(xp, F_tilde, eta: float, method: str = "cholesky"):
    """B = (F̃ᵀF̃ + ηI)⁻¹, symmetric positive definite.  method: 'cholesky' (faster) or 'eigh'.

    Both are backward stable for the SPD matrix C = A + ηI (λ_min(C) ≥ η > 0); eigh also yields
    λ_max(A) for cond(C) and a tighter sign_error_bound. At K = 2048 Cholesky is ~3x faster.
    """
    if method == "eigh":
        return B_eigh(xp, F_tilde, eta)[0]
    if method == "cholesky":
        return B_cholesky(xp, F_tilde, eta)
    raise InputError(f"unknown method {method!r}; choose eigh or cholesky")


def B_pinv(xp, F_tilde, eta: float = 0.0):
    """The explicit η = 0 variant: the Moore-Penrose pseudo-inverse (A + ηI)⁺.

    At η = 0 this is A⁺ = Σ_{λᵢ > tol} qᵢqᵢᵀ/λᵢ (tol = max(n, K)·u·λ_max): the inverse of A on the row
    space of F̃ and 0 on its null space. It is NOT a limit of B(η) (whose null-space part grows like
    1/η), the Schur relation (2) does not hold for it, and f̃_jᵀ(I − F̃A⁺F̃ᵀ)f̃_ℓ = 0 up to rounding
    because F̃A⁺F̃ᵀ is the orthogonal projector onto range(F̃). It is what the paper's script would use
    at η = 0.
    """
    eta = float(eta)
    if not (math.isfinite(eta) and eta >= 0):
        raise InputError(f"eta must be a finite number >= 0 (got {eta!r})")
    n, K = F_tilde.shape
    A = F_tilde.T @ F_tilde                                          # (K, K)
    lam, Q = xp.linalg.eigh(A)                                       # (K,), (K, K)
    lam = lam + eta                                                  # (K,)  eigenvalues of A + ηI
    tol = max(n, K) * U64 * float(to_host(xp.abs(lam).max()))
    keep = lam > tol                                                 # (K,)
    inv_lam = xp.where(keep, 1.0 / xp.where(keep, lam, 1.0), 0.0)    # (K,)  1/λ on the range, 0 else
    B = (Q * inv_lam) @ Q.T                                          # (K, K)
    return (B + B.T) / 2


def woodbury_core(xp, F_tilde, eta: float):
    """core = F̃ᵀ(F̃F̃ᵀ + ηI)⁻¹F̃ through one n×n solve.  (K, K)."""
    _check_eta(eta, F_tilde, "the Woodbury form of B")
    n = F_tilde.shape[0]
    G = F_tilde @ F_tilde.T                                          # (n, n)  F̃F̃ᵀ
    X = xp.linalg.solve(G + eta * xp.eye(n), F_tilde)                # (n, K)  (F̃F̃ᵀ + ηI)⁻¹F̃
    core = F_tilde.T @ X                                             # (K, K)
    _check_finite(xp, core, "the n x n Woodbury solve")
    return (core + core.T) / 2


def B_woodbury(xp, F_tilde, eta: float, core=None):
    """The correct Woodbury route, eq. (4): B = (1/η)[I − core].  (K, K)."""
    core = woodbury_core(xp, F_tilde, eta) if core is None else core
    return (xp.eye(core.shape[0]) - core) / eta                      # (K, K)


def B_paper(xp, F_tilde, eta: float, core=None):
    """The PUBLISHED eq. (4), kept to reproduce the paper: (1/η)I − (1/η²)core.  ERRONEOUS (1/η²).

    B_paper = B/η − ((1 − η)/η²)I, so its off-diagonal entries are B_jℓ/η (same signs as B).
    """
    core = woodbury_core(xp, F_tilde, eta) if core is None else core
    return xp.eye(core.shape[0]) / eta - core / eta ** 2             # (K, K)


# --- residuals -----------------------------------------------------------------------------------

def r_exact_closed(B, j, l):
    """Eq. (2) for index arrays j, ℓ (any matching shapes): r = −B_jℓ / (B_jj B_ℓℓ − B_jℓ²)."""
    B_jl, B_jj, B_ll = B[j, l], B[j, j], B[l, l]                     # (N,) each
    return -B_jl / (B_jj * B_ll - B_jl * B_jl)                       # (N,)


def S_direct(xp, F_tilde, eta: float, j: int, l: int, route: str = "auto"):
    """The definitional construction for one pair: drop columns j, ℓ, solve, apply.  Returns S (2, 2).

    S = F̃_TᵀP_{η,−jℓ}F̃_T + ηI₂, so S[0, 1] = r_jℓ, S[0, 0] − η = r_jj, S[1, 1] − η = r_ℓℓ.
    route 'push' : P_{η,−jℓ}F̃_T = η(F̃₋F̃₋ᵀ + ηI_n)⁻¹F̃_T  (n×n solve; no subtraction of nearly equal terms)
    route 'gram' : P_{η,−jℓ}F̃_T = F̃_T − F̃₋(F̃₋ᵀF̃₋ + ηI)⁻¹F̃₋ᵀF̃_T  ((K−2)×(K−2) solve; subtracts)
    'auto' takes 'push' when n ≤ K − 2 and η > 0 (cheaper there as well) and 'gram' otherwise.
    Either costs O(n·K·min(n, K) + min(n, K)³) per pair, against O(1) for eq. (2) once B exists.
    """
    n, K = F_tilde.shape
    if j == l or not (0 <= j < K and 0 <= l < K):
        raise InputError(f"a pair needs two different columns in [0, {K}) (got {j}, {l})")
    if route == "auto":
        route = "push" if (n <= K - 2 and eta > 0) else "gram"
    _check_eta(eta, F_tilde, "the push-through form of P_{eta,-jl}", zero_ok=route == "gram")
    cols = xp.arange(K)                                              # (K,)
    F_minus = F_tilde[:, (cols != j) & (cols != l)]                  # (n, K−2)  F̃₋ⱼₗ
    F_T = xp.stack([F_tilde[:, j], F_tilde[:, l]], axis=1)           # (n, 2)    [f̃_j, f̃_ℓ]
    if route == "push":
        G = F_minus @ F_minus.T                                      # (n, n)    F̃₋F̃₋ᵀ
        P_F_T = eta * xp.linalg.solve(G + eta * xp.eye(n), F_T)      # (n, 2)    P_{η,−jℓ}F̃_T
    elif route == "gram":
        A_minus = F_minus.T @ F_minus                                # (K−2, K−2)
        coef = xp.linalg.solve(A_minus + eta * xp.eye(K - 2), F_minus.T @ F_T)   # (K−2, 2)
        P_F_T = F_T - F_minus @ coef                                 # (n, 2)    P_{η,−jℓ}F̃_T
    else:
        raise InputError(f"unknown route {route!r}; choose auto, push or gram")
    R = F_T.T @ P_F_T                                                # (2, 2)    [[r_jj, r_jℓ], [r_ℓj, r_ℓℓ]]
    return (R + R.T) / 2 + eta * xp.eye(2)                           # (2, 2)    S


def r_exact_direct(xp, F_tilde, eta: float, j: int, l: int, route: str = "auto"):
    """r_jℓ = f̃_jᵀP_{η,−jℓ}f̃_ℓ by the definitional route (the audit path).  0-d array."""
    return S_direct(xp, F_tilde, eta, j, l, route)[0, 1]


def residual_with(xp, F_tilde, B_any, j, l):
    """f̃_jᵀ(I − F̃ B_any F̃ᵀ)f̃_ℓ applied literally, for index arrays j, ℓ (N,).  (N,)."""
    F_j, F_l = F_tilde[:, j], F_tilde[:, l]                          # (n, N), (n, N)
    P_F_l = F_l - F_tilde @ (B_any @ (F_tilde.T @ F_l))              # (n, N)  (I − F̃B_anyF̃ᵀ)f̃_ℓ
    return (F_j * P_F_l).sum(axis=0)                                 # (N,)


def r_approx(xp, F_tilde, B, j, l):
    """Full-projector residual f̃_jᵀP_ηf̃_ℓ computed directly (cancels: compare r_approx_identity)."""
    return residual_with(xp, F_tilde, B, j, l)


def r_approx_identity(B, eta: float, j, l):
    """Eq. (3): f̃_jᵀP_ηf̃_ℓ = −η²B_jℓ for j ≠ ℓ.  (N,)."""
    return -(eta ** 2) * B[j, l]


def r_paper(xp, F_tilde, Bp, j, l):
    """The script's residual f̃_jᵀ(I − F̃B_paperF̃ᵀ)f̃_ℓ: NOT a residual similarity (Fact 3).  (N,)."""
    return residual_with(xp, F_tilde, Bp, j, l)


# --- pairs ---------------------------------------------------------------------------------------

def inverse_norms(xp, A):
    """1/‖f̃_j‖ from diag(A), with 0 for a zero column.  (K,)."""
    s = xp.sqrt(xp.maximum(xp.diagonal(A), 0.0))                     # (K,)  ‖f̃_j‖
    pos = s > 0                                                      # (K,)
    return xp.where(pos, 1.0 / xp.where(pos, s, 1.0), 0.0)           # (K,)


def top_pairs(xp, F_tilde, N: int):
    """The N unordered pairs j < ℓ with the largest |cos_jℓ|, ties broken by (j, ℓ) ascending.

    Returns (j, ℓ, cos) as (N,) arrays ordered by |cos| descending. cos is float64 (paper: float32).
    """
    A = F_tilde.T @ F_tilde                                          # (K, K)
    K = A.shape[0]
    n_all = K * (K - 1) // 2
    N = min(int(N), n_all)
    if N <= 0:
        none = xp.zeros(0, dtype=xp.int64)
        return none, none, xp.zeros(0, dtype=xp.float64)
    inv = inverse_norms(xp, A)                                       # (K,)
    abs_cos = xp.abs(A * inv[:, None] * inv[None, :])                # (K, K)  |cos|
    idx = xp.arange(K)                                               # (K,)
    upper = idx[:, None] < idx[None, :]                              # (K, K)  j < ℓ
    vals = abs_cos[upper]                                            # (P,)
    t = xp.partition(vals, n_all - N)[n_all - N]                     # the N-th largest |cos|
    jj, ll = xp.nonzero(upper & (abs_cos >= t))                      # candidates, (j, ℓ) ascending
    order = np.argsort(-to_host(abs_cos[jj, ll]), kind="stable")[:N]   # host: |cos| desc, ties keep (j, ℓ)
    j_sel = xp.asarray(to_host(jj)[order])                           # (N,)
    l_sel = xp.asarray(to_host(ll)[order])                           # (N,)
    cos = A[j_sel, l_sel] * inv[j_sel] * inv[l_sel]                  # (N,)
    return j_sel, l_sel, cos


# --- floating-point certainty of a sign ----------------------------------------------------------

def sign_error_bound(xp, F_tilde, eta: float, lam_max_A=None, lam_min_A=None) -> float:
    """δ with |B̂_jℓ − B_jℓ| ≤ δ for the computed B̂ (first-order, normwise; docs/theorem6.md §6).

    ‖Ĉ − C‖₂ ≤ e_C = γ_{2n}‖F̃‖_F² (forming A, incl. centring) + γ_K λ_max(C) (eigh/Cholesky backward
    error, taking LAPACK's "modest p(K)" as K);  ‖B‖₂ = 1/λ_min(C) ≤ 1/(η + λ_min(A));  then
    ‖B̂ − B‖₂ ≤ ‖B‖₂² e_C / (1 − ‖B‖₂ e_C) + γ_{2K}‖B‖₂ (forming B from the factors).
    λ_max(A), λ_min(A) come from eigh when given (widened by γ_K λ_max), else tr(A) and 0.
    Returns inf when ‖B‖₂ e_C ≥ 1 (no sign can be certified).
    """
    n, K = F_tilde.shape
    trace_A = float(to_host((F_tilde * F_tilde).sum()))              # ‖F̃‖_F² = tr(A)

    def gamma(m):
        return m * U64 / (1 - m * U64)

    slack = 0.0 if lam_max_A is None else gamma(K) * float(lam_max_A)
    lam_max_C = (trace_A if lam_max_A is None else float(lam_max_A) + slack) + eta
    lam_min_C = eta + (0.0 if lam_min_A is None else max(float(lam_min_A) - slack, 0.0))
    if not lam_min_C > 0:
        return math.inf
    e_C = gamma(2 * n) * trace_A + gamma(K) * lam_max_C
    norm_B = 1.0 / lam_min_C
    if norm_B * e_C >= 1:
        return math.inf
    return norm_B ** 2 * e_C / (1 - norm_B * e_C) + gamma(2 * K) * norm_B


# --- one checkpoint ------------------------------------------------------------------------------

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
    if pinv and eta != 0:
        raise InputError(f"--pinv is the eta = 0 variant, but eta = {eta:g}; drop --pinv or pass --eta 0")
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
            "neg_pos": (pos & (B_jl < 0)).sum(), "med_cos": xp.median(xp.abs(cos)),
            "med_ra": xp.median(xp.abs(arr["r_approx"]))}
    if "r_exact" in arr:
        ident = arr["r_approx_identity"]
        vals.update(sm_exact=_sign_match(xp, B_jl, arr["r_exact"]),
                    certain=((xp.abs(B_jl) > delta) & (arr["det"] > 0)).sum(),
                    med_re=xp.median(xp.abs(arr["r_exact"])),
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
    q = xp.asarray(QUANTILES, dtype=xp.float64)                      # (9,)
    names = list(red)
    host = to_host(xp.concatenate([xp.stack([xp.asarray(red[k], dtype=xp.float64) for k in names]),
                                   xp.quantile(r_all, q), xp.quantile(abs_cos_all, q),
                                   xp.stack([xp.median(xp.abs(r_all)), xp.median(abs_ra_all),
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
