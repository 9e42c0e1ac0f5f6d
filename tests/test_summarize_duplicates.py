"""Duplicate run folders (the same run copied or run twice) are counted once by summarize and plot, with
one warning line on stderr naming the folders; every per-run row names its folder.

The answer is known independently: the tree with a copy must summarise exactly as the tree without it.
"""
import json
import shutil

from click.testing import CliRunner

from tianref.analysis import plots
from tianref.analysis.records import read_tree
from tianref.analysis.summarize import summarize, to_json, to_markdown
from tianref.cli.analysis import plot_cmd, summarize_cmd

from test_summarize import BASE_CONFIG, known_columns, write_run


def _identity(d, name=None, init="seed"):
    """config.json's identity block with the fingerprint its settings give (summarize checks it; ``name``
    only tells the call sites' runs apart)."""
    from tianref import identity
    from tianref.config import TrainConfig, validate
    p = d / "config.json"
    meta = json.loads(p.read_text())
    F = identity.fingerprint(validate(TrainConfig.from_dict(meta["config"]), read_files=False), init)
    meta["identity"] = {"scheme": 1, "fingerprint": F, "init": init, "split": "s"}
    p.write_text(json.dumps(meta))


def _tree(root):
    for grok, eta, name in ((True, 2e-4, "eta0.0002"), (False, 0.0, "eta0")):
        for s in range(3):
            d = write_run(root / "sweep" / f"{name}_seed{s}", dict(BASE_CONFIG, eta=eta, seed=s),
                          known_columns(s, grok))
            _identity(d, f"F-{eta}-{s}")
    return root


def _stats(summary):
    """The per-condition counts and statistics (through strict JSON: NaN becomes null, comparable)."""
    return json.loads(to_json([(c["label"], c["n"], c["seeds"], c["stats"]) for c in summary["conditions"]]))


def test_a_copied_run_counts_once_and_is_named(tmp_path):
    clean = _tree(tmp_path / "clean")
    dup = _tree(tmp_path / "dup")
    shutil.copytree(dup / "sweep" / "eta0.0002_seed1", dup / "again" / "seed1_copy")
    s_clean, s_dup = summarize(read_tree(clean), root=clean), summarize(read_tree(dup), root=dup)
    assert _stats(s_dup) == _stats(s_clean)                     # n = 3 and the same statistics
    assert s_dup["n_runs"] == 6
    assert s_dup["duplicates"] == [{"kept": "again/seed1_copy", "dropped": ["sweep/eta0.0002_seed1"],
                                    "match": "fingerprint"}]
    folders = [r["folder"] for c in s_dup["conditions"] for r in c["runs"]]
    assert "again/seed1_copy" in folders and "sweep/eta0.0002_seed1" not in folders
    assert "sweep/eta0_seed2" in folders
    md = to_markdown(s_dup)
    assert "| eta=0.0002 | 1 | again/seed1_copy |" in md            # the per-run table names the folder
    assert "left out: sweep/eta0.0002_seed1 (same fingerprint)" in md


def test_same_seed_but_another_init_is_not_a_duplicate(tmp_path):
    root = tmp_path / "t"
    for name, init in (("a", "seed"), ("b", "0f" * 32)):          # b was started from --init-from arrays
        write_run(root / name, dict(BASE_CONFIG), known_columns(0, True))
        _identity(root / name, f"F-{name}", init)
    s = summarize(read_tree(root))
    assert s["duplicates"] == []
    # nor a seed replicate: a run from --init-from arrays is a condition of its own, labelled by its source
    assert sorted((c["label"], c["n"]) for c in s["conditions"]) == [("eta=0.0002 init=file 0f0f0f0f0f0f", 1),
                                                                     ("eta=0.0002 init=seed", 1)]
    # without identities (runs stored before them), the same condition and seed is the same run
    root2 = tmp_path / "old"
    for name in ("a", "b"):
        write_run(root2 / name, dict(BASE_CONFIG), known_columns(0, True))
    s2 = summarize(read_tree(root2))
    assert s2["conditions"][0]["n"] == 1
    assert s2["duplicates"] == [{"kept": "a", "dropped": ["b"], "match": "condition and seed"}]


def test_runs_from_one_init_file_that_differ_only_by_seed_are_one_trajectory(tmp_path):
    """From an --init-from file the weights and split are the file's and the seed draws only the
    independence proxy's pairs: two such runs with seeds 0 and 1 are one run (counted once, named), a
    third from another file is a run of its own."""
    root = tmp_path / "t"
    for name, seed, init in (("f0", 0, "0f" * 32), ("f1", 1, "0f" * 32), ("g0", 0, "1e" * 32)):
        write_run(root / name, dict(BASE_CONFIG, seed=seed), known_columns(0, True))
        _identity(root / name, f"F-{name}", init)
    s = summarize(read_tree(root))
    assert s["duplicates"] == [{"kept": "f0", "dropped": ["f1"], "match": "condition and init file"}]
    assert sorted((c["label"], c["n"]) for c in s["conditions"]) == [("eta=0.0002 init=file 0f0f0f0f0f0f", 1),
                                                                     ("eta=0.0002 init=file 1e1e1e1e1e1e", 1)]


