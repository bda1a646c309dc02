/*
 * rdp.c: the reliable datagram protocol (see rdp.h for the frame and the
 * exchange): frame parser, sending and receiving halves of a stream,
 * reassembly.  Pure: no I/O, no clock (callers pass `now`), no DPDK.
 *
 * Sequence numbers are 32-bit and compared modulo 2^32 (seq_lt); a window
 * slot is segs[seq & (RDP_WINDOW - 1)], valid for una <= seq < nxt.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdp.h"

#define MASK	(RDP_WINDOW - 1)

static int
seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

/*
 * Time since then, 0 when then is later than now: a caller's now may be
 * older than a send time (taken at the start of its poll, before a
 * callback in that poll sent frames stamped later); unsigned, that
 * difference wrapped to centuries and timed the frame out at once.
 */
static uint64_t
since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* The internet checksum of an IPv4 header (RFC 1071). */
static uint16_t
ip_cksum(const uint8_t *p, size_t len)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += get16(p + i);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

void
rdp_frame_encode(uint8_t out[RDP_OVERHEAD], const struct rdp_addr *a,
    const struct rdp_hdr *h)
{
	uint8_t *ip = out + RDP_ETH_LEN, *udp = ip + RDP_IP_LEN;
	uint8_t *r = udp + RDP_UDP_LEN;

	memcpy(out, a->dst_mac, 6);
	memcpy(out + 6, a->src_mac, 6);
	put16(out + 12, RDP_ETHERTYPE_IPV4);

	ip[0] = 0x45;				/* v4, 5 words */
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(RDP_IP_LEN + RDP_UDP_LEN + RDP_HDR_LEN +
	    h->len));
	put16(ip + 4, 0);			/* id */
	put16(ip + 6, 0x4000);			/* don't fragment */
	ip[8] = 64;
	ip[9] = 17;				/* UDP */
	put16(ip + 10, 0);
	put32(ip + 12, a->src_ip);
	put32(ip + 16, a->dst_ip);
	put16(ip + 10, ip_cksum(ip, RDP_IP_LEN));

	put16(udp, a->src_port);
	put16(udp + 2, a->dst_port);
	put16(udp + 4, (uint16_t)(RDP_UDP_LEN + RDP_HDR_LEN + h->len));
	put16(udp + 6, 0);			/* no checksum (IPv4) */

	put32(r, RDP_MAGIC);
	r[4] = RDP_VERSION;
	r[5] = h->type;
	put16(r + 6, h->flags);
	put32(r + 8, h->src);
	put32(r + 12, h->dst);
	put32(r + 16, (uint32_t)(h->session >> 32));
	put32(r + 20, (uint32_t)h->session);
	put32(r + 24, h->seq);
	put16(r + 28, h->len);
	memset(r + 30, 0, RDP_HDR_LEN - 30);
}

enum rdp_err
rdp_frame_parse(const uint8_t *buf, size_t len, uint16_t port,
    struct rdp_addr *a, struct rdp_hdr *h, const uint8_t **payload)
{
	const uint8_t *ip = buf + RDP_ETH_LEN, *udp, *r;
	size_t iplen, udplen;

