/*
 * train.c: the standalone training loop of arceus-worker.
 *
 *   for each step:
 *     zero grads; for each of `accumulate` micro-batches: forward, backward
 *     (each scaled by 1/accumulate, so the gradient is the mean);
 *     clip the global norm; AdamW with the scheduled learning rate;
 *     report; every eval_interval: validation loss; every interval:
 *     checkpoint (a failed checkpoint is reported, training goes on).
 *
 * Everything a resumed run needs is in the checkpoint: parameters, both
 * AdamW moments and its step count, the step, and the states of the batch
 * and dropout generators, so that N steps + resume + N steps ends with
 * the same parameters, bit for bit, as 2N steps.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compute.h"
#include "ctlmsg.h"
#include "log.h"

static volatile sig_atomic_t train_stop;

/*
 * SIGINT and SIGTERM are taken by one thread of their own, with sigwait,
 * and are blocked everywhere else.  A handler must not run on a compute
 * thread: oneDNN's JIT sgemm points the stack pointer into a heap
 * buffer while it runs, and a signal frame pushed there overwrote the
 * allocator's metadata (seen as "corrupted size vs. prev_size", about one
 * SIGTERM in ten).  The first signal stops at the next step boundary with
 * a checkpoint; a second one exits at once.
 */
static void *
signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		if (train_stop) {
			static const char msg[] = "arceus-worker: second signal: "
			    "exiting without a checkpoint\n";

			if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
				_exit(1);
			_exit(1);
		}
		train_stop = 1;
	}
	return NULL;
}

static void
signals_init(void)
{
	static sigset_t set;
	pthread_t t;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	/* before any other thread exists, so that all of them inherit it */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&t, NULL, signal_thread, &set) == 0)
		pthread_detach(t);
	else
		log_warn("signal thread");
}

double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void
fmt_eta(char *buf, size_t len, double s)
{
	long t = (long)(s + 0.5);

	if (t >= 3600)
		snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60,
		    t % 60);
	else
		snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

int
train_segs(struct gpt *m, struct adamw *o, struct trainer_state *ts,
    struct ckpt_seg *segs)
{
	segs[0] = (struct ckpt_seg){ "params", m->params,
	    m->nparams * sizeof(float) };
	segs[1] = (struct ckpt_seg){ "adam_m", o->m, o->n * sizeof(float) };
	segs[2] = (struct ckpt_seg){ "adam_v", o->v, o->n * sizeof(float) };
	segs[3] = (struct ckpt_seg){ "trainer", ts, sizeof(*ts) };
	return 4;
}

static void
shape_of(const struct gpt *m, uint32_t *shape)
{
	shape[0] = (uint32_t)m->cfg.L;
	shape[1] = (uint32_t)m->cfg.NH;
	shape[2] = (uint32_t)m->cfg.C;
	shape[3] = (uint32_t)m->cfg.maxT;
	shape[4] = (uint32_t)m->cfg.V;
}

/*
 * trainer_state.stage: 0 for the whole model, else a pipeline stage's
 * first block << 16 | all blocks, and a tensor rank's (ranks - 1) << 28 |
 * rank << 24
 */
static uint32_t
stage_of(const struct gpt *m)
{
	uint32_t t = 0;

	if (m->cfg.tp > 1)
		t = (uint32_t)(m->cfg.tp - 1) << 28 | (uint32_t)m->cfg.tr << 24;
	if (m->cfg.Lall == 0 || (m->embed && m->head))
		return t;
	return t | (uint32_t)m->cfg.l0 << 16 | (uint32_t)m->cfg.Lall;
}

/* What trainer_state.stage st says, in words. */
static void
stage_words(uint32_t st, char *buf, size_t len)
{
	int n = 0;

	if ((st & 0xffffff) == 0)
		n = snprintf(buf, len, "the whole model");
	else
		n = snprintf(buf, len, "the pipeline stage from block %u of %u",
		    st >> 16 & 0xff, st & 0xffff);
	if (st >> 24 != 0 && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, ", tensor rank %u of %u",
		    st >> 24 & 0xf, (st >> 28) + 1);
}

/*
 * Loads the newest checkpoint of dir into m and o.  @return 0 with *ts
 * filled, -ENOENT if there is none, another -errno with err set.
 */
static int train_check(const char *dir, uint64_t step, struct gpt *m,
    struct adamw *o, struct trainer_state *ts, char *err, size_t errlen);

int
train_load(const char *dir, struct gpt *m, struct adamw *o,
    struct trainer_state *ts, char *err, size_t errlen)
{
	struct ckpt_seg segs[4];
	uint64_t step;
	int n, rc;

	n = train_segs(m, o, ts, segs);
	rc = ckpt_load_latest(dir, 0, &step, segs, n, err, errlen);
	if (rc < 0)
		return rc;
	return train_check(dir, step, m, o, ts, err, errlen);
}

