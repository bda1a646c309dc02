# dp_lib.sh: helpers shared by the namespace tests (dp_cluster.sh,
# dp_dpdk.sh, dp_mixed.sh, dist_train.sh, pipe_train.sh, train_faults.sh);
# sourced, not run.  They use
# the caller's TAG, DP, TOOL, TMP, PIDS, NS, DPPID<i>, FAILS and log.

# until_ok SECONDS CMD...: run CMD every 50 ms until it succeeds or time
# runs out
until_ok() {
	t=$1; shift
	end=$(( $(date +%s%N) / 1000000 + t * 1000 ))
	while ! "$@" >/dev/null 2>&1; do
		[ $(( $(date +%s%N) / 1000000 )) -ge $end ] && return 1
		sleep 0.05
	done
}

# run_test NAME GROUP MEMBERS ARGS...: the test worker (arceus-dptool
# test) on every member at once; counts a failure with what they said.
# RUN_TEST_NS, when set, names one namespace for every member.
run_test() {
	name=$1 g=$2 members=$3; shift 3
	wp=""
	t0=$(date +%s%N)
	for i in $(echo "$members" | tr , ' '); do
		timeout 90 ip netns exec "${RUN_TEST_NS:-${TAG}n$i}" "$TOOL" \
		    -s "$TMP/n$i/dataplane.sock" test -g "$g" -m "$members" "$@" \
		    > "$TMP/w$i.log" 2>&1 &
		wp="$wp $!"
	done
	ok=1
	for p in $wp; do wait "$p" || ok=0; done
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	if [ $ok = 1 ]; then
		log "ok $name ($(grep -h '^ok' "$TMP"/w*.log | wc -l) checks," \
		    "$ms ms)"
	else
		log "FAIL $name"
		grep -h 'FAIL' "$TMP"/w*.log | head -20
		grep -hv '^ok' "$TMP"/w*.log | head -10
		FAILS=$((FAILS + 1))
	fi
	rm -f "$TMP"/w*.log
}

# peer_up I J: host I's dataplane has its link to peer J up
peer_up() { "$TOOL" -s "$TMP/n$1/dataplane.sock" links 2>/dev/null |
    grep -q "^peer $2 up"; }

# field NAME FILE: the values of "NAME": in FILE's JSON lines, one a line
field() { sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p" "$2"; }

# close A B TOL: the two columns agree within relative TOL on every line
close() {
	paste "$1" "$2" | awk -v tol="$3" '
	    { d = $1 - $2; if (d < 0) d = -d; m = $2 < 0 ? -$2 : $2;
	      r = d / (m > 1e-12 ? m : 1e-12); if (r > worst) worst = r;
	      if (r > tol) bad++; n++ }
	    END { printf "%d values, worst relative difference %.2g\n", n,
	      worst; exit (n == 0 || bad > 0) }'
}

# dp_preflight: exit 77 without root, iproute2 or network namespaces,
# 1 without the binaries
dp_preflight() {
	if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null 2>&1; then
		log "SKIP: needs root and iproute2"; exit 77
	fi
	if ! ip netns add "${TAG}probe" 2>/dev/null; then
		log "SKIP: cannot make network namespaces"; exit 77
	fi
	ip netns del "${TAG}probe"
	[ -x "$DP" ] && [ -x "$TOOL" ] || { log "build $DP and $TOOL first"; \
	    exit 1; }
}

# dp_cleanup: every process we started (by PID), namespaces, links
dp_cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	PIDS=""
	for n in $NS; do ip netns del "$n" 2>/dev/null; done
	NS=""
	ip link del "${TAG}br" 2>/dev/null
	for i in 1 2 3 4; do ip link del "${TAG}h$i" 2>/dev/null; done
}

# bridge_host I [ADDR]: namespace ${TAG}n<I> whose eth0 is one end of a
# veth pair on the bridge ${TAG}br (made by the first call), with
# ADDR/24 on it when given
bridge_host() {
	i=$1 ns=${TAG}n$1
	if ! ip link show "${TAG}br" >/dev/null 2>&1; then
		ip link add "${TAG}br" type bridge || return 1
		ip link set "${TAG}br" up
	fi
	ip netns add "$ns" || return 1
	NS="$NS $ns"
	ip link add "${TAG}h$i" type veth peer name "${TAG}v$i" || return 1
	ip link set "${TAG}v$i" netns "$ns"
	ip -n "$ns" link set "${TAG}v$i" name eth0
	[ -n "${2:-}" ] && ip -n "$ns" addr add "$2/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" link set lo up
	ip link set "${TAG}h$i" master "${TAG}br" up
}

