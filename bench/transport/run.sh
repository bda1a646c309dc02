#!/bin/sh
# bench/transport/run.sh (make bench-transport): the dataplane's backends
# side by side on the same link: two simulated hosts (network namespaces)
# joined by one veth pair.
#
#   1. the kernel's TCP: iperf3 (one stream, 3 s), then the tcp backend:
#      a probe (point-to-point payload rate) and 2-rank all-reduces of
#      64 B to 4 MiB;
#   2. the dpdk backend (net_af_packet on each eth0, --no-huge): the same;
#      and the same again over net_memif between the same two namespaces
#      (its socket file crosses them; shared memory between two
#      processes of one host);
#   2b. the same three with jumbo frames: the veth pair at MTU 9000 for
#      tcp and af_packet, dpdk_mtu 9000 and memif bsize 9216;
#   3. the raw rate of the same af_packet device: 1500-byte frames sent
#      as fast as it takes them from one host, counted on the other, by
#      our dpdk-rawrate (bench/transport/rawrate.c; Debian 12 ships no
#      dpdk-testpmd, used instead where installed): the physical limit.
#
# Then every number side by side (MB/s), and the ratios; ends with
# dpdk_vs_testpmd_1500B=<dpdk probe payload bytes/s over the raw rate's
# received frames/s x 1500> (both at MTU 1500, over af_packet).  Needs root, iproute2, iperf3; not part of
# make check.  The machine is shared: compare ratios from one run.
set -u

BUILD=${BUILD:-build}
DP=$BUILD/arceus-dataplane
TOOL=$BUILD/arceus-dptool
TAG=abt$$
NET=10.$((100 + $$ % 50)).$(( ($$ / 50) % 250 ))
TMP=$(mktemp -d /tmp/arceus-bt.XXXXXX)
PIDS=""
SIZES="64 4096 65536 1048576 4194304"
# probes of 256 MiB: about a second at af_packet's rate, like the raw
# tool's 3 s window (64 MiB lasted 0.2 s: one descheduling moved it 2x)
PROBE_MIB=${PROBE_MIB:-256}

log() { printf '%s\n' "$*"; }

cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	PIDS=""
	for i in 1 2; do ip netns del "${TAG}n$i" 2>/dev/null; done
	rm -rf /var/run/dpdk/${TAG}* 2>/dev/null
}
trap 'cleanup; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM

[ "$(id -u)" = 0 ] || { log "bench-transport: needs root"; exit 1; }
[ -x "$DP" ] && [ -x "$TOOL" ] || { log "build $DP and $TOOL first"; exit 1; }

# until_ok and the other helpers of the namespace tests
. "$(dirname "$0")/../../tests/cluster/dp_lib.sh"

# link ADDRS [MTU]: two namespaces on one veth pair; ADDRS=1: kernel
# addresses
link() {
	for i in 1 2; do ip netns add "${TAG}n$i" || exit 1; done
	ip link add "${TAG}a" type veth peer name "${TAG}b" || exit 1
	ip link set "${TAG}a" netns "${TAG}n1"
	ip link set "${TAG}b" netns "${TAG}n2"
	ip -n "${TAG}n1" link set "${TAG}a" name eth0
	ip -n "${TAG}n2" link set "${TAG}b" name eth0
	for i in 1 2; do
		ip netns exec "${TAG}n$i" sysctl -qw \
		    net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
		[ "$1" = 1 ] && ip -n "${TAG}n$i" addr add "$NET.$i/24" dev eth0
		ip -n "${TAG}n$i" link set eth0 mtu "${2:-1500}"
		ip -n "${TAG}n$i" link set eth0 up
		ip -n "${TAG}n$i" link set lo up
	done
}

up() { "$TOOL" -s "$TMP/n$1/dataplane.sock" links | grep -q ' up '; }

