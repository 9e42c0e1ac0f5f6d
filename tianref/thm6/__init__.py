"""Theorem 6 exactly: the math (``theorem``), what one checkpoint reports (``summary``), its figure
(``figures``).

Data flows down: theorem -> summary -> figures; nothing reaches back up. The public names of
``theorem`` and ``summary`` are re-exported so that ``from tianref import thm6`` gives the whole API.
"""
from tianref.thm6.theorem import (  # noqa: F401
    B_cholesky,
    B_eigh,
    B_inverse,
    B_paper,
    B_pinv,
    B_woodbury,
    S_direct,
    centre,
    check_eta_shape,
    features_from_weights,
    inverse_norms,
    r_approx,
    r_approx_identity,
    r_exact_closed,
    r_exact_direct,
    r_paper,
    residual_with,
    sign_error_bound,
    top_pairs,
    woodbury_core,
)
from tianref.thm6.summary import QUANTILES, all_pairs_summary, check_pinv, summarize_checkpoint  # noqa: F401
