/*
 * gpt.c: a GPT-2 style decoder, forward and backward, in the manner of
 * llm.c's train_gpt2.c: parameters and activations are carved from a few
 * large blocks; kernels come from an ops table (kern_ref.c or
 * kern_dnnl.c), so the same model runs on the scalar reference and on
 * oneDNN.
 *
 *   tokens -> wte + wpe -> [dropout] ->
 *   L x { x += [dropout] proj(attn(LN1(x)));  x += [dropout] mlp(LN2(x)) }
 *   -> LNf -> logits = x . wte^T (tied head) -> softmax -> cross-entropy
 *
 * Dropout, when enabled, is applied to the embedding and to the outputs of
 * both residual branches (nanoGPT's resid_dropout); attention-weight
 * dropout is not, since the attention kernel never forms the weights.
 *
 * A struct gpt may hold a part of the model: a pipeline stage's blocks
 * (l0, Lall), and a tensor rank's shard of each (tp, tr; tensor.c): its
 * heads and MLP rows, with the row-parallel outputs and the column-
 * parallel inputs' gradients summed over the group by the tp_reduce hook.
 */
#include <sys/mman.h>

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <omp.h>

#include "compute.h"
#include "log.h"

/*
 * ARCEUS_PROFILE=1 in the environment: time spent per kernel kind, printed
 * by gpt_profile_report() at the end of a run.  Off, it costs a branch.
 */
enum prof_kind { PK_MATMUL_F, PK_MATMUL_B, PK_LN_F, PK_LN_B, PK_GELU_F,
	PK_GELU_B, PK_SOFTMAX, PK_ATTN_F, PK_ATTN_B, PK_OTHER_F, PK_OTHER_B,
	PK_COUNT };
static const char *const prof_names[PK_COUNT] = { "matmul fwd",
	"matmul bwd", "layernorm fwd", "layernorm bwd", "gelu fwd", "gelu bwd",
	"softmax", "attention fwd", "attention bwd", "rest of fwd",
	"rest of bwd" };
static double prof_s[PK_COUNT];
static int prof_on = -1;

static double
prof_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define PROF(kind, call) do {						\
	if (prof_on) {							\
		double t0_ = prof_now();				\
		call;							\
		prof_s[kind] += prof_now() - t0_;			\
	} else {							\
		call;							\
	}								\
} while (0)

void
gpt_profile_report(void)
{
	double total;

	if (prof_on <= 0)
		return;
	/* PK_OTHER_* hold whole passes so far: take the kernels out */
	total = prof_s[PK_OTHER_F] + prof_s[PK_OTHER_B];
	prof_s[PK_OTHER_F] -= prof_s[PK_MATMUL_F] + prof_s[PK_LN_F] +
	    prof_s[PK_GELU_F] + prof_s[PK_SOFTMAX] + prof_s[PK_ATTN_F];
	prof_s[PK_OTHER_B] -= prof_s[PK_MATMUL_B] + prof_s[PK_LN_B] +
	    prof_s[PK_GELU_B] + prof_s[PK_ATTN_B];
	log_info("profile (ARCEUS_PROFILE), %.2f s in the model:", total);
	for (int i = 0; i < PK_COUNT; i++)
		log_info("  %-14s %8.3f s %5.1f%%", prof_names[i], prof_s[i],
		    total > 0 ? 100 * prof_s[i] / total : 0);
}

/* Activations of one forward pass over B x T, shapes beside each. */
struct gpt_acts {
	size_t	 cap;		/* capacity in tokens (B * T) */
	int	 B, T;		/* of the last forward in this set */
	float	*block;		/* everything below, one allocation */
	float	*encoded;	/* [N, C] */
	float	*ln1;		/* [L, N, C] */
	float	*ln1_mean;	/* [L, N] */
	float	*ln1_rstd;	/* [L, N] */
	float	*qkv;		/* [L, N, 3C] */
	float	*atty;		/* [L, N, C] */
	float	*lse;		/* [L, B, NH, T] = [L, N * NH] */
	float	*attproj;	/* [L, N, C] only with dropout */
	float	*residual2;	/* [L, N, C] */
	float	*ln2;		/* [L, N, C] */
	float	*ln2_mean;	/* [L, N] */
	float	*ln2_rstd;	/* [L, N] */
	float	*fch;		/* [L, N, 4C] */
	float	*fch_gelu;	/* [L, N, 4C] */
	float	*fcproj;	/* [L, N, C] only with dropout */
	float	*residual3;	/* [L, N, C] */
	float	*lnf;		/* [N, C] */
	float	*lnf_mean;	/* [N] */
	float	*lnf_rstd;	/* [N] */
	float	*logits;	/* [N, V] */
	float	*probs;		/* [N, V] */
	float	*losses;	/* [N] */
	int	*targets;	/* [N] copy of the last targets, or NULL */
	int	*inputs;	/* [N] */
	/* dropout scales (0 or 1/(1-p)), only when dropout > 0 */
	float	*mask_emb;	/* [N, C] */
	float	*mask_att;	/* [L, N, C] */
	float	*mask_mlp;	/* [L, N, C] */
	/* backward scratch */
	float	*dres;		/* [N, C] gradient of the residual stream */
	float	*dtmp;		/* [N, C] */
	float	*dln;		/* [N, C] */
	float	*datty;		/* [N, C] */
	float	*dqkv;		/* [N, 3C] */
	float	*dfch;		/* [N, 4C] */
	float	*dfch_gelu;	/* [N, 4C] */
	float	*dlogits;	/* [N, V] */
};

