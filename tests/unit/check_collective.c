/*
 * check_collective.c: the collectives of coll.c, on 1 to 4 engines in one
 * process over the loop backend, against independent local computations:
 * the exact ring summation order for random floats (bitwise), plain sums
 * for integer data (exact in any order), error bounds for lossy codecs;
 * then peers that die, and corrupted traffic.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "log.h"
#include "dataplane.h"

#define MAXN	4

static struct dp *dps[MAXN + 1];
static int ndps;
/* the backend of mesh(): loop, or tcp on 127.0.0.1 from tcp_port + 1 */
static const char *mesh_tp = "loop";
static uint16_t tcp_port;
static int drive_ms = 5000;

struct done {
	int		fired;
	int		status;
	uint32_t	peer;
	uint64_t	wire;
	uint64_t	raw;
	uint64_t	count;
	int		order;
};
static int done_seq;

static void
on_done(struct dp_op *op, void *arg)
{
	struct done *d = arg;

	d->fired++;
	d->status = op->status;
	d->peer = op->err_peer;
	d->wire = op->wire_bytes;
	d->raw = op->raw_bytes;
	d->count = op->recv_count;
	d->order = done_seq++;
}

static void unmesh(void);
static void bcast_sendrecv_case(size_t count, size_t pcount, size_t chunk,
    int recv_first);

static void
mesh(int n, size_t chunk, int timeout_ms)
{
	/* tcp: ports below the ephemeral range; taken ones: the next ones */
	for (int attempt = 0; attempt < 50; attempt++) {
		int r = 0;

		loop_reset();
		ndps = n;
		for (int i = 1; i <= n && r == 0; i++) {
			struct dp_conf c = { .node_id = (uint32_t)i,
			    .epoch = 1, .chunk_bytes = chunk,
			    .peer_timeout_ms = timeout_ms,
			    .op_timeout_ms = timeout_ms };

			snprintf(c.transport, sizeof(c.transport), "%s",
			    mesh_tp);
			strcpy(c.listen, "127.0.0.1");
			c.port = (uint16_t)(tcp_port + i);
			dps[i] = dp_new(&c);
			ck_assert_ptr_nonnull(dps[i]);
			for (int j = 1; j <= n; j++)
				ck_assert_int_eq(peer_add(dps[i], (uint32_t)j,
				    "127.0.0.1", (uint16_t)(tcp_port + j)), 0);
			if ((r = dp_start(dps[i])) < 0)
				ndps = i;
		}
		if (r == 0)
			return;
		ck_assert_int_eq(r, -EADDRINUSE);
		unmesh();
		tcp_port = (uint16_t)(20000 + (tcp_port - 20000 + 97) % 12000);
	}
	ck_abort_msg("no free ports for the tcp mesh");
}

/*
 * tcp: drives the engines until every link is up both ways.  Operations
 * are posted after that: while links come up, a node whose connect was
 * refused closes the peer's inbound connection too (link.c dp_on_down),
 * which the peer sees as a reset of a link that was up.
 */
static void
mesh_wait_up(void)
{
	uint64_t end = dp_now_ns() + 30000000000ull;
	int up = 0;

	while (!up && dp_now_ns() < end) {
		up = 1;
		for (int i = 1; i <= ndps; i++) {
			dp_progress(dps[i]);
			for (int k = 0; k < dps[i]->npeers; k++)
				up &= dps[i]->peers[k]->state == DP_PEER_UP;
		}
	}
	ck_assert_msg(up, "tcp links not up");
}

static void
unmesh(void)
{
	for (int i = 1; i <= ndps; i++) {
		dp_free(dps[i]);
		dps[i] = NULL;
	}
}

static void
group_all(uint32_t gid, const uint32_t *m, int n)
{
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(group_set(dps[m[i]], gid, m, n), 0);
}

/* Drives every live engine until all of d[0..n) fired or ms pass. */
static int
drive(struct done *d, int n, int ms)
{
	uint64_t end = dp_now_ns() + (uint64_t)ms * 1000000ull;

	while (dp_now_ns() < end) {
		int all = 1;

		for (int i = 1; i <= ndps; i++)
			if (dps[i] != NULL)
				dp_progress(dps[i]);
		for (int i = 0; i < n; i++)
			all &= d[i].fired > 0;
		if (all)
			return 1;
	}
	return 0;
}

