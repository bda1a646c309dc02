#!/bin/sh
# ctl_confcheck.sh: `arceus-control -n` (like nginx -t) reports every error
# of a node config as file:line: reason, table errors and cross-key checks
# alike, and exits 1; a good config exits 0.
set -u
BUILD=${BUILD:-build}
CTL=$BUILD/arceus-control
[ -x "$CTL" ] || { echo "build $CTL first"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -c 32 /dev/urandom > "$tmp/key"
cat > "$tmp/bad.conf" <<CONF
[node]
key_file = $tmp/nokey
[control]
voters = 4
listen = 1.2.3.999
seed = 10.0.0:7700
[membership]
probe_timeout_ms = 500
bogus = 1
[raft]
heartbeat_ms = 400
CONF
out=$("$CTL" -n -c "$tmp/bad.conf" 2>&1)
rc=$?
fail=0
[ $rc = 1 ] || { echo "FAIL: exit $rc, want 1"; fail=1; }
for line in 2 4 5 6 8 9 11; do
	echo "$out" | grep -q "^$tmp/bad.conf:$line: " ||
	    { echo "FAIL: no error for line $line"; fail=1; }
done
echo "$out" | grep -q "^$tmp/bad.conf: 7 errors$" ||
    { echo "FAIL: not 7 errors"; fail=1; }
printf '[node]\nkey_file = %s\n[control]\nseed = 10.0.0.1:7700\n' \
    "$tmp/key" > "$tmp/good.conf"
"$CTL" -n -c "$tmp/good.conf" > "$tmp/out" 2>&1 ||
    { echo "FAIL: good config refused:"; cat "$tmp/out"; fail=1; }
[ $fail = 0 ] && echo "arceus-control -n: 7 errors at their lines; a good config passes"
[ $fail = 0 ] && exit 0
echo "$out"
exit 1
