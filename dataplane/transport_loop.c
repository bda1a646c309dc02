/*
 * transport_loop.c: the in-process backend.  Several engines in one
 * process (tests) exchange messages through a shared fabric: a send copies
 * header and payload into the destination's inbox; everything is
 * delivered from poll(), never from inside a send, as a real backend
 * would.  The fault seam applies here: FAULT_NET_DROP loses a message,
 * FAULT_NET_CORRUPT flips a bit of it, FAULT_NET_DUP delivers it twice.
 * loop_kill() makes a node vanish like a killed process.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "log.h"
#include "dataplane.h"

#define LOOP_MAX_NODES	64

struct loop_msg {
	TAILQ_ENTRY(loop_msg) entry;
	uint32_t	 src;
	uint8_t		 hdr[WIRE_HDR_LEN];
	uint8_t		*payload;
	uint32_t	 len;
};

struct loop_done {
	TAILQ_ENTRY(loop_done) entry;
	struct dp_peer	*peer;
	struct tp_msg	*m;		/* NULL: a connect outcome */
	int		 res;
};

struct loop_state {
	struct dp	*dp;
	TAILQ_HEAD(, loop_msg) inbox;
	TAILQ_HEAD(, loop_done) done;
	uint32_t	 in_from[DP_MAX_PEERS];	/* sources whose hello came */
	int		 nin;
};

static struct {
	uint32_t		 id;
	struct loop_state	*st;
	int			 dead;
} fabric[LOOP_MAX_NODES];
static int nfabric;

void
loop_reset(void)
{
	nfabric = 0;
}

void
loop_kill(uint32_t id)
{
	for (int i = 0; i < nfabric; i++)
		if (fabric[i].id == id)
			fabric[i].dead = 1;
}

static struct loop_state *
loop_node(uint32_t id)
{
	for (int i = 0; i < nfabric; i++)
		if (fabric[i].id == id && !fabric[i].dead)
			return fabric[i].st;
	return NULL;
}

static int
loop_init(struct dp *dp, void **state)
{
	struct loop_state *st;

	if (nfabric == LOOP_MAX_NODES)
		return -ENOSPC;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return -ENOMEM;
	st->dp = dp;
	TAILQ_INIT(&st->inbox);
	TAILQ_INIT(&st->done);
	for (int i = 0; i < nfabric; i++)
		if (fabric[i].id == dp->conf.node_id)
			fabric[i] = fabric[--nfabric];
	fabric[nfabric].id = dp->conf.node_id;
	fabric[nfabric].st = st;
	fabric[nfabric].dead = 0;
	nfabric++;
	*state = st;
	return 0;
}

static void
loop_fini(void *state)
{
	struct loop_state *st = state;
	struct loop_msg *lm;
	struct loop_done *d;

	for (int i = 0; i < nfabric; i++)
		if (fabric[i].st == st)
			fabric[i] = fabric[--nfabric];
	while ((d = TAILQ_FIRST(&st->done)) != NULL) {
		TAILQ_REMOVE(&st->done, d, entry);
		if (d->m != NULL)
			dp_on_sent(st->dp, d->peer, d->m, -ECANCELED);
		free(d);
	}
	while ((lm = TAILQ_FIRST(&st->inbox)) != NULL) {
		TAILQ_REMOVE(&st->inbox, lm, entry);
		free(lm->payload);
		free(lm);
	}
	free(st);
}

static void
loop_done_add(struct loop_state *st, struct dp_peer *p, struct tp_msg *m,
    int res)
{
	struct loop_done *d;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		/* cannot defer: report now (tests only) */
		if (m != NULL)
			dp_on_sent(st->dp, p, m, -ENOMEM);
		return;
	}
	d->peer = p;
	d->m = m;
	d->res = res;
	TAILQ_INSERT_TAIL(&st->done, d, entry);
}

static int
loop_connect(void *state, struct dp_peer *p)
{
	struct loop_state *st = state;

	loop_done_add(st, p, NULL, loop_node(p->id) != NULL ? 0 :
	    -ECONNREFUSED);
	return 0;
}

