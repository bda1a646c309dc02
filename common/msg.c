/*
 * msg.c: framed records over unix stream sockets, with fd passing; see
 * msg.h.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msg.h"

void
msgbuf_init(struct msgbuf *mb)
{
	mb->len = 0;
	mb->off = 0;
	mb->nfds = 0;
}

void
msgbuf_fini(struct msgbuf *mb)
{
	if (mb == NULL)
		return;
	for (int i = 0; i < mb->nfds; i++)
		close(mb->fds[i]);
	mb->nfds = 0;
	mb->len = mb->off = 0;
}

ssize_t
msgbuf_read(struct msgbuf *mb, int fd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * 16)];
	} cbuf;
	struct msghdr mh;
	struct cmsghdr *cm;
	struct iovec iov;
	ssize_t n;

	if (mb->off > 0) {
		memmove(mb->buf, mb->buf + mb->off, mb->len - mb->off);
		mb->len -= mb->off;
		mb->off = 0;
	}
	if (mb->len == sizeof(mb->buf))
		return -ENOBUFS;
	iov.iov_base = mb->buf + mb->len;
	iov.iov_len = sizeof(mb->buf) - mb->len;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = sizeof(cbuf.buf);
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		int nf, *fp;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		nf = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		fp = (int *)(void *)CMSG_DATA(cm);
		for (int i = 0; i < nf; i++) {
			int f;

			memcpy(&f, fp + i, sizeof(f));
			if (mb->nfds < (int)(sizeof(mb->fds) / sizeof(int)))
				mb->fds[mb->nfds++] = f;
			else
				close(f);	/* more than any record needs */
		}
	}
	if (mh.msg_flags & MSG_CTRUNC)
		return -EBADMSG;
	mb->len += (size_t)n;
	return n;
}

int
msg_get(struct msgbuf *mb, struct msg *m)
{
	struct msg_hdr h;
	size_t avail = mb->len - mb->off;
	int nf;

	if (avail < MSG_HDR_LEN)
		return 0;
	memcpy(&h, mb->buf + mb->off, MSG_HDR_LEN);
	if (h.len > MSG_MAX_PAYLOAD)
		return -EBADMSG;
	if (avail < MSG_HDR_LEN + (size_t)h.len)
		return 0;
	nf = (int)MSG_FDS(h.flags);
	if (nf > mb->nfds)
		return -EBADMSG;
	m->type = h.type;
	m->flags = h.flags;
	m->len = h.len;
	m->data = mb->buf + mb->off + MSG_HDR_LEN;
	m->nfds = nf;
	for (int i = 0; i < nf; i++)
		m->fds[i] = mb->fds[i];
	mb->nfds -= nf;
	memmove(mb->fds, mb->fds + nf, sizeof(int) * (size_t)mb->nfds);
	mb->off += MSG_HDR_LEN + h.len;
	return 1;
}

/* Waits until fd is writable or timeout_ms passes. */
static int
wait_writable(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int r;

	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	if (pfd.revents & (POLLERR | POLLHUP))
		return -EPIPE;
	return 0;
}

int
msg_send(int fd, uint16_t type, const void *payload, uint32_t len,
    const int *fds, int nfds, int timeout_ms)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * MSG_MAX_FDS)];
	} cbuf;
	struct msg_hdr h;
	struct msghdr mh;
	struct iovec iov[2];
	size_t total, sent = 0;
	ssize_t n;
	int r;

	if (len > MSG_MAX_PAYLOAD || nfds < 0 || nfds > MSG_MAX_FDS)
		return -EINVAL;
	h.type = type;
	h.flags = (uint16_t)nfds;
	h.len = len;
	total = MSG_HDR_LEN + len;
	while (sent < total) {
		size_t hoff = sent < MSG_HDR_LEN ? sent : MSG_HDR_LEN;
		int niov = 0;

		if (hoff < MSG_HDR_LEN) {
			iov[niov].iov_base = (char *)&h + hoff;
			iov[niov++].iov_len = MSG_HDR_LEN - hoff;
		}
		if (len > 0) {
			size_t poff = sent > MSG_HDR_LEN ? sent - MSG_HDR_LEN : 0;

			iov[niov].iov_base = (char *)payload + poff;
			iov[niov++].iov_len = len - poff;
		}
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)niov;
		if (sent == 0 && nfds > 0) {
			struct cmsghdr *cm;

			memset(&cbuf, 0, sizeof(cbuf));
			mh.msg_control = cbuf.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) *
			    (size_t)nfds);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
			memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
		}
		n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			if ((r = wait_writable(fd, timeout_ms)) < 0)
				return r;
			continue;
		}
		sent += (size_t)n;
	}
	return 0;
}

int
msg_send_hello(int fd, uint32_t role, uint32_t node_id, const char *name)
{
	struct imsg_hello h;

	memset(&h, 0, sizeof(h));
	h.version = MSG_VERSION;
	h.role = role;
	h.pid = (uint32_t)getpid();
	h.node_id = node_id;
	snprintf(h.name, sizeof(h.name), "%s", name != NULL ? name : "");
	return msg_send(fd, IMSG_HELLO, &h, sizeof(h), NULL, 0, 1000);
}

int
msg_send_error(int fd, int err, uint32_t peer, const char *text)
{
	struct imsg_error e;

	memset(&e, 0, sizeof(e));
	e.err = err;
	e.peer = peer;
	snprintf(e.text, sizeof(e.text), "%s", text != NULL ? text : "");
	return msg_send(fd, IMSG_ERROR, &e, sizeof(e), NULL, 0, 1000);
}

int
msg_check_hello(const struct msg *m, struct imsg_hello *out,
    const char **why)
{
	if (m->type != IMSG_HELLO) {
		*why = "first message is not a hello";
		return -EPROTO;
	}
	if (m->len != sizeof(*out)) {
		*why = "hello of the wrong size";
		return -EPROTO;
	}
	memcpy(out, m->data, sizeof(*out));
	if (out->version != MSG_VERSION) {
		*why = "protocol version mismatch";
		return -EPROTO;
	}
	if (memchr(out->name, '\0', sizeof(out->name)) == NULL) {
		*why = "hello name not terminated";
		return -EPROTO;
	}
	return 0;
}
