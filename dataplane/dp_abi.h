/*
 * dp_abi.h: the layout of the arena shared by arceus-dataplane and its
 * workers.  Types only.  Everything here holds offsets from the start of
 * the arena and sizes, never pointers: the two sides map it at different
 * addresses.
 *
 *   0                  struct dp_arena_hdr (one page)
 *   DP_RINGS_OFF       per worker slot: request ring, completion ring
 *   DP_HEAP_OFF        tensor regions, one per attached worker
 *
 * Rings are single-producer single-consumer (rte_ring style): power-of-two
 * slots, free-running 32-bit indexes, producer and consumer index on their
 * own cache lines.  The worker produces requests and consumes completions;
 * the dataplane does the reverse.  An eventfd per direction is the doorbell.
 * The dataplane trusts nothing a worker writes here: indexes are checked
 * against its own copy of the ring size, offsets against the worker's region.
 */
#ifndef ARC_DP_ABI_H
#define ARC_DP_ABI_H

#include <assert.h>
#include <stdint.h>

#define DP_ARENA_MAGIC		0x41524341u	/* "ARCA" */
#define DP_ARENA_VERSION	1
#define DP_RING_SLOTS		256	/* entries per ring, power of two */
#define DP_MAX_WORKERS		16	/* ring pairs in an arena */
#define DP_ALIGN		64	/* tensors and ring entries */
#define DP_NO_OFF		UINT64_MAX	/* "no buffer" */

struct dp_ring_hdr {
	uint32_t	prod;		/* written by the producer only */
	uint8_t		pad0[60];
	uint32_t	cons;		/* written by the consumer only */
	uint8_t		pad1[60];
	uint32_t	slots;		/* informational: set by the dataplane */
	uint32_t	esize;
	uint8_t		pad2[56];
	/* slots * esize bytes of entries follow */
};
static_assert(sizeof(struct dp_ring_hdr) == 192, "ring header size");

#define DP_RING_BYTES(slots, esize)	(192u + (uint64_t)(slots) * (esize))

/* Worker -> dataplane: one operation. */
struct dp_req {
	uint64_t	id;		/* worker's operation id */
	uint8_t		opcode;		/* enum arc_dp_opcode */
	uint8_t		comp;		/* enum arc_dp_comp */
	uint16_t	group;
	uint32_t	peer;		/* send/recv peer, broadcast root */
	float		divisor;
	float		ratio;
	uint64_t	off;		/* buffer, from the arena start */
	uint64_t	count;		/* fp32 values */
	uint64_t	aux_off;	/* residual or DP_NO_OFF */
	/*
	 * The epoch the worker's plan belongs to (0: any).  An operation of
	 * another epoch than the dataplane's fails with -ESTALE before it
	 * moves a byte: a worker of an old plan never trains on with peers
	 * of a new one (it would leave the new plan's members waiting).
	 */
	uint32_t	epoch;
	uint32_t	rsv32;
	uint64_t	rsv;
};
static_assert(sizeof(struct dp_req) == 64, "dp_req size");

/* Dataplane -> worker: one completion. */
struct dp_cpl {
	uint64_t	id;
	int32_t		status;		/* 0 or -errno */
	uint32_t	peer;
	uint64_t	wire_bytes;
	uint64_t	raw_bytes;
	uint64_t	count;
	uint64_t	usec;
	uint64_t	rsv[2];
};
static_assert(sizeof(struct dp_cpl) == 64, "dp_cpl size");

struct dp_arena_hdr {
	uint32_t	magic;
	uint32_t	version;
	uint64_t	size;
	uint64_t	boot_id;	/* changes at each dataplane start */
	uint32_t	nslots;
	uint32_t	ring_slots;
	uint64_t	rings_off;
	uint64_t	heap_off;
};

#define DP_SLOT_BYTES	(2 * DP_RING_BYTES(DP_RING_SLOTS, 64))
#define DP_RINGS_OFF	4096u
#define DP_HEAP_OFF	((DP_RINGS_OFF + DP_MAX_WORKERS * DP_SLOT_BYTES + \
			    4095) & ~(uint64_t)4095)

#endif /* ARC_DP_ABI_H */
