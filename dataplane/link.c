/*
 * link.c: the peers of this node: connection state, heartbeats, the
 * checks and counters of everything received, RTT and bandwidth.
 *
 * A link is two connections: ours to the peer (we send on it) and the
 * peer's to us (we receive on it); each begins with a HELLO.  The link is
 * up when both are.  A connection that breaks, or a peer silent for
 * peer_timeout_ms (heartbeats go every min(DP_PING_MS, timeout/4)), takes
 * the link down: every operation that needs the peer fails at once with
 * an error naming it, and we reconnect with backoff.  A peer that was
 * never up does not fail anything (it may just be starting); operations
 * waiting on it fail by op_timeout_ms.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "log.h"
#include "dataplane.h"

static const uint8_t probe_zeros[DP_PROBE_CHUNK];

static void	future_replay(struct dp *dp);

struct dp_peer *
peer_find(struct dp *dp, uint32_t id)
{
	for (int i = 0; i < dp->npeers; i++)
		if (dp->peers[i]->id == id)
			return dp->peers[i];
	return NULL;
}

int
peer_add(struct dp *dp, uint32_t id, const char *addr, uint16_t port)
{
	struct dp_peer *p;

	if (id == 0)
		return -EINVAL;
	if (id == dp->conf.node_id)
		return 0;		/* the table may list ourselves */
	if (peer_find(dp, id) != NULL)
		return -EEXIST;
	if (dp->npeers == DP_MAX_PEERS)
		return -ENOSPC;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -ENOMEM;
	p->id = id;
	snprintf(p->addr, sizeof(p->addr), "%s", addr);
	p->port = port;
	p->ops = NULL;		/* picked at each connect */
	p->connect_backoff_ms = DP_RECONNECT_MS;
	TAILQ_INIT(&p->ctlq);
	TAILQ_INIT(&p->txq);
	TAILQ_INIT(&p->p2p_tx);
	TAILQ_INIT(&p->p2p_rx);
	dp->peers[dp->npeers++] = p;
	return 0;
}

/* Closes every connection of p, on every backend (inbound may be any). */
static void
disconnect_all(struct dp *dp, struct dp_peer *p)
{
	for (int i = 0; i < dp->ntp; i++)
		dp->tps[i].ops->disconnect(dp->tps[i].st, p);
}

static void
peer_remove(struct dp *dp, struct dp_peer *p)
{
	struct tp_msg *m;
	int i;

	coll_fail_peer(dp, p, -ENETUNREACH);
	disconnect_all(dp, p);
	while ((m = dp_tx_pull(dp, p)) != NULL)
		dp_on_sent(dp, p, m, -ECANCELED);
	coll_reap(dp);
	for (i = 0; i < dp->npeers && dp->peers[i] != p; i++)
		;
	dp->peers[i] = dp->peers[--dp->npeers];
	free(p);
}

int
peer_set_table(struct dp *dp, uint32_t epoch,
    const struct imsg_dp_peer *peers, int n)
{
	char addr[INET_ADDRSTRLEN];

	if (n < 0 || n > DP_MAX_PEERS)
		return -EINVAL;
	for (int i = 0; i < n; i++)
		if (peers[i].id == 0 || peers[i].port == 0)
			return -EINVAL;
	/* a new epoch: nothing of the old one goes on */
	if (epoch != dp->conf.epoch) {
		struct dp_stash *st;

		coll_fail_peer(dp, NULL, -ESTALE);
		coll_reap(dp);
		group_clear_all(dp);
		while ((st = TAILQ_FIRST(&dp->stash)) != NULL) {
			TAILQ_REMOVE(&dp->stash, st, entry);
			free(st->payload);
			free(st);
		}
		dp->stash_bytes = 0;
		for (int i = 0; i < dp->npeers; i++)
			dp->peers[i]->p2p_tx_seq = dp->peers[i]->p2p_rx_seq = 0;
	}
	dp->conf.epoch = epoch;
	/* drop peers that left or moved; keep links that stay */
	for (int i = dp->npeers - 1; i >= 0; i--) {
		struct dp_peer *p = dp->peers[i];
		int keep = 0;

		for (int j = 0; j < n; j++) {
			inet_ntop(AF_INET, &peers[j].addr, addr, sizeof(addr));
			if (peers[j].id == p->id && peers[j].port == p->port &&
			    strcmp(addr, p->addr) == 0)
				keep = 1;
		}
		if (!keep)
			peer_remove(dp, p);
	}
	for (int j = 0; j < n; j++) {
		int r;

		if (peer_find(dp, peers[j].id) != NULL)
			continue;
		inet_ntop(AF_INET, &peers[j].addr, addr, sizeof(addr));
		if ((r = peer_add(dp, peers[j].id, addr, peers[j].port)) < 0)
			return r;
	}
	log_info("dp: epoch %u, %d peers", epoch, dp->npeers);
	future_replay(dp);
	return 0;
}

