/*
 * raftfsm.c: the replicated state machine and the leader's decisions;
 * see raftfsm.h.  No I/O: runs under libraft's fixture in tests and under
 * its libuv backend in the daemon.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctlmsg.h"
#include "raftfsm.h"

#define HDR_LEN		8
#define SNAP_MAGIC	0x41525350u	/* "ARSP" */
#define SNAP_EXTRA	64		/* job and plan fields */

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, v >> 32);
	put32(p + 4, v & 0xffffffffu);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static int
entry_new(struct raft_buffer *b, int type, size_t body)
{
	uint8_t *p;

	/* raft wants 8-byte multiples: pad with zeros */
	b->len = (HDR_LEN + body + 7) & ~(size_t)7;
	if ((b->base = raft_calloc(1, b->len)) == NULL)
		return -ENOMEM;
	p = b->base;
	put32(p, EPOCH_MAGIC);
	p[4] = EPOCH_VERSION;
	p[5] = (uint8_t)type;
	return 0;
}

int
entry_epoch(struct raft_buffer *b, uint64_t epoch, int64_t resume,
    const uint32_t *ids, int n, const struct epoch_plan *plan)
{
	size_t tl = plan && plan->text ? strlen(plan->text) : 0;
	uint64_t bits;
	uint8_t *p;
	int rc;

	if (n < 0 || n > EPOCH_MAX_MEMBERS)
		return -EINVAL;
	if (tl >= PLAN_TEXT_MAX)
		tl = PLAN_TEXT_MAX - 1;
	size_t lw = plan && plan->layout ? (size_t)plan->layout_len : 0;

	if (lw > PLAN_LAYOUT_MAX)
		return -EINVAL;
	if ((rc = entry_new(b, ENTRY_EPOCH, 20 + 4 * (size_t)n + 32 + tl + 4 +
	    4 * lw)) < 0)
		return rc;
	p = (uint8_t *)b->base + HDR_LEN;
	put64(p, epoch);
	put64(p + 8, (uint64_t)resume);
	put32(p + 16, (uint32_t)n);
	for (int i = 0; i < n; i++)
		put32(p + 20 + 4 * i, ids[i]);
	p += 20 + 4 * (size_t)n;
	if (plan != NULL) {
		put64(p, plan->job_seq);
		put32(p + 8, (uint32_t)plan->tp);
		put32(p + 12, (uint32_t)plan->pp);
		put32(p + 16, (uint32_t)plan->dp);
		memcpy(&bits, &plan->step, sizeof(bits));
		put64(p + 24, bits);
	}
	put32(p + 20, (uint32_t)tl);
	if (tl)
		memcpy(p + 32, plan->text, tl);
	p += 32 + tl;
	put32(p, (uint32_t)lw);
	for (size_t i = 0; i < lw; i++)
		put32(p + 4 + 4 * i, plan->layout[i]);
	return 0;
}

int
entry_job(struct raft_buffer *b, int running, const char *name,
    const struct job_params *jp)
{
	uint8_t *p;
	int rc;

	if ((rc = entry_new(b, ENTRY_JOB, 4 + JOB_NAME_LEN + 24)) < 0)
		return rc;
	p = (uint8_t *)b->base + HDR_LEN;
	p[0] = running ? 1 : 0;
	p[1] = jp != NULL ? (uint8_t)jp->flags : 0;	/* JOB_F_*; 0 before */
	strncpy((char *)p + 4, name, JOB_NAME_LEN - 1);
	p += 4 + JOB_NAME_LEN;
	if (jp != NULL) {
		put32(p, jp->n_layer);
		put32(p + 4, jp->n_head);
		put32(p + 8, jp->n_embd);
		put32(p + 12, jp->block_size);
		put32(p + 16, jp->micro_batch);
		put32(p + 20, jp->global_batch);
	}
	return 0;
}

