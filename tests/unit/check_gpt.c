/*
 * check_gpt.c: the model.  Gradients against finite differences (per
 * tensor, along random directions and on single coordinates), with and
 * without dropout; oneDNN model against the reference model; a tiny model
 * overfits a short text.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"

static const char *tensor_names[GPT_NPARAMS] = {
	"wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
	"ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb",
};

static void
make_batch(int *in, int *tg, int n, uint64_t seed)
{
	struct rng r;

	rng_seed(&r, seed);
	for (int i = 0; i < n; i++) {
		in[i] = (int)rng_below(&r, GPT_VOCAB);
		tg[i] = (int)rng_below(&r, GPT_VOCAB);
	}
}

/* Loss at the current parameters; dropout masks replayed from seed. */
static double
loss_at(struct gpt *m, const int *in, const int *tg, int B, int T)
{
	rng_seed(&m->drop_rng, 99);
	ck_assert_int_eq(gpt_forward(m, in, tg, B, T), 0);
	return m->loss;
}

static size_t
tensor_off(const struct gpt *m, int t)
{
	size_t off = 0;

	for (int i = 0; i < t; i++)
		off += m->sizes[i];
	return off;
}

static void
fd_check(const struct kern_ops *k, float dropout)
{
	struct gpt_config cfg = { 2, 2, 8, 6, GPT_VOCAB, 0, 0, 0, 0 };
	int B = 2, T = 5, in[10], tg[10];
	struct gpt m;
	struct rng r;
	float *g;

	ck_assert_int_eq(gpt_init(&m, &cfg, k), 0);
	rng_seed(&r, 7);
	gpt_init_weights(&m, &r);
	/* non-trivial LayerNorm affine and biases, so their grads matter */
	for (size_t i = 0; i < m.nparams; i++)
		m.params[i] += 0.05f * rng_normal(&r);
	m.dropout = dropout;
	make_batch(in, tg, B * T, 3);
	loss_at(&m, in, tg, B, T);
	gpt_zero_grad(&m);
	gpt_backward(&m, 1.0f);
	g = malloc(m.nparams * sizeof(float));
	memcpy(g, m.grads, m.nparams * sizeof(float));

	for (int t = 0; t < GPT_NPARAMS; t++) {
		size_t off = tensor_off(&m, t), n = m.sizes[t];
		float *p = m.params + off;

		/* 1. directional derivative along 3 random directions */
		for (int dir = 0; dir < 3; dir++) {
			double eps = 1e-3, dot = 0, norm = 0, lp, lm, fd;
			float *d = malloc(n * sizeof(float));

			for (size_t i = 0; i < n; i++) {
				d[i] = rng_normal(&r);
				norm += (double)d[i] * d[i];
			}
			norm = sqrt(norm);
			for (size_t i = 0; i < n; i++) {
				d[i] = (float)(d[i] / norm);
				dot += (double)d[i] * g[off + i];
			}
			for (size_t i = 0; i < n; i++)
				p[i] += (float)eps * d[i];
			lp = loss_at(&m, in, tg, B, T);
			for (size_t i = 0; i < n; i++)
				p[i] -= 2 * (float)eps * d[i];
			lm = loss_at(&m, in, tg, B, T);
			for (size_t i = 0; i < n; i++)
				p[i] += (float)eps * d[i];
			fd = (lp - lm) / (2 * eps);
			if (fabs(fd - dot) > 2e-3 + 0.02 * fabs(dot))
				ck_abort_msg("%s %s dropout %.1f: directional "
				    "derivative %d: analytic %.6g, finite "
				    "difference %.6g", k->name, tensor_names[t],
				    dropout, dir, dot, fd);
			free(d);
		}
		/* 2. the coordinate with the largest gradient */
		size_t best = 0;
		for (size_t i = 1; i < n; i++)
			if (fabsf(g[off + i]) > fabsf(g[off + best]))
				best = i;
		if (fabsf(g[off + best]) > 1e-4f) {
			double eps = 1e-2, lp, lm, fd;
			float save = p[best];

			p[best] = save + (float)eps;
			lp = loss_at(&m, in, tg, B, T);
			p[best] = save - (float)eps;
			lm = loss_at(&m, in, tg, B, T);
			p[best] = save;
			fd = (lp - lm) / (2 * eps);
			if (fabs(fd - g[off + best]) >
			    1e-3 + 0.03 * fabs(g[off + best]))
				ck_abort_msg("%s %s[%zu]: analytic %.6g, finite "
				    "difference %.6g", k->name,
				    tensor_names[t], best, g[off + best], fd);
		}
	}
	free(g);
	gpt_fini(&m);
}

