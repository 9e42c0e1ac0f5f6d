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


# every family a spec names: cyclic, products of cyclic, dihedral (n odd, even, and the degenerate D1, D2),
# symmetric, alternating, quaternion, mixed products (complex pairs with 2-dim irreps in Q8xZ3)
FAMILIES = ["Z7", "Z12", "3x4", "D1", "D2", "D5", "D10", "S3", "S4", "S5", "A4", "A5", "Q8", "Q8xZ3", "S3xZ2"]


@pytest.mark.parametrize("spec", FAMILIES)
def test_matrix_irreps_are_unitary_homomorphisms_with_the_right_characters(spec):
    """rho_k(g h) = rho_k(g) rho_k(h) on the table, rho_k(g) unitary, tr rho_k = chi_k; the traces of the
    matrices themselves (not the decomposition's characters) are orthonormal over the group,
    (1/M) sum_g tr rho_k(g) conj(tr rho_l(g)) = delta_kl (pairwise inequivalent, each irreducible), and
    sum_k d_k^2 = M (complete)."""
    G = parse_group(spec)
    T, M = G.table, G.order
    dec = ir.decompose(T)
    traces = []
    for k, r in enumerate(dec.irreps):
        rho = ir.matrix_irrep(T, dec, k)                           # (M, d, d)
        d = r.degree
        assert rho.shape == (M, d, d)
        np.testing.assert_allclose(np.einsum("gij,gkj->gik", rho, rho.conj()), np.broadcast_to(np.eye(d), rho.shape),
                                   atol=TOL)
        np.testing.assert_allclose(np.einsum("aij,bjk->abik", rho, rho), rho[T], atol=TOL)
        np.testing.assert_allclose(np.trace(rho, axis1=1, axis2=2), r.character[dec.class_of], atol=TOL)
        traces.append(np.trace(rho, axis1=1, axis2=2))
    X = np.array(traces)                                            # (n_irreps, M)
    np.testing.assert_allclose(X @ X.conj().T / M, np.eye(len(X)), atol=TOL)
    assert sum(r.degree ** 2 for r in dec.irreps) == M and len(dec.irreps) == len(dec.classes)


def _element_orders(T):
    e = int(np.argmax((T == np.arange(T.shape[0])).all(axis=1)))
    out = []
    for g in range(T.shape[0]):
        x, n = g, 1
        while x != e:
            x, n = T[x, g], n + 1
        out.append(n)
    return np.array(out)


PHI = (1 + 5 ** 0.5) / 2
W3 = np.exp(2j * np.pi / 3)
# Textbook character tables (e.g. James & Liebeck, "Representations and Characters of Groups", ch. 18-20),
# columns named by (element order, class size), which tells the classes apart up to the ties noted
TEXTBOOK = {
    "S4": ([(1, 1), (2, 6), (2, 3), (3, 8), (4, 6)],
           [[1, 1, 1, 1, 1], [1, -1, 1, 1, -1], [2, 0, 2, -1, 0], [3, 1, -1, 0, -1], [3, -1, -1, 0, 1]]),
    "A4": ([(1, 1), (2, 3), (3, 4), (3, 4)],
           [[1, 1, 1, 1], [1, 1, W3, W3 ** 2], [1, 1, W3 ** 2, W3], [3, -1, 0, 0]]),
    "A5": ([(1, 1), (2, 15), (3, 20), (5, 12), (5, 12)],
           [[1, 1, 1, 1, 1], [3, -1, 0, PHI, 1 - PHI], [3, -1, 0, 1 - PHI, PHI], [4, 0, 1, -1, -1],
            [5, 1, -1, 0, 0]]),
    "S5": ([(1, 1), (2, 10), (2, 15), (3, 20), (6, 20), (4, 30), (5, 24)],
           [[1, 1, 1, 1, 1, 1, 1], [1, -1, 1, 1, -1, -1, 1], [4, 2, 0, 1, -1, 0, -1], [4, -2, 0, 1, 1, 0, -1],
            [5, 1, 1, -1, 1, -1, 0], [5, -1, 1, -1, -1, 1, 0], [6, 0, -2, 0, 0, 0, 1]]),
    "Q8": ([(1, 1), (2, 1), (4, 2), (4, 2), (4, 2)],
           [[1, 1, 1, 1, 1], [1, 1, 1, -1, -1], [1, 1, -1, 1, -1], [1, 1, -1, -1, 1], [2, -2, 0, 0, 0]]),
}


