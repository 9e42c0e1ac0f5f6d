"""Every registered section, end to end at the smoke scale in a temporary root: it follows the protocol,
its summary.json holds JSON claims records, its report.md has the one claims table with the five columns,
every rule is in RULES, every source kind known, every verdict in the vocabulary and the one its rule's
outcome gives ("agrees" only with the source's own definition), and a re-render of the stored copy
changes nothing.

The sections are found through the registry (``sections.REGISTRY``), so a new module there is tested
here without being named. The smoke scale (``protocols.SCALES["smoke"]``: M = 11, K = 32, one seed per
condition, ~30 epochs) checks the code, not the model.
"""
import json

import pytest

from tianref.experiments import protocols
from tianref.experiments.reproduce.claims import RULES, SOURCE_KINDS, VERDICTS, claims_markdown, verdict_of
from tianref.experiments.reproduce.pipeline import reproduce_section
from tianref.experiments.reproduce.rerender import rerender_section
from tianref.experiments.reproduce.section import Section
from tianref.experiments.reproduce.sections import REGISTRY

SMOKE = protocols.SCALES["smoke"]
COLUMNS = "| claim | source | ours | rule | verdict |"
HEADER = ("section", "scale", "command", "n_runs", "runs", "seeds", "epochs", "setup", "notes", "missing_runs",
          "figures", "claims")


def check_claims(claims, report: str, reduced: bool = False):
    """The claims records of a summary and the one claims table of its report (module docstring);
    ``reduced``: run at a scale that is not the sources' own, so no claim of an outside source (any kind
    but "ours") is judged as if measured with the source's own definition and setup."""
    assert isinstance(claims, list)
    for c in claims:
        assert not (reduced and c["source"]["kind"] != "ours" and c["rule"] != "info" and c["same_definition"]), c
        assert set(c) >= {"claim", "source", "source_text", "ours", "rule", "outcome", "same_definition",
                          "difference", "verdict"}, c
        assert c["rule"] in RULES and c["source"]["kind"] in SOURCE_KINDS, c
        assert c["verdict"].split(" (")[0] in VERDICTS, c
        assert c["verdict"] == verdict_of(c["outcome"], c["same_definition"], c["difference"]), c
        assert c["verdict"] != "agrees" or c["same_definition"], c
        assert c["same_definition"] or c["difference"], c
    assert report.count(COLUMNS) == 1
    table = claims_markdown(claims)
    start = report.splitlines().index(COLUMNS)
    assert report.splitlines()[start:start + len(table)] == table      # every claim, in order


def test_check_claims_can_fail():
    """The checker itself rejects an 'agrees' measured with another definition and an unknown rule."""
    good = {"claim": "c", "source": {"kind": "paper", "ref": "T3", "quote": ""}, "source_text": "paper: T3",
            "ours": "1", "rule": "within-range", "outcome": "pass", "same_definition": True, "difference": "",
            "verdict": "agrees", "note": ""}
    report = "\n".join(claims_markdown([good])) + "\n"
    check_claims([good], report)
    for bad in (dict(good, same_definition=False, difference="x"), dict(good, rule="nearly"),
                dict(good, source=dict(good["source"], kind="blog"))):
        with pytest.raises(AssertionError):
            check_claims([bad], "\n".join(claims_markdown([bad])) + "\n")
    with pytest.raises(AssertionError):                       # the paper's own setup at a reduced scale
        check_claims([good], report, reduced=True)


@pytest.fixture(scope="module")
def smoke_root(tmp_path_factory):
    return tmp_path_factory.mktemp("smoke")


@pytest.mark.parametrize("name", list(REGISTRY))
def test_section_end_to_end_at_the_smoke_scale(smoke_root, name):
    section = REGISTRY[name]
    assert isinstance(section, Section) and section.name == name and section.title
    assert section.runs(SMOKE), "a section has runs"
    root, store = smoke_root / "runs", smoke_root / "store"
    out = reproduce_section(name, root, SMOKE, n_jobs=2, store_to=store, command="test")
    d = root / name
    doc = json.loads((d / "summary.json").read_text(encoding="utf-8"))
    report = (d / "report.md").read_text(encoding="utf-8")
    assert all(k in doc for k in HEADER) and doc["section"] == name and doc["scale"]["name"] == "smoke"
    assert doc["n_runs"] == out["runs"] == len(doc["runs"]) and "comparison" not in doc
    assert doc["figures"] and all((d / "figures" / f).is_file() for f in doc["figures"])
    check_claims(doc["claims"], report, reduced=True)
    assert out["flagged"] == sum(c["verdict"] in ("differs", "disagrees") for c in doc["claims"])
    # the claims and report are a pure function of the stored summary: a re-render changes nothing
    stored = store / "smoke" / name
    assert (stored / "report.md").read_text(encoding="utf-8") == report
    assert rerender_section(store, "smoke", name, command="test")["changed"] == []
