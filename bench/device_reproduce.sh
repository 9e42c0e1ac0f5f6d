#!/usr/bin/env bash
# The full-scale reproduction on one GPU machine, from a clean clone of one commit, packed for the trip
# back: every section's stored outputs (summary.json, report.md, figures, provenance.json) and the run
# trees without checkpoints.
#
#   git bundle create .devbundle/repo.bundle HEAD          # on the source machine (provenance: that commit)
#   bash bench/device_reproduce.sh OUT_DIR STREAM...       # on the GPU machine
#
# A STREAM is BACKEND:JOBS:SECTION[,SECTION...], e.g. cupy:8:headline,eta  numpy:5:window. Streams run
# in parallel; the sections of one stream run in order, each with JOBS train processes (one BLAS thread
# each). Knobs (environment): PY (default python3), SCALE (default full; ci for a smoke test),
# DEADLINE_S (no section starts, and a running one is stopped, after this many seconds; default 480).
# A section stopped by the deadline keeps its finished runs (packed), but is not stored.
set -uo pipefail
OUT_DIR=$(realpath -m "${1:?usage: device_reproduce.sh OUT_DIR BACKEND:JOBS:SECTIONS...}"); shift
PY=${PY:-python3}; SCALE=${SCALE:-full}; DEADLINE_S=${DEADLINE_S:-480}
HERE=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/reproduce.log"; : >"$LOG"
T0=$(date +%s)
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
say() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a "$LOG" >&2; }

SRC=/tmp/tianref-src
if [ -f "$HERE/.devbundle/repo.bundle" ] && command -v git >/dev/null; then
  rm -rf "$SRC"; git clone -q "$HERE/.devbundle/repo.bundle" "$SRC" && say "clean clone of $(git -C "$SRC" rev-parse HEAD)"
else
  SRC=$HERE; say "no bundle: running from the working tree (provenance will say so)"
fi
cd "$SRC"
ROOT=/tmp/tianref-runs; STORE=/tmp/tianref-store; mkdir -p "$ROOT" "$STORE"

stream() {  # stream BACKEND JOBS SECTIONS
  local xp=$1 jobs=$2 s left
  for s in ${3//,/ }; do
    left=$(( DEADLINE_S - ($(date +%s) - T0) ))
    if [ "$left" -le 15 ]; then say "skip $s: deadline"; continue; fi
    say "== $s on $xp x$jobs (at most ${left}s)"
    timeout "$left" "$PY" cli.py reproduce --section "$s" --scale "$SCALE" --xp "$xp" --jobs "$jobs" \
        --root "$ROOT" --store --store-to "$STORE" >>"$OUT_DIR/reproduce_$s.log" 2>&1
    say "   $s exit $? ($(ls -d "$ROOT/$s"/*/ 2>/dev/null | grep -vc _logs) run folders)"
  done
}
for spec in "$@"; do
  IFS=: read -r xp jobs secs <<<"$spec"
  stream "$xp" "$jobs" "$secs" &
done
wait
say "packing"
tar -C "$STORE" -czf "$OUT_DIR/store.tar.gz" . 2>>"$LOG"
# run trees without checkpoints, in the order the sections were named, split into 15 MB parts
order=$(for spec in "$@"; do echo "${spec##*:}" | tr , '\n'; done | while read -r s; do [ -d "$ROOT/$s" ] && echo "$s"; done)
if [ -n "$order" ]; then
  tar -C "$ROOT" --exclude='*.npz' --exclude='checkpoints' -cf - $order 2>>"$LOG" | xz -T0 -6 \
    | split -b 15000000 -d -a 1 - "$OUT_DIR/runs.tar.xz.part"
  for p in "$OUT_DIR"/runs.tar.xz.part*; do
    case "$p" in *part[0-3]) ;; *) rm -f "$p"; say "   dropped $p (at most four parts come back)";; esac
  done
fi
for f in "$OUT_DIR"/reproduce_*.log; do [ -f "$f" ] && { echo "### $f"; tail -5 "$f"; } >>"$LOG"; done
rm -f "$OUT_DIR"/reproduce_*.log
ls -la "$OUT_DIR" | tee -a "$LOG" >&2
say "done"
