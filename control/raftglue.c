/*
 * raftglue.c: raft in the daemon (ARCHITECTURE.md §2): libraft on its libuv
 * backend, its TCP transport wrapped by raftauth.c, the FSM of raftfsm.c.
 * SWIM suspects, raft decides: the leader turns SWIM's view into
 * configuration changes (roles_next) and epochs (epoch_needed), one at a
 * time, and only after a barrier in its term (MACHINE.md: a new leader
 * appends nothing; act on FSM state only after a barrier).
 *
 * Forming the cluster, without a fixed coordinator: a node with an empty
 * raft directory waits.  If a peer says (SWIM flag) it belongs to a formed
 * cluster, it starts empty and the leader adds it.  Otherwise, once
 * bootstrap_expect members have been alive together for FORM_STABLE_MS,
 * the lowest id among them bootstraps a configuration of itself alone,
 * and adds the others as they come.
 *
 * Glue states (logged with epoch and term):
 *   WAITING --formed peer seen--> JOINING --config received--> RUNNING
 *   WAITING --lowest of bootstrap_expect, stable--> RUNNING (bootstrap)
 *   WAITING --raft dir has state--> RUNNING (restart)
 * Raft's own states (follower, candidate, leader) are polled each tick
 * (libraft has no callback) and logged when they change.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "control.h"
#include "log.h"
#include "raftauth.h"
#include "raftfsm.h"

#define FORM_STABLE_MS		1000
#define CONNECT_RETRY_MS	50
#define RETRY_MS		1000	/* after a refused change or entry */

enum glue_state { GLUE_WAITING, GLUE_JOINING, GLUE_RUNNING, GLUE_CLOSING };
static const char *const glue_names[] = { "waiting", "joining", "running",
	"closing" };

struct rglue {
	struct ctl		*c;
	struct raft_auth	 auth;
	struct raft_io		 io;
	struct raft		 raft;
	struct cluster_fsm	 fsm;
	char			 dir[512];
	char			 address[64];
	enum glue_state		 state;
	int			 raft_state;	/* last polled */
	uint64_t		 alive_since;	/* the alive set is stable */
	int			 last_nalive;
	raft_term		 barrier_term;	/* barrier done in this term */
	int			 barrier_pending;
	raft_term		 barrier_asked;
	struct raft_barrier	 barrier;
	int			 change_pending;
	struct raft_change	 change;
	int			 apply_pending;
	struct raft_apply	 apply;
	uint64_t		 retry_at;	/* after a failed change */
	struct plan		 last;		/* this leader's last plan */
	uint64_t		 last_job_seq;
	/* replanning on measured speed (replan_due) */
	struct replan_state	 rs;
	uint64_t		 replan_next;	/* ms: next look */
	int			 replan_said;	/* verdict last logged */
	uint64_t		 replans;	/* epochs for speed */
	void			(*done)(struct ctl *);
};

static uint64_t
ms(void)
{
	return (uint64_t)(ctl_now() * 1000.0);
}

static int
u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void
glue_set(struct rglue *g, enum glue_state s)
{
	if (g->state == s)
		return;
	log_info("ctl.raft: %s -> %s (epoch %llu, term %llu)",
	    glue_names[g->state], glue_names[s],
	    (unsigned long long)g->fsm.st.epoch,
	    (unsigned long long)g->raft.current_term);
	g->state = s;
}

/* Sorted ids of alive and suspect members with raft, self included. */
static int
alive_set(struct ctl *c, uint32_t *out, int *formed_peer)
{
	int n = 0;

	*formed_peer = 0;
	pthread_mutex_lock(&c->mu);
	out[n++] = c->id;
	for (int i = 0; i < c->sw.nm && n < EPOCH_MAX_MEMBERS; i++) {
		const struct swim_member *m = &c->sw.m[i];

		if (m->state > SWIM_SUSPECT || m->raft_port == 0)
			continue;
		out[n++] = m->id;
		if (m->flags & SWIM_F_RAFT)
			*formed_peer = 1;
	}
	pthread_mutex_unlock(&c->mu);
	qsort(out, (size_t)n, sizeof(*out), u32_cmp);
	return n;
}