# kill_hosts N VICTIM: every host hammers all-reduces on group 99, the
# victim's dataplane is SIGKILLed mid-run, and every other host must name
# it in a failure.  Sets ms to the time from the kill until every worker
# returned.  @return 1 if the hammer never started (FAILS counted).
kill_hosts() {
	n=$1 victim=$2
	members=$(seq -s, 1 "$n")
	hp=""
	for i in $(seq 1 "$n"); do
		timeout 30 ip netns exec "${TAG}n$i" "$TOOL" \
		    -s "$TMP/n$i/dataplane.sock" hammer -g 99 -m "$members" \
		    -t 20 -n 65536 > "$TMP/h$i.log" 2>&1 &
		hp="$hp $!"
	done
	running() { grep -q RUNNING "$TMP/h1.log"; }
	until_ok 10 running || { log "FAIL kill: hammer did not start"; \
	    FAILS=$((FAILS + 1)); return 1; }
	eval "vp=\$DPPID$victim"
	t0=$(date +%s%N)
	kill -9 "$vp"
	for p in $hp; do wait "$p"; done
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	for i in $(seq 1 "$n"); do
		[ "$i" = "$victim" ] && continue
		if ! grep -q "FAILED.*peer=$victim " "$TMP/h$i.log"; then
			log "FAIL kill: host $i did not name peer $victim:"
			cat "$TMP/h$i.log"
			FAILS=$((FAILS + 1))
		fi
	done
	return 0
}

# train_setup N PORT: the start of the training tests (dist_train.sh,
# pipe_train.sh, tensor_train.sh): preflight (root and iproute2, else exit
# 77; the worker built; the corpus), N hosts on the bridge, each with a
# dataplane over tcp on PORT ($TMP/arceus.conf, every host a peer;
# DPPID<i>), and every link up both ways.  Uses the caller's DP, WORKER
# and log.
train_setup() {
	local n=$1 port=$2 i j
	dp_preflight
	[ -x "$WORKER" ] || { log "build $WORKER first"; exit 1; }
	[ -s data/corpus.txt ] ||
	    { log "no data/corpus.txt: make corpus"; exit 1; }
	{
		echo "[dataplane]"
		echo "transport = tcp"
		echo "port = $port"
		echo "arena_size = 64M"
		echo "chunk_size = 64K"
		echo "peer_timeout_ms = 2000"
		echo "op_timeout_ms = 10000"
		for i in $(seq 1 "$n"); do echo "peer = $i@$NET.$i:$port"; done
	} > "$TMP/arceus.conf"
	for i in $(seq 1 "$n"); do
		bridge_host "$i" "$NET.$i" || { log "FAIL: host $i"; exit 1; }
		mkdir -p "$TMP/n$i"
		ip netns exec "${TAG}n$i" "$DP" -c "$TMP/arceus.conf" \
		    -o node.id="$i" -o "node.run_dir=$TMP/n$i" \
		    -o "dataplane.listen=$NET.$i" \
		    > "$TMP/dataplane$i.log" 2>&1 &
		PIDS="$PIDS $!"
		eval "DPPID$i=$!"
	done
	for i in $(seq 1 "$n"); do
		for j in $(seq 1 "$n"); do
			[ "$i" = "$j" ] || until_ok 20 peer_up "$i" "$j" ||
			    { log "FAIL: links not up ($i to $j)"
			    cat "$TMP"/dataplane*.log; exit 1; }
		done
	done
}

# train_ref ARGS...: the anchor, one node alone (arceus-worker
# --standalone ARGS): $TMP/ref.jsonl, .log, and its losses, gradient norms
# and validation losses in ref.loss, ref.norm, ref.val
train_ref() {
	if ! timeout 300 "$WORKER" --standalone "$@" \
	    --metrics-out "$TMP/ref.jsonl" > "$TMP/ref.log" 2>&1; then
		log "FAIL: the standalone reference run"; cat "$TMP/ref.log"
		exit 1
	fi
	field loss "$TMP/ref.jsonl" > "$TMP/ref.loss"
	field grad_norm "$TMP/ref.jsonl" > "$TMP/ref.norm"
	field val_loss "$TMP/ref.jsonl" > "$TMP/ref.val"
}
