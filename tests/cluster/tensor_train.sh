#!/bin/sh
# tensor_train.sh: tensor-parallel training across simulated hosts matches
# the single-node run.
#
# Four network namespaces on a private bridge (made and removed here), an
# arceus-dataplane in each (tcp).  Hosts 1 and 2 run an arceus-worker
# each, attached to its dataplane, with dist.tensor = 1,2: host 1 holds heads
# 0-1 of each of the 4 blocks and MLP rows 0-127, host 2 heads 2-3 and
# rows 128-255; both hold the embeddings, the LayerNorms and the head.
# The reference is one standalone worker with the same job.  At the end
# both ranks generate a sample together (the same text).  Both ranks
# must report the same loss, gradient norm and validation loss bit for bit
# (the ring all-reduce hands both the same sums, and all that follows is
# the same math on the same bits), and the reference's within 1e-4
# relative: every block's two projections and two LayerNorm input
# gradients are sums of two half-width matrix products here, one
# full-width product there: fp32 sums in another order (about 1e-7
# relative a step), which AdamW carries on over 20 steps, as dist_train's
# replicas do (the same bound there, for the same reason).
# Two replicas of the group (1,2/3,4, all four hosts, no dropout) must
# agree bit for bit, ranks and replicas, and match one node with their
# global batch within 1e-4 (the rows summed in another order too), with
# each block's bucket all-reduced during the last backward and the same
# bits without that.  Two pipeline stages of two tensor ranks each
# (dist.stages = 1+2,3+4, hosts 1-4, no dropout) agree bit for bit and
# match one node within 1e-4, and resume from their checkpoints bit for
# bit.
# Then 10 steps with a checkpoint and a resume to 20 that must equal the
# uninterrupted run bit for bit; swapped checkpoint directories (rank 0's
# shard on rank 1) are refused, naming the ranks; a rank that lost its
# newest checkpoint makes both fall back to the newest step both have
# (and train on to the same losses); checkpoints of one step from two runs
# are refused (the whole tensors differ); SIGTERM to one rank stops
# both after the same step, each with its checkpoint; a killed worker on
# host 2 stops host 1's within the dataplane's op_timeout_ms, naming peer
# 2; a job whose heads do not split over the ranks is refused naming
# dist.tensor and model.n_head.
#
# Needs root, iproute2 and the corpus (make corpus); exit 77 without the
# first two.  Every process is started here, remembered by PID and killed
# by PID; everything is bounded in time.
set -u

BUILD=${BUILD:-build}
DP=$BUILD/arceus-dataplane
TOOL=$BUILD/arceus-dptool
WORKER=$BUILD/arceus-worker
TAG=att$$
NET=10.$((100 + $$ % 50)).$(( ($$ / 50) % 250 ))
TMP=$(mktemp -d /tmp/arceus-tensor.XXXXXX)
PIDS=""
NS=""
FAILS=0
STEPS=20

log() { printf 'tensor_train: %s\n' "$*"; }

. "$(dirname "$0")/dp_lib.sh"
trap 'dp_cleanup; [ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM

# a small model that trains a step in milliseconds, one thread each;
# dropout on, so that both ranks' masks must be the single node's
JOB="--job configs/jobs/tiny.conf --set model.n_layer=4 --set model.n_head=4
 --set model.n_embd=64 --set model.block_size=32 --set train.steps=$STEPS
 --set train.batch_size=4 --set train.accumulate=2 --set train.dropout=0.1
 --set train.warmup_steps=5 --set train.decay_steps=$STEPS
 --set train.eval_interval=10
 --set train.eval_iters=4 --set train.sample_len=0 --set train.threads=1
 --set checkpoint.dir= -q"

train_setup 4 7720

# start NAME ARGS...: both ranks at once, in the background (PIDs in wp,
# WP1, WP2); rank i checkpoints in $CK$i when CK is set
CK=""
start() {
	name=$1; shift
	wp=""
	for i in 1 2; do
		ck=""
		[ -n "$CK" ] && ck="$CK$i"
		# shellcheck disable=SC2086
		timeout 300 ip netns exec "${TAG}n$i" "$WORKER" \
		    --dataplane "$TMP/n$i/dataplane.sock" $JOB \
		    --set dist.tensor=1,2 --set checkpoint.dir="$ck" "$@" \
		    --metrics-out "$TMP/$name$i.jsonl" > "$TMP/$name$i.log" 2>&1 &
		wp="$wp $!"
		eval "WP$i=$!"
	done
}
# ranks NAME ARGS...: start, then wait; fails unless both exit 0
ranks() {
	start "$@"
	ok=0
	for p in $wp; do wait "$p" || ok=1; done
	return $ok
}

