/*
 * planner.c: the partition planner; the cost model is in planner.h.
 *
 * Search, for each tensor-parallel degree t (dividing n_head) and each
 * pipeline depth S:
 * 1. virtual devices: inside each island, devices by speed, t at a time;
 * 2. replicas: S virtual devices each, island by island first so that
 *    pipelines stay inside islands, then the leftovers of all islands;
 * 3. each replica's layers: the contiguous partition minimizing its
 *    slowest stage under the memory limits (bisection on the stage time
 *    with a greedy feasibility test, exact for contiguous partitions);
 * 4. shares of the global batch: minimize the slowest replica (bisection
 *    on the time, then trimming; exact for non-decreasing replica times);
 * 5. plan_eval() prices the whole placement, all-reduce included.
 * The fastest placement wins; ties go to the smaller t, then smaller S.
 * Cost: O(t_max * sum over S of (n/S) * 64 * (L + S)) for n devices,
 * L layers: well under a second for thousands of devices.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner.h"

#define BISECT_ITERS	64

struct vdev {
	int	idx[PLAN_MAX_TP];	/* cluster device indexes */
	int	t;
	int	island;
	double	gflops;			/* slowest member */
	double	mem;			/* smallest member */
};

struct idmap {
	uint32_t id;
	int	idx;
};

