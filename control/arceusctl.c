/*
 * arceusctl.c: the operator's CLI.
 *
 *   arceusctl [-s SOCKET] status|members|metrics|plan|links [--json]
 *   arceusctl plan --cluster FILE --job FILE [--global-batch N]
 *       [--micro-batch N] [--drop ID,...] [--json]
 *   arceusctl job start FILE [--name NAME] [--global-batch N] | job stop
 *   arceusctl report STEP LOSS TOKENS_PER_S [CKPT_STEP]
 *   arceusctl dataset build --text FILE --out FILE     (compute/tool.c)
 *   arceusctl sample ...                               (compute/tool.c)
 *
 * Without --cluster, plan/status/members/metrics ask the running
 * arceus-control over its control.sock and print human tables, or its
 * JSON with --json.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control.h"
#include "log.h"

/*
 * compute/tool.c (the compute library), linked in when it exists; weak so
 * that arceusctl still builds and says so when it does not.
 */
extern int	tool_dataset_build(int argc, char **argv) __attribute__((weak));
extern int	tool_sample(int argc, char **argv) __attribute__((weak));
extern int	tool_share(const char *sock) __attribute__((weak));

static const char *sock_path;

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: arceusctl [-s SOCKET] COMMAND [ARGS]\n"
	    "  status [--json]          the cluster as this node sees it\n"
	    "  members [--json]         members and their health\n"
	    "  metrics                  the Prometheus text of this node\n"
	    "  plan [--json]            the plan in force\n"
	    "  links [--json]           the link matrix (every node's row)\n"
	    "  share                    this node's part of the plan (its "
	    "workers')\n"
	    "  plan --cluster FILE --job FILE [--global-batch N]\n"
	    "       [--micro-batch N] [--drop ID,...] [--json]\n"
	    "                           plan for a described cluster\n"
	    "  job start FILE [--name NAME] [--global-batch N]\n"
	    "  job stop                 through the raft leader\n"
	    "  report STEP LOSS TOKENS_PER_S [CKPT_STEP]\n"
	    "                           training progress, as workers send it\n"
	    "  dataset build --text FILE --out FILE\n"
	    "  sample ...\n"
	    "  -s SOCKET: control socket (default %s)\n",
	    CTL_SOCK_DEFAULT);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Removes the devices listed in ids ("3,7") from c. */
static int
drop_devices(struct plan_cluster *c, const char *ids)
{
	char *dup = strdup(ids), *tok, *save = NULL;
	int dropped = 0;

	if (dup == NULL)
		return -ENOMEM;
	for (tok = strtok_r(dup, ",", &save); tok;
	    tok = strtok_r(NULL, ",", &save)) {
		char *end;
		unsigned long id = strtoul(tok, &end, 10);
		int found = 0;

		if (*end != '\0' || end == tok) {
			free(dup);
			return -EINVAL;
		}
		for (int i = 0; i < c->ndev; i++)
			if (c->dev[i].id == id) {
				c->dev[i] = c->dev[--c->ndev];
				found = 1;
				break;
			}
		if (!found) {
			fprintf(stderr, "arceusctl: no device %lu\n", id);
			free(dup);
			return -ENOENT;
		}
		dropped++;
	}
	free(dup);
	return dropped;
}

static int
cmd_plan_offline(const char *cluster, const char *jobf, int gb, int mb,
    const char *drop, int json)
{
	struct cluster_desc cd;
	struct conf_errs errs;
	static struct plan_model m;
	struct plan_job j;
	struct plan p, p2;
	double t0, t1;
	int rc;

	memset(&errs, 0, sizeof(errs));
	if (job_plan_load(jobf, &m, &j, &errs) < 0 ||
	    cluster_load(&cd, cluster, &errs) < 0) {
		conf_errs_print(&errs, stderr);
		return 1;
	}
	if (gb > 0)
		j.global_batch = gb;
	if (mb > 0)
		j.micro_batch = mb;
	t0 = now_s();
	rc = plan_compute(&m, &j, &cd.c, NULL, &p);
	t1 = now_s();
	if (rc == -EINVAL || rc == -ENOMEM) {
		fprintf(stderr, "arceusctl: plan: %s\n", p.why[0] ? p.why :
		    strerror(-rc));
		cluster_free(&cd);
		return 1;
	}
	if (drop == NULL) {
		if (json) {
			plan_write_json(&p, stdout);
		} else {
			printf("cluster %s: %d devices in %d islands; model %d "
			    "layers (with embedding and head)\n",
			    cd.name[0] ? cd.name : cluster, cd.c.ndev,
			    cd.c.nisland, m.nlayers);
			plan_write(&p, &cd.c, stdout);
			printf("planned in %.3f s\n", t1 - t0);
		}
		rc = p.ok ? 0 : 2;
		plan_fini(&p);
		cluster_free(&cd);
		return rc;
	}
	/* replan without the dropped devices, from the plan in force */
	if ((rc = drop_devices(&cd.c, drop)) < 0) {
		fprintf(stderr, "arceusctl: --drop %s: %s\n", drop,
		    strerror(-rc));
		plan_fini(&p);
		cluster_free(&cd);
		return 1;
	}
	rc = plan_compute(&m, &j, &cd.c, p.ok ? &p : NULL, &p2);
	if (json) {
		plan_write_json(&p2, stdout);
	} else {
		printf("before:\n");
		plan_write(&p, &cd.c, stdout);
		printf("after dropping %s:\n", drop);
		plan_write(&p2, &cd.c, stdout);
	}
	rc = p2.ok ? 0 : 2;
	plan_fini(&p);
	plan_fini(&p2);
	cluster_free(&cd);
	return rc;
}