static float
frand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (float)((int)(*s >> 8) % 20001 - 10000) / 997.0f;
}

/* All-reduce of random floats: bitwise equal to the ring order. */
static void
allreduce_case(int n, size_t count, size_t chunk, float divisor)
{
	uint32_t m[MAXN];
	float *x[MAXN + 1], *buf[MAXN + 1], *want;
	struct done d[MAXN + 1];
	unsigned seed = (unsigned)(count * 31 + (size_t)n);

	mesh(n, chunk, 2000);
	if (strcmp(mesh_tp, "tcp") == 0)
		mesh_wait_up();
	for (int i = 0; i < n; i++)
		m[i] = (uint32_t)i + 1;
	group_all(7, m, n);
	want = calloc(count + 1, sizeof(float));
	memset(d, 0, sizeof(d));
	for (int i = 1; i <= n; i++) {
		x[i] = malloc((count + 1) * sizeof(float));
		buf[i] = malloc((count + 1) * sizeof(float));
		for (size_t k = 0; k < count; k++)
			x[i][k] = frand(&seed);
		memcpy(buf[i], x[i], count * sizeof(float));
	}
	/*
	 * reference: small all-reduces (one chunk, DP_SMALL_BYTES) sum in
	 * rank order; ring ones sum segment j from rank j+1 around to j
	 */
	if (count * 4 <= DP_SMALL_BYTES && count * 4 <= chunk) {
		for (size_t k = 0; k < count; k++) {
			float acc = x[1][k];

			for (int r = 2; r <= n; r++)
				acc = acc + x[r][k];
			if (divisor != 0 && divisor != 1)
				acc = acc / divisor;
			want[k] = acc;
		}
	} else for (int j = 0; j < n; j++) {
		size_t s = coll_seg_start(count, n, j);
		size_t len = coll_seg_len(count, n, j);

		for (size_t k = s; k < s + len; k++) {
			float acc = x[(j + 1) % n + 1][k];

			for (int step = 2; step <= n; step++)
				acc = x[(j + step) % n + 1][k] + acc;
			if (divisor != 0 && divisor != 1)
				acc = acc / divisor;
			want[k] = acc;
		}
	}
	for (int i = 1; i <= n; i++) {
		struct dp_op_args a = { .opcode = ARC_DP_ALLREDUCE,
		    .group = 7, .buf = buf[i], .count = count,
		    .divisor = divisor };

		ck_assert_int_eq(dp_post(dps[i], &a, on_done, &d[i], 0), 0);
	}
	ck_assert_msg(drive(d + 1, n, drive_ms), "all-reduce n=%d count=%zu hung",
	    n, count);
	for (int i = 1; i <= n; i++) {
		ck_assert_int_eq(d[i].status, 0);
		for (size_t k = 0; k < count; k++)
			if (memcmp(&buf[i][k], &want[k], 4) != 0)
				ck_abort_msg("n=%d count=%zu rank %d [%zu]: "
				    "%.9g != %.9g", n, count, i, k,
				    buf[i][k], want[k]);
		free(x[i]);
		free(buf[i]);
	}
	free(want);
	unmesh();
}

/*
 * Which backend a link's outbound connection uses: the best that runs
 * here and, once the peer's hello told us, there too; one that failed
 * to connect is skipped until every candidate has failed once; no
 * backend in common falls back to trying ours (the peer may change).
 */
