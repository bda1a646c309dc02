/*
 * compress.c: the wire codecs of collective chunks and the error feedback
 * of the compressed schemes.
 *
 * Codecs (enum wire_codec) turn count fp32 values into bytes and back:
 *   F32     raw copy;
 *   BF16    bfloat16, round to nearest even (NaN stays NaN);
 *   INT8    per block of COMP_INT8_BLOCK values one fp32 scale = max|x|/127
 *           then the block's values as round(x/scale) in [-127, 127];
 *   SPARSE  u32 nnz, then nnz u32 indexes (increasing), then nnz fp32
 *           values: the nonzeros of a chunk, which is what a top-k
 *           sparsified gradient is made of.
 * Decoding checks every length and index: the bytes come from the network.
 *
 * Error feedback (comp_feedback) runs once per operation on the worker's
 * buffer before any byte leaves: g += residual; c = lossy(g);
 * residual = g - c; g = c.  So what this node contributes over many steps
 * sums to the true gradients up to one residual.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane.h"

/* Branch-free, so that the loops over it vectorize. */
static inline uint16_t
bf16_round(uint32_t u)
{
	uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
	uint32_t q = (u >> 16) | 0x40u;		/* NaN stays a quiet NaN */

	return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? q : r);
}

uint16_t
comp_f32_to_bf16(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	return bf16_round(u);
}

float
comp_bf16_to_f32(uint16_t b)
{
	uint32_t u = (uint32_t)b << 16;
	float f;

	memcpy(&f, &u, 4);
	return f;
}

/*
 * max|x| / 127.  The maximum is taken on the bits with the sign cleared:
 * for non-negative floats the integer order is the float order, and an
 * integer max vectorizes (a NaN gives a NaN scale, refused by decode).
 */
static float
int8_scale(const float *x, size_t n)
{
	uint32_t m = 0;
	float amax;

	for (size_t i = 0; i < n; i++) {
		uint32_t u;

		memcpy(&u, &x[i], 4);
		u &= 0x7fffffffu;
		m = u > m ? u : m;
	}
	memcpy(&amax, &m, 4);
	return amax / 127.0f;
}

static size_t
sparse_nnz(const float *src, uint32_t n)
{
	size_t nnz = 0;

	for (uint32_t i = 0; i < n; i++)
		nnz += src[i] != 0.0f;
	return nnz;
}

enum wire_codec
comp_codec(int comp, const float *src, uint32_t n)
{
	switch (comp) {
	case ARC_DP_COMP_BF16:
		return WIRE_CODEC_BF16;
	case ARC_DP_COMP_INT8:
		return WIRE_CODEC_INT8;
	case ARC_DP_COMP_TOPK:
		/* sparse only when it is smaller than dense */
		if (4 + sparse_nnz(src, n) * 8 < (size_t)n * 4)
			return WIRE_CODEC_SPARSE;
		return WIRE_CODEC_F32;
	default:
		return WIRE_CODEC_F32;
	}
}

size_t
comp_encode(enum wire_codec codec, const float *src, uint32_t n, void *out)
{
	uint8_t *o = out;

	switch (codec) {
	case WIRE_CODEC_F32:
		memcpy(o, src, (size_t)n * 4);
		return (size_t)n * 4;
	case WIRE_CODEC_BF16:
		for (uint32_t i = 0; i < n; i++) {
			uint32_t u;
			uint16_t b;

			memcpy(&u, &src[i], 4);
			b = bf16_round(u);
			memcpy(o + 2 * (size_t)i, &b, 2);
		}
		return (size_t)n * 2;
	case WIRE_CODEC_INT8:
		for (uint32_t b = 0; b < n; b += COMP_INT8_BLOCK) {
			uint32_t m = n - b < COMP_INT8_BLOCK ?
			    n - b : COMP_INT8_BLOCK;
			float s = int8_scale(src + b, m);
			int8_t *q = (int8_t *)(o + 4);

			memcpy(o, &s, 4);
			float inv = s > 0.0f ? s : 1.0f;	/* s == 0: all 0 */

			for (uint32_t i = 0; i < m; i++) {
				float v = src[b + i] / inv;

				v = v > 127.0f ? 127.0f : v < -127.0f ?
				    -127.0f : v;
				q[i] = (int8_t)(int)rintf(v);
			}
			o += 4 + m;
		}
		return (size_t)(o - (uint8_t *)out);
	case WIRE_CODEC_SPARSE: {
		uint32_t nnz = 0, *idx = (uint32_t *)(void *)(o + 4);
		size_t total;
		float *val;

		nnz = (uint32_t)sparse_nnz(src, n);
		val = (float *)(void *)(o + 4 + (size_t)nnz * 4);
		memcpy(o, &nnz, 4);
		for (uint32_t i = 0, k = 0; i < n; i++)
			if (src[i] != 0.0f) {
				memcpy(&idx[k], &i, 4);
				memcpy(&val[k], &src[i], 4);
				k++;
			}
		total = 4 + (size_t)nnz * 8;
		return total;
	}
	default:
		return 0;
	}
}

