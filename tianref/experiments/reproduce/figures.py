"""Saving a section's figures (PNG, written atomically into ROOT/<section>/figures/) and drawing the run
figures of :mod:`tianref.analysis.plots` under a section's file names. No section's logic: each section
says which figures it draws (``sections/<name>.py``).
"""
from __future__ import annotations

from pathlib import Path


def _save_fig(fig, path: Path, dpi: int = 110) -> str:
    """Write fig to path by one rename; returns the file name."""
    from tianref.runs import atomic_write_bytes           # fsync'd, the mode of a plain open() under the umask
    path = Path(path)
    atomic_write_bytes(str(path), lambda f: fig.savefig(f, dpi=dpi, format="png"))
    return path.name


def run_figures(records, kinds, names: dict, fig_dir: Path, notes: list, **kw) -> list:
    """Draw ``figures_from_runs(records, kinds, **kw)`` and save figure key k as names[k] in fig_dir;
    returns the file names, appends what was not drawn to ``notes``."""
    from tianref.analysis.plots import figures_from_runs
    Path(fig_dir).mkdir(parents=True, exist_ok=True)
    figs, n = figures_from_runs(records, kinds, **kw)
    notes += n
    return [_save_fig(figs[k], Path(fig_dir) / name) for k, name in names.items() if k in figs]
