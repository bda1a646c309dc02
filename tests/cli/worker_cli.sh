#!/bin/bash
# worker_cli.sh: arceus-worker as an operator meets it: bad arguments and
# bad job files give a clear message and a non-zero exit, never a crash;
# a short standalone run reports progress and JSON metrics; kill -9 in the
# middle of a run loses nothing that was checkpointed and the next run
# resumes; SIGTERM stops at a step boundary with a checkpoint; arceusctl
# samples from the checkpoint and pre-tokenizes a corpus.
set -u
BUILD=${BUILD:-build}
W=$BUILD/arceus-worker
CTL=$BUILD/arceusctl
tmp=$(mktemp -d /tmp/worker_cli.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
pass() { echo "ok: $*"; }

# expect CODE PATTERN -- command...: exit status and a stderr pattern
expect() {
	local code=$1 pat=$2; shift 3
	"$@" > "$tmp/out" 2> "$tmp/err"
	local rc=$?
	if [ "$rc" -ne "$code" ]; then
		fail "$* exited $rc, expected $code"; sed 's/^/  | /' "$tmp/err" | head -5
	elif ! grep -qE -- "$pat" "$tmp/err"; then
		fail "$*: stderr lacks /$pat/"; sed 's/^/  | /' "$tmp/err" | head -5
	else
		pass "$* -> $rc, /$pat/"
	fi
}

[ -x "$W" ] || { echo "no $W: build first"; exit 1; }

# --- bad input -------------------------------------------------------
expect 2 'usage' -- "$W"
expect 2 'job FILE is required' -- "$W" --standalone
expect 2 "unexpected argument 'extra'" -- "$W" --standalone --job x extra
expect 2 'usage' -- "$W" --bogus
expect 1 'nope.conf: cannot open' -- "$W" --standalone --job "$tmp/nope.conf"
printf '[model]\nn_layer = -1\nn_head = x\n[train]\nsteps = 10\nlr = 1e99\nwhat = 1\n[data\n' > "$tmp/bad.conf"
expect 1 "bad.conf:2: model.n_layer = -1 is out of bounds" -- "$W" -n --job "$tmp/bad.conf"
n=$(grep -c "bad.conf:[0-9]*:" "$tmp/err")
[ "$n" -eq 5 ] && pass "all 5 errors reported at once" || fail "expected 5 errors, got $n"
expect 1 "unknown key 'train.nope'" -- "$W" -n --job configs/jobs/tiny.conf --set train.nope=1
expect 1 'not a multiple of model.n_head' -- "$W" -n --job configs/jobs/tiny.conf --set model.n_embd=130
expect 1 'kernels' -- "$W" -n --job configs/jobs/tiny.conf --set train.kernels=cuda
# the data-parallel mode: its keys and its dataplane
expect 2 'say --standalone, or --dataplane' -- "$W" --job configs/jobs/tiny.conf
expect 2 'exclude each other' -- "$W" --standalone --dataplane /x.sock --job configs/jobs/tiny.conf --set dist.members=1,2
expect 1 "dist.members: no members" -- "$W" -n --dataplane /x.sock --job configs/jobs/tiny.conf
expect 1 "dist.members: '1,x': node ids are numbers" -- "$W" -n --dataplane /x.sock --job configs/jobs/tiny.conf --set dist.members=1,x
expect 1 "node 2 is listed twice" -- "$W" -n --dataplane /x.sock --job configs/jobs/tiny.conf --set dist.members=2,2
expect 1 "dist.shares: '4': 1 shares for 2 members" -- "$W" -n --dataplane /x.sock --job configs/jobs/tiny.conf --set dist.members=1,2 --set dist.shares=4
expect 1 "dist.shares: '4,0': batch shares are numbers" -- "$W" -n --dataplane /x.sock --job configs/jobs/tiny.conf --set dist.members=1,2 --set dist.shares=4,0
expect 1 "dist.group = 0 is out of bounds" -- "$W" -n --job configs/jobs/tiny.conf --set dist.group=0
# the pipeline keys
T=configs/jobs/tiny.conf
expect 1 "dist.stages: '1': a pipeline has 2 stages or more" -- "$W" -n --dataplane /x.sock --job $T --set dist.stages=1
expect 1 "dist.layers: '1,2': 3 blocks in all, the model has 4" -- "$W" -n --dataplane /x.sock --job $T --set dist.stages=1,2 --set dist.layers=1,2
expect 1 "dist.layers: 5 stages for 4 blocks" -- "$W" -n --dataplane /x.sock --job $T --set dist.stages=1,2,3,4,5
expect 1 "dist.stages: '1,2/3': replica 1 has 1 stages" -- "$W" -n --dataplane /x.sock --job $T --set dist.stages=1,2/3
expect 1 "dist.shares: '4': 1 shares for 2 members" -- "$W" -n --dataplane /x.sock --job $T --set dist.stages=1,2/3,4 --set dist.shares=4
expect 1 "dist.stages = plan takes the stages, their blocks and the shares from the plan" -- "$W" -n --dataplane /x.sock --job configs/jobs/tiny-pipeline.conf --set dist.layers=2,2
if "$W" -n --dataplane /x.sock --job configs/jobs/tiny-pipeline.conf 2>&1 |
    grep -q "tiny-pipeline.conf: ok"; then
	pass "dist.stages = plan: tiny-pipeline.conf checks"
else
	fail "tiny-pipeline.conf (dist.stages = plan) did not check"
fi
expect 1 "dist.stages and dist.members" -- "$W" -n --dataplane /x.sock --job $T --set dist.stages=1,2 --set dist.members=1,2
expect 1 "dist.layers without dist.stages" -- "$W" -n --job $T --set dist.layers=2,2
expect 1 "dist.schedule = 'zb': must be 1f1b or gpipe" -- "$W" -n --job $T --set dist.schedule=zb
expect 2 "a pipeline stage trains through its dataplane" -- "$W" --standalone --job $T --set dist.stages=1,2
expect 1 "$tmp/none.sock" -- "$W" --dataplane "$tmp/none.sock" --job configs/jobs/tiny.conf --set dist.members=1,2 --set checkpoint.dir=
expect 1 "dist.compress = 'zip': none, bf16" -- "$W" -n --job configs/jobs/tiny.conf --set dist.compress=zip
expect 1 "dist.compress = 'topk:2': topk takes a fraction" -- "$W" -n --job configs/jobs/tiny.conf --set dist.compress=topk:2
head -c 3000 /dev/urandom > "$tmp/garbage.conf"
"$W" -n --job "$tmp/garbage.conf" > /dev/null 2>&1
rc=$?
[ $rc -eq 1 ] && pass "binary garbage job file refused (exit 1)" || fail "garbage job file: exit $rc"
"$W" -n --job configs/jobs/tiny.conf > "$tmp/out" 2>&1 && grep -q ': ok' "$tmp/out" \
    && pass "-n accepts tiny.conf" || fail "-n on tiny.conf"

# --- a short run ------------------------------------------------------
python3 - "$tmp/corpus.txt" <<'PY' 2>/dev/null || for i in $(seq 2000); do echo "call me ishmael $i the whale"; done > "$tmp/corpus.txt"
import random, sys
random.seed(1)
w = "whale sea ship captain white the a of and harpoon deck sail".split()
open(sys.argv[1], "w").write(" ".join(random.choice(w) for _ in range(12000)))
PY
job=(--job configs/jobs/tiny.conf --set data.path="$tmp/corpus.txt"
     --set model.n_layer=2 --set model.n_embd=64 --set model.block_size=32
     --set train.batch_size=4 --set train.threads=1 --set train.warmup_steps=5
     --set train.eval_interval=10 --set train.eval_iters=2 --set train.log_interval=5
     --set train.sample_len=40 --set checkpoint.dir="$tmp/ck" --set checkpoint.interval=10)
"$W" --standalone "${job[@]}" --set train.steps=30 --metrics-out "$tmp/m.jsonl" \
    > "$tmp/out" 2> "$tmp/err"
rc=$?
[ $rc -eq 0 ] && pass "30-step run exits 0" || { fail "run exited $rc"; cat "$tmp/err"; }
grep -qE '^ step 30/30 \| loss [0-9.]+ \| val [0-9.]+ \| [0-9.]+ ms/step \| [0-9]+ tok/s \| ETA' "$tmp/err" \
    && pass "progress lines" || { fail "progress line format"; tail -3 "$tmp/err"; }
grep -q -- '--- sample' "$tmp/out" && pass "sample printed" || fail "no sample"
python3 - "$tmp/m.jsonl" <<'PY' && pass "metrics JSON lines" || fail "metrics JSON"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 30, len(rows)
for r in rows:
    for k in ("step", "loss", "ms_per_step", "tokens_per_s"):
        assert k in r, (k, r)
assert [r["step"] for r in rows] == list(range(1, 31))
assert all(("val_loss" in r) == (r["step"] % 10 == 0) for r in rows)
assert rows[-1]["loss"] < rows[0]["loss"], "loss did not go down"
PY
[ -f "$tmp/ck/step-0000000030/MANIFEST" ] && pass "final checkpoint" || fail "no checkpoint of step 30"

# --- kill -9 mid-run, then resume --------------------------------------
"$W" --standalone "${job[@]}" --set train.steps=100000 --set train.sample_len=0 \
    --set checkpoint.interval=20 -q 2> "$tmp/kill.err" &
pid=$!
pids+=("$pid")
newest() { ls -d "$tmp"/ck/step-*/MANIFEST 2>/dev/null | sort | tail -1 |
    sed 's|.*/step-0*\([0-9]*\)/MANIFEST|\1|'; }
# wait (bounded) for a complete checkpoint newer than step 30
for i in $(seq 600); do
	[ "$(newest)" -gt 30 ] 2>/dev/null && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
last=$(newest)
if [ -n "$last" ] && [ "$last" -gt 30 ]; then
	pass "killed with a complete checkpoint at step $last"
	"$W" --standalone "${job[@]}" --set train.steps=$((last + 5)) --set train.sample_len=0 \
	    -q 2> "$tmp/resume.err"
	grep -q "resumed from .* at step $last" "$tmp/resume.err" \
	    && pass "resumed at step $last after kill -9" || { fail "no resume"; cat "$tmp/resume.err"; }
else
	fail "no checkpoint after 30 before the kill (last=$last)"; cat "$tmp/kill.err"
fi

# --- SIGTERM stops at a step boundary with a checkpoint --------------
rm -rf "$tmp/ck2"
"$W" --standalone "${job[@]}" --set checkpoint.dir="$tmp/ck2" --set checkpoint.interval=0 \
    --set train.steps=100000 --set train.sample_len=0 --metrics-out "$tmp/m2.jsonl" -q \
    2> "$tmp/term.err" &
pid=$!
pids+=("$pid")
for i in $(seq 600); do [ -s "$tmp/m2.jsonl" ] && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid"
rc=$?
[ $rc -eq 0 ] && grep -q 'stopped by signal' "$tmp/term.err" && ls "$tmp"/ck2/step-*/MANIFEST > /dev/null 2>&1 \
    && pass "SIGTERM: clean stop with a checkpoint" || { fail "SIGTERM (exit $rc)"; cat "$tmp/term.err"; }

# --- regression: sigterm_during_jit_gemm -----------------------------
# A SIGTERM handled on the compute thread while oneDNN's JIT sgemm had the
# stack pointer in a heap buffer corrupted the heap (about 1 run in 10).
# Signals now go to a thread of their own; hit the window a few times.
bad=0
for i in 1 2 3 4 5 6 7 8; do
	rm -rf "$tmp/ck3" "$tmp/m3.jsonl"
	"$W" --standalone "${job[@]}" --set checkpoint.dir="$tmp/ck3" --set checkpoint.interval=0 \
	    --set train.steps=100000 --set train.sample_len=0 --metrics-out "$tmp/m3.jsonl" -q \
	    2> "$tmp/t3.err" &
	pid=$!
	pids+=("$pid")
	for j in $(seq 600); do [ -s "$tmp/m3.jsonl" ] && break; sleep 0.05; done
	sleep "0.0$((RANDOM % 10))"
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	[ $rc -eq 0 ] || { bad=$((bad + 1)); echo "  run $i: exit $rc"; tail -2 "$tmp/t3.err"; }
done
[ $bad -eq 0 ] && pass "8 SIGTERMs at random points of a step: all clean" \
    || fail "sigterm_during_jit_gemm: $bad of 8 runs crashed"

# --- arceusctl sample and dataset build -------------------------------
if [ -x "$CTL" ]; then
	"$CTL" sample --job configs/jobs/tiny.conf --set 2>/dev/null
	"$CTL" sample "${job[@]:0:2}" --checkpoint "$tmp/ck" --prompt "the " --len 30 > "$tmp/s.out" 2> "$tmp/s.err"
	rc=$?
	[ $rc -ne 0 ] && grep -qE 'another model|different model' "$tmp/s.err" && pass "sample refuses a checkpoint of another model" \
	    || fail "sample with mismatched job: exit $rc"
	printf '[model]\nn_layer = 2\nn_head = 4\nn_embd = 64\nblock_size = 32\n[checkpoint]\ndir = %s\n' "$tmp/ck" > "$tmp/j.conf"
	"$CTL" sample --job "$tmp/j.conf" --prompt "the " --len 30 > "$tmp/s.out" 2> "$tmp/s.err"
	rc=$?
	[ $rc -eq 0 ] && [ "$(head -c 4 "$tmp/s.out")" = "the " ] && [ "$(wc -c < "$tmp/s.out")" -ge 34 ] \
	    && pass "arceusctl sample" || { fail "arceusctl sample: exit $rc"; cat "$tmp/s.err"; }
	"$CTL" dataset build --text "$tmp/corpus.txt" --out "$tmp/c.tok" > /dev/null 2>&1 \
	    && "$W" -n "${job[@]}" --set data.path="$tmp/c.tok" > /dev/null 2>&1 \
	    && pass "arceusctl dataset build" || fail "arceusctl dataset build"
	expect 2 'usage' -- "$CTL" dataset build --text
	expect 1 'cannot open' -- "$CTL" dataset build --text "$tmp/none" --out "$tmp/x"
else
	echo "skip: $CTL not built"
fi

echo "worker_cli: $fails failure(s)"
[ "$fails" -eq 0 ]
