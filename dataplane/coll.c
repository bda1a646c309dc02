/*
 * coll.c: groups and operations: ring all-reduce, reduce-scatter,
 * all-gather, broadcast, and point-to-point send/recv.
 *
 * Ring collectives over a group of n ranks (members in ring order; rank r
 * sends to r+1 and receives from r-1).  count values split in n segments
 * (coll_seg_start), each cut in chunks of cpe values.  Steps, for rank r:
 *
 *   all-reduce      t < n-1: send seg r-t-1, receive seg r-t-2, add
 *                   t >= n-1, s = t-(n-1): send seg r-s, receive r-s-1, copy
 *   reduce-scatter  the first n-1 steps of all-reduce (rank r ends with r)
 *   all-gather      the last n-1 steps of all-reduce (rank r starts with r)
 *
 * What rank r receives at step t is what it sends at step t+1, chunk by
 * chunk, so every chunk is an independent chain: a chunk is forwarded as
 * soon as it arrived and was reduced, while the next chunks are still on
 * the wire.  Sending, receiving and reducing overlap, and the sums are
 * taken in a fixed order (ring order from the segment's first sender), so
 * the result depends only on the group order and the chunking, and all
 * ranks end bitwise equal (the owner's final values are what everyone
 * copies; lossy codecs are applied to the owner's copy too).
 *
 * A small uncompressed all-reduce (at most DP_SMALL_BYTES and one chunk)
 * takes one round instead of 2(n-1): every rank sends its values to every
 * other, and each sums all n in rank order, so the ranks still end equal.
 *
 * A chain's first link, what a rank sends of its own (step 0, a broadcast
 * root's buffer, a SEND), goes out COLL_TX_WINDOW bytes at a time
 * (op_send_more), the rest as those are sent: each chunk is encoded (its
 * CRC computed) just before the backend copies it, and forwards do not
 * queue behind a whole segment.
 *
 * Broadcast is a pipelined chain from the root along the ring.  Send/recv
 * are matched by a sequence number per (sender, receiver) pair.
 *
 * Every message names (group, op sequence, step, chunk); a message for an
 * operation this node has not posted yet is stashed and replayed at post
 * time; one for an operation already over is counted and dropped, as is a
 * duplicate (a bitmap per operation).  Operations complete in posting
 * order per group (and per peer and direction for send/recv).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "dataplane.h"

#define COLL_TX_WINDOW	(4u << 20)	/* own chunks queued at once, bytes */

size_t
coll_seg_start(size_t count, int n, int j)
{
	size_t q = count / (size_t)n, rem = count % (size_t)n;

	return (size_t)j * q + ((size_t)j < rem ? (size_t)j : rem);
}

size_t
coll_seg_len(size_t count, int n, int j)
{
	return count / (size_t)n + ((size_t)j < count % (size_t)n);
}

static int
mod(int a, int n)
{
	return ((a % n) + n) % n;
}

static uint32_t
nchunks(const struct dp_op *op, size_t len)
{
	return (uint32_t)((len + op->cpe - 1) / op->cpe);
}

static int
is_ring(int opcode)
{
	return opcode == ARC_DP_ALLREDUCE || opcode == ARC_DP_REDUCE_SCATTER ||
	    opcode == ARC_DP_ALLGATHER;
}

/* Segment rank op->rank sends (recv = 0) or receives at step t. */
static int
step_seg(const struct dp_op *op, uint32_t t, int recv)
{
	int r = op->rank, n = op->n, s = (int)t;

	switch (op->a.opcode) {
	case ARC_DP_ALLREDUCE:
		if (s < n - 1)
			return mod(r - s - 1 - recv, n);
		return mod(r - (s - (n - 1)) - recv, n);
	case ARC_DP_REDUCE_SCATTER:
		return mod(r - s - 1 - recv, n);
	case ARC_DP_ALLGATHER:
		return mod(r - s - recv, n);
	default:
		return 0;
	}
}

/* Does step t add what it receives (else it copies)? */
static int
step_adds(const struct dp_op *op, uint32_t t)
{
	return op->a.opcode == ARC_DP_REDUCE_SCATTER ||
	    (op->a.opcode == ARC_DP_ALLREDUCE && (int)t < op->n - 1);
}

/* Is what is sent at step t final (the owner's copy must match)? */
static int
step_final(const struct dp_op *op, uint32_t t)
{
	return op->a.opcode == ARC_DP_ALLGATHER ||
	    (op->a.opcode == ARC_DP_ALLREDUCE && (int)t >= op->n - 1);
}