static int
ctl_queue(struct dp *dp, struct dp_peer *p, struct wire_hdr *h,
    const void *payload, uint32_t len, int head)
{
	struct tp_msg *m;

	if (len > sizeof(m->inl))
		return -EINVAL;
	if ((m = dp_msg_new(dp)) == NULL)
		return -ENOMEM;
	h->epoch = dp->conf.epoch;
	h->source = dp->conf.node_id;
	h->length = len;
	if (len > 0)
		memcpy(m->inl, payload, len);
	m->payload = m->inl;
	m->len = len;
	wire_encode(h, m->inl, len, m->hdr);
	if (head)
		TAILQ_INSERT_HEAD(&p->ctlq, m, entry);
	else
		TAILQ_INSERT_TAIL(&p->ctlq, m, entry);
	if (p->out_up && p->ops != NULL)
		p->ops->kick(dp_tp_state(dp, p->ops), p);
	return 0;
}

int
peer_send_ctl(struct dp *dp, struct dp_peer *p, struct wire_hdr *h,
    const void *payload, uint32_t len)
{
	return ctl_queue(dp, p, h, payload, len, 0);
}

static void
peer_send_hello(struct dp *dp, struct dp_peer *p)
{
	struct wire_hello w = { .node_id = dp->conf.node_id,
	    .backends = dp->running, .boot_id = dp->boot_id };
	struct wire_hdr h = { .type = WIRE_HELLO };
	uint8_t buf[WIRE_HELLO_LEN];

	wire_hello_encode(&w, buf);
	/* the hello must be the first bytes of the connection */
	ctl_queue(dp, p, &h, buf, sizeof(buf), 1);
}

static int
ping_ms(const struct dp *dp)
{
	int t = dp->conf.peer_timeout_ms / 4;

	return t < DP_PING_MS ? (t > 1 ? t : 1) : DP_PING_MS;
}

static void
peer_ping(struct dp *dp, struct dp_peer *p, uint64_t now)
{
	struct wire_hdr h = { .type = WIRE_PING };

	h.count = ++p->ping_seq;
	p->ping_sent_ns = now;
	p->next_ping_ns = now + (uint64_t)ping_ms(dp) * 1000000ull;
	peer_send_ctl(dp, p, &h, NULL, 0);
}

void
peer_tick(struct dp *dp, uint64_t now)
{
	uint64_t timeout = (uint64_t)dp->conf.peer_timeout_ms * 1000000ull;

	if (dp->ntp == 0)
		return;
	for (int i = 0; i < dp->npeers; i++) {
		struct dp_peer *p = dp->peers[i];

		if ((p->state == DP_PEER_DOWN || p->reconnect) &&
		    now >= p->next_connect_ns) {
			p->reconnect = 0;
			p->state = DP_PEER_CONNECTING;
			p->last_rx_ns = now;
			p->next_connect_ns = now +
			    (uint64_t)p->connect_backoff_ms * 1000000ull;
			if (p->connect_backoff_ms < 1000)
				p->connect_backoff_ms *= 2;
			p->ops = dp_pick_backend(dp, p);
			if (p->ops->connect(dp_tp_state(dp, p->ops), p) < 0) {
				p->tried |= p->ops->backend;
				if (p->in_up)
					p->reconnect = 1;
				else
					p->state = DP_PEER_DOWN;
			}
			continue;
		}
		if (p->out_up && now >= p->next_ping_ns)
			peer_ping(dp, p, now);
		if ((p->in_up || p->out_up) && now - p->last_rx_ns > timeout) {
			char why[64];

			snprintf(why, sizeof(why), "silent for %d ms",
			    dp->conf.peer_timeout_ms);
			dp_on_down(dp, p, -ETIMEDOUT, why);
		}
	}
}

