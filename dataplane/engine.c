/*
 * engine.c: struct dp, one node's engine: pools, the per-peer send queues
 * and the progress loop.  Everything runs on one thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "dataplane.h"

uint64_t
dp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t
random_boot_id(void)
{
	uint64_t v = 0;
	int fd;

	if ((fd = open("/dev/urandom", 0)) >= 0) {
		if (read(fd, &v, sizeof(v)) != sizeof(v))
			v = 0;
		close(fd);
	}
	return v ^ dp_now_ns() ^ ((uint64_t)getpid() << 32);
}

struct dp *
dp_new(const struct dp_conf *conf)
{
	struct dp *dp;

	if (conf->node_id == 0 || conf->chunk_bytes < 4096 ||
	    conf->chunk_bytes > WIRE_MAX_PAYLOAD / 2) {
		errno = EINVAL;
		return NULL;
	}
	if ((dp = calloc(1, sizeof(*dp))) == NULL)
		return NULL;
	dp->conf = *conf;
	dp->conf.chunk_bytes &= ~(size_t)3;
	dp->boot_id = random_boot_id();
	TAILQ_INIT(&dp->groups);
	TAILQ_INIT(&dp->all_ops);
	TAILQ_INIT(&dp->stash);
	TAILQ_INIT(&dp->future);
	TAILQ_INIT(&dp->msg_free);
	/* room for the largest encoding of a chunk (sparse is 2x) */
	dp->buf_size = wire_codec_max(WIRE_CODEC_SPARSE,
	    (uint32_t)(dp->conf.chunk_bytes / 4));
	if (dp->buf_size < DP_PROBE_CHUNK)
		dp->buf_size = DP_PROBE_CHUNK;
	dp->now_ns = dp_now_ns();
	dp->wfd = dp->wfd_ext = -1;
	return dp;
}

void
dp_free(struct dp *dp)
{
	struct dp_stash *s;
	struct tp_msg *m;
	struct dp_op *op;

	if (dp == NULL)
		return;
	coll_fail_peer(dp, NULL, -ECANCELED);
	for (int i = 0; i < dp->npeers; i++)
		while ((m = dp_tx_pull(dp, dp->peers[i])) != NULL)
			dp_on_sent(dp, dp->peers[i], m, -ECANCELED);
	/* each reports what it had pulled */
	for (int i = 0; i < dp->ntp; i++)
		dp->tps[i].ops->fini(dp->tps[i].st);
	dp->ntp = 0;
	dp->running = 0;
	if (dp->wfd >= 0)
		close(dp->wfd);
	TAILQ_FOREACH(op, &dp->all_ops, all) {
		op->tx_inflight = 0;
		op->finished = 1;
	}
	coll_reap(dp);
	group_clear_all(dp);
	for (int i = 0; i < dp->npeers; i++)
		free(dp->peers[i]);
	while ((s = TAILQ_FIRST(&dp->stash)) != NULL) {
		TAILQ_REMOVE(&dp->stash, s, entry);
		free(s->payload);
		free(s);
	}
	while ((s = TAILQ_FIRST(&dp->future)) != NULL) {
		TAILQ_REMOVE(&dp->future, s, entry);
		free(s->payload);
		free(s);
	}
	while ((m = TAILQ_FIRST(&dp->msg_free)) != NULL) {
		TAILQ_REMOVE(&dp->msg_free, m, entry);
		free(m);
	}
	for (int i = 0; i < dp->nbuf_free; i++)
		free(dp->buf_free[i]);
	free(dp->buf_free);
	free(dp);
}

static void
register_memory(struct dp *dp, const struct dp_tp *t)
{
	int r;

	if (dp->mem_base == NULL || t->ops->mem_register == NULL)
		return;
	if ((r = t->ops->mem_register(t->st, dp->mem_base, dp->mem_len)) < 0)
		log_warnx("dp: %s: cannot register %zu bytes of shared memory "
		    "(%s): payloads are copied", t->ops->name, dp->mem_len,
		    strerror(-r));
}

void
dp_set_memory(struct dp *dp, void *base, size_t len)
{
	dp->mem_base = base;
	dp->mem_len = len;
	for (int i = 0; i < dp->ntp; i++)
		register_memory(dp, &dp->tps[i]);
}

void *
dp_tp_state(const struct dp *dp, const struct tp_ops *ops)
{
	for (int i = 0; i < dp->ntp; i++)
		if (dp->tps[i].ops == ops)
			return dp->tps[i].st;
	return NULL;
}

