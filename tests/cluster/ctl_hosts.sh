#!/bin/bash
# ctl_hosts.sh: four simulated hosts (network namespaces on a bridge that
# lives in a fifth namespace, so nothing touches the real network) run
# arceus-control and find each other by mDNS (DNS-SD, _arceus._udp): each
# host has its own dbus-daemon and avahi-daemon (MACHINE.md), and no seeds.
# Without avahi-daemon or dbus-daemon installed, static seeds stand in
# (said in the output).  Then:
#   - a fifth host with the wrong key is refused (and counted);
#   - one host is killed (SIGKILL), one frozen (SIGSTOP), one cut off (link
#     down): each is detected by the others, with the time printed;
#   - the frozen one comes back when thawed, the cut one when the link is.
# Needs root and iproute2 (exit 77 otherwise).  Everything it starts is
# stopped by PID and every namespace removed on exit.  Bounded: waits on
# conditions with deadlines, never on fixed sleeps.
#
# After each fault, a new epoch without the lost host must commit on the
# remaining quorum (raft), and the cut-off host, a minority of one, must not
# commit anything while cut.  Raft's port is also fed garbage and a forged
# handshake, which must be refused and counted.
set -u
BUILD=${BUILD:-build}
CTL=$BUILD/arceus-control
CLI=$BUILD/arceusctl
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }
command -v ip >/dev/null || { echo "needs iproute2"; exit 77; }
[ -x "$CTL" ] && [ -x "$CLI" ] || { echo "build $CTL first"; exit 1; }
ip netns add arc-probe-$$ 2>/dev/null || { echo "no netns"; exit 77; }
ip netns del arc-probe-$$

T=a$$			# short: interface names are at most 15 bytes
BR=${T}br
tmp=$(mktemp -d)
declare -A PID DPID APID XPID
fail=0
MDNS=1
command -v avahi-daemon >/dev/null && command -v dbus-daemon >/dev/null ||
    MDNS=0

