/*
 * storage_posix.c: the plain pwrite/pread/fsync checkpoint backend: the
 * fallback where io_uring is unavailable and the reference the tests
 * compare storage_uring.c with.  Buffered I/O; the gaps between segments
 * are left as holes, which read back as the zeros the layout asks for.
 */
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "fault.h"
#include "ckpt.h"

/*
 * The one place that handles short writes and EINTR.
 * @return 0 or -errno, with storage_fail() done.
 */
static int
posix_write_all(int fd, const char *path, const void *buf, size_t len,
    uint64_t off)
{
	const char *p = buf;
	ssize_t n;
	int rc;

	while (len > 0) {
		if ((rc = fault_hit(FAULT_CKPT_WRITE)) < 0)
			return storage_fail(rc, "write %s at offset %ju", path,
			    (uintmax_t)off);
		n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return storage_fail(-errno, "write %s at offset %ju",
			    path, (uintmax_t)off);
		if (n == 0)
			return storage_fail(-EIO, "write %s at offset %ju "
			    "wrote nothing", path, (uintmax_t)off);
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int
posix_write_file(const char *path, const struct ckpt_seg *segs, int nseg,
    const void *hdr, size_t hdrlen)
{
	uint64_t pos;
	int fd, i, rc;

	if ((rc = fault_hit(FAULT_CKPT_OPEN)) < 0)
		return storage_fail(rc, "create %s", path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return storage_fail(-errno, "create %s", path);
	if ((rc = posix_write_all(fd, path, hdr, hdrlen, 0)) < 0)
		goto unlink_file;
	pos = hdrlen;
	for (i = 0; i < nseg; i++) {
		pos = ckpt_align_up(pos);
		rc = posix_write_all(fd, path, segs[i].data, segs[i].len, pos);
		if (rc < 0)
			goto unlink_file;
		pos += segs[i].len;
	}
	/* Holes up to the last segment's start if it is empty. */
	if (ftruncate(fd, pos) < 0) {
		rc = storage_fail(-errno, "ftruncate %s", path);
		goto unlink_file;
	}
	rc = fault_hit(FAULT_CKPT_FSYNC);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (rc < 0) {
		storage_fail(rc, "fsync %s", path);
		goto unlink_file;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = storage_fail(-errno, "close %s", path);
		goto unlink_file;
	}
	return 0;

unlink_file:
	if (fd >= 0)
		close(fd);
	unlink(path);
	return rc;
}

static int
posix_read_at(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = pread(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;	/* the file ends early */
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

const struct storage_ops storage_posix_ops = {
	.name = "posix",
	.write_file = posix_write_file,
	.read_at = posix_read_at,
};
