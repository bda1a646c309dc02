/*
 * client.c: libarceus-dp, the worker's side of dataplane.sock and of the
 * arena; see arceus_dp.h.
 *
 * Operation ids run from 0 up; at most DP_RING_SLOTS are pending, so the
 * completion ring never overflows and a completion finds its place in
 * tab[id % DP_RING_SLOTS].  Completions may come in any order across
 * groups; each waits in its place until arc_dp_wait/test takes it.
 *
 * Tensor space: the region the dataplane gave us, carved first fit by a
 * small block list kept here (worker memory, not the arena).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "arceus_dp.h"
#include "dp_abi.h"
#include "msg.h"
#include "ring.h"

#define CLIENT_RPC_MS	5000	/* a local request gets its answer within */

enum slot_state { SLOT_FREE = 0, SLOT_PENDING, SLOT_DONE };

struct blk {
	uint64_t	off;
	uint64_t	len;
	int		used;
};

struct arc_dp {
	int		 fd;
	struct msgbuf	*mb;
	uint32_t	 node_id;
	int		 alive;
	uint8_t		*base;
	uint64_t	 size;
	uint64_t	 roff, rlen;
	struct ring	 req, cpl;
	int		 req_efd, cpl_efd;
	uint64_t	 next_id;
	uint32_t	 epoch;		/* stamped on every request; 0: any */
	int		 pending;
	struct {
		uint64_t	id;
		int		state;
		struct dp_cpl	c;
	} tab[DP_RING_SLOTS];
	struct blk	*blk;
	int		 nblk, capblk;
};

static int
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* Reads the next record into *m (blocking up to ms). @return 0 or -errno */
static int
rpc_recv(int fd, struct msgbuf *mb, struct msg *m, int ms)
{
	int end = now_ms() + ms, r;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int left;

		if ((r = msg_get(mb, m)) != 0)
			return r < 0 ? r : 0;
		if ((left = end - now_ms()) <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			return -errno;
		n = msgbuf_read(mb, fd);
		if (n == 0)
			return -ENOTCONN;
		if (n < 0 && n != -EAGAIN)
			return (int)n;
	}
}

/* Waits for IMSG_OK or IMSG_ERROR. @return 0 or -errno from the answer */
static int
rpc_status(int fd, struct msgbuf *mb)
{
	struct imsg_error e;
	struct msg m;
	int r;

	if ((r = rpc_recv(fd, mb, &m, CLIENT_RPC_MS)) < 0)
		return r;
	if (m.type == IMSG_OK)
		return 0;
	if (m.type == IMSG_ERROR && m.len == sizeof(e)) {
		memcpy(&e, m.data, sizeof(e));
		return e.err > 0 ? -e.err : -EIO;
	}
	return -EPROTO;
}

static int
sock_connect(const char *path, uint32_t role, struct msgbuf *mb,
    uint32_t *node_id, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct imsg_hello h;
	const char *why;
	struct msg m;
	int fd, r;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		r = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return r;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s (is arceus-dataplane running?)",
		    path, strerror(errno));
		close(fd);
		return r;
	}
	if ((r = msg_send_hello(fd, role, 0, program_invocation_short_name))
	    < 0 || (r = rpc_recv(fd, mb, &m, CLIENT_RPC_MS)) < 0 ||
	    (r = msg_check_hello(&m, &h, &why)) < 0) {
		snprintf(err, errlen, "%s: hello: %s", path, r == -EPROTO ?
		    why : strerror(-r));
		close(fd);
		return r;
	}
	if (node_id != NULL)
		*node_id = h.node_id;
	return fd;
}

