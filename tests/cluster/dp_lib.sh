# dp_lib.sh: helpers shared by the dataplane's namespace tests
# (dp_cluster.sh, dp_dpdk.sh); sourced, not run.  They use the caller's
# TAG, TOOL, TMP, DPPID<i>, FAILS, log and until_ok.

# kill_hosts N VICTIM: every host hammers all-reduces on group 99, the
# victim's dataplane is SIGKILLed mid-run, and every other host must name
# it in a failure.  Sets ms to the time from the kill until every worker
# returned.  @return 1 if the hammer never started (FAILS counted).
kill_hosts() {
	n=$1 victim=$2
	members=$(seq -s, 1 "$n")
	hp=""
	for i in $(seq 1 "$n"); do
		timeout 30 ip netns exec "${TAG}n$i" "$TOOL" \
		    -s "$TMP/n$i/dataplane.sock" hammer -g 99 -m "$members" \
		    -t 20 -n 65536 > "$TMP/h$i.log" 2>&1 &
		hp="$hp $!"
	done
	running() { grep -q RUNNING "$TMP/h1.log"; }
	until_ok 10 running || { log "FAIL kill: hammer did not start"; \
	    FAILS=$((FAILS + 1)); return 1; }
	eval "vp=\$DPPID$victim"
	t0=$(date +%s%N)
	kill -9 "$vp"
	for p in $hp; do wait "$p"; done
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	for i in $(seq 1 "$n"); do
		[ "$i" = "$victim" ] && continue
		if ! grep -q "FAILED.*peer=$victim " "$TMP/h$i.log"; then
			log "FAIL kill: host $i did not name peer $victim:"
			cat "$TMP/h$i.log"
			FAILS=$((FAILS + 1))
		fi
	done
	return 0
}
