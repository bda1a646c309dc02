/*
 * control.h: arceus-control's and arceusctl's private header.  Every
 * prototype of control/, grouped by file (OpenBSD relayd.h style); the
 * planner's types are in planner.h because tests and tools use them alone.
 */
#ifndef ARC_CONTROL_H
#define ARC_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include <pthread.h>

#include "conf.h"
#include "ctlmsg.h"
#include "nodeconf.h"
#include "planner.h"
#include "raftfsm.h"
#include "swim.h"

#define CTL_SOCK_DEFAULT	"/run/arceus/control.sock"

struct ctl_report;
struct ctl_job;

/* ------------------------------------------------------------------ */
/* cluster.c: planner inputs from a cluster description and a job file */
struct cluster_desc {
	char	name[64];
	struct plan_cluster c;
	char	(*island_name)[64];	/* [c.nisland] */
};

/* Fills cd (freed with cluster_free) from path. @return 0 or -1 (errs). */
int	cluster_load(struct cluster_desc *cd, const char *path,
	    struct conf_errs *errs);
void	cluster_free(struct cluster_desc *cd);
/*
 * The planner's view of a job file: [model] and [train] batch_size,
 * accumulate; global batch = batch_size * accumulate.  @return 0 or -1.
 */
int	job_plan_load(const char *path, struct plan_model *m,
	    struct plan_job *j, struct conf_errs *errs);
/* The same keys as they travel in the raft log. @return 0 or -1. */
int	job_params_load(const char *path, struct job_params *jp,
	    struct conf_errs *errs);
/* The planner's inputs from job parameters. */
void	job_params_plan(const struct job_params *jp, struct plan_model *m,
	    struct plan_job *j);
/* Sends a job start/stop to control. @return exit status. */
int	ctl_job_send(const char *sock, const struct ctl_job *j);

/* ------------------------------------------------------------------ */
/* ctlclient.c: arceusctl's side of control.sock                       */
/*
 * Sends one request ("status", "members", "metrics", "plan") and prints
 * the answer: JSON as is with json, else a human table.  @return the
 * process exit status (1 with a clear message when control is down).
 */
int	ctl_query(const char *sock, const char *what, int json);
/* Sends training progress (what a worker does). @return exit status. */
int	ctl_report_send(const char *sock, const struct ctl_report *r);

/* ------------------------------------------------------------------ */
/* control.sock: the records of common/ctlmsg.h, and jobs              */
struct ctl_job {
	uint32_t	version;
	uint32_t	running;	/* 1: start, 0: stop */
	char		name[JOB_NAME_LEN];
	struct job_params jp;
};
_Static_assert(sizeof(struct ctl_job) == 100, "ctl_job size");

/* ------------------------------------------------------------------ */
/* report.c: what control shows (control.sock, HTTP), from its state    */

