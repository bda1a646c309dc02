/*
 * check_raftfsm.c: epochs committed through libraft's in-memory fixture
 * (raft/fixture.h), with control's FSM and decisions (control/raftfsm.c):
 * commits reach every member; a new leader after leader loss commits the
 * next epoch; a lost voter is replaced by a standby and removed; a leader
 * cut off in a minority commits nothing and the majority goes on; stale
 * and malformed entries are no-ops; the roles policy on its own.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>
#include <raft/fixture.h>

#include "ctlmsg.h"
#include "raftfsm.h"

#define N	5

static struct raft_fixture F;
static struct cluster_fsm FSM[N];

/* Requests live until the fixture is closed (it may still call back). */
static struct raft_apply applies[16];
static struct raft_change changes[16];
static int napplies, nchanges;

static void
apply_cb(struct raft_apply *req, int status, void *result)
{
	(void)req;
	(void)status;
	(void)result;
}

static void
change_cb(struct raft_change *req, int status)
{
	(void)req;
	(void)status;
}

static void
setup(void)
{
	struct raft_configuration conf;

	/* no-fork runs (valgrind) reuse F: start from zero every time */
	memset(&F, 0, sizeof(F));
	napplies = nchanges = 0;
	ck_assert_int_eq(raft_fixture_initialize(&F), 0);
	for (int i = 0; i < N; i++) {
		cluster_fsm_init(&FSM[i], NULL, NULL);
		ck_assert_int_eq(raft_fixture_grow(&F, &FSM[i].fsm), 0);
		raft_set_pre_vote(raft_fixture_get(&F, (unsigned)i), true);
	}
	/* 3 voters (ids 1-3), 2 standbys (4, 5) */
	ck_assert_int_eq(raft_fixture_configuration(&F, 3, &conf), 0);
	ck_assert_int_eq(raft_fixture_bootstrap(&F, &conf), 0);
	raft_configuration_close(&conf);
	ck_assert_int_eq(raft_fixture_start(&F), 0);
	ck_assert(raft_fixture_step_until_has_leader(&F, 10000));
}

static void
teardown(void)
{
	raft_fixture_close(&F);
}

static void
apply_epoch(unsigned leader, uint64_t epoch, const uint32_t *ids, int n)
{
	struct raft_apply *req = &applies[napplies++ % 16];
	struct raft_buffer b;

	ck_assert_int_eq(entry_epoch(&b, epoch, 100 * (int64_t)epoch, ids, n,
	    NULL), 0);
	ck_assert_int_eq(raft_apply(raft_fixture_get(&F, leader), req, &b, 1,
	    apply_cb), 0);
}

struct want {
	unsigned i;
	uint64_t epoch;
};

static bool
has_epoch(struct raft_fixture *f, void *arg)
{
	struct want *w = arg;

	(void)f;
	return FSM[w->i].st.epoch == w->epoch;
}

static int
wait_epoch(unsigned i, uint64_t epoch, unsigned ms)
{
	struct want w = { i, epoch };

	return raft_fixture_step_until(&F, has_epoch, &w, ms);
}

static void
assert_same(unsigned a, unsigned b)
{
	ck_assert_uint_eq(FSM[a].st.epoch, FSM[b].st.epoch);
	ck_assert_int_eq(FSM[a].st.nmembers, FSM[b].st.nmembers);
	ck_assert_mem_eq(FSM[a].st.members, FSM[b].st.members,
	    sizeof(uint32_t) * (size_t)FSM[a].st.nmembers);
}

START_TEST(test_commit_reaches_all)
{
	uint32_t ids[] = { 5, 3, 1, 2, 4 };
	unsigned l = raft_fixture_leader_index(&F);
	apply_epoch(l, 1, ids, 5);

	for (unsigned i = 0; i < N; i++) {
		ck_assert_msg(wait_epoch(i, 1, 5000), "server %u", i);
		assert_same(i, l);
	}
	ck_assert_uint_eq(FSM[0].st.members[0], 1);	/* sorted */
	ck_assert_uint_eq(FSM[0].st.members[4], 5);
	ck_assert_int_eq(FSM[2].st.resume_step, 100);
}
END_TEST