static void
loop_deliver(struct loop_state *to, uint32_t src, const struct tp_msg *m)
{
	struct loop_msg *lm;

	if (fault_hit(FAULT_NET_DROP) < 0)
		return;
	if ((lm = calloc(1, sizeof(*lm))) == NULL)
		return;
	if (m->len > 0 && (lm->payload = malloc(m->len)) == NULL) {
		free(lm);
		return;
	}
	lm->src = src;
	memcpy(lm->hdr, m->hdr, WIRE_HDR_LEN);
	if (m->len > 0)
		memcpy(lm->payload, m->payload, m->len);
	lm->len = m->len;
	if (fault_hit(FAULT_NET_CORRUPT) < 0) {
		if (lm->len > 0)
			lm->payload[lm->len / 2] ^= 0x10;
		else
			lm->hdr[30] ^= 0x01;
	}
	TAILQ_INSERT_TAIL(&to->inbox, lm, entry);
}

static void
loop_kick(void *state, struct dp_peer *p)
{
	struct loop_state *st = state, *to;
	struct tp_msg *m;

	while ((m = dp_tx_pull(st->dp, p)) != NULL) {
		if ((to = loop_node(p->id)) == NULL) {
			loop_done_add(st, p, m, -ECONNRESET);
			continue;
		}
		loop_deliver(to, st->dp->conf.node_id, m);
		if (fault_hit(FAULT_NET_DUP) < 0)
			loop_deliver(to, st->dp->conf.node_id, m);
		loop_done_add(st, p, m, 0);
	}
}

static void
loop_disconnect(void *state, struct dp_peer *p)
{
	struct loop_state *st = state;

	for (int i = 0; i < st->nin; i++)
		if (st->in_from[i] == p->id)
			st->in_from[i] = st->in_from[--st->nin];
}

static int
loop_poll(void *state)
{
	struct loop_state *st = state;
	struct loop_msg *lm;
	struct loop_done *d;
	int n = 0;

	/* peers that vanished */
	for (int i = 0; i < st->dp->npeers; i++) {
		struct dp_peer *p = st->dp->peers[i];

		if ((p->in_up || p->out_up) && loop_node(p->id) == NULL)
			dp_on_down(st->dp, p, -ECONNRESET,
			    "connection reset");
	}
	while ((d = TAILQ_FIRST(&st->done)) != NULL) {
		TAILQ_REMOVE(&st->done, d, entry);
		if (d->m != NULL)
			dp_on_sent(st->dp, d->peer, d->m, d->res);
		else if (d->res == 0)
			dp_on_connected(st->dp, d->peer);
		else
			dp_on_connect_failed(st->dp, d->peer, d->res,
			    "connection refused");
		free(d);
		n++;
	}
	while ((lm = TAILQ_FIRST(&st->inbox)) != NULL) {
		struct dp_peer *p = NULL;
		struct wire_hdr h;
		enum wire_err e;
		int known = 0;

		TAILQ_REMOVE(&st->inbox, lm, entry);
		for (int i = 0; i < st->nin; i++)
			known |= st->in_from[i] == lm->src;
		e = wire_decode(lm->hdr, WIRE_HDR_LEN, &h);
		if (e == WIRE_OK && h.length != lm->len)
			e = WIRE_ELENGTH;
		if (known)
			p = peer_find(st->dp, lm->src);
		if (e != WIRE_OK)
			dp_on_bad(st->dp, p, e);
		else if (p != NULL)
			dp_on_recv(st->dp, p, &h, lm->hdr, lm->payload);
		else if ((p = dp_on_hello(st->dp, &h, lm->hdr,
		    lm->payload)) != NULL && st->nin < DP_MAX_PEERS)
			st->in_from[st->nin++] = p->id;
		free(lm->payload);
		free(lm);
		n++;
	}
	return n;
}

const struct tp_ops tp_loop_ops = {
	.name = "loop",
	.backend = DP_BACKEND_LOOP,
	.caps = TP_CAP_RELIABLE,
	.init = loop_init,
	.fini = loop_fini,
	.connect = loop_connect,
	.kick = loop_kick,
	.disconnect = loop_disconnect,
	.fd = NULL,
	.poll = loop_poll,
};
