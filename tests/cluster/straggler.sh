#!/bin/bash
# straggler.sh: the leader replans on measured speed (ARCHITECTURE.md §9,
# "slow node (straggler)").  Two simulated hosts (network namespaces on a
# private bridge, made and removed here) each run arceus-control,
# arceus-dataplane and arceus-worker; the job goes to the raft leader by
# arceusctl and the workers train the plan's data-parallel shares
# (dist.members = plan), 32 sequences a step.  Host 2's worker is a slow
# machine: the fault seam (ARCEUS_FAULT=slow:2, common/fault.h) makes its
# compute twice as slow.  The profiles say the two are alike (the
# controls skip the GEMM probe, ARCEUS_NO_PROBE: two probes at once on
# this machine's shared cores would measure noise), so the first plan
# splits the batch evenly.
#
# What must hold: both controls measure a training speed and gossip it;
# the leader replans once the measured speeds say so (replan_interval_s
# 4 here, hold and gain as by default), saying why ("node 2 runs at N%
# of its profile: shares 16,16 on 1,2 -> 21,11 on 1,2 ..."); host 2's
# share shrinks and host 1's grows by as much (the global batch stays
# 32; the planner may also leave host 2 idle, a share of 0, when the
# all-reduce costs more than its rows give); the committed plan's text
# lists the measured speeds it used; node 2's share never grows back
# while it stays slow (no flapping); the training goes on through the
# new epoch with no step lost (each reported by a host at least) or
# trained twice (no host goes back), and every step's loss equals one
# uninterrupted standalone node's with the same global batch
# within 1e-4 relative: the rows only move between replicas, so the
# gradient sums differ from one node's in their order alone (float
# rounding, then carried by AdamW over the steps; dist_train.sh and
# train_faults.sh hold the same bound).
#
# Needs root and iproute2 (exit 77 otherwise) and the corpus.  Every
# process started here is remembered by PID and killed by PID; every wait
# is on a condition with a deadline.
set -u

BUILD=${BUILD:-build}
CTL=$BUILD/arceus-control
DP=$BUILD/arceus-dataplane
TOOL=$BUILD/arceus-dptool
WORKER=$BUILD/arceus-worker
CLI=$BUILD/arceusctl
TAG=asg$$
NET=10.$((150 + $$ % 50)).$(( ($$ / 50) % 250 ))
TMP=$(mktemp -d /tmp/arceus-strag.XXXXXX)
PIDS=""
NS=""
FAILS=0
G=32			# global batch, rows a step
SLOW=2			# host 2's slowdown

log() { printf 'straggler: %s\n' "$*"; }

. "$(dirname "$0")/dp_lib.sh"

