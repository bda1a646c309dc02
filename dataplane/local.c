/*
 * local.c: dataplane.sock, the local side.  Workers attach and get the
 * arena, a ring pair and two eventfds; control (and arceus-dptool) set the
 * peer table, the epoch and groups, and read link state.
 *
 * Order on a connection: IMSG_HELLO first both ways, then requests, each
 * answered (IMSG_OK / IMSG_ERROR / the data asked for).  A sibling that
 * breaks the protocol is a bug in it: we log and drop its connection, never
 * exit (STYLE.md 3).
 *
 * A worker that dies (EOF) does not take anything down with it: what it
 * had posted still runs to the end, because the peers are in the middle of
 * the same collectives; its slot and region are released when the last of
 * its operations completes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "dataplane.h"

enum ltag_kind {
	LTAG_LISTEN = 1,
	LTAG_SOCK,
	LTAG_REQ,
};

struct ltag {
	enum ltag_kind	 kind;
	void		*obj;
};

struct lclient {
	TAILQ_ENTRY(lclient) entry;
	struct local	*l;
	int		 fd;		/* -1 once closed */
	struct msgbuf	*mb;
	int		 hello;		/* its hello came */
	struct imsg_hello h;
	struct ltag	 tag_sock;
	struct ltag	 tag_req;

	/* worker */
	int		 slot;		/* -1: not attached */
	uint64_t	 roff, rlen;	/* its region */
	struct ring	 req, cpl;
	int		 req_efd, cpl_efd;
	int		 inflight;	/* posted to the engine */
	struct dp_cpl	*pend;		/* completions the ring had no room for */
	int		 npend, cappend;
	int		 dead;		/* retired: memory freed by local_reap */
};

struct local {
	struct dp	*dp;
	struct arena	*a;
	int		 lfd;
	int		 epfd;
	char		 path[108];
	struct ltag	 tag_listen;
	TAILQ_HEAD(, lclient) clients;
	/*
	 * Retired clients.  An epoll batch may still hold events whose tags
	 * point into a client that an earlier event of the same batch closed
	 * (valgrind caught that read after free), so memory is freed only by
	 * local_reap(), after the batch.
	 */
	TAILQ_HEAD(, lclient) dead;
};

static void client_close(struct lclient *c, const char *why);
static int worker_drain(struct lclient *c);

struct local *
local_new(struct dp *dp, struct arena *a, const char *path, int epfd)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN };
	struct local *l;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->dp = dp;
	l->a = a;
	l->epfd = epfd;
	TAILQ_INIT(&l->clients);
	TAILQ_INIT(&l->dead);
	snprintf(l->path, sizeof(l->path), "%s", path);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((l->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) < 0)
		goto fail;
	unlink(path);	/* a stale socket of a previous run */
	if (bind(l->lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(path, 0660) < 0 || listen(l->lfd, 64) < 0)
		goto fail_sock;
	l->tag_listen = (struct ltag){ LTAG_LISTEN, l };
	ev.data.ptr = &l->tag_listen;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, l->lfd, &ev) < 0)
		goto fail_sock;
	return l;
fail_sock:
	{
		int e = errno;

		close(l->lfd);
		errno = e;
	}
fail:
	free(l);
	return NULL;
}

/* Releases what c holds and retires it; local_reap() frees the memory. */
static void
client_free(struct lclient *c)
{
	struct local *l = c->l;

	TAILQ_REMOVE(&l->clients, c, entry);
	if (c->slot >= 0) {
		arena_detach(l->a, c->slot, c->roff);
		close(c->req_efd);
		close(c->cpl_efd);
	}
	free(c->pend);
	c->pend = NULL;
	free(c->mb);
	c->mb = NULL;
	c->dead = 1;
	TAILQ_INSERT_TAIL(&l->dead, c, entry);
}

static void
local_reap(struct local *l)
{
	struct lclient *c;

	while ((c = TAILQ_FIRST(&l->dead)) != NULL) {
		TAILQ_REMOVE(&l->dead, c, entry);
		free(c);
	}
}

