"""Every diagnostic of a logged row, recomputed from the stored checkpoint by a second route.

The keys here were otherwise checked only by unit tests of their functions (tests/test_metrics.py,
tests/test_fourier.py) and by golden values that the code itself wrote (tests/test_golden_train.py):
neither sees what tianref/rows.py hands those functions (the training set's F, the effective top layer
beta V, the run's stream of pairs, W in its (2M, K) layout). Here a float64 run is trained through the
CLI, and at each stored checkpoint every such key of the logged row is recomputed from W, V and
train_idx with plain NumPy written from the definitions in docs/math.md §3, §4, §11, §12: X and the
one-hot labels materialised, the n x n sample Gram G = F F^T formed, G_F = R (beta V)^T formed, the
per-unit spectrum from numpy's FFT, the Stage-II energy as 1/2 ||Y~ Y~^T sigma(X w/||w||)||^2, and the
independence proxy's pairs drawn again from numpy.random.default_rng(seed), 2 x 500 integers per row.
No tianref function computes a reference value.

Tolerance: both sides are float64 on the same stored weights and differ only in summation order (a
K x K route against the n x n Gram, a DFT product against an FFT, a segment sum against a one-hot
product): ~1e-15 relative per operation, a few hundred terms per sum. 1e-10 relative (1e-12 absolute
for values that pass near 0) is ~5 orders above that and far below what any wrong input moves them
(the test set's F for the training set's, V for beta V, another row's pairs: O(1e-2) or more).
"""
import json
import math
import os

import numpy as np
import pytest
from click.testing import CliRunner

from tianref.cli import main

M, K, SEED, BETA = 11, 32, 3, 2.5
EPOCHS, CKPTS, PAIRS = 15, (0, 6, 15), 500      # PAIRS: config.indep_pairs' default (docs/math.md §4)
RTOL, ATOL = 1e-10, 1e-12


def _planted_init(path):
    """An initial state whose first 12 units are pure cosines at k = 1..4 (docs/math.md §12), so that
    freq_coverage is not 0 (random units have purity ~0.4), the rest drawn as init_host draws them."""
    rng = np.random.default_rng(7)
    W = rng.uniform(-1, 1, (2 * M, K)) / math.sqrt(2 * M)
    a = np.arange(M)
    for j in range(12):
        k, phi, psi = 1 + j % 4, rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi)
        W[:M, j] = 0.3 * np.cos(2 * np.pi * k * a / M + phi)
        W[M:, j] = 0.3 * np.cos(2 * np.pi * k * a / M + psi)
    V = rng.uniform(-1, 1, (K, M)) / math.sqrt(K)
    np.savez(path, W=W, V=V, train_idx=rng.permutation(M * M)[:48])
    return str(path)


def _train(tmp_path, act, loss, extra=()):
    out = str(tmp_path / f"run_{act}_{loss}")
    args = ["train", "--init-from", _planted_init(tmp_path / "init.npz"), "--seed", str(SEED),
            "--epochs", str(EPOCHS),
            "--lr", "1e-2", "--eta", "1e-2", "--dtype", "float64", "--act", act, "--loss", loss,
            "--output-scale", str(BETA), "--windows", "4",
            "--checkpoint-epochs", ",".join(map(str, CKPTS)), "--out", out, *extra]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    assert [r["epoch"] for r in rows] == list(range(EPOCHS + 1))
    return out, rows


def _sigma(act, H):
    """sigma of docs/math.md §2, elementwise (GELU from math.erf, not scipy)."""
    if act == "sqr":
        return H ** 2
    if act == "relu":
        return np.maximum(H, 0.0)
    if act == "gelu":
        return 0.5 * H * (1.0 + np.vectorize(math.erf)(H / math.sqrt(2.0)))
    raise AssertionError(act)


def _onehot_inputs(idx):
    """X (n, 2M) = [e_a ; e_b] and labels y = (a + b) mod M of pairs i = a M + b."""
    a, b = idx // M, idx % M
    X = np.zeros((len(idx), 2 * M))
    X[np.arange(len(idx)), a] = 1.0
    X[np.arange(len(idx)), M + b] = 1.0
    return X, (a + b) % M


