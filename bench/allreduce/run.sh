#!/bin/sh
# bench/allreduce/run.sh: all-reduce through arceus (tcp backend over
# loopback, one arceus-dataplane per rank) and through OpenMPI's
# MPI_Allreduce (Debian's openmpi, TCP BTL over loopback: the same
# transport; shared memory would measure something else) in the same
# run, 2 and 4 ranks, 4 KiB to 256 MiB fp32, plus iperf3 over loopback
# (one way, and --bidir: both ways at once, as every link of a ring
# all-reduce) and the compressed schemes at 64 MiB.  A benchmark, not a
# test: the numbers of this shared 2-core machine vary; compare the
# ratios of one run.
#
#   BUILD=build bench/allreduce/run.sh [SIZES...]
set -u
BUILD=${BUILD:-build}
DP=$BUILD/arceus-dataplane
TOOL=$BUILD/arceus-dptool
MPIBIN=$BUILD/bench/mpi_allreduce
SIZES=${*:-4096 65536 1048576 16777216 67108864 268435456}
TMP=$(mktemp -d /tmp/arceus-bench.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	PIDS=""
}
trap 'cleanup; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM

for c in iperf3 python3 ss; do
	command -v $c >/dev/null || { echo "bench: needs $c (iperf3," \
	    "python3, iproute2)"; exit 1; }
done
# without OpenMPI (a machine that cannot install it) the MPI column is
# left out and everything else runs
MPI=1
if ! command -v mpicc >/dev/null || ! command -v mpirun >/dev/null; then
	MPI=0
	echo "bench: no mpicc/mpirun (openmpi-bin, libopenmpi-dev): the MPI" \
	    "column is left out"
else
	mkdir -p "$BUILD/bench"
	mpicc -O2 -o "$MPIBIN" bench/allreduce/mpi_allreduce.c || exit 1
fi
echo "bench: $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"

# iperf3 over loopback: the kernel's TCP on this machine, one stream one
# way, then one stream each way at once (--bidir), which is what a ring
# all-reduce does on every link: every rank sends and receives at once,
# and on loopback both directions' copies share the same CPUs.
# iperf_mbps ARGS...: MB/s of each direction, received side, one line
iperf_mbps() {
	iperf3 -s -1 -p 5299 >/dev/null 2>&1 &
	ip=$!
	k=0
	while ! ss -ltn 2>/dev/null | grep -q ':5299 '; do
		k=$((k + 1)); [ $k -gt 100 ] && break
		sleep 0.02
	done
	iperf3 -c 127.0.0.1 -p 5299 -t 3 -J "$@" 2>/dev/null > "$TMP/iperf.json"
	wait $ip 2>/dev/null
	python3 -c 'import json, sys
e = json.load(open(sys.argv[1]))["end"]
print(" ".join("%.1f" % (e[k]["bits_per_second"] / 8e6) for k in
    ("sum_received", "sum_received_bidir_reverse") if k in e))' \
	    "$TMP/iperf.json" 2>/dev/null || echo 0
}
# iperf_both WHEN: both figures, printed; IP1, IP2 (per direction) set
iperf_both() {
	IP1=$(iperf_mbps)
	echo "iperf3 loopback ($1): $IP1 MB/s (one stream, one way)"
	set -- "$1" $(iperf_mbps --bidir) 0 0
	IP2=$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.1f", (a + b) / 2 }')
	echo "iperf3 loopback --bidir ($1): $IP2 MB/s per direction" \
	    "($2 + $3, one stream each way)"
}
# measured before and after the all-reduces (the load of a shared machine
# drifts); the ratios use the mean of the two
iperf_both before
IP1_BEFORE=$IP1
IP2_BEFORE=$IP2

# start N dataplanes on loopback
cluster() {
	n=$1
	conf=$TMP/arceus.conf
	{
		echo "[dataplane]"
		echo "transport = tcp"
		echo "listen = 127.0.0.1"
		echo "arena_size = 1G"
		echo "chunk_size = 1M"
		for i in $(seq 1 "$n"); do echo "peer = $i@127.0.0.1:$((7900 + i))"; done
	} > "$conf"
	for i in $(seq 1 "$n"); do
		mkdir -p "$TMP/n$i"
		"$DP" -c "$conf" -o node.id=$i -o "node.run_dir=$TMP/n$i" \
		    -o dataplane.port=$((7900 + i)) > "$TMP/dp$i.log" 2>&1 &
		PIDS="$PIDS $!"
	done
	for i in $(seq 1 "$n"); do
		k=0
		while [ "$("$TOOL" -s "$TMP/n$i/dataplane.sock" links 2>/dev/null \
		    | grep -c ' up ')" != $((n - 1)) ]; do
			k=$((k + 1)); [ $k -gt 200 ] && { echo "bench: links" \
			    "not up"; exit 1; }
			sleep 0.05
		done
	done
}

