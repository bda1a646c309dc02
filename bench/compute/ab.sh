#!/bin/bash
# bench/compute/ab.sh: two builds of arceus-worker and PyTorch on one
# config, alternating, so that a change is measured against the build
# before it under the same load.  Prints per round the median ms/step of
# each (steps after the third) and, for arceus, the 10th percentile
# after a slash (the step least disturbed by other work on the machine).
#
# usage: bench/compute/ab.sh OLD_WORKER NEW_WORKER [--config tiny|small]
#                            [--threads N] [--steps N] [--reps N]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
usage() {
	echo "usage: $0 OLD_WORKER NEW_WORKER [--config tiny|small]" \
	    "[--threads N] [--steps N] [--reps N]" >&2
	exit 2
}
[ $# -ge 2 ] || usage
old=$1 new=$2
shift 2
cfg=tiny th=1 steps=40 reps=3
while [ $# -gt 0 ]; do
	case "$1" in
	--config) cfg=$2; shift 2 ;;
	--threads) th=$2; shift 2 ;;
	--steps) steps=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	*) usage ;;
	esac
done
case "$cfg" in
tiny) set -- 4 4 128 64 12 ;;
small) set -- 6 6 384 256 12 ;;
*) usage ;;
esac
L=$1 H=$2 C=$3 T=$4 B=$5
for w in "$old" "$new"; do
	[ -x "$w" ] || { echo "ab.sh: $w: not an executable" >&2; exit 1; }
done
[ "$steps" -ge 6 ] || { echo "ab.sh: --steps must be at least 6" >&2; exit 2; }
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

arceus() {
	rm -f "$tmp/m.jsonl"	# --metrics-out appends
	"$1" --standalone --job configs/jobs/tiny.conf -q \
	    --set model.n_layer="$L" --set model.n_head="$H" \
	    --set model.n_embd="$C" --set model.block_size="$T" \
	    --set train.batch_size="$B" --set train.threads="$th" \
	    --set train.steps="$steps" --set train.eval_interval=0 \
	    --set train.eval_iters=1 --set train.sample_len=0 \
	    --set checkpoint.dir= --metrics-out "$tmp/m.jsonl" 2>/dev/null
	$PY -c "
import json,statistics,sys
v=sorted([json.loads(l)['ms_per_step'] for l in open(sys.argv[1])][3:])
print('%.1f/%.1f' % (statistics.median(v), v[len(v) // 10]))" "$tmp/m.jsonl"
}

torch() {
	OPENBLAS_NUM_THREADS="$th" OMP_NUM_THREADS="$th" \
	$PY bench/compute/torch_gpt.py --data data/corpus.txt --layers "$L" \
	    --heads "$H" --embd "$C" --block "$T" --batch "$B" \
	    --threads "$th" --steps "$steps" --eval-iters 1 | \
	    $PY -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["ms_per_step"])'
}

echo "# $cfg, $th thread(s), $steps steps, $(date -u +%H:%M) UTC," \
    "load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-14s %-14s %9s %10s %10s\n' old new torch torch/old torch/new
for r in $(seq "$reps"); do
	o=$(arceus "$old")
	n=$(arceus "$new")
	t=$(torch)
	printf '%-14s %-14s %9s %9.2fx %9.2fx\n' "$o" "$n" "$t" \
	    "$($PY -c "print($t / ${o%/*})")" "$($PY -c "print($t / ${n%/*})")"
done
echo "# load $(cut -d' ' -f1-3 /proc/loadavg)"
