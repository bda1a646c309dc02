/*
 * check_ckpt.c: compute/ckpt.c and both storage backends: bit-exact round
 * trips, retention, every kind of damage falling back to the previous
 * step (and saying so), other models refused, ENOSPC through the fault
 * seam at every write/fsync/rename and from a real full tmpfs (root only).
 */
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "fault.h"
#include "log.h"
#include "../../compute/ckpt.h"

static char tdir[64];		/* per test: /tmp/check_ckpt.XXXXXX */
static char cdir[128];		/* tdir/ck: the checkpoint directory */
static char errbuf[512];

/* A little model: odd sizes so nothing is a multiple of 4096. */
struct model {
	struct ckpt_seg	 segs[4];
	size_t		 lens[4];
};

static void
model_init(struct model *m, size_t params)
{
	static const char *const names[4] = { "params", "adam_m", "adam_v",
	    "trainer" };
	int i;

	m->lens[0] = params;
	m->lens[1] = params;
	m->lens[2] = params;
	m->lens[3] = 77;
	for (i = 0; i < 4; i++) {
		m->segs[i].name = names[i];
		m->segs[i].len = m->lens[i];
		m->segs[i].data = calloc(1, m->lens[i] ? m->lens[i] : 1);
		ck_assert_ptr_nonnull(m->segs[i].data);
	}
}

static void
model_fini(struct model *m)
{
	int i;

	for (i = 0; i < 4; i++)
		free(m->segs[i].data);
}

/* Pattern of step `seed` (xorshift: every byte matters). */
static void
model_fill(struct model *m, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	size_t i;
	int s;

	for (s = 0; s < 4; s++) {
		unsigned char *p = m->segs[s].data;
		size_t n = m->segs[s].len;

		for (i = 0; i < n; i += 8) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(p + i, &x, n - i < 8 ? n - i : 8);
		}
	}
}

static int
model_equals(struct model *a, struct model *b)
{
	int s;

	for (s = 0; s < 4; s++)
		if (a->segs[s].len != b->segs[s].len ||
		    memcmp(a->segs[s].data, b->segs[s].data,
		    a->segs[s].len) != 0)
			return 0;
	return 1;
}

