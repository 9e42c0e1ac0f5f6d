"""Who may write a run directory, and how one is created, replaced and cleaned.

What this module guarantees (docs/reliability.md lists the test of each):

* **One writer.** ``RunLock`` holds ``fcntl.flock`` on ``OUT/.lock`` for the whole run; the
  holder's pid is written into the lock file, and a second writer is refused with a one-line
  message naming it. The lock belongs to the open file, so it is released when the process ends,
  however it ends (kill -9 included): a stale lock file never blocks anyone.
* **A refused command changes nothing.** Every input is validated before ``Session`` is entered;
  ``Session`` itself only checks and locks until the caller says the run has *started cleanly*.
* **--overwrite replaces only a run.** A non-empty OUT is replaced only when it is a run directory
  (``check_replaceable``): a config.json that is a JSON object with a 'config' object, and nothing
  beside the files a run writes (RUN_FILES; checkpoints/ holding only CHECKPOINT_FILES). Anything else
  (notes, a tree of other runs) is refused before anything is moved or created.
* **--overwrite replaces only from outside.** A path to OUT that passes through a folder inside OUT
  ('..' from OUT/checkpoints, 'run/checkpoints/..') would name another folder once the old run is
  moved aside: refused (``check_path_outside``); OUT itself as the current folder ('.') is replaced.
* **--overwrite replaces, never destroys first.** The old run's files are moved into a hidden
  sibling ``.<name>.replaced-<pid>``; the new run starts in OUT; the aside copy is deleted only once
  ``Session.started()`` is called (config.json and the first row written). A failure before that
  removes what the new run wrote and moves the old files back.
* **No leftovers.** Stale ``.tmp-*`` files of an interrupted atomic write are removed when a run
  (re)starts in the folder; a directory that holds only the lock file, such leftovers and an empty
  ``checkpoints/`` counts as empty. Only plain files are leftovers: a ``.tmp-*`` folder or link is
  someone else's (foreign: refused, never cleaned).
* **Given paths that cannot be used** (``--out ''``, a file where a folder should be, a read-only
  parent) are bad input: ``InputError`` (exit 2), never a traceback. ``check_output_file`` and
  ``check_output_dir`` check every command's output path before it computes; ``check_writable``
  checks before a --resume that every file it rewrites can be written.

Symbols
    OUT     the run directory given with --out
    LOCK    OUT/.lock, a one-line file holding the writer's pid
    ASIDE   OUT's parent / .<name>.replaced-<pid>, the old run during --overwrite
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import time

from tianref.errors import InputError, RunFailure, RunInUse
# the given paths' checks live in tianref/paths.py; re-exported here, where commands long found them
from tianref.paths import (check_out_path, check_output_dir, check_output_file,  # noqa: F401
                           describe_oserror)

LOCK = ".lock"
TMP_PREFIX = ".tmp-"
# what a run writes in OUT (name -> is a folder), and in OUT/checkpoints/ (tianref/runs.py)
RUN_FILES = {"config.json": False, "metrics.jsonl": False, "checkpoints": True}
CHECKPOINT_FILES = re.compile(r"epoch_\d{5,}\.npz|final\.npz|resume\.npz")


def check_writable(out: str) -> None:
    """Refuse a --resume of OUT that could not write all it rewrites (InputError naming the path,
    no filesystem change): config.json and metrics.jsonl (appended, or rewritten by a rename in
    OUT), checkpoints/ (its files are replaced by renames in it) and OUT itself."""
    for name, folder in (("config.json", False), ("metrics.jsonl", False), ("checkpoints", True), ("", True)):
        path = os.path.join(out, name) if name else out
        if not os.path.exists(path):
            continue                    # a missing file is resume's to report; a folder is created
        if not os.access(path, os.W_OK | (os.X_OK if folder else 0)):
            kind = "folder" if folder else "file"
            raise InputError(f"--resume: {path} is a read-only {kind}; make it writable to continue "
                             "the run (nothing was changed)")


def check_replaceable(out: str) -> None:
    """Refuse to --overwrite OUT unless it is a run directory (no filesystem change): config.json
    parses as a JSON object with a 'config' object, and OUT holds nothing but RUN_FILES, the lock and
    temp leftovers, checkpoints/ nothing but CHECKPOINT_FILES and temp leftovers."""
    from tianref.runs import read_config

    def refuse(why):
        return InputError(f"--overwrite replaces only a run directory, and {out} is not one ({why}); "
                          "nothing was changed")
    if not os.path.isfile(os.path.join(out, "config.json")):
        raise refuse("it has no config.json")
    try:
        read_config(out)
        foreign = _foreign_entry(out)
    except InputError as exc:
        raise refuse(str(exc)) from None
    except OSError as exc:
        raise refuse(describe_oserror(exc)) from None
    if foreign is not None:
        raise refuse(f"it holds {foreign}, which no run writes")


def check_path_outside(out: str) -> None:
    """Refuse to --overwrite OUT when its path, as given, passes through a folder inside OUT (no
    filesystem change): the current folder for a relative OUT ('..' from OUT/checkpoints), or a
    folder it names ('run/checkpoints/..'). Moving OUT's entries aside moves that folder too, so the
    path would then name the aside folder or nothing: the old run was split in two and the new one
    written beside it. OUT itself as the current folder ('.') stays in place and is fine."""
    top = os.path.realpath(out).rstrip(os.sep) + os.sep
    try:
        cur = os.sep if os.path.isabs(out) else os.getcwd()
    except OSError:
        return                                      # no current folder: nothing of OUT's below it
    passes = [cur]
    names = [c for c in out.split(os.sep) if c]
    for c in names[:-1]:                            # every folder the path goes through before OUT
        cur = os.path.join(cur, c)
        passes.append(cur)
    for p in passes:
        if os.path.realpath(p).startswith(top):
            raise InputError(f"--overwrite: the path {out} passes through {os.path.realpath(p)}, which lies "
                             "inside the run it replaces and would be moved aside with it; give the run's "
                             "path from outside it (nothing was changed)")


def _foreign_entry(out: str):
    """The first path below OUT (sorted) that is not a run's own file, or None."""
    for name in sorted(os.listdir(out)):
        p = os.path.join(out, name)
        if _is_leftover(out, name):
            continue
        if name not in RUN_FILES or RUN_FILES[name] != (os.path.isdir(p) and not os.path.islink(p)):
            return p
        if name == "checkpoints":
            for sub in sorted(os.listdir(p)):
                q = os.path.join(p, sub)
                if not (_is_leftover(p, sub) or (CHECKPOINT_FILES.fullmatch(sub) and os.path.isfile(q))):
                    return q
    return None