#define HUGE_PAGE	((size_t)2 << 20)

void *
gpt_alloc(size_t bytes, int zero)
{
	size_t align = bytes >= HUGE_PAGE ? HUGE_PAGE : 64;
	void *p;

	bytes = (bytes + align - 1) & ~(align - 1);
	if ((p = aligned_alloc(align, bytes ? bytes : align)) == NULL)
		return NULL;
	/*
	 * Transparent huge pages where the system leaves it to madvise:
	 * the GEMMs' packing and every streaming pass walk tens of MB, far
	 * past the TLB's reach in 4 kB pages.  Only a hint: a failure
	 * changes nothing but the speed.
	 */
	if (align == HUGE_PAGE)
		(void)madvise(p, bytes, MADV_HUGEPAGE);
	if (zero)
		memset(p, 0, bytes);
	return p;
}

/* Blocks of the whole model, and whether a stage holds either end. */
static int
cfg_lall(const struct gpt_config *c)
{
	return c->Lall > 0 ? c->Lall : c->L;
}

static int
cfg_embed(const struct gpt_config *c)
{
	return c->l0 == 0;
}

static int
cfg_head(const struct gpt_config *c)
{
	return c->l0 + c->L == cfg_lall(c);
}

static int
cfg_tp(const struct gpt_config *c)
{
	return c->tp > 1 ? c->tp : 1;
}

static void
param_sizes(const struct gpt_config *c, size_t *s)
{
	size_t L = c->L, C = c->C, tp = (size_t)cfg_tp(c);
	/* a tensor rank's share: Cq of each of q, k, v; F of the MLP */
	size_t Cq = C / tp, F = 4 * C / tp;
	int embed = cfg_embed(c), head = cfg_head(c);

	/* wte is the input embedding and the tied head: both ends hold it */
	s[0] = embed || head ? (size_t)c->V * C : 0;	/* wte */
	s[1] = embed ? (size_t)c->maxT * C : 0;		/* wpe */
	s[2] = L * C;			/* ln1w */
	s[3] = L * C;			/* ln1b */
	s[4] = L * 3 * Cq * C;		/* qkvw */
	s[5] = L * 3 * Cq;		/* qkvb */
	s[6] = L * C * Cq;		/* attprojw */
	s[7] = L * C;			/* attprojb */
	s[8] = L * C;			/* ln2w */
	s[9] = L * C;			/* ln2b */
	s[10] = L * F * C;		/* fcw */
	s[11] = L * F;			/* fcb */
	s[12] = L * C * F;		/* fcprojw */
	s[13] = L * C;			/* fcprojb */
	s[14] = head ? C : 0;		/* lnfw */
	s[15] = head ? C : 0;		/* lnfb */
}

static void
point_params(struct gpt_params *p, float *base, const size_t *s)
{
	float **ptrs[GPT_NPARAMS] = {
		&p->wte, &p->wpe, &p->ln1w, &p->ln1b, &p->qkvw, &p->qkvb,
		&p->attprojw, &p->attprojb, &p->ln2w, &p->ln2b, &p->fcw,
		&p->fcb, &p->fcprojw, &p->fcprojb, &p->lnfw, &p->lnfb,
	};

	for (int i = 0; i < GPT_NPARAMS; i++) {
		*ptrs[i] = base;
		base += s[i];
	}
}

int
gpt_param_decays(int i)
{
	/* matrices (wte, wpe, qkvw, attprojw, fcw, fcprojw) */
	return i == 0 || i == 1 || i == 4 || i == 6 || i == 10 || i == 12;
}

int
gpt_param_sharded(int i)
{
	return i == 4 || i == 5 || i == 6 || i == 10 || i == 11 || i == 12;
}

