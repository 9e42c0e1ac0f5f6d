#!/usr/bin/env bash
# The full-scale reproduction on one GPU machine, from a clean clone of one commit, packed for the trip
# back: every section's stored outputs (summary.json, report.md, figures, provenance.json) and the run
# trees without checkpoints.
#
#   git bundle create .devbundle/repo.bundle HEAD      # on the source machine (provenance: that commit)
#   bash bench/device_reproduce.sh OUT_DIR SECTION...  # on the GPU machine
#
# Knobs (environment): PY (default python3), JOBS (train processes sharing the GPU, default 12), XP
# (default cupy), SCALE (default full; ci for a smoke test), DEADLINE_S (stop starting sections after this many seconds, default 480), RESERVE_S
# (seconds kept for packing, default 45). Sections run in the order given; one that would outlast
# the deadline is stopped, and its finished runs are still packed.
set -uo pipefail
OUT_DIR=$(realpath -m "${1:?usage: device_reproduce.sh OUT_DIR SECTION...}"); shift
PY=${PY:-python3}; JOBS=${JOBS:-12}; XP=${XP:-cupy}; SCALE=${SCALE:-full}
DEADLINE_S=${DEADLINE_S:-480}; RESERVE_S=${RESERVE_S:-45}
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
ROOT=/tmp/tianref-runs; STORE="$OUT_DIR/store"; mkdir -p "$ROOT" "$STORE"
for S in "$@"; do
  left=$(( DEADLINE_S - ($(date +%s) - T0) ))
  if [ "$left" -le 20 ]; then say "skip $S: deadline"; continue; fi
  say "== $S (at most ${left}s)"
  timeout "$left" "$PY" cli.py reproduce --section "$S" --scale "$SCALE" --xp "$XP" --jobs "$JOBS" \
      --root "$ROOT" --store --store-to "$STORE" >>"$LOG" 2>&1
  say "   $S exit $?"
done
say "packing"
tar -C "$STORE" -czf "$OUT_DIR/store.tar.gz" . 2>>"$LOG"
n=0
for d in "$ROOT"/*/; do
  s=$(basename "$d"); n=$((n + 1))
  tar -C "$ROOT" --exclude='*.npz' --exclude='checkpoints' -cJf "$OUT_DIR/runs_$s.tar.xz" "$s" 2>>"$LOG"
  sz=$(stat -c %s "$OUT_DIR/runs_$s.tar.xz")
  if [ "$sz" -gt 16000000 ] || [ "$n" -gt 6 ]; then rm -f "$OUT_DIR/runs_$s.tar.xz"; say "   runs_$s not kept ($sz bytes or too many files)"; fi
done
rm -rf "$STORE"
ls -la "$OUT_DIR" | tee -a "$LOG" >&2
say "done"
