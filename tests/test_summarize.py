"""summarize on synthetic run trees with known answers, its Markdown/JSON output and CLI errors.

The run directories are written in the engine's format (config.json + metrics.jsonl, absent
keys for undefined values). ``write_run`` and ``synth_columns`` are shared with test_plots.py.
"""
import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from tianref.cli.analysis import summarize_cmd
from tianref.errors import InputError
from tianref.analysis.records import read_tree
from tianref.analysis.summarize import Options, summarize, to_json, to_markdown

BASE_CONFIG = {"M": 71, "K": 2048, "n_train": 2016, "eta": 2e-4, "lr": 1e-3, "epochs": 400,
               "seed": 0, "act": "sqr", "loss": "tian", "optimizer": "adam",
               "dtype": "float32", "windows": [20], "metrics": "full", "checkpoint_epochs": []}


def write_run(d, config, cols, partial_tail=None):
    """Write a run directory: cols maps key -> (E+1,) or (E+1, k) array; NaN entries are omitted."""
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"config": config, "versions": {}, "command": "test"}))
    n = len(next(iter(cols.values())))
    lines = []
    for t in range(n):
        row = {"epoch": t}
        for k, v in cols.items():
            x = np.asarray(v[t], dtype=float)
            if x.ndim == 0:
                if np.isfinite(x):
                    row[k] = float(x)
            else:
                ok = x[np.isfinite(x)]
                if ok.size:
                    row[k] = [float(y) for y in ok]
        lines.append(json.dumps(row))
    text = "\n".join(lines) + "\n" + (partial_tail or "")
    (d / "metrics.jsonl").write_text(text)
    return d


def synth_columns(E, grok, seed, windows=(20,), relu=False):
    """Plausible-looking logs (for the plots): shapes follow the paper's T3/T7/T8, not its values."""
    rng = np.random.default_rng(seed)
    t = np.arange(E + 1, dtype=float)

    def sig(x):
        return 1 / (1 + np.exp(-x))
    t05 = (100 if not relu else 450) + rng.integers(-12, 13)
    acc = 0.03 + 0.97 * sig((t - t05) / 8) if grok else 0.03 + 0.01 * rng.random(E + 1)
    if relu:
        rho = 0.2 + 0.02 * sig((t - 50) / 20) + 0.002 * rng.standard_normal(E + 1)
    elif grok:
        rho = 0.058 + 0.047 * sig((t - 17) / 4) + 0.04 * sig((t - t05) / 10)
    else:
        rho = 0.063 - 0.007 * t / E
    cols = {"test_acc": acc, "train_acc": np.minimum(1, 0.1 + t / 25), "rho_tian": rho}
    for i, W in enumerate(windows):
        lock = 170 + rng.integers(-8, 9) + (W - 20) // 2
        if grok and not relu:
            lg = np.log(20) + np.log(300 / 20) * sig((t - lock) / 5)
        else:
            lg = np.log(1.3 + (0.2 if relu else 0)) + np.log(15) * np.exp(-t / 60)
        lg = lg + 0.05 * rng.standard_normal(E + 1)
        lr12 = np.log(7) + (np.log(200 / 7) * sig((t - 160) / 8) if grok and not relu else 0)
        s1 = (W / 20) * 3.5 * np.exp(-t / 150)
        s2 = s1 / np.exp(lr12)
        s3 = s2 / np.exp(lg)
        S = np.stack([s1, s2, s3, s3 / 3, s3 / 7], axis=1)       # (E+1, 5)
        S[:2] = np.nan
        S[2, 2:] = np.nan                                        # row 2: sigma1, sigma2 only
        gap = S[:, 1] / S[:, 2]
        suffix = "" if i == 0 else f"_w{W}"
        cols["W_sigma" + suffix] = S
        cols["W_gap23" + suffix] = gap
    return cols


# --- a tree with known answers -----------------------------------------------------------------

T05 = (99, 100, 108)
T099 = (139, 140, 141)
FIRE = (173, 173, 174)
FIRE_W5 = (150, 151, 152)
RHO = (17, 17, 18)
GROK_BASE = (20.0, 40.0, 30.0)         # late = base * e^1.5 after the jump
CTRL_LATE = (1.29, 1.31, 1.33)