/* A growable string. */
struct sbuf {
	char	*s;
	size_t	 len, cap;
	int	 oom;
};
void	sbuf_printf(struct sbuf *b, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	sbuf_json_str(struct sbuf *b, const char *s);
void	sbuf_free(struct sbuf *b);

#define TRAIN_HISTORY	512	/* points of the loss curve kept */

/* Training progress reported by the workers (IMSG_CTL_REPORT). */
struct train_state {
	int	have;
	struct ctl_report last;
	double	at;			/* when (monotonic s) */
	int	nhist, hpos;
	struct { int64_t step; double loss, tps; } hist[TRAIN_HISTORY];
};

#define CTL_MAX_LINKS	64	/* links kept from the dataplane */

/* One link as the dataplane measures it (dpseam.c). */
struct ctl_link {
	uint32_t peer;
	int	 up;
	char	 backend[8];		/* what we send over: "dpdk", ... */
	double	 rtt_s;
	double	 bw_probe, bw_live;	/* bytes/s, 0: unknown */
	uint64_t tx_bytes, rx_bytes, rx_bad, downs;
};

/* ------------------------------------------------------------------ */
/* links.c: the link matrix from SWIM's link rows, islands for planning */
#define LINK_DEFAULT_BW		(10e9 / 8)	/* unmeasured: 10 Gbit/s */
#define LINK_DEFAULT_RTT	0.0005		/* unmeasured: 0.5 ms */
#define LINK_ISLAND_RATIO	0.1	/* of the best link: same island */

/* Directed measurements over a member set; 0: not measured. */
struct link_matrix {
	int	 n;
	uint32_t *id;			/* [n] */
	double	*bw, *rtt;		/* [n*n], [a*n+b]: a measured b */
	uint8_t	*src;			/* [n*n] enum swim_link_src, 0 */
};

/*
 * This node's row: towards every alive or suspect member, its
 * dataplane's measurement (dl, ndl, dl_age_s old) or else SWIM's probe
 * RTT.  @return entries written (<= max).
 */
int	links_row(const struct swim *sw, uint64_t now_ms,
	    const struct ctl_link *dl, int ndl, double dl_age_s,
	    struct swim_link *row, int max);
/* The matrix over ids[n] from cells.  @return 0 or -1 (ENOMEM). */
int	links_assemble(const uint32_t *ids, int n,
	    const struct swim_link *cells, int ncells, struct link_matrix *lm);
void	links_matrix_free(struct link_matrix *lm);
/* The symmetric pair (a, b) for planning, defaults filled in. */
void	links_pair(const struct link_matrix *lm, int a, int b, double *bw,
	    double *rtt);
/*
 * Islands: sets dev[i].island (dev[i] is lm->id[i]), *nisland and the
 * malloc'd island matrices (bytes/s, seconds).  @return 0 or -1.
 */
int	links_islands(const struct link_matrix *lm, struct plan_device *dev,
	    int *nisland, double **ibw, double **irtt);

/* ------------------------------------------------------------------ */
/* main.c: the daemon's state, shared by the loop and the HTTP thread   */
struct profile {
	int	cores;
	double	mem_bytes;		/* physical memory */
	double	gflops;			/* GEMM probe */
};

struct ctl {
	const struct nodeconf *nc;
	uint32_t	id;		/* node id */
	uint64_t	boot;		/* boot id: wall-clock ns at start */
	char		name[64];
	char		addr[16];	/* advertised IPv4 */
	double		start;		/* monotonic s */
	pthread_mutex_t	mu;		/* guards everything below */
	struct swim	sw;
	struct profile	prof;
	struct train_state train;
	/* this node's measured training speed (replan.c), from the reports
	 * and the job's FLOPs per token (planner's model, fwd + bwd) */
	struct speed_est speed;
	double		job_flops_per_token;	/* 0: no job */
	uint64_t	view;		/* membership changes seen */
	/* raft, as raftglue.c last saw it (copied under mu) */
	uint64_t	epoch;		/* committed epoch, 0: none */
	uint64_t	term;
	const char	*role;		/* leader, voter, standby, ... */
	uint32_t	leader;		/* 0: none known */
	int		quorum;		/* a leader is known: commits go on */
	int		nvoters, nstandbys;
	int		nepoch;		/* members of the epoch */
	uint32_t	epoch_members[64];	/* the first 64 */
	int64_t		resume_step;
	int64_t		ckpt_committed;	/* step every member has saved */
	uint64_t	raft_auth_ok, raft_auth_refused;
	uint64_t	stale_epochs;
	uint64_t	replans;	/* epochs this leader made for speed */
	/* the job and plan of the committed epoch */
	int		job_running;
	char		job[JOB_NAME_LEN];
	int		plan_tp, plan_pp, plan_dp;
	double		plan_step;
	char		*plan_text;	/* malloc'd, NULL: none */
	uint32_t	*layout;	/* malloc'd copy of the epoch's layout */
	int		layout_len;	/* words */
	void		*raft;		/* raftglue.c state */
	void		*disc;		/* discovery.c state */
	void		*dpseam;	/* dpseam.c state */
	/* the dataplane, as dpseam.c last saw it */
	int		dp_up;
	int		nlinks;
	struct ctl_link	links[CTL_MAX_LINKS];
	double		links_at;	/* when they were read (monotonic s) */
	uint32_t	dp_workers, dp_epoch;
	uint64_t	dp_arena;
	char		dp_backend[24];
	uint64_t	discovered;	/* peers introduced by DNS-SD */
	uint64_t	sock_errors;
	void		*http;		/* struct MHD_Daemon */
	void		*ctlsrv;	/* ctlsock.c state */
	void		*loop;		/* uv_loop_t */
};

double	ctl_now(void);			/* monotonic seconds */
void	report_status(struct ctl *c, struct sbuf *b, int json);
void	report_members(struct ctl *c, struct sbuf *b, int json);
void	report_metrics(struct ctl *c, struct sbuf *b);
void	report_plan(struct ctl *c, struct sbuf *b, int json);
/* The link matrix as SWIM spread it, and its islands. */
void	report_links(struct ctl *c, struct sbuf *b, int json);
void	report_train(struct ctl *c, struct sbuf *b);
void	train_record(struct train_state *t, const struct ctl_report *r,
	    double now);

/* ------------------------------------------------------------------ */
/* http.c: /metrics, /api/status, /api/members, /api/plan, /api/train, / */
int	http_start(struct ctl *c, const char *addr, int port);
void	http_stop(struct ctl *c);

/* ------------------------------------------------------------------ */
/* ctlsock.c: the server side of control.sock                           */
int	ctlsock_start(struct ctl *c, const char *path);
void	ctlsock_stop(struct ctl *c);

/* ------------------------------------------------------------------ */
/* raftglue.c: raft on libuv behind raftauth.c, committing epochs       */
/* Prepares raft (starts it once formed or joining). @return 0 or -errno */
int	raftglue_init(struct ctl *c, const unsigned char key[32]);
/* Every ~100 ms on the loop: start, leadership, roles, epochs. */
void	raftglue_tick(struct ctl *c);
/*
 * Proposes a job start/stop (leader only).  @return 0, or -EAGAIN with
 * *leader set when another node leads (0: none known), or -EIO.
 */
int	raftglue_job(struct ctl *c, const struct ctl_job *j, uint32_t *leader);
/*
 * Forced recovery, offline (control stopped): this node becomes the only
 * voter of its raft configuration (raft_recover).  @return 0 or -errno.
 */
int	raftglue_recover(const struct nodeconf *nc, uint32_t id,
	    const char *addr);
/* Closes raft; done() runs when it is safe to close the loop. */
void	raftglue_stop(struct ctl *c, void (*done)(struct ctl *));

/* ------------------------------------------------------------------ */
/* discovery.c: DNS-SD (_arceus._udp) through avahi-daemon              */
int	discovery_start(struct ctl *c);
/* On the loop: hands the peers found since the last call to SWIM. */
void	discovery_drain(struct ctl *c, uint64_t now_ms);
void	discovery_stop(struct ctl *c);

/* ------------------------------------------------------------------ */
/* dpseam.c: dataplane.sock: peer tables out, link measurements in      */
int	dpseam_start(struct ctl *c);
void	dpseam_stop(struct ctl *c);

/* ------------------------------------------------------------------ */
/* profile.c: this node's measurements (probe: run the GEMM probe)      */
void	profile_measure(struct profile *p, int probe);

#endif /* ARC_CONTROL_H */
