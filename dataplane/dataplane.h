/*
 * dataplane.h: arceus-dataplane's private header.  Every structure and
 * prototype of dataplane/, grouped by file (relayd.h style).
 *
 * The pieces, bottom up:
 *   transport_*.c  backends behind struct tp_ops: move framed messages
 *                  (wire.h header + payload) between this node and a peer;
 *   link.c         peers: connection state, heartbeats, validation and
 *                  counting of received messages, RTT and bandwidth;
 *   coll.c         groups and operations: ring collectives, send/recv;
 *   compress.c     codecs of chunks, error feedback;  reduce.c kernels;
 *   arena.c        the shared memory of workers;  local.c its socket;
 *   main.c         arguments, configuration, the event loop.
 * One struct dp holds a whole node's engine, so that tests can run several
 * in one process over the `loop` backend.
 */
#ifndef ARC_DATAPLANE_H
#define ARC_DATAPLANE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "arceus_dp.h"
#include "dp_abi.h"
#include "msg.h"
#include "ring.h"
#include "wire.h"

#define DP_MAX_PEERS		64	/* as NODECONF_MAX_PEERS */
#define DP_TICK_MS		20	/* timer: heartbeats, timeouts */
#define DP_PING_MS		200	/* heartbeat period (at most) */
#define DP_RECONNECT_MS		100	/* first retry of a failed connect */
#define DP_STASH_MAX		(512u << 20) /* early messages kept, bytes */
#define DP_FUTURE_MAX		(128u << 20) /* of newer epochs, bytes */
#define DP_FUTURE_EPOCHS	16	/* newer by at most this many */
#define DP_TX_BATCH		16	/* messages per transport submission */
#define DP_PROBE_CHUNK		(1u << 20)
#define DP_POOL_MAX		32	/* chunk buffers kept for reuse */
#define DP_SMALL_BYTES		(32u << 10) /* all-reduce in one round below */
#define COMP_INT8_BLOCK		256	/* values per int8 scale */

/* Backends, as bits (HELLO says which ones a node runs). */
#define DP_BACKEND_TCP		0x1u
#define DP_BACKEND_LOOP		0x2u
#define DP_BACKEND_DPDK		0x4u
#define DP_BACKEND_RDMA		0x8u
#define DP_MAX_TP		4	/* backends, one bit each above */
/* Where a backend keeps its per-peer state: dp_peer.tp[DP_TP_SLOT(bit)]. */
#define DP_TP_SLOT(backend)	(__builtin_ctz(backend))

/* Capabilities of a backend (struct tp_ops caps). */
#define TP_CAP_ZEROCOPY_TX	0x1u	/* sends from the arena without a copy */
#define TP_CAP_RELIABLE		0x2u	/* in order, exactly once, or reports */
#define TP_CAP_POLLFD		0x4u	/* has an fd to sleep on */

struct dp;
struct dp_op;
struct dp_peer;

/* The node's settings the engine needs (from arceus.conf or a test). */
struct dp_conf {
	uint32_t	node_id;
	uint32_t	epoch;
	char		transport[16];	/* auto | tcp | loop | ... */
	char		listen[64];
	uint16_t	port;
	size_t		chunk_bytes;	/* collective chunk, bytes */
	int		peer_timeout_ms; /* a silent link goes down */
	int		op_timeout_ms;	/* an operation without progress fails */
	int		tcp_zerocopy;	/* -1 auto, 0 off, 1 on */
	char		dpdk_port[256];	/* PCI address or vdev spec */
	char		dpdk_eal[256];	/* extra EAL arguments */
	int		dpdk_mtu;	/* 0: the largest the port allows */
	int		dpdk_zc_min;	/* shorter payload slices: copied; 0: auto */
	int		ndpdk_neigh;	/* static neighbours, override ARP */
	struct dp_neigh {
		uint32_t ip;		/* host order */
		uint8_t	 mac[6];
	} dpdk_neigh[DP_MAX_PEERS];
};