def known_columns(seed, grok, E=400):
    t = np.arange(E + 1)
    if grok:
        acc = np.where(t < T05[seed], 0.03, np.where(t < T099[seed], 0.6, 1.0))
        gap = np.where(t < FIRE[seed], GROK_BASE[seed], GROK_BASE[seed] * np.exp(1.5))
        gap5 = np.where(t < FIRE_W5[seed], 2.0, 2.0 * np.exp(1.5))
        rho = np.where(t < RHO[seed], 0.06, 0.1)
        r12 = np.where(t < 160, 7.0, 120.0)
    else:
        acc = np.full(E + 1, 0.03)
        gap = np.full(E + 1, CTRL_LATE[seed])
        gap5 = np.full(E + 1, 8.0)
        rho = np.full(E + 1, 0.06)
        r12 = np.full(E + 1, 7.0)
    gap, gap5 = gap.astype(float), gap5.astype(float)
    gap[:3] = gap5[:3] = np.nan
    S = np.stack([np.ones(E + 1), 1 / r12, 1 / r12 / gap], axis=1)
    S[:2] = np.nan
    return {"test_acc": acc, "rho_tian": rho, "W_gap23": gap, "W_gap23_w5": gap5, "W_sigma": S}


@pytest.fixture
def known_tree(tmp_path):
    root = tmp_path / "runs"
    for grok, eta in ((True, 2e-4), (False, 0.0)):
        for s in range(3):
            cfg = dict(BASE_CONFIG, eta=eta, seed=s, windows=[20, 5])
            write_run(root / f"eta{eta}_seed{s}", cfg, known_columns(s, grok))
    return root


def cond(summary, eta):
    (c,) = [c for c in summary["conditions"] if c["config"]["eta"] == eta]
    return c


def test_known_statistics(known_tree):
    s = summarize(read_tree(known_tree))
    assert s["n_runs"] == 6 and len(s["conditions"]) == 2
    g, c = cond(s, 2e-4), cond(s, 0.0)
    assert g["seeds"] == [0, 1, 2] and g["label"] == "eta=0.0002" and c["label"] == "eta=0"
    gs = g["stats"]
    assert [r["fire"] for r in g["runs"]] == [173.0, 173.0, 174.0]
    assert (gs["fire"]["median"], gs["fire"]["q25"], gs["fire"]["q75"]) == (173.0, 173.0, 173.5)
    assert (gs["fire"]["n_fired"], c["stats"]["fire"]["n_fired"]) == (3, 0)
    assert (gs["t05"]["median"], gs["t05"]["q25"], gs["t05"]["q75"]) == (100.0, 99.5, 104.0)
    assert gs["lag_fire_t099"]["median"] == 33.0            # 34, 33, 33
    assert gs["rho_fire"]["median"] == 17.0 and c["stats"]["rho_fire"]["n_fired"] == 0
    assert [r["lead_rho"] for r in g["runs"]] == [82.0, 83.0, 90.0]
    assert gs["lead_rho"]["median"] == 83.0 and gs["lead_rho_of_medians"] == 83.0
    assert gs["r12_ge100"]["median"] == 160.0 and c["stats"]["r12_ge100"]["n_fired"] == 0
    assert gs["r12_ge25_x5"]["n_fired"] == 3 and gs["r12_ge25_x5"]["median"] == 160.0
    # late: per-run nanmedian over 200..400, then the median over seeds; the control pairing
    sep = g["late_separation"]
    assert g["control"] == "eta=0" and c["late_separation"] is None
    assert sep["grok"] == pytest.approx(30 * np.exp(1.5), rel=1e-12, abs=0)   # exp and one product
    assert sep["control"] == 1.31
    assert sep["ratio"] == pytest.approx(30 * np.exp(1.5) / 1.31, rel=1e-12, abs=0)


def test_window_option_selects_suffixed_keys(known_tree):
    s = summarize(read_tree(known_tree), Options(window=5))
    assert cond(s, 2e-4)["stats"]["fire"]["median"] == 151.0
    assert cond(s, 0.0)["late_separation"] is None
    assert cond(s, 2e-4)["late_separation"]["control"] == 8.0
    s20 = summarize(read_tree(known_tree), Options(window=20))      # the first window = unsuffixed
    assert cond(s20, 2e-4)["stats"]["fire"]["median"] == 173.0
    with pytest.raises(InputError):
        summarize(read_tree(known_tree), Options(window=30))