static int
lossy(int comp)
{
	return comp == ARC_DP_COMP_BF16 || comp == ARC_DP_COMP_INT8;
}

struct dp_group *
group_find(struct dp *dp, uint32_t id)
{
	struct dp_group *g;

	TAILQ_FOREACH(g, &dp->groups, entry)
		if (g->id == id)
			return g;
	return NULL;
}

int
group_set(struct dp *dp, uint32_t id, const uint32_t *members, int n)
{
	struct dp_group *g, *old;
	int rank = -1;

	if (id == 0 || id > 65535 || n < 1 || n > IMSG_DP_MAX_GROUP)
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		if (members[i] == dp->conf.node_id)
			rank = i;
		else if (peer_find(dp, members[i]) == NULL)
			return -EHOSTUNREACH;
		for (int j = 0; j < i; j++)
			if (members[j] == members[i])
				return -EINVAL;
	}
	if (rank < 0)
		return -EINVAL;
	if ((old = group_find(dp, id)) != NULL) {
		if (old->n == n && old->rank == rank &&
		    memcmp(old->members, members, sizeof(*members) *
		    (size_t)n) == 0)
			return 0;	/* same group again: keep its sequence */
		if (!TAILQ_EMPTY(&old->ops))
			return -EBUSY;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return -ENOMEM;
	if ((g->members = malloc(sizeof(*members) * (size_t)n)) == NULL) {
		free(g);
		return -ENOMEM;
	}
	memcpy(g->members, members, sizeof(*members) * (size_t)n);
	g->id = id;
	g->n = n;
	g->rank = rank;
	TAILQ_INIT(&g->ops);
	if (old != NULL) {
		TAILQ_REMOVE(&dp->groups, old, entry);
		free(old->members);
		free(old);
	}
	TAILQ_INSERT_TAIL(&dp->groups, g, entry);
	return 0;
}

static void
op_free(struct dp *dp, struct dp_op *op)
{
	TAILQ_REMOVE(&dp->all_ops, op, all);
	free(op->rx_seen);
	free(op->gather);
	free(op);
}

void
group_clear_all(struct dp *dp)
{
	struct dp_group *g;
	struct dp_op *op;

	while ((g = TAILQ_FIRST(&dp->groups)) != NULL) {
		/* callers failed and reaped first; this is the backstop */
		while ((op = TAILQ_FIRST(&g->ops)) != NULL) {
			TAILQ_REMOVE(&g->ops, op, qentry);
			if (op->status == 0)
				op->status = -ECANCELED;
			op->done(op, op->done_arg);
			op_free(dp, op);
		}
		TAILQ_REMOVE(&dp->groups, g, entry);
		free(g->members);
		free(g);
	}
}

static struct dp_peer *
left_peer(struct dp *dp, const struct dp_op *op)
{
	return peer_find(dp, op->g->members[mod(op->rank - 1, op->n)]);
}

static struct dp_peer *
right_peer(struct dp *dp, const struct dp_op *op)
{
	return peer_find(dp, op->g->members[mod(op->rank + 1, op->n)]);
}

static void
op_check_done(struct dp_op *op)
{
	if (op->finished || op->tx_inflight > 0 ||
	    (op->status == 0 && op->tx_next < op->tx_chunks))
		return;
	if (op->status != 0 || op->rx_left == 0)
		op->finished = 1;
}

static void
op_fail(struct dp *dp, struct dp_op *op, int err, uint32_t peer)
{
	if (op->finished || op->status != 0)
		return;
	op->status = err;
	op->err_peer = peer;
	dp_unqueue_op(dp, op);
	op_check_done(op);
}

/*
 * Sends count values at src as chunk (step, chunk) to p.  fwd: already
 * encoded bytes to forward as they are (codec fcodec), or NULL.
 */
