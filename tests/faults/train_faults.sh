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
CTL=$BUILD/arceus-control
DP=$BUILD/arceus-dataplane
TOOL=$BUILD/arceus-dptool
WORKER=$BUILD/arceus-worker
CLI=$BUILD/arceusctl
TAG=atf$$
NET=10.$((100 + $$ % 50)).$(( ($$ / 50) % 250 ))
TMP=$(mktemp -d /tmp/arceus-faults.XXXXXX)
PIDS=""
NS=""
FAILS=0
G=6			# global batch, rows a step
MOUNTED=""

log() { printf 'train_faults: %s\n' "$*"; }

. "$(dirname "$0")/../cluster/dp_lib.sh"

cleanup() {
	for i in 1 2 3; do touch "$TMP/h$i/down" 2>/dev/null; done
	dp_cleanup	# the supervisors and controls, by PID
	for f in "$TMP"/h*/*.pid; do
		[ -s "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
	[ -n "$MOUNTED" ] && umount "$MOUNTED" 2>/dev/null
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
# a run of any length has the same rate at every step), checkpoints every
# 5 steps, steps enough never to end by themselves
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
[checkpoint]
interval = 5
keep = 2
EOF

head -c 32 /dev/urandom > "$TMP/key"
chmod 600 "$TMP/key"
for i in 1 2 3; do
	d=$TMP/h$i
	mkdir -p "$d/run" "$d/state" "$d/ck"
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
		for j in 1 2 3; do echo "peer = $j@$NET.$j:7710"; done
		echo "[control]"
		echo "listen = $NET.$i"
		echo "advertise = $NET.$i"
		echo "gossip_port = 7711"
		echo "raft_port = 7712"
		echo "http_port = 0"
		echo "discovery = no"
		echo "seed = $NET.1:7711"
		echo "[membership]"
		echo "probe_interval_ms = 300"
		echo "probe_timeout_ms = 250"
		echo "suspect_timeout_ms = 3000"
		echo "[raft]"
		echo "election_timeout_ms = 1000"
		echo "heartbeat_ms = 100"
		echo "bootstrap_expect = 3"
	} > "$d/arceus.conf"
	"$CTL" -n -c "$d/arceus.conf" > "$d/check.log" 2>&1 ||
	    { cat "$d/check.log"; log "FAIL: host $i's configuration"; exit 1; }
	bridge_host "$i" "$NET.$i" || { log "FAIL: host $i"; exit 1; }
done

# host 1's checkpoints: a file system too small for one
FAULTENV=""
if mount -t tmpfs -o size=256k "arceus-full$$" "$TMP/h1/ck" 2>/dev/null; then
	MOUNTED=$TMP/h1/ck
	log "host 1 checkpoints to a 256 KiB tmpfs (a checkpoint is 1.4 MB)"
else
	FAULTENV="ARCEUS_FAULT=ckpt_write:1:ENOSPC:persistent"
	log "no tmpfs here: host 1's checkpoint writes fail by the fault" \
	    "seam ($FAULTENV)"
fi

# supervise NAME I CMD...: CMD in host I's namespace, started again 0.3 s
# after it fails (Restart=on-failure), until it exits 0 or $TMP/hI/down
# exists; its PID in $TMP/hI/NAME.pid, one line per start in NAME.runs
supervise() {
	local name=$1 i=$2 rc
	shift 2
	while [ ! -e "$TMP/h$i/down" ]; do
		ip netns exec "${TAG}n$i" "$@" >> "$TMP/h$i/$name.log" 2>&1 &
		echo $! > "$TMP/h$i/$name.pid"
		echo start >> "$TMP/h$i/$name.runs"
		wait $!
		rc=$?
		[ $rc = 0 ] && break
		echo "exit $rc" >> "$TMP/h$i/$name.runs"
		sleep 0.3
	done
}

# host_up I: host I's control, and its dataplane and worker supervised
host_up() {
	local i=$1 d=$TMP/h$1
	rm -f "$d/down"
	ip netns exec "${TAG}n$i" "$CTL" -c "$d/arceus.conf" \
	    >> "$d/control.log" 2>&1 &
	echo $! > "$d/control.pid"
	PIDS="$PIDS $!"
	supervise dataplane "$i" "$DP" -c "$d/arceus.conf" &
	PIDS="$PIDS $!"
	eval "SUPDP$i=$!"
	# shellcheck disable=SC2086
	supervise worker "$i" env $FAULTENV "$WORKER" \
	    --dataplane "$d/run/dataplane.sock" --job "$TMP/job.conf" -q \
	    --set dist.members=plan --set checkpoint.dir="$d/ck" \
	    --metrics-out "$d/metrics.jsonl" &
	PIDS="$PIDS $!"
	eval "SUPW$i=$!"
}

# power_cut I: every process of host I at once, supervisors first
power_cut() {
	local i=$1 d=$TMP/h$1 sd sw
	touch "$d/down"
	eval "sd=\$SUPDP$i sw=\$SUPW$i"
	kill -9 "$sd" "$sw" 2>/dev/null
	wait "$sd" "$sw" 2>/dev/null
	for n in control dataplane worker; do
		kill -9 "$(cat "$d/$n.pid")" 2>/dev/null
	done
	wait "$(cat "$d/control.pid")" 2>/dev/null
	sleep 0.2
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
# the highest step any host reported
step_now() {
	cat "$TMP"/h*/metrics.jsonl 2>/dev/null |
	    sed -n 's/^{"step":\([0-9]*\),.*/\1/p' | sort -n | tail -1
}
past() { [ "$(step_now)" -ge "$1" ] 2>/dev/null; }
# advance N: wait (bounded) for the training to go N steps past now
advance() {
	local s
	s=$(step_now)
	s=${s:-0}
	until_ok 180 past $((s + $1))
}
# host I's own highest step, and: wait for host I itself to train N more
step_of() {
	sed -n 's/^{"step":\([0-9]*\),.*/\1/p' "$TMP/h$1/metrics.jsonl" \
	    2>/dev/null | sort -n | tail -1
}
past_on() { [ "$(step_of "$1")" -ge "$2" ] 2>/dev/null; }
advance_on() {
	local s
	s=$(step_now)
	s=${s:-0}
	until_ok 180 past_on "$1" $((s + $2))
}
alive() { kill -0 "$(cat "$TMP/h$1/$2.pid")" 2>/dev/null; }
check() {	# WHAT CMD...: a failure counted unless CMD holds
	local what=$1
	shift
	if "$@"; then log "ok $what"; else log "FAIL: $what"
	    FAILS=$((FAILS + 1)); fi
}

