"""A stacked run's numbers do not depend on where its slice lies in memory.

NumPy's OpenBLAS is a DYNAMIC_ARCH build: OPENBLAS_CORETYPE picks the kernel set. The Prescott set (also
what a CPU that OpenBLAS does not recognise gets) sums a float64 dot in another order when its second
vector is 8 bytes off a 16-byte boundary, which is where every other row of a packed (S, N) float64 stack
with N odd starts. Each check runs in a child process under that kernel set; it is skipped where the
variable does not select an alignment-dependent dot (another BLAS build, or a fixed kernel).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PROBE = """
import json, numpy as np
rng = np.random.default_rng(0)
seen = False
for n in (5, 37, 128):
    x, y = rng.standard_normal(n), rng.standard_normal(n)
    off = np.empty(n + 1)[1:]; off[...] = y                   # y's values 8 bytes off a 16-byte boundary
    seen = seen or bool(x @ off != x @ y)
print(json.dumps({"sensitive": seen}))
"""

STACKED_DOT = """
import json, numpy as np
from tianref.backend import get_xp, stacked_dot
out = {}
for name in ("numpy", "fake"):
    xp = get_xp(name)
    rng = np.random.default_rng(1)
    bad = []
    for n in (3, 5, 7, 63, 65):
        x, y = rng.standard_normal((4, n)), rng.standard_normal((4, n))     # rows 1, 3 at 8 bytes off 16
        got = xp.asnumpy(stacked_dot(xp, xp.asarray(x), xp.asarray(y))) if name == "fake" else stacked_dot(xp, x, y)
        alone = [x[s].copy() @ y[s].copy() for s in range(4)]                # one run's fresh vectors
        bad += [(n, s) for s in range(4) if got[s] != alone[s]]
    out[name] = bad
print(json.dumps(out))
"""

BATCH = """
import json, sys
sys.path.insert(0, "tests")
from test_batch import _alone, _cfgs, _stacked
from tianref.backend import get_xp
xp = get_xp("numpy")
bad = []
for dtype in ("float64", "float32"):
    cfgs = _cfgs(n=3, dtype=dtype, epochs=12)
    for c, m in zip(cfgs, _stacked(cfgs, xp)):
        bad += [(dtype, c.seed, a["epoch"]) for a, b in zip(m.sink.rows, _alone(c, xp))
                if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True)]
print(json.dumps(bad))
"""


def _child(code: str):
    env = dict(os.environ, OPENBLAS_CORETYPE="Prescott", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def alignment_dependent_dot():
    if not _child(PROBE)["sensitive"]:
        pytest.skip("OPENBLAS_CORETYPE=Prescott does not select a dot that depends on alignment here")


def test_stacked_dot_gives_each_row_the_bits_of_its_own_fresh_vectors(alignment_dependent_dot):
    assert _child(STACKED_DOT) == {"numpy": [], "fake": []}


def test_a_stack_with_rows_off_the_16_byte_boundary_logs_the_rows_of_each_run_alone(alignment_dependent_dot):
    """The window's edge split (pwd2, pcross: dots of (S, m) stacks, m = 3 updates at epoch 3) of the
    middle run differed from its unbatched run's before the stack's rows were aligned."""
    assert _child(BATCH) == []