static void
op_send(struct dp *dp, struct dp_op *op, struct dp_peer *p, uint32_t step,
    uint32_t chunk, float *src, uint32_t count, const void *fwd,
    uint32_t fwdlen, enum wire_codec fcodec)
{
	struct wire_hdr h = { .type = WIRE_DATA };
	struct tp_msg *m;

	if (op->status != 0)
		return;
	if (p == NULL || (m = dp_msg_new(dp)) == NULL) {
		op_fail(dp, op, p == NULL ? -EHOSTUNREACH : -ENOMEM,
		    p == NULL ? 0 : p->id);
		return;
	}
	if (fwd != NULL) {
		h.codec = fcodec;
		if ((m->owned = dp_buf_get(dp)) == NULL)
			goto nomem;
		memcpy(m->owned, fwd, fwdlen);
		m->payload = m->owned;
		m->len = fwdlen;
	} else {
		h.codec = comp_codec(op->a.comp, src, count);
		if (h.codec == WIRE_CODEC_F32) {
			m->payload = src;	/* from the arena, no copy */
			m->len = count * 4;
		} else {
			if ((m->owned = dp_buf_get(dp)) == NULL)
				goto nomem;
			m->len = (uint32_t)comp_encode(h.codec, src, count,
			    m->owned);
			m->payload = m->owned;
			/* the owner keeps exactly what the others decode */
			if (lossy(op->a.comp) && (step_final(op, step) ||
			    op->a.opcode == ARC_DP_BROADCAST))
				comp_decode(h.codec, m->owned, m->len, count,
				    src, 0);
		}
	}
	if (op->a.opcode == ARC_DP_SEND) {
		h.type = WIRE_P2P;
		h.group = op->cpe;
		h.flags = chunk + 1 == step ? WIRE_F_LAST : 0;
	} else
		h.group = op->g->id;
	h.epoch = dp->conf.epoch;
	h.source = dp->conf.node_id;
	h.op = op->seq;
	h.step = step;
	h.chunk = chunk;
	h.count = count;
	wire_encode(&h, m->payload, m->len, m->hdr);
	m->op = op;
	op->wire_bytes += WIRE_HDR_LEN + m->len;
	op->raw_bytes += WIRE_HDR_LEN + (uint64_t)count * 4;
	dp_send(dp, p, m);
	return;
nomem:
	dp_msg_free(dp, m);
	op_fail(dp, op, -ENOMEM, 0);
}

/*
 * What op sends of its own, the first link of every chain: a ring's step
 * 0 segment, a broadcast root's buffer, a SEND's message, in tx_chunks
 * chunks of cpe values from start (step: the step field they carry).
 */
static struct dp_peer *
op_first_link(struct dp *dp, struct dp_op *op, uint32_t *step, size_t *start,
    size_t *len)
{
	int seg;

	*step = 0;
	*start = 0;
	*len = op->a.count;
	switch (op->a.opcode) {
	case ARC_DP_SEND:
		*step = op->tx_chunks;
		return op->peer;
	case ARC_DP_BROADCAST:
		return right_peer(dp, op);
	default:
		seg = step_seg(op, 0, 0);
		*start = coll_seg_start(op->a.count, op->n, seg);
		*len = coll_seg_len(op->a.count, op->n, seg);
		return right_peer(dp, op);
	}
}

/*
 * Queues op's own chunks while fewer than a window (COLL_TX_WINDOW bytes)
 * of its messages are queued or in the backend; coll_sent calls again as
 * they go.  So each chunk is encoded (its CRC read) just before the
 * backend copies it, and is read from memory once, then from cache; and
 * forwards, queued as chunks arrive, wait behind a window, not behind the
 * whole segment.  What is sent, and the order of every sum, do not change.
 */
static void
op_send_more(struct dp *dp, struct dp_op *op)
{
	uint32_t win = (uint32_t)(COLL_TX_WINDOW / ((size_t)op->cpe * 4));
	struct dp_peer *to;
	uint32_t step;
	size_t start, len;

	if (op->tx_filling || op->tx_next >= op->tx_chunks)
		return;
	if (win < 2)
		win = 2;
	op->tx_filling = 1;	/* a backend may report sent from inside */
	to = op_first_link(dp, op, &step, &start, &len);
	while (op->status == 0 && op->tx_next < op->tx_chunks &&
	    op->tx_inflight < win) {
		uint32_t c = op->tx_next++;
		size_t off = (size_t)c * op->cpe;
		uint32_t cnt = (uint32_t)(len - off < op->cpe ? len - off :
		    op->cpe);

		op_send(dp, op, to, step, c, op->a.buf + start + off, cnt,
		    NULL, 0, 0);
	}
	op->tx_filling = 0;
}

static void stash_replay(struct dp *dp, struct dp_op *op);

