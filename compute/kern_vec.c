/*
 * kern_vec.c: the element-wise and row kernels of the fast path, written
 * with 8-lane vectors (vec8.h): GELU forward with the fc bias added in the
 * same pass, GELU backward with the fc bias gradient summed in the same
 * pass, and LayerNorm forward and backward (accumulating straight into
 * its gradients).  They replaced oneDNN's eltwise and layer-normalization
 * primitives, which each needed a separate pass for the bias (forward),
 * the bias gradient (backward) or a scratch-and-add (LayerNorm backward
 * has no accumulating form), measured in docs/compute.md.  The scalar
 * references are in kern_ref.c; tests/unit/check_kern.c compares them.
 *
 * Determinism: every sum over rows (bias and LayerNorm weight gradients)
 * runs in row order within a thread, and per-thread partial sums are
 * added in thread order, so a result depends on the thread count only.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "compute.h"
#include "log.h"
#include "vec8.h"

#define KV_PAR		32768	/* elements below which one thread runs */
#define KV_COLS		2048	/* columns per bias-gradient strip (8 kB) */

static inline v8sf
v8_set1(float x)
{
	return (v8sf){ x, x, x, x, x, x, x, x };
}

/*
 * 1 / d for d >= 1: the approximate reciprocal (12 bits) and one Newton
 * step (about 23 bits), cheaper than a division; without AVX a division.
 */
static inline v8sf
v8_recip(v8sf d)
{
#if defined(__AVX__)
	v8sf r = __builtin_ia32_rcpps256(d);

	return r * (2.0f - d * r);
#else
	return 1.0f / d;
#endif
}

/*
 * Phi(x), the standard normal CDF, on 8 lanes, and e = exp(-x^2 / 2) for
 * the derivative.  Phi(-|x|) = erfc(|x| / sqrt 2) / 2 by Abramowitz and
 * Stegun 7.1.26: erfc(z) ~ t (a1 + t (a2 + ... + t a5)) exp(-z^2), t = 1 /
 * (1 + p z), absolute error under 1.5e-7 in erf, so under 7.5e-8 in Phi;
 * Phi(|x|) = 1 - Phi(-|x|).  exp(-z^2) is exp(-x^2 / 2): one exp serves
 * both Phi and phi.
 */
static inline v8sf
v8_phi(v8sf x, v8sf *e)
{
	const v8sf one = v8_set1(1.0f);
	v8sf ax = (v8sf)((v8si)x & 0x7fffffff);
	v8sf den = one + v8_set1(0.3275911f * (float)M_SQRT1_2) * ax;
	v8sf t = v8_recip(den);
	v8sf p = t * 1.061405429f - 1.453152027f;

	p = p * t + 1.421413741f;
	p = p * t - 0.284496736f;
	p = p * t + 0.254829592f;
	p = p * t;
	*e = v8_exp(-0.5f * x * x);
	p = 0.5f * p * *e;			/* Phi(-|x|) */
	return v8_select(x < 0, p, one - p);
}

#define INV_SQRT_2PI	0.3989422804014327f

/* out[N,OC] = gelu(pre) after pre += bias (bias may be NULL), row by row */
void
vec_gelu_fwd(float *out, float *pre, const float *bias, int N, int OC)
{
	int OC8 = OC & ~7;

#pragma omp parallel for schedule(static) if ((long)N * OC > KV_PAR)
	for (int n = 0; n < N; n++) {
		float *x = pre + (size_t)n * OC, *y = out + (size_t)n * OC;
		float tx[8] = { 0 }, tb[8] = { 0 }, ty[8];
		v8sf e;
		int j;

		for (j = 0; j < OC8; j += 8) {
			v8sf v = v8_load(x + j);

			if (bias != NULL) {
				v += v8_load(bias + j);
				v8_store(x + j, v);
			}
			v8_store(y + j, v * v8_phi(v, &e));
		}
		if (j == OC)
			continue;
		/* the last OC % 8 columns through one padded vector */
		memcpy(tx, x + j, sizeof(float) * (size_t)(OC - j));
		if (bias != NULL)
			memcpy(tb, bias + j, sizeof(float) * (size_t)(OC - j));
		v8sf v = v8_load(tx) + v8_load(tb);

		v8_store(tx, v);
		v8_store(ty, v * v8_phi(v, &e));
		if (bias != NULL)
			memcpy(x + j, tx, sizeof(float) * (size_t)(OC - j));
		memcpy(y + j, ty, sizeof(float) * (size_t)(OC - j));
	}
}

/* gelu'(x) * d on 8 lanes: (Phi(x) + x phi(x)) d */
static inline v8sf
v8_gelu_grad(v8sf x, v8sf d)
{
	v8sf e, cdf = v8_phi(x, &e);

	return (cdf + x * e * INV_SQRT_2PI) * d;
}

/*
 * Columns [j0, j1) of every row (j1 - j0 <= KV_COLS): dinp (+)= gelu'(inp)
 * dout, and dbias (if not NULL) += the column sums of that term, in row
 * order.
 */
