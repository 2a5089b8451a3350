# Helpers for the whole-command benchmarks: private, throwaway stores for the
# peers (docker, podman) so runs never see each other's data or the machine's
# own stores.  Source it:  source bench/peers.sh
# Everything lives under $BENCH_ROOT (disk) and $BENCH_RUN (tmpfs).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_ROOT=${BENCH_ROOT:-/var/lib/strata-bench}
BENCH_RUN=${BENCH_RUN:-/run/strata-bench}
# Seconds to wait after deleting data before timing: this VM's disk discards
# online, and writes right after a ~1 GiB delete can run 3-8x slower for up
# to a minute.
BENCH_SETTLE=${BENCH_SETTLE:-60}
# Debian's docker 20.10 CLI; /usr/local/bin/docker is an unrelated newer one.
DOCKER=/usr/bin/docker
DOCKER_SOCK=$BENCH_RUN/docker.sock
export DOCKER_HOST=unix://$DOCKER_SOCK
export CONTAINERS_CONF=$BENCH_DIR/../scripts/containers.conf

# rm -rf that first unmounts anything left mounted below the path (overlay
# stores) and refuses to touch anything outside our two roots.
bench_rm() {
  local p
  for p in "$@"; do
    case $p in "$BENCH_ROOT"/?*|"$BENCH_RUN"/?*) ;; *) echo "bench_rm: refusing $p" >&2; return 1;; esac
    # (dockerd even bind-mounts its data-root onto itself, and leaves it.)
    findmnt -rn -o TARGET | awk -v p="$p" '$0 == p || index($0, p "/") == 1' |
      sort -r | xargs -r -n1 umount -l || true
    rm -rf -- "$p"
  done
}

# Wait for the disk to be quiet: flush the previous run's dirty pages (so
# their writeback isn't billed to the next run) and let online discard of
# anything just deleted finish.  We can't drop the page cache here (no
# permission even as root), so inputs are kept *hot* instead: see bench_warm.
bench_settle() { sync; sleep "$BENCH_SETTLE"; }

# Give every timed run an empty target: delete the old one, settle, recreate.
bench_fresh() { bench_rm "$@"; bench_settle; mkdir -p "$@"; }

# Read inputs once so every tool starts with them in the page cache.
bench_warm() { cat "$@" > /dev/null; }

# A busybox root filesystem with APPLETS linked and a root user, and its tar:
# the base image every tool imports.
bench_busybox() {  # bench_busybox ROOTFS TAR APPLET...
  local rootfs=$1 tar=$2; shift 2
  mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/proc" "$rootfs/dev" "$rootfs/sys"
  cp /bin/busybox "$rootfs/bin/"
  for a in "$@"; do ln -s busybox "$rootfs/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
  tar -C "$rootfs" -cf "$tar" .
}

# Raw runc's bundle for the floor: ROOTFS copied in, runc's own spec running
# `true`, with no terminal and no rlimits (this host cannot raise them).
bench_runc_bundle() {  # bench_runc_bundle BUNDLE ROOTFS
  local bundle=$1 rootfs=$2
  mkdir -p "$bundle"
  cp -a "$rootfs" "$bundle/rootfs"
  (cd "$bundle" && runc spec)
  python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["args"] = ["true"]
c["process"]["terminal"] = False
c["process"].pop("rlimits", None)
json.dump(c, open(p, "w"))
PY
}

# --- docker: a private dockerd with its own data-root, exec-root and socket.
docker_start() {  # docker_start DATA_ROOT [wrapper cmd...]  (e.g. /usr/bin/time -v -o F)
  local data=$1; shift
  mkdir -p "$data" "$BENCH_RUN"
  cat > "$BENCH_RUN/daemon.json" <<JSON
{ "data-root": "$data", "exec-root": "$BENCH_RUN/docker-exec",
  "pidfile": "$BENCH_RUN/docker.pid", "hosts": ["unix://$DOCKER_SOCK"],
  "storage-driver": "overlay2", "iptables": false, "ip-forward": false,
  "ip-masq": false, "bridge": "none", "log-level": "warn" }
JSON
  # setsid + closed stdio: the daemon must outlive hyperfine's --prepare shell
  # without holding its pipes open.
  setsid -w "$@" dockerd --config-file "$BENCH_RUN/daemon.json" \
    > "$BENCH_RUN/dockerd.log" 2>&1 < /dev/null &
  echo $! > "$BENCH_RUN/docker.top.pid"  # setsid (-w: lives as long as the tree)
  local i
  for i in $(seq 300); do
    "$DOCKER" version > /dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "dockerd did not come up; see $BENCH_RUN/dockerd.log" >&2; return 1
}

docker_stop() {
  local pid i
  pid=$(cat "$BENCH_RUN/docker.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  for i in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  # Wait for the wrapper (setsid, maybe time -v) to exit and write its report.
  pid=$(cat "$BENCH_RUN/docker.top.pid" 2>/dev/null) || pid=
  for i in $(seq 100); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$BENCH_RUN/docker.pid" "$BENCH_RUN/docker.top.pid"
}

# --- podman: no daemon; just a private graph root, run root and tmpdir.
podman_cmd() {  # podman_cmd STORE -> prints the podman command line for STORE
  echo "podman --root $1/root --runroot $BENCH_RUN/podman-runroot" \
       "--tmpdir $BENCH_RUN/podman-tmp --storage-driver overlay"
}
podman_fresh() {  # empty store, initialised (so first-use setup isn't timed)
  bench_rm "$BENCH_RUN/podman-runroot" "$BENCH_RUN/podman-tmp"
  bench_fresh "$1"
  $(podman_cmd "$1") images > /dev/null
}
