/*
 * kern_dnnl.c: the fast kernels.  Matmuls through dnnl_sgemm (MACHINE.md:
 * faster than the matmul primitive with plain weights), LayerNorm, GELU
 * and softmax through oneDNN primitives, attention through attn.c.  The
 * scalar reference of each is in kern_ref.c, and tests/unit/check_kern.c
 * holds one against the other.
 *
 * Primitives and their memory objects are created once per shape and kept
 * in a small cache (struct kd_cache); each call only sets the data handles
 * and executes.  Not reentrant: one thread calls the kernels (the kernels
 * themselves run on the OpenMP pool).  kern_dnnl_fini() releases it all;
 * a destructor calls it at exit too, so valgrind sees no leak.
 *
 * Errors: a failing oneDNN call is a programming error (a descriptor this
 * file built wrongly, or an unsupported shape), not a steady-state
 * condition the trainer could recover from; it is logged with the call
 * and the status and the process exits (fatalx).  Out of memory for the
 * scratch buffers is fatal too, since the ops return void (compute.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include <dnnl.h>
#include <dnnl_debug.h>

#include "compute.h"
#include "log.h"

#define KD_CACHE	32	/* cached primitives, all kinds together */
#define KD_MAXARGS	10	/* execution arguments of one primitive */
#define KD_ALIGN	64	/* scratch buffer alignment, bytes */

#define KD_CHECK(call) do {						\
	dnnl_status_t kd_st_ = (call);					\
	if (kd_st_ != dnnl_success)					\
		fatalx("kern_dnnl: %s failed: %s (%s:%d)", #call,	\
		    dnnl_status2str(kd_st_), __FILE__, __LINE__);	\
} while (0)

enum kd_kind {
	KD_LN_FWD = 1,
	KD_LN_BWD,
	KD_GELU_FWD,
	KD_GELU_BWD,
	KD_SOFTMAX_FWD,
};

/* One cached primitive: its shape key and its argument memory objects. */
struct kd_prim {
	enum kd_kind	 kind;		/* 0: slot free */
	long		 a, b;		/* shape (N, C), (n, 0), (N, V) */
	dnnl_primitive_t prim;
	int		 nargs;
	dnnl_exec_arg_t	 args[KD_MAXARGS];	/* memory objects, owned */
};

enum kd_scratch_slot {
	KD_S_BIG,	/* N x C diff_src of LayerNorm/GELU backward */
	KD_S_VAR,	/* N variances */
	KD_S_DW,	/* C */
	KD_S_DB,	/* C */
	KD_S_COUNT,
};

static struct kd_cache {
	dnnl_engine_t	 engine;	/* NULL until the first call */
	dnnl_stream_t	 stream;
	struct kd_prim	 prims[KD_CACHE];
	int		 next;		/* round-robin eviction */
	float		*scratch[KD_S_COUNT];
	size_t		 scratch_n[KD_S_COUNT];	/* floats */
} kd;

static void
kd_init(void)
{
	if (kd.engine != NULL)
		return;
	KD_CHECK(dnnl_engine_create(&kd.engine, dnnl_cpu, 0));
	KD_CHECK(dnnl_stream_create(&kd.stream, kd.engine,
	    dnnl_stream_default_flags));
}

static void
kd_prim_free(struct kd_prim *p)
{
	for (int i = 0; i < p->nargs; i++)
		dnnl_memory_destroy(p->args[i].memory);
	if (p->prim != NULL)
		dnnl_primitive_destroy(p->prim);
	memset(p, 0, sizeof(*p));
}

void
kern_dnnl_fini(void)
{
	for (int i = 0; i < KD_CACHE; i++)
		kd_prim_free(&kd.prims[i]);
	for (int i = 0; i < KD_S_COUNT; i++)
		free(kd.scratch[i]);
	if (kd.stream != NULL)
		dnnl_stream_destroy(kd.stream);
	if (kd.engine != NULL)
		dnnl_engine_destroy(kd.engine);
	memset(&kd, 0, sizeof(kd));
}

