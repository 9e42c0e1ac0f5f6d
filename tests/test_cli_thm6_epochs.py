"""thm6 reports only epochs the run reached unless asked (--replay-beyond), says when it replayed, and
draws the paper's values only on the paper's configuration; all-pairs figures have no empty panel."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from tianref import train
from tianref.cli import main
from tianref.cli.thm6 import default_epochs, thm6_cmd
from tianref.thm6.figures import _symlog_threshold, figure_thm6, load_paper_T1, paper_matches

TINY = ["--M", "7", "--K", "16", "--n-train", "30", "--eta", "1e-2", "--metrics", "core"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    rd = tmp_path_factory.mktemp("thm6") / "run"
    res = CliRunner().invoke(main, ["train", *TINY, "--epochs", "60", "--checkpoint-epochs", "50",
                                    "--out", str(rd)])
    assert res.exit_code == 0, res.output
    return rd


def thm6(*args):
    return CliRunner().invoke(thm6_cmd, [str(a) for a in args])


def test_default_epochs_rule():
    assert default_epochs("sqr", 60) == [50, 60]
    assert default_epochs("sqr", 400) == [50, 100, 175, 250, 300, 400]
    assert default_epochs("sqr", 300) == [50, 100, 175, 250, 300]
    assert default_epochs("relu", 350) == [100, 300, 350]
    assert default_epochs("sqr", 20) == [20]


def test_default_is_what_the_run_reached(run_dir, tmp_path):
    res = thm6("--run", run_dir, "--top-pairs", "5", "--json", tmp_path / "a.json")
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "a.json").read_text())
    assert [r["epoch"] for r in doc["checkpoints"]] == [50, 60]
    assert not any(r["replayed_beyond_run"] for r in doc["checkpoints"])
    assert "beyond" not in res.stdout
    assert [ln.split(",")[0] for ln in res.stderr.splitlines()] == ["thm6: checkpoint 1/2 (50 %)",
                                                                   "thm6: checkpoint 2/2 (100 %)"], res.stderr


def test_epoch_beyond_the_run_is_exit_2(run_dir):
    res = thm6("--run", run_dir, "--at-epochs", "50,100")
    assert res.exit_code == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "100" in lines[0] and "last epoch 60" in lines[0] and "--replay-beyond" in lines[0]


def test_an_epoch_past_int64_is_blamed_on_at_epochs(run_dir):
    """--at-epochs 1e20 --replay-beyond: the replay's own check named --epochs, an option not given."""
    res = thm6("--run", run_dir, "--at-epochs", str(10 ** 20), "--replay-beyond")
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: --at-epochs 1000"), res.stderr
    assert "too large" in lines[0]


def test_replay_beyond_says_so(run_dir, tmp_path):
    res = thm6("--run", run_dir, "--at-epochs", "50,100", "--replay-beyond", "--top-pairs", "5",
               "--json", tmp_path / "b.json", "--plot", tmp_path / "b.png")
    assert res.exit_code == 0, res.output
    recs = {r["epoch"]: r for r in json.loads((tmp_path / "b.json").read_text())["checkpoints"]}
    assert recs[100]["replayed_beyond_run"] and "replayed beyond the run" in recs[100]["source"]
    assert "60" in recs[100]["source"] and not recs[50]["replayed_beyond_run"]
    assert "epoch 100: replayed beyond the run (its last epoch is 60)" in res.stdout
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_replay_reports_every_step():
    cfg = {"M": 7, "K": 16, "n_train": 30, "eta": 1e-2, "epochs": 5}
    seen = []
    out = train.replay(cfg, [2, 5], np, on_step=seen.append)
    assert seen == [1, 2, 3, 4, 5] and sorted(out) == [2, 5]


PAPER_SETUP = {"M": 71, "K": 2048, "n": 2016, "act": "sqr", "eta": 2e-4}


def test_paper_overlay_only_on_the_paper_configuration():
    paper = load_paper_T1()
    assert paper is not None
    assert paper_matches(paper, PAPER_SETUP, 200) == (True, "")
    for change, top, word in ((dict(M=23), 200, "M = 23 (paper 71)"), (dict(K=512), 200, "K = 512"),
                              (dict(n=264), 200, "n = 264"), (dict(act="relu"), 200, "act = relu"),
                              (dict(eta=1e-3), 200, "eta = 0.001"), ({}, 100, "top-pairs = 100"),
                              ({}, None, "top-pairs = all")):
        ok, why = paper_matches(paper, dict(PAPER_SETUP, **change), top)
        assert not ok and word in why, (change, why)
    assert not paper_matches(None, PAPER_SETUP, 200)[0]


