/*
 * check_swim.c: the SWIM state machine (control/swim.c) on a simulated
 * clock and network: join, crash and freeze detection times, no false
 * deaths under loss and delay or for a slow node, partitions and healing,
 * graceful leave, link rows (spread, replaced, dropped with their node,
 * malformed sections counted), and the authentication: wrong key, forgery, replay and
 * malformed datagrams are dropped and counted, never fatal.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "swim.h"

#define MAXN	16
#define MAXQ	65536
#define PORT	7700

struct pkt {
	uint64_t at;
	int	from, to;
	size_t	len;
	uint8_t	buf[SWIM_MAX_DGRAM];
};

struct node {
	struct swim sw;
	int	i;
	int	up;		/* running */
	int	frozen;		/* SIGSTOP: neither ticks nor receives */
	int	extra_delay;	/* ms on everything it sends and receives */
};

static struct sim {
	struct node n[MAXN];
	int	nn;
	uint64_t now;
	struct pkt *q;
	int	nq;
	int	cut[MAXN][MAXN];
	double	loss;
	int	delay, jitter;
	uint64_t rng;
	struct pkt last;	/* the last datagram sent, for replay */
} S;

static const struct swim_conf CONF = { 100, 40, 300, 3, 1000 };

/* The header length of a datagram: version 3 or (older) 2. */
static size_t
hlen_of(const uint8_t *buf)
{
	return buf[4] == SWIM_VERSION ? SWIM_HDR_LEN : SWIM_HDR2_LEN;
}

