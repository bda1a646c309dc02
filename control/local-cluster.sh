#!/bin/sh
# local-cluster.sh: a whole Arceus cluster on this one machine (make run).
#
#   control/local-cluster.sh [-n NODES] [-j JOB] [-d DIR] [-p PORT]
#                            [-H HTTP_PORT] [-M MEM] [-k] [-P] [-- WORKER_ARGS...]
#
# NODES simulated nodes (default 2) on the loopback interface, each with
# its own arceus-control, arceus-dataplane and arceus-worker, its own
# run_dir, state and checkpoints under DIR (default build/local), and
# ports from PORT (default 7800) up.  The controls find each other by
# seeds and agree an epoch; the dataplanes link up over tcp; the workers
# train JOB (default configs/jobs/tiny.conf) data parallel, each taking
# an equal share of the job's batch, so that the cluster trains the same
# model as one node with that batch.  With -P the planner decides
# instead: the job goes to the raft leader, which plans it on the
# measured nodes and commits the plan, and each node's worker takes its
# part from its control (dist.members = plan: the replicas, its share of
# every global batch, its micro-batches); a node the plan leaves idle
# is a standby (on one machine the planner may well find one replica
# faster than two sharing its cores): it trains no rows but keeps the
# model in step.  A job with dist.stages = plan lets the planner split the
# model into pipeline stages (dist.tensor = plan: over tensor groups);
# -M MEM (e.g. 80M) caps the memory each node offers the model ([control]
# model_memory), so that a model too big for one node is split.  Node 1's worker shows its progress
# here; node 1's control serves the dashboard on HTTP_PORT (default 7780;
# 0: none).  At the end the cluster stops, unless -k keeps it running
# (Ctrl-C stops it).  Running it again resumes from the checkpoints in
# DIR; delete DIR to start over.  Logs: DIR/n*/{control,dataplane,
# worker}.log.
#
# Binaries come from $BUILD (default build).  Every process started here
# is stopped by its PID on exit.
set -u

BUILD=${BUILD:-build}
NODES=2
JOB=configs/jobs/tiny.conf
DIR=$BUILD/local
BASE=7800
HTTP=7780
KEEP=0
PLANNED=0
PIDS=""
WPIDS=""

say() { printf 'arceus-local: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
usage() {
	sed -n '4,5p' "$0" | sed 's/^# *//' >&2
	exit 2
}

MEM=0
while getopts n:j:d:p:H:M:kPh o; do
	case $o in
	n) NODES=$OPTARG ;;
	j) JOB=$OPTARG ;;
	d) DIR=$OPTARG ;;
	p) BASE=$OPTARG ;;
	H) HTTP=$OPTARG ;;
	M) MEM=$OPTARG ;;
	k) KEEP=1 ;;
	P) PLANNED=1 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
case $NODES in
''|*[!0-9]*) die "-n $NODES: the number of nodes, 1 to 16" ;;
esac
[ "$NODES" -ge 1 ] && [ "$NODES" -le 16 ] ||
    die "-n $NODES: the number of nodes, 1 to 16"
for p in "$BASE" "$HTTP"; do
	case $p in ''|*[!0-9]*) die "port '$p': a number" ;; esac
done
for b in arceus-control arceus-dataplane arceus-dptool arceus-worker \
    arceusctl; do
	[ -x "$BUILD/$b" ] || die "$BUILD/$b is missing: run make first"
done
[ -r "$JOB" ] || die "$JOB: no such job file"
"$BUILD/arceus-worker" -n --job "$JOB" "$@" >/dev/null ||
    die "$JOB: see the errors above"

# the workers first (they agree on a step to stop after and checkpoint
# it), then the daemons they need until then
stop() {
	for p in $WPIDS; do kill "$p" 2>/dev/null; done
	for p in $WPIDS; do wait "$p" 2>/dev/null; done
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	PIDS="" WPIDS=""
}
trap 'stop' EXIT
trap 'say "stopping"; exit 130' INT TERM

mkdir -p "$DIR" || die "cannot make $DIR"
DIR=$(cd "$DIR" && pwd)
if [ ! -s "$DIR/cluster.key" ]; then
	(umask 077; head -c 32 /dev/urandom > "$DIR/cluster.key") ||
	    die "cannot write $DIR/cluster.key"
fi
chmod 600 "$DIR/cluster.key"

