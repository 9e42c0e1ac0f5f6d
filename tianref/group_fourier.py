"""Per-unit irrep view of W and the Stage-II energy of group arithmetic, from the isotypic projectors.

References: Tian, arXiv:2509.21519 (Stage II: each unit w climbs E(w) = 1/2 ||Y~ Y~^T sigma(X w)||^2;
for group arithmetic its local maxima sit on single irreps); Serre (1977) ch. 2 and 6 (central
idempotents, Plancherel). docs/groups.md §4 derives every formula here; tianref/fourier.py is the
Z_M special case that the training loop logs.

Symbols
    H, M, T   the group, |H|, its table (T[a, b] = a.b, the label of the pair (a, b))
    W         (2M, K) first layer; unit j = [w_a (M), w_b (M)]
    Pi_k      real isotypic projector of the non-trivial real component k = 1..n_comp-1
    P[k-1, j] ||Pi_k w_a||^2 + ||Pi_k w_b||^2                          (n_comp - 1, K)
    k*_j      argmax_k P[k-1, j] (1-based, component order of tianref.irreps.decompose)
    purity_j  P[k*_j - 1, j] / sum_k P[k-1, j]                         (0 for an all-zero unit)
    (u * v)   group convolution, (u * v)(h) = sum_{h1 h2 = h} u(h1) v(h2)
    g(h)      sum_{h1 h2 = h} S(h1, h2), S(h1, h2) = sigma(w_a(h1) + w_b(h2))  (the class sums Y^T f)

The energy on the full table (n = M^2, every class M times; Y~ = Y - column means, as in fourier.py):
    E(w) = (M/2) ||g - mean(g)||^2                                    (any sigma)
and for sigma = x^2, g = ||w_a||^2 + ||w_b||^2 + 2 (w_a * w_b), so
    E(w) = 2M sum_{k != 0} ||(Pi_k w_a) * (Pi_k w_b)||^2                (real components)
         = 2 sum_{k != 0} d_k ||A_k B_k||_F^2,  A_k = sum_g w_a(g) rho_k(g)   (complex irreps)

Z_M with even M: the sign character (-1)^a is a non-trivial real irrep whose component is 1-dim; it is
a component here (k = M/2, listed last), whereas fourier.frequency_metrics leaves M/2 out. The two
views agree exactly for odd M, and for even M on units with no weight on (-1)^a.
"""
from __future__ import annotations

import numpy as np  # host-side: the projectors are built on the host, then moved by xp.asarray

from tianref import irreps as ir
from tianref import model
from tianref.errors import InputError

PURITY_THRESHOLD = 0.9


def _decomposition(group):
    return group if isinstance(group, ir.Decomposition) else ir.decompose(group.table)


def component_power(xp, W, group):
    """P (n_comp - 1, K) float64, as in the module docstring.  W (2M, K)."""
    dec = _decomposition(group)
    M, K = dec.order, W.shape[1]
    comps = dec.components[1:]
    if not comps:
        raise InputError("the trivial group has no non-trivial irrep to measure purity on")
    Q = np.concatenate([c.basis for c in comps], axis=1)            # (M, M - 1) orthonormal
    S = np.zeros((len(comps), Q.shape[1]))                          # (n_comp - 1, M - 1) membership
    start = 0
    for i, c in enumerate(comps):
        S[i, start:start + c.real_dim] = 1.0
        start += c.real_dim
    Wr = xp.reshape(W.astype(xp.float64), (2, M, K))                # (2, M, K)
    Qd = xp.asarray(Q.T)                                            # (M - 1, M)
    Za, Zb = Qd @ Wr[0], Qd @ Wr[1]                                 # (M - 1, K) coordinates
    return xp.asarray(S) @ (Za * Za + Zb * Zb)                      # (n_comp - 1, K)


def irrep_metrics(xp, W, group, threshold: float = PURITY_THRESHOLD):
    """(coverage, purity_med, kstar (K,), purity (K,)) as device arrays; kstar is 1-based.

    ``group``: a tianref.groups.Group (anything with .table) or a tianref.irreps.Decomposition.
    Mirrors tianref.fourier.frequency_metrics with components in place of frequencies."""
    P = component_power(xp, W, group)                               # (n, K)
    n = P.shape[0]
    tot = P.sum(axis=0)                                             # (K,)
    purity = P.max(axis=0) / xp.where(tot > 0, tot, 1.0)            # (K,)
    kstar = P.argmax(axis=0) + 1                                    # (K,)
    pure = purity >= threshold                                      # (K,) inclusive, as fourier.py
    hit = (kstar[None, :] == xp.arange(1, n + 1)[:, None]) & pure[None, :]   # (n, K)
    return hit.any(axis=1).sum(), xp.median(purity), kstar, purity


