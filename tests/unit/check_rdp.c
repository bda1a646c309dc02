/*
 * check_rdp.c: the DPDK backend's reliable datagram protocol without
 * DPDK: the frame parser refuses every kind of bad field; one stream over
 * a simulated channel that drops, duplicates and reorders frames (the
 * fault seam's FAULT_NET_DROP/DUP/REORDER at a rate, seeded) delivers
 * every message exactly once, in order, byte for byte; a reset reports
 * every message in flight.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "rdp.h"

#define PORT	7710

static const struct rdp_addr addr = {
	.dst_mac = { 2, 0, 0, 0, 0, 2 }, .src_mac = { 2, 0, 0, 0, 0, 1 },
	.src_ip = 0x0a000001, .dst_ip = 0x0a000002,
	.src_port = PORT, .dst_port = PORT,
};

static size_t
frame(uint8_t *buf, const struct rdp_hdr *h, const void *payload)
{
	rdp_frame_encode(buf, &addr, h);
	if (h->len > 0 && payload != NULL)
		memcpy(buf + RDP_OVERHEAD, payload, h->len);
	return RDP_OVERHEAD + h->len;
}

START_TEST(test_frame)
{
	struct rdp_hdr h = { .type = RDP_DATA, .flags = RDP_F_END, .src = 1,
	    .dst = 2, .session = 0x1122334455667788ull, .seq = 77, .len = 5 };
	uint8_t buf[256], bad[256];
	const uint8_t *pl;
	struct rdp_addr a;
	struct rdp_hdr d;
	size_t n = frame(buf, &h, "hello");

	ck_assert_int_eq(rdp_frame_parse(buf, n, PORT, &a, &d, &pl), RDP_OK);
	ck_assert_uint_eq(d.session, h.session);
	ck_assert_uint_eq(d.seq, 77);
	ck_assert_uint_eq(d.src, 1);
	ck_assert_uint_eq(d.dst, 2);
	ck_assert_uint_eq(d.flags, RDP_F_END);
	ck_assert_uint_eq(a.src_ip, 0x0a000001);
	ck_assert_mem_eq(a.src_mac, addr.src_mac, 6);
	ck_assert_mem_eq(pl, "hello", 5);
	/* Ethernet padding after the frame is fine */
	ck_assert_int_eq(rdp_frame_parse(buf, n + 20, PORT, &a, &d, &pl),
	    RDP_OK);
	/* someone else's traffic */
	ck_assert_int_eq(rdp_frame_parse(buf, n, PORT + 1, &a, &d, &pl),
	    RDP_ENOTOURS);
	memcpy(bad, buf, n);
	bad[13] = 0xdd;		/* IPv6 */
	ck_assert_int_eq(rdp_frame_parse(bad, n, PORT, &a, &d, &pl),
	    RDP_ENOTOURS);
	ck_assert_int_eq(rdp_frame_parse(buf, 10, PORT, &a, &d, &pl),
	    RDP_ENOTOURS);
	/* every field checked */
	for (size_t i = 0; i < n; i++) {
		enum rdp_err e;

		/* MACs, source port, UDP checksum, ids/session/seq, data */
		if (i < 12 || (i >= 34 && i < 36) || (i >= 40 && i < 42) ||
		    (i >= 50 && i < 70) || i >= RDP_OVERHEAD)
			continue;
		memcpy(bad, buf, n);
		bad[i] ^= 0x01;
		e = rdp_frame_parse(bad, n, PORT, &a, &d, &pl);
		ck_assert_msg(e != RDP_OK, "byte %zu flipped accepted", i);
	}
	/* truncated */
	ck_assert_int_eq(rdp_frame_parse(buf, n - 1, PORT, &a, &d, &pl),
	    RDP_ESHORT);
	/* SYN with data, ack with a short bitmap, unknown type and flags */
	h.flags = RDP_F_SYN;
	h.seq = 0;
	n = frame(buf, &h, "hello");
	ck_assert_int_eq(rdp_frame_parse(buf, n, PORT, &a, &d, &pl),
	    RDP_EFLAGS);
	h.type = RDP_ACK;
	h.flags = 0;
	n = frame(buf, &h, "hello");
	ck_assert_int_eq(rdp_frame_parse(buf, n, PORT, &a, &d, &pl),
	    RDP_ELEN);
	h.type = RDP_NTYPES;
	n = frame(buf, &h, "hello");
	ck_assert_int_eq(rdp_frame_parse(buf, n, PORT, &a, &d, &pl),
	    RDP_ETYPE);
	h.type = RDP_DATA;
	h.flags = 0x80;
	n = frame(buf, &h, "hello");
	ck_assert_int_eq(rdp_frame_parse(buf, n, PORT, &a, &d, &pl),
	    RDP_EFLAGS);
	h.flags = 0;
	h.len = 0;
	n = frame(buf, &h, "");
	ck_assert_int_eq(rdp_frame_parse(buf, n, PORT, &a, &d, &pl),
	    RDP_ELEN);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A stream over a lossy channel.                                      */

