#!/bin/bash
# bench/compute: arceus-worker against PyTorch (Debian's python3-torch,
# CPU) on the same machine, in the same run, same shapes, batch, threads
# and optimizer.  Prints ms/step of both and the ratio per config and
# thread count, the achieved GFLOP/s of arceus' step against raw
# dnnl_sgemm on the same shapes, and the convergence check: validation
# loss of tiny.conf after the same steps, both; then, per config, the
# fraction of this core's FMA peak dnnl_sgemm reaches (fma_peak.c).
#
# usage: bench/compute/run.sh [--steps N] [--reps N] [--conv-steps N]
#                             [--no-conv | --conv-only] [--threads "1 2"]
# PY=python3 with torch (default /usr/bin/python3, Debian's python3-torch).
# Machines are shared and noisy: absolute times mean little.  Each pair is
# measured back to back, alternating, --reps times (default 2); the best
# median of each side is kept, and the ratio is what to read.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PY=${PY:-/usr/bin/python3}
threads="1 2"
steps=30
conv_steps=2000
conv=1
speed=1
reps=2
while [ $# -gt 0 ]; do
	case "$1" in
	--steps) steps=$2; shift 2 ;;
	--conv-steps) conv_steps=$2; shift 2 ;;
	--no-conv) conv=0; shift ;;
	--conv-only) speed=0; shift ;;
	--reps) reps=$2; shift 2 ;;
	--threads) threads=$2; shift 2 ;;
	*) echo "usage: $0 [--steps N] [--reps N] [--conv-steps N] [--no-conv] [--threads LIST]" >&2
	   exit 2 ;;
	esac
done
if ! $PY -c 'import torch' 2>/dev/null; then
	echo "bench-compute: python3-torch is missing: run 'make deps-bench'" >&2
	exit 1
fi
# PyTorch in its fastest setting: OpenBLAS (not the reference BLAS), and
# on AVX-512 CPUs the core type OpenBLAS 0.3.21 fails to detect.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 || true)
if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; fi
# Both sides use libgomp: the same wait policy for both (arceus-worker
# defaults to passive, which is also PyTorch's faster one on a busy box).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
echo "# torch $($PY -c 'import torch, torch.nn.functional as F
print(torch.__version__, "fused attention" if hasattr(F,
    "scaled_dot_product_attention") else "T x T attention")'), BLAS $blas," \
    "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}, OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
    "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() { $PY -c "
import json,statistics,sys
v=[json.loads(l)['ms_per_step'] for l in open(sys.argv[1])][3:]
print('%.3f' % statistics.median(v))" "$1"; }

arceus_ms() {	# L H C T B threads steps
	rm -f "$tmp/m.jsonl"
	"$BUILD/arceus-worker" --standalone --job configs/jobs/tiny.conf -q \
	    --set model.n_layer="$1" --set model.n_head="$2" \
	    --set model.n_embd="$3" --set model.block_size="$4" \
	    --set train.batch_size="$5" --set train.threads="$6" \
	    --set train.steps="$7" --set train.eval_interval=0 \
	    --set train.eval_iters=1 --set train.sample_len=0 \
	    --set checkpoint.dir= --metrics-out "$tmp/m.jsonl" 2>/dev/null
	median "$tmp/m.jsonl"
}

# OpenBLAS' pthread build keeps its own pool, which torch.set_num_threads()
# does not size: without OPENBLAS_NUM_THREADS a "1-thread" PyTorch ran its
# GEMMs on every core (181% CPU, seen with ps).
torch_ms() {
	OPENBLAS_NUM_THREADS="$6" OMP_NUM_THREADS="$6" \
	$PY bench/compute/torch_gpt.py --data data/corpus.txt --layers "$1" \
	    --heads "$2" --embd "$3" --block "$4" --batch "$5" \
	    --threads "$6" --steps "$7" --eval-iters 1 | \
	    $PY -c 'import json,sys; print("%.3f" % json.load(sys.stdin)["ms_per_step"])'
}

