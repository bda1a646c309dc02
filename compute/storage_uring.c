/*
 * storage_uring.c: the io_uring checkpoint backend (MACHINE.md "io_uring":
 * O_DIRECT from registered buffers at QD 16 is the fastest way to disk
 * here).
 *
 * A write streams the file's bytes (header, zero gaps, segments) through
 * a pool of aligned bounce buffers, each a request:
 *
 *   FREE --reserve--> FILLING --submit--> INFLIGHT --completion--> FREE
 *                                           |  ^
 *                                           +--+ short write / EAGAIN /
 *                                                EINVAL under O_DIRECT:
 *                                                requeue the rest
 *
 * An INFLIGHT buffer is lent to the kernel: it is neither touched nor
 * freed until its completion is reaped, even after another request has
 * failed (ur_drain).  The last buffer is padded to CKPT_ALIGN for
 * O_DIRECT, and the file truncated back to its exact size before the
 * fsync, which also goes through the ring.
 *
 * Where the file system cannot do O_DIRECT (statx STATX_DIOALIGN says so,
 * or a write fails with EINVAL) the same code goes on buffered; where
 * buffers cannot be registered (RLIMIT_MEMLOCK: ENOMEM, EPERM) it goes on
 * unregistered; where io_uring itself is refused (ENOSYS, EPERM: seccomp)
 * storage_posix_ops does the write.
 */
#include <sys/stat.h>
#include <sys/uio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define VALGRIND_MAKE_MEM_DEFINED(p, n)	((void)(p), (void)(n))
#endif

#include "fault.h"
#include "log.h"
#include "ckpt.h"

#define UR_QD		16		/* requests in flight (MACHINE.md) */
#define UR_QD_MAX	64
#define UR_CHUNK	(1u << 20)	/* bytes per request */
#define UR_MEM_ALIGN	4096		/* bounce buffer alignment */

#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN	0x00002000U	/* linux 6.1 */
#endif

enum ur_state {
	UR_FREE = 0,
	UR_FILLING,	/* being filled by ur_stage, ours */
	UR_INFLIGHT,	/* lent to the kernel until its completion */
};

struct ur_req {
	enum ur_state	 state;
	char		*buf;	/* writes: the bounce buffer; reads: caller's */
	size_t		 len;	/* bytes of the transfer */
	size_t		 done;	/* bytes transferred so far */
	uint64_t	 off;	/* file offset of buf[0] */
	int		 bidx;	/* registered buffer index, -1: none */
	int		 direct;/* submitted while the file had O_DIRECT */
};

/* One file being written or read, and the ring that does it. */
struct ur_file {
	struct io_uring	 ring;
	int		 fd;
	int		 fixed;		/* fd registered: sqes use index 0 */
	const char	*path;		/* for messages; may be "" on reads */
	int		 writing;	/* 1: write requests, 0: reads */
	int		 direct;	/* fd has O_DIRECT now */
	int		 registered;	/* bounce buffers registered */
	struct ur_req	 reqs[UR_QD_MAX];
	int		 nreq;
	int		 inflight;	/* requests lent to the kernel */
	char		*arena;		/* nreq * chunk bounce bytes */
	size_t		 chunk;
	struct ur_req	*cur;		/* FILLING request, or NULL */
	uint64_t	 pos;		/* file offset of the next staged byte */
	int		 err;		/* first error, -errno; 0 none */
	uint64_t	 err_off;	/* where it happened */
	struct storage_uring_stats st;
};

static struct storage_uring_conf ur_conf;
static struct storage_uring_stats ur_last;

void
storage_uring_configure(const struct storage_uring_conf *c)
{
	memset(&ur_conf, 0, sizeof(ur_conf));
	if (c != NULL)
		ur_conf = *c;
}

void
storage_uring_last(struct storage_uring_stats *st)
{
	*st = ur_last;
}

