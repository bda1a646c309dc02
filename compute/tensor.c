/*
 * tensor.c: tensor-parallel training through the node's arceus-dataplane
 * (Megatron style).  The nodes of dist.tensor form a group of N ranks
 * that each hold a shard of every block (gpt.c, struct gpt_config tp, tr):
 *
 *   attention: q, k, v column-parallel (rank r: heads [r*H/N, (r+1)*H/N),
 *              their rows of qkvw and qkvb), the output projection
 *              row-parallel (those heads' input columns of attprojw)
 *   MLP:       fc column-parallel (rows [r*4C/N, (r+1)*4C/N) of fcw, fcb),
 *              fcproj row-parallel (the same columns of fcprojw)
 *
 * and the rest whole: the embeddings, the LayerNorms, the projections'
 * biases (added once, after the sum), the head and the loss.  Every rank
 * draws the same rows (the single node's), so that per block:
 *
 *   forward:  the two row-parallel outputs [B*T, C] are summed over the
 *             group (the gpt tp_reduce hook, tp_reduce below);
 *   backward: the gradients of the two column-parallel inputs (the
 *             LayerNorm outputs, [B*T, C]) are summed over the group.
 *
 * Four all-reduces of [B*T, C] a block a micro-batch.  The dataplane's
 * ring hands every rank the same bits, so the residual stream, the loss
 * and the gradients of the whole tensors are the same, bit for bit, on
 * every rank: each applies the same AdamW update to its copies, and they
 * stay identical without a reduction of their own.  After the step's
 * backward one small all-reduce: each rank's sum of squares of its
 * sharded gradients (a float pair in its own slot) and the stop flag;
 * the whole tensors' squares count once, from our own copy, so that every
 * rank clips with the single node's global norm.
 *
 * Checkpoints: each rank writes its own shard (its own checkpoint.dir);
 * the trainer state says which rank of how many (trainer_state.stage),
 * and a rank refuses another's.  At resume the ranks fall back together
 * to the newest step all of them have (pipe_resume), then compare a
 * checksum of what they hold alike (tp_agree_whole).
 *
 * Replicas (dist.tensor = 1,2/3,4: two groups of two ranks), data
 * parallel: each group trains its rows of a global batch (dist.shares,
 * or batch_size each), and after backward every rank sums its shard's
 * gradients, the loss and stop with the same rank of the other groups
 * (group dist.group + R + s; group r's ranks use dist.group + r), with
 * dist.c's buckets, each block's during the last backward.  The ranks of
 * one group hand their replicas the same whole tensors' gradients, and
 * each ring sums them in the same order, so the whole tensors stay the
 * same on every rank of every group.
 *
 * From the plan (dist.tensor = plan): control's share of a plan of tp > 1
 * and pp 1 becomes dist.tensor, dist.shares and train.accumulate
 * (tp_from_share), groups from TP_PLAN_GROUP.
 *
 * Inside pipeline stages (dist.stages = 1+2,3+4, pipe.c): a stage's ranks
 * are a tensor group (struct pipe K, k, tgroup, tnodes), and rank k of
 * every stage a pipeline of its own; the hook and the checks here use the
 * tensor group's fields either way.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arceus_dp.h"
#include "compute.h"
#include "crc32c.h"
#include "ctlmsg.h"
#include "log.h"

#define TP_GROUP_WAIT_S		60.0
#define TP_RESUME_STEPS		8	/* pipe.c's PIPE_RESUME_STEPS */