void
dp_on_connected(struct dp *dp, struct dp_peer *p)
{
	p->out_up = 1;
	p->tried = 0;
	p->nocommon_logged = 0;
	p->last_rx_ns = dp->now_ns;
	peer_send_hello(dp, p);
	peer_ping(dp, p, dp->now_ns);
	if (p->in_up) {
		p->state = DP_PEER_UP;
		p->connect_backoff_ms = DP_RECONNECT_MS;
		log_info("dp: link to peer %u (%s:%u) up over %s", p->id,
		    p->addr, p->port, p->ops->name);
	}
	p->ops->kick(dp_tp_state(dp, p->ops), p);
}

struct dp_peer *
dp_on_hello(struct dp *dp, const struct wire_hdr *h, const uint8_t *raw,
    const void *payload)
{
	const struct tp_ops *best;
	struct wire_hello w;
	struct dp_peer *p;
	enum wire_err e;
	char names[64];

	if (h->type != WIRE_HELLO) {
		dp_on_bad(dp, NULL, WIRE_ETYPE);
		return NULL;
	}
	if ((e = wire_check(h, raw, payload, dp->conf.epoch)) != WIRE_OK) {
		dp_on_bad(dp, NULL, e);
		return NULL;
	}
	if (wire_hello_decode(payload, h->length, &w) < 0 ||
	    w.node_id != h->source) {
		dp_on_bad(dp, NULL, WIRE_ELENGTH);
		return NULL;
	}
	if ((p = peer_find(dp, w.node_id)) == NULL) {
		dp_on_bad(dp, NULL, WIRE_ESOURCE);
		return NULL;
	}
	if (p->boot_id != 0 && p->boot_id != w.boot_id) {
		log_info("dp: peer %u restarted", p->id);
		p->p2p_tx_seq = p->p2p_rx_seq = 0;
	}
	p->boot_id = w.boot_id;
	p->backends = w.backends;
	p->in_up = 1;
	p->last_rx_ns = dp->now_ns;
	/*
	 * Now we know what it runs.  Still trying to reach it over another
	 * backend than the best we share (one it does not run, which a
	 * datagram backend learns only by a timeout; or a lesser one picked
	 * while it was not up yet): give that attempt up and connect again.
	 */
	best = NULL;
	for (int i = 0; i < dp->ntp && best == NULL; i++)
		if (w.backends & dp->tps[i].ops->backend)
			best = dp->tps[i].ops;
	p->tried = 0;
	if (!p->out_up && best != NULL && p->ops != best) {
		if (p->ops != NULL) {
			log_info("dp: peer %u runs %s; connecting over %s "
			    "instead of %s", p->id, tp_names(w.backends, names,
			    sizeof(names)), best->name, p->ops->name);
			p->ops->disconnect(dp_tp_state(dp, p->ops), p);
		}
		p->ops = NULL;
		p->state = DP_PEER_DOWN;
		p->next_connect_ns = dp->now_ns;
	}
	if (p->out_up && p->state != DP_PEER_UP) {
		p->state = DP_PEER_UP;
		p->connect_backoff_ms = DP_RECONNECT_MS;
		log_info("dp: link to peer %u (%s:%u) up over %s", p->id,
		    p->addr, p->port, p->ops->name);
	}
	return p;
}

void
peer_bad(struct dp *dp, struct dp_peer *p, enum wire_err e, const char *where)
{
	dp->stats.rx_bad++;
	if (p == NULL) {
		if (!(dp->bad_logged & (1 << e)))
			log_warnx("dp: dropped %s from an unidentified "
			    "connection: %s (logged once; counted)", where,
			    wire_strerror(e));
		dp->bad_logged |= 1 << e;
		return;
	}
	p->rx_bad++;
	snprintf(p->last_error, sizeof(p->last_error), "%s: %s", where,
	    wire_strerror(e));
	if (!(p->bad_logged & (1u << e)))
		log_warnx("dp: peer %u: dropped %s: %s (logged once per "
		    "kind; counted)", p->id, where, wire_strerror(e));
	p->bad_logged |= 1u << e;
}