#define NMSG	300
#define HDRLEN	48

struct cframe {
	uint8_t		*buf;
	size_t		 len;
	uint64_t	 due;
};

struct chan {
	struct cframe	 q[8192];
	int		 n;
};

struct sim {
	struct rdp_tx	 tx;
	struct rdp_rx	 rx;
	struct rdp_asm	 as;
	struct chan	 fwd, back;
	uint8_t		*hdrs[NMSG];
	uint8_t		*bodies[NMSG];
	uint32_t	 lens[NMSG];
	int		 pushed;
	int		 done;		/* done() in order */
	int		 done_err;
	int		 got;		/* messages reassembled */
	int		 bad;
	uint64_t	 now;
	unsigned	 rng;
	uint32_t	 jump;		/* move both ends' sequences here */
	uint64_t	 stall_from;	/* the receiver takes no frame then */
	uint64_t	 stall_to;
};

static unsigned
rnd(struct sim *s)
{
	s->rng = s->rng * 1103515245u + 12345u;
	return s->rng >> 8;
}

static void
on_done(void *arg, void *cookie, int res)
{
	struct sim *s = arg;
	int i = (int)(intptr_t)cookie - 1;

	if (res != 0) {
		s->done_err++;
		return;
	}
	if (i != s->done)
		s->bad++;
	s->done++;
}

static int
on_deliver(void *arg, const uint8_t *data, uint16_t len, uint16_t flags)
{
	struct sim *s = arg;
	const uint8_t *m;
	size_t ml;
	int k = s->got;

	if (flags & RDP_F_SYN)
		return 0;
	if (rdp_asm_add(&s->as, data, len, !!(flags & RDP_F_END), &m,
	    &ml) != 1)
		return 0;
	if (k >= NMSG || ml != HDRLEN + s->lens[k] ||
	    memcmp(m, s->hdrs[k], HDRLEN) != 0 ||
	    memcmp(m + HDRLEN, s->bodies[k], s->lens[k]) != 0)
		s->bad++;
	s->got++;
	return 0;
}

static void
on_release(void *arg, void *handle)
{
	(void)arg;
	free(handle);
}

/* Sends a frame into a channel: maybe dropped, duplicated, delayed. */
static void
chan_put(struct sim *s, struct chan *c, const uint8_t *buf, size_t len)
{
	int copies = 1;

	if (fault_hit(FAULT_NET_DROP) < 0)
		return;
	if (fault_hit(FAULT_NET_DUP) < 0)
		copies = 2;
	for (int k = 0; k < copies && c->n < 8192; k++) {
		struct cframe *f = &c->q[c->n++];

		f->buf = malloc(len);
		memcpy(f->buf, buf, len);
		f->len = len;
		/* 50 us of wire; a reordered frame arrives up to 2 ms late */
		f->due = s->now + 50000 + (fault_hit(FAULT_NET_REORDER) < 0 ?
		    (rnd(s) % 2000) * 1000 : 0);
	}
}

static void
send_ack(struct sim *s)
{
	struct rdp_hdr h = { .type = RDP_ACK, .src = 2, .dst = 1,
	    .session = 9, .len = RDP_SACK_BYTES };
	uint8_t sack[RDP_SACK_BYTES], buf[RDP_OVERHEAD + RDP_SACK_BYTES];

	rdp_rx_ack(&s->rx, &h.seq, sack);
	chan_put(s, &s->back, buf, frame(buf, &h, sack));
}

