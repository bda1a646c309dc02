/*
 * compute.h: arceus-worker's private header.  Every prototype of compute/,
 * grouped by file, so that the whole program can be found from here
 * (OpenBSD relayd.h style).
 *
 * Shapes follow llm.c: B batch, T time (block), C channels (n_embd),
 * NH heads, hs = C / NH, V vocabulary (256, bytes), L layers, N = B * T.
 * All tensors are row-major fp32.
 */
#ifndef ARC_COMPUTE_H
#define ARC_COMPUTE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf.h"

#define GPT_VOCAB	256	/* byte-level tokenizer */
#define LN_EPS		1e-5f	/* LayerNorm epsilon, as GPT-2 */

/* ------------------------------------------------------------------ */
/* kern_ref.c, kern_dnnl.c, attn.c: the kernels, one ops table each.  */
/*
 * Conventions:
 * - forward functions overwrite their outputs;
 * - backward functions ACCUMULATE (+=) into every gradient output, so that
 *   residual branches and micro-batches add up; callers zero them.  The
 *   activation gradients of matmul_bwd and gelu_bwd (dinp) take an `acc`
 *   flag: 0 overwrites, so that a fresh gradient needs no zeroing pass.
 * - gradient outputs documented "may be NULL" are skipped when NULL.
 */
struct kern_ops {
	const char	*name;

	/*
	 * out[N,OC] = inp[N,C] . w[OC,C]^T + bias[OC] (bias may be NULL);
	 * += instead when acc (a residual branch added straight into the
	 * stream)
	 */
	void	(*matmul_fwd)(float *out, const float *inp, const float *w,
		    const float *bias, int N, int C, int OC, int acc);
	/*
	 * dinp[N,C] += dout[N,OC] . w[OC,C]       (dinp may be NULL;
	 *                                           = instead when !acc)
	 * dw[OC,C]  += dout^T . inp[N,C]
	 * dbias[OC] += sum over N of dout          (dbias may be NULL)
	 */
	void	(*matmul_bwd)(float *dinp, float *dw, float *dbias,
		    const float *dout, const float *inp, const float *w,
		    int N, int C, int OC, int acc);
	/* out = (inp - mean) * rstd * w + b per row; saves mean[N], rstd[N] */
	void	(*layernorm_fwd)(float *out, float *mean, float *rstd,
		    const float *inp, const float *w, const float *b,
		    int N, int C);
	/* dinp[N,C] +=, dw[C] +=, db[C] += */
	void	(*layernorm_bwd)(float *dinp, float *dw, float *db,
		    const float *dout, const float *inp, const float *w,
		    const float *mean, const float *rstd, int N, int C);
	/*
	 * GELU, exact (erf) form as nanoGPT's nn.GELU(), with the bias of
	 * the matmul before it: pre[N,OC] += bias[OC] (bias may be NULL),
	 * then out[N,OC] = gelu(pre).
	 */
	void	(*gelu_fwd)(float *out, float *pre, const float *bias, int N,
		    int OC);
	/*
	 * dinp[N,OC] += gelu'(inp) * dout (= instead when !acc);
	 * dbias[OC] += the column sums of gelu'(inp) * dout (may be NULL)
	 */
	void	(*gelu_bwd)(float *dinp, float *dbias, const float *inp,
		    const float *dout, int N, int OC, int acc);
	/* probs[N,V] = softmax over V of logits[N,V] */
	void	(*softmax_fwd)(float *probs, const float *logits, int N, int V);
	/*
	 * Causal self-attention.  qkv[B,T,3C] holds q, k, v side by side
	 * (columns 0..C-1, C..2C-1, 2C..3C-1), head h in columns
	 * h*hs..(h+1)*hs-1 of each.  out[B,T,C] heads side by side;
	 * lse[B,NH,T] the log-sum-exp of each softmax row (scaled scores),
	 * saved for backward.  Scale 1/sqrt(hs).
	 */
	void	(*attn_fwd)(float *out, float *lse, const float *qkv,
		    int B, int T, int C, int NH);
	/* dqkv[B,T,3C] += gradient of attention given dout[B,T,C] */
	void	(*attn_bwd)(float *dqkv, const float *dout, const float *qkv,
		    const float *out, const float *lse, int B, int T, int C,
		    int NH);
};

extern const struct kern_ops kern_ref_ops;	/* kern_ref.c: scalar C */
extern const struct kern_ops kern_dnnl_ops;	/* kern_dnnl.c: oneDNN */

/* kern_dnnl.c: sets the thread count of oneDNN and OpenMP. */
void	kern_set_threads(int n);
/* kern_dnnl.c: "ref" or "dnnl"; NULL if unknown */
const struct kern_ops *kern_lookup(const char *name);
/*
 * kern_dnnl.c: releases the cached oneDNN primitives, memory objects and
 * scratch buffers (they are rebuilt on the next call).  Also run by a
 * destructor at exit.  A failing oneDNN call is a programming error: the
 * dnnl ops log it and exit.
 */
