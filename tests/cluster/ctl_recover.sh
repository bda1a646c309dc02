#!/bin/bash
# ctl_recover.sh: forced recovery of a two-node cluster (arceus-control
# --recover).  Two controls on the loopback (own ports and directories, no
# dataplane, no root) form a cluster and commit an epoch with both; one is
# killed for good, so the survivor has no quorum and commits nothing.  The
# survivor is stopped; --recover refuses while it runs and without
# --confirm; with it, the survivor restarts as the only voter and commits a
# new epoch alone.  Everything started is stopped by PID; bounded waits.
set -u
BUILD=${BUILD:-build}
CTL=$BUILD/arceus-control
CLI=$BUILD/arceusctl
[ -x "$CTL" ] && [ -x "$CLI" ] || { echo "build $CTL first"; exit 1; }

tmp=$(mktemp -d)
declare -A PID
fail=0
base=$(( 20000 + $$ % 9000 ))	# below the ephemeral ports

cleanup() {
	for i in "${!PID[@]}"; do
		kill -KILL "${PID[$i]}" 2>/dev/null
		wait "${PID[$i]}" 2>/dev/null
	done
	if [ $fail != 0 ]; then
		for f in "$tmp"/h*.log; do
			[ -e "$f" ] && { echo "== $f"; tail -25 "$f"; }
		done
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

. "$(dirname "$0")/ctl_lib.sh"

head -c 32 /dev/urandom > "$tmp/key"
chmod 600 "$tmp/key"
for i in 1 2; do
	o=$(( 3 - i ))
	mkdir -p "$tmp/h$i"
	cat > "$tmp/h$i.conf" <<EOF
[node]
id = $i
name = host$i
run_dir = $tmp/h$i
state_dir = $tmp/h$i
key_file = $tmp/key
[control]
listen = 127.0.0.1
http_port = 0
gossip_port = $(( base + 10 * i ))
raft_port = $(( base + 10 * i + 1 ))
discovery = no
seed = 127.0.0.1:$(( base + 10 * o ))
[raft]
bootstrap_expect = 2
EOF
	"$CTL" -n -c "$tmp/h$i.conf" >/dev/null || die "config of host $i"
done

start() {
	ARCEUS_NO_PROBE=1 "$CTL" -c "$tmp/h$1.conf" >> "$tmp/h$1.log" 2>&1 &
	PID[$1]=$!
}
status_field() {	# HOST FIELD
	"$CLI" -s "$tmp/h$1/control.sock" status --json 2>/dev/null |
	    grep -o "\"$2\":[^,}]*" | head -1 | cut -d: -f2
}
epoch_members() {
	"$CLI" -s "$tmp/h$1/control.sock" status --json 2>/dev/null |
	    grep -o '"epoch_members":\[[0-9,]*\]' | cut -d'[' -f2 | tr -d ']'
}
epoch_is() {	# MEMBERS HOST...
	local want=$1
	shift
	for v in "$@"; do [ "$(epoch_members "$v")" = "$want" ] || return 1; done
}

start 1
start 2
t=$(wait_for 20000 epoch_is 1,2 1 2) || die "no epoch with 1,2"
e0=$(status_field 1 epoch)
echo "2 nodes: epoch $e0 with 1,2 committed on both in $t ms"

"$CTL" -c "$tmp/h1.conf" --recover --confirm > "$tmp/out" 2>&1 &&
    die "--recover ran while control was running"
grep -q "control is running" "$tmp/out" || die "--recover: $(cat "$tmp/out")"
echo "--recover refused while control runs"

kill -KILL "${PID[2]}"; wait "${PID[2]}" 2>/dev/null; unset 'PID[2]'
paused() { [ "$(status_field 1 role)" = '"paused (no quorum)"' ]; }
t=$(wait_for 10000 paused) ||
    die "the survivor does not say it paused: $(status_field 1 role)"
echo "node 2 killed: node 1 paused (no quorum) in $t ms"
# a bounded look: without quorum nothing commits
if wait_for 1500 epoch_is 1 1 >/dev/null; then
	die "the survivor committed alone without recovery"
fi
[ "$(status_field 1 epoch)" = "$e0" ] || die "epoch moved without quorum"

kill -TERM "${PID[1]}"; wait "${PID[1]}"; rc=$?; unset 'PID[1]'
[ $rc = 0 ] || die "node 1 exited $rc on SIGTERM"
"$CTL" -c "$tmp/h1.conf" --recover > "$tmp/out" 2>&1 &&
    die "--recover ran without --confirm"
grep -q "Add --confirm" "$tmp/out" || die "--recover: $(cat "$tmp/out")"
echo "--recover refused without --confirm"
t0=$(now_ms)
"$CTL" -c "$tmp/h1.conf" --recover --confirm > "$tmp/out" 2>&1 ||
    die "--recover --confirm failed: $(cat "$tmp/out")"
start 1
alone() {
	epoch_is 1 1 && [ "$(status_field 1 epoch)" -gt "$e0" ] &&
	    [ "$(status_field 1 voters)" = 1 ]
}
t=$(wait_for 20000 alone) || die "node 1 did not commit an epoch alone:" \
    "epoch $(status_field 1 epoch), members $(epoch_members 1)," \
    "role $(status_field 1 role)"
echo "recovered: node 1 committed epoch $(status_field 1 epoch) alone" \
    "$(( $(now_ms) - t0 )) ms after --recover (role $(status_field 1 role))"
echo "ctl_recover: ok"
