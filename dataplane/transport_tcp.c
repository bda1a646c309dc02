/*
 * transport_tcp.c: the always-available backend: kernel TCP sockets driven
 * by io_uring.
 *
 * Per peer two connections: ours (outbound, we only send on it; a small
 * receive stays posted to see the peer close it) and the peer's (inbound,
 * we only receive).  Each begins with the sender's HELLO.
 *
 * Outbound: one SENDMSG in flight per connection, gathering up to
 * DP_TX_BATCH queued messages (header + payload iovecs, payloads straight
 * from the arena); a short send resubmits the rest, so the byte stream
 * never interleaves.  Inbound: a RECV into a ring (up to TCP_RX_HEAD of
 * whatever is there, the exact rest of a message whose header is in, or
 * just the next header after a large message) and then every complete
 * message in it is framed (wire_decode: a header that does not decode has
 * lost the stream, the connection closes) and handed up, so a busy link
 * of small messages costs one wake-up for many.  The ring is mapped twice
 * back to back (rx_ring_new), so a message that wraps is still contiguous
 * and nothing is ever moved.  A large payload that the collectives can
 * take where it belongs (coll_rx_place: a copy step's chunk, a RECV's) is
 * received straight there instead (place_start), so it is never staged
 * and copied; dp_on_recv still checks its CRC, where it landed, before it
 * counts.
 *
 * A connection dies in two steps: shutdown() makes its posted requests
 * complete, and the last completion closes the fd and frees it.  Every
 * io_uring request carries a struct ureq naming its connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fault.h"
#include "log.h"
#include "dataplane.h"

/* our state of a peer */
#define PEER_ST(p)	((p)->tp[DP_TP_SLOT(DP_BACKEND_TCP)])

#define TCP_RING_ENTRIES	256
#define TCP_BATCH_BYTES		(8u << 20)	/* gather at most this */
#define TCP_RX_BUF		(4u << 20)	/* receive buffer, at least */
#define TCP_ZC_MIN		(64u << 10)	/* zero-copy batches from this */
#define TCP_HELLO_MAX		256		/* payload before a hello */
#define TCP_RX_HEAD		(64u << 10)	/* a receive at a message start */
#define TCP_PLACE_MIN		(64u << 10)	/* payloads received in place */

enum ureq_kind {
	UREQ_ACCEPT = 1,
	UREQ_CONNECT,
	UREQ_SEND,
	UREQ_RECV,
	UREQ_WATCH,
	UREQ_EXT,	/* the caller's fd became readable (tcp_wait) */
	UREQ_PLACE,	/* the rest of a placed payload may be there */
};

struct tcp_conn;

struct ureq {
	enum ureq_kind	 kind;
	struct tcp_conn	*c;
};

struct tcp_conn {
	LIST_ENTRY(tcp_conn) entry;
	int		 fd;
	int		 outbound;
	int		 connected;
	int		 closing;
	int		 pending;	/* requests in flight */
	struct dp_peer	*peer;		/* NULL: inbound before its hello */
	struct ureq	 rq_conn, rq_send, rq_recv, rq_watch, rq_place;
	struct sockaddr_in sa;

	/*
	 * receive (inbound): a ring of rxcap bytes mapped twice in a row,
	 * so that any rxcap bytes from any offset are contiguous; offsets
	 * rx_start (parsed up to) and rx_end (received up to) run free.
	 */
	uint8_t		*rxbuf;
	size_t		 rxcap;		/* power of two, pages */
	size_t		 rx_start;
	size_t		 rx_end;
	uint8_t		 watch[16];

	/* a payload received straight into its place (coll_rx_place) */
	int		 placing;
	int		 place_lost;	/* its operation went: drained */
	struct wire_hdr	 place_h;
	uint8_t		 place_raw[WIRE_HDR_LEN];
	size_t		 place_got;	/* payload bytes in place */
	int		 lowat;		/* SO_RCVLOWAT set (bytes), 0 none */
	int		 rx_big;	/* the last message was a large one */

