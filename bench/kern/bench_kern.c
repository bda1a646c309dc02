/*
 * bench_kern.c: each kernel of kern_dnnl against its scalar reference,
 * flash attention against the naive one, and the matmuls' GFLOP/s against
 * raw dnnl_sgemm, at the two benchmark shapes of issue 2:
 *   tiny   B=12 T=64  C=128 NH=4
 *   large  B=12 T=256 C=384 NH=6
 * Prints ratios (the machines are shared and noisy: trust ratios from one
 * run, not absolute times).  Each time is the fastest of repeated calls.
 *
 *	bench_kern [-t threads] [-s tiny|large] [-q]
 *
 * -q: quick (shorter timing windows).  Slow reference matmuls at the
 * large shape are timed on a slice of the rows and scaled (matmul time is
 * linear in N); the output marks them with '~'.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <omp.h>

#include <dnnl.h>

#include "../../compute/compute.h"

static double min_time = 0.3;	/* seconds per measurement */

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *
rnd(size_t n, float scale)
{
	float *p = malloc(sizeof(float) * n);
	uint64_t s = 0x9e3779b97f4a7c15ULL ^ n;

	if (p == NULL) {
		perror("malloc");
		exit(1);
	}
	for (size_t i = 0; i < n; i++) {
		s ^= s >> 12;
		s ^= s << 25;
		s ^= s >> 27;
		p[i] = scale * ((float)((s * 0x2545F4914F6CDD1DULL) >> 40) /
		    (float)(1 << 23) - 1.0f);
	}
	return p;
}

/*
 * Seconds per call: one warm-up, then calls until `budget` has passed;
 * the fastest call counts (on a shared machine the minimum is the run
 * that other processes disturbed least).
 */
static double
timeit(void (*fn)(void *), void *arg, double budget)
{
	double t0, t1, best = 1e30, start;

	fn(arg);
	start = now();
	do {
		t0 = now();
		fn(arg);
		t1 = now();
		if (t1 - t0 < best)
			best = t1 - t0;
	} while (t1 - start < budget);
	return best;
}

/* ---------------- the shapes of one benchmark model ---------------- */
struct model {
	const char	*name;
	int		 B, T, C, NH;
};

static const struct model models[] = {
	{ "tiny", 12, 64, 128, 4 },
	{ "large", 12, 256, 384, 6 },
};

/* ---------------- op closures ---------------- */
struct mm_args {
	const struct kern_ops	*k;
	float	*out, *inp, *w, *bias, *dout, *dinp, *dw, *dbias;
	int	 N, C, OC;
};

static void
run_mm_fwd(void *a)
{
	struct mm_args *m = a;

	m->k->matmul_fwd(m->out, m->inp, m->w, m->bias, m->N, m->C, m->OC,
	    0);
}

static void
run_mm_bwd(void *a)
{
	struct mm_args *m = a;

	m->k->matmul_bwd(m->dinp, m->dw, m->dbias, m->dout, m->inp, m->w,
	    m->N, m->C, m->OC, 1);
}

/* raw sgemm: the same three products, no bias work */
static void
run_sgemm_fwd(void *a)
{
	struct mm_args *m = a;

	dnnl_sgemm('N', 'T', m->N, m->OC, m->C, 1.0f, m->inp, m->C, m->w,
	    m->C, 0.0f, m->out, m->OC);
}

static void
run_sgemm_bwd(void *a)
{
	struct mm_args *m = a;

	dnnl_sgemm('N', 'N', m->N, m->C, m->OC, 1.0f, m->dout, m->OC, m->w,
	    m->C, 1.0f, m->dinp, m->C);
	dnnl_sgemm('T', 'N', m->OC, m->C, m->N, 1.0f, m->dout, m->OC, m->inp,
	    m->C, 1.0f, m->dw, m->C);
}

struct nc_args {
	const struct kern_ops	*k;
	float	*out, *inp, *w, *b, *mean, *rstd, *dout, *dinp, *dw, *db;
	int	 N, C;
};

static void
run_ln_fwd(void *a)
{
	struct nc_args *m = a;

	m->k->layernorm_fwd(m->out, m->mean, m->rstd, m->inp, m->w, m->b,
	    m->N, m->C);
}

static void
run_ln_bwd(void *a)
{
	struct nc_args *m = a;

	m->k->layernorm_bwd(m->dinp, m->dw, m->db, m->dout, m->inp, m->w,
	    m->mean, m->rstd, m->N, m->C);
}

static void
run_gelu_fwd(void *a)
{
	struct nc_args *m = a;

	m->k->gelu_fwd(m->out, m->inp, NULL, m->N, m->C);
}