def _loss(loss, Yhat, y):
    """docs/math.md §3: the code's class-centred MSE, J, or mean softmax cross-entropy."""
    n = len(y)
    E = np.eye(M)[y]
    if loss == "tian":
        Z = Yhat - Yhat.mean(axis=1, keepdims=True)
        return ((Z - (E - 1.0 / M)) ** 2).sum() / n
    if loss == "theory":
        D = E - Yhat
        return 0.5 * ((D - D.mean(axis=0)) ** 2).sum()
    z = Yhat - Yhat.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(n), y]))


def _reference_row(W, V, train_idx, test_idx, act, loss, pairs):
    """The row's keys from their definitions (module docstring)."""
    ref = {}
    X, y = _onehot_inputs(train_idx)
    n = len(y)
    F = _sigma(act, X @ W)                                     # (n, K)
    Yhat = BETA * F @ V                                        # (n, M)
    Xt, yt = _onehot_inputs(test_idx)
    Yt = BETA * _sigma(act, Xt @ W) @ V
    ref["train_loss"], ref["test_loss"] = _loss(loss, Yhat, y), _loss(loss, Yt, yt)
    ref["train_acc"], ref["test_acc"] = np.mean(Yhat.argmax(1) == y), np.mean(Yt.argmax(1) == yt)
    # ftf_ratio: C = F~^T F~ with F~ the column-centred F
    Ft = F - F.mean(axis=0)
    C = Ft.T @ Ft
    off = ~np.eye(K, dtype=bool)
    ref["ftf_ratio"] = np.abs(C[off]).mean() / np.abs(np.diag(C)).mean()
    # rho_tian: the raw n x n sample Gram against (d - o) I + o 1 1^T
    G = F @ F.T
    d, o = np.diag(G).mean(), G[~np.eye(n, dtype=bool)].mean()
    ideal = (d - o) * np.eye(n) + o * np.ones((n, n))
    ref["rho_tian"] = np.linalg.norm(G - ideal) / np.linalg.norm(G)
    # gF_norm and the independence proxy: G_F = R (beta V)^T, R = P_perp (E - 1/M - Yhat)
    R = np.eye(M)[y] - 1.0 / M - Yhat
    R = R - R.mean(axis=0)
    GF = R @ (BETA * V).T                                      # (n, K) formed
    ref["gF_norm"] = np.linalg.norm(GF)
    j, jp = pairs
    keep = j != jp
    j, jp = j[keep], jp[keep]
    cos = np.abs((GF[:, j] * GF[:, jp]).sum(0)) / (np.linalg.norm(GF[:, j], axis=0)
                                                      * np.linalg.norm(GF[:, jp], axis=0))
    ref["indep_cos_med"] = np.sort(cos)[(len(cos) - 1) // 2]   # the lower median (torch's)
    ref["indep_cos_p95"] = np.percentile(cos, 95)
    # the Fourier view of each unit: numpy's FFT of w_a and w_b at k = 1..(M-1)/2
    k_max = (M - 1) // 2
    P = (np.abs(np.fft.fft(W[:M], axis=0)[1:k_max + 1]) ** 2
         + np.abs(np.fft.fft(W[M:], axis=0)[1:k_max + 1]) ** 2)   # (k_max, K)
    purity = P.max(axis=0) / P.sum(axis=0)
    kstar = P.argmax(axis=0) + 1
    ref["freq_purity_med"] = np.median(purity)
    ref["freq_coverage"] = len(set(kstar[purity >= 0.9].tolist()))
    # energy_med: E(u) = 1/2 ||Y~ Y~^T sigma(X u)||^2 with u = w_j / ||w_j||, Y~ the centred one-hot labels
    Yc = np.eye(M)[y]
    Yc = Yc - Yc.mean(axis=0)
    U = W / np.linalg.norm(W, axis=0)
    ref["energy_med"] = np.median(0.5 * ((Yc @ (Yc.T @ _sigma(act, X @ U))) ** 2).sum(axis=0))
    return ref


KEYS = ("train_loss", "test_loss", "train_acc", "test_acc", "ftf_ratio", "rho_tian", "gF_norm",
        "indep_cos_med", "indep_cos_p95", "freq_coverage", "freq_purity_med", "energy_med")


@pytest.mark.parametrize("act,loss", [("sqr", "tian"), ("relu", "theory"), ("gelu", "ce")])
def test_row_diagnostics_recomputed_from_stored_checkpoints(tmp_path, act, loss):
    out, rows = _train(tmp_path, act, loss)
    rng = np.random.default_rng(SEED)                          # the run's pair stream, row 0 onwards
    pairs = [(rng.integers(0, K, size=PAIRS), rng.integers(0, K, size=PAIRS)) for _ in rows]
    checked = 0
    for e in CKPTS:
        ck = np.load(os.path.join(out, "checkpoints", f"epoch_{e:05d}.npz"))
        assert ck["W"].dtype == np.float64
        ref = _reference_row(ck["W"], ck["V"], ck["train_idx"], ck["test_idx"], act, loss, pairs[e])
        for key in KEYS:
            assert rows[e][key] == pytest.approx(ref[key], rel=RTOL, abs=ATOL), (act, e, key)
            checked += 1
    assert checked == len(CKPTS) * len(KEYS)
    assert rows[EPOCHS]["train_loss"] < rows[0]["train_loss"]   # the weights moved
    assert rows[0]["freq_coverage"] == 4                        # the planted frequencies k = 1..4
    assert 0 < rows[EPOCHS]["train_acc"] < 1 and rows[EPOCHS]["freq_purity_med"] < 0.9   # nothing saturated


# ---------------------------------------------------------------- a --group run: the irrep keys on S3

def _s3_characters(T):
    """From the Cayley table alone: the identity, inverses, and the two non-trivial real characters of S3
    by element order (order 2: the transpositions, sign -1, standard character 0; order 3: the 3-cycles,
    sign 1, standard -1; the identity 1 and 2), in the order `python cli.py group S3` lists its
    components (trivial, sign, the 2-dim irrep; docs/groups.md §2)."""
    n = len(T)
    e = next(g for g in range(n) if all(T[g][x] == x for x in range(n)))
    inv = [next(h for h in range(n) if T[g][h] == e) for g in range(n)]

    def order(g):
        x, m = g, 1
        while x != e:
            x, m = T[x][g], m + 1
        return m
    orders = [order(g) for g in range(n)]
    assert sorted(orders) == [1, 2, 2, 2, 3, 3]
    sign = np.array([-1.0 if o == 2 else 1.0 for o in orders])
    std = np.array([{1: 2.0, 2: 0.0, 3: -1.0}[o] for o in orders])
    return inv, [(1, sign), (2, std)]


def _projector(T, inv, d, chi):
    """Pi (M, M): u -> e_chi * u, the convolution with the central idempotent e = (d/|H|) sum_g chi(g) g
    (chi real): (Pi u)(h) = (d/|H|) sum_g chi(g) u(g^-1 h)."""
    n = len(T)
    Pi = np.zeros((n, n))
    for g in range(n):
        for h in range(n):
            Pi[h, T[inv[g]][h]] += d / n * chi[g]
    return Pi


def _s3_planted_init(path, T, comps, K=16):
    """Units 0-2 in the sign component, 3-5 in the 2-dim one (purity 1), the rest uniform."""
    rng = np.random.default_rng(11)
    M = len(T)
    W = rng.uniform(-1, 1, (2 * M, K)) / math.sqrt(2 * M)
    inv = _s3_characters(T)[0]
    for j in range(6):
        d, chi = comps[j // 3]
        Pi = _projector(T, inv, d, chi)
        W[:M, j], W[M:, j] = 0.5 * Pi @ rng.standard_normal(M), 0.5 * Pi @ rng.standard_normal(M)
    V = rng.uniform(-1, 1, (K, M)) / math.sqrt(K)
    np.savez(path, W=W, V=V, train_idx=rng.permutation(M * M)[:22])
    return str(path)


@pytest.mark.parametrize("act", ["sqr", "relu"])     # the two routes: matrix irreps (x^2), label sums (others)
def test_irrep_keys_recomputed_from_characters_on_s3(tmp_path, act):
    """irrep_coverage, irrep_purity_med, each entry of irrep_energy and energy_med of a --group S3 run,
    recomputed from its stored float64 checkpoints with projectors built from S3's character table by
    element order (no eigendecomposition, no matrix irrep): P_j(k) = ||Pi_k w_a||^2 + ||Pi_k w_b||^2,
    E_k = sum_j (M/2) ||Pi_k g_j||^2, g_j(h) = sum_{h1 h2 = h} sigma(u_a(h1) + u_b(h2)), u = w_j/||w_j||
    (docs/groups.md §6). Float64 sums of <= M^2 K = 576 terms: 1e-10 relative as above."""
    from tianref import groups
    T = groups.parse_group("S3").table.tolist()                 # the table only: labels T[a][b]
    M = len(T)
    inv, comps = _s3_characters(T)
    Pis = [_projector(T, inv, d, chi) for d, chi in comps]
    for Pi in Pis:                                              # idempotent: a projector
        np.testing.assert_allclose(Pi @ Pi, Pi, atol=1e-14)
    out = str(tmp_path / "s3")
    r = CliRunner().invoke(main, ["train", "--group", "S3", "--init-from",
                                  _s3_planted_init(tmp_path / "init.npz", T, comps), "--epochs", "12",
                                  "--lr", "1e-2", "--eta", "1e-2", "--dtype", "float64", "--act", act,
                                  "--windows", "4", "--checkpoint-epochs", "0,5,12", "--out", out])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    A, B = np.divmod(np.arange(M * M), M)                       # every pair (a, b) of the table
    labels = np.array([T[a][b] for a, b in zip(A, B)])
    for e in (0, 5, 12):
        ck = np.load(os.path.join(out, "checkpoints", f"epoch_{e:05d}.npz"))
        W, row = ck["W"], rows[e]
        P = np.array([((Pi @ W[:M]) ** 2).sum(0) + ((Pi @ W[M:]) ** 2).sum(0) for Pi in Pis])   # (2, K)
        purity, kstar = P.max(axis=0) / P.sum(axis=0), P.argmax(axis=0)
        assert row["irrep_purity_med"] == pytest.approx(np.median(purity), rel=RTOL), e
        assert row["irrep_coverage"] == len(set(kstar[purity >= 0.9].tolist())), e
        U = W / np.linalg.norm(W, axis=0)
        S = _sigma(act, U[A] + U[M + B])                        # (M^2, K) sigma(u_a(a) + u_b(b))
        g = np.zeros((M, W.shape[1]))
        np.add.at(g, labels, S)                                 # g_j(h) = sum over a b = h
        E = [(M / 2) * ((Pi @ g) ** 2).sum() for Pi in Pis]
        np.testing.assert_allclose(row["irrep_energy"], E, rtol=RTOL, err_msg=f"epoch {e}")
        # energy_med on the training pairs, as on Z_M: Y~ the centred one-hot labels of train_idx
        idx = ck["train_idx"]
        Yc = np.eye(M)[labels[idx]]
        Yc = Yc - Yc.mean(axis=0)
        Su = _sigma(act, U[idx // M] + U[M + idx % M])
        assert row["energy_med"] == pytest.approx(np.median(0.5 * ((Yc @ (Yc.T @ Su)) ** 2).sum(0)), rel=RTOL)
        assert "freq_coverage" not in row
    assert rows[0]["irrep_coverage"] == 2 and rows[0]["irrep_purity_med"] < 0.99   # planted in both, others mixed


# ---------------------------------------------------------------- thm6: the table from a checkpoint

def test_thm6_numbers_recomputed_from_stored_checkpoints(tmp_path):
    """thm6's summary and listed pairs at two stored checkpoints of a real run, against NumPy written
    from docs/theorem6.md: F~ from the float64 copy of the stored W, B = inv(F~^T F~ + eta I), the exact
    residual by the definitional drop-two-columns solve (no closed form), the full-projector residual
    and the published eq. (4) route literally, pairs by |cos| with (j, l) ties, numpy's median.
    At eta = 2e-4 the paper route misses 7/40 and 1/40 signs (epochs 0, 30) and B < 0 holds on 22 of the
    25 and 14 of the 15 pairs with cos > 0, so the fractions are not all 1 (tests/test_cli_thm6.py checks
    only sign_match_exact = 1 there).
    Tolerances: B, cos and r_exact are well-conditioned float64 solves (cond(C) ~ 1e4 here): 1e-9
    relative; r_approx and r_paper subtract numbers of size ||f~||^2 (and ||f~||^2 / eta^2) to leave
    small ones, losing ~log10 cond(C) digits on either route, so they are compared to 1e-6 of the
    terms that cancel."""
    out = str(tmp_path / "run")
    eta, N = 2e-4, 40
    r = CliRunner().invoke(main, ["train", "--M", str(M), "--K", str(K), "--epochs", "30", "--lr", "1e-2",
                                  "--eta", str(eta), "--metrics", "core", "--checkpoint-epochs", "0,30",
                                  "--out", out])
    assert r.exit_code == 0, r.output
    js = str(tmp_path / "t6.json")
    r = CliRunner().invoke(main, ["thm6", "--run", out, "--at-epochs", "0,30", "--top-pairs", str(N),
                                  "--audit", "3", "--json", js])
    assert r.exit_code == 0, r.output
    recs = json.load(open(js))["checkpoints"]
    assert [x["epoch"] for x in recs] == [0, 30]
    fractions = set()
    for rec in recs:
        ck = np.load(os.path.join(out, "checkpoints", f"epoch_{rec['epoch']:05d}.npz"))
        X, _ = _onehot_inputs(ck["train_idx"])
        F = (X @ ck["W"].astype(np.float64)) ** 2               # (n, K), sigma = x^2
        Ft = F - F.mean(axis=0)
        n = Ft.shape[0]
        A = Ft.T @ Ft
        B = np.linalg.inv(A + eta * np.eye(K))
        cos = A / np.sqrt(np.outer(np.diag(A), np.diag(A)))
        pairs = sorted(((-abs(cos[j, l]), j, l) for j in range(K) for l in range(j + 1, K)))[:N]
        got = rec["pairs"]
        assert [(p["j"], p["l"]) for p in got] == [(j, l) for _, j, l in pairs]
        Bp = np.eye(K) / eta - Ft.T @ np.linalg.solve(Ft @ Ft.T + eta * np.eye(n), Ft) / eta ** 2
        ref = {k: [] for k in ("cos", "B", "r_exact", "r_approx", "r_paper", "B_paper")}
        for p in got:
            j, l = p["j"], p["l"]
            Fm = np.delete(Ft, [j, l], axis=1)
            P1 = np.eye(n) - Fm @ np.linalg.solve(Fm.T @ Fm + eta * np.eye(K - 2), Fm.T)
            for k, v in (("cos", cos[j, l]), ("B", B[j, l]), ("r_exact", Ft[:, j] @ P1 @ Ft[:, l]),
                         ("r_approx", Ft[:, j] @ Ft[:, l] - Ft[:, j] @ Ft @ B @ Ft.T @ Ft[:, l]),
                         ("r_paper", Ft[:, j] @ Ft[:, l] - Ft[:, j] @ Ft @ Bp @ Ft.T @ Ft[:, l]),
                         ("B_paper", Bp[j, l])):
                ref[k].append(v)
            size = np.linalg.norm(Ft[:, j]) * np.linalg.norm(Ft[:, l])   # the terms that cancel
            for k in ("cos", "B", "r_exact", "B_paper"):
                assert p[k] == pytest.approx(ref[k][-1], rel=1e-9), (rec["epoch"], j, l, k)
            assert p["r_approx"] == pytest.approx(ref["r_approx"][-1], abs=1e-6 * size)
            assert p["r_paper"] == pytest.approx(ref["r_paper"][-1], abs=1e-6 * size / eta ** 2)
        R = {k: np.array(v) for k, v in ref.items()}
        s = rec["summary"]
        want = {"sign_match_exact": np.mean(np.sign(R["B"]) == -np.sign(R["r_exact"])),
                "sign_match_approx": np.mean(np.sign(R["B"]) == -np.sign(R["r_approx"])),
                "sign_match_paper": np.mean(np.sign(R["B_paper"]) == -np.sign(R["r_paper"])),
                "frac_B_neg_on_pos_cos": np.mean(R["B"][R["cos"] > 0] < 0),
                "median_abs_cos": np.median(np.abs(R["cos"])),
                "median_abs_r_exact": np.median(np.abs(R["r_exact"])),
                "n_pairs": N, "n_pos_cos": int((R["cos"] > 0).sum())}
        for k, v in want.items():
            assert s[k] == pytest.approx(v, rel=1e-9), (rec["epoch"], k)
        fractions |= {s["sign_match_paper"], s["frac_B_neg_on_pos_cos"]}
    assert min(fractions) < 1.0                                 # the fractions are not all trivially 1


# ---------------------------------------------------------------- the rolling spectra of the updates

def test_rolling_sigmas_and_gap23_recomputed_from_consecutive_checkpoints(tmp_path):
    """W_sigma, V_sigma (first window) and their _w<w> twins, and every gap23, from checkpoints stored at
    every epoch: the updates Delta_t = theta_t - theta_{t-1} of the window's last min(e, w) steps as the
    columns of D, the top five eigenvalues of D^T D by numpy's eigvalsh (descending), gap23 = sigma_2 /
    sigma_3 (docs/math.md §6). Rows 0 and 1 (fewer than 2 updates) log none; gap23 needs 3 values.
    Tolerance: the incremental Gram and D^T D differ in summation order only (float64, ~1e-15 of sigma_1),
    so each sigma to 1e-10 of sigma_1 and gap23 to 1e-8 relative (sigma_3 is >= 2e-3 of sigma_1 here);
    a gap of other ranks (sigma_1 / sigma_2) or another window's updates is off by O(1)."""
    epochs, windows = 8, (3, 6)
    out = str(tmp_path / "run")
    r = CliRunner().invoke(main, ["train", "--M", str(M), "--K", str(K), "--epochs", str(epochs), "--lr", "1e-2",
                                  "--eta", "1e-2", "--dtype", "float64", "--metrics", "core",
                                  "--windows", ",".join(map(str, windows)),
                                  "--checkpoint-epochs", ",".join(map(str, range(epochs))), "--out", out])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    names = [f"epoch_{e:05d}.npz" for e in range(epochs)] + ["final.npz"]
    cks = [np.load(os.path.join(out, "checkpoints", f)) for f in names]
    checked = 0
    for e, row in enumerate(rows):
        for p in ("W", "V"):
            for i, w in enumerate(windows):
                key = f"{p}_sigma" + ("" if i == 0 else f"_w{w}")
                gap = key.replace("sigma", "gap23")
                m = min(e, w)
                if m < 2:
                    assert key not in row and gap not in row, (e, key)
                    continue
                D = np.stack([(cks[t][p] - cks[t - 1][p]).ravel() for t in range(e - m + 1, e + 1)], axis=1)
                ev = np.linalg.eigvalsh(D.T @ D)[::-1][:5]
                np.testing.assert_allclose(row[key], ev, rtol=0, atol=1e-10 * ev[0], err_msg=f"{key} @ {e}")
                if m >= 3:
                    assert row[gap] == pytest.approx(ev[1] / ev[2], rel=1e-8), (gap, e)
                    checked += 1
                else:
                    assert gap not in row
    assert checked == 2 * sum(min(e, w) >= 3 for e in range(epochs + 1) for w in windows)   # W and V
