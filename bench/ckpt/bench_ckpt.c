/*
 * bench_ckpt.c: checkpoint write speed of each storage backend: the same
 * bytes written and fsynced by storage_posix (buffered pwrite) and by
 * storage_uring (O_DIRECT + registered buffers, then its variants), best of
 * N runs, and the ratio to posix.  Then a whole ckpt_save + load.
 *
 *   bench/ckpt/run.sh [DIR] [MiB] [runs]
 */
#include <sys/stat.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "ckpt.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct variant {
	const char			*name;
	const struct storage_ops	*ops;
	struct storage_uring_conf	 conf;
};

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/var/tmp";
	size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 256;
	int runs = argc > 3 ? atoi(argv[3]) : 3;
	struct variant v[] = {
		{ "posix buffered", &storage_posix_ops, { 0, 0, 0, 0, 0 } },
		{ "uring O_DIRECT registered QD16 1M", &storage_uring_ops,
		    { 0, 0, 0, 0, 0 } },
		{ "  same, without fallocate", &storage_uring_ops,
		    { 0, 0, 0, 0, 1 } },
		{ "uring O_DIRECT registered QD1 1M", &storage_uring_ops,
		    { 1, 0, 0, 0, 0 } },
		{ "uring O_DIRECT registered QD32 4M", &storage_uring_ops,
		    { 32, 4 << 20, 0, 0, 0 } },
		{ "uring O_DIRECT unregistered", &storage_uring_ops,
		    { 0, 0, 0, 1, 0 } },
		{ "uring buffered", &storage_uring_ops, { 0, 0, 1, 0, 0 } },
	};
	struct storage_uring_stats st;
	char path[4096], err[512];
	struct ckpt_seg seg, segs[1];
	double best[8], t, gb;
	static char hdr[4096];
	uint64_t step;
	size_t i, len = mib << 20;
	int r, rc;

	log_init("bench_ckpt", LOG_LEVEL_WARN);
	seg.name = "params";
	seg.len = len + 123;		/* not a multiple of 4096 */
	if ((seg.data = malloc(seg.len)) == NULL)
		return 1;
	for (i = 0; i < seg.len; i++)
		((unsigned char *)seg.data)[i] = (unsigned char)(i * 2654435761u >> 13);
	gb = seg.len / 1e9;
	snprintf(path, sizeof(path), "%s/bench_ckpt.%d", dir, (int)getpid());
	printf("bench_ckpt: %zu MiB + 123 bytes to %s, best of %d "
	    "(write + fsync)\n", mib, dir, runs);
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		storage_uring_configure(&v[i].conf);
		best[i] = 1e30;
		for (r = 0; r < runs; r++) {
			unlink(path);
			t = now_s();
			rc = v[i].ops->write_file(path, &seg, 1, hdr,
			    sizeof(hdr));
			t = now_s() - t;
			if (rc < 0) {
				fprintf(stderr, "%s: %s\n", v[i].name,
				    storage_last_error());
				return 1;
			}
			if (t < best[i])
				best[i] = t;
		}
		unlink(path);
		storage_uring_last(&st);
		printf("  %-36s %6.2f GB/s  %5.2fx posix%s\n", v[i].name,
		    gb / best[i], best[0] / best[i],
		    v[i].ops == &storage_uring_ops ? (st.direct ?
		    (st.registered ? "  [O_DIRECT, registered]" :
		    "  [O_DIRECT]") : "  [buffered]") : "");
	}
	/* The whole thing: CRCs, tmp, fsync, rename, MANIFEST; then load. */
	storage_uring_configure(NULL);
	snprintf(path, sizeof(path), "%s/bench_ckpt.%d.d", dir, (int)getpid());
	segs[0] = seg;
	t = now_s();
	rc = ckpt_save(path, 1, segs, 1, 1, err, sizeof(err));
	t = now_s() - t;
	if (rc < 0) {
		fprintf(stderr, "ckpt_save: %s\n", err);
		return 1;
	}
	printf("  ckpt_save (uring, CRCs included)     %6.2f GB/s\n", gb / t);
	t = now_s();
	rc = ckpt_load_latest(path, 0, &step, segs, 1, err, sizeof(err));
	t = now_s() - t;
	if (rc < 0) {
		fprintf(stderr, "ckpt_load_latest: %s\n", err);
		return 1;
	}
	printf("  ckpt_load_latest (page cache warm)   %6.2f GB/s\n", gb / t);
	{
		char cmd[4200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
		if (system(cmd) != 0)
			return 1;
	}
	free(seg.data);
	return 0;
}
