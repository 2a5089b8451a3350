#!/usr/bin/env bash
# `system df` and `images` with 200 images, strata beside podman, one
# hyperfine run. Target: strata system df under 100 ms.
#
# Usage: bench/df.sh   (as root)   Knobs: IMAGES=200 RUNS=20
#        STRATA=$(scripts/built) BENCH_OUT=bench/out
# Each image is `import`ed from its own small rootfs tar (a file of 4-64 KiB
# and a directory), so each is a distinct image with its own layer; both
# tools get the same tars.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/peers.sh
export BENCH_ROOT BENCH_RUN

N=${IMAGES:-200}
RUNS=${RUNS:-20}
STRATA=$(realpath -m "${STRATA:-$(scripts/built)}")
OUT=$(realpath -m "${BENCH_OUT:-bench/out}")
R=$BENCH_ROOT/df
mkdir -p "$OUT" "$BENCH_RUN"
trap 'bench_rm "$R" "$BENCH_RUN"/podman-*' EXIT
BENCH_SETTLE=0 bench_fresh "$R"
mkdir -p "$R/tars" "$R/rootfs"

echo "making $N images in each store..." >&2
for i in $(seq 1 "$N"); do
  rm -rf "$R/rootfs"/*
  mkdir -p "$R/rootfs/data/$i"
  head -c $(( (i % 16 + 1) * 4096 )) /dev/urandom > "$R/rootfs/data/$i/blob"
  tar -C "$R/rootfs" -cf "$R/tars/$i.tar" .
  "$STRATA" --root "$R/strata" image import "$R/tars/$i.tar" "bench/df-$i:latest" > /dev/null
  $(podman_cmd "$R/podman") import -q "$R/tars/$i.tar" "bench/df-$i:latest" > /dev/null
done

hyperfine --warmup 3 --runs "$RUNS" --shell=none \
  --command-name "strata system df" "$STRATA --root $R/strata system df" \
  --command-name "podman system df" "$(podman_cmd "$R/podman") system df" \
  --command-name "strata system df -v" "$STRATA --root $R/strata system df -v" \
  --command-name "podman system df -v" "$(podman_cmd "$R/podman") system df -v" \
  --command-name "strata images" "$STRATA --root $R/strata images" \
  --command-name "podman images" "$(podman_cmd "$R/podman") images" \
  --export-markdown "$OUT/df.md" --export-json "$OUT/df.json"

python3 - "$OUT/df.json" <<'PY' | tee "$OUT/df-summary.md"
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
print("| command | strata median ms | podman median ms | podman / strata |")
print("|---|---:|---:|---:|")
for cmd in ("system df", "system df -v", "images"):
    s, p = r["strata " + cmd]["median"], r["podman " + cmd]["median"]
    print(f"| {cmd} | {s*1000:.1f} | {p*1000:.1f} | {p/s:.1f}x |")
PY