static int
member_address(struct ctl *c, uint32_t id, char *out, size_t len)
{
	const struct swim_member *m;
	struct in_addr a;
	int rc = -ENOENT;

	pthread_mutex_lock(&c->mu);
	if ((m = swim_find(&c->sw, id)) != NULL && m->addr != 0) {
		char ip[16];

		a.s_addr = m->addr;
		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		snprintf(out, len, "%s:%u", ip, m->raft_port);
		rc = 0;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* The running job's FLOPs per token (forward + backward), 0: none. */
static double
job_flops(const struct cluster_state *st)
{
	struct plan_model *m;
	struct plan_job j;
	double f = 0;

	if (!st->job_running || st->jp.n_layer == 0 ||
	    (m = malloc(sizeof(*m))) == NULL)
		return 0;
	job_params_plan(&st->jp, m, &j);
	for (int i = 0; i < m->nlayers; i++)
		f += m->layer[i].flops_per_token;
	free(m);
	return f;
}

static void
fsm_applied(void *ctx, int type, const struct cluster_state *st)
{
	struct rglue *g = ctx;
	struct ctl *c = g->c;
	char list[256] = "";
	size_t off = 0;
	double fpt;

	if (type == ENTRY_CKPT) {
		log_info("ctl.raft: checkpoint at step %lld committed (epoch "
		    "%llu, term %llu)", (long long)st->ckpt_step,
		    (unsigned long long)st->epoch,
		    (unsigned long long)g->raft.current_term);
		pthread_mutex_lock(&c->mu);
		c->ckpt_committed = st->ckpt_step;
		pthread_mutex_unlock(&c->mu);
		return;
	}
	if (type == ENTRY_JOB) {
		fpt = job_flops(st);
		log_info("ctl.raft: job '%s' %s (term %llu)", st->job,
		    st->job_running ? "started" : "stopped",
		    (unsigned long long)g->raft.current_term);
		pthread_mutex_lock(&c->mu);
		c->job_running = st->job_running;
		memcpy(c->job, st->job, sizeof(c->job));
		/* a new job: its own speed (another model, other FLOPs) */
		c->job_flops_per_token = fpt;
		speed_init(&c->speed);
		c->sw.self.train_gflops10 = 0;
		pthread_mutex_unlock(&c->mu);
		return;
	}
	if (type != ENTRY_EPOCH)
		return;
	for (int i = 0; i < st->nmembers && off < sizeof(list) - 16; i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%u",
		    i ? "," : "", st->members[i]);
	log_info("ctl.raft: epoch %llu committed (term %llu): %d members "
	    "[%s], resume at step %lld", (unsigned long long)st->epoch,
	    (unsigned long long)g->raft.current_term, st->nmembers, list,
	    (long long)st->resume_step);
	if (st->plan_len > 0 && st->plan_dp > 0)
		log_info("ctl.raft: epoch %llu plan: tp %d pp %d dp %d, "
		    "predicted step %.3f s", (unsigned long long)st->epoch,
		    st->plan_tp, st->plan_pp, st->plan_dp, st->plan_step);
	else if (st->plan_len > 0) {
		/* the planner's reason, from the plan's text */
		const char *why = strstr(st->plan, "plan: ");
		int wl = why == NULL ? 0 : (int)strcspn(why, "\n");

		log_warnx("ctl.raft: epoch %llu has no plan for job '%s': %.*s",
		    (unsigned long long)st->epoch, st->job, wl, why ? why : "");
	}
	fpt = job_flops(st);	/* (also after a snapshot: no JOB entry) */
	pthread_mutex_lock(&c->mu);
	c->job_flops_per_token = fpt;
	g->rs.epoch_at = ctl_now();	/* the interval counts from here */
	free(c->plan_text);
	c->plan_text = st->plan_len > 0 ? strdup(st->plan) : NULL;
	free(c->layout);
	c->layout = NULL;
	c->layout_len = 0;
	if (st->layout_len > 0 && (c->layout = malloc(sizeof(uint32_t) *
	    (size_t)st->layout_len)) != NULL) {
		memcpy(c->layout, st->layout, sizeof(uint32_t) *
		    (size_t)st->layout_len);
		c->layout_len = st->layout_len;
	}
	c->plan_tp = st->plan_tp;
	c->plan_pp = st->plan_pp;
	c->plan_dp = st->plan_dp;
	c->plan_step = st->plan_step;
	c->job_running = st->job_running;
	memcpy(c->job, st->job, sizeof(c->job));
	c->epoch = st->epoch;
	c->resume_step = st->resume_step;
	c->nepoch = st->nmembers;
	for (int i = 0; i < st->nmembers && i < 64; i++)
		c->epoch_members[i] = st->members[i];
	pthread_mutex_unlock(&c->mu);
}

int
raftglue_init(struct ctl *c, const unsigned char key[32])
{
	const struct nodeconf *nc = c->nc;
	struct rglue *g = calloc(1, sizeof(*g));
	char bind[96];
	int rc;

	if (g == NULL)
		return -ENOMEM;
	g->c = c;
	c->raft = g;
	g->rs.due_since = -1;
	g->rs.epoch_at = ctl_now();
	snprintf(g->dir, sizeof(g->dir), "%s/raft", nc->state_dir);
	if (mkdir(g->dir, 0750) < 0 && errno != EEXIST)
		return -errno;
	snprintf(g->address, sizeof(g->address), "%s:%lld", c->addr,
	    (long long)nc->raft_port);
	snprintf(bind, sizeof(bind), "%s:%lld", nc->ctl_listen,
	    (long long)nc->raft_port);
	if ((rc = raft_auth_init(&g->auth, c->loop, key)) != 0)
		goto fail;
	if ((rc = raft_uv_tcp_set_bind_address(&g->auth.inner, bind)) != 0)
		goto fail;
	if ((rc = raft_uv_init(&g->io, c->loop, g->dir, &g->auth.t)) != 0)
		goto fail;
	raft_uv_set_connect_retry_delay(&g->io, CONNECT_RETRY_MS);
	cluster_fsm_init(&g->fsm, fsm_applied, g);
	if ((rc = raft_init(&g->raft, &g->io, &g->fsm.fsm, c->id,
	    g->address)) != 0)
		goto fail;
	raft_set_election_timeout(&g->raft, (unsigned)nc->election_timeout_ms);
	raft_set_heartbeat_timeout(&g->raft, (unsigned)nc->heartbeat_ms);
	raft_set_pre_vote(&g->raft, true);
	/* a raft directory with state: we were a member; start now */
	{
		char p[600];

		snprintf(p, sizeof(p), "%s/metadata1", g->dir);
		if (access(p, F_OK) == 0) {
			if ((rc = raft_start(&g->raft)) != 0) {
				log_warnx("ctl.raft: start: %s",
				    raft_errmsg(&g->raft));
				return -EIO;
			}
			glue_set(g, GLUE_RUNNING);
		}
	}
	log_info("ctl.raft: %s, data in %s", g->address, g->dir);
	return 0;
fail:
	log_warnx("ctl.raft: init: %s", raft_strerror(rc));
	return -EIO;
}

static void
barrier_done(struct raft_barrier *req, int status)
{
	struct rglue *g = req->data;

	g->barrier_pending = 0;
	if (status == 0)
		g->barrier_term = g->barrier_asked;
}

static void
change_done(struct raft_change *req, int status)
{
	struct rglue *g = req->data;

	g->change_pending = 0;
	if (status != 0) {
		log_warnx("ctl.raft: configuration change failed: %s (retry "
		    "in %d ms)", raft_strerror(status), RETRY_MS);
		g->retry_at = ms() + RETRY_MS;
	}
}

static void
apply_done(struct raft_apply *req, int status, void *result)
{
	struct rglue *g = req->data;

	g->apply_pending = 0;
	if (status != 0) {
		log_warnx("ctl.raft: entry not committed: %s",
		    raft_strerror(status));
		g->retry_at = ms() + RETRY_MS;
	}
	else if ((intptr_t)result != 0)
		log_info("ctl.raft: epoch skipped: %s",
		    strerror(-(int)(intptr_t)result));
}

static const char *
my_role(struct rglue *g)
{
	const struct raft_configuration *cf = &g->raft.configuration;

	for (unsigned i = 0; i < cf->n; i++)
		if (cf->servers[i].id == g->c->id)
			return cf->servers[i].role == RAFT_VOTER ? "voter" :
			    cf->servers[i].role == RAFT_STANDBY ? "standby" :
			    "spare";
	return "none";
}

/* Copies what reports show into c (under mu). */
static void
publish(struct rglue *g)
{
	struct ctl *c = g->c;
	const struct raft_configuration *cf = &g->raft.configuration;
	int st = raft_state(&g->raft), nv = 0, ns = 0;
	raft_id lid = 0;
	const char *laddr = NULL, *role;

	raft_leader(&g->raft, &lid, &laddr);
	for (unsigned i = 0; i < cf->n; i++) {
		nv += cf->servers[i].role == RAFT_VOTER;
		ns += cf->servers[i].role == RAFT_STANDBY;
	}
	/* no leader known: this side has no quorum and commits nothing
	 * (a partition's minority pauses until it hears a leader again) */
	if (st == RAFT_LEADER)
		role = "leader";
	else if (lid == 0)
		role = "paused (no quorum)";
	else
		role = my_role(g);
	pthread_mutex_lock(&c->mu);
	c->term = g->raft.current_term;
	c->leader = (uint32_t)lid;
	c->quorum = st == RAFT_LEADER || lid != 0;
	c->role = role;
	c->nvoters = nv;
	c->nstandbys = ns;
	c->raft_auth_ok = g->auth.stats.ok;
	c->raft_auth_refused = g->auth.stats.refused;
	c->stale_epochs = g->fsm.st.stale;
	c->replans = g->replans;
	if (cf->n > 0)
		c->sw.self.flags |= SWIM_F_RAFT;
	pthread_mutex_unlock(&c->mu);
	if (st != g->raft_state) {
		static const char *const names[] = { "unavailable",
		    "follower", "candidate", "leader" };

		log_info("ctl.raft: %s -> %s (epoch %llu, term %llu)",
		    names[g->raft_state & 3], names[st & 3],
		    (unsigned long long)g->fsm.st.epoch,
		    (unsigned long long)g->raft.current_term);
		g->raft_state = st;
	}
}

static void
try_form(struct rglue *g, const uint32_t *alive, int n, int formed_peer)
{
	struct ctl *c = g->c;
	struct raft_configuration conf;
	int rc;

	if (formed_peer) {
		if ((rc = raft_start(&g->raft)) != 0) {
			log_warnx("ctl.raft: start: %s", raft_errmsg(&g->raft));
			return;
		}
		log_info("ctl.raft: a peer belongs to a cluster: joining");
		glue_set(g, GLUE_JOINING);
		return;
	}
	if (n != g->last_nalive) {
		g->last_nalive = n;
		g->alive_since = ms();
	}
	if (n < c->nc->bootstrap_expect || alive[0] != c->id ||
	    ms() - g->alive_since < FORM_STABLE_MS)
		return;
	raft_configuration_init(&conf);
	if (raft_configuration_add(&conf, c->id, g->address, RAFT_VOTER) != 0 ||
	    (rc = raft_bootstrap(&g->raft, &conf)) != 0) {
		log_warnx("ctl.raft: bootstrap: %s", raft_errmsg(&g->raft));
		raft_configuration_close(&conf);
		return;
	}
	raft_configuration_close(&conf);
	if ((rc = raft_start(&g->raft)) != 0) {
		log_warnx("ctl.raft: start: %s", raft_errmsg(&g->raft));
		return;
	}
	log_info("ctl.raft: lowest id of %d members: forming the cluster", n);
	glue_set(g, GLUE_RUNNING);
}

/*
 * The planner's inputs for the running job on the alive members, from
 * their SWIM profiles (memory; speed: the measured training GFLOP/s where
 * a member has one, else its GEMM GFLOP/s scaled by the others' ratio of
 * the two, replan.c) and the link matrix SWIM's link rows give (links.c:
 * symmetric where one side measured, defaults where none did, islands
 * from bandwidth).  *speeds (malloc'd, may stay NULL) lists the speeds
 * used, for the plan's text; slow (may be NULL) names the member furthest
 * below its profile.  pc->dev, bw, rtt are malloc'd (inputs_free).
 * @return 0 or -1.
 */
#define UNMEASURED_GFLOPS	1.0

static void
inputs_free(struct plan_cluster *pc)
{
	free(pc->dev);
	free(pc->bw);
	free(pc->rtt);
	memset(pc, 0, sizeof(*pc));
}

static int
plan_inputs(struct rglue *g, const uint32_t *alive, int n,
    struct plan_model *m, struct plan_job *j, struct plan_cluster *pc,
    char **speeds, char *slow, size_t slowlen)
{
	struct ctl *c = g->c;
	struct plan_device *dev = calloc((size_t)n, sizeof(*dev));
	double *prof = calloc((size_t)n, sizeof(double));
	double *meas = calloc((size_t)n, sizeof(double));
	double *sp = calloc((size_t)n, sizeof(double));
	char *src = calloc((size_t)n, 1);
	struct link_matrix lm;
	const struct swim_link *cells;
	double ratio, best = 0;
	int ncells, rc = -1, worst = -1;

	memset(pc, 0, sizeof(*pc));
	*speeds = NULL;
	if (slow != NULL)
		slow[0] = '\0';
	if (dev == NULL || prof == NULL || meas == NULL || sp == NULL ||
	    src == NULL)
		goto out;
	job_params_plan(&g->fsm.st.jp, m, j);
	/*
	 * What the workers train: data parallel (compute/dist.c), and
	 * pipeline stages (compute/pipe.c) or tensor-parallel shards
	 * (compute/tensor.c) for a job whose workers take them from the
	 * plan; not both at once (layout_share refuses tp > 1 with pp > 1).
	 */
	j->max_tp = g->fsm.st.jp.flags & JOB_F_TENSOR ? 0 : 1;
	j->max_pp = g->fsm.st.jp.flags & JOB_F_PIPELINE ? 0 : 1;
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < n; i++) {
		const struct swim_member *sm = swim_find(&c->sw, alive[i]);

		dev[i].id = alive[i];
		prof[i] = sm && sm->gflops10 ? sm->gflops10 / 10.0 :
		    UNMEASURED_GFLOPS;
		meas[i] = sm ? sm->train_gflops10 / 10.0 : 0;
		dev[i].mem_bytes = sm ? sm->mem_mib * 1048576.0 : 0;
	}
	ncells = swim_links(&c->sw, &cells);
	rc = links_assemble(alive, n, cells, ncells, &lm);
	pthread_mutex_unlock(&c->mu);
	if (rc < 0)
		goto out;
	rc = links_islands(&lm, dev, &pc->nisland, &pc->bw, &pc->rtt);
	links_matrix_free(&lm);
	if (rc < 0)
		goto out;
	ratio = speeds_resolve(n, prof, meas, sp, src);
	for (int i = 0; i < n; i++) {
		dev[i].gflops = sp[i];
		if (src[i] == 'm' && meas[i] / prof[i] > best)
			best = meas[i] / prof[i];
	}
	/* the member furthest below what its profile predicts, measured
	 * against the best member's ratio of training to GEMM speed */
	for (int i = 0; i < n; i++)
		if (src[i] == 'm' && (worst < 0 || meas[i] / prof[i] <
		    meas[worst] / prof[worst]))
			worst = i;
	if (slow != NULL && worst >= 0 && best > 0)
		snprintf(slow, slowlen, "node %u runs at %.0f%% of its "
		    "profile (%.2f GFLOP/s measured, %.2f expected)",
		    alive[worst], 100.0 * meas[worst] / prof[worst] / best,
		    meas[worst], prof[worst] * best);
	{
		char *t = NULL;
		size_t tl = 0;
		FILE *fp = open_memstream(&t, &tl);

		if (fp != NULL) {
			fprintf(fp, "speeds (GFLOP/s; m: measured in training, "
			    "p: GEMM profile x %.4g):", ratio);
			for (int i = 0; i < n; i++)
				fprintf(fp, " %u %.2f%c", alive[i], sp[i],
				    src[i]);
			fprintf(fp, "\n");
			fclose(fp);
			*speeds = t;
		}
	}
	pc->ndev = n;
	pc->dev = dev;
	dev = NULL;
	rc = 0;
out:
	if (rc < 0) {
		free(pc->bw);
		free(pc->rtt);
		memset(pc, 0, sizeof(*pc));
	}
	free(dev);
	free(prof);
	free(meas);
	free(sp);
	free(src);
	return rc;
}

/*
 * The plan in force, from the committed epoch's layout, evaluated under
 * the inputs now.  @return 0, or -1 (none, or it no longer fits).
 */
static int
plan_running(struct rglue *g, const struct plan_model *m,
    const struct plan_job *j, const struct plan_cluster *pc,
    struct plan *run)
{
	const struct cluster_state *st = &g->fsm.st;

	if (st->plan_job_seq != st->job_seq || st->plan_dp < 1 ||
	    plan_from_layout(st->layout, st->layout_len, st->plan_tp,
	    st->plan_pp, st->plan_dp, j->global_batch, j->micro_batch,
	    run) < 0)
		return -1;
	if (plan_eval(m, j, pc, run) < 0 || !run->ok) {
		plan_fini(run);
		return -1;
	}
	return 0;
}

/*
 * The plan for the running job on the alive members (plan_inputs).
 * prev: the plan to keep what it can of (sticky, planner.c); NULL: this
 * leader's last plan for the job, if any.  Fills ep; its text is
 * malloc'd (caller frees).
 */
static void
plan_for(struct rglue *g, const uint32_t *alive, int n,
    const struct plan *prev, struct epoch_plan *ep)
{
	static struct plan_model m;
	struct plan_job j;
	struct plan_cluster pc;
	struct plan p, committed = { 0 };
	char *text = NULL, *speeds = NULL;
	size_t len = 0;
	FILE *fp;

	memset(ep, 0, sizeof(*ep));
	ep->job_seq = g->fsm.st.job_seq;
	if (plan_inputs(g, alive, n, &m, &j, &pc, &speeds, NULL, 0) < 0)
		return;
	/*
	 * Replans keep what survived where it was (planner.c, sticky): the
	 * committed epoch's placement first, which every leader has (one
	 * elected since knows no plan of its own, and a pipeline stage's
	 * state is only on the node that held it), else this leader's last.
	 */
	if (prev == NULL && g->fsm.st.plan_job_seq == g->fsm.st.job_seq &&
	    g->fsm.st.plan_dp >= 1 && plan_from_layout(g->fsm.st.layout,
	    g->fsm.st.layout_len, g->fsm.st.plan_tp, g->fsm.st.plan_pp,
	    g->fsm.st.plan_dp, j.global_batch, j.micro_batch,
	    &committed) == 0)
		prev = &committed;
	if (prev == NULL && g->last.ok && g->last_job_seq ==
	    g->fsm.st.job_seq)
		prev = &g->last;
	plan_compute(&m, &j, &pc, prev, &p);
	plan_fini(&committed);
	if ((fp = open_memstream(&text, &len)) != NULL) {
		fprintf(fp, "job %s on %d members\n", g->fsm.st.job, n);
		plan_write(&p, &pc, fp);
		/* the speeds it was made with: the plan stays a function of
		 * what its text says */
		if (speeds != NULL)
			fputs(speeds, fp);
		fclose(fp);
	}
	free(speeds);
	ep->text = text;
	if (p.ok) {
		int slot = 2 + p.tp, ns = p.dp * p.pp * slot;
		int nw = ns + 2 * p.dp;
		uint32_t *lay = nw <= PLAN_LAYOUT_MAX ?
		    calloc((size_t)nw, sizeof(*lay)) : NULL;

		if (lay != NULL) {
			for (int i = 0; i < p.dp * p.pp; i++) {
				lay[i * slot] = (uint32_t)p.st[i].first;
				lay[i * slot + 1] = (uint32_t)p.st[i].nlayers;
				for (int k = 0; k < p.tp; k++)
					lay[i * slot + 2 + k] = p.st[i].dev[k];
			}
			/* each replica's rows of a step, for its workers */
			for (int r = 0; r < p.dp; r++) {
				lay[ns + 2 * r] = (uint32_t)p.rep[r].share;
				lay[ns + 2 * r + 1] = (uint32_t)p.rep[r].nmicro;
			}
			ep->layout = lay;
			ep->layout_len = nw;
		}
		ep->tp = p.tp;
		ep->pp = p.pp;
		ep->dp = p.dp;
		ep->step = p.step;
		plan_fini(&g->last);
		g->last = p;
		g->last_job_seq = g->fsm.st.job_seq;
	} else {
		plan_fini(&p);
	}
	inputs_free(&pc);
}

/*
 * Replanning on measured speed (ARCHITECTURE.md §9, stragglers): once a
 * second, the plan in force under the speeds now against the plan the
 * leader would make now (keeping what it can of the one in force);
 * replan_decide says whether that is worth an epoch (gain, hold,
 * interval: [control] replan_*).  @return 1 to commit an epoch now, the
 * plan in force in *run (to keep what it can of; plan_fini it).
 */
static int
replan_due(struct rglue *g, const uint32_t *alive, int n, struct plan *run)
{
	struct ctl *c = g->c;
	const struct nodeconf *nc = c->nc;
	const struct cluster_state *st = &g->fsm.st;
	struct replan_conf rc = { nc->replan_gain, nc->replan_interval_s,
	    nc->replan_hold_s };
	static struct plan_model m;
	struct plan_job j;
	struct plan_cluster pc;
	struct plan fresh;
	char *speeds = NULL, slow[160], why[400];
	uint64_t t0;
	int v;

	memset(run, 0, sizeof(*run));
	if (!st->job_running || st->layout_len == 0 || !(rc.interval_s > 0) ||
	    ms() < g->replan_next)
		return 0;
	t0 = ms();
	g->replan_next = t0 + 1000;
	if (plan_inputs(g, alive, n, &m, &j, &pc, &speeds, slow,
	    sizeof(slow)) < 0)
		return 0;
	free(speeds);
	if (plan_running(g, &m, &j, &pc, run) < 0) {
		inputs_free(&pc);
		return 0;
	}
	plan_compute(&m, &j, &pc, run, &fresh);
	/* a big cluster takes a while to plan: look less often, so that
	 * the loop spends at most a twentieth of its time here */
	if (ms() - t0 > 50)
		g->replan_next = t0 + 20 * (ms() - t0);
	v = replan_decide(&rc, &g->rs, ctl_now(), run, &fresh, why,
	    sizeof(why));
	plan_fini(&fresh);
	inputs_free(&pc);
	if (v != g->replan_said && (v == REPLAN_HOLD || v == REPLAN_WAIT))
		log_info("ctl.raft: a better plan on measured speed: %s%s%s; "
		    "%s", slow, slow[0] ? ": " : "", why, v == REPLAN_HOLD ?
		    "waiting for it to hold" : "waiting for the minimum "
		    "interval since the last epoch");
	g->replan_said = v;
	if (v != REPLAN_YES) {
		plan_fini(run);
		return 0;
	}
	log_info("ctl.raft: replanning on measured speed: %s%s%s", slow,
	    slow[0] ? ": " : "", why);
	g->replans++;
	g->rs.due_since = -1;
	return 1;
}

/*
 * A checkpoint is committed once every member of the epoch has saved its
 * shards of that step: the smallest "last complete checkpoint" the
 * members report (SWIM header), if it moved forward.
 */
static void
ckpt_maybe(struct rglue *g)
{
	struct ctl *c = g->c;
	const struct cluster_state *st = &g->fsm.st;
	struct raft_buffer b;
	uint64_t low = UINT64_MAX;

	if (!st->job_running || st->nmembers == 0)
		return;
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < st->nmembers; i++) {
		const struct swim_member *m = swim_find(&c->sw,
		    st->members[i]);
		uint64_t s = m ? m->ckpt_step : 0;

		if (s < low)
			low = s;
	}
	pthread_mutex_unlock(&c->mu);
	if (low == UINT64_MAX || low == 0 || (int64_t)low <= st->ckpt_step)
		return;
	if (entry_ckpt(&b, (int64_t)low) < 0)
		return;
	g->apply.data = g;
	if (raft_apply(&g->raft, &g->apply, &b, 1, apply_done) == 0)
		g->apply_pending = 1;
	else
		raft_free(b.base);
}