@pytest.mark.parametrize("spec", sorted(TEXTBOOK))
def test_characters_equal_the_textbook_tables(spec):
    """The decomposition's character table equals the printed one, classes matched by (element order,
    class size); where two classes share that pair (A4's two 3-cycle classes, A5's two 5-cycle classes,
    Q8's three classes of order 4) every assignment of them is tried, and the irreps are compared as a set."""
    import itertools
    G = parse_group(spec)
    dec = ir.decompose(G.table)
    orders = _element_orders(G.table)
    keys = [(int(orders[c[0]]), len(c)) for c in dec.classes]
    cols, rows = TEXTBOOK[spec]
    want = np.array(rows, dtype=complex)                            # (n_irreps, n_classes)
    got = dec.character_table()
    assert sorted(keys) == sorted(cols)
    slots = {key: [i for i, c in enumerate(cols) if c == key] for key in set(cols)}

    def same_rows(A, B):
        return all(any(np.abs(a - b).max() < TOL for b in B) for a in A) and len(A) == len(B)

    for perm in itertools.product(*[itertools.permutations(s) for s in slots.values()]):
        where = {}
        for key, p in zip(slots, perm):
            for i, j in zip([i for i, k in enumerate(keys) if k == key], p):
                where[i] = j                                        # decomposition class i -> textbook column j
        order = [i for _, i in sorted((j, i) for i, j in where.items())]
        if same_rows(got[:, order], want):
            return
    raise AssertionError(f"{spec}: characters differ from the textbook table\n{np.round(got, 6)}")


def _dihedral_by_hand(T, n):
    """(labels (M, 2) of g = r^k s^f, a function j -> rho_j (M, 2, 2)) of D_n (n >= 3) read off the table
    alone: r any element of order n, s an element of order 2 outside <r>; rho_j(r^k s^f) =
    R(2 pi j k / n) F^f with F = diag(1, -1), the textbook 2-dim irreps (1 <= j < n/2)."""
    M = T.shape[0]
    orders = _element_orders(T)
    r = int(np.flatnonzero(orders == n)[0])
    powers = [0]
    for _ in range(n - 1):
        powers.append(int(T[powers[-1], r]))
    s = int([g for g in np.flatnonzero(orders == 2) if g not in powers][0])
    labels = np.zeros((M, 2), int)
    for k, p in enumerate(powers):
        labels[p] = (k, 0)
        labels[T[p, s]] = (k, 1)
    assert len({tuple(x) for x in labels}) == M                     # every element once: r^k s^f

    def rho(j):
        th = 2 * np.pi * j * labels[:, 0] / n
        R = np.stack([np.stack([np.cos(th), -np.sin(th)], -1), np.stack([np.sin(th), np.cos(th)], -1)], -2)
        F = np.where(labels[:, 1, None, None] == 1, np.diag([1.0, -1.0]), np.eye(2))
        return R @ F                                                # (M, 2, 2)
    return labels, rho