/* Frames due now, in order of arrival. */
static void
chan_run(struct sim *s, struct chan *c, int fwd)
{
	for (int i = 0; i < c->n; i++) {
		struct cframe *f = &c->q[i];
		const uint8_t *pl;
		struct rdp_addr a;
		struct rdp_hdr h;

		if (f->due > s->now || (fwd && s->now >= s->stall_from &&
		    s->now < s->stall_to))
			continue;
		ck_assert_int_eq(rdp_frame_parse(f->buf, f->len, PORT, &a, &h,
		    &pl), RDP_OK);
		if (fwd) {
			if (rdp_rx_data(&s->rx, h.seq, h.flags, pl, h.len,
			    f->buf) != RDP_RX_HELD)
				free(f->buf);
		} else {
			rdp_tx_ack(&s->tx, h.seq, pl, h.len, s->now);
			free(f->buf);
		}
		c->q[i--] = c->q[--c->n];
	}
}

static void
sim_run(struct sim *s, uint64_t limit_ns)
{
	uint8_t buf[RDP_OVERHEAD + 2048];

	while (s->now < limit_ns && (s->got < NMSG || s->done < NMSG)) {
		struct rdp_out o;
		int burst = 0;

		while (!rdp_tx_busy(&s->tx) && s->pushed < NMSG &&
		    s->jump == 0) {
			int k = s->pushed++;

			rdp_tx_push(&s->tx, (void *)(intptr_t)(k + 1),
			    s->hdrs[k], HDRLEN, s->bodies[k], s->lens[k]);
		}
		/* a burst of up to 32 frames per 20 us: a link of ~2 GB/s */
		while (burst++ < 32 && rdp_tx_next(&s->tx, s->now, &o)) {
			struct rdp_hdr h = { .type = RDP_DATA, .src = 1,
			    .dst = 2, .session = 9, .seq = o.seq,
			    .flags = o.flags, .len = o.len };

			rdp_frame_encode(buf, &addr, &h);
			if (o.l1 > 0)
				memcpy(buf + RDP_OVERHEAD, o.p1, o.l1);
			if (o.l2 > 0)
				memcpy(buf + RDP_OVERHEAD + o.l1, o.p2, o.l2);
			chan_put(s, &s->fwd, buf, RDP_OVERHEAD + o.len);
		}
		chan_run(s, &s->fwd, 1);
		if (s->rx.ack_due)
			send_ack(s);
		chan_run(s, &s->back, 0);
		rdp_tx_tick(&s->tx, s->now);
		s->now += 20000;
		/* idle in flight after the SYN: jump near the wrap */
		if (s->jump != 0 && rdp_tx_connected(&s->tx) &&
		    s->tx.una == s->tx.nxt && s->rx.nxt == s->tx.una &&
		    s->rx.nheld == 0 && s->fwd.n == 0 && s->back.n == 0) {
			s->tx.una = s->tx.nxt = s->rx.nxt = s->jump;
			s->jump = 0;
		}
	}
}

static void
sim_init(struct sim *s, unsigned seed)
{
	memset(s, 0, sizeof(*s));
	s->rng = seed;
	s->now = 1000000;
	rdp_tx_init(&s->tx, 1400, on_done, s);
	rdp_rx_init(&s->rx, on_deliver, on_release, s);
	rdp_asm_init(&s->as, 1 << 22);
	for (int k = 0; k < NMSG; k++) {
		/* mostly small, some of many frames, some exactly mss */
		uint32_t len = k % 10 == 0 ? rnd(s) % 200000 : k % 7 == 0 ?
		    1400 - HDRLEN : rnd(s) % 3000;

		s->lens[k] = len;
		s->hdrs[k] = malloc(HDRLEN);
		s->bodies[k] = malloc(len + 1);
		for (int i = 0; i < HDRLEN; i++)
			s->hdrs[k][i] = (uint8_t)rnd(s);
		for (uint32_t i = 0; i < len; i++)
			s->bodies[k][i] = (uint8_t)rnd(s);
	}
}

static void
sim_fini(struct sim *s)
{
	rdp_rx_reset(&s->rx);
	for (int i = 0; i < s->fwd.n; i++)
		free(s->fwd.q[i].buf);
	for (int i = 0; i < s->back.n; i++)
		free(s->back.q[i].buf);
	for (int k = 0; k < NMSG; k++) {
		free(s->hdrs[k]);
		free(s->bodies[k]);
	}
	rdp_asm_fini(&s->as);
}

