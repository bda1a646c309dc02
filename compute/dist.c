/*
 * dist.c: data-parallel training through the node's arceus-dataplane.
 *
 * Every replica holds the whole model, with the same parameters.  A step
 * draws the same global batch on every replica (one data seed) and each
 * trains on its own share of it: rank r takes the b_r rows after those of
 * ranks 0..r-1, where the shares b (dist.shares, from the planner: a slow
 * machine gets fewer) sum to the global batch Ball.  Each scales its loss
 * by b_r / Ball, so that one all-reduce (a sum) of the gradients, and of
 * the loss with them, gives the gradient and loss of the mean over the
 * global batch: weighted by samples, not by replicas.  Clipping and AdamW then see identical
 * values on every replica (the ring all-reduce hands every rank the same
 * bits), so the replicas stay identical without ever sending parameters,
 * and the step is the single-node step with batch W x B up to the order
 * of the sums.
 *
 * A replica asked to stop (SIGTERM) says so in the same all-reduce (one
 * more value): every replica then stops after that step, together.
 *
 * The gradients travel from a buffer in the dataplane's arena: the model
 * keeps its own, the step copies them in and the average back (a few
 * milliseconds for the sizes trained here, next to the step itself).
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
#include "log.h"

#define DIST_GROUP_WAIT_S	60.0

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
dist_parse_members(const char *s, uint32_t *out, int max, char *err,
    size_t errlen)
{
	const char *p = s;
	int n = 0;

	while (*p != '\0') {
		char *end;
		unsigned long v;

		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		errno = 0;
		v = strtoul(p, &end, 10);
		if (end == p || errno != 0 || v == 0 || v > 0xffffffffUL ||
		    (*end != '\0' && *end != ',' && *end != ' ')) {
			snprintf(err, errlen, "'%s': node ids are numbers "
			    "above 0, separated by commas", s);
			return -EINVAL;
		}
		for (int i = 0; i < n; i++)
			if (out[i] == (uint32_t)v) {
				snprintf(err, errlen, "'%s': node %lu is listed "
				    "twice", s, v);
				return -EINVAL;
			}
		if (n == max) {
			snprintf(err, errlen, "'%s': more than %d members", s,
			    max);
			return -EINVAL;
		}
		out[n++] = (uint32_t)v;
		p = end;
	}
	if (n == 0) {
		snprintf(err, errlen, "no members: list the node ids of the "
		    "replicas, e.g. 1,2");
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
	/* the same list syntax as members; repeats are fine here */
	n = 0;
	for (const char *p = s; *p != '\0' && n <= DIST_MAX_MEMBERS;) {
		char *end;
		unsigned long x;

		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		x = strtoul(p, &end, 10);
		if (end == p || x == 0 || x > 65536 || (*end != '\0' &&
		    *end != ',' && *end != ' ')) {
			snprintf(err, errlen, "'%s': batch shares are numbers "
			    "from 1 to 65536, separated by commas", s);
			return -EINVAL;
		}
		if (n < DIST_MAX_MEMBERS)
			v[n] = (uint32_t)x;
		n++;
		p = end;
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

int
dist_init(struct dist *d, const struct job *j, size_t nparams, char *err,
    size_t errlen)
{
	uint32_t members[DIST_MAX_MEMBERS];
	int shares[DIST_MAX_MEMBERS];
	size_t bytes;
	int n, r;

	memset(d, 0, sizeof(*d));
	if ((n = dist_parse_members(j->dist_members, members,
	    DIST_MAX_MEMBERS, err, errlen)) < 0)
		return n;
	if ((r = dist_parse_comp(j->dist_compress, d, err, errlen)) < 0)
		return r;
	if ((r = dist_parse_shares(j->dist_shares, n, (int)j->batch_size,
	    shares, err, errlen)) < 0)
		return r;
	d->world = n;
	d->group = (uint16_t)j->dist_group;
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
	for (int i = 0; i < n; i++) {
		if (i < d->rank)
			d->first += shares[i];
		d->batch_all += shares[i];
	}
	d->batch = shares[d->rank];
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
	for (double t0 = mono_s(), said = 0;;) {
		if ((r = arc_dp_group(d->dp, d->group, members, n)) == 0)
			break;
		if (r != -EHOSTUNREACH || mono_s() - t0 > DIST_GROUP_WAIT_S) {
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
		said = 1;
		usleep(100000);
	}
	log_info("data parallel: rank %d of %d (node %u, group %u), rows "
	    "%d-%d of a global batch of %d, %zu values per all-reduce, "
	    "compression %s", d->rank, d->world, d->node, d->group, d->first,
	    d->first + d->batch - 1, d->batch_all, d->count,
	    j->dist_compress);
	return 0;
fail:
	arc_dp_detach(d->dp);
	d->dp = NULL;
	return -EINVAL;
}

int
dist_allreduce(struct dist *d, float *grads, float *loss, int stop,
    int *stop_all, char *err, size_t errlen)
{
	struct arc_dp_op op = { .opcode = ARC_DP_ALLREDUCE, .comp = d->comp,
	    .ratio = d->ratio, .divisor = 1.0f, .group = d->group,
	    .buf = d->buf, .count = d->count, .residual = d->resid };
	struct arc_dp_cpl c;
	double t0 = mono_s();
	char why[128];
	int64_t id;
	int r;

	memcpy(d->buf, grads, (d->count - 2) * sizeof(float));
	d->buf[d->count - 2] = *loss;
	d->buf[d->count - 1] = stop ? 1.0f : 0.0f;
	if ((id = arc_dp_post(d->dp, &op)) < 0) {
		snprintf(err, errlen, "gradient all-reduce failed: %s%s",
		    id == -ENOTCONN ? "dataplane unreachable: " : "",
		    strerror((int)-id));
		return (int)id;
	}
	if ((r = arc_dp_wait(d->dp, (uint64_t)id, -1, &c)) < 0) {
		snprintf(err, errlen, "gradient all-reduce failed: %s%s",
		    r == -ENOTCONN ? "dataplane unreachable: " : "",
		    strerror(-r));
		return r;
	}
	if (c.status != 0) {
		snprintf(err, errlen, "gradient all-reduce failed: %s",
		    arc_dp_strerror(&c, why, sizeof(why)));
		d->failed_peer = c.peer;
		return c.status;
	}
	memcpy(grads, d->buf, (d->count - 2) * sizeof(float));
	*loss = d->buf[d->count - 2];
	*stop_all = d->buf[d->count - 1] > 0.5f;
	d->wire_bytes += c.wire_bytes;
	d->comm_s += mono_s() - t0;
	d->steps++;
	return 0;
}

void
dist_fini(struct dist *d)
{
	if (d->dp != NULL) {
		if (d->steps > 0)
			log_info("data parallel: %llu all-reduces, %.1f MB "
			    "sent, %.1f ms each on average",
			    (unsigned long long)d->steps, d->wire_bytes / 1e6,
			    d->comm_s * 1e3 / (double)d->steps);
		arc_dp_detach(d->dp);
	}
	d->dp = NULL;
}
