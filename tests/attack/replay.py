#!/usr/bin/env python
"""Replay every case of the attack on the tianref CLI, each in a fresh temporary folder.

    python tests/attack/replay.py [--only SUBSTR] [--keep]

Every case runs the real program (``sys.executable cli.py ...`` from the repository root, in a
subprocess) as a new user would, on tiny runs (M = 13, K = 64, 20-30 epochs), and decides *held* or
*FAILED* by the documented behaviour (README.md, docs/reliability.md):

* bad input: exit 2, exactly one non-empty stderr line, no traceback, and every folder involved
  byte-identical (relative path -> (bytes, mode); only the content of a ``.lock`` file is ignored);
* a resume that would mix two runs: the same (exit 2, the run folder unchanged);
* a sweep or ``reproduce`` that meets a foreign run in one of its folders: refused (exit 2) before
  anything starts, the message naming the folder, nothing changed;
* resuming a scheduled run with its own schedule: accepted, and rows 21..30 are the bytes an
  uninterrupted 30-epoch run logs;
* durability: the summary's temp file is fsync'd before its rename (os.fsync is recorded by a small
  wrapper around the CLI); a full disk (RLIMIT_FSIZE, SIGXFSZ ignored, so a write gets EFBIG) is
  exit 1 with a message naming the path; files written under umask 077 are 0600; a second writer
  into a folder in use is refused naming the holder's pid.

Read-only folders are simulated with chmod; when the replay runs as root (root ignores file modes)
the child drops CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER from its bounding set before
exec, so the modes apply to it.

Prints ``held  <case>`` or ``FAILED <case>: <why>`` per case, then ``held H/tried N``; exit 0 iff
every case tried held. The base runs (plain, s1, sched, ...) are trained once and copied per case.
``CASES`` (a list of ``Case``) is imported by tests/test_attack_replay.py, which checks that no case
disappears; importing this module runs nothing.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import resource
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "cli.py"
TIMEOUT_S = 300                      # one CLI call; the slowest (reproduce smoke) takes ~5 s here

SMALL = {"--M": "13", "--K": "64", "--epochs": "20"}        # T of the case list
SCHED = "0:1e-3,10:0"                                        # the `sched` run's schedule
SWEEP_FOREIGN_SCHED = "0:2e-4,5:0"


def T(**over) -> list:
    """``train --M 13 --K 64 --epochs 20`` with options replaced or added (``K="..."`` -> ``--K ...``)."""
    opts = dict(SMALL)
    for k, v in over.items():
        opts["--" + k.replace("_", "-")] = str(v)
    return ["train"] + [x for kv in opts.items() for x in kv]


def SWEEP(root) -> list:
    return ["sweep", str(root), "--eta", "2e-4", "--act", "sqr", "--M", "13", "--K", "64", "--seeds", "0",
            "--epochs", "20", "--windows", "20"]


LIFECYCLE_PLAN = ["reproduce", "--section", "lifecycle", "--scale", "smoke", "--plan"]
LIFECYCLE_FOREIGN = "sqr_eta0.002_seed0"     # a lifecycle smoke folder; the plant uses a schedule instead


def RESUME(d, epochs=30) -> list:
    return ["train", "--resume", "--epochs", str(epochs), "--out", str(d)]


# --- the case list ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    bullet: str          # the bullet of the failure list
    name: str            # one variant of it, read like the bullet
    fn: Callable         # fn(replay, folder) -> None (held) or a short reason (failed)


CASES: list = []

B_LOSS = "Data loss"
B_MIX = "Silent mixing on resume"
B_FOREIGN = "Sweeps and reproduce count a foreign run as done"
B_TRACE = "Tracebacks"
B_INPUT = "Inputs the docs promise to refuse"
B_LATE = "Checked too late, or the wrong code"
B_DUR = "Durability"
B_LINKS = "Links, nested runs, renamed checkpoints and bad batch members"


def case(bullet: str, name: str):
    def deco(fn):
        CASES.append(Case(bullet, name, fn))
        return fn
    return deco


class Skip(Exception):
    """The case cannot be set up on this machine (printed as `skip`, counted as not held)."""


# --- processes ----------------------------------------------------------------------------------

@dataclass
class Result:
    rc: Optional[int]
    out: str
    err: str
    timed_out: bool = False
    tmp: str = ""            # the replay's temporary folder, left out of the messages shown

    def lines(self) -> list:
        return [ln for ln in self.err.splitlines() if ln.strip()]

    def last(self, n=90) -> str:
        ls = self.lines()
        s = ls[-1].strip() if ls else "(no stderr)"
        if self.tmp and n < 10 ** 6:
            s = re.sub(re.escape(self.tmp) + r"/[^/\s]+/", "", s)
        return s if len(s) <= n else s[:n - 3] + "..."


def _env() -> dict:
    env = dict(os.environ)
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)
    return env


_libc = None
PR_CAPBSET_DROP = 24
DAC_CAPS = (1, 2, 3)         # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


def _drop_dac():
    """In the child, before exec: make file modes apply to root too (no-op for other users)."""
    if os.geteuid() != 0:
        return
    for cap in DAC_CAPS:
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _umask(mask):
    return lambda: os.umask(mask)


def _fsize(limit):
    def f():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return f


def _address_space(limit):
    """A guard for the absurd-size cases on a shared machine: an allocation the program attempts
    fails (MemoryError) instead of being granted; a check against the machine's memory is unaffected."""
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _chain(*fns):
    fns = [f for f in fns if f is not None]
    if not fns:
        return None

    def run():
        for f in fns:
            f()
    return run


# --- folders ------------------------------------------------------------------------------------

