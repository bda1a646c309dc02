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
 * - 1,000 devices plan in under a second; the output is deterministic;
 * - replanning on measured speed (replan.c): the speed estimate skips
 *   warm-up steps and takes a median; the speeds a plan uses (measured,
 *   else the profile scaled); the plan in force from an epoch's layout;
 *   the decision: a straggler's share shrinks once the gain holds and the
 *   interval has passed, noise never flaps, a fading gain resets the hold.
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

/*
 * One copy of a model cut into stages: each stage's state is on its
 * device alone, so a replan keeps every stage where it is while it
 * fits, even where a fresh plan (here: after the devices' measured
 * speeds changed tenfold) would be much faster.
 */
START_TEST(test_sharded_stays)
{
	struct tcl *t = calloc(1, sizeof(*t));
	struct plan_job j = { .global_batch = 8, .micro_batch = 2 };
	struct plan p, q, f;
	int moved = 0;

	/* 389 MiB of weights and Adam state: one device holds half */
	plan_model_gpt(&M, 8, 8, 512, 64, 256);
	tcl_init(t, 1, 100, 10);
	tcl_add(t, 0, 100, 400 * MiB);
	tcl_add(t, 0, 100, 400 * MiB);
	j.max_tp = 1;
	j.max_pp = 0;
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p), 0);
	ck_assert_int_eq(p.dp, 1);
	ck_assert_int_eq(p.pp, 2);
	/* the stage of the embedding on a slow device, the other fast */
	t->dev[0].gflops = p.st[0].dev[0] == t->dev[0].id ? 10 : 1000;
	t->dev[1].gflops = p.st[0].dev[0] == t->dev[1].id ? 10 : 1000;
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &f), 0);
	for (int s = 0; s < f.pp && s < p.pp; s++)
		moved |= f.st[s].dev[0] != p.st[s].dev[0] ||
		    f.st[s].first != p.st[s].first;
	ck_assert_msg(moved || f.pp != p.pp, "a fresh plan would keep it "
	    "anyway: the test shows nothing");
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, &p, &q), 0);
	ck_assert_int_eq(q.pp, p.pp);
	ck_assert_int_eq(q.dp, 1);
	for (int s = 0; s < p.pp; s++) {
		ck_assert_uint_eq(q.st[s].dev[0], p.st[s].dev[0]);
		ck_assert_int_eq(q.st[s].first, p.st[s].first);
		ck_assert_int_eq(q.st[s].nlayers, p.st[s].nlayers);
	}
	ck_assert_double_eq(q.moved_bytes, 0);
	plan_fini(&p);
	plan_fini(&q);
	plan_fini(&f);
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

/* ---- replanning on measured speed (replan.c) ------------------------ */

/* Steps 50 ms apart: one report each, on a clock of its own. */
static double speed_clock;

static int
add(struct speed_est *s, uint64_t epoch, int64_t step, double gflops)
{
	speed_clock += 0.05;
	return speed_add(s, epoch, step, gflops, speed_clock);
}

/* Reports of the old plan for the settle time, then the warm-up. */
static int64_t
settle(struct speed_est *s, uint64_t epoch, int64_t step)
{
	for (double t0 = speed_clock; speed_clock - t0 < SPEED_SETTLE_S;)
		add(s, epoch, ++step, 999.0);
	for (int i = 0; i < SPEED_SKIP; i++)
		add(s, epoch, ++step, 999.0);
	return step;
}