long
gpt_tp_index(const struct gpt_config *c, int i, size_t j)
{
	size_t C = (size_t)c->C, tp = (size_t)cfg_tp(c), r = (size_t)c->tr;
	size_t Cq = C / tp, F = 4 * C / tp, row, col;

	if (tp == 1 || !gpt_param_sharded(i))
		return (long)j;
	switch (i) {
	case 4:		/* qkvw [3C, C]: our rows of each of q, k, v */
	case 5:		/* qkvb [3C] */
		row = i == 4 ? j / C : j;
		col = i == 4 ? j % C : 0;
		if (row % C / Cq != r)
			return -1;
		row = row / C * Cq + row % C - r * Cq;
		return (long)(i == 4 ? row * C + col : row);
	case 6:		/* attprojw [C, C]: our columns */
		row = j / C;
		col = j % C;
		if (col / Cq != r)
			return -1;
		return (long)(row * Cq + col - r * Cq);
	case 10:	/* fcw [4C, C]: our rows */
	case 11:	/* fcb [4C] */
		row = i == 10 ? j / C : j;
		if (row / F != r)
			return -1;
		return (long)(i == 10 ? j - r * F * C : j - r * F);
	default:	/* 12, fcprojw [C, 4C]: our columns */
		row = j / (4 * C);
		col = j % (4 * C);
		if (col / F != r)
			return -1;
		return (long)(row * F + col - r * F);
	}
}

size_t
gpt_count_params(const struct gpt_config *cfg)
{
	size_t s[GPT_NPARAMS], n = 0;

	param_sizes(cfg, s);
	for (int i = 0; i < GPT_NPARAMS; i++)
		n += s[i];
	return n;
}

int
gpt_init(struct gpt *m, const struct gpt_config *cfg,
    const struct kern_ops *k)
{
	memset(m, 0, sizeof(*m));
	if (cfg->L < 1 || cfg->NH < 1 || cfg->C < 1 || cfg->C % cfg->NH ||
	    cfg->maxT < 1 || cfg->V < 1 || cfg->l0 < 0 || cfg->Lall < 0 ||
	    (cfg->Lall == 0 && cfg->l0 != 0) ||
	    (cfg->Lall > 0 && cfg->l0 + cfg->L > cfg->Lall) ||
	    cfg->tp < 0 || cfg->tp > GPT_MAX_TP || cfg->tr < 0 ||
	    cfg->tr >= cfg_tp(cfg) || cfg->NH % cfg_tp(cfg) != 0)
		return -EINVAL;
	m->cfg = *cfg;
	m->embed = cfg_embed(cfg);
	m->head = cfg_head(cfg);
	m->k = k;
	param_sizes(cfg, m->sizes);
	for (int i = 0; i < GPT_NPARAMS; i++)
		m->nparams += m->sizes[i];
	m->params = gpt_alloc(m->nparams * sizeof(float), 1);
	m->grads = gpt_alloc(m->nparams * sizeof(float), 1);
	if (m->params == NULL || m->grads == NULL) {
		gpt_fini(m);
		return -ENOMEM;
	}
	point_params(&m->p, m->params, m->sizes);
	point_params(&m->g, m->grads, m->sizes);
	m->training = 1;
	return 0;
}

static void
acts_free(struct gpt_acts *a)
{
	if (a == NULL)
		return;
	free(a->block);
	free(a->targets);
	free(a->inputs);
	free(a);
}

void
gpt_fini(struct gpt *m)
{
	free(m->params);
	free(m->grads);
	m->slots[m->slot] = m->acts;
	for (int i = 0; i < GPT_MAX_SLOTS; i++)
		acts_free(m->slots[i]);
	memset(m, 0, sizeof(*m));
}

void
gpt_slot(struct gpt *m, int i)
{
	struct gpt_acts *a;

	assert(i >= 0 && i < GPT_MAX_SLOTS);
	m->slots[m->slot] = m->acts;
	m->slot = i;
	m->acts = a = m->slots[i];
	m->B = a != NULL ? a->B : 0;
	m->T = a != NULL ? a->T : 0;
}

/*
 * The whole model's initialisation, whatever part of it m holds: the
 * generator walks every tensor of all Lall blocks in order and a stage
 * keeps its own values, so that its parameters are bit for bit those of
 * the same blocks in the whole model.
 */
