/*
 * check_planner.c: properties of the planner (control/planner.c).
 *
 * - optimal on small clusters: a brute force over every placement
 *   (devices to slots in any order, every contiguous partition, every
 *   split of the batch) priced by the same cost model finds nothing faster;
 * - refuses, with the reason, what does not fit in memory, and uses
 *   pipeline stages when one device cannot hold the model;
 * - heterogeneous devices get batch shares proportional to speed;
 * - replanning after a device is lost keeps every intact replica in place;
 * - 1,000 devices plan in under a second; the output is deterministic.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control.h"

#define GiB	(1024.0 * 1024 * 1024)
#define MiB	(1024.0 * 1024)

static struct plan_model M;

struct tcl {
	struct plan_cluster c;
	struct plan_device dev[1100];
	double bw[16 * 16], rtt[16 * 16];
};

static void
tcl_init(struct tcl *t, int nisland, double in_gbps, double out_gbps)
{
	memset(t, 0, sizeof(*t));
	t->c.dev = t->dev;
	t->c.bw = t->bw;
	t->c.rtt = t->rtt;
	t->c.nisland = nisland;
	for (int a = 0; a < nisland; a++)
		for (int b = 0; b < nisland; b++) {
			t->bw[a * nisland + b] = (a == b ? in_gbps : out_gbps) *
			    1e9 / 8;
			t->rtt[a * nisland + b] = a == b ? 5e-6 : 100e-6;
		}
}

static void
tcl_add(struct tcl *t, int island, double gflops, double mem)
{
	struct plan_device *d = &t->dev[t->c.ndev];

	d->id = (uint32_t)t->c.ndev + 1;
	d->island = island;
	d->gflops = gflops;
	d->mem_bytes = mem;
	t->c.ndev++;
}

/* ---- brute force ---------------------------------------------------- */

struct bf {
	const struct plan_model *m;
	const struct plan_job *j;
	const struct plan_cluster *c;
	struct plan p;
	int	used[16];
	double	best;
	long	evals;
};

static void
bf_shares(struct bf *b, int r)
{
	int left = b->j->global_batch;

	for (int i = 0; i < r; i++)
		left -= b->p.rep[i].share;
	if (r == b->p.dp - 1) {
		b->p.rep[r].share = left;
		b->p.ok = 0;
		b->evals++;
		if (plan_eval(b->m, b->j, b->c, &b->p) == 0 && b->p.ok &&
		    b->p.step < b->best)
			b->best = b->p.step;
		return;
	}
	for (int g = 0; g <= left; g++) {
		b->p.rep[r].share = g;
		bf_shares(b, r + 1);
	}
}

/* every contiguous partition of every replica */
static void
bf_parts(struct bf *b, int i)
{
	int S = b->p.pp, L = b->m->nlayers;

	if (i == b->p.dp * S) {
		bf_shares(b, 0);
		return;
	}
	struct plan_stage *st = &b->p.st[i];
	int s = i % S;
	int first = s == 0 ? 0 : st[-1].first + st[-1].nlayers;

	st->first = first;
	if (s == S - 1) {
		st->nlayers = L - first;
		if (st->nlayers >= 1)
			bf_parts(b, i + 1);
		return;
	}
	for (int n = 1; first + n <= L - (S - 1 - s); n++) {
		st->nlayers = n;
		bf_parts(b, i + 1);
	}
}

/* every injective assignment of devices to slot members */
static void
bf_assign(struct bf *b, int slot)
{
	int t = b->p.tp, nslot = b->p.dp * b->p.pp * t;

	if (slot == nslot) {
		bf_parts(b, 0);
		return;
	}
	for (int d = 0; d < b->c->ndev; d++) {
		int k = slot % t;
		struct plan_stage *st = &b->p.st[slot / t];

		if (b->used[d])
			continue;
		/* members of a group in increasing order: no duplicates */
		if (k > 0 && b->c->dev[d].id < st->dev[k - 1])
			continue;
		if (k > 0 && b->c->dev[d].island !=
		    b->c->dev[st->dev[0] - 1].island)
			continue;
		b->used[d] = 1;
		st->dev[k] = b->c->dev[d].id;
		bf_assign(b, slot + 1);
		b->used[d] = 0;
	}
}

