#!/bin/sh
# ctl_fuzz.sh: builds control's libFuzzer harness (clang; tests/fuzz/
# fuzz_ctl.c: SWIM datagrams signed and raw, raft entries and snapshots,
# cluster files) and runs it for a bounded time: FUZZ_SECONDS (default 20
# in make check).  Skips (77) without clang.
set -u
BUILD=${BUILD:-build}
SECS=${FUZZ_SECONDS:-20}
command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1 || {
	echo "ctl_fuzz: SKIP: no clang (apt-get install clang)"; exit 77; }
${MAKE:-make} --no-print-directory BUILD="$BUILD" "$BUILD/fuzz/fuzz_ctl" \
    >/dev/null || { echo "ctl_fuzz: FAIL: build"; exit 1; }
CORPUS=$BUILD/fuzz/corpus-ctl
mkdir -p "$CORPUS"
"$BUILD/fuzz/fuzz_ctl" -max_total_time="$SECS" -timeout=10 \
    -rss_limit_mb=1024 -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$BUILD/fuzz/ctl-" "$CORPUS" \
    > "$BUILD/fuzz/fuzz_ctl.log" 2>&1
rc=$?
grep -E "stat::number_of_executed_units|cov:" "$BUILD/fuzz/fuzz_ctl.log" |
    tail -2
if [ $rc != 0 ]; then
	echo "ctl_fuzz: FAIL (exit $rc); artifacts in $BUILD/fuzz/:"
	tail -40 "$BUILD/fuzz/fuzz_ctl.log"
	exit 1
fi
# UBSan goes on after a report: a report is a failure all the same
if grep -q "runtime error:" "$BUILD/fuzz/fuzz_ctl.log"; then
	echo "ctl_fuzz: FAIL: undefined behaviour (UBSan), in $BUILD/fuzz/fuzz_ctl.log:"
	grep -A2 "runtime error:" "$BUILD/fuzz/fuzz_ctl.log" | head -20
	exit 1
fi
echo "ctl_fuzz: PASS (${SECS}s)"
