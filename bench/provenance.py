"""What a stored benchmark result carries beside its numbers: the command, when, on what, from which tree.

    provenance(argv) -> {"command", "date", "cpu", "blas", "python", "numpy", "source", "loadavg_after"}
    emit(doc, path)   the result: to path (--json) if given, and one JSON line on stdout

``cpu`` and ``blas`` (the BLAS libraries with their kernel sets, e.g. 'openblas 0.3.31.188.0 SkylakeX') are
what a run's config.json records (tianref.backend.environment_info): ratios move with both. ``source`` is
the git commit and whether the tree was dirty (tianref.backend.git_state).
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tianref.backend import cpu_model, git_state  # noqa: E402
from tianref.threads import kernels  # noqa: E402


def emit(doc: dict, path=None) -> None:
    """A benchmark's result: written as indented JSON to ``path`` (its --json) when given, and printed as
    one JSON line."""
    import json
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
    print(json.dumps(doc))


def provenance(argv) -> dict:
    import numpy
    import platform
    return {"command": " ".join([os.path.basename(argv[0])] + list(argv[1:])),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "cpu": cpu_model(), "blas": kernels(), "python": platform.python_version(),
            "numpy": numpy.__version__, "source": git_state(), "loadavg_after": list(os.getloadavg())}
