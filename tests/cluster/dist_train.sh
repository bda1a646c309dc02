#!/bin/sh
# dist_train.sh: data-parallel training across simulated hosts matches the
# single-node run.
#
# Two network namespaces on a private bridge (made and removed here), an
# arceus-dataplane in each (tcp), and an arceus-worker in each attached to
# it (--dataplane) with dist.members = 1,2 and batch B.  The reference is
# one standalone worker with batch 2B and the same seed.  Every step's loss
# and gradient norm of the replicas must equal each other exactly (they
# all-reduce them) and the reference's within a float tolerance (only the
# order of the sums differs); so must uneven batch shares (3 + 5 rows).
# A replica that lost its checkpoints takes its peer's state and the run
# goes on as the reference; replicas of different models are refused.
# Then bf16 compression of the gradients must still follow the reference
# closely.  Then one host's dataplane is
# killed mid-run: the other worker must stop within the bound, naming
# peer 2, with a checkpoint of the last whole step, and resume from it.
#
# Needs root, iproute2 and the corpus (make corpus); exit 77 without the
# first two.  Every process is started here, remembered by PID and killed
# by PID; everything is bounded in time.
set -u

BUILD=${BUILD:-build}
DP=$BUILD/arceus-dataplane
TOOL=$BUILD/arceus-dptool
WORKER=$BUILD/arceus-worker
TAG=adt$$
NET=10.$((50 + $$ % 50)).$(( ($$ / 50) % 250 ))
TMP=$(mktemp -d /tmp/arceus-dist.XXXXXX)
PIDS=""
NS=""
FAILS=0
STEPS=30

log() { printf 'dist_train: %s\n' "$*"; }

. "$(dirname "$0")/dp_lib.sh"
trap 'dp_cleanup; [ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM

# a small model that trains a step in milliseconds, one thread each
JOB="--job configs/jobs/tiny.conf --set model.n_layer=2 --set model.n_head=2
 --set model.n_embd=64 --set model.block_size=32 --set train.steps=$STEPS
 --set train.warmup_steps=5 --set train.eval_interval=0
 --set train.eval_iters=4 --set train.sample_len=0 --set train.threads=1
 --set checkpoint.dir= -q"

train_setup 2 7710

# a worker whose members leave its node out is refused, naming it
# shellcheck disable=SC2086
ip netns exec "${TAG}n1" "$WORKER" --dataplane "$TMP/n1/dataplane.sock" \
    $JOB --set dist.members=3,4 > "$TMP/out.log" 2>&1
if [ $? = 1 ] && grep -q "does not list this node (1" "$TMP/out.log"; then
	log "ok a worker outside dist.members is refused: $(grep -o \
	    "dist.members = .*" "$TMP/out.log")"
else
	log "FAIL: members without this node:"; cat "$TMP/out.log"
	FAILS=$((FAILS + 1))
fi

# replicas NAME B ARGS...: both workers at once; fails unless both exit 0.
# With CK set, host i checkpoints into $CK$i; with ARGS2 set, host 2 gets
# those arguments too
replicas() {
	name=$1 b=$2; shift 2
	wp=""
	for i in 1 2; do
		ck=""
		[ -n "${CK:-}" ] && ck="--set checkpoint.dir=$CK$i"
		[ "$i" = 2 ] && ck="$ck ${ARGS2:-}"
		# shellcheck disable=SC2086
		timeout 300 ip netns exec "${TAG}n$i" "$WORKER" \
		    --dataplane "$TMP/n$i/dataplane.sock" $JOB $ck \
		    --set train.batch_size="$b" --set dist.members=1,2 "$@" \
		    --metrics-out "$TMP/$name$i.jsonl" > "$TMP/$name$i.log" 2>&1 &
		wp="$wp $!"
	done
	ok=0
	for p in $wp; do wait "$p" || ok=1; done
	return $ok
}

# the reference: one node, the global batch
# shellcheck disable=SC2086
train_ref $JOB --set train.batch_size=8

if replicas dp 4; then
	for i in 1 2; do
		field loss "$TMP/dp$i.jsonl" > "$TMP/dp$i.loss"
		field grad_norm "$TMP/dp$i.jsonl" > "$TMP/dp$i.norm"
	done
	if [ "$(wc -l < "$TMP/dp1.loss")" = $STEPS ] &&
	    cmp -s "$TMP/dp1.loss" "$TMP/dp2.loss" &&
	    cmp -s "$TMP/dp1.norm" "$TMP/dp2.norm"; then
		log "ok the replicas agree bit for bit on $STEPS steps"
	else
		log "FAIL: the replicas disagree"
		paste "$TMP/dp1.loss" "$TMP/dp2.loss" | head; FAILS=$((FAILS + 1))
	fi
	if r=$(close "$TMP/dp1.loss" "$TMP/ref.loss" 1e-4); then
		log "ok 2 replicas x batch 4 = 1 node x batch 8, loss: $r"
	else
		log "FAIL loss against the single node: $r"
		paste "$TMP/dp1.loss" "$TMP/ref.loss"; FAILS=$((FAILS + 1))
	fi
	if r=$(close "$TMP/dp1.norm" "$TMP/ref.norm" 1e-3); then
		log "ok gradient norms: $r"
	else
		log "FAIL gradient norms against the single node: $r"
		paste "$TMP/dp1.norm" "$TMP/ref.norm"; FAILS=$((FAILS + 1))
	fi
	grep -h "data parallel" "$TMP"/dp1.log | sed 's/^/dist_train:   /'
	if grep -q "of [1-9][0-9]* layer buckets went during backward" \
	    "$TMP/dp1.log" && ! grep -q " 0 of [0-9]* layer buckets" \
	    "$TMP/dp1.log"; then
		log "ok layers were all-reduced while backward went on"
	else
		log "FAIL: no bucket went during backward"; FAILS=$((FAILS + 1))
	fi
