"""Reading runs back and the statistics across runs, on data built so that the plausible wrong rule
gives a different answer (every expected value is a literal worked out in the comment beside it)."""
import json

import numpy as np
import pytest

from tianref.analysis import detectors as det
from tianref.analysis.records import columns_from_rows, read_run, read_tree
from tianref.analysis.summarize import summarize
from tianref.errors import InputError
from tests.test_summarize import BASE_CONFIG, write_run


def test_the_last_of_two_rows_for_one_epoch_wins(tmp_path):
    """Rows in memory: of two rows for one epoch the later one counts. A log on disk never holds an
    epoch twice (--resume cuts it back to rows 0..r first), so one that does is refused, naming the line."""
    rows = [{"epoch": 0, "test_acc": 0.1, "W_sigma": [3.0, 2.0, 1.0]},
            {"epoch": 1, "test_acc": 0.2, "W_sigma": [3.0, 2.0, 1.0]},
            {"epoch": 1, "test_acc": 0.7, "W_sigma": [5.0, 4.0]},        # epoch 1 again
            {"epoch": 2, "test_acc": 0.9}]
    c = columns_from_rows(rows)
    assert list(c["test_acc"]) == [0.1, 0.7, 0.9]
    np.testing.assert_array_equal(c["W_sigma"][1], [5.0, 4.0, np.nan])   # the whole later list
    # the same through a file on disk
    d = tmp_path / "run"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"config": {"epochs": 2, "seed": 0}}))
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match="metrics.jsonl:3 holds epoch 1, expected 2"):
        read_run(d)


def test_across_runs_with_an_even_count_averages_the_two_middle_values():
    """numpy's median and linear percentiles (the paper's scripts use np.median / np.percentile):
    [1, 2, 3, 10] -> median (2 + 3)/2 = 2.5, not the lower (2) or upper (3) middle value;
    q25 at position 0.75 -> 1.75, q75 at position 2.25 -> 3 + 0.25·7 = 4.75."""
    s = det.across_runs([10.0, 1.0, np.nan, 3.0, 2.0])
    assert (s["n"], s["n_fired"]) == (5, 4)
    assert (s["median"], s["q25"], s["q75"], s["min"], s["max"]) == (2.5, 1.75, 4.75, 1.0, 10.0)


def test_late_separation_with_an_even_number_of_seeds():
    """median over 4 seeds of the per-run late values: grok (200, 300, 400, 1000) -> 350,
    control (1, 2, 3, 4) -> 2.5, ratio 140."""
    sep = det.late_separation([200.0, 1000.0, 300.0, 400.0], [4.0, 1.0, 3.0, 2.0])
    assert (sep["grok"], sep["control"]) == (350.0, 2.5)
    assert sep["ratio"] == 140.0


def _leads_tree(tmp_path):
    # per seed: t(test ≥ 0.5) and the ρ fire epoch, chosen so the two "lead" definitions differ
    t05, rho = (100, 120, 101), (10, 30, 25)
    root = tmp_path / "runs"
    E = 200
    t = np.arange(E + 1)
    for s in range(3):
        cols = {"test_acc": np.where(t < t05[s], 0.03, 0.6),
                "rho_tian": np.where(t < rho[s], 0.06, 0.1),
                "W_gap23": np.full(E + 1, 2.0)}
        write_run(root / f"seed{s}", dict(BASE_CONFIG, epochs=E, seed=s), cols)
    return root


def test_lead_is_the_median_of_per_run_leads_not_the_lead_of_medians(tmp_path):
    """Per run t05 − t_ρ = 90, 90, 76 -> median 90 (plot_two_stage.py); the difference of the
    medians is 101 − 25 = 76 (analyze_eta_sweep.py). Both are reported, under their own names."""
    s = summarize(read_tree(_leads_tree(tmp_path)))
    (c,) = s["conditions"]
    assert [r["lead_rho"] for r in c["runs"]] == [90.0, 90.0, 76.0]
    assert c["stats"]["lead_rho"]["median"] == 90.0
    assert c["stats"]["lead_rho_of_medians"] == 76.0


