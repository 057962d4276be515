#!/usr/bin/env bash
# bench/bench_http.sh — invcored's HTTP face under wrk, next to nginx
# answering a static JSON body of the same size (issue #13, `make bench`).
#
# One run prints, per row, req/s and p99 for invcored and for nginx, the
# ratio invcored/nginx and the target (>= 0.7x on the write rows):
#   set     Shoplazza POST /openapi/2026-01/inventory_levels/set
#   adjust  Shopify   POST /admin/api/$SHOPIFY_VERSION/inventory_levels/adjust.json
#   inv     Shoplazza GET  /openapi/2026-01/products/{id}/inventory
#
# invcored does real work: journal on (--data-dir in a temp dir, --fsync
# interval), a token checked on every request (--requirepass), every request
# on another item of a preloaded set (bench/http/rows.lua walks it), data
# preloaded over RESP with redis-cli --pipe. nginx (bench/http/nginx.conf.in)
# answers each row's path with the body invcored answered for that row, so
# both send the same body bytes; both run on the same number of cores
# (invcored --threads = nginx worker_processes = SERVER_THREADS) and are
# driven by the same wrk script with the same threads, connections and
# duration. Both servers are started here, on free loopback ports, and
# stopped by their pids; everything they write is in a temp dir.
#
# Besides req/s and p99 it prints the server's CPU time per request (from
# /proc: invcored's process, nginx's master and workers), which says more
# than req/s on a box shared with other work, and the journal records
# invcored wrote during each write row (proof that the engine worked).
#
# Fails (exit 1) when a tool is missing, a server does not start or dies, a
# probe answers other than 200, or any wrk error count is not 0 (a non-2xx
# status, a socket error, a timeout): a row of error responses never
# reports a fast number. A ratio under the target is reported, and fails the
# run only with BENCH_HTTP_STRICT=1 (shared boxes are noisy).
#
# Knobs: INVCORED (binary, default build/invcored), SERVER_THREADS (cores
# for each server, default 1: on a 2-core box wrk gets the other core),
# WRK_THREADS (default 1), CONNECTIONS (default 32), DURATION (seconds per
# round, default 3), ROUNDS (per row and server, default 2, run in ABBA
# order), WARMUP (seconds per row and server first, default 1), N (items
# per write row and products of the inv row, default 10000), VARIANTS (items
# per product, default 4), SHOPIFY_VERSION (default 2021-04: the adjust path
# needs a version the Shopify dialect serves, the seed's 2020-01 … 2021-04
# and unstable), ROWS (default "set adjust inv"), BENCH_HTTP_TARGET
# (default 0.7), BENCH_HTTP_STRICT (default 0).
set -euo pipefail

cd "$(dirname "$0")/.."
INVCORED=${INVCORED:-build/invcored}
SERVER_THREADS=${SERVER_THREADS:-1}
WRK_THREADS=${WRK_THREADS:-1}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-3}
ROUNDS=${ROUNDS:-2}
WARMUP=${WARMUP:-1}
N=${N:-10000}
VARIANTS=${VARIANTS:-4}
SHOPIFY_VERSION=${SHOPIFY_VERSION:-2021-04}
ROWS=${ROWS:-set adjust inv}
TARGET=${BENCH_HTTP_TARGET:-0.7}
STRICT=${BENCH_HTTP_STRICT:-0}
LUA=bench/http/rows.lua
NGINX_CONF_IN=bench/http/nginx.conf.in

# Fixed-width ids (seven digits), so every response of a row has one length:
# the set row's items, the adjust row's items, the products' items.
SET_BASE=1000000
ADJ_BASE=2000000
PROD_ITEM_BASE=3000000
PROD_BASE=1          # product k is 00000000-0000-4000-8000-<k, 12 digits>
LOC=42
START_STOCK=5000000  # adjust moves it by one unit at most: still 7 digits
TOKEN=bench-http-token
N_MAX=200000         # keeps the ids at seven digits (N * VARIANTS < 10^6)

die() { echo "bench_http: $*" >&2; exit 1; }

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
for k in SERVER_THREADS WRK_THREADS CONNECTIONS DURATION ROUNDS WARMUP N VARIANTS; do
  is_uint "${!k}" && [ "${!k}" -ge 1 ] || die "$k must be a positive integer, not '${!k}'"
