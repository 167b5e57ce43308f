# shellcheck shell=bash
# Sourced by benches/compare-etcd.sh and benches/flamegraph.sh: start a 3-member etcd cluster
# and a 3-node Tideline cluster on 127.0.0.1 (ports picked at run time, data under one work
# dir), find each leader, drive a system with wrk, and stop every child by pid on exit.
#
#   bench_init                      work dir ($BENCH_WORK), the exit trap, tool checks
#   etcd_start                      ETCD_URLS[0..2], ETCD_PIDS (retried if a member dies starting)
#   tideline_start BIN              TL_URLS[0..2], TL_PIDS, TL_ADMIN, TL_TOKEN, TL_VOL
#   etcd_leader_url / tideline_leader_url
#   wrk_run LUA SECONDS CONNS TAG URL...   prints wrk's RESULT line (see benches/wrk/common.lua)
#
# Every wait has a deadline; nothing listens beyond loopback; children are killed by pid only.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WRK_DIR="$BENCH_DIR/wrk"
# How long a cluster may take to come up (a leader, every member healthy), in seconds.
CLUSTER_START_S_MAX=60
# wrk's per-request timeout: a request slower than this counts as a socket error (timeout).
WRK_TIMEOUT_S=10
# wrk runs one thread per member (the point with 1 connection uses one thread, to the leader).
WRK_THREADS=3

CHILD_PIDS=()
ETCD_URLS=()
ETCD_PIDS=()
TL_URLS=()
TL_PIDS=()

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages whose commands are missing (`need_cmd CMD PACKAGE`).
need_cmd() {
  command -v "$1" >/dev/null 2>&1 && return 0
  log "installing $2 (for $1)"
  as_root apt-get install -y "$2" >&2 || {
    as_root apt-get update >&2
    as_root apt-get install -y "$2" >&2
  }
  command -v "$1" >/dev/null 2>&1 || die "$1 still missing after installing $2"
}

# `free_ports N`: N distinct TCP ports on 127.0.0.1 nobody listens on right now (the kernel
# picks them, all bound at once so none comes out twice). Someone may still take one before
# our server binds it: the cluster starts below retry on a member that exits while starting.
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# `wait_until SECONDS WHAT CMD...`: retries CMD every 0.2 s until it succeeds; fails (returns
# 1) at the deadline, or as soon as one of the pids in $WAIT_PIDS has exited.
WAIT_PIDS=()
wait_until() {
  local secs=$1 what=$2 pid
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    for pid in "${WAIT_PIDS[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        log "$what: process $pid exited"
        return 1
      fi
    done
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$what: not within ${secs}s"
      return 1
    fi
    sleep 0.2
  done
}

# `kill_pids PID...`: SIGTERM, up to 10 s to exit, then SIGKILL; by pid only.
kill_pids() {
  local pid deadline=$((SECONDS + 10))
  for pid in "$@"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "$@"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# `start_with_retries NAME FN ARGS...`: FN starts a cluster and returns 1 if it did not come
# up (it cleans up after itself); a port taken between free_ports and bind is worth a retry.
start_with_retries() {
  local name=$1 attempt
  shift
  for attempt in 1 2 3; do
    "$@" && return 0
    log "$name did not start (attempt $attempt of 3); logs in $BENCH_WORK"
  done
  die "$name did not start"
}

# `stop_pids PID...`: kill_pids, and forget them (a pid must not be killed again once reused).
stop_pids() {
  local pid d dead keep=()
  kill_pids "$@"
  for pid in "${CHILD_PIDS[@]}"; do
    dead=0
    for d in "$@"; do [ "$pid" != "$d" ] || dead=1; done
    [ "$dead" = 1 ] || keep+=("$pid")
  done
  CHILD_PIDS=("${keep[@]}")
}

stop_children() {
  kill_pids "${CHILD_PIDS[@]}"
  CHILD_PIDS=()
}

on_exit() {
  local rc=$?
  stop_children
  if [ -n "${BENCH_WORK:-}" ] && [ -d "$BENCH_WORK" ]; then
    if [ "${BENCH_KEEP_WORK:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
      log "work dir (logs, data) kept: $BENCH_WORK"
    else
      rm -rf "$BENCH_WORK"
    fi
  fi
  exit "$rc"
}

# The work dir must be on a real disk: on tmpfs fsync costs nothing and durability is fake.
bench_init() {
  need_cmd python3 python3
  need_cmd curl curl
  need_cmd wrk wrk
  BENCH_WORK="$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/tideline-bench.XXXXXX")"
  trap on_exit EXIT
  trap 'exit 130' INT TERM
  local fs
  fs="$(stat -f -c %T "$BENCH_WORK")"
  case "$fs" in
    tmpfs | ramfs) die "$BENCH_WORK is on $fs (fsync is free there); set BENCH_TMPDIR to a dir on a disk" ;;
  esac
  log "work dir $BENCH_WORK ($fs)"
}