def _record(epoch, mode="top", r_exact=True):
    s = {"mode": mode, "n_pairs": 3 if mode == "top" else 120, "sign_match_exact": 1.0, "sign_match_approx": 1.0,
         "sign_match_paper": 0.9, "frac_B_neg_on_pos_cos": 0.95}
    rec = {"epoch": epoch, "source": "x", "summary": s}
    if mode == "top":
        rec["pairs"] = [{"cos": c, "B": b, "r_exact": (-b * 1e-3 if r_exact else None)}
                        for c, b in ((0.5, -30.0), (0.4, -2e-9), (-0.3, 40.0))]
    else:
        s["abs_cos_quantiles"] = {"0": 0.0, "0.5": 0.1, "1": 0.7}
        s["r_exact_quantiles"] = {"0": -1e-3, "0.5": 1e-7, "1": 1e-3} if r_exact else None
        s["frac_r_exact_neg"] = 0.5 if r_exact else None
    return rec


def _drawn(ax):
    return len(ax.lines) + len(ax.collections)


@pytest.mark.parametrize("mode, r_exact, n_axes", [("top", True, 3), ("top", False, 2),
                                                   ("all", True, 3), ("all", False, 2)])
def test_every_panel_has_data(mode, r_exact, n_axes):
    fig = figure_thm6([_record(50, mode, r_exact), _record(100, mode, r_exact)])
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == n_axes and all(_drawn(ax) > 0 for ax in axes)


def test_paper_series_and_its_label_only_when_given():
    paper = load_paper_T1()
    labels = lambda fig: [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    with_paper = figure_thm6([_record(50), _record(100)], paper)
    assert any("paper T1 (M=71, K=2048, n=2016" in t for t in labels(with_paper))
    without = figure_thm6([_record(50), _record(100)], None, paper_note="M = 23 (paper 71)")
    assert not any("paper" in t for t in labels(without))
    assert "M = 23 (paper 71)" in without.axes[0].get_legend().get_title().get_text()


def test_symlog_ticks_stay_apart_from_zero():
    fig = figure_thm6([_record(50)])
    ax = fig.axes[1]                                   # B against cos: B spans 2e-9 .. 40
    lt = _symlog_threshold([-30.0, -2e-9, 40.0])
    assert lt >= 40.0 * 1e-4                           # at most 4 decades below the largest |B|
    ticks = [t for t in ax.get_yticks() if t != 0]
    assert ticks and min(abs(t) for t in ticks) >= 10 * lt * (1 - 1e-12)
    assert len(ax.get_yticks()) <= 11


def test_eta_and_pinv_are_checked_before_any_replay(run_dir, tmp_path, monkeypatch):
    """What config.json alone decides (--pinv with eta > 0; eta = 0 without --pinv where rank F~ <= n - 1 < K)
    is refused in one line before a replay starts: the replay would cost as long as the run."""
    def no_replay(*a, **k):
        raise AssertionError("replayed before refusing")
    monkeypatch.setattr(train, "replay", no_replay)
    res = thm6("--run", run_dir, "--at-epochs", "40", "--pinv")          # epoch 40: no checkpoint, a replay
    assert res.exit_code == 2 and res.stdout == "", res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "eta = 0 variant" in lines[0], res.stderr
    wide = tmp_path / "wide"                                              # K = 40 > n - 1 = 29, eta = 0
    res = CliRunner().invoke(main, ["train", "--M", "7", "--K", "40", "--n-train", "30", "--eta", "0",
                                    "--metrics", "core", "--epochs", "4", "--out", str(wide)])
    assert res.exit_code == 0, res.output
    res = thm6("--run", wide, "--at-epochs", "3")
    assert res.exit_code == 2 and res.stdout == "", res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0] and "--pinv" in lines[0], res.stderr
    res = thm6("--run", run_dir, "--at-epochs", "40", "--eta", "0", "--pinv")   # the settings allow it:
    assert res.exit_code == 1 and "replayed before refusing" in str(res.exception), res.output  # it replays