/* Programs that never call kern_dnnl_fini() still exit clean. */
static void __attribute__((destructor))
kd_atexit(void)
{
	kern_dnnl_fini();
}

/* A scratch buffer of at least n floats; contents undefined. */
static float *
kd_scratch(enum kd_scratch_slot s, size_t n)
{
	if (kd.scratch_n[s] < n) {
		size_t bytes = (n * sizeof(float) + KD_ALIGN - 1) &
		    ~(size_t)(KD_ALIGN - 1);

		free(kd.scratch[s]);
		kd.scratch[s] = aligned_alloc(KD_ALIGN, bytes);
		if (kd.scratch[s] == NULL)
			fatalx("kern_dnnl: out of memory for %zu bytes of "
			    "scratch", bytes);
		kd.scratch_n[s] = n;
	}
	return kd.scratch[s];
}

static struct kd_prim *
kd_find(enum kd_kind kind, long a, long b)
{
	for (int i = 0; i < KD_CACHE; i++)
		if (kd.prims[i].kind == kind && kd.prims[i].a == a &&
		    kd.prims[i].b == b)
			return &kd.prims[i];
	return NULL;
}

/* A free slot (evicting round-robin when full), keyed (kind, a, b). */
static struct kd_prim *
kd_slot(enum kd_kind kind, long a, long b)
{
	struct kd_prim *p = NULL;

	for (int i = 0; i < KD_CACHE && p == NULL; i++)
		if (kd.prims[i].kind == 0)
			p = &kd.prims[i];
	if (p == NULL) {
		p = &kd.prims[kd.next];
		kd.next = (kd.next + 1) % KD_CACHE;
		kd_prim_free(p);
	}
	p->kind = kind;
	p->a = a;
	p->b = b;
	return p;
}

/* Creates the primitive of pd and destroys pd. */
static void
kd_make_prim(struct kd_prim *p, dnnl_primitive_desc_t pd)
{
	KD_CHECK(dnnl_primitive_create(&p->prim, pd));
	KD_CHECK(dnnl_primitive_desc_destroy(pd));
}

/* Adds an argument whose data handle is set at each execution. */
static void
kd_arg(struct kd_prim *p, int arg, const dnnl_memory_desc_t *md)
{
	if (p->nargs == KD_MAXARGS)
		fatalx("kern_dnnl: too many arguments");
	p->args[p->nargs].arg = arg;
	KD_CHECK(dnnl_memory_create(&p->args[p->nargs].memory, md, kd.engine,
	    DNNL_MEMORY_NONE));
	p->nargs++;
}

/* Sets the handles (in the order of kd_arg) and runs the primitive. */
static void
kd_exec(struct kd_prim *p, void *const *handles)
{
	for (int i = 0; i < p->nargs; i++)
		KD_CHECK(dnnl_memory_set_data_handle(p->args[i].memory,
		    handles[i]));
	KD_CHECK(dnnl_primitive_execute(p->prim, kd.stream, p->nargs,
	    p->args));
	KD_CHECK(dnnl_stream_wait(kd.stream));
}

static void
kd_md2(dnnl_memory_desc_t *md, long d0, long d1)
{
	dnnl_dims_t dims = { d0, d1 };

	KD_CHECK(dnnl_memory_desc_init_by_tag(md, 2, dims, dnnl_f32,
	    dnnl_ab));
}

static void
kd_md1(dnnl_memory_desc_t *md, long d0)
{
	dnnl_dims_t dims = { d0 };

	KD_CHECK(dnnl_memory_desc_init_by_tag(md, 1, dims, dnnl_f32, dnnl_a));
}

/* dst[i] += src[i] */
static void
kd_add(float *restrict dst, const float *restrict src, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > 32768)
	for (size_t i = 0; i < n; i++)
		dst[i] += src[i];
}

/* ---------------------------------------------------------------- */
/* matmul: dnnl_sgemm, row-major                                    */