	/* send (outbound) */
	struct tp_msg	*tx[DP_TX_BATCH];
	int		 ntx;
	int		 tx_first;	/* first message not fully sent */
	size_t		 tx_first_pos;	/* where it starts in the batch */
	size_t		 tx_total;
	size_t		 tx_done;
	struct iovec	 iov[2 * DP_TX_BATCH];
	struct msghdr	 mh;
	uint8_t		*hold[DP_TX_BATCH];	/* buffers the kernel may read */
	int		 nhold;
	int		 tx_zc;		/* this batch goes zero-copy */
	int		 zc_notif;	/* zero-copy notifications to come */
};

struct tcp_peer {
	struct tcp_conn	*out;
	struct tcp_conn	*in;
};

struct tcp_state {
	struct dp	*dp;
	struct io_uring	 ring;
	int		 efd;
	int		 lfd;
	struct ureq	 rq_accept;
	struct ureq	 rq_ext;
	int		 ext_armed;
	int		 zc;		/* SEND_ZC for large batches */
	LIST_HEAD(, tcp_conn) conns;
};

static struct io_uring_sqe *
get_sqe(struct tcp_state *st)
{
	struct io_uring_sqe *sqe;

	if ((sqe = io_uring_get_sqe(&st->ring)) == NULL) {
		io_uring_submit(&st->ring);
		sqe = io_uring_get_sqe(&st->ring);
	}
	return sqe;
}

static int
post_accept(struct tcp_state *st)
{
	struct io_uring_sqe *sqe;

	if ((sqe = get_sqe(st)) == NULL)
		return -EBUSY;
	io_uring_prep_accept(sqe, st->lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, &st->rq_accept);
	return 0;
}