static void
op_start(struct dp *dp, struct dp_op *op)
{
	size_t count = op->a.count;
	int n = op->n;

	if (op->a.opcode == ARC_DP_ALLREDUCE && op->a.comp == ARC_DP_COMP_NONE &&
	    count * 4 <= DP_SMALL_BYTES && count <= op->cpe) {
		op->small = 1;
		op->steps = 1;
		op->rx_seen_bits = (uint32_t)n;
		op->rx_left = (uint32_t)n - 1;
		if ((op->gather = malloc((size_t)n * count * 4)) == NULL) {
			op_fail(dp, op, -ENOMEM, 0);
			return;
		}
		memcpy(op->gather + (size_t)op->rank * count, op->a.buf,
		    count * 4);
	} else if (is_ring(op->a.opcode)) {
		size_t maxc = nchunks(op, coll_seg_len(count, n, 0));

		op->steps = (uint32_t)(op->a.opcode == ARC_DP_ALLREDUCE ?
		    2 * (n - 1) : n - 1);
		op->rx_seen_bits = op->steps * (uint32_t)maxc;
		for (uint32_t t = 0; t < op->steps; t++)
			op->rx_left += nchunks(op, coll_seg_len(count, n,
			    step_seg(op, t, 1)));
	} else if (op->a.opcode == ARC_DP_BROADCAST) {
		op->steps = 1;
		op->rx_seen_bits = nchunks(op, count);
		if (op->g->members[op->rank] != op->a.peer)
			op->rx_left = op->rx_seen_bits;
	} else if (op->a.opcode == ARC_DP_RECV) {
		op->rx_left = UINT32_MAX;	/* until the first chunk */
	}
	if (op->rx_seen_bits > 0 &&
	    (op->rx_seen = calloc((op->rx_seen_bits + 7) / 8, 1)) == NULL) {
		op_fail(dp, op, -ENOMEM, 0);
		return;
	}
	if (op->small) {
		/* from a copy: buf takes the result while sends may be out */
		for (int j = 0; j < n && op->status == 0; j++)
			if (j != op->rank)
				op_send(dp, op, peer_find(dp, op->g->members[j]),
				    0, (uint32_t)op->rank, NULL, (uint32_t)count,
				    op->gather + (size_t)op->rank * count,
				    (uint32_t)count * 4, WIRE_CODEC_F32);
		stash_replay(dp, op);
		op_check_done(op);
		return;
	}
	switch (op->a.opcode) {
	case ARC_DP_ALLREDUCE:
	case ARC_DP_REDUCE_SCATTER:
	case ARC_DP_ALLGATHER: {
		int seg = step_seg(op, 0, 0);

		op->tx_chunks = nchunks(op, coll_seg_len(count, n, seg));
		break;
	}
	case ARC_DP_BROADCAST:
		if (op->g->members[op->rank] == op->a.peer)
			op->tx_chunks = nchunks(op, count);
		break;
	case ARC_DP_SEND:
		op->tx_chunks = nchunks(op, count);
		if (op->tx_chunks == 0)
			op->tx_chunks = 1;	/* an empty message still goes */
		break;
	default:
		break;
	}
	op_send_more(dp, op);
	stash_replay(dp, op);
	op_check_done(op);
}