# backend NAME [TRANSPORT]: both dataplanes, probe, all-reduces; prints
# NAME lines and keeps NAME's numbers for the table.  MEMIF=BSIZE: over
# net_memif (socket file in $TMP); MTU: dpdk_mtu.
backend() {
	name=$1 tr=${2:-$1}
	NAMES="$NAMES $name"
	{
		echo "[dataplane]"
		echo "transport = $tr"
		echo "dpdk_port = net_af_packet0,iface=eth0"
		echo "dpdk_mtu = ${MTU:-1500}"
		echo "port = 7710"
		echo "arena_size = 256M"
		echo "peer_timeout_ms = 5000"
		for i in 1 2; do echo "peer = $i@$NET.$i:7710"; done
	} > "$TMP/arceus.conf"
	rm -f "$TMP/memif.sock"
	DPPIDS=""
	for i in 1 2; do
		mkdir -p "$TMP/n$i"
		ns=${TAG}n$i port=
		if [ -n "${MEMIF:-}" ]; then
			role=server
			[ "$i" = 2 ] && role=client
			port="-o dataplane.dpdk_port=net_memif0,role=$role,socket=$TMP/memif.sock,bsize=$MEMIF"
		fi
		ip netns exec "$ns" "$DP" -c "$TMP/arceus.conf" \
		    -o node.id=$i -o "node.run_dir=$TMP/n$i" \
		    -o "dataplane.listen=$NET.$i" $port \
		    -o "dataplane.dpdk_eal=--no-huge -m 512 --file-prefix=${TAG}n$i" \
		    > "$TMP/$name$i.log" 2>&1 &
		PIDS="$PIDS $!"
		DPPIDS="$DPPIDS $!"
		# a memif client does not retry: the server first
		[ -n "${MEMIF:-}" ] && sleep 1
	done
	for i in 1 2; do
		until_ok 15 up "$i" || { log "$name: links not up"; \
		    cat "$TMP/$name$i.log"; return 1; }
	done
	c0=$(cpu_ticks $DPPIDS)
	"$TOOL" -s "$TMP/n1/dataplane.sock" probe 2 "$PROBE_MIB" \
	    > "$TMP/probe.log" 2>&1
	c1=$(cpu_ticks $DPPIDS)
	P=$(sed -n 's/.*bw_probe_MBps=\([0-9.]*\).*/\1/p' "$TMP/probe.log")
	# CPU seconds both dataplanes spent on the probe: MB per CPU second
	CPU=$(awk "BEGIN { printf(\"%.2f\", ($c1 - $c0) / $(getconf CLK_TCK)) }")
	log "$name p2p_probe_MBps=${P:-0} ($PROBE_MIB MiB; ${CPU} CPU s:" \
	    "$(awk "BEGIN { printf(\"%.0f\", $CPU > 0 ? $PROBE_MIB * 1.048576 / $CPU : 0) }") MB per CPU s)"
	E=$(awk "BEGIN { printf(\"%.0f\", $CPU > 0 ? $PROBE_MIB * 1.048576 / $CPU : 0) }")
	echo "$name MB/cpu_s $E" >> "$TMP/table"
	eval "EFF_$name=$E"
	eval "PROBE_$name=${P:-0}"
	echo "$name probe ${P:-0}" >> "$TMP/table"
	for i in 1 2; do
		ns=${TAG}n$i
		ip netns exec "$ns" "$TOOL" -s "$TMP/n$i/dataplane.sock" \
		    bench -g 7 -m 1,2 $SIZES > "$TMP/b$i.log" 2>&1 &
		eval "BP$i=$!"
	done
	wait "$BP1"; wait "$BP2"
	sed -n "s/^arceus /$name allreduce_2ranks /p" "$TMP/b1.log"
	sed -n "s/^arceus bytes=\([0-9]*\) .*algbw_MBps=\([0-9.]*\).*/$name ar\1 \2/p" \
	    "$TMP/b1.log" >> "$TMP/table"
	grep -h "failed" "$TMP"/b*.log
	# an orderly stop: the dpdk backend logs its counters
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	PIDS=""
	grep -h "dp.dpdk: frames\|dp.dpdk: zero-copy\|payload bytes per" \
	    "$TMP/${name}1.log" "$TMP/${name}2.log" | sed "s/^/$name   /"
}

