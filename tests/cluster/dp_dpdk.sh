#!/bin/sh
# dp_dpdk.sh: the dataplane over its DPDK backend across simulated hosts.
#
# 2 hosts on one veth pair, then 3 hosts on a private bridge: network
# namespaces (made and removed here), one arceus-dataplane per host with
# `transport = dpdk` on net_af_packet over the host's eth0 (EAL without
# huge pages, from the config's dpdk_port/dpdk_eal), and per host an
# arceus-dptool test worker that checks the collectives exactly as
# dp_cluster.sh does.  Then the loss test: every dataplane drops,
# duplicates and reorders a fraction of the frames it receives (the fault
# seam, ARCEUS_FAULT=net_drop:rate=..), and the results must still be
# exact, on 2 hosts and again on 3.  Two nodes of one host over net_memif
# (shared memory).  Then a SIGSTOPped dataplane must be named by the others and its
# links come back when it runs again, and a SIGKILLed one must be named.
#
# Needs root, iproute2 and a DPDK build (exit 77 otherwise, or when the
# EAL cannot start, e.g. under ASan).  Every process is started here,
# remembered by PID and killed by PID; everything is bounded in time.
set -u

BUILD=${BUILD:-build}
DP=$BUILD/arceus-dataplane
TOOL=$BUILD/arceus-dptool
TAG=adk$$
NET=10.$((150 + $$ % 50)).$(( ($$ / 50) % 250 ))
TMP=$(mktemp -d /tmp/arceus-dpdk.XXXXXX)
PIDS=""
NS=""
FAILS=0
LOSS=${DP_DPDK_LOSS:-0.05}

log() { printf 'dp_dpdk: %s\n' "$*"; }

. "$(dirname "$0")/dp_lib.sh"
cleanup() {
	dp_cleanup
	rm -rf /var/run/dpdk/${TAG}* "$TMP/memif.sock" 2>/dev/null
}
trap 'cleanup; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
dp_preflight

up() { [ "$("$TOOL" -s "$TMP/n$1/dataplane.sock" links | \
    grep -c ' up backend=dpdk')" = "$2" ]; }

# start_dp I FAULTSPEC: host I's dataplane
start_dp() {
	i=$1
	mkdir -p "$TMP/n$i"
	ip netns exec "${TAG}n$i" env ARCEUS_FAULT="$2" "$DP" -c "$TMP/arceus.conf" \
	    -o node.id=$i -o "node.run_dir=$TMP/n$i" \
	    -o "dataplane.listen=$NET.$i" \
	    -o "dataplane.dpdk_eal=--no-huge -m 256 --file-prefix=${TAG}n$i" \
	    >> "$TMP/dp$i.log" 2>&1 &
	PIDS="$PIDS $!"
	eval "DPPID$i=$!"
}

# hosts N FAULTSPEC: N namespaces (2: one veth pair; more: a bridge)

