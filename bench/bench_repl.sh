#!/usr/bin/env bash
# bench/bench_repl.sh — what replication costs (issue #16, `make bench`):
# acknowledged adjusts/s, p50 and p99 with CLIENTS connections at -P 1 and
# -P 16 (--pipeline) of plain decrements (invcore-bench --scenario decr,
# uniform over KEYS keys, stock large enough that nothing sells out), on
#   replicated  the leader of two invcored cluster nodes (--cluster, a real
#               3-member etcd on loopback, default --threads and lease TTL),
#               the other node following as the standby
#   single      one invcored without --etcd
# both with --fsync always, in the same run. Prints the medians per
# pipeline, the ratio replicated/single of adjusts/s, whether the target
# (>= TARGET acknowledged adjusts/s with replication) is met, and whether
# the standby converged after the runs: its ROLE offset reaches the
# leader's and STATE.DIGEST is equal on both.
#
# Each pipeline runs ROUNDS times, replicated and single alternated (the
# order swapped every round, so neither always goes first) and the medians
# are taken of each column on its own: on a 2-core box shared with the
# client (and here also with etcd and the standby) one run moves a lot.
# All servers stay up for the whole run, but only one of them takes load at
# a time: the cluster idles (keep-alives only) while the single node is
# measured, and the single node idles while the cluster is.
#
# Every process runs on free loopback ports with its data in one temp dir,
# is stopped by its pid on exit (Ctrl-C included; SIGKILL after a grace),
# and the dir is removed. Exits non-zero when something did not start or a
# run failed (error replies, a failed flash-sale check, a leader change
# during a run); a missed target or a standby that did not converge is
# reported, not an exit status.
#
# Knobs: DURATION (s per run, default 5), ROUNDS (3), CLIENTS (64), KEYS
# (100000), PIPELINES ("1 16"), TARGET (50000), INVCORED (build/invcored),
# INVCORE_BENCH (build/invcore-bench), ETCD (/usr/bin/etcd).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-64}
KEYS=${KEYS:-100000}
PIPELINES=${PIPELINES:-"1 16"}
TARGET=${TARGET:-50000}
INVCORED=${INVCORED:-build/invcored}
INVCORE_BENCH=${INVCORE_BENCH:-build/invcore-bench}
ETCD=${ETCD:-/usr/bin/etcd}
STOCK=1000000000 # per key: DURATION s at any rate seen here sells none out
CLUSTER=bench
START_WAIT_S=30 # etcd must answer, and a leader be elected, within this
CONVERGE_WAIT_S=30 # the standby must reach the leader's offset within this
NODE_GRACE_S=5 # invcored: SIGTERM, then SIGKILL after this
# etcd: SIGTERM, then SIGKILL after this (as tests/etcd_harness.h): members
# stopped together may wait out their raft timers, and the data is thrown away
ETCD_GRACE_S=1
PROBE_TIMEOUT_S=2 # one redis-cli or curl probe

die() { echo "bench_repl: $*" >&2; exit 1; }
for t in redis-cli curl python3 timeout; do command -v "$t" >/dev/null || die "$t is missing"; done
[ -x "$ETCD" ] || die "$ETCD is missing (make deps: etcd-server)"
{ [ -x "$INVCORED" ] && [ -x "$INVCORE_BENCH" ]; } || die "build first (make)"

TMP=$(mktemp -d /tmp/invcore-bench-repl-XXXXXX)
NODE_PIDS=() # invcored processes, stopped first
ETCD_PIDS=() # then the etcd members

