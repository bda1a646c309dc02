/*
 * tool.c: the arceusctl subcommands that belong to compute:
 *
 *   arceusctl dataset build --text FILE --out FILE
 *   arceusctl sample --job FILE [--checkpoint DIR] [--prompt TEXT]
 *                    [--len N] [--temperature T] [--seed N]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "ctlmsg.h"
#include "log.h"

/*
 * The subcommands get their own arguments only (argv[0] is the first
 * option); getopt wants a program name first, so make a copy that has one.
 * The caller frees the result.
 */
static char **
with_progname(const char *name, int argc, char **argv)
{
	char **v = calloc((size_t)argc + 2, sizeof(*v));

	if (v == NULL)
		return NULL;
	v[0] = (char *)name;
	for (int i = 0; i < argc; i++)
		v[i + 1] = argv[i];
	return v;
}

int
tool_dataset_build(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "text", required_argument, NULL, 't' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *text = NULL, *out = NULL;
	char err[512], **av = with_progname("arceusctl dataset build", argc,
	    argv);
	int ch, rc;

	if (av == NULL)
		return 1;
	argv = av;
	argc++;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't': text = optarg; break;
		case 'o': out = optarg; break;
		default: goto usage;
		}
	}
	if (text == NULL || out == NULL || optind != argc)
		goto usage;
	free(av);
	if ((rc = data_build(text, out, err, sizeof(err))) < 0) {
		fprintf(stderr, "arceusctl dataset build: %s\n", err);
		return 1;
	}
	printf("%s: token file written\n", out);
	return 0;
usage:
	free(av);
	fprintf(stderr, "usage: arceusctl dataset build --text FILE "
	    "--out FILE\n");
	return 2;
}

int
tool_sample(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "job", required_argument, NULL, 'j' },
		{ "checkpoint", required_argument, NULL, 'c' },
		{ "prompt", required_argument, NULL, 'p' },
		{ "len", required_argument, NULL, 'n' },
		{ "temperature", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *jobpath = NULL, *dir = NULL, *prompt = "", *why;
	int64_t len = 200, seed = 1;
	double temp = 0.8;
	struct trainer_state ts;
	struct adamw opt = { 0 };
	struct gpt_config cfg;
	struct job job;
	struct gpt m;
	struct rng r;
	uint8_t *out = NULL;
	char err[512], **av = with_progname("arceusctl sample", argc, argv);
	int ch, rc = 1;

	if (av == NULL)
		return 1;
	argv = av;
	argc++;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'j': jobpath = optarg; break;
		case 'c': dir = optarg; break;
		case 'p': prompt = optarg; break;
		case 'n':
			if (conf_parse_int(optarg, &len, &why) < 0 ||
			    len < 1 || len > 1000000) {
				fprintf(stderr, "arceusctl sample: --len %s: "
				    "must be 1..1000000\n", optarg);
				goto bad;
			}
			break;
		case 't':
			if (conf_parse_double(optarg, &temp, &why) < 0 ||
			    temp < 0.01 || temp > 10) {
				fprintf(stderr, "arceusctl sample: "
				    "--temperature %s: must be 0.01..10\n",
				    optarg);
				goto bad;
			}
			break;
		case 's':
			if (conf_parse_int(optarg, &seed, &why) < 0) {
				fprintf(stderr, "arceusctl sample: --seed %s: "
				    "%s\n", optarg, why);
				goto bad;
			}
			break;
		default:
			goto usage;
		}
	}
	if (jobpath == NULL || optind != argc)
		goto usage;
	free(av);
	av = NULL;
	if (job_load(&job, jobpath, NULL, 0) < 0)
		return 1;
	if (dir == NULL)
		dir = job.ckpt_dir;
	if (dir[0] == '\0') {
		fprintf(stderr, "arceusctl sample: %s has no [checkpoint] dir; "
		    "give --checkpoint DIR\n", jobpath);
		return 1;
	}
	cfg = (struct gpt_config){ (int)job.n_layer, (int)job.n_head,
	    (int)job.n_embd, (int)job.block_size, GPT_VOCAB, 0, 0, 0, 0 };
	kern_set_threads((int)job.threads);
	if (gpt_init(&m, &cfg, kern_lookup(job.kernels)) < 0 ||
	    adamw_init(&opt, m.nparams) < 0) {
		fprintf(stderr, "arceusctl sample: out of memory\n");
		goto out;
	}
	if (train_load(dir, &m, &opt, &ts, err, sizeof(err)) < 0) {
		fprintf(stderr, "arceusctl sample: %s\n", err);
		goto out;
	}
	adamw_fini(&opt);	/* moments are not needed to sample */
	rng_seed(&r, (uint64_t)seed);
	if ((out = malloc((size_t)len)) == NULL)
		goto out;
	if (gpt_generate(&m, (const uint8_t *)prompt, (int)strlen(prompt), out,
	    (int)len, (float)temp, &r) < 0) {
		fprintf(stderr, "arceusctl sample: generation failed\n");
		goto out;
	}
	fwrite(prompt, 1, strlen(prompt), stdout);
	fwrite(out, 1, (size_t)len, stdout);
	putchar('\n');
	rc = 0;
