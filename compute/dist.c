/*
 * dist.c: data-parallel training through the node's arceus-dataplane.
 *
 * Every replica holds the whole model, with the same parameters.  A step
 * draws the same global batch of G rows on every replica (one data seed)
 * and each trains on its own share of it: rank r takes the b_r rows after
 * those of ranks 0..r-1, where the shares b (dist.shares times
 * train.accumulate, or the planner's: a slow machine gets fewer) sum to
 * G, in micro-batches.  Each scales the loss of a micro-batch of n rows
 * by n / G, so that one all-reduce (a sum) of the gradients, and of the
 * loss with them, gives the gradient and loss of the mean over the global
 * batch: weighted by samples, not by replicas or micro-batches.  Clipping
 * and AdamW then see identical values on every replica (the ring
 * all-reduce hands every rank the same bits), so the replicas stay
 * identical without ever sending parameters, and the step is the
 * single-node step with batch G up to the order of the sums.
 *
 * A replica asked to stop (SIGTERM) says so in the same all-reduce (one
 * more value): every replica then stops after that step, together.
 *
 * The gradients travel from a buffer in the dataplane's arena: the model
 * keeps its own, the step copies them in and the sums back (a few
 * milliseconds for the sizes trained here, next to the step itself), in
 * buckets, one per layer as backward finishes it (below).
 *
 * Failures: a peer that dies or stalls fails the all-reduce within the
 * dataplane's op_timeout_ms, naming the peer; the trainer then stops with
 * that message, its last checkpoint intact (the failed step is not
 * applied), so that the job can be restarted on the members that remain.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arceus_dp.h"
#include "compute.h"
#include "ctlmsg.h"
#include "log.h"
#include "msg.h"

#define DIST_GROUP_WAIT_S	60.0
#define DIST_PLAN_WAIT_S	300.0

int
dist_parse_list(const char *s, unsigned long lo, unsigned long hi, uint32_t *out,
    int max)
{
	int n = 0;

	for (const char *p = s; *p != '\0';) {
		char *end;
		unsigned long v;

		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		errno = 0;
		v = strtoul(p, &end, 10);
		if (end == p || errno != 0 || v < lo || v > hi ||
		    (*end != '\0' && *end != ',' && *end != ' '))
			return -1;
		if (n < max)
			out[n] = (uint32_t)v;
		n++;
		p = end;
	}
	return n;
}

int
dist_parse_members(const char *s, uint32_t *out, int max, char *err,
    size_t errlen)
{
	int n;

	if ((n = dist_parse_list(s, 1, 0xffffffffUL, out, max)) < 0) {
		snprintf(err, errlen, "'%s': node ids are numbers above 0, "
		    "separated by commas", s);
		return -EINVAL;
	}
	if (n == 0) {
		snprintf(err, errlen, "no members: list the node ids of the "
		    "replicas, e.g. 1,2");
		return -EINVAL;
	}
	if (n > max) {
		snprintf(err, errlen, "'%s': more than %d members", s, max);
		return -EINVAL;
	}
	for (int i = 0; i < n; i++)
		for (int k = 0; k < i; k++)
			if (out[k] == out[i]) {
				snprintf(err, errlen, "'%s': node %u is listed "
				    "twice", s, out[i]);
				return -EINVAL;
			}
	return n;
}

int
dist_parse_shares(const char *s, int nmembers, int batch, int *out,
    char *err, size_t errlen)
{
	uint32_t v[DIST_MAX_MEMBERS];
	int n;

	if (s[0] == '\0') {
		for (int i = 0; i < nmembers; i++)
			out[i] = batch;
		return nmembers;
	}
	if ((n = dist_parse_list(s, 1, 65536, v, DIST_MAX_MEMBERS)) < 0) {
		snprintf(err, errlen, "'%s': batch shares are numbers from 1 "
		    "to 65536, separated by commas", s);
		return -EINVAL;
	}
	if (n != nmembers) {
		snprintf(err, errlen, "'%s': %d shares for %d members", s, n,
		    nmembers);
		return -EINVAL;
	}
	for (int i = 0; i < n; i++)
		out[i] = (int)v[i];
	return n;
}

int
dist_parse_comp(const char *s, struct dist *d, char *err, size_t errlen)
{
	char *end;

	d->ratio = 0;
	if (strcmp(s, "none") == 0)
		d->comp = ARC_DP_COMP_NONE;
	else if (strcmp(s, "bf16") == 0)
		d->comp = ARC_DP_COMP_BF16;
	else if (strcmp(s, "int8") == 0)
		d->comp = ARC_DP_COMP_INT8;
	else if (strncmp(s, "topk:", 5) == 0) {
		d->comp = ARC_DP_COMP_TOPK;
		d->ratio = strtof(s + 5, &end);
		if (end == s + 5 || *end != '\0' || !(d->ratio > 0) ||
		    d->ratio > 1) {
			snprintf(err, errlen, "'%s': topk "
			    "takes a fraction in (0, 1], e.g. topk:0.01", s);
			return -EINVAL;
		}
	} else {
		snprintf(err, errlen, "'%s': none, bf16, int8 or "
		    "topk:FRACTION", s);
		return -EINVAL;
	}
	return 0;
}

/*
 * dist.members = plan: this node's part of the plan control committed
 * (ctl_share), waited for (bounded; said once per reason): a job that
 * runs, planned data parallel with this node among the replicas.
 */
