/*
 * control.h: arceus-control's and arceusctl's private header.  Every
 * prototype of control/, grouped by file (OpenBSD relayd.h style); the
 * planner's types are in planner.h because tests and tools use them alone.
 */
#ifndef ARC_CONTROL_H
#define ARC_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "planner.h"

#define CTL_SOCK_DEFAULT	"/run/arceus/control.sock"

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

/* ------------------------------------------------------------------ */
/* ctlclient.c: arceusctl's side of control.sock                       */
/*
 * Sends one request ("status", "members", "metrics", "plan") and prints
 * the answer: JSON as is with json, else a human table.  @return the
 * process exit status (1 with a clear message when control is down).
 */
int	ctl_query(const char *sock, const char *what, int json);

#endif /* ARC_CONTROL_H */