START_TEST(test_leader_loss)
{
	uint32_t all[] = { 1, 2, 3, 4, 5 }, rest[4];
	unsigned l = raft_fixture_leader_index(&F), l2;
	apply_epoch(l, 1, all, 5);
	int n = 0;

	for (unsigned i = 0; i < N; i++)
		ck_assert(wait_epoch(i, 1, 5000));
	raft_fixture_kill(&F, l);
	ck_assert(raft_fixture_step_until_has_no_leader(&F, 10000));
	ck_assert(raft_fixture_step_until_has_leader(&F, 10000));
	l2 = raft_fixture_leader_index(&F);
	ck_assert_uint_ne(l2, l);
	for (int i = 0; i < 5; i++)
		if ((unsigned)i != l)
			rest[n++] = all[i];
	apply_epoch(l2, FSM[l2].st.epoch + 1, rest, n);
	for (unsigned i = 0; i < N; i++)
		if (i != l)
			ck_assert(wait_epoch(i, 2, 5000));
	/* the old leader comes back and catches up */
	raft_fixture_revive(&F, l);
	ck_assert(wait_epoch(l, 2, 10000));
	for (unsigned i = 0; i < N; i++)
		assert_same(i, l2);
	ck_assert_int_eq(FSM[l].st.nmembers, 4);
}
END_TEST

static void
alive_except(uint32_t dead, uint32_t *alive, int *n)
{
	*n = 0;
	for (uint32_t id = 1; id <= N; id++)
		if (id != dead)
			alive[(*n)++] = id;
}

static void
do_change(unsigned l, const struct role_change *rc)
{
	struct raft_change *req = &changes[nchanges++ % 16];
	struct raft *r = raft_fixture_get(&F, l);

	if (rc->action == ROLE_ASSIGN)
		ck_assert_int_eq(raft_assign(r, req, rc->id, rc->role,
		    change_cb), 0);
	else if (rc->action == ROLE_REMOVE)
		ck_assert_int_eq(raft_remove(r, req, rc->id, change_cb), 0);
	else
		ck_abort_msg("unexpected action %d", rc->action);
}

static int
voters_alive(const struct raft_configuration *c, uint32_t dead)
{
	int n = 0;

	for (unsigned i = 0; i < c->n; i++)
		n += c->servers[i].role == RAFT_VOTER && c->servers[i].id != dead;
	return n;
}

START_TEST(test_voter_replacement)
{
	unsigned l = raft_fixture_leader_index(&F), victim = 0;
	uint32_t alive[N], dead;
	struct role_change rc;
	struct raft *r;
	int n;

	/* kill a voter that is not the leader */
	while (victim == l)
		victim++;
	dead = (uint32_t)victim + 1;
	raft_fixture_kill(&F, victim);
	alive_except(dead, alive, &n);
	r = raft_fixture_get(&F, l);
	/* first: promote a standby (the lowest id, 4) */
	roles_next(&r->configuration, alive, n, 3, (uint32_t)l + 1, &rc);
	ck_assert_int_eq(rc.action, ROLE_ASSIGN);
	ck_assert_uint_eq(rc.id, 4);
	ck_assert_int_eq(rc.role, RAFT_VOTER);
	do_change(l, &rc);
	raft_fixture_step_until_elapsed(&F, 2000);
	r = raft_fixture_get(&F, raft_fixture_leader_index(&F));
	ck_assert_int_eq(voters_alive(&r->configuration, dead), 3);
	/* then: remove the dead voter */
	roles_next(&r->configuration, alive, n, 3, r->id, &rc);
	ck_assert_int_eq(rc.action, ROLE_REMOVE);
	ck_assert_uint_eq(rc.id, dead);
	do_change(raft_fixture_leader_index(&F), &rc);
	raft_fixture_step_until_elapsed(&F, 2000);
	r = raft_fixture_get(&F, raft_fixture_leader_index(&F));
	ck_assert_uint_eq(r->configuration.n, 4);
	ck_assert_int_eq(voters_alive(&r->configuration, dead), 3);
	/* nothing more to do */
	roles_next(&r->configuration, alive, n, 3, r->id, &rc);
	ck_assert_int_eq(rc.action, ROLE_NONE);
	/* and the new voter set commits on its own: kill another old voter */
	for (unsigned i = 0; i < 3; i++)
		if (i != victim && i != raft_fixture_leader_index(&F)) {
			raft_fixture_kill(&F, i);
			break;
		}
	{
		uint32_t ids[] = { 1, 2 };
		apply_epoch(raft_fixture_leader_index(&F), 1, ids, 2);

		ck_assert(wait_epoch(raft_fixture_leader_index(&F), 1, 5000));
	}
}
END_TEST

