/*
 * swim.c: SWIM-style membership; the states and the rules are drawn in
 * swim.h.  No I/O, no clock, no logging: the caller provides all three,
 * so unit tests run many nodes in one process on a simulated network.
 *
 * Datagram (big endian), then SWIM_MAC_LEN bytes of crypto_auth over all
 * bytes before it:
 *   0 magic u32 | 4 version u8 | 5 type u8 | 6 nupd u8 | 7 flags u8
 *   8 sender u32 | 12 sender incarnation u32 | 16 boot u64 | 24 seq u64
 *   32 probe seq u32 | 36 target u32 | 40 http port u16 | 42 raft port u16
 *   44 target addr u32 | 48 target port u16 | 50 sender's dataplane port u16
 *   52 sender GFLOP/s x 10 u32 | 56 sender memory MiB u32 (its profile)
 *   60 sender's last complete checkpoint step u64
 *   68 an epoch the sender's workers ask to leave (reepoch) u64, or 0
 *   version 3 only (swim.h: sent to members that flag SWIM_F_HDR3):
 *   76 sender's measured training GFLOP/s x 10 u32 (0: none) | 80 pad u32
 *   84 (76 in version 2) updates: id u32, addr u32, incarnation u32, port u16, http u16,
 *      raft u16, state u8, pad u8 (20 bytes each)
 * then, optionally, one chunk of a link row (swim.h):
 *   0 link version u8 | 1 entries u8 | 2 pad u16 | 4 origin u32
 *   8 origin boot u64 | 16 row sequence u32
 *   20 entries: peer u32, RTT us u32, bandwidth KiB/s u32, age in
 *      tenths of a second u16 (saturating), source u8, pad u8 (16 each)
 * A link section that is not exactly this is ignored and counted
 * (link_malformed); the rest of the datagram still counts.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "swim.h"

_Static_assert(SWIM_MAC_LEN == crypto_auth_BYTES, "mac size");
_Static_assert(SWIM_KEY_LEN == crypto_auth_KEYBYTES, "key size");
/* the layout above: version 2 ends at the reepoch, 3 adds 8 bytes */
_Static_assert(SWIM_HDR2_LEN == 68 + 8, "version 2 header");
_Static_assert(SWIM_HDR_LEN == SWIM_HDR2_LEN + 8, "version 3 header");
_Static_assert(SWIM_MAX_DGRAM == 840, "largest datagram (docs/control.md)");

struct swim_msg {
	uint8_t	 type, nupd, flags, version;
	uint32_t sender, sender_inc;
	uint64_t boot, seq;
	uint32_t probe_seq, target;
	uint16_t http_port, raft_port;
	uint32_t target_addr;
	uint16_t target_port;
	uint32_t gflops10, mem_mib, train_gflops10;
	uint64_t ckpt_step;
	uint64_t reepoch;
	uint16_t dp_port;
	struct swim_member upd[SWIM_MAX_UPDATES];
	int	 link_bad;		/* a link section, malformed */
	int	 nlink;			/* its entries; -1: none */
	struct swim_link link[SWIM_LINK_CHUNK];
};

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, v >> 32);
	put32(p + 4, v & 0xffffffffu);
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

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static uint64_t
rnd(struct swim *sw)
{
	/* xorshift64*: probe order and fan-out, not security */
	sw->rng ^= sw->rng >> 12;
	sw->rng ^= sw->rng << 25;
	sw->rng ^= sw->rng >> 27;
	return sw->rng * 2685821657736338717ull;
}

const char *
swim_state_name(int state)
{
	static const char *const names[] = { "alive", "suspect", "dead",
	    "left" };

	return state >= 0 && state <= SWIM_LEFT ? names[state] : "?";
}

int
swim_init(struct swim *sw, const struct swim_conf *conf, uint32_t id,
    uint64_t boot, const unsigned char key[SWIM_KEY_LEN],
    uint16_t http_port, uint16_t raft_port, swim_send_fn *send,
    swim_change_fn *change, void *ctx)
{
	memset(sw, 0, sizeof(*sw));
	if (sodium_init() < 0)
		return -EIO;
	sw->conf = *conf;
	memcpy(sw->key, key, SWIM_KEY_LEN);
	sw->self.id = id;
	sw->self.incarnation = 1;
	sw->self.http_port = http_port;
	sw->self.raft_port = raft_port;
	sw->self.state = SWIM_ALIVE;
	sw->self.boot = boot;
	sw->hdr_max = SWIM_VERSION;
	sw->seq = 0;
	sw->send = send;
	sw->change = change;
	sw->ctx = ctx;
	sw->rng = (boot ^ ((uint64_t)id << 32)) | 1;
	sw->m = calloc(SWIM_MAX_MEMBERS, sizeof(*sw->m));
	sw->order = calloc(SWIM_MAX_MEMBERS, sizeof(*sw->order));
	sw->links = calloc(SWIM_LINK_CELLS, sizeof(*sw->links));
	if (sw->m == NULL || sw->order == NULL || sw->links == NULL) {
		swim_fini(sw);
		return -ENOMEM;
	}
	return 0;
}