# Whether pid is gone (or only a zombie waiting to be reaped).
gone() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
  [[ $st == Z* ]]
}
# SIGTERM to each pid, SIGKILL to any alive after grace_s, all reaped.
stop_pids() { # grace_s pid...
  local grace_s=$1 p left
  shift
  [ $# -gt 0 ] || return 0
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 1 $((grace_s * 10))); do
    left=0
    for p in "$@"; do gone "$p" || left=1; done
    [ $left = 0 ] && break
    sleep 0.1
  done
  for p in "$@"; do gone "$p" || kill -KILL "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}
cleanup() {
  trap - EXIT INT TERM
  stop_pids "$NODE_GRACE_S" "${NODE_PIDS[@]}"
  # (2>/dev/null: bash's "Killed" notice of a member that outlived the grace)
  stop_pids "$ETCD_GRACE_S" "${ETCD_PIDS[@]}" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# n distinct free loopback ports (all held open until every one is read).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# The tail of a log, for a message saying what did not start.
log_tail() { echo "--- $1:"; tail -n 20 "$1" 2>/dev/null || true; }

# ---- etcd: three members on loopback ------------------------------------------
start_etcd() {
  local ports initial="" token i
  read -r -a ports <<<"$(free_ports 6)"
  for i in 0 1 2; do
    initial+="${initial:+,}m$i=http://127.0.0.1:${ports[$((3 + i))]}"
  done
  token="invcore-bench-$$-$(date +%s%N)"
  ETCD_URLS=""
  for i in 0 1 2; do
    local client="http://127.0.0.1:${ports[$i]}" peer="http://127.0.0.1:${ports[$((3 + i))]}"
    ETCD_URLS+="${ETCD_URLS:+,}$client"
    "$ETCD" --name "m$i" --data-dir "$TMP/etcd/m$i" \
      --listen-client-urls "$client" --advertise-client-urls "$client" \
      --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
      --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token "$token" \
      --heartbeat-interval 50 --election-timeout 500 --logger zap --log-outputs stderr \
      >"$TMP/etcd-m$i.log" 2>&1 &
    ETCD_PIDS+=($!)
  done
  # Each member's /health: true once the cluster has a leader and a quorum
  # read through that member went through.
  local url ok
  for _ in $(seq 1 $((START_WAIT_S * 5))); do
    ok=0
    for url in ${ETCD_URLS//,/ }; do
      curl -s --max-time "$PROBE_TIMEOUT_S" "$url/health" 2>/dev/null | grep -q '"health":"true"' &&
        ok=$((ok + 1))
    done
    [ $ok = 3 ] && return 0
    for i in 0 1 2; do
      gone "${ETCD_PIDS[$i]}" && { log_tail "$TMP/etcd-m$i.log" >&2; die "etcd member m$i exited"; }
    done
    sleep 0.2
  done
  for i in 0 1 2; do log_tail "$TMP/etcd-m$i.log" >&2; done
  die "the etcd cluster did not answer within ${START_WAIT_S} s"
}

# ---- invcored -----------------------------------------------------------------
# ROLE's lines (redis-cli prints a reply's elements one a line when not on a
# terminal): "master" offset ... | "slave" host port state offset.
role() { timeout "$PROBE_TIMEOUT_S" redis-cli -p "$1" ROLE 2>/dev/null | tr -d '\r' || true; }
role_name() { role "$1" | sed -n 1p; }
role_offset() { # port: the leader's replicated end or the standby's applied end
  role "$1" | awk 'NR == 1 { r = $0 } r == "master" && NR == 2 || r == "slave" && NR == 5 { print; exit }'
}
digest() { timeout "$PROBE_TIMEOUT_S" redis-cli -p "$1" STATE.DIGEST 2>/dev/null | tr -d '\r' || true; }

start_node() { # name port [flags...]: starts invcored, sets LAST_PID
  local name=$1 port=$2
  shift 2
  "$INVCORED" --bind 127.0.0.1 --port "$port" --http-port 0 --data-dir "$TMP/$name" \
    --fsync always "$@" >"$TMP/$name.log" 2>&1 &
  LAST_PID=$!
  NODE_PIDS+=("$LAST_PID")
}

start_cluster() {
  local ports i
  read -r -a ports <<<"$(free_ports 2)"
  NODE_PORT=("${ports[@]}")
  for i in 0 1; do
    start_node "node$i" "${NODE_PORT[$i]}" --cluster "$CLUSTER" --etcd "$ETCD_URLS" \
      --advertise "127.0.0.1:${NODE_PORT[$i]}"
    NODE_PID[i]=$LAST_PID
  done
  for _ in $(seq 1 $((START_WAIT_S * 10))); do
    for i in 0 1; do
      gone "${NODE_PID[$i]}" && { log_tail "$TMP/node$i.log" >&2; die "cluster node$i exited"; }
      if [ "$(role_name "${NODE_PORT[$i]}")" = master ]; then
        LEADER_PORT=${NODE_PORT[$i]}
        STANDBY_PORT=${NODE_PORT[$((1 - i))]}
        [ "$(role_name "$STANDBY_PORT")" = slave ] && return 0
      fi
    done
    sleep 0.1
  done
  for i in 0 1; do log_tail "$TMP/node$i.log" >&2; done
  die "no leader with a following standby within ${START_WAIT_S} s"
}

start_single() {
  SINGLE_PORT=$(free_ports 1)
  start_node single "$SINGLE_PORT"
  for _ in $(seq 1 $((START_WAIT_S * 10))); do
    timeout "$PROBE_TIMEOUT_S" redis-cli -p "$SINGLE_PORT" PING 2>/dev/null | grep -q PONG && return 0
    gone "$LAST_PID" && break
    sleep 0.1
  done
  log_tail "$TMP/single.log" >&2
  die "the single node did not answer within ${START_WAIT_S} s"
}

# ---- runs ---------------------------------------------------------------------
# One run: appends "adjusts_per_s p50_ms p99_ms" to file; fails on error
# replies or a failed flash-sale check. A server's first run preloads the
# keys (STOCK each, which no later run sells out); later runs check against
# the state they read before they start (a preload of KEYS through the
# replicated path costs more than a run).
declare -A PRELOADED
run() { # what port pipeline file
  local what=$1 port=$2 pipe=$3 file=$4 preload=()
  [ -n "${PRELOADED[$port]:-}" ] || preload=(--preload)
  "$INVCORE_BENCH" --port "$port" --scenario decr --keys "uniform:$KEYS" --stock "$STOCK" \
    "${preload[@]}" --clients "$CLIENTS" --pipeline "$pipe" --duration "$DURATION" \
    --quiet --json - 2>"$TMP/run.err" >"$TMP/run.json" ||
    { cat "$TMP/run.err" >&2; die "$what -P $pipe: invcore-bench failed"; }
  python3 - "$TMP/run.json" >>"$file" <<'PY' || die "$what -P $pipe: the run was not clean"
import json, sys
d = json.load(open(sys.argv[1]))
if d["errors"] or (d["check"]["checked"] and not d["check"]["ok"]):
    sys.exit("bench_repl: %d error replies, check %s" % (d["errors"], d["check"]))
print("%.0f %.3f %.3f" % (d["ops_per_s"], d["latency_ms"]["p50"], d["latency_ms"]["p99"]))
PY
  PRELOADED[$port]=1
  if [ "$what" = replicated ] && [ "$(role_name "$LEADER_PORT")" != master ]; then
    die "the leader on port $LEADER_PORT lost its lease during a run"
  fi
}

# The median of each column of a file of "ops p50 p99" lines.
medians() {
  python3 - "$1" <<'PY'
import statistics, sys
rows = [list(map(float, line.split())) for line in open(sys.argv[1]) if line.strip()]
ops, p50, p99 = (statistics.median(col) for col in zip(*rows))
print("%.0f %.3f %.3f" % (ops, p50, p99))
PY
}

# Whether the standby's applied offset reached the leader's and both
# answer the same STATE.DIGEST ("yes"/"no: why").
converged() {
  local want have dl ds
  want=$(role_offset "$LEADER_PORT")
  [ -n "$want" ] || { echo "no: the leader did not answer ROLE"; return; }
  for _ in $(seq 1 $((CONVERGE_WAIT_S * 10))); do
    have=$(role_offset "$STANDBY_PORT")
    [ -n "$have" ] && [ "$have" -ge "$want" ] && break
    sleep 0.1
  done
  if [ -z "$have" ] || [ "$have" -lt "$want" ]; then
    echo "no: the standby is at offset ${have:-?} of $want after ${CONVERGE_WAIT_S} s"
    return
  fi
  dl=$(digest "$LEADER_PORT")
  ds=$(digest "$STANDBY_PORT")
  if [ -n "$dl" ] && [ "$dl" = "$ds" ]; then
    echo "yes (offset $have of $want, digest $dl)"
  else
    echo "no: digests differ (leader ${dl:-?}, standby ${ds:-?}) at offset $have of $want"
  fi
}

T0=$(date +%s)
start_etcd
start_cluster
start_single
echo "etcd $ETCD_URLS; leader :$LEADER_PORT, standby :$STANDBY_PORT; single node :$SINGLE_PORT"

printf '%3s | %12s %7s %7s | %12s %7s %7s | %s\n' P "repl adj/s" p50 p99 \
  "single adj/s" p50 p99 "repl/single"
declare -A REPL_OPS
for pipe in $PIPELINES; do
  : >"$TMP/repl.$pipe"
  : >"$TMP/single.$pipe"
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
      run replicated "$LEADER_PORT" "$pipe" "$TMP/repl.$pipe"
      run single "$SINGLE_PORT" "$pipe" "$TMP/single.$pipe"
    else
      run single "$SINGLE_PORT" "$pipe" "$TMP/single.$pipe"
      run replicated "$LEADER_PORT" "$pipe" "$TMP/repl.$pipe"
    fi
  done
  read -r ro rp50 rp99 <<<"$(medians "$TMP/repl.$pipe")"
  read -r so sp50 sp99 <<<"$(medians "$TMP/single.$pipe")"
  REPL_OPS[$pipe]=$ro
  printf 'P%-2s | %12s %7s %7s | %12s %7s %7s | %.2fx\n' "$pipe" "$ro" "$rp50" "$rp99" \
    "$so" "$sp50" "$sp99" "$(awk -v a="$ro" -v b="$so" 'BEGIN { print a / b }')"
done
echo "(ms for p50/p99; invcore-bench $CLIENTS connections, decr over $KEYS keys;" \
  "medians of $ROUNDS alternated runs of $DURATION s; both --fsync always)"
for pipe in $PIPELINES; do # each round's adjusts/s, to see the spread behind a median
  echo "rounds P$pipe: replicated $(awk '{ printf "%s ", $1 }' "$TMP/repl.$pipe")|" \
    "single $(awk '{ printf "%s ", $1 }' "$TMP/single.$pipe")"
done
for pipe in $(echo "$PIPELINES" | tr ' ' '\n' | sort -rn); do
  ops=${REPL_OPS[$pipe]}
  if [ "$ops" -ge "$TARGET" ]; then verdict=met; else verdict="NOT met"; fi
  echo "target >= $TARGET/s with replication: $verdict (P$pipe $ops/s)"
done
echo "standby converged: $(converged)"
echo "took $(($(date +%s) - T0)) s"
