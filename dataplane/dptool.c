/*
 * dptool.c: arceus-dptool, the dataplane's operator and test tool.
 *
 *   arceus-dptool [-s sock] status | links | probe PEER [MiB]
 *   arceus-dptool [-s sock] peers EPOCH ID@A.B.C.D:PORT ...
 *   arceus-dptool [-s sock] group GID ID,ID,...
 *   arceus-dptool [-s sock] test -g GID -m ID,ID,... [-c comp] [-n N,N,..]
 *   arceus-dptool [-s sock] hammer -g GID -m ID,... [-t seconds]
 *   arceus-dptool [-s sock] bench -g GID -m ID,... [-i iters] BYTES...
 *
 * `test` is the worker of the multi-host test: it attaches through the
 * arena like a real worker and checks every collective against a local
 * computation of the expected values (inputs are a known function of the
 * node id, so every node can compute every other's).  `hammer` runs
 * all-reduces until one fails and prints the failure; `bench` prints
 * all-reduce bandwidth.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arceus_dp.h"
#include "msg.h"

static const char *sock = "/run/arceus/dataplane.sock";
static int failures;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
usage(void)
{
	fprintf(stderr, "usage: arceus-dptool [-s sock] status | links | "
	    "probe PEER [MiB] | peers EPOCH ID@ADDR:PORT... | group GID IDS |"
	    "\n       test -g GID -m IDS [-c none|bf16|int8|topk] [-n N,..] |"
	    " hammer -g GID -m IDS [-t s] | bench -g GID -m IDS BYTES...\n");
	exit(2);
}

static int
parse_ids(const char *s, uint32_t *out, int max)
{
	int n = 0;
	char *end;

	while (*s && n < max) {
		unsigned long v = strtoul(s, &end, 10);

		if (end == s || v == 0 || v > UINT32_MAX)
			usage();
		out[n++] = (uint32_t)v;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			usage();
	}
	return n;
}

static int
ctl(void)
{
	char err[256];
	int fd = arc_dp_connect(sock, IMSG_ROLE_TOOL, err, sizeof(err));

	if (fd < 0) {
		fprintf(stderr, "arceus-dptool: %s\n", err);
		exit(1);
	}
	return fd;
}

static const char *const link_states[] = { "down", "connecting", "up" };

static void
print_link(const struct imsg_dp_link *l)
{
	printf("peer %u %s backend=%s backends=0x%x/0x%x rtt_us=%.1f "
	    "bw_probe_MBps=%.1f bw_live_MBps=%.1f tx=%llu rx=%llu rx_bad=%llu "
	    "downs=%llu%s%s\n",
	    l->peer, l->state < 3 ? link_states[l->state] : "?", l->backend,
	    l->backends_local, l->backends_peer,
	    (double)l->rtt_ns / 1e3, (double)l->bw_probe / 1e6,
	    (double)l->bw_live / 1e6, (unsigned long long)l->tx_bytes,
	    (unsigned long long)l->rx_bytes, (unsigned long long)l->rx_bad,
	    (unsigned long long)l->downs, l->last_error[0] ? " last_error=" :
	    "", l->last_error);
}

/* ---- test ---- */

static float
val(uint32_t id, int op, size_t k)
{
	return (float)((int)((k * 7 + id * 13 + (size_t)op * 5) % 17) - 8);
}

struct tctx {
	struct arc_dp	*dp;
	uint16_t	 group;
	uint32_t	 m[64];
	int		 n;
	int		 rank;
	uint32_t	 me;
	int		 comp;
	float		 ratio;
};

static void
report(const char *what, size_t count, const struct arc_dp_cpl *c,
    double maxerr, double bound)
{
	char e[128];

	if (c->status != 0) {
		printf("FAIL %s count=%zu: %s\n", what, count,
		    arc_dp_strerror(c, e, sizeof(e)));
		failures++;
	} else if (maxerr > bound) {
		printf("FAIL %s count=%zu: max error %g > %g\n", what, count,
		    maxerr, bound);
		failures++;
	} else
		printf("ok %s count=%zu wire=%llu raw=%llu max_err=%g\n",
		    what, count, (unsigned long long)c->wire_bytes,
		    (unsigned long long)c->raw_bytes, maxerr);
	fflush(stdout);
}

static size_t
seg_start(size_t count, int n, int j)
{
	return (size_t)j * (count / (size_t)n) +
	    ((size_t)j < count % (size_t)n ? (size_t)j : count % (size_t)n);
}

static size_t
seg_len(size_t count, int n, int j)
{
	return count / (size_t)n + ((size_t)j < count % (size_t)n);
}

