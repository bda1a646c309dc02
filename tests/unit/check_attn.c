/*
 * check_attn.c: the memory-efficient attention (attn.c) against the naive
 * reference (kern_ref.c), the reference itself against finite
 * differences, and the memory bound of the flash kernels.
 *
 * ARCEUS_SMALL=1 shrinks the sizes (valgrind runs).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <check.h>
#include <omp.h>

#include "../../compute/compute.h"

static int small;	/* ARCEUS_SMALL=1 */

/* xorshift64*, uniform in [lo, hi) */
static uint64_t test_rng = 0x9e3779b97f4a7c15ULL;

static float
urand(float lo, float hi)
{
	test_rng ^= test_rng >> 12;
	test_rng ^= test_rng << 25;
	test_rng ^= test_rng >> 27;
	return lo + (hi - lo) * (float)((test_rng * 0x2545F4914F6CDD1DULL) >>
	    40) / (float)(1 << 24);
}

static float *
fill(size_t n, float lo, float hi)
{
	float *p = malloc(sizeof(float) * (n ? n : 1));

	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < n; i++)
		p[i] = urand(lo, hi);
	return p;
}

static float *
zeros(size_t n)
{
	float *p = calloc(n ? n : 1, sizeof(float));

	ck_assert_ptr_nonnull(p);
	return p;
}

/*
 * Relative error ||got - want|| / ||want|| (L2) must be <= tol.  On failure
 * prints the first elements that differ by more than tol relative to the
 * RMS of want (llm.c check_tensor).
 */
static void
check_rel(const char *what, const float *got, const float *want, size_t n,
    double tol)
{
	double num = 0, den = 0, rms;
	int shown = 0;

	for (size_t i = 0; i < n; i++) {
		double d = (double)got[i] - want[i];

		num += d * d;
		den += (double)want[i] * want[i];
	}
	rms = sqrt(den / (n ? n : 1));
	double rel = sqrt(num) / (sqrt(den) > 1e-30 ? sqrt(den) : 1e-30);

	if (rel <= tol && !isnan(rel))
		return;
	fprintf(stderr, "%s: relative error %.3g > %.3g (n=%zu)\n", what, rel,
	    tol, n);
	for (size_t i = 0; i < n && shown < 5; i++)
		if (!(fabs((double)got[i] - want[i]) <= tol * (fabs(want[i]) +
		    rms))) {
			fprintf(stderr, "  [%zu] got %.9g want %.9g\n", i,
			    got[i], want[i]);
			shown++;
		}
	ck_abort_msg("%s: relative error %.3g > %.3g", what, rel, tol);
}

struct shape {
	int B, T, C, NH;
};

/* T in {1, 7, 64, 100, 256}; head sizes 1, 8, 16, 20, 32, 64 */
static const struct shape shapes[] = {
	{ 1, 1, 16, 2 },
	{ 2, 7, 24, 3 },
	{ 1, 7, 3, 3 },
	{ 2, 64, 128, 4 },
	{ 1, 100, 60, 3 },
	{ 3, 33, 40, 5 },
	{ 1, 256, 128, 2 },
	{ 1, 256, 64, 4 },
};
#define NSHAPES	(int)(sizeof(shapes) / sizeof(shapes[0]))

static struct shape
shape_at(int i)
{
	struct shape s = shapes[i];

	if (small && s.T > 64)
		s.T = 70;
	return s;
}

START_TEST(test_fwd_vs_ref)
{
	struct shape s = shape_at(_i);
	size_t nqkv = (size_t)s.B * s.T * 3 * s.C;
	size_t nout = (size_t)s.B * s.T * s.C;
	size_t nlse = (size_t)s.B * s.NH * s.T;
	float *qkv = fill(nqkv, -2, 2);
	float *out0 = zeros(nout), *out1 = fill(nout, -9, 9);
	float *lse0 = zeros(nlse), *lse1 = fill(nlse, -9, 9);
	char what[96];

	kern_ref_ops.attn_fwd(out0, lse0, qkv, s.B, s.T, s.C, s.NH);
	attn_flash_fwd(out1, lse1, qkv, s.B, s.T, s.C, s.NH);
	snprintf(what, sizeof(what), "attn fwd out B=%d T=%d C=%d NH=%d", s.B,
	    s.T, s.C, s.NH);
	check_rel(what, out1, out0, nout, 2e-5);
	snprintf(what, sizeof(what), "attn fwd lse B=%d T=%d C=%d NH=%d", s.B,
	    s.T, s.C, s.NH);
	check_rel(what, lse1, lse0, nlse, 2e-6);
	free(qkv);
	free(out0);
	free(out1);
	free(lse0);
	free(lse1);
}
END_TEST

