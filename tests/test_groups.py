"""Finite groups as Cayley tables: the builders, the axioms with their witnesses, specs, expr tables.

Independent checks: a built group is compared with facts that do not come from its construction
(element-order statistics of S_4, A_5, Q_8, D_n; Z_n against the project's (a + b) mod M labels;
an expr table against the same expression evaluated by NumPy directly).
"""
import json
import os
import re
import threading

import numpy as np
import pytest

from tianref import data, groups
from tianref.errors import InputError
from tianref.groups import check_group, parse_group

BUILT = ["Z1", "Z5", "Z12", "3x4", "Z2xZ2xZ2", "D1", "D2", "D3", "D4", "D5", "D6", "S1", "S2", "S3", "S4",
         "S5", "A3", "A4", "A5", "Q8", "Q8xZ3", "S3xZ2"]
ORDERS = {"Z1": 1, "Z5": 5, "Z12": 12, "3x4": 12, "Z2xZ2xZ2": 8, "D1": 2, "D2": 4, "D3": 6, "D4": 8, "D5": 10,
          "D6": 12, "S1": 1, "S2": 2, "S3": 6, "S4": 24, "S5": 120, "A3": 3, "A4": 12, "A5": 60, "Q8": 8,
          "Q8xZ3": 24, "S3xZ2": 12}


def element_orders(T):
    """order of every element, by repeated multiplication (identity found from the table)."""
    M = T.shape[0]
    e = int(np.argmax((T == np.arange(M)).all(axis=1)))
    out = []
    for g in range(M):
        x, n = g, 1
        while x != e:
            x, n = T[x, g], n + 1
        out.append(n)
    return sorted(out)


@pytest.mark.parametrize("spec", BUILT)
def test_built_groups_satisfy_the_axioms_with_identity_first(spec):
    G = parse_group(spec)
    assert G.order == ORDERS[spec] and G.is_group and G.table.dtype == np.int64
    check_group(G.table)                                            # raises if any axiom fails
    np.testing.assert_array_equal(G.table[0], np.arange(G.order))   # 0 is the identity
    np.testing.assert_array_equal(G.table, parse_group(spec).table)  # deterministic order


def test_cyclic_group_is_the_projects_modular_addition():
    M = 11
    a, b, y = data.pairs(M)
    np.testing.assert_array_equal(parse_group(f"Z{M}").table[a, b], y)
    np.testing.assert_array_equal(parse_group(str(M)).table, parse_group(f"Z{M}").table)


@pytest.mark.parametrize("spec,counts", [
    ("S4", {1: 1, 2: 9, 3: 8, 4: 6}),
    ("A5", {1: 1, 2: 15, 3: 20, 5: 24}),
    ("A4", {1: 1, 2: 3, 3: 8}),
    ("Q8", {1: 1, 2: 1, 4: 6}),
    ("D5", {1: 1, 2: 5, 5: 4}),
    ("D4", {1: 1, 2: 5, 4: 2}),
    ("S5", {1: 1, 2: 25, 3: 20, 4: 30, 5: 24, 6: 20}),
    ("3x5", {1: 1, 3: 2, 5: 4, 15: 8}),                            # Z3 x Z5 is cyclic
])
def test_element_order_statistics_identify_the_group(spec, counts):
    orders = element_orders(parse_group(spec).table)
    assert {k: orders.count(k) for k in set(orders)} == counts


def test_products_flatten_as_i_times_the_second_order_plus_j():
    G, A, B = parse_group("Q8xZ3"), parse_group("Q8"), parse_group("Z3")
    for (i1, j1, i2, j2) in [(1, 2, 3, 1), (5, 0, 6, 2), (7, 1, 7, 1)]:
        assert G.table[i1 * 3 + j1, i2 * 3 + j2] == A.table[i1, i2] * 3 + B.table[j1, j2]
    assert not (G.table == G.table.T).all()                         # non-abelian, as Q8


def _witness(msg):
    return [int(x) for x in re.findall(r"\d+", msg)]


def test_closure_failure_names_the_entry():
    T = parse_group("Z3").table.copy()
    T[1, 2] = 5
    with pytest.raises(InputError, match=r"^not closed: 1·2 = 5 is not an element 0\.\.2$"):
        check_group(T)