void
local_free(struct local *l)
{
	struct lclient *c;

	if (l == NULL)
		return;
	/* the engine is gone (dp_free ran every callback): no more posts */
	l->dp = NULL;
	while ((c = TAILQ_FIRST(&l->clients)) != NULL) {
		c->inflight = 0;
		if (c->fd >= 0)
			client_close(c, NULL);	/* frees it */
		else
			client_free(c);
	}
	local_reap(l);
	close(l->lfd);
	unlink(l->path);
	free(l);
}

int
local_nworkers(const struct local *l)
{
	const struct lclient *c;
	int n = 0;

	TAILQ_FOREACH(c, &l->clients, entry)
		n += c->slot >= 0 && c->fd >= 0;
	return n;
}

static void
client_close(struct lclient *c, const char *why)
{
	struct local *l = c->l;

	if (c->fd < 0)
		return;
	if (why != NULL)
		log_warnx("dp.local: %s[%u] (%s): %s", c->h.name[0] ?
		    c->h.name : "client", c->h.pid, c->slot >= 0 ? "worker" :
		    "control", why);
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	msgbuf_fini(c->mb);
	for (int i = 0; l->dp != NULL && i < l->dp->npeers; i++)
		if (l->dp->peers[i]->probe_waiter == c)
			l->dp->peers[i]->probe_waiter = NULL;
	if (c->slot >= 0) {
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->req_efd, NULL);
		/* what it posted before dying still runs (peers need it) */
		if (l->dp != NULL)
			worker_drain(c);
	}
	if (c->inflight == 0)
		client_free(c);
}

static void
reply_error(struct lclient *c, int err, const char *text)
{
	if (msg_send_error(c->fd, -err, 0, text) < 0)
		client_close(c, "cannot answer");
}

static void
reply(struct lclient *c, uint16_t type, const void *p, uint32_t len)
{
	if (msg_send(c->fd, type, p, len, NULL, 0, 1000) < 0)
		client_close(c, "cannot answer");
}

static void
on_attach(struct lclient *c, const struct msg *m)
{
	struct local *l = c->l;
	struct imsg_dp_attach at;
	struct imsg_dp_arena ar;
	struct epoll_event ev = { .events = EPOLLIN };
	int fds[3], slot;

	if (m->len != sizeof(at) || c->slot >= 0) {
		client_close(c, "bad attach");
		return;
	}
	memcpy(&at, m->data, sizeof(at));
	if ((slot = arena_attach(l->a, at.region_bytes, &c->roff,
	    &c->rlen)) < 0) {
		reply_error(c, slot, slot == -ENOSPC ? "too many workers" :
		    "arena too small for the region asked");
		return;
	}
	c->slot = slot;
	c->req_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	c->cpl_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ring_attach(&c->req, l->a->base + arena_req_ring_off(slot),
	    DP_RING_SLOTS, sizeof(struct dp_req), 0);
	ring_attach(&c->cpl, l->a->base + arena_cpl_ring_off(slot),
	    DP_RING_SLOTS, sizeof(struct dp_cpl), 1);
	c->tag_req = (struct ltag){ LTAG_REQ, c };
	ev.data.ptr = &c->tag_req;
	if (c->req_efd < 0 || c->cpl_efd < 0 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, c->req_efd, &ev) < 0) {
		reply_error(c, -errno, "eventfd");
		return;
	}
	memset(&ar, 0, sizeof(ar));
	ar.arena_size = l->a->size;
	ar.region_off = c->roff;
	ar.region_len = c->rlen;
	ar.req_ring_off = arena_req_ring_off(slot);
	ar.cpl_ring_off = arena_cpl_ring_off(slot);
	ar.slot = (uint32_t)slot;
	ar.node_id = l->dp->conf.node_id;
	ar.epoch = l->dp->conf.epoch;
	ar.ring_slots = DP_RING_SLOTS;
	fds[0] = l->a->fd;
	fds[1] = c->req_efd;
	fds[2] = c->cpl_efd;
	if (msg_send(c->fd, IMSG_DP_ARENA, &ar, sizeof(ar), fds, 3, 1000) < 0)
		client_close(c, "cannot send the arena");
	else
		log_info("dp.local: worker %s[%u] attached: slot %d, %llu MiB",
		    c->h.name, c->h.pid, slot,
		    (unsigned long long)(c->rlen >> 20));
}