void
gpt_init_weights(struct gpt *m, struct rng *r)
{
	const struct gpt_config *c = &m->cfg;
	struct gpt_config whole = *c;
	size_t full[GPT_NPARAMS];
	int Lall = cfg_lall(c);
	float proj_std = 0.02f / sqrtf(2.0f * (float)Lall);
	float *base = m->params;

	whole.L = Lall;
	whole.l0 = 0;
	whole.Lall = 0;
	whole.tp = whole.tr = 0;
	param_sizes(&whole, full);
	for (int i = 0; i < GPT_NPARAMS; i++) {
		float std = (i == 6 || i == 12) ? proj_std : 0.02f;
		/* per-block tensors are [Lall, ...]: ours from block l0 */
		size_t lo = 0, hi = m->sizes[i], per = full[i], mine = 0;
		int blocks = i >= 2 && i <= 13;

		if (blocks) {
			per = full[i] / (size_t)Lall;	/* a block's, whole */
			mine = m->sizes[i] / (size_t)c->L; /* ... our shard */
			lo = per * (size_t)c->l0;
			hi = lo + per * (size_t)c->L;
		}
		for (size_t j = 0; j < full[i]; j++) {
			float v;
			long at;

			if (i == 2 || i == 8 || i == 14)	/* LN weights */
				v = 1.0f;
			else if (gpt_param_decays(i))
				v = rng_normal(r) * std;
			else
				v = 0.0f;			/* biases */
			if (j < lo || j >= hi)
				continue;
			if (!blocks) {
				base[j - lo] = v;
				continue;
			}
			/* our block j / per, and our part of it */
			if ((at = gpt_tp_index(c, i, (j - lo) % per)) >= 0)
				base[(j - lo) / per * mine + (size_t)at] = v;
		}
		base += m->sizes[i];
	}
}

/* Allocates activations for N = B * T tokens, reusing them if they fit. */
static int
acts_reserve(struct gpt *m, int B, int T)
{
	const struct gpt_config *c = &m->cfg;
	size_t N = (size_t)B * T, L = c->L, C = c->C, tp = (size_t)cfg_tp(c);
	/* a tensor rank's heads: Cq of q, k, v each, F of the MLP */
	size_t NH = (size_t)c->NH / tp, Cq = C / tp, F = 4 * C / tp;
	/* the head's tensors on the last stage only, V = 0 elsewhere */
	size_t V = m->head ? (size_t)c->V : 0, H = m->head ? 1 : 0;
	struct gpt_acts *a = m->acts;
	int drop = m->dropout > 0;

	if (a != NULL && a->cap >= N)
		return 0;
	acts_free(a);
	m->acts = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return -ENOMEM;
	struct { float **p; size_t n; } t[] = {
		{ &a->encoded, N * C },
		{ &a->ln1, L * N * C }, { &a->ln1_mean, L * N },
		{ &a->ln1_rstd, L * N }, { &a->qkv, L * N * 3 * Cq },
		{ &a->atty, L * N * Cq }, { &a->lse, L * N * NH },
		{ &a->attproj, drop ? L * N * C : 0 },
		{ &a->residual2, L * N * C },
		{ &a->ln2, L * N * C }, { &a->ln2_mean, L * N },
		{ &a->ln2_rstd, L * N }, { &a->fch, L * N * F },
		{ &a->fch_gelu, L * N * F },
		{ &a->fcproj, drop ? L * N * C : 0 },
		{ &a->residual3, L * N * C }, { &a->lnf, H * N * C },
		{ &a->lnf_mean, H * N }, { &a->lnf_rstd, H * N },
		{ &a->logits, N * V }, { &a->probs, N * V },
		{ &a->losses, H * N },
		{ &a->mask_emb, drop && m->embed ? N * C : 0 },
		{ &a->mask_att, drop ? L * N * C : 0 },
		{ &a->mask_mlp, drop ? L * N * C : 0 },
		{ &a->dres, N * C }, { &a->dtmp, N * C }, { &a->dln, N * C },
		{ &a->datty, N * Cq }, { &a->dqkv, N * 3 * Cq },
		{ &a->dfch, N * F }, { &a->dfch_gelu, N * F },
		{ &a->dlogits, N * V },
	};
	size_t total = 0, nt = sizeof(t) / sizeof(t[0]);

	/* 16-float (64-byte) alignment for every tensor */
	for (size_t i = 0; i < nt; i++)
		total += (t[i].n + 15) & ~(size_t)15;
	a->block = gpt_alloc(total * sizeof(float), 0);
	a->targets = malloc(N * sizeof(int));
	a->inputs = malloc(N * sizeof(int));
	if (a->block == NULL || a->targets == NULL || a->inputs == NULL) {
		acts_free(a);
		return -ENOMEM;
	}
	float *p = a->block;
	for (size_t i = 0; i < nt; i++) {
		*t[i].p = t[i].n ? p : NULL;
		p += (t[i].n + 15) & ~(size_t)15;
	}
	a->cap = N;
	m->acts = a;
	m->slots[m->slot] = a;
	return 0;
}

static void
dropout_fwd(float *x, float *mask, size_t n, float p, struct rng *r)
{
	float keep = 1.0f / (1.0f - p);

	for (size_t i = 0; i < n; i++) {
		mask[i] = rng_uniform(r) < p ? 0.0f : keep;
		x[i] *= mask[i];
	}
}

