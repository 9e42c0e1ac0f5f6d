"""A finite group as data: its Cayley table, and the specs that build one.

References: Tian, "Provable Scaling Laws of Feature Emergence from Learning Dynamics of Grokking"
(arXiv:2509.21519) states the task for any finite group H: given h1, h2 in H predict h1 h2. His code
(yuandong-tian/understanding, ssl/real-dataset/cogo/modular_addition_simple2.py) offers Z_M, products
"m1xm2", S_n and expressions in x, y mod M; here every group is built from generators with NumPy alone
(no GAP, no sympy). docs/groups.md.

Symbols
    H        the group, elements 0..M-1 (0 is the identity of every built-in group)
    M        |H|, the order
    table    (M, M) int64, table[a, b] = index of a.b  (the label of the pair (a, b))
    spec     Z<n> | D<n> | S<n> | A<n> | Q8 | <n> (= Z<n>) | products F1xF2[x...] of these |
             table:FILE (JSON {"name": ..., "table": [[...]]}) | expr:EXPR (needs M; not a group);
             n in ASCII digits 0-9 without a leading zero (Z03, Z\u0663 are refused: one spelling per group)

Element order: a group built from generators lists its elements in the order a breadth-first search
over right products x.g (g running over the generators in the order given) first reaches them, starting
at the identity. A product F1 x F2 flattens (i, j) to i*|F2| + j, as Tian's "m1xm2" does; Z<n> is
(a + b) mod n, the project's modular addition.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np  # host-side construction only: a table is built once, before any device work

from tianref.errors import InputError, breaks_line
from tianref.groups_expr import expr_table

MAX_ORDER = 1024          # the decomposition is dense (M x M) and the associativity check O(M^3)


@dataclass(frozen=True, eq=False)
class Group:
    """A task table: name, (M, M) int64 table and whether it satisfies the group axioms."""
    name: str
    table: np.ndarray
    is_group: bool

    @property
    def order(self) -> int:
        return int(self.table.shape[0])


# ---------------------------------------------------------------- the axioms

def _fmt(a, b, c) -> str:
    return f"{a}·{b} = {c}"


def table_digest(table) -> str:
    """sha256 of a task table's values (int64, C order, with its shape): what a table: run records of the
    file it was made with (config group_digest), so a file changed afterwards is told apart."""
    T = np.ascontiguousarray(np.asarray(table, dtype=np.int64))
    return hashlib.sha256(f"{T.shape}".encode() + T.tobytes()).hexdigest()


def check_group(table) -> None:
    """None if ``table`` is a group's Cayley table with identity 0..M-1 indices; else InputError
    naming the first failed axiom (closure, identity, inverse, associativity) and one witness."""
    T = np.asarray(table)
    if T.ndim != 2 or T.shape[0] != T.shape[1] or T.shape[0] == 0:
        raise InputError(f"not closed: a Cayley table must be a non-empty square array, got shape {T.shape}")
    M = T.shape[0]
    if not np.issubdtype(T.dtype, np.integer):
        raise InputError("not closed: the table's entries must be integers")
    bad = np.argwhere((T < 0) | (T >= M))
    if len(bad):
        a, b = bad[0]
        raise InputError(f"not closed: {_fmt(a, b, T[a, b])} is not an element 0..{M - 1}")
    ar = np.arange(M)
    ok = (T == ar[None, :]).all(axis=1) & (T == ar[:, None]).all(axis=0)    # (M,) e.g = g.e = g
    if not ok.any():                                                         # witness for the candidate e = 0
        g = int(np.argmax((T[0] != ar) | (T[:, 0] != ar)))
        prod = f"0·{g} = {T[0, g]}" if T[0, g] != g else f"{g}·0 = {T[g, 0]}"
        raise InputError(f"no identity: no e has e·g = g·e = g for every g (e.g. e = 0: {prod} ≠ {g})")
    e = int(np.argmax(ok))
    has = ((T == e) & (T.T == e)).any(axis=1)                                # (M,) some h: g.h = h.g = e
    if not has.all():
        g = int(np.argmin(has))
        raise InputError(f"no inverse: no h has {g}·h = h·{g} = {e} (the identity)")
    for a in range(M):                                                       # O(M^3), one M x M slab at a time
        lhs = T[T[a][:, None], ar[None, :]]                                  # (a.b).c  (M, M) over (b, c)
        rhs = T[a][T]                                                        # a.(b.c)
        if (lhs != rhs).any():
            b, c = np.argwhere(lhs != rhs)[0]
            raise InputError(f"not associative: ({a}·{b})·{c} = {lhs[b, c]} but {a}·({b}·{c}) = {rhs[b, c]}")


def is_group(table) -> bool:
    try:
        check_group(table)
    except InputError:
        return False
    return True


# ---------------------------------------------------------------- builders

def from_generators(name: str, identity, gens, mul) -> Group:
    """Closure by BFS over right products x.g; elements hashable; identity first."""
    elems, index = [identity], {identity: 0}
    i = 0
    while i < len(elems):
        for g in gens:
            y = mul(elems[i], g)
            if y not in index:
                index[y] = len(elems)
                elems.append(y)
                if len(elems) > MAX_ORDER:
                    raise InputError(f"{name}: more than {MAX_ORDER} elements")
        i += 1
    table = np.array([[index[mul(x, y)] for y in elems] for x in elems], dtype=np.int64)
    return Group(name, table, True)


def _compose(p, q):
    """(p.q)(i) = p(q(i)): apply q first."""
    return tuple(p[i] for i in q)


def cyclic(n: int) -> Group:
    a = np.arange(n)
    return Group(f"Z{n}", ((a[:, None] + a[None, :]) % n).astype(np.int64), True)


def dihedral(n: int) -> Group:
    """D_n, the 2n symmetries of an n-gon: (k, f) = rotation by k after f reflections;
    (k1, f1)(k2, f2) = (k1 + (-1)^f1 k2, f1 xor f2); generators r = (1, 0), s = (0, 1)."""
    def mul(x, y):
        return ((x[0] + (-y[0] if x[1] else y[0])) % n, x[1] ^ y[1])
    return from_generators(f"D{n}", (0, 0), [(1 % n, 0), (0, 1)], mul)


def symmetric(n: int) -> Group:
    """S_n as permutations of 0..n-1, generated by the transposition (0 1) and the n-cycle."""
    gens = [tuple([1, 0] + list(range(2, n))), tuple(list(range(1, n)) + [0])] if n > 1 else []
    return from_generators(f"S{n}", tuple(range(n)), gens, _compose)


def alternating(n: int) -> Group:
    """A_n (even permutations), generated by the 3-cycles (0 1 i), i = 2..n-1."""
    gens = []
    for i in range(2, n):
        p = list(range(n))
        p[0], p[1], p[i] = 1, i, 0                                  # 0 -> 1 -> i -> 0
        gens.append(tuple(p))
    return from_generators(f"A{n}", tuple(range(n)), gens, _compose)


def quaternion() -> Group:
    """Q_8 = {±1, ±i, ±j, ±k}: Hamilton products of integer 4-tuples, generated by i and j."""
    def mul(p, q):
        a1, b1, c1, d1 = p
        a2, b2, c2, d2 = q
        return (a1 * a2 - b1 * b2 - c1 * c2 - d1 * d2, a1 * b2 + b1 * a2 + c1 * d2 - d1 * c2,
                a1 * c2 - b1 * d2 + c1 * a2 + d1 * b2, a1 * d2 + b1 * c2 - c1 * b2 + d1 * a2)
    return from_generators("Q8", (1, 0, 0, 0), [(0, 1, 0, 0), (0, 0, 1, 0)], mul)


def direct_product(*factors: Group) -> Group:
    """F1 x F2 x ...: element (i, j) is i*|F2| + j (then recursively)."""
    G = factors[0]
    for F in factors[1:]:
        m = F.order
        T = (G.table[:, None, :, None] * m + F.table[None, :, None, :])    # (|G|, m, |G|, m)
        T = T.reshape(G.order * m, G.order * m)
        G = Group(f"{G.name}x{F.name}", T.astype(np.int64), G.is_group and F.is_group)
    return G


# the form of a table: file (its help, README.md, docs/groups.md and its refusal show it): Z3, row a and
# column b holding a·b, the elements numbered 0..n-1; "name" is optional (default: the file's stem)
TABLE_EXAMPLE = '{"name": "Z3", "table": [[0, 1, 2], [1, 2, 0], [2, 0, 1]]}'


TABLE_FILE_MAX = 64 << 20    # bytes: an order-MAX_ORDER table, even one number a line, is ~15 MB


def _read_table_file(path: str) -> str:
    """The text of a table: file, refused unless it is a regular file of at most TABLE_FILE_MAX bytes: a
    device (/dev/zero) would be read without end and a FIFO would wait for a writer (opened without
    blocking, then judged by what was opened)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"table:{path}: not a regular file")
        if st.st_size > TABLE_FILE_MAX:
            raise InputError(f"table:{path}: {st.st_size} bytes, more than a table file can need "
                             f"({TABLE_FILE_MAX >> 20} MiB; the largest order is {MAX_ORDER})")
        data = f.read(TABLE_FILE_MAX + 1)
    if len(data) > TABLE_FILE_MAX:               # grew while read
        raise InputError(f"table:{path}: more than {TABLE_FILE_MAX >> 20} MiB")
    try:
        return data.decode("utf-8-sig")         # a leading byte-order mark (some editors write one) is dropped
    except UnicodeDecodeError as exc:
        raise InputError(f"table:{path}: not JSON (not UTF-8 text: {exc.reason} at byte {exc.start})") from None


