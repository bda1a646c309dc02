/*
 * check_tensor.c: tensor parallel without a network.  The shards' map
 * (every element of a split tensor on exactly one rank, the ranks' parts
 * filling their shards), the shards' initial values (slices of the whole
 * model's), and N ranks run as threads whose all-reduce is a barrier and
 * a sum in rank order (the same bits on every rank, as the dataplane's
 * ring gives): one block, and a model of several, forward and backward
 * over two micro-batches, with and without dropout, against the unsplit
 * model: the same loss and gradients to float tolerance (the sums go in
 * another order), the whole tensors' gradients the same bits on every
 * rank (so that they need no reduction of their own), and the global
 * norm of the shards (sharded squares summed, whole ones once) the
 * unsplit model's.  Bad splits are refused with the key and the reason.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "ctlmsg.h"

static const char *tensor_names[GPT_NPARAMS] = {
	"wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
	"ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb",
};

#define NB	2
#define NT	6
#define MAXR	4

static void
batch(int *in, int *tg, int n, uint64_t seed)
{
	struct rng r;

	rng_seed(&r, seed);
	for (int i = 0; i < n; i++) {
		in[i] = (int)rng_below(&r, GPT_VOCAB);
		tg[i] = (int)rng_below(&r, GPT_VOCAB);
	}
}

static size_t
toff(const struct gpt *m, int t)
{
	size_t off = 0;

	for (int i = 0; i < t; i++)
		off += m->sizes[i];
	return off;
}

/* whole's tensor t, element of shard rank's tensor t at local index */
static size_t
whole_index(const struct gpt_config *wc, const struct gpt *sh, int t,
    size_t local, const size_t *wsizes)
{
	size_t per_w = wsizes[t] / (size_t)wc->L;
	size_t per_s = sh->sizes[t] / (size_t)wc->L;

	if (t < 2 || t > 13)
		return local;
	for (size_t j = 0; j < per_w; j++) {
		long at = gpt_tp_index(&sh->cfg, t, j);

		if (at >= 0 && (size_t)at == local % per_s)
			return local / per_s * per_w + j;
	}
	ck_abort_msg("tensor %s: local %zu of no whole element",
	    tensor_names[t], local);
	return 0;
}

START_TEST(test_index_partition)
{
	struct gpt_config c = { 1, 4, 16, NT, GPT_VOCAB, 0, 0, 0, 0 };
	struct gpt whole, sh;

	ck_assert_int_eq(gpt_init(&whole, &c, &kern_ref_ops), 0);
	for (int tp = 2; tp <= 4; tp += 2) {
		for (int t = 2; t <= 13; t++) {
			size_t n = whole.sizes[t];
			int *owner = calloc(n, sizeof(int));
			char *seen[MAXR];

			ck_assert_ptr_nonnull(owner);
			for (int r = 0; r < tp; r++) {
				struct gpt_config s = c;

				s.tp = tp;
				s.tr = r;
				ck_assert_int_eq(gpt_init(&sh, &s,
				    &kern_ref_ops), 0);
				ck_assert_int_eq(gpt_param_sharded(t) ?
				    sh.sizes[t] * (size_t)tp : sh.sizes[t], n);
				seen[r] = calloc(sh.sizes[t], 1);
				for (size_t j = 0; j < n; j++) {
					long at = gpt_tp_index(&s, t, j);

					if (at < 0)
						continue;
					ck_assert_int_lt(at, (long)sh.sizes[t]);
					ck_assert_int_eq(seen[r][at], 0);
					seen[r][at] = 1;
					owner[j]++;
				}
				/* a rank's shard is filled, once each */
				for (size_t a = 0; a < sh.sizes[t]; a++)
					ck_assert_int_eq(seen[r][a], 1);
				free(seen[r]);
				gpt_fini(&sh);
			}
			/* split: each element on one rank; whole: on all */
			for (size_t j = 0; j < n; j++)
				ck_assert_int_eq(owner[j], gpt_param_sharded(t) ?
				    1 : tp);
			free(owner);
		}
	}
	gpt_fini(&whole);
}
END_TEST

/* The thread group: an all-reduce by barrier, summed in rank order. */
struct tgroup {
	pthread_barrier_t	 bar;
	int			 n;
	float			*x[MAXR];
	int			 calls[MAXR];
};

struct trank {
	struct tgroup	*g;
	int		 r;
	struct gpt	*m;
	const int	*in[2], *tg[2];
	float		 dropout;
	float		 loss[2];
};