START_TEST(test_pick_backend)
{
	static const struct tp_ops fast = { .name = "fast",
	    .backend = DP_BACKEND_DPDK };
	static const struct tp_ops slow = { .name = "slow",
	    .backend = DP_BACKEND_TCP };
	static const struct tp_ops other = { .name = "other",
	    .backend = DP_BACKEND_RDMA };
	struct dp dp;
	struct dp_peer p;

	memset(&dp, 0, sizeof(dp));
	memset(&p, 0, sizeof(p));
	dp.tps[0].ops = &fast;
	dp.tps[1].ops = &slow;
	dp.ntp = 2;
	dp.running = DP_BACKEND_DPDK | DP_BACKEND_TCP;
	/* nothing known: the best */
	ck_assert_ptr_eq(dp_pick_backend(&dp, &p), &fast);
	/* it failed once: the next; both failed: the round starts again */
	p.tried = DP_BACKEND_DPDK;
	ck_assert_ptr_eq(dp_pick_backend(&dp, &p), &slow);
	p.tried = DP_BACKEND_DPDK | DP_BACKEND_TCP;
	ck_assert_ptr_eq(dp_pick_backend(&dp, &p), &fast);
	ck_assert_uint_eq(p.tried, 0);
	/* the peer runs tcp (and a backend we lack): tcp, even untried */
	p.backends = DP_BACKEND_TCP | DP_BACKEND_RDMA;
	ck_assert_ptr_eq(dp_pick_backend(&dp, &p), &slow);
	/* the peer runs both: the best, unless it just failed */
	p.backends = DP_BACKEND_TCP | DP_BACKEND_DPDK;
	ck_assert_ptr_eq(dp_pick_backend(&dp, &p), &fast);
	p.tried = DP_BACKEND_DPDK;
	ck_assert_ptr_eq(dp_pick_backend(&dp, &p), &slow);
	/* nothing in common: said once, then ours are tried again */
	p.tried = 0;
	p.backends = DP_BACKEND_RDMA;
	ck_assert_ptr_eq(dp_pick_backend(&dp, &p), &fast);
	ck_assert_int_eq(p.nocommon_logged, 1);
	ck_assert_uint_eq(p.backends, 0);
	/* a node that runs one backend only */
	dp.tps[0].ops = &other;
	dp.ntp = 1;
	dp.running = DP_BACKEND_RDMA;
	p.backends = DP_BACKEND_TCP;
	ck_assert_ptr_eq(dp_pick_backend(&dp, &p), &other);
}
END_TEST

/*
 * A node whose control hands it the new epoch later than its peer's did:
 * the peer's data of that epoch arrives first, is kept, and goes in once
 * the node runs the epoch; the all-reduce completes exact.  Data of an
 * older epoch is dropped and counted.
 */
START_TEST(test_epoch_late)
{
	struct imsg_dp_peer t[2];
	uint32_t m[2] = { 1, 2 };
	float a[1000], b[1000];
	struct done d[3];

	mesh(2, 4096, 2000);
	memset(t, 0, sizeof(t));
	for (int i = 0; i < 2; i++) {
		t[i].id = (uint32_t)i + 1;
		t[i].addr = htonl(0x7f000001);
		t[i].port = (uint16_t)(tcp_port + i + 1);
	}
	/* node 1 moves to epoch 2 and starts; node 2 is still in epoch 1 */
	ck_assert_int_eq(peer_set_table(dps[1], 2, t, 2), 0);
	ck_assert_int_eq(group_set(dps[1], 5, m, 2), 0);
	for (int k = 0; k < 1000; k++) {
		a[k] = (float)k;
		b[k] = (float)(2 * k);
	}
	memset(d, 0, sizeof(d));
	ck_assert_int_eq(dp_post(dps[1], &(struct dp_op_args){
	    .opcode = ARC_DP_ALLREDUCE, .group = 5, .buf = a, .count = 1000,
	    .divisor = 1 }, on_done, &d[1], 0), 0);
	drive(d + 1, 1, 300);
	ck_assert_int_eq(d[1].fired, 0);
	ck_assert_uint_gt(dps[2]->stats.future_kept, 0);
	ck_assert_uint_eq(dps[2]->stats.rx_bad, 0);
	/* node 2 gets there: the early data goes in */
	ck_assert_int_eq(peer_set_table(dps[2], 2, t, 2), 0);
	ck_assert_int_eq(group_set(dps[2], 5, m, 2), 0);
	ck_assert_int_eq(dp_post(dps[2], &(struct dp_op_args){
	    .opcode = ARC_DP_ALLREDUCE, .group = 5, .buf = b, .count = 1000,
	    .divisor = 1 }, on_done, &d[2], 0), 0);
	ck_assert_msg(drive(d + 1, 2, drive_ms), "late epoch: hung");
	ck_assert_int_eq(d[1].status, 0);
	ck_assert_int_eq(d[2].status, 0);
	for (int k = 0; k < 1000; k++) {
		ck_assert_float_eq(a[k], (float)(3 * k));
		ck_assert_float_eq(b[k], (float)(3 * k));
	}
	unmesh();
}
END_TEST

