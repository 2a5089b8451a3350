#!/usr/bin/env bash
# Whole-command benchmarks for volume backups, side by side in one hyperfine
# invocation per question, on a volume holding the 1 GiB / 20,000-file tree
# of the load benchmark:
#   export  strata volume export vol -o F     vs  tar -cf F -C <vol's _data> .
#   import  strata volume import restored F   vs  tar -xf F -C <fresh folder>
#           (both read the tar strata exported)
#   clone   strata volume clone vol cloned    vs  cp -a --reflink=auto <_data> <fresh>
# and prints each strata/tar ratio (medians). The goal: export and import
# within 1.3x of tar.
#
# Usage: bench/volume_backup.sh   (as root; ~15 min with the defaults)
# Knobs: RUNS=5  BENCH_SETTLE=60 (seconds)  STRATA=$(scripts/built)
#        QUESTIONS="export import clone"
#        BENCH_SYNC=1 (time each command plus a final `sync`, i.e. until the
#        data is on disk; by default we time what the user waits for)
#        IMAGES_DIR=/var/lib/strata-bench/images  BENCH_OUT=bench/out
#
# Fairness, and why:
# - Every timed run writes into a fresh target (a new file, an empty folder,
#   a new volume); deleting the previous run's 1 GiB happens in --prepare,
#   followed by `sync` and $BENCH_SETTLE seconds, because this disk discards
#   online and writes right after a big delete run several times slower.
# - Inputs are hot: the volume's files and the tar are read once first, and
#   stay in the page cache (we cannot drop it).
# - All on the same ext4 filesystem, through the same strata volume folder.
# - `strata volume export -o F` fsyncs F before renaming it into place (an
#   export is durable when the command returns); tar does not, so the fair
#   export comparison is BENCH_SYNC=1, which makes both wait for the disk.
set -euo pipefail
cd "$(dirname "$0")/.."  # repo root
source bench/peers.sh
export BENCH_ROOT BENCH_RUN BENCH_SETTLE  # for hyperfine's prepare shells

RUNS=${RUNS:-5}
QUESTIONS=${QUESTIONS:-export import clone}
IMAGES_DIR=${IMAGES_DIR:-$BENCH_ROOT/images}
STRATA=$(realpath -m "${STRATA:-$(scripts/built)}")
OUT=$(realpath -m "${BENCH_OUT:-bench/out}")
W=$BENCH_ROOT/volume-backup
PRE="source $PWD/bench/peers.sh;"  # prefix for hyperfine's prepare/cleanup
S="$STRATA --root $W/strata"
mkdir -p "$OUT"

if ! "$STRATA" volume export --help > /dev/null 2>&1; then
  echo "no 'volume export' in $STRATA; build it first (cargo build --release)" >&2
  exit 1
fi
trap 'bench_rm "$W"' EXIT
BENCH_SETTLE=0 bench_fresh "$W"
mkdir -p "$W/out"

# The volume: the load benchmark's 1 GiB / 20,000-file layer, unpacked.
[ -f "$IMAGES_DIR/small-files.layer.tar" ] ||
  python3 bench/gen_image.py "$IMAGES_DIR" --only small-files
$S volume create vol > /dev/null
DATA=$W/strata/volumes/vol/_data
tar -xf "$IMAGES_DIR/small-files.layer.tar" -C "$DATA"
$S volume export vol -o "$W/vol.tar"  # what both importers read
warm="find $DATA -type f -exec cat {} + > /dev/null; bench_warm $W/vol.tar"

# One hyperfine run; arguments: NAME, then (label, prepare, command) triples.
# With BENCH_SYNC=1 each command is timed until its data is on disk.
compare() {
  local name=$1 args=() cmds=() sync=
  [ "${BENCH_SYNC:-0}" = 1 ] && sync=' && sync'
  shift
  while [ $# -gt 0 ]; do
    args+=(--prepare "$PRE $2; $warm" --command-name "$1")
    cmds+=("$3$sync")
    shift 3
  done
  echo "== $name"
  hyperfine --shell=bash --runs "$RUNS" "${args[@]}" \
    --export-markdown "$OUT/volume-$name.md" --export-json "$OUT/volume-$name.json" \
    "${cmds[@]}"
}

asked() { [[ " $QUESTIONS " == *" $1 "* ]]; }

# Each prepare deletes what the previous run of *either* command left.
asked export && compare export \
  "tar -cf" "bench_rm $W/out; bench_settle; mkdir $W/out" \
    "tar -cf $W/out/tar.tar -C $DATA ." \
  "strata volume export" "bench_rm $W/out; bench_settle; mkdir $W/out" \
    "$S volume export vol -o $W/out/strata.tar"

drop_restored="$S volume rm -f restored > /dev/null 2>&1 || true"
asked import && compare import \
  "tar -xf" "$drop_restored; bench_rm $W/x; bench_settle; mkdir $W/x" \
    "tar -xf $W/vol.tar -C $W/x" \
  "strata volume import" "$drop_restored; bench_rm $W/x; bench_settle" \
    "$S volume import restored $W/vol.tar"

drop_cloned="$S volume rm -f cloned > /dev/null 2>&1 || true"
asked clone && compare clone \
  "cp -a" "$drop_cloned; bench_rm $W/x; bench_settle" \
    "cp -a --reflink=auto $DATA $W/x" \
  "strata volume clone" "$drop_cloned; bench_rm $W/x; bench_settle" \
    "$S volume clone vol cloned"

summary=$OUT/volume-backup-summary.md
echo "# strata volume backup benchmark $(date -u +%FT%TZ) runs=$RUNS settle=${BENCH_SETTLE}s sync=${BENCH_SYNC:-0}" > "$summary"
for q in $QUESTIONS; do
  python3 - "$OUT/volume-$q.json" "$q" <<'PY' | tee -a "$summary"
import json, sys
base, strata = json.load(open(sys.argv[1]))["results"]
print(f"\n## {sys.argv[2]} (1 GiB, 20,000 files)\n")
print("| command | median s | mean ± sd s | min–max s | × first (median) |")
print("|---|---:|---:|---:|---:|")
for r in (base, strata):
    sd = r["stddev"] or 0.0  # null with a single run
    print(f"| {r['command']} | {r['median']:.2f} | {r['mean']:.2f} ± {sd:.2f} "
          f"| {r['min']:.2f}–{r['max']:.2f} | {r['median'] / base['median']:.2f} |")
PY
done
echo "Results: $OUT/volume-*.md (hyperfine), $summary (medians and ratios)"
