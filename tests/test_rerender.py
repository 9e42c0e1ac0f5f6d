"""``reproduce --rerender``: stored reports are current, and re-rendering touches no measured number."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import numpy as np

from tianref.analysis import detectors as det
from tianref.analysis import event_flags as ef
from tianref.analysis.records import read_tree
from tianref.analysis.summarize import summarize, to_json
from tianref.experiments import reproduce as rp
from tianref.experiments.reproduce.rederive import rederive_doc
from tianref.experiments.reproduce.rerender import measured_part, rerender_doc, rerender_section

from test_summarize import BASE_CONFIG, known_columns, write_run

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


def _copy_of_stored_ci_headline(tmp_path):
    """(stored folder, its copy under tmp_path, the copy's summary document) of the ci headline section."""
    src = rp.STORE_ROOT / "ci" / "headline"
    if not (src / "summary.json").is_file():
        pytest.skip("no stored ci headline")
    dest = tmp_path / "ci" / "headline"
    shutil.copytree(src, dest)
    return src, dest, json.loads((dest / "summary.json").read_text(encoding="utf-8"))


def test_rerender_rewrites_only_the_claims_and_report(tmp_path):
    src, dest, doc = _copy_of_stored_ci_headline(tmp_path)
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
    # a store outside the checkout: the checkout's git state says nothing of the summary it read
    assert prov["rerendered"]["git"]["store_outside_checkout"] is True
    assert "outside the source checkout" in prov["rerendered"]["note"]
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


@pytest.mark.parametrize("prov", ["{bad", "[1, 2]"])
def test_rerender_with_an_unreadable_provenance_is_one_line_and_writes_nothing(tmp_path, prov):
    """A provenance.json that is not a JSON object: exit 2 in one line, every file as it was (it was a
    traceback, exit 1, after report.md had been rewritten without the record of it)."""
    src = rp.STORE_ROOT / "ci" / "headline"
    if not (src / "summary.json").is_file():
        pytest.skip("no stored ci headline")
    dest = tmp_path / "ci" / "headline"
    shutil.copytree(src, dest)
    (dest / "report.md").write_text("old report\n", encoding="utf-8")          # so that it would change
    (dest / "provenance.json").write_text(prov, encoding="utf-8")
    before = {p.name: p.read_bytes() for p in dest.iterdir() if p.is_file()}
    res = cli("reproduce", "--rerender", "--section", "headline", "--scale", "ci", "--store-to", str(tmp_path))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "provenance.json" in res.stderr, res.stderr
    assert {p.name: p.read_bytes() for p in dest.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("spoil", ["report-is-a-folder", "no-provenance"])
def test_rerender_that_cannot_write_every_file_or_its_record_writes_none(tmp_path, spoil):
    """report.md a folder: summary.json was rewritten, then the write of report.md failed (exit 1, the
    section half re-rendered, no record); provenance.json missing: it re-rendered without any record. Both
    are refused in one line (exit 2) before anything is written."""
    src = rp.STORE_ROOT / "ci" / "headline"
    if not (src / "summary.json").is_file():
        pytest.skip("no stored ci headline")
    dest = tmp_path / "ci" / "headline"
    shutil.copytree(src, dest)
    doc = json.loads((dest / "summary.json").read_text())
    doc["claims"] = []                                                   # so that it would change
    (dest / "summary.json").write_text(json.dumps(doc), encoding="utf-8")
    if spoil == "report-is-a-folder":
        (dest / "report.md").unlink()
        (dest / "report.md").mkdir()
    else:
        (dest / "provenance.json").unlink()
    before = {p.name: p.read_bytes() for p in dest.iterdir() if p.is_file()}
    res = cli("reproduce", "--rerender", "--section", "headline", "--scale", "ci", "--store-to", str(tmp_path))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "nothing was re-rendered" in res.stderr, \
        res.stderr
    assert ("not a regular file" if spoil == "report-is-a-folder" else "provenance.json: missing") in res.stderr
    assert {p.name: p.read_bytes() for p in dest.iterdir() if p.is_file()} == before


def test_rerender_of_all_sections_writes_none_when_one_is_bad(tmp_path):
    """--section all: headline re-renders cleanly, ridge's provenance.json is broken. It rewrote headline
    first and then refused ('nothing was re-rendered'); every section is read and checked before any
    is written."""
    for name in ("headline", "ridge"):
        src = rp.STORE_ROOT / "ci" / name
        if not (src / "summary.json").is_file():
            pytest.skip(f"no stored ci {name}")
        shutil.copytree(src, tmp_path / "ci" / name)
        (tmp_path / "ci" / name / "report.md").write_text("old report\n", encoding="utf-8")
    (tmp_path / "ci" / "ridge" / "provenance.json").write_text("[1]", encoding="utf-8")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    res = cli("reproduce", "--rerender", "--section", "all", "--scale", "ci", "--store-to", str(tmp_path))
    assert res.returncode == 2 and "ridge" in res.stderr and res.stdout == "", res.stderr
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_rerender_with_root_is_refused_not_ignored(tmp_path):
    """--rerender works on the store; a --root given with it was silently ignored (a user meaning to
    re-render the sections of a run tree got the store's instead). One line, exit 2, nothing written."""
    res = cli("reproduce", "--rerender", "--section", "headline", "--scale", "ci", "--root", str(tmp_path / "r"),
              "--store-to", str(tmp_path / "st"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "drop --root" in res.stderr, res.stderr
    assert list(tmp_path.iterdir()) == []


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


# --- derived keys: the leads and lags of a section stored under an older rule ---------------------

def _mixed_tree(root):
    """Grok seeds 0, 1: rho_tian >= 0.075 from row 0 and s1/s2 = 150 from its first row (their lead_rho and
    lag_r12_ge100_t05 undefined); seed 2 an ordinary run (its leads defined); controls never grok."""
    for s in range(3):
        cols = known_columns(s, True)
        if s < 2:
            cols["rho_tian"] = np.full(401, 0.1)
            cols["W_sigma"][:, 1] = cols["W_sigma"][:, 0] / 150.0
            cols["W_sigma"][:, 2] = cols["W_sigma"][:, 1] / cols["W_gap23"]
        write_run(root / f"grok{s}", dict(BASE_CONFIG, seed=s), cols)
        write_run(root / f"ctrl{s}", dict(BASE_CONFIG, eta=0.0, seed=s), known_columns(s, False))
    return root


def _old_rule(summary):
    """The summary as stored before the first-row rule: no flag keys, every lead the raw difference of its
    events, its statistics and lead_rho_of_medians over all runs (the older summarize)."""
    old = json.loads(to_json(summary))
    for c in old["conditions"]:
        for k in ("fire_without_grok", "n_from_start", "n_undefined"):
            del c["stats"][k]
        for r in c["runs"]:
            for k in ("from_start", "undefined", "grokked", "fire_without_grok"):
                del r[k]
            for lead, (a, b) in ef.LEADS.items():
                r[lead] = None if r[a] is None or r[b] is None else r[a] - r[b]
        for lead in ef.LEADS:
            vals = [np.nan if r[lead] is None else r[lead] for r in c["runs"]]
            c["stats"][lead] = json.loads(to_json(det.across_runs(vals)))
        both = [r for r in c["runs"] if r["t05"] is not None and r["rho_fire"] is not None]
        c["stats"]["lead_rho_of_medians"] = det.median_diff([r["t05"] for r in both],
                                                            [r["rho_fire"] for r in both]) if both else None
    return old


def test_rederive_recomputes_an_old_rule_lead_as_summarize_gives_it(tmp_path):
    """A stored summary whose leads were taken from events at their first row gets, from its stored events
    alone, exactly the leads, lags, statistics and lead_rho_of_medians of a fresh summarize of the same runs;
    nothing else moves."""
    fresh = json.loads(to_json(summarize(read_tree(_mixed_tree(tmp_path / "t")))))
    old = _old_rule(fresh)
    (g_old,) = [c for c in old["conditions"] if c["config"]["eta"]]
    assert g_old["runs"][0]["lead_rho"] == 99.0 and g_old["stats"]["lead_rho"]["n_fired"] == 3   # the old rule
    doc = {"section": "headline", "views": [{"name": "v", "summary": old}]}
    new, changes = rederive_doc(doc)
    assert doc["views"][0]["summary"] == old                                     # the input is not modified
    derived = (*ef.LEADS, "lead_rho_of_medians")
    for c_new, c_fresh, c_old in zip(new["views"][0]["summary"]["conditions"], fresh["conditions"],
                                     old["conditions"]):
        for r_new, r_fresh, r_old in zip(c_new["runs"], c_fresh["runs"], c_old["runs"]):
            assert {k: r_new[k] for k in ef.LEADS} == {k: r_fresh[k] for k in ef.LEADS}
            assert {k: v for k, v in r_new.items() if k not in derived} == \
                {k: v for k, v in r_old.items() if k not in derived}             # measured keys as stored
        assert {k: c_new["stats"][k] for k in derived} == {k: c_fresh["stats"][k] for k in derived}
    (g,) = [c for c in new["views"][0]["summary"]["conditions"] if c["config"]["eta"]]
    assert [r["lead_rho"] for r in g["runs"]] == [None, None, 108.0 - 18.0]      # T05[2] - RHO[2]
    assert g["stats"]["lead_rho"]["n_fired"] == 1 and g["stats"]["lead_rho_of_medians"] == 90.0
    assert {c["at"] for c in changes} >= {"views[0].summary.conditions[0].runs[0].lead_rho",
                                          "views[0].summary.conditions[0].stats.lead_rho_of_medians"}
    assert rederive_doc(new)[1] == []                                            # idempotent


def test_rerender_recomputes_stored_leads_and_records_it(tmp_path):
    """The command on a stored section whose leads follow the old rule: summary.json gets the leads of the
    current rule (those a fresh summarize stored), report.md is unchanged, provenance names the command."""
    src, dest, doc = _copy_of_stored_ci_headline(tmp_path)
    stale = json.loads(json.dumps(doc))
    n_old = 0
    for c in stale["views"][0]["summary"]["conditions"]:
        for r in c["runs"]:
            for lead, (a, b) in ef.LEADS.items():
                if lead in r["undefined"] and r[a] is not None and r[b] is not None:
                    r[lead], n_old = r[a] - r[b], n_old + 1                         # the old rule's number
        c["stats"]["lead_rho_of_medians"] = 12345.0
    assert n_old                                                                 # the stored runs have some
    (dest / "summary.json").write_text(to_json(stale), encoding="utf-8")
    res = cli("reproduce", "--rerender", "--section", "headline", "--scale", "ci", "--store-to", str(tmp_path))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])["rerendered"]["headline"]
    assert out["changed"] == ["summary.json"] and len(out["derived"]) == n_old + 2
    assert json.loads((dest / "summary.json").read_text(encoding="utf-8")) == doc
    assert (dest / "report.md").read_bytes() == (src / "report.md").read_bytes()
    prov = json.loads((dest / "provenance.json").read_text(encoding="utf-8"))
    assert "--rerender" in prov["rederived"]["command"] and len(prov["rederived"]["changed"]) == n_old + 2
    assert {c["new"] for c in prov["rederived"]["changed"] if c["old"] == 12345.0} == {None}


def test_rederive_recomputes_an_old_rule_run_stats_lead(tmp_path):
    """Per-run rows of run_stats (scaling, critical, muon, ridge) stored before rho_from_start: a lead taken
    from a rho fire at row 0 becomes what run_stats gives for the same run (None); a defined one stays."""
    from tianref.analysis.records import read_run
    from tianref.experiments.reproduce.runstats import run_stats
    cols = known_columns(0, True)
    cols["rho_tian"] = np.full(401, 0.1)                                  # fires at row 0
    started = run_stats(read_run(write_run(tmp_path / "a", dict(BASE_CONFIG), cols)))
    cols["rho_tian"][:17] = 0.06                                          # fires at row 17
    onset = run_stats(read_run(write_run(tmp_path / "b", dict(BASE_CONFIG, seed=1), cols)))
    fresh = json.loads(to_json([started, onset]))
    old = json.loads(to_json([started, onset]))
    for r in old:
        del r["rho_from_start"]
        r["lead"] = r["t05"] - r["rho_fire"]                              # the old rule: 99 - 0
    assert old[0]["lead"] == 99.0
    new, changes = rederive_doc({"section": "muon", "muon": {"per_run": old}})
    assert [r["lead"] for r in new["muon"]["per_run"]] == [r["lead"] for r in fresh] == [None, 99.0 - 17.0]
    assert changes == [{"at": "muon.per_run[0].lead", "old": 99.0, "new": None}]
    # scaling's table is derived from the same rows: its lead median by the current rule (the keys it has)
    table = [{"M": 71, "p": 0.4, "n": 2, "lead_med": 90.5}]                   # median(99, 82), the old rule
    new, _ = rederive_doc({"section": "scaling", "scaling": {"per_run": old, "table": table}},
                          rp.REGISTRY["scaling"])
    assert new["scaling"]["table"] == [{"M": 71, "p": 0.4, "n": 2, "lead_med": 82.0}]


def test_rederive_refuses_a_section_rule_that_moves_a_measured_key():
    """rederive_doc's guard: a section's own rederive that touches anything but a derived key (here the
    per-run t05 beside the lead it recomputes) raises before any document is returned. rerender_section's
    own check compares with rederive_doc's output, so it cannot see this."""
    class Meddling:
        def rederive(self, doc):
            for r in doc["muon"]["per_run"]:
                r["lead"], r["t05"] = 1.0, r["t05"] + 1
            return doc
    rows = [{"run": "a", "t05": 99.0, "rho_fire": 17, "rho_from_start": False, "lead": 82.0}]
    doc = {"section": "muon", "muon": {"per_run": rows}}
    assert rederive_doc(doc)[1] == []                                   # the rows are current
    with pytest.raises(AssertionError, match=r"measured key: muon\.per_run\[0\]\.t05"):
        rederive_doc(doc, Meddling())


def test_rederive_adds_no_lead_a_stored_row_lacks():
    """A summary stored with one lead only (rows of an older summarize): rederive recomputes that lead and
    adds none of the others, so the current document comes back unchanged."""
    run = {"seed": 0, "t05": 99.0, "rho_fire": 17.0, "lead_rho": 82.0, "from_start": [], "grokked": True,
           "fire_without_grok": []}
    summary = {"options": {"crossing": "first"},
               "conditions": [{"runs": [run], "stats": {"t05": {"median": 99.0}, "lead_rho": {"median": 82.0}}}]}
    doc = {"section": "headline", "views": [{"name": "v", "summary": summary}]}
    new, changes = rederive_doc(doc)
    assert new == doc and changes == []


def test_differences_names_added_keys_and_changed_list_lengths():
    """differences reports what the new document adds (a key, a list item) as a non-derived change, so
    rederive_doc's guard refuses it; a derived key's change is reported once with its whole value."""
    from tianref.experiments.reproduce.rederive import differences
    assert differences({"a": 1}, {"a": 1, "b": 2}) == [{"at": "b", "old": None, "new": 2, "derived": False}]
    assert differences({"x": [1, 2]}, {"x": [1, 2, 3]}) == [{"at": "x", "old": [1, 2], "new": [1, 2, 3],
                                                               "derived": False}]
    assert differences({"r": [{"lead": 1.0, "t05": 5}]}, {"r": [{"lead": None, "t05": 5}]}) == \
        [{"at": "r[0].lead", "old": 1.0, "new": None, "derived": True}]
    assert differences({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2}]}) == []


@pytest.mark.parametrize("edit", ["list", "scale-string", "nan"])
def test_a_hand_edited_stored_summary_is_refused_in_one_line(tmp_path, edit):
    """A stored summary.json edited by hand (not an object, a scale that is not an object, a NaN) is bad
    input, exit 2 in one line, and nothing is written; each gave a traceback."""
    _, dest, doc = _copy_of_stored_ci_headline(tmp_path)
    path = dest / "summary.json"
    if edit == "list":
        text = "[1]"
    elif edit == "scale-string":
        text = json.dumps(dict(doc, scale="x"))
    else:
        text = json.dumps(dict(doc, claims={"a": float("nan")}))
    path.write_text(text, encoding="utf-8")
    before = {p.name: p.read_bytes() for p in dest.iterdir() if p.is_file()}
    r = cli("reproduce", "--rerender", "--scale", "ci", "--section", "headline", "--store-to", str(tmp_path))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("Error:"), r.stderr
    assert "summary.json" in lines[0]
    assert {p.name: p.read_bytes() for p in dest.iterdir() if p.is_file()} == before
