#!/bin/sh
# tests/rdma/guest.sh: PID 1 of a test guest after switch_root (the
# host's root, read-only, under a tmpfs overlay).  Brings eth0 up with
# arceus.addr, adds the Soft-RoCE device rxe0 on it, runs rdma_test
# (arceus.mode: local ADDR, or node with arceus.args ID:ADDR:PEER:ADDR:N)
# and reports through isa-debug-exit: 65 passed, 67 failed.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^arceus\\.$1=//p"; }
report() {
	# QEMU exits with (value << 1) | 1
	printf "\\$(printf %o "$1")" |
	    dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
	echo "guest: isa-debug-exit did not stop QEMU"
	echo o >/proc/sysrq-trigger
	sleep 10
}
die() { echo "guest: $*"; report 33; }

ADDR=$(arg addr)
TEST=$(arg test)
MODE=$(arg mode)
ip link set lo up || die "lo"
ip addr add "$ADDR" dev eth0 && ip link set eth0 up || die "eth0 $ADDR"
rdma link add rxe0 type rxe netdev eth0 || die "rdma link add rxe0"
rdma link show
ulimit -l unlimited
case $MODE in
local)	"$TEST" local "${ADDR%/*}" ;;
node)	set -- $(arg args | tr : ' ')
	# the other guest may still be booting: wait for it on the wire
	i=0
	until busybox ping -c 1 -W 1 "$4" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 60 ] || { busybox ping -c 1 -W 1 "$4"; ip neigh
		    die "no answer from $4"; }
	done
	echo "guest: $4 answers after $i pings"
	"$TEST" node "$@" ;;
*)	die "arceus.mode=$MODE?" ;;
esac
rc=$?
echo "guest: rdma_test exit $rc"
[ $rc = 0 ] && report 32
report 33