cleanup() {
	dp_cleanup	# every process, by PID; namespaces, links
	if [ $FAILS != 0 ] || [ -n "${KEEP:-}" ]; then
		log "logs in $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
dp_preflight
for b in "$CTL" "$WORKER" "$CLI"; do
	[ -x "$b" ] || { log "build $b first"; exit 1; }
done
[ -s data/corpus.txt ] || { log "no data/corpus.txt: make corpus"; exit 1; }

# the job: a small model, a constant learning rate after warm-up (so that
# a reference of any length has the same rate at every step), no
# checkpoints, steps enough never to end by themselves
cat > "$TMP/job.conf" <<EOF
[model]
n_layer = 2
n_head = 2
n_embd = 64
block_size = 32
[train]
batch_size = $G
steps = 1000000
lr = 1e-3
min_lr = 1e-3
warmup_steps = 5
eval_interval = 0
eval_iters = 2
sample_len = 0
threads = 1
log_interval = 1000
[data]
path = $(pwd)/data/corpus.txt
EOF

head -c 32 /dev/urandom > "$TMP/key"
chmod 600 "$TMP/key"
for i in 1 2; do
	d=$TMP/h$i
	mkdir -p "$d/run" "$d/state"
	{
		echo "[node]"
		echo "id = $i"
		echo "name = host$i"
		echo "run_dir = $d/run"
		echo "state_dir = $d/state"
		echo "key_file = $TMP/key"
		echo "[dataplane]"
		echo "transport = tcp"
		echo "listen = $NET.$i"
		echo "port = 7710"
		echo "arena_size = 16M"
		echo "chunk_size = 64K"
		echo "peer_timeout_ms = 3000"
		echo "op_timeout_ms = 10000"
		for j in 1 2; do echo "peer = $j@$NET.$j:7710"; done
		echo "[control]"
		echo "listen = $NET.$i"
		echo "advertise = $NET.$i"
		echo "gossip_port = 7711"
		echo "raft_port = 7712"
		echo "http_port = 0"
		echo "discovery = no"
		echo "seed = $NET.1:7711"
		echo "replan_gain = 0.15"
		echo "replan_interval_s = 4"
		echo "replan_hold_s = 3"
		echo "[membership]"
		echo "probe_interval_ms = 300"
		echo "probe_timeout_ms = 250"
		echo "suspect_timeout_ms = 3000"
		echo "[raft]"
		echo "election_timeout_ms = 1000"
		echo "heartbeat_ms = 100"
		echo "bootstrap_expect = 2"
	} > "$d/arceus.conf"
	"$CTL" -n -c "$d/arceus.conf" > "$d/check.log" 2>&1 ||
	    { cat "$d/check.log"; log "FAIL: host $i's configuration"; exit 1; }
	bridge_host "$i" "$NET.$i" || { log "FAIL: host $i"; exit 1; }
done

# host_up I [ENV...]: host I's control, dataplane and worker (with ENV)
host_up() {
	local i=$1 d=$TMP/h$1
	shift
	ip netns exec "${TAG}n$i" env ARCEUS_NO_PROBE=1 "$CTL" \
	    -c "$d/arceus.conf" > "$d/control.log" 2>&1 &
	PIDS="$PIDS $!"
	ip netns exec "${TAG}n$i" "$DP" -c "$d/arceus.conf" \
	    > "$d/dataplane.log" 2>&1 &
	PIDS="$PIDS $!"
	ip netns exec "${TAG}n$i" env "$@" "$WORKER" \
	    --dataplane "$d/run/dataplane.sock" --job "$TMP/job.conf" -q \
	    --set dist.members=plan --set checkpoint.dir= \
	    --metrics-out "$d/metrics.jsonl" > "$d/worker.log" 2>&1 &
	PIDS="$PIDS $!"
	eval "WP$i=$!"
}

status_of() {	# I FIELD: FIELD of host I's control status
	"$CLI" -s "$TMP/h$1/run/control.sock" status --json 2>/dev/null |
	    grep -o "\"$2\":[^,}]*" | head -1 | cut -d: -f2
}
epoch_members() {
	"$CLI" -s "$TMP/h$1/run/control.sock" status --json 2>/dev/null |
	    grep -o '"epoch_members":\[[0-9,]*\]' | cut -d'[' -f2 | tr -d ']'
}
epoch_is() {	# MEMBERS VIEWER...
	local want=$1 v
	shift
	for v in "$@"; do [ "$(epoch_members "$v")" = "$want" ] || return 1; done
}
# the highest step host 1 reported
step_now() {
	sed -n 's/^{"step":\([0-9]*\),.*/\1/p' "$TMP/h1/metrics.jsonl" \
	    2>/dev/null | tail -1
}
past() { [ "$(step_now)" -ge "$1" ] 2>/dev/null; }
advance() {	# N: wait (bounded) for the training to go N steps past now
	local s
	s=$(step_now)
	until_ok 180 past $((${s:-0} + $1))
}
# share_of N: node N's rows in the plan in force ("replicas: 1 (4) 2 (4)")
share_of() {
	"$CLI" -s "$TMP/h1/run/control.sock" share 2>/dev/null |
	    sed -n 's/^replicas://p' | grep -o " $1 ([0-9]*)" |
	    tr -dc '0-9\n' | sed "s/^$1//"
}
epoch_now() { "$CLI" -s "$TMP/h1/run/control.sock" share 2>/dev/null |
    sed -n 's/^epoch \([0-9]*\),.*/\1/p'; }
leader_log() {
	local l
	l=$(status_of 1 leader)
	cat "$TMP/h${l:-1}/control.log" 2>/dev/null
}
replans() { leader_log | grep -c "replanning on measured speed"; }
# both controls measured a training speed (members --json, train_gflops)
measured() {
	local i n
	for i in 1 2; do
		n=$("$CLI" -s "$TMP/h$i/run/control.sock" members --json \
		    2>/dev/null | grep -o '"train_gflops":[0-9.]*' |
		    grep -vc '"train_gflops":0.0$')
		[ "$n" = 2 ] || return 1
	done
}
check() {	# WHAT CMD...: a failure counted unless CMD holds
	local what=$1
	shift
	if "$@"; then log "ok $what"; else log "FAIL: $what"
	    FAILS=$((FAILS + 1)); fi
}

host_up 1
host_up 2 ARCEUS_FAULT=slow:$SLOW
until_ok 90 epoch_is 1,2 1 2 ||
    { log "FAIL: no epoch of both"; tail -n 5 "$TMP"/h*/control.log
    exit 1; }
jobstart() {
	local i
	for i in 1 2; do
		"$CLI" -s "$TMP/h$i/run/control.sock" job start "$TMP/job.conf" \
		    --global-batch $G > "$TMP/job.log" 2>&1 && return 0
	done
	return 1
}
until_ok 60 jobstart || { log "FAIL: no leader took the job";
    cat "$TMP/job.log"; exit 1; }
if ! advance 3; then
	log "FAIL: the training did not start"
	tail -n 5 "$TMP"/h*/worker.log "$TMP"/h*/control.log; exit 1
fi
e0=$(epoch_now)
s1=$(share_of 1)
s2=$(share_of 2)
log "training: epoch $e0, step $(step_now), shares: node 1 ${s1:-?}," \
    "node 2 ${s2:-?} of $G (from the profiles)"
if [ -z "$s1" ] || [ -z "$s2" ] || [ "$s2" -lt 3 ]; then
	log "FAIL: the first plan does not train on both (node 2: ${s2:-none})"
	"$CLI" -s "$TMP/h1/run/control.sock" plan
	exit 1
fi

check "both controls measure a training speed and gossip it" \
    until_ok 120 measured
"$CLI" -s "$TMP/h1/run/control.sock" members | sed 's/^/straggler:   /'

# the replan: host 2's share shrinks, host 1's grows by as much
shrunk() {
	local a b
	a=$(share_of 1) b=$(share_of 2)
	[ -n "$a" ] && [ "$(epoch_now)" -gt "$e0" ] &&
	    [ "${b:-0}" -lt "$s2" ] && [ $((a + ${b:-0})) = $G ]
}
if until_ok 180 shrunk; then
	e1=$(epoch_now)
	r1=$(step_now)
	log "ok the leader replanned at step $r1 (epoch $e1): node 1" \
	    "$(share_of 1), node 2 $(share_of 2) of $G (was $s1, $s2)"
	log "   $(leader_log | grep -o "replanning on measured speed.*" |
	    head -1)"
