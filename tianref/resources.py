"""Where this copy of tianref finds its data and its own command, in a source checkout and in an installed copy.

Two kinds of install run the same code: a source checkout (``pip install -e .``, or ``python cli.py`` with no
install), whose package folder lies beside the repository's ``cli.py``, ``setup.cfg`` and ``reference_results/``;
and an installed copy (``pip install .``), which has the package alone in site-packages.

    PAPER_DIR        the checkout's reference_results/paper/ (the published numbers as data: published.json,
                     thm6_T1.json); None in an installed copy, which has no reference_results/
    paper_file(name) a file of PAPER_DIR; InputError (exit 2) in an installed copy, naming what is missing
    checkout_root()  the repository this package was imported from, None for an installed copy
    store_root()     the default of reproduce --store-to and --rerender (the checkout's
                     reference_results/reproduction); an installed copy has none: InputError
    cli_argv(python) the command that runs this copy's CLI in a child process: ``python ROOT/cli.py`` in a
                     checkout (runs from any folder without an install, as --plan lines are run), else
                     ``python -m tianref`` (tianref/__main__.py)
    program(argv0)   this process's program as a command line names it: 'python -m tianref' when run by -m,
                     else the file's name ('cli.py', 'tianref')

``package_dir`` (default: this package's folder) lets a test ask as if the package lay elsewhere.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tianref.errors import InputError

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_MARKERS = ("cli.py", "setup.cfg")      # files beside the package in the repository only


def checkout_root(package_dir: Path | None = None) -> Path | None:
    """The source checkout holding the package (its parent folder, when it has CHECKOUT_MARKERS), else None."""
    root = Path(package_dir if package_dir is not None else PACKAGE_DIR).parent
    return root if all((root / m).is_file() for m in CHECKOUT_MARKERS) else None


def paper_dir(package_dir: Path | None = None) -> Path | None:
    """The checkout's reference_results/paper, None in an installed copy."""
    root = checkout_root(package_dir)
    return None if root is None else root / "reference_results" / "paper"


def paper_file(name: str, package_dir: Path | None = None) -> Path:
    """reference_results/paper/NAME of the checkout; InputError (exit 2) in an installed copy."""
    d = paper_dir(package_dir)
    if d is None:
        raise InputError(f"the published numbers (reference_results/paper/{name}) come with a source checkout "
                         "of tianref, not an installed copy: clone the repository and pip install -e . there")
    return d / name


def store_root(package_dir: Path | None = None) -> Path:
    """The checkout's reference_results/reproduction; InputError (exit 2) in an installed copy."""
    root = checkout_root(package_dir)
    if root is None:
        raise InputError("no default --store-to: this tianref is an installed copy, not a source checkout "
                         "with reference_results/reproduction; give --store-to DIR")
    return root / "reference_results" / "reproduction"


def cli_argv(python: str = sys.executable, package_dir: Path | None = None) -> list[str]:
    """[python, ROOT/cli.py] in a source checkout, [python, '-m', 'tianref'] in an installed copy."""
    root = checkout_root(package_dir)
    return [python, str(root / "cli.py")] if root is not None else [python, "-m", "tianref"]


def program(argv0: str | None = None) -> str:
    """'python -m tianref' for ``python -m tianref`` (argv[0] is tianref/__main__.py), else argv[0]'s file name."""
    name = Path(argv0 if argv0 is not None else sys.argv[0]).name
    return "python -m tianref" if name == "__main__.py" else name


PAPER_DIR = paper_dir()