for i in 1 2 3; do host_up "$i"; done
until_ok 90 epoch_is 1,2,3 1 2 3 ||
    { log "FAIL: no epoch of all three"; tail -n 5 "$TMP"/h*/control.log
    exit 1; }
log "epoch $(status_of 1 epoch) of hosts 1,2,3"
jobstart() {
	local i
	for i in 1 2 3; do
		"$CLI" -s "$TMP/h$i/run/control.sock" job start "$TMP/job.conf" \
		    --global-batch $G > "$TMP/job.log" 2>&1 && return 0
	done
	return 1
}
until_ok 60 jobstart || { log "FAIL: no leader took the job";
    cat "$TMP/job.log"; exit 1; }
if ! advance 10; then
	log "FAIL: the training did not start"
	tail -n 5 "$TMP"/h*/worker.log; exit 1
fi
log "training: step $(step_now)"

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
for p in 7710 7712; do
	ip netns exec "${TAG}n1" timeout 10 bash -c \
	    "head -c 65536 /dev/urandom > /dev/tcp/$NET.2/$p" 2>/dev/null
done
for k in 1 2 3 4 5 6 7 8; do
	ip netns exec "${TAG}n1" timeout 10 bash -c \
	    "head -c 1200 /dev/urandom > /dev/udp/$NET.2/7711" 2>/dev/null
