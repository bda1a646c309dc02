#!/bin/sh
# pipe_train.sh: pipeline-parallel training across simulated hosts matches
# the single-node run.
#
# Four network namespaces on a private bridge (made and removed here), an
# arceus-dataplane in each (tcp).  Hosts 1 and 2 run an arceus-worker
# each, attached to its dataplane, with dist.stages = 1,2: host 1 trains
# blocks 0-1 and the embeddings, host 2 blocks 2-3, the head and the loss,
# 4 micro-batches of 4 rows a step (1F1B).  The reference is one
# standalone worker with the same batch, accumulate and seed.  Both stages
# must report the same loss and gradient norm bit for bit (they share
# them), and the reference's within 1e-5 relative: the same math runs in
# the same order, but for the tied embedding's gradient, whose two halves
# (head and input) are added per micro-batch on one node and once per step
# here (fp32 rounding, about 1e-7, that AdamW carries on), and the norm's
# sum of squares, added per stage (double).  The metrics print the loss
# with 6 decimals and the norm with 6 digits: two values either side of a
# rounding of the norm's sixth digit differ by up to 1e-5 relative, hence
# 2e-5 there.  GPipe must give the same bits as 1F1B, stages of 1 and 3
# blocks and four stages of one block (all four hosts) the reference's
# losses.  Two replicas of the pipeline (1,2/3,4,
# all four hosts) must agree bit for bit and match the single node with
# their global batch within 1e-4 (the same rows summed in another order),
# with each block's bucket all-reduced during the last backward and the
# same bits without that; shares of 3 and 5 rows likewise; bf16 gradients
# between them within 2%.
# Then 10 steps with a checkpoint, a resume to 20 that must equal the
# uninterrupted run bit for bit; a stage started with another stage's
# checkpoint directory is refused; a stage that lost its newest
# checkpoint makes both fall back to the newest step both have (and train
# on to the same losses), one with none while the other has some makes
# both refuse; SIGTERM to one stage stops both after
# the same step, each with its checkpoint; a killed peer (host 2's
# dataplane) stops host 1's worker naming peer 2, with a checkpoint of its
# last whole step; and with that dataplane back, a killed worker on host 2
# stops host 1's within the dataplane's op_timeout_ms, naming peer 2.
#
# Needs root, iproute2 and the corpus (make corpus); exit 77 without the
# first two.  Every process is started here, remembered by PID and killed
# by PID; everything is bounded in time.
set -u

BUILD=${BUILD:-build}
DP=$BUILD/arceus-dataplane
TOOL=$BUILD/arceus-dptool
WORKER=$BUILD/arceus-worker
TAG=apt$$
NET=10.$((50 + $$ % 50)).$(( ($$ / 50) % 250 ))
TMP=$(mktemp -d /tmp/arceus-pipe.XXXXXX)
PIDS=""
NS=""
FAILS=0
STEPS=20

log() { printf 'pipe_train: %s\n' "$*"; }

. "$(dirname "$0")/dp_lib.sh"
trap 'dp_cleanup; [ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM

# a small model that trains a step in milliseconds, one thread each
JOB="--job configs/jobs/tiny.conf --set model.n_layer=4 --set model.n_head=2
 --set model.n_embd=64 --set model.block_size=32 --set train.steps=$STEPS
 --set train.batch_size=4 --set train.accumulate=4
 --set train.warmup_steps=5 --set train.decay_steps=$STEPS
 --set train.eval_interval=10
 --set train.eval_iters=4 --set train.sample_len=0 --set train.threads=1
 --set checkpoint.dir= -q"

train_setup 4 7720

# stages NAME ARGS...: both stage workers at once; fails unless both exit 0
stages() {
	name=$1; shift
	wp=""
	for i in 1 2; do
		# shellcheck disable=SC2086
		timeout 300 ip netns exec "${TAG}n$i" "$WORKER" \
		    --dataplane "$TMP/n$i/dataplane.sock" $JOB \
		    --set dist.stages=1,2 "$@" \
		    --metrics-out "$TMP/$name$i.jsonl" > "$TMP/$name$i.log" 2>&1 &
		wp="$wp $!"
	done
	ok=0
	for p in $wp; do wait "$p" || ok=1; done
	return $ok
}