# --- etcd -------------------------------------------------------------------------------------

etcd_start() {
  need_cmd etcd etcd-server
  need_cmd etcdctl etcd-client
  start_with_retries etcd etcd_start_once
  log "etcd: ${ETCD_URLS[*]} (pids ${ETCD_PIDS[*]}), leader $(etcd_leader_url)"
}

etcd_start_once() {
  local i cluster="" attempt_dir
  local -a cports pports
  read -r -a cports <<<"$(free_ports 3)"
  read -r -a pports <<<"$(free_ports 3)"
  for i in 0 1 2; do
    cluster+="${cluster:+,}m$i=http://127.0.0.1:${pports[i]}"
  done
  attempt_dir="$(mktemp -d "$BENCH_WORK/etcd.XXXX")"
  ETCD_URLS=()
  ETCD_PIDS=()
  for i in 0 1 2; do
    # Defaults otherwise (fsync on every commit, snapshot count, quota): the durable setup.
    # Logs at warn to a file, so logging costs it nothing on the write path.
    etcd --name "m$i" --data-dir "$attempt_dir/m$i" \
      --listen-client-urls "http://127.0.0.1:${cports[i]}" --advertise-client-urls "http://127.0.0.1:${cports[i]}" \
      --listen-peer-urls "http://127.0.0.1:${pports[i]}" --initial-advertise-peer-urls "http://127.0.0.1:${pports[i]}" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "bench-$$" \
      --logger zap --log-level warn --log-outputs stderr \
      >"$attempt_dir/m$i.log" 2>&1 </dev/null &
    ETCD_PIDS+=($!)
    CHILD_PIDS+=($!)
    ETCD_URLS+=("http://127.0.0.1:${cports[i]}")
  done
  WAIT_PIDS=("${ETCD_PIDS[@]}")
  if wait_until "$CLUSTER_START_S_MAX" "etcd cluster healthy" \
    etcdctl --endpoints="$(etcd_endpoints)" --command-timeout=2s endpoint health &&
    wait_until "$CLUSTER_START_S_MAX" "etcd leader" etcd_leader_url; then
    WAIT_PIDS=()
    return 0
  fi
  WAIT_PIDS=()
  stop_pids "${ETCD_PIDS[@]}"
  return 1
}

etcd_endpoints() {
  local IFS=,
  echo "${ETCD_URLS[*]}"
}

# The client URL of the member that is leader (it reports itself as the leader).
etcd_leader_url() {
  etcdctl --endpoints="$(etcd_endpoints)" --command-timeout=2s endpoint status -w json |
    python3 -c '
import json, sys
for m in json.load(sys.stdin):
    s = m["Status"]
    if s["leader"] and s["header"]["member_id"] == s["leader"]:
        print(m["Endpoint"]); break
else:
    sys.exit(1)'
}

# --- Tideline ---------------------------------------------------------------------------------

# `tl_api METHOD URL TOKEN [JSON]`: the `data` of the envelope as JSON, or fail.
tl_api() {
  local method=$1 url=$2 token=$3 body=${4:-}
  local args=(-sS --max-time 10 -X "$method" "$url" -H "Authorization: Bearer $token")
  [ -z "$body" ] || args+=(-H 'Content-Type: application/json' -d "$body")
  curl "${args[@]}" | python3 -c '
import json, sys
r = json.load(sys.stdin)
if not r.get("success"):
    sys.exit("tideline: %s" % json.dumps(r))
print(json.dumps(r["data"]))'
}