/* ------------------------------------------------------------------ */
/* transport.c and transport_*.c: the backends.                        */

/* One message to send: header, payload, who to tell when it is gone. */
struct tp_msg {
	TAILQ_ENTRY(tp_msg) entry;
	uint8_t		 hdr[WIRE_HDR_LEN];	/* encoded, CRC done */
	const void	*payload;	/* lent until dp_on_sent */
	uint32_t	 len;
	uint8_t		*owned;		/* a pool buffer to give back */
	uint8_t		 inl[16];	/* small link payloads live here */
	struct dp_op	*op;		/* accounted to; NULL: link traffic */
};
TAILQ_HEAD(tp_msgq, tp_msg);

/*
 * A backend.  Messages are pulled: dp_send() queues on the peer and calls
 * kick(); the backend takes messages with dp_tx_pull() while it has room
 * and reports each with dp_on_sent().  What it receives it validates as
 * far as framing needs (wire_decode) and hands to dp_on_hello() (first
 * message of an inbound connection) or dp_on_recv(); the payload is lent
 * for the duration of the call.  Broken connections go to dp_on_down().
 * Everything runs on the engine's thread.
 */
struct tp_ops {
	const char	*name;
	uint32_t	 backend;	/* DP_BACKEND_* */
	uint32_t	 caps;		/* TP_CAP_* */
	/* Starts listening; @return 0 or -errno with a log line. */
	int		(*init)(struct dp *dp, void **state);
	void		(*fini)(void *state);
	/* Opens (asynchronously) the outbound connection to p. */
	int		(*connect)(void *state, struct dp_peer *p);
	/* p has messages queued. */
	void		(*kick)(void *state, struct dp_peer *p);
	/*
	 * Closes both connections of p; messages it had pulled get
	 * dp_on_sent (maybe later, from poll).  fini does the same for all.
	 */
	void		(*disconnect)(void *state, struct dp_peer *p);
	/* (optional) fd readable when poll has work; -1 none. */
	int		(*fd)(void *state);
	/*
	 * (optional) Sleeps until the backend has work, fd (the caller's
	 * epoll) is readable, or timeout_ms passed.  Preferred over fd():
	 * io_uring completes sockets through task work, which runs only
	 * while the process is inside io_uring, not in epoll_wait.
	 */
	int		(*wait)(void *state, int fd, int timeout_ms);
	/* Handles what is ready, without blocking. @return events handled */
	int		(*poll)(void *state);
	/*
	 * (optional) The memory most payloads are lent from (the arena),
	 * once: a backend that can registers it with its device and sends
	 * payloads that lie inside without a copy (counted in dp->stats),
	 * still reporting each message with dp_on_sent only when the
	 * device is done with it.
	 * @return 0 or -errno (then everything is copied, as without it).
	 */
	int		(*mem_register)(void *state, void *base, size_t len);
};

extern const struct tp_ops tp_tcp_ops;
extern const struct tp_ops tp_loop_ops;
/* transport_rdma.c: built with libibverbs, librdmacm (ARC_HAVE_RDMA) */
extern const struct tp_ops tp_rdma_ops;
/* transport_dpdk.c: built with libdpdk (ARC_HAVE_DPDK); rdp.c under it */
extern const struct tp_ops tp_dpdk_ops;

/* transport.c */
/* Backends to try for a transport= value, best first. @return count */
int		 tp_candidates(const char *name, const struct tp_ops **out,
		    int max);
/* The names of the backends in bits, "tcp+dpdk" (best first). */
const char	*tp_names(uint32_t bits, char *buf, size_t len);

/* transport_loop.c: several engines in one process (tests). */
void		 loop_reset(void);
/* Makes id unreachable as if its process died (others see it down). */
void		 loop_kill(uint32_t id);

/* ------------------------------------------------------------------ */
/* link.c: peers.                                                      */

