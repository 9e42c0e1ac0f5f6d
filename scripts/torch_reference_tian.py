"""Independent PyTorch trajectories for Tian's own options, stored as references for the tests.

    pip install torch                           # a CPU wheel; torch is NOT a dependency of tianref
    python scripts/torch_reference_tian.py      # writes reference_results/torch/tian_{sgd,muon,ridge,knobs}.*
    python scripts/torch_reference_tian.py --only tian_ridge_held     # one of them

Each config trains  Yhat = beta sigma(X W) V  on modular addition by a route that shares nothing
with tianref's math (as scripts/torch_reference.py does for Adam):

    X      (n, 2M) the materialised one-hot inputs, float64;  autograd for every gradient
    loss   the paper code's class-centred MSE (1/n) sum_i [||z_i||^2 - 2 z_{i,y_i} + 1 - 1/M]
    order  for t = 0..E: (ridge: set V) evaluate and record row t, then step (none after row E)

and, per config,

    tian_sgd    torch.optim.SGD([W, V], lr, momentum=0.9, weight_decay=eta)   (dampening 0, no Nesterov)
    tian_muon   W as torch's nn.Linear stores it, Wt = W^T (K, 2M), stepped by a Muon written here
                from its published description (decoupled decay first, EMA momentum beta = 0.99,
                five Newton-Schulz steps with Tian's coefficient triples, no Nesterov, no scaling);
                V by torch.optim.Adam(weight_decay=eta). The (K, 2M) orientation also checks that
                the step is transpose-invariant.
    tian_ridge  (--ridge-eval current) before every forward pass V = sum_k v_k (s_k / (s_k^2 + lam)) u_k^T T
                through torch.linalg.svd of the raw F = sigma(XW) on the training set (Tian's route;
                tianref uses a Cholesky factorisation), T = onehot - 1/M; V enters the loss detached (no
                gradient through the solve); W alone by torch.optim.Adam(weight_decay=eta).
    tian_ridge_held  (--ridge-eval held) Tian's loop as his modular_addition_simple2.py runs it: V is an
                nn.Parameter of torch.optim.Adam([W, V], weight_decay=eta); only the training forward
                (the one given the targets) overwrites V's values by the same SVD solve under no_grad,
                from that forward's own F, and then computes the output with V, so backward gives V the
                gradient at the solved V and Adam steps it (coupled decay included); the rows are
                evaluated at the top of each epoch with the V V then holds (row 0: the initial V).
    tian_knobs  GELU (torch.nn.functional.gelu, approximate='none': the erf form), initial V
                multiplied by alpha = 0.5, output scale beta = 2; Adam with coupled L2.

Only the shared initial state comes from tianref: ``tianref.data.init_host(M, K, n_train, seed)``,
plus the atomic file writers.

Output per config NAME, written atomically:
    reference_results/torch/NAME.json   provenance, config (a tianref TrainConfig dict), rows:
                                        epoch, train_loss, test_loss, train_acc, test_acc
    reference_results/torch/NAME.npz    W, V, train_idx, test_idx (the initial state, V before
                                        alpha), W_final, V_final (after E steps; tian_ridge: the V
                                        of W_final; tian_ridge_held: the V held after step E)

tests/test_torch_reference_tian.py reads these files only (torch is not imported there).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tianref import data, runs  # noqa: E402  (init_host and atomic writers only)
from tianref.backend import git_state  # noqa: E402

OUT_DIR = os.path.join(ROOT, "reference_results", "torch")

SMALL = dict(M=11, K=64, n_train=48, seed=0, epochs=50, act="sqr", lr=1e-2, eta=1e-3)
CONFIGS = {
    "tian_sgd": dict(SMALL, optimizer="sgd", lr=0.5, momentum=0.9),
    "tian_muon": dict(SMALL, optimizer="muon", eta=1e-2),
    # n > K so that the ridge fit does not interpolate and W's gradient stays substantive
    "tian_ridge": dict(SMALL, K=32, n_train=96, top_layer="ridge", ridge_reg=1e-3, ridge_eval="current"),
    "tian_ridge_held": dict(SMALL, K=32, n_train=96, top_layer="ridge", ridge_reg=1e-3, ridge_eval="held"),
    "tian_knobs": dict(SMALL, act="gelu", init_scale=0.5, output_scale=2.0),
}
COMMON = dict(beta1=0.9, beta2=0.999, eps=1e-8, loss="tian", dtype="float64", windows=[20])

NS_COEFFS = [(4.01, -9.22, 5.80), (3.49, -6.38, 3.23), (3.34, -6.21, 3.20), (3.64, -7.48, 4.43),
             (3.46, -5.35, 2.85)]


def one_hot_inputs(torch, M, idx):
    idx = torch.as_tensor(idx, dtype=torch.int64)
    a, b = idx // M, idx % M
    X = torch.cat([torch.nn.functional.one_hot(a, M), torch.nn.functional.one_hot(b, M)], dim=1)
    return X.to(torch.float64), (a + b) % M                                   # (n, 2M), (n,)


def activation(torch, H, act):
    if act == "sqr":
        return H.pow(2)
    if act == "gelu":
        return torch.nn.functional.gelu(H, approximate="none")
    raise ValueError(act)


def paper_loss(torch, Yhat, y, M):
    z = Yhat - Yhat.mean(dim=1, keepdim=True)                                 # (n, M)
    per_sample = z.pow(2).sum(dim=1) - 2 * z.gather(1, y[:, None])[:, 0] + (1 - 1 / M)
    return per_sample.mean()


def ns_orthogonalise(torch, G):
    """Newton-Schulz as described: transpose a tall matrix, normalise, five steps, transpose back."""
    X = G.T if G.shape[0] > G.shape[1] else G
    X = X / (torch.linalg.matrix_norm(X, ord="fro") + 1e-7)
    for a, b, c in NS_COEFFS:
        A = X @ X.T
        X = a * X + (b * A + c * (A @ A)) @ X
    return X.T if G.shape[0] > G.shape[1] else X


class Muon:
    """One Muon step per call on a list of matrices: decay, EMA momentum, NS, step."""

    def __init__(self, torch, params, lr, weight_decay, beta=0.99):
        self.torch, self.params, self.lr, self.wd, self.beta = torch, params, lr, weight_decay, beta
        self.buf = [torch.zeros_like(p) for p in params]

    def step(self):
        with self.torch.no_grad():
            for p, m in zip(self.params, self.buf):
                p.mul_(1 - self.lr * self.wd)
                m.mul_(self.beta).add_(p.grad, alpha=1 - self.beta)
                p.add_(ns_orthogonalise(self.torch, m), alpha=-self.lr)


def ridge_solution(torch, F, T, lam):
    """sum_k v_k (s_k / (s_k^2 + lam)) u_k^T T, through the SVD of F (n, K)."""
    U, s, Vh = torch.linalg.svd(F, full_matrices=False)
    return Vh.T @ ((s / (s * s + lam))[:, None] * (U.T @ T))                  # (K, M)


def run_config(torch, cfg):
    M, K, n_train, seed = cfg["M"], cfg["K"], cfg["n_train"], cfg["seed"]
    beta = cfg.get("output_scale", 1.0)
    train_idx, test_idx, W0, V0 = data.init_host(M, K, n_train, seed)
    X_tr, y_tr = one_hot_inputs(torch, M, train_idx)
    X_te, y_te = one_hot_inputs(torch, M, test_idx)
    T_tr = torch.nn.functional.one_hot(y_tr, M).to(torch.float64) - 1.0 / M
    opt_name = cfg.get("optimizer", "adam")
    ridge = cfg.get("top_layer") == "ridge"
    held = ridge and cfg.get("ridge_eval", "current") == "held"     # Tian's loop; else V = ridge(W) always
    current = ridge and not held
    if opt_name == "muon":                                                    # nn.Linear's (out, in) layout
        Wt = torch.nn.Parameter(torch.tensor(W0.T.copy(), dtype=torch.float64))   # (K, 2M)
        W_of = lambda: Wt.T                                                   # noqa: E731
    else:
        Wt = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))            # (2M, K)
        W_of = lambda: Wt                                                     # noqa: E731
    V = torch.nn.Parameter(torch.tensor(V0 * cfg.get("init_scale", 1.0), dtype=torch.float64))
    kw = dict(lr=cfg["lr"], weight_decay=cfg["eta"])
    adam_kw = dict(kw, betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"])
    if opt_name == "sgd":
        opts = [torch.optim.SGD([Wt, V], momentum=cfg["momentum"], **kw)]
    elif opt_name == "muon":
        opts = [Muon(torch, [Wt], **kw), torch.optim.Adam([V], **adam_kw)]
    elif current:
        opts = [torch.optim.Adam([Wt], **adam_kw)]
    else:
        opts = [torch.optim.Adam([Wt, V], **adam_kw)]

    def features(X):
        return activation(torch, X @ W_of(), cfg["act"])                      # (n, K)

    def set_ridge():
        with torch.no_grad():
            V.copy_(ridge_solution(torch, features(X_tr), T_tr, cfg["ridge_reg"]))

    rows = []
    for t in range(cfg["epochs"] + 1):
        if current:
            set_ridge()
        with torch.no_grad():
            Y_tr, Y_te = beta * features(X_tr) @ V, beta * features(X_te) @ V
            rows.append({"epoch": t,
                         "train_loss": float(paper_loss(torch, Y_tr, y_tr, M)),
                         "test_loss": float(paper_loss(torch, Y_te, y_te, M)),
                         "train_acc": float((Y_tr.argmax(dim=1) == y_tr).double().mean()),
                         "test_acc": float((Y_te.argmax(dim=1) == y_te).double().mean())})
        if t == cfg["epochs"]:
            break
        for o in opts:
            if hasattr(o, "zero_grad"):
                o.zero_grad(set_to_none=True)
        Wt.grad = None
        F_tr = features(X_tr)                                                 # (n, K) the training forward
        if held:                                                              # his forward(X, Y): V's values
            with torch.no_grad():                                             # overwritten, outside autograd
                V.copy_(ridge_solution(torch, F_tr.detach(), T_tr, cfg["ridge_reg"]))
        Vuse = V.detach() if current else V                                   # no gradient through the solve
        paper_loss(torch, beta * F_tr @ Vuse, y_tr, M).backward()
        for o in opts:
            o.step()
    if current:
        set_ridge()
    arrays = {"W": W0, "V": V0, "train_idx": train_idx, "test_idx": test_idx,
              "W_final": W_of().detach().numpy().copy(), "V_final": V.detach().numpy().copy()}
    return rows, arrays


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=sorted(CONFIGS), help="write one config only")
    ap.add_argument("--out-dir", default=OUT_DIR)
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("torch is needed to regenerate the reference: pip install torch")
    torch.set_default_dtype(torch.float64)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    for name in ([args.only] if args.only else sorted(CONFIGS)):
        cfg = dict(COMMON, **CONFIGS[name])
        rows, arrays = run_config(torch, cfg)
        provenance = {
            "command": " ".join(["python", os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:]),
            "seed": cfg["seed"], "dtype": "float64", "backend": "torch (CPU, autograd, 1 thread)",
            "initial_state": "tianref.data.init_host(M, K, n_train, seed)",
            "versions": {"torch": torch.__version__, "numpy": np.__version__,
                         "python": platform.python_version()},
            "platform": platform.platform(),
            "tianref_commit": (git_state() or {}).get("commit"),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        doc = {"name": name, "provenance": provenance, "config": cfg,
               "arrays": name + ".npz", "rows": rows}
        os.makedirs(args.out_dir, exist_ok=True)
        runs.save_npz(os.path.join(args.out_dir, name + ".npz"), arrays)
        runs.atomic_write_json(os.path.join(args.out_dir, name + ".json"), doc)
        last = rows[-1]
        print(f"{name}: {len(rows)} rows; final train_loss {last['train_loss']:.6g} "
              f"train_acc {last['train_acc']:.3f} test_acc {last['test_acc']:.3f}")


if __name__ == "__main__":
    main()