void
swim_fini(struct swim *sw)
{
	if (sw == NULL)
		return;
	free(sw->m);
	free(sw->order);
	free(sw->links);
	sw->links = NULL;
	sodium_memzero(sw->key, sizeof(sw->key));
	sw->m = NULL;
	sw->order = NULL;
}

void
swim_add_seed(struct swim *sw, uint32_t addr, uint16_t port)
{
	for (int i = 0; i < sw->nseeds; i++)
		if (sw->seeds[i].addr == addr && sw->seeds[i].port == port)
			return;
	if (sw->nseeds == (int)(sizeof(sw->seeds) / sizeof(sw->seeds[0])))
		return;
	sw->seeds[sw->nseeds].addr = addr;
	sw->seeds[sw->nseeds].port = port;
	sw->nseeds++;
}

static struct swim_member *
find(struct swim *sw, uint32_t id)
{
	for (int i = 0; i < sw->nm; i++)
		if (sw->m[i].id == id)
			return &sw->m[i];
	return NULL;
}

const struct swim_member *
swim_find(const struct swim *sw, uint32_t id)
{
	if (id == sw->self.id)
		return &sw->self;
	return find((struct swim *)sw, id);
}

int
swim_count(const struct swim *sw, int state)
{
	int n = state == SWIM_ALIVE && !sw->leaving;

	for (int i = 0; i < sw->nm; i++)
		n += sw->m[i].state == state;
	return n;
}

/* Retransmissions of one update: about 3 log2(n + 1). */
static int
gossip_budget(const struct swim *sw)
{
	int n = sw->nm + 1, b = 0;

	while (n > 0) {
		b++;
		n >>= 1;
	}
	return 3 * b;
}

static void
set_state(struct swim *sw, struct swim_member *m, int state, uint32_t inc,
    uint64_t now)
{
	int old = m->state;

	m->incarnation = inc;
	m->gossip_left = gossip_budget(sw);
	if (old == state)
		return;
	m->state = (uint8_t)state;
	m->since_ms = now;
	if (state == SWIM_SUSPECT)
		m->suspect_deadline = now + sw->conf.suspect_timeout_ms;
	if (sw->change)
		sw->change(sw->ctx, m, old);
}

/*
 * A full table makes room by forgetting the member dead or gone the
 * longest (it can come back like any newcomer).  @return 0 or -ENOSPC.
 */
static int
evict(struct swim *sw)
{
	int victim = -1;

	for (int i = 0; i < sw->nm; i++)
		if ((sw->m[i].state == SWIM_DEAD ||
		    sw->m[i].state == SWIM_LEFT) && (victim < 0 ||
		    sw->m[i].since_ms < sw->m[victim].since_ms))
			victim = i;
	if (victim < 0)
		return -ENOSPC;
	for (int i = 0; i < sw->norder; i++)
		if (sw->order[i] == sw->m[victim].id) {
			sw->order[i] = sw->order[--sw->norder];
			break;
		}
	if (sw->order_pos > sw->norder)
		sw->order_pos = sw->norder;
	sw->m[victim] = sw->m[--sw->nm];
	sw->st.evicted++;
	return 0;
}

static struct swim_member *
member_add(struct swim *sw, uint32_t id, uint64_t now)
{
	struct swim_member *m;

	if (sw->nm == SWIM_MAX_MEMBERS && evict(sw) < 0)
		return NULL;
	m = &sw->m[sw->nm++];
	memset(m, 0, sizeof(*m));
	m->id = id;
	m->since_ms = now;
	m->state = SWIM_DEAD;	/* until an update says otherwise */
	/* probe it soon: insert at a random place of the order */
	if (sw->norder < SWIM_MAX_MEMBERS) {
		int at = sw->norder ? (int)(rnd(sw) % (uint64_t)(sw->norder + 1))
		    : 0;

		sw->order[sw->norder++] = sw->order[at];
		sw->order[at] = id;
	}
	return m;
}

/* ---- encoding -------------------------------------------------------- */

/* The version (boot, rseq) of a vs b: <0, 0, >0. */
static int
link_vcmp(uint64_t ab, uint32_t ar, uint64_t bb, uint32_t br)
{
	if (ab != bb)
		return ab < bb ? -1 : 1;
	return ar == br ? 0 : ar < br ? -1 : 1;
}

/*
 * One chunk of a link row at p: the own row on even datagrams (or when
 * nothing else is known), else the newest version of another origin's
 * row, from a rotating start.  @return bytes written (0: none).
 */
