/*
 * check_links.c: the link matrix (control/links.c): a node's own row from
 * its dataplane and SWIM's probes, the matrix made symmetric where one
 * side measured, defaults for unmeasured pairs, islands from bandwidth,
 * and the planner keeping tensor-parallel groups inside them.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"

static struct swim_link
cell(uint32_t o, uint32_t p, double rtt_s, double bw)
{
	struct swim_link c;

	memset(&c, 0, sizeof(c));
	c.origin = o;
	c.peer = p;
	c.rtt_us = (uint32_t)(rtt_s * 1e6);
	c.bw_kib = (uint32_t)(bw / 1024);
	c.src = bw > 0 ? SWIM_LINK_DATAPLANE : SWIM_LINK_PROBE;
	return c;
}

START_TEST(test_row_sources)
{
	static const struct swim_conf conf = { 100, 40, 300, 3, 1000 };
	unsigned char key[SWIM_KEY_LEN] = { 1 };
	struct swim sw;
	struct ctl_link dl[2];
	struct swim_link row[8];
	int n;

	ck_assert_int_eq(swim_init(&sw, &conf, 1, 1, key, 1, 1, NULL, NULL,
	    NULL), 0);
	/* members 2 (dataplane), 3 (probe only), 4 (nothing), 5 (dead) */
	for (uint32_t id = 2; id <= 5; id++) {
		struct swim_member *m = &sw.m[sw.nm++];

		memset(m, 0, sizeof(*m));
		m->id = id;
		m->state = id == 5 ? SWIM_DEAD : SWIM_ALIVE;
		m->rtt_ms = id == 4 ? 0 : 0.25 * id;
		m->last_heard_ms = 900;
	}
	memset(dl, 0, sizeof(dl));
	dl[0].peer = 2;
	dl[0].up = 1;
	dl[0].rtt_s = 0.0002;
	dl[0].bw_live = 5e8;
	dl[0].bw_probe = 1e9;		/* the probe wins over live traffic */
	dl[1].peer = 5;
	dl[1].up = 1;
	dl[1].bw_probe = 1e9;
	n = links_row(&sw, 1000, dl, 2, 0.5, row, 8);
	ck_assert_int_eq(n, 2);
	ck_assert_uint_eq(row[0].peer, 2);
	ck_assert_int_eq(row[0].src, SWIM_LINK_DATAPLANE);
	ck_assert_uint_eq(row[0].rtt_us, 200);
	ck_assert_uint_eq(row[0].bw_kib, (uint32_t)(1e9 / 1024));
	ck_assert_uint_eq(row[0].age_ms, 500);
	ck_assert_uint_eq(row[1].peer, 3);
	ck_assert_int_eq(row[1].src, SWIM_LINK_PROBE);
	ck_assert_uint_eq(row[1].rtt_us, 750);
	ck_assert_uint_eq(row[1].bw_kib, 0);
	ck_assert_uint_eq(row[1].age_ms, 100);
	ck_assert_int_eq(links_row(&sw, 1000, dl, 2, 0.5, row, 1), 1);
	swim_fini(&sw);
}
END_TEST

START_TEST(test_symmetric_and_defaults)
{
	uint32_t ids[3] = { 10, 20, 30 };
	struct swim_link c[4];
	struct link_matrix lm;
	double bw, rtt;

	c[0] = cell(10, 20, 0.001, 1e9);	/* only 10 measured 10-20 */
	c[1] = cell(20, 30, 0.002, 4e8);	/* both measured 20-30 */
	c[2] = cell(30, 20, 0.003, 6e8);
	c[3] = cell(10, 99, 0.001, 1e9);	/* not a member: ignored */
	ck_assert_int_eq(links_assemble(ids, 3, c, 4, &lm), 0);
	links_pair(&lm, 1, 0, &bw, &rtt);
	ck_assert_double_eq_tol(bw, 1e9, 1024);
	ck_assert_double_eq_tol(rtt, 0.001, 1e-9);
	links_pair(&lm, 1, 2, &bw, &rtt);	/* worse direction */
	ck_assert_double_eq_tol(bw, 4e8, 1024);
	ck_assert_double_eq_tol(rtt, 0.003, 1e-9);
	links_pair(&lm, 2, 1, &bw, &rtt);
	ck_assert_double_eq_tol(bw, 4e8, 1024);
	links_pair(&lm, 0, 2, &bw, &rtt);	/* nobody measured */
	ck_assert_double_eq(bw, LINK_DEFAULT_BW);
	ck_assert_double_eq(rtt, LINK_DEFAULT_RTT);
	links_matrix_free(&lm);
	/* an RTT from SWIM's probe, no bandwidth: default bandwidth */
	c[0] = cell(10, 30, 0.004, 0);
	ck_assert_int_eq(links_assemble(ids, 3, c, 1, &lm), 0);
	links_pair(&lm, 2, 0, &bw, &rtt);
	ck_assert_double_eq(bw, LINK_DEFAULT_BW);
	ck_assert_double_eq_tol(rtt, 0.004, 1e-9);
	links_matrix_free(&lm);
}
END_TEST