	if (len < RDP_ETH_LEN + RDP_IP_LEN)
		return len >= RDP_ETH_LEN &&
		    get16(buf + 12) == RDP_ETHERTYPE_IPV4 ? RDP_ESHORT :
		    RDP_ENOTOURS;
	if (get16(buf + 12) != RDP_ETHERTYPE_IPV4 || ip[9] != 17)
		return RDP_ENOTOURS;
	/* Ethernet pads short frames: the IP length is what counts */
	iplen = get16(ip + 2);
	if (ip[0] != 0x45 || iplen < RDP_IP_LEN + RDP_UDP_LEN ||
	    (get16(ip + 6) & 0x3fff) != 0 || ip_cksum(ip, RDP_IP_LEN) != 0)
		return RDP_EIP;
	if (iplen > len - RDP_ETH_LEN)
		return RDP_ESHORT;
	udp = ip + RDP_IP_LEN;
	if (get16(udp + 2) != port)
		return RDP_ENOTOURS;
	udplen = get16(udp + 4);
	if (udplen != iplen - RDP_IP_LEN)
		return RDP_EUDP;
	if (udplen < RDP_UDP_LEN + RDP_HDR_LEN)
		return RDP_ESHORT;
	r = udp + RDP_UDP_LEN;
	if (get32(r) != RDP_MAGIC)
		return RDP_EMAGIC;
	if (r[4] != RDP_VERSION)
		return RDP_EVERSION;
	memset(h, 0, sizeof(*h));
	h->type = r[5];
	h->flags = get16(r + 6);
	h->src = get32(r + 8);
	h->dst = get32(r + 12);
	h->session = (uint64_t)get32(r + 16) << 32 | get32(r + 20);
	h->seq = get32(r + 24);
	h->len = get16(r + 28);
	if (h->type == 0 || h->type >= RDP_NTYPES)
		return RDP_ETYPE;
	if ((h->flags & ~RDP_F_ALL) != 0 || get16(r + 30) != 0 ||
	    get16(r + 32) != 0 ||
	    (h->type != RDP_DATA && h->flags != 0))
		return RDP_EFLAGS;
	if ((size_t)h->len != udplen - RDP_UDP_LEN - RDP_HDR_LEN)
		return RDP_ELEN;
	switch (h->type) {
	case RDP_DATA:
		if ((h->flags & RDP_F_SYN) && (h->seq != 0 || h->len != 0 ||
		    (h->flags & RDP_F_END)))
			return RDP_EFLAGS;
		if (!(h->flags & RDP_F_SYN) && (h->len == 0 ||
		    h->len > RDP_MAX_MSS))
			return RDP_ELEN;
		break;
	case RDP_ACK:
		if (h->len != RDP_SACK_BYTES)
			return RDP_ELEN;
		break;
	default:	/* RST */
		if (h->len != 0)
			return RDP_ELEN;
		break;
	}
	memcpy(a->dst_mac, buf, 6);
	memcpy(a->src_mac, buf + 6, 6);
	a->src_ip = get32(ip + 12);
	a->dst_ip = get32(ip + 16);
	a->src_port = get16(udp);
	a->dst_port = port;
	*payload = r + RDP_HDR_LEN;
	return RDP_OK;
}

const char *
rdp_strerror(enum rdp_err e)
{
	static const char *const s[RDP_NERRS] = {
		[RDP_OK] = "ok",
		[RDP_ENOTOURS] = "not ours",
		[RDP_ESHORT] = "short frame",
		[RDP_EIP] = "bad IPv4 header",
		[RDP_EUDP] = "bad UDP length",
		[RDP_EMAGIC] = "bad magic",
		[RDP_EVERSION] = "unknown version",
		[RDP_ETYPE] = "unknown type",
		[RDP_EFLAGS] = "bad flags",
		[RDP_ELEN] = "bad length",
	};

	return (unsigned)e < RDP_NERRS ? s[e] : "?";
}

/* ------------------------------------------------------------------ */
/* ARP.                                                                */

size_t
rdp_arp_build(uint8_t out[RDP_ARP_LEN], const uint8_t dst[6],
    const struct rdp_arp *p)
{
	uint8_t *a = out + RDP_ETH_LEN;

	memcpy(out, dst, 6);
	memcpy(out + 6, p->sha, 6);
	put16(out + 12, RDP_ETHERTYPE_ARP);
	put16(a, 1);				/* Ethernet */
	put16(a + 2, RDP_ETHERTYPE_IPV4);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, p->op);
	memcpy(a + 8, p->sha, 6);
	put32(a + 14, p->spa);
	memcpy(a + 18, p->tha, 6);
	put32(a + 24, p->tpa);
	return RDP_ARP_LEN;
}

enum rdp_arp_err
rdp_arp_parse(const uint8_t *buf, size_t len, struct rdp_arp *p)
{
	static const uint8_t zero[6];
	const uint8_t *a = buf + RDP_ETH_LEN;

	if (len < RDP_ETH_LEN || get16(buf + 12) != RDP_ETHERTYPE_ARP)
		return RDP_ARP_ENOTARP;
	if (len < RDP_ARP_LEN)
		return RDP_ARP_ESHORT;	/* Ethernet pads: more is fine */
	if (get16(a) != 1 || a[4] != 6)
		return RDP_ARP_EHW;
	if (get16(a + 2) != RDP_ETHERTYPE_IPV4 || a[5] != 4)
		return RDP_ARP_EPROTO;
	memset(p, 0, sizeof(*p));
	p->op = get16(a + 6);
	if (p->op != RDP_ARP_REQUEST && p->op != RDP_ARP_REPLY)
		return RDP_ARP_EOP;
	memcpy(p->sha, a + 8, 6);
	p->spa = get32(a + 14);
	memcpy(p->tha, a + 18, 6);
	p->tpa = get32(a + 24);
	/* a sender must be a unicast station with an address */
	if ((p->sha[0] & 1) || memcmp(p->sha, zero, 6) == 0 || p->spa == 0)
		return RDP_ARP_ESENDER;
	return RDP_ARP_OK;
}

