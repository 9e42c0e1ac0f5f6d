"""The float32 Gram (the paper's pipeline) against the float64 default, on update streams whose
spectrum is known by construction, and the training-loop wiring of --gram-dtype / --log-gram-f32.

The synthetic stream: Delta_t = B c_t with B (P, 3) orthonormal columns and coefficients c_t whose
third component is 1e-5 of the first two, so that the window Gram D^T D = C^T C has sigma_3 / sigma_1
~ 1e-10, far below float32 resolution (2^-23 ~ 1.2e-7 of sigma_1 per Gram entry and worse) and far
above float64's (~1e-16). The exact eigenvalues are those of the 3 x 3 matrix C C^T.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tianref import fakexp, runs, spectra, train
from tianref.config import TrainConfig, validate

REPO = Path(__file__).resolve().parents[1]
P, T, W = 20000, 12, 5
EPS32 = 2.0 ** -23


def _stream(seed=0):
    """Parameters theta_0..theta_T (float64) and the exact top-3 eigenvalues of the last window."""
    rng = np.random.default_rng(seed)
    B, _ = np.linalg.qr(rng.standard_normal((P, 3)))                  # (P, 3) orthonormal
    C = rng.standard_normal((3, T)) * np.array([[1.0], [0.5], [1e-5]])  # (3, T) coefficients
    theta = np.concatenate([np.zeros((1, P)), np.cumsum((B @ C).T, axis=0)])  # (T+1, P)
    Cw = C[:, T - W:]                                                  # the last W updates
    exact = np.sort(np.linalg.eigvalsh(Cw @ Cw.T))[::-1]               # (3,) = top of C^T C
    return theta, exact


def _top(xp, theta, mode):
    st = spectra.init(xp, P, W, mode)
    for t in range(1, T + 1):
        st = spectra.push(xp, st, spectra.delta(xp, xp.asarray(theta[t]), xp.asarray(theta[t - 1]), mode),
                          mode)
    ev = spectra.top_eigenvalues(xp, st, W)
    return np.asarray(ev._a if hasattr(ev, "_a") else ev, dtype=np.float64), st


@pytest.mark.parametrize("xp", [np, fakexp], ids=["numpy", "fake"])
@pytest.mark.parametrize("mode", ["float32", "float32-seq"])
def test_float32_gram_loses_sigma3_that_float64_keeps(xp, mode):
    theta, exact = _stream()
    assert exact[2] / exact[0] < 1e-9                                  # far below 2^-23
    ev64, st64 = _top(xp, theta, "float64")
    ev32, st32 = _top(xp, theta, mode)
    assert st64["gram"].dtype == np.float64 and st32["gram"].dtype == np.float32
    assert st32["buf"].dtype == np.float32
    # float64 keeps all three to high relative accuracy, sigma3 included
    np.testing.assert_allclose(ev64[:3], exact, rtol=1e-5)
    np.testing.assert_allclose(ev64[1] / ev64[2], exact[1] / exact[2], rtol=1e-5)
    # float32 keeps sigma1, sigma2 to float32 accuracy (a sequential sum of P terms: ~sqrt(P) eps) ...
    np.testing.assert_allclose(ev32[:2], exact[:2], rtol=1e-5 if mode == "float32" else 1e-3)
    # ... but its sigma3 is rounding noise: wrong by orders of magnitude, at the float32 floor
    assert abs(ev32[2] - exact[2]) > 100 * exact[2]
    assert abs(ev32[2]) < 1e3 * EPS32 * ev32[0] * (1 if mode == "float32" else 100)
    # so sigma2/sigma3 is off by orders of magnitude too (or undefined where sigma3 <= 0)
    if ev32[2] > 0:
        assert ev32[1] / ev32[2] < 0.01 * exact[1] / exact[2]


def test_sequential_float32_sum_is_the_running_sum():
    """float32-seq: every Gram entry is the left-to-right float32 sum of the float32 products."""
    rng = np.random.default_rng(2)
    D = rng.standard_normal((4, 3001)).astype(np.float32)
    st = spectra.init(np, D.shape[1], 4, "float32-seq")
    for d in D:
        st = spectra.push(np, st, d, "float32-seq")
    for i in range(4):
        for j in range(4):
            acc = np.float32(0)
            for p in range(D.shape[1]):
                acc = np.float32(acc + np.float32(D[i, p] * D[j, p]))
            assert st["gram"][i, j] == acc
    assert not np.array_equal(st["gram"], D @ D.T)                   # the BLAS order differs


def test_float32_gram_agrees_when_sigma3_is_resolved():
    """Control: with sigma3/sigma1 ~ 1e-2 both precisions agree to float32 accuracy."""
    theta, _ = _stream()
    rng = np.random.default_rng(1)
    bump = np.concatenate([np.zeros((1, P)), np.cumsum(0.1 * rng.standard_normal((T, P)) / np.sqrt(P),
                                                       axis=0)])
    ev64, _ = _top(np, theta + bump, "float64")
    ev32, _ = _top(np, theta + bump, "float32")
    np.testing.assert_allclose(ev32, ev64, rtol=1e-4)


def test_delta_default_is_the_exact_float64_difference():
    a = np.float32([1.0, 3.0e-3, -2.5])
    b = np.float32([1.0 + 2 ** -20, 3.1e-3, -2.4])
    d64 = spectra.delta(np, b, a)
    assert d64.dtype == np.float64
    np.testing.assert_array_equal(d64, b.astype(np.float64) - a.astype(np.float64))
    d32 = spectra.delta(np, b, a, "float32")
    assert d32.dtype == np.float32
    np.testing.assert_array_equal(d32, b - a)


# --- the training loop ------------------------------------------------------------------------

CFG = dict(M=11, K=32, n_train=48, epochs=40, lr=1e-2, eta=5e-3, windows=(20, 5), seed=3)


def _rows(**kw):
    cfg = validate(TrainConfig(**{**CFG, **kw}))
    out = []

    class Sink:
        def row(self, r):
            out.append(runs.clean_row(r))

        def checkpoint(self, *a, **k):
            pass
    train.run(cfg, np, sink=Sink())
    return out


def _same(a, b):
    return a == b or (a != a and b != b)                              # NaN == NaN here


@pytest.mark.parametrize("mode,sfx", [("float32", "_f32"), ("float32-seq", "_f32seq")])
def test_logged_grams_leave_float64_rows_unchanged_and_equal_the_main_mode(mode, sfx):
    base = _rows()
    both = _rows(log_grams=("float32", "float32-seq"))
    main = _rows(gram_dtype=mode)
    for r0, r2, r3 in zip(base, both, main):
        assert {k: r2[k] for k in r0} == r0                          # float64 keys bit for bit
        assert {k for k in r2 if k not in r0} == {k for k in r2 if "_f32" in k}
        for k in (k for k in r2 if sfx in k and (sfx == "_f32seq" or "_f32seq" not in k)):
            name = k.replace(sfx, "")                                # W_gap23_f32_w5 <-> W_gap23_w5
            assert _same(r2[k], r3[name]), (r2["epoch"], k)
    late = both[-1]
    assert {f"W_sigma{sfx}", f"W_gap23{sfx}", f"W_sigma{sfx}_w5", f"W_gap23{sfx}_w5", f"V_sigma{sfx}"} <= set(late)
    assert late[f"W_sigma{sfx}"] != late["W_sigma"]                  # really another computation


def test_bad_gram_settings_are_refused():
    from tianref.errors import InputError
    with pytest.raises(InputError, match="Gram dtype"):
        validate(TrainConfig(gram_dtype="float16"))
    with pytest.raises(InputError, match="repeats"):
        validate(TrainConfig(gram_dtype="float32", log_grams=("float32",)))
    with pytest.raises(InputError, match="unknown or main-only"):
        validate(TrainConfig(log_grams=("float64",)))


def _cli(*args):
    return subprocess.run([sys.executable, str(REPO / "cli.py"), "train", *args],
                          capture_output=True, text=True, cwd=REPO, check=False, timeout=120)


def test_cli_gram_dtype_goes_to_config_and_is_refused_on_resume(tmp_path):
    out = tmp_path / "run"
    small = ["--M", "7", "--K", "16", "--windows", "5,3", "--out", str(out)]
    res = _cli(*small, "--epochs", "12", "--log-grams", "float32")
    assert res.returncode == 0, res.stderr
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert cfg["gram_dtype"] == "float64" and cfg["log_grams"] == ["float32"]
    before = (out / "metrics.jsonl").read_text()
    for flag in (["--gram-dtype", "float32"], ["--log-grams", "float32-seq"]):
        res = _cli("--out", str(out), "--resume", "--epochs", "20", *flag)
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert "--resume" in res.stderr
        assert (out / "metrics.jsonl").read_text() == before          # nothing touched
    # resume with the shadow continues exactly as an uninterrupted run
    res = _cli("--out", str(out), "--resume", "--epochs", "20")
    assert res.returncode == 0, res.stderr
    whole = tmp_path / "whole"
    res = _cli("--M", "7", "--K", "16", "--windows", "5,3", "--out", str(whole), "--epochs", "20",
               "--log-grams", "float32")
    assert res.returncode == 0, res.stderr
    assert (out / "metrics.jsonl").read_text() == (whole / "metrics.jsonl").read_text()


def test_sequential_float32_is_refused_on_cupy():
    from tianref.cli.train import _check_gram_backend
    from tianref.errors import InputError
    for cfg in (TrainConfig(gram_dtype="float32-seq"), TrainConfig(log_grams=("float32-seq",))):
        with pytest.raises(InputError, match="sequential"):
            _check_gram_backend(cfg, "cupy")
        _check_gram_backend(cfg, "numpy")                            # fine on NumPy
    _check_gram_backend(TrainConfig(log_grams=("float32",)), "cupy")  # the BLAS float32 Gram is fine