static int64_t
post(struct tctx *t, int opcode, float *buf, size_t count, uint32_t peer,
    float divisor, float *resid)
{
	struct arc_dp_op op = { .opcode = opcode, .comp = t->comp,
	    .ratio = t->ratio, .divisor = divisor, .group = t->group,
	    .peer = peer, .buf = buf, .count = count, .residual = resid };
	int64_t id = arc_dp_post(t->dp, &op);

	if (id < 0) {
		printf("FAIL post opcode %d: %s\n", opcode, strerror((int)-id));
		failures++;
	}
	return id;
}

/* Error allowed for one rank's values (|v| <= 8) copied under comp. */
static double
bound1(const struct tctx *t)
{
	switch (t->comp) {
	case ARC_DP_COMP_INT8:
		return 8.0 / 127;
	case ARC_DP_COMP_TOPK:	/* a dropped value */
		return 8.0;
	default:		/* small integers are exact in bf16 */
		return 0;
	}
}

/* Error allowed for a sum of n ranks' values (|v| <= 8) under comp. */
static double
bound(const struct tctx *t, size_t count)
{
	(void)count;
	switch (t->comp) {
	case ARC_DP_COMP_INT8:	/* n-1 requantizations of sums <= 8n */
		return (double)t->n * 8.0 * t->n / 127.0;
	case ARC_DP_COMP_TOPK:	/* what top-k drops, everyone's */
		return 8.0 * t->n;
	default:		/* small integers: exact, bf16 too */
		return 0;
	}
}

