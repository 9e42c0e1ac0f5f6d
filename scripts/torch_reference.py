"""An independent PyTorch implementation of the training run, stored as a reference for the tests.

    pip install torch==2.13.0              # a CPU wheel; torch is NOT a dependency of tianref
    python scripts/torch_reference.py      # writes reference_results/torch/{sqr,relu}.{json,npz}

It trains  Yhat = sigma(X W) V  on modular addition with the paper code's protocol
(docs/paper-protocol.md §3) by a route that shares nothing with tianref's math:

    X      (n, 2M)  the two one-hot vectors, materialised in float64   (tianref gathers rows of W)
    W      (2M, K)  a torch parameter;  V (K, M) a torch parameter       (the paper's orientation)
    loss   the code's form  (1/n) sum_i [ ||z_i||^2 - 2 z_{i,y_i} + (1 - 1/M) ],
           z_i = yhat_i - mean_c yhat_ic   (class-centred MSE, mean over samples, no 1/2)
    grads  torch autograd                                                  (tianref: hand-written)
    step   torch.optim.Adam(lr, weight_decay=eta): coupled L2            (tianref: optim.adam_update)
    order  for t = 0..E: evaluate and record row t, then step (no step after row E)
    spectra  at row t, D = the last min(t, w) updates Delta_s = W_s - W_{s-1} (flattened, float64),
           top-5 eigenvalues of D D^T by torch.linalg.eigvalsh; rows with fewer than 2 updates have
           none (the code's convention). Recomputed from a deque, not updated incrementally.

Only the shared initial state comes from tianref: ``tianref.data.init_host(M, K, n_train, seed)``
(split and U(+-1/sqrt(fan_in)) weights drawn from numpy's PCG64), plus the atomic file writers.

Output per config NAME, both written atomically:
    reference_results/torch/NAME.json   provenance, config, one row per epoch:
        epoch, train_loss, test_loss, train_acc, test_acc,
        W_sigma / V_sigma (window 20), W_sigma_w5 / V_sigma_w5 (window 5),
        and arrays_sha256, the SHA-256 of NAME.npz (so that a .json is never read with another .npz)
    reference_results/torch/NAME.npz    W, V, train_idx, test_idx (the initial state; valid
        ``cli.py train --init-from`` input), W_final, V_final (after E steps)

tests/test_torch_reference.py reads these files only (torch is not imported there).
"""
from __future__ import annotations

import argparse
import collections
import datetime
import hashlib
import os
import platform
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tianref import data, runs  # noqa: E402  (init_host and atomic writers only)
from tianref.backend import git_state  # noqa: E402

OUT_DIR = os.path.join(ROOT, "reference_results", "torch")

# Two small configs in which the parameters move a lot in 50 steps (train accuracy 0.1 -> 1.0).
CONFIGS = {
    "sqr": dict(M=11, K=64, n_train=48, seed=0, act="sqr", eta=1e-3, lr=1e-2, epochs=50),
    "relu": dict(M=11, K=64, n_train=48, seed=0, act="relu", eta=2e-4, lr=1e-2, epochs=50),
}
COMMON = dict(beta1=0.9, beta2=0.999, eps=1e-8, windows=(20, 5), loss="tian", optimizer="adam",
              dtype="float64")
N_TOP = 5


def one_hot_inputs(torch, M, idx):
    """X (n, 2M) float64 and labels y (n,) for the table rows idx: X_i = [e_a, e_b], y = (a+b) mod M."""
    idx = torch.as_tensor(idx, dtype=torch.int64)
    a, b = idx // M, idx % M
    X = torch.cat([torch.nn.functional.one_hot(a, M), torch.nn.functional.one_hot(b, M)], dim=1)
    return X.to(torch.float64), (a + b) % M                                   # (n, 2M), (n,)


def activation(torch, H, act):
    if act == "sqr":
        return H.pow(2)
    if act == "relu":
        return torch.relu(H)
    raise ValueError(act)


def paper_loss(torch, Yhat, y, M):
    """(1/n) sum_i [||z_i||^2 - 2 z_{i,y_i} + (1 - 1/M)],  z = class-centred Yhat."""
    z = Yhat - Yhat.mean(dim=1, keepdim=True)                                 # (n, M)
    per_sample = z.pow(2).sum(dim=1) - 2 * z.gather(1, y[:, None])[:, 0] + (1 - 1 / M)
    return per_sample.mean()