int
dp_post(struct dp *dp, const struct dp_op_args *a, dp_done_fn *done,
    void *arg, uint64_t cookie)
{
	struct dp_group *g = NULL;
	struct dp_peer *p = NULL;
	struct dp_op *op;
	int r, root = 0;

	if (a->opcode < ARC_DP_ALLREDUCE || a->opcode >= ARC_DP_NOPCODES ||
	    a->comp < 0 || a->comp >= ARC_DP_NCOMPS ||
	    (a->buf == NULL && a->count > 0) || a->count > UINT32_MAX ||
	    !isfinite(a->divisor) || a->divisor < 0)
		return -EINVAL;
	if (a->comp == ARC_DP_COMP_TOPK && !(a->ratio > 0 && a->ratio <= 1))
		return -EINVAL;
	if (a->opcode == ARC_DP_SEND || a->opcode == ARC_DP_RECV) {
		if ((p = peer_find(dp, a->peer)) == NULL)
			return -EHOSTUNREACH;
	} else if ((g = group_find(dp, a->group)) == NULL)
		return -ENOENT;
	if (a->opcode == ARC_DP_BROADCAST) {
		root = -1;
		for (int i = 0; i < g->n; i++)
			if (g->members[i] == a->peer)
				root = i;
		if (root < 0)
			return -EINVAL;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL)
		return -ENOMEM;
	op->dp = dp;
	op->a = *a;
	op->g = g;
	op->peer = p;
	op->n = g != NULL ? g->n : 2;
	op->rank = g != NULL ? g->rank : 0;
	op->cpe = (uint32_t)(dp->conf.chunk_bytes / 4);
	op->done = done;
	op->done_arg = arg;
	op->cookie = cookie;
	op->t_post_ns = op->t_progress_ns = dp_now_ns();
	TAILQ_INSERT_TAIL(&dp->all_ops, op, all);
	if (g != NULL) {
		op->seq = g->next_seq++;
		TAILQ_INSERT_TAIL(&g->ops, op, qentry);
	} else if (a->opcode == ARC_DP_SEND) {
		op->seq = p->p2p_tx_seq++;
		TAILQ_INSERT_TAIL(&p->p2p_tx, op, qentry);
	} else {
		op->seq = p->p2p_rx_seq++;
		TAILQ_INSERT_TAIL(&p->p2p_rx, op, qentry);
	}

	/* error feedback and the owner's copy of lossy values, up front */
	if (a->comp != ARC_DP_COMP_NONE && a->count > 0) {
		float *b = a->buf, *res = a->resid;
		size_t len = a->count;

		r = 0;
		if (a->opcode == ARC_DP_ALLGATHER) {
			size_t s = coll_seg_start(a->count, op->n, op->rank);

			b += s;
			res = res != NULL ? res + s : NULL;
			len = coll_seg_len(a->count, op->n, op->rank);
		}
		if (a->opcode == ARC_DP_RECV || (a->opcode ==
		    ARC_DP_BROADCAST && root != op->rank))
			len = 0;
		if (len > 0)
			r = comp_feedback(a->comp, a->ratio, b, res, len);
		if (r < 0) {
			op_fail(dp, op, r, 0);
			goto out;
		}
	}
	if (g != NULL && (g->n == 1 || a->count == 0)) {
		if (g->n == 1 && a->divisor != 0 && a->divisor != 1 &&
		    (a->opcode == ARC_DP_ALLREDUCE ||
		    a->opcode == ARC_DP_REDUCE_SCATTER))
			reduce_div_f32(a->buf, a->count, a->divisor);
		op->finished = 1;
		goto out;
	}
	op_start(dp, op);
out:
	coll_reap(dp);
	return 0;
}

static int
seen_test_set(struct dp_op *op, uint32_t bit)
{
	uint8_t m = (uint8_t)(1u << (bit & 7));

	if (bit >= op->rx_seen_bits)
		return -1;
	if (op->rx_seen[bit / 8] & m)
		return 1;
	op->rx_seen[bit / 8] |= m;
	return 0;
}

/* A rank's values for a small all-reduce; the last one sums them all. */
static void
small_recv(struct dp *dp, struct dp_op *op, struct dp_peer *p,
    const struct wire_hdr *h, const void *payload)
{
	size_t count = op->a.count;
	uint32_t j = h->chunk;
	int r;

	if (h->step != 0 || j >= (uint32_t)op->n || j == (uint32_t)op->rank ||
	    op->g->members[j] != p->id || h->count != count) {
		peer_bad(dp, p, WIRE_ESEQ, "a chunk");
		op_fail(dp, op, -EPROTO, p->id);
		return;
	}
	if ((r = seen_test_set(op, j)) != 0) {
		p->rx_stale++;
		dp->stats.rx_stale++;
		return;
	}
	if (op->status != 0)
		return;
	if (comp_decode(h->codec, payload, h->length, (uint32_t)count,
	    op->gather + j * count, 0) < 0) {
		peer_bad(dp, p, WIRE_ECODEC, "a chunk");
		op_fail(dp, op, -EPROTO, p->id);
		return;
	}
	op->t_progress_ns = dp->now_ns;
	if (--op->rx_left == 0) {
		memcpy(op->a.buf, op->gather, count * 4);
		for (int k = 1; k < op->n; k++)
			reduce_sum_f32(op->a.buf, op->gather + (size_t)k * count,
			    count);
		if (op->a.divisor != 0 && op->a.divisor != 1)
			reduce_div_f32(op->a.buf, count, op->a.divisor);
	}
	op_check_done(op);
}

/*
 * Where the payload of DATA or P2P message h from p may be received
 * straight into: the chunk it fills of an uncompressed operation waiting
 * for it, at a step that copies, or of a posted RECV (what arrives is
 * final: no staging, no copy).  NULL where it cannot (reduce steps,
 * codecs, a chunk not expected now).  The
 * header's CRC is not checked yet, so nothing in it is trusted: the region
 * returned is that chunk's own, h->length bytes exactly.  Valid until the
 * engine runs again: the transport asks again before each receive into it.
 */