else
	log "FAIL: no replan shrank node 2's share (still $(share_of 2))"
	leader_log | grep "ctl.raft" | tail -n 8
	FAILS=$((FAILS + 1))
	exit 1
fi
check "the leader said which node is slow, by how much, and the shares" \
    eval 'leader_log | grep -q "replanning on measured speed: node 2 runs at [0-9]*% of its profile.*: shares [0-9,]* on [0-9,]* -> "'
replans_metric() {
	local l
	l=$(status_of 1 leader)
	"$CLI" -s "$TMP/h${l:-1}/run/control.sock" metrics 2>/dev/null |
	    grep -q "^arceus_replans_total [1-9]"
}
check "the leader counts it (arceus_replans_total)" replans_metric
speeds_in_plan() {
	"$CLI" -s "$TMP/h1/run/control.sock" plan 2>/dev/null |
	    grep -q "^speeds (GFLOP/s; m: measured.*: 1 [0-9.]*m 2 [0-9.]*m$"
}
check "the committed plan lists the measured speeds it used" speeds_in_plan
"$CLI" -s "$TMP/h1/run/control.sock" plan | grep "^speeds\|^replica" |
    sed 's/^/straggler:   /'

# the training goes on in the new epoch, on both, for 15 s (more than
# three intervals and holds); node 2's share, watched all along (an
# epoch lasts at least the interval, 4 s: none is missed at 50 ms), never
# grows back while it stays slow: the replans only converge (a node's
# speed per token moves a little with its rows, and here with what the
# other takes of the two shared cores), they do not flap
steps2() { sed -n 's/^{"step":\([0-9]*\),.*/\1/p' "$TMP/h2/metrics.jsonl" \
    2>/dev/null | tail -1; }