static void
add_vec(float *out, const float *a, const float *b, size_t n)
{
#pragma omp parallel for simd if (n > (1 << 16))
	for (size_t i = 0; i < n; i++)
		out[i] = a[i] + b[i];
}

/* x[i] *= s[i] (dropout masks in backward) */
static void
mul_vec(float *x, const float *s, size_t n)
{
#pragma omp parallel for simd if (n > (1 << 16))
	for (size_t i = 0; i < n; i++)
		x[i] *= s[i];
}

#define ZERO_CHUNK	(1 << 14)	/* floats per task of zero_vec */

/* memset on every thread: no serial pass left in a 2-thread step */
static void
zero_vec(float *x, size_t n)
{
#pragma omp parallel for schedule(static) if (n > 4 * ZERO_CHUNK)
	for (size_t i = 0; i < n; i += ZERO_CHUNK)
		memset(x + i, 0, sizeof(float) * (n - i < ZERO_CHUNK ? n - i :
		    ZERO_CHUNK));
}

/* out[N,C] = res + bias per row */
static void
add_bias_rows(float *out, const float *res, const float *bias, int N, int C)
{
#pragma omp parallel for schedule(static) if ((long)N * C > (1 << 16))
	for (int n = 0; n < N; n++) {
		const float *r = res + (size_t)n * C;
		float *o = out + (size_t)n * C;

#pragma omp simd
		for (int i = 0; i < C; i++)
			o[i] = r[i] + bias[i];
	}
}

/* Tensor parallel: x summed over the group (the hook's first error kept). */
static void
tp_sum(struct gpt *m, float *x, size_t n)
{
	int r;

	if (m->tp_reduce == NULL)
		return;
	if ((r = m->tp_reduce(m->tp_reduce_arg, x, n)) < 0 && m->tp_err == 0)
		m->tp_err = r;
}

/*
 * A residual branch's projection: out = res + dropout(inp . w^T + bias).
 * Without dropout (mask NULL) the projection is added straight into the
 * stream: out = res + bias, then the matmul accumulates into it, one
 * pass and one [N, C] buffer fewer than a matmul into tmp and an add.
 * Tensor parallel, the projection is row-parallel: inp . w^T is this
 * rank's part of it (its Cin of the input columns), summed over the group
 * in tmp before the bias (whole on every rank, so added once) goes in.
 */
static void
branch_fwd(struct gpt *m, float *out, const float *res, float *tmp,
    float *mask, const float *inp, const float *w, const float *bias, int N,
    int Cin, int C)
{
	const struct kern_ops *k = m->k;
	size_t NC = (size_t)N * C;

	if (cfg_tp(&m->cfg) > 1) {
		PROF(PK_MATMUL_F, k->matmul_fwd(tmp, inp, w, NULL, N, Cin, C,
		    0));
		tp_sum(m, tmp, NC);
		add_bias_rows(tmp, tmp, bias, N, C);
		if (mask != NULL)
			dropout_fwd(tmp, mask, NC, m->dropout, &m->drop_rng);
		add_vec(out, res, tmp, NC);
		return;
	}
	if (mask == NULL) {
		add_bias_rows(out, res, bias, N, C);
		PROF(PK_MATMUL_F, k->matmul_fwd(out, inp, w, NULL, N, Cin, C,
		    1));
		return;
	}
	PROF(PK_MATMUL_F, k->matmul_fwd(tmp, inp, w, bias, N, Cin, C, 0));
	dropout_fwd(tmp, mask, NC, m->dropout, &m->drop_rng);
	add_vec(out, res, tmp, NC);
}

int
gpt_forward(struct gpt *m, const int *inputs, const int *targets, int B,
    int T)
{
	assert(m->embed && m->head);
	return gpt_stage_forward(m, inputs, NULL, targets, B, T);
}