static size_t
encode_links(struct swim *sw, uint8_t *p)
{
	struct swim_link *l = sw->links;
	uint32_t origin = sw->self.id;
	uint64_t boot = 0;
	uint32_t rseq = 0;
	int n = 0, have = 0, start, *pos;
	uint8_t *e = p + SWIM_LINK_HDR_LEN;

	if (sw->nlinks == 0)
		return 0;
	if ((sw->link_ntx++ & 1) != 0) {
		/* a random other origin's row */
		int at = (int)(rnd(sw) % (uint64_t)sw->nlinks);

		for (int k = 0; k < sw->nlinks; k++) {
			const struct swim_link *c = &l[(at + k) % sw->nlinks];

			if (c->origin != sw->self.id) {
				origin = c->origin;
				break;
			}
		}
	}
	for (int i = 0; i < sw->nlinks; i++)
		if (l[i].origin == origin && (!have || link_vcmp(l[i].boot,
		    l[i].rseq, boot, rseq) > 0)) {
			boot = l[i].boot;
			rseq = l[i].rseq;
			have = 1;
		}
	if (!have)
		return 0;
	pos = origin == sw->self.id ? &sw->link_own_pos : &sw->link_relay_pos;
	start = *pos < sw->nlinks ? *pos : 0;
	for (int k = 0; k < sw->nlinks && n < SWIM_LINK_CHUNK; k++) {
		int i = (start + k) % sw->nlinks;
		const struct swim_link *c = &l[i];
		uint32_t ds = c->age_ms / 100;

		if (c->origin != origin || c->boot != boot || c->rseq != rseq)
			continue;
		put32(e, c->peer);
		put32(e + 4, c->rtt_us);
		put32(e + 8, c->bw_kib);
		put16(e + 12, ds > 0xffff ? 0xffff : (uint16_t)ds);
		e[14] = c->src;
		e[15] = 0;
		e += SWIM_LINK_ENT_LEN;
		n++;
		*pos = i + 1;
	}
	p[0] = SWIM_LINK_VERSION;
	p[1] = (uint8_t)n;
	put16(p + 2, 0);
	put32(p + 4, origin);
	put64(p + 8, boot);
	put32(p + 16, rseq);
	sw->st.link_tx++;
	return (size_t)(e - p);
}

/* The link section of a datagram (rest bytes at p) into msg. */
static void
decode_links(const struct swim *sw, const uint8_t *p, size_t rest,
    struct swim_msg *msg)
{
	uint32_t origin;
	int n;

	msg->nlink = -1;
	if (rest == 0)
		return;
	msg->link_bad = 1;
	if (rest < SWIM_LINK_HDR_LEN || p[0] != SWIM_LINK_VERSION)
		return;
	n = p[1];
	origin = get32(p + 4);
	if (n > SWIM_LINK_CHUNK ||
	    rest != SWIM_LINK_HDR_LEN + (size_t)n * SWIM_LINK_ENT_LEN ||
	    origin == 0)
		return;
	for (int i = 0; i < n; i++) {
		const uint8_t *e = p + SWIM_LINK_HDR_LEN + i * SWIM_LINK_ENT_LEN;
		struct swim_link *c = &msg->link[i];

		memset(c, 0, sizeof(*c));
		c->origin = origin;
		c->boot = get64(p + 8);
		c->rseq = get32(p + 16);
		c->peer = get32(e);
		c->rtt_us = get32(e + 4);
		c->bw_kib = get32(e + 8);
		c->age_ms = (uint32_t)get16(e + 12) * 100;
		c->src = e[14];
		if (c->peer == 0 || c->peer == origin ||
		    (c->src != SWIM_LINK_DATAPLANE && c->src != SWIM_LINK_PROBE))
			return;
	}
	(void)sw;
	msg->nlink = n;
	msg->link_bad = 0;
}

static int
upd_cmp_left(const void *a, const void *b)
{
	const struct swim_member *x = *(struct swim_member *const *)a;
	const struct swim_member *y = *(struct swim_member *const *)b;

	return y->gossip_left - x->gossip_left;
}

/* The header version to send to addr:port: 3 if it flagged it speaks it */
static int
hdr_version_for(const struct swim *sw, uint32_t addr, uint16_t port)
{
	if (sw->hdr_max < SWIM_VERSION)
		return SWIM_VERSION_OLD;
	for (int i = 0; i < sw->nm; i++)
		if (sw->m[i].addr == addr && sw->m[i].port == port)
			return sw->m[i].flags & SWIM_F_HDR3 ? SWIM_VERSION :
			    SWIM_VERSION_OLD;
	return SWIM_VERSION_OLD;
}

