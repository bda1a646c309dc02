/*
 * pipe.c: pipeline-parallel training through the node's arceus-dataplane.
 *
 * The n_layer blocks are cut into S contiguous stages (dist.layers), one
 * per node of dist.stages, in order: stage 0 also holds the token and
 * position embeddings, stage S-1 the final LayerNorm, the head and the
 * loss.  The head is tied to the token embedding, so both ends hold a copy
 * of wte; their gradients are summed every step (one all-reduce over the
 * stages), so that both apply the same AdamW update to the same values and
 * the copies stay identical, bit for bit.
 *
 * A step is the single-node step with train.accumulate micro-batches of
 * train.batch_size rows: every stage draws the same rows (one data seed),
 * the first uses their tokens, the last their targets.  Micro-batch i goes
 * forward stage by stage (activations [B*T, C] sent with ARC_DP_SEND to
 * the next stage's node), its loss gradient backward (the gradient of each
 * stage's input sent to the previous one), and every stage accumulates
 * its parameter gradients over the micro-batches in micro-batch order, as
 * the single node does.  The order of work is 1F1B (PipeDream-flush):
 *
 *   stage s, M micro-batches, w = min(S - s - 1, M) warm-up forwards:
 *     F0 .. F(w-1), then (F(w+i), B(i)) for i < M - w, then the last B
 *   S = 3, M = 4:  s0: F0 F1 F2 B0 F3 B1 B2 B3
 *                  s1: F0 F1 B0 F2 B1 F3 B2 B3
 *                  s2: F0 B0 F1 B1 F2 B2 F3 B3
 *
 * so that stage s holds the activations of at most S - s micro-batches
 * (GPipe, dist.schedule = gpipe: all forwards, then all backwards, M).
 *
 * After the last backward, two small all-reduces over the stages' group:
 * (1) the tied wte gradient (the ends' values, zeros elsewhere: one exact
 * addition), the loss (the last stage's) and the stop flag, so that every
 * stage prints the same loss and stops after the same step; (2) each
 * stage's sum of squared gradients (as a float pair in its own slot: the
 * sums come back exact), so that every stage clips with the same global
 * norm.  Then each steps AdamW on its own parameters.
 *
 * Replicas (dist.stages = 1,2/3,4: two pipelines of two stages), data
 * parallel: each pipeline trains its own rows of a global batch of R
 * times the single pipeline's, and before (1) every stage sums its
 * gradients, the loss and stop with the same stage of the other
 * pipelines (group dist.group + R + s; pipeline r's stages use group
 * dist.group + r) with dist.c's buckets, each block's during the step's
 * last backward.  The ring all-reduce hands all replicas the same bits,
 * so (1), (2) and AdamW give the same parameters on every replica.
 *
 * Stages of tensor ranks (dist.stages = 1+2,3+4: K ranks a stage,
 * tensor.c): rank k of every stage is a pipeline of its own (nodes[]),
 * with groups of its own (dist.group + r * K + k over the stages,
 * dist.group + R * K + s * K + k over the replicas); a stage's ranks sum
 * their blocks' partial outputs and input gradients in their tensor group
 * (tgroup), and before (2) their shards' squares and stop.
 *
 * Sends and receives are matched in order per pair of nodes (the
 * dataplane's sequence numbers): activations only go down the pipeline
 * and gradients only up, each stream in micro-batch order.  A send
 * completes once its bytes left; a message that arrives before its RECV
 * is posted waits in the dataplane, so a stage never blocks on a send.
 *
 * Failures: a receive or all-reduce that fails (a peer's dataplane gone,
 * no progress within op_timeout_ms) names the peer; the trainer stops
 * with that message after checkpointing the last whole step, as data
 * parallel does.
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
#include "log.h"

#define PIPE_GROUP_WAIT_S	60.0
#define PIPE_RESUME_STEPS	8	/* newest checkpoints compared at resume */