static double
brute_force(const struct plan_model *m, const struct plan_job *j,
    const struct plan_cluster *c, long *evals)
{
	struct bf b;

	memset(&b, 0, sizeof(b));
	b.m = m;
	b.j = j;
	b.c = c;
	b.best = INFINITY;
	for (int t = 1; t <= c->ndev; t *= 2) {
		if (m->n_head % t)
			continue;
		for (int S = 1; S <= m->nlayers; S++)
			for (int R = 1; R * S * t <= c->ndev &&
			    R <= j->global_batch; R++) {
				b.p.tp = t;
				b.p.pp = S;
				b.p.dp = R;
				b.p.global_batch = j->global_batch;
				b.p.micro_batch = j->micro_batch;
				b.p.rep = calloc((size_t)R, sizeof(*b.p.rep));
				b.p.st = calloc((size_t)(R * S),
				    sizeof(*b.p.st));
				bf_assign(&b, 0);
				free(b.p.rep);
				free(b.p.st);
			}
	}
	*evals = b.evals;
	return b.best;
}

/* Small model: n_layer blocks + embedding + head. */
static void
small_model(int n_layer, int n_head)
{
	plan_model_gpt(&M, n_layer, n_head, 64, 32, 256);
}

START_TEST(test_bruteforce_optimal)
{
	unsigned seed = 12345u + (unsigned)_i;
	struct tcl *t = calloc(1, sizeof(*t));
	struct plan_job j;
	struct plan p;
	double bf;
	long evals;
	int n, nisl, rc;

	srand(seed);
	n = 2 + rand() % 3;			/* 2..4 devices */
	nisl = 1 + rand() % 2;
	tcl_init(t, nisl, 50 + rand() % 200, 0.5 + rand() % 10);
	small_model(1 + rand() % 3, 2);
	for (int i = 0; i < n; i++) {
		/* memory from "too small for all" to plenty */
		double mem = (i % 2 ? 3 : 1 + rand() % 4) * MiB + PLAN_RESERVE_BYTES;

		tcl_add(t, rand() % nisl, 10 + rand() % 200, mem);
	}
	j.global_batch = 1 + rand() % 6;
	j.micro_batch = 1 + rand() % 3;
	j.max_tp = j.max_pp = 0;
	memset(&p, 0, sizeof(p));
	rc = plan_compute(&M, &j, &t->c, NULL, &p);
	bf = brute_force(&M, &j, &t->c, &evals);
	if (getenv("PLANNER_VERBOSE"))
		printf("case %d: n %d L %d G %d b %d: planner %s tp %d pp %d "
		    "dp %d %.6g s, brute force %.6g s (%ld placements)\n", _i,
		    n, M.nlayers, j.global_batch, j.micro_batch,
		    p.ok ? "ok" : "refused", p.tp, p.pp, p.dp, p.step, bf,
		    evals);
	if (!isfinite(bf)) {
		ck_assert_int_eq(rc, -ENOSPC);
		ck_assert(!p.ok);
		ck_assert(strstr(p.why, "MiB") != NULL);
	} else {
		ck_assert_msg(rc == 0 && p.ok, "case %d: planner refused (%s) "
		    "but brute force found %.9g s", _i, p.why, bf);
		ck_assert_msg(p.step <= bf * (1 + 1e-9),
		    "case %d: planner %.9g s (tp %d pp %d dp %d) > brute force "
		    "%.9g s over %ld placements", _i, p.step, p.tp, p.pp, p.dp,
		    bf, evals);
		/* and the plan prices the same when evaluated again */
		double step = p.step;

		ck_assert_int_eq(plan_eval(&M, &j, &t->c, &p), 0);
		ck_assert_double_eq_tol(p.step, step, step * 1e-12);
	}
	plan_fini(&p);
	free(t);
}
END_TEST

