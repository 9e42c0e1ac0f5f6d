"""``python cli.py group SPEC``: a finite group's classes and irreps, from its Cayley table alone.

The math is in tianref/groups.py (the table, the axioms) and tianref/irreps.py (the decomposition);
docs/groups.md explains every number printed here.
"""
from __future__ import annotations

import json

import click

from tianref import groups, irreps
from tianref.cli.common import IntRange, reports_errors
from tianref.errors import InputError


def summary(G, dec) -> dict:
    """Everything the command prints, as one JSON-ready dict."""
    T = G.table
    classes = [{"size": int(len(c)), "representative": int(c[0]), "elements": [int(x) for x in c]}
               for c in dec.classes]
    irr = []
    for i, r in enumerate(dec.irreps):
        irr.append({"index": i, "degree": r.degree, "type": r.fs, "fs_indicator": round(r.fs_indicator, 12) + 0.0,
                    "component": r.component, "real_dim": dec.components[r.component].real_dim,
                    "character": [[round(float(z.real), 12), round(float(z.imag), 12)] for z in r.character]})
    sum_d2 = int(sum(r.degree ** 2 for r in dec.irreps))
    return {
        "name": G.name, "order": G.order, "abelian": bool((T == T.T).all()),
        "identity": dec.identity, "n_classes": len(dec.classes), "classes": classes,
        "degrees": dec.degrees, "irreps": irr,
        "components": [{"real_dim": c.real_dim, "irreps": list(c.irreps)} for c in dec.components],
        "checks": {"sum_d2": sum_d2, "sum_d2_equals_order": sum_d2 == G.order,
                   "n_irreps_equals_n_classes": len(dec.irreps) == len(dec.classes),
                   "orthogonality_max_err": dec.orthogonality_error(),
                   "real_dims_sum": int(sum(c.real_dim for c in dec.components))},
    }


def _text(s: dict) -> str:
    lines = [f"{s['name']}: order {s['order']}, {'abelian' if s['abelian'] else 'non-abelian'}, "
             f"identity {s['identity']}",
             f"conjugacy classes ({s['n_classes']}): sizes " + " ".join(str(c["size"]) for c in s["classes"])]
    lines.append(f"{'irrep':>5} {'degree':>6} {'type':>12} {'FS':>4} {'component':>9} {'real dim':>8}")
    for r in s["irreps"]:
        lines.append(f"{r['index']:>5} {r['degree']:>6} {r['type']:>12} {r['fs_indicator']:>4.0f} "
                     f"{r['component']:>9} {r['real_dim']:>8}")
    c = s["checks"]
    lines.append(f"sum d_k^2 = {c['sum_d2']} ({'=' if c['sum_d2_equals_order'] else '!='} |H|); "
                 f"{len(s['irreps'])} irreps for {s['n_classes']} classes; "
                 f"character orthogonality max error {c['orthogonality_max_err']:.1e}")
    lines.append("degrees: " + ", ".join(map(str, s["degrees"])))
    return "\n".join(lines)


@click.command(help="Print a finite group's order, conjugacy classes and irreducible representations "
               "(degree, Frobenius-Schur type, real isotypic dimension), all computed from its Cayley "
               "table, with the checks sum d_k^2 = |H| and the character orthogonality error. SPEC: Z<n>, "
               "D<n>, S<n> (n <= 5), A<n> (3 <= n <= 5), Q8, a product such as Z3xZ5 or Q8xZ3, or "
               "table:FILE, FILE a JSON object such as " + groups.TABLE_EXAMPLE + " (row a, column b holds "
               "a*b, the elements numbered 0..n-1; \"name\" optional, default the file's name), or expr:EXPR (the "
               "table a*b = EXPR mod M of an expression in x, y, with --M). A table "
               "that is not a group exits 2 naming the failed axiom. See docs/groups.md.")
@click.argument("spec")
@click.option("--M", "M", type=IntRange(min=1), default=None,
              help="The order the group must have (required for expr:EXPR, a table mod M: decomposed "
                   "when it satisfies the group axioms, as expr:x+y does, refused naming the failed "
                   "axiom otherwise).")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print one JSON object instead of a table.")
@reports_errors
def group_cmd(spec, M, as_json):
    G = groups.parse_group(spec, M)
    if not G.is_group:
        try:
            groups.check_group(G.table)
        except InputError as exc:
            kind = "an expression table" if spec.strip().startswith("expr:") else "a table"
            raise InputError(f"{G.name} is {kind}, not a group (no irreps): {exc}") from None
    s = summary(G, irreps.decompose(G.table))
    click.echo(json.dumps(s) if as_json else _text(s))
