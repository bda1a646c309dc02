/*
 * fault.c: countdown and rate fault injectors; see fault.h.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "log.h"

struct fault_state {
	int		armed;		/* 0 off, 1 countdown, 2 rate */
	unsigned long	countdown;	/* calls left before the fault */
	int		persistent;	/* keep failing after the first */
	int		err;		/* positive errno */
	double		rate;
	unsigned long	rng;
	unsigned long	injected;
	int		tripped;
};

static const char *const fault_names[FAULT_NCLASSES] = {
	[FAULT_ALLOC] = "alloc",
	[FAULT_CKPT_OPEN] = "ckpt_open",
	[FAULT_CKPT_WRITE] = "ckpt_write",
	[FAULT_CKPT_FSYNC] = "ckpt_fsync",
	[FAULT_CKPT_RENAME] = "ckpt_rename",
	[FAULT_CKPT_READ] = "ckpt_read",
	[FAULT_NET_SEND] = "net_send",
	[FAULT_NET_RECV] = "net_recv",
	[FAULT_NET_DROP] = "net_drop",
	[FAULT_NET_DUP] = "net_dup",
	[FAULT_NET_REORDER] = "net_reorder",
	[FAULT_NET_CORRUPT] = "net_corrupt",
	[FAULT_POST] = "post",
	[FAULT_COMPLETION] = "completion",
};

static struct fault_state faults[FAULT_NCLASSES];
static double slowdown = 1.0;
static atomic_flag fault_lock = ATOMIC_FLAG_INIT;
volatile int fault_armed_any;

static void
lock(void)
{
	while (atomic_flag_test_and_set_explicit(&fault_lock,
	    memory_order_acquire))
		;
}

static void
unlock(void)
{
	atomic_flag_clear_explicit(&fault_lock, memory_order_release);
}

const char *
fault_name(enum fault_class c)
{
	if ((int)c < 0 || c >= FAULT_NCLASSES)
		return NULL;
	return fault_names[c];
}

int
fault_lookup(const char *name)
{
	int i;

	for (i = 0; i < FAULT_NCLASSES; i++)
		if (strcmp(fault_names[i], name) == 0)
			return i;
	return -1;
}

static void
recount(void)
{
	int i, any = 0;

	for (i = 0; i < FAULT_NCLASSES; i++)
		any |= faults[i].armed != 0;
	fault_armed_any = any;
}

void
fault_arm(enum fault_class c, unsigned long after, int err, int persistent)
{
	lock();
	memset(&faults[c], 0, sizeof(faults[c]));
	faults[c].armed = 1;
	faults[c].countdown = after ? after : 1;
	faults[c].err = err;
	faults[c].persistent = persistent;
	recount();
	unlock();
}

void
fault_arm_rate(enum fault_class c, double rate, unsigned long seed, int err)
{
	lock();
	memset(&faults[c], 0, sizeof(faults[c]));
	faults[c].armed = 2;
	faults[c].rate = rate;
	faults[c].rng = seed * 2654435761ul + 1;
	faults[c].err = err;
	recount();
	unlock();
}

void
fault_disarm(enum fault_class c)
{
	lock();
	faults[c].armed = 0;
	recount();
	unlock();
}

void
fault_disarm_all(void)
{
	int i;

	lock();
	for (i = 0; i < FAULT_NCLASSES; i++)
		faults[i].armed = 0;
	slowdown = 1.0;
	recount();
	unlock();
}

double
fault_slowdown(void)
{
	return slowdown;
}

void
fault_set_slowdown(double f)
{
	slowdown = f >= 1.0 && f <= 1000.0 ? f : 1.0;
}

unsigned long
fault_injected(enum fault_class c)
{
	unsigned long n;

	lock();
	n = faults[c].injected;
	unlock();
	return n;
}

int
fault_hit_slow(enum fault_class c)
{
	struct fault_state *f = &faults[c];
	int rc = 0;

	lock();
	if (f->armed == 1) {
		if (f->tripped && f->persistent) {
			rc = -f->err;
		} else if (!f->tripped && --f->countdown == 0) {
			f->tripped = 1;
			rc = -f->err;
		}
	} else if (f->armed == 2) {
		/* xorshift64: cheap and reproducible from the seed */
		f->rng ^= f->rng << 13;
		f->rng ^= f->rng >> 7;
		f->rng ^= f->rng << 17;
		if ((double)(f->rng >> 11) / 9007199254740992.0 < f->rate)
			rc = -f->err;
	}
	if (rc != 0)
		f->injected++;
	unlock();
	return rc;
}

