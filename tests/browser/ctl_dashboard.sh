#!/bin/bash
# ctl_dashboard.sh: the dashboard page, loaded in headless Chromium
# (Debian's chromium), shows what control knows: both members alive, the
# epoch, the training numbers and a loss curve of every reported point;
# and the page loads nothing from outside (no src=/href= to any URL).
# Exit 77 when chromium is missing.
set -u
BUILD=${BUILD:-build}
CTL=$BUILD/arceus-control
CLI=$BUILD/arceusctl
command -v chromium >/dev/null || { echo "no chromium"; exit 77; }
[ -x "$CTL" ] && [ -x "$CLI" ] || { echo "build $CTL first"; exit 1; }
tmp=$(mktemp -d)
declare -A PID
fail=0
cleanup() {
	for i in "${!PID[@]}"; do
		kill -KILL "${PID[$i]}" 2>/dev/null
		wait "${PID[$i]}" 2>/dev/null
	done
	[ $fail = 0 ] || tail -20 "$tmp"/*.log
	rm -rf "$tmp"
}
trap cleanup EXIT
die() { echo "FAIL: $*"; fail=1; exit 1; }

base=$(( 20000 + ($$ % 20000) ))
head -c 32 /dev/urandom > "$tmp/key"
chmod 600 "$tmp/key"
for i in 1 2; do
	mkdir -p "$tmp/n$i"
	cat > "$tmp/n$i.conf" <<CONF
[node]
id = $i
run_dir = $tmp/n$i
state_dir = $tmp/n$i
key_file = $tmp/key
[control]
listen = 127.0.0.1
gossip_port = $(( base + i ))
raft_port = $(( base + 10 + i ))
http_listen = 127.0.0.1
http_port = $(( base + 20 + i ))
discovery = no
seed = 127.0.0.1:$(( base + 1 ))
[raft]
bootstrap_expect = 2
CONF
	ARCEUS_NO_PROBE=1 "$CTL" -c "$tmp/n$i.conf" > "$tmp/n$i.log" 2>&1 &
	PID[$i]=$!
done
url=http://127.0.0.1:$(( base + 21 ))/
for k in $(seq 200); do
	"$CLI" -s "$tmp/n1/control.sock" status --json 2>/dev/null |
	    grep -q '"alive":2' && break
	sleep 0.05
done
"$CLI" -s "$tmp/n1/control.sock" status --json | grep -q '"alive":2' ||
    die "the two nodes did not meet"
# a job, so that there is a plan to show (node 1 forms and leads)
for k in $(seq 200); do
	"$CLI" -s "$tmp/n1/control.sock" job start configs/jobs/tiny.conf \
	    >/dev/null 2>&1 && break
	sleep 0.05
done
for k in $(seq 200); do
	"$CLI" -s "$tmp/n1/control.sock" plan --json | grep -q '"ok":true' &&
	    break
	sleep 0.05
done
"$CLI" -s "$tmp/n1/control.sock" plan --json | grep -q '"ok":true' ||
    die "no plan committed"
for p in "10 4.5 11000" "20 3.9 12000" "30 3.2 11500" "40 3.0 12345"; do
	set -- $p
	"$CLI" -s "$tmp/n1/control.sock" report "$1" "$2" "$3" >/dev/null ||
	    die "report"
done

# nothing external: no absolute URLs in what the page loads
curl -sf "$url" > "$tmp/page.html" || die "GET /"
if grep -Eio '(src|href)=["'"'"']?(https?:)?//' "$tmp/page.html"; then
	die "the dashboard references an external resource"
fi

timeout 90 chromium --headless=new --no-sandbox --disable-gpu \
    --no-first-run --disable-extensions --disable-background-networking \
    --user-data-dir="$tmp/chrome" --virtual-time-budget=4000 \
    --dump-dom "$url" > "$tmp/dom.html" 2> "$tmp/chrome.log" ||
    die "chromium failed: $(tail -3 "$tmp/chrome.log")"
dom=$tmp/dom.html
grep -q 'data-ready="1"' "$dom" || die "page script did not finish"
grep -q 'id="error" class="dead"></p>' "$dom" || die "page shows an error: \
$(grep -o 'id="error"[^<]*' "$dom")"
for id in 1 2; do
	grep -q "data-id=\"$id\" data-state=\"alive\"" "$dom" ||
	    die "member $id not shown alive"
done
grep -q 'id="alive">2<' "$dom" || die "summary does not say 2 alive"
grep -q 'id="step">40<' "$dom" || die "step 40 not shown"
grep -q 'id="tps">12345<' "$dom" || die "throughput not shown"
grep -q 'id="plan" data-ok="1">job tiny.conf on 2 members' "$dom" ||
    die "plan not shown: $(grep -o 'id="plan"[^<]*' "$dom")"
grep -Eq 'id="epoch">[1-9]' "$dom" || die "no committed epoch shown"
grep -q 'id="dp">down<' "$dom" || die "dataplane state not shown"
for c in losspath tpspath; do
	grep -Eo "<path id=\"$c\"[^>]*>" "$dom" | grep -q 'data-points="4"' ||
	    die "$c does not have 4 points"
	grep -Eo "<path id=\"$c\"[^>]*>" "$dom" |
	    grep -Eq ' d="M[0-9.]+ [0-9.]+(L[0-9.]+ [0-9.]+){3}"' ||
	    die "$c is not drawn"
done
echo "dashboard: 2 members alive, epoch, plan, step 40, 4-point loss and throughput curves," \
    "no external resources"