def test_identity_failure_gives_a_witness():
    T = (np.arange(5)[:, None] - np.arange(5)[None, :]) % 5       # a - b: right identity 0, no left one
    with pytest.raises(InputError, match=r"^no identity: .*e = 0: 0·(\d) = (\d) ≠ \1\)$") as ei:
        check_group(T)
    g, prod = _witness(str(ei.value).split("e = 0:")[1])[1:3]
    assert T[0, g] == prod != g


def test_inverse_failure_names_the_element():
    T = np.array([[0, 0], [0, 1]])                                  # ({0, 1}, min): identity 1, 0 has no inverse
    with pytest.raises(InputError, match=r"^no inverse: no h has 0·h = h·0 = 1 \(the identity\)$"):
        check_group(T)
    T = np.array([[0, 1, 2], [1, 2, 0], [2, 1, 2]])               # 1.2 = 0 but 2.1 = 1: one-sided only
    with pytest.raises(InputError, match=r"^no inverse: no h has 1·h = h·1 = 0 \(the identity\)$"):
        check_group(T)


def test_associativity_failure_gives_a_true_witness():
    L = np.array([[0, 1, 2, 3, 4], [1, 0, 3, 4, 2], [2, 4, 0, 1, 3], [3, 2, 4, 0, 1], [4, 3, 1, 2, 0]])
    # a loop: Latin square, identity 0, every element its own inverse -- but no group of order 5 is
    with pytest.raises(InputError, match=r"^not associative: \(\d·\d\)·\d = \d but \d·\(\d·\d\) = \d$") as ei:
        check_group(L)
    a, b, c, lhs, _, _, _, rhs = _witness(str(ei.value))
    assert L[L[a, b], c] == lhs and L[a, L[b, c]] == rhs and lhs != rhs


def test_spec_conflicting_with_M_and_unknown_specs_are_one_line_errors():
    with pytest.raises(InputError, match="S4 has order 24, which conflicts with M = 23"):
        parse_group("S4", M=23)
    assert parse_group("S4", M=24).order == 24
    with pytest.raises(InputError, match="S4 has order 24, which conflicts with M = 71"):   # a larger M too
        parse_group("S4", M=71)
    for bad in ["S6", "A2", "Q9", "Zx3", "foo", "Z0"]:
        with pytest.raises(InputError) as ei:
            parse_group(bad)
        assert "\n" not in str(ei.value)


# Arabic-Indic three, fullwidth three, leading zeros, a newline before a product's 'x': int() and Python's
# Unicode \d would take each of these for a number (another spelling of Z3, D5, ...); one spelling per group
STRICT_REFUSED = ["Z\u0663", "Z\uff13", "S\u0663xZ2", "\u0661\u0662", "Z03", "03", "D05", "A05", "Z3xZ05",
                  "00", "Z3\nxZ5", "D1\u0660"]


@pytest.mark.parametrize("spec", STRICT_REFUSED)
def test_group_numbers_are_ascii_digits_without_leading_zeros(spec):
    with pytest.raises(InputError) as ei:
        parse_group(spec)
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith("unknown group ")
    assert ("ASCII digits" in msg) == (spec != "Z3\nxZ5")         # a digit problem is named as one


def test_canonical_numbers_still_parse():
    for spec, order in [("Z3", 3), ("3", 3), ("D10", 20), ("Z10x10", 100), ("S5", 120), ("A3xQ8", 24)]:
        assert parse_group(spec).order == order
    assert parse_group(" S3 ").order == 6             # the group command passes its argument as typed
    with pytest.raises(InputError, match=r"^Z<n> needs 1 <= n <= 1024 \(got Z0\)$"):   # 0: the bound's message
        parse_group("Z0")


def test_the_order_bound_is_inclusive_for_groups_built_from_generators():
    """MAX_ORDER = 1024 elements are allowed, 1025 are not: D512 (the largest D<n> a spec admits) is built
    with its 1024 elements (~0.3 s); a closure that reaches 1025 is refused. The checks are facts of D_n
    (order 2n; g.g = e for the identity, the half turn r^(n/2) and the n reflections), not of the builder."""
    from tianref.groups import MAX_ORDER, from_generators
    assert MAX_ORDER == 1024
    T = parse_group("D512").table
    assert T.shape == (1024, 1024) and (T[0] == np.arange(1024)).all()
    assert (T[np.arange(1024), np.arange(1024)] == 0).sum() == 1 + 1 + 512   # identity, r^256, reflections
    with pytest.raises(InputError, match="more than 1024 elements"):
        from_generators("Z1025", 0, [1], lambda x, g: (x + g) % 1025)