/*
 * Has a member asked to leave the epoch in force (SWIM's reepoch): its
 * worker failed a step in it, and the workers restart their collectives
 * from sequence 0, which only a fresh epoch lines up on every dataplane.
 */
static int
reepoch_asked(struct rglue *g)
{
	struct ctl *c = g->c;
	const struct cluster_state *st = &g->fsm.st;
	uint32_t who = 0;

	if (!st->job_running || st->epoch == 0)
		return 0;
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < st->nmembers && who == 0; i++) {
		const struct swim_member *m = swim_find(&c->sw,
		    st->members[i]);

		if (m != NULL && m->reepoch == st->epoch)
			who = st->members[i];
	}
	pthread_mutex_unlock(&c->mu);
	if (who != 0)
		log_info("ctl.raft: node %u's workers failed in epoch %llu: "
		    "a fresh epoch", who, (unsigned long long)st->epoch);
	return who != 0;
}

/* The leader's work: one change or one epoch at a time. */
static void
lead(struct rglue *g, const uint32_t *alive, int n)
{
	struct ctl *c = g->c;
	struct role_change rc;
	struct raft_buffer b;
	struct epoch_plan ep;
	struct plan run;
	char addr[64];
	int r = 0, replan = 0;

	memset(&run, 0, sizeof(run));
	if (g->barrier_term != g->raft.current_term) {
		if (!g->barrier_pending) {
			g->barrier.data = g;
			g->barrier_asked = g->raft.current_term;
			if (raft_barrier(&g->raft, &g->barrier,
			    barrier_done) == 0)
				g->barrier_pending = 1;
		}
		return;
	}
	if (g->change_pending || g->apply_pending || ms() < g->retry_at)
		return;
	roles_next(&g->raft.configuration, alive, n, (int)c->nc->voters,
	    c->id, &rc);
	g->change.data = g;
	switch (rc.action) {
	case ROLE_ADD:
		if (member_address(c, rc.id, addr, sizeof(addr)) < 0)
			return;		/* SWIM has no address yet */
		log_info("ctl.raft: adding node %u at %s (epoch %llu, term "
		    "%llu)", rc.id, addr, (unsigned long long)g->fsm.st.epoch,
		    (unsigned long long)g->raft.current_term);
		r = raft_add(&g->raft, &g->change, rc.id, addr, change_done);
		break;
	case ROLE_ASSIGN:
		log_info("ctl.raft: node %u becomes %s (epoch %llu, term %llu)",
		    rc.id, rc.role == RAFT_VOTER ? "a voter" : "a standby",
		    (unsigned long long)g->fsm.st.epoch,
		    (unsigned long long)g->raft.current_term);
		r = raft_assign(&g->raft, &g->change, rc.id, rc.role,
		    change_done);
		break;
	case ROLE_REMOVE:
		log_info("ctl.raft: removing node %u (epoch %llu, term %llu)",
		    rc.id, (unsigned long long)g->fsm.st.epoch,
		    (unsigned long long)g->raft.current_term);
		r = raft_remove(&g->raft, &g->change, rc.id, change_done);
		break;
	}
	if (rc.action != ROLE_NONE) {
		if (r == 0) {
			g->change_pending = 1;
		} else {
			log_warnx("ctl.raft: change: %s (retry in %d ms)",
			    raft_errmsg(&g->raft), RETRY_MS);
			g->retry_at = ms() + RETRY_MS;
		}
		return;
	}
	if (!epoch_needed(&g->fsm.st, alive, n) && !reepoch_asked(g)) {
		if (!replan_due(g, alive, n, &run)) {
			ckpt_maybe(g);
			return;
		}
		replan = 1;
	}
	memset(&ep, 0, sizeof(ep));
	if (g->fsm.st.job_running)
		plan_for(g, alive, n, replan ? &run : NULL, &ep);
	plan_fini(&run);
	r = entry_epoch(&b, g->fsm.st.epoch + 1, g->fsm.st.ckpt_step, alive,
	    n, g->fsm.st.job_running ? &ep : NULL);
	free((char *)ep.text);
	free((uint32_t *)ep.layout);
	if (r < 0)
		return;
	log_info("ctl.raft: proposing epoch %llu with %d members (term %llu)",
	    (unsigned long long)g->fsm.st.epoch + 1, n,
	    (unsigned long long)g->raft.current_term);
	g->apply.data = g;
	if (raft_apply(&g->raft, &g->apply, &b, 1, apply_done) == 0)
		g->apply_pending = 1;
	else
		raft_free(b.base);
}