int
comp_decode(enum wire_codec codec, const void *in, size_t len, uint32_t n,
    float *dst, int add)
{
	const uint8_t *p = in;

	if (len != wire_codec_max(codec, n) && codec != WIRE_CODEC_SPARSE)
		return -EBADMSG;
	switch (codec) {
	case WIRE_CODEC_F32:
		if (add)
			reduce_sum_f32(dst, in, n);
		else if (in != dst)	/* else received in place */
			memcpy(dst, in, (size_t)n * 4);
		return 0;
	case WIRE_CODEC_BF16:
		for (uint32_t i = 0; i < n; i++) {
			uint16_t b;
			float v;

			memcpy(&b, p + 2 * (size_t)i, 2);
			v = comp_bf16_to_f32(b);
			dst[i] = add ? dst[i] + v : v;
		}
		return 0;
	case WIRE_CODEC_INT8:
		for (uint32_t b = 0; b < n; b += COMP_INT8_BLOCK) {
			uint32_t m = n - b < COMP_INT8_BLOCK ?
			    n - b : COMP_INT8_BLOCK;
			const int8_t *q = (const int8_t *)(p + 4);
			float s;

			memcpy(&s, p, 4);
			if (!isfinite(s) || s < 0.0f)
				return -EBADMSG;
			for (uint32_t i = 0; i < m; i++) {
				float v = (float)q[i] * s;

				dst[b + i] = add ? dst[b + i] + v : v;
			}
			p += 4 + m;
		}
		return 0;
	case WIRE_CODEC_SPARSE: {
		uint32_t nnz, prev = 0;

		if (len < 4)
			return -EBADMSG;
		memcpy(&nnz, p, 4);
		if (nnz > n || len != 4 + (size_t)nnz * 8)
			return -EBADMSG;
		/* validate all indexes before touching dst */
		for (uint32_t k = 0; k < nnz; k++) {
			uint32_t i;

			memcpy(&i, p + 4 + 4 * (size_t)k, 4);
			if (i >= n || (k > 0 && i <= prev))
				return -EBADMSG;
			prev = i;
		}
		if (!add)
			memset(dst, 0, (size_t)n * 4);
		for (uint32_t k = 0; k < nnz; k++) {
			uint32_t i;
			float v;

			memcpy(&i, p + 4 + 4 * (size_t)k, 4);
			memcpy(&v, p + 4 + 4 * (size_t)nnz + 4 * (size_t)k, 4);
			dst[i] = add ? dst[i] + v : v;
		}
		return 0;
	}
	default:
		return -EBADMSG;
	}
}

/*
 * The k-th largest |g[i]| (1 <= k <= n), as a radix select on the bits:
 * for |x| (sign cleared) the integer order of the bits is the float order
 * (NaNs above infinity).  Three counting passes of 11, 11 and 9 bits, no
 * memory but the histogram, no reordering of g.
 */
