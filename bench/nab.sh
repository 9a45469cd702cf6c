#!/usr/bin/env bash
# Alert accuracy on labelled data: the Numenta Anomaly Benchmark subset in
# ../shared/nab (44 series, 83 labelled windows). For each detector, runs the release
# `hostscope-analyzer eval` over ../shared/nab/data three times (wall time of each run,
# median reported), then scores the output with ../shared/nab/nab_score.py on all
# three cost profiles, with the per-category breakdown of the standard profile.
#
# Usage: bash bench/nab.sh [--record] [--no-build] [--runs N] [--detectors a,b,..]
#   --record     also print a Markdown snippet for BENCHMARKS.md
#   --no-build   use target/release/hostscope-analyzer as it is
#   --detectors  subset of: novelty,ewma,3sigma,quantile,iforest (default: all)
#
# Writes nothing outside its temporary directory, which is removed at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NAB=${NAB_DIR:-$ROOT/../shared/nab}
RECORD=0 BUILD=1 RUNS=3 DETECTORS=novelty,ewma,3sigma,quantile,iforest
while [ $# -gt 0 ]; do
    case $1 in
        --record) RECORD=1 ;;
        --no-build) BUILD=0 ;;
        --runs) RUNS=$2; shift ;;
        --detectors) DETECTORS=$2; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[ -f "$NAB/nab_score.py" ] || { echo "no NAB data at $NAB" >&2; exit 1; }

BIN=$ROOT/target/release/hostscope-analyzer
if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release -p hostscope-analyzer)
fi
[ -x "$BIN" ] || { echo "no $BIN; build it or drop --no-build" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for d in ${DETECTORS//,/ }; do
    : > "$TMP/$d.times"
    for _ in $(seq "$RUNS"); do
        rm -rf "$TMP/out-$d"
        start=$(date +%s.%N)
        "$BIN" eval --input "$NAB/data" --output "$TMP/out-$d" --detector "$d" > "$TMP/$d.log"
        end=$(date +%s.%N)
        echo "$start $end" | awk '{printf "%.3f\n", $2 - $1}' >> "$TMP/$d.times"
    done
    python3 "$NAB/nab_score.py" --data "$NAB/data" --labels "$NAB/labels/combined_windows.json" \
        --results "$TMP/out-$d" --profile all --json "$TMP/$d.json" > "$TMP/$d.score" 2> "$TMP/$d.warn"
    echo "== $d: $(cat "$TMP/$d.log")"
    grep -E '^(profile|standard|reward)' "$TMP/$d.score"
done

python3 - "$TMP" "$RECORD" "$RUNS" ${DETECTORS//,/ } <<'EOF'
import json, statistics, sys
tmp, record, runs, dets = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4:]
profiles = ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]
rows = []
for d in dets:
    r = json.load(open(f"{tmp}/{d}.json"))
    times = [float(x) for x in open(f"{tmp}/{d}.times").read().split()]
    std = r["profiles"]["standard"]
    cats = {c: v["normalized"] if v["normalized"] is not None else "no windows, %d FP rows" % v["fp_rows"]
            for c, v in std["categories"].items()}
    rows.append((d, [r["profiles"][p]["normalized"] for p in profiles], std, cats,
                 statistics.median(times), times))
cat_names = sorted({c for row in rows for c in row[3]})
print()
print("%-10s %9s %9s %9s %8s %6s %8s  %s" % ("detector", "standard", "low_FP", "low_FN",
      "windows", "FProws", "median s", "runs"))
for d, p, std, cats, med, times in rows:
    print("%-10s %9.2f %9.2f %9.2f %4d/%-3d %6d %8.3f  %s" % (
        d, *p, std["windows_detected"], std["windows"], std["fp_rows"], med,
        " ".join("%.3f" % t for t in times)))
if record:
    fmt = lambda v: "n/a" if v is None else v if isinstance(v, str) else "%.1f" % v
    print("\n| detector | standard | reward_low_FP_rate | reward_low_FN_rate | windows detected (standard) | FP rows (standard) | eval time, median of %s (s) |" % runs)
    print("|---|---|---|---|---|---|---|")
    for d, p, std, cats, med, _ in rows:
        print("| %s | %s | %s | %s | %d/%d | %d | %.2f |" % (
            d, *(fmt(x) for x in p), std["windows_detected"], std["windows"], std["fp_rows"], med))
    print("\n| detector (standard profile) | " + " | ".join(cat_names) + " |")
    print("|---|" + "---|" * len(cat_names))
    for d, p, std, cats, med, _ in rows:
        print("| %s | " % d + " | ".join(fmt(cats.get(c)) for c in cat_names) + " |")
EOF