void
raftglue_tick(struct ctl *c)
{
	struct rglue *g = c->raft;
	static uint32_t alive[EPOCH_MAX_MEMBERS];
	int n, formed_peer;

	if (g == NULL || g->state == GLUE_CLOSING)
		return;
	n = alive_set(c, alive, &formed_peer);
	if (g->state == GLUE_WAITING) {
		try_form(g, alive, n, formed_peer);
		if (g->state == GLUE_WAITING)
			return;
	}
	publish(g);
	if (g->state == GLUE_JOINING && g->raft.configuration.n > 0)
		glue_set(g, GLUE_RUNNING);
	if (raft_state(&g->raft) == RAFT_LEADER)
		lead(g, alive, n);
	else
		g->rs.due_since = -1;	/* a hold counts in one leadership */
}

static void
job_applied(struct raft_apply *req, int status, void *result)
{
	(void)result;
	if (status != 0)
		log_warnx("ctl.raft: job entry not committed: %s",
		    raft_strerror(status));
	free(req);
}

int
raftglue_job(struct ctl *c, const struct ctl_job *j, uint32_t *leader)
{
	struct rglue *g = c->raft;
	struct raft_apply *req;
	struct raft_buffer b;
	raft_id lid = 0;
	const char *laddr;

	*leader = 0;
	if (g == NULL || g->state != GLUE_RUNNING)
		return -EAGAIN;
	if (raft_state(&g->raft) != RAFT_LEADER) {
		raft_leader(&g->raft, &lid, &laddr);
		*leader = (uint32_t)lid;
		return -EAGAIN;
	}
	if ((req = calloc(1, sizeof(*req))) == NULL)
		return -ENOMEM;
	if (entry_job(&b, (int)j->running, j->name, &j->jp) < 0) {
		free(req);
		return -ENOMEM;
	}
	if (raft_apply(&g->raft, req, &b, 1, job_applied) != 0) {
		raft_free(b.base);
		free(req);
		return -EIO;
	}
	log_info("ctl.raft: proposing job '%s' %s (term %llu)", j->name,
	    j->running ? "start" : "stop",
	    (unsigned long long)g->raft.current_term);
	return 0;
}