enum dp_peer_state {
	DP_PEER_DOWN = 0,
	DP_PEER_CONNECTING,	/* outbound connecting or hello pending */
	DP_PEER_UP,		/* outbound up and the peer's hello seen */
};

struct dp_peer {
	uint32_t	 id;
	char		 addr[64];
	uint16_t	 port;
	enum dp_peer_state state;
	int		 out_up;	/* outbound connected, hello sent */
	int		 in_up;		/* the peer's hello received */
	void		*tp[DP_MAX_TP]; /* each backend's per-peer state */
	/*
	 * The backend of our connection to the peer (what we send on): the
	 * most preferred one that runs here and, once its hello told us,
	 * there too.  What the peer sends may come over any backend.
	 */
	const struct tp_ops *ops;
	uint64_t	 boot_id;	/* from its hello */
	uint32_t	 backends;	/* the peer's running backends (hello) */
	uint32_t	 tried;		/* backends that failed to connect */
	int		 reconnect;	/* connect again, inbound still up */
	int		 nocommon_logged;
	struct tp_msgq	 ctlq;		/* link messages, pulled first */
	struct tp_msgq	 txq;		/* data, queued, not pulled yet */
	uint32_t	 txq_len;
	TAILQ_HEAD(, dp_op) p2p_tx;	/* SEND ops to it, posting order */
	TAILQ_HEAD(, dp_op) p2p_rx;	/* RECV ops from it */

	uint64_t	 last_rx_ns;
	uint64_t	 next_ping_ns;
	uint64_t	 next_connect_ns;
	int		 connect_backoff_ms;
	uint32_t	 ping_seq;
	uint64_t	 ping_sent_ns;
	uint32_t	 p2p_tx_seq;	/* next SEND to this peer */
	uint32_t	 p2p_rx_seq;	/* next RECV from this peer */

	/* measurements */
	double		 rtt_ns;	/* EWMA of ping round trips */
	double		 bw_live;	/* EWMA, bytes/s, from data traffic */
	double		 bw_probe;	/* last probe, bytes/s */
	uint64_t	 live_bytes;	/* current streaming window */
	uint64_t	 live_ns;
	uint64_t	 live_last_ns;
	uint64_t	 probe_rx_t0;	/* receiving side of a probe */
	uint64_t	 probe_rx_bytes;
	uint64_t	 probe_tx_t0;	/* sending side */
	void		*probe_waiter;	/* local client to answer, or NULL */

	/* counters */
	uint64_t	 tx_bytes;
	uint64_t	 rx_bytes;
	uint64_t	 rx_bad;
	uint64_t	 rx_stale;	/* for operations already over */
	uint64_t	 downs;
	uint32_t	 bad_logged;	/* bit per enum wire_err logged once */
	char		 last_error[64];
};

struct dp_peer	*peer_find(struct dp *dp, uint32_t id);
/* Replaces the peer table and epoch; fails every operation in flight. */
int		 peer_set_table(struct dp *dp, uint32_t epoch,
		    const struct imsg_dp_peer *peers, int n);
int		 peer_add(struct dp *dp, uint32_t id, const char *addr,
		    uint16_t port);
void		 peer_tick(struct dp *dp, uint64_t now);
void		 peer_fill_link(const struct dp *dp, const struct dp_peer *p,
		    struct imsg_dp_link *l);
/* Starts a bandwidth probe of size bytes; waiter gets the answer. */
int		 peer_probe(struct dp *dp, struct dp_peer *p, uint64_t bytes,
		    void *waiter);
/* Queues a link-level message (payload <= 16 bytes, copied). */
int		 peer_send_ctl(struct dp *dp, struct dp_peer *p,
		    struct wire_hdr *h, const void *payload, uint32_t len);
/* Counts and logs (once per peer and kind) an invalid message. */
void		 peer_bad(struct dp *dp, struct dp_peer *p, enum wire_err e,
		    const char *where);

