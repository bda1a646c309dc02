#!/bin/sh
# dp_cluster.sh: the dataplane across simulated hosts.
#
# For 2, 3 and 4 hosts: network namespaces on a private bridge (made and
# removed here), one arceus-dataplane per host over the tcp backend, and
# per host an arceus-dptool test worker that attaches through the arena
# and checks all-reduce (sum, average), reduce-scatter, all-gather,
# broadcast and send/recv exactly against a local computation, for odd
# lengths, for the whole group and for subsets, with and without
# compression.  Then one dataplane is killed mid-run and the others must
# report a failure naming that peer within the timeout.
#
# Needs root and iproute2 (exit 77 otherwise).  Every process is started
# here, remembered by PID and killed by PID; everything is bounded in time.
set -u

BUILD=${BUILD:-build}
DP=$BUILD/arceus-dataplane
TOOL=$BUILD/arceus-dptool
TAG=adp$$
NET=10.$((200 + $$ % 50)).$(( ($$ / 50) % 250 ))
TMP=$(mktemp -d /tmp/arceus-dpc.XXXXXX)
PIDS=""
NS=""
FAILS=0

log() { printf 'dp_cluster: %s\n' "$*"; }

. "$(dirname "$0")/dp_lib.sh"
cleanup() { dp_cleanup; }
trap 'cleanup; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
dp_preflight

# hosts N: N namespaces on one bridge, a dataplane in each
hosts() {
	n=$1
	conf=$TMP/arceus.conf
	{
		echo "[dataplane]"
		echo "transport = tcp"
		echo "port = 7710"
		echo "arena_size = 256M"
		echo "chunk_size = 64K"
		echo "peer_timeout_ms = 1000"
		echo "op_timeout_ms = 3000"
		# the 2-host round also covers zero-copy sends
		[ "$n" = 2 ] && echo "tcp_zerocopy = yes"
		for i in $(seq 1 "$n"); do echo "peer = $i@$NET.$i:7710"; done
	} > "$conf"
	for i in $(seq 1 "$n"); do
		ns=${TAG}n$i
		bridge_host "$i" "$NET.$i" || return 1
		mkdir -p "$TMP/n$i"
		ip netns exec "$ns" "$DP" -c "$conf" -o node.id=$i \
		    -o "node.run_dir=$TMP/n$i" -o "dataplane.listen=$NET.$i" \
		    > "$TMP/dp$i.log" 2>&1 &
		PIDS="$PIDS $!"
		eval "DPPID$i=$!"
	done
	for i in $(seq 1 "$n"); do
		if ! until_ok 10 up "$i" $((n - 1)); then
			log "FAIL: host $i: links not up"; cat "$TMP/dp$i.log"
			return 1
		fi
	done
}

# kill_test N VICTIM: hammer all-reduces, SIGKILL one dataplane mid-run
kill_test() {
	kill_hosts "$1" "$2" || return
	if ! grep -q "dataplane unreachable" "$TMP/h$victim.log"; then
		log "FAIL kill: the victim's worker was not told"
		cat "$TMP/h$victim.log"
		FAILS=$((FAILS + 1))
	fi
	# the peer timeout is 1000 ms; a kill shows as a reset much sooner
	if [ "$ms" -gt 3000 ]; then
		log "FAIL kill: failures took $ms ms"; FAILS=$((FAILS + 1))
	else
		log "ok kill: $((n - 1)) hosts named peer $victim within $ms ms"
	fi
	grep -h "down:" "$TMP"/dp*.log | sed 's/^/dp_cluster:   /' | sort | uniq -c
}

# stall_test N VICTIM: SIGSTOP one dataplane; the others must name it
# within the peer timeout (1000 ms) plus slack, then it comes back
stall_test() {
	n=$1 victim=$2
	members=$(seq -s, 1 "$n")
	hp=""
	for i in $(seq 1 "$n"); do
		[ "$i" = "$victim" ] && continue
		timeout 30 ip netns exec "${TAG}n$i" "$TOOL" \
		    -s "$TMP/n$i/dataplane.sock" hammer -g 98 -m "$members" \
		    -t 20 -n 65536 > "$TMP/s$i.log" 2>&1 &
		hp="$hp $!"
	done
	eval "vp=\$DPPID$victim"
	kill -STOP "$vp"
	t0=$(date +%s%N)
	for p in $hp; do wait "$p"; done
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	kill -CONT "$vp"
	for i in $(seq 1 "$n"); do
		[ "$i" = "$victim" ] && continue
		if ! grep -q "FAILED.*peer=$victim " "$TMP/s$i.log"; then
			log "FAIL stall: host $i did not name peer $victim:"
			cat "$TMP/s$i.log"; FAILS=$((FAILS + 1))
		fi
	done
	if [ "$ms" -gt 3500 ]; then
		log "FAIL stall: failures took $ms ms"; FAILS=$((FAILS + 1))
	else
		log "ok stall: $((n - 1)) hosts named stopped peer $victim" \
		    "within $ms ms (timeout 1000)"
	fi
	# the links come back once it runs again
	for i in $(seq 1 "$n"); do
		until_ok 10 up "$i" $((n - 1)) || { log "FAIL: links of" \
		    "host $i did not come back"; FAILS=$((FAILS + 1)); }
	done
}