static int
cmd_plan(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cluster", required_argument, NULL, 'c' },
		{ "job", required_argument, NULL, 'j' },
		{ "global-batch", required_argument, NULL, 'g' },
		{ "micro-batch", required_argument, NULL, 'm' },
		{ "drop", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'J' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cluster = NULL, *jobf = NULL, *drop = NULL;
	int ch, gb = 0, mb = 0, json = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': cluster = optarg; break;
		case 'j': jobf = optarg; break;
		case 'g': gb = atoi(optarg); break;
		case 'm': mb = atoi(optarg); break;
		case 'd': drop = optarg; break;
		case 'J': json = 1; break;
		default: usage(stderr); return 1;
		}
	}
	if ((gb < 0 || mb < 0) || (cluster == NULL) != (jobf == NULL)) {
		fprintf(stderr, "arceusctl: plan: --cluster and --job go "
		    "together\n");
		return 1;
	}
	if (cluster != NULL)
		return cmd_plan_offline(cluster, jobf, gb, mb, drop, json);
	return ctl_query(sock_path, "plan", json);
}

/* job start FILE [--name NAME] [--global-batch N] | job stop */
static int
cmd_job(int argc, char **argv)
{
	struct ctl_job j;
	struct conf_errs errs;
	const char *file = NULL, *name = NULL;
	long gb = 0;

	memset(&j, 0, sizeof(j));
	j.version = CTL_VERSION;
	if (argc >= 2 && strcmp(argv[1], "stop") == 0 && argc == 2) {
		snprintf(j.name, sizeof(j.name), "-");
		return ctl_job_send(sock_path, &j);
	}
	if (argc < 3 || strcmp(argv[1], "start") != 0) {
		fprintf(stderr, "usage: arceusctl job start FILE [--name NAME] "
		    "[--global-batch N]\n       arceusctl job stop\n");
		return 1;
	}
	file = argv[2];
	for (int i = 3; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--name") == 0)
			name = argv[i + 1];
		else if (strcmp(argv[i], "--global-batch") == 0)
			gb = atol(argv[i + 1]);
		else {
			fprintf(stderr, "arceusctl: job: unknown option %s\n",
			    argv[i]);
			return 1;
		}
	}
	if ((argc - 3) % 2 != 0) {
		fprintf(stderr, "arceusctl: job: option without a value\n");
		return 1;
	}
	memset(&errs, 0, sizeof(errs));
	if (job_params_load(file, &j.jp, &errs) < 0) {
		conf_errs_print(&errs, stderr);
		return 1;
	}
	if (gb > 0)
		j.jp.global_batch = (uint32_t)gb;
	if (name == NULL) {
		name = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	}
	snprintf(j.name, sizeof(j.name), "%s", name);
	j.running = 1;
	return ctl_job_send(sock_path, &j);
}

/* report STEP LOSS TOKENS_PER_S [CKPT_STEP]: what workers send */
static int
cmd_report(int argc, char **argv)
{
	struct ctl_report r;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: arceusctl report STEP LOSS TOKENS_PER_S "
		    "[CKPT_STEP]\n");
		return 1;
	}
	memset(&r, 0, sizeof(r));
	r.version = CTL_VERSION;
	r.step = strtoll(argv[1], NULL, 10);
	r.loss = strtod(argv[2], NULL);
	r.tokens_per_s = strtod(argv[3], NULL);
	if (argc == 5) {
		r.ckpt_step = strtoll(argv[4], NULL, 10);
		r.ckpt_unix = (int64_t)time(NULL);
	}
	return ctl_report_send(sock_path, &r);
}

static int
cmd_simple(int argc, char **argv)
{
	int json = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else {
			usage(stderr);
			return 1;
		}
	}
	return ctl_query(sock_path, argv[0], json);
}

int
main(int argc, char **argv)
{
	int ch;

	log_init("arceusctl", LOG_LEVEL_WARN);
	sock_path = getenv("ARCEUS_CONTROL_SOCK");
	if (sock_path == NULL)
		sock_path = CTL_SOCK_DEFAULT;
	while ((ch = getopt(argc, argv, "+hs:")) != -1) {
		switch (ch) {
		case 's': sock_path = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return 1;
	}
	if (strcmp(argv[0], "plan") == 0)
		return cmd_plan(argc, argv);
	if (strcmp(argv[0], "report") == 0)
		return cmd_report(argc, argv);
	if (strcmp(argv[0], "job") == 0)
		return cmd_job(argc, argv);
	if (strcmp(argv[0], "status") == 0 || strcmp(argv[0], "members") == 0 ||
	    strcmp(argv[0], "metrics") == 0 || strcmp(argv[0], "links") == 0)
		return cmd_simple(argc, argv);
	if (strcmp(argv[0], "share") == 0 && argc == 1) {
		if (tool_share == NULL) {
			fprintf(stderr, "arceusctl: share: this arceusctl was "
			    "built without the compute library\n");
			return 1;
		}
		return tool_share(sock_path);
	}
	if (strcmp(argv[0], "dataset") == 0 || strcmp(argv[0], "sample") == 0) {
		if (tool_dataset_build == NULL || tool_sample == NULL) {
			fprintf(stderr, "arceusctl: %s: this arceusctl was built "
			    "without the compute library\n", argv[0]);
			return 1;
		}
		if (strcmp(argv[0], "sample") == 0)
			return tool_sample(argc - 1, argv + 1);
		if (argc < 2 || strcmp(argv[1], "build") != 0) {
			fprintf(stderr, "usage: arceusctl dataset build --text "
			    "FILE --out FILE\n");
			return 1;
		}
		return tool_dataset_build(argc - 2, argv + 2);
	}
	fprintf(stderr, "arceusctl: unknown command '%s'\n", argv[0]);
	usage(stderr);
	return 1;
}