static int
group_sum(void *arg, float *x, size_t n)
{
	struct trank *t = arg;
	struct tgroup *g = t->g;
	float *sum = malloc(n * sizeof(float));

	ck_assert_ptr_nonnull(sum);
	g->x[t->r] = x;
	g->calls[t->r]++;
	pthread_barrier_wait(&g->bar);
	for (size_t i = 0; i < n; i++) {
		float s = g->x[0][i];

		for (int r = 1; r < g->n; r++)
			s += g->x[r][i];
		sum[i] = s;
	}
	pthread_barrier_wait(&g->bar);	/* all read before any writes */
	memcpy(x, sum, n * sizeof(float));
	free(sum);
	return 0;
}

static void *
rank_main(void *arg)
{
	struct trank *t = arg;
	struct gpt *m = t->m;

	m->tp_reduce = group_sum;
	m->tp_reduce_arg = t;
	m->dropout = t->dropout;
	rng_seed(&m->drop_rng, 77);
	gpt_zero_grad(m);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(gpt_forward(m, t->in[i], t->tg[i], NB, NT), 0);
		t->loss[i] = m->loss;
		gpt_backward(m, 0.5f);
	}
	return NULL;
}

static double
maxabs(const float *x, size_t n)
{
	double b = 0;

	for (size_t i = 0; i < n; i++)
		b = fabs(x[i]) > b ? fabs(x[i]) : b;
	return b;
}

/*
 * The unsplit model of L blocks, NH heads, width C against tp ranks.
 */
static void
tp_vs_whole(int L, int NH, int C, int tp, float dropout)
{
	const struct kern_ops *k = &kern_ref_ops;
	struct gpt_config wc = { L, NH, C, NT, GPT_VOCAB, 0, 0, 0, 0 };
	struct gpt whole, sh[MAXR];
	struct trank ranks[MAXR];
	struct tgroup g = { .n = tp };
	pthread_t th[MAXR];
	int in[2][NB * NT], tg[2][NB * NT];
	float wloss[2];
	double wss = 0, sss = 0;
	struct rng r;

	ck_assert_int_le(tp, MAXR);
	ck_assert_int_eq(gpt_init(&whole, &wc, k), 0);
	whole.dropout = dropout;
	rng_seed(&r, 5);
	gpt_init_weights(&whole, &r);
	for (int i = 0; i < 2; i++)
		batch(in[i], tg[i], NB * NT, 11 + (uint64_t)i);
	gpt_zero_grad(&whole);
	rng_seed(&whole.drop_rng, 77);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(gpt_forward(&whole, in[i], tg[i], NB, NT), 0);
		wloss[i] = whole.loss;
		gpt_backward(&whole, 0.5f);
	}

	pthread_barrier_init(&g.bar, NULL, (unsigned)tp);
	for (int q = 0; q < tp; q++) {
		struct gpt_config c = wc;

		c.tp = tp;
		c.tr = q;
		ck_assert_int_eq(gpt_init(&sh[q], &c, k), 0);
		rng_seed(&r, 5);
		gpt_init_weights(&sh[q], &r);
		/* the shard's initial values are the whole model's slices */
		for (int t = 0; t < GPT_NPARAMS; t++)
			for (size_t e = 0; e < sh[q].sizes[t]; e++)
				ck_assert_msg(sh[q].params[toff(&sh[q], t) + e] ==
				    whole.params[toff(&whole, t) + whole_index(
				    &wc, &sh[q], t, e, whole.sizes)],
				    "rank %d %s[%zu]: not the whole model's", q,
				    tensor_names[t], e);
		ranks[q] = (struct trank){ .g = &g, .r = q, .m = &sh[q],
		    .in = { in[0], in[1] }, .tg = { tg[0], tg[1] },
		    .dropout = dropout };
	}
	for (int q = 0; q < tp; q++)
		ck_assert_int_eq(pthread_create(&th[q], NULL, rank_main,
		    &ranks[q]), 0);
	for (int q = 0; q < tp; q++)
		pthread_join(th[q], NULL);
	pthread_barrier_destroy(&g.bar);

	/* four sums a block a micro-batch: two forward, two backward */
	for (int q = 0; q < tp; q++)
		ck_assert_int_eq(g.calls[q], 2 * 4 * L);
	for (int i = 0; i < 2; i++)
		for (int q = 0; q < tp; q++) {
			ck_assert_msg(fabsf(ranks[q].loss[i] - wloss[i]) <=
			    1e-5f * fabsf(wloss[i]), "loss %d rank %d: %.9g, "
			    "whole %.9g", i, q, ranks[q].loss[i], wloss[i]);
			/* every rank has the same loss, bit for bit */
			ck_assert(ranks[q].loss[i] == ranks[0].loss[i]);
		}
	for (int t = 0; t < GPT_NPARAMS; t++) {
		const float *wg = whole.grads + toff(&whole, t);
		double big = maxabs(wg, whole.sizes[t]), worst = 0;

		for (int q = 0; q < tp; q++) {
			const float *sg = sh[q].grads + toff(&sh[q], t);

			if (!gpt_param_sharded(t))
				/* the whole tensors: the same on every rank */
				ck_assert_msg(memcmp(sg, sh[0].grads +
				    toff(&sh[0], t), sh[q].sizes[t] *
				    sizeof(float)) == 0, "%s: rank %d's gradient "
				    "differs from rank 0's", tensor_names[t], q);
			for (size_t e = 0; e < sh[q].sizes[t]; e++) {
				size_t w = whole_index(&wc, &sh[q], t, e,
				    whole.sizes);
				double d = fabs((double)sg[e] - wg[w]);

				worst = d > worst ? d : worst;
			}
		}
		ck_assert_msg(big > 0, "%s: no gradient", tensor_names[t]);
		ck_assert_msg(worst <= 1e-4 * big, "%s: worst difference %g "
		    "of %g (tp %d, dropout %g)", tensor_names[t], worst, big,
		    tp, dropout);
	}
	/* tp_step_finish's norm: the shards' squares summed over the
	   ranks, the whole tensors' once (rank 0's, the same on each) */
	for (int q = 0; q < tp; q++) {
		double shard, wh;

		tp_sq_sums(&sh[q], &shard, &wh);
		sss += shard + (q == 0 ? wh : 0);
	}
	wss = (double)grad_norm(whole.grads, whole.nparams);
	ck_assert_msg(fabs(sqrt(sss) - wss) <= 1e-5 * wss,
	    "norm: shards %.9g, whole %.9g", sqrt(sss), wss);
	for (int q = 0; q < tp; q++)
		gpt_fini(&sh[q]);
	gpt_fini(&whole);
}