static void
on_links(struct lclient *c)
{
	struct dp *dp = c->l->dp;
	struct imsg_dp_link lk;

	for (int i = 0; i < dp->npeers && c->fd >= 0; i++) {
		peer_fill_link(dp, dp->peers[i], &lk);
		reply(c, IMSG_DP_LINK, &lk, sizeof(lk));
	}
	if (c->fd >= 0)
		reply(c, IMSG_DP_LINKS_END, NULL, 0);
}

void
local_probe_done(void *waiter, struct dp_peer *p)
{
	struct lclient *c = waiter;
	struct imsg_dp_link lk;

	if (c->fd < 0)
		return;
	if (p->state != DP_PEER_UP) {
		reply_error(c, -ENOTCONN, "link went down during the probe");
		return;
	}
	peer_fill_link(c->l->dp, p, &lk);
	reply(c, IMSG_DP_LINK, &lk, sizeof(lk));
}

static void
on_status(struct lclient *c)
{
	struct dp *dp = c->l->dp;
	struct imsg_dp_status s;

	memset(&s, 0, sizeof(s));
	s.node_id = dp->conf.node_id;
	s.epoch = dp->conf.epoch;
	s.nworkers = (uint32_t)local_nworkers(c->l);
	s.npeers = (uint32_t)dp->npeers;
	s.ops_done = dp->stats.ops_done;
	s.ops_failed = dp->stats.ops_failed;
	s.rx_bad = dp->stats.rx_bad;
	s.arena_size = c->l->a->size;
	s.tx_zerocopy = dp->stats.tx_zerocopy;
	s.tx_copied = dp->stats.tx_copied;
	if (dp->ntp == 0)
		snprintf(s.backend, sizeof(s.backend), "none");
	else
		tp_names(dp->running, s.backend, sizeof(s.backend));
	reply(c, IMSG_DP_STATUS, &s, sizeof(s));
}

static void
dispatch(struct lclient *c, const struct msg *m)
{
	struct dp *dp = c->l->dp;
	const char *why;
	int r;

	if (!c->hello) {
		if (msg_check_hello(m, &c->h, &why) < 0) {
			msg_send_error(c->fd, EPROTO, 0, why);
			client_close(c, why);
			return;
		}
		c->hello = 1;
		if (msg_send_hello(c->fd, 0, dp->conf.node_id,
		    "arceus-dataplane") < 0)
			client_close(c, "cannot answer hello");
		return;
	}
	switch (m->type) {
	case IMSG_DP_ATTACH:
		on_attach(c, m);
		break;
	case IMSG_DP_GROUP: {
		struct imsg_dp_group g;

		if (m->len != sizeof(g)) {
			client_close(c, "bad group message");
			return;
		}
		memcpy(&g, m->data, sizeof(g));
		if (g.nmembers > IMSG_DP_MAX_GROUP || g.group > 65535) {
			client_close(c, "bad group message");
			return;
		}
		if ((r = group_set(dp, g.group, g.members,
		    (int)g.nmembers)) < 0)
			reply_error(c, r, "group refused");
		else
			reply(c, IMSG_OK, NULL, 0);
		break;
	}
	case IMSG_DP_PEERS: {
		struct imsg_dp_peers p;

		if (m->len != sizeof(p)) {
			client_close(c, "bad peers message");
			return;
		}
		memcpy(&p, m->data, sizeof(p));
		if (p.npeers > IMSG_DP_MAX_PEERS ||
		    (r = peer_set_table(dp, p.epoch, p.peers,
		    (int)p.npeers)) < 0)
			reply_error(c, -EINVAL, "peer table refused");
		else
			reply(c, IMSG_OK, NULL, 0);
		break;
	}
	case IMSG_DP_LINKS:
		on_links(c);
		break;
	case IMSG_DP_PROBE: {
		struct imsg_dp_probe pr;
		struct dp_peer *p;

		if (m->len != sizeof(pr)) {
			client_close(c, "bad probe message");
			return;
		}
		memcpy(&pr, m->data, sizeof(pr));
		if ((p = peer_find(dp, pr.peer)) == NULL)
			reply_error(c, -ENOENT, "no such peer");
		else if ((r = peer_probe(dp, p, (uint64_t)(pr.mbytes ?
		    (pr.mbytes > 1024 ? 1024 : pr.mbytes) : 16) << 20,
		    c)) < 0)
			reply_error(c, r, "cannot probe");
		break;
	}
	case IMSG_DP_STATUS:
		on_status(c);
		break;
	default:
		client_close(c, "unknown message type");
		break;
	}
}

