/*
 * attn.c: memory-efficient causal self-attention (FlashAttention's scheme
 * on a CPU).  The scalar reference is ref_attn_fwd/ref_attn_bwd in
 * kern_ref.c; tests/unit/check_attn.c compares the two.
 *
 * Forward, per (b, h, block of ATTN_BQ queries): walk the key blocks of
 * ATTN_BK keys up to the diagonal (tiles above it are skipped), keeping
 * for each query a running max m, a running sum l of exp(s - m) and an
 * unnormalised output row; each new block rescales them by
 * exp(m_old - m_new) (online softmax).  Only out and lse = m + log(l)
 * are written.
 *
 * Backward, per (b, h), per query block: D_i = dout_i . out_i; then for
 * each key block up to the diagonal the scores are recomputed from q, k
 * and lse (P = exp(S - lse)), and
 *	dV_j += P_ij dO_i	dP_ij = dO_i . V_j
 *	dS_ij = P_ij (dP_ij - D_i)
 *	dQ_i += scale dS_ij K_j	dK_j += scale dS_ij Q_i
 * dK and dV are added straight into dqkv, dQ summed in a tile and added
 * once: one thread owns a (b, h), so no two threads write one element.
 *
 * Layout: scores are computed transposed, S^T = K Q^T (keys by queries),
 * from a transposed copy of the query tile and K, V read in place; the
 * softmax then runs along queries, 8 per vector, with no horizontal
 * reductions.  Every product is one register-blocked small GEMM
 * (attn_gemm).
 *
 * Memory: per thread a few tiles (O(ATTN_BQ * hs)), whatever T is: never
 * O(T^2), nor even O(T).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "compute.h"
#include "log.h"
#include "vec8.h"

#define ATTN_BQ		32	/* queries per tile, a multiple of 8 */
#define ATTN_BK		32	/* keys per tile */
#define ATTN_ALIGN	64	/* tile buffer alignment, bytes */

/*
 * Equal tiles, so a key tile never starts past its query tile's first
 * query: row 0 of every computed tile is visible to all its queries, and
 * the running max is finite from the first tile on.
 */
_Static_assert(ATTN_BQ == ATTN_BK && ATTN_BQ % 8 == 0, "attn tile sizes");

static void *
attn_alloc(size_t nfloats)
{
	size_t bytes = (nfloats * sizeof(float) + ATTN_ALIGN - 1) &
	    ~(size_t)(ATTN_ALIGN - 1);
	void *p = aligned_alloc(ATTN_ALIGN, bytes ? bytes : ATTN_ALIGN);

	/* Kernels return void (compute.h): running out here is fatal. */
	if (p == NULL)
		fatal("attn: %zu bytes of tile workspace", bytes);
	return p;
}

/*
 * Pins a vector in a register.  Without it GCC folds a B vector's load
 * into each of its four FMAs as a memory operand (3 loads per FMA where
 * 1.5 will do); measured 30% faster attention with it on AVX2.
 */
#define ATTN_PIN(v)	V8_PIN(v)

/*
 * The one product of every tile step, a small GEMM:
 *	C[M x N] = (acc ? C : 0) + alpha * A[M x K] . B[K x N]
 * A(m, k) = A[m * ars + k * acs] (so A may be read transposed), B and C
 * row-major with leading dimensions ldb, ldc.  Register blocked: 4 rows
 * by 16 columns (8 vector accumulators, GCC vector extensions, 256-bit on
 * AVX2 and AVX-512 alike), each loaded B vector feeding 4 FMAs; the
 * columns past the last multiple of 8 are done in scalar code.
 */
