"""The paper code's training loop in PyTorch, as the speed baseline for bench/bench_train.py.

It does per epoch what docs/paper-protocol.md §3 says the paper's code does, the way that
code does it (float32, CPU here):

    model    W = Linear(2M -> K, bias=False), V = Linear(K -> M, bias=False) on an explicit
             one-hot input X (n, 2M); Yhat = sigma(X W^T) V^T in nn.Linear's orientation
    loss     (1/n) sum_i [||z_i||^2 - 2 z_{i,y_i} + (1 - 1/M)], z = class-centred Yhat
    step     torch.optim.Adam(lr, weight_decay=eta) (coupled L2), autograd, a fresh forward pass
    row t    (before step t+1) under no_grad:
             train and test forward passes, losses, accuracies (.item() each);
             full metrics only: ftf_ratio from the K x K  F~^T F~,
                                rho_tian from the n x n  F F^T (raw Gram),
                                fft_diag / fft_off of F F^T minus its column means;
             G_F = R V (n, K), R = P_perp(Y_0) - P_perp(Yhat); gF_norm; independence proxy
             (500 random column pairs of G_F, lower median and 95th percentile of |cos|);
             rolling-update spectra: D = stack of the last <= w flattened Delta W (and Delta V)
             from a deque, G = D D^T in float32, top-5 eigvalsh -- recomputed every epoch.

``metrics="core"`` skips the three K x K / n x n Gram quantities, as tianref's ``--metrics core``
does, so each of our two modes is timed against the same work in torch.

The weights start from tianref.data.init_host (the same distribution the code's default Linear
init draws from), so both sides of the benchmark follow the same trajectory. Rows are returned
as dicts; no files are written (the benchmark times tianref without a run directory too).
"""
from __future__ import annotations

import collections

import numpy as np

N_TOP = 5


def _sigma(torch, H, act):
    if act == "sqr":
        return H * H
    if act == "relu":
        return torch.relu(H)
    raise ValueError(f"the baseline implements sqr and relu only (got {act!r})")


def _loss(torch, out, y, M):
    z = out - out.mean(dim=1, keepdim=True)                                   # (n, M) class-centred
    return (z.pow(2).sum(dim=1) - 2 * z.gather(1, y[:, None])[:, 0] + (1 - 1 / M)).mean()


def _inputs(torch, M, idx):
    idx = torch.as_tensor(idx, dtype=torch.int64)
    a, b = idx // M, idx % M
    X = torch.cat([torch.nn.functional.one_hot(a, M), torch.nn.functional.one_hot(b, M)], dim=1)
    return X.float(), (a + b) % M                                             # (n, 2M), (n,)


def _top_eigs(torch, dq):
    D = torch.stack(list(dq))                                                 # (len, P) float32
    ev = torch.linalg.eigvalsh(D @ D.T)                                       # ascending
    return ev.flip(0)[:N_TOP].tolist()


def run(torch, *, M, K, n_train, epochs, seed, eta, lr, act="sqr", window=20, metrics="full",
        init=None, n_pairs=500):
    """Train for ``epochs`` steps and return the rows 0..epochs (dicts of Python floats)."""
    from tianref import data
    tr, te, W0, V0 = init if init is not None else data.init_host(M, K, n_train, seed)
    X_tr, y_tr = _inputs(torch, M, tr)
    X_te, y_te = _inputs(torch, M, te)
    lin_W = torch.nn.Linear(2 * M, K, bias=False)
    lin_V = torch.nn.Linear(K, M, bias=False)
    with torch.no_grad():
        lin_W.weight.copy_(torch.as_tensor(W0.T, dtype=torch.float32))       # (K, 2M)
        lin_V.weight.copy_(torch.as_tensor(V0.T, dtype=torch.float32))       # (M, K)
    params = [lin_W.weight, lin_V.weight]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=eta)
    Y0 = torch.nn.functional.one_hot(y_tr, M).float() - 1.0 / M              # (n, M)
    Y0c = Y0 - Y0.mean(dim=0, keepdim=True)
    rng = np.random.default_rng(seed)
    dW, dV = collections.deque(maxlen=window), collections.deque(maxlen=window)
    n = X_tr.shape[0]

    def model(X):
        F = _sigma(torch, lin_W(X), act)                                      # (n, K)
        return F, lin_V(F)                                                    # (n, M)

    rows = []
    for t in range(epochs + 1):
        row = {"epoch": t}
        with torch.no_grad():
            F, out = model(X_tr)
            _, out_te = model(X_te)
            row["train_loss"] = _loss(torch, out, y_tr, M).item()
            row["test_loss"] = _loss(torch, out_te, y_te, M).item()
            row["train_acc"] = (out.argmax(dim=1) == y_tr).float().mean().item()
            row["test_acc"] = (out_te.argmax(dim=1) == y_te).float().mean().item()
            if metrics == "full":
                Ft = F - F.mean(dim=0, keepdim=True)                          # (n, K)
                C = Ft.T @ Ft                                                 # (K, K)
                off = ~torch.eye(K, dtype=torch.bool)
                row["ftf_ratio"] = (C.abs()[off].mean() / C.diagonal().abs().mean()).item()
                G = F @ F.T                                                   # (n, n) raw Gram
                d = G.diagonal().mean()
                o = (G.sum() - G.diagonal().sum()) / (n * (n - 1))
                ideal = (d - o) * torch.eye(n) + o * torch.ones(n, n)
                row["rho_tian"] = (torch.linalg.norm(G - ideal) / torch.linalg.norm(G)).item()
                Gc = G - G.mean(dim=0, keepdim=True)                          # P_perp F F^T
                offn = ~torch.eye(n, dtype=torch.bool)
                row["fft_diag"] = Gc.diagonal().abs().mean().item()
                row["fft_off"] = Gc.abs()[offn].mean().item()
            R = Y0c - (out - out.mean(dim=0, keepdim=True))                   # (n, M)
            G_F = R @ lin_V.weight                                            # (n, K)
            row["gF_norm"] = torch.linalg.norm(G_F).item()
            j, jp = rng.integers(0, K, size=n_pairs), rng.integers(0, K, size=n_pairs)
            keep = j != jp
            gj, gjp = G_F[:, torch.as_tensor(j[keep])], G_F[:, torch.as_tensor(jp[keep])]
            cos = ((gj * gjp).sum(dim=0) / (gj.norm(dim=0) * gjp.norm(dim=0))).abs()
            row["indep_cos_med"] = cos.median().item()
            row["indep_cos_p95"] = torch.quantile(cos, 0.95).item()
            for name, dq in (("W", dW), ("V", dV)):
                if len(dq) >= 2:
                    ev = _top_eigs(torch, dq)
                    row[f"{name}_sigma"] = ev
                    if len(ev) >= 3:
                        row[f"{name}_gap23"] = ev[1] / ev[2] if ev[2] > 0 else float("nan")
        rows.append(row)
        if t == epochs:
            break
        old = [p.detach().clone() for p in params]
        opt.zero_grad(set_to_none=True)
        _, out = model(X_tr)
        _loss(torch, out, y_tr, M).backward()
        opt.step()
        # flattened in nn.Linear's orientation; Gram entries do not depend on the element order
        dW.append((params[0].detach() - old[0]).reshape(-1))                 # (2MK,)
        dV.append((params[1].detach() - old[1]).reshape(-1))                 # (KM,)
    return rows
