/*
 * sgemm_probe.c: the GFLOP/s that raw dnnl_sgemm reaches on the matmul
 * shapes of one training step of a GPT (forward and both backward
 * products of every linear layer and of the tied head), so that
 * bench/compute can put the whole step's rate beside it.
 *
 * usage: sgemm_probe L C T B THREADS
 * prints: {"sgemm_gflops": X, "matmul_flops_per_step": F}
 * (F / X is the time a step's matmuls take at raw dnnl_sgemm speed: no
 * step on this machine can be shorter, whatever else it fuses.)
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <oneapi/dnnl/dnnl.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* out[M,N] = a[M,K] . b[N,K]^T and the two backward products, with the
 * betas of kern_dnnl (the data gradient is overwritten) */
static double
gemm3(float *a, float *b, float *c, float *da, float *db, int M, int K,
    int N)
{
	dnnl_sgemm('N', 'T', M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
	dnnl_sgemm('N', 'N', M, K, N, 1.0f, c, N, b, K, 0.0f, da, K);
	dnnl_sgemm('T', 'N', N, K, M, 1.0f, c, N, a, K, 1.0f, db, K);
	return 3.0 * 2.0 * M * K * N;
}

int
main(int argc, char **argv)
{
	int L, C, T, B, th, N, shapes[5][2];
	float *a, *b, *c, *da, *db;
	double flops = 0, best = 1e30;

	if (argc != 6) {
		fprintf(stderr, "usage: sgemm_probe L C T B THREADS\n");
		return 2;
	}
	L = atoi(argv[1]);
	C = atoi(argv[2]);
	T = atoi(argv[3]);
	B = atoi(argv[4]);
	th = atoi(argv[5]);
	if (L < 1 || C < 1 || T < 1 || B < 1 || th < 1) {
		fprintf(stderr, "sgemm_probe: arguments must be positive\n");
		return 2;
	}
	omp_set_num_threads(th);
	N = B * T;
	/* (K, N) of each product: qkv, attproj, fc, fcproj, head */
	int tmp[5][2] = { { C, 3 * C }, { C, C }, { C, 4 * C }, { 4 * C, C },
	    { C, 256 } };
	for (int i = 0; i < 5; i++) {
		shapes[i][0] = tmp[i][0];
		shapes[i][1] = tmp[i][1];
	}
	size_t big = (size_t)N * 4 * C + (size_t)N * 256;
	a = calloc(big, sizeof(float));
	b = calloc((size_t)16 * C * C + 256 * (size_t)C, sizeof(float));
	c = calloc(big, sizeof(float));
	da = calloc(big, sizeof(float));
	db = calloc((size_t)16 * C * C + 256 * (size_t)C, sizeof(float));
	if (!a || !b || !c || !da || !db)
		return 1;
	/*
	 * Real data in the inputs: calloc'ed pages never written all map
	 * the kernel's one zero page, which stays in cache and in the TLB
	 * and made the probe optimistic.
	 */
	for (size_t i = 0; i < big; i++)
		a[i] = 0.001f * (float)(i % 17);
	for (size_t i = 0; i < (size_t)16 * C * C + 256 * (size_t)C; i++)
		b[i] = 0.001f * (float)(i % 13);
	/* the best of at least 7 passes and 3 seconds: a shared machine */
	double start = now();
	for (int rep = 0; rep < 7 || now() - start < 3.0; rep++) {
		double t0 = now(), f = 0;

		for (int l = 0; l < L; l++)
			for (int s = 0; s < 4; s++)
				f += gemm3(a, b, c, da, db, N, shapes[s][0],
				    shapes[s][1]);
		f += gemm3(a, b, c, da, db, N, shapes[4][0], shapes[4][1]);
		double t = now() - t0;
		if (t < best)
			best = t;
		flops = f;
	}
	printf("{\"sgemm_gflops\": %.2f, \"matmul_flops_per_step\": %.0f}\n",
	    flops / best / 1e9, flops);
	return 0;
}