static void
run_gelu_bwd(void *a)
{
	struct nc_args *m = a;

	m->k->gelu_bwd(m->dinp, NULL, m->inp, m->dout, m->N, m->C, 0);
}

static void
run_softmax(void *a)
{
	struct nc_args *m = a;

	m->k->softmax_fwd(m->out, m->inp, m->N, m->C);
}

struct at_args {
	const struct kern_ops	*k;
	float	*qkv, *out, *lse, *dout, *dqkv;
	int	 B, T, C, NH;
};

static void
run_attn_fwd(void *a)
{
	struct at_args *m = a;

	m->k->attn_fwd(m->out, m->lse, m->qkv, m->B, m->T, m->C, m->NH);
}

static void
run_attn_bwd(void *a)
{
	struct at_args *m = a;

	m->k->attn_bwd(m->dqkv, m->dout, m->qkv, m->out, m->lse, m->B, m->T,
	    m->C, m->NH);
}

/* ---------------- reports ---------------- */
static void
row(const char *op, const char *shape, double tref, int approx, double tfast)
{
	printf("  %-14s %-22s ref %9.3f ms%c  dnnl %8.3f ms  x%7.1f\n", op,
	    shape, tref * 1e3, approx ? '~' : ' ', tfast * 1e3, tref / tfast);
}

static void
bench_matmul(const char *what, int N, int C, int OC)
{
	struct mm_args r, d;
	char shape[48];
	double tr, td, ts, trb, tdb, tsb, flops = 2.0 * N * C * OC;
	int Nr = N;

	memset(&d, 0, sizeof(d));
	d.N = N;
	d.C = C;
	d.OC = OC;
	d.inp = rnd((size_t)N * C, 1);
	d.w = rnd((size_t)OC * C, 0.1f);
	d.bias = rnd(OC, 0.1f);
	d.dout = rnd((size_t)N * OC, 1);
	d.out = rnd((size_t)N * OC, 1);
	d.dinp = rnd((size_t)N * C, 1);
	d.dw = rnd((size_t)OC * C, 1);
	d.dbias = rnd(OC, 1);
	d.k = &kern_dnnl_ops;
	r = d;
	r.k = &kern_ref_ops;
	/* the reference on at most ~50 MFLOP of rows, scaled to N */
	while ((double)Nr * C * OC > 25e6 && Nr > 8)
		Nr /= 2;
	r.N = Nr;
	snprintf(shape, sizeof(shape), "%dx%dx%d", N, C, OC);
	tr = timeit(run_mm_fwd, &r, min_time / 3) * N / Nr;
	td = timeit(run_mm_fwd, &d, min_time);
	ts = timeit(run_sgemm_fwd, &d, min_time);
	trb = timeit(run_mm_bwd, &r, min_time / 3) * N / Nr;
	tdb = timeit(run_mm_bwd, &d, min_time);
	tsb = timeit(run_sgemm_bwd, &d, min_time);
	char op[32];

	snprintf(op, sizeof(op), "mm %s fwd", what);
	row(op, shape, tr, Nr != N, td);
	printf("  %-37s GFLOP/s: kern %6.1f  raw sgemm %6.1f  (%.0f%%)\n", "",
	    flops / td * 1e-9, flops / ts * 1e-9, 100 * ts / td);
	snprintf(op, sizeof(op), "mm %s bwd", what);
	row(op, shape, trb, Nr != N, tdb);
	printf("  %-37s GFLOP/s: kern %6.1f  raw sgemm %6.1f  (%.0f%%)\n", "",
	    2 * flops / tdb * 1e-9, 2 * flops / tsb * 1e-9, 100 * tsb / tdb);
	free(d.inp); free(d.w); free(d.bias); free(d.dout); free(d.out);
	free(d.dinp); free(d.dw); free(d.dbias);
}