@pytest.mark.parametrize("n", [3, 4, 5, 6, 10, 12])
def test_dihedral_irreps_by_hand(n):
    """The textbook 2-dim irreps of D_n, built from rotation matrices on labels read off the table: each
    is a homomorphism of the table (so the table is D_n's, s r s = r^-1), and its character is one of the
    decomposition's (n odd: (n - 1)/2 of them, n even: n/2 - 1, besides 2 resp. 4 one-dim irreps)."""
    G = parse_group(f"D{n}")
    T = G.table
    dec = ir.decompose(T)
    _, rho = _dihedral_by_hand(T, n)
    chars = [r.character[dec.class_of] for r in dec.irreps if r.degree == 2]
    assert len(chars) == (n - 1) // 2 if n % 2 else n // 2 - 1
    assert sum(r.degree == 1 for r in dec.irreps) == (2 if n % 2 else 4)
    for j in range(1, (n + 1) // 2):
        R = rho(j)
        np.testing.assert_allclose(np.einsum("aij,bjk->abik", R, R), R[T], atol=TOL)
        chi = np.trace(R, axis1=1, axis2=2)                         # 2 cos(2 pi j k / n) on rotations, 0 else
        assert sum(np.abs(c - chi).max() < TOL for c in chars) == 1


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


@pytest.mark.parametrize("n", [5, 10])
def test_a_unit_made_of_one_dihedral_irreps_entries_is_pure(n):
    """Purity is per real component, whatever the degree: a unit whose halves are entries (or any
    combination of entries) of one hand-built 2-dim irrep rho_j has all its power in rho_j's component
    (purity 1, k* that component); Schur orthogonality gives each entry the power M/d. A unit with its
    halves in two different irreps splits its power between them: purity 1/2 for two entries of 2-dim irreps
    (power M/2 each), 2/3 for a 1-dim character (power M) beside one entry (M/2): power, not power per
    dimension or per degree, is what purity compares."""
    from tianref import group_fourier as gf
    G = parse_group(f"D{n}")
    T, M = G.table, G.order
    dec = ir.decompose(T)
    _, rho = _dihedral_by_hand(T, n)
    rng = np.random.default_rng(n)

    def comp_of(R):
        chi = np.trace(R, axis1=1, axis2=2)
        return [r.component for r in dec.irreps if np.abs(r.character[dec.class_of] - chi).max() < TOL][0]

    js = list(range(1, (n + 1) // 2))
    cols, want = [], []
    for j in js:
        R = rho(j)                                                  # (M, 2, 2) real orthogonal
        np.testing.assert_allclose(np.einsum("gij,gij->ij", R, R), np.full((2, 2), M / 2), atol=TOL)
        cols.append(np.concatenate([R[:, 0, 0], R[:, 1, 0]]))       # two entries of one irrep
        cols.append(np.concatenate([R.reshape(M, 4) @ rng.standard_normal(4), R[:, 0, 1]]))
        want += [comp_of(R)] * 2
    _, _, ks, pur = gf.irrep_metrics(np, np.stack(cols, 1), dec)
    np.testing.assert_allclose(pur, 1.0, atol=1e-12)                # float64 projections of O(1) vectors
    np.testing.assert_array_equal(ks, want)
    mixed = np.concatenate([rho(js[0])[:, 0, 0], rho(js[1])[:, 1, 1]])[:, None]
    assert float(gf.irrep_metrics(np, mixed, dec)[3][0]) == pytest.approx(0.5, abs=1e-12)
    sign = [r.character[dec.class_of].real for r in dec.irreps if r.degree == 1 and r.component != 0][0]
    mixed = np.concatenate([sign, rho(js[0])[:, 0, 0]])[:, None]
    assert float(gf.irrep_metrics(np, mixed, dec)[3][0]) == pytest.approx(2 / 3, abs=1e-12)


@pytest.mark.parametrize("spec, real, classes", [("Z12", 2, 12), ("Z11", 1, 11), ("D6", 6, 6), ("Q8", 5, 5),
                                                 ("A4", 2, 4), ("S4", 5, 5)])
def test_decomposition_bytes_counts_the_real_valued_characters(spec, real, classes):
    """As many real-valued characters as classes closed under inversion (Z12: 0 and 6; A4: the identity and the
    double transpositions); the estimate is 24 M^2 per real-valued one, 20 M^2 per member of a complex pair."""
    T = np.asarray(parse_group(spec).table)
    M = T.shape[0]
    dec = ir.decompose(T)
    assert sum(x.fs != "complex" for x in dec.irreps) == real and len(dec.irreps) == classes
    assert ir.decomposition_bytes(T) == (24 * real + 20 * (classes - real) + 64) * M * M


def test_a_decomposition_that_cannot_fit_is_refused_before_it_starts(monkeypatch, tmp_path):
    """Orders up to 1024 are accepted, but an abelian group near it needs ~21 GB (an (M, M) projector per
    character): Z2^10 was killed by the kernel's OOM killer after 82 s, no message. Now exit 2, one line."""
    from click.testing import CliRunner
    from tianref.cli import main
    from tianref import memory
    ir._CACHE.clear()
    monkeypatch.setattr(memory, "available_bytes", lambda: 2 ** 20)          # 1 MiB left (Z64 needs ~5.5 MB)
    r = CliRunner().invoke(main, ["group", "Z64", "--json"])
    assert r.exit_code == 2 and r.stdout == "", r.output
    assert "irreducible decomposition of this order-64 group" in r.stderr and "GiB" in r.stderr
    r = CliRunner().invoke(main, ["train", "--group", "Z64", "--K", "8", "--epochs", "2", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and not (tmp_path / "r").exists(), r.output


@pytest.mark.parametrize("spec", ["Z5", "Z8", "A4", "3x4", "Q8xZ3"])
def test_a_complex_pair_lists_the_larger_imaginary_part_first_whatever_the_draw(spec):
    """Within a complex pair (one real component), the irrep listed first has the larger imaginary part of
    its character at the first class where the pair differs (docs/groups.md); for Z_M that is
    chi(g) = exp(2 pi i k g / M) before its conjugate. The order is the same for every draw (seed)."""
    T = parse_group(spec).table
    decs = [ir.decompose(T, seed=s) for s in (ir.SEED, ir.SEED + 7, ir.SEED + 31)]
    for dec in decs:
        pairs = [c.irreps for c in dec.components if len(c.irreps) == 2]
        assert pairs
        for i, j in pairs:
            a, b = dec.irreps[i].character, dec.irreps[j].character
            np.testing.assert_allclose(a, np.conj(b), atol=TOL)          # a conjugate pair
            c = int(np.argmax(np.abs(a.imag) > 1e-6))                    # first class where they differ
            assert a[c].imag > 1e-6 > b[c].imag
        for other in decs[1:]:
            np.testing.assert_allclose(other.character_table(), decs[0].character_table(), atol=TOL)
    if spec.startswith("Z"):
        M = T.shape[0]
        dec = decs[0]
        one = int(dec.class_of[1])                                       # Z_M is abelian: element 1's class
        for k, (i, j) in enumerate((c.irreps for c in dec.components if len(c.irreps) == 2), start=1):
            np.testing.assert_allclose(dec.irreps[i].character[one], np.exp(2j * np.pi * k / M), atol=TOL)