START_TEST(test_allreduce_exact_order)
{
	static const size_t counts[] = { 0, 1, 3, 7, 1024, 1025, 5003,
	    70001 };
	/* ARCEUS_SMALL (make valgrind): the short lengths only */
	size_t nc = getenv("ARCEUS_SMALL") ? 6 : sizeof(counts) /
	    sizeof(*counts);

	for (int n = 1; n <= 4; n++)
		for (size_t c = 0; c < nc; c++)
			allreduce_case(n, counts[c], 4096, 0);
	allreduce_case(3, 30001, 4096, 3.0f);
	allreduce_case(4, 9999, 8192, 4.0f);
	allreduce_case(3, 777, 65536, 3.0f);	/* small, with a divisor */
}
END_TEST

/*
 * The same over the tcp backend on loopback, with chunks large enough that
 * the copy steps' payloads are received in place (transport_tcp.c
 * place_start) and a last chunk of each segment small enough that it is
 * not: bitwise the ring order still, on every rank; and a broadcast and a
 * send/recv whose chunks are received in place.
 */
START_TEST(test_allreduce_tcp_in_place)
{
	mesh_tp = "tcp";
	tcp_port = (uint16_t)(20000 + getpid() % 12000);
	drive_ms = 60000;
	allreduce_case(2, 300001, 128 << 10, 0);
	allreduce_case(3, 300001, 128 << 10, 3.0f);
	bcast_sendrecv_case(200003, 300007, 128 << 10, 1);
	if (getenv("ARCEUS_SMALL") == NULL)
		allreduce_case(4, 1000003, 256 << 10, 0);
	mesh_tp = "loop";
	drive_ms = 5000;
}
END_TEST

/* Integer data: sums are exact in any order. */
static void
fill_int(float *b, size_t count, int rank, int salt)
{
	for (size_t k = 0; k < count; k++)
		b[k] = (float)((int)((k * 7 + (size_t)rank * 13 +
		    (size_t)salt) % 17) - 8);
}

START_TEST(test_reduce_scatter_allgather_subset)
{
	/* group {4, 2, 1} out of 4 nodes, in that ring order */
	static const uint32_t m[3] = { 4, 2, 1 };
	const size_t count = 10007;
	float *rs[5], *ag[5];
	struct done d[8];

	mesh(4, 4096, 2000);
	group_all(9, m, 3);
	memset(d, 0, sizeof(d));
	for (int r = 0; r < 3; r++) {
		uint32_t id = m[r];
		struct dp_op_args a = { .opcode = ARC_DP_REDUCE_SCATTER,
		    .group = 9, .count = count };
		struct dp_op_args b = { .opcode = ARC_DP_ALLGATHER,
		    .group = 9, .count = count };

		rs[id] = malloc(count * 4);
		ag[id] = calloc(count, 4);
		fill_int(rs[id], count, (int)id, 1);
		/* all-gather: rank r fills only its segment */
		for (size_t k = coll_seg_start(count, 3, r);
		    k < coll_seg_start(count, 3, r) + coll_seg_len(count, 3, r);
		    k++)
			ag[id][k] = (float)(k % 1000) + 0.5f * (float)r;
		a.buf = rs[id];
		b.buf = ag[id];
		ck_assert_int_eq(dp_post(dps[id], &a, on_done, &d[r], 0), 0);
		ck_assert_int_eq(dp_post(dps[id], &b, on_done, &d[3 + r], 0),
		    0);
	}
	ck_assert(drive(d, 6, 5000));
	for (int r = 0; r < 3; r++) {
		uint32_t id = m[r];
		size_t s = coll_seg_start(count, 3, r);

		ck_assert_int_eq(d[r].status, 0);
		ck_assert_int_eq(d[3 + r].status, 0);
		ck_assert_int_lt(d[r].order, d[3 + r].order);
		for (size_t k = s; k < s + coll_seg_len(count, 3, r); k++) {
			float want = 0;

			for (int q = 0; q < 3; q++) {
				float v[1];

				fill_int(v, 1, (int)m[q], 1 + (int)k * 0);
				/* fill_int(b, 1, ...) gives element 0 only */
				want += (float)((int)((k * 7 + m[q] * 13 + 1) %
				    17) - 8);
				(void)v;
			}
			ck_assert_msg(rs[id][k] == want, "rs rank %d [%zu]", r,
			    k);
		}
		for (int q = 0; q < 3; q++)
			for (size_t k = coll_seg_start(count, 3, q);
			    k < coll_seg_start(count, 3, q) +
			    coll_seg_len(count, 3, q); k++)
				ck_assert(ag[id][k] == (float)(k % 1000) +
				    0.5f * (float)q);
		free(rs[id]);
		free(ag[id]);
	}
	unmesh();
}
END_TEST

