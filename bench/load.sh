#!/usr/bin/env bash
# Whole-command benchmark for `strata load` against its peers, one hyperfine
# invocation per image so hyperfine puts the tools side by side:
#   floor   tar -xf NAME.layer.tar -C DIR     (uncompressed layer, no store)
#   podman  podman load -i NAME.oci.tar       (private --root)
#   docker  docker load -i NAME.docker.tar    (private dockerd, 20.10)
#   strata  strata --root DIR load -i NAME.oci.tar   (only if $STRATA exists)
#
# Usage: bench/load.sh            (as root; ~40 min with the defaults)
# Knobs: RUNS=5  IMAGES="small-files one-big-file"  BENCH_SETTLE=60 (seconds)
#        PEERS="podman docker" (PEERS= times only the floor and strata)
#        BENCH_IDLE=5 (before each timed run, wait until the CPUs are at most
#        this % busy: other work on the machine skews a CPU-bound load)
#        STRATA=$(scripts/built)  STRATA_FORMAT=oci|docker
#        BENCH_SYNC=1 (time each command plus a final `sync`, i.e. until the
#        data is on disk; by default we time what the user waits for)
#        IMAGES_DIR=/var/lib/strata-bench/images (generated when missing)
#        BENCH_OUT=bench/out (results; gitignored)
#
# Fairness, and why:
# - Every timed run starts from an empty store / empty target folder: the
#   --prepare step deletes the previous run's data, stops/starts the private
#   dockerd on a fresh data-root, or creates and initialises a fresh podman
#   store (first-use setup is not timed; a real user has a store already).
# - The disk discards online: right after a ~1 GiB delete, writes can be
#   3-8x slower for up to a minute.  Each --prepare therefore runs `sync`
#   (so the previous run's writeback isn't billed to this run) and sleeps
#   $BENCH_SETTLE after deleting.  Loaders that delete temporary copies of
#   the archive themselves (docker, podman) pay for that inside their own run,
#   as they would in real life, but never in the next one.
# - We can't drop the page cache, so every input is kept hot instead (read
#   once in --prepare): all tools read their archive from memory.
# - All stores and targets are on the same ext4 filesystem; docker and podman
#   both use overlay(2).
# - The floor reads the uncompressed layer (no gunzip); the loaders read the
#   ~0.52 GiB gzip archive, gunzip it, verify digests and record metadata.
# Peak RSS is measured once per loader afterwards with GNU time (largest
# single process in the command's process tree).  For docker the work is in
# the daemon, so the daemon is started under GNU time too.
set -euo pipefail
cd "$(dirname "$0")/.."  # repo root
source bench/peers.sh
export BENCH_ROOT BENCH_RUN BENCH_SETTLE  # for hyperfine's prepare shells

RUNS=${RUNS:-5}
IMAGES=${IMAGES:-small-files one-big-file}
PEERS=${PEERS-podman docker}
BENCH_IDLE=${BENCH_IDLE:-5}
IMAGES_DIR=${IMAGES_DIR:-$BENCH_ROOT/images}
STRATA=$(realpath -m "${STRATA:-$(scripts/built)}")
STRATA_FORMAT=${STRATA_FORMAT:-oci}
OUT=$(realpath -m "${BENCH_OUT:-bench/out}")
R=$BENCH_ROOT/runs
# Percent of CPU time busy over two seconds, and waiting for it to drop.
cpu_busy() {
  local a b
  read -r -a a < /proc/stat; sleep 2; read -r -a b < /proc/stat
  local total=0 idle=$(( b[4] + b[5] - a[4] - a[5] )) i
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  echo $(( 100 * (total - idle) / total ))
}
wait_idle() { while [ "$(cpu_busy)" -gt "$BENCH_IDLE" ]; do sleep 5; done; }
export BENCH_IDLE
# Prefix for hyperfine's prepare/cleanup (functions copied into its shells).
PRE="source $PWD/bench/peers.sh; $(declare -f cpu_busy wait_idle);"
has_peer() { case " $PEERS " in *" $1 "*) return 0;; esac; return 1; }
mkdir -p "$OUT" "$BENCH_RUN"
command -v /usr/bin/time > /dev/null || apt-get install -y time

# Leave nothing running or lying around, however we exit.
trap 'docker_stop; cp -f "$BENCH_RUN/dockerd.log" "$OUT/" 2>/dev/null; bench_rm "$R" "$BENCH_RUN"/*' EXIT

for img in $IMAGES; do
  [ -f "$IMAGES_DIR/$img.oci.tar" ] ||
    python3 bench/gen_image.py "$IMAGES_DIR" --only "$img"
done

