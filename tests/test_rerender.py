"""``reproduce --rerender``: stored reports are current, and re-rendering touches no measured number."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tianref.experiments import reproduce as rp
from tianref.experiments.reproduce.rerender import measured_part, rerender_doc, rerender_section

REPO = Path(__file__).resolve().parents[1]
STORED = sorted(p.parent for p in rp.STORE_ROOT.glob("*/*/summary.json"))


def cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, str(REPO / "cli.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def _has_claims_records(doc) -> bool:
    return "comparison" not in doc and all(isinstance(c, dict) and "rule" in c for c in doc.get("claims", [None]))


@pytest.mark.skipif(not STORED, reason="no stored section")
@pytest.mark.parametrize("d", STORED, ids=[f"{d.parent.name}/{d.name}" for d in STORED])
def test_stored_report_is_the_rendering_of_its_summary(d):
    """A stored report.md and its claims are exactly what the current code renders from the stored
    summary; otherwise run the re-render command in the message (it changes no measured number)."""
    doc = json.loads((d / "summary.json").read_text(encoding="utf-8"))
    hint = f"run: python cli.py reproduce --rerender --section {d.name} --scale {d.parent.name}"
    if not _has_claims_records(doc):
        pytest.skip(f"stored before the claims records (Claim.to_dict) existed; {hint}")
    new, md = rerender_doc(doc, rp.load_published())
    assert new == doc, hint
    assert md == (d / "report.md").read_text(encoding="utf-8"), hint


def test_rerender_rewrites_only_the_claims_and_report(tmp_path):
    src = rp.STORE_ROOT / "ci" / "headline"
    if not (src / "summary.json").is_file():
        pytest.skip("no stored ci headline")
    dest = tmp_path / "ci" / "headline"
    shutil.copytree(src, dest)
    doc = json.loads((dest / "summary.json").read_text(encoding="utf-8"))
    stale = json.loads(json.dumps(doc))
    for c in stale["claims"]:                               # an out-of-date citation and a wrong verdict
        c["source_text"] = "an old citation"
    stale["claims"][0]["verdict"] = "agrees"
    stale["comparison"] = [{"quantity": "a row of the former comparison"}]
    (dest / "summary.json").write_text(json.dumps(stale), encoding="utf-8")
    (dest / "report.md").write_text("old report\n", encoding="utf-8")
    figs = {p.name: p.read_bytes() for p in (dest / "figures").iterdir()}
    prov_before = json.loads((dest / "provenance.json").read_text(encoding="utf-8"))

    res = cli("reproduce", "--rerender", "--section", "headline", "--scale", "ci", "--store-to", str(tmp_path))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert set(out["rerendered"]["headline"]["changed"]) == {"summary.json", "report.md"}
    new = json.loads((dest / "summary.json").read_text(encoding="utf-8"))
    assert measured_part(new) == measured_part(doc) and "comparison" not in new   # measured keys unchanged
    assert new["claims"] == doc["claims"]                          # rebuilt from the numbers alone
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


def test_rerender_refuses_to_change_a_measured_key(tmp_path, monkeypatch):
    """A section whose claims would touch a measured number is stopped before anything is written."""
    src = rp.STORE_ROOT / "ci" / "headline"
    if not (src / "summary.json").is_file():
        pytest.skip("no stored ci headline")
    dest = tmp_path / "ci" / "headline"
    shutil.copytree(src, dest)
    (dest / "report.md").write_text("old report\n", encoding="utf-8")
    before = {p.name: p.read_bytes() for p in dest.iterdir() if p.is_file()}
    section = rp.REGISTRY["headline"]
    real = type(section).claims

    def meddling(self, doc, pub):
        doc["seeds"] = [99]                                   # a measured key moves
        return real(self, doc, pub)
    monkeypatch.setattr(type(section), "claims", meddling)
    with pytest.raises(AssertionError, match="measured key"):
        rerender_section(tmp_path, "ci", "headline")
    assert {p.name: p.read_bytes() for p in dest.iterdir() if p.is_file()} == before


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
