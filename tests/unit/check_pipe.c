/*
 * check_pipe.c: pipeline parallel without a network.  The split of the
 * blocks into stages (dist.layers), the 1F1B and GPipe schedules run as
 * S stages that block on what they receive (every micro-batch forward and
 * backward once, in order, no deadlock, the activations held within the
 * slots), and stage models chained in one process against the whole
 * model: the same initial parameters, loss and gradients bit for bit, but
 * for the tied embedding, whose two halves are summed in another order.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"

START_TEST(test_split_even)
{
	int l[PIPE_MAX_STAGES];
	char err[256];

	ck_assert_int_eq(pipe_split_layers("", 2, 5, l, err, sizeof(err)), 2);
	ck_assert_int_eq(l[0], 3);
	ck_assert_int_eq(l[1], 2);
	ck_assert_int_eq(pipe_split_layers(NULL, 3, 7, l, err, sizeof(err)),
	    3);
	ck_assert_int_eq(l[0] + l[1] + l[2], 7);
	ck_assert_int_eq(l[0], 3);
	ck_assert_int_eq(l[2], 2);
	ck_assert_int_eq(pipe_split_layers("", 4, 4, l, err, sizeof(err)), 4);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(l[i], 1);
}
END_TEST

START_TEST(test_split_explicit)
{
	int l[PIPE_MAX_STAGES];
	char err[256];

	ck_assert_int_eq(pipe_split_layers("1, 3", 2, 4, l, err, sizeof(err)),
	    2);
	ck_assert_int_eq(l[0], 1);
	ck_assert_int_eq(l[1], 3);
	/* each refusal says why */
	ck_assert_int_eq(pipe_split_layers("1,2", 2, 4, l, err, sizeof(err)),
	    -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "3 blocks in all, the model has 4"));
	ck_assert_int_eq(pipe_split_layers("4", 2, 4, l, err, sizeof(err)),
	    -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "1 block counts for 2 stages"));
	ck_assert_int_eq(pipe_split_layers("0,4", 2, 4, l, err, sizeof(err)),
	    -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "numbers from 1"));
	ck_assert_int_eq(pipe_split_layers("2,x", 2, 4, l, err, sizeof(err)),
	    -EINVAL);
	ck_assert_int_eq(pipe_split_layers("", 3, 2, l, err, sizeof(err)),
	    -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "every stage needs a block"));
}
END_TEST

