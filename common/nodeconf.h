/*
 * nodeconf.h: the node's configuration, /etc/arceus/arceus.conf.
 *
 * One table for the whole file (all sections), so that
 * `arceus-control -n -c FILE` checks everything.  Control is the node's
 * authority and owns the file; the dataplane reads its [node] and
 * [dataplane] sections through the same table until control hands them
 * over on its socket.
 *
 * Sections: [node] identity and directories; [dataplane] transport and
 * peers; the control sections ([control], [discovery], [membership],
 * [raft], [http]) are added by control/.
 */
#ifndef ARC_NODECONF_H
#define ARC_NODECONF_H

#include <stdint.h>

#include "conf.h"

#define NODECONF_PATH		"/etc/arceus/arceus.conf"
#define NODECONF_MAX_PEERS	64
#define NODECONF_MAX_SEEDS	32

/* A static peer: "id@a.b.c.d:port" (a [dataplane] peer = line). */
struct nodeconf_peer {
	uint32_t	id;
	char		addr[64];	/* IPv4 literal or host name */
	uint16_t	port;
};

struct nodeconf {
	/* [node] */
	int64_t		node_id;	/* 0: derived and persisted */
	char		name[64];
	char		run_dir[256];	/* sockets: control.sock, ... */
	char		state_dir[256];	/* node id, raft log, checkpoints */
	char		key_file[256];	/* cluster key (32 bytes) */

	/* [dataplane] */
	char		transport[16];	/* auto | rdma | dpdk | tcp */
	char		dp_listen[64];	/* address to bind, 0.0.0.0 = any */
	int64_t		dp_port;
	uint64_t	arena_size;	/* shared memory for local workers */
	uint64_t	chunk_size;	/* collective pipeline chunk */
	int64_t		peer_timeout_ms;
	int64_t		op_timeout_ms;	/* an operation without progress */
	int		tcp_zerocopy;	/* SEND_ZC for large batches */
	char		dpdk_port[256];	/* PCI address or vdev spec */
	char		dpdk_eal[256];	/* extra EAL arguments */
	int64_t		dpdk_mtu;	/* 0: the largest the port allows */
	int64_t		dpdk_zc_min;	/* shorter payload slices are copied;
					   0: by the device */
	int		ndpdk_neigh;	/* static neighbours (dpdk_neighbor) */
	struct nodeconf_neigh {
		uint32_t ip;		/* host order */
		uint8_t	 mac[6];
	} dpdk_neigh[NODECONF_MAX_PEERS];
	char		rdma_dev[64];	/* empty: first device */
	int		npeers;
	struct nodeconf_peer peers[NODECONF_MAX_PEERS];

	/* [control] and friends: control/ adds its fields below. */
	/* CONTROL-FIELDS */
	/* [control] */
	char		ctl_listen[64];	/* gossip and raft bind address */
	char		ctl_advertise[64];	/* told to peers; "" = listen */
	int64_t		gossip_port;	/* UDP, SWIM */
	int64_t		raft_port;	/* TCP, raft */
	char		http_listen[64];
	int64_t		http_port;	/* /metrics, /api, dashboard */
	int64_t		voters;		/* raft voters (odd) */
	uint64_t	model_memory;	/* offered to the model; 0: half */
	/* replanning on measured speed (control/replan.c) */
	double		replan_gain;	/* step fraction a new plan saves */
	double		replan_interval_s;	/* between epochs; 0: off */
	double		replan_hold_s;	/* the gain holds this long */
	int		discovery;	/* DNS-SD through avahi */
	int		nseeds;
	struct nodeconf_seed {
		char	 addr[64];	/* IPv4 literal */
		uint16_t port;
	} seeds[NODECONF_MAX_SEEDS];
	/* [membership] */
	int64_t		probe_interval_ms;
	int64_t		probe_timeout_ms;
	int64_t		suspect_timeout_ms;
	int64_t		indirect_probes;
	int64_t		rejoin_interval_ms;
	/* [raft] */
	int64_t		election_timeout_ms;
	int64_t		heartbeat_ms;
	int64_t		bootstrap_expect;	/* members before forming */
};

extern const struct conf_key nodeconf_keys[];

/*
 * Defaults, then path.  Errors go to errs as file:line: reason.
 * @return 0 or -1.
 */
int	nodeconf_load(struct nodeconf *nc, const char *path,
	    struct conf_errs *errs);

/*
 * The node id kept in state_dir/node-id by arceus-control (when [node] id
 * is 0).  @return 0 with *id set, -ENOENT if there is none yet, -EINVAL if
 * the file holds no valid id, or another -errno.
 */
int	nodeconf_read_id(const struct nodeconf *nc, uint32_t *id);

#endif /* ARC_NODECONF_H */