START_TEST(test_fd_ref)
{
	fd_check(&kern_ref_ops, 0.0f);
}
END_TEST

START_TEST(test_fd_ref_dropout)
{
	fd_check(&kern_ref_ops, 0.3f);
}
END_TEST

START_TEST(test_fd_dnnl)
{
	kern_set_threads(1);
	fd_check(&kern_dnnl_ops, 0.0f);
}
END_TEST

/* The oneDNN model computes what the reference model computes. */
START_TEST(test_dnnl_vs_ref)
{
	struct gpt_config cfg = { 2, 4, 64, 32, GPT_VOCAB, 0, 0, 0, 0 };
	int B = 3, T = 29, in[3 * 29], tg[3 * 29];
	struct gpt a, b;
	struct rng r;
	double maxd = 0, maxg = 0;

	kern_set_threads(2);
	ck_assert_int_eq(gpt_init(&a, &cfg, &kern_ref_ops), 0);
	ck_assert_int_eq(gpt_init(&b, &cfg, &kern_dnnl_ops), 0);
	rng_seed(&r, 11);
	gpt_init_weights(&a, &r);
	memcpy(b.params, a.params, a.nparams * sizeof(float));
	make_batch(in, tg, B * T, 5);
	ck_assert_int_eq(gpt_forward(&a, in, tg, B, T), 0);
	ck_assert_int_eq(gpt_forward(&b, in, tg, B, T), 0);
	ck_assert_msg(fabsf(a.loss - b.loss) < 1e-4f * fabsf(a.loss),
	    "loss ref %.7f dnnl %.7f", a.loss, b.loss);
	gpt_zero_grad(&a);
	gpt_zero_grad(&b);
	gpt_backward(&a, 1.0f);
	gpt_backward(&b, 1.0f);
	for (size_t i = 0; i < a.nparams; i++) {
		double d = fabs((double)a.grads[i] - b.grads[i]);

		if (d > maxd)
			maxd = d;
		if (fabs(a.grads[i]) > maxg)
			maxg = fabs(a.grads[i]);
	}
	ck_assert_msg(maxd < 1e-3 * maxg, "max grad difference %.3g "
	    "(largest grad %.3g)", maxd, maxg);
	gpt_fini(&a);
	gpt_fini(&b);
}
END_TEST

/* Micro-batches accumulate to the gradient of the whole batch. */
START_TEST(test_accumulate)
{
	struct gpt_config cfg = { 1, 2, 16, 8, GPT_VOCAB, 0, 0, 0, 0 };
	int in[4 * 8], tg[4 * 8];
	struct gpt m;
	struct rng r;
	float *whole;

	ck_assert_int_eq(gpt_init(&m, &cfg, &kern_ref_ops), 0);
	rng_seed(&r, 1);
	gpt_init_weights(&m, &r);
	make_batch(in, tg, 32, 9);
	gpt_zero_grad(&m);
	ck_assert_int_eq(gpt_forward(&m, in, tg, 4, 8), 0);
	gpt_backward(&m, 1.0f);
	whole = malloc(m.nparams * sizeof(float));
	memcpy(whole, m.grads, m.nparams * sizeof(float));
	gpt_zero_grad(&m);
	for (int h = 0; h < 2; h++) {
		ck_assert_int_eq(gpt_forward(&m, in + h * 16, tg + h * 16, 2, 8),
		    0);
		gpt_backward(&m, 0.5f);
	}
	for (size_t i = 0; i < m.nparams; i++)
		ck_assert_msg(fabsf(whole[i] - m.grads[i]) <=
		    1e-5f + 1e-4f * fabsf(whole[i]), "grad %zu: %g vs %g", i,
		    whole[i], m.grads[i]);
	free(whole);
	gpt_fini(&m);
}
END_TEST