done
[ "$N" -le "$N_MAX" ] && [ $(( N * VARIANTS )) -lt 1000000 ] ||
  die "N (at most $N_MAX) times VARIANTS must stay under 10^6 (seven-digit ids)"
[ "$CONNECTIONS" -ge "$WRK_THREADS" ] || die "CONNECTIONS must be at least WRK_THREADS"
for r in $ROWS; do
  case "$r" in set|adjust|inv) ;; *) die "ROWS: unknown row '$r' (set, adjust, inv)" ;; esac
done

for t in wrk nginx redis-cli curl awk; do
  command -v "$t" >/dev/null || die "$t not installed (make deps installs wrk, nginx-light, redis-tools)"
done
[ -x "$INVCORED" ] || die "$INVCORED not built (make)"
[ -r "$LUA" ] && [ -r "$NGINX_CONF_IN" ] || die "$LUA or $NGINX_CONF_IN missing"

TMP=$(mktemp -d /tmp/invcore-bench-http-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# A loopback port nothing answers on (nginx needs one named; invcored takes
# port 0 and says which it got).
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( (RANDOM % 30000) + 20000 ))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return 0; fi
  done
  die "no free loopback port"
}

# CPU ticks (user + system) of a pid and its children (nginx's workers).
cpu_ticks() { # pid
  local total=0 p f
  for p in "$1" $(pgrep -P "$1" 2>/dev/null); do
    f=$(cat /proc/"$p"/stat 2>/dev/null) || continue
    f=${f##*) }                      # fields after "pid (comm) "
    set -- $f
    total=$(( total + ${12} + ${13} )) # utime, stime (fields 14, 15)
  done
  echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)

# ---- invcored -------------------------------------------------------------

mkdir -p "$TMP/invcored"
"$INVCORED" --port 0 --bind 127.0.0.1 --threads "$SERVER_THREADS" \
  --data-dir "$TMP/invcored/data" --fsync interval --requirepass "$TOKEN" \
  --maxclients 4096 </dev/null >/dev/null 2>"$TMP/invcored/log" &
I_PID=$!
PIDS+=("$I_PID")
I_PORT="" H_PORT=""
for _ in $(seq 1 200); do
  if grep -q "listening on" "$TMP/invcored/log"; then
    I_PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$TMP/invcored/log" | head -1)
    H_PORT=$(sed -n 's/.*listening on.* http=\([0-9]*\).*/\1/p' "$TMP/invcored/log" | head -1)
    break
  fi
  kill -0 "$I_PID" 2>/dev/null || break
  sleep 0.05
done
[ -n "$I_PORT" ] && [ -n "$H_PORT" ] && [ "$H_PORT" != 0 ] || {
  cat "$TMP/invcored/log" >&2; die "invcored did not start with an HTTP port"; }

check_alive() { # pid name log
  kill -0 "$1" 2>/dev/null && return 0
  echo "bench_http: $2 (pid $1) is no longer running; log tail:" >&2
  tail -20 "$3" >&2 || true
  exit 1
}

# Preload over RESP: location LOC; the set and adjust rows' N items each and
# the N products of VARIANTS items each, every item tracked with a level of
# START_STOCK at LOC.
preload() {
  awk -v n="$N" -v v="$VARIANTS" -v sb="$SET_BASE" -v ab="$ADJ_BASE" \
      -v pib="$PROD_ITEM_BASE" -v pb="$PROD_BASE" -v loc="$LOC" \
      -v stock="$START_STOCK" -v tok="$TOKEN" '
    function arg(x) { return sprintf("$%d\r\n%s\r\n", length(x), x) }
    function guid(k) { return sprintf("00000000-0000-4000-8000-%012d", k) }
    function level(id) { printf "*4\r\n%s%s%s%s", arg("LEVEL.SET"), arg(id), arg(loc), arg(stock) }
    function item(id) { printf "*4\r\n%s%s%s%s", arg("ITEM.SET"), arg(id), arg("tracked"), arg("1") }
    function pitem(id, p) {
      printf "*8\r\n%s%s%s%s%s%s%s%s", arg("ITEM.SET"), arg(id), arg("tracked"), arg("1"),
        arg("variant"), arg(guid(id)), arg("product"), arg(guid(p)) }
    BEGIN {
      printf "*2\r\n%s%s", arg("AUTH"), arg(tok)
      printf "*4\r\n%s%s%s%s", arg("LOC.SET"), arg(loc), arg("name"), arg("bench")
      for (i = 0; i < n; i++) { item(sb + i); level(sb + i); item(ab + i); level(ab + i) }
      for (k = 0; k < n; k++)
        for (j = 0; j < v; j++) { id = pib + k * v + j; pitem(id, pb + k); level(id) }
    }' | redis-cli -p "$I_PORT" --pipe >"$TMP/preload.out" 2>&1 ||
    { cat "$TMP/preload.out" >&2; die "preload over RESP failed"; }
  grep -q "errors: 0," "$TMP/preload.out" ||
    { cat "$TMP/preload.out" >&2; die "preload over RESP: some commands were refused"; }
}
preload

# ---- the rows' requests (the same as rows.lua sends; curl for the probes) ---

row_title() {
  case "$1" in
    set) echo "Shoplazza POST inventory_levels/set" ;;
    adjust) echo "Shopify POST inventory_levels/adjust.json" ;;
    inv) echo "Shoplazza GET products/{id}/inventory" ;;
  esac
}

