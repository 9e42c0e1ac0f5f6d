"""Saving a section's figures (PNG, written atomically into ROOT/<section>/figures/) and drawing the run
figures of :mod:`tianref.analysis.plots` under a section's file names. No section's logic: each section
says which figures it draws (``sections/<name>.py``).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _save_fig(fig, path: Path, dpi: int = 110) -> str:
    """Write fig to path by one rename; returns the file name."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, format="png")
        os.chmod(tmp, 0o644)                                # mkstemp makes it private
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path.name


save_fig = _save_fig


def run_figures(records, kinds, names: dict, fig_dir: Path, notes: list, **kw) -> list:
    """Draw ``figures_from_runs(records, kinds, **kw)`` and save figure key k as names[k] in fig_dir;
    returns the file names, appends what was not drawn to ``notes``."""
    from tianref.analysis.plots import figures_from_runs
    Path(fig_dir).mkdir(parents=True, exist_ok=True)
    figs, n = figures_from_runs(records, kinds, **kw)
    notes += n
    return [_save_fig(figs[k], Path(fig_dir) / name) for k, name in names.items() if k in figs]