# cpu_ticks PID...: user + system clock ticks of the processes so far
cpu_ticks() {
	t=0
	for p in "$@"; do
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}

# iperf3 NAME: one TCP stream for 3 s between the two namespaces
iperf() {
	ip netns exec "${TAG}n2" iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
	PIDS="$PIDS $!"
	sleep 0.3
	I=$(ip netns exec "${TAG}n1" iperf3 -c "$NET.2" -p 5299 -t 3 -J \
	    2>/dev/null | sed -n \
	    's/.*"bits_per_second":[[:space:]]*\([0-9.e+]*\).*/\1/p' | tail -1)
	I=$(awk "BEGIN { printf(\"%.1f\", ${I:-0} / 8e6) }")
	log "$1 MBps=$I"
	NAMES="$NAMES $1"
	echo "$1 probe $I" >> "$TMP/table"
}

NAMES=""
: > "$TMP/table"
log "== kernel TCP on a veth pair (MTU 1500)"
link 1
iperf iperf3
backend tcp
cleanup

log "== dpdk (net_af_packet, --no-huge) on a veth pair (MTU 1500)"
link 0
backend dpdk
cleanup

log "== dpdk over net_memif between the same two namespaces (MTU 1500)"
link 0
MEMIF=2048
backend memif dpdk
MEMIF=
cleanup

log "== jumbo frames: the veth pair at MTU 9000, memif bsize 9216"
MTU=9000
link 1 9000
iperf iperf3_9000
backend tcp_9000 tcp
cleanup
link 0 9000
backend dpdk_9000 dpdk
cleanup
link 0 9000
MEMIF=9216
backend memif_9000 dpdk
MEMIF=
MTU=
cleanup