int
dist_share_wait(const struct job *j, struct ctl_share *sh, int kind,
    char *err, size_t errlen)
{
	char path[1024], why[256];
	double t0 = now_s();
	int last = -1, r;

	report_path(j, path, sizeof(path));
	if (path[0] == '\0') {
		snprintf(err, errlen, "dist.members = plan asks control for the "
		    "plan, and dist.control is off");
		return -EINVAL;
	}
	for (;;) {
		int st;

		r = ctl_share_get(path, sh, why, sizeof(why));
		st = r < 0 ? -r : sh->status;
		if (r == 0 && st == 0 && sh->pp > 1 && kind != 1) {
			snprintf(err, errlen, "the plan of epoch %llu splits the "
			    "model into %u pipeline stages: this job's workers "
			    "take them with dist.stages = plan",
			    (unsigned long long)sh->epoch, sh->pp);
			return -ENOTSUP;
		}
		if (r == 0 && st == 0 && sh->tp > 1 && kind != 2) {
			snprintf(err, errlen, "the plan of epoch %llu splits "
			    "every block over %u tensor ranks: this job's "
			    "workers take them with dist.tensor = plan",
			    (unsigned long long)sh->epoch, sh->tp);
			return -ENOTSUP;
		}
		if (r == 0 && st == 0)
			return 0;
		if (r == 0 && (st == ENOTSUP || st == E2BIG || st == EINVAL)) {
			snprintf(err, errlen, "the plan of epoch %llu (tp %u, pp "
			    "%u, dp %u): %s", (unsigned long long)sh->epoch,
			    sh->tp, sh->pp, sh->dp, st == ENOTSUP ? "tensor-"
			    "parallel shards inside pipeline stages, or stages "
			    "split differently in each replica, are not trained "
			    "yet" :
			    strerror(st));
			return -st;
		}
		if (r == -EPROTO) {
			snprintf(err, errlen, "%s", why);
			return r;
		}
		if (now_s() - t0 > DIST_PLAN_WAIT_S) {
			snprintf(err, errlen, "no plan with this node in %.0f s "
			    "(%s)", DIST_PLAN_WAIT_S, r < 0 ? why :
			    strerror(st));
			return -ETIMEDOUT;
		}
		if (st != last)
			log_info("%s: waiting for a plan: %s", kind == 1 ?
			    "pipeline" : kind == 2 ? "tensor parallel" :
			    "data parallel", r < 0 ? why :
			    st == ENOENT ? "no job planned yet (arceusctl "
			    "job start)" : st == ESRCH ? "this node is not in the "
			    "plan" : st == ENOSPC ? "the job fits no plan of the "
			    "members there are (arceusctl plan says why)" :
			    strerror(st));
		last = st;
		usleep(200000);
	}
}

