/*
 * fault.h: the fault-injection seam (SQLite faultsim style).
 *
 * Every fallible operation that tests want to break calls
 * fault_hit(FAULT_<CLASS>) first and, if it returns a negative errno,
 * behaves as if the operation had failed with it.  A class is armed with a
 * countdown: the Nth call fails, then either only that one (transient) or
 * every later one too (persistent).  Arming comes from the test API or from
 * the environment, so that a whole process can be broken from a script:
 *
 *   ARCEUS_FAULT="ckpt_write:3:ENOSPC:persistent,ckpt_fsync:1:EIO"
 *   ARCEUS_FAULT="slow:3"	(a machine three times slower; below)
 *
 * Unarmed, fault_hit() is one load and a branch.
 */
#ifndef ARC_FAULT_H
#define ARC_FAULT_H

enum fault_class {
	FAULT_ALLOC = 0,	/* large allocations */
	FAULT_CKPT_OPEN,	/* opening a checkpoint file for writing */
	FAULT_CKPT_WRITE,	/* one write of a checkpoint file */
	FAULT_CKPT_FSYNC,	/* fsync of a checkpoint file or directory */
	FAULT_CKPT_RENAME,	/* the rename that publishes a file */
	FAULT_CKPT_READ,	/* one read while loading */
	FAULT_NET_SEND,		/* one send to a peer */
	FAULT_NET_RECV,		/* one receive from a peer */
	FAULT_NET_DROP,		/* drop one frame (returns -EAGAIN when hit) */
	FAULT_NET_DUP,		/* duplicate one frame */
	FAULT_NET_REORDER,	/* hold one frame back */
	FAULT_NET_CORRUPT,	/* flip a bit in one frame */
	FAULT_POST,		/* posting to a ring or a NIC queue */
	FAULT_COMPLETION,	/* a completion that reports an error */
	FAULT_NCLASSES
};

/* Names as used in ARCEUS_FAULT, e.g. "ckpt_write"; NULL if out of range. */
const char	*fault_name(enum fault_class c);
int		 fault_lookup(const char *name);	/* -1 if unknown */

/*
 * Arms class c: call number `after` (1 = the next call) fails with -err;
 * persistent: every call after it as well.  err is a positive errno.
 */
void	fault_arm(enum fault_class c, unsigned long after, int err,
	    int persistent);
/* Arms a fraction (0..1) of calls to fail at random, from seed. */
void	fault_arm_rate(enum fault_class c, double rate, unsigned long seed,
	    int err);
void	fault_disarm(enum fault_class c);
void	fault_disarm_all(void);

/* How many faults class c has injected since it was armed. */
unsigned long	fault_injected(enum fault_class c);

/*
 * Parses ARCEUS_FAULT-style text and arms what it names.
 * @return 0, or -1 with *errstr set (the text is not applied then).
 */
int	fault_parse(const char *spec, const char **errstr);
/* fault_parse(getenv("ARCEUS_FAULT")) if set; a bad value is fatal. */
void	fault_init_env(void);

/*
 * A slow machine, for straggler tests: the item "slow:F" (F a number,
 * 1..1000) in ARCEUS_FAULT makes a worker's compute F times slower: it
 * sleeps (F - 1) times each step's compute before its all-reduce.
 * @return F, or 1 when not armed.
 */
double	fault_slowdown(void);
void	fault_set_slowdown(double f);

int	fault_hit_slow(enum fault_class c);
extern volatile int fault_armed_any;

/* @return 0, or the negative errno to fail the operation with. */
static inline int
fault_hit(enum fault_class c)
{
	if (__builtin_expect(fault_armed_any == 0, 1))
		return 0;
	return fault_hit_slow(c);
}

#endif /* ARC_FAULT_H */