START_TEST(test_memory_refusal)
{
	struct tcl *t = calloc(1, sizeof(*t));
	struct plan_job j = { .global_batch = 4, .micro_batch = 1 };
	struct plan p;
	int rc;

	/* GPT-2 small needs ~1.9 GiB of state; four 512 MiB devices can't */
	plan_model_gpt(&M, 12, 12, 768, 1024, 256);
	tcl_init(t, 1, 100, 10);
	for (int i = 0; i < 4; i++)
		tcl_add(t, 0, 100, 512 * MiB);
	rc = plan_compute(&M, &j, &t->c, NULL, &p);
	ck_assert_int_eq(rc, -ENOSPC);
	ck_assert(!p.ok);
	ck_assert_msg(strstr(p.why, "memory") != NULL, "why: %s", p.why);
	plan_fini(&p);

	/* 16 such devices can: the planner must pipeline (or split) it */
	for (int i = 0; i < 12; i++)
		tcl_add(t, 0, 100, 512 * MiB);
	rc = plan_compute(&M, &j, &t->c, NULL, &p);
	ck_assert_msg(rc == 0 && p.ok, "16 x 512 MiB refused: %s", p.why);
	ck_assert(p.pp * p.tp > 1);
	for (int i = 0; i < p.dp * p.pp; i++)
		ck_assert(p.st[i].mem_bytes <= 512 * MiB);
	plan_fini(&p);
	free(t);
}
END_TEST

START_TEST(test_heterogeneous_shares)
{
	struct tcl *t = calloc(1, sizeof(*t));
	struct plan_job j = { .global_batch = 600, .micro_batch = 8 };
	struct plan p;

	plan_model_gpt(&M, 4, 4, 128, 64, 256);
	tcl_init(t, 1, 100, 10);
	tcl_add(t, 0, 100, 4 * GiB);
	tcl_add(t, 0, 200, 4 * GiB);
	tcl_add(t, 0, 300, 4 * GiB);
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p), 0);
	ck_assert_int_eq(p.dp, 3);
	ck_assert_int_eq(p.pp, 1);
	/* shares in proportion 1:2:3 of 600, so all finish together */
	for (int r = 0; r < 3; r++) {
		uint32_t id = p.st[r].dev[0];

		ck_assert_msg(abs(p.rep[r].share - (int)id * 100) <= 2,
		    "device %u got %d of 600", id, p.rep[r].share);
	}
	ck_assert_double_le(fabs(p.rep[0].time - p.rep[2].time),
	    p.rep[0].time * 0.02);
	plan_fini(&p);
	free(t);
}
END_TEST