int
pipe_parse_stages(const char *s, uint32_t *nodes, int *S, int *R, int *K,
    char *err, size_t errlen)
{
	char part[512], tok[512], why[256];
	const char *p = s;
	int n, total = 0;

	*S = *R = *K = 0;
	if (strlen(s) >= sizeof(part)) {
		snprintf(err, errlen, "too long");
		return -EINVAL;
	}
	for (;;) {
		const char *e = strchr(p, '/'), *q;
		size_t len = e != NULL ? (size_t)(e - p) : strlen(p);

		memcpy(part, p, len);
		part[len] = '\0';
		if (*R == PIPE_MAX_REPLICAS) {
			snprintf(err, errlen, "'%s': more than %d replicas", s,
			    PIPE_MAX_REPLICAS);
			return -EINVAL;
		}
		/* stages a, b, ...; a stage of tensor ranks as 1+2 */
		n = 0;
		for (q = part;; n++) {
			const char *c = strchr(q, ',');
			size_t tl = c != NULL ? (size_t)(c - q) : strlen(q);
			uint32_t t[GPT_MAX_TP];
			int k;

			memcpy(tok, q, tl);
			tok[tl] = '\0';
			for (char *x = tok; *x != '\0'; x++)
				if (*x == '+')
					*x = ',';
			if ((k = dist_parse_members(tok, t, GPT_MAX_TP, why,
			    sizeof(why))) < 0) {
				snprintf(err, errlen, "'%s': stage %d of replica "
				    "%d: %s", s, n, *R, why);
				return -EINVAL;
			}
			if (*K > 0 && k != *K) {
				snprintf(err, errlen, "'%s': stage %d of replica "
				    "%d has %d tensor ranks, the first stage %d: "
				    "every stage has as many", s, n, *R, k, *K);
				return -EINVAL;
			}
			if (total + k > PIPE_MAX_STAGES * PIPE_MAX_REPLICAS ||
			    n == PIPE_MAX_STAGES) {
				snprintf(err, errlen, "'%s': too many nodes", s);
				return -EINVAL;
			}
			*K = k;
			memcpy(nodes + total, t, sizeof(uint32_t) * (size_t)k);
			total += k;
			if (c == NULL)
				break;
			q = c + 1;
		}
		n++;
		if (*R > 0 && n != *S) {
			snprintf(err, errlen, "'%s': replica %d has %d stages, "
			    "replica 0 %d: every replica of the pipeline has "
			    "the same stages", s, *R, n, *S);
			return -EINVAL;
		}
		if (n < 2) {
			snprintf(err, errlen, "'%s': a pipeline has 2 stages or "
			    "more", s);
			return -EINVAL;
		}
		*S = n;
		(*R)++;
		if (e == NULL)
			break;
		p = e + 1;
	}
	/* a node is one rank of one stage of one replica */
	for (int i = 0; i < total; i++)
		for (int k = 0; k < i; k++)
			if (nodes[k] == nodes[i]) {
				snprintf(err, errlen, "'%s': node %u is listed "
				    "twice", s, nodes[i]);
				return -EINVAL;
			}
	return 0;
}

int
pipe_split_layers(const char *s, int nstages, int nlayer, int *out,
    char *err, size_t errlen)
{
	uint32_t v[PIPE_MAX_STAGES];
	int n = 0, sum = 0;

	if (nstages < 1 || nstages > PIPE_MAX_STAGES) {
		snprintf(err, errlen, "%d stages: 1 to %d", nstages,
		    PIPE_MAX_STAGES);
		return -EINVAL;
	}
	if (nstages > nlayer) {
		snprintf(err, errlen, "%d stages for %d blocks: every stage "
		    "needs a block (model.n_layer)", nstages, nlayer);
		return -EINVAL;
	}
	if (s == NULL || s[0] == '\0') {
		/* as even as may be, the first stages one more */
		for (int i = 0; i < nstages; i++)
			out[i] = nlayer / nstages + (i < nlayer % nstages);
		return nstages;
	}
	if ((n = dist_parse_list(s, 1, 65536, v, PIPE_MAX_STAGES)) < 0) {
		snprintf(err, errlen, "'%s': blocks per stage are numbers from "
		    "1, separated by commas", s);
		return -EINVAL;
	}
	for (int i = 0; i < n && i < PIPE_MAX_STAGES; i++)
		sum += (int)v[i];
	if (n != nstages) {
		snprintf(err, errlen, "'%s': %d block counts for %d stages", s,
		    n, nstages);
		return -EINVAL;
	}
	if (sum != nlayer) {
		snprintf(err, errlen, "'%s': %d blocks in all, the model has "
		    "%d (model.n_layer)", s, sum, nlayer);
		return -EINVAL;
	}
	for (int i = 0; i < n; i++)
		out[i] = (int)v[i];
	return n;
}

int
pipe_schedule(int S, int s, int M, int gpipe, struct pipe_op *ops)
{
	int n = 0, w;

	if (gpipe) {
		for (int i = 0; i < M; i++)
			ops[n++] = (struct pipe_op){ PIPE_F, i };
		for (int i = 0; i < M; i++)
			ops[n++] = (struct pipe_op){ PIPE_B, i };
		return n;
	}
	w = S - s - 1 < M ? S - s - 1 : M;
	for (int i = 0; i < w; i++)
		ops[n++] = (struct pipe_op){ PIPE_F, i };
	for (int i = 0; i < M - w; i++) {
		ops[n++] = (struct pipe_op){ PIPE_F, w + i };
		ops[n++] = (struct pipe_op){ PIPE_B, i };
	}
	for (int i = M - w; i < M; i++)
		ops[n++] = (struct pipe_op){ PIPE_B, i };
	return n;
}

int
pipe_slots(const struct pipe_op *ops, int n)
{
	int live = 0, most = 0;

	for (int i = 0; i < n; i++) {
		live += ops[i].kind == PIPE_F ? 1 : -1;
		if (live > most)
			most = live;
	}
	return most;
}

/* Fingerprint of what every stage must agree on. */
uint32_t
pipe_job_print(const struct job *j)
{
	char b[2048];
	int n;

	n = snprintf(b, sizeof(b), "%lld %lld %lld %lld %lld %lld %lld %.17g "
	    "%.17g %lld %lld %.17g %.17g %.17g %.17g %.17g %lld %s %s %s %s",
	    (long long)j->n_layer, (long long)j->n_head, (long long)j->n_embd,
	    (long long)j->block_size, (long long)j->batch_size,
	    (long long)j->accumulate, (long long)j->steps, j->lr, j->min_lr,
	    (long long)j->warmup_steps, (long long)j->decay_steps,
	    j->weight_decay, j->beta1, j->beta2, j->eps, j->grad_clip,
	    (long long)j->seed, j->dist_stages, j->dist_layers,
	    j->dist_schedule, j->dist_tensor);
	if (j->dist_shares[0] != '\0' && n > 0 && (size_t)n < sizeof(b))
		n += snprintf(b + n, sizeof(b) - (size_t)n, " %s",
		    j->dist_shares);
	return crc32c(0, b, n > 0 && (size_t)n < sizeof(b) ? (size_t)n :
	    sizeof(b) - 1);
}

