/*
 * ckpt.c: checkpoints (ARCHITECTURE.md §7; design note in
 * docs/checkpoints.md): the shard and MANIFEST formats, the publish
 * sequence, retention and the loader that falls back.
 *
 * Life cycle of one step directory:
 *
 *   absent --mkdir, fsync dir--> incomplete
 *   incomplete --per shard: tmp, write, fsync, rename, fsync step dir-->
 *       incomplete (all shards)
 *   incomplete --MANIFEST: tmp, write, fsync, rename, fsync step dir-->
 *       complete
 *   complete --retention: unlink MANIFEST, fsync, unlink shards, rmdir-->
 *       absent
 *
 * A crash anywhere leaves each step either complete, with a MANIFEST that
 * matches its shards, or incomplete, which loading skips.  Files are only
 * ever created under a temporary name and published by rename(2).
 *
 * On-disk integers are little-endian (the layout of the structs below on
 * x86-64 and arm64; the static_asserts pin it).
 */
#include <sys/stat.h>
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "fault.h"
#include "log.h"
#include "ckpt.h"

#define CKPT_MAGIC	"ARCCKPT1"	/* shard files */
#define MANI_MAGIC	"ARCMANI1"	/* MANIFEST */
#define CKPT_VERSION	1		/* of both; bump on any change */
#define STEP_FMT	"step-%010" PRIu64
#define MANIFEST	"MANIFEST"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
    "the checkpoint format is little-endian");

/* Shard file header, at offset 0; the segment table follows it. */
struct ckpt_fhdr {
	char		magic[8];	/* CKPT_MAGIC, no NUL */
	uint32_t	version;	/* CKPT_VERSION */
	uint32_t	nseg;		/* table entries, <= CKPT_MAX_SEGS */
	uint64_t	step;
	uint32_t	rank;
	uint32_t	hdr_len;	/* header + table, padded to CKPT_ALIGN */
	uint64_t	file_len;	/* exact file size */
	uint32_t	flags;		/* 0 */
	uint32_t	hdr_crc;	/* CRC32C of hdr_len bytes, this field 0 */
	uint8_t		zero[16];
};
static_assert(sizeof(struct ckpt_fhdr) == 64, "shard header layout");

struct ckpt_fseg {
	char		name[CKPT_NAME_MAX];	/* NUL-terminated */
	uint64_t	off;		/* file offset, multiple of CKPT_ALIGN */
	uint64_t	len;		/* bytes */
	uint32_t	crc;		/* CRC32C of the len bytes */
	uint32_t	zero0;
	uint64_t	zero1;
};
static_assert(sizeof(struct ckpt_fseg) == 64, "segment table layout");

/* MANIFEST: this header, then nshards entries; nothing else. */
struct ckpt_mhdr {
	char		magic[8];	/* MANI_MAGIC */
	uint32_t	version;	/* CKPT_VERSION */
	uint32_t	nshards;	/* 1..CKPT_MAX_SHARDS */
	uint64_t	step;
	uint32_t	flags;		/* 0 */
	uint32_t	crc;		/* CRC32C of the whole file, this field 0 */
};
static_assert(sizeof(struct ckpt_mhdr) == 32, "manifest header layout");

struct ckpt_ment {
	uint32_t	rank;
	uint32_t	crc;		/* CRC32C of the whole shard file */
	uint64_t	size;		/* shard file size */
};
static_assert(sizeof(struct ckpt_ment) == 16, "manifest entry layout");

static const struct storage_ops *ckpt_ops = &storage_uring_ops;
static const uint8_t zero_block[CKPT_ALIGN];

static _Thread_local char storage_errbuf[512];

int
storage_fail(int rc, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(storage_errbuf, sizeof(storage_errbuf), fmt, ap);
	va_end(ap);
	n = strlen(storage_errbuf);
	snprintf(storage_errbuf + n, sizeof(storage_errbuf) - n, ": %s",
	    strerror(-rc));
	return rc;
}

const char *
storage_last_error(void)
{
	return storage_errbuf;
}

/* Formats "fmt: strerror(-rc)" into err (may be NULL). @return rc. */
static int __attribute__((format(printf, 4, 5)))
ckpt_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (err == NULL || errlen == 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	n = strlen(err);
	if (rc != 0 && n + 1 < errlen)
		snprintf(err + n, errlen - n, ": %s", strerror(-rc));
	return rc;
}

