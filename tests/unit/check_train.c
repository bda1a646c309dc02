/*
 * check_train.c: the training loop with checkpoints.  N steps + resume +
 * N steps ends with the same parameters and optimizer state, bit for bit,
 * as 2N steps; a full disk fails checkpoints but not training; a torn
 * newest checkpoint makes the resume fall back to the previous one.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compute.h"
#include "fault.h"

static char root[64], corpus[128];

static void
setup(void)
{
	static const char *words[] = { "whale", "sea", "ship", "captain",
	    "white", "the", "a", "of", "and", "harpoon", "deck", "sail" };
	struct rng r;
	FILE *fp;

	strcpy(root, "/tmp/check_train.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
	snprintf(corpus, sizeof(corpus), "%s/corpus.txt", root);
	fp = fopen(corpus, "w");
	ck_assert_ptr_nonnull(fp);
	rng_seed(&r, 3);
	for (int i = 0; i < 6000; i++)
		fprintf(fp, "%s%s", words[rng_below(&r, 12)],
		    rng_below(&r, 9) ? " " : ".\n");
	fclose(fp);
}

static void
teardown(void)
{
	char cmd[128];

	fault_disarm_all();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", root);
}

static void
tiny_job(struct job *j, const char *ckdir, int steps)
{
	char *sets[] = { "model.n_layer=2", "model.n_head=2",
	    "model.n_embd=32", "model.block_size=16", "train.batch_size=4",
	    "train.accumulate=2", "train.warmup_steps=4",
	    "train.decay_steps=20", "train.dropout=0.1", "train.threads=1",
	    "train.eval_interval=5", "train.eval_iters=2",
	    "train.sample_len=0", "checkpoint.interval=5",
	    "checkpoint.keep=0" };

	ck_assert_int_eq(job_load(j, NULL, sets, sizeof(sets) /
	    sizeof(sets[0])), 0);
	snprintf(j->path, sizeof(j->path), "%s", corpus);
	snprintf(j->ckpt_dir, sizeof(j->ckpt_dir), "%s/%s", root, ckdir);
	j->steps = steps;
}

/* Loads the newest checkpoint of dir: params, moments and trainer. */
static uint64_t
load_state(const struct job *j, float **params, float **m, float **v)
{
	struct gpt_config cfg = { (int)j->n_layer, (int)j->n_head,
	    (int)j->n_embd, (int)j->block_size, GPT_VOCAB, 0, 0, 0, 0 };
	struct trainer_state ts;
	struct adamw o;
	struct gpt g;
	char err[256];

	ck_assert_int_eq(gpt_init(&g, &cfg, &kern_ref_ops), 0);
	ck_assert_int_eq(adamw_init(&o, g.nparams), 0);
	ck_assert_msg(train_load(j->ckpt_dir, &g, &o, &ts, err,
	    sizeof(err)) == 0, "%s", err);
	*params = g.params;
	*m = o.m;
	*v = o.v;
	g.params = NULL;
	o.m = o.v = NULL;
	free(g.grads);
	return ts.step;
}

START_TEST(test_resume_bit_exact)
{
	struct job a, b;
	float *pa, *ma, *va, *pb, *mb, *vb;
	size_t n;

	tiny_job(&a, "straight", 20);
	ck_assert_int_eq(train_run(&a, &(struct train_opts){ NULL, 1 }), 0);
	tiny_job(&b, "resumed", 12);
	ck_assert_int_eq(train_run(&b, &(struct train_opts){ NULL, 1 }), 0);
	b.steps = 20;
	ck_assert_int_eq(train_run(&b, &(struct train_opts){ NULL, 1 }), 0);

	ck_assert_uint_eq(load_state(&a, &pa, &ma, &va), 20);
	ck_assert_uint_eq(load_state(&b, &pb, &mb, &vb), 20);
	{
		struct gpt g;
		struct gpt_config cfg = { 2, 2, 32, 16, GPT_VOCAB, 0, 0, 0, 0 };

		gpt_init(&g, &cfg, &kern_ref_ops);
		n = g.nparams;
		gpt_fini(&g);
	}
	ck_assert_msg(memcmp(pa, pb, n * sizeof(float)) == 0,
	    "parameters differ after resume");
	ck_assert_msg(memcmp(ma, mb, n * sizeof(float)) == 0,
	    "AdamW first moments differ after resume");
	ck_assert_msg(memcmp(va, vb, n * sizeof(float)) == 0,
	    "AdamW second moments differ after resume");
	/* and training did move them: not a trivially equal pair */
	{
		struct job c;
		float *pc, *mc, *vc;

		tiny_job(&c, "short", 5);
		ck_assert_int_eq(train_run(&c, &(struct train_opts){ NULL, 1 }),
		    0);
		ck_assert_uint_eq(load_state(&c, &pc, &mc, &vc), 5);
		ck_assert(memcmp(pa, pc, n * sizeof(float)) != 0);
		free(pc);
		free(mc);
		free(vc);
	}
	free(pa); free(ma); free(va);
	free(pb); free(mb); free(vb);
}
END_TEST