def _is_tmp_file(d: str, name: str) -> bool:
    """A temp file of an interrupted atomic write: a plain ``.tmp-*`` file (writes make no folders or
    links, so a ``.tmp-*`` folder or link is someone else's)."""
    p = os.path.join(d, name)
    return name.startswith(TMP_PREFIX) and os.path.isfile(p) and not os.path.islink(p)


def _is_leftover(d: str, name: str) -> bool:
    """The lock file, or a temp file of an interrupted atomic write."""
    return name == LOCK or _is_tmp_file(d, name)


def is_empty(out: str) -> bool:
    """True when OUT is absent or holds nothing but the lock file, temp leftovers and an empty
    checkpoints/ (what a refused or crashed-at-start run leaves)."""
    if not os.path.isdir(out):
        return True
    for name in os.listdir(out):
        if _is_leftover(out, name):
            continue
        p = os.path.join(out, name)
        if name == "checkpoints" and os.path.isdir(p) and all(_is_leftover(p, n) for n in os.listdir(p)):
            continue
        return False
    return True


def clean_stale_tmp(out: str) -> list:
    """Remove ``.tmp-*`` files of interrupted atomic writes in OUT and OUT/checkpoints (call it
    only while holding the lock: then no live writer owns them). Returns the removed paths."""
    removed = []
    for d in (out, os.path.join(out, "checkpoints")):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if _is_tmp_file(d, name):
                p = os.path.join(d, name)
                try:
                    os.unlink(p)
                    removed.append(p)
                except FileNotFoundError:
                    pass
    return removed