static int
ur_qd(void)
{
	int qd = ur_conf.qd > 0 ? ur_conf.qd : UR_QD;

	return qd > UR_QD_MAX ? UR_QD_MAX : qd;
}

static size_t
ur_chunk(void)
{
	size_t c = ur_conf.chunk > 0 ? ur_conf.chunk : UR_CHUNK;

	return ckpt_align_up(c);
}

/* Stops O_DIRECT on the file: the file system refused it. */
static void
ur_nodirect(struct ur_file *f)
{
	int fl = fcntl(f->fd, F_GETFL);

	if (fl >= 0)
		fcntl(f->fd, F_SETFL, fl & ~O_DIRECT);
	f->direct = 0;
}

/*
 * Submits what is left of r.  Every transfer, its retries included, goes
 * through here.  @return 0 or -errno.
 */
static int
ur_submit(struct ur_file *f, struct ur_req *r)
{
	struct io_uring_sqe *sqe;
	int fd = f->fixed ? 0 : f->fd, rc;
	char *buf = r->buf + r->done;
	unsigned n = r->len - r->done;
	uint64_t off = r->off + r->done;

	/* inflight <= nreq <= ring entries: an sqe is always there */
	if ((sqe = io_uring_get_sqe(&f->ring)) == NULL) {
		r->state = UR_FREE;
		return -EBUSY;
	}
	if (!f->writing)
		io_uring_prep_read(sqe, fd, buf, n, off);
	else if (f->registered)
		io_uring_prep_write_fixed(sqe, fd, buf, n, off, r->bidx);
	else
		io_uring_prep_write(sqe, fd, buf, n, off);
	if (f->fixed)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, r);
	r->direct = f->direct;
	r->state = UR_INFLIGHT;
	f->inflight++;
	if (f->writing)
		f->st.writes++;
	/* On error the sqe stays queued and goes with the next submit. */
	if ((rc = io_uring_submit(&f->ring)) < 0 && rc != -EINTR &&
	    rc != -EAGAIN && rc != -EBUSY)
		return rc;
	return 0;
}

static void
ur_seterr(struct ur_file *f, int err, uint64_t off)
{
	if (f->err == 0) {
		f->err = err;
		f->err_off = off;
	}
}

/*
 * The completion of r with result res: the one place where short
 * transfers, EAGAIN and the O_DIRECT fallback are handled.
 */
static void
ur_complete(struct ur_file *f, struct ur_req *r, int res)
{
	int rc;

	if (f->err == 0 && (res == -EAGAIN || res == -EINTR)) {
		if ((rc = ur_submit(f, r)) < 0)
			ur_seterr(f, rc, r->off + r->done);
		return;
	}
	if (f->err == 0 && res == -EINVAL && r->direct) {
		/* The file system takes no O_DIRECT here: go buffered. */
		if (f->direct) {
			ur_nodirect(f);
			f->st.direct_refused++;
		}
		if ((rc = ur_submit(f, r)) < 0)
			ur_seterr(f, rc, r->off + r->done);
		return;
	}
	if (res < 0) {
		ur_seterr(f, res, r->off + r->done);
		r->state = UR_FREE;
		return;
	}
	if (res == 0 && r->done < r->len) {
		/* A read at EOF, or a write that made no progress. */
		ur_seterr(f, -EIO, r->off + r->done);
		r->state = UR_FREE;
		return;
	}
	/* The kernel wrote it; valgrind cannot see that. */
	if (!f->writing)
		VALGRIND_MAKE_MEM_DEFINED(r->buf + r->done, res);
	r->done += res;
	if (r->done < r->len && f->err == 0) {
		if (f->writing)
			f->st.short_writes++;
		if ((rc = ur_submit(f, r)) < 0)
			ur_seterr(f, rc, r->off + r->done);
		return;
	}
	r->state = UR_FREE;
}