out:
	free(out);
	adamw_fini(&opt);
	gpt_fini(&m);
	return rc;
usage:
	fprintf(stderr, "usage: arceusctl sample --job FILE [--checkpoint DIR] "
	    "[--prompt TEXT] [--len N] [--temperature T] [--seed N]\n");
bad:
	free(av);
	return 2;
}

/*
 * arceusctl share: this node's part of the committed plan, as its
 * workers get it (dist.members = plan).  @return 0 when the node trains
 * in the plan, 3 when it is idle in it, 1 without a plan or a control.
 */
int
tool_share(const char *sock)
{
	struct ctl_share sh;
	char err[256];

	if (ctl_share_get(sock, &sh, err, sizeof(err)) < 0) {
		fprintf(stderr, "arceusctl share: %s\n", err);
		return 1;
	}
	if (sh.status == ENOENT) {
		printf("epoch %llu: no job planned (arceusctl job start)\n",
		    (unsigned long long)sh.epoch);
		return 1;
	}
	printf("epoch %llu, job %s: tp %u pp %u dp %u\n",
	    (unsigned long long)sh.epoch, sh.job, sh.tp, sh.pp, sh.dp);
	if (sh.status == ESRCH) {
		printf("this node is idle in the plan (the planner found the "
		    "step faster without it)\n");
		return 3;
	}
	if (sh.status != 0) {
		printf("no part for this node: %s\n", sh.status == ENOTSUP ?
		    "the plan has tensor groups inside pipeline stages, or "
		    "stages split differently in each replica" :
		    strerror(sh.status));
		return 1;
	}
	if (sh.tp > 1) {
		printf("this node: rank %u, tensor rank %u of %u in replica %u "
		    "(dist.tensor = plan), dataplane groups from %u\ntensor "
		    "groups:", sh.rank, sh.rank % sh.tp, sh.tp, sh.rank / sh.tp,
		    (unsigned)TP_PLAN_GROUP);
		for (uint32_t i = 0; i < sh.dp * sh.tp; i++)
			printf("%s%u", i == 0 ? " " : i % sh.tp ? "," : "/",
			    sh.members[i]);
		printf("; rows per step:");
		for (uint32_t r = 0; r < sh.dp; r++)
			printf(" %d (%d micro-batches)", sh.shares[r],
			    sh.nmicro[r]);
		printf("\n");
		return 0;
	}
	if (sh.pp > 1) {
		printf("this node: rank %u, stage %u of %u in replica %u "
		    "(%d blocks), dataplane groups from %u\nstages:",
		    sh.rank, sh.rank % sh.pp, sh.pp, sh.rank / sh.pp,
		    sh.layers[sh.rank % sh.pp], 1000u);
		for (uint32_t i = 0; i < sh.dp * sh.pp; i++)
			printf("%s%u", i == 0 ? " " : i % sh.pp ? "," : "/",
			    sh.members[i]);
		printf("; blocks:");
		for (uint32_t s = 0; s < sh.pp; s++)
			printf("%s%d", s ? "," : " ", sh.layers[s]);
		printf("; rows per step:");
		for (uint32_t r = 0; r < sh.dp; r++)
			printf(" %d (%d micro-batches)", sh.shares[r],
			    sh.nmicro[r]);
		printf("\n");
		return 0;
	}
	if (sh.rank >= sh.dp)
		printf("this node: rank %u, a standby (no rows: it keeps the "
		    "model in step through the all-reduce), dataplane group "
		    "%u\nreplicas:", sh.rank, sh.group);
	else
		printf("this node: rank %u, %d of %d sequences per step in %d "
		    "micro-batch(es), dataplane group %u\nreplicas:", sh.rank,
		    sh.shares[sh.rank], sh.global_batch, sh.nmicro[sh.rank],
		    sh.group);
	for (uint32_t r = 0; r < sh.dp; r++)
		printf(" %u (%d)", sh.members[r], sh.shares[r]);
	if (sh.nstandby > 0) {
		printf("\nstandbys:");
		for (uint32_t r = sh.dp; r < sh.dp + sh.nstandby; r++)
			printf(" %u", sh.members[r]);
	}
	printf("\n");
	return 0;
}