static void
attn_gemm(int M, int N, int K, float alpha, const float *restrict A,
    size_t ars, size_t acs, const float *restrict B, size_t ldb,
    float *restrict C, size_t ldc, int acc)
{
	int N16 = N & ~15, N8 = N & ~7;
	int i = 0, M6 = M / 6 * 6;

	/*
	 * 6 x 16 blocks (12 accumulators, 2 B vectors, 1 broadcast) for
	 * the rows up to M6, 4 x 16 blocks after: M6 leaves a multiple of 4
	 * where it can (32 = 4 x 6 + 2 x 4), since a single leftover row
	 * runs on one latency-bound accumulator.
	 */
	if ((M - M6) % 4 == 2 && M6 >= 6)
		M6 -= 6;
	for (; i < M6; i += 6) {
		const float *a0 = A + (size_t)i * ars;
		float *c0 = C + (size_t)i * ldc;
		int j = 0;

		for (; j < N16; j += 16) {
			v8sf s[6][2];

			for (int r = 0; r < 6; r++)
				s[r][0] = s[r][1] = (v8sf){ 0 };
			for (int k = 0; k < K; k++) {
				const float *b = B + (size_t)k * ldb + j;
				const float *a = a0 + k * acs;
				v8sf b0 = v8_load(b), b1 = v8_load(b + 8);

				ATTN_PIN(b0);
				ATTN_PIN(b1);
#pragma GCC unroll 6
				for (int r = 0; r < 6; r++) {
					float x = a[(size_t)r * ars];

					s[r][0] += x * b0;
					s[r][1] += x * b1;
				}
			}
#pragma GCC unroll 6
			for (int r = 0; r < 6; r++) {
				float *c = c0 + (size_t)r * ldc + j;

				if (acc) {
					s[r][0] = v8_load(c) + alpha * s[r][0];
					s[r][1] = v8_load(c + 8) +
					    alpha * s[r][1];
				} else {
					s[r][0] *= alpha;
					s[r][1] *= alpha;
				}
				v8_store(c, s[r][0]);
				v8_store(c + 8, s[r][1]);
			}
		}
		for (; j < N8; j += 8) {
			v8sf s[6];

			for (int r = 0; r < 6; r++)
				s[r] = (v8sf){ 0 };
			for (int k = 0; k < K; k++) {
				const float *a = a0 + k * acs;
				v8sf b0 = v8_load(B + (size_t)k * ldb + j);

				ATTN_PIN(b0);
#pragma GCC unroll 6
				for (int r = 0; r < 6; r++)
					s[r] += a[(size_t)r * ars] * b0;
			}
#pragma GCC unroll 6
			for (int r = 0; r < 6; r++) {
				float *c = c0 + (size_t)r * ldc + j;

				s[r] = acc ? v8_load(c) + alpha * s[r] :
				    alpha * s[r];
				v8_store(c, s[r]);
			}
		}
	}
	for (; i + 4 <= M; i += 4) {
		const float *a0 = A + (size_t)i * ars, *a1 = a0 + ars;
		const float *a2 = a1 + ars, *a3 = a2 + ars;
		float *c0 = C + (size_t)i * ldc, *c1 = c0 + ldc;
		float *c2 = c1 + ldc, *c3 = c2 + ldc;
		int j = 0;

		for (; j < N16; j += 16) {
			v8sf s00 = { 0 }, s01 = { 0 }, s10 = { 0 }, s11 = { 0 };
			v8sf s20 = { 0 }, s21 = { 0 }, s30 = { 0 }, s31 = { 0 };

			for (int k = 0; k < K; k++) {
				const float *b = B + (size_t)k * ldb + j;
				v8sf b0 = v8_load(b), b1 = v8_load(b + 8);
				float x0, x1, x2, x3;

				ATTN_PIN(b0);
				ATTN_PIN(b1);
				x0 = a0[k * acs];
				x1 = a1[k * acs];
				x2 = a2[k * acs];
				x3 = a3[k * acs];

				s00 += x0 * b0;
				s01 += x0 * b1;
				s10 += x1 * b0;
				s11 += x1 * b1;
				s20 += x2 * b0;
				s21 += x2 * b1;
				s30 += x3 * b0;
				s31 += x3 * b1;
			}
			if (acc) {
				s00 = v8_load(c0 + j) + alpha * s00;
				s01 = v8_load(c0 + j + 8) + alpha * s01;
				s10 = v8_load(c1 + j) + alpha * s10;
				s11 = v8_load(c1 + j + 8) + alpha * s11;
				s20 = v8_load(c2 + j) + alpha * s20;
				s21 = v8_load(c2 + j + 8) + alpha * s21;
				s30 = v8_load(c3 + j) + alpha * s30;
				s31 = v8_load(c3 + j + 8) + alpha * s31;
			} else if (alpha != 1.0f) {
				s00 *= alpha; s01 *= alpha; s10 *= alpha;
				s11 *= alpha; s20 *= alpha; s21 *= alpha;
				s30 *= alpha; s31 *= alpha;
			}
			v8_store(c0 + j, s00);
			v8_store(c0 + j + 8, s01);
			v8_store(c1 + j, s10);
			v8_store(c1 + j + 8, s11);
			v8_store(c2 + j, s20);
			v8_store(c2 + j + 8, s21);
			v8_store(c3 + j, s30);
			v8_store(c3 + j + 8, s31);
		}
		for (; j < N8; j += 8) {
			v8sf s0 = { 0 }, s1 = { 0 }, s2 = { 0 }, s3 = { 0 };

			for (int k = 0; k < K; k++) {
				v8sf b0 = v8_load(B + (size_t)k * ldb + j);

				ATTN_PIN(b0);
				s0 += a0[k * acs] * b0;
				s1 += a1[k * acs] * b0;
				s2 += a2[k * acs] * b0;
				s3 += a3[k * acs] * b0;
			}
			if (acc) {
				s0 = v8_load(c0 + j) + alpha * s0;
				s1 = v8_load(c1 + j) + alpha * s1;
				s2 = v8_load(c2 + j) + alpha * s2;
				s3 = v8_load(c3 + j) + alpha * s3;
			} else {
				s0 *= alpha; s1 *= alpha; s2 *= alpha;
				s3 *= alpha;
			}
			v8_store(c0 + j, s0);
			v8_store(c1 + j, s1);
			v8_store(c2 + j, s2);
			v8_store(c3 + j, s3);
		}
	}
	/* rows past the last multiple of 4 */
	for (; i < M; i++) {
		const float *a0 = A + (size_t)i * ars;
		float *c0 = C + (size_t)i * ldc;
		int j = 0;

		for (; j < N8; j += 8) {
			v8sf s0 = { 0 };

			for (int k = 0; k < K; k++)
				s0 += a0[k * acs] * v8_load(B + (size_t)k *
				    ldb + j);
			if (acc)
				s0 = v8_load(c0 + j) + alpha * s0;
			else
				s0 *= alpha;
			v8_store(c0 + j, s0);
		}
	}
	/* columns past the last multiple of 8, all rows */
	if (N8 < N)
		for (i = 0; i < M; i++) {
			const float *a0 = A + (size_t)i * ars;
			float *c0 = C + (size_t)i * ldc;

			for (int j = N8; j < N; j++) {
				float s0 = 0;

				for (int k = 0; k < K; k++)
					s0 += a0[k * acs] * B[(size_t)k * ldb +
					    j];
				c0[j] = acc ? c0[j] + alpha * s0 : alpha * s0;
			}
		}
}