void	kern_dnnl_fini(void);

/* kern_vec.c: the fast GELU and LayerNorm (8-lane vectors), as above. */
void	vec_gelu_fwd(float *out, float *pre, const float *bias, int N, int OC);
void	vec_gelu_bwd(float *dinp, float *dbias, const float *inp,
	    const float *dout, int N, int OC, int acc);
void	vec_layernorm_fwd(float *out, float *mean, float *rstd,
	    const float *inp, const float *w, const float *b, int N, int C);
void	vec_layernorm_bwd(float *dinp, float *dw, float *db,
	    const float *dout, const float *inp, const float *w,
	    const float *mean, const float *rstd, int N, int C);

/*
 * gemm_tn.c: C[M,N] += A[K,M]^T . B[K,N] (row-major, leading dimensions
 * lda, ldb, ldc), and colsum[M] += the column sums of A when not NULL: a
 * linear layer's weight and bias gradients in one pass over dout.
 */
void	gemm_tn_acc(int M, int N, int K, const float *A, size_t lda,
	    const float *B, size_t ldb, float *C, size_t ldc, float *colsum);

/* attn.c: memory-efficient attention (tiled, online softmax; backward
 * recomputes the scores tile by tile).  Never holds a T x T matrix. */
void	attn_flash_fwd(float *out, float *lse, const float *qkv, int B, int T,
	    int C, int NH);
void	attn_flash_bwd(float *dqkv, const float *dout, const float *qkv,
	    const float *out, const float *lse, int B, int T, int C, int NH);

/* ------------------------------------------------------------------ */
/* rng.c: deterministic random numbers (state saved in checkpoints).  */
struct rng {
	uint64_t	s[2];	/* xoroshiro128+ state */
};
void		rng_seed(struct rng *r, uint64_t seed);
uint64_t	rng_u64(struct rng *r);
float		rng_uniform(struct rng *r);		/* [0, 1) */
float		rng_normal(struct rng *r);		/* N(0, 1) */
uint64_t	rng_below(struct rng *r, uint64_t n);	/* [0, n) */

/* ------------------------------------------------------------------ */
/* job.c: the job file ([model] [train] [data] [checkpoint]).          */
struct job {
	/* [model] */
	int64_t	n_layer;
	int64_t	n_head;
	int64_t	n_embd;
	int64_t	block_size;
	/* [train] */
	int64_t	batch_size;	/* sequences per micro-batch */
	int64_t	steps;
	double	lr;
	double	min_lr;
	int64_t	warmup_steps;
	int64_t	decay_steps;	/* 0: decay until `steps` */
	double	weight_decay;
	double	beta1;
	double	beta2;
	double	eps;
	double	grad_clip;	/* 0: off */
	double	dropout;
	int64_t	seed;
	int64_t	eval_interval;	/* 0: only at the end */
	int64_t	eval_iters;	/* validation batches per evaluation */
	int64_t	accumulate;	/* micro-batches per step */
	int64_t	threads;	/* 0: all cores */
	int64_t	log_interval;
	char	kernels[16];	/* dnnl | ref */
	int64_t	sample_len;	/* bytes generated at the end; 0: none */
	double	temperature;
	/* [data] */
	char	path[1024];
	double	val_fraction;
	/* [checkpoint] */
	char	ckpt_dir[1024];
	int64_t	ckpt_interval;	/* steps; 0: off */
	int64_t	ckpt_keep;
	int	resume;		/* load the newest checkpoint at start */
	/* [dist]: data parallel over the node's dataplane (dist.c) */
	char	dist_dataplane[1024];	/* its socket; empty: standalone */
	char	dist_members[512];	/* node ids of the replicas, ring order;
					   "plan": control's committed plan */
	char	dist_shares[512];	/* their batch shares; empty: batch_size */
	int64_t	dist_group;		/* the dataplane group they use */
	char	dist_compress[32];	/* none | bf16 | int8 | topk:R */
	char	dist_control[1024];	/* control.sock for reports (ctlreport.c) */
	int	dist_overlap;		/* all-reduce layers during backward */
	char	dist_stages[512];	/* node ids of the pipeline stages */
	char	dist_layers[512];	/* blocks per stage; empty: even */
	char	dist_schedule[16];	/* 1f1b | gpipe */
	char	dist_tensor[512];	/* node ids of the tensor group */
};

extern const struct conf_key job_keys[];
/*
 * Defaults, then path (may be NULL), then each "section.key=value" of sets.
 * Cross-key checks (n_embd % n_head, ...) too.  Errors are printed to
 * stderr as file:line: reason.  @return 0 or -1.
 */
