"""``python cli.py group``: the JSON and text outputs, and its one-line refusals (exit 2)."""
import json

import pytest
from click.testing import CliRunner

from tianref.cli import main as cli_main
from tianref.groups import parse_group


def run(args):
    r = CliRunner().invoke(cli_main, args, catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_s4_json():
    code, out, _ = run(["group", "S4", "--json"])
    assert code == 0
    s = json.loads(out)
    assert s["order"] == 24 and s["abelian"] is False and s["degrees"] == [1, 1, 2, 3, 3]
    assert sorted(c["size"] for c in s["classes"]) == [1, 3, 6, 6, 8]
    assert sum(len(c["elements"]) for c in s["classes"]) == 24
    assert [r["real_dim"] for r in s["irreps"]] == [1, 1, 4, 9, 9]
    assert {r["type"] for r in s["irreps"]} == {"real"}
    c = s["checks"]
    assert c["sum_d2"] == 24 and c["sum_d2_equals_order"] and c["n_irreps_equals_n_classes"]
    assert c["orthogonality_max_err"] < 1e-10


@pytest.mark.parametrize("spec,types", [("A4", ["real", "complex", "complex", "real"]),
                                        ("Q8", ["real"] * 4 + ["quaternionic"])])
def test_types_and_component_dims(spec, types):
    s = json.loads(run(["group", spec, "--json"])[1])
    assert [r["type"] for r in s["irreps"]] == types
    if spec == "A4":
        assert [r["real_dim"] for r in s["irreps"]] == [1, 2, 2, 9]   # the complex pair shares one component
        assert s["irreps"][1]["component"] == s["irreps"][2]["component"]
        assert s["irreps"][1]["fs_indicator"] == 0


def test_text_output_and_abelian_flag():
    code, out, _ = run(["group", "Z3xZ5"])
    assert code == 0 and "order 15, abelian" in out and "degrees: " + ", ".join(["1"] * 15) in out
    code, out, _ = run(["group", "S3"])
    assert "non-abelian" in out and "sizes 1 3 2" in out and "sum d_k^2 = 6 (= |H|)" in out


def test_an_expression_that_is_a_group_is_decomposed():
    s = json.loads(run(["group", "expr:x+y", "--M", "7", "--json"])[1])
    assert s["degrees"] == [1] * 7


@pytest.mark.parametrize("args,msg", [
    (["group", "expr:x*y", "--M", "7"], "expr:x*y is an expression table, not a group (no irreps): no inverse: "),
    (["group", "expr:x*y"], "needs the modulus M"),
    (["group", "S4", "--M", "23"], "S4 has order 24, which conflicts with M = 23"),
    (["group", "S7"], "S<n> needs 1 <= n <= 5 (got S7)"),
])
def test_refusals_are_one_line_exit_2(args, msg):
    code, out, err = run(args)
    assert code == 2 and out == "" and msg in err and err.count("\n") == 1


@pytest.mark.parametrize("spec", ["Z\u0663", "Z03", "S4xD05"])
def test_non_ascii_digits_and_leading_zeros_are_refused_by_group_and_train(spec, tmp_path):
    """Both commands that take a spec: one line, exit 2 (int() alone would read Z\u0663 and Z03 as Z3)."""
    for args in (["group", spec], ["train", "--group", spec, "--K", "8", "--epochs", "1",
                                   "--out", str(tmp_path / "r")]):
        code, out, err = run(args)
        assert code == 2 and out == "" and err.count("\n") == 1 and "ASCII digits 0-9" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("table,axiom", [
    ([[0, 1, 2], [1, 2, 0], [2, 0, 3]], "not closed: 2·2 = 3"),
    ([[0, 2, 1], [1, 0, 2], [2, 1, 0]], "no identity"),
    ([[0, 0], [0, 1]], "no inverse: no h has 0·h = h·0 = 1"),
    ([[0, 1, 2, 3, 4], [1, 0, 3, 4, 2], [2, 4, 0, 1, 3], [3, 2, 4, 0, 1], [4, 3, 1, 2, 0]], "not associative: ("),
])
def test_a_table_that_is_not_a_group_names_the_axiom(tmp_path, table, axiom):
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"name": "t", "table": table}))
    code, out, err = run(["group", f"table:{p}"])
    assert code == 2 and out == "" and axiom in err and err.count("\n") == 1


def test_a_table_file_that_is_a_group(tmp_path):
    p = tmp_path / "q8.json"
    p.write_text(json.dumps({"name": "quaternions", "table": parse_group("Q8").table.tolist()}))
    s = json.loads(run(["group", f"table:{p}", "--json"])[1])
    assert s["name"] == "quaternions" and s["degrees"] == [1, 1, 1, 1, 2]


def test_a_table_file_that_is_a_bare_list_is_refused_naming_the_expected_form(tmp_path):
    """A bare JSON list of rows (the table without its object) is refused in one line that shows the
    form a table file must have, the documented example itself."""
    from tianref.groups import TABLE_EXAMPLE
    p = tmp_path / "z3.json"
    p.write_text("[[0, 1, 2], [1, 2, 0], [2, 0, 1]]")
    code, out, err = run(["group", f"table:{p}"])
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert f"expected a JSON object such as {TABLE_EXAMPLE}" in err and "got a list" in err, err