/* Reaps one completion, waiting for it. @return 0 or -errno (the ring). */
static int
ur_reap(struct ur_file *f)
{
	struct io_uring_cqe *cqe;
	struct ur_req *r;
	int rc, res;

	/* submit_and_wait also pushes an sqe whose submit failed earlier */
	while ((rc = io_uring_peek_cqe(&f->ring, &cqe)) == -EAGAIN)
		if ((rc = io_uring_submit_and_wait(&f->ring, 1)) < 0 &&
		    rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			return rc;
	if (rc < 0)
		return rc;
	r = io_uring_cqe_get_data(cqe);
	res = cqe->res;
	io_uring_cqe_seen(&f->ring, cqe);
	f->inflight--;
	/* The fault seam of one write: as if the kernel had failed it. */
	if (f->writing && res >= 0 && (rc = fault_hit(FAULT_CKPT_WRITE)) < 0)
		res = rc;
	ur_complete(f, r, res);
	return 0;
}

/*
 * Waits until nothing is lent to the kernel.  Must run before the buffers
 * are freed, whatever went wrong.  A ring that cannot wait is fatal to
 * the process rather than a use-after-free.
 */
static void
ur_drain(struct ur_file *f)
{
	int rc;

	while (f->inflight > 0)
		if ((rc = ur_reap(f)) < 0)
			fatalx("io_uring wait on %s with %d requests in "
			    "flight: %s", f->path, f->inflight,
			    strerror(-rc));
}

/* A FREE request, waiting for one if all are lent. NULL after an error. */
static struct ur_req *
ur_reserve(struct ur_file *f)
{
	int i, rc;

	for (;;) {
		if (f->err != 0)
			return NULL;
		for (i = 0; i < f->nreq; i++)
			if (f->reqs[i].state == UR_FREE)
				return &f->reqs[i];
		if ((rc = ur_reap(f)) < 0) {
			ur_seterr(f, rc, f->pos);
			return NULL;
		}
	}
}

/* Submits the FILLING request, its tail padded for O_DIRECT if pad. */
static int
ur_flush(struct ur_file *f, int pad)
{
	struct ur_req *r = f->cur;
	size_t n;
	int rc;

	if (r == NULL)
		return 0;
	f->cur = NULL;
	if (pad && f->direct) {
		n = ckpt_align_up(r->len) - r->len;
		memset(r->buf + r->len, 0, n);
		r->len += n;
	}
	if ((rc = ur_submit(f, r)) < 0)
		ur_seterr(f, rc, r->off);
	return f->err;
}

/* Appends len bytes of data (NULL: zeros) to the file. */
static int
ur_stage(struct ur_file *f, const void *data, size_t len)
{
	const char *p = data;
	struct ur_req *r;
	size_t n;
	int rc;

	while (len > 0) {
		if (f->cur == NULL) {
			if ((r = ur_reserve(f)) == NULL)
				return f->err;
			r->state = UR_FILLING;
			r->off = f->pos;
			r->len = 0;
			r->done = 0;
			f->cur = r;
		}
		r = f->cur;
		n = f->chunk - r->len;
		if (n > len)
			n = len;
		if (p != NULL) {
			memcpy(r->buf + r->len, p, n);
			p += n;
		} else
			memset(r->buf + r->len, 0, n);
		r->len += n;
		f->pos += n;
		len -= n;
		if (r->len == f->chunk && (rc = ur_flush(f, 0)) < 0)
			return rc;
	}
	return 0;
}

/*
 * O_DIRECT if the file system says it can with our alignment; else (or
 * if it cannot tell) try it anyway when it does not say no, since an
 * EINVAL completion falls back.
 */
static void
ur_probe_direct(struct ur_file *f)
{
	struct statx stx;
	int fl;

	if (ur_conf.no_direct)
		return;
	memset(&stx, 0, sizeof(stx));
	if (statx(f->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN)) {
		if (stx.stx_dio_offset_align == 0 ||
		    CKPT_ALIGN % stx.stx_dio_offset_align != 0 ||
		    UR_MEM_ALIGN % stx.stx_dio_mem_align != 0)
			return;
	}
	if ((fl = fcntl(f->fd, F_GETFL)) < 0 ||
	    fcntl(f->fd, F_SETFL, fl | O_DIRECT) < 0)
		return;
	f->direct = 1;
}

/* Sets up the ring, the bounce pool and the registrations for a write. */
static int
ur_open_write(struct ur_file *f, uint64_t size)
{
	struct iovec iov[UR_QD_MAX];
	uint64_t nchunks;
	int i, rc;

	f->chunk = ur_chunk();
	nchunks = (ckpt_align_up(size) + f->chunk - 1) / f->chunk;
	f->nreq = ur_qd();
	if ((uint64_t)f->nreq > nchunks)
		f->nreq = nchunks ? nchunks : 1;
	if (nchunks <= 1)	/* one small file: no bigger than needed */
		f->chunk = ckpt_align_up(size ? size : 1);
	if ((rc = io_uring_queue_init(f->nreq, &f->ring, 0)) < 0)
		return rc;
	if ((rc = posix_memalign((void **)&f->arena, UR_MEM_ALIGN,
	    (size_t)f->nreq * f->chunk)) != 0) {
		f->arena = NULL;
		rc = -rc;
		goto exit_ring;
	}
	for (i = 0; i < f->nreq; i++) {
		f->reqs[i].buf = f->arena + (size_t)i * f->chunk;
		f->reqs[i].bidx = i;
		iov[i].iov_base = f->reqs[i].buf;
		iov[i].iov_len = f->chunk;
	}
	/*
	 * ENOMEM / EPERM: RLIMIT_MEMLOCK (8 MiB for non-root by default).
	 * Unregistered buffers are only slower, whatever the reason.
	 */
	if (!ur_conf.no_register) {
		rc = io_uring_register_buffers(&f->ring, iov, f->nreq);
		if (rc == 0)
			f->registered = 1;
		else
			log_debugx("%s: io_uring buffers unregistered: %s",
			    f->path, strerror(-rc));
	}
	if (io_uring_register_files(&f->ring, &f->fd, 1) == 0)
		f->fixed = 1;
	return 0;

exit_ring:
	io_uring_queue_exit(&f->ring);
	return rc;
}

/* fsync through the ring. */
static int
ur_fsync(struct ur_file *f)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int rc;

	if ((sqe = io_uring_get_sqe(&f->ring)) == NULL)
		return -EBUSY;
	io_uring_prep_fsync(sqe, f->fixed ? 0 : f->fd, 0);
	if (f->fixed)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, NULL);
	if ((rc = io_uring_submit(&f->ring)) < 0)
		return rc;
	do
		rc = io_uring_wait_cqe(&f->ring, &cqe);
	while (rc == -EINTR);
	if (rc < 0)
		return rc;
	rc = cqe->res;
	io_uring_cqe_seen(&f->ring, cqe);
	if (rc == 0)
		rc = fault_hit(FAULT_CKPT_FSYNC);
	return rc;
}

