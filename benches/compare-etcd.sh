#!/usr/bin/env bash
# Small durable writes: Tideline against etcd, both as 3-member clusters on this machine, both
# driven by the same client (wrk) with the same value size.
#
#   etcd      POST /v3/kv/put (gRPC gateway), JSON {key, value} of a 256-byte value, new key each
#   tideline  POST /api/v1/sandboxvolumes/$VOL/files?path=/bench/…, 256-byte raw body, new path each
#
# Both keep their default durability (etcd fsyncs its WAL per commit; Tideline fsyncs its Raft
# log). Ports are picked at run time, data lives under one `mktemp -d` (on a disk, not tmpfs),
# logs at warn. Every child is killed by pid on exit; the work dir is kept if the run failed.
#
# etcd's JSON gateway is a grpc-gateway in the etcd process that calls etcd's own gRPC server
# over a loopback connection: an extra hop Tideline's HTTP API does not have, counted against etcd.
#
# For each connection count (1, 16, 64, 256) the systems alternate, ROUNDS times: etcd, tideline,
# etcd, tideline … Each run is a WARMUP_S-second unmeasured wrk run, then a DURATION_S-second
# measured one. wrk runs 3 threads, thread k connected to member k, so load is spread over all
# three members of a system (followers forward to the leader, in both systems); wrk gives each
# thread connections/3, so 16, 64, 256 become 15, 63, 255 ("wrk conns"). The 1-connection point
# goes to each system's leader.
#
# Usage:  benches/compare-etcd.sh                       (the binary the dev profile built)
#         TIDELINE_BIN=/tmp/tideline-before DURATION_S=10 ROUNDS=2 benches/compare-etcd.sh
# Other knobs: WARMUP_S (3), CONNECTIONS ("1 16 64 256"), OUT_DIR (benches/results),
#              BENCH_TMPDIR (where the work dir goes), BENCH_KEEP_WORK=1 (keep logs and data).
#
# Reading the output: one row per connection count; req/s is the mean over the rounds of the
# measured runs, p50/p99 (ms) the mean of each run's wrk percentile; ratio = tideline req/s /
# etcd req/s (> 1: Tideline is faster). The per-run lines below it show the spread between
# rounds, the 1-minute load average when each run started (it includes the benchmark's own
# servers and wrk) and `others`: the share of all cores that processes other than the six
# servers and wrk used during the run. Runs where others > OTHERS_CPU_PCT_MAX (10) are marked
# `~` and counted in the table's `noisy` column: someone else was using the CPU, so do not
# trust those numbers (rerun on a quiet machine).
# `cpu µs/req` is the CPU time (user + system) each system's three servers spent per request:
# it drifts far less than req/s when the shared machine's speed changes, so compare builds by it.
# `errors` counts non-2xx responses plus socket errors (connect/read/write/timeout); a run with
# errors is marked `!` and the script exits 3 after writing its results. The table also goes
# to OUT_DIR/compare-etcd-<UTC time>.txt, and everything (every run) to the .json beside it.
set -euo pipefail

# shellcheck source=benches/lib/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

TIDELINE_BIN="${TIDELINE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/tideline/target}/debug/tideline}"
DURATION_S="${DURATION_S:-10}"
WARMUP_S="${WARMUP_S:-3}"
ROUNDS="${ROUNDS:-2}"
CONNECTIONS="${CONNECTIONS:-1 16 64 256}"
OUT_DIR="${OUT_DIR:-$BENCH_DIR/results}"
OTHERS_CPU_PCT_MAX="${OTHERS_CPU_PCT_MAX:-10}"

bench_init
mkdir -p "$OUT_DIR"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
runs="$BENCH_WORK/runs.tsv"
: >"$runs"

log "tideline binary $TIDELINE_BIN; load average $(cut -d' ' -f1-3 /proc/loadavg)"
etcd_start
tideline_start "$TIDELINE_BIN"

# `one_run SYSTEM CONNS ROUND`: a warm-up, then a measured wrk run; appends a line to $runs.
one_run() {
  local system=$1 conns=$2 round=$3 lua
  local -a urls
  case "$system" in
    etcd) lua="$WRK_DIR/etcd-put.lua" ;;
    tideline) lua="$WRK_DIR/tideline-write.lua" ;;
  esac
  if [ "$conns" -eq 1 ]; then
    urls=("$("${system}_leader_url")")
  elif [ "$system" = etcd ]; then
    urls=("${ETCD_URLS[@]}")
  else
    urls=("${TL_URLS[@]}")
  fi
  local tag="c$conns-r$round"
  wrk_run "$lua" "$WARMUP_S" "$conns" "$tag-warm" "${urls[@]}" >/dev/null
  local load result
  load="$(cut -d' ' -f1 /proc/loadavg)"
  result="$(wrk_run "$lua" "$DURATION_S" "$conns" "$tag" "${urls[@]}")"
  log "$system conns=$conns round=$round load1=$load $result"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$system" "$conns" "$(wrk_conns "$conns")" "$round" "$load" "$result" >>"$runs"
}

# The connections wrk really opens: connections/threads per thread.
wrk_conns() {
  if [ "$1" -eq 1 ]; then echo 1; else echo $(($1 / WRK_THREADS * WRK_THREADS)); fi
}

for conns in $CONNECTIONS; do
  for round in $(seq 1 "$ROUNDS"); do
    one_run etcd "$conns" "$round"
    one_run tideline "$conns" "$round"
  done
done