def snapshot(*dirs) -> dict:
    """(top, relpath) -> ("dir", mode) | (bytes, mode) | ("link", target); a .lock file's content is
    ignored (it holds the pid of the last writer), its existence and mode are not."""
    snap = {}
    for top in map(Path, dirs):
        if not top.exists():
            snap[(str(top), ".")] = None
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            for n in dirnames + filenames:
                p = Path(dirpath) / n
                key = (str(top), str(p.relative_to(top)))
                st = os.lstat(p)
                mode = stat.S_IMODE(st.st_mode)
                if stat.S_ISLNK(st.st_mode):
                    snap[key] = ("link", os.readlink(p))
                elif stat.S_ISDIR(st.st_mode):
                    snap[key] = ("dir", mode)
                elif n == ".lock":
                    snap[key] = ("lock", mode)
                else:
                    with open(p, "rb") as f:
                        snap[key] = (f.read(), mode)
    return snap


def diff(before: dict, after: dict) -> Optional[str]:
    added = sorted(k[1] for k in after.keys() - before.keys())
    removed = sorted(k[1] for k in before.keys() - after.keys())
    changed = sorted(k[1] for k in before.keys() & after.keys() if before[k] != after[k])
    parts = []
    for what, names in (("created", added), ("removed", removed), ("changed", changed)):
        if names:
            more = f" (+{len(names) - 3} more)" if len(names) > 3 else ""
            parts.append(f"{what} {', '.join(names[:3])}{more}")
    return "; ".join(parts) or None


def _chmod_tree_writable(d: Path):
    for dirpath, dirnames, _ in os.walk(d):
        for n in dirnames:
            try:
                os.chmod(os.path.join(dirpath, n), 0o755)
            except OSError:
                pass
    try:
        os.chmod(d, 0o755)
    except OSError:
        pass


def edit_json(path: Path, fn):
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def edit_npz(path: Path, **changes):
    import numpy as np
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update({k: np.asarray(v) for k, v in changes.items()})
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def edit_stored_config(path: Path, fn):
    """Edit the config dict a checkpoint stores (a JSON string under 'config')."""
    import numpy as np
    with np.load(path, allow_pickle=False) as z:
        cfg = json.loads(str(z["config"]))
    fn(cfg)
    edit_npz(path, config=np.asarray(json.dumps(cfg)))


def edit_rows(run: Path, fn):
    """fn(list of row dicts) -> list of JSON lines (str) or row dicts; rewrites metrics.jsonl."""
    p = run / "metrics.jsonl"
    rows = [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()]
    new = fn(rows)
    p.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in new))


def plan_train_args(line: str) -> list:
    """The train arguments of one --plan line (everything after `train`)."""
    words = shlex.split(line)
    return words[words.index("train") + 1:]


def replace_eta(args: list, schedule: str) -> list:
    out, i = [], 0
    while i < len(args):
        if args[i] == "--eta":
            out += ["--eta-schedule", schedule]
            i += 2
        else:
            out.append(args[i])
            i += 1
    return out


def out_of(args: list) -> str:
    return args[args.index("--out") + 1]


# --- the replay ---------------------------------------------------------------------------------