def lock_holder(out: str):
    """The pid that holds OUT's lock now, or None (not locked, or no lock file)."""
    path = os.path.join(out, LOCK)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _holder_pid(fd) or "unknown"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


RUNTIME_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO)    # the disk failed, not the path given


def _create_error(exc: OSError, msg: str):
    """A folder that could not be made: a full disk or an I/O error is a runtime failure (exit 1), any
    other cause (permissions, a read-only file system, a name too long) a path that cannot be used (2)."""
    return RunFailure(msg) if exc.errno in RUNTIME_ERRNOS else InputError(msg)


def _missing_levels(path: str) -> list:
    """The folders os.makedirs(path) will create, as the path spells them (a '..' through a folder not
    made yet included: makedirs creates that folder too), outermost first."""
    parts, made, p = path.split(os.sep), [], ""
    for i, part in enumerate(parts):
        p = part if i == 0 else os.path.join(p, part)
        if i == 0 and part == "":
            p = os.sep                                   # an absolute path
            continue
        if part in ("", os.curdir, os.pardir):
            continue
        if not os.path.lexists(os.path.realpath(p)):       # 'x/..' with x missing: the folder above x
            made.append(p)
    return made


def _remove_made(made) -> None:
    """Remove the folders a makedirs made (``made``, outermost first), innermost first, each only while it
    is an empty folder; stop at the first that is not."""
    for p in reversed(made or []):
        if not os.path.isdir(p) or os.path.islink(p):
            continue
        try:
            os.rmdir(p)
        except OSError:
            return


