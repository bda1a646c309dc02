/*
 * replan.c: replanning on measured speed (ARCHITECTURE.md §9, the
 * straggler row), pure functions the leader (raftglue.c) and the tests
 * share:
 *
 *  - speed_add(): a node's measured training speed from its workers'
 *    reports (compute per token, common/ctlmsg.h): the median of the last
 *    SPEED_WINDOW steps, the first SPEED_SKIP steps after a (re)start or a
 *    new epoch ignored (warm-up, a new share), kept while a new window
 *    fills;
 *  - speeds_resolve(): the speeds the planner gets, measured where known,
 *    else the profile scaled to training terms;
 *  - plan_from_layout(): the plan in force, from an epoch's layout;
 *  - replan_decide(): whether a new plan is worth a new epoch, with
 *    hysteresis (a gain threshold, a hold time) and a minimum interval.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner.h"

void
speed_init(struct speed_est *s)
{
	memset(s, 0, sizeof(*s));
	s->last_step = -1;
}

static int
dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(const double *v, int n)
{
	double *t, m;

	if (n < 1 || (t = malloc(sizeof(*t) * (size_t)n)) == NULL)
		return 0.0;
	memcpy(t, v, sizeof(*v) * (size_t)n);
	qsort(t, (size_t)n, sizeof(*t), dbl_cmp);
	m = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
	free(t);
	return m;
}

int
speed_add(struct speed_est *s, uint64_t epoch, int64_t step, double gflops,
    double now)
{
	double old = s->value;

	if (!(gflops > 0) || !isfinite(gflops))
		return 0;	/* not measured: a standby, a pipeline stage */
	s->at = now;
	if (epoch != s->epoch || step != s->last_step + 1) {
		/* a (re)start, a rejoin or a new plan: warm up again */
		if (epoch != s->epoch)
			s->settle = now + SPEED_SETTLE_S;
		s->epoch = epoch;
		s->skip = SPEED_SKIP;
		s->n = s->pos = 0;
	}
	s->last_step = step;
	if (now < s->settle)
		return 0;	/* the old plan's steps may still come */
	if (s->skip > 0) {
		s->skip--;
		return 0;
	}
	s->win[s->pos] = gflops;
	s->pos = (s->pos + 1) % SPEED_WINDOW;
	if (s->n < SPEED_WINDOW)
		s->n++;
	if (s->n >= SPEED_MIN)
		s->value = median(s->win, s->n);
	return s->value != old;
}

int
speed_expire(struct speed_est *s, double now, double ttl)
{
	if (s->value == 0 || now - s->at < ttl)
		return 0;
	s->value = 0;
	s->n = s->pos = 0;
	return 1;
}

double
speeds_resolve(int n, const double *profile, const double *measured,
    double *out, char *src)
{
	double *r = malloc(sizeof(*r) * (size_t)(n > 0 ? n : 1)), ratio = 1.0;
	int k = 0;

	for (int i = 0; r != NULL && i < n; i++)
		if (measured[i] > 0 && profile[i] > 0)
			r[k++] = measured[i] / profile[i];
	if (k > 0)
		ratio = median(r, k);
	free(r);
	for (int i = 0; i < n; i++) {
		if (measured[i] > 0) {
			out[i] = measured[i];
			src[i] = 'm';
		} else {
			out[i] = (profile[i] > 0 ? profile[i] : 1.0) * ratio;
			src[i] = 'p';
		}
	}
	return ratio;
}

int
plan_from_layout(const uint32_t *layout, int len, int tp, int pp, int dp,
    int global_batch, int micro_batch, struct plan *out)
{
	int slot = 2 + tp, ns;

	memset(out, 0, sizeof(*out));
	if (layout == NULL || tp < 1 || tp > PLAN_MAX_TP || pp < 1 ||
	    dp < 1 || (long)dp * pp > 65536)
		return -EINVAL;
	ns = dp * pp * slot;
	if (len != ns + 2 * dp)
		return -EINVAL;		/* no shares: nothing to compare */
	out->rep = calloc((size_t)dp, sizeof(*out->rep));
	out->st = calloc((size_t)dp * (size_t)pp, sizeof(*out->st));
	if (out->rep == NULL || out->st == NULL) {
		plan_fini(out);
		return -ENOMEM;
	}
	out->tp = tp;
	out->pp = pp;
	out->dp = dp;
	out->global_batch = global_batch;
	out->micro_batch = micro_batch;
	for (int i = 0; i < dp * pp; i++) {
		out->st[i].first = (int)layout[i * slot];
		out->st[i].nlayers = (int)layout[i * slot + 1];
		for (int k = 0; k < tp; k++)
			out->st[i].dev[k] = layout[i * slot + 2 + k];
	}
	for (int r = 0; r < dp; r++) {
		out->rep[r].share = (int)layout[ns + 2 * r];
		out->rep[r].nmicro = (int)layout[ns + 2 * r + 1];
	}
	out->ok = 1;
	return 0;
}

/* Do two plans place and split the same way? */
static int
plan_same(const struct plan *a, const struct plan *b)
{
	if (a->tp != b->tp || a->pp != b->pp || a->dp != b->dp)
		return 0;
	for (int r = 0; r < a->dp; r++)
		if (a->rep[r].share != b->rep[r].share)
			return 0;
	for (int i = 0; i < a->dp * a->pp; i++) {
		if (a->st[i].first != b->st[i].first ||
		    a->st[i].nlayers != b->st[i].nlayers)
			return 0;
		for (int k = 0; k < a->tp; k++)
			if (a->st[i].dev[k] != b->st[i].dev[k])
				return 0;
	}
	return 1;
}

static void
shares_text(const struct plan *p, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int r = 0; r < p->dp && off + 16 < len; r++)
		off += (size_t)snprintf(buf + off, len - off, "%s%d",
		    r ? "," : "", p->rep[r].share);
	/* the replicas by their first device, since they may move */
	for (int r = 0; r < p->dp && off + 16 < len; r++)
		off += (size_t)snprintf(buf + off, len - off, "%s%u",
		    r ? "," : " on ", p->st[r * p->pp].dev[0]);
	if (p->nidle > 0 && off + 16 < len)
		snprintf(buf + off, len - off, " (+%d idle)", p->nidle);
}

int
replan_decide(const struct replan_conf *rc, struct replan_state *rs,
    double now, const struct plan *running, const struct plan *fresh,
    char *why, size_t whylen)
{
	char a[160], b[160];
	double gain;

	why[0] = '\0';
	if (!(rc->interval_s > 0) || running == NULL || fresh == NULL ||
	    !running->ok || !fresh->ok || !(running->step > 0)) {
		rs->due_since = -1;
		return REPLAN_NO;
	}
	gain = 1.0 - fresh->step / running->step;
	if (plan_same(running, fresh) || gain < rc->gain) {
		rs->due_since = -1;	/* hysteresis: the hold starts again */
		return REPLAN_NO;
	}
	shares_text(running, a, sizeof(a));
	shares_text(fresh, b, sizeof(b));
	snprintf(why, whylen, "shares %s -> %s, predicted step %.3f s -> "
	    "%.3f s (%.0f%% faster)", a, b, running->step, fresh->step,
	    gain * 100.0);
	if (rs->due_since < 0)
		rs->due_since = now;
	if (now - rs->due_since < rc->hold_s)
		return REPLAN_HOLD;
	if (now - rs->epoch_at < rc->interval_s)
		return REPLAN_WAIT;
	return REPLAN_YES;
}
