/*
 * nodeconf.c: the key table of arceus.conf; see nodeconf.h and the
 * commented example configs/arceus.conf.
 */
#include <errno.h>
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

/* "a.b.c.d:port" */
static int
seed_apply(const struct conf_key *k, void *dst, const char *value,
    const char **why)
{
	struct nodeconf *nc = dst;
	struct nodeconf_seed *sd;
	const char *colon = strrchr(value, ':');
	unsigned a, b, c, d;
	unsigned long port;
	char *end, extra;

	(void)k;
	if (nc->nseeds == NODECONF_MAX_SEEDS) {
		*why = "too many seeds";
		return -1;
	}
	sd = &nc->seeds[nc->nseeds];
	if (colon == NULL || (size_t)(colon - value) >= sizeof(sd->addr) ||
	    sscanf(value, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) != 5 ||
	    extra != ':' || a > 255 || b > 255 || c > 255 || d > 255) {
		*why = "expected a.b.c.d:port";
		return -1;
	}
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || port == 0 || port > 65535) {
		*why = "port must be 1..65535";
		return -1;
	}
	memcpy(sd->addr, value, (size_t)(colon - value));
	sd->addr[colon - value] = '\0';
	sd->port = (uint16_t)port;
	nc->nseeds++;
	return 0;
}

/* "a.b.c.d aa:bb:cc:dd:ee:ff" */
static int
neigh_apply(const struct conf_key *k, void *dst, const char *value,
    const char **why)
{
	struct nodeconf *nc = dst;
	struct nodeconf_neigh *n;
	unsigned a, b, c, d, m[6];
	uint32_t ip;
	int end = 0;

	(void)k;
	if (nc->ndpdk_neigh == NODECONF_MAX_PEERS) {
		*why = "too many neighbours";
		return -1;
	}
	if (sscanf(value, "%u.%u.%u.%u %n", &a, &b, &c, &d, &end) != 4 ||
	    end == 0 || a > 255 || b > 255 || c > 255 || d > 255) {
		*why = "expected an IPv4 address and a MAC "
		    "(10.0.0.2 02:00:00:00:00:02)";
		return -1;
	}
	ip = a << 24 | b << 16 | c << 8 | d;
	value += end;
	end = 0;
	if (sscanf(value, "%2x:%2x:%2x:%2x:%2x:%2x%n", &m[0], &m[1], &m[2],
	    &m[3], &m[4], &m[5], &end) != 6 || end != 17 ||
	    value[end] != '\0') {
		*why = "expected a MAC as six hex pairs (02:00:00:00:00:02) "
		    "after the address";
		return -1;
	}
	if ((m[0] & 1) || (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) == 0) {
		*why = "the MAC must be a unicast station's (not zero, not "
		    "multicast)";
		return -1;
	}
	if (ip == 0) {
		*why = "the address must not be 0.0.0.0";
		return -1;
	}
	for (int i = 0; i < nc->ndpdk_neigh; i++)
		if (nc->dpdk_neigh[i].ip == ip) {
			*why = "duplicate neighbour address";
			return -1;
		}
	n = &nc->dpdk_neigh[nc->ndpdk_neigh++];
	n->ip = ip;
	for (int i = 0; i < 6; i++)
		n->mac[i] = (uint8_t)m[i];
	return 0;
}

