#!/bin/sh
# tests/rdma/run.sh: the RDMA backend's tests with real verbs.
#
# This kernel has no RDMA, so the tests run inside QEMU (TCG) on Debian's
# own kernel with Soft-RoCE (rdma_rxe), the way ../shared/MACHINE.md
# measured it:
#   1. on the host: transport = rdma fails with the errno, auto falls back;
#   2. the kernel package (apt-get download, cached in $BUILD/rdma-guest)
#      and a tiny initramfs: busybox-static, the modules rxe, 9p, overlay
#      and virtio-net need (dependencies read from the modules), an /init
#      that loads them (crc32 first: rxe needs them) and mounts the host's
#      / read-only over virtio-9p with a tmpfs overlay, then switch_roots
#      into tests/rdma/guest.sh, so the guest runs this tree's binaries;
#   3. guest A alone: rdma_test local (connect, RDMA WRITE with immediate
#      of 16 MiB, credits, teardown, a killed peer);
#   4. guests A and B joined by -netdev dgram: all-reduces between two
#      nodes, one in each guest (RDMA_TWO_GUESTS=0 skips it).
# Each guest reports through isa-debug-exit: 65 passed, 67 failed.
# Exit 77 (skip) where QEMU, busybox-static or the kernel package cannot
# be had.  Needs: qemu-system-x86, busybox-static, rdma-core,
# ibverbs-providers, iproute2.
set -u

BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TEST=$ROOT/$BUILD/tests/rdma_test
WORK=$ROOT/$BUILD/rdma-guest
TIMEOUT=${RDMA_TIMEOUT:-300}
NICE="nice -n 10"

skip() { echo "SKIP: rdma: $*"; exit 77; }
fail() { echo "FAIL: rdma: $*"; exit 1; }

[ -x "$TEST" ] || fail "$TEST not built (make check-rdma builds it)"

# 1. the host: no RDMA here (MACHINE.md); where there is, nothing to see.
if [ ! -d /sys/class/infiniband ] || [ -z "$(ls /sys/class/infiniband)" ]
then
	"$TEST" absent || fail "host: detection of absent RDMA"
fi

# 2. tools, kernel, initramfs.
QEMU=$(command -v qemu-system-x86_64) ||
	skip "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
BUSYBOX=/bin/busybox
file -L "$BUSYBOX" 2>/dev/null | grep -q "statically linked" ||
	BUSYBOX=$(command -v busybox) 
[ -n "$BUSYBOX" ] && "$BUSYBOX" cpio --help >/dev/null 2>&1 ||
	skip "no busybox (apt-get install busybox-static)"
command -v rdma >/dev/null || skip "no rdma tool (iproute2)"
[ -e /etc/libibverbs.d/rxe.driver ] ||
	skip "no rxe provider (apt-get install ibverbs-providers)"

mkdir -p "$WORK" || fail "mkdir $WORK"
cd "$WORK" || fail "cd $WORK"
if ! ls linux-image-*.deb >/dev/null 2>&1; then
	PKG=$(apt-cache depends linux-image-amd64 2>/dev/null |
	    awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	[ -n "$PKG" ] || skip "apt-cache knows no linux-image-amd64"
	apt-get download "$PKG" >download.log 2>&1 ||
		skip "apt-get download $PKG failed (see $WORK/download.log)"
fi
DEB=$(ls linux-image-*.deb | head -1)
if [ ! -f initrd.img ] || [ initrd.img -ot "$DEB" ] ||
    [ initrd.img -ot "$ROOT/tests/rdma/run.sh" ] ||
    [ initrd.img -ot "$ROOT/tests/rdma/init" ]; then
	rm -rf k ird
	mkdir k ird || fail "mkdir"
	dpkg-deb -x "$DEB" k || fail "dpkg-deb -x $DEB"
	KVER=$(ls k/lib/modules | head -1)
	cp k/boot/vmlinuz-"$KVER" vmlinuz || fail "no vmlinuz in $DEB"
	mkdir -p ird/bin ird/mod ird/proc ird/sys ird/dev ird/lower \
	    ird/rw ird/newroot
	cp "$BUSYBOX" ird/bin/busybox
	for a in sh mount mkdir insmod switch_root echo cat sleep; do
		ln -s busybox ird/bin/$a
	done
	# modules in load order, each after what it depends on
	find k/lib/modules -name '*.ko*' >mods.all
	: >mods.order
	add_mod() {
		local n f d
		n=$(echo "$1" | tr - _)
		grep -q "/$n\$" mods.order && return 0
		f=$(awk -v n="$n" '{ b = $0; sub(/.*\//, "", b);
		    sub(/\.ko.*/, "", b); gsub(/-/, "_", b);
		    if (b == n) { print; exit } }' mods.all)
		[ -n "$f" ] || { echo "no module $n in $DEB"; return 1; }
		case $f in
		*.xz) xz -dc "$f" >ird/mod/"$n".ko ;;
		*.zst) zstd -qdc "$f" >ird/mod/"$n".ko ;;
		*) cp "$f" ird/mod/"$n".ko ;;
		esac
		for d in $(tr '\0' '\n' <ird/mod/"$n".ko |
		    sed -n 's/^depends=//p' | tr , ' '); do
			add_mod "$d" || return 1
		done
		echo "/mod/$n" >>mods.order
	}
	for m in crc32_generic crc32_pclmul virtio_pci virtio_net \
	    9pnet_virtio 9p overlay rdma_rxe rdma_ucm ib_uverbs; do
		add_mod $m || skip "kernel package lacks module $m"
	done
	sed 's/$/.ko/' mods.order >ird/mod/order
	cp "$ROOT/tests/rdma/init" ird/init && chmod 755 ird/init
	(cd ird && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null |
	    gzip -1) >initrd.img.tmp || fail "cpio"
	mv initrd.img.tmp initrd.img
	rm -rf k