void
dp_on_bad(struct dp *dp, struct dp_peer *p, enum wire_err e)
{
	peer_bad(dp, p, e, "a message");
}

static void
live_bw(struct dp_peer *p, uint64_t now, uint32_t len)
{
	uint64_t gap = now - p->live_last_ns;

	if (len < (64u << 10))
		return;
	if (p->live_last_ns != 0 && gap < 5000000ull) {
		p->live_bytes += len;
		p->live_ns += gap;
	} else {
		p->live_bytes = 0;
		p->live_ns = 0;
	}
	p->live_last_ns = now;
	if (p->live_bytes >= (4u << 20) && p->live_ns > 0) {
		double s = (double)p->live_bytes * 1e9 / (double)p->live_ns;

		p->bw_live = p->bw_live == 0 ? s : 0.75 * p->bw_live + 0.25 * s;
		p->live_bytes = 0;
		p->live_ns = 0;
	}
}

static void
probe_recv(struct dp *dp, struct dp_peer *p, const struct wire_hdr *h)
{
	struct wire_hdr r = { .type = WIRE_PROBE_REPORT };
	uint64_t rate = 0, be;

	if (h->chunk == 0) {
		p->probe_rx_t0 = dp->now_ns;
		p->probe_rx_bytes = 0;
	} else
		p->probe_rx_bytes += h->length;
	if (!(h->flags & WIRE_F_LAST))
		return;
	if (p->probe_rx_bytes > 0 && dp->now_ns > p->probe_rx_t0)
		rate = (uint64_t)((double)p->probe_rx_bytes * 1e9 /
		    (double)(dp->now_ns - p->probe_rx_t0));
	be = htobe64(rate);
	peer_send_ctl(dp, p, &r, &be, sizeof(be));
}

static void
probe_report(struct dp *dp, struct dp_peer *p, const struct wire_hdr *h,
    const void *payload)
{
	uint64_t be;
	void *w = p->probe_waiter;

	if (h->length != sizeof(be)) {
		peer_bad(dp, p, WIRE_ELENGTH, "a probe report");
		return;
	}
	memcpy(&be, payload, sizeof(be));
	p->bw_probe = (double)be64toh(be);
	p->probe_waiter = NULL;
	if (w != NULL && dp->probe_done != NULL)
		dp->probe_done(w, p);
}

int
peer_probe(struct dp *dp, struct dp_peer *p, uint64_t bytes, void *waiter)
{
	uint32_t n = (uint32_t)((bytes + DP_PROBE_CHUNK - 1) / DP_PROBE_CHUNK);
	TAILQ_HEAD(, tp_msg) ready;
	struct tp_msg *m;

	if (p->state != DP_PEER_UP)
		return -ENOTCONN;
	if (p->probe_waiter != NULL)
		return -EBUSY;
	if (n < 2)
		n = 2;
	/*
	 * Every chunk encoded (its CRC over the MiB of payload) before the
	 * first goes: the receiver times the probe from the first chunk's
	 * arrival, and 256 of those CRCs (about 20 ms) are not the link's;
	 * sent as they were encoded, they stalled the sender right after
	 * the first chunk left.
	 */
	TAILQ_INIT(&ready);
	for (uint32_t i = 0; i < n; i++) {
		struct wire_hdr h = { .type = WIRE_PROBE, .chunk = i,
		    .step = n };

		if ((m = dp_msg_new(dp)) == NULL) {
			while ((m = TAILQ_FIRST(&ready)) != NULL) {
				TAILQ_REMOVE(&ready, m, entry);
				dp_msg_free(dp, m);
			}
			return -ENOMEM;
		}
		h.epoch = dp->conf.epoch;
		h.source = dp->conf.node_id;
		h.flags = i + 1 == n ? WIRE_F_LAST : 0;
		m->payload = probe_zeros;
		m->len = DP_PROBE_CHUNK;
		wire_encode(&h, probe_zeros, DP_PROBE_CHUNK, m->hdr);
		TAILQ_INSERT_TAIL(&ready, m, entry);
	}
	dp->now_ns = dp_now_ns();	/* the CRCs took a while */
	p->probe_waiter = waiter;
	p->probe_tx_t0 = dp->now_ns;
	peer_ping(dp, p, dp->now_ns);
	while ((m = TAILQ_FIRST(&ready)) != NULL) {
		TAILQ_REMOVE(&ready, m, entry);
		dp_send(dp, p, m);
	}
	return 0;
}