int
entry_ckpt(struct raft_buffer *b, int64_t step)
{
	int rc;

	if ((rc = entry_new(b, ENTRY_CKPT, 8)) < 0)
		return rc;
	put64((uint8_t *)b->base + HDR_LEN, (uint64_t)step);
	return 0;
}

static int
u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* @return entry type, or -EBADMSG / -ESTALE (applied as a no-op). */
static int
apply_entry(struct cluster_state *st, const uint8_t *p, size_t len)
{
	if (len < HDR_LEN || get32(p) != EPOCH_MAGIC || p[4] != EPOCH_VERSION)
		return -EBADMSG;
	switch (p[5]) {
	case ENTRY_EPOCH: {
		const uint8_t *q;
		uint64_t epoch, bits;
		uint32_t n, tl, lw;

		if (len < HDR_LEN + 20)
			return -EBADMSG;
		epoch = get64(p + HDR_LEN);
		n = get32(p + HDR_LEN + 16);
		if (n > EPOCH_MAX_MEMBERS ||
		    len < HDR_LEN + 20 + 4 * (size_t)n + 32)
			return -EBADMSG;
		q = p + HDR_LEN + 20 + 4 * (size_t)n;
		tl = get32(q + 20);
		if (tl >= PLAN_TEXT_MAX ||
		    len < HDR_LEN + 20 + 4 * (size_t)n + 32 + tl + 4)
			return -EBADMSG;
		lw = get32(q + 32 + tl);
		if (lw > PLAN_LAYOUT_MAX || len < HDR_LEN + 20 + 4 * (size_t)n +
		    32 + tl + 4 + 4 * (size_t)lw)
			return -EBADMSG;
		if (epoch != st->epoch + 1)
			return -ESTALE;
		st->epoch = epoch;
		st->resume_step = (int64_t)get64(p + HDR_LEN + 8);
		st->nmembers = (int)n;
		for (uint32_t i = 0; i < n; i++)
			st->members[i] = get32(p + HDR_LEN + 20 + 4 * i);
		qsort(st->members, n, sizeof(uint32_t), u32_cmp);
		st->plan_job_seq = get64(q);
		st->plan_tp = (int)get32(q + 8);
		st->plan_pp = (int)get32(q + 12);
		st->plan_dp = (int)get32(q + 16);
		bits = get64(q + 24);
		memcpy(&st->plan_step, &bits, sizeof(bits));
		st->plan_len = (int)tl;
		memcpy(st->plan, q + 32, tl);
		st->plan[tl] = '\0';
		st->layout_len = (int)lw;
		for (uint32_t i = 0; i < lw; i++)
			st->layout[i] = get32(q + 36 + tl + 4 * i);
		return ENTRY_EPOCH;
	}
	case ENTRY_JOB: {
		const uint8_t *q = p + HDR_LEN + 4 + JOB_NAME_LEN;

		if (len < HDR_LEN + 4 + JOB_NAME_LEN + 24)
			return -EBADMSG;
		st->job_running = p[HDR_LEN] != 0;
		st->jp.flags = p[HDR_LEN + 1];
		memcpy(st->job, p + HDR_LEN + 4, JOB_NAME_LEN);
		st->job[JOB_NAME_LEN - 1] = '\0';
		st->jp.n_layer = get32(q);
		st->jp.n_head = get32(q + 4);
		st->jp.n_embd = get32(q + 8);
		st->jp.block_size = get32(q + 12);
		st->jp.micro_batch = get32(q + 16);
		st->jp.global_batch = get32(q + 20);
		st->job_seq++;
		if (!st->job_running) {
			st->plan_len = 0;
			st->plan[0] = '\0';
			st->plan_tp = st->plan_pp = st->plan_dp = 0;
			st->layout_len = 0;
		}
		return ENTRY_JOB;
	}
	case ENTRY_CKPT:
		if (len < HDR_LEN + 8)
			return -EBADMSG;
		st->ckpt_step = (int64_t)get64(p + HDR_LEN);
		return ENTRY_CKPT;
	}
	return -EBADMSG;
}