static void
test_count(struct tctx *t, size_t count)
{
	struct arc_dp_cpl c[8];
	float *ar, *avg, *rs, *ag, *bc, *rx, *tx, *res = NULL;
	int64_t id[8];
	int left = (t->rank + t->n - 1) % t->n, right = (t->rank + 1) % t->n;
	size_t s;

	ar = arc_dp_alloc(t->dp, count * 4);
	avg = arc_dp_alloc(t->dp, count * 4);
	rs = arc_dp_alloc(t->dp, count * 4);
	ag = arc_dp_alloc(t->dp, count * 4);
	bc = arc_dp_alloc(t->dp, count * 4);
	rx = arc_dp_alloc(t->dp, (count + 3) * 4);
	tx = arc_dp_alloc(t->dp, count * 4);
	if (t->comp == ARC_DP_COMP_TOPK)
		res = arc_dp_alloc(t->dp, count * 4);
	if (ar == NULL || avg == NULL || rs == NULL || ag == NULL ||
	    bc == NULL || rx == NULL || tx == NULL ||
	    (t->comp == ARC_DP_COMP_TOPK && res == NULL)) {
		printf("FAIL count=%zu: arena region too small\n", count);
		failures++;
		return;
	}
	if (res != NULL)
		memset(res, 0, count * 4);
	for (size_t k = 0; k < count; k++) {
		ar[k] = val(t->me, 0, k);
		avg[k] = val(t->me, 1, k);
		rs[k] = val(t->me, 2, k);
		ag[k] = 0;
		bc[k] = -100;
		tx[k] = val(t->me, 5, k);
	}
	s = seg_start(count, t->n, t->rank);
	for (size_t k = s; k < s + seg_len(count, t->n, t->rank); k++)
		ag[k] = val(t->me, 3, k);
	for (size_t k = 0; k < count + 3; k++)
		rx[k] = -7;
	/* all of them in flight at once, as a worker would post buckets */
	id[0] = post(t, ARC_DP_ALLREDUCE, ar, count, 0, 0, res);
	id[1] = post(t, ARC_DP_ALLREDUCE, avg, count, 0, (float)t->n, NULL);
	id[2] = post(t, ARC_DP_REDUCE_SCATTER, rs, count, 0, 0, NULL);
	id[3] = post(t, ARC_DP_ALLGATHER, ag, count, 0, 0, NULL);
	id[4] = -1;	/* broadcast: below, once per root */
	id[5] = t->n > 1 ? post(t, ARC_DP_RECV, rx, count + 3, t->m[left], 0,
	    NULL) : -1;
	id[6] = t->n > 1 ? post(t, ARC_DP_SEND, tx, count, t->m[right], 0,
	    NULL) : -1;
	for (int i = 0; i < 7; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		if (id[i] >= 0 && arc_dp_wait(t->dp, (uint64_t)id[i], 60000,
		    &c[i]) < 0) {
			c[i].status = -ETIMEDOUT;
		}
	}
	{
		double e0 = 0, e1 = 0, e2 = 0, e3 = 0, e4 = 0, e5 = 0;

		for (size_t k = 0; k < count; k++) {
			float sum0 = 0, sum1 = 0, sum2 = 0;

			for (int r = 0; r < t->n; r++) {
				sum0 += val(t->m[r], 0, k);
				sum1 += val(t->m[r], 1, k);
				sum2 += val(t->m[r], 2, k);
			}
			e0 = fmax(e0, fabs((double)ar[k] - sum0));
			e1 = fmax(e1, fabs((double)avg[k] - sum1 /
			    (float)t->n));
			if (k >= s && k < s + seg_len(count, t->n, t->rank))
				e2 = fmax(e2, fabs((double)rs[k] - sum2));
		}
		for (int r = 0; r < t->n; r++)
			for (size_t k = seg_start(count, t->n, r);
			    k < seg_start(count, t->n, r) +
			    seg_len(count, t->n, r); k++)
				e3 = fmax(e3, fabs((double)ag[k] -
				    val(t->m[r], 3, k)));
		(void)e4;
		if (t->n > 1) {
			for (size_t k = 0; k < count; k++)
				e5 = fmax(e5, fabs((double)rx[k] -
				    val(t->m[left], 5, k)));
			for (size_t k = count; k < count + 3; k++)
				e5 = fmax(e5, fabs((double)rx[k] + 7));
			if (c[5].status == 0 && c[5].count != count)
				e5 = 1e9;
		}
		report("allreduce", count, &c[0], e0, bound(t, count));
		/* sum/n is no small integer: bf16 rounds it (8 bits) */
		report("allreduce-avg", count, &c[1], e1, bound(t, count) /
		    t->n + (t->comp == ARC_DP_COMP_BF16 ? 8.0 / 256 : 1e-6));
		report("reduce-scatter", count, &c[2], e2, bound(t, count));
		report("allgather", count, &c[3], e3, bound1(t));
		if (t->n > 1) {
			report("send", count, &c[6], 0, 0);
			report("recv", count, &c[5], e5, bound1(t));
		}
	}
	/* broadcast from every root, buffers filled before posting */
	for (int root = 0; root < t->n; root++) {
		struct arc_dp_cpl bcpl;
		double e = 0;

		for (size_t k = 0; k < count; k++)
			bc[k] = t->rank == root ? val(t->me, 4, k) : -100;
		id[7] = post(t, ARC_DP_BROADCAST, bc, count, t->m[root], 0,
		    NULL);
		memset(&bcpl, 0, sizeof(bcpl));
		if (id[7] < 0 || arc_dp_wait(t->dp, (uint64_t)id[7], 60000,
		    &bcpl) < 0)
			bcpl.status = -ETIMEDOUT;
		for (size_t k = 0; k < count; k++)
			e = fmax(e, fabs((double)bc[k] - val(t->m[root], 4, k)));
		report("broadcast", count, &bcpl, e, bound1(t));
	}
	(void)c[4];
	arc_dp_free(t->dp, ar);
	arc_dp_free(t->dp, avg);
	arc_dp_free(t->dp, rs);
	arc_dp_free(t->dp, ag);
	arc_dp_free(t->dp, bc);
	arc_dp_free(t->dp, rx);
	arc_dp_free(t->dp, tx);
	arc_dp_free(t->dp, res);
}

static int
parse_comp(const char *s, float *ratio)
{
	*ratio = 0;
	if (strcmp(s, "none") == 0)
		return ARC_DP_COMP_NONE;
	if (strcmp(s, "bf16") == 0)
		return ARC_DP_COMP_BF16;
	if (strcmp(s, "int8") == 0)
		return ARC_DP_COMP_INT8;
	if (strncmp(s, "topk", 4) == 0) {
		*ratio = s[4] == ':' ? strtof(s + 5, NULL) : 0.1f;
		return ARC_DP_COMP_TOPK;
	}
	usage();
	return 0;
}

static struct arc_dp *
attach(size_t bytes)
{
	char err[256];
	struct arc_dp *dp;

	/* the dataplane may be starting: retry for a few seconds */
	for (int i = 0; i < 100; i++) {
		if ((dp = arc_dp_attach(sock, bytes, err, sizeof(err))) != NULL)
			return dp;
		usleep(50000);
	}
	fprintf(stderr, "arceus-dptool: %s\n", err);
	exit(1);
}