# same A B: the two stages of run A report the same losses and norms
same_stages() {
	for f in loss grad_norm val_loss; do
		field $f "$TMP/${1}1.jsonl" > "$TMP/$1.1.$f"
		field $f "$TMP/${1}2.jsonl" > "$TMP/$1.2.$f"
		cmp -s "$TMP/$1.1.$f" "$TMP/$1.2.$f" || return 1
	done
}

# the reference: one node, the same global batch in the same micro-batches
# shellcheck disable=SC2086
train_ref $JOB

if stages pp; then
	if [ "$(wc -l < "$TMP/pp1.jsonl")" = $STEPS ] && same_stages pp; then
		log "ok both stages report the same $STEPS losses, norms and" \
		    "validation losses"
	else
		log "FAIL: the stages disagree"
		paste "$TMP/pp1.jsonl" "$TMP/pp2.jsonl" | head; FAILS=$((FAILS + 1))
	fi
	if r=$(close "$TMP/pp.1.loss" "$TMP/ref.loss" 1e-5); then
		log "ok 2 stages = 1 node, loss: $r"
	else
		log "FAIL loss against the single node: $r"
		paste "$TMP/pp.1.loss" "$TMP/ref.loss"; FAILS=$((FAILS + 1))
	fi
	if r=$(close "$TMP/pp.1.grad_norm" "$TMP/ref.norm" 2e-5); then
		log "ok gradient norms: $r"
	else
		log "FAIL gradient norms against the single node: $r"
		paste "$TMP/pp.1.grad_norm" "$TMP/ref.norm"; FAILS=$((FAILS + 1))
	fi
	if r=$(close "$TMP/pp.1.val_loss" "$TMP/ref.val" 1e-5); then
		log "ok validation loss through the stages: $r"
	else
		log "FAIL validation loss against the single node: $r"
		FAILS=$((FAILS + 1))
	fi
	grep -h "pipeline" "$TMP"/pp1.log "$TMP"/pp2.log |
	    sed 's/^/pipe_train:   /'
else
	log "FAIL: the pipeline run"; cat "$TMP"/pp1.log "$TMP"/pp2.log
	FAILS=$((FAILS + 1))
fi

# GPipe: other order of work, the same sums in the same order
if stages gp --set dist.schedule=gpipe && same_stages gp &&
    cmp -s "$TMP/gp.1.loss" "$TMP/pp.1.loss" &&
    cmp -s "$TMP/gp.1.grad_norm" "$TMP/pp.1.grad_norm"; then
	log "ok GPipe gives the losses of 1F1B bit for bit"
else
	log "FAIL: GPipe differs from 1F1B"
	tail -n 3 "$TMP"/gp1.log "$TMP"/gp2.log; FAILS=$((FAILS + 1))
fi

# uneven stages: 1 block on host 1, 3 on host 2
if stages un --set dist.layers=1,3 && same_stages un &&
    r=$(close "$TMP/un.1.loss" "$TMP/ref.loss" 1e-5); then
	log "ok blocks 1 + 3 = 1 node, loss: $r"
else
	log "FAIL: stages of 1 and 3 blocks: ${r:-}"
	tail -n 3 "$TMP"/un1.log "$TMP"/un2.log; FAILS=$((FAILS + 1))
fi

# four stages of one block each, on all four hosts: the middle stages
# (no embedding, no head) receive from both sides, 1F1B warms up 3, 2, 1
# and 0 micro-batches.  Each set of members gets group ids of its own: a
# dataplane drops what arrives for a group it still knows with other
# members (control's epochs give fresh groups in a cluster)
wp=""
for i in 1 2 3 4; do
	# shellcheck disable=SC2086
	timeout 300 ip netns exec "${TAG}n$i" "$WORKER" \
	    --dataplane "$TMP/n$i/dataplane.sock" $JOB \
	    --set dist.stages=1,2,3,4 --set dist.group=200 \
	    --metrics-out "$TMP/s4$i.jsonl" > "$TMP/s4$i.log" 2>&1 &
	wp="$wp $!"
done
s4_ok=1
for p in $wp; do wait "$p" || s4_ok=0; done
for i in 1 2 3 4; do field loss "$TMP/s4$i.jsonl" > "$TMP/s4$i.loss"; done
if [ $s4_ok = 1 ] && cmp -s "$TMP/s41.loss" "$TMP/s44.loss" &&
    cmp -s "$TMP/s42.loss" "$TMP/s43.loss" &&
    cmp -s "$TMP/s41.loss" "$TMP/s42.loss" &&
    r=$(close "$TMP/s41.loss" "$TMP/ref.loss" 1e-5); then
	log "ok 4 stages of 1 block = 1 node, loss: $r"