/* Bad tokens are refused, never read out of bounds. */
START_TEST(test_bad_input)
{
	struct gpt_config cfg = { 1, 1, 8, 4, GPT_VOCAB, 0, 0, 0, 0 };
	int in[4] = { 1, 2, 300, 4 }, tg[4] = { 1, 2, 3, 4 };
	struct gpt m;

	ck_assert_int_eq(gpt_init(&m, &cfg, &kern_ref_ops), 0);
	ck_assert_int_lt(gpt_forward(&m, in, tg, 1, 4), 0);
	in[2] = 3;
	tg[0] = -1;
	ck_assert_int_lt(gpt_forward(&m, in, tg, 1, 4), 0);
	tg[0] = 0;
	ck_assert_int_lt(gpt_forward(&m, in, tg, 1, 5), 0);	/* T > maxT */
	ck_assert_int_eq(gpt_forward(&m, in, tg, 1, 4), 0);
	gpt_fini(&m);
	cfg.C = 9;	/* not a multiple of NH = 2 */
	cfg.NH = 2;
	ck_assert_int_lt(gpt_init(&m, &cfg, &kern_ref_ops), 0);
}
END_TEST

/* A tiny model learns a short text by heart. */
START_TEST(test_overfit)
{
	static const char text[] = "the quick brown fox jumps over the lazy "
	    "dog while the cat sleeps";
	struct gpt_config cfg = { 2, 2, 32, 32, GPT_VOCAB, 0, 0, 0, 0 };
	int B = 4, T = 32, in[4 * 32], tg[4 * 32];
	struct adamw o;
	struct gpt m;
	struct rng r;
	float first = 0;

	kern_set_threads(1);
	ck_assert_int_eq(gpt_init(&m, &cfg, &kern_dnnl_ops), 0);
	ck_assert_int_eq(adamw_init(&o, m.nparams), 0);
	rng_seed(&r, 1);
	gpt_init_weights(&m, &r);
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++) {
			in[b * T + t] = (uint8_t)text[b * 8 + t];
			tg[b * T + t] = (uint8_t)text[b * 8 + t + 1];
		}
	for (int step = 0; step < 300; step++) {
		gpt_zero_grad(&m);
		ck_assert_int_eq(gpt_forward(&m, in, tg, B, T), 0);
		if (step == 0)
			first = m.loss;
		gpt_backward(&m, 1.0f);
		grad_clip(m.grads, m.nparams, 1.0f);
		adamw_step(&o, m.params, m.grads, &m, 3e-3f, 0.9f, 0.95f,
		    1e-8f, 0.0f, 1.0f);
	}
	ck_assert_int_eq(gpt_forward(&m, in, tg, B, T), 0);
	ck_assert_msg(first > 5.0f, "initial loss %.3f, expected ~ln 256",
	    first);
	ck_assert_msg(m.loss < 0.05f, "loss after 300 steps %.4f", m.loss);
	adamw_fini(&o);
	gpt_fini(&m);
}
END_TEST

/* Generation is deterministic for a seed and only emits bytes. */
START_TEST(test_generate)
{
	struct gpt_config cfg = { 1, 2, 16, 8, GPT_VOCAB, 0, 0, 0, 0 };
	uint8_t a[20], b[20];
	struct gpt m;
	struct rng r;

	ck_assert_int_eq(gpt_init(&m, &cfg, &kern_ref_ops), 0);
	rng_seed(&r, 1);
	gpt_init_weights(&m, &r);
	rng_seed(&r, 5);
	ck_assert_int_eq(gpt_generate(&m, (const uint8_t *)"ab", 2, a, 20,
	    0.8f, &r), 0);
	rng_seed(&r, 5);
	ck_assert_int_eq(gpt_generate(&m, (const uint8_t *)"ab", 2, b, 20,
	    0.8f, &r), 0);
	ck_assert_mem_eq(a, b, 20);
	gpt_fini(&m);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("gpt");
	TCase *tc = tcase_create("model");
	SRunner *sr;
	int nf;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fd_ref);
	tcase_add_test(tc, test_fd_ref_dropout);
	tcase_add_test(tc, test_fd_dnnl);
	tcase_add_test(tc, test_accumulate);
	tcase_add_test(tc, test_bad_input);
	/* ARCEUS_SMALL (valgrind): memory checks, not the long runs */
	if (getenv("ARCEUS_SMALL") == NULL) {
		tcase_add_test(tc, test_dnnl_vs_ref);
		tcase_add_test(tc, test_overfit);
	}
	tcase_add_test(tc, test_generate);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