static void
lossy_at(double drop, double dup, double reorder, unsigned seed,
    uint32_t jump)
{
	struct sim *s = calloc(1, sizeof(*s));

	fault_disarm_all();
	if (drop > 0)
		fault_arm_rate(FAULT_NET_DROP, drop, seed, EAGAIN);
	if (dup > 0)
		fault_arm_rate(FAULT_NET_DUP, dup, seed + 1, EAGAIN);
	if (reorder > 0)
		fault_arm_rate(FAULT_NET_REORDER, reorder, seed + 2, EAGAIN);
	sim_init(s, seed);
	s->jump = jump;
	sim_run(s, 120ull * 1000000000ull);	/* simulated seconds */
	ck_assert_uint_eq(s->jump, 0);
	fault_disarm_all();
	ck_assert_int_eq(s->bad, 0);
	ck_assert_int_eq(s->got, NMSG);
	ck_assert_int_eq(s->done, NMSG);
	ck_assert_int_eq(s->done_err, 0);
	ck_assert(rdp_tx_idle(&s->tx));
	if (drop > 0)
		ck_assert_uint_gt(s->tx.rexmits, 0);
	if (dup > 0 || drop > 0)
		ck_assert_uint_gt(s->rx.dups + s->rx.early, 0);
	sim_fini(s);
	free(s);
}

static void
lossy(double drop, double dup, double reorder, unsigned seed)
{
	lossy_at(drop, dup, reorder, seed, 0);
}

/* sequence numbers wrap around 2^32 (about 6 TB of 1.4 KB frames) */
START_TEST(test_wrap)
{
	lossy_at(0.1, 0.05, 0.1, 21, 0xffffff00u);
}
END_TEST

START_TEST(test_clean)
{
	lossy(0, 0, 0, 1);
}
END_TEST

START_TEST(test_drop)
{
	lossy(0.2, 0, 0, 2 + (unsigned)_i);
}
END_TEST

START_TEST(test_dup_reorder)
{
	lossy(0, 0.1, 0.2, 5 + (unsigned)_i);
}
END_TEST

START_TEST(test_everything)
{
	lossy(0.1, 0.05, 0.1, 11 + (unsigned)_i);
}
END_TEST

/*
 * A receiver descheduled past the RTO (its frames wait, none is lost):
 * each timeout sends only the oldest frame again, the ACK shows the
 * later ones got there, the window comes back; everything exact.  Then
 * the same stall with every frame sent during it lost: after the lone
 * retransmission's ACK the rest goes again at once.
 */
static void
stalled(double drop_in_stall)
{
	struct sim *s = calloc(1, sizeof(*s));

	fault_disarm_all();
	sim_init(s, 7);
	s->stall_from = s->now + 5000000ull;		/* after 5 ms */
	s->stall_to = s->stall_from + 60000000ull;	/* for 60 ms */
	if (drop_in_stall > 0) {
		/* frames in the channel when the stall ends are dropped */
		sim_run(s, s->stall_to - 100000);
		for (int i = 0; i < s->fwd.n; i++)
			free(s->fwd.q[i].buf);
		s->fwd.n = 0;
	}
	sim_run(s, 120ull * 1000000000ull);
	ck_assert_int_eq(s->bad, 0);
	ck_assert_int_eq(s->got, NMSG);
	ck_assert_int_eq(s->done, NMSG);
	ck_assert(rdp_tx_idle(&s->tx));
	ck_assert_uint_gt(s->tx.timeouts, 0);
	if (drop_in_stall > 0) {
		/* the lost window went again, not one frame per RTO */
		ck_assert_uint_gt(s->tx.rexmits, 64);
		ck_assert_uint_lt(s->tx.timeouts, 10);
	} else {
		/* one frame per timeout, no window of duplicates */
		ck_assert_uint_gt(s->tx.rto_held, 0);
		ck_assert_uint_le(s->tx.rexmits, s->tx.timeouts);
		ck_assert_uint_le(s->rx.dups, s->tx.timeouts);
	}
	sim_fini(s);
	free(s);
}

START_TEST(test_stalled_receiver)
{
	stalled(0);
}
END_TEST

START_TEST(test_stalled_receiver_lost)
{
	stalled(1);
}
END_TEST

/* A dead receiver: no progress; reset reports every message. */
START_TEST(test_reset)
{
	struct sim *s = calloc(1, sizeof(*s));

	sim_init(s, 3);
	fault_arm_rate(FAULT_NET_DROP, 1.0, 1, EAGAIN);
	sim_run(s, 1000000 + 300000000ull);
	fault_disarm_all();
	ck_assert_int_eq(s->got, 0);
	ck_assert(!rdp_tx_connected(&s->tx));
	ck_assert_uint_gt(s->tx.timeouts, 2);
	/* the SYN retried with backoff, not every tick */
	ck_assert_uint_lt(s->tx.rexmits, 20);
	rdp_tx_reset(&s->tx, -ECONNRESET);
	ck_assert_int_eq(s->done_err, 1);	/* only one was pushed */
	ck_assert(rdp_tx_idle(&s->tx) == 0);	/* the SYN again */
	sim_fini(s);
	free(s);
}
END_TEST