const char *
rdp_arp_strerror(enum rdp_arp_err e)
{
	static const char *const s[RDP_ARP_NERRS] = {
		[RDP_ARP_OK] = "ok",
		[RDP_ARP_ENOTARP] = "not ARP",
		[RDP_ARP_ESHORT] = "short ARP packet",
		[RDP_ARP_EHW] = "ARP hardware not Ethernet",
		[RDP_ARP_EPROTO] = "ARP protocol not IPv4",
		[RDP_ARP_EOP] = "ARP operation neither request nor reply",
		[RDP_ARP_ESENDER] = "ARP sender MAC not unicast or no sender "
		    "address",
	};

	return (unsigned)e < RDP_ARP_NERRS ? s[e] : "?";
}

void
rdp_neigh_set_static(struct rdp_neigh *n, const uint8_t mac[6])
{
	memset(n, 0, sizeof(*n));
	memcpy(n->mac, mac, 6);
	n->known = n->is_static = 1;
}

void
rdp_neigh_want(struct rdp_neigh *n, uint64_t now)
{
	if (n->is_static)
		return;
	n->asking = 1;
	n->next_ns = now;
	n->gap_ns = RDP_ARP_RETRY_NS;
}

int
rdp_neigh_due(struct rdp_neigh *n, uint64_t now)
{
	if (!n->asking || now < n->next_ns)
		return 0;
	n->requests++;
	n->next_ns = now + n->gap_ns;
	n->gap_ns *= 2;
	if (n->gap_ns > RDP_ARP_RETRY_MAX_NS)
		n->gap_ns = RDP_ARP_RETRY_MAX_NS;
	return 1;
}

int
rdp_neigh_learn(struct rdp_neigh *n, const uint8_t mac[6])
{
	int changed;

	if (n->is_static)
		return 0;
	changed = !n->known || memcmp(n->mac, mac, 6) != 0;
	if (n->known && changed)
		n->changes++;
	memcpy(n->mac, mac, 6);
	n->known = 1;
	n->asking = 0;
	n->resolved++;
	return changed;
}

/* ------------------------------------------------------------------ */
/* Sending.                                                            */

static void
tx_start(struct rdp_tx *t)
{
	struct rdp_seg *s = &t->segs[0];

	t->una = t->nxt = 0;
	t->syn_acked = 0;
	t->rq_head = t->rq_tail = 0;
	t->cur = NULL;
	t->srtt_ns = t->rttvar_ns = 0;
	t->rto_ns = RDP_RTO_INIT_NS;
	t->cwnd = RDP_CWND_INIT;
	t->ssthresh = RDP_WINDOW;
	t->recover = 0;
	t->rto_probe = 0;
	t->stall_from = 0;
	/* frame 0: the SYN, sent like any other frame */
	memset(s, 0, sizeof(*s));
	s->flags = RDP_F_SYN;
	t->nxt = 1;
	s->queued = 1;
	t->rq[t->rq_tail++] = 0;
}

void
rdp_tx_init(struct rdp_tx *t, uint16_t mss, rdp_done_fn *done, void *arg)
{
	memset(t, 0, sizeof(*t));
	t->mss = mss > RDP_MAX_MSS ? RDP_MAX_MSS : mss < 64 ? 64 : mss;
	t->done = done;
	t->arg = arg;
	t->wmax = RDP_WINDOW;
	tx_start(t);
}

void
rdp_tx_reset(struct rdp_tx *t, int res)
{
	void *cookies[RDP_WINDOW + 1];
	int n = 0;

	/* collect first: done() may come back into t */
	for (uint32_t q = t->una; seq_lt(q, t->nxt); q++) {
		struct rdp_seg *s = &t->segs[q & MASK];

		if ((s->flags & RDP_F_END) && s->cookie != NULL)
			cookies[n++] = s->cookie;
	}
	if (t->cur != NULL)
		cookies[n++] = t->cur;
	tx_start(t);
	for (int i = 0; i < n; i++)
		t->done(t->arg, cookies[i], res);
}

