"""Detector views and epoch positions at a scale: the machinery the paper's sections summarise with.

References: ``docs/reproduce.md`` ("What each section runs and how it is summarised"); the views of each
section are declared in its module (``sections/<name>.py``); :func:`tianref.analysis.summarize.summarize`
computes the statistics of one view.

A *view* is one detector setting (:class:`tianref.analysis.summarize.Options`) under which a section's runs
are summarised. Scaled-down runs: the epoch *positions* of the detectors (the late range, the slope
detector's earliest epoch t_min = 100, the checkpoint epochs) are multiplied by the scale's epoch factor
like the runs' lengths; the *durations and rates* (the slope lag 25, the window W, the threshold 0.04) are
not. At the full scale the views are exactly the paper's code settings.

Symbols
    ETA_GROK      η = 2e-4, the grokking condition (the control is η = 0); at a scale, eta_at(η, scale)
    f(e)          ``scaled(e, scale)``, an epoch position at the scale
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from tianref.analysis import detectors as det
from tianref.analysis.summarize import Options, summarize
from tianref.experiments import protocols

ETA_GROK = 2e-4


def eta_at(eta: float, scale) -> float:
    """The paper's weight decay ``eta`` as trained at ``scale`` (a Scale or a summary's scale dict)."""
    factor = scale.get("eta_factor", 1.0) if isinstance(scale, dict) else scale.eta_factor
    return protocols.scaled_eta(eta, factor)


def scaled(epoch: int, scale) -> int:
    """An epoch position at this scale (the rounding protocols.py uses for checkpoints)."""
    factor = scale.get("epoch_factor", 1.0) if isinstance(scale, dict) else scale.epoch_factor
    return int(round(epoch * factor))


@dataclass(frozen=True)
class View:
    name: str
    options: Options
    note: str = ""


def late_view(scale, lo: int = det.LATE_RANGE[0], hi: int = det.LATE_RANGE[1], **options) -> View:
    """The paper's late-range view (ep lo-hi, scaled), slope t_min scaled; ``options`` added."""
    late = dict(slope_t_min=scaled(det.SLOPE_T_MIN, scale), late_lo=scaled(lo, scale),
                late_hi=scaled(hi, scale))
    return View(f"late {late['late_lo']}-{late['late_hi']}", Options(**late, **options))


def _relative_paths(summary: dict, base: Path) -> dict:
    for c in summary["conditions"]:
        for r in c["runs"]:
            try:
                r["path"] = str(Path(r["path"]).relative_to(base))
            except ValueError:
                pass
    return summary


def summarise_views(records, views, section_dir: Path) -> list:
    """doc['views']: one {name, note, options, summary} per view (run paths relative to section_dir)."""
    return [{"name": v.name, "note": v.note, "options": asdict(v.options),
             "summary": _relative_paths(summarize(records, v.options), Path(section_dir))} for v in views]
