"""summarize on runs that end before the late range does: the shortened range is named in the JSON
(``late_range_used``), in the Markdown heading and on stderr; a run that covers it says nothing."""
import json

import numpy as np
from click.testing import CliRunner

from tianref.analysis.records import read_tree
from tianref.analysis.summarize import Options, late_range_note, summarize, to_markdown
from tianref.cli.analysis import summarize_cmd
from tests.test_summarize import BASE_CONFIG, write_run


def _tree(tmp_path, epochs):
    """One run per E in ``epochs``: sigma2/sigma3 = 1 + t, so the late median over [lo, hi] is
    1 + (lo + hi) / 2 and shows which range was used."""
    for i, E in enumerate(epochs):
        t = np.arange(E + 1, dtype=float)
        cfg = dict(BASE_CONFIG, seed=i, epochs=E)
        write_run(tmp_path / f"r{i}", cfg, {"test_acc": np.zeros(E + 1), "W_gap23": 1 + t})
    return read_tree(tmp_path)


def test_short_run_uses_and_names_the_shortened_range(tmp_path):
    s = summarize(_tree(tmp_path, [300]), Options(late_lo=200, late_hi=400))
    run = s["conditions"][0]["runs"][0]
    assert run["late_range_used"] == [200, 300] and s["late_range_used"] == [200, 300]
    assert run["late"] == 1 + 250                                   # median of 1 + t over 200..300
    md = to_markdown(s)
    head = md.splitlines()[0]
    assert "200-300" in head and "shortened from 200-400" in head
    assert "late s2/s3 (200-300)" in md
    assert "end before the late range 200-400" in late_range_note(s)


def test_run_ending_before_the_range_has_none(tmp_path):
    s = summarize(_tree(tmp_path, [150]), Options(late_lo=200, late_hi=400))
    assert s["late_range_used"] is None and s["conditions"][0]["runs"][0]["late_range_used"] is None
    assert "not reached" in to_markdown(s).splitlines()[0]
    assert "no late range at all" in late_range_note(s)


def test_full_runs_say_nothing(tmp_path):
    s = summarize(_tree(tmp_path, [400, 450]), Options(late_lo=200, late_hi=400))
    assert s["late_range_used"] == [200, 400] and late_range_note(s) is None
    assert "shortened" not in to_markdown(s) and "not reached" not in to_markdown(s)


def test_cli_reports_on_stderr_and_json(tmp_path):
    _tree(tmp_path / "runs", [300, 400])
    res = CliRunner().invoke(summarize_cmd, [str(tmp_path / "runs"), "--json", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    err = res.stderr
    assert "1 of 2 run(s) end before the late range 200-400 does (last epoch 300)" in err
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["late_range_used"] == [200, 400]                     # the longer run covers it
    assert sorted(r["late_range_used"][1] for c in doc["conditions"] for r in c["runs"]) == [300, 400]


def test_run_ending_at_late_lo_uses_the_one_epoch_range(tmp_path):
    """A run whose last epoch is late_lo covers the range's first epoch only: [lo, lo], and its late median
    is sigma2/sigma3 at lo (1 + lo here), not None."""
    s = summarize(_tree(tmp_path, [200]), Options(late_lo=200, late_hi=400))
    run = s["conditions"][0]["runs"][0]
    assert run["late_range_used"] == [200, 200] and s["late_range_used"] == [200, 200]
    assert run["late"] == 1 + 200
