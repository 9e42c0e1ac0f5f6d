"""The pipeline through the CLI: --plan, the section list, bad input, a failed run; and the registry."""
import shlex
import shutil

import pytest

from tianref.experiments import protocols
from tianref.experiments.reproduce.pipeline import parse_section
from tianref.experiments.reproduce.section import Section
from tianref.experiments.reproduce.sections import REGISTRY

from .conftest import CI, CLI, cli


def test_the_registry_is_every_section_in_order():
    assert list(REGISTRY) == list(protocols.SECTIONS)
    for name, s in REGISTRY.items():
        assert isinstance(s, Section) and s.name == name
    assert parse_section("all") == list(protocols.DEFAULT_SECTIONS)       # the sections marked default


def test_plan_prints_one_train_command_per_unfinished_run(tmp_path):
    res = cli("reproduce", "--plan", "--scale", "ci", "--section", "headline", "--root", str(tmp_path))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    specs = protocols.section_runs("headline", CI)
    assert len(lines) == len(specs) == 4
    outs = set()
    for ln in lines:
        argv = shlex.split(ln)
        assert argv[1:3] == [CLI, "train"] and "--no-resume-state" in argv
        assert argv[argv.index("--log-grams") + 1] == "float32,float32-seq"    # the section's log_grams
        outs.add(argv[argv.index("--out") + 1])
    assert outs == {str(tmp_path / "headline" / s.tag) for s in specs}
    res = cli("reproduce", "--plan", "--scale", "ci", "--section", "all", "--root", str(tmp_path))
    n_all = sum(len(protocols.section_runs(s, CI)) for s in protocols.DEFAULT_SECTIONS)
    assert len(res.stdout.splitlines()) == n_all                         # extended not included


def test_bad_section_or_scale_is_one_line_exit_2(tmp_path):
    for args in (["--section", "nope"], ["--scale", "huge"]):
        res = cli("reproduce", "--root", str(tmp_path), *args)
        assert res.returncode == 2 and res.stdout == ""
        assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("Error:")


def test_failed_run_exit_1_names_run_and_log(tmp_path):
    false = shutil.which("false")
    if false is None:
        pytest.skip("no `false` executable")
    res = cli("reproduce", "--scale", "ci", "--section", "headline", "--root", str(tmp_path),
              "--jobs", "1", "--python", false)
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert "sqr_eta0.002_seed0 failed" in last
    assert str(tmp_path / "headline" / "_logs" / "sqr_eta0.002_seed0.log") in last