static void
gelu_bwd_strip(float *dinp, float *dbias, const float *inp,
    const float *dout, int N, int OC, int j0, int j1, int acc)
{
	float sum[KV_COLS] __attribute__((aligned(32)));
	int w = j1 - j0, w8 = w & ~7;

	memset(sum, 0, sizeof(sum));
	for (int n = 0; n < N; n++) {
		size_t off = (size_t)n * OC + j0;
		const float *x = inp + off, *d = dout + off;
		float *g = dinp + off;
		int j;

		for (j = 0; j < w8; j += 8) {
			v8sf v = v8_gelu_grad(v8_load(x + j), v8_load(d + j));

			v8_store(sum + j, v8_load(sum + j) + v);
			if (acc)
				v += v8_load(g + j);
			v8_store(g + j, v);
		}
		if (j == w)
			continue;
		float tx[8] = { 0 }, td[8] = { 0 }, tg[8];

		memcpy(tx, x + j, sizeof(float) * (size_t)(w - j));
		memcpy(td, d + j, sizeof(float) * (size_t)(w - j));
		v8_store(tg, v8_gelu_grad(v8_load(tx), v8_load(td)));
		for (int k = 0; k < w - j; k++) {
			sum[j + k] += tg[k];
			g[j + k] = acc ? g[j + k] + tg[k] : tg[k];
		}
	}
	if (dbias != NULL)
		for (int j = 0; j < w; j++)
			dbias[j0 + j] += sum[j];
}

/*
 * dinp[N,OC] (+)= gelu'(inp) * dout; dbias[OC] += its column sums.  The
 * threads split the columns (each sums whole columns, in row order), in
 * strips of at most KV_COLS columns so that the sums stay in L1 (one
 * strip, rows read whole, for the models here: 256 columns per strip
 * read each row in pieces and ran 1.5x slower).
 */
void
vec_gelu_bwd(float *dinp, float *dbias, const float *inp, const float *dout,
    int N, int OC, int acc)
{
#pragma omp parallel if ((long)N * OC > KV_PAR)
	{
		int nth = omp_get_num_threads(), th = omp_get_thread_num();
		/* column range of this thread, in multiples of 8 */
		int c8 = (OC + 7) / 8;
		int j0 = (int)((long)c8 * th / nth) * 8;
		int j1 = (int)((long)c8 * (th + 1) / nth) * 8;

		if (j1 > OC)
			j1 = OC;
		for (int j = j0; j < j1; j += KV_COLS)
			gelu_bwd_strip(dinp, dbias, inp, dout, N, OC, j,
			    j1 - j < KV_COLS ? j1 : j + KV_COLS, acc);
	}
}

/* ---------------------------------------------------------------- */
/* LayerNorm                                                         */

void
vec_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp,
    const float *w, const float *b, int N, int C)
{
#pragma omp parallel for schedule(static) if ((long)N * C > KV_PAR)
	for (int n = 0; n < N; n++) {
		const float *x = inp + (size_t)n * C;
		float *y = out + (size_t)n * C;
		float s = 0, v = 0, m, r;

#pragma omp simd reduction(+:s)
		for (int c = 0; c < C; c++)
			s += x[c];
		m = s / (float)C;
#pragma omp simd reduction(+:v)
		for (int c = 0; c < C; c++)
			v += (x[c] - m) * (x[c] - m);
		r = 1.0f / sqrtf(v / (float)C + LN_EPS);
#pragma omp simd
		for (int c = 0; c < C; c++)
			y[c] = (x[c] - m) * r * w[c] + b[c];
		mean[n] = m;
		rstd[n] = r;
	}
}

/*
 * Rows [n0, n1): dinp += the input gradient, and dw, db (C floats each,
 * this thread's partial sums) += the weight and bias gradients.  Without
 * FMA contraction: w dy - s1 must be 0 where s1 is that same product (a
 * row of one column), and a fused multiply-subtract keeps the product's
 * rounding error, which rstd (up to 1/sqrt(eps)) then magnifies.
 */
static void __attribute__((optimize("fp-contract=off")))
ln_bwd_rows(float *dinp, float *dw, float *db, const float *dout,
    const float *inp, const float *w, const float *mean, const float *rstd,
    int n0, int n1, int C)
{
	for (int n = n0; n < n1; n++) {
		const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
		float *dx = dinp + (size_t)n * C;
		float m = mean[n], r = rstd[n], s1 = 0, s2 = 0;

#pragma omp simd reduction(+:s1, s2)
		for (int c = 0; c < C; c++) {
			float dn = w[c] * dy[c];

			s1 += dn;
			s2 += dn * (x[c] - m) * r;
		}
		s1 /= (float)C;
		s2 /= (float)C;
#pragma omp simd
		for (int c = 0; c < C; c++) {
			float norm = (x[c] - m) * r;

			dx[c] += (w[c] * dy[c] - s1 - norm * s2) * r;
			dw[c] += norm * dy[c];
			db[c] += dy[c];
		}
	}
}

/*
 * dinp[N,C] +=, dw[C] +=, db[C] +=.  Threads split the rows; each sums
 * its dw and db in a buffer of its own, added in thread order after.
 */
void
vec_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout,
    const float *inp, const float *w, const float *mean, const float *rstd,
    int N, int C)
{
	int nth = (long)N * C > KV_PAR ? omp_get_max_threads() : 1;
	float *part = calloc((size_t)nth * 2 * C, sizeof(float));

	/* kernels return void (compute.h): out of memory here is fatal */
	if (part == NULL)
		fatal("layernorm_bwd: %zu floats of partial sums",
		    (size_t)nth * 2 * C);
#pragma omp parallel num_threads(nth) if (nth > 1)
	{
		int n = omp_get_num_threads(), th = omp_get_thread_num();
		float *pw = part + (size_t)th * 2 * C;

		ln_bwd_rows(dinp, pw, pw + C, dout, inp, w, mean, rstd,
		    (int)((long)N * th / n), (int)((long)N * (th + 1) / n), C);
	}
	for (int t = 0; t < nth; t++) {
		const float *pw = part + (size_t)t * 2 * C;

#pragma omp simd
		for (int c = 0; c < C; c++) {
			dw[c] += pw[c];
			db[c] += pw[C + c];
		}
	}
	free(part);
}
