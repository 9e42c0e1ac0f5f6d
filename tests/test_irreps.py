"""The decomposition from the Cayley table alone, against textbook facts and independent routes.

Tolerances: every quantity is a few dense float64 products and one eigh of an M x M matrix with
entries O(1) and M <= 120, so rounding is ~ M eps ~ 3e-14; 1e-10 leaves a wide margin and still
catches any real error (those are O(1/M) or larger).
"""
import numpy as np
import pytest

from tianref import irreps as ir
from tianref.groups import parse_group

TOL = 1e-10

# (spec, degrees ascending, {degree: [types]} for the non-real ones)
REFERENCE = [
    ("Z1", [1]), ("Z2", [1, 1]), ("Z5", [1] * 5), ("Z6", [1] * 6), ("3x4", [1] * 12), ("Z2xZ2xZ2", [1] * 8),
    ("D3", [1, 1, 2]), ("D5", [1, 1, 2, 2]), ("D7", [1, 1, 2, 2, 2]),
    ("D4", [1, 1, 1, 1, 2]), ("D6", [1, 1, 1, 1, 2, 2]), ("D8", [1, 1, 1, 1, 2, 2, 2]),
    ("S3", [1, 1, 2]), ("S4", [1, 1, 2, 3, 3]), ("S5", [1, 1, 4, 4, 5, 5, 6]),
    ("A4", [1, 1, 1, 3]), ("A5", [1, 3, 3, 4, 5]), ("Q8", [1, 1, 1, 1, 2]),
]


@pytest.mark.parametrize("spec,degrees", REFERENCE)
def test_degrees_match_the_reference_lists(spec, degrees):
    dec = ir.decompose(parse_group(spec).table)
    assert dec.degrees == degrees
    assert len(dec.irreps) == len(dec.classes)
    assert dec.orthogonality_error() < TOL


