/*
 * cluster.c: planner inputs from files.  A cluster description (what
 * `arceusctl plan --cluster` reads; configs/clusters/mixed-64.conf is the
 * commented example) and the [model]/[train] keys of a job file that the
 * planner needs; other keys of the job file belong to compute and are
 * ignored here.
 *
 *   [cluster]
 *   link_gbps = 10            # between islands unless a link says more
 *   link_rtt_us = 100
 *   [island:NAME]
 *   gbps = 200                # inside the island
 *   rtt_us = 5
 *   device = COUNT x GFLOPS MEMORY     # repeatable
 *   link = OTHER GBPS RTT_US           # repeatable
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"

struct cl_link {
	int	a;
	char	other[64];
	double	gbps, rtt_us;
	int	line;
};

struct cl_parse {
	struct cluster_desc *cd;
	double	link_gbps, link_rtt_us;
	double	*in_gbps, *in_rtt;	/* per island */
	struct cl_link *links;
	int	nlinks, caplinks, capdev, capisl;
	char	file[256];
};

static int
grow(void **p, int *cap, int need, size_t sz)
{
	void *n;
	int c = *cap ? *cap : 8;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	if ((n = realloc(*p, (size_t)c * sz)) == NULL)
		return -ENOMEM;
	*p = n;
	*cap = c;
	return 0;
}

static int
island_get(struct cl_parse *cp, const char *name)
{
	struct cluster_desc *cd = cp->cd;
	int n = cd->c.nisland, cap = cp->capisl;

	for (int i = 0; i < n; i++)
		if (strcmp(cd->island_name[i], name) == 0)
			return i;
	if (n == PLAN_MAX_ISLANDS)
		return -1;
	if (grow((void **)&cd->island_name, &cap, n + 1,
	    sizeof(*cd->island_name)) < 0)
		return -1;
	cap = cp->capisl;
	if (grow((void **)&cp->in_gbps, &cap, n + 1, sizeof(double)) < 0)
		return -1;
	cap = cp->capisl;
	if (grow((void **)&cp->in_rtt, &cap, n + 1, sizeof(double)) < 0)
		return -1;
	cp->capisl = cap;
	snprintf(cd->island_name[n], sizeof(cd->island_name[n]), "%s", name);
	cp->in_gbps[n] = 100.0;
	cp->in_rtt[n] = 5.0;
	cd->c.nisland++;
	return n;
}

static int
num(const char *s, double lo, double hi, double *out)
{
	const char *why;

	if (conf_parse_double(s, out, &why) < 0 || *out < lo || *out > hi)
		return -1;
	return 0;
}