class _Object(dict):
    """A JSON object, with the keys it names more than once (json keeps the last value of each)."""
    repeated = ()


def _object(pairs) -> _Object:
    """json's object_pairs_hook: the object, remembering repeated keys (only the top level's matter: two
    "table"s, which one is meant?)."""
    obj = _Object(pairs)
    if len(obj) < len(pairs):
        seen = set()
        obj.repeated = sorted({k for k, _ in pairs if k in seen or seen.add(k)})
    return obj


INT_DIGITS_MAX = 30     # an element number has at most 4 digits (MAX_ORDER); longer integers are not converted


class _LongInt(str):
    """An integer of more than INT_DIGITS_MAX digits, kept as its text (json's parse_int): far outside any
    table's 0..n-1, and past Python's limit of 4300 digits it would not even convert."""


def _parse_int(text: str):
    return _LongInt(text) if len(text.lstrip("-")) > INT_DIGITS_MAX else int(text)


def from_json(path: str) -> Group:
    """``{"name": ..., "table": [[...], ...]}`` (TABLE_EXAMPLE); a table outside 0..M-1 is refused (not closed)."""
    p = Path(path)
    if any(breaks_line(c) for c in path):                   # recorded, and printed in a sweep's commands
        raise InputError(f"table:{path!r} holds a control character; name the file without one")
    if not path.strip():
        raise InputError(f"table: needs a file name: table:FILE, FILE a JSON object such as {TABLE_EXAMPLE}")
    try:
        text = _read_table_file(path)
    except OSError as exc:
        raise InputError(f"table:{path}: cannot read ({exc.strerror or exc})") from None
    try:
        obj = json.loads(text, object_pairs_hook=_object, parse_int=_parse_int)
    except ValueError as exc:
        raise InputError(f"table:{path}: not JSON ({exc})") from None
    except RecursionError:                       # arrays nested thousands deep
        raise InputError(f"table:{path}: not a table (JSON nested too deep to read)") from None
    if not isinstance(obj, dict) or "table" not in obj:
        got = "an object without a 'table' key" if isinstance(obj, dict) else \
            {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(type(obj), "a number")
        raise InputError(f"table:{path}: expected a JSON object such as {TABLE_EXAMPLE} (row a, column b holds "
                         f"a·b, elements 0..n-1; \"name\" optional), got {got}")
    if obj.repeated:
        raise InputError(f"table:{path}: the key {obj.repeated[0]!r} appears more than once in the object; "
                         "keep one")
    # "name" is shown only (a run is named by the file and its table's digest): a name that is no printable
    # string (a number, an object, a newline, which broke group's table) gives way to the file's
    name = obj.get("name")
    if not (isinstance(name, str) and not isinstance(name, _LongInt) and name.isprintable()):
        name = None
    rows = obj["table"]
    long = next((v for r in rows for v in r if isinstance(v, _LongInt)), None) \
        if isinstance(rows, list) and all(isinstance(r, list) for r in rows) else None
    if long is not None:
        raise InputError(f"table:{path}: an entry has {len(long.lstrip('-'))} digits, far outside the elements "
                         f"0..n-1 (n <= {MAX_ORDER})")
    if (not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows)
            or any(len(r) != len(rows) for r in rows)
            or not all(isinstance(v, int) and not isinstance(v, bool) for r in rows for v in r)):
        raise InputError(f"table:{path}: 'table' must be a non-empty square list of lists of integers")
    if len(rows) > MAX_ORDER:
        raise InputError(f"table:{path}: order {len(rows)} > {MAX_ORDER}")
    M = len(rows)
    for a, r in enumerate(rows):                 # before the int64 array: 10**20 would overflow it
        for b, v in enumerate(r):
            if not 0 <= v < M:
                raise InputError(f"table:{path}: not closed: {_fmt(a, b, v)} is not an element 0..{M - 1}")
    T = np.array(rows, dtype=np.int64)
    return Group(name or p.stem, T, is_group(T))