int
tp_parse_group(const char *s, uint32_t *nodes, int *n, int *R, char *err,
    size_t errlen)
{
	char part[512], why[256];
	const char *p = s;
	int k, total = 0;

	*n = *R = 0;
	if (strlen(s) >= sizeof(part)) {
		snprintf(err, errlen, "too long");
		return -EINVAL;
	}
	for (;;) {
		const char *e = strchr(p, '/');
		size_t len = e != NULL ? (size_t)(e - p) : strlen(p);

		memcpy(part, p, len);
		part[len] = '\0';
		if (*R == TP_MAX_REPLICAS) {
			snprintf(err, errlen, "'%s': more than %d replicas", s,
			    TP_MAX_REPLICAS);
			return -EINVAL;
		}
		if ((k = dist_parse_members(part, nodes + total, GPT_MAX_TP, why,
		    sizeof(why))) < 0) {
			snprintf(err, errlen, "%s", why);
			return -EINVAL;
		}
		if (*R > 0 && k != *n) {
			snprintf(err, errlen, "'%s': replica %d has %d ranks, "
			    "replica 0 %d: every replica of the tensor group has "
			    "as many", s, *R, k, *n);
			return -EINVAL;
		}
		if (k < 2) {
			snprintf(err, errlen, "'%s': a tensor group has 2 ranks "
			    "or more", s);
			return -EINVAL;
		}
		*n = k;
		total += k;
		(*R)++;
		if (e == NULL)
			break;
		p = e + 1;
	}
	/* a node is one rank of one replica */
	for (int i = 0; i < total; i++)
		for (int j = 0; j < i; j++)
			if (nodes[i] == nodes[j]) {
				snprintf(err, errlen, "'%s': node %u is listed "
				    "twice", s, nodes[i]);
				return -EINVAL;
			}
	return 0;
}

int
tp_check_split(int64_t n_head, int64_t n_embd, int n, char *err,
    size_t errlen)
{
	if (n < 1 || n > GPT_MAX_TP) {
		snprintf(err, errlen, "%d ranks: 2 to %d", n, GPT_MAX_TP);
		return -EINVAL;
	}
	if (n_head % n != 0) {
		snprintf(err, errlen, "%d ranks do not divide model.n_head = "
		    "%lld: each rank holds whole attention heads, as many on "
		    "each", n, (long long)n_head);
		return -EINVAL;
	}
	if (4 * n_embd % n != 0) {
		snprintf(err, errlen, "%d ranks do not divide the MLP's 4 x "
		    "model.n_embd = %lld rows: each rank holds as many", n,
		    (long long)(4 * n_embd));
		return -EINVAL;
	}
	return 0;
}

/* Defines group g of n nodes, waiting (bounded) for unknown peers. */
static int
tp_group(struct pipe *p, uint16_t g, const uint32_t *nodes, int n,
    const char *what, char *err, size_t errlen)
{
	double t0 = now_s();

	for (int said = 0;; said = 1) {
		int r = arc_dp_group(p->dp, g, nodes, n);

		if (r == 0)
			return 0;
		if (r != -EHOSTUNREACH || now_s() - t0 > TP_GROUP_WAIT_S) {
			snprintf(err, errlen, "group %u of %s: %s%s", g, what,
			    strerror(-r), r == -EHOSTUNREACH ? " (a node is "
			    "not among the dataplane's peers: check [dataplane] "
			    "peer)" : "");
			return r;
		}
		if (!said)
			log_info("tensor parallel: waiting for the dataplane to "
			    "know every node of %s", what);
		usleep(100000);
	}
}