if [ "$speed" = 1 ]; then
# gemm_floor_ms: the step's matmuls alone at raw dnnl_sgemm speed (the
# probe); bound: torch_ms / gemm_floor_ms, the speedup arceus would reach
# if everything but its matmuls took no time at all.
printf '%-6s %7s %12s %12s %8s %12s %12s %13s %7s\n' config threads \
    arceus_ms torch_ms speedup step_gflops sgemm_gflops gemm_floor_ms bound
worst=999
for cfg in "tiny 4 4 128 64 12" "small 6 6 384 256 12"; do
	set -- $cfg
	name=$1 L=$2 H=$3 C=$4 T=$5 B=$6
	n=$steps
	[ "$name" = small ] && n=$(( steps / 2 > 8 ? steps / 2 : 8 ))
	for th in $threads; do
		a=999999 t=999999
		for r in $(seq "$reps"); do
			x=$(arceus_ms "$L" "$H" "$C" "$T" "$B" "$th" "$n")
			y=$(torch_ms "$L" "$H" "$C" "$T" "$B" "$th" "$n")
			a=$($PY -c "print(min($a, $x))")
			t=$($PY -c "print(min($t, $y))")
		done
		probe=$("$BUILD/bench/sgemm_probe" "$L" "$C" "$T" "$B" "$th")
		read -r ratio gf sg floor bound < <($PY -c "
import json,sys
a,t=float(sys.argv[1]),float(sys.argv[2]); p=json.loads(sys.argv[3])
L,C,T,B=map(int,sys.argv[4:8])
attn=2.0*B*T*T*C*L*3.5          # causal QK^T and PV, fwd + bwd
flops=p['matmul_flops_per_step']+attn
floor=p['matmul_flops_per_step']/p['sgemm_gflops']/1e6     # ms
print('%.2f %.1f %.1f %.1f %.2f' % (t/a, flops/(a/1e3)/1e9,
    p['sgemm_gflops'], floor, t/floor))" \
		    "$a" "$t" "$probe" "$L" "$C" "$T" "$B")
		printf '%-6s %7s %12s %12s %7sx %12s %12s %13s %6sx\n' \
		    "$name" "$th" "$a" "$t" "$ratio" "$gf" "$sg" "$floor" \
		    "$bound"
		worst=$($PY -c "print(min($worst, $ratio))")
	done
done
echo "speedup_vs_torch_min=$worst"

# The GEMM floor against this core's peak (bench/compute/fma_peak.c): how
# much of the FMA units dnnl_sgemm keeps busy on each config's step shapes,
# one thread, operands hot (as sgemm_probe) and evicted from the caches.
if [ -x "$BUILD/bench/fma_peak" ]; then
	for cfg in "tiny 4 128 64 12" "small 6 384 256 12"; do
		set -- $cfg
		echo "# $1: $("$BUILD/bench/fma_peak" "$2" "$3" "$4" "$5" 1 | tail -1)"
	done
fi

fi
if [ "$conv" = 1 ]; then
	echo "# convergence: tiny.conf, $conv_steps steps, 2 threads, both"
	"$BUILD/arceus-worker" --standalone --job configs/jobs/tiny.conf -q \
	    --set train.steps="$conv_steps" --set train.threads=2 \
	    --set train.eval_interval=0 --set train.sample_len=0 \
	    --set checkpoint.dir= --metrics-out "$tmp/c.jsonl" 2>/dev/null
	av=$($PY -c "
import json,sys
print([json.loads(l) for l in open(sys.argv[1])][-1]['val_loss'])" "$tmp/c.jsonl")
	tv=$(OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 $PY bench/compute/torch_gpt.py --data data/corpus.txt --layers 4 \
	    --heads 4 --embd 128 --block 64 --batch 12 --threads 2 \
	    --steps "$conv_steps" --eval-iters 20 | \
	    $PY -c 'import json,sys; print(json.load(sys.stdin)["val_loss"])')
	$PY -c "
a,t=$av,$tv
print('val_loss arceus=%.4f torch=%.4f difference=%+.2f%%' % (a,t,100*(a-t)/t))
print('val_loss_within_2pct=%s' % ('yes' if abs(a-t)/t <= 0.02 else 'no'))"
fi