static void
dnnl_matmul_fwd(float *out, const float *inp, const float *w,
    const float *bias, int N, int C, int OC)
{
	/* out[N,OC] = inp[N,C] . w[OC,C]^T */
	KD_CHECK(dnnl_sgemm('N', 'T', N, OC, C, 1.0f, inp, C, w, C, 0.0f, out,
	    OC));
	if (bias == NULL)
		return;
#pragma omp parallel for schedule(static) if ((long)N * OC > 32768)
	for (int n = 0; n < N; n++) {
		float *o = out + (size_t)n * OC;

#pragma omp simd
		for (int j = 0; j < OC; j++)
			o[j] += bias[j];
	}
}

#define KD_DBIAS_BLOCK	64	/* columns per dbias task */

static void
dnnl_matmul_bwd(float *dinp, float *dw, float *dbias, const float *dout,
    const float *inp, const float *w, int N, int C, int OC, int acc)
{
	/* dinp[N,C] (+)= dout[N,OC] . w[OC,C] */
	if (dinp != NULL)
		KD_CHECK(dnnl_sgemm('N', 'N', N, C, OC, 1.0f, dout, OC, w, C,
		    acc ? 1.0f : 0.0f, dinp, C));
	/* dw[OC,C] += dout^T . inp[N,C] */
	KD_CHECK(dnnl_sgemm('T', 'N', OC, C, N, 1.0f, dout, OC, inp, C, 1.0f,
	    dw, C));
	if (dbias == NULL)
		return;
	/* column sums, a block of columns per task, rows streamed */
#pragma omp parallel for schedule(static) if ((long)N * OC > 32768)
	for (int j0 = 0; j0 < OC; j0 += KD_DBIAS_BLOCK) {
		int nj = OC - j0 < KD_DBIAS_BLOCK ? OC - j0 : KD_DBIAS_BLOCK;
		float acc[KD_DBIAS_BLOCK] = { 0 };

		for (int n = 0; n < N; n++) {
			const float *g = dout + (size_t)n * OC + j0;

#pragma omp simd
			for (int j = 0; j < nj; j++)
				acc[j] += g[j];
		}
		for (int j = 0; j < nj; j++)
			dbias[j0 + j] += acc[j];
	}
}

/* ---------------------------------------------------------------- */
/* LayerNorm: oneDNN keeps the variance, the API keeps 1/sqrt(var+eps) */

#define LN_FLAGS	(dnnl_use_scale | dnnl_use_shift)

static void
kd_ln_descs(dnnl_memory_desc_t *data, dnnl_memory_desc_t *stat,
    dnnl_memory_desc_t *wmd, int N, int C)
{
	kd_md2(data, N, C);
	kd_md1(stat, N);
	kd_md1(wmd, C);
}

static dnnl_primitive_desc_t
kd_ln_fwd_pd(int N, int C)
{
	dnnl_memory_desc_t data, stat, wmd;
	dnnl_layer_normalization_desc_t d;
	dnnl_primitive_desc_t pd;

	kd_ln_descs(&data, &stat, &wmd, N, C);
	KD_CHECK(dnnl_layer_normalization_forward_desc_init(&d,
	    dnnl_forward_training, &data, &stat, LN_EPS, LN_FLAGS));
	KD_CHECK(dnnl_primitive_desc_create(&pd, &d, NULL, kd.engine, NULL));
	return pd;
}

static void
dnnl_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp,
    const float *w, const float *b, int N, int C)
{
	struct kd_prim *p;
	float *var;

	kd_init();
	if ((p = kd_find(KD_LN_FWD, N, C)) == NULL) {
		dnnl_memory_desc_t data, stat, wmd;

		p = kd_slot(KD_LN_FWD, N, C);
		kd_make_prim(p, kd_ln_fwd_pd(N, C));
		kd_ln_descs(&data, &stat, &wmd, N, C);
		kd_arg(p, DNNL_ARG_SRC, &data);
		kd_arg(p, DNNL_ARG_DST, &data);
		kd_arg(p, DNNL_ARG_MEAN, &stat);
		kd_arg(p, DNNL_ARG_VARIANCE, &stat);
		kd_arg(p, DNNL_ARG_SCALE, &wmd);
		kd_arg(p, DNNL_ARG_SHIFT, &wmd);
	}
	var = kd_scratch(KD_S_VAR, N);
	kd_exec(p, (void *[]){ (void *)inp, out, mean, var, (void *)w,
	    (void *)b });
#pragma omp simd
	for (int n = 0; n < N; n++)
		rstd[n] = 1.0f / sqrtf(var[n] + LN_EPS);
}

