/*
 * attn.c: memory-efficient causal self-attention (FlashAttention's scheme
 * on a CPU).  The scalar reference is ref_attn_fwd/ref_attn_bwd in
 * kern_ref.c; tests/unit/check_attn.c compares the two.
 *
 * Forward, per (b, h, block of ATTN_BQ queries): walk the key blocks of
 * ATTN_BK keys up to the diagonal, keeping for each query row a running
 * max m, a running sum l of exp(s - m) and an unnormalised output row; a
 * new block rescales them by exp(m_old - m_new) (online softmax).  Only
 * out and lse = m + log(l) are written.
 *
 * Backward, per (b, h): D_i = dout_i . out_i; then for each key block,
 * for each query block at or below the diagonal, the scores are
 * recomputed from q, k and lse (P = exp(S - lse)), and
 *	dV_j += P_ij dO_i	dP_ij = dO_i . V_j
 *	dS_ij = P_ij (dP_ij - D_i)
 *	dQ_i += scale dS_ij K_j	dK_j += scale dS_ij Q_i
 * dK, dV of the key block are kept in the tile and added once; dQ is added
 * straight into dqkv (one thread owns a (b, h), so no two threads write
 * the same element).
 *
 * Memory: per thread O(tile * hs) in forward and O(T * hs) in backward,
 * never O(T^2).  Tiles are copied into small contiguous buffers (K and V
 * transposed, so the score loops run along keys and vectorise); all inner
 * loops are unit-stride `omp simd` loops over fixed-size tiles.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "compute.h"
#include "log.h"

#define ATTN_BQ		32	/* query rows per tile */
#define ATTN_BK		32	/* keys per tile (a multiple of the SIMD width) */
#define ATTN_ALIGN	64	/* tile buffer alignment, bytes */

/*
 * exp(x) for x <= 0, vectorisable (no libm call in the simd loops):
 * x = n ln2 + r with |r| <= ln2/2 (Cody-Waite split of ln2), e^r by its
 * degree-6 Taylor polynomial (relative error < 2e-7), 2^n built in the
 * exponent bits.  Inputs below -87 are clamped (result ~1e-38, never a
 * denormal); callers zero masked entries themselves.
 */
static inline float
attn_exp(float x)
{
	const float ln2_hi = 0.693145751953125f;
	const float ln2_lo = 1.428606765330187e-06f;
	union {
		float	f;
		int32_t	i;
	} u;
	float n, r, p;

	x = x < -87.0f ? -87.0f : x;
	n = __builtin_rintf(x * 1.4426950408889634f);
	r = x - n * ln2_hi;
	r = r - n * ln2_lo;
	p = 1.0f / 720;
	p = p * r + 1.0f / 120;
	p = p * r + 1.0f / 24;
	p = p * r + 1.0f / 6;
	p = p * r + 0.5f;
	p = p * r + 1.0f;
	p = p * r + 1.0f;
	u.i = ((int32_t)n + 127) << 23;
	return p * u.f;
}

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
 * S[i][0..ATTN_BK) = Q[i] . KT[.][j] for i < nq.  Q is nq x hs (row
 * stride hs), KT is hs x ATTN_BK.  Two rows at a time so each loaded KT
 * vector feeds two FMAs.
 */
static void
attn_scores(float *restrict S, const float *restrict Q,
    const float *restrict KT, int nq, int hs)
{
	int i = 0;

	for (; i + 1 < nq; i += 2) {
		float a0[ATTN_BK], a1[ATTN_BK];
		const float *q0 = Q + (size_t)i * hs, *q1 = q0 + hs;

#pragma omp simd
		for (int j = 0; j < ATTN_BK; j++)
			a0[j] = a1[j] = 0;
		for (int d = 0; d < hs; d++) {
			const float *kt = KT + (size_t)d * ATTN_BK;
			float x0 = q0[d], x1 = q1[d];

#pragma omp simd
			for (int j = 0; j < ATTN_BK; j++) {
				a0[j] += x0 * kt[j];
				a1[j] += x1 * kt[j];
			}
		}
#pragma omp simd
		for (int j = 0; j < ATTN_BK; j++) {
			S[(size_t)i * ATTN_BK + j] = a0[j];
			S[(size_t)(i + 1) * ATTN_BK + j] = a1[j];
		}
	}
	for (; i < nq; i++) {
		float a0[ATTN_BK];
		const float *q0 = Q + (size_t)i * hs;

#pragma omp simd
		for (int j = 0; j < ATTN_BK; j++)
			a0[j] = 0;
		for (int d = 0; d < hs; d++) {
			const float *kt = KT + (size_t)d * ATTN_BK;
			float x0 = q0[d];

#pragma omp simd
			for (int j = 0; j < ATTN_BK; j++)
				a0[j] += x0 * kt[j];
		}
#pragma omp simd
		for (int j = 0; j < ATTN_BK; j++)
			S[(size_t)i * ATTN_BK + j] = a0[j];
	}
}