meta="$(python3 -c 'import json, sys; print(json.dumps(dict(zip(sys.argv[1::2], sys.argv[2::2]))))' \
  date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  host "$(uname -n)" cpus "$(nproc)" \
  load_average_end "$(cut -d' ' -f1-3 /proc/loadavg)" \
  tideline_bin "$TIDELINE_BIN" \
  tideline_bin_sha256 "$(sha256sum "$TIDELINE_BIN" | cut -c1-16)" \
  tideline_bin_mtime "$(date -u -r "$TIDELINE_BIN" +%Y-%m-%dT%H:%M:%SZ)" \
  etcd_version "$(etcd --version | head -1)" \
  wrk_version "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)" \
  duration_s "$DURATION_S" warmup_s "$WARMUP_S" rounds "$ROUNDS" value_bytes 256 \
  others_cpu_pct_max "$OTHERS_CPU_PCT_MAX")"

rc=0
python3 - "$runs" "$OUT_DIR/compare-etcd-$stamp" "$meta" <<'EOF' || rc=$?
import json, sys

runs_path, out_base, meta = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
runs = []
for line in open(runs_path):
    system, conns, wrk_conns, rnd, load, result = line.rstrip("\n").split("\t")
    fields = dict(kv.split("=", 1) for kv in result.split()[1:])
    r = {"system": system, "connections": int(conns), "wrk_connections": int(wrk_conns),
         "round": int(rnd), "load1": float(load)}
    r.update({k: float(v) for k, v in fields.items()})
    r["errors"] = int(r["non2xx"] + r["socket_errors"])
    r["noisy"] = r["others_cpu_pct"] > float(meta["others_cpu_pct_max"])
    runs.append(r)

def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")

points = []
for conns in sorted({r["connections"] for r in runs}):
    p = {"connections": conns}
    for system in ("etcd", "tideline"):
        rs = [r for r in runs if r["system"] == system and r["connections"] == conns]
        p["wrk_connections"] = rs[0]["wrk_connections"]
        p[system] = {"rps": mean([r["rps"] for r in rs]), "p50_ms": mean([r["p50_ms"] for r in rs]),
                     "p99_ms": mean([r["p99_ms"] for r in rs]),
                     "server_cpu_us": mean([r["server_cpu_us"] for r in rs]), "errors": sum(r["errors"] for r in rs),
                     "rounds": len(rs), "noisy_runs": sum(r["noisy"] for r in rs)}
    p["ratio_tideline_over_etcd"] = p["tideline"]["rps"] / p["etcd"]["rps"] if p["etcd"]["rps"] else None
    points.append(p)

lines = [
    f"# compare-etcd  {meta['date']}  host {meta['host']} ({meta['cpus']} cpus)  load average at end {meta['load_average_end']}",
    f"# tideline {meta['tideline_bin']} (sha256 {meta['tideline_bin_sha256']}…, mtime {meta['tideline_bin_mtime']})",
    f"# {meta['etcd_version']}; {meta['wrk_version']}; 256-byte values; {meta['rounds']} rounds x "
    f"{meta['duration_s']} s measured (+{meta['warmup_s']} s warm-up); mean over rounds",
    "",
    f"{'conns':>5} {'wrk':>4} | {'etcd req/s':>10} {'p50 ms':>7} {'p99 ms':>7} | "
    f"{'tideline req/s':>14} {'p50 ms':>7} {'p99 ms':>7} | {'ratio':>6} | cpu µs/req etcd tideline | noisy | errors",
]
for p in points:
    e, t = p["etcd"], p["tideline"]
    errs = f"etcd {e['errors']}, tideline {t['errors']}" + (" !" if e["errors"] or t["errors"] else "")
    lines.append(
        f"{p['connections']:>5} {p['wrk_connections']:>4} | {e['rps']:>10.0f} {e['p50_ms']:>7.2f} {e['p99_ms']:>7.2f} | "
        f"{t['rps']:>14.0f} {t['p50_ms']:>7.2f} {t['p99_ms']:>7.2f} | {p['ratio_tideline_over_etcd']:>6.3f} | "
        f"{'':>10} {e['server_cpu_us']:>4.0f} {t['server_cpu_us']:>8.0f} | "
        f"{e['noisy_runs'] + t['noisy_runs']:>2}/{e['rounds'] + t['rounds']:<2} | {errs}")
lines += ["", "runs (in the order they ran):"]
for r in runs:
    flag = ("  ! errors" if r["errors"] else "") + ("  ~ noisy" if r["noisy"] else "")
    lines.append(
        f"  {r['system']:<8} conns={r['connections']:<3} round={r['round']} load1={r['load1']:<5} "
        f"others={r['others_cpu_pct']:>4.1f}% req/s={r['rps']:<6.0f} p50_ms={r['p50_ms']:<7.2f} p99_ms={r['p99_ms']:<7.2f} "
        f"cpu_us={r['server_cpu_us']:<5.0f} non2xx={int(r['non2xx'])} socket_errors={int(r['socket_errors'])}{flag}")
text = "\n".join(lines) + "\n"
sys.stdout.write(text)
open(out_base + ".txt", "w").write(text)
json.dump({"meta": meta, "points": points, "runs": runs}, open(out_base + ".json", "w"), indent=2)
print(f"\nwrote {out_base}.txt and {out_base}.json", file=sys.stderr)
sys.exit(3 if any(r["errors"] for r in runs) else 0)
EOF
[ "$rc" -eq 0 ] || log "some runs had errors (marked !); their numbers are not comparable"
exit "$rc"
