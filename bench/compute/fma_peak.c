/*
 * fma_peak.c: how close dnnl_sgemm comes to this core's fp32 peak on the
 * matmul shapes of one training step.
 *
 * The peak: 12 independent chains of 256-bit FMAs held in registers
 * (enough to cover an FMA's latency on every AVX2 core: Zen 3 has two FMA
 * pipes of latency 4, so 8 chains in flight are needed, Intel's Skylake
 * two of latency 4 as well), no memory traffic, 16 flops per FMA.  Then
 * every dnnl_sgemm product of the step (forward and both backward
 * products of each linear layer and of the tied head, with kern_dnnl's
 * transposes and betas), each on its own, as GFLOP/s and as a fraction of
 * that peak, and the whole set as sgemm_probe measures it.
 *
 * usage: fma_peak [L C T B [THREADS]]     (default: tiny, 1 thread)
 * Each number is the best of repeated passes over at least 0.5 s (the
 * machine is shared): a best case, not a typical one.
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>

#define CHAINS	12
#define ITERS	(1L << 22)	/* FMAs per chain and pass */

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/*
 * One pass: CHAINS x ITERS FMAs, every chain a named register variable
 * (an array would live in memory and be stored back each iteration);
 * returns a value so that nothing is dropped.
 */
static float __attribute__((target("avx2,fma"), noinline))
fma_pass(float seed)
{
	__m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
	__m256 a0 = _mm256_set1_ps(seed), a1 = _mm256_add_ps(a0, y);
	__m256 a2 = _mm256_add_ps(a1, y), a3 = _mm256_add_ps(a2, y);
	__m256 a4 = _mm256_add_ps(a3, y), a5 = _mm256_add_ps(a4, y);
	__m256 a6 = _mm256_add_ps(a5, y), a7 = _mm256_add_ps(a6, y);
	__m256 a8 = _mm256_add_ps(a7, y), a9 = _mm256_add_ps(a8, y);
	__m256 a10 = _mm256_add_ps(a9, y), a11 = _mm256_add_ps(a10, y);

	for (long i = 0; i < ITERS; i++) {
		a0 = _mm256_fmadd_ps(a0, x, y);
		a1 = _mm256_fmadd_ps(a1, x, y);
		a2 = _mm256_fmadd_ps(a2, x, y);
		a3 = _mm256_fmadd_ps(a3, x, y);
		a4 = _mm256_fmadd_ps(a4, x, y);
		a5 = _mm256_fmadd_ps(a5, x, y);
		a6 = _mm256_fmadd_ps(a6, x, y);
		a7 = _mm256_fmadd_ps(a7, x, y);
		a8 = _mm256_fmadd_ps(a8, x, y);
		a9 = _mm256_fmadd_ps(a9, x, y);
		a10 = _mm256_fmadd_ps(a10, x, y);
		a11 = _mm256_fmadd_ps(a11, x, y);
	}
	__m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1),
	    _mm256_add_ps(a2, a3)), _mm256_add_ps(_mm256_add_ps(a4, a5),
	    _mm256_add_ps(a6, a7)));
	s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9),
	    _mm256_add_ps(a10, a11)));
	float out[8];
	_mm256_storeu_ps(out, s);
	return out[0] + out[7];
}

/* GFLOP/s of fma_pass on each of nth threads at once, summed */
static double
peak_gflops(int nth)
{
	double best = 1e30, sink = 0;
	double start = now();

	for (int rep = 0; rep < 5 || now() - start < 0.5; rep++) {
		double t0 = now();

#pragma omp parallel num_threads(nth) reduction(+:sink)
		sink += fma_pass((float)rep);
		double t = now() - t0;
		if (t < best)
			best = t;
	}
	if (sink == 12345.0)	/* never: keeps sink alive */
		printf("#\n");
	return (double)nth * CHAINS * ITERS * 16 / best / 1e9;
}

