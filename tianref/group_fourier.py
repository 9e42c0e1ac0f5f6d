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

Logged every row of a --group run (tianref.group_rows): component_power / metrics_from_power (coverage,
median purity) and the per-component energies summed over normalised units, by two routes that agree to
rounding: component_energies (label sums of any sigma on the full table, M^2 K activations) and, for
sigma = x^2, plancherel_power_energies (matrix irreps; one (2 n D^2, M) x (M, 2K) product and K small
complex products per irrep, which also gives P). The projectors and matrix irreps are built once per run.
The host references for one unit (NumPy arrays, not xp): energy_direct (X and Y materialised),
energy_labels (through label_sums), energy_components (through convolve) and energy_plancherel agree with
each other (tests/test_group_fourier.py), and the logged energies with energy_labels
(tests/test_train_groups.py); energy_slide is the talk's form of the energy in its two readings
(docs/groups.md §4).

Z_M with even M: the sign character (-1)^a is a non-trivial real irrep whose component is 1-dim; it is
a component here (k = M/2, listed last), whereas fourier.frequency_metrics leaves M/2 out. The two
views agree exactly for odd M, and for even M on units with no weight on (-1)^a.
"""
from __future__ import annotations

import numpy as np  # host-side: projectors, matrix irreps (moved by xp.asarray); the energy_* references

from tianref import irreps as ir
from tianref import model, orderstats
from tianref.errors import InputError

PURITY_THRESHOLD = 0.9


def _decomposition(group):
    return group if isinstance(group, ir.Decomposition) else ir.decompose(group.table)


def component_basis(group):
    """(Q (M, M - 1), S (n_comp - 1, M - 1)) host float64: the non-trivial components' orthonormal
    bases side by side, and which column belongs to which component. Built once per run
    (tianref.group_rows) and passed to component_power / irrep_metrics as ``basis``."""
    dec = _decomposition(group)
    comps = dec.components[1:]
    if not comps:
        raise InputError("the trivial group has no non-trivial irrep to measure purity on")
    Q = np.concatenate([c.basis for c in comps], axis=1)            # (M, M - 1) orthonormal
    S = np.zeros((len(comps), Q.shape[1]))                          # (n_comp - 1, M - 1) membership
    start = 0
    for i, c in enumerate(comps):
        S[i, start:start + c.real_dim] = 1.0
        start += c.real_dim
    return Q, S


def component_power(xp, W, group, basis=None):
    """P (n_comp - 1, K) float64, as in the module docstring.  W (2M, K).
    ``basis``: (Q^T (M - 1, M), S) as device arrays, precomputed (component_basis); else built here."""
    if basis is None:
        Q, S = component_basis(group)
        basis = (xp.asarray(Q.T), xp.asarray(S))
    Qd, Sd = basis                                                  # (M - 1, M), (n_comp - 1, M - 1)
    M, K = Qd.shape[1], W.shape[1]
    Wr = xp.reshape(W.astype(xp.float64), (2, M, K))                # (2, M, K)
    Za, Zb = Qd @ Wr[0], Qd @ Wr[1]                                 # (M - 1, K) coordinates
    return Sd @ (Za * Za + Zb * Zb)                                 # (n_comp - 1, K)


def irrep_metrics(xp, W, group, threshold: float = PURITY_THRESHOLD, basis=None):
    """(coverage, purity_med, kstar (K,), purity (K,)) as device arrays; kstar is 1-based.

    ``group``: a tianref.groups.Group (anything with .table) or a tianref.irreps.Decomposition;
    ``basis`` as in component_power. Mirrors tianref.fourier.frequency_metrics with components in
    place of frequencies."""
    return metrics_from_power(xp, component_power(xp, W, group, basis), threshold)


def metrics_from_power(xp, P, threshold: float = PURITY_THRESHOLD):
    """irrep_metrics' four values from the per-unit component power P (n_comp - 1, K)."""
    n = P.shape[0]
    tot = P.sum(axis=0)                                             # (K,)
    purity = P.max(axis=0) / xp.where(tot > 0, tot, 1.0)            # (K,)
    kstar = P.argmax(axis=0) + 1                                    # (K,)
    pure_kstar = xp.where(purity >= threshold, kstar, 0)            # (K,) k*_j, 0 below (inclusive, as fourier.py)
    covered = xp.bincount(pure_kstar, minlength=n + 1)[1:] > 0      # (n,) k is the k* of some pure unit
    return covered.sum(), median(xp, purity), kstar, purity


def median(xp, x):
    """numpy.median of a 1-D array x (a purity: in [0, 1] or NaN) by one sort (numpy's median spends ~4x longer
    at K = 512 in its generic machinery), NaN if any entry is NaN: tianref.orderstats.median."""
    return orderstats.median(xp, x)


def quotient_index(T) -> np.ndarray:
    """h2 (M, M) host int64, h2[h1, h] = h1^-1 h: the partner of h1 in the pairs with product h."""
    T = np.asarray(T, dtype=np.int64)
    _, inv = ir.identity_and_inverse(T)
    return T[inv]                                                   # (M, M) row h1: T[h1^-1, h]


