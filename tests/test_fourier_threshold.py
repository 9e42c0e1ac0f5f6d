"""freq_coverage counts units whose purity reaches the threshold, inclusive (purity >= 0.9).

Two units share a frequency mix with purity p = 9/(9 + 1) (amplitudes 3 and 1 on frequencies 2 and
5); a third is a pure cosine on frequency 4. Asked with the threshold set to the mixed units' own
computed purity, coverage must count frequency 2: a strict comparison would leave only frequency 4.
"""
import numpy as np

from tianref import fourier

M = 13


def _units():
    a = np.arange(M)
    c = lambda k: np.cos(2 * np.pi * k * a / M)
    mixed = np.concatenate([3 * c(2) + c(5), 3 * c(2) + c(5)])        # (2M,) operand parts a and b
    pure = np.concatenate([c(4), c(4)])
    return np.stack([mixed, mixed, pure], axis=1)                     # (2M, 3)


def test_purity_at_exactly_the_threshold_counts():
    W = _units()
    _, _, kstar, purity = fourier.frequency_metrics(np, W, M)
    assert list(kstar) == [2, 2, 4]
    assert abs(purity[0] - 0.9) < 1e-12 and abs(purity[2] - 1.0) < 1e-12   # rounding of the rfft only
    cov, _, _, _ = fourier.frequency_metrics(np, W, M, threshold=float(purity[0]))
    assert int(cov) == 2
    cov, _, _, _ = fourier.frequency_metrics(np, W, M, threshold=float(np.nextafter(purity[0], 2.0)))
    assert int(cov) == 1