/*
 * Broadcast from node 3 over 4 nodes, and a send 2 -> 4 of an odd length
 * pcount into a larger receive buffer, posted after the data came
 * (stashed) or before it (over tcp: received in place).
 */
static void
bcast_sendrecv_case(size_t count, size_t pcount, size_t chunk,
    int recv_first)
{
	static const uint32_t m[4] = { 1, 2, 3, 4 };
	float *b[5], *src, *dst;
	struct done d[8];

	mesh(4, chunk, 2000);
	if (strcmp(mesh_tp, "tcp") == 0)
		mesh_wait_up();
	group_all(3, m, 4);
	memset(d, 0, sizeof(d));
	for (int i = 1; i <= 4; i++) {
		struct dp_op_args a = { .opcode = ARC_DP_BROADCAST,
		    .group = 3, .count = count, .peer = 3 };

		b[i] = malloc(count * 4);
		for (size_t k = 0; k < count; k++)
			b[i][k] = i == 3 ? (float)k * 0.25f : -1.0f;
		a.buf = b[i];
		ck_assert_int_eq(dp_post(dps[i], &a, on_done, &d[i - 1], 0),
		    0);
	}
	src = malloc(pcount * 4);
	dst = calloc(pcount + 999, 4);
	for (size_t k = 0; k < pcount; k++)
		src[k] = (float)k - 2500.5f;
	{
		struct dp_op_args r = { .opcode = ARC_DP_RECV, .peer = 2,
		    .buf = dst, .count = pcount + 999 };
		struct dp_op_args s = { .opcode = ARC_DP_SEND, .peer = 4,
		    .buf = src, .count = pcount };

		if (recv_first)
			ck_assert_int_eq(dp_post(dps[4], &r, on_done, &d[5],
			    0), 0);
		ck_assert_int_eq(dp_post(dps[2], &s, on_done, &d[4], 0), 0);
		for (int k = 0; k < 50; k++)
			for (int i = 1; i <= 4; i++)
				dp_progress(dps[i]);
		if (!recv_first)
			ck_assert_int_eq(dp_post(dps[4], &r, on_done, &d[5],
			    0), 0);
	}
	ck_assert(drive(d, 6, drive_ms));
	for (int i = 1; i <= 4; i++) {
		ck_assert_int_eq(d[i - 1].status, 0);
		for (size_t k = 0; k < count; k++)
			ck_assert(b[i][k] == (float)k * 0.25f);
		free(b[i]);
	}
	ck_assert_int_eq(d[4].status, 0);
	ck_assert_int_eq(d[5].status, 0);
	ck_assert_uint_eq(d[5].count, pcount);
	ck_assert(memcmp(src, dst, pcount * 4) == 0);
	ck_assert(dst[pcount] == 0.0f);
	free(src);
	free(dst);
	unmesh();
}

START_TEST(test_broadcast_and_sendrecv)
{
	bcast_sendrecv_case(12345, 5001, 4096, 0);
}
END_TEST

