#!/usr/bin/env bash
# Where one `strata run --rm IMG true` spends its time, from the scheduler's
# exec, fork and exit events of every process (perf), beside raw runc run
# the same way: Strata's own segments (its start to the monitor's fork;
# the fork to runc's exec, which the monitor starts early; runc's exit to
# Strata's exit), runc's run under each (with the wait at the bundle's gate
# while the starter makes the container, in runc exec -> runc init), and
# what Strata adds in all. On this VM whole-command ratios swing with
# runc's own time (bench/RESULTS.md, issue 3); these segments show what is
# Strata's.
#
# Usage: bench/run-segments.sh   (as root, with perf; ~1 min after settling)
# Knobs: RUNS=100  PAUSE=0 (seconds of sleep before each run)
#        STRATA=$(scripts/built)  BENCH_SETTLE=60
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/peers.sh"
if ! command -v perf > /dev/null; then
  echo "run-segments: perf is missing; install it (apt-get install linux-perf) and run again" >&2
  exit 1
fi

RUNS=${RUNS:-100}
PAUSE=${PAUSE:-0}
STRATA=$(realpath "${STRATA:-$("$BENCH_DIR"/../scripts/built)}")
W=$BENCH_ROOT/segments
bench_fresh "$W"
bench_busybox "$W/rootfs" "$W/busybox.tar" sh true
bench_runc_bundle "$W/bundle" "$W/rootfs"
S="$STRATA --root $W/strata"
$S import -c 'CMD ["sh"]' "$W/busybox.tar" bb > /dev/null

pause=""
[ "$PAUSE" = 0 ] || pause="sleep $PAUSE;"
record() {  # record NAME COMMAND: perf script of RUNS runs of COMMAND
  perf record -q -a -o "$W/$1.data" \
    -e sched:sched_process_exec -e sched:sched_process_fork -e sched:sched_process_exit \
    -- bash -c "for i in \$(seq $RUNS); do $pause $2 > /dev/null; done"
  perf script -i "$W/$1.data" > "$W/$1.txt" 2> /dev/null
}
RUNC=$(command -v runc)
record runc "$RUNC --root $BENCH_RUN/runc run --bundle $W/bundle bench-segments"
record strata "$S run --rm bb true"
python3 "$BENCH_DIR/segments.py" "$STRATA" "$RUNC" "$W/runc.txt" "$W/strata.txt"
