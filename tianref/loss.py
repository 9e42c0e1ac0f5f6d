"""The two squared losses and softmax cross-entropy, each with its hand-written gradient dL/dYhat.

Reference: the seed paper §2 (J) and its code's training loss (paper-protocol.md §3, §5.4);
docs/math.md §3.

Symbols
    Yhat   (n, M)  network output
    y      (n,)    labels
    E      (n, M)  one-hot labels, E_ic = 1[c = y_i]
    T      (n, M)  class-centred targets  T = E - 1/M     (Y_0 in the code)
    P_M            centring over classes:  z_i = yhat_i - mean_c yhat_ic   (acts on rows)
    P_perp         P_1^perp = I_n - 1 1^T / n: centring over samples       (acts on columns)

``tian`` (default; what the paper's code trains):

    L = (1/n) sum_i || P_M yhat_i - t_i ||^2               (mean over samples, sum over classes, no 1/2)
    dL/dYhat = (2/n) (Z - T)                               (P_M is symmetric, idempotent, and P_M T = T)

``theory`` (the paper's J):

    J = 1/2 || P_perp (E - Yhat) ||_F^2                    (a sum, not a mean)
    dJ/dYhat = - P_perp (E - Yhat)

The two differ in the centring axis (classes vs samples), the 1/2 and the 1/n. With Adam
the overall scale mostly cancels, but not against the coupled weight decay eta*w, so the
default follows the code that produced the published numbers.

``ce`` (softmax cross-entropy on the raw outputs, as ``torch.nn.CrossEntropyLoss()``, mean reduction;
the loss of the two-clocks paper's modular-addition experiments):

    L = (1/n) sum_i [ lse(yhat_i) - yhat_{i,y_i} ],   lse(z) = log sum_c exp(z_c)
    dL/dYhat = (softmax(Yhat) - E) / n

Stable form: with m_i = max_c yhat_ic, lse(yhat_i) = m_i + log sum_c exp(yhat_ic - m_i), so no
exponent exceeds 0 and the sum is >= 1 (no overflow, no log 0).

A leading run axis is optional: Yhat (S, n, M) and y (S, n) (S runs stacked, tianref/batch.py) give
L (S,) and dL/dYhat (S, n, M); each run's numbers are those of the S-less call, bit for bit.
"""
from __future__ import annotations

LOSSES = ("tian", "theory", "ce")


def onehot(xp, y, M: int, dtype):
    """E (n, M): E_ic = 1[c = y_i]."""
    return xp.eye(M, dtype=dtype)[y]                     # (n, M)


def loss_tian(xp, Yhat, y):
    """L = (1/n) sum_i ||P_M yhat_i - (e_{y_i} - 1/M)||^2.  Returns (L (0-d), dL_dYhat (n, M))."""
    n, M = Yhat.shape[-2:]
    Z = Yhat - Yhat.mean(axis=-1, keepdims=True)         # (n, M)  P_M yhat_i, centred over classes
    T = onehot(xp, y, M, Yhat.dtype) - 1.0 / M           # (n, M)  t_i = e_{y_i} - 1/M
    D = Z - T                                            # (n, M)
    L = (D * D).sum(axis=(-2, -1)) / n                   # ()
    return L, (2.0 / n) * D                              # dL/dYhat = (2/n)(Z - T)


def loss_theory(xp, Yhat, y):
    """J = 1/2 ||P_perp (E - Yhat)||_F^2.  Returns (J (0-d), dJ_dYhat (n, M))."""
    n, M = Yhat.shape[-2:]
    R = onehot(xp, y, M, Yhat.dtype) - Yhat              # (n, M)  E - Yhat
    R = R - R.mean(axis=-2, keepdims=True)               # (n, M)  P_perp (E - Yhat), centred over samples
    J = 0.5 * (R * R).sum(axis=(-2, -1))                 # ()
    return J, -R                                         # dJ/dYhat = -P_perp (E - Yhat)


def loss_ce(xp, Yhat, y):
    """L = (1/n) sum_i [lse(yhat_i) - yhat_{i,y_i}].  Returns (L (0-d), dL_dYhat (n, M))."""
    n, M = Yhat.shape[-2:]
    S = Yhat - Yhat.max(axis=-1, keepdims=True)          # (n, M)  yhat_i - m_i <= 0
    Z = xp.exp(S)                                        # (n, M)  in (0, 1], row max exactly 1
    s = Z.sum(axis=-1, keepdims=True)                    # (n, 1)  >= 1
    E = onehot(xp, y, M, Yhat.dtype)                     # (n, M)
    L = (xp.log(s[..., 0]) - (S * E).sum(axis=-1)).sum(axis=-1) / n   # ()  mean of lse - yhat_y (m_i cancels)
    return L, (Z / s - E) / n                            # dL/dYhat = (softmax - E) / n


def loss_and_grad(xp, Yhat, y, loss: str):
    if loss == "tian":
        return loss_tian(xp, Yhat, y)
    if loss == "theory":
        return loss_theory(xp, Yhat, y)
    if loss == "ce":
        return loss_ce(xp, Yhat, y)
    raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")


def accuracy(xp, Yhat, y):
    """Fraction of rows whose argmax over the raw output equals the label (0-d array; (S,) stacked)."""
    return (Yhat.argmax(axis=-1) == y).mean(axis=-1)
