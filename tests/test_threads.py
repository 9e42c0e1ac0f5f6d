"""--threads: the BLAS/OpenMP pools of a train process are set at run time (read inside the running
loop with threadpoolctl), restored when the command ends, accepted with --resume; sweep and reproduce
children get ``train --threads T`` and T in their thread variables; the default (the variables when
set, else 1)."""
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

threadpoolctl = pytest.importorskip("threadpoolctl")

from tianref import threads as blas_threads  # noqa: E402
from tianref.cli import main  # noqa: E402

TINY = ["--M", "7", "--K", "16", "--epochs", "3", "--windows", "3"]


def _blas_counts():
    return [int(i["num_threads"]) for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]


def _spy_counts(monkeypatch, name: str) -> list:
    """The BLAS pools' thread counts each time tianref.train.<name> is called (a growing list)."""
    from tianref import train as engine
    counts = []
    real = getattr(engine, name)

    def spy(*a, **k):
        counts.append(_blas_counts())
        return real(*a, **k)
    monkeypatch.setattr(engine, name, spy)
    return counts


@pytest.fixture
def seen(monkeypatch):
    """Record the BLAS pools' thread counts from inside the training loop (train.run)."""
    return _spy_counts(monkeypatch, "run")


@pytest.mark.parametrize("n", [1, 2])
def test_train_threads_sets_every_blas_pool_inside_the_run(tmp_path, seen, n):
    import scipy.linalg  # noqa: F401  (SciPy's own BLAS is a second pool in a pip install: both must move)
    # start every pool at the other count, so that a --threads that did nothing shows
    with threadpoolctl.threadpool_limits(limits=3 - n):
        before = _blas_counts()
        r = CliRunner().invoke(main, ["train", *TINY, "--threads", str(n), "--out", str(tmp_path / "r")])
        assert r.exit_code == 0, r.output
        assert _blas_counts() == before                  # restored when the command ended
    assert before and set(before) == {3 - n}
    assert seen == [[n] * len(before)]
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["versions"]["blas_threads"] == n          # recorded beside the timing


def test_train_default_is_one_thread_or_the_environment(tmp_path, seen, monkeypatch):
    for var in blas_threads.VARS:
        monkeypatch.delenv(var, raising=False)
    with threadpoolctl.threadpool_limits(limits=2):
        assert CliRunner().invoke(main, ["train", *TINY, "--out", str(tmp_path / "a")]).exit_code == 0
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert CliRunner().invoke(main, ["train", *TINY, "--out", str(tmp_path / "b")]).exit_code == 0
    assert [set(c) for c in seen] == [{1}, {2}]


def test_resume_accepts_threads(tmp_path):
    out = str(tmp_path / "r")
    assert CliRunner().invoke(main, ["train", *TINY, "--out", out]).exit_code == 0
    r = CliRunner().invoke(main, ["train", "--out", out, "--resume", "--epochs", "5", "--threads", "1"])
    assert r.exit_code == 0, r.output                  # a setting of the process, not of the run