/* train_load of step `step` (a pipeline's stages agree on one). */
int
train_load_at(const char *dir, uint64_t step, struct gpt *m, struct adamw *o,
    struct trainer_state *ts, char *err, size_t errlen)
{
	struct ckpt_seg segs[4];
	int n, rc;

	n = train_segs(m, o, ts, segs);
	if ((rc = ckpt_load_at(dir, 0, step, segs, n, err, errlen)) < 0)
		return rc;
	return train_check(dir, step, m, o, ts, err, errlen);
}

/* The loaded trainer state is of this model (stage) and step. */
static int
train_check(const char *dir, uint64_t step, struct gpt *m, struct adamw *o,
    struct trainer_state *ts, char *err, size_t errlen)
{
	uint32_t shape[5];

	shape_of(m, shape);
	if (ts->stage != stage_of(m)) {
		char have[128], want[128];

		stage_words(ts->stage, have, sizeof(have));
		stage_words(stage_of(m), want, sizeof(want));
		snprintf(err, errlen, "%s: checkpoint of step %llu is of %s, "
		    "this worker trains %s (blocks %u-%u): use its own "
		    "checkpoint dir", dir, (unsigned long long)step, have, want,
		    (unsigned)m->cfg.l0, (unsigned)(m->cfg.l0 + m->cfg.L - 1));
		return -EINVAL;
	}
	if (memcmp(shape, ts->shape, sizeof(shape)) != 0 ||
	    ts->step != step) {
		snprintf(err, errlen, "%s: checkpoint of step %llu is of "
		    "another model (layers %u heads %u width %u block %u): "
		    "use another checkpoint dir", dir,
		    (unsigned long long)step, ts->shape[0], ts->shape[1],
		    ts->shape[2], ts->shape[3]);
		return -EINVAL;
	}
	o->t = ts->adam_t;
	return 0;
}

static float
evaluate(struct gpt *m, const struct dataset *d, int B, int T, int iters,
    int *in, int *tg)
{
	double sum = 0;

	m->training = 0;
	for (int i = 0; i < iters; i++) {
		data_val_batch(d, i, B, T, in, tg);
		if (gpt_forward(m, in, tg, B, T) < 0)
			return NAN;
		sum += m->loss;
	}
	m->training = 1;
	return (float)(sum / iters);
}

static int progress_open;	/* a progress line waits for its newline */

/* Ends an in-place progress line, so that a log line starts clean. */
static void
progress_break(void)
{
	if (progress_open) {
		fputc('\n', stderr);
		progress_open = 0;
	}
}

static void
progress(const struct train_opts *o, int tty, int64_t step, int64_t steps,
    float loss, float val, double ms, double tps, double eta, int newline)
{
	char etab[32], valb[32] = "";

	if (o->quiet)
		return;
	fmt_eta(etab, sizeof(etab), eta);
	if (!isnan(val))
		snprintf(valb, sizeof(valb), " | val %.4f", val);
	fprintf(stderr, "%s step %lld/%lld | loss %.4f%s | %.1f ms/step | "
	    "%.0f tok/s | ETA %s%s", tty ? "\r\033[K" : "", (long long)step,
	    (long long)steps, loss, valb, ms, tps, etab,
	    (tty && !newline) ? "" : "\n");
	progress_open = tty && !newline;
	fflush(stderr);
}

/* Saves the state after ts->step steps; the generators go in with it. */
static int
checkpoint(const struct job *j, struct gpt *m, struct adamw *o,
    const struct rng *data_rng, struct trainer_state *ts, uint64_t *last_ok)
{
	struct ckpt_seg segs[4];
	char err[512];
	double t0 = now_s();
	int n, rc;

	memcpy(ts->data_rng, data_rng->s, sizeof(ts->data_rng));
	memcpy(ts->drop_rng, m->drop_rng.s, sizeof(ts->drop_rng));
	ts->adam_t = o->t;
	n = train_segs(m, o, ts, segs);

	rc = ckpt_save(j->ckpt_dir, ts->step, segs, n, (int)j->ckpt_keep, err,
	    sizeof(err));
	if (rc < 0) {
		progress_break();
		if (*last_ok)
			log_warnx("checkpoint of step %llu failed: %s; training "
			    "goes on, the checkpoint of step %llu stays valid",
			    (unsigned long long)ts->step, err,
			    (unsigned long long)*last_ok);
		else
			log_warnx("checkpoint of step %llu failed: %s; training "
			    "goes on, with no complete checkpoint yet",
			    (unsigned long long)ts->step, err);
		return rc;
	}
	*last_ok = ts->step;
	log_debug("checkpoint of step %llu written in %.0f ms",
	    (unsigned long long)ts->step, (now_s() - t0) * 1e3);
	return 0;
}

/*
 * A collective failed: in a plan's epoch, ask control for the next epoch,
 * so that the restarted workers of every node start their collectives
 * from sequence 0 together (a restarted peer would start there, the
 * dataplanes of the others would not).
 */
