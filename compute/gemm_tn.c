/*
 * gemm_tn.c: the weight-gradient product of a linear layer,
 *	C[M,N] += A[K,M]^T . B[K,N]	(dw[OC,C] += dout[N,OC]^T . inp[N,C])
 * with the column sums of A (the bias gradient) taken while A is packed,
 * so that no separate pass reads dout again.  Both inputs are row-major
 * with K (the tokens) as rows: this is the outer-product form, each token
 * adding A's row times B's row into C.
 *
 * Blocked in the usual way (Goto's, as BLIS): for each block of KC tokens
 * B is packed into panels of 16 columns and A into panels of 6 rows,
 * k-major, and a register-blocked 6 x 16 kernel (12 vector accumulators,
 * 2 loads of B and 6 broadcasts of A per token) adds each tile into C.
 * Ragged edges are packed with zeros and their tile added through a
 * buffer.  Threads split the rows of C (M, in multiples of 6): each packs
 * what it reads and sums its own columns of A, so a result does not
 * depend on the thread count.
 */
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "compute.h"
#include "log.h"
#include "vec8.h"

#define GT_MR	6	/* rows of a C tile */
#define GT_NR	16	/* columns of a C tile (2 vectors) */
#define GT_KC	384	/* tokens per block: a B panel is 24 kB (L1) */
#define GT_MC	72	/* rows of C per packed A block: 108 kB (L2) */
#define GT_NC	384	/* columns of C per packed B block: 576 kB */

/* C tile (+)= the product of a packed A panel and a packed B panel */
static void
gt_kernel(int kc, const float *restrict a, const float *restrict b,
    float *restrict c, size_t ldc, int mr, int nr)
{
	v8sf s[GT_MR][2];

	for (int r = 0; r < GT_MR; r++)
		s[r][0] = s[r][1] = (v8sf){ 0 };
	for (int k = 0; k < kc; k++) {
		v8sf b0 = v8_load(b + (size_t)k * GT_NR);
		v8sf b1 = v8_load(b + (size_t)k * GT_NR + 8);
		const float *ak = a + (size_t)k * GT_MR;

		V8_PIN(b0);
		V8_PIN(b1);
#pragma GCC unroll 6
		for (int r = 0; r < GT_MR; r++) {
			float x = ak[r];

			s[r][0] += x * b0;
			s[r][1] += x * b1;
		}
	}
	if (mr == GT_MR && nr == GT_NR) {
#pragma GCC unroll 6
		for (int r = 0; r < GT_MR; r++) {
			float *cr = c + (size_t)r * ldc;

			v8_store(cr, v8_load(cr) + s[r][0]);
			v8_store(cr + 8, v8_load(cr + 8) + s[r][1]);
		}
		return;
	}
	float t[GT_MR][GT_NR];

	for (int r = 0; r < GT_MR; r++) {
		v8_store(t[r], s[r][0]);
		v8_store(t[r] + 8, s[r][1]);
	}
	for (int r = 0; r < mr; r++)
		for (int j = 0; j < nr; j++)
			c[(size_t)r * ldc + j] += t[r][j];
}

/*
 * Packs rows [k0, k0 + kc) of columns [j0, j0 + nc) of X (row-major, ld)
 * into panels of w columns, k-major, zero-padded to whole panels; and
 * sum[j] += X[k][j0 + j] over those rows when sum is not NULL.  Row by
 * row, so the reads stream; inlined with w a constant, so that each
 * panel row is a fixed-size copy.
 */
static inline __attribute__((always_inline)) void
gt_pack_w(float *restrict dst, const float *restrict x, size_t ld, int k0,
    int kc, int j0, int nc, const int w, float *restrict sum)
{
	int whole = nc / w * w;

	for (int k = 0; k < kc; k++) {
		const float *src = x + (size_t)(k0 + k) * ld + j0;
		float *d = dst + (size_t)k * w;

		if (sum != NULL) {
#pragma omp simd
			for (int j = 0; j < nc; j++)
				sum[j] += src[j];
		}
		for (int p = 0; p < whole; p += w)
			memcpy(d + (size_t)(p / w) * kc * w, src + p,
			    sizeof(float) * (size_t)w);
		if (whole < nc) {
			float *t = d + (size_t)(whole / w) * kc * w;

			for (int j = 0; j < w; j++)
				t[j] = whole + j < nc ? src[whole + j] : 0.0f;
		}
	}
}