/*
 * dst[d][i] = scale * src row i, column d, for i < n; 0 for n <= i <
 * ATTN_BQ (hs x ATTN_BQ).  A query tile transposed, so that the score
 * loops run along queries, 8 per vector.
 */
static void
attn_load_qt(float *restrict dst, const float *restrict src, size_t stride,
    int n, int hs)
{
	/*
	 * The rows are far apart (3C floats): asking for all of them first
	 * overlaps their cache misses, which the copy loop alone would
	 * take one or two at a time.
	 */
	for (int i = 0; i < n; i++)
		for (int d = 0; d < hs; d += 16)
			__builtin_prefetch(src + (size_t)i * stride + d);
	for (int i = 0; i < n; i++) {
		const float *s = src + (size_t)i * stride;

		for (int d = 0; d < hs; d++)
			dst[(size_t)d * ATTN_BQ + i] = s[d];
	}
	for (int i = n; i < ATTN_BQ; i++)
		for (int d = 0; d < hs; d++)
			dst[(size_t)d * ATTN_BQ + i] = 0;
}

/* lanes of vector v of a query tile that key row j of a tile at k0 may
 * see: query q0 + i >= key k0 + j, and i < nq */
static inline v8si
attn_mask(int v, int j, int k0, int q0, int nq)
{
	const v8si iota = { 0, 1, 2, 3, 4, 5, 6, 7 };
	v8si i = iota + 8 * v;

	return (i >= k0 + j - q0) & (i < nq);
}