START_TEST(test_bwd_vs_ref)
{
	struct shape s = shape_at(_i);
	size_t nqkv = (size_t)s.B * s.T * 3 * s.C;
	size_t nout = (size_t)s.B * s.T * s.C;
	size_t nlse = (size_t)s.B * s.NH * s.T;
	float *qkv = fill(nqkv, -2, 2), *dout = fill(nout, -1, 1);
	float *out = zeros(nout), *lse = zeros(nlse);
	float *d0 = zeros(nqkv), *d1 = zeros(nqkv);
	float *pre = fill(nqkv, -1, 1), *d2 = malloc(sizeof(float) * nqkv);
	char what[96];

	ck_assert_ptr_nonnull(d2);
	kern_ref_ops.attn_fwd(out, lse, qkv, s.B, s.T, s.C, s.NH);
	kern_ref_ops.attn_bwd(d0, dout, qkv, out, lse, s.B, s.T, s.C, s.NH);
	attn_flash_bwd(d1, dout, qkv, out, lse, s.B, s.T, s.C, s.NH);
	snprintf(what, sizeof(what), "attn bwd dqkv B=%d T=%d C=%d NH=%d", s.B,
	    s.T, s.C, s.NH);
	check_rel(what, d1, d0, nqkv, 5e-5);

	/* accumulates: pre + grad */
	memcpy(d2, pre, sizeof(float) * nqkv);
	attn_flash_bwd(d2, dout, qkv, out, lse, s.B, s.T, s.C, s.NH);
	for (size_t i = 0; i < nqkv; i++)
		pre[i] += d1[i];
	snprintf(what, sizeof(what), "attn bwd accumulate B=%d T=%d", s.B,
	    s.T);
	check_rel(what, d2, pre, nqkv, 1e-6);
	free(qkv);
	free(dout);
	free(out);
	free(lse);
	free(d0);
	free(d1);
	free(d2);
	free(pre);
}
END_TEST

/* L = sum(out * G) of the naive attention, in double */
static double
ref_loss(const float *qkv, const float *G, float *out, float *lse, int B,
    int T, int C, int NH)
{
	double L = 0;

	kern_ref_ops.attn_fwd(out, lse, qkv, B, T, C, NH);
	for (size_t i = 0; i < (size_t)B * T * C; i++)
		L += (double)out[i] * G[i];
	return L;
}

/* The reference backward against central differences: proven, not assumed. */
START_TEST(test_ref_finite_diff)
{
	const int B = 2, T = 5, C = 6, NH = 2;
	size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C;
	float *qkv = fill(nqkv, -1.5f, 1.5f), *G = fill(nout, -1, 1);
	float *out = zeros(nout), *lse = zeros((size_t)B * NH * T);
	float *grad = zeros(nqkv), *fd = zeros(nqkv);
	const float eps = 1e-2f;

	ref_loss(qkv, G, out, lse, B, T, C, NH);
	kern_ref_ops.attn_bwd(grad, G, qkv, out, lse, B, T, C, NH);
	for (size_t i = 0; i < nqkv; i++) {
		float x = qkv[i];
		double lp, lm;

		qkv[i] = x + eps;
		lp = ref_loss(qkv, G, out, lse, B, T, C, NH);
		qkv[i] = x - eps;
		lm = ref_loss(qkv, G, out, lse, B, T, C, NH);
		qkv[i] = x;
		fd[i] = (float)((lp - lm) / (2.0 * eps));
	}
	check_rel("naive attn bwd vs finite differences", grad, fd, nqkv,
	    2e-3);
	/* the last step must not be a trivial zero gradient everywhere */
	double norm = 0;
	for (size_t i = 0; i < nqkv; i++)
		norm += fabs(fd[i]);
	ck_assert(norm > 1e-2);
	free(qkv);
	free(G);
	free(out);
	free(lse);
	free(grad);
	free(fd);
}
END_TEST

