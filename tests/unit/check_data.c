/*
 * check_data.c: byte datasets (text and token files, split, batches,
 * corrupt and short files), the job-file table (every kind of error),
 * the optimizer (AdamW against a double-precision reference, the
 * schedule, clipping) and the random generator.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compute.h"

static char dir[64];

static void
setup(void)
{
	strcpy(dir, "/tmp/check_data.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static const char *
write_file(const char *name, const void *buf, size_t len)
{
	static char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "wb");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(buf, 1, len, fp), len);
	fclose(fp);
	return path;
}

START_TEST(test_text_split_and_batches)
{
	char text[1000], err[256];
	struct dataset d;
	struct rng r;
	int in[4 * 16], tg[4 * 16];

	for (int i = 0; i < 1000; i++)
		text[i] = (char)('a' + i % 26);
	text[10] = (char)0xc3;	/* UTF-8 bytes are tokens too */
	text[11] = (char)0xa9;
	ck_assert_int_eq(data_load(&d, write_file("t.txt", text, 1000), 0.2,
	    16, err, sizeof(err)), 0);
	ck_assert_uint_eq(d.ntokens, 1000);
	ck_assert_uint_eq(d.ntrain, 800);
	ck_assert_uint_eq(d.tokens[10], 0xc3);
	rng_seed(&r, 1);
	for (int rep = 0; rep < 50; rep++) {
		data_train_batch(&d, &r, 4, 16, in, tg);
		for (int b = 0; b < 4; b++) {
			for (int t = 0; t < 16; t++) {
				ck_assert_int_ge(in[b * 16 + t], 0);
				ck_assert_int_lt(in[b * 16 + t], 256);
				if (t < 15)
					ck_assert_int_eq(tg[b * 16 + t],
					    in[b * 16 + t + 1]);
			}
		}
	}
	/* validation windows come from the tail only, and are fixed */
	int in2[4 * 16], tg2[4 * 16];
	data_val_batch(&d, 3, 4, 16, in, tg);
	data_val_batch(&d, 3, 4, 16, in2, tg2);
	ck_assert_mem_eq(in, in2, sizeof(in));
	for (int b = 0; b < 4; b++) {
		int found = 0;

		for (size_t off = 800; off + 17 <= 1000 && !found; off++) {
			int ok = 1;

			for (int t = 0; t < 16 && ok; t++)
				ok = d.tokens[off + t] == in[b * 16 + t] &&
				    d.tokens[off + t + 1] == tg[b * 16 + t];
			found = ok;
		}
		ck_assert_msg(found, "validation window %d not in the tail", b);
	}
	data_free(&d);
}
END_TEST

/*
 * Replicas split one global batch: any split of its rows into parts, each
 * drawn from the step's generator, gives the rows of the whole batch, and
 * leaves the generator where the whole draw does (compute/dist.c).
 */
START_TEST(test_batch_parts)
{
	char text[3000], err[256];
	struct dataset d;
	struct rng whole, part, r;
	int all_in[12 * 8], all_tg[12 * 8], in[12 * 8], tg[12 * 8];
	const int cuts[][4] = { { 12, 0 }, { 6, 6 }, { 3, 5, 4 },
	    { 1, 1, 10 } };

	for (int i = 0; i < 3000; i++)
		text[i] = (char)(' ' + (i * 7919) % 95);
	ck_assert_int_eq(data_load(&d, write_file("p.txt", text, 3000), 0.1,
	    8, err, sizeof(err)), 0);
	for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
		rng_seed(&whole, 7);
		rng_seed(&part, 7);
		for (int step = 0; step < 3; step++) {
			int off = 0;

			data_train_batch(&d, &whole, 12, 8, all_in, all_tg);
			for (int k = 0; k < 4 && cuts[c][k] > 0; k++) {
				r = part;
				data_train_batch_part(&d, &r, 12, off,
				    cuts[c][k], 8, in, tg);
				ck_assert_mem_eq(in, all_in + off * 8,
				    sizeof(int) * (size_t)cuts[c][k] * 8);
				ck_assert_mem_eq(tg, all_tg + off * 8,
				    sizeof(int) * (size_t)cuts[c][k] * 8);
				off += cuts[c][k];
			}
			ck_assert_int_eq(off, 12);
			part = r;
			ck_assert_mem_eq(part.s, whole.s, sizeof(part.s));
		}
	}
	data_free(&d);
}
END_TEST

