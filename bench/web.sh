#!/usr/bin/env bash
# Web API latency: hostscope-web's GET /api/v1/series against the raw InfluxDB 1.x
# query it sends, both driven by wrk on loopback in the same run.
#
# Starts a throwaway influxd (temp dir, free loopback ports), seeds it with DAYS days
# of 10 s `cpu` points (cpu=cpu-total, the collector's ten usage_* fields) for HOSTS
# hosts, starts the release hostscope-web against it, checks one API answer by hand
# (200, non-null points; exits 1 otherwise), then alternates wrk runs:
#   web: GET /api/v1/series?host=host-07&measurement=cpu&field=usage_user&tags=cpu:cpu-total&start=now-24h&end=now
#   raw: POST influxd /query with the InfluxQL that request renders (same range, step,
#        filters, grouping; epoch=ms, db=bench), as a form, like the client does
# RUNS times each with the same wrk settings, and reports medians of req/s, p50, p99.
# Also counts influxd query requests during the web runs (from /debug/vars) to show
# how many database queries one API request costs, and the CPU time per request of
# hostscope-web and influxd (from /proc) to show where a difference comes from.
#
# Usage: bash bench/web.sh [--no-build] [--runs N] [--duration 20s] [--threads 2]
#                          [--connections 8] [--hosts 20] [--days 7] [--record]
#   --record   also print a Markdown table for BENCHMARKS.md
# Environment: RUST_LOG for hostscope-web (default: its own default, info).
#
# Writes nothing outside its temporary directory, which is removed at the end; stops
# every process it started.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE=$ROOT/bench/web
BUILD=1 RUNS=3 DURATION=20s THREADS=2 CONNS=8 HOSTS=20 DAYS=7 RECORD=0
while [ $# -gt 0 ]; do
    case $1 in
        --no-build) BUILD=0 ;;
        --runs) RUNS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --threads) THREADS=$2; shift ;;
        --connections) CONNS=$2; shift ;;
        --hosts) HOSTS=$2; shift ;;
        --days) DAYS=$2; shift ;;
        --record) RECORD=1 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

command -v influxd > /dev/null || { echo "influxd not found (Debian package influxdb)" >&2; exit 1; }
if ! command -v wrk > /dev/null; then
    echo "== installing wrk"
    if ! apt-get install -y wrk > /dev/null 2>&1; then
        apt-get update > /dev/null && apt-get install -y wrk > /dev/null
    fi
fi

BIN=$ROOT/target/release/hostscope-web
if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release -p hostscope-web)
fi
[ -x "$BIN" ] || { echo "no $BIN; build it or drop --no-build" >&2; exit 1; }

TMP=$(mktemp -d)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2> /dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2> /dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() { # url expected-status seconds
    local i code
    for i in $(seq $(($3 * 10))); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)
        [ "$code" = "$2" ] && return 0
        sleep 0.1
    done
    echo "timed out waiting for $1 to answer $2 (last: $code)" >&2
    return 1
}

# ---- influxd ----
RPC_PORT=$(free_port) INFLUX_PORT=$(free_port) WEB_PORT=$(free_port)
mkdir -p "$TMP/influx"
cat > "$TMP/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$RPC_PORT"
[meta]
  dir = "$TMP/influx/meta"
[data]
  dir = "$TMP/influx/data"
  wal-dir = "$TMP/influx/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$INFLUX_PORT"
  log-enabled = false
  max-row-limit = 0
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
EOF
influxd -config "$TMP/influxdb.conf" > "$TMP/influxd.log" 2>&1 &
PIDS+=($!)
INFLUX=http://127.0.0.1:$INFLUX_PORT
wait_http "$INFLUX/ping" 204 30
curl -sf -XPOST "$INFLUX/query" --data-urlencode 'q=CREATE DATABASE "bench"' > /dev/null
echo "== influxd $(influxd version | awk '{print $2}') on $INFLUX"

# ---- seed ----
echo "== seeding $HOSTS hosts x $DAYS days of 10 s cpu points"
read -r POINTS SEED_S SEED_START SEED_END < <(python3 "$HERE/seed.py" "$INFLUX" bench "$HOSTS" "$DAYS" 10 "$(date +%s)")
[ -n "${SEED_END:-}" ] || { echo "seeding failed" >&2; exit 1; }
echo "   $POINTS points in ${SEED_S} s ($(awk -v p="$POINTS" -v s="$SEED_S" 'BEGIN{printf "%.0f", p/s}') points/s)"
COUNT=$(curl -sf -G "$INFLUX/query" --data-urlencode db=bench \
    --data-urlencode 'q=SELECT count("usage_user") FROM "cpu"' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["series"][0]["values"][0][1])')
