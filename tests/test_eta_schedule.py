"""--eta-schedule: parsing and validation, the step convention, equivalence with a hand-made
switch, the config round trip, and --resume."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from tianref import runs, train
from tianref.cli import main
from tianref.config import TrainConfig, eta_at, parse_eta_schedule, validate
from tianref.errors import InputError

SMALL = TrainConfig(M=11, K=32, n_train=48, epochs=12, windows=(4,), seed=2, eta=5e-3, lr=1e-2)
CLI_SMALL = ["--M", "7", "--K", "16", "--windows", "3", "--lr", "1e-2"]


def test_parse_and_eta_at():
    s = parse_eta_schedule("0:2e-4, 250:0")
    assert s == ((0, 2e-4), (250, 0.0))
    cfg = TrainConfig(eta=2e-4, eta_schedule=s)
    assert [eta_at(cfg, t) for t in (0, 249, 250, 10_000)] == [2e-4, 2e-4, 0.0, 0.0]
    assert eta_at(TrainConfig(eta=3e-4), 10_000) == 3e-4           # no schedule: plain eta
    cfg = TrainConfig(eta=1.0, eta_schedule=((0, 1.0), (3, 2.0), (5, 0.5)))
    assert [eta_at(cfg, t) for t in range(7)] == [1, 1, 1, 2, 2, 0.5, 0.5]


@pytest.mark.parametrize("text, fragment", [
    ("5:1e-3", "start at epoch 0"),
    ("0:1e-3,10:0,10:1", "strictly ascending"),
    ("0:1e-3,20:0,10:1", "strictly ascending"),
    ("0:-1e-3", "finite and >= 0"),
    ("0:nan", "finite and >= 0"),
    ("0:inf", "finite and >= 0"),
    ("0=1e-3", "START:ETA"),
    ("0:abc", "START:ETA"),
    ("", "at least one"),
])
def test_bad_schedules_are_one_line_usage_errors(tmp_path, text, fragment):
    with pytest.raises(InputError, match=fragment):
        parse_eta_schedule(text)
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train"] + CLI_SMALL + ["--epochs", "4", "--eta-schedule", text,
                                                          "--out", str(out)])
    assert r.exit_code == 2 and fragment in r.output and "Traceback" not in r.output
    assert not out.exists() or not any(out.iterdir())                # nothing written


def test_eta_and_schedule_together_refused(tmp_path):
    r = CliRunner().invoke(main, ["train"] + CLI_SMALL + ["--eta", "1e-3", "--eta-schedule", "0:1e-3",
                                                          "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "not both" in r.output


def test_config_must_agree_with_its_schedule():
    with pytest.raises(InputError, match="first value"):
        validate(SMALL.replace(eta_schedule=((0, 1e-3), (5, 0.0))))
    d = SMALL.replace(eta=1e-3, eta_schedule=((0, 1e-3), (5, 0.0))).to_dict()
    assert d["eta_schedule"] == [[0, 1e-3], [5, 0.0]]
    assert TrainConfig.from_dict(json.loads(json.dumps(d))) == validate(TrainConfig.from_dict(d))
    assert "eta_schedule" not in SMALL.to_dict()                    # plain runs: config.json as before


def _rows(cfg, **kw):
    sink = runs.MemorySink()
    final, problem, _ = train.run(validate(cfg), np, sink=sink, **kw)
    return sink.rows, final, problem


def test_schedule_equals_a_run_continued_with_the_new_eta():
    """0:5e-3,7:0 for 12 epochs == 7 epochs at eta 5e-3, then the same state stepped with eta = 0
    (rows 0..7 logged with the first config, 8..12 with the second): bit for bit."""
    sched = SMALL.replace(eta_schedule=((0, 5e-3), (7, 0.0)))
    rows, final, _ = _rows(sched)
    first, mid, problem = _rows(SMALL.replace(epochs=7))
    sink = runs.MemorySink()
    final2, _, _ = train.run(validate(SMALL.replace(eta=0.0)), np, problem=problem, state=mid, sink=sink)
    assert [r["train_loss"] for r in rows] == [r["train_loss"] for r in first + sink.rows]
    np.testing.assert_array_equal(final.params["W"], final2.params["W"])
    # and the switch matters: a constant 5e-3 run differs after epoch 8
    const, _, _ = _rows(SMALL)
    assert const[7]["train_loss"] == rows[7]["train_loss"] and const[9]["train_loss"] != rows[9]["train_loss"]


def test_one_entry_schedule_is_plain_eta(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert CliRunner().invoke(main, ["train"] + CLI_SMALL + ["--epochs", "5", "--eta", "1e-3", "--out", a]).exit_code == 0
    assert CliRunner().invoke(main, ["train"] + CLI_SMALL + ["--epochs", "5", "--eta-schedule", "0:1e-3",
                                                             "--out", b]).exit_code == 0
    ca, cb = (json.load(open(os.path.join(d, "config.json")))["config"] for d in (a, b))
    assert ca == cb and "eta_schedule" not in ca
    assert open(os.path.join(a, "metrics.jsonl")).read() == open(os.path.join(b, "metrics.jsonl")).read()


def test_resume_honours_the_schedule(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    sched = ["--eta-schedule", "0:5e-3,6:0"]
    r = CliRunner().invoke(main, ["train"] + CLI_SMALL + sched + ["--epochs", "10", "--out", a])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["train"] + CLI_SMALL + sched + ["--epochs", "4", "--out", b])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["train", "--out", b, "--resume", "--epochs", "10"])
    assert r.exit_code == 0, r.output
    assert open(os.path.join(a, "metrics.jsonl")).read() == open(os.path.join(b, "metrics.jsonl")).read()
    cfg = json.load(open(os.path.join(b, "config.json")))["config"]
    assert cfg["eta_schedule"] == [[0, 5e-3], [6, 0.0]] and cfg["eta"] == 5e-3
    r = CliRunner().invoke(main, ["train", "--out", b, "--resume", "--epochs", "12", "--eta-schedule", "0:1"])
    assert r.exit_code == 2 and "--eta-schedule" in r.output


def _edit_config(out, edit):
    p = os.path.join(out, "config.json")
    meta = json.load(open(p))
    edit(meta["config"])
    json.dump(meta, open(p, "w"))


def _snapshot(out):
    return {os.path.relpath(os.path.join(d, f), out): open(os.path.join(d, f), "rb").read()
            for d, _, fs in os.walk(out) for f in fs}


def test_resume_refuses_a_schedule_deleted_from_config_json(tmp_path):
    """The comparison of config.json with the resume state runs over both sides' keys: a scheduled
    run whose config.json lost its schedule must not continue at a constant eta."""
    b = str(tmp_path / "b")
    r = CliRunner().invoke(main, ["train"] + CLI_SMALL + ["--eta-schedule", "0:5e-3,6:0", "--epochs", "4",
                                                          "--out", b])
    assert r.exit_code == 0, r.output
    _edit_config(b, lambda c: c.pop("eta_schedule"))
    before = _snapshot(b)
    r = CliRunner().invoke(main, ["train", "--out", b, "--resume", "--epochs", "10"])
    assert r.exit_code == 2 and "eta_schedule" in r.output, r.output
    assert _snapshot(b) == before                       # nothing touched


def test_resume_refuses_a_schedule_added_to_a_plain_run(tmp_path):
    """The other direction: a schedule added to a plain run's config.json is a one-line refusal
    (it was a KeyError traceback)."""
    b = str(tmp_path / "b")
    r = CliRunner().invoke(main, ["train"] + CLI_SMALL + ["--eta", "5e-3", "--epochs", "4", "--out", b])
    assert r.exit_code == 0, r.output
    _edit_config(b, lambda c: c.update(eta_schedule=[[0, 5e-3], [2, 0.0]]))
    before = _snapshot(b)
    r = CliRunner().invoke(main, ["train", "--out", b, "--resume", "--epochs", "10"])
    assert r.exit_code == 2 and "eta_schedule" in r.output and "Traceback" not in r.output, r.output
    assert _snapshot(b) == before