/* Upcalls from the backends. */
void		 dp_on_connected(struct dp *dp, struct dp_peer *p);
struct dp_peer	*dp_on_hello(struct dp *dp, const struct wire_hdr *h,
		    const uint8_t *raw, const void *payload);
void		 dp_on_recv(struct dp *dp, struct dp_peer *p,
		    const struct wire_hdr *h, const uint8_t *raw,
		    const void *payload);
/*
 * dp_on_recv for a backend that summed the message as it arrived: crc is
 * wire_crc_hdr(raw) extended with crc32c() over the payload, checked here
 * against the header's instead of a pass over payload.  payload may be
 * NULL for a message dp_rx_sink says the engine does not read.
 */
void		 dp_on_recv_crc(struct dp *dp, struct dp_peer *p,
		    const struct wire_hdr *h, const void *payload,
		    uint32_t crc);
/*
 * The engine reads nothing of h's payload but its checksum (a probe's):
 * a backend may sum it as it arrives, keep none of it, and hand it up
 * with dp_on_recv_crc and payload NULL.
 */
int		 dp_rx_sink(const struct wire_hdr *h);

/*
 * A message received in pieces, in order (a datagram backend's frames),
 * summed as they come and put where it goes, decided by its header at
 * dp_rxmsg_start: straight into its place (coll_rx_place, asked again
 * before each piece: the engine may run between them, copied and summed
 * in one pass), nowhere (dp_rx_sink: summed only), or a staging buffer;
 * a place that goes away drains the rest (counted stale), a bad header
 * or more bytes than it says drop it to its end (dp_on_bad).  Its last
 * piece hands it to dp_on_recv_crc.  No pass over the whole message.
 */
enum dp_rxm_mode {
	DP_RXM_NONE = 0,	/* between messages */
	DP_RXM_STAGE,		/* into buf */
	DP_RXM_PLACE,		/* into an operation's buffer */
	DP_RXM_SINK,		/* summed, not kept */
	DP_RXM_LOST,		/* its place went away: drained */
	DP_RXM_SKIP,		/* refused: dropped up to its end */
	DP_RXM_NMODES
};

struct dp_rxmsg {
	int		 mode;		/* enum dp_rxm_mode */
	struct wire_hdr	 h;
	uint32_t	 crc;		/* its header, then the payload so far */
	uint32_t	 got;		/* payload bytes so far */
	uint8_t		*dst;		/* DP_RXM_PLACE: as last asked */
	uint8_t		*buf;		/* DP_RXM_STAGE: the payload so far */
	size_t		 cap;
	uint64_t	 n[DP_RXM_NMODES];	/* messages ended, by mode */
};

/* Its first piece: the whole wire header.  m->mode is DP_RXM_NONE. */
void		 dp_rxmsg_start(struct dp *dp, struct dp_peer *p,
		    struct dp_rxmsg *m, const uint8_t hdr[WIRE_HDR_LEN]);
/* The next len payload bytes; end: the last piece (may be empty). */
void		 dp_rxmsg_add(struct dp *dp, struct dp_peer *p,
		    struct dp_rxmsg *m, const uint8_t *data, size_t len,
		    int end);
/* Drops a message under way (the stream was reset). */
void		 dp_rxmsg_reset(struct dp_rxmsg *m);
/* Frees the staging buffer. */
void		 dp_rxmsg_fini(struct dp_rxmsg *m);
void		 dp_on_sent(struct dp *dp, struct dp_peer *p,
		    struct tp_msg *m, int res);
void		 dp_on_down(struct dp *dp, struct dp_peer *p, int err,
		    const char *why);
/* Our outbound connect to p failed (the backend closed it): retried. */
void		 dp_on_connect_failed(struct dp *dp, struct dp_peer *p, int err,
		    const char *why);
/* A message that could not even be framed (no peer known yet: NULL). */
void		 dp_on_bad(struct dp *dp, struct dp_peer *p, enum wire_err e);
struct tp_msg	*dp_tx_pull(struct dp *dp, struct dp_peer *p);

