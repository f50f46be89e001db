#!/usr/bin/env bash
# Runs the tokenizer's property tests (arbitrary bytes, arbitrary Unicode text) again and again,
# new random seeds each run, for SECONDS seconds (default 600), and reports the executions.
#   eval "$(cargo xtask env)"; scripts/fuzz-tokenizer.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
limit=${1:-600}
cases=20000
bin=$(cargo test --release -p clip-tokenizer --no-run 2>&1 | grep -o 'target/release/deps/tests-[0-9a-f]*' | head -1)
start=$(date +%s); runs=0
while [ $(( $(date +%s) - start )) -lt "$limit" ]; do
  PROPTEST_CASES=$cases "$bin" properties --test-threads=1 -q > /dev/null
  runs=$((runs + 1))
done
echo "runs=$runs cases_per_property=$cases properties=2 executions=$((runs * cases * 2)) seconds=$(( $(date +%s) - start ))"