[ "$COUNT" = "$POINTS" ] || { echo "influxd holds $COUNT cpu points, wrote $POINTS" >&2; exit 1; }

# ---- hostscope-web ----
cat > "$TMP/hostscope.toml" <<EOF
[influx]
url = "$INFLUX"
version = 1
database = "bench"

[web]
listen = "127.0.0.1:$WEB_PORT"
api_tokens = [{ name = "bench", token = "bench-token-0123456789abcdef" }]
EOF
"$BIN" --config "$TMP/hostscope.toml" > "$TMP/web.log" 2>&1 &
PIDS+=($!)
WEB=http://127.0.0.1:$WEB_PORT
for _ in $(seq 100); do
    curl -s -o /dev/null "$WEB/" && break
    sleep 0.1
done
PATH_Q='/api/v1/series?host=host-07&measurement=cpu&field=usage_user&tags=cpu:cpu-total&start=now-24h&end=now'

# Warm-up (fills the field cache) and the hand check: 200, one series, mostly non-null.
CODE=$(curl -s -o "$TMP/warm.json" -w '%{http_code}' \
    -H 'Authorization: Bearer bench-token-0123456789abcdef' "$WEB$PATH_Q")
if [ "$CODE" != 200 ]; then
    echo "warm-up answered $CODE:" >&2; head -c 2000 "$TMP/warm.json" >&2; echo >&2
    tail -20 "$TMP/web.log" >&2
    exit 1
fi
read -r STEP START END NPOINTS NONNULL < <(python3 - "$TMP/warm.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["series"]
assert len(s) == 1, f"expected one series, got {len(s)}"
pts = s[0]["points"]
vals = [v for _, v in pts]
nonnull = sum(v is not None for v in vals)
assert nonnull >= 0.9 * len(pts) and len(pts) > 0, f"{nonnull} of {len(pts)} points non-null"
print(d["step_ms"], d["start"], d["end"], len(pts), nonnull)
EOF
)
[ -n "${NONNULL:-}" ] || { echo "warm-up answer rejected:" >&2; head -c 2000 "$TMP/warm.json" >&2; exit 1; }
echo "== web warm-up: 200, step ${STEP} ms, $NPOINTS points, $NONNULL non-null"

# The InfluxQL that request renders (core/src/influx/influxql.rs series(): mean, tag
# filters in key order, GROUP BY time(step) plus the default group_by of cpu, "cpu").
Q="SELECT mean(\"usage_user\"::field) FROM \"cpu\" WHERE time >= ${START}ms AND time < ${END}ms AND \"cpu\"::tag = 'cpu-total' AND \"host\"::tag = 'host-07' GROUP BY time(${STEP}ms), \"cpu\" fill(null)"
BODY=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlencode({"q": sys.argv[1], "epoch": "ms", "db": "bench"}))' "$Q")
RAW_N=$(curl -sf -XPOST "$INFLUX/query" -H 'Content-Type: application/x-www-form-urlencoded' --data "$BODY" |
    python3 -c 'import json,sys; v=json.load(sys.stdin)["results"][0]["series"][0]["values"]; print(len(v), sum(x[1] is not None for x in v))')
echo "== raw query: $Q"
echo "   answers $RAW_N (rows, non-null)"

query_reqs() {
    curl -sf "$INFLUX/debug/vars" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(v.get("values", {}).get("queryReq", 0) for k, v in d.items() if k.startswith("httpd")))'
}

# CPU time (user+system, ms) a process has used so far.
CLK_TCK=$(getconf CLK_TCK)
cpu_ms() { awk -v hz="$CLK_TCK" '{printf "%d\n", ($14 + $15) * 1000 / hz}' "/proc/$1/stat"; }
INFLUX_PID=${PIDS[0]} WEB_PID=${PIDS[1]}