int
rdp_tx_connected(const struct rdp_tx *t)
{
	return t->syn_acked;
}

int
rdp_tx_busy(const struct rdp_tx *t)
{
	return t->cur != NULL;
}

int
rdp_tx_idle(const struct rdp_tx *t)
{
	return t->cur == NULL && t->una == t->nxt;
}

void
rdp_tx_push(struct rdp_tx *t, void *cookie, const uint8_t *hdr,
    uint32_t hdrlen, const void *payload, uint32_t len)
{
	t->cur = cookie;
	t->cur_hdr = hdr;
	t->cur_hdrlen = hdrlen;
	t->cur_payload = payload;
	t->cur_total = hdrlen + len;
	t->cur_off = 0;
}

/* The bytes of a frame: part of hdr, then part of payload. */
static void
seg_out(const struct rdp_seg *s, uint32_t seq, struct rdp_out *o)
{
	uint32_t off = s->off, end = s->off + s->len;

	memset(o, 0, sizeof(*o));
	o->cookie = s->cookie;
	o->seq = seq;
	o->flags = s->flags;
	o->len = s->len;
	if (off < s->hdrlen) {
		uint32_t e = end < s->hdrlen ? end : s->hdrlen;

		o->p1 = s->hdr + off;
		o->l1 = (uint16_t)(e - off);
		off = e;
	}
	if (off < end) {
		const uint8_t *p = s->payload + (off - s->hdrlen);

		if (o->l1 == 0) {
			o->p1 = p;
			o->l1 = (uint16_t)(end - off);
		} else {
			o->p2 = p;
			o->l2 = (uint16_t)(end - off);
		}
	}
}

int
rdp_tx_next(struct rdp_tx *t, uint64_t now, struct rdp_out *o)
{
	struct rdp_seg *s;
	uint32_t seq;

	/* retransmissions first */
	while (t->rq_head != t->rq_tail) {
		seq = t->rq[t->rq_head++ % RDP_RQ_LEN];
		if (seq_lt(seq, t->una) || !seq_lt(seq, t->nxt))
			continue;
		s = &t->segs[seq & MASK];
		if (!s->queued)
			continue;
		s->queued = 0;
		if (s->sacked)
			continue;
		if (s->ntx > 0)
			t->rexmits++;
		else
			t->frames++;
		s->ntx++;
		s->sent_ns = now;
		seg_out(s, seq, o);
		o->ntx = s->ntx;
		return 1;
	}
	/* a new frame: a message is being cut, the windows allow it */
	if (t->cur == NULL || !rdp_tx_connected(t))
		return 0;
	if (t->nxt - t->una >= t->wmax ||
	    (double)(t->nxt - t->una) >= t->cwnd) {
		if (t->stall_from == 0) {
			t->stall_from = now | 1;
			t->stall_cwnd = t->cwnd < t->wmax;
		}
		return 0;
	}
	if (t->stall_from != 0) {
		uint64_t d = now > t->stall_from ? now - t->stall_from : 0;

		t->stall_from = 0;
		t->stall_ns += d;
		if (t->stall_cwnd)
			t->stall_cwnd_ns += d;
		if (d > t->stall_max_ns)
			t->stall_max_ns = d;
		if (d >= 1000000)
			t->stalls_1ms++;
	}
	seq = t->nxt++;
	s = &t->segs[seq & MASK];
	memset(s, 0, sizeof(*s));
	s->cookie = t->cur;
	s->hdr = t->cur_hdr;
	s->hdrlen = t->cur_hdrlen;
	s->payload = t->cur_payload;
	s->off = t->cur_off;
	s->len = (uint16_t)(t->cur_total - t->cur_off < t->mss ?
	    t->cur_total - t->cur_off : t->mss);
	t->cur_off += s->len;
	if (t->cur_off == t->cur_total) {
		s->flags = RDP_F_END;
		t->cur = NULL;
	}
	s->ntx = 1;
	s->sent_ns = now;
	t->frames++;
	seg_out(s, seq, o);
	o->ntx = 1;
	return 1;
}

