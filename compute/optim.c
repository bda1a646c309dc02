/*
 * optim.c: AdamW with decoupled weight decay (on matrices only, as
 * nanoGPT), the learning-rate schedule (linear warmup, cosine decay to
 * min_lr) and global-norm gradient clipping.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"

int
adamw_init(struct adamw *o, size_t n)
{
	memset(o, 0, sizeof(*o));
	o->m = gpt_alloc(n * sizeof(float), 1);
	o->v = gpt_alloc(n * sizeof(float), 1);
	if (o->m == NULL || o->v == NULL) {
		adamw_fini(o);
		return -ENOMEM;
	}
	o->n = n;
	return 0;
}

void
adamw_fini(struct adamw *o)
{
	if (o == NULL)
		return;
	free(o->m);
	free(o->v);
	memset(o, 0, sizeof(*o));
}

void
adamw_step(struct adamw *o, float *params, const float *grads,
    const struct gpt *m, float lr, float beta1, float beta2, float eps,
    float weight_decay, float gscale)
{
	size_t off = 0;
	float bc1, bc2;

	o->t++;
	bc1 = 1.0f - powf(beta1, (float)o->t);
	bc2 = 1.0f - powf(beta2, (float)o->t);
	for (int i = 0; i < GPT_NPARAMS; i++) {
		size_t n = m->sizes[i];
		float wd = gpt_param_decays(i) ? weight_decay : 0.0f;
		float *p = params + off, *mm = o->m + off, *vv = o->v + off;
		const float *g = grads + off;

#pragma omp parallel for simd if (n > (1 << 15))
		for (size_t j = 0; j < n; j++) {
			float gj = g[j] * gscale;
			float mj = beta1 * mm[j] + (1.0f - beta1) * gj;
			float vj = beta2 * vv[j] + (1.0f - beta2) * gj * gj;

			mm[j] = mj;
			vv[j] = vj;
			p[j] -= lr * ((mj / bc1) / (sqrtf(vj / bc2) + eps) +
			    wd * p[j]);
		}
		off += n;
	}
}

float
grad_norm(const float *g, size_t n)
{
	double sum = 0;

#pragma omp parallel for simd reduction(+ : sum) if (n > (1 << 16))
	for (size_t i = 0; i < n; i++)
		sum += (double)g[i] * g[i];
	return (float)sqrt(sum);
}

float
grad_clip_scale(float norm, float clip)
{
	return clip > 0 && norm > clip ? clip / (norm + 1e-6f) : 1.0f;
}

void
grad_scale_to(float *g, size_t n, float clip, float norm)
{
	if (clip > 0 && norm > clip) {
		float s = grad_clip_scale(norm, clip);

#pragma omp parallel for simd if (n > (1 << 16))
		for (size_t i = 0; i < n; i++)
			g[i] *= s;
	}
}

float
grad_clip(float *g, size_t n, float clip)
{
	float norm = grad_norm(g, n);

	grad_scale_to(g, n, clip, norm);
	return norm;
}

float
lr_at(const struct job *j, int64_t step)
{
	int64_t decay = j->decay_steps > 0 ? j->decay_steps : j->steps;
	double ratio;

	if (step < j->warmup_steps)
		return (float)(j->lr * (double)(step + 1) /
		    (double)j->warmup_steps);
	if (step >= decay)
		return (float)j->min_lr;
	ratio = (double)(step - j->warmup_steps) /
	    (double)(decay - j->warmup_steps);
	return (float)(j->min_lr + 0.5 * (1.0 + cos(M_PI * ratio)) *
	    (j->lr - j->min_lr));
}
