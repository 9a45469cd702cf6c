#!/usr/bin/env bash
# Collector benchmark: CPU time per cycle and peak RSS of hostscope-collector against
# the leanest peers from Debian, all measured in the same run on this machine:
#
#   hostscope-sys  hostscope-collector, only = cpu mem disk diskio net system
#   hostscope-all  hostscope-collector, default inputs (system + processes,
#                  procstat_top, listen: the inputs that walk /proc/<pid>)
#   netdata        netdata-core, only its proc and diskspace plugins, db mode ram
#   collectd       collectd-core, cpu memory swap df disk interface load processes
#                  writing CSV locally
#
# Each runs alone at a 1 s interval: started, given a warm-up, then measured over a
# window (default 60 s) and stopped. CPU per cycle is the growth of
# utime+stime+cutime+cstime (/proc/<pid>/stat, summed over the process and its
# descendants; threads are included in a process's figures) over the window, divided
# by the window's cycles; the same CPU time summed from the threads' schedstat (ns
# resolution, where a tick is 10 ms) is shown beside it. Peak RSS is VmHWM of the main
# process, read just before it is stopped. Every tool is checked to have collected (InfluxDB point count, CSV lines,
# netdata API rows); a run that collected nothing fails.
#
# Everything runs twice: at the machine's own process count, and again with EXTRA
# (default 1000) idle `sleep` processes. The whole sequence is repeated (default 3
# times) and medians are reported. hostscope writes to a private influxd 1.x started
# on a free loopback port; influxd's CPU is not counted.
#
# Usage: bash bench/collector.sh [--record] [--repeat N] [--duration S] [--warmup S]
#                                [--extra N] [--only a,b] [--no-build] [--keep-tmp]
#                                [--save FILE]
#   --record    also print a Markdown snippet for BENCHMARKS.md
#   --save      copy the raw per-run figures (TSV) to FILE; several such files can be
#               summarised together: python3 bench/collector/report.py A.tsv B.tsv
#   --only      a subset of: hostscope-sys,hostscope-all,netdata,collectd
#   --no-build  do not run cargo; use target/release/hostscope-collector as it is
#               (or $HOSTSCOPE_COLLECTOR_BIN)
#
# Writes nothing outside its temporary directory (removed at the end unless
# --keep-tmp), except the --save file. Installs netdata-core and collectd-core with
# apt-get when missing. Leaves nothing running: every process it starts is stopped by
# its own pid on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPERS="$ROOT/bench/collector"

RECORD=0 REPEAT=3 DURATION=60 WARMUP=10 EXTRA=1000 BUILD=1 KEEP_TMP=0 SAVE=""
SUBJECTS=(hostscope-sys hostscope-all netdata collectd)
while [[ $# -gt 0 ]]; do
    case "$1" in
        --record) RECORD=1 ;;
        --repeat) REPEAT=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --extra) EXTRA=$2; shift ;;
        --only) IFS=, read -r -a SUBJECTS <<<"$2"; shift ;;
        --no-build) BUILD=0 ;;
        --keep-tmp) KEEP_TMP=1 ;;
        --save) SAVE=$2; shift ;;
        -h|--help) sed -n '2,39p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for s in "${SUBJECTS[@]}"; do
    case "$s" in hostscope-sys|hostscope-all|netdata|collectd) ;; *) echo "unknown subject $s" >&2; exit 2 ;; esac
done

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------
# Cleanup: everything started here is tracked by pid and stopped on exit.
TMP=$(mktemp -d /tmp/hostscope-bench-collector.XXXXXX)
INFLUXD_PID=""
SUBJ_PID=""
IDLE_PIDS=()