const struct tp_ops *
dp_pick_backend(struct dp *dp, struct dp_peer *p)
{
	char a[64], b[64];

	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < dp->ntp; i++) {
			uint32_t bit = dp->tps[i].ops->backend;

			if (p->backends != 0 && !(p->backends & bit))
				continue;
			if (p->tried & bit)
				continue;
			return dp->tps[i].ops;
		}
		/* every candidate failed once: start the round again */
		p->tried = 0;
	}
	/* the peer told us its backends and we run none of them */
	if (!p->nocommon_logged)
		log_warnx("dp: peer %u runs %s, this node %s: no backend in "
		    "common; set transport so that they share one", p->id,
		    tp_names(p->backends, a, sizeof(a)),
		    tp_names(dp->running, b, sizeof(b)));
	p->nocommon_logged = 1;
	/* what it runs may change when it restarts: try ours again */
	p->backends = 0;
	return dp->ntp > 0 ? dp->tps[0].ops : NULL;
}

int
dp_start(struct dp *dp)
{
	const struct tp_ops *cand[DP_MAX_TP];
	char names[64];
	int n, r = -ENOTSUP;

	n = tp_candidates(dp->conf.transport, cand, DP_MAX_TP);
	if (n == 0) {
		log_warnx("dp: transport %s: not available in this build",
		    dp->conf.transport);
		return -ENOTSUP;
	}
	/*
	 * auto: every backend that initialises, best first; each link then
	 * uses the best one both of its ends run (dp_pick_backend).
	 */
	for (int i = 0; i < n; i++) {
		void *st = NULL;
		int e;

		if ((e = cand[i]->init(dp, &st)) < 0) {
			r = e;
			log_info("dp: transport %s unavailable (%s)%s",
			    cand[i]->name, strerror(-e), i + 1 < n ?
			    ", trying the next" : "");
			continue;
		}
		dp->tps[dp->ntp].ops = cand[i];
		dp->tps[dp->ntp].st = st;
		register_memory(dp, &dp->tps[dp->ntp]);
		dp->ntp++;
		dp->running |= cand[i]->backend;
	}
	if (dp->ntp == 0)
		return r;
	if (dp->ntp > 1)
		log_info("dp: backends %s (each link uses the best both ends "
		    "run)", tp_names(dp->running, names, sizeof(names)));
	for (int i = 0; i < dp->npeers; i++) {
		dp->peers[i]->ops = NULL;
		dp->peers[i]->next_connect_ns = 0;
	}
	peer_tick(dp, dp_now_ns());
	return 0;
}