# One request of the row with curl: prints the body to $3, returns the
# status in STATUS.
probe() { # row port bodyfile
  local guid
  guid=$(printf '00000000-0000-4000-8000-%012d' "$PROD_BASE")
  case "$1" in
    set) STATUS=$(curl -s -o "$3" -w '%{http_code}' -H "Access-Token: $TOKEN" \
           -H 'Content-Type: application/json' \
           --data "{\"inventory_item_id\":\"$SET_BASE\",\"location_id\":\"$LOC\",\"stock\":123}" \
           "http://127.0.0.1:$2/openapi/2026-01/inventory_levels/set") ;;
    adjust) STATUS=$(curl -s -o "$3" -w '%{http_code}' -H "X-Shopify-Access-Token: $TOKEN" \
           -H 'Content-Type: application/json' \
           --data "{\"location_id\":$LOC,\"inventory_item_id\":$ADJ_BASE,\"available_adjustment\":-1}" \
           "http://127.0.0.1:$2/admin/api/$SHOPIFY_VERSION/inventory_levels/adjust.json") ;;
    inv) STATUS=$(curl -s -o "$3" -w '%{http_code}' -H "Access-Token: $TOKEN" \
           "http://127.0.0.1:$2/openapi/2026-01/products/$guid/inventory") ;;
  esac
  # the adjust probe took a unit: give it back so the walk stays at 5000000 +- 1
  if [ "$1" = adjust ] && [ "$STATUS" = 200 ] && [ "$2" = "$H_PORT" ]; then
    curl -s -o /dev/null -H "X-Shopify-Access-Token: $TOKEN" \
      --data "{\"location_id\":$LOC,\"inventory_item_id\":$ADJ_BASE,\"available_adjustment\":1}" \
      "http://127.0.0.1:$2/admin/api/$SHOPIFY_VERSION/inventory_levels/adjust.json"
  fi
}

# What a row's body must hold to be the right answer (not an error shape).
expect_in_body() {
  case "$1" in
    set) echo '"code":"Success","data":{"inventory_level":' ;;
    adjust) echo '{"inventory_level":{"inventory_item_id":' ;;
    inv) echo '"code":"Success","data":{"product_id":' ;;
  esac
}

declare -A BODY_BYTES
for r in set adjust inv; do
  probe "$r" "$H_PORT" "$TMP/body.$r"
  [ "$STATUS" = 200 ] || die "probe of row $r: invcored answered $STATUS: $(head -c 300 "$TMP/body.$r")"
  grep -qF "$(expect_in_body "$r")" "$TMP/body.$r" ||
    die "probe of row $r: unexpected body: $(head -c 300 "$TMP/body.$r")"
  grep -q "[\$'\\\\]" "$TMP/body.$r" && die "probe of row $r: body has \$, ' or \\ (cannot go in nginx's return)"
  BODY_BYTES[$r]=$(wc -c <"$TMP/body.$r")
done

# ---- nginx ------------------------------------------------------------------

