/*
 * swim.h: SWIM-style membership (Das, Gupta, Motivala 2002), a state
 * machine with no I/O of its own: the caller gives it the time, the
 * datagrams it received and a function to send with, so that unit tests
 * drive it with a simulated clock and network and the daemon with libuv.
 *
 * Every datagram carries a keyed MAC (libsodium crypto_auth, HMAC-SHA-512
 * truncated to 256 bits) over all of its bytes, and a per-sender boot id
 * and sequence number: a node without the key cannot join, and forged,
 * replayed or malformed datagrams are dropped and counted.
 *
 * Member states:
 *
 *            ack / alive(inc' > inc)
 *       +-------------------------------+
 *       v                               |
 *    ALIVE --no ack, direct + k indirect--> SUSPECT --suspect_timeout--> DEAD
 *       ^   (or gossip: suspect(inc >= i))     |                          |
 *       |                                      | refuted: alive(inc+1)    |
 *       +--------------------------------------+                          |
 *       +------------------ alive(inc' > inc): it came back --------------+
 *    any --leave(inc)--> LEFT     (graceful; final for that incarnation)
 *
 * A node hearing itself suspected or declared dead raises its incarnation
 * and gossips ALIVE.  Updates ride on every probe and ack (piggybacked),
 * each retransmitted about 3 log2(n) times.  DEAD and LEFT members are
 * probed again now and then, so that a healed partition merges.
 */
#ifndef ARC_SWIM_H
#define ARC_SWIM_H

#include <stddef.h>
#include <stdint.h>

#define SWIM_MAGIC		0x41525357u	/* "ARSW" */
/*
 * Header versions: 3 adds the sender's measured training speed (84
 * bytes); 2 is the header of older nodes (76 bytes), still spoken.  A
 * node flags its datagrams SWIM_F_HDR3 and sends version 3 only to
 * members whose datagrams carried that flag (the others, seeds and
 * strangers get version 2), so that old and new nodes keep hearing each
 * other through a rolling upgrade.
 */
#define SWIM_VERSION		3
#define SWIM_VERSION_OLD	2
#define SWIM_MAX_MEMBERS	1024
#define SWIM_MAX_UPDATES	16	/* piggybacked per datagram */
#define SWIM_HDR_LEN		84	/* version 3 */
#define SWIM_HDR2_LEN		76	/* version 2 */
#define SWIM_UPD_LEN		20
#define SWIM_MAC_LEN		32	/* crypto_auth_BYTES */
#define SWIM_KEY_LEN		32	/* crypto_auth_KEYBYTES */
/*
 * Link rows: each node's measurements of its links (peer, RTT, bandwidth,
 * age, source) ride on its datagrams after the updates, one chunk of one
 * row per datagram: its own row and, every other datagram, a row it
 * heard from another member (so rows spread by gossip, not only by direct
 * probes).  A row has a version (origin's boot id, then a sequence the
 * origin raises at every swim_links_set): a cell is replaced only by a
 * newer version.  Cells of dead or departed origins and peers are dropped;
 * cells not refreshed for SWIM_LINK_TTL_MS expire.
 */
#define SWIM_LINK_VERSION	1	/* the link section's own format */
#define SWIM_LINK_HDR_LEN	20
#define SWIM_LINK_ENT_LEN	16
#define SWIM_LINK_CHUNK		24	/* entries per datagram, at most */
#define SWIM_LINK_CELLS		4096	/* cells kept (origin, peer) */
#define SWIM_LINK_TTL_MS	10000
#define SWIM_MAX_DGRAM		(SWIM_HDR_LEN + SWIM_MAX_UPDATES * \
				 SWIM_UPD_LEN + SWIM_LINK_HDR_LEN + \
				 SWIM_LINK_CHUNK * SWIM_LINK_ENT_LEN + \
				 SWIM_MAC_LEN)
#define SWIM_RELAYS		64	/* indirect probes in flight for others */
#define SWIM_REPLAY_WINDOW	64

enum swim_state {
	SWIM_ALIVE = 0,
	SWIM_SUSPECT,
	SWIM_DEAD,
	SWIM_LEFT,
};