cleanup() {
	for i in "${!PID[@]}"; do
		kill -CONT "${PID[$i]}" 2>/dev/null
		kill -KILL "${PID[$i]}" 2>/dev/null
		wait "${PID[$i]}" 2>/dev/null
	done
	for i in "${!XPID[@]}"; do
		kill -KILL "${XPID[$i]}" 2>/dev/null
		wait "${XPID[$i]}" 2>/dev/null
	done
	for i in "${!APID[@]}"; do
		kill -TERM "${APID[$i]}" 2>/dev/null
		wait "${APID[$i]}" 2>/dev/null
	done
	for i in "${!DPID[@]}"; do
		kill -TERM "${DPID[$i]}" 2>/dev/null
		wait "${DPID[$i]}" 2>/dev/null
	done
	for i in 1 2 3 4 5; do ip netns del ${T}h$i 2>/dev/null; done
	ip netns del $BR 2>/dev/null
	if [ $fail != 0 ]; then
		for f in "$tmp"/h*.log "$tmp"/*/avahi.log; do
		[ -e "$f" ] && { echo "== $f"; tail -20 "$f"; }
	done
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

. "$(dirname "$0")/ctl_lib.sh"

# state_of VIEWER ID: the state VIEWER sees for member ID
state_of() {
	"$CLI" -s "$tmp/h$1/control.sock" members --json 2>/dev/null |
	    grep -o "\"id\":$2,[^}]*" | grep -o '"state":"[a-z]*"' |
	    cut -d'"' -f4
}
sees() { [ "$(state_of "$1" "$2")" = "$3" ]; }
# all_see STATE ID VIEWER...
all_see() {
	local st=$1 id=$2
	shift 2
	for v in "$@"; do sees "$v" "$id" "$st" || return 1; done
}
alive_count() {
	"$CLI" -s "$tmp/h$1/control.sock" status --json 2>/dev/null |
	    grep -o '"alive":[0-9]*' | cut -d: -f2
}
converged() {
	for v in "$@"; do [ "$(alive_count "$v")" = "$#" ] || return 1; done
}
status_field() {	# VIEWER FIELD: a number or a list from status --json
	"$CLI" -s "$tmp/h$1/control.sock" status --json 2>/dev/null |
	    grep -o "\"$2\":[^,}]*" | head -1 | cut -d: -f2
}
epoch_members() {
	"$CLI" -s "$tmp/h$1/control.sock" status --json 2>/dev/null |
	    grep -o '"epoch_members":\[[0-9,]*\]' | cut -d'[' -f2 | tr -d ']'
}
# epoch_is MEMBERS VIEWER...: every viewer has committed exactly MEMBERS
epoch_is() {
	local want=$1
	shift
	for v in "$@"; do [ "$(epoch_members "$v")" = "$want" ] || return 1; done
}

# ---- the network: a bridge in its own namespace, one veth per host ----
ip netns add $BR
ip -n $BR link add br0 type bridge mcast_snooping 0
ip -n $BR link set br0 up
ip -n $BR link set lo up
head -c 32 /dev/urandom > "$tmp/key"
head -c 32 /dev/urandom > "$tmp/badkey"
chmod 600 "$tmp/key" "$tmp/badkey"

# mdns_up I: a private system bus and an avahi-daemon in host I
mdns_up() {
	local i=$1 d=$tmp/h$1
	cat > "$d/dbus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$d/dbus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
EOF
	cat > "$d/avahi.conf" <<EOF
[server]
host-name=host$i
use-ipv4=yes
use-ipv6=no
allow-interfaces=eth0
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
EOF
	ip netns exec ${T}h$i dbus-daemon --config-file="$d/dbus.conf" \
	    --nofork --nopidfile > "$d/dbus.log" 2>&1 &
	DPID[$i]=$!
	wait_for 5000 test -S "$d/dbus.sock" >/dev/null ||
	    die "dbus-daemon of host $i did not start"
	mkdir -p /run/avahi-daemon	# the mount point; a tmpfs per host
	ip netns exec ${T}h$i sh -c "mount -t tmpfs tmpfs /run/avahi-daemon &&
	    DBUS_SYSTEM_BUS_ADDRESS=unix:path=$d/dbus.sock exec avahi-daemon \
	    -f $d/avahi.conf --no-chroot --no-drop-root --no-rlimits" \
	    > "$d/avahi.log" 2>&1 &
	APID[$i]=$!
}

# host I KEYFILE mdns|seeds
host() {
	local i=$1 key=$2 disc=$3
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
key_file = $key
[dataplane]
listen = 10.77.0.$i
transport = tcp
arena_size = 16M
[control]
listen = 10.77.0.$i
http_listen = 10.77.0.$i
EOF
	if [ "$disc" = mdns ]; then
		echo "discovery = yes" >> "$tmp/h$i.conf"
		mdns_up "$i"
	else
		printf 'discovery = no\nseed = 10.77.0.1:7700\n' \
		    >> "$tmp/h$i.conf"
		printf 'seed = 10.77.0.2:7700\n' >> "$tmp/h$i.conf"
	fi
	"$CTL" -n -c "$tmp/h$i.conf" >/dev/null || die "config of host $i"
	ip netns exec ${T}h$i env ARCEUS_NO_PROBE=1 \
	    DBUS_SYSTEM_BUS_ADDRESS="unix:path=$tmp/h$i/dbus.sock" "$CTL" \
	    -c "$tmp/h$i.conf" > "$tmp/h$i.log" 2>&1 &
	PID[$i]=$!
	# the dataplane, when built: control hands it each epoch's peers
	if [ "$disc" = mdns ] && [ -x "$BUILD/arceus-dataplane" ]; then
		ip netns exec ${T}h$i "$BUILD/arceus-dataplane" \
		    -c "$tmp/h$i.conf" > "$tmp/h$i/dp.log" 2>&1 &
		XPID[$i]=$!
	fi
}

if [ $MDNS = 1 ]; then how=mdns; else how=seeds; fi
for i in 1 2 3 4; do host $i "$tmp/key" $how; done
t=$(wait_for 20000 converged 1 2 3 4) || die "4 hosts did not converge"
if [ $MDNS = 1 ]; then
	# gossip may introduce a host before its own browser resolves
	# anyone; each must still find its peers by mDNS
	found_some() { [ "$(status_field "$1" discovered)" -gt 0 ]; }
	for v in 1 2 3 4; do
		wait_for 10000 found_some $v >/dev/null ||
		    die "host $v found nobody by mDNS"
	done
	echo "4 hosts found each other by mDNS and agree on 4 members in $t ms"
else
	echo "avahi-daemon or dbus-daemon missing: static seeds instead of mDNS"
	echo "4 hosts agree on 4 members in $t ms"
fi
t=$(wait_for 15000 epoch_is 1,2,3,4 1 2 3 4) || die "no epoch with all 4"
echo "epoch $(status_field 1 epoch) with 1,2,3,4 committed on all in $t ms" \
    "(leader $(status_field 1 leader), $(status_field 1 voters) voters)"

# ---- what operators see over HTTP ----
if command -v curl >/dev/null; then
	m=$(ip netns exec ${T}h3 curl -sf http://10.77.0.3:7780/metrics) ||
	    die "GET /metrics"
	echo "$m" | grep -q '^arceus_members{state="alive"} 4$' ||
	    die "/metrics: not 4 alive"
	echo "$m" | grep -q '^arceus_epoch 1$' || die "/metrics: epoch"
	echo "$m" | grep -Eq '^arceus_link_rtt_seconds\{peer="[0-9]+",source="gossip"\} 0\.0[0-9]*[1-9]' ||
	    die "/metrics: no measured RTT"
	n=$(ip netns exec ${T}h3 curl -sf http://10.77.0.3:7780/api/members |
	    grep -o '"state":"alive"' | wc -l)
	[ "$n" = 4 ] || die "/api/members: $n alive"
	echo "HTTP: /metrics and /api/members agree (4 alive, epoch 1, RTTs measured)"
fi

# ---- a job: the leader plans it and the plan commits with the epoch ----
plan_on() {	# VIEWER: "N" of "job ... on N members" in the committed plan
	"$CLI" -s "$tmp/h$1/control.sock" plan --json 2>/dev/null |
	    grep -o 'on [0-9]* members' | cut -d' ' -f2
}
plan_is() {	# N VIEWER...
	local n=$1
	shift
	for v in "$@"; do [ "$(plan_on "$v")" = "$n" ] || return 1; done
}
leader=$(status_field 1 leader)
"$CLI" -s "$tmp/h$leader/control.sock" job start configs/jobs/tiny.conf \
    >/dev/null || die "job start refused by the leader"
t=$(wait_for 10000 plan_is 4 1 2 3 4) || die "no plan committed"
echo "job planned on 4 members, committed on all in $t ms:" \
    "$("$CLI" -s "$tmp/h2/control.sock" plan | sed -n 3p)"

# ---- control drives the dataplane: epoch peers out, links in ----
links_up() {	# VIEWER N: the viewer's dataplane has N links up
	[ "$("$CLI" -s "$tmp/h$1/control.sock" status --json |
	    grep -o '"peer":[0-9]*,"up":true' | wc -l)" = "$2" ]
}
if [ -x "$BUILD/arceus-dataplane" ] && [ $MDNS = 1 ]; then
	t=$(wait_for 10000 links_up 1 3) ||
	    die "host 1's dataplane did not get its 3 peers up"
	echo "dataplane: epoch peers handed over, 3 links up at host 1 in" \
	    "$t ms ($("$CLI" -s "$tmp/h1/control.sock" status | grep dataplane))"
	if command -v curl >/dev/null; then
		ip netns exec ${T}h1 curl -sf http://10.77.0.1:7780/metrics \
		    > "$tmp/metrics.txt"
		grep -q '^arceus_link_up{peer="2"} 1$' "$tmp/metrics.txt" ||
		    die "/metrics: no dataplane link to 2"
		grep -q '^arceus_link_info{peer="2",backend="tcp"} 1$' \
		    "$tmp/metrics.txt" || die "/metrics: link 2's backend"
	fi
	# the plan's collective groups, accepted by every host's dataplane
	groups_sent() {
		for v in 1 2 3 4; do
			grep -Eq "ctl.dp: epoch [0-9]+: 4 peers, [1-9][0-9]* groups sent" \
			    "$tmp/h$v.log" || return 1
		done
	}
	wait_for 5000 groups_sent >/dev/null ||
	    die "the plan's groups did not reach every dataplane"
	echo "dataplane: the plan's groups accepted on all 4 hosts" \
	    "($(grep -Eo '[0-9]+ groups sent' "$tmp/h1.log" | tail -1) at host 1)"
fi

# ---- a checkpoint commits once every member has saved it ----
ckpt_is() {	# STEP VIEWER...
	local want=$1
	shift
	for v in "$@"; do
		[ "$(status_field "$v" ckpt_committed)" = "$want" ] || return 1
	done
}
for v in 1 2 3; do
	"$CLI" -s "$tmp/h$v/control.sock" report 100 2.5 1000 100 >/dev/null ||
	    die "report to host $v"
done
# host 4 has not saved step 100: nothing may commit (bounded look)
if wait_for 1000 ckpt_is 100 1 >/dev/null; then
	die "checkpoint committed before every member saved it"
fi
"$CLI" -s "$tmp/h4/control.sock" report 100 2.5 1000 100 >/dev/null
t=$(wait_for 5000 ckpt_is 100 1 2 3 4) || die "checkpoint 100 not committed"
echo "checkpoint at step 100 committed $t ms after the last member saved it"

# ---- raft's port refuses garbage and a forged handshake ----
refused() { status_field 1 auth_refused; }
r0=$(refused)
ip netns exec ${T}h2 bash -c 'exec 3<>/dev/tcp/10.77.0.1/7701 &&
    head -c 3000 /dev/urandom >&3; exec 3>&-' 2>/dev/null
# raft's own preamble (protocol 1, id 9, address length 16, address),
# then our nonce comes back and a wrong proof goes out
ip netns exec ${T}h2 bash -c 'exec 3<>/dev/tcp/10.77.0.1/7701 &&
    printf "\1\0\0\0\0\0\0\0\11\0\0\0\0\0\0\0\20\0\0\0\0\0\0\0%s\0\0" \
    10.77.0.2:7701 >&3 && head -c 36 <&3 >/dev/null &&
    head -c 68 /dev/zero >&3; sleep 0.2; exec 3>&-' 2>/dev/null
more_refused() { [ "$(refused)" -gt "$r0" ]; }
wait_for 5000 more_refused >/dev/null || die "forged raft handshake not refused"
kill -0 "${PID[1]}" || die "host 1 died of garbage on its raft port"
echo "raft port: forged handshake refused ($(refused) refused), host 1 fine"

# ---- a host with the wrong key is refused ----
host 5 "$tmp/badkey" seeds
bad_mac() {
	"$CLI" -s "$tmp/h1/control.sock" status --json |
	    grep -o '"bad_mac":[0-9]*' | cut -d: -f2
}
bad_mac_seen() { local n; n=$(bad_mac); [ "${n:-0}" -gt 0 ]; }
wait_for 5000 bad_mac_seen >/dev/null || die "host 1 counted no bad MAC"
for v in 1 2 3 4; do
	[ -z "$(state_of $v 5)" ] || die "host $v lists the wrong-key host"
done
n=$(bad_mac)
[ "${n:-0}" -gt 0 ] || die "no bad MAC counted at host 1"
echo "wrong-key host refused ($n datagrams dropped at host 1)"
kill -KILL "${PID[5]}"; wait "${PID[5]}" 2>/dev/null; unset 'PID[5]'

# ---- SIGKILL ----
kill -KILL "${PID[4]}"; wait "${PID[4]}" 2>/dev/null; unset 'PID[4]'
t0=$(now_ms)
t=$(wait_for 5000 all_see dead 4 1 2 3) || die "killed host not detected"
echo "SIGKILL of host 4 detected by all in $t ms"
wait_for 10000 epoch_is 1,2,3 1 2 3 >/dev/null || die "no epoch without 4"
echo "  epoch $(status_field 1 epoch) with 1,2,3 committed $(( $(now_ms) - t0 )) ms after the kill"
wait_for 5000 plan_is 3 1 2 3 >/dev/null || die "no replan without 4"
[ "$(status_field 2 resume_step)" = 100 ] ||
    die "the new epoch does not resume at the committed checkpoint"
echo "  replanned on 3 members, resuming at step 100:" \
    "$("$CLI" -s "$tmp/h1/control.sock" plan | sed -n 3p)"

# ---- SIGSTOP ----
kill -STOP "${PID[3]}"
t0=$(now_ms)
t=$(wait_for 5000 all_see dead 3 1 2) || die "frozen host not detected"
echo "SIGSTOP of host 3 detected by all in $t ms"
wait_for 10000 epoch_is 1,2 1 2 >/dev/null || die "no epoch without 3"
echo "  epoch $(status_field 1 epoch) with 1,2 committed $(( $(now_ms) - t0 )) ms after the stop"
kill -CONT "${PID[3]}"
t=$(wait_for 10000 all_see alive 3 1 2) || die "thawed host did not return"
wait_for 10000 epoch_is 1,2,3 1 2 3 >/dev/null || die "no epoch with 3 again"
echo "host 3 back after SIGCONT in $t ms, epoch $(status_field 1 epoch) with 1,2,3"

# ---- link down ----
e2=$(status_field 2 epoch)
t0=$(now_ms)
ip -n $BR link set ${T}v2 down
t=$(wait_for 5000 all_see dead 2 1 3) || die "cut host not detected"
echo "link down of host 2 detected by all in $t ms"
wait_for 10000 epoch_is 1,3 1 3 >/dev/null || die "no epoch without 2"
echo "  epoch $(status_field 1 epoch) with 1,3 committed $(( $(now_ms) - t0 )) ms after the cut"
wait_for 3000 all_see dead 1 2 >/dev/null || die "host 2 does not see 1 dead"
[ "$(status_field 2 epoch)" = "$e2" ] ||
    die "the cut host (a minority) committed epoch $(status_field 2 epoch)"
paused() { [ "$(status_field 2 role)" = '"paused (no quorum)"' ]; }
wait_for 5000 paused >/dev/null ||
    die "the cut host does not say it paused: $(status_field 2 role)"
echo "  the cut host stays at epoch $e2 (role: $(status_field 2 role))"
ip -n $BR link set ${T}v2 up
t=$(wait_for 10000 all_see alive 2 1 3) || die "cut host did not rejoin"
wait_for 10000 all_see alive 1 2 >/dev/null || die "host 2 does not see host 1"
wait_for 10000 epoch_is 1,2,3 1 2 3 >/dev/null || die "no epoch with 2 again"
echo "host 2 rejoined after link up in $t ms, epoch $(status_field 1 epoch) with 1,2,3"

# ---- graceful leave ----
kill -TERM "${PID[1]}"
t=$(wait_for 3000 all_see left 1 2 3) || die "leave not seen"
wait "${PID[1]}"; rc=$?; unset 'PID[1]'
[ $rc = 0 ] || die "host 1 exited $rc on SIGTERM"
echo "host 1 left gracefully, seen in $t ms"
wait_for 10000 epoch_is 2,3 2 3 >/dev/null || die "no epoch without 1"
echo "  epoch $(status_field 2 epoch) with 2,3 committed after the leave"
# ---- the killed host restarts on its old state and rejoins ----
ip netns exec ${T}h4 env ARCEUS_NO_PROBE=1 \
    DBUS_SYSTEM_BUS_ADDRESS="unix:path=$tmp/h4/dbus.sock" "$CTL" \
    -c "$tmp/h4.conf" >> "$tmp/h4.log" 2>&1 &
PID[4]=$!
t=$(wait_for 15000 epoch_is 2,3,4 2 3 4) || die "restarted host 4 not back"
echo "host 4 restarted on its raft state: epoch $(status_field 2 epoch)" \
    "with 2,3,4 committed on all in $t ms"
echo "ctl_hosts: ok"
