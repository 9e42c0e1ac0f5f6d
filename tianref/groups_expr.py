"""Task tables from an expression in x and y taken mod M (``expr:x*y``, ``expr:x*x+y``): not groups.

Reference: Tian's code (yuandong-tian/understanding, ssl/real-dataset/cogo/modular_addition_simple2.py,
group_type "expression") trains on such tables. Parsing is a whitelist over Python's ``ast``: integer
literals, the names x and y, unary + and -, and binary + - * and ** with a constant non-negative integer
exponent. Nothing is ever passed to eval; every intermediate value is reduced mod M (int64, so
products stay below M^2 < 2^63), and powers use square-and-multiply.

Symbols
    x, y     (M, 1) and (1, M) int64: the first and second operand
    table    (M, M) int64, table[x, y] = EXPR(x, y) mod M
"""
from __future__ import annotations

import ast

import numpy as np  # host-side construction only

from tianref.errors import InputError

MAX_LEN = 200


def _pow(base, e: int, M: int):
    out = np.ones_like(base) % M
    while e:
        if e & 1:
            out = (out * base) % M
        base = (base * base) % M
        e >>= 1
    return out


def _const_exponent(node) -> int:
    if isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 0:
        return node.value
    raise InputError("expr: an exponent must be a non-negative integer literal")


def expr_table(text: str, M: int) -> np.ndarray:
    """(M, M) int64 table of ``text`` evaluated at every (x, y) mod M."""
    if not isinstance(M, int) or M < 1:
        raise InputError(f"expr: M must be a positive integer, got {M!r}")
    text = text.strip()
    if not text or len(text) > MAX_LEN:
        raise InputError(f"expr: the expression must have 1..{MAX_LEN} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise InputError(f"expr: cannot parse {text!r}") from None
    a = np.arange(M, dtype=np.int64)
    env = {"x": a[:, None], "y": a[None, :]}

    def ev(node):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return np.int64(node.value % M)
        if isinstance(node, ast.Name) and node.id in env:
            return env[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            v = ev(node.operand)
            return v if isinstance(node.op, ast.UAdd) else (-v) % M
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow):
                return _pow(ev(node.left), _const_exponent(node.right), M)
            if isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
                lv, rv = ev(node.left), ev(node.right)
                if isinstance(node.op, ast.Add):
                    return (lv + rv) % M
                if isinstance(node.op, ast.Sub):
                    return (lv - rv) % M
                return (lv * rv) % M
        what = (f"name {node.id!r}" if isinstance(node, ast.Name) else
                f"operator {type(node.op).__name__}" if isinstance(node, (ast.BinOp, ast.UnaryOp)) else
                type(node).__name__)
        raise InputError(f"expr: {what} is not allowed (use integers, x, y, + - * and ** with a "
                         "constant exponent)")

    try:
        out = ev(tree.body)
    except RecursionError:
        raise InputError("expr: the expression is nested too deeply") from None
    return np.broadcast_to(np.asarray(out, dtype=np.int64) % M, (M, M)).copy()
