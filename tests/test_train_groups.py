"""``train --group``: labels from the Cayley table, the refusals, the irrep keys on every row, resume.

Independent checks: the labels against the table read back pair by pair (and Z_M's against a + b mod M);
irrep_* against the DFT keys freq_* of tianref.fourier on Z_M with odd M (another route: the FFT);
irrep_energy against the energy through the label sums (group_fourier.energy_labels, host loops); a resumed
run against the same run done in one go.
"""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from tianref import data, group_fourier as gf, group_rows, groups, irreps, runs, train
from tianref.cli import main as cli_main
from tianref.config import TrainConfig, validate

SMALL = ["--K", "32", "--train-frac", "0.5", "--eta", "2e-3", "--lr", "1e-2", "--dtype", "float64"]


def cli(args):
    r = CliRunner().invoke(cli_main, args, catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def rows_of(out):
    return runs.read_metrics(os.path.join(out, "metrics.jsonl"))


# ---------------------------------------------------------------- config and data

def test_default_config_has_no_group_key_and_an_old_config_reads_as_zm():
    assert "group" not in TrainConfig().to_dict()
    old = TrainConfig(M=11).to_dict()
    assert TrainConfig.from_dict(old) == TrainConfig(M=11) and TrainConfig.from_dict(old).group == ""
    assert TrainConfig(M=24, group="S4").to_dict()["group"] == "S4"


def test_zm_table_gives_the_default_labels_bit_for_bit():
    for M in (7, 12):
        a, b, y = data.pairs(M)
        np.testing.assert_array_equal(y, (a + b) % M)
        a2, b2, y2 = data.pairs(M, groups.cyclic(M).table)
        for u, v in ((a, a2), (b, b2), (y, y2)):
            np.testing.assert_array_equal(u, v)
            assert u.dtype == v.dtype


def test_group_run_labels_are_the_table():
    cfg = validate(TrainConfig(M=24, K=16, n_train=200, epochs=1, group="S4"))
    problem, _ = train.setup(cfg, np)
    T = groups.parse_group("S4").table
    for idx, batch in ((problem.train_idx, problem.train), (problem.test_idx, problem.test)):
        want = [T[i // 24, i % 24] for i in idx]                    # pair by pair, index i = a*M + b
        np.testing.assert_array_equal(batch.y, want)
    assert not np.array_equal(problem.train.y, (problem.train.a + problem.train.b) % 24)   # not Z_24's
    # the split and the initial weights are those of any run of this M and seed (same draw order)
    tr, te, W0, _ = data.init_host(24, 16, 200, 0)
    np.testing.assert_array_equal(problem.train_idx, tr)


def test_cyclic_group_spec_trains_exactly_as_the_default(tmp_path):
    """--group Z13 is the default --M 13 task: every shared key of every row is equal, bit for bit."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert cli(["train", "--M", "13", "--epochs", "15", "--out", a] + SMALL)[0] == 0
    assert cli(["train", "--group", "Z13", "--epochs", "15", "--out", b] + SMALL)[0] == 0
    ra, rb = rows_of(a), rows_of(b)
    for x, y in zip(ra, rb):
        assert set(x) < set(y) and set(y) - set(x) == {"irrep_coverage", "irrep_purity_med", "irrep_energy"}
        assert all(x[k] == y[k] for k in x)
    assert "group" not in json.load(open(os.path.join(a, "config.json")))["config"]


# ---------------------------------------------------------------- refusals

def test_conflicting_M_is_refused_in_one_line(tmp_path):
    code, out, err = cli(["train", "--group", "S4", "--M", "23", "--out", str(tmp_path / "r")])
    assert code == 2 and err.count("\n") == 1 and "order 24" in err and "M = 23" in err
    assert not os.path.exists(tmp_path / "r" / "config.json")
    assert cli(["train", "--group", "S4", "--M", "24", "--epochs", "1", "--K", "8",
                "--out", str(tmp_path / "ok")])[0] == 0


@pytest.mark.parametrize("extra", [[], ["--train-frac", "0.5"]])
def test_a_group_of_order_1_is_refused_naming_the_group(tmp_path, extra):
    """Z1 (or a 1 x 1 table): '--M must be >= 2' (an option not given) or '--train-frac 0.5 ... must give
    2..0', an empty range. Now the group and its order are named."""
    code, out, err = cli(["train", "--group", "Z1", "--K", "8", "--epochs", "2", *extra, "--out", str(tmp_path / "r")])
    assert code == 2 and err.count("\n") == 1 and "--group Z1: a group of order 1" in err, err
    assert not os.path.exists(tmp_path / "r")


def _table_file(tmp_path, name, T):
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps({"name": name, "table": np.asarray(T).tolist()}))
    return str(p)


A5_ = np.arange(5)
BAD = {
    "no identity": (A5_[:, None] - A5_[None, :]) % 5,               # a - b: a right identity only
    "no inverse": np.maximum(A5_[:, None], A5_[None, :]),           # max(a, b): identity 0, no inverses
    "not associative": np.array([[0, 1, 2, 3, 4], [1, 0, 3, 4, 2], [2, 4, 0, 1, 3],   # a loop: identity 0,
                                 [3, 2, 4, 0, 1], [4, 3, 1, 2, 0]]),                  # self-inverses, Latin
}


@pytest.mark.parametrize("axiom", sorted(BAD))
def test_a_table_that_is_not_a_group_is_refused_naming_the_axiom(tmp_path, axiom):
    T = BAD[axiom]
    code, _, err = cli(["train", "--group", "table:" + _table_file(tmp_path, "bad", T), "--epochs", "1",
                        "--out", str(tmp_path / "r")])
    assert code == 2 and err.count("\n") == 1 and axiom in err, err
    assert "·" in err                                               # the witness, e.g. (1·2)·3 = ...


def test_an_expression_table_trains_without_irrep_keys(tmp_path):
    out = str(tmp_path / "e")
    code, _, err = cli(["train", "--group", "expr:x*y", "--epochs", "3", "--out", out] + SMALL)   # no --M: as
    assert code == 2 and "an expression needs the modulus M (--M)" in err and not os.path.exists(out)  # group
    assert cli(["train", "--group", "expr:x*y", "--M", "7", "--epochs", "3", "--out", out] + SMALL)[0] == 0
    T = groups.parse_group("expr:x*y", 7).table
    rows = rows_of(out)
    assert all(not any(k.startswith(("irrep_", "freq_")) for k in r) for r in rows)
    assert "energy_med" in rows[0]
    ck = runs.load_npz(os.path.join(out, "checkpoints", "final.npz"))
    cfg = TrainConfig.from_dict(json.loads(str(ck["config"])))
    problem, _ = train.setup(cfg, np)
    np.testing.assert_array_equal(problem.train.y, T[problem.train_idx // 7, problem.train_idx % 7])


# ---------------------------------------------------------------- the irrep keys

def _planted_init(tmp_path, M=13, K=32, seed=0):
    """init_host's state with units 0..5 replaced by cosines at frequencies 1..6 plus noise (purity
    near the 0.9 threshold), so that coverage is non-zero and moves as training perturbs them."""
    tr, _, W, V = data.init_host(M, K, int(round(0.5 * M * M)), seed)
    a = np.arange(M)
    rng = np.random.default_rng(seed)
    for j in range(6):
        c = np.cos(2 * np.pi * (j + 1) * a / M + j)
        W[:, j] = 0.3 * np.concatenate([c, np.roll(c, j)]) + 0.08 * rng.standard_normal(2 * M)
    p = tmp_path / "init.npz"
    np.savez(p, W=W, V=V, train_idx=tr)
    return str(p)


def test_irrep_keys_equal_freq_keys_on_zm_odd_on_every_row(tmp_path):
    out = str(tmp_path / "z")
    args = ["--K", "32", "--eta", "2e-3", "--lr", "1e-2", "--dtype", "float64"]
    assert cli(["train", "--group", "Z13", "--init-from", _planted_init(tmp_path), "--epochs", "40",
                "--out", out] + args)[0] == 0
    rows = rows_of(out)
    covs = set()
    for r in rows:
        assert r["irrep_coverage"] == r["freq_coverage"], r["epoch"]
        # two routes to the same purity (FFT against matrix irreps): rounding only, ~1e-15
        assert r["irrep_purity_med"] == pytest.approx(r["freq_purity_med"], rel=1e-12, abs=1e-15), r["epoch"]
        assert len(r["irrep_energy"]) == 6                          # (13 - 1) / 2 components
        covs.add(r["freq_coverage"])
    assert len(covs) > 1                                            # coverage moved: the test sees something


def test_irrep_energy_is_the_label_sum_energy_of_the_normalised_units(tmp_path):
    out = str(tmp_path / "s")
    assert cli(["train", "--group", "S3", "--epochs", "5", "--out", out] + SMALL)[0] == 0
    ck = runs.load_npz(os.path.join(out, "checkpoints", "final.npz"))
    W = ck["W"]
    T = groups.parse_group("S3").table
    want = 0.0
    for j in range(W.shape[1]):                                     # host loop, the definition
        u = W[:, j] / np.linalg.norm(W[:, j])
        want += gf.energy_labels(T, u[:6], u[6:])
    got = rows_of(out)[-1]["irrep_energy"]
    assert len(got) == 2                                            # sign, 2-dim irrep
    assert sum(got) == pytest.approx(want, rel=1e-10)               # float64 sums of ~1e2 terms


@pytest.mark.parametrize("spec", ["S3", "S4", "A4", "Q8xZ3", "Z10", "D5"])   # S4: degrees 1, 2, 3 padded to 3
def test_plancherel_route_equals_the_projector_routes(spec):
    """P and E by matrix irreps equal the projector power and the label-sum energies (another route)."""
    G = groups.parse_group(spec)
    dec = irreps.decompose(G.table)
    M = G.order
    W = np.random.default_rng(1).standard_normal((2 * M, 9))
    W[:, 4] = 0.0                                                   # a dead unit contributes nothing
    P, E = gf.plancherel_power_energies(np, W, gf.plancherel_blocks(dec, G.table))
    Q, S = gf.component_basis(dec)
    np.testing.assert_allclose(P, gf.component_power(np, W, G), rtol=1e-12, atol=1e-12 * P.max())
    E2 = gf.component_energies(np, W, gf.quotient_index(G.table), (Q.T, S))
    E3 = sum(gf.energy_components(dec, G.table, W[:M, j] / np.linalg.norm(W[:, j]),
                                  W[M:, j] / np.linalg.norm(W[:, j]))[1:] for j in range(9) if j != 4)
    np.testing.assert_allclose(E, E2, rtol=1e-11)                   # float64, sums of <= M^2 K terms
    np.testing.assert_allclose(E, E3, rtol=1e-11)


def test_other_activations_use_the_label_sum_route(tmp_path):
    out = str(tmp_path / "r")
    assert cli(["train", "--group", "S3", "--act", "relu", "--epochs", "2", "--out", out] + SMALL)[0] == 0
    ck = runs.load_npz(os.path.join(out, "checkpoints", "final.npz"))
    W, T = ck["W"], groups.parse_group("S3").table
    want = sum(gf.energy_labels(T, W[:6, j] / np.linalg.norm(W[:, j]), W[6:, j] / np.linalg.norm(W[:, j]), "relu")
               for j in range(W.shape[1]))
    assert sum(rows_of(out)[-1]["irrep_energy"]) == pytest.approx(want, rel=1e-10)


def _row0(spec, M, act):
    """The row-0 keys of a --group run (no training step) and its host W (2M, K) float64."""
    cfg = validate(TrainConfig(M=M, K=8, n_train=max(2, M * M // 2), epochs=1, group=spec, act=act,
                               dtype="float64"))
    problem, state = train.setup(cfg, np)
    row, _ = train.evaluate(np, cfg, state, problem)
    return row, np.asarray(state.params["W"]), problem.group


def _label_sum_energy(spec, W, act):
    """sum_j E(w_j / ||w_j||) on the full table by host loops (group_fourier.energy_labels)."""
    T, M = groups.parse_group(spec).table, W.shape[0] // 2
    return sum(gf.energy_labels(T, W[:M, j] / np.linalg.norm(W[:, j]), W[M:, j] / np.linalg.norm(W[:, j]), act)
               for j in range(W.shape[1]))


@pytest.mark.parametrize("act", ["relusqr", "relu", "sqr"])
def test_each_activation_takes_a_route_that_gives_its_own_energy(act):
    """irrep_energy of row 0 is the label-sum energy of sigma itself: the Plancherel route holds for x^2 alone
    (relu^2 is not a polynomial: that route would give x^2's energy). S3 is not Z_M's addition table, so no
    freq_* key (the DFT view means nothing on that labelling); its two non-trivial components (sign, the
    2-dim irrep) are the view's n_comp on either route."""
    row, W, view = _row0("S3", 6, act)
    # two float64 routes over <= M^2 K = 288 activations each: rounding only (~1e-15 relative)
    assert sum(row["irrep_energy"]) == pytest.approx(_label_sum_energy("S3", W, act), rel=1e-10)
    assert len(row["irrep_energy"]) == 2 and view.n_comp == 2
    assert not any(k.startswith("freq_") for k in row)


def test_the_group_of_order_2_logs_its_sign_component():
    """Z2 = {0, 1}: its one non-trivial irrep is the sign (-1)^a, on which every unit with w(0) != w(1) is
    pure: coverage 1, median purity 1 (exact: one component). The DFT view has no frequency at M = 2
    (freq_* 0, tianref.fourier). The energy by the label sums (host loops) is the other route."""
    row, W, view = _row0("Z2", 2, "sqr")
    assert view.is_group and view.n_comp == 1
    assert row["irrep_coverage"] == 1 and row["irrep_purity_med"] == 1.0
    assert row["freq_coverage"] == 0 and row["freq_purity_med"] == 0.0
    assert len(row["irrep_energy"]) == 1
    # float64, 4 activations per unit: rounding only
    assert row["irrep_energy"][0] == pytest.approx(_label_sum_energy("Z2", W, "sqr"), rel=1e-10)


def test_fake_backend_runs_the_group_rows():
    from tianref.backend import get_xp
    xp = get_xp("fake")
    cfg = validate(TrainConfig(M=8, K=8, n_train=30, epochs=1, group="Q8", dtype="float64"))
    problem, state = train.setup(cfg, xp)
    row, _ = train.evaluate(xp, cfg, state, problem)
    prob_np, st_np = train.setup(cfg, np)
    row_np, _ = train.evaluate(np, cfg, st_np, prob_np)
    assert row["irrep_coverage"] == row_np["irrep_coverage"]
    np.testing.assert_allclose(row["irrep_energy"], row_np["irrep_energy"], rtol=1e-13)


# ---------------------------------------------------------------- resume, help

def test_resume_of_a_group_run_continues_exactly(tmp_path):
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    assert cli(["train", "--group", "D5", "--epochs", "12", "--out", one] + SMALL)[0] == 0
    assert cli(["train", "--group", "D5", "--epochs", "6", "--out", two] + SMALL)[0] == 0
    code, _, err = cli(["train", "--out", two, "--resume", "--epochs", "12", "--group", "D6"])
    assert code == 2 and "group" in err                             # a different group is refused
    assert cli(["train", "--out", two, "--resume", "--epochs", "12", "--group", "D5"])[0] == 0
    assert rows_of(one) == rows_of(two)
    assert json.load(open(os.path.join(two, "config.json")))["config"]["group"] == "D5"


def test_help_names_the_option_and_the_keys():
    out = cli(["train", "--help"])[1]
    assert "--group" in out and "irrep_energy" in out
    assert "--group" in cli(["sweep", "--help"])[1]


def test_table_of_config_follows_the_stored_group():
    assert group_rows.table_of_config({"M": 11}) is None
    np.testing.assert_array_equal(group_rows.table_of_config({"M": 8, "group": "Q8"}), groups.quaternion().table)


def test_figure_setup_line_names_the_group():
    from types import SimpleNamespace
    from tianref.analysis.figure_text import setup_of
    recs = [SimpleNamespace(config={"act": "sqr", "M": 24, "K": 64, "n_train": 288, "group": "S4"})]
    assert "H = S4" in setup_of(recs, show_window=False)
    assert "H =" not in setup_of([SimpleNamespace(config={"act": "sqr", "M": 23})], show_window=False)


def test_sweep_plans_group_conditions_and_refuses_a_conflicting_M(tmp_path):
    code, out, _ = cli(["sweep", str(tmp_path / "sw"), "--group", "S4,D5", "--eta", "2e-3", "--seeds", "0",
                        "--K", "8", "--epochs", "2", "--plan"])
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 2
    assert "--group S4" in lines[0] and "groupS4_seed0" in lines[0] and "--M" not in lines[0]
    code, _, err = cli(["sweep", str(tmp_path / "sw2"), "--group", "S4", "--M", "23", "--seeds", "0",
                        "--epochs", "2", "--plan"])
    assert code == 2 and "order 24" in err and err.count("\n") == 1


def test_an_expression_run_says_it_has_no_irreps(tmp_path):
    code, _, err = cli(["train", "--group", "expr:x*y", "--M", "5", "--epochs", "1", "--K", "8",
                        "--out", str(tmp_path / "e")])
    assert code == 0 and "not a group" in err and "no irrep_* keys" in err