def test_paired_diff_and_median_diff_on_literals():
    t05, trho = [100.0, 120.0, 101.0], [10.0, 30.0, 25.0]
    assert list(det.paired_diff(t05, trho)) == [90.0, 90.0, 76.0]
    assert det.median_diff(t05, trho) == pytest.approx(76.0, abs=0)      # 101 − 25, exact in floats


def test_a_tree_of_links_to_runs_is_read_through_them_and_a_link_loop_ends(tmp_path):
    """A run reached through a link to a folder was left out without a word ('Summary of 1 runs'; a tree of
    links alone: 'no run directories'). Links are followed; a link back up the tree is walked once."""
    from tianref.analysis.records import list_run_dirs
    from tests.test_summarize import known_columns
    store, tree = tmp_path / "store", tmp_path / "tree"
    for s in range(2):
        write_run(store / f"r{s}", dict(BASE_CONFIG, seed=s), known_columns(s, True))
    tree.mkdir()
    (tree / "sub").mkdir()
    (tree / "sub" / "r0").symlink_to(store / "r0")
    (tree / "r1").symlink_to(store / "r1")
    (tree / "sub" / "up").symlink_to(tree)                   # a loop
    (tree / "sub" / "above").symlink_to(tmp_path)            # a link up the tree: it would walk store/ again
    (tree / "root").symlink_to("/")                          # ... or every run on the machine
    assert [p.relative_to(tree).as_posix() for p in list_run_dirs(tree)] == ["r1", "sub/r0"]
    assert len(read_tree(tree)) == 2


def test_a_run_whose_log_is_a_folder_is_refused_by_name_not_left_out(tmp_path):
    """metrics.jsonl turned into a folder: the run was skipped without a word ('1 of 1 run(s)' of a tree of
    two), while a FIFO or a link loop there was refused naming the run. It is refused, by name, too."""
    from tianref.analysis.records import list_run_dirs
    from tests.test_summarize import known_columns
    for s in range(2):
        write_run(tmp_path / f"r{s}", dict(BASE_CONFIG, seed=s), known_columns(s, True))
    (tmp_path / "r0" / "metrics.jsonl").unlink()
    (tmp_path / "r0" / "metrics.jsonl").mkdir()
    assert [p.name for p in list_run_dirs(tmp_path)] == ["r0", "r1"]
    with pytest.raises(InputError, match=r"r0: its metrics.jsonl is a folder, not a file"):
        read_tree(tmp_path)


def test_a_setting_no_number_depends_on_does_not_split_a_condition(tmp_path):
    """momentum without SGD and ridge_reg without the ridge top layer change no number of a run (train refuses
    them given alone now; runs made before may hold any value): seeds that differ only there are one
    condition (summarize listed 'eta=0.0002 momentum=0.5' beside 'momentum=0.9', splitting the statistics and
    the control pairing). With SGD, momentum is a condition key."""
    from tests.test_summarize import known_columns
    for s, extra in enumerate(({"momentum": 0.5}, {"momentum": 0.9}, {"ridge_reg": 0.5})):
        write_run(tmp_path / "a" / f"r{s}", dict(BASE_CONFIG, seed=s, **{"momentum": 0.9, "ridge_reg": 1e-3, **extra}),
                  known_columns(s, True))
    s = summarize(read_tree(tmp_path / "a"))
    assert [(c["label"], c["n"]) for c in s["conditions"]] == [("eta=0.0002", 3)]
    assert (s["conditions"][0]["config"]["momentum"], s["conditions"][0]["config"]["ridge_reg"]) == (0.9, 1e-3)
    for k, m in enumerate((0.5, 0.9)):
        write_run(tmp_path / "b" / f"r{k}", dict(BASE_CONFIG, seed=k, optimizer="sgd", momentum=m),
                  known_columns(k, True))
    s = summarize(read_tree(tmp_path / "b"))
    assert sorted(c["n"] for c in s["conditions"]) == [1, 1]