# same_ranks A: the two ranks of run A report the same losses and norms
same_ranks() {
	for f in loss grad_norm val_loss; do
		field $f "$TMP/${1}1.jsonl" > "$TMP/$1.1.$f"
		field $f "$TMP/${1}2.jsonl" > "$TMP/$1.2.$f"
		cmp -s "$TMP/$1.1.$f" "$TMP/$1.2.$f" || return 1
	done
}

# shellcheck disable=SC2086
train_ref $JOB --set train.sample_len=60

# sample: the text after the '--- sample' line
sample() { sed -n '/^--- sample/,/^---$/p' "$1"; }
if ranks tp --set train.sample_len=60; then
	sample "$TMP/tp1.log" > "$TMP/tp1.sample"
	sample "$TMP/tp2.log" > "$TMP/tp2.sample"
	sample "$TMP/ref.log" > "$TMP/ref.sample"
	if [ -s "$TMP/tp1.sample" ] && cmp -s "$TMP/tp1.sample" \
	    "$TMP/tp2.sample"; then
		# the same text as one node's, but for a draw that fell within
		# the last bits of a probability (not a failure)
		cmp -s "$TMP/tp1.sample" "$TMP/ref.sample" && same="the" ||
		    same="not the"
		log "ok both ranks generated the same sample together" \
		    "($same single node's)"
	else
		log "FAIL: the ranks' samples differ or are missing"
		cat "$TMP/tp1.sample" "$TMP/tp2.sample"; FAILS=$((FAILS + 1))
	fi
	if [ "$(wc -l < "$TMP/tp1.jsonl")" = $STEPS ] && same_ranks tp; then
		log "ok both ranks report the same $STEPS losses, norms and" \
		    "validation losses"
	else
		log "FAIL: the ranks disagree"
		paste "$TMP/tp1.jsonl" "$TMP/tp2.jsonl" | head; FAILS=$((FAILS + 1))
	fi
	if r=$(close "$TMP/tp.1.loss" "$TMP/ref.loss" 1e-4); then
		log "ok tp 2 = 1 node, loss: $r"
	else
		log "FAIL loss against the single node: $r"
		paste "$TMP/tp.1.loss" "$TMP/ref.loss"; FAILS=$((FAILS + 1))
	fi
	if r=$(close "$TMP/tp.1.grad_norm" "$TMP/ref.norm" 1e-4); then
		log "ok gradient norms (the shards' squares summed): $r"
	else
		log "FAIL gradient norms against the single node: $r"
		paste "$TMP/tp.1.grad_norm" "$TMP/ref.norm"; FAILS=$((FAILS + 1))
	fi
	if r=$(close "$TMP/tp.1.val_loss" "$TMP/ref.val" 1e-4); then
		log "ok validation loss: $r"
	else
		log "FAIL validation loss against the single node: $r"
		FAILS=$((FAILS + 1))
	fi
	grep -h "tensor parallel" "$TMP"/tp1.log "$TMP"/tp2.log |
	    sed 's/^/tensor_train:   /'
else
	log "FAIL: the tensor-parallel run"; cat "$TMP"/tp1.log "$TMP"/tp2.log
	FAILS=$((FAILS + 1))
fi

