#!/usr/bin/env bash
# Whole-command benchmarks for `strata build`, side by side in one hyperfine
# invocation per question:
#   small-cached  fully cached rebuild of a 6-step Dockerfile (FROM a local
#                 base, RUN, COPY of 2,000 files, ENV, RUN, CMD): strata vs
#                 docker build (classic) vs BuildKit vs buildah bud vs
#                 podman build
#   small-cold    the same build with --no-cache: strata vs BuildKit (and
#                 the rest)
#   big-cached    fully cached rebuild with a 1 GiB / 20,000-file context:
#                 strata vs BuildKit (classic docker and podman take 8-17 s a
#                 run; BIG_PEERS=1 adds them)
#   memory        peak RSS of a cold strata build of the big context
#
# Usage: bench/build.sh   (as root; ~10 min)
# Knobs: RUNS=20 BIG_RUNS=10 STRATA=$(scripts/built) SKIP_DOCKER=1
#        BIG_PEERS=1 IMAGES_DIR=/var/lib/strata-bench/images BENCH_OUT=bench/out
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/peers.sh

RUNS=${RUNS:-20}
BIG_RUNS=${BIG_RUNS:-10}
STRATA=$(realpath -m "${STRATA:-$(scripts/built)}")
IMAGES_DIR=${IMAGES_DIR:-$BENCH_ROOT/images}
OUT=$(realpath -m "${BENCH_OUT:-bench/out}")
W=$BENCH_ROOT/build
mkdir -p "$OUT" "$BENCH_RUN"
command -v /usr/bin/time > /dev/null || apt-get install -y time
bench_rm "$W"
mkdir -p "$W"
trap 'docker_stop; bench_rm "$W"' EXIT

# The base image: busybox, imported into every tool as `base`.
bench_busybox "$W/rootfs" "$W/base.tar" sh echo cat ls mkdir

# The small context: 2,000 files of 1 KiB in 20 folders.
SMALL=$W/small
mkdir -p "$SMALL"
python3 - "$SMALL" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(20):
    os.makedirs(f"{root}/files/d{d}", exist_ok=True)
    for f in range(100):
        with open(f"{root}/files/d{d}/f{f}.txt", "wb") as out:
            out.write(os.urandom(512).hex().encode())
PY
cat > "$SMALL/Dockerfile" <<'DF'
FROM base
RUN echo one > /one
COPY files /files
ENV GREETING=hello
RUN echo two > /two
CMD ["sh"]
DF

# The big context: the 1 GiB / 20,000-file tree of the load benchmark.
BIG=$W/big
mkdir -p "$BIG"
[ -f "$IMAGES_DIR/small-files.layer.tar" ] ||
  python3 bench/gen_image.py "$IMAGES_DIR" --only small-files
tar -C "$BIG" -xf "$IMAGES_DIR/small-files.layer.tar"
printf 'FROM base\nCOPY . /data\nCMD ["sh"]\n' > "$BIG/Dockerfile"
sync

S="$STRATA --root $W/strata"
$S import -c 'CMD ["sh"]' "$W/base.tar" base > /dev/null
PODMAN=$(podman_cmd "$W/podman")
$PODMAN import "$W/base.tar" base > /dev/null
BUILDAH="buildah --root $W/podman/root --runroot $BENCH_RUN/podman-runroot --storage-driver overlay"
export CONTAINERS_CONF=$PWD/scripts/containers.conf
peers_small=(-n podman "$PODMAN build -q --network none -t s $SMALL"
             -n buildah "$BUILDAH bud -q --network none -t s $SMALL")
peers_cold=(-n podman "$PODMAN build -q --no-cache --network none -t s $SMALL")
peers_big=()
if [ -z "${SKIP_DOCKER:-}" ]; then
  docker_start "$W/docker"
  "$DOCKER" import "$W/base.tar" base > /dev/null
  classic="env DOCKER_BUILDKIT=0 $DOCKER build --network host -q -t s"
  buildkit="env DOCKER_BUILDKIT=1 $DOCKER build --network host -q -t s"
  peers_small=(-n docker-classic "$classic $SMALL" -n buildkit "$buildkit $SMALL" "${peers_small[@]}")
  peers_cold=(-n buildkit "$buildkit --no-cache $SMALL" "${peers_cold[@]}")
  peers_big=(-n buildkit "env DOCKER_BUILDKIT=1 $DOCKER build --network host -q -t b $BIG")
  if [ -n "${BIG_PEERS:-}" ]; then
    peers_big+=(-n docker-classic "env DOCKER_BUILDKIT=0 $DOCKER build --network host -q -t b $BIG"
                -n podman "$PODMAN build -q --network none -t b $BIG")
  fi
fi

echo "== small, fully cached rebuild"
hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$OUT/build-small-cached.json" \
  -n strata "$S build -q -t s $SMALL" "${peers_small[@]}"

echo "== small, cold (--no-cache)"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$OUT/build-small-cold.json" \
  -n strata "$S build -q --no-cache -t s $SMALL" "${peers_cold[@]}"

echo "== big context, fully cached rebuild"
$S build -q -t b "$BIG" > /dev/null
hyperfine -N --warmup 1 --runs "$BIG_RUNS" --export-json "$OUT/build-big-cached.json" \
  -n strata "$S build -q -t b $BIG" "${peers_big[@]}"

echo "== peak memory, cold build of the big context"
bench_settle
/usr/bin/time -f "strata build (cold, 1 GiB context): %M KiB max RSS, %e s" \
  $S build -q --no-cache -t b2 "$BIG" > /dev/null