START_TEST(test_minority_leader_commits_nothing)
{
	uint32_t ids[] = { 1, 2, 3 };
	unsigned l, l2;

	/* make server 0 (a voter) the leader, then cut it off */
	raft_fixture_depose(&F);
	raft_fixture_elect(&F, 0);
	l = raft_fixture_leader_index(&F);
	ck_assert_uint_eq(l, 0);
	for (unsigned j = 1; j < N; j++) {
		raft_fixture_saturate(&F, 0, j);
		raft_fixture_saturate(&F, j, 0);
	}
	apply_epoch(0, 1, ids, 3);
	/* the majority side elects a leader and commits its own epoch */
	raft_fixture_step_until_elapsed(&F, 3000);
	ck_assert_uint_eq(FSM[0].st.epoch, 0);	/* the minority's stayed out */
	l2 = N;
	for (unsigned i = 1; i < N; i++)
		if (raft_state(raft_fixture_get(&F, i)) == RAFT_LEADER)
			l2 = i;
	ck_assert_msg(l2 < N, "no leader on the majority side");
	{
		uint32_t maj[] = { 2, 3, 4, 5 };

		apply_epoch(l2, 1, maj, 4);
	}
	for (unsigned i = 1; i < N; i++)
		ck_assert(wait_epoch(i, 1, 5000));
	ck_assert_uint_eq(FSM[0].st.epoch, 0);
	/* heal: the old leader drops its entry and takes the majority's */
	for (unsigned j = 1; j < N; j++) {
		raft_fixture_desaturate(&F, 0, j);
		raft_fixture_desaturate(&F, j, 0);
	}
	ck_assert(wait_epoch(0, 1, 10000));
	for (unsigned i = 0; i < N; i++)
		assert_same(i, l2);
	ck_assert_int_eq(FSM[0].st.nmembers, 4);
}
END_TEST

START_TEST(test_stale_and_malformed)
{
	struct cluster_fsm f;
	struct raft_buffer b;
	void *result;
	uint32_t ids[] = { 7 };
	uint8_t junk[64];

	cluster_fsm_init(&f, NULL, NULL);
	ck_assert_int_eq(entry_epoch(&b, 2, 0, ids, 1, NULL), 0);	/* not 1 */
	ck_assert_int_eq(f.fsm.apply(&f.fsm, &b, &result), 0);
	ck_assert_int_eq((int)(intptr_t)result, -ESTALE);
	ck_assert_uint_eq(f.st.epoch, 0);
	ck_assert_uint_eq(f.st.stale, 1);
	raft_free(b.base);
	for (int k = 0; k < 1000; k++) {
		struct raft_buffer jb = { junk, (size_t)(k % 64) };

		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)(k * 31 + i * 7);
		if (k % 3 == 0) {	/* right magic, garbage after */
			junk[0] = 0x41; junk[1] = 0x52; junk[2] = 0x45;
			junk[3] = 0x50; junk[4] = EPOCH_VERSION;
			junk[5] = (uint8_t)(1 + k % 4);
		}
		ck_assert_int_eq(f.fsm.apply(&f.fsm, &jb, &result), 0);
	}
	ck_assert_uint_gt(f.st.bad, 500);
	/* snapshot and restore round trip */
	{
		struct raft_buffer *bufs;
		unsigned nb;
		struct cluster_fsm g;

		struct job_params jp = { 12, 12, 768, 1024, 4, 64,
		    JOB_F_PIPELINE | JOB_F_TENSOR };
		static const uint32_t lay[] = { 0, 2, 7, 2, 3, 8 };
		struct epoch_plan ep = { 1, 1, 2, 1, 0.5, "plan: tp 1 pp 2",
		    lay, 6 };

		ck_assert_int_eq(entry_epoch(&b, 1, 0, ids, 1, NULL), 0);
		f.fsm.apply(&f.fsm, &b, &result);
		raft_free(b.base);
		ck_assert(!epoch_needed(&f.st, ids, 1));
		ck_assert_int_eq(entry_job(&b, 1, "gpt2", &jp), 0);
		f.fsm.apply(&f.fsm, &b, &result);
		raft_free(b.base);
		ck_assert_uint_eq(f.st.job_seq, 1);
		/* a job without a plan wants an epoch, same members or not */
		ck_assert(epoch_needed(&f.st, ids, 1));
		ck_assert_int_eq(entry_epoch(&b, 2, 42, ids, 1, &ep), 0);
		f.fsm.apply(&f.fsm, &b, &result);
		raft_free(b.base);
		ck_assert_str_eq(f.st.plan, "plan: tp 1 pp 2");
		ck_assert(!epoch_needed(&f.st, ids, 1));
		ck_assert_int_eq(f.fsm.snapshot(&f.fsm, &bufs, &nb), 0);
		cluster_fsm_init(&g, NULL, NULL);
		ck_assert_int_eq(g.fsm.restore(&g.fsm, &bufs[0]), 0);
		ck_assert_uint_eq(g.st.epoch, 2);
		ck_assert_int_eq(g.st.resume_step, 42);
		ck_assert_uint_eq(g.st.members[0], 7);
		ck_assert_str_eq(g.st.job, "gpt2");
		ck_assert_uint_eq(g.st.jp.n_embd, 768);
		ck_assert_uint_eq(g.st.jp.global_batch, 64);
		ck_assert_uint_eq(g.st.jp.flags, JOB_F_PIPELINE |
		    JOB_F_TENSOR);
		ck_assert_int_eq(g.st.plan_pp, 2);
		ck_assert_double_eq(g.st.plan_step, 0.5);
		ck_assert_str_eq(g.st.plan, "plan: tp 1 pp 2");
		ck_assert_int_eq(g.st.layout_len, 6);
		ck_assert_mem_eq(g.st.layout, lay, sizeof(lay));
		raft_free(bufs);
	}
}
END_TEST