/* A ring of size bytes mapped twice, back to back. NULL on failure. */
static uint8_t *
rx_ring_new(size_t size)
{
	uint8_t *base;
	int fd;

	if ((fd = memfd_create("arceus-rx", MFD_CLOEXEC)) < 0)
		return NULL;
	if (ftruncate(fd, (off_t)size) < 0)
		goto fail;
	base = mmap(NULL, 2 * size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (base == MAP_FAILED)
		goto fail;
	if (mmap(base, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
	    fd, 0) == MAP_FAILED ||
	    mmap(base + size, size, PROT_READ | PROT_WRITE, MAP_SHARED |
	    MAP_FIXED, fd, 0) == MAP_FAILED) {
		munmap(base, 2 * size);
		goto fail;
	}
	close(fd);
	return base;
fail:
	close(fd);
	return NULL;
}

static void
rx_ring_free(uint8_t *base, size_t size)
{
	if (base != NULL)
		munmap(base, 2 * size);
}

static struct tcp_peer *
tpeer(struct dp_peer *p)
{
	if (PEER_ST(p) == NULL)
		PEER_ST(p) = calloc(1, sizeof(struct tcp_peer));
	return PEER_ST(p);
}

static struct tcp_conn *
conn_new(struct tcp_state *st, int fd, int outbound)
{
	struct tcp_conn *c;
	int one = 1;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->fd = fd;
	c->outbound = outbound;
	c->rq_conn = (struct ureq){ UREQ_CONNECT, c };
	c->rq_send = (struct ureq){ UREQ_SEND, c };
	c->rq_recv = (struct ureq){ UREQ_RECV, c };
	c->rq_watch = (struct ureq){ UREQ_WATCH, c };
	c->rq_place = (struct ureq){ UREQ_PLACE, c };
	if (!outbound) {
		if ((c->rxbuf = rx_ring_new(TCP_RX_BUF)) == NULL) {
			free(c);
			return NULL;
		}
		c->rxcap = TCP_RX_BUF;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	LIST_INSERT_HEAD(&st->conns, c, entry);
	return c;
}

static void
conn_free(struct tcp_conn *c)
{
	LIST_REMOVE(c, entry);
	close(c->fd);
	for (int i = 0; i < c->nhold; i++)
		free(c->hold[i]);
	rx_ring_free(c->rxbuf, c->rxcap);
	free(c);
}

/*
 * Takes c away from its peer and reports the messages it holds as failed
 * (their buffers stay with c until the kernel is done).  Then closes it.
 */
static void
conn_close(struct tcp_state *st, struct tcp_conn *c, int err)
{
	struct dp_peer *p = c->peer;

	if (c->closing)
		return;
	c->closing = 1;
	c->peer = NULL;
	if (p != NULL && PEER_ST(p) != NULL) {
		struct tcp_peer *tp = PEER_ST(p);

		if (tp->out == c)
			tp->out = NULL;
		if (tp->in == c)
			tp->in = NULL;
	}
	for (int i = c->tx_first; i < c->ntx; i++) {
		struct tp_msg *m = c->tx[i];

		if (m->owned != NULL && c->nhold < DP_TX_BATCH) {
			c->hold[c->nhold++] = m->owned;
			m->owned = NULL;
		}
		if (p != NULL)
			dp_on_sent(st->dp, p, m, err);
		else
			dp_msg_free(st->dp, m);
	}
	c->ntx = c->tx_first = 0;
	shutdown(c->fd, SHUT_RDWR);
	/* freed by tcp_poll once its last request completed */
}

/* A connection of peer p broke: the link goes down. */
static void
conn_broken(struct tcp_state *st, struct tcp_conn *c, int err,
    const char *what)
{
	struct dp_peer *p = c->peer;
	char why[64];

	conn_close(st, c, err);
	if (p == NULL)
		return;
	snprintf(why, sizeof(why), "%s: %s", what,
	    err == 0 ? "closed by peer" : strerror(-err));
	dp_on_down(st->dp, p, err == 0 ? -ECONNRESET : err, why);
}

/*
 * Receives into the ring: the rest of a message whose header is in
 * (need: its whole size) all at once; after a large message just the next
 * header; else at most TCP_RX_HEAD.  So a large payload is left in the
 * socket for on_recv to receive in place, and small ones still come many
 * to a receive.
 */
static void
post_recv(struct tcp_state *st, struct tcp_conn *c, size_t need)
{
	struct io_uring_sqe *sqe;
	size_t have = c->rx_end - c->rx_start, len = c->rxcap - have;
	int flags = 0;

	if (c->closing || (sqe = get_sqe(st)) == NULL)
		return;
	if (need > have && need - have <= len) {
		len = need - have;
		flags = MSG_WAITALL;
	} else if (c->rx_big && have < WIRE_HDR_LEN) {
		len = WIRE_HDR_LEN - have;
		flags = MSG_WAITALL;
	} else if (c->peer != NULL && len > TCP_RX_HEAD)
		len = TCP_RX_HEAD;
	io_uring_prep_recv(sqe, c->fd, c->rxbuf + (c->rx_end & (c->rxcap - 1)),
	    len, flags);
	io_uring_sqe_set_data(sqe, &c->rq_recv);
	c->pending++;
}

static void
post_watch(struct tcp_state *st, struct tcp_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->closing || (sqe = get_sqe(st)) == NULL)
		return;
	io_uring_prep_recv(sqe, c->fd, c->watch, sizeof(c->watch), 0);
	io_uring_sqe_set_data(sqe, &c->rq_watch);
	c->pending++;
}

/*
 * Builds the iovecs from tx_done on and submits one SENDMSG.  Only the
 * messages from tx_first on are looked at: the ones before were reported
 * sent and may already be reused.
 */
static void
post_send(struct tcp_state *st, struct tcp_conn *c)
{
	struct io_uring_sqe *sqe;
	size_t skip = c->tx_done, pos = c->tx_first_pos;
	int niov = 0;

	for (int i = c->tx_first; i < c->ntx; i++) {
		struct tp_msg *m = c->tx[i];
		const uint8_t *parts[2] = { m->hdr, m->payload };
		size_t lens[2] = { WIRE_HDR_LEN, m->len };

		for (int k = 0; k < 2; k++) {
			size_t off = skip > pos ? skip - pos : 0;

			if (lens[k] > off) {
				c->iov[niov].iov_base = (void *)(parts[k] + off);
				c->iov[niov].iov_len = lens[k] - off;
				niov++;
			}
			pos += lens[k];
		}
	}
	memset(&c->mh, 0, sizeof(c->mh));
	c->mh.msg_iov = c->iov;
	c->mh.msg_iovlen = (size_t)niov;
	if ((sqe = get_sqe(st)) == NULL) {
		conn_broken(st, c, -EBUSY, "send");
		return;
	}
	if (c->tx_zc)
		io_uring_prep_sendmsg_zc(sqe, c->fd, &c->mh, MSG_NOSIGNAL);
	else
		io_uring_prep_sendmsg(sqe, c->fd, &c->mh, MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, &c->rq_send);
	c->pending++;
}

static void
tcp_kick(void *state, struct dp_peer *p)
{
	struct tcp_state *st = state;
	struct tcp_peer *tp = PEER_ST(p);
	struct tcp_conn *c;
	struct tp_msg *m;
	size_t bytes = 0;

	if (tp == NULL || (c = tp->out) == NULL || !c->connected || c->closing || c->ntx > 0)
		return;
	while (c->ntx < DP_TX_BATCH && bytes < TCP_BATCH_BYTES &&
	    (m = dp_tx_pull(st->dp, p)) != NULL) {
		if (fault_hit(FAULT_NET_CORRUPT) < 0)
			m->hdr[44] ^= 0x01;	/* the receiver's CRC sees it */
		c->tx[c->ntx++] = m;
		bytes += WIRE_HDR_LEN + m->len;
	}
	if (c->ntx == 0)
		return;
	c->tx_first = 0;
	c->tx_first_pos = 0;
	c->tx_total = bytes;
	c->tx_done = 0;
	c->tx_zc = st->zc && bytes >= TCP_ZC_MIN;
	if (fault_hit(FAULT_NET_SEND) < 0) {
		conn_broken(st, c, -EIO, "send (injected)");
		return;
	}
	post_send(st, c);
	io_uring_submit(&st->ring);
}

/*
 * Reports the messages wholly sent.  A zero-copy batch is reported only
 * when it is all sent and the kernel said it no longer reads the buffers.
 */
static void
tx_report(struct tcp_state *st, struct tcp_conn *c)
{
	struct dp_peer *p = c->peer;

	if (c->tx_zc && (c->tx_done < c->tx_total || c->zc_notif > 0))
		return;
	while (c->tx_first < c->ntx) {
		struct tp_msg *m = c->tx[c->tx_first];
		size_t end = c->tx_first_pos + WIRE_HDR_LEN + m->len;

		if (end > c->tx_done)
			break;
		c->tx_first++;
		c->tx_first_pos = end;
		dp_on_sent(st->dp, p, m, 0);
		if (c->closing)
			return;
	}
	if (c->tx_done == c->tx_total && c->ntx > 0) {
		c->ntx = c->tx_first = 0;
		tcp_kick(st, p);
	}
}

static void
on_send(struct tcp_state *st, struct tcp_conn *c, int res, unsigned flags)
{
	if (flags & IORING_CQE_F_NOTIF) {
		c->zc_notif--;
		if (!c->closing)
			tx_report(st, c);
		return;
	}
	if (flags & IORING_CQE_F_MORE)
		c->zc_notif++;
	if (c->closing)
		return;
	if (res < 0) {
		conn_broken(st, c, res, "send");
		return;
	}
	c->tx_done += (size_t)res;
	if (c->tx_done < c->tx_total) {
		if (!c->tx_zc)
			tx_report(st, c);
		if (!c->closing)
			post_send(st, c);
		return;
	}
	tx_report(st, c);
}

/* Hands one framed message up. @return 0, or -1 if c was closed. */
static int
deliver(struct tcp_state *st, struct tcp_conn *c, const struct wire_hdr *h,
    const uint8_t *raw, const uint8_t *payload)
{
	struct dp_peer *p;
	struct tcp_peer *tp;

	if (c->peer != NULL) {
		dp_on_recv(st->dp, c->peer, h, raw, payload);
		return c->closing ? -1 : 0;
	}
	p = dp_on_hello(st->dp, h, raw, raw + WIRE_HDR_LEN);
	if (p == NULL || (tp = tpeer(p)) == NULL) {
		conn_close(st, c, -EPROTO);
		return -1;
	}
	if (tp->in != NULL)	/* the peer reconnected: the old one goes */
		conn_close(st, tp->in, -ECONNRESET);
	tp->in = c;
	c->peer = p;
	return 0;
}

static void
set_lowat(struct tcp_conn *c, int bytes)
{
	if (c->lowat == bytes)
		return;
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &bytes,
	    sizeof(bytes)) == 0)
		c->lowat = bytes;
}