static size_t
encode(struct swim *sw, uint8_t *buf, int type, uint32_t probe_seq,
    uint32_t target, uint32_t taddr, uint16_t tport, int version)
{
	struct swim_member *pick[SWIM_MAX_MEMBERS + 1];
	size_t hlen = version == SWIM_VERSION ? SWIM_HDR_LEN : SWIM_HDR2_LEN;
	int n = 0, np = 0;
	uint8_t *p;

	memset(buf, 0, hlen);
	put32(buf, SWIM_MAGIC);
	buf[4] = (uint8_t)version;
	buf[5] = (uint8_t)type;
	buf[7] = sw->self.flags;
	if (sw->hdr_max >= SWIM_VERSION)
		buf[7] |= SWIM_F_HDR3;
	else
		buf[7] &= (uint8_t)~SWIM_F_HDR3;
	put32(buf + 8, sw->self.id);
	put32(buf + 12, sw->self.incarnation);
	put64(buf + 16, sw->self.boot);
	put64(buf + 24, ++sw->seq);
	put32(buf + 32, probe_seq);
	put32(buf + 36, target);
	put16(buf + 40, sw->self.http_port);
	put16(buf + 42, sw->self.raft_port);
	put32(buf + 44, taddr);
	put16(buf + 48, tport);
	put16(buf + 50, sw->self.dp_port);
	put32(buf + 52, sw->self.gflops10);
	put32(buf + 56, sw->self.mem_mib);
	put64(buf + 60, sw->self.ckpt_step);
	put64(buf + 68, sw->self.reepoch);
	if (version == SWIM_VERSION)
		put32(buf + 76, sw->self.train_gflops10);
	/* piggyback the updates with the most retransmissions left */
	if (sw->self.gossip_left > 0)
		pick[np++] = &sw->self;
	for (int i = 0; i < sw->nm; i++)
		if (sw->m[i].gossip_left > 0 && sw->m[i].addr != 0)
			pick[np++] = &sw->m[i];
	if (np > SWIM_MAX_UPDATES)
		qsort(pick, (size_t)np, sizeof(*pick), upd_cmp_left);
	p = buf + hlen;
	for (int i = 0; i < np && n < SWIM_MAX_UPDATES; i++, n++) {
		struct swim_member *m = pick[i];

		put32(p, m->id);
		put32(p + 4, m->addr);	/* self: 0, the source tells */
		put32(p + 8, m->incarnation);
		put16(p + 12, m->port);
		put16(p + 14, m->http_port);
		put16(p + 16, m->raft_port);
		p[18] = m->state;
		p[19] = 0;
		m->gossip_left--;
		p += SWIM_UPD_LEN;
	}
	buf[6] = (uint8_t)n;
	p += encode_links(sw, p);
	crypto_auth(p, buf, (size_t)(p - buf), sw->key);
	return (size_t)(p - buf) + SWIM_MAC_LEN;
}

static void
send_msg(struct swim *sw, uint32_t addr, uint16_t port, int type,
    uint32_t probe_seq, uint32_t target, uint32_t taddr, uint16_t tport)
{
	uint8_t buf[SWIM_MAX_DGRAM];
	size_t len;

	if (addr == 0 || port == 0)
		return;
	len = encode(sw, buf, type, probe_seq, target, taddr, tport,
	    hdr_version_for(sw, addr, port));
	sw->st.tx++;
	sw->st.tx_bytes += len;
	sw->send(sw->ctx, addr, port, buf, len);
}

/*
 * Checks the MAC, then the layout.  @return 0, or -EBADMSG (malformed),
 * -EPERM (MAC).
 */
static int
decode(const struct swim *sw, const uint8_t *buf, size_t len,
    struct swim_msg *msg)
{
	size_t body, hlen;

	if (len < SWIM_HDR2_LEN + SWIM_MAC_LEN || len > SWIM_MAX_DGRAM)
		return -EBADMSG;
	body = len - SWIM_MAC_LEN;
	if (crypto_auth_verify(buf + body, buf, body, sw->key) != 0)
		return -EPERM;
	if (get32(buf) != SWIM_MAGIC || (buf[4] != SWIM_VERSION_OLD &&
	    (buf[4] != SWIM_VERSION || sw->hdr_max < SWIM_VERSION)))
		return -EBADMSG;
	hlen = buf[4] == SWIM_VERSION ? SWIM_HDR_LEN : SWIM_HDR2_LEN;
	msg->version = buf[4];
	msg->type = buf[5];
	msg->nupd = buf[6];
	msg->flags = buf[7];
	if (msg->type < SWIM_PING || msg->type > SWIM_LEAVE ||
	    msg->nupd > SWIM_MAX_UPDATES ||
	    body < hlen + (size_t)msg->nupd * SWIM_UPD_LEN)
		return -EBADMSG;
	msg->link_bad = 0;
	decode_links(sw, buf + hlen + msg->nupd * SWIM_UPD_LEN,
	    body - hlen - (size_t)msg->nupd * SWIM_UPD_LEN, msg);
	msg->sender = get32(buf + 8);
	msg->sender_inc = get32(buf + 12);
	msg->boot = get64(buf + 16);
	msg->seq = get64(buf + 24);
	msg->probe_seq = get32(buf + 32);
	msg->target = get32(buf + 36);
	msg->http_port = get16(buf + 40);
	msg->raft_port = get16(buf + 42);
	msg->target_addr = get32(buf + 44);
	msg->target_port = get16(buf + 48);
	msg->gflops10 = get32(buf + 52);
	msg->mem_mib = get32(buf + 56);
	msg->ckpt_step = get64(buf + 60);
	msg->reepoch = get64(buf + 68);
	msg->train_gflops10 = hlen == SWIM_HDR_LEN ? get32(buf + 76) : 0;
	msg->dp_port = get16(buf + 50);
	if (msg->sender == 0 || msg->sender == sw->self.id)
		return -EBADMSG;
	for (int i = 0; i < msg->nupd; i++) {
		const uint8_t *p = buf + hlen + i * SWIM_UPD_LEN;
		struct swim_member *u = &msg->upd[i];

		memset(u, 0, sizeof(*u));
		u->id = get32(p);
		u->addr = get32(p + 4);
		u->incarnation = get32(p + 8);
		u->port = get16(p + 12);
		u->http_port = get16(p + 14);
		u->raft_port = get16(p + 16);
		u->state = p[18];
		if (u->id == 0 || u->state > SWIM_LEFT)
			return -EBADMSG;
	}
	return 0;
}

