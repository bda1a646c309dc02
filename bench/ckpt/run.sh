#!/bin/sh
# bench/ckpt/run.sh [DIR] [MiB] [runs]: checkpoint write speed, io_uring
# (O_DIRECT, registered buffers) against plain buffered pwrite, and the
# ratio.  Builds bench_ckpt into ${BUILD:-build}/bench/ with the tree's
# sources; writes (and removes) one file of MiB under DIR (default
# /var/tmp, 256 MiB, best of 3).
set -eu
cd "$(dirname "$0")/../.."
out=${BUILD:-build}/bench
mkdir -p "$out"
${CC:-gcc} -std=gnu11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror \
    -Wno-format-truncation -Icommon -Icompute \
    -o "$out/bench_ckpt" bench/ckpt/bench_ckpt.c compute/ckpt.c \
    compute/storage_uring.c compute/storage_posix.c common/log.c \
    common/crc32c.c common/fault.c $(pkg-config --cflags --libs liburing)
exec nice "$out/bench_ckpt" "$@"