/* As ckpt_fail, without the strerror: fmt says it all. */
static int __attribute__((format(printf, 4, 5)))
ckpt_failx(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

int
ckpt_set_backend(const char *name)
{
	if (name == NULL)
		return -EINVAL;
	if (strcmp(name, storage_uring_ops.name) == 0)
		ckpt_ops = &storage_uring_ops;
	else if (strcmp(name, storage_posix_ops.name) == 0)
		ckpt_ops = &storage_posix_ops;
	else
		return -EINVAL;
	return 0;
}

/* dir/step-N[/leaf] into buf. @return 0 or -ENAMETOOLONG. */
static int
ckpt_path(char *buf, size_t len, const char *dir, uint64_t step,
    const char *leaf)
{
	int n;

	if (leaf != NULL)
		n = snprintf(buf, len, "%s/" STEP_FMT "/%s", dir, step, leaf);
	else
		n = snprintf(buf, len, "%s/" STEP_FMT, dir, step);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* fsync of a directory, so that the entries renamed into it persist. */
static int
fsync_dir(const char *path)
{
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	rc = fault_hit(FAULT_CKPT_FSYNC);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* mkdir -p path, fsyncing each parent that gained an entry. */
static int
mkdir_p(const char *path)
{
	char buf[PATH_MAX], *p;
	int rc;

	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, path);
	for (p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		if (p[-1] != '/') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, 0755) == 0) {
				char *slash = strrchr(buf, '/');

				/* the new entry lives in the parent */
				if (slash == NULL)
					rc = fsync_dir(".");
				else if (slash == buf)
					rc = fsync_dir("/");
				else {
					*slash = '\0';
					rc = fsync_dir(buf);
					*slash = '/';
				}
				if (rc < 0)
					return rc;
			} else if (errno != EEXIST)
				return -errno;
			*p = c;
		}
		if (*p == '\0')
			break;
	}
	return 0;
}

/* CRC32C of n zero bytes appended to crc (n < CKPT_ALIGN in practice). */
static uint32_t
crc_zeros(uint32_t crc, uint64_t n)
{
	while (n > 0) {
		size_t k = n < sizeof(zero_block) ? n : sizeof(zero_block);

		crc = crc32c(crc, zero_block, k);
		n -= k;
	}
	return crc;
}

static int
ckpt_check_segs(const struct ckpt_seg *segs, int nseg, char *err,
    size_t errlen)
{
	int i, j;

	if (nseg < 0 || nseg > CKPT_MAX_SEGS || (nseg > 0 && segs == NULL))
		return ckpt_failx(err, errlen, -EINVAL,
		    "%d segments: must be 0..%d", nseg, CKPT_MAX_SEGS);
	for (i = 0; i < nseg; i++) {
		if (segs[i].name == NULL || segs[i].name[0] == '\0' ||
		    strlen(segs[i].name) >= CKPT_NAME_MAX)
			return ckpt_failx(err, errlen, -EINVAL,
			    "segment %d: name must be 1..%d characters", i,
			    CKPT_NAME_MAX - 1);
		if (segs[i].len > 0 && segs[i].data == NULL)
			return ckpt_failx(err, errlen, -EINVAL,
			    "segment '%s': no data", segs[i].name);
		for (j = 0; j < i; j++)
			if (strcmp(segs[i].name, segs[j].name) == 0)
				return ckpt_failx(err, errlen, -EINVAL,
				    "segment '%s' appears twice",
				    segs[i].name);
	}
	return 0;
}

/*
 * Builds the shard header of segs into a new buffer of *hdrlen bytes
 * (caller frees) and the whole file's size and CRC32C.
 */
static void *
ckpt_build_hdr(uint64_t step, uint32_t rank, const struct ckpt_seg *segs,
    int nseg, size_t *hdrlen, uint64_t *file_len, uint32_t *file_crc)
{
	struct ckpt_fhdr *h;
	struct ckpt_fseg *t;
	uint64_t pos;
	uint32_t crc;
	size_t len;
	int i;

	len = ckpt_align_up(sizeof(*h) + (size_t)nseg * sizeof(*t));
	if ((h = calloc(1, len)) == NULL)
		return NULL;
	t = (struct ckpt_fseg *)(h + 1);
	memcpy(h->magic, CKPT_MAGIC, sizeof(h->magic));
	h->version = CKPT_VERSION;
	h->nseg = nseg;
	h->step = step;
	h->rank = rank;
	h->hdr_len = len;
	pos = len;
	for (i = 0; i < nseg; i++) {
		strcpy(t[i].name, segs[i].name);
		t[i].off = ckpt_align_up(pos);
		t[i].len = segs[i].len;
		t[i].crc = crc32c(0, segs[i].data, segs[i].len);
		pos = t[i].off + t[i].len;
	}
	h->file_len = pos;
	h->hdr_crc = crc32c(0, h, len);

	/* The whole file as the manifest sees it: header, gaps, segments. */
	crc = crc32c(0, h, len);
	pos = len;
	for (i = 0; i < nseg; i++) {
		crc = crc_zeros(crc, t[i].off - pos);
		crc = crc32c(crc, segs[i].data, segs[i].len);
		pos = t[i].off + t[i].len;
	}
	*hdrlen = len;
	*file_len = h->file_len;
	*file_crc = crc;
	return h;
}