static int
idmap_cmp(const void *a, const void *b)
{
	const struct idmap *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static struct idmap *
idmap_new(const struct plan_cluster *c)
{
	struct idmap *map = malloc(sizeof(*map) * (size_t)(c->ndev + 1));

	if (map == NULL)
		return NULL;
	for (int i = 0; i < c->ndev; i++) {
		map[i].id = c->dev[i].id;
		map[i].idx = i;
	}
	qsort(map, (size_t)c->ndev, sizeof(*map), idmap_cmp);
	return map;
}

static int
idmap_find(const struct idmap *map, int n, uint32_t id)
{
	struct idmap key = { id, 0 }, *hit;

	hit = bsearch(&key, map, (size_t)n, sizeof(*map), idmap_cmp);
	return hit ? hit->idx : -1;
}

/* What a search for one (t, S) needs, allocated once per plan_compute. */
struct search {
	const struct plan_model *m;
	const struct plan_job	*j;
	const struct plan_cluster *c;
	double	*pflops;		/* prefix sums over layers [L+1] */
	double	*pparam;
	double	*pact;
	struct idmap *map;		/* device id -> index */
};

static double
bw_of(const struct plan_cluster *c, int a, int b)
{
	return c->bw[(size_t)a * (size_t)c->nisland + (size_t)b];
}

static double
rtt_of(const struct plan_cluster *c, int a, int b)
{
	return c->rtt[(size_t)a * (size_t)c->nisland + (size_t)b];
}

void
plan_model_gpt(struct plan_model *m, int n_layer, int n_head, int n_embd,
    int block_size, int vocab)
{
	double C = n_embd, T = block_size, V = vocab, NH = n_head;
	double blk = 12.0 * C * C + 13.0 * C;

	memset(m, 0, sizeof(*m));
	if (n_layer + 2 > PLAN_MAX_LAYERS)
		n_layer = PLAN_MAX_LAYERS - 2;
	m->nlayers = n_layer + 2;
	m->n_head = n_head;
	m->block_size = block_size;
	m->boundary_bytes_per_token = 4.0 * C;
	m->tp_bytes_per_token = 4.0 * C;
	/* embedding: token and position tables, a gather */
	m->layer[0].param_bytes = 4.0 * (V * C + T * C);
	m->layer[0].flops_per_token = 3.0 * C;
	m->layer[0].act_bytes_per_token = 4.0 * C;
	for (int i = 1; i <= n_layer; i++) {
		/* matmuls 2*params, attention 2*2*T*C (causal half), x3 */
		m->layer[i].param_bytes = 4.0 * blk;
		m->layer[i].flops_per_token = 3.0 * (2.0 * blk + 2.0 * T * C);
		/* ln1, qkv, att out, proj, res, ln2, fc, gelu, fcproj, res */
		m->layer[i].act_bytes_per_token = 4.0 * (19.0 * C +
		    2.0 * NH + 4.0);
	}
	/* final LayerNorm and the head (its own copy of the tied table) */
	m->layer[n_layer + 1].param_bytes = 4.0 * (V * C + 2.0 * C);
	m->layer[n_layer + 1].flops_per_token = 3.0 * 2.0 * C * V;
	m->layer[n_layer + 1].act_bytes_per_token = 4.0 * (2.0 * C + 2.0 * V);
}

void
plan_fini(struct plan *p)
{
	if (p == NULL)
		return;
	free(p->rep);
	free(p->st);
	free(p->idle);
	memset(p, 0, sizeof(*p));
}

static int
plan_alloc(struct plan *p, int tp, int pp, int dp, int nidle)
{
	p->tp = tp;
	p->pp = pp;
	p->dp = dp;
	p->nidle = nidle;
	p->rep = calloc((size_t)(dp > 0 ? dp : 1), sizeof(*p->rep));
	p->st = calloc((size_t)(dp > 0 ? dp : 1) * (size_t)pp,
	    sizeof(*p->st));
	p->idle = calloc((size_t)(nidle > 0 ? nidle : 1), sizeof(*p->idle));
	if (p->rep == NULL || p->st == NULL || p->idle == NULL)
		return -ENOMEM;
	return 0;
}


/* ---- one stage ---------------------------------------------------- */

/*
 * Micro-batches whose activations stage s holds under 1F1B: S - s, but no
 * more than a replica can have (its share is at most the global batch).
 */
static double
inflight(const struct plan_job *j, int S, int s)
{
	int most = (j->global_batch + j->micro_batch - 1) / j->micro_batch;

	return (double)(S - s < most ? S - s : most);
}

/*
 * Time per token and memory per device of layers [first, first+n) on v,
 * as stage s of S, next stage on island `next` (-1: last stage).
 */
static void
stage_cost(const struct search *z, const struct vdev *v, int first, int n,
    int s, int S, int next, double *sec, double *comm, double *mem)
{
	const struct plan_model *m = z->m;
	double flops = z->pflops[first + n] - z->pflops[first];
	double params = z->pparam[first + n] - z->pparam[first];
	double act = z->pact[first + n] - z->pact[first];
	double t = v->t, cm = 0.0;

	if (v->t > 1)
		cm += n * 4.0 * 2.0 * (t - 1.0) / t * m->tp_bytes_per_token /
		    bw_of(z->c, v->island, v->island);
	if (next >= 0)
		cm += 2.0 * m->boundary_bytes_per_token /
		    bw_of(z->c, v->island, next);
	*comm = cm;
	*sec = flops / (t * v->gflops * 1e9) + cm;
	*mem = 4.0 * params / t + act * m->block_size *
	    z->j->micro_batch * inflight(z->j, S, s) / t + PLAN_RESERVE_BYTES;
}

/*
 * Greedy: can layers be cut into S contiguous non-empty stages on v[0..S)
 * each at most x seconds per token and within memory?  Fills cut[S+1].
 */
static int
part_feasible(const struct search *z, struct vdev *const *v, int S,
    double x, int *cut)
{
	int L = z->m->nlayers, pos = 0;

	for (int s = 0; s < S; s++) {
		int next = s + 1 < S ? v[s + 1]->island : -1;
		int left = S - s - 1, n = 0;
		double sec, comm, mem;

		cut[s] = pos;
		if (s == S - 1) {
			n = L - pos;
			stage_cost(z, v[s], pos, n, s, S, next, &sec, &comm,
			    &mem);
			if (n < 1 || sec > x || mem > v[s]->mem)
				return 0;
			pos = L;
			break;
		}
		/* the most layers that fit: time and memory grow with n */
		{
			int lo = 0, hi = L - left - pos;

			while (lo < hi) {
				int mid = (lo + hi + 1) / 2;

				stage_cost(z, v[s], pos, mid, s, S, next, &sec,
				    &comm, &mem);
				if (sec > x || mem > v[s]->mem)
					hi = mid - 1;
				else
					lo = mid;
			}
			n = lo;
		}
		if (n == 0)
			return 0;
		pos += n;
	}
	cut[S] = pos;
	return pos == L;
}

/*
 * Best contiguous partition of the layers over v[0..S).
 * @return the bottleneck seconds per token, or INFINITY if nothing fits.
 */
static double
part_best(const struct search *z, struct vdev *const *v, int S, int *cut)
{
	double lo = 0.0, hi = 0.0;

	for (int s = 0; s < S; s++) {
		double sec, comm, mem;
		int next = s + 1 < S ? v[s + 1]->island : -1;

		stage_cost(z, v[s], 0, z->m->nlayers, s, S, next, &sec, &comm,
		    &mem);
		if (sec > hi)
			hi = sec;
	}
	if (!part_feasible(z, v, S, hi, cut))
		return INFINITY;
	for (int i = 0; i < BISECT_ITERS; i++) {
		double mid = 0.5 * (lo + hi);

		if (mid <= lo || mid >= hi)
			break;
		if (part_feasible(z, v, S, mid, cut))
			hi = mid;
		else
			lo = mid;
	}
	part_feasible(z, v, S, hi, cut);
	return hi;
}

/* ---- shares of the batch ------------------------------------------ */

static double
rep_time(double a, int S, int b, int g)
{
	if (g <= 0)
		return 0.0;
	return a * ((double)g + (double)(S - 1) * (g < b ? g : b));
}

/* Most sequences a replica (a = T * c) can do in v seconds. */
static long
rep_cap(double a, int S, int b, double v)
{
	double g1 = floor(v / (a * S) * (1.0 + 1e-12));
	double g2 = floor((v / a - (double)(S - 1) * b) * (1.0 + 1e-12));
	long cap = 0;

	if (g1 >= b)
		g1 = b;
	if (g1 > 0)
		cap = (long)g1;
	if (g2 > b && g2 > cap)
		cap = g2 > 1e15 ? (long)1e15 : (long)g2;
	return cap;
}

/*
 * Splits G sequences over R replicas of bottleneck a[r] = T * c_r so that
 * the slowest finishes first.
 */
static void
shares_split(const double *a, int R, int S, int b, int G, int *g)
{
	double lo = 0.0, hi = 0.0;
	long sum;

	for (int r = 0; r < R; r++)
		if (rep_time(a[r], S, b, G) > hi)
			hi = rep_time(a[r], S, b, G);
	for (int i = 0; i < BISECT_ITERS * 2; i++) {
		double mid = 0.5 * (lo + hi);

		if (mid <= lo || mid >= hi)
			break;
		sum = 0;
		for (int r = 0; r < R && sum < G; r++)
			sum += rep_cap(a[r], S, b, mid);
		if (sum >= G)
			hi = mid;
		else
			lo = mid;
	}
	sum = 0;
	for (int r = 0; r < R; r++) {
		long cap = rep_cap(a[r], S, b, hi);

		g[r] = (int)(cap > G ? G : cap);
		sum += g[r];
	}
	/* rounding: take from the slowest, give to the fastest finisher */
	while (sum > G) {
		int w = -1;

		for (int r = 0; r < R; r++)
			if (g[r] > 0 && (w < 0 || rep_time(a[r], S, b, g[r]) >
			    rep_time(a[w], S, b, g[w])))
				w = r;
		g[w]--;
		sum--;
	}
	while (sum < G) {
		int w = 0;

		for (int r = 1; r < R; r++)
			if (rep_time(a[r], S, b, g[r] + 1) <
			    rep_time(a[w], S, b, g[w] + 1))
				w = r;
		g[w]++;
		sum++;
	}
}

/* ---- pricing a placement ------------------------------------------ */

static int
search_init(struct search *z, const struct plan_model *m,
    const struct plan_job *j, const struct plan_cluster *c)
{
	int L = m->nlayers;

	z->m = m;
	z->j = j;
	z->c = c;
	z->pflops = calloc((size_t)(3 * (L + 1)), sizeof(double));
	if (z->pflops == NULL)
		return -ENOMEM;
	z->pparam = z->pflops + L + 1;
	z->pact = z->pparam + L + 1;
	if ((z->map = idmap_new(c)) == NULL) {
		free(z->pflops);
		return -ENOMEM;
	}
	for (int i = 0; i < L; i++) {
		z->pflops[i + 1] = z->pflops[i] + m->layer[i].flops_per_token;
		z->pparam[i + 1] = z->pparam[i] + m->layer[i].param_bytes;
		z->pact[i + 1] = z->pact[i] + m->layer[i].act_bytes_per_token;
	}
	return 0;
}

static void
search_fini(struct search *z)
{
	free(z->pflops);
	free(z->map);
}

static int
vdev_of_stage(const struct plan_cluster *c, const struct idmap *map, int t,
    const struct plan_stage *st, struct vdev *v)
{
	v->t = t;
	for (int k = 0; k < t; k++) {
		int i = idmap_find(map, c->ndev, st->dev[k]);

		if (i < 0)
			return -EINVAL;
		v->idx[k] = i;
		if (k == 0 || c->dev[i].gflops < v->gflops)
			v->gflops = c->dev[i].gflops;
		if (k == 0 || c->dev[i].mem_bytes < v->mem)
			v->mem = c->dev[i].mem_bytes;
		if (k == 0)
			v->island = c->dev[i].island;
		else if (c->dev[i].island != v->island)
			return -EINVAL;	/* tp only inside an island */
	}
	return 0;
}

static int
eval_with(const struct search *z, struct plan *p)
{
	const struct idmap *map = z->map;
	const struct plan_cluster *c = z->c;
	int S = p->pp, R = p->dp, L = z->m->nlayers, b = p->micro_batch;
	double T = z->m->block_size, worst = -1.0, ar = 0.0, rtt = 0.0;
	struct vdev *v;
	int *at, crit = 0, rc = 0;

	v = calloc((size_t)R * (size_t)S, sizeof(*v));
	at = calloc((size_t)R, sizeof(*at));
	if (v == NULL || at == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < R * S; i++)
		if ((rc = vdev_of_stage(c, map, p->tp, &p->st[i], &v[i])) < 0)
			goto out;
	p->ok = 1;
	for (int r = 0; r < R; r++) {
		double cmax = 0.0, cm = 0.0;

		for (int s = 0; s < S; s++) {
			struct plan_stage *st = &p->st[r * S + s];
			int next = s + 1 < S ? v[r * S + s + 1].island : -1;

			if (st->nlayers < 1 || st->first < 0 ||
			    st->first + st->nlayers > L ||
			    (s > 0 && st->first != st[-1].first +
			    st[-1].nlayers) || (s == S - 1 &&
			    st->first + st->nlayers != L)) {
				rc = -EINVAL;
				goto out;
			}
			stage_cost(z, &v[r * S + s], st->first, st->nlayers, s,
			    S, next, &st->sec_per_token, &st->comm_per_token,
			    &st->mem_bytes);
			if (st->mem_bytes > v[r * S + s].mem && p->ok) {
				p->ok = 0;
				snprintf(p->why, sizeof(p->why),
				    "device %u: stage %d (layers %d-%d) needs "
				    "%.0f MiB, has %.0f MiB", st->dev[0], s,
				    st->first, st->first + st->nlayers - 1,
				    st->mem_bytes / 1048576.0,
				    v[r * S + s].mem / 1048576.0);
			}
			if (st->sec_per_token > cmax) {
				cmax = st->sec_per_token;
				cm = st->comm_per_token;
			}
		}
		p->rep[r].time = rep_time(T * cmax, S, b, p->rep[r].share);
		p->rep[r].nmicro = (p->rep[r].share + b - 1) / b;
		if (p->rep[r].time > worst) {
			double work = T * cmax * p->rep[r].share;

			worst = p->rep[r].time;
			crit = r;
			p->bubble = worst - work;
			p->comm = cmax > 0 ? work * cm / cmax : 0.0;
			p->compute = work - p->comm;
		}
	}
	(void)crit;
	/* gradient all-reduce: per layer, a ring over the replicas */
	if (R > 1) {
		double *dev_t = calloc((size_t)R * (size_t)S, sizeof(double));

		if (dev_t == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		for (int l = 0; l < L; l++) {
			double bw = INFINITY;

			for (int r = 0; r < R; r++) {
				const struct plan_stage *st;

				while (p->st[r * S + at[r]].first +
				    p->st[r * S + at[r]].nlayers <= l)
					at[r]++;
				st = &p->st[r * S + at[r]];
				(void)st;
			}
			for (int r = 0; r < R; r++) {
				int a = v[r * S + at[r]].island;
				int n = (r + 1) % R;
				int bb = v[n * S + at[n]].island;

				if (bw_of(c, a, bb) < bw)
					bw = bw_of(c, a, bb);
				if (rtt_of(c, a, bb) > rtt)
					rtt = rtt_of(c, a, bb);
			}
			for (int r = 0; r < R; r++)
				dev_t[r * S + at[r]] += 2.0 * (R - 1) / R *
				    z->m->layer[l].param_bytes / p->tp / bw;
		}
		for (int i = 0; i < R * S; i++)
			if (dev_t[i] > ar)
				ar = dev_t[i];
		ar += 2.0 * (R - 1) * rtt;
		free(dev_t);
	}
	p->allreduce = ar;
	p->comm += ar;
	p->step = worst + ar;
	p->tokens_per_s = p->step > 0 ? T * p->global_batch / p->step : 0.0;
	if (!p->ok)
		rc = -ENOSPC;
out:
	free(v);
	free(at);
	return rc;
}

int
plan_eval(const struct plan_model *m, const struct plan_job *j,
    const struct plan_cluster *c, struct plan *p)
{
	struct search z;
	int rc;

	if ((rc = search_init(&z, m, j, c)) < 0)
		return rc;
	rc = eval_with(&z, p);
	search_fini(&z);
	return rc;
}

/* ---- building candidates ------------------------------------------ */

static const struct plan_cluster *sort_c;

static int
dev_cmp(const void *a, const void *b)
{
	const struct plan_device *x = &sort_c->dev[*(const int *)a];
	const struct plan_device *y = &sort_c->dev[*(const int *)b];

	if (x->island != y->island)
		return x->island < y->island ? -1 : 1;
	if (x->gflops != y->gflops)
		return x->gflops > y->gflops ? -1 : 1;
	if (x->mem_bytes != y->mem_bytes)
		return x->mem_bytes > y->mem_bytes ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * Virtual devices of degree t from the devices idx[0..n), sorted by
 * island then speed.  @return how many; leftovers go to *idle.
 */
static int
vdevs_make(const struct plan_cluster *c, int *idx, int n, int t,
    struct vdev *out, int *idle, int *nidle)
{
	int nv = 0, i = 0;

	sort_c = c;
	qsort(idx, (size_t)n, sizeof(*idx), dev_cmp);
	while (i < n) {
		int isl = c->dev[idx[i]].island, e = i;

		while (e < n && c->dev[idx[e]].island == isl)
			e++;
		for (; i + t <= e; i += t) {
			struct vdev *v = &out[nv++];

			v->t = t;
			v->island = isl;
			for (int k = 0; k < t; k++) {
				const struct plan_device *d = &c->dev[idx[i + k]];

				v->idx[k] = idx[i + k];
				if (k == 0 || d->gflops < v->gflops)
					v->gflops = d->gflops;
				if (k == 0 || d->mem_bytes < v->mem)
					v->mem = d->mem_bytes;
			}
		}
		for (; i < e; i++)
			idle[(*nidle)++] = idx[i];
	}
	return nv;
}

/*
 * Groups virtual devices into replicas of S: each island's own first,
 * then the rest together.  rep[r*S+s] point into v.  @return replicas.
 */
static int
replicas_make(struct vdev *v, int nv, int S, struct vdev **rep,
    struct vdev **rest, int *nrest)
{
	int R = 0, i = 0, nr = 0;

	while (i < nv) {
		int e = i;

		while (e < nv && v[e].island == v[i].island)
			e++;
		for (; i + S <= e; i += S, R++)
			for (int s = 0; s < S; s++)
				rep[R * S + s] = &v[i + s];
		for (; i < e; i++)
			rest[nr++] = &v[i];
	}
	i = 0;
	for (; i + S <= nr; i += S, R++)
		for (int s = 0; s < S; s++)
			rep[R * S + s] = rest[i + s];
	*nrest = nr - i;
	memmove(rest, rest + i, sizeof(*rest) * (size_t)*nrest);
	return R;
}

struct cand_rep {
	struct vdev **v;	/* [S] */
	int	*cut;		/* [S+1] */
	double	c;		/* bottleneck seconds per token */
};

static int
cand_cmp(const void *a, const void *b)
{
	const struct cand_rep *x = a, *y = b;

	return x->c < y->c ? -1 : x->c > y->c;
}

/*
 * Fills p from replicas (partitioned), idle devices and shares.
 */
static int
plan_fill(const struct search *z, struct plan *p, int t, int S,
    struct cand_rep *cr, int R, const int *idle, int nidle)
{
	const struct plan_cluster *c = z->c;
	double *a;
	int *g, rc;

	char *used;

	/* idle: every device of the cluster that no replica uses */
	(void)idle;
	nidle = c->ndev - R * S * t;
	if ((rc = plan_alloc(p, t, S, R, nidle)) < 0)
		return rc;
	p->global_batch = z->j->global_batch;
	p->micro_batch = z->j->micro_batch;
	if ((used = calloc((size_t)c->ndev, 1)) == NULL)
		return -ENOMEM;
	for (int r = 0; r < R; r++)
		for (int s = 0; s < S; s++)
			for (int k = 0; k < t; k++)
				used[cr[r].v[s]->idx[k]] = 1;
	nidle = 0;
	for (int i = 0; i < c->ndev; i++)
		if (!used[i])
			p->idle[nidle++] = c->dev[i].id;
	free(used);
	a = calloc((size_t)R, sizeof(*a));
	g = calloc((size_t)R, sizeof(*g));
	if (a == NULL || g == NULL) {
		free(a);
		free(g);
		return -ENOMEM;
	}
	for (int r = 0; r < R; r++) {
		a[r] = cr[r].c * z->m->block_size;
		for (int s = 0; s < S; s++) {
			struct plan_stage *st = &p->st[r * S + s];

			st->first = cr[r].cut[s];
			st->nlayers = cr[r].cut[s + 1] - cr[r].cut[s];
			for (int k = 0; k < t; k++)
				st->dev[k] = c->dev[cr[r].v[s]->idx[k]].id;
		}
	}
	shares_split(a, R, S, z->j->micro_batch, z->j->global_batch, g);
	for (int r = 0; r < R; r++)
		p->rep[r].share = g[r];
	free(a);
	free(g);
	return 0;
}

/*
 * What a stage's cost depends on besides its layers: speed, memory, the
 * bandwidth inside its island (tensor parallel) and to the next stage's.
 * Replicas equal in these, stage by stage, partition alike.
 */
static double
bw_next(const struct search *z, struct vdev *const *v, int S, int s)
{
	return s + 1 < S ? bw_of(z->c, v[s]->island, v[s + 1]->island) : 0.0;
}

static int
same_kind(const struct search *z, struct vdev *const *a,
    struct vdev *const *b, int S)
{
	for (int s = 0; s < S; s++)
		if (a[s]->gflops != b[s]->gflops || a[s]->mem != b[s]->mem ||
		    bw_of(z->c, a[s]->island, a[s]->island) !=
		    bw_of(z->c, b[s]->island, b[s]->island) ||
		    bw_next(z, a, S, s) != bw_next(z, b, S, s))
			return 0;
	return 1;
}

static uint64_t
kind_hash(const struct search *z, struct vdev *const *v, int S)
{
	uint64_t h = 1469598103934665603ull;

	for (int s = 0; s < S; s++) {
		double d[4] = { v[s]->gflops, v[s]->mem,
		    bw_of(z->c, v[s]->island, v[s]->island),
		    bw_next(z, v, S, s) };

		for (int k = 0; k < 4; k++) {
			uint64_t x;

			memcpy(&x, &d[k], sizeof(x));
			h = (h ^ x) * 1099511628211ull;
		}
	}
	return h;
}

/*
 * Partitions every replica; drops what fits nowhere.  Replicas of the
 * same kind (speeds, memories, islands stage by stage) share one
 * partition: a hash table of the kinds seen, so that thousands of like
 * devices cost a few partitions.
 */
static int
cands_partition(const struct search *z, struct cand_rep *cr, int R, int S,
    int *cutbuf, struct vdev **slots)
{
	struct memo {
		uint64_t h;
		struct vdev **v;	/* NULL: empty slot */
		double	 c;
		int	 cut;		/* index into mcut */
	} *memo;
	int *mcut, nmemo = 0, kept = 0;
	size_t size = 16;

	while (size < 2 * (size_t)R)
		size *= 2;
	memo = calloc(size, sizeof(*memo));
	mcut = malloc(sizeof(int) * (size_t)R * (size_t)(S + 1));
	if (memo == NULL || mcut == NULL) {
		free(memo);
		free(mcut);
		return -ENOMEM;
	}
	for (int r = 0; r < R; r++) {
		struct vdev **v = slots + (size_t)r * S;
		uint64_t h = kind_hash(z, v, S);
		size_t i = h & (size - 1);
		double c;
		int *cut;

		while (memo[i].v != NULL && (memo[i].h != h ||
		    !same_kind(z, memo[i].v, v, S)))
			i = (i + 1) & (size - 1);
		if (memo[i].v == NULL) {
			memo[i].h = h;
			memo[i].v = v;
			memo[i].cut = nmemo++;
			memo[i].c = part_best(z, v, S,
			    mcut + (size_t)memo[i].cut * (S + 1));
		}
		c = memo[i].c;
		cut = mcut + (size_t)memo[i].cut * (S + 1);
		if (!isfinite(c))
			continue;
		cr[kept].v = v;
		cr[kept].cut = cutbuf + (size_t)kept * (S + 1);
		memcpy(cr[kept].cut, cut, sizeof(int) * (size_t)(S + 1));
		cr[kept].c = c;
		kept++;
	}
	free(memo);
	free(mcut);
	return kept;
}

/*
 * One candidate (t, S) over the devices idx[0..n): fills p.
 * @return 0, -ENOSPC when nothing fits, -ENOMEM.
 */
static int
cand_build(const struct search *z, int t, int S, const int *idx0, int n,
    struct plan *p)
{
	struct vdev *v = NULL, **slots = NULL, **rest = NULL;
	struct cand_rep *cr = NULL;
	int *idx = NULL, *idle = NULL, *cut = NULL;
	int nv, R, nrest, nidle = 0, rc = -ENOMEM;

	idx = malloc(sizeof(*idx) * (size_t)n);
	idle = malloc(sizeof(*idle) * (size_t)n);
	v = calloc((size_t)n, sizeof(*v));
	slots = calloc((size_t)n, sizeof(*slots));
	rest = calloc((size_t)n, sizeof(*rest));
	cr = calloc((size_t)n, sizeof(*cr));
	cut = calloc((size_t)n * (S + 1) + 1, sizeof(*cut));
	if (!idx || !idle || !v || !slots || !rest || !cr || !cut)
		goto out;
	memcpy(idx, idx0, sizeof(*idx) * (size_t)n);
	nv = vdevs_make(z->c, idx, n, t, v, idle, &nidle);
	R = replicas_make(v, nv, S, slots, rest, &nrest);
	for (int i = 0; i < nrest; i++)
		for (int k = 0; k < t; k++)
			idle[nidle++] = rest[i]->idx[k];
	R = cands_partition(z, cr, R, S, cut, slots);
	if (R <= 0) {
		rc = R < 0 ? R : -ENOSPC;
		goto out;
	}
	/* the fastest replicas first; more replicas than sequences idle */
	qsort(cr, (size_t)R, sizeof(*cr), cand_cmp);
	if (R > z->j->global_batch) {
		for (int r = z->j->global_batch; r < R; r++)
			for (int s = 0; s < S; s++)
				for (int k = 0; k < t; k++)
					idle[nidle++] = cr[r].v[s]->idx[k];
		R = z->j->global_batch;
	}
	if ((rc = plan_fill(z, p, t, S, cr, R, idle, nidle)) < 0)
		goto out;
	rc = 0;
out:
	free(idx);
	free(idle);
	free(v);
	free(slots);
	free(rest);
	free(cr);
	free(cut);
	return rc;
}

static int
better(const struct plan *a, const struct plan *b)
{
	if (!b->ok || b->rep == NULL)
		return 1;
	if (a->step < b->step * (1.0 - 1e-12))
		return 1;
	return 0;
}

/* ---- exact search for small clusters ------------------------------ */

struct exact {
	const struct search *z;
	int	t, S, R;
	int	n;
	const int *idx;			/* candidate devices */
	char	used[PLAN_EXACT_DEVICES];
	struct vdev v[PLAN_EXACT_DEVICES];
	struct vdev *slot[PLAN_EXACT_DEVICES];
	int	cut[PLAN_EXACT_DEVICES * (PLAN_EXACT_DEVICES + 1)];
	struct cand_rep cr[PLAN_EXACT_DEVICES];
	struct plan *best;
	int	rc;
};

static void
exact_leaf(struct exact *e)
{
	const struct search *z = e->z;
	int S = e->S, R = e->R, t = e->t, nidle = 0, idle[PLAN_EXACT_DEVICES];
	struct plan p;

	for (int r = 0; r < R; r++) {
		e->cr[r].v = &e->slot[r * S];
		e->cr[r].cut = &e->cut[r * (S + 1)];
		e->cr[r].c = part_best(z, e->cr[r].v, S, e->cr[r].cut);
		if (!isfinite(e->cr[r].c))
			return;
	}
	for (int i = 0; i < e->n; i++)
		if (!e->used[i])
			idle[nidle++] = e->idx[i];
	memset(&p, 0, sizeof(p));
	if (plan_fill(z, &p, t, S, e->cr, R, idle, nidle) < 0) {
		e->rc = -ENOMEM;
		plan_fini(&p);
		return;
	}
	if (eval_with(z, &p) == 0 && better(&p, e->best)) {
		plan_fini(e->best);
		*e->best = p;
		return;
	}
	plan_fini(&p);
}

/* Fills virtual device k (replica k / S, stage k % S) in every way. */
static void
exact_slot(struct exact *e, int k, int member)
{
	const struct plan_cluster *c = e->z->c;
	struct vdev *v = &e->v[k];

	if (k == e->R * e->S) {
		exact_leaf(e);
		return;
	}
	if (member == e->t) {
		e->slot[k] = v;
		exact_slot(e, k + 1, 0);
		return;
	}
	for (int i = 0; i < e->n; i++) {
		const struct plan_device *d = &c->dev[e->idx[i]];

		if (e->used[i])
			continue;
		/* a group's members in index order, all in one island */
		if (member > 0 && (e->idx[i] < v->idx[member - 1] ||
		    d->island != v->island))
			continue;
		/* replicas in order of their first device: no repeats */
		if (member == 0 && k % e->S == 0 && k > 0 &&
		    e->idx[i] < e->v[k - e->S].idx[0])
			continue;
		{
			struct vdev keep = *v;

			e->used[i] = 1;
			v->idx[member & (PLAN_MAX_TP - 1)] = e->idx[i];
			v->t = member + 1;
			if (member == 0) {
				v->island = d->island;
				v->gflops = d->gflops;
				v->mem = d->mem_bytes;
			} else {
				if (d->gflops < v->gflops)
					v->gflops = d->gflops;
				if (d->mem_bytes < v->mem)
					v->mem = d->mem_bytes;
			}
			exact_slot(e, k, member + 1);
			*v = keep;
			e->used[i] = 0;
		}
	}
}

/*
 * Every placement of up to PLAN_EXACT_DEVICES devices: which devices,
 * in which groups, replicas and stage order; partitions and shares are
 * optimal for each by construction.
 */
static int
search_exact(const struct search *z, const int *idx, int n,
    struct plan *best)
{
	struct exact e;

	memset(&e, 0, sizeof(e));
	e.z = z;
	e.idx = idx;
	e.n = n;
	e.best = best;
	for (int t = 1; t <= PLAN_MAX_TP && t <= n; t *= 2) {
		if (z->m->n_head % t != 0 || (z->j->max_tp && t > z->j->max_tp))
			continue;
		for (int S = 1; S <= z->m->nlayers && S * t <= n &&
		    (!z->j->max_pp || S <= z->j->max_pp); S++)
			for (int R = 1; R * S * t <= n &&
			    R <= z->j->global_batch; R++) {
				e.t = t;
				e.S = S;
				e.R = R;
				exact_slot(&e, 0, 0);
				if (e.rc < 0)
					return e.rc;
			}
	}
	return best->rep != NULL && best->ok ? 0 : -ENOSPC;
}

static int
search_fresh(const struct search *z, const int *idx, int n,
    struct plan *best, char *why, size_t whylen)
{
	int rc = -ENOSPC;

	for (int t = 1; t <= PLAN_MAX_TP; t *= 2) {
		double tbest = INFINITY;
		int worse = 0;

		if (z->m->n_head % t != 0 || (z->j->max_tp && t > z->j->max_tp))
			continue;
		/*
		 * Deeper pipelines first help (memory, fewer replicas to
		 * all-reduce), then hurt (bubble, sends): stop once
		 * PLAN_PATIENCE depths in a row that fit did no better.
		 */
		for (int S = 1; S <= z->m->nlayers && S * t <= n &&
		    worse < PLAN_PATIENCE && (!z->j->max_pp ||
		    S <= z->j->max_pp); S++) {
			struct plan p;
			int r;

			memset(&p, 0, sizeof(p));
			r = cand_build(z, t, S, idx, n, &p);
			if (r == -ENOMEM) {
				plan_fini(&p);
				return r;
			}
			if (r == 0 && (r = eval_with(z, &p)) == 0) {
				if (p.step < tbest) {
					tbest = p.step;
					worse = 0;
				} else {
					worse++;
				}
				if (better(&p, best)) {
					plan_fini(best);
					*best = p;
					rc = 0;
					continue;
				}
			}
			plan_fini(&p);
		}
	}
	if (rc < 0)
		snprintf(why, whylen, "no placement fits in memory");
	return rc;
}

static int
dbl_desc(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x > y ? -1 : x < y;
}

/*
 * Slow devices and badly linked islands can cost more than they give:
 * also try without them.  Candidate sets: every device; devices at least
 * as fast as each of the PLAN_SUBSETS fastest speed classes; islands at
 * least as well linked as each link class.
 */
static int
search_subsets(const struct search *z, int *idx, struct plan *best,
    char *why, size_t whylen)
{
	const struct plan_cluster *c = z->c;
	int n = c->ndev, ni = c->nisland, rc, r2;
	double *speed = malloc(sizeof(double) * (size_t)(n + ni + 1));
	double *link, *isl_bw;
	int *sub = malloc(sizeof(int) * (size_t)(n + 1));

	if (speed == NULL || sub == NULL) {
		free(speed);
		free(sub);
		return -ENOMEM;
	}
	rc = search_fresh(z, idx, n, best, why, whylen);
	if (rc == -ENOMEM)
		goto out;
	for (int i = 0; i < n; i++)
		speed[i] = c->dev[i].gflops;
	qsort(speed, (size_t)n, sizeof(double), dbl_desc);
	for (int k = 0, classes = 0; k < n && classes < PLAN_SUBSETS; k++) {
		int m = 0;

		if (k > 0 && speed[k] == speed[k - 1])
			continue;
		classes++;
		for (int i = 0; i < n; i++)
			if (c->dev[i].gflops >= speed[k])
				sub[m++] = i;
		if (m == n || m == 0)
			continue;
		if ((r2 = search_fresh(z, sub, m, best, why, whylen)) == 0)
			rc = 0;
		else if (r2 == -ENOMEM)
			goto out;
	}
	/* islands by their worst link to any other island */
	link = speed;
	isl_bw = speed + n;
	for (int a = 0; a < ni; a++) {
		isl_bw[a] = INFINITY;
		for (int b = 0; b < ni; b++)
			if (a != b && bw_of(c, a, b) < isl_bw[a])
				isl_bw[a] = bw_of(c, a, b);
	}
	memcpy(link, isl_bw, sizeof(double) * (size_t)ni);
	qsort(link, (size_t)ni, sizeof(double), dbl_desc);
	for (int k = 0, classes = 0; k < ni && ni > 1 &&
	    classes < PLAN_SUBSETS; k++) {
		int m = 0;

		if (k > 0 && link[k] == link[k - 1])
			continue;
		classes++;
		for (int i = 0; i < n; i++)
			if (isl_bw[c->dev[i].island] >= link[k])
				sub[m++] = i;
		if (m == n || m == 0)
			continue;
		if ((r2 = search_fresh(z, sub, m, best, why, whylen)) == 0)
			rc = 0;
		else if (r2 == -ENOMEM)
			goto out;
	}
out:
	free(speed);
	free(sub);
	return rc;
}

/* Replan keeping every replica of prev whose devices all survive. */
static int
search_sticky(const struct search *z, const struct plan *prev,
    struct plan *out)
{
	const struct idmap *map = z->map;
	const struct plan_cluster *c = z->c;
	int S = prev->pp, t = prev->tp, R = 0, npool = 0, rc;
	char *used = calloc((size_t)c->ndev + 1, 1);
	int *pool = calloc((size_t)c->ndev + 1, sizeof(int));
	struct plan fresh;

	memset(&fresh, 0, sizeof(fresh));
	if (used == NULL || pool == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (int r = 0; r < prev->dp; r++) {
		int intact = 1;

		for (int s = 0; s < S && intact; s++)
			for (int k = 0; k < t; k++)
				if (idmap_find(map, c->ndev,
				    prev->st[r * S + s].dev[k]) < 0)
					intact = 0;
		if (!intact)
			continue;
		for (int s = 0; s < S; s++)
			for (int k = 0; k < t; k++)
				used[idmap_find(map, c->ndev,
				    prev->st[r * S + s].dev[k])] = 1;
		R++;
	}
	for (int i = 0; i < c->ndev; i++)
		if (!used[i])
			pool[npool++] = i;
	/* the pool (survivors of broken replicas, idle, new) at (t, S) */
	if (npool >= S * t && cand_build(z, t, S, pool, npool, &fresh) < 0)
		plan_fini(&fresh);
	rc = plan_alloc(out, t, S, R + fresh.dp, c->ndev);
	if (rc < 0)
		goto out;
	out->global_batch = z->j->global_batch;
	out->micro_batch = z->j->micro_batch;
	R = 0;
	for (int r = 0; r < prev->dp; r++) {
		int intact = 1;

		for (int s = 0; s < S; s++)
			for (int k = 0; k < t; k++)
				if (idmap_find(map, c->ndev,
				    prev->st[r * S + s].dev[k]) < 0)
					intact = 0;
		if (!intact)
			continue;
		memcpy(&out->st[R * S], &prev->st[r * S],
		    sizeof(*out->st) * (size_t)S);
		R++;
	}
	if (fresh.rep != NULL) {
		memcpy(&out->st[R * S], fresh.st,
		    sizeof(*out->st) * (size_t)S * (size_t)fresh.dp);
		R += fresh.dp;
	}
	/* idle: whatever no kept or new replica uses */
	memset(used, 0, (size_t)c->ndev);
	for (int i = 0; i < R * S; i++)
		for (int k = 0; k < t; k++)
			used[idmap_find(map, c->ndev, out->st[i].dev[k])] = 1;
	out->nidle = 0;
	for (int i = 0; i < c->ndev; i++)
		if (!used[i])
			out->idle[out->nidle++] = c->dev[i].id;
	if (R == 0) {
		rc = -ENOSPC;
		goto out;
	}
	if (R > z->j->global_batch) {
		rc = -ENOSPC;	/* let the fresh search decide */
		goto out;
	}
	/* shares from the stage times */
	{
		double *a = calloc((size_t)R, sizeof(*a));
		int *g = calloc((size_t)R, sizeof(*g));

		if (a == NULL || g == NULL) {
			free(a);
			free(g);
			rc = -ENOMEM;
			goto out;
		}
		for (int r = 0; r < R; r++)
			out->rep[r].share = 1;
		eval_with(z, out);
		for (int r = 0; r < R; r++) {
			double cmax = 0.0;

			for (int s = 0; s < S; s++)
				if (out->st[r * S + s].sec_per_token > cmax)
					cmax = out->st[r * S + s].sec_per_token;
			a[r] = cmax * z->m->block_size;
		}
		shares_split(a, R, S, z->j->micro_batch, z->j->global_batch, g);
		for (int r = 0; r < R; r++)
			out->rep[r].share = g[r];
		free(a);
		free(g);
	}
	rc = eval_with(z, out);
out:
	plan_fini(&fresh);
	free(used);
	free(pool);
	return rc;
}

double
plan_moved_bytes(const struct plan_model *m, const struct plan *prev,
    const struct plan *p)
{
	double moved = 0.0;

	for (int i = 0; i < p->dp * p->pp; i++) {
		const struct plan_stage *st = &p->st[i];

		for (int k = 0; k < p->tp; k++) {
			const struct plan_stage *old = NULL;

			for (int o = 0; prev && o < prev->dp * prev->pp &&
			    old == NULL; o++)
				for (int q = 0; q < prev->tp; q++)
					if (prev->st[o].dev[q] == st->dev[k] &&
					    prev->tp == p->tp && q == k)
						old = &prev->st[o];
			for (int l = st->first; l < st->first + st->nlayers;
			    l++)
				if (old == NULL || l < old->first ||
				    l >= old->first + old->nlayers)
					/* weights, Adam m and v */
					moved += 3.0 * m->layer[l].param_bytes /
					    p->tp;
		}
	}
	return moved;
}

/* Says why nothing fits, with the numbers an operator can act on. */
static void
refuse_why(const struct search *z, struct plan *p)
{
	const struct plan_model *m = z->m;
	const struct plan_cluster *c = z->c;
	double state = 16.0 * z->pparam[m->nlayers] / 4.0;
	double act = z->pact[m->nlayers] * m->block_size;
	double have = 0.0, big = 0.0;

	for (int i = 0; i < c->ndev; i++) {
		if (c->dev[i].mem_bytes > PLAN_RESERVE_BYTES)
			have += c->dev[i].mem_bytes - PLAN_RESERVE_BYTES;
		if (c->dev[i].mem_bytes > big)
			big = c->dev[i].mem_bytes;
	}
	p->ok = 0;
	snprintf(p->why, sizeof(p->why), "does not fit in memory: weights "
	    "and Adam state need %.0f MiB and activations %.0f MiB per "
	    "sequence in flight; the %d devices offer %.0f MiB (largest "
	    "%.0f MiB, %.0f MiB reserved on each)", state / 1048576.0,
	    act / 1048576.0, c->ndev, have / 1048576.0, big / 1048576.0,
	    PLAN_RESERVE_BYTES / 1048576.0);
}

int
plan_compute(const struct plan_model *m, const struct plan_job *j,
    const struct plan_cluster *c, const struct plan *prev, struct plan *out)
{
	struct search z;
	struct plan best, sticky;
	int *idx = NULL, rc;

	memset(out, 0, sizeof(*out));
	memset(&best, 0, sizeof(best));
	memset(&sticky, 0, sizeof(sticky));
	if (m->nlayers < 1 || m->nlayers > PLAN_MAX_LAYERS ||
	    m->block_size < 1 || m->n_head < 1 || j->global_batch < 1 ||
	    j->micro_batch < 1 || c->ndev < 1 || c->ndev > PLAN_MAX_DEVICES ||
	    c->nisland < 1) {
		snprintf(out->why, sizeof(out->why), "%s",
		    c->ndev < 1 ? "no devices" : "invalid model or job");
		return -EINVAL;
	}
	for (int i = 0; i < c->ndev; i++)
		if (!(c->dev[i].gflops > 0) || c->dev[i].island < 0 ||
		    c->dev[i].island >= c->nisland) {
			snprintf(out->why, sizeof(out->why),
			    "device %u: invalid speed or island", c->dev[i].id);
			return -EINVAL;
		}
	if ((rc = search_init(&z, m, j, c)) < 0)
		return rc;
	idx = malloc(sizeof(*idx) * (size_t)c->ndev);
	if (idx == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < c->ndev; i++)
		idx[i] = i;
	if (c->ndev <= PLAN_EXACT_DEVICES)
		rc = search_exact(&z, idx, c->ndev, &best);
	else
		rc = search_subsets(&z, idx, &best, out->why,
		    sizeof(out->why));
	if (rc == -ENOMEM)
		goto out;
	/*
	 * Kept within PLAN_STICKY of a fresh plan; and always, while it fits,
	 * when prev is one copy of a model cut into shards (one replica of
	 * stages or tensor ranks): each shard's state is on its node alone,
	 * and a plan that moved it would leave the shard with nothing to
	 * start from (shards do not move between nodes yet).
	 */
	if (prev != NULL && prev->ok && prev->rep != NULL &&
	    search_sticky(&z, prev, &sticky) == 0 && sticky.ok &&
	    (rc < 0 || sticky.step <= best.step * PLAN_STICKY ||
	    (prev->dp == 1 && (prev->pp > 1 || prev->tp > 1)))) {
		plan_fini(&best);
		best = sticky;
		memset(&sticky, 0, sizeof(sticky));
		rc = 0;
	}
	if (rc < 0) {
		refuse_why(&z, out);
		rc = -ENOSPC;
		goto out;
	}
	*out = best;
	memset(&best, 0, sizeof(best));
	out->moved_bytes = prev ? plan_moved_bytes(m, prev, out) : 0.0;
out:
	plan_fini(&best);
	plan_fini(&sticky);
	free(idx);
	search_fini(&z);
	return rc;
}

/* ---- output --------------------------------------------------------- */

void
plan_write(const struct plan *p, const struct plan_cluster *c, FILE *fp)
{
	(void)c;
	if (!p->ok) {
		fprintf(fp, "plan: refused: %s\n", p->why);
		return;
	}
	fprintf(fp, "plan: tp %d pp %d dp %d, global batch %d, micro-batch "
	    "%d\n", p->tp, p->pp, p->dp, p->global_batch, p->micro_batch);
	fprintf(fp, "predicted step %.6f s = compute %.6f + comm %.6f "
	    "(all-reduce %.6f) + bubble %.6f; %.0f tokens/s\n", p->step,
	    p->compute, p->comm, p->allreduce, p->bubble, p->tokens_per_s);
	if (p->moved_bytes > 0)
		fprintf(fp, "moves %.1f MiB of weights and optimizer state\n",
		    p->moved_bytes / 1048576.0);
	for (int r = 0; r < p->dp; r++) {
		fprintf(fp, "replica %d: share %d sequences, %d micro-batches, "
		    "%.6f s\n", r, p->rep[r].share, p->rep[r].nmicro,
		    p->rep[r].time);
		for (int s = 0; s < p->pp; s++) {
			const struct plan_stage *st = &p->st[r * p->pp + s];

			fprintf(fp, "  stage %d: layers %d-%d on", s, st->first,
			    st->first + st->nlayers - 1);
			for (int k = 0; k < p->tp; k++)
				fprintf(fp, "%s%u", k ? "," : " ", st->dev[k]);
			fprintf(fp, ", %.1f MiB per device, %.3f us/token\n",
			    st->mem_bytes / 1048576.0,
			    st->sec_per_token * 1e6);
		}
	}
	if (p->nidle > 0) {
		fprintf(fp, "idle:");
		for (int i = 0; i < p->nidle; i++)
			fprintf(fp, " %u", p->idle[i]);
		fprintf(fp, "\n");
	}
}

void
plan_write_json(const struct plan *p, FILE *fp)
{
	if (!p->ok) {
		fprintf(fp, "{\"ok\":false,\"why\":\"");
		for (const char *s = p->why; *s; s++)
			if (*s == '"' || *s == '\\')
				fprintf(fp, "\\%c", *s);
			else if ((unsigned char)*s >= 0x20)
				fputc(*s, fp);
		fprintf(fp, "\"}\n");
		return;
	}
	fprintf(fp, "{\"ok\":true,\"tp\":%d,\"pp\":%d,\"dp\":%d,"
	    "\"global_batch\":%d,\"micro_batch\":%d,\"step_s\":%.9g,"
	    "\"compute_s\":%.9g,\"comm_s\":%.9g,\"allreduce_s\":%.9g,"
	    "\"bubble_s\":%.9g,\"tokens_per_s\":%.9g,\"moved_bytes\":%.9g,"
	    "\"replicas\":[", p->tp, p->pp, p->dp, p->global_batch,
	    p->micro_batch, p->step, p->compute, p->comm, p->allreduce,
	    p->bubble, p->tokens_per_s, p->moved_bytes);
	for (int r = 0; r < p->dp; r++) {
		fprintf(fp, "%s{\"share\":%d,\"micro\":%d,\"time_s\":%.9g,"
		    "\"stages\":[", r ? "," : "", p->rep[r].share,
		    p->rep[r].nmicro, p->rep[r].time);
		for (int s = 0; s < p->pp; s++) {
			const struct plan_stage *st = &p->st[r * p->pp + s];

			fprintf(fp, "%s{\"first\":%d,\"layers\":%d,"
			    "\"mem_bytes\":%.0f,\"devices\":[", s ? "," : "",
			    st->first, st->nlayers, st->mem_bytes);
			for (int k = 0; k < p->tp; k++)
				fprintf(fp, "%s%u", k ? "," : "", st->dev[k]);
			fprintf(fp, "]}");
		}
		fprintf(fp, "]}");
	}
	fprintf(fp, "],\"idle\":[");
	for (int i = 0; i < p->nidle; i++)
		fprintf(fp, "%s%u", i ? "," : "", p->idle[i]);
	fprintf(fp, "]}\n");
}
