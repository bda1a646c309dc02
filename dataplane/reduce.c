/*
 * reduce.c: the reduction kernels of the collectives, each with its scalar
 * reference next to it (tests/unit/check_reduce.c compares them).
 *
 * The vector versions use GCC vector extensions, so that they build for
 * any -march (AVX-512 with -march=native here, SSE under valgrind) and
 * keep the element order and rounding of the references: every output is
 * one IEEE add or divide of the same two operands, so vector and scalar
 * results are bitwise equal.
 */
#include <string.h>

#include "dataplane.h"

typedef float	v16f __attribute__((vector_size(64), aligned(4), may_alias));

void
reduce_sum_f32(float *restrict dst, const float *restrict src, size_t n)
{
	size_t i = 0;

	for (; i + 64 <= n; i += 64) {
		v16f a0, a1, a2, a3, b0, b1, b2, b3;

		memcpy(&a0, dst + i, 64);
		memcpy(&a1, dst + i + 16, 64);
		memcpy(&a2, dst + i + 32, 64);
		memcpy(&a3, dst + i + 48, 64);
		memcpy(&b0, src + i, 64);
		memcpy(&b1, src + i + 16, 64);
		memcpy(&b2, src + i + 32, 64);
		memcpy(&b3, src + i + 48, 64);
		a0 += b0;
		a1 += b1;
		a2 += b2;
		a3 += b3;
		memcpy(dst + i, &a0, 64);
		memcpy(dst + i + 16, &a1, 64);
		memcpy(dst + i + 32, &a2, 64);
		memcpy(dst + i + 48, &a3, 64);
	}
	for (; i < n; i++) {
		float s;

		memcpy(&s, src + i, sizeof(s));	/* src may sit at any byte */
		dst[i] += s;
	}
}

void
reduce_sum_f32_ref(float *dst, const float *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = dst[i] + src[i];
}

void
reduce_div_f32(float *dst, size_t n, float divisor)
{
	size_t i = 0;
	v16f d = { 0 };

	d += divisor;
	for (; i + 16 <= n; i += 16) {
		v16f a;

		memcpy(&a, dst + i, 64);
		a /= d;
		memcpy(dst + i, &a, 64);
	}
	for (; i < n; i++)
		dst[i] /= divisor;
}

void
reduce_div_f32_ref(float *dst, size_t n, float divisor)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = dst[i] / divisor;
}