int
tp_init(struct pipe *p, const struct job *j, char *err, size_t errlen)
{
	static uint32_t all[GPT_MAX_TP * TP_MAX_REPLICAS];
	int shares[TP_MAX_REPLICAS], n, R, most_rows;
	char why[256];
	size_t need, grads = 0, bytes;

	memset(p, 0, sizeof(*p));
	p->tensor = 1;
	if (tp_parse_group(j->dist_tensor, all, &n, &R, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "dist.tensor: %s", why);
		return -EINVAL;
	}
	if (tp_check_split(j->n_head, j->n_embd, n, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "dist.tensor = %s: %s", j->dist_tensor,
		    why);
		return -EINVAL;
	}
	/* each replica's rows per micro-batch: dist.shares, or batch_size */
	if (dist_parse_shares(j->dist_shares, R, (int)j->batch_size, shares,
	    why, sizeof(why)) < 0) {
		snprintf(err, errlen, "dist.shares: %s", why);
		return -EINVAL;
	}
	if (R > 1 && dist_parse_comp(j->dist_compress, &p->rep, why,
	    sizeof(why)) < 0) {
		snprintf(err, errlen, "dist.compress = %s", why);
		return -EINVAL;
	}
	p->S = n;
	p->R = R;
	p->M = (int)j->accumulate;
	p->T = (int)j->block_size;
	p->C = (int)j->n_embd;
	p->V = GPT_VOCAB;
	p->EB = (int)j->batch_size;
	p->overlap = j->dist_overlap;
	p->print = pipe_job_print(j);
	most_rows = p->EB;
	for (int i = 0; i < R; i++) {
		p->Gall += shares[i] * p->M;
		most_rows = shares[i] > most_rows ? shares[i] : most_rows;
	}
	/* the blocks' sums of a micro-batch or a validation batch; the
	   norm's; pipe_agree's and pipe_resume's */
	p->act = (size_t)most_rows * (size_t)p->T * (size_t)p->C;
	need = (3 * TP_RESUME_STEPS + 5) * (size_t)(n > R ? n : R) + 1;
	p->nred = p->act > need ? p->act : need;
	if (R > 1) {
		/* the shard's gradients, loss and stop (all ranks' shards
		   are of one size) */
		struct gpt_config c = { (int)j->n_layer, (int)j->n_head, p->C,
		    p->T, p->V, 0, 0, n, 0 };

		grads = gpt_count_params(&c) + 2;
	}
	bytes = p->nred * sizeof(float) + grads * sizeof(float) *
	    (p->rep.comp != ARC_DP_COMP_NONE ? 2 : 1);
	if ((p->dp = arc_dp_attach(j->dist_dataplane, bytes + (1u << 20), err,
	    errlen)) == NULL)
		return -ENOTCONN;
	p->node = arc_dp_node_id(p->dp);
	p->s = p->r = -1;
	for (int i = 0; i < n * R; i++)
		if (all[i] == p->node) {
			p->r = i / n;
			p->s = i % n;
		}
	if (p->s < 0) {
		snprintf(err, errlen, "dist.tensor = '%s' does not list this "
		    "node (%u, the id of the dataplane at %s)", j->dist_tensor,
		    p->node, j->dist_dataplane);
		goto fail;
	}
	for (int i = 0; i < n; i++)
		p->nodes[i] = p->tnodes[i] = all[p->r * n + i];
	for (int i = 0; i < R; i++)
		p->peers[i] = all[i * n + p->s];
	p->group = p->tgroup = (uint16_t)(j->dist_group + p->r);
	p->K = n;
	p->k = p->s;
	p->dgroup = (uint16_t)(j->dist_group + R + p->s);
	p->G = shares[p->r] * p->M;
	for (int i = 0; i < p->r; i++)
		p->first += shares[i] * p->M;
	if ((p->red = arc_dp_alloc(p->dp, p->nred * sizeof(float))) == NULL)
		goto nospace;
	if (R > 1) {
		if ((p->gbuf = arc_dp_alloc(p->dp, grads * sizeof(float))) ==
		    NULL || (p->rep.comp != ARC_DP_COMP_NONE &&
		    (p->rep.resid = arc_dp_alloc(p->dp, grads *
		    sizeof(float))) == NULL))
			goto nospace;
		if (p->rep.resid != NULL)
			memset(p->rep.resid, 0, grads * sizeof(float));
		p->rep.buf = p->gbuf;
		p->rep.count = grads;
		p->rep.rank = p->r;
		p->rep.world = R;
		p->rep.node = p->node;
		p->rep.group = p->dgroup;
	}
	snprintf(why, sizeof(why), "the tensor group of replica %d", p->r);
	if (tp_group(p, p->group, p->nodes, n, why, err, errlen) < 0)
		goto fail;
	snprintf(why, sizeof(why), "the replicas of tensor rank %d", p->s);
	if (R > 1 && tp_group(p, p->dgroup, p->peers, R, why, err,
	    errlen) < 0)
		goto fail;
	log_info("tensor parallel: rank %d of %d (node %u, group %u): heads "
	    "%lld-%lld of every block, MLP rows %lld-%lld", p->s, n, p->node,
	    p->group, (long long)(j->n_head / n * p->s),
	    (long long)(j->n_head / n * (p->s + 1) - 1),
	    (long long)(4 * j->n_embd / n * p->s),
	    (long long)(4 * j->n_embd / n * (p->s + 1) - 1));
	if (R > 1)
		log_info("tensor parallel: replica %d of %d (rows %d-%d of %d a "
		    "step), the shard's gradients all-reduced with this rank's "
		    "replicas in group %u, compression %s", p->r, R, p->first,
		    p->first + p->G - 1, p->Gall, p->dgroup, j->dist_compress);
	p->rep.dp = R > 1 ? p->dp : NULL;
	return 0;
nospace:
	snprintf(err, errlen, "%zu bytes of the tensor group's sums and "
	    "gradients do not fit the dataplane's arena (raise [dataplane] "
	    "arena_size)", bytes);
fail:
	pipe_fini(p);
	return -EINVAL;
}