/* 8 devices, two islands of 4 (fast inside, slow between). */
static void
two_islands(struct link_matrix *lm, struct plan_device *dev, int *ni,
    double **ibw, double **irtt, int one_sided)
{
	uint32_t ids[8];
	struct swim_link c[64];
	int nc = 0;

	for (int i = 0; i < 8; i++) {
		ids[i] = (uint32_t)(i + 1);
		memset(&dev[i], 0, sizeof(dev[i]));
		dev[i].id = ids[i];
		dev[i].gflops = 50;
		dev[i].mem_bytes = 8e9;
	}
	for (int a = 0; a < 8; a++)
		for (int b = 0; b < 8; b++) {
			int same = a / 4 == b / 4;

			if (a == b || (one_sided && a > b))
				continue;
			c[nc++] = cell(ids[a], ids[b], same ? 0.0001 : 0.02,
			    same ? 1.2e10 : 1.2e7);
		}
	ck_assert_int_eq(links_assemble(ids, 8, c, nc, lm), 0);
	ck_assert_int_eq(links_islands(lm, dev, ni, ibw, irtt), 0);
}

START_TEST(test_islands)
{
	struct link_matrix lm;
	struct plan_device dev[8];
	double *ibw, *irtt;
	int ni;

	for (int one = 0; one < 2; one++) {
		two_islands(&lm, dev, &ni, &ibw, &irtt, one);
		ck_assert_int_eq(ni, 2);
		for (int i = 0; i < 8; i++)
			ck_assert_int_eq(dev[i].island, i / 4);
		ck_assert_double_eq_tol(ibw[0], 1.2e10, 1e4);
		ck_assert_double_eq_tol(ibw[1], 1.2e7, 1e4);
		ck_assert_double_eq_tol(ibw[2], 1.2e7, 1e4);
		ck_assert_double_eq_tol(irtt[1], 0.02, 1e-6);
		ck_assert_double_eq_tol(irtt[3], 0.0001, 1e-6);
		free(ibw);
		free(irtt);
		links_matrix_free(&lm);
	}
	/* nothing measured: one island at the defaults */
	{
		uint32_t ids[3] = { 1, 2, 3 };

		ck_assert_int_eq(links_assemble(ids, 3, NULL, 0, &lm), 0);
		ck_assert_int_eq(links_islands(&lm, dev, &ni, &ibw, &irtt), 0);
		ck_assert_int_eq(ni, 1);
		ck_assert_double_eq(ibw[0], LINK_DEFAULT_BW);
		ck_assert_double_eq(irtt[0], LINK_DEFAULT_RTT);
		free(ibw);
		free(irtt);
		links_matrix_free(&lm);
	}
	/* a lone slow member is an island of its own */
	{
		uint32_t ids[3] = { 1, 2, 3 };
		struct swim_link c[3];

		c[0] = cell(1, 2, 0.0001, 1e9);
		c[1] = cell(1, 3, 0.01, 1e6);
		c[2] = cell(2, 3, 0.01, 1e6);
		ck_assert_int_eq(links_assemble(ids, 3, c, 3, &lm), 0);
		ck_assert_int_eq(links_islands(&lm, dev, &ni, &ibw, &irtt), 0);
		ck_assert_int_eq(ni, 2);
		ck_assert_int_eq(dev[0].island, dev[1].island);
		ck_assert_int_ne(dev[0].island, dev[2].island);
		ck_assert_double_eq_tol(ibw[3], 1e9, 1e4);	/* lone: best */
		free(ibw);
		free(irtt);
		links_matrix_free(&lm);
	}
}
END_TEST

/* The planner on the assembled input: tensor-parallel groups and
 * pipelines stay inside the islands the measurements show. */
START_TEST(test_plan_follows_islands)
{
	static struct plan_model m;
	struct plan_job j = { .global_batch = 64, .micro_batch = 4 };
	struct link_matrix lm;
	struct plan_device dev[8];
	struct plan_cluster pc;
	struct plan p;
	int ni;

	plan_model_gpt(&m, 8, 8, 512, 256, 8192);
	two_islands(&lm, dev, &ni, &pc.bw, &pc.rtt, 1);
	pc.ndev = 8;
	pc.dev = dev;
	pc.nisland = ni;
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(plan_compute(&m, &j, &pc, NULL, &p), 0);
	ck_assert(p.ok);
	printf("two islands: tp %d pp %d dp %d, step %.3f s\n", p.tp, p.pp,
	    p.dp, p.step);
	for (int r = 0; r < p.dp; r++) {
		int isl = -1;

		for (int s = 0; s < p.pp; s++)
			for (int k = 0; k < p.tp; k++) {
				int d = (int)p.st[r * p.pp + s].dev[k] - 1;

				ck_assert_int_ge(d, 0);
				if (isl < 0)
					isl = dev[d].island;
				/* a replica (its stages and groups) in one */
				ck_assert_int_eq(dev[d].island, isl);
			}
	}
	plan_fini(&p);
	free(pc.bw);
	free(pc.rtt);
	links_matrix_free(&lm);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("links");
	TCase *tc = tcase_create("links");
	SRunner *sr;
	int nf;

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_row_sources);
	tcase_add_test(tc, test_symmetric_and_defaults);
	tcase_add_test(tc, test_islands);
	tcase_add_test(tc, test_plan_follows_islands);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf != 0;
}