/*
 * Receives what the socket has of the placed payload, with plain
 * non-blocking recv() calls: the kernel writes into an operation's buffer
 * only here, right after coll_rx_place said it still waits for it (an
 * operation that failed meanwhile gets nothing more: the rest is drained
 * and the message counted stale).  The rest is waited for with a poll
 * and SO_RCVLOWAT at what is missing, so one wake-up, not one per segment.
 * Then the message goes up like any other (dp_on_recv checks its CRC over
 * the payload where it landed) and the ring takes over again.
 */
static void
place_more(struct tcp_state *st, struct tcp_conn *c)
{
	size_t len = c->place_h.length;
	uint8_t *dst = NULL;
	struct io_uring_sqe *sqe;

	while (c->place_got < len) {
		size_t want = len - c->place_got;
		ssize_t r;

		if (!c->place_lost && (dst = (uint8_t *)coll_rx_place(st->dp,
		    c->peer, &c->place_h)) == NULL)
			c->place_lost = 1;
		if (c->place_lost && want > c->rxcap)
			want = c->rxcap;
		r = recv(c->fd, c->place_lost ? c->rxbuf : dst + c->place_got,
		    want, MSG_DONTWAIT);
		if (r > 0 && fault_hit(FAULT_NET_RECV) < 0) {
			conn_broken(st, c, -EIO, "receive (injected)");
			return;
		}
		if (r > 0) {
			c->place_got += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			want = len - c->place_got;
			set_lowat(c, want < (1u << 30) ? (int)want : 1 << 30);
			if ((sqe = get_sqe(st)) == NULL) {
				conn_broken(st, c, -EBUSY, "receive");
				return;
			}
			io_uring_prep_poll_add(sqe, c->fd, POLLIN);
			io_uring_sqe_set_data(sqe, &c->rq_place);
			c->pending++;
			return;
		}
		conn_broken(st, c, r == 0 ? 0 : -errno, "receive");
		return;
	}
	set_lowat(c, 1);
	c->placing = 0;
	c->rx_big = 1;
	if (c->place_lost) {
		c->peer->rx_stale++;
		st->dp->stats.rx_stale++;
	} else if (deliver(st, c, &c->place_h, c->place_raw, dst) < 0)
		return;
	post_recv(st, c, 0);
}