int
tp_reduce(void *arg, float *x, size_t n)
{
	struct pipe *p = arg;
	int r;

	/* after a failure the group is broken: no waiting on it again */
	if (p->failed)
		return p->failed;
	if (n > p->nred) {
		snprintf(p->why, sizeof(p->why), "a sum of %zu values over the "
		    "tensor group, room for %zu", n, p->nred);
		return p->failed = -E2BIG;
	}
	memcpy(p->red, x, n * sizeof(float));
	if ((r = pipe_allreduce(p, p->tgroup, p->red, n, p->why,
	    sizeof(p->why))) < 0)
		return p->failed = r;
	memcpy(x, p->red, n * sizeof(float));
	return 0;
}

void
tp_sq_sums(const struct gpt *m, double *shard, double *whole)
{
	const float *g = m->grads;

	*shard = *whole = 0;
	for (int i = 0; i < GPT_NPARAMS; i++) {
		double ss = 0;

		for (size_t k = 0; k < m->sizes[i]; k++)
			ss += (double)g[k] * g[k];
		g += m->sizes[i];
		if (gpt_param_sharded(i))
			*shard += ss;
		else
			*whole += ss;
	}
}

int
tp_step_finish(struct pipe *p, struct gpt *m, int stop, int *stop_all,
    float *norm, char *err, size_t errlen)
{
	double whole, shard, sum;
	int K = p->K, r;

	tp_sq_sums(m, &shard, &whole);
	/* ours in our slot as a float pair: the zeros elsewhere add exactly */
	memset(p->red, 0, (2 * (size_t)K + 1) * sizeof(float));
	p->red[2 * p->k] = (float)shard;
	p->red[2 * p->k + 1] = (float)(shard - (double)(float)shard);
	p->red[2 * K] = stop ? 1.0f : 0.0f;
	if ((r = pipe_allreduce(p, p->tgroup, p->red, 2 * (size_t)K + 1, err,
	    errlen)) < 0)
		return r;
	sum = whole;
	for (int i = 0; i < K; i++)
		sum += (double)p->red[2 * i] + (double)p->red[2 * i + 1];
	*norm = (float)sqrt(sum);
	*stop_all = p->red[2 * K] > 0.5f;
	p->steps++;
	return 0;
}

int
tp_from_share(const struct ctl_share *sh, const struct job *j,
    struct job *out, char *err, size_t errlen)
{
	size_t n = 0;
	int M;