/* Flags a node sets on its own datagrams (the header's flags byte). */
#define SWIM_F_RAFT	0x01	/* member of a formed raft cluster */
#define SWIM_F_HDR3	0x02	/* decodes header version 3 */

enum swim_type {
	SWIM_PING = 1,
	SWIM_ACK,
	SWIM_PING_REQ,
	SWIM_LEAVE,
};

struct swim_conf {
	uint32_t probe_interval_ms;	/* one probe per period */
	uint32_t probe_timeout_ms;	/* direct ack wait, then indirect */
	uint32_t suspect_timeout_ms;	/* suspect -> dead */
	uint32_t indirect;		/* k: ping-req fan-out */
	uint32_t rejoin_interval_ms;	/* probe a dead member or a seed */
};

struct swim_member {
	uint32_t id;
	uint32_t addr;			/* IPv4, network order */
	uint16_t port;			/* gossip UDP port */
	uint16_t http_port;
	uint16_t raft_port;
	uint16_t dp_port;		/* its dataplane's port (header) */
	uint8_t	 state;			/* enum swim_state */
	uint8_t	 flags;			/* SWIM_F_*, as the member last said */
	uint32_t incarnation;
	uint64_t since_ms;		/* in this state since */
	uint64_t suspect_deadline;
	int	 gossip_left;		/* retransmissions of its update */
	/* anti-replay: the sender's boot and highest sequence seen */
	uint64_t boot;
	uint64_t seq_hi;
	uint64_t seq_window;		/* bit i: seq_hi - i seen */
	double	 rtt_ms;		/* last direct probe round trip */
	uint32_t gflops10;		/* its GEMM probe, GFLOP/s x 10 */
	/*
	 * Its measured training speed, GFLOP/s x 10 (the job's FLOPs over
	 * its workers' compute time, smoothed; control/replan.c), 0: not
	 * measured (no job yet, a standby, or an older node).
	 */
	uint32_t train_gflops10;
	uint32_t mem_mib;		/* its memory for the model, MiB */
	uint64_t ckpt_step;		/* its last complete checkpoint */
	/*
	 * An epoch its workers could not go on in (a peer's worker or
	 * dataplane restarted mid-step, so its collectives restart from
	 * sequence 0): the leader commits the next epoch, which every
	 * dataplane starts clean.  0: none.
	 */
	uint64_t reepoch;
	uint64_t last_heard_ms;
};

/* Where a link measurement comes from. */
enum swim_link_src {
	SWIM_LINK_DATAPLANE = 1,	/* the dataplane's probes and traffic */
	SWIM_LINK_PROBE = 2,		/* SWIM's own ping RTT, no bandwidth */
};

/* One directed link as its origin measured it: a cell of the matrix. */
struct swim_link {
	uint32_t origin, peer;		/* measured by origin, towards peer */
	uint32_t rtt_us;		/* 0: unknown */
	uint32_t bw_kib;		/* KiB/s, 0: unknown */
	uint32_t age_ms;		/* measurement's age when sent */
	uint8_t	 src;			/* enum swim_link_src */
	uint64_t boot;			/* the row's version: origin's boot, */
	uint32_t rseq;			/* then its row sequence */
	uint64_t recv_ms;		/* when this version was last heard */
};

struct swim_stats {
	uint64_t rx, tx;
	uint64_t rx_bytes, tx_bytes;
	uint64_t bad_mac;		/* forged or wrong key */
	uint64_t replayed;
	uint64_t malformed;
	uint64_t probes, probe_fail, indirect;
	uint64_t refuted;
	uint64_t evicted;		/* long-dead members forgotten */
	uint64_t link_malformed;	/* link sections dropped (bad layout) */
	uint64_t link_full;		/* cells refused: table full */
	uint64_t link_rx, link_tx;	/* link sections heard and sent */
};

/* Sends one datagram; errors are the caller's to count. */
typedef void swim_send_fn(void *ctx, uint32_t addr, uint16_t port,
    const void *buf, size_t len);