START_TEST(test_replan_minimal_movement)
{
	struct tcl *t = calloc(1, sizeof(*t));
	struct plan_job j = { .global_batch = 64, .micro_batch = 1 };
	struct plan p, q;
	uint32_t lost;
	int broken = -1, kept = 0;

	/* 24 devices of 1 GiB: GPT-2 small needs a pipeline of several */
	plan_model_gpt(&M, 12, 12, 768, 1024, 256);
	tcl_init(t, 2, 100, 25);
	for (int i = 0; i < 24; i++)
		tcl_add(t, i / 12, 100 + 10 * (i % 3), 1 * GiB);
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p), 0);
	ck_assert_msg(p.dp >= 2, "want several replicas, got dp %d", p.dp);
	/* lose a device of replica 1 */
	lost = p.st[1 * p.pp].dev[0];
	for (int i = 0; i < t->c.ndev; i++)
		if (t->dev[i].id == lost)
			t->dev[i] = t->dev[--t->c.ndev];
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, &p, &q), 0);
	ck_assert_int_eq(q.pp, p.pp);
	ck_assert_int_eq(q.tp, p.tp);
	/* every replica that did not hold the lost device is kept as is */
	for (int r = 0; r < p.dp; r++) {
		int hit = 0;

		for (int s = 0; s < p.pp; s++)
			for (int k = 0; k < p.tp; k++)
				hit |= p.st[r * p.pp + s].dev[k] == lost;
		if (hit) {
			broken = r;
			continue;
		}
		for (int r2 = 0; r2 < q.dp; r2++)
			if (memcmp(&q.st[r2 * q.pp].dev, &p.st[r * p.pp].dev,
			    sizeof(uint32_t) * PLAN_MAX_TP) == 0) {
				for (int s = 0; s < p.pp; s++) {
					ck_assert_int_eq(q.st[r2 * q.pp + s].first,
					    p.st[r * p.pp + s].first);
					ck_assert_int_eq(q.st[r2 * q.pp + s].dev[0],
					    p.st[r * p.pp + s].dev[0]);
				}
				kept++;
			}
	}
	ck_assert_int_eq(broken, 1);
	ck_assert_int_eq(kept, p.dp - 1);
	/* what moves is at most one replica's state (on the rebuilt one) */
	double one = 0;

	for (int l = 0; l < M.nlayers; l++)
		one += 3.0 * M.layer[l].param_bytes;
	printf("replan after losing %u: dp %d -> %d, moved %.1f MiB\n", lost,
	    p.dp, q.dp, q.moved_bytes / MiB);
	ck_assert_double_le(q.moved_bytes, one * 1.0001);
	/* every device is either in the new plan or idle, once */
	ck_assert_int_eq(q.dp * q.pp * q.tp + q.nidle, t->c.ndev);
	/* and a fresh plan would move more or be no more than 10% faster */
	{
		struct plan f;

		ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &f), 0);
		ck_assert_double_le(q.step, f.step * PLAN_STICKY);
		ck_assert_double_ge(plan_moved_bytes(&M, &p, &f),
		    q.moved_bytes);
		plan_fini(&f);
	}
	plan_fini(&p);
	plan_fini(&q);
	free(t);
}
END_TEST

START_TEST(test_thousand_devices)
{
	struct tcl *t = calloc(1, sizeof(*t));
	struct plan_job j = { .global_batch = 2048, .micro_batch = 4 };
	struct plan p, p2;
	struct timespec a, b;
	double sec;
	char *s1, *s2;
	size_t n1, n2;
	FILE *f1, *f2;

	int ndev = getenv("ARCEUS_SMALL") ? 200 : 1000;	/* valgrind */

	plan_model_gpt(&M, 48, 16, 1600, 1024, 256);	/* GPT-2 XL shape */
	tcl_init(t, 16, 200, 10);
	for (int i = 0; i < ndev; i++)
		tcl_add(t, i % 16, 50 + 25 * (i % 7), (4 + 4 * (i % 5)) * GiB);
	clock_gettime(CLOCK_MONOTONIC, &a);
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	sec = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
	printf("%d devices: tp %d pp %d dp %d, step %.3f s, planned in "
	    "%.3f s\n", ndev, p.tp, p.pp, p.dp, p.step, sec);
	/* the bound is for optimized builds; sanitizers and valgrind are
	 * 5-50x slower */
#if defined(__SANITIZE_ADDRESS__)
	ck_assert_msg(sec < 10.0, "1000 devices took %.3f s", sec);
#else
	if (getenv("ARCEUS_SMALL") == NULL)
		ck_assert_msg(sec < 1.0, "1000 devices took %.3f s", sec);
#endif
	ck_assert(p.ok);
	/* deterministic: same inputs, same text */
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p2), 0);
	f1 = open_memstream(&s1, &n1);
	f2 = open_memstream(&s2, &n2);
	plan_write(&p, &t->c, f1);
	plan_write(&p2, &t->c, f2);
	fclose(f1);
	fclose(f2);
	ck_assert_str_eq(s1, s2);
	free(s1);
	free(s2);
	plan_fini(&p);
	plan_fini(&p2);
	free(t);
}
END_TEST