static void
dnnl_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout,
    const float *inp, const float *w, const float *mean, const float *rstd,
    int N, int C)
{
	struct kd_prim *p;
	float *var, *dx, *dws, *dbs;

	kd_init();
	if ((p = kd_find(KD_LN_BWD, N, C)) == NULL) {
		dnnl_memory_desc_t data, stat, wmd;
		dnnl_layer_normalization_desc_t d;
		dnnl_primitive_desc_t hint, pd;

		p = kd_slot(KD_LN_BWD, N, C);
		kd_ln_descs(&data, &stat, &wmd, N, C);
		hint = kd_ln_fwd_pd(N, C);
		KD_CHECK(dnnl_layer_normalization_backward_desc_init(&d,
		    dnnl_backward, &data, &data, &stat, LN_EPS, LN_FLAGS));
		KD_CHECK(dnnl_primitive_desc_create(&pd, &d, NULL, kd.engine,
		    hint));
		KD_CHECK(dnnl_primitive_desc_destroy(hint));
		kd_make_prim(p, pd);
		kd_arg(p, DNNL_ARG_SRC, &data);
		kd_arg(p, DNNL_ARG_DIFF_DST, &data);
		kd_arg(p, DNNL_ARG_MEAN, &stat);
		kd_arg(p, DNNL_ARG_VARIANCE, &stat);
		kd_arg(p, DNNL_ARG_SCALE, &wmd);
		/* required by 2.6 though backward never reads it */
		kd_arg(p, DNNL_ARG_SHIFT, &wmd);
		kd_arg(p, DNNL_ARG_DIFF_SRC, &data);
		kd_arg(p, DNNL_ARG_DIFF_SCALE, &wmd);
		kd_arg(p, DNNL_ARG_DIFF_SHIFT, &wmd);
	}
	var = kd_scratch(KD_S_VAR, N);
	dx = kd_scratch(KD_S_BIG, (size_t)N * C);
	dws = kd_scratch(KD_S_DW, C);
	dbs = kd_scratch(KD_S_DB, C);
	/* var = 1/rstd^2 - eps, so that oneDNN's 1/sqrt(var+eps) is rstd */
#pragma omp simd
	for (int n = 0; n < N; n++)
		var[n] = 1.0f / (rstd[n] * rstd[n]) - LN_EPS;
	/* the shift handle: any C floats (unread), w will do */
	kd_exec(p, (void *[]){ (void *)inp, (void *)dout, (void *)mean, var,
	    (void *)w, (void *)w, dx, dws, dbs });
	kd_add(dinp, dx, (size_t)N * C);
	kd_add(dw, dws, C);
	kd_add(db, dbs, C);
}

/* ---------------------------------------------------------------- */
/* GELU (exact erf form) and softmax                               */

static dnnl_primitive_desc_t
kd_gelu_fwd_pd(const dnnl_memory_desc_t *md)
{
	dnnl_eltwise_desc_t d;
	dnnl_primitive_desc_t pd;

	KD_CHECK(dnnl_eltwise_forward_desc_init(&d, dnnl_forward_training,
	    dnnl_eltwise_gelu_erf, md, 0.0f, 0.0f));
	KD_CHECK(dnnl_primitive_desc_create(&pd, &d, NULL, kd.engine, NULL));
	return pd;
}