static void
plan_failed(const struct job *j, uint64_t epoch)
{
	char path[1024];
	int r;

	if (epoch == 0)		/* not a plan's: nothing to ask */
		return;
	report_path(j, path, sizeof(path));
	if (path[0] != '\0' && (r = ctl_reepoch_ask(path, epoch)) < 0)
		log_warnx("asking control at %s for a fresh epoch: %s", path,
		    strerror(-r));
}

static void
dist_failed(const struct dist *d, const struct job *j)
{
	plan_failed(j, d->epoch);
}

#define DIST_REJOIN_WAIT_S	20.0	/* for the epoch after a failed one */

#define PIPE_PLAN_GROUP		1000	/* groups of a plan's pipeline */

/*
 * dist.stages = plan: the job as the committed plan has it, into *out: its
 * stages (dist.stages, replica by replica), their blocks (dist.layers),
 * each replica's rows per micro-batch (dist.shares) and the micro-batches
 * (train.accumulate); once this node's dataplane runs the plan's epoch.
 * @return 0 or -errno with err set
 */
static int
pipe_from_plan(const struct job *j, struct job *out, uint64_t *epoch,
    char *err, size_t errlen)
{
	struct ctl_share sh;
	size_t n = 0;
	int r, M;

	*out = *j;
	if ((r = dist_share_wait(j, &sh, 1, err, errlen)) < 0)
		return r;
	M = sh.nmicro[0] > 0 ? sh.nmicro[0] : 1;
	out->dist_stages[0] = out->dist_layers[0] = out->dist_shares[0] = '\0';
	for (uint32_t i = 0; i < sh.dp; i++) {
		if (sh.nmicro[i] != sh.nmicro[0] || sh.shares[i] % M != 0) {
			snprintf(err, errlen, "the plan of epoch %llu gives "
			    "replica %u %d rows in %d micro-batches, replica 0 "
			    "%d in %d: a pipeline here needs the same number of "
			    "micro-batches, of whole rows, in every replica",
			    (unsigned long long)sh.epoch, i, sh.shares[i],
			    sh.nmicro[i], sh.shares[0], sh.nmicro[0]);
			return -ENOTSUP;
		}
		for (uint32_t s = 0; s < sh.pp; s++)
			n += (size_t)snprintf(out->dist_stages + n,
			    n < sizeof(out->dist_stages) ?
			    sizeof(out->dist_stages) - n : 0, "%s%u",
			    s > 0 ? "," : i > 0 ? "/" : "",
			    sh.members[i * sh.pp + s]);
		snprintf(out->dist_shares + strlen(out->dist_shares),
		    sizeof(out->dist_shares) - strlen(out->dist_shares),
		    "%s%d", i > 0 ? "," : "", sh.shares[i] / M);
	}
	for (uint32_t s = 0; s < sh.pp; s++)
		snprintf(out->dist_layers + strlen(out->dist_layers),
		    sizeof(out->dist_layers) - strlen(out->dist_layers),
		    "%s%d", s > 0 ? "," : "", sh.layers[s]);
	if (n >= sizeof(out->dist_stages)) {
		snprintf(err, errlen, "the plan's stages do not fit "
		    "dist.stages");
		return -E2BIG;
	}
	out->accumulate = M;
	out->dist_group = PIPE_PLAN_GROUP;
	*epoch = sh.epoch;
	log_info("pipeline by the plan of epoch %llu, job %s: stages %s, "
	    "blocks %s, rows %s per micro-batch, %d micro-batches",
	    (unsigned long long)sh.epoch, sh.job, out->dist_stages,
	    out->dist_layers, out->dist_shares, M);
	return dist_epoch_wait(j->dist_dataplane, sh.epoch, err, errlen);
}

/*
 * dist.tensor = plan: the job as the committed plan has it (tensor.c's
 * tp_from_share), once this node's dataplane runs the plan's epoch; a
 * plan of tp 1 (the planner's choice for a model that fits) is trained
 * data parallel (dist.members = plan).  @return 0 or -errno with err set
 */
static int
tp_from_plan(const struct job *j, struct job *out, uint64_t *epoch,
    char *err, size_t errlen)
{
	struct ctl_share sh;
	int r;

	*out = *j;
	if ((r = dist_share_wait(j, &sh, 2, err, errlen)) < 0)
		return r;
	if (sh.tp < 2) {
		out->dist_tensor[0] = '\0';
		snprintf(out->dist_members, sizeof(out->dist_members), "plan");
		log_info("tensor parallel: the plan of epoch %llu is tp 1: data "
		    "parallel", (unsigned long long)sh.epoch);
		*epoch = 0;
		return 0;
	}
	if ((r = tp_from_share(&sh, j, out, err, errlen)) < 0)
		return r;
	*epoch = sh.epoch;
	log_info("tensor parallel by the plan of epoch %llu, job %s: groups "
	    "%s, rows %s per micro-batch, %lld micro-batches",
	    (unsigned long long)sh.epoch, sh.job, out->dist_tensor,
	    out->dist_shares, (long long)out->accumulate);
	return dist_epoch_wait(j->dist_dataplane, sh.epoch, err, errlen);
}