# ---------------------------------------------------------------- the energy (host NumPy, checks)

def convolve(T, u, v) -> np.ndarray:
    """(u * v)(h) = sum_{h1 h2 = h} u(h1) v(h2), (M,)."""
    T = np.asarray(T)
    return np.bincount(T.ravel(), weights=np.outer(u, v).ravel(), minlength=T.shape[0])


def label_sums(T, w_a, w_b, act: str = "sqr") -> np.ndarray:
    """g(h) = sum_{h1 h2 = h} sigma(w_a(h1) + w_b(h2)), (M,)."""
    T = np.asarray(T)
    S = model.sigma(np, w_a[:, None] + w_b[None, :], act)           # (M, M)
    return np.bincount(T.ravel(), weights=S.ravel(), minlength=T.shape[0])


def energy_direct(T, w_a, w_b, act: str = "sqr") -> float:
    """1/2 ||Y~ Y~^T sigma(X w)||^2 on the full table, X and Y materialised (n = M^2)."""
    T = np.asarray(T)
    M = T.shape[0]
    a, b = np.divmod(np.arange(M * M), M)                           # pair i = a*M + b
    X = np.zeros((M * M, 2 * M))
    X[np.arange(M * M), a] = 1.0
    X[np.arange(M * M), M + b] = 1.0
    Y = np.eye(M)[T[a, b]]                                          # (n, M) one-hot labels
    Yt = Y - Y.mean(axis=0)                                         # P_perp Y, centred over samples
    f = model.sigma(np, X @ np.concatenate([w_a, w_b]), act)        # (n,)
    v = Yt @ (Yt.T @ f)
    return 0.5 * float(v @ v)


def energy_labels(T, w_a, w_b, act: str = "sqr") -> float:
    """(M/2) ||g - mean(g)||^2: the same energy through the label sums (any sigma)."""
    g = label_sums(T, w_a, w_b, act)
    M = len(g)
    return 0.5 * M * float(((g - g.mean()) ** 2).sum())


def energy_components(dec, T, w_a, w_b) -> np.ndarray:
    """For sigma = x^2: E_k = 2M ||(Pi_k w_a) * (Pi_k w_b)||^2 per real component, (n_comp,);
    entry 0 (the trivial component) is 0 by definition, and E(w) = sum of the rest."""
    M = dec.order
    out = np.zeros(len(dec.components))
    for k, c in enumerate(dec.components[1:], start=1):
        h = convolve(T, c.projector @ w_a, c.projector @ w_b)
        out[k] = 2 * M * float(h @ h)
    return out


def energy_plancherel(dec, T, w_a, w_b, rhos=None) -> float:
    """For sigma = x^2: 2 sum_{k != 0} d_k ||A_k B_k||_F^2 over complex irreps, with matrix irreps
    (rhos[k] (M, d, d) as from tianref.irreps.matrix_irrep; computed if not given)."""
    E = 0.0
    for k, irr in enumerate(dec.irreps):
        if irr.component == 0:
            continue
        rho = rhos[k] if rhos is not None else ir.matrix_irrep(T, dec, k)
        A = np.einsum("g,gij->ij", w_a, rho)
        B = np.einsum("g,gij->ij", w_b, rho)
        E += 2 * irr.degree * float((np.abs(A @ B) ** 2).sum())
    return E


def energy_slide(dec, T, w_a, w_b, act: str = "sqr", reading: str = "product") -> float:
    """The slide's (M/2) sum_{k != 0} (1/d_k) |sum_r tr(S^_{k,r})|^2 over complex irreps, read with the
    unitary 2-D transform (weight d_k / M), so that sum_r tr(S^_{k,r}) is
        reading "product":  (d_k / M) sum_{h1, h2} S(h1, h2) chi_k(h1 h2)       (= tr of g^(rho_k))
        reading "tensor":   (d_k / M) sum_{h1, h2} S(h1, h2) chi_k(h1) chi_k(h2)
    Both equal 1/2 ||g - mean(g)||^2 = E(w) / M on an abelian group (d_k = 1); docs/groups.md §4."""
    T = np.asarray(T)
    M = dec.order
    S = model.sigma(np, w_a[:, None] + w_b[None, :], act)           # (M, M)
    E = 0.0
    for irr in dec.irreps:
        if irr.component == 0:
            continue
        chi = irr.character[dec.class_of]                           # (M,) chi_k(g)
        if reading == "product":
            t = (S * chi[T]).sum()
        elif reading == "tensor":
            t = chi @ S @ chi
        else:
            raise ValueError(reading)
        E += 0.5 * M / irr.degree * abs(irr.degree / M * t) ** 2
    return float(E)