done
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
kill -TERM "$(cat "$TMP/h1/worker.pid")"
stopped() {
	local i
	for i in 1 2 3; do
		eval "kill -0 \$SUPW$i" 2>/dev/null && return 1
	done
	return 0
}
if ! until_ok 120 stopped; then
	log "FAIL: the workers did not all stop after SIGTERM"
	FAILS=$((FAILS + 1))
fi
S=$(step_now)
log "stopped at step $S; worker starts per host:" \
    "$(for i in 1 2 3; do printf '%s ' "$(grep -c start \
    "$TMP/h$i/worker.runs")"; done)"
for i in 1 2 3; do
	for n in control dataplane; do
		if grep -q "AddressSanitizer\|runtime error\|LeakSanitizer" \
		    "$TMP/h$i/$n.log"; then
			log "FAIL: sanitizer report in host $i's $n log"
			FAILS=$((FAILS + 1))
		fi
	done
done
check "host 1 warned that its checkpoints failed and trained on" \
    grep -q "checkpoint.*\(No space left\|failed\)" "$TMP/h1/worker.log"

# every step 1..S, each loss as one uninterrupted node's
# shellcheck disable=SC2086
if ! timeout 300 "$WORKER" --standalone --job "$TMP/job.conf" -q \
    --set train.steps="$S" --set checkpoint.dir= \
    --metrics-out "$TMP/ref.jsonl" > "$TMP/ref.log" 2>&1; then
	log "FAIL: the reference run"; cat "$TMP/ref.log"; exit 1
fi
losses() {	# FILE...: "step loss" lines
	cat "$@" | sed -n 's/^{"step":\([0-9]*\),"loss":\([-0-9.e+]*\).*/\1 \2/p'
}
losses "$TMP"/h*/metrics.jsonl | sort -n -k1,1 > "$TMP/all.loss"
losses "$TMP/ref.jsonl" > "$TMP/ref.loss"
if r=$(awk -v S="$S" 'NR == FNR { ref[$1] = $2; next }
    { seen[$1] = 1; d = $2 - ref[$1]; if (d < 0) d = -d
      m = ref[$1] < 0 ? -ref[$1] : ref[$1]; x = d / (m > 0 ? m : 1)
      if (!($1 in ref) || x > 1e-4) bad++; if (x > worst) worst = x; n++ }
    END { for (s = 1; s <= S; s++) if (!(s in seen)) miss++
      printf "%d reports of steps 1-%d, %d missing, %d off, worst " \
          "relative difference %.2g", n, S, miss, bad, worst
      exit (miss > 0 || bad > 0 || n == 0) }' \
    "$TMP/ref.loss" "$TMP/all.loss"); then
	log "ok no work lost or repeated: $r"
else
	log "FAIL: the losses against one uninterrupted node: $r"
	FAILS=$((FAILS + 1))
fi
# and none done twice: no host reports a step again (a worker that
# restarted, or rejoined, goes on from the newest state any holds)
again() {
	local i
	for i in 1 2 3; do
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
# the hosts that can write hold the same weights at step S
same_weights() {
	local s
	s=$(printf 'step-%010d/shard-0.bin' "$S")
	[ -s "$TMP/h2/ck/$s" ] && [ -s "$TMP/h3/ck/$s" ] &&
	    cmp -s -i 64 -n 192 "$TMP/h2/ck/$s" "$TMP/h3/ck/$s"
}
check "hosts 2 and 3 hold the same weights at step $S" same_weights

if [ $FAILS -gt 0 ]; then
	for i in 1 2 3; do
		log "== host $i: worker starts and exits"
		tr '\n' ' ' < "$TMP/h$i/worker.runs"; echo
		grep -v "^ step" "$TMP/h$i/worker.log" | tail -n 12
		tail -n 5 "$TMP/h$i/control.log"
	done
	log "FAIL: $FAILS"
	exit 1
fi
log "PASS"
exit 0