static float
kth_largest_abs(const float *g, size_t n, size_t k)
{
	static const int shift[3] = { 20, 9, 0 };
	static const uint32_t width[3] = { 2048, 2048, 512 };
	uint32_t prefix = 0, pmask = 0, hist[4][2048], *cand = NULL;
	size_t ncand = 0;
	float f;

	for (int pass = 0; pass < 3; pass++) {
		uint32_t b, w = width[pass] - 1;
		int sh = shift[pass];

		memset(hist, 0, sizeof(hist));
		if (cand == NULL) {
			/* four histograms: fewer stalls on repeated bins */
			size_t i = 0;

			for (; i + 4 <= n; i += 4)
				for (int j = 0; j < 4; j++) {
					uint32_t u;

					memcpy(&u, &g[i + j], 4);
					u &= 0x7fffffffu;
					if ((u & pmask) == prefix)
						hist[j][(u >> sh) & w]++;
				}
			for (; i < n; i++) {
				uint32_t u;

				memcpy(&u, &g[i], 4);
				u &= 0x7fffffffu;
				if ((u & pmask) == prefix)
					hist[0][(u >> sh) & w]++;
			}
		} else
			for (size_t i = 0; i < ncand; i++)
				if ((cand[i] & pmask) == prefix)
					hist[0][(cand[i] >> sh) & w]++;
		for (b = 0; b <= w; b++)
			hist[0][b] += hist[1][b] + hist[2][b] + hist[3][b];
		/* from the top bin down until k values are covered */
		for (b = w; b > 0 && hist[0][b] < k; b--)
			k -= hist[0][b];
		prefix |= b << sh;
		pmask |= w << sh;
		/* few values left in the running: keep just those */
		if (cand == NULL && pass == 0 && hist[0][b] <= n / 16 &&
		    (cand = malloc(sizeof(*cand) * (hist[0][b] + 1))) != NULL) {
			for (size_t i = 0; i < n; i++) {
				uint32_t u;

				memcpy(&u, &g[i], 4);
				u &= 0x7fffffffu;
				if ((u & pmask) == prefix)
					cand[ncand++] = u;
			}
		}
	}
	free(cand);
	memcpy(&f, &prefix, 4);
	return f;
}

size_t
comp_topk_count(size_t n, float ratio)
{
	double k = ceil((double)ratio * (double)n);

	if (n == 0)
		return 0;
	if (!(k >= 1.0))
		return 1;
	return k > (double)n ? n : (size_t)k;
}

int
comp_feedback(int comp, float ratio, float *g, float *resid, size_t n)
{
	if (resid != NULL)
		reduce_sum_f32(g, resid, n);
	switch (comp) {
	case ARC_DP_COMP_BF16:
		for (size_t i = 0; i < n; i++) {
			float c = comp_bf16_to_f32(comp_f32_to_bf16(g[i]));

			if (resid != NULL)
				resid[i] = g[i] - c;
			g[i] = c;
		}
		return 0;
	case ARC_DP_COMP_INT8:
		for (size_t b = 0; b < n; b += COMP_INT8_BLOCK) {
			size_t m = n - b < COMP_INT8_BLOCK ? n - b :
			    COMP_INT8_BLOCK;
			float s = int8_scale(g + b, m);

			float inv = s > 0.0f ? s : 1.0f;

			/* exactly what comp_encode + comp_decode give */
			for (size_t i = b; i < b + m; i++) {
				float v = g[i] / inv, c;

				v = v > 127.0f ? 127.0f : v < -127.0f ?
				    -127.0f : v;
				c = (float)(int8_t)(int)rintf(v) * s;
				if (resid != NULL)
					resid[i] = g[i] - c;
				g[i] = c;
			}
		}
		return 0;
	case ARC_DP_COMP_TOPK: {
		size_t k = comp_topk_count(n, ratio), kept = 0;
		float thr;

		if (n == 0)
			return 0;
		thr = kth_largest_abs(g, n, k);
		/* strictly above the threshold first, then ties by index */
		for (size_t i = 0; i < n; i++)
			kept += fabsf(g[i]) > thr;
		for (size_t i = 0; i < n; i++) {
			float v = fabsf(g[i]);
			int keep = v > thr || (v == thr && kept < k);

			if (v == thr && keep)
				kept++;
			if (keep && g[i] != 0.0f)
				continue;
			if (resid != NULL)
				resid[i] = g[i];
			g[i] = 0.0f;
		}
		if (resid != NULL)
			for (size_t i = 0; i < n; i++)
				if (g[i] != 0.0f)
					resid[i] = 0.0f;
		return 0;
	}
	default:
		if (resid != NULL)
			memset(resid, 0, n * sizeof(*resid));
		return 0;
	}
}