def test_the_documented_table_file_example_is_a_table_file():
    """The example that the --help, README.md and docs/groups.md show beside `group table:FILE` is read by
    `group` as the group it names (Z3), and each of the three shows it."""
    from pathlib import Path
    from tianref.groups import TABLE_EXAMPLE
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "z3.json"
        p.write_text(TABLE_EXAMPLE)
        s = json.loads(run(["group", f"table:{p}", "--json"])[1])
    assert s["name"] == "Z3" and s["order"] == 3 and s["abelian"] and s["degrees"] == [1, 1, 1]
    assert TABLE_EXAMPLE in " ".join(run(["group", "--help"])[1].split())
    repo = Path(__file__).resolve().parents[1]
    for doc in ("README.md", "docs/groups.md"):
        text = (repo / doc).read_text()
        assert text.count(TABLE_EXAMPLE) >= 1, doc
        at = text.index("python cli.py group table:my.json")
        assert TABLE_EXAMPLE in text[at - 400:at + 400], f"{doc}: no example beside `group table:my.json`"


@pytest.mark.parametrize("text, what", [
    ('{"table": [[100000000000000000000, 1], [1, 0]]}', "not closed: 0·0 = 100000000000000000000"),
    ('{"table": [[0, -100000000000000000000], [1, 0]]}', "not closed: 0·1 = -100000000000000000000"),
    ('{"table":' + "[" * 100000 + "]" * 100000 + "}", "nested too deep"),
    # past Python's 4300-digit limit json.loads raised a ValueError read as "not JSON", with advice for programmers
    ('{"table": [[0, 1], [1, ' + "9" * 5001 + "]]}", "an entry has 5001 digits, far outside the elements"),
    # two "table" keys: json kept the last, and a file meant as one group trained as another
    ('{"table": [[0, 1], [1, 0]], "table": [[0, 1, 2], [1, 2, 0], [2, 0, 1]]}', "the key 'table' appears more than once"),
])
def test_a_table_file_with_a_huge_entry_or_deep_nesting_is_one_line(tmp_path, text, what):
    """An entry beyond int64 (it overflowed NumPy's array) or arrays nested past Python's recursion limit
    (json.loads) gave a traceback and exit 1; both are bad input."""
    p = tmp_path / "t.json"
    p.write_text(text)
    code, out, err = run(["group", f"table:{p}"])
    assert code == 2 and out == "" and err.count("\n") == 1 and what in err, err
    res = CliRunner().invoke(cli_main, ["train", "--group", f"table:{p}", "--K", "8", "--epochs", "2",
                                        "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "Traceback" not in res.output and not (tmp_path / "r").exists(), res.output


@pytest.mark.parametrize("name", [{"a": 1}, 5, "two\nlines", None])
def test_a_table_name_that_is_no_printable_string_gives_way_to_the_file_name(tmp_path, name):
    """The name is only shown: a number or an object (printed with str()) or a newline (it broke group's
    table) is replaced by the file's name, and such a file still trains as before."""
    p = tmp_path / "mytab.json"
    p.write_text(json.dumps({"name": name, "table": [[0, 1], [1, 0]]}))
    code, out, err = run(["group", f"table:{p}"])
    assert code == 0 and out.startswith("mytab: order 2"), (out, err)


def test_a_table_file_saved_with_a_byte_order_mark_is_read(tmp_path):
    """Some editors save UTF-8 with a leading byte-order mark; it is still the file's table (it was refused as
    'not JSON', with Python's hint to decode it with utf-8-sig)."""
    from tianref.groups import TABLE_EXAMPLE
    plain, bom = tmp_path / "z3.json", tmp_path / "z3_bom.json"
    plain.write_text(TABLE_EXAMPLE)
    bom.write_bytes(b"\xef\xbb\xbf" + TABLE_EXAMPLE.encode())
    a, b = run(["group", f"table:{plain}"]), run(["group", f"table:{bom}"])
    assert a[0] == b[0] == 0 and a[1].replace("z3", "") == b[1].replace("z3_bom", "") and "order 3" in b[1], b


def test_only_the_tables_own_object_and_entries_are_held_to_the_table_rules(tmp_path):
    """Repeated keys and over-long integers are refused where they make the table ambiguous or absurd (the
    top-level object, the entries), not in other data a file carries: a metadata object with a repeated key,
    a 40-digit number as "name" (a name that is no string gives way to the file's) leave a valid table
    valid."""
    from tianref.groups import TABLE_EXAMPLE
    body = TABLE_EXAMPLE[:-1]                                    # '{"name": "Z3", "table": [...]' without '}'
    p = tmp_path / "meta.json"
    p.write_text(body + ', "meta": {"a": 1, "a": 2, "big": ' + "7" * 40 + "}}")
    code, out, err = run(["group", f"table:{p}"])
    assert code == 0 and "Z3: order 3" in out, err
    p.write_text('{"name": ' + "9" * 40 + ', "table": [[0, 1], [1, 0]]}')
    code, out, err = run(["group", f"table:{p}"])
    assert code == 0 and out.startswith("meta: order 2"), (out, err)