/* Is the plan this replica follows over (control runs a newer epoch)? */
static int
plan_over(const struct dist *d, const struct job *j)
{
	struct ctl_share sh;
	char path[1024], err[256];

	report_path(j, path, sizeof(path));
	if (ctl_share_get(path, &sh, err, sizeof(err)) < 0 ||
	    sh.epoch <= d->epoch)
		return 0;
	progress_break();
	log_info("data parallel: the plan of epoch %llu is over (epoch %llu "
	    "now); rejoining", (unsigned long long)d->epoch,
	    (unsigned long long)sh.epoch);
	return 1;
}
#define DIST_REJOIN_TRIES	20

/*
 * A replica of a plan whose step failed keeps its state (the last whole
 * step, in memory) instead of exiting: it leaves the dataplane, waits
 * (bounded) for an epoch after the one that failed, which it asked for,
 * takes that epoch's share and agrees on state with its replicas (the
 * newest wins, which may be its own).  So a state that lives only in
 * memory (a node whose disk is full) survives a peer's failure.
 * @return 0, or -1 (said why) to stop
 */
static int
dist_rejoin(struct dist *d, const struct job *j, struct gpt *m,
    struct adamw *o, struct trainer_state *ts, struct rng *data_rng,
    uint64_t *last_ckpt)
{
	struct ctl_share sh;
	char path[1024], err[512];
	int took = -1;

	report_path(j, path, sizeof(path));
	for (int tries = 0; took < 0; tries++) {
		uint64_t failed = d->epoch;
		double t0 = now_s();

		dist_fini(d);
		if (tries == DIST_REJOIN_TRIES)
			return -1;
		while (!train_stop && now_s() - t0 < DIST_REJOIN_WAIT_S) {
			if (ctl_share_get(path, &sh, err, sizeof(err)) == 0 &&
			    sh.epoch > failed)
				break;
			usleep(200000);
		}
		if (train_stop)
			return -1;
		if (dist_init(d, j, m->nparams, err, sizeof(err)) < 0) {
			log_warnx("data parallel: %s", err);
			return -1;
		}
		d->model = m;
		took = dist_sync_state(d, m, o, ts, 1, data_rng, err,
		    sizeof(err));
		if (took < 0) {
			log_warnx("data parallel: %s; again with the next "
			    "epoch", err);
			dist_failed(d, j);
		}
	}
	if (took == 2 && j->ckpt_dir[0] != '\0')
		checkpoint(j, m, o, data_rng, ts, last_ckpt);
	log_info("data parallel: rejoined in epoch %llu at step %llu",
	    (unsigned long long)d->epoch, (unsigned long long)ts->step);
	return 0;
}