#define ATTN_NV	(ATTN_BQ / 8)	/* vectors per query tile */

/*
 * One block of nq queries starting at q0, of head (b, h): the whole
 * forward for those rows.  Scores are computed transposed, S^T = K Q^T
 * (keys by queries), with K read in place, so the online softmax runs
 * along queries with per-lane running max m and sum l.  Workspace w: QT
 * (hs x ATTN_BQ), O (ATTN_BQ x hs), ST (ATTN_BK x ATTN_BQ).
 */
static void
attn_fwd_block(float *out, float *lse, const float *qkv, int b, int h,
    int q0, int T, int C, int NH, float *w)
{
	int hs = C / NH, nq = T - q0 < ATTN_BQ ? T - q0 : ATTN_BQ;
	int kend = q0 + nq;
	size_t stride = 3 * (size_t)C;
	const float *base = qkv + (size_t)b * T * stride + (size_t)h * hs;
	float scale = 1.0f / sqrtf((float)hs);
	float *QT = w, *O = QT + (size_t)hs * ATTN_BQ;
	float *ST = O + (size_t)ATTN_BQ * hs;
	v8sf m[ATTN_NV], l[ATTN_NV];

	attn_load_qt(QT, base + (size_t)q0 * stride, stride, nq, hs);
	memset(O, 0, sizeof(float) * ATTN_BQ * hs);
	for (int v = 0; v < ATTN_NV; v++) {
		m[v] = (v8sf){ 0 } - INFINITY;
		l[v] = (v8sf){ 0 };
	}
	for (int k0 = 0; k0 < kend; k0 += ATTN_BK) {
		int nk = kend - k0 < ATTN_BK ? kend - k0 : ATTN_BK;
		v8sf mx[ATTN_NV], corr[ATTN_NV];
		float cf[ATTN_BQ];
		int rescale = 0;

		/* S^T = scale K Q^T */
		attn_gemm(nk, ATTN_BQ, hs, scale, base + C + (size_t)k0 *
		    stride, stride, 1, QT, ATTN_BQ, ST, ATTN_BQ, 0);
		/*
		 * Row j = 0 of a tile is visible to every query of the block
		 * (k0 <= q0, ATTN_BK == ATTN_BQ), so each lane's max is
		 * finite after the first tile.
		 */
		for (int v = 0; v < ATTN_NV; v++)
			mx[v] = m[v];
		for (int j = 0; j < nk; j++)
			for (int v = 0; v < ATTN_NV; v++)
				mx[v] = v8_max(mx[v], v8_select(attn_mask(v,
				    j, k0, q0, ATTN_BQ), v8_load(ST +
				    (size_t)j * ATTN_BQ + 8 * v), mx[v]));
		for (int v = 0; v < ATTN_NV; v++) {
			corr[v] = v8_exp(m[v] - mx[v]);
			l[v] *= corr[v];
			m[v] = mx[v];
			v8_store(cf + 8 * v, corr[v]);
		}
		for (int j = 0; j < nk; j++)
			for (int v = 0; v < ATTN_NV; v++) {
				float *st = ST + (size_t)j * ATTN_BQ + 8 * v;
				v8sf p = v8_exp(v8_load(st) - mx[v]);

				p = (v8sf)((v8si)p & attn_mask(v, j, k0, q0,
				    ATTN_BQ));
				l[v] += p;
				v8_store(st, p);
			}
		for (int i = 0; i < nq; i++)
			rescale |= cf[i] != 1.0f;
		if (rescale)
			for (int i = 0; i < nq; i++) {
				float c = cf[i], *o = O + (size_t)i * hs;

#pragma omp simd
				for (int d = 0; d < hs; d++)
					o[d] *= c;
			}
		/* O += P V: P read transposed from P^T, V rows in place */
		attn_gemm(nq, hs, nk, 1.0f, ST, 1, ATTN_BQ,
		    base + 2 * C + (size_t)k0 * stride, stride, O, hs, 1);
	}
	{
		float lf[ATTN_BQ], mf[ATTN_BQ];

		for (int v = 0; v < ATTN_NV; v++) {
			v8_store(lf + 8 * v, l[v]);
			v8_store(mf + 8 * v, m[v]);
		}
		for (int i = 0; i < nq; i++) {
			float *dst = out + ((size_t)b * T + q0 + i) * C +
			    (size_t)h * hs;
			float inv = 1.0f / lf[i];

#pragma omp simd
			for (int d = 0; d < hs; d++)
				dst[d] = O[(size_t)i * hs + d] * inv;
			lse[((size_t)b * NH + h) * T + q0 + i] = mf[i] +
			    logf(lf[i]);
		}
	}
}

