#!/bin/bash
# train_faults.sh: the fault-injection suite of a whole cluster in
# training.  Three simulated hosts (network namespaces on a private
# bridge, made and removed here) each run arceus-control, arceus-dataplane
# and arceus-worker, the two last under a supervisor that starts them again
# when they fail, as systemd's Restart=on-failure does.  The job goes to
# the raft leader; the workers train the plan's shares (dist.members =
# plan).  Host 1's checkpoints go to a file system that is full (a 256 KiB
# tmpfs; where mounting is not allowed, the fault seam fails its writes
# with ENOSPC instead, and says so).  Then, one after another, each once
# the training has gone on past the last:
#   1. host 2's worker is killed (SIGKILL);
#   2. host 3's dataplane is killed (SIGKILL);
#   3. garbage is thrown at host 2's dataplane, gossip and raft ports;
#   4. host 3 loses power: all its processes are killed at once;
#   5. host 3 comes back, with its old (stale) state and checkpoints;
#   6. host 2's link is cut, then restored.
# Then a worker is asked to stop (SIGTERM): all stop after the same step S.
#
# What must hold: the training reached past every fault; no daemon
# crashed on the garbage; a new epoch without host 3 was committed and one
# with it again; host 3 rejoined by taking the newest state from a peer;
# host 1 warned that its checkpoints failed and trained on; and no work
# was lost or done twice: every step 1..S was reported, no host reported
# a step twice (went back), and every reported loss equals, within 1e-4 relative, that step's loss in one uninterrupted
# standalone run with the same global batch (the replicas' sums differ
# from one node's only in their order).  Finally the three hosts' step-S
# checkpoints (the two that can write) hold the same weights.
#
# Needs root and iproute2 (exit 77 otherwise) and the corpus.  Every
# process started here is remembered by PID and killed by PID; every wait
# is on a condition with a deadline.
set -u

BUILD=${BUILD:-build}
NAME=train_faults
NH=3
TAG=atf$$
NET=10.$((100 + $$ % 50)).$(( ($$ / 50) % 250 ))
TMP=$(mktemp -d /tmp/arceus-faults.XXXXXX)
FAILS=0
G=6			# global batch, rows a step
MEM=0

. "$(dirname "$0")/faults_lib.sh"
trap faults_cleanup EXIT
trap 'exit 1' INT TERM

# the job: a small model, checkpoints every 5 steps (job_conf)
job_conf 2 2 64 32 $G 1 5

faults_setup

# host 1's checkpoints: a file system too small for one
WENV1=""
if mount -t tmpfs -o size=256k "arceus-full$$" "$TMP/h1/ck" 2>/dev/null; then
	MOUNTED=$TMP/h1/ck
	log "host 1 checkpoints to a 256 KiB tmpfs (a checkpoint is 1.4 MB)"
else
	WENV1="ARCEUS_FAULT=ckpt_write:1:ENOSPC:persistent"
	log "no tmpfs here: host 1's checkpoint writes fail by the fault" \
	    "seam ($WENV1)"
fi

all_up --set dist.members=plan

# 1. a worker killed
kill -9 "$(cat "$TMP/h2/worker.pid")"
check "host 2's worker killed at step $(step_now); training went on" \
    advance 10

# 2. a dataplane killed
kill -9 "$(cat "$TMP/h3/dataplane.pid")"
check "host 3's dataplane killed at step $(step_now); training went on" \
    advance 10

# 3. garbage at host 2's ports, from host 1 (tcp: dataplane, raft; udp:
# gossip)
garbage 2 1
check "garbage at host 2's ports: its control and dataplane live on" \
    eval "alive 2 control && alive 2 dataplane && advance 10"

# 4. host 3 loses power
s4=$(step_now)
power_cut 3
check "host 3 lost power at step $s4: epoch of hosts 1,2" \
    until_ok 120 epoch_is 1,2 1 2
check "the training went on without host 3" advance 10

# 5. host 3 comes back with its old state
s5=$(step_now)
host_up 3
check "host 3 back at step $s5: epoch of hosts 1,2,3" \
    until_ok 120 epoch_is 1,2,3 1 2 3
took() { grep -q "taking step [0-9]*'s state from node" "$TMP/h3/worker.log"; }
if until_ok 180 took; then
	log "ok host 3 took the newest state from a peer: $(grep -o \
	    "taking step [0-9]*'s state from node [0-9]* (ours: [^)]*)" \
	    "$TMP/h3/worker.log" | head -1)"
else
	log "FAIL: host 3 took no state from a peer"; FAILS=$((FAILS + 1))
fi
check "the training went on with host 3" advance_on 3 10

# 6. host 2's link cut, then restored
s6=$(step_now)
ip link set "${TAG}h2" down
check "host 2 cut off at step $s6: epoch of hosts 1,3" \
    until_ok 120 epoch_is 1,3 1 3
ip link set "${TAG}h2" up
check "host 2's link back: epoch of hosts 1,2,3" \
    until_ok 120 epoch_is 1,2,3 1 2 3
check "the training went on with host 2" advance_on 2 10

# the end: one worker asked to stop; all stop after the same step
stop_all 1
check "host 1 warned that its checkpoints failed and trained on" \
    grep -q "checkpoint.*\(No space left\|failed\)" "$TMP/h1/worker.log"

# every step 1..S, each loss as one uninterrupted node's; none done twice
# (a worker that restarted, or rejoined, goes on from the newest state
# any holds)
ref_losses
same_losses 1e-4
r=$(went_back)
if [ -z "$r" ]; then
	log "ok no host trained a step twice"
else
	log "FAIL: work done twice (host:from>to): $r"
	FAILS=$((FAILS + 1))
fi
# the hosts that can write hold the same weights at step S
same_weights() {
	local s
	s=$(printf 'step-%010d/shard-0.bin' "$S")
	[ -s "$TMP/h2/ck/$s" ] && [ -s "$TMP/h3/ck/$s" ] &&
	    cmp -s -i 64 -n 192 "$TMP/h2/ck/$s" "$TMP/h3/ck/$s"
}
check "hosts 2 and 3 hold the same weights at step $S" same_weights
faults_report
