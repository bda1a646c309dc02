/*
 * kern_ref.c: the scalar reference kernels.  Plain loops, written for
 * clarity; every optimized kernel (kern_dnnl.c, attn.c) is tested against
 * these, as llm.c keeps a *_cpu version beside each CUDA kernel.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "log.h"

static void
ref_matmul_fwd(float *out, const float *inp, const float *w, const float *bias,
    int N, int C, int OC, int dacc)
{
	for (int n = 0; n < N; n++) {
		const float *x = inp + (size_t)n * C;

		for (int o = 0; o < OC; o++) {
			const float *wr = w + (size_t)o * C;
			double acc = bias ? bias[o] : 0.0;

			for (int c = 0; c < C; c++)
				acc += (double)x[c] * wr[c];
			out[(size_t)n * OC + o] = (float)acc +
			    (dacc ? out[(size_t)n * OC + o] : 0.0f);
		}
	}
}

static void
ref_matmul_bwd(float *dinp, float *dw, float *dbias, const float *dout,
    const float *inp, const float *w, int N, int C, int OC, int dacc)
{
	if (dinp != NULL) {
		for (int n = 0; n < N; n++)
			for (int c = 0; c < C; c++) {
				double acc = 0;

				for (int o = 0; o < OC; o++)
					acc += (double)dout[(size_t)n * OC + o] *
					    w[(size_t)o * C + c];
				dinp[(size_t)n * C + c] = (float)acc + (dacc ?
				    dinp[(size_t)n * C + c] : 0.0f);
			}
	}
	for (int o = 0; o < OC; o++) {
		for (int c = 0; c < C; c++) {
			double acc = 0;

			for (int n = 0; n < N; n++)
				acc += (double)dout[(size_t)n * OC + o] *
				    inp[(size_t)n * C + c];
			dw[(size_t)o * C + c] += (float)acc;
		}
		if (dbias != NULL) {
			double acc = 0;

			for (int n = 0; n < N; n++)
				acc += dout[(size_t)n * OC + o];
			dbias[o] += (float)acc;
		}
	}
}

static void
ref_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp,
    const float *w, const float *b, int N, int C)
{
	for (int n = 0; n < N; n++) {
		const float *x = inp + (size_t)n * C;
		float *y = out + (size_t)n * C;
		double m = 0, v = 0;

		for (int c = 0; c < C; c++)
			m += x[c];
		m /= C;
		for (int c = 0; c < C; c++)
			v += ((double)x[c] - m) * ((double)x[c] - m);
		v /= C;
		float s = (float)(1.0 / sqrt(v + LN_EPS));

		for (int c = 0; c < C; c++)
			y[c] = ((x[c] - (float)m) * s) * w[c] + b[c];
		mean[n] = (float)m;
		rstd[n] = s;
	}
}

static void
ref_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout,
    const float *inp, const float *w, const float *mean, const float *rstd,
    int N, int C)
{
	for (int n = 0; n < N; n++) {
		const float *x = inp + (size_t)n * C;
		const float *dy = dout + (size_t)n * C;
		float *dx = dinp + (size_t)n * C;
		double dnorm_mean = 0, dnorm_norm_mean = 0;

		for (int c = 0; c < C; c++) {
			double norm = (x[c] - mean[n]) * rstd[n];
			double dnorm = (double)w[c] * dy[c];

			dnorm_mean += dnorm;
			dnorm_norm_mean += dnorm * norm;
		}
		dnorm_mean /= C;
		dnorm_norm_mean /= C;
		for (int c = 0; c < C; c++) {
			double norm = (x[c] - mean[n]) * rstd[n];
			double dnorm = (double)w[c] * dy[c];

			db[c] += dy[c];
			dw[c] += (float)(norm * dy[c]);
			dx[c] += (float)((dnorm - dnorm_mean -
			    norm * dnorm_norm_mean) * rstd[n]);
		}
	}
}

/* GELU(x) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), after the bias */
static void
ref_gelu_fwd(float *out, float *pre, const float *bias, int N, int OC)
{
	for (size_t i = 0; i < (size_t)N * OC; i++) {
		double x;

		if (bias != NULL)
			pre[i] += bias[i % (size_t)OC];
		x = pre[i];
		out[i] = (float)(0.5 * x * (1.0 + erf(x * M_SQRT1_2)));
	}
}

/* GELU'(x) = Phi(x) + x phi(x) */
static void
ref_gelu_bwd(float *dinp, float *dbias, const float *inp, const float *dout,
    int N, int OC, int acc)
{
	for (int j = 0; j < OC; j++) {
		double sum = 0;

		for (int n = 0; n < N; n++) {
			size_t i = (size_t)n * OC + j;
			double x = inp[i];
			double cdf = 0.5 * (1.0 + erf(x * M_SQRT1_2));
			double pdf = exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
			double g = (cdf + x * pdf) * dout[i];

			sum += g;
			dinp[i] = (float)g + (acc ? dinp[i] : 0.0f);
		}
		if (dbias != NULL)
			dbias[j] += (float)sum;
	}
}

