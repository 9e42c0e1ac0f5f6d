"""Every citation in the repository resolves inside it.

Code, docs, tests and stored results cite ``docs/<page>.md §n`` (or ``§n.m``); each such section must exist as a
heading of that page. Nothing may cite a file outside the repository or a tracker number: a reader of the
repository cannot open those. The patterns below are written so that this file does not match itself.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
TEXT_SUFFIXES = {".py", ".md", ".json", ".txt", ".cfg", ".toml", ".sh", ""}
FORBIDDEN = [re.compile(p, re.IGNORECASE) for p in
             (r"\bshared[/]", r"\bshared[ ]spec", r"\bissue[ _#]?\d", r"\.\./shared\b", r"\bseeds[/]0")]
CITATION = re.compile(r"\b([a-z0-9_-]+\.md)`{0,2} §(\d+)(?:\.(\d+))?")


def _files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, timeout=30,
                             check=True).stdout.split("\n")
        files = [REPO / f for f in out if f]
    except (OSError, subprocess.SubprocessError):                      # no git: walk the source tree
        skip = {".git", "runs", "__pycache__"}
        files = [p for p in REPO.rglob("*") if not skip & set(p.relative_to(REPO).parts)]
    return [p for p in files if p.is_file() and p.suffix in TEXT_SUFFIXES and ".egg-info" not in str(p)]


def _headings(page: Path) -> set[str]:
    """'5', '5.12', ... for headings '## 5. Title' and '### 5.12 Title' of a docs page."""
    found = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#{2,4} (\d+)(?:\.(\d+))?\.? ", line)
        if m:
            found.add(m.group(1) if m.group(2) is None else f"{m.group(1)}.{m.group(2)}")
    return found


def test_no_reference_outside_the_repository():
    bad = []
    for p in _files():
        text = p.read_text(encoding="utf-8", errors="replace")
        for pat in FORBIDDEN:
            for m in pat.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                bad.append(f"{p.relative_to(REPO)}:{line}: {m.group(0)!r}")
    assert not bad, "citations outside the repository:\n" + "\n".join(bad[:30])


def test_every_section_citation_resolves():
    pages = {p.name: _headings(p) for p in DOCS.glob("*.md")}
    bad = []
    for p in _files():
        for m in CITATION.finditer(p.read_text(encoding="utf-8", errors="replace")):
            page, sec = m.group(1), m.group(2) + (f".{m.group(3)}" if m.group(3) else "")
            if page not in pages:
                continue                  # e.g. README.md or findings.md of the paper's repository
            if sec not in pages[page]:
                bad.append(f"{p.relative_to(REPO)}: docs/{page} §{sec}")
    assert not bad, "citations of missing sections:\n" + "\n".join(sorted(set(bad)))


def test_paper_protocol_has_every_numbered_caveat_and_difference():
    heads = _headings(DOCS / "paper-protocol.md")
    assert {"1", "2", "3", "4", "5", "6"} <= heads
    assert {f"5.{i}" for i in range(1, 13)} <= heads and {f"6.{i}" for i in range(1, 5)} <= heads
    # the caveats the stored data cites by number (published.json 'caveats', report rows '§5.n')
    pub = json.loads((REPO / "reference_results" / "paper" / "published.json").read_text(encoding="utf-8"))
    assert {f"5.{c}" for c in pub["caveats"]} <= heads


def test_the_checks_catch_what_they_guard(tmp_path):
    """The patterns themselves: a path outside the repository and a tracker number are caught."""
    assert any(p.search("see ../sha" + "red/spec/x.md") for p in FORBIDDEN)
    assert any(p.search("as in iss" + "ue 4") for p in FORBIDDEN)
    assert any(p.search("group iss" + "ue4") for p in FORBIDDEN)
    m = CITATION.search("``docs/paper-protocol.md`` §5.12")
    assert m and (m.group(1), m.group(2), m.group(3)) == ("paper-protocol.md", "5", "12")
    page = tmp_path / "p.md"
    page.write_text("# t\n## 5. Caveats\n### 5.12 Precision\n## 6. Four\n", encoding="utf-8")
    assert _headings(page) == {"5", "5.12", "6"}


def test_paths_named_in_the_docs_exist():
    """A module moved without its docs following shows up here (README, docs/*.md, bench/README.md)."""
    pat = re.compile(r"\b((?:tianref|tests|scripts|bench|docs|reference_results)/[A-Za-z0-9_./{},<>*-]*[A-Za-z0-9_])")
    bad = []
    for page in [REPO / "README.md", REPO / "bench" / "README.md", *sorted(DOCS.glob("*.md"))]:
        for m in pat.finditer(page.read_text(encoding="utf-8")):
            path = m.group(1).split("::")[0]
            if not any(c in path for c in "{}<>*") and not (REPO / path).exists():
                bad.append(f"{page.relative_to(REPO)}: {path}")
    assert not bad, "paths that do not exist:\n" + "\n".join(bad)


# Python files of the papers' and Tian's own repositories that the docs cite by name (docs/paper-protocol.md,
# docs/math.md §9-10, docs/edge-and-clocks.md §2-3, docs/detectors.md): not files of this repository.
AUTHORS_FILES = {
    "analyze_eta_sweep.py", "analyze_window_sweep.py", "figures_punch.py", "plot_relu_comparison.py",
    "plot_two_stage.py", "sigma12_analysis.py", "theorem6_verify.py", "tian_eigengap.py",
    "window_sensitivity.py",                                     # the seed paper's tian_eigengap/
    "edge_ablation.py", "grad_vs_wd_decomposition.py", "gram_edge_functional_modes.py",
    "random_direction_controls.py",                              # the spectral-edge authors' spectral/
    "modular_addition_simple2.py", "muon_opt.py",                # Tian's code
}


def test_module_names_in_the_docs_exist():
    """A module named bare in backticks (`lifecycle.py`) exists somewhere in the repository, unless it is
    one of the authors' files above: a module renamed or folded into another leaves no stale name."""
    names = {p.name for p in _files() if p.suffix == ".py"}
    bad = []
    for page in [REPO / "README.md", REPO / "bench" / "README.md", *sorted(DOCS.glob("*.md"))]:
        for m in re.finditer(r"`([A-Za-z0-9_]+\.py)`", page.read_text(encoding="utf-8")):
            if m.group(1) not in names | AUTHORS_FILES:
                bad.append(f"{page.relative_to(REPO)}: {m.group(1)}")
    assert not bad, "module names that no file of the repository has:\n" + "\n".join(bad)


RELIABILITY_LABELS = {"T": "test_reliability_train.py", "I": "test_reliability_inputs.py",
                      "N": "test_reliability_numbers.py", "S": "test_reliability_sweep.py",
                      "P": "test_reliability_paths.py"}      # docs/reliability.md, its first paragraph
ROW_KEYS = {"test_acc", "test_loss", "test_idx"}             # logged keys and checkpoint arrays, not tests


def _defs(path: Path) -> set[str]:
    return set(re.findall(r"^\s*def (test_\w+)", path.read_text(encoding="utf-8"), re.MULTILINE))


def test_tests_named_in_the_docs_exist_where_they_are_said_to_be():
    """A test a doc names exists; in docs/reliability.md's tables, in the file its label (T, I, N, S, P)
    or its explicit path names. A shorthand `_rest` completes the cell's previous name (any test of that
    file ending in it). Fails on a renamed or moved test, and on a wrong label."""
    tests = REPO / "tests"
    every = set().union(*(_defs(p) for p in tests.rglob("test_*.py")))
    code = set(re.findall(r"^def (test_\w+)", "\n".join(p.read_text(encoding="utf-8")
                                                          for p in (REPO / "tianref").rglob("*.py")), re.MULTILINE))
    bad = []
    for page in [REPO / "README.md", REPO / "bench" / "README.md", *sorted(DOCS.glob("*.md"))]:
        for name in re.findall(r"`(?:tests/[\w/]+\.py::)?(test_\w+)`", page.read_text(encoding="utf-8")):
            if name not in every | code | ROW_KEYS:
                bad.append(f"{page.relative_to(REPO)}: {name}")
    for line in (DOCS / "reliability.md").read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        cell = line.rstrip().rstrip("|").split("|")[-1]
        label = re.match(r"\s*([TINSP]) `", cell)
        for path, name in re.findall(r"`(?:(tests/[\w/]+\.py)::)?(test_\w+|_\w+)`", cell):
            where = REPO / path if path else tests / RELIABILITY_LABELS[label.group(1)] if label else None
            if where is None:
                continue                                          # unlabelled: checked above
            defs = _defs(where)
            if not (name in defs or name.startswith("_") and any(d.endswith(name) for d in defs)):
                bad.append(f"docs/reliability.md: {name} is not in {where.relative_to(REPO)}")
    assert not bad, "tests named in the docs that are not where they are said to be:\n" + "\n".join(bad)