stop_pid() { # pid [seconds]: TERM, wait, KILL; then reap it if it is our child
    local pid=$1 secs=${2:-15} i
    [[ -n "$pid" ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        # a zombie child counts as stopped
        [[ "$(awk '{sub(/.*\) /, ""); print $1}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

kill_idle() {
    [[ ${#IDLE_PIDS[@]} -gt 0 ]] || return 0
    kill -TERM "${IDLE_PIDS[@]}" 2>/dev/null || true
    wait "${IDLE_PIDS[@]}" 2>/dev/null || true
    IDLE_PIDS=()
}

SUBJ_TREE=() # descendants seen while measuring, stopped too if they outlive the parent
stop_subject() {
    local pid=$SUBJ_PID
    SUBJ_PID=""
    stop_pid "$pid"
    local p
    for p in "${SUBJ_TREE[@]}"; do
        [[ "$p" != "$pid" ]] && kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
    done
    SUBJ_TREE=()
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_subject
    kill_idle
    stop_pid "$INFLUXD_PID"
    if [[ $KEEP_TMP -eq 1 || $rc -ne 0 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Tools
need_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
if ! command -v netdata >/dev/null || ! command -v collectd >/dev/null; then
    log "installing netdata-core and collectd-core"
    # policy-rc.d or not, the packaged services are never used or touched here
    need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y netdata-core collectd-core >"$TMP/apt.log" 2>&1 \
        || { need_root apt-get update >>"$TMP/apt.log" 2>&1 &&
             need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y netdata-core collectd-core >>"$TMP/apt.log" 2>&1; } \
        || die "apt-get install failed, see $TMP/apt.log"
fi
command -v influxd >/dev/null || die "influxd (Debian package influxdb) is required"
command -v python3 >/dev/null || die "python3 is required"
command -v curl >/dev/null || die "curl is required"
NETDATA=$(command -v netdata || echo /usr/sbin/netdata)
COLLECTD=$(command -v collectd || echo /usr/sbin/collectd)

BIN_SRC=${HOSTSCOPE_COLLECTOR_BIN:-"$ROOT/target/release/hostscope-collector"}
if [[ $BUILD -eq 1 && -z "${HOSTSCOPE_COLLECTOR_BIN:-}" ]]; then
    log "cargo build --release -p hostscope-collector"
    (cd "$ROOT" && cargo build --release -p hostscope-collector) >"$TMP/build.log" 2>&1 \
        || { tail -30 "$TMP/build.log" >&2; die "build failed"; }
fi
[[ -x "$BIN_SRC" ]] || die "no collector binary at $BIN_SRC"
# A private copy: a rebuild of the shared target dir during the run cannot swap it.
BIN="$TMP/hostscope-collector"
cp "$BIN_SRC" "$BIN"

CLK_TCK=$(getconf CLK_TCK)
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
proc_count() { local n=0 d; for d in /proc/[0-9]*; do n=$((n + 1)); done; echo "$n"; }

# ---------------------------------------------------------------------------
# influxd (the sink for hostscope; not measured)
INFLUX_PORT=$(free_port)
INFLUX_RPC=$(free_port)
mkdir -p "$TMP/influxd"
cat >"$TMP/influxd/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$INFLUX_RPC"

[meta]
  dir = "$TMP/influxd/meta"

[data]
  dir = "$TMP/influxd/data"
  wal-dir = "$TMP/influxd/wal"
  query-log-enabled = false

[http]
  bind-address = "127.0.0.1:$INFLUX_PORT"
  log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[logging]
  level = "warn"
EOF
influxd run -config "$TMP/influxd/influxdb.conf" >"$TMP/influxd/log" 2>&1 &
INFLUXD_PID=$!
for ((i = 0; i < 300; i++)); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$INFLUX_PORT/ping")" == 204 ]] && break
    kill -0 "$INFLUXD_PID" 2>/dev/null || die "influxd exited: $(tail -5 "$TMP/influxd/log")"
    sleep 0.1
done
[[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$INFLUX_PORT/ping")" == 204 ]] || die "influxd did not answer /ping"
influx_query() { # db query -> JSON
    curl -sS -G "http://127.0.0.1:$INFLUX_PORT/query" --data-urlencode "db=$1" --data-urlencode "q=$2"
}

# ---------------------------------------------------------------------------
# Subjects: each start_* sets SUBJ_PID; each count_* prints the cycles collected so
# far (or, with t0/t1 in ns, inside that window).
start_hostscope() { # name, only-list or "" for the defaults
    local name=$1 only=$2 dir="$TMP/$1-$RUN_ID"
    mkdir -p "$dir/state"
    {
        printf '[influx]\nurl = "http://127.0.0.1:%s"\nversion = 1\ndatabase = "bench"\n\n' "$INFLUX_PORT"
        printf '[collector]\ninterval = "1s"\nstate_dir = "%s/state"\n' "$dir"
        if [[ -n "$only" ]]; then printf '\n[collector.inputs]\nonly = [%s]\n' "$only"; fi
    } >"$dir/hostscope.toml"
    RUST_LOG=warn "$BIN" --config "$dir/hostscope.toml" >"$dir/log" 2>&1 &
    SUBJ_PID=$!
}
count_hostscope() { # t0 t1 (ns): cpu-total points in [t0, t1)
    influx_query bench "SELECT count(usage_idle) FROM cpu WHERE cpu = 'cpu-total' AND time >= $1 AND time < $2" |
        python3 -c 'import json,sys
r = json.load(sys.stdin)["results"][0]
print(r["series"][0]["values"][0][1] if "series" in r else 0)'
}

start_netdata() {
    local dir="$TMP/netdata-$RUN_ID" port
    port=$(free_port)
    NETDATA_PORT=$port
    mkdir -p "$dir"/{etc,cache,lib,log,home}
    sed -e "s#@DIR@#$dir#g" -e "s#@PORT@#$port#g" "$HELPERS/netdata.conf.in" >"$dir/netdata.conf"
    "$NETDATA" -D -c "$dir/netdata.conf" >"$dir/stdout" 2>&1 &
    SUBJ_PID=$!
}
count_netdata() { # t0 t1 (ns): rows of system.cpu stored in [t0, t1)
    local a=$(($1 / 1000000000)) b=$(($2 / 1000000000 - 1))
    curl -sS "http://127.0.0.1:$NETDATA_PORT/api/v1/data?chart=system.cpu&after=$a&before=$b&format=json&options=seconds" |
        python3 -c 'import json,sys
try: print(len(json.load(sys.stdin)["data"]))
except Exception: print(0)'
}

start_collectd() {
    local dir="$TMP/collectd-$RUN_ID"
    mkdir -p "$dir/csv"
    sed -e "s#@DIR@#$dir#g" "$HELPERS/collectd.conf.in" >"$dir/collectd.conf"
    "$COLLECTD" -f -C "$dir/collectd.conf" >"$dir/stdout" 2>&1 &
    SUBJ_PID=$!
    COLLECTD_DIR=$dir
}
count_collectd() { # lines written so far to the load CSV (one per cycle, plus a header)
    cat "$COLLECTD_DIR"/csv/*/load/load-* 2>/dev/null | wc -l
}

# ---------------------------------------------------------------------------
# Measurement
tree_pids() { # pid: the pid and all its descendants
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { kids[$2] = kids[$2] " " $1 }
        END { n = split(root, q); out = root
              for (i = 1; i <= n; i++) { m = split(kids[q[i]], k)
                  for (j = 1; j <= m; j++) { q[++n] = k[j]; out = out " " k[j] } }
              print out }'
}
tree_ticks() { # pid file: sets TICKS to utime+stime+cutime+cstime over the tree and
    # SUBJ_TREE to the tree; writes "tid run-time-ns" of every thread to file
    # (/proc/<pid>/task/<tid>/schedstat: the same CPU time, at ns resolution)
    local pids p total=0 t f ns rest
    read -r -a pids <<<"$(tree_pids "$1")"
    SUBJ_TREE=("${pids[@]}")
    : >"$2"
    for p in "${pids[@]}"; do
        t=$(awk '{sub(/.*\) /, ""); print $12 + $13 + $14 + $15}' "/proc/$p/stat" 2>/dev/null) || continue
        total=$((total + ${t:-0}))
        for f in /proc/"$p"/task/*/schedstat; do
            if read -r ns rest 2>/dev/null <"$f"; then
                f=${f%/schedstat}
                echo "${f##*/} $ns" >>"$2"
            fi
        done
    done
    TICKS=$total
}
sched_delta() { # before after: "ns lost" = run time of the tree's threads between the
    # two samples, and how many threads of the first sample were gone by the second
    # (their time since the first sample is then missing: trust the ticks instead)
    awk 'NR == FNR { a[$1] = $2; next }
         { seen[$1] = 1; d += ($1 in a) ? $2 - a[$1] : $2 }
         END { lost = 0; for (t in a) if (!(t in seen)) lost++; printf "%d %d\n", d, lost }' "$1" "$2"
}
status_kib() { # pid field -> kB value from /proc/pid/status
    awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

RESULTS="$TMP/results.tsv"
printf 'repeat\tphase\tsubject\tprocs\tticks\tclk_tck\tsched_ns\tlost_threads\tseconds\tcycles_seen\thwm_kib\tchildren_hwm_kib\tthreads\n' >"$RESULTS"

measure() { # subject phase repeat
    local subject=$1 phase=$2 rep=$3 t0 t1 c0 c1 n0 n1 seen hwm chwm threads procs p sns lost
    RUN_ID="$phase-$rep"
    case "$subject" in
        hostscope-sys) start_hostscope "$subject" '"cpu", "mem", "disk", "diskio", "net", "system"' ;;
        hostscope-all) start_hostscope "$subject" "" ;;
        netdata) start_netdata ;;
        collectd) start_collectd ;;
    esac
    sleep "$WARMUP"
    kill -0 "$SUBJ_PID" 2>/dev/null || die "$subject exited during warm-up (logs in $TMP)"
    procs=$(proc_count)
    if [[ $subject == collectd ]]; then n0=$(count_collectd); fi
    t0=$(date +%s%N)
    tree_ticks "$SUBJ_PID" "$TMP/sched0"
    c0=$TICKS
    sleep "$DURATION"
    tree_ticks "$SUBJ_PID" "$TMP/sched1"
    c1=$TICKS
    t1=$(date +%s%N)
    kill -0 "$SUBJ_PID" 2>/dev/null || die "$subject exited during the run (logs in $TMP)"
    read -r sns lost < <(sched_delta "$TMP/sched0" "$TMP/sched1")
    hwm=$(status_kib "$SUBJ_PID" VmHWM)
    threads=$(status_kib "$SUBJ_PID" Threads)
    chwm=0
    for p in "${SUBJ_TREE[@]:1}"; do chwm=$((chwm + $(status_kib "$p" VmHWM))); done
    case "$subject" in
        netdata) seen=$(count_netdata "$t0" "$t1") ;;
        collectd) n1=$(count_collectd); seen=$((n1 - n0)) ;;
    esac
    stop_subject
    # hostscope's last points are flushed on SIGTERM: count them after the stop
    if [[ $subject == hostscope-* ]]; then seen=$(count_hostscope "$t0" "$t1"); fi
    local secs
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$phase" "$subject" "$procs" \
        $((c1 - c0)) "$CLK_TCK" "$sns" "$lost" "$secs" "$seen" "$hwm" "$chwm" "$threads" >>"$RESULTS"
    log "$(awk -v s="$subject" -v ph="$phase" -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v secs="$secs" \
        -v seen="$seen" -v hwm="$hwm" -v np="$procs" -v ns="$sns" 'BEGIN {
        printf "%-14s %-5s procs=%-5d cpu=%.3f ms/cycle (schedstat %.3f)  peak RSS=%.1f MiB  cycles seen=%d/%.0f",
               s, ph, np, t * 1000 / hz / secs, ns / 1e6 / secs, hwm / 1024, seen, secs }')"
    # A benchmark of a tool that collected nothing is worthless.
    if ! awk -v seen="$seen" -v secs="$secs" 'BEGIN { exit !(seen >= 0.9 * secs - 1) }'; then
        die "$subject collected only $seen cycles in ${secs}s (logs in $TMP)"
    fi
}

spawn_idle() {
    local i
    for ((i = 0; i < $1; i++)); do
        sleep 3600 </dev/null >/dev/null 2>&1 &
        IDLE_PIDS+=($!)
    done
}

log "collector $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(
    cd "$ROOT" && [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] && echo ' (work tree modified)')"
log "netdata: $("$NETDATA" -v 2>&1 | head -1); collectd: $("$COLLECTD" -h 2>&1 | awk '/^collectd/ {sub(/,$/, "", $2); print $2; exit}')"
log "$REPEAT repeat(s) x 2 process counts x ${#SUBJECTS[@]} tools x (${WARMUP}s warm-up + ${DURATION}s); base process count $(proc_count)"
for ((rep = 1; rep <= REPEAT; rep++)); do
    for phase in base extra; do
        if [[ $phase == extra ]]; then
            spawn_idle "$EXTRA"
            sleep 1
        fi
        for subject in "${SUBJECTS[@]}"; do
            measure "$subject" "$phase" "$rep"
        done
        if [[ $phase == extra ]]; then kill_idle; fi
    done
done

args=(--extra "$EXTRA" --date "$(date +%F)" --machine "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)")
if [[ $RECORD -eq 1 ]]; then args+=(--record); fi
if [[ -n "$SAVE" ]]; then cp "$RESULTS" "$SAVE"; fi
python3 "$HELPERS/report.py" "${args[@]}" "$RESULTS"