def top_eigs(torch, deltas, w):
    """Top-5 eigenvalues (descending) of the Gram of the last min(len, w) updates, or None (< 2)."""
    last = list(deltas)[-w:]
    if len(last) < 2:
        return None
    D = torch.stack(last)                                                     # (m, P)
    ev = torch.linalg.eigvalsh(D @ D.T)                                       # ascending, (m,)
    return [float(x) for x in ev.flip(0)[:N_TOP]]


def run_config(torch, name, cfg):
    M, K, n_train, seed = cfg["M"], cfg["K"], cfg["n_train"], cfg["seed"]
    train_idx, test_idx, W0, V0 = data.init_host(M, K, n_train, seed)        # the shared initial state
    X_tr, y_tr = one_hot_inputs(torch, M, train_idx)
    X_te, y_te = one_hot_inputs(torch, M, test_idx)
    W = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))            # (2M, K)
    V = torch.nn.Parameter(torch.tensor(V0, dtype=torch.float64))            # (K, M)
    opt = torch.optim.Adam([W, V], lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
                           weight_decay=cfg["eta"])

    def forward(X):
        return activation(torch, X @ W, cfg["act"]) @ V                       # (n, M)

    w_max = max(cfg["windows"])
    dW, dV = collections.deque(maxlen=w_max), collections.deque(maxlen=w_max)
    rows = []
    for t in range(cfg["epochs"] + 1):
        with torch.no_grad():                                                 # row t: params after t steps
            Y_tr, Y_te = forward(X_tr), forward(X_te)
            row = {"epoch": t,
                   "train_loss": float(paper_loss(torch, Y_tr, y_tr, M)),
                   "test_loss": float(paper_loss(torch, Y_te, y_te, M)),
                   "train_acc": float((Y_tr.argmax(dim=1) == y_tr).double().mean()),
                   "test_acc": float((Y_te.argmax(dim=1) == y_te).double().mean())}
            for i, w in enumerate(cfg["windows"]):
                suffix = "" if i == 0 else f"_w{w}"
                for pname, dq in (("W", dW), ("V", dV)):
                    ev = top_eigs(torch, dq, w)
                    if ev is not None:
                        row[f"{pname}_sigma{suffix}"] = ev
        rows.append(row)
        if t == cfg["epochs"]:
            break
        W_old, V_old = W.detach().clone(), V.detach().clone()
        opt.zero_grad(set_to_none=True)
        paper_loss(torch, forward(X_tr), y_tr, M).backward()
        opt.step()
        dW.append((W.detach() - W_old).reshape(-1))                          # (2MK,)
        dV.append((V.detach() - V_old).reshape(-1))                          # (KM,)

    arrays = {"W": W0, "V": V0, "train_idx": train_idx, "test_idx": test_idx,
              "W_final": W.detach().numpy().copy(), "V_final": V.detach().numpy().copy()}
    return rows, arrays


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes (tests/test_torch_reference.py checks the .npz against it)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
    torch.set_num_threads(1)          # a fixed reduction order, independent of the machine's cores

    for name in ([args.only] if args.only else sorted(CONFIGS)):
        cfg = dict(CONFIGS[name], **COMMON)
        rows, arrays = run_config(torch, name, cfg)
        provenance = {
            "command": " ".join(["python", os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:]),
            "seed": cfg["seed"], "dtype": "float64", "backend": "torch (CPU, autograd, 1 thread)",
            "initial_state": "tianref.data.init_host(M, K, n_train, seed)",
            "versions": {"torch": torch.__version__, "numpy": np.__version__,
                         "python": platform.python_version()},
            "platform": platform.platform(),
            "git": git_state(),       # {'commit', 'dirty'}: dirty = uncommitted changes to tracked files
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        doc = {"name": name, "provenance": provenance,
               "config": dict(cfg, windows=list(cfg["windows"])),
               "arrays": os.path.basename(name + ".npz"), "rows": rows}
        os.makedirs(args.out_dir, exist_ok=True)
        runs.save_npz(os.path.join(args.out_dir, name + ".npz"), arrays)
        doc["arrays_sha256"] = sha256_file(os.path.join(args.out_dir, name + ".npz"))   # ties the pair
        runs.atomic_write_json(os.path.join(args.out_dir, name + ".json"), doc)
        last = rows[-1]
        print(f"{name}: {len(rows)} rows; final train_loss {last['train_loss']:.6g} "
              f"train_acc {last['train_acc']:.3f} test_acc {last['test_acc']:.3f} -> "
              f"{os.path.relpath(os.path.join(args.out_dir, name + '.json'), ROOT)}")


if __name__ == "__main__":
    main()
