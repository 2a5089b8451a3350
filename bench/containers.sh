#!/usr/bin/env bash
# Whole-command benchmarks for containers, side by side in hyperfine
# invocations per question:
#   run     strata run --rm IMG true  vs  raw `runc run` (the floor) of two
#           bundles: runc's own spec over a busybox folder, and the bundle
#           Strata makes (its config.json, the container's overlay root)  vs
#           podman run --rm --network none  vs  docker run --rm; then strata
#           and the runcs alone in ROUNDS rounds, back to back and with a
#           50 ms pause before each run, ratios taken within each round
#   create  strata create vs podman create (and docker create), on busybox
#           and on the 1 GiB / 20,000-file image
#   commit  strata commit vs podman commit of a container that changed
#           100 MiB in 1,000 files on top of the 1 GiB image
#
# Usage: bench/containers.sh   (as root; ~15 min)
# Knobs: RUNS=20  ROUNDS=5  STRATA=$(scripts/built)  SKIP_DOCKER=1  BENCH_SETTLE=60
#        IMAGES_DIR=/var/lib/strata-bench/images (bench/gen_image.py makes it)
#        BENCH_OUT=bench/out
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/peers.sh"

RUNS=${RUNS:-20}
ROUNDS=${ROUNDS:-5}
STRATA=$(realpath "${STRATA:-$("$BENCH_DIR"/../scripts/built)}")
IMAGES_DIR=${IMAGES_DIR:-$BENCH_ROOT/images}
OUT=${BENCH_OUT:-$BENCH_DIR/out}
W=$BENCH_ROOT/containers
mkdir -p "$OUT"
# The previous run's store (a GiB image among it) is deleted first, and the
# disk settles before anything is timed: right after a big delete this
# disk discards, and ext4 without a journal skips freshly freed inodes when
# it allocates new ones, so every file and folder made slows down for up
# to a minute. Strata makes a few per `run`; raw runc makes none on disk.
bench_fresh "$W"

# The busybox root filesystem every tool runs.
ROOTFS=$W/rootfs
bench_busybox "$ROOTFS" "$W/busybox.tar" sh true cat

# Raw runc: the same rootfs as a bundle (runc's own spec).
BUNDLE=$W/bundle
bench_runc_bundle "$BUNDLE" "$ROOTFS"

S="$STRATA --root $W/strata"
$S import -c 'CMD ["sh"]' "$W/busybox.tar" bb > /dev/null
PODMAN=$(podman_cmd "$W/podman")
$PODMAN import "$W/busybox.tar" bb > /dev/null
if [ -z "${SKIP_DOCKER:-}" ]; then
  docker_start "$W/docker"
  trap docker_stop EXIT
  "$DOCKER" import "$W/busybox.tar" bb > /dev/null
fi

# The same bundle Strata hands runc: a container kept running (`cat` on
# its open stdin) holds its overlay root mounted; its config.json, with
# `true` to run, points runc at that root.
KEEPER=$($S run -d -i --name floor-keeper bb cat)
STRATA_BUNDLE=$W/strata-bundle
mkdir -p "$STRATA_BUNDLE"
python3 - "$W/strata/containers/$KEEPER/config.json" "$STRATA_BUNDLE/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = ["true"]
json.dump(c, open(sys.argv[2], "w"))
PY
runc_floor=(-n runc "runc --root $BENCH_RUN/runc run --bundle $BUNDLE bench-floor")
floors=(
  "${runc_floor[@]}"
  -n "runc, strata's bundle" "runc --root $BENCH_RUN/runc run --bundle $STRATA_BUNDLE bench-floor"
)

peers_run=(-n podman "$PODMAN run --rm --network none bb true")
peers_create=(-n podman "$PODMAN create --network none bb true")
if [ -z "${SKIP_DOCKER:-}" ]; then
  peers_run+=(-n docker "$DOCKER run --rm --network none bb true")
  peers_create+=(-n docker "$DOCKER create --network none bb true")
fi

strata_run=(-n strata "$S run --rm bb true")
echo "== run --rm (busybox, true), with podman and docker"
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/run-peers.json" \
  "${runc_floor[@]}" "${strata_run[@]}" "${peers_run[@]}"