static void
raft_closed(struct raft *r)
{
	struct rglue *g = r->data;
	struct ctl *c = g->c;
	void (*done)(struct ctl *) = g->done;

	raft_uv_close(&g->io);
	raft_auth_fini(&g->auth);
	plan_fini(&g->last);
	c->raft = NULL;
	free(g);
	log_info("ctl.raft: closed");
	done(c);
}

void
raftglue_stop(struct ctl *c, void (*done)(struct ctl *))
{
	struct rglue *g = c->raft;

	if (g == NULL) {
		done(c);
		return;
	}
	glue_set(g, GLUE_CLOSING);
	g->done = done;
	g->raft.data = g;
	raft_close(&g->raft, raft_closed);
}

/*
 * Forced recovery (arceus-control --recover): with this node's control
 * stopped, appends a configuration of this node alone as the only voter
 * to its raft log (libraft's raft_recover), so that the survivor of a one-
 * or two-node cluster can commit again.  Offline by necessity: libraft
 * recovers only a raft that is not started.  @return 0 or -errno.
 */
static void
recover_closed(struct raft *r)
{
	(void)r;
}

int
raftglue_recover(const struct nodeconf *nc, uint32_t id, const char *addr)
{
	struct raft_uv_transport t;
	struct raft_io io;
	struct raft raft;
	struct cluster_fsm fsm;
	struct raft_configuration conf;
	uv_loop_t loop;
	char dir[512], p[600], address[64];
	int rc, ret = 0;

	snprintf(dir, sizeof(dir), "%s/raft", nc->state_dir);
	snprintf(p, sizeof(p), "%s/metadata1", dir);
	snprintf(address, sizeof(address), "%s:%lld", addr,
	    (long long)nc->raft_port);
	if (access(p, F_OK) != 0) {
		snprintf(p, sizeof(p), "%s/metadata2", dir);
		if (access(p, F_OK) != 0) {
			log_warnx("ctl.raft: recover: no raft state in %s: "
			    "nothing to recover", dir);
			return -ENOENT;
		}
	}
	if (uv_loop_init(&loop) != 0)
		return -ENOMEM;
	memset(&t, 0, sizeof(t));
	if ((rc = raft_uv_tcp_init(&t, &loop)) != 0) {
		uv_loop_close(&loop);
		return -ENOMEM;
	}
	if ((rc = raft_uv_init(&io, &loop, dir, &t)) != 0) {
		log_warnx("ctl.raft: recover: %s: %s", dir, raft_strerror(rc));
		ret = -EIO;
		goto out_tcp;
	}
	cluster_fsm_init(&fsm, NULL, NULL);
	if ((rc = raft_init(&raft, &io, &fsm.fsm, id, address)) != 0) {
		log_warnx("ctl.raft: recover: init: %s", raft_strerror(rc));
		ret = -EIO;
		goto out_io;
	}
	raft_configuration_init(&conf);
	if (raft_configuration_add(&conf, id, address, RAFT_VOTER) != 0)
		ret = -ENOMEM;
	else if ((rc = raft_recover(&raft, &conf)) != 0) {
		log_warnx("ctl.raft: recover: %s", raft_errmsg(&raft));
		ret = -EIO;
	} else
		log_info("ctl.raft: recovered: node %u (%s) is now the only "
		    "voter of %s", id, address, dir);
	raft_configuration_close(&conf);
	raft_close(&raft, recover_closed);
	uv_run(&loop, UV_RUN_DEFAULT);
out_io:
	raft_uv_close(&io);
out_tcp:
	raft_uv_tcp_close(&t);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return ret;
}