/* Defines group g of n nodes, waiting (bounded) for unknown peers. */
static int
group_define(struct pipe *p, uint16_t g, const uint32_t *nodes, int n,
    const char *what, char *err, size_t errlen)
{
	double t0 = now_s();
	int r;

	for (int said = 0;; said = 1) {
		if ((r = arc_dp_group(p->dp, g, nodes, n)) == 0)
			return 0;
		if (r != -EHOSTUNREACH || now_s() - t0 > PIPE_GROUP_WAIT_S) {
			snprintf(err, errlen, "group %u of %s: %s%s", g, what,
			    strerror(-r), r == -EHOSTUNREACH ? " (a node is not "
			    "among the dataplane's peers: check [dataplane] peer "
			    "or the epoch)" : "");
			return r;
		}
		if (!said)
			log_info("pipeline: waiting for the dataplane to know "
			    "every node of %s", what);
		usleep(100000);
	}
}

void
pipe_bind_epoch(struct pipe *p, uint64_t epoch)
{
	if (p->dp != NULL)
		arc_dp_set_epoch(p->dp, (uint32_t)epoch);
}

int
pipe_init(struct pipe *p, const struct job *j, char *err, size_t errlen)
{
	static uint32_t all[PIPE_MAX_STAGES * PIPE_MAX_REPLICAS];
	char why[256];
	size_t act, bytes, most = 0;
	int S, R, K, EB, most_rows, shares[PIPE_MAX_REPLICAS];

	memset(p, 0, sizeof(*p));
	if (pipe_parse_stages(j->dist_stages, all, &S, &R, &K, why,
	    sizeof(why)) < 0) {
		snprintf(err, errlen, "dist.stages: %s", why);
		return -EINVAL;
	}
	if (K > 1 && tp_check_split(j->n_head, j->n_embd, K, why,
	    sizeof(why)) < 0) {
		snprintf(err, errlen, "dist.stages = %s: %s", j->dist_stages,
		    why);
		return -EINVAL;
	}
	p->S = S;
	p->R = R;
	p->K = K;
	if (pipe_split_layers(j->dist_layers, S, (int)j->n_layer, p->layers,
	    why, sizeof(why)) < 0) {
		snprintf(err, errlen, "dist.layers: %s", why);
		return -EINVAL;
	}
	p->gpipe = strcmp(j->dist_schedule, "gpipe") == 0;
	p->M = (int)j->accumulate;
	p->T = (int)j->block_size;
	p->C = (int)j->n_embd;
	p->V = GPT_VOCAB;
	/* rows of each replica's micro-batches: dist.shares (the planner's,
	   by speed), or batch_size each */
	if (dist_parse_shares(j->dist_shares, R, (int)j->batch_size, shares,
	    why, sizeof(why)) < 0) {
		snprintf(err, errlen, "dist.shares: %s", why);
		free(p->sched);
		p->sched = NULL;
		return -EINVAL;
	}
	EB = (int)j->batch_size;	/* validation batches */
	p->EB = EB;
	most_rows = EB;
	for (int i = 0; i < R; i++) {
		p->Gall += shares[i] * p->M;
		most_rows = shares[i] > most_rows ? shares[i] : most_rows;
	}
	p->print = pipe_job_print(j);
	act = (size_t)most_rows * (size_t)p->T * (size_t)p->C;
	p->act = act;
	if ((p->sched = calloc(2 * (size_t)p->M, sizeof(*p->sched))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* the largest of: (1), (2), pipe_agree's, pipe_resume's */
	p->nred = (size_t)p->V * (size_t)p->C + 2;
	if (p->nred < (3 * PIPE_RESUME_STEPS + 5) * (size_t)(S > R ? S : R) + 1)
		p->nred = (3 * PIPE_RESUME_STEPS + 5) * (size_t)(S > R ? S : R) +
		    1;
	/* tensor ranks: the blocks' sums of [rows*T, C] (the stage's), and
	   pipe_agree's, pipe_resume's over them */
	if (K > 1 && p->nred < act)
		p->nred = act;
	if (p->nred < (3 * PIPE_RESUME_STEPS + 5) * (size_t)K + 1)
		p->nred = (3 * PIPE_RESUME_STEPS + 5) * (size_t)K + 1;
	/* data parallel: the largest stage's gradients, loss and stop (and
	   as much error feedback with lossy compression) */
	if (R > 1 && dist_parse_comp(j->dist_compress, &p->rep, why,
	    sizeof(why)) < 0) {
		snprintf(err, errlen, "dist.compress = %s", why);
		free(p->sched);
		p->sched = NULL;
		return -EINVAL;
	}
	p->overlap = j->dist_overlap;
	for (int i = 0, l0 = 0; R > 1 && i < S; l0 += p->layers[i++]) {
		struct gpt_config c = { p->layers[i], (int)j->n_head, p->C,
		    p->T, p->V, l0, (int)j->n_layer, K, 0 };
		size_t n = gpt_count_params(&c) + 2;

		most = n > most ? n : most;
	}
	bytes = ((size_t)PIPE_TX + 1) * act * sizeof(float) + p->nred *
	    sizeof(float) + most * sizeof(float) *
	    (p->rep.comp != ARC_DP_COMP_NONE ? 2 : 1);
	if ((p->dp = arc_dp_attach(j->dist_dataplane, bytes + (1u << 20), err,
	    errlen)) == NULL) {
		free(p->sched);
		p->sched = NULL;
		return -ENOTCONN;
	}
	p->node = arc_dp_node_id(p->dp);
	p->s = p->r = -1;
	for (int i = 0; i < S * R * K; i++)
		if (all[i] == p->node) {
			p->r = i / (S * K);
			p->s = i / K % S;
			p->k = i % K;
		}
	if (p->s < 0) {
		snprintf(err, errlen, "dist.stages = '%s' does not list this "
		    "node (%u, the id of the dataplane at %s)", j->dist_stages,
		    p->node, j->dist_dataplane);
		goto fail;
	}
	/* our pipeline: the stages of our replica, rank k of each */
	for (int i = 0; i < S; i++)
		p->nodes[i] = all[(p->r * S + i) * K + p->k];
	for (int i = 0; i < R; i++)
		p->peers[i] = all[(i * S + p->s) * K + p->k];
	for (int i = 0; i < K; i++)
		p->tnodes[i] = all[(p->r * S + p->s) * K + i];
	/*
	 * groups: replica r's (rank k's) stages dist.group + r * K + k,
	 * stage s's (rank k's) replicas dist.group + R * K + s * K + k, and
	 * with tensor ranks replica r's stage s dist.group + R * K + S * K +
	 * r * S + s (job_load checked they fit)
	 */
	p->group = (uint16_t)(j->dist_group + p->r * K + p->k);
	p->dgroup = (uint16_t)(j->dist_group + R * K + p->s * K + p->k);
	p->tgroup = (uint16_t)(j->dist_group + R * K + S * K + p->r * S +
	    p->s);
	p->G = shares[p->r] * p->M;
	for (int i = 0; i < p->r; i++)
		p->first += shares[i] * p->M;
	for (int i = 0; i < p->s; i++)
		p->l0 += p->layers[i];
	p->nsched = pipe_schedule(S, p->s, p->M, p->gpipe, p->sched);
	p->nslots = pipe_slots(p->sched, p->nsched);
	if (p->nslots > GPT_MAX_SLOTS) {
		snprintf(err, errlen, "%d micro-batches in flight on this stage, "
		    "at most %d: fewer train.accumulate, or dist.schedule = "
		    "1f1b", p->nslots, GPT_MAX_SLOTS);
		goto fail;
	}
	if ((p->rx = arc_dp_alloc(p->dp, act * sizeof(float))) == NULL ||
	    (p->red = arc_dp_alloc(p->dp, p->nred * sizeof(float))) == NULL)
		goto nospace;
	for (int i = 0; i < PIPE_TX; i++) {
		if ((p->tx[i] = arc_dp_alloc(p->dp, act * sizeof(float))) ==
		    NULL)
			goto nospace;
		p->tx_id[i] = -1;
	}
	if (R > 1) {
		struct gpt_config c = { p->layers[p->s], (int)j->n_head, p->C,
		    p->T, p->V, p->l0, (int)j->n_layer, K, p->k };

		if ((p->gbuf = arc_dp_alloc(p->dp, most * sizeof(float))) ==
		    NULL || (p->rep.comp != ARC_DP_COMP_NONE &&
		    (p->rep.resid = arc_dp_alloc(p->dp, most *
		    sizeof(float))) == NULL))
			goto nospace;
		if (p->rep.resid != NULL)
			memset(p->rep.resid, 0, most * sizeof(float));
		p->rep.buf = p->gbuf;
		p->rep.count = gpt_count_params(&c) + 2;
		p->rep.rank = p->r;
		p->rep.world = R;
		p->rep.node = p->node;
		p->rep.group = p->dgroup;
	}
	snprintf(why, sizeof(why), "the stages of replica %d", p->r);
	if (group_define(p, p->group, p->nodes, S, why, err, errlen) < 0)
		goto fail;
	snprintf(why, sizeof(why), "the replicas of stage %d", p->s);
	if (R > 1 && group_define(p, p->dgroup, p->peers, R, why, err,
	    errlen) < 0)
		goto fail;
	snprintf(why, sizeof(why), "the tensor ranks of stage %d", p->s);
	if (K > 1 && group_define(p, p->tgroup, p->tnodes, K, why, err,
	    errlen) < 0)
		goto fail;
	log_info("pipeline: stage %d of %d (node %u, group %u), blocks %d-%d "
	    "of %lld%s%s, %d micro-batches of %d rows a step, schedule %s "
	    "(%d in flight at most)", p->s, S, p->node, p->group, p->l0,
	    p->l0 + p->layers[p->s] - 1, (long long)j->n_layer,
	    p->s == 0 ? ", the embeddings" : "", p->s == S - 1 ?
	    ", the head and the loss" : "", p->M, p->G / p->M,
	    p->gpipe ? "gpipe" : "1f1b", p->nslots);
	if (K > 1)
		log_info("pipeline: tensor rank %d of %d of stage %d (group %u): "
		    "heads %lld-%lld of its blocks", p->k, K, p->s, p->tgroup,
		    (long long)(j->n_head / K * p->k),
		    (long long)(j->n_head / K * (p->k + 1) - 1));
	if (R > 1)
		log_info("pipeline: replica %d of %d (rows %d-%d of %d a step), "
		    "gradients all-reduced with this stage's replicas in group "
		    "%u, compression %s", p->r, R, p->first, p->first + p->G -
		    1, p->Gall, p->dgroup, j->dist_compress);
	p->rep.dp = R > 1 ? p->dp : NULL;
	return 0;
nospace:
	snprintf(err, errlen, "%zu bytes of activations and gradients do not "
	    "fit the dataplane's arena (raise [dataplane] arena_size)", bytes);
fail:
	pipe_fini(p);
	return -EINVAL;
}

void
pipe_fini(struct pipe *p)
{
	if (p->dp != NULL) {
		if (p->steps > 0 && p->tensor)
			log_info("tensor parallel: %llu steps, %.1f MB sent, "
			    "%.1f ms a step in the group's all-reduces",
			    (unsigned long long)p->steps, p->wire_bytes / 1e6,
			    p->wait_s * 1e3 / (double)p->steps);
		else if (p->steps > 0)
			log_info("pipeline: %llu steps, %.1f MB sent, %.1f ms a "
			    "step waiting for other stages",
			    (unsigned long long)p->steps, p->wire_bytes / 1e6,
			    p->wait_s * 1e3 / (double)p->steps);
		if (p->rep.steps > 0)
			log_info("%s replicas: %.1f MB of gradients sent, "
			    "%.1f ms a step copying and waiting; %llu of %llu "
			    "layer buckets went during backward",
			    p->tensor ? "tensor group" : "pipeline",
			    p->rep.wire_bytes / 1e6, p->rep.comm_s * 1e3 /
			    (double)p->rep.steps,
			    (unsigned long long)p->rep.buckets_early,
			    (unsigned long long)p->rep.buckets);
		arc_dp_detach(p->dp);
	}
	free(p->sched);
	memset(p, 0, sizeof(*p));
}

/*
 * Waits for operation id (or reports the -errno of its post); what:
 * "receiving activations from", ... and stage: the other end, or -1 for
 * the all-reduces.  @return 0 or -errno with err set, naming the peer
 */
static int
op_wait(struct pipe *p, int64_t id, const char *what, int stage,
    struct arc_dp_cpl *c, char *err, size_t errlen)
{
	char why[128], who[64] = "";
	double t0 = now_s();
	int r;

	if (stage >= 0)
		snprintf(who, sizeof(who), " stage %d (node %u)", stage,
		    p->nodes[stage]);
	if (id < 0 || (r = arc_dp_wait(p->dp, (uint64_t)id, -1, c)) < 0) {
		r = id < 0 ? (int)id : r;
		snprintf(err, errlen, "%s%s failed: %s%s", what, who,
		    r == -ENOTCONN ? "dataplane unreachable: " : "",
		    strerror(-r));
		return r;
	}
	p->wait_s += now_s() - t0;
	p->wire_bytes += c->wire_bytes;
	if (c->status != 0) {
		snprintf(err, errlen, "%s%s failed: %s", what, who,
		    arc_dp_strerror(c, why, sizeof(why)));
		p->failed_peer = c->peer;
		return c->status;
	}
	return 0;
}

static int64_t
post(struct pipe *p, enum arc_dp_opcode opc, float *buf, size_t count,
    uint32_t peer)
{
	struct arc_dp_op op = { .opcode = opc, .group = p->group,
	    .peer = peer, .buf = buf, .count = count, .divisor = 1.0f };

	return arc_dp_post(p->dp, &op);
}

/* Sends n values of src to stage `to` from the next free send buffer. */
static int
send_to(struct pipe *p, int to, const float *src, size_t n, char *err,
    size_t errlen)
{
	int k = p->tx_next;
	struct arc_dp_cpl c;
	int r;

	p->tx_next = (k + 1) % PIPE_TX;
	if (p->tx_id[k] >= 0) {
		r = op_wait(p, p->tx_id[k], "sending to", p->tx_to[k], &c, err,
		    errlen);
		p->tx_id[k] = -1;
		if (r < 0)
			return r;
	}
	memcpy(p->tx[k], src, n * sizeof(float));
	p->tx_to[k] = to;
	p->tx_id[k] = post(p, ARC_DP_SEND, p->tx[k], n, p->nodes[to]);
	if (p->tx_id[k] < 0)
		return op_wait(p, p->tx_id[k], "sending to", to, &c, err,
		    errlen);
	return 0;
}

/* Every send posted has left. */
static int
send_drain(struct pipe *p, char *err, size_t errlen)
{
	struct arc_dp_cpl c;
	int r, fail = 0;

	for (int k = 0; k < PIPE_TX; k++) {
		if (p->tx_id[k] < 0)
			continue;
		r = op_wait(p, p->tx_id[k], "sending to", p->tx_to[k], &c,
		    fail ? NULL : err, fail ? 0 : errlen);
		p->tx_id[k] = -1;
		if (r < 0 && !fail)
			fail = r;
	}
	return fail;
}

/* Receives exactly n values from stage `from` into p->rx. */
static int
recv_from(struct pipe *p, int from, size_t n, const char *what, char *err,
    size_t errlen)
{
	struct arc_dp_cpl c;
	int r;

	r = op_wait(p, post(p, ARC_DP_RECV, p->rx, p->act, p->nodes[from]),
	    what, from, &c, err, errlen);
	if (r < 0)
		return r;
	if (c.count != n) {
		snprintf(err, errlen, "%s stage %d (node %u): %llu values, "
		    "expected %zu (do both stages run the same job?)", what,
		    from, p->nodes[from], (unsigned long long)c.count, n);
		return -EPROTO;
	}
	return 0;
}

/* Sums buf[count] over group g (ours: the stages; dgroup: replicas). */
static int
allreduce_in(struct pipe *p, uint16_t g, float *buf, size_t count,
    char *err, size_t errlen)
{
	struct arc_dp_op op = { .opcode = ARC_DP_ALLREDUCE, .group = g,
	    .buf = buf, .count = count, .divisor = 1.0f };
	struct arc_dp_cpl c;

	return op_wait(p, arc_dp_post(p->dp, &op), p->tensor ||
	    (p->K > 1 && g == p->tgroup) ? "all-reduce over the tensor group" :
	    g == p->group ? "all-reduce over the stages" : "gradient "
	    "all-reduce over the replicas", -1, &c, err, errlen);
}

int
pipe_allreduce(struct pipe *p, uint16_t g, float *buf, size_t count,
    char *err, size_t errlen)
{
	return allreduce_in(p, g, buf, count, err, errlen);
}

static int
allreduce(struct pipe *p, size_t count, char *err, size_t errlen)
{
	return allreduce_in(p, p->group, p->red, count, err, errlen);
}

/* Floats holding integers below 2^16 add up exactly. */
static void
put_u48(float *f, uint64_t v)
{
	f[0] = (float)(v & 0xffff);
	f[1] = (float)((v >> 16) & 0xffff);
	f[2] = (float)((v >> 32) & 0xffff);
}

static uint64_t
get_u48(const float *f)
{
	return (uint64_t)f[0] | (uint64_t)f[1] << 16 | (uint64_t)f[2] << 32;
}

/*
 * Every member of group g (n of them, we are number me, nodes[]) says its
 * step and the job's fingerprint in its own slot.
 */
static int
agree_in(struct pipe *p, uint16_t g, int n, int me, const uint32_t *nodes,
    const char *who, uint64_t step, char *err, size_t errlen)
{
	float *f = p->red;
	int r;

	memset(f, 0, 5 * (size_t)n * sizeof(float));
	put_u48(f + 5 * me, step);
	f[5 * me + 3] = (float)(p->print & 0xffff);
	f[5 * me + 4] = (float)(p->print >> 16);
	if ((r = allreduce_in(p, g, f, 5 * (size_t)n, err, errlen)) < 0)
		return r;
	for (int i = 0; i < n; i++) {
		uint32_t pr = (uint32_t)f[5 * i + 3] |
		    (uint32_t)f[5 * i + 4] << 16;
		uint64_t st = get_u48(f + 5 * i);

		if (pr != p->print) {
			snprintf(err, errlen, "%s %d (node %u) runs another "
			    "job: its model, batch, optimizer, stages or blocks "
			    "differ from this stage's", who, i, nodes[i]);
			return -EINVAL;
		}
		if (st != step) {
			snprintf(err, errlen, "%s %d (node %u) starts at "
			    "step %llu, this stage at step %llu: their "
			    "checkpoints are of different steps (give every "
			    "stage the checkpoint of one step, or none)", who, i,
			    nodes[i], (unsigned long long)st,
			    (unsigned long long)step);
			return -EINVAL;
		}
	}
	return 0;
}

int
pipe_agree(struct pipe *p, uint64_t step, char *err, size_t errlen)
{
	int r;

	if ((r = agree_in(p, p->group, p->S, p->s, p->nodes, p->tensor ?
	    "tensor rank" : "stage", step, err, errlen)) < 0)
		return r;
	if (p->K > 1 && !p->tensor && (r = agree_in(p, p->tgroup, p->K, p->k,
	    p->tnodes, "tensor rank", step, err, errlen)) < 0)
		return r;
	if (p->R == 1)
		return 0;
	return agree_in(p, p->dgroup, p->R, p->r, p->peers, "replica", step,
	    err, errlen);
}

/*
 * Keeps of mine[*n] (newest first) the steps every member of group g (m
 * of them, we are number me) lists too; *some: any member listed any
 * step, or extra (summed over the group, after the lists) is non-zero.
 */
static int
common_in(struct pipe *p, uint16_t g, int m, int me, uint64_t *mine,
    int *n, float extra, int *some, char *err, size_t errlen)
{
	size_t per = 3 * PIPE_RESUME_STEPS;
	float *f = p->red;
	int r, kept = 0;

	memset(f, 0, (per * (size_t)m + 1) * sizeof(float));
	for (int i = 0; i < *n; i++)
		put_u48(f + per * (size_t)me + 3 * (size_t)i, mine[i]);
	f[per * (size_t)m] = extra;
	if ((r = allreduce_in(p, g, f, per * (size_t)m + 1, err, errlen)) < 0)
		return r;
	*some = f[per * (size_t)m] > 0.5f;
	for (int j = 0; j < m; j++)
		*some |= get_u48(f + per * (size_t)j) != 0;
	for (int i = 0; i < *n; i++) {
		int all = 1;

		for (int j = 0; j < m && all; j++) {
			int has = 0;

			for (int k = 0; k < PIPE_RESUME_STEPS && !has; k++)
				has = get_u48(f + per * (size_t)j + 3 *
				    (size_t)k) == mine[i];
			all = has;
		}
		if (all)
			mine[kept++] = mine[i];
	}
	*n = kept;
	return 0;
}

int
pipe_resume(struct pipe *p, const char *dir, struct gpt *m, struct adamw *o,
    struct trainer_state *ts, int rc, char *err, size_t errlen)
{
	uint64_t mine[PIPE_RESUME_STEPS], list[PIPE_RESUME_STEPS];
	uint64_t loaded = rc == 0 ? ts->step : 0, common;
	int n = 0, k, some = 0, r;

	if (rc == 0 && (k = ckpt_list(dir, list, PIPE_RESUME_STEPS)) > 0)
		for (int i = 0; i < k; i++)
			if (list[i] <= loaded && list[i] > 0)
				mine[n++] = list[i];
	if ((r = common_in(p, p->group, p->S, p->s, mine, &n, 0, &some, err,
	    errlen)) < 0)
		return r;
	/* a stage's tensor ranks: each puts its pipeline's common steps */
	if (p->K > 1 && !p->tensor && (r = common_in(p, p->tgroup, p->K, p->k,
	    mine, &n, some ? 1.0f : 0.0f, &some, err, errlen)) < 0)
		return r;
	/* replicas: each puts its pipeline's common steps, and whether
	   any of its stages had one */
	if (p->R > 1 && (r = common_in(p, p->dgroup, p->R, p->r, mine, &n,
	    some ? 1.0f : 0.0f, &some, err, errlen)) < 0)
		return r;
	common = n > 0 ? mine[0] : 0;
	if (common == 0 && some) {
		/* some have checkpoints, of no step all have: every stage
		   says so (some is the same everywhere) */
		const char *unit = p->tensor ? "tensor rank" : "stage";
		char mine_s[64] = "none";

		if (loaded > 0)
			snprintf(mine_s, sizeof(mine_s), "step %llu at newest",
			    (unsigned long long)loaded);
		snprintf(err, errlen, "no checkpoint step that every %s%s "
		    "has (this %s: %s in %s; the %d newest of each "
		    "compared): give every %s checkpoints of one step, or "
		    "remove them all to start over", unit, p->R > 1 ?
		    " of every replica" : "", unit, mine_s, dir,
		    PIPE_RESUME_STEPS, unit);
		return -ESRCH;
	}
	if (common == loaded)
		return rc;
	log_warnx("%s: falling back from step %llu to step %llu, the "
	    "newest checkpoint every %s has", p->tensor ? "tensor parallel" :
	    "pipeline", (unsigned long long)loaded,
	    (unsigned long long)common, p->tensor ? "rank" : "stage");
	return train_load_at(dir, common, m, o, ts, err, errlen);
}

int
pipe_step(struct pipe *p, struct gpt *m, const struct dataset *d,
    struct rng *data_rng, int *in, int *tg, float clip, float stop,
    struct pipe_result *res, char *err, size_t errlen)
{
	int S = p->S, s = p->s, T = p->T, C = p->C, M = p->M;
	int B = p->G / M, first = s == 0, last = s == S - 1;
	struct rng r0 = *data_rng, r;
	size_t VC = (size_t)p->V * (size_t)C, n = (size_t)B * T * C;
	float loss = 0;	/* float, in micro-batch order: the single node's sum */
	double ss = 0;
	float scale = (float)B / (float)p->Gall;
	int rc;

	gpt_zero_grad(m);
	m->tp_err = 0;
	r = r0;
	for (int k = 0; k < p->nsched; k++) {
		int i = p->sched[k].micro;

		/* a failed sum over the stage's tensor ranks: no more waits */
		if (m->tp_err != 0) {
			snprintf(err, errlen, "%s", p->why);
			return m->tp_err;
		}
		gpt_slot(m, i % p->nslots);
		if (p->sched[k].kind == PIPE_F) {
			/* micro-batch i's rows of the step's batch */
			r = r0;
			data_train_batch_part(d, &r, p->Gall, p->first + i * B,
			    B, T, in, tg);
			if (!first && (rc = recv_from(p, s - 1, n,
			    "receiving activations from", err, errlen)) < 0)
				return rc;
			if (gpt_stage_forward(m, in, p->rx, tg, B, T) < 0) {
				snprintf(err, errlen, "forward failed: out of "
				    "memory");
				return -ENOMEM;
			}
			if (last)
				loss += m->loss * scale;
			else if ((rc = send_to(p, s + 1, gpt_stage_out(m), n,
			    err, errlen)) < 0)
				return rc;
		} else {
			if (!last && (rc = recv_from(p, s + 1, n,
			    "receiving gradients from", err, errlen)) < 0)
				return rc;
			/*
			 * replicas: in the step's last backward each block's
			 * all-reduce goes as soon as backward is past it
			 */
			m->grad_ready = p->R > 1 && p->overlap &&
			    k == p->nsched - 1 ? dist_layer_ready : NULL;
			m->grad_ready_arg = &p->rep;
			p->rep.model = m;
			gpt_stage_backward(m, p->rx, scale);
			m->grad_ready = NULL;
			if (!first && (rc = send_to(p, s - 1, gpt_stage_din(m),
			    n, err, errlen)) < 0)
				return rc;
		}
	}
	*data_rng = r;
	if (m->tp_err != 0) {
		snprintf(err, errlen, "%s", p->why);
		return m->tp_err;
	}
	if ((rc = send_drain(p, err, errlen)) < 0)
		return rc;

	/*
	 * (0) replicas: every stage sums its gradients with the same stage
	 * of the other pipelines (each scaled by its rows of all of them),
	 * the loss and stop with them; the ring hands every replica the same
	 * bits, so what follows is the same on every replica.
	 */
	if (p->R > 1) {
		int stop_all = 0;

		p->rep.model = m;
		if (!last)
			loss = 0;
		if ((rc = dist_step_finish(&p->rep, m, &loss, stop > 0.5f,
		    &stop_all, err, errlen)) < 0)
			return rc;
		stop = stop_all ? 1.0f : 0.0f;
	}

	/* (1) the tied embedding's gradient, the loss and stop */
	if (m->sizes[0] > 0)
		memcpy(p->red, m->g.wte, VC * sizeof(float));
	else
		memset(p->red, 0, VC * sizeof(float));
	p->red[VC] = last ? loss : 0.0f;
	p->red[VC + 1] = stop;
	if ((rc = allreduce(p, VC + 2, err, errlen)) < 0)
		return rc;
	if (m->sizes[0] > 0)
		memcpy(m->g.wte, p->red, VC * sizeof(float));
	res->loss = p->red[VC];
	res->stop = p->red[VC + 1] > 0.5f;

	/*
	 * (2) the global norm: each stage's sum of squares as a float pair
	 * in its own slot (zeros elsewhere add exactly), summed in stage
	 * order in double on every stage.  wte counts once: on the first.
	 * Tensor ranks: first their shards' squares summed over the stage's
	 * ranks (the whole tensors' count once, the same on each), and stop,
	 * so that every rank of every stage has it.
	 */
	if (p->K > 1) {
		double shard, whole, wte = 0;
		int K = p->K;

		tp_sq_sums(m, &shard, &whole);
		for (size_t k = 0; !first && k < m->sizes[0]; k++)
			wte += (double)m->g.wte[k] * m->g.wte[k];
		memset(p->red, 0, (2 * (size_t)K + 1) * sizeof(float));
		p->red[2 * p->k] = (float)shard;
		p->red[2 * p->k + 1] = (float)(shard - (double)(float)shard);
		p->red[2 * K] = res->stop ? 1.0f : 0.0f;
		if ((rc = allreduce_in(p, p->tgroup, p->red, 2 * (size_t)K + 1,
		    err, errlen)) < 0)
			return rc;
		ss = whole - wte;
		for (int i = 0; i < K; i++)
			ss += (double)p->red[2 * i] + (double)p->red[2 * i + 1];
		res->stop = p->red[2 * K] > 0.5f;
	}
	{
		size_t skip = first ? 0 : m->sizes[0];
		double sum = 0;

		for (size_t k = skip; p->K <= 1 && k < m->nparams; k++)
			ss += (double)m->grads[k] * m->grads[k];
		memset(p->red, 0, 2 * (size_t)S * sizeof(float));
		p->red[2 * s] = (float)ss;
		p->red[2 * s + 1] = (float)(ss - (double)(float)ss);
		if ((rc = allreduce(p, 2 * (size_t)S, err, errlen)) < 0)
			return rc;
		for (int i = 0; i < S; i++)
			sum += (double)p->red[2 * i] + (double)p->red[2 * i + 1];
		res->norm = (float)sqrt(sum);
	}
	grad_scale_to(m->grads, m->nparams, clip, res->norm);
	p->steps++;
	return 0;
}

int
pipe_eval(struct pipe *p, struct gpt *m, const struct dataset *d, int iters,
    int *in, int *tg, float *val, char *err, size_t errlen)
{
	int s = p->s, T = p->T, B = p->EB, rc;
	size_t n = (size_t)B * T * p->C;
	double sum = 0;

	m->training = 0;
	m->tp_err = 0;
	gpt_slot(m, 0);
	for (int i = 0; i < iters; i++) {
		data_val_batch(d, i, B, T, in, tg);
		if (s > 0 && (rc = recv_from(p, s - 1, n, "receiving "
		    "activations from", err, errlen)) < 0)
			goto out;
		if (gpt_stage_forward(m, in, p->rx, tg, B, T) < 0) {
			snprintf(err, errlen, "forward failed: out of memory");
			rc = -ENOMEM;
			goto out;
		}
		if (s == p->S - 1)
			sum += m->loss;
		else if ((rc = send_to(p, s + 1, gpt_stage_out(m), n, err,
		    errlen)) < 0)
			goto out;
	}
	if (m->tp_err != 0) {
		snprintf(err, errlen, "%s", p->why);
		rc = m->tp_err;
		goto out;
	}
	if ((rc = send_drain(p, err, errlen)) < 0)
		goto out;
	p->red[0] = s == p->S - 1 ? (float)(sum / iters) : 0.0f;
	if ((rc = allreduce(p, 1, err, errlen)) < 0)
		goto out;
	*val = p->red[0];
out:
	m->training = 1;
	return rc;
}
