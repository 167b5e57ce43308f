#!/usr/bin/env bash
# Durable 256-byte writes to ONE Tideline node (default durability: the Raft log is fsynced
# before a write is answered), driven by wrk with the same Lua script as compare-etcd.sh.
#
# Usage:  benches/single-node.sh                        (the binary the dev profile built)
#         TIDELINE_BIN=/tmp/tl CONNECTIONS="1 64" DURATION_S=10 ROUNDS=2 benches/single-node.sh
# Prints one RESULT line per run (rps, p50/p99 ms, errors, others_cpu_pct: CPU other processes
# used meanwhile — well above a few percent means the run is noise).
set -euo pipefail

# shellcheck source=benches/lib/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

TIDELINE_BIN="${TIDELINE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/tideline/target}/debug/tideline}"
DURATION_S="${DURATION_S:-10}"
WARMUP_S="${WARMUP_S:-3}"
ROUNDS="${ROUNDS:-2}"
CONNECTIONS="${CONNECTIONS:-1 64 256}"

bench_init
TL_NODES=1 tideline_start "$TIDELINE_BIN"
log "tideline binary $TIDELINE_BIN; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for conns in $CONNECTIONS; do
  for round in $(seq 1 "$ROUNDS"); do
    tag="single-c$conns-r$round"
    wrk_run "$WRK_DIR/tideline-write.lua" "$WARMUP_S" "$conns" "$tag-warm" "${TL_URLS[0]}" >/dev/null
    echo "conns=$conns round=$round $(wrk_run "$WRK_DIR/tideline-write.lua" "$DURATION_S" "$conns" "$tag" "${TL_URLS[0]}")"
  done
done
