"""Shared pieces of the reproduce tests: synthetic summary documents with known answers, the claims
finder, the CLI runner and the stored results' paths."""
import subprocess
import sys
from pathlib import Path

import pytest

from tianref.experiments import protocols
from tianref.experiments.reproduce.rows import load_published

REPO = Path(__file__).resolve().parents[2]
CLI = str(REPO / "cli.py")
GOLDEN = REPO / "reference_results" / "reproduction" / "ci"
FULL = REPO / "reference_results" / "reproduction" / "full"
CI = protocols.SCALES["ci"]
FULL_SCALE = {"name": "full", "M": None, "K": None, "seeds": None, "epoch_factor": 1.0, "eta_factor": 1.0}


def cli(*args, cwd=None, timeout=120):
    return subprocess.run([sys.executable, CLI, *args], capture_output=True, text=True,
                          check=False, cwd=cwd or REPO, timeout=timeout)


def stat(median, q25=None, q75=None, n_fired=15, n=15):
    q25 = median if q25 is None else q25
    q75 = median if q75 is None else q75
    if not n_fired:
        median = q25 = q75 = None
    return {"n": n, "n_fired": n_fired, "median": median, "q25": q25, "q75": q75, "min": q25, "max": q75}


def condition(label, eta, stats, act="sqr", sep=None, runs=()):
    return {"label": label, "config": {"eta": eta, "act": act}, "n": 15, "runs": list(runs),
            "stats": dict(stats), "late_separation": sep}


def find(claims, prefix, kind=None):
    """The one claim (as a dict) whose text starts with ``prefix`` (and whose source is of ``kind``)."""
    ds = [c.to_dict() if hasattr(c, "to_dict") else c for c in claims]
    hits = [d for d in ds if d["claim"].startswith(prefix) and (kind is None or d["source"]["kind"] == kind)]
    assert len(hits) == 1, (prefix, [d["claim"] for d in ds])
    return hits[0]


@pytest.fixture(scope="session")
def pub():
    return load_published()
