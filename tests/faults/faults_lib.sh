# faults_lib.sh: what the fault suites of a cluster in training share
# (train_faults.sh: data parallel; pipe_faults.sh: pipeline stages).
# Also tests/cluster/straggler.sh.  Sourced, not run.  The caller sets
# NAME (its log prefix), NH (hosts), BUILD, TAG, NET, TMP, FAILS, and may
# set MEM (each node's model memory, 0: no cap), CTL_EXTRA (more lines of
# each node's [control]), CTL_ENV (the controls' environment) and WENV<I>
# (host I's worker's environment, e.g. a fault); it writes the job
# (job_conf), then calls faults_setup; hosts are 1..NH on a private
# bridge (dp_lib.sh bridge_host).  Every process is remembered by PID and killed by PID;
# every wait is on a condition with a deadline.

CTL=$BUILD/arceus-control
DP=$BUILD/arceus-dataplane
TOOL=$BUILD/arceus-dptool
WORKER=$BUILD/arceus-worker
CLI=$BUILD/arceusctl
PIDS=""
NS=""
MOUNTED=""

log() { printf '%s: %s\n' "$NAME" "$*"; }

. "$(dirname "${BASH_SOURCE[0]}")/../cluster/dp_lib.sh"

hosts() { seq 1 "$NH"; }

