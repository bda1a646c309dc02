/*
 * profile.c: this node's profile: cores, memory and a short GEMM probe
 * (oneDNN sgemm, 512^3, best of a few, one thread per core).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include <oneapi/dnnl/dnnl.h>

#include "control.h"

#define PROBE_N		512
#define PROBE_REPS	4

void
profile_measure(struct profile *p, int probe)
{
	struct sysinfo si;
	float *a, *b, *c;
	double best = 0.0;

	memset(p, 0, sizeof(*p));
	p->cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (sysinfo(&si) == 0)
		p->mem_bytes = (double)si.totalram * si.mem_unit;
	if (!probe)
		return;
	a = calloc(PROBE_N * PROBE_N, sizeof(float));
	b = calloc(PROBE_N * PROBE_N, sizeof(float));
	c = calloc(PROBE_N * PROBE_N, sizeof(float));
	if (a == NULL || b == NULL || c == NULL)
		goto out;
	for (int i = 0; i < PROBE_N * PROBE_N; i++) {
		a[i] = (float)(i % 13) * 0.01f;
		b[i] = (float)(i % 7) * 0.02f;
	}
	for (int r = 0; r < PROBE_REPS; r++) {
		struct timespec t0, t1;
		double s;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (dnnl_sgemm('N', 'N', PROBE_N, PROBE_N, PROBE_N, 1.0f, a,
		    PROBE_N, b, PROBE_N, 0.0f, c, PROBE_N) != dnnl_success)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
		if (s > 0 && 2.0 * PROBE_N * PROBE_N * PROBE_N / s / 1e9 > best)
			best = 2.0 * PROBE_N * PROBE_N * PROBE_N / s / 1e9;
	}
	p->gflops = best;
out:
	free(a);
	free(b);
	free(c);
}