static double
urand(void)
{
	S.rng ^= S.rng >> 12;
	S.rng ^= S.rng << 25;
	S.rng ^= S.rng >> 27;
	return (double)((S.rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static uint32_t
addr_of(int i)
{
	return (10u << 24 | (uint32_t)(i + 1));
}

static void
sim_send(void *ctx, uint32_t addr, uint16_t port, const void *buf, size_t len)
{
	struct node *from = ctx;
	int to = (int)(addr & 0xff) - 1;
	struct pkt *p;

	if (to < 0 || to >= S.nn || port != PORT || S.nq == MAXQ)
		return;
	memcpy(S.last.buf, buf, len);
	S.last.len = len;
	S.last.from = from->i;
	S.last.to = to;
	if (S.cut[from->i][to] || urand() < S.loss)
		return;
	p = &S.q[S.nq++];
	p->at = S.now + 1 + (uint64_t)S.delay + (uint64_t)(urand() * S.jitter) +
	    (uint64_t)from->extra_delay + (uint64_t)S.n[to].extra_delay;
	p->from = from->i;
	p->to = to;
	p->len = len;
	memcpy(p->buf, buf, len);
}

static void
sim_init(int nn, unsigned seed)
{
	unsigned char key[SWIM_KEY_LEN];

	memset(&S, 0, sizeof(S));
	S.q = calloc(MAXQ, sizeof(*S.q));
	S.rng = seed * 0x9E3779B97F4A7C15ull + 1;
	S.nn = nn;
	S.now = 1000;
	memset(key, 0x5a, sizeof(key));
	for (int i = 0; i < nn; i++) {
		struct node *n = &S.n[i];

		n->i = i;
		n->up = 1;
		ck_assert_int_eq(swim_init(&n->sw, &CONF, (uint32_t)(100 + i),
		    S.now * 1000000ull, key, 8080, 7701, sim_send, NULL, n), 0);
		if (i > 0)
			swim_add_seed(&n->sw, addr_of(0), PORT);
	}
}

static void
sim_fini(void)
{
	for (int i = 0; i < S.nn; i++)
		swim_fini(&S.n[i].sw);
	free(S.q);
}

static void
sim_step(void)
{
	S.now++;
	for (int k = 0; k < S.nq; ) {
		struct pkt *p = &S.q[k];

		if (p->at > S.now) {
			k++;
			continue;
		}
		if (S.n[p->to].up && !S.n[p->to].frozen)
			swim_recv(&S.n[p->to].sw, S.now, addr_of(p->from), PORT,
			    p->buf, p->len);
		S.q[k] = S.q[--S.nq];
	}
	for (int i = 0; i < S.nn; i++)
		if (S.n[i].up && !S.n[i].frozen)
			swim_tick(&S.n[i].sw, S.now);
}

static void
sim_run(uint64_t ms)
{
	for (uint64_t t = 0; t < ms; t++)
		sim_step();
}

/* State of node j as seen by node i. */
static int
seen(int i, int j)
{
	const struct swim_member *m = swim_find(&S.n[i].sw,
	    (uint32_t)(100 + j));

	return m ? m->state : -1;
}

/* Do all live nodes except `except` see j in state st? */
static int
all_see(int j, int st, int except)
{
	for (int i = 0; i < S.nn; i++)
		if (i != j && i != except && S.n[i].up && !S.n[i].frozen &&
		    seen(i, j) != st)
			return 0;
	return 1;
}

static int
converged(void)
{
	for (int i = 0; i < S.nn; i++)
		for (int j = 0; j < S.nn; j++)
			if (i != j && S.n[i].up && S.n[j].up &&
			    seen(i, j) != SWIM_ALIVE)
				return 0;
	return 1;
}

/* Runs until cond or limit ms; @return ms taken, or -1. */
#define RUN_UNTIL(cond, limit) ({					\
	uint64_t t0_ = S.now;						\
	long r_ = -1;							\
	while (S.now - t0_ < (limit)) {					\
		if (cond) { r_ = (long)(S.now - t0_); break; }		\
		sim_step();						\
	}								\
	r_;								\
})

static void
join_all(void)
{
	long t = RUN_UNTIL(converged(), 5000);

	ck_assert_msg(t >= 0, "no convergence in 5 s");
}

START_TEST(test_join)
{
	long t;

	sim_init(8, 1);
	t = RUN_UNTIL(converged(), 5000);
	printf("8 nodes converged in %ld ms\n", t);
	ck_assert_int_ge(t, 0);
	ck_assert_int_lt(t, 3000);
	sim_fini();
}
END_TEST

START_TEST(test_crash_detected)
{
	long t;

	sim_init(5, 2);
	join_all();
	sim_run(2000);
	S.n[3].up = 0;			/* SIGKILL */
	t = RUN_UNTIL(all_see(3, SWIM_DEAD, -1), 5000);
	printf("crash detected by all in %ld ms\n", t);
	ck_assert_int_ge(t, 0);
	ck_assert_int_lt(t, 1000);
	/* and nobody else was hurt */
	for (int j = 0; j < 5; j++)
		if (j != 3)
			ck_assert(all_see(j, SWIM_ALIVE, 3));
	sim_fini();
}
END_TEST

START_TEST(test_freeze_and_return)
{
	long t;

	sim_init(5, 3);
	join_all();
	S.n[2].frozen = 1;		/* SIGSTOP */
	t = RUN_UNTIL(all_see(2, SWIM_DEAD, -1), 5000);
	printf("frozen node declared dead in %ld ms\n", t);
	ck_assert_int_ge(t, 0);
	ck_assert_int_lt(t, 1000);
	sim_run(2000);
	S.n[2].frozen = 0;		/* SIGCONT: it refutes and returns */
	t = RUN_UNTIL(converged(), 5000);
	printf("thawed node back in %ld ms\n", t);
	ck_assert_int_ge(t, 0);
	ck_assert_uint_gt(S.n[2].sw.self.incarnation, 1);
	sim_fini();
}
END_TEST

START_TEST(test_no_false_death_under_loss)
{
	sim_init(8, 4);
	join_all();
	S.loss = 0.05;
	S.delay = 2;
	S.jitter = 8;
	/* 20 simulated seconds; 4 under valgrind (ARCEUS_SMALL) */
	for (int k = 0; k < (getenv("ARCEUS_SMALL") ? 4000 : 20000); k++) {
		sim_step();
		for (int j = 0; j < 8; j++)
			for (int i = 0; i < 8; i++)
				ck_assert_msg(i == j || seen(i, j) != SWIM_DEAD,
				    "node %d declared %d dead at 5%% loss", i, j);
	}
	sim_fini();
}
END_TEST

START_TEST(test_slow_node_not_dead)
{
	sim_init(5, 5);
	join_all();
	S.n[4].extra_delay = 30;	/* RTT 60 ms > probe timeout 40 ms */
	for (int k = 0; k < (getenv("ARCEUS_SMALL") ? 3000 : 10000); k++) {
		sim_step();
		for (int i = 0; i < 4; i++)
			ck_assert_msg(seen(i, 4) != SWIM_DEAD,
			    "slow node declared dead by %d", i);
	}
	sim_fini();
}
END_TEST

START_TEST(test_partition_heals)
{
	long t;

	sim_init(5, 6);
	join_all();
	for (int a = 0; a < 5; a++)
		for (int b = 0; b < 5; b++)
			S.cut[a][b] = (a < 3) != (b < 3);
	t = RUN_UNTIL(all_see(3, SWIM_DEAD, 4) && all_see(4, SWIM_DEAD, 3) &&
	    seen(3, 0) == SWIM_DEAD && seen(4, 1) == SWIM_DEAD, 5000);
	printf("partition seen by both sides in %ld ms\n", t);
	ck_assert_int_ge(t, 0);
	ck_assert_int_lt(t, 1500);
	memset(S.cut, 0, sizeof(S.cut));
	t = RUN_UNTIL(converged(), 10000);
	printf("healed in %ld ms\n", t);
	ck_assert_int_ge(t, 0);
	sim_fini();
}
END_TEST

START_TEST(test_leave)
{
	long t;

	sim_init(5, 7);
	join_all();
	swim_leave(&S.n[1].sw, S.now);
	t = RUN_UNTIL(all_see(1, SWIM_LEFT, 1), 2000);
	ck_assert_int_ge(t, 0);
	ck_assert_int_lt(t, 300);
	sim_fini();
}
END_TEST

START_TEST(test_wrong_key_refused)
{
	unsigned char bad[SWIM_KEY_LEN];

	sim_init(5, 8);
	join_all();
	/* node 4 restarts with another key */
	swim_fini(&S.n[4].sw);
	memset(bad, 0x77, sizeof(bad));
	ck_assert_int_eq(swim_init(&S.n[4].sw, &CONF, 104, S.now * 1000000ull,
	    bad, 8080, 7701, sim_send, NULL, &S.n[4]), 0);
	swim_add_seed(&S.n[4].sw, addr_of(0), PORT);
	sim_run(3000);
	for (int i = 0; i < 4; i++)
		ck_assert_int_ne(seen(i, 4), SWIM_ALIVE);
	ck_assert_int_eq(swim_count(&S.n[4].sw, SWIM_ALIVE), 1);
	ck_assert_uint_gt(S.n[0].sw.st.bad_mac, 0);
	ck_assert_uint_gt(S.n[4].sw.st.bad_mac, 0);
	sim_fini();
}
END_TEST

START_TEST(test_replay_and_garbage)
{
	struct pkt p;
	uint8_t buf[SWIM_MAX_DGRAM + 64];
	unsigned char key[SWIM_KEY_LEN];
	uint64_t before;

	sim_init(3, 9);
	join_all();
	/* replay the last datagram (captured on the wire) */
	p = S.last;
	before = S.n[p.to].sw.st.replayed;
	swim_recv(&S.n[p.to].sw, S.now, addr_of(p.from), PORT, p.buf, p.len);
	swim_recv(&S.n[p.to].sw, S.now, addr_of(p.from), PORT, p.buf, p.len);
	ck_assert_uint_ge(S.n[p.to].sw.st.replayed, before + 1);
	/* one flipped bit: the MAC fails */
	before = S.n[p.to].sw.st.bad_mac;
	p.buf[20] ^= 1;
	swim_recv(&S.n[p.to].sw, S.now, addr_of(p.from), PORT, p.buf, p.len);
	ck_assert_uint_eq(S.n[p.to].sw.st.bad_mac, before + 1);
	/* random bytes of every length */
	for (int k = 0; k < (getenv("ARCEUS_SMALL") ? 2000 : 20000); k++) {
		size_t len = (size_t)(urand() * sizeof(buf));

		for (size_t b = 0; b < len; b++)
			buf[b] = (uint8_t)(urand() * 256);
		swim_recv(&S.n[0].sw, S.now, addr_of(1), PORT, buf, len);
	}
	/* authentic but malformed: the key holder's bug, still no crash */
	memset(key, 0x5a, sizeof(key));
	for (int k = 0; k < 2000; k++) {
		size_t len = SWIM_HDR_LEN + (size_t)(urand() * 8) *
		    SWIM_UPD_LEN;

		for (size_t b = 0; b < len; b++)
			buf[b] = (uint8_t)(urand() * 256);
		if (k & 1) {
			buf[0] = 0x41; buf[1] = 0x52; buf[2] = 0x53;
			buf[3] = 0x57; buf[4] = SWIM_VERSION;
		}
		crypto_auth(buf + len, buf, len, key);
		swim_recv(&S.n[0].sw, S.now, addr_of(1), PORT, buf,
		    len + SWIM_MAC_LEN);
	}
	ck_assert_uint_gt(S.n[0].sw.st.malformed, 1000);
	/* and the cluster is fine */
	sim_run(1000);
	ck_assert(converged());
	sim_fini();
}
END_TEST

/* Captures what a throwaway node sends. */
static uint8_t cap[SWIM_MAX_DGRAM];
static size_t ncap;

static void
cap_send(void *ctx, uint32_t addr, uint16_t port, const void *buf,
    size_t len)
{
	(void)ctx;
	(void)addr;
	(void)port;
	memcpy(cap, buf, len);
	ncap = len;
}

/* A datagram from node id, as node 0 would receive it. */
static void
hello_from(uint32_t id, uint64_t now)
{
	struct swim tmp;
	unsigned char key[SWIM_KEY_LEN];

	memset(key, 0x5a, sizeof(key));
	ck_assert_int_eq(swim_init(&tmp, &CONF, id, now * 1000000ull, key, 1,
	    1, cap_send, NULL, NULL), 0);
	swim_introduce(&tmp, now, addr_of(1), PORT);
	swim_fini(&tmp);
	swim_recv(&S.n[0].sw, now, (10u << 24) | (id & 0xffff), PORT, cap,
	    ncap);
}

START_TEST(test_full_table_forgets_the_long_dead)
{
	struct swim *sw;

	sim_init(1, 10);
	sw = &S.n[0].sw;
	/* fill the table with members that then go silent */
	for (uint32_t id = 1000; sw->nm < SWIM_MAX_MEMBERS; id++)
		hello_from(id, S.now);
	ck_assert_int_eq(sw->nm, SWIM_MAX_MEMBERS);
	/* all alive: a newcomer finds no room */
	hello_from(9000, S.now);
	ck_assert_ptr_null(swim_find(sw, 9000));
	/* they never answer: suspected, then dead (probing them takes
	 * rounds of 100 ms each; gossip of deaths is local here) */
	for (int k = 0; k < 200000 && swim_count(sw, SWIM_DEAD) < 10; k++)
		sim_step();
	ck_assert_int_ge(swim_count(sw, SWIM_DEAD), 10);
	hello_from(9001, S.now);
	ck_assert_ptr_nonnull(swim_find(sw, 9001));
	ck_assert_int_eq(swim_find(sw, 9001)->state, SWIM_ALIVE);
	ck_assert_uint_eq(sw->st.evicted, 1);
	ck_assert_int_eq(sw->nm, SWIM_MAX_MEMBERS);
	sim_fini();
}
END_TEST

/* ---- link rows --------------------------------------------------------- */

/* Node i's row: towards every other node, values that say who and whom. */
static void
set_row(int i)
{
	struct swim_link row[MAXN];
	int n = 0;

	memset(row, 0, sizeof(row));
	for (int j = 0; j < S.nn; j++) {
		if (j == i)
			continue;
		row[n].peer = (uint32_t)(100 + j);
		row[n].rtt_us = (uint32_t)(1000 * (i + 1) + j);
		row[n].bw_kib = (uint32_t)(100000 * (j + 1) + i);
		row[n].age_ms = 300;
		row[n].src = j % 2 ? SWIM_LINK_DATAPLANE : SWIM_LINK_PROBE;
		n++;
	}
	ck_assert_int_eq(swim_links_set(&S.n[i].sw, S.now, row, n), n);
}

/* Does node i hold cell (o -> p) with the values set_row gave it? */
static int
has_cell(int i, int o, int p)
{
	const struct swim_link *c;
	int n = swim_links(&S.n[i].sw, &c);

	for (int k = 0; k < n; k++)
		if (c[k].origin == (uint32_t)(100 + o) &&
		    c[k].peer == (uint32_t)(100 + p))
			return c[k].rtt_us == (uint32_t)(1000 * (o + 1) + p) &&
			    c[k].bw_kib == (uint32_t)(100000 * (p + 1) + o) &&
			    c[k].age_ms == 300;
	return 0;
}

/* Every live node holds the whole matrix of the live nodes. */
static int
matrix_everywhere(void)
{
	for (int i = 0; i < S.nn; i++)
		for (int o = 0; o < S.nn; o++)
			for (int p = 0; p < S.nn && S.n[i].up; p++)
				if (o != p && S.n[o].up && S.n[p].up &&
				    !has_cell(i, o, p))
					return 0;
	return 1;
}

/* Does any live node still hold a cell from or towards node d? */
static int
any_cell_of(int d)
{
	for (int i = 0; i < S.nn; i++) {
		const struct swim_link *c;
		int n;

		if (!S.n[i].up)
			continue;
		n = swim_links(&S.n[i].sw, &c);
		for (int k = 0; k < n; k++)
			if (c[k].origin == (uint32_t)(100 + d) ||
			    c[k].peer == (uint32_t)(100 + d))
				return 1;
	}
	return 0;
}

START_TEST(test_link_rows_spread)
{
	long t;

	/* 12 nodes, 11 peers each: a row fits one chunk; loss on */
	sim_init(12, 21);
	S.loss = 0.05;
	S.delay = 2;
	join_all();
	for (int i = 0; i < S.nn; i++)
		set_row(i);
	t = RUN_UNTIL(matrix_everywhere(), 5000);
	printf("link rows of 12 nodes everywhere in %ld ms\n", t);
	ck_assert_int_ge(t, 0);
	/* bound: two probe rounds (each node pings each other once a
	 * round, 12 x 100 ms; at 5% loss a round can miss a pair) */
	ck_assert_int_lt(t, 2400);
	/* a newer row replaces the old one everywhere */
	for (int i = 0; i < S.nn; i++)
		ck_assert_uint_gt(S.n[i].sw.st.link_rx, 0);
	{
		struct swim_link r;

		memset(&r, 0, sizeof(r));
		r.peer = 101;
		r.rtt_us = 77;
		r.src = SWIM_LINK_PROBE;
		swim_links_set(&S.n[0].sw, S.now, &r, 1);
	}
	t = RUN_UNTIL(({
		int ok = 1;
		for (int i = 1; i < S.nn; i++) {
			const struct swim_link *c;
			int n = swim_links(&S.n[i].sw, &c), f = 0;

			for (int k = 0; k < n; k++)
				if (c[k].origin == 100 && c[k].peer == 101 &&
				    c[k].rtt_us == 77)
					f = 1;
			ok &= f;
		}
		ok; }), 3000);
	ck_assert_int_ge(t, 0);
	/* and the cells it no longer has expire (TTL), never come back */
	t = RUN_UNTIL(!has_cell(5, 0, 3) && !has_cell(7, 0, 9),
	    SWIM_LINK_TTL_MS + 2000);
	ck_assert_int_ge(t, 0);
	sim_fini();
}
END_TEST

START_TEST(test_link_row_of_dead_dropped)
{
	long t;

	sim_init(6, 22);
	join_all();
	for (int i = 0; i < S.nn; i++)
		set_row(i);
	ck_assert_int_ge(RUN_UNTIL(matrix_everywhere(), 3000), 0);
	S.n[4].up = 0;			/* SIGKILL */
	t = RUN_UNTIL(!any_cell_of(4), 3000);
	printf("dead node's link row and column gone in %ld ms\n", t);
	ck_assert_int_ge(t, 0);
	ck_assert_int_lt(t, 1500);	/* death (~0.6 s) and one gc period */
	sim_run(1000);			/* relays never bring it back */
	ck_assert(!any_cell_of(4));
	ck_assert(matrix_everywhere());
	sim_fini();
}
END_TEST

/* Re-signs a datagram (body len) in place; @return its new length. */
static size_t
resign(uint8_t *buf, size_t body)
{
	unsigned char key[SWIM_KEY_LEN];

	memset(key, 0x5a, sizeof(key));
	crypto_auth(buf + body, buf, body, key);
	return body + SWIM_MAC_LEN;
}

/*
 * Old and new nodes together (a rolling upgrade): nodes 0-2 speak the
 * version 3 header, 3-5 only version 2.  Everyone is alive to everyone,
 * stays so, and link rows still spread; the new nodes learn each other's
 * measured training speed, the old ones never get a datagram they cannot
 * read (no malformed count); a member that goes old again (restarted with
 * an older build) gets version 2 once it says so.
 */
START_TEST(test_header_versions_mixed)
{
	uint64_t mal;
	long t;

	sim_init(6, 31);
	for (int i = 3; i < 6; i++)
		S.n[i].sw.hdr_max = SWIM_VERSION_OLD;
	for (int i = 0; i < 6; i++)
		S.n[i].sw.self.train_gflops10 = (uint32_t)(10 * (i + 1));
	t = RUN_UNTIL(converged(), 5000);
	ck_assert_int_ge(t, 0);
	sim_run(3000);
	ck_assert(converged());
	for (int i = 0; i < 6; i++) {
		ck_assert_uint_eq(S.n[i].sw.st.malformed, 0);
		for (int j = 0; j < 6; j++) {
			const struct swim_member *m;

			if (i == j)
				continue;
			m = swim_find(&S.n[i].sw, (uint32_t)(100 + j));
			ck_assert_ptr_nonnull(m);
			/* speed only between two new nodes */
			ck_assert_uint_eq(m->train_gflops10, i < 3 && j < 3 ?
			    (uint32_t)(10 * (j + 1)) : 0);
			ck_assert_int_eq(!!(m->flags & SWIM_F_HDR3), j < 3);
		}
	}
	/* the speed moves with the sender */
	S.n[1].sw.self.train_gflops10 = 7;
	t = RUN_UNTIL(swim_find(&S.n[0].sw, 101)->train_gflops10 == 7 &&
	    swim_find(&S.n[2].sw, 101)->train_gflops10 == 7, 3000);
	ck_assert_int_ge(t, 0);
	/* node 2 goes back to an old build: the others fall back to 2
	 * once they hear it (what was in flight, a few, is dropped) */
	S.n[2].sw.hdr_max = SWIM_VERSION_OLD;
	sim_run(2000);
	ck_assert(converged());
	mal = S.n[2].sw.st.malformed;
	ck_assert_uint_le(mal, 8);
	sim_run(2000);
	ck_assert(converged());
	ck_assert_uint_eq(S.n[2].sw.st.malformed, mal);
	ck_assert_uint_eq(swim_find(&S.n[0].sw, 102)->train_gflops10, 0);
	sim_fini();
}
END_TEST

START_TEST(test_link_malformed_dropped)
{
	static const struct swim_conf conf = { 100, 40, 300, 3, 1000 };
	unsigned char key[SWIM_KEY_LEN];
	struct swim tmp, *sw;
	struct swim_link row[SWIM_LINK_CHUNK + 8];
	uint8_t good[SWIM_MAX_DGRAM], b[SWIM_MAX_DGRAM + 64];
	size_t glen, body, lsec;
	uint64_t bad0, mal0;
	const struct swim_link *c;
	uint32_t id = 500;

	sim_init(1, 23);
	sw = &S.n[0].sw;
	memset(key, 0x5a, sizeof(key));
	memset(row, 0, sizeof(row));
	for (int k = 0; k < SWIM_LINK_CHUNK + 8; k++) {
		row[k].peer = 100;	/* only node 0 is known: one cell */
		row[k].rtt_us = 5;
		row[k].src = SWIM_LINK_DATAPLANE;
	}
	/* a sender whose row is one entry towards node 0 */
	ck_assert_int_eq(swim_init(&tmp, &conf, id, S.now * 1000000ull, key,
	    1, 1, cap_send, NULL, NULL), 0);
	ck_assert_int_eq(swim_links_set(&tmp, S.now, row,
	    SWIM_LINK_CHUNK + 8), 1);
	swim_introduce(&tmp, S.now, addr_of(0), PORT);
	memcpy(good, cap, ncap);
	glen = ncap;
	body = glen - SWIM_MAC_LEN;
	lsec = body - hlen_of(good) - good[6] * SWIM_UPD_LEN;
	ck_assert_uint_eq(lsec, SWIM_LINK_HDR_LEN + SWIM_LINK_ENT_LEN);
	swim_recv(sw, S.now, addr_of(5), PORT, good, glen);
	ck_assert_int_eq(swim_links(sw, &c), 1);
	ck_assert_uint_eq(c[0].origin, id);
	ck_assert_uint_eq(c[0].rtt_us, 5);

	/* each of these: the link section is dropped and counted; the
	 * datagram still counts for membership (fresh sequence each) */
	for (int kind = 0; kind < 7; kind++) {
		size_t len = body;
		uint8_t *l;

		mal0 = sw->st.link_malformed;
		/* a fresh sequence: re-encode from the sender */
		swim_introduce(&tmp, S.now, addr_of(0), PORT);
		memcpy(b, cap, ncap);
		l = b + hlen_of(b) + b[6] * SWIM_UPD_LEN;
		switch (kind) {
		case 0: l[0] = 9; break;		/* unknown version */
		case 1: l[1] = 2; break;		/* count > entries */
		case 2: l[1] = 200; break;		/* count > chunk */
		case 3: len -= 3; break;		/* truncated */
		case 4: len = hlen_of(b) + b[6] * SWIM_UPD_LEN + 7;
			break;				/* short header */
		case 5: l[SWIM_LINK_HDR_LEN + 14] = 7; break;	/* source */
		case 6: memset(l + SWIM_LINK_HDR_LEN, 0, 4); break; /* peer 0 */
		}
		len = resign(b, len);
		swim_recv(sw, S.now, addr_of(5), PORT, b, len);
		ck_assert_uint_eq(sw->st.link_malformed, mal0 + 1);
		ck_assert_int_eq(swim_find(sw, id)->state, SWIM_ALIVE);
	}
	/* oversized: the whole datagram is malformed */
	mal0 = sw->st.malformed;
	memset(b, 0, sizeof(b));
	memcpy(b, good, body);
	swim_recv(sw, S.now, addr_of(5), PORT, b,
	    resign(b, SWIM_MAX_DGRAM + 8 - SWIM_MAC_LEN));
	ck_assert_uint_eq(sw->st.malformed, mal0 + 1);
	/* random authentic link sections: never a crash, never a cell
	 * from nowhere (the only live peer is node 0 itself) */
	bad0 = sw->st.link_malformed;
	for (int k = 0; k < 3000; k++) {
		size_t hl = hlen_of(good) + good[6] * SWIM_UPD_LEN;
		size_t rl = (size_t)(urand() * (SWIM_MAX_DGRAM - SWIM_MAC_LEN -
		    hl + 1));

		swim_introduce(&tmp, S.now, addr_of(0), PORT);
		memcpy(b, cap, hl);
		for (size_t i = 0; i < rl; i++)
			b[hl + i] = (uint8_t)(urand() * 256);
		if (k % 2 && rl > 0)
			b[hl] = SWIM_LINK_VERSION;
		swim_recv(sw, S.now, addr_of(5), PORT, b, resign(b, hl + rl));
	}
	ck_assert_uint_gt(sw->st.link_malformed, bad0 + 2000);
	ck_assert_int_le(swim_links(sw, &c), 1);
	swim_fini(&tmp);
	sim_fini();
}
END_TEST

static Suite *
swim_suite(void)
{
	Suite *s = suite_create("swim");
	TCase *tc = tcase_create("sim");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_join);
	tcase_add_test(tc, test_crash_detected);
	tcase_add_test(tc, test_freeze_and_return);
	tcase_add_test(tc, test_no_false_death_under_loss);
	tcase_add_test(tc, test_slow_node_not_dead);
	tcase_add_test(tc, test_partition_heals);
	tcase_add_test(tc, test_leave);
	tcase_add_test(tc, test_wrong_key_refused);
	tcase_add_test(tc, test_replay_and_garbage);
	tcase_add_test(tc, test_full_table_forgets_the_long_dead);
	tcase_add_test(tc, test_link_rows_spread);
	tcase_add_test(tc, test_link_row_of_dead_dropped);
	tcase_add_test(tc, test_link_malformed_dropped);
	tcase_add_test(tc, test_header_versions_mixed);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(swim_suite());
	int nf;

	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf != 0;
}