int
gpt_stage_forward(struct gpt *m, const int *inputs, const float *x,
    const int *targets, int B, int T)
{
	const struct kern_ops *k = m->k;
	const struct gpt_config *c = &m->cfg;
	const struct gpt_params *p = &m->p;
	int C = c->C, V = c->V, N = B * T, tp = cfg_tp(c);
	/* this tensor rank's heads (all of them when tp is 1) */
	int NH = c->NH / tp, Cq = C / tp, F = 4 * C / tp;
	int drop = m->training && m->dropout > 0;
	struct gpt_acts *a;

	double t_fwd = 0;

	if (prof_on < 0) {
		const char *e = getenv("ARCEUS_PROFILE");

		prof_on = e != NULL && *e != '\0' && strcmp(e, "0") != 0;
	}
	if (prof_on)
		t_fwd = prof_now();
	if (T > c->maxT || T < 1 || B < 1 ||
	    (m->embed ? inputs == NULL : x == NULL))
		return -EINVAL;
	for (int i = 0; i < N; i++)
		if ((m->embed && (inputs[i] < 0 || inputs[i] >= V)) ||
		    (m->head && targets && (targets[i] < 0 ||
		    targets[i] >= V)))
			return -EINVAL;
	if (acts_reserve(m, B, T) < 0)
		return -ENOMEM;
	a = m->acts;
	a->B = m->B = B;
	a->T = m->T = T;
	if (!m->embed) {
		/* the previous stage's output is this one's residual input */
		memcpy(a->encoded, x, sizeof(float) * (size_t)N * C);
	} else {
		memcpy(a->inputs, inputs, sizeof(int) * N);

#pragma omp parallel for schedule(static) if ((long)N * C > (1 << 16))
		for (int n = 0; n < N; n++) {
			float *o = a->encoded + (size_t)n * C;
			const float *te = p->wte + (size_t)inputs[n] * C;
			const float *pe = p->wpe + (size_t)(n % T) * C;

#pragma omp simd
			for (int i = 0; i < C; i++)
				o[i] = te[i] + pe[i];
		}
		if (drop)
			dropout_fwd(a->encoded, a->mask_emb, (size_t)N * C,
			    m->dropout, &m->drop_rng);
	}

	const float *res = a->encoded;
	for (int l = 0; l < c->L; l++) {
		size_t NC = (size_t)N * C;
		size_t NQ = (size_t)N * Cq, NF = (size_t)N * F;
		float *ln1 = a->ln1 + l * NC, *qkv = a->qkv + l * 3 * NQ;
		float *atty = a->atty + l * NQ;
		float *lse = a->lse + (size_t)l * N * NH;
		/* scratch of a branch's projection: dtmp when tensor parallel
		   (backward's, free here) */
		float *attproj = tp > 1 ? a->dtmp : drop ? a->attproj + l * NC :
		    NULL;
		float *res2 = a->residual2 + l * NC, *ln2 = a->ln2 + l * NC;
		float *fch = a->fch + l * NF;
		float *fchg = a->fch_gelu + l * NF;
		float *fcproj = tp > 1 ? a->dtmp : drop ? a->fcproj + l * NC :
		    NULL;
		float *res3 = a->residual3 + l * NC;

		PROF(PK_LN_F, k->layernorm_fwd(ln1, a->ln1_mean + (size_t)l * N,
		    a->ln1_rstd + (size_t)l * N, res, p->ln1w + l * C,
		    p->ln1b + l * C, N, C));
		/* column-parallel: our heads' q, k, v */
		PROF(PK_MATMUL_F, k->matmul_fwd(qkv, ln1, p->qkvw + (size_t)l * 3 * Cq * C,
		    p->qkvb + (size_t)l * 3 * Cq, N, C, 3 * Cq, 0));
		PROF(PK_ATTN_F, k->attn_fwd(atty, lse, qkv, B, T, Cq, NH));
		branch_fwd(m, res2, res, attproj, drop ? a->mask_att + l * NC :
		    NULL, atty, p->attprojw + (size_t)l * C * Cq,
		    p->attprojb + (size_t)l * C, N, Cq, C);
		PROF(PK_LN_F, k->layernorm_fwd(ln2, a->ln2_mean + (size_t)l * N,
		    a->ln2_rstd + (size_t)l * N, res2, p->ln2w + l * C,
		    p->ln2b + l * C, N, C));
		/* fc's bias goes in with the GELU, one pass for both */
		PROF(PK_MATMUL_F, k->matmul_fwd(fch, ln2, p->fcw + (size_t)l * F * C,
		    NULL, N, C, F, 0));
		PROF(PK_GELU_F, k->gelu_fwd(fchg, fch, p->fcb + (size_t)l * F,
		    N, F));
		branch_fwd(m, res3, res2, fcproj, drop ? a->mask_mlp + l * NC :
		    NULL, fchg, p->fcprojw + (size_t)l * C * F,
		    p->fcprojb + (size_t)l * C, N, F, C);
		res = res3;
	}
	if (!m->head) {
		m->loss = -1.0f;
		if (prof_on)
			prof_s[PK_OTHER_F] += prof_now() - t_fwd;
		return 0;
	}
	PROF(PK_LN_F, k->layernorm_fwd(a->lnf, a->lnf_mean, a->lnf_rstd, res, p->lnfw,
	    p->lnfb, N, C));
	PROF(PK_MATMUL_F, k->matmul_fwd(a->logits, a->lnf, p->wte, NULL, N, C, V,
	    0));
	PROF(PK_SOFTMAX, k->softmax_fwd(a->probs, a->logits, N, V));

	if (targets != NULL) {
		double sum = 0;

		memcpy(a->targets, targets, sizeof(int) * N);
		for (int i = 0; i < N; i++) {
			float pr = a->probs[(size_t)i * V + targets[i]];

			/* a probability that underflowed must not give inf */
			a->losses[i] = -logf(pr > 1e-30f ? pr : 1e-30f);
			sum += a->losses[i];
		}
		m->loss = (float)(sum / N);
	} else {
		m->loss = -1.0f;
	}
	if (prof_on)
		prof_s[PK_OTHER_F] += prof_now() - t_fwd;	/* total, now */
	return 0;
}