# two replicas of the tensor group (hosts 1,2 and 3,4), data parallel:
# each trains 8 rows a step in 2 micro-batches, against the single node's
# 16 in 2 micro-batches of 8, no dropout (the replicas' masks are their
# own)
# quad NAME ARGS...: all four hosts at once; fails unless all exit 0
quad() {
	name=$1; shift
	wp=""
	for i in 1 2 3 4; do
		# shellcheck disable=SC2086
		timeout 300 ip netns exec "${TAG}n$i" "$WORKER" \
		    --dataplane "$TMP/n$i/dataplane.sock" $JOB \
		    --set dist.tensor=1,2/3,4 --set train.dropout=0 "$@" \
		    --metrics-out "$TMP/$name$i.jsonl" > "$TMP/$name$i.log" 2>&1 &
		wp="$wp $!"
	done
	ok=0
	for p in $wp; do wait "$p" || ok=1; done
	return $ok
}
# shellcheck disable=SC2086
if quad dr --set dist.group=600 && timeout 300 "$WORKER" --standalone $JOB \
    --set train.batch_size=8 --set train.dropout=0 \
    --metrics-out "$TMP/ref8.jsonl" > "$TMP/ref8.log" 2>&1; then
	field loss "$TMP/ref8.jsonl" > "$TMP/ref8.loss"
	for i in 1 2 3 4; do field loss "$TMP/dr$i.jsonl" > "$TMP/dr$i.loss"; done
	if [ "$(wc -l < "$TMP/dr1.loss")" = $STEPS ] &&
	    cmp -s "$TMP/dr1.loss" "$TMP/dr2.loss" &&
	    cmp -s "$TMP/dr1.loss" "$TMP/dr3.loss" &&
	    cmp -s "$TMP/dr1.loss" "$TMP/dr4.loss" &&
	    r=$(close "$TMP/dr1.loss" "$TMP/ref8.loss" 1e-4); then
		log "ok 2 replicas x tp 2 agree bit for bit; = 1 node x batch 8," \
		    "loss: $r"
	else
		log "FAIL: 2 replicas x tp 2: ${r:-}"
		paste "$TMP"/dr?.loss "$TMP/ref8.loss" | head; FAILS=$((FAILS + 1))
	fi
else
	log "FAIL: the run of 2 replicas x tp 2"
	tail -n 3 "$TMP"/dr?.log "$TMP/ref8.log"; FAILS=$((FAILS + 1))
fi
grep -h "replica" "$TMP"/dr1.log | sed 's/^/tensor_train:   /'
if grep -q "of [1-9][0-9]* layer buckets went during backward" "$TMP/dr1.log" &&
    ! grep -q " 0 of [0-9]* layer buckets" "$TMP/dr1.log"; then
	log "ok the replicas' blocks were all-reduced while backward went on"
else
	log "FAIL: no replica bucket went during backward"; FAILS=$((FAILS + 1))
fi
for i in 1 2 3 4; do field grad_norm "$TMP/dr$i.jsonl" > "$TMP/dr$i.norm"; done
if quad do --set dist.group=700 --set dist.overlap=no &&
    field loss "$TMP/do1.jsonl" > "$TMP/do1.loss" &&
    field grad_norm "$TMP/do4.jsonl" > "$TMP/do4.norm" &&
    cmp -s "$TMP/do1.loss" "$TMP/dr1.loss" &&
    cmp -s "$TMP/do4.norm" "$TMP/dr1.norm"; then
	log "ok replicas without overlap: the same losses and norms bit for bit"
else
	log "FAIL: replicas without overlap differ"
	tail -n 3 "$TMP"/do?.log; FAILS=$((FAILS + 1))
fi

