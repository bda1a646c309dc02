/*
 * rdp.h: the reliable datagram protocol of the DPDK backend, as a pure
 * module (no DPDK, no engine): frame layout and parser, the sending half
 * of a stream (sequence numbers, window, retransmission), the receiving
 * half (cumulative and selective acks, reordering), and reassembly of
 * messages cut into frames.  transport_dpdk.c drives it over a port;
 * tests/unit/check_rdp.c drives it over a simulated lossy channel.
 *
 * A frame on the wire (all big-endian):
 *
 *   Ethernet (14) | IPv4 (20, no options) | UDP (8, checksum 0) |
 *   rdp header (34) | payload (len)
 *
 *   rdp header:
 *     off len field
 *       0   4 magic    RDP_MAGIC ("ARDP")
 *       4   1 version  RDP_VERSION
 *       5   1 type     enum rdp_type
 *       6   2 flags    RDP_F_*
 *       8   4 src      sender's node id
 *      12   4 dst      receiver's node id
 *      16   8 session  DATA: the sender's stream; ACK/RST: the stream
 *                      acknowledged or refused (the data sender's)
 *      24   4 seq      DATA: frame number; ACK: cumulative (next expected)
 *      28   2 len      payload bytes
 *      30   4 zero     (the payload starts 76 bytes into the frame:
 *                      a message's floats are 4-byte aligned)
 *
 * A stream (one direction between two nodes):
 *   1. the sender opens a session (random 64-bit id): frame 0 is a SYN
 *      with no payload; the stream is connected when it is acknowledged;
 *   2. messages are cut into frames of at most `mss` bytes, the last
 *      flagged END; frames carry consecutive sequence numbers;
 *   3. the receiver delivers frames in sequence order, exactly once,
 *      holding early ones (up to RDP_WINDOW ahead), and acknowledges
 *      with the next sequence it expects plus a bitmap of the frames it
 *      holds beyond it (ACK payload: RDP_SACK_BYTES);
 *   4. the sender keeps every frame until acknowledged: one not acked
 *      within the retransmission timeout (from measured RTT, backed off)
 *      or passed over by 3 selectively acked frames is sent again; the
 *      frames in flight stay under a congestion window (halved on loss,
 *      grown by one frame per window acked);
 *   5. a message is done (its buffers may be reused) when its last frame
 *      is cumulatively acknowledged;
 *   6. a DATA frame of a session the receiver does not know, other than a
 *      SYN, is answered with RST: the sender's peer restarted or closed.
 */
#ifndef ARC_RDP_H
#define ARC_RDP_H

#include <stddef.h>
#include <stdint.h>

#define RDP_MAGIC		0x41524450u	/* "ARDP" */
#define RDP_VERSION		1
#define RDP_HDR_LEN		34	/* frame payload 4-byte aligned */
#define RDP_ETH_LEN		14
#define RDP_IP_LEN		20
#define RDP_UDP_LEN		8
#define RDP_OVERHEAD		(RDP_ETH_LEN + RDP_IP_LEN + RDP_UDP_LEN + \
				 RDP_HDR_LEN)
#define RDP_MAX_MSS		9000	/* payload of one frame, at most */
#define RDP_WINDOW		1024	/* frames in flight, power of two */
#define RDP_SACK_BYTES		(RDP_WINDOW / 8)
#define RDP_RQ_LEN		(2 * RDP_WINDOW) /* retransmission queue */
#define RDP_CWND_INIT		64	/* frames */
#define RDP_CWND_MIN		8
#define RDP_RTO_INIT_NS		20000000ull	/* before any RTT sample */
#define RDP_RTO_MIN_NS		10000000ull	/* a shared 2-core box stalls ms */
#define RDP_RTO_MAX_NS		200000000ull
#define RDP_DUPTHRESH		3	/* sacked frames past a hole: lost */

#define RDP_ETHERTYPE_IPV4	0x0800

enum rdp_type {
	RDP_DATA = 1,
	RDP_ACK,
	RDP_RST,
	RDP_NTYPES
};

#define RDP_F_SYN	0x0001	/* frame 0 of a session, no payload */
#define RDP_F_END	0x0002	/* last frame of a message */
#define RDP_F_ALL	(RDP_F_SYN | RDP_F_END)

/* Why a frame was refused. */
enum rdp_err {
	RDP_OK = 0,
	RDP_ENOTOURS,	/* not IPv4/UDP to our port: someone else's traffic */
	RDP_ESHORT,	/* shorter than its headers say */
	RDP_EIP,	/* IPv4 header: version, length, fragment, checksum */
	RDP_EUDP,	/* UDP length */
	RDP_EMAGIC,
	RDP_EVERSION,
	RDP_ETYPE,
	RDP_EFLAGS,	/* unknown flags, nonzero padding, SYN with data */
	RDP_ELEN,	/* payload length wrong for the type */
	RDP_NERRS
};

