#!/usr/bin/env bash
# Whole-command benchmarks for volume drivers, side by side in one hyperfine
# invocation: one volume's life (create, first mount by a container that
# runs `true`, unmount, rm) through
#   strata-plain    strata's local driver
#   strata-sized    strata's local driver with size=100M (ext4 image, mkfs)
#   strata-plugin   strata with its volume behind `strata plugin serve`
#   docker-local    Docker's own local driver
#   docker-strata   Docker with Strata as its volume plugin (size=100M)
# Every line includes a container run, so compare them with each other; the
# driver-only cycle (no container) is the criterion bench:
#   cargo bench -p strata-plugin --bench volume_cycle
#
# Usage: bench/volumes.sh   (as root; ~3 min)
# Knobs: RUNS=20  STRATA=$(scripts/built)  BENCH_OUT=bench/out
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/peers.sh"

RUNS=${RUNS:-20}
STRATA=$(realpath "${STRATA:-$("$BENCH_DIR"/../scripts/built)}")
OUT=${BENCH_OUT:-$BENCH_DIR/out}
W=$BENCH_ROOT/volumes
mkdir -p "$OUT"
bench_rm "$W"
mkdir -p "$W/plugins"

bench_busybox "$W/rootfs" "$W/busybox.tar" sh true

# The client store finds its plugin in a private folder; Docker looks in
# /run/docker/plugins, so the plugin it uses gets a name of its own there.
S="$STRATA --root $W/strata"
export STRATA_PLUGIN_DIRS=$W/plugins
$S import -c 'CMD ["sh"]' "$W/busybox.tar" bb > /dev/null
$STRATA --root "$W/served" plugin serve --name benchplug --socket "$W/plugins/benchplug.sock" &
SERVED=$!
$STRATA --root "$W/served-docker" plugin serve --name strata-bench &
SERVED_DOCKER=$!
cleanup() {
  kill "$SERVED" "$SERVED_DOCKER" 2>/dev/null || true
  [ -n "${SKIP_DOCKER:-}" ] || docker_stop
}
trap cleanup EXIT
while [ ! -S "$W/plugins/benchplug.sock" ] || [ ! -S /run/docker/plugins/strata-bench.sock ]; do
  sleep 0.05
done

docker=()
if [ -z "${SKIP_DOCKER:-}" ]; then
  docker_start "$W/docker"
  "$DOCKER" import "$W/busybox.tar" bb > /dev/null
  docker+=(-n docker-local
    "$DOCKER volume create bv >/dev/null && $DOCKER run --rm --network none -v bv:/d bb true && $DOCKER volume rm bv >/dev/null")
  docker+=(-n docker-strata
    "$DOCKER volume create -d strata-bench -o size=100M bv >/dev/null && $DOCKER run --rm --network none -v bv:/d bb true && $DOCKER volume rm bv >/dev/null")
fi

echo "== volume create + run --rm -v + volume rm"
hyperfine --warmup 3 --runs "$RUNS" --export-json "$OUT/volumes.json" \
  -n strata-plain "$S volume create bv >/dev/null && $S run --rm -v bv:/d bb true && $S volume rm bv >/dev/null" \
  -n strata-sized "$S volume create -o size=100M bv >/dev/null && $S run --rm -v bv:/d bb true && $S volume rm bv >/dev/null" \
  -n strata-plugin "$S volume create -d benchplug bv >/dev/null && $S run --rm -v bv:/d bb true && $S volume rm bv >/dev/null" \
  "${docker[@]}"

python3 - "$OUT/volumes.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
base = r["strata-plain"]
for name, ms in r.items():
    print(f"{name:15} {ms:8.1f} ms  {ms / base:5.2f}x strata-plain")
if "docker-strata" in r:
    print(f"docker-strata / docker-local: {r['docker-strata'] / r['docker-local']:.2f}x")
PY