START_TEST(test_tp_inside_island_only)
{
	struct tcl *t = calloc(1, sizeof(*t));
	struct plan_job j = { .global_batch = 16, .micro_batch = 4 };
	struct plan p;

	/* big model, fast island links: tensor parallel is picked */
	plan_model_gpt(&M, 4, 8, 2048, 512, 256);
	tcl_init(t, 2, 3200, 1);
	for (int i = 0; i < 8; i++)
		tcl_add(t, i / 4, 100, 2 * GiB);
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p), 0);
	for (int i = 0; i < p.dp * p.pp; i++)
		for (int k = 1; k < p.tp; k++)
			ck_assert_int_eq(t->dev[p.st[i].dev[k] - 1].island,
			    t->dev[p.st[i].dev[0] - 1].island);
	plan_fini(&p);
	free(t);
}
END_TEST

START_TEST(test_slow_island_left_out)
{
	struct tcl *t = calloc(1, sizeof(*t));
	struct plan_job j = { .global_batch = 64, .micro_batch = 4 };
	struct plan p;

	/* 8 servers on 100G; 4 laptops behind 10 Mbit/s: their share of
	 * compute is small and their link would stall every all-reduce */
	plan_model_gpt(&M, 6, 8, 512, 256, 256);
	tcl_init(t, 2, 100, 100);
	for (int i = 0; i < 8; i++)
		tcl_add(t, 0, 200, 8 * GiB);
	for (int i = 0; i < 4; i++)
		tcl_add(t, 1, 50, 8 * GiB);
	t->bw[0 * 2 + 1] = t->bw[1 * 2 + 0] = 0.01e9 / 8;
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p), 0);
	ck_assert_int_eq(p.nidle, 4);
	for (int i = 0; i < p.nidle; i++)
		ck_assert_int_eq(t->dev[p.idle[i] - 1].island, 1);
	/* on a good link they are worth using */
	plan_fini(&p);
	t->bw[0 * 2 + 1] = t->bw[1 * 2 + 0] = 100e9 / 8;
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p), 0);
	ck_assert_int_eq(p.nidle, 0);
	plan_fini(&p);
	free(t);
}
END_TEST

/*
 * What the workers can run bounds the plan: data parallel only, stages
 * or tensor-parallel shards when they take them.
 */
START_TEST(test_worker_limits)
{
	struct tcl *t = calloc(1, sizeof(*t));
	struct plan_job j = { .global_batch = 16, .micro_batch = 4 };
	struct plan p;

	/* four devices that each hold the model: four replicas */
	plan_model_gpt(&M, 4, 8, 1024, 512, 256);
	tcl_init(t, 1, 3200, 1);
	for (int i = 0; i < 4; i++)
		tcl_add(t, 0, 100, 4 * GiB);
	j.max_tp = j.max_pp = 1;
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p), 0);
	ck_assert_int_eq(p.tp, 1);
	ck_assert_int_eq(p.pp, 1);
	ck_assert_int_eq(p.dp, 4);
	plan_fini(&p);
	/*
	 * A model no single device holds: split when the workers may
	 * (test_memory_refusal), refused with the reason when they may not.
	 */
	plan_model_gpt(&M, 12, 12, 768, 1024, 256);
	tcl_init(t, 1, 100, 10);
	for (int i = 0; i < 16; i++)
		tcl_add(t, 0, 100, 512 * MiB);
	j.global_batch = 4;
	j.micro_batch = 1;
	j.max_tp = j.max_pp = 0;
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p), 0);
	ck_assert_int_gt(p.tp * p.pp, 1);
	plan_fini(&p);
	j.max_tp = j.max_pp = 1;
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p), -ENOSPC);
	ck_assert_msg(strstr(p.why, "memory") != NULL, "why: %s", p.why);
	plan_fini(&p);
	/*
	 * Workers that take tensor-parallel shards and not stages
	 * (dist.tensor = plan): a model no device holds is split over a
	 * tensor group, never into stages.
	 */
	tcl_init(t, 1, 100, 10);
	for (int i = 0; i < 16; i++)
		tcl_add(t, 0, 100, 1 * GiB);
	j.max_tp = j.max_pp = 1;
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p), -ENOSPC);
	plan_fini(&p);
	j.max_tp = 0;
	j.max_pp = 1;
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p), 0);
	ck_assert_int_gt(p.tp, 1);
	ck_assert_int_eq(p.pp, 1);
	ck_assert_int_eq(12 % p.tp, 0);		/* whole heads on each */
	plan_fini(&p);
	free(t);
}
END_TEST