faults_cleanup() {
	local i f
	for i in $(hosts); do touch "$TMP/h$i/down" 2>/dev/null; done
	dp_cleanup	# the supervisors and controls, by PID
	for f in "$TMP"/h*/*.pid; do
		[ -s "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
	[ -n "$MOUNTED" ] && umount "$MOUNTED" 2>/dev/null
	if [ "$FAILS" != 0 ] || [ -n "${KEEP:-}" ]; then
		log "logs in $TMP"
	else
		rm -rf "$TMP"
	fi
}

# faults_setup: preflight, one node configuration a host, the bridge
faults_setup() {
	local i j d b
	dp_preflight
	for b in "$CTL" "$WORKER" "$CLI"; do
		[ -x "$b" ] || { log "build $b first"; exit 1; }
	done
	[ -s data/corpus.txt ] ||
	    { log "no data/corpus.txt: make corpus"; exit 1; }
	head -c 32 /dev/urandom > "$TMP/key"
	chmod 600 "$TMP/key"
	for i in $(hosts); do
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
			for j in $(hosts); do echo "peer = $j@$NET.$j:7710"; done
			echo "[control]"
			echo "listen = $NET.$i"
			echo "advertise = $NET.$i"
			echo "gossip_port = 7711"
			echo "raft_port = 7712"
			echo "http_port = 0"
			echo "discovery = no"
			echo "model_memory = ${MEM:-0}"
			echo "seed = $NET.1:7711"
			[ -z "${CTL_EXTRA:-}" ] || printf '%s\n' "$CTL_EXTRA"
			echo "[membership]"
			echo "probe_interval_ms = 300"
			echo "probe_timeout_ms = 250"
			echo "suspect_timeout_ms = 3000"
			echo "[raft]"
			echo "election_timeout_ms = 1000"
			echo "heartbeat_ms = 100"
			echo "bootstrap_expect = $(( NH < 3 ? NH : 3 ))"
		} > "$d/arceus.conf"
		"$CTL" -n -c "$d/arceus.conf" > "$d/check.log" 2>&1 ||
		    { cat "$d/check.log"; log "FAIL: host $i's configuration"
		    exit 1; }
		bridge_host "$i" "$NET.$i" || { log "FAIL: host $i"; exit 1; }
	done
}

# job_conf N_LAYER N_HEAD N_EMBD BLOCK BATCH ACCUMULATE INTERVAL [LINE...]:
# the job both suites train, in $TMP/job.conf: a constant learning rate
# after warm-up (so that a run of any length has the same rate at every
# step), a checkpoint every INTERVAL steps, steps enough never to end by
# themselves; LINEs are appended (a [dist] section)
job_conf() {
	cat > "$TMP/job.conf" <<EOF
[model]
n_layer = $1
n_head = $2
n_embd = $3
block_size = $4
[train]
batch_size = $5
accumulate = $6
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
interval = $7
keep = 2
EOF
	shift 7
	[ $# = 0 ] || printf '%s\n' "$@" >> "$TMP/job.conf"
}

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
# (the worker with the arguments all_up was given and $WENV<I>)
WORKER_ARGS=()
host_up() {
	local i=$1 d=$TMP/h$1 env
	rm -f "$d/down"
	eval "env=\${WENV$i:-}"
	# shellcheck disable=SC2086
	ip netns exec "${TAG}n$i" env ${CTL_ENV:-} "$CTL" -c "$d/arceus.conf" \
	    >> "$d/control.log" 2>&1 &
	echo $! > "$d/control.pid"
	PIDS="$PIDS $!"
	supervise dataplane "$i" "$DP" -c "$d/arceus.conf" &
	PIDS="$PIDS $!"
	eval "SUPDP$i=$!"
	# shellcheck disable=SC2086
	supervise worker "$i" env $env "$WORKER" \
	    --dataplane "$d/run/dataplane.sock" --job "$TMP/job.conf" -q \
	    --set checkpoint.dir="$d/ck" --metrics-out "$d/metrics.jsonl" \
	    "${WORKER_ARGS[@]}" &
	PIDS="$PIDS $!"
	eval "SUPW$i=$!"
}

# power_cut I: every process of host I at once, supervisors first
power_cut() {
	local i=$1 d=$TMP/h$1 sd sw n
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
# host I's own newest step (its last report), and: wait for host I itself
# to report a step N past the highest any host has now
step_of() {
	sed -n 's/^{"step":\([0-9]*\),.*/\1/p' "$TMP/h$1/metrics.jsonl" \
	    2>/dev/null | tail -1
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

# all_up [WORKER ARGS...]: every host up (its worker with these
# arguments, now and when it comes back), an epoch of all, the job to the
# raft leader, and the training under way ($START_STEPS steps, 10)
all_up() {
	local i all
	WORKER_ARGS=("$@")
	all=$(hosts | paste -sd, -)
	for i in $(hosts); do host_up "$i"; done
	# shellcheck disable=SC2046
	until_ok 90 epoch_is "$all" $(hosts) ||
	    { log "FAIL: no epoch of hosts $all"
	    tail -n 5 "$TMP"/h*/control.log; exit 1; }
	log "epoch $(status_of 1 epoch) of hosts $all"
	until_ok 60 jobstart || { log "FAIL: no leader took the job";
	    cat "$TMP/job.log"; exit 1; }
	if ! advance "${START_STEPS:-10}"; then
		log "FAIL: the training did not start"
		tail -n 5 "$TMP"/h*/worker.log; exit 1
	fi
	log "training: step $(step_now)"
}
jobstart() {
	local i
	for i in $(hosts); do
		"$CLI" -s "$TMP/h$i/run/control.sock" job start "$TMP/job.conf" \
		    --global-batch "$G" > "$TMP/job.log" 2>&1 && return 0
	done
	return 1
}

# garbage I FROM: random bytes at host I's dataplane and raft (tcp) and
# gossip (udp) ports, from host FROM
garbage() {
	local p k
	for p in 7710 7712; do
		ip netns exec "${TAG}n$2" timeout 10 bash -c \
		    "head -c 65536 /dev/urandom > /dev/tcp/$NET.$1/$p" \
		    2>/dev/null
	done
	for k in 1 2 3 4 5 6 7 8; do
		ip netns exec "${TAG}n$2" timeout 10 bash -c \
		    "head -c 1200 /dev/urandom > /dev/udp/$NET.$1/7711" \
		    2>/dev/null
	done
}

# stop_all I: host I's worker asked to stop (SIGTERM); every worker must
# stop, after the same step; sets S, the highest step reported
stop_all() {
	local i
	kill -TERM "$(cat "$TMP/h$1/worker.pid")"
	if ! until_ok 120 all_stopped; then
		log "FAIL: the workers did not all stop after SIGTERM"
		FAILS=$((FAILS + 1))
	fi
	S=$(step_now)
	log "stopped at step $S; worker starts per host:" \
	    "$(for i in $(hosts); do printf '%s ' "$(grep -c start \
	    "$TMP/h$i/worker.runs")"; done)"
	for i in $(hosts); do
		for n in control dataplane; do
			if grep -q "AddressSanitizer\|runtime error\|LeakSanitizer" \
			    "$TMP/h$i/$n.log"; then
				log "FAIL: sanitizer report in host $i's $n log"
				FAILS=$((FAILS + 1))
			fi
		done
	done
}
all_stopped() {
	local i
	for i in $(hosts); do
		eval "kill -0 \$SUPW$i" 2>/dev/null && return 1
	done
	return 0
}

# ref_losses: one uninterrupted standalone run of the job to step S (the
# anchor), its "step loss" lines in $TMP/ref.loss, and every host's in
# $TMP/all.loss
losses() {	# FILE...: "step loss" lines
	cat "$@" | sed -n 's/^{"step":\([0-9]*\),"loss":\([-0-9.e+]*\).*/\1 \2/p'
}
ref_losses() {
	# shellcheck disable=SC2086
	if ! timeout 300 "$WORKER" --standalone --job "$TMP/job.conf" -q \
	    --set train.steps="$S" --set checkpoint.dir= --set dist.stages= \
	    --metrics-out "$TMP/ref.jsonl" > "$TMP/ref.log" 2>&1; then
		log "FAIL: the reference run"; cat "$TMP/ref.log"; exit 1
	fi
	losses "$TMP"/h*/metrics.jsonl | sort -n -k1,1 > "$TMP/all.loss"
	losses "$TMP/ref.jsonl" > "$TMP/ref.loss"
}
# same_losses TOL: every step 1..S reported, and every report within
# relative TOL of the anchor's loss at its step
same_losses() {
	local r
	if r=$(awk -v S="$S" -v tol="$1" 'NR == FNR { ref[$1] = $2; next }
	    { seen[$1] = 1; d = $2 - ref[$1]; if (d < 0) d = -d
	      m = ref[$1] < 0 ? -ref[$1] : ref[$1]; x = d / (m > 0 ? m : 1)
	      if (!($1 in ref) || x > tol) bad++; if (x > worst) worst = x
	      n++ }
	    END { for (s = 1; s <= S; s++) if (!(s in seen)) miss++
	      printf "%d reports of steps 1-%d, %d missing, %d off, worst " \
	          "relative difference %.2g", n, S, miss, bad, worst
	      exit (miss > 0 || bad > 0 || n == 0) }' \
	    "$TMP/ref.loss" "$TMP/all.loss"); then
		log "ok no work lost, every loss the anchor's: $r"
	else
		log "FAIL: the losses against one uninterrupted node: $r"
		FAILS=$((FAILS + 1))
	fi
}
# went_back: for each host, "I:FROM>TO" for every time its reports went
# back to an earlier step (a restart from a checkpoint)
went_back() {
	local i
	for i in $(hosts); do
		sed -n 's/^{"step":\([0-9]*\),.*/\1/p' "$TMP/h$i/metrics.jsonl" |
		    awk -v h="$i" '$1 <= last { printf "%s:%d>%d ", h, last, $1 }
		    { last = $1 }'
	done
}

faults_report() {
	local i
	[ "$FAILS" -gt 0 ] || { log PASS; return 0; }
	for i in $(hosts); do
		log "== host $i: worker starts and exits"
		tr '\n' ' ' < "$TMP/h$i/worker.runs"; echo
		grep -v "^ step" "$TMP/h$i/worker.log" | tail -n 12
		tail -n 5 "$TMP/h$i/control.log"
	done
	log "FAIL: $FAILS"
	return 1
}