else
	log "FAIL: the data-parallel run"; cat "$TMP"/dp1.log "$TMP"/dp2.log
	FAILS=$((FAILS + 1))
fi

# all buckets after backward instead of during it: the same sums (two
# ranks: one addition per value, whatever the buckets)
if replicas no 4 --set dist.overlap=no; then
	field loss "$TMP/no1.jsonl" > "$TMP/no1.loss"
	if cmp -s "$TMP/no1.loss" "$TMP/dp1.loss" &&
	    grep -q " 0 of [0-9]* layer buckets" "$TMP/no1.log"; then
		log "ok without overlap: the same losses bit for bit"
	else
		log "FAIL: overlap changed the losses"
		paste "$TMP/no1.loss" "$TMP/dp1.loss" | head; FAILS=$((FAILS + 1))
	fi
else
	log "FAIL: the run without overlap"; cat "$TMP"/no1.log
	FAILS=$((FAILS + 1))
fi

# uneven batch shares (a slower machine takes fewer rows): the gradient
# is weighted by samples, so 3 + 5 rows are the single node's 8 still
if replicas sh 4 --set dist.shares=3,5; then
	field loss "$TMP/sh1.jsonl" > "$TMP/sh1.loss"
	field loss "$TMP/sh2.jsonl" > "$TMP/sh2.loss"
	if cmp -s "$TMP/sh1.loss" "$TMP/sh2.loss" &&
	    r=$(close "$TMP/sh1.loss" "$TMP/ref.loss" 1e-4); then
		log "ok shares 3 + 5 = 1 node x batch 8, loss: $r"
	else
		log "FAIL shares 3,5 against the single node: $r"
		paste "$TMP/sh1.loss" "$TMP/sh2.loss" "$TMP/ref.loss"
		FAILS=$((FAILS + 1))
	fi
else
	log "FAIL: the run with shares 3,5"; cat "$TMP"/sh1.log "$TMP"/sh2.log
	FAILS=$((FAILS + 1))
fi

# bf16 gradients (with error feedback): close to the reference still
if replicas bf 4 --set dist.compress=bf16; then
	field loss "$TMP/bf1.jsonl" > "$TMP/bf1.loss"
	if r=$(close "$TMP/bf1.loss" "$TMP/ref.loss" 2e-2); then
		log "ok bf16 gradients, loss: $r"
	else
		log "FAIL bf16 loss against the single node: $r"
		FAILS=$((FAILS + 1))
	fi
else
	log "FAIL: the bf16 run"; cat "$TMP"/bf1.log "$TMP"/bf2.log
	FAILS=$((FAILS + 1))
fi

# a replica whose disk was wiped rejoins: the replicas compare state
# before the first step and host 2 takes host 1's, so that the run goes
# on from step STEPS/2 as if nothing happened: as one node does that
# resumes its checkpoint of step STEPS/2 (a run of STEPS/2 steps, whose
# learning rate schedule ended there)
H=$((STEPS / 2))
# same_weights DIR1 DIR2 STEP: the two checkpoints of STEP hold the same
# parameters and moments: the first three entries of the segment table
# (name, offset, length, CRC32C; docs/checkpoints.md) are equal
same_weights() {
	s=$(printf 'step-%010d/shard-0.bin' "$3")
	[ -s "$1/$s" ] && cmp -s -i 64 -n 192 "$1/$s" "$2/$s"
}
# shellcheck disable=SC2086
timeout 300 "$WORKER" --standalone $JOB --set train.batch_size=8 \
    --set checkpoint.dir="$TMP/rref" --set train.steps=$H \
    > "$TMP/rref.log" 2>&1 &&
    timeout 300 "$WORKER" --standalone $JOB --set train.batch_size=8 \
    --set checkpoint.dir="$TMP/rref" --metrics-out "$TMP/rref.jsonl" \
    >> "$TMP/rref.log" 2>&1 || { log "FAIL: the resumed reference";
    cat "$TMP/rref.log"; exit 1; }