def _looks_finished(out: str) -> bool:
    """A final checkpoint, and a last row at the epochs config.json asks for (a run extended by --resume
    --epochs and stopped keeps its earlier final.npz, but its last row is short of the new epochs). Read
    for a message only: anything unreadable is 'not finished'."""
    try:
        if not os.path.isfile(os.path.join(out, "checkpoints", "final.npz")):
            return False
        with open(os.path.join(out, "config.json"), encoding="utf-8") as f:
            epochs = json.load(f)["config"]["epochs"]
        with open(os.path.join(out, "metrics.jsonl"), "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 65536))
            lines = [ln for ln in f.read().splitlines() if ln.strip()]
        return bool(lines) and json.loads(lines[-1])["epoch"] == epochs
    except (OSError, ValueError, KeyError, TypeError):
        return False


def not_empty(out: str) -> InputError:
    """The refusal of a plain start in a folder that holds something: a finished run (its final checkpoint)
    is told how to train it further, since there is nothing to 'continue' at its own --epochs."""
    if _looks_finished(out):
        return InputError(f"--out {out} holds a finished run (checkpoints/final.npz); to train it further give "
                          "--resume with a larger --epochs, or --overwrite to replace it")
    return InputError(f"--out {out} is not empty; pass --resume to continue it or --overwrite to replace it")


SWEEP_TAG = "TIANREF_SWEEP_TAG"     # set by a sweep for each process it starts: train's summary lines carry it, so
                                    # the sweep tells its child's lines from those another sweep's wrote to one log
IN_USE_MARK = " is in use by "    # in every refusal of a second writer (a sweep finds its children's in logs)


def in_use(out: str, pid) -> RunInUse:
    """The one-line refusal of a second writer; ``pid``: the holder's, if known."""
    who = f"process {pid}" if isinstance(pid, int) and pid else "another process"
    return RunInUse(f"--out {out}{IN_USE_MARK}{who} (it holds {os.path.join(out, LOCK)}); "
                      "wait for it to finish or stop it first")


def _read_pid(fd):
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def _holder_pid(fd, wait_s: float = 0.2):
    """The pid in a lock file another process holds: a holder that has just taken the lock writes its pid
    a moment later (until then the file is empty or names an earlier holder, gone), so read it again for
    up to ``wait_s`` until it names a live process; None if it never does."""
    t_end = time.monotonic() + wait_s
    while True:
        pid = _read_pid(fd)
        if pid is not None and pid_alive(pid):
            return pid
        if time.monotonic() >= t_end:
            return None
        time.sleep(0.005)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs here (another user's included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                     # EPERM: it exists, another user's
        return True
    return True


def left_behind(name: str, prefix: str) -> bool:
    """A staging file or folder ``prefix`` + 'PID-...' is a leftover: its PID runs no process but this one
    (this process has nothing in flight when it looks: a container's processes may all be pid 1), or its
    name carries no PID (an older version's)."""
    pid = name[len(prefix):].split("-")[0]
    return not (pid.isdigit() and int(pid) != os.getpid() and pid_alive(int(pid)))


class RunLock:
    """Exclusive ``flock`` on OUT/.lock, held until ``release()`` or process exit.

    ``release(restore=True)`` (a session that rolls back) leaves the lock file as it found it: removed
    if this lock created it, else its bytes and times put back. Since a holder may thus unlink the file,
    ``acquire`` keeps a lock only on the file that the path still names (else it opens the path again):
    two processes can never each hold a lock on a different inode of OUT/.lock."""

    def __init__(self, out: str):
        self.out = out
        self.path = os.path.join(out, LOCK)
        self.fd = None
        self.created = False
        self.prior = None               # (bytes, atime_ns, mtime_ns) of a lock file that existed before

    TRIES = 100                         # opens of a lock file that others keep removing, before giving up

    def _open(self):
        """(fd, created) of OUT/.lock, made if absent."""
        for _ in range(self.TRIES):
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
            except FileExistsError:
                pass
            except OSError as exc:
                raise _create_error(exc, f"--out {self.out}: cannot create its lock file "
                                         f"({describe_oserror(exc)})") from None
            try:
                return os.open(self.path, os.O_RDWR), False
            except FileNotFoundError:           # removed in between: make it (a link to nothing stays one)
                if os.path.islink(self.path):
                    raise InputError(f"--out {self.out}: its lock file {self.path} is a symbolic link to "
                                     f"{os.readlink(self.path)}, which does not exist; remove the link") from None
            except OSError as exc:
                raise InputError(f"--out {self.out}: cannot open its lock file ({describe_oserror(exc)})") from None
        raise InputError(f"--out {self.out}: its lock file {self.path} keeps being removed as it is opened")

    def _still_named(self, fd) -> bool:
        try:
            st, own = os.stat(self.path), os.fstat(fd)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)

    def acquire(self) -> "RunLock":
        for _ in range(self.TRIES):
            fd, created = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                busy = exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
                pid = _holder_pid(fd) if busy else None
                os.close(fd)
                if busy:
                    raise in_use(self.out, pid) from None
                raise InputError(f"--out {self.out}: cannot lock {self.path} ({describe_oserror(exc)})") from None
            if self._still_named(fd):
                break
            fcntl.flock(fd, fcntl.LOCK_UN)      # a holder removed that file as we opened it: again
            os.close(fd)
        else:
            raise InputError(f"--out {self.out}: its lock file {self.path} keeps being removed as it is locked")
        self.created = created
        if not created:
            try:
                st = os.fstat(fd)
                self.prior = (os.pread(fd, 64, 0), st.st_atime_ns, st.st_mtime_ns)
            except OSError:
                self.prior = None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:                      # a full disk already at the pid: name the file
            self._put_back(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise OSError(exc.errno, exc.strerror or str(exc), self.path) from None
        self.fd = fd
        return self

    def _put_back(self, fd) -> None:
        """The lock file as acquire found it: removed if it made it (only while the path still names
        this file: a rollback that removed OUT may have let another process make its own), else its
        bytes and times restored. Called while the lock is held."""
        try:
            if self.created:
                if self._still_named(fd):
                    os.unlink(self.path)
            else:
                os.ftruncate(fd, 0)
                if self.prior is not None:
                    data, atime, mtime = self.prior
                    os.pwrite(fd, data, 0)
                    os.utime(fd, ns=(atime, mtime))
        except OSError:
            pass

    def release(self, restore: bool = False) -> None:
        """Unlock. restore: leave the lock file as acquire found it (``_put_back``)."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            if restore:
                self._put_back(fd)
            else:
                try:
                    os.ftruncate(fd, 0)         # the pid is no longer the holder
                except OSError:
                    pass
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


class Session:
    """Lock OUT and prepare it for a fresh run, an --overwrite or a --resume.

    Use as a context manager around the whole run; call ``started()`` once the new run has written
    config.json and its first row. Leaving the block with an exception before ``started()`` rolls
    back: the new run's files are removed, an overwritten run is moved back, and a directory this
    session created is removed again.
    """

    def __init__(self, out: str, *, resume: bool = False, overwrite: bool = False, note=None, keep_if=None):
        if resume and overwrite:
            raise InputError("give --resume or --overwrite, not both")
        self.out = check_out_path(out)
        self.resume, self.overwrite = resume, overwrite
        self.note = note or (lambda msg: None)
        self.lock = RunLock(self.out)
        self.aside = None
        self.created = False
        self.owned = False          # True once OUT's contents are this run's (locked, old run moved)
        self.is_started = False
        self.untouched = False      # True: the caller changed nothing (a --resume of a complete run)
        self.closed = False         # True once __exit__ ran: a second call (an error path that ends the
                                    # session again) must not roll back what the first put back
        self.keep_if = keep_if      # a start (fresh or --overwrite) that leaves OUT as it is when, once
        self.kept = False           # locked, keep_if(OUT) is true (its value, kept here: how it found the
                                    # run, e.g. "complete" or "diverged"): it holds this very run, finished
        holder = lock_holder(self.out)              # a second writer learns who holds OUT, first
        if holder is not None:
            raise in_use(self.out, holder)
        if not resume and not overwrite and not is_empty(self.out) and not (keep_if and keep_if(self.out)):
            raise not_empty(self.out)
        if resume and not os.path.isdir(self.out):
            raise InputError(f"--resume: {self.out} does not exist")
        if overwrite and not is_empty(self.out):
            check_replaceable(self.out)
            check_path_outside(self.out)

    def __enter__(self) -> "Session":
        if not os.path.isdir(self.out):
            try:
                self.made = _missing_levels(self.out)        # what makedirs creates
                os.makedirs(self.out)
                self.created = True
            except FileExistsError:
                pass
            except OSError as exc:                           # the folders made before it failed go again
                _remove_made(self.made)
                raise _create_error(exc, f"--out {self.out}: cannot create it ({describe_oserror(exc)})") from None
        try:
            self.lock.acquire()
            kept = not self.resume and self.keep_if is not None and self.keep_if(self.out)
            if kept:                                # another process finished this run: nothing to do,
                self.kept, self.untouched = kept, True      # nothing touched (the lock file left as found)
                return self
            if self.resume:
                check_writable(self.out)            # before anything is rewritten or removed
            for p in clean_stale_tmp(self.out):
                self.note(f"removed {p}, left by an interrupted write")
            parent, name = os.path.split(os.path.abspath(self.out))
            for entry in sorted(os.listdir(parent)):
                if entry.startswith(f".{name}.replaced-"):
                    self.note(f"an earlier --overwrite of {self.out} was interrupted; the run it replaced "
                              f"is kept in {os.path.join(parent, entry)} (delete it when no longer needed)")
            empty = is_empty(self.out)
            if not self.resume and not self.overwrite and not empty:     # filled since the check
                raise not_empty(self.out)
            if self.overwrite and not empty:
                check_replaceable(self.out)         # again, now that OUT is locked
                self._move_aside()
            self.owned = True
            if not self.resume:
                self._makedirs(os.path.join(self.out, "checkpoints"))
        except BaseException:
            try:
                self._rollback()
            finally:
                self.lock.release(restore=True)     # __exit__ is not called when __enter__ fails
            raise
        return self

    def nothing_changed(self) -> None:
        """The run needs nothing (a --resume of a run already complete): on exit its lock file is left
        as it was found, as every other file is."""
        self.untouched = True

    def started(self) -> None:
        """The new run is known to be valid and has started: drop the replaced run for good."""
        if self.is_started:
            return
        self.is_started = True
        if self.aside is not None:
            aside, self.aside = self.aside, None
            shutil.rmtree(aside, ignore_errors=True)

    def __exit__(self, exc_type, exc, tb):
        if self.closed:
            return False
        self.closed = True
        undo = exc_type is not None and not self.is_started
        try:
            if undo:
                self._rollback()
        finally:
            self.lock.release(restore=undo or self.untouched)   # refused, rolled back or untouched: as found
        return False

    # --- internals -------------------------------------------------------------------------

    def _makedirs(self, path):
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise _create_error(exc, f"--out {self.out}: cannot create {path} ({describe_oserror(exc)})") from None

    def _move_aside(self) -> None:
        parent, name = os.path.split(os.path.abspath(self.out))
        aside = os.path.join(parent, f".{name}.replaced-{os.getpid()}")
        try:
            os.makedirs(aside)
        except OSError as exc:
            raise _create_error(exc, f"--overwrite: cannot create {aside} to keep the old run until the new "
                                     f"one has started ({describe_oserror(exc)})") from None
        try:
            for entry in os.listdir(self.out):
                if entry != LOCK:
                    os.rename(os.path.join(self.out, entry), os.path.join(aside, entry))
            self.aside = aside                      # from here a signal until OUT is owned: _rollback puts it back
        except BaseException as exc:                # an OSError, or a signal (Ctrl-C, SIGTERM) mid-way:
            self.aside = None
            try:                                    # put back what moved (all the new folder holds, also an
                moved = sorted(os.listdir(aside))   # entry whose rename returned just as the signal came)
                while moved:
                    os.rename(os.path.join(aside, moved[-1]), os.path.join(self.out, moved[-1]))
                    moved.pop()
            except OSError as back:                 # the old run is split: say where each part is
                raise RunFailure(f"--overwrite: cannot move the old run aside ({describe_oserror(exc)}) nor put "
                                 f"it back ({describe_oserror(back)}); the old run's {', '.join(sorted(moved))} lie in "
                                 f"{aside}, the rest in {self.out}: move them back by hand") from None
            try:
                os.rmdir(aside)
            except OSError:                         # the run is whole in OUT; only an empty folder stays
                pass
            if not isinstance(exc, OSError):
                raise
            raise InputError(f"--overwrite: cannot move the old run aside ({describe_oserror(exc)}); "
                             "nothing was changed") from None
        self.note(f"--overwrite: the old run is kept in {aside} until the new one has started")

    def _rollback(self) -> None:
        """Undo everything this session did to the filesystem (before ``started()``)."""
        if self.resume:
            return                                  # a resume only rewrites files atomically
        if not self.owned:                          # refused before OUT was ours: touch nothing, but
            if self.aside is not None:              # the old run moved aside just before (a signal then)
                try:
                    for entry in os.listdir(self.aside):
                        os.rename(os.path.join(self.aside, entry), os.path.join(self.out, entry))
                    os.rmdir(self.aside)
                    self.aside = None
                except OSError as exc:
                    self.note(f"could not put the old run back ({describe_oserror(exc)}); it is in {self.aside}")
            elif self.created and (self.lock.fd is not None or not os.path.lexists(os.path.join(self.out, LOCK))):
                self._remove_created()                  # (no lock file: its creation failed, a full disk)
            return
        try:
            if os.path.isdir(self.out):
                for entry in os.listdir(self.out):
                    if entry == LOCK:
                        continue
                    p = os.path.join(self.out, entry)
                    if os.path.isdir(p) and not os.path.islink(p):
                        shutil.rmtree(p)
                    else:
                        os.unlink(p)
            if self.aside is not None:
                for entry in os.listdir(self.aside):
                    os.rename(os.path.join(self.aside, entry), os.path.join(self.out, entry))
                os.rmdir(self.aside)
                self.aside = None
            elif self.created:
                self._remove_created()
        except OSError as exc:                      # never hide the original error
            where = f"; the old run is in {self.aside}" if self.aside else ""
            self.note(f"could not fully undo the start ({describe_oserror(exc)}){where}")

    def _remove_created(self) -> None:
        """Remove OUT, which this session created (and holds locked, if its lock file could be made), again,
        with the folders above it that it created, each only if empty."""
        try:
            if self.lock.fd is not None and self.lock._still_named(self.lock.fd):
                os.unlink(os.path.join(self.out, LOCK))
            os.rmdir(self.out)
        except OSError:
            return
        _remove_made(getattr(self, "made", None))