# Peak RSS in MiB of "$@" (GNU time; max over the process tree).
rss() { /usr/bin/time -v -o "$OUT/time.txt" "$@" > "$OUT/rss.log" 2>&1; rss_of "$OUT/time.txt"; }
rss_of() { awk '/Maximum resident/ {printf "%.0f", $NF / 1024}' "$1"; }

summary=$OUT/load-summary.md
echo "# strata load benchmark $(date -u +%FT%TZ) runs=$RUNS settle=${BENCH_SETTLE}s sync=${BENCH_SYNC:-0} idle<=${BENCH_IDLE}% peers='$PEERS'" > "$summary"

for img in $IMAGES; do
  I=$IMAGES_DIR/$img
  names=() preps=() cmds=()
  add() { names+=("$1") preps+=("$2") cmds+=("$3"); }
  add "tar -xf (floor)" "bench_fresh $R/tar; bench_warm $I.layer.tar" \
      "tar -xf $I.layer.tar -C $R/tar"
  has_peer podman && add "podman load" "podman_fresh $R/podman; bench_warm $I.oci.tar" \
      "$(podman_cmd "$R/podman") load -i $I.oci.tar"
  has_peer docker && add "docker load" "docker_stop; bench_fresh $R/docker; docker_start $R/docker; bench_warm $I.docker.tar" \
      "$DOCKER -H $DOCKER_HOST load -i $I.docker.tar"
  if [ -x "$STRATA" ]; then
    add "strata load" "bench_fresh $R/strata; bench_warm $I.$STRATA_FORMAT.tar" \
        "$STRATA --root $R/strata load -i $I.$STRATA_FORMAT.tar"
  else
    echo "note: no strata binary at $STRATA; timing the peers only" >&2
  fi

  args=()
  for i in "${!cmds[@]}"; do
    [ "${BENCH_SYNC:-0}" = 1 ] && cmds[i]="${cmds[i]} && sync"
    args+=(--prepare "$PRE ${preps[i]}; wait_idle" --command-name "${names[i]}")
  done
  hyperfine --shell=bash --runs "$RUNS" "${args[@]}" \
    --cleanup "$PRE docker_stop; bench_rm $R" \
    --export-markdown "$OUT/load-$img.md" --export-json "$OUT/load-$img.json" \
    "${cmds[@]}"

  # Peak RSS, once per tool (not timed, so no settling needed).
  declare -A peak=()
  peak[tar]=$(BENCH_SETTLE=0 bench_fresh "$R/tar"; rss tar -xf "$I.layer.tar" -C "$R/tar")
  if has_peer podman; then
    peak[podman]=$(BENCH_SETTLE=0 podman_fresh "$R/podman"
                   rss $(podman_cmd "$R/podman") load -i "$I.oci.tar")
  fi
  if has_peer docker; then
    docker_stop; BENCH_SETTLE=0 bench_fresh "$R/docker"
    docker_start "$R/docker" /usr/bin/time -v -o "$OUT/time-dockerd.txt"
    peak[docker-cli]=$(rss "$DOCKER" load -i "$I.docker.tar")
    peak[dockerd-own]=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$(cat "$BENCH_RUN/docker.pid")/status")
    docker_stop
    peak[dockerd-tree]=$(rss_of "$OUT/time-dockerd.txt")
  fi
  if [ -x "$STRATA" ]; then
    peak[strata]=$(BENCH_SETTLE=0 bench_fresh "$R/strata"
                   rss "$STRATA" --root "$R/strata" load -i "$I.$STRATA_FORMAT.tar")
  fi
  bench_rm "$R"

  # Medians and ratios vs the tar floor, plus the RSS figures.
  rss_line=$(for k in "${!peak[@]}"; do echo "$k=${peak[$k]}"; done | sort | paste -sd' ')
  unset peak
  python3 - "$OUT/load-$img.json" "$img" "$rss_line" <<'PY' | tee -a "$summary"
import json, sys
results = json.load(open(sys.argv[1]))["results"]
floor = results[0]["median"]
print(f"\n## {sys.argv[2]}\n")
print("| command | median s | mean ± sd s | min–max s | × floor (median) |")
print("|---|---:|---:|---:|---:|")
for r in results:
    sd = r["stddev"] or 0.0  # null with a single run
    print(f"| {r['command']} | {r['median']:.2f} | {r['mean']:.2f} ± {sd:.2f} "
          f"| {r['min']:.2f}–{r['max']:.2f} | {r['median'] / floor:.2f} |")
print(f"\nPeak RSS (MiB, one run each): {sys.argv[3]}")
PY
done
echo "Results: $OUT/load-*.md (hyperfine), $summary (medians, ratios, RSS)"