int	job_load(struct job *job, const char *path, char **sets, int nsets);

/* ------------------------------------------------------------------ */
/* data.c: byte tokenizer and datasets.                               */
/*
 * A token file is either plain text (each byte a token) or a file made by
 * `arceusctl dataset build`: a 64-byte header ("ARCTOK01", count, crc)
 * then one byte per token.
 */
struct dataset {
	uint8_t		*tokens;	/* owned */
	size_t		 ntokens;
	size_t		 ntrain;	/* tokens [0, ntrain) train, rest val */
};
int	data_load(struct dataset *d, const char *path, double val_fraction,
	    int block_size, char *err, size_t errlen);
void	data_free(struct dataset *d);
/* B windows of T+1 tokens at random offsets of the train split */
void	data_train_batch(const struct dataset *d, struct rng *r, int B, int T,
	    int *inputs, int *targets);
/*
 * Rows [first, first + B) of the batch of Ball windows that
 * data_train_batch(Ball) would draw: r advances as it would, so replicas
 * that share a seed split one global batch.
 */
void	data_train_batch_part(const struct dataset *d, struct rng *r, int Ball,
	    int first, int B, int T, int *inputs, int *targets);
/* the i-th of the fixed validation windows (wraps around) */
void	data_val_batch(const struct dataset *d, int i, int B, int T,
	    int *inputs, int *targets);
int	data_build(const char *text_path, const char *out_path, char *err,
	    size_t errlen);

/* ------------------------------------------------------------------ */
/* gpt.c: the model.                                                  */
/*
 * A pipeline stage (pipe.c) holds blocks [l0, l0 + L) of a model of Lall
 * blocks: the first stage also the embeddings, the last the final
 * LayerNorm and the (tied) head.  Lall 0 means the whole model (Lall = L,
 * l0 = 0).  Tensors a stage does not hold have size 0.
 */
/*
 * Tensor parallel (tp > 1, tensor.c): rank tr of tp holds heads
 * [tr*NH/tp, (tr+1)*NH/tp) of every block's attention (their rows of q, k
 * and v, with their biases, column-parallel; their columns of the output
 * projection, row-parallel) and rows [tr*4C/tp, (tr+1)*4C/tp) of the MLP's
 * fc (with its bias), their columns of fcproj; everything else (the
 * embeddings, the LayerNorms, the projections' biases, the head) whole on
 * every rank.  tp 0 is 1.  NH and 4C divide by tp.
 */
struct gpt_config {
	int	L, NH, C, maxT, V;
	int	l0, Lall;
	int	tp, tr;
};
#define GPT_MAX_TP	16

/* Parameter tensors, carved from one block (llm.c style). */
#define GPT_NPARAMS	16
struct gpt_params {
	float	*wte;		/* [V, C] also the LM head (tied) */
	float	*wpe;		/* [maxT, C] */
	float	*ln1w, *ln1b;	/* [L, C] */
	float	*qkvw;		/* [L, 3C, C] */
	float	*qkvb;		/* [L, 3C] */
	float	*attprojw;	/* [L, C, C] */
	float	*attprojb;	/* [L, C] */
	float	*ln2w, *ln2b;	/* [L, C] */
	float	*fcw;		/* [L, 4C, C] */
	float	*fcb;		/* [L, 4C] */
	float	*fcprojw;	/* [L, C, 4C] */
	float	*fcprojb;	/* [L, C] */
	float	*lnfw, *lnfb;	/* [C] */
};

struct gpt_acts;
#define GPT_MAX_SLOTS	64	/* activation sets: micro-batches in flight */
struct gpt {
	struct gpt_config	 cfg;
	int			 embed;	/* holds wte, wpe: the input end */
	int			 head;	/* holds LNf, the head, the loss */
	const struct kern_ops	*k;
	size_t			 sizes[GPT_NPARAMS];	/* floats per tensor */
	size_t			 nparams;
	struct gpt_params	 p;	/* views into params */
	struct gpt_params	 g;	/* views into grads */
	float			*params;
	float			*grads;
	/* activations for B x T, allocated at the first forward, in slot
	   `slot` of slots (gpt_slot) */
	struct gpt_acts		*acts;
	struct gpt_acts		*slots[GPT_MAX_SLOTS];
	int			 slot;
	int			 B, T;
	float			 dropout;
	struct rng		 drop_rng;
	int			 training;
	float			 loss;	/* mean loss of the last forward */
	/*
	 * Called by gpt_backward once layer l's parameter gradients are
	 * complete for this backward (last layer first), or NULL.
	 */
	void			(*grad_ready)(void *arg, int l);
	void			*grad_ready_arg;
	/*
	 * Tensor parallel: sums x[n] over the tensor group in place, the
	 * same bits on every rank (the row-parallel outputs in forward, the
	 * gradients of the column-parallel inputs in backward, twice each
	 * per block).  A failure returns -errno: the pass goes on with what
	 * x holds and tp_err keeps the first error (the caller checks it).
	 */
	int			(*tp_reduce)(void *arg, float *x, size_t n);
	void			*tp_reduce_arg;
	int			 tp_err;
};

