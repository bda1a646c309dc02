/*
 * check_kern.c: every kern_dnnl op against its scalar reference in
 * kern_ref.c, forward and backward, by relative error (llm.c
 * check_tensor), on several shapes including odd ones; backward ops are
 * run on pre-filled gradient buffers to test that they accumulate.
 *
 * ARCEUS_SMALL=1 shrinks the sizes (valgrind runs).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <omp.h>

#include "../../compute/compute.h"

static int small;	/* ARCEUS_SMALL=1 */

static uint64_t test_rng = 0x243f6a8885a308d3ULL;

/* xorshift64*, uniform in [lo, hi) */
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
dup(const float *src, size_t n)
{
	float *p = malloc(sizeof(float) * (n ? n : 1));

	ck_assert_ptr_nonnull(p);
	memcpy(p, src, sizeof(float) * n);
	return p;
}

/*
 * ||got - want|| / max(||want||, floor) (L2) must be <= tol.  On failure
 * prints the first elements that differ by more than tol relative to the
 * RMS of want.
 */
static void
check_rel_floor(const char *what, const float *got, const float *want,
    size_t n, double tol, double floor)
{
	double num = 0, den = 0, rms, rel;
	int shown = 0;

	for (size_t i = 0; i < n; i++) {
		double d = (double)got[i] - want[i];

		num += d * d;
		den += (double)want[i] * want[i];
	}
	den = sqrt(den) > floor ? den : floor * floor;
	rms = sqrt(den / (n ? n : 1));
	rel = sqrt(num) / (sqrt(den) > 1e-30 ? sqrt(den) : 1e-30);
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

static void
check_rel(const char *what, const float *got, const float *want, size_t n,
    double tol)
{
	check_rel_floor(what, got, want, n, tol, 0);
}

/*
 * An accumulating gradient: both kernels start from the same random
 * pre-fill; the result minus the pre-fill is compared in double, with
 * room for the float rounding of pre + grad (half an ulp of each sum, in
 * both results), so a large pre-fill neither hides nor fakes an error.
 */
static void
check_acc_floor(const char *what, const float *got, const float *want,
    const float *pre, size_t n, double tol, double floor)
{
	float *g = malloc(sizeof(float) * (n ? n : 1));
	float *w = malloc(sizeof(float) * (n ? n : 1));
	double npre = 0, nw = 0;

	ck_assert_ptr_nonnull(g);
	ck_assert_ptr_nonnull(w);
	for (size_t i = 0; i < n; i++) {
		g[i] = (float)((double)got[i] - pre[i]);
		w[i] = (float)((double)want[i] - pre[i]);
		npre += (double)pre[i] * pre[i];
		nw += (double)w[i] * w[i];
	}
	nw = sqrt(nw) > floor ? sqrt(nw) : floor;
	nw = nw > 1e-30 ? nw : 1e-30;
	check_rel_floor(what, g, w, n, tol + 1.2e-7 * (sqrt(npre) + nw) / nw,
	    floor);
	free(g);
	free(w);
}

static void
check_acc(const char *what, const float *got, const float *want,
    const float *pre, size_t n, double tol)
{
	check_acc_floor(what, got, want, pre, n, tol, 0);
}

static double
norm2(const float *x, size_t n)
{
	double s = 0;

	for (size_t i = 0; i < n; i++)
		s += (double)x[i] * x[i];
	return sqrt(s);
}

struct mm_shape {
	int N, C, OC;
};

static const struct mm_shape mm_shapes[] = {
	{ 1, 1, 1 },
	{ 7, 13, 5 },
	{ 33, 17, 49 },
	{ 64, 128, 384 },
	{ 100, 129, 257 },
	{ 256, 128, 512 },
	/* gemm_tn's blocks: 2 of tokens (K 300), 2 of C columns (N 520), 2
	 * of C rows (M 100), all ragged */
	{ 300, 520, 100 },
};
#define NMM	(int)(sizeof(mm_shapes) / sizeof(mm_shapes[0]))

static struct mm_shape
mm_at(int i)
{
	struct mm_shape s = mm_shapes[i];

	if (small && s.N > 64)
		s.N = 40;
	return s;
}

START_TEST(test_matmul)
{
	struct mm_shape s = mm_at(_i);
	size_t ni = (size_t)s.N * s.C, nw = (size_t)s.OC * s.C;
	size_t no = (size_t)s.N * s.OC;
	float *inp = fill(ni, -1, 1), *w = fill(nw, -1, 1);
	float *bias = fill(s.OC, -1, 1), *dout = fill(no, -1, 1);
	float *o0 = fill(no, -5, 5), *o1 = fill(no, -5, 5);
	float *pdi = fill(ni, -1, 1), *pdw = fill(nw, -1, 1);
	float *pdb = fill(s.OC, -1, 1);
	float *di0 = dup(pdi, ni), *di1 = dup(pdi, ni);
	float *dw0 = dup(pdw, nw), *dw1 = dup(pdw, nw);
	float *db0 = dup(pdb, s.OC), *db1 = dup(pdb, s.OC);
	char what[96];

	/* with bias, overwriting (NaN on one side) */
	for (size_t i = 0; i < no; i++)
		o1[i] = NAN;
	kern_ref_ops.matmul_fwd(o0, inp, w, bias, s.N, s.C, s.OC, 0);
	kern_dnnl_ops.matmul_fwd(o1, inp, w, bias, s.N, s.C, s.OC, 0);
	snprintf(what, sizeof(what), "matmul fwd N=%d C=%d OC=%d", s.N, s.C,
	    s.OC);
	check_rel(what, o1, o0, no, 1e-5);
	/* without */
	kern_ref_ops.matmul_fwd(o0, inp, w, NULL, s.N, s.C, s.OC, 0);
	kern_dnnl_ops.matmul_fwd(o1, inp, w, NULL, s.N, s.C, s.OC, 0);
	check_rel("matmul fwd, no bias", o1, o0, no, 1e-5);
	/* accumulating onto a pre-fill, with and without bias */
	for (int b = 0; b < 2; b++) {
		float *pre = fill(no, -1, 1), *a0 = dup(pre, no);
		float *a1 = dup(pre, no);

		kern_ref_ops.matmul_fwd(a0, inp, w, b ? bias : NULL, s.N, s.C,
		    s.OC, 1);
		kern_dnnl_ops.matmul_fwd(a1, inp, w, b ? bias : NULL, s.N,
		    s.C, s.OC, 1);
		snprintf(what, sizeof(what), "matmul fwd acc%s N=%d C=%d "
		    "OC=%d", b ? " + bias" : "", s.N, s.C, s.OC);
		check_acc(what, a1, a0, pre, no, 1e-5);
		free(pre);
		free(a0);
		free(a1);
	}

	kern_ref_ops.matmul_bwd(di0, dw0, db0, dout, inp, w, s.N, s.C, s.OC,
	    1);
	kern_dnnl_ops.matmul_bwd(di1, dw1, db1, dout, inp, w, s.N, s.C, s.OC,
	    1);
	snprintf(what, sizeof(what), "matmul bwd dinp N=%d C=%d OC=%d", s.N,
	    s.C, s.OC);
	check_acc(what, di1, di0, pdi, ni, 1e-5);
	snprintf(what, sizeof(what), "matmul bwd dw N=%d C=%d OC=%d", s.N, s.C,
	    s.OC);
	check_acc(what, dw1, dw0, pdw, nw, 1e-5);
	snprintf(what, sizeof(what), "matmul bwd dbias N=%d C=%d OC=%d", s.N,
	    s.C, s.OC);
	check_acc(what, db1, db0, pdb, s.OC, 1e-5);

	/* dinp and dbias may be NULL */
	memcpy(dw0, pdw, sizeof(float) * nw);
	memcpy(dw1, pdw, sizeof(float) * nw);
	kern_ref_ops.matmul_bwd(NULL, dw0, NULL, dout, inp, w, s.N, s.C, s.OC,
	    1);
	kern_dnnl_ops.matmul_bwd(NULL, dw1, NULL, dout, inp, w, s.N, s.C,
	    s.OC, 1);
	check_acc("matmul bwd dw, NULL dinp/dbias", dw1, dw0, pdw, nw, 1e-5);

	/*
	 * acc 0: dinp is overwritten, whatever it held (two different
	 * fills, one of them NaN); dw and dbias still accumulate.
	 */
	for (size_t i = 0; i < ni; i++) {
		di0[i] = 1e30f;
		di1[i] = NAN;
	}
	memcpy(dw0, pdw, sizeof(float) * nw);
	memcpy(dw1, pdw, sizeof(float) * nw);
	memcpy(db0, pdb, sizeof(float) * s.OC);
	memcpy(db1, pdb, sizeof(float) * s.OC);
	kern_ref_ops.matmul_bwd(di0, dw0, db0, dout, inp, w, s.N, s.C, s.OC,
	    0);
	kern_dnnl_ops.matmul_bwd(di1, dw1, db1, dout, inp, w, s.N, s.C, s.OC,
	    0);
	snprintf(what, sizeof(what), "matmul bwd dinp overwritten N=%d C=%d "
	    "OC=%d", s.N, s.C, s.OC);
	check_rel(what, di1, di0, ni, 1e-5);
	check_acc("matmul bwd dw, acc 0", dw1, dw0, pdw, nw, 1e-5);
	check_acc("matmul bwd dbias, acc 0", db1, db0, pdb, s.OC, 1e-5);

	free(inp); free(w); free(bias); free(dout); free(o0); free(o1);
	free(pdi); free(pdw); free(pdb); free(di0); free(di1); free(dw0);
	free(dw1); free(db0); free(db1);
}
END_TEST

struct nc_shape {
	int N, C;
};

static const struct nc_shape nc_shapes[] = {
	{ 1, 1 },
	{ 1, 3 },
	{ 5, 7 },
	{ 17, 33 },
	{ 64, 128 },
	{ 768, 384 },
	{ 3, 256 },
};
#define NNC	(int)(sizeof(nc_shapes) / sizeof(nc_shapes[0]))

static struct nc_shape
nc_at(int i)
{
	struct nc_shape s = nc_shapes[i];

	if (small && s.N > 64)
		s.N = 40;
	return s;
}

START_TEST(test_layernorm)
{
	struct nc_shape s = nc_at(_i);
	size_t n = (size_t)s.N * s.C;
	/* an offset and a spread per row, as residual streams have */
	float *inp = fill(n, -1, 1), *w = fill(s.C, 0.5f, 1.5f);
	float *b = fill(s.C, -0.5f, 0.5f), *dout = fill(n, -1, 1);
	float *o0 = fill(n, -5, 5), *o1 = fill(n, -5, 5);
	float *m0 = fill(s.N, -5, 5), *m1 = fill(s.N, -5, 5);
	float *r0 = fill(s.N, -5, 5), *r1 = fill(s.N, -5, 5);
	float *pdi = fill(n, -1, 1), *pdw = fill(s.C, -1, 1);
	float *pdb = fill(s.C, -1, 1);
	float *di0 = dup(pdi, n), *di1 = dup(pdi, n);
	float *dw0 = dup(pdw, s.C), *dw1 = dup(pdw, s.C);
	float *db0 = dup(pdb, s.C), *db1 = dup(pdb, s.C);
	char what[96];

	for (int r = 0; r < s.N; r++) {
		float off = urand(-3, 3), mul = urand(0.1f, 4);

		for (int c = 0; c < s.C; c++)
			inp[(size_t)r * s.C + c] = inp[(size_t)r * s.C + c] *
			    mul + off;
	}
	kern_ref_ops.layernorm_fwd(o0, m0, r0, inp, w, b, s.N, s.C);
	kern_dnnl_ops.layernorm_fwd(o1, m1, r1, inp, w, b, s.N, s.C);
	snprintf(what, sizeof(what), "layernorm fwd out N=%d C=%d", s.N, s.C);
	check_rel(what, o1, o0, n, 1e-5);
	check_rel("layernorm fwd mean", m1, m0, s.N, 1e-5);
	check_rel("layernorm fwd rstd", r1, r0, s.N, 1e-5);

	/* both backward passes from the reference's statistics */
	kern_ref_ops.layernorm_bwd(di0, dw0, db0, dout, inp, w, m0, r0, s.N,
	    s.C);
	kern_dnnl_ops.layernorm_bwd(di1, dw1, db1, dout, inp, w, m0, r0, s.N,
	    s.C);
	snprintf(what, sizeof(what), "layernorm bwd dinp N=%d C=%d", s.N, s.C);
	check_acc(what, di1, di0, pdi, n, 2e-5);
	snprintf(what, sizeof(what), "layernorm bwd dw N=%d C=%d", s.N, s.C);
	check_acc(what, dw1, dw0, pdw, s.C, 1e-5);
	snprintf(what, sizeof(what), "layernorm bwd db N=%d C=%d", s.N, s.C);
	check_acc(what, db1, db0, pdb, s.C, 1e-5);

	free(inp); free(w); free(b); free(dout); free(o0); free(o1);
	free(m0); free(m1); free(r0); free(r1); free(pdi); free(pdw);
	free(pdb); free(di0); free(di1); free(dw0); free(dw1); free(db0);
	free(db1);
}
END_TEST

/* (N, OC): odd widths exercise the vector kernels' padded tails */
static const struct { int N, OC; } gelu_shapes[] = {
	{ 1, 1 }, { 1, 7 }, { 10, 10 }, { 3, 4099 }, { 768, 512 },
	{ 33, 260 },
};
#define NGELU	(int)(sizeof(gelu_shapes) / sizeof(gelu_shapes[0]))

START_TEST(test_gelu)
{
	int N = gelu_shapes[_i].N, OC = gelu_shapes[_i].OC;
	size_t n;
	float *inp, *bias, *dout, *o0, *o1, *x0, *x1, *pre, *d0, *d1;
	float *pdb, *db0, *db1;
	char what[64];

	if (small && (long)N * OC > 5000)
		N = 5000 / OC > 0 ? 5000 / OC : 1;
	n = (size_t)N * OC;
	inp = fill(n, -6, 6);
	bias = fill((size_t)OC, -1, 1);
	dout = fill(n, -1, 1);
	o0 = fill(n, -5, 5);
	o1 = fill(n, -5, 5);
	pre = fill(n, -1, 1);
	pdb = fill((size_t)OC, -1, 1);
	d0 = dup(pre, n);
	d1 = dup(pre, n);
	db0 = dup(pdb, (size_t)OC);
	db1 = dup(pdb, (size_t)OC);

	/* with a bias: both add it into their input, then GELU */
	x0 = dup(inp, n);
	x1 = dup(inp, n);
	kern_ref_ops.gelu_fwd(o0, x0, bias, N, OC);
	kern_dnnl_ops.gelu_fwd(o1, x1, bias, N, OC);
	snprintf(what, sizeof(what), "gelu fwd + bias N=%d OC=%d", N, OC);
	check_rel(what, o1, o0, n, 1e-5);
	snprintf(what, sizeof(what), "gelu fwd biased input N=%d OC=%d", N, OC);
	check_rel(what, x1, x0, n, 1e-6);
	for (size_t i = 0; i < n; i++)	/* the bias really was added */
		ck_assert_float_eq(x0[i], inp[i] + bias[i % (size_t)OC]);
	/* without one the input stays as it was */
	kern_ref_ops.gelu_fwd(o0, x0, NULL, N, OC);
	kern_dnnl_ops.gelu_fwd(o1, x1, NULL, N, OC);
	snprintf(what, sizeof(what), "gelu fwd N=%d OC=%d", N, OC);
	check_rel(what, o1, o0, n, 1e-5);
	for (size_t i = 0; i < n; i++)
		ck_assert_float_eq(x1[i], x0[i]);

	kern_ref_ops.gelu_bwd(d0, db0, inp, dout, N, OC, 1);
	kern_dnnl_ops.gelu_bwd(d1, db1, inp, dout, N, OC, 1);
	/*
	 * gelu' has a root near x = -0.75, where a gradient's relative
	 * error means nothing: errors are measured against at least a
	 * tenth of |dout| (|gelu'| <= 1.13).
	 */
	snprintf(what, sizeof(what), "gelu bwd N=%d OC=%d", N, OC);
	check_acc_floor(what, d1, d0, pre, n, 1e-5, 0.1 * norm2(dout, n));
	snprintf(what, sizeof(what), "gelu bwd dbias N=%d OC=%d", N, OC);
	check_acc_floor(what, db1, db0, pdb, (size_t)OC, 1e-5,
	    0.1 * norm2(dout, n) / sqrt((double)N));
	/* acc 0 overwrites whatever was there (NaN on one side); no dbias */
	for (size_t i = 0; i < n; i++) {
		d0[i] = 1e30f;
		d1[i] = NAN;
	}
	kern_ref_ops.gelu_bwd(d0, NULL, inp, dout, N, OC, 0);
	kern_dnnl_ops.gelu_bwd(d1, NULL, inp, dout, N, OC, 0);
	snprintf(what, sizeof(what), "gelu bwd overwritten N=%d OC=%d", N, OC);
	check_rel_floor(what, d1, d0, n, 1e-5, 0.1 * norm2(dout, n));
	free(inp); free(bias); free(dout); free(o0); free(o1); free(x0);
	free(x1); free(pre); free(pdb); free(d0); free(d1); free(db0);
	free(db1);
}
END_TEST

struct nv_shape {
	int N, V;
};

static const struct nv_shape sm_shapes[] = {
	{ 1, 1 }, { 3, 7 }, { 33, 256 }, { 768, 256 }, { 5, 1000 },
};
#define NSM	(int)(sizeof(sm_shapes) / sizeof(sm_shapes[0]))

START_TEST(test_softmax)
{
	struct nv_shape s = sm_shapes[_i];
	size_t n;
	float *lg, *p0, *p1;
	char what[64];

	if (small && s.N > 64)
		s.N = 40;
	n = (size_t)s.N * s.V;
	lg = fill(n, -10, 10);
	p0 = fill(n, -5, 5);
	p1 = fill(n, -5, 5);
	lg[0] = 80;	/* a large logit: exp would overflow unshifted */
	kern_ref_ops.softmax_fwd(p0, lg, s.N, s.V);
	kern_dnnl_ops.softmax_fwd(p1, lg, s.N, s.V);
	snprintf(what, sizeof(what), "softmax fwd N=%d V=%d", s.N, s.V);
	check_rel(what, p1, p0, n, 1e-5);
	free(lg);
	free(p0);
	free(p1);
}
END_TEST

/* The table's attention is the flash one; against the naive reference. */
START_TEST(test_attn_ops)
{
	const int B = 2, T = small ? 20 : 48, C = 48, NH = 3;
	size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C;
	size_t nlse = (size_t)B * NH * T;
	float *qkv = fill(nqkv, -2, 2), *dout = fill(nout, -1, 1);
	float *o0 = fill(nout, -1, 1), *o1 = fill(nout, -1, 1);
	float *l0 = fill(nlse, -1, 1), *l1 = fill(nlse, -1, 1);
	float *pre = fill(nqkv, -1, 1);
	float *d0 = dup(pre, nqkv), *d1 = dup(pre, nqkv);

	kern_ref_ops.attn_fwd(o0, l0, qkv, B, T, C, NH);
	kern_dnnl_ops.attn_fwd(o1, l1, qkv, B, T, C, NH);
	check_rel("dnnl attn fwd out", o1, o0, nout, 2e-5);
	check_rel("dnnl attn fwd lse", l1, l0, nlse, 2e-6);
	kern_ref_ops.attn_bwd(d0, dout, qkv, o0, l0, B, T, C, NH);
	kern_dnnl_ops.attn_bwd(d1, dout, qkv, o0, l0, B, T, C, NH);
	check_acc("dnnl attn bwd", d1, d0, pre, nqkv, 5e-5);
	free(qkv); free(dout); free(o0); free(o1); free(l0); free(l1);
	free(pre); free(d0); free(d1);
}
END_TEST

START_TEST(test_lookup)
{
	ck_assert_ptr_eq(kern_lookup("ref"), &kern_ref_ops);
	ck_assert_ptr_eq(kern_lookup("dnnl"), &kern_dnnl_ops);
	ck_assert_ptr_null(kern_lookup("cuda"));
	ck_assert_ptr_null(kern_lookup(NULL));
	ck_assert_str_eq(kern_lookup("dnnl")->name, "dnnl");
}
END_TEST

/*
 * The weight and bias gradients (gemm_tn.c) sum every element in token
 * order whatever the thread count: 1 and 2 threads give the same bits.
 */
START_TEST(test_matmul_bwd_threads)
{
	const int N = 300, C = 130, OC = 200;
	float *inp = fill((size_t)N * C, -1, 1), *w = fill((size_t)OC * C, -1, 1);
	float *dout = fill((size_t)N * OC, -1, 1);
	float *dw[2], *db[2];
	int saved = omp_get_max_threads();

	for (int t = 0; t < 2; t++) {
		dw[t] = fill((size_t)OC * C, -1, 1);
		db[t] = fill((size_t)OC, -1, 1);
	}
	memcpy(dw[1], dw[0], sizeof(float) * (size_t)OC * C);
	memcpy(db[1], db[0], sizeof(float) * (size_t)OC);
	for (int t = 0; t < 2; t++) {
		omp_set_num_threads(t + 1);
		kern_dnnl_ops.matmul_bwd(NULL, dw[t], db[t], dout, inp, w, N,
		    C, OC, 0);
	}
	omp_set_num_threads(saved);
	ck_assert_mem_eq(dw[0], dw[1], sizeof(float) * (size_t)OC * C);
	ck_assert_mem_eq(db[0], db[1], sizeof(float) * (size_t)OC);
	free(inp); free(w); free(dout);
	for (int t = 0; t < 2; t++) {
		free(dw[t]);
		free(db[t]);
	}
}
END_TEST

/*
 * More shapes than the primitive cache holds (softmax is the one oneDNN
 * primitive left), twice, then fini and again: eviction and re-creation
 * give the same results.
 */
START_TEST(test_cache_eviction)
{
	const int V = 24;
	/* 40 shapes: more than the cache's 32 entries */
	float *x = fill((size_t)40 * V, -4, 4), *o0 = fill((size_t)40 * V, 0, 1);
	float *o1 = fill((size_t)40 * V, 0, 1);

	for (int pass = 0; pass < 3; pass++) {
		for (int N = 1; N <= 40; N++) {
			kern_ref_ops.softmax_fwd(o0, x, N, V);
			kern_dnnl_ops.softmax_fwd(o1, x, N, V);
			check_rel("softmax fwd, cache churn", o1, o0,
			    (size_t)N * V, 1e-5);
		}
		if (pass == 1)
			kern_dnnl_fini();
	}
	free(x); free(o0); free(o1);
}
END_TEST

static Suite *
kern_suite(void)
{
	Suite *s = suite_create("kern");
	TCase *tc = tcase_create("kern");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_matmul, 0, NMM);
	tcase_add_loop_test(tc, test_layernorm, 0, NNC);
	tcase_add_loop_test(tc, test_gelu, 0, NGELU);
	tcase_add_loop_test(tc, test_softmax, 0, NSM);
	tcase_add_test(tc, test_attn_ops);
	tcase_add_test(tc, test_matmul_bwd_threads);
	tcase_add_test(tc, test_lookup);
	tcase_add_test(tc, test_cache_eviction);
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
	sr = srunner_create(kern_suite());
	srunner_run_all(sr, CK_NORMAL);
	nfail = srunner_ntests_failed(sr);
	srunner_free(sr);
	kern_dnnl_fini();
	return nfail == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