/*
 * Data of an epoch newer than ours, checksum verified: its sender's
 * control handed the epoch over before ours did.  Kept (bounded) and
 * replayed when we get there (future_replay), not dropped: the sender
 * never sends it again.  @return 1 if kept
 */
static int
future_keep(struct dp *dp, struct dp_peer *p, const struct wire_hdr *h,
    const void *payload)
{
	int32_t ahead = (int32_t)(h->epoch - dp->conf.epoch);
	struct dp_stash *s;

	if ((h->type != WIRE_DATA && h->type != WIRE_P2P) || ahead <= 0 ||
	    ahead > DP_FUTURE_EPOCHS ||
	    dp->future_bytes + h->length > DP_FUTURE_MAX)
		return 0;
	if ((s = calloc(1, sizeof(*s))) == NULL || (h->length > 0 &&
	    (s->payload = malloc(h->length)) == NULL)) {
		free(s);
		return 0;
	}
	s->h = *h;
	s->src = p->id;
	if (h->length > 0)
		memcpy(s->payload, payload, h->length);
	dp->future_bytes += h->length;
	dp->stats.future_kept++;
	TAILQ_INSERT_TAIL(&dp->future, s, entry);
	return 1;
}

/* We run a new epoch: what came early for it goes in, older is dropped. */
static void
future_replay(struct dp *dp)
{
	struct dp_stash *s, *next;

	for (s = TAILQ_FIRST(&dp->future); s != NULL; s = next) {
		int32_t ahead = (int32_t)(s->h.epoch - dp->conf.epoch);
		struct dp_peer *p;

		next = TAILQ_NEXT(s, entry);
		if (ahead > 0)
			continue;		/* later still */
		TAILQ_REMOVE(&dp->future, s, entry);
		dp->future_bytes -= s->h.length;
		if (ahead == 0 && (p = peer_find(dp, s->src)) != NULL)
			coll_recv(dp, p, &s->h, s->payload);
		free(s->payload);
		free(s);
		next = TAILQ_FIRST(&dp->future);	/* coll_recv may post */
	}
}

/* A message whose checks (wire_check or wire_check_crc) said e. */
static void
recv_checked(struct dp *dp, struct dp_peer *p, const struct wire_hdr *h,
    const void *payload, enum wire_err e)
{
	if (e != WIRE_OK) {
		if (e == WIRE_EEPOCH && h->source == p->id &&
		    future_keep(dp, p, h, payload))
			return;
		peer_bad(dp, p, e, wire_type_name(h->type));
		return;
	}
	if (h->source != p->id) {
		peer_bad(dp, p, WIRE_ESOURCE, wire_type_name(h->type));
		return;
	}
	p->last_rx_ns = dp->now_ns;
	p->rx_bytes += WIRE_HDR_LEN + h->length;
	switch (h->type) {
	case WIRE_PING: {
		struct wire_hdr r = { .type = WIRE_PONG, .count = h->count };

		peer_send_ctl(dp, p, &r, NULL, 0);
		break;
	}
	case WIRE_PONG:
		if (h->count == p->ping_seq && p->ping_sent_ns != 0) {
			double s = (double)(dp->now_ns - p->ping_sent_ns);

			p->rtt_ns = p->rtt_ns == 0 ? s :
			    0.875 * p->rtt_ns + 0.125 * s;
			p->ping_sent_ns = 0;
		}
		break;
	case WIRE_DATA:
	case WIRE_P2P:
		live_bw(p, dp->now_ns, h->length);
		coll_recv(dp, p, h, payload);
		break;
	case WIRE_PROBE:
		probe_recv(dp, p, h);
		break;
	case WIRE_PROBE_REPORT:
		probe_report(dp, p, h, payload);
		break;
	case WIRE_BYE:
		dp_on_down(dp, p, -ESHUTDOWN, "peer shut down");
		break;
	default:	/* a second hello: harmless */
		break;
	}
}

