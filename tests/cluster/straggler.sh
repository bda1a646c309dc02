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
NAME=straggler
NH=2
TAG=asg$$
NET=10.$((150 + $$ % 50)).$(( ($$ / 50) % 250 ))
TMP=$(mktemp -d /tmp/arceus-strag.XXXXXX)
FAILS=0
G=32			# global batch, rows a step
SLOW=2			# host 2's slowdown
CTL_ENV=ARCEUS_NO_PROBE=1
CTL_EXTRA="replan_gain = 0.15
replan_interval_s = 4
replan_hold_s = 3"
WENV2=ARCEUS_FAULT=slow:$SLOW
START_STEPS=3		# the first plan still in force

. "$(dirname "$0")/../faults/faults_lib.sh"
trap faults_cleanup EXIT
trap 'exit 1' INT TERM

# the job: a small model (job_conf), no checkpoints (checkpoint.dir off)
job_conf 2 2 64 32 $G 1 5
faults_setup

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

all_up --set dist.members=plan --set checkpoint.dir=
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
stop_all 1

# every step 1..S reported (by one host at least: a replica that failed a
# step in the switch takes its peer's newer state and does not report
# the step it did not train), each as one node's, none twice on a host
ref_losses
same_losses 1e-4
r=$(went_back)
if [ -z "$r" ]; then
	log "ok no host trained a step twice"
else
	log "FAIL: work done twice (host:from>to): $r"
	FAILS=$((FAILS + 1))
fi
faults_report
