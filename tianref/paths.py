"""Paths a command is given: checked before anything is computed or written, and OS errors named.

Every command checks each output path it was given at its start (``check_output_file``,
``check_output_dir``; train's --out: ``check_out_path``), so a path that cannot be used is bad input
(InputError, exit 2, one line) and nothing has been computed or written when it is refused. An
OSError met later (a full disk, a folder made read-only meanwhile) is shown by
``describe_oserror`` as one line naming the file (exit 1).

Refused: an empty path; a folder where a file is asked for (or a file where a folder is); a path
below a regular file; two output options of one command naming the same file; a path whose nearest existing folder this process cannot write in; an
output file or folder at or below a run directory (a folder holding metrics.jsonl: only train writes
there, and a summary written over its config.json or a figure beside its files would break the run);
the root of a tree of runs (sweep ROOT, reproduce --root) at or below a run directory
(``check_not_in_run``); train's --out inside another run directory; a path through a symbolic link that
leads nowhere (dangling, or a loop: creating a folder there would fail). "At or below a run" is judged
both on the path as written and on the folder its links lead to.
"""
from __future__ import annotations

import os

from tianref.errors import InputError, breaks_line

RUN_MARK = "metrics.jsonl"   # the file that makes a folder a run directory (tianref.analysis.records)


def describe_oserror(exc: OSError) -> str:
    """'PATH: cause' for an OSError (one line)."""
    cause = exc.strerror or str(exc) or type(exc).__name__
    name = exc.filename if exc.filename is not None else None
    return f"{name}: {cause}" if name is not None else cause


def check_one_line(path, what: str) -> str:
    """Refuse a path holding a control character (a newline, a tab, ESC, ...): the commands a sweep prints and
    the SLURM script it writes name its folders one per line, and a newline there would start a line of its
    own (in a script, a command). Shown escaped, so that the refusal stays one line."""
    text = str(path)
    bad = sorted({c for c in text if breaks_line(c)})
    if bad:
        raise InputError(f"{what} {text!r} holds a control character ({', '.join(repr(c) for c in bad)}); "
                         "name it without one")
    return text


def check_out_path(out: str) -> str:
    """Refuse an --out that cannot be a run directory (no filesystem change)."""
    if out is None or str(out).strip() == "":
        raise InputError("--out is empty; give a directory for the run")
    out = check_one_line(out, "--out")
    if os.path.exists(out) and not os.path.isdir(out):
        raise InputError(f"--out {out} exists and is not a directory")
    _refuse_broken_link(out, out, "--out")
    parent = os.path.dirname(os.path.abspath(out))
    p = _nearest_existing(parent, out, "--out")   # the nearest existing ancestor must be a folder
    if not os.path.isdir(p):
        raise InputError(f"--out {out}: {p} is not a directory")
    run = _run_holding(out, parent)
    if run is not None:
        raise InputError(f"--out {out} lies inside the run directory {run}, where only its own run writes (a "
                         "run there would be hidden from summarize and block that run's --overwrite); give a "
                         "folder outside it")
    return out


def check_out_writable(out: str, moves_aside: bool = False) -> None:
    """Refuse an --out this process cannot write here (no filesystem change): OUT itself (with
    ``moves_aside``, an --overwrite of a run: the folder OUT is moved aside and made again in), or the
    nearest existing folder it would be created below, not writable (a read-only file system included),
    or a folder name to create longer than the file system allows. Not for a command only validated here
    to run elsewhere (a plan, a SLURM script)."""
    p = _nearest_existing(out, out, "--out")
    if moves_aside and os.path.isdir(out):             # the run is moved aside in OUT's parent
        p = os.path.dirname(os.path.abspath(out))
    _check_folder_usable(p, out, "--out")
    _check_name_lengths(out, p)


def _check_name_lengths(path: str, existing: str) -> None:
    """The folder names that would be created below ``existing`` (path's nearest existing folder) must fit
    the file system's limit (NAME_MAX, os.pathconf; 255 where it is not known)."""
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    rest = os.path.relpath(os.path.abspath(path), existing)
    for name in rest.split(os.sep):
        if len(os.fsencode(name)) > limit:
            raise InputError(f"--out {path}: the folder name {name[:20]}... is {len(os.fsencode(name))} bytes long, "
                             f"above this file system's {limit}")


def _refuse_broken_link(p: str, path, what: str) -> None:
    """InputError when ``p`` is a symbolic link that leads nowhere (a dangling link or a loop): os.path.exists
    says no, yet creating it fails ('File exists')."""
    if os.path.islink(p) and not os.path.exists(p):
        raise InputError(f"{what} {path}: {p} is a symbolic link that leads nowhere (dangling, or a loop)")


def _nearest_existing(path: str, given=None, what: str = "path") -> str:
    """The nearest existing folder at or above ``path``; a broken link on the way is refused (InputError
    naming ``what`` and the ``given`` path), as the folders below it could not be created."""
    p = os.path.abspath(path)
    while not os.path.exists(p):
        _refuse_broken_link(p, path if given is None else given, what)
        p = os.path.dirname(p)
    return p