/* ------------------------------------------------------------------ */
/* coll.c: groups and operations.                                      */

struct dp_group {
	TAILQ_ENTRY(dp_group) entry;
	uint32_t	 id;
	int		 n;		/* members */
	int		 rank;		/* ours, in ring order */
	uint32_t	*members;
	uint32_t	 next_seq;	/* given to the next operation posted */
	TAILQ_HEAD(, dp_op) ops;	/* posted, not completed, seq order */
};

/* What a caller gives dp_post (pointers: the engine does not care where). */
struct dp_op_args {
	int		 opcode;	/* enum arc_dp_opcode */
	int		 comp;		/* enum arc_dp_comp */
	float		 ratio;
	float		 divisor;
	uint32_t	 group;
	uint32_t	 peer;
	float		*buf;
	size_t		 count;
	float		*resid;
};

typedef void dp_done_fn(struct dp_op *op, void *arg);

struct dp_op {
	TAILQ_ENTRY(dp_op) qentry;	/* group's or peer's queue */
	TAILQ_ENTRY(dp_op) all;		/* dp->ops */
	struct dp	*dp;
	struct dp_op_args a;
	struct dp_group	*g;		/* collectives */
	struct dp_peer	*peer;		/* send/recv */
	uint32_t	 seq;
	int		 n;		/* ranks; 1 for send/recv */
	int		 rank;
	uint32_t	 steps;		/* ring steps with messages */
	uint32_t	 cpe;		/* values per chunk */
	uint32_t	 rx_left;	/* chunks still to receive */
	uint32_t	 tx_inflight;	/* messages queued or in a backend */
	uint32_t	 tx_next;	/* own chunks queued so far (coll.c) */
	uint32_t	 tx_chunks;	/* own chunks to send (not forwards) */
	int		 tx_filling;	/* coll.c is queueing them now */
	uint8_t		*rx_seen;	/* bit per (step, chunk) received */
	uint32_t	 rx_seen_bits;
	uint32_t	 p2p_chunks;	/* RECV: chunks announced, 0 unknown */
	int		 small;		/* one-round all-reduce (coll.c) */
	float		*gather;	/* small: every rank's values */
	int		 finished;	/* data done (or failed) */
	int		 status;	/* 0 or -errno */
	uint32_t	 err_peer;
	uint64_t	 wire_bytes;
	uint64_t	 raw_bytes;
	uint64_t	 recv_count;
	uint64_t	 t_post_ns;
	uint64_t	 t_progress_ns;
	dp_done_fn	*done;		/* called once, in posting order */
	void		*done_arg;
	uint64_t	 cookie;	/* the poster's id */
};

struct dp_group	*group_find(struct dp *dp, uint32_t id);
/* @return 0, -EINVAL (bad members, not one of them), -EEXIST (busy) */
int		 group_set(struct dp *dp, uint32_t id,
		    const uint32_t *members, int n);
void		 group_clear_all(struct dp *dp);
/*
 * Posts an operation; done(op, arg) runs later (maybe before dp_post
 * returns, for trivial operations), then the engine frees op.
 * @return 0 or -errno (nothing posted, done not called).
 */
int		 dp_post(struct dp *dp, const struct dp_op_args *a,
		    dp_done_fn *done, void *arg, uint64_t cookie);
/* Handles a DATA or P2P message from p (validated). */
void		 coll_recv(struct dp *dp, struct dp_peer *p,
		    const struct wire_hdr *h, const void *payload);
/*
 * (for stream backends) Where the payload of DATA or P2P message h from p
 * may be received in place (a copy step's chunk or a RECV's, checked
 * against the operation, h not trusted), or NULL.  Valid until the engine
 * runs again.
 */
float		*coll_rx_place(struct dp *dp, struct dp_peer *p,
		    const struct wire_hdr *h);
void		 coll_sent(struct dp *dp, struct dp_op *op, struct dp_peer *p,
		    int res);
