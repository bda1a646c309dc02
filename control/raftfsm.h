/*
 * raftfsm.h: what the raft log holds and what the leader decides from it.
 *
 * The log's entries (big endian, magic "AREP", version 1):
 *   EPOCH  epoch u64, resume step i64, n u32, member ids u32[n],
 *          then the plan: job seq u64, tp u32, pp u32, dp u32, len u32,
 *          step time f64 (bits, u64), len bytes of plan text (planner.c's
 *          stable form; len 0: no job, no plan), then the layout: words
 *          u32, and words u32 (per slot, replica-major: first layer,
 *          layers, the tp device ids; then per replica its share of the
 *          global batch and its micro-batches), from which every member
 *          derives its groups and its workers their rows.
 *          Epochs are numbered 1, 2, ...: an entry whose number is not
 *          the next one is stale (two leaders in quick succession) and
 *          is applied as a no-op, counted;
 *   JOB    running u8, pad[3], name[64], n_layer, n_head, n_embd,
 *          block_size, micro_batch, global_batch (u32 each): job
 *          start/stop; each JOB entry bumps the job sequence, and the
 *          leader then plans and commits an epoch with the plan;
 *   CKPT   step i64: a committed checkpoint, where a new epoch resumes.
 * Malformed entries are applied as no-ops too (libraft retries an apply
 * that fails forever, MACHINE.md): the error goes to the apply's result.
 *
 * The decisions are pure functions of (configuration, alive set), so the
 * fixture tests and the daemon run the same code: roles_next() says the
 * one configuration change to make next (libraft allows one at a time),
 * epoch_needed() whether the committed member set is stale.
 */
#ifndef ARC_RAFTFSM_H
#define ARC_RAFTFSM_H

#include <stdint.h>

#include <raft.h>

#define EPOCH_MAGIC		0x41524550u	/* "AREP" */
#define EPOCH_VERSION		1
#define EPOCH_MAX_MEMBERS	1024
#define JOB_NAME_LEN		64
#define PLAN_TEXT_MAX		16384	/* plan text kept in an epoch */
#define PLAN_LAYOUT_MAX		8192	/* layout words kept in an epoch */

/* What the planner needs from a job file (cluster.c reads them). */
struct job_params {
	uint32_t n_layer, n_head, n_embd, block_size;
	uint32_t micro_batch, global_batch;
	uint32_t flags;			/* JOB_F_* */
};
/* The job's workers take pipeline stages from the plan (dist.stages =
   plan): the planner may split the model; without it, data parallel. */
#define JOB_F_PIPELINE	0x1
/* ... tensor-parallel shards (dist.tensor = plan): the planner may split
   every block's heads and MLP over a tensor group (tp > 1, pp 1) */
#define JOB_F_TENSOR	0x2

/* The plan an epoch carries. */
struct epoch_plan {
	uint64_t job_seq;		/* the job it was made for */
	int	 tp, pp, dp;
	double	 step;			/* predicted seconds per step */
	const char *text;		/* stable text form; NULL: none */
	/* dp * pp slots, replica-major: first layer, layers, tp device ids */
	const uint32_t *layout;
	int	 layout_len;		/* words */
};

enum entry_type {
	ENTRY_EPOCH = 1,
	ENTRY_JOB = 2,
	ENTRY_CKPT = 3,
};

struct cluster_state {
	uint64_t epoch;			/* last committed epoch, 0: none */
	int64_t	 resume_step;
	int	 nmembers;
	uint32_t members[EPOCH_MAX_MEMBERS];	/* sorted */
	int	 job_running;
	char	 job[JOB_NAME_LEN];
	struct job_params jp;
	uint64_t job_seq;		/* JOB entries applied */
	uint64_t plan_job_seq;		/* job_seq the plan was made for */
	int	 plan_tp, plan_pp, plan_dp;
	double	 plan_step;
	int	 plan_len;
	char	 plan[PLAN_TEXT_MAX];	/* NUL terminated */
	int	 layout_len;		/* words, 0: none */
	uint32_t layout[PLAN_LAYOUT_MAX];
	int64_t	 ckpt_step;		/* last committed checkpoint */
	uint64_t applied;		/* entries applied */
	uint64_t stale;			/* stale epochs skipped */
	uint64_t bad;			/* malformed entries skipped */
};

