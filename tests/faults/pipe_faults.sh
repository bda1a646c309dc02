#!/bin/bash
# pipe_faults.sh: the fault-injection suite of a pipeline in training.
# Two simulated hosts (network namespaces on a private bridge, made and
# removed here), each with arceus-control, and arceus-dataplane and
# arceus-worker under a supervisor that starts them again when they fail
# (Restart=on-failure).  Each node offers the model too little memory for
# the whole model (model_memory), so the planner cuts it into two
# pipeline stages, one a host, and the workers take them from the plan
# (dist.stages = plan).  Then, one after another, each once the training
# has gone on past the last:
#   1. host 2's worker is killed (SIGKILL);
#   2. host 1's dataplane is killed (SIGKILL);
#   3. garbage is thrown at host 2's dataplane, gossip and raft ports;
#   4. host 2 loses power: host 1 alone has no quorum of the two voters
#      (and no plan without host 2 would hold the model), so the training
#      waits; host 2 comes back with its state and checkpoints;
#   5. host 2's link is cut (neither side has a quorum: both wait), then
#      restored.
# Then a worker is asked to stop (SIGTERM): both stop after the same step.
#
# What must hold: the training reached past every fault with the plan's
# two stages; no daemon crashed on the garbage; every step 1..S was
# reported, and every reported loss equals, within 1e-4 relative, that
# step's loss in one uninterrupted standalone run of the whole model (a
# stage computes what one node does, in the same order).  A stage holds
# its blocks only (no replica), so a stage that died loses the steps since
# its last checkpoint, and both stages go back to the newest checkpoint
# they both have: no host may go back further than one checkpoint
# interval.
#
# Needs root and iproute2 (exit 77 otherwise) and the corpus.
set -u

BUILD=${BUILD:-build}
NAME=pipe_faults
NH=2
TAG=apf$$
NET=10.$((150 + $$ % 50)).$(( ($$ / 50) % 250 ))
TMP=$(mktemp -d /tmp/arceus-pfaults.XXXXXX)
FAILS=0
G=6			# global batch: 3 micro-batches of 2 rows
IV=5			# checkpoint interval
# the model below needs 13 MiB of weights and Adam state and 1 MiB of
# activations a sequence in flight, over the 64 MiB the planner reserves
# on each node: 74M (10 MiB) holds half of it, not all
MEM=74M

. "$(dirname "$0")/faults_lib.sh"
trap faults_cleanup EXIT
trap 'exit 1' INT TERM

# 2 rows a micro-batch, 3 micro-batches a step (job_conf)
job_conf 4 4 128 16 2 3 $IV "[dist]" "stages = plan"

faults_setup
all_up
plan_is_pp2() { "$CLI" -s "$TMP/h1/run/control.sock" plan 2>/dev/null |
    grep -q 'pp 2'; }
check "the plan: two stages ($("$CLI" -s "$TMP/h1/run/control.sock" plan \
    2>/dev/null | grep -o 'tp [0-9]* pp [0-9]* dp [0-9]*' | head -1))" \
    plan_is_pp2
both() { [ -n "$(step_of 1)" ] && [ -n "$(step_of 2)" ]; }
check "both stages report steps" until_ok 60 both

# 1. a stage's worker killed
kill -9 "$(cat "$TMP/h2/worker.pid")"
check "host 2's worker killed at step $(step_now); training went on" \
    advance_on 2 10

# 2. a dataplane killed
kill -9 "$(cat "$TMP/h1/dataplane.pid")"
check "host 1's dataplane killed at step $(step_now); training went on" \
    advance_on 1 10

# 3. garbage at host 2's ports, from host 1
garbage 2 1
check "garbage at host 2's ports: its control and dataplane live on" \
    eval "alive 2 control && alive 2 dataplane && advance 10"

# 4. host 2 loses power.  Two voters: host 1 alone has no quorum, keeps
# the epoch, and no plan without host 2 could hold the model anyway: the
# training waits
host1_alone() { [ "$(status_of 1 alive)" = 1 ]; }
waits() {	# WHAT: no step trained for 2 s once host 1 is alone
	local s
	if ! until_ok 60 host1_alone; then
		log "FAIL: host 1 never saw host 2 go ($1)"
		FAILS=$((FAILS + 1))
		return
	fi
	s=$(step_now)
	sleep 2		# a span in which no step may be trained
	check "$1: host 1 alone trained nothing (step $s, then $(step_now))" \
	    [ "$(step_now)" = "$s" ]
}
s4=$(step_now)
power_cut 2
waits "host 2 lost power at step $s4"
host_up 2
check "host 2 back: epoch of hosts 1,2" until_ok 120 epoch_is 1,2 1 2
check "the training went on with host 2" advance_on 2 10

# 5. host 2's link cut, then restored: the same, with host 2 alive
s5=$(step_now)
ip link set "${TAG}h2" down
waits "host 2's link cut at step $s5"
ip link set "${TAG}h2" up
check "host 2's link back: epoch of hosts 1,2" until_ok 120 epoch_is 1,2 1 2
check "the training went on after the cut" advance_on 2 10

# the end: one worker asked to stop; both stop after the same step
stop_all 1
same_stop() { [ "$(step_of 1)" = "$(step_of 2)" ]; }
check "both stages stopped after step $(step_of 1)/$(step_of 2)" same_stop

ref_losses
same_losses 1e-4
r=$(went_back)
far=$(echo "$r" | tr ' ' '\n' | awk -F'[:>]' -v iv="$IV" \
    'NF == 3 && $2 - $3 >= iv { print }')
if [ -z "$far" ]; then
	log "ok no stage went back more than one checkpoint interval" \
	    "(host:from>to: ${r:-none})"
else
	log "FAIL: went back further than the last checkpoint: $far"
	FAILS=$((FAILS + 1))
fi
faults_report