static int
rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void
setup(void)
{
	strcpy(tdir, "/tmp/check_ckpt.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	snprintf(cdir, sizeof(cdir), "%s/ck", tdir);
	fault_disarm_all();
	storage_uring_configure(NULL);
	ckpt_set_backend("uring");
}

static void
teardown(void)
{
	char mnt[128];

	fault_disarm_all();
	snprintf(mnt, sizeof(mnt), "%s/mnt", tdir);
	umount2(mnt, MNT_DETACH);	/* the full-disk test's tmpfs */
	nftw(tdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- stderr capture, to check what the loader says ---------------- */

static int cap_saved = -1;
static char cap_path[160];

static void
cap_begin(void)
{
	int fd;

	snprintf(cap_path, sizeof(cap_path), "%s/stderr", tdir);
	fflush(stderr);
	fd = open(cap_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	cap_saved = dup(2);
	dup2(fd, 2);
	close(fd);
}

/* @return what was logged meanwhile (static buffer); also echoed. */
static const char *
cap_end(void)
{
	static char buf[8192];
	ssize_t n;
	int fd;

	fflush(stderr);
	dup2(cap_saved, 2);
	close(cap_saved);
	fd = open(cap_path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	fputs(buf, stderr);
	return buf;
}

/* ---- file surgery --------------------------------------------------- */

static void
stepfile(char *buf, size_t len, uint64_t step, const char *leaf)
{
	snprintf(buf, len, "%s/step-%010" PRIu64 "/%s", cdir, step, leaf);
}

static off_t
fsize(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 ? st.st_size : -1;
}

static void
flip_bit(const char *p, off_t off, int bit)
{
	unsigned char c;
	int fd = open(p, O_RDWR);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &c, 1, off), 1);
	c ^= 1u << bit;
	ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static void
save_ok(const char *dir, uint64_t step, struct model *m, int keep)
{
	int rc;

	model_fill(m, step);
	rc = ckpt_save(dir, step, m->segs, 4, keep, errbuf, sizeof(errbuf));
	ck_assert_msg(rc == 0, "save step %" PRIu64 ": %s", step, errbuf);
}

/* As save_ok in two calls, *st: what storage_uring did for the shard. */
static void
save_shard_ok(uint64_t step, struct model *m, int keep,
    struct storage_uring_stats *st)
{
	struct ckpt_shard_info info;
	int rc;

	model_fill(m, step);
	rc = ckpt_write_shard(cdir, step, 0, m->segs, 4, &info, errbuf,
	    sizeof(errbuf));
	ck_assert_msg(rc == 0, "write step %" PRIu64 ": %s", step, errbuf);
	storage_uring_last(st);
	rc = ckpt_commit(cdir, step, &info, 1, keep, errbuf, sizeof(errbuf));
	ck_assert_msg(rc == 0, "commit step %" PRIu64 ": %s", step, errbuf);
}

/* Loads into a fresh model; checks step and content. @return the log. */
static const char *
load_expect(struct model *shape, uint64_t want)
{
	struct model got, ref;
	const char *log;
	uint64_t step = 0;
	int rc;

	model_init(&got, shape->lens[0]);
	model_init(&ref, shape->lens[0]);
	model_fill(&ref, want);
	cap_begin();
	rc = ckpt_load_latest(cdir, 0, &step, got.segs, 4, errbuf,
	    sizeof(errbuf));
	log = cap_end();
	ck_assert_msg(rc == 0, "load: %s", errbuf);
	ck_assert_uint_eq(step, want);
	ck_assert_msg(model_equals(&got, &ref), "step %" PRIu64 " differs",
	    want);
	model_fini(&got);
	model_fini(&ref);
	return log;
}

static void
expect_in(const char *hay, const char *needle)
{
	ck_assert_msg(strstr(hay, needle) != NULL, "expected \"%s\" in: %s",
	    needle, hay);
}

/* ---- round trips ---------------------------------------------------- */

static void
roundtrip(const char *backend, size_t params)
{
	struct model m;
	struct storage_uring_stats st;
	char p[256];
	size_t want;

	ck_assert_int_eq(ckpt_set_backend(backend), 0);
	model_init(&m, params);
	save_shard_ok(7, &m, 0, &st);
	fprintf(stderr, "%s: O_DIRECT %d registered %d fixed file %d "
	    "writes %lu\n", backend, st.direct, st.registered, st.fixed_file,
	    st.writes);
	/* Exact size: header, segments each from a 4096 boundary. */
	want = 4096 + 3 * ((params + 4095) & ~(size_t)4095) + 77;
	stepfile(p, sizeof(p), 7, "shard-0.bin");
	ck_assert_int_eq(fsize(p), (off_t)want);
	load_expect(&m, 7);
	model_fini(&m);
}

START_TEST(test_roundtrip_uring)
{
	roundtrip("uring", 100003);
}
END_TEST

START_TEST(test_roundtrip_posix)
{
	roundtrip("posix", 100003);
}
END_TEST

/* Both backends write the same bytes; each reads the other's. */
START_TEST(test_backends_same_bytes)
{
	char a[256], b[256], da[160], db[160];
	struct model m;
	FILE *fa, *fb;
	int ca, cb;
	long n = 0;

	model_init(&m, 12345);
	model_fill(&m, 3);
	snprintf(da, sizeof(da), "%s/a", tdir);
	snprintf(db, sizeof(db), "%s/b", tdir);
	ckpt_set_backend("uring");
	ck_assert_int_eq(ckpt_save(da, 3, m.segs, 4, 0, errbuf,
	    sizeof(errbuf)), 0);
	ckpt_set_backend("posix");
	ck_assert_int_eq(ckpt_save(db, 3, m.segs, 4, 0, errbuf,
	    sizeof(errbuf)), 0);
	snprintf(a, sizeof(a), "%s/step-0000000003/shard-0.bin", da);
	snprintf(b, sizeof(b), "%s/step-0000000003/shard-0.bin", db);
	fa = fopen(a, "rb");
	fb = fopen(b, "rb");
	ck_assert_ptr_nonnull(fa);
	ck_assert_ptr_nonnull(fb);
	do {
		ca = fgetc(fa);
		cb = fgetc(fb);
		ck_assert_msg(ca == cb, "byte %ld differs", n);
		n++;
	} while (ca != EOF);
	fclose(fa);
	fclose(fb);
	/* posix reads what uring wrote */
	snprintf(cdir, sizeof(cdir), "%s", da);
	load_expect(&m, 3);
	model_fini(&m);
}
END_TEST

/* 40 MiB and odd sizes through io_uring, several chunkings. */
START_TEST(test_large_uring)
{
	static const struct storage_uring_conf confs[] = {
		{ 0, 0, 0, 0, 0 },		/* defaults: QD 16, 1 MiB */
		{ 4, 65536 + 4096, 0, 0, 0 },	/* many small requests */
		{ 16, 0, 1, 1, 0 },		/* buffered, unregistered */
	};
	struct storage_uring_stats st;
	struct model m;
	size_t c;

	for (c = 0; c < sizeof(confs) / sizeof(confs[0]); c++) {
		/* 40 MiB with the defaults, 4 MiB for the variants and
		 * under valgrind (make valgrind sets ARCEUS_SMALL) */
		model_init(&m, (c || getenv("ARCEUS_SMALL") ? 4 : 40) *
		    1024 * 1024 / 3 + 4099);
		storage_uring_configure(&confs[c]);
		save_shard_ok(10 + c, &m, 1, &st);
		fprintf(stderr, "conf %zu: O_DIRECT %d registered %d writes "
		    "%lu short %lu\n", c, st.direct, st.registered, st.writes,
		    st.short_writes);
		ck_assert_uint_ge(st.writes, 4);
		if (confs[c].no_direct)
			ck_assert_int_eq(st.direct, 0);
		if (confs[c].no_register)
			ck_assert_int_eq(st.registered, 0);
		load_expect(&m, 10 + c);
		model_fini(&m);
	}
}
END_TEST

START_TEST(test_retention)
{
	uint64_t steps[16];
	struct model m;
	char p[256];
	int n;

	model_init(&m, 5000);
	for (uint64_t s = 1; s <= 5; s++)
		save_ok(cdir, s * 100, &m, 2);
	n = ckpt_list(cdir, steps, 16);
	ck_assert_int_eq(n, 2);
	ck_assert_uint_eq(steps[0], 500);
	ck_assert_uint_eq(steps[1], 400);
	snprintf(p, sizeof(p), "%s/step-0000000300", cdir);
	ck_assert_int_eq(access(p, F_OK), -1);
	load_expect(&m, 500);
	/* keep 0: keep all */
	save_ok(cdir, 600, &m, 0);
	ck_assert_int_eq(ckpt_list(cdir, steps, 16), 3);
	ck_assert_int_eq(ckpt_list(cdir, steps, 1), 1);
	ck_assert_uint_eq(steps[0], 600);
	/* an incomplete older step goes with the next commit */
	model_fill(&m, 650);
	ck_assert_int_eq(ckpt_write_shard(cdir, 650, 0, m.segs, 4, NULL,
	    errbuf, sizeof(errbuf)), 0);
	save_ok(cdir, 700, &m, 0);
	snprintf(p, sizeof(p), "%s/step-0000000650", cdir);
	ck_assert_int_eq(access(p, F_OK), -1);
	model_fini(&m);
}
END_TEST

/* ---- damage: the loader falls back to step 1 and says why ----------- */

/* Saves steps 1 and 2, lets hurt() damage step 2, expects step 1. */
static void
damaged(void (*hurt)(void), const char *reason)
{
	struct model m;
	const char *log;

	model_init(&m, 30001);
	save_ok(cdir, 1, &m, 0);
	save_ok(cdir, 2, &m, 0);
	hurt();
	log = load_expect(&m, 1);
	expect_in(log, "skipping step 2");
	expect_in(log, reason);
	expect_in(log, "fell back to step 1");
	model_fini(&m);
}

static void
hurt_truncate_shard(void)
{
	char p[256];

	stepfile(p, sizeof(p), 2, "shard-0.bin");
	ck_assert_int_eq(truncate(p, fsize(p) / 2), 0);
}

static void
hurt_truncate_manifest(void)
{
	char p[256];

	stepfile(p, sizeof(p), 2, "MANIFEST");
	ck_assert_int_eq(truncate(p, fsize(p) - 3), 0);
}

static void
hurt_flip_data(void)
{
	char p[256];

	stepfile(p, sizeof(p), 2, "shard-0.bin");
	flip_bit(p, 36864 + 5000, 3);	/* inside adam_m */
}

static void
hurt_flip_header(void)
{
	char p[256];

	stepfile(p, sizeof(p), 2, "shard-0.bin");
	flip_bit(p, 64 + 40, 0);	/* params' offset in the table */
}

static void
hurt_flip_gap(void)
{
	char p[256];

	stepfile(p, sizeof(p), 2, "shard-0.bin");
	flip_bit(p, 4096 + 30001 + 7, 6);	/* zeros after params */
}

static void
hurt_flip_manifest(void)
{
	char p[256];

	stepfile(p, sizeof(p), 2, "MANIFEST");
	flip_bit(p, 36, 2);	/* the shard's crc */
}

static void
hurt_unlink_shard(void)
{
	char p[256];

	stepfile(p, sizeof(p), 2, "shard-0.bin");
	ck_assert_int_eq(unlink(p), 0);
}

static void
hurt_unlink_manifest(void)
{
	char p[256];

	/* as if the writer died between the shard and the commit */
	stepfile(p, sizeof(p), 2, "MANIFEST");
	ck_assert_int_eq(unlink(p), 0);
}

static void
hurt_swap_manifest(void)
{
	char a[256], b[256];
	struct model m;

	/* step 2's MANIFEST describing another save's shard */
	model_init(&m, 30001);
	model_fill(&m, 99);
	ck_assert_int_eq(ckpt_save(cdir, 3, m.segs, 4, 0, errbuf,
	    sizeof(errbuf)), 0);
	stepfile(a, sizeof(a), 3, "shard-0.bin");
	stepfile(b, sizeof(b), 2, "shard-0.bin");
	ck_assert_int_eq(rename(a, b), 0);
	stepfile(a, sizeof(a), 3, "MANIFEST");
	ck_assert_int_eq(unlink(a), 0);
	model_fini(&m);
}

START_TEST(test_torn_shard)
{
	damaged(hurt_truncate_shard, "torn or truncated");
}
END_TEST

START_TEST(test_truncated_manifest)
{
	damaged(hurt_truncate_manifest, "MANIFEST truncated");
}
END_TEST

START_TEST(test_flip_shard)
{
	damaged(hurt_flip_data, "segment 'adam_m' checksum mismatch");
}
END_TEST

START_TEST(test_flip_header)
{
	damaged(hurt_flip_header, "header checksum mismatch");
}
END_TEST

START_TEST(test_flip_gap)
{
	damaged(hurt_flip_gap, "checksum mismatch against MANIFEST");
}
END_TEST

START_TEST(test_flip_manifest)
{
	damaged(hurt_flip_manifest, "MANIFEST checksum mismatch");
}
END_TEST

START_TEST(test_missing_shard)
{
	damaged(hurt_unlink_shard, "missing shard");
}
END_TEST

START_TEST(test_no_manifest)
{
	damaged(hurt_unlink_manifest, "no MANIFEST");
}
END_TEST

START_TEST(test_manifest_mismatch)
{
	damaged(hurt_swap_manifest, "manifest mismatch");
}
END_TEST

/* Every single bit of a small shard and its MANIFEST is covered. */
START_TEST(test_every_bit)
{
	struct model m, got;
	char shard[256], mani[256];
	uint64_t step;
	off_t n, off;
	int bit, rc;

	model_init(&m, 300);
	save_ok(cdir, 1, &m, 0);
	save_ok(cdir, 2, &m, 0);
	stepfile(shard, sizeof(shard), 2, "shard-0.bin");
	stepfile(mani, sizeof(mani), 2, "MANIFEST");
	model_init(&got, 300);
	log_setlevel(LOG_LEVEL_ERR);	/* thousands of skips */
	for (int f = 0; f < 2; f++) {
		const char *p = f ? mani : shard;

		n = fsize(p);
		/* all of the MANIFEST; the shard's bytes at a stride */
		for (off = 0; off < n; off += f ? 1 : 61) {
			bit = (int)(off % 8);
			flip_bit(p, off, bit);
			rc = ckpt_load_latest(cdir, 0, &step, got.segs, 4,
			    errbuf, sizeof(errbuf));
			ck_assert_int_eq(rc, 0);
			ck_assert_msg(step == 1, "%s byte %jd bit %d not "
			    "detected", p, (intmax_t)off, bit);
			flip_bit(p, off, bit);
		}
	}
	log_setlevel(LOG_LEVEL_INFO);
	load_expect(&m, 2);
	model_fini(&got);
	model_fini(&m);
}
END_TEST

/* What a crash in the middle of a save leaves behind. */
START_TEST(test_crash_leftovers)
{
	char p[256];
	const char *log;
	struct model m;
	int fd;

	model_init(&m, 5000);
	save_ok(cdir, 2, &m, 0);
	/* step 1: a save that died mid-write, long ago */
	snprintf(p, sizeof(p), "%s/step-0000000001", cdir);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	stepfile(p, sizeof(p), 1, "shard-0.bin.tmp");
	ck_assert_int_ge(fd = open(p, O_WRONLY | O_CREAT, 0644), 0);
	ck_assert_int_eq(write(fd, "ARCCKPT1garbage", 15), 15);
	close(fd);
	/* step 3: shard published, MANIFEST.tmp written, not renamed */
	model_fill(&m, 3);
	ck_assert_int_eq(ckpt_write_shard(cdir, 3, 0, m.segs, 4, NULL,
	    errbuf, sizeof(errbuf)), 0);
	stepfile(p, sizeof(p), 3, "MANIFEST.tmp");
	ck_assert_int_ge(fd = open(p, O_WRONLY | O_CREAT, 0644), 0);
	ck_assert_int_eq(write(fd, "ARCMANI1", 8), 8);
	close(fd);
	log = load_expect(&m, 2);
	expect_in(log, "skipping step 3: incomplete: no MANIFEST");
	/* saving step 3 again goes over the leftovers; step 1 is pruned */
	save_ok(cdir, 3, &m, 0);
	load_expect(&m, 3);
	snprintf(p, sizeof(p), "%s/step-0000000001", cdir);
	ck_assert_int_eq(access(p, F_OK), -1);
	stepfile(p, sizeof(p), 3, "MANIFEST.tmp");
	ck_assert_int_eq(access(p, F_OK), -1);
	model_fini(&m);
}
END_TEST

/*
 * A writer killed (SIGKILL) at random points of its saves: whatever
 * loads afterwards is a step that was saved, bit-exact.
 */
START_TEST(test_kill_writer)
{
	struct model m;
	uint64_t last = 1;
	pid_t pid;
	int i, st;

	struct timespec t0, t1;
	long save_us;

	model_init(&m, 40000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	save_ok(cdir, 1, &m, 3);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* kill within ~3 saves, however slow (valgrind) the saves are */
	save_us = (t1.tv_sec - t0.tv_sec) * 1000000L +
	    (t1.tv_nsec - t0.tv_nsec) / 1000 + 1;
	srand(getpid());
	log_setlevel(LOG_LEVEL_ERR);
	for (i = 0; i < 12; i++) {
		if ((pid = fork()) == 0) {
			for (uint64_t s = 100u * (i + 1); s < 100u * (i + 2);
			    s++) {
				model_fill(&m, s);
				if (ckpt_save(cdir, s, m.segs, 4, 3, errbuf,
				    sizeof(errbuf)) < 0)
					_exit(1);
			}
			_exit(0);
		}
		ck_assert_int_gt(pid, 0);
		usleep(save_us / 4 + rand() % (3 * save_us));
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		ck_assert(!WIFEXITED(st) || WEXITSTATUS(st) == 0);
		{
			struct model got, ref;
			uint64_t step;

			model_init(&got, 40000);
			model_init(&ref, 40000);
			ck_assert_int_eq(ckpt_load_latest(cdir, 0, &step,
			    got.segs, 4, errbuf, sizeof(errbuf)), 0);
			ck_assert_uint_ge(step, last);
			model_fill(&ref, step);
			ck_assert_msg(model_equals(&got, &ref), "step %" PRIu64
			    " loaded with other bytes", step);
			last = step;
			model_fini(&got);
			model_fini(&ref);
		}
	}
	log_setlevel(LOG_LEVEL_INFO);
	/* progress is likely, not certain: it is the consistency we test */
	fprintf(stderr, "kill_writer: a save takes %ld us; newest step after "
	    "12 kills: %" PRIu64 "\n", save_us, last);
	model_fini(&m);
}
END_TEST

/* ---- other models, nothing at all ----------------------------------- */

START_TEST(test_wrong_sizes)
{
	struct model a, b;
	const char *log;
	uint64_t step;
	int rc;

	model_init(&a, 1000);
	model_init(&b, 1004);
	save_ok(cdir, 1, &a, 0);
	save_ok(cdir, 2, &b, 0);
	/* a's shape: step 2 is another model, step 1 loads */
	log = load_expect(&a, 1);
	expect_in(log, "skipping step 2: segment size mismatch: 'params' is "
	    "1004 bytes in the checkpoint, 1000 here: a different model");
	/* a shape matching neither: refused, -EINVAL, not -ENOENT */
	{
		struct model c;

		model_init(&c, 999);
		rc = ckpt_load_latest(cdir, 0, &step, c.segs, 4, errbuf,
		    sizeof(errbuf));
		ck_assert_int_eq(rc, -EINVAL);
		expect_in(errbuf, "different model");
		/* a missing segment name, too */
		c.segs[3].name = "rng";
		c.segs[3].len = 77;
		rc = ckpt_load_latest(cdir, 0, &step, c.segs, 4, errbuf,
		    sizeof(errbuf));
		ck_assert_int_eq(rc, -EINVAL);
		fprintf(stderr, "%s\n", errbuf);
		model_fini(&c);
	}
	/* fewer segments than the file */
	cap_begin();
	rc = ckpt_load_latest(cdir, 0, &step, a.segs, 3, errbuf,
	    sizeof(errbuf));
	log = cap_end();
	ck_assert_int_eq(rc, -EINVAL);
	expect_in(log, "segment 'trainer'");
	model_fini(&a);
	model_fini(&b);
}
END_TEST

START_TEST(test_noent)
{
	struct model m;
	uint64_t step, steps[4];
	int rc;

	model_init(&m, 100);
	rc = ckpt_load_latest(cdir, 0, &step, m.segs, 4, errbuf,
	    sizeof(errbuf));
	ck_assert_int_eq(rc, -ENOENT);
	ck_assert_int_eq(ckpt_list(cdir, steps, 4), -ENOENT);
	ck_assert_int_eq(mkdir(cdir, 0755), 0);
	rc = ckpt_load_latest(cdir, 0, &step, m.segs, 4, errbuf,
	    sizeof(errbuf));
	ck_assert_int_eq(rc, -ENOENT);
	ck_assert_int_eq(ckpt_list(cdir, steps, 4), 0);
	/* only an unfinished save: still nothing to resume from */
	model_fill(&m, 5);
	ck_assert_int_eq(ckpt_write_shard(cdir, 5, 0, m.segs, 4, NULL, errbuf,
	    sizeof(errbuf)), 0);
	rc = ckpt_load_latest(cdir, 0, &step, m.segs, 4, errbuf,
	    sizeof(errbuf));
	ck_assert_int_eq(rc, -ENOENT);
	/* bad arguments */
	ck_assert_int_eq(ckpt_set_backend("nope"), -EINVAL);
	m.segs[1].name = "params";
	ck_assert_int_eq(ckpt_save(cdir, 6, m.segs, 4, 0, errbuf,
	    sizeof(errbuf)), -EINVAL);
	expect_in(errbuf, "twice");
	model_fini(&m);
}
END_TEST

/* Several ranks, one MANIFEST. */
START_TEST(test_multi_shard)
{
	struct ckpt_shard_info info[3];
	struct model m, got;
	uint64_t step;
	uint32_t r;
	int rc;

	model_init(&m, 4097);
	model_init(&got, 4097);
	for (r = 0; r < 3; r++) {
		model_fill(&m, 100 + r);
		rc = ckpt_write_shard(cdir, 9, r, m.segs, 4, &info[r], errbuf,
		    sizeof(errbuf));
		ck_assert_msg(rc == 0, "%s", errbuf);
	}
	/* a size that is not on disk is not committed */
	info[1].size++;
	rc = ckpt_commit(cdir, 9, info, 3, 0, errbuf, sizeof(errbuf));
	ck_assert_int_eq(rc, -EINVAL);
	info[1].size--;
	ck_assert_int_eq(ckpt_commit(cdir, 9, info, 3, 0, errbuf,
	    sizeof(errbuf)), 0);
	for (r = 0; r < 3; r++) {
		ck_assert_int_eq(ckpt_load_latest(cdir, r, &step, got.segs, 4,
		    errbuf, sizeof(errbuf)), 0);
		model_fill(&m, 100 + r);
		ck_assert(model_equals(&m, &got));
	}
	rc = ckpt_load_latest(cdir, 3, &step, got.segs, 4, errbuf,
	    sizeof(errbuf));
	ck_assert_int_eq(rc, -EINVAL);
	expect_in(errbuf, "no shard for rank 3");
	model_fini(&m);
	model_fini(&got);
}
END_TEST

/* ---- ENOSPC ------------------------------------------------------- */

/* Nothing of step under its final name; the step dir is gone. */
static void
expect_unpublished(uint64_t step)
{
	char p[256];

	stepfile(p, sizeof(p), step, "MANIFEST");
	ck_assert_int_eq(access(p, F_OK), -1);
	stepfile(p, sizeof(p), step, "shard-0.bin");
	ck_assert_int_eq(access(p, F_OK), -1);
}

/*
 * For each seam, fail its 1st, 2nd, ... call until a save injects
 * nothing (SQLite's faultsim sweep).
 */
static void
enospc_sweep(const char *backend)
{
	static const enum fault_class cls[] = { FAULT_CKPT_OPEN,
	    FAULT_CKPT_WRITE, FAULT_CKPT_FSYNC, FAULT_CKPT_RENAME };
	static const struct storage_uring_conf small = { 4, 8192, 0, 0, 0 };
	struct model m;
	unsigned long nth;
	uint64_t good = 1, step;
	size_t c;
	int rc, ninj = 0;

	ckpt_set_backend(backend);
	storage_uring_configure(&small);	/* several writes per file */
	model_init(&m, 10000);
	save_ok(cdir, 1, &m, 0);
	for (c = 0; c < sizeof(cls) / sizeof(cls[0]); c++) {
		for (nth = 1; ; nth++) {
			step = good + 1;
			fault_arm(cls[c], nth, ENOSPC, 0);
			model_fill(&m, step);
			rc = ckpt_save(cdir, step, m.segs, 4, 0, errbuf,
			    sizeof(errbuf));
			if (fault_injected(cls[c]) == 0) {
				fault_disarm_all();
				ck_assert_msg(rc == 0, "%s", errbuf);
				ck_assert_uint_gt(nth, 1);
				load_expect(&m, step);
				good = step;
				break;
			}
			fault_disarm_all();
			ninj++;
			ck_assert_msg(rc == -ENOSPC, "%s #%lu: rc %d %s",
			    fault_name(cls[c]), nth, rc, errbuf);
			expect_in(errbuf, "No space left on device");
			expect_in(errbuf, cdir);
			fprintf(stderr, "%s %s #%lu: %s\n", backend,
			    fault_name(cls[c]), nth, errbuf);
			expect_unpublished(step);
			/* the newest complete step still loads */
			load_expect(&m, good);
		}
	}
	ck_assert_int_gt(ninj, 8);
	model_fini(&m);
}

START_TEST(test_enospc_seam_uring)
{
	enospc_sweep("uring");
}
END_TEST

START_TEST(test_enospc_seam_posix)
{
	enospc_sweep("posix");
}
END_TEST

/* A read error on the newest step: fall back, then a retry loads it. */
START_TEST(test_read_fault)
{
	struct model m;
	const char *log;

	model_init(&m, 20000);
	save_ok(cdir, 1, &m, 0);
	save_ok(cdir, 2, &m, 0);
	fault_arm(FAULT_CKPT_READ, 3, EIO, 0);
	log = load_expect(&m, 1);
	expect_in(log, "Input/output error");
	load_expect(&m, 2);
	model_fini(&m);
}
END_TEST

/* A real full disk: a 1 MiB tmpfs (root only). */
static void
full_disk(const char *backend, int no_fallocate)
{
	struct storage_uring_conf conf = { 0, 0, 0, 0, no_fallocate };
	char mnt[128], filler[192];
	static char junk[65536];
	struct model m;
	int fd, rc;

	if (geteuid() != 0) {
		fprintf(stderr, "SKIP full disk: not root\n");
		return;
	}
	snprintf(mnt, sizeof(mnt), "%s/mnt", tdir);
	ck_assert_int_eq(mkdir(mnt, 0755), 0);
	/*
	 * A private mount namespace: in fork mode the tmpfs goes away with
	 * this test's process even if an assertion skips the teardown.
	 */
	if (unshare(CLONE_NEWNS) == 0)
		mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL);
	if (mount("arceus-ckpt-test", mnt, "tmpfs", 0, "size=1m") < 0) {
		fprintf(stderr, "SKIP full disk: mount tmpfs: %s\n",
		    strerror(errno));
		return;
	}
	snprintf(cdir, sizeof(cdir), "%s/ck", mnt);
	ckpt_set_backend(backend);
	storage_uring_configure(&conf);
	model_init(&m, 50000);		/* ~150 KB a step */
	save_ok(cdir, 1, &m, 0);
	/* fill what is left */
	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	fd = open(filler, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	while (write(fd, junk, sizeof(junk)) > 0)
		;
	ck_assert_int_eq(errno, ENOSPC);
	close(fd);
	model_fill(&m, 2);
	rc = ckpt_save(cdir, 2, m.segs, 4, 0, errbuf, sizeof(errbuf));
	fprintf(stderr, "%s, full tmpfs: %s\n", backend, errbuf);
	ck_assert_int_eq(rc, -ENOSPC);
	expect_in(errbuf, "No space left on device");
	/* without fallocate, the ring's write completions say it */
	expect_in(errbuf, strcmp(backend, "uring") == 0 && !no_fallocate ?
	    "fallocate" : "write");
	expect_unpublished(2);
	load_expect(&m, 1);
	/* space again: training goes on */
	ck_assert_int_eq(unlink(filler), 0);
	save_ok(cdir, 2, &m, 1);
	load_expect(&m, 2);
	model_fini(&m);
}

START_TEST(test_full_disk_uring)
{
	full_disk("uring", 0);
}
END_TEST

START_TEST(test_full_disk_uring_nofalloc)
{
	full_disk("uring", 1);
}
END_TEST

START_TEST(test_full_disk_posix)
{
	full_disk("posix", 0);
}
END_TEST

/* A step saved again (resume, then the same step) stays loadable. */
START_TEST(test_rewrite_step)
{
	struct model m;

	model_init(&m, 3000);
	save_ok(cdir, 4, &m, 0);
	cap_begin();
	save_ok(cdir, 4, &m, 0);
	expect_in(cap_end(), "saving step 4 again");
	load_expect(&m, 4);
	model_fini(&m);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("ckpt");
	TCase *tc = tcase_create("ckpt");
	SRunner *sr;
	int nf;

	log_init("check_ckpt", LOG_LEVEL_INFO);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_roundtrip_uring);
	tcase_add_test(tc, test_roundtrip_posix);
	tcase_add_test(tc, test_backends_same_bytes);
	tcase_add_test(tc, test_large_uring);
	tcase_add_test(tc, test_retention);
	tcase_add_test(tc, test_torn_shard);
	tcase_add_test(tc, test_truncated_manifest);
	tcase_add_test(tc, test_flip_shard);
	tcase_add_test(tc, test_flip_header);
	tcase_add_test(tc, test_flip_gap);
	tcase_add_test(tc, test_flip_manifest);
	tcase_add_test(tc, test_missing_shard);
	tcase_add_test(tc, test_no_manifest);
	tcase_add_test(tc, test_manifest_mismatch);
	tcase_add_test(tc, test_every_bit);
	tcase_add_test(tc, test_crash_leftovers);
	tcase_add_test(tc, test_kill_writer);
	tcase_add_test(tc, test_wrong_sizes);
	tcase_add_test(tc, test_noent);
	tcase_add_test(tc, test_multi_shard);
	tcase_add_test(tc, test_enospc_seam_uring);
	tcase_add_test(tc, test_enospc_seam_posix);
	tcase_add_test(tc, test_read_fault);
	tcase_add_test(tc, test_full_disk_uring);
	tcase_add_test(tc, test_full_disk_uring_nofalloc);
	tcase_add_test(tc, test_full_disk_posix);
	tcase_add_test(tc, test_rewrite_step);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