def test_options_change_the_answer(known_tree):
    # t_min above every fire: nothing fires; late window before the jumps: grok late = base
    s = summarize(read_tree(known_tree), Options(slope_t_min=200, late_lo=50, late_hi=150))
    g = cond(s, 2e-4)
    assert g["stats"]["fire"]["n_fired"] == 0
    assert g["late_separation"]["grok"] == 30.0
    with pytest.raises(InputError):
        Options(late_lo=300, late_hi=200)


def test_markdown_and_json(known_tree):
    s = summarize(read_tree(known_tree))
    md = to_markdown(s)
    assert "| eta=0.0002 | 3 | 100 [99.5, 104] 3/3 | 140 [139.5, 140.5] 3/3 | " \
           "173 [173, 173.5] 3/3 | +33 [33, 33.5] 3/3 |" in md
    ratio = f"{30 * np.exp(1.5) / 1.31:.4g}x"
    assert f"| {ratio} |" in md
    assert "| eta=0 | 3 | never 0/3 | never 0/3 | never 0/3 | — | 1.31 [1.3, 1.32] | — |" in md
    data = json.loads(to_json(s))                        # strict JSON: NaN became null
    assert "NaN" not in to_json(s)
    assert data["conditions"][1]["stats"]["fire"]["median"] is None
    assert data["options"]["late_lo"] == 200


def test_absent_metrics_read_as_not_logged(tmp_path):
    # --metrics core runs have no rho_tian: 'n/a', not 'never'
    root = tmp_path / "core"
    for s in range(2):
        cols = known_columns(s, True)
        del cols["rho_tian"]
        write_run(root / f"r{s}", dict(BASE_CONFIG, seed=s, metrics="core"), cols)
    summ = summarize(read_tree(root))
    assert summ["conditions"][0]["stats"]["rho_fire"] is None
    assert summ["conditions"][0]["control"] is None
    row = [ln for ln in to_markdown(summ).splitlines() if ln.startswith("| eta=0.0002")][0]
    assert row.split(" | ")[8] == "n/a"


def test_incomplete_and_partial_runs_are_flagged(tmp_path):
    root = tmp_path / "p"
    cols = {k: v[:251] for k, v in known_columns(0, True).items()}
    write_run(root / "r0", dict(BASE_CONFIG), cols, partial_tail='{"epoch": 251, "te')
    summ = summarize(read_tree(root))
    run = summ["conditions"][0]["runs"][0]
    assert run["partial"] and not run["complete"] and run["n_rows"] == 251
    assert run["fire"] == 173.0 and run["late"] == 20 * np.exp(1.5)   # same arithmetic as written
    assert "1 run(s) incomplete (r0: ends at epoch 250 of 400)" in to_markdown(summ)
    with pytest.raises(InputError, match="none is complete"):
        summarize(read_tree(root), Options(complete_only=True))
    write_run(root / "r1", dict(BASE_CONFIG, seed=1), known_columns(1, True))
    only = summarize(read_tree(root), Options(complete_only=True))
    assert only["n_runs"] == 1 and only["conditions"][0]["seeds"] == [1]


def test_grouping_ignores_seed_and_backend_but_not_eta_or_act(tmp_path):
    root = tmp_path / "g"
    for i, (act, xp) in enumerate([("sqr", "numpy"), ("sqr", "cupy"), ("relu", "numpy")]):
        write_run(root / f"r{i}", dict(BASE_CONFIG, seed=i, act=act, xp=xp), known_columns(0, True))
    summ = summarize(read_tree(root))
    assert sorted(c["n"] for c in summ["conditions"]) == [1, 2]
    assert sorted(c["label"] for c in summ["conditions"]) == ["eta=0.0002 act=relu",
                                                              "eta=0.0002 act=sqr"]