fi

# boot NAME NET MODE ARGS...: one guest; its console goes to NAME.log
boot() {
	name=$1 net=$2 mac=$3
	shift 3
	timeout -k 5 "$TIMEOUT" $NICE "$QEMU" -accel tcg -cpu max -m 1024 \
	    -smp 1 -nodefaults -display none -no-reboot -serial stdio \
	    -kernel vmlinuz -initrd initrd.img \
	    -append "console=ttyS0 panic=-1 loglevel=3 rdinit=/init \
arceus.guest=$ROOT/tests/rdma/guest.sh arceus.test=$TEST $*" \
	    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	    $net -device virtio-net-pci,netdev=n0,mac=$mac \
	    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
	    >"$WORK/$name.log" 2>&1 </dev/null
	echo $? >"$WORK/$name.rc"
}

verdict() {
	rc=$(cat "$WORK/$1.rc")
	grep -E "^(PASS|FAIL)" "$WORK/$1.log" | tr -d '\r'
	case $rc in
	65) echo "ok: guest $1 passed" ;;
	124) echo "guest $1: timed out after $TIMEOUT s"; tail -30 "$WORK/$1.log"
	    return 1 ;;
	*) echo "guest $1: exit $rc"; tail -30 "$WORK/$1.log"; return 1 ;;
	esac
}

# 3. one guest, every case (RDMA_ONE_GUEST=0 skips it)
t0=$(date +%s)
[ "${RDMA_ONE_GUEST:-1}" = 0 ] || {
boot a "-netdev user,id=n0,restrict=on" 52:54:00:00:00:0a \
    "arceus.mode=local \
arceus.addr=10.0.2.15/24"
verdict a || fail "guest a (log $WORK/a.log)"
echo "guest a: $(($(date +%s) - t0)) s"
}

# 4. two guests, one node each
[ "${RDMA_TWO_GUESTS:-1}" = 0 ] && exit 0
t0=$(date +%s)
sock=$WORK/net
rm -f "$sock".a "$sock".b
boot b "-netdev dgram,id=n0,local.type=unix,local.path=$sock.b,remote.type=unix,remote.path=$sock.a" 52:54:00:00:00:0b \
    "arceus.mode=node arceus.addr=10.0.3.2/24 arceus.args=2:10.0.3.2:1:10.0.3.1:3" &
pb=$!
boot c "-netdev dgram,id=n0,local.type=unix,local.path=$sock.a,remote.type=unix,remote.path=$sock.b" 52:54:00:00:00:0c \
    "arceus.mode=node arceus.addr=10.0.3.1/24 arceus.args=1:10.0.3.1:2:10.0.3.2:3"
wait $pb
rm -f "$sock".a "$sock".b
ok=0
verdict b || ok=1
verdict c || ok=1
[ $ok = 0 ] || fail "two guests (logs $WORK/b.log, $WORK/c.log)"
echo "guests b, c: $(($(date +%s) - t0)) s"
exit 0