/* 0 (auto) or 576..9000 */
static int
mtu_apply(const struct conf_key *k, void *dst, const char *value,
    const char **why)
{
	struct nodeconf *nc = dst;
	char *end;
	long v = strtol(value, &end, 10);

	(void)k;
	if (end == value || *end != '\0' || (v != 0 && (v < 576 ||
	    v > 9000))) {
		*why = "must be 0 (the largest the port allows, up to 9000) "
		    "or 576..9000";
		return -1;
	}
	nc->dpdk_mtu = v;
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
	{ "dataplane", "op_timeout_ms", CONF_INT, NC(op_timeout_ms), 0,
	    10, 86400000, "60000",
	    "an operation without progress fails after this (peer named)",
	    NULL, 0 },
	{ "dataplane", "tcp_zerocopy", CONF_BOOL, NC(tcp_zerocopy), 0, 0, 0,
	    "no", "tcp: zero-copy sends (pays on real NICs, not loopback)",
	    NULL, 0 },
	{ "dataplane", "dpdk_port", CONF_STR, STR(dpdk_port), 0, 0, "",
	    "PCI address or vdev (net_af_packet0,iface=eth0)", NULL, 0 },
	{ "dataplane", "dpdk_eal", CONF_STR, STR(dpdk_eal), 0, 0, "",
	    "extra EAL arguments", NULL, 0 },
	{ "dataplane", "dpdk_mtu", CONF_CUSTOM, 0, 0, 0, 0, "0",
	    "DPDK port MTU; 0: the largest it allows up to 9000 (jumbo)",
	    mtu_apply, 0 },
	{ "dataplane", "dpdk_zc_min", CONF_INT, NC(dpdk_zc_min), 0, 0, 65535,
	    "0", "payload slices of a frame shorter than this are copied, "
	    "longer ones go as external buffers; 0: 256 on a NIC, 2048 on a "
	    "virtual device (it copies every frame itself)", NULL, 0 },
	{ "dataplane", "dpdk_neighbor", CONF_CUSTOM, 0, 0, 0, 0, NULL,
	    "static neighbour \"IPv4 MAC\" of the DPDK port, overrides ARP "
	    "(repeatable)", neigh_apply, 1 },
	{ "dataplane", "rdma_dev", CONF_STR, STR(rdma_dev), 0, 0, "",
	    "RDMA device; empty: the first", NULL, 0 },
	{ "dataplane", "peer", CONF_CUSTOM, 0, 0, 0, 0, NULL,
	    "static peer id@address:port (repeatable)", peer_apply, 1 },
	/* CONTROL-KEYS */
	{ "control", "listen", CONF_STR, STR(ctl_listen), 1, 0, "0.0.0.0",
	    "address gossip (UDP) and raft (TCP) bind", NULL, 0 },
	{ "control", "advertise", CONF_STR, STR(ctl_advertise), 0, 0, "",
	    "IPv4 address peers reach us at; empty: the listen address or "
	    "the first non-loopback one", NULL, 0 },
	{ "control", "gossip_port", CONF_INT, NC(gossip_port), 0, 1, 65535,
	    "7700", "SWIM membership, UDP", NULL, 0 },
	{ "control", "raft_port", CONF_INT, NC(raft_port), 0, 1, 65535,
	    "7701", "raft, TCP", NULL, 0 },
	{ "control", "http_listen", CONF_STR, STR(http_listen), 1, 0,
	    "0.0.0.0", "address of /metrics, /api and the dashboard", NULL,
	    0 },
	{ "control", "http_port", CONF_INT, NC(http_port), 0, 0, 65535,
	    "7780", "HTTP port; 0: no HTTP", NULL, 0 },
	{ "control", "voters", CONF_INT, NC(voters), 0, 1, 9, "3",
	    "raft voters (odd; all nodes when fewer)", NULL, 0 },
	{ "control", "model_memory", CONF_SIZE, NC(model_memory), 0, 0,
	    1125899906842624.0, "0",
	    "memory this node offers the model (planner); 0: half of RAM",
	    NULL, 0 },
	{ "control", "replan_gain", CONF_DOUBLE, NC(replan_gain), 0, 0.01,
	    0.9, "0.15", "the leader replans on measured speed when the new "
	    "plan's step is at least this fraction shorter", NULL, 0 },
	{ "control", "replan_interval_s", CONF_DOUBLE, NC(replan_interval_s),
	    0, 0, 86400, "15", "seconds between an epoch and a replan on "
	    "measured speed, at least; 0: never replan on speed", NULL, 0 },
	{ "control", "replan_hold_s", CONF_DOUBLE, NC(replan_hold_s), 0, 0,
	    3600, "3", "seconds the gain must hold before a replan", NULL, 0 },
	{ "control", "discovery", CONF_BOOL, NC(discovery), 0, 0, 0, "yes",
	    "find peers by DNS-SD (_arceus._udp) through avahi", NULL, 0 },
	{ "control", "seed", CONF_CUSTOM, 0, 0, 0, 0, NULL,
	    "a.b.c.d:port of a peer's gossip (repeatable)", seed_apply, 1 },
	{ "membership", "probe_interval_ms", CONF_INT, NC(probe_interval_ms),
	    0, 10, 60000, "100", "one probe per interval", NULL, 0 },
	{ "membership", "probe_timeout_ms", CONF_INT, NC(probe_timeout_ms),
	    0, 1, 60000, "40", "direct ack wait before indirect probes",
	    NULL, 0 },
	{ "membership", "suspect_timeout_ms", CONF_INT,
	    NC(suspect_timeout_ms), 0, 10, 600000, "300",
	    "suspect -> dead unless refuted", NULL, 0 },
	{ "membership", "indirect_probes", CONF_INT, NC(indirect_probes), 0,
	    0, 16, "3", "k members asked to probe for us", NULL, 0 },
	{ "membership", "rejoin_interval_ms", CONF_INT,
	    NC(rejoin_interval_ms), 0, 100, 600000, "1000",
	    "probe a dead member or a seed this often", NULL, 0 },
	{ "raft", "election_timeout_ms", CONF_INT, NC(election_timeout_ms),
	    0, 50, 60000, "300", "raft election timeout", NULL, 0 },
	{ "raft", "heartbeat_ms", CONF_INT, NC(heartbeat_ms), 0, 5, 10000,
	    "30", "raft heartbeat", NULL, 0 },
	{ "raft", "bootstrap_expect", CONF_INT, NC(bootstrap_expect), 0, 1,
	    1024, "3", "members seen before the lowest id forms the cluster",
	    NULL, 0 },
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

int
nodeconf_read_id(const struct nodeconf *nc, uint32_t *id)
{
	char path[512];
	unsigned long v;
	char buf[32], *end;
	size_t n;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/node-id", nc->state_dir);
	if ((fp = fopen(path, "r")) == NULL)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	errno = 0;
	v = strtoul(buf, &end, 10);
	if (end == buf || (*end != '\n' && *end != '\0') || errno != 0 ||
	    v == 0 || v > UINT32_MAX)
		return -EINVAL;
	*id = (uint32_t)v;
	return 0;
}