t0=$(date +%s%N)
share_of 2 > "$TMP/shares2"
watched() {
	local v
	v=$(share_of 2)
	[ "${v:-0}" != "$(tail -n 1 "$TMP/shares2")" ] &&
	    echo "${v:-0}" >> "$TMP/shares2"
	[ $(( ($(date +%s%N) - t0) / 1000000 )) -ge 15000 ] &&
	    [ "$(steps2)" -ge $((r1 + 20)) ] 2>/dev/null
}
check "the training went on past the new epoch on both hosts" \
    until_ok 180 watched
n=$(replans)
seq2=$(tr '\n' ' ' < "$TMP/shares2")
nonincreasing() { awk 'NR > 1 && $1 > last { bad = 1 } { last = $1 }
    END { exit bad }' "$TMP/shares2"; }
check "no flapping: $n replan(s); node 2's rows from $s2: $seq2" \
    eval '[ "$n" -le 3 ] && nonincreasing'
leader_log | grep -o "replanning on measured speed.*" | sed 's/^/straggler:   /'

# the end: host 1's worker asked to stop; both stop after the same step
kill -TERM "$WP1"
stopped() { ! kill -0 "$WP1" 2>/dev/null && ! kill -0 "$WP2" 2>/dev/null; }
if ! until_ok 120 stopped; then
	log "FAIL: the workers did not both stop after SIGTERM"
	FAILS=$((FAILS + 1))
fi
S=$(step_now)
log "stopped at step $S"
for i in 1 2; do
	for n in control dataplane worker; do
		if grep -q "AddressSanitizer\|runtime error\|LeakSanitizer" \
		    "$TMP/h$i/$n.log"; then
			log "FAIL: sanitizer report in host $i's $n log"
			FAILS=$((FAILS + 1))
		fi
	done
done

# every step 1..S, each loss as one uninterrupted node's
if ! timeout 300 "$WORKER" --standalone --job "$TMP/job.conf" -q \
    --set train.steps="$S" --set checkpoint.dir= \
    --metrics-out "$TMP/ref.jsonl" > "$TMP/ref.log" 2>&1; then
	log "FAIL: the reference run"; cat "$TMP/ref.log"; exit 1
fi
losses() {	# FILE...: "step loss" lines
	cat "$@" | sed -n 's/^{"step":\([0-9]*\),"loss":\([-0-9.e+]*\).*/\1 \2/p'
}
losses "$TMP/ref.jsonl" > "$TMP/ref.loss"
# every step 1..S reported (by one host at least: a replica that failed a
# step in the switch takes its peer's newer state and does not report
# the step it did not train), each as one node's, none twice on a host
losses "$TMP"/h*/metrics.jsonl | sort -n -k1,1 > "$TMP/all.loss"
if r=$(awk -v S="$S" 'NR == FNR { ref[$1] = $2; next }
    { seen[$1] = 1; d = $2 - ref[$1]; if (d < 0) d = -d
      m = ref[$1] < 0 ? -ref[$1] : ref[$1]; x = d / (m > 0 ? m : 1)
      if (!($1 in ref) || x > 1e-4) bad++; if (x > worst) worst = x; n++ }
    END { for (s = 1; s <= S; s++) if (!(s in seen)) miss++
      printf "%d reports of steps 1-%d, %d missing, %d off, worst " \
          "relative difference %.2g", n, S, miss, bad, worst
      exit (miss > 0 || bad > 0 || n == 0) }' \
    "$TMP/ref.loss" "$TMP/all.loss"); then
	log "ok no step lost, losses as one uninterrupted node's: $r"
else
	log "FAIL: the losses against one uninterrupted node: $r"
	FAILS=$((FAILS + 1))
fi
again() {
	local i
	for i in 1 2; do
		sed -n 's/^{"step":\([0-9]*\),.*/\1/p' "$TMP/h$i/metrics.jsonl" |
		    awk -v h="$i" '$1 <= last { printf "host %s went back from " \
		    "step %d to %d; ", h, last, $1; bad = 1 } { last = $1 }
		    END { exit bad }' || return 1
	done
}
if r=$(again); then
	log "ok no host trained a step twice"
else
	log "FAIL: work done twice: $r"
	FAILS=$((FAILS + 1))
fi

if [ $FAILS -gt 0 ]; then
	for i in 1 2; do
		log "== host $i"
		grep -v "^ step" "$TMP/h$i/worker.log" | tail -n 12
		grep "ctl.raft" "$TMP/h$i/control.log" | tail -n 8
	done
	log "FAIL: $FAILS"
	exit 1
fi
log "PASS"
exit 0
