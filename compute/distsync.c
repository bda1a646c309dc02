/*
 * distsync.c: replicas agree on one training state before their first
 * step (ARCHITECTURE.md §9: a restarted worker "reloads its shard, from a
 * local checkpoint or a replica peer, and rejoins").
 *
 * Data parallel needs every replica to start a step with the same bits:
 * parameters, AdamW moments, step and the shared data generator.  Each
 * replica resumes from its own checkpoint directory, and those need not
 * agree: a node whose disk was wiped or replaced joins with none, a node
 * that was down joins with an older one, one that lost its newest file
 * falls back to the one before.  Left alone, such replicas would train
 * different models side by side and average gradients of different
 * weights, without any error.
 *
 * So before the first step every replica says, in one all-gather, which
 * model it holds (parameter count, shape), which step, and a CRC32C of its
 * parameters and moments.  A replica whose model differs stops the job
 * with a message naming it (every replica sees the same table, so all
 * stop).  Otherwise the newest step wins (the lowest rank among those that
 * hold it): if any replica differs from it, the winner broadcasts its
 * checkpoint segments (train_segs(): exactly what a checkpoint holds)
 * through the gradient buffer of the arena, and the others take them.
 * Work done survives as long as one replica kept it.
 *
 * Each replica keeps its own dropout generator (seeded by rank); the data
 * generator is the winner's, which is the same on every replica that
 * reached that step.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "arceus_dp.h"
#include "compute.h"
#include "crc32c.h"
#include "log.h"

#define SYNC_MAGIC	0x41524353u	/* "ARCS" */
#define SYNC_WORDS	8		/* per replica, in the all-gather */

/* one replica's row of the table */
struct sync_info {
	uint32_t	magic;
	uint32_t	node;
	uint32_t	step_lo, step_hi;
	uint32_t	nparams;
	uint32_t	shape;		/* CRC32C of L, NH, C, maxT, V */
	uint32_t	crc;		/* of parameters and moments */
	uint32_t	has;		/* 1: resumed or trained, 0: fresh */
};
_Static_assert(sizeof(struct sync_info) == SYNC_WORDS * 4, "sync_info");

static uint64_t
info_step(const struct sync_info *s)
{
	return (uint64_t)s->step_hi << 32 | s->step_lo;
}

/* Posts one collective on buf and waits for it. @return 0 or -errno */
static int
sync_op(struct dist *d, enum arc_dp_opcode opc, uint32_t root, size_t count,
    char *err, size_t errlen)
{
	struct arc_dp_op op = { .opcode = opc, .comp = ARC_DP_COMP_NONE,
	    .group = d->group, .peer = root, .buf = d->buf, .count = count };
	struct arc_dp_cpl c;
	char why[128];
	int64_t id;
	int r;

	if ((id = arc_dp_post(d->dp, &op)) < 0) {
		snprintf(err, errlen, "%s", strerror((int)-id));
		return (int)id;
	}
	if ((r = arc_dp_wait(d->dp, (uint64_t)id, -1, &c)) < 0) {
		snprintf(err, errlen, "%s%s", r == -ENOTCONN ? "dataplane "
		    "unreachable: " : "", strerror(-r));
		return r;
	}
	if (c.status != 0) {
		snprintf(err, errlen, "%s", arc_dp_strerror(&c, why,
		    sizeof(why)));
		d->failed_peer = c.peer;
		return c.status;
	}
	return 0;
}

