"""reproduce --store replaces a stored section in two renames (the old copy aside, the new one in): a stop
signal between them left no copy in place (the old one only in .<section>.old-*, the new one deleted), and
the folders of a store that was killed stayed for good. Now a stop acts once the new copy is in place, and
the next store removes the leftovers of stores that are gone."""
import json
import os
import signal

import pytest

from tianref.experiments.reproduce import store


def _section(d, tag):
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({"tag": tag}))
    (d / "report.md").write_text(f"# {tag}\n")
    return d


def test_a_stop_between_the_two_renames_acts_once_the_new_copy_is_in_place(tmp_path, monkeypatch):
    dest_root = tmp_path / "store"
    store.store_section(_section(tmp_path / "a", "old"), dest_root, "smoke", "headline", {"p": 1})
    real = os.replace
    calls = []

    def replace(a, b):                                   # SIGINT right after the old copy moved aside
        real(a, b)
        calls.append(b)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.setattr(store.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        store.store_section(_section(tmp_path / "b", "new"), dest_root, "smoke", "headline", {"p": 2})
    monkeypatch.setattr(store.os, "replace", real)
    assert len(calls) == 2                               # both renames done before the stop acted
    placed = dest_root / "smoke" / "headline"
    assert json.loads((placed / "summary.json").read_text()) == {"tag": "new"}
    assert json.loads((placed / "provenance.json").read_text()) == {"p": 2}


def test_the_next_store_removes_the_leftovers_of_stores_that_are_gone(tmp_path):
    parent = tmp_path / "store" / "smoke"
    gone = [parent / ".headline.new-999999999-abc", parent / ".headline.old-999999999-def",
            parent / ".headline.new-bsxvny4v"]           # the last: a name without a PID (an older version's)
    for p in gone:
        p.mkdir(parents=True)
        (p / "summary.json").write_text("{}")
    other = parent / ".eta.new-999999999-abc"            # another section's: not this store's business
    other.mkdir()
    store.store_section(_section(tmp_path / "a", "x"), tmp_path / "store", "smoke", "headline", {})
    assert sorted(p.name for p in parent.iterdir()) == [".eta.new-999999999-abc", "headline"]


def test_a_store_killed_between_its_renames_gets_its_old_copy_back_before_anything_else(tmp_path):
    """The state a kill between the two renames leaves: no <section>/, the previous copy in .<section>.old-*.
    The cleanup deleted that copy, the only one left, before the new store had copied anything (and the new
    store can still fail). The newest old copy is put back first."""
    dest_root = tmp_path / "store"
    store.store_section(_section(tmp_path / "a", "old"), dest_root, "smoke", "headline", {})
    parent = dest_root / "smoke"
    os.rename(parent / "headline", parent / ".headline.old-999999999-abc")
    bad = _section(tmp_path / "b", "new")
    (bad / "report.md").unlink()                          # this store fails while copying
    with pytest.raises(OSError):
        store.store_section(bad, dest_root, "smoke", "headline", {})
    assert sorted(p.name for p in parent.iterdir()) == ["headline"]
    assert json.loads((parent / "headline" / "summary.json").read_text()) == {"tag": "old"}