static int
cl_cb(void *ctx, const char *section, const char *key, const char *value,
    const char *file, int line, struct conf_errs *errs)
{
	struct cl_parse *cp = ctx;
	struct cluster_desc *cd = cp->cd;
	int isl;

	if (strcmp(section, "cluster") == 0) {
		if (strcmp(key, "name") == 0) {
			snprintf(cd->name, sizeof(cd->name), "%s", value);
			return 0;
		}
		if (strcmp(key, "link_gbps") == 0) {
			if (num(value, 1e-6, 1e6, &cp->link_gbps) < 0)
				goto bad;
			return 0;
		}
		if (strcmp(key, "link_rtt_us") == 0) {
			if (num(value, 0, 1e7, &cp->link_rtt_us) < 0)
				goto bad;
			return 0;
		}
		conf_err(errs, file, line, "unknown key '%s' in [cluster]",
		    key);
		return -1;
	}
	if (strncmp(section, "island:", 7) != 0 || section[7] == '\0') {
		conf_err(errs, file, line, "unknown section [%s] (expected "
		    "[cluster] or [island:NAME])", section);
		return -1;
	}
	if ((isl = island_get(cp, section + 7)) < 0) {
		conf_err(errs, file, line, "too many islands");
		return -1;
	}
	if (strcmp(key, "gbps") == 0) {
		if (num(value, 1e-6, 1e6, &cp->in_gbps[isl]) < 0)
			goto bad;
		return 0;
	}
	if (strcmp(key, "rtt_us") == 0) {
		if (num(value, 0, 1e7, &cp->in_rtt[isl]) < 0)
			goto bad;
		return 0;
	}
	if (strcmp(key, "device") == 0) {
		char cnt[32], x[8], gf[32], mem[32], extra[2];
		double n, g;
		uint64_t bytes;
		const char *why;

		if (sscanf(value, "%31s %7s %31s %31s %1s", cnt, x, gf, mem,
		    extra) != 4 || strcmp(x, "x") != 0 ||
		    num(cnt, 1, PLAN_MAX_DEVICES, &n) < 0 || n != (int)n ||
		    num(gf, 1e-6, 1e9, &g) < 0 ||
		    conf_parse_size(mem, &bytes, &why) < 0 || bytes == 0) {
			conf_err(errs, file, line, "device: expected 'COUNT x "
			    "GFLOPS MEMORY', e.g. '4 x 150 16G', got '%s'",
			    value);
			return -1;
		}
		if (cd->c.ndev + (int)n > PLAN_MAX_DEVICES) {
			conf_err(errs, file, line, "more than %d devices",
			    PLAN_MAX_DEVICES);
			return -1;
		}
		if (grow((void **)&cd->c.dev, &cp->capdev,
		    cd->c.ndev + (int)n, sizeof(*cd->c.dev)) < 0) {
			conf_err(errs, file, line, "out of memory");
			return -1;
		}
		for (int i = 0; i < (int)n; i++) {
			struct plan_device *d = &cd->c.dev[cd->c.ndev];

			d->id = (uint32_t)cd->c.ndev + 1;
			d->island = isl;
			d->gflops = g;
			d->mem_bytes = (double)bytes;
			cd->c.ndev++;
		}
		return 0;
	}
	if (strcmp(key, "link") == 0) {
		struct cl_link *l;
		char other[64], gb[32], rt[32], extra[2];

		if (sscanf(value, "%63s %31s %31s %1s", other, gb, rt,
		    extra) != 3) {
			conf_err(errs, file, line, "link: expected 'ISLAND GBPS "
			    "RTT_US', got '%s'", value);
			return -1;
		}
		if (grow((void **)&cp->links, &cp->caplinks, cp->nlinks + 1,
		    sizeof(*cp->links)) < 0)
			return -1;
		l = &cp->links[cp->nlinks];
		if (num(gb, 1e-6, 1e6, &l->gbps) < 0 ||
		    num(rt, 0, 1e7, &l->rtt_us) < 0) {
			conf_err(errs, file, line, "link: bad bandwidth or "
			    "RTT in '%s'", value);
			return -1;
		}
		l->a = isl;
		l->line = line;
		snprintf(l->other, sizeof(l->other), "%s", other);
		cp->nlinks++;
		return 0;
	}
	conf_err(errs, file, line, "unknown key '%s' in [%s]", key, section);
	return -1;
bad:
	conf_err(errs, file, line, "%s: bad value '%s'", key, value);
	return -1;
}

int
cluster_load(struct cluster_desc *cd, const char *path,
    struct conf_errs *errs)
{
	struct cl_parse cp;
	int before = errs->n, n;

	memset(cd, 0, sizeof(*cd));
	memset(&cp, 0, sizeof(cp));
	cp.cd = cd;
	cp.link_gbps = 10.0;
	cp.link_rtt_us = 100.0;
	conf_parse_cb(path, cl_cb, &cp, errs);
	if (errs->n == before && cd->c.ndev == 0)
		conf_err(errs, path, 0, "no devices (add [island:NAME] "
		    "sections with device = lines)");
	n = cd->c.nisland;
	if (errs->n == before) {
		cd->c.bw = calloc((size_t)n * (size_t)n, sizeof(double));
		cd->c.rtt = calloc((size_t)n * (size_t)n, sizeof(double));
		if (cd->c.bw == NULL || cd->c.rtt == NULL) {
			conf_err(errs, path, 0, "out of memory");
			goto out;
		}
		for (int a = 0; a < n; a++)
			for (int b = 0; b < n; b++) {
				int i = a * n + b;

				cd->c.bw[i] = (a == b ? cp.in_gbps[a] :
				    cp.link_gbps) * 1e9 / 8.0;
				cd->c.rtt[i] = (a == b ? cp.in_rtt[a] :
				    cp.link_rtt_us) * 1e-6;
			}
		for (int i = 0; i < cp.nlinks; i++) {
			struct cl_link *l = &cp.links[i];
			int b = -1;

			for (int k = 0; k < n; k++)
				if (strcmp(cd->island_name[k], l->other) == 0)
					b = k;
			if (b < 0) {
				conf_err(errs, path, l->line,
				    "link to unknown island '%s'", l->other);
				continue;
			}
			cd->c.bw[l->a * n + b] = cd->c.bw[b * n + l->a] =
			    l->gbps * 1e9 / 8.0;
			cd->c.rtt[l->a * n + b] = cd->c.rtt[b * n + l->a] =
			    l->rtt_us * 1e-6;
		}
	}
out:
	free(cp.in_gbps);
	free(cp.in_rtt);
	free(cp.links);
	if (errs->n > before) {
		cluster_free(cd);
		return -1;
	}
	return 0;
}