# two pipeline stages of two tensor ranks each (dist.stages = 1+2,3+4):
# hosts 1, 2 hold blocks 0-1 (and the embeddings), 3, 4 blocks 2-3 (and
# the head), each rank half the heads of its stage's blocks; every rank
# k is a pipeline of its own (1 -> 3, 2 -> 4), coupled to the other by
# its stage's sums.  No dropout (a pipeline's stages draw masks of their
# own).  All four report the same losses and norms bit for bit, the
# single node's within 1e-4; 10 steps, a checkpoint on each, and a
# resume to 20 equal the uninterrupted run bit for bit.
# stq NAME ARGS...: the four at once; fails unless all exit 0
stq() {
	name=$1; shift
	wp=""
	for i in 1 2 3 4; do
		# shellcheck disable=SC2086
		timeout 300 ip netns exec "${TAG}n$i" "$WORKER" \
		    --dataplane "$TMP/n$i/dataplane.sock" $JOB \
		    --set dist.stages=1+2,3+4 --set train.dropout=0 "$@" \
		    --metrics-out "$TMP/$name$i.jsonl" > "$TMP/$name$i.log" 2>&1 &
		wp="$wp $!"
	done
	ok=0
	for p in $wp; do wait "$p" || ok=1; done
	return $ok
}
# shellcheck disable=SC2086
if stq pt --set dist.group=800 && timeout 300 "$WORKER" --standalone $JOB \
    --set train.dropout=0 --metrics-out "$TMP/ref0.jsonl" \
    > "$TMP/ref0.log" 2>&1; then
	field loss "$TMP/ref0.jsonl" > "$TMP/ref0.loss"
	for i in 1 2 3 4; do
		field loss "$TMP/pt$i.jsonl" > "$TMP/pt$i.loss"
		field grad_norm "$TMP/pt$i.jsonl" > "$TMP/pt$i.norm"
	done
	if [ "$(wc -l < "$TMP/pt1.loss")" = $STEPS ] &&
	    cmp -s "$TMP/pt1.loss" "$TMP/pt2.loss" &&
	    cmp -s "$TMP/pt1.loss" "$TMP/pt3.loss" &&
	    cmp -s "$TMP/pt1.loss" "$TMP/pt4.loss" &&
	    cmp -s "$TMP/pt1.norm" "$TMP/pt4.norm" &&
	    r=$(close "$TMP/pt1.loss" "$TMP/ref0.loss" 1e-4); then
		log "ok 2 stages x tp 2 agree bit for bit; = 1 node, loss: $r"
	else
		log "FAIL: 2 stages x tp 2: ${r:-}"
		paste "$TMP"/pt?.loss "$TMP/ref0.loss" | head
		FAILS=$((FAILS + 1))
	fi
	grep -h "tensor rank" "$TMP"/pt1.log | sed 's/^/tensor_train:   /'
else
	log "FAIL: the run of 2 stages x tp 2"
	tail -n 3 "$TMP"/pt?.log "$TMP/ref0.log"; FAILS=$((FAILS + 1))
fi
ptr_ok=1
for steps in 10 $STEPS; do
	wp=""
	for i in 1 2 3 4; do
		# shellcheck disable=SC2086
		timeout 300 ip netns exec "${TAG}n$i" "$WORKER" \
		    --dataplane "$TMP/n$i/dataplane.sock" $JOB \
		    --set dist.stages=1+2,3+4 --set train.dropout=0 \
		    --set dist.group=800 --set train.steps=$steps \
		    --set checkpoint.dir="$TMP/ckp$i" \
		    --metrics-out "$TMP/pr$i.jsonl" > "$TMP/pr$steps-$i.log" 2>&1 &
		wp="$wp $!"
	done
	for p in $wp; do wait "$p" || ptr_ok=0; done
done
field loss "$TMP/pr4.jsonl" > "$TMP/pr4.loss"
if [ $ptr_ok = 1 ] && grep -q "resumed from .* at step 10" \
    "$TMP/pr$STEPS-3.log" && cmp -s "$TMP/pr4.loss" "$TMP/pt1.loss"; then
	log "ok 2 stages x tp 2: 10 steps, checkpoints, resume, 10 more =" \
	    "$STEPS steps bit for bit"
else
	log "FAIL: 2 stages x tp 2, the resumed run differs"
	tail -n 3 "$TMP"/pr$STEPS-?.log; FAILS=$((FAILS + 1))
fi

# resume: 10 steps with a checkpoint (rank i in $TMP/ckr<i>), then on
# to 20 from it (groups of their own from here: a run that failed would
# leave its group's sequences apart on the two dataplanes)
resume_ok=1
for steps in 10 $STEPS; do
	CK=$TMP/ckr ranks rs --set train.steps=$steps --set dist.group=200 ||
	    resume_ok=0
	for i in 1 2; do cp "$TMP/rs$i.log" "$TMP/rs$steps-$i.log"; done
done
if [ $resume_ok = 1 ] && [ -d "$TMP/ckr1/$(printf 'step-%010d' 10)" ] &&
    [ -d "$TMP/ckr2/$(printf 'step-%010d' 10)" ] &&
    grep -q "resumed from .* at step 10" "$TMP/rs$STEPS-1.log" &&
    grep -q "resumed from .* at step 10" "$TMP/rs$STEPS-2.log" &&
    same_ranks rs && cmp -s "$TMP/rs.1.loss" "$TMP/tp.1.loss" &&
    cmp -s "$TMP/rs.1.grad_norm" "$TMP/tp.1.grad_norm"; then
	log "ok 10 steps, a checkpoint per rank, resume, 10 more = $STEPS" \
	    "steps bit for bit"
