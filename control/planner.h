/*
 * planner.h: the partition planner, a pure function (ARCHITECTURE.md §3).
 *
 * plan_compute() maps (model, job, devices, link matrix) to a plan:
 * tensor-parallel groups inside islands, pipeline stages (contiguous layer
 * ranges), data-parallel replicas with per-replica batch shares, and the
 * predicted step time split into compute, communication and bubble.  It
 * reads only its arguments and writes only *out, so every member of the
 * cluster computes the same plan from the same committed inputs, and
 * `arceusctl plan` shows what control would do.
 *
 * The cost model (docs/control.md has the derivation):
 * - a stage's time per token = its layers' FLOPs / (t * slowest member's
 *   GFLOP/s) + tensor-parallel all-reduces inside the island + sending the
 *   boundary activation (and its gradient) to the next stage;
 * - a replica with share g sequences and bottleneck stage time c per token
 *   takes T*c*(g + (S-1)*min(b, g)) (1F1B: the second term is the bubble);
 * - then each stage's gradients are all-reduced over the replicas (ring);
 * - memory per device: 16 bytes per parameter (weights, gradient, Adam m
 *   and v) / t, plus stored activations of min(S - s, ceil(global batch /
 *   micro-batch)) micro-batches in flight at stage s, plus a fixed runtime
 *   reserve.
 */
#ifndef ARC_PLANNER_H
#define ARC_PLANNER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PLAN_MAX_LAYERS		4096
#define PLAN_MAX_DEVICES	65536
#define PLAN_MAX_ISLANDS	1024
#define PLAN_MAX_TP		8	/* tensor-parallel group, at most */
#define PLAN_RESERVE_BYTES	(64.0 * 1048576)	/* runtime, per device */
#define PLAN_EXACT_DEVICES	6	/* exhaustive grouping up to this */
#define PLAN_STICKY		1.10	/* replan keeps placement within 10% */
#define PLAN_SUBSETS		4	/* speed and link classes tried */
#define PLAN_PATIENCE		8	/* deeper pipelines tried after the
					   best depth so far */

struct plan_layer {
	double	param_bytes;		/* fp32 weights */
	double	flops_per_token;	/* forward + backward */
	double	act_bytes_per_token;	/* kept for backward */
};

struct plan_model {
	int	nlayers;
	int	n_head;			/* tensor parallel must divide it */
	int	block_size;		/* T, tokens per sequence */
	double	boundary_bytes_per_token;	/* sent between stages */
	double	tp_bytes_per_token;	/* all-reduced per layer (x4) under TP */
	struct plan_layer layer[PLAN_MAX_LAYERS];
};

struct plan_job {
	int	global_batch;		/* sequences per step, whole cluster */
	int	micro_batch;		/* sequences per micro-batch, at most */
	int	max_tp, max_pp;		/* what the workers can run; 0: any */
};

struct plan_device {
	uint32_t id;
	int	island;			/* index into the islands */
	double	gflops;			/* measured */
	double	mem_bytes;		/* usable for the model */
};

struct plan_cluster {
	int	ndev;
	struct plan_device *dev;
	int	nisland;
	double	*bw;			/* [nisland*nisland] bytes/s */
	double	*rtt;			/* [nisland*nisland] seconds */
};

struct plan_stage {
	int	first;			/* first layer */
	int	nlayers;
	double	sec_per_token;		/* compute + tp + send, per token */
	double	comm_per_token;		/* the tp + send part of it */
	double	mem_bytes;		/* needed per device */
	uint32_t dev[PLAN_MAX_TP];	/* device ids, tp of them */
};

struct plan_replica {
	int	share;			/* sequences per step */
	int	nmicro;			/* micro-batches per step */
	double	time;			/* seconds for its share */
};

struct plan {
	int	ok;
	char	why[256];		/* when !ok: the reason */
	int	tp, pp, dp;		/* tensor, pipeline, data parallel */
	int	global_batch;
	int	micro_batch;
	struct plan_replica *rep;	/* [dp] */
	struct plan_stage *st;		/* [dp * pp], replica-major */
	int	nidle;
	uint32_t *idle;			/* devices left out */
	double	step;			/* predicted seconds per step */
	double	compute, comm, bubble;	/* its parts */
	double	allreduce;		/* part of comm */
	double	tokens_per_s;
	double	moved_bytes;		/* vs the previous plan on replan */
};

/*
 * Plans.  prev (may be NULL) is the plan in force: when it still fits, its
 * placement is kept wherever a device survived, unless a fresh plan is
 * more than PLAN_STICKY times faster.  out must be zeroed or
 * plan_fini()ed; it is filled even on refusal (ok = 0, why).
 * @return 0, -ENOSPC (does not fit, why says which), -EINVAL or -ENOMEM.
 */
int	plan_compute(const struct plan_model *m, const struct plan_job *j,
	    const struct plan_cluster *c, const struct plan *prev,
	    struct plan *out);
void	plan_fini(struct plan *p);

