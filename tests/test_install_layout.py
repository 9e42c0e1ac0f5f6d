"""An installed copy (``pip install .``: the package alone in site-packages, no cli.py, no reference_results/)
runs as a source checkout does, except `reproduce`, which needs the checkout's reference_results/ and says so
before anything runs: tianref.resources against a package folder placed elsewhere, and the real
program run from a copy of the package with no repository around it (what a wheel installs, without the
time of building one)."""
import configparser
import fnmatch
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tianref import resources
from tianref.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--M", "11", "--K", "32", "--epochs", "5", "--seeds", "0", "--eta", "0"]


def test_checkout_and_installed_copy_are_told_apart(tmp_path):
    assert resources.checkout_root() == REPO
    assert resources.cli_argv("py") == ["py", str(REPO / "cli.py")]
    assert resources.store_root() == REPO / "reference_results" / "reproduction"
    site = tmp_path / "site-packages"
    (site / "tianref").mkdir(parents=True)
    (site / "cli.py").write_text("")          # another distribution's top-level cli module: still not a checkout
    assert resources.checkout_root(site / "tianref") is None
    assert resources.cli_argv("py", site / "tianref") == ["py", "-m", "tianref"]
    with pytest.raises(InputError, match="--store-to"):
        resources.store_root(site / "tianref")


def test_program_names_the_entry_point():
    assert resources.program("/x/site-packages/tianref/__main__.py") == "python -m tianref"
    assert resources.program("/repo/cli.py") == "cli.py"
    assert resources.program("/venv/bin/tianref") == "tianref"


def test_the_published_numbers_are_read_from_the_checkouts_reference_results():
    from tianref.experiments.reproduce.rows import PUBLISHED_PATH
    from tianref.thm6.figures import PAPER_T1_PATH
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    assert "py_modules" not in cfg["options"]   # no generic top-level `cli` module in site-packages
    for path in (PUBLISHED_PATH, PAPER_T1_PATH):
        assert path.parent == REPO / "reference_results" / "paper" and path.is_file(), path
    site = Path("/nowhere/site-packages/tianref")
    assert resources.paper_dir(site) is None
    with pytest.raises(InputError, match="source checkout"):
        resources.paper_file("published.json", site)


def _installed_copy(tmp_path):
    site = tmp_path / "site-packages"
    shutil.copytree(REPO / "tianref", site / "tianref", ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONPATH=str(site), OPENBLAS_NUM_THREADS="1")
    work = tmp_path / "work"
    work.mkdir()
    return site, env, work


def _run(args, env, cwd):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_an_installed_copy_sweeps_and_refuses_reproduce_before_anything_runs(tmp_path):
    site, env, work = _installed_copy(tmp_path)
    probe = _run(["-c", "import json, tianref, tianref.thm6.figures as f\n"
                        "from tianref.errors import InputError\n"
                        "from tianref.experiments.reproduce.rows import load_published\n"
                        "try:\n    load_published(); msg = None\n"
                        "except InputError as e:\n    msg = str(e)\n"
                        "print(json.dumps([tianref.__file__, msg, f.load_paper_T1() is None]))"], env, work)
    assert probe.returncode == 0, probe.stderr
    where, msg, no_t1 = json.loads(probe.stdout)
    assert Path(where).parent == site / "tianref" and "source checkout" in msg and no_t1
    # the children of a sweep: `python -m tianref train ...`, no cli.py anywhere
    r = _run(["-m", "tianref", "sweep", "S", *SMALL, "--jobs", "1"], env, work)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["ran"] == 1
    log = (work / "S" / "_logs" / "eta0_actsqr_M11_seed0.log").read_text()
    assert log.startswith(f"{sys.executable} -m tianref train --out {work / 'S' / 'eta0_actsqr_M11_seed0'}"), log[:300]
    cfg = json.loads((work / "S" / "eta0_actsqr_M11_seed0" / "config.json").read_text())
    assert cfg["command"].startswith("python -m tianref train --out")
    # reproduce: one line, exit 2, before anything is trained or written (it used to train every run first)
    for extra in ([], ["--store"], ["--store", "--store-to", "ST"]):
        r = _run(["-m", "tianref", "reproduce", "--section", "headline", "--scale", "smoke", "--root", "R", *extra],
                 env, work)
        assert r.returncode == 2 and "source checkout" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not (work / "R").exists() and not (work / "ST").exists()
    assert not (site / "reference_results").exists()