# This VM's speed drifts from minute to minute by more than Strata adds to
# runc, and hyperfine times one command's runs, then the next's: one
# invocation's ratio moved from 1.19x to 1.40x between six back-to-back
# invocations (bench/RESULTS.md, issue 3, stop 30). So strata and the
# floors run side by side in ROUNDS short invocations, each ratio is taken
# within its round, and the median of the rounds' ratios is the figure.
rounds() {  # rounds NAME [hyperfine options...]: ROUNDS invocations, summarised
  local name=$1 r files=(); shift
  for r in $(seq "$ROUNDS"); do
    hyperfine -N --warmup 3 --runs "$RUNS" "$@" --export-json "$OUT/$name-$r.json" \
      "${floors[@]}" "${strata_run[@]}" > /dev/null
    files+=("$OUT/$name-$r.json")
  done
  python3 "$BENCH_DIR/rounds.py" "$name" "${files[@]}"
}
echo "== run --rm (busybox, true) against the floors, back to back"
rounds run

# Back to back, runc runs with its caches as warm as they get; anything
# run just before it (here: a pause, as between a user's commands) costs it
# 5-10 ms on this VM: on cgroup v1 without `favordynmods`, runc's move of
# its init into the container's cgroups waits for an RCU grace period
# unless another such move happened in the last 15 ms or so (bench/
# RESULTS.md, issue 3, stop 25). The same pause before every run of both
# compares them from the same state.
echo "== run --rm (busybox, true) against the floors, 50 ms pause before each run"
rounds run-paused --prepare "sleep 0.05"
$S rm -f floor-keeper > /dev/null
# Every tool's `run --rm` above deleted its containers: settle again.
bench_settle

echo "== create (busybox)"
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/create-busybox.json" \
  -n strata "$S create bb true" \
  "${peers_create[@]}"

# The 1 GiB image of 20,000 files, for create and commit.
$S load -q -i "$IMAGES_DIR/small-files.oci.tar" > "$W/strata-load.txt"
BIG=$(awk '/Loaded image/ {print $NF}' "$W/strata-load.txt")
$PODMAN load -q -i "$IMAGES_DIR/small-files.oci.tar" > "$W/podman-load.txt"
PBIG=$(awk '/Loaded image/ {print $NF}' "$W/podman-load.txt")

echo "== create (1 GiB, 20,000 files)"
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/create-big.json" \
  -n strata "$S create $BIG true" \
  -n podman "$PODMAN create --network none $PBIG true"

# 100 MiB in 1,000 files, copied into one container per tool.
CHANGE=$W/change
mkdir -p "$CHANGE"
for i in $(seq 1000); do head -c 104857 /dev/urandom > "$CHANGE/f$i"; done
$S create --name changed "$BIG" true > /dev/null
$S cp "$CHANGE" changed:/change
$PODMAN create --name changed --network none "$PBIG" true > /dev/null
$PODMAN cp "$CHANGE" changed:/change
bench_settle

# Before each commit (untimed), a marker file with a new value goes into
# the container, so that every run commits a new layer, as a user's commit
# of new work does. Committing the same container again would give a layer
# the store already has; Strata then unpacks it, finds it stored, and
# deletes the copy, which measures the duplicate, not the change.
marker() {  # marker SCRIPT CONTAINER CP...: prints SCRIPT, made to do that
  local script=$W/$1 value=$W/$1.value container=$2; shift 2
  printf '#!/bin/sh\nset -e\ndate +%%s%%N > %s\n%s %s %s:/marker\nsync\n' \
    "$value" "$*" "$value" "$container" > "$script"
  chmod +x "$script"
  echo "$script"
}
echo "== commit (100 MiB in 1,000 files on the 1 GiB image)"
hyperfine -N --warmup 1 --runs "$(( RUNS < 10 ? RUNS : 10 ))" --export-json "$OUT/commit.json" \
  --prepare "$(marker marker-strata changed $S cp)" \
  --prepare "$(marker marker-podman changed $PODMAN cp)" \
  -n strata "$S commit changed" \
  -n podman "$PODMAN commit -q changed"

# The same change on busybox: the cost should follow the change, not the image.
$S create --name changed-small bb true > /dev/null
$S cp "$CHANGE" changed-small:/change
bench_settle
echo "== commit (the same change on busybox)"
hyperfine -N --warmup 1 --runs "$(( RUNS < 10 ? RUNS : 10 ))" --export-json "$OUT/commit-small.json" \
  --prepare "$(marker marker-small changed-small $S cp)" \
  -n strata "$S commit changed-small"

for f in run-peers create-busybox create-big commit commit-small; do
  python3 - "$OUT/$f.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
# Ratios against each floor (the runc rows), else against the first row.
bases = [x for x in r if x["command"].startswith("runc")] or r[:1]
def ratios(x):
    return " / ".join(f'{x["median"]/b["median"]:.2f}x' for b in bases)
print(sys.argv[1].rsplit("/", 1)[1], " | ".join(
    f'{x["command"]} {x["median"]*1000:.1f} ms ({ratios(x)})' for x in r))
PY
done