int
train_run(const struct job *j, const struct train_opts *o)
{
	const struct kern_ops *k = kern_lookup(j->kernels);
	struct gpt_config cfg = { (int)j->n_layer, (int)j->n_head,
	    (int)j->n_embd, (int)j->block_size, GPT_VOCAB, 0, 0, 0, 0 };
	int B = (int)j->batch_size, T = (int)j->block_size, rc = -1;
	int tty = isatty(STDERR_FILENO) && !o->quiet;
	struct trainer_state ts;
	struct dataset data = { 0 };
	struct adamw opt = { 0 };
	struct rng init_rng, data_rng, sample_rng, step_data_rng, step_drop_rng;
	struct dist dist = { .rank = 0, .world = 1 };
	struct pipe pipe = { 0 };
	int piped = j->dist_dataplane[0] != '\0' && j->dist_stages[0] != '\0';
	/* tensor parallel (tensor.c): a group, each rank a shard of blocks */
	struct pipe tens = { 0 };
	int tensor = j->dist_dataplane[0] != '\0' && j->dist_tensor[0] != '\0';
	struct reporter rep;
	int64_t ckpt_unix = 0;
	int rows, first_row, G, nmicro, EB = (int)j->batch_size;
	int stop_agreed = 0, resumed = 0, rejoin, rejoin_now = 0, nbuf;
	double epoch_check = 0;
	struct job planned;		/* dist.stages = plan: the plan's */
	uint64_t pipe_epoch = 0, tp_epoch = 0;
	struct gpt m;
	FILE *mf = NULL;
	uint64_t last_ckpt = 0;
	float val = NAN, last_loss = NAN;
	double ema_ms = 0, t_start;
	int *in = NULL, *tg = NULL;
	char err[512];

	static pthread_once_t sig_once = PTHREAD_ONCE_INIT;

	pthread_once(&sig_once, signals_init);
	train_stop = 0;
	report_path(j, err, sizeof(err));
	report_open(&rep, err);
	memset(&ts, 0, sizeof(ts));
	kern_set_threads((int)j->threads);
	if (data_load(&data, j->path, j->val_fraction, T, err,
	    sizeof(err)) < 0) {
		log_warnx("%s", err);
		return -1;
	}
	memset(&m, 0, sizeof(m));
	if (piped && strcmp(j->dist_stages, "plan") == 0) {
		if (pipe_from_plan(j, &planned, &pipe_epoch, err,
		    sizeof(err)) < 0) {
			log_warnx("pipeline: %s", err);
			goto out;
		}
		j = &planned;
	}
	if (tensor && strcmp(j->dist_tensor, "plan") == 0) {
		if (tp_from_plan(j, &planned, &tp_epoch, err,
		    sizeof(err)) < 0) {
			log_warnx("tensor parallel: %s", err);
			goto out;
		}
		j = &planned;
		tensor = j->dist_tensor[0] != '\0';	/* tp 1: data parallel */
	}
	if (piped) {
		/* our blocks of the model; the stages agree below */
		if (pipe_init(&pipe, j, err, sizeof(err)) < 0) {
			log_warnx("pipeline: %s", err);
			goto out;
		}
		if (pipe_epoch != 0)	/* a new epoch stops this plan's work */
			pipe_bind_epoch(&pipe, pipe_epoch);
		cfg.l0 = pipe.l0;
		cfg.L = pipe.layers[pipe.s];
		cfg.Lall = (int)j->n_layer;
		/* stages of tensor ranks (1+2,3+4): our shard of the stage's */
		if (pipe.K > 1) {
			cfg.tp = pipe.K;
			cfg.tr = pipe.k;
		}
	}
	if (tensor) {
		/* our shard of every block; the ranks agree below */
		if (tp_init(&tens, j, err, sizeof(err)) < 0) {
			log_warnx("tensor parallel: %s", err);
			goto out;
		}
		if (tp_epoch != 0)	/* a new epoch stops this plan's work */
			pipe_bind_epoch(&tens, tp_epoch);
		cfg.tp = tens.S;
		cfg.tr = tens.s;
	}
	if (gpt_init(&m, &cfg, k) < 0) {
		log_warnx("model: out of memory");
		goto out;
	}
	m.dropout = (float)j->dropout;
	if (tensor) {
		m.tp_reduce = tp_reduce;
		m.tp_reduce_arg = &tens;
	}
	if (piped && pipe.K > 1) {
		m.tp_reduce = tp_reduce;
		m.tp_reduce_arg = &pipe;
	}
	if (j->dist_dataplane[0] != '\0' && !piped && !tensor) {
		if (dist_init(&dist, j, m.nparams, err, sizeof(err)) < 0) {
			log_warnx("data parallel: %s", err);
			goto out;
		}
		dist.model = &m;
	}
	/*
	 * A step: the global batch of G rows; ours are [first_row,
	 * first_row + rows), in nmicro micro-batches of B rows at most.
	 */
	if (dist.dp != NULL) {
		rows = dist.rows;
		first_row = dist.first;
		G = dist.rows_all;
		nmicro = dist.nmicro;
	} else {
		rows = G = B * (int)j->accumulate;
		first_row = 0;
		nmicro = (int)j->accumulate;
	}
	if (piped) {
		/* our replica's rows (its share), of all replicas' G */
		rows = pipe.G;
		G = pipe.Gall;
	}
	if (tensor) {
		/* every rank of a group the group's rows, of all groups' G */
		rows = tens.G;
		first_row = tens.first;
		G = tens.Gall;
	}
	/* a standby (no rows) runs no micro-batch: B only sizes buffers */
	B = nmicro > 0 ? (rows + nmicro - 1) / nmicro : 1;
	if (adamw_init(&opt, m.nparams) < 0) {
		log_warnx("optimizer: out of memory");
		goto out;
	}
	/* training rows, and validation batches of batch_size (the same on
	 * every replica) */
	nbuf = B > EB ? B : EB;
	in = malloc(sizeof(int) * (size_t)nbuf * T);
	tg = malloc(sizeof(int) * (size_t)nbuf * T);
	if (in == NULL || tg == NULL)
		goto out;
	rng_seed(&init_rng, (uint64_t)j->seed);
	rng_seed(&data_rng, (uint64_t)j->seed + 1);
	/* replicas draw one global batch, and dropout masks of their own */
	rng_seed(&m.drop_rng, (uint64_t)j->seed + 2 +
	    0x9e3779b97f4a7c15ull * (uint64_t)(dist.rank + pipe.r * pipe.S +
	    pipe.s + tens.r));
	rng_seed(&sample_rng, (uint64_t)j->seed + 3);
	gpt_init_weights(&m, &init_rng);
	shape_of(&m, ts.shape);
	ts.stage = stage_of(&m);

	if (j->ckpt_dir[0] != '\0' && j->resume) {
		rc = train_load(j->ckpt_dir, &m, &opt, &ts, err, sizeof(err));
		if ((piped || tensor) && (rc == 0 || rc == -ENOENT) &&
		    (rc = pipe_resume(piped ? &pipe : &tens, j->ckpt_dir, &m,
		    &opt, &ts, rc, err, sizeof(err))) < 0 && rc != -ENOENT) {
			log_warnx("%s: %s", piped ? "pipeline" :
			    "tensor parallel", err);
			goto out;
		}
		if (rc == 0) {
			memcpy(data_rng.s, ts.data_rng, sizeof(data_rng.s));
			memcpy(m.drop_rng.s, ts.drop_rng, sizeof(m.drop_rng.s));
			last_ckpt = ts.step;
			resumed = 1;
			log_info("resumed from %s at step %llu", j->ckpt_dir,
			    (unsigned long long)ts.step);
		} else if (rc == -ENOENT) {
			log_info("no checkpoint in %s: starting fresh",
			    j->ckpt_dir);
		} else {
			log_warnx("%s", err);
			goto out;
		}
		rc = -1;
	}
	/* replicas start from one state: the newest any of them holds */
	if (dist.dp != NULL) {
		int took = dist_sync_state(&dist, &m, &opt, &ts, resumed,
		    &data_rng, err, sizeof(err));

		if (took < 0) {
			log_warnx("data parallel: %s", err);
			dist_failed(&dist, j);
			goto out;
		}
		/* what we took is kept here too, as if trained here */
		if (took == 2 && j->ckpt_dir[0] != '\0')
			checkpoint(j, &m, &opt, &data_rng, &ts, &last_ckpt);
	}
	if (piped && (pipe_agree(&pipe, ts.step, err, sizeof(err)) < 0 ||
	    (pipe.K > 1 && tp_agree_whole(&pipe, &m, &opt, err,
	    sizeof(err)) < 0))) {
		log_warnx("pipeline: %s", err);
		goto out;
	}
	if (tensor && (pipe_agree(&tens, ts.step, err, sizeof(err)) < 0 ||
	    tp_agree_whole(&tens, &m, &opt, err, sizeof(err)) < 0)) {
		log_warnx("tensor parallel: %s", err);
		goto out;
	}
	if (o->metrics_out != NULL &&
	    (mf = fopen(o->metrics_out, "a")) == NULL) {
		log_warn("%s", o->metrics_out);
		goto out;
	}
	log_info("model: %d layers, %d heads, width %d, block %d: %.2fM "
	    "parameters%s; kernels %s; %lld steps of %d x %d tokens x %lld%s",
	    (int)j->n_layer, cfg.NH, cfg.C, cfg.maxT, m.nparams / 1e6,
	    piped ? " on this stage" : tensor ? " on this tensor rank" : "",
	    k->name,
	    (long long)j->steps, B, T, (long long)j->accumulate,
	    dist.world > 1 ? " on each replica" : "");
	log_info("data: %s, %zu tokens (%zu train, %zu validation)", j->path,
	    data.ntokens, data.ntrain, data.ntokens - data.ntrain);

	t_start = now_s();
	int64_t first = (int64_t)ts.step;
	if (first >= j->steps)
		log_info("the checkpoint in %s is at step %lld of %lld: nothing "
		    "to train (raise train.steps, or remove the directory to "
		    "start over)", j->ckpt_dir, (long long)first,
		    (long long)j->steps);
	/*
	 * A signal stops a lone trainer before its next step; replicas agree
	 * on the step to stop after (the stop rides on the all-reduce), since
	 * one that stopped alone would leave the others waiting on it.
	 */
	while ((int64_t)ts.step < j->steps && (dist.dp != NULL || piped ||
	    tensor ?
	    !stop_agreed : !train_stop)) {
		double t0 = now_s(), ms, tps;
		float lr = lr_at(j, (int64_t)ts.step), loss = 0, norm;
		int eval_now;

		/*
		 * A plan's replica looks, once a second, whether its plan is
		 * still in force: one whose collectives never fail (a replica
		 * alone) would not notice otherwise.  Then, or after a failed
		 * step, it rejoins with the next plan, keeping its state.
		 */
		if (dist.epoch != 0 && !piped && !rejoin_now &&
		    now_s() >= epoch_check) {
			epoch_check = now_s() + 1.0;
			rejoin_now = plan_over(&dist, j);
		}
		if (rejoin_now) {
			rejoin_now = 0;
			if (dist_rejoin(&dist, j, &m, &opt, &ts, &data_rng,
			    &last_ckpt) < 0)
				goto out;
			/* the new plan's rows */
			rows = dist.rows;
			first_row = dist.first;
			G = dist.rows_all;
			nmicro = dist.nmicro;
			B = nmicro > 0 ? (rows + nmicro - 1) / nmicro : 1;
			if (B > nbuf) {
				int *a = realloc(in, sizeof(int) * (size_t)B * T);
				int *b = a == NULL ? NULL : realloc(tg,
				    sizeof(int) * (size_t)B * T);

				if (a != NULL)
					in = a;
				if (b == NULL) {
					log_warnx("out of memory");
					goto out;
				}
				tg = b;
				nbuf = B;
			}
			continue;
		}
		step_data_rng = data_rng;
		step_drop_rng = m.drop_rng;
		if (piped) {
			struct pipe_result pr;

			if (pipe_step(&pipe, &m, &data, &data_rng, in, tg,
			    (float)j->grad_clip, train_stop ? 1.0f : 0.0f, &pr,
			    err, sizeof(err)) < 0)
				goto step_failed;
			loss = pr.loss;
			norm = pr.norm;
			stop_agreed = pr.stop;
			goto step_apply;
		}
		report_compute_start(&rep);
		gpt_zero_grad(&m);
		m.tp_err = 0;
		for (int a = 0, off = first_row; a < nmicro; a++) {
			int n = rows / nmicro + (a < rows % nmicro);
			struct rng r = step_data_rng;

			/* the step's G rows from its generator, ours of them */
			data_train_batch_part(&data, &r, G, off, n, T, in, tg);
			data_rng = r;
			off += n;
			if (gpt_forward(&m, in, tg, n, T) < 0) {
				log_warnx("forward failed: out of memory");
				goto out;
			}
			/*
			 * these rows' share of the global mean; in the last
			 * micro-batch each layer's all-reduce goes as soon as
			 * backward is past it
			 */
			m.grad_ready = (dist.dp != NULL || tens.R > 1) &&
			    j->dist_overlap && a == nmicro - 1 ?
			    dist_layer_ready : NULL;
			m.grad_ready_arg = tensor ? &tens.rep : &dist;
			tens.rep.model = &m;
			gpt_backward(&m, (float)n / (float)G);
			m.grad_ready = NULL;
			loss += m.loss * ((float)n / (float)G);
		}
		if (nmicro == 0) {	/* a standby: the generator still moves */
			struct rng r = step_data_rng;

			data_train_batch_part(&data, &r, G, 0, 0, T, in, tg);
			data_rng = r;
		}
		report_compute_end(&rep, (long)rows * T);
		if (tensor) {
			int stop = train_stop != 0;

			/*
			 * replicas: the shard's gradients, loss and stop
			 * summed with this rank's replicas; then (every rank's
			 * loss is the same) the norm and stop over the group
			 */
			if (m.tp_err != 0) {
				snprintf(err, sizeof(err), "%s", tens.why);
				goto step_failed;
			}
			if (tens.R > 1 && dist_step_finish(&tens.rep, &m, &loss,
			    stop, &stop, err, sizeof(err)) < 0)
				goto step_failed;
			if (tp_step_finish(&tens, &m, stop, &stop_agreed, &norm,
			    err, sizeof(err)) < 0)
				goto step_failed;
			goto step_apply;
		}
		if (dist.dp != NULL &&
		    dist_step_finish(&dist, &m, &loss, train_stop != 0,
		    &stop_agreed, err, sizeof(err)) < 0) {
step_failed:
			progress_break();
			/* a plan's replica rejoins in place (below) */
			rejoin = dist.epoch != 0 && !piped && !train_stop;
			log_warnx("step %llu: %s; %s",
			    (unsigned long long)ts.step + 1, err, rejoin ?
			    "rejoining with the next epoch's plan" :
			    "stopping (restart the job on the members that "
			    "remain)");
			/* the step is not applied: save where it began */
			data_rng = step_data_rng;
			m.drop_rng = step_drop_rng;
			if (j->ckpt_dir[0] != '\0' && last_ckpt != ts.step)
				checkpoint(j, &m, &opt, &data_rng, &ts,
				    &last_ckpt);
			/* a plan's replicas, pipeline or tensor groups */
			plan_failed(j, dist.epoch != 0 ? dist.epoch :
			    pipe_epoch != 0 ? pipe_epoch : tp_epoch);
			if (!rejoin)
				goto out;
			rejoin_now = 1;
			continue;
		}
		/* clipped inside AdamW's pass, not by a pass of its own */
		norm = grad_norm(m.grads, m.nparams);
step_apply:
		/* a pipeline's stages scaled theirs by the global norm */
		adamw_step(&opt, m.params, m.grads, &m, lr, (float)j->beta1,
		    (float)j->beta2, (float)j->eps, (float)j->weight_decay,
		    piped ? 1.0f : grad_clip_scale(norm, (float)j->grad_clip));
		ts.step++;
		last_loss = loss;
		ts.tokens_seen += (uint64_t)G * T;
		if (!isfinite(loss)) {
			progress_break();
			log_warnx("step %llu: loss is %f; stopping (lower "
			    "train.lr or check the data)",
			    (unsigned long long)ts.step, loss);
			goto out;
		}
		ms = (now_s() - t0) * 1e3;
		ema_ms = ts.step - 1 == (uint64_t)first ? ms :
		    0.9 * ema_ms + 0.1 * ms;
		tps = (double)G * T / (ms / 1e3);

		eval_now = (j->eval_interval > 0 &&
		    ts.step % (uint64_t)j->eval_interval == 0) ||
		    (int64_t)ts.step == j->steps;
		if (eval_now && piped) {
			if (pipe_eval(&pipe, &m, &data, (int)j->eval_iters, in,
			    tg, &val, err, sizeof(err)) < 0) {
				/* the step is done: checkpoint it, then stop */
				progress_break();
				log_warnx("step %llu, validation: %s; stopping "
				    "(restart the job on the members that "
				    "remain)", (unsigned long long)ts.step, err);
				if (j->ckpt_dir[0] != '\0')
					checkpoint(j, &m, &opt, &data_rng, &ts,
					    &last_ckpt);
				goto out;
			}
		} else if (eval_now) {
			val = evaluate(&m, &data, EB, T, (int)j->eval_iters, in,
			    tg);
			if (m.tp_err != 0) {
				progress_break();
				log_warnx("step %llu, validation: %s; stopping",
				    (unsigned long long)ts.step, tens.why);
				if (j->ckpt_dir[0] != '\0')
					checkpoint(j, &m, &opt, &data_rng, &ts,
					    &last_ckpt);
				goto out;
			}
		}
		if (mf != NULL) {
			fprintf(mf, "{\"step\":%llu,\"loss\":%.6f,\"lr\":%.6g,"
			    "\"grad_norm\":%.6g,\"ms_per_step\":%.3f,"
			    "\"tokens_per_s\":%.1f", (unsigned long long)ts.step,
			    loss, lr, norm, ms, tps);
			if (eval_now)
				fprintf(mf, ",\"val_loss\":%.6f", val);
			fprintf(mf, "}\n");
			fflush(mf);
		}
		if (eval_now || ts.step % (uint64_t)j->log_interval == 0 ||
		    ts.step == 1)
			progress(o, tty, (int64_t)ts.step, j->steps, loss, val,
			    ema_ms, (double)G * T /
			    (ema_ms / 1e3), ema_ms / 1e3 *
			    (double)(j->steps - (int64_t)ts.step), eval_now);
		if (j->ckpt_dir[0] != '\0' && j->ckpt_interval > 0 &&
		    ts.step % (uint64_t)j->ckpt_interval == 0 &&
		    checkpoint(j, &m, &opt, &data_rng, &ts, &last_ckpt) == 0)
			ckpt_unix = (int64_t)time(NULL);
		report_send(&rep, (int64_t)ts.step, loss, tps,
		    (int64_t)last_ckpt, ckpt_unix);
	}
	progress_break();
	if (train_stop || stop_agreed)
		log_info("stopped by signal at step %llu",
		    (unsigned long long)ts.step);
	if (j->ckpt_dir[0] != '\0' && last_ckpt != ts.step &&
	    checkpoint(j, &m, &opt, &data_rng, &ts, &last_ckpt) == 0)
		report_send(&rep, (int64_t)ts.step, last_loss, ema_ms > 0 ?
		    (double)G * T / (ema_ms / 1e3) : 0,
		    (int64_t)last_ckpt, (int64_t)time(NULL));
	if ((int64_t)ts.step > first)
		log_info("done: %llu steps in %.1f s, final loss %.4f, "
		    "validation loss %.4f", (unsigned long long)(ts.step - first),
		    now_s() - t_start, last_loss, val);
	gpt_profile_report();
	if (j->sample_len > 0 && piped)
		log_info("no sample: generating needs the whole model, and "
		    "this stage holds blocks %d-%d", cfg.l0, cfg.l0 + cfg.L - 1);
	/* a tensor group generates together (a rank's late signal aside) */
	else if (j->sample_len > 0 && (tensor || !train_stop) &&
	    !stop_agreed) {
		uint8_t *s = malloc((size_t)j->sample_len);

		if (s != NULL && gpt_generate(&m, NULL, 0, s,
		    (int)j->sample_len, (float)j->temperature,
		    &sample_rng) == 0) {
			printf("--- sample (%lld bytes, temperature %.2f) ---\n",
			    (long long)j->sample_len, j->temperature);
			fwrite(s, 1, (size_t)j->sample_len, stdout);
			printf("\n---\n");
			fflush(stdout);
		}
		free(s);
	}
	rc = 0;
out:
	report_close(&rep);
	dist_fini(&dist);
	pipe_fini(&pipe);
	pipe_fini(&tens);
	if (mf != NULL)
		fclose(mf);
	free(in);
	free(tg);
	adamw_fini(&opt);
	gpt_fini(&m);
	data_free(&data);
	return rc;
}