/* Same result whatever the thread count (each row has one owner). */
START_TEST(test_threads_deterministic)
{
	const int B = 2, T = 96, C = 64, NH = 4;
	size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C;
	float *qkv = fill(nqkv, -2, 2), *dout = fill(nout, -1, 1);
	float *o1 = zeros(nout), *o2 = zeros(nout);
	float *l1 = zeros((size_t)B * NH * T), *l2 = zeros((size_t)B * NH * T);
	float *d1 = zeros(nqkv), *d2 = zeros(nqkv);
	int saved = omp_get_max_threads();

	omp_set_num_threads(1);
	attn_flash_fwd(o1, l1, qkv, B, T, C, NH);
	attn_flash_bwd(d1, dout, qkv, o1, l1, B, T, C, NH);
	omp_set_num_threads(3);
	attn_flash_fwd(o2, l2, qkv, B, T, C, NH);
	attn_flash_bwd(d2, dout, qkv, o2, l2, B, T, C, NH);
	omp_set_num_threads(saved);
	ck_assert(memcmp(o1, o2, sizeof(float) * nout) == 0);
	ck_assert(memcmp(l1, l2, sizeof(float) * B * NH * T) == 0);
	ck_assert(memcmp(d1, d2, sizeof(float) * nqkv) == 0);
	free(qkv);
	free(dout);
	free(o1);
	free(o2);
	free(l1);
	free(l2);
	free(d1);
	free(d2);
}
END_TEST

/* kB from a "Key:   123 kB" line of /proc/self/status, or -1 */
static long
proc_status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t klen = strlen(key);

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/*
 * Flash attention at a long T holds no T x T matrix: the peak RSS grows by
 * far less than one T x T fp32 buffer (64 MiB at T = 4096) over forward
 * and backward.  The peak is reset first (clear_refs 5) where the kernel
 * allows; otherwise getrusage's peak is used, which in Check's fork mode
 * starts near the current RSS.
 */
START_TEST(test_memory_linear)
{
	const int B = 1, T = small ? 512 : 4096, C = 8, NH = 1;
	size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C;
	size_t tt = (size_t)T * T * sizeof(float) / 1024;	/* kB */
	float *qkv = fill(nqkv, -2, 2), *dout = fill(nout, -1, 1);
	float *out = zeros(nout), *lse = zeros((size_t)B * NH * T);
	float *dqkv = zeros(nqkv);
	struct rusage ru;
	long before, after, rss;
	FILE *f;

	/* warm the OpenMP pool so its stacks are in the baseline */
	attn_flash_fwd(out, lse, qkv, 1, 8, C, NH);
	memset(out, 0, sizeof(float) * nout);
	if ((f = fopen("/proc/self/clear_refs", "w")) != NULL) {
		fputs("5", f);
		fclose(f);
	}
	getrusage(RUSAGE_SELF, &ru);
	before = ru.ru_maxrss;
	rss = proc_status_kb("VmRSS");
	attn_flash_fwd(out, lse, qkv, B, T, C, NH);
	attn_flash_bwd(dqkv, dout, qkv, out, lse, B, T, C, NH);
	getrusage(RUSAGE_SELF, &ru);
	after = proc_status_kb("VmHWM");
	if (after < 0)
		after = ru.ru_maxrss;
	if (rss < 0)
		rss = before;
	fprintf(stderr, "attn T=%d: peak RSS +%ld kB (T x T would be %zu kB)\n",
	    T, after - rss, tt);
	/* every output finite, lse rows sane */
	for (size_t i = 0; i < nout; i++)
		ck_assert(isfinite(out[i]));
	for (size_t i = 0; i < nqkv; i++)
		ck_assert(isfinite(dqkv[i]));
	/* valgrind's RSS is its own: only the full-size run asserts */
	if (!small)
		ck_assert_msg(after - rss < (long)tt / 4,
		    "peak RSS grew %ld kB, a T x T buffer is %zu kB",
		    after - rss, tt);
	free(qkv);
	free(dout);
	free(out);
	free(lse);
	free(dqkv);
}
END_TEST

static Suite *
attn_suite(void)
{
	Suite *s = suite_create("attn");
	TCase *tc = tcase_create("attn");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_fwd_vs_ref, 0, NSHAPES);
	tcase_add_loop_test(tc, test_bwd_vs_ref, 0, NSHAPES);
	tcase_add_test(tc, test_ref_finite_diff);
	tcase_add_test(tc, test_threads_deterministic);
	tcase_add_test(tc, test_memory_linear);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	const char *e = getenv("ARCEUS_SMALL");
	SRunner *sr;
	int nfail;

	small = e != NULL && *e != '\0' && strcmp(e, "0") != 0;
	sr = srunner_create(attn_suite());
	srunner_run_all(sr, CK_NORMAL);
	nfail = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfail == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