void
rdp_tx_lost(struct rdp_tx *t, uint32_t seq)
{
	struct rdp_seg *s;

	if (seq_lt(seq, t->una) || !seq_lt(seq, t->nxt))
		return;
	s = &t->segs[seq & MASK];
	if (s->queued || s->sacked)
		return;
	s->queued = 1;
	if (t->rq_tail - t->rq_head == RDP_RQ_LEN) {
		/* full of entries already acked: keep the live ones */
		t->rq_head = t->rq_tail = 0;
		for (uint32_t q = t->una; seq_lt(q, t->nxt); q++)
			if (t->segs[q & MASK].queued && q != seq)
				t->rq[t->rq_tail++] = q;
	}
	t->rq[t->rq_tail++ % RDP_RQ_LEN] = seq;
}

/*
 * A loss: halve the window, once per window of data, but not below a
 * quarter of wmax (wmax is half the receiver's ring: 8 senders at the
 * floor still fit it), and slow start back to that floor when the
 * window was already smaller.  Losses on these links are a receiver
 * descheduled past its ring or the RTO far more than a congested path:
 * halved down to 8 frames and grown back one frame per window, a few
 * timeouts at load 7 left a 256 MiB probe window-bound for 1 s of its
 * 3 (one stall of 356 ms).
 */
static void
tx_loss(struct rdp_tx *t, uint32_t seq)
{
	double floor = t->wmax / 4.0 < RDP_CWND_MIN ? RDP_CWND_MIN :
	    t->wmax / 4.0;
	double c = t->cwnd / 2;

	if (seq_lt(seq, t->recover))
		return;
	t->recover = t->nxt;
	if (c < floor)		/* the floor, or what it was if less */
		c = t->cwnd < floor ? t->cwnd : floor;
	if (c < RDP_CWND_MIN)
		c = RDP_CWND_MIN;
	t->cwnd = c;
	t->ssthresh = c < floor ? floor : c;
}

static void
rtt_sample(struct rdp_tx *t, uint64_t rtt)
{
	if (t->srtt_ns == 0) {
		t->srtt_ns = rtt;
		t->rttvar_ns = rtt / 2;
	} else {
		uint64_t d = rtt > t->srtt_ns ? rtt - t->srtt_ns :
		    t->srtt_ns - rtt;

		t->rttvar_ns = (3 * t->rttvar_ns + d) / 4;
		t->srtt_ns = (7 * t->srtt_ns + rtt) / 8;
	}
	t->rto_ns = t->srtt_ns + 4 * t->rttvar_ns;
	if (t->rto_ns < RDP_RTO_MIN_NS)
		t->rto_ns = RDP_RTO_MIN_NS;
	if (t->rto_ns > RDP_RTO_MAX_NS)
		t->rto_ns = RDP_RTO_MAX_NS;
}