# ---- wrk, alternating ----
WRK=(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency)
# Unmeasured warm-up of both, so that the first measured runs do not pay for influxd's
# compaction of the freshly seeded shards.
echo "== settling: 10 s of each, not measured"
wrk -t"$THREADS" -c"$CONNS" -d10s -s "$HERE/web.lua" "$WEB" -- "$PATH_Q" > /dev/null
wrk -t"$THREADS" -c"$CONNS" -d10s -s "$HERE/influx.lua" "$INFLUX" -- "$BODY" > /dev/null
echo "== ${WRK[*]}, $RUNS runs each, alternating"
: > "$TMP/web.stats"; : > "$TMP/raw.stats"; : > "$TMP/qpr"
for i in $(seq "$RUNS"); do
    before=$(query_reqs) w0=$(cpu_ms "$WEB_PID") i0=$(cpu_ms "$INFLUX_PID")
    "${WRK[@]}" -s "$HERE/web.lua" "$WEB" -- "$PATH_Q" > "$TMP/web.$i.out"
    after=$(query_reqs) w1=$(cpu_ms "$WEB_PID") i1=$(cpu_ms "$INFLUX_PID")
    line=$(python3 "$HERE/wrkstats.py" < "$TMP/web.$i.out")
    echo "$line" >> "$TMP/web.stats"
    echo "$line $((after - before)) $((w1 - w0)) $((i1 - i0))" |
        awk '{printf "%.3f %.3f %.3f\n", $6 / $4, $7 / $4, $8 / $4}' >> "$TMP/qpr"
    read -r qpr wcpu icpu < <(tail -1 "$TMP/qpr")
    echo "   web run $i: req/s p50_ms p99_ms requests bad = $line; influx queries/request $qpr; CPU ms/request: hostscope-web $wcpu, influxd $icpu"
    i0=$(cpu_ms "$INFLUX_PID")
    "${WRK[@]}" -s "$HERE/influx.lua" "$INFLUX" -- "$BODY" > "$TMP/raw.$i.out"
    i1=$(cpu_ms "$INFLUX_PID")
    line=$(python3 "$HERE/wrkstats.py" < "$TMP/raw.$i.out")
    echo "$line" >> "$TMP/raw.stats"
    echo "   raw run $i: req/s p50_ms p99_ms requests bad = $line; CPU ms/request: influxd $(echo "$line $((i1 - i0))" | awk '{printf "%.3f", $6 / $4}')"
done
echo "   hostscope-web log lines: $(wc -l < "$TMP/web.log") (RUST_LOG=${RUST_LOG:-unset})"

python3 - "$TMP" "$RECORD" "$POINTS" "$SEED_S" "$HOSTS" "$DAYS" "${WRK[*]}" "$NPOINTS" "$STEP" <<'EOF'
import statistics, sys
tmp, record, points, seed_s, hosts, days, wrk, npoints, step = sys.argv[1:10]
record = record == "1"


def load(name):
    rows = [list(map(float, l.split())) for l in open(f"{tmp}/{name}.stats") if l.strip()]
    bad = sum(r[4] for r in rows)
    return [statistics.median(r[i] for r in rows) for i in range(3)], bad, len(rows)


(w_rps, w_p50, w_p99), w_bad, n = load("web")
(r_rps, r_p50, r_p99), r_bad, _ = load("raw")
qpr = statistics.median(float(l.split()[0]) for l in open(f"{tmp}/qpr"))
ratio = w_p50 / r_p50
ok_p50 = ratio <= 1.10
ok_p99 = w_p99 < 100
print()
print(f"medians of {n}: web {w_rps:.0f} req/s p50 {w_p50:.2f} ms p99 {w_p99:.2f} ms | "
      f"raw {r_rps:.0f} req/s p50 {r_p50:.2f} ms p99 {r_p99:.2f} ms")
print(f"p50 web/raw = {ratio:.3f} (target <= 1.10: {'met' if ok_p50 else 'MISSED'}); "
      f"web p99 {w_p99:.1f} ms (target < 100 ms: {'met' if ok_p99 else 'MISSED'}); "
      f"influx queries per API request {qpr:.2f}; bad responses web {w_bad:.0f} raw {r_bad:.0f}")
if w_bad or r_bad:
    print("non-2xx or socket errors during the runs: figures are not valid", file=sys.stderr)
    sys.exit(1)
if record:
    print()
    print("| target | req/s | p50 | p99 |")
    print("|---|---|---|---|")
    print(f"| hostscope-web `GET /api/v1/series` | {w_rps:.0f} | {w_p50:.2f} ms | {w_p99:.2f} ms |")
    print(f"| raw InfluxDB `/query` (same InfluxQL) | {r_rps:.0f} | {r_p50:.2f} ms | {r_p99:.2f} ms |")
    print(f"| web / raw | {w_rps / r_rps:.2f}× | **{ratio:.2f}×** | {w_p99 / r_p99:.2f}× |")
    print()
    print(f"- Seed: {hosts} hosts × {days} days of 10 s `cpu` points = {int(points):,} points in {seed_s} s")
    print(f"- wrk: `{wrk}`, {n} runs each, alternating; medians")
    print(f"- Response: step {step} ms, {npoints} points")
EOF