/* Several all-reduces in flight on one group complete in posting order. */
START_TEST(test_in_flight_order)
{
	static const uint32_t m[3] = { 1, 2, 3 };
	enum { NOPS = 6 };
	const size_t count = 4099;
	float *b[4][NOPS];
	struct done d[4][NOPS];

	mesh(3, 4096, 2000);
	group_all(1, m, 3);
	memset(d, 0, sizeof(d));
	done_seq = 0;
	for (int i = 1; i <= 3; i++)
		for (int o = 0; o < NOPS; o++) {
			struct dp_op_args a = { .opcode = ARC_DP_ALLREDUCE,
			    .group = 1, .count = count };

			b[i][o] = malloc(count * 4);
			fill_int(b[i][o], count, i, o);
			a.buf = b[i][o];
			ck_assert_int_eq(dp_post(dps[i], &a, on_done,
			    &d[i][o], 0), 0);
		}
	ck_assert(drive(&d[1][0], 3 * NOPS, 5000));
	for (int i = 1; i <= 3; i++)
		for (int o = 0; o < NOPS; o++) {
			ck_assert_int_eq(d[i][o].status, 0);
			if (o > 0)
				ck_assert_int_lt(d[i][o - 1].order,
				    d[i][o].order);
			for (size_t k = 0; k < count; k++) {
				float w = 0;

				for (int q = 1; q <= 3; q++)
					w += (float)((int)((k * 7 +
					    (size_t)q * 13 + (size_t)o) % 17) -
					    8);
				ck_assert(b[i][o][k] == w);
			}
			free(b[i][o]);
		}
	unmesh();
}
END_TEST

/* Compressed all-reduce: bf16 exact on small integers, int8 and top-k
 * within their bounds, wire bytes smaller than raw. */
START_TEST(test_allreduce_compressed)
{
	static const uint32_t m[4] = { 1, 2, 3, 4 };
	const size_t count = 20011;

	for (int comp = ARC_DP_COMP_BF16; comp <= ARC_DP_COMP_TOPK; comp++) {
		float *b[5], *truth;
		struct done d[5];
		unsigned seed = 99;
		double maxerr = 0, maxabs = 0;

		mesh(4, 4096, 2000);
		group_all(2, m, 4);
		memset(d, 0, sizeof(d));
		truth = calloc(count, 4);
		for (int i = 1; i <= 4; i++) {
			struct dp_op_args a = { .opcode = ARC_DP_ALLREDUCE,
			    .group = 2, .count = count, .comp = comp,
			    .ratio = 1.0f };

			b[i] = malloc(count * 4);
			for (size_t k = 0; k < count; k++) {
				b[i][k] = comp == ARC_DP_COMP_BF16 ?
				    (float)((int)(k % 61) - 30) :
				    frand(&seed);
				truth[k] += b[i][k];
			}
			a.buf = b[i];
			ck_assert_int_eq(dp_post(dps[i], &a, on_done,
			    &d[i], 0), 0);
		}
		ck_assert(drive(d + 1, 4, 5000));
		for (size_t k = 0; k < count; k++)
			if (fabs(truth[k]) > maxabs)
				maxabs = fabs(truth[k]);
		for (int i = 1; i <= 4; i++) {
			ck_assert_int_eq(d[i].status, 0);
			/* every rank ends with the same values */
			ck_assert(memcmp(b[i], b[1], count * 4) == 0);
			for (size_t k = 0; k < count; k++) {
				double e = fabs((double)b[i][k] - truth[k]);

				if (e > maxerr)
					maxerr = e;
			}
			if (comp != ARC_DP_COMP_TOPK)
				ck_assert_uint_lt(d[i].wire, d[i].raw);
		}
		if (comp == ARC_DP_COMP_BF16)
			ck_assert(maxerr == 0);
		else if (comp == ARC_DP_COMP_INT8)
			/* 7 quantizations of at most max/254 each */
			ck_assert_msg(maxerr < 7 * maxabs / 254 + 1e-3,
			    "int8 error %g (max %g)", maxerr, maxabs);
		else	/* ratio 1: top-k keeps everything, sparse or dense */
			ck_assert_msg(maxerr < 1e-3, "topk error %g", maxerr);
		for (int i = 1; i <= 4; i++)
			free(b[i]);
		free(truth);
		unmesh();
	}
}
END_TEST