static void
on_sock(struct lclient *c)
{
	struct msg m;
	ssize_t n;
	int r;

	for (;;) {
		n = msgbuf_read(c->mb, c->fd);
		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			client_close(c, n == 0 ? NULL : "read error");
			return;
		}
		while (c->fd >= 0 && (r = msg_get(c->mb, &m)) != 0) {
			if (r < 0) {
				client_close(c, "malformed record");
				return;
			}
			/* nobody sends us fds */
			for (int i = 0; i < m.nfds; i++)
				close(m.fds[i]);
			dispatch(c, &m);
		}
		if (c->fd < 0)
			return;
	}
}

static void
on_listen(struct local *l)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct lclient *c;
	int fd;

	while ((fd = accept4(l->lfd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) >= 0) {
		if ((c = calloc(1, sizeof(*c))) == NULL ||
		    (c->mb = malloc(sizeof(*c->mb))) == NULL) {
			free(c);
			close(fd);
			continue;
		}
		c->l = l;
		c->fd = fd;
		c->slot = -1;
		c->req_efd = c->cpl_efd = -1;
		msgbuf_init(c->mb);
		c->tag_sock = (struct ltag){ LTAG_SOCK, c };
		ev.data.ptr = &c->tag_sock;
		TAILQ_INSERT_TAIL(&l->clients, c, entry);
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			client_close(c, "epoll");
	}
}

static void
cpl_push(struct lclient *c, const struct dp_cpl *cp)
{
	uint64_t one = 1;

	if (c->npend == 0 && ring_enqueue(&c->cpl, cp) == 0)
		goto ring;
	if (c->npend == c->cappend) {
		int cap = c->cappend ? c->cappend * 2 : 16;
		struct dp_cpl *np = realloc(c->pend, sizeof(*np) *
		    (size_t)cap);

		if (np == NULL) {
			log_warnx("dp.local: completion lost (no memory)");
			return;
		}
		c->pend = np;
		c->cappend = cap;
	}
	c->pend[c->npend++] = *cp;
	return;
ring:
	if (c->fd >= 0 && write(c->cpl_efd, &one, sizeof(one)) < 0 &&
	    errno != EAGAIN)
		log_warn("dp.local: doorbell");
}

static void
on_op_done(struct dp_op *op, void *arg)
{
	struct lclient *c = arg;
	struct dp_cpl cp;

	memset(&cp, 0, sizeof(cp));
	cp.id = op->cookie;
	cp.status = op->status;
	cp.peer = op->err_peer;
	cp.wire_bytes = op->wire_bytes;
	cp.raw_bytes = op->raw_bytes;
	cp.count = op->a.opcode == ARC_DP_RECV ? op->recv_count :
	    op->a.count;
	cp.usec = (dp_now_ns() - op->t_post_ns) / 1000;
	c->inflight--;
	if (c->fd >= 0)
		cpl_push(c, &cp);
	else if (c->inflight == 0)
		client_free(c);		/* the last op of a dead worker */
}