static int
uring_write_file(const char *path, const struct ckpt_seg *segs, int nseg,
    const void *hdr, size_t hdrlen)
{
	static int warned;
	struct ur_file f;
	uint64_t size;
	int i, rc;

	memset(&f, 0, sizeof(f));
	memset(&ur_last, 0, sizeof(ur_last));
	f.path = path;
	f.writing = 1;
	size = hdrlen;
	for (i = 0; i < nseg; i++)
		size = ckpt_align_up(size) + segs[i].len;

	if ((rc = fault_hit(FAULT_CKPT_OPEN)) < 0)
		return storage_fail(rc, "create %s", path);
	f.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (f.fd < 0)
		return storage_fail(-errno, "create %s", path);
	if ((rc = ur_open_write(&f, size)) < 0) {
		close(f.fd);
		unlink(path);
		if (rc == -ENOSYS || rc == -EPERM) {
			/* No io_uring in this sandbox: plain writes do. */
			if (!warned++)
				log_warnx("io_uring unavailable (%s): "
				    "checkpoints use plain writes",
				    strerror(-rc));
			ur_last.posix_fallback = 1;
			return storage_posix_ops.write_file(path, segs, nseg,
			    hdr, hdrlen);
		}
		return storage_fail(rc, "io_uring setup for %s", path);
	}
	ur_probe_direct(&f);
	/*
	 * Reserve the blocks first: a full disk fails here, before any
	 * write, and writes inside i_size run in parallel (ext4 serializes
	 * O_DIRECT writes that extend the file).
	 */
	if (!ur_conf.no_fallocate && size > 0 &&
	    fallocate(f.fd, 0, 0, ckpt_align_up(size)) < 0 &&
	    errno != EOPNOTSUPP && errno != ENOSYS) {
		rc = storage_fail(-errno, "fallocate %s (%ju bytes)", path,
		    (uintmax_t)size);
		goto close_file;
	}

	rc = ur_stage(&f, hdr, hdrlen);
	for (i = 0; rc == 0 && i < nseg; i++) {
		rc = ur_stage(&f, NULL, ckpt_align_up(f.pos) - f.pos);
		if (rc == 0)
			rc = ur_stage(&f, segs[i].data, segs[i].len);
	}
	if (rc == 0)
		rc = ur_flush(&f, 1);
	ur_drain(&f);	/* every buffer back before anything is freed */
	if (rc == 0)
		rc = f.err;
	if (rc < 0) {
		storage_fail(rc, "write %s at offset %ju%s", path,
		    (uintmax_t)f.err_off, f.direct ? " (O_DIRECT)" : "");
		goto close_file;
	}
	/* Drop the O_DIRECT padding of the last block. */
	if (ftruncate(f.fd, size) < 0) {
		rc = storage_fail(-errno, "ftruncate %s", path);
		goto close_file;
	}
	if ((rc = ur_fsync(&f)) < 0) {
		storage_fail(rc, "fsync %s", path);
		goto close_file;
	}

close_file:
	f.st.direct = f.direct;
	f.st.registered = f.registered;
	f.st.fixed_file = f.fixed;
	ur_last = f.st;
	io_uring_queue_exit(&f.ring);	/* unregisters buffers and file */
	free(f.arena);
	if (close(f.fd) < 0 && rc == 0)
		rc = storage_fail(-errno, "close %s", path);
	if (rc < 0)
		unlink(path);
	return rc;
}