def test_a_label_names_a_run_without_a_group_by_its_cyclic_group_not_none():
    """A group run beside a plain Z_M run: the plain one's label says Z6 (it said group=None); a key one
    config leaves out reads —; the digest of a table file only where the group's name does not differ."""
    from tianref.analysis.conditions import condition_labels
    plain, s3 = {"eta": 0.0, "M": 6}, {"eta": 0.0, "M": 6, "group": "S3"}
    assert condition_labels([plain, s3]) == ["eta=0 group=Z6", "eta=0 group=S3"]
    ridge = {"eta": 0.0, "M": 6, "ridge_eval": "held"}
    assert condition_labels([plain, ridge]) == ["eta=0 ridge_eval=—", "eta=0 ridge_eval=held"]
    a, b = ({"eta": 0.0, "M": 6, "group": "table:/t.json", "group_digest": d * 64} for d in "ab")
    assert condition_labels([a, b]) == ["eta=0 group_digest=aaaaaaaaaaaa", "eta=0 group_digest=bbbbbbbbbbbb"]
    assert condition_labels([plain, a]) == ["eta=0 group=Z6", "eta=0 group=table:/t.json"]
    sched = {"eta": 0.0, "M": 6, "eta_schedule": [[0, 0.0], [50, 1e-3]]}   # not a constant eta = 0
    assert condition_labels([plain, sched]) == ["eta=0 eta_schedule=—", "eta=scheduled eta_schedule=0:0,50:0.001"]
    z6 = {"eta": 0.0, "M": 6, "group": "Z6"}                        # two conditions, two labels
    assert condition_labels([plain, z6]) == ["eta=0 group=Z6 (no --group)", "eta=0 group=Z6"]
    c = {"eta": 0.0, "M": 6, "group": "table:/u.json", "group_digest": "c" * 64}
    labels = condition_labels([a, b, c])                          # one file, two digests: kept in the label
    assert len(set(labels)) == 3 and labels[0] == "eta=0 group=table:/t.json group_digest=aaaaaaaaaaaa"


def test_grouping_ignores_what_was_only_logged_beside_training(tmp_path):
    """log_grams and tail_rank change what a run logged, not its trajectory: runs differing only in them
    (and the seed) form one condition."""
    root = tmp_path / "g"
    for i, extra in enumerate([{}, {"log_grams": ["float32"]}, {"tail_rank": 4}]):
        write_run(root / f"r{i}", dict(BASE_CONFIG, seed=i, **extra), known_columns(0, True))
    summ = summarize(read_tree(root))
    assert [(c["label"], c["n"], c["seeds"]) for c in summ["conditions"]] == [("eta=0.0002", 3, [0, 1, 2])]


# --- CLI ---------------------------------------------------------------------------------------

def run_cli(*args):
    return CliRunner().invoke(summarize_cmd, [str(a) for a in args])


def test_cli_writes_json_and_markdown(known_tree, tmp_path):
    out_json, out_md = tmp_path / "s.json", tmp_path / "s.md"
    res = run_cli(known_tree, "--json", out_json, "--md", out_md)
    assert res.exit_code == 0, res.output
    assert res.stdout == ""                              # the tables went to --md
    assert json.loads(out_json.read_text())["n_runs"] == 6
    assert "| eta=0.0002 | 3 |" in out_md.read_text()
    assert not list(tmp_path.glob(".*.tmp"))             # the atomic write left no temp file
    res = run_cli(known_tree, "--window", 5)
    assert res.exit_code == 0 and "151 [150.5, 151.5] 3/3" in res.stdout


def test_cli_creates_the_missing_folders_of_json_and_md(known_tree, tmp_path):
    # as thm6 --json and edge --json do: results/new/s.json in a folder that does not exist yet
    out_json, out_md = tmp_path / "results" / "new" / "s.json", tmp_path / "tables" / "s.md"
    res = run_cli(known_tree, "--json", out_json, "--md", out_md)
    assert res.exit_code == 0, res.output
    assert json.loads(out_json.read_text())["n_runs"] == 6
    assert "| eta=0.0002 | 3 |" in out_md.read_text()