static void
ref_softmax_fwd(float *probs, const float *logits, int N, int V)
{
	for (int n = 0; n < N; n++) {
		const float *l = logits + (size_t)n * V;
		float *p = probs + (size_t)n * V;
		float max = -INFINITY;
		double sum = 0;

		for (int v = 0; v < V; v++)
			if (l[v] > max)
				max = l[v];
		for (int v = 0; v < V; v++) {
			p[v] = expf(l[v] - max);
			sum += p[v];
		}
		for (int v = 0; v < V; v++)
			p[v] = (float)(p[v] / sum);
	}
}

/*
 * Naive causal attention: for each (b, h, t) the whole score row over
 * t' <= t, in double.  Holds one row of T scores at a time.
 */
static void
ref_attn_fwd(float *out, float *lse, const float *qkv, int B, int T, int C,
    int NH)
{
	int hs = C / NH;
	double scale = 1.0 / sqrt((double)hs);
	double *row = malloc(sizeof(double) * (size_t)T);

	if (row == NULL)
		fatal("ref_attn_fwd: malloc");
	for (int b = 0; b < B; b++)
		for (int h = 0; h < NH; h++)
			for (int t = 0; t < T; t++) {
				const float *q = qkv + ((size_t)b * T + t) *
				    3 * C + h * hs;
				double max = -INFINITY, sum = 0;

				for (int u = 0; u <= t; u++) {
					const float *k = qkv + ((size_t)b * T +
					    u) * 3 * C + C + h * hs;
					double s = 0;

					for (int i = 0; i < hs; i++)
						s += (double)q[i] * k[i];
					row[u] = s * scale;
					if (row[u] > max)
						max = row[u];
				}
				for (int u = 0; u <= t; u++) {
					row[u] = exp(row[u] - max);
					sum += row[u];
				}
				float *o = out + ((size_t)b * T + t) * C +
				    h * hs;
				for (int i = 0; i < hs; i++) {
					double acc = 0;

					for (int u = 0; u <= t; u++)
						acc += row[u] / sum *
						    qkv[((size_t)b * T + u) * 3 *
						    C + 2 * C + h * hs + i];
					o[i] = (float)acc;
				}
				lse[((size_t)b * NH + h) * T + t] =
				    (float)(max + log(sum));
			}
	free(row);
}

/*
 * Naive backward: recomputes the probability row P[t][u] from lse, then
 *   dV[u] += P[t][u] dO[t]
 *   dP[t][u] = dO[t] . V[u]
 *   dS[t][u] = P[t][u] (dP[t][u] - sum_u' P[t][u'] dP[t][u'])
 *   dQ[t] += scale dS[t][u] K[u];  dK[u] += scale dS[t][u] Q[t]
 */
static void
ref_attn_bwd(float *dqkv, const float *dout, const float *qkv,
    const float *out, const float *lse, int B, int T, int C, int NH)
{
	int hs = C / NH;
	double scale = 1.0 / sqrt((double)hs);
	double *p = malloc(sizeof(double) * (size_t)T);
	double *dp = malloc(sizeof(double) * (size_t)T);

	(void)out;
	if (p == NULL || dp == NULL)
		fatal("ref_attn_bwd: malloc");
	for (int b = 0; b < B; b++)
		for (int h = 0; h < NH; h++)
			for (int t = 0; t < T; t++) {
				size_t rt = ((size_t)b * T + t) * 3 * C;
				const float *q = qkv + rt + h * hs;
				const float *dO = dout + ((size_t)b * T + t) *
				    C + h * hs;
				double l = lse[((size_t)b * NH + h) * T + t];
				double dsum = 0;

				for (int u = 0; u <= t; u++) {
					size_t ru = ((size_t)b * T + u) * 3 * C;
					const float *k = qkv + ru + C + h * hs;
					const float *v = qkv + ru + 2 * C +
					    h * hs;
					double s = 0, d = 0;

					for (int i = 0; i < hs; i++) {
						s += (double)q[i] * k[i];
						d += (double)dO[i] * v[i];
					}
					p[u] = exp(s * scale - l);
					dp[u] = d;
					dsum += p[u] * d;
				}
				for (int u = 0; u <= t; u++) {
					size_t ru = ((size_t)b * T + u) * 3 * C;
					const float *k = qkv + ru + C + h * hs;
					double ds = p[u] * (dp[u] - dsum) *
					    scale;

					for (int i = 0; i < hs; i++) {
						dqkv[rt + h * hs + i] +=
						    (float)(ds * k[i]);
						dqkv[ru + C + h * hs + i] +=
						    (float)(ds * q[i]);
						dqkv[ru + 2 * C + h * hs + i] +=
						    (float)(p[u] * dO[i]);
					}
				}
			}
	free(p);
	free(dp);
}

const struct kern_ops kern_ref_ops = {
	.name = "ref",
	.matmul_fwd = ref_matmul_fwd,
	.matmul_bwd = ref_matmul_bwd,
	.layernorm_fwd = ref_layernorm_fwd,
	.layernorm_bwd = ref_layernorm_bwd,
	.gelu_fwd = ref_gelu_fwd,
	.gelu_bwd = ref_gelu_bwd,
	.softmax_fwd = ref_softmax_fwd,
	.attn_fwd = ref_attn_fwd,
	.attn_bwd = ref_attn_bwd,
};