/*
 * The ring holds the start of message h (header and maybe some payload,
 * nothing after).  If its payload has a place, it moves there and the rest
 * is received there too.  @return 1 if so, 0 if the ring keeps it.
 */
static int
place_start(struct tcp_state *st, struct tcp_conn *c,
    const struct wire_hdr *h)
{
	const uint8_t *raw = c->rxbuf + (c->rx_start & (c->rxcap - 1));
	size_t have = c->rx_end - c->rx_start - WIRE_HDR_LEN;
	uint8_t *dst;

	if ((dst = (uint8_t *)coll_rx_place(st->dp, c->peer, h)) == NULL)
		return 0;
	memcpy(c->place_raw, raw, WIRE_HDR_LEN);
	memcpy(dst, raw + WIRE_HDR_LEN, have);
	c->place_h = *h;
	c->place_got = have;
	c->place_lost = 0;
	c->placing = 1;
	c->rx_start = c->rx_end = 0;
	place_more(st, c);
	return 1;
}

static void
on_recv(struct tcp_state *st, struct tcp_conn *c, int res)
{
	struct wire_hdr h;
	enum wire_err e;
	size_t need = 0;

	if (c->closing)
		return;
	if (res <= 0) {
		conn_broken(st, c, res, "receive");
		return;
	}
	if (fault_hit(FAULT_NET_RECV) < 0) {
		conn_broken(st, c, -EIO, "receive (injected)");
		return;
	}
	c->rx_end += (size_t)res;
	/* every complete message in the buffer */
	while (c->rx_end - c->rx_start >= WIRE_HDR_LEN) {
		const uint8_t *raw = c->rxbuf + (c->rx_start & (c->rxcap - 1));

		if ((e = wire_decode(raw, WIRE_HDR_LEN, &h)) != WIRE_OK) {
			/* the stream lost its framing: nothing after is good */
			dp_on_bad(st->dp, c->peer, e);
			conn_broken(st, c, -EPROTO, "framing");
			return;
		}
		/* before its hello a connection is nobody: no big buffers */
		if (c->peer == NULL && h.length > TCP_HELLO_MAX) {
			dp_on_bad(st->dp, NULL, WIRE_ELENGTH);
			conn_broken(st, c, -EPROTO, "framing");
			return;
		}
		need = WIRE_HDR_LEN + (size_t)h.length;
		if (c->rx_end - c->rx_start < need)
			break;
		c->rx_start += need;
		c->rx_big = h.length >= TCP_PLACE_MIN;
		need = 0;
		if (deliver(st, c, &h, raw, raw + WIRE_HDR_LEN) < 0)
			return;
	}
	if (c->rx_start == c->rx_end)
		c->rx_start = c->rx_end = 0;
	/* a large payload that goes straight to its place */
	if (need >= WIRE_HDR_LEN + TCP_PLACE_MIN && c->peer != NULL &&
	    place_start(st, c, &h))
		return;
	/* a message larger than the ring: a larger ring, same bytes */
	if (need > c->rxcap) {
		size_t cap = c->rxcap, have = c->rx_end - c->rx_start;
		uint8_t *nb;

		while (cap < 2 * need)
			cap *= 2;
		if ((nb = rx_ring_new(cap)) == NULL) {
			conn_broken(st, c, -ENOMEM, "receive");
			return;
		}
		memcpy(nb, c->rxbuf + (c->rx_start & (c->rxcap - 1)), have);
		rx_ring_free(c->rxbuf, c->rxcap);
		c->rxbuf = nb;
		c->rxcap = cap;
		c->rx_start = 0;
		c->rx_end = have;
	}
	post_recv(st, c, need);
}