# worker_death_test N: SIGKILL every test worker in the middle of its
# all-reduces; the dataplanes finish what was posted, stay up, and new
# workers attach and pass
worker_death_test() {
	n=$1
	members=$(seq -s, 1 "$n")
	hp=""
	for i in $(seq 1 "$n"); do
		timeout 30 ip netns exec "${TAG}n$i" "$TOOL" \
		    -s "$TMP/n$i/dataplane.sock" hammer -g 97 -m "$members" \
		    -t 20 -n 300000 > "$TMP/k$i.log" 2>&1 &
		hp="$hp $!"
	done
	running() { grep -q RUNNING "$TMP/k$1.log"; }
	for i in $(seq 1 "$n"); do until_ok 10 running "$i"; done
	for p in $hp; do kill -9 "$p" 2>/dev/null; done
	for p in $hp; do wait "$p" 2>/dev/null; done
	for i in $(seq 1 "$n"); do
		eval "dpp=\$DPPID$i"
		if ! kill -0 "$dpp" 2>/dev/null; then
			log "FAIL worker death: dataplane $i died"
			FAILS=$((FAILS + 1))
		fi
	done
	run_test "after-worker-death-$n" 16 "$members" -n 1001,65537
}

# links_test: RTT from heartbeats, bandwidth from a probe, on host 1
links_test() {
	"$TOOL" -s "$TMP/n1/dataplane.sock" probe 2 8 > "$TMP/probe.log" 2>&1
	if grep -q "peer 2 up backend=tcp backends=0x[0-9a-f]*/0x[0-9a-f]* rtt_us=[0-9]*[1-9][0-9.]* bw_probe_MBps=[0-9]*[1-9]" \
	    "$TMP/probe.log"; then
		log "ok links: $(cat "$TMP/probe.log")"
	else
		log "FAIL links: no RTT or probe bandwidth:"
		cat "$TMP/probe.log"; FAILS=$((FAILS + 1))
	fi
}

# garbage_test: a stranger connects to host 1's dataplane port and sends
# junk, then a well-formed header of 60 MiB; both are counted and
# dropped, and the dataplane goes on
garbage_test() {
	command -v bash >/dev/null || { log "skip garbage: no bash"; return; }
	before=$("$TOOL" -s "$TMP/n1/dataplane.sock" status | \
	    sed 's/.*rx_bad \([0-9]*\).*/\1/')
	ip netns exec "${TAG}n2" bash -c "
	    exec 3<>/dev/tcp/$NET.1/7710 &&
	    head -c 4096 /dev/urandom >&3; exec 3>&-
	    exec 3<>/dev/tcp/$NET.1/7710 &&
	    printf 'ARCW\001\001\000\000\000\000\000\001\000\000\000\002\003\300\000\000' >&3 &&
	    head -c 40 /dev/zero >&3; exec 3>&-" 2>/dev/null
	bad() { [ "$("$TOOL" -s "$TMP/n1/dataplane.sock" status | \
	    sed 's/.*rx_bad \([0-9]*\).*/\1/')" -ge $((before + 2)) ]; }
	if until_ok 5 bad && kill -0 "$DPPID1" 2>/dev/null && up 1 1; then
		log "ok garbage: counted, dropped, still serving"
	else
		log "FAIL garbage: $("$TOOL" -s "$TMP/n1/dataplane.sock" status)"
		FAILS=$((FAILS + 1))
	fi
}

up() { [ "$("$TOOL" -s "$TMP/n$1/dataplane.sock" links | \
    grep -c ' up ')" = "$2" ]; }

for n in 2 3 4; do
	log "== $n hosts"
	if ! hosts "$n"; then FAILS=$((FAILS + 1)); cleanup; continue; fi
	all=$(seq -s, 1 "$n")
	run_test "all-$n" 10 "$all" -n 1,7,1001,65537,200003
	# reversed ring order, and compression
	rev=$(seq -s, "$n" -1 1)
	run_test "reversed-$n-bf16" 11 "$rev" -c bf16 -n 3,4099,100001
	run_test "all-$n-int8" 12 "$all" -c int8 -n 5,70001
	run_test "all-$n-topk" 13 "$all" -c topk:0.1 -n 9,50001
	if [ "$n" -ge 3 ]; then
		run_test "subset-$n" 14 "$n,1" -n 2,999,33333
		run_test "subset-$n-int8" 15 "2,$n,1" -c int8 -n 1001
	fi
	if [ "$n" = 2 ]; then
		links_test
		garbage_test
		run_test "after-garbage-2" 17 "$all" -n 65537
	fi
	if [ "$n" = 3 ]; then
		worker_death_test "$n"
	fi
	if [ "$n" = 4 ]; then
		stall_test "$n" 3
	fi
	if [ "$n" -ge 3 ]; then
		kill_test "$n" 2
	fi
	for i in $(seq 1 "$n"); do
		if grep -q "AddressSanitizer\|runtime error" "$TMP/dp$i.log"; then
			log "FAIL: sanitizer report on host $i"
			cat "$TMP/dp$i.log"; FAILS=$((FAILS + 1))
		fi
	done
	cleanup
done

if [ $FAILS -gt 0 ]; then log "FAIL: $FAILS"; exit 1; fi
log "PASS"
exit 0
