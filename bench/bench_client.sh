#!/usr/bin/env bash
# bench/bench_client.sh — is invcore-bench a client that is not the
# bottleneck? (issue #15, `make bench`). Both load generators drive the same
# Redis PING at -P 1 with 50 connections, in alternating rounds of the same
# run, so the box's load falls on both alike:
#   redis-benchmark -t ping_mbulk -c 50 -P 1 (its default: one thread; and
#                   --threads = cores)
#   invcore-bench --target redis --scenario ping --clients 50 (its
#                   default threads against loopback: cores / 2, at least 1;
#                   and --threads = cores)
# PING does no work in the server, so the rate is the client's ceiling (and
# the server's), the same for both. Prints each round's requests/s and the
# ratio of the medians: invcore-bench / redis-benchmark (default threads of
# each); the target is >= 1.5x. Starts its own redis-server on a free
# loopback port and stops it by its pid.
#
# Knobs: ROUNDS (default 3), N (redis-benchmark requests per round, default
# 300000), DURATION (invcore-bench seconds per round, default 3), CLIENTS
# (default 50), INVCORE_BENCH (default build/invcore-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
N=${N:-300000}
DURATION=${DURATION:-3}
CLIENTS=${CLIENTS:-50}
INVCORE_BENCH=${INVCORE_BENCH:-build/invcore-bench}
CORES=$(nproc)

die() { echo "bench_client: $*" >&2; exit 1; }
for t in redis-server redis-benchmark redis-cli; do
  command -v "$t" >/dev/null || die "$t is missing (make deps)"
done
[ -x "$INVCORE_BENCH" ] || die "$INVCORE_BENCH is missing (make)"

TMP=$(mktemp -d /tmp/invcore-bench-client-XXXXXX)
REDIS_PID=""
cleanup() {
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
  >"$TMP/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 1 200); do
  redis-cli -p "$PORT" PING 2>/dev/null | grep -q PONG && break
  sleep 0.05
done
redis-cli -p "$PORT" PING | grep -q PONG || die "redis-server did not start"

# requests/s of one redis-benchmark run (its CSV's rps column)
rb() {
  redis-benchmark -p "$PORT" -c "$CLIENTS" -P 1 -n "$N" -t ping_mbulk --csv "$@" 2>/dev/null |
    awk -F'"' '/PING_MBULK/ { printf "%.0f\n", $4 }'
}
# requests/s of one invcore-bench run (its table's "(X ops/s)")
ib() {
  "$INVCORE_BENCH" --target redis --port "$PORT" --scenario ping --clients "$CLIENTS" \
    --duration "$DURATION" --quiet "$@" |
    awk '/^  ops / { gsub(/[(,]/, "", $3); print $3 }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf '%-44s %s\n' "PING -P 1 -c $CLIENTS against redis-server" "requests/s per round"
for r in $(seq 1 "$ROUNDS"); do
  rb >>"$TMP/rb1"
  ib >>"$TMP/ib"
  rb --threads "$CORES" >>"$TMP/rbT"
  ib --threads "$CORES" >>"$TMP/ibT"
done
IB_DEFAULT=$(( CORES / 2 > 0 ? CORES / 2 : 1 ))
for f in rb1 rbT ib ibT; do
  case $f in
    rb1) name="redis-benchmark (1 thread, its default)" ;;
    rbT) name="redis-benchmark --threads $CORES" ;;
    ib) name="invcore-bench (--threads $IB_DEFAULT, its default)" ;;
    ibT) name="invcore-bench --threads $CORES" ;;
  esac
  printf '%-44s %s  median %s\n' "$name" "$(tr '\n' ' ' <"$TMP/$f")" "$(median <"$TMP/$f")"
done
awk -v a="$(median <"$TMP/ib")" -v b="$(median <"$TMP/rb1")" -v c="$(median <"$TMP/rbT")" 'BEGIN {
  printf "client row: invcore-bench / redis-benchmark = %.2fx (target >= 1.5x); vs redis-benchmark --threads: %.2fx\n", a / b, a / c }'