static float *
filled(size_t n, int mod)
{
	float *p = malloc(n * sizeof(float));

	if (p == NULL) {
		perror("fma_peak: malloc");
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		p[i] = 0.001f * (float)(i % (size_t)mod);
	return p;
}

#define FLUSH_FLOATS	(16L << 20)	/* 64 MB: twice the L3 */
static float *flush_buf;
static int cold;		/* evict the caches before each call */

/* writes 64 MB, so that the next call finds its operands in DRAM */
static void
flush_caches(void)
{
	for (long i = 0; i < FLUSH_FLOATS; i += 16)
		flush_buf[i] += 1.0f;
}

static volatile float touch_sink;

/* reads n floats at full speed (prefetches run ahead of a streaming loop) */
static void
touch(const float *p, size_t n)
{
	float s = 0;

	for (size_t i = 0; i < n; i += 16)
		s += p[i];
	touch_sink = s;
}

/*
 * best GFLOP/s of one dnnl_sgemm call (row-major, as kern_dnnl calls it):
 * hot (the same operands again and again, as sgemm_probe) or, with
 * `cold` set, each call after the caches were flushed (as in a step,
 * where every operand was last touched layers ago).
 */
static double
sgemm_gflops(char ta, char tb, int M, int N, int K, float beta,
    const float *a, int lda, const float *b, int ldb, float *c, int ldc)
{
	double best = 1e30, start = now();

	for (int rep = 0; rep < 10 || now() - start < 0.5; rep++) {
		if (cold)
			flush_caches();
		double t0 = now();
		if (cold == 2) {
			touch(a, (ta == 'N' ? M : K) * (size_t)lda);
			touch(b, (tb == 'N' ? K : N) * (size_t)ldb);
			touch(c, (size_t)M * ldc);
		}

		dnnl_sgemm(ta, tb, M, N, K, 1.0f, a, lda, b, ldb, beta, c, ldc);
		double t = now() - t0;
		if (t < best)
			best = t;
	}
	return 2.0 * M * N * K / best / 1e9;
}

int
main(int argc, char **argv)
{
	int L = 4, C = 128, T = 64, B = 12, th = 1;

	if (argc != 1 && argc != 5 && argc != 6) {
		fprintf(stderr, "usage: fma_peak [L C T B [THREADS]]\n");
		return 2;
	}
	if (argc >= 5) {
		L = atoi(argv[1]);
		C = atoi(argv[2]);
		T = atoi(argv[3]);
		B = atoi(argv[4]);
		th = argc == 6 ? atoi(argv[5]) : 1;
	}
	if (L < 1 || C < 1 || T < 1 || B < 1 || th < 1) {
		fprintf(stderr, "fma_peak: arguments must be positive\n");
		return 2;
	}
	omp_set_num_threads(th);

	int N = B * T;
	double peak = peak_gflops(th);
	/* (K, OC) of each linear: qkv, attproj, fc, fcproj, head */
	static const char *names[5] = { "qkv", "attproj", "fc", "fcproj",
	    "head" };
	int shp[5][2] = { { C, 3 * C }, { C, C }, { C, 4 * C }, { 4 * C, C },
	    { C, 256 } };
	size_t big = (size_t)N * 4 * C + (size_t)N * 256;
	size_t wn = (size_t)16 * C * C + 256 * (size_t)C;
	float *x = filled(big, 17), *w = filled(wn, 13), *y = filled(big, 7);
	float *dx = filled(big, 3), *dw = filled(wn, 5);
	double tflop = 0, tsec = 0, tcold = 0;

	flush_buf = filled(FLUSH_FLOATS, 3);

	printf("# fp32 FMA peak, %d thread(s): %.1f GFLOP/s (%d chains of "
	    "256-bit FMAs)\n", th, peak, CHAINS);
	printf("# dnnl_sgemm on the step's shapes (L %d C %d T %d B %d, N = "
	    "%d tokens)\n", L, C, T, B, N);
	printf("%-8s %-6s %5s %5s %5s %8s %7s %8s %7s\n", "layer", "prod",
	    "M", "N", "K", "GFLOP/s", "of_peak", "cold", "of_peak");
	for (int s = 0; s < 5; s++) {
		int K = shp[s][0], OC = shp[s][1];
		double g[3];
		const char *pn[3] = { "fwd", "dinp", "dw" };
		int dims[3][3] = { { N, OC, K }, { N, K, OC }, { OC, K, N } };

		/* out = x . w^T;  dx = dout . w;  dw += dout^T . x */
		double gc[3];

		cold = getenv("TOUCH") ? 2 : 1;
		gc[0] = sgemm_gflops('N', 'T', N, OC, K, 0.0f, x, K, w, K, y,
		    OC);
		gc[1] = sgemm_gflops('N', 'N', N, K, OC, 0.0f, y, OC, w, K, dx,
		    K);
		gc[2] = sgemm_gflops('T', 'N', OC, K, N, 1.0f, y, OC, x, K, dw,
		    K);
		cold = 0;
		g[0] = sgemm_gflops('N', 'T', N, OC, K, 0.0f, x, K, w, K, y, OC);
		g[1] = sgemm_gflops('N', 'N', N, K, OC, 0.0f, y, OC, w, K, dx,
		    K);
		g[2] = sgemm_gflops('T', 'N', OC, K, N, 1.0f, y, OC, x, K, dw,
		    K);
		for (int p = 0; p < 3; p++) {
			double f = 2.0 * N * K * OC * (s == 4 ? 1 : L);

			printf("%-8s %-6s %5d %5d %5d %8.1f %6.0f%% %8.1f "
			    "%6.0f%%\n", names[s], pn[p], dims[p][0],
			    dims[p][1], dims[p][2], g[p], 100 * g[p] / peak,
			    gc[p], 100 * gc[p] / peak);
			tflop += f;
			tsec += f / (g[p] * 1e9);
			tcold += f / (gc[p] * 1e9);
		}
	}
	printf("step's matmuls: %.3f GFLOP, %.1f ms at these rates = %.1f "
	    "GFLOP/s, %.0f%% of peak\n", tflop / 1e9, tsec * 1e3,
	    tflop / tsec / 1e9, 100 * tflop / tsec / 1e9 / peak);
	printf("cold operands: %.1f ms = %.1f GFLOP/s, %.0f%% of peak\n",
	    tcold * 1e3, tflop / tcold / 1e9, 100 * tflop / tcold / 1e9 / peak);
	printf("{\"fma_peak_gflops\": %.1f, \"sgemm_step_gflops\": %.1f, "
	    "\"fraction\": %.3f, \"cold_gflops\": %.1f, "
	    "\"cold_fraction\": %.3f}\n", peak, tflop / tsec / 1e9,
	    tflop / tsec / 1e9 / peak, tflop / tcold / 1e9,
	    tflop / tcold / 1e9 / peak);
	free(x);
	free(w);
	free(y);
	free(dx);
	free(dw);
	free(flush_buf);
	return 0;
}
