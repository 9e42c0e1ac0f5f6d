"""tianref: an auditable NumPy/CuPy reference for grokking in two-layer networks.

Yhat = sigma(XW)V on modular addition (Tian's Li2 setup), the paper's per-epoch
diagnostics, the rolling Gram spectra of parameter updates, and Theorem 6 exactly.
See README.md and docs/.
"""
__version__ = "0.1.0"