START_TEST(test_speed_estimate)
{
	struct speed_est s;
	int64_t step = 10;
	double v;

	speed_clock = 100;
	speed_init(&s);
	/* a new epoch: for SPEED_SETTLE_S, then SPEED_SKIP steps, nothing
	 * counts (the old plan's last steps, warm-up); then SPEED_MIN
	 * steps to a value */
	step = settle(&s, 1, step);
	ck_assert_double_eq(s.value, 0);
	for (int i = 0; i < SPEED_MIN - 1; i++)
		ck_assert_int_eq(add(&s, 1, ++step, 10.0), 0);
	ck_assert_double_eq(s.value, 0);
	ck_assert_int_eq(add(&s, 1, ++step, 10.0), 1);
	ck_assert_double_eq(s.value, 10.0);
	/* a median: one outlier (a page fault, a checkpoint) moves nothing */
	for (int i = 0; i < 3; i++)
		add(&s, 1, ++step, 10.0);
	add(&s, 1, ++step, 0.5);
	ck_assert_double_eq(s.value, 10.0);
	/* not measured (a standby step): ignored, continuity kept */
	ck_assert_int_eq(add(&s, 1, step + 1, 0), 0);
	/* a restart (step goes back): warm-up again (no settle: the same
	 * plan), the old value stays until a new window has SPEED_MIN */
	step = 5;
	for (int i = 0; i < SPEED_SKIP + SPEED_MIN - 1; i++) {
		add(&s, 1, ++step, i < SPEED_SKIP ? 99.0 : 3.0);
		ck_assert_double_eq(s.value, 10.0);
	}
	add(&s, 1, ++step, 3.0);
	ck_assert_double_eq(s.value, 3.0);
	/* a new epoch (new shares) with the steps going on: the old plan's
	 * steps that still finish, fast or slow, never count */
	step = settle(&s, 2, step);
	ck_assert_double_eq(s.value, 3.0);
	for (int i = 0; i < SPEED_MIN; i++)
		add(&s, 2, ++step, 6.0);
	ck_assert_double_eq(s.value, 6.0);
	/* the window slides: SPEED_WINDOW new samples replace all old */
	for (int i = 0; i < SPEED_WINDOW; i++)
		add(&s, 2, ++step, 7.0);
	ck_assert_double_eq(s.value, 7.0);
	/* no step for the TTL (a standby): the value is dropped, once */
	v = speed_clock;
	ck_assert_int_eq(speed_expire(&s, v + SPEED_TTL_S - 1, SPEED_TTL_S),
	    0);
	ck_assert_double_eq(s.value, 7.0);
	ck_assert_int_eq(speed_expire(&s, v + SPEED_TTL_S, SPEED_TTL_S), 1);
	ck_assert_double_eq(s.value, 0);
	ck_assert_int_eq(speed_expire(&s, v + 2 * SPEED_TTL_S, SPEED_TTL_S),
	    0);
}
END_TEST

START_TEST(test_speeds_resolve)
{
	double prof[4] = { 100, 100, 200, 50 }, meas[4] = { 10, 5, 0, 0 };
	double out[4], r;
	char src[4];

	/* measured where known; the others: profile x the median ratio */
	r = speeds_resolve(4, prof, meas, out, src);
	ck_assert_double_eq_tol(r, 0.075, 1e-12);
	ck_assert_double_eq(out[0], 10);
	ck_assert_double_eq(out[1], 5);
	ck_assert_double_eq_tol(out[2], 15, 1e-9);
	ck_assert_double_eq_tol(out[3], 3.75, 1e-9);
	ck_assert(src[0] == 'm' && src[1] == 'm' && src[2] == 'p' &&
	    src[3] == 'p');
	/* none measured: the profiles as they are */
	memset(meas, 0, sizeof(meas));
	ck_assert_double_eq(speeds_resolve(4, prof, meas, out, src), 1.0);
	for (int i = 0; i < 4; i++) {
		ck_assert_double_eq(out[i], prof[i]);
		ck_assert(src[i] == 'p');
	}
}
END_TEST

/* Two equal devices, data parallel, 8 sequences a step. */
static void
two_devices(struct tcl *t, double g1, double g2)
{
	tcl_init(t, 1, 10, 10);
	tcl_add(t, 0, g1, 4 * GiB);
	tcl_add(t, 0, g2, 4 * GiB);
}

/* The layout words raftglue.c writes for plan p (slots, then shares). */
static int
layout_of(const struct plan *p, uint32_t *lay)
{
	int slot = 2 + p->tp, ns = p->dp * p->pp * slot;

	for (int i = 0; i < p->dp * p->pp; i++) {
		lay[i * slot] = (uint32_t)p->st[i].first;
		lay[i * slot + 1] = (uint32_t)p->st[i].nlayers;
		for (int k = 0; k < p->tp; k++)
			lay[i * slot + 2 + k] = p->st[i].dev[k];
	}
	for (int r = 0; r < p->dp; r++) {
		lay[ns + 2 * r] = (uint32_t)p->rep[r].share;
		lay[ns + 2 * r + 1] = (uint32_t)p->rep[r].nmicro;
	}
	return ns + 2 * p->dp;
}

/* Share of device id in p, -1 if it has none. */
static int
share_of(const struct plan *p, uint32_t id)
{
	for (int r = 0; r < p->dp; r++)
		if (p->st[r * p->pp].dev[0] == id)
			return p->rep[r].share;
	return -1;
}