static int
fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	struct cluster_fsm *f = fsm->data;
	int type = apply_entry(&f->st, buf->base, buf->len);

	f->st.applied++;
	if (type == -ESTALE)
		f->st.stale++;
	else if (type < 0)
		f->st.bad++;
	/* business errors go to the result, never to raft */
	*result = (void *)(intptr_t)(type < 0 ? type : 0);
	if (type > 0 && f->applied)
		f->applied(f->ctx, type, &f->st);
	return 0;
}

/* Snapshot: the whole state, fixed layout. */
static int
fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
    unsigned *n_bufs)
{
	struct cluster_fsm *f = fsm->data;
	const struct cluster_state *st = &f->st;
	size_t len = 48 + JOB_NAME_LEN + 4 * (size_t)st->nmembers + SNAP_EXTRA +
	    (size_t)st->plan_len + 4 + 4 * (size_t)st->layout_len;
	uint8_t *p, *q;
	uint64_t bits;

	if ((*bufs = raft_malloc(sizeof(**bufs))) == NULL)
		return RAFT_NOMEM;
	if ((p = raft_calloc(1, len)) == NULL) {
		raft_free(*bufs);
		return RAFT_NOMEM;
	}
	put32(p, SNAP_MAGIC);
	put32(p + 4, (uint32_t)st->nmembers);
	put64(p + 8, st->epoch);
	put64(p + 16, (uint64_t)st->resume_step);
	put64(p + 24, (uint64_t)st->ckpt_step);
	put64(p + 32, st->stale);
	p[40] = (uint8_t)st->job_running;
	p[41] = (uint8_t)st->jp.flags;
	memcpy(p + 48, st->job, JOB_NAME_LEN);
	for (int i = 0; i < st->nmembers; i++)
		put32(p + 48 + JOB_NAME_LEN + 4 * i, st->members[i]);
	q = p + 48 + JOB_NAME_LEN + 4 * (size_t)st->nmembers;
	put32(q, st->jp.n_layer);
	put32(q + 4, st->jp.n_head);
	put32(q + 8, st->jp.n_embd);
	put32(q + 12, st->jp.block_size);
	put32(q + 16, st->jp.micro_batch);
	put32(q + 20, st->jp.global_batch);
	put64(q + 24, st->job_seq);
	put64(q + 32, st->plan_job_seq);
	put32(q + 40, (uint32_t)st->plan_tp);
	put32(q + 44, (uint32_t)st->plan_pp);
	put32(q + 48, (uint32_t)st->plan_dp);
	put32(q + 52, (uint32_t)st->plan_len);
	memcpy(&bits, &st->plan_step, sizeof(bits));
	put64(q + 56, bits);
	memcpy(q + SNAP_EXTRA, st->plan, (size_t)st->plan_len);
	q += SNAP_EXTRA + st->plan_len;
	put32(q, (uint32_t)st->layout_len);
	for (int i = 0; i < st->layout_len; i++)
		put32(q + 4 + 4 * i, st->layout[i]);
	(*bufs)[0].base = p;
	(*bufs)[0].len = len;
	*n_bufs = 1;
	return 0;
}