/*
 * A caller's clock may lag a frame's send time (now taken at the start
 * of a poll in which a callback already sent frames stamped later): such
 * a frame is not old.  Unsigned, now - sent wrapped to centuries: every
 * tick timed it out and every ACK with SACKed frames past it marked it
 * lost (spurious retransmissions and a halved window, 5 to 50 per 256
 * MiB over af_packet).  Then, at the real RTO, the timeout does come.
 */
static int ck_nop_done;
static void
nop_done(void *arg, void *cookie, int res)
{
	(void)arg;
	(void)cookie;
	(void)res;
	ck_nop_done++;
}

START_TEST(test_clock_behind)
{
	static uint8_t body[20 * 1000], hdr[16];
	struct rdp_tx *t = calloc(1, sizeof(*t));
	uint8_t sack[RDP_SACK_BYTES];
	const uint64_t t0 = 50000000, later = t0 + 3000000;
	struct rdp_out o;
	uint32_t first;
	int n = 0;

	rdp_tx_init(t, 1000, nop_done, NULL);
	ck_assert(rdp_tx_next(t, t0, &o));		/* the SYN */
	memset(sack, 0, sizeof(sack));
	rdp_tx_ack(t, 1, sack, sizeof(sack), t0 + 100000);
	ck_assert(rdp_tx_connected(t));
	/* a clean RTT sample: the RTO is its floor */
	rdp_tx_push(t, (void *)1, hdr, sizeof(hdr), body, sizeof(body));
	first = t->nxt;
	while (rdp_tx_next(t, later, &o))
		n++;
	ck_assert_int_gt(n, 8);
	/* a tick and an ACK with a clock behind the send times */
	rdp_tx_tick(t, t0 + 200000);
	ck_assert_uint_eq(t->timeouts, 0);
	for (int i = 1; i <= 6; i++)		/* first + 1 .. + 6 held */
		sack[i / 8] |= (uint8_t)(1u << (i % 8));
	rdp_tx_ack(t, first, sack, sizeof(sack), t0 + 200000);
	ck_assert(!rdp_tx_next(t, t0 + 200000, &o) || o.seq != first);
	ck_assert_uint_eq(t->rexmits, 0);
	ck_assert_uint_eq(t->timeouts, 0);
	/* the same frame at its real age past the RTO does time out */
	rdp_tx_tick(t, later + t->rto_ns);
	ck_assert_uint_eq(t->timeouts, 1);
	ck_assert(rdp_tx_next(t, later + t->rto_ns, &o));
	ck_assert_uint_eq(o.seq, first);
	ck_assert_uint_eq(t->rexmits, 1);
	rdp_tx_reset(t, -ECONNRESET);
	ck_assert_int_eq(ck_nop_done, 1);
	free(t);
}
END_TEST

/*
 * Losses in window after window (a receiver descheduled again and again,
 * frames past a hole SACKed each time): the window halves once per
 * window of data but stays at a quarter of wmax or more (halved down
 * to 8 frames, it grew back one frame per window: a probe stayed
 * window-bound for a second after a few timeouts); every frame lost is
 * sent again and all messages finish.
 */