def _check_folder_usable(folder: str, path: str, what: str) -> None:
    """``folder`` (an existing ancestor of ``path``) must be a folder this process can write in."""
    if not os.path.isdir(folder):
        raise InputError(f"{what} {path}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        try:
            ro = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        except (OSError, AttributeError):
            ro = False
        raise InputError(f"{what} {path}: cannot write in {folder} "
                         f"({'a read-only file system' if ro else 'permission denied'})")


def _run_at_or_above(path: str):
    """The nearest folder at or above ``path`` that is a run directory (holds metrics.jsonl, as
    tianref.analysis.records finds runs), or None. Both the path as written and the folder it reaches
    through symbolic links are looked at (a link into a run, or 'link/..' naming the run itself)."""
    for p in dict.fromkeys((os.path.abspath(path), os.path.realpath(path))):
        while True:
            if os.path.isfile(os.path.join(p, "metrics.jsonl")):
                return p
            parent = os.path.dirname(p)
            if parent == p:
                break
            p = parent
    return None


def _run_holding(path: str, folder: str):
    """The run directory at or above ``folder`` (the one ``path`` is written in, as its text names it) or
    above the folder the OS reaches for ``path`` ('link/..' is the link target's parent there), or None."""
    return _run_at_or_above(folder) or _run_at_or_above(os.path.dirname(os.path.realpath(path)))


def _refuse_in_run(path: str, folder: str, what: str) -> None:
    run = _run_holding(path, folder)
    if run is not None:
        raise InputError(f"{what} {path} lies inside the run directory {run}, where only train writes (its "
                         "files would be replaced, or a later --overwrite refused); give a path outside it")


def check_output_file(path, what: str, make_parents: bool = True) -> str:
    """Refuse an output file path that cannot be written (no filesystem change): empty, a folder,
    below a file, in a folder (the nearest existing one, which would be created below) that is
    not writable, or inside a run directory; with ``make_parents=False`` (a writer that creates no
    folder) its folder must exist. Call it before computing what goes into the file."""
    path = os.fspath(path)
    if path.strip() == "":
        raise InputError(f"{what} is empty; give a file name")
    if path.endswith(("/", os.sep)):
        raise InputError(f"{what} {path} ends with '/': it names a folder; give a file name")
    if os.path.isdir(path):
        raise InputError(f"{what} {path} is a directory")
    _refuse_broken_link(path, path, what)
    parent = os.path.dirname(os.path.abspath(path))
    folder = _nearest_existing(parent, path, what)
    if not make_parents and folder != parent and os.path.isdir(folder):
        raise InputError(f"{what} {path}: directory {os.path.dirname(path) or '.'} does not exist")
    _check_folder_usable(folder, path, what)
    _refuse_in_run(path, parent, what)
    if os.path.basename(path) == RUN_MARK:
        raise InputError(f"{what} {path}: a file named {RUN_MARK} marks its folder as a run directory (summarize "
                         "and plot would read it as one); give another name")
    return path


def check_distinct_outputs(*named) -> None:
    """Refuse two output options of one command that name the same file (``named``: (option, path)
    pairs, None for an option not given): the second write would replace the first, which the command
    then reports as written (summarize --json and --md, thm6 and edge --json and --plot)."""
    seen = {}
    for what, path in named:
        if path is None:
            continue
        key = os.path.realpath(os.fspath(path))
        if key in seen:
            raise InputError(f"{seen[key]} and {what} name the same file {os.fspath(path)}; give each its own")
        seen[key] = what


def check_output_dir(path, what: str) -> str:
    """Refuse an output folder that cannot be written (no filesystem change): empty, an existing
    non-folder, below a file, not writable (itself or, if absent, its nearest existing ancestor), or
    a run directory or inside one."""
    path = os.fspath(path)
    if path.strip() == "":
        raise InputError(f"{what} is empty; give a directory")
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError(f"{what} {path} exists and is not a directory")
    _check_folder_usable(_nearest_existing(path, path, what), path, what)
    _refuse_in_run(path, path, what)
    return path


def check_not_in_run(path, what: str) -> str:
    """Refuse a folder for a tree of runs (sweep ROOT, reproduce --root) that is a run directory or lies
    below one (a folder holding metrics.jsonl, as tianref.analysis.records finds runs): nothing but train
    writes in a run, and summarize does not look for runs below a run."""
    _nearest_existing(os.fspath(path), os.fspath(path), what)   # a broken link on the way: refused
    run = _run_at_or_above(os.fspath(path))
    if run is not None:
        where = ("is" if run in (os.path.abspath(os.fspath(path)), os.path.realpath(os.fspath(path)))
                 else f"lies inside {run}, which is")
        raise InputError(f"{what} {path} {where} a run directory (it holds metrics.jsonl); give a folder "
                         "outside any run")
    return os.fspath(path)