static int
fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct cluster_fsm *f = fsm->data;
	struct cluster_state *st = &f->st;
	const uint8_t *p = buf->base, *q;
	uint32_t n, tl, lw;
	uint64_t bits;

	if (buf->len < 48 + JOB_NAME_LEN || get32(p) != SNAP_MAGIC)
		return RAFT_CORRUPT;
	n = get32(p + 4);
	if (n > EPOCH_MAX_MEMBERS ||
	    buf->len < 48 + JOB_NAME_LEN + 4 * (size_t)n + SNAP_EXTRA)
		return RAFT_CORRUPT;
	q = p + 48 + JOB_NAME_LEN + 4 * (size_t)n;
	tl = get32(q + 52);
	if (tl >= PLAN_TEXT_MAX || buf->len < 48 + JOB_NAME_LEN +
	    4 * (size_t)n + SNAP_EXTRA + tl + 4)
		return RAFT_CORRUPT;
	lw = get32(q + SNAP_EXTRA + tl);
	if (lw > PLAN_LAYOUT_MAX || buf->len < 48 + JOB_NAME_LEN +
	    4 * (size_t)n + SNAP_EXTRA + tl + 4 + 4 * (size_t)lw)
		return RAFT_CORRUPT;
	st->nmembers = (int)n;
	st->epoch = get64(p + 8);
	st->resume_step = (int64_t)get64(p + 16);
	st->ckpt_step = (int64_t)get64(p + 24);
	st->stale = get64(p + 32);
	st->job_running = p[40];
	st->jp.flags = p[41];
	memcpy(st->job, p + 48, JOB_NAME_LEN);
	st->job[JOB_NAME_LEN - 1] = '\0';
	for (uint32_t i = 0; i < n; i++)
		st->members[i] = get32(p + 48 + JOB_NAME_LEN + 4 * i);
	st->jp.n_layer = get32(q);
	st->jp.n_head = get32(q + 4);
	st->jp.n_embd = get32(q + 8);
	st->jp.block_size = get32(q + 12);
	st->jp.micro_batch = get32(q + 16);
	st->jp.global_batch = get32(q + 20);
	st->job_seq = get64(q + 24);
	st->plan_job_seq = get64(q + 32);
	st->plan_tp = (int)get32(q + 40);
	st->plan_pp = (int)get32(q + 44);
	st->plan_dp = (int)get32(q + 48);
	st->plan_len = (int)tl;
	bits = get64(q + 56);
	memcpy(&st->plan_step, &bits, sizeof(bits));
	memcpy(st->plan, q + SNAP_EXTRA, tl);
	st->plan[tl] = '\0';
	st->layout_len = (int)lw;
	for (uint32_t i = 0; i < lw; i++)
		st->layout[i] = get32(q + SNAP_EXTRA + tl + 4 + 4 * i);
	raft_free(buf->base);	/* restore owns the buffer */
	return 0;
}

void
cluster_fsm_init(struct cluster_fsm *f, fsm_applied_fn *applied, void *ctx)
{
	memset(f, 0, sizeof(*f));
	f->fsm.version = 1;
	f->fsm.data = f;
	f->fsm.apply = fsm_apply;
	f->fsm.snapshot = fsm_snapshot;
	f->fsm.restore = fsm_restore;
	f->applied = applied;
	f->ctx = ctx;
}

/* ---- decisions ------------------------------------------------------- */

static int
is_alive(const uint32_t *alive, int n, uint32_t id)
{
	return bsearch(&id, alive, (size_t)n, sizeof(*alive), u32_cmp) != NULL;
}

static const struct raft_server *
conf_find(const struct raft_configuration *c, uint32_t id)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->servers[i].id == id)
			return &c->servers[i];
	return NULL;
}

