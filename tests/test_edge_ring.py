"""The weight-decay ring of the edge split after the decay stops (tianref.edge.push with None).

With decoupled decay (AdamW) an --eta-schedule that switches the decay off at T makes every step
from T on push an exact zero (None) for Delta^wd. Once the window has moved past T (w steps later)
it holds no decay part at all, so wd2 and cross are exactly 0 and the split is all gradient. A ring
slot left holding the stale Delta^wd of an earlier step would keep wd2 > 0 for the rest of the run.
"""
from tianref import runs, train
from tianref.config import TrainConfig, validate

W = 3
SWITCH = 5


def test_decay_part_vanishes_once_the_window_passes_the_switch():
    cfg = validate(TrainConfig(M=7, K=16, n_train=25, epochs=14, windows=(W,), seed=1, lr=1e-2, eta=5e-3,
                               eta_schedule=((0, 5e-3), (SWITCH, 0.0)), optimizer="adamw",
                               metrics="core", dtype="float64"))
    sink = runs.MemorySink()
    train.run(cfg, __import__("numpy"), sink=sink)
    rows = {r["epoch"]: r for r in sink.rows}
    # row t holds the updates of steps t-w+1..t; steps 1..SWITCH carry decay (eta of rows 0..SWITCH-1)
    assert all(rows[t]["W_edge_wd2"] > 0 for t in range(2, SWITCH + 1))
    for t in range(SWITCH + W, cfg.epochs + 1):
        for name in ("W", "V"):
            assert rows[t][f"{name}_edge_wd2"] == 0.0 and rows[t][f"{name}_edge_cross"] == 0.0, (t, name)
            assert rows[t][f"{name}_edge_gfrac"] == 1.0


def test_ring_products_by_blocks_and_in_one_call_agree(monkeypatch):
    """backend.ring_products: the host's blocks (a float64 sum of ~1 MiB blocks) and a device's one call
    (taken here on the strict fake backend by naming it 'cupy') give ring @ vecs^T, float64 and float32
    rings, single and stacked, against numpy's own product in float64 (rtol 1e-12 / 1e-5)."""
    import numpy as np
    from tianref import backend
    from tianref.backend import get_xp
    fake = get_xp("fake")
    rng = np.random.default_rng(0)
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        for shape in ((20, 70001), (3, 5, 9000)):
            ring = rng.standard_normal(shape).astype(dtype)
            vecs = rng.standard_normal(shape[:-2] + (2, shape[-1])).astype(dtype)
            want = ring.astype(np.float64) @ vecs.astype(np.float64).swapaxes(-1, -2)
            host = backend.ring_products(np, ring, vecs)
            assert host.dtype == np.float64 and host.shape == want.shape
            np.testing.assert_allclose(host, want, rtol=rtol, atol=rtol * np.abs(want).max())
            with monkeypatch.context() as m:
                m.setattr(backend, "xp_name", lambda xp: "cupy")
                dev = backend.ring_products(fake, fake.asarray(ring), fake.asarray(vecs)).get()
            assert dev.dtype == np.float64
            np.testing.assert_allclose(dev, want, rtol=rtol, atol=rtol * np.abs(want).max())