@pytest.mark.parametrize("setup, extra, fragment", [
    ("missing", [], "no such directory"),
    ("empty", [], "no run directories"),
    ("corrupt", [], "not a JSON object row"),
    ("ok", ["--window", 30], "no window 30"),
    ("ok", ["--late-lo", 300, "--late-hi", 200], "is empty"),
])
def test_cli_errors_are_one_line_exit_2(tmp_path, setup, extra, fragment):
    root = tmp_path / "t"
    if setup == "empty":
        root.mkdir()
    elif setup == "corrupt":
        write_run(root / "r", dict(BASE_CONFIG), known_columns(0, True))
        p = root / "r" / "metrics.jsonl"
        lines = p.read_text().splitlines()
        lines[5] = "{garbage"
        p.write_text("\n".join(lines) + "\n")
    elif setup == "ok":
        write_run(root / "r", dict(BASE_CONFIG), known_columns(0, True))
    res = run_cli(root, *extra)
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("Error: ")
    assert fragment in res.stderr
    assert "Traceback" not in res.output


# --- the published numbers (reference_results/paper/published.json) ---------------------------

def test_published_numbers_are_self_consistent():
    from pathlib import Path
    pub = json.loads((Path(__file__).parents[1] / "reference_results" / "paper"
                      / "published.json").read_text())
    T = pub["tables"]
    t3 = T["T3"]
    # the headline ratio is the ratio of the headline medians, rounded: 300 / 1.31 = 229.0
    assert round(t3["late_gap23"]["grok"]["median"] / t3["late_gap23"]["control"]["median"]) \
        == t3["late_gap23"]["ratio_grok_over_ctrl"] == 229
    assert t3["slope_fire"]["grok"]["median"] == 174 == T["T4"]["rows"][2]["grok_fire"][2]
    for row in T["T5"]["rows"]:        # lead = t0.5 - t_rho and lag = lock-in - t0.5 (medians)
        if row["test_0.5"] is not None:
            assert row["lead"] == row["test_0.5"] - row["rho_fire"]
            assert row["lag"] == row["lockin"] - row["test_0.5"]
    t5b = T["T5b"]
    assert t5b["lead"] == t5b["test_0.5"] - t5b["rho_fire"]
    # T8 ratios from eigenvalues printed to 2 significant digits: each may be off by up to ~5%,
    # so a ratio of two of them by up to ~10%
    for row in T["T8"]["grok"] + T["T8"]["control"]:
        assert row["sigma2"] / row["sigma3"] == pytest.approx(row["gap23"], rel=0.1)
        if "gap12" in row:
            assert row["sigma1"] / row["sigma2"] == pytest.approx(row["gap12"], rel=0.1)
    for t in ("T2", "T3", "T3b", "T4", "T5", "T5b", "T-ReLU", "T7", "T8"):
        assert T[t]["source"]


def test_old_runs_without_the_clock_keys_still_summarise(tmp_path):
    """A log from before the clocks (no W_srank, W_tail, margin_min) and one from before the tail and
    margin keys: every clock key is there, None where its column was not logged, and the outcome of a
    statistic that was not logged is 'undetermined'."""
    root = tmp_path / "old"
    E = 400
    t = np.arange(E + 1)
    pre = known_columns(0, True)
    pre["train_loss"] = np.where(t < 150, 1.0, 1e-3)
    write_run(root / "pre_clocks", dict(BASE_CONFIG, seed=0), pre)
    srank_only = dict(pre, W_srank=90.0 - 20.0 * np.clip((t - 150) / 50, 0, 1))   # settles at 200
    write_run(root / "srank_only", dict(BASE_CONFIG, seed=1), srank_only)
    doc = json.loads(to_json(summarize(read_tree(root))))
    (c,) = doc["conditions"]
    a, b = c["runs"]
    assert a["t_cls"] == 150.0 and b["t_cls"] == 150.0
    for run in (a, b):
        assert run["t_margin"] is None and run["t_cls_abs"] is None
        assert run["t_rep_tail"] is None and run["t_rep_tail_settled"] is None
        assert run["t_rep_tail_censored"] is None and run["clock_outcome_tail"] == "undetermined"
    assert a["t_rep"] is None and a["t_rep_settled"] is None and a["t_rep_censored"] is None
    assert a["clock_outcome"] == "undetermined"
    # W_srank falls 0.4 per row over [150, 200]: a 50-row window from s in the fall moves 0.4 (200 - s),
    # within 0.05 x_s from s = 191 on; t_rep: x_s <= 70 x 1.05 from s = 192; t099 = 139 < 191 - tol
    # (tol = max(50, 0.25 x 139) = 50): test first
    assert b["t_rep"] == 192.0 and b["t_rep_settled"] == 191.0 and b["t_rep_censored"] is False
    assert b["clock_outcome"] == "test-before-structure"
    assert c["stats"]["clock_outcomes_tail"]["undetermined"] == 2 and c["stats"]["n_rep_tail_censored"] is None
    md = to_markdown(summarize(read_tree(root)))
    assert "Structural clock W_srank" in md and "Structural clock W_tail" not in md
    # a stored summary from before the sustained clocks (no persist, no new stats) still renders
    old = summarize(read_tree(root))
    del old["options"]["persist"]
    for c in old["conditions"]:
        for k in [k for k in c["stats"] if "tail" in k or k.startswith(("clock_outcomes", "n_rep"))]:
            del c["stats"][k]
    assert "| t_cls | t_rep | t_rep / t_cls |" in to_markdown(old)