/* Called after an entry is applied (logging, tests). */
typedef void fsm_applied_fn(void *ctx, int type,
    const struct cluster_state *st);

struct cluster_fsm {
	struct raft_fsm	 fsm;		/* fsm.data points here */
	struct cluster_state st;
	fsm_applied_fn	*applied;
	void		*ctx;
};

void	cluster_fsm_init(struct cluster_fsm *f, fsm_applied_fn *applied,
	    void *ctx);

/*
 * Encoders.  The buffer comes from raft_malloc (raft_apply wants that);
 * on success the caller gives it to raft_apply or raft_free()s it.
 * @return 0 or -ENOMEM / -EINVAL.
 */
int	entry_epoch(struct raft_buffer *b, uint64_t epoch, int64_t resume,
	    const uint32_t *ids, int n, const struct epoch_plan *plan);
int	entry_job(struct raft_buffer *b, int running, const char *name,
	    const struct job_params *jp);
int	entry_ckpt(struct raft_buffer *b, int64_t step);

enum role_action {
	ROLE_NONE = 0,
	ROLE_ADD,		/* raft_add: an alive node not in the config */
	ROLE_ASSIGN,		/* raft_assign(id, role) */
	ROLE_REMOVE,		/* raft_remove: a dead node */
};

struct role_change {
	int	 action;
	uint32_t id;
	int	 role;		/* ROLE_ASSIGN: RAFT_VOTER or RAFT_STANDBY */
};

/*
 * The next configuration change: add alive newcomers, make spares
 * standbys, keep min(voters, alive) voters by promoting alive standbys
 * (lowest id first), then remove dead voters, demote surplus voters, and
 * remove dead standbys.  Never touches self.  alive: sorted ids, self
 * included.
 */
void	roles_next(const struct raft_configuration *conf,
	    const uint32_t *alive, int nalive, int voters, uint32_t self,
	    struct role_change *out);

/* A collective group of the plan: members in ring order. */
#define LAYOUT_GROUP_MAX	64
struct layout_group {
	uint16_t id;			/* 1..32767 data parallel, 32768.. tp */
	int	 n;
	uint32_t members[LAYOUT_GROUP_MAX];
};

/*
 * The groups node self belongs to under a layout (raftfsm.h, EPOCH): for
 * each stage s and tensor-parallel rank k, the ring of that device over
 * the replicas (id 1 + s * 8 + k), and its tensor-parallel group (id
 * 32768 + r * pp + s); groups of one are left out.
 * @return groups filled (<= max), or -EINVAL for a layout that does not
 * match tp, pp, dp.
 */
int	layout_groups(const uint32_t *layout, int len, int tp, int pp, int dp,
	    uint32_t self, struct layout_group *out, int max);

/*
 * Node self's part of a data-parallel plan: the replicas (the words after
 * the slots: share, micro-batches per replica) into out (members, shares,
 * nmicro, rank, group, dp, tp, pp; status 0), or with pipeline stages
 * every replica's stages (members r * pp + s) and each stage's blocks
 * (layers: the planner's layers less the embedding and head), then the members of the
 * epoch (epoch[nepoch]) the plan left out, as standbys with no rows
 * (nstandby; group CTL_SHARE_STANDBY_GROUP then); or out->status ENOENT
 * (no plan, or one without shares), ESRCH (self in neither), ENOTSUP
 * (pipeline or tensor parallel), E2BIG, EINVAL (a layout that does not
 * match).
 */
struct ctl_share;
void	layout_share(const uint32_t *layout, int len, int tp, int pp, int dp,
	    uint32_t self, const uint32_t *epoch, int nepoch,
	    struct ctl_share *out);

/*
 * Is an epoch due: the committed member set differs from alive (sorted),
 * or a running job has no plan made for it yet?
 */
int	epoch_needed(const struct cluster_state *st, const uint32_t *alive,
	    int nalive);

#endif /* ARC_RAFTFSM_H */
