#!/bin/bash
# ctl_links.sh: the link matrix on four simulated hosts (network
# namespaces on a bridge in a fifth namespace; seeds, no mDNS), each with
# arceus-control and, when built, arceus-dataplane.  The dataplane traffic
# between hosts 1 and 2 goes through a tbf (htb class, u32 filter on the
# dataplane's port) at 16 Mbit/s in both directions, set before anything
# starts.  Then:
#   - every host's /api/links shows all 12 directed pairs with an RTT
#     (SWIM probes first, the dataplane's once the epoch gave it peers);
#   - /metrics has arceus_link_rtt_seconds{src,dst} for all 12;
#   - with the dataplane: every pair gets a measured bandwidth, and the
#     shaped pair (1-2, both ways) is the slowest, by a wide margin;
#   - a killed host's row and column leave every other host's matrix.
# Needs root and iproute2 (77 otherwise); without tc's htb/tbf/u32 the
# shaping part is skipped (said so).  Everything started is stopped by PID
# and every namespace removed on exit; waits on conditions, with limits.
set -u
BUILD=${BUILD:-build}
CTL=$BUILD/arceus-control
CLI=$BUILD/arceusctl
DP=$BUILD/arceus-dataplane
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }
command -v ip >/dev/null || { echo "needs iproute2"; exit 77; }
[ -x "$CTL" ] && [ -x "$CLI" ] || { echo "build $CTL first"; exit 1; }
ip netns add arc-probe-$$ 2>/dev/null || { echo "no netns"; exit 77; }
ip netns del arc-probe-$$

T=l$$
BR=${T}br
tmp=$(mktemp -d)
declare -A PID XPID
fail=0