/* ---- applying what we learn ------------------------------------------ */

static void
refute(struct swim *sw, uint32_t inc)
{
	if (sw->leaving)
		return;
	if (inc >= sw->self.incarnation) {
		sw->self.incarnation = inc + 1;
		sw->self.gossip_left = gossip_budget(sw);
		sw->st.refuted++;
	}
}

/* One update about member u (from gossip or from its own datagram). */
static void
apply(struct swim *sw, const struct swim_member *u, uint64_t now)
{
	struct swim_member *m;

	if (u->id == sw->self.id) {
		if (u->state != SWIM_ALIVE)
			refute(sw, u->incarnation);
		return;
	}
	if ((m = find(sw, u->id)) == NULL) {
		if (u->state == SWIM_DEAD || u->state == SWIM_LEFT ||
		    u->addr == 0)
			return;		/* nothing to learn from */
		if ((m = member_add(sw, u->id, now)) == NULL)
			return;
		m->addr = u->addr;
		m->port = u->port;
		m->http_port = u->http_port;
		m->raft_port = u->raft_port;
		m->incarnation = u->incarnation;
		m->state = (uint8_t)u->state;
		m->gossip_left = gossip_budget(sw);
		if (u->state == SWIM_SUSPECT)
			m->suspect_deadline = now + sw->conf.suspect_timeout_ms;
		if (sw->change)
			sw->change(sw->ctx, m, m->state);
		return;
	}
	if (u->addr != 0 && u->state == SWIM_ALIVE &&
	    u->incarnation > m->incarnation) {
		m->addr = u->addr;
		m->port = u->port;
		m->http_port = u->http_port;
		m->raft_port = u->raft_port;
	}
	switch (u->state) {
	case SWIM_ALIVE:
		if (u->incarnation > m->incarnation)
			set_state(sw, m, SWIM_ALIVE, u->incarnation, now);
		break;
	case SWIM_SUSPECT:
		if ((m->state == SWIM_ALIVE &&
		    u->incarnation >= m->incarnation) ||
		    (m->state == SWIM_SUSPECT &&
		    u->incarnation > m->incarnation))
			set_state(sw, m, SWIM_SUSPECT, u->incarnation, now);
		break;
	case SWIM_DEAD:
		if ((m->state == SWIM_ALIVE || m->state == SWIM_SUSPECT) &&
		    u->incarnation >= m->incarnation)
			set_state(sw, m, SWIM_DEAD, u->incarnation, now);
		break;
	case SWIM_LEFT:
		if (m->state != SWIM_LEFT && u->incarnation >= m->incarnation)
			set_state(sw, m, SWIM_LEFT, u->incarnation, now);
		break;
	}
}

static int
link_find(const struct swim *sw, uint32_t origin, uint32_t peer)
{
	for (int i = 0; i < sw->nlinks; i++)
		if (sw->links[i].origin == origin && sw->links[i].peer == peer)
			return i;
	return -1;
}

/* A member that can have (or be the far end of) a link row. */
static int
link_live(const struct swim *sw, uint32_t id)
{
	const struct swim_member *m;

	if (id == sw->self.id)
		return !sw->leaving;
	m = find((struct swim *)sw, id);
	return m != NULL && (m->state == SWIM_ALIVE ||
	    m->state == SWIM_SUSPECT);
}

