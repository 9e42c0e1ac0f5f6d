"""The ridge-solved top layer of Tian's own code:  V = (F^T F + lam I)^{-1} F^T T.

References: Tian, "Provable Scaling Laws of Feature Emergence from Learning Dynamics of Grokking"
(arXiv:2509.21519), Stage I (V tends to its ridge solution, so G_F tends to its ridge limit);
his code (github.com/yuandong-tian/understanding, option ``set_weight_reg``; ssl/real-dataset/cogo/
modular_addition_simple2.py @ 03b212ce, lines 316-337), which overwrites V by this solution in every
training forward pass (the one given the targets); how the loop then steps and
logs V (``--ridge-eval``) is train.py's business. docs/math.md §10.

Symbols
    F     (n, K)  raw (uncentred) hidden activations sigma(XW) on the training set
    T     (n, M)  targets onehot(y) - 1/M
    lam           the ridge regulariser (--ridge-reg; 1e-3 in his config)
    V     (K, M)  the solution; T 1 = 0 gives V 1 = 0, so F V is already class-centred

The gradient with respect to W treats V as a constant (Tian's code overwrites V's values outside
autograd; no gradient flows through the solve): dL/dW = X^T [(dL/dYhat V^T) * sigma'(XW)].

How it is solved, and why so. The normal equations square the condition number of F:
cond(F^T F + lam I) = (s_1^2 + lam) / (s_K^2 + lam) <= s_1^2 / lam + 1, which for lam = 1e-3 and
x^2 features is easily 1e6-1e9. A float32 solve (eps 6e-8) would lose every digit, so the Gram
and the solve are always float64, whatever the training dtype, and V is cast back afterwards.
The matrix is symmetric positive definite (every eigenvalue >= lam > 0), so a Cholesky
factorisation L L^T is backward stable and needs no pivoting; two triangular solves follow. The
smaller side is factored: for n < K the identity (F^T F + lam I)^{-1} F^T = F^T (F F^T + lam I)^{-1}
gives V = F^T (F F^T + lam I)^{-1} T with an n x n factorisation. Tian's code goes through the SVD
of F; the stored PyTorch trajectory (scripts/torch_reference_tian.py) takes that route, so the
two agree only through the mathematics.
"""
from __future__ import annotations

from numpy.linalg import LinAlgError  # the exception class only (CuPy raises NumPy's too)

from tianref.backend import scipy_linalg, to_host
from tianref.errors import RunFailure

class SolveFailed(RunFailure):
    """The ridge solve failed: its matrix is not positive definite in floating point, or its input or
    solution is not finite (train.py ends the run as diverged: train.ridge_diverged)."""


# a failed solve: LinAlgError (a matrix that is not positive definite); ValueError from SciPy's
# solve_triangular on non-finite input (NumPy's cholesky passes NaN/inf through without an error)
_LINALG_ERRORS = (LinAlgError, ValueError)


def targets(xp, y, M: int):
    """T = onehot(y) - 1/M in float64, (n, M)."""
    return xp.eye(M, dtype=xp.float64)[y] - 1.0 / M              # (n, M)


def ridge_V(xp, F, y, M: int, lam: float, failed=None):
    """V = (F^T F + lam I)^{-1} F^T T, solved in float64 and returned in F's dtype.  F (n, K), y (n,).
    Raises SolveFailed (a RunFailure) when the solve fails.
    S stacked runs (batch.py): F (S, n, K), y (S, n) -> (S, K, M), each run's V solved alone (the
    triangular solves take one matrix: a run's own solve, bit for bit, run by run). ``failed``: a dict
    that takes {s: message} of each run whose solve fails (its V zeros; the stack ends it alone); None:
    the first failure raises."""
    if F.ndim == 3:
        out = []
        for s in range(F.shape[0]):
            try:
                out.append(ridge_V(xp, F[s], y[s], M, lam))
            except SolveFailed as exc:
                if failed is None:
                    raise
                failed[s] = str(exc)
                out.append(xp.zeros((F.shape[2], M), dtype=F.dtype))  # (K, M) never used: the run ends
        return xp.stack(out)
    n, K = F.shape
    la = scipy_linalg(xp)
    F64 = F.astype(xp.float64)                                   # (n, K)
    T = targets(xp, y, M)                                        # (n, M)
    try:
        if n >= K:                                               # primal: K x K system
            A = F64.T @ F64 + lam * xp.eye(K, dtype=xp.float64)  # (K, K)  F^T F + lam I
            L = xp.linalg.cholesky(A)                            # (K, K)  lower, A = L L^T
            Z = la.solve_triangular(L, F64.T @ T, lower=True)    # (K, M)
            V = la.solve_triangular(L.T, Z, lower=False)         # (K, M)
        else:                                                    # dual: n x n system
            A = F64 @ F64.T + lam * xp.eye(n, dtype=xp.float64)  # (n, n)  F F^T + lam I
            L = xp.linalg.cholesky(A)                            # (n, n)
            Z = la.solve_triangular(L, T, lower=True)            # (n, M)
            V = F64.T @ la.solve_triangular(L.T, Z, lower=False)  # (K, M)
    except _LINALG_ERRORS as exc:
        raise SolveFailed(f"the ridge solve failed ({exc}); the activations are too large "
                         f"for --ridge-reg {lam:g}") from None
    # CuPy's Cholesky returns NaN where NumPy's raises (and its triangular solves pass NaN on): the same
    # failure, named at the same step on every backend
    if not bool(to_host(xp.isfinite(V).all())):
        raise SolveFailed(f"the ridge solve failed (its solution is not finite); the activations are "
                         f"too large for --ridge-reg {lam:g}")
    return V.astype(F.dtype)


def ridge_limit_G_F(xp, F, y, M: int, lam: float):
    """The back-propagated gradient at the ridge V, in closed form (float64, (n, K)):

        G_F = P_perp (T - F V) V^T = lam P_perp (F F^T + lam I)^{-1} T T^T F (F^T F + lam I)^{-1}

    (push-through: T - F V = lam (F F^T + lam I)^{-1} T). This is Tian's Stage-I limit
    eta (F F^T + eta I)^{-1} Y Y^T F (F^T F + eta I)^{-1} written for the raw F and T that his
    ridge code uses, with the sample centring P_perp of this project's G_F diagnostic.
    """
    n, K = F.shape
    F64 = F.astype(xp.float64)
    T = targets(xp, y, M)
    R = lam * xp.linalg.solve(F64 @ F64.T + lam * xp.eye(n, dtype=xp.float64), T)      # (n, M)
    Vt = xp.linalg.solve(F64.T @ F64 + lam * xp.eye(K, dtype=xp.float64), F64.T @ T).T  # (M, K)
    G = R @ Vt                                                   # (n, K)
    return G - G.mean(axis=0, keepdims=True)                     # P_perp