/* Addresses of a frame (IPv4 addresses and ports in host order). */
struct rdp_addr {
	uint8_t		dst_mac[6];
	uint8_t		src_mac[6];
	uint32_t	src_ip;
	uint32_t	dst_ip;
	uint16_t	src_port;
	uint16_t	dst_port;
};

/* The decoded rdp header. */
struct rdp_hdr {
	uint8_t		type;
	uint16_t	flags;
	uint32_t	src;
	uint32_t	dst;
	uint64_t	session;
	uint32_t	seq;
	uint16_t	len;
};

/*
 * Writes the Ethernet, IPv4, UDP and rdp headers of a frame carrying
 * h->len payload bytes (which follow at out + RDP_OVERHEAD).
 */
void		 rdp_frame_encode(uint8_t out[RDP_OVERHEAD],
		    const struct rdp_addr *a, const struct rdp_hdr *h);
/*
 * Parses a received frame of len bytes; port is our UDP port.  Checks
 * every field; on RDP_OK fills a, h and *payload (h->len bytes).
 */
enum rdp_err	 rdp_frame_parse(const uint8_t *buf, size_t len,
		    uint16_t port, struct rdp_addr *a, struct rdp_hdr *h,
		    const uint8_t **payload);
const char	*rdp_strerror(enum rdp_err e);

/* ------------------------------------------------------------------ */
/* ARP (RFC 826) for IPv4 over Ethernet: who has the peers' addresses.  */

#define RDP_ETHERTYPE_ARP	0x0806
#define RDP_ARP_LEN		42	/* Ethernet 14 + ARP 28 */
#define RDP_ARP_REQUEST		1
#define RDP_ARP_REPLY		2

enum rdp_arp_err {
	RDP_ARP_OK = 0,
	RDP_ARP_ENOTARP,	/* another ethertype: not for the ARP code */
	RDP_ARP_ESHORT,		/* fewer than 42 bytes */
	RDP_ARP_EHW,		/* hardware type not Ethernet or length not 6 */
	RDP_ARP_EPROTO,		/* protocol not IPv4 or length not 4 */
	RDP_ARP_EOP,		/* neither request nor reply */
	RDP_ARP_ESENDER,	/* sender MAC multicast/zero, or IP 0 */
	RDP_ARP_NERRS
};

/* An ARP packet's fields (addresses in host order). */
struct rdp_arp {
	uint16_t	op;		/* RDP_ARP_REQUEST or RDP_ARP_REPLY */
	uint8_t		sha[6];		/* sender MAC */
	uint32_t	spa;		/* sender IPv4 */
	uint8_t		tha[6];		/* target MAC (zero in requests) */
	uint32_t	tpa;		/* target IPv4 */
};

/*
 * Writes an Ethernet frame carrying ARP packet p, to dst (broadcast for
 * a request) from p->sha.  @return RDP_ARP_LEN
 */
size_t		 rdp_arp_build(uint8_t out[RDP_ARP_LEN], const uint8_t dst[6],
		    const struct rdp_arp *p);
/* Parses a received frame; on RDP_ARP_OK fills p. */
enum rdp_arp_err rdp_arp_parse(const uint8_t *buf, size_t len,
		    struct rdp_arp *p);
const char	*rdp_arp_strerror(enum rdp_arp_err e);

/*
 * One neighbour's resolution: static (from the configuration, never
 * asked), or learnt by ARP.  The caller asks (broadcasts a request)
 * whenever rdp_neigh_due says so: at once after rdp_neigh_want, then
 * with a doubling backoff (RDP_ARP_RETRY_NS .. RDP_ARP_RETRY_MAX_NS)
 * until an answer comes.
 */
#define RDP_ARP_RETRY_NS	10000000ull	/* first retry: 10 ms */
#define RDP_ARP_RETRY_MAX_NS	1000000000ull	/* then at most 1 s apart */

struct rdp_neigh {
	uint8_t		 mac[6];
	uint8_t		 known;		/* mac is usable */
	uint8_t		 is_static;
	uint8_t		 asking;	/* a resolution is under way */
	uint64_t	 next_ns;	/* next request when asking */
	uint64_t	 gap_ns;	/* current backoff */
	uint64_t	 requests;	/* sent for it */
	uint64_t	 resolved;	/* answers that set or confirmed it */
	uint64_t	 changes;	/* its MAC changed */
};

/* A static entry: never asked, never overwritten. */
void	 rdp_neigh_set_static(struct rdp_neigh *n, const uint8_t mac[6]);
/* Starts (or restarts) a resolution at now; no-op for a static entry. */
void	 rdp_neigh_want(struct rdp_neigh *n, uint64_t now);
/* A request is due now: counts it and schedules the next (backoff). */
int	 rdp_neigh_due(struct rdp_neigh *n, uint64_t now);
/*
 * An ARP packet from the neighbour told mac.  @return 1 if the MAC is
 * new or changed (0: same, or static and ignored).
 */
