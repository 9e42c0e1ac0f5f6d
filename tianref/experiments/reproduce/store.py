"""Provenance of a reproduced section and ``--store``: the copy into reference_results/reproduction/.

References: ``docs/reproduce.md`` (every stored result carries its provenance: command, seeds, dtype, backend,
versions, date, machine, wall time, git state).

Layout written by :func:`store_section`
    STORE_ROOT/<scale>/<section>/summary.json, report.md, figures/*.png, provenance.json
STORE_ROOT (the default --store-to) is the source checkout's reference_results/reproduction; an installed copy
has no reference_results/ at all, and reproduce refuses to run there (tianref.resources).
The previous copy is replaced in one rename, so a reader never sees a half-written section; a stop signal
waits until the new copy is in place, and the leftovers of a store that was killed are removed by the next.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from tianref.experiments import sweep
from tianref.backend import git_state  # noqa: F401  (re-exported by tianref.experiments.reproduce)
from tianref.analysis.summarize import to_json
from tianref.experiments.reproduce.rows import REPO
from tianref.experiments.reproduce.signals import signals_held
from tianref.resources import store_root
from tianref.rundir import left_behind
from tianref.runs import current_umask

STORE_ROOT = store_root() if REPO is not None else None    # the default --store-to; none in an installed copy


def train_seconds(jobs) -> float | None:
    """Sum of the 'seconds' that each run's train invocations printed into its sweep log."""
    total, found = 0.0, False
    for j in jobs:
        log = j.out.parent / sweep.LOG_DIR / f"{j.name}.log"
        if not log.is_file():
            continue
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{") and '"seconds"' in line:
                try:
                    total += float(json.loads(line)["seconds"])
                    found = True
                except (ValueError, KeyError, TypeError):
                    pass
    return total if found else None


def provenance(doc: dict, records, jobs, run_result: dict, wall_s: float, command: str) -> dict:
    from tianref.backend import environment_info
    return {"command": command, "section": doc["section"], "scale": doc["scale"],
            "runs": [j.name for j in jobs], "seeds": doc["seeds"], "epochs": doc["epochs"],
            "dtype": doc["setup"]["dtype"], "backend": doc["setup"]["backend"],
            "versions": environment_info(np),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
            "wall_s": round(wall_s, 1), "runs_trained_by_this_command": run_result["ran"],
            "runs_found_finished": run_result["skipped"],
            "train_seconds_from_logs": _round(train_seconds(jobs)),
            "train_seconds_note": "sum of each run's own wall time as printed by train; runs that ran "
                                  "in parallel overlap, and a run found finished may have run elsewhere",
            "git": git_state(), "runs_source": runs_source(jobs)}


def runs_source(jobs) -> dict:
    """{'<commit>' or '<commit> (dirty)' or 'not recorded': number of runs} from each run's config.json
    ("source", the checkout that trained it; runs written before it was recorded say so)."""
    out = {}
    for j in jobs:
        try:
            src = json.loads((j.out / "config.json").read_text(encoding="utf-8")).get("source")
        except (OSError, ValueError, AttributeError):
            src = None
        key = "not recorded" if not isinstance(src, dict) or not src.get("commit") else \
            src["commit"] + (" (dirty)" if src.get("dirty") else "")
        out[key] = out.get(key, 0) + 1
    return out


def _round(x, nd=1):
    return None if x is None else round(x, nd)


def _remove_leftovers(parent: Path, section: str) -> None:
    """The .<section>.new-PID-* / .old-PID-* folders of stores that were stopped or killed (their PID no
    longer runs, or none in the name: an older version's); a live store's are its own. Where no stored copy
    is in place (a store killed between its two renames), the newest old copy is put back first."""
    new, old = ([p for p in parent.glob(f".{section}.{kind}-*") if left_behind(p.name, f".{section}.{kind}-")]
                for kind in ("new", "old"))
    dest = parent / section
    old = sorted(old, key=lambda p: p.stat().st_mtime)
    if old and not dest.exists() and (old[-1] / "summary.json").is_file():
        os.replace(old.pop(), dest)                     # the previous copy, back where it belongs
    for p in new + old:
        shutil.rmtree(p, ignore_errors=True)


def store_section(section_dir: Path, dest_root: Path, scale_name: str, section: str,
                  prov: dict) -> Path:
    """Copy summary.json, report.md and figures/ with provenance.json into
    dest_root/<scale>/<section>/, replacing the previous copy in one rename."""
    parent = Path(dest_root) / scale_name
    parent.mkdir(parents=True, exist_ok=True)
    dest = parent / section
    _remove_leftovers(parent, section)
    tmp = Path(tempfile.mkdtemp(prefix=f".{section}.new-{os.getpid()}-", dir=parent))
    try:
        for name in ("summary.json", "report.md"):
            shutil.copy2(section_dir / name, tmp / name)
        figs = section_dir / "figures"
        if figs.is_dir():
            (tmp / "figures").mkdir()
            for f in sorted(figs.glob("*.png")):
                shutil.copy2(f, tmp / "figures" / f.name)
        (tmp / "provenance.json").write_text(to_json(prov), encoding="utf-8")
        umask = current_umask()
        for p in [tmp, *tmp.rglob("*")]:                    # mkdtemp makes it private: the modes of a plain
            os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~umask)   # mkdir/open() under the user's umask
        old = None
        with signals_held():                                # a stop acts once the new copy is in place
            if dest.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{section}.old-{os.getpid()}-", dir=parent))
                os.rmdir(old)
                os.replace(dest, old)
            try:
                os.replace(tmp, dest)
            except BaseException:
                if old is not None:                         # the previous copy back in its place
                    os.replace(old, dest)
                raise
        if old is not None:
            shutil.rmtree(old)
    except BaseException as exc:
        if tmp.exists():
            shutil.rmtree(tmp)
        if isinstance(exc, OSError):            # a full disk: name where the copy was going
            raise OSError(exc.errno, exc.strerror or str(exc), str(dest)) from None
        raise
    return dest