void
dp_on_recv(struct dp *dp, struct dp_peer *p, const struct wire_hdr *h,
    const uint8_t *raw, const void *payload)
{
	recv_checked(dp, p, h, payload, wire_check(h, raw, payload,
	    dp->conf.epoch));
}

void
dp_on_recv_crc(struct dp *dp, struct dp_peer *p, const struct wire_hdr *h,
    const void *payload, uint32_t crc)
{
	recv_checked(dp, p, h, payload, wire_check_crc(h, crc,
	    dp->conf.epoch));
}

int
dp_rx_sink(const struct wire_hdr *h)
{
	return h->type == WIRE_PROBE;	/* probe_recv reads its length */
}

void
dp_rxmsg_start(struct dp *dp, struct dp_peer *p, struct dp_rxmsg *m,
    const uint8_t hdr[WIRE_HDR_LEN])
{
	enum wire_err e;

	m->got = 0;
	m->dst = NULL;
	if ((e = wire_decode(hdr, WIRE_HDR_LEN, &m->h)) != WIRE_OK) {
		dp_on_bad(dp, p, e);
		m->mode = DP_RXM_SKIP;
		return;
	}
	m->crc = wire_crc_hdr(hdr);
	if (dp_rx_sink(&m->h))
		m->mode = DP_RXM_SINK;
	else if (coll_rx_place(dp, p, &m->h) != NULL)
		m->mode = DP_RXM_PLACE;
	else
		m->mode = DP_RXM_STAGE;
}

/* Room for want payload bytes in m->buf.  @return 0 or -ENOMEM */
static int
rxmsg_room(struct dp_rxmsg *m, size_t want)
{
	size_t cap = m->cap ? m->cap : 65536;
	uint8_t *nb;

	if (want <= m->cap)
		return 0;
	while (cap < want)
		cap *= 2;
	if ((nb = realloc(m->buf, cap)) == NULL)
		return -ENOMEM;
	m->buf = nb;
	m->cap = cap;
	return 0;
}

void
dp_rxmsg_add(struct dp *dp, struct dp_peer *p, struct dp_rxmsg *m,
    const uint8_t *data, size_t len, int end)
{
	const void *payload = NULL;
	int mode;

	if (m->mode == DP_RXM_NONE)
		return;		/* no dp_rxmsg_start: nothing to add to */
	if (m->mode != DP_RXM_SKIP && len > m->h.length - m->got) {
		dp_on_bad(dp, p, WIRE_ELENGTH);	/* more than it said */
		m->mode = DP_RXM_SKIP;
	}
	switch (m->mode) {
	case DP_RXM_PLACE:
		/* asked again: the engine may have run since the last piece */
		if ((m->dst = (uint8_t *)coll_rx_place(dp, p, &m->h)) == NULL) {
			m->mode = DP_RXM_LOST;
			break;
		}
		/* copied and summed in one pass (the bytes stored are summed) */
		m->crc = crc32c_copy(m->crc, m->dst + m->got, data, len);
		break;
	case DP_RXM_SINK:
		m->crc = crc32c(m->crc, data, len);
		break;
	case DP_RXM_STAGE:
		if (len == 0)
			break;
		if (rxmsg_room(m, (size_t)m->got + len) < 0) {
			dp_on_bad(dp, p, WIRE_ELENGTH);
			m->mode = DP_RXM_SKIP;
			break;
		}
		m->crc = crc32c_copy(m->crc, m->buf + m->got, data, len);
		break;
	default:	/* DP_RXM_LOST, DP_RXM_SKIP */
		break;
	}
	m->got += (uint32_t)len;
	if (!end)
		return;
	mode = m->mode;
	m->mode = DP_RXM_NONE;
	m->n[mode]++;
	switch (mode) {
	case DP_RXM_SKIP:
		break;
	case DP_RXM_LOST:
		p->rx_stale++;
		dp->stats.rx_stale++;
		break;
	default:
		if (m->got != m->h.length) {
			dp_on_bad(dp, p, WIRE_ELENGTH);
			break;
		}
		if (mode == DP_RXM_PLACE)
			payload = m->dst;
		else if (mode == DP_RXM_STAGE)
			payload = m->buf;
		/* last: this may reset the stream, and m with it */
		dp_on_recv_crc(dp, p, &m->h, payload, m->crc);
		break;
	}
}

