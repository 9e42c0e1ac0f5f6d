#!/usr/bin/env bash
# The one-command GPU check: install, real-CuPy tests, the stacked eigensolvers (bench/device_eigh.py),
# CuPy vs NumPy on the headline configuration,
# GPU vs CPU timings, the batched headline sweep against the unbatched one (bench/bench_batch.py), and a
# short report. About 7 minutes on one H100/H200 with 16 CPU cores (the batched step about 2).
#
#   bash bench/device_check.sh [OUT_DIR]          (default: device_check_out/)
#
# Knobs (environment): PY (interpreter, default python3), SWEEP_EPOCHS (epochs of each run in the
# 30-run sweep timings, default 100), GPU_JOBS (parallel train processes sharing the GPU, default 8),
# CPU_JOBS (default: nproc), CPU_THREADS (BLAS threads of the single NumPy runs, default: nproc), SKIP_CPU_SWEEP=1 (time the sweep on the GPU only), HEADLINE_EPOCHS
# (default 400), F64_EPOCHS (default 50), BATCH_EPOCHS (epochs of the batched-sweep benchmark, default 400),
# BATCH_ARGS (its sweep's size, default the headline: "--M 71 --K 2048 --train-frac 0.4 --eta 2e-4,0
# --seeds 0-14"), SKIP_INSTALL=1 (leave an existing install alone), EXTRA (train options added to the single runs, e.g. a
# small "--M 11 --K 64" for a smoke test), SWEEP_EXTRA (added to the 30-run sweeps), XP (the device backend, default cupy).
# Without a GPU, `XP=fake SKIP_INSTALL=1 EXTRA="--M 11 --K 64" SWEEP_EXTRA="--M 11 --K 64"
# BATCH_ARGS="--M 11 --K 64 --seeds 0-3 --eta 2e-3,0" bash bench/device_check.sh` exercises the whole script
# through the strict fake backend (the sweeps do not take EXTRA); see bench/README.md.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-device_check_out}
PY=${PY:-python3}
SWEEP_EPOCHS=${SWEEP_EPOCHS:-100}
GPU_JOBS=${GPU_JOBS:-8}
CPU_JOBS=${CPU_JOBS:-$(nproc)}
CPU_THREADS=${CPU_THREADS:-$(nproc)}
XP=${XP:-cupy}
HEADLINE_EPOCHS=${HEADLINE_EPOCHS:-400}
F64_EPOCHS=${F64_EPOCHS:-50}
EXTRA=${EXTRA:-}
BATCH_EPOCHS=${BATCH_EPOCHS:-400}
BATCH_ARGS=${BATCH_ARGS:---M 71 --K 2048 --train-frac 0.4 --eta 2e-4,0 --seeds 0-14}
SWEEP_EXTRA=${SWEEP_EXTRA:-}
mkdir -p "$OUT_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tianref-devcheck.XXXXXX")
REPORT="$OUT_DIR/device_check_report.md"
LOG="$OUT_DIR/device_check.log"
: >"$LOG"
export MPLBACKEND=Agg PYTHONUNBUFFERED=1

say() { echo "$*" | tee -a "$LOG" >&2; }
now() { date +%s.%N; }
elapsed() { "$PY" -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }
step() {  # step NAME TIMEOUT CMD... : run, log, record seconds and status
  local name=$1 limit=$2; shift 2
  say "== $name: $*"
  local t0; t0=$(now)
  timeout "$limit" "$@" >>"$LOG" 2>&1
  local rc=$?
  local t1; t1=$(now)
  local s; s=$(elapsed "$t0" "$t1")
  say "   -> exit $rc in ${s} s"
  echo "$name|$rc|$s" >>"$WORK/steps"
  return $rc
}

say "tianref device check, $(date -u +%FT%TZ), out: $OUT_DIR, work: $WORK"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"; } >"$WORK/gpu"
"$PY" - >"$WORK/env" 2>&1 <<'PYEOF'
import platform, numpy
print("python", platform.python_version(), "numpy", numpy.__version__)
try:
    import cupy
    print("cupy", cupy.__version__, "device", cupy.cuda.runtime.getDeviceProperties(0)["name"].decode())
except Exception as exc:  # reported, not fatal: the script says which steps could not run
    print("cupy unavailable:", exc)
PYEOF
cat "$WORK/gpu" "$WORK/env" | tee -a "$LOG" >&2