float *
coll_rx_place(struct dp *dp, struct dp_peer *p, const struct wire_hdr *h)
{
	struct dp_group *g;
	struct dp_op *op;
	size_t count, start, len, off;
	uint32_t t = h->step, c = h->chunk, maxc, cnt;

	if (h->codec != WIRE_CODEC_F32 || h->epoch != dp->conf.epoch ||
	    h->source != p->id)
		return NULL;
	if (h->type == WIRE_P2P) {
		/* the checks of p2p_recv: chunk c of nc, cpe values each */
		uint64_t poff = (uint64_t)c * h->group;

		TAILQ_FOREACH(op, &p->p2p_rx, qentry)
			if (op->seq == h->op)
				break;
		if (op == NULL || op->status != 0 || op->finished ||
		    h->group == 0 || t == 0 || c >= t ||
		    (op->p2p_chunks != 0 && op->p2p_chunks != t) ||
		    h->count > h->group || poff + h->count > op->a.count ||
		    h->length != (uint64_t)h->count * 4 || (op->rx_seen != NULL &&
		    (c >= op->rx_seen_bits ||
		    (op->rx_seen[c / 8] & (1u << (c & 7))))))
			return NULL;
		return op->a.buf + poff;
	}
	if (h->type != WIRE_DATA || (g = group_find(dp, h->group)) == NULL)
		return NULL;
	TAILQ_FOREACH(op, &g->ops, qentry)
		if (op->seq == h->op)
			break;
	if (op == NULL || op->status != 0 || op->finished || op->small ||
	    op->rx_left == 0 || t >= op->steps || p != left_peer(dp, op))
		return NULL;
	count = op->a.count;
	if (op->a.opcode == ARC_DP_BROADCAST) {
		start = 0;
		len = count;
		maxc = nchunks(op, count);
	} else if (is_ring(op->a.opcode) && !step_adds(op, t)) {
		int seg = step_seg(op, t, 1);

		start = coll_seg_start(count, op->n, seg);
		len = coll_seg_len(count, op->n, seg);
		maxc = nchunks(op, coll_seg_len(count, op->n, 0));
	} else
		return NULL;
	off = (size_t)c * op->cpe;
	if (c >= nchunks(op, len))
		return NULL;
	cnt = (uint32_t)(len - off < op->cpe ? len - off : op->cpe);
	if (h->count != cnt || h->length != cnt * 4 ||
	    t * maxc + c >= op->rx_seen_bits ||
	    (op->rx_seen[(t * maxc + c) / 8] & (1u << ((t * maxc + c) & 7))))
		return NULL;
	return op->a.buf + start + off;
}

/* A DATA chunk for ring or broadcast operation op. */
static void
ring_recv(struct dp *dp, struct dp_op *op, struct dp_peer *p,
    const struct wire_hdr *h, const void *payload)
{
	if (op->small) {
		small_recv(dp, op, p, h, payload);
		return;
	}
	size_t count = op->a.count, start, len, off;
	uint32_t t = h->step, c = h->chunk, maxc, cnt;
	int seg, r;
	float *dst;

	if (p != left_peer(dp, op)) {
		peer_bad(dp, p, WIRE_ESOURCE, "a chunk");
		return;
	}
	if (op->a.opcode == ARC_DP_BROADCAST) {
		seg = 0;
		start = 0;
		len = count;
		maxc = nchunks(op, count);
	} else {
		seg = step_seg(op, t, 1);
		start = coll_seg_start(count, op->n, seg);
		len = coll_seg_len(count, op->n, seg);
		maxc = nchunks(op, coll_seg_len(count, op->n, 0));
	}
	off = (size_t)c * op->cpe;
	if (t >= op->steps || c >= nchunks(op, len) ||
	    h->count != (len - off < op->cpe ? len - off : op->cpe)) {
		/* a peer that chunks differently: this op cannot work */
		peer_bad(dp, p, WIRE_ESEQ, "a chunk");
		op_fail(dp, op, -EPROTO, p->id);
		return;
	}
	cnt = h->count;
	if ((r = seen_test_set(op, t * maxc + c)) != 0) {
		p->rx_stale++;
		dp->stats.rx_stale++;
		return;
	}
	if (op->status != 0)
		return;
	dst = op->a.buf + start + off;
	if (comp_decode(h->codec, payload, h->length, cnt, dst,
	    step_adds(op, t)) < 0) {
		peer_bad(dp, p, WIRE_ECODEC, "a chunk");
		op_fail(dp, op, -EPROTO, p->id);
		return;
	}
	op->rx_left--;
	op->t_progress_ns = dp->now_ns;
	/* the last add of a reduce: this rank owns the final values */
	if (step_adds(op, t) && (int)t == op->n - 2 && op->a.divisor != 0 &&
	    op->a.divisor != 1)
		reduce_div_f32(dst, cnt, op->a.divisor);
	if (op->a.opcode == ARC_DP_BROADCAST) {
		int pos = mod(op->rank - (int)0, op->n), root = 0;

		for (int i = 0; i < op->n; i++)
			if (op->g->members[i] == op->a.peer)
				root = i;
		pos = mod(op->rank - root, op->n);
		if (pos < op->n - 1)
			op_send(dp, op, right_peer(dp, op), 0, c, dst, cnt,
			    h->codec != WIRE_CODEC_F32 ? payload : NULL,
			    h->length, h->codec);
	} else if (t + 1 < op->steps) {
		/* forward: copies go on as received, sums re-encoded */
		int raw = !step_adds(op, t) && h->codec != WIRE_CODEC_F32;

		op_send(dp, op, right_peer(dp, op), t + 1, c, dst, cnt,
		    raw ? payload : NULL, h->length, h->codec);
	}
	op_check_done(op);
}

