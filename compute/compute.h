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

	/* out[N,OC] = inp[N,C] . w[OC,C]^T + bias[OC] (bias may be NULL) */
	void	(*matmul_fwd)(float *out, const float *inp, const float *w,
		    const float *bias, int N, int C, int OC);
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
	/* GELU, exact (erf) form as nanoGPT's nn.GELU(), n elements */
	void	(*gelu_fwd)(float *out, const float *inp, size_t n);
	/* dinp += gelu'(inp) * dout (= instead when !acc) */
	void	(*gelu_bwd)(float *dinp, const float *inp, const float *dout,
		    size_t n, int acc);
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
/* the i-th of the fixed validation windows (wraps around) */
void	data_val_batch(const struct dataset *d, int i, int B, int T,
	    int *inputs, int *targets);
int	data_build(const char *text_path, const char *out_path, char *err,
	    size_t errlen);

/* ------------------------------------------------------------------ */
/* gpt.c: the model.                                                  */
struct gpt_config {
	int	L, NH, C, maxT, V;
};

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
struct gpt {
	struct gpt_config	 cfg;
	const struct kern_ops	*k;
	size_t			 sizes[GPT_NPARAMS];	/* floats per tensor */
	size_t			 nparams;
	struct gpt_params	 p;	/* views into params */
	struct gpt_params	 g;	/* views into grads */
	float			*params;
	float			*grads;
	/* activations for B x T, allocated at the first forward */
	struct gpt_acts		*acts;
	int			 B, T;
	float			 dropout;
	struct rng		 drop_rng;
	int			 training;
	float			 loss;	/* mean loss of the last forward */
};

int	gpt_init(struct gpt *m, const struct gpt_config *cfg,
	    const struct kern_ops *k);
void	gpt_fini(struct gpt *m);
/*
 * bytes (64-byte aligned; 2 MB aligned and advised to transparent huge
 * pages from 2 MB on), zeroed if zero; free() releases it.  NULL if out
 * of memory.
 */
void	*gpt_alloc(size_t bytes, int zero);
/* nanoGPT initialisation: N(0, 0.02), residual projections / sqrt(2L) */
void	gpt_init_weights(struct gpt *m, struct rng *r);
/* 1 if tensor i (in struct gpt_params order) gets weight decay */
int	gpt_param_decays(int i);
/*
 * Forward over inputs[B,T]; with targets, m->loss is the mean
 * cross-entropy and the per-position gradient is kept for backward.
 * @return 0 or -ENOMEM.
 */
int	gpt_forward(struct gpt *m, const int *inputs, const int *targets,
	    int B, int T);
/* grads += d(loss * scale)/d(params) of the last forward */
void	gpt_backward(struct gpt *m, float scale);
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
/* one step; decay[i] says whether parameter i is decayed (per float) */
void	adamw_step(struct adamw *o, float *params, const float *grads,
	    const struct gpt *m, float lr, float beta1, float beta2, float eps,
	    float weight_decay);
/* global L2 norm of grads */
float	grad_norm(const float *g, size_t n);
/* scales grads so their norm is at most clip; @return the norm before */
float	grad_clip(float *g, size_t n, float clip);
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
	uint32_t	shape[5];	/* L, NH, C, maxT, V */
	uint32_t	pad;
};
int	train_run(const struct job *job, const struct train_opts *o);
/* the checkpoint segments of a model and its optimizer; @return count */
int	train_segs(struct gpt *m, struct adamw *o, struct trainer_state *ts,
	    struct ckpt_seg *segs);
/* loads the newest checkpoint of dir into m, o, ts; -ENOENT if none */
int	train_load(const char *dir, struct gpt *m, struct adamw *o,
	    struct trainer_state *ts, char *err, size_t errlen);

/* tool.c: arceusctl subcommands that live in compute */
int	tool_dataset_build(int argc, char **argv);
int	tool_sample(int argc, char **argv);

#endif /* ARC_COMPUTE_H */