/* dst[d][j] = src row (k0 + j), column d, zero for j >= nk (hs x ATTN_BK) */
static void
attn_load_t(float *restrict dst, const float *restrict src, size_t stride,
    int nk, int hs)
{
	for (int j = 0; j < ATTN_BK; j++) {
		const float *s = src + (size_t)j * stride;

		if (j < nk)
			for (int d = 0; d < hs; d++)
				dst[(size_t)d * ATTN_BK + j] = s[d];
		else
			for (int d = 0; d < hs; d++)
				dst[(size_t)d * ATTN_BK + j] = 0;
	}
}

/*
 * One block of nq queries starting at q0, of head (b, h): the whole
 * forward for those rows.  Workspace w: Q, O (ATTN_BQ x hs), KT
 * (hs x ATTN_BK), S (ATTN_BQ x ATTN_BK).
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
	float *Q = w, *O = Q + ATTN_BQ * hs, *KT = O + ATTN_BQ * hs;
	float *S = KT + (size_t)hs * ATTN_BK;
	float m[ATTN_BQ], l[ATTN_BQ];

	for (int i = 0; i < nq; i++) {
		const float *q = base + (size_t)(q0 + i) * stride;

#pragma omp simd
		for (int d = 0; d < hs; d++) {
			Q[(size_t)i * hs + d] = q[d] * scale;
			O[(size_t)i * hs + d] = 0;
		}
		m[i] = -INFINITY;
		l[i] = 0;
	}
	for (int k0 = 0; k0 < kend; k0 += ATTN_BK) {
		int nk = kend - k0 < ATTN_BK ? kend - k0 : ATTN_BK;
		const float *V = base + 2 * C + (size_t)k0 * stride;

		attn_load_t(KT, base + C + (size_t)k0 * stride, stride, nk,
		    hs);
		attn_scores(S, Q, KT, nq, hs);
		for (int i = 0; i < nq; i++) {
			float *s = S + (size_t)i * ATTN_BK;
			float *o = O + (size_t)i * hs;
			/* keys k0 .. k0+lim-1 are visible to query q0+i */
			int lim = q0 + i - k0 + 1;
			float mx = m[i], corr, sum = 0;

			if (lim <= 0)
				continue;
			if (lim > nk)
				lim = nk;
			for (int j = 0; j < lim; j++)
				mx = s[j] > mx ? s[j] : mx;
#pragma omp simd reduction(+:sum)
			for (int j = 0; j < ATTN_BK; j++) {
				float p = attn_exp(s[j] - mx);

				p = j < lim ? p : 0.0f;
				s[j] = p;
				sum += p;
			}
			corr = attn_exp(m[i] - mx);
			l[i] = l[i] * corr + sum;
			m[i] = mx;
			if (corr != 1.0f) {
#pragma omp simd
				for (int d = 0; d < hs; d++)
					o[d] *= corr;
			}
			for (int j = 0; j < lim; j++) {
				const float *v = V + (size_t)j * stride;
				float p = s[j];

#pragma omp simd
				for (int d = 0; d < hs; d++)
					o[d] += p * v[d];
			}
		}
	}
	for (int i = 0; i < nq; i++) {
		float *dst = out + ((size_t)b * T + q0 + i) * C +
		    (size_t)h * hs;
		float inv = 1.0f / l[i];

#pragma omp simd
		for (int d = 0; d < hs; d++)
			dst[d] = O[(size_t)i * hs + d] * inv;
		lse[((size_t)b * NH + h) * T + q0 + i] = m[i] + logf(l[i]);
	}
}

void
attn_flash_fwd(float *out, float *lse, const float *qkv, int B, int T, int C,
    int NH)
{
	int hs = C / NH, nqb = (T + ATTN_BQ - 1) / ATTN_BQ;
	long items = (long)B * NH * nqb;
	size_t wsize = 2 * (size_t)ATTN_BQ * hs + (size_t)hs * ATTN_BK +
	    (size_t)ATTN_BQ * ATTN_BK;

#pragma omp parallel if (items > 1)
	{
		float *w = attn_alloc(wsize);

		/*
		 * Item order: the heaviest query blocks (last, most keys)
		 * first, so the dynamic schedule ends balanced.
		 */
#pragma omp for schedule(dynamic, 1)
		for (long it = 0; it < items; it++) {
			int qb = nqb - 1 - (int)(it / ((long)B * NH));
			long bh = it % ((long)B * NH);

			attn_fwd_block(out, lse, qkv, (int)(bh / NH),
			    (int)(bh % NH), qb * ATTN_BQ, T, C, NH, w);
		}
		free(w);
	}
}