START_TEST(test_cwnd_floor)
{
	static uint8_t body[1 << 20], hdr[16];
	struct rdp_tx *t = calloc(1, sizeof(*t));
	uint8_t sack[RDP_SACK_BYTES];
	uint64_t now = 50000000;
	struct rdp_out o;
	int pushed = 0;

	ck_nop_done = 0;
	rdp_tx_init(t, 1000, nop_done, NULL);
	ck_assert(rdp_tx_next(t, now, &o));		/* the SYN */
	memset(sack, 0, sizeof(sack));
	rdp_tx_ack(t, 1, sack, sizeof(sack), now + 100000);
	/* slow start up to wmax: every window acknowledged whole */
	for (int k = 0; k < 40; k++) {
		if (!rdp_tx_busy(t)) {
			rdp_tx_push(t, (void *)1, hdr, sizeof(hdr), body,
			    sizeof(body));
			pushed++;
		}
		while (rdp_tx_next(t, now, &o))
			;
		now += 200000;
		rdp_tx_ack(t, t->nxt, sack, sizeof(sack), now);
	}
	ck_assert(t->cwnd >= t->wmax - 1);
	/* six windows, each with its oldest frame lost */
	for (int k = 0; k < 6; k++) {
		uint32_t una;

		if (!rdp_tx_busy(t)) {
			rdp_tx_push(t, (void *)1, hdr, sizeof(hdr), body,
			    sizeof(body));
			pushed++;
		}
		while (rdp_tx_next(t, now, &o))
			;
		una = t->una;
		ck_assert(t->nxt - una > 8);
		/* 1 ms later: past every RTT sampled (200 us, then this) */
		now += 1000000;
		memset(sack, 0, sizeof(sack));
		sack[0] = 0x1e;		/* una + 1 .. una + 4 held */
		rdp_tx_ack(t, una, sack, sizeof(sack), now);
		ck_assert(rdp_tx_next(t, now, &o));
		ck_assert_uint_eq(o.seq, una);		/* sent again */
		memset(sack, 0, sizeof(sack));
		rdp_tx_ack(t, t->nxt, sack, sizeof(sack), now);
	}
	ck_assert_uint_eq(t->rexmits, 6);
	ck_assert_msg(t->cwnd >= t->wmax / 4.0, "cwnd %.0f", t->cwnd);
	ck_assert(t->cwnd < t->wmax);		/* it did come down */
	/* and slow start again from below the floor */
	t->cwnd = 16;
	t->recover = t->una;
	now += 1000000;
	if (!rdp_tx_busy(t)) {
		rdp_tx_push(t, (void *)1, hdr, sizeof(hdr), body, sizeof(body));
		pushed++;
	}
	while (rdp_tx_next(t, now, &o))
		;
	memset(sack, 0, sizeof(sack));
	sack[0] = 0x1e;
	now += 1000000;
	rdp_tx_ack(t, t->una, sack, sizeof(sack), now);
	/* the loss did not raise it (16, plus the 4 SACKed frames of slow
	 * start), and slow start goes on up to the floor */
	ck_assert_msg(t->cwnd <= 20, "cwnd %.0f", t->cwnd);
	ck_assert(t->ssthresh >= t->wmax / 4.0);
	while (!rdp_tx_idle(t)) {
		if (!rdp_tx_busy(t) && rdp_tx_next(t, now, &o) == 0) {
			now += 100000;
			memset(sack, 0, sizeof(sack));
			rdp_tx_ack(t, t->nxt, sack, sizeof(sack), now);
			continue;
		}
		while (rdp_tx_next(t, now, &o))
			;
		now += 100000;
		memset(sack, 0, sizeof(sack));
		rdp_tx_ack(t, t->nxt, sack, sizeof(sack), now);
	}
	ck_assert_int_eq(ck_nop_done, pushed);
	free(t);
}
END_TEST

/* Reassembly bounds: an oversized message is dropped up to its END. */
START_TEST(test_asm)
{
	struct rdp_asm a;
	uint8_t d[1000] __attribute__((aligned(16)));
	const uint8_t *m;
	size_t ml;

	memset(d, 7, sizeof(d));
	rdp_asm_init(&a, 2500);
	ck_assert_int_eq(rdp_asm_add(&a, d, 1000, 0, &m, &ml), 0);
	ck_assert_int_eq(rdp_asm_add(&a, d, 1000, 0, &m, &ml), 0);
	ck_assert_int_eq(rdp_asm_add(&a, d, 1000, 0, &m, &ml), -EMSGSIZE);
	ck_assert_int_eq(rdp_asm_add(&a, d, 1000, 0, &m, &ml), 0);
	ck_assert_int_eq(rdp_asm_add(&a, d, 1000, 1, &m, &ml), 0);
	ck_assert_int_eq(rdp_asm_add(&a, d, 10, 1, &m, &ml), 1);
	ck_assert_uint_eq(ml, 10);
	ck_assert_ptr_eq(m, d);		/* one frame: no copy */
	ck_assert_int_eq(rdp_asm_add(&a, d + 1, 10, 1, &m, &ml), 1);
	ck_assert_ptr_ne(m, d + 1);	/* misaligned: a copy */
	ck_assert_uint_eq((uintptr_t)m % 4, 0);
	ck_assert_int_eq(rdp_asm_add(&a, d, 1000, 0, &m, &ml), 0);
	ck_assert_int_eq(rdp_asm_add(&a, d, 5, 1, &m, &ml), 1);
	ck_assert_uint_eq(ml, 1005);
	rdp_asm_fini(&a);
}
END_TEST