void
cluster_free(struct cluster_desc *cd)
{
	if (cd == NULL)
		return;
	free(cd->c.dev);
	free(cd->c.bw);
	free(cd->c.rtt);
	free(cd->island_name);
	memset(cd, 0, sizeof(*cd));
}

/* ---- the planner's view of a job file ---------------------------- */

struct jp {
	int64_t	n_layer, n_head, n_embd, block_size, batch, accumulate;
	int	pipeline;	/* [dist] stages = plan */
	int	tensor;		/* [dist] tensor = plan */
};

static int
job_cb(void *ctx, const char *section, const char *key, const char *value,
    const char *file, int line, struct conf_errs *errs)
{
	static const struct {
		const char *sec, *key;
		size_t off;
		int64_t max;
	} keys[] = {
		{ "model", "n_layer", offsetof(struct jp, n_layer), 4000 },
		{ "model", "n_head", offsetof(struct jp, n_head), 4096 },
		{ "model", "n_embd", offsetof(struct jp, n_embd), 1 << 20 },
		{ "model", "block_size", offsetof(struct jp, block_size),
		    1 << 20 },
		{ "train", "batch_size", offsetof(struct jp, batch), 1 << 20 },
		{ "train", "accumulate", offsetof(struct jp, accumulate),
		    1 << 20 },
	};
	struct jp *jp = ctx;

	(void)errs;
	if (strcmp(section, "dist") == 0 && strcmp(key, "stages") == 0) {
		jp->pipeline = strcmp(value, "plan") == 0;
		(void)file;
		(void)line;
		return 0;
	}
	if (strcmp(section, "dist") == 0 && strcmp(key, "tensor") == 0) {
		jp->tensor = strcmp(value, "plan") == 0;
		return 0;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		int64_t v;
		const char *why;

		if (strcmp(section, keys[i].sec) != 0 ||
		    strcmp(key, keys[i].key) != 0)
			continue;
		if (conf_parse_int(value, &v, &why) < 0 || v < 1 ||
		    v > keys[i].max) {
			conf_err(errs, file, line, "%s: must be 1..%lld",
			    key, (long long)keys[i].max);
			return -1;
		}
		*(int64_t *)((char *)jp + keys[i].off) = v;
	}
	return 0;		/* other keys are compute's */
}

int
job_params_load(const char *path, struct job_params *out,
    struct conf_errs *errs)
{
	/* the defaults of compute/job.c */
	struct jp jp = { 4, 4, 128, 64, 12, 1, 0, 0 };
	int before = errs->n;

	if (conf_parse_cb(path, job_cb, &jp, errs) < 0)
		return -1;
	if (jp.n_embd % jp.n_head != 0) {
		conf_err(errs, path, 0, "n_embd (%lld) is not a multiple of "
		    "n_head (%lld)", (long long)jp.n_embd,
		    (long long)jp.n_head);
		return -1;
	}
	if (jp.n_layer + 2 > PLAN_MAX_LAYERS) {
		conf_err(errs, path, 0, "n_layer %lld: the planner takes at "
		    "most %d", (long long)jp.n_layer, PLAN_MAX_LAYERS - 2);
		return -1;
	}
	if (jp.batch * jp.accumulate > INT32_MAX) {
		conf_err(errs, path, 0, "batch_size x accumulate too large");
		return -1;
	}
	out->n_layer = (uint32_t)jp.n_layer;
	out->n_head = (uint32_t)jp.n_head;
	out->n_embd = (uint32_t)jp.n_embd;
	out->block_size = (uint32_t)jp.block_size;
	out->micro_batch = (uint32_t)jp.batch;
	out->global_batch = (uint32_t)(jp.batch * jp.accumulate);
	out->flags = (jp.pipeline ? JOB_F_PIPELINE : 0) |
	    (jp.tensor ? JOB_F_TENSOR : 0);
	return errs->n > before ? -1 : 0;
}

void
job_params_plan(const struct job_params *jp, struct plan_model *m,
    struct plan_job *j)
{
	plan_model_gpt(m, (int)jp->n_layer, (int)jp->n_head, (int)jp->n_embd,
	    (int)jp->block_size, 256);
	j->micro_batch = (int)jp->micro_batch;
	j->global_batch = (int)jp->global_batch;
	j->max_tp = j->max_pp = 0;
}

int
job_plan_load(const char *path, struct plan_model *m, struct plan_job *j,
    struct conf_errs *errs)
{
	struct job_params jp;

	if (job_params_load(path, &jp, errs) < 0)
		return -1;
	job_params_plan(&jp, m, j);
	return 0;
}