static void
bench_nc(int N, int C, int V)
{
	struct nc_args r, d;
	char shape[48];
	size_t big = (size_t)N * 4 * C > (size_t)N * V ? (size_t)N * 4 * C :
	    (size_t)N * V;

	memset(&d, 0, sizeof(d));
	d.inp = rnd(big, 2);
	d.out = rnd(big, 1);
	d.dout = rnd(big, 1);
	d.dinp = rnd(big, 1);
	d.w = rnd(C, 1);
	d.b = rnd(C, 1);
	d.mean = rnd(N, 1);
	d.rstd = rnd(N, 1);
	d.dw = rnd(C, 1);
	d.db = rnd(C, 1);
	d.N = N;
	d.C = C;
	d.k = &kern_dnnl_ops;
	r = d;
	r.k = &kern_ref_ops;
	/* real statistics for the backward */
	kern_ref_ops.layernorm_fwd(d.out, d.mean, d.rstd, d.inp, d.w, d.b, N,
	    C);
	snprintf(shape, sizeof(shape), "%dx%d", N, C);
	row("layernorm fwd", shape, timeit(run_ln_fwd, &r, min_time / 3), 0,
	    timeit(run_ln_fwd, &d, min_time));
	row("layernorm bwd", shape, timeit(run_ln_bwd, &r, min_time / 3), 0,
	    timeit(run_ln_bwd, &d, min_time));
	d.C = r.C = 4 * C;
	snprintf(shape, sizeof(shape), "%d", N * 4 * C);
	row("gelu fwd", shape, timeit(run_gelu_fwd, &r, min_time / 3), 0,
	    timeit(run_gelu_fwd, &d, min_time));
	row("gelu bwd", shape, timeit(run_gelu_bwd, &r, min_time / 3), 0,
	    timeit(run_gelu_bwd, &d, min_time));
	d.C = r.C = V;
	snprintf(shape, sizeof(shape), "%dx%d", N, V);
	row("softmax fwd", shape, timeit(run_softmax, &r, min_time / 3), 0,
	    timeit(run_softmax, &d, min_time));
	free(d.inp); free(d.out); free(d.dout); free(d.dinp); free(d.w);
	free(d.b); free(d.mean); free(d.rstd); free(d.dw); free(d.db);
}

static void
bench_attn(int B, int T, int C, int NH)
{
	struct at_args r, d;
	char shape[48];
	size_t nqkv = (size_t)B * T * 3 * C;
	double tr, tf, flops;

	memset(&d, 0, sizeof(d));
	d.B = B;
	d.T = T;
	d.C = C;
	d.NH = NH;
	d.qkv = rnd(nqkv, 1);
	d.dqkv = rnd(nqkv, 1);
	d.out = rnd((size_t)B * T * C, 1);
	d.dout = rnd((size_t)B * T * C, 1);
	d.lse = rnd((size_t)B * NH * T, 1);
	d.k = &kern_dnnl_ops;
	r = d;
	r.k = &kern_ref_ops;
	/* causal: T(T+1)/2 scores, 2 products of hs each in forward */
	flops = 4.0 * B * NH * (T * (T + 1.0) / 2) * (C / NH);
	snprintf(shape, sizeof(shape), "B%d T%d C%d NH%d", B, T, C, NH);
	tr = timeit(run_attn_fwd, &r, min_time / 3);
	tf = timeit(run_attn_fwd, &d, min_time);
	row("attn fwd", shape, tr, 0, tf);
	printf("  %-37s flash GFLOP/s %.1f\n", "", flops / tf * 1e-9);
	tr = timeit(run_attn_bwd, &r, min_time / 3);
	tf = timeit(run_attn_bwd, &d, min_time);
	row("attn bwd", shape, tr, 0, tf);
	printf("  %-37s flash GFLOP/s %.1f\n", "", 2 * flops / tf * 1e-9);
	free(d.qkv); free(d.dqkv); free(d.out); free(d.dout); free(d.lse);
}

int
main(int argc, char **argv)
{
	const char *only = NULL;
	int threads = 0, ch;

	while ((ch = getopt(argc, argv, "t:s:q")) != -1) {
		switch (ch) {
		case 't':
			threads = atoi(optarg);
			break;
		case 's':
			only = optarg;
			break;
		case 'q':
			min_time = 0.1;
			break;
		default:
			fprintf(stderr, "usage: bench_kern [-t threads] "
			    "[-s tiny|large] [-q]\n");
			return 2;
		}
	}
	kern_set_threads(threads);
	printf("bench_kern: %d thread(s); ratio = ref time / dnnl time\n",
	    omp_get_max_threads());
	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		const struct model *m = &models[i];
		int N = m->B * m->T, C = m->C;

		if (only != NULL && strcmp(only, m->name) != 0)
			continue;
		printf("%s: B=%d T=%d C=%d NH=%d (N=%d)\n", m->name, m->B, m->T,
		    C, m->NH, N);
		bench_matmul("qkv", N, C, 3 * C);
		bench_matmul("attproj", N, C, C);
		bench_matmul("fc", N, C, 4 * C);
		bench_matmul("fcproj", N, 4 * C, C);
		bench_matmul("lmhead", N, C, GPT_VOCAB);
		bench_nc(N, C, GPT_VOCAB);
		bench_attn(m->B, m->T, C, m->NH);
	}
	kern_dnnl_fini();
	return 0;
}