/* Defines the group, retrying while peers are still unknown/starting. */
static void
setup_group(struct tctx *t)
{
	int r;

	t->rank = -1;
	for (int i = 0; i < t->n; i++)
		if (t->m[i] == t->me)
			t->rank = i;
	if (t->rank < 0) {
		fprintf(stderr, "arceus-dptool: node %u not in the group\n",
		    t->me);
		exit(2);
	}
	if ((r = arc_dp_group(t->dp, t->group, t->m, t->n)) < 0) {
		fprintf(stderr, "arceus-dptool: group %u: %s\n", t->group,
		    strerror(-r));
		exit(1);
	}
}

static void
parse_group_opts(int argc, char **argv, struct tctx *t, size_t *counts,
    int *ncounts, int *secs, int *iters)
{
	int ch;

	optind = 1;
	while ((ch = getopt(argc, argv, "g:m:c:n:t:i:")) != -1) {
		switch (ch) {
		case 'g':
			t->group = (uint16_t)atoi(optarg);
			break;
		case 'm':
			t->n = parse_ids(optarg, t->m, 64);
			break;
		case 'c':
			t->comp = parse_comp(optarg, &t->ratio);
			break;
		case 'n': {
			uint32_t v[32];
			int n = parse_ids(optarg, v, 32);

			for (int i = 0; i < n; i++)
				counts[i] = v[i];
			*ncounts = n;
			break;
		}
		case 't':
			*secs = atoi(optarg);
			break;
		case 'i':
			*iters = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (t->group == 0 || t->n == 0)
		usage();
}

static int
cmd_test(int argc, char **argv)
{
	struct tctx t = { 0 };
	size_t counts[32] = { 1, 2, 7, 1001, 65537, 300007 };
	int ncounts = 6, secs = 0, iters = 0;

	parse_group_opts(argc, argv, &t, counts, &ncounts, &secs, &iters);
	t.dp = attach(64u << 20);
	t.me = arc_dp_node_id(t.dp);
	setup_group(&t);
	for (int i = 0; i < ncounts; i++)
		test_count(&t, counts[i]);
	printf("%s: node %u group %u: %d failures\n", failures ? "FAIL" :
	    "PASS", t.me, t.group, failures);
	arc_dp_detach(t.dp);
	return failures ? 1 : 0;
}

static int
cmd_hammer(int argc, char **argv)
{
	struct tctx t = { 0 };
	size_t counts[32] = { 1 << 20 };
	int ncounts = 1, secs = 30, iters = 0;
	double end;
	float *b;
	long n = 0;

	parse_group_opts(argc, argv, &t, counts, &ncounts, &secs, &iters);
	t.dp = attach(counts[0] * 4 + (1u << 20));
	t.me = arc_dp_node_id(t.dp);
	setup_group(&t);
	if ((b = arc_dp_alloc(t.dp, counts[0] * 4)) == NULL)
		return 1;
	end = now_s() + secs;
	while (now_s() < end) {
		struct arc_dp_cpl c;
		char e[128];
		int64_t id;

		memset(b, 0, counts[0] * 4);
		if ((id = post(&t, ARC_DP_ALLREDUCE, b, counts[0], 0, 0,
		    NULL)) < 0)
			return 1;
		if (arc_dp_wait(t.dp, (uint64_t)id, -1, &c) < 0)
			return 1;
		if (c.status != 0) {
			printf("FAILED after %ld ops: peer=%u status=%d: %s\n",
			    n, c.peer, c.status, arc_dp_strerror(&c, e,
			    sizeof(e)));
			fflush(stdout);
			return 3;
		}
		if (n++ == 0) {
			printf("RUNNING\n");
			fflush(stdout);
		}
	}
	printf("DONE %ld ops\n", n);
	return 0;
}

static int
cmd_bench(int argc, char **argv)
{
	struct tctx t = { 0 };
	size_t counts[32];
	int ncounts = 0, secs = 0, iters = 0;
	size_t maxb = 0;
	float *b;

	parse_group_opts(argc, argv, &t, counts, &ncounts, &secs, &iters);
	for (int i = optind; i < argc; i++)
		if ((size_t)atoll(argv[i]) > maxb)
			maxb = (size_t)atoll(argv[i]);
	t.dp = attach(maxb + (4u << 20));
	t.me = arc_dp_node_id(t.dp);
	setup_group(&t);
	if ((b = arc_dp_alloc(t.dp, maxb)) == NULL) {
		fprintf(stderr, "arceus-dptool: arena too small\n");
		return 1;
	}
	/* gradient-like values, so that compression has work to do */
	for (size_t k = 0; k < maxb / 4; k++)
		b[k] = (float)((int)((k * 2654435761u) % 2001) - 1000) * 1e-3f;
	for (int i = optind; i < argc; i++) {
		size_t bytes = (size_t)atoll(argv[i]), count = bytes / 4;
		int it = iters > 0 ? iters : bytes >= (256u << 20) ? 3 :
		    bytes >= (64u << 20) ? 5 : bytes >= (1u << 20) ? 20 : 200;
		struct arc_dp_cpl c;
		double t0 = 0;

		for (int k = -1; k < it; k++) {
			int64_t id;

			if (k == 0)
				t0 = now_s();
			if ((id = post(&t, ARC_DP_ALLREDUCE, b, count, 0, 0,
			    NULL)) < 0 || arc_dp_wait(t.dp, (uint64_t)id, -1,
			    &c) < 0 || c.status != 0) {
				fprintf(stderr, "arceus-dptool: bench failed\n");
				return 1;
			}
		}
		if (t.rank == 0)
			printf("arceus bytes=%zu iters=%d algbw_MBps=%.2f "
			    "wire=%llu\n", bytes, it, (double)bytes * it /
			    (now_s() - t0) / 1e6,
			    (unsigned long long)c.wire_bytes);
		fflush(stdout);
	}
	arc_dp_detach(t.dp);
	return 0;
}

int
main(int argc, char **argv)
{
	int ch, fd, r;

	while ((ch = getopt(argc, argv, "+s:")) != -1) {
		if (ch == 's')
			sock = optarg;
		else
			usage();
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[0], "test") == 0)
		return cmd_test(argc, argv);
	if (strcmp(argv[0], "hammer") == 0)
		return cmd_hammer(argc, argv);
	if (strcmp(argv[0], "bench") == 0)
		return cmd_bench(argc, argv);
	fd = ctl();
	if (strcmp(argv[0], "status") == 0) {
		struct imsg_dp_status s;

		if ((r = arc_dp_status(fd, &s)) < 0)
			goto fail;
		printf("node %u epoch %u backend %s workers %u peers %u "
		    "ops_done %llu ops_failed %llu rx_bad %llu arena %llu "
		    "tx_zerocopy %llu tx_copied %llu\n",
		    s.node_id, s.epoch, s.backend, s.nworkers, s.npeers,
		    (unsigned long long)s.ops_done,
		    (unsigned long long)s.ops_failed,
		    (unsigned long long)s.rx_bad,
		    (unsigned long long)s.arena_size,
		    (unsigned long long)s.tx_zerocopy,
		    (unsigned long long)s.tx_copied);
	} else if (strcmp(argv[0], "links") == 0) {
		struct imsg_dp_link l[64];

		if ((r = arc_dp_links(fd, l, 64)) < 0)
			goto fail;
		for (int i = 0; i < r; i++)
			print_link(&l[i]);
	} else if (strcmp(argv[0], "probe") == 0 && argc >= 2) {
		struct imsg_dp_link l[64];
		uint32_t peer = (uint32_t)strtoul(argv[1], NULL, 10);

		if ((r = arc_dp_probe(fd, peer, argc > 2 ?
		    (uint32_t)atoi(argv[2]) : 16)) < 0)
			goto fail;
		if ((r = arc_dp_links(fd, l, 64)) < 0)
			goto fail;
		for (int i = 0; i < r; i++)
			if (l[i].peer == peer)
				print_link(&l[i]);
	} else if (strcmp(argv[0], "group") == 0 && argc == 3) {
		uint32_t m[64];
		int n = parse_ids(argv[2], m, 64);

		if ((r = arc_dp_set_group(fd, (uint16_t)atoi(argv[1]), m,
		    n)) < 0)
			goto fail;
	} else if (strcmp(argv[0], "peers") == 0 && argc >= 2) {
		struct imsg_dp_peer p[IMSG_DP_MAX_PEERS];
		int n = 0;

		for (int i = 2; i < argc && n < IMSG_DP_MAX_PEERS; i++) {
			char addr[64];
			unsigned id, port;

			if (sscanf(argv[i], "%u@%63[^:]:%u", &id, addr,
			    &port) != 3 || inet_pton(AF_INET, addr,
			    &p[n].addr) != 1)
				usage();
			p[n].id = id;
			p[n].port = (uint16_t)port;
			p[n].pad = 0;
			n++;
		}
		if ((r = arc_dp_set_peers(fd, (uint32_t)atoi(argv[1]), p,
		    n)) < 0)
			goto fail;
	} else
		usage();
	close(fd);
	return 0;
fail:
	fprintf(stderr, "arceus-dptool: %s: %s\n", argv[0], strerror(-r));
	close(fd);
	return 1;
}
