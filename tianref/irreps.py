"""Representation theory of a finite group from its Cayley table alone: classes, isotypic projectors,
characters, Frobenius-Schur types, and (for checks) matrix irreps.

References: Serre, "Linear Representations of Finite Groups" (1977), ch. 2 (characters, the regular
representation, the canonical decomposition) and §13.2 (the Frobenius-Schur indicator); Tian,
arXiv:2509.21519 (the energy over irreps that these objects serve). docs/groups.md walks S_3 by hand.

Symbols
    T         (M, M) table, T[a, b] = a.b;  e the identity;  inv (M,) g -> g^-1
    L(g)      (M, M) left-regular permutation matrix, L(g)[g.h, h] = 1, (L(g) f)(x) = f(g^-1 x)
    Rr(g)     (M, M) right-regular, (Rr(g) f)(x) = f(x g); commutes with every L(g')
    c, |c|    a conjugacy class and its size;  C_c = sum_{g in c} L(g)  (the class sum)
    A         sum_c a_c (C_c + C_c^T), a_c ~ N(0, 1) from default_rng(seed): real symmetric, central
    Pi_k      (M, M) orthogonal projector on the real isotypic component k (an eigenspace of A)
    P_k       (M, M) projector on the complex isotypic component of irrep k (= Pi_k unless k is one
              of a complex pair, which splits Pi_k = P_k + conj(P_k))
    omega_k   (n_classes,) eigenvalue of C_c on range(P_k): |c| chi_k(c) / d_k
    d_k       degree, from sum_c |c| |chi_k(c)|^2 = M:  d_k^2 = M / sum_c |omega_k(c)|^2 / |c|
    chi_k     (n_classes,) complex character, chi_k(c) = d_k omega_k(c) / |c|
    nu_k      Frobenius-Schur indicator (1/M) sum_g chi_k(g^2): 1 real, 0 complex, -1 quaternionic

Why one eigendecomposition suffices: C_c acts on the isotypic component of irrep k as the scalar
omega_k(c), and C_c^T = C_{c^-1} as conj(omega_k(c)); so A acts on the real component of k (k and its
conjugate together) as lambda_k = sum_c 2 a_c Re omega_k(c). Distinct real components have distinct
vectors (Re omega_k(c))_c (linear independence of characters), so for generic a the lambda_k differ.

Clustering tolerance: eigh is backward stable, so an eigenvalue is off by at most ~ M eps ||A|| (about
3e-14 ||A|| for M = 120); gaps between distinct lambda_k are O(||A|| / n_classes) for Gaussian a. Two
sorted eigenvalues are one cluster when they differ by <= CLUSTER_RTOL ||A|| = 1e-9 ||A||: four orders
above the error, many below a typical gap. The decomposition is verified (one irrep per class, integral
degrees, sum d_k^2 = M, integral indicators); on failure the next seed is tried.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np  # host-side construction: the decomposition is computed once per table

from tianref.errors import RunFailure

SEED = 20250921
CLUSTER_RTOL = 1e-9
TRIES = 4


@dataclass(frozen=True, eq=False)
class Irrep:
    degree: int
    fs: str                 # "real" | "complex" | "quaternionic"
    fs_indicator: float
    component: int          # index into Decomposition.components
    character: np.ndarray   # (n_classes,) complex
    projector: np.ndarray   # (M, M) P_k, complex for a member of a complex pair, else real


@dataclass(frozen=True, eq=False)
class Component:
    projector: np.ndarray   # (M, M) Pi_k, real symmetric
    basis: np.ndarray       # (M, m_k) orthonormal columns spanning range(Pi_k)
    irreps: tuple           # indices into Decomposition.irreps (two for a complex pair)

    @property
    def real_dim(self) -> int:
        return int(self.basis.shape[1])


@dataclass(frozen=True, eq=False)
class Decomposition:
    order: int
    identity: int
    inverse: np.ndarray     # (M,)
    classes: list           # list of (|c|,) int arrays, identity class first
    class_of: np.ndarray    # (M,)
    components: list        # Component, trivial first
    irreps: list            # Irrep, in component order

    @property
    def class_sizes(self) -> np.ndarray:
        return np.array([len(c) for c in self.classes])

    @property
    def degrees(self) -> list:
        return sorted(ir.degree for ir in self.irreps)

    def character_table(self) -> np.ndarray:
        """(n_irreps, n_classes) complex."""
        return np.array([ir.character for ir in self.irreps])

    def orthogonality_error(self) -> float:
        """max |(1/M) sum_c |c| chi_k(c) conj(chi_l(c)) - delta_kl|."""
        X = self.character_table()
        G = (X * self.class_sizes[None, :]) @ X.conj().T / self.order
        return float(np.abs(G - np.eye(len(X))).max())


def identity_and_inverse(T):
    M = T.shape[0]
    e = int(np.argmax((T == np.arange(M)[None, :]).all(axis=1)))
    return e, np.argmax(T == e, axis=1)                             # (M,) g.h = e


def conjugacy_classes(T):
    """(classes, class_of): classes sorted by smallest element, the identity's class first."""
    e, inv = identity_and_inverse(T)
    M = T.shape[0]
    conj = T[T, inv[:, None]]                                       # (M, M): T[T[x, g], inv[x]]
    class_of = np.full(M, -1)
    reps = []
    for g in [e] + [h for h in range(M) if h != e]:
        if class_of[g] < 0:
            class_of[np.unique(conj[:, g])] = len(reps)
            reps.append(g)
    classes = [np.flatnonzero(class_of == i) for i in range(len(reps))]
    return classes, class_of