struct arc_dp *
arc_dp_attach(const char *sock_path, size_t region_bytes, char *err,
    size_t errlen)
{
	struct imsg_dp_attach at = { .region_bytes = region_bytes };
	struct imsg_dp_arena ar;
	struct arc_dp *dp;
	struct msg m;
	int r;

	if ((dp = calloc(1, sizeof(*dp))) == NULL ||
	    (dp->mb = malloc(sizeof(*dp->mb))) == NULL) {
		free(dp);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	dp->req_efd = dp->cpl_efd = -1;
	msgbuf_init(dp->mb);
	if ((dp->fd = sock_connect(sock_path, IMSG_ROLE_WORKER, dp->mb,
	    &dp->node_id, err, errlen)) < 0)
		goto fail;
	if ((r = msg_send(dp->fd, IMSG_DP_ATTACH, &at, sizeof(at), NULL, 0,
	    CLIENT_RPC_MS)) < 0 ||
	    (r = rpc_recv(dp->fd, dp->mb, &m, CLIENT_RPC_MS)) < 0) {
		snprintf(err, errlen, "attach: %s", strerror(-r));
		goto fail_sock;
	}
	if (m.type == IMSG_ERROR) {
		struct imsg_error e;

		memcpy(&e, m.data, m.len < sizeof(e) ? m.len : sizeof(e));
		e.text[sizeof(e.text) - 1] = '\0';
		snprintf(err, errlen, "attach refused: %s", e.text);
		goto fail_sock;
	}
	if (m.type != IMSG_DP_ARENA || m.len != sizeof(ar) || m.nfds != 3) {
		for (int i = 0; i < m.nfds; i++)
			close(m.fds[i]);
		snprintf(err, errlen, "attach: unexpected answer");
		goto fail_sock;
	}
	memcpy(&ar, m.data, sizeof(ar));
	dp->req_efd = m.fds[1];
	dp->cpl_efd = m.fds[2];
	dp->base = mmap(NULL, ar.arena_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED, m.fds[0], 0);
	close(m.fds[0]);
	if (dp->base == MAP_FAILED) {
		snprintf(err, errlen, "mmap arena: %s", strerror(errno));
		dp->base = NULL;
		goto fail_sock;
	}
	if (ar.ring_slots != DP_RING_SLOTS ||
	    ar.region_off + ar.region_len > ar.arena_size ||
	    ar.cpl_ring_off + DP_RING_BYTES(DP_RING_SLOTS, 64) >
	    ar.arena_size) {
		snprintf(err, errlen, "attach: arena layout mismatch");
		goto fail_map;
	}
	dp->size = ar.arena_size;
	dp->roff = ar.region_off;
	dp->rlen = ar.region_len;
	ring_attach(&dp->req, dp->base + ar.req_ring_off, DP_RING_SLOTS,
	    sizeof(struct dp_req), 1);
	ring_attach(&dp->cpl, dp->base + ar.cpl_ring_off, DP_RING_SLOTS,
	    sizeof(struct dp_cpl), 0);
	if ((dp->blk = malloc(sizeof(*dp->blk) * 16)) == NULL)
		goto fail_map;
	dp->capblk = 16;
	dp->blk[0] = (struct blk){ dp->roff, dp->rlen, 0 };
	dp->nblk = 1;
	dp->alive = 1;
	return dp;

fail_map:
	munmap(dp->base, ar.arena_size);
fail_sock:
	close(dp->fd);
fail:
	if (dp->req_efd >= 0)
		close(dp->req_efd);
	if (dp->cpl_efd >= 0)
		close(dp->cpl_efd);
	msgbuf_fini(dp->mb);
	free(dp->mb);
	free(dp);
	return NULL;
}

void
arc_dp_detach(struct arc_dp *dp)
{
	if (dp == NULL)
		return;
	if (dp->base != NULL)
		munmap(dp->base, dp->size);
	close(dp->fd);
	close(dp->req_efd);
	close(dp->cpl_efd);
	msgbuf_fini(dp->mb);
	free(dp->mb);
	free(dp->blk);
	free(dp);
}

uint32_t
arc_dp_node_id(const struct arc_dp *dp)
{
	return dp->node_id;
}

int
arc_dp_alive(const struct arc_dp *dp)
{
	return dp->alive;
}

int
arc_dp_fd(const struct arc_dp *dp)
{
	return dp->cpl_efd;
}

void *
arc_dp_alloc(struct arc_dp *dp, size_t bytes)
{
	uint64_t want = (bytes + DP_ALIGN - 1) & ~(uint64_t)(DP_ALIGN - 1);
	int i;

	if (want == 0)
		want = DP_ALIGN;
	for (i = 0; i < dp->nblk; i++)
		if (!dp->blk[i].used && dp->blk[i].len >= want)
			break;
	if (i == dp->nblk) {
		errno = ENOMEM;
		return NULL;
	}
	if (dp->blk[i].len > want) {
		if (dp->nblk == dp->capblk) {
			struct blk *nb = realloc(dp->blk, sizeof(*nb) *
			    (size_t)dp->capblk * 2);

			if (nb == NULL)
				return NULL;
			dp->blk = nb;
			dp->capblk *= 2;
		}
		memmove(&dp->blk[i + 2], &dp->blk[i + 1], sizeof(*dp->blk) *
		    (size_t)(dp->nblk - i - 1));
		dp->blk[i + 1] = (struct blk){ dp->blk[i].off + want,
		    dp->blk[i].len - want, 0 };
		dp->blk[i].len = want;
		dp->nblk++;
	}
	dp->blk[i].used = 1;
	return dp->base + dp->blk[i].off;
}

void
arc_dp_free(struct arc_dp *dp, void *p)
{
	uint64_t off;
	int i;

	if (p == NULL)
		return;
	off = (uint64_t)((uint8_t *)p - dp->base);
	for (i = 0; i < dp->nblk; i++)
		if (dp->blk[i].off == off && dp->blk[i].used)
			break;
	if (i == dp->nblk)
		return;
	dp->blk[i].used = 0;
	if (i + 1 < dp->nblk && !dp->blk[i + 1].used) {
		dp->blk[i].len += dp->blk[i + 1].len;
		memmove(&dp->blk[i + 1], &dp->blk[i + 2], sizeof(*dp->blk) *
		    (size_t)(dp->nblk - i - 2));
		dp->nblk--;
	}
	if (i > 0 && !dp->blk[i - 1].used) {
		dp->blk[i - 1].len += dp->blk[i].len;
		memmove(&dp->blk[i], &dp->blk[i + 1], sizeof(*dp->blk) *
		    (size_t)(dp->nblk - i - 1));
		dp->nblk--;
	}
}

/* Offset of [p, p + bytes) in the arena if inside our region, else -1. */
static int64_t
region_off(const struct arc_dp *dp, const void *p, uint64_t bytes)
{
	uint64_t off;

	if (p == NULL || (const uint8_t *)p < dp->base)
		return -1;
	off = (uint64_t)((const uint8_t *)p - dp->base);
	if (off < dp->roff || bytes > dp->rlen ||
	    off - dp->roff > dp->rlen - bytes)
		return -1;
	return (int64_t)off;
}

int64_t
arc_dp_post(struct arc_dp *dp, const struct arc_dp_op *op)
{
	struct dp_req rq;
	int64_t off, aux = (int64_t)DP_NO_OFF;
	uint64_t one = 1;
	int slot, r;

	if (!dp->alive)
		return -ENOTCONN;
	if ((off = region_off(dp, op->buf, op->count * 4)) < 0 ||
	    (op->residual != NULL && (aux = region_off(dp, op->residual,
	    op->count * 4)) < 0))
		return -EFAULT;
	slot = (int)(dp->next_id % DP_RING_SLOTS);
	if (dp->pending >= DP_RING_SLOTS || dp->tab[slot].state != SLOT_FREE)
		return -EAGAIN;
	memset(&rq, 0, sizeof(rq));
	rq.id = dp->next_id;
	rq.opcode = (uint8_t)op->opcode;
	rq.comp = (uint8_t)op->comp;
	rq.group = op->group;
	rq.peer = op->peer;
	rq.divisor = op->divisor;
	rq.ratio = op->ratio;
	rq.off = (uint64_t)off;
	rq.count = op->count;
	rq.aux_off = op->residual != NULL ? (uint64_t)aux : DP_NO_OFF;
	rq.epoch = dp->epoch;
	if ((r = ring_enqueue(&dp->req, &rq)) < 0)
		return r == -ENOBUFS ? -EAGAIN : r;
	dp->tab[slot].id = dp->next_id;
	dp->tab[slot].state = SLOT_PENDING;
	dp->pending++;
	if (write(dp->req_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return (int64_t)dp->next_id++;
}

/* The dataplane went away: every pending operation fails. */
static void
mark_dead(struct arc_dp *dp)
{
	dp->alive = 0;
	for (int i = 0; i < DP_RING_SLOTS; i++)
		if (dp->tab[i].state == SLOT_PENDING) {
			memset(&dp->tab[i].c, 0, sizeof(dp->tab[i].c));
			dp->tab[i].c.id = dp->tab[i].id;
			dp->tab[i].c.status = -ENOTCONN;
			dp->tab[i].state = SLOT_DONE;
		}
}

static void
drain(struct arc_dp *dp)
{
	struct dp_cpl c;
	uint64_t v;
	int r;

	if (read(dp->cpl_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	while ((r = ring_dequeue(&dp->cpl, &c)) == 1) {
		int slot = (int)(c.id % DP_RING_SLOTS);

		if (dp->tab[slot].state == SLOT_PENDING &&
		    dp->tab[slot].id == c.id) {
			dp->tab[slot].c = c;
			dp->tab[slot].state = SLOT_DONE;
		}
	}
	if (r < 0)
		mark_dead(dp);	/* a corrupt ring: nothing more will come */
}

/* Sees whether the socket says the dataplane is gone. */
static void
check_sock(struct arc_dp *dp)
{
	struct pollfd pfd = { .fd = dp->fd, .events = POLLIN };
	ssize_t n;

	if (!dp->alive || poll(&pfd, 1, 0) <= 0)
		return;
	n = msgbuf_read(dp->mb, dp->fd);
	if (n == 0 || (n < 0 && n != -EAGAIN))
		mark_dead(dp);
	/* anything else it says here is not for us: drop it */
	dp->mb->len = dp->mb->off = 0;
	msgbuf_fini(dp->mb);
}

static int
take(struct arc_dp *dp, uint64_t id, struct arc_dp_cpl *cpl)
{
	int slot = (int)(id % DP_RING_SLOTS);

	if (dp->tab[slot].id != id || dp->tab[slot].state == SLOT_FREE)
		return -EINVAL;
	if (dp->tab[slot].state != SLOT_DONE)
		return 0;
	if (cpl != NULL) {
		cpl->id = id;
		cpl->status = dp->tab[slot].c.status;
		cpl->peer = dp->tab[slot].c.peer;
		cpl->wire_bytes = dp->tab[slot].c.wire_bytes;
		cpl->raw_bytes = dp->tab[slot].c.raw_bytes;
		cpl->count = dp->tab[slot].c.count;
		cpl->usec = dp->tab[slot].c.usec;
	}
	dp->tab[slot].state = SLOT_FREE;
	dp->pending--;
	return 1;
}

int
arc_dp_test(struct arc_dp *dp, uint64_t id, struct arc_dp_cpl *cpl)
{
	int r;

	drain(dp);
	if ((r = take(dp, id, cpl)) != 0)
		return r < 0 ? r : 1;
	check_sock(dp);
	r = take(dp, id, cpl);
	return r < 0 ? r : r;
}

int
arc_dp_wait(struct arc_dp *dp, uint64_t id, int timeout_ms,
    struct arc_dp_cpl *cpl)
{
	int end = now_ms() + timeout_ms, r;

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = dp->cpl_efd, .events = POLLIN },
			{ .fd = dp->fd, .events = POLLIN },
		};
		int left = -1;

		if ((r = arc_dp_test(dp, id, cpl)) != 0)
			return r < 0 ? r : 0;
		if (timeout_ms >= 0 && (left = end - now_ms()) <= 0)
			return -ETIMEDOUT;
		/* wake up now and then: a peer process may scribble */
		if (left < 0 || left > 1000)
			left = 1000;
		if (poll(pfd, 2, left) < 0 && errno != EINTR)
			return -errno;
	}
}

const char *
arc_dp_strerror(const struct arc_dp_cpl *cpl, char *buf, size_t len)
{
	if (cpl->status == 0)
		snprintf(buf, len, "ok");
	else if (cpl->status == -ENOTCONN && cpl->peer == 0)
		snprintf(buf, len, "dataplane unreachable (%s)",
		    strerror(ENOTCONN));
	else if (cpl->peer != 0)
		snprintf(buf, len, "peer %u: %s", cpl->peer,
		    strerror(-cpl->status));
	else
		snprintf(buf, len, "%s", strerror(-cpl->status));
	return buf;
}

int
arc_dp_group(struct arc_dp *dp, uint16_t group, const uint32_t *members,
    int n)
{
	return arc_dp_set_group(dp->fd, group, members, n);
}

/* ---- control and tools ---- */

int
arc_dp_connect(const char *sock_path, uint32_t role, char *err,
    size_t errlen)
{
	struct msgbuf *mb = malloc(sizeof(*mb));
	int fd;

	if (mb == NULL)
		return -ENOMEM;
	msgbuf_init(mb);
	fd = sock_connect(sock_path, role, mb, NULL, err, errlen);
	msgbuf_fini(mb);
	free(mb);
	return fd;
}

/* Sends a request and runs fn on each answer until it returns <= 0. */
static int
rpc(int fd, uint16_t type, const void *p, uint32_t len,
    int (*fn)(const struct msg *m, void *arg), void *arg)
{
	struct msgbuf *mb = malloc(sizeof(*mb));
	struct msg m;
	int r;

	if (mb == NULL)
		return -ENOMEM;
	msgbuf_init(mb);
	if ((r = msg_send(fd, type, p, len, NULL, 0, CLIENT_RPC_MS)) < 0)
		goto out;
	if (fn == NULL) {
		r = rpc_status(fd, mb);
		goto out;
	}
	do {
		if ((r = rpc_recv(fd, mb, &m, CLIENT_RPC_MS * 12)) < 0)
			break;
		if (m.type == IMSG_ERROR && m.len == sizeof(struct imsg_error)) {
			struct imsg_error e;

			memcpy(&e, m.data, sizeof(e));
			r = e.err > 0 ? -e.err : -EIO;
			break;
		}
	} while ((r = fn(&m, arg)) > 0);
out:
	msgbuf_fini(mb);
	free(mb);
	return r;
}

struct links_arg {
	struct imsg_dp_link	*out;
	int			 max;
	int			 n;
};

static int
links_fn(const struct msg *m, void *arg)
{
	struct links_arg *a = arg;

	if (m->type == IMSG_DP_LINKS_END)
		return 0;
	if (m->type != IMSG_DP_LINK || m->len != sizeof(*a->out))
		return -EPROTO;
	if (a->n < a->max)
		memcpy(&a->out[a->n], m->data, sizeof(*a->out));
	a->n++;
	return 1;
}

int
arc_dp_links(int fd, struct imsg_dp_link *out, int max)
{
	struct links_arg a = { out, max, 0 };
	int r;

	if ((r = rpc(fd, IMSG_DP_LINKS, NULL, 0, links_fn, &a)) < 0)
		return r;
	return a.n < max ? a.n : max;
}

static int
one_link_fn(const struct msg *m, void *arg)
{
	if (m->type != IMSG_DP_LINK || m->len != sizeof(struct imsg_dp_link))
		return -EPROTO;
	memcpy(arg, m->data, sizeof(struct imsg_dp_link));
	return 0;
}

int
arc_dp_probe(int fd, uint32_t peer, uint32_t mbytes)
{
	struct imsg_dp_probe p = { .peer = peer, .mbytes = mbytes };
	struct imsg_dp_link l;

	return rpc(fd, IMSG_DP_PROBE, &p, sizeof(p), one_link_fn, &l);
}

void
arc_dp_set_epoch(struct arc_dp *dp, uint32_t epoch)
{
	dp->epoch = epoch;
}

int
arc_dp_set_peers(int fd, uint32_t epoch, const struct imsg_dp_peer *peers,
    int n)
{
	struct imsg_dp_peers p;

	if (n < 0 || n > IMSG_DP_MAX_PEERS)
		return -EINVAL;
	memset(&p, 0, sizeof(p));
	p.epoch = epoch;
	p.npeers = (uint32_t)n;
	memcpy(p.peers, peers, sizeof(*peers) * (size_t)n);
	return rpc(fd, IMSG_DP_PEERS, &p, sizeof(p), NULL, NULL);
}

int
arc_dp_set_group(int fd, uint16_t group, const uint32_t *members, int n)
{
	struct imsg_dp_group g;

	if (n < 1 || n > IMSG_DP_MAX_GROUP)
		return -EINVAL;
	memset(&g, 0, sizeof(g));
	g.group = group;
	g.nmembers = (uint32_t)n;
	memcpy(g.members, members, sizeof(*members) * (size_t)n);
	return rpc(fd, IMSG_DP_GROUP, &g, sizeof(g), NULL, NULL);
}

static int
status_fn(const struct msg *m, void *arg)
{
	if (m->type != IMSG_DP_STATUS || m->len != sizeof(struct imsg_dp_status))
		return -EPROTO;
	memcpy(arg, m->data, sizeof(struct imsg_dp_status));
	return 0;
}

int
arc_dp_status(int fd, struct imsg_dp_status *out)
{
	return rpc(fd, IMSG_DP_STATUS, NULL, 0, status_fn, out);
}