void
gpt_zero_grad(struct gpt *m)
{
	zero_vec(m->grads, m->nparams);
}

void
gpt_backward(struct gpt *m, float scale)
{
	assert(m->embed && m->head);
	gpt_stage_backward(m, NULL, scale);
}

const float *
gpt_stage_out(const struct gpt *m)
{
	return m->acts->residual3 + (size_t)(m->cfg.L - 1) * m->B * m->T *
	    m->cfg.C;
}

const float *
gpt_stage_din(const struct gpt *m)
{
	return m->acts->dres;
}

void
gpt_stage_backward(struct gpt *m, const float *dout, float scale)
{
	const struct kern_ops *k = m->k;
	const struct gpt_config *c = &m->cfg;
	const struct gpt_params *p = &m->p, *g = &m->g;
	struct gpt_acts *a = m->acts;
	int B = m->B, T = m->T, C = c->C, V = c->V, N = B * T, tp = cfg_tp(c);
	int NH = c->NH / tp, Cq = C / tp, F = 4 * C / tp;
	size_t NC = (size_t)N * C, NQ = (size_t)N * Cq, NF = (size_t)N * F;
	int drop = m->dropout > 0 && m->training;
	float dl = scale / (float)N;
	double t_bwd = prof_on > 0 ? prof_now() : 0;

	if (!m->head) {
		/* the next stage's gradient of our output starts it */
		memcpy(a->dres, dout, NC * sizeof(float));
		goto blocks;
	}
	/* d loss / d logits = (probs - onehot) / N, times scale */
#pragma omp parallel for schedule(static) if ((long)N * V > (1 << 16))
	for (int i = 0; i < N; i++) {
		const float *pr = a->probs + (size_t)i * V;
		float *d = a->dlogits + (size_t)i * V;

#pragma omp simd
		for (int v = 0; v < V; v++)
			d[v] = pr[v] * dl;
		d[a->targets[i]] -= dl;
	}
	PROF(PK_MATMUL_B, k->matmul_bwd(a->dln, g->wte, NULL, a->dlogits, a->lnf, p->wte, N, C,
	    V, 0));
	zero_vec(a->dres, NC);
	PROF(PK_LN_B, k->layernorm_bwd(a->dres, g->lnfw, g->lnfb, a->dln,
	    a->residual3 + (size_t)(c->L - 1) * NC, p->lnfw, a->lnf_mean,
	    a->lnf_rstd, N, C));
blocks:

	for (int l = c->L - 1; l >= 0; l--) {
		const float *res = l == 0 ? a->encoded :
		    a->residual3 + (size_t)(l - 1) * NC;
		const float *dbranch;

		/* MLP branch: dres is d residual3 */
		dbranch = a->dres;
		if (drop) {
			memcpy(a->dtmp, a->dres, NC * sizeof(float));
			mul_vec(a->dtmp, a->mask_mlp + l * NC, NC);
			dbranch = a->dtmp;
		}
		/* fresh activation gradients are overwritten (acc 0) */
		PROF(PK_MATMUL_B, k->matmul_bwd(a->dfch_gelu, g->fcprojw + (size_t)l * C * F,
		    g->fcprojb + (size_t)l * C, dbranch,
		    a->fch_gelu + l * NF, p->fcprojw + (size_t)l * C * F,
		    N, F, C, 0));
		/* fc's bias gradient is summed in the GELU's backward pass */
		PROF(PK_GELU_B, k->gelu_bwd(a->dfch, g->fcb + (size_t)l * F,
		    a->fch + l * NF, a->dfch_gelu, N, F, 0));
		PROF(PK_MATMUL_B, k->matmul_bwd(a->dln, g->fcw + (size_t)l * F * C,
		    NULL, a->dfch, a->ln2 + l * NC,
		    p->fcw + (size_t)l * F * C, N, C, F, 0));
		/* tensor parallel: fc is column-parallel, dln our part */
		if (tp > 1)
			tp_sum(m, a->dln, NC);
		PROF(PK_LN_B, k->layernorm_bwd(a->dres, g->ln2w + l * C, g->ln2b + l * C,
		    a->dln, a->residual2 + l * NC, p->ln2w + l * C,
		    a->ln2_mean + (size_t)l * N, a->ln2_rstd + (size_t)l * N,
		    N, C));

		/* attention branch: dres is now d residual2 */
		dbranch = a->dres;
		if (drop) {
			memcpy(a->dtmp, a->dres, NC * sizeof(float));
			mul_vec(a->dtmp, a->mask_att + l * NC, NC);
			dbranch = a->dtmp;
		}
		PROF(PK_MATMUL_B, k->matmul_bwd(a->datty, g->attprojw + (size_t)l * C * Cq,
		    g->attprojb + (size_t)l * C, dbranch, a->atty + l * NQ,
		    p->attprojw + (size_t)l * C * Cq, N, Cq, C, 0));
		zero_vec(a->dqkv, 3 * NQ);
		PROF(PK_ATTN_B, k->attn_bwd(a->dqkv, a->datty, a->qkv + l * 3 * NQ,
		    a->atty + l * NQ, a->lse + (size_t)l * N * NH, B, T, Cq, NH));
		PROF(PK_MATMUL_B, k->matmul_bwd(a->dln, g->qkvw + (size_t)l * 3 * Cq * C,
		    g->qkvb + (size_t)l * 3 * Cq, a->dqkv, a->ln1 + l * NC,
		    p->qkvw + (size_t)l * 3 * Cq * C, N, C, 3 * Cq, 0));
		/* the same for q, k, v */
		if (tp > 1)
			tp_sum(m, a->dln, NC);
		PROF(PK_LN_B, k->layernorm_bwd(a->dres, g->ln1w + l * C, g->ln1b + l * C,
		    a->dln, res, p->ln1w + l * C, a->ln1_mean + (size_t)l * N,
		    a->ln1_rstd + (size_t)l * N, N, C));
		/* layer l's gradients are done: its all-reduce may go */
		if (m->grad_ready != NULL)
			m->grad_ready(m->grad_ready_arg, l);
	}
	/* dres is d encoded: the previous stage's to take, or ours */
	if (!m->embed) {
		if (prof_on > 0)
			prof_s[PK_OTHER_B] += prof_now() - t_bwd;
		return;
	}
	if (drop)
		mul_vec(a->dres, a->mask_emb, NC);
	/*
	 * Tokens repeat, so rows of dwte collide: threads split the
	 * channels instead, and each element is summed in token order
	 * whatever the thread count.
	 */
#pragma omp parallel if ((long)N * C > (1 << 16))
	{
		int nth = omp_get_num_threads(), th = omp_get_thread_num();
		int i0 = (int)((long)C * th / nth);
		int i1 = (int)((long)C * (th + 1) / nth);

		for (int n = 0; n < N; n++) {
			const float *d = a->dres + (size_t)n * C;
			float *dte = g->wte + (size_t)a->inputs[n] * C;
			float *dpe = g->wpe + (size_t)(n % T) * C;

#pragma omp simd
			for (int i = i0; i < i1; i++) {
				dte[i] += d[i];
				dpe[i] += d[i];
			}
		}
	}
	if (prof_on > 0)
		prof_s[PK_OTHER_B] += prof_now() - t_bwd;
}