START_TEST(test_token_file_round_trip)
{
	char text[500], err[256], out[160];
	struct dataset a, b;
	const char *src;

	for (int i = 0; i < 500; i++)
		text[i] = (char)(i * 7);
	src = write_file("src.txt", text, 500);
	char srcp[160];
	snprintf(srcp, sizeof(srcp), "%s", src);
	snprintf(out, sizeof(out), "%s/tok.bin", dir);
	ck_assert_int_eq(data_build(srcp, out, err, sizeof(err)), 0);
	ck_assert_int_eq(data_load(&a, srcp, 0.1, 8, err, sizeof(err)), 0);
	ck_assert_int_eq(data_load(&b, out, 0.1, 8, err, sizeof(err)), 0);
	ck_assert_uint_eq(a.ntokens, b.ntokens);
	ck_assert_mem_eq(a.tokens, b.tokens, a.ntokens);
	data_free(&a);
	data_free(&b);
	/* refuses to overwrite silently? it replaces by rename: ok twice */
	ck_assert_int_eq(data_build(srcp, out, err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_corrupt_token_files)
{
	char text[300], err[256], out[160];
	struct dataset d;
	FILE *fp;
	long sz;

	memset(text, 'x', sizeof(text));
	char srcp[160];
	snprintf(srcp, sizeof(srcp), "%s", write_file("s.txt", text, 300));
	snprintf(out, sizeof(out), "%s/tok.bin", dir);
	ck_assert_int_eq(data_build(srcp, out, err, sizeof(err)), 0);
	/* bit flip in the tokens */
	fp = fopen(out, "r+b");
	fseek(fp, 100, SEEK_SET);
	fputc('y', fp);
	fclose(fp);
	ck_assert_int_eq(data_load(&d, out, 0.1, 8, err, sizeof(err)),
	    -EINVAL);
	ck_assert_msg(strstr(err, "checksum"), "%s", err);
	/* truncated */
	ck_assert_int_eq(data_build(srcp, out, err, sizeof(err)), 0);
	fp = fopen(out, "rb");
	fseek(fp, 0, SEEK_END);
	sz = ftell(fp);
	fclose(fp);
	ck_assert_int_eq(truncate(out, sz - 10), 0);
	ck_assert_int_eq(data_load(&d, out, 0.1, 8, err, sizeof(err)),
	    -EINVAL);
	ck_assert_msg(strstr(err, "truncated"), "%s", err);
	/* unknown version */
	ck_assert_int_eq(data_load(&d, write_file("v.bin", "ARCTOK99xxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxx", 100), 0.1, 8, err, sizeof(err)),
	    -EINVAL);
	ck_assert_msg(strstr(err, "unknown version"), "%s", err);
}
END_TEST

START_TEST(test_short_and_missing)
{
	char err[256];
	struct dataset d;

	ck_assert_int_eq(data_load(&d, write_file("short.txt", "hello", 5),
	    0.1, 64, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "too few"), "%s", err);
	ck_assert_int_eq(data_load(&d, "/nonexistent/corpus.txt", 0.1, 64,
	    err, sizeof(err)), -ENOENT);
	ck_assert_msg(strstr(err, "make corpus"), "%s", err);
	ck_assert_int_eq(data_load(&d, "/tmp", 0.1, 64, err, sizeof(err)),
	    -EINVAL);
	ck_assert_int_eq(data_load(&d, write_file("empty.txt", "", 0), 0.1, 4,
	    err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(test_job_errors)
{
	const char *p = write_file("bad.conf",
	    "[model]\n"
	    "n_layer = 0\n"		/* 2: out of bounds */
	    "n_head = four\n"		/* 3: not an integer */
	    "[train]\n"
	    "lr = fast\n"		/* 5: not a number */
	    "warp = 9\n"		/* 6: unknown key */
	    "[dat]\n", 61);
	char path[160], *sets[] = { "train.steps=-3", "model.n_embd=130",
	    "model.n_head=4" };
	struct job j;

	snprintf(path, sizeof(path), "%s", p);
	/* all errors at once, on stderr; the return says it failed */
	ck_assert_int_eq(job_load(&j, path, NULL, 0), -1);
	ck_assert_int_eq(job_load(&j, "/nonexistent/job.conf", NULL, 0), -1);
	ck_assert_int_eq(job_load(&j, NULL, sets, 1), -1);
	/* cross-key: 130 is not a multiple of 4 */
	ck_assert_int_eq(job_load(&j, NULL, sets + 1, 2), -1);
	/* and the shipped jobs load */
	ck_assert_int_eq(job_load(&j, "configs/jobs/tiny.conf", NULL, 0), 0);
	ck_assert_int_eq(j.n_layer, 4);
	ck_assert_int_eq(j.batch_size, 12);
	ck_assert_double_eq_tol(j.beta2, 0.95, 1e-12);
	ck_assert_int_eq(job_load(&j, "configs/jobs/small.conf", NULL, 0), 0);
	ck_assert_int_eq(j.n_embd, 384);
}
END_TEST

/*
 * Clipping inside AdamW (gscale) gives the bits of clipping the gradients
 * first and then stepping, in the parameters and both moments.
 */
START_TEST(test_adamw_clip_fused)
{
	struct gpt_config cfg = { 1, 1, 4, 2, GPT_VOCAB, 0, 0, 0, 0 };
	struct adamw o[2];
	struct gpt m[2];
	struct rng r;
	size_t n;

	for (int k = 0; k < 2; k++) {
		ck_assert_int_eq(gpt_init(&m[k], &cfg, &kern_ref_ops), 0);
		ck_assert_int_eq(adamw_init(&o[k], m[k].nparams), 0);
	}
	n = m[0].nparams;
	rng_seed(&r, 7);
	for (size_t i = 0; i < n; i++)
		m[0].params[i] = m[1].params[i] = rng_normal(&r);
	for (int t = 0; t < 4; t++) {
		float norm, s;

		for (size_t i = 0; i < n; i++)
			m[0].grads[i] = m[1].grads[i] = 3.0f * rng_normal(&r);
		norm = grad_clip(m[0].grads, n, 1.0f);
		adamw_step(&o[0], m[0].params, m[0].grads, &m[0], 1e-2f, 0.9f,
		    0.95f, 1e-8f, 0.1f, 1.0f);
		s = grad_clip_scale(grad_norm(m[1].grads, n), 1.0f);
		ck_assert_float_eq(grad_norm(m[1].grads, n), norm);
		ck_assert(s < 1.0f);	/* the clip really acts */
		adamw_step(&o[1], m[1].params, m[1].grads, &m[1], 1e-2f, 0.9f,
		    0.95f, 1e-8f, 0.1f, s);
		ck_assert_mem_eq(m[0].params, m[1].params, n * sizeof(float));
		ck_assert_mem_eq(o[0].m, o[1].m, n * sizeof(float));
		ck_assert_mem_eq(o[0].v, o[1].v, n * sizeof(float));
	}
	ck_assert_float_eq(grad_clip_scale(0.5f, 1.0f), 1.0f);
	ck_assert_float_eq(grad_clip_scale(5.0f, 0.0f), 1.0f);	/* off */
	for (int k = 0; k < 2; k++) {
		adamw_fini(&o[k]);
		gpt_fini(&m[k]);
	}
}
END_TEST

/* AdamW against a plain double-precision implementation. */
START_TEST(test_adamw_reference)
{
	struct gpt_config cfg = { 1, 1, 4, 2, GPT_VOCAB, 0, 0, 0, 0 };
	struct adamw o;
	struct gpt m;
	struct rng r;
	double *p, *mm, *vv;
	size_t n;

	ck_assert_int_eq(gpt_init(&m, &cfg, &kern_ref_ops), 0);
	n = m.nparams;
	ck_assert_int_eq(adamw_init(&o, n), 0);
	p = calloc(n, sizeof(double));
	mm = calloc(n, sizeof(double));
	vv = calloc(n, sizeof(double));
	rng_seed(&r, 4);
	for (size_t i = 0; i < n; i++)
		p[i] = m.params[i] = rng_normal(&r);
	for (int t = 1; t <= 5; t++) {
		double lr = 0.01 * t, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
		size_t off = 0;

		for (size_t i = 0; i < n; i++)
			m.grads[i] = rng_normal(&r);
		adamw_step(&o, m.params, m.grads, &m, (float)lr, (float)b1,
		    (float)b2, (float)eps, (float)wd, 1.0f);
		for (int ti = 0; ti < GPT_NPARAMS; ti++) {
			double d = gpt_param_decays(ti) ? wd : 0;

			for (size_t i = off; i < off + m.sizes[ti]; i++) {
				double g = m.grads[i];

				mm[i] = b1 * mm[i] + (1 - b1) * g;
				vv[i] = b2 * vv[i] + (1 - b2) * g * g;
				p[i] -= lr * ((mm[i] / (1 - pow(b1, t))) /
				    (sqrt(vv[i] / (1 - pow(b2, t))) + eps) +
				    d * p[i]);
			}
			off += m.sizes[ti];
		}
	}
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(fabs(p[i] - m.params[i]) < 1e-5 * (1 + fabs(p[i])),
		    "param %zu: %g vs %g", i, m.params[i], p[i]);
	free(p);
	free(mm);
	free(vv);
	adamw_fini(&o);
	gpt_fini(&m);
}
END_TEST

START_TEST(test_schedule_and_clip)
{
	struct job j;
	float g[4] = { 3, 4, 0, 0 };

	ck_assert_int_eq(job_load(&j, NULL, NULL, 0), 0);
	j.lr = 1.0;
	j.min_lr = 0.1;
	j.warmup_steps = 10;
	j.steps = 110;
	j.decay_steps = 0;
	ck_assert_float_eq_tol(lr_at(&j, 0), 0.1f, 1e-6f);
	ck_assert_float_eq_tol(lr_at(&j, 9), 1.0f, 1e-6f);
	ck_assert_float_eq_tol(lr_at(&j, 10), 1.0f, 1e-6f);
	ck_assert_float_eq_tol(lr_at(&j, 60), 0.55f, 1e-5f);
	ck_assert_float_eq_tol(lr_at(&j, 110), 0.1f, 1e-6f);
	ck_assert_float_eq_tol(lr_at(&j, 500), 0.1f, 1e-6f);
	for (int s = 11; s < 110; s++)
		ck_assert(lr_at(&j, s) <= lr_at(&j, s - 1));
	ck_assert_float_eq_tol(grad_clip(g, 4, 1.0f), 5.0f, 1e-6f);
	ck_assert_float_eq_tol(grad_norm(g, 4), 1.0f, 1e-5f);
	ck_assert_float_eq_tol(g[0] / g[1], 0.75f, 1e-6f);
	ck_assert_float_eq_tol(grad_clip(g, 4, 2.0f), 1.0f, 1e-5f);
	ck_assert_float_eq_tol(grad_norm(g, 4), 1.0f, 1e-5f);	/* unchanged */
}
END_TEST

START_TEST(test_rng)
{
	struct rng a, b;
	double sum = 0, sq = 0;
	int hist[10] = { 0 };

	rng_seed(&a, 42);
	rng_seed(&b, 42);
	for (int i = 0; i < 100; i++)
		ck_assert_uint_eq(rng_u64(&a), rng_u64(&b));
	for (int i = 0; i < 100000; i++) {
		float x = rng_normal(&a);

		sum += x;
		sq += (double)x * x;
		hist[rng_below(&a, 10)]++;
		ck_assert(rng_uniform(&a) < 1.0f);
	}
	ck_assert_double_eq_tol(sum / 1e5, 0, 0.02);
	ck_assert_double_eq_tol(sq / 1e5, 1, 0.03);
	for (int i = 0; i < 10; i++)
		ck_assert_int_gt(hist[i], 9000);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("data");
	TCase *tc = tcase_create("data");
	SRunner *sr;
	int nf;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_text_split_and_batches);
	tcase_add_test(tc, test_batch_parts);
	tcase_add_test(tc, test_token_file_round_trip);
	tcase_add_test(tc, test_corrupt_token_files);
	tcase_add_test(tc, test_short_and_missing);
	tcase_add_test(tc, test_job_errors);
	tcase_add_test(tc, test_adamw_reference);
	tcase_add_test(tc, test_adamw_clip_fused);
	tcase_add_test(tc, test_schedule_and_clip);
	tcase_add_test(tc, test_rng);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
