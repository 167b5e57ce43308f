#!/usr/bin/env bash
# A CPU flame graph of Tideline's write path: a 3-node cluster on loopback (benches/lib/cluster.sh)
# takes 256-byte file writes from wrk over 64 connections spread over the three nodes while
# `perf record` samples all three server processes; the samples are folded and drawn with
# inferno (installed into ~/.cargo/bin if missing).
#
# Usage:  benches/flamegraph.sh                      (the binary the dev profile built)
#         TIDELINE_BIN=/tmp/tideline-before OUT=benches/results/write-path-before benches/flamegraph.sh
# Knobs:  DURATION_S (10) recorded seconds, WARMUP_S (3), CONNS (64), PERF_FREQ (see below),
#         CALL_GRAPH (dwarf,65528 | dwarf,SIZE | fp), BENCH_TMPDIR, BENCH_KEEP_WORK=1 (keeps perf.data).
#
# What it shows: CPU time only (perf samples threads that are running). A thread blocked in
# fdatasync or waiting for a peer is not sampled, so fsync *waits* appear only as the CPU the
# syscall itself burns; a run's latency is not the sum of the bars.
#
# Output: OUT.svg (open in a browser: width = share of CPU samples of all three nodes, click
# to zoom, Ctrl-F to search; frames under 0.2 px are left out to keep it ~1 MB),
# OUT.folded.gz (one `stack count` line per distinct stack: `zcat OUT.folded.gz | grep …`),
# and wrk's RESULT line for the recorded run, on stdout.
#
# Call graphs: Rust's std and RocksDB's C++ are built without frame pointers, so `-g` (frame
# pointers) loses the caller of nearly every frame: tried at 999 Hz, the top-level bars were
# `[unknown]`, `syscall`, `epoll_wait`, `_int_free` hanging off the thread name — hot leaves,
# but not which request step called them. DWARF unwinding copies the sampled thread's stack and
# unwinds it afterwards: with 16 KiB copies about half of the samples still lost their root
# (deep async stacks of hyper/axum/openraft futures); with the maximum, 65528 bytes, ~87% unwind
# to the thread's start. That costs ~64 KiB per sample, so it samples at 199 Hz rather than
# 999 (a 10 s run makes ~100 MB of perf.data). `perf script` resolves inlined frames (about a
# minute here): with `--no-inline` every request handler, being an async fn inlined into
# hyper's dispatcher, vanished into `hyper::proto::h1::dispatch` frames.
set -euo pipefail

# shellcheck source=benches/lib/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

TIDELINE_BIN="${TIDELINE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/tideline/target}/debug/tideline}"
DURATION_S="${DURATION_S:-10}"
WARMUP_S="${WARMUP_S:-3}"
CONNS="${CONNS:-64}"
CALL_GRAPH="${CALL_GRAPH:-dwarf,65528}"
case "$CALL_GRAPH" in
  fp) PERF_FREQ="${PERF_FREQ:-999}" perf_cg=(-g) ;;
  *) PERF_FREQ="${PERF_FREQ:-199}" perf_cg=(--call-graph "$CALL_GRAPH") ;;
esac
OUT="${OUT:-$BENCH_DIR/results/write-path}"
# `perf script` is given this long to turn the samples into stacks.
PERF_SCRIPT_S_MAX=900

bench_init
need_cmd perf linux-perf
if ! command -v inferno-flamegraph >/dev/null 2>&1; then
  PATH="$HOME/.cargo/bin:$PATH"
  if ! command -v inferno-flamegraph >/dev/null 2>&1; then
    log "installing inferno into ~/.cargo/bin"
    # Its own target dir: the shared one may be locked by a long build.
    CARGO_TARGET_DIR="$BENCH_WORK/inferno-target" cargo install inferno --locked >&2
  fi
fi
mkdir -p "$(dirname "$OUT")"

log "tideline binary $TIDELINE_BIN; load average $(cut -d' ' -f1-3 /proc/loadavg)"
tideline_start "$TIDELINE_BIN"
pids="$(IFS=,; echo "${TL_PIDS[*]}")"

wrk_run "$WRK_DIR/tideline-write.lua" "$WARMUP_S" "$CONNS" "flame-warm" "${TL_URLS[@]}" >/dev/null
log "recording $pids for ${DURATION_S}s at ${PERF_FREQ} Hz, call graph ${perf_cg[*]}"
perf record -F "$PERF_FREQ" "${perf_cg[@]}" -p "$pids" -o "$BENCH_WORK/perf.data" -- sleep "$DURATION_S" \
  >"$BENCH_WORK/perf-record.log" 2>&1 &
perf_pid=$!
CHILD_PIDS+=("$perf_pid")
load="$(cut -d' ' -f1-3 /proc/loadavg)"
result="$(wrk_run "$WRK_DIR/tideline-write.lua" "$DURATION_S" "$CONNS" "flame" "${TL_URLS[@]}")"
wait "$perf_pid" || die "perf record failed; see $BENCH_WORK/perf-record.log"

log "folding stacks"
folded="$BENCH_WORK/stacks.folded"
timeout "$PERF_SCRIPT_S_MAX" perf script -i "$BENCH_WORK/perf.data" 2>"$BENCH_WORK/perf-script.log" |
  inferno-collapse-perf >"$folded"
[ -s "$folded" ] || die "no stacks folded; see $BENCH_WORK/perf-script.log"
gzip -9 -c "$folded" >"$OUT.folded.gz"
inferno-flamegraph --minwidth 0.2 --title "tideline write path: $CONNS conns, 256-byte writes, 3 nodes ($(basename "$TIDELINE_BIN"))" \
  --subtitle "$result; load $load; perf -F $PERF_FREQ ${perf_cg[*]}" <"$folded" >"$OUT.svg"
echo "$result"
log "wrote $OUT.svg ($(du -h "$OUT.svg" | cut -f1)) and $OUT.folded.gz ($(du -h "$OUT.folded.gz" | cut -f1))"
