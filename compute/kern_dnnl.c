/*
 * kern_dnnl.c: the fast kernels.  Matmuls through dnnl_sgemm (MACHINE.md:
 * faster than the matmul primitive with plain weights), softmax through a
 * oneDNN primitive, GELU and LayerNorm through kern_vec.c (8-lane vector
 * code that fuses the fc bias and its gradient, and accumulates
 * LayerNorm's gradients in place: faster here than oneDNN's primitives,
 * docs/compute.md), attention through attn.c.  The scalar reference of
 * each is in kern_ref.c, and tests/unit/check_kern.c holds one against
 * the other.
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
 * and the status and the process exits (fatalx).
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
#define KD_MAXARGS	4	/* execution arguments of one primitive */

#define KD_CHECK(call) do {						\
	dnnl_status_t kd_st_ = (call);					\
	if (kd_st_ != dnnl_success)					\
		fatalx("kern_dnnl: %s failed: %s (%s:%d)", #call,	\
		    dnnl_status2str(kd_st_), __FILE__, __LINE__);	\
} while (0)

enum kd_kind {
	KD_SOFTMAX_FWD = 1,
};

/* One cached primitive: its shape key and its argument memory objects. */
struct kd_prim {
	enum kd_kind	 kind;		/* 0: slot free */
	long		 a, b;		/* shape (N, V) */
	dnnl_primitive_t prim;
	int		 nargs;
	dnnl_exec_arg_t	 args[KD_MAXARGS];	/* memory objects, owned */
};

static struct kd_cache {
	dnnl_engine_t	 engine;	/* NULL until the first call */
	dnnl_stream_t	 stream;
	struct kd_prim	 prims[KD_CACHE];
	int		 next;		/* round-robin eviction */
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

/* ---------------------------------------------------------------- */
/* matmul: dnnl_sgemm, row-major                                    */

static void
dnnl_matmul_fwd(float *out, const float *inp, const float *w,
    const float *bias, int N, int C, int OC, int acc)
{
	/* out[N,OC] (+)= inp[N,C] . w[OC,C]^T */
	KD_CHECK(dnnl_sgemm('N', 'T', N, OC, C, 1.0f, inp, C, w, C,
	    acc ? 1.0f : 0.0f, out, OC));
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
static int kd_tn = -1;		/* weight gradients by gemm_tn.c (no AVX-512) */

static void
dnnl_matmul_bwd(float *dinp, float *dw, float *dbias, const float *dout,
    const float *inp, const float *w, int N, int C, int OC, int acc)
{
	/* dinp[N,C] (+)= dout[N,OC] . w[OC,C] */
	if (dinp != NULL)
		KD_CHECK(dnnl_sgemm('N', 'N', N, C, OC, 1.0f, dout, OC, w, C,
		    acc ? 1.0f : 0.0f, dinp, C));
	/*
	 * dw[OC,C] += dout^T . inp[N,C] and dbias += dout's column sums, in
	 * one pass over dout (gemm_tn.c, an AVX2 kernel: faster in the step
	 * than dnnl_sgemm's 'T' product here, docs/compute.md) where the CPU
	 * has no AVX-512; with AVX-512 oneDNN's own kernels are faster (small
	 * at 1 thread: 1.9 s a step against 2.1 on a 16-core Xeon)
	 */
	if (kd_tn < 0) {	/* ARCEUS_DW=dnnl|tn overrides (tests) */
		const char *e = getenv("ARCEUS_DW");

		kd_tn = e != NULL ? strcmp(e, "dnnl") != 0 :
		    !__builtin_cpu_supports("avx512f");
	}
	if (kd_tn) {
		gemm_tn_acc(OC, C, N, dout, OC, inp, C, dw, C, dbias);
		return;
	}
	KD_CHECK(dnnl_sgemm('T', 'N', OC, C, N, 1.0f, dout, OC, inp, C, 1.0f,
	    dw, C));
	if (dbias == NULL)
		return;
	/* column sums, a block of columns per task, rows streamed */
#pragma omp parallel for schedule(static) if ((long)N * OC > 32768)
	for (int j0 = 0; j0 < OC; j0 += KD_DBIAS_BLOCK) {
		int nj = OC - j0 < KD_DBIAS_BLOCK ? OC - j0 : KD_DBIAS_BLOCK;
		float sum[KD_DBIAS_BLOCK] = { 0 };

		for (int n = 0; n < N; n++) {
			const float *g = dout + (size_t)n * OC + j0;

#pragma omp simd
			for (int j = 0; j < nj; j++)
				sum[j] += g[j];
		}
		for (int j = 0; j < nj; j++)
			dbias[j0 + j] += sum[j];
	}
}

/* ---------------------------------------------------------------- */
/* softmax                                                          */

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
	.layernorm_fwd = vec_layernorm_fwd,
	.layernorm_bwd = vec_layernorm_bwd,
	.gelu_fwd = vec_gelu_fwd,
	.gelu_bwd = vec_gelu_bwd,
	.softmax_fwd = dnnl_softmax_fwd,
	.attn_fwd = attn_flash_fwd,
	.attn_bwd = attn_flash_bwd,
};
