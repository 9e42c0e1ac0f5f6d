"""Theorem 6 exactly: B, the exact leave-two-out residuals, and the published eq. (4).

References
    Seed paper (arXiv 2605.08119), Theorem 6 and its eq. (4); the script that produced its Table T1
    (``theorem6_verify.py``), as described in docs/paper-protocol.md §3 "Thm 6";
    docs/theorem6.md (Facts 1-3); docs/theorem6.md derives every identity used here.

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

What ``thm6`` reports for one checkpoint (sign-match fractions, top pairs, all-pairs distributions)
is assembled from these pieces in tianref/thm6/summary.py. The package ``tianref.thm6`` re-exports
both modules' public names, so ``from tianref import thm6; thm6.summarize_checkpoint`` works.
"""
from __future__ import annotations

import math

import numpy as np  # host bookkeeping only (tie-breaking of a few candidates, scalar summaries)

from tianref.backend import to_host
from tianref.data import make_batch
from tianref.errors import InputError, RunFailure
from tianref.model import hidden

U64 = 2.0 ** -53          # unit roundoff of float64 (LAPACK's dlamch('E'))


# --- F̃ ------------------------------------------------------------------------------------------

def centre(xp, F):
    """F̃ = P₁⊥F: each column centred over the n samples, in float64.  (n, K) -> (n, K)."""
    F64 = xp.asarray(F, dtype=xp.float64)                            # (n, K)
    return F64 - F64.mean(axis=0, keepdims=True)                     # (n, K)  P₁⊥F


def features_from_weights(xp, W, M: int, train_idx, act: str, table=None):
    """F̃ on the training set for first-layer weights W (2M, K), computed in float64.
    ``table``: the run's task table (tianref.group_rows.table_of_config; None = Z_M). F̃ depends on the
    operands only, but the batch is the training code's own (data.make_batch), labels included."""
    batch = make_batch(xp, M, np.asarray(train_idx, dtype=np.int64), table)
    W64 = xp.asarray(W, dtype=xp.float64)                            # (2M, K)
    _, F = hidden(xp, W64, batch, act, keep_H=False)                 # (n, K)  σ(XW)
    F_tilde = centre(xp, F)                                          # (n, K)
    if not bool(to_host(xp.isfinite(F_tilde).all())):
        raise InputError("the hidden activations contain NaN/inf (a diverged checkpoint?)")
    return F_tilde


# --- B -------------------------------------------------------------------------------------------

ETA_MAX = 1e150      # eta^2 and 1/eta^2 stay finite float64 numbers (the paper's B divides by eta^2)


def _check_eta(eta, F_tilde, route: str, zero_ok: bool = False) -> None:
    """η must be finite and > 0 for ``route`` to exist; η = 0 only where zero_ok and rank F̃ = K is possible."""
    check_eta_shape(eta, *F_tilde.shape, route, zero_ok)


def check_eta_shape(eta, n: int, K: int, route: str = "B", zero_ok: bool = True) -> None:
    """_check_eta from the shape (n, K) of F̃ alone: what a run's config decides before any state is
    computed (thm6's command checks it before replaying a run)."""
    try:
        eta = float(eta)
    except (TypeError, ValueError):
        raise InputError(f"eta must be a finite number >= 0 (got {eta!r})") from None
    if not math.isfinite(eta) or eta < 0:
        raise InputError(f"eta must be a finite number >= 0 (got {eta!r})")
    if eta > ETA_MAX:
        raise InputError(f"eta = {eta:g} is too large: the identities divide by eta^2, which must stay a finite "
                         f"float64 (eta <= {ETA_MAX:g})")
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
    try:
        L = xp.linalg.cholesky(C)                                    # (K, K)  C = L Lᵀ
    except np.linalg.LinAlgError:                                    # (NumPy's; CuPy returns NaN: below)
        top = float(to_host(xp.diagonal(C).max()))
        raise RunFailure(f"the Cholesky factorisation of F~^T F~ + eta I failed: not positive definite in "
                         f"float64 (eta = {eta:g} against diagonal entries up to {top:.3g}: the features are "
                         "too large or too ill-conditioned for B, e.g. a run near divergence)") from None
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