dp_port() { echo $((BASE + 10 * $1)); }
members=$(seq -s, 1 "$NODES")
# an equal share of the job's batch each (the first ones take the rest):
# train.batch_size from the last --set that names it, else the job file
batch=""
for a in "$@"; do
	case $a in train.batch_size=*) batch=${a#train.batch_size=} ;; esac
done
[ -n "$batch" ] || batch=$(awk -F'[=#; \t]+' '
    /^\[/ { sec = $0; next }
    sec == "[train]" && $1 == "batch_size" { print $2; exit }' "$JOB")
[ -n "$batch" ] || batch=12
# the planner's way takes the whole step's batch: batch_size x accumulate
acc=""
for a in "$@"; do
	case $a in train.accumulate=*) acc=${a#train.accumulate=} ;; esac
done
[ -n "$acc" ] || acc=$(awk -F'[=#; \t]+' '
    /^\[/ { sec = $0; next }
    sec == "[train]" && $1 == "accumulate" { print $2; exit }' "$JOB")
case $acc in ''|*[!0-9]*) acc=1 ;; esac
case $batch in ''|*[!0-9]*) die "train.batch_size '$batch': a number" ;; esac
[ "$batch" -ge "$NODES" ] || die "$JOB: batch_size $batch is smaller" \
    "than $NODES nodes"
shares=""
for i in $(seq 1 "$NODES"); do
	s=$((batch / NODES))
	[ "$i" -le $((batch % NODES)) ] && s=$((s + 1))
	shares="$shares${shares:+,}$s"
done
cores=$(nproc 2>/dev/null || echo 1)
threads=$((cores / NODES))
[ "$threads" -ge 1 ] || threads=1

for i in $(seq 1 "$NODES"); do
	d=$DIR/n$i
	mkdir -p "$d/run" "$d/state" || die "cannot make $d"
	{
		echo "[node]"
		echo "id = $i"
		echo "name = node$i"
		echo "run_dir = $d/run"
		echo "state_dir = $d/state"
		echo "key_file = $DIR/cluster.key"
		echo "[dataplane]"
		echo "transport = tcp"
		echo "listen = 127.0.0.1"
		echo "port = $(dp_port "$i")"
		echo "arena_size = 64M"
		echo "chunk_size = 256K"
		echo "peer_timeout_ms = 5000"
		echo "op_timeout_ms = 30000"
		for j in $(seq 1 "$NODES"); do
			echo "peer = $j@127.0.0.1:$(dp_port "$j")"
		done
		echo "[control]"
		echo "listen = 127.0.0.1"
		echo "advertise = 127.0.0.1"
		echo "gossip_port = $((BASE + 10 * i + 1))"
		echo "raft_port = $((BASE + 10 * i + 2))"
		echo "http_listen = 127.0.0.1"
		if [ "$i" = 1 ]; then echo "http_port = $HTTP"; else
		    echo "http_port = 0"; fi
		echo "discovery = no"
		echo "model_memory = $MEM"
		echo "seed = 127.0.0.1:$((BASE + 11))"
		# every node shares this machine's cores: a busy one answers
		# late, which must not count as a death
		echo "[membership]"
		echo "probe_interval_ms = 200"
		echo "probe_timeout_ms = 150"
		echo "suspect_timeout_ms = 3000"
		echo "[raft]"
		echo "election_timeout_ms = 1000"
		echo "heartbeat_ms = 100"
		echo "bootstrap_expect = $(( NODES < 3 ? NODES : 3 ))"
	} > "$d/arceus.conf"
	"$BUILD/arceus-control" -n -c "$d/arceus.conf" > "$d/check.log" 2>&1 ||
	    { cat "$d/check.log" >&2; die "node $i: bad configuration"; }
done

say "starting $NODES nodes in $DIR (logs: n*/*.log)"
for i in $(seq 1 "$NODES"); do
	d=$DIR/n$i
	# a session of their own: a Ctrl-C on the terminal reaches us and the
	# workers, and the daemons stop only when the workers are done
	setsid "$BUILD/arceus-control" -c "$d/arceus.conf" > "$d/control.log" \
	    2>&1 &
	PIDS="$PIDS $!"
	setsid "$BUILD/arceus-dataplane" -c "$d/arceus.conf" \
	    > "$d/dataplane.log" 2>&1 &
	PIDS="$PIDS $!"
done

# until the controls agree an epoch with every node, every dataplane was
# handed it (the peer table of that epoch) and has all its links up
epoch_all() {
	E=$("$BUILD/arceusctl" -s "$DIR/n1/run/control.sock" status --json \
	    2>/dev/null | grep "\"epoch_members\":\[$members\]" |
	    grep -o '"epoch":[0-9]*' | head -1 | cut -d: -f2)
	[ -n "$E" ] && [ "$E" -gt 0 ]
}
links_up() {
	# the epoch as it is now: a restarted control replays its log first
	epoch_all || return 1
	for i in $(seq 1 "$NODES"); do
		s=$DIR/n$i/run/dataplane.sock
		"$BUILD/arceus-dptool" -s "$s" status 2>/dev/null |
		    grep -q "^node $i epoch $E " || return 1
		n=$("$BUILD/arceus-dptool" -s "$s" links 2>/dev/null |
		    grep -c ' up ')
		[ "$n" = $((NODES - 1)) ] || return 1
	done
}
# wait_for WHAT CMD: CMD until it holds, 60 s at most
wait_for() {
	what=$1; shift
	t=0
	until "$@"; do
		t=$((t + 1))
		if [ $t -gt 600 ]; then
			tail -n 3 "$DIR"/n*/*.log >&2
			die "$what did not happen in 60 s"
		fi
		sleep 0.1
	done
}
wait_for "an epoch of all $NODES nodes" epoch_all
wait_for "the dataplanes' links in epoch $E" links_up
say "epoch $E: $NODES dataplanes linked over tcp; training $JOB data" \
    "parallel, $threads thread(s) each"
# the planner's way: the job to the leader (whichever control takes it);
# the workers then wait for its plan
jobstart() {
	for i in $(seq 1 "$NODES"); do
		"$BUILD/arceusctl" -s "$DIR/n$i/run/control.sock" job start \
		    "$JOB" --global-batch $((batch * acc)) > "$DIR/job.log" 2>&1 &&
		    return 0
	done
	return 1
}
# share I: node I's part of the committed plan (arceusctl share: 0 in
# it, 3 idle, else not yet)
share() {
	"$BUILD/arceusctl" -s "$DIR/n$1/run/control.sock" share \
	    > "$DIR/n$1/share.txt" 2>&1
	r=$?
	[ $r = 0 ] || [ $r = 3 ]
}
TRAIN=$(seq 1 "$NODES")
if [ $PLANNED = 1 ]; then
	wait_for "a leader taking the job" jobstart
	say "$(head -1 "$DIR/job.log" | sed 's/\.*$//')"
	wait_for "a plan for the job" share 1
	TRAIN=""
	for i in $(seq 1 "$NODES"); do
		wait_for "node $i's part of the plan" share "$i"
		if grep -q '^this node: rank' "$DIR/n$i/share.txt"; then
			TRAIN="$TRAIN $i"
		else
			say "node $i: $(tail -n 1 "$DIR/n$i/share.txt")"
		fi
	done
	[ -n "$TRAIN" ] || die "the plan trains on none of the nodes"
	f=$DIR/n$(echo $TRAIN | cut -d' ' -f1)/share.txt
	say "the plan: $(grep -h '^epoch' "$f"); $(grep -h '^replicas' "$f")"
	split="--set dist.members=plan"
	# a job whose stages come from the plan says so itself
	stages=$(awk -F'[=#; \t]+' '/^\[/ { sec = $0; next }
	    sec == "[dist]" && $1 == "stages" { print $2; exit }' "$JOB")
	for a in "$@"; do
		case $a in dist.stages=*) stages=${a#dist.stages=} ;; esac
	done
	[ "$stages" = plan ] && split=""
	# ... and so does one whose tensor groups do
	tensor=$(awk -F'[=#; \t]+' '/^\[/ { sec = $0; next }
	    sec == "[dist]" && $1 == "tensor" { print $2; exit }' "$JOB")
	for a in "$@"; do
		case $a in dist.tensor=*) tensor=${a#dist.tensor=} ;; esac
	done
	[ "$tensor" = plan ] && split=""
else
	split="--set dist.members=$members --set dist.shares=$shares"
fi
[ "$HTTP" != 0 ] && say "dashboard: http://127.0.0.1:$HTTP/" \
    "(arceusctl -s $DIR/n1/run/control.sock status)"

# worker I ARGS...: node I's worker, the user's arguments last (run in
# the background, it becomes the worker: its PID is the worker's)
worker() {
	d=$DIR/n$1
	shift
	# shellcheck disable=SC2086
	exec "$BUILD/arceus-worker" --dataplane "$d/run/dataplane.sock" \
	    --job "$JOB" $split --set train.threads="$threads" \
	    --set checkpoint.dir="$d/ckpt" --metrics-out "$d/metrics.jsonl" \
	    "$@"
}
first=$(echo $TRAIN | cut -d' ' -f1)
for i in $TRAIN; do
	if [ "$i" = "$first" ]; then	# its progress, here
		worker "$i" "$@" > "$DIR/n$i/worker.out" &
	else
		worker "$i" -q "$@" > "$DIR/n$i/worker.out" \
		    2> "$DIR/n$i/worker.log" &
	fi
	WPIDS="$WPIDS $!"
done
rc=0
for p in $WPIDS; do wait "$p" || rc=1; done
WPIDS=""
cat "$DIR/n$first/worker.out"
if [ $rc != 0 ]; then
	say "a worker failed: see $DIR/n*/worker.log"
	exit 1
fi
st=$("$BUILD/arceusctl" -s "$DIR/n1/run/control.sock" status 2>/dev/null)
say "done; $(echo "$st" | grep -E '^(epoch|training)' | tr -s ' ' |
    paste -sd';' - | sed 's/;/; /g')"
if [ $KEEP = 1 ]; then
	say "the cluster keeps running (-k); Ctrl-C stops it"
	while :; do sleep 3600; done
fi
exit 0