/* Until our dataplane runs the plan's epoch (control hands it over). */
int
dist_epoch_wait(const char *sock, uint64_t epoch, char *err, size_t errlen)
{
	struct imsg_dp_status st;
	double t0 = now_s();
	char why[128];
	int fd, r;

	for (;;) {
		if ((fd = arc_dp_connect(sock, IMSG_ROLE_TOOL, why,
		    sizeof(why))) >= 0) {
			r = arc_dp_status(fd, &st);
			close(fd);
			if (r == 0 && st.epoch == (uint32_t)epoch)
				return 0;
			/* a newer epoch: the plan we hold is over already */
			if (r == 0 && (int32_t)(st.epoch - (uint32_t)epoch) > 0) {
				snprintf(err, errlen, "the plan of epoch %llu is "
				    "over: the dataplane at %s runs epoch %u (a "
				    "restart takes the new one)",
				    (unsigned long long)epoch, sock, st.epoch);
				return -ESTALE;
			}
		}
		if (now_s() - t0 > DIST_GROUP_WAIT_S) {
			snprintf(err, errlen, "the dataplane at %s did not reach "
			    "epoch %llu in %.0f s", sock,
			    (unsigned long long)epoch, DIST_GROUP_WAIT_S);
			return -ETIMEDOUT;
		}
		usleep(100000);
	}
}

int
dist_init(struct dist *d, const struct job *j, size_t nparams, char *err,
    size_t errlen)
{
	uint32_t members[DIST_MAX_MEMBERS];
	int shares[DIST_MAX_MEMBERS];
	struct ctl_share sh;
	size_t bytes;
	double t0;
	int n, r;

	memset(d, 0, sizeof(*d));
	if ((r = dist_parse_comp(j->dist_compress, d, err, errlen)) < 0)
		return r;
	if (strcmp(j->dist_members, "plan") == 0) {
		if ((r = dist_share_wait(j, &sh, 0, err, errlen)) < 0)
			return r;
		n = (int)(sh.dp + sh.nstandby);	/* standbys: 0 rows */
		for (int i = 0; i < n; i++) {
			members[i] = sh.members[i];
			shares[i] = sh.shares[i];
		}
		d->group = (uint16_t)sh.group;
		d->epoch = sh.epoch;
	} else {
		if ((n = dist_parse_members(j->dist_members, members,
		    DIST_MAX_MEMBERS, err, errlen)) < 0)
			return n;
		if ((r = dist_parse_shares(j->dist_shares, n,
		    (int)j->batch_size, shares, err, errlen)) < 0)
			return r;
		d->group = (uint16_t)j->dist_group;
	}
	d->world = n;
	d->count = nparams + 2;		/* the gradients, the loss, stop */
	bytes = d->count * sizeof(float);
	if (d->comp != ARC_DP_COMP_NONE)
		bytes *= 2;		/* and the error-feedback residual */
	if ((d->dp = arc_dp_attach(j->dist_dataplane, bytes + (1u << 20), err,
	    errlen)) == NULL)
		return -ENOTCONN;
	d->node = arc_dp_node_id(d->dp);
	d->rank = -1;
	for (int i = 0; i < n; i++)
		if (members[i] == d->node)
			d->rank = i;
	if (d->rank < 0) {
		snprintf(err, errlen, "dist.members = '%s' does not list this "
		    "node (%u, the id of the dataplane at %s)", j->dist_members,
		    d->node, j->dist_dataplane);
		goto fail;
	}
	if (d->epoch != 0) {
		/* the plan's shares are rows per step, in its micro-batches */
		for (int i = 0; i < n; i++) {
			if (i < d->rank)
				d->first += shares[i];
			d->rows_all += shares[i];
		}
		d->rows = shares[d->rank];
		d->nmicro = sh.nmicro[d->rank] > 0 ? sh.nmicro[d->rank] : 1;
		if (d->nmicro > d->rows)
			d->nmicro = d->rows;
		if ((r = dist_epoch_wait(j->dist_dataplane, d->epoch, err,
		    errlen)) < 0)
			goto fail;
		arc_dp_set_epoch(d->dp, (uint32_t)d->epoch);
	} else {
		/* shares are rows per micro-batch: accumulate of them a step */
		for (int i = 0; i < n; i++) {
			if (i < d->rank)
				d->first += shares[i] * (int)j->accumulate;
			d->rows_all += shares[i] * (int)j->accumulate;
		}
		d->rows = shares[d->rank] * (int)j->accumulate;
		d->nmicro = (int)j->accumulate;
	}
	if ((d->buf = arc_dp_alloc(d->dp, d->count * sizeof(float))) ==
	    NULL || (d->comp != ARC_DP_COMP_NONE && (d->resid =
	    arc_dp_alloc(d->dp, d->count * sizeof(float))) == NULL)) {
		snprintf(err, errlen, "%zu bytes of gradients do not fit the "
		    "dataplane's arena (raise [dataplane] arena_size)", bytes);
		goto fail;
	}
	if (d->resid != NULL)
		memset(d->resid, 0, d->count * sizeof(float));
	/*
	 * A member the dataplane does not know yet (its control has not
	 * handed over the epoch that holds it; a node still starting): wait,
	 * bounded, and say so once.
	 */
	t0 = now_s();
	for (int said = 0;; said = 1) {
		if ((r = arc_dp_group(d->dp, d->group, members, n)) == 0)
			break;
		if (r != -EHOSTUNREACH || now_s() - t0 > DIST_GROUP_WAIT_S) {
			snprintf(err, errlen, "group %u of members %s: %s%s",
			    d->group, j->dist_members, strerror(-r),
			    r == -EHOSTUNREACH ? " (a member is not among the "
			    "dataplane's peers: check [dataplane] peer or the "
			    "epoch)" : "");
			goto fail;
		}
		if (!said)
			log_info("data parallel: waiting for the dataplane to "
			    "know every member of %s", j->dist_members);
		usleep(100000);
	}
	if (d->rows == 0)
		log_info("data parallel by the plan of job %s: rank %d of %d "
		    "(node %u, group %u), a standby: no rows of the global "
		    "batch of %d; it keeps the model in step through the "
		    "all-reduce", sh.job, d->rank, d->world, d->node, d->group,
		    d->rows_all);
	else
		log_info("data parallel%s%s: rank %d of %d (node %u, group %u), "
		    "rows %d-%d of a global batch of %d in %d micro-batch(es), "
		    "%zu values per all-reduce, compression %s", d->epoch ?
		    " by the plan of job " : "", d->epoch ? sh.job : "", d->rank,
		    d->world, d->node, d->group, d->first, d->first + d->rows -
		    1, d->rows_all, d->nmicro, d->count, j->dist_compress);
	return 0;
fail:
	arc_dp_detach(d->dp);
	d->dp = NULL;
	return -EINVAL;
}

