"""Hand-built cases for rules that a mutation audit found unguarded (tianref/config.py, runs.py, rundir.py,
paths.py, experiments/jobs.py, batch.py, cli/common.py). Each case follows from a documented promise: the
module docstrings, README.md or docs/reliability.md."""
import os

import pytest

from tianref import runs
from tianref.config import TrainConfig, validate
from tianref.errors import InputError

SMALL = TrainConfig(M=11, K=32, n_train=60, epochs=20)


# --- config.validate: its bounds (config.py: "--K must be >= 2 ... the diagnostics need two hidden units",
# "--epochs must be >= 0": a run of E epochs has rows 0..E, so E = 0 is the run of row 0 alone)

def test_two_hidden_units_are_the_least_and_one_is_refused():
    validate(SMALL.replace(K=2))
    with pytest.raises(InputError, match="--K"):
        validate(SMALL.replace(K=1))


def test_zero_epochs_is_a_run_of_row_0_and_minus_one_is_refused():
    validate(SMALL.replace(epochs=0))
    with pytest.raises(InputError, match="--epochs"):
        validate(SMALL.replace(epochs=-1))


# --- runs.clean_row / MetricsLog: rows are strict JSON, "undefined (NaN/None) values dropped"

def _strict(text):
    import json

    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def test_a_row_with_undefined_values_is_logged_as_strict_json_without_them(tmp_path):
    log = runs.MetricsLog(str(tmp_path / "metrics.jsonl"))
    try:
        log.append({"epoch": 3, "train_loss": float("nan"), "test_loss": float("inf"), "gap": None, "acc": 0.5})
    finally:
        log.close()
    line = (tmp_path / "metrics.jsonl").read_text()
    assert _strict(line) == {"epoch": 3, "acc": 0.5}


# --- config.validate: integers are stored as int64 ("the limit is 2^63 - 1")

def test_an_integer_of_2_to_the_63_is_refused_and_2_to_the_63_minus_1_is_not():
    validate(SMALL.replace(seed=2 ** 63 - 1))
    with pytest.raises(InputError, match="too large"):
        validate(SMALL.replace(seed=2 ** 63))
    with pytest.raises(InputError, match="too large"):
        validate(SMALL.replace(checkpoint_epochs=(-(2 ** 63),)))


# --- TrainConfig.from_dict: "every value's type is checked against its field's default" (true is no integer)

@pytest.mark.parametrize("key", ["K", "seed", "epochs"])
def test_a_stored_integer_setting_given_as_true_is_refused(key):
    d = dict(SMALL.to_dict(), **{key: True})
    with pytest.raises(InputError, match=f"{key} = True is not an integer"):
        TrainConfig.from_dict(d)


# --- rundir: "Only plain files are leftovers: a .tmp-* folder or link is someone else's (foreign: refused,
# never cleaned)"

def _run_folder(root):
    from tianref.runs import atomic_write_json
    out = root / "run"
    (out / "checkpoints").mkdir(parents=True)
    atomic_write_json(str(out / "config.json"), {"config": SMALL.to_dict()})
    (out / "metrics.jsonl").write_text('{"epoch": 0}\n')
    return out


@pytest.mark.parametrize("where", ["", "checkpoints"])
def test_a_tmp_named_link_is_foreign_never_a_leftover(tmp_path, where):
    from tianref import rundir
    target = tmp_path / "someone_elses.txt"
    target.write_text("keep me\n")
    out = _run_folder(tmp_path)
    link = out / where / ".tmp-notes" if where else out / ".tmp-notes"
    os.symlink(target, link)
    with pytest.raises(InputError, match="which no run writes"):
        rundir.check_replaceable(str(out))
    assert rundir.clean_stale_tmp(str(out)) == []
    assert os.path.islink(link) and target.read_text() == "keep me\n"
    bare = tmp_path / "bare"
    bare.mkdir()
    os.symlink(target, bare / ".tmp-x")
    assert not rundir.is_empty(str(bare))