START_TEST(test_plan_from_layout)
{
	struct tcl *t = calloc(1, sizeof(*t));
	struct plan_job j = { .global_batch = 8, .micro_batch = 4,
	    .max_tp = 1, .max_pp = 1 };
	struct plan p, q;
	uint32_t lay[64];
	int n;

	small_model(2, 2);
	two_devices(t, 30, 10);
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p), 0);
	ck_assert_int_eq(p.dp, 2);
	n = layout_of(&p, lay);
	ck_assert_int_eq(plan_from_layout(lay, n, p.tp, p.pp, p.dp, 8, 4,
	    &q), 0);
	ck_assert_int_eq(plan_eval(&M, &j, &t->c, &q), 0);
	ck_assert_double_eq_tol(q.step, p.step, p.step * 1e-12);
	for (int r = 0; r < p.dp; r++)
		ck_assert_int_eq(q.rep[r].share, p.rep[r].share);
	plan_fini(&q);
	/* a layout without shares (older logs) or of another shape */
	ck_assert_int_eq(plan_from_layout(lay, n - 2 * p.dp, p.tp, p.pp, p.dp,
	    8, 4, &q), -EINVAL);
	ck_assert_int_eq(plan_from_layout(lay, n, 2, p.pp, p.dp, 8, 4, &q),
	    -EINVAL);
	plan_fini(&p);
	free(t);
}
END_TEST

/*
 * The leader's loop, as raftglue.c runs it once a second: the plan in
 * force (from its layout) evaluated under the speeds now, the plan it
 * would make now (sticky to the one in force), the decision; a YES
 * commits the fresh plan and restarts the interval.  @return the verdict
 */
static int
leader_look(struct tcl *t, const struct plan_job *j,
    const struct replan_conf *rc, struct replan_state *rs, double now,
    struct plan *inforce, char *why, size_t whylen)
{
	struct plan run, fresh;
	uint32_t lay[64];
	int n = layout_of(inforce, lay), v;

	ck_assert_int_eq(plan_from_layout(lay, n, inforce->tp, inforce->pp,
	    inforce->dp, j->global_batch, j->micro_batch, &run), 0);
	ck_assert_int_eq(plan_eval(&M, j, &t->c, &run), 0);
	ck_assert_int_eq(plan_compute(&M, j, &t->c, &run, &fresh), 0);
	v = replan_decide(rc, rs, now, &run, &fresh, why, whylen);
	plan_fini(&run);
	if (v == REPLAN_YES) {
		plan_fini(inforce);
		*inforce = fresh;
		rs->epoch_at = now;
		rs->due_since = -1;
	} else {
		plan_fini(&fresh);
	}
	return v;
}