START_TEST(test_one_block)
{
	tp_vs_whole(1, 2, 16, 2, 0);
}
END_TEST

START_TEST(test_model_two_ranks)
{
	tp_vs_whole(3, 4, 16, 2, 0);
}
END_TEST

START_TEST(test_model_four_ranks)
{
	tp_vs_whole(2, 4, 32, 4, 0);
}
END_TEST

START_TEST(test_model_dropout)
{
	/* the masks of the whole branches: the same generator on each rank */
	tp_vs_whole(2, 2, 16, 2, 0.2f);
}
END_TEST

START_TEST(test_bad_split)
{
	struct gpt_config c = { 1, 3, 12, NT, GPT_VOCAB, 0, 0, 2, 0 };
	uint32_t nodes[GPT_MAX_TP * 4];
	struct gpt m;
	char err[256];
	int n, R;

	/* 3 heads over 2 ranks */
	ck_assert_int_eq(gpt_init(&m, &c, &kern_ref_ops), -EINVAL);
	c.NH = 2;
	c.tr = 2;		/* rank 2 of 2 */
	ck_assert_int_eq(gpt_init(&m, &c, &kern_ref_ops), -EINVAL);
	ck_assert_int_eq(tp_check_split(3, 12, 2, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "model.n_head = 3"));
	ck_assert_int_eq(tp_check_split(4, 16, 2, err, sizeof(err)), 0);
	ck_assert_int_eq(tp_check_split(4, 16, GPT_MAX_TP + 1, err,
	    sizeof(err)), -EINVAL);

	ck_assert_int_eq(tp_parse_group("2,1", nodes, &n, &R, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(R, 1);
	ck_assert_uint_eq(nodes[0], 2);
	ck_assert_uint_eq(nodes[1], 1);
	/* replicas of the group, replica-major */
	ck_assert_int_eq(tp_parse_group("1,2/3,4/6,5", nodes, &n, &R, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(R, 3);
	ck_assert_uint_eq(nodes[4], 6);
	ck_assert_uint_eq(nodes[5], 5);
	ck_assert_int_eq(tp_parse_group("1", nodes, &n, &R, err, sizeof(err)),
	    -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "2 ranks or more"));
	ck_assert_int_eq(tp_parse_group("1,1", nodes, &n, &R, err,
	    sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "listed twice"));
	ck_assert_int_eq(tp_parse_group("1,2/3,1", nodes, &n, &R, err,
	    sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "listed twice"));
	ck_assert_int_eq(tp_parse_group("1,2/3,4,5", nodes, &n, &R, err,
	    sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "replica 1 has 3 ranks"));
}
END_TEST

START_TEST(test_job_refuses)
{
	struct job j;
	char *sets[3];

	sets[0] = "dist.tensor=1,2";
	sets[1] = "model.n_head=3";
	sets[2] = "model.n_embd=12";
	ck_assert_int_eq(job_load(&j, NULL, sets, 3), -1);
	sets[1] = "model.n_head=4";
	sets[2] = "model.n_embd=16";
	ck_assert_int_eq(job_load(&j, NULL, sets, 3), 0);
	ck_assert_str_eq(j.dist_tensor, "1,2");
	sets[1] = "dist.stages=1,2";
	ck_assert_int_eq(job_load(&j, NULL, sets, 2), -1);
	sets[1] = "dist.members=1,2";
	ck_assert_int_eq(job_load(&j, NULL, sets, 2), -1);
	/* replicas: their shares, and the groups' ids */
	sets[0] = "dist.tensor=1,2/3,4";
	sets[1] = "dist.shares=3,5";
	ck_assert_int_eq(job_load(&j, NULL, sets, 2), 0);
	sets[1] = "dist.shares=3";
	ck_assert_int_eq(job_load(&j, NULL, sets, 2), -1);
	sets[1] = "dist.group=65533";
	ck_assert_int_eq(job_load(&j, NULL, sets, 2), -1);
}
END_TEST

/* A plan's tensor groups (control's share) as the job a worker trains. */
START_TEST(test_from_plan)
{
	struct ctl_share sh;
	struct job j, out;
	char *sets[3] = { "dist.tensor=plan", "model.n_head=4",
	    "model.n_embd=16" };
	char err[256];

	ck_assert_int_eq(job_load(&j, NULL, sets, 3), 0);
	memset(&sh, 0, sizeof(sh));
	sh.epoch = 7;
	sh.tp = 2;
	sh.pp = 1;
	sh.dp = 2;
	sh.members[0] = 5;
	sh.members[1] = 2;
	sh.members[2] = 9;
	sh.members[3] = 1;
	sh.shares[0] = 8;
	sh.shares[1] = 4;
	sh.nmicro[0] = sh.nmicro[1] = 2;
	ck_assert_int_eq(tp_from_share(&sh, &j, &out, err, sizeof(err)), 0);
	ck_assert_str_eq(out.dist_tensor, "5,2/9,1");
	ck_assert_str_eq(out.dist_shares, "4,2");
	ck_assert_int_eq(out.accumulate, 2);
	ck_assert_int_eq(out.dist_group, TP_PLAN_GROUP);
	/* micro-batches that differ between replicas are refused */
	sh.nmicro[1] = 4;
	ck_assert_int_eq(tp_from_share(&sh, &j, &out, err, sizeof(err)),
	    -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(err, "replica 1 4 rows in 4"));
	sh.nmicro[1] = 2;
	/* a split the model does not take */
	sh.tp = 3;
	sh.dp = 1;
	ck_assert_int_eq(tp_from_share(&sh, &j, &out, err, sizeof(err)),
	    -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "model.n_head = 4"));
	/* not a tensor plan */
	sh.tp = 1;
	ck_assert_int_eq(tp_from_share(&sh, &j, &out, err, sizeof(err)),
	    -ENOTSUP);
	/* plan takes the groups and shares from the plan alone */
	sets[1] = "dist.shares=4";
	ck_assert_int_eq(job_load(&j, NULL, sets, 2), -1);
}
END_TEST

static Suite *
tensor_suite(void)
{
	Suite *s = suite_create("tensor");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_index_partition);
	tcase_add_test(tc, test_one_block);
	tcase_add_test(tc, test_model_two_ranks);
	tcase_add_test(tc, test_model_four_ranks);
	tcase_add_test(tc, test_model_dropout);
	tcase_add_test(tc, test_bad_split);
	tcase_add_test(tc, test_job_refuses);
	tcase_add_test(tc, test_from_plan);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(tensor_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
