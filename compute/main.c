/*
 * main.c: arceus-worker: the trainer, alone or as one replica of a
 * data-parallel job over the node's arceus-dataplane:
 *
 *   arceus-worker --standalone --job FILE [--set section.key=value ...]
 *                 [--metrics-out FILE] [-q] [-v]
 *   arceus-worker --dataplane SOCK --job FILE --set dist.members=1,2 ...
 *   arceus-worker --dataplane SOCK --job FILE --set dist.stages=1,2 ...
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compute.h"
#include "fault.h"
#include "log.h"

static void
usage(void)
{
	fprintf(stderr,
	    "usage: arceus-worker --standalone | --dataplane SOCK --job FILE "
	    "[--set section.key=value ...]\n"
	    "                     [--metrics-out FILE] [-q] [-v] [-n]\n"
	    "  --standalone        train on this node alone\n"
	    "  --dataplane SOCK    train data parallel with the replicas of "
	    "dist.members,\n"
	    "                      or one pipeline stage of dist.stages, "
	    "through this\n"
	    "                      node's arceus-dataplane\n"
	    "  --job FILE          job file (configs/jobs/*.conf)\n"
	    "  --set S.K=V         override one job key (repeatable)\n"
	    "  --metrics-out FILE  append one JSON object per step\n"
	    "  -n                  check the job file and exit\n"
	    "  -q                  no progress lines\n"
	    "  -v                  more logging\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "standalone", no_argument, NULL, 's' },
		{ "dataplane", required_argument, NULL, 'D' },
		{ "job", required_argument, NULL, 'j' },
		{ "set", required_argument, NULL, 'S' },
		{ "metrics-out", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct train_opts topts = { 0 };
	const char *jobpath = NULL, *dpsock = NULL;
	char **sets;
	int nsets = 0, standalone = 0, checkonly = 0, level = LOG_LEVEL_INFO;
	int ch, rc;
	struct job job;

	log_init("arceus-worker", LOG_LEVEL_INFO);
	/*
	 * OpenMP threads that spin at barriers starve everything else on a
	 * shared machine, themselves included: on a loaded 2-core box a
	 * 2-thread step took 5x longer spinning than sleeping.  libgomp reads
	 * the policy when it loads, before main, so set it and start again.
	 * An operator's own OMP_WAIT_POLICY is kept.
	 */
	if (getenv("OMP_WAIT_POLICY") == NULL &&
	    setenv("OMP_WAIT_POLICY", "passive", 1) == 0) {
		execv("/proc/self/exe", argv);
		log_warn("re-exec with OMP_WAIT_POLICY=passive");
	}
	if ((sets = calloc((size_t)argc + 1, sizeof(*sets))) == NULL)
		fatal("calloc");
	while ((ch = getopt_long(argc, argv, "nqvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			standalone = 1;
			break;
		case 'j':
			jobpath = optarg;
			break;
		case 'D':
			dpsock = optarg;
			break;
		case 'S':
			sets[nsets++] = optarg;
			break;
		case 'm':
			topts.metrics_out = optarg;
			break;
		case 'n':
			checkonly = 1;
			break;
		case 'q':
			topts.quiet = 1;
			break;
		case 'v':
			level++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc) {
		fprintf(stderr, "arceus-worker: unexpected argument '%s'\n",
		    argv[optind]);
		usage();
	}
	log_setlevel(level);
	if (jobpath == NULL) {
		fprintf(stderr, "arceus-worker: --job FILE is required\n");
		usage();
	}
	if (dpsock != NULL) {
		size_t len = strlen(dpsock) + sizeof("dist.dataplane=");

		if ((sets[nsets] = malloc(len)) == NULL)
			fatal("malloc");
		snprintf(sets[nsets++], len, "dist.dataplane=%s", dpsock);
	}
	rc = job_load(&job, jobpath, sets, nsets);
	if (dpsock != NULL)
		free(sets[nsets - 1]);
	free(sets);
	if (rc < 0)
		return 1;
	if (checkonly) {
		printf("%s: ok\n", jobpath);
		return 0;
	}
	if (standalone && job.dist_dataplane[0] != '\0') {
		fprintf(stderr, "arceus-worker: --standalone and a dataplane "
		    "(%s) exclude each other\n", job.dist_dataplane);
		return 2;
	}
	if (standalone && job.dist_stages[0] != '\0') {
		fprintf(stderr, "arceus-worker: dist.stages = %s: a pipeline "
		    "stage trains through its dataplane (--dataplane SOCK), "
		    "not --standalone\n", job.dist_stages);
		return 2;
	}
	if (standalone && job.dist_tensor[0] != '\0') {
		fprintf(stderr, "arceus-worker: dist.tensor = %s: a tensor "
		    "rank trains through its dataplane (--dataplane SOCK), not "
		    "--standalone\n", job.dist_tensor);
		return 2;
	}
	if (!standalone && job.dist_dataplane[0] == '\0') {
		fprintf(stderr, "arceus-worker: say --standalone, or "
		    "--dataplane SOCK (with dist.members) to train data "
		    "parallel\n");
		return 2;
	}
	fault_init_env();
	return train_run(&job, &topts) == 0 ? 0 : 1;
}