/* ENOSPC on every checkpoint write: training goes on to the end. */
START_TEST(test_disk_full_training_goes_on)
{
	struct job j;
	float *p, *m, *v;
	uint64_t steps[8];
	char file[256];
	FILE *fp;
	int n, lines = 0;

	tiny_job(&j, "full", 5);
	ck_assert_int_eq(train_run(&j, &(struct train_opts){ NULL, 1 }), 0);
	fault_arm(FAULT_CKPT_WRITE, 1, ENOSPC, 1);
	j.steps = 15;
	snprintf(file, sizeof(file), "%s/metrics.jsonl", root);
	ck_assert_int_eq(train_run(&j, &(struct train_opts){ file, 1 }), 0);
	ck_assert_uint_gt(fault_injected(FAULT_CKPT_WRITE), 0);
	fault_disarm_all();
	/* all 10 steps ran and reported */
	fp = fopen(file, "r");
	ck_assert_ptr_nonnull(fp);
	for (int ch; (ch = fgetc(fp)) != EOF;)
		lines += ch == '\n';
	fclose(fp);
	ck_assert_int_eq(lines, 10);
	/* the only complete checkpoint is still the one of step 5 */
	n = ckpt_list(j.ckpt_dir, steps, 8);
	ck_assert_int_eq(n, 1);
	ck_assert_uint_eq(steps[0], 5);
	ck_assert_uint_eq(load_state(&j, &p, &m, &v), 5);
	free(p); free(m); free(v);
}
END_TEST

/* A torn newest checkpoint: resume falls back to the previous one. */
START_TEST(test_torn_newest_falls_back)
{
	struct job j;
	float *p, *m, *v;
	char shard[256];
	struct stat st;

	tiny_job(&j, "torn", 10);
	ck_assert_int_eq(train_run(&j, &(struct train_opts){ NULL, 1 }), 0);
	snprintf(shard, sizeof(shard), "%s/step-0000000010/shard-0.bin",
	    j.ckpt_dir);
	ck_assert_int_eq(stat(shard, &st), 0);
	ck_assert_int_eq(truncate(shard, st.st_size / 2), 0);
	ck_assert_uint_eq(load_state(&j, &p, &m, &v), 5);
	free(p); free(m); free(v);
	/* and training resumes from there and finishes */
	j.steps = 12;
	ck_assert_int_eq(train_run(&j, &(struct train_opts){ NULL, 1 }), 0);
	ck_assert_uint_eq(load_state(&j, &p, &m, &v), 12);
	free(p); free(m); free(v);
}
END_TEST

/* A checkpoint of another model is refused with the reason. */
START_TEST(test_other_model_refused)
{
	struct job j;

	tiny_job(&j, "other", 5);
	ck_assert_int_eq(train_run(&j, &(struct train_opts){ NULL, 1 }), 0);
	j.n_embd = 64;
	j.steps = 8;
	ck_assert_int_ne(train_run(&j, &(struct train_opts){ NULL, 1 }), 0);
}
END_TEST

START_TEST(test_missing_data)
{
	struct job j;

	tiny_job(&j, "nodata", 5);
	snprintf(j.path, sizeof(j.path), "%s/does-not-exist.txt", root);
	ck_assert_int_ne(train_run(&j, &(struct train_opts){ NULL, 1 }), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("train");
	TCase *tc = tcase_create("train");
	SRunner *sr;
	int nf;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_resume_bit_exact);
	tcase_add_test(tc, test_disk_full_training_goes_on);
	tcase_add_test(tc, test_torn_newest_falls_back);
	tcase_add_test(tc, test_other_model_refused);
	tcase_add_test(tc, test_missing_data);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