/*
 * Part `part` of nparts of head (b, h): the query blocks part, part +
 * nparts, ... (interleaved, so the causal work is balanced), from the
 * last one down, so that the head's K and V stay in cache.
 */
static void
attn_fwd_part(float *out, float *lse, const float *qkv, int b, int h,
    int part, int nparts, int T, int C, int NH, float *w)
{
	int nqb = (T + ATTN_BQ - 1) / ATTN_BQ;

	if (part >= nqb)
		return;
	for (int qb = part + (nqb - 1 - part) / nparts * nparts; qb >= 0;
	    qb -= nparts)
		attn_fwd_block(out, lse, qkv, b, h, qb * ATTN_BQ, T, C, NH, w);
}

void
attn_flash_fwd(float *out, float *lse, const float *qkv, int B, int T, int C,
    int NH)
{
	int hs = C / NH, nqb = (T + ATTN_BQ - 1) / ATTN_BQ;
	long heads = (long)B * NH;
	/*
	 * A head per work item keeps its K and V in cache; heads are split
	 * in parts only when there are too few to keep every thread busy.
	 */
	int nth = omp_get_max_threads();
	int nparts = heads >= 4L * nth ? 1 : (int)((4L * nth + heads - 1) /
	    heads);
	long items;
	size_t wsize = 2 * (size_t)ATTN_BQ * hs + (size_t)ATTN_BK * ATTN_BQ;

	if (nparts > nqb)
		nparts = nqb;
	items = heads * nparts;
#pragma omp parallel if (items > 1)
	{
		float *w = attn_alloc(wsize);

#pragma omp for schedule(dynamic, 1)
		for (long it = 0; it < items; it++) {
			long bh = it / nparts;

			attn_fwd_part(out, lse, qkv, (int)(bh / NH),
			    (int)(bh % NH), (int)(it % nparts), nparts, T, C,
			    NH, w);
		}
		free(w);
	}
}

/*
 * Backward of one head (b, h), query block by query block; for each, the
 * key blocks up to the diagonal.  Transposed like the forward: S^T = K
 * Q^T and dP^T = V dO^T with K and V read in place, P and dS computed
 * along queries.  dK and dV go straight into dqkv (the head's rows belong
 * to this thread); dQ is summed in a tile and added once.  Workspace w:
 * QT, dOT (hs x ATTN_BQ), dQ (ATTN_BQ x hs), PT, dST (ATTN_BK x ATTN_BQ).
 */