void
roles_next(const struct raft_configuration *conf, const uint32_t *alive,
    int nalive, int voters, uint32_t self, struct role_change *out)
{
	int av = 0, target = voters < nalive ? voters : nalive;
	const struct raft_server *pick = NULL;

	memset(out, 0, sizeof(*out));
	/* newcomers first, lowest id first (alive is sorted) */
	for (int i = 0; i < nalive; i++)
		if (conf_find(conf, alive[i]) == NULL) {
			out->action = ROLE_ADD;
			out->id = alive[i];
			return;
		}
	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *s = &conf->servers[i];

		if (s->role == RAFT_SPARE && is_alive(alive, nalive,
		    (uint32_t)s->id) && s->id != self) {
			out->action = ROLE_ASSIGN;
			out->id = (uint32_t)s->id;
			out->role = RAFT_STANDBY;
			return;
		}
		if (s->role == RAFT_VOTER && is_alive(alive, nalive,
		    (uint32_t)s->id))
			av++;
	}
	if (av < target) {
		for (unsigned i = 0; i < conf->n; i++) {
			const struct raft_server *s = &conf->servers[i];

			if (s->role == RAFT_STANDBY && is_alive(alive, nalive,
			    (uint32_t)s->id) && (pick == NULL ||
			    s->id < pick->id))
				pick = s;
		}
		if (pick != NULL) {
			out->action = ROLE_ASSIGN;
			out->id = (uint32_t)pick->id;
			out->role = RAFT_VOTER;
			return;
		}
	}
	/* dead voters go once enough alive ones stand */
	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *s = &conf->servers[i];

		if (s->role == RAFT_VOTER && s->id != self &&
		    !is_alive(alive, nalive, (uint32_t)s->id) && av >= target &&
		    av >= 1) {
			out->action = ROLE_REMOVE;
			out->id = (uint32_t)s->id;
			return;
		}
	}
	if (av > target && av > 1) {
		for (unsigned i = 0; i < conf->n; i++) {
			const struct raft_server *s = &conf->servers[i];

			if (s->role == RAFT_VOTER && s->id != self &&
			    is_alive(alive, nalive, (uint32_t)s->id) &&
			    (pick == NULL || s->id > pick->id))
				pick = s;
		}
		if (pick != NULL) {
			out->action = ROLE_ASSIGN;
			out->id = (uint32_t)pick->id;
			out->role = RAFT_STANDBY;
			return;
		}
	}
	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *s = &conf->servers[i];

		if (s->role != RAFT_VOTER && s->id != self &&
		    !is_alive(alive, nalive, (uint32_t)s->id)) {
			out->action = ROLE_REMOVE;
			out->id = (uint32_t)s->id;
			return;
		}
	}
}

int
epoch_needed(const struct cluster_state *st, const uint32_t *alive,
    int nalive)
{
	if (st->epoch == 0 || st->nmembers != nalive)
		return 1;
	if (st->job_running && st->plan_job_seq != st->job_seq)
		return 1;
	return memcmp(st->members, alive, sizeof(uint32_t) *
	    (size_t)nalive) != 0;
}

int
layout_groups(const uint32_t *layout, int len, int tp, int pp, int dp,
    uint32_t self, struct layout_group *out, int max)
{
	int slot = 2 + tp, n = 0;

	if (tp < 1 || tp > 8 || pp < 1 || dp < 1 || (long)dp * pp > 32767 ||
	    ((long)len != (long)dp * pp * slot &&
	    (long)len != (long)dp * pp * slot + 2L * dp))
		return -EINVAL;
	/* data parallel: stage s, rank k, over the replicas */
	for (int s = 0; s < pp; s++)
		for (int k = 0; k < tp; k++) {
			struct layout_group g;
			int mine = 0;

			if (dp < 2 || dp > LAYOUT_GROUP_MAX)
				continue;
			g.id = (uint16_t)(1 + s * 8 + k);
			g.n = dp;
			for (int r = 0; r < dp; r++) {
				g.members[r] = layout[(r * pp + s) * slot + 2 +
				    k];
				mine |= g.members[r] == self;
			}
			if (mine && n < max)
				out[n++] = g;
		}
	/* tensor parallel: the devices of one slot */
	for (int r = 0; r < dp && tp > 1; r++)
		for (int s = 0; s < pp; s++) {
			struct layout_group g;
			int mine = 0;

			g.id = (uint16_t)(32768 + r * pp + s);
			g.n = tp;
			for (int k = 0; k < tp; k++) {
				g.members[k] = layout[(r * pp + s) * slot + 2 +
				    k];
				mine |= g.members[k] == self;
			}
			if (mine && n < max)
				out[n++] = g;
		}
	return n;
}

