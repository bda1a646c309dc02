/*
 * job.c: the key table of job files (configs/jobs/NAME.conf) and their
 * cross-key checks.  Defaults follow nanoGPT where it has one.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "compute.h"

#define J(f)	offsetof(struct job, f)
#define JS(f)	J(f), sizeof(((struct job *)0)->f)

const struct conf_key job_keys[] = {
	{ "model", "n_layer", CONF_INT, J(n_layer), 0, 1, 256, "4",
	    "transformer blocks", NULL, 0 },
	{ "model", "n_head", CONF_INT, J(n_head), 0, 1, 256, "4",
	    "attention heads per block", NULL, 0 },
	{ "model", "n_embd", CONF_INT, J(n_embd), 0, 1, 16384, "128",
	    "model width; a multiple of n_head", NULL, 0 },
	{ "model", "block_size", CONF_INT, J(block_size), 0, 1, 65536, "64",
	    "context length in tokens (bytes)", NULL, 0 },

	{ "train", "batch_size", CONF_INT, J(batch_size), 0, 1, 65536, "12",
	    "sequences per micro-batch", NULL, 0 },
	{ "train", "steps", CONF_INT, J(steps), 0, 1, 1e12, "1000",
	    "optimizer steps", NULL, 0 },
	{ "train", "lr", CONF_DOUBLE, J(lr), 0, 0, 10, "1e-3",
	    "peak learning rate", NULL, 0 },
	{ "train", "min_lr", CONF_DOUBLE, J(min_lr), 0, 0, 10, "1e-4",
	    "learning rate at the end of the cosine decay", NULL, 0 },
	{ "train", "warmup_steps", CONF_INT, J(warmup_steps), 0, 0, 1e12,
	    "100", "linear warmup steps", NULL, 0 },
	{ "train", "decay_steps", CONF_INT, J(decay_steps), 0, 0, 1e12, "0",
	    "cosine decay ends here (0: at steps)", NULL, 0 },
	{ "train", "weight_decay", CONF_DOUBLE, J(weight_decay), 0, 0, 10,
	    "0.1", "AdamW decoupled weight decay (matrices only)", NULL, 0 },
	{ "train", "beta1", CONF_DOUBLE, J(beta1), 0, 0, 0.99999, "0.9",
	    "AdamW beta1", NULL, 0 },
	{ "train", "beta2", CONF_DOUBLE, J(beta2), 0, 0, 0.99999, "0.95",
	    "AdamW beta2", NULL, 0 },
	{ "train", "eps", CONF_DOUBLE, J(eps), 0, 1e-12, 1, "1e-8",
	    "AdamW epsilon", NULL, 0 },
	{ "train", "grad_clip", CONF_DOUBLE, J(grad_clip), 0, 0, 1e6, "1.0",
	    "global gradient norm clip; 0: off", NULL, 0 },
	{ "train", "dropout", CONF_DOUBLE, J(dropout), 0, 0, 0.95, "0",
	    "residual and embedding dropout", NULL, 0 },
	{ "train", "seed", CONF_INT, J(seed), 0, 0, 9.2e18, "1337",
	    "seed of initialisation, batches and dropout", NULL, 0 },
	{ "train", "eval_interval", CONF_INT, J(eval_interval), 0, 0, 1e12,
	    "100", "validation every this many steps; 0: at the end", NULL,
	    0 },
	{ "train", "eval_iters", CONF_INT, J(eval_iters), 0, 1, 100000, "20",
	    "validation batches per evaluation", NULL, 0 },
	{ "train", "accumulate", CONF_INT, J(accumulate), 0, 1, 65536, "1",
	    "micro-batches per optimizer step", NULL, 0 },
	{ "train", "threads", CONF_INT, J(threads), 0, 0, 1024, "0",
	    "compute threads; 0: all cores", NULL, 0 },
	{ "train", "log_interval", CONF_INT, J(log_interval), 0, 1, 1e9, "10",
	    "progress line every this many steps", NULL, 0 },
	{ "train", "kernels", CONF_STR, JS(kernels), 1, 0, "dnnl",
	    "dnnl (oneDNN) or ref (scalar reference, slow)", NULL, 0 },
	{ "train", "sample_len", CONF_INT, J(sample_len), 0, 0, 65536, "200",
	    "bytes of text generated at the end; 0: none", NULL, 0 },
	{ "train", "temperature", CONF_DOUBLE, J(temperature), 0, 0.01, 10,
	    "0.8", "sampling temperature", NULL, 0 },

	{ "data", "path", CONF_STR, JS(path), 1, 0, "data/corpus.txt",
	    "text or token file (relative to the working directory)", NULL,
	    0 },
	{ "data", "val_fraction", CONF_DOUBLE, J(val_fraction), 0, 0.001, 0.5,
	    "0.1", "tail of the file held out for validation", NULL, 0 },

	{ "checkpoint", "dir", CONF_STR, JS(ckpt_dir), 0, 0, "",
	    "checkpoint directory; empty: no checkpoints", NULL, 0 },
	{ "checkpoint", "interval", CONF_INT, J(ckpt_interval), 0, 0, 1e12,
	    "0", "checkpoint every this many steps; 0: only at the end",
	    NULL, 0 },
	{ "checkpoint", "keep", CONF_INT, J(ckpt_keep), 0, 0, 1000000, "3",
	    "complete checkpoints kept; 0: all", NULL, 0 },
	{ "checkpoint", "resume", CONF_BOOL, J(resume), 0, 0, 0, "yes",
	    "resume from the newest complete checkpoint in dir", NULL, 0 },

	{ "dist", "dataplane", CONF_STR, JS(dist_dataplane), 0, 0, "",
	    "the node's dataplane socket (RUN_DIR/dataplane.sock); set: "
	    "train data parallel with dist.members (--dataplane)", NULL, 0 },
	{ "dist", "members", CONF_STR, JS(dist_members), 0, 0, "",
	    "node ids of the replicas in ring order, e.g. 1,2,3, each training "
	    "its share of every global batch; plan: the replicas and shares "
	    "of the plan control committed (arceusctl job start)", NULL, 0 },
	{ "dist", "shares", CONF_STR, JS(dist_shares), 0, 0, "",
	    "each member's rows of the global batch, in members order (the "
	    "planner's batch shares; with dist.stages: each replica's rows "
	    "per micro-batch); empty: train.batch_size each", NULL, 0 },
	{ "dist", "group", CONF_INT, J(dist_group), 0, 1, 65535, "100",
	    "the dataplane group id the replicas share", NULL, 0 },
	{ "dist", "compress", CONF_STR, JS(dist_compress), 1, 0, "none",
	    "gradients on the wire: none, bf16, int8 or topk:FRACTION (with "
	    "error feedback)", NULL, 0 },
	{ "dist", "overlap", CONF_BOOL, J(dist_overlap), 0, 0, 0, "yes",
	    "all-reduce each layer's gradients while backward goes on to the "
	    "next (no: all of them after backward)", NULL, 0 },
	{ "dist", "stages", CONF_STR, JS(dist_stages), 0, 0, "",
	    "pipeline parallel: node ids of the stages in order, e.g. 1,2 "
	    "(the first holds the embeddings, the last the head and the "
	    "loss); 1,2/3,4: two data-parallel replicas of that pipeline; "
	    "1+2,3+4: stages of two tensor ranks each; empty: no pipeline",
	    NULL, 0 },
	{ "dist", "layers", CONF_STR, JS(dist_layers), 0, 0, "",
	    "blocks of each stage in dist.stages order, summing to "
	    "model.n_layer; empty: as even as may be", NULL, 0 },
	{ "dist", "schedule", CONF_STR, JS(dist_schedule), 1, 0, "1f1b",
	    "pipeline schedule over the train.accumulate micro-batches: "
	    "1f1b or gpipe", NULL, 0 },
	{ "dist", "tensor", CONF_STR, JS(dist_tensor), 0, 0, "",
	    "tensor parallel: node ids of one tensor group in rank order, "
	    "e.g. 1,2: each rank holds model.n_head / N heads and 4 x "
	    "model.n_embd / N MLP rows of every block (both must divide); "
	    "1,2/3,4: two data-parallel replicas of that group; plan: the "
	    "groups of the plan control committed (a plan of tp 1 trains data "
	    "parallel); empty: none", NULL, 0 },
	{ "dist", "control", CONF_STR, JS(dist_control), 0, 0, "",
	    "control.sock to report progress to; empty: the one beside the "
	    "dataplane's socket (cluster mode only); off: none", NULL, 0 },
	{ NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, 0 },
};

int
job_load(struct job *job, const char *path, char **sets, int nsets)
{
	struct conf_errs errs = { 0 };
	const char *where = path ? path : "job";

	memset(job, 0, sizeof(*job));
	conf_defaults(job_keys, job, &errs);
	if (path != NULL)
		conf_load(job_keys, job, path, &errs);
	for (int i = 0; i < nsets; i++)
		conf_set(job_keys, job, sets[i], "--set", &errs);
	if (errs.n == 0) {
		/* Cross-key checks, reported against the job file. */
		if (job->n_embd % job->n_head != 0)
			conf_err(&errs, where, 0, "model.n_embd = %lld is not a "
			    "multiple of model.n_head = %lld",
			    (long long)job->n_embd, (long long)job->n_head);
		if (job->min_lr > job->lr)
			conf_err(&errs, where, 0, "train.min_lr = %g is above "
			    "train.lr = %g", job->min_lr, job->lr);
		if (kern_lookup(job->kernels) == NULL)
			conf_err(&errs, where, 0, "train.kernels = '%s': must "
			    "be dnnl or ref", job->kernels);
		if (strcmp(job->dist_schedule, "1f1b") != 0 &&
		    strcmp(job->dist_schedule, "gpipe") != 0)
			conf_err(&errs, where, 0, "dist.schedule = '%s': must "
			    "be 1f1b or gpipe", job->dist_schedule);
		if (strcmp(job->dist_stages, "plan") == 0) {
			/* the plan's stages, layers and shares (train.c) */
			if (job->dist_layers[0] != '\0' ||
			    job->dist_shares[0] != '\0' ||
			    job->dist_members[0] != '\0')
				conf_err(&errs, where, 0, "dist.stages = plan "
				    "takes the stages, their blocks and the "
				    "shares from the plan: leave dist.layers, "
				    "dist.shares and dist.members empty");
		} else if (job->dist_stages[0] != '\0') {
			static uint32_t m[PIPE_MAX_STAGES * PIPE_MAX_REPLICAS];
			int n, r, K, l[PIPE_MAX_STAGES];
			long top;
			char why[256];

			if (pipe_parse_stages(job->dist_stages, m, &n, &r, &K,
			    why, sizeof(why)) < 0)
				conf_err(&errs, where, 0, "dist.stages: %s",
				    why);
			else if (K > 1 && tp_check_split(job->n_head,
			    job->n_embd, K, why, sizeof(why)) < 0)
				conf_err(&errs, where, 0, "dist.stages = %s: %s",
				    job->dist_stages, why);
			else if (pipe_split_layers(job->dist_layers, n,
			    (int)job->n_layer, l, why, sizeof(why)) < 0)
				conf_err(&errs, where, 0, "dist.layers: %s",
				    why);
			else if (job->dist_shares[0] != '\0' &&
			    dist_parse_shares(job->dist_shares, r,
			    (int)job->batch_size, l, why, sizeof(why)) < 0)
				conf_err(&errs, where, 0, "dist.shares: %s",
				    why);
			else if ((top = (long)job->dist_group + (long)r * K +
			    (long)n * K + (K > 1 ? (long)r * n : 0)) > 65535)
				conf_err(&errs, where, 0, "dist.group = %lld: "
				    "the pipeline takes groups up to %ld, above "
				    "65535", (long long)job->dist_group, top);
			if (job->dist_members[0] != '\0')
				conf_err(&errs, where, 0, "dist.stages and "
				    "dist.members: replicas of a pipeline are "
				    "listed in dist.stages (1,2/3,4: two "
				    "pipelines of two stages)");
		} else if (job->dist_layers[0] != '\0') {
			conf_err(&errs, where, 0, "dist.layers without "
			    "dist.stages");
		}
		if (strcmp(job->dist_tensor, "plan") == 0) {
			/* the plan's groups and shares (train.c) */
			if (job->dist_shares[0] != '\0' ||
			    job->dist_members[0] != '\0' ||
			    job->dist_stages[0] != '\0')
				conf_err(&errs, where, 0, "dist.tensor = plan "
				    "takes the tensor groups and the shares from "
				    "the plan: leave dist.shares, dist.members and "
				    "dist.stages empty");
		} else if (job->dist_tensor[0] != '\0') {
			static uint32_t m[GPT_MAX_TP * TP_MAX_REPLICAS];
			int n, r, sh[TP_MAX_REPLICAS];
			char why[256];

			if (tp_parse_group(job->dist_tensor, m, &n, &r, why,
			    sizeof(why)) < 0 ||
			    tp_check_split(job->n_head, job->n_embd, n, why,
			    sizeof(why)) < 0)
				conf_err(&errs, where, 0, "dist.tensor = %s: %s",
				    job->dist_tensor, why);
			else if (job->dist_shares[0] != '\0' &&
			    dist_parse_shares(job->dist_shares, r,
			    (int)job->batch_size, sh, why, sizeof(why)) < 0)
				conf_err(&errs, where, 0, "dist.shares: %s",
				    why);
			else if (job->dist_group + r + n > 65535)
				conf_err(&errs, where, 0, "dist.group = %lld: "
				    "the tensor groups take groups up to %lld, "
				    "above 65535", (long long)job->dist_group,
				    (long long)job->dist_group + r + n);
			if (job->dist_stages[0] != '\0')
				conf_err(&errs, where, 0, "dist.tensor and "
				    "dist.stages: the tensor ranks of pipeline "
				    "stages are listed in dist.stages (1+2,3+4: "
				    "two stages of two ranks)");
			if (job->dist_members[0] != '\0')
				conf_err(&errs, where, 0, "dist.tensor and "
				    "dist.members: replicas of a tensor group "
				    "are listed in dist.tensor (1,2/3,4: two "
				    "groups of two ranks)");
		}
		if (job->dist_dataplane[0] != '\0' &&
		    job->dist_stages[0] == '\0' &&
		    job->dist_tensor[0] == '\0') {
			uint32_t m[DIST_MAX_MEMBERS];
			char why[256];

			int n, sh[DIST_MAX_MEMBERS];

			if (strcmp(job->dist_members, "plan") == 0)
				;	/* the plan's members and shares */
			else if ((n = dist_parse_members(job->dist_members, m,
			    DIST_MAX_MEMBERS, why, sizeof(why))) < 0)
				conf_err(&errs, where, 0, "dist.members: %s",
				    why);
			else if (dist_parse_shares(job->dist_shares, n,
			    (int)job->batch_size, sh, why, sizeof(why)) < 0)
				conf_err(&errs, where, 0, "dist.shares: %s",
				    why);
		}
		{
			struct dist d;
			char why[256];

			if (dist_parse_comp(job->dist_compress, &d, why,
			    sizeof(why)) < 0)
				conf_err(&errs, where, 0, "dist.compress = %s",
				    why);
		}
	}
	if (errs.n > 0) {
		conf_errs_print(&errs, stderr);
		return -1;
	}
	return 0;
}