# arceus N ARGS...: the bench on every rank, rank 0's lines
arceus() {
	n=$1; shift
	members=$(seq -s, 1 "$n")
	wp=""
	for i in $(seq 1 "$n"); do
		"$TOOL" -s "$TMP/n$i/dataplane.sock" bench -g 20 -m "$members" \
		    "$@" > "$TMP/b$i.log" 2>&1 &
		wp="$wp $!"
	done
	for p in $wp; do wait "$p"; done
	cat "$TMP/b1.log"
}

get() { sed -n "s/.*bytes=$2 .*algbw_MBps=\([0-9.]*\).*/\1/p" "$1" | head -1; }

R64=""
BUS64=""
for n in 2 4; do
	echo "== $n ranks"
	cluster "$n"
	arceus "$n" $SIZES > "$TMP/arceus.txt"
	cleanup
	: > "$TMP/mpi.txt"
	if [ $MPI = 1 ]; then
		mpirun --allow-run-as-root --oversubscribe -np "$n" \
		    --mca btl self,tcp --mca btl_tcp_if_include lo \
		    "$MPIBIN" $SIZES > "$TMP/mpi.txt" 2>"$TMP/mpi.err" || {
			echo "bench: mpirun failed"; cat "$TMP/mpi.err"; }
	fi
	printf '%12s %14s %14s %8s %12s\n' bytes arceus_MBps mpi_MBps ratio \
	    busbw_MBps
	for s in $SIZES; do
		a=$(get "$TMP/arceus.txt" "$s"); m=$(get "$TMP/mpi.txt" "$s")
		a=${a:-0}; m=${m:-0}
		r=$(awk "BEGIN { printf(\"%.2f\", ($m > 0) ? $a / $m : 0) }")
		bus=$(awk "BEGIN { printf \"%.1f\", $a * 2 * ($n - 1) / $n }")
		printf '%12d %14.1f %14.1f %8s %12s\n' "$s" "$a" "$m" "$r" "$bus"
		if [ "$s" = 67108864 ]; then
			if [ $MPI = 1 ]; then
				R64="$R64 $r"
				echo "ratio_vs_mpi_64MiB_${n}ranks=$r"
			fi
			BUS64="$BUS64 $n:$bus"
		fi
	done
done

# compression: bytes on the wire and effective bandwidth, 2 ranks, 64 MiB
echo "== compression, 2 ranks, 64 MiB"
cluster 2
for c in none bf16 int8 topk:0.01; do
	arceus 2 -c "$c" 67108864 | sed "s/^arceus/arceus comp=$c/"
done
cleanup

iperf_both after
IPERF_MBPS=$(awk -v a="$IP1_BEFORE" -v b="$IP1" 'BEGIN { printf "%.1f", (a + b) / 2 }')
IPERF_BIDIR_MBPS=$(awk -v a="$IP2_BEFORE" -v b="$IP2" 'BEGIN { printf "%.1f", (a + b) / 2 }')
echo "iperf3 loopback, mean: $IPERF_MBPS MB/s one way," \
    "$IPERF_BIDIR_MBPS MB/s per direction with --bidir"
R1=""
R2=""
for nb in $BUS64; do
	n=${nb%%:*}
	bus=${nb#*:}
	r1=$(awk "BEGIN { printf(\"%.2f\", ($IPERF_MBPS > 0) ? $bus / $IPERF_MBPS : 0) }")
	r2=$(awk "BEGIN { printf(\"%.2f\", ($IPERF_BIDIR_MBPS > 0) ? $bus / $IPERF_BIDIR_MBPS : 0) }")
	R1="$R1 $r1"
	R2="$R2 $r2"
	echo "ratio_busbw_vs_iperf3_64MiB_${n}ranks=$r1"
	echo "ratio_busbw_vs_iperf3_bidir_64MiB_${n}ranks=$r2"
done

# the headlines: the smaller of the 2- and 4-rank ratios at 64 MiB; bus
# bandwidth against iperf3 one way, and against one direction of --bidir
least() { echo "$2" | awk -v k="$1" '{ m = $1; for (i = 2; i <= NF; i++)
    if ($i < m) m = $i; printf "%s=%s\n", k, m }'; }
least ratio_busbw_vs_iperf3_64MiB "$R1"
least ratio_busbw_vs_iperf3_bidir_64MiB "$R2"
if [ $MPI = 1 ]; then least ratio_vs_mpi_64MiB "$R64"; fi
