/*
 * rdma_test.c: the RDMA backend (transport_rdma.c) end to end.
 *
 *   rdma_test absent
 *       where the kernel has no RDMA: transport = rdma fails with the
 *       errno, transport = auto falls back to tcp (run on the host);
 *   rdma_test local ADDR
 *       inside a guest with Soft-RoCE: two engines in this process over
 *       the rxe device of ADDR: connection setup, all-reduce and SEND/RECV
 *       of a 16 MiB buffer (RDMA WRITE with immediate through rings much
 *       smaller than the data: wraps and credits), bursts of small
 *       messages (record credits: more in flight than RECVs posted),
 *       teardown and reconnection, then a peer process that is killed;
 *       the all-reduce buffers lie in an "arena" registered with each
 *       engine (tp_ops mem_register, as main.c does with the workers'
 *       arena), so their chunks go out of it without a copy (counted);
 *   rdma_test node ID ADDR PEER_ID PEER_ADDR
 *       one engine (the killed peer above, or one of two guests):
 *       all-reduces with its peer until told to stop (SIGTERM).
 * Prints one line per case; exits 0 when all passed.
 */
#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "dataplane.h"

#define PORT_BASE	7470
#define CHUNK		(1u << 20)
#define BIG		(4u << 20)	/* floats: 16 MiB */

extern char **environ;

#define ARENA_BYTES	(2 * BIG * sizeof(float) + (1u << 20))

static struct dp *dps[3];
static int failed;
static uint8_t *arena;		/* what the engines register: buffers */