const float *
gpt_probs(const struct gpt *m, int b, int t)
{
	return m->acts->probs + ((size_t)b * m->T + t) * m->cfg.V;
}

int
gpt_generate(struct gpt *m, const uint8_t *prompt, int plen, uint8_t *out,
    int n, float temperature, struct rng *r)
{
	int maxT = m->cfg.maxT, V = m->cfg.V, len = 0, rc = 0;
	int *ctx = malloc(sizeof(int) * (size_t)(plen + n + 1));
	double *w = malloc(sizeof(double) * (size_t)V);
	int was_training = m->training;

	if (ctx == NULL || w == NULL) {
		free(ctx);
		free(w);
		return -ENOMEM;
	}
	m->training = 0;
	/* an empty prompt starts from a newline, a natural text boundary */
	if (plen == 0)
		ctx[len++] = '\n';
	for (int i = 0; i < plen; i++)
		ctx[len++] = prompt[i];
	for (int i = 0; i < n; i++) {
		int T = len < maxT ? len : maxT;
		const float *pr;
		double sum = 0, u;
		int v;

		if ((rc = gpt_forward(m, ctx + len - T, NULL, 1, T)) < 0)
			break;
		/* p^(1/temperature), renormalised: sharper when < 1 */
		pr = gpt_probs(m, 0, T - 1);
		for (v = 0; v < V; v++) {
			w[v] = pow((double)pr[v] + 1e-30, 1.0 / temperature);
			sum += w[v];
		}
		u = rng_uniform(r) * sum;
		for (v = 0; v < V - 1; v++) {
			if (u < w[v])
				break;
			u -= w[v];
		}
		out[i] = (uint8_t)v;
		ctx[len++] = v;
	}
	m->training = was_training;
	free(ctx);
	free(w);
	return rc;
}