/* Completes finished operations in posting order (runs callbacks). */
void		 coll_reap(struct dp *dp);
/* Fails every operation that needs peer p (or all when p is NULL). */
void		 coll_fail_peer(struct dp *dp, struct dp_peer *p, int err);
void		 coll_tick(struct dp *dp, uint64_t now);
/* Segment of rank j when count values split over n ranks. */
size_t		 coll_seg_start(size_t count, int n, int j);
size_t		 coll_seg_len(size_t count, int n, int j);

/* ------------------------------------------------------------------ */
/* engine.c: struct dp, the node's engine.                             */

struct dp_stash {
	TAILQ_ENTRY(dp_stash) entry;
	struct wire_hdr	 h;
	uint32_t	 src;
	uint8_t		*payload;
};

struct dp_stats {
	uint64_t	ops_done;
	uint64_t	ops_failed;
	uint64_t	rx_bad;		/* all peers and unidentified */
	uint64_t	rx_stale;
	uint64_t	stash_dropped;
	uint64_t	future_kept;	/* data of a newer epoch, kept */
	uint64_t	tx_zerocopy;	/* messages sent from registered memory */
	uint64_t	tx_copied;	/* messages a backend copied to send */
};

struct dp {
	struct dp_conf	 conf;
	uint64_t	 boot_id;
	/* the backends running here, most preferred first */
	struct dp_tp {
		const struct tp_ops *ops;
		void	*st;
	}		 tps[DP_MAX_TP];
	int		 ntp;
	uint32_t	 running;	/* their DP_BACKEND_* bits */
	void		*mem_base;	/* dp_set_memory */
	size_t		 mem_len;
	int		 wfd;		/* epoll over their fds (several) */
	int		 wfd_ext;	/* the caller's fd added to it */
	struct dp_peer	*peers[DP_MAX_PEERS];
	int		 npeers;
	TAILQ_HEAD(, dp_group) groups;
	TAILQ_HEAD(, dp_op) all_ops;	/* every posted operation */
	TAILQ_HEAD(, dp_stash) stash;	/* messages for ops not posted yet */
	size_t		 stash_bytes;
	/* data of an epoch we do not run yet (its peer got it first) */
	TAILQ_HEAD(, dp_stash) future;
	size_t		 future_bytes;
	struct tp_msgq	 msg_free;	/* pool of tp_msg */
	uint8_t		**buf_free;	/* pool of chunk buffers */
	int		 nbuf_free;
	int		 cap_buf_free;
	size_t		 buf_size;	/* bytes of one pool buffer */
	struct dp_stats	 stats;
	uint64_t	 now_ns;	/* cached at each dp_progress */
	uint64_t	 last_tick_ns;
	int		 bad_logged;	/* unidentified bad input logged */
	/* a probe asked with a waiter finished (local.c answers it) */
	void		(*probe_done)(void *waiter, struct dp_peer *p);
};

uint64_t	 dp_now_ns(void);
/* @return an engine the caller frees with dp_free, or NULL (errno). */
struct dp	*dp_new(const struct dp_conf *conf);
void		 dp_free(struct dp *dp);
/*
 * Starts the backends (transport = auto: every one that initialises,
 * best first; otherwise the one named) and connects to every peer.
 * @return 0 or -errno
 */
int		 dp_start(struct dp *dp);
/*
 * The memory payloads are mostly lent from (the arena): each backend with
 * mem_register gets it, now or when it starts.
 */
