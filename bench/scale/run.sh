#!/bin/sh
# bench/scale: weak scaling of data-parallel training on a local cluster
# (control/local-cluster.sh: N simulated nodes on loopback, each with its
# control, dataplane and worker).  Every node trains B rows a step on T
# threads, so a cluster of N trains N*B rows a step; the anchor is one
# worker alone (--standalone, no dataplane) on B rows and T threads, run
# in the same invocation.  For each N it prints node 1's median ms/step,
# the cluster's tokens/s and
#   scale_efficiency_N=<cluster tokens/s / (N * one worker's tokens/s)>
# 1.0 is perfect scaling; below it is what the all-reduce and sharing the
# machine cost.  Run it on a machine with at least N*T cores, or it
# measures the cores' contention, not the cluster.
#
#   BUILD=build bench/scale/run.sh [-n "1 2 4"] [-t THREADS] [-b ROWS]
#                                  [-s STEPS] [JOB [--set k=v ...]]
set -u

BUILD=${BUILD:-build}
LIST="1 2"
THREADS=1
ROWS=""
STEPS=30
while getopts n:t:b:s: o; do
	case $o in
	n) LIST=$OPTARG ;;
	t) THREADS=$OPTARG ;;
	b) ROWS=$OPTARG ;;
	s) STEPS=$OPTARG ;;
	*) sed -n '14,15p' "$0" | sed 's/^# *//' >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
JOB=${1:-configs/jobs/tiny.conf}
[ $# -gt 0 ] && shift
for v in $LIST $THREADS $STEPS $ROWS; do
	case $v in ''|*[!0-9]*|0) echo "bench-scale: '$v': a positive" \
	    "number" >&2; exit 2 ;; esac
done
[ -r "$JOB" ] || { echo "bench-scale: $JOB: no such job file" >&2; exit 2; }
[ -s data/corpus.txt ] || { echo "no data/corpus.txt: make corpus"; exit 1; }
[ -n "$ROWS" ] || ROWS=$(awk -F'[=#; \t]+' '
    /^\[/ { sec = $0; next }
    sec == "[train]" && $1 == "batch_size" { print $2; exit }' "$JOB")
T=$(awk -F'[=#; \t]+' '/^\[/ { sec = $0; next }
    sec == "[model]" && $1 == "block_size" { print $2; exit }' "$JOB")
for a in "$@"; do
	case $a in model.block_size=*) T=${a#model.block_size=} ;; esac
done
TMP=$(mktemp -d /tmp/arceus-bscale.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
BASE=$((31000 + ($$ % 400) * 20))

ARGS="--set train.steps=$STEPS --set train.eval_interval=0
 --set train.eval_iters=1 --set train.sample_len=0 --set checkpoint.dir=
 --set train.threads=$THREADS"

# median ms_per_step of a metrics file, the first 5 steps left out (warm up)
median() {
	sed -n 's/.*"ms_per_step":\([0-9.]*\).*/\1/p' "$1" | tail -n +6 |
	    sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

echo "# $JOB $*: $ROWS rows x $T tokens a step per node, $THREADS" \
    "thread(s) per node; $(nproc) cores" \
    "($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
# shellcheck disable=SC2086
"$BUILD/arceus-worker" --standalone --job "$JOB" $ARGS "$@" \
    --set train.batch_size="$ROWS" -q --metrics-out "$TMP/one.jsonl" \
    > "$TMP/one.log" 2>&1 || { echo "the one-worker run failed:";
    tail -n 5 "$TMP/one.log"; exit 1; }
one=$(median "$TMP/one.jsonl")
printf '%-6s %10s %12s %10s\n' nodes ms_step tokens_per_s efficiency
awk -v m="$one" -v r="$ROWS" -v t="$T" 'BEGIN {
	printf "%-6s %10.1f %12.0f %10s\n", "alone", m, r * t * 1000 / m, "-" }'
for n in $LIST; do
	rm -rf "$TMP/c"
	# shellcheck disable=SC2086
	BUILD=$BUILD control/local-cluster.sh -n "$n" -j "$JOB" \
	    -d "$TMP/c" -p "$BASE" -H 0 -- $ARGS "$@" \
	    --set train.batch_size=$((n * ROWS)) > "$TMP/run.log" 2>&1 ||
	    { echo "the cluster of $n failed:"; tail -n 5 "$TMP/run.log";
	    exit 1; }
	m=$(median "$TMP/c/n1/metrics.jsonl")
	awk -v m="$m" -v one="$one" -v n="$n" -v r="$ROWS" -v t="$T" 'BEGIN {
		tps = n * r * t * 1000 / m
		printf "%-6s %10.1f %12.0f %10.2f\n", n, m, tps, one / m }'
	echo "$n $m" >> "$TMP/res"
done
echo "# load $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v one="$one" '{ printf "scale_efficiency_%s=%.2f\n", $1, one / $2 }' \
    "$TMP/res"