int	gpt_init(struct gpt *m, const struct gpt_config *cfg,
	    const struct kern_ops *k);
void	gpt_fini(struct gpt *m);
/* floats of the parameters gpt_init would allocate for cfg */
size_t	gpt_count_params(const struct gpt_config *cfg);
/*
 * bytes (64-byte aligned; 2 MB aligned and advised to transparent huge
 * pages from 2 MB on), zeroed if zero; free() releases it.  NULL if out
 * of memory.
 */
void	*gpt_alloc(size_t bytes, int zero);
/*
 * nanoGPT initialisation: N(0, 0.02), residual projections / sqrt(2L);
 * a stage or tensor shard keeps its slices of the whole model's values
 */
void	gpt_init_weights(struct gpt *m, struct rng *r);
/* 1 if tensor i (in struct gpt_params order) gets weight decay */
int	gpt_param_decays(int i);
/*
 * 1 if tensor i is split over the tensor group (tp > 1): qkvw, qkvb,
 * attprojw, fcw, fcb, fcprojw; the others are whole on every rank
 */
int	gpt_param_sharded(int i);
/*
 * Where element j of one block's slice of tensor i (2 <= i <= 13) of the
 * whole model is in a rank's shard of that block: its index, or -1 if
 * rank cfg->tr does not hold it (tp <= 1: j).
 */
long	gpt_tp_index(const struct gpt_config *cfg, int i, size_t j);
/*
 * Forward over inputs[B,T]; with targets, m->loss is the mean
 * cross-entropy and the per-position gradient is kept for backward.
 * @return 0 or -ENOMEM.
 */
int	gpt_forward(struct gpt *m, const int *inputs, const int *targets,
	    int B, int T);
/* grads += d(loss * scale)/d(params) of the last forward */
void	gpt_backward(struct gpt *m, float scale);
/*
 * A stage's forward: the embedding of inputs[B,T] on the first stage, else
 * x[B*T, C] (the previous stage's output); the loss with targets on the
 * last stage.  Output of a stage that is not the last: gpt_stage_out.
 * @return 0, -EINVAL (bad tokens, shapes) or -ENOMEM.
 */
int	gpt_stage_forward(struct gpt *m, const int *inputs, const float *x,
	    const int *targets, int B, int T);
/*
 * A stage's backward of its last forward: from the loss times scale on
 * the last stage, else from dout[B*T, C] (the gradient of its output).
 * A stage that is not the first leaves the gradient of its input x in
 * gpt_stage_din.
 */
void	gpt_stage_backward(struct gpt *m, const float *dout, float scale);
/* [B*T, C] of the current slot: output, gradient of the input */
const float *gpt_stage_out(const struct gpt *m);
const float *gpt_stage_din(const struct gpt *m);
/*
 * Activations of micro-batch slot i (0 .. GPT_MAX_SLOTS - 1) from now on:
 * a forward in one slot and the backward of another in between, as a
 * pipeline schedule needs.  Slots are allocated at their first forward.
 */
void	gpt_slot(struct gpt *m, int i);
void	gpt_zero_grad(struct gpt *m);
/* next-token probabilities at position t of row b after a forward */
const float *gpt_probs(const struct gpt *m, int b, int t);
/* with ARCEUS_PROFILE=1 set: logs the time spent per kernel kind */
void	gpt_profile_report(void);
/* generates n bytes after prompt (may be empty) into out */
int	gpt_generate(struct gpt *m, const uint8_t *prompt, int plen,
	    uint8_t *out, int n, float temperature, struct rng *r);

/* ------------------------------------------------------------------ */
/* optim.c: AdamW, schedule, clipping.                                */
struct adamw {
	float	*m, *v;		/* [nparams] moments, owned */
	size_t	 n;
	int64_t	 t;		/* steps taken */
};
int	adamw_init(struct adamw *o, size_t n);
void	adamw_fini(struct adamw *o);
/*
 * one step with the gradients times gscale (the clipping factor of
 * grad_clip_scale, 1 for none: the same bits as scaling them first, one
 * pass over them fewer); matrices are decayed (gpt_param_decays)
 */
void	adamw_step(struct adamw *o, float *params, const float *grads,
	    const struct gpt *m, float lr, float beta1, float beta2, float eps,
	    float weight_decay, float gscale);
