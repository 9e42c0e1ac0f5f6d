"""The paper's sections as runs and detector views: parse the names, scale the epochs, build the jobs.

References: ``docs/reproduce.md`` (the ``reproduce`` command); ``docs/paper-protocol.md`` §3-4 (the
protocols, as RunSpecs in :mod:`tianref.experiments.protocols`) and §5.5 (the ReLU 'end of training', which no
stored script defines); the paper's analysis scripts named in the table.

A section is one protocol of the paper (``protocols.SECTIONS``). It is summarised under one or more
*views* (detector settings, :class:`tianref.analysis.summarize.Options`):

   | section  | views                                                                        |
   |----------|------------------------------------------------------------------------------|
   | headline | late 200-400                                                                 |
   | relu     | late 200-400, and the last 200 epochs (the paper's "end of training" is       |
   |          | defined by no script, §5.5)                                                  |
   | window   | W = 5, 10, 20, 30, each with min_valid = 30 (analyze_window_sweep.py)        |
   | eta      | late 300-600 (rows [300:], analyze_eta_sweep.py)                             |
   | extended | late 200-400                                                                 |
   | thm6     | none: ``thm6.summarize_checkpoint`` (top-200 pairs) per checkpoint, per seed   |

(the thm6 section is evaluated in :mod:`tianref.experiments.reproduce.thm6_runs`).

Scaled-down runs (``--scale ci``): the epoch *positions* of the detectors (the late range, the slope
detector's earliest epoch t_min = 100, the checkpoint epochs) are multiplied by the scale's epoch
factor like the runs' lengths; the *durations and rates* (the slope lag 25, the window W, the
threshold 0.04) are not. At the full scale the views are exactly the paper's code settings.

Symbols
    ETA_GROK      η = 2e-4, the grokking condition (the control is η = 0); at a scale, eta_at(η, scale)
    E             a section's number of epochs for one activation
    f(e)          ``scaled(e, scale)``, an epoch position at the scale
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from tianref.analysis import detectors as det
from tianref.experiments import protocols, sweep
from tianref.errors import InputError, RunFailure
from tianref.analysis.summarize import Options

ETA_GROK = 2e-4


def eta_at(eta: float, scale) -> float:
    """The paper's weight decay ``eta`` as trained at ``scale`` (a Scale or a summary's scale dict)."""
    factor = scale.get("eta_factor", 1.0) if isinstance(scale, dict) else scale.eta_factor
    return protocols.scaled_eta(eta, factor)


# --- sections, scales, views ----------------------------------------------------------------

def parse_section(text: str) -> list[str]:
    """'all' -> the default sections; otherwise the one named section."""
    if text == "all":
        return list(protocols.DEFAULT_SECTIONS)
    if text not in protocols.SECTIONS:
        raise InputError(f"unknown section {text!r}; choose one of "
                         f"{', '.join(protocols.SECTIONS)} or all")
    return [text]


def parse_scale(text: str) -> protocols.Scale:
    if text not in protocols.SCALES:
        raise InputError(f"unknown scale {text!r}; choose one of {', '.join(protocols.SCALES)}")
    return protocols.SCALES[text]


def scaled(epoch: int, scale: protocols.Scale) -> int:
    """An epoch position at this scale (the rounding protocols.py uses for checkpoints)."""
    return int(round(epoch * scale.epoch_factor))


def section_epochs(section: str, scale: protocols.Scale) -> dict:
    """{act: E} of the section's runs."""
    return {s.options["act"]: int(s.options["epochs"]) for s in protocols.section_runs(section, scale)}


@dataclass(frozen=True)
class View:
    name: str
    options: Options
    note: str = ""


def section_views(section: str, scale: protocols.Scale) -> list[View]:
    """The detector settings each section is summarised with (module docstring)."""
    f = lambda e: scaled(e, scale)
    base = dict(slope_t_min=f(det.SLOPE_T_MIN))
    late = dict(base, late_lo=f(det.LATE_RANGE[0]), late_hi=f(det.LATE_RANGE[1]))
    late_name = f"late {late['late_lo']}-{late['late_hi']}"
    if section in ("headline", "extended"):
        return [View(late_name, Options(**late))]
    if section == "relu":
        E = section_epochs("relu", scale)["relu"]
        return [View(late_name, Options(**late)),
                View(f"last {f(200)} epochs ({E - f(200)}-{E})",
                     Options(**dict(base, late_lo=E - f(200), late_hi=E)),
                     note="the paper's 'end of training' (T-ReLU) is computed by no stored script "
                          "(paper-protocol.md §5.5); this is our reading of it")]
    if section == "window":
        return [View(f"W={W}", Options(window=W, min_valid=det.WINDOW_SWEEP_MIN_VALID, **late))
                for W in (5, 10, 20, 30)]
    if section == "eta":
        E = section_epochs("eta", scale)["sqr"]
        return [View(f"late {f(300)}-{E}", Options(**dict(base, late_lo=f(300), late_hi=E)))]
    if section in ("thm6", "scaling", "critical", "muon", "ridge"):   # analysed elsewhere
        return []
    raise InputError(f"unknown section {section!r}")


# --- runs -----------------------------------------------------------------------------------

# Gram modes logged beside the float64 one (train --log-grams), for the report's account of the
# differences from the paper (explain.py); float32-seq needs NumPy (a sequential sum).
SECTION_GRAMS = {"window": ("float32", "float32-seq"), "eta": ("float32", "float32-seq"),
                 "headline": ("float32", "float32-seq")}


def section_jobs(root, section: str, scale: protocols.Scale, xp: str = "numpy") -> list:
    """The section's sweep jobs under ROOT/<section>/ (resume state deleted when a run finishes)."""
    extra = {"no_resume_state": True}
    grams = [g for g in SECTION_GRAMS.get(section, ()) if xp != "cupy" or g != "float32-seq"]
    if grams:
        extra["log_grams"] = grams
    if xp != "numpy":
        extra["xp"] = xp
    specs = [SimpleNamespace(tag=s.tag, options={**s.options, **extra})
             for s in protocols.section_runs(section, scale)]
    return sweep.jobs_from_specs(Path(root) / section, specs)


def run_section(jobs, n_jobs: int, python: str, report, progress=None) -> dict:
    """Run the unfinished jobs; RunFailure naming the first failed run and its log."""
    res = sweep.run_jobs(jobs, n_jobs, python, report=report, progress=progress)
    if res["failed"]:
        f = res["failed"][0]
        more = len(res["failed"]) - 1
        raise RunFailure(f"run {f['name']} failed (exit {f['returncode']}); log: {f['log']}"
                         + (f" ({more} more failed, logs beside it)" if more else ""))
    return res