/* A P2P chunk for RECV operation op. */
static void
p2p_recv(struct dp *dp, struct dp_op *op, struct dp_peer *p,
    const struct wire_hdr *h, const void *payload)
{
	uint32_t cpe = h->group, nc = h->step;
	uint64_t off = (uint64_t)h->chunk * cpe;

	if (cpe == 0 || nc == 0 || h->chunk >= nc ||
	    (op->p2p_chunks != 0 && op->p2p_chunks != nc) ||
	    h->count > cpe) {
		peer_bad(dp, p, WIRE_ESEQ, "a p2p chunk");
		op_fail(dp, op, -EPROTO, p->id);
		return;
	}
	if (off + h->count > op->a.count) {
		op_fail(dp, op, -EMSGSIZE, p->id);
		return;
	}
	if (op->p2p_chunks == 0) {
		op->p2p_chunks = nc;
		op->rx_left = nc;
		op->rx_seen_bits = nc;
		if ((op->rx_seen = calloc((nc + 7) / 8, 1)) == NULL) {
			op_fail(dp, op, -ENOMEM, 0);
			return;
		}
	}
	if (seen_test_set(op, h->chunk) != 0) {
		p->rx_stale++;
		dp->stats.rx_stale++;
		return;
	}
	if (op->status != 0)
		return;
	if (comp_decode(h->codec, payload, h->length, h->count,
	    op->a.buf + off, 0) < 0) {
		peer_bad(dp, p, WIRE_ECODEC, "a p2p chunk");
		op_fail(dp, op, -EPROTO, p->id);
		return;
	}
	if (off + h->count > op->recv_count)
		op->recv_count = off + h->count;
	op->rx_left--;
	op->t_progress_ns = dp->now_ns;
	op_check_done(op);
}

static void
stash_add(struct dp *dp, struct dp_peer *p, const struct wire_hdr *h,
    const void *payload)
{
	struct dp_stash *s;

	if (dp->stash_bytes + h->length > DP_STASH_MAX ||
	    (s = calloc(1, sizeof(*s))) == NULL) {
		dp->stats.stash_dropped++;
		return;
	}
	if (h->length > 0 && (s->payload = malloc(h->length)) == NULL) {
		free(s);
		dp->stats.stash_dropped++;
		return;
	}
	s->h = *h;
	s->src = p->id;
	if (h->length > 0)
		memcpy(s->payload, payload, h->length);
	dp->stash_bytes += h->length;
	TAILQ_INSERT_TAIL(&dp->stash, s, entry);
}

