#!/usr/bin/env bash
# Benchmarks for the Kubernetes-style control plane (issue 7):
#   idle    resident memory of an idle `strata serve` (target under 50 MiB)
#   bind    `cargo bench -p strata-kube --bench bind_api`: N hostPath PVs,
#           then N claims created through the API until all are Bound
#           (target: 10,000 pairs in under 10 s end to end), and stock
#           kubectl listing 10,000 claims (target under 1 s)
#   binder  `cargo bench -p strata-kube --bench binder`, if it exists: the
#           binder alone, no API (target: 10,000 pairs in under 1 s)
# No kube-apiserver runs here, so the binding times are compared with
# upstream's published medians (reference section 3, kubernetes issue
# 133352: 38 s for 1,000 static pairs, 453 s for 10,000) as ratios.
#
# Usage: bench/kube.sh   (as root; ~5 min, more on a busy machine)
# Knobs: BIND_API_SIZES=1000,10000,50000  IDLE_SECONDS=5  BENCH_SETTLE=30
#        STRATA=$(scripts/built)  BENCH_OUT=bench/out
set -euo pipefail
# The stores here are small; half a minute lets the disk finish discarding
# what an earlier run deleted.
BENCH_SETTLE=${BENCH_SETTLE:-30}
source "$(dirname "${BASH_SOURCE[0]}")/peers.sh"
cd "$BENCH_DIR/.."  # repo root, for cargo

IDLE_SECONDS=${IDLE_SECONDS:-5}
STRATA=$(realpath -m "${STRATA:-$(scripts/built)}")
OUT=$(realpath -m "${BENCH_OUT:-bench/out}")
W=$BENCH_ROOT/kube
mkdir -p "$OUT"
summary=$OUT/kube-summary.md
echo "# strata control plane benchmark $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)" > "$summary"

echo "== cargo build --release -p strata"
cargo build --release -p strata
[ -x "$STRATA" ] || { echo "no strata binary at $STRATA; set STRATA=" >&2; exit 1; }

# --- idle: a fresh store, one real kubectl request, then nothing.
bench_rm "$W"
mkdir -p "$W"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDRESS=127.0.0.1:$PORT
"$STRATA" --root "$W/root" serve --address "$ADDRESS" --node-name bench > "$W/serve.log" 2>&1 &
SERVE=$!
trap 'kill "$SERVE" 2>/dev/null || true' EXIT
# Any HTTP answer (401 without the token) means it is serving.
for i in $(seq 300); do
  curl -sk -o /dev/null "https://$ADDRESS/healthz" && break
  kill -0 "$SERVE" 2>/dev/null || { echo "strata serve exited; see $W/serve.log" >&2; exit 1; }
  sleep 0.1
done
"$STRATA" --root "$W/root" kubeconfig --address "$ADDRESS" > "$W/kubeconfig"
kubectl --kubeconfig "$W/kubeconfig" --cache-dir "$W/kubectl-cache" get --raw /api/v1/persistentvolumes > /dev/null
sleep "$IDLE_SECONDS"
memory() { awk -v f="$1:" '$1 == f {printf "%.1f", $2 / 1024}' "/proc/$SERVE/status"; }
idle=$(memory VmRSS)
peak=$(memory VmHWM)
kill -TERM "$SERVE"
status=0
wait "$SERVE" || status=$?
trap - EXIT
[ "$status" = 0 ] || { echo "strata serve exited with $status on SIGTERM; see $W/serve.log" >&2; exit 1; }
verdict=$(awk -v m="$idle" 'BEGIN {print (m < 50 ? "met" : "MISSED")}')
echo "idle strata serve: VmRSS $idle MiB (peak $peak MiB) after ${IDLE_SECONDS}s; target under 50 MiB: $verdict" |
  tee -a "$summary"

# --- bind: the in-process benchmark makes its own fresh stores in /var/tmp.
bench_rm "$W"
bench_settle
echo "== cargo bench -p strata-kube --bench bind_api (BIND_API_SIZES=${BIND_API_SIZES:-default})"
cargo bench -p strata-kube --bench bind_api 2>&1 | tee "$OUT/kube-bind_api.txt"

# Upstream over Strata, from bind_api's summary rows
# (| pairs | PV creates/s | claims created | all Bound | ...).
python3 - "$OUT/kube-bind_api.txt" <<'PY' | tee -a "$summary"
import sys
upstream = {1000: 38.0, 10000: 453.0}  # p50, seconds (reference section 3)
print("\n| pairs | strata, all Bound | upstream p50 | upstream / strata |")
print("|---:|---:|---:|---:|")
for line in open(sys.argv[1]):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) < 4 or not cells[0].isdigit():
        continue
    pairs, bound = int(cells[0]), float(cells[3].split()[0])
    theirs = upstream.get(pairs)
    ratio = f"{theirs / bound:.0f}x" if theirs else "-"
    print(f"| {pairs} | {bound:.2f} s | {f'{theirs:.0f} s' if theirs else '-'} | {ratio} |")
PY
grep -E '^  (kubectl get|target)' "$OUT/kube-bind_api.txt" >> "$summary" || true

# --- binder: the binder alone, when that benchmark exists.
if [ -f crates/strata-kube/benches/binder.rs ]; then
  echo "== cargo bench -p strata-kube --bench binder"
  cargo bench -p strata-kube --bench binder 2>&1 | tee "$OUT/kube-binder.txt"
  grep -E '^[a-z_/0-9 ]+$|time:' "$OUT/kube-binder.txt" >> "$summary" || true
fi
echo "Results: $summary, $OUT/kube-*.txt"