/* ARP: a request and a reply round trip; every bad field is refused
 * with its reason. */
START_TEST(test_arp)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct rdp_arp q = { .op = RDP_ARP_REQUEST, .sha = { 2, 0, 0, 0, 0, 1 },
	    .spa = 0x0a000001, .tpa = 0x0a000002 };
	struct rdp_arp r = { .op = RDP_ARP_REPLY, .sha = { 2, 0, 0, 0, 0, 2 },
	    .spa = 0x0a000002, .tha = { 2, 0, 0, 0, 0, 1 },
	    .tpa = 0x0a000001 };
	uint8_t buf[64], bad[64];
	struct rdp_arp p;
	/* byte -> the reason a flipped bit there gets */
	static const struct { int off; enum rdp_arp_err e; } fields[] = {
		{ 12, RDP_ARP_ENOTARP }, { 13, RDP_ARP_ENOTARP },
		{ 14, RDP_ARP_EHW }, { 15, RDP_ARP_EHW },
		{ 16, RDP_ARP_EPROTO }, { 17, RDP_ARP_EPROTO },
		{ 18, RDP_ARP_EHW }, { 19, RDP_ARP_EPROTO },
		{ 20, RDP_ARP_EOP }, { 21, RDP_ARP_EOP },
	};

	ck_assert_uint_eq(rdp_arp_build(buf, bcast, &q), RDP_ARP_LEN);
	ck_assert_mem_eq(buf, bcast, 6);
	ck_assert_mem_eq(buf + 6, q.sha, 6);
	ck_assert_int_eq(rdp_arp_parse(buf, RDP_ARP_LEN, &p), RDP_ARP_OK);
	ck_assert_uint_eq(p.op, RDP_ARP_REQUEST);
	ck_assert_mem_eq(p.sha, q.sha, 6);
	ck_assert_uint_eq(p.spa, q.spa);
	ck_assert_uint_eq(p.tpa, q.tpa);
	/* Ethernet pads to 60 bytes */
	memset(buf + RDP_ARP_LEN, 0, sizeof(buf) - RDP_ARP_LEN);
	ck_assert_int_eq(rdp_arp_parse(buf, 60, &p), RDP_ARP_OK);
	ck_assert_int_eq(rdp_arp_parse(buf, RDP_ARP_LEN - 1, &p),
	    RDP_ARP_ESHORT);
	ck_assert_int_eq(rdp_arp_parse(buf, 10, &p), RDP_ARP_ENOTARP);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		memcpy(bad, buf, RDP_ARP_LEN);
		bad[fields[i].off] ^= 0x01;
		ck_assert_msg(rdp_arp_parse(bad, RDP_ARP_LEN, &p) ==
		    fields[i].e, "byte %d: got %s", fields[i].off,
		    rdp_arp_strerror(rdp_arp_parse(bad, RDP_ARP_LEN, &p)));
	}
	/* a sender that is multicast, zero, or without an address */
	memcpy(bad, buf, RDP_ARP_LEN);
	bad[22] |= 0x01;
	ck_assert_int_eq(rdp_arp_parse(bad, RDP_ARP_LEN, &p), RDP_ARP_ESENDER);
	memcpy(bad, buf, RDP_ARP_LEN);
	memset(bad + 22, 0, 6);
	ck_assert_int_eq(rdp_arp_parse(bad, RDP_ARP_LEN, &p), RDP_ARP_ESENDER);
	memcpy(bad, buf, RDP_ARP_LEN);
	memset(bad + 28, 0, 4);
	ck_assert_int_eq(rdp_arp_parse(bad, RDP_ARP_LEN, &p), RDP_ARP_ESENDER);
	/* an rdp frame is not ARP */
	{
		struct rdp_hdr h = { .type = RDP_DATA, .flags = RDP_F_SYN,
		    .src = 1, .dst = 2, .session = 5 };
		uint8_t f[RDP_OVERHEAD];

		ck_assert_int_eq(rdp_arp_parse(f, frame(f, &h, NULL), &p),
		    RDP_ARP_ENOTARP);
	}
	/* a reply goes to the asker, and says who asked */
	rdp_arp_build(buf, q.sha, &r);
	ck_assert_mem_eq(buf, q.sha, 6);
	ck_assert_int_eq(rdp_arp_parse(buf, RDP_ARP_LEN, &p), RDP_ARP_OK);
	ck_assert_uint_eq(p.op, RDP_ARP_REPLY);
	ck_assert_mem_eq(p.sha, r.sha, 6);
	ck_assert_mem_eq(p.tha, q.sha, 6);
	ck_assert_uint_eq(p.spa, 0x0a000002);
	ck_assert_uint_eq(p.tpa, 0x0a000001);
	/* every reason has words of its own */
	for (int e = 0; e < RDP_ARP_NERRS; e++) {
		ck_assert_str_ne(rdp_arp_strerror(e), "?");
		for (int f = 0; f < e; f++)
			ck_assert_str_ne(rdp_arp_strerror(e),
			    rdp_arp_strerror(f));
	}
}
END_TEST