/* global L2 norm of grads */
float	grad_norm(const float *g, size_t n);
/* the factor that brings a gradient of this norm to at most clip (0: off) */
float	grad_clip_scale(float norm, float clip);
/* scales grads so their norm is at most clip; @return the norm before */
float	grad_clip(float *g, size_t n, float clip);
/* grad_clip with the norm given (a pipeline's, over every stage) */
void	grad_scale_to(float *g, size_t n, float clip, float norm);
/* linear warmup, then cosine decay to min_lr */
float	lr_at(const struct job *j, int64_t step);

/* ------------------------------------------------------------------ */
/* ckpt.c, storage_uring.c, storage_posix.c: checkpoints.             */
#include "ckpt.h"

/* ------------------------------------------------------------------ */
/* train.c: the standalone training loop.                             */
struct train_opts {
	const char	*metrics_out;	/* JSON lines, or NULL */
	int		 quiet;
};
/* The "trainer" checkpoint segment. Fixed widths: it is on disk. */
struct trainer_state {
	uint64_t	step;		/* optimizer steps done */
	int64_t		adam_t;
	uint64_t	data_rng[2];
	uint64_t	drop_rng[2];
	uint64_t	tokens_seen;
	uint32_t	shape[5];	/* L (blocks held), NH, C, maxT, V */
	uint32_t	stage;		/* 0: the whole model; a pipeline stage:
					   first block << 16 | all blocks */
};
int	train_run(const struct job *job, const struct train_opts *o);
/* monotonic seconds */
double	now_s(void);
/* the checkpoint segments of a model and its optimizer; @return count */
int	train_segs(struct gpt *m, struct adamw *o, struct trainer_state *ts,
	    struct ckpt_seg *segs);
/* loads the newest checkpoint of dir into m, o, ts; -ENOENT if none */
int	train_load(const char *dir, struct gpt *m, struct adamw *o,
	    struct trainer_state *ts, char *err, size_t errlen);
/* the same of step `step`. @return 0 or -errno with err set */
int	train_load_at(const char *dir, uint64_t step, struct gpt *m,
	    struct adamw *o, struct trainer_state *ts, char *err,
	    size_t errlen);

/* ------------------------------------------------------------------ */
/* dist.c: data parallel through arceus-dataplane (libarceus-dp).      */

#define DIST_MAX_MEMBERS	64
#define DIST_MAX_BUCKETS	129	/* a step's, the rest included; deeper
					   models put layers together (the
					   dataplane takes 256 pending ops) */

struct arc_dp;
struct dist {
	struct arc_dp	*dp;
	float		*buf;		/* arena: gradients, loss, stop flag */
	float		*resid;		/* arena: error feedback (lossy comp) */
	size_t		 count;		/* values of buf */
	int		 rank, world;
	int		 rows;		/* our rows of each step's global batch */
	int		 first;		/* the first of them */
	int		 rows_all;	/* the global batch, rows per step */
	int		 nmicro;	/* micro-batches our rows go in */
	uint32_t	 node;		/* this node's id, from the dataplane */
	uint16_t	 group;
	int		 comp;		/* enum arc_dp_comp */
	float		 ratio;
	uint32_t	 failed_peer;	/* of the last failure, 0: unknown */
	uint64_t	 epoch;		/* of the plan followed; 0: job file */
	uint64_t	 steps;
	uint64_t	 wire_bytes;
	double		 comm_s;
	/* buckets of the step in flight (dist_layer_ready) */
	const struct gpt *model;
	uint64_t	 posted[DIST_MAX_BUCKETS];
	int		 nposted;
	int		 layers_posted;
	int		 post_err;
	int		 finishing;	/* in dist_step_finish */
	uint64_t	 buckets, buckets_early; /* early: during backward */
};
/* "1,2,3" into out. @return members (> 0) or -EINVAL with err set */
int	dist_parse_members(const char *s, uint32_t *out, int max, char *err,
	    size_t errlen);
/*
 * dist.shares against dist.members: n batch shares (> 0) into out, or
 * every one batch when s is empty. @return n or -EINVAL with err set
 */
int	dist_parse_shares(const char *s, int nmembers, int batch, int *out,
	    char *err, size_t errlen);
/* "bf16", "topk:0.01"... into d->comp, d->ratio. @return 0 or -EINVAL */
int	dist_parse_comp(const char *s, struct dist *d, char *err,
	    size_t errlen);
/* Attaches to j->dist_dataplane, defines the group. @return 0 or -errno */
int	dist_init(struct dist *d, const struct job *j, size_t nparams,
	    char *err, size_t errlen);
void	dist_fini(struct dist *d);
/*
 * This node's part of the committed plan from control (dist.control),
 * waiting (bounded) for one with this node; kind 1: a plan of pipeline
 * stages is taken too, 2: one of tensor-parallel shards (else refused).
 * @return 0 or -errno with err set
 */
