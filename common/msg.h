/*
 * msg.h: local messages between the three processes of a node, over unix
 * stream sockets (imsg style, our own).
 *
 * A record is a struct msg_hdr followed by len payload bytes.  The low two
 * bits of flags say how many file descriptors ride with the record
 * (SCM_RIGHTS, attached to the record's first byte).  The first record of
 * every connection, both ways, is IMSG_HELLO with MSG_VERSION; a peer with
 * another version is refused with IMSG_ERROR.  Payloads are the fixed-size
 * structs below, native byte order (same host), sizes pinned by
 * static_assert; a receiver checks the exact length of each type.
 *
 * Types only, plus the few functions of msg.c at the end, so that every
 * process can include it without pulling anything else in.
 */
#ifndef ARC_MSG_H
#define ARC_MSG_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MSG_VERSION	1
#define MSG_HDR_LEN	8
#define MSG_MAX_PAYLOAD	(64u << 10)	/* larger is a protocol error */
#define MSG_MAX_FDS	3		/* fds one record may carry */
#define MSG_FDS(flags)	((flags) & 3u)
#define MSG_BUF_LEN	(2 * (MSG_HDR_LEN + MSG_MAX_PAYLOAD))

struct msg_hdr {
	uint16_t	type;		/* enum imsg_type */
	uint16_t	flags;		/* low 2 bits: fds carried */
	uint32_t	len;		/* payload bytes */
};
static_assert(sizeof(struct msg_hdr) == MSG_HDR_LEN, "msg_hdr size");

/* Values are ABI: add at the end of a block, never renumber. */
enum imsg_type {
	IMSG_HELLO		= 1,	/* imsg_hello, first both ways */
	IMSG_ERROR		= 2,	/* imsg_error: a request failed */
	IMSG_OK			= 3,	/* empty: a request succeeded */

	/* dataplane.sock (workers and control) */
	IMSG_DP_ATTACH		= 16,	/* imsg_dp_attach: I am a worker */
	IMSG_DP_ARENA		= 17,	/* imsg_dp_arena + 3 fds: your arena */
	IMSG_DP_GROUP		= 18,	/* imsg_dp_group: define a group */
	IMSG_DP_PEERS		= 19,	/* imsg_dp_peers: peer table + epoch */
	IMSG_DP_LINKS		= 20,	/* empty: ask for link state */
	IMSG_DP_LINK		= 21,	/* imsg_dp_link: one per peer */
	IMSG_DP_LINKS_END	= 22,	/* empty: end of the IMSG_DP_LINK list */
	IMSG_DP_PROBE		= 23,	/* imsg_dp_probe: measure a link now */
	IMSG_DP_STATUS		= 24,	/* empty ask, imsg_dp_status answer */

	/* control.sock: control/ numbers its IMSG_CTL_* from 64 */
	IMSG_CTL_FIRST		= 64,
};
static_assert(IMSG_DP_ATTACH == 16 && IMSG_DP_STATUS == 24,
    "imsg values are ABI");

enum imsg_role {
	IMSG_ROLE_WORKER = 1,
	IMSG_ROLE_CONTROL = 2,
	IMSG_ROLE_TOOL = 3,
};

struct imsg_hello {
	uint32_t	version;	/* MSG_VERSION */
	uint32_t	role;		/* enum imsg_role */
	uint32_t	pid;
	uint32_t	node_id;	/* the sender's node, 0 if unknown */
	char		name[32];	/* NUL terminated */
};
static_assert(sizeof(struct imsg_hello) == 48, "imsg_hello size");

struct imsg_error {
	int32_t		err;		/* positive errno */
	uint32_t	peer;		/* node id the error is about, or 0 */
	char		text[120];	/* NUL terminated */
};
static_assert(sizeof(struct imsg_error) == 128, "imsg_error size");

struct imsg_dp_attach {
	uint64_t	region_bytes;	/* tensor space the worker wants */
};
static_assert(sizeof(struct imsg_dp_attach) == 8, "imsg_dp_attach size");

/* Fds: arena memfd, request doorbell eventfd, completion eventfd. */
struct imsg_dp_arena {
	uint64_t	arena_size;
	uint64_t	region_off;	/* the worker's tensor space */
	uint64_t	region_len;
	uint64_t	req_ring_off;	/* worker -> dataplane ring */
	uint64_t	cpl_ring_off;	/* dataplane -> worker ring */
	uint32_t	slot;
	uint32_t	node_id;
	uint32_t	epoch;
	uint32_t	ring_slots;
};
static_assert(sizeof(struct imsg_dp_arena) == 56, "imsg_dp_arena size");

#define IMSG_DP_MAX_GROUP	64	/* members of one group */
#define IMSG_DP_MAX_PEERS	64