def test_a_clock_ratio_without_its_denominator_is_undefined_not_never(tmp_path):
    """Under weight decay the train loss may never fall to 0.01 x row 0 (no t_cls) while W_srank settles
    (t_rep): t_rep / t_cls is then not a number in any run, and its cell says '—', as a lead without its
    operands does; 'never 0/2' read as an event that did not happen."""
    root = tmp_path / "wd"
    E = 400
    t = np.arange(E + 1)
    for s in range(2):
        cols = known_columns(s, True)
        cols["train_loss"] = np.full(E + 1, 0.5)                              # never <= 0.01 x row 0
        cols["W_srank"] = 90.0 - 20.0 * np.clip((t - 150) / 50, 0, 1)         # settles at 200
        write_run(root / f"r{s}", dict(BASE_CONFIG, seed=s), cols)
    summary = summarize(read_tree(root))
    (c,) = summary["conditions"]
    assert all(np.isnan(r["t_cls"]) and np.isfinite(r["t_rep"]) for r in c["runs"])
    md = to_markdown(summary)
    row = next(ln for ln in md.split("Structural clock W_srank", 1)[1].splitlines() if ln.startswith("| eta="))
    cells = [x.strip() for x in row.strip("|").split("|")]      # condition, t_rep, settled, censored, ratio, outcome
    assert cells[1].endswith("2/2") and cells[4] == "—", row


def test_gram_float32_warns_per_condition_about_runs_without_it(tmp_path):
    """--gram float32 over a condition where one run of three did not log W_gap23_f32: its events from the
    float32 spectra are None and the statistics count the other two (n = 2), so summarize says so, one line
    for that condition (none for the control, whose runs all logged it), and lists the run in the JSON."""
    root = tmp_path / "runs"
    for grok, eta in ((True, 2e-4), (False, 0.0)):
        for s in range(3):
            cols = known_columns(s, grok)
            if not (grok and s == 2):                                   # eta0.0002_seed2 lacks the keys
                cols.update(W_gap23_f32=cols["W_gap23"], W_sigma_f32=cols["W_sigma"])
            write_run(root / f"eta{eta}_seed{s}", dict(BASE_CONFIG, eta=eta, seed=s), cols)
    out = tmp_path / "s.json"
    res = CliRunner().invoke(summarize_cmd, [str(root), "--gram", "float32", "--json", str(out)])
    assert res.exit_code == 0, res.output
    s = json.loads(out.read_text())
    grok, ctrl = cond(s, 2e-4), cond(s, 0.0)
    assert grok["gram_missing"] == ["eta0.0002_seed2"] and "gram_missing" not in ctrl          # the key only where runs lack them
    assert grok["stats"]["fire"]["n"] == 2 and ctrl["stats"]["late"]["n"] == 3
    warnings = [ln for ln in res.stderr.splitlines() if "Gram spectra" in ln]
    assert warnings == [f"summarize: warning: {grok['label']}: 1 of 3 run(s) did not log the float32 Gram spectra "
                        "(train --log-grams float32); its float32 statistics cover the other runs only: "
                        "eta0.0002_seed2"]
    plain = CliRunner().invoke(summarize_cmd, [str(root)])          # the main spectra: every run has them
    assert plain.exit_code == 0 and "Gram spectra" not in plain.stderr