void
layout_share(const uint32_t *layout, int len, int tp, int pp, int dp,
    uint32_t self, const uint32_t *epoch, int nepoch, struct ctl_share *out)
{
	int slot = 2 + tp;
	long nslot = (long)dp * pp * slot;

	out->status = 0;
	out->tp = (uint32_t)tp;
	out->pp = (uint32_t)pp;
	out->dp = (uint32_t)dp;
	if (layout == NULL || len == 0) {
		out->status = ENOENT;
		return;
	}
	if (tp < 1 || tp > 8 || pp < 1 || dp < 1 || (long)dp * pp > 32767 ||
	    (len != nslot && len != nslot + 2L * dp)) {
		out->status = EINVAL;
		return;
	}
	if (len == nslot) {		/* a plan from before shares */
		out->status = ENOENT;
		return;
	}
	if (tp > 1) {
		/*
		 * tensor-parallel shards (compute/tensor.c): replica r's
		 * ranks at members[r * tp + k]; not inside pipeline stages,
		 * and no standbys (a node outside the plan holds no shard)
		 */
		if (pp > 1) {
			out->status = ENOTSUP;
			return;
		}
		if ((long)dp * tp > CTL_SHARE_MAX) {
			out->status = E2BIG;
			return;
		}
		out->status = ESRCH;
		out->nstandby = 0;
		out->group = 0;
		for (int r = 0; r < dp; r++) {
			out->shares[r] = (int32_t)layout[nslot + 2 * r];
			out->nmicro[r] = (int32_t)layout[nslot + 2 * r + 1];
			for (int k = 0; k < tp; k++) {
				int i = r * tp + k;

				out->members[i] = layout[r * slot + 2 + k];
				if (out->members[i] == self) {
					out->rank = (uint32_t)i;
					out->status = 0;
				}
			}
		}
		return;
	}
	if ((long)dp * pp > CTL_SHARE_MAX || pp > CTL_SHARE_MAX) {
		out->status = E2BIG;
		return;
	}
	if (pp > 1) {		/* stages: every replica split alike */
		out->status = ESRCH;
		out->nstandby = 0;
		/*
		 * the planner's layers are the embedding, the blocks, then the
		 * head: a stage's blocks are its layers less those; a stage
		 * of the embedding or head alone is not one the worker runs
		 */
		for (int s = 0; s < pp; s++) {
			out->layers[s] = (int32_t)layout[s * slot + 1] -
			    (s == 0) - (s == pp - 1);
			if (out->layers[s] < 1) {
				out->status = ENOTSUP;
				return;
			}
		}
		for (int r = 0; r < dp; r++) {
			out->shares[r] = (int32_t)layout[nslot + 2 * r];
			out->nmicro[r] = (int32_t)layout[nslot + 2 * r + 1];
			for (int s = 0; s < pp; s++) {
				int k = r * pp + s;

				if ((int32_t)layout[k * slot + 1] !=
				    (int32_t)layout[s * slot + 1]) {
					out->status = ENOTSUP;
					return;
				}
				out->members[k] = layout[k * slot + 2];
				if (out->members[k] == self) {
					out->rank = (uint32_t)k;
					out->status = 0;
				}
			}
		}
		return;
	}
	out->status = ESRCH;
	out->group = 1;			/* stage 0, tp rank 0: layout_groups */
	for (int r = 0; r < dp; r++) {
		out->members[r] = layout[r * slot + 2];
		out->shares[r] = (int32_t)layout[nslot + 2 * r];
		out->nmicro[r] = (int32_t)layout[nslot + 2 * r + 1];
		if (out->members[r] == self) {
			out->rank = (uint32_t)r;
			out->status = 0;
		}
	}
	/* the epoch's other members, in its order: standbys */
	out->nstandby = 0;
	for (int i = 0; i < nepoch; i++) {
		int in = 0, k = dp + (int)out->nstandby;

		for (int r = 0; r < dp && !in; r++)
			in = out->members[r] == epoch[i];
		if (in || k >= CTL_SHARE_MAX)
			continue;
		out->members[k] = epoch[i];
		out->shares[k] = 0;
		out->nmicro[k] = 0;
		out->nstandby++;
		if (epoch[i] == self) {
			out->rank = (uint32_t)k;
			out->status = 0;
		}
	}
	if (out->nstandby > 0)		/* not layout_groups' group 1 */
		out->group = CTL_SHARE_STANDBY_GROUP;
}
