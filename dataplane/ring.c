/*
 * ring.c: single-producer single-consumer rings in shared memory; see
 * ring.h and dp_abi.h.
 *
 * The producer writes the entry, then publishes prod with release order;
 * the consumer reads prod with acquire order, copies the entry, then
 * publishes cons with release order.  Indexes run free and wrap at 2^32;
 * prod - cons is the fill level and must never exceed the size.
 */
#include <errno.h>
#include <string.h>

#include "ring.h"

void
ring_format(void *mem, uint32_t slots, uint32_t esize)
{
	struct dp_ring_hdr *h = mem;

	memset(h, 0, sizeof(*h));
	h->slots = slots;
	h->esize = esize;
}

int
ring_attach(struct ring *r, void *mem, uint32_t slots, uint32_t esize,
    int producer)
{
	if (slots == 0 || (slots & (slots - 1)) != 0 || esize == 0)
		return -EINVAL;
	r->h = mem;
	r->slots = (uint8_t *)mem + sizeof(struct dp_ring_hdr);
	r->size = slots;
	r->mask = slots - 1;
	r->esize = esize;
	if (producer)
		r->local = __atomic_load_n(&r->h->prod, __ATOMIC_RELAXED);
	else
		r->local = __atomic_load_n(&r->h->cons, __ATOMIC_RELAXED);
	return 0;
}

int
ring_enqueue(struct ring *r, const void *e)
{
	uint32_t cons = __atomic_load_n(&r->h->cons, __ATOMIC_ACQUIRE);
	uint32_t used = r->local - cons;

	if (used > r->size)
		return -EBADMSG;
	if (used == r->size)
		return -ENOBUFS;
	memcpy(r->slots + (size_t)(r->local & r->mask) * r->esize, e,
	    r->esize);
	r->local++;
	__atomic_store_n(&r->h->prod, r->local, __ATOMIC_RELEASE);
	return 0;
}

int
ring_dequeue(struct ring *r, void *e)
{
	uint32_t prod = __atomic_load_n(&r->h->prod, __ATOMIC_ACQUIRE);
	uint32_t used = prod - r->local;

	if (used > r->size)
		return -EBADMSG;
	if (used == 0)
		return 0;
	memcpy(e, r->slots + (size_t)(r->local & r->mask) * r->esize,
	    r->esize);
	r->local++;
	__atomic_store_n(&r->h->cons, r->local, __ATOMIC_RELEASE);
	return 1;
}

int
ring_count(const struct ring *r)
{
	uint32_t prod = __atomic_load_n(&r->h->prod, __ATOMIC_ACQUIRE);
	uint32_t cons = __atomic_load_n(&r->h->cons, __ATOMIC_ACQUIRE);

	if (prod - cons > r->size)
		return -EBADMSG;
	return (int)(prod - cons);
}