def test_threads_below_one_is_refused(tmp_path):
    r = CliRunner().invoke(main, ["train", *TINY, "--threads", "0", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "--threads" in r.stderr and not (tmp_path / "r").exists()


def test_resolve():
    assert blas_threads.resolve(3, env={"OPENBLAS_NUM_THREADS": "2"}) == 3      # the option wins
    assert blas_threads.resolve(None, env={}) == blas_threads.DEFAULT == 1
    assert blas_threads.resolve(None, env={"OMP_NUM_THREADS": "4"}) == 4
    assert blas_threads.resolve(None, env={"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "4"}) == 2
    assert blas_threads.resolve(None, env={"OMP_NUM_THREADS": "x", "MKL_NUM_THREADS": "0"}) == 1


# --- sweep and reproduce children ----------------------------------------------------------------

@pytest.fixture
def stub(tmp_path):
    """An 'interpreter' that appends its argv and thread variables (one JSON line) to $STUB_LOG, in one
    write: sweep --jobs 2 runs two at once, and print() makes two writes (text, newline) when
    PYTHONUNBUFFERED is set, which two appending processes can interleave."""
    p = tmp_path / "stub.sh"
    p.write_text('#!/bin/bash\npython3 -c \'import json, os, sys; os.write(1, (json.dumps({"argv": sys.argv[1:], '
                 '"env": [os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", '
                 '"OMP_NUM_THREADS")]}) + "\\n").encode())\' "$@" >> "$STUB_LOG"\n')
    p.chmod(0o755)
    return p


SWEEP = ["--eta", "0", "--seeds", "0-1", "--M", "5", "--K", "8", "--epochs", "3", "--windows", "3"]


def _children(tmp_path, stub, monkeypatch, args, env=None):
    log = tmp_path / "children.jsonl"
    log.unlink(missing_ok=True)
    monkeypatch.setenv("STUB_LOG", str(log))
    for var in blas_threads.VARS:
        monkeypatch.delenv(var, raising=False)
    for k, v in (env or {}).items():
        monkeypatch.setenv(k, v)
    r = CliRunner().invoke(main, [*args, "--python", str(stub)])
    assert r.exit_code == 1                              # the stub trains nothing: every run "fails"
    return [json.loads(line) for line in log.read_text().splitlines()]


def _threads_arg(argv):
    return argv[argv.index("--threads") + 1] if "--threads" in argv else None


def test_sweep_children_get_threads_in_argv_and_env(tmp_path, stub, monkeypatch):
    root = str(tmp_path / "sw")
    kids = _children(tmp_path, stub, monkeypatch, ["sweep", root, *SWEEP, "--jobs", "2"])
    assert len(kids) == 2
    assert all(_threads_arg(k["argv"]) == "1" and k["env"] == ["1"] * 3 for k in kids)   # the default
    kids = _children(tmp_path, stub, monkeypatch, ["sweep", root, *SWEEP, "--jobs", "2", "--threads", "3"])
    assert all(_threads_arg(k["argv"]) == "3" and k["env"] == ["3"] * 3 for k in kids)
    # the caller's variable is the default, as train's own default is
    kids = _children(tmp_path, stub, monkeypatch, ["sweep", root, *SWEEP], env={"OMP_NUM_THREADS": "2"})
    assert all(_threads_arg(k["argv"]) == "2" and k["env"] == ["2"] * 3 for k in kids)


def test_reproduce_children_get_threads(tmp_path, stub, monkeypatch):
    args = ["reproduce", "--scale", "smoke", "--section", "headline", "--root", str(tmp_path / "rep"),
            "--jobs", "1", "--threads", "2"]
    kids = _children(tmp_path, stub, monkeypatch, args)
    assert kids and _threads_arg(kids[0]["argv"]) == "2" and kids[0]["env"] == ["2"] * 3


def test_plan_and_slurm_carry_threads_only_when_given(tmp_path):
    root = str(tmp_path / "sw")
    plain = CliRunner().invoke(main, ["sweep", root, *SWEEP, "--plan"]).stdout.splitlines()
    given = CliRunner().invoke(main, ["sweep", root, *SWEEP, "--plan", "--threads", "4"]).stdout.splitlines()
    assert len(plain) == len(given) == 2
    assert not any("--threads" in ln for ln in plain) and all("--threads 4" in ln for ln in given)
    script = tmp_path / "a.sh"
    assert CliRunner().invoke(main, ["sweep", root, *SWEEP, "--slurm", str(script), "--threads", "4"]).exit_code == 0
    text = script.read_text()
    assert "#SBATCH --cpus-per-task=4\n" in text and "--threads 4" in text
    assert CliRunner().invoke(main, ["sweep", root, *SWEEP, "--slurm", str(script)]).exit_code == 0
    text = script.read_text()
    assert "#SBATCH --cpus-per-task=1\n" in text and "--threads" not in text


def test_limits_reaches_scipys_own_blas_loaded_later():
    """SciPy (pip) bundles a second OpenBLAS, loaded only with scipy.linalg (the ridge solve): limits()
    loads it first, so it is limited too. Checked in a fresh process with no thread variables."""
    import subprocess
    import sys
    code = ("import json, numpy; from tianref import threads; cm = threads.limits(1); import scipy.linalg, "
            "threadpoolctl; print(json.dumps([i['num_threads'] for i in threadpoolctl.threadpool_info() "
            "if i['user_api'] == 'blas']))")
    env = {k: v for k, v in os.environ.items() if k not in blas_threads.VARS}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert set(json.loads(out.stdout)) == {1}


def test_each_resume_records_its_own_blas_threads(tmp_path):
    """config.json keeps the first session's versions.blas_threads, and every --resume entry records the
    thread count of its own session (read back from the BLAS pool by threadpoolctl, a second route)."""
    import json
    from click.testing import CliRunner
    from tianref.cli import main
    out = tmp_path / "r"
    base = ["train", "--M", "7", "--K", "16", "--epochs", "4", "--windows", "3", "--out", str(out)]
    assert CliRunner().invoke(main, base + ["--threads", "1"]).exit_code == 0
    r = CliRunner().invoke(main, ["train", "--out", str(out), "--resume", "--epochs", "6", "--threads", "2"])
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "config.json").read_text())
    assert meta["versions"]["blas_threads"] == 1
    assert [e["blas_threads"] for e in meta["resumed"]] == [2]


def test_the_cli_keeps_freed_blocks_for_reuse(monkeypatch):
    """Every command starts by raising glibc's malloc thresholds (tianref/allocator.py), and on glibc both
    settings are accepted; the numbers a run computes do not depend on it (only the page faults do)."""
    import tianref.cli as cli
    from click.testing import CliRunner
    from tianref.allocator import keep_freed_blocks
    calls = []
    monkeypatch.setattr(cli, "keep_freed_blocks", lambda: calls.append(1) or True)
    assert CliRunner().invoke(cli.main, ["group", "S3"]).exit_code == 0
    assert calls == [1]
    import platform
    if platform.libc_ver()[0] == "glibc":
        assert keep_freed_blocks() is True


# --- commands that replay a run: edge, thm6 ------------------------------------------------------

# large enough for OpenBLAS to split its float32 GEMMs over two threads (M = 13, K = 32 is not), so that
# a replay at two threads differs from a run trained at one (measured: 7e-7 in W after 30 epochs)
QUICK = ["--M", "23", "--K", "512", "--train-frac", "0.5", "--eta", "2e-3", "--epochs", "12", "--windows", "3"]


@pytest.fixture
def replayed(monkeypatch):
    """Record the BLAS pools' thread counts where a replay starts (train.setup, also edge's route)."""
    return _spy_counts(monkeypatch, "setup")


def test_edge_and_thm6_replay_at_trains_thread_count(tmp_path, monkeypatch, replayed):
    for var in blas_threads.VARS:
        monkeypatch.delenv(var, raising=False)
    out = str(tmp_path / "r")
    assert CliRunner().invoke(main, ["train", *QUICK, "--out", out]).exit_code == 0       # one thread
    replayed.clear()
    # a process whose BLAS starts at two threads (OpenBLAS's own default on a 2-core machine)
    with threadpoolctl.threadpool_limits(limits=2):
        r = CliRunner().invoke(main, ["edge", "--run", out, "--at-epochs", "12", "--n-random", "0",
                                      "--space", "W"])
        # the logged W edge split is checked against the replay to 1e-9: a replay at another thread
        # count than the run's fails that check (exit 1, "does not reproduce")
        assert r.exit_code == 0, r.output
        r = CliRunner().invoke(main, ["thm6", "--run", out, "--at-epochs", "10", "--top-pairs", "3"])
        assert r.exit_code == 0, r.output
        r = CliRunner().invoke(main, ["edge", "--run", out, "--at-epochs", "12", "--n-random", "0",
                                      "--space", "W", "--threads", "2"])
    assert [set(c) for c in replayed] == [{1}, {1}, {2}]


def test_edge_and_thm6_replay_at_the_runs_own_thread_count(tmp_path, monkeypatch, replayed):
    """A run trained with --threads 2 is replayed at two threads without --threads (its config.json
    says 2), and its edge replay passes the exact check; --threads still wins when given."""
    for var in blas_threads.VARS:
        monkeypatch.delenv(var, raising=False)
    out = str(tmp_path / "r2")
    assert CliRunner().invoke(main, ["train", *QUICK, "--threads", "2", "--out", out]).exit_code == 0
    replayed.clear()
    with threadpoolctl.threadpool_limits(limits=1):
        r = CliRunner().invoke(main, ["edge", "--run", out, "--at-epochs", "12", "--n-random", "0",
                                      "--space", "W"])
        assert r.exit_code == 0, r.output
        r = CliRunner().invoke(main, ["thm6", "--run", out, "--at-epochs", "10", "--top-pairs", "3"])
        assert r.exit_code == 0, r.output
        r = CliRunner().invoke(main, ["thm6", "--run", out, "--at-epochs", "10", "--top-pairs", "3",
                                      "--threads", "1"])
        assert r.exit_code == 0, r.output
    assert [set(c) for c in replayed] == [{2}, {2}, {1}]


def test_the_runs_own_thread_count_only_when_every_session_used_one(tmp_path):
    meta = {"versions": {"blas_threads": 2}}
    (tmp_path / "config.json").write_text(json.dumps(meta))
    assert blas_threads.of_run(tmp_path) == 2 and blas_threads.for_replay(None, tmp_path) == 2
    assert blas_threads.for_replay(3, tmp_path) == 3 and blas_threads.for_replay(None, None) is None
    meta["resumed"] = [{"from_epoch": 5, "blas_threads": 2}, {"from_epoch": 9, "blas_threads": 1}]
    (tmp_path / "config.json").write_text(json.dumps(meta))
    assert blas_threads.of_run(tmp_path) is None                 # two counts: none is the run's
    (tmp_path / "config.json").write_text("{")
    assert blas_threads.of_run(tmp_path) is None and blas_threads.of_run(tmp_path / "nowhere") is None


@pytest.mark.parametrize("batch_threads", [1, 2])
def test_train_batch_records_the_thread_count_it_trains_with(tmp_path, monkeypatch, batch_threads):
    """A member's config.json (versions.blas_threads, and a resumed session's blas_threads) holds the
    BLAS thread count the batch trained it with, seen inside the batch's loop, not the member's own
    --threads (ignored; sweep --batch --threads 2 gives every member --threads 2): on NumPy the stack's
    thread parts each use a one-thread BLAS. edge and thm6 replay a run at its recorded count."""
    from tianref import batch as engine_batch
    for var in blas_threads.VARS:
        monkeypatch.delenv(var, raising=False)
    seen = []
    run = engine_batch.run

    def spy(*a, **k):
        seen.append(_blas_counts())
        return run(*a, **k)
    monkeypatch.setattr(engine_batch, "run", spy)
    member = TINY[:-4] + ["--windows", "3", "--threads", "2"]
    r = CliRunner().invoke(main, ["train", *TINY, "--out", str(tmp_path / "m1")])      # then resumed below
    assert r.exit_code == 0, r.output
    with threadpoolctl.threadpool_limits(limits=2):               # the pools start at the other count
        r = CliRunner().invoke(main, ["train-batch", "--threads", str(batch_threads),
                                      "--member", " ".join(member + ["--epochs", "5", "--out", str(tmp_path / "m0")]),
                                      "--member", " ".join(member + ["--epochs", "5", "--seed", "1",
                                                                     "--out", str(tmp_path / "m2")]),
                                      "--member", " ".join(member + ["--epochs", "5", "--resume",
                                                                     "--out", str(tmp_path / "m1")])])
    assert r.exit_code == 0, r.output
    assert len(seen) == 2 and all(set(c) == {1} for c in seen)    # a fresh stack and a resumed one
    for name in ("m0", "m1", "m2"):
        meta = json.loads((tmp_path / name / "config.json").read_text())
        sessions = [meta["versions"]["blas_threads"]] + [s["blas_threads"] for s in meta.get("resumed") or []]
        assert sessions == ([1, 1] if name == "m1" else [1]), (name, sessions)
        assert blas_threads.of_run(tmp_path / name) == 1


def test_a_batch_trains_with_a_one_thread_blas_on_the_host_and_its_threads_on_a_gpu():
    """blas_of: on numpy and fake --threads counts the stack's thread parts, each with a one-thread BLAS;
    with cupy the stack is one part and --threads is the host BLAS's count (what config.json records)."""
    from tianref.cli.batch import blas_of
    assert [blas_of(x, 3) for x in ("numpy", "fake", "cupy")] == [1, 1, 3]
    assert blas_of("cupy", 1) == 1


def test_a_run_records_its_cpu_and_blas_kernel_set(tmp_path):
    """config.json's versions name the CPU and each BLAS with its kernel set (float32 products round by the
    kernel set: the stored ci numbers reproduce exactly under OpenBLAS's Haswell kernels, not SkylakeX's),
    read here a second way: threadpoolctl's own table and /proc/cpuinfo."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    out = tmp_path / "r"
    r = CliRunner().invoke(main, ["train", "--M", "7", "--K", "8", "--epochs", "1", "--windows", "3", "--out", str(out)])
    assert r.exit_code == 0, r.output
    v = json.loads((out / "config.json").read_text())["versions"]
    blas = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    assert v["blas"] and len(v["blas"]) <= len(blas)
    for i in blas:
        assert any(s.split()[0] == i["internal_api"] and str(i["version"]) in s and str(i.get("architecture", "")) in s
                   for s in v["blas"]), (i, v["blas"])
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")]
        if names:
            assert v["cpu"] == names[0]
    assert isinstance(v["cpu"], str) and v["cpu"]


def test_each_resume_records_its_own_cpu_and_blas_kernel_set(tmp_path, monkeypatch):
    """A run resumed on another machine trains its later epochs with that machine's kernel set: each --resume
    entry records the CPU and BLAS of its own session (here a session made to report another CPU and kernel
    set), and versions keeps the first session's."""
    from tianref import backend
    out = tmp_path / "r"
    r = CliRunner().invoke(main, ["train", "--M", "7", "--K", "8", "--epochs", "2", "--windows", "3", "--out", str(out)])
    assert r.exit_code == 0, r.output
    first = json.loads((out / "config.json").read_text())["versions"]
    monkeypatch.setattr(blas_threads, "kernels", lambda: ["openblas 0.0.0 Prescott"])
    monkeypatch.setattr(backend, "cpu_model", lambda: "another CPU")
    r = CliRunner().invoke(main, ["train", "--out", str(out), "--resume", "--epochs", "3"])
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "config.json").read_text())
    assert meta["versions"] == first
    assert [(e.get("cpu"), e.get("blas")) for e in meta["resumed"]] == [("another CPU", ["openblas 0.0.0 Prescott"])]