def test_cli_warns_once_on_stderr(tmp_path, monkeypatch):
    root = _tree(tmp_path / "dup")
    shutil.copytree(root / "sweep" / "eta0_seed0", root / "sweep" / "eta0_seed0_rerun")
    res = CliRunner().invoke(summarize_cmd, [str(root), "--json", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    warn = [ln for ln in res.stderr.splitlines() if "duplicate" in ln]
    assert warn == ["summarize: warning: 1 duplicate run folder(s) counted once: sweep/eta0_seed0 = "
                    "sweep/eta0_seed0_rerun (same fingerprint)"]
    data = json.loads((tmp_path / "s.json").read_text())
    assert [c["n"] for c in data["conditions"]] == [3, 3]
    seen = {}

    def fake_figures(records, *a, **k):
        seen["records"] = records
        return {}, []
    monkeypatch.setattr(plots, "figures_from_runs", fake_figures)
    res = CliRunner().invoke(plot_cmd, [str(root), "--out", str(tmp_path / "fig")])
    assert [ln for ln in res.stderr.splitlines() if "duplicate" in ln] == [warn[0].replace("summarize:", "plot:")]
    assert len(seen["records"]) == 6


def test_the_copy_with_the_most_rows_is_kept(tmp_path):
    """A rerun stopped early beside the full run (same fingerprint): the full one is kept, even though the
    short copy's folder sorts first, and the statistics equal those of the tree without the short copy."""
    clean = _tree(tmp_path / "clean")
    dup = _tree(tmp_path / "dup")
    src = dup / "sweep" / "eta0.0002_seed1"
    short = dup / "aa_short"
    shutil.copytree(src, short)
    lines = (short / "metrics.jsonl").read_text().splitlines()
    (short / "metrics.jsonl").write_text("\n".join(lines[:len(lines) // 2]) + "\n")
    s_dup = summarize(read_tree(dup), root=dup)
    assert s_dup["duplicates"] == [{"kept": "sweep/eta0.0002_seed1", "dropped": ["aa_short"],
                                    "match": "fingerprint"}]
    assert _stats(s_dup) == _stats(summarize(read_tree(clean), root=clean))


def test_duplicates_line_counts_every_dropped_folder():
    """Two copies dropped for one run and one for another: three folders counted once."""
    from tianref.analysis.conditions import duplicates_line
    dups = [{"kept": "a", "dropped": ["a2", "a3"], "match": "fingerprint"},
            {"kept": "b", "dropped": ["b2"], "match": "condition and seed"}]
    assert duplicates_line(dups) == ("warning: 3 duplicate run folder(s) counted once: a = a2, a3 (same "
                                     "fingerprint); b = b2 (same condition and seed)")
    assert duplicates_line([]) is None
    many = [{"kept": f"r{i}", "dropped": [f"c/r{i}"], "match": "fingerprint"} for i in range(40)]
    line = duplicates_line(many)                       # a tree copied into itself: every run twice
    assert line.startswith("warning: 40 duplicate run folder(s) counted once: r0 = c/r0 (same fingerprint); r1")
    assert "r3 =" not in line and line.endswith("; and 37 more run(s) (summarize --json lists every one under "
                                                "'duplicates')") and len(line) < 300


def test_a_folder_outside_the_root_is_named_by_itself(tmp_path):
    """run_folder names a run relative to the root it lies under; one outside the root (a relative path
    would start with '..') and the root itself are named by the folder's own name."""
    from tianref.analysis.conditions import run_folder
    assert run_folder(tmp_path / "sweep" / "r1", tmp_path) == "sweep/r1"
    assert run_folder(tmp_path / "other" / "r1", tmp_path / "sweep") == "r1"
    assert run_folder(tmp_path / "sweep", tmp_path / "sweep") == "sweep"


def test_two_real_runs_from_one_init_file_at_two_seeds_are_one_trajectory(tmp_path):
    """The premise of counting them once, on real runs: from one --init-from file, seeds 0 and 1 give W and V
    bit for bit equal at the end and every logged key equal but the independence proxy's two (its pairs are
    the seed's draw); sweep warns when asked for several seeds with --init-from."""
    import numpy as np
    from cli_checks import cli
    base = ["--M", "7", "--K", "16", "--windows", "3", "--lr", "1e-2"]
    assert cli(["train", *base, "--epochs", "0", "--out", str(tmp_path / "i")]).exit_code == 0
    init = str(tmp_path / "i" / "checkpoints" / "final.npz")
    for s in (0, 1):
        r = cli(["train", "--init-from", init, "--eta", "2e-3", "--epochs", "6", "--windows", "3", "--lr", "1e-2",
                 "--seed", str(s), "--out", str(tmp_path / f"r{s}")])
        assert r.exit_code == 0, r.output
    a, b = (np.load(tmp_path / f"r{s}" / "checkpoints" / "final.npz") for s in (0, 1))
    assert np.array_equal(a["W"], b["W"]) and np.array_equal(a["V"], b["V"])
    rows = [[json.loads(line) for line in (tmp_path / f"r{s}" / "metrics.jsonl").read_text().splitlines()]
            for s in (0, 1)]
    proxy = {"indep_cos_med", "indep_cos_p95"}
    assert [{k: v for k, v in r.items() if k not in proxy} for r in rows[0]] == \
           [{k: v for k, v in r.items() if k not in proxy} for r in rows[1]]
    assert any(r0[k] != r1[k] for r0, r1 in zip(*rows) for k in proxy)       # the seed's own draw
    r = cli(["sweep", str(tmp_path / "sw"), "--eta", "2e-3", "--seeds", "0-1", "--epochs", "2", "--windows", "3",
             "--M", "7", "--K", "16", "--plan", "--", "--init-from", init])
    assert r.exit_code == 0, r.output
    assert "with --init-from the seed draws only the independence proxy's pairs" in r.stderr