START_TEST(test_bad_input)
{
	struct tcl *t = calloc(1, sizeof(*t));
	struct plan_job j = { .global_batch = 0, .micro_batch = 1 };
	struct plan p;

	plan_model_gpt(&M, 2, 2, 64, 32, 256);
	tcl_init(t, 1, 100, 10);
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p), -EINVAL);
	tcl_add(t, 0, 0, GiB);		/* zero speed */
	j.global_batch = 4;
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p), -EINVAL);
	t->dev[0].gflops = 10;
	t->dev[0].island = 3;		/* no such island */
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p), -EINVAL);
	free(t);
}
END_TEST

START_TEST(test_cluster_file)
{
	struct cluster_desc cd;
	struct conf_errs errs;
	char path[] = "/tmp/check_planner_XXXXXX";
	int fd = mkstemp(path);
	FILE *fp = fdopen(fd, "w");

	fprintf(fp, "[cluster]\nlink_gbps = 10\n[island:a]\ngbps = 100\n"
	    "device = 2 x 100 1G\nlink = b 40 10\n[island:b]\n"
	    "device = 3 x 50 512M\n");
	fclose(fp);
	memset(&errs, 0, sizeof(errs));
	ck_assert_int_eq(cluster_load(&cd, path, &errs), 0);
	ck_assert_int_eq(cd.c.ndev, 5);
	ck_assert_int_eq(cd.c.nisland, 2);
	ck_assert_double_eq_tol(cd.c.bw[0 * 2 + 1], 40e9 / 8, 1);
	ck_assert_double_eq_tol(cd.c.bw[1 * 2 + 0], 40e9 / 8, 1);
	ck_assert_double_eq_tol(cd.c.bw[0], 100e9 / 8, 1);
	ck_assert_double_eq_tol(cd.c.dev[4].mem_bytes, 512 * MiB, 1);
	cluster_free(&cd);

	/* every error at once, with file:line */
	fp = fopen(path, "w");
	fprintf(fp, "[cluster]\nlink_gbps = fast\n[island:a]\n"
	    "device = 2 x 100\nlink = nowhere 1 1\n[bogus]\nx = 1\n");
	fclose(fp);
	memset(&errs, 0, sizeof(errs));
	ck_assert_int_eq(cluster_load(&cd, path, &errs), -1);
	ck_assert_int_eq(errs.n, 3);
	ck_assert(strstr(errs.msg[0], ":2: ") != NULL);
	ck_assert(strstr(errs.msg[1], ":4: ") != NULL);
	ck_assert(strstr(errs.msg[2], ":7: ") != NULL);
	unlink(path);
}
END_TEST

static Suite *
planner_suite(void)
{
	Suite *s = suite_create("planner");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_bruteforce_optimal, 0, 40);
	tcase_add_test(tc, test_memory_refusal);
	tcase_add_test(tc, test_heterogeneous_shares);
	tcase_add_test(tc, test_replan_minimal_movement);
	tcase_add_test(tc, test_thousand_devices);
	tcase_add_test(tc, test_tp_inside_island_only);
	tcase_add_test(tc, test_slow_island_left_out);
	tcase_add_test(tc, test_worker_limits);
	tcase_add_test(tc, test_bad_input);
	tcase_add_test(tc, test_cluster_file);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(planner_suite());
	int nf;

	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf != 0;
}