def component_energies(xp, W, h2, basis, act: str = "sqr", chunk_elems: int = 1 << 20):
    """E_k summed over units, (n_comp - 1,) float64 on the device: for each non-trivial real component k,
    sum_j (M/2) ||Pi_k g_j||^2 with g_j(h) = sum_{h1 h2 = h} sigma(u_a(h1) + u_b(h2)) on the full table
    and u_j = w_j / ||w_j|| (a zero unit contributes 0). Summed over k this is sum_j E(u_j) (energy_labels),
    any sigma; for sigma = x^2 each term is energy_components' 2M ||(Pi_k u_a) * (Pi_k u_b)||^2.

    h2 (M, M) device, quotient_index; basis = (Q^T, S) device as in component_power. Cost M^2 K
    activations, taken in chunks of rows h1 (at most ``chunk_elems`` entries each, a fixed order)."""
    Qd, Sd = basis
    M, K = Qd.shape[1], W.shape[1]
    W64 = W.astype(xp.float64)
    norms = xp.sqrt((W64 * W64).sum(axis=0))                        # (K,)
    U = W64 / xp.where(norms > 0, norms, 1.0)                       # (2M, K)
    Ua, Ub = U[:M], U[M:]                                           # (M, K) each
    c = max(1, min(M, chunk_elems // max(M * K, 1)))
    g = xp.zeros((M, K), dtype=xp.float64)                          # (M, K) label sums
    for s in range(0, M, c):
        H = Ua[s:s + c, None, :] + Ub[h2[s:s + c]]                  # (c, M, K) u_a(h1) + u_b(h1^-1 h)
        g = g + model.sigma(xp, H, act).sum(axis=0)                 # (M, K)
    Z = Qd @ g                                                      # (M - 1, K) coordinates of Pi g
    return (0.5 * M) * (Sd @ (Z * Z)).sum(axis=1)                   # (n_comp - 1,)


def plancherel_blocks(dec, T) -> tuple:
    """Host data of plancherel_power_energies: (Phi (2, n, D, D, M), wP (n_comp - 1, n), wE (n_comp - 1, n))
    over the n non-trivial irreps kept: every one, but one member per complex pair.
    Phi[0, i, r, c] = Re rho_i(.)[r, c] and Phi[1, i, r, c] = Im rho_i(.)[r, c] (rows of M values) for the
    matrix irrep rho_i of degree d_i (irreps.matrix_irrep), r, c < d_i; the entries padded up to D = max d are
    zero rows, so the padded D x D matrices multiply as the d x d ones do. The weights fold the degree, the
    multiplicity m_i (2 for a complex pair's member, which stands for its conjugate, whose norms are the
    same; else 1) and the membership [i in k] of irrep i in component k:
        wP[k - 1, i] = [i in k] d_i m_i / M,      wE[k - 1, i] = [i in k] 2 d_i m_i."""
    n_comp = len(dec.components) - 1
    seen, kept = set(), []
    for k, irr in enumerate(dec.irreps):
        if irr.component == 0 or (irr.component in seen and irr.fs == "complex"):
            continue
        seen.add(irr.component)
        kept.append((ir.matrix_irrep(T, dec, k), irr))              # (M, d, d) complex unitary
    M, D = dec.order, max(irr.degree for _, irr in kept)
    Phi = np.zeros((2, len(kept), D, D, M))                         # [Re | Im], irrep, r, c, g
    wP, wE = np.zeros((n_comp, len(kept))), np.zeros((n_comp, len(kept)))
    for i, (rho, irr) in enumerate(kept):
        d, m = irr.degree, (2.0 if irr.fs == "complex" else 1.0)
        Phi[0, i, :d, :d], Phi[1, i, :d, :d] = rho.real.transpose(1, 2, 0), rho.imag.transpose(1, 2, 0)
        wP[irr.component - 1, i] = d * m / M
        wE[irr.component - 1, i] = 2.0 * d * m
    return Phi, wP, wE


def plancherel_power_energies(xp, W, blocks):
    """(P (n_comp - 1, K), E (n_comp - 1,)) float64 on the device, by Plancherel (docs/groups.md §4), with
    ``blocks`` = plancherel_blocks (every array on the device); A_rho = sum_g w_a(g) rho(g), B_rho likewise:
        P[k - 1, j] = ||Pi_k w_a||^2 + ||Pi_k w_b||^2 = (1/M) sum_{rho in k} m_rho d_rho (||A_rho||_F^2 + ||B_rho||_F^2)
                      (component_power: the same numbers, another route)
        E[k - 1]    = sum_j 2 sum_{rho in k} m_rho d_rho ||A_rho B_rho||_F^2 / ||w_j||^4
                      (component_energies for sigma = x^2; a zero unit contributes 0)
    Cost: one (2 n D^2, M) x (M, K) product for each of w_a, w_b (n D^2 <= M D), one einsum of the K
    (D x D) products per irrep; a fixed number of array operations (~15) whatever the group."""
    Phi, wP, wE = blocks
    _, n, D, _, M = Phi.shape
    K = W.shape[1]
    W64 = W.astype(xp.float64)
    n2 = xp.einsum("gj,gj->j", W64, W64)                            # (K,) ||w_j||^2
    alive = n2 > 0
    inv4 = alive / xp.where(alive, n2, 1.0) ** 2                    # (K,) 1/||w_j||^4, 0 for a zero unit
    X = xp.reshape(xp.reshape(Phi, (-1, M)) @ xp.reshape(W64, (2, M, K)), (2, 2, n, D, D, K))
    A, B = X[0], X[1]                                               # (2, n, D, D, K) each: [Re | Im], irrep, r, c, unit
    AB = xp.einsum("snrlj,tnlcj->stnrcj", A, B)                     # (2, 2, n, D, D, K): Re/Im A x Re/Im B
    re, im = AB[0, 0] - AB[1, 1], AB[0, 1] + AB[1, 0]              # (n, D, D, K) Re(A B), Im(A B)
    f = xp.einsum("nrcj,nrcj->nj", re, re) + xp.einsum("nrcj,nrcj->nj", im, im)   # (n, K) ||A B||_F^2
    a2 = xp.einsum("xsnrcj,xsnrcj->nj", X, X)                       # (n, K) ||A||_F^2 + ||B||_F^2
    return wP @ a2, wE @ (f @ inv4)                                 # (n_comp - 1, K), (n_comp - 1,)


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
