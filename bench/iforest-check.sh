#!/usr/bin/env bash
# The isolation forest agrees with scikit-learn's (issue #5): the correctness half of
# bench/iforest/compare.py on small data, no timing. Fits 100 trees of 256 samples on
# 4,000 rows of the labelled synthetic set with both, scores 4,000 others, and fails
# unless Spearman's rho between the two score vectors is >= 0.9 and the ROC AUCs are
# within 0.02. Builds the iforest_score example (debug) and, the first time, a virtualenv
# with scikit-learn from PyPI under target/ (needs python3-venv).
#
# Usage: bash bench/iforest-check.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/iforest/venv.sh
. "$ROOT/bench/iforest/venv.sh"
iforest_venv "$ROOT"

(cd "$ROOT" && cargo build --quiet -p hostscope-core --example iforest_score)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/iforest_score

"$PY" "$ROOT/bench/iforest/compare.py" --bin "$BIN" --quick --no-timing
