"""An independent PyTorch float64 trajectory of a non-abelian group task, stored as a reference for the tests.

    python scripts/torch_reference_group.py    # writes reference_results/torch/group_a4.{json,npz}

It trains  Yhat = sigma(X W) V  on A_4 (|H| = 12, Tian's task: given h1, h2 predict h1 h2) by a route
that shares nothing with tianref's math:

    table  (M, M) A_4's Cayley table, T[a, b] = a.b (tianref.groups, stored in the .npz: the task's data)
    X      (n, 2M)  the two one-hot vectors of (a, b), materialised in float64 from the pair index
           i = a M + b;  y = T[a, b] looked up in the table      (tianref gathers rows of W, data.pairs)
    loss   the paper code's class-centred MSE, (1/n) sum_i [||z_i||^2 - 2 z_{i,y_i} + (1 - 1/M)]
    grads  torch autograd;  step  torch.optim.Adam(lr, weight_decay=eta): coupled L2
    order  for t = 0..E: evaluate and record row t, then step (no step after row E)

Shared with tianref: the initial state (``tianref.data.init_host``), the table (``tianref.groups``), the
atomic writers.

Output, both written atomically:
    reference_results/torch/group_a4.json   provenance, config (with group = "A4"), one row per epoch:
        epoch, train_loss, test_loss, train_acc, test_acc; arrays_sha256 of the .npz
    reference_results/torch/group_a4.npz    W, V, train_idx, test_idx (the initial state), table,
        W_<t>, V_<t> for t in SNAPSHOTS (after t steps; t = 50 is the final state)

tests/test_torch_reference_group.py reads these files only (torch is not imported there).
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

from tianref import data, groups, runs  # noqa: E402  (init_host, the table, atomic writers only)
from tianref.backend import git_state  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "scripts"))
from torch_reference import paper_loss, sha256_file  # noqa: E402  (the loss formula, the file hash)

OUT_DIR = os.path.join(ROOT, "reference_results", "torch")
NAME = "group_a4"
# Half of the 144 pairs, K = 48, a large lr: train accuracy moves from chance to 1 in 50 steps.
CONFIG = dict(group="A4", M=12, K=48, n_train=72, seed=0, act="sqr", eta=1e-3, lr=1e-2, epochs=50,
              beta1=0.9, beta2=0.999, eps=1e-8, loss="tian", optimizer="adam", dtype="float64")
SNAPSHOTS = (10, 25, 50)


def one_hot_inputs(torch, table, idx):
    """X (n, 2M) float64 and labels y (n,) for the pair indices idx: X_i = [e_a, e_b], y_i = T[a, b]."""
    M = table.shape[0]
    idx = torch.as_tensor(idx, dtype=torch.int64)
    a, b = idx // M, idx % M
    X = torch.cat([torch.nn.functional.one_hot(a, M), torch.nn.functional.one_hot(b, M)], dim=1)
    return X.to(torch.float64), torch.as_tensor(table, dtype=torch.int64)[a, b]   # (n, 2M), (n,)


def run(torch, cfg):
    M, K = cfg["M"], cfg["K"]
    table = groups.parse_group(cfg["group"], M).table                        # (M, M)
    train_idx, test_idx, W0, V0 = data.init_host(M, K, cfg["n_train"], cfg["seed"])
    X_tr, y_tr = one_hot_inputs(torch, table, train_idx)
    X_te, y_te = one_hot_inputs(torch, table, test_idx)
    W = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))            # (2M, K)
    V = torch.nn.Parameter(torch.tensor(V0, dtype=torch.float64))            # (K, M)
    opt = torch.optim.Adam([W, V], lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
                           weight_decay=cfg["eta"])

    def forward(X):
        return (X @ W).pow(2) @ V                                             # (n, M)

    rows, snaps = [], {}
    for t in range(cfg["epochs"] + 1):
        with torch.no_grad():
            Y_tr, Y_te = forward(X_tr), forward(X_te)
            rows.append({"epoch": t,
                         "train_loss": float(paper_loss(torch, Y_tr, y_tr, M)),
                         "test_loss": float(paper_loss(torch, Y_te, y_te, M)),
                         "train_acc": float((Y_tr.argmax(dim=1) == y_tr).double().mean()),
                         "test_acc": float((Y_te.argmax(dim=1) == y_te).double().mean())})
            if t in SNAPSHOTS:
                snaps[f"W_{t}"] = W.detach().numpy().copy()
                snaps[f"V_{t}"] = V.detach().numpy().copy()
        if t == cfg["epochs"]:
            break
        opt.zero_grad(set_to_none=True)
        paper_loss(torch, forward(X_tr), y_tr, M).backward()
        opt.step()
    arrays = dict({"W": W0, "V": V0, "train_idx": train_idx, "test_idx": test_idx, "table": table}, **snaps)
    return rows, arrays


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=OUT_DIR)
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("torch is needed to regenerate the reference: pip install torch")
    torch.set_default_dtype(torch.float64)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)          # a fixed reduction order, independent of the machine's cores
    rows, arrays = run(torch, CONFIG)
    provenance = {
        "command": " ".join(["python", os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:]),
        "seed": CONFIG["seed"], "dtype": "float64", "backend": "torch (CPU, autograd, 1 thread)",
        "initial_state": "tianref.data.init_host(M, K, n_train, seed)",
        "table": "tianref.groups.parse_group('A4').table, stored as 'table'",
        "versions": {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "platform": platform.platform(), "git": git_state(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    doc = {"name": NAME, "provenance": provenance, "config": CONFIG, "snapshots": list(SNAPSHOTS),
           "arrays": NAME + ".npz", "rows": rows}
    os.makedirs(args.out_dir, exist_ok=True)
    runs.save_npz(os.path.join(args.out_dir, NAME + ".npz"), arrays)
    doc["arrays_sha256"] = sha256_file(os.path.join(args.out_dir, NAME + ".npz"))
    runs.atomic_write_json(os.path.join(args.out_dir, NAME + ".json"), doc)
    last = rows[-1]
    print(f"{NAME}: {len(rows)} rows; train_acc {rows[0]['train_acc']:.3f} -> {last['train_acc']:.3f}, "
          f"test_acc {last['test_acc']:.3f}, train_loss {rows[0]['train_loss']:.4g} -> {last['train_loss']:.4g}")


if __name__ == "__main__":
    main()
