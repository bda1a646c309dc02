#!/bin/sh
# dp_fuzz.sh: builds the dataplane's libFuzzer harness (clang) and runs it
# for a bounded time from the committed seeds: FUZZ_SECONDS (default 20 in
# make check; `make fuzz` runs 600).  Skips (77) without clang.
set -u
BUILD=${BUILD:-build}
SECS=${FUZZ_SECONDS:-20}
command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1 || {
	echo "dp_fuzz: SKIP: no clang (apt-get install clang)"; exit 77; }
${MAKE:-make} --no-print-directory BUILD="$BUILD" "$BUILD/fuzz/fuzz_dp" \
    >/dev/null || { echo "dp_fuzz: FAIL: build"; exit 1; }
CORPUS=$BUILD/fuzz/corpus-dp
mkdir -p "$CORPUS"
cp tests/fuzz/seeds-dp/* "$CORPUS/" 2>/dev/null
"$BUILD/fuzz/fuzz_dp" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=1024 -max_len=16384 \
    -print_final_stats=1 -artifact_prefix="$BUILD/fuzz/" "$CORPUS" \
    > "$BUILD/fuzz/fuzz_dp.log" 2>&1
rc=$?
grep -E "stat::number_of_executed_units|cov:" "$BUILD/fuzz/fuzz_dp.log" | tail -2
if [ $rc != 0 ]; then
	echo "dp_fuzz: FAIL (exit $rc); artifacts in $BUILD/fuzz/:"
	tail -40 "$BUILD/fuzz/fuzz_dp.log"
	exit 1
fi
# UBSan goes on after a report: a report is a failure all the same
if grep -q "runtime error:" "$BUILD/fuzz/fuzz_dp.log"; then
	echo "dp_fuzz: FAIL: undefined behaviour (UBSan), in $BUILD/fuzz/fuzz_dp.log:"
	grep -A2 "runtime error:" "$BUILD/fuzz/fuzz_dp.log" | head -20
	exit 1
fi
echo "dp_fuzz: PASS (${SECS}s)"
