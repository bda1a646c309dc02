/*
 * crc32c.h: CRC-32C (Castagnoli), the checksum of wire headers and
 * checkpoint files.  Folds with VPCLMULQDQ when the CPU has it (long
 * buffers), else uses the SSE4.2 crc32 instruction, else a slicing table;
 * all give the same values.
 */
#ifndef ARC_CRC32C_H
#define ARC_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Extends crc over len bytes.  Start with crc = 0; feeding a buffer in
 * pieces gives the same result as feeding it whole.
 */
uint32_t	crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * Copies len bytes from src to dst (not overlapping) and extends crc over
 * them, in one pass where the folding path runs (each block summed as it
 * is loaded for the store), else a copy then a sum of dst.
 */
uint32_t	crc32c_copy(uint32_t crc, void *dst, const void *src,
		    size_t len);

/* The crc32-instruction version (the table one without SSE4.2), for
 * tests against the folding path crc32c() takes on long buffers. */
uint32_t	crc32c_nofold(uint32_t crc, const void *buf, size_t len);

/* The portable table version, for tests against the hardware path. */
uint32_t	crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif /* ARC_CRC32C_H */
