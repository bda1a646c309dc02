/*
 * ctlmsg.h: the records of control.sock that more than control speaks:
 * framed {type u16, flags u16, len u32} + payload, CTL_VERSION in each
 * payload.  arceusctl queries; workers report their training progress
 * (IMSG_CTL_REPORT, each answered with IMSG_CTL_END, many per connection).
 * Jobs (IMSG_CTL_JOB) are control's own: control/control.h.
 */
#ifndef ARC_CTLMSG_H
#define ARC_CTLMSG_H

#include <stdint.h>

#define CTL_VERSION		1
#define CTL_HDR_LEN		8
#define CTL_MAX_PAYLOAD		(60u << 10)
enum ctl_type {
	IMSG_CTL_QUERY		= 64,	/* ctl_query: what to answer */
	IMSG_CTL_DATA		= 65,	/* text or JSON, in chunks */
	IMSG_CTL_END		= 66,	/* ctl_end: done, with a status */
	IMSG_CTL_REPORT		= 67,	/* ctl_report: training progress */
	IMSG_CTL_JOB		= 68,	/* ctl_job: start or stop a job */
	IMSG_CTL_SHARE		= 69,	/* ctl_share: the answer to "share" */
	IMSG_CTL_REEPOCH	= 70,	/* ctl_reepoch: a worker failed in it */
};
struct ctl_hdr {
	uint16_t	type;
	uint16_t	flags;
	uint32_t	len;
};
struct ctl_query {
	uint32_t	version;	/* CTL_VERSION */
	uint32_t	json;		/* 1: JSON, 0: human tables */
	char		what[24];	/* status, members, metrics, plan */
};
/*
 * A worker's step failed in the plan of this epoch (a peer died or
 * restarted): it asks for the next epoch, which starts every dataplane's
 * collectives afresh, so that the restarted workers line up.  Control
 * passes it to the leader on SWIM (reepoch) and answers IMSG_CTL_END at
 * once; an epoch already over is ignored.
 */
struct ctl_reepoch {
	uint32_t	version;
	uint32_t	pad;
	uint64_t	epoch;
};
struct ctl_end {
	int32_t		status;		/* 0 or positive errno */
	uint32_t	pad;
};
struct ctl_report {
	uint32_t	version;
	/*
	 * The step's compute on this node's rows, per token, in ns:
	 * forward and backward up to the wait for the gradient all-reduce
	 * (so neither the network nor slower replicas count), 0 when not
	 * measured (a standby, a pipeline stage, or a worker from before
	 * this field, which sent 0 here: the record keeps its size).
	 * Control turns it into this node's measured training GFLOP/s.
	 */
	uint32_t	compute_ns_per_token;
	int64_t		step;
	double		loss;
	double		tokens_per_s;
	int64_t		ckpt_step;	/* last committed checkpoint */
	int64_t		ckpt_unix;	/* its time, seconds */
};
/*
 * This node's part of the committed plan: the answer to the query "share"
 * (one IMSG_CTL_SHARE, then IMSG_CTL_END), what a worker trains by.
 */
#define CTL_SHARE_MAX		64
struct ctl_share {
	uint32_t	version;
	int32_t		status;		/* 0, or why there is no part here:
					   ENOENT no plan (no job, or not
					   planned yet), ESRCH this node is not
					   in it, ENOTSUP tensor parallel
					   inside pipeline stages, or stages
					   split unlike, E2BIG > 64 replicas */
	uint64_t	epoch;		/* the plan's */
	uint32_t	tp, pp, dp;
	uint32_t	rank;		/* ours among the replicas */
	uint32_t	group;		/* their dataplane group */
	int32_t		global_batch;	/* sequences per step */
	char		job[64];
	uint32_t	members[CTL_SHARE_MAX];	/* replicas, ring order */
	int32_t		shares[CTL_SHARE_MAX];	/* their sequences per step */
	int32_t		nmicro[CTL_SHARE_MAX];	/* in this many micro-batches */
	/*
	 * Standbys: the epoch's members the plan gives no rows (a node too
	 * slow to pay for its share of the all-reduce).  They follow the
	 * replicas in members[], with share and nmicro 0, and take part in
	 * the gradient all-reduce with nothing to add, so that every node
	 * keeps the model in step and a replan never strands the newest
	 * state on a node outside the plan.  The group then holds replicas
	 * and standbys (CTL_SHARE_STANDBY_GROUP).
	 */
	uint32_t	nstandby;
	uint32_t	pad;
	/*
	 * Pipeline stages (pp > 1): members[r * pp + s] is stage s of
	 * replica r, layers[s] its transformer blocks (the same split in
	 * every replica; stage 0 also holds the embedding, the last the
	 * final LayerNorm and head),
	 * shares[r] and nmicro[r] per replica; rank indexes members[].
	 */
	int32_t		layers[CTL_SHARE_MAX];
	/*
	 * Tensor-parallel shards (tp > 1, pp 1): members[r * tp + k] is rank
	 * k of replica r's tensor group, shares[r] and nmicro[r] per
	 * replica, no standbys; rank indexes members[].
	 */
};
#define CTL_SHARE_STANDBY_GROUP	32767

_Static_assert(sizeof(struct ctl_hdr) == CTL_HDR_LEN, "ctl_hdr size");
_Static_assert(sizeof(struct ctl_share) == 1136, "ctl_share size");
_Static_assert(sizeof(struct ctl_query) == 32, "ctl_query size");
_Static_assert(sizeof(struct ctl_end) == 8, "ctl_end size");
_Static_assert(sizeof(struct ctl_reepoch) == 16, "ctl_reepoch size");
_Static_assert(sizeof(struct ctl_report) == 48, "ctl_report size");

#endif /* ARC_CTLMSG_H */
