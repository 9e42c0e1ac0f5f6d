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


def _top(xp, theta, gram_dtype):
    st = spectra.init(xp, P, W, gram_dtype)
    for t in range(1, T + 1):
        st = spectra.push(xp, st, spectra.delta(xp, xp.asarray(theta[t]), xp.asarray(theta[t - 1]),
                                                gram_dtype))
    ev = spectra.top_eigenvalues(xp, st, W)
    return np.asarray(ev._a if hasattr(ev, "_a") else ev, dtype=np.float64), st


@pytest.mark.parametrize("xp", [np, fakexp], ids=["numpy", "fake"])
def test_float32_gram_loses_sigma3_that_float64_keeps(xp):
    theta, exact = _stream()
    assert exact[2] / exact[0] < 1e-9                                  # far below 2^-23
    ev64, st64 = _top(xp, theta, "float64")
    ev32, st32 = _top(xp, theta, "float32")
    assert st64["gram"].dtype == np.float64 and st32["gram"].dtype == np.float32
    assert st32["buf"].dtype == np.float32
    # float64 keeps all three to high relative accuracy, sigma3 included
    np.testing.assert_allclose(ev64[:3], exact, rtol=1e-5)
    np.testing.assert_allclose(ev64[1] / ev64[2], exact[1] / exact[2], rtol=1e-5)
    # float32 keeps sigma1, sigma2 to float32 accuracy ...
    np.testing.assert_allclose(ev32[:2], exact[:2], rtol=1e-5)
    # ... but its sigma3 is rounding noise: wrong by orders of magnitude, at the float32 floor
    assert abs(ev32[2] - exact[2]) > 100 * exact[2]
    assert abs(ev32[2]) < 1e3 * EPS32 * ev32[0]
    # so sigma2/sigma3 is off by orders of magnitude too (or undefined where sigma3 <= 0)
    if ev32[2] > 0:
        assert ev32[1] / ev32[2] < 0.01 * exact[1] / exact[2]


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


def test_shadow_leaves_float64_rows_unchanged_and_equals_the_float32_mode():
    base = _rows()
    both = _rows(log_gram_f32=True)
    f32 = _rows(gram_dtype="float32")
    for r0, r2, r3 in zip(base, both, f32):
        extra = {k for k in r2 if k not in r0}
        assert extra == {k for k in r2 if "_f32" in k}
        assert {k: r2[k] for k in r0} == r0                          # bit for bit
        for k in extra:                                              # W_gap23_f32_w5 <-> W_gap23_w5
            name = k.replace("_f32", "")
            assert r2[k] == r3[name] or (r2[k] != r2[k] and r3[name] != r3[name]), (r2["epoch"], k)
    late = both[-1]
    assert {"W_sigma_f32", "W_gap23_f32", "W_sigma_f32_w5", "W_gap23_f32_w5", "V_sigma_f32"} <= set(late)
    assert late["W_sigma_f32"] != late["W_sigma"]                    # really another computation


def test_bad_gram_settings_are_refused():
    from tianref.errors import InputError
    with pytest.raises(InputError, match="Gram dtype"):
        validate(TrainConfig(gram_dtype="float16"))
    with pytest.raises(InputError, match="already float32"):
        validate(TrainConfig(gram_dtype="float32", log_gram_f32=True))


def _cli(*args):
    return subprocess.run([sys.executable, str(REPO / "cli.py"), "train", *args],
                          capture_output=True, text=True, cwd=REPO, check=False, timeout=120)


def test_cli_gram_dtype_goes_to_config_and_is_refused_on_resume(tmp_path):
    out = tmp_path / "run"
    small = ["--M", "7", "--K", "16", "--windows", "5,3", "--out", str(out)]
    res = _cli(*small, "--epochs", "12", "--log-gram-f32")
    assert res.returncode == 0, res.stderr
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert cfg["gram_dtype"] == "float64" and cfg["log_gram_f32"] is True
    before = (out / "metrics.jsonl").read_text()
    for flag in (["--gram-dtype", "float32"], ["--log-gram-f32"]):
        res = _cli("--out", str(out), "--resume", "--epochs", "20", *flag)
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert "--resume" in res.stderr
        assert (out / "metrics.jsonl").read_text() == before          # nothing touched
    # resume with the shadow continues exactly as an uninterrupted run
    res = _cli("--out", str(out), "--resume", "--epochs", "20")
    assert res.returncode == 0, res.stderr
    whole = tmp_path / "whole"
    res = _cli("--M", "7", "--K", "16", "--windows", "5,3", "--out", str(whole), "--epochs", "20",
               "--log-gram-f32")
    assert res.returncode == 0, res.stderr
    assert (out / "metrics.jsonl").read_text() == (whole / "metrics.jsonl").read_text()