/* A node dies mid-run: the others fail naming it, within the timeout. */
START_TEST(test_peer_death)
{
	static const uint32_t m[4] = { 1, 2, 3, 4 };
	const size_t count = 200000;
	float *b[5];
	struct done d[5];
	uint64_t t0;

	mesh(4, 4096, 300);
	group_all(5, m, 4);
	memset(d, 0, sizeof(d));
	/* let the links come up and do one good all-reduce */
	for (int k = 0; k < 100; k++)
		for (int i = 1; i <= 4; i++)
			dp_progress(dps[i]);
	for (int i = 1; i <= 4; i++) {
		struct dp_op_args a = { .opcode = ARC_DP_ALLREDUCE,
		    .group = 5, .count = count };

		b[i] = calloc(count, 4);
		a.buf = b[i];
		ck_assert_int_eq(dp_post(dps[i], &a, on_done, &d[i], 0), 0);
	}
	for (int k = 0; k < 3; k++)
		for (int i = 1; i <= 4; i++)
			dp_progress(dps[i]);
	t0 = dp_now_ns();
	loop_kill(3);
	dp_free(dps[3]);
	dps[3] = NULL;
	ck_assert(drive(d + 1, 2, 3000));
	ck_assert(drive(d + 4, 1, 3000));
	ck_assert_uint_lt(dp_now_ns() - t0, 1000000000ull);
	for (int i = 1; i <= 4; i++) {
		if (i == 3)
			continue;
		ck_assert_int_ne(d[i].status, 0);
		ck_assert_uint_eq(d[i].peer, 3);
	}
	for (int i = 1; i <= 4; i++)
		free(b[i]);
	unmesh();
}
END_TEST

/* Corrupted messages are dropped and counted; ops fail by timeout. */
START_TEST(test_corruption_counted)
{
	static const uint32_t m[2] = { 1, 2 };
	const size_t count = 50000;
	float *b[3];
	struct done d[3];

	mesh(2, 4096, 400);
	group_all(4, m, 2);
	memset(d, 0, sizeof(d));
	for (int k = 0; k < 50; k++)
		for (int i = 1; i <= 2; i++)
			dp_progress(dps[i]);
	fault_arm(FAULT_NET_CORRUPT, 5, EIO, 0);	/* the 5th message */
	for (int i = 1; i <= 2; i++) {
		struct dp_op_args a = { .opcode = ARC_DP_ALLREDUCE,
		    .group = 4, .count = count };

		b[i] = calloc(count, 4);
		a.buf = b[i];
		ck_assert_int_eq(dp_post(dps[i], &a, on_done, &d[i], 0), 0);
	}
	ck_assert(drive(d + 1, 2, 3000));
	ck_assert_uint_eq(fault_injected(FAULT_NET_CORRUPT), 1);
	fault_disarm_all();
	ck_assert_uint_eq(dps[1]->stats.rx_bad + dps[2]->stats.rx_bad, 1);
	/* one side misses a chunk: it times out naming the other */
	ck_assert(d[1].status == -ETIMEDOUT || d[2].status == -ETIMEDOUT);
	for (int i = 1; i <= 2; i++)
		if (d[i].status != 0)
			ck_assert_uint_eq(d[i].peer, (uint32_t)(3 - i));
	free(b[1]);
	free(b[2]);
	unmesh();
}
END_TEST

static Suite *
collective_suite(void)
{
	Suite *s = suite_create("collective");
	TCase *tc = tcase_create("loop");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_pick_backend);
	tcase_add_test(tc, test_epoch_late);
	tcase_add_test(tc, test_allreduce_exact_order);
	tcase_add_test(tc, test_allreduce_tcp_in_place);
	tcase_add_test(tc, test_reduce_scatter_allgather_subset);
	tcase_add_test(tc, test_broadcast_and_sendrecv);
	tcase_add_test(tc, test_in_flight_order);
	tcase_add_test(tc, test_allreduce_compressed);
	tcase_add_test(tc, test_peer_death);
	tcase_add_test(tc, test_corruption_counted);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(collective_suite());
	int nf;

	log_init("check_collective", getenv("CK_LOG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERR);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