cleanup() {
	for i in "${!PID[@]}"; do
		kill -KILL "${PID[$i]}" 2>/dev/null
		wait "${PID[$i]}" 2>/dev/null
	done
	for i in "${!XPID[@]}"; do
		kill -KILL "${XPID[$i]}" 2>/dev/null
		wait "${XPID[$i]}" 2>/dev/null
	done
	for i in 1 2 3 4; do ip netns del ${T}h$i 2>/dev/null; done
	ip netns del $BR 2>/dev/null
	if [ $fail != 0 ]; then
		for f in "$tmp"/h*.log "$tmp"/h*/dp.log; do
			[ -e "$f" ] && { echo "== $f"; tail -15 "$f"; }
		done
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

WAIT_POLL=0.05
. "$(dirname "$0")/ctl_lib.sh"

ip netns add $BR
ip -n $BR link add br0 type bridge
ip -n $BR link set br0 up
head -c 32 /dev/urandom > "$tmp/key"
chmod 600 "$tmp/key"

# shape I PEER: dataplane traffic from host I to host PEER at 16 Mbit/s
SHAPED=0
shape() {
	local n=${T}h$1 dst=10.77.0.$2
	ip netns exec $n tc qdisc add dev eth0 root handle 1: htb default 10 &&
	ip netns exec $n tc class add dev eth0 parent 1: classid 1:10 htb \
	    rate 10gbit 2>/dev/null &&
	ip netns exec $n tc class add dev eth0 parent 1: classid 1:20 htb \
	    rate 16mbit &&
	ip netns exec $n tc qdisc add dev eth0 parent 1:20 handle 20: tbf \
	    rate 16mbit burst 16kb latency 400ms &&
	ip netns exec $n tc filter add dev eth0 parent 1: protocol ip prio 1 \
	    u32 match ip dst $dst/32 match ip dport 7710 0xffff flowid 1:20 &&
	ip netns exec $n tc filter add dev eth0 parent 1: protocol ip prio 2 \
	    u32 match ip dst $dst/32 match ip sport 7710 0xffff flowid 1:20
}

host() {	# I
	local i=$1
	ip netns add ${T}h$i
	ip link add ${T}v$i type veth peer name eth0 netns ${T}h$i
	ip link set ${T}v$i netns $BR
	ip -n $BR link set ${T}v$i master br0 up
	ip -n ${T}h$i addr add 10.77.0.$i/24 dev eth0
	ip -n ${T}h$i link set eth0 up
	ip -n ${T}h$i link set lo up
	mkdir -p "$tmp/h$i"
	cat > "$tmp/h$i.conf" <<EOF
[node]
id = $i
name = host$i
run_dir = $tmp/h$i
state_dir = $tmp/h$i
key_file = $tmp/key
[dataplane]
listen = 10.77.0.$i
transport = tcp
arena_size = 16M
[control]
listen = 10.77.0.$i
http_listen = 10.77.0.$i
discovery = no
seed = 10.77.0.1:7700
seed = 10.77.0.2:7700
EOF
}

start() {	# I
	local i=$1
	ip netns exec ${T}h$i env ARCEUS_NO_PROBE=1 "$CTL" \
	    -c "$tmp/h$i.conf" > "$tmp/h$i.log" 2>&1 &
	PID[$i]=$!
	if [ -x "$DP" ]; then
		ip netns exec ${T}h$i "$DP" -c "$tmp/h$i.conf" \
		    > "$tmp/h$i/dp.log" 2>&1 &
		XPID[$i]=$!
	fi
}

for i in 1 2 3 4; do host $i; done
if shape 1 2 2>/dev/null && shape 2 1 2>/dev/null; then
	SHAPED=1
else
	echo "tc htb/tbf/u32 missing: the shaped link is not checked"
fi
for i in 1 2 3 4; do start $i; done

links() { "$CLI" -s "$tmp/h$1/control.sock" links --json 2>/dev/null; }
# pairs VIEWER [SOURCE]: directed pairs with an RTT (of that source)
pairs() {
	links "$1" | grep -o '{"src":[0-9]*,"dst":[0-9]*,"rtt_s":[0-9.]*[1-9][0-9]*,[^}]*}' |
	    grep "${2:-}" | grep -o '"src":[0-9]*,"dst":[0-9]*' | sort -u |
	    wc -l
}
all_pairs() {	# WANT [SOURCE]
	for v in 1 2 3 4; do
		[ "$(pairs $v "${2:-}")" -ge "$1" ] || return 1
	done
}
t=$(wait_for 20000 all_pairs 12) ||
    die "not all 12 pairs with an RTT: $(for v in 1 2 3 4; do printf '%s ' "$(pairs $v)"; done)"
echo "every host's /api/links shows all 12 directed pairs with an RTT in $t ms"

if command -v curl >/dev/null; then
	ip netns exec ${T}h3 curl -sf http://10.77.0.3:7780/api/links |
	    grep -q '"pairs":\[{' || die "GET /api/links"
	n=$(ip netns exec ${T}h3 curl -sf http://10.77.0.3:7780/metrics |
	    grep -Ec '^arceus_link_rtt_seconds\{src="[1-4]",dst="[1-4]"\} 0\.[0-9]*[1-9]')
	[ "$n" = 12 ] || die "/metrics: $n of 12 arceus_link_rtt_seconds{src,dst}"
	echo "HTTP: /api/links and 12 arceus_link_rtt_seconds{src,dst} in /metrics"
fi
"$CLI" -s "$tmp/h1/control.sock" links | tail -1 | grep -q "^12 pairs" ||
    die "arceusctl links"

# bw SRC DST (at host 4): bytes/s, 0 when not measured
bw() {
	links 4 | grep -o "{\"src\":$1,\"dst\":$2,[^}]*}" |
	    grep -o '"bw":[0-9]*' | cut -d: -f2 | head -1
}
all_bw() {
	for a in 1 2 3 4; do for b in 1 2 3 4; do
		[ $a = $b ] && continue
		[ "$(bw $a $b)" -gt 0 ] 2>/dev/null || return 1
	done; done
}
if [ -x "$DP" ]; then
	t=$(wait_for 40000 all_bw) ||
	    die "not every pair has a measured bandwidth: $(links 4)"
	[ "$(pairs 4 dataplane)" -ge 12 ] ||
	    die "host 4: not every pair is the dataplane's"
	echo "every pair has the dataplane's bandwidth at host 4 in $t ms"
	if [ $SHAPED = 1 ]; then
		low=0
		for a in 1 2 3 4; do for b in 1 2 3 4; do
			[ $a = $b ] && continue
			case $a$b in 12|21) continue;; esac
			x=$(bw $a $b)
			[ $low = 0 ] || [ "$x" -lt $low ] && low=$x
		done; done
		s12=$(bw 1 2); s21=$(bw 2 1)
		echo "  shaped 1->2 $((s12 / 1000)) kB/s, 2->1 $((s21 / 1000))" \
		    "kB/s; slowest unshaped pair $((low / 1000)) kB/s"
		[ "$s12" -le 3000000 ] && [ "$s21" -le 3000000 ] ||
		    die "the 16 Mbit/s link measures faster than 3 MB/s"
		[ $(( s12 * 3 )) -lt "$low" ] && [ $(( s21 * 3 )) -lt "$low" ] ||
		    die "the shaped link is not clearly the slowest"
	fi
else
	echo "no $DP: bandwidth not checked (SWIM probe RTTs only)"
fi

# a killed host leaves every matrix
kill -KILL "${PID[3]}"; wait "${PID[3]}" 2>/dev/null; unset 'PID[3]'
no3() {
	for v in 1 2 4; do
		links $v | grep -Eq '"(src|dst)":3,' && return 1
	done
	return 0
}
t=$(wait_for 10000 no3) || die "host 3's links stay after its death"
[ "$(pairs 1)" = 6 ] || die "host 1: $(pairs 1) pairs, not 6"
echo "host 3 killed: its row and column left every matrix in $t ms"
echo "ctl_links: ok"