def test_reference_lists_of_the_dihedral_family():
    for n in range(3, 10):
        want = ([1, 1] + [2] * ((n - 1) // 2)) if n % 2 else ([1, 1, 1, 1] + [2] * (n // 2 - 1))
        assert ir.decompose(parse_group(f"D{n}").table).degrees == sorted(want)


@pytest.mark.parametrize("spec,types", [
    ("A4", {"real": [1, 3], "complex": [1, 1]}),
    ("Q8", {"real": [1, 1, 1, 1], "quaternionic": [2]}),
    ("S4", {"real": [1, 1, 2, 3, 3]}),
    ("Z5", {"real": [1], "complex": [1, 1, 1, 1]}),
    ("Z6", {"real": [1, 1], "complex": [1, 1, 1, 1]}),
    ("Q8xZ3", {"real": [1] * 4, "complex": [1] * 8 + [2, 2], "quaternionic": [2]}),
])
def test_frobenius_schur_types(spec, types):
    dec = ir.decompose(parse_group(spec).table)
    got = {}
    for r in dec.irreps:
        got.setdefault(r.fs, []).append(r.degree)
        assert r.fs_indicator == pytest.approx({"real": 1, "complex": 0, "quaternionic": -1}[r.fs], abs=TOL)
    assert {k: sorted(v) for k, v in got.items()} == types


@pytest.mark.parametrize("spec", ["S4", "A4", "Q8", "Q8xZ3", "A5", "Z6"])
def test_real_component_dimension_follows_degree_and_type(spec):
    """d from the class sums' eigenvalues (not from a dimension): the real component has dim d^2 for a
    real irrep, 2 d^2 for a complex pair, d^2 for a quaternionic one."""
    dec = ir.decompose(parse_group(spec).table)
    for c in dec.components:
        rs = [dec.irreps[i] for i in c.irreps]
        d = rs[0].degree
        want = 2 * d * d if rs[0].fs == "complex" else d * d
        assert c.real_dim == want and np.trace(c.projector) == pytest.approx(want, abs=TOL)
        assert len(rs) == (2 if rs[0].fs == "complex" else 1)
    assert sum(c.real_dim for c in dec.components) == dec.order


@pytest.mark.parametrize("spec,sizes", [("S4", [1, 3, 6, 6, 8]), ("A5", [1, 12, 12, 15, 20]),
                                        ("S5", [1, 10, 15, 20, 20, 24, 30]), ("Q8", [1, 1, 2, 2, 2]),
                                        ("D5", [1, 2, 2, 5])])
def test_conjugacy_classes(spec, sizes):
    G = parse_group(spec)
    classes, class_of = ir.conjugacy_classes(G.table)
    assert sorted(len(c) for c in classes) == sizes and len(classes[0]) == 1 and classes[0][0] == 0
    T, inv = G.table, ir.identity_and_inverse(G.table)[1]
    for c in classes:                                               # closed under conjugation, by brute force
        for g in c:
            assert {int(T[T[x, g], inv[x]]) for x in range(G.order)} == set(c.tolist())


@pytest.mark.parametrize("spec", ["S4", "A4", "Q8", "D5", "Z6"])
def test_projectors_are_central_orthogonal_and_complete(spec):
    G = parse_group(spec)
    T, M = G.table, G.order
    dec = ir.decompose(T)
    Ps = [c.projector for c in dec.components]
    np.testing.assert_allclose(sum(Ps), np.eye(M), atol=TOL)
    for i, P in enumerate(Ps):
        np.testing.assert_allclose(P, P.T, atol=TOL)
        np.testing.assert_allclose(P @ P, P, atol=TOL)
        for Q in Ps[i + 1:]:
            np.testing.assert_allclose(P @ Q, 0, atol=TOL)
        for g in range(M):
            L, R = ir.left_regular(T, g), ir.right_regular(T, g)
            np.testing.assert_allclose(L @ P, P @ L, atol=TOL)
            np.testing.assert_allclose(R @ P, P @ R, atol=TOL)


@pytest.mark.parametrize("spec", ["S4", "A4", "Q8"])
def test_class_sums_act_as_scalars_and_traces_give_characters(spec):
    """C_c P_k = (|c| chi_k(c) / d_k) P_k, and tr(P_k L(g)) = d_k chi_k(g): two routes to chi."""
    G = parse_group(spec)
    T = G.table
    dec = ir.decompose(T)
    C = ir.class_sums(T, dec.classes)
    sizes = dec.class_sizes
    for r in dec.irreps:
        P = r.projector
        for c in range(len(dec.classes)):
            np.testing.assert_allclose(C[c] @ P, sizes[c] * r.character[c] / r.degree * P, atol=TOL)
        tr = np.array([np.trace(P @ ir.left_regular(T, g)) for g in range(G.order)])
        np.testing.assert_allclose(tr, r.degree * r.character[dec.class_of], atol=TOL)


def test_column_orthogonality_of_the_character_table():
    dec = ir.decompose(parse_group("S5").table)
    X = dec.character_table()                                       # (n_irreps, n_classes)
    np.testing.assert_allclose(X.conj().T @ X, np.diag(dec.order / dec.class_sizes), atol=1e-9)


@pytest.mark.parametrize("M", [11, 12])
def test_cyclic_components_are_the_dft_cos_sin_pairs(M):
    dec = ir.decompose(parse_group(f"Z{M}").table)
    a = np.arange(M)
    for k in range(1, M // 2 + 1):
        if 2 * k == M:
            B = np.cos(np.pi * a)[:, None] / np.sqrt(M)            # the sign character, 1-dim
        else:
            B = np.stack([np.cos(2 * np.pi * k * a / M), np.sin(2 * np.pi * k * a / M)], 1) * np.sqrt(2 / M)
        np.testing.assert_allclose(dec.components[k].projector, B @ B.T, atol=TOL)
    assert len(dec.components) == M // 2 + 1


@pytest.mark.parametrize("spec", ["S4", "Q8", "A4"])
def test_matrix_irreps_are_unitary_homomorphisms_with_the_right_characters(spec):
    G = parse_group(spec)
    T = G.table
    dec = ir.decompose(T)
    for k, r in enumerate(dec.irreps):
        rho = ir.matrix_irrep(T, dec, k)                           # (M, d, d)
        d = r.degree
        np.testing.assert_allclose(np.einsum("gij,gkj->gik", rho, rho.conj()), np.broadcast_to(np.eye(d), rho.shape),
                                   atol=TOL)
        np.testing.assert_allclose(np.einsum("aij,bjk->abik", rho, rho), rho[T], atol=TOL)
        np.testing.assert_allclose(np.trace(rho, axis1=1, axis2=2), r.character[dec.class_of], atol=TOL)


def test_a_degenerate_draw_is_caught_and_the_next_seed_used(monkeypatch):
    """With every coefficient equal, A cannot separate the components: the checks must notice."""
    T = parse_group("S4").table
    real = np.random.default_rng

    class Flat:
        def __init__(self, seed):
            self.seed, self.rng = seed, real(seed)

        def standard_normal(self, n):
            return np.ones(n) if self.seed == 12345 else self.rng.standard_normal(n)

    monkeypatch.setattr(ir.np.random, "default_rng", Flat)
    dec = ir.decompose(T, seed=12345)
    assert dec.degrees == [1, 1, 2, 3, 3]


def test_a_relabelled_table_with_identity_elsewhere_decomposes_the_same():
    T = parse_group("A4").table
    pi = np.random.default_rng(0).permutation(12)                  # element a is called pi[a]
    T2 = np.empty_like(T)
    T2[pi[:, None], pi[None, :]] = pi[T]
    dec, dec2 = ir.decompose(T), ir.decompose(T2)
    assert dec2.identity == pi[0] != 0 and dec2.classes[0].tolist() == [pi[0]]
    assert dec2.degrees == dec.degrees and sorted(dec2.class_sizes) == sorted(dec.class_sizes)
    assert [r.fs for r in dec2.irreps] == [r.fs for r in dec.irreps]
    assert dec2.orthogonality_error() < TOL