void		 dp_set_memory(struct dp *dp, void *base, size_t len);
/* The state of a running backend (NULL if it does not run). */
void		*dp_tp_state(const struct dp *dp, const struct tp_ops *ops);
/* The backend for our connection to p now; NULL: none in common. */
const struct tp_ops *dp_pick_backend(struct dp *dp, struct dp_peer *p);
/* Polls the backend and runs timers. @return events handled */
int		 dp_progress(struct dp *dp);
/* Sleeps until the backend or fd has work; -ENOTSUP if it cannot. */
int		 dp_wait(struct dp *dp, int fd, int timeout_ms);
struct tp_msg	*dp_msg_new(struct dp *dp);
void		 dp_msg_free(struct dp *dp, struct tp_msg *m);
uint8_t		*dp_buf_get(struct dp *dp);
void		 dp_buf_put(struct dp *dp, uint8_t *b);
/* Queues m on p and kicks the backend. */
void		 dp_send(struct dp *dp, struct dp_peer *p, struct tp_msg *m);
/* Takes queued messages of op off every peer; @return how many. */
int		 dp_unqueue_op(struct dp *dp, struct dp_op *op);

/* ------------------------------------------------------------------ */
/* compress.c                                                          */

uint16_t	 comp_f32_to_bf16(float f);
float		 comp_bf16_to_f32(uint16_t b);
/* The codec a chunk of scheme comp travels in. */
enum wire_codec	 comp_codec(int comp, const float *src, uint32_t n);
/* @return bytes written (at most wire_codec_max(codec, n)). */
size_t		 comp_encode(enum wire_codec codec, const float *src,
		    uint32_t n, void *out);
/* dst = (add ? dst + : ) decoded. @return 0 or -EBADMSG */
int		 comp_decode(enum wire_codec codec, const void *in,
		    size_t len, uint32_t n, float *dst, int add);
size_t		 comp_topk_count(size_t n, float ratio);
/* Error feedback, see compress.c.  resid may be NULL. @return 0/-errno */
int		 comp_feedback(int comp, float ratio, float *g, float *resid,
		    size_t n);

/* ------------------------------------------------------------------ */
/* reduce.c                                                            */

void	reduce_sum_f32(float *restrict dst, const float *restrict src,
	    size_t n);
void	reduce_sum_f32_ref(float *dst, const float *src, size_t n);
void	reduce_div_f32(float *dst, size_t n, float divisor);
void	reduce_div_f32_ref(float *dst, size_t n, float divisor);

/* ------------------------------------------------------------------ */
/* arena.c: the shared memory of local workers.                        */

struct arena_region {
	uint64_t	off;
	uint64_t	len;
	int		used;
};

struct arena {
	int		 fd;		/* memfd */
	uint8_t		*base;
	uint64_t	 size;
	int		 hugetlb;
	uint32_t	 slot_used;	/* bit per worker slot */
	struct arena_region regions[2 * DP_MAX_WORKERS + 2];
	int		 nregions;
};

/* @return 0 or -errno (hugetlb tried first, plain pages then). */
int	 arena_init(struct arena *a, uint64_t size, uint64_t boot_id);
void	 arena_fini(struct arena *a);
/* A ring pair slot and a region. @return slot or -ENOSPC/-ENOMEM */
int	 arena_attach(struct arena *a, uint64_t want, uint64_t *off,
	    uint64_t *len);
void	 arena_detach(struct arena *a, int slot, uint64_t off);
uint64_t arena_req_ring_off(int slot);
uint64_t arena_cpl_ring_off(int slot);

/* ------------------------------------------------------------------ */
/* local.c: dataplane.sock, workers and control.                       */

struct local;
struct local	*local_new(struct dp *dp, struct arena *a, const char *path,
		    int epfd);
/* After dp_free (whose callbacks still reach the workers' rings). */
void		 local_free(struct local *l);
/* An epoll event for local (tag from the event's data). */
void		 local_event(struct local *l, void *tag, uint32_t events);
/* Drains worker rings and frees retired clients: call after each event
 * batch and after engine progress, never from inside a batch. */
void		 local_service(struct local *l);
int		 local_nworkers(const struct local *l);
/* A probe asked by client waiter finished (struct dp probe_done). */
void		 local_probe_done(void *waiter, struct dp_peer *p);

#endif /* ARC_DATAPLANE_H */