def left_regular(T, g) -> np.ndarray:
    """L(g) (M, M) float64."""
    M = T.shape[0]
    L = np.zeros((M, M))
    L[T[g], np.arange(M)] = 1.0
    return L


def right_regular(T, g) -> np.ndarray:
    """Rr(g) (M, M) float64, (Rr(g) f)(x) = f(x g)."""
    M = T.shape[0]
    R = np.zeros((M, M))
    R[np.arange(M), T[:, g]] = 1.0
    return R


def class_sums(T, classes) -> np.ndarray:
    """(n_classes, M, M) C_c = sum_{g in c} L(g)."""
    return np.array([sum(left_regular(T, g) for g in c) for c in classes])


def central(T, beta, inv) -> np.ndarray:
    """sum_g beta_g L(g) (M, M): entry [x, y] = beta[x y^-1]."""
    return beta[T[:, inv]]


def _trace_with_L(T, P) -> np.ndarray:
    """t(g) = tr(P L(g)) = sum_h P[h, g.h] for every g, (M,).  (sum_h P[g.h, h] would be
    tr(P L(g)^T) = d conj(chi(g)): the conjugate irrep's character for a member of a complex pair.)"""
    return P[np.arange(T.shape[0])[None, :], T].sum(axis=1)


def _clusters(vals, tol):
    cuts = np.flatnonzero(np.diff(vals) > tol) + 1
    return np.split(np.arange(len(vals)), cuts)


