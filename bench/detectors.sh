#!/usr/bin/env bash
# Detector performance, in one run (issue #5):
# 1. throughput, points/s on one core, of the single-series detectors: the criterion
#    bench core/benches/detectors.rs (EWMA, 3-sigma and quantile on 360-point windows;
#    threshold and novelty for reference), summarised from its medians;
# 2. the isolation forest against scikit-learn on the same data and machine:
#    bench/iforest/compare.py with the release iforest_score example (the correctness
#    check, then fit + score of 100,000 x 6 samples, single-threaded and on all cores).
# The first run makes a virtualenv with scikit-learn from PyPI under target/ (needs
# python3-venv).
#
# Usage: bash bench/detectors.sh [--record] [--no-build] [--skip-throughput]
#                                [--skip-iforest] [--rounds R] [--repeat K] [--threads N]
#   --record           also print Markdown for BENCHMARKS.md
#   --no-build         use target/release/examples/iforest_score as it is
#   --rounds, --repeat timing rounds (default 5) of repeats (default 3), interleaved
#   --threads          the multi-core comparison's threads (default: all CPUs)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
RECORD=0 BUILD=1 THROUGHPUT=1 IFOREST=1 COMPARE_ARGS=()
while [ $# -gt 0 ]; do
    case $1 in
        --record) RECORD=1 ;;
        --no-build) BUILD=0 ;;
        --skip-throughput) THROUGHPUT=0 ;;
        --skip-iforest) IFOREST=0 ;;
        --rounds|--repeat|--threads) COMPARE_ARGS+=("$1" "$2"); shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

echo "rustc: $(rustc --version); $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$THROUGHPUT" = 1 ]; then
    echo "== detector throughput: cargo bench -p hostscope-core --bench detectors"
    (cd "$ROOT" && cargo bench -p hostscope-core --bench detectors) \
        | grep -E '^(detectors/|\s+(time|thrpt):)'
    python3 - "$TARGET/criterion/detectors" "$RECORD" <<'EOF'
import json, os, sys
base, record = sys.argv[1], sys.argv[2] == "1"
order = ["ewma", "3sigma", "quantile", "threshold", "novelty"]
rows = []
for name in order:
    d = os.path.join(base, name, "new")
    if not os.path.isdir(d):
        continue
    est = json.load(open(os.path.join(d, "estimates.json")))
    points = json.load(open(os.path.join(d, "benchmark.json")))["throughput"]["Elements"]
    ns = est["median"]["point_estimate"]
    rows.append((name, points, ns / points, points / ns * 1e9))
print("\n%-10s %12s %16s" % ("detector", "ns/point", "points/s"))
for name, _, per, rate in rows:
    print("%-10s %12.1f %16.0f" % (name, per, rate))
if record:
    print("\n| detector | ns/point (median) | points/s on one core |")
    print("|---|---|---|")
    for name, _, per, rate in rows:
        print("| %s | %.1f | **%s** |" % (name, per,
              "%.1f M" % (rate / 1e6) if rate >= 1e6 else "%.0f k" % (rate / 1e3)))
EOF
fi

if [ "$IFOREST" = 1 ]; then
    # shellcheck source=bench/iforest/venv.sh
    . "$ROOT/bench/iforest/venv.sh"
    iforest_venv "$ROOT"
    if [ "$BUILD" = 1 ]; then
        (cd "$ROOT" && cargo build --release -p hostscope-core --example iforest_score)
    fi
    BIN=$TARGET/release/examples/iforest_score
    [ -x "$BIN" ] || { echo "no $BIN; build it or drop --no-build" >&2; exit 1; }
    echo
    [ "$RECORD" = 1 ] && COMPARE_ARGS+=(--record)
    "$PY" "$ROOT/bench/iforest/compare.py" --bin "$BIN" "${COMPARE_ARGS[@]}"
fi