int
rdp_tx_ack(struct rdp_tx *t, uint32_t cum, const uint8_t *sack,
    uint32_t sack_bytes, uint64_t now)
{
	void *done[RDP_WINDOW];
	uint32_t last_sacked = cum, nsacked = 0;
	int n = 0, ndone = 0;

	/* an ack of what was never sent is from another life: ignore */
	if (seq_lt(t->nxt, cum))
		return 0;
	while (seq_lt(t->una, cum)) {
		struct rdp_seg *s = &t->segs[t->una & MASK];

		if (!s->sacked) {
			n++;
			if (s->ntx == 1 && now > s->sent_ns)
				rtt_sample(t, now - s->sent_ns);
		}
		if ((s->flags & RDP_F_END) && s->cookie != NULL)
			done[ndone++] = s->cookie;
		if (s->flags & RDP_F_SYN)
			t->syn_acked = 1;
		s->queued = 0;
		t->una++;
	}
	if (sack_bytes > RDP_SACK_BYTES)
		sack_bytes = RDP_SACK_BYTES;
	for (uint32_t i = 1; i < sack_bytes * 8; i++) {
		uint32_t q = cum + i;
		struct rdp_seg *s;

		if (!seq_lt(q, t->nxt))
			break;
		if (sack[i / 8] == 0) {
			i |= 7;		/* a byte of nothing held: the next */
			continue;
		}
		if (seq_lt(q, t->una) || !(sack[i / 8] & (1u << (i % 8))))
			continue;
		s = &t->segs[q & MASK];
		last_sacked = q;
		if (!s->sacked) {
			s->sacked = 1;
			n++;
			if (s->ntx == 1 && now > s->sent_ns)
				rtt_sample(t, now - s->sent_ns);
		}
	}
	/*
	 * Holes before the last sacked frame with RDP_DUPTHRESH sacked frames
	 * after them are lost (sent once more per smoothed RTT at most).
	 */
	for (uint32_t q = last_sacked; q != cum && !seq_lt(q, t->una); q--) {
		struct rdp_seg *s = &t->segs[q & MASK];

		if (s->sacked) {
			nsacked++;
			continue;
		}
		if (nsacked >= RDP_DUPTHRESH && !s->queued &&
		    since(now, s->sent_ns) >= t->srtt_ns) {
			tx_loss(t, q);
			rdp_tx_lost(t, q);
		}
	}
	/* cum itself, when frames past it are sacked */
	if (seq_lt(t->una, t->nxt) && t->una == cum) {
		struct rdp_seg *s = &t->segs[cum & MASK];

		if (nsacked >= RDP_DUPTHRESH && !s->queued && !s->sacked &&
		    since(now, s->sent_ns) >= t->srtt_ns) {
			tx_loss(t, cum);
			rdp_tx_lost(t, cum);
		}
	}
	/*
	 * The ACK of a timeout's lone retransmission: if the receiver holds
	 * nothing sent after it, the rest of what was in flight then is
	 * lost too and goes again now; else it stays (holes are mended by
	 * the SACK rule above or the next timeout).
	 */
	if (t->rto_probe && seq_lt(t->rto_seq, cum)) {
		int held = seq_lt(t->rto_seq + 1, cum);

		for (uint32_t q = cum + 1; !held && seq_lt(q, t->rto_nxt) &&
		    seq_lt(q, t->nxt); q++)
			held = t->segs[q & MASK].sacked;
		t->rto_probe = 0;
		if (held) {
			/* frames sent once before the timeout got there: it
			 * was spurious (the receiver was only slow) */
			t->rto_held++;
			if (t->cwnd < t->rto_cwnd) {
				t->cwnd = t->rto_cwnd;
				t->ssthresh = t->rto_ssthresh;
			}
		} else
			for (uint32_t q = cum; seq_lt(q, t->rto_nxt) &&
			    seq_lt(q, t->nxt); q++)
				if (!seq_lt(q, t->una))
					rdp_tx_lost(t, q);
	}
	/* grow: slow start, then one frame per window */
	if (n > 0) {
		if (t->cwnd < t->ssthresh)
			t->cwnd += n;
		else
			t->cwnd += (double)n / t->cwnd;
		if (t->cwnd > t->wmax)
			t->cwnd = t->wmax;
	}
	for (int i = 0; i < ndone; i++)
		t->done(t->arg, done[i], 0);
	return n;
}

void
rdp_tx_tick(struct rdp_tx *t, uint64_t now)
{
	/* a timeout's lone retransmission out: its ACK decides, or its own
	 * timeout (sent again, backed off); nothing else meanwhile */
	if (t->rto_probe) {
		struct rdp_seg *s = &t->segs[t->rto_seq & MASK];

		if (seq_lt(t->rto_seq, t->una) || !seq_lt(t->rto_seq, t->nxt) ||
		    s->sacked)
			t->rto_probe = 0;	/* it got there */
		else if (s->queued || since(now, s->sent_ns) < t->rto_ns)
			return;
		else {
			t->timeouts++;
			rdp_tx_lost(t, t->rto_seq);
			t->rto_ns *= 2;
			if (t->rto_ns > RDP_RTO_MAX_NS)
				t->rto_ns = RDP_RTO_MAX_NS;
			return;
		}
	}
	for (uint32_t q = t->una; seq_lt(q, t->nxt); q++) {
		struct rdp_seg *s = &t->segs[q & MASK];

		if (s->sacked || s->queued || since(now, s->sent_ns) < t->rto_ns)
			continue;
		/* the oldest expired frame only (see rto_probe) */
		t->timeouts++;
		if (!t->rto_probe) {
			t->rto_cwnd = t->cwnd;
			t->rto_ssthresh = t->ssthresh;
		}
		tx_loss(t, q);
		rdp_tx_lost(t, q);
		t->rto_probe = 1;
		t->rto_seq = q;
		t->rto_nxt = t->nxt;
		/* back off: the path may be gone, or much slower */
		t->rto_ns *= 2;
		if (t->rto_ns > RDP_RTO_MAX_NS)
			t->rto_ns = RDP_RTO_MAX_NS;
		return;
	}
}