int	 rdp_neigh_learn(struct rdp_neigh *n, const uint8_t mac[6]);

/* ------------------------------------------------------------------ */
/* Sending half of a stream.                                           */

/* A frame in flight (window slot). */
struct rdp_seg {
	void		*cookie;	/* the message (NULL: the SYN) */
	const uint8_t	*hdr;		/* message = hdr[hdrlen] + payload */
	const uint8_t	*payload;
	uint32_t	 hdrlen;
	uint32_t	 off;		/* of this frame in the message */
	uint16_t	 len;
	uint16_t	 flags;		/* RDP_F_* */
	uint64_t	 sent_ns;	/* last transmission */
	uint8_t		 ntx;		/* transmissions */
	uint8_t		 sacked;
	uint8_t		 queued;	/* in the retransmission queue */
};

/* What to put in one frame: up to two pieces to copy, in order. */
struct rdp_out {
	void		*cookie;	/* the message (NULL: the SYN) */
	uint32_t	 seq;
	uint16_t	 flags;
	uint16_t	 len;		/* l1 + l2 */
	const uint8_t	*p1;
	uint16_t	 l1;
	const uint8_t	*p2;
	uint16_t	 l2;
	uint8_t		 ntx;		/* transmissions, this one counted */
};

/* A message is done: res 0 (all acknowledged) or -errno (reset). */
typedef void rdp_done_fn(void *arg, void *cookie, int res);

struct rdp_tx {
	uint32_t	 una;		/* oldest unacknowledged */
	uint32_t	 nxt;		/* next new sequence */
	uint16_t	 mss;
	int		 syn_acked;	/* connected (not una != 0: it wraps) */
	/* the message being cut (cookie NULL: none) */
	void		*cur;
	const uint8_t	*cur_hdr;
	const uint8_t	*cur_payload;
	uint32_t	 cur_hdrlen;
	uint32_t	 cur_total;
	uint32_t	 cur_off;
	/* retransmission queue: sequences, FIFO */
	uint32_t	 rq[RDP_RQ_LEN];
	uint32_t	 rq_head, rq_tail;
	/* timing and congestion */
	uint64_t	 srtt_ns;	/* 0: no sample yet */
	uint64_t	 rttvar_ns;
	uint64_t	 rto_ns;
	uint32_t	 wmax;		/* frames in flight at most (<= window) */
	double		 cwnd;		/* frames */
	double		 ssthresh;
	uint32_t	 recover;	/* no new loss reaction below this */
	/*
	 * A timeout sends only the oldest frame again; the ACK of it says
	 * whether the receiver holds frames sent after it (it was only
	 * slow: they stay, SACK recovery mends any holes, and the window
	 * halved by the timeout is restored) or not (they are all sent
	 * again).  On a shared 2-core box most timeouts are the
	 * receiver descheduled past the RTO: a whole window sent again was
	 * up to 1024 duplicate frames per timeout.
	 */
	int		 rto_probe;	/* that lone retransmission is out */
	uint32_t	 rto_seq;	/* the frame sent again */
	uint32_t	 rto_nxt;	/* nxt at the timeout */
	double		 rto_cwnd;	/* the window before it: restored */
	double		 rto_ssthresh;	/* when the receiver held later
					   frames (the timeout was spurious) */
	/* counters */
	uint64_t	 frames;	/* first transmissions */
	uint64_t	 rexmits;
	uint64_t	 timeouts;
	uint64_t	 rto_held;	/* timeouts after which the receiver
					   turned out to hold later frames */
	/*
	 * Stalls: a message waiting while the window (cwnd, or wmax) is
	 * full, from the first refusal to the next new frame.
	 */
	uint64_t	 stall_from;	/* 0: not stalled */
	int		 stall_cwnd;	/* cwnd (not wmax) was the limit */
	uint64_t	 stall_ns;	/* in all */
	uint64_t	 stall_max_ns;
	uint64_t	 stalls_1ms;	/* those of a millisecond or more */
	uint64_t	 stall_cwnd_ns;	/* of stall_ns, with cwnd < wmax */
	rdp_done_fn	*done;
	void		*arg;
	struct rdp_seg	 segs[RDP_WINDOW];
};

/* Opens a session: frame 0 (SYN) is queued. */
void	 rdp_tx_init(struct rdp_tx *t, uint16_t mss, rdp_done_fn *done,
	    void *arg);