else
	log "FAIL: 4 stages: ${r:-}"
	tail -n 3 "$TMP"/s4?.log; FAILS=$((FAILS + 1))
fi

# two replicas of the pipeline (hosts 1,2 and 3,4), data parallel: each
# trains 16 rows a step in 4 micro-batches, against the single node's 32
# in 4 micro-batches of 8: the same rows, summed in another order (as
# dist_train's replicas: tolerance 1e-4)
wp=""
for i in 1 2 3 4; do
	# shellcheck disable=SC2086
	timeout 300 ip netns exec "${TAG}n$i" "$WORKER" \
	    --dataplane "$TMP/n$i/dataplane.sock" $JOB \
	    --set dist.stages=1,2/3,4 --set dist.group=300 \
	    --metrics-out "$TMP/dr$i.jsonl" > "$TMP/dr$i.log" 2>&1 &
	wp="$wp $!"
done
dr_ok=1
for p in $wp; do wait "$p" || dr_ok=0; done
# shellcheck disable=SC2086
if [ $dr_ok = 1 ] && timeout 300 "$WORKER" --standalone $JOB \
    --set train.batch_size=8 --metrics-out "$TMP/ref8.jsonl" \
    > "$TMP/ref8.log" 2>&1; then
	field loss "$TMP/ref8.jsonl" > "$TMP/ref8.loss"
	for i in 1 2 3 4; do field loss "$TMP/dr$i.jsonl" > "$TMP/dr$i.loss"; done
	if [ "$(wc -l < "$TMP/dr1.loss")" = $STEPS ] &&
	    cmp -s "$TMP/dr1.loss" "$TMP/dr2.loss" &&
	    cmp -s "$TMP/dr1.loss" "$TMP/dr3.loss" &&
	    cmp -s "$TMP/dr1.loss" "$TMP/dr4.loss" &&
	    r=$(close "$TMP/dr1.loss" "$TMP/ref8.loss" 1e-4); then
		log "ok 2 replicas x 2 stages agree bit for bit; = 1 node x" \
		    "batch 8, loss: $r"
	else
		log "FAIL: 2 replicas x 2 stages: ${r:-}"
		paste "$TMP"/dr?.loss "$TMP/ref8.loss" | head; FAILS=$((FAILS + 1))
	fi
else
	log "FAIL: the run of 2 replicas x 2 stages"
	tail -n 3 "$TMP"/dr?.log "$TMP/ref8.log"; FAILS=$((FAILS + 1))
fi
grep -h "pipeline replicas" "$TMP"/dr1.log | sed 's/^/pipe_train:   /'
if grep -q "of [1-9][0-9]* layer buckets went during backward" "$TMP/dr1.log" &&
    ! grep -q " 0 of [0-9]* layer buckets" "$TMP/dr1.log"; then
	log "ok the replicas' blocks were all-reduced while backward went on"
else
	log "FAIL: no replica bucket went during backward"; FAILS=$((FAILS + 1))
fi

# the same without overlap: every bucket after backward, the same sums
wp=""
for i in 1 2 3 4; do
	# shellcheck disable=SC2086
	timeout 300 ip netns exec "${TAG}n$i" "$WORKER" \
	    --dataplane "$TMP/n$i/dataplane.sock" $JOB \
	    --set dist.stages=1,2/3,4 --set dist.group=300 \
	    --set dist.overlap=no \
	    --metrics-out "$TMP/do$i.jsonl" > "$TMP/do$i.log" 2>&1 &
	wp="$wp $!"
done
do_ok=1
for p in $wp; do wait "$p" || do_ok=0; done
field loss "$TMP/do1.jsonl" > "$TMP/do1.loss"
if [ $do_ok = 1 ] && cmp -s "$TMP/do1.loss" "$TMP/dr1.loss"; then
	log "ok replicas without overlap: the same losses bit for bit"
else
	log "FAIL: replicas without overlap differ"
	tail -n 3 "$TMP"/do?.log; FAILS=$((FAILS + 1))
fi

