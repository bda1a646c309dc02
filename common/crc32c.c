/*
 * crc32c.c: CRC-32C, reflected polynomial 0x82F63B78.
 */
#include <stdint.h>
#include <string.h>

#include "crc32c.h"

#define CRC32C_POLY	0x82F63B78u

static uint32_t crc_table[8][256];
static int crc_hw = -1;		/* -1: not probed yet */

static void
crc_init_table(void)
{
	uint32_t c;
	int i, j;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (j = 0; j < 8; j++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
		crc_table[0][i] = c;
	}
	for (i = 0; i < 256; i++) {
		c = crc_table[0][i];
		for (j = 1; j < 8; j++) {
			c = crc_table[0][c & 0xff] ^ (c >> 8);
			crc_table[j][i] = c;
		}
	}
}

uint32_t
crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t w;

	if (crc_table[0][1] == 0)
		crc_init_table();
	crc = ~crc;
	while (len >= 8) {
		memcpy(&w, p, 8);
		w ^= crc;
		crc = crc_table[7][w & 0xff] ^
		    crc_table[6][(w >> 8) & 0xff] ^
		    crc_table[5][(w >> 16) & 0xff] ^
		    crc_table[4][(w >> 24) & 0xff] ^
		    crc_table[3][(w >> 32) & 0xff] ^
		    crc_table[2][(w >> 40) & 0xff] ^
		    crc_table[1][(w >> 48) & 0xff] ^
		    crc_table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__)
/*
 * The crc32 instruction has a latency of 3 cycles and a throughput of 1:
 * one dependent stream uses a third of it.  So long buffers run as three
 * independent streams over consecutive blocks of CRC_STREAM bytes, and
 * the three registers are combined.  With R(s, d) the raw register after
 * data d from register s (no inversions), R is affine in s:
 *
 *   R(s, A || B) = Z_|B|(R(s, A)) ^ R(0, B)
 *
 * where Z_n, "advance through n zero bytes", is linear over GF(2), so it
 * is four byte-indexed tables.  Z_L and Z_2L are built once, with the
 * instruction itself, at load time.
 */
#define CRC_STREAM	1024	/* bytes per stream per round */

static uint32_t crc_zl[4][256];		/* Z_{CRC_STREAM} */
static uint32_t crc_z2l[4][256];	/* Z_{2 CRC_STREAM} */

__attribute__((target("sse4.2"))) static uint32_t
crc_zeros(uint32_t v, size_t n)
{
	uint64_t c = v;

	for (size_t i = 0; i < n; i += 8)
		c = __builtin_ia32_crc32di(c, 0);
	return (uint32_t)c;
}

static inline uint32_t
crc_shift(const uint32_t t[4][256], uint32_t v)
{
	return t[0][v & 0xff] ^ t[1][(v >> 8) & 0xff] ^
	    t[2][(v >> 16) & 0xff] ^ t[3][v >> 24];
}

__attribute__((constructor)) static void
crc_init_hw(void)
{
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
	if (!crc_hw)
		return;
	for (int k = 0; k < 4; k++)
		for (uint32_t b = 0; b < 256; b++) {
			crc_zl[k][b] = crc_zeros(b << (8 * k), CRC_STREAM);
			crc_z2l[k][b] = crc_zeros(b << (8 * k),
			    2 * CRC_STREAM);
		}
}

__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t c = ~crc, w, w1, w2;

	while (len >= 3 * CRC_STREAM) {
		uint64_t c1 = 0, c2 = 0;

		for (size_t i = 0; i < CRC_STREAM; i += 8) {
			memcpy(&w, p + i, 8);
			memcpy(&w1, p + CRC_STREAM + i, 8);
			memcpy(&w2, p + 2 * CRC_STREAM + i, 8);
			c = __builtin_ia32_crc32di(c, w);
			c1 = __builtin_ia32_crc32di(c1, w1);
			c2 = __builtin_ia32_crc32di(c2, w2);
		}
		c = crc_shift(crc_z2l, (uint32_t)c) ^
		    crc_shift(crc_zl, (uint32_t)c1) ^ (uint32_t)c2;
		p += 3 * CRC_STREAM;
		len -= 3 * CRC_STREAM;
	}
	while (len >= 8) {
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#endif

uint32_t
crc32c(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__)
	if (crc_hw < 0)		/* called before constructors ran */
		crc_init_hw();
	if (crc_hw)
		return crc32c_hw(crc, buf, len);
#endif
	return crc32c_sw(crc, buf, len);
}
