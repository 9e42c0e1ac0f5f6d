"""tianref.edge_probe: the probed model is the run's model (output scale, loss, activation)."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from tianref.cli import main

E = 16


@pytest.fixture(scope="module")
def scaled_run(tmp_path_factory):
    """M = 11, float64, trained with the output scale beta = 2."""
    out = str(tmp_path_factory.mktemp("edge_beta") / "run")
    r = CliRunner().invoke(main, ["train", "--M", "11", "--K", "32", "--epochs", str(E), "--lr", "1e-2",
                                  "--eta", "5e-3", "--windows", "4", "--dtype", "float64",
                                  "--output-scale", "2", "--out", out])
    assert r.exit_code == 0, r.output
    return out


def test_probe_evaluates_the_run_model_with_its_output_scale(scaled_run):
    """The unablated test loss and accuracy of the probe equal what the run logged for the same weights
    (a float64 run replayed bit for bit: only the summation order of the loss could differ, 1e-12)."""
    from tianref.analysis.edge_runs import probe_run
    rows = {json.loads(l)["epoch"]: json.loads(l) for l in open(os.path.join(scaled_run, "metrics.jsonl"))}
    recs = probe_run(scaled_run, [E], np, spaces=("W",), n_random=0)
    got = recs[0]["probe"]
    assert got["test_loss"] == pytest.approx(rows[E]["test_loss"], rel=1e-12)
    assert got["test_acc"] == rows[E]["test_acc"]
