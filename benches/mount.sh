#!/usr/bin/env bash
# `tideline mount` against the local disk, side by side in one run: one node on loopback, its
# volume mounted with `tideline mount`, and a plain directory on the same disk; the same
# operations alternate between the two (benches/lib/mount_bench.py), each reported with the
# ratio mount / local.
#
# Usage:  benches/mount.sh
#         TIDELINE_BIN=/tmp/tl FILES=10000 ROUNDS=2 benches/mount.sh
# Needs /dev/fuse and the right to mount (root, or fusermount3 from Debian's fuse3), and git.
set -euo pipefail

# shellcheck source=benches/lib/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

TIDELINE_BIN="${TIDELINE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/tideline/target}/debug/tideline}"
FILES="${FILES:-10000}"
ROUNDS="${ROUNDS:-2}"

need_cmd git git
bench_init
TL_NODES=1 tideline_start "$TIDELINE_BIN"
MNT="$BENCH_WORK/mnt"
LOCAL="$BENCH_WORK/local"
mkdir -p "$MNT" "$LOCAL" "$BENCH_WORK/mount-cache"
TIDELINE_TOKEN="$TL_TOKEN" "$TIDELINE_BIN" mount "$TL_VOL" "$MNT" --foreground --server "${TL_URLS[0]}" \
  --cache-dir "$BENCH_WORK/mount-cache" >"$BENCH_WORK/mount.out" 2>"$BENCH_WORK/mount.err" &
MOUNT_PID=$!
unmount_on_exit() {
  "$TIDELINE_BIN" unmount "$MNT" 2>/dev/null || true
  wait "$MOUNT_PID" 2>/dev/null || true
  on_exit
}
trap unmount_on_exit EXIT
WAIT_PIDS=("$MOUNT_PID")
wait_until 30 "the mount is up" grep -q mounted "$BENCH_WORK/mount.out"
log "mounted $TL_VOL at $MNT (pid $MOUNT_PID); load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$(dirname "${BASH_SOURCE[0]}")/lib/mount_bench.py" \
  --mount "$MNT" --local "$LOCAL" --work "$BENCH_WORK" --files "$FILES" --rounds "$ROUNDS" \
  --server "${TL_URLS[0]}" --token "$TL_TOKEN" --volume "$TL_VOL" --mount-pid "$MOUNT_PID"