NGX=$TMP/nginx
mkdir -p "$NGX/tmp"
N_PORT=$(free_port)
conf=$(<"$NGINX_CONF_IN")
conf=${conf//@PREFIX@/"$NGX"}
conf=${conf//@PORT@/"$N_PORT"}
conf=${conf//@WORKERS@/"$SERVER_THREADS"}
conf=${conf//@SHOPIFY@/"$SHOPIFY_VERSION"}
conf=${conf//@SET_BODY@/"$(<"$TMP/body.set")"}
conf=${conf//@ADJUST_BODY@/"$(<"$TMP/body.adjust")"}
conf=${conf//@INV_BODY@/"$(<"$TMP/body.inv")"}
printf '%s\n' "$conf" >"$NGX/nginx.conf"
nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" </dev/null >"$NGX/stdout" 2>&1 &
N_PID=$!
PIDS+=("$N_PID")
up=0
for _ in $(seq 1 200); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$N_PORT/")" = 404 ]; then
    up=1; break; fi
  kill -0 "$N_PID" 2>/dev/null || break
  sleep 0.05
done
[ "$up" = 1 ] || { cat "$NGX/stdout" "$NGX/error.log" >&2 2>/dev/null; die "nginx did not start"; }
for r in set adjust inv; do
  probe "$r" "$N_PORT" "$TMP/nbody.$r"
  [ "$STATUS" = 200 ] && cmp -s "$TMP/body.$r" "$TMP/nbody.$r" ||
    die "probe of row $r: nginx did not answer 200 with invcored's body"
done

# ---- rows ---------------------------------------------------------------------

journal_records() {
  curl -s -H "Access-Token: $TOKEN" "http://127.0.0.1:$H_PORT/metrics" |
    awk '$1 ~ /^invcore_journal_records_written_total([{]|$)/ { n += $2 } END { print n + 0 }'
}

# Runs wrk on a port for a duration and adds its counts to the server's
# totals (TOT_REQS, TOT_US, TOT_TICKS, P99_MAX_US, indexed by label). Any
# wrk error is fatal: a row of errors never reports a number.
declare -A TOT_REQS TOT_US TOT_TICKS P99_MAX_US
run_wrk() { # row port seconds server-pid label
  local out=$TMP/wrk.$1.$5 t0 t1 line
  t0=$(cpu_ticks "$4")
  BENCH_HTTP_N=$N BENCH_HTTP_SET_BASE=$SET_BASE BENCH_HTTP_ADJ_BASE=$ADJ_BASE \
  BENCH_HTTP_PROD_BASE=$PROD_BASE BENCH_HTTP_LOC=$LOC BENCH_HTTP_TOKEN=$TOKEN \
  BENCH_HTTP_SHOPIFY=$SHOPIFY_VERSION \
    wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${3}s" -s "$LUA" \
      "http://127.0.0.1:$2" -- "$1" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed on row $1 ($5)"; }
  t1=$(cpu_ticks "$4")
  line=$(grep '^WRKROW ' "$out" | tail -1) || { cat "$out" >&2; die "no result line from wrk (row $1, $5)"; }
  # p50_us: parsed with the rest, kept in the wrk log only
  # shellcheck disable=SC2034
  local requests='' duration_us='' p50_us='' p99_us='' connect='' read='' write='' status='' timeout=''
  local kv
  for kv in ${line#WRKROW }; do printf -v "${kv%%=*}" '%s' "${kv#*=}"; done
  if [ "$status" != 0 ] || [ "$connect" != 0 ] || [ "$read" != 0 ] || [ "$write" != 0 ] ||
     [ "$timeout" != 0 ] || [ "$requests" = 0 ]; then
    cat "$out" >&2
    die "row $1 against $5 had errors (non-2xx $status, connect $connect, read $read, write $write, timeout $timeout, requests $requests): no number reported"
  fi
  TOT_REQS[$5]=$(( ${TOT_REQS[$5]:-0} + requests ))
  TOT_US[$5]=$(( ${TOT_US[$5]:-0} + duration_us ))
  TOT_TICKS[$5]=$(( ${TOT_TICKS[$5]:-0} + t1 - t0 ))
  [ "$p99_us" -gt "${P99_MAX_US[$5]:-0}" ] && P99_MAX_US[$5]=$p99_us
  return 0
}

# Prints "req/s p99-ms cpu-us" of a label's totals.
summary_of() { # label
  awk -v r="${TOT_REQS[$1]}" -v d="${TOT_US[$1]}" -v p="${P99_MAX_US[$1]}" \
      -v t="${TOT_TICKS[$1]}" -v hz="$CLK_TCK" \
    'BEGIN { printf "%.0f %.2f %.1f", r * 1e6 / d, p / 1000, t * 1e6 / hz / r }'
}

echo "== bench_http: invcored HTTP vs nginx (static body of the same size)"
echo "   wrk -t$WRK_THREADS -c$CONNECTIONS, same Lua script for both; per row and server ${WARMUP}s warm-up,"
echo "   then $ROUNDS rounds of ${DURATION}s in ABBA order (invcored, nginx, nginx, invcored, ...)"
echo "   invcored --threads $SERVER_THREADS --fsync interval (journal on); nginx worker_processes $SERVER_THREADS"
echo "   $N items per write row, $N products x $VARIANTS variants; $(nproc) cores on this box"
printf '%-42s %5s | %9s %7s %6s | %9s %7s %6s | %5s %5s %s\n' \
  "row" "bytes" "inv req/s" "p99 ms" "cpu us" "ngx req/s" "p99 ms" "cpu us" "ratio" "cpu" "target"
below=0
for r in $ROWS; do
  TOT_REQS=() TOT_US=() TOT_TICKS=() P99_MAX_US=()
  run_wrk "$r" "$H_PORT" "$WARMUP" "$I_PID" warmup
  run_wrk "$r" "$N_PORT" "$WARMUP" "$N_PID" warmup
  j0=$(journal_records)
  for round in $(seq 1 "$ROUNDS"); do
    # ABBA: whoever went second in one round goes first in the next, so a
    # drift in the box's load falls on both alike
    order="invcored nginx"
    [ $(( round % 2 )) = 0 ] && order="nginx invcored"
    for who in $order; do
      if [ "$who" = invcored ]; then run_wrk "$r" "$H_PORT" "$DURATION" "$I_PID" invcored
      else run_wrk "$r" "$N_PORT" "$DURATION" "$N_PID" nginx; fi
    done
  done
  j1=$(journal_records)
  check_alive "$I_PID" invcored "$TMP/invcored/log"
  check_alive "$N_PID" nginx "$NGX/error.log"
  read -r i_rps i_p99 i_cpu <<<"$(summary_of invcored)"
  read -r n_rps n_p99 n_cpu <<<"$(summary_of nginx)"
  ratio=$(awk -v a="$i_rps" -v b="$n_rps" 'BEGIN { printf "%.2f", a / b }')
  cpu_ratio=$(awk -v a="$i_cpu" -v b="$n_cpu" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')
  verdict="-"
  if [ "$r" != inv ]; then
    if awk -v x="$ratio" -v t="$TARGET" 'BEGIN { exit !(x >= t) }'; then verdict=">=${TARGET} ok"
    else verdict=">=${TARGET} BELOW"; below=$(( below + 1 )); fi
  fi
  printf '%-42s %5s | %9s %7s %6s | %9s %7s %6s | %5s %5s %s\n' "$(row_title "$r")" \
    "${BODY_BYTES[$r]}" "$i_rps" "$i_p99" "$i_cpu" "$n_rps" "$n_p99" "$n_cpu" "$ratio" \
    "$cpu_ratio" "$verdict"
  if [ "$r" != inv ]; then
    echo "   (journal records written during invcored's rounds: $(( j1 - j0 )) for ${TOT_REQS[invcored]} requests)"
    # every answer of a write row is a journaled write; fewer records means
    # the row measured something cheaper than it claims
    [ $(( j1 - j0 )) -ge "${TOT_REQS[invcored]}" ] ||
      echo "bench_http: WARNING row $r: fewer journal records than requests" >&2
  fi
done
echo "   req/s: all rounds' requests over their time; p99: the worst round's (wrk, closed loop);"
echo "   cpu us: the server's CPU time per request (user+system, all its threads, from /proc);"
echo "   ratio: invcored req/s / nginx req/s (the target's); cpu: nginx cpu us / invcored cpu us"
echo "   (what the req/s ratio would be if both servers were CPU-bound; steadier on a shared box)"
if [ "$below" -gt 0 ]; then
  echo "bench_http: $below write row(s) below ${TARGET}x nginx"
  [ "$STRICT" = 1 ] && exit 1
fi
exit 0