/* One epoll over the fds of the backends that have one, and fd. */
static int
wait_fd(struct dp *dp, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };

	if (dp->wfd < 0) {
		if ((dp->wfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
			return -errno;
		for (int i = 0; i < dp->ntp; i++) {
			const struct tp_ops *o = dp->tps[i].ops;
			int bfd;

			if (o->fd != NULL && (bfd = o->fd(dp->tps[i].st)) >= 0 &&
			    epoll_ctl(dp->wfd, EPOLL_CTL_ADD, bfd, &ev) < 0)
				return -errno;
		}
	}
	if (fd >= 0 && fd != dp->wfd_ext) {
		if (dp->wfd_ext >= 0)
			epoll_ctl(dp->wfd, EPOLL_CTL_DEL, dp->wfd_ext, NULL);
		if (epoll_ctl(dp->wfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			return -errno;
		dp->wfd_ext = fd;
	}
	return dp->wfd;
}

int
dp_wait(struct dp *dp, int fd, int timeout_ms)
{
	const struct dp_tp *poller = NULL;
	struct epoll_event ev;
	int wfd;

	if (dp->ntp == 0)
		return -ENOTSUP;
	/* one backend that sleeps by itself (io_uring, a polling device) */
	if (dp->ntp == 1 && dp->tps[0].ops->wait != NULL)
		return dp->tps[0].ops->wait(dp->tps[0].st, fd, timeout_ms);
	/*
	 * Several: a backend with no fd (a polled device) sleeps as it
	 * must, watching one epoll over everyone else's fds; without one,
	 * that epoll is the sleep.
	 */
	for (int i = 0; i < dp->ntp; i++)
		if (dp->tps[i].ops->fd == NULL && dp->tps[i].ops->wait != NULL)
			poller = &dp->tps[i];
	if ((wfd = wait_fd(dp, fd)) < 0)
		return wfd;
	if (poller != NULL)
		return poller->ops->wait(poller->st, wfd, timeout_ms);
	if (epoll_wait(wfd, &ev, 1, timeout_ms) < 0 && errno != EINTR)
		return -errno;
	return 0;
}

int
dp_progress(struct dp *dp)
{
	static const uint64_t tick = DP_TICK_MS * 1000000ull;
	int n = 0;

	dp->now_ns = dp_now_ns();
	for (int i = 0; i < dp->ntp; i++)
		n += dp->tps[i].ops->poll(dp->tps[i].st);
	dp->now_ns = dp_now_ns();
	if (dp->now_ns - dp->last_tick_ns >= tick / 2) {
		dp->last_tick_ns = dp->now_ns;
		peer_tick(dp, dp->now_ns);
		coll_tick(dp, dp->now_ns);
	}
	coll_reap(dp);
	return n;
}

struct tp_msg *
dp_msg_new(struct dp *dp)
{
	struct tp_msg *m;

	if ((m = TAILQ_FIRST(&dp->msg_free)) != NULL)
		TAILQ_REMOVE(&dp->msg_free, m, entry);
	else if ((m = malloc(sizeof(*m))) == NULL)
		return NULL;
	memset(m, 0, sizeof(*m));
	return m;
}

void
dp_msg_free(struct dp *dp, struct tp_msg *m)
{
	if (m == NULL)
		return;
	if (m->owned != NULL)
		dp_buf_put(dp, m->owned);
	m->owned = NULL;
#ifdef DP_DEBUG_NO_POOLS
	free(m);
#else
	TAILQ_INSERT_HEAD(&dp->msg_free, m, entry);
#endif
}

uint8_t *
dp_buf_get(struct dp *dp)
{
	if (dp->nbuf_free > 0)
		return dp->buf_free[--dp->nbuf_free];
	return malloc(dp->buf_size);
}

void
dp_buf_put(struct dp *dp, uint8_t *b)
{
	uint8_t **nb;

#ifdef DP_DEBUG_NO_POOLS
	free(b);
	return;
#endif
	if (dp->nbuf_free == dp->cap_buf_free) {
		int cap = dp->cap_buf_free ? dp->cap_buf_free * 2 : 16;

		if (cap > DP_POOL_MAX ||
		    (nb = realloc(dp->buf_free, sizeof(*nb) * (size_t)cap)) ==
		    NULL) {
			free(b);
			return;
		}
		dp->buf_free = nb;
		dp->cap_buf_free = cap;
	}
	dp->buf_free[dp->nbuf_free++] = b;
}

void
dp_send(struct dp *dp, struct dp_peer *p, struct tp_msg *m)
{
	if (m->op != NULL)
		m->op->tx_inflight++;
	TAILQ_INSERT_TAIL(&p->txq, m, entry);
	p->txq_len++;
	if (p->out_up && p->ops != NULL)
		p->ops->kick(dp_tp_state(dp, p->ops), p);
}

struct tp_msg *
dp_tx_pull(struct dp *dp, struct dp_peer *p)
{
	struct tp_msg *m;

	(void)dp;
	if ((m = TAILQ_FIRST(&p->ctlq)) != NULL) {
		TAILQ_REMOVE(&p->ctlq, m, entry);
		return m;
	}
	if ((m = TAILQ_FIRST(&p->txq)) == NULL)
		return NULL;
	TAILQ_REMOVE(&p->txq, m, entry);
	p->txq_len--;
	return m;
}

int
dp_unqueue_op(struct dp *dp, struct dp_op *op)
{
	struct tp_msg *m, *next;
	int n = 0;

	for (int i = 0; i < dp->npeers; i++) {
		struct dp_peer *p = dp->peers[i];

		for (m = TAILQ_FIRST(&p->txq); m != NULL; m = next) {
			next = TAILQ_NEXT(m, entry);
			if (m->op != op)
				continue;
			TAILQ_REMOVE(&p->txq, m, entry);
			p->txq_len--;
			op->tx_inflight--;
			dp_msg_free(dp, m);
			n++;
		}
	}
	return n;
}

void
dp_on_sent(struct dp *dp, struct dp_peer *p, struct tp_msg *m, int res)
{
	struct dp_op *op = m->op;

	if (res >= 0)
		p->tx_bytes += WIRE_HDR_LEN + m->len;
	dp_msg_free(dp, m);
	if (op != NULL)
		coll_sent(dp, op, p, res);
}
