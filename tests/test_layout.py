"""The package's layout: no import cycles (module-level or lazy), and ``python -m tianref`` is the CLI.

The import graph is read statically from the source (every ``import``/``from ... import`` anywhere
in a module, so a lazy import inside a function counts too), then searched for a cycle.
"""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "tianref"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _graph():
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph = {m: set() for m in modules}
    for m, p in modules.items():
        is_pkg = p.name == "__init__.py"
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:                      # relative import
                    base = m.split(".") if is_pkg else m.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            for t in targets:
                if t in modules and t != m:
                    graph[m].add(t)
    # a package's __init__ importing its own submodules is not a cycle of ideas; a submodule
    # importing its parent package is (it would see a half-initialised package)
    return graph


def _find_cycle(graph):
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {m: WHITE for m in graph}
    stack = []

    def visit(m):
        colour[m] = GREY
        stack.append(m)
        for n in sorted(graph[m]):
            if colour[n] == GREY:
                return stack[stack.index(n):] + [n]
            if colour[n] == WHITE:
                c = visit(n)
                if c:
                    return c
        stack.pop()
        colour[m] = BLACK
        return None

    for m in sorted(graph):
        if colour[m] == WHITE:
            c = visit(m)
            if c:
                return c
    return None


def test_no_import_cycle():
    cycle = _find_cycle(_graph())
    assert cycle is None, " -> ".join(cycle)


def test_cycle_finder_finds_a_planted_cycle():
    """The check itself can fail: a two-module cycle is found."""
    assert _find_cycle({"a": {"b"}, "b": {"a"}, "c": set()}) in (["a", "b", "a"], ["b", "a", "b"])


def test_layout_folders():
    """The architecture is visible in the folders: math and engine flat, three subpackages."""
    for sub in ("thm6", "analysis", "experiments", "cli"):
        assert (PKG / sub / "__init__.py").is_file()
    for flat in ("data", "model", "loss", "optim", "spectra", "metrics", "config", "train", "runs"):
        assert (PKG / f"{flat}.py").is_file()


def test_python_m_tianref_is_the_cli():
    out_m = subprocess.run([sys.executable, "-m", "tianref", "--help"], capture_output=True, text=True, cwd=ROOT)
    out_c = subprocess.run([sys.executable, "cli.py", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out_m.returncode == 0 and out_c.returncode == 0
    body = lambda s: s.split("\n", 1)[1]          # noqa: E731  (the first line names the program)
    assert body(out_m.stdout) == body(out_c.stdout)
