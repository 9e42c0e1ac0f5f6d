"""A summary to strict JSON, and the atomic write every report goes through.

NaN and inf become JSON null (``allow_nan=False``: a reader in any language parses the file), numpy
scalars become Python numbers, paths become strings. ``write_atomic`` writes a temporary file in the
target's directory and renames it over the target (os.replace), so a reader never sees half a file.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np



def _json_safe(x):
    """NaN/inf -> None (strict JSON); numpy scalars -> Python."""
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, Path):
        return str(x)
    return x


def write_atomic(path, text: str) -> None:
    """Write text to ``path`` through tianref.runs.atomic_write_bytes: its missing folders created, a
    temporary file in the same directory, fsync'd, given the mode a plain open() gives under the user's
    umask, renamed over ``path``. A character UTF-8 cannot hold (a folder name's undecodable byte, which
    Python carries as a lone surrogate) is written as its escape, e.g. \\udcff, as the JSON writer does."""
    from tianref.runs import atomic_write_bytes
    data = text.encode("utf-8", errors="backslashreplace")
    atomic_write_bytes(str(path), lambda f: f.write(data))


def to_json(summary: dict) -> str:
    return json.dumps(_json_safe(summary), indent=2, allow_nan=False) + "\n"