/* A chunk of another origin's row: newer versions replace cells. */
static void
links_apply(struct swim *sw, const struct swim_msg *msg, uint64_t now)
{
	sw->st.link_rx++;
	if (msg->nlink <= 0 || msg->link[0].origin == sw->self.id ||
	    !link_live(sw, msg->link[0].origin))
		return;
	for (int k = 0; k < msg->nlink; k++) {
		const struct swim_link *u = &msg->link[k];
		int i = link_find(sw, u->origin, u->peer), v;

		if (i >= 0) {
			v = link_vcmp(u->boot, u->rseq, sw->links[i].boot,
			    sw->links[i].rseq);
			if (v < 0)
				continue;
			if (v == 0) {
				sw->links[i].recv_ms = now;
				continue;
			}
		} else {
			if (!link_live(sw, u->peer))
				continue;
			if (sw->nlinks == SWIM_LINK_CELLS) {
				sw->st.link_full++;
				continue;
			}
			i = sw->nlinks++;
		}
		sw->links[i] = *u;
		sw->links[i].recv_ms = now;
	}
}

/* Drops cells of dead or departed members, and expired ones. */
static void
links_gc(struct swim *sw, uint64_t now)
{
	for (int i = 0; i < sw->nlinks; ) {
		const struct swim_link *c = &sw->links[i];

		if (!link_live(sw, c->origin) || !link_live(sw, c->peer) ||
		    (c->origin != sw->self.id &&
		    c->recv_ms + SWIM_LINK_TTL_MS < now))
			sw->links[i] = sw->links[--sw->nlinks];
		else
			i++;
	}
}

int
swim_links_set(struct swim *sw, uint64_t now, const struct swim_link *row,
    int n)
{
	int kept = 0;

	for (int i = 0; i < sw->nlinks; )
		if (sw->links[i].origin == sw->self.id)
			sw->links[i] = sw->links[--sw->nlinks];
		else
			i++;
	sw->link_rseq++;
	for (int k = 0; k < n; k++) {
		struct swim_link *c;

		if (row[k].peer == 0 || row[k].peer == sw->self.id ||
		    link_find(sw, sw->self.id, row[k].peer) >= 0)
			continue;
		if (sw->nlinks == SWIM_LINK_CELLS) {
			sw->st.link_full++;
			break;
		}
		c = &sw->links[sw->nlinks++];
		*c = row[k];
		c->origin = sw->self.id;
		c->boot = sw->self.boot;
		c->rseq = sw->link_rseq;
		c->recv_ms = now;
		kept++;
	}
	return kept;
}

int
swim_links(const struct swim *sw, const struct swim_link **cells)
{
	*cells = sw->links;
	return sw->nlinks;
}

/* Anti-replay per sender. @return 0 to accept. */
static int
replay_check(struct swim_member *m, uint64_t boot, uint64_t seq)
{
	if (boot < m->boot)
		return -1;
	if (boot > m->boot) {
		m->boot = boot;
		m->seq_hi = seq;
		m->seq_window = 1;
		return 0;
	}
	if (seq > m->seq_hi) {
		uint64_t shift = seq - m->seq_hi;

		m->seq_window = shift >= SWIM_REPLAY_WINDOW ? 1 :
		    (m->seq_window << shift) | 1;
		m->seq_hi = seq;
		return 0;
	}
	if (m->seq_hi - seq >= SWIM_REPLAY_WINDOW)
		return -1;
	if (m->seq_window & (1ull << (m->seq_hi - seq)))
		return -1;
	m->seq_window |= 1ull << (m->seq_hi - seq);
	return 0;
}

static void
probe_acked(struct swim *sw, uint32_t target, uint32_t seq, uint64_t now,
    int direct)
{
	struct swim_member *m;

	if (sw->probe_target == 0 || target != sw->probe_target ||
	    seq != sw->probe_seq || sw->probe_acked)
		return;
	sw->probe_acked = 1;
	if ((m = find(sw, target)) != NULL && direct)
		m->rtt_ms = sw->clock_us ? (double)(sw->clock_us() -
		    sw->probe_sent_us) / 1000.0 : (double)(now - sw->probe_sent);
}