# uneven shares (the planner's, by speed): 3 and 5 rows a micro-batch,
# still the single node's batch of 8 x 4
wp=""
for i in 1 2 3 4; do
	# shellcheck disable=SC2086
	timeout 300 ip netns exec "${TAG}n$i" "$WORKER" \
	    --dataplane "$TMP/n$i/dataplane.sock" $JOB \
	    --set dist.stages=1,2/3,4 --set dist.group=300 \
	    --set dist.shares=3,5 \
	    --metrics-out "$TMP/us$i.jsonl" > "$TMP/us$i.log" 2>&1 &
	wp="$wp $!"
done
us_ok=1
for p in $wp; do wait "$p" || us_ok=0; done
for i in 1 2 3 4; do field loss "$TMP/us$i.jsonl" > "$TMP/us$i.loss"; done
if [ $us_ok = 1 ] && cmp -s "$TMP/us1.loss" "$TMP/us2.loss" &&
    cmp -s "$TMP/us1.loss" "$TMP/us3.loss" &&
    cmp -s "$TMP/us1.loss" "$TMP/us4.loss" &&
    r=$(close "$TMP/us1.loss" "$TMP/ref8.loss" 1e-4); then
	log "ok replica shares 3 + 5 = 1 node x batch 8, loss: $r"
else
	log "FAIL: replica shares 3,5: ${r:-}"
	tail -n 3 "$TMP"/us?.log; FAILS=$((FAILS + 1))
fi

# bf16 gradients between the replicas (with error feedback): close still
wp=""
for i in 1 2 3 4; do
	# shellcheck disable=SC2086
	timeout 300 ip netns exec "${TAG}n$i" "$WORKER" \
	    --dataplane "$TMP/n$i/dataplane.sock" $JOB \
	    --set dist.stages=1,2/3,4 --set dist.group=300 \
	    --set dist.compress=bf16 \
	    --metrics-out "$TMP/bf$i.jsonl" > "$TMP/bf$i.log" 2>&1 &
	wp="$wp $!"
done
bf_ok=1
for p in $wp; do wait "$p" || bf_ok=0; done
field loss "$TMP/bf1.jsonl" > "$TMP/bf1.loss"
field loss "$TMP/bf4.jsonl" > "$TMP/bf4.loss"
if [ $bf_ok = 1 ] && cmp -s "$TMP/bf1.loss" "$TMP/bf4.loss" &&
    r=$(close "$TMP/bf1.loss" "$TMP/ref8.loss" 2e-2); then
	log "ok bf16 gradients between the replicas, loss: $r"
else
	log "FAIL: bf16 between the replicas: ${r:-}"
	tail -n 3 "$TMP"/bf?.log; FAILS=$((FAILS + 1))
fi

# resume: 10 steps with a checkpoint (stage i in $TMP/ckr<i>), then on
# to 20 from it
resume_ok=1
for steps in 10 $STEPS; do
	wp=""
	for i in 1 2; do
		# shellcheck disable=SC2086
		timeout 300 ip netns exec "${TAG}n$i" "$WORKER" \
		    --dataplane "$TMP/n$i/dataplane.sock" $JOB \
		    --set dist.stages=1,2 --set train.steps=$steps \
		    --set checkpoint.dir="$TMP/ckr$i" \
		    --metrics-out "$TMP/rs$i.jsonl" > "$TMP/rs$steps-$i.log" 2>&1 &
		wp="$wp $!"
	done
	for p in $wp; do wait "$p" || resume_ok=0; done
done
if [ $resume_ok = 1 ] && grep -q "resumed from .* at step 10" \
    "$TMP/rs$STEPS-1.log" && grep -q "resumed from .* at step 10" \
    "$TMP/rs$STEPS-2.log" && same_stages rs &&
    cmp -s "$TMP/rs.1.loss" "$TMP/pp.1.loss" &&
    cmp -s "$TMP/rs.1.grad_norm" "$TMP/pp.1.grad_norm"; then
	log "ok 10 steps, checkpoint, resume, 10 more = $STEPS steps bit for bit"
else
	log "FAIL: the resumed run differs from the uninterrupted one"
	tail -n 3 "$TMP"/rs*.log
	paste "$TMP/rs.1.loss" "$TMP/pp.1.loss" | head -n 25
	FAILS=$((FAILS + 1))
fi