static int
errno_lookup(const char *s)
{
	static const struct { const char *n; int e; } tab[] = {
		{ "ENOSPC", ENOSPC }, { "EIO", EIO }, { "ENOMEM", ENOMEM },
		{ "EAGAIN", EAGAIN }, { "ECONNRESET", ECONNRESET },
		{ "ETIMEDOUT", ETIMEDOUT }, { "EPIPE", EPIPE },
		{ "EDQUOT", EDQUOT }, { "EROFS", EROFS }, { "EINTR", EINTR },
	};
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcmp(tab[i].n, s) == 0)
			return tab[i].e;
	return 0;
}

/*
 * Grammar: item[,item...]; item = class:N[:ERRNO[:persistent]]
 * or class:rate=R[:ERRNO], or slow:F (a slowdown factor, 1..1000)
 */
int
fault_parse(const char *spec, const char **errstr)
{
	struct { int c; unsigned long n; double rate; int err, pers; } it[32];
	char buf[512], *save = NULL, *tok;
	double slow = 0;
	int n = 0, i;

	if (strlen(spec) >= sizeof(buf)) {
		*errstr = "fault spec too long";
		return -1;
	}
	strcpy(buf, spec);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		char *f[4] = { NULL }, *s2 = NULL, *p;
		int nf = 0;

		if (n == 32) {
			*errstr = "too many fault items";
			return -1;
		}
		for (p = strtok_r(tok, ":", &s2); p != NULL && nf < 4;
		    p = strtok_r(NULL, ":", &s2))
			f[nf++] = p;
		if (nf < 2) {
			*errstr = "expected class:N[:ERRNO[:persistent]]";
			return -1;
		}
		if (strcmp(f[0], "slow") == 0) {
			char *end;

			slow = strtod(f[1], &end);
			if (*end != '\0' || nf != 2 || !(slow >= 1.0 &&
			    slow <= 1000.0)) {
				*errstr = "slow takes one factor in [1, 1000]";
				return -1;
			}
			continue;
		}
		if ((it[n].c = fault_lookup(f[0])) < 0) {
			*errstr = "unknown fault class";
			return -1;
		}
		it[n].rate = -1;
		it[n].n = 0;
		if (strncmp(f[1], "rate=", 5) == 0) {
			char *end;

			it[n].rate = strtod(f[1] + 5, &end);
			if (*end != '\0' || it[n].rate < 0 || it[n].rate > 1) {
				*errstr = "rate must be a number in [0, 1]";
				return -1;
			}
		} else {
			char *end;

			it[n].n = strtoul(f[1], &end, 10);
			if (*end != '\0' || it[n].n == 0) {
				*errstr = "count must be a positive integer";
				return -1;
			}
		}
		it[n].err = EIO;
		if (nf >= 3 && (it[n].err = errno_lookup(f[2])) == 0) {
			*errstr = "unknown errno name";
			return -1;
		}
		it[n].pers = 0;
		if (nf == 4) {
			if (strcmp(f[3], "persistent") != 0) {
				*errstr = "4th field must be 'persistent'";
				return -1;
			}
			it[n].pers = 1;
		}
		n++;
	}
	if (slow > 0)
		fault_set_slowdown(slow);
	for (i = 0; i < n; i++) {
		if (it[i].rate >= 0)
			fault_arm_rate(it[i].c, it[i].rate, 1, it[i].err);
		else
			fault_arm(it[i].c, it[i].n, it[i].err, it[i].pers);
	}
	return 0;
}

void
fault_init_env(void)
{
	const char *spec = getenv("ARCEUS_FAULT"), *why = NULL;

	if (spec == NULL || *spec == '\0')
		return;
	if (fault_parse(spec, &why) < 0)
		fatalx("ARCEUS_FAULT='%s': %s", spec, why);
	log_warnx("fault injection armed: %s", spec);
}