def test_gram_float32_reads_a_run_whose_own_gram_is_float32_from_its_main_keys(tmp_path):
    """A run trained with --gram-dtype float32 holds its float32 spectra under the main keys (train refuses
    --log-grams float32 beside it): --gram float32 reads them there, with no warning that the run did not
    log them and no advice to train with an option train refuses."""
    root = tmp_path / "runs"
    for s in range(2):
        write_run(root / f"r{s}", dict(BASE_CONFIG, seed=s, gram_dtype="float32"), known_columns(s, True))
    out = tmp_path / "s.json"
    res = CliRunner().invoke(summarize_cmd, [str(root), "--gram", "float32", "--json", str(out)])
    assert res.exit_code == 0 and "Gram spectra" not in res.stderr, res.output
    c = json.loads(out.read_text())["conditions"][0]
    assert "gram_missing" not in c and c["stats"]["fire"]["n"] == 2
    main = json.loads(out.read_text())
    res = CliRunner().invoke(summarize_cmd, [str(root), "--json", str(out)])
    assert res.exit_code == 0 and json.loads(out.read_text())["conditions"][0]["stats"]["fire"] == \
        main["conditions"][0]["stats"]["fire"]


def test_test_accuracy_of_exactly_one_half_counts_as_grokked(tmp_path):
    """grokked means test_acc >= 0.5 at some row, the same level as t05: a run that touches exactly 0.5
    (exact in binary floating point) grokked and has t05 at that row; one that peaks just below did not."""
    E = 10
    acc = np.full(E + 1, 0.1)
    acc[7] = 0.5
    write_run(tmp_path / "touch", dict(BASE_CONFIG, seed=0, epochs=E), {"test_acc": acc})
    write_run(tmp_path / "below", dict(BASE_CONFIG, seed=1, epochs=E), {"test_acc": np.where(acc == 0.5, 0.49, acc)})
    rows = {r["folder"]: r for r in summarize(read_tree(tmp_path))["conditions"][0]["runs"]}
    assert rows["touch"]["t05"] == 7 and rows["touch"]["grokked"] is True
    assert np.isnan(rows["below"]["t05"]) and rows["below"]["grokked"] is False   # NaN: never crossed


def test_known_lags_to_t05(known_tree, tmp_path):
    """The lags to t05, by hand from designed events. The known tree: fire (173, 173, 174), t05 (99, 100,
    108). Then a run of its seed 0 whose sigma1/sigma2 rises log-linearly from 7 at epoch 150 to 2000 at
    250 (c = ln(2000/7)/100 per epoch): the 25-row slope reaches c k/25 >= 0.04 first at k = 18 rows
    into the ramp (epoch 168; 1/c = 17.7), and the ratio reaches 100 at 150 + 100 ln(100/7)/ln(2000/7)
    = 197.03, so at row 198: lags 69 and 99 to its t05 = 99, two different detectors apart."""
    g = cond(summarize(read_tree(known_tree)), 2e-4)
    assert [r["lag_fire_t05"] for r in g["runs"]] == [74.0, 73.0, 66.0]
    st = g["stats"]["lag_fire_t05"]
    assert (st["median"], st["q25"], st["q75"]) == (73.0, 69.5, 73.5)
    t = np.arange(401)
    cols = known_columns(0, True)
    r12 = 7.0 * (2000 / 7) ** (np.clip(t - 150, 0, 100) / 100)
    S = np.stack([np.ones(401), 1 / r12, 1 / r12 / cols["W_gap23"]], axis=1)
    S[:2] = np.nan
    cols["W_sigma"] = S
    write_run(tmp_path / "ramp" / "a", dict(BASE_CONFIG, windows=[20, 5]), cols)
    (run,) = summarize(read_tree(tmp_path / "ramp"))["conditions"][0]["runs"]
    assert (run["t05"], run["r12_slope"], run["r12_ge100"]) == (99.0, 168.0, 198.0)
    assert (run["lag_r12_slope_t05"], run["lag_r12_ge100_t05"]) == (69.0, 99.0)