# 1. install the gpu extra; on a machine without a package index but with CuPy already present,
#    install the project alone (its other dependencies are checked by importing them).
if [ "${SKIP_INSTALL:-0}" = 1 ]; then
  say "== install: skipped (SKIP_INSTALL=1)"
elif "$PY" -c "import cupy" 2>/dev/null; then
  step install 300 "$PY" -m pip install -q --no-deps --no-build-isolation -e . || say "   (editable install failed; running from the checkout)"
else
  step install 600 "$PY" -m pip install -q -e ".[gpu]" || say "   (gpu extra not installable here)"
fi
"$PY" -c "import numpy, scipy, click, matplotlib" || { say "missing a dependency (numpy scipy click matplotlib)"; exit 1; }

# 2. the real-CuPy tests (skipped on machines without a GPU)
step cupy_tests 240 "$PY" -m pytest -q -p no:cacheprovider -m cupy tests
grep -E "passed|failed|error|skipped|deselected|no tests ran" "$LOG" | tail -1 >"$WORK/cupy_tests"

# 2b. the device's eigensolvers on 2-D matrices and on stacks (a batch's Grams) against NumPy's, n up to 142
step eigh 300 "$PY" bench/device_eigh.py --xp "$XP" --json "$OUT_DIR/device_eigh.json"

# 3. CuPy vs NumPy, float64, 50 epochs of the headline configuration (full metrics)
T="$PY cli.py train --epochs $F64_EPOCHS --dtype float64 --no-resume-state $EXTRA"
step np64 300 $T --xp numpy --threads "$CPU_THREADS" --out "$WORK/np64"
step cp64 300 $T --xp "$XP" --out "$WORK/cp64"
"$PY" bench/device_compare.py "$WORK/np64" "$WORK/cp64" --json "$OUT_DIR/compare_float64.json" >"$WORK/cmp64" 2>&1

# 4. float32, 400 epochs: the headline run, timed on each backend; fire epoch and t0.5 compared
T="$PY cli.py train --epochs $HEADLINE_EPOCHS --dtype float32 --no-resume-state $EXTRA"
step headline_cpu 600 $T --xp numpy --threads "$CPU_THREADS" --out "$WORK/np32"
step headline_gpu 600 $T --xp "$XP" --out "$WORK/cp32"
"$PY" bench/device_compare.py "$WORK/np32" "$WORK/cp32" --json "$OUT_DIR/compare_float32.json" >"$WORK/cmp32" 2>&1

# 5. a 30-run headline sweep (eta in {2e-4, 0} x seeds 0-14), SWEEP_EPOCHS epochs each
S="$PY cli.py sweep --epochs $SWEEP_EPOCHS --seeds 0-14 --eta 2e-4,0 $SWEEP_EXTRA"
step sweep_gpu 900 $S --xp "$XP" --jobs "$GPU_JOBS" "$WORK/sweep_gpu"
if [ "${SKIP_CPU_SWEEP:-0}" != 1 ]; then
  step sweep_cpu 900 $S --xp numpy --jobs "$CPU_JOBS" "$WORK/sweep_cpu"
fi

# 6. the headline sweep batched (one stacked process, sweep --batch) against the unbatched one with
#    GPU_JOBS processes, side by side (bench/bench_batch.py: the ratio and rows compared)
step batch_gpu 1200 "$PY" bench/bench_batch.py --xp "$XP" $BATCH_ARGS --epochs "$BATCH_EPOCHS" \
  --batch-jobs 1 --jobs "$GPU_JOBS" --repeats 1 --json "$OUT_DIR/bench_batch.json"

# 7. the report
"$PY" - "$WORK" "$REPORT" "$SWEEP_EPOCHS" "$GPU_JOBS" "$CPU_JOBS" "$F64_EPOCHS" "$HEADLINE_EPOCHS" "$EXTRA" "$CPU_THREADS" <<'PYEOF'
import json, sys
from pathlib import Path
work, report, ep, gj, cj, f64, hl, extra, ct = Path(sys.argv[1]), Path(sys.argv[2]), *sys.argv[3:10]
steps = {}
for line in (work / "steps").read_text().splitlines():
    name, rc, s = line.split("|")
    steps[name] = (int(rc), float(s))
def t(name):
    rc, s = steps.get(name, (None, float("nan")))
    return f"{s:.1f} s" + ("" if rc == 0 else f" (exit {rc})")