# ---------------------------------------------------------------- specs

_NUMBER = r"(?:0|[1-9][0-9]*)"       # ASCII digits, no leading zero: one spelling per group (not \d, not int())
_FACTOR = re.compile(rf"(?:(Z|D|S|A)({_NUMBER})|(Q8)|({_NUMBER}))")


def _factor(text: str) -> Group:
    m = _FACTOR.fullmatch(text)                 # fullmatch: '$' would let a trailing newline through
    if not m and re.fullmatch(r"[ZDSA]?\d+", text):        # Unicode \d: another digit, or a leading zero
        raise InputError(f"unknown group {text!r}: write n in ASCII digits 0-9 without a leading zero "
                         "(Z3, D10, S4)")
    if not m:
        raise InputError(f"unknown group {text!r}: use Z<n>, D<n>, S<n> (n <= 5), A<n> (3 <= n <= 5), Q8, "
                         "products such as Z3xZ5, table:FILE or expr:EXPR")
    if m.group(3):
        return quaternion()
    kind, n = (m.group(1), int(m.group(2))) if m.group(1) else ("Z", int(m.group(4)))
    lo, hi = {"Z": (1, MAX_ORDER), "D": (1, MAX_ORDER // 2), "S": (1, 5), "A": (3, 5)}[kind]
    if not lo <= n <= hi:
        raise InputError(f"{kind}<n> needs {lo} <= n <= {hi} (got {kind}{n})")
    return {"Z": cyclic, "D": dihedral, "S": symmetric, "A": alternating}[kind](n)


def is_addition_table(table) -> bool:
    """True when ``table`` is Z_M's (a + b) mod M itself (not merely isomorphic to it): the labelling on
    which the DFT view of tianref.fourier means what it says."""
    T = np.asarray(table)
    a = np.arange(T.shape[0])
    return bool((T == (a[:, None] + a[None, :]) % T.shape[0]).all())


_TASKS: dict = {}


def stored_group_spec(spec: str) -> str:
    """--group as train stores it: a table: path absolute, a named group by its one name (groups.parse_group:
    3x4 -> Z3xZ4); an expr: spec, or one that does not parse (refused by the comparison), as given."""
    spec = spec.strip()
    if spec.startswith("table:"):
        return "table:" + os.path.abspath(spec[len("table:"):])
    if spec and not spec.startswith("expr:"):
        try:
            return parse_group(spec).name
        except InputError:
            return spec
    return spec


def task_group(spec: str, M: int | None = None) -> Group:
    """The table a training run's ``--group SPEC`` names (parse_group), cached per (spec, M) except for
    table: files. A table that fails the axioms is refused (InputError naming the first failed axiom
    and a witness) unless it is an ``expr:`` table: expressions train as plain tables, without irreps."""
    spec = str(spec).strip()
    key = (spec, None if M is None else int(M))
    G = _TASKS.get(key)
    if G is None:
        try:
            G = parse_group(spec, M)
        except InputError as exc:
            msg = str(exc)
            msg = msg[len(spec) + 2:] if msg.startswith(spec + ": ") else msg     # named once, by --group
            raise InputError(f"--group {spec}: {msg}") from None
        if not spec.startswith("table:"):
            if len(_TASKS) > 32:
                _TASKS.pop(next(iter(_TASKS)))
            _TASKS[key] = G
    if not G.is_group and not spec.startswith("expr:"):
        try:
            check_group(G.table)
        except InputError as exc:
            raise InputError(f"--group {spec}: {G.name} is not a group ({exc}); only expr: tables may "
                             "train without being one") from None
    return G


def parse_group(spec: str, M: int | None = None) -> Group:
    """Build the task table a spec names; a spec whose order differs from a given M is refused."""
    spec = str(spec).strip()
    if spec.startswith("expr:"):
        if M is None:
            raise InputError(f"{spec}: an expression needs the modulus M (--M)")
        if int(M) > MAX_ORDER:                  # as every table: the axiom check is O(M^3)
            raise InputError(f"{spec}: order {int(M)} above {MAX_ORDER}")
        T = expr_table(spec[len("expr:"):], int(M))
        return Group(spec, T, is_group(T))
    if spec.startswith("table:"):
        G = from_json(spec[len("table:"):])
    else:
        parts = spec.split("x")
        if any(not p for p in parts):
            raise InputError(f"bad group spec {spec!r}: empty factor")
        factors = [_factor(p) for p in parts]
        if int(np.prod([F.order for F in factors], dtype=np.float64)) > MAX_ORDER:
            raise InputError(f"{spec}: order above {MAX_ORDER}")
        G = direct_product(*factors) if len(factors) > 1 else factors[0]
    if M is not None and int(M) != G.order:
        raise InputError(f"{spec} has order {G.order}, which conflicts with M = {M}")
    return G
