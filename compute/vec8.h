/*
 * vec8.h: 8-lane float vectors for the hand-written kernels (attn.c,
 * kern_vec.c): loads, stores, select, max and a vector exp.  Private to
 * compute/; files that include it build with -Wno-psabi (compute/build.mk).
 */
#ifndef ARCEUS_VEC8_H
#define ARCEUS_VEC8_H

#include <stdint.h>
#include <string.h>

/*
 * 8-lane vectors (GCC vector extensions): AVX2 registers here, two SSE
 * registers each where AVX is off (the valgrind build).  All functions
 * taking them are static inline in the files that include this, so the
 * psABI note GCC gives for 256-bit arguments without AVX does not apply.
 */
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float v8sf __attribute__((vector_size(32)));

static inline v8sf
v8_load(const float *p)
{
	v8sf v;

	memcpy(&v, p, sizeof(v));	/* unaligned load */
	return v;
}

static inline void
v8_store(float *p, v8sf v)
{
	memcpy(p, &v, sizeof(v));
}

typedef int32_t v8si __attribute__((vector_size(32)));

/*
 * Pins a vector in a register (keeps GCC from folding its load into each
 * use).  Without AVX a 256-bit vector is two SSE registers and the hint
 * is left out.
 */
#if defined(__AVX__)
#define V8_PIN(v)	__asm__("" : "+x"(v))
#else
#define V8_PIN(v)	do { } while (0)
#endif

/* lanes where mask is set take a, others b (masks are 0 or -1) */
static inline v8sf
v8_select(v8si mask, v8sf a, v8sf b)
{
	return (v8sf)(((v8si)a & mask) | ((v8si)b & ~mask));
}

static inline v8sf
v8_max(v8sf a, v8sf b)
{
	return v8_select(a > b, a, b);
}

/*
 * exp(x) for x <= 0 on 8 lanes, without libm (so it stays in vector
 * registers): x = n ln2 + r with |r| <= ln2/2 (Cody-Waite split of ln2),
 * e^r by its degree-6 Taylor polynomial (relative error < 2e-7), 2^n
 * built in the exponent bits.  n is rounded to nearest by the 1.5 * 2^23
 * trick.  Inputs below -87 are clamped (result ~1e-38, never a denormal;
 * -inf gives ~1e-38 too): callers zero masked lanes themselves.
 */
static inline v8sf
v8_exp(v8sf x)
{
	const float magic = 12582912.0f;	/* 1.5 * 2^23 */
	const v8sf lo = { -87.0f, -87.0f, -87.0f, -87.0f, -87.0f, -87.0f,
	    -87.0f, -87.0f };
	v8sf t, n, r, p;
	v8si e;

	x = v8_select(x < lo, lo, x);
	t = x * 1.4426950408889634f + magic;
	n = t - magic;
	r = x - n * 0.693145751953125f;
	r = r - n * 1.428606765330187e-06f;
	p = r * (1.0f / 720) + 1.0f / 120;
	p = p * r + 1.0f / 24;
	p = p * r + 1.0f / 6;
	p = p * r + 0.5f;
	p = p * r + 1.0f;
	p = p * r + 1.0f;
	e = (__builtin_convertvector(n, v8si) + 127) << 23;
	return p * (v8sf)e;
}

#endif /* ARCEUS_VEC8_H */