PPS=0
RAW=$BUILD/bench/dpdk-rawrate
if [ -x "$RAW" ]; then
	# our own txonly/rxonly (Debian 12 ships no dpdk-testpmd)
	log "== raw rate: dpdk-rawrate tx -> rx, 1500-byte frames, same device"
	link 0
	raw() {
		ip netns exec "${TAG}n$1" "$RAW" --lcores="0@(0-$(($(nproc) - 1)))" --no-pci --no-huge \
		    -m 256 --file-prefix="${TAG}r$1" --no-telemetry \
		    --vdev=net_af_packet0,iface=eth0,framecnt=2048 \
		    --log-level='*:error' -- \
		    "$2" "$3" 1500 > "$TMP/raw$1.log" 2>&1 &
		eval "RAWPID$1=$!"
	}
	raw 2 rx 4
	sleep 0.5
	raw 1 tx 3
	wait "$RAWPID1"; wait "$RAWPID2"
	cat "$TMP/raw1.log" "$TMP/raw2.log" | sed 's/^/rawrate /'
	PPS=$(sed -n 's/^rx_pps=\([0-9]*\).*/\1/p' "$TMP/raw2.log")
	# the CPU cost of a frame: the sender's per frame sent plus the
	# receiver's per frame received (under load the receiver is starved
	# and most frames sent are lost: per frame, not per run)
	RAWEFF=$(cat "$TMP/raw1.log" "$TMP/raw2.log" | sed -n \
	    's/.*frames=\([0-9]*\) cpu_s=\([0-9.]*\).*/\1 \2/p' | awk '
	    $1 > 0 { us += $2 / $1 * 1e6 } END { printf("%.0f", us > 0 ? 1500 / us : 0) }')
	log "raw1500: $RAWEFF MB of 1500-byte frames per CPU second (sender + receiver)"
	echo "raw1500 MB/cpu_s $RAWEFF" >> "$TMP/table"
	echo "raw1500 probe $(awk "BEGIN { printf(\"%.1f\", ${PPS:-0} * 1500 / 1e6) }")" >> "$TMP/table"
	NAMES="$NAMES raw1500"
	cleanup
elif command -v dpdk-testpmd >/dev/null 2>&1; then
	log "== dpdk-testpmd txonly -> rxonly, 1500-byte frames, same device"
	link 0
	tp() {
		ip netns exec "${TAG}n$1" dpdk-testpmd -l 0 --no-pci --no-huge \
		    -m 512 --file-prefix="${TAG}t$1" --no-telemetry \
		    --vdev=net_af_packet0,iface=eth0 --log-level='*:error' -- \
		    --forward-mode="$2" --txpkts=1500 --stats-period=1 \
		    --total-num-mbufs=8192 > "$TMP/tp$1.log" 2>&1 &
		PIDS="$PIDS $!"
	}
	tp 2 rxonly
	sleep 1
	tp 1 txonly
	sleep 6
	cleanup
	# the best second of the receiver
	PPS=$(sed -n 's/.*Rx-pps:[[:space:]]*\([0-9]*\).*/\1/p' "$TMP/tp2.log" |
	    sort -n | tail -1)
	log "testpmd rx_pps=${PPS:-0} ($(awk "BEGIN { printf(\"%.1f\", ${PPS:-0} * 1500 / 1e6) }") MB/s of 1500-byte frames)"
else
	log "no dpdk-rawrate (a DPDK build) nor dpdk-testpmd: no raw rate"
fi
# every number side by side, MB/s (probe: point to point; arN: 2-rank
# all-reduce of N bytes, algorithm bandwidth)
log "== side by side, MB/s"
awk -v names="$NAMES" '
    { v[$1 " " $2] = $3; if (!($2 in seen)) { seen[$2] = 1; rows[++nr] = $2 } }
    END {
	n = split(names, c, " ")
	printf("%-10s", "")
	for (j = 1; j <= n; j++) printf(" %11s", c[j])
	printf("\n")
	for (i = 1; i <= nr; i++) {
		printf("%-10s", rows[i])
		for (j = 1; j <= n; j++) {
			k = c[j] " " rows[i]
			printf(" %11s", (k in v) ? v[k] : "-")
		}
		printf("\n")
	}
    }' "$TMP/table"
[ "${PPS:-0}" -gt 0 ] 2>/dev/null && log "raw af_packet 1500-byte frames:" \
    "$(awk "BEGIN { printf(\"%.1f\", $PPS * 1500 / 1e6) }") MB/s ($PPS frames/s)"
awk "BEGIN { r = (${PPS:-0} > 0) ? ${PROBE_dpdk:-0} * 1e6 / (${PPS:-0} * 1500) : 0;
    printf(\"memif_vs_tcp_probe=%.2f\\n\", (${PROBE_tcp:-0} > 0) ? ${PROBE_memif:-0} / ${PROBE_tcp:-0} : 0);
    printf(\"dpdk9000_vs_tcp9000_probe=%.2f\\n\", (${PROBE_tcp_9000:-0} > 0) ? ${PROBE_dpdk_9000:-0} / ${PROBE_tcp_9000:-0} : 0);
    printf(\"dpdk_vs_tcp_probe=%.2f\\n\", (${PROBE_tcp:-0} > 0) ? ${PROBE_dpdk:-0} / ${PROBE_tcp:-0} : 0);
    printf(\"dpdk_vs_raw_per_cpu_1500B=%.2f (payload MB per CPU second, both ends)\\n\", (${RAWEFF:-0} > 0) ? ${EFF_dpdk:-0} / ${RAWEFF:-0} : 0);
    printf(\"dpdk_vs_testpmd_1500B=%.2f\\n\", r) }"