/*
 * Backward of one head (b, h).  Workspace w: D[T], and per tile Q, dO
 * (ATTN_BQ x hs), KT, VT (hs x ATTN_BK), dK, dV (ATTN_BK x hs), S, dS
 * (ATTN_BQ x ATTN_BK).
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
	float *dbase = dqkv + off;
	const float *ls = lse + ((size_t)b * NH + h) * T;
	float scale = 1.0f / sqrtf((float)hs);
	float *D = w;
	float *Q = D + ((T + 15) & ~15), *dO = Q + ATTN_BQ * hs;
	float *KT = dO + ATTN_BQ * hs, *VT = KT + (size_t)hs * ATTN_BK;
	float *dK = VT + (size_t)hs * ATTN_BK, *dV = dK + ATTN_BK * hs;
	float *S = dV + ATTN_BK * hs, *dS = S + ATTN_BQ * ATTN_BK;

	for (int t = 0; t < T; t++) {
		const float *o = out + ((size_t)b * T + t) * C + (size_t)h * hs;
		const float *g = dout + ((size_t)b * T + t) * C +
		    (size_t)h * hs;
		float acc = 0;

#pragma omp simd reduction(+:acc)
		for (int d = 0; d < hs; d++)
			acc += o[d] * g[d];
		D[t] = acc;
	}
	for (int k0 = 0; k0 < T; k0 += ATTN_BK) {
		int nk = T - k0 < ATTN_BK ? T - k0 : ATTN_BK;

		attn_load_t(KT, base + C + (size_t)k0 * stride, stride, nk,
		    hs);
		attn_load_t(VT, base + 2 * C + (size_t)k0 * stride, stride,
		    nk, hs);
		memset(dK, 0, sizeof(float) * ATTN_BK * hs);
		memset(dV, 0, sizeof(float) * ATTN_BK * hs);
		/* query blocks that see at least key k0 */
		for (int q0 = k0 / ATTN_BQ * ATTN_BQ; q0 < T; q0 += ATTN_BQ) {
			int nq = T - q0 < ATTN_BQ ? T - q0 : ATTN_BQ;

			for (int i = 0; i < nq; i++) {
				const float *q = base + (size_t)(q0 + i) *
				    stride;
				const float *g = dout + ((size_t)b * T + q0 +
				    i) * C + (size_t)h * hs;

#pragma omp simd
				for (int d = 0; d < hs; d++) {
					Q[(size_t)i * hs + d] = q[d] * scale;
					dO[(size_t)i * hs + d] = g[d];
				}
			}
			attn_scores(S, Q, KT, nq, hs);	/* S = scaled scores */
			attn_scores(dS, dO, VT, nq, hs);	/* dS = dP */
			for (int i = 0; i < nq; i++) {
				float *s = S + (size_t)i * ATTN_BK;
				float *ds = dS + (size_t)i * ATTN_BK;
				int lim = q0 + i - k0 + 1;
				float li = ls[q0 + i], di = D[q0 + i];

				lim = lim < 0 ? 0 : lim > nk ? nk : lim;
#pragma omp simd
				for (int j = 0; j < ATTN_BK; j++) {
					float p = attn_exp(s[j] - li);

					p = j < lim ? p : 0.0f;
					s[j] = p;
					ds[j] = p * (ds[j] - di);
				}
			}
			/* dV_j += P_ij dO_i;  dK_j += dS_ij Q_i (Q scaled) */
			for (int j = 0; j < nk; j++) {
				float *dv = dV + (size_t)j * hs;
				float *dk = dK + (size_t)j * hs;

				for (int i = 0; i < nq; i++) {
					float p = S[(size_t)i * ATTN_BK + j];
					float ds = dS[(size_t)i * ATTN_BK + j];
					const float *g = dO + (size_t)i * hs;
					const float *q = Q + (size_t)i * hs;

					if (p == 0.0f)
						continue;	/* masked */
#pragma omp simd
					for (int d = 0; d < hs; d++) {
						dv[d] += p * g[d];
						dk[d] += ds * q[d];
					}
				}
			}
			/* dQ_i += scale dS_ij K_j */
			for (int i = 0; i < nq; i++) {
				float *dq = dbase + (size_t)(q0 + i) * stride;
				const float *ds = dS + (size_t)i * ATTN_BK;
				int lim = q0 + i - k0 + 1;

				lim = lim < 0 ? 0 : lim > nk ? nk : lim;
				for (int j = 0; j < lim; j++) {
					const float *k = base + C +
					    (size_t)(k0 + j) * stride;
					float x = ds[j] * scale;

#pragma omp simd
					for (int d = 0; d < hs; d++)
						dq[d] += x * k[d];
				}
			}
		}
		for (int j = 0; j < nk; j++) {
			float *dk = dbase + C + (size_t)(k0 + j) * stride;
			float *dv = dbase + 2 * C + (size_t)(k0 + j) * stride;

#pragma omp simd
			for (int d = 0; d < hs; d++) {
				dk[d] += dK[(size_t)j * hs + d];
				dv[d] += dV[(size_t)j * hs + d];
			}
		}
	}
}

void
attn_flash_bwd(float *dqkv, const float *dout, const float *qkv,
    const float *out, const float *lse, int B, int T, int C, int NH)
{
	int hs = C / NH;
	long items = (long)B * NH;
	size_t wsize = (size_t)((T + 15) & ~15) + 2 * (size_t)ATTN_BQ * hs +
	    4 * (size_t)hs * ATTN_BK + 2 * (size_t)ATTN_BQ * ATTN_BK;

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