/* GPT-2 shaped model: embedding, n_layer blocks, head (vocab V). */
void	plan_model_gpt(struct plan_model *m, int n_layer, int n_head,
	    int n_embd, int block_size, int vocab);

/*
 * Evaluates a given placement (tp, pp, dp, stages with devices and layer
 * ranges; shares) under the cost model and fills the times.  Used by
 * plan_compute and by tests that enumerate placements by brute force.
 * @return 0, or -ENOSPC if a stage does not fit its devices' memory.
 */
int	plan_eval(const struct plan_model *m, const struct plan_job *j,
	    const struct plan_cluster *c, struct plan *p);

/* Bytes of parameters devices must fetch to go from prev to p. */
double	plan_moved_bytes(const struct plan_model *m, const struct plan *prev,
	    const struct plan *p);

/* Stable text form (every member can compare) and JSON. */
void	plan_write(const struct plan *p, const struct plan_cluster *c,
	    FILE *fp);
void	plan_write_json(const struct plan *p, FILE *fp);

/* ---- replan.c: replanning on measured speed (stragglers) ----------- */

#define SPEED_SKIP	5	/* steps ignored after a (re)start */
#define SPEED_WINDOW	8	/* steps the median is taken over */
#define SPEED_MIN	4	/* steps before a value */
#define SPEED_TTL_S	300	/* a value without a new step expires */
#define SPEED_SETTLE_S	2.0	/* after a new epoch, samples ignored:
				   steps of the old plan still finish */

/* A node's measured training speed from its workers' reports. */
struct speed_est {
	uint64_t epoch;			/* of the last sample */
	int64_t	 last_step;
	int	 skip;			/* samples still to ignore */
	int	 n, pos;
	double	 win[SPEED_WINDOW];	/* GFLOP/s */
	double	 value;			/* the median; 0: none yet */
	double	 at;			/* when the last sample came (s) */
	double	 settle;		/* ignore samples before (s) */
};
void	speed_init(struct speed_est *s);
/*
 * One step's measured GFLOP/s (<= 0: not measured, ignored) at now (s).
 * A new epoch or a step that does not follow the last one starts over:
 * the next SPEED_SKIP samples are ignored (and, after a new epoch, all
 * for SPEED_SETTLE_S: the report does not say which plan a step ran
 * in, and the old plan's last steps, with other rows and peers, still
 * come), then the median of the last SPEED_WINDOW (at least SPEED_MIN)
 * is the value; the old value stays until then.  @return 1 if the value
 * changed.
 */
int	speed_add(struct speed_est *s, uint64_t epoch, int64_t step,
	    double gflops, double now);
/*
 * A value with no sample for ttl seconds (a standby trains no rows, so it
 * measures nothing) is dropped: the leader then plans that node by its
 * profile again, gives it rows if that pays, and measures it anew; so a
 * straggler that recovered comes back within about ttl.  @return 1 if
 * dropped.
 */
int	speed_expire(struct speed_est *s, double now, double ttl);
/*
 * The speeds to plan with: measured[i] where > 0 (src 'm'), else the
 * profile times the median measured/profile ratio of the nodes that have
 * both (src 'p'; a GEMM probe runs faster than training by about the
 * same factor on every node).  @return that ratio (1: none measured).
 */
double	speeds_resolve(int n, const double *profile, const double *measured,
	    double *out, char *src);
/*
 * The plan of an epoch's layout (raftfsm.h: slots, then shares): tp, pp,
 * dp, stages and shares filled, times not (plan_eval them).
 * @return 0, -EINVAL (no shares, or not that shape) or -ENOMEM.
 */
int	plan_from_layout(const uint32_t *layout, int len, int tp, int pp,
	    int dp, int global_batch, int micro_batch, struct plan *out);

struct replan_conf {
	double	gain;		/* fraction of the step a new plan must save */
	double	interval_s;	/* since the last epoch, at least; 0: never */
	double	hold_s;		/* the gain must hold this long */
};
struct replan_state {
	double	epoch_at;	/* when the epoch in force began */
	double	due_since;	/* the gain has held since; < 0: not */
};
enum replan_verdict {
	REPLAN_NO = 0,		/* the plan in force is good enough */
	REPLAN_HOLD,		/* better, but not for hold_s yet */
	REPLAN_WAIT,		/* better, but the last epoch is too recent */
	REPLAN_YES,
};
/*
 * Is a new epoch worth it: running is the plan in force evaluated under
 * the speeds now, fresh the plan the leader would make now.  Yes when
 * fresh differs (shares, stages or devices) and predicts a step at least
 * gain shorter, has done so for hold_s without a break, and interval_s
 * have passed since the epoch in force began.  A gain below the
 * threshold resets the hold: noise around one plan never flaps.  why
 * says shares, the replicas' (first) devices and steps, e.g. "shares
 * 4,4 on 1,2 -> 6,2 on 1,2, predicted step ..." (for HOLD, WAIT, YES).
 */
int	replan_decide(const struct replan_conf *rc, struct replan_state *rs,
	    double now, const struct plan *running, const struct plan *fresh,
	    char *why, size_t whylen);

#endif /* ARC_PLANNER_H */