# each stage's checkpoint is its own: swapped directories are refused
wp=""
for i in 1 2; do
	o=$((3 - i))
	# shellcheck disable=SC2086
	timeout 120 ip netns exec "${TAG}n$i" "$WORKER" \
	    --dataplane "$TMP/n$i/dataplane.sock" $JOB \
	    --set dist.stages=1,2 --set train.steps=$((STEPS + 5)) \
	    --set checkpoint.dir="$TMP/ckr$o" > "$TMP/sw$i.log" 2>&1 &
	wp="$wp $!"
done
sw_ok=1
for p in $wp; do wait "$p" && sw_ok=0; done
# (stages of different sizes fail the segment sizes; same-sized ones the
# stage recorded in the trainer state)
if [ $sw_ok = 1 ] && grep -q "a different model or config\|is of another \
pipeline stage" "$TMP/sw1.log"; then
	log "ok another stage's checkpoint is refused: $(grep -o \
	    "'params' is.*\|is of another.*" "$TMP/sw1.log" | tail -n 1)"
else
	log "FAIL: swapped checkpoints were not refused"
	tail -n 3 "$TMP"/sw1.log "$TMP"/sw2.log; FAILS=$((FAILS + 1))
fi

# a stage that lost its newest checkpoint (step 20): both fall back to
# step 10, the newest that both have, and train on to the same losses
rm -rf "$TMP/ckr2/$(printf 'step-%010d' $STEPS)"
wp=""
for i in 1 2; do
	# shellcheck disable=SC2086
	timeout 300 ip netns exec "${TAG}n$i" "$WORKER" \
	    --dataplane "$TMP/n$i/dataplane.sock" $JOB \
	    --set dist.stages=1,2 --set checkpoint.dir="$TMP/ckr$i" \
	    --metrics-out "$TMP/fb$i.jsonl" > "$TMP/fb$i.log" 2>&1 &
	wp="$wp $!"
done
fb_ok=1
for p in $wp; do wait "$p" || fb_ok=0; done
tail -n 10 "$TMP/pp.1.loss" > "$TMP/pp.last10"
if [ $fb_ok = 1 ] && grep -q "falling back from step $STEPS to step 10" \
    "$TMP/fb1.log" && grep -q "resumed from .* at step 10\$" "$TMP/fb1.log" &&
    grep -q "resumed from .* at step 10\$" "$TMP/fb2.log" &&
    same_stages fb && cmp -s "$TMP/fb.1.loss" "$TMP/pp.last10"; then
	log "ok stage 1 without its step $STEPS: both stages fell back to" \
	    "step 10 and trained on to the same losses"
else
	log "FAIL: the fallback to the newest common checkpoint"
	tail -n 4 "$TMP"/fb1.log "$TMP"/fb2.log; FAILS=$((FAILS + 1))
fi

# stage 1 with no checkpoint at all, stage 0 with some: both refuse
wp=""
for i in 1 2; do
	d="$TMP/ckr1"
	[ $i = 2 ] && d="$TMP/none2"
	# shellcheck disable=SC2086
	timeout 120 ip netns exec "${TAG}n$i" "$WORKER" \
	    --dataplane "$TMP/n$i/dataplane.sock" $JOB \
	    --set dist.stages=1,2 --set checkpoint.dir="$d" \
	    > "$TMP/nc$i.log" 2>&1 &
	wp="$wp $!"
done
nc_ok=1
for p in $wp; do wait "$p" && nc_ok=0; done
if [ $nc_ok = 1 ] && grep -q "no checkpoint step that every stage has" \
    "$TMP/nc1.log" && grep -q "this stage: none" "$TMP/nc2.log"; then
	log "ok checkpoints of no common step are refused by both: $(grep -o \
	    'no checkpoint step.*' "$TMP/nc1.log" | cut -c1-100)..."
else
	log "FAIL: stages without a common checkpoint step were not refused"
	tail -n 3 "$TMP"/nc1.log "$TMP"/nc2.log; FAILS=$((FAILS + 1))
fi

# run_long NAME ARGS...: both stages on an endless run, checkpointing at
# the end
run_long() {
	name=$1; shift
	wp=""
	for i in 1 2; do
		# shellcheck disable=SC2086
		timeout 300 ip netns exec "${TAG}n$i" "$WORKER" \
		    --dataplane "$TMP/n$i/dataplane.sock" $JOB \
		    --set train.steps=1000000 --set train.eval_interval=0 \
		    --set dist.stages=1,2 --set checkpoint.dir="$TMP/${name}ck$i" \
		    --set checkpoint.interval=1000000 "$@" \
		    --metrics-out "$TMP/$name$i.jsonl" > "$TMP/$name$i.log" 2>&1 &
		wp="$wp $!"
		eval "WP$i=$!"
	done
}
# started NAME: the first stage finished 3 steps of run NAME
started() { [ "$(wc -l < "$TMP/${1}1.jsonl" 2>/dev/null || echo 0)" -ge 3 ]; }