hosts() {
	n=$1 fault=$2
	rm -f "$TMP"/dp*.log
	{
		echo "[dataplane]"
		echo "transport = dpdk"
		echo "dpdk_port = net_af_packet0,iface=eth0"
		echo "port = 7710"
		echo "arena_size = 256M"
		echo "chunk_size = 64K"
		echo "peer_timeout_ms = 1000"
		echo "op_timeout_ms = 5000"
		for i in $(seq 1 "$n"); do echo "peer = $i@$NET.$i:7710"; done
		[ -n "${JUMBO:-}" ] && echo "dpdk_mtu = $JUMBO"
		# 2 hosts: zero copy at MTU 1500 too (af_packet copies
		# payload slices under 2048 bytes by default, cheaper on a
		# device that copies every frame); 3 hosts: that default
		[ "$n" = 2 ] && echo "dpdk_zc_min = 256"
		# the static neighbour table instead of ARP
		[ -n "${STATIC:-}" ] && for i in $(seq 1 "$n"); do
			echo "dpdk_neighbor = $NET.$i 02:00:00:00:00:0$i"; done
	} > "$TMP/arceus.conf"
	for i in $(seq 1 "$n"); do
		ip netns add "${TAG}n$i" || return 1
		NS="$NS ${TAG}n$i"
	done
	if [ "$n" = 2 ]; then
		ip link add "${TAG}h1" type veth peer name "${TAG}h2" || return 1
		for i in 1 2; do
			ip link set "${TAG}h$i" netns "${TAG}n$i"
			ip -n "${TAG}n$i" link set "${TAG}h$i" name eth0
		done
	else
		ip link add "${TAG}br" type bridge || return 1
		ip link set "${TAG}br" up
		for i in $(seq 1 "$n"); do
			ip link add "${TAG}h$i" type veth peer name "${TAG}v$i" ||
			    return 1
			ip link set "${TAG}v$i" netns "${TAG}n$i"
			ip -n "${TAG}n$i" link set "${TAG}v$i" name eth0
			ip link set "${TAG}h$i" master "${TAG}br" up
		done
	fi
	# no kernel address: the kernel must not answer our UDP
	for i in $(seq 1 "$n"); do
		ip netns exec "${TAG}n$i" sysctl -qw \
		    net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
		ip -n "${TAG}n$i" link set eth0 address "02:00:00:00:00:0$i"
		[ -n "${JUMBO:-}" ] && ip -n "${TAG}n$i" link set eth0 mtu "$JUMBO"
		ip -n "${TAG}n$i" link set eth0 up
		ip -n "${TAG}n$i" link set lo up
		start_dp "$i" "$fault"
	done
	for i in $(seq 1 "$n"); do
		if ! until_ok 15 up "$i" $((n - 1)); then
			log "FAIL: host $i: links not up"
			tail -20 "$TMP/dp$i.log"
			"$TOOL" -s "$TMP/n$i/dataplane.sock" links
			return 1
		fi
	done
}

kill_test() {
	kill_hosts "$1" "$2" || return
	# no reset on a datagram port: the peer timeout (1000 ms) tells
	if [ "$ms" -gt 4000 ]; then
		log "FAIL kill: failures took $ms ms"; FAILS=$((FAILS + 1))
	else
		log "ok kill: $((n - 1)) hosts named peer $victim within $ms ms"
	fi
}

# stall_test N VICTIM: SIGSTOP one dataplane; the others name it, and
# once it runs again every link comes back (its stale streams are reset)
# and the collectives pass again
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
	if [ "$ms" -gt 4000 ]; then
		log "FAIL stall: failures took $ms ms"; FAILS=$((FAILS + 1))
	else
		log "ok stall: $((n - 1)) hosts named stopped peer $victim within $ms ms"
	fi
	for i in $(seq 1 "$n"); do
		until_ok 15 up "$i" $((n - 1)) || { log "FAIL: links of" \
		    "host $i did not come back"; FAILS=$((FAILS + 1)); }
	done
}

# stop_dps N: an orderly stop of hosts 1..N (each logs its counters)
stop_dps() {
	for i in $(seq 1 "$1"); do eval "kill -TERM \$DPPID$i"; done
	for i in $(seq 1 "$1"); do eval "wait \$DPPID$i"; done
}

# restart_new_mac I: host I's dataplane stops, its port gets another
# MAC (a new NIC, say), it starts again; the others must learn the new
# MAC by ARP and the links come back
restart_new_mac() {
	i=$1
	eval "kill -TERM \$DPPID$i; wait \$DPPID$i"
	ip -n "${TAG}n$i" link set eth0 address "02:00:00:00:01:0$i"
	start_dp "$i" ""
	for j in 1 2; do
		until_ok 15 up "$j" 1 || { log "FAIL: links of host $j did" \
		    "not come back after host $i restarted"; \
		    FAILS=$((FAILS + 1)); return 1; }
	done
}

sanitizer_check() {
	for f in "$TMP"/dp*.log; do
		if grep -q "AddressSanitizer\|runtime error" "$f"; then
			log "FAIL: sanitizer report in $f"; cat "$f"
			FAILS=$((FAILS + 1))
		fi
	done
}