static void
on_accept(struct tcp_state *st, int res)
{
	struct tcp_conn *c;

	if (res >= 0) {
		if ((c = conn_new(st, res, 0)) == NULL)
			close(res);
		else
			post_recv(st, c, 0);
	} else if (res != -EINTR && res != -ECONNABORTED)
		log_warnx("dp.tcp: accept: %s", strerror(-res));
	post_accept(st);
}

static void
on_connect(struct tcp_state *st, struct tcp_conn *c, int res)
{
	struct dp_peer *p = c->peer;

	if (c->closing)
		return;
	if (res < 0) {
		char why[64];

		snprintf(why, sizeof(why), "connect: %s", strerror(-res));
		conn_close(st, c, res);
		if (p != NULL)
			dp_on_connect_failed(st->dp, p, res, why);
		return;
	}
	c->connected = 1;
	post_watch(st, c);
	dp_on_connected(st->dp, p);
}

static int
tcp_connect(void *state, struct dp_peer *p)
{
	struct tcp_state *st = state;
	struct io_uring_sqe *sqe;
	struct tcp_peer *tp;
	struct tcp_conn *c;
	int fd;

	if ((tp = tpeer(p)) == NULL)
		return -ENOMEM;
	if (tp->out != NULL)
		conn_close(st, tp->out, -ECONNRESET);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if ((c = conn_new(st, fd, 1)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	c->sa.sin_family = AF_INET;
	c->sa.sin_port = htons(p->port);
	if (inet_pton(AF_INET, p->addr, &c->sa.sin_addr) != 1) {
		struct addrinfo hints = { .ai_family = AF_INET }, *ai;

		if (getaddrinfo(p->addr, NULL, &hints, &ai) != 0) {
			log_warnx("dp.tcp: peer %u: cannot resolve %s", p->id,
			    p->addr);
			conn_close(st, c, -EHOSTUNREACH);
			return -EHOSTUNREACH;
		}
		c->sa.sin_addr = ((struct sockaddr_in *)(void *)
		    ai->ai_addr)->sin_addr;
		freeaddrinfo(ai);
	}
	c->peer = p;
	tp->out = c;
	if ((sqe = get_sqe(st)) == NULL) {
		conn_close(st, c, -EBUSY);
		return -EBUSY;
	}
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&c->sa,
	    sizeof(c->sa));
	io_uring_sqe_set_data(sqe, &c->rq_conn);
	c->pending++;
	io_uring_submit(&st->ring);
	return 0;
}

static void
tcp_disconnect(void *state, struct dp_peer *p)
{
	struct tcp_state *st = state;
	struct tcp_peer *tp = PEER_ST(p);

	if (tp == NULL)
		return;
	if (tp->out != NULL)
		conn_close(st, tp->out, -ECONNRESET);
	if (tp->in != NULL)
		conn_close(st, tp->in, -ECONNRESET);
	io_uring_submit(&st->ring);
}

static int
tcp_poll(void *state)
{
	struct tcp_state *st = state;
	struct io_uring_cqe *cqe;
	struct tcp_conn *c, *next;
	uint64_t v;
	int n = 0;

	if (read(st->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("dp.tcp: eventfd");
	while (io_uring_peek_cqe(&st->ring, &cqe) == 0) {
		struct ureq *rq = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		unsigned flags = cqe->flags;

		io_uring_cqe_seen(&st->ring, cqe);
		n++;
		if (rq == NULL)
			continue;
		if (rq->kind == UREQ_ACCEPT) {
			on_accept(st, res);
			continue;
		}
		if (rq->kind == UREQ_EXT) {
			st->ext_armed = 0;
			continue;
		}
		c = rq->c;
		/* a zero-copy send completes twice: result, then notification */
		if (!(flags & IORING_CQE_F_MORE))
			c->pending--;
		switch (rq->kind) {
		case UREQ_CONNECT:
			on_connect(st, c, res);
			break;
		case UREQ_SEND:
			on_send(st, c, res, flags);
			break;
		case UREQ_RECV:
			on_recv(st, c, res);
			break;
		case UREQ_PLACE:
			if (c->closing)
				break;
			if (res < 0)
				conn_broken(st, c, res, "receive");
			else
				place_more(st, c);
			break;
		case UREQ_WATCH:
			/* outbound connections carry nothing our way */
			if (!c->closing)
				conn_broken(st, c, res < 0 ? res : 0,
				    "connection");
			break;
		default:
			break;
		}
	}
	/* connections closed and drained */
	for (c = LIST_FIRST(&st->conns); c != NULL; c = next) {
		next = LIST_NEXT(c, entry);
		if (c->closing && c->pending == 0)
			conn_free(c);
	}
	io_uring_submit(&st->ring);
	return n;
}

static int
tcp_wait(void *state, int fd, int timeout_ms)
{
	struct tcp_state *st = state;
	struct __kernel_timespec ts = { .tv_sec = timeout_ms / 1000,
	    .tv_nsec = (long long)(timeout_ms % 1000) * 1000000 };
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int r;

	if (fd >= 0 && !st->ext_armed && (sqe = get_sqe(st)) != NULL) {
		io_uring_prep_poll_add(sqe, fd, POLLIN);
		io_uring_sqe_set_data(sqe, &st->rq_ext);
		st->ext_armed = 1;
	}
	r = io_uring_submit_and_wait_timeout(&st->ring, &cqe, 1, &ts, NULL);
	return r < 0 && r != -ETIME && r != -EINTR ? r : 0;
}

static int
tcp_fd(void *state)
{
	return ((struct tcp_state *)state)->efd;
}

static int
tcp_init(struct dp *dp, void **state)
{
	struct tcp_state *st;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int one = 1, r;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return -ENOMEM;
	st->dp = dp;
	st->lfd = st->efd = -1;
	LIST_INIT(&st->conns);
	st->rq_accept.kind = UREQ_ACCEPT;
	st->rq_ext.kind = UREQ_EXT;
	st->zc = dp->conf.tcp_zerocopy == 1;
	if ((r = io_uring_queue_init(TCP_RING_ENTRIES, &st->ring, 0)) < 0) {
		log_warnx("dp.tcp: io_uring_queue_init: %s", strerror(-r));
		free(st);
		return r;
	}
	if ((st->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    io_uring_register_eventfd(&st->ring, st->efd) < 0) {
		r = -errno;
		log_warn("dp.tcp: eventfd");
		goto fail_ring;
	}
	sa.sin_port = htons(dp->conf.port);
	if (inet_pton(AF_INET, dp->conf.listen, &sa.sin_addr) != 1) {
		log_warnx("dp.tcp: listen address %s: not an IPv4 address",
		    dp->conf.listen);
		r = -EINVAL;
		goto fail_efd;
	}
	if ((st->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(st->lfd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) < 0 ||
	    bind(st->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(st->lfd, 128) < 0) {
		r = -errno;
		log_warn("dp.tcp: listen on %s:%u", dp->conf.listen,
		    dp->conf.port);
		goto fail_sock;
	}
	post_accept(st);
	io_uring_submit(&st->ring);
	*state = st;
	return 0;

fail_sock:
	if (st->lfd >= 0)
		close(st->lfd);
fail_efd:
	close(st->efd);
fail_ring:
	io_uring_queue_exit(&st->ring);
	free(st);
	return r;
}

static void
tcp_fini(void *state)
{
	struct tcp_state *st = state;
	struct tcp_conn *c, *next;

	for (c = LIST_FIRST(&st->conns); c != NULL; c = next) {
		next = LIST_NEXT(c, entry);
		conn_close(st, c, -ECANCELED);	/* may free c */
	}
	for (int i = 0; i < st->dp->npeers; i++) {
		free(PEER_ST(st->dp->peers[i]));
		PEER_ST(st->dp->peers[i]) = NULL;
	}
	close(st->lfd);
	/* exiting the ring cancels what is in flight */
	io_uring_queue_exit(&st->ring);
	/* conn_close() above reported every pulled message */
	while ((c = LIST_FIRST(&st->conns)) != NULL)
		conn_free(c);
	close(st->efd);
	free(st);
}

const struct tp_ops tp_tcp_ops = {
	.name = "tcp",
	.backend = DP_BACKEND_TCP,
	.caps = TP_CAP_ZEROCOPY_TX | TP_CAP_RELIABLE | TP_CAP_POLLFD,
	.init = tcp_init,
	.fini = tcp_fini,
	.connect = tcp_connect,
	.kick = tcp_kick,
	.disconnect = tcp_disconnect,
	.fd = tcp_fd,
	.wait = tcp_wait,
	.poll = tcp_poll,
};
