"""PyTorch reference trajectories for cross-entropy, weight-decay schedules, AdamW and the edge split.

    pip install torch==2.13.0              # a CPU wheel; torch is NOT a dependency of tianref
    python scripts/torch_reference_ce.py   # writes reference_results/torch/{ce_relu,ce_sqr_adamw}.{json,npz}

Same route as scripts/torch_reference.py (materialised one-hot X, autograd, torch optimizers,
spectra recomputed from a deque; imported from it), with:

    loss       torch.nn.CrossEntropyLoss() (mean over samples) on the raw outputs
    schedule   the param group's weight_decay is set to eta(t) before step t -> t+1 (the last
               schedule entry whose start is <= t), as tianref's --eta-schedule defines it
    optimizer  torch.optim.Adam(weight_decay) (coupled) or torch.optim.AdamW(weight_decay) (decoupled)
    edge split recomputed from explicit deques of the updates Delta and their weight-decay parts:
               Adam (coupled): m^wd <- beta1 m^wd + (1 - beta1) eta(t) w  (own float64 buffer),
                 denominator read back from torch's exp_avg_sq after the step,
                 Delta^wd = -(lr / c1) m^wd / (sqrt(v / c2) + eps)
               AdamW: Delta^wd = -lr eta(t) w (w before the step)
               then, for window 20: D, D^wd (w, P) stacked, G = D D^T, u_1 = top eigenvector
               (torch.linalg.eigh), g2 = ||(D - D^wd)^T u_1||^2, wd2 = ||D^wd^T u_1||^2,
               cross = <(D - D^wd)^T u_1, D^wd^T u_1>   (no incremental Grams)
    clocks     W_srank, V_srank from torch.linalg.matrix_norm(ord=2) (an SVD), W_fro, V_fro,
               WV_nuc = torch.linalg.matrix_norm(W V, ord='nuc')

Output per config NAME (both atomic): NAME.json (provenance, config, rows) and NAME.npz (the initial
state W, V, train_idx, test_idx and W_final, V_final). tests/test_torch_reference.py reads them.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import os
import platform
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import torch_reference as base  # noqa: E402  (one-hot inputs, activations, top eigenvalues)
from tianref import data, runs  # noqa: E402  (init_host and atomic writers only)
from tianref.backend import git_state  # noqa: E402

OUT_DIR = os.path.join(ROOT, "reference_results", "torch")

CONFIGS = {
    # ReLU, coupled Adam, weight decay switched off after 30 steps
    "ce_relu": dict(M=11, K=64, n_train=48, seed=0, act="relu", eta=1e-3, lr=1e-2, epochs=50,
                    optimizer="adam", eta_schedule=[[0, 1e-3], [30, 0.0]]),
    # x^2, decoupled decay, constant eta
    "ce_sqr_adamw": dict(M=11, K=64, n_train=48, seed=1, act="sqr", eta=0.5, lr=1e-2, epochs=50,
                         optimizer="adamw"),
}
COMMON = dict(beta1=0.9, beta2=0.999, eps=1e-8, windows=(20, 5), loss="ce", dtype="float64")


def eta_at(cfg, t):
    eta = cfg["eta"]
    for start, value in cfg.get("eta_schedule", []):
        if start <= t:
            eta = value
    return eta


def edge_split(torch, deltas, wd_parts, w):
    """(g2, wd2, cross) of the last min(len, w) updates, or None (< 2)."""
    if len(deltas) < 2:
        return None
    D = torch.stack(list(deltas)[-w:])                                        # (m, P)
    Dwd = torch.stack(list(wd_parts)[-w:])                                    # (m, P)
    _, U = torch.linalg.eigh(D @ D.T)
    u = U[:, -1]                                                              # (m,)
    a, b = (D - Dwd).T @ u, Dwd.T @ u                                         # (P,), (P,)
    return float(a @ a), float(b @ b), float(a @ b)


def clocks(torch, W, V):
    out = {}
    for name, X in (("W", W), ("V", V)):
        fro2 = float((X * X).sum())
        out[f"{name}_srank"] = fro2 / float(torch.linalg.matrix_norm(X, ord=2)) ** 2
        out[f"{name}_fro"] = fro2 ** 0.5
    out["WV_nuc"] = float(torch.linalg.matrix_norm(W @ V, ord="nuc"))
    return out


def run_config(torch, cfg):
    M, K, n_train, seed = cfg["M"], cfg["K"], cfg["n_train"], cfg["seed"]
    train_idx, test_idx, W0, V0 = data.init_host(M, K, n_train, seed)
    X_tr, y_tr = base.one_hot_inputs(torch, M, train_idx)
    X_te, y_te = base.one_hot_inputs(torch, M, test_idx)
    W = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))            # (2M, K)
    V = torch.nn.Parameter(torch.tensor(V0, dtype=torch.float64))            # (K, M)
    Opt = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg["optimizer"]]
    opt = Opt([W, V], lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
              weight_decay=eta_at(cfg, 0))
    ce = torch.nn.CrossEntropyLoss()
    b1, b2, lr, eps = cfg["beta1"], cfg["beta2"], cfg["lr"], cfg["eps"]

    def forward(X):
        return base.activation(torch, X @ W, cfg["act"]) @ V                 # (n, M)

    w_max = max(cfg["windows"])
    dq = {k: collections.deque(maxlen=w_max) for k in ("W", "V")}
    wdq = {k: collections.deque(maxlen=w_max) for k in ("W", "V")}
    m_wd = {"W": torch.zeros_like(W), "V": torch.zeros_like(V)}
    rows = []
    for t in range(cfg["epochs"] + 1):
        with torch.no_grad():
            Y_tr, Y_te = forward(X_tr), forward(X_te)
            row = {"epoch": t, "train_loss": float(ce(Y_tr, y_tr)), "test_loss": float(ce(Y_te, y_te)),
                   "train_acc": float((Y_tr.argmax(dim=1) == y_tr).double().mean()),
                   "test_acc": float((Y_te.argmax(dim=1) == y_te).double().mean())}
            for i, w in enumerate(cfg["windows"]):
                suffix = "" if i == 0 else f"_w{w}"
                for pname in ("W", "V"):
                    ev = base.top_eigs(torch, dq[pname], w)
                    if ev is not None:
                        row[f"{pname}_sigma{suffix}"] = ev
            for pname in ("W", "V"):
                split = edge_split(torch, dq[pname], wdq[pname], cfg["windows"][0])
                if split is not None:
                    row.update({f"{pname}_edge_{k}": v for k, v in zip(("g2", "wd2", "cross"), split)})
            row.update(clocks(torch, W, V))
        rows.append(row)
        if t == cfg["epochs"]:
            break
        eta = eta_at(cfg, t)
        for group in opt.param_groups:
            group["weight_decay"] = eta
        old = {"W": W.detach().clone(), "V": V.detach().clone()}
        opt.zero_grad(set_to_none=True)
        ce(forward(X_tr), y_tr).backward()
        opt.step()
        with torch.no_grad():
            for pname, p in (("W", W), ("V", V)):
                dq[pname].append((p.detach() - old[pname]).reshape(-1))
                if cfg["optimizer"] == "adamw":
                    wd = -lr * eta * old[pname]
                else:
                    step = opt.state[p]["step"]
                    step = int(step.item() if hasattr(step, "item") else step)
                    m_wd[pname] = b1 * m_wd[pname] + (1 - b1) * eta * old[pname]
                    denom = opt.state[p]["exp_avg_sq"].sqrt() / (1 - b2 ** step) ** 0.5 + eps
                    wd = -(lr / (1 - b1 ** step)) * m_wd[pname] / denom
                wdq[pname].append(wd.reshape(-1))

    arrays = {"W": W0, "V": V0, "train_idx": train_idx, "test_idx": test_idx,
              "W_final": W.detach().numpy().copy(), "V_final": V.detach().numpy().copy()}
    return rows, arrays


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=sorted(CONFIGS), help="write one config only")
    ap.add_argument("--out-dir", default=OUT_DIR)
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("torch is needed to regenerate the reference: pip install torch==2.13.0")
    torch.set_default_dtype(torch.float64)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    for name in ([args.only] if args.only else sorted(CONFIGS)):
        cfg = dict(CONFIGS[name], **COMMON)
        rows, arrays = run_config(torch, cfg)
        provenance = {
            "command": " ".join(["python", os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:]),
            "seed": cfg["seed"], "dtype": "float64", "backend": "torch (CPU, autograd, 1 thread)",
            "initial_state": "tianref.data.init_host(M, K, n_train, seed)",
            "versions": {"torch": torch.__version__, "numpy": np.__version__,
                         "python": platform.python_version()},
            "platform": platform.platform(),
            "tianref_commit": (git_state() or {}).get("commit"),
            "tianref_tree_dirty": (git_state() or {}).get("dirty"),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        doc = {"name": name, "provenance": provenance, "config": dict(cfg, windows=list(cfg["windows"])),
               "arrays": name + ".npz", "rows": rows}
        os.makedirs(args.out_dir, exist_ok=True)
        runs.save_npz(os.path.join(args.out_dir, name + ".npz"), arrays)
        runs.atomic_write_json(os.path.join(args.out_dir, name + ".json"), doc)
        last = rows[-1]
        print(f"{name}: {len(rows)} rows; train_loss {rows[0]['train_loss']:.6g} -> {last['train_loss']:.6g} "
              f"train_acc {last['train_acc']:.3f} test_acc {last['test_acc']:.3f}")


if __name__ == "__main__":
    main()
