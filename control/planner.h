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

#endif /* ARC_PLANNER_H */