class Replay:
    def __init__(self, work: Path):
        self.work = work
        self.base_dir = work / "_base"
        self.base_dir.mkdir()
        self.bases = {}
        self._ro = None

    def cli(self, args, *, preexec=None, timeout=TIMEOUT_S, background=False, cwd=ROOT):
        cmd = [sys.executable, str(CLI)] + [str(a) for a in args]
        kw = dict(cwd=str(cwd), env=_env(), stdin=subprocess.DEVNULL, preexec_fn=preexec,
                  start_new_session=True, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if background:
            return subprocess.Popen(cmd, **kw)
        p = subprocess.Popen(cmd, **kw)
        try:
            out, err = p.communicate(timeout=timeout)
            return Result(p.returncode, out, err, tmp=str(self.work))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            return Result(None, out, err, timed_out=True, tmp=str(self.work))

    def cli_ok(self, args, **kw) -> Result:
        r = self.cli(args, **kw)
        if r.rc != 0:
            raise RuntimeError(f"setup `{' '.join(map(str, args[:2]))} ...` exited {r.rc}: {r.last()}")
        return r

    # base runs, built once on first use and copied into each case
    def base(self, name: str) -> Path:
        if name not in self.bases:
            d = self.base_dir / name
            build = {
                "plain": lambda: self.cli_ok(T(out=d)),
                "s1": lambda: self.cli_ok(T(seed=1, out=d)),
                "sched": lambda: self.cli_ok(T(eta_schedule=SCHED, out=d)),
                "sched30": lambda: self.cli_ok(T(epochs=30, eta_schedule=SCHED, out=d)),
                "sweep_foreign": lambda: self._plant(d, SWEEP(d) + ["--plan"], None, SWEEP_FOREIGN_SCHED),
                "lifecycle_foreign": lambda: self._plant(d, LIFECYCLE_PLAN + ["--root", d], LIFECYCLE_FOREIGN,
                                                         "0:0.002,5:0"),
            }[name]
            build()
            self.bases[name] = d
        return self.bases[name]

    def _plant(self, root: Path, plan_cmd: list, folder: Optional[str], schedule: str):
        """Train, into the folder a plan names, a complete run with a different eta schedule."""
        lines = [ln for ln in self.cli_ok(plan_cmd).out.splitlines() if " train " in ln]
        args = [plan_train_args(ln) for ln in lines]
        if folder is not None:
            args = [a for a in args if os.path.basename(out_of(a)) == folder]
        if not args or "--eta" not in args[0]:
            raise RuntimeError(f"no plan line with --eta for {folder or 'the sweep'}")
        self.cli_ok(["train"] + replace_eta(args[0], schedule))
        (root / ".planted").write_text(out_of(args[0]))

    def copy(self, base: str, dest: Path) -> Path:
        shutil.copytree(self.base(base), dest, symlinks=True)
        return dest

    def readonly(self):
        """The preexec that makes file modes apply to the child (root: drop the DAC capabilities)."""
        if self._ro is None:
            global _libc
            probe = self.work / "_ro_probe"
            probe.mkdir()
            (probe / "f").write_text("x")
            os.chmod(probe / "f", 0o444)
            try:
                if os.geteuid() == 0:
                    _libc = ctypes.CDLL(None, use_errno=True)
                r = subprocess.run([sys.executable, "-c", f"open({str(probe / 'f')!r}, 'a')"],
                                   preexec_fn=_drop_dac, capture_output=True, text=True)
                self._ro = _drop_dac if r.returncode != 0 else False
            except (OSError, subprocess.SubprocessError):
                self._ro = False
        if not self._ro:
            raise Skip("cannot make a folder read-only for the child here")
        return self._ro

    # the documented outcomes
    def bad_input(self, folder: Path, args, *, preexec=None, names=None, timeout=TIMEOUT_S) -> Optional[str]:
        """Exit 2, one stderr line (naming ``names`` if given), no traceback, ``folder`` unchanged."""
        before = snapshot(folder)
        r = self.cli(args, preexec=preexec, timeout=timeout)
        return refused(r, before, snapshot(folder), names)


def refused(r: Result, before: dict, after: dict, names=None) -> Optional[str]:
    why = []
    if r.timed_out:
        why.append("timed out")
    elif r.rc != 2:
        why.append(f"exit {r.rc}")
    lines = r.lines()
    if "Traceback" in r.err or "Traceback" in r.out:
        why.append(f"traceback ({r.last(60)})")
    elif len(lines) != 1 and not (r.rc == 0 and not lines):      # exit 0 already says it
        why.append(f"{len(lines)} stderr lines" + (f" ({r.last(60)})" if lines else ""))
    if names is not None and not any(names in ln for ln in lines):
        why.append(f"message does not name {names}" + ("" if why else f" ({r.last(60)})"))
    if why and lines and not any("(" in w for w in why):     # show what it said instead
        why[0] += f" ({r.last(60)})"
    d = diff(before, after)
    if d:
        why.append(d)
    return "; ".join(why) or None


def disk_full(r: Result, path) -> Optional[str]:
    """A full disk: exit 1, no traceback, the error line names ``path``."""
    why = []
    if r.timed_out:
        why.append("timed out")
    elif r.rc != 1:
        why.append(f"exit {r.rc}")
    if "Traceback" in r.err:
        why.append(f"traceback ({r.last(60)})")
    elif str(path) not in r.last(10 ** 6):
        why.append(f"message names no path ({r.last(60)!r})")
    return "; ".join(why) or None


# --- Data loss ----------------------------------------------------------------------------------

@case(B_LOSS, "train --overwrite on a folder with no config.json (notes.txt and a complete run in sub/otherrun)")
def _overwrite_non_run(rp, d):
    out = d / "DIR"
    out.mkdir()
    (out / "notes.txt").write_text("my notes\n")
    rp.copy("plain", out / "sub" / "otherrun")
    return rp.bad_input(d, T(out=out) + ["--overwrite"])


@case(B_LOSS, "train --overwrite --out .. run from the run's own checkpoints/ folder is refused, the run not split")
def _overwrite_from_inside(rp, d):
    run = rp.copy("plain", d / "run")
    before = snapshot(d)
    r = rp.cli(T(seed=1, out="..") + ["--overwrite"], cwd=run / "checkpoints")
    return refused(r, before, snapshot(d))


@case(B_LOSS, "train --overwrite --out run/checkpoints/.. (a path through the run's own folder) is refused, the run not split")
def _overwrite_through_inside(rp, d):
    rp.copy("plain", d / "run")
    before = snapshot(d)
    return refused(rp.cli(T(seed=1, out="run/checkpoints/..") + ["--overwrite"], cwd=d), before, snapshot(d))


# --- Silent mixing on resume ----------------------------------------------------------------------

def _mix(copy_files=(), npz=None, config=None, base="plain", also_stored=False):
    """Resume (to 30 epochs) a copy of ``base`` after planting s1's files, editing arrays of its
    resume.npz, or editing config.json's config (and, ``also_stored``, the config kept in resume.npz
    the same way, so the two agree)."""
    def fn(rp, d):
        run = rp.copy(base, d / base)
        src = rp.base("s1")
        for rel in copy_files:
            shutil.copy2(src / rel, run / rel)
        if npz is not None:
            edit_npz(run / "checkpoints" / "resume.npz", **npz(rp))
        if config is not None:
            edit_json(run / "config.json", lambda doc: config(doc["config"]))
            if also_stored:
                edit_stored_config(run / "checkpoints" / "resume.npz", config)
        return rp.bad_input(d, RESUME(run))
    return fn


def _s1_split(rp):
    import numpy as np
    with np.load(rp.base("s1") / "checkpoints" / "resume.npz") as z:
        return {"train_idx": z["train_idx"], "test_idx": z["test_idx"]}


def _plain_W(rp):
    """W of plain's own resume state, as stored."""
    import numpy as np
    with np.load(rp.base("plain") / "checkpoints" / "resume.npz") as z:
        return z["W"]


def _del_schedule(cfg):
    del cfg["eta_schedule"]


def _add_schedule(cfg):
    cfg["eta_schedule"] = [[0, cfg["eta"]], [10, 0.0]]      # a valid schedule from the run's own eta


case(B_MIX, "resume: metrics.jsonl of s1 copied over plain's")(_mix(copy_files=["metrics.jsonl"]))
case(B_MIX, "resume: resume.npz and config.json of s1 copied over plain's")(
    _mix(copy_files=["checkpoints/resume.npz", "config.json"]))
case(B_MIX, "resume: train_idx/test_idx of s1 in plain's resume.npz")(_mix(npz=_s1_split))
case(B_MIX, "resume: spec_count = -7 in resume.npz")(_mix(npz=lambda rp: {"spec_count": -7}))
case(B_MIX, "resume: W in resume.npz stored as float64 in a float32 run (another float dtype)")(
    _mix(npz=lambda rp: {"W": _plain_W(rp).astype("float64")}))
case(B_MIX, "resume: W in resume.npz scaled by 1 + 1e-6 (same dtype and shape: only the file's seal tells)")(
    _mix(npz=lambda rp: {"W": _plain_W(rp) * _plain_W(rp).dtype.type(1 + 1e-6)}))
case(B_MIX, "resume: eta_schedule deleted from sched's config.json")(_mix(config=_del_schedule, base="sched"))
case(B_MIX, "resume: eta_schedule deleted from sched's config.json and from the config in resume.npz")(
    _mix(config=_del_schedule, base="sched", also_stored=True))
case(B_MIX, "resume: eta_schedule added to a plain run's config.json")(_mix(config=_add_schedule))
case(B_MIX, "resume: eta_schedule added to a plain run's config.json and to the config in resume.npz")(
    _mix(config=_add_schedule, also_stored=True))


# --- Sweeps and reproduce count a foreign run as done ---------------------------------------------------

def _foreign(base: str, command):
    def fn(rp, d):
        root = rp.copy(base, d / "root")
        planted = (root / ".planted").read_text()
        folder = root / os.path.relpath(planted, rp.base(base))
        (root / ".planted").unlink()
        return rp.bad_input(d, command(root), names=folder.name)
    return fn


case(B_FOREIGN, "sweep: a folder whose name matches but whose run used --eta-schedule 0:2e-4,5:0 is refused")(
    _foreign("sweep_foreign", SWEEP))
case(B_FOREIGN, "sweep --plan: the same foreign run is refused, not left out of the plan")(
    _foreign("sweep_foreign", lambda root: SWEEP(root) + ["--plan"]))
case(B_FOREIGN, "reproduce --plan (lifecycle, smoke): a foreign run in sqr_eta0.002_seed0 is refused")(
    _foreign("lifecycle_foreign", lambda root: LIFECYCLE_PLAN + ["--root", root]))


# --- Tracebacks -------------------------------------------------------------------------------------

def _huge_lr(doc):
    doc["config"]["lr"] = 10 ** 400            # json.dumps writes the 401-digit integer


def _lr_case(command):
    def fn(rp, d):
        run = rp.copy("plain", d / "plain")
        edit_json(run / "config.json", _huge_lr)
        return rp.bad_input(d, command(run))
    return fn


case(B_TRACE, '"lr": 10**400 in config.json, then train --resume')(_lr_case(RESUME))
case(B_TRACE, '"lr": 10**400 in config.json, then edge')(
    _lr_case(lambda run: ["edge", "--run", run, "--at-epochs", "10"]))
case(B_TRACE, '"lr": 10**400 in config.json, then thm6 (epoch 10, replayed)')(
    _lr_case(lambda run: ["thm6", "--run", run, "--at-epochs", "10"]))
case(B_TRACE, "adam_t = -1 in resume.npz, then train --resume (config.json untouched)")(
    _mix(npz=lambda rp: {"adam_t": -1}))

def _row_case(i, line, command):
    """Line ``i`` of plain's metrics.jsonl replaced by ``line`` (a JSON value that is no row), then
    ``command(run)``: the log is read by the checked reader and refused naming it, not a traceback."""
    def fn(rp, d):
        run = rp.copy("plain", d / "plain")
        edit_rows(run, lambda rows: [line if j == i else r for j, r in enumerate(rows)])
        return rp.bad_input(d, command(run))
    return fn


case(B_TRACE, 'row 5 of metrics.jsonl is {"epoch": [5]}, then edge')(
    _row_case(5, '{"epoch": [5]}', lambda run: ["edge", "--run", run, "--at-epochs", "10", "--n-random", "1"]))
case(B_TRACE, "row 20 (the last) of metrics.jsonl is {}, then thm6")(
    _row_case(20, "{}", lambda run: ["thm6", "--run", run, "--at-epochs", "10", "--top-pairs", "5"]))

GUARD_AS = 8 << 30           # the absurd-size cases may not take more than this while being refused


def _absurd(**over):
    def fn(rp, d):
        return rp.bad_input(d, T(**over, out=d / "run"), preexec=_address_space(GUARD_AS))
    return fn


case(B_TRACE, "absurd size --windows 1000000000 is refused in one line")(_absurd(windows=1000000000))
case(B_TRACE, "absurd size --K 1e11 (100000000000) is refused in one line")(_absurd(K=100000000000))
case(B_TRACE, "absurd size --M 3000000 is refused in one line")(_absurd(M=3000000))


def _absurd_expr(command):
    """An expr: table of order 5000: refused like every table above order 1024, not checked against the
    group axioms first (O(M^3), hours); 60 s is far more than a refusal takes."""
    def fn(rp, d):
        return rp.bad_input(d, command(d), preexec=_address_space(GUARD_AS), timeout=60)
    return fn


case(B_TRACE, "absurd size train --group expr:x+y --M 5000 is refused in one line, at once")(
    _absurd_expr(lambda d: T(M=5000, out=d / "run") + ["--group", "expr:x+y"]))
case(B_TRACE, "absurd size group expr:x+y --M 5000 is refused in one line, at once")(
    _absurd_expr(lambda d: ["group", "expr:x+y", "--M", "5000"]))


# --- Inputs the docs promise to refuse -----------------------------------------------------------------

case(B_INPUT, '--eta-schedule "0:1e-3,,10:0" (empty item) is refused')(
    lambda rp, d: rp.bad_input(d, T(eta_schedule="0:1e-3,,10:0", out=d / "run")))
case(B_INPUT, '--eta-schedule "0:1e-3,10:0," (trailing comma) is refused')(
    lambda rp, d: rp.bad_input(d, T(eta_schedule="0:1e-3,10:0,", out=d / "run")))


@case(B_INPUT, "resume sched with its own --eta-schedule: accepted, rows 21..30 equal an uninterrupted run's")
def _resume_own_schedule(rp, d):
    run = rp.copy("sched", d / "sched")
    ref = (rp.base("sched30") / "metrics.jsonl").read_text().splitlines()
    r = rp.cli(RESUME(run) + ["--eta-schedule", SCHED])
    if r.rc != 0:
        return f"exit {r.rc} ({r.last(70)})"
    got = (run / "metrics.jsonl").read_text().splitlines()
    if len(got) != len(ref):
        return f"{len(got)} rows, an uninterrupted run has {len(ref)}"
    bad = [i for i in range(21, len(ref)) if got[i] != ref[i]]
    return f"rows {bad[0]}.. differ from the uninterrupted run ({len(bad)} rows)" if bad else None


def _empty_path(command):
    """``command(d)`` given an empty path, run from the empty folder d/cwd: click reads '' as '.', so an
    unrefused '' writes into the current folder; refused, nothing written anywhere below d."""
    def fn(rp, d):
        cwd = d / "cwd"
        cwd.mkdir()
        args = command(rp, d)
        before = snapshot(d)
        return refused(rp.cli(args, cwd=cwd), before, snapshot(d))
    return fn


case(B_INPUT, "sweep '' (an empty ROOT) is refused, nothing written in the current folder")(
    _empty_path(lambda rp, d: SWEEP("")))
case(B_INPUT, "reproduce --root '' --plan is refused")(
    _empty_path(lambda rp, d: ["reproduce", "--section", "relu", "--scale", "smoke", "--plan", "--root", ""]))
case(B_INPUT, "plot RUN --out '' is refused, no figure in the current folder")(
    _empty_path(lambda rp, d: ["plot", rp.copy("plain", d / "plain"), "--out", ""]))
case(B_INPUT, "train-batch --log-dir '' is refused before any run")(
    _empty_path(lambda rp, d: ["train-batch", "--log-dir", "", "--member",
                               shlex.join(T(out=d / "run")[1:])]))


@case(B_INPUT, "train --eta -0 is the control eta = 0 (the fingerprint of --eta 0, not a condition of its own)")
def _eta_minus_zero(rp, d):
    got = {}
    for name, eta in (("minus", "-0"), ("zero", "0")):
        r = rp.cli(T(eta=eta, epochs=3, out=d / name))
        if r.rc != 0:
            return f"--eta {eta}: exit {r.rc} ({r.last(60)})"
        doc = json.loads((d / name / "config.json").read_text())
        got[name] = (doc["identity"]["fingerprint"], json.dumps(doc["config"]["eta"]))
    if got["minus"] != got["zero"]:
        return f"--eta -0 records eta {got['minus'][1]} and another fingerprint than --eta 0"
    return None


def _edge_eps(value):
    def fn(rp, d):
        run = rp.copy("plain", d / "plain")
        return rp.bad_input(d, ["edge", "--run", run, "--at-epochs", "10", "--eps-rel", value])
    return fn


case(B_INPUT, "edge --at-epochs 0,1 (no edge before 2 updates) is refused in one line")(
    lambda rp, d: rp.bad_input(d, ["edge", "--run", rp.copy("plain", d / "plain"), "--at-epochs", "0,1"]))
case(B_INPUT, "edge --eps-rel nan is refused")(_edge_eps("nan"))
case(B_INPUT, "edge --eps-rel inf is refused")(_edge_eps("inf"))


def _log_case(edit):
    def fn(rp, d):
        run = rp.copy("plain", d / "plain")
        edit_rows(run, edit)
        return rp.bad_input(d, ["summarize", run])
    return fn


def _set_epoch(i, value):
    def edit(rows):
        rows[i]["epoch"] = value
        return rows
    return edit


def _drop_epoch(rows):
    del rows[5]["epoch"]
    return rows


def _dup_row(rows):
    return rows[:6] + [dict(rows[5])] + rows[6:]          # epochs 0..5, 5, 6..20


case(B_INPUT, "summarize: a log with a fractional epoch (5.5) is refused")(_log_case(_set_epoch(5, 5.5)))
case(B_INPUT, "summarize: a log with a row missing its epoch is refused")(_log_case(_drop_epoch))
case(B_INPUT, 'summarize: a log with a string-valued epoch ("5") is refused')(_log_case(_set_epoch(5, "5")))
case(B_INPUT, "summarize: a log with a duplicated epoch (row 5 twice) is refused")(_log_case(_dup_row))


@case(B_INPUT, "summarize: a 22-row log of a 20-epoch run is not marked complete")
def _log_22_rows(rp, d):
    """Refused as bad input (exit 2, one line), or summarised with the run not complete."""
    run = rp.copy("plain", d / "plain")
    edit_rows(run, lambda rows: rows + [dict(rows[-1], epoch=21)])
    out = d / "s.json"
    before = snapshot(d)
    r = rp.cli(["summarize", run, "--json", out])
    after = snapshot(d)
    if r.rc == 2:
        return refused(r, before, after)
    if r.rc != 0:
        return f"exit {r.rc} ({r.last(60)})"
    changed = diff(before, {k: v for k, v in after.items() if k[1] != "s.json"})
    complete = out.exists() and '"complete": true' in out.read_text()
    why = (["exit 0 and marked complete"] if complete else []) + ([changed] if changed else [])
    return "; ".join(why) or None


# --- Checked too late, or the wrong code ----------------------------------------------------------------

def _afile(d: Path) -> Path:
    f = d / "afile"
    f.write_text("a regular file\n")
    return f


def _ro_dir(d: Path) -> Path:
    ro = d / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    return ro


@case(B_LATE, "summarize --md afile/x.md is refused before computing, in one line")
def _md_below_file(rp, d):
    run = rp.copy("plain", d / "plain")
    return rp.bad_input(d, ["summarize", run, "--md", _afile(d) / "x.md"])


@case(B_LATE, "plot --out into a read-only folder is refused before computing, in one line")
def _plot_ro(rp, d):
    run = rp.copy("plain", d / "plain")
    return rp.bad_input(d, ["plot", run, "--out", _ro_dir(d)], preexec=rp.readonly())


@case(B_LATE, "edge --plot afile/x.png is refused before computing (exit 2)")
def _edge_plot_below_file(rp, d):
    run = rp.copy("plain", d / "plain")
    return rp.bad_input(d, ["edge", "--run", run, "--at-epochs", "10", "--plot", _afile(d) / "x.png"])


def _json_ro(command):
    def fn(rp, d):
        run = rp.copy("plain", d / "plain")
        return rp.bad_input(d, command(run) + ["--json", _ro_dir(d) / "x.json"], preexec=rp.readonly())
    return fn


case(B_LATE, "summarize --json into a read-only folder is exit 2")(_json_ro(lambda run: ["summarize", run]))
case(B_LATE, "edge --json into a read-only folder is exit 2")(
    _json_ro(lambda run: ["edge", "--run", run, "--at-epochs", "10"]))
case(B_LATE, "thm6 --json into a read-only folder is exit 2")(_json_ro(lambda run: ["thm6", "--run", run]))


@case(B_LATE, "metrics.jsonl read-only: train --resume is exit 2 and leaves config.json as it was")
def _resume_ro_metrics(rp, d):
    run = rp.copy("plain", d / "plain")
    os.chmod(run / "metrics.jsonl", 0o444)
    return rp.bad_input(d, RESUME(run), preexec=rp.readonly())


@case(B_LATE, "sweep --slurm afile/x.sh is refused before any folder is created")
def _slurm_below_file(rp, d):
    return rp.bad_input(d, SWEEP(d / "root") + ["--slurm", _afile(d) / "x.sh"])


@case(B_LATE, "sweep with ROOT/_logs a regular file is refused before any run starts (exit 2)")
def _logs_is_a_file(rp, d):
    root = d / "root"
    root.mkdir()
    (root / "_logs").write_text("not the log folder\n")
    return rp.bad_input(d, SWEEP(root))


@case(B_LATE, "train-batch --log-dir in a read-only folder is refused before any run (exit 2)")
def _batch_log_dir_ro(rp, d):
    member = shlex.join(T(out=d / "run")[1:])
    return rp.bad_input(d, ["train-batch", "--log-dir", _ro_dir(d) / "logs", "--member", member],
                        preexec=rp.readonly())


case(B_LATE, "sweep --python /nonexistent is refused before ROOT is created (exit 2)")(
    lambda rp, d: rp.bad_input(d, SWEEP(d / "root") + ["--python", d / "no-such-python"], names="--python"))
case(B_LATE, "reproduce --python naming a file that is not executable is refused before any folder")(
    lambda rp, d: rp.bad_input(d, ["reproduce", "--section", "relu", "--scale", "smoke", "--root", d / "root",
                                   "--python", _afile(d)], names="--python"))


@case(B_LATE, "reproduce --no-train on an empty root is refused without creating folders")
def _no_train_empty(rp, d):
    root = d / "root"
    root.mkdir()
    return rp.bad_input(d, ["reproduce", "--scale", "smoke", "--no-train", "--root", root])


# --- Durability ---------------------------------------------------------------------------------

FSYNC_WRAPPER = r'''
import atexit, json, os, runpy, sys
rec = {"fsync": [], "rename": []}
def _path(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd if isinstance(fd, int) else fd.fileno()}")
    except OSError:
        return None
def _wrap_sync(orig):
    def sync(fd):
        rec["fsync"].append(_path(fd))
        return orig(fd)
    return sync
def _wrap_rename(orig):
    def rename(src, dst, *a, **k):
        rec["rename"].append([os.path.realpath(os.fspath(src)), os.path.realpath(os.fspath(dst))])
        return orig(src, dst, *a, **k)
    return rename
for n in ("fsync", "fdatasync"):
    if hasattr(os, n):
        setattr(os, n, _wrap_sync(getattr(os, n)))
for n in ("replace", "rename"):
    setattr(os, n, _wrap_rename(getattr(os, n)))
record, cli = sys.argv[1], sys.argv[2]
atexit.register(lambda: open(record, "w").write(json.dumps(rec)))
sys.argv = [cli] + sys.argv[3:]
sys.path.insert(0, os.path.dirname(cli))
runpy.run_path(cli, run_name="__main__")
'''


def _fsync_case(flag):
    def fn(rp, d):
        run = rp.copy("plain", d / "plain")
        wrapper, record, out = d / "fsync_wrapper.py", d / "fsync.json", d / f"summary.{flag}"
        wrapper.write_text(FSYNC_WRAPPER)
        cmd = [sys.executable, str(wrapper), str(record), str(CLI), "summarize", str(run), f"--{flag}", str(out)]
        p = subprocess.run(cmd, cwd=str(ROOT), env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
        if p.returncode != 0 or not out.exists():
            return f"exit {p.returncode}, {out.name} {'written' if out.exists() else 'missing'}"
        rec = json.loads(record.read_text())
        target = os.path.realpath(out)
        synced = {os.path.realpath(x) for x in rec["fsync"] if x}
        if target in synced or any(dst == target and src in synced for src, dst in rec["rename"]):
            return None
        renamed = [src for src, dst in rec["rename"] if dst == target]
        return ("renamed into place without an fsync of its temp file" if renamed
                else "written without an fsync")
    return fn


case(B_DUR, "summarize --json fsyncs the summary before renaming it")(_fsync_case("json"))
case(B_DUR, "summarize --md fsyncs the summary before renaming it")(_fsync_case("md"))


@case(B_DUR, "full disk from the first byte: train's message names the path")
def _full_train(rp, d):
    out = d / "run"
    return disk_full(rp.cli(T(out=out), preexec=_fsize(0)), out)


@case(B_DUR, "full disk from the first byte: sweep's message names the path")
def _full_sweep(rp, d):
    root = d / "root"
    return disk_full(rp.cli(SWEEP(root), preexec=_fsize(0)), root)


@case(B_DUR, "full disk: sweep --slurm FILE's message names FILE")
def _full_slurm(rp, d):
    script = d / "x.sh"
    return disk_full(rp.cli(SWEEP(d / "root") + ["--slurm", script], preexec=_fsize(0)), script)


@case(B_DUR, "full disk: summarize --json's message names the path")
def _full_summarize(rp, d):
    run = rp.copy("plain", d / "plain")
    out = d / "s.json"
    return disk_full(rp.cli(["summarize", run, "--json", out], preexec=_fsize(0)), out)


def _modes_not(root: Path, want: int) -> list:
    bad = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            m = stat.S_IMODE(os.lstat(p).st_mode)
            if m != want:
                bad.append(f"{p.relative_to(root)} {oct(m)}")
    return sorted(bad)


@case(B_DUR, "reproduce's figures and reports under umask 077 are 0600")
def _reproduce_umask(rp, d):
    root = d / "root"
    r = rp.cli(["reproduce", "--section", "relu", "--scale", "smoke", "--jobs", "1", "--root", root],
               preexec=_umask(0o077))
    if r.rc != 0:
        return f"exit {r.rc} ({r.last(60)})"
    figs = [p for p in root.rglob("*") if p.suffix in (".png", ".pdf", ".svg")]
    if not figs:
        return "no figure written"
    bad = _modes_not(root, 0o600)
    return f"{len(bad)} files not 0600: {', '.join(bad[:3])}" if bad else None


@case(B_DUR, "plot's figures under umask 077 are 0600")
def _plot_umask(rp, d):
    run = rp.copy("plain", d / "plain")
    figs = d / "figs"
    r = rp.cli(["plot", run, "--out", figs], preexec=_umask(0o077))
    if r.rc != 0 or not figs.is_dir() or not any(figs.iterdir()):
        return f"exit {r.rc}, no figure ({r.last(60)})"
    bad = _modes_not(figs, 0o600)
    return f"{len(bad)} files not 0600: {', '.join(bad[:3])}" if bad else None


def _second_writer(mode: list):
    def fn(rp, d):
        out = d / "run"
        first = rp.cli(T(epochs=100000, out=out), background=True)
        try:
            pid, t0 = None, time.time()
            while time.time() - t0 < 60:             # until the first holds the lock and has logged a row
                lock, log = out / ".lock", out / "metrics.jsonl"
                text = lock.read_text().strip() if lock.exists() else ""
                if text.isdigit() and log.exists() and log.stat().st_size > 0 and (out / "config.json").exists():
                    pid = int(text)
                    break
                if first.poll() is not None:
                    return f"replay error: the first writer ended (exit {first.returncode})"
                time.sleep(0.05)
            if pid is None:
                return "replay error: the first writer never wrote its pid into .lock"
            if mode == ["--resume"]:
                args = RESUME(out, epochs=100000)
            else:
                args = T(epochs=100000, out=out) + mode
            r = rp.cli(args)
            why = []
            if r.rc != 2:
                why.append(f"exit {r.rc}")
            if str(pid) not in r.last(10 ** 6):
                why.append(f"message does not name pid {pid} ({r.last(60)!r})")
            if "Traceback" in r.err or len(r.lines()) != 1:
                why.append(f"{len(r.lines())} stderr lines")
            return "; ".join(why) or None
        finally:
            if first.poll() is None:
                first.send_signal(signal.SIGTERM)
                try:
                    first.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(first.pid, signal.SIGKILL)
                    first.communicate()
    return fn


case(B_DUR, "a second train into a folder in use is refused naming the holder's pid")(_second_writer([]))
case(B_DUR, "a second train --overwrite into a folder in use is refused naming the holder's pid")(
    _second_writer(["--overwrite"]))
case(B_DUR, "a second train --resume of a folder in use is refused naming the holder's pid")(
    _second_writer(["--resume"]))


# --- Links, nested runs, renamed checkpoints and bad batch members (a second review) -----------------

@case(B_LINKS, "train --out run/inner (a run inside another run's folder) is refused")
def _nested_run(rp, d):
    run = rp.copy("plain", d / "run")
    return rp.bad_input(d, T(seed=1, out=run / "inner"), names=str(run))


@case(B_LINKS, "summarize --json link/../config.json (link -> run/checkpoints) is refused, the run's config.json kept")
def _summary_through_link(rp, d):
    run = rp.copy("plain", d / "run")
    os.symlink(run / "checkpoints", d / "ck")
    return rp.bad_input(d, ["summarize", str(run), "--json", str(d / "ck" / ".." / "config.json")])


@case(B_LINKS, "sweep ROOT that is a dangling symbolic link is refused, nothing written")
def _sweep_dangling_root(rp, d):
    os.symlink(d / "nowhere", d / "root")
    return rp.bad_input(d, SWEEP(d / "root"))


@case(B_LINKS, "thm6 --json below a symbolic link loop is refused before computing")
def _thm6_json_loop(rp, d):
    run = rp.copy("plain", d / "run")
    os.symlink(d / "loop", d / "loop")
    return rp.bad_input(d, ["thm6", "--run", str(run), "--at-epochs", "20", "--json", str(d / "loop" / "t.json")])


@case(B_LINKS, "thm6 on an epoch_00010.npz that is the final checkpoint (epoch 20) renamed is refused")
def _thm6_renamed_checkpoint(rp, d):
    run = rp.copy("plain", d / "run")
    shutil.copy(run / "checkpoints" / "final.npz", run / "checkpoints" / "epoch_00010.npz")
    return rp.bad_input(d, ["thm6", "--run", str(run), "--at-epochs", "10"],
                        names=str(run / "checkpoints" / "epoch_00010.npz"))


@case(B_LINKS, "thm6 --eta 1e200 (eta^2 overflows) is refused in one line")
def _thm6_huge_eta(rp, d):
    run = rp.copy("plain", d / "run")
    return rp.bad_input(d, ["thm6", "--run", str(run), "--at-epochs", "20", "--eta", "1e200"])


@case(B_LINKS, "train-batch with one member's typo (--epoch) trains no member")
def _batch_bad_member(rp, d):
    good = " ".join(T(out=d / "a")[1:])
    bad = " ".join(T(seed=1, out=d / "b")[1:]).replace("--epochs", "--epoch")
    return rp.bad_input(d, ["train-batch", "--member", good, "--member", bad])


@case(B_INPUT, "sweep ROOT with a newline (it became a command of the --slurm script) is refused, nothing written")
def _sweep_root_newline(rp, d):
    evil = f"{d}/r\ntouch {d}/PWNED #"
    return rp.bad_input(d, ["sweep", evil, "--eta", "0", "--M", "13", "--K", "64", "--seeds", "0", "--epochs", "5",
                            "--slurm", str(d / "s.sh")])


@case(B_INPUT, "sweep ... -- --check-only (every run 'FAILED (exit 0)') is refused, nothing written")
def _sweep_check_only(rp, d):
    return rp.bad_input(d, ["sweep", str(d / "sw"), "--eta", "0", "--M", "13", "--K", "64", "--seeds", "0",
                            "--epochs", "5", "--", "--check-only"])


@case(B_INPUT, "group table: on a FIFO (it waited for a writer) is refused in one line")
def _group_table_fifo(rp, d):
    (d / "fifo").mkdir()                         # outside the snapshotted folder: reading a FIFO would block
    os.mkfifo(d / "fifo" / "t.json")
    (d / "seen").mkdir()
    return rp.bad_input(d / "seen", ["group", f"table:{d / 'fifo' / 't.json'}"], timeout=30)


@case(B_MIX, "summarize of a checkpoint-less run whose config.json was edited (eta) is refused")
def _summarize_edited_config_no_state(rp, d):
    run = rp.copy("plain", d / "tree" / "a")
    shutil.rmtree(run / "checkpoints")
    meta = json.loads((run / "config.json").read_text())
    meta["config"]["eta"] = 0.5
    (run / "config.json").write_text(json.dumps(meta))
    return rp.bad_input(d, ["summarize", str(d / "tree")], names="config.json")


@case(B_MIX, "summarize of a tree where a run's metrics.jsonl is a folder names that run (it was left out)")
def _summarize_log_is_folder(rp, d):
    run = rp.copy("plain", d / "tree" / "a")
    rp.copy("s1", d / "tree" / "b")
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").mkdir()
    return rp.bad_input(d, ["summarize", str(d / "tree")], names=str(run))


# --- main -------------------------------------------------------------------------------------------

def _slug(name: str) -> str:
    s = "".join(c if c.isalnum() else "-" for c in name.lower())
    return "-".join(x for x in s.split("-") if x)[:40]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Replay the attack's failure cases against the CLI.")
    ap.add_argument("--only", default=None, help="Only the cases whose name contains this (case-insensitive).")
    ap.add_argument("--keep", action="store_true", help="Keep the temporary folders (printed at the end).")
    ap.add_argument("--list", action="store_true", help="Print the case names and exit.")
    a = ap.parse_args(argv)
    cases = [c for c in CASES if a.only is None or a.only.lower() in c.name.lower()]
    if a.list:
        for c in cases:
            print(c.name)
        return 0
    if not cases:
        print(f"no case matches {a.only!r}", file=sys.stderr)
        return 2
    t_start = time.time()
    work = Path(tempfile.mkdtemp(prefix="tianref-replay-"))
    rp = Replay(work)
    held = tried = 0
    try:
        for i, c in enumerate(cases):
            d = work / f"{i:02d}-{_slug(c.name)}"
            d.mkdir()
            try:
                why = c.fn(rp, d)
            except Skip as exc:
                print(f"skip   {c.name}: {exc}", flush=True)
                continue
            except Exception as exc:                      # a setup that could not be made
                why = f"replay error: {type(exc).__name__}: {exc}"
            tried += 1
            if why is None:
                held += 1
                print(f"held  {c.name}", flush=True)
            else:
                print(f"FAILED {c.name}: {why}", flush=True)
            if not a.keep:
                _chmod_tree_writable(d)
                shutil.rmtree(d, ignore_errors=True)
    finally:
        if a.keep:
            print(f"(kept in {work})", file=sys.stderr, flush=True)
        else:
            _chmod_tree_writable(work)
            shutil.rmtree(work, ignore_errors=True)
    print(f"({time.time() - t_start:.0f} s)", file=sys.stderr, flush=True)
    print(f"held {held}/tried {tried}", flush=True)
    return 0 if held == tried == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main())