/* A finer clock for RTTs (microseconds), optional. */
typedef uint64_t swim_clock_fn(void);
/* A member changed state (old == new for a new member: joined). */
typedef void swim_change_fn(void *ctx, const struct swim_member *m,
    int old_state);

struct swim {
	struct swim_conf conf;
	int		 hdr_max;	/* highest header version spoken:
					   SWIM_VERSION (tests set 2 to act
					   as an older node) */
	unsigned char	key[SWIM_KEY_LEN];
	struct swim_member self;	/* state, incarnation, ports */
	uint64_t	 seq;		/* last sequence sent */
	int		 leaving;
	struct swim_member *m;		/* [SWIM_MAX_MEMBERS] */
	int		 nm;
	/* the probe in flight */
	int		 order_pos;
	uint32_t	*order;		/* probe order, ids */
	int		 norder;
	uint32_t	 probe_target;	/* 0: none */
	uint32_t	 probe_seq;
	uint64_t	 probe_sent;
	uint64_t	 probe_end;	/* end of this period */
	int		 probe_acked;
	int		 probe_indirect;
	uint64_t	 next_rejoin;
	struct {
		uint32_t seq;		/* our ping to the target */
		uint32_t req_id;	/* who asked */
		uint32_t req_seq;	/* their probe sequence */
		uint64_t expires;
	} relay[SWIM_RELAYS];
	/* seeds: addresses to ping while alone */
	int		 nseeds;
	struct { uint32_t addr; uint16_t port; } seeds[32];
	uint64_t	 rng;
	struct swim_stats st;
	swim_send_fn	*send;
	swim_change_fn	*change;
	void		*ctx;
	swim_clock_fn	*clock_us;	/* NULL: RTTs in whole ms */
	uint64_t	 probe_sent_us;
	/* the link matrix as cells (own row included), see above */
	struct swim_link *links;	/* [SWIM_LINK_CELLS] */
	int		 nlinks;
	uint32_t	 link_rseq;	/* own row's sequence */
	uint64_t	 link_ntx;	/* datagrams sent: own row or relayed */
	int		 link_own_pos;	/* next own cell to send */
	int		 link_relay_pos;
	uint64_t	 link_next_gc;
};

/*
 * Initializes sw for node id (its own addr is learned by others from the
 * datagrams' source).  boot must grow across restarts (wall-clock ns).
 * @return 0 or -ENOMEM.
 */
int	swim_init(struct swim *sw, const struct swim_conf *conf, uint32_t id,
	    uint64_t boot, const unsigned char key[SWIM_KEY_LEN],
	    uint16_t http_port, uint16_t raft_port, swim_send_fn *send,
	    swim_change_fn *change, void *ctx);
void	swim_fini(struct swim *sw);
/* Adds a seed (also used by discovery to introduce a peer). */
void	swim_add_seed(struct swim *sw, uint32_t addr, uint16_t port);
/* A peer found by discovery: a seed, and a ping right away. */
void	swim_introduce(struct swim *sw, uint64_t now_ms, uint32_t addr,
	    uint16_t port);
/* Drives timers; call at least every few milliseconds. */
void	swim_tick(struct swim *sw, uint64_t now_ms);
/* One datagram from addr:port. Never fails: bad input is counted. */
void	swim_recv(struct swim *sw, uint64_t now_ms, uint32_t addr,
	    uint16_t port, const void *buf, size_t len);
/* Graceful leave: tells a few members, and marks self LEFT. */
void	swim_leave(struct swim *sw, uint64_t now_ms);
const struct swim_member *swim_find(const struct swim *sw, uint32_t id);
/* Members counted by state (self included as ALIVE). */
int	swim_count(const struct swim *sw, int state);
const char *swim_state_name(int state);
/*
 * Replaces this node's own link row (n entries; origin, boot, rseq and
 * recv_ms are set here; entries towards self or id 0 are skipped) and
 * raises its version.  @return entries kept.
 */
int	swim_links_set(struct swim *sw, uint64_t now_ms,
	    const struct swim_link *row, int n);
/* The cells known (own row included); valid until the next call in. */
int	swim_links(const struct swim *sw, const struct swim_link **cells);

#endif /* ARC_SWIM_H */
