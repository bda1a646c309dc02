/*
 * nodeconf.c: the key table of arceus.conf; see nodeconf.h and the
 * commented example configs/arceus.conf.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nodeconf.h"

#define NC(f)	offsetof(struct nodeconf, f)
#define STR(f)	NC(f), sizeof(((struct nodeconf *)0)->f)

/* "id@addr:port" */
static int
peer_apply(const struct conf_key *k, void *dst, const char *value,
    const char **why)
{
	struct nodeconf *nc = dst;
	struct nodeconf_peer *p;
	const char *at, *colon;
	char *end;
	unsigned long id, port;

	(void)k;
	if (nc->npeers == NODECONF_MAX_PEERS) {
		*why = "too many peers";
		return -1;
	}
	p = &nc->peers[nc->npeers];
	id = strtoul(value, &end, 10);
	at = end;
	if (end == value || *at != '@' || id == 0 || id > UINT32_MAX) {
		*why = "expected id@address:port with id > 0";
		return -1;
	}
	colon = strrchr(at, ':');
	if (colon == NULL || colon == at + 1 ||
	    (size_t)(colon - at - 1) >= sizeof(p->addr)) {
		*why = "expected id@address:port";
		return -1;
	}
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port == 0 || port > 65535) {
		*why = "port must be 1..65535";
		return -1;
	}
	for (int i = 0; i < nc->npeers; i++)
		if (nc->peers[i].id == id) {
			*why = "duplicate peer id";
			return -1;
		}
	p->id = (uint32_t)id;
	memcpy(p->addr, at + 1, (size_t)(colon - at - 1));
	p->addr[colon - at - 1] = '\0';
	p->port = (uint16_t)port;
	nc->npeers++;
	return 0;
}

static int
transport_apply(const struct conf_key *k, void *dst, const char *value,
    const char **why)
{
	static const char *const names[] = { "auto", "rdma", "dpdk", "tcp" };
	struct nodeconf *nc = dst;

	(void)k;
	for (size_t i = 0; i < 4; i++)
		if (strcmp(value, names[i]) == 0) {
			snprintf(nc->transport, sizeof(nc->transport), "%s",
			    value);
			return 0;
		}
	*why = "must be auto, rdma, dpdk or tcp";
	return -1;
}

const struct conf_key nodeconf_keys[] = {
	{ "node", "id", CONF_INT, NC(node_id), 0, 0, 4294967295.0, "0",
	    "node id; 0: derive one and keep it in state_dir", NULL, 0 },
	{ "node", "name", CONF_STR, STR(name), 0, 0, "",
	    "human name (default: host name)", NULL, 0 },
	{ "node", "run_dir", CONF_STR, STR(run_dir), 1, 0, "/run/arceus",
	    "sockets of the three services", NULL, 0 },
	{ "node", "state_dir", CONF_STR, STR(state_dir), 1, 0,
	    "/var/lib/arceus", "node id, raft log, checkpoints", NULL, 0 },
	{ "node", "key_file", CONF_STR, STR(key_file), 0, 0,
	    "/etc/arceus/cluster.key", "cluster key (32 random bytes)",
	    NULL, 0 },

	{ "dataplane", "transport", CONF_CUSTOM, 0, 0, 0, 0, "auto",
	    "auto | rdma | dpdk | tcp", transport_apply, 0 },
	{ "dataplane", "listen", CONF_STR, STR(dp_listen), 1, 0, "0.0.0.0",
	    "address the dataplane binds", NULL, 0 },
	{ "dataplane", "port", CONF_INT, NC(dp_port), 0, 1, 65535, "7710",
	    "dataplane port", NULL, 0 },
	{ "dataplane", "arena_size", CONF_SIZE, NC(arena_size), 0, 1 << 20,
	    1099511627776.0, "256M", "shared memory arena for workers",
	    NULL, 0 },
	{ "dataplane", "chunk_size", CONF_SIZE, NC(chunk_size), 0, 4096,
	    268435456.0, "1M", "pipeline chunk of collectives", NULL, 0 },
	{ "dataplane", "peer_timeout_ms", CONF_INT, NC(peer_timeout_ms), 0,
	    10, 3600000, "5000", "a silent peer fails operations after this",
	    NULL, 0 },
	{ "dataplane", "dpdk_port", CONF_STR, STR(dpdk_port), 0, 0, "",
	    "PCI address or vdev (net_af_packet0,iface=eth0)", NULL, 0 },
	{ "dataplane", "dpdk_eal", CONF_STR, STR(dpdk_eal), 0, 0, "",
	    "extra EAL arguments", NULL, 0 },
	{ "dataplane", "rdma_dev", CONF_STR, STR(rdma_dev), 0, 0, "",
	    "RDMA device; empty: the first", NULL, 0 },
	{ "dataplane", "peer", CONF_CUSTOM, 0, 0, 0, 0, NULL,
	    "static peer id@address:port (repeatable)", peer_apply, 1 },
	/* CONTROL-KEYS */
	{ NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, 0 },
};

int
nodeconf_load(struct nodeconf *nc, const char *path, struct conf_errs *errs)
{
	memset(nc, 0, sizeof(*nc));
	if (conf_defaults(nodeconf_keys, nc, errs) < 0)
		return -1;
	if (path == NULL)
		return 0;
	return conf_load(nodeconf_keys, nc, path, errs);
}