/* Every message reported done with res; the stream starts over (SYN). */
void	 rdp_tx_reset(struct rdp_tx *t, int res);
/* The SYN was acknowledged. */
int	 rdp_tx_connected(const struct rdp_tx *t);
/* A message is being cut: push nothing until it is all in the window. */
int	 rdp_tx_busy(const struct rdp_tx *t);
/* Nothing in flight and nothing being cut. */
int	 rdp_tx_idle(const struct rdp_tx *t);
/*
 * Queues a message (hdr then payload, lent until done(cookie)); only
 * when !rdp_tx_busy.  cookie must not be NULL.
 */
void	 rdp_tx_push(struct rdp_tx *t, void *cookie, const uint8_t *hdr,
	    uint32_t hdrlen, const void *payload, uint32_t len);
/*
 * The next frame to transmit (a retransmission first, else a new frame
 * if the window allows), counted as sent at now.  @return 1, or 0 if
 * nothing may go now.  A frame that could not be sent after all goes
 * back with rdp_tx_lost.
 */
int	 rdp_tx_next(struct rdp_tx *t, uint64_t now, struct rdp_out *o);
void	 rdp_tx_lost(struct rdp_tx *t, uint32_t seq);
/*
 * An ACK: cum = the receiver's next expected; bit i of sack (LSB first
 * per byte) = the receiver holds cum + i.  Frames below cum are done;
 * messages whose last frame is done are reported, in order.
 * @return frames newly acknowledged (cumulatively or selectively).
 */
int	 rdp_tx_ack(struct rdp_tx *t, uint32_t cum, const uint8_t *sack,
	    uint32_t sack_bytes, uint64_t now);
/* Retransmission timer: call every millisecond or so. */
void	 rdp_tx_tick(struct rdp_tx *t, uint64_t now);

/* ------------------------------------------------------------------ */
/* Receiving half of a stream.                                         */

/*
 * A frame handed up in order: data[len] with flags (RDP_F_*).  @return 0,
 * or nonzero to stop delivering (the stream was reset meanwhile).
 */
typedef int rdp_deliver_fn(void *arg, const uint8_t *data, uint16_t len,
    uint16_t flags);
/* A held frame's storage may be released. */
typedef void rdp_release_fn(void *arg, void *handle);

struct rdp_held {
	void		*handle;	/* NULL: empty */
	const uint8_t	*data;
	uint16_t	 len;
	uint16_t	 flags;
};

struct rdp_rx {
	uint32_t	 nxt;		/* next expected */
	int		 ack_due;	/* something arrived since the last ACK */
	uint32_t	 nheld;
	uint64_t	 dups;
	uint64_t	 early;		/* frames held out of order */
	rdp_deliver_fn	*deliver;
	rdp_release_fn	*release;
	void		*arg;
	struct rdp_held	 held[RDP_WINDOW];
};

enum rdp_rx_res {
	RDP_RX_DELIVERED = 0,	/* handed up (caller keeps its frame) */
	RDP_RX_HELD,		/* kept: released later via release() */
	RDP_RX_DUP,		/* already had it (caller frees) */
	RDP_RX_BEYOND,		/* past the window (caller frees) */
	RDP_RX_STOPPED,		/* deliver asked to stop (caller frees) */
};

void	 rdp_rx_init(struct rdp_rx *r, rdp_deliver_fn *deliver,
	    rdp_release_fn *release, void *arg);
/* Releases everything held; expects frame 0 again. */
void	 rdp_rx_reset(struct rdp_rx *r);
enum rdp_rx_res rdp_rx_data(struct rdp_rx *r, uint32_t seq, uint16_t flags,
	    const uint8_t *data, uint16_t len, void *handle);
/* Fills an ACK: *cum and sack[RDP_SACK_BYTES]; clears ack_due. */
void	 rdp_rx_ack(struct rdp_rx *r, uint32_t *cum,
	    uint8_t sack[RDP_SACK_BYTES]);

/* ------------------------------------------------------------------ */
/* Reassembly of messages from in-order frames.                        */

struct rdp_asm {
	uint8_t		*buf;
	size_t		 len;
	size_t		 cap;
	size_t		 max;		/* largest message accepted */
	int		 skipping;	/* an oversized message: drop to END */
};

void	 rdp_asm_init(struct rdp_asm *a, size_t max);
void	 rdp_asm_fini(struct rdp_asm *a);
/* Drops a partial message. */
void	 rdp_asm_reset(struct rdp_asm *a);
/*
 * Adds one frame's payload.  @return 1 with *msg, *msglen a whole
 * message (valid until the next call; the frame itself when it was one
 * whole message 4-byte aligned, else a copy 16-byte aligned), 0 when more frames are needed, -EMSGSIZE when a
 * message exceeded max (dropped up to its END), -ENOMEM.
 */
int	 rdp_asm_add(struct rdp_asm *a, const uint8_t *data, uint16_t len,
	    int end, const uint8_t **msg, size_t *msglen);

#endif /* ARC_RDP_H */