# Can the EAL start here at all (root, memory, af_packet, this build)?
probe() {
	ip netns add "${TAG}n1" || return 1
	NS="${TAG}n1"
	ip link add "${TAG}h1" type veth peer name "${TAG}h2" || return 1
	ip link set "${TAG}h1" netns "${TAG}n1"
	ip -n "${TAG}n1" link set "${TAG}h1" name eth0
	ip -n "${TAG}n1" link set eth0 up
	printf '[dataplane]\ntransport = dpdk\ndpdk_port = net_af_packet0,iface=eth0\narena_size = 16M\n' \
	    > "$TMP/probe.conf"
	mkdir -p "$TMP/probe"
	ip netns exec "${TAG}n1" "$DP" -c "$TMP/probe.conf" -o node.id=1 \
	    -o "node.run_dir=$TMP/probe" -o dataplane.listen=$NET.1 \
	    -o "dataplane.dpdk_eal=--no-huge -m 256 --file-prefix=${TAG}p" \
	    > "$TMP/probe.log" 2>&1 &
	pp=$!
	PIDS="$pp"
	ready() { grep -q "listening on" "$TMP/probe.log" || \
	    ! kill -0 "$pp"; }
	until_ok 20 ready
	grep -q "listening on .*(dpdk)" "$TMP/probe.log"; r=$?
	cleanup
	return $r
}
if ! probe; then
	log "SKIP: the DPDK backend cannot start here:"
	sed 's/^/dp_dpdk:   /' "$TMP/probe.log" | tail -5
	exit 77
fi