/* The engine's backend gets the arena, as main.c gives it. */
static void
arena_register(struct dp *dp)
{
	if (arena == NULL && (arena = mmap(NULL, ARENA_BYTES, PROT_READ |
	    PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED)
		arena = NULL;
	if (arena != NULL && dp->ops->mem_register != NULL)
		dp->ops->mem_register(dp->tp, arena, ARENA_BYTES);
}

/* Buffer i (1 or 2) of count floats in the arena (or malloc'd). */
static float *
arena_buf(int i, size_t count)
{
	size_t sz = (count * sizeof(float) + 4095) & ~(size_t)4095;

	if (arena == NULL || 2 * sz > ARENA_BYTES)
		return malloc(count * sizeof(float));
	return (float *)(arena + (size_t)(i - 1) * sz);
}

static void
arena_free(float *b)
{
	if (arena == NULL || (uint8_t *)b < arena ||
	    (uint8_t *)b >= arena + ARENA_BYTES)
		free(b);
}

struct done {
	int		fired;
	int		status;
	uint32_t	peer;
};

static void
on_done(struct dp_op *op, void *arg)
{
	struct done *d = arg;

	d->fired++;
	d->status = op->status;
	d->peer = op->err_peer;
}

static void
result(const char *name, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
result(const char *name, int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s: %s: ", ok ? "PASS" : "FAIL", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	failed |= !ok;
}

static struct dp *
node_new(uint32_t id, const char *transport, const char *addr,
    uint32_t peer, const char *paddr)
{
	struct dp_conf c = { .node_id = id, .epoch = 1, .chunk_bytes = CHUNK,
	    .peer_timeout_ms = 10000, .op_timeout_ms = 30000,
	    .port = (uint16_t)(PORT_BASE + id), .tcp_zerocopy = 0 };
	struct dp *dp;

	snprintf(c.transport, sizeof(c.transport), "%s", transport);
	snprintf(c.listen, sizeof(c.listen), "%s", addr);
	if ((dp = dp_new(&c)) == NULL)
		return NULL;
	if (peer_add(dp, peer, paddr, (uint16_t)(PORT_BASE + peer)) < 0) {
		dp_free(dp);
		return NULL;
	}
	return dp;
}

/* Drives the live engines until every d fired, cond holds, or ms pass. */
static int
drive(struct done *d, int n, int (*cond)(void), int ms)
{
	uint64_t end = dp_now_ns() + (uint64_t)ms * 1000000ull;

	while (dp_now_ns() < end) {
		int all = 1;

		for (int i = 1; i <= 2; i++)
			if (dps[i] != NULL)
				dp_progress(dps[i]);
		for (int i = 0; i < n; i++)
			all &= d[i].fired > 0;
		if (cond != NULL)
			all &= cond();
		if (all)
			return 1;
		usleep(50);
	}
	return 0;
}

static int
both_up(void)
{
	for (int i = 1; i <= 2; i++)
		if (dps[i] == NULL || dps[i]->peers[0]->state != DP_PEER_UP)
			return 0;
	return 1;
}

static int
both_up_1(void)
{
	return dps[1]->peers[0]->state == DP_PEER_UP;
}

static int
one_down(void)
{
	return dps[1]->peers[0]->state != DP_PEER_UP;
}

/* Integer-valued floats: every summation order is exact. */
static void
fill(float *b, size_t n, uint32_t seed)
{
	for (size_t k = 0; k < n; k++)
		b[k] = (float)((k * 2654435761u + seed) % 1000u);
}

static int
check_sum(const float *b, size_t n, uint32_t s1, uint32_t s2, size_t *bad)
{
	for (size_t k = 0; k < n; k++)
		if (b[k] != (float)((k * 2654435761u + s1) % 1000u) +
		    (float)((k * 2654435761u + s2) % 1000u)) {
			*bad = k;
			return 0;
		}
	return 1;
}

static int
allreduce(size_t count, const char *name)
{
	float *b[3];
	struct done d[2];
	size_t bad = 0;
	int ok;

	memset(d, 0, sizeof(d));
	for (int i = 1; i <= 2; i++) {
		struct dp_op_args a = { .opcode = ARC_DP_ALLREDUCE,
		    .group = 1, .count = count, .divisor = 1.0f };

		b[i] = arena_buf(i, count);
		fill(b[i], count, (uint32_t)i);
		a.buf = b[i];
		if (dp_post(dps[i], &a, on_done, &d[i - 1], 0) < 0)
			d[i - 1].fired = 1, d[i - 1].status = -EIO;
	}
	ok = drive(d, 2, NULL, 60000) && d[0].status == 0 &&
	    d[1].status == 0 && check_sum(b[1], count, 1, 2, &bad) &&
	    check_sum(b[2], count, 1, 2, &bad);
	result(name, ok, "%zu floats, status %d/%d%s", count, d[0].status,
	    d[1].status, ok ? ", exact on both" : "");
	arena_free(b[1]);
	arena_free(b[2]);
	return ok;
}

/* count floats, sent msgs times from 1 to 2, checked. */
static int
sendrecv(size_t count, int msgs, const char *name)
{
	struct done *d = calloc((size_t)msgs * 2, sizeof(*d));
	float **sb = calloc((size_t)msgs, sizeof(float *));
	float **rb = calloc((size_t)msgs, sizeof(float *));
	int ok = 1, fired;
	uint64_t t0 = dp_now_ns();

	for (int m = 0; m < msgs; m++) {
		struct dp_op_args s = { .opcode = ARC_DP_SEND, .peer = 2,
		    .count = count };
		struct dp_op_args r = { .opcode = ARC_DP_RECV, .peer = 1,
		    .count = count };

		sb[m] = malloc(count * sizeof(float));
		rb[m] = calloc(count, sizeof(float));
		fill(sb[m], count, (uint32_t)m + 7);
		s.buf = sb[m];
		r.buf = rb[m];
		if (dp_post(dps[2], &r, on_done, &d[2 * m + 1], 0) < 0 ||
		    dp_post(dps[1], &s, on_done, &d[2 * m], 0) < 0)
			ok = 0;
	}
	fired = ok && drive(d, msgs * 2, NULL, 60000);
	for (int m = 0; m < msgs && fired; m++)
		if (d[2 * m].status != 0 || d[2 * m + 1].status != 0 ||
		    memcmp(sb[m], rb[m], count * sizeof(float)) != 0)
			ok = 0;
	ok &= fired;
	result(name, ok, "%d x %zu bytes in %.2f s%s", msgs,
	    count * sizeof(float), (double)(dp_now_ns() - t0) / 1e9,
	    ok ? ", every byte as sent" : "");
	for (int m = 0; m < msgs; m++) {
		free(sb[m]);
		free(rb[m]);
	}
	free(sb);
	free(rb);
	free(d);
	return ok;
}

static int
test_absent(void)
{
	struct dp *dp;
	int r;

	if ((dp = node_new(1, "rdma", "127.0.0.1", 2, "127.0.0.1")) == NULL)
		return 1;
	r = dp_start(dp);
	result("rdma-absent", r < 0, "transport = rdma: %s (%s)",
	    strerror(-r), strerrorname_np(-r));
	dp_free(dp);
	if ((dp = node_new(1, "auto", "127.0.0.1", 2, "127.0.0.1")) == NULL)
		return 1;
	r = dp_start(dp);
	result("auto-fallback", r == 0 && dp->ops != NULL &&
	    strcmp(dp->ops->name, "tcp") == 0, "transport = auto: %s",
	    dp->ops != NULL ? dp->ops->name : "none");
	dp_free(dp);
	return failed;
}

static int
setup(const char *addr)
{
	uint32_t m[2] = { 1, 2 };
	int ok;

	for (int i = 1; i <= 2; i++) {
		if (dps[i] == NULL && (dps[i] = node_new((uint32_t)i, "rdma",
		    addr, (uint32_t)(3 - i), addr)) == NULL)
			return 0;
		if (dps[i]->ops == NULL) {
			if (dp_start(dps[i]) < 0)
				return 0;
			arena_register(dps[i]);
		}
		/* a restarted peer numbers its operations from 0 again */
		group_clear_all(dps[i]);
		(void)group_set(dps[i], 1, m, 2);
	}
	ok = drive(NULL, 0, both_up, 10000);
	return ok && strcmp(dps[1]->peers[0]->ops->name, "rdma") == 0;
}

static int
test_local(const char *addr, const char *self)
{
	struct done d[1];
	pid_t pid;
	char *argv[7];
	uint64_t t0;
	int ok, st;

	t0 = dp_now_ns();
	ok = setup(addr);
	result("connect", ok, "two engines over rdma_cm on %s in %.2f s",
	    addr, (double)(dp_now_ns() - t0) / 1e9);
	if (!ok)
		return 1;
	allreduce(1000, "allreduce-small");
	allreduce(BIG, "write-imm-arena");
	{
		uint64_t zc, copied;

		rdma_counts(dps[1]->tp, &zc, &copied);
		result("write-from-arena", zc > 0 && copied > 0, "%llu WRITEs "
		    "with the payload from the registered arena, %llu copied "
		    "(link messages)", (unsigned long long)zc,
		    (unsigned long long)copied);
	}
	sendrecv(BIG, 2, "sendrecv-big");
	sendrecv(100, 1000, "credits-records");
	sendrecv(200000, 64, "credits-bytes");

	/* teardown: node 2 goes away, node 1 notices; node 2 comes back */
	dp_free(dps[2]);
	dps[2] = NULL;
	t0 = dp_now_ns();
	ok = drive(NULL, 0, one_down, 10000);
	result("teardown", ok, "node 1 saw the link down in %.2f s: %s",
	    (double)(dp_now_ns() - t0) / 1e9, dps[1]->peers[0]->last_error);
	t0 = dp_now_ns();
	ok = setup(addr);
	result("reconnect", ok, "link up again in %.2f s",
	    (double)(dp_now_ns() - t0) / 1e9);
	if (ok)
		allreduce(BIG, "allreduce-after-reconnect");

	/* a peer process that disappears mid-operation */
	dp_free(dps[2]);
	dps[2] = NULL;
	drive(NULL, 0, one_down, 10000);
	argv[0] = (char *)self;
	argv[1] = "node";
	argv[2] = "2";
	argv[3] = (char *)addr;
	argv[4] = "1";
	argv[5] = (char *)addr;
	argv[6] = NULL;
	if (posix_spawn(&pid, self, NULL, NULL, argv, environ) != 0) {
		result("peer-killed", 0, "cannot spawn %s", self);
		goto out;
	}
	ok = drive(NULL, 0, both_up_1, 15000);
	if (!ok) {
		result("peer-killed", 0, "the child never connected");
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		goto out;
	}
	{
		/* an all-reduce the child takes part in, then it is killed */
		struct dp_op_args a = { .opcode = ARC_DP_ALLREDUCE,
		    .group = 1, .count = BIG, .divisor = 1.0f };
		float *b = calloc(BIG, sizeof(float));

		memset(d, 0, sizeof(d));
		a.buf = b;
		(void)dp_post(dps[1], &a, on_done, &d[0], 0);
		drive(NULL, 0, NULL, 50);
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		t0 = dp_now_ns();
		ok = drive(d, 1, one_down, 15000);
		result("peer-killed", ok && d[0].status < 0 &&
		    d[0].peer == 2, "op failed with %s (peer %u) after %.2f "
		    "s; link: %s", strerror(-d[0].status), d[0].peer,
		    (double)(dp_now_ns() - t0) / 1e9,
		    dps[1]->peers[0]->last_error);
		free(b);
	}
out:
	dp_free(dps[1]);
	dps[1] = NULL;
	return failed;
}

static volatile sig_atomic_t quit;

static void
on_term(int sig)
{
	(void)sig;
	quit = 1;
}

/* One engine: rounds all-reduces with its peer (0: until SIGTERM). */
static int
test_node(uint32_t id, const char *addr, uint32_t peer, const char *paddr,
    int rounds)
{
	uint32_t m[2] = { id < peer ? id : peer, id < peer ? peer : id };
	float *b;
	struct done d;
	size_t bad = 0;
	uint64_t t0, end;
	int ok = 1;

	signal(SIGTERM, on_term);
	if ((dps[1] = node_new(id, "rdma", addr, peer, paddr)) == NULL ||
	    dp_start(dps[1]) < 0 || group_set(dps[1], 1, m, 2) < 0) {
		result("node", 0, "node %u cannot start", id);
		return 1;
	}
	arena_register(dps[1]);
	b = arena_buf(1, BIG);
	if (!drive(NULL, 0, both_up_1, 60000)) {
		result("node-connect", 0, "node %u: peer %u never up", id,
		    peer);
		return 1;
	}
	result("node-connect", 1, "node %u: link to %u (%s) up over %s", id,
	    peer, paddr, dps[1]->peers[0]->ops->name);
	t0 = dp_now_ns();
	for (int r = 0; !quit && (rounds == 0 || r < rounds); r++) {
		struct dp_op_args a = { .opcode = ARC_DP_ALLREDUCE,
		    .group = 1, .count = BIG, .divisor = 1.0f, .buf = b };

		memset(&d, 0, sizeof(d));
		fill(b, BIG, id);
		if (dp_post(dps[1], &a, on_done, &d, 0) < 0)
			break;
		while (!quit && !d.fired)
			drive(&d, 1, NULL, 100);
		if (quit)
			break;
		if (d.status != 0 || !check_sum(b, BIG, 1, 2, &bad)) {
			ok = 0;
			break;
		}
	}
	if (rounds > 0) {
		result("two-guests-allreduce", ok, "node %u: %d all-reduces "
		    "of %u floats with node %u in %.2f s, status %d%s", id,
		    rounds, BIG, peer, (double)(dp_now_ns() - t0) / 1e9,
		    d.status, ok ? ", exact" : "");
		/* let the peer finish its last round before we leave */
		end = dp_now_ns() + 3000000000ull;
		while (dp_now_ns() < end)
			drive(NULL, 0, NULL, 100);
	}
	dp_free(dps[1]);
	arena_free(b);
	return !ok;
}

int
main(int argc, char *argv[])
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_init("rdma_test", getenv("RDMA_TEST_DEBUG") != NULL ?
	    LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	if (argc == 2 && strcmp(argv[1], "absent") == 0)
		return test_absent();
	if (argc == 3 && strcmp(argv[1], "local") == 0)
		return test_local(argv[2], argv[0]);
	if ((argc == 6 || argc == 7) && strcmp(argv[1], "node") == 0)
		return test_node((uint32_t)atoi(argv[2]), argv[3],
		    (uint32_t)atoi(argv[4]), argv[5],
		    argc == 7 ? atoi(argv[6]) : 0);
	fprintf(stderr, "usage: rdma_test absent | local ADDR | node ID ADDR "
	    "PEER_ID PEER_ADDR [ROUNDS]\n");
	return 2;
}