	*out = *j;
	if (sh->tp < 2 || sh->pp != 1 || sh->dp < 1 ||
	    (uint64_t)sh->dp * sh->tp > CTL_SHARE_MAX) {
		snprintf(err, errlen, "the plan of epoch %llu (tp %u, pp %u, dp "
		    "%u) is not one of tensor-parallel shards alone",
		    (unsigned long long)sh->epoch, sh->tp, sh->pp, sh->dp);
		return -ENOTSUP;
	}
	M = sh->nmicro[0] > 0 ? sh->nmicro[0] : 1;
	out->dist_tensor[0] = out->dist_shares[0] = '\0';
	out->dist_members[0] = '\0';
	for (uint32_t i = 0; i < sh->dp; i++) {
		if (sh->nmicro[i] != sh->nmicro[0] || sh->shares[i] < M ||
		    sh->shares[i] % M != 0) {
			snprintf(err, errlen, "the plan of epoch %llu gives "
			    "replica %u %d rows in %d micro-batches, replica 0 "
			    "%d in %d: tensor groups here need the same number "
			    "of micro-batches, of whole rows, in every replica",
			    (unsigned long long)sh->epoch, i, sh->shares[i],
			    sh->nmicro[i], sh->shares[0], sh->nmicro[0]);
			return -ENOTSUP;
		}
		for (uint32_t k = 0; k < sh->tp; k++)
			n += (size_t)snprintf(out->dist_tensor + n,
			    n < sizeof(out->dist_tensor) ?
			    sizeof(out->dist_tensor) - n : 0, "%s%u",
			    k > 0 ? "," : i > 0 ? "/" : "",
			    sh->members[i * sh->tp + k]);
		snprintf(out->dist_shares + strlen(out->dist_shares),
		    sizeof(out->dist_shares) - strlen(out->dist_shares),
		    "%s%d", i > 0 ? "," : "", sh->shares[i] / M);
	}
	if (n >= sizeof(out->dist_tensor)) {
		snprintf(err, errlen, "the plan's tensor groups do not fit "
		    "dist.tensor");
		return -E2BIG;
	}
	if (tp_check_split(j->n_head, j->n_embd, (int)sh->tp, err,
	    errlen) < 0)
		return -EINVAL;
	out->accumulate = M;
	out->dist_group = TP_PLAN_GROUP;
	return 0;
}

/*
 * Every member of group g (n of them, we are number me) puts crc in its
 * own slot; *who: the first whose crc is not member 0's, or -1.
 * @return 0 or -errno of the all-reduce
 */
static int
crc_differs(struct pipe *p, uint16_t g, int n, int me, uint32_t crc,
    int *who, char *err, size_t errlen)
{
	int r;

	*who = -1;
	/* 16-bit halves in our own slot: the zeros elsewhere add exactly */
	memset(p->red, 0, 2 * (size_t)n * sizeof(float));
	p->red[2 * me] = (float)(crc & 0xffff);
	p->red[2 * me + 1] = (float)(crc >> 16);
	if ((r = pipe_allreduce(p, g, p->red, 2 * (size_t)n, err, errlen)) < 0)
		return r;
	for (int i = n - 1; i > 0; i--)
		if (p->red[2 * i] != p->red[0] || p->red[2 * i + 1] != p->red[1])
			*who = i;
	return 0;
}

int
tp_agree_whole(struct pipe *p, const struct gpt *m, const struct adamw *o,
    char *err, size_t errlen)
{
	uint32_t whole = 0, all = 0;
	size_t off = 0;
	int i, r;

	for (int t = 0; t < GPT_NPARAMS; t++) {
		size_t len = m->sizes[t] * sizeof(float);
		uint32_t *c = gpt_param_sharded(t) ? &all : &whole;

		*c = crc32c(*c, m->params + off, len);
		*c = crc32c(*c, o->m + off, len);
		*c = crc32c(*c, o->v + off, len);
		off += m->sizes[t];
	}
	if ((r = crc_differs(p, p->tgroup, p->K, p->k, whole, &i, err,
	    errlen)) < 0)
		return r;
	if (i > 0) {
		snprintf(err, errlen, "tensor rank %d (node %u) holds other "
		    "values of the whole tensors (embeddings, LayerNorms, "
		    "biases, head, their moments) than rank 0 (node %u): their "
		    "checkpoints are of different runs (give every rank the "
		    "checkpoints of one run, or none)", i, p->tnodes[i],
		    p->tnodes[0]);
		return -EINVAL;
	}
	if (p->R < 2)
		return 0;
	all ^= whole;
	if ((r = crc_differs(p, p->dgroup, p->R, p->r, all, &i, err,
	    errlen)) < 0)
		return r;
	if (i > 0) {
		snprintf(err, errlen, "replica %d (node %u) holds another state "
		    "of tensor rank %d's shard than replica 0 (node %u): their "
		    "checkpoints are of different runs (give every replica the "
		    "checkpoints of one run, or none)", i, p->peers[i], p->k,
		    p->peers[0]);
		return -EINVAL;
	}
	return 0;
}