static void
attn_bwd_head(float *dqkv, const float *dout, const float *qkv,
    const float *out, const float *lse, int b, int h, int T, int C, int NH,
    float *w)
{
	int hs = C / NH;
	size_t stride = 3 * (size_t)C;
	size_t off = (size_t)b * T * stride + (size_t)h * hs;
	const float *base = qkv + off;
	const float *gbase = dout + (size_t)b * T * C + (size_t)h * hs;
	float *dbase = dqkv + off;
	const float *ls = lse + ((size_t)b * NH + h) * T;
	float scale = 1.0f / sqrtf((float)hs);
	float *QT = w, *dOT = QT + (size_t)hs * ATTN_BQ;
	float *dQ = dOT + (size_t)hs * ATTN_BQ, *PT = dQ + ATTN_BQ * hs;
	float *dST = PT + ATTN_BK * ATTN_BQ;

	for (int q0 = 0; q0 < T; q0 += ATTN_BQ) {
		int nq = T - q0 < ATTN_BQ ? T - q0 : ATTN_BQ;
		float lf[ATTN_BQ], df[ATTN_BQ];
		v8sf L[ATTN_NV], D[ATTN_NV];

		for (int i = nq; i < ATTN_BQ; i++)
			lf[i] = df[i] = 0;
		for (int i = 0; i < nq; i++) {
			const float *o = out + ((size_t)b * T + q0 + i) * C +
			    (size_t)h * hs;
			const float *g = gbase + (size_t)(q0 + i) * C;
			float acc = 0;

#pragma omp simd reduction(+:acc)
			for (int d = 0; d < hs; d++)
				acc += o[d] * g[d];
			df[i] = acc;	/* D_i = dO_i . O_i */
			lf[i] = ls[q0 + i];
		}
		for (int v = 0; v < ATTN_NV; v++) {
			L[v] = v8_load(lf + 8 * v);
			D[v] = v8_load(df + 8 * v);
		}
		attn_load_qt(QT, base + (size_t)q0 * stride, stride, nq, hs);
		attn_load_qt(dOT, gbase + (size_t)q0 * C, C, nq, hs);
		memset(dQ, 0, sizeof(float) * ATTN_BQ * hs);
		for (int k0 = 0; k0 < q0 + nq; k0 += ATTN_BK) {
			int nk = q0 + nq - k0 < ATTN_BK ? q0 + nq - k0 :
			    ATTN_BK;
			const float *K = base + C + (size_t)k0 * stride;

			/* P^T = exp(scale K Q^T - lse), dP^T = V dO^T */
			attn_gemm(nk, ATTN_BQ, hs, scale, K, stride, 1, QT,
			    ATTN_BQ, PT, ATTN_BQ, 0);
			attn_gemm(nk, ATTN_BQ, hs, 1.0f, K + C, stride, 1, dOT,
			    ATTN_BQ, dST, ATTN_BQ, 0);
			for (int j = 0; j < nk; j++)
				for (int v = 0; v < ATTN_NV; v++) {
					float *pt = PT + (size_t)j * ATTN_BQ +
					    8 * v;
					float *dst = dST + (size_t)j *
					    ATTN_BQ + 8 * v;
					v8sf p = v8_exp(v8_load(pt) - L[v]);

					p = (v8sf)((v8si)p & attn_mask(v, j,
					    k0, q0, nq));
					v8_store(pt, p);
					v8_store(dst, p * (v8_load(dst) -
					    D[v]));
				}
			/* dV += P^T dO, dO rows in place */
			attn_gemm(nk, hs, nq, 1.0f, PT, ATTN_BQ, 1,
			    gbase + (size_t)q0 * C, C,
			    dbase + 2 * C + (size_t)k0 * stride, stride, 1);
			/* dK += scale dS^T Q, Q rows in place */
			attn_gemm(nk, hs, nq, scale, dST, ATTN_BQ, 1,
			    base + (size_t)q0 * stride, stride,
			    dbase + C + (size_t)k0 * stride, stride, 1);
			/* dQ += scale dS K: dS read transposed from dS^T */
			attn_gemm(nq, hs, nk, scale, dST, 1, ATTN_BQ, K,
			    stride, dQ, hs, 1);
		}
		for (int i = 0; i < nq; i++) {
			float *dq = dbase + (size_t)(q0 + i) * stride;

#pragma omp simd
			for (int d = 0; d < hs; d++)
				dq[d] += dQ[(size_t)i * hs + d];
		}
	}
}

void
attn_flash_bwd(float *dqkv, const float *dout, const float *qkv,
    const float *out, const float *lse, int B, int T, int C, int NH)
{
	int hs = C / NH;
	long items = (long)B * NH;
	size_t wsize = 3 * (size_t)ATTN_BQ * hs + 2 * (size_t)ATTN_BK *
	    ATTN_BQ;

#pragma omp parallel if (items > 1)
	{
		float *w = attn_alloc(wsize);

#pragma omp for schedule(dynamic, 1)
		for (long it = 0; it < items; it++)
			attn_bwd_head(dqkv, dout, qkv, out, lse,
			    (int)(it / NH), (int)(it % NH), T, C, NH, w);
		free(w);
	}
}