def test_known_clock_ratios_of_both_structural_statistics(tmp_path):
    """A run with designed steps (default eps 1e-2, delta 0.05, persist 50): the loss falls 1 -> 1e-3 at
    50 (t_cls 50), W_srank steps 10 -> 5 at 70 and W_tail 0.5 -> 0.1 at 120 (t_rep and t_rep_settled 70
    and 120: every 50-row window after a step is flat, every window across it moves more than 5 %), the
    test accuracy steps 0 -> 1 at 130. So clock_ratio = 70/50, clock_ratio_tail = 120/50, and with
    tol = max(persist, 0.25 * 130) = 50 the W_tail clock settles with the test curve (two-clocks) where
    W_srank settles 60 rows before it (undetermined)."""
    t = np.arange(201)
    cols = {"train_loss": np.where(t < 50, 1.0, 1e-3), "W_srank": np.where(t < 70, 10.0, 5.0),
            "W_tail": np.where(t < 120, 0.5, 0.1), "test_acc": np.where(t < 130, 0.0, 1.0),
            "margin_min": np.where(t < 40, -1.0, 1.0)}
    write_run(tmp_path / "runs" / "a", dict(BASE_CONFIG, epochs=200), cols)
    (run,) = summarize(read_tree(tmp_path / "runs"))["conditions"][0]["runs"]
    assert (run["t_cls"], run["t_margin"], run["t099"]) == (50.0, 40.0, 130.0)
    assert (run["t_rep"], run["t_rep_settled"]) == (70.0, 70.0)
    assert (run["t_rep_tail"], run["t_rep_tail_settled"]) == (120.0, 120.0)
    assert run["clock_ratio"] == 70 / 50 and run["clock_ratio_tail"] == 120 / 50
    assert run["clock_outcome"] == "undetermined" and run["clock_outcome_tail"] == "two-clocks"
    assert run["t_rep_censored"] is False and run["t_rep_tail_censored"] is False


def test_md_of_a_tree_with_a_folder_name_that_is_not_utf8(known_tree, tmp_path):
    """A run folder whose name holds a byte that is not UTF-8 (Python reads it as a lone surrogate): --md wrote
    nothing and ended in a UnicodeEncodeError traceback. The name is written escaped, as the JSON has it."""
    from click.testing import CliRunner
    from tianref.cli import main
    odd = os.fsdecode(b"run\xff")
    shutil.copytree(known_tree / "eta0.0002_seed0", known_tree / odd)
    md = tmp_path / "s.md"
    r = CliRunner().invoke(main, ["summarize", str(known_tree), "--md", str(md), "--json", str(tmp_path / "s.json")])
    assert r.exit_code == 0, r.output
    assert "run\\udcff" in md.read_text(encoding="utf-8")
    assert "run\\udcff" in (tmp_path / "s.json").read_text()


def test_gram_option_keeps_the_duplicate_copy_that_logged_those_spectra(tmp_path):
    """Two folders of one run (the same seed and condition), only one trained with --log-grams float32:
    summarize --gram float32 kept the copy with more rows or the first name, here the one without the
    _f32 keys, and then said that no run logged float32 spectra (exit 2)."""
    from click.testing import CliRunner
    from tianref.cli import main
    small = ["--M", "7", "--K", "16", "--epochs", "12", "--windows", "3"]
    for name, extra in (("a_plain", []), ("b_logged", ["--log-grams", "float32"])):
        r = CliRunner().invoke(main, ["train", *small, *extra, "--out", str(tmp_path / "t" / name)])
        assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["summarize", str(tmp_path / "t"), "--gram", "float32", "--window", "3",
                                  "--json", str(tmp_path / "s.json")])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["duplicates"] == [{"kept": "b_logged", "dropped": ["a_plain"], "match": "condition and seed"}]
    r = CliRunner().invoke(main, ["summarize", str(tmp_path / "t"), "--json", str(tmp_path / "m.json")])
    assert json.loads((tmp_path / "m.json").read_text())["duplicates"][0]["kept"] == "a_plain"   # main: as before
