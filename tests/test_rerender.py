"""``reproduce --rerender``: stored reports are current, and re-rendering touches no measured number."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tianref.experiments import reproduce as rp
from tianref.experiments.reproduce.pipeline import MODULE_SECTIONS
from tianref.experiments.reproduce.rerender import MEASURED_KEYS, predates_section_module, rerender_doc

REPO = Path(__file__).resolve().parents[1]
STORED = sorted(p.parent for p in rp.STORE_ROOT.glob("*/*/summary.json"))


def cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, str(REPO / "cli.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.skipif(not STORED, reason="no stored section")
@pytest.mark.parametrize("d", STORED, ids=[f"{d.parent.name}/{d.name}" for d in STORED])
def test_stored_report_is_the_rendering_of_its_summary(d):
    """A stored report.md and comparison are exactly what the current code renders from the stored
    summary; otherwise run the re-render command in the message (it changes no measured number)."""
    doc = json.loads((d / "summary.json").read_text(encoding="utf-8"))
    if d.name in MODULE_SECTIONS and predates_section_module(doc):
        pytest.skip("stored before its section module (sections/<name>.py): to be run again at full scale")
    new, md = rerender_doc(doc, rp.load_published())
    hint = f"run: python cli.py reproduce --rerender --section {d.name} --scale {d.parent.name}"
    assert new.get("comparison") == doc.get("comparison"), hint
    assert md == (d / "report.md").read_text(encoding="utf-8"), hint


def test_rerender_rewrites_only_the_comparison_and_report(tmp_path):
    src = rp.STORE_ROOT / "ci" / "headline"
    if not (src / "summary.json").is_file():
        pytest.skip("no stored ci headline")
    dest = tmp_path / "ci" / "headline"
    shutil.copytree(src, dest)
    doc = json.loads((dest / "summary.json").read_text(encoding="utf-8"))
    stale = json.loads(json.dumps(doc))
    for r in stale["comparison"]:                           # an out-of-date wording and a wrong flag
        r["source"] = "an old citation"
    stale["comparison"][0]["within"] = not stale["comparison"][0]["within"]
    (dest / "summary.json").write_text(json.dumps(stale), encoding="utf-8")
    (dest / "report.md").write_text("old report\n", encoding="utf-8")
    figs = {p.name: p.read_bytes() for p in (dest / "figures").iterdir()}
    prov_before = json.loads((dest / "provenance.json").read_text(encoding="utf-8"))

    res = cli("reproduce", "--rerender", "--section", "headline", "--scale", "ci", "--store-to", str(tmp_path))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert set(out["rerendered"]["headline"]["changed"]) == {"summary.json", "report.md"}
    new = json.loads((dest / "summary.json").read_text(encoding="utf-8"))
    assert all(new.get(k) == doc.get(k) for k in MEASURED_KEYS)    # measured statistics unchanged
    assert new["comparison"] == doc["comparison"]                  # rebuilt from the numbers alone
    assert (dest / "report.md").read_text(encoding="utf-8") == (src / "report.md").read_text(encoding="utf-8")
    assert {p.name: p.read_bytes() for p in (dest / "figures").iterdir()} == figs
    prov = json.loads((dest / "provenance.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in prov.items() if k != "rerendered"} == \
        {k: v for k, v in prov_before.items() if k != "rerendered"}
    assert "--rerender" in prov["rerendered"]["command"] and "dirty" in prov["rerendered"]["git"]
    assert not list(dest.glob(".*.tmp"))

    # a second pass finds nothing to change and writes nothing
    res = cli("reproduce", "--rerender", "--section", "all", "--scale", "ci", "--store-to", str(tmp_path))
    assert res.returncode == 0 and json.loads(res.stdout)["rerendered"]["headline"]["changed"] == []


def test_rerender_of_nothing_stored_is_exit_2(tmp_path):
    res = cli("reproduce", "--rerender", "--section", "eta", "--scale", "full", "--store-to", str(tmp_path))
    assert res.returncode == 2 and res.stderr.startswith("Error:") and "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "full" / "eta").mkdir(parents=True)
    (tmp_path / "full" / "eta" / "summary.json").write_text('{"section": "relu", "scale": {"name": "full"}}')
    res = cli("reproduce", "--rerender", "--section", "eta", "--scale", "full", "--store-to", str(tmp_path))
    assert res.returncode == 2 and "not 'eta'" in res.stderr


def test_rerender_with_plan_or_store_is_exit_2(tmp_path):
    for flag in ("--plan", "--store"):
        res = cli("reproduce", "--rerender", flag, "--scale", "ci", "--store-to", str(tmp_path))
        assert res.returncode == 2 and "cannot be combined" in res.stderr and "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_summary_stored_before_its_section_module_is_refused_not_rendered():
    from tianref.errors import InputError
    old = {"section": "muon", "scale": {"name": "full"}, "analysis": {"claims": []}}
    with pytest.raises(InputError, match="predates its section module"):
        rerender_doc(old, rp.load_published())
    seed_old = {"section": "clocks", "scale": {"name": "full"}, "clocks": {}, "claims": [["a", "b", "agrees"]]}
    assert predates_section_module(seed_old)