START_TEST(test_roles_policy)
{
	struct raft_configuration c;
	struct role_change rc;
	uint32_t alive[] = { 1, 2, 3, 6 };

	raft_configuration_init(&c);
	raft_configuration_add(&c, 1, "1", RAFT_VOTER);
	raft_configuration_add(&c, 2, "2", RAFT_VOTER);
	raft_configuration_add(&c, 3, "3", RAFT_VOTER);
	raft_configuration_add(&c, 4, "4", RAFT_STANDBY);
	/* a newcomer (6) is added first */
	roles_next(&c, alive, 4, 3, 1, &rc);
	ck_assert_int_eq(rc.action, ROLE_ADD);
	ck_assert_uint_eq(rc.id, 6);
	raft_configuration_add(&c, 6, "6", RAFT_SPARE);
	roles_next(&c, alive, 4, 3, 1, &rc);
	ck_assert_int_eq(rc.action, ROLE_ASSIGN);
	ck_assert_int_eq(rc.role, RAFT_STANDBY);
	c.servers[4].role = RAFT_STANDBY;
	/* a dead standby (4) is removed */
	roles_next(&c, alive, 4, 3, 1, &rc);
	ck_assert_int_eq(rc.action, ROLE_REMOVE);
	ck_assert_uint_eq(rc.id, 4);
	/* fewer voters wanted: the highest alive voter, never self */
	{
		uint32_t a2[] = { 1, 2, 3, 4, 6 };

		roles_next(&c, a2, 5, 1, 3, &rc);
		ck_assert_int_eq(rc.action, ROLE_ASSIGN);
		ck_assert_int_eq(rc.role, RAFT_STANDBY);
		ck_assert_uint_eq(rc.id, 2);
	}
	/* epochs: needed until the member set matches */
	{
		struct cluster_state st;
		uint32_t a[] = { 1, 2, 3 };

		memset(&st, 0, sizeof(st));
		ck_assert(epoch_needed(&st, a, 3));
		st.epoch = 1;
		st.nmembers = 3;
		memcpy(st.members, a, sizeof(a));
		ck_assert(!epoch_needed(&st, a, 3));
		ck_assert(epoch_needed(&st, a, 2));
	}
	raft_configuration_close(&c);
}
END_TEST