void
swim_recv(struct swim *sw, uint64_t now, uint32_t addr, uint16_t port,
    const void *buf, size_t len)
{
	struct swim_msg msg;
	struct swim_member *m, self;
	int rc, fresh = 0;

	sw->st.rx++;
	sw->st.rx_bytes += len;
	if ((rc = decode(sw, buf, len, &msg)) < 0) {
		if (rc == -EPERM)
			sw->st.bad_mac++;
		else
			sw->st.malformed++;
		return;
	}
	if (sw->leaving)
		return;
	/* the sender itself: its datagram says it is alive (or leaving) */
	if ((m = find(sw, msg.sender)) == NULL) {
		if (msg.type == SWIM_LEAVE)
			return;
		if ((m = member_add(sw, msg.sender, now)) == NULL)
			return;
		fresh = 1;
	}
	if (replay_check(m, msg.boot, msg.seq) < 0) {
		sw->st.replayed++;
		return;
	}
	m->last_heard_ms = now;
	m->flags = msg.flags;
	m->gflops10 = msg.gflops10;
	/* a version 2 datagram of a node that speaks 3 (sent before it
	 * heard our flag) says nothing about its speed */
	if (msg.version == SWIM_VERSION || !(msg.flags & SWIM_F_HDR3))
		m->train_gflops10 = msg.train_gflops10;
	m->mem_mib = msg.mem_mib;
	m->ckpt_step = msg.ckpt_step;
	m->reepoch = msg.reepoch;
	m->dp_port = msg.dp_port;
	memset(&self, 0, sizeof(self));
	self.id = msg.sender;
	self.addr = addr;
	self.port = port;
	self.http_port = msg.http_port;
	self.raft_port = msg.raft_port;
	self.incarnation = msg.sender_inc;
	self.state = msg.type == SWIM_LEAVE ? SWIM_LEFT : SWIM_ALIVE;
	if (fresh) {
		m->addr = addr;
		m->port = port;
		m->http_port = msg.http_port;
		m->raft_port = msg.raft_port;
		set_state(sw, m, SWIM_ALIVE, msg.sender_inc, now);
	} else {
		/* a dead member that does not know yet hears it by gossip
		 * (its DEAD update is still being spread) and refutes */
		if (m->state == SWIM_DEAD && msg.sender_inc <= m->incarnation &&
		    m->gossip_left == 0)
			m->gossip_left = gossip_budget(sw);
		apply(sw, &self, now);
	}
	for (int i = 0; i < msg.nupd; i++)
		apply(sw, &msg.upd[i], now);
	if (msg.link_bad)
		sw->st.link_malformed++;
	else if (msg.nlink >= 0)
		links_apply(sw, &msg, now);

	switch (msg.type) {
	case SWIM_PING:
		send_msg(sw, addr, port, SWIM_ACK, msg.probe_seq,
		    sw->self.id, 0, 0);
		break;
	case SWIM_ACK:
		/* direct (target == sender) or relayed by a helper */
		probe_acked(sw, msg.target, msg.probe_seq, now,
		    msg.target == msg.sender);
		for (int i = 0; i < SWIM_RELAYS; i++)
			if (sw->relay[i].expires > now &&
			    sw->relay[i].seq == msg.probe_seq &&
			    msg.target == msg.sender) {
				struct swim_member *req =
				    find(sw, sw->relay[i].req_id);

				if (req != NULL)
					send_msg(sw, req->addr, req->port,
					    SWIM_ACK, sw->relay[i].req_seq,
					    msg.sender, 0, 0);
				sw->relay[i].expires = 0;
			}
		break;
	case SWIM_PING_REQ: {
		/* probe the target for the sender */
		int slot = 0;
		uint32_t taddr = msg.target_addr;
		uint16_t tport = msg.target_port;
		struct swim_member *t = find(sw, msg.target);

		if (t != NULL && t->addr != 0) {
			taddr = t->addr;
			tport = t->port;
		}
		for (int i = 1; i < SWIM_RELAYS; i++)
			if (sw->relay[i].expires < sw->relay[slot].expires)
				slot = i;
		sw->relay[slot].seq = (uint32_t)rnd(sw) | 0x80000000u;
		sw->relay[slot].req_id = msg.sender;
		sw->relay[slot].req_seq = msg.probe_seq;
		sw->relay[slot].expires = now + sw->conf.probe_interval_ms;
		send_msg(sw, taddr, tport, SWIM_PING, sw->relay[slot].seq,
		    msg.target, 0, 0);
		break;
	}
	case SWIM_LEAVE:
		break;
	}
}

/* ---- the probe cycle ------------------------------------------------- */

static struct swim_member *
next_target(struct swim *sw)
{
	for (int tries = 0; tries < sw->norder; tries++) {
		struct swim_member *m;

		if (sw->order_pos >= sw->norder) {
			/* reshuffle at the end of a round (Fisher-Yates) */
			for (int i = sw->norder - 1; i > 0; i--) {
				int j = (int)(rnd(sw) % (uint64_t)(i + 1));
				uint32_t x = sw->order[i];

				sw->order[i] = sw->order[j];
				sw->order[j] = x;
			}
			sw->order_pos = 0;
		}
		m = find(sw, sw->order[sw->order_pos++]);
		if (m != NULL && (m->state == SWIM_ALIVE ||
		    m->state == SWIM_SUSPECT) && m->addr != 0)
			return m;
	}
	return NULL;
}

static void
probe_start(struct swim *sw, uint64_t now)
{
	struct swim_member *m = next_target(sw);

	sw->probe_end = now + sw->conf.probe_interval_ms;
	sw->probe_target = 0;
	if (m == NULL)
		return;
	sw->probe_target = m->id;
	sw->probe_seq = (uint32_t)rnd(sw) & 0x7fffffffu;
	sw->probe_sent = now;
	sw->probe_sent_us = sw->clock_us ? sw->clock_us() : now * 1000;
	sw->probe_acked = 0;
	sw->probe_indirect = 0;
	sw->st.probes++;
	send_msg(sw, m->addr, m->port, SWIM_PING, sw->probe_seq, m->id, 0, 0);
}