/* ------------------------------------------------------------------ */
/* Receiving.                                                          */

void
rdp_rx_init(struct rdp_rx *r, rdp_deliver_fn *deliver,
    rdp_release_fn *release, void *arg)
{
	memset(r, 0, sizeof(*r));
	r->deliver = deliver;
	r->release = release;
	r->arg = arg;
}

void
rdp_rx_reset(struct rdp_rx *r)
{
	for (uint32_t i = 0; i < RDP_WINDOW && r->nheld > 0; i++) {
		struct rdp_held *h = &r->held[i];

		if (h->handle != NULL) {
			r->release(r->arg, h->handle);
			h->handle = NULL;
			r->nheld--;
		}
	}
	r->nxt = 0;
	r->nheld = 0;
	r->ack_due = 0;
}

enum rdp_rx_res
rdp_rx_data(struct rdp_rx *r, uint32_t seq, uint16_t flags,
    const uint8_t *data, uint16_t len, void *handle)
{
	struct rdp_held *h;

	r->ack_due = 1;
	if (seq_lt(seq, r->nxt)) {
		r->dups++;
		return RDP_RX_DUP;
	}
	if (seq - r->nxt >= RDP_WINDOW)
		return RDP_RX_BEYOND;
	if (seq != r->nxt) {
		h = &r->held[seq & MASK];
		if (h->handle != NULL) {
			r->dups++;
			return RDP_RX_DUP;
		}
		h->handle = handle;
		h->data = data;
		h->len = len;
		h->flags = flags;
		r->nheld++;
		r->early++;
		return RDP_RX_HELD;
	}
	r->nxt++;
	if (r->deliver(r->arg, data, len, flags) != 0)
		return RDP_RX_STOPPED;
	/* what was held behind it */
	while (r->nheld > 0 && (h = &r->held[r->nxt & MASK])->handle != NULL) {
		void *hd = h->handle;
		int stop;

		h->handle = NULL;
		r->nheld--;
		r->nxt++;
		stop = r->deliver(r->arg, h->data, h->len, h->flags);
		r->release(r->arg, hd);
		if (stop)
			break;
	}
	return RDP_RX_DELIVERED;
}

void
rdp_rx_ack(struct rdp_rx *r, uint32_t *cum, uint8_t sack[RDP_SACK_BYTES])
{
	memset(sack, 0, RDP_SACK_BYTES);
	*cum = r->nxt;
	r->ack_due = 0;
	if (r->nheld == 0)
		return;
	for (uint32_t i = 1; i < RDP_WINDOW; i++)
		if (r->held[(r->nxt + i) & MASK].handle != NULL)
			sack[i / 8] |= (uint8_t)(1u << (i % 8));
}

/* ------------------------------------------------------------------ */
/* Reassembly.                                                         */

void
rdp_asm_init(struct rdp_asm *a, size_t max)
{
	memset(a, 0, sizeof(*a));
	a->max = max;
}

void
rdp_asm_fini(struct rdp_asm *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

void
rdp_asm_reset(struct rdp_asm *a)
{
	a->len = 0;
	a->skipping = 0;
}

int
rdp_asm_add(struct rdp_asm *a, const uint8_t *data, uint16_t len, int end,
    const uint8_t **msg, size_t *msglen)
{
	if (a->skipping) {
		if (end)
			a->skipping = 0;
		return 0;
	}
	/* a whole message in one frame: no copy (if its floats align) */
	if (a->len == 0 && end && ((uintptr_t)data & 3) == 0) {
		*msg = data;
		*msglen = len;
		return 1;
	}
	if (a->len + len > a->max) {
		a->len = 0;
		a->skipping = !end;
		return -EMSGSIZE;
	}
	if (a->len + len > a->cap) {
		size_t cap = a->cap ? a->cap : 65536;
		uint8_t *nb;

		while (cap < a->len + len)
			cap *= 2;
		if ((nb = realloc(a->buf, cap)) == NULL) {
			a->len = 0;
			a->skipping = !end;
			return -ENOMEM;
		}
		a->buf = nb;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, data, len);
	a->len += len;
	if (!end)
		return 0;
	*msg = a->buf;
	*msglen = a->len;
	a->len = 0;
	return 1;
}
