/*
 * rng.c: xoroshiro128+ seeded by splitmix64.  Small, fast, and its whole
 * state is two words, saved in checkpoints so that resume is bit-exact.
 */
#include <math.h>
#include <stdint.h>

#include "compute.h"

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

void
rng_seed(struct rng *r, uint64_t seed)
{
	r->s[0] = splitmix64(&seed);
	r->s[1] = splitmix64(&seed);
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t
rng_u64(struct rng *r)
{
	uint64_t s0 = r->s[0], s1 = r->s[1], res = s0 + s1;

	s1 ^= s0;
	r->s[0] = rotl(s0, 24) ^ s1 ^ (s1 << 16);
	r->s[1] = rotl(s1, 37);
	return res;
}

float
rng_uniform(struct rng *r)
{
	return (float)(rng_u64(r) >> 40) / 16777216.0f;
}

float
rng_normal(struct rng *r)
{
	/* Box-Muller; u1 in (0, 1] so the log is finite */
	double u1 = ((double)(rng_u64(r) >> 11) + 1.0) / 9007199254740992.0;
	double u2 = (double)(rng_u64(r) >> 11) / 9007199254740992.0;

	return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

uint64_t
rng_below(struct rng *r, uint64_t n)
{
	/* Lemire's multiply-shift with rejection: no modulo bias */
	unsigned __int128 m = (unsigned __int128)rng_u64(r) * n;
	uint64_t l = (uint64_t)m;

	if (l < n) {
		uint64_t t = -n % n;

		while (l < t) {
			m = (unsigned __int128)rng_u64(r) * n;
			l = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}