void
dist_fini(struct dist *d)
{
	if (d->dp != NULL) {
		if (d->steps > 0)
			log_info("data parallel: %llu steps, %.1f MB sent, "
			    "%.1f ms a step copying and waiting; %llu of %llu "
			    "layer buckets went during backward",
			    (unsigned long long)d->steps, d->wire_bytes / 1e6,
			    d->comm_s * 1e3 / (double)d->steps,
			    (unsigned long long)d->buckets_early,
			    (unsigned long long)d->buckets);
		arc_dp_detach(d->dp);
	}
	d->dp = NULL;
}

/*
 * Buckets (ARCHITECTURE.md §4, step 2): backward runs last layer first,
 * and once the step's last micro-batch has passed layer l its gradients
 * are final.  They are gathered into layer l's slice of the arena buffer
 * (layers in order, then the rest: embeddings, final LayerNorm, loss,
 * stop) and all-reduced there while backward goes on to layer l - 1, in
 * the dataplane's process; the rest goes when backward is done.  Each
 * element is summed over the same ranks in the same ring as without
 * buckets, so two replicas get the same bits either way.
 */
#define GPT_LAYER_FIRST	2	/* ln1w: the first per-layer tensor */
#define GPT_LAYER_LAST	13	/* fcprojb: the last */

static float **
grad_views(const struct gpt *m)
{
	/* struct gpt_params is GPT_NPARAMS float pointers, in order */
	return (float **)(uintptr_t)&m->g;
}

static size_t
layer_floats(const struct gpt *m)
{
	size_t n = 0;

	for (int i = GPT_LAYER_FIRST; i <= GPT_LAYER_LAST; i++)
		n += m->sizes[i] / (size_t)m->cfg.L;
	return n;
}

/* Copies layer l's gradients to (to_buf) or from their bucket. */
static void
layer_copy(struct dist *d, const struct gpt *m, int l, int to_buf)
{
	float **v = grad_views(m);
	float *b = d->buf + (size_t)l * layer_floats(m);

	for (int i = GPT_LAYER_FIRST; i <= GPT_LAYER_LAST; i++) {
		size_t per = m->sizes[i] / (size_t)m->cfg.L;
		float *g = v[i] + (size_t)l * per;

		if (to_buf)
			memcpy(b, g, per * sizeof(float));
		else
			memcpy(g, b, per * sizeof(float));
		b += per;
	}
}