void
dp_rxmsg_reset(struct dp_rxmsg *m)
{
	m->mode = DP_RXM_NONE;
}

void
dp_rxmsg_fini(struct dp_rxmsg *m)
{
	free(m->buf);
	m->buf = NULL;
	m->cap = 0;
	m->mode = DP_RXM_NONE;
}

void
dp_on_connect_failed(struct dp *dp, struct dp_peer *p, int err,
    const char *why)
{
	/*
	 * Our connection to p did not come up (refused: p is starting; no
	 * answer: p does not run this backend, or is gone).  What p sends us
	 * is another connection: if it is up, it stays, and so do the
	 * operations; we connect again after the backoff, over the next
	 * backend we share if this one failed.
	 */
	(void)dp;
	log_debugx("dp: peer %u: %s (%s)", p->id, why, strerror(-err));
	if (p->ops != NULL)
		p->tried |= p->ops->backend;
	p->out_up = 0;
	if (p->in_up) {
		p->state = DP_PEER_CONNECTING;
		p->reconnect = 1;
	} else
		p->state = DP_PEER_DOWN;
}

void
dp_on_down(struct dp *dp, struct dp_peer *p, int err, const char *why)
{
	struct tp_msg *m;
	int was_up = p->in_up || p->out_up;
	void *w;

	p->state = DP_PEER_DOWN;
	p->in_up = p->out_up = 0;
	if (!was_up) {
		/*
		 * A connect that failed: the peer may be starting, or not run
		 * this backend; retry, over the next one we share if any.
		 */
		log_debugx("dp: peer %u: %s", p->id, why);
		if (p->ops != NULL) {
			p->tried |= p->ops->backend;
			p->ops->disconnect(dp_tp_state(dp, p->ops), p);
		}
		return;
	}
	p->downs++;
	snprintf(p->last_error, sizeof(p->last_error), "%s", why);
	log_warnx("dp: link to peer %u (%s:%u) down: %s (%s)", p->id,
	    p->addr, p->port, why, strerror(-err));
	coll_fail_peer(dp, p, err);
	disconnect_all(dp, p);
	while ((m = dp_tx_pull(dp, p)) != NULL)
		dp_on_sent(dp, p, m, err);
	p->next_connect_ns = dp->now_ns +
	    (uint64_t)p->connect_backoff_ms * 1000000ull;
	p->live_last_ns = 0;
	if ((w = p->probe_waiter) != NULL) {
		p->probe_waiter = NULL;
		if (dp->probe_done != NULL)
			dp->probe_done(w, p);
	}
}

void
peer_fill_link(const struct dp *dp, const struct dp_peer *p,
    struct imsg_dp_link *l)
{
	static const uint32_t states[] = {
		[DP_PEER_DOWN] = IMSG_DP_LINK_DOWN,
		[DP_PEER_CONNECTING] = IMSG_DP_LINK_CONNECTING,
		[DP_PEER_UP] = IMSG_DP_LINK_UP,
	};

	memset(l, 0, sizeof(*l));
	l->peer = p->id;
	l->state = states[p->state];
	snprintf(l->backend, sizeof(l->backend), "%s",
	    p->ops != NULL ? p->ops->name : "none");
	l->rtt_ns = (uint64_t)p->rtt_ns;
	l->bw_probe = (uint64_t)p->bw_probe;
	l->bw_live = (uint64_t)p->bw_live;
	l->tx_bytes = p->tx_bytes;
	l->rx_bytes = p->rx_bytes;
	l->rx_bad = p->rx_bad;
	l->downs = p->downs;
	l->backends_local = dp->running;
	l->backends_peer = p->backends;
	snprintf(l->last_error, sizeof(l->last_error), "%s", p->last_error);
}
