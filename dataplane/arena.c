/*
 * arena.c: the shared memory the dataplane hands to its workers (layout in
 * dp_abi.h).
 *
 * One memfd, hugetlb when the system has huge pages reserved, plain pages
 * otherwise.  It is sealed against shrinking and growing, so that a worker
 * holding the fd cannot truncate it under the dataplane (which would turn
 * the dataplane's next access into SIGBUS).  Each attached worker gets a
 * ring slot and a region of the heap (first fit); a region given back is
 * punched out of the file, so its pages return to the system and the next
 * worker starts on zeros.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "dataplane.h"

#define HUGE_2M		(2u << 20)

static int
arena_map(struct arena *a, uint64_t size, int huge)
{
	unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;

	if (huge)
		flags |= MFD_HUGETLB;
	if ((a->fd = memfd_create("arceus-arena", flags)) < 0)
		return -errno;
	if (ftruncate(a->fd, (off_t)size) < 0)
		goto fail;
	a->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, a->fd,
	    0);
	if (a->base == MAP_FAILED)
		goto fail;
	/* hugetlb memfds refuse some seals; the size is what matters */
	if (fcntl(a->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_SEAL) < 0 && !huge) {
		munmap(a->base, size);
		goto fail;
	}
	a->size = size;
	a->hugetlb = huge;
	return 0;
fail:
	{
		int e = -errno;

		close(a->fd);
		a->fd = -1;
		return e;
	}
}

int
arena_init(struct arena *a, uint64_t size, uint64_t boot_id)
{
	struct dp_arena_hdr *h;
	int r;

	memset(a, 0, sizeof(*a));
	a->fd = -1;
	size = (size + HUGE_2M - 1) & ~(uint64_t)(HUGE_2M - 1);
	if (size < DP_HEAP_OFF + HUGE_2M)
		return -EINVAL;
	if ((r = arena_map(a, size, 1)) < 0) {
		log_debugx("dp.arena: no hugetlb arena (%s), plain pages",
		    strerror(-r));
		if ((r = arena_map(a, size, 0)) < 0)
			return r;
	}
	h = (struct dp_arena_hdr *)a->base;
	h->magic = DP_ARENA_MAGIC;
	h->version = DP_ARENA_VERSION;
	h->size = size;
	h->boot_id = boot_id;
	h->nslots = DP_MAX_WORKERS;
	h->ring_slots = DP_RING_SLOTS;
	h->rings_off = DP_RINGS_OFF;
	h->heap_off = DP_HEAP_OFF;
	a->regions[0] = (struct arena_region){ DP_HEAP_OFF,
	    size - DP_HEAP_OFF, 0 };
	a->nregions = 1;
	log_info("dp.arena: %llu MiB (%s pages)",
	    (unsigned long long)(size >> 20), a->hugetlb ? "huge" : "normal");
	return 0;
}

void
arena_fini(struct arena *a)
{
	if (a == NULL || a->fd < 0)
		return;
	munmap(a->base, a->size);
	close(a->fd);
	a->fd = -1;
}

uint64_t
arena_req_ring_off(int slot)
{
	return DP_RINGS_OFF + (uint64_t)slot * DP_SLOT_BYTES;
}

uint64_t
arena_cpl_ring_off(int slot)
{
	return arena_req_ring_off(slot) + DP_RING_BYTES(DP_RING_SLOTS, 64);
}

int
arena_attach(struct arena *a, uint64_t want, uint64_t *off, uint64_t *len)
{
	uint64_t align = a->hugetlb ? HUGE_2M : 4096;
	int slot, i;

	for (slot = 0; slot < DP_MAX_WORKERS; slot++)
		if (!(a->slot_used & (1u << slot)))
			break;
	if (slot == DP_MAX_WORKERS)
		return -ENOSPC;
	if (want == 0)
		want = (a->size - DP_HEAP_OFF) / 4;
	want = (want + align - 1) & ~(align - 1);
	for (i = 0; i < a->nregions; i++)
		if (!a->regions[i].used && a->regions[i].len >= want)
			break;
	if (i == a->nregions)
		return -ENOMEM;
	if (a->regions[i].len > want) {
		if (a->nregions == (int)(sizeof(a->regions) /
		    sizeof(a->regions[0])))
			return -ENOMEM;
		memmove(&a->regions[i + 2], &a->regions[i + 1],
		    sizeof(a->regions[0]) * (size_t)(a->nregions - i - 1));
		a->regions[i + 1] = (struct arena_region){
		    a->regions[i].off + want, a->regions[i].len - want, 0 };
		a->regions[i].len = want;
		a->nregions++;
	}
	a->regions[i].used = 1;
	a->slot_used |= 1u << slot;
	*off = a->regions[i].off;
	*len = a->regions[i].len;
	ring_format(a->base + arena_req_ring_off(slot), DP_RING_SLOTS,
	    sizeof(struct dp_req));
	ring_format(a->base + arena_cpl_ring_off(slot), DP_RING_SLOTS,
	    sizeof(struct dp_cpl));
	return slot;
}

void
arena_detach(struct arena *a, int slot, uint64_t off)
{
	int i;

	if (slot >= 0 && slot < DP_MAX_WORKERS)
		a->slot_used &= ~(1u << slot);
	for (i = 0; i < a->nregions; i++)
		if (a->regions[i].off == off && a->regions[i].used)
			break;
	if (i == a->nregions)
		return;
	a->regions[i].used = 0;
	/* give the pages back; the next owner sees zeros */
	fallocate(a->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	    (off_t)a->regions[i].off, (off_t)a->regions[i].len);
	/* merge with free neighbours */
	if (i + 1 < a->nregions && !a->regions[i + 1].used) {
		a->regions[i].len += a->regions[i + 1].len;
		memmove(&a->regions[i + 1], &a->regions[i + 2],
		    sizeof(a->regions[0]) * (size_t)(a->nregions - i - 2));
		a->nregions--;
	}
	if (i > 0 && !a->regions[i - 1].used) {
		a->regions[i - 1].len += a->regions[i].len;
		memmove(&a->regions[i], &a->regions[i + 1],
		    sizeof(a->regions[0]) * (size_t)(a->nregions - i - 1));
		a->nregions--;
	}
}