static void
gt_pack_a(float *dst, const float *x, size_t ld, int k0, int kc, int j0,
    int nc, float *sum)
{
	gt_pack_w(dst, x, ld, k0, kc, j0, nc, GT_MR, sum);
}

static void
gt_pack_b(float *dst, const float *x, size_t ld, int k0, int kc, int j0,
    int nc)
{
	gt_pack_w(dst, x, ld, k0, kc, j0, nc, GT_NR, NULL);
}

/* rows [m0, m1) of C, on this thread; sum (if not NULL) += A's column sums */
static void
gt_rows(int m0, int m1, int N, int K, const float *A, size_t lda,
    const float *B, size_t ldb, float *C, size_t ldc, float *sum,
    float *ap, float *bp)
{
	for (int jc = 0; jc < N; jc += GT_NC) {
		int nc = N - jc < GT_NC ? N - jc : GT_NC;

		for (int pc = 0; pc < K; pc += GT_KC) {
			int kc = K - pc < GT_KC ? K - pc : GT_KC;

			gt_pack_b(bp, B, ldb, pc, kc, jc, nc);
			for (int ic = m0; ic < m1; ic += GT_MC) {
				int mc = m1 - ic < GT_MC ? m1 - ic : GT_MC;

				/* A's column sums, token by token, once */
				gt_pack_a(ap, A, lda, pc, kc, ic, mc,
				    sum != NULL && jc == 0 ? sum + ic : NULL);
				for (int jr = 0; jr < nc; jr += GT_NR)
					for (int ir = 0; ir < mc; ir += GT_MR)
						gt_kernel(kc, ap + (size_t)ir *
						    kc, bp + (size_t)jr * kc,
						    C + (size_t)(ic + ir) * ldc +
						    jc + jr, ldc, mc - ir <
						    GT_MR ? mc - ir : GT_MR,
						    nc - jr < GT_NR ? nc - jr :
						    GT_NR);
			}
		}
	}
}

void
gemm_tn_acc(int M, int N, int K, const float *A, size_t lda, const float *B,
    size_t ldb, float *C, size_t ldc, float *colsum)
{
	/* at least 4 panels of rows per thread, else fewer threads */
	int panels = (M + GT_MR - 1) / GT_MR;
	int nth = omp_get_max_threads();

	if (nth > panels / 4)
		nth = panels / 4 > 0 ? panels / 4 : 1;
	if ((double)M * N * K < 1e6)
		nth = 1;
#pragma omp parallel num_threads(nth) if (nth > 1)
	{
		int n = omp_get_num_threads(), th = omp_get_thread_num();
		int m0 = (int)((long)panels * th / n) * GT_MR;
		int m1 = (int)((long)panels * (th + 1) / n) * GT_MR;
		size_t anb = (size_t)GT_MC * GT_KC * sizeof(float);
		size_t bnb = (size_t)GT_NC * GT_KC * sizeof(float);
		float *ap = aligned_alloc(64, anb), *bp = aligned_alloc(64, bnb);
		float *sum = colsum != NULL ? calloc((size_t)M, sizeof(float)) :
		    NULL;

		/* kernels return void (compute.h): out of memory is fatal */
		if (ap == NULL || bp == NULL || (colsum != NULL && sum == NULL))
			fatal("gemm_tn: %zu bytes of packing buffers",
			    anb + bnb);
		if (m1 > M)
			m1 = M;
		if (m0 < m1)
			gt_rows(m0, m1, N, K, A, lda, B, ldb, C, ldc, sum, ap,
			    bp);
		for (int i = m0; sum != NULL && i < m1; i++)
			colsum[i] += sum[i];
		free(ap);
		free(bp);
		free(sum);
	}
}