static void
probe_indirect(struct swim *sw, uint64_t now)
{
	struct swim_member *t = find(sw, sw->probe_target);
	int cand[SWIM_MAX_MEMBERS], nc = 0;

	(void)now;
	sw->probe_indirect = 1;
	if (t == NULL)
		return;
	for (int i = 0; i < sw->nm; i++)
		if (sw->m[i].state == SWIM_ALIVE && sw->m[i].id != t->id &&
		    sw->m[i].addr != 0)
			cand[nc++] = i;
	for (uint32_t k = 0; k < sw->conf.indirect && nc > 0; k++) {
		int j = (int)(rnd(sw) % (uint64_t)nc);
		struct swim_member *h = &sw->m[cand[j]];

		cand[j] = cand[--nc];
		sw->st.indirect++;
		send_msg(sw, h->addr, h->port, SWIM_PING_REQ, sw->probe_seq,
		    t->id, t->addr, t->port);
	}
	/* and try it directly once more: a lost datagram is not death */
	send_msg(sw, t->addr, t->port, SWIM_PING, sw->probe_seq, t->id, 0, 0);
}

static void
rejoin(struct swim *sw, uint64_t now)
{
	int cand[SWIM_MAX_MEMBERS], nc = 0;

	sw->next_rejoin = now + sw->conf.rejoin_interval_ms;
	for (int i = 0; i < sw->nm; i++)
		if ((sw->m[i].state == SWIM_DEAD ||
		    sw->m[i].state == SWIM_LEFT) && sw->m[i].addr != 0)
			cand[nc++] = i;
	if (nc > 0) {
		struct swim_member *m = &sw->m[cand[rnd(sw) % (uint64_t)nc]];

		send_msg(sw, m->addr, m->port, SWIM_PING, 0, m->id, 0, 0);
	}
	/* seeds: while alone, all of them; else one now and then */
	if (swim_count(sw, SWIM_ALIVE) + swim_count(sw, SWIM_SUSPECT) <= 1) {
		for (int i = 0; i < sw->nseeds; i++)
			send_msg(sw, sw->seeds[i].addr, sw->seeds[i].port,
			    SWIM_PING, 0, 0, 0, 0);
	} else if (sw->nseeds > 0) {
		int i = (int)(rnd(sw) % (uint64_t)sw->nseeds);

		send_msg(sw, sw->seeds[i].addr, sw->seeds[i].port, SWIM_PING,
		    0, 0, 0, 0);
	}
}

void
swim_tick(struct swim *sw, uint64_t now)
{
	if (sw->leaving)
		return;
	/* suspicion timeouts */
	for (int i = 0; i < sw->nm; i++) {
		struct swim_member *m = &sw->m[i];

		if (m->state == SWIM_SUSPECT && now >= m->suspect_deadline)
			set_state(sw, m, SWIM_DEAD, m->incarnation, now);
	}
	if (sw->probe_target != 0 && !sw->probe_acked &&
	    !sw->probe_indirect &&
	    now >= sw->probe_sent + sw->conf.probe_timeout_ms)
		probe_indirect(sw, now);
	if (now >= sw->probe_end) {
		if (sw->probe_target != 0 && !sw->probe_acked) {
			struct swim_member *m = find(sw, sw->probe_target);

			sw->st.probe_fail++;
			if (m != NULL && m->state == SWIM_ALIVE)
				set_state(sw, m, SWIM_SUSPECT, m->incarnation,
				    now);
		}
		probe_start(sw, now);
	}
	if (now >= sw->next_rejoin)
		rejoin(sw, now);
	if (now >= sw->link_next_gc) {
		links_gc(sw, now);
		sw->link_next_gc = now + sw->conf.probe_interval_ms;
	}
}

void
swim_leave(struct swim *sw, uint64_t now)
{
	int sent = 0;

	(void)now;
	sw->self.state = SWIM_LEFT;
	sw->self.gossip_left = gossip_budget(sw);
	for (int i = 0; i < sw->nm && sent < 8; i++)
		if (sw->m[i].state == SWIM_ALIVE ||
		    sw->m[i].state == SWIM_SUSPECT) {
			send_msg(sw, sw->m[i].addr, sw->m[i].port, SWIM_LEAVE,
			    0, 0, 0, 0);
			sent++;
		}
	sw->leaving = 1;
}

void
swim_introduce(struct swim *sw, uint64_t now, uint32_t addr, uint16_t port)
{
	(void)now;
	swim_add_seed(sw, addr, port);
	if (!sw->leaving)
		send_msg(sw, addr, port, SWIM_PING, 0, 0, 0, 0);
}