/*
 * Publishes one file: backend write of tmp (fsynced), rename to final,
 * fsync of the directory.  On error neither name is left behind.
 */
static int
ckpt_publish(const char *stepdir, const char *tmp, const char *final,
    const struct ckpt_seg *segs, int nseg, const void *hdr, size_t hdrlen,
    char *err, size_t errlen)
{
	int rc;

	if (unlink(tmp) < 0 && errno != ENOENT)	/* left by a crash */
		return ckpt_fail(err, errlen, -errno, "unlink %s", tmp);
	storage_errbuf[0] = '\0';
	rc = ckpt_ops->write_file(tmp, segs, nseg, hdr, hdrlen);
	if (rc < 0) {
		unlink(tmp);
		if (storage_errbuf[0] != '\0')
			return ckpt_failx(err, errlen, rc, "%s (%s backend)",
			    storage_errbuf, ckpt_ops->name);
		return ckpt_fail(err, errlen, rc, "write %s (%s backend)",
		    tmp, ckpt_ops->name);
	}
	rc = fault_hit(FAULT_CKPT_RENAME);
	if (rc == 0 && rename(tmp, final) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return ckpt_fail(err, errlen, rc, "rename %s to %s", tmp,
		    final);
	}
	if ((rc = fsync_dir(stepdir)) < 0) {
		/* Durability of the entry is unknown: take it back. */
		unlink(final);
		return ckpt_fail(err, errlen, rc, "fsync directory %s",
		    stepdir);
	}
	return 0;
}

