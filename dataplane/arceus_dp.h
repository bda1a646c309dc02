/*
 * arceus_dp.h: libarceus-dp, what a worker links to talk to the node's
 * arceus-dataplane.
 *
 *	struct arc_dp *dp = arc_dp_attach("/run/arceus/dataplane.sock",
 *	    64 << 20, err, sizeof(err));
 *	float *g = arc_dp_alloc(dp, n * sizeof(float));
 *	struct arc_dp_op op = { .opcode = ARC_DP_ALLREDUCE, .group = 1,
 *	    .buf = g, .count = n, .divisor = nreplicas };
 *	int64_t id = arc_dp_post(dp, &op);	// one per gradient bucket
 *	...
 *	struct arc_dp_cpl c;
 *	arc_dp_wait(dp, id, -1, &c);		// c.status: 0 or -errno
 *
 * Tensors live in the arena, a shared-memory file the dataplane made and
 * passed at attach time; the dataplane reads and writes them in place.  A
 * buffer is lent to the dataplane from arc_dp_post() until its completion
 * is reaped: do not touch it in between.  Operations of one group complete
 * in posting order; several may be in flight.
 *
 * If the dataplane dies, every pending operation completes with
 * -ENOTCONN and arc_dp_alive() turns false; arc_dp_detach() then
 * arc_dp_attach() again once it is back (buffers of the old arena are gone).
 *
 * Not thread-safe: one struct arc_dp per thread that posts.
 */
#ifndef ARC_ARCEUS_DP_H
#define ARC_ARCEUS_DP_H

#include <stddef.h>
#include <stdint.h>

#define ARC_DP_SOCK_NAME	"dataplane.sock"

enum arc_dp_opcode {
	ARC_DP_ALLREDUCE = 1,	/* buf[count] = sum over the group (/divisor) */
	ARC_DP_REDUCE_SCATTER,	/* rank r's segment of buf = that sum */
	ARC_DP_ALLGATHER,	/* every rank's segment, from its owner */
	ARC_DP_BROADCAST,	/* buf = root's buf */
	ARC_DP_SEND,		/* buf[count] to peer */
	ARC_DP_RECV,		/* up to count values from peer into buf */
	ARC_DP_NOPCODES
};

/* How values travel on the wire (lossy but buf stays fp32). */
enum arc_dp_comp {
	ARC_DP_COMP_NONE = 0,
	ARC_DP_COMP_BF16,	/* bfloat16, round to nearest even */
	ARC_DP_COMP_INT8,	/* int8, one fp32 scale per 256 values */
	ARC_DP_COMP_TOPK,	/* the ratio largest |g|, index + value */
	ARC_DP_NCOMPS
};

/*
 * One operation.  Segments (reduce-scatter, all-gather) split count
 * values over the group's n ranks in ring order: rank r owns
 * [r*(count/n) + min(r, count%n), ...) with count/n (+1 for r < count%n)
 * values, in place in buf.
 */
struct arc_dp_op {
	enum arc_dp_opcode	opcode;
	enum arc_dp_comp	comp;
	float			ratio;	/* TOPK: fraction kept, (0, 1] */
	float			divisor; /* ALLREDUCE/REDUCE_SCATTER: 0 or 1 sum */
	uint16_t		group;	/* collectives: a group made by arc_dp_group */
	uint32_t		peer;	/* SEND/RECV: node id; BROADCAST: root */
	float			*buf;	/* in the arena (arc_dp_alloc) */
	size_t			count;	/* fp32 values */
	/*
	 * Error feedback, optional (NULL: none): count values in the arena,
	 * zero at first.  Before sending, the dataplane adds residual to
	 * buf, compresses, keeps what compression lost in residual, so that
	 * sums over steps of what was sent approach the true sums.
	 */
	float			*residual;
};

struct arc_dp_cpl {
	uint64_t	id;		/* what arc_dp_post returned */
	int32_t		status;		/* 0, or -errno */
	uint32_t	peer;		/* the node a failure is about, or 0 */
	uint64_t	wire_bytes;	/* this node sent, headers included */
	uint64_t	raw_bytes;	/* the same data uncompressed */
	uint64_t	count;		/* RECV: values received */
	uint64_t	usec;		/* post to completion, in the dataplane */
};

struct arc_dp;

/*
 * Connects, says hello, asks for region_bytes of tensor space.  @return a
 * handle the caller releases with arc_dp_detach, or NULL with err set.
 */
struct arc_dp	*arc_dp_attach(const char *sock_path, size_t region_bytes,
		    char *err, size_t errlen);
/* Detaches; pending operations are abandoned (their buffers with them). */
void		 arc_dp_detach(struct arc_dp *dp);
/* 64-byte aligned space in the arena, or NULL (errno ENOMEM). */
void		*arc_dp_alloc(struct arc_dp *dp, size_t bytes);
void		 arc_dp_free(struct arc_dp *dp, void *p);
uint32_t	 arc_dp_node_id(const struct arc_dp *dp);
int		 arc_dp_alive(const struct arc_dp *dp);

/* Defines group `group` (1..65535), members in ring order. @return 0/-errno */
int		 arc_dp_group(struct arc_dp *dp, uint16_t group,
		    const uint32_t *members, int n);
/*
 * Ties the operations posted from now on to the dataplane's epoch `epoch`
 * (0, the default: any): one posted while the dataplane runs another
 * epoch completes with -ESTALE and moves nothing.  A worker of a plan
 * sets its plan's epoch, so that a new epoch stops the old plan's work.
 */
void		 arc_dp_set_epoch(struct arc_dp *dp, uint32_t epoch);
/* @return the operation id (>= 0) or -errno (-EAGAIN: too many pending) */
int64_t		 arc_dp_post(struct arc_dp *dp, const struct arc_dp_op *op);
/*
 * Waits for operation id (timeout_ms < 0: forever).
 * @return 0 with *cpl filled (check cpl->status), or -ETIMEDOUT, -EINVAL.
 */
int		 arc_dp_wait(struct arc_dp *dp, uint64_t id, int timeout_ms,
		    struct arc_dp_cpl *cpl);
/* @return 1 if operation id completed (*cpl filled), 0 if not yet. */
int		 arc_dp_test(struct arc_dp *dp, uint64_t id,
		    struct arc_dp_cpl *cpl);
/* Readable when a completion may be there (for a worker's event loop). */
int		 arc_dp_fd(const struct arc_dp *dp);
/* Text for a completion: "peer 3: connection reset" and the like. */
const char	*arc_dp_strerror(const struct arc_dp_cpl *cpl, char *buf,
		    size_t len);

/* Local-protocol helpers for control and tools (no arena needed). */
struct imsg_dp_link;
struct imsg_dp_peer;
struct imsg_dp_status;
/* Connects and says hello as role (enum imsg_role). @return fd or -errno */
int	arc_dp_connect(const char *sock_path, uint32_t role, char *err,
	    size_t errlen);
/* @return links filled (<= max) or -errno */
int	arc_dp_links(int fd, struct imsg_dp_link *out, int max);
int	arc_dp_probe(int fd, uint32_t peer, uint32_t mbytes);
int	arc_dp_set_peers(int fd, uint32_t epoch,
	    const struct imsg_dp_peer *peers, int n);
int	arc_dp_set_group(int fd, uint16_t group, const uint32_t *members,
	    int n);
int	arc_dp_status(int fd, struct imsg_dp_status *out);

#endif /* ARC_ARCEUS_DP_H */