# SIGTERM to one stage: both stop after the same step, with checkpoints
# (groups of their own from here: a run that failed leaves its group's
# sequences apart on the two dataplanes)
run_long st --set dist.group=500
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
		log "ok SIGTERM to stage 1: both stages stopped after step $n1," \
		    "each with its checkpoint"
	else
		log "FAIL: SIGTERM to one stage (exits $rc1 $rc2, steps $n1 $n2)"
		tail -n 3 "$TMP"/st1.log "$TMP"/st2.log; FAILS=$((FAILS + 1))
	fi
else
	log "FAIL: the run to stop did not start"; tail -n 5 "$TMP"/st1.log
	FAILS=$((FAILS + 1))
	for p in $wp; do kill -9 "$p" 2>/dev/null; wait "$p"; done
fi

# a lost node: host 2's dataplane is killed mid-run
run_long k --set dist.group=600
if until_ok 60 started k; then
	kill -9 "$DPPID2"
	dp2_killed=1
	t0=$(date +%s%N)
	wait "$WP1"; rc=$?
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	wait "$WP2"; rc2=$?
	if [ $rc = 0 ] || ! grep -q "failed: peer 2" "$TMP/k1.log"; then
		log "FAIL: worker 1 (exit $rc) did not stop naming peer 2:"
		tail -n 5 "$TMP/k1.log"; FAILS=$((FAILS + 1))
	else
		log "ok worker 1 stopped $ms ms after the kill: $(grep -o \
		    'step [0-9]*: .*failed: [^;]*' "$TMP/k1.log")"
	fi
	if [ $rc2 = 0 ] || ! grep -q "dataplane unreachable" "$TMP/k2.log"
	then
		log "FAIL: worker 2 (exit $rc2) was not told its dataplane died:"
		tail -n 5 "$TMP/k2.log"; FAILS=$((FAILS + 1))
	fi
	# its checkpoint holds every step it finished
	done1=$(wc -l < "$TMP/k1.jsonl")
	if [ -d "$TMP/kck1/$(printf 'step-%010d' "$done1")" ]; then
		log "ok its checkpoint holds all $done1 steps it finished"
	else
		log "FAIL: no checkpoint of step $done1 in $TMP/kck1:"
		ls "$TMP/kck1"; FAILS=$((FAILS + 1))
	fi
else
	log "FAIL: the run to kill did not start"; tail -n 5 "$TMP"/k1.log
	FAILS=$((FAILS + 1))
	for p in $wp; do kill -9 "$p" 2>/dev/null; wait "$p"; done
fi

# a lost worker: host 2's dataplane back (a restarted dataplane starts its
# sequences anew, and so does a fresh group; control's new epoch does that
# in a cluster), then host 2's worker is killed: host 1's waits for its
# gradients until the dataplane's op_timeout_ms (10 s) and names peer 2
if [ -n "${dp2_killed:-}" ]; then
	ip netns exec "${TAG}n2" "$DP" -c "$TMP/arceus.conf" -o node.id=2 \
	    -o "node.run_dir=$TMP/n2" -o "dataplane.listen=$NET.2" \
	    > "$TMP/dataplane2b.log" 2>&1 &
	PIDS="$PIDS $!"
fi
until_ok 30 peer_up 1 2 && until_ok 30 peer_up 2 1 ||
    log "FAIL: host 2's dataplane did not come back"
run_long kw --set dist.group=400
if until_ok 60 started kw; then
	w2=$(pgrep -P "$WP2")
	[ -n "$w2" ] && kill -9 "$w2"
	t0=$(date +%s%N)
	wait "$WP1"; rc=$?
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	wait "$WP2"
	if [ -n "$w2" ] && [ $rc != 0 ] && grep -q "failed: peer 2" \
	    "$TMP/kw1.log"; then
		log "ok a killed worker: stage 0 stopped after $ms ms: $(grep -o \
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
