#!/bin/sh
# dp_mixed.sh: nodes that run different backends agree on one per link.
#
# Three simulated hosts on a private bridge (network namespaces, made and
# removed here), each with a kernel address on its eth0.  Hosts 1 and 2
# run `transport = auto` with a DPDK port (net_af_packet on eth0, no huge
# pages), so they run dpdk and tcp; host 3 runs `transport = tcp`.  The
# links between 1 and 2 must come up over dpdk, every link to or from 3
# over tcp, and the collectives over all three and over subsets must be
# exact.  Host 3 starts last, so 1 and 2 first try it over dpdk (which
# only a timeout or its hello can refute); its hello must move them to
# tcp.  Then host 2 restarts as tcp-only: host 1 must take its link to 2
# over tcp from then on, and the collectives pass again.
#
# Needs root, iproute2 and a DPDK build (exit 77 otherwise, or when the
# EAL cannot start, e.g. under ASan).  Every process is started here,
# remembered by PID and killed by PID; everything is bounded in time.
set -u

BUILD=${BUILD:-build}
DP=$BUILD/arceus-dataplane
TOOL=$BUILD/arceus-dptool
TAG=amx$$
NET=10.$((100 + $$ % 50)).$(( ($$ / 50) % 250 ))
TMP=$(mktemp -d /tmp/arceus-mixed.XXXXXX)
PIDS=""
NS=""
FAILS=0

log() { printf 'dp_mixed: %s\n' "$*"; }

. "$(dirname "$0")/dp_lib.sh"
trap 'dp_cleanup; rm -rf /var/run/dpdk/${TAG}* "$TMP"' EXIT
trap 'exit 1' INT TERM
dp_preflight

# start_dp I TRANSPORT: host I's dataplane; dpdk on eth0 for auto
start_dp() {
	i=$1
	mkdir -p "$TMP/n$i"
	if [ "$2" = auto ]; then
		set -- -o dataplane.transport=auto \
		    -o "dataplane.dpdk_port=net_af_packet0,iface=eth0" \
		    -o "dataplane.dpdk_eal=--no-huge -m 256 --file-prefix=${TAG}n$i"
	else
		set -- -o dataplane.transport="$2"
	fi
	ip netns exec "${TAG}n$i" "$DP" -c "$TMP/arceus.conf" \
	    -o node.id="$i" -o "node.run_dir=$TMP/n$i" \
	    -o "dataplane.listen=$NET.$i" "$@" >> "$TMP/dp$i.log" 2>&1 &
	PIDS="$PIDS $!"
	eval "DPPID$i=$!"
}

# link I PEER: "up backend=X" of host I's link to PEER, or nothing
link() {
	"$TOOL" -s "$TMP/n$1/dataplane.sock" links 2>/dev/null |
	    sed -n "s/^peer $2 up backend=\([a-z]*\) .*/\1/p"
}
link_is() { [ "$(link "$1" "$2")" = "$3" ]; }

# expect I PEER BACKEND: host I's link to PEER comes up over BACKEND
expect() {
	if until_ok 20 link_is "$1" "$2" "$3"; then
		log "ok link $1->$2 over $3"
	else
		log "FAIL link $1->$2: not up over $3:"
		"$TOOL" -s "$TMP/n$1/dataplane.sock" links
		tail -n 5 "$TMP/dp$1.log"
		FAILS=$((FAILS + 1))
	fi
}

{
	echo "[dataplane]"
	echo "port = 7710"
	echo "arena_size = 128M"
	echo "chunk_size = 64K"
	echo "peer_timeout_ms = 1500"
	echo "op_timeout_ms = 8000"
	for i in 1 2 3; do echo "peer = $i@$NET.$i:7710"; done
} > "$TMP/arceus.conf"
for i in 1 2 3; do
	bridge_host "$i" "$NET.$i" || { log "FAIL: host $i"; exit 1; }
	ip netns exec "${TAG}n$i" sysctl -qw \
	    net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
done
start_dp 1 auto
start_dp 2 auto
if ! until_ok 20 link_is 1 2 dpdk; then
	if grep -q "dpdk unavailable" "$TMP/dp1.log"; then
		log "SKIP: the DPDK backend does not start here:"
		grep "dpdk" "$TMP/dp1.log" | head -3
		exit 77
	fi
fi
start_dp 3 tcp
expect 1 2 dpdk
expect 2 1 dpdk
expect 1 3 tcp
expect 2 3 tcp
expect 3 1 tcp
expect 3 2 tcp
if grep -q "connecting over tcp instead of dpdk" "$TMP/dp1.log" ||
    grep -q "connecting over tcp instead of dpdk" "$TMP/dp2.log"; then
	log "ok host 3's hello moved a dpdk attempt to tcp"
fi
st=$("$TOOL" -s "$TMP/n1/dataplane.sock" status)
case "$st" in
*dpdk+tcp*) log "ok status names both backends: $st" ;;
*) log "FAIL status: $st"; FAILS=$((FAILS + 1)) ;;
esac

run_test all-3 10 1,2,3 -n 1,1001,65537,200003
run_test all-3-bf16 11 3,2,1 -c bf16 -n 4099,100001
run_test pair-dpdk 12 1,2 -n 7,70001
run_test pair-tcp 13 3,1 -n 7,70001

# host 2 comes back running tcp alone: host 1 must move to tcp
kill -9 "$DPPID2"
wait "$DPPID2" 2>/dev/null
start_dp 2 tcp
expect 1 2 tcp
expect 2 1 tcp
run_test after-restart-3 14 1,2,3 -n 1001,65537

for i in 1 2 3; do
	if grep -q "AddressSanitizer\|runtime error" "$TMP/dp$i.log"; then
		log "FAIL: sanitizer report on host $i"
		cat "$TMP/dp$i.log"; FAILS=$((FAILS + 1))
	fi
done
if [ $FAILS -gt 0 ]; then
	for i in 1 2 3; do log "host $i log:"; tail -n 15 "$TMP/dp$i.log"; done
	log "FAIL: $FAILS"; exit 1
fi
log "PASS"
exit 0