def test_expr_tables_evaluate_mod_M_and_are_not_groups():
    M = 7
    x, y = np.arange(M)[:, None], np.arange(M)[None, :]
    for text, want in [("x*y", x * y), ("x*x+y", x * x + y), ("x**3 - 2*y + 1", x ** 3 - 2 * y + 1),
                       ("-(x - y)", -(x - y)), ("x**0", np.ones((M, M), int) + 0 * x)]:
        G = parse_group("expr:" + text, M=M)
        np.testing.assert_array_equal(G.table, np.broadcast_to(want % M, (M, M)))
    assert not parse_group("expr:x*y", M=M).is_group
    assert parse_group("expr:x+y", M=M).is_group                    # (a + b) mod M is Z_M
    big = parse_group("expr:x**1000000000001", M=M).table           # square-and-multiply, exact
    np.testing.assert_array_equal(big[:, 0], [pow(a, 1000000000001, M) for a in range(M)])


@pytest.mark.parametrize("text", ["__import__('os').system('true')", "x.real", "x/y", "x**y", "x**-1",
                                  "z", "lambda: 1", "x if y else 1", "[x]", "x ** 1.5", "True", "(x"])
def test_expr_refuses_everything_outside_the_whitelist(text):
    with pytest.raises(InputError, match="^expr: "):
        parse_group("expr:" + text, M=5)


def test_expr_needs_M():
    with pytest.raises(InputError, match="needs the modulus M"):
        parse_group("expr:x*y")


def test_table_files(tmp_path):
    S3 = parse_group("S3")
    p = tmp_path / "s3.json"
    p.write_text(json.dumps({"name": "my S3", "table": S3.table.tolist()}))
    G = parse_group(f"table:{p}", M=6)
    assert G.name == "my S3" and G.is_group
    np.testing.assert_array_equal(G.table, S3.table)
    q = tmp_path / "loop.json"
    q.write_text(json.dumps({"table": [[0, 1, 2, 3, 4], [1, 0, 3, 4, 2], [2, 4, 0, 1, 3], [3, 2, 4, 0, 1],
                                       [4, 3, 1, 2, 0]]}))
    assert not parse_group(f"table:{q}").is_group                   # a task table, not a group
    r = tmp_path / "bad.json"
    r.write_text(json.dumps({"table": [[0, 1], [1, 2]]}))
    with pytest.raises(InputError, match=r"not closed: 1·1 = 2"):
        parse_group(f"table:{r}")
    for content in ['{"table": [[0, 1]]}', '{"table": [[0, 1.5], [1, 0]]}', "[1, 2]", "not json"]:
        r.write_text(content)
        with pytest.raises(InputError):
            parse_group(f"table:{r}")
    with pytest.raises(InputError, match="cannot read"):
        parse_group(f"table:{tmp_path / 'missing.json'}")
    for empty in ("table:", "table: "):                   # was "table:: cannot read (No such file or directory)"
        with pytest.raises(InputError, match="table: needs a file name"):
            parse_group(empty)


def test_table_file_must_be_a_bounded_regular_file(tmp_path, monkeypatch):
    """A device would be read without end (/dev/zero: a MemoryError) and a FIFO would wait for a writer:
    both are refused at once, as is a file larger than any table needs and one that is not UTF-8."""
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    def unblock():                               # a regression would block in open(): a writer ends it
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:                          # no reader waiting: nothing to unblock
            pass
    timer = threading.Timer(5.0, unblock)
    timer.daemon = True
    timer.start()
    try:
        for path in (str(fifo), "/dev/null"):     # /dev/null: a device that ends (a regression fails, not OOMs)
            with pytest.raises(InputError, match="not a regular file"):
                parse_group(f"table:{path}")
    finally:
        timer.cancel()
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"table": [[0, 1], [1, 0]]}) + " " * 64)
    monkeypatch.setattr(groups, "TABLE_FILE_MAX", 32)
    with pytest.raises(InputError, match="more than a table file can need"):
        parse_group(f"table:{big}")
    monkeypatch.undo()
    assert parse_group(f"table:{big}").order == 2
    (tmp_path / "latin.json").write_bytes(b'{"name": "\xe9", "table": [[0]]}')
    with pytest.raises(InputError, match="not UTF-8"):
        parse_group(f"table:{tmp_path / 'latin.json'}")
