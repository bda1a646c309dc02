/*
 * ctlclient.c: arceusctl's side of control.sock (blocking, with a
 * timeout: a wedged control must not hang the operator's shell).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"

#define CTL_TIMEOUT_MS	5000

static int
ctl_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int
read_full(int fd, void *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t r;

		if (poll(&pfd, 1, CTL_TIMEOUT_MS) <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		r = read(fd, (char *)p + got, n - got);
		if (r == 0) {
			errno = ECONNRESET;
			return -1;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

static int
send_rec(int fd, uint16_t type, const void *p, uint32_t len)
{
	char buf[CTL_HDR_LEN + 64];
	struct ctl_hdr h = { type, 0, len };

	memcpy(buf, &h, CTL_HDR_LEN);
	memcpy(buf + CTL_HDR_LEN, p, len);
	return write(fd, buf, CTL_HDR_LEN + len) == (ssize_t)(CTL_HDR_LEN + len)
	    ? 0 : -1;
}

static void
down(const char *sock, const char *what)
{
	fprintf(stderr, "arceusctl: %s: cannot reach arceus-control at %s: "
	    "%s\nhint: is it running? (systemctl status arceus-control; "
	    "-s or ARCEUS_CONTROL_SOCK for another socket)\n", what, sock,
	    strerror(errno));
}

/* Reads DATA records to stdout until END. @return exit status. */
static int
read_answer(int fd, const char *sock, const char *what)
{
	static char data[CTL_MAX_PAYLOAD];
	int said = 0;

	for (;;) {
		struct ctl_hdr h;
		struct ctl_end e;

		if (read_full(fd, &h, sizeof(h)) < 0)
			goto fail;
		if (h.type == IMSG_CTL_DATA && h.len <= CTL_MAX_PAYLOAD) {
			if (read_full(fd, data, h.len) < 0)
				goto fail;
			fwrite(data, 1, h.len, stdout);
			said = 1;
			continue;
		}
		if (h.type == IMSG_CTL_END && h.len == sizeof(e)) {
			if (read_full(fd, &e, sizeof(e)) < 0)
				goto fail;
			if (e.status != 0) {
				if (!said)	/* control said why already */
					fprintf(stderr, "arceusctl: %s: %s\n",
					    what, strerror(e.status));
				return 1;
			}
			return 0;
		}
		fprintf(stderr, "arceusctl: %s: unexpected record %u from "
		    "control\n", what, h.type);
		return 1;
	}
fail:
	down(sock, what);
	return 1;
}

int
ctl_query(const char *sock, const char *what, int json)
{
	struct ctl_query q;
	int fd, rc;

	memset(&q, 0, sizeof(q));
	q.version = CTL_VERSION;
	q.json = (uint32_t)json;
	snprintf(q.what, sizeof(q.what), "%s", what);
	if ((fd = ctl_connect(sock)) < 0) {
		down(sock, what);
		return 1;
	}
	if (send_rec(fd, IMSG_CTL_QUERY, &q, sizeof(q)) < 0) {
		down(sock, what);
		close(fd);
		return 1;
	}
	rc = read_answer(fd, sock, what);
	close(fd);
	return rc;
}

int
ctl_report_send(const char *sock, const struct ctl_report *r)
{
	int fd, rc;

	if ((fd = ctl_connect(sock)) < 0) {
		down(sock, "report");
		return 1;
	}
	if (send_rec(fd, IMSG_CTL_REPORT, r, sizeof(*r)) < 0) {
		down(sock, "report");
		close(fd);
		return 1;
	}
	rc = read_answer(fd, sock, "report");
	close(fd);
	return rc;
}

int
ctl_job_send(const char *sock, const struct ctl_job *j)
{
	int fd, rc;

	if ((fd = ctl_connect(sock)) < 0) {
		down(sock, "job");
		return 1;
	}
	if (write(fd, &(struct ctl_hdr){ IMSG_CTL_JOB, 0, sizeof(*j) },
	    CTL_HDR_LEN) != CTL_HDR_LEN ||
	    write(fd, j, sizeof(*j)) != (ssize_t)sizeof(*j)) {
		down(sock, "job");
		close(fd);
		return 1;
	}
	rc = read_answer(fd, sock, "job");
	close(fd);
	return rc;
}