/* Reads straight into the caller's buffer, QD requests of chunk bytes. */
static int
uring_read_at(int fd, void *buf, size_t len, uint64_t off)
{
	struct ur_file f;
	size_t pos = 0, n;
	struct ur_req *r;
	int i, rc;

	if (len == 0)
		return 0;
	memset(&f, 0, sizeof(f));
	f.fd = fd;
	f.path = "";
	f.chunk = ur_chunk();
	f.nreq = ur_qd();
	if ((rc = io_uring_queue_init(f.nreq, &f.ring, 0)) < 0) {
		if (rc == -ENOSYS || rc == -EPERM)
			return storage_posix_ops.read_at(fd, buf, len, off);
		return rc;
	}
	for (i = 0; i < f.nreq; i++)
		f.reqs[i].bidx = -1;
	while (pos < len && f.err == 0) {
		if ((r = ur_reserve(&f)) == NULL)
			break;
		n = len - pos < f.chunk ? len - pos : f.chunk;
		r->buf = (char *)buf + pos;
		r->len = n;
		r->done = 0;
		r->off = off + pos;
		if ((rc = ur_submit(&f, r)) < 0)
			ur_seterr(&f, rc, r->off);
		pos += n;
	}
	ur_drain(&f);
	io_uring_queue_exit(&f.ring);
	return f.err;
}

const struct storage_ops storage_uring_ops = {
	.name = "uring",
	.write_file = uring_write_file,
	.read_at = uring_read_at,
};