int
dist_sync_state(struct dist *d, struct gpt *m, struct adamw *o,
    struct trainer_state *ts, int has_state, struct rng *data_rng,
    char *err, size_t errlen)
{
	struct ckpt_seg segs[4];
	struct sync_info me = { 0 }, all[DIST_MAX_MEMBERS];
	size_t cap = d->count * sizeof(float), words;
	uint64_t best = 0, mine = ts->step;
	uint64_t keep_drop[2];
	int nseg = train_segs(m, o, ts, segs), root = -1, differ = 0, r;
	char e[256];

	if (d->world < 2)
		return 0;
	words = (size_t)d->world * SYNC_WORDS;
	if (d->world > DIST_MAX_MEMBERS || words > d->count) {
		snprintf(err, errlen, "%d replicas: too many to compare state",
		    d->world);
		return -E2BIG;
	}
	me.magic = SYNC_MAGIC;
	me.node = d->node;
	me.step_lo = (uint32_t)mine;
	me.step_hi = (uint32_t)(mine >> 32);
	me.nparams = (uint32_t)m->nparams;
	me.shape = crc32c(0, ts->shape, sizeof(ts->shape));
	me.has = has_state != 0;
	for (int i = 0; i < 3; i++)	/* params, adam_m, adam_v */
		me.crc = crc32c(me.crc, segs[i].data, segs[i].len);
	me.crc = crc32c(me.crc, data_rng->s, sizeof(data_rng->s));

	/* the table: our row at our rank, everyone's after the all-gather */
	memset(d->buf, 0, words * sizeof(float));
	memcpy(d->buf + (size_t)d->rank * SYNC_WORDS, &me, sizeof(me));
	if ((r = sync_op(d, ARC_DP_ALLGATHER, 0, words, e, sizeof(e))) < 0) {
		snprintf(err, errlen, "comparing state with the other "
		    "replicas: %s", e);
		return r;
	}
	memcpy(all, d->buf, (size_t)d->world * sizeof(all[0]));
	for (int i = 0; i < d->world; i++) {
		const struct sync_info *s = &all[i];

		if (s->magic != SYNC_MAGIC) {
			snprintf(err, errlen, "replica %d sent no state (a "
			    "worker of another version?)", i);
			return -EPROTO;
		}
		if (s->nparams != me.nparams || s->shape != me.shape) {
			snprintf(err, errlen, "node %u (replica %d) trains "
			    "another model (%u parameters against our %u): "
			    "every replica needs the same [model]", s->node, i,
			    s->nparams, me.nparams);
			return -EINVAL;
		}
		if (root < 0 || info_step(s) > best) {
			best = info_step(s);
			root = i;
		}
	}
	for (int i = 0; i < d->world; i++)
		differ += info_step(&all[i]) != best ||
		    all[i].crc != all[root].crc;
	if (differ == 0)
		return 0;

	if (d->rank == root)
		log_info("data parallel: %d replica(s) hold another state; "
		    "handing them step %" PRIu64 "'s", differ, best);
	else if (mine != best || me.crc != all[root].crc)
		log_info("data parallel: taking step %" PRIu64 "'s state from "
		    "node %u (ours: %s%" PRIu64 "%s)", best, all[root].node,
		    has_state ? "step " : "none, ", mine, mine == best ?
		    ", with other values" : "");
	/*
	 * The winner's segments, through the arena buffer, a piece at a
	 * time; everyone posts the same broadcasts in the same order.
	 */
	/* the trainer segment as a checkpoint has it (train.c checkpoint()) */
	memcpy(keep_drop, ts->drop_rng, sizeof(keep_drop));
	memcpy(ts->data_rng, data_rng->s, sizeof(ts->data_rng));
	ts->adam_t = o->t;
	for (int i = 0; i < nseg; i++) {
		char *p = segs[i].data;

		for (size_t off = 0; off < segs[i].len; off += cap) {
			size_t len = segs[i].len - off < cap ?
			    segs[i].len - off : cap;

			if (d->rank == root)
				memcpy(d->buf, p + off, len);
			if ((r = sync_op(d, ARC_DP_BROADCAST,
			    all[root].node, (len + 3) / 4, e, sizeof(e))) < 0) {
				snprintf(err, errlen, "receiving step %" PRIu64
				    "'s state from node %u: %s", best,
				    all[root].node, e);
				return r;
			}
			if (d->rank != root)
				memcpy(p + off, d->buf, len);
		}
	}
	/* and taken as train_load() takes one */
	memcpy(ts->drop_rng, keep_drop, sizeof(keep_drop));
	memcpy(data_rng->s, ts->data_rng, sizeof(data_rng->s));
	o->t = ts->adam_t;
	return d->rank == root ? 1 : 2;
}