/* Is [off, off + bytes) inside the worker's region? */
static int
in_region(const struct lclient *c, uint64_t off, uint64_t bytes)
{
	return off >= c->roff && off % 4 == 0 && bytes <= c->rlen &&
	    off - c->roff <= c->rlen - bytes;
}

static void
worker_post(struct lclient *c, const struct dp_req *rq)
{
	struct local *l = c->l;
	struct dp_op_args a;
	struct dp_cpl cp;
	int r = -EINVAL;

	memset(&a, 0, sizeof(a));
	if (rq->epoch != 0 && rq->epoch != l->dp->conf.epoch) {
		r = -ESTALE;		/* an old plan's work: see dp_req */
		goto fail;
	}
	if (rq->count > UINT32_MAX || !in_region(c, rq->off, rq->count * 4) ||
	    (rq->aux_off != DP_NO_OFF && !in_region(c, rq->aux_off,
	    rq->count * 4)))
		goto fail;
	a.opcode = rq->opcode;
	a.comp = rq->comp;
	a.ratio = rq->ratio;
	a.divisor = rq->divisor;
	a.group = rq->group;
	a.peer = rq->peer;
	a.buf = (float *)(void *)(l->a->base + rq->off);
	a.count = rq->count;
	a.resid = rq->aux_off == DP_NO_OFF ? NULL :
	    (float *)(void *)(l->a->base + rq->aux_off);
	c->inflight++;
	if ((r = dp_post(l->dp, &a, on_op_done, c, rq->id)) == 0)
		return;
	c->inflight--;
fail:
	memset(&cp, 0, sizeof(cp));
	cp.id = rq->id;
	cp.status = r;
	cpl_push(c, &cp);
}

/* Posts what the worker queued. @return 0 or -EBADMSG (corrupt ring) */
static int
worker_drain(struct lclient *c)
{
	struct dp_req rq;
	int r;

	c->inflight++;		/* keep c while we post */
	while ((r = ring_dequeue(&c->req, &rq)) == 1)
		worker_post(c, &rq);
	c->inflight--;
	return r < 0 ? r : 0;
}

static void
service(struct local *l)
{
	struct lclient *c, *next;
	int r;

	for (c = TAILQ_FIRST(&l->clients); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->slot < 0)
			continue;
		/* completions that waited for room */
		while (c->npend > 0 && c->fd >= 0 &&
		    ring_enqueue(&c->cpl, &c->pend[0]) == 0) {
			uint64_t one = 1;

			memmove(c->pend, c->pend + 1, sizeof(*c->pend) *
			    (size_t)--c->npend);
			if (write(c->cpl_efd, &one, sizeof(one)) < 0)
				break;
		}
		r = worker_drain(c);
		if (r < 0 && c->fd >= 0) {
			client_close(c, "request ring corrupt");
			continue;
		}
		if (c->fd < 0 && c->inflight == 0)
			client_free(c);
	}
}

/* After an event batch and engine progress: drain rings, free retirees. */
void
local_service(struct local *l)
{
	service(l);
	local_reap(l);
}

void
local_event(struct local *l, void *tag, uint32_t events)
{
	struct ltag *t = tag;
	struct lclient *c;
	uint64_t v;

	(void)events;
	switch (t->kind) {
	case LTAG_LISTEN:
		on_listen(l);
		break;
	case LTAG_SOCK:
		c = t->obj;
		if (c->fd >= 0)		/* not closed earlier in this batch */
			on_sock(c);
		break;
	case LTAG_REQ:
		c = t->obj;
		if (c->dead)
			break;
		if (read(c->req_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			log_warn("dp.local: doorbell");
		service(l);	/* not local_service: the batch goes on */
		break;
	}
}