# The base URL of the node the cluster agrees is leader, with all three nodes voters.
tideline_leader_url() {
  local status
  status="$(tl_api GET "${TL_URLS[0]}/api/v1/cluster" "$TL_ADMIN")" || return 1
  python3 -c '
import json, sys
s = json.loads(sys.argv[1]); urls = sys.argv[2:]
voters = [n for n in s["nodes"] if n["voter"]]
if s["leader_id"] is None or len(voters) != len(urls):
    sys.exit(1)
print(urls[s["leader_id"] - 1])' "$status" "${TL_URLS[@]}"
}

# `tideline_start BIN`: three nodes started together with the same --peers (node 1, the lowest
# id, initializes the cluster), one shared object store dir, one admin token and secret; then a
# team token and a volume created through the API.
tideline_start() {
  local bin=$1
  [ -x "$bin" ] || die "no tideline binary at $bin (build it, or set TIDELINE_BIN)"
  # The shared target dir also receives `--features tideline/planted-bugs` builds (jepsen's
  # deliberate bugs) at the same path; such a binary accepts the hidden flag: refuse it.
  if "$bin" server --planted-bug none --help >/dev/null 2>&1; then
    die "$bin was built with the planted-bugs feature; build without it, or copy a clean one"
  fi
  TL_ADMIN="tla_bench_$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  start_with_retries tideline tideline_start_once "$bin"
  TL_TOKEN="$(tl_api POST "${TL_URLS[0]}/api/v1/tokens" "$TL_ADMIN" \
    '{"team_id":"bench","permissions":["*"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
  TL_VOL="$(tl_api POST "${TL_URLS[0]}/api/v1/sandboxvolumes" "$TL_TOKEN" '{}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
  log "tideline: ${TL_URLS[*]} (pids ${TL_PIDS[*]}), leader $(tideline_leader_url), volume $TL_VOL"
}

tideline_start_once() {
  local bin=$1 i peers="" url attempt_dir secret
  local -a ports
  local nodes=${TL_NODES:-3} last
  last=$((nodes - 1))
  read -r -a ports <<<"$(free_ports "$nodes")"
  for i in $(seq 0 "$last"); do
    peers+="${peers:+,}$((i + 1))=127.0.0.1:${ports[i]}"
  done
  secret="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  attempt_dir="$(mktemp -d "$BENCH_WORK/tideline.XXXX")"
  mkdir -p "$attempt_dir/objects"
  TL_URLS=()
  TL_PIDS=()
  for i in $(seq 0 "$last"); do
    # Default durability (the Raft log is fsynced before an entry counts). The admin token and
    # secret go through the environment, not argv, so `ps` does not show them.
    # RUST_LOG=warn: like etcd's --log-level warn, no per-request logging on the write path.
    TIDELINE_ADMIN_TOKEN="$TL_ADMIN" TIDELINE_CLUSTER_SECRET="$secret" RUST_LOG=warn \
      "$bin" server --node-id "$((i + 1))" --listen "127.0.0.1:${ports[i]}" \
      --data-dir "$attempt_dir/node$((i + 1))" --peers "$peers" \
      --object-store "file://$attempt_dir/objects" \
      >"$attempt_dir/node$((i + 1)).log" 2>&1 </dev/null &
    TL_PIDS+=($!)
    CHILD_PIDS+=($!)
    TL_URLS+=("http://127.0.0.1:${ports[i]}")
  done
  WAIT_PIDS=("${TL_PIDS[@]}")
  local ok=1
  for url in "${TL_URLS[@]}"; do
    [ "$ok" = 0 ] || wait_until "$CLUSTER_START_S_MAX" "tideline $url healthy" curl -fsS --max-time 2 "$url/healthz" || ok=0
  done
  [ "$ok" = 0 ] || wait_until "$CLUSTER_START_S_MAX" "tideline leader with $nodes voters" tideline_leader_url || ok=0
  for url in "${TL_URLS[@]}"; do
    [ "$ok" = 0 ] || wait_until "$CLUSTER_START_S_MAX" "tideline $url ready" curl -fsS --max-time 2 "$url/readyz" || ok=0
  done
  WAIT_PIDS=()
  [ "$ok" = 1 ] && return 0
  stop_pids "${TL_PIDS[@]}"
  return 1
}