int
ckpt_write_shard(const char *dir, uint64_t step, uint32_t rank,
    const struct ckpt_seg *segs, int nseg, struct ckpt_shard_info *info,
    char *err, size_t errlen)
{
	char stepdir[PATH_MAX], final[PATH_MAX], tmp[PATH_MAX], leaf[64];
	char mani[PATH_MAX];
	uint64_t file_len;
	uint32_t file_crc;
	size_t hdrlen;
	void *hdr;
	int rc;

	if ((rc = ckpt_check_segs(segs, nseg, err, errlen)) < 0)
		return rc;
	snprintf(leaf, sizeof(leaf), "shard-%" PRIu32 ".bin", rank);
	if ((rc = ckpt_path(stepdir, sizeof(stepdir), dir, step, NULL)) < 0 ||
	    (rc = ckpt_path(final, sizeof(final), dir, step, leaf)) < 0 ||
	    (rc = ckpt_path(mani, sizeof(mani), dir, step, MANIFEST)) < 0 ||
	    snprintf(tmp, sizeof(tmp), "%s.tmp", final) >= (int)sizeof(tmp))
		return ckpt_fail(err, errlen, rc < 0 ? rc : -ENAMETOOLONG,
		    "checkpoint path under %s", dir);
	if ((rc = mkdir_p(stepdir)) < 0)
		return ckpt_fail(err, errlen, rc, "create %s", stepdir);
	/*
	 * Rewriting a step that is already complete (a rerun after resume):
	 * make it incomplete first, so that its MANIFEST never describes a
	 * shard other than the one on disk.
	 */
	if (unlink(mani) == 0) {
		log_warnx("checkpoint %s: saving step %" PRIu64 " again: "
		    "its old MANIFEST is removed first", dir, step);
		if ((rc = fsync_dir(stepdir)) < 0)
			return ckpt_fail(err, errlen, rc,
			    "fsync directory %s", stepdir);
	} else if (errno != ENOENT)
		return ckpt_fail(err, errlen, -errno, "unlink %s", mani);

	hdr = ckpt_build_hdr(step, rank, segs, nseg, &hdrlen, &file_len,
	    &file_crc);
	if (hdr == NULL)
		return ckpt_fail(err, errlen, -ENOMEM, "shard header of %s",
		    final);
	rc = ckpt_publish(stepdir, tmp, final, segs, nseg, hdr, hdrlen, err,
	    errlen);
	free(hdr);
	if (rc < 0)
		return rc;
	if (info != NULL) {
		info->rank = rank;
		info->size = file_len;
		info->crc = file_crc;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Directory scans and retention.                                     */

/* "step-" and exactly 10 digits. @return 0 or -1. */
static int
parse_step(const char *name, uint64_t *step)
{
	uint64_t v = 0;
	int i;

	if (strncmp(name, "step-", 5) != 0 || strlen(name) != 15)
		return -1;
	for (i = 5; i < 15; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	*step = v;
	return 0;
}

static int
cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Every step directory under dir, newest first, in *steps (caller frees).
 * @return how many, or -errno (-ENOENT: no dir).
 */
static int
ckpt_scan(const char *dir, uint64_t **steps)
{
	struct dirent *de;
	uint64_t *v = NULL, *nv, s;
	int n = 0, cap = 0;
	DIR *d;

	*steps = NULL;
	if ((d = opendir(dir)) == NULL)
		return -errno;
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (parse_step(de->d_name, &s) < 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = s;
	}
	if (errno != 0) {
		int rc = -errno;

		free(v);
		closedir(d);
		return rc;
	}
	closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_desc);
	*steps = v;
	return n;
}

/* Reads len bytes at off; the fault seam of every read. */
static int
ckpt_read(int fd, void *buf, size_t len, uint64_t off)
{
	int rc;

	if (len == 0)
		return 0;
	if ((rc = fault_hit(FAULT_CKPT_READ)) < 0)
		return rc;
	return ckpt_ops->read_at(fd, buf, len, off);
}

/*
 * Reads and verifies the MANIFEST of step into *m (caller frees).
 * @return 0, -ENOENT (none: the step is incomplete), -EIO (why says how it
 * is damaged) or another -errno.
 */
static int
mani_read(const char *dir, uint64_t step, struct ckpt_mhdr **m,
    char *why, size_t whylen)
{
	char path[PATH_MAX];
	struct ckpt_mhdr *h = NULL;
	struct stat st;
	uint32_t crc;
	size_t want;
	int fd, rc;

	*m = NULL;
	if ((rc = ckpt_path(path, sizeof(path), dir, step, MANIFEST)) < 0)
		return ckpt_fail(why, whylen, rc, "MANIFEST path");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = -errno;
		if (rc == -ENOENT)
			return ckpt_failx(why, whylen, rc, "incomplete: no "
			    "MANIFEST (the save did not finish: crash "
			    "before commit?)");
		return ckpt_fail(why, whylen, rc, "open %s", path);
	}
	if (fstat(fd, &st) < 0) {
		rc = ckpt_fail(why, whylen, -errno, "fstat %s", path);
		goto close_fd;
	}
	if (st.st_size < (off_t)sizeof(*h) || st.st_size > (off_t)(sizeof(*h)
	    + CKPT_MAX_SHARDS * sizeof(struct ckpt_ment))) {
		rc = ckpt_failx(why, whylen, -EIO, "MANIFEST truncated or "
		    "torn: %jd bytes", (intmax_t)st.st_size);
		goto close_fd;
	}
	if ((h = malloc(st.st_size)) == NULL) {
		rc = ckpt_fail(why, whylen, -ENOMEM, "MANIFEST");
		goto close_fd;
	}
	if ((rc = ckpt_read(fd, h, st.st_size, 0)) < 0) {
		ckpt_fail(why, whylen, rc, "read %s", path);
		goto free_h;
	}
	rc = -EIO;
	if (memcmp(h->magic, MANI_MAGIC, sizeof(h->magic)) != 0) {
		ckpt_failx(why, whylen, rc, "MANIFEST has a bad magic: not "
		    "an Arceus manifest, or its first block is damaged");
		goto free_h;
	}
	want = sizeof(*h) + (size_t)h->nshards * sizeof(struct ckpt_ment);
	if (h->nshards > CKPT_MAX_SHARDS || (off_t)want != st.st_size) {
		ckpt_failx(why, whylen, rc, "MANIFEST truncated or torn: %jd "
		    "bytes, its header says %u shards", (intmax_t)st.st_size,
		    h->nshards);
		goto free_h;
	}
	crc = h->crc;
	h->crc = 0;
	if (crc32c(0, h, want) != crc) {
		ckpt_failx(why, whylen, rc, "MANIFEST checksum mismatch (bit "
		    "flip or torn write)");
		goto free_h;
	}
	h->crc = crc;
	if (h->version != CKPT_VERSION) {
		ckpt_failx(why, whylen, rc, "MANIFEST version %u, this build "
		    "reads %u: written by another arceus version",
		    h->version, CKPT_VERSION);
		goto free_h;
	}
	if (h->step != step) {
		ckpt_failx(why, whylen, rc, "manifest mismatch: MANIFEST is "
		    "for step %" PRIu64 " (copied from another step?)",
		    h->step);
		goto free_h;
	}
	close(fd);
	*m = h;
	return 0;

free_h:
	free(h);
close_fd:
	close(fd);
	return rc;
}

/* Removes a step directory: MANIFEST first, so it is never half-complete. */
static int
ckpt_remove_step(const char *dir, uint64_t step)
{
	char path[PATH_MAX], f[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc;

	if ((rc = ckpt_path(path, sizeof(path), dir, step, MANIFEST)) < 0)
		return rc;
	if (unlink(path) == 0) {
		ckpt_path(path, sizeof(path), dir, step, NULL);
		if ((rc = fsync_dir(path)) < 0)
			return rc;
	} else if (errno != ENOENT)
		return -errno;
	ckpt_path(path, sizeof(path), dir, step, NULL);
	if ((d = opendir(path)) == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		rc = 0;
		if (snprintf(f, sizeof(f), "%s/%s", path, de->d_name) >=
		    (int)sizeof(f))
			rc = -ENAMETOOLONG;
		else if (unlink(f) < 0)
			rc = -errno;
		if (rc < 0) {
			closedir(d);
			return rc;
		}
	}
	closedir(d);
	if (rmdir(path) < 0)
		return -errno;
	return 0;
}

/* The retention pass of ckpt_commit; failures are logged only. */
static void
ckpt_prune(const char *dir, uint64_t step, int keep)
{
	struct ckpt_mhdr *m;
	uint64_t *steps;
	int n, i, ncomplete = 0, removed = 0, rc;
	char why[256];

	if ((n = ckpt_scan(dir, &steps)) < 0) {
		log_warnx("checkpoint %s: retention: scan: %s", dir,
		    strerror(-n));
		return;
	}
	for (i = 0; i < n; i++) {
		int complete = mani_read(dir, steps[i], &m, why,
		    sizeof(why)) == 0;

		free(m);
		if (complete && (keep <= 0 || ++ncomplete <= keep))
			continue;
		/* Incomplete steps newer than this one may be other ranks'. */
		if (!complete && steps[i] >= step)
			continue;
		if ((rc = ckpt_remove_step(dir, steps[i])) < 0)
			log_warnx("checkpoint %s: retention: removing step %"
			    PRIu64 ": %s", dir, steps[i], strerror(-rc));
		else
			removed++;
	}
	free(steps);
	if (removed > 0 && (rc = fsync_dir(dir)) < 0)
		log_warnx("checkpoint %s: retention: fsync: %s", dir,
		    strerror(-rc));
}

int
ckpt_commit(const char *dir, uint64_t step,
    const struct ckpt_shard_info *shards, int nshards, int keep, char *err,
    size_t errlen)
{
	char stepdir[PATH_MAX], final[PATH_MAX], tmp[PATH_MAX], p[PATH_MAX];
	struct ckpt_mhdr *h;
	struct ckpt_ment *e;
	struct stat st;
	size_t len;
	int i, j, rc;

	if (nshards < 1 || nshards > CKPT_MAX_SHARDS || shards == NULL)
		return ckpt_failx(err, errlen, -EINVAL, "%d shards: must be "
		    "1..%d", nshards, CKPT_MAX_SHARDS);
	if ((rc = ckpt_path(stepdir, sizeof(stepdir), dir, step, NULL)) < 0 ||
	    (rc = ckpt_path(final, sizeof(final), dir, step, MANIFEST)) < 0 ||
	    (rc = ckpt_path(tmp, sizeof(tmp), dir, step, MANIFEST ".tmp")) < 0)
		return ckpt_fail(err, errlen, rc, "checkpoint path under %s",
		    dir);
	/* Only what is on disk may be committed. */
	for (i = 0; i < nshards; i++) {
		for (j = 0; j < i; j++)
			if (shards[j].rank == shards[i].rank)
				return ckpt_failx(err, errlen, -EINVAL,
				    "step %" PRIu64 ": rank %" PRIu32
				    " listed twice", step, shards[i].rank);
		snprintf(p, sizeof(p), "%s/shard-%" PRIu32 ".bin", stepdir,
		    shards[i].rank);
		if (stat(p, &st) < 0)
			return ckpt_fail(err, errlen, -errno, "commit step %"
			    PRIu64 ": %s", step, p);
		if ((uint64_t)st.st_size != shards[i].size)
			return ckpt_failx(err, errlen, -EINVAL, "commit step %"
			    PRIu64 ": %s is %jd bytes, expected %" PRIu64,
			    step, p, (intmax_t)st.st_size, shards[i].size);
	}

	len = sizeof(*h) + (size_t)nshards * sizeof(*e);
	if ((h = calloc(1, len)) == NULL)
		return ckpt_fail(err, errlen, -ENOMEM, "%s", final);
	e = (struct ckpt_ment *)(h + 1);
	memcpy(h->magic, MANI_MAGIC, sizeof(h->magic));
	h->version = CKPT_VERSION;
	h->nshards = nshards;
	h->step = step;
	for (i = 0; i < nshards; i++) {
		e[i].rank = shards[i].rank;
		e[i].crc = shards[i].crc;
		e[i].size = shards[i].size;
	}
	h->crc = crc32c(0, h, len);
	rc = ckpt_publish(stepdir, tmp, final, NULL, 0, h, len, err, errlen);
	free(h);
	if (rc < 0)
		return rc;
	ckpt_prune(dir, step, keep);
	return 0;
}

int
ckpt_save(const char *dir, uint64_t step, const struct ckpt_seg *segs,
    int nseg, int keep, char *err, size_t errlen)
{
	struct ckpt_shard_info info;
	char mani[PATH_MAX];
	int rc;

	rc = ckpt_write_shard(dir, step, 0, segs, nseg, &info, err, errlen);
	if (rc == 0)
		rc = ckpt_commit(dir, step, &info, 1, keep, err, errlen);
	/*
	 * A failed save leaves an incomplete step that nothing will load:
	 * give its space back now (a full disk is the usual cause).  A
	 * complete step (bad arguments to a rewrite) is left alone.
	 */
	if (rc < 0 && ckpt_path(mani, sizeof(mani), dir, step, MANIFEST) == 0 &&
	    access(mani, F_OK) < 0 && errno == ENOENT)
		ckpt_remove_step(dir, step);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Loading.                                                           */

/*
 * Loads shard rank of step into segs.  @return 0; -ENOENT incomplete;
 * -EINVAL segments differ (another model); -EIO damaged; other -errno.
 * why says which.
 */
static int
ckpt_try_load(const char *dir, uint64_t step, uint32_t rank,
    const struct ckpt_seg *segs, int nseg, char *why, size_t whylen)
{
	char path[PATH_MAX], leaf[64];
	struct ckpt_fhdr fh, *h = NULL;
	struct ckpt_fseg *t;
	struct ckpt_mhdr *m;
	struct ckpt_ment *e = NULL;
	int map[CKPT_MAX_SEGS];
	uint32_t crc, hcrc;
	uint64_t pos;
	struct stat st;
	int fd, i, j, rc;

	if ((rc = mani_read(dir, step, &m, why, whylen)) < 0)
		return rc;
	for (i = 0; i < (int)m->nshards; i++)
		if (((struct ckpt_ment *)(m + 1))[i].rank == rank)
			e = (struct ckpt_ment *)(m + 1) + i;
	if (e == NULL) {
		rc = ckpt_failx(why, whylen, -EINVAL, "manifest mismatch: "
		    "MANIFEST lists no shard for rank %" PRIu32 " (%u "
		    "shards: saved by a job of another size?)", rank,
		    m->nshards);
		goto free_m;
	}
	snprintf(leaf, sizeof(leaf), "shard-%" PRIu32 ".bin", rank);
	if ((rc = ckpt_path(path, sizeof(path), dir, step, leaf)) < 0) {
		ckpt_fail(why, whylen, rc, "shard path");
		goto free_m;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = -errno;
		if (rc == -ENOENT) {
			rc = ckpt_failx(why, whylen, -EIO, "missing shard: %s "
			    "is listed in MANIFEST but absent", leaf);
		} else
			ckpt_fail(why, whylen, rc, "open %s", path);
		goto free_m;
	}
	rc = -EIO;
	if (fstat(fd, &st) < 0) {
		rc = ckpt_fail(why, whylen, -errno, "fstat %s", path);
		goto close_fd;
	}
	if ((uint64_t)st.st_size != e->size) {
		ckpt_failx(why, whylen, rc, "torn or truncated: %s is %jd "
		    "bytes, MANIFEST says %" PRIu64, leaf,
		    (intmax_t)st.st_size, e->size);
		goto close_fd;
	}
	if (st.st_size < (off_t)sizeof(fh)) {
		ckpt_failx(why, whylen, rc, "torn or truncated: %s is %jd "
		    "bytes, shorter than its header", leaf,
		    (intmax_t)st.st_size);
		goto close_fd;
	}
	if ((rc = ckpt_read(fd, &fh, sizeof(fh), 0)) < 0) {
		ckpt_fail(why, whylen, rc, "read %s", path);
		goto close_fd;
	}
	rc = -EIO;
	if (memcmp(fh.magic, CKPT_MAGIC, sizeof(fh.magic)) != 0) {
		ckpt_failx(why, whylen, rc, "%s has a bad magic: not an "
		    "Arceus shard, or its first block is damaged", leaf);
		goto close_fd;
	}
	if (fh.version != CKPT_VERSION) {
		ckpt_failx(why, whylen, rc, "%s is format version %u, this "
		    "build reads %u", leaf, fh.version, CKPT_VERSION);
		goto close_fd;
	}
	if (fh.nseg > CKPT_MAX_SEGS || fh.hdr_len != ckpt_align_up(sizeof(fh)
	    + (size_t)fh.nseg * sizeof(*t)) || fh.hdr_len > e->size) {
		ckpt_failx(why, whylen, rc, "%s: header damaged (%u segments,"
		    " %u header bytes)", leaf, fh.nseg, fh.hdr_len);
		goto close_fd;
	}
	if ((h = malloc(fh.hdr_len)) == NULL) {
		rc = ckpt_fail(why, whylen, -ENOMEM, "%s", path);
		goto close_fd;
	}
	if ((rc = ckpt_read(fd, h, fh.hdr_len, 0)) < 0) {
		ckpt_fail(why, whylen, rc, "read %s", path);
		goto free_h;
	}
	rc = -EIO;
	hcrc = h->hdr_crc;
	h->hdr_crc = 0;
	if (crc32c(0, h, h->hdr_len) != hcrc || h->nseg != fh.nseg ||
	    h->hdr_len != fh.hdr_len) {
		ckpt_failx(why, whylen, rc, "%s: header checksum mismatch "
		    "(bit flip)", leaf);
		goto free_h;
	}
	h->hdr_crc = hcrc;
	if (h->step != step || h->rank != rank || h->file_len != e->size) {
		ckpt_failx(why, whylen, rc, "manifest mismatch: %s holds step "
		    "%" PRIu64 " rank %" PRIu32 ", %" PRIu64 " bytes", leaf,
		    h->step, h->rank, h->file_len);
		goto free_h;
	}
	/* The layout must be the one the writer's rule gives. */
	t = (struct ckpt_fseg *)(h + 1);
	pos = h->hdr_len;
	for (i = 0; i < (int)h->nseg; i++) {
		if (memchr(t[i].name, '\0', sizeof(t[i].name)) == NULL ||
		    t[i].off != ckpt_align_up(pos) ||
		    t[i].len > h->file_len - t[i].off) {
			ckpt_failx(why, whylen, rc, "%s: segment table "
			    "damaged at entry %d", leaf, i);
			goto free_h;
		}
		pos = t[i].off + t[i].len;
	}
	if (pos != h->file_len) {
		ckpt_failx(why, whylen, rc, "%s: segment table damaged (ends "
		    "at %" PRIu64 ")", leaf, pos);
		goto free_h;
	}

	/* Same names and sizes as the caller's: else another model. */
	rc = -EINVAL;
	for (i = 0; i < (int)h->nseg; i++) {
		for (j = 0; j < nseg; j++)
			if (strcmp(t[i].name, segs[j].name) == 0)
				break;
		if (j == nseg) {
			ckpt_failx(why, whylen, rc, "segment mismatch: the "
			    "checkpoint has segment '%s' (%" PRIu64 " bytes) "
			    "this run does not: a different model", t[i].name,
			    t[i].len);
			goto free_h;
		}
		if (t[i].len != segs[j].len) {
			ckpt_failx(why, whylen, rc, "segment size mismatch: "
			    "'%s' is %" PRIu64 " bytes in the checkpoint, %zu "
			    "here: a different model or config", t[i].name,
			    t[i].len, segs[j].len);
			goto free_h;
		}
		map[i] = j;
	}
	if ((int)h->nseg != nseg) {
		for (j = 0; j < nseg; j++) {
			for (i = 0; i < (int)h->nseg; i++)
				if (map[i] == j)
					break;
			if (i == (int)h->nseg)
				break;
		}
		ckpt_failx(why, whylen, rc, "segment mismatch: this run needs "
		    "segment '%s', the checkpoint lacks it: a different "
		    "model", j < nseg ? segs[j].name : "?");
		goto free_h;
	}

	/* Data straight into the caller's buffers; gaps checked too. */
	crc = crc32c(0, h, h->hdr_len);
	pos = h->hdr_len;
	for (i = 0; i < (int)h->nseg; i++) {
		const struct ckpt_seg *s = &segs[map[i]];
		uint8_t gap[CKPT_ALIGN];

		if (t[i].off > pos) {
			rc = ckpt_read(fd, gap, t[i].off - pos, pos);
			if (rc < 0) {
				ckpt_fail(why, whylen, rc, "read %s", path);
				goto free_h;
			}
			crc = crc32c(crc, gap, t[i].off - pos);
		}
		if ((rc = ckpt_read(fd, s->data, s->len, t[i].off)) < 0) {
			ckpt_fail(why, whylen, rc, "read %s segment '%s'",
			    path, s->name);
			goto free_h;
		}
		if (crc32c(0, s->data, s->len) != t[i].crc) {
			rc = ckpt_failx(why, whylen, -EIO, "%s: segment '%s' "
			    "checksum mismatch (bit flip)", leaf, s->name);
			goto free_h;
		}
		crc = crc32c(crc, s->data, s->len);
		pos = t[i].off + t[i].len;
	}
	rc = 0;
	if (crc != e->crc)
		rc = ckpt_failx(why, whylen, -EIO, "%s: checksum mismatch "
		    "against MANIFEST (bit flip in a gap, or a stale shard)",
		    leaf);

free_h:
	free(h);
close_fd:
	close(fd);
free_m:
	free(m);
	return rc;
}

int
ckpt_load_latest(const char *dir, uint32_t rank, uint64_t *step,
    const struct ckpt_seg *segs, int nseg, char *err, size_t errlen)
{
	char why[512], first[600] = "";
	uint64_t *steps;
	int n, i, rc, ncomplete = 0, nmismatch = 0, nskipped = 0;

	if ((rc = ckpt_check_segs(segs, nseg, err, errlen)) < 0)
		return rc;
	if ((n = ckpt_scan(dir, &steps)) < 0) {
		if (n == -ENOENT)
			return ckpt_failx(err, errlen, n, "no checkpoint "
			    "under %s (no such directory)", dir);
		return ckpt_fail(err, errlen, n, "scan %s", dir);
	}
	for (i = 0; i < n; i++) {
		why[0] = '\0';
		rc = ckpt_try_load(dir, steps[i], rank, segs, nseg, why,
		    sizeof(why));
		if (rc == 0) {
			*step = steps[i];
			if (nskipped > 0)
				log_warnx("checkpoint %s: fell back to step %"
				    PRIu64 " (rank %" PRIu32 "), %d newer "
				    "step(s) skipped", dir, steps[i], rank,
				    nskipped);
			else
				log_info("checkpoint %s: loaded step %" PRIu64
				    " (rank %" PRIu32 ")", dir, steps[i],
				    rank);
			free(steps);
			return 0;
		}
		if (rc != -ENOENT)
			ncomplete++;
		if (rc == -EINVAL)
			nmismatch++;
		nskipped++;
		log_warnx("checkpoint %s: skipping step %" PRIu64 ": %s", dir,
		    steps[i], why);
		if (first[0] == '\0' && rc != -ENOENT)
			snprintf(first, sizeof(first), "step %" PRIu64 ": %s",
			    steps[i], why);
	}
	free(steps);
	if (ncomplete == 0)
		return ckpt_failx(err, errlen, -ENOENT, "no complete "
		    "checkpoint under %s", dir);
	return ckpt_failx(err, errlen, nmismatch ? -EINVAL : -EIO, "no "
	    "usable checkpoint under %s; newest %s", dir, first);
}

int
ckpt_load_at(const char *dir, uint32_t rank, uint64_t step,
    const struct ckpt_seg *segs, int nseg, char *err, size_t errlen)
{
	char why[512];
	int rc;

	if ((rc = ckpt_check_segs(segs, nseg, err, errlen)) < 0)
		return rc;
	why[0] = '\0';
	if ((rc = ckpt_try_load(dir, step, rank, segs, nseg, why,
	    sizeof(why))) < 0)
		return ckpt_failx(err, errlen, rc, "checkpoint %s: step %" PRIu64
		    ": %s", dir, step, why);
	log_info("checkpoint %s: loaded step %" PRIu64 " (rank %" PRIu32 ")",
	    dir, step, rank);
	return 0;
}

int
ckpt_list(const char *dir, uint64_t *steps, int max)
{
	struct ckpt_mhdr *m;
	uint64_t *all;
	char why[256];
	int n, i, k = 0;

	if ((n = ckpt_scan(dir, &all)) < 0)
		return n;
	for (i = 0; i < n && k < max; i++) {
		if (mani_read(dir, all[i], &m, why, sizeof(why)) == 0)
			steps[k++] = all[i];
		free(m);
	}
	free(all);
	return k;
}
