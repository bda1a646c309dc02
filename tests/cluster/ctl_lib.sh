# ctl_lib.sh: helpers shared by control's namespace tests (ctl_hosts.sh,
# ctl_links.sh, ctl_recover.sh); sourced, not run.  They use the caller's
# `fail` flag; WAIT_POLL (seconds, default 0.02) sets how often wait_for
# polls.

die() { echo "FAIL: $*"; fail=1; exit 1; }

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# wait_for LIMIT_MS COMMAND...: runs COMMAND until it succeeds, every
# WAIT_POLL seconds; prints the elapsed ms.  @return 1 after LIMIT_MS.
wait_for() {
	local limit=$1 t0 t
	shift
	t0=$(now_ms)
	while :; do
		if "$@" >/dev/null 2>&1; then
			echo $(( $(now_ms) - t0 ))
			return 0
		fi
		t=$(( $(now_ms) - t0 ))
		[ $t -ge "$limit" ] && return 1
		sleep "${WAIT_POLL:-0.02}"
	done
}
