/*
 * ring.h: the SPSC rings of the arena (layout in dp_abi.h), used by both
 * the dataplane and libarceus-dp.
 *
 * A struct ring is one side's private view: the sizes come from that
 * side, not from shared memory, and each side keeps its own copy of the
 * index it writes, so a corrupt or hostile peer can make a ring report
 * -EBADMSG but never make us read or write outside it.  Entries are
 * copied in and out, so the peer cannot change one while we read it.
 */
#ifndef ARC_DP_RING_H
#define ARC_DP_RING_H

#include <stdint.h>

#include "dp_abi.h"

struct ring {
	struct dp_ring_hdr	*h;	/* in shared memory */
	uint8_t			*slots;
	uint32_t		 size;	/* power of two */
	uint32_t		 mask;
	uint32_t		 esize;
	uint32_t		 local;	/* our copy of the index we write */
};

/* Writes an empty ring header at mem (the creator's side, once). */
void	ring_format(void *mem, uint32_t slots, uint32_t esize);
/*
 * Makes a view of the ring at mem.  producer: 1 if this side produces.
 * @return 0, or -EINVAL if slots is not a power of two.
 */
int	ring_attach(struct ring *r, void *mem, uint32_t slots, uint32_t esize,
	    int producer);
/* Copies one entry in and publishes it. @return 0, -ENOBUFS, -EBADMSG */
int	ring_enqueue(struct ring *r, const void *e);
/* Copies the oldest entry out. @return 1, 0 if empty, or -EBADMSG */
int	ring_dequeue(struct ring *r, void *e);
/* Entries waiting, as seen by this side; -EBADMSG if indexes are bad. */
int	ring_count(const struct ring *r);

#endif /* ARC_DP_RING_H */
