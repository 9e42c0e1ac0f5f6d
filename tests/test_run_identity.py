"""A run's identity (tianref/identity.py): fingerprint, split digest and row digest, and the cases where
a folder's files were mixed from two runs. Each resume test is named after one attack case; each asserts
exit 2 with one line, and a folder byte-identical to what it was (nothing written before validation).

The hashes are checked by a second route: the test recomputes them with hashlib from the bytes on disk
(the rows' exact lines, the split arrays), not through the module's helpers.
"""
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_checks import as_before_seals, cli, refused, snapshot
from tianref import identity
from tianref.config import TrainConfig

T = ["--M", "13", "--K", "64", "--epochs", "20", "--windows", "5"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """plain (seed 0), s1 (seed 1) and sched (a two-step schedule), each 20 epochs, checkpoint at 10."""
    root = tmp_path_factory.mktemp("identity")
    for name, extra in (("plain", []), ("s1", ["--seed", "1"]), ("sched", ["--eta-schedule", "0:1e-3,10:0"])):
        r = cli(["train"] + T + extra + ["--checkpoint-epochs", "10", "--out", str(root / name)])
        assert r.exit_code == 0, r.output
    return root


def _copy(base, name, tmp_path) -> Path:
    d = tmp_path / name
    shutil.copytree(base / name, d)
    return d


def _edit_npz(path, **changes):
    a = dict(np.load(path))
    a.update(changes)
    np.savez(path, **a)


def _edit_meta(d, fn):
    """Apply ``fn`` to the whole of d/config.json and write it back (a hand-edited or older run)."""
    p = d / "config.json"
    meta = json.loads(p.read_text())
    fn(meta)
    p.write_text(json.dumps(meta))


def _edit_config(d, fn):
    """Apply ``fn`` to the run's settings, config.json's "config"."""
    _edit_meta(d, lambda meta: fn(meta["config"]))


def _resume(d, epochs=30):
    return cli(["train", "--out", str(d), "--resume", "--epochs", str(epochs)])


# --- the hashes, by a second route --------------------------------------------------------------

def test_row_digest_chains_the_exact_lines_of_the_log(base):
    d = base / "plain"
    meta = json.loads((d / "config.json").read_text())
    F = meta["identity"]["fingerprint"]
    lines = (d / "metrics.jsonl").read_text().split("\n")[:-1]
    digest = F
    for line in lines:
        digest = hashlib.sha256((digest + "\n" + line).encode()).hexdigest()
    final = np.load(d / "checkpoints" / "final.npz")
    assert str(final["fingerprint"]) == F and str(final["rows_digest"]) == digest
    mid = np.load(d / "checkpoints" / "epoch_00010.npz")     # a named checkpoint: rows 0..10
    digest = F
    for line in lines[:11]:
        digest = hashlib.sha256((digest + "\n" + line).encode()).hexdigest()
    assert str(mid["fingerprint"]) == F and str(mid["rows_digest"]) == digest


def test_fingerprint_is_the_hash_of_the_canonical_settings(base):
    meta = json.loads((base / "sched" / "config.json").read_text())
    cfg = {k: v for k, v in meta["config"].items() if k not in ("epochs", "checkpoint_epochs")}
    assert cfg["eta_schedule"] == [[0, 0.001], [10, 0.0]]          # the schedule is part of it
    text = json.dumps({"config": cfg, "init": "seed"}, sort_keys=True, separators=(",", ":"))
    assert meta["identity"]["fingerprint"] == hashlib.sha256(text.encode()).hexdigest()
    ck = np.load(base / "sched" / "checkpoints" / "final.npz")
    raw = (np.asarray(ck["train_idx"], np.int64), np.asarray(ck["test_idx"], np.int64))
    split = hashlib.sha256(b"".join([f"{raw[0].dtype.str}{raw[0].shape}".encode() + raw[0].tobytes(), b"|",
                                     f"{raw[1].dtype.str}{raw[1].shape}".encode() + raw[1].tobytes()]))
    assert meta["identity"]["split"] == split.hexdigest()


def test_fingerprint_ignores_what_resume_may_change_and_nothing_else():
    a = TrainConfig(M=13, K=64, epochs=20)
    assert identity.fingerprint(a) == identity.fingerprint(a.replace(epochs=99, checkpoint_epochs=(3,)))
    for change in ({"seed": 1}, {"eta": 1e-3}, {"eta_schedule": ((0, 2e-4), (5, 0.0))}, {"windows": (5,)},
                   {"metrics": "core"}, {"act": "relu"}, {"group": "D13"}):
        assert identity.fingerprint(a.replace(**change)) != identity.fingerprint(a), change
    assert identity.fingerprint(a, "0" * 64) != identity.fingerprint(a)   # an --init-from run


def test_resumed_run_keeps_its_identity_and_continues_the_chain(base, tmp_path):
    d = _copy(base, "plain", tmp_path)
    before = json.loads((d / "config.json").read_text())["identity"]
    assert _resume(d).exit_code == 0
    assert json.loads((d / "config.json").read_text())["identity"] == before
    straight = tmp_path / "straight"
    assert cli(["train"] + T[:-4] + ["--epochs", "30", "--windows", "5", "--out", str(straight)]).exit_code == 0
    assert (d / "metrics.jsonl").read_bytes() == (straight / "metrics.jsonl").read_bytes()
    a, b = (np.load(x / "checkpoints" / "final.npz") for x in (d, straight))
    assert str(a["rows_digest"]) == str(b["rows_digest"]) and str(a["fingerprint"]) == str(b["fingerprint"])


# --- silent mixing on resume: each refused, nothing touched ----------------------------------

def test_resume_refuses_metrics_of_another_seed_copied_over(base, tmp_path):
    d = _copy(base, "plain", tmp_path)
    shutil.copy(base / "s1" / "metrics.jsonl", d / "metrics.jsonl")
    snap = snapshot(d)
    refused(_resume(d), "metrics.jsonl", "digest")
    assert snapshot(d) == snap


def test_resume_refuses_state_and_config_of_another_seed_copied_over(base, tmp_path):
    d = _copy(base, "plain", tmp_path)
    shutil.copy(base / "s1" / "config.json", d / "config.json")
    shutil.copy(base / "s1" / "checkpoints" / "resume.npz", d / "checkpoints" / "resume.npz")
    snap = snapshot(d)
    refused(_resume(d), "metrics.jsonl")
    assert snapshot(d) == snap


def test_resume_refuses_the_split_of_another_seed(base, tmp_path):
    d = _copy(base, "plain", tmp_path)
    other = np.load(base / "s1" / "checkpoints" / "resume.npz")
    _edit_npz(d / "checkpoints" / "resume.npz", train_idx=other["train_idx"], test_idx=other["test_idx"])
    snap = snapshot(d)
    refused(_resume(d), "split")
    assert snapshot(d) == snap


@pytest.mark.parametrize("swap", ["W_V_of_epoch_10", "an_adam_moment"])
def test_resume_refuses_a_state_whose_arrays_were_swapped_after_it_was_written(base, tmp_path, swap):
    """resume.npz (epoch 20) with W and V of the same run's epoch-10 checkpoint put in, or one Adam moment
    scaled: every shape, dtype, counter, fingerprint and digest still checks, only the seal over the file's
    arrays (identity.state_digest) does not: refused, the folder byte-identical. The seal is a second route:
    sha256 of the arrays by hand below."""
    d = _copy(base, "plain", tmp_path)
    path = d / "checkpoints" / "resume.npz"
    a = dict(np.load(path))
    h = hashlib.sha256()
    for k in sorted(a):
        if k != "state_digest":
            v = np.ascontiguousarray(a[k])
            h.update(k.encode() + b"\0" + f"{v.dtype.str}{v.shape}".encode() + v.tobytes())
    assert str(a["state_digest"]) == h.hexdigest()
    if swap == "W_V_of_epoch_10":
        old = np.load(d / "checkpoints" / "epoch_00010.npz")
        _edit_npz(path, W=old["W"], V=old["V"])
    else:
        _edit_npz(path, adam_m_W=a["adam_m_W"] * 2)
    snap = snapshot(d)
    refused(_resume(d), "its arrays are not the ones its run wrote")
    assert snapshot(d) == snap


def test_a_resume_state_whose_seal_was_removed_is_refused(base, tmp_path):
    """config.json records that the run seals every state after epoch -1 (it was started with seals): a
    resume.npz without its seal (removed along with an edit of W) is refused, the folder byte-identical."""
    d = _copy(base, "plain", tmp_path)
    assert json.loads((d / "config.json").read_text())["identity"]["sealed_after"] == -1
    a = dict(np.load(d / "checkpoints" / "resume.npz"))
    del a["state_digest"]
    a["W"] = a["W"] * a["W"].dtype.type(1.01)
    np.savez(d / "checkpoints" / "resume.npz", **a)
    snap = snapshot(d)
    refused(_resume(d), "carries no seal", "though its run seals every state after epoch -1")
    assert snapshot(d) == snap


def test_a_run_written_before_seals_resumes_and_is_sealed_from_then_on(base, tmp_path):
    """A run as a version before seals wrote it (no seal in any checkpoint, no sealed_after in config.json)
    resumes; config.json then records sealed_after = 20 (its resume epoch), the states written since are
    sealed, and its unsealed epoch-10 checkpoint is still read (thm6); a later resume state without a seal
    would be refused."""
    d = _copy(base, "plain", tmp_path)
    as_before_seals(d)
    r = _resume(d)
    assert r.exit_code == 0, r.output
    assert json.loads((d / "config.json").read_text())["identity"]["sealed_after"] == 20
    assert "state_digest" in np.load(d / "checkpoints" / "resume.npz").files
    assert "state_digest" not in np.load(d / "checkpoints" / "epoch_00010.npz").files
    r = cli(["thm6", "--run", str(d), "--at-epochs", "10", "--top-pairs", "5"])
    assert r.exit_code == 0, r.output


def _unseal(path, scale=None):
    a = dict(np.load(path))
    del a["state_digest"]
    if scale is not None:
        a["W"] = a["W"] * a["W"].dtype.type(scale)
    np.savez(path, **a)


def test_an_epoch_checkpoint_whose_seal_was_removed_is_refused_where_it_is_read(base, tmp_path):
    """epoch_00010.npz without its seal (its W edited) in a run that seals every state after epoch -1: thm6,
    which reads it, names it; --resume, which reads resume.npz only, continues (that file changes nothing
    it reads; the folder-wide seal rules tried once refused legitimate folders: crash leftovers of a
    version before seals, runs of the versions that wrote seals before they recorded sealed_after)."""
    d = _copy(base, "plain", tmp_path)
    _unseal(d / "checkpoints" / "epoch_00010.npz", scale=1.01)
    snap = snapshot(d)
    refused(cli(["thm6", "--run", str(d), "--at-epochs", "10", "--top-pairs", "5"]), "epoch_00010.npz",
            "carries no seal")
    assert snapshot(d) == snap
    r = _resume(d)
    assert r.exit_code == 0, r.output


def test_a_run_of_the_versions_that_sealed_without_recording_it_resumes_and_is_read(base, tmp_path):
    """Versions once wrote a seal on every state but no sealed_after in config.json: such a folder resumes
    (the record is then written: sealed_after = its resume epoch) and thm6 reads its states."""
    d = _copy(base, "plain", tmp_path)
    _edit_meta(d, lambda meta: meta["identity"].pop("sealed_after"))
    r = cli(["thm6", "--run", str(d), "--at-epochs", "10,20", "--top-pairs", "5"])
    assert r.exit_code == 0, r.output
    r = _resume(d)
    assert r.exit_code == 0, r.output
    assert json.loads((d / "config.json").read_text())["identity"]["sealed_after"] == 20


@pytest.mark.parametrize("change, why", [({"scheme": 2}, "scheme 1 only"), ({"scheme": "1"}, "scheme is '1'"),
                                         ({"sealed_after": "x"}, "'sealed_after' is 'x'"),
                                         ({"sealed_after": -5}, "not an epoch >= -1"),
                                         ({"sealed_after": True}, "not an epoch >= -1")])
def test_an_identity_block_of_another_scheme_or_a_malformed_seal_record_is_refused(base, tmp_path, change, why):
    d = _copy(base, "plain", tmp_path)
    _edit_meta(d, lambda meta: meta["identity"].update(change))
    snap = snapshot(d)
    refused(_resume(d), why)
    refused(cli(["summarize", str(d)]), why)
    assert snapshot(d) == snap


@pytest.mark.parametrize("key", ["spec_count", "adam_t"])
def test_resume_refuses_a_negative_step_counter_before_writing(base, tmp_path, key):
    d = _copy(base, "plain", tmp_path)
    _edit_npz(d / "checkpoints" / "resume.npz", **{key: np.int64(-7 if key == "spec_count" else -1)})
    snap = snapshot(d)
    refused(_resume(d), key)
    assert snapshot(d) == snap                    # config.json does not record a refused resume


def test_resume_refuses_sched_config_with_its_schedule_deleted(base, tmp_path):
    d = _copy(base, "sched", tmp_path)
    _edit_config(d, lambda c: c.pop("eta_schedule"))
    snap = snapshot(d)
    refused(_resume(d), "eta_schedule")
    assert snapshot(d) == snap


def test_resume_refuses_a_schedule_added_to_a_plain_config(base, tmp_path):
    d = _copy(base, "plain", tmp_path)
    _edit_config(d, lambda c: c.update(eta_schedule=[[0, 2e-4], [10, 0.0]]))
    snap = snapshot(d)
    refused(_resume(d))
    assert snapshot(d) == snap


def test_resume_refuses_a_config_edited_to_match_the_state_but_not_its_fingerprint(base, tmp_path):
    d = _copy(base, "plain", tmp_path)
    _edit_meta(d, lambda m: m["identity"].update(fingerprint="0" * 64))
    snap = snapshot(d)
    refused(_resume(d), "fingerprint")
    assert snapshot(d) == snap


def test_resume_refuses_a_run_written_before_identities(base, tmp_path):
    d = _copy(base, "plain", tmp_path)
    _edit_meta(d, lambda m: m.pop("identity"))
    snap = snapshot(d)
    refused(_resume(d), "no run fingerprint")
    assert snapshot(d) == snap


# --- done means the same run ------------------------------------------------------------------

SWEEP = ["--M", "13", "--K", "64", "--epochs", "20", "--seeds", "0", "--eta", "2e-4", "--windows", "5"]


def _sweep_folder(root: Path) -> Path:
    return root / "eta0.0002_actsqr_M13_seed0"


@pytest.mark.parametrize("plan", [True, False])
def test_sweep_refuses_a_folder_with_a_foreign_schedule_as_done(tmp_path, plan):
    root = tmp_path / "sw"
    d = _sweep_folder(root)
    r = cli(["train"] + T + ["--eta-schedule", "0:2e-4,5:0", "--out", str(d)])
    assert r.exit_code == 0, r.output
    snap = snapshot(root)
    r = cli(["sweep", str(root)] + SWEEP + (["--plan"] if plan else []))
    refused(r, str(d), "eta_schedule")
    assert snapshot(root) == snap


def test_sweep_refuses_a_done_folder_whose_log_is_another_runs(base, tmp_path):
    root = tmp_path / "sw"
    assert cli(["sweep", str(root)] + SWEEP).exit_code == 0
    d = _sweep_folder(root)
    shutil.copy(base / "s1" / "metrics.jsonl", d / "metrics.jsonl")
    snap = snapshot(root)
    refused(cli(["sweep", str(root)] + SWEEP + ["--plan"]), str(d), "metrics.jsonl")
    assert snapshot(root) == snap


def test_sweep_skips_its_own_run_and_a_run_written_before_identities(tmp_path):
    root = tmp_path / "sw"
    assert cli(["sweep", str(root)] + SWEEP).exit_code == 0
    r = cli(["sweep", str(root)] + SWEEP + ["--plan"])
    assert r.exit_code == 0 and r.stdout.strip() == ""              # done: nothing to plan
    d = _sweep_folder(root)                                           # strip the identity, as an old run
    _edit_meta(d, lambda m: m.pop("identity"))
    a = dict(np.load(d / "checkpoints" / "final.npz"))
    np.savez(d / "checkpoints" / "final.npz", **{k: v for k, v in a.items()
                                                 if k not in ("fingerprint", "rows_digest")})
    r = cli(["sweep", str(root)] + SWEEP + ["--plan"])
    assert r.exit_code == 0 and r.stdout.strip() == "", r.output      # its config recomputes to the same F
    r = cli(["sweep", str(root)] + SWEEP[:-4] + ["--eta", "1e-3", "--windows", "5", "--plan"])
    assert r.exit_code == 0                                            # another condition: another folder


def test_reproduce_plan_refuses_a_foreign_run_in_a_lifecycle_folder(tmp_path):
    root = tmp_path / "rp"
    r = cli(["reproduce", "--section", "lifecycle", "--scale", "smoke", "--root", str(root), "--plan"])
    assert r.exit_code == 0, r.output
    line = r.stdout.strip().splitlines()[0].split()
    out = Path(line[line.index("--out") + 1])
    args = line[line.index("train") + 1:]
    i = args.index("--out")
    del args[i:i + 2]
    args = [a for a in args if a != "--no-resume-state"]
    j = args.index("--eta")                                           # plant the run with a schedule
    eta = args[j + 1]
    del args[j:j + 2]
    args += ["--eta-schedule", f"0:{eta},3:0"]
    r = cli(["train"] + args + ["--out", str(out)])
    assert r.exit_code == 0, r.output
    snap = snapshot(root)
    r = cli(["reproduce", "--section", "lifecycle", "--scale", "smoke", "--root", str(root), "--plan"])
    refused(r, str(out), "eta_schedule")
    assert snapshot(root) == snap


@pytest.mark.parametrize("command", ["thm6", "edge"])
def test_analysis_refuses_a_checkpoint_copied_from_another_run(base, tmp_path, command):
    """thm6 reads a run's checkpoint as its state, and edge compares its replay with it: a checkpoint of
    another run (seed 1's epoch-10 state in seed 0's folder) is refused naming the file."""
    d = _copy(base, "plain", tmp_path)
    shutil.copy(base / "s1" / "checkpoints" / "epoch_00010.npz", d / "checkpoints" / "epoch_00010.npz")
    args = (["thm6", "--run", str(d), "--at-epochs", "10", "--top-pairs", "5"] if command == "thm6"
            else ["edge", "--run", str(d), "--at-epochs", "10"])
    refused(cli(args), "epoch_00010.npz", "another run")


@pytest.mark.parametrize("command", ["thm6 --run", "thm6 --checkpoint", "edge", "init-from"])
def test_every_reader_of_a_checkpoint_refuses_one_edited_after_it_was_written(base, tmp_path, command):
    """The epoch-10 checkpoint with W scaled by 1 + 1e-6 and its seal kept: thm6 (from the run or the file
    alone), edge and train --init-from refuse it naming the file (exit 2; edge had blamed the replay,
    thm6 and --init-from had used it); the run's folder is byte-identical and --init-from creates nothing."""
    d = _copy(base, "plain", tmp_path)
    path = d / "checkpoints" / "epoch_00010.npz"
    a = dict(np.load(path))
    _edit_npz(path, W=a["W"] * a["W"].dtype.type(1 + 1e-6))
    snap = snapshot(d)
    out = tmp_path / "from_edited"
    args = {"thm6 --run": ["thm6", "--run", str(d), "--at-epochs", "10", "--top-pairs", "5"],
            "thm6 --checkpoint": ["thm6", "--checkpoint", str(path), "--top-pairs", "5"],
            "edge": ["edge", "--run", str(d), "--at-epochs", "10"],
            "init-from": ["train", "--init-from", str(path), "--epochs", "2", "--out", str(out)]}[command]
    refused(cli(args), "epoch_00010.npz", "its arrays are not the ones its run wrote")
    assert snapshot(d) == snap and not out.exists()


def test_a_resume_state_resaved_in_fortran_order_continues_exactly(base, tmp_path):
    """resume.npz re-saved by another tool with V and the update ring in Fortran order (the same values,
    so the same seal): the run resumes, and its rows 21..30 equal an uninterrupted run's byte for byte
    (the arrays are read in C order; some BLAS kernels round a product of an F-ordered operand
    differently, which moved these rows in their last digits)."""
    d = _copy(base, "plain", tmp_path)
    path = d / "checkpoints" / "resume.npz"
    a = dict(np.load(path))
    a["V"], a["spec_buf_W"] = np.asfortranarray(a["V"]), np.asfortranarray(a["spec_buf_W"])
    np.savez(path, **a)
    with np.load(path) as z:
        assert z["V"].flags.f_contiguous and not z["V"].flags.c_contiguous     # the case under test
    r = _resume(d)
    assert r.exit_code == 0, r.output
    full = tmp_path / "full"
    assert cli(["train"] + T[:4] + ["--epochs", "30", "--windows", "5", "--checkpoint-epochs", "10",
                                    "--out", str(full)]).exit_code == 0
    assert (d / "metrics.jsonl").read_bytes() == (full / "metrics.jsonl").read_bytes()


def test_config_json_records_the_checkout_that_trained_it_and_stores_count_them(base, tmp_path):
    """config.json's "source" is the repository's HEAD (git rev-parse, a second route) and its dirty flag;
    a stored section's provenance counts its runs by that source ("not recorded" for older runs)."""
    import subprocess
    from types import SimpleNamespace
    from tianref.experiments.reproduce.store import runs_source
    repo = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    if head.returncode:
        pytest.skip("not a git checkout")
    src = json.loads((base / "plain" / "config.json").read_text())["source"]
    assert src["commit"] == head.stdout.strip() and isinstance(src["dirty"], bool)
    old = _copy(base, "s1", tmp_path)
    _edit_meta(old, lambda m: m.pop("source"))
    key = src["commit"] + (" (dirty)" if src["dirty"] else "")
    assert runs_source([SimpleNamespace(out=base / "plain"), SimpleNamespace(out=base / "sched"),
                        SimpleNamespace(out=old)]) == {key: 2, "not recorded": 1}


@pytest.mark.parametrize("plan", [True, False])
def test_sweep_refuses_a_folder_that_is_not_a_run_before_starting(tmp_path, plan):
    """A folder under the sweep's name that holds no run (notes, another tree) would be restarted with
    --overwrite, which refuses it; the sweep says so before anything starts, and nothing changes."""
    root = tmp_path / "sw"
    d = _sweep_folder(root)
    (d / "sub").mkdir(parents=True)
    (d / "notes.txt").write_text("mine\n")
    snap = snapshot(root)
    refused(cli(["sweep", str(root)] + SWEEP + (["--plan"] if plan else [])), str(d), "not empty")
    assert snapshot(root) == snap


# --- the identity checks one by one (each test fails when its check is dropped or weakened) ----------

def _init_digest_by_hand(path) -> str:
    """The documented init digest: key name, dtype, shape and bytes of W, V, train_idx, test_idx."""
    z = np.load(path)
    h = hashlib.sha256()
    for k in ("W", "V", "train_idx", "test_idx"):
        a = np.ascontiguousarray(z[k])
        h.update(k.encode() + f"{a.dtype.str}{a.shape}".encode() + a.tobytes())
    return h.hexdigest()


def test_init_from_run_records_the_digest_of_every_init_array(base, tmp_path):
    init = base / "plain" / "checkpoints" / "final.npz"          # W, V and the split, test_idx included
    d = tmp_path / "i"
    r = cli(["train"] + T + ["--init-from", str(init), "--out", str(d)])
    assert r.exit_code == 0, r.output
    meta = json.loads((d / "config.json").read_text())
    assert meta["identity"]["init"] == _init_digest_by_hand(init)
    cfg = {k: v for k, v in meta["config"].items() if k not in ("epochs", "checkpoint_epochs")}
    text = json.dumps({"config": cfg, "init": _init_digest_by_hand(init)}, sort_keys=True, separators=(",", ":"))
    assert meta["identity"]["fingerprint"] == hashlib.sha256(text.encode()).hexdigest()


def test_first_difference_names_a_setting_only_one_side_has():
    plain = identity.canonical(TrainConfig(M=13, K=64, epochs=20))
    sched = identity.canonical(TrainConfig(M=13, K=64, epochs=20, eta_schedule=((0, 2e-4), (5, 0.0))))
    assert "eta_schedule" not in plain                              # to_dict leaves an empty schedule out
    assert identity.first_difference(plain, sched) == ("eta_schedule", "absent", repr(sched["eta_schedule"]))
    assert identity.first_difference(sched, plain) == ("eta_schedule", repr(sched["eta_schedule"]), "absent")
    assert identity.first_difference(plain, dict(plain)) is None


def test_resume_refuses_a_state_whose_fingerprint_is_another_runs(base, tmp_path):
    """Same config, split and rows: only the state's fingerprint differs (an --init-from run's state)."""
    d = _copy(base, "plain", tmp_path)
    _edit_npz(d / "checkpoints" / "resume.npz", fingerprint=np.str_("0" * 64))
    snap = snapshot(d)
    refused(_resume(d), "resume.npz belongs to another run")
    assert snapshot(d) == snap


@pytest.mark.parametrize("drop", [("fingerprint", "rows_digest"), ("rows_digest",), ("fingerprint",)],
                         ids=["both", "rows_digest", "fingerprint"])
def test_resume_refuses_a_state_written_without_its_identity(base, tmp_path, drop):
    d = _copy(base, "plain", tmp_path)
    p = d / "checkpoints" / "resume.npz"
    a = dict(np.load(p))
    np.savez(p, **{k: v for k, v in a.items() if k not in drop})
    snap = snapshot(d)
    refused(_resume(d), "resume.npz carries no run fingerprint")
    assert snapshot(d) == snap


def test_resume_refuses_an_identity_block_whose_split_is_not_a_string(base, tmp_path):
    d = _copy(base, "plain", tmp_path)
    _edit_meta(d, lambda m: m["identity"].update(split=12345))
    snap = snapshot(d)
    refused(_resume(d), "its 'identity' is not a {fingerprint, init, split} object of strings")
    assert snapshot(d) == snap


def test_resume_refuses_another_runs_rows_even_when_a_torn_line_is_dropped(base, tmp_path):
    """The digest check also runs when rows past the state (here a torn last line) are dropped."""
    d = _copy(base, "plain", tmp_path)
    (d / "metrics.jsonl").write_bytes((base / "s1" / "metrics.jsonl").read_bytes() + b'{"epoch": 21, "tr')
    snap = snapshot(d)
    refused(_resume(d), "metrics.jsonl", "digest")
    assert snapshot(d) == snap


def test_resume_of_a_finished_run_at_its_own_epochs_changes_no_file(base, tmp_path):
    """r = E is inside [0, E]: accepted (exit 0, train's summary of the run on stdout), but there is nothing
    to continue: it says so, and no file changes, config.json included (no entry in "resumed")."""
    d = _copy(base, "plain", tmp_path)
    before = snapshot(d)
    r = _resume(d, epochs=20)
    assert r.exit_code == 0, r.output
    assert "already complete" in r.stderr and "nothing was changed" in r.stderr
    assert json.loads(r.stdout)["final"] == {k: json.loads((d / "metrics.jsonl").read_text().splitlines()[-1])[k]
                                             for k in ("train_loss", "test_loss", "train_acc", "test_acc")}
    assert snapshot(d) == before
    assert "resumed" not in json.loads((d / "config.json").read_text())


def test_resume_of_a_finished_run_without_resume_state_changes_no_file(base, tmp_path):
    """A run trained with --no-resume-state keeps no checkpoints/resume.npz. Finished (rows 0..E, final.npz at
    E vouching for them), --resume at its own epochs is the finished run's case above: exit 0, 'already
    complete', no file changed; asked to go further it cannot continue (exit 2, nothing changed), and a
    final.npz that does not vouch for the log (another run's) is not taken for a finished run."""
    d = _copy(base, "plain", tmp_path)
    (d / "checkpoints" / "resume.npz").unlink()                    # what --no-resume-state leaves
    before = snapshot(d)
    for args in ([], ["--epochs", "20"], ["--epochs", "20", "--checkpoint-epochs", "10"]):
        r = cli(["train", "--out", str(d), "--resume", *args])
        assert r.exit_code == 0, (args, r.output)
        assert "already complete" in r.stderr and "nothing was changed" in r.stderr
        assert json.loads(r.stdout)["epochs"] == 20
        assert snapshot(d) == before
    refused(_resume(d, epochs=30), "resume.npz")
    assert snapshot(d) == before
    shutil.copy(base / "s1" / "checkpoints" / "final.npz", d / "checkpoints" / "final.npz")
    before = snapshot(d)
    refused(cli(["train", "--out", str(d), "--resume"]), "final.npz", "another run")
    assert snapshot(d) == before


def test_resume_of_a_finished_run_with_new_checkpoint_epochs_is_a_session(base, tmp_path):
    """A finished run resumed with a setting that changes config.json is not left as it is: the change and
    the session are recorded, as for any resume."""
    d = _copy(base, "plain", tmp_path)
    r = cli(["train", "--out", str(d), "--resume", "--epochs", "20", "--checkpoint-epochs", "10,20"])
    assert r.exit_code == 0 and "already complete" not in r.stderr, r.output
    meta = json.loads((d / "config.json").read_text())
    assert meta["config"]["checkpoint_epochs"] == [10, 20] and [x["from_epoch"] for x in meta["resumed"]] == [20]
    assert (d / "checkpoints" / "epoch_00020.npz").is_file()


def test_resume_refuses_checkpoint_epochs_it_has_passed_without_one(base, tmp_path):
    """--resume --checkpoint-epochs with an epoch at or before the resume state's r that the run holds no
    checkpoint of was recorded in config.json and never written; it is refused (those it wrote, here 10,
    and r itself where r is the last epoch, are accepted: above)."""
    d = _copy(base, "plain", tmp_path)
    snap = snapshot(d)
    refused(cli(["train", "--out", str(d), "--resume", "--epochs", "30", "--checkpoint-epochs", "5,10,30"]),
            "--checkpoint-epochs 5", "already passed", "epoch 20")
    refused(cli(["train", "--out", str(d), "--resume", "--epochs", "30", "--checkpoint-epochs", "20,30"]),
            "--checkpoint-epochs 20", "already passed")          # r = 20 < E = 30: not written either
    assert snapshot(d) == snap
    (d / "checkpoints" / "epoch_00010.npz").unlink()          # a stored epoch whose file is gone: listing
    r = cli(["train", "--out", str(d), "--resume", "--epochs", "30", "--checkpoint-epochs", "10,25,30"])
    assert r.exit_code == 0, r.output                          # it again claims nothing new: accepted
    assert all((d / "checkpoints" / f"epoch_{e:05d}.npz").is_file() for e in (25, 30))


def test_every_resume_is_appended_to_the_history_in_config_json(base, tmp_path):
    d = _copy(base, "plain", tmp_path)
    assert _resume(d, epochs=22).exit_code == 0
    assert _resume(d, epochs=24).exit_code == 0
    resumed = json.loads((d / "config.json").read_text())["resumed"]
    assert [x["from_epoch"] for x in resumed] == [20, 22]


def test_resume_validates_the_changed_settings_before_writing(base, tmp_path):
    d = _copy(base, "plain", tmp_path)
    snap = snapshot(d)
    refused(cli(["train", "--out", str(d), "--resume", "--epochs", "25", "--checkpoint-epochs", "40"]),
             "checkpoint epoch 40 is outside [0, --epochs = 25]")
    assert snapshot(d) == snap


@pytest.mark.parametrize("old", [False, True], ids=["with-identity", "written-before-identities"])
def test_sweep_refuses_an_init_from_run_with_the_same_settings(base, tmp_path, old):
    """Same settings, but the split and weights come from a file: not the job's run, recorded or recomputed."""
    root = tmp_path / "sw"
    d = _sweep_folder(root)
    init = base / "plain" / "checkpoints" / "final.npz"
    r = cli(["train"] + T + ["--init-from", str(init), "--out", str(d)])
    assert r.exit_code == 0, r.output
    if old:                                                        # strip the identity, as an old run
        _edit_meta(d, lambda m: m.pop("identity"))
        for p in (d / "checkpoints").glob("*.npz"):
            a = dict(np.load(p))
            np.savez(p, **{k: v for k, v in a.items() if k not in ("fingerprint", "rows_digest")})
    snap = snapshot(root)
    refused(cli(["sweep", str(root)] + SWEEP + ["--plan"]), str(d), "another source")
    assert snapshot(root) == snap


def test_sweep_refuses_a_done_folder_whose_final_state_and_log_are_another_runs(base, tmp_path):
    """config.json is the job's, but final.npz and metrics.jsonl (consistent with each other) are seed 1's."""
    root = tmp_path / "sw"
    assert cli(["sweep", str(root)] + SWEEP).exit_code == 0
    d = _sweep_folder(root)
    for name in ("metrics.jsonl", "checkpoints/final.npz"):
        shutil.copy(base / "s1" / name, d / name)
    snap = snapshot(root)
    refused(cli(["sweep", str(root)] + SWEEP + ["--plan"]), str(d), "final.npz belongs to another run")
    assert snapshot(root) == snap


def test_a_job_with_an_init_from_file_counts_its_own_run_as_done(base, tmp_path):
    from tianref.experiments import jobs as jobs_mod
    init = base / "plain" / "checkpoints" / "final.npz"
    (job,) = jobs_mod.make_jobs(tmp_path / "sw", [{"M": 13}], (0,), 6,
                                {"K": 64, "windows": "5", "init_from": str(init)})
    argv = jobs_mod.train_argv(job, state="fresh")
    r = cli(argv[argv.index("train"):])
    assert r.exit_code == 0, r.output
    assert jobs_mod.job_state(job) == "done"


# --- a folder's other states, and the analysis commands on a mixed folder -----------------------------

@pytest.mark.parametrize("name", ["epoch_00010.npz", "final.npz"])
def test_resume_refuses_a_folder_holding_another_runs_checkpoint(base, tmp_path, name):
    """Another seed's epoch checkpoint (or final.npz) copied into the run: --resume checked only resume.npz,
    carried the foreign epoch file forward (exit 0), or called a run with a foreign final.npz 'already
    complete'. Now refused naming the file, the folder byte-identical."""
    d = _copy(base, "plain", tmp_path)
    shutil.copy(base / "s1" / "checkpoints" / name, d / "checkpoints" / name)
    snap = snapshot(d)
    for epochs in (30, 20):                                  # continued, and 'already complete'
        refused(_resume(d, epochs), name, "belongs to another run")
        assert snapshot(d) == snap


@pytest.mark.parametrize("what", ["metrics.jsonl", "config.json"])
@pytest.mark.parametrize("command", ["thm6", "edge"])
def test_thm6_and_edge_refuse_a_folder_mixed_from_two_runs(base, tmp_path, what, command):
    """Another seed's log or config.json in the run: thm6 analysed (or replayed) the other run's states as
    this one's, exit 0; edge failed with exit 1 blaming the backend. Both now refuse it, naming the file."""
    d = _copy(base, "plain", tmp_path)
    shutil.copy(base / "s1" / what, d / what)
    args = ["thm6", "--run", str(d), "--at-epochs", "12"] if command == "thm6" else \
        ["edge", "--run", str(d), "--at-epochs", "12", "--n-random", "0"]
    snap = snapshot(d)
    refused(cli(args), "final.npz" if what == "config.json" else "metrics.jsonl")
    assert snapshot(d) == snap


def test_thm6_refuses_a_log_that_runs_past_the_runs_epochs(base, tmp_path):
    """A log of a copy resumed to 30 epochs put in the 20-epoch run: its rows 0..20 are this run's, so the
    digest matched, and thm6 took epoch 30 for the run's last and replayed past its end (no --replay-beyond)."""
    d = _copy(base, "plain", tmp_path)
    longer = _copy(base, "plain", tmp_path / "l")
    assert _resume(longer, 30).exit_code == 0
    shutil.copy(longer / "metrics.jsonl", d / "metrics.jsonl")
    refused(cli(["thm6", "--run", str(d)]), "beyond the run's epochs = 20")


@pytest.mark.parametrize("command", ["summarize", "thm6", "edge"])
def test_a_config_json_stripped_of_its_identity_is_taken_for_edited(base, tmp_path, command):
    """Deleting config.json's identity block turned every fingerprint check off outside --resume: with another
    seed's log copied in, summarize reported it as this run's (exit 0) and thm6 analysed another run's
    checkpoint. A checkpoint that records a fingerprint beside a config.json without one is an edit."""
    d = _copy(base, "plain", tmp_path / "t")
    shutil.copy(base / "s1" / "metrics.jsonl", d / "metrics.jsonl")
    _edit_meta(d, lambda meta: meta.pop("identity"))
    args = {"summarize": ["summarize", str(d.parent)], "thm6": ["thm6", "--run", str(d), "--at-epochs", "10"],
            "edge": ["edge", "--run", str(d), "--at-epochs", "10", "--n-random", "0"]}[command]
    snap = snapshot(d)
    refused(cli(args), "no 'identity' block")
    assert snapshot(d) == snap
