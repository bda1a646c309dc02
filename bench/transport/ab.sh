#!/bin/sh
# bench/transport/ab.sh ROUNDS BUILD_A BUILD_B [BUILD_C...]: an A/B (or
# A/B/C...) of builds of the dpdk backend in one run.  Two namespaces on
# one veth pair (no kernel addresses), then per round: a probe with each
# build's dataplanes, in an order rotated every round (A B C, B C A, ...:
# whichever goes first or second gains nothing), and the raw rate of
# 1500-byte frames (BUILD_A/bench/dpdk-rawrate; NORAW=1 skips it).
# Prints per probe the rate, the CPU seconds of both dataplanes (the
# sender's, of it in the kernel, the receiver's), MB per CPU second,
# both dataplanes' frame counters and the sender's stalls; the load
# average per round; at the end the median rate and MB per CPU second
# per build.  Knobs: PROBE_MIB (256), MTU (1500), AR="BYTES..." (2-rank
# all-reduces after each probe), PERF=1 (perf record -g of both
# dataplanes into the temporary directory, kept), KEEP=1 (keep the
# logs).  Needs root.  Not part of make check.
set -u
[ "$#" -ge 3 ] || { echo "usage: ab.sh ROUNDS BUILD_A BUILD_B [BUILD...]" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "ab.sh: needs root" >&2; exit 1; }
R=$1 A=$2
shift
NB=$#
for k in $(seq 1 $NB); do eval "BLD$k=\$$k"; done
TOOL=$A/arceus-dptool
TAG=hab$$
NET=10.$((100 + $$ % 50)).$(( ($$ / 50) % 250 ))
TMP=$(mktemp -d /tmp/arceus-ab.XXXXXX)
PIDS=""
PROBE_MIB=${PROBE_MIB:-256}
log() { printf '%s\n' "$*"; printf '%s\n' "$*" >> "$TMP/all.log"; }
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	PIDS=""
	for i in 1 2; do ip netns del "${TAG}n$i" 2>/dev/null; done
}
trap 'cleanup; [ -n "${PERF:-}${KEEP:-}" ] || rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
. "$(dirname "$0")/../../tests/cluster/dp_lib.sh"
link() {
	for i in 1 2; do ip netns add "${TAG}n$i" || exit 1; done
	ip link add "${TAG}a" type veth peer name "${TAG}b" || exit 1
	ip link set "${TAG}a" netns "${TAG}n1"
	ip link set "${TAG}b" netns "${TAG}n2"
	ip -n "${TAG}n1" link set "${TAG}a" name eth0
	ip -n "${TAG}n2" link set "${TAG}b" name eth0
	for i in 1 2; do
		ip netns exec "${TAG}n$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
		ip -n "${TAG}n$i" link set eth0 mtu "${MTU:-1500}"
		ip -n "${TAG}n$i" link set eth0 up
		ip -n "${TAG}n$i" link set lo up
	done
}
up() { "$TOOL" -s "$TMP/n$1/dataplane.sock" links | grep -q ' up '; }
cpu_ticks() {
	t=0
	for p in "$@"; do
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}
sys_ticks() { awk '{ print $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
one() {
	name=$1 DP=$2/arceus-dataplane
	{
		echo "[dataplane]"
		echo "transport = dpdk"
		echo "dpdk_port = net_af_packet0,iface=eth0"
		echo "dpdk_mtu = ${MTU:-1500}"
		echo "port = 7710"
		echo "arena_size = 256M"
		echo "peer_timeout_ms = 5000"
		for i in 1 2; do echo "peer = $i@$NET.$i:7710"; done
	} > "$TMP/arceus.conf"
	DPPIDS=""
	for i in 1 2; do
		mkdir -p "$TMP/n$i"
		ip netns exec "${TAG}n$i" "$DP" -c "$TMP/arceus.conf" \
		    -o node.id=$i -o "node.run_dir=$TMP/n$i" \
		    -o "dataplane.listen=$NET.$i" \
		    -o "dataplane.dpdk_eal=--no-huge -m 512 --file-prefix=${TAG}n$i" \
		    > "$TMP/$name$i.log" 2>&1 &
		PIDS="$PIDS $!"
		DPPIDS="$DPPIDS $!"
	done
	for i in 1 2; do
		until_ok 15 up "$i" || { log "$name: links not up"; cat "$TMP/$name$i.log"; return 1; }
	done
	[ -n "${PERF:-}" ] && { perf record -g -o "$TMP/perf.$name.$PERF" -p "$(echo $DPPIDS | tr ' ' ',')" >/dev/null 2>&1 & PP=$!; }
	set -- $DPPIDS
	s0=$(cpu_ticks $1) r0=$(cpu_ticks $2) k0=$(sys_ticks $1)
	"$TOOL" -s "$TMP/n1/dataplane.sock" probe 2 "$PROBE_MIB" > "$TMP/probe.log" 2>&1
	s1=$(cpu_ticks $1) r1=$(cpu_ticks $2) k1=$(sys_ticks $1)
	c0=$((s0 + r0)) c1=$((s1 + r1))
	[ -n "${PERF:-}" ] && { kill -INT $PP; wait $PP; }
	P=$(sed -n 's/.*bw_probe_MBps=\([0-9.]*\).*/\1/p' "$TMP/probe.log")
	if [ -n "${AR:-}" ]; then
		a0=$(cpu_ticks $DPPIDS)
		for i in 1 2; do
			ip netns exec "${TAG}n$i" "$TOOL" -s "$TMP/n$i/dataplane.sock" bench -g 7 -m 1,2 $AR > "$TMP/b$i.log" 2>&1 &
			eval "BP$i=\$!"
		done
		wait "$BP1"; wait "$BP2"
		a1=$(cpu_ticks $DPPIDS)
		log "$name ar: $(sed -n 's/^arceus bytes=\([0-9]*\) .*algbw_MBps=\([0-9.]*\).*/\1:\2/p' "$TMP/b1.log" | tr '\n' ' ') cpu_s=$(awk "BEGIN { printf(\"%.2f\", ($a1 - $a0) / $(getconf CLK_TCK)) }")"
	fi
	CPU=$(awk "BEGIN { printf(\"%.2f\", ($c1 - $c0) / $(getconf CLK_TCK)) }")
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	PIDS=""
	F=$(grep -h "dp.dpdk: frames" "$TMP/${name}1.log" "$TMP/${name}2.log" | sed "s/.*frames rx/rx/" | tr "\n" " ")
	W=$(sed -n "s/.*dp.dpdk: window full/window full/p" "$TMP/${name}1.log")
	log "$name probe_MBps=${P:-0} cpu_s=$CPU (sender $(awk "BEGIN { printf(\"%.2f\", ($s1 - $s0) / $(getconf CLK_TCK)) }") of it kernel $(awk "BEGIN { printf(\"%.2f\", ($k1 - $k0) / $(getconf CLK_TCK)) }"), receiver $(awk "BEGIN { printf(\"%.2f\", ($r1 - $r0) / $(getconf CLK_TCK)) }")) MB_per_cpu_s=$(awk "BEGIN { printf(\"%.0f\", $CPU > 0 ? $PROBE_MIB * 1.048576 / $CPU : 0) }") [$F] ${W:-}"
}
RAW=$A/bench/dpdk-rawrate
raw() {
	ip netns exec "${TAG}n$1" "$RAW" --lcores="0@(0-$(($(nproc) - 1)))" --no-pci --no-huge \
	    -m 256 --file-prefix="${TAG}r$1" --no-telemetry \
	    --vdev=net_af_packet0,iface=eth0,framecnt=2048 \
	    --log-level='*:error' -- "$2" "$3" 1500 > "$TMP/raw$1.log" 2>&1 &
	eval "RAWPID$1=$!"
}
link
for r in $(seq 1 "$R"); do
	log "round $r load $(cut -d' ' -f1-3 /proc/loadavg)"
	for j in $(seq 0 $((NB - 1))); do
		k=$(( (j + r - 1) % NB + 1 ))
		eval "one $(echo ABCDEFGH | cut -c$k) \"\$BLD$k\""
	done
	if [ -z "${NORAW:-}" ]; then
		raw 2 rx 4; sleep 0.5; raw 1 tx 3
		wait "$RAWPID1"; wait "$RAWPID2"
		PPS=$(sed -n 's/^rx_pps=\([0-9]*\).*/\1/p' "$TMP/raw2.log")
		US=$(cat "$TMP/raw1.log" "$TMP/raw2.log" | sed -n 's/.*frames=\([0-9]*\) cpu_s=\([0-9.]*\).*/\1 \2/p' | awk '$1 > 0 { printf(" %.2f", $2 / $1 * 1e6) }')
		US="$US (the sender's kernel $(sed -n 's/.*frames=\([0-9]*\) .*sys_s=\([0-9.]*\).*/\1 \2/p' "$TMP/raw1.log" | awk '$1 > 0 { printf("%.2f", $2 / $1 * 1e6) }'))"
		log "raw MBps=$(awk "BEGIN { printf(\"%.1f\", ${PPS:-0} * 1500 / 1e6) }") CPU us per frame (sender, receiver):$US"
	fi
done
# medians per build, from the lines above
med() { sort -n | awk '{ v[NR] = $1 } END { if (NR) printf("%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
for k in $(seq 1 $NB); do
	n=$(echo ABCDEFGH | cut -c$k)
	L=$(grep "^$n probe_MBps=" "$TMP/all.log")
	[ -n "$L" ] || continue
	log "$n ($(eval echo \$BLD$k)): median probe_MBps=$(echo "$L" | sed 's/.*probe_MBps=\([0-9.]*\).*/\1/' | med)" \
	    "MB_per_cpu_s=$(echo "$L" | sed 's/.*MB_per_cpu_s=\([0-9]*\).*/\1/' | med) over $(echo "$L" | wc -l) probes"
done
[ -n "${PERF:-}${KEEP:-}" ] && echo "logs in $TMP"
