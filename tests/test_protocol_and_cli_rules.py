"""Rules of the protocols at reduced scales, number parsing, thm6's and group's checks and the heartbeat that a
mutation audit found unguarded: each test is a hand-built case whose outcome follows from a documented promise.
"""
from tianref.experiments import protocols

CI, SMOKE = protocols.SCALES["ci"], protocols.SCALES["smoke"]


# --- protocols.py / protocols_tian.py at the reduced scales -------------------------------------------------

def test_every_section_keeps_at_most_the_scales_seed_count():
    # Scale.seeds: "at most this many seeds per condition"; docs/reproduce.md: the ci scale has two seeds,
    # smoke one seed per condition -- the lifecycle section's weight-decay intervention included
    for scale, n in ((CI, 2), (SMOKE, 1)):
        for section in protocols.SECTIONS:
            if section == "groups":                      # lists its own runs (reproduce/sections/groups.py)
                continue
            seeds = {s.options["seed"] for s in protocols.section_runs(section, scale)}
            assert seeds and seeds <= set(range(n)), (scale.name, section, sorted(seeds))


def test_tian_defaults_at_the_ci_scale_take_its_train_fraction_and_eta_factor():
    # protocols_tian.tian_default_runs: "A reduced scale keeps the grid on its small problem (M_s, its K,
    # train fraction, eta factor and epoch cap)"; docs/reproduce.md: at --scale ci, M = 23 with p = 0.5 for
    # muon, K = 512, eta x 10, at most 400 epochs. Tian's default eta is 1e-4, so 1e-3 here.
    tian = [s for s in protocols.section_runs("muon", CI) if s.tag.startswith("tian_")]
    assert len(tian) == 2 * 2 * 2                       # {ce, mse} x {adam, muon} x two seeds
    for s in tian:
        o = s.options
        assert (o["M"], o["K"], o["train_frac"], o["eta"], o["epochs"]) == (23, 512, 0.5, 1e-3, 400), s.tag


def test_muon_and_ridge_headline_runs_at_the_ci_scale_take_its_eta_factor():
    # docs/reproduce.md: at --scale ci muon and ridge run M = 23 with p = 0.5, K = 512, eta x 10 (the headline's
    # 2e-4 becomes 2e-3), at most 400 epochs
    runs = [s for s in protocols.section_runs("muon", CI) if not s.tag.startswith("tian_")]
    runs += protocols.section_runs("ridge", CI)
    assert len(runs) == 2 * 2 + 2 * 2                  # muon: {adam, muon} x 2 seeds; ridge: {trained, ridge} x 2
    for s in runs:
        o = s.options
        assert (o["M"], o["K"], o["train_frac"], o["eta"], o["epochs"]) == (23, 512, 0.5, 2e-3, 400), s.tag


# --- numtext.py ------------------------------------------------------------------------------------------------

def test_only_ascii_blanks_around_a_number_are_ignored():
    # tianref/numtext.py: "Surrounding ASCII blanks are ignored ('5, 10')"; a value has one spelling, so a
    # no-break space (U+00A0) or an ideographic space (U+3000) around the digits is refused, not stripped
    import pytest
    from tianref.numtext import parse_float, parse_int
    assert parse_int(" \t7\n") == 7 and parse_float(" 2e-4 ") == 2e-4
    for text in ("\u00a07", "7\u3000", "\u20037"):
        with pytest.raises(ValueError, match="ASCII"):
            parse_int(text)
        with pytest.raises(ValueError, match="ASCII"):
            parse_float(text)


# --- cli/thm6.py ----------------------------------------------------------------------------------------------

def test_thm6_default_epochs_are_the_papers_checkpoints_reached_plus_the_last():
    # thm6 --at-epochs help: "Default: the paper's checkpoints (50,100,175,250,300 for x^2; 100,300,500 for
    # ReLU) that the run reached, plus its last epoch" -- a ReLU run of the relu section (800 epochs) passes 500
    from tianref.cli.thm6 import default_epochs
    assert default_epochs("relu", 800) == [100, 300, 500, 800]
    assert default_epochs("relu", 400) == [100, 300, 400]
    assert default_epochs("sqr", 400) == [50, 100, 175, 250, 300, 400]
    assert default_epochs("sqr", 120) == [50, 100, 120]


# --- cli/group.py ---------------------------------------------------------------------------------------------

def test_group_reports_a_failed_sum_of_squared_degrees():
    # group's help: it prints "the checks sum d_k^2 = |H|"; a decomposition that misses an irrep (here Z3 with
    # one of its three degree-1 irreps dropped: 1 + 1 = 2 != 3) must be reported as failing, not as passing
    import types
    from tianref import groups, irreps
    from tianref.cli.group import _text, summary
    G = groups.parse_group("Z3", None)
    dec = irreps.decompose(G.table)
    ok = summary(G, dec)
    assert ok["checks"]["sum_d2"] == 3 and ok["checks"]["sum_d2_equals_order"] is True
    short = types.SimpleNamespace(classes=dec.classes, irreps=dec.irreps[:-1], degrees=dec.degrees[:-1],
                                  components=dec.components, identity=dec.identity,
                                  orthogonality_error=dec.orthogonality_error)
    s = summary(G, short)
    assert s["checks"]["sum_d2"] == 2 and s["checks"]["sum_d2_equals_order"] is False
    assert "sum d_k^2 = 2 (!= |H|)" in _text(s)


def test_thm6_refuses_a_log_with_rows_beyond_the_runs_epochs(tmp_path):
    # bad input exits 2 with one line and touches nothing: a metrics.jsonl whose rows go past config.json's
    # epochs (a log from another run) is refused, not analysed (nor replayed on to its extra epoch)
    import json
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]

    def cli(*args):
        return subprocess.run([sys.executable, str(repo / "cli.py"), *map(str, args)], capture_output=True,
                              text=True, cwd=repo, timeout=120)
    run = tmp_path / "r"
    assert cli("train", "--M", "5", "--K", "8", "--epochs", "3", "--windows", "3", "--out", run).returncode == 0
    log = run / "metrics.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    log.write_text(log.read_text() + json.dumps(dict(rows[-1], epoch=4)) + "\n")
    before = sorted((p.relative_to(tmp_path), p.stat().st_size) for p in tmp_path.rglob("*"))
    for extra in ((), ("--at-epochs", "3")):
        res = cli("thm6", "--run", run, *extra)
        assert res.returncode == 2, res.stdout
        assert len(res.stderr.splitlines()) == 1 and "beyond the run's epochs = 3" in res.stderr
    assert sorted((p.relative_to(tmp_path), p.stat().st_size) for p in tmp_path.rglob("*")) == before


# --- cli/progress.py ------------------------------------------------------------------------------------------

def test_heartbeat_speaks_at_the_first_step_at_or_past_each_tenth():
    # progress.Heartbeat: "at the first step at or past each tenth of the epochs (k = 1..10, so the last line
    # is 100 %)": for 15 epochs the tenths are 1.5, 3, 4.5, ..., 15, so the lines come at epochs
    # 2, 3, 5, 6, 8, 9, 11, 12, 14, 15 -- never at epoch 1 (6.7 %, before the first tenth)
    from tianref.cli.progress import Heartbeat
    lines = []
    hb = Heartbeat(15, "t", clock=lambda: 0.0, echo=lines.append)
    said = []
    for e in range(1, 16):
        n = len(lines)
        hb.update(1, {"epoch": e})
        if len(lines) > n:
            said.append(e)
    assert said == [2, 3, 5, 6, 8, 9, 11, 12, 14, 15]
    assert lines[-1].startswith("t: epoch 15/15 (100 %)")