START_TEST(test_replan_straggler)
{
	struct tcl *t = calloc(1, sizeof(*t));
	struct plan_job j = { .global_batch = 8, .micro_batch = 4,
	    .max_tp = 1, .max_pp = 1 };
	struct replan_conf rc = { .gain = 0.15, .interval_s = 15,
	    .hold_s = 3 };
	struct replan_state rs = { .epoch_at = 0, .due_since = -1 };
	struct plan p;
	char why[400];
	double now = 1;
	int v;

	small_model(2, 2);
	two_devices(t, 10, 10);
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &p), 0);
	ck_assert_int_eq(p.dp, 2);
	ck_assert_int_eq(share_of(&p, 1), 4);
	ck_assert_int_eq(share_of(&p, 2), 4);
	/* speeds as measured: equal within noise of +-5%: never a replan */
	for (int k = 0; k < 120; k++, now += 1) {
		t->dev[0].gflops = 10 * (k % 2 ? 1.05 : 0.95);
		t->dev[1].gflops = 10 * (k % 3 ? 0.95 : 1.05);
		v = leader_look(t, &j, &rc, &rs, now, &p, why, sizeof(why));
		ck_assert_int_eq(v, REPLAN_NO);
	}
	/* node 2 slows to a third: better by far, but only once it has held
	 * hold_s (3 s), and not before interval_s (15 s) after the epoch */
	rs.epoch_at = now - 5;
	t->dev[0].gflops = 10;
	t->dev[1].gflops = 10.0 / 3;
	ck_assert_int_eq(leader_look(t, &j, &rc, &rs, now, &p, why,
	    sizeof(why)), REPLAN_HOLD);
	ck_assert_msg(strstr(why, "shares 4,4 on 1,2 -> 6,2 on 1,2") != NULL,
	    "%s", why);
	ck_assert_int_eq(leader_look(t, &j, &rc, &rs, now + 2.9, &p, why,
	    sizeof(why)), REPLAN_HOLD);
	/* the gain fades for one look (a fast step): the hold starts over */
	t->dev[1].gflops = 9.5;
	ck_assert_int_eq(leader_look(t, &j, &rc, &rs, now + 3.5, &p, why,
	    sizeof(why)), REPLAN_NO);
	t->dev[1].gflops = 10.0 / 3;
	ck_assert_int_eq(leader_look(t, &j, &rc, &rs, now + 4, &p, why,
	    sizeof(why)), REPLAN_HOLD);
	ck_assert_int_eq(leader_look(t, &j, &rc, &rs, now + 7.5, &p, why,
	    sizeof(why)), REPLAN_WAIT);
	ck_assert_int_eq(share_of(&p, 2), 4);	/* nothing committed yet */
	v = leader_look(t, &j, &rc, &rs, now + 10.5, &p, why, sizeof(why));
	ck_assert_int_eq(v, REPLAN_YES);
	ck_assert_msg(strstr(why, "4,4 on 1,2 -> 6,2 on 1,2") &&
	    strstr(why, "faster"), "%s", why);
	/* the straggler's share shrank; the global batch is the same */
	ck_assert_int_eq(share_of(&p, 2), 2);
	ck_assert_int_eq(share_of(&p, 1), 6);
	/* and that plan stays: the same speeds, or noise around them, or
	 * the straggler a little faster, never bring another epoch */
	now += 11;
	for (int k = 0; k < 120; k++, now += 1) {
		t->dev[0].gflops = 10 * (k % 2 ? 1.05 : 0.95);
		t->dev[1].gflops = 10.0 / 3 * (k % 3 ? 0.95 : 1.1);
		ck_assert_int_eq(leader_look(t, &j, &rc, &rs, now, &p, why,
		    sizeof(why)), REPLAN_NO);
	}
	ck_assert_int_eq(share_of(&p, 2), 2);
	/* it recovers: the shares go back once that holds, after the
	 * interval */
	t->dev[1].gflops = 10;
	for (v = REPLAN_NO; v != REPLAN_YES && now < 1000; now += 1)
		v = leader_look(t, &j, &rc, &rs, now, &p, why, sizeof(why));
	ck_assert_int_eq(v, REPLAN_YES);
	ck_assert_int_eq(share_of(&p, 2), 4);
	/* interval 0: never on speed */
	rc.interval_s = 0;
	t->dev[1].gflops = 1;
	for (int k = 0; k < 30; k++, now += 1)
		ck_assert_int_eq(leader_look(t, &j, &rc, &rs, now, &p, why,
		    sizeof(why)), REPLAN_NO);
	plan_fini(&p);
	free(t);
}
END_TEST

/* The plan is a pure function of the speeds it was given. */
START_TEST(test_replan_pure)
{
	struct tcl *t = calloc(1, sizeof(*t));
	struct plan_job j = { .global_batch = 8, .micro_batch = 4,
	    .max_tp = 1, .max_pp = 1 };
	double prof[2] = { 50, 50 }, meas[2] = { 6, 2 }, sp[2];
	char src[2];
	struct plan a, b;

	small_model(2, 2);
	speeds_resolve(2, prof, meas, sp, src);
	two_devices(t, sp[0], sp[1]);
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &a), 0);
	ck_assert_int_eq(plan_compute(&M, &j, &t->c, NULL, &b), 0);
	ck_assert_int_eq(share_of(&a, 1), 6);
	ck_assert_int_eq(share_of(&a, 2), 2);
	ck_assert_int_eq(share_of(&b, 1), 6);
	ck_assert_double_eq(a.step, b.step);
	plan_fini(&a);
	plan_fini(&b);
	free(t);
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
	tcase_add_test(tc, test_sharded_stays);
	tcase_add_test(tc, test_bad_input);
	tcase_add_test(tc, test_cluster_file);
	tcase_add_test(tc, test_speed_estimate);
	tcase_add_test(tc, test_speeds_resolve);
	tcase_add_test(tc, test_plan_from_layout);
	tcase_add_test(tc, test_replan_straggler);
	tcase_add_test(tc, test_replan_pure);
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
