#!/usr/bin/env bash
# Runs one fuzz target for SECONDS (default 1800) on its corpus (bash fuzz/seed.sh first).
# Usage: bash fuzz/run.sh TARGET [SECONDS]   — crashes land in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."
t=$1
secs=${2:-1800}
case $t in
  sprig_model | onnx_bytes) max_len=131072 ;;
  *) max_len=8192 ;;
esac
mkdir -p "fuzz/corpus/$t"
exec cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -max_len="$max_len" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1