else
	log "FAIL: the resumed run differs from the uninterrupted one"
	tail -n 3 "$TMP"/rs*.log
	paste "$TMP/rs.1.loss" "$TMP/tp.1.loss" | head -n 25
	FAILS=$((FAILS + 1))
fi

# each rank's checkpoint is its own shard: swapped directories are refused
# (the shards are of the same size; the trainer state says whose)
CK="" ranks sw --set train.steps=$((STEPS + 5)) --set dist.group=300 \
    --set checkpoint.dir="$TMP/ckr2" > /dev/null 2>&1
sw_rc=$?
if [ $sw_rc != 0 ] && grep -q "is of the whole model, tensor rank 1 of 2, this \
worker trains the whole model, tensor rank 0 of 2" "$TMP/sw1.log"; then
	log "ok another rank's checkpoint is refused: $(grep -o \
	    'is of the whole model.*' "$TMP/sw1.log" | cut -c1-90)..."
else
	log "FAIL: a swapped checkpoint was not refused"
	tail -n 3 "$TMP"/sw1.log "$TMP"/sw2.log; FAILS=$((FAILS + 1))
fi

# a rank that lost its newest checkpoint (step 20): both fall back to
# step 10, the newest that both have, and train on to the same losses
rm -rf "$TMP/ckr2/$(printf 'step-%010d' $STEPS)"
tail -n 10 "$TMP/tp.1.loss" > "$TMP/tp.last10"
if CK=$TMP/ckr ranks fb --set dist.group=350 &&
    grep -q "falling back from step $STEPS to step 10" "$TMP/fb1.log" &&
    grep -q "resumed from .* at step 10\$" "$TMP/fb1.log" &&
    grep -q "resumed from .* at step 10\$" "$TMP/fb2.log" &&
    same_ranks fb && cmp -s "$TMP/fb.1.loss" "$TMP/tp.last10"; then
	log "ok rank 1 without its step $STEPS: both ranks fell back to step" \
	    "10 and trained on to the same losses"
else
	log "FAIL: the fallback to the newest common checkpoint"
	tail -n 4 "$TMP"/fb1.log "$TMP"/fb2.log; FAILS=$((FAILS + 1))
fi

# checkpoints of one step from two runs (another learning rate): the job
# and the step agree, the tensors every rank holds whole do not: both
# ranks refuse, naming rank 1
if CK=$TMP/xa ranks xa --set train.steps=5 --set dist.group=360 &&
    CK=$TMP/xb ranks xb --set train.steps=5 --set train.lr=2e-3 \
    --set dist.group=360; then
	cp -r "$TMP/xa1" "$TMP/xm1"
	cp -r "$TMP/xb2" "$TMP/xm2"
	if ! CK=$TMP/xm ranks xm --set train.steps=8 --set dist.group=370 &&
	    grep -q "tensor rank 1 (node 2) holds other values of the whole" \
	    "$TMP/xm1.log" && grep -q "tensor rank 1 (node 2) holds other" \
	    "$TMP/xm2.log"; then
		log "ok checkpoints of two runs are refused by both ranks:" \
		    "$(grep -o 'tensor rank 1 (node 2) holds.*' "$TMP/xm1.log" |
		    cut -c1-80)..."
	else
		log "FAIL: checkpoints of two runs were not refused"
		tail -n 3 "$TMP"/xm1.log "$TMP"/xm2.log; FAILS=$((FAILS + 1))
	fi
else
	log "FAIL: the runs of 5 steps"; tail -n 3 "$TMP"/x[ab]?.log
	FAILS=$((FAILS + 1))
fi

# started NAME: rank 1 finished 3 steps of run NAME
started() { [ "$(wc -l < "$TMP/${1}1.jsonl" 2>/dev/null || echo 0)" -ge 3 ]; }

# SIGTERM to one rank: both stop after the same step, with checkpoints
CK=$TMP/stck start st --set train.steps=1000000 --set train.eval_interval=0 \
    --set checkpoint.interval=1000000 --set dist.group=400