def _attempt(T, seed):
    M = T.shape[0]
    e, inv = identity_and_inverse(T)
    classes, class_of = conjugacy_classes(T)
    sizes = np.array([len(c) for c in classes])
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(len(classes))[class_of]                 # (M,) a_{class(g)}
    b = rng.standard_normal(len(classes))[class_of]
    A = central(T, a + a[inv], inv)                                 # (M, M) sum_c a_c (C_c + C_c^T)
    H = central(T, b - b[inv], inv)                                 # (M, M) real antisymmetric, central
    vals, vecs = np.linalg.eigh(A)
    scale = max(np.abs(vals).max(), 1.0)
    sq = T[np.arange(M), np.arange(M)]                              # (M,) g^2
    comps = []                                                      # (basis, [(P, chi, d, nu)])
    for idx in _clusters(vals, CLUSTER_RTOL * scale):
        V = vecs[:, idx]                                            # (M, m)
        K = V.T @ H @ V                                             # (m, m) antisymmetric
        if np.abs(K).max() <= CLUSTER_RTOL * max(np.abs(H).max() * M, 1.0):
            projs = [V @ V.T]                                       # real-valued character
        else:
            mu, U = np.linalg.eigh(1j * K)                          # +-mu, each m/2 times
            if len(idx) % 2 or (mu[len(idx) // 2:] <= 0).any():
                raise RunFailure("a complex component did not split into two halves")
            Up = V @ U[:, len(idx) // 2:]                           # (M, m/2)
            Pp = Up @ Up.conj().T
            projs = [Pp, Pp.conj()]
        out = []
        for P in projs:
            t = _trace_with_L(T, P)                                 # (M,)  tr(P L(g))
            omega = np.array([t[c].sum() for c in classes]) / np.trace(P).real   # eigenvalue of C_c
            d = np.sqrt(M / (np.abs(omega) ** 2 / sizes).sum())
            chi = d * omega / sizes                                 # (n_classes,)
            nu = (chi[class_of[sq]]).sum() / M
            out.append((P, chi, d, nu))
        comps.append((V, out))
    n_irreps = sum(len(o) for _, o in comps)
    degs = [d for _, o in comps for (_, _, d, _) in o]
    if n_irreps != len(classes) or max(abs(d - round(d)) for d in degs) > 1e-6 \
            or sum(round(d) ** 2 for d in degs) != M:
        raise RunFailure(f"decomposition of an order-{M} table failed its checks (seed {seed})")

    def key(item):
        _, out = item
        _, chi, d, _ = out[0]
        return (round(d), tuple(np.round(-chi.real / d, 9)))
    comps.sort(key=key)
    components, irreps = [], []
    for ci, (V, out) in enumerate(comps):
        ids = []
        if len(out) == 2:                       # a complex pair: the one whose character has the larger
            out = sorted(out, key=lambda o: tuple(np.round(-o[1].imag, 9)))   # imaginary part first
        for P, chi, d, nu in out:
            if len(out) == 2:
                fs = "complex"
            elif abs(nu - 1) < 1e-6:
                fs = "real"
            elif abs(nu + 1) < 1e-6:
                fs = "quaternionic"
            else:
                raise RunFailure(f"Frobenius-Schur indicator {nu:.3g} is not +-1 for a real character")
            ids.append(len(irreps))
            irreps.append(Irrep(int(round(d)), fs, float(np.real(nu)), ci, chi,
                                P.real.copy() if len(out) == 1 else P))
        components.append(Component(V @ V.T, V, tuple(ids)))
    return Decomposition(M, e, inv, classes, class_of, components, irreps)


_CACHE: dict = {}


def decomposition_bytes(T) -> int:
    """Bytes ``decompose`` holds at its peak, about: the three (M, M) float64 matrices of the attempt, and
    per irreducible character its (M, M) projectors: 24 M^2 for a real-valued one (the cluster's, the
    irrep's own copy, the component's), 20 M^2 for each member of a complex pair (two complex (M, M)
    projectors and the pair's real one). The real-valued characters are as many as the classes closed
    under inversion. Measured on a 2-core machine (peak RSS): Z512 2.75 GB (this: 2.7), Z2^9 3.2 GB (3.2),
    Z1024 21.3 GB (21.5)."""
    M = T.shape[0]
    _, inv = identity_and_inverse(T)
    classes, class_of = conjugacy_classes(T)
    real = sum(int(class_of[inv[c[0]]] == i) for i, c in enumerate(classes))
    return (24 * real + 20 * (len(classes) - real) + 64) * M * M


def decompose(table, seed: int = SEED) -> Decomposition:
    """The isotypic decomposition of the group with this Cayley table (cached per table). InputError
    (nothing computed) when it would not fit in the machine's available memory (decomposition_bytes)."""
    T = np.ascontiguousarray(np.asarray(table, dtype=np.int64))
    key = (T.shape[0], T.tobytes(), seed)
    if key not in _CACHE:
        from tianref import memory
        memory.check_fits(decomposition_bytes(T), f"the irreducible decomposition of this order-{T.shape[0]} "
                                                  "group (an (M, M) projector per irreducible character)")
        err = None
        for i in range(TRIES):
            try:
                _CACHE[key] = _attempt(T, seed + i)
                break
            except RunFailure as exc:
                err = exc
        else:
            raise err
        if len(_CACHE) > 16:
            _CACHE.pop(next(iter(_CACHE)))
    return _CACHE[key]


def matrix_irrep(table, dec: Decomposition, k: int, seed: int = SEED) -> np.ndarray:
    """rho_k(g) for every g, (M, d, d) complex unitary: L restricted to one irreducible left-invariant
    subspace of range(P_k), cut out by a generic Hermitian right-regular operator (which acts on the
    multiplicity space of P_k with d distinct eigenvalues, each d times). Its coefficients are complex:
    on a quaternionic component a real symmetric one has every eigenvalue twice over."""
    T = np.asarray(table, dtype=np.int64)
    M, d = T.shape[0], dec.irreps[k].degree
    P = dec.irreps[k].projector
    w, U = np.linalg.eigh(P)
    U = U[:, w > 0.5]                                               # (M, d^2) orthonormal basis
    rng = np.random.default_rng(seed + 1)
    c = rng.standard_normal(M) + 1j * rng.standard_normal(M)      # complex: a real symmetric operator
    B = sum(c[g] * right_regular(T, g) for g in range(M))         # has paired eigenvalues on a
    B = B + B.conj().T                                              # quaternionic component
    lam, E = np.linalg.eigh(U.conj().T @ B @ U)
    if d < len(lam) and lam[d] - lam[d - 1] <= CLUSTER_RTOL * max(np.abs(lam).max(), 1.0):
        raise RunFailure("the right-regular operator did not separate the copies of the irrep")
    Phi = U @ E[:, :d]                                              # (M, d)
    rows = T[dec.inverse]                                           # rows[g] = g^-1 . (all h)
    return np.einsum("xi,gxj->gij", Phi.conj(), Phi[rows])          # (M, d, d)  Phi^H L(g) Phi