if CK=$TMP/rj replicas rj 4 --set train.steps=$H \
    --set checkpoint.interval=5 && rm -rf "$TMP/rj2" &&
    CK=$TMP/rj replicas rk 4 --set checkpoint.interval=5; then
	field loss "$TMP/rk1.jsonl" > "$TMP/rk1.loss"
	field loss "$TMP/rk2.jsonl" > "$TMP/rk2.loss"
	field loss "$TMP/rref.jsonl" > "$TMP/ref2.loss"
	if grep -q "taking step $H's state from node 1 (ours: none" \
	    "$TMP/rk2.log" && grep -q "handing them step $H's" \
	    "$TMP/rk1.log" && [ "$(wc -l < "$TMP/rk2.loss")" = $((STEPS - H)) ] &&
	    cmp -s "$TMP/rk1.loss" "$TMP/rk2.loss" &&
	    same_weights "$TMP/rj1" "$TMP/rj2" $STEPS &&
	    r=$(close "$TMP/rk2.loss" "$TMP/ref2.loss" 1e-4); then
		log "ok a replica without its checkpoint took step $H's state" \
		    "from its peer; the same weights at step $STEPS;" \
		    "steps $((H + 1))-$STEPS: $r"
	else
		log "FAIL: the wiped replica did not rejoin at step $H"
		grep -h "data parallel\|resumed\|checkpoint" "$TMP"/rk*.log
		paste "$TMP/rk1.loss" "$TMP/rk2.loss" "$TMP/ref2.loss" | head
		FAILS=$((FAILS + 1))
	fi
else
	log "FAIL: the runs before and after the wipe"
	cat "$TMP"/rj1.log "$TMP"/rj2.log "$TMP"/rk1.log "$TMP"/rk2.log
	FAILS=$((FAILS + 1))
fi

# a replica of another model is refused by both, naming it
if ARGS2="--set model.n_embd=32" replicas mm 4; then
	log "FAIL: replicas of different models trained"; FAILS=$((FAILS + 1))
elif grep -q "node 2 (replica 1) trains another model" "$TMP/mm1.log" &&
    grep -q "trains another model" "$TMP/mm2.log"; then
	log "ok replicas of different models stop: $(grep -o \
	    'node 2 (replica 1) trains another model[^:]*' "$TMP/mm1.log")"
else
	log "FAIL: different models not named"; cat "$TMP"/mm1.log \
	    "$TMP"/mm2.log; FAILS=$((FAILS + 1))
fi

# a lost node: host 2's dataplane is killed mid-run
wp=""
for i in 1 2; do
	# shellcheck disable=SC2086
	timeout 300 ip netns exec "${TAG}n$i" "$WORKER" \
	    --dataplane "$TMP/n$i/dataplane.sock" $JOB \
	    --set train.steps=1000000 --set train.batch_size=4 \
	    --set dist.members=1,2 --set checkpoint.dir="$TMP/ck$i" \
	    --set checkpoint.interval=1000000 \
	    --metrics-out "$TMP/k$i.jsonl" > "$TMP/k$i.log" 2>&1 &
	wp="$wp $!"
	eval "WP$i=$!"
done
steps() { [ "$(wc -l < "$TMP/k1.jsonl" 2>/dev/null || echo 0)" -ge 3 ]; }
if until_ok 60 steps; then
	kill -9 "$DPPID2"
	t0=$(date +%s%N)
	wait "$WP1"; rc=$?
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	wait "$WP2"; rc2=$?
	if [ $rc = 0 ] || ! grep -q "all-reduce failed: peer 2" "$TMP/k1.log"
	then
		log "FAIL: worker 1 (exit $rc) did not stop naming peer 2:"
		tail -n 5 "$TMP/k1.log"; FAILS=$((FAILS + 1))
	else
		log "ok worker 1 stopped $ms ms after the kill: $(grep -o \
		    'all-reduce failed: [^;]*' "$TMP/k1.log")"
	fi
	if [ $rc2 = 0 ] || ! grep -q "dataplane unreachable" "$TMP/k2.log"
	then
		log "FAIL: worker 2 (exit $rc2) was not told its dataplane died:"
		tail -n 5 "$TMP/k2.log"; FAILS=$((FAILS + 1))
	fi
	# its checkpoint holds every step it finished, and resumes
	done1=$(wc -l < "$TMP/k1.jsonl")
	# shellcheck disable=SC2086
	if timeout 120 "$WORKER" --standalone $JOB --set train.batch_size=8 \
	    --set train.steps=$((done1 + 1)) --set checkpoint.dir="$TMP/ck1" \
	    > "$TMP/resume.log" 2>&1 &&
	    grep -q "resumed from .* at step $done1\$" "$TMP/resume.log"; then
		log "ok its checkpoint holds all $done1 steps it finished;" \
		    "resumed alone"
	else
		log "FAIL: no checkpoint at step $done1:"
		tail -n 5 "$TMP/resume.log"; FAILS=$((FAILS + 1))
	fi
else
	log "FAIL: the run to kill did not start"; tail -n 5 "$TMP"/k1.log
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