def test_an_eta_schedule_run_is_taken_at_the_eta_in_force_at_each_epoch(tmp_path):
    """--eta-schedule 0:0,20:1e-3: thm6 used the first value (0) at every epoch and refused epochs 30 and
    40, trained with 1e-3; each epoch now gets its own eta (the step from it on), from a checkpoint too,
    and epoch 10 (eta 0, n - 1 < K) is refused as a plain eta = 0 run is."""
    rd = tmp_path / "sched"
    res = CliRunner().invoke(main, ["train", "--M", "7", "--K", "32", "--n-train", "30", "--metrics", "core",
                                    "--eta-schedule", "0:0,20:1e-3", "--epochs", "40", "--checkpoint-epochs",
                                    "30", "--out", str(rd)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "t.json"
    r = thm6("--run", rd, "--at-epochs", "20,30,40", "--json", out)
    assert r.exit_code == 0, r.output
    assert [(c["epoch"], c["eta"]) for c in json.loads(out.read_text())["checkpoints"]] == \
        [(20, 1e-3), (30, 1e-3), (40, 1e-3)]
    r = thm6("--checkpoint", rd / "checkpoints" / "epoch_00030.npz", "--json", out)
    assert r.exit_code == 0 and json.loads(out.read_text())["checkpoints"][0]["eta"] == 1e-3, r.output
    r = thm6("--run", rd, "--at-epochs", "10")
    assert r.exit_code == 2 and "eta = 0" in r.output and "--pinv" in r.output
    r = thm6("--run", rd, "--at-epochs", "30", "--eta", "5e-3", "--json", out)     # --eta still decides
    assert r.exit_code == 0 and json.loads(out.read_text())["checkpoints"][0]["eta"] == 5e-3


def test_a_schedule_dropping_to_zero_takes_pinv_at_its_zero_epochs_only(tmp_path):
    """--eta-schedule 0:1e-3,5:0 at n - 1 < K: epochs 3 (1e-3) and 8 (0) together. Without --pinv the
    refusal names epoch 8 and the schedule; with it, epoch 8 takes the pseudo-inverse and epoch 3 its B (it
    was refused both ways, each refusal sending to the other); --pinv where no asked epoch has eta 0 is
    refused; a refusal is the only line (the note on the chosen epochs came first)."""
    rd = tmp_path / "s"
    res = CliRunner().invoke(main, ["train", "--M", "7", "--K", "32", "--n-train", "30", "--metrics", "core",
                                    "--eta-schedule", "0:1e-3,5:0", "--epochs", "10", "--out", str(rd)])
    assert res.exit_code == 0, res.output
    r = thm6("--run", rd, "--at-epochs", "3,8")
    assert r.exit_code == 2 and "epoch 8 (eta = 0 under the run's eta schedule)" in r.output
    out = tmp_path / "t.json"
    r = thm6("--run", rd, "--at-epochs", "3,8", "--pinv", "--json", out)
    assert r.exit_code == 0, r.output
    recs = json.loads(out.read_text())["checkpoints"]
    assert [(c["epoch"], c["eta"]) for c in recs] == [(3, 1e-3), (8, 0.0)]
    assert recs[0]["summary"]["sign_match_exact"] is not None and recs[1]["summary"]["sign_match_exact"] is None
    r = thm6("--run", rd, "--at-epochs", "3,4", "--pinv")
    assert r.exit_code == 2 and "no requested epoch of the run's eta schedule has eta = 0" in r.output
    res = CliRunner().invoke(main, ["train", "--M", "7", "--K", "32", "--n-train", "30", "--metrics", "core",
                                    "--eta-schedule", "0:1e-3,5:0", "--epochs", "4", "--out", str(tmp_path / "s4")])
    assert res.exit_code == 0, res.output                       # its final state is at eta 1e-3: --pinv does
    r = thm6("--checkpoint", tmp_path / "s4" / "checkpoints" / "final.npz", "--pinv")     # nothing (it ran
    assert r.exit_code == 2 and "no requested epoch of the run's eta schedule has eta = 0" in r.output   # with B)
    r = thm6("--run", rd)                                  # default epochs: the refusal alone, no note before it
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("Error: epoch 10"), r.stderr