# 2 hosts: the collectives, as dp_cluster.sh checks them
log "== 2 hosts, one veth pair"
if hosts 2 ""; then
	run_test "all-2" 10 1,2 -n 1,7,1001,65537,200003
	run_test "reversed-2-bf16" 11 2,1 -c bf16 -n 3,4099,100001
	run_test "all-2-int8" 12 1,2 -c int8 -n 5,70001
	run_test "all-2-topk" 13 1,2 -c topk:0.1 -n 9,50001
	"$TOOL" -s "$TMP/n1/dataplane.sock" probe 2 4 > "$TMP/probe.log" 2>&1
	if grep -q "peer 2 up backend=dpdk .*bw_probe_MBps=[0-9]*[1-9]" \
	    "$TMP/probe.log"; then
		log "ok links: $(cat "$TMP/probe.log")"
	else
		log "FAIL links: $(cat "$TMP/probe.log")"; FAILS=$((FAILS + 1))
	fi
	if restart_new_mac 2; then
		run_test "after-new-mac-2" 15 1,2 -n 1001,65537
	fi
	stop_dps 2
	grep -h "dp.dpdk: arp" "$TMP"/dp*.log | sed 's/^/dp_dpdk:   /'
	# host 1 resolved host 2 by ARP, twice (the second time a new MAC),
	# and answered host 2's requests
	if grep -Eq "arp: requests [1-9][0-9]*, resolved ([2-9]|[1-9][0-9]+), changed 1, static 0, received [1-9][0-9]*, replied [1-9]" \
	    "$TMP/dp1.log"; then
		log "ok arp: resolved, the new MAC learnt, requests answered"
	else
		log "FAIL arp: $(grep -h 'dp.dpdk: arp' "$TMP/dp1.log")"
		FAILS=$((FAILS + 1))
	fi
	# the probe was summed as it came, not kept
	if grep -q "summed only [1-9]" "$TMP/dp2.log"; then
		log "ok probe: its payload summed as it came, not staged"
	else
		log "FAIL probe: $(grep -h 'dp.dpdk: messages' "$TMP/dp2.log")"
		FAILS=$((FAILS + 1))
	fi
	# the f32 chunks left from the workers' arena without a copy
	grep -h "dp.dpdk: zero-copy" "$TMP"/dp*.log | sed 's/^/dp_dpdk:   /'
	if [ "$(grep -c "zero-copy frames [1-9][0-9]* (from the arena [1-9].*; arena registered$" \
	    "$TMP/dp1.log" "$TMP/dp2.log" | grep -c ':[1-9]$')" = 2 ]; then
		log "ok zero-copy: payloads sent from the arena, results exact"
	else
		log "FAIL zero-copy: no frame sent from the arena"
		FAILS=$((FAILS + 1))
	fi
else
	FAILS=$((FAILS + 1))
fi
sanitizer_check
cleanup

# the static neighbour table: no ARP at all, nothing to broadcast
log "== 2 hosts, static neighbours (dpdk_neighbor)"
STATIC=1
if hosts 2 ""; then
	run_test "static-2" 16 1,2 -n 7,65537
	stop_dps 2
	grep -h "dp.dpdk: arp" "$TMP"/dp*.log | sed 's/^/dp_dpdk:   /'
	if [ "$(grep -c "arp: requests 0, resolved 0, changed 0, static 1, .*frames to broadcast 0$" \
	    "$TMP/dp1.log" "$TMP/dp2.log" | grep -c ':1$')" = 2 ]; then
		log "ok static: no ARP request, no broadcast frame"
	else
		log "FAIL static neighbours"; FAILS=$((FAILS + 1))
	fi
else
	FAILS=$((FAILS + 1))
fi
STATIC=
sanitizer_check
cleanup

# jumbo frames: MTU 9000 on the veth pair and in dpdk_mtu (22.11's
# af_packet keeps its ethdev MTU at 1500 but carries what fits its ring
# frames, which the backend sizes for them)
log "== 2 hosts, jumbo frames (MTU 9000)"
JUMBO=9000
if hosts 2 ""; then
	run_test "jumbo-2" 10 1,2 -n 1,7,1001,65537,200003
	run_test "jumbo-2-bf16" 11 2,1 -c bf16 -n 3,4099,100001
	"$TOOL" -s "$TMP/n1/dataplane.sock" probe 2 16 > "$TMP/probe.log" 2>&1
	stop_dps 2
	if [ "$(grep -c "MTU 9000, 8938 payload bytes per frame" \
	    "$TMP/dp1.log" "$TMP/dp2.log" | grep -c ':1$')" = 2 ] &&
	    grep -q "bw_probe_MBps=[0-9]*[1-9]" "$TMP/probe.log"; then
		log "ok jumbo: 8938 payload bytes per frame, results exact," \
		    "$(grep -o 'bw_probe_MBps=[0-9.]*' "$TMP/probe.log")"
	else
		log "FAIL jumbo: $(grep -h 'dp.dpdk: port' "$TMP"/dp*.log)"
		FAILS=$((FAILS + 1))
	fi
else
	FAILS=$((FAILS + 1))
fi
JUMBO=
sanitizer_check
cleanup

# the loss test: each receiver drops, duplicates and reorders frames
F="net_drop:rate=$LOSS,net_dup:rate=$LOSS,net_reorder:rate=$LOSS"
log "== 2 hosts, $F"
if hosts 2 "$F"; then
	run_test "lossy-2" 20 1,2 -n 1,1001,65537,200003
	run_test "lossy-2-bf16" 21 2,1 -c bf16 -n 4099,100001
	# an orderly stop logs the counters: the protocol did recover
	stop_dps 2
	grep -h "dp.dpdk: frames\|dp.dpdk: zero-copy" "$TMP"/dp*.log | \
	    sed 's/^/dp_dpdk:   /'
	if grep -q "retransmitted [1-9].*duplicates [1-9]" "$TMP/dp1.log"; then
		log "ok lossy: frames were lost and duplicated, results exact"
	else
		log "FAIL lossy: no retransmissions or duplicates counted"
		FAILS=$((FAILS + 1))
	fi
	# lost zero-copy frames went again from the arena
	if grep -q "zero-copy frames [1-9][0-9]* (from the arena [1-9][0-9]*, of them retransmitted [1-9]" \
	    "$TMP/dp1.log" "$TMP/dp2.log"; then
		log "ok lossy zero-copy: frames from the arena retransmitted"
	else
		log "FAIL lossy zero-copy: no zero-copy retransmission"
		FAILS=$((FAILS + 1))
	fi
	# the copy steps' chunks were received straight into the results
	# (and the reduce steps' staged), frames summed as they came, and
	# still exact under loss, duplication and reordering
	grep -h "dp.dpdk: messages" "$TMP"/dp*.log | sed 's/^/dp_dpdk:   /'
	if [ "$(grep -c "over frames: placed [1-9][0-9]*, staged [1-9][0-9]*, .*refused 0$" \
	    "$TMP/dp1.log" "$TMP/dp2.log" | grep -c ':1$')" = 2 ]; then
		log "ok lossy placement: chunks placed and staged, results exact"
	else
		log "FAIL lossy placement: no chunk placed or staged"
		FAILS=$((FAILS + 1))
	fi
else
	FAILS=$((FAILS + 1))
fi
sanitizer_check
cleanup

log "== 3 hosts on a bridge"
if hosts 3 ""; then
	run_test "all-3" 10 1,2,3 -n 1,7,1001,65537,200003
	run_test "subset-3" 14 3,1 -n 2,999,33333
	run_test "all-3-int8" 12 1,2,3 -c int8 -n 5,70001
	stall_test 3 3
	# new groups after the failure (the old ones' sequences diverged)
	run_test "after-stall-3" 30 1,2,3 -n 1001,65537
	kill_test 3 2
else
	FAILS=$((FAILS + 1))
fi
sanitizer_check
cleanup

# two nodes of one host over shared memory (net_memif, copy mode): the
# server starts first (the client does not retry), bsize covers a frame
# (22.11 corrupts larger ones; 9216 carries jumbo frames of MTU 9000),
# and both are killed together (memif crashes when its peer closes
# while it polls)
memif() {
	ip netns add "${TAG}n1" || return 1
	NS="${TAG}n1"
	{
		echo "[dataplane]"
		echo "transport = dpdk"
		echo "arena_size = 256M"
		echo "chunk_size = 64K"
		echo "peer_timeout_ms = 1000"
		echo "op_timeout_ms = 5000"
		for i in 1 2; do echo "peer = $i@$NET.$i:7710"; done
	} > "$TMP/arceus.conf"
	for i in 1 2; do
		role=server; [ "$i" = 2 ] && role=client
		mkdir -p "$TMP/n$i"
		ip netns exec "${TAG}n1" "$DP" -c "$TMP/arceus.conf" \
		    -o node.id=$i -o "node.run_dir=$TMP/n$i" \
		    -o "dataplane.listen=$NET.$i" \
		    -o "dataplane.dpdk_port=net_memif0,role=$role,socket=$TMP/memif.sock,bsize=9216" \
		    -o "dataplane.dpdk_eal=--no-huge -m 256 --file-prefix=${TAG}m$i" \
		    > "$TMP/dp$i.log" 2>&1 &
		PIDS="$PIDS $!"
		listening() { grep -q "listening on" "$TMP/dp$1.log"; }
		until_ok 10 listening "$i" || return 1
	done
	for i in 1 2; do until_ok 15 up "$i" 1 || return 1; done
}
log "== 2 nodes of one host over net_memif"
if memif; then
	RUN_TEST_NS=${TAG}n1	# both nodes in one namespace
	run_test "memif-2" 10 1,2 -n 1,1001,65537,200003
	RUN_TEST_NS=
	"$TOOL" -s "$TMP/n1/dataplane.sock" probe 2 32 > "$TMP/probe.log" 2>&1
	if grep -q "bw_probe_MBps=[0-9]*[1-9]" "$TMP/probe.log" &&
	    grep -q "MTU 9000, 8938 payload bytes per frame" "$TMP/dp1.log"; then
		log "ok memif (MTU 9000): $(cat "$TMP/probe.log")"
	else
		log "FAIL memif probe: $(cat "$TMP/probe.log")"
		FAILS=$((FAILS + 1))
	fi
else
	log "FAIL: memif nodes did not come up"; tail -5 "$TMP"/dp*.log
	FAILS=$((FAILS + 1))
fi
sanitizer_check
cleanup

# loss on a bridge: every host drops, duplicates and reorders
log "== 3 hosts on a bridge, $F"
if hosts 3 "$F"; then
	run_test "lossy-3" 20 1,2,3 -n 7,1001,65537,200003
	run_test "lossy-3-int8" 21 3,1,2 -c int8 -n 70001
	stop_dps 3
	# the default on af_packet: 1438-byte slices copied into the
	# frame, none attached; exact under loss all the same
	if [ "$(grep -c "zero-copy frames 0 .*copied [1-9][0-9]* (payload slices under 2048 bytes)" \
	    "$TMP"/dp[123].log | grep -c ':1$')" = 3 ]; then
		log "ok lossy copied: payload slices copied, results exact"
	else
		log "FAIL lossy copied: $(grep -h 'dp.dpdk: zero-copy' "$TMP"/dp*.log)"
		FAILS=$((FAILS + 1))
	fi
else
	FAILS=$((FAILS + 1))
fi
sanitizer_check
cleanup

if [ $FAILS -gt 0 ]; then log "FAIL: $FAILS"; exit 1; fi
log "PASS"
exit 0