/* The tensors that are not per layer, then loss and stop. */
static void
rest_copy(struct dist *d, const struct gpt *m, int to_buf)
{
	float **v = grad_views(m);
	float *b = d->buf + (size_t)m->cfg.L * layer_floats(m);

	for (int i = 0; i < GPT_NPARAMS; i++) {
		if (i >= GPT_LAYER_FIRST && i <= GPT_LAYER_LAST)
			continue;
		if (to_buf)
			memcpy(b, v[i], m->sizes[i] * sizeof(float));
		else
			memcpy(v[i], b, m->sizes[i] * sizeof(float));
		b += m->sizes[i];
	}
}

static void
bucket_post(struct dist *d, size_t off, size_t count)
{
	struct arc_dp_op op = { .opcode = ARC_DP_ALLREDUCE, .comp = d->comp,
	    .ratio = d->ratio, .divisor = 1.0f, .group = d->group,
	    .buf = d->buf + off, .count = count,
	    .residual = d->resid != NULL ? d->resid + off : NULL };
	int64_t id;

	if (d->nposted == DIST_MAX_BUCKETS) {
		d->post_err = -E2BIG;
		return;
	}
	if ((id = arc_dp_post(d->dp, &op)) < 0) {
		if (d->post_err == 0)
			d->post_err = (int)id;
		return;
	}
	d->posted[d->nposted++] = (uint64_t)id;
}

void
dist_layer_ready(void *arg, int l)
{
	struct dist *d = arg;
	const struct gpt *m = d->model;
	size_t per = layer_floats(m);
	/* layers per bucket: at most DIST_MAX_BUCKETS - 1 buckets a step */
	int g = (m->cfg.L + DIST_MAX_BUCKETS - 2) / (DIST_MAX_BUCKETS - 1);
	double t0 = now_s();

	layer_copy(d, m, l, 1);
	d->layers_posted++;
	if (l % g == 0) {	/* the lowest of its bucket: all copied */
		int n = l + g > m->cfg.L ? m->cfg.L - l : g;

		bucket_post(d, (size_t)l * per, (size_t)n * per);
		d->buckets++;
		d->buckets_early += !d->finishing;
	}
	d->comm_s += now_s() - t0;
}

int
dist_step_finish(struct dist *d, struct gpt *m, float *loss, int stop,
    int *stop_all, char *err, size_t errlen)
{
	size_t per = layer_floats(m), rest = (size_t)m->cfg.L * per;
	double t0 = now_s();
	struct arc_dp_cpl c;
	char why[128];
	int r, fail = 0;

	/* layers no hook posted (no overlap asked): all of them now */
	d->finishing = 1;
	if (d->layers_posted == 0)
		for (int l = m->cfg.L - 1; l >= 0; l--)
			dist_layer_ready(d, l);
	rest_copy(d, m, 1);
	d->buf[d->count - 2] = *loss;
	d->buf[d->count - 1] = stop ? 1.0f : 0.0f;
	bucket_post(d, rest, d->count - rest);
	/* every posted bucket completes, failed or not, before we go on */
	for (int i = 0; i < d->nposted; i++) {
		if ((r = arc_dp_wait(d->dp, d->posted[i], -1, &c)) < 0) {
			if (!fail)
				snprintf(err, errlen, "gradient all-reduce failed: "
				    "%s%s", r == -ENOTCONN ? "dataplane "
				    "unreachable: " : "", strerror(-r));
			fail = fail ? fail : r;
			continue;
		}
		if (c.status != 0 && !fail) {
			snprintf(err, errlen, "gradient all-reduce failed: %s",
			    arc_dp_strerror(&c, why, sizeof(why)));
			d->failed_peer = c.peer;
			fail = c.status;
		}
		d->wire_bytes += c.wire_bytes;
	}
	if (d->post_err != 0 && !fail) {
		snprintf(err, errlen, "gradient all-reduce failed: %s%s",
		    d->post_err == -ENOTCONN ? "dataplane unreachable: " : "",
		    strerror(-d->post_err));
		fail = d->post_err;
	}
	d->nposted = 0;
	d->post_err = 0;
	d->layers_posted = 0;
	d->finishing = 0;
	if (fail)
		return fail;
	for (int l = 0; l < m->cfg.L; l++)
		layer_copy(d, m, l, 0);
	rest_copy(d, m, 0);
	*loss = d->buf[d->count - 2];
	*stop_all = d->buf[d->count - 1] > 0.5f;
	d->comm_s += now_s() - t0;
	d->steps++;
	return 0;
}
