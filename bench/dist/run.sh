#!/bin/sh
# bench/dist: data-parallel training on a local cluster (control/local-
# cluster.sh: NODES simulated nodes on loopback), against the same job on
# one node, in the same run; and the layer buckets all-reduced during
# backward (dist.overlap) against all of them after it.  Each setting runs
# REPS times, alternating, and keeps its best median ms/step (the machine
# is shared: the best is the least disturbed).  Prints ms/step, tokens/s
# and the ratios, ending with
#   overlap_vs_after=<after ms / overlap ms>
#   cluster_vs_node=<one node ms / cluster ms, same global batch>
#
#   BUILD=build bench/dist/run.sh [-n NODES] [-r REPS] [-s STEPS] [JOB]
set -u

BUILD=${BUILD:-build}
NODES=2
REPS=3
STEPS=60
while getopts n:r:s: o; do
	case $o in
	n) NODES=$OPTARG ;;
	r) REPS=$OPTARG ;;
	s) STEPS=$OPTARG ;;
	*) echo "usage: $0 [-n NODES] [-r REPS] [-s STEPS] [JOB]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
JOB=${1:-configs/jobs/tiny.conf}
TMP=$(mktemp -d /tmp/arceus-bdist.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
BASE=$((30000 + ($$ % 500) * 20))
[ -s data/corpus.txt ] || { echo "no data/corpus.txt: make corpus"; exit 1; }

ARGS="--set train.steps=$STEPS --set train.eval_interval=0
 --set train.eval_iters=1 --set train.sample_len=0 --set checkpoint.dir="

# median ms_per_step of a metrics file, the first 5 steps left out (warm up)
median() {
	sed -n 's/.*"ms_per_step":\([0-9.]*\).*/\1/p' "$1" | tail -n +6 |
	    sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

best() { # NAME VALUE: keep the lowest per name
	f=$TMP/best.$1
	if [ ! -s "$f" ] || awk -v a="$2" -v b="$(cat "$f")" \
	    'BEGIN { exit !(a < b) }'; then echo "$2" > "$f"; fi
}

cores=$(nproc)
for r in $(seq 1 "$REPS"); do
	for mode in yes no; do
		rm -rf "$TMP/c"
		# shellcheck disable=SC2086
		BUILD=$BUILD control/local-cluster.sh -n "$NODES" -j "$JOB" \
		    -d "$TMP/c" -p "$BASE" -H 0 -- $ARGS \
		    --set dist.overlap=$mode > "$TMP/run.log" 2>&1 ||
		    { echo "the local cluster failed:"; tail "$TMP/run.log";
		    exit 1; }
		m=$(median "$TMP/c/n1/metrics.jsonl")
		echo "rep $r: cluster of $NODES, overlap=$mode: $m ms/step"
		best "overlap_$mode" "$m"
	done
	# shellcheck disable=SC2086
	"$BUILD/arceus-worker" --standalone --job "$JOB" $ARGS \
	    --set train.threads="$cores" -q --metrics-out "$TMP/one.jsonl" \
	    > /dev/null 2>&1 || { echo "the one-node run failed"; exit 1; }
	m=$(median "$TMP/one.jsonl")
	rm -f "$TMP/one.jsonl"
	echo "rep $r: one node, $cores thread(s): $m ms/step"
	best one "$m"
done
y=$(cat "$TMP/best.overlap_yes") n=$(cat "$TMP/best.overlap_no")
o=$(cat "$TMP/best.one")
echo "best medians: overlap $y ms, after backward $n ms, one node $o ms" \
    "($NODES nodes on $cores cores; load $(cut -d' ' -f1-3 /proc/loadavg))"
awk -v y="$y" -v n="$n" -v o="$o" 'BEGIN {
	printf "overlap_vs_after=%.2f\ncluster_vs_node=%.2f\n", n / y, o / y }'