START_TEST(test_layout_groups)
{
	/* tp 2, pp 2, dp 2: replica 0 = {1,2} {3,4}, replica 1 = {5,6} {7,8} */
	static const uint32_t lay[] = {
		0, 3, 1, 2,   3, 3, 3, 4,
		0, 3, 5, 6,   3, 3, 7, 8,
	};
	struct layout_group g[8];
	int n;

	n = layout_groups(lay, 16, 2, 2, 2, 4, g, 8);
	ck_assert_int_eq(n, 2);
	/* node 4 is stage 1, rank 1: its ring is {4, 8} */
	ck_assert_uint_eq(g[0].id, 1 + 1 * 8 + 1);
	ck_assert_int_eq(g[0].n, 2);
	ck_assert_uint_eq(g[0].members[0], 4);
	ck_assert_uint_eq(g[0].members[1], 8);
	/* and its tensor-parallel group is {3, 4} of replica 0, stage 1 */
	ck_assert_uint_eq(g[1].id, 32768 + 0 * 2 + 1);
	ck_assert_uint_eq(g[1].members[0], 3);
	ck_assert_uint_eq(g[1].members[1], 4);
	/* a node in no slot has no group; a wrong size is refused */
	ck_assert_int_eq(layout_groups(lay, 16, 2, 2, 2, 99, g, 8), 0);
	ck_assert_int_eq(layout_groups(lay, 15, 2, 2, 2, 4, g, 8), -EINVAL);
	/* pure data parallel over 4: one ring of all */
	{
		static const uint32_t dp4[] = { 0, 6, 1, 0, 6, 2, 0, 6, 3,
		    0, 6, 4 };

		ck_assert_int_eq(layout_groups(dp4, 12, 1, 1, 4, 3, g, 8), 1);
		ck_assert_uint_eq(g[0].id, 1);
		ck_assert_int_eq(g[0].n, 4);
	}
}
END_TEST