static void
stash_replay(struct dp *dp, struct dp_op *op)
{
	struct dp_stash *s, *next;

	for (s = TAILQ_FIRST(&dp->stash); s != NULL; s = next) {
		struct dp_peer *p;

		next = TAILQ_NEXT(s, entry);
		if (s->h.op != op->seq)
			continue;
		if (op->g != NULL ? (s->h.type != WIRE_DATA ||
		    s->h.group != op->g->id) : (s->h.type != WIRE_P2P ||
		    op->a.opcode != ARC_DP_RECV || s->src != op->peer->id))
			continue;
		TAILQ_REMOVE(&dp->stash, s, entry);
		dp->stash_bytes -= s->h.length;
		if ((p = peer_find(dp, s->src)) != NULL) {
			if (op->g != NULL)
				ring_recv(dp, op, p, &s->h, s->payload);
			else
				p2p_recv(dp, op, p, &s->h, s->payload);
		}
		free(s->payload);
		free(s);
		next = TAILQ_FIRST(&dp->stash);	/* the list may have moved */
	}
}

void
coll_recv(struct dp *dp, struct dp_peer *p, const struct wire_hdr *h,
    const void *payload)
{
	struct dp_op *op;

	if (h->type == WIRE_DATA) {
		struct dp_group *g = group_find(dp, h->group);

		if (g != NULL)
			TAILQ_FOREACH(op, &g->ops, qentry)
				if (op->seq == h->op) {
					ring_recv(dp, op, p, h, payload);
					return;
				}
		if (g == NULL || (int32_t)(h->op - g->next_seq) >= 0)
			stash_add(dp, p, h, payload);
		else {
			p->rx_stale++;
			dp->stats.rx_stale++;
		}
		return;
	}
	TAILQ_FOREACH(op, &p->p2p_rx, qentry)
		if (op->seq == h->op) {
			p2p_recv(dp, op, p, h, payload);
			return;
		}
	if ((int32_t)(h->op - p->p2p_rx_seq) >= 0)
		stash_add(dp, p, h, payload);
	else {
		p->rx_stale++;
		dp->stats.rx_stale++;
	}
}

void
coll_sent(struct dp *dp, struct dp_op *op, struct dp_peer *p, int res)
{
	op->tx_inflight--;
	op->t_progress_ns = dp->now_ns;
	if (res < 0)
		op_fail(dp, op, res, p->id);
	else
		op_send_more(dp, op);
	op_check_done(op);
}

static int
op_needs(const struct dp_op *op, const struct dp_peer *p)
{
	if (op->g == NULL)
		return op->peer == p;
	for (int i = 0; i < op->g->n; i++)
		if (op->g->members[i] == p->id)
			return 1;
	return 0;
}

void
coll_fail_peer(struct dp *dp, struct dp_peer *p, int err)
{
	struct dp_op *op;

	TAILQ_FOREACH(op, &dp->all_ops, all)
		if (!op->finished && (p == NULL || op_needs(op, p)))
			op_fail(dp, op, err, p != NULL ? p->id : 0);
}

void
coll_tick(struct dp *dp, uint64_t now)
{
	uint64_t limit = (uint64_t)dp->conf.op_timeout_ms * 1000000ull;
	struct dp_op *op;

	TAILQ_FOREACH(op, &dp->all_ops, all) {
		struct dp_peer *w;

		if (op->finished || op->status != 0 ||
		    now - op->t_progress_ns <= limit)
			continue;
		if (op->g == NULL)
			w = op->peer;
		else if (op->rx_left > 0)
			w = left_peer(dp, op);
		else
			w = right_peer(dp, op);
		log_warnx("dp: operation %u of %s %u: no progress for %d ms, "
		    "waiting on peer %u", op->seq, op->g ? "group" : "peer",
		    op->g ? op->g->id : op->peer->id, dp->conf.op_timeout_ms,
		    w != NULL ? w->id : 0);
		op_fail(dp, op, -ETIMEDOUT, w != NULL ? w->id : 0);
	}
}

/* Completes the finished head of a queue, in order. */
#define REAP(dp, q) do {						\
	struct dp_op *o_;						\
	while ((o_ = TAILQ_FIRST(q)) != NULL && o_->finished) {		\
		TAILQ_REMOVE(q, o_, qentry);				\
		if (o_->status == 0)					\
			(dp)->stats.ops_done++;				\
		else							\
			(dp)->stats.ops_failed++;			\
		o_->done(o_, o_->done_arg);				\
		op_free(dp, o_);					\
	}								\
} while (0)

void
coll_reap(struct dp *dp)
{
	struct dp_group *g;

	TAILQ_FOREACH(g, &dp->groups, entry)
		REAP(dp, &g->ops);
	for (int i = 0; i < dp->npeers; i++) {
		REAP(dp, &dp->peers[i]->p2p_tx);
		REAP(dp, &dp->peers[i]->p2p_rx);
	}
}