/* A neighbour: asked at once, then with a doubling backoff up to 1 s;
 * an answer stops the asking; a changed MAC is counted; a static entry
 * is never asked and never overwritten. */
START_TEST(test_neigh)
{
	const uint8_t m1[6] = { 2, 0, 0, 0, 0, 1 }, m2[6] = { 2, 0, 0, 0, 0, 2 };
	struct rdp_neigh n;
	uint64_t t = 5000000000ull, gap = RDP_ARP_RETRY_NS;

	memset(&n, 0, sizeof(n));
	ck_assert_int_eq(rdp_neigh_due(&n, t), 0);	/* not wanted */
	rdp_neigh_want(&n, t);
	ck_assert_int_eq(rdp_neigh_due(&n, t), 1);
	ck_assert_int_eq(rdp_neigh_due(&n, t), 0);
	for (int i = 0; i < 12; i++) {
		ck_assert_int_eq(rdp_neigh_due(&n, t + gap - 1), 0);
		t += gap;
		ck_assert_int_eq(rdp_neigh_due(&n, t), 1);
		gap = gap * 2 > RDP_ARP_RETRY_MAX_NS ? RDP_ARP_RETRY_MAX_NS :
		    gap * 2;
	}
	ck_assert_uint_eq(n.requests, 13);
	ck_assert_int_eq(rdp_neigh_learn(&n, m1), 1);
	ck_assert(n.known && !n.asking);
	ck_assert_int_eq(rdp_neigh_due(&n, t + 10 * gap), 0);
	ck_assert_int_eq(rdp_neigh_learn(&n, m1), 0);	/* confirmed */
	ck_assert_uint_eq(n.changes, 0);
	ck_assert_int_eq(rdp_neigh_learn(&n, m2), 1);	/* it restarted */
	ck_assert_uint_eq(n.changes, 1);
	ck_assert_mem_eq(n.mac, m2, 6);
	ck_assert_uint_eq(n.resolved, 3);
	/* asked again: the backoff starts over */
	rdp_neigh_want(&n, t);
	ck_assert_int_eq(rdp_neigh_due(&n, t), 1);
	ck_assert_int_eq(rdp_neigh_due(&n, t + RDP_ARP_RETRY_NS), 1);
	ck_assert(n.known);		/* the old MAC serves meanwhile */

	rdp_neigh_set_static(&n, m1);
	rdp_neigh_want(&n, t);
	ck_assert_int_eq(rdp_neigh_due(&n, t), 0);
	ck_assert_int_eq(rdp_neigh_learn(&n, m2), 0);
	ck_assert_mem_eq(n.mac, m1, 6);
	ck_assert(n.known && n.is_static);
	ck_assert_uint_eq(n.requests, 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("rdp");
	TCase *tc = tcase_create("rdp");
	SRunner *sr;
	int nf;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_frame);
	tcase_add_test(tc, test_asm);
	tcase_add_test(tc, test_arp);
	tcase_add_test(tc, test_neigh);
	tcase_add_test(tc, test_clean);
	tcase_add_loop_test(tc, test_drop, 0, 3);
	tcase_add_loop_test(tc, test_dup_reorder, 0, 3);
	tcase_add_loop_test(tc, test_everything, 0, 3);
	tcase_add_test(tc, test_reset);
	tcase_add_test(tc, test_stalled_receiver);
	tcase_add_test(tc, test_stalled_receiver_lost);
	tcase_add_test(tc, test_wrap);
	tcase_add_test(tc, test_clock_behind);
	tcase_add_test(tc, test_cwnd_floor);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