/*
 * "1, 2,3": numbers from lo to hi separated by commas or blanks, at most
 * max.  @return how many (may be more than max: counted, not stored), or
 * -1 at a token that is not such a number
 */
int	dist_parse_list(const char *s, unsigned long lo, unsigned long hi,
	    uint32_t *out, int max);
struct ctl_share;
int	dist_share_wait(const struct job *j, struct ctl_share *sh, int kind,
	    char *err, size_t errlen);
/* Until the dataplane at sock runs epoch; -ESTALE past it. 0 or -errno */
int	dist_epoch_wait(const char *sock, uint64_t epoch, char *err,
	    size_t errlen);
/*
 * Overlap: a gpt grad_ready hook (arg: the struct dist) that all-reduces
 * layer l's gradients, final once the step's last backward passed it,
 * while backward goes on.  dist_step_finish then sends the rest (and the
 * layers no hook sent), waits for every bucket and puts the sums back
 * into m's gradients.  The loss rides along (each replica's is already
 * scaled by its rows: the sum is the global mean), and stop: *stop_all
 * says some replica asked to stop, so that all stop after this step.
 * @return 0 or -errno with err naming the peer at fault
 */
void	dist_layer_ready(void *arg, int l);
int	dist_step_finish(struct dist *d, struct gpt *m, float *loss, int stop,
	    int *stop_all, char *err, size_t errlen);
/*
 * Before the first step (distsync.c): the replicas compare model, step and
 * a checksum of parameters and moments; if they differ, the newest step's
 * state (the lowest rank holding it) goes to all, so that every replica
 * starts from the same bits.  has_state: this replica resumed from a
 * checkpoint.  @return 0 all agreed, 1 we handed ours over, 2 we took the
 * winner's (*ts, m, o and *data_rng now hold it), -errno with err set
 * (another model on a replica, a failed transfer)
 */