START_TEST(test_parse_stages)
{
	uint32_t n[PIPE_MAX_STAGES * 4];
	char err[256];
	int S, R, K;

	ck_assert_int_eq(pipe_parse_stages("3,1", n, &S, &R, &K, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(S, 2);
	ck_assert_int_eq(R, 1);
	ck_assert_uint_eq(n[0], 3);
	ck_assert_uint_eq(n[1], 1);
	/* replicas of the pipeline, replica-major */
	ck_assert_int_eq(pipe_parse_stages("1,2,3/4,5,6", n, &S, &R, &K, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(S, 3);
	ck_assert_int_eq(R, 2);
	for (int i = 0; i < 6; i++)
		ck_assert_uint_eq(n[i], (uint32_t)i + 1);
	/* each refusal says why */
	ck_assert_int_eq(pipe_parse_stages("1,2/3", n, &S, &R, &K, err,
	    sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "replica 1 has 1 stages, replica 0 "
	    "2"));
	ck_assert_int_eq(pipe_parse_stages("1,2/2,3", n, &S, &R, &K, err,
	    sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "node 2 is listed twice"));
	ck_assert_int_eq(pipe_parse_stages("1", n, &S, &R, &K, err, sizeof(err)),
	    -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "2 stages or more"));
	ck_assert_int_eq(pipe_parse_stages("1,2/", n, &S, &R, &K, err,
	    sizeof(err)), -EINVAL);
	ck_assert_int_eq(pipe_parse_stages("1,x", n, &S, &R, &K, err,
	    sizeof(err)), -EINVAL);
	ck_assert_int_eq(pipe_parse_stages("3,1", n, &S, &R, &K, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(K, 1);
	/* stages of tensor ranks: nodes[R][S][K] */
	ck_assert_int_eq(pipe_parse_stages("1+2,3+4/5+6,8+7", n, &S, &R, &K,
	    err, sizeof(err)), 0);
	ck_assert_int_eq(S, 2);
	ck_assert_int_eq(R, 2);
	ck_assert_int_eq(K, 2);
	ck_assert_uint_eq(n[1], 2);
	ck_assert_uint_eq(n[2], 3);
	ck_assert_uint_eq(n[6], 8);
	ck_assert_uint_eq(n[7], 7);
	ck_assert_int_eq(pipe_parse_stages("1+2,3", n, &S, &R, &K, err,
	    sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "stage 1 of replica 0 has 1 tensor "
	    "ranks, the first stage 2"));
	ck_assert_int_eq(pipe_parse_stages("1+2,3+1", n, &S, &R, &K, err,
	    sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "node 1 is listed twice"));
	ck_assert_int_eq(pipe_parse_stages("1+2", n, &S, &R, &K, err,
	    sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "2 stages or more"));
}
END_TEST

/*
 * Runs the S stages' schedules as blocking processes: a forward of stage
 * s > 0 waits for the previous stage's forward of that micro-batch, a
 * backward of stage s < S-1 for the next stage's backward of it, and a
 * stage whose next operation cannot run waits (sends never block).
 */
static void
simulate(int S, int M, int gpipe)
{
	struct pipe_op ops[PIPE_MAX_STAGES][128];
	int n[PIPE_MAX_STAGES], pc[PIPE_MAX_STAGES] = { 0 };
	int fdone[PIPE_MAX_STAGES][64], bdone[PIPE_MAX_STAGES][64];
	int nextf[PIPE_MAX_STAGES] = { 0 }, nextb[PIPE_MAX_STAGES] = { 0 };
	int owner[PIPE_MAX_STAGES][GPT_MAX_SLOTS];
	int progress = 1, left = 0;

	memset(fdone, 0, sizeof(fdone));
	memset(bdone, 0, sizeof(bdone));
	for (int s = 0; s < S; s++) {
		int want = gpipe ? M : (S - s < M ? S - s : M);

		n[s] = pipe_schedule(S, s, M, gpipe, ops[s]);
		ck_assert_int_eq(n[s], 2 * M);
		ck_assert_int_eq(pipe_slots(ops[s], n[s]), want);
		left += n[s];
		for (int k = 0; k < GPT_MAX_SLOTS; k++)
			owner[s][k] = -1;
	}
	while (progress) {
		progress = 0;
		for (int s = 0; s < S; s++) {
			struct pipe_op *o;
			int i, slot, nslots = pipe_slots(ops[s], n[s]);

			if (pc[s] == n[s])
				continue;
			o = &ops[s][pc[s]];
			i = o->micro;
			slot = i % nslots;
			if (o->kind == PIPE_F) {
				if (s > 0 && !fdone[s - 1][i])
					continue;
				/* forwards in order, into a free slot */
				ck_assert_int_eq(i, nextf[s]++);
				ck_assert_int_eq(owner[s][slot], -1);
				owner[s][slot] = i;
				fdone[s][i] = 1;
			} else {
				if (s < S - 1 && !bdone[s + 1][i])
					continue;
				/* backwards in order: the gradient sums keep
				   the single node's order */
				ck_assert_int_eq(i, nextb[s]++);
				ck_assert(fdone[s][i]);
				ck_assert_int_eq(owner[s][slot], i);
				owner[s][slot] = -1;
				bdone[s][i] = 1;
			}
			pc[s]++;
			left--;
			progress = 1;
		}
	}
	ck_assert_msg(left == 0, "S %d M %d %s: deadlock with %d operations "
	    "left", S, M, gpipe ? "gpipe" : "1f1b", left);
	for (int s = 0; s < S; s++) {
		ck_assert_int_eq(nextf[s], M);
		ck_assert_int_eq(nextb[s], M);
	}
}

START_TEST(test_schedules)
{
	for (int S = 1; S <= 6; S++)
		for (int M = 1; M <= 12; M++) {
			simulate(S, M, 0);
			simulate(S, M, 1);
		}
}
END_TEST

START_TEST(test_1f1b_order)
{
	/* the order drawn in pipe.c's header comment */
	static const char *want[3] = { "F0 F1 F2 B0 F3 B1 B2 B3 ",
	    "F0 F1 B0 F2 B1 F3 B2 B3 ", "F0 B0 F1 B1 F2 B2 F3 B3 " };
	struct pipe_op ops[8];

	for (int s = 0; s < 3; s++) {
		char got[64] = "";
		int n = pipe_schedule(3, s, 4, 0, ops);

		for (int k = 0; k < n; k++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got),
			    "%c%d ", ops[k].kind == PIPE_F ? 'F' : 'B',
			    ops[k].micro);
		ck_assert_str_eq(got, want[s]);
	}
}
END_TEST

#define NL	3
#define NB	2
#define NT	6

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

/* The part of whole's tensor t that stage st holds. */
static const float *
slice(const struct gpt *whole, const float *base, const struct gpt *st,
    int t)
{
	size_t off = 0;

	for (int i = 0; i < t; i++)
		off += whole->sizes[i];
	if (t >= 2 && t <= 13)
		off += whole->sizes[t] / NL * (size_t)st->cfg.l0;
	return base + off;
}

static size_t
toff(const struct gpt *m, int t)
{
	size_t off = 0;

	for (int i = 0; i < t; i++)
		off += m->sizes[i];
	return off;
}

/*
 * The whole model (NL blocks) against the stages of `split`, two
 * micro-batches of NB x NT: stage models hold both micro-batches' activations
 * in slots 0 and 1 and run them 1F1B-like (F0 F1 through, then B0, B1).
 * With dropout, each stage's generator takes over where the previous
 * stage's left it, so that the masks are the whole model's.
 */
static void
chain(const int *split, int S, float dropout)
{
	const struct kern_ops *k = &kern_ref_ops;
	struct gpt_config wc = { NL, 2, 16, NT, GPT_VOCAB, 0, 0, 0, 0 };
	struct gpt whole, st[NL];
	int in[2][NB * NT], tg[2][NB * NT], l0 = 0;
	float wloss[2], sloss[2];
	struct rng r, drop;

	ck_assert_int_eq(gpt_init(&whole, &wc, k), 0);
	whole.dropout = dropout;
	rng_seed(&r, 5);
	gpt_init_weights(&whole, &r);
	for (int s = 0; s < S; s++) {
		struct gpt_config c = wc;

		c.l0 = l0;
		c.L = split[s];
		c.Lall = NL;
		l0 += split[s];
		ck_assert_int_eq(gpt_init(&st[s], &c, k), 0);
		st[s].dropout = dropout;
		ck_assert_int_eq(st[s].embed, s == 0);
		ck_assert_int_eq(st[s].head, s == S - 1);
		rng_seed(&r, 5);
		gpt_init_weights(&st[s], &r);
		/* the stage's initial values are the whole model's */
		for (int t = 0; t < GPT_NPARAMS; t++)
			if (st[s].sizes[t] > 0)
				ck_assert_mem_eq(st[s].params + toff(&st[s], t),
				    slice(&whole, whole.params, &st[s], t),
				    st[s].sizes[t] * sizeof(float));
		gpt_zero_grad(&st[s]);
	}
	ck_assert_int_eq(st[0].sizes[1], whole.sizes[1]);	/* wpe */
	if (S > 2)
		ck_assert_int_eq(st[1].sizes[0], 0);	/* no wte mid-way */
	ck_assert_int_eq(st[0].sizes[14], 0);		/* no LNf first */

	gpt_zero_grad(&whole);
	rng_seed(&whole.drop_rng, 77);
	for (int i = 0; i < 2; i++) {
		batch(in[i], tg[i], NB * NT, 11 + (uint64_t)i);
		ck_assert_int_eq(gpt_forward(&whole, in[i], tg[i], NB, NT), 0);
		wloss[i] = whole.loss;
		gpt_backward(&whole, 0.5f);
	}
	/* forwards of both micro-batches, each in its own slot */
	rng_seed(&drop, 77);
	for (int i = 0; i < 2; i++) {
		const float *x = NULL;

		for (int s = 0; s < S; s++) {
			st[s].drop_rng = drop;
			gpt_slot(&st[s], i);
			ck_assert_int_eq(gpt_stage_forward(&st[s], in[i], x,
			    tg[i], NB, NT), 0);
			drop = st[s].drop_rng;
			if (s < S - 1)
				x = gpt_stage_out(&st[s]);
		}
		sloss[i] = st[S - 1].loss;
	}
	/* then both backwards, from the last stage down */
	for (int i = 0; i < 2; i++) {
		const float *d = NULL;

		for (int s = S - 1; s >= 0; s--) {
			gpt_slot(&st[s], i);
			gpt_stage_backward(&st[s], d, 0.5f);
			if (s > 0)
				d = gpt_stage_din(&st[s]);
		}
	}
	for (int i = 0; i < 2; i++)
		ck_assert_msg(wloss[i] == sloss[i], "loss %d: whole %.9g, "
		    "stages %.9g", i, wloss[i], sloss[i]);
	for (int s = 0; s < S; s++)
		for (int t = 1; t < GPT_NPARAMS; t++)
			if (st[s].sizes[t] > 0)
				ck_assert_msg(memcmp(st[s].grads + toff(&st[s],
				    t), slice(&whole, whole.grads, &st[s], t),
				    st[s].sizes[t] * sizeof(float)) == 0,
				    "stage %d tensor %d: gradients differ", s,
				    t);
	/* the tied wte: the two ends' halves add up to the whole's */
	{
		size_t n = whole.sizes[0];
		double worst = 0, big = 0;

		for (size_t e = 0; e < n; e++) {
			double sum = (double)(st[0].g.wte[e] +
			    st[S - 1].g.wte[e]);
			double dd = fabs(sum - whole.g.wte[e]);

			worst = dd > worst ? dd : worst;
			big = fabs(whole.g.wte[e]) > big ?
			    fabs(whole.g.wte[e]) : big;
		}
		ck_assert_msg(big > 0 && worst <= 1e-6 * big, "wte gradient: "
		    "worst difference %g of %g", worst, big);
	}
	for (int s = 0; s < S; s++)
		gpt_fini(&st[s]);
	gpt_fini(&whole);
}

START_TEST(test_two_stages)
{
	int split[2] = { 1, 2 };

	chain(split, 2, 0);
}
END_TEST

START_TEST(test_three_stages)
{
	int split[3] = { 1, 1, 1 };

	chain(split, 3, 0);
}
END_TEST

START_TEST(test_stages_dropout)
{
	int split[2] = { 2, 1 };

	/* the embedding's and both branches' masks, per slot */
	chain(split, 2, 0.2f);
}
END_TEST

START_TEST(test_stage_bad_config)
{
	struct gpt_config c = { 2, 2, 16, NT, GPT_VOCAB, 2, 3, 0, 0 };
	struct gpt m;

	/* blocks 2-3 of 3 do not exist */
	ck_assert_int_eq(gpt_init(&m, &c, &kern_ref_ops), -EINVAL);
	c.l0 = 1;
	c.Lall = 0;
	ck_assert_int_eq(gpt_init(&m, &c, &kern_ref_ops), -EINVAL);
}
END_TEST

static Suite *
pipe_suite(void)
{
	Suite *s = suite_create("pipe");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_split_even);
	tcase_add_test(tc, test_split_explicit);
	tcase_add_test(tc, test_parse_stages);
	tcase_add_test(tc, test_schedules);
	tcase_add_test(tc, test_1f1b_order);
	tcase_add_test(tc, test_two_stages);
	tcase_add_test(tc, test_three_stages);
	tcase_add_test(tc, test_stages_dropout);
	tcase_add_test(tc, test_stage_bad_config);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(pipe_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
