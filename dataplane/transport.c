/*
 * transport.c: the table of backends built in, and what transport= in
 * arceus.conf selects.  New backends (DPDK, RDMA) add a line to backends[]
 * in order of preference; `auto` tries them in that order.
 */
#include <stdio.h>
#include <string.h>

#include "dataplane.h"

static const struct tp_ops *const backends[] = {
	/* fastest first: &tp_rdma_ops, &tp_dpdk_ops go here */
#ifdef ARC_HAVE_RDMA
	&tp_rdma_ops,
#endif
#ifdef ARC_HAVE_DPDK
	&tp_dpdk_ops,
#endif
	&tp_tcp_ops,
};

int
tp_candidates(const char *name, const struct tp_ops **out, int max)
{
	int n = 0;

	if (strcmp(name, "loop") == 0) {
		if (max > 0)
			out[n++] = &tp_loop_ops;
		return n;
	}
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (n < max && (strcmp(name, "auto") == 0 ||
		    strcmp(name, backends[i]->name) == 0))
			out[n++] = backends[i];
	return n;
}

const char *
tp_names(uint32_t bits, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i <= sizeof(backends) / sizeof(backends[0]); i++) {
		const struct tp_ops *o = i < sizeof(backends) /
		    sizeof(backends[0]) ? backends[i] : &tp_loop_ops;

		if (!(bits & o->backend))
			continue;
		bits &= ~o->backend;
		off += (size_t)snprintf(buf + off, off < len ? len - off : 0,
		    "%s%s", off > 0 ? "+" : "", o->name);
	}
	if (bits != 0 || off == 0)	/* a newer peer's, or none */
		snprintf(buf + off, off < len ? len - off : 0, "%s0x%x",
		    off > 0 ? "+" : "", bits);
	return buf;
}