START_TEST(test_layout_share)
{
	/* dp 2 over nodes 5 and 2 (slots: stage, layers, device), then each
	 * replica's share and micro-batches; the epoch also holds 1 and 9 */
	static const uint32_t lay[] = { 0, 4, 5,   0, 4, 2,   4, 1,   2, 2 };
	static const uint32_t ep[] = { 1, 2, 5, 9 };
	struct ctl_share sh;

	memset(&sh, 0, sizeof(sh));
	layout_share(lay, 10, 1, 1, 2, 2, ep, 4, &sh);
	ck_assert_int_eq(sh.status, 0);
	ck_assert_uint_eq(sh.dp, 2);
	ck_assert_uint_eq(sh.rank, 1);
	ck_assert_int_eq(sh.shares[1], 2);
	ck_assert_int_eq(sh.nmicro[1], 2);
	/* the epoch's others follow as standbys with no rows, in its order;
	 * the group is then not layout_groups' group 1 (replicas only) */
	ck_assert_uint_eq(sh.nstandby, 2);
	ck_assert_uint_eq(sh.members[2], 1);
	ck_assert_uint_eq(sh.members[3], 9);
	ck_assert_int_eq(sh.shares[2], 0);
	ck_assert_int_eq(sh.nmicro[3], 0);
	ck_assert_uint_eq(sh.group, CTL_SHARE_STANDBY_GROUP);
	/* a standby's own part */
	memset(&sh, 0, sizeof(sh));
	layout_share(lay, 10, 1, 1, 2, 9, ep, 4, &sh);
	ck_assert_int_eq(sh.status, 0);
	ck_assert_uint_eq(sh.rank, 3);
	/* every member a replica: no standbys, group 1 */
	memset(&sh, 0, sizeof(sh));
	layout_share(lay, 10, 1, 1, 2, 5, ep + 1, 2, &sh);
	ck_assert_int_eq(sh.status, 0);
	ck_assert_uint_eq(sh.rank, 0);
	ck_assert_uint_eq(sh.nstandby, 0);
	ck_assert_uint_eq(sh.group, 1);
	/* a node in neither */
	memset(&sh, 0, sizeof(sh));
	layout_share(lay, 10, 1, 1, 2, 7, ep, 4, &sh);
	ck_assert_int_eq(sh.status, ESRCH);
	/* a wrong size is refused */
	memset(&sh, 0, sizeof(sh));
	layout_share(lay, 9, 1, 1, 2, 2, ep, 4, &sh);
	ck_assert_int_eq(sh.status, EINVAL);
	/* pipeline: dp 2 x pp 2, blocks 3 + 1 in both replicas */
	{
		/* 4 blocks: layers 0-2 (embedding + 2), 3-5 (2 + head) */
		static const uint32_t pl[] = { 0, 3, 1,  3, 3, 2,
		    0, 3, 3,  3, 3, 4,   6, 2,  4, 2 };
		static const uint32_t odd[] = { 0, 3, 1,  3, 3, 2,
		    0, 2, 3,  2, 4, 4,   6, 2,  4, 2 };
		static const uint32_t bare[] = { 0, 1, 1,  1, 5, 2,
		    6, 2 };

		memset(&sh, 0, sizeof(sh));
		layout_share(pl, 16, 1, 2, 2, 4, ep, 4, &sh);
		ck_assert_int_eq(sh.status, 0);
		ck_assert_uint_eq(sh.rank, 3);	/* replica 1, stage 1 */
		ck_assert_uint_eq(sh.members[2], 3);
		ck_assert_int_eq(sh.layers[0], 2);
		ck_assert_int_eq(sh.layers[1], 2);
		ck_assert_int_eq(sh.shares[1], 4);
		ck_assert_int_eq(sh.nmicro[0], 2);
		ck_assert_uint_eq(sh.nstandby, 0);
		/* a split that differs between replicas is not handed out */
		memset(&sh, 0, sizeof(sh));
		layout_share(odd, 16, 1, 2, 2, 4, ep, 4, &sh);
		ck_assert_int_eq(sh.status, ENOTSUP);
		/* nor a stage of the embedding alone */
		memset(&sh, 0, sizeof(sh));
		layout_share(bare, 8, 1, 2, 1, 2, ep, 4, &sh);
		ck_assert_int_eq(sh.status, ENOTSUP);
	}
	/* tensor parallel: dp 2 x tp 2 (slots: stage, layers, 2 devices) */
	{
		static const uint32_t tl[] = { 0, 6, 5, 2,   0, 6, 9, 1,
		    8, 2,  4, 2 };
		/* tp 2 inside pipeline stages: not trained */
		static const uint32_t tpl[] = { 0, 3, 5, 2,   3, 3, 9, 1,
		    8, 2 };

		memset(&sh, 0, sizeof(sh));
		layout_share(tl, 12, 2, 1, 2, 1, ep, 4, &sh);
		ck_assert_int_eq(sh.status, 0);
		ck_assert_uint_eq(sh.tp, 2);
		ck_assert_uint_eq(sh.dp, 2);
		ck_assert_uint_eq(sh.rank, 3);	/* replica 1, rank 1 */
		ck_assert_uint_eq(sh.members[0], 5);
		ck_assert_uint_eq(sh.members[1], 2);
		ck_assert_uint_eq(sh.members[2], 9);
		ck_assert_uint_eq(sh.members[3], 1);
		ck_assert_int_eq(sh.shares[0], 8);
		ck_assert_int_eq(sh.shares[1], 4);
		ck_assert_int_eq(sh.nmicro[1], 2);
		/* no standbys: a node outside the plan holds no shard */
		ck_assert_uint_eq(sh.nstandby, 0);
		memset(&sh, 0, sizeof(sh));
		layout_share(tl, 12, 2, 1, 2, 7, ep, 4, &sh);
		ck_assert_int_eq(sh.status, ESRCH);
		memset(&sh, 0, sizeof(sh));
		layout_share(tpl, 10, 2, 2, 1, 5, ep, 4, &sh);
		ck_assert_int_eq(sh.status, ENOTSUP);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("raftfsm");
	TCase *fx = tcase_create("fixture"), *pure = tcase_create("pure");
	SRunner *sr;
	int nf;

	tcase_add_checked_fixture(fx, setup, teardown);
	tcase_set_timeout(fx, 60);
	tcase_add_test(fx, test_commit_reaches_all);
	tcase_add_test(fx, test_leader_loss);
	tcase_add_test(fx, test_voter_replacement);
	tcase_add_test(fx, test_minority_leader_commits_nothing);
	tcase_add_test(pure, test_stale_and_malformed);
	tcase_add_test(pure, test_roles_policy);
	tcase_add_test(pure, test_layout_groups);
	tcase_add_test(pure, test_layout_share);
	suite_add_tcase(s, fx);
	suite_add_tcase(s, pure);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf != 0;
}