if until_ok 60 started st; then
	# to the worker itself: timeout(1) would pass it on twice (to its
	# child, then to its process group), and a second signal exits at once
	w2=$(pgrep -P "$WP2")
	[ -n "$w2" ] && kill -TERM "$w2"
	wait "$WP1"; rc1=$?
	wait "$WP2"; rc2=$?
	n1=$(wc -l < "$TMP/st1.jsonl"); n2=$(wc -l < "$TMP/st2.jsonl")
	if [ $rc1 = 0 ] && [ $rc2 = 0 ] && [ "$n1" = "$n2" ] &&
	    grep -q "stopped by signal at step $n1\$" "$TMP/st1.log" &&
	    grep -q "stopped by signal at step $n1\$" "$TMP/st2.log" &&
	    [ -d "$TMP/stck1/$(printf 'step-%010d' "$n1")" ] &&
	    [ -d "$TMP/stck2/$(printf 'step-%010d' "$n1")" ]; then
		log "ok SIGTERM to rank 1: both ranks stopped after step $n1," \
		    "each with its checkpoint"
	else
		log "FAIL: SIGTERM to one rank (exits $rc1 $rc2, steps $n1 $n2)"
		tail -n 3 "$TMP"/st1.log "$TMP"/st2.log; FAILS=$((FAILS + 1))
	fi
else
	log "FAIL: the run to stop did not start"; tail -n 5 "$TMP"/st1.log
	FAILS=$((FAILS + 1))
	for p in $wp; do kill -9 "$p" 2>/dev/null; wait "$p"; done
fi

# a lost worker: host 2's is killed; host 1's waits for the group's sum
# until the dataplane's op_timeout_ms (10 s), names peer 2 and keeps the
# checkpoint of its last whole step
CK=$TMP/kwck start kw --set train.steps=1000000 --set train.eval_interval=0 \
    --set checkpoint.interval=1000000 --set dist.group=500
if until_ok 60 started kw; then
	w2=$(pgrep -P "$WP2")
	[ -n "$w2" ] && kill -9 "$w2"
	t0=$(date +%s%N)
	wait "$WP1"; rc=$?
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	wait "$WP2"
	done1=$(wc -l < "$TMP/kw1.jsonl")
	if [ -n "$w2" ] && [ $rc != 0 ] && grep -q "failed: peer 2" \
	    "$TMP/kw1.log" &&
	    [ -d "$TMP/kwck1/$(printf 'step-%010d' "$done1")" ]; then
		log "ok a killed worker: rank 0 stopped after $ms ms with a" \
		    "checkpoint of its $done1 steps: $(grep -o \
		    'step [0-9]*: .*failed: [^;]*' "$TMP/kw1.log")"
	else
		log "FAIL: worker 1 (exit $rc) did not name peer 2 (worker 2 pid" \
		    "${w2:-none})"; tail -n 5 "$TMP/kw1.log"; FAILS=$((FAILS + 1))
	fi
else
	log "FAIL: the run to kill did not start"; tail -n 5 "$TMP"/kw1.log
	FAILS=$((FAILS + 1))
	for p in $wp; do kill -9 "$p" 2>/dev/null; wait "$p"; done
fi

# heads that do not split over the ranks: refused before anything starts
# shellcheck disable=SC2086
if timeout 60 "$WORKER" --dataplane "$TMP/n1/dataplane.sock" $JOB \
    --set dist.tensor=1,2 --set model.n_head=1 > "$TMP/bad.log" 2>&1; then
	log "FAIL: 1 head over 2 ranks was not refused"; FAILS=$((FAILS + 1))
elif grep -q "dist.tensor = 1,2: 2 ranks do not divide model.n_head = 1" \
    "$TMP/bad.log"; then
	log "ok 1 head over 2 ranks is refused: $(head -n 1 "$TMP/bad.log")"
else
	log "FAIL: the refusal does not say why"; cat "$TMP/bad.log"
	FAILS=$((FAILS + 1))
fi

for f in "$TMP"/*.log; do
	if grep -q "AddressSanitizer\|runtime error\|LeakSanitizer" "$f"; then
		log "FAIL: sanitizer report in $(basename "$f"):"
		grep -A5 "AddressSanitizer\|runtime error\|LeakSanitizer" "$f"
		FAILS=$((FAILS + 1))
	fi
done
if [ $FAILS -gt 0 ]; then log "FAIL: $FAILS"; exit 1; fi
log "PASS"
exit 0
