#!/bin/sh
# ctl_units.sh: the systemd units pass `systemd-analyze verify`.
# The units name /usr/bin/arceus-*; verify checks that ExecStart exists,
# so it runs against a temporary root where the built binaries stand in.
set -eu
command -v systemd-analyze >/dev/null || { echo "no systemd-analyze"; exit 77; }
BUILD=${BUILD:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/usr/bin" "$tmp/units"
for b in "$BUILD"/arceus-*; do
	[ -x "$b" ] && ln -s "$(realpath "$b")" "$tmp/usr/bin/$(basename "$b")"
done
for u in systemd/*.service systemd/*.target; do
	[ -e "$u" ] || continue
	sed "s|/usr/bin/|$tmp/usr/bin/|g" "$u" > "$tmp/units/$(basename "$u")"
done
out=$(cd "$tmp/units" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify \
    --man=no ./*.service ./*.target 2>&1) || { echo "$out"; exit 1; }
# verify may only warn; any output about our units is a failure too
if echo "$out" | grep -E "arceus" ; then exit 1; fi
echo "systemd units verified"