def test_resume_defaults_to_the_runs_own_count_and_notes_another(tmp_path, monkeypatch, seen):
    """A run trained with --threads 2, resumed with neither --threads nor a thread variable: it continues
    with its own 2 (the default 1 changed the last bits of every row after the resume, so the resumed run
    was not the uninterrupted one). A thread variable or --threads is used as given, with a note once the
    run continues (not for a refusal, which stays one line)."""
    out = tmp_path / "r"
    for var in blas_threads.VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert CliRunner().invoke(main, ["train", *TINY, "--threads", "2", "--out", str(out)]).exit_code == 0
    r = CliRunner().invoke(main, ["train", "--out", str(out), "--resume", "--epochs", "5"])
    assert r.exit_code == 0 and "BLAS thread" not in r.stderr, r.output
    assert seen[-1] and set(seen[-1]) == {2}
    r = CliRunner().invoke(main, ["train", "--out", str(out), "--resume", "--epochs", "6", "--threads", "1",
                                  "--lr", "0.5"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1, r.stderr         # refused: the refusal alone
    r = CliRunner().invoke(main, ["train", "--out", str(out), "--resume", "--epochs", "6", "--threads", "1"])
    assert r.exit_code == 0 and "was trained with 2 BLAS thread(s) and continues with 1" in r.stderr, r.output
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")                           # e.g. a SLURM task's
    r = CliRunner().invoke(main, ["train", "--out", str(out), "--resume", "--epochs", "7"])
    assert r.exit_code == 0 and set(seen[-1]) == {1}, r.output
    meta = json.loads((out / "config.json").read_text())
    assert [e["blas_threads"] for e in meta["resumed"]] == [2, 1, 1]