def ratio(a, b):
    ra, rb = steps.get(a), steps.get(b)
    if not ra or not rb or ra[0] or rb[0]:
        return "n/a"
    return f"{ra[1] / rb[1]:.2f}x"
def cmp(name):
    p = report.parent / name
    return json.loads(p.read_text()) if p.is_file() else None
L = ["# tianref device check", "", "```", (work / "gpu").read_text().strip(), (work / "env").read_text().strip(), "```", ""]
L += ["## Real-CuPy tests", "", f"`pytest -m cupy`: {(work / 'cupy_tests').read_text().strip() or 'no summary line'} ({t('cupy_tests')})", ""]
for name, title in (("compare_float64.json", f"CuPy vs NumPy, float64, {f64} epochs"),
                    ("compare_float32.json", f"CuPy vs NumPy, float32, {hl} epochs")):
    c = cmp(name)
    L += [f"## {title}", ""]
    if c is None:
        L += ["(no comparison: a run failed; see device_check.log)", ""]
        continue
    d = c["max_rel_diff"]
    worst = sorted(((v, k) for k, v in d.items() if v == v), reverse=True)[:6]
    L += ["| key | largest relative difference over the rows |", "|---|---|"]
    L += [f"| {k} | {v:.2e} |" for v, k in worst]
    if "float32" in name:
        L += ["", "Per-row float32 differences of σ₂/σ₃ are expected (σ₃ is ~1e-3 of σ₁, so float32 rounding",
              "of the Gram moves it by tens of percent); the criterion is the event epochs below."]
    ea, eb = c["events_a"], c["events_b"]
    L += ["", "| | NumPy | CuPy |", "|---|---|---|"]
    for k in ("t05", "t099", "slope_fire", "final_test_acc", "final_train_loss"):
        L.append(f"| {k} | {ea[k]} | {eb[k]} |")
    L.append("")
L += ["## Timings (wall clock, this machine)", "",
      "| what | GPU (CuPy) | CPU (NumPy) | CPU / GPU |", "|---|---|---|---|",
      f"| headline run{(' ' + extra) if extra else ''}, {hl} epochs, float32, full metrics | {t('headline_gpu')} | {t('headline_cpu')} | {ratio('headline_cpu', 'headline_gpu')} |",
      f"| 30-run headline sweep, {ep} epochs each (GPU: {gj} processes; CPU: {cj}, one BLAS thread each) | {t('sweep_gpu')} | {t('sweep_cpu')} | {ratio('sweep_cpu', 'sweep_gpu')} |",
      "", f"The CPU headline run uses {ct} BLAS threads (`train --threads {ct}`; CPU_THREADS, default nproc).", ""]
e = cmp("device_eigh.json")
L += ["## Eigensolvers, 2-D and stacked, against NumPy (bench/device_eigh.py)", ""]
if e is None:
    L += ["(no result: see device_check.log)", ""]
else:
    L += ["| n | rank-deficient | layout | S | ev_rel | res_rel | orth |", "|---|---|---|---|---|---|---|"]
    L += [f"| {r['n']} | {r['rank_deficient']} | {r['layout']} | {r['S']} | {r['ev_rel']:.1e} | {r['res_rel']:.1e} | "
          f"{r['orth']:.1e} |" for r in e["rows"]]
    L += ["", "Verdict: " + ("every case within 1e-10." if not e["bad"] else "ABOVE 1e-10: " + "; ".join(e["bad"])
          + ". A batch's stacked eigensolves are then not to be trusted at those sizes."), ""]
b = cmp("bench_batch.json")
L += ["## Batched sweep (bench/bench_batch.py)", ""]
if b is None:
    L += ["(no result: see device_check.log)", ""]
else:
    L += [f"{b['runs']} runs x {b['epochs']} epochs, M = {b['M']}, K = {b['K']}, --metrics {b['metrics']}, --xp {b['xp']}:",
          f"batched in {b['batch_jobs']} process(es): {b['batched_s']} s; unbatched with {b['unbatched_jobs']} "
          f"processes: {b['unbatched_s']} s; throughput ratio {b['ratio']}x; rows byte-identical: "
          f"{b['rows_identical']}; same t0.5/t0.99: {b.get('events_identical')}.", ""]
report.write_text("\n".join(L) + "\n")
print(report.read_text())
PYEOF
rm -rf "$WORK"