/* A group: members in ring order; this node must be one of them. */
struct imsg_dp_group {
	uint32_t	group;		/* 1..65535 */
	uint32_t	nmembers;
	uint32_t	members[IMSG_DP_MAX_GROUP];
};
static_assert(sizeof(struct imsg_dp_group) == 264, "imsg_dp_group size");

struct imsg_dp_peer {
	uint32_t	id;
	uint32_t	addr;		/* IPv4, network byte order */
	uint16_t	port;		/* host order */
	uint16_t	pad;
};
static_assert(sizeof(struct imsg_dp_peer) == 12, "imsg_dp_peer size");

/* Replaces the peer table and epoch (control's seam); drops old groups. */
struct imsg_dp_peers {
	uint32_t	epoch;
	uint32_t	npeers;
	struct imsg_dp_peer peers[IMSG_DP_MAX_PEERS];
};
static_assert(sizeof(struct imsg_dp_peers) == 8 + 12 * 64, "peers size");

enum imsg_dp_link_state {
	IMSG_DP_LINK_DOWN = 0,
	IMSG_DP_LINK_CONNECTING,
	IMSG_DP_LINK_UP,
};

struct imsg_dp_link {
	uint32_t	peer;
	uint32_t	state;		/* enum imsg_dp_link_state */
	char		backend[8];	/* "tcp", ... agreed for this link */
	uint64_t	rtt_ns;		/* moving estimate, 0 unknown */
	uint64_t	bw_probe;	/* bytes/s from the last probe, 0 none */
	uint64_t	bw_live;	/* bytes/s moving estimate from traffic */
	uint64_t	tx_bytes;
	uint64_t	rx_bytes;
	uint64_t	rx_bad;		/* messages dropped as invalid */
	uint64_t	downs;		/* times the link went down */
	uint32_t	backends_local;	/* backend bits this node runs */
	uint32_t	backends_peer;	/* the peer's, from its hello */
	char		last_error[64];
};
static_assert(sizeof(struct imsg_dp_link) == 144, "imsg_dp_link size");

struct imsg_dp_probe {
	uint32_t	peer;
	uint32_t	mbytes;		/* probe size, MiB (0: 16) */
};
static_assert(sizeof(struct imsg_dp_probe) == 8, "imsg_dp_probe size");

struct imsg_dp_status {
	uint32_t	node_id;
	uint32_t	epoch;
	uint32_t	nworkers;
	uint32_t	npeers;
	uint64_t	ops_done;
	uint64_t	ops_failed;
	uint64_t	rx_bad;		/* invalid messages, all peers */
	uint64_t	arena_size;
	char		backend[24];	/* those running, "dpdk+tcp" */
	uint64_t	tx_zerocopy;	/* messages sent from the arena as is */
	uint64_t	tx_copied;	/* messages a backend had to copy */
};
static_assert(sizeof(struct imsg_dp_status) == 88, "imsg_dp_status size");

/* ---- msg.c ---- */

/* One received record; data points into the msgbuf until the next call. */
struct msg {
	uint16_t	 type;
	uint16_t	 flags;
	uint32_t	 len;
	const uint8_t	*data;
	int		 fds[MSG_MAX_FDS];	/* owned by the caller now */
	int		 nfds;
};

/* Receive side of one connection: bytes and fds not yet consumed. */
struct msgbuf {
	uint8_t		buf[MSG_BUF_LEN];
	size_t		len;		/* bytes buffered */
	size_t		off;		/* consumed so far */
	int		fds[16];	/* received fds not yet claimed */
	int		nfds;
};

void	msgbuf_init(struct msgbuf *mb);
/* Closes fds not claimed. */
void	msgbuf_fini(struct msgbuf *mb);
/* One recvmsg: @return bytes read, 0 on EOF, or -errno (-EAGAIN). */
ssize_t	msgbuf_read(struct msgbuf *mb, int fd);
/*
 * Takes the next complete record, if any.  @return 1 with *m filled,
 * 0 if more bytes are needed, -EBADMSG on a malformed record (too long, or
 * announcing fds that did not come): the connection must then be dropped.
 */
int	msg_get(struct msgbuf *mb, struct msg *m);
/*
 * Sends one record and its fds, waiting up to timeout_ms for room.
 * @return 0 or -errno.
 */
int	msg_send(int fd, uint16_t type, const void *payload, uint32_t len,
	    const int *fds, int nfds, int timeout_ms);
/* msg_send of IMSG_HELLO with our version and role. */
int	msg_send_hello(int fd, uint32_t role, uint32_t node_id,
	    const char *name);
/* msg_send of IMSG_ERROR. */
int	msg_send_error(int fd, int err, uint32_t peer, const char *text);
/* Checks a received IMSG_HELLO. @return 0 or -EPROTO with *why set. */
int	msg_check_hello(const struct msg *m, struct imsg_hello *out,
	    const char **why);

#endif /* ARC_MSG_H */