int	dist_sync_state(struct dist *d, struct gpt *m, struct adamw *o,
	    struct trainer_state *ts, int has_state, struct rng *data_rng,
	    char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* pipe.c: pipeline parallel through arceus-dataplane (send/recv).     */

#define PIPE_MAX_STAGES	64
#define PIPE_MAX_REPLICAS 64	/* pipelines side by side, data parallel */
#define PIPE_TX		4	/* send buffers in the arena, in turn */

enum pipe_kind { PIPE_F, PIPE_B };
struct pipe_op {
	int	kind;		/* enum pipe_kind: forward or backward */
	int	micro;		/* micro-batch index */
};

struct pipe {
	struct arc_dp	*dp;
	/*
	 * tensor.c uses this struct for a tensor group (tensor 1): S ranks,
	 * ours s, nodes[] theirs, group theirs, red the all-reduces' buffer
	 * (the blocks' [B*T, C] sums too); no stages, no sends
	 */
	int		 tensor;
	/*
	 * Tensor ranks: K of them, ours k, their nodes and group: a tensor
	 * group (tensor 1), or the stage's (dist.stages = 1+2,3+4: stages of
	 * two ranks each, K 2; nodes[] then the stages of rank k, so that
	 * each rank k is a pipeline of its own, coupled to the others of its
	 * stage by the tensor group's sums); 1, 0 without
	 */
	int		 K, k;
	uint32_t	 tnodes[GPT_MAX_TP];
	uint16_t	 tgroup;
	char		 why[256];	/* the tensor hook's first failure */
	int		 failed;	/* its -errno: the group is broken */
	int		 S, s;		/* stages, ours */
	int		 R, r;		/* pipeline replicas, ours */
	/* node of each stage of our replica; our stage's in each replica */
	uint32_t	 nodes[PIPE_MAX_STAGES];
	uint32_t	 peers[PIPE_MAX_REPLICAS];
	int		 layers[PIPE_MAX_STAGES];	/* blocks of each */
	int		 l0;		/* our first block */
	uint32_t	 node;
	uint16_t	 group;		/* our replica's stages */
	uint16_t	 dgroup;	/* our stage's replicas (R > 1) */
	int		 gpipe;		/* 1: GPipe, 0: 1F1B */
	/* micro-batches, our rows a step, the shape */
	int		 M, G, T, C, V;
	int		 Gall, first;	/* all replicas' rows, our first */
	int		 EB;		/* validation rows: batch_size */
	float		*gbuf;		/* arena [nparams + 2] (R > 1) */
	/* R > 1: this stage's data parallel over dgroup, dist.c's buckets
	   in gbuf (its dp is ours: pipe_fini detaches it) */
	struct dist	 rep;
	int		 overlap;	/* buckets during the last backward */
	uint32_t	 print;		/* fingerprint of the job */
	struct pipe_op	*sched;		/* [2M] our order of work */
	int		 nsched, nslots;
	size_t		 act;		/* floats of a [B*T, C] */
	float		*rx;		/* arena [act]: received */
	float		*tx[PIPE_TX];	/* arena [act] each: to send */
	int64_t		 tx_id[PIPE_TX]; /* its SEND, or -1 */
	int		 tx_to[PIPE_TX]; /* to that stage */
	int		 tx_next;
	float		*red;		/* arena [nred]: all-reduces */
	size_t		 nred;
	uint32_t	 failed_peer;	/* of the last failure, or 0 */
	uint64_t	 steps, wire_bytes;
	double		 wait_s;
};
struct pipe_result {
	float	loss;		/* the global batch's mean loss */
	float	norm;		/* global gradient norm, before clipping */
	int	stop;		/* some stage asked to stop */
};
/*
 * dist.stages: "1,2" (one pipeline), "1,2/3,4" (replicas of it, each the
 * same number of stages), and stages of tensor ranks, "1+2,3+4" (each
 * stage as many) into nodes[R][S][K], replica-major (PIPE_MAX_STAGES *
 * PIPE_MAX_REPLICAS at most).  @return 0 with *S, *R, *K (1: no tensor
 * ranks) set, or -EINVAL with err set
 */
int	pipe_parse_stages(const char *s, uint32_t *nodes, int *S, int *R,
	    int *K, char *err, size_t errlen);
/*
 * dist.layers: blocks per stage of nstages summing to nlayer (empty: as
 * even as may be, the first stages one more).  @return nstages or -EINVAL
 * with err set
 */
int	pipe_split_layers(const char *s, int nstages, int nlayer, int *out,
	    char *err, size_t errlen);
/*
 * Stage s's order of work over M micro-batches (1F1B, or GPipe) into
 * ops[2M].  @return 2M
 */
int	pipe_schedule(int S, int s, int M, int gpipe, struct pipe_op *ops);
/* micro-batches whose activations are held at once under ops[n] */
int	pipe_slots(const struct pipe_op *ops, int n);
/* Attaches, finds our stage, defines the group. @return 0 or -errno */
/* Ties the stage's dataplane work to a plan's epoch (arc_dp_set_epoch). */
void	pipe_bind_epoch(struct pipe *p, uint64_t epoch);
int	pipe_init(struct pipe *p, const struct job *j, char *err,
	    size_t errlen);
void	pipe_fini(struct pipe *p);
/*
 * Every stage starts at the same step with the same job (before the first
 * step, after a resume). @return 0, -EINVAL naming the stage that differs,
 * or a failure of the all-reduce
 */
int	pipe_agree(struct pipe *p, uint64_t step, char *err, size_t errlen);
/*
 * One step's forwards and backwards (from *data_rng, advanced as the
 * single node's), the tied gradient summed, loss and stop shared, the
 * gradients clipped by the global norm: AdamW next.  in, tg: B*T each.
 * @return 0 or -errno with err naming the stage and peer at fault
 */
int	pipe_step(struct pipe *p, struct gpt *m, const struct dataset *d,
	    struct rng *data_rng, int *in, int *tg, float clip, float stop,
	    struct pipe_result *res, char *err, size_t errlen);
/*
 * After train_load (rc: its 0 or -ENOENT): the stages (and replicas)
 * agree on the newest checkpoint step every one of them has, and this
 * stage falls back to it if it loaded a newer one.  @return 0 (loaded),
 * -ENOENT (fresh everywhere), or -errno with err set (no common step, a
 * failed load or all-reduce)
 */
int	pipe_resume(struct pipe *p, const char *dir, struct gpt *m,
	    struct adamw *o, struct trainer_state *ts, int rc, char *err,
	    size_t errlen);
/* Sums buf[count] over group g, naming the group in err. 0 or -errno */
int	pipe_allreduce(struct pipe *p, uint16_t g, float *buf, size_t count,
	    char *err, size_t errlen);
/* The crc32c of what every stage (tensor rank) must agree on. */
uint32_t pipe_job_print(const struct job *j);
/* Validation loss through the stages, the same on each. @return 0/-errno */
int	pipe_eval(struct pipe *p, struct gpt *m, const struct dataset *d,
	    int iters, int *in, int *tg, float *val, char *err,
	    size_t errlen);

/* ------------------------------------------------------------------ */
/* tensor.c: tensor parallel through arceus-dataplane (all-reduces).   */
#define TP_MAX_REPLICAS	64	/* tensor groups side by side, data parallel */
/*
 * dist.tensor: "1,2" (node ids of one tensor group, rank order), or
 * "1,2/3,4" (replicas of it, data parallel, each as many ranks) into
 * nodes[R][n], replica-major.  @return 0 with *n, *R set, or -EINVAL with
 * err set
 */
int	tp_parse_group(const char *s, uint32_t *nodes, int *n, int *R,
	    char *err, size_t errlen);
/*
 * Whether a model of n_head heads and width n_embd splits over n ranks.
 * @return 0 or -EINVAL with err naming the key and the reason
 */
int	tp_check_split(int64_t n_head, int64_t n_embd, int n, char *err,
	    size_t errlen);
/*
 * Attaches to dist.dataplane, finds our rank and replica in dist.tensor,
 * defines the groups (replica r's ranks: dist.group + r; with replicas,
 * rank s's replicas: dist.group + R + s) and the arena buffers: the
 * blocks' sums, and with replicas the shard's gradients (p->rep, dist.c's
 * buckets).  p->S, p->s: the ranks, ours; p->R, p->r: the replicas, ours;
 * p->G of p->Gall rows a step ours from p->first, p->M micro-batches.
 * @return 0 or -errno with err set
 */
int	tp_init(struct pipe *p, const struct job *j, char *err, size_t errlen);
/* The gpt tp_reduce hook over p's group (arg: the struct pipe). */
int	tp_reduce(void *arg, float *x, size_t n);
/*
 * After a step's backward: the global gradient norm (the sharded
 * tensors' squares summed over the group, the whole ones once) into
 * *norm, the same on every rank, and whether any rank asked to stop.
 * @return 0 or -errno with err set
 */
int	tp_step_finish(struct pipe *p, struct gpt *m, int stop, int *stop_all,
	    float *norm, char *err, size_t errlen);
/*
 * Before the first step: the ranks compare a checksum of the tensors every
 * one holds whole (and their AdamW moments), which must be the same bits
 * everywhere; with replicas, each rank's replicas a checksum of all their
 * state.  @return 0, -EINVAL naming the rank or replica that differs (a
 * checkpoint of another run), or a failure of the all-reduce
 */
int	tp_agree_whole(struct pipe *p, const struct gpt *m,
	    const struct adamw *o, char *err, size_t errlen);
/* m's sums of squared gradients: of its sharded tensors, of the whole */
void	tp_sq_sums(const struct gpt *m, double *shard, double *whole);
#define TP_PLAN_GROUP	2000	/* groups of a plan's tensor groups */
/*
 * dist.tensor = plan: the job as a plan of tensor-parallel shards (tp >
 * 1, pp 1) has it, into *out: dist.tensor (replica by replica),
 * dist.shares (each replica's rows per micro-batch), train.accumulate,
 * dist.group TP_PLAN_GROUP.  @return 0 or -errno with err set
 */
int	tp_from_share(const struct ctl_share *sh, const struct job *j,
	    struct job *out, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* ctlreport.c: progress to the node's arceus-control (control.sock).  */

struct reporter {
	char		 path[1024];	/* empty: no reports */
	int		 fd;
	double		 next_try;	/* reconnect not before (monotonic s) */
	int		 down_said;
	uint64_t	 sent, skipped;
	double		 comp_t0;	/* this step's compute began */
	uint32_t	 ns_per_token;	/* its compute, for the next record */
};
void	report_open(struct reporter *r, const char *path);
/*
 * The step's compute on this node's rows: _start before forward, _end
 * (tokens: rows x block) before waiting for the all-reduce; the next
 * record carries it per token.  With ARCEUS_FAULT=slow:F (common/fault.h)
 * _end first sleeps (F - 1) times the compute, as a slower machine.
 */
void	report_compute_start(struct reporter *r);
void	report_compute_end(struct reporter *r, long tokens);
/* One record; never blocks (a slow or absent control loses it). */
void	report_send(struct reporter *r, int64_t step, double loss, double tps,
	    int64_t ckpt_step, int64_t ckpt_unix);
void	report_close(struct reporter *r);
/* This node's part of the committed plan (query "share"). @return 0/-errno */
struct ctl_share;
int	ctl_share_get(const char *path, struct ctl_share *sh, char *err,
	    size_t errlen);
/*
 * A step failed in the plan of this epoch: asks control for the next one
 * (IMSG_CTL_REEPOCH), in which every dataplane starts its collectives
 * afresh.  @return 0 or -errno
 */
int	ctl_reepoch_ask(const char *path, uint64_t epoch);
/*
 * Where reports go: dist.control; "off": nowhere; empty with a dataplane:
 * the control.sock beside its socket (one run_dir per node).
 */
void	report_path(const struct job *j, char *out, size_t len);

/* tool.c: arceusctl subcommands that live in compute */
int	tool_dataset_build(int argc, char **argv);
int	tool_sample(int argc, char **argv);
int	tool_share(const char *sock);

#endif /* ARC_COMPUTE_H */