# --- wrk --------------------------------------------------------------------------------------

# Busy CPU time of the whole machine so far, in clock ticks: user, nice and system (not irq and
# softirq time, which the kernel does not charge to any process: loopback traffic lands there).
cpu_busy_ticks() {
  awk '/^cpu / { print $2 + $3 + $4 }' /proc/stat
}

# CPU time our servers (CHILD_PIDS) used so far, in clock ticks.
children_ticks() {
  local pid sum=0 t
  for pid in "${CHILD_PIDS[@]}"; do
    # Fields after "pid (comm) ": utime and stime are the 12th and 13th.
    t="$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }')" || continue
    sum=$((sum + ${t:-0}))
  done
  echo "$sum"
}

# `wrk_run LUA SECONDS CONNS TAG URL...`: one wrk process; with one connection, one thread to
# the first URL; otherwise $WRK_THREADS threads, thread k connected to URL k (wrk gives each
# thread CONNS/threads connections, so CONNS should be a multiple of the thread count).
# Prints the script's `RESULT …` line plus `others_cpu_pct=`: the share of the machine's CPU
# (all cores) that processes other than our servers and wrk used during the run. A few percent
# is the kernel and daemons; much more means someone else was busy and the run is noise.
# And `server_cpu_us=`: CPU time (user + system) all our servers used per request, in µs. On a
# shared machine whose speed drifts between minutes it moves far less than req/s does, so it is
# the figure to compare two builds by (the idle system's heartbeats are in it, a few µs).
wrk_run() {
  local lua=$1 secs=$2 conns=$3 tag=$4
  shift 4
  local threads=$WRK_THREADS members
  [ "$conns" -gt 1 ] || threads=1
  members="$(printf '%s,' "$@" | sed -e 's#http://##g' -e 's/,$//')"
  local out="$BENCH_WORK/wrk-$tag.out"
  local busy0 ours0 t0 busy1 ours1 t1 wrk_cpu TIMEFORMAT='%3U %3S'
  busy0=$(cpu_busy_ticks)
  ours0=$(children_ticks)
  t0=$EPOCHREALTIME
  {
    time WRK_MEMBERS="$members" WRK_TAG="$tag" WRK_LIB="$WRK_DIR/common.lua" \
      TIDELINE_TOKEN="${TL_TOKEN:-}" TIDELINE_VOLUME="${TL_VOL:-}" \
      timeout --kill-after=5 $((secs + 30)) \
      wrk -t "$threads" -c "$conns" -d "${secs}s" --timeout "${WRK_TIMEOUT_S}s" -s "$lua" "$1" \
      >"$out" 2>&1
  } 2>"$out.cpu" || die "wrk failed ($tag); see $out"
  t1=$EPOCHREALTIME
  busy1=$(cpu_busy_ticks)
  ours1=$(children_ticks)
  wrk_cpu="$(cat "$out.cpu")"
  local result
  result="$(grep '^RESULT ' "$out")" || die "wrk printed no RESULT line ($tag); see $out"
  local extra
  extra="$(python3 -c '
import os, sys
busy, ours, wrk_s, secs, result = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
hz = os.sysconf("SC_CLK_TCK")
others = busy / hz - ours / hz - wrk_s
requests = int(dict(kv.split("=", 1) for kv in result.split()[1:])["requests"])
print("others_cpu_pct=%.1f server_cpu_us=%.1f" % (
    max(0.0, 100 * others / (secs * os.cpu_count())), 1e6 * ours / hz / max(requests, 1)))' \
    $((busy1 - busy0)) $((ours1 - ours0)) "$(echo "$wrk_cpu" | awk '{ print $1 + $2 }')" \
    "$(echo "$t1 - $t0" | awk '{ print $1 - $3 }')" "$result")"
  echo "$result $extra"
}