static void
dnnl_gelu_fwd(float *out, const float *inp, size_t n)
{
	struct kd_prim *p;

	kd_init();
	if ((p = kd_find(KD_GELU_FWD, (long)n, 0)) == NULL) {
		dnnl_memory_desc_t md;

		p = kd_slot(KD_GELU_FWD, (long)n, 0);
		kd_md1(&md, (long)n);
		kd_make_prim(p, kd_gelu_fwd_pd(&md));
		kd_arg(p, DNNL_ARG_SRC, &md);
		kd_arg(p, DNNL_ARG_DST, &md);
	}
	kd_exec(p, (void *[]){ (void *)inp, out });
}

static void
dnnl_gelu_bwd(float *dinp, const float *inp, const float *dout, size_t n,
    int acc)
{
	struct kd_prim *p;
	float *dx;

	kd_init();
	if ((p = kd_find(KD_GELU_BWD, (long)n, 0)) == NULL) {
		dnnl_memory_desc_t md;
		dnnl_eltwise_desc_t d;
		dnnl_primitive_desc_t hint, pd;

		p = kd_slot(KD_GELU_BWD, (long)n, 0);
		kd_md1(&md, (long)n);
		hint = kd_gelu_fwd_pd(&md);
		KD_CHECK(dnnl_eltwise_backward_desc_init(&d,
		    dnnl_eltwise_gelu_erf, &md, &md, 0.0f, 0.0f));
		KD_CHECK(dnnl_primitive_desc_create(&pd, &d, NULL, kd.engine,
		    hint));
		KD_CHECK(dnnl_primitive_desc_destroy(hint));
		kd_make_prim(p, pd);
		kd_arg(p, DNNL_ARG_SRC, &md);
		kd_arg(p, DNNL_ARG_DIFF_DST, &md);
		kd_arg(p, DNNL_ARG_DIFF_SRC, &md);
	}
	/* overwriting: straight into dinp, no scratch and no second pass */
	dx = acc ? kd_scratch(KD_S_BIG, n) : dinp;
	kd_exec(p, (void *[]){ (void *)inp, (void *)dout, dx });
	if (acc)
		kd_add(dinp, dx, n);
}

static void
dnnl_softmax_fwd(float *probs, const float *logits, int N, int V)
{
	struct kd_prim *p;

	kd_init();
	if ((p = kd_find(KD_SOFTMAX_FWD, N, V)) == NULL) {
		dnnl_memory_desc_t md;
		dnnl_softmax_v2_desc_t d;
		dnnl_primitive_desc_t pd;

		p = kd_slot(KD_SOFTMAX_FWD, N, V);
		kd_md2(&md, N, V);
		KD_CHECK(dnnl_softmax_v2_forward_desc_init(&d,
		    dnnl_forward_inference, dnnl_softmax_accurate, &md, &md,
		    1));
		KD_CHECK(dnnl_primitive_desc_create(&pd, &d, NULL, kd.engine,
		    NULL));
		kd_make_prim(p, pd);
		kd_arg(p, DNNL_ARG_SRC, &md);
		kd_arg(p, DNNL_ARG_DST, &md);
	}
	kd_exec(p, (void *[]){ (void *)logits, probs });
}

/* ---------------------------------------------------------------- */

void
kern_set_threads(int n)
{
	omp_set_num_threads(n > 0 ? n : omp_get_num_procs());
}

const struct kern_ops *
kern_lookup(const char *name)
{
	if (name == NULL)
		return NULL;
	if (strcmp(name, "ref") == 0)
		return &kern_ref_ops;
	if (strcmp(name, "dnnl") == 0)
		return &kern_dnnl_ops;
	return NULL;
}

const struct kern_ops kern_dnnl_ops = {
	.name = "dnnl",
	.matmul_fwd = dnnl_matmul_fwd,
	.matmul_bwd = dnnl_matmul_bwd,
	.layernorm_fwd = dnnl_layernorm_fwd,
	.layernorm_bwd = dnnl_layernorm_bwd,
	.gelu_fwd = dnnl_gelu_fwd,
	.gelu_bwd = dnnl_gelu_bwd,
	.softmax_fwd = dnnl_softmax_fwd,
	.attn_fwd = attn_flash_fwd,
	.attn_bwd = attn_flash_bwd,
};
