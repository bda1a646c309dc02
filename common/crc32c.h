/*
 * crc32c.h: CRC-32C (Castagnoli), the checksum of wire headers and
 * checkpoint files.  Uses the SSE4.2 crc32 instruction when the CPU has it,
 * a slicing table otherwise; both give the same values.
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

/* The portable table version, for tests against the hardware path. */
uint32_t	crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif /* ARC_CRC32C_H */
